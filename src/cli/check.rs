//! `trustgate check`: the webhook's decision for images, from a shell or CI job.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use serde_json::json;
use trustgate::clock::SystemClock;
use trustgate::decision::{Decision, Engine, EngineConfig};
use trustgate::policy::Action;
use trustgate::policy::load::load_policy_set;

use super::credentials::{Binding, CliCredentials};
use super::{NotaryFlags, Output, RegistryFlags};

/// Everything `check` takes.
pub struct CheckArgs {
    pub policies: Vec<PathBuf>,
    pub policy_dirs: Vec<PathBuf>,
    pub namespace: String,
    pub output: Output,
    pub default_action: Action,
    pub deadline: std::time::Duration,
    pub images: Vec<String>,
    /// `-f FILE` manifests (`-`: stdin) whose workloads' images are decided.
    pub files: Vec<PathBuf>,
    /// Further pod-template kinds for `-f` (as `serve --extra-kind`).
    pub extra_kinds: Vec<trustgate::admission::ExtraKind>,
    /// Print each verified reference in its pinned form (`pinned`).
    pub pin: bool,
}

pub async fn run(
    args: CheckArgs,
    registry: &RegistryFlags,
    notary: &NotaryFlags,
) -> anyhow::Result<ExitCode> {
    if args.policies.is_empty() && args.policy_dirs.is_empty() {
        anyhow::bail!("give at least one --policy FILE or --policy-dir DIR");
    }
    let policies = load_policy_set(&args.policies, &args.policy_dirs)?
        .with_default_action(args.default_action);
    let (options, creds) =
        CliCredentials::from_flags(registry, notary, Binding::OnlyServerOf(&policies))?;
    let engine = Engine::new(
        EngineConfig {
            default_action: args.default_action,
            deadline: args.deadline,
            registry_timeout: options.timeout,
            notary_timeout: notary.notary_timeout,
            ..EngineConfig::default()
        },
        Arc::new(SystemClock),
    );
    if !args.files.is_empty() {
        if !args.images.is_empty() {
            anyhow::bail!("give image references or -f manifests, not both");
        }
        return super::manifests::check(&engine, &args, &policies, &creds).await;
    }
    let decisions = engine
        .decide_all(&args.namespace, &args.images, &policies, &creds)
        .await;
    match args.output {
        Output::Text => {
            for d in &decisions {
                println!("{:<8} {}", d.verdict(), d.reason);
                for line in super::report::format_lines(d) {
                    println!("{line}");
                }
                if args.pin
                    && let Some(pinned) = pinned(d)
                {
                    println!("{:<8} {}", "PINNED", pinned);
                }
            }
            if let Some(line) = super::report::migration_line(&decisions) {
                println!("{line}");
            }
        }
        Output::Json => {
            let results: Vec<_> = decisions
                .iter()
                .map(|d| {
                    let mut r = result_json(d);
                    if args.pin {
                        r["pinned"] = json!(pinned(d));
                    }
                    r
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({
                    "results": results,
                    "migration": super::report::migration_json(&decisions),
                }))?
            );
        }
    }
    let rejected = decisions.iter().any(|d| !d.allowed);
    Ok(if rejected {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The reference `/mutate` would leave in a Pod for this image when it was verified: the tag
/// pinned to the verified digest, or the reference as written when it already names a digest;
/// `None` for images not verified by a Verify policy (Allow, default action, failures).
fn pinned(d: &Decision) -> Option<String> {
    d.pinned().or_else(|| {
        let verified = d.allowed && d.verified && d.action == Action::Verify && d.policy.is_some();
        (verified && d.image.contains('@')).then(|| d.image.clone())
    })
}

/// The JSON result object docs/cli.md documents (plus `verified` and `verdict`; `formats` is
/// `null` for policies without `spec.signatures`).
pub(super) fn result_json(d: &Decision) -> serde_json::Value {
    json!({
        "image": d.image,
        "reference": d.reference,
        "digest": d.digest,
        "policy": d.policy,
        "action": d.action,
        "mode": d.mode,
        "allowed": d.allowed,
        "verified": d.verified,
        "verdict": d.verdict(),
        "reason": d.reason,
        "signers": d.signers,
        "formats": d.formats,
    })
}

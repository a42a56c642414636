//! `trustgate audit`: decides the images of the cluster's running Pods (every namespace, or
//! `--namespace`) against the cluster's policies, or `--policy-dir` for a what-if, and prints a
//! report: a table, or `--output json` with `namespace`, `pod`, `image`, `allowed`, `reason`,
//! `policy` per image occurrence (registry and Notary credentials as for `check`). Exit status 1 when any image would be rejected. The cluster
//! comes from KUBECONFIG (or ~/.kube/config) or the in-cluster config, as every kube tool.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use trustgate::admission::FixedCredentials;
use trustgate::clock::SystemClock;
use trustgate::cluster::running::{cluster_policies, decide_pods, list_pods};
use trustgate::decision::{Engine, EngineConfig};
use trustgate::policy::load::load_policy_set;

use super::credentials::{Binding, CliCredentials};
use super::{DefaultAction, NotaryFlags, Output, RegistryFlags, humantime_secs};

/// `trustgate audit` flags.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Only the Pods of this namespace (default: every namespace).
    #[arg(long, short = 'n', value_name = "NS")]
    pub namespace: Option<String>,
    /// Decide against the policy files of this directory instead of the cluster's policies
    /// (a what-if); repeatable.
    #[arg(long = "policy-dir", value_name = "DIR")]
    pub policy_dirs: Vec<PathBuf>,
    /// Action for images no policy matches.
    #[arg(long, value_enum, default_value_t = DefaultAction::Deny)]
    pub default_action: DefaultAction,
    /// Time allowed to decide each image (seconds).
    #[arg(long, value_parser = humantime_secs, default_value = "8")]
    pub deadline: Duration,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    #[command(flatten)]
    pub registry: RegistryFlags,
    #[command(flatten)]
    pub notary: NotaryFlags,
}

/// Runs the audit.
pub async fn run(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let client = kube::Client::try_default().await.map_err(|e| {
        anyhow::anyhow!("no cluster (KUBECONFIG, ~/.kube/config or in-cluster): {e}")
    })?;
    let default_action = args.default_action.into();
    let policies = if args.policy_dirs.is_empty() {
        cluster_policies(&client, default_action).await?
    } else {
        load_policy_set(&[], &args.policy_dirs)?.with_default_action(default_action)
    };
    let (options, creds) = CliCredentials::from_flags(
        &args.registry,
        &args.notary,
        Binding::OnlyServerOf(&policies),
    )?;
    let engine = Engine::new(
        EngineConfig {
            default_action,
            deadline: args.deadline,
            registry_timeout: options.timeout,
            notary_timeout: args.notary.notary_timeout,
            ..EngineConfig::default()
        },
        Arc::new(SystemClock),
    );
    let pods = list_pods(&client, args.namespace.as_deref()).await?;
    let creds = FixedCredentials(Arc::new(creds));
    let found = decide_pods(&engine, &pods, &policies, &creds).await;
    match args.output {
        Output::Text => {
            println!(
                "{:<20} {:<30} {:<9} {:<24} {:<50} REASON",
                "NAMESPACE", "POD", "VERDICT", "POLICY", "IMAGE"
            );
            for r in &found {
                let d = &r.decision;
                println!(
                    "{:<20} {:<30} {:<9} {:<24} {:<50} {}",
                    r.namespace,
                    r.pod,
                    d.verdict(),
                    d.policy.as_deref().unwrap_or("(default action)"),
                    d.image,
                    d.reason
                );
                for line in super::report::format_lines(d) {
                    println!("{line}");
                }
            }
            if let Some(line) = super::report::migration_line(found.iter().map(|r| &r.decision)) {
                println!("{line}");
            }
        }
        Output::Json => {
            let results: Vec<_> = found
                .iter()
                .map(|r| {
                    let mut v = super::check::result_json(&r.decision);
                    v["namespace"] = json!(r.namespace);
                    v["pod"] = json!(r.pod);
                    v["location"] = json!(r.location);
                    v
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({
                    "results": results,
                    "migration": super::report::migration_json(found.iter().map(|r| &r.decision)),
                }))?
            );
        }
    }
    Ok(if found.iter().any(|r| !r.decision.allowed) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

//! `trustgate serve`: the admission webhook (docs/cli.md). Standalone mode (`--policy-dir`):
//! policies from YAML files, credentials as for `check`, events to the log. Cluster mode
//! (no `--policy-dir`; a kube client from the in-cluster config or KUBECONFIG): policies from
//! the TrustPolicy/ClusterTrustPolicy objects (`/readyz` fails until both are listed, and their
//! status is written back), credentials from the policies' and the workloads' Secrets (the
//! CLI's as fallback), decisions as Kubernetes Events. Both: HTTPS on `--listen` with a certificate from `--tls-cert/--tls-key` (reloaded when
//! the files change) or a generated self-signed one; `/healthz`, `/readyz` and `/metrics` on
//! `--admin-listen`. SIGTERM or SIGINT drains in-flight requests before exiting.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use trustgate::admission::{ExtraKind, KindTable, ServerConfig, Webhook, start};
use trustgate::audit::LogEventSink;
use trustgate::clock::SystemClock;
use trustgate::cluster::events::{EventConfig, KubeEventSink};
use trustgate::cluster::running::PeriodicAudit;
use trustgate::cluster::{ClusterPolicyConfig, ClusterPolicySource};
use trustgate::cluster::{SecretConfig, SecretCredentials};
use trustgate::decision::{Engine, EngineConfig};
use trustgate::metrics::Metrics;
use trustgate::policy::DirPolicySource;
use trustgate::tls::ServingCert;

use super::credentials::{Binding, CliCredentials};
use super::{DefaultAction, NotaryFlags, RegistryFlags, humantime_secs};

/// `trustgate serve` flags.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// HTTPS address of the webhook (`POST /validate` and `POST /mutate`).
    #[arg(long, default_value = "0.0.0.0:8443", env = "TRUSTGATE_LISTEN")]
    pub listen: SocketAddr,
    /// Plain-HTTP address of `/healthz`, `/readyz` and `/metrics`.
    #[arg(long, default_value = "0.0.0.0:8080", env = "TRUSTGATE_ADMIN_LISTEN")]
    pub admin_listen: SocketAddr,
    /// Serving certificate chain (PEM); reloaded when its content changes. Without
    /// --tls-cert/--tls-key a self-signed CA and certificate are generated.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// How often to check --tls-cert/--tls-key for a new pair (seconds).
    #[arg(long, value_parser = humantime_secs, default_value = "10")]
    pub tls_reload_interval: Duration,
    /// Extra DNS name or IP of the self-signed certificate (e.g. trustgate.trustgate.svc);
    /// repeatable. localhost and 127.0.0.1 are always included.
    #[arg(long = "tls-san", value_name = "NAME", conflicts_with = "tls_cert")]
    pub tls_sans: Vec<String>,
    /// Mutual TLS: a CA bundle (PEM); only callers presenting a client certificate issued by it
    /// are answered on --listen (give the API server a client certificate in its admission
    /// kubeconfig). Reloaded with --tls-cert/--tls-key.
    #[arg(long, value_name = "FILE", env = "TRUSTGATE_CLIENT_CA")]
    pub client_ca: Option<PathBuf>,
    /// Where to write the self-signed CA certificate (PEM) for the webhook's caBundle.
    #[arg(long, value_name = "FILE", conflicts_with = "tls_cert")]
    pub ca_out: Option<PathBuf>,
    /// Directory of policy files (*.yaml, *.yml), reloaded when it changes (standalone mode).
    /// Without it, policies come from the cluster's TrustPolicy and ClusterTrustPolicy objects.
    #[arg(long, value_name = "DIR", env = "TRUSTGATE_POLICY_DIR")]
    pub policy_dir: Option<PathBuf>,
    /// How often to check --policy-dir for changes (seconds).
    #[arg(long, value_parser = humantime_secs, default_value = "5")]
    pub policy_reload_interval: Duration,
    /// Action for images no policy matches.
    #[arg(long, value_enum, default_value_t = DefaultAction::Deny)]
    pub default_action: DefaultAction,
    /// Time allowed to answer a review (seconds); keep it below the webhook's timeoutSeconds.
    /// Images not decided in time are rejected (fail closed).
    #[arg(long, value_parser = humantime_secs, default_value = "8")]
    pub budget: Duration,
    /// A further kind carrying a pod template: `group/Kind=dotted.path.to.podSpec`, e.g.
    /// `argoproj.io/Rollout=spec.template.spec`; repeatable.
    #[arg(long = "extra-kind", value_name = "GROUP/KIND=PATH")]
    pub extra_kinds: Vec<ExtraKind>,
    /// `POST /mutate` also pins pod templates (Deployment, StatefulSet, ..., --extra-kind) to
    /// verified digests; by default only Pods are pinned (GitOps tools would fight template
    /// rewrites, and the Pods a template creates are pinned when they are created).
    #[arg(long)]
    pub pin_templates: bool,
    /// Connections kept open to each Notary server the policies verify with (opened when the
    /// policies load or change, and every minute: `GET /_notary_server/health` on each), so
    /// a never-seen image does not wait for TCP and TLS handshakes; 0 opens none ahead.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub notary_warm_connections: usize,
    /// Time allowed for in-flight requests to finish after SIGTERM/SIGINT (seconds).
    #[arg(long, value_parser = humantime_secs, default_value = "20")]
    pub shutdown_timeout: Duration,
    /// Cluster mode: trustgate's own namespace, where the credential Secrets of
    /// ClusterTrustPolicy objects live. Default: the kube client's namespace (in a pod, the
    /// service account's).
    #[arg(long, value_name = "NS", env = "POD_NAMESPACE")]
    pub namespace: Option<String>,
    /// Cluster mode: also post an Event for every admitted image (ImageVerified); by default
    /// only rejections, Warn and Audit failures get one.
    #[arg(long)]
    pub events_for_admitted: bool,
    /// Which image decisions get an audit log line (info level, target `trustgate::audit`):
    /// `all` (default), `rejected` (only `allowed: false`) or `none`.
    #[arg(long, value_enum, default_value_t = LogDecisionsArg::All, env = "TRUSTGATE_LOG_DECISIONS")]
    pub log_decisions: LogDecisionsArg,
    /// Label image decisions in /metrics with the workload's namespace (`true`, the default;
    /// bounded: namespaces past the first few hundred count as `other`). Set it to `false` on
    /// clusters with very many namespaces.
    #[arg(
        long,
        value_name = "BOOL",
        default_value_t = true,
        action = clap::ArgAction::Set,
        env = "TRUSTGATE_METRICS_NAMESPACE_LABEL"
    )]
    pub metrics_namespace_label: bool,
    /// Cluster mode: every this often (e.g. `10m`), decide the images of every running Pod
    /// against the current policies, export `trustgate_running_images{verdict,namespace}` and
    /// post an Event on each Pod whose images would now be rejected (needs `list pods`).
    /// Off by default.
    #[arg(long, value_parser = audit_interval, value_name = "DURATION", env = "TRUSTGATE_AUDIT_INTERVAL")]
    pub audit_interval: Option<Duration>,
    #[command(flatten)]
    pub registry: RegistryFlags,
    #[command(flatten)]
    pub notary: NotaryFlags,
}

/// `--log-decisions`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogDecisionsArg {
    /// A line for every image decision.
    All,
    /// Lines only for images not admitted.
    Rejected,
    /// No decision lines.
    None,
}

impl From<LogDecisionsArg> for trustgate::audit::log::LogDecisions {
    fn from(a: LogDecisionsArg) -> Self {
        use trustgate::audit::log::LogDecisions;
        match a {
            LogDecisionsArg::All => LogDecisions::All,
            LogDecisionsArg::Rejected => LogDecisions::Rejected,
            LogDecisionsArg::None => LogDecisions::None,
        }
    }
}

/// Runs the webhook until SIGTERM or SIGINT.
pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    // The system CA certificates every outbound client trusts, read now rather than inside
    // the first review's handshakes.
    let preload = tokio::task::spawn_blocking(trustgate::roots::preload);
    let (options, creds) =
        CliCredentials::from_flags(&args.registry, &args.notary, Binding::Required)?;
    let metrics = Arc::new(Metrics::new());
    metrics.set_namespace_label(args.metrics_namespace_label);
    let engine = Engine::new(
        EngineConfig {
            default_action: args.default_action.into(),
            deadline: args.budget,
            registry_timeout: options.timeout,
            notary_timeout: args.notary.notary_timeout,
            ..EngineConfig::default()
        },
        Arc::new(SystemClock),
    )
    .with_metrics(Arc::clone(&metrics));
    for extra in &args.extra_kinds {
        metrics.allow_kind(&extra.kind);
    }
    let kinds = KindTable::builtin().with_extra(args.extra_kinds.iter().cloned());
    let (webhook, origin) = match &args.policy_dir {
        Some(_) if args.audit_interval.is_some() => {
            anyhow::bail!("--audit-interval needs cluster mode (no --policy-dir)");
        }
        Some(policy_dir) => {
            let policies = DirPolicySource::start(
                policy_dir.clone(),
                args.default_action.into(),
                Some(args.policy_reload_interval),
                Arc::clone(&metrics),
            );
            let webhook = Webhook::new(Arc::new(engine), Arc::new(policies))
                .with_credentials(Arc::new(creds))
                .with_events(Arc::new(LogEventSink));
            (webhook, format!("directory {}", policy_dir.display()))
        }
        None => cluster_webhook(&args, engine, creds, &metrics).await?,
    };
    let webhook = webhook
        .with_kinds(kinds)
        .with_budget(args.budget)
        .with_pin_templates(args.pin_templates)
        .with_log_decisions(args.log_decisions.into());
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => ServingCert::Files {
            cert: cert.clone(),
            key: key.clone(),
            reload_interval: args.tls_reload_interval,
        },
        _ => ServingCert::SelfSigned {
            sans: args.tls_sans.clone(),
            ca_out: args.ca_out.clone(),
        },
    };
    let config = ServerConfig::new(args.listen, args.admin_listen, tls)
        .with_client_ca(args.client_ca.clone());
    preload
        .await
        .context("reading the system CA certificates")?;
    let webhook = Arc::new(webhook);
    let _warmer = webhook.spawn_warmer(args.notary_warm_connections);
    let server = start(&config, webhook)
        .await
        .context("starting the webhook")?;
    tracing::info!(
        listen = %server.addr,
        admin_listen = %server.admin_addr,
        policies = %origin,
        ca_out = %args.ca_out.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
        extra_kinds = %args.extra_kinds.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
        budget_ms = u64::try_from(args.budget.as_millis()).unwrap_or(u64::MAX),
        pin_templates = args.pin_templates,
        "trustgate serve started"
    );
    let handle = server.shutdown_handle();
    let serving = server.wait();
    tokio::pin!(serving);
    tokio::select! {
        result = &mut serving => {
            result.context("the webhook stopped")?;
            anyhow::bail!("the webhook stopped unexpectedly");
        }
        signal = shutdown_signal() => {
            tracing::info!(
                signal = signal?,
                timeout_s = args.shutdown_timeout.as_secs_f64(),
                open_connections = handle.connection_count(),
                "shutting down: draining in-flight requests"
            );
            handle.graceful(args.shutdown_timeout);
        }
    }
    serving.await.context("during shutdown")?;
    tracing::info!("trustgate serve stopped");
    Ok(ExitCode::SUCCESS)
}

/// Cluster mode's webhook: policies, credentials and events through the Kubernetes API.
async fn cluster_webhook(
    args: &ServeArgs,
    engine: Engine,
    creds: CliCredentials,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<(Webhook, String)> {
    let client = kube::Client::try_default().await.context(
        "cluster mode (no --policy-dir) needs a Kubernetes client: in-cluster config or KUBECONFIG",
    )?;
    let namespace = args
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| client.default_namespace().to_string());
    let policies = Arc::new(ClusterPolicySource::start(
        client.clone(),
        ClusterPolicyConfig {
            default_action: args.default_action.into(),
            ..ClusterPolicyConfig::default()
        },
        Arc::clone(metrics),
    ));
    let creds = Arc::new(creds);
    let credentials = Arc::new(
        SecretCredentials::new(client.clone(), &namespace, SecretConfig::default())
            .with_fallback(creds),
    );
    let events = Arc::new(KubeEventSink::start(
        client.clone(),
        EventConfig {
            events_for_admitted: args.events_for_admitted,
            ..EventConfig::default()
        },
        Arc::clone(metrics),
    ));
    if let Some(interval) = args.audit_interval {
        let audit = PeriodicAudit {
            client,
            engine: Engine::new(engine.config().clone(), Arc::new(SystemClock)),
            policies: policies.clone(),
            credentials: credentials.clone(),
            events: events.clone(),
            metrics: Arc::clone(metrics),
            interval,
        };
        tracing::info!(
            interval_s = interval.as_secs_f64(),
            "periodic audit of running pods enabled"
        );
        tokio::spawn(audit.run());
    }
    let webhook = Webhook::new(Arc::new(engine), policies)
        .with_request_credentials(credentials)
        .with_events(events);
    Ok((webhook, format!("cluster (own namespace {namespace})")))
}

/// `--audit-interval`: a number with `s`, `m` or `h` (seconds without a unit), 10 s to 24 h.
fn audit_interval(s: &str) -> Result<Duration, String> {
    let (number, unit) = match s.char_indices().last() {
        Some((i, 's')) => (&s[..i], 1.0),
        Some((i, 'm')) => (&s[..i], 60.0),
        Some((i, 'h')) => (&s[..i], 3600.0),
        _ => (s, 1.0),
    };
    let secs = number
        .parse::<f64>()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 600, 10m, 1h)"))?
        * unit;
    if !(10.0..=86_400.0).contains(&secs) {
        return Err(format!("{s:?} must be between 10s and 24h"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Resolves on SIGTERM or SIGINT with the signal's name.
async fn shutdown_signal() -> anyhow::Result<&'static str> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        _ = term.recv() => Ok("SIGTERM"),
        r = tokio::signal::ctrl_c() => {
            r.context("installing the SIGINT handler")?;
            Ok("SIGINT")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_intervals() {
        assert_eq!(audit_interval("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(audit_interval("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(audit_interval("90"), Ok(Duration::from_secs(90)));
        assert!(audit_interval("5s").is_err());
        assert!(audit_interval("25h").is_err());
        assert!(audit_interval("soon").is_err());
        assert!(audit_interval("").is_err());
    }
}

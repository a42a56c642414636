//! The command line: argument definitions and one function per subcommand. Exit status: 0 when
//! every image is admitted, 1 when at least one is rejected or unresolvable, 2 for usage or
//! configuration errors.

mod audit;
mod check;
mod credentials;
mod inspect;
mod manifests;
mod report;
mod resolve;
mod serve;
mod webhook;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

/// trustgate: admission control for Docker Content Trust.
#[derive(Debug, Parser)]
#[command(name = "trustgate", version, about)]
pub struct Args {
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true, env = "TRUSTGATE_LOG_FORMAT")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// Log line format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Output format of commands that print results.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Output {
    /// One line per image.
    Text,
    /// One JSON document.
    Json,
}

/// Registry access flags shared by commands that talk to registries.
#[derive(Debug, clap::Args)]
pub struct RegistryFlags {
    /// dockerconfigjson file with registry credentials (default ~/.docker/config.json if present).
    #[arg(long, value_name = "FILE")]
    pub registry_config: Option<PathBuf>,
    /// Extra CA bundle (PEM) trusted for registries.
    #[arg(long, value_name = "FILE")]
    pub registry_ca: Option<PathBuf>,
    /// Talk plain HTTP to registries (local registries only).
    #[arg(long)]
    pub plain_http: bool,
    /// Timeout for each registry resolution.
    #[arg(long, value_parser = humantime_secs, default_value = "5")]
    pub registry_timeout: Duration,
}

/// Notary server access flags (`check` takes the server from policies; `inspect` from a flag).
#[derive(Debug, clap::Args)]
pub struct NotaryFlags {
    /// Notary user name (default: from NOTARY_AUTH, base64 of user:pass, as the notary CLI).
    #[arg(long)]
    pub notary_user: Option<String>,
    /// Notary password (default: from NOTARY_AUTH).
    #[arg(long)]
    pub notary_password: Option<String>,
    /// A Notary server URL the login (--notary-user or NOTARY_AUTH) is for; repeatable (or
    /// comma-separated in TRUSTGATE_NOTARY_AUTH_SERVER). The login is sent to no other server.
    /// `serve` refuses a login without it; `check` binds the login to the only Notary server its
    /// policies name when it is not given (and refuses when they name several).
    #[arg(
        long = "notary-auth-server",
        value_name = "URL",
        env = "TRUSTGATE_NOTARY_AUTH_SERVER",
        value_delimiter = ','
    )]
    pub notary_auth_servers: Vec<String>,
    /// Timeout for each request to the Notary server (below the per-image deadline, so a hung
    /// server is reported as such rather than as a deadline).
    #[arg(long, value_parser = humantime_secs, default_value = "5")]
    pub notary_timeout: Duration,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Normalise image references and resolve their tags to digests from the registry.
    Resolve {
        /// Image references (`nginx`, `registry:5000/team/app:v1`, `...@sha256:...`).
        #[arg(required = true)]
        images: Vec<String>,
        #[command(flatten)]
        registry: RegistryFlags,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Apply exactly the webhook's decision to images. Exit status: 0 every image admitted
    /// (Warn and Audit count as admitted), 1 at least one rejected, 2 usage or configuration error.
    Check {
        /// A policy file (YAML, several documents allowed); repeatable.
        #[arg(long = "policy", value_name = "FILE")]
        policies: Vec<PathBuf>,
        /// A directory of policy files (*.yaml, *.yml); repeatable.
        #[arg(long = "policy-dir", value_name = "DIR")]
        policy_dirs: Vec<PathBuf>,
        /// Namespace of the workload (selects namespaced TrustPolicies).
        #[arg(long, default_value = "default")]
        namespace: String,
        /// Action for images no policy matches.
        #[arg(long, value_enum, default_value_t = DefaultAction::Deny)]
        default_action: DefaultAction,
        /// Time allowed to decide each image.
        #[arg(long, value_parser = humantime_secs, default_value = "8")]
        deadline: Duration,
        #[command(flatten)]
        registry: RegistryFlags,
        #[command(flatten)]
        notary: NotaryFlags,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
        /// Also print each verified reference in its pinned form, `name:tag@sha256:...` of the
        /// verified digest, as `serve`'s `/mutate` writes it (text: a `PINNED` line; JSON:
        /// `pinned`, null when not pinned).
        #[arg(long)]
        pin: bool,
        /// Image references.
        #[arg(required_unless_present = "files")]
        images: Vec<String>,
        /// Decide the images of the workloads in a manifest file (multi-document YAML or JSON,
        /// Lists; `-` reads stdin) instead of IMAGE arguments; repeatable. One result per image
        /// occurrence, with `object` and `location`.
        #[arg(short = 'f', long = "filename", value_name = "FILE")]
        files: Vec<PathBuf>,
        /// With -f: a further kind carrying a pod template (`group/Kind=spec.template.spec`),
        /// as `serve --extra-kind`; repeatable.
        #[arg(long = "extra-kind", value_name = "GROUP/KIND=PATH")]
        extra_kinds: Vec<trustgate::admission::ExtraKind>,
    },
    /// Run the admission webhook: HTTPS `POST /validate` (and `POST /mutate`, which pins
    /// verified tags to tag@digest) on --listen, `/healthz`, `/readyz`
    /// and `/metrics` on --admin-listen, policies from --policy-dir.
    Serve(Box<serve::ServeArgs>),
    /// Decide the images of the cluster's running Pods against its policies (or --policy-dir);
    /// exit status 1 when any image would be rejected.
    Audit(audit::AuditArgs),
    /// Print the CRDs (TrustPolicy, ClusterTrustPolicy) that `crds/` holds.
    Crdgen,
    /// Register, unregister or probe the webhook (the Helm chart's hooks and `helm test`).
    #[command(subcommand)]
    Webhook(webhook::WebhookCommand),
    /// List the Notation and cosign signatures attached to the image's digest (attached, not
    /// verified: format, manifest digest, signer certificate or key ID, signed digest); with
    /// --notary-url, first the repository's verified Notary v1 trust data: root key IDs and
    /// public keys to pin, role thresholds, delegations with their keys, and the signed tags
    /// with digests and roles (the root is trusted on first use; it must still meet its own
    /// threshold).
    Inspect {
        /// Notary server URL, e.g. https://notary.example.com:4443 (omit to list only the
        /// Notation and cosign signatures).
        #[arg(long)]
        notary_url: Option<String>,
        /// Extra CA bundle (PEM) for the Notary server and its token service.
        #[arg(long, value_name = "FILE")]
        ca: Option<PathBuf>,
        /// Repository (GUN) override; default: the image's normalised repository.
        #[arg(long)]
        gun: Option<String>,
        #[command(flatten)]
        notary: NotaryFlags,
        #[command(flatten)]
        registry: RegistryFlags,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
        /// Image reference (its tag is resolved as `docker trust` would, and on the registry
        /// for the Notation and cosign signatures).
        image: String,
    },
}

/// `--default-action` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DefaultAction {
    /// Admit images no policy matches.
    #[value(name = "Allow", alias = "allow")]
    Allow,
    /// Reject images no policy matches.
    #[value(name = "Deny", alias = "deny")]
    Deny,
}

impl From<DefaultAction> for trustgate::policy::Action {
    fn from(a: DefaultAction) -> Self {
        match a {
            DefaultAction::Allow => trustgate::policy::Action::Allow,
            DefaultAction::Deny => trustgate::policy::Action::Deny,
        }
    }
}

fn humantime_secs(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .trim_end_matches('s')
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(secs > 0.0 && secs <= 3600.0) {
        return Err(format!("{s:?} must be between 0 and 3600 seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Sets up `tracing` on stderr, filtered by `RUST_LOG` (default `info`). Lines go through a
/// background writer thread (`tracing-appender`'s non-blocking writer), so a request thread
/// only formats its line and queues it. The queue is lossless: when it is full (128,000 lines
/// behind a stalled stderr) the logging thread waits instead of dropping audit lines. Keep the
/// returned guard alive until exit: dropping it flushes the queue.
pub fn init_logging(format: LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("trustgate-log")
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    guard
}

/// Runs one subcommand and returns the process exit status.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Resolve {
            images,
            registry,
            output,
        } => resolve::run(&images, &registry, output).await,
        Command::Check {
            policies,
            policy_dirs,
            namespace,
            default_action,
            deadline,
            registry,
            notary,
            output,
            pin,
            images,
            files,
            extra_kinds,
        } => {
            let args = check::CheckArgs {
                files,
                extra_kinds,
                pin,
                policies,
                policy_dirs,
                namespace,
                output,
                default_action: default_action.into(),
                deadline,
                images,
            };
            check::run(args, &registry, &notary).await
        }
        Command::Serve(args) => serve::run(*args).await,
        Command::Webhook(cmd) => webhook::run(cmd).await,
        Command::Audit(args) => audit::run(args).await,
        Command::Crdgen => {
            print!("{}", trustgate::policy::crd_yaml()?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Inspect {
            notary_url,
            ca,
            gun,
            notary,
            registry,
            output,
            image,
        } => {
            let args = inspect::InspectArgs {
                notary_url: notary_url.as_deref(),
                ca: ca.as_deref(),
                gun,
                output,
                image: &image,
            };
            inspect::run(args, &notary, &registry).await
        }
    }
}

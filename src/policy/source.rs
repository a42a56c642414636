//! Where `trustgate serve` gets its policies: the [`PolicySource`] seam. [`DirPolicySource`]
//! reads a directory of YAML files (`serve --policy-dir DIR`) and reloads it when it changes;
//! [`StaticPolicySource`] holds a fixed set (tests, benchmarks). Cluster mode (reflectors on
//! `TrustPolicy` / `ClusterTrustPolicy`) implements the same trait.
//!
//! Directory reloading polls: every interval the directory's policy files (the same selection
//! as [`policy_files_in`]: `*.yaml` / `*.yml`, not dot-files, symlinks followed, so a mounted
//! ConfigMap's `..data` swap is seen) are fingerprinted by name, size, modification time and
//! content hash. A changed fingerprint loads the whole set again; a load that fails keeps the
//! previous set in force, logs the error once per distinct content and counts
//! `trustgate_policy_reload_errors_total`. Until the first successful load the source is not
//! ready ([`PolicySource::current`] is `None`) and every tick retries.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, UNIX_EPOCH};

use sha2::{Digest as _, Sha256};

use crate::metrics::{Metrics, PolicyGauge};

use super::crd::Action;
use super::load::{LoadError, load_policy_set, policy_files_in};
use super::matcher::PolicySet;

/// The `trustgate_policies` gauge items of `set`: one per loaded policy.
pub fn policy_gauges(set: &PolicySet) -> impl Iterator<Item = PolicyGauge> + '_ {
    set.iter().map(|p| PolicyGauge {
        kind: p.id.kind(),
        action: p.action().as_str(),
        mode: p.mode().as_str(),
        ready: p.problem().is_none(),
    })
}

/// A source of the policy set in force.
pub trait PolicySource: Send + Sync {
    /// The current policy set; `None` while none has been loaded (not ready).
    fn current(&self) -> Option<Arc<PolicySet>>;

    /// Why the source is not ready or could not reload, if it knows (for `/readyz` and logs).
    fn problem(&self) -> Option<String> {
        None
    }
}

/// A fixed policy set (or none: never ready).
#[derive(Debug, Clone, Default)]
pub struct StaticPolicySource(pub Option<Arc<PolicySet>>);

impl StaticPolicySource {
    /// A source that always answers `set`.
    pub fn new(set: PolicySet) -> StaticPolicySource {
        StaticPolicySource(Some(Arc::new(set)))
    }
}

impl PolicySource for StaticPolicySource {
    fn current(&self) -> Option<Arc<PolicySet>> {
        self.0.clone()
    }
}

/// State shared between a [`DirPolicySource`] and its polling task.
#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    default_action: Action,
    metrics: Arc<Metrics>,
    current: RwLock<Option<Arc<PolicySet>>>,
    /// Fingerprint of the content in force, and of the last content that failed to load.
    seen: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    loaded: Option<[u8; 32]>,
    failed: Option<([u8; 32], String)>,
}

/// Policies from a directory of YAML files, reloaded on change (see the module docs).
#[derive(Debug)]
pub struct DirPolicySource {
    shared: Arc<Shared>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl DirPolicySource {
    /// Loads `dir` once now (a failure is logged and leaves the source not ready) and, when
    /// `interval` is `Some`, starts a task on the current tokio runtime that polls it. The
    /// task stops when the source is dropped.
    pub fn start(
        dir: impl Into<PathBuf>,
        default_action: Action,
        interval: Option<Duration>,
        metrics: Arc<Metrics>,
    ) -> DirPolicySource {
        let shared = Arc::new(Shared {
            dir: dir.into(),
            default_action,
            metrics,
            current: RwLock::new(None),
            seen: Mutex::new(Seen::default()),
        });
        shared.poll();
        let task = interval.map(|every| {
            let shared = Arc::clone(&shared);
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(every);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                ticks.tick().await;
                loop {
                    ticks.tick().await;
                    let shared = Arc::clone(&shared);
                    // File reads and YAML parsing are blocking work.
                    if let Err(e) = tokio::task::spawn_blocking(move || shared.poll()).await {
                        tracing::error!(error = %e, "policy reload task failed");
                    }
                }
            })
        });
        DirPolicySource { shared, task }
    }

    /// Checks the directory once now and reloads if it changed (what the task does each tick).
    pub fn poll_now(&self) {
        self.shared.poll();
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }
}

impl Drop for DirPolicySource {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl PolicySource for DirPolicySource {
    fn current(&self) -> Option<Arc<PolicySet>> {
        self.shared
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn problem(&self) -> Option<String> {
        let seen = self
            .shared
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        seen.failed.as_ref().map(|(_, why)| why.clone())
    }
}

impl Shared {
    /// One poll: fingerprint, and load when the content changed (or nothing is loaded yet).
    fn poll(&self) {
        let fingerprint = match fingerprint(&self.dir) {
            Ok(f) => f,
            Err(e) => {
                self.failed(None, &e.to_string());
                return;
            }
        };
        {
            let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
            if seen.loaded == Some(fingerprint) {
                return;
            }
            let ready = seen.loaded.is_some();
            if ready && seen.failed.as_ref().is_some_and(|(f, _)| *f == fingerprint) {
                return;
            }
        }
        match load_policy_set(&[], std::slice::from_ref(&self.dir)) {
            Ok(set) => {
                let set = set.with_default_action(self.default_action);
                let count = set.len();
                self.metrics.state.policies_loaded(policy_gauges(&set));
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(set));
                let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
                let first = seen.loaded.is_none();
                seen.loaded = Some(fingerprint);
                seen.failed = None;
                drop(seen);
                self.metrics.policy_reloads.inc();
                tracing::info!(
                    dir = %self.dir.display(),
                    policies = count,
                    "{}",
                    if first { "policies loaded" } else { "policies reloaded" }
                );
            }
            Err(e) => self.failed(Some(fingerprint), &e.to_string()),
        }
    }

    /// Records a failed load of content `fingerprint` (`None`: the directory could not even be
    /// read). Logged and counted once per distinct content and message.
    fn failed(&self, fingerprint: Option<[u8; 32]>, why: &str) {
        let key = fingerprint.unwrap_or([0; 32]);
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let ready = seen.loaded.is_some();
        let repeated = seen
            .failed
            .as_ref()
            .is_some_and(|(f, w)| *f == key && w == why);
        seen.failed = Some((key, why.to_string()));
        drop(seen);
        if repeated {
            return;
        }
        self.metrics.policy_reload_errors.inc();
        if ready {
            tracing::error!(
                dir = %self.dir.display(),
                error = %why,
                "policy reload failed; the previous policies stay in force"
            );
        } else {
            tracing::error!(
                dir = %self.dir.display(),
                error = %why,
                "cannot load policies; not ready, retrying"
            );
        }
    }
}

/// SHA-256 over the names, sizes, modification times and contents of the policy files of `dir`.
fn fingerprint(dir: &Path) -> Result<[u8; 32], LoadError> {
    let mut hash = Sha256::new();
    for path in policy_files_in(dir)? {
        let read_error = |error| LoadError::Read {
            path: path.clone(),
            error,
        };
        let meta = std::fs::metadata(&path).map_err(read_error)?;
        let content = std::fs::read(&path).map_err(read_error)?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let name = path.as_os_str().as_encoded_bytes();
        hash.update((name.len() as u64).to_le_bytes());
        hash.update(name);
        hash.update(meta.len().to_le_bytes());
        hash.update(mtime.to_le_bytes());
        hash.update(Sha256::digest(&content));
    }
    Ok(hash.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::reference::ImageRef;
    use crate::policy::matcher::Selection;

    fn policy(name: &str, image: &str, action: &str) -> String {
        format!(
            "apiVersion: trustgate.dev/v1alpha1\nkind: ClusterTrustPolicy\nmetadata: {{name: {name}}}\nspec:\n  images: [\"{image}\"]\n  action: {action}\n"
        )
    }

    fn decides(source: &dyn PolicySource, image: &str) -> Option<String> {
        let set = source.current()?;
        let image = ImageRef::parse(image).ok()?;
        Some(match set.select("default", &image) {
            Selection::Default(a) => format!("default {a:?}"),
            Selection::Policy { policy, .. } => policy.id.to_string(),
            Selection::Both { cluster, .. } => format!("{} (tighten)", cluster.id),
        })
    }

    #[tokio::test]
    async fn loads_reloads_and_keeps_the_previous_set_on_a_bad_edit() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.yaml");
        let metrics = Arc::new(Metrics::new());
        // Not ready while the directory holds a broken file.
        std::fs::write(&file, "kind: [").unwrap();
        let src = DirPolicySource::start(dir.path(), Action::Deny, None, Arc::clone(&metrics));
        assert!(src.current().is_none());
        assert!(src.problem().is_some());
        assert_eq!(metrics.policy_reload_errors.get(), 1);
        src.poll_now();
        assert_eq!(
            metrics.policy_reload_errors.get(),
            1,
            "same content: counted once"
        );

        std::fs::write(&file, policy("a", "example.com/a/**", "Allow")).unwrap();
        src.poll_now();
        assert_eq!(decides(&src, "example.com/a/x:1").as_deref(), Some("a"));
        assert_eq!(
            decides(&src, "example.com/b/x:1").as_deref(),
            Some("default Deny")
        );
        assert!(src.problem().is_none());

        std::fs::write(&file, "apiVersion: nope\n").unwrap();
        src.poll_now();
        assert_eq!(decides(&src, "example.com/a/x:1").as_deref(), Some("a"));
        assert_eq!(metrics.policy_reload_errors.get(), 2);

        std::fs::write(&file, policy("b", "example.com/b/**", "Deny")).unwrap();
        src.poll_now();
        assert_eq!(decides(&src, "example.com/b/x:1").as_deref(), Some("b"));
        assert_eq!(metrics.policy_reloads.get(), 2);
    }

    #[test]
    fn static_source() {
        assert!(StaticPolicySource::default().current().is_none());
        let src = StaticPolicySource::new(PolicySet::new(Action::Allow));
        assert_eq!(
            src.current().map(|s| s.default_action()),
            Some(Action::Allow)
        );
    }
}

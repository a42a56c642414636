//! The caches of the decision engine (issue 5): what is cached, under which key, for how long.
//!
//! Three caches sit in front of the network, each a bounded `moka::future::Cache` whose entries
//! carry their own time to live (positive answers live for the cache's TTL, failures only for
//! `negative_ttl`). Concurrent misses for one key share one computation (moka's single flight:
//! the first caller computes, the others wait for its value), so a burst of admissions of a new
//! image makes one registry request and one fetch per metadata file. Every lookup counts in
//! `trustgate_cache_requests_total{cache,result}` (`cache` = `digest`, `trust` or `decision`).
//!
//! 1. **Digests** (`DigestCache`): tag to digest. Key: sha256 of the registry options (CA
//!    bundle, plain HTTP, timeout), the credentials (variant and secret, so different
//!    credentials never share an answer) and the normalised reference. TTL `digest_ttl` (30 s):
//!    a re-pushed tag is seen at most that late. References with a digest never get here.
//! 2. **Trust data** (`TrustCache`): the verified `TrustData` of one repository. Key: sha256 of
//!    the source identity (Notary URL, CA bundle, Notary credentials, timeout), the GUN and the
//!    trust options (pinned roots, pinning threshold, revoked keys: `TrustOptions::fingerprint`).
//!    TTL `trust_ttl` (30 s), cut short by the earliest expiry in the data (root, timestamp,
//!    snapshot, targets, valid delegations, root certificates). A hit is also re-checked against
//!    the injected clock, so data is never used past its expiry even if the clock jumps. After
//!    the TTL the `Updater` refreshes cheaply: it re-uses the trusted root (for `root_ttl`, 5 min)
//!    and fetches `timestamp.json` only; snapshot, targets and delegations are fetched again only
//!    when the hashes listed for them changed (content-addressed reuse in `notary::reuse`, with
//!    versions and expiry re-checked on every load).
//! 3. **Decisions** (`DecisionCache`): the outcome of verifying one digest under one policy.
//!    Consulted only once the digest is known: pinned in the reference, or resolved (through the
//!    digest cache), so a re-pushed tag is always re-resolved first and lands on a new key. Key:
//!    sha256 of the policy fingerprint (its `PolicyId` with generation and uid, and its spec), the
//!    normalised reference, the digest and the Notary source identity. An entry remembers which
//!    trust-data entry (key and serial number) it was computed from and is used only while that
//!    very entry is still current and unexpired, so a decision is never staler than the trust
//!    data; `decision_ttl` bounds how long it is kept at all. Only decisions computed from trust
//!    data are kept; errors before that (registry, Notary) are cached by the layers below.
//!
//! 4. **Signature artifacts** (`SignatureCache`): the Notation and cosign artifacts attached to
//!    a digest, per registry set-up, credentials, repository, digest and format, kept for
//!    `digest_ttl` (failures `negative_ttl`). Bounded in bytes, not only in entries: an entry
//!    weighs what its artifacts hold (envelopes, annotations, names), and all entries together at
//!    most `signature_max_bytes` (64 MiB); the least used are evicted first.
//!
//! Nothing is invalidated explicitly: a changed policy has a new fingerprint, changed credentials
//! a new source identity, a changed tag a new digest (after `digest_ttl`), new trust data a new
//! serial (after `trust_ttl`). Memory is bounded by the `*_max_entries` fields and, for
//! signature artifacts, `signature_max_bytes`.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use moka::Expiry;
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use crate::clock::Clock;
use crate::image::credentials::Credentials;
use crate::image::reference::{Digest, ImageRef};
use crate::image::registry::{RegistryError, RegistryOptions};
use crate::metrics::Metrics;
use crate::notary::source::MetadataSource;
use crate::notary::updater::{Reuse, TrustOptions, Updater};
use crate::notary::verify::VerifyError;
use crate::notary::view::TrustData;

mod signatures;
pub use signatures::SignatureCache;

/// Every TTL and bound of the engine's caches. A TTL of zero keeps nothing (concurrent misses
/// still share one computation); a bound of zero keeps nothing either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// How long a resolved tag-to-digest answer is used (default 30 s).
    pub digest_ttl: Duration,
    /// Most digests kept (default 10,000).
    pub digest_max_entries: u64,
    /// How long verified trust data is used before `timestamp.json` is fetched again (default
    /// 30 s; never past the earliest expiry in the data).
    pub trust_ttl: Duration,
    /// Most repositories' trust data kept (default 1,000).
    pub trust_max_entries: u64,
    /// Upper bound on how long a decision is kept (default 30 s); it is dropped earlier when the
    /// trust data it came from is refreshed.
    pub decision_ttl: Duration,
    /// Most decisions kept (default 10,000).
    pub decision_max_entries: u64,
    /// How long a failure (registry or Notary error, failed verification) is remembered before
    /// the next attempt (default 5 s).
    pub negative_ttl: Duration,
    /// Most verified metadata files (snapshot, targets, delegations) kept for refreshes, over all
    /// repositories (default 4,096).
    pub file_max_entries: u64,
    /// How long a trusted root is re-used without fetching `root.json` again (default 5 min; a
    /// root change is noticed sooner through the snapshot's root hash).
    pub root_ttl: Duration,
    /// Most trusted roots kept (default 1,024).
    pub root_max_entries: u64,
    /// Most HTTP clients kept, each with its connections and tokens: Notary sources (per URL,
    /// CA and credentials) and registry clients (per options and credentials); default 256 each.
    pub client_max_entries: u64,
    /// Most bytes of fetched Notation and cosign signature artifacts kept, over all digests
    /// (default 64 MiB). Every entry weighs at least `signature_max_bytes /
    /// digest_max_entries`, so no more than `digest_max_entries` entries are kept either.
    pub signature_max_bytes: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            digest_ttl: Duration::from_secs(30),
            digest_max_entries: 10_000,
            trust_ttl: Duration::from_secs(30),
            trust_max_entries: 1_000,
            decision_ttl: Duration::from_secs(30),
            decision_max_entries: 10_000,
            negative_ttl: Duration::from_secs(5),
            file_max_entries: 4_096,
            root_ttl: Duration::from_secs(300),
            root_max_entries: 1_024,
            client_max_entries: 256,
            signature_max_bytes: 64 * 1024 * 1024,
        }
    }
}

impl CacheConfig {
    /// The `Updater`'s share: kept files and roots.
    pub fn reuse(&self) -> Reuse {
        Reuse {
            max_files: self.file_max_entries,
            max_roots: self.root_max_entries,
            root_ttl: self.root_ttl,
        }
    }
}

/// A cache key: a sha256.
pub type Key = [u8; 32];

/// Builds a [`Key`] from length-prefixed parts under a domain name, so keys of different kinds
/// or with shifted part boundaries never collide.
#[derive(Debug, Clone)]
pub struct KeyBuilder(Sha256);

impl KeyBuilder {
    /// Starts a key of kind `domain`.
    pub fn new(domain: &str) -> KeyBuilder {
        KeyBuilder(Sha256::new()).part(domain.as_bytes())
    }

    /// Adds one part.
    pub fn part(mut self, bytes: &[u8]) -> KeyBuilder {
        self.0.update((bytes.len() as u64).to_be_bytes());
        self.0.update(bytes);
        self
    }

    /// Adds an optional part (absent and empty differ).
    pub fn opt(self, bytes: Option<&[u8]>) -> KeyBuilder {
        match bytes {
            None => self.part(b"none"),
            Some(b) => self.part(b"some").part(b),
        }
    }

    /// Adds a duration.
    pub fn duration(self, d: Duration) -> KeyBuilder {
        self.part(&d.as_nanos().to_be_bytes())
    }

    /// Adds registry credentials (the variant and every field).
    pub fn credentials(self, c: &Credentials) -> KeyBuilder {
        match c {
            Credentials::Anonymous => self.part(b"anonymous"),
            Credentials::Basic { username, password } => self
                .part(b"basic")
                .part(username.as_bytes())
                .part(password.as_bytes()),
            Credentials::Bearer(token) => self.part(b"bearer").part(token.as_bytes()),
        }
    }

    /// The key.
    pub fn finish(self) -> Key {
        self.0.finalize().into()
    }
}

/// A cached value with its own time to live.
#[derive(Debug, Clone)]
struct Timed<T> {
    value: T,
    ttl: Duration,
}

/// Entries expire `ttl` after they were written.
struct TtlOfValue;

impl<K, T> Expiry<K, Timed<T>> for TtlOfValue {
    fn expire_after_create(&self, _: &K, value: &Timed<T>, _: Instant) -> Option<Duration> {
        Some(value.ttl)
    }

    fn expire_after_update(
        &self,
        _: &K,
        value: &Timed<T>,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

fn timed_cache<T: Clone + Send + Sync + 'static>(max: u64) -> moka::future::Cache<Key, Timed<T>> {
    moka::future::Cache::builder()
        .max_capacity(max)
        .expire_after(TtlOfValue)
        .build()
}

/// Tag-to-digest answers (see the module docs).
#[derive(Debug)]
pub struct DigestCache {
    entries: moka::future::Cache<Key, Timed<Result<Digest, RegistryError>>>,
    ttl: Duration,
    negative_ttl: Duration,
}

impl DigestCache {
    /// An empty cache sized by `config`.
    pub fn new(config: &CacheConfig) -> DigestCache {
        DigestCache {
            entries: timed_cache(config.digest_max_entries),
            ttl: config.digest_ttl,
            negative_ttl: config.negative_ttl,
        }
    }

    /// The key of `image` resolved with `options` and `credentials`.
    pub fn key(image: &ImageRef, options: &RegistryOptions, credentials: &Credentials) -> Key {
        KeyBuilder::new("digest")
            .opt(options.ca_pem.as_deref())
            .part(&[u8::from(options.plain_http)])
            .duration(options.timeout)
            .credentials(credentials)
            .part(image.normalized().as_bytes())
            .finish()
    }

    /// Whether an answer (or a resolution under way) is kept for `key`.
    pub fn contains(&self, key: &Key) -> bool {
        self.entries.contains_key(key)
    }

    /// The cached answer for `key`, or the answer of `resolve` (run by one caller at a time).
    pub async fn resolve(
        &self,
        key: Key,
        resolve: impl Future<Output = Result<Digest, RegistryError>>,
        metrics: &Metrics,
    ) -> Result<Digest, RegistryError> {
        let entry = self
            .entries
            .entry(key)
            .or_insert_with(async {
                let value = resolve.await;
                let ttl = if value.is_ok() {
                    self.ttl
                } else {
                    self.negative_ttl
                };
                Timed { value, ttl }
            })
            .await;
        metrics.cache("digest", !entry.is_fresh());
        entry.into_value().value
    }
}

/// Verified trust data as the trust cache holds it.
#[derive(Debug)]
pub struct TrustEntry {
    /// The verified view.
    pub data: TrustData,
    /// The earliest expiry in the data: not used after it.
    pub valid_until: OffsetDateTime,
    /// Distinguishes successive loads of one key (decisions remember it).
    pub serial: u64,
    /// Earliest expiry per role class (`root`, `timestamp`, `snapshot`, `targets`,
    /// `delegation`), for `trustgate_trust_data_expiry_timestamp_seconds`.
    pub expiries: Vec<(&'static str, OffsetDateTime)>,
}

/// The expiries of `loaded` per role class (delegations: the earliest valid one).
fn role_expiries(loaded: &crate::notary::updater::Loaded) -> Vec<(&'static str, OffsetDateTime)> {
    let data = &loaded.data;
    let mut out = vec![
        ("root", data.root().expires),
        ("timestamp", loaded.timestamp_expires),
        ("snapshot", loaded.snapshot_expires),
    ];
    if let Some(at) = data
        .role(crate::notary::schema::TARGETS)
        .and_then(|r| r.expires)
    {
        out.push(("targets", at));
    }
    if let Some(at) = data
        .roles()
        .iter()
        .filter(|r| r.name != crate::notary::schema::TARGETS)
        .filter(|r| r.status == crate::notary::view::RoleStatus::Valid)
        .filter_map(|r| r.expires)
        .min()
    {
        out.push(("delegation", at));
    }
    out
}

/// Verified trust data per repository, source and trust options, over an `Updater` that
/// re-uses files between loads (see the module docs).
#[derive(Debug)]
pub struct TrustCache {
    updater: Updater,
    entries: moka::future::Cache<Key, Timed<Result<Arc<TrustEntry>, VerifyError>>>,
    clock: Arc<dyn Clock>,
    ttl: Duration,
    negative_ttl: Duration,
    serial: AtomicU64,
}

impl TrustCache {
    /// An empty cache over a new `Updater` reading time from `clock`.
    pub fn new(clock: Arc<dyn Clock>, config: &CacheConfig) -> TrustCache {
        TrustCache {
            updater: Updater::new(clock.clone()).with_reuse(config.reuse()),
            entries: timed_cache(config.trust_max_entries),
            clock,
            ttl: config.trust_ttl,
            negative_ttl: config.negative_ttl,
            serial: AtomicU64::new(0),
        }
    }

    /// The earliest expiry per role class over the cached, verified entries, as the metrics
    /// ask for it at every scrape.
    pub fn expiry_source(&self) -> crate::metrics::TrustExpirySource {
        let entries = self.entries.clone();
        Arc::new(move || {
            let mut earliest: Vec<(&'static str, OffsetDateTime)> = Vec::new();
            for (_, timed) in entries.iter() {
                let Ok(entry) = &timed.value else { continue };
                for &(role, at) in &entry.expiries {
                    match earliest.iter_mut().find(|(r, _)| *r == role) {
                        Some((_, e)) if *e <= at => {}
                        Some((_, e)) => *e = at,
                        None => earliest.push((role, at)),
                    }
                }
            }
            #[allow(clippy::cast_precision_loss)]
            earliest
                .into_iter()
                .map(|(role, at)| (role, at.unix_timestamp() as f64))
                .collect()
        })
    }

    /// The updater (its version memory spans every load).
    pub fn updater(&self) -> &Updater {
        &self.updater
    }

    /// The key of `gun` from the source identified by `source_id`, verified under `opts`.
    pub fn key(source_id: &Key, gun: &str, opts: &TrustOptions) -> Key {
        TrustCache::key_of(source_id, gun, &opts.fingerprint())
    }

    /// As [`TrustCache::key`], with the options' fingerprint computed beforehand (a compiled
    /// policy keeps it).
    pub fn key_of(source_id: &Key, gun: &str, trust_fingerprint: &[u8; 32]) -> Key {
        KeyBuilder::new("trust")
            .part(source_id)
            .part(gun.as_bytes())
            .part(trust_fingerprint)
            .finish()
    }

    /// The trust data for `key`: cached and unexpired, or loaded from `source` by one caller
    /// while concurrent callers wait for its result. Failures are kept for `negative_ttl`.
    pub async fn load<S: MetadataSource>(
        &self,
        source: &S,
        key: Key,
        gun: &str,
        opts: &TrustOptions,
        metrics: &Metrics,
    ) -> Result<Arc<TrustEntry>, VerifyError> {
        let now = self.clock.now();
        let entry = self
            .entries
            .entry(key)
            .or_insert_with_if(
                self.fill(source, gun, opts),
                move |kept| matches!(&kept.value, Ok(t) if t.valid_until < now),
            )
            .await;
        metrics.cache("trust", !entry.is_fresh());
        entry.into_value().value
    }

    async fn fill<S: MetadataSource>(
        &self,
        source: &S,
        gun: &str,
        opts: &TrustOptions,
    ) -> Timed<Result<Arc<TrustEntry>, VerifyError>> {
        match self.updater.load_with_expiry(source, gun, opts).await {
            Ok(loaded) => {
                let left = loaded.valid_until - self.clock.now();
                let left = Duration::try_from(left).unwrap_or(Duration::ZERO);
                Timed {
                    ttl: self.ttl.min(left),
                    value: Ok(Arc::new(TrustEntry {
                        expiries: role_expiries(&loaded),
                        data: loaded.data,
                        valid_until: loaded.valid_until,
                        serial: self.serial.fetch_add(1, Ordering::Relaxed) + 1,
                    })),
                }
            }
            Err(e) => Timed {
                value: Err(e),
                ttl: self.negative_ttl,
            },
        }
    }

    /// The serial of the current, unexpired trust data for `key`, if there is any.
    pub async fn current_serial(&self, key: &Key) -> Option<u64> {
        let now = self.clock.now();
        match self.entries.get(key).await?.value {
            Ok(t) if t.valid_until >= now => Some(t.serial),
            _ => None,
        }
    }
}

/// A decision outcome and the trust data it was computed from.
#[derive(Debug)]
struct Kept<V> {
    value: V,
    /// The trust-data entry the value came from and its serial; `None` for a value that used
    /// no Notary trust data (a policy evaluating only Notation or cosign signatures).
    trust: Option<(Key, u64)>,
}

/// Decision outcomes per policy, reference, digest and source (see the module docs).
pub struct DecisionCache<V> {
    entries: moka::future::Cache<Key, Timed<Arc<Kept<V>>>>,
    ttl: Duration,
}

impl<V> std::fmt::Debug for DecisionCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionCache")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl<V: Clone + Send + Sync + 'static> DecisionCache<V> {
    /// An empty cache sized by `config`.
    pub fn new(config: &CacheConfig) -> DecisionCache<V> {
        DecisionCache {
            entries: timed_cache(config.decision_max_entries),
            ttl: config.decision_ttl,
        }
    }

    /// The key of the decision for `reference` at `digest` under the policy with fingerprint
    /// `policy`, with trust data from the source identified by `source_id`.
    pub fn key(policy: &Key, reference: &str, digest: &Digest, source_id: &Key) -> Key {
        KeyBuilder::new("decision")
            .part(policy)
            .part(reference.as_bytes())
            .part(digest.to_string().as_bytes())
            .part(source_id)
            .finish()
    }

    /// The kept outcome for `key`, if the trust data it came from is still current in `trust`.
    pub async fn get(&self, key: &Key, trust: &TrustCache, metrics: &Metrics) -> Option<V> {
        let hit = match self.entries.get(key).await {
            Some(kept) => {
                let kept = kept.value;
                match &kept.trust {
                    None => Some(kept.value.clone()),
                    Some((trust_key, serial)) => (trust.current_serial(trust_key).await
                        == Some(*serial))
                    .then(|| kept.value.clone()),
                }
            }
            None => None,
        };
        metrics.cache("decision", hit.is_some());
        hit
    }

    /// Keeps `value`, computed from the trust-data entry `trust_key` with serial `serial`.
    pub async fn insert(&self, key: Key, value: V, trust_key: Key, serial: u64) {
        self.keep(key, value, Some((trust_key, serial))).await;
    }

    /// Keeps `value`, computed without Notary trust data (it lives for the decision TTL).
    pub async fn insert_untied(&self, key: Key, value: V) {
        self.keep(key, value, None).await;
    }

    async fn keep(&self, key: Key, value: V, trust: Option<(Key, u64)>) {
        let kept = Arc::new(Kept { value, trust });
        self.entries
            .insert(
                key,
                Timed {
                    value: kept,
                    ttl: self.ttl,
                },
            )
            .await;
    }
}

#[cfg(test)]
mod trust_tests;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::str::FromStr;
    use std::sync::atomic::AtomicUsize;

    use super::*;

    fn digest(c: char) -> Digest {
        Digest::from_str(&format!("sha256:{}", c.to_string().repeat(64))).unwrap()
    }

    fn short() -> CacheConfig {
        CacheConfig {
            digest_ttl: Duration::from_secs(1),
            ..CacheConfig::default()
        }
    }

    #[test]
    fn keys_separate_credentials_options_and_references() {
        let image = ImageRef::parse("registry.example/app:v1").unwrap();
        let other = ImageRef::parse("registry.example/app:v2").unwrap();
        let opts = RegistryOptions::default();
        let anon = DigestCache::key(&image, &opts, &Credentials::Anonymous);
        let basic = |p: &str| Credentials::Basic {
            username: "u".into(),
            password: p.into(),
        };
        assert_ne!(anon, DigestCache::key(&image, &opts, &basic("a")));
        assert_ne!(
            DigestCache::key(&image, &opts, &basic("a")),
            DigestCache::key(&image, &opts, &basic("b"))
        );
        assert_ne!(
            anon,
            DigestCache::key(&other, &opts, &Credentials::Anonymous)
        );
        let plain = RegistryOptions {
            plain_http: true,
            ..opts.clone()
        };
        assert_ne!(
            anon,
            DigestCache::key(&image, &plain, &Credentials::Anonymous)
        );
        assert_eq!(
            anon,
            DigestCache::key(&image, &opts, &Credentials::Anonymous)
        );
        // Part boundaries matter.
        assert_ne!(
            KeyBuilder::new("x").part(b"ab").part(b"c").finish(),
            KeyBuilder::new("x").part(b"a").part(b"bc").finish()
        );
    }

    /// 1,000 concurrent misses resolve once; the answer is kept for the TTL; after it a re-pushed
    /// tag's new digest is seen.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn digests_single_flight_ttl_and_repush() {
        let cache = Arc::new(DigestCache::new(&short()));
        let metrics = Arc::new(Metrics::new());
        let calls = Arc::new(AtomicUsize::new(0));
        let served = Arc::new(std::sync::Mutex::new(digest('a')));
        let resolve = |cache: Arc<DigestCache>| {
            let (calls, served, metrics) = (calls.clone(), served.clone(), metrics.clone());
            async move {
                let fetch = async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok(served.lock().unwrap().clone())
                };
                cache.resolve([7; 32], fetch, &metrics).await
            }
        };
        let all: Vec<_> = (0..1000)
            .map(|_| tokio::spawn(resolve(cache.clone())))
            .collect();
        for task in all {
            assert_eq!(task.await.unwrap().unwrap(), digest('a'));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let text = metrics.encode();
        assert!(
            text.contains(r#"cache="digest",outcome="miss"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"cache="digest",outcome="hit"} 999"#),
            "{text}"
        );

        // Re-push: the registry now serves b; the cached a is used until the TTL passes.
        *served.lock().unwrap() = digest('b');
        assert_eq!(resolve(cache.clone()).await.unwrap(), digest('a'));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(resolve(cache.clone()).await.unwrap(), digest('b'));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    /// A failure is answered from the cache until `negative_ttl`, then retried; a success after
    /// that is kept for the positive TTL.
    #[tokio::test]
    async fn digest_failures_are_kept_briefly() {
        let config = CacheConfig {
            digest_ttl: Duration::from_secs(60),
            negative_ttl: Duration::from_millis(200),
            ..CacheConfig::default()
        };
        let cache = DigestCache::new(&config);
        let metrics = Metrics::new();
        let calls = AtomicUsize::new(0);
        let fail = AtomicU64::new(1);
        let attempt = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            if fail.load(Ordering::SeqCst) == 1 {
                Err(RegistryError::Connect {
                    registry: "r".into(),
                    detail: "refused".into(),
                })
            } else {
                Ok(digest('c'))
            }
        };
        assert!(cache.resolve([1; 32], attempt(), &metrics).await.is_err());
        assert!(cache.resolve([1; 32], attempt(), &metrics).await.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1, "the failure was cached");
        fail.store(0, Ordering::SeqCst);
        assert!(cache.resolve([1; 32], attempt(), &metrics).await.is_err());
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            cache.resolve([1; 32], attempt(), &metrics).await,
            Ok(digest('c'))
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            cache.resolve([1; 32], attempt(), &metrics).await,
            Ok(digest('c'))
        );
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "the success is kept for digest_ttl"
        );
    }
}

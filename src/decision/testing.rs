//! In-memory outside systems for the engine's tests and benches: a [`MemRegistry`] (tags to
//! digests) and a [`MemNotary`] (the files of one Notary repository, e.g. from
//! `notary::testing::Repo::publish`), the registry optionally serving signature artifacts for
//! every digest, each counting what it was asked and able to answer late
//! (on tokio time, so deadline tests run on paused time). Not a stable API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::future::BoxFuture;

use crate::image::credentials::Credentials;
use crate::image::reference::{Digest, ImageRef};
use crate::image::registry::{
    ArtifactError, RegistryError, RegistryOptions, SignatureFormat as ArtifactFormat,
};
use crate::notary::fetch::NotaryConfig;
use crate::notary::source::{FetchError, MetaRequest, MetadataSource};
use crate::signatures::{Attached, Subject};

use super::backends::{DigestResolver, NotaryConnector, NotarySource};

/// A registry serving tags (of any repository) as digests.
#[derive(Debug, Default)]
pub struct MemRegistry {
    tags: RwLock<BTreeMap<String, Digest>>,
    asked: Mutex<Vec<(String, Credentials)>>,
    delay: Mutex<Option<Duration>>,
    signatures: Mutex<Option<(Vec<Attached>, Duration)>>,
    fetching: Mutex<(usize, usize)>,
}

impl MemRegistry {
    /// An empty registry.
    pub fn new() -> Arc<MemRegistry> {
        Arc::new(MemRegistry::default())
    }

    /// Serves `digest` for `tag` (replacing what it served).
    pub fn tag(&self, tag: &str, digest: Digest) {
        self.tags.write().unwrap().insert(tag.into(), digest);
    }

    /// Answers every later request `delay` late (tokio time).
    pub fn delay(&self, delay: Duration) {
        *self.delay.lock().unwrap() = Some(delay);
    }

    /// How many tag resolutions were asked for `tag`.
    pub fn resolutions(&self, tag: &str) -> usize {
        let asked = self.asked.lock().unwrap();
        asked.iter().filter(|(t, _)| t == tag).count()
    }

    /// Resolutions per tag.
    pub fn requests(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for (tag, _) in self.asked.lock().unwrap().iter() {
            *out.entry(tag.clone()).or_default() += 1;
        }
        out
    }

    /// Serves `sigs` for every digest and format from now on, each fetch taking `delay`
    /// (tokio time); without it, signature reads fail as on a backend without support.
    pub fn serve_signatures(&self, sigs: Vec<Attached>, delay: Duration) {
        *self.signatures.lock().unwrap() = Some((sigs, delay));
    }

    /// The most signature fetches that were under way at once.
    pub fn most_signature_fetches_at_once(&self) -> usize {
        self.fetching.lock().unwrap().1
    }

    /// The credentials of every resolution, in order.
    pub fn credentials(&self) -> Vec<Credentials> {
        let asked = self.asked.lock().unwrap();
        asked.iter().map(|(_, c)| c.clone()).collect()
    }
}

impl DigestResolver for MemRegistry {
    fn resolve<'a>(
        &'a self,
        image: &'a ImageRef,
        _: &'a RegistryOptions,
        credentials: &'a Credentials,
    ) -> BoxFuture<'a, Result<Digest, RegistryError>> {
        Box::pin(async move {
            let tag = image.tag().unwrap_or("latest").to_string();
            self.asked
                .lock()
                .unwrap()
                .push((tag.clone(), credentials.clone()));
            let delay = *self.delay.lock().unwrap();
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            if let Some(digest) = image.digest() {
                return Ok(digest.clone());
            }
            let found = self.tags.read().unwrap().get(&tag).cloned();
            found.ok_or(RegistryError::TagNotFound {
                repository: image.repository(),
                tag,
            })
        })
    }

    fn describe<'a>(
        &'a self,
        image: &'a ImageRef,
        _: &'a RegistryOptions,
        _: &'a Credentials,
    ) -> BoxFuture<'a, Result<Subject, ArtifactError>> {
        Box::pin(async move {
            let served = self.signatures.lock().unwrap().is_some();
            match image.digest() {
                Some(digest) if served => Ok(Subject {
                    repository: image.repository(),
                    digest: digest.to_string(),
                    media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                    size: 512,
                }),
                _ => Err(unsupported(image)),
            }
        })
    }

    fn signatures<'a>(
        &'a self,
        image: &'a ImageRef,
        _: &'a Subject,
        _: ArtifactFormat,
        _: &'a RegistryOptions,
        _: &'a Credentials,
    ) -> BoxFuture<'a, Result<Vec<Attached>, ArtifactError>> {
        Box::pin(async move {
            let Some((sigs, delay)) = self.signatures.lock().unwrap().clone() else {
                return Err(unsupported(image));
            };
            {
                let mut f = self.fetching.lock().unwrap();
                f.0 += 1;
                f.1 = f.1.max(f.0);
            }
            tokio::time::sleep(delay).await;
            self.fetching.lock().unwrap().0 -= 1;
            Ok(sigs)
        })
    }
}

/// What a backend without signature support answers.
fn unsupported(image: &ImageRef) -> ArtifactError {
    ArtifactError::Invalid {
        repository: image.repository(),
        what: "signatures".into(),
        detail: "this registry backend cannot read signature artifacts".into(),
    }
}

/// What a [`MemNotary`] serves and was asked.
#[derive(Debug, Default)]
struct Served {
    files: RwLock<Arc<HashMap<String, Vec<u8>>>>,
    requests: Mutex<BTreeMap<String, usize>>,
    delay: Mutex<Option<Duration>>,
    connected: Mutex<Vec<NotaryConfig>>,
    warmed: Mutex<Vec<usize>>,
}

/// A Notary server with one set of files (`root.json`, `snapshot.<sha256>.json`, ...) for every
/// repository and every set-up.
#[derive(Debug, Clone, Default)]
pub struct MemNotary(Arc<Served>);

impl MemNotary {
    /// A server with no files (every repository is unsigned).
    pub fn new() -> Arc<MemNotary> {
        Arc::new(MemNotary::default())
    }

    /// Serves `files` from now on.
    pub fn serve(&self, files: HashMap<String, Vec<u8>>) {
        *self.0.files.write().unwrap() = Arc::new(files);
    }

    /// Answers every later request `delay` late (tokio time).
    pub fn delay(&self, delay: Duration) {
        *self.0.delay.lock().unwrap() = Some(delay);
    }

    /// Requests per file name.
    pub fn requests(&self) -> BTreeMap<String, usize> {
        self.0.requests.lock().unwrap().clone()
    }

    /// Requests of files whose name starts with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        let requests = self.0.requests.lock().unwrap();
        requests
            .iter()
            .filter(|(file, _)| file.starts_with(prefix))
            .map(|(_, n)| n)
            .sum()
    }

    /// The `connections` of every warming, in order.
    pub fn warmed(&self) -> Vec<usize> {
        self.0.warmed.lock().unwrap().clone()
    }

    /// The set-ups sources were opened for, in order.
    pub fn connected(&self) -> Vec<NotaryConfig> {
        self.0.connected.lock().unwrap().clone()
    }
}

impl NotaryConnector for MemNotary {
    fn connect(&self, config: NotaryConfig) -> Result<NotarySource, FetchError> {
        self.0.connected.lock().unwrap().push(config);
        Ok(NotarySource::new(self.clone()))
    }
}

impl MetadataSource for MemNotary {
    fn fetch(
        &self,
        gun: &str,
        req: &MetaRequest,
        max_len: u64,
    ) -> impl Future<Output = Result<Vec<u8>, FetchError>> + Send {
        let file = req.file_name();
        *self
            .0
            .requests
            .lock()
            .unwrap()
            .entry(file.clone())
            .or_default() += 1;
        let delay = *self.0.delay.lock().unwrap();
        let files = self.0.files.read().unwrap().clone();
        let server = self.server().to_string();
        let gun = gun.to_string();
        async move {
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            match files.get(&file) {
                None => Err(FetchError::NotFound { server, gun, file }),
                Some(b) if b.len() as u64 > max_len => Err(FetchError::TooLarge {
                    server,
                    file,
                    limit: max_len,
                }),
                Some(b) => Ok(b.clone()),
            }
        }
    }

    fn server(&self) -> &str {
        "https://notary.test"
    }

    async fn warm(&self, connections: usize) {
        self.0.warmed.lock().unwrap().push(connections);
    }
}

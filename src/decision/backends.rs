//! The engine's two outside systems, as traits: a [`DigestResolver`] (the registry: tag to
//! digest, and the Notation/cosign signature artifacts attached to a digest) and a [`NotaryConnector`] (a [`NotarySource`] of metadata files per Notary
//! set-up). The defaults are the real HTTP clients ([`HttpBackends`]: `image::registry::Resolver`
//! and `notary::fetch::HttpSource`); the engine's tests and benches use in-memory ones
//! (`decision::testing`).

use std::sync::Arc;

use futures::future::BoxFuture;

use crate::image::credentials::Credentials;
use crate::image::reference::{Digest, ImageRef};
use crate::image::registry::{
    ArtifactError, RegistryError, RegistryOptions, Resolver, SignatureFormat as ArtifactFormat,
};
use crate::metrics::Metrics;
use crate::notary::fetch::{HttpSource, NotaryConfig};
use crate::notary::source::{FetchError, MetaRequest, MetadataSource};
use crate::signatures::{Attached, Subject};

/// Resolves a tag to the digest the registry serves for it.
pub trait DigestResolver: Send + Sync {
    /// The digest of `image` (which names a tag, `latest` when none) on its registry, reached as
    /// `options` say, with `credentials`.
    fn resolve<'a>(
        &'a self,
        image: &'a ImageRef,
        options: &'a RegistryOptions,
        credentials: &'a Credentials,
    ) -> BoxFuture<'a, Result<Digest, RegistryError>>;

    /// The manifest `image` (which names a digest) is, as its signatures must name it. The
    /// default (backends without signature support) fails, so the new formats fail closed.
    fn describe<'a>(
        &'a self,
        image: &'a ImageRef,
        _options: &'a RegistryOptions,
        _credentials: &'a Credentials,
    ) -> BoxFuture<'a, Result<Subject, ArtifactError>> {
        Box::pin(async move { Err(unsupported(image)) })
    }

    /// The `format` signature artifacts attached to `subject` in `image`'s repository. The
    /// default fails, as [`DigestResolver::describe`].
    fn signatures<'a>(
        &'a self,
        image: &'a ImageRef,
        _subject: &'a Subject,
        _format: ArtifactFormat,
        _options: &'a RegistryOptions,
        _credentials: &'a Credentials,
    ) -> BoxFuture<'a, Result<Vec<Attached>, ArtifactError>> {
        Box::pin(async move { Err(unsupported(image)) })
    }
}

fn unsupported(image: &ImageRef) -> ArtifactError {
    ArtifactError::Invalid {
        repository: image.repository(),
        what: "signatures".into(),
        detail: "this registry backend cannot read signature artifacts".into(),
    }
}

impl DigestResolver for Resolver {
    fn resolve<'a>(
        &'a self,
        image: &'a ImageRef,
        options: &'a RegistryOptions,
        credentials: &'a Credentials,
    ) -> BoxFuture<'a, Result<Digest, RegistryError>> {
        Box::pin(Resolver::resolve(self, image, options, credentials))
    }

    fn describe<'a>(
        &'a self,
        image: &'a ImageRef,
        options: &'a RegistryOptions,
        credentials: &'a Credentials,
    ) -> BoxFuture<'a, Result<Subject, ArtifactError>> {
        Box::pin(Resolver::describe(self, image, options, credentials))
    }

    fn signatures<'a>(
        &'a self,
        image: &'a ImageRef,
        subject: &'a Subject,
        format: ArtifactFormat,
        options: &'a RegistryOptions,
        credentials: &'a Credentials,
    ) -> BoxFuture<'a, Result<Vec<Attached>, ArtifactError>> {
        Box::pin(Resolver::signatures(
            self,
            image,
            subject,
            format,
            options,
            credentials,
        ))
    }
}

/// A [`MetadataSource`] behind a pointer, so the engine can hold sources of any kind.
pub trait DynMetadataSource: Send + Sync {
    /// As [`MetadataSource::fetch`].
    fn fetch_boxed<'a>(
        &'a self,
        gun: &'a str,
        req: &'a MetaRequest,
        max_len: u64,
    ) -> BoxFuture<'a, Result<Vec<u8>, FetchError>>;

    /// As [`MetadataSource::server`].
    fn server_name(&self) -> &str;

    /// As [`MetadataSource::warm`].
    fn warm_boxed(&self, connections: usize) -> BoxFuture<'_, ()>;
}

impl<T: MetadataSource> DynMetadataSource for T {
    fn fetch_boxed<'a>(
        &'a self,
        gun: &'a str,
        req: &'a MetaRequest,
        max_len: u64,
    ) -> BoxFuture<'a, Result<Vec<u8>, FetchError>> {
        Box::pin(self.fetch(gun, req, max_len))
    }

    fn server_name(&self) -> &str {
        self.server()
    }

    fn warm_boxed(&self, connections: usize) -> BoxFuture<'_, ()> {
        Box::pin(self.warm(connections))
    }
}

/// A shared source of Notary metadata files (cheap to clone).
#[derive(Clone)]
pub struct NotarySource(Arc<dyn DynMetadataSource>);

impl NotarySource {
    /// Wraps `source`.
    pub fn new(source: impl MetadataSource + 'static) -> NotarySource {
        NotarySource(Arc::new(source))
    }
}

impl std::fmt::Debug for NotarySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("NotarySource")
            .field(&self.0.server_name())
            .finish()
    }
}

impl MetadataSource for NotarySource {
    async fn fetch(
        &self,
        gun: &str,
        req: &MetaRequest,
        max_len: u64,
    ) -> Result<Vec<u8>, FetchError> {
        self.0.fetch_boxed(gun, req, max_len).await
    }

    fn server(&self) -> &str {
        self.0.server_name()
    }

    async fn warm(&self, connections: usize) {
        self.0.warm_boxed(connections).await;
    }
}

/// Opens a [`NotarySource`] for one Notary set-up (URL, CA, credentials, timeout). The engine
/// keeps what it opens, per set-up.
pub trait NotaryConnector: Send + Sync {
    /// A source for `config`.
    ///
    /// # Errors
    /// A set-up that cannot be used (e.g. a bad URL or CA bundle).
    fn connect(&self, config: NotaryConfig) -> Result<NotarySource, FetchError>;
}

/// The real outside systems over HTTP: a registry [`Resolver`] and one [`HttpSource`] per Notary
/// set-up, both counting in the engine's metrics.
#[derive(Debug, Clone)]
pub struct HttpBackends {
    resolver: Arc<Resolver>,
    metrics: Arc<Metrics>,
}

impl HttpBackends {
    /// Keeps at most `max_clients` registry clients; counts in `metrics`.
    pub fn new(max_clients: u64, metrics: Arc<Metrics>) -> HttpBackends {
        HttpBackends {
            resolver: Arc::new(Resolver::new(max_clients).with_metrics(metrics.clone())),
            metrics,
        }
    }

    /// The registry side.
    pub fn resolver(&self) -> Arc<dyn DigestResolver> {
        self.resolver.clone()
    }
}

impl NotaryConnector for HttpBackends {
    fn connect(&self, config: NotaryConfig) -> Result<NotarySource, FetchError> {
        Ok(NotarySource::new(
            HttpSource::new(config)?.with_metrics(self.metrics.clone()),
        ))
    }
}

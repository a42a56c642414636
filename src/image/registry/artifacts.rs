//! Signature artifacts attached to an image digest, fetched on the same registry conversation
//! as tag resolution (same credentials and token answers, CA bundle, plain HTTP, timeout,
//! same-origin redirects, size caps while streaming; a blob alone may be redirected to a
//! storage host, fetched from it without credentials and accepted only with its digest):
//!
//! * [`Resolver::describe`]: the digest, media type and size of the manifest a reference
//!   resolves to (`HEAD` with the kubelet's Accept types; `GET` and hash when the answer lacks
//!   a header), as the [`Subject`] signatures must name.
//! * [`Resolver::referrers`]: the OCI 1.1 referrers API (`GET /v2/<name>/referrers/<digest>`)
//!   and, when the registry has none (404, or an answer that is not an image index), the
//!   referrers tag schema `sha256-<hex>`; no such tag means no referrers. The list is read up
//!   to `LIMITS.referrers_index_bytes` and refused beyond `LIMITS.referrers_per_subject`
//!   entries. Pagination (`Link` headers) is not followed.
//! * [`Resolver::signatures`] (or [`Resolver::signatures_listed`] from a list already read):
//!   the signature artifacts of one format. Each candidate manifest (an entry typed as the
//!   format, or untyped/"empty") is fetched by digest (up to
//!   `LIMITS.signature_manifest_bytes`, digest verified) and its OWN `artifactType` (else
//!   `config.mediaType`) decides its format: the list entry's type is only a hint (cosign
//!   writes `application/vnd.oci.empty.v1+json` there); more than
//!   `LIMITS.signatures_per_format` signatures of the format are refused. Entries typed as
//!   another format are never fetched. Its envelope layer is fetched (up to
//!   `LIMITS.signature_envelope_bytes`, digest verified). For cosign, the legacy
//!   `sha256-<hex>.sig` tag manifest adds one artifact per simple-signing layer (each source is
//!   capped here; the cosign verifier refuses more than the limit of both together).
//!
//! A manifest whose `subject` is another digest is not a signature of this one and is skipped;
//! a size, count or digest violation fails the whole fetch (the format then fails closed).

mod call;
mod walk;

use std::collections::BTreeMap;

use reqwest::Method;
use serde::Deserialize;

use self::call::{Call, sha256};
use self::walk::{attached_in, legacy_cosign_in, referrers_in};
use super::http::Conversation;
use super::{Ctx, RegistryError, RegistryOptions, Resolver};
use crate::image::credentials::Credentials;
use crate::image::reference::ImageRef;
use crate::limits::LIMITS;
use crate::signatures::cosign::BUNDLE_MEDIA_TYPE_PREFIX;
use crate::signatures::{Attached, Subject};

/// Artifact type of a Notation signature manifest.
pub const NOTATION_ARTIFACT_TYPE: &str = "application/vnd.cncf.notary.signature";
/// Envelope layer media types of Notation signatures (JWS, COSE).
pub const NOTATION_ENVELOPE_TYPES: [&str; 2] = ["application/jose+json", "application/cose"];
/// The empty artifact type some tools write into a referrers list entry.
pub const EMPTY_ARTIFACT_TYPE: &str = "application/vnd.oci.empty.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Which signatures to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureFormat {
    /// Notation (JWS/COSE) signatures among the referrers.
    Notation,
    /// cosign Sigstore bundles among the referrers, and the legacy `.sig` tag.
    Cosign,
}

impl SignatureFormat {
    /// Whether a manifest of artifact type `artifact_type` is of this format.
    fn owns(self, artifact_type: &str) -> bool {
        match self {
            SignatureFormat::Notation => artifact_type == NOTATION_ARTIFACT_TYPE,
            SignatureFormat::Cosign => artifact_type.starts_with(BUNDLE_MEDIA_TYPE_PREFIX),
        }
    }

    /// Whether a layer of media type `media_type` holds this format's envelope.
    fn envelope(self, media_type: &str) -> bool {
        match self {
            SignatureFormat::Notation => NOTATION_ENVELOPE_TYPES.contains(&media_type),
            SignatureFormat::Cosign => media_type.starts_with(BUNDLE_MEDIA_TYPE_PREFIX),
        }
    }
}

/// Why signature artifacts could not be fetched.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArtifactError {
    /// Transport, TLS, time, credentials or a server error.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The manifest asked for does not exist.
    #[error("manifest {reference} of {repository} not found on the registry")]
    NotFound {
        /// `host/path`.
        repository: String,
        /// The tag or digest asked for.
        reference: String,
    },
    /// An answer larger than its limit (refused unread or while streaming).
    #[error("{what} of {repository} larger than the limit of {limit} bytes")]
    TooLarge {
        /// `host/path`.
        repository: String,
        /// What was read.
        what: String,
        /// The limit.
        limit: u64,
    },
    /// A list longer than its limit (refused, never cut).
    #[error("{what} of {repository} has {count} entries, more than the limit of {limit}")]
    TooMany {
        /// `host/path`.
        repository: String,
        /// Which list.
        what: String,
        /// Its length.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// Content whose digest is not the one asked for.
    #[error("{what} of {repository} has digest {actual}, not the {expected} asked for")]
    DigestMismatch {
        /// `host/path`.
        repository: String,
        /// What was read.
        what: String,
        /// The digest asked for.
        expected: String,
        /// The digest of what came.
        actual: String,
    },
    /// An answer that breaks the distribution or image spec.
    #[error("{what} of {repository} is invalid: {detail}")]
    Invalid {
        /// `host/path`.
        repository: String,
        /// What was read.
        what: String,
        /// What is wrong.
        detail: String,
    },
}

/// One entry of a referrers list (an OCI descriptor).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The manifest's media type.
    #[serde(default)]
    pub media_type: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Size in bytes.
    #[serde(default)]
    pub size: u64,
    /// The entry's artifact type (a hint only; see the module header).
    #[serde(default)]
    pub artifact_type: Option<String>,
    /// The entry's annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
pub(super) struct Index {
    #[serde(default, rename = "mediaType")]
    media_type: Option<String>,
    manifests: Option<Vec<Descriptor>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Manifest {
    #[serde(default)]
    artifact_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    subject: Option<Descriptor>,
}

impl Resolver {
    /// Runs `op` on a conversation about `image`'s repository with the cached `Authorization`,
    /// within `options.timeout`, and remembers an `Authorization` it obtained.
    async fn with_call<T, F>(
        &self,
        image: &ImageRef,
        options: &RegistryOptions,
        credentials: &Credentials,
        op: F,
    ) -> Result<T, ArtifactError>
    where
        F: for<'c> AsyncFnOnce(&'c mut Call<'_>) -> Result<T, ArtifactError>,
    {
        let registry = image.domain().to_string();
        let client = self.client(&registry, options)?;
        let (key, cached) = self.cached_auth(image, options, credentials);
        let talk = Conversation::new(
            &client,
            options.plain_http,
            &registry,
            image.path(),
            credentials,
        )
        .with_cached(cached);
        let mut call = Call {
            talk,
            ctx: Ctx {
                registry: &registry,
                repository: image.repository(),
                tag: "",
                with_credentials: !credentials.is_anonymous(),
                timeout: options.timeout,
            },
            repository: image.repository(),
        };
        let outcome = tokio::time::timeout(options.timeout, op(&mut call)).await;
        let refused = matches!(
            outcome,
            Ok(Err(ArtifactError::Registry(
                RegistryError::Unauthorized { .. }
            )))
        );
        self.remember_auth(key, refused, call.talk.obtained());
        outcome.map_err(|_| ArtifactError::Registry(call.ctx.timeout()))?
    }

    /// The manifest `image` resolves to (its digest when it has one, else its tag): digest,
    /// media type and size, as the [`Subject`] its signatures must name.
    ///
    /// # Errors
    /// Not found, unreachable, or an answer that breaks the spec or a limit.
    pub async fn describe(
        &self,
        image: &ImageRef,
        options: &RegistryOptions,
        credentials: &Credentials,
    ) -> Result<Subject, ArtifactError> {
        let reference = match image.digest() {
            Some(d) => d.to_string(),
            None => image.tag_or_latest().unwrap_or("latest").to_string(),
        };
        let pinned = image.digest().map(ToString::to_string);
        self.with_call(image, options, credentials, async |call| {
            let tail = format!("manifests/{reference}");
            let what = "manifest";
            let repository = call.repository.clone();
            let not_found = || ArtifactError::NotFound {
                repository: repository.clone(),
                reference: reference.clone(),
            };
            let head = call
                .get(Method::HEAD, &tail, 0, what)
                .await?
                .ok_or_else(not_found)?;
            let (head, _) = head;
            if let (Some(digest), Some(media_type), Some(size)) =
                (head.digest.clone(), head.content_type.clone(), head.length)
                && pinned.as_ref().is_none_or(|p| *p == digest)
            {
                return Ok(Subject {
                    repository: call.repository.clone(),
                    digest,
                    media_type,
                    size,
                });
            }
            let limit = LIMITS.manifest_bytes;
            let (got, body) = call
                .get(Method::GET, &tail, limit, what)
                .await?
                .ok_or_else(not_found)?;
            let digest = sha256(&body);
            if let Some(expected) = pinned.as_ref().or(got.digest.as_ref())
                && *expected != digest
            {
                return Err(ArtifactError::DigestMismatch {
                    repository: call.repository.clone(),
                    what: what.into(),
                    expected: expected.clone(),
                    actual: digest,
                });
            }
            let media_type = match got.content_type {
                Some(t) if !t.is_empty() && t != "application/json" => t,
                _ => serde_json::from_slice::<Index>(&body)
                    .ok()
                    .and_then(|i| i.media_type)
                    .ok_or_else(|| call.invalid(what, "no media type"))?,
            };
            Ok(Subject {
                repository: call.repository.clone(),
                digest,
                media_type,
                size: u64::try_from(body.len()).unwrap_or(u64::MAX),
            })
        })
        .await
    }

    /// The referrers of `digest` in `image`'s repository (referrers API, else the
    /// `sha256-<hex>` tag); empty when there are none.
    ///
    /// # Errors
    /// Unreachable, a list over its limits, or an invalid answer.
    pub async fn referrers(
        &self,
        image: &ImageRef,
        digest: &str,
        options: &RegistryOptions,
        credentials: &Credentials,
    ) -> Result<Vec<Descriptor>, ArtifactError> {
        self.with_call(image, options, credentials, async |call| {
            referrers_in(call, digest).await
        })
        .await
    }

    /// The signature artifacts of `format` attached to `subject` in `image`'s repository.
    ///
    /// # Errors
    /// Unreachable, or an answer over a limit, with a wrong digest, or invalid.
    pub async fn signatures(
        &self,
        image: &ImageRef,
        subject: &Subject,
        format: SignatureFormat,
        options: &RegistryOptions,
        credentials: &Credentials,
    ) -> Result<Vec<Attached>, ArtifactError> {
        self.with_call(image, options, credentials, async |call| {
            let listed = referrers_in(call, &subject.digest).await?;
            let mut found = attached_in(call, subject, format, &listed).await?;
            if format == SignatureFormat::Cosign {
                found.extend(legacy_cosign_in(call, &subject.digest).await?);
            }
            Ok(found)
        })
        .await
    }

    /// As [`Resolver::signatures`], from a referrers list already read (by
    /// [`Resolver::referrers`], e.g. once for every format of a policy).
    ///
    /// # Errors
    /// Unreachable, or an answer over a limit, with a wrong digest, or invalid.
    pub async fn signatures_listed(
        &self,
        image: &ImageRef,
        subject: &Subject,
        format: SignatureFormat,
        listed: &[Descriptor],
        options: &RegistryOptions,
        credentials: &Credentials,
    ) -> Result<Vec<Attached>, ArtifactError> {
        self.with_call(image, options, credentials, async |call| {
            let mut found = attached_in(call, subject, format, listed).await?;
            if format == SignatureFormat::Cosign {
                found.extend(legacy_cosign_in(call, &subject.digest).await?);
            }
            Ok(found)
        })
        .await
    }
}

#[cfg(test)]
mod tests;

//! Signature artifacts attached to an image digest, fetched on the same registry conversation
//! as tag resolution (same credentials and token answers, CA bundle, plain HTTP, timeout,
//! same-origin redirects, size caps while streaming):
//!
//! * [`Resolver::describe`]: the digest, media type and size of the manifest a reference
//!   resolves to (`HEAD` with the kubelet's Accept types; `GET` and hash when the answer lacks
//!   a header), as the [`Subject`] signatures must name.
//! * [`Resolver::referrers`]: the OCI 1.1 referrers API (`GET /v2/<name>/referrers/<digest>`)
//!   and, when the registry has none (404, or an answer that is not an image index), the
//!   referrers tag schema `sha256-<hex>`; no such tag means no referrers. The list is read up
//!   to `LIMITS.referrers_index_bytes` and refused beyond `LIMITS.referrers_per_subject`
//!   entries. Pagination (`Link` headers) is not followed.
//! * [`Resolver::signatures`]: the signature artifacts of one format. Each candidate manifest
//!   (at most `LIMITS.signatures_per_format`, else refused) is fetched by digest (up to
//!   `LIMITS.signature_manifest_bytes`, digest verified) and its OWN `artifactType` (else
//!   `config.mediaType`) decides its format: the list entry's type is only a hint (cosign
//!   writes `application/vnd.oci.empty.v1+json` there). Its envelope layer is fetched (up to
//!   `LIMITS.signature_envelope_bytes`, digest verified). For cosign, the legacy
//!   `sha256-<hex>.sig` tag manifest adds one artifact per simple-signing layer.
//!
//! A manifest whose `subject` is another digest is not a signature of this one and is skipped;
//! a size, count or digest violation fails the whole fetch (the format then fails closed).

use std::collections::BTreeMap;
use std::str::FromStr;

use reqwest::Method;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::http::{Conversation, Failure, Fetched};
use super::{AuthKey, Ctx, RegistryError, RegistryOptions, Resolver};
use crate::image::credentials::Credentials;
use crate::image::reference::{Digest, ImageRef};
use crate::limits::LIMITS;
use crate::signatures::cosign::{BUNDLE_MEDIA_TYPE_PREFIX, SIMPLE_SIGNING_MEDIA_TYPE};
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
struct Index {
    #[serde(default, rename = "mediaType")]
    media_type: Option<String>,
    manifests: Option<Vec<Descriptor>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    #[serde(default)]
    artifact_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    subject: Option<Descriptor>,
}

/// One operation's conversation and the context its errors are reported in.
struct Call<'a> {
    talk: Conversation<'a>,
    ctx: Ctx<'a>,
    repository: String,
}

impl Call<'_> {
    fn too_large(&self, what: impl Into<String>, limit: u64) -> ArtifactError {
        ArtifactError::TooLarge {
            repository: self.repository.clone(),
            what: what.into(),
            limit,
        }
    }

    fn invalid(&self, what: impl Into<String>, detail: impl Into<String>) -> ArtifactError {
        ArtifactError::Invalid {
            repository: self.repository.clone(),
            what: what.into(),
            detail: detail.into(),
        }
    }

    /// `GET`/`HEAD` of `tail`; `Ok(None)` for a 404.
    async fn get(
        &mut self,
        method: Method,
        tail: &str,
        limit: u64,
        what: &str,
    ) -> Result<Option<(Fetched, Vec<u8>)>, ArtifactError> {
        match self.talk.fetch(method, tail, limit).await {
            Ok(mut f) => match f.body.take() {
                Some(body) => Ok(Some((f, body))),
                None => Err(self.too_large(what, limit)),
            },
            Err(Failure::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(ArtifactError::Registry(self.ctx.classify(e))),
        }
    }

    /// A JSON document read up to `limit` whose sha256 must be `digest` (when given).
    async fn json<T: for<'de> Deserialize<'de>>(
        &mut self,
        tail: &str,
        limit: u64,
        digest: Option<&str>,
        what: &str,
    ) -> Result<Option<(T, String)>, ArtifactError> {
        let Some((_, body)) = self.get(Method::GET, tail, limit, what).await? else {
            return Ok(None);
        };
        let actual = sha256(&body);
        if let Some(expected) = digest
            && expected != actual
        {
            return Err(ArtifactError::DigestMismatch {
                repository: self.repository.clone(),
                what: what.into(),
                expected: expected.into(),
                actual,
            });
        }
        if !crate::admission::wire::json_depth_within(&body, LIMITS.json_depth) {
            return Err(self.invalid(
                what,
                format!("JSON nested deeper than {} levels", LIMITS.json_depth),
            ));
        }
        let parsed =
            serde_json::from_slice(&body).map_err(|e| self.invalid(what, e.to_string()))?;
        Ok(Some((parsed, actual)))
    }

    /// A blob by digest, up to `limit`, its digest checked.
    async fn blob(
        &mut self,
        d: &Descriptor,
        limit: u64,
        what: &str,
    ) -> Result<Vec<u8>, ArtifactError> {
        let digest = checked_digest(&d.digest).ok_or_else(|| {
            self.invalid(
                what,
                format!("descriptor digest {:?} is not sha256", d.digest),
            )
        })?;
        if d.size > limit {
            return Err(self.too_large(what, limit));
        }
        let Some((_, body)) = self
            .get(Method::GET, &format!("blobs/{digest}"), limit, what)
            .await?
        else {
            return Err(ArtifactError::NotFound {
                repository: self.repository.clone(),
                reference: digest,
            });
        };
        let actual = sha256(&body);
        if actual != digest {
            return Err(ArtifactError::DigestMismatch {
                repository: self.repository.clone(),
                what: what.into(),
                expected: digest,
                actual,
            });
        }
        Ok(body)
    }
}

fn sha256(body: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(body)))
}

/// `d` if it is a well-formed `sha256:<hex>` digest (safe to put in a URL path).
fn checked_digest(d: &str) -> Option<String> {
    Digest::from_str(d)
        .ok()
        .filter(|p| p.algorithm().as_str() == "sha256")
        .map(|p| p.to_string())
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
        let key = AuthKey {
            options: options.clone(),
            registry: registry.clone(),
            path: image.path().to_string(),
            credentials: credentials.clone(),
        };
        let cached = self
            .auths
            .get(&key)
            .filter(|(_, until)| std::time::Instant::now() < *until)
            .map(|(auth, _)| auth);
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
        match (&outcome, call.talk.obtained()) {
            (Ok(Err(ArtifactError::Registry(RegistryError::Unauthorized { .. }))), _) => {
                self.auths.invalidate(&key);
            }
            (_, Some((auth, fresh))) => {
                self.auths
                    .insert(key, (auth, std::time::Instant::now() + fresh));
            }
            _ => {}
        }
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
}

async fn referrers_in(call: &mut Call<'_>, digest: &str) -> Result<Vec<Descriptor>, ArtifactError> {
    let digest = checked_digest(digest)
        .ok_or_else(|| call.invalid("subject", format!("digest {digest:?} is not sha256")))?;
    let limit = LIMITS.referrers_index_bytes;
    let what = "referrers list";
    let api = call
        .json::<Index>(&format!("referrers/{digest}"), limit, None, what)
        .await;
    let listed = match api {
        Ok(Some((index, _)))
            if index.manifests.is_some()
                && index.media_type.as_deref().is_none_or(|t| t == OCI_INDEX) =>
        {
            index.manifests
        }
        // No referrers API (404, or an answer that is not an index): the tag schema.
        Ok(_) | Err(ArtifactError::Invalid { .. }) => {
            let tag = digest.replace(':', "-");
            call.json::<Index>(&format!("manifests/{tag}"), limit, None, what)
                .await?
                .and_then(|(index, _)| index.manifests)
        }
        Err(e) => return Err(e),
    };
    let listed = listed.unwrap_or_default();
    if listed.len() > LIMITS.referrers_per_subject {
        return Err(ArtifactError::TooMany {
            repository: call.repository.clone(),
            what: format!("referrers list of {digest}"),
            count: listed.len(),
            limit: LIMITS.referrers_per_subject,
        });
    }
    Ok(listed)
}

/// Fetches the candidates of `format` among `listed` (the entry's type matches, or is absent
/// or empty) and keeps those whose own manifest says they are of `format` and name `subject`.
async fn attached_in(
    call: &mut Call<'_>,
    subject: &Subject,
    format: SignatureFormat,
    listed: &[Descriptor],
) -> Result<Vec<Attached>, ArtifactError> {
    let candidates: Vec<&Descriptor> = listed
        .iter()
        .filter(|d| match d.artifact_type.as_deref() {
            None | Some("") | Some(EMPTY_ARTIFACT_TYPE) => true,
            Some(t) => format.owns(t),
        })
        .collect();
    if candidates.len() > LIMITS.signatures_per_format {
        return Err(ArtifactError::TooMany {
            repository: call.repository.clone(),
            what: format!("{format:?} signature candidates of {}", subject.digest),
            count: candidates.len(),
            limit: LIMITS.signatures_per_format,
        });
    }
    let mut found = Vec::new();
    for d in candidates {
        let Some(digest) = checked_digest(&d.digest) else {
            continue;
        };
        let what = format!("signature manifest {digest}");
        let limit = LIMITS.signature_manifest_bytes;
        if d.size > limit {
            return Err(call.too_large(what, limit));
        }
        let Some((manifest, _)) = call
            .json::<Manifest>(&format!("manifests/{digest}"), limit, Some(&digest), &what)
            .await?
        else {
            continue; // listed but gone (deleted since): nothing to verify
        };
        if manifest.subject.as_ref().map(|s| s.digest.as_str()) != Some(subject.digest.as_str()) {
            continue;
        }
        let own = manifest
            .artifact_type
            .clone()
            .filter(|t| !t.is_empty())
            .or_else(|| manifest.config.as_ref().map(|c| c.media_type.clone()))
            .unwrap_or_default();
        if !format.owns(&own) {
            continue;
        }
        let Some(layer) = manifest
            .layers
            .iter()
            .find(|l| format.envelope(&l.media_type))
        else {
            return Err(call.invalid(what, "no signature envelope layer"));
        };
        let blob = call
            .blob(
                layer,
                LIMITS.signature_envelope_bytes,
                &format!("signature envelope of {digest}"),
            )
            .await?;
        found.push(Attached {
            manifest_digest: digest,
            artifact_type: own,
            media_type: layer.media_type.clone(),
            annotations: layer.annotations.clone(),
            blob,
        });
    }
    Ok(found)
}

/// The legacy cosign `sha256-<hex>.sig` tag: one artifact per simple-signing layer.
async fn legacy_cosign_in(
    call: &mut Call<'_>,
    digest: &str,
) -> Result<Vec<Attached>, ArtifactError> {
    let Some(digest) = checked_digest(digest) else {
        return Err(call.invalid("subject", format!("digest {digest:?} is not sha256")));
    };
    let tag = format!("{}.sig", digest.replace(':', "-"));
    let what = format!("cosign signature manifest {tag}");
    let Some((manifest, manifest_digest)) = call
        .json::<Manifest>(
            &format!("manifests/{tag}"),
            LIMITS.signature_manifest_bytes,
            None,
            &what,
        )
        .await?
    else {
        return Ok(Vec::new());
    };
    if manifest.layers.len() > LIMITS.referrers_per_subject {
        return Err(ArtifactError::TooMany {
            repository: call.repository.clone(),
            what,
            count: manifest.layers.len(),
            limit: LIMITS.referrers_per_subject,
        });
    }
    let layers: Vec<&Descriptor> = manifest
        .layers
        .iter()
        .filter(|l| l.media_type == SIMPLE_SIGNING_MEDIA_TYPE)
        .collect();
    if layers.len() > LIMITS.signatures_per_format {
        return Err(ArtifactError::TooMany {
            repository: call.repository.clone(),
            what: format!("signatures in {tag}"),
            count: layers.len(),
            limit: LIMITS.signatures_per_format,
        });
    }
    let artifact_type = manifest
        .config
        .as_ref()
        .map(|c| c.media_type.clone())
        .unwrap_or_default();
    let mut found = Vec::new();
    for layer in layers {
        let blob = call
            .blob(
                layer,
                LIMITS.signature_envelope_bytes,
                &format!("cosign payload in {tag}"),
            )
            .await?;
        found.push(Attached {
            manifest_digest: manifest_digest.clone(),
            artifact_type: artifact_type.clone(),
            media_type: layer.media_type.clone(),
            annotations: layer.annotations.clone(),
            blob,
        });
    }
    Ok(found)
}

#[cfg(test)]
mod tests;

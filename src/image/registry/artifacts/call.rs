//! One artifact operation's conversation ([`Call`]): bounded `GET`/`HEAD`s on the resolver's
//! registry conversation, a 404 as "absent", JSON documents and blobs whose sha256 must be the
//! digest asked for, and the errors they give.

use reqwest::Method;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use std::str::FromStr;

use super::super::Ctx;
use super::super::http::{Conversation, Failure, Fetched};
use super::{ArtifactError, Descriptor};
use crate::image::reference::Digest;
use crate::limits::LIMITS;

/// One operation's conversation and the context its errors are reported in.
pub(super) struct Call<'a> {
    pub(super) talk: Conversation<'a>,
    pub(super) ctx: Ctx<'a>,
    pub(super) repository: String,
}

impl Call<'_> {
    pub(super) fn too_large(&self, what: impl Into<String>, limit: u64) -> ArtifactError {
        ArtifactError::TooLarge {
            repository: self.repository.clone(),
            what: what.into(),
            limit,
        }
    }

    pub(super) fn invalid(
        &self,
        what: impl Into<String>,
        detail: impl Into<String>,
    ) -> ArtifactError {
        ArtifactError::Invalid {
            repository: self.repository.clone(),
            what: what.into(),
            detail: detail.into(),
        }
    }

    /// `GET`/`HEAD` of `tail`; `Ok(None)` for a 404.
    pub(super) async fn get(
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
    pub(super) async fn json<T: for<'de> Deserialize<'de>>(
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
        if !crate::json::json_depth_within(&body, LIMITS.json_depth) {
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
    pub(super) async fn blob(
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
        // The registry may redirect to a storage host (followed without credentials): the
        // body is accepted only with the digest asked for, checked below.
        let body = match self
            .talk
            .fetch_blob(&format!("blobs/{digest}"), limit)
            .await
        {
            Ok(mut f) => f.body.take().ok_or_else(|| self.too_large(what, limit))?,
            Err(Failure::Status { status: 404, .. }) => {
                return Err(ArtifactError::NotFound {
                    repository: self.repository.clone(),
                    reference: digest,
                });
            }
            Err(e) => return Err(ArtifactError::Registry(self.ctx.classify(e))),
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

pub(super) fn sha256(body: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(body)))
}

/// `d` if it is a well-formed `sha256:<hex>` digest (safe to put in a URL path).
pub(super) fn checked_digest(d: &str) -> Option<String> {
    Digest::from_str(d)
        .ok()
        .filter(|p| p.algorithm().as_str() == "sha256")
        .map(|p| p.to_string())
}

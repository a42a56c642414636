//! Walking what is attached to a digest: the referrers list (API, then the tag schema), the
//! candidate signature manifests of one format and their envelopes, and the legacy cosign
//! `.sig` tag; every count, size and digest bounded or checked.

use super::call::{Call, checked_digest};
use super::{
    ArtifactError, Descriptor, EMPTY_ARTIFACT_TYPE, Index, Manifest, OCI_INDEX, SignatureFormat,
};
use crate::limits::LIMITS;
use crate::signatures::cosign::SIMPLE_SIGNING_MEDIA_TYPE;
use crate::signatures::{Attached, Subject};

pub(super) async fn referrers_in(
    call: &mut Call<'_>,
    digest: &str,
) -> Result<Vec<Descriptor>, ArtifactError> {
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
pub(super) async fn attached_in(
    call: &mut Call<'_>,
    subject: &Subject,
    format: SignatureFormat,
    listed: &[Descriptor],
) -> Result<Vec<Attached>, ArtifactError> {
    // Entries typed as this format, then untyped or "empty" ones (cosign's bundles): only their
    // own manifest tells. Entries typed as another format are never fetched.
    let ambiguous = |d: &&Descriptor| {
        matches!(
            d.artifact_type.as_deref(),
            None | Some("") | Some(EMPTY_ARTIFACT_TYPE)
        )
    };
    let typed: Vec<&Descriptor> = listed
        .iter()
        .filter(|d| d.artifact_type.as_deref().is_some_and(|t| format.owns(t)))
        .collect();
    let repository = call.repository.clone();
    let too_many = |count: usize| ArtifactError::TooMany {
        repository: repository.clone(),
        what: format!("{format:?} signatures of {}", subject.digest),
        count,
        limit: LIMITS.signatures_per_format,
    };
    if typed.len() > LIMITS.signatures_per_format {
        return Err(too_many(typed.len()));
    }
    let candidates: Vec<&Descriptor> = typed
        .into_iter()
        .chain(listed.iter().filter(ambiguous))
        .collect();
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
        if found.len() == LIMITS.signatures_per_format {
            return Err(too_many(found.len() + 1));
        }
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
pub(super) async fn legacy_cosign_in(
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

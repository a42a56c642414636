//! The legacy cosign format: a simple-signing payload layer with its signature in the layer
//! annotation `dev.cosignproject.cosign/signature` (base64 of the signature over the payload
//! bytes exactly as stored).
//!
//! The payload (`{"critical":{"identity":{"docker-reference":..},"image":
//! {"docker-manifest-digest":..},"type":"cosign container image signature"},"optional":..}`)
//! must sign the subject's digest and name its repository. `docker-reference` is compared as a
//! repository, normalised as image references are (`nginx` is `docker.io/library/nginx`,
//! `index.docker.io` is `docker.io`); a tag or digest suffix on it is ignored, as cosign writes
//! the bare repository and the digest is bound by `docker-manifest-digest`.

use serde::Deserialize;

use super::{
    CERTIFICATE_ANNOTATION, CosignError, CosignPolicy, Description, KeyId, SIGNATURE_ANNOTATION,
    SIMPLE_SIGNING_TYPE, base64_decode,
};
use crate::image::reference::ImageRef;
use crate::signatures::{Attached, Subject};

#[derive(Deserialize)]
struct Payload {
    critical: Critical,
    #[serde(default)]
    optional: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct Critical {
    #[serde(rename = "type")]
    kind: String,
    image: Image,
    identity: Identity,
}

#[derive(Deserialize)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    digest: String,
}

#[derive(Deserialize)]
struct Identity {
    #[serde(rename = "docker-reference")]
    reference: String,
}

fn parse(blob: &[u8]) -> Result<Payload, CosignError> {
    serde_json::from_slice(blob).map_err(|e| CosignError::Malformed {
        what: "simple-signing payload",
        detail: e.to_string(),
    })
}

/// Verifies a legacy signature: the annotation's signature over the payload with a policy key,
/// then the payload's type, digest and repository.
pub(super) fn verify(
    policy: &CosignPolicy,
    subject: &Subject,
    sig: &Attached,
) -> Result<Vec<KeyId>, CosignError> {
    if sig.annotations.contains_key(CERTIFICATE_ANNOTATION) {
        return Err(CosignError::KeylessUnsupported(
            "signature with a signing certificate (keyless)".into(),
        ));
    }
    let encoded =
        sig.annotations
            .get(SIGNATURE_ANNOTATION)
            .ok_or_else(|| CosignError::Malformed {
                what: "signature",
                detail: format!("layer has no {SIGNATURE_ANNOTATION} annotation"),
            })?;
    let raw = base64_decode("signature", encoded)?;
    let (valid, revoked) = policy.signers(&sig.blob, &raw);
    if valid.is_empty() {
        return Err(match revoked.first() {
            Some(k) => CosignError::Revoked(k.id.clone()),
            None => policy.no_key_verifies(None),
        });
    }
    let payload = parse(&sig.blob)?;
    check_claims(&payload, subject)?;
    Ok(valid.into_iter().map(|k| k.id.clone()).collect())
}

fn check_claims(payload: &Payload, subject: &Subject) -> Result<(), CosignError> {
    let critical = &payload.critical;
    if critical.kind != SIMPLE_SIGNING_TYPE {
        return Err(CosignError::WrongType(format!(
            "critical.type is {:?}, not {SIMPLE_SIGNING_TYPE:?}",
            critical.kind
        )));
    }
    if critical.image.digest != subject.digest {
        return Err(CosignError::DigestMismatch {
            signed: critical.image.digest.clone(),
            expected: subject.digest.clone(),
        });
    }
    let expected = normalise(&subject.repository).unwrap_or_else(|| subject.repository.clone());
    match normalise(&critical.identity.reference) {
        Some(signed) if signed == expected => Ok(()),
        _ => Err(CosignError::RepositoryMismatch {
            signed: critical.identity.reference.clone(),
            expected,
        }),
    }
}

/// `host/path` of a reference, tag and digest dropped; `None` when it does not parse.
fn normalise(reference: &str) -> Option<String> {
    ImageRef::parse(reference).ok().map(|r| r.repository())
}

/// What a legacy payload claims.
pub(super) fn describe(sig: &Attached) -> Result<Description, CosignError> {
    let payload = parse(&sig.blob)?;
    let signing_time = payload
        .optional
        .as_ref()
        .and_then(|o| o.get("timestamp"))
        .and_then(|t| match t {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => n.as_i64().and_then(|secs| {
                time::OffsetDateTime::from_unix_timestamp(secs)
                    .ok()?
                    .format(&time::format_description::well_known::Rfc3339)
                    .ok()
            }),
            _ => None,
        });
    Ok(Description {
        format: "simple-signing",
        subjects: vec![payload.critical.image.digest],
        docker_reference: Some(payload.critical.identity.reference),
        key_hint: None,
        signatures: usize::from(sig.annotations.contains_key(SIGNATURE_ANNOTATION)),
        keyless: sig.annotations.contains_key(CERTIFICATE_ANNOTATION),
        tlog_entries: usize::from(sig.annotations.contains_key("dev.sigstore.cosign/bundle")),
        signing_time,
    })
}

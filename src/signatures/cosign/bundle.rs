//! The Sigstore bundle format (`application/vnd.dev.sigstore.bundle.v0.3+json`) as
//! `cosign sign --key` writes it: `verificationMaterial.publicKey.hint` (base64 of SHA-256 of
//! the key's SPKI DER; not trusted, only reported) and a `dsseEnvelope` whose signatures are
//! over DSSE's PAE(payloadType, payload) = `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`.
//! The payload must be an in-toto statement (`application/vnd.in-toto+json`) with predicate
//! type `https://sigstore.dev/cosign/sign/v1` and a subject whose `digest.sha256` is the
//! image's digest.
//!
//! A bundle with a signing certificate (`certificate`, `x509CertificateChain`: keyless) is
//! refused, as is a `messageSignature` bundle (`cosign sign-blob`, not an image signature).
//! Transparency-log entries and timestamps are carried but not checked.

use serde::Deserialize;

use super::{
    BUNDLE_MEDIA_TYPE_PREFIX, CosignError, CosignPolicy, Description, KeyId, SIGN_PREDICATE_TYPE,
    base64_decode,
};
use crate::limits::LIMITS;
use crate::signatures::Subject;

/// The DSSE payload type of an in-toto statement.
const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// The in-toto statement types accepted.
const STATEMENT_TYPES: [&str; 2] = [
    "https://in-toto.io/Statement/v1",
    "https://in-toto.io/Statement/v0.1",
];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bundle {
    media_type: String,
    #[serde(default)]
    verification_material: Option<Material>,
    #[serde(default)]
    dsse_envelope: Option<Envelope>,
    #[serde(default)]
    message_signature: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Material {
    #[serde(default)]
    public_key: Option<Hint>,
    #[serde(default)]
    certificate: Option<serde_json::Value>,
    #[serde(default)]
    x509_certificate_chain: Option<serde_json::Value>,
    #[serde(default)]
    tlog_entries: Vec<TlogEntry>,
}

#[derive(Deserialize)]
struct Hint {
    #[serde(default)]
    hint: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TlogEntry {
    #[serde(default)]
    integrated_time: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    payload: String,
    payload_type: String,
    #[serde(default)]
    signatures: Vec<DsseSignature>,
}

#[derive(Deserialize)]
struct DsseSignature {
    sig: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Statement {
    #[serde(rename = "_type")]
    kind: String,
    #[serde(default)]
    subject: Vec<StatementSubject>,
    predicate_type: String,
}

#[derive(Deserialize)]
struct StatementSubject {
    #[serde(default)]
    digest: std::collections::BTreeMap<String, String>,
}

fn malformed(detail: impl Into<String>) -> CosignError {
    CosignError::Malformed {
        what: "bundle",
        detail: detail.into(),
    }
}

/// Parses the bundle and refuses what v1alpha1 does not verify (keyless, message signatures).
fn parse(blob: &[u8]) -> Result<(Bundle, Envelope), CosignError> {
    let mut bundle: Bundle = serde_json::from_slice(blob).map_err(|e| malformed(e.to_string()))?;
    if !bundle.media_type.starts_with(BUNDLE_MEDIA_TYPE_PREFIX) {
        return Err(malformed(format!(
            "mediaType {:?} is not a Sigstore bundle",
            bundle.media_type
        )));
    }
    if let Some(m) = &bundle.verification_material
        && (m.certificate.is_some() || m.x509_certificate_chain.is_some())
    {
        return Err(CosignError::KeylessUnsupported(
            "bundle with a signing certificate (keyless)".into(),
        ));
    }
    let Some(envelope) = bundle.dsse_envelope.take() else {
        return Err(if bundle.message_signature.is_some() {
            CosignError::WrongType(
                "bundle holds a message signature (sign-blob), not a DSSE envelope".into(),
            )
        } else {
            malformed("no dsseEnvelope")
        });
    };
    if envelope.signatures.is_empty() {
        return Err(malformed("DSSE envelope without signatures"));
    }
    let limit = LIMITS.dsse_signatures_per_envelope;
    if envelope.signatures.len() > limit {
        return Err(CosignError::TooManySignatures {
            count: envelope.signatures.len(),
            limit,
            what: "DSSE signatures in one bundle",
        });
    }
    Ok((bundle, envelope))
}

/// DSSE's pre-authentication encoding.
pub(super) fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// The bundle's key hint as a key ID (`sha256:<hex>`), if it is one.
fn hint_key_id(bundle: &Bundle) -> Option<KeyId> {
    let hint = bundle
        .verification_material
        .as_ref()?
        .public_key
        .as_ref()?
        .hint
        .as_deref()?;
    let raw = base64_decode("hint", hint).ok()?;
    (raw.len() == 32).then(|| format!("sha256:{}", hex::encode(raw)))
}

/// Verifies a bundle: each DSSE signature with the policy keys, then the statement. When the
/// bundle's key hint names a policy key, the signatures are checked with that key alone (the
/// hint is the signer's claim: a signature another key made does not count); otherwise with
/// every policy key.
pub(super) fn verify(
    policy: &CosignPolicy,
    subject: &Subject,
    blob: &[u8],
) -> Result<Vec<KeyId>, CosignError> {
    let (bundle, envelope) = parse(blob)?;
    let body = base64_decode("DSSE payload", &envelope.payload)?;
    let message = pae(&envelope.payload_type, &body);
    let hinted = hint_key_id(&bundle);
    let mut valid: Vec<KeyId> = Vec::new();
    let mut revoked: Option<KeyId> = None;
    for s in &envelope.signatures {
        let raw = base64_decode("DSSE signature", &s.sig)?;
        let (good, bad) = policy.signers_hinted(&message, &raw, hinted.as_deref());
        for k in good {
            if !valid.contains(&k.id) {
                valid.push(k.id.clone());
            }
        }
        if revoked.is_none() {
            revoked = bad.first().map(|k| k.id.clone());
        }
    }
    if valid.is_empty() {
        return Err(match revoked {
            Some(id) => CosignError::Revoked(id),
            None => policy.no_key_verifies(hinted),
        });
    }
    check_statement(&envelope.payload_type, &body, subject)?;
    Ok(valid)
}

fn parse_statement(payload_type: &str, body: &[u8]) -> Result<Statement, CosignError> {
    if payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(CosignError::WrongType(format!(
            "DSSE payloadType is {payload_type:?}, not {IN_TOTO_PAYLOAD_TYPE:?}"
        )));
    }
    let statement: Statement =
        serde_json::from_slice(body).map_err(|e| CosignError::Malformed {
            what: "in-toto statement",
            detail: e.to_string(),
        })?;
    if !STATEMENT_TYPES.contains(&statement.kind.as_str()) {
        return Err(CosignError::WrongType(format!(
            "statement _type is {:?}",
            statement.kind
        )));
    }
    Ok(statement)
}

fn check_statement(payload_type: &str, body: &[u8], subject: &Subject) -> Result<(), CosignError> {
    let statement = parse_statement(payload_type, body)?;
    if statement.predicate_type != SIGN_PREDICATE_TYPE {
        return Err(CosignError::WrongType(format!(
            "predicateType is {:?}, not {SIGN_PREDICATE_TYPE:?}",
            statement.predicate_type
        )));
    }
    let want = subject.digest.strip_prefix("sha256:");
    let digests = subject_digests(&statement);
    if want.is_some_and(|w| {
        digests
            .iter()
            .any(|d| d.eq_ignore_ascii_case(&format!("sha256:{w}")))
    }) {
        return Ok(());
    }
    Err(CosignError::DigestMismatch {
        signed: if digests.is_empty() {
            "nothing".into()
        } else {
            digests.join(", ")
        },
        expected: subject.digest.clone(),
    })
}

/// The statement's subject digests as `sha256:<hex>`.
fn subject_digests(statement: &Statement) -> Vec<String> {
    statement
        .subject
        .iter()
        .filter_map(|s| s.digest.get("sha256"))
        .map(|hex| format!("sha256:{hex}"))
        .collect()
}

/// What a bundle claims.
pub(super) fn describe(blob: &[u8]) -> Result<Description, CosignError> {
    let keyless = matches!(parse(blob), Err(CosignError::KeylessUnsupported(_)));
    let bundle: Bundle = serde_json::from_slice(blob).map_err(|e| malformed(e.to_string()))?;
    let tlog = bundle
        .verification_material
        .as_ref()
        .map_or(&[][..], |m| m.tlog_entries.as_slice());
    let signing_time = tlog
        .iter()
        .filter_map(|e| match e.integrated_time.as_ref()? {
            serde_json::Value::String(s) => s.parse::<i64>().ok(),
            serde_json::Value::Number(n) => n.as_i64(),
            _ => None,
        })
        .next()
        .and_then(|secs| {
            time::OffsetDateTime::from_unix_timestamp(secs)
                .ok()?
                .format(&time::format_description::well_known::Rfc3339)
                .ok()
        });
    let (subjects, signatures) = match &bundle.dsse_envelope {
        Some(env) => {
            let body = base64_decode("DSSE payload", &env.payload)?;
            let statement = parse_statement(&env.payload_type, &body)?;
            (subject_digests(&statement), env.signatures.len())
        }
        None => (Vec::new(), 0),
    };
    Ok(Description {
        format: "bundle",
        subjects,
        docker_reference: None,
        key_hint: hint_key_id(&bundle),
        signatures,
        keyless,
        tlog_entries: tlog.len(),
        signing_time,
    })
}

//! The JWS envelope (`application/jose+json`): the flattened JWS JSON serialisation that
//! `notation` writes (`payload`, `protected`, `header` with `x5c`, `signature`), read with serde.
//! The signing input is the envelope's own base64url text, `protected.payload`, so nothing is
//! re-encoded before the signature is checked.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Deserialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::envelope::{
    self, AUTHENTIC_SIGNING_TIME, Algorithm, EXPIRY, Envelope, SIGNING_SCHEME, SIGNING_TIME,
    VERIFICATION_PLUGIN,
};
use super::{EnvelopeFormat, NotationError};

#[derive(Deserialize)]
struct Flattened {
    payload: String,
    protected: String,
    header: Unprotected,
    signature: String,
}

#[derive(Deserialize)]
struct Unprotected {
    x5c: Vec<String>,
}

fn malformed(detail: impl Into<String>) -> NotationError {
    NotationError::Malformed {
        format: "JWS",
        detail: detail.into(),
    }
}

fn b64url(field: &str, text: &str) -> Result<Vec<u8>, NotationError> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|e| malformed(format!("{field} is not base64url: {e}")))
}

/// Parses a JWS envelope.
pub(super) fn parse(blob: &[u8]) -> Result<Envelope, NotationError> {
    let env: Flattened = envelope::json_within_depth(blob, "JWS", "envelope")?;
    let protected_bytes = b64url("protected", &env.protected)?;
    let header: Map<String, Value> =
        envelope::json_within_depth(&protected_bytes, "JWS", "protected header")?;
    let payload = b64url("payload", &env.payload)?;
    let signature = b64url("signature", &env.signature)?;

    envelope::check_chain_len(env.header.x5c.len())?;
    let chain = env
        .header
        .x5c
        .iter()
        .enumerate()
        .map(|(i, c)| {
            STANDARD
                .decode(c)
                .map_err(|e| malformed(format!("x5c[{i}] is not base64: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;

    let text = |name: &str| -> Result<Option<String>, NotationError> {
        match header.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(malformed(format!("header {name} is not a string"))),
        }
    };
    let time = |name: &str| -> Result<Option<OffsetDateTime>, NotationError> {
        text(name)?
            .map(|s| {
                OffsetDateTime::parse(&s, &Rfc3339)
                    .map_err(|e| malformed(format!("header {name} {s:?} is not RFC 3339: {e}")))
            })
            .transpose()
    };
    let alg = text("alg")?.ok_or_else(|| malformed("no alg header"))?;
    let algorithm = Algorithm::from_jws(&alg).ok_or_else(|| {
        NotationError::Attributes(format!("algorithm {alg:?} is not one Notation allows"))
    })?;
    let critical = match header.get("crit") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                _ => Err(malformed("crit holds a non-string")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(malformed("crit is not an array")),
    };
    Ok(Envelope {
        format: EnvelopeFormat::Jws,
        algorithm,
        content_type: text("cty")?,
        signing_scheme: text(SIGNING_SCHEME)?.unwrap_or_default(),
        signing_time: time(SIGNING_TIME)?,
        authentic_signing_time: time(AUTHENTIC_SIGNING_TIME)?,
        expiry: time(EXPIRY)?,
        critical,
        attributes: header
            .keys()
            .filter(|k| !matches!(k.as_str(), "alg" | "crit" | "cty"))
            .cloned()
            .collect(),
        verification_plugin: header
            .get(VERIFICATION_PLUGIN)
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string)),
        signed: format!("{}.{}", env.protected, env.payload).into_bytes(),
        payload,
        signature,
        chain,
    })
}

//! The COSE envelope (`application/cose`): a tagged COSE_Sign1 read with `coset`. Notation's
//! attributes are text labels of the protected header (times as CBOR tag 1, epoch seconds); the
//! certificate chain is `x5chain` (label 33) of the unprotected header. The signature covers the
//! Sig_structure built from the protected header's original bytes.

use coset::cbor::value::Value;
use coset::iana::EnumI64 as _;
use coset::{ContentType, Label, RegisteredLabelWithPrivate, TaggedCborSerializable as _};
use time::OffsetDateTime;

use super::envelope::{
    self, AUTHENTIC_SIGNING_TIME, Algorithm, EXPIRY, Envelope, SIGNING_SCHEME, SIGNING_TIME,
    VERIFICATION_PLUGIN,
};
use super::{EnvelopeFormat, NotationError};

/// `x5chain` (RFC 9360).
const X5CHAIN: i64 = 33;

fn malformed(detail: impl Into<String>) -> NotationError {
    NotationError::Malformed {
        format: "COSE",
        detail: detail.into(),
    }
}

fn label_name(label: &Label) -> String {
    match label {
        Label::Int(i) => i.to_string(),
        Label::Text(t) => t.clone(),
    }
}

/// Parses a COSE_Sign1_Tagged envelope.
pub(super) fn parse(blob: &[u8]) -> Result<Envelope, NotationError> {
    let sign1 = coset::CoseSign1::from_tagged_slice(blob)
        .map_err(|e| malformed(format!("not a tagged COSE_Sign1: {e}")))?;
    let header = &sign1.protected.header;

    let algorithm = match &header.alg {
        Some(RegisteredLabelWithPrivate::Assigned(a)) => Algorithm::from_cose(a.to_i64()),
        Some(RegisteredLabelWithPrivate::PrivateUse(i)) => Algorithm::from_cose(*i),
        _ => None,
    }
    .ok_or_else(|| {
        NotationError::Attributes(format!(
            "algorithm {:?} is not one Notation allows",
            header.alg
        ))
    })?;
    let content_type = match &header.content_type {
        None => None,
        Some(ContentType::Text(t)) => Some(t.clone()),
        Some(ContentType::Assigned(a)) => Some(format!("CoAP content format {}", a.to_i64())),
    };
    let critical = header
        .crit
        .iter()
        .map(|c| match c {
            RegisteredLabelWithPrivate::Text(t) => t.clone(),
            RegisteredLabelWithPrivate::Assigned(a) => a.to_i64().to_string(),
            RegisteredLabelWithPrivate::PrivateUse(i) => i.to_string(),
        })
        .collect();
    let find = |name: &str| {
        header
            .rest
            .iter()
            .find(|(l, _)| matches!(l, Label::Text(t) if t == name))
            .map(|(_, v)| v)
    };
    let text = |name: &str| -> Result<Option<String>, NotationError> {
        match find(name) {
            None => Ok(None),
            Some(Value::Text(t)) => Ok(Some(t.clone())),
            Some(_) => Err(malformed(format!("header {name} is not text"))),
        }
    };
    let time = |name: &str| -> Result<Option<OffsetDateTime>, NotationError> {
        let Some(v) = find(name) else { return Ok(None) };
        let secs = match v {
            Value::Tag(1, inner) => match inner.as_ref() {
                Value::Integer(i) => i64::try_from(*i).ok(),
                Value::Float(f) if f.is_finite() => Some(f.trunc() as i64),
                _ => None,
            },
            _ => None,
        }
        .ok_or_else(|| malformed(format!("header {name} is not an epoch time (tag 1)")))?;
        OffsetDateTime::from_unix_timestamp(secs)
            .map(Some)
            .map_err(|e| malformed(format!("header {name}: {e}")))
    };

    let chain = match sign1
        .unprotected
        .rest
        .iter()
        .find(|(l, _)| *l == Label::Int(X5CHAIN))
        .map(|(_, v)| v)
    {
        None => return Err(malformed("no x5chain in the unprotected header")),
        Some(Value::Bytes(one)) => vec![one.clone()],
        Some(Value::Array(items)) => {
            envelope::check_chain_len(items.len())?;
            items
                .iter()
                .map(|v| match v {
                    Value::Bytes(b) => Ok(b.clone()),
                    _ => Err(malformed("x5chain holds a non-byte-string")),
                })
                .collect::<Result<_, _>>()?
        }
        Some(_) => return Err(malformed("x5chain is neither bytes nor an array")),
    };
    let payload = sign1
        .payload
        .clone()
        .ok_or_else(|| malformed("detached payload"))?;
    Ok(Envelope {
        format: EnvelopeFormat::Cose,
        algorithm,
        content_type,
        signing_scheme: text(SIGNING_SCHEME)?.unwrap_or_default(),
        signing_time: time(SIGNING_TIME)?,
        authentic_signing_time: time(AUTHENTIC_SIGNING_TIME)?,
        expiry: time(EXPIRY)?,
        critical,
        attributes: header.rest.iter().map(|(l, _)| label_name(l)).collect(),
        verification_plugin: text(VERIFICATION_PLUGIN).ok().flatten(),
        signed: sign1.tbs_data(b""),
        signature: sign1.signature.clone(),
        payload,
        chain,
    })
}

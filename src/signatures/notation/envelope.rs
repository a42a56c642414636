//! The format-neutral view of a Notation signature envelope: what [`super::jws`] and
//! [`super::cose`] read out of their bytes, the checks of the signed attributes that both
//! formats share (content type, signing scheme, signing time, critical headers), the algorithm
//! table and the signed payload (`targetArtifact`).

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use time::OffsetDateTime;

use super::{
    ARTIFACT_TYPE, Attached, EnvelopeFormat, MEDIA_TYPE_COSE, MEDIA_TYPE_JWS, NotationError,
};
use crate::json::json_depth;
use crate::limits::LIMITS;

/// The only payload content type Notation defines.
pub(super) const PAYLOAD_CONTENT_TYPE: &str = "application/vnd.cncf.notary.payload.v1+json";

/// Signed attribute names (JWS header names; COSE text labels).
pub(super) const SIGNING_SCHEME: &str = "io.cncf.notary.signingScheme";
pub(super) const SIGNING_TIME: &str = "io.cncf.notary.signingTime";
pub(super) const AUTHENTIC_SIGNING_TIME: &str = "io.cncf.notary.authenticSigningTime";
pub(super) const EXPIRY: &str = "io.cncf.notary.expiry";
pub(super) const VERIFICATION_PLUGIN: &str = "io.cncf.notary.verificationPlugin";
pub(super) const VERIFICATION_PLUGIN_MIN_VERSION: &str =
    "io.cncf.notary.verificationPluginMinVersion";

/// Signature algorithms Notation allows, each tied to one key type and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Algorithm {
    /// RSASSA-PSS with SHA-256 (RSA 2048).
    Ps256,
    /// RSASSA-PSS with SHA-384 (RSA 3072).
    Ps384,
    /// RSASSA-PSS with SHA-512 (RSA 4096).
    Ps512,
    /// ECDSA P-256 with SHA-256.
    Es256,
    /// ECDSA P-384 with SHA-384.
    Es384,
    /// ECDSA P-521 with SHA-512.
    Es512,
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Algorithm::Ps256 => "PS256",
            Algorithm::Ps384 => "PS384",
            Algorithm::Ps512 => "PS512",
            Algorithm::Es256 => "ES256",
            Algorithm::Es384 => "ES384",
            Algorithm::Es512 => "ES512",
        })
    }
}

impl Algorithm {
    /// The JWS `alg` value.
    pub(super) fn from_jws(alg: &str) -> Option<Self> {
        Some(match alg {
            "PS256" => Algorithm::Ps256,
            "PS384" => Algorithm::Ps384,
            "PS512" => Algorithm::Ps512,
            "ES256" => Algorithm::Es256,
            "ES384" => Algorithm::Es384,
            "ES512" => Algorithm::Es512,
            _ => return None,
        })
    }

    /// The COSE algorithm identifier (IANA COSE Algorithms registry).
    pub(super) fn from_cose(alg: i64) -> Option<Self> {
        Some(match alg {
            -37 => Algorithm::Ps256,
            -38 => Algorithm::Ps384,
            -39 => Algorithm::Ps512,
            -7 => Algorithm::Es256,
            -35 => Algorithm::Es384,
            -36 => Algorithm::Es512,
            _ => return None,
        })
    }
}

/// Notation's signing schemes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scheme {
    /// `notary.x509`: signing time from the signer, `ca` trust store.
    X509,
    /// `notary.x509.signingAuthority`: authentic signing time, `signingAuthority` trust store.
    SigningAuthority,
}

/// A parsed envelope, not yet checked.
#[derive(Debug, Clone)]
pub(super) struct Envelope {
    pub format: EnvelopeFormat,
    pub algorithm: Algorithm,
    /// The protected content type (`cty`), if present.
    pub content_type: Option<String>,
    pub signing_scheme: String,
    pub signing_time: Option<OffsetDateTime>,
    pub authentic_signing_time: Option<OffsetDateTime>,
    pub expiry: Option<OffsetDateTime>,
    /// The names listed in `crit`.
    pub critical: Vec<String>,
    /// Every protected header name present that is not one of the format's own (`alg`, `crit`,
    /// `cty`): Notation's attributes and extended attributes.
    pub attributes: Vec<String>,
    pub verification_plugin: Option<String>,
    /// The signed payload bytes.
    pub payload: Vec<u8>,
    /// The bytes the signature covers (JWS signing input; COSE Sig_structure).
    pub signed: Vec<u8>,
    pub signature: Vec<u8>,
    /// Certificates, DER, signing certificate first.
    pub chain: Vec<Vec<u8>>,
}

/// Parses the artifact's envelope by its media type, within the size limit.
pub(super) fn parse(sig: &Attached) -> Result<Envelope, NotationError> {
    if sig.artifact_type != ARTIFACT_TYPE {
        return Err(NotationError::NotASignature(sig.artifact_type.clone()));
    }
    let limit = LIMITS.signature_envelope_bytes;
    if sig.blob.len() as u64 > limit {
        return Err(NotationError::TooLarge {
            what: "signature envelope bytes",
            size: sig.blob.len() as u64,
            limit,
        });
    }
    match sig.media_type.as_str() {
        MEDIA_TYPE_JWS => super::jws::parse(&sig.blob),
        MEDIA_TYPE_COSE => super::cose::parse(&sig.blob),
        other => Err(NotationError::UnsupportedEnvelope(other.to_string())),
    }
}

/// Refuses more certificates than the chain limit (before any is parsed).
pub(super) fn check_chain_len(len: usize) -> Result<(), NotationError> {
    let limit = LIMITS.certificate_chain_len;
    if len > limit {
        return Err(NotationError::TooLarge {
            what: "certificate chain length",
            size: len as u64,
            limit: limit as u64,
        });
    }
    Ok(())
}

impl Envelope {
    /// Notation's checks of the signed attributes, the same for JWS and COSE: the payload
    /// content type, the signing scheme and its time attribute, and `crit` (lists every
    /// attribute that must be critical, names only present attributes, and nothing trustgate
    /// does not understand).
    pub(super) fn check_attributes(&self) -> Result<Scheme, NotationError> {
        let bad = |m: String| Err(NotationError::Attributes(m));
        match self.content_type.as_deref() {
            Some(PAYLOAD_CONTENT_TYPE) => {}
            Some(other) => {
                return bad(format!(
                    "content type {other:?} is not {PAYLOAD_CONTENT_TYPE}"
                ));
            }
            None => return bad("no content type (cty)".into()),
        }
        let scheme = match self.signing_scheme.as_str() {
            "notary.x509" => Scheme::X509,
            "notary.x509.signingAuthority" => Scheme::SigningAuthority,
            "" => return bad(format!("no {SIGNING_SCHEME}")),
            other => return bad(format!("signing scheme {other:?} is not supported")),
        };
        let mut must_be_critical = vec![SIGNING_SCHEME];
        match scheme {
            Scheme::X509 => {
                if self.authentic_signing_time.is_some() {
                    return bad(format!(
                        "{AUTHENTIC_SIGNING_TIME} is not allowed with notary.x509"
                    ));
                }
                if self.signing_time.is_none() {
                    return bad(format!("no {SIGNING_TIME}"));
                }
            }
            Scheme::SigningAuthority => {
                if self.signing_time.is_some() {
                    return bad(format!(
                        "{SIGNING_TIME} is not allowed with notary.x509.signingAuthority"
                    ));
                }
                if self.authentic_signing_time.is_none() {
                    return bad(format!("no {AUTHENTIC_SIGNING_TIME}"));
                }
                must_be_critical.push(AUTHENTIC_SIGNING_TIME);
            }
        }
        if self.expiry.is_some() {
            must_be_critical.push(EXPIRY);
        }
        if self.critical.is_empty() {
            return bad("no crit header".into());
        }
        for name in &self.critical {
            if !self.attributes.iter().any(|a| a == name) {
                return bad(format!("{name:?} is marked critical but not present"));
            }
            match name.as_str() {
                SIGNING_SCHEME | EXPIRY | AUTHENTIC_SIGNING_TIME | SIGNING_TIME => {}
                VERIFICATION_PLUGIN | VERIFICATION_PLUGIN_MIN_VERSION => {
                    return Err(NotationError::PluginRequired(
                        self.verification_plugin.clone().unwrap_or_default(),
                    ));
                }
                other => return Err(NotationError::UnknownCritical(other.to_string())),
            }
        }
        if let Some(missing) = must_be_critical
            .iter()
            .find(|m| !self.critical.iter().any(|c| c == *m))
        {
            return bad(format!("{missing} must be marked critical"));
        }
        if let Some(plugin) = &self.verification_plugin {
            return Err(NotationError::PluginRequired(plugin.clone()));
        }
        Ok(scheme)
    }
}

/// The signed descriptor.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct TargetArtifact {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default)]
    #[allow(dead_code)]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Payload {
    #[serde(rename = "targetArtifact")]
    target_artifact: TargetArtifact,
}

/// Parses the payload (`{"targetArtifact": {...}}`).
pub(super) fn target_artifact(payload: &[u8]) -> Result<TargetArtifact, NotationError> {
    let p: Payload = json_within_depth(payload, "payload of the", "targetArtifact")?;
    Ok(p.target_artifact)
}

/// Decodes JSON after checking its nesting against the `json_depth` limit.
pub(super) fn json_within_depth<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    format: &'static str,
    what: &str,
) -> Result<T, NotationError> {
    let depth = json_depth(bytes);
    if depth > LIMITS.json_depth {
        return Err(NotationError::TooLarge {
            what: "JSON nesting depth",
            size: depth as u64,
            limit: LIMITS.json_depth as u64,
        });
    }
    serde_json::from_slice(bytes).map_err(|e| NotationError::Malformed {
        format,
        detail: format!("{what}: {e}"),
    })
}

//! What `trustgate inspect` shows about the Notation and cosign signatures attached to an image
//! digest: for each artifact, its format, its manifest digest and what it names, read with the
//! formats' `describe` functions. Nothing here is verified (no key, trust store, identity or
//! expiry is checked): the listing helps write a policy; `check` decides.
//!
//! [`Listing::text`] prints one block per signature, under a header that says the signatures are
//! attached, not verified; [`Listing::json`] gives the same as the fields `signatureSubject`,
//! `signatures` and `signatureErrors` of `inspect --output json`.

use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use super::cosign::{self, CosignError};
use super::notation::{self, NotationError};
use super::{Attached, Subject};

/// The header line's note.
pub const NOT_VERIFIED: &str = "attached, not verified";

/// One attached signature artifact as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Digest of the signature's manifest.
    pub manifest_digest: String,
    /// What its envelope or payload claims, or why it could not be read.
    pub claims: Claims,
}

/// What one signature claims, by format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claims {
    /// A Notation signature (JWS or COSE envelope).
    Notation(Result<notation::Description, NotationError>),
    /// A cosign signature: `legacy` for the `sha256-<hex>.sig` simple-signing format, else a
    /// Sigstore bundle.
    Cosign {
        /// Legacy simple-signing payload (the `.sig` tag).
        legacy: bool,
        /// What it claims.
        claims: Result<cosign::Description, CosignError>,
    },
}

/// The signatures attached to one digest, and the formats whose signatures could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// The manifest the image resolved to.
    pub subject: Subject,
    /// Every signature read, Notation first.
    pub signatures: Vec<Listed>,
    /// `(format, why)` for each format whose artifacts could not be fetched.
    pub errors: Vec<(&'static str, String)>,
}

impl Listed {
    /// Reads a Notation signature artifact.
    pub fn notation(sig: &Attached) -> Self {
        Listed {
            manifest_digest: sig.manifest_digest.clone(),
            claims: Claims::Notation(notation::describe(sig)),
        }
    }

    /// Reads a cosign signature artifact.
    pub fn cosign(sig: &Attached) -> Self {
        Listed {
            manifest_digest: sig.manifest_digest.clone(),
            claims: Claims::Cosign {
                legacy: sig.media_type == cosign::SIMPLE_SIGNING_MEDIA_TYPE,
                claims: cosign::describe(sig),
            },
        }
    }

    /// `Notation`, `Cosign`.
    pub fn format(&self) -> &'static str {
        match self.claims {
            Claims::Notation(_) => "Notation",
            Claims::Cosign { .. } => "Cosign",
        }
    }

    /// `JWS`, `COSE`, `bundle`, `legacy .sig`; `unreadable` for a Notation envelope that does
    /// not parse.
    pub fn envelope(&self) -> String {
        match &self.claims {
            Claims::Notation(Ok(d)) => d.format.to_string(),
            Claims::Notation(Err(_)) => "unreadable".into(),
            Claims::Cosign { legacy: true, .. } => "legacy .sig".into(),
            Claims::Cosign { legacy: false, .. } => "bundle".into(),
        }
    }
}

impl Listing {
    /// The listing of `subject`'s signatures from what the registry returned for each format.
    pub fn new(
        subject: Subject,
        notation: Result<Vec<Attached>, String>,
        cosign: Result<Vec<Attached>, String>,
    ) -> Self {
        let mut signatures = Vec::new();
        let mut errors = Vec::new();
        match notation {
            Ok(sigs) => signatures.extend(sigs.iter().map(Listed::notation)),
            Err(e) => errors.push(("Notation", e)),
        }
        match cosign {
            Ok(sigs) => signatures.extend(sigs.iter().map(Listed::cosign)),
            Err(e) => errors.push(("Cosign", e)),
        }
        Listing {
            subject,
            signatures,
            errors,
        }
    }

    /// One block per signature under a header naming the digest.
    pub fn text(&self) -> String {
        let mut out = format!(
            "signatures on {}@{} ({NOT_VERIFIED}):\n",
            self.subject.repository, self.subject.digest
        );
        if self.signatures.is_empty() && self.errors.is_empty() {
            out.push_str("  (none)\n");
        }
        for s in &self.signatures {
            out.push_str(&format!(
                "  {} {}  manifest {}\n",
                s.format(),
                s.envelope(),
                s.manifest_digest
            ));
            // What the artifacts say is the attacker's text: printed with controls escaped.
            for (k, v) in self.fields(s) {
                out.push_str(&format!("    {k:<10} {}\n", crate::text::printable(&v)));
            }
        }
        for (format, why) in &self.errors {
            let why = crate::text::printable(&why.to_string());
            out.push_str(&format!("  {format} signatures could not be read: {why}\n"));
        }
        out
    }

    /// `(label, value)` lines of one signature's block.
    fn fields(&self, s: &Listed) -> Vec<(&'static str, String)> {
        let signs = |digest: &str| {
            if digest == self.subject.digest {
                digest.to_string()
            } else {
                format!("{digest} (NOT this image's digest)")
            }
        };
        match &s.claims {
            Claims::Notation(Ok(d)) => vec![
                ("subject", d.subject.clone()),
                ("issuer", d.issuer.clone()),
                ("key", format!("{} ({})", d.key_type, d.algorithm)),
                ("signed at", d.signing_time.map_or("none".into(), rfc3339)),
                ("expires", d.expiry.map_or("never".into(), rfc3339)),
                (
                    "signs",
                    format!(
                        "{} ({}, {} bytes)",
                        signs(&d.target_digest),
                        d.target_media_type,
                        d.target_size
                    ),
                ),
            ],
            Claims::Cosign { claims: Ok(d), .. } => {
                let mut v = vec![
                    ("key ID", cosign_key(d)),
                    (
                        "reference",
                        d.docker_reference
                            .clone()
                            .unwrap_or_else(|| "(none: a bundle names no repository)".into()),
                    ),
                ];
                if d.subjects.is_empty() {
                    v.push(("signs", "(no digest)".into()));
                }
                v.extend(d.subjects.iter().map(|digest| ("signs", signs(digest))));
                v.push((
                    "timestamp",
                    d.signing_time.clone().unwrap_or_else(|| "none".into()),
                ));
                v
            }
            Claims::Notation(Err(e)) => vec![("error", e.to_string())],
            Claims::Cosign { claims: Err(e), .. } => vec![("error", e.to_string())],
        }
    }

    /// `signatureSubject`, `signatures` and `signatureErrors`, to merge into a JSON document.
    pub fn json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert(
            "signatureSubject".into(),
            json!({
                "repository": self.subject.repository,
                "digest": self.subject.digest,
                "mediaType": self.subject.media_type,
                "size": self.subject.size,
                "note": NOT_VERIFIED,
            }),
        );
        m.insert(
            "signatures".into(),
            Value::Array(self.signatures.iter().map(signature_json).collect()),
        );
        m.insert(
            "signatureErrors".into(),
            Value::Array(
                self.errors
                    .iter()
                    .map(|(f, e)| json!({"format": f, "error": e}))
                    .collect(),
            ),
        );
        m
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// The key a cosign signature names: the bundle's key hint, else why it names none.
fn cosign_key(d: &cosign::Description) -> String {
    match (&d.key_hint, d.keyless) {
        (Some(id), _) => id.clone(),
        (None, true) => "keyless (a signing certificate, not supported by policies)".into(),
        (None, false) if d.format == "simple-signing" => {
            "unknown (a legacy signature names no key)".into()
        }
        (None, false) => "unknown (the bundle has no key hint)".into(),
    }
}

fn signature_json(s: &Listed) -> Value {
    let mut v = json!({
        "format": s.format(),
        "envelope": s.envelope(),
        "manifestDigest": s.manifest_digest,
    });
    let extra = match &s.claims {
        Claims::Notation(Ok(d)) => json!({
            "subject": d.subject,
            "issuer": d.issuer,
            "keyType": d.key_type,
            "algorithm": d.algorithm,
            "signingScheme": d.signing_scheme,
            "signingTime": d.signing_time.map(rfc3339),
            "expiry": d.expiry.map(rfc3339),
            "signedDigest": d.target_digest,
            "signedMediaType": d.target_media_type,
            "signedSize": d.target_size,
            "certificateThumbprints": d.thumbprints,
        }),
        Claims::Cosign { claims: Ok(d), .. } => json!({
            "keyID": d.key_hint,
            "keyless": d.keyless,
            "dockerReference": d.docker_reference,
            "signedDigests": d.subjects,
            "timestamp": d.signing_time,
            "transparencyLogEntries": d.tlog_entries,
        }),
        Claims::Notation(Err(e)) => json!({"error": e.to_string()}),
        Claims::Cosign { claims: Err(e), .. } => json!({"error": e.to_string()}),
    };
    if let (Some(obj), Value::Object(more)) = (v.as_object_mut(), extra) {
        obj.extend(more);
    }
    v
}

#[cfg(test)]
mod tests;

//! Certificates, SubjectPublicKeyInfo and PEM, read the way Go's `crypto/x509` and
//! `encoding/pem` read them (the parts notary relies on).

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P384_SHA256_ASN1, ECDSA_P521_SHA256_FIXED, ParsedPublicKey,
    VerificationAlgorithm,
};
use time::OffsetDateTime;
use x509_cert::certificate::{CertificateInner, Profile};
use x509_cert::der::asn1::{AnyRef, ObjectIdentifier, UintRef};
use x509_cert::der::{Decode, Encode, Reader, Tag, Tagged};
use x509_cert::ext::pkix::BasicConstraints;
use x509_cert::name::Name;
use x509_cert::spki::SubjectPublicKeyInfoRef;

use super::{CertInfo, Curve, KeyAlgorithm, KeyError, Material, decode_go_bytes};

const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const OID_P224: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.33");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
const OID_COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
/// The signature algorithms Go maps to SHA1WithRSA, DSAWithSHA1 and ECDSAWithSHA1.
const SHA1_SIGNATURE_OIDS: [ObjectIdentifier; 4] = [
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.5"),
    ObjectIdentifier::new_unwrap("1.3.14.3.2.29"),
    ObjectIdentifier::new_unwrap("1.2.840.10040.4.3"),
    ObjectIdentifier::new_unwrap("1.2.840.10045.4.1"),
];

pub(super) struct ParsedSpki {
    pub(super) algorithm: KeyAlgorithm,
    pub(super) material: Material,
}

/// Go's `x509.ParsePKIXPublicKey` for EC (named P-224/256/384/521 curve, uncompressed point on
/// the curve), RSA (NULL parameters, positive modulus and exponent) and Ed25519 (no parameters).
pub(super) fn parse_spki(der: &[u8]) -> Result<ParsedSpki, KeyError> {
    let spki = SubjectPublicKeyInfoRef::from_der(der)
        .map_err(|e| KeyError::PublicKey(format!("not a DER SubjectPublicKeyInfo: {e}")))?;
    let key_bytes = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| KeyError::PublicKey("public key BIT STRING has unused bits".into()))?;
    let params = spki.algorithm.parameters;
    let oid = spki.algorithm.oid;
    if oid == OID_EC_PUBLIC_KEY {
        let curve_oid = params
            .and_then(|p| ObjectIdentifier::try_from(p).ok())
            .ok_or_else(|| KeyError::PublicKey("EC key without a named curve".into()))?;
        let (curve, field_len) = match curve_oid {
            c if c == OID_P256 => (Some(Curve::P256), 32),
            c if c == OID_P384 => (Some(Curve::P384), 48),
            c if c == OID_P521 => (Some(Curve::P521), 66),
            c if c == OID_P224 => (None, 28),
            c => {
                return Err(KeyError::PublicKey(format!(
                    "unsupported elliptic curve {c}"
                )));
            }
        };
        if key_bytes.len() != 1 + 2 * field_len || key_bytes.first() != Some(&4) {
            return Err(KeyError::PublicKey(
                "EC public key is not an uncompressed point".into(),
            ));
        }
        let Some(curve) = curve else {
            return Ok(ParsedSpki {
                algorithm: KeyAlgorithm::Ecdsa,
                material: Material::Unusable("P-224 keys are not supported".into()),
            });
        };
        let alg: &'static dyn VerificationAlgorithm = match curve {
            Curve::P256 => &ECDSA_P256_SHA256_FIXED,
            Curve::P384 => &ECDSA_P384_SHA256_ASN1,
            Curve::P521 => &ECDSA_P521_SHA256_FIXED,
        };
        ParsedPublicKey::new(alg, key_bytes)
            .map_err(|_| KeyError::PublicKey("EC point is not on the curve".into()))?;
        Ok(ParsedSpki {
            algorithm: KeyAlgorithm::Ecdsa,
            material: Material::Ec {
                curve,
                point: key_bytes.to_vec(),
            },
        })
    } else if oid == OID_RSA_ENCRYPTION {
        if !params.is_some_and(AnyRef::is_null) {
            return Err(KeyError::PublicKey(
                "RSA key without NULL parameters".into(),
            ));
        }
        let bits = rsa_modulus_bits(key_bytes)?;
        Ok(ParsedSpki {
            algorithm: KeyAlgorithm::Rsa,
            material: Material::Rsa {
                pkcs1: key_bytes.to_vec(),
                bits,
            },
        })
    } else if oid == OID_ED25519 {
        if params.is_some() {
            return Err(KeyError::PublicKey("Ed25519 key with parameters".into()));
        }
        let raw: [u8; 32] = key_bytes.try_into().map_err(|_| {
            KeyError::PublicKey(format!(
                "an Ed25519 key has 32 bytes, not {}",
                key_bytes.len()
            ))
        })?;
        Ok(ParsedSpki {
            algorithm: KeyAlgorithm::Ed25519,
            material: Material::Ed25519(raw),
        })
    } else {
        Err(KeyError::Unsupported(format!("public key algorithm {oid}")))
    }
}

/// The significant bytes of the modulus of a PKCS#1 `RSAPublicKey` (no leading zeros), or
/// `None` when it does not parse.
pub(super) fn rsa_modulus(pkcs1: &[u8]) -> Option<Vec<u8>> {
    let seq = AnyRef::from_der(pkcs1).ok()?;
    seq.sequence(|r| {
        let n: UintRef<'_> = r.decode()?;
        let _e: UintRef<'_> = r.decode()?;
        let bytes = n.as_bytes();
        let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
        Ok::<_, x509_cert::der::Error>(bytes.get(first..).unwrap_or_default().to_vec())
    })
    .ok()
}

/// Bit length of the modulus of a PKCS#1 `RSAPublicKey ::= SEQUENCE { n INTEGER, e INTEGER }`.
fn rsa_modulus_bits(pkcs1: &[u8]) -> Result<usize, KeyError> {
    let bad = |what: &str| KeyError::PublicKey(format!("invalid RSA public key: {what}"));
    let seq = AnyRef::from_der(pkcs1).map_err(|e| bad(&e.to_string()))?;
    let (n, e) = seq
        .sequence(|r| {
            let n: UintRef<'_> = r.decode()?;
            let e: UintRef<'_> = r.decode()?;
            Ok::<_, x509_cert::der::Error>((n, e))
        })
        .map_err(|e| bad(&e.to_string()))?;
    let n = n.as_bytes();
    let Some(first) = n.iter().position(|&b| b != 0) else {
        return Err(bad("modulus is not positive"));
    };
    if e.as_bytes().iter().all(|&b| b == 0) {
        return Err(bad("exponent is not positive"));
    }
    let significant = n.get(first..).unwrap_or_default();
    let lead = significant.first().copied().unwrap_or(0);
    Ok(significant.len().saturating_sub(1) * 8 + (8 - lead.leading_zeros() as usize))
}

/// Go-like certificate profile: serial numbers of any length (Go accepts them).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Clone, Copy, Default)]
struct GoProfile;

impl Profile for GoProfile {
    fn check_serial_number(
        _serial: &x509_cert::serial_number::SerialNumber<Self>,
    ) -> x509_cert::der::Result<()> {
        Ok(())
    }
}

pub(super) struct ParsedCert {
    pub(super) info: CertInfo,
    pub(super) material: Material,
}

pub(super) fn parse_certificate(der: &[u8]) -> Result<ParsedCert, KeyError> {
    let cert = CertificateInner::<GoProfile>::from_der(der)
        .map_err(|e| KeyError::Certificate(format!("not a DER X.509 certificate: {e}")))?;
    let tbs = cert.tbs_certificate();
    // Go fails the whole certificate on attribute values that are not strings.
    go_name_common_name(tbs.issuer())?;
    let common_name = go_name_common_name(tbs.subject())?;
    let validity = tbs.validity();
    let not_before = to_offset(validity.not_before)?;
    let not_after = to_offset(validity.not_after)?;
    let is_ca = match tbs.get_extension::<BasicConstraints>() {
        Ok(Some((_, bc))) => bc.ca,
        Ok(None) => false,
        Err(e) => {
            return Err(KeyError::Certificate(format!(
                "invalid basic constraints: {e}"
            )));
        }
    };
    let sha1_signature = SHA1_SIGNATURE_OIDS.contains(&cert.signature_algorithm().oid);
    let spki_der = tbs
        .subject_public_key_info()
        .to_der()
        .map_err(|e| KeyError::Certificate(format!("subject public key: {e}")))?;
    let (key_algorithm, material) = match parse_spki(&spki_der) {
        Ok(p) => (p.algorithm, p.material),
        // Go parses certificates with unknown key algorithms; they just never verify.
        Err(KeyError::Unsupported(reason)) => (KeyAlgorithm::Other, Material::Unusable(reason)),
        Err(e) => {
            return Err(KeyError::Certificate(format!(
                "subject public key: {}",
                e.inner_message()
            )));
        }
    };
    let rsa_bits = match &material {
        Material::Rsa { bits, .. } => Some(*bits),
        _ => None,
    };
    Ok(ParsedCert {
        info: CertInfo {
            common_name,
            not_before,
            not_after,
            is_ca,
            sha1_signature,
            rsa_bits,
            key_algorithm,
            spki_der,
            der: der.to_vec(),
        },
        material,
    })
}

fn to_offset(t: x509_cert::time::Time) -> Result<OffsetDateTime, KeyError> {
    i64::try_from(t.to_unix_duration().as_secs())
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .ok_or_else(|| KeyError::Certificate("validity time out of range".into()))
}

/// Validates every attribute value as Go's `parseASN1String` and returns the last CN.
fn go_name_common_name(name: &Name) -> Result<Option<String>, KeyError> {
    let mut cn = None;
    for rdn in name.as_ref().iter() {
        for atv in rdn.iter() {
            let value = go_asn1_string(atv.value.tag(), atv.value.value()).map_err(|e| {
                KeyError::Certificate(format!("invalid name attribute {}: {e}", atv.oid))
            })?;
            if atv.oid == OID_COMMON_NAME {
                cn = Some(value);
            }
        }
    }
    Ok(cn)
}

fn go_asn1_string(tag: Tag, value: &[u8]) -> Result<String, &'static str> {
    match tag {
        Tag::TeletexString => Ok(String::from_utf8_lossy(value).into_owned()),
        Tag::PrintableString => {
            let printable = |b: u8| {
                b.is_ascii_alphanumeric()
                    || (b'\''..=b')').contains(&b)
                    || (b'+'..=b'/').contains(&b)
                    || matches!(b, b' ' | b':' | b'=' | b'?' | b'*' | b'&')
            };
            if value.iter().all(|&b| printable(b)) {
                Ok(String::from_utf8_lossy(value).into_owned())
            } else {
                Err("invalid PrintableString")
            }
        }
        Tag::Utf8String => std::str::from_utf8(value)
            .map(str::to_owned)
            .map_err(|_| "invalid UTF-8 string"),
        Tag::BmpString => {
            if !value.len().is_multiple_of(2) {
                return Err("invalid BMPString");
            }
            let mut units: Vec<u16> = value
                .chunks_exact(2)
                .map(|c| match c {
                    [hi, lo] => u16::from_be_bytes([*hi, *lo]),
                    _ => 0,
                })
                .collect();
            if units.last() == Some(&0) {
                units.pop();
            }
            Ok(char::decode_utf16(units)
                .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
                .collect())
        }
        Tag::Ia5String => {
            if value.is_ascii() {
                Ok(String::from_utf8_lossy(value).into_owned())
            } else {
                Err("invalid IA5String")
            }
        }
        Tag::NumericString => {
            if value.iter().all(|&b| b.is_ascii_digit() || b == b' ') {
                Ok(String::from_utf8_lossy(value).into_owned())
            } else {
                Err("invalid NumericString")
            }
        }
        _ => Err("unsupported string type"),
    }
}

// ---------------------------------------------------------------------------------------------
// PEM, as Go's encoding/pem `Decode`

/// See [`pem_decode`].
const MAX_PEM_CANDIDATES: usize = 16;

pub(super) struct PemBlock {
    pub(super) label: String,
    pub(super) der: Vec<u8>,
}

/// Go's `pem.Decode`: the first well-formed block anywhere in `data` (malformed candidates are
/// skipped), and the rest of the input after it.
///
/// Unlike Go, at most [`MAX_PEM_CANDIDATES`] malformed `BEGIN` lines that reach the search for
/// their `END` line are skipped: each such attempt may scan the rest of the input, so hostile
/// input could otherwise cost quadratic time.
pub(super) fn pem_decode(data: &[u8]) -> Option<(PemBlock, &[u8])> {
    const START: &[u8] = b"\n-----BEGIN ";
    const END: &[u8] = b"\n-----END ";
    const EOL: &[u8] = b"-----";

    let mut rest = data;
    let mut attempts = 0;
    loop {
        if let Some(after) = rest.strip_prefix(&START[1..]) {
            rest = after;
        } else {
            let i = find(rest, START)?;
            rest = rest.get(i + START.len()..)?;
        }
        let (type_line, after) = get_line(rest);
        rest = after;
        let Some(label) = type_line.strip_suffix(EOL) else {
            continue;
        };
        let mut has_headers = false;
        loop {
            if rest.is_empty() {
                return None;
            }
            let (line, next) = get_line(rest);
            if !line.contains(&b':') {
                break;
            }
            has_headers = true;
            rest = next;
        }
        attempts += 1;
        if attempts > MAX_PEM_CANDIDATES {
            return None;
        }
        let (end_index, trailer_index) = if !has_headers && rest.starts_with(&END[1..]) {
            (0, END.len() - 1)
        } else {
            // Without any END line ahead, no later BEGIN line can form a block either.
            let i = find(rest, END)?;
            (i, i + END.len())
        };
        let Some(trailer) = rest.get(trailer_index..) else {
            continue;
        };
        let trailer_len = label.len() + EOL.len();
        if trailer.len() < trailer_len {
            continue;
        }
        let (end_line, rest_of_end_line) = trailer.split_at(trailer_len);
        if !end_line.starts_with(label) || !end_line.ends_with(EOL) {
            continue;
        }
        if !get_line(rest_of_end_line).0.is_empty() {
            continue;
        }
        let Some(body) = rest.get(..end_index) else {
            continue;
        };
        let Ok(der) = decode_go_bytes(body, |b| matches!(b, b' ' | b'\t' | b'\r' | b'\n')) else {
            continue;
        };
        let after_block = rest.get(end_index + END.len() - 1..).unwrap_or_default();
        return Some((
            PemBlock {
                label: String::from_utf8_lossy(label).into_owned(),
                der,
            },
            get_line(after_block).1,
        ));
    }
}

/// Go's `getLine`: up to the next `\n` (excluded), right-trimmed of spaces, tabs and `\r`.
fn get_line(data: &[u8]) -> (&[u8], &[u8]) {
    let (line, rest) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => {
            let (line, rest) = data.split_at(i);
            (line, rest.get(1..).unwrap_or_default())
        }
        None => (data, &[][..]),
    };
    let end = line
        .iter()
        .rposition(|&b| !matches!(b, b' ' | b'\t' | b'\r'))
        .map_or(0, |i| i + 1);
    (line.get(..end).unwrap_or_default(), rest)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

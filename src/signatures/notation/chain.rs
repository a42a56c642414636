//! X.509 for Notation: certificates parsed with `x509-cert`, signatures checked with aws-lc-rs.
//! Owns the signing key's algorithm (Notation ties it to the key type and size), the envelope
//! signature check, and the certificate chain rules of the Notary Project signature
//! specification ("Certificate Requirements"), as `notation-core-go` applies them: the chain is
//! ordered signing certificate → root, each certificate issued by the next, the last one
//! self-signed; CA certificates have critical `basicConstraints` with `cA` and a path length that
//! allows the chain, critical `keyUsage` with `keyCertSign`; the signing certificate is no CA, has
//! critical `keyUsage` with `digitalSignature` only, and the code-signing extended key usage
//! (trustgate requires it; Notation only forbids the other purposes); no SHA-1; every
//! certificate valid at signing time. Other extensions are not evaluated (the specification
//! says to fail open on them).

use aws_lc_rs::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use x509_cert::Certificate;
use x509_cert::der::asn1::ObjectIdentifier as Oid;
use x509_cert::der::{Decode as _, Encode as _, Header, Reader as _, SliceReader};
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages};

use super::NotationError;
use super::envelope::{self, Algorithm};

use super::super::keyid::{
    OID_EC_PUBLIC_KEY as EC, OID_P256 as P256, OID_P384 as P384, OID_P521 as P521, OID_RSA as RSA,
};
const RSA_SHA256: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
const RSA_SHA384: Oid = Oid::new_unwrap("1.2.840.113549.1.1.12");
const RSA_SHA512: Oid = Oid::new_unwrap("1.2.840.113549.1.1.13");
const RSA_PSS: Oid = Oid::new_unwrap("1.2.840.113549.1.1.10");
const ECDSA_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_SHA384: Oid = Oid::new_unwrap("1.2.840.10045.4.3.3");
const ECDSA_SHA512: Oid = Oid::new_unwrap("1.2.840.10045.4.3.4");
const EKU_CODE_SIGNING: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.3");
/// Purposes a code-signing certificate must not have (any, serverAuth, clientAuth,
/// emailProtection, timeStamping, OCSPSigning).
const EKU_EXCLUDED: [(Oid, &str); 6] = [
    (Oid::new_unwrap("2.5.29.37.0"), "anyExtendedKeyUsage"),
    (Oid::new_unwrap("1.3.6.1.5.5.7.3.1"), "serverAuth"),
    (Oid::new_unwrap("1.3.6.1.5.5.7.3.2"), "clientAuth"),
    (Oid::new_unwrap("1.3.6.1.5.5.7.3.4"), "emailProtection"),
    (Oid::new_unwrap("1.3.6.1.5.5.7.3.8"), "timeStamping"),
    (Oid::new_unwrap("1.3.6.1.5.5.7.3.9"), "OCSPSigning"),
];

/// A parsed certificate with what the checks need.
#[derive(Debug, Clone)]
pub(super) struct Cert {
    pub der: Vec<u8>,
    pub cert: Certificate,
    pub subject: String,
    pub issuer: String,
    /// DER SubjectPublicKeyInfo.
    pub spki: Vec<u8>,
    /// The DER `tbsCertificate` exactly as encoded.
    tbs: Vec<u8>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl Cert {
    fn parse(der: &[u8], what: &str) -> Result<Self, String> {
        let cert = Certificate::from_der(der)
            .map_err(|e| format!("{what}: not a DER certificate: {e}"))?;
        let tbs = tbs_bytes(der).map_err(|e| format!("{what}: {e}"))?;
        let tbs_c = cert.tbs_certificate();
        let spki = tbs_c
            .subject_public_key_info()
            .to_der()
            .map_err(|e| format!("{what}: {e}"))?;
        let time = |t: x509_cert::time::Time| {
            OffsetDateTime::from_unix_timestamp(t.to_unix_duration().as_secs() as i64)
                .map_err(|e| format!("{what}: validity: {e}"))
        };
        let validity = tbs_c.validity();
        Ok(Cert {
            der: der.to_vec(),
            subject: tbs_c.subject().to_string(),
            issuer: tbs_c.issuer().to_string(),
            not_before: time(validity.not_before)?,
            not_after: time(validity.not_after)?,
            spki,
            tbs,
            cert,
        })
    }

    /// SHA-256 of the DER certificate, lower-case hex.
    pub fn thumbprint(&self) -> String {
        hex::encode(Sha256::digest(&self.der))
    }

    /// notBefore <= t <= notAfter.
    pub fn valid_at(&self, t: OffsetDateTime) -> bool {
        self.not_before <= t && t <= self.not_after
    }

    fn raw_subject(&self) -> Vec<u8> {
        self.cert
            .tbs_certificate()
            .subject()
            .to_der()
            .unwrap_or_default()
    }

    fn raw_issuer(&self) -> Vec<u8> {
        self.cert
            .tbs_certificate()
            .issuer()
            .to_der()
            .unwrap_or_default()
    }

    /// (algorithm OID, curve OID if EC, subjectPublicKey bits).
    fn key(&self) -> (Oid, Option<Oid>, &[u8]) {
        let spki = self.cert.tbs_certificate().subject_public_key_info();
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<Oid>().ok());
        (
            spki.algorithm.oid,
            curve,
            spki.subject_public_key.raw_bytes(),
        )
    }

    /// Whether this certificate's signature verifies with `issuer`'s key.
    fn signed_by(&self, issuer: &Cert) -> Result<bool, String> {
        let alg = self.cert.signature_algorithm();
        let (key_alg, curve, key) = issuer.key();
        let verify_alg: &'static dyn VerificationAlgorithm = match (alg.oid, key_alg, curve) {
            (o, RSA, _) if o == RSA_SHA256 => &sig::RSA_PKCS1_2048_8192_SHA256,
            (o, RSA, _) if o == RSA_SHA384 => &sig::RSA_PKCS1_2048_8192_SHA384,
            (o, RSA, _) if o == RSA_SHA512 => &sig::RSA_PKCS1_2048_8192_SHA512,
            (o, RSA, _) if o == RSA_PSS => pss_algorithm(alg)?,
            (o, EC, Some(c)) if o == ECDSA_SHA256 && c == P256 => &sig::ECDSA_P256_SHA256_ASN1,
            (o, EC, Some(c)) if o == ECDSA_SHA384 && c == P256 => &sig::ECDSA_P256_SHA384_ASN1,
            (o, EC, Some(c)) if o == ECDSA_SHA256 && c == P384 => &sig::ECDSA_P384_SHA256_ASN1,
            (o, EC, Some(c)) if o == ECDSA_SHA384 && c == P384 => &sig::ECDSA_P384_SHA384_ASN1,
            (o, EC, Some(c)) if o == ECDSA_SHA512 && c == P384 => &sig::ECDSA_P384_SHA512_ASN1,
            (o, EC, Some(c)) if o == ECDSA_SHA256 && c == P521 => &sig::ECDSA_P521_SHA256_ASN1,
            (o, EC, Some(c)) if o == ECDSA_SHA384 && c == P521 => &sig::ECDSA_P521_SHA384_ASN1,
            (o, EC, Some(c)) if o == ECDSA_SHA512 && c == P521 => &sig::ECDSA_P521_SHA512_ASN1,
            (o, _, _) => {
                return Err(format!(
                    "certificate {:?}: signature algorithm {o} with the issuer's key is not supported (SHA-1 is never accepted)",
                    self.subject
                ));
            }
        };
        let signature = self.cert.signature().raw_bytes();
        Ok(UnparsedPublicKey::new(verify_alg, key)
            .verify(&self.tbs, signature)
            .is_ok())
    }

    fn self_signed(&self) -> bool {
        self.raw_subject() == self.raw_issuer() && self.signed_by(self).unwrap_or(false)
    }
}

/// RSASSA-PSS certificate signatures: only the parameter sets with matching MGF1 hash and a
/// salt as long as the hash (the ones every CA uses).
fn pss_algorithm(
    alg: &x509_cert::spki::AlgorithmIdentifierOwned,
) -> Result<&'static dyn VerificationAlgorithm, String> {
    let mut encoded = alg.oid.to_der().map_err(|e| e.to_string())?;
    if let Some(p) = &alg.parameters {
        encoded.extend(p.to_der().map_err(|e| e.to_string())?);
    }
    use rustls_pki_types::alg_id;
    if encoded == alg_id::RSA_PSS_SHA256.as_ref() {
        Ok(&sig::RSA_PSS_2048_8192_SHA256)
    } else if encoded == alg_id::RSA_PSS_SHA384.as_ref() {
        Ok(&sig::RSA_PSS_2048_8192_SHA384)
    } else if encoded == alg_id::RSA_PSS_SHA512.as_ref() {
        Ok(&sig::RSA_PSS_2048_8192_SHA512)
    } else {
        Err("RSASSA-PSS certificate signature with unsupported parameters".into())
    }
}

/// The `tbsCertificate` TLV as it appears in the certificate.
fn tbs_bytes(der: &[u8]) -> Result<Vec<u8>, String> {
    let mut r = SliceReader::new(der).map_err(|e| e.to_string())?;
    let _outer = Header::decode(&mut r).map_err(|e| e.to_string())?;
    r.tlv_bytes().map(<[u8]>::to_vec).map_err(|e| e.to_string())
}

/// Formats a time as RFC 3339 for messages.
pub(super) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

/// Parses every certificate of a PEM text (at least one).
pub(super) fn certificates_from_pem(pem: &str) -> Result<Vec<Vec<u8>>, String> {
    let certs = Certificate::load_pem_chain(pem.as_bytes())
        .map_err(|e| format!("not PEM certificates: {e}"))?;
    if certs.is_empty() {
        return Err("no PEM certificate".into());
    }
    certs
        .iter()
        .map(|c| c.to_der().map_err(|e| e.to_string()))
        .collect()
}

/// Parses the envelope's chain (its length was checked against the limit by the parser).
pub(super) fn parse_chain(ders: &[Vec<u8>]) -> Result<Vec<Cert>, NotationError> {
    envelope::check_chain_len(ders.len())?;
    if ders.is_empty() {
        return Err(NotationError::Chain("no certificate".into()));
    }
    ders.iter()
        .enumerate()
        .map(|(i, d)| Cert::parse(d, &format!("certificate {i}")).map_err(NotationError::Chain))
        .collect()
}

/// The algorithm Notation requires for the signing certificate's key, and the key's name.
fn key_algorithm(leaf: &Cert) -> Result<(Algorithm, String), NotationError> {
    let (alg, curve, _) = leaf.key();
    if alg == RSA {
        let bits = aws_lc_rs::rsa::PublicEncryptingKey::from_der(&leaf.spki)
            .map_err(|e| NotationError::UnsupportedKey(format!("RSA key rejected: {e}")))?
            .key_size_bits();
        let a = match bits {
            2048 => Algorithm::Ps256,
            3072 => Algorithm::Ps384,
            4096 => Algorithm::Ps512,
            _ => {
                return Err(NotationError::UnsupportedKey(format!(
                    "RSA {bits} is not a Notation key size (2048, 3072, 4096)"
                )));
            }
        };
        return Ok((a, format!("RSA {bits}")));
    }
    if alg == EC {
        return match curve {
            Some(c) if c == P256 => Ok((Algorithm::Es256, "EC P-256".into())),
            Some(c) if c == P384 => Ok((Algorithm::Es384, "EC P-384".into())),
            Some(c) if c == P521 => Ok((Algorithm::Es512, "EC P-521".into())),
            other => Err(NotationError::UnsupportedKey(format!(
                "EC curve {other:?} is not P-256, P-384 or P-521"
            ))),
        };
    }
    Err(NotationError::UnsupportedKey(format!(
        "key type {alg} is neither RSA nor EC"
    )))
}

/// The signing certificate's key as `RSA 2048` or `EC P-256`; for a key Notation does not
/// support, why (for `describe`, which reports without refusing).
pub(super) fn key_name(leaf: &Cert) -> String {
    match key_algorithm(leaf) {
        Ok((_, name)) => name,
        Err(e) => e.to_string(),
    }
}

/// Checks the envelope's algorithm against the signing key and verifies the signature.
pub(super) fn verify_envelope_signature(
    leaf: &Cert,
    alg: Algorithm,
    signed: &[u8],
    signature: &[u8],
) -> Result<(), NotationError> {
    let (expected, key_name) = key_algorithm(leaf)?;
    if alg != expected {
        return Err(NotationError::AlgorithmMismatch {
            alg: alg.to_string(),
            key: key_name,
            expected: expected.to_string(),
        });
    }
    let v: &'static dyn VerificationAlgorithm = match alg {
        Algorithm::Ps256 => &sig::RSA_PSS_2048_8192_SHA256,
        Algorithm::Ps384 => &sig::RSA_PSS_2048_8192_SHA384,
        Algorithm::Ps512 => &sig::RSA_PSS_2048_8192_SHA512,
        Algorithm::Es256 => &sig::ECDSA_P256_SHA256_FIXED,
        Algorithm::Es384 => &sig::ECDSA_P384_SHA384_FIXED,
        Algorithm::Es512 => &sig::ECDSA_P521_SHA512_FIXED,
    };
    let (_, _, key) = leaf.key();
    UnparsedPublicKey::new(v, key)
        .verify(signed, signature)
        .map_err(|_| NotationError::BadSignature)
}

/// Notation's certificate requirements and signing-time validity over the ordered chain.
pub(super) fn validate(chain: &[Cert], signing_time: OffsetDateTime) -> Result<(), NotationError> {
    let err = |m: String| Err(NotationError::Chain(m));
    for c in chain {
        if !c.valid_at(signing_time) {
            return Err(NotationError::NotValidAtSigningTime {
                subject: c.subject.clone(),
                signing_time: rfc3339(signing_time),
            });
        }
    }
    let last = chain.len() - 1;
    for (i, c) in chain.iter().enumerate() {
        if i == last {
            if !c.self_signed() {
                return err(format!(
                    "{:?} is not self-signed: the chain must end with its root certificate",
                    c.subject
                ));
            }
        } else {
            if c.self_signed() {
                return err(format!(
                    "{:?} is self-signed but not the last certificate of the chain",
                    c.subject
                ));
            }
            let parent = &chain[i + 1];
            if c.raw_issuer() != parent.raw_subject() {
                return err(format!(
                    "{:?} is not issued by {:?} (the chain must be ordered signing certificate to root)",
                    c.subject, parent.subject
                ));
            }
            if !c.signed_by(parent).map_err(NotationError::Chain)? {
                return err(format!(
                    "the signature of {:?} does not verify with the key of {:?}",
                    c.subject, parent.subject
                ));
            }
        }
        if i == 0 {
            check_leaf(c).map_err(NotationError::Chain)?;
        } else {
            check_ca(c, i - 1).map_err(NotationError::Chain)?;
        }
    }
    Ok(())
}

fn key_usage(c: &Cert) -> Result<KeyUsage, String> {
    match c.cert.tbs_certificate().get_extension::<KeyUsage>() {
        Ok(Some((true, ku))) => Ok(ku),
        Ok(Some((false, _))) => Err(format!("{:?}: keyUsage must be critical", c.subject)),
        Ok(None) => Err(format!("{:?}: no keyUsage extension", c.subject)),
        Err(e) => Err(format!("{:?}: keyUsage: {e}", c.subject)),
    }
}

fn check_leaf(c: &Cert) -> Result<(), String> {
    let tbs = c.cert.tbs_certificate();
    match tbs.get_extension::<BasicConstraints>() {
        Ok(Some((_, bc))) if bc.ca => {
            return Err(format!(
                "signing certificate {:?} is a CA certificate",
                c.subject
            ));
        }
        Err(e) => return Err(format!("{:?}: basicConstraints: {e}", c.subject)),
        _ => {}
    }
    let ku = key_usage(c)?;
    if !ku.digital_signature() {
        return Err(format!(
            "signing certificate {:?}: keyUsage lacks digitalSignature",
            c.subject
        ));
    }
    let forbidden = KeyUsages::KeyEncipherment
        | KeyUsages::DataEncipherment
        | KeyUsages::KeyAgreement
        | KeyUsages::KeyCertSign
        | KeyUsages::CRLSign
        | KeyUsages::EncipherOnly
        | KeyUsages::DecipherOnly;
    if !(ku.0 & forbidden).is_empty() {
        return Err(format!(
            "signing certificate {:?}: keyUsage has more than digitalSignature",
            c.subject
        ));
    }
    let eku = match tbs.get_extension::<ExtendedKeyUsage>() {
        Ok(Some((_, eku))) => eku,
        Ok(None) => {
            return Err(format!(
                "signing certificate {:?} has no extended key usage; trustgate requires code signing (1.3.6.1.5.5.7.3.3)",
                c.subject
            ));
        }
        Err(e) => return Err(format!("{:?}: extendedKeyUsage: {e}", c.subject)),
    };
    if let Some((_, name)) = EKU_EXCLUDED.iter().find(|(o, _)| eku.0.contains(o)) {
        return Err(format!(
            "signing certificate {:?}: extended key usage must not contain {name}",
            c.subject
        ));
    }
    if !eku.0.contains(&EKU_CODE_SIGNING) {
        return Err(format!(
            "signing certificate {:?}: extended key usage lacks code signing (1.3.6.1.5.5.7.3.3)",
            c.subject
        ));
    }
    Ok(())
}

/// `below`: how many CA certificates the chain has under this one.
fn check_ca(c: &Cert, below: usize) -> Result<(), String> {
    match c.cert.tbs_certificate().get_extension::<BasicConstraints>() {
        Ok(Some((true, bc))) if bc.ca => {
            if let Some(len) = bc.path_len_constraint
                && below > usize::from(len)
            {
                return Err(format!(
                    "CA {:?}: path length constraint {len} is exceeded ({below} CA certificates below it)",
                    c.subject
                ));
            }
        }
        Ok(Some((false, _))) => {
            return Err(format!(
                "CA {:?}: basicConstraints must be critical",
                c.subject
            ));
        }
        Ok(_) => return Err(format!("{:?} is not a CA certificate", c.subject)),
        Err(e) => return Err(format!("{:?}: basicConstraints: {e}", c.subject)),
    }
    if !key_usage(c)?.key_cert_sign() {
        return Err(format!("CA {:?}: keyUsage lacks keyCertSign", c.subject));
    }
    Ok(())
}

//! The identity of a public key whatever its encoding: two SubjectPublicKeyInfo encodings of one
//! key (an RSA key with and without NULL algorithm parameters, an Ed25519 key with stray
//! parameters, a certificate and the bare key) have one identity. Revocations and cosign's
//! "distinct keys" compare identities, never encoded bytes, so the same key can neither count
//! twice towards a threshold nor slip past a revocation written in another encoding.

use sha2::{Digest as _, Sha256};
use x509_cert::der::asn1::UintRef;
use x509_cert::der::{Decode, Reader, SliceReader};
use x509_cert::spki::{ObjectIdentifier, SubjectPublicKeyInfoRef};

/// `id-ecPublicKey` (RFC 5480).
pub(crate) const OID_EC_PUBLIC_KEY: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// The named curves P-256, P-384 and P-521 (RFC 5480).
pub(crate) const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// See [`OID_P256`].
pub(crate) const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
/// See [`OID_P256`].
pub(crate) const OID_P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
/// `rsaEncryption` (RFC 8017).
pub(crate) const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// `id-Ed25519` (RFC 8410).
pub(crate) const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// A key's identity: SHA-256 over its algorithm and key material (EC: named curve and point;
/// RSA: modulus and exponent without leading zeros; Ed25519: the 32 key bytes).
pub type KeyIdentity = [u8; 32];

/// The identity of the key in `spki_der`; `None` when it is not a SubjectPublicKeyInfo (or an
/// RSA key whose RSAPublicKey does not parse).
pub fn key_identity(spki_der: &[u8]) -> Option<KeyIdentity> {
    let spki = SubjectPublicKeyInfoRef::from_der(spki_der).ok()?;
    let bits = spki.subject_public_key.as_bytes()?;
    let oid = spki.algorithm.oid;
    let mut parts: Vec<&[u8]> = Vec::new();
    let curve: ObjectIdentifier;
    let rsa;
    if oid == OID_EC_PUBLIC_KEY {
        curve = spki
            .algorithm
            .parameters
            .and_then(|p| ObjectIdentifier::try_from(p).ok())?;
        parts.extend([b"ec".as_slice(), curve.as_bytes(), bits]);
    } else if oid == OID_RSA {
        rsa = rsa_components(bits)?;
        parts.extend([b"rsa".as_slice(), rsa.0, rsa.1]);
    } else if oid == OID_ED25519 {
        parts.extend([b"ed25519".as_slice(), bits]);
    } else {
        parts.extend([b"other".as_slice(), oid.as_bytes(), bits]);
    }
    let mut h = Sha256::new();
    for part in parts {
        // Length-prefixed, so no two lists of parts hash alike.
        h.update(u64::try_from(part.len()).unwrap_or(u64::MAX).to_be_bytes());
        h.update(part);
    }
    Some(h.finalize().into())
}

/// The modulus and public exponent of a PKCS#1 RSAPublicKey, without leading zeros.
fn rsa_components(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut reader = SliceReader::new(der).ok()?;
    let (n, e) = reader
        .sequence(|r| {
            let n = UintRef::decode(r)?;
            let e = UintRef::decode(r)?;
            Ok::<_, x509_cert::der::Error>((n, e))
        })
        .ok()?;
    reader.finish().ok()?;
    Some((n.as_bytes(), e.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_cert::der::Encode;
    use x509_cert::der::asn1::{AnyRef, BitString};
    use x509_cert::spki::{AlgorithmIdentifier, SubjectPublicKeyInfo};

    fn spki(oid: ObjectIdentifier, params: Option<AnyRef<'_>>, key: &[u8]) -> Vec<u8> {
        SubjectPublicKeyInfo {
            algorithm: AlgorithmIdentifier {
                oid,
                parameters: params,
            },
            subject_public_key: BitString::from_bytes(key).unwrap(),
        }
        .to_der()
        .unwrap()
    }

    #[test]
    fn encodings_of_one_key_have_one_identity() {
        let rsa = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let pkcs1 = aws_lc_rs::signature::KeyPair::public_key(&rsa)
            .as_ref()
            .to_vec();
        let with_null = spki(OID_RSA, Some(AnyRef::NULL), &pkcs1);
        let without = spki(OID_RSA, None, &pkcs1);
        assert_ne!(with_null, without);
        assert_eq!(key_identity(&with_null), key_identity(&without));
        assert!(key_identity(&with_null).is_some());

        let ed = [7u8; 32];
        let plain = spki(OID_ED25519, None, &ed);
        let stray = spki(OID_ED25519, Some(AnyRef::NULL), &ed);
        assert_eq!(key_identity(&plain), key_identity(&stray));
        assert_ne!(
            key_identity(&plain),
            key_identity(&spki(OID_ED25519, None, &[8; 32]))
        );
    }

    #[test]
    fn different_keys_and_algorithms_differ_and_garbage_has_none() {
        let a = spki(OID_ED25519, None, &[1; 32]);
        let b = spki(ObjectIdentifier::new_unwrap("1.3.101.113"), None, &[1; 32]);
        assert_ne!(key_identity(&a), key_identity(&b));
        assert_eq!(key_identity(b"not der"), None);
        // An RSA key whose RSAPublicKey does not parse.
        assert_eq!(
            key_identity(&spki(OID_RSA, Some(AnyRef::NULL), &[1, 2, 3])),
            None
        );
    }
}

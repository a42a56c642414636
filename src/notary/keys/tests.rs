//! Tests for `keys`: real Notary fixtures (read in place) plus generated and embedded vectors.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use serde_json::{Value, json};
use time::macros::datetime;

use super::*;
use crate::notary::canonical::to_canonical;

/// Public Notary data (see its README).
fn fixtures() -> PathBuf {
    crate::notary::fixtures_dir()
}

fn load(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            json_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
    out.sort();
}

/// `signed.keys` and `signed.delegations.keys` of a metadata file.
fn keys_of(doc: &Value) -> Vec<(String, Value)> {
    let signed = &doc["signed"];
    [&signed["keys"], &signed["delegations"]["keys"]]
        .into_iter()
        .filter_map(Value::as_object)
        .flat_map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())))
        .collect()
}

fn root_key(dir: &str, keytype: &str) -> PublicKey {
    let root = load(&fixtures().join(dir).join("root.json"));
    let (_, v) = keys_of(&root)
        .into_iter()
        .find(|(_, v)| v["keytype"] == keytype)
        .unwrap();
    PublicKey::from_json(&v).unwrap()
}

fn signed_bytes(doc: &Value) -> Vec<u8> {
    to_canonical(&doc["signed"]).unwrap()
}

fn first_sig(doc: &Value) -> (String, String, Vec<u8>) {
    let s = &doc["signatures"][0];
    (
        s["keyid"].as_str().unwrap().to_owned(),
        s["method"].as_str().unwrap().to_owned(),
        decode_base64_go(s["sig"].as_str().unwrap()).unwrap(),
    )
}

#[test]
fn key_id_example_from_notary03() {
    if !crate::notary::fixtures_present() {
        return;
    }
    let root = load(&fixtures().join("notary/notary0.3/root.json"));
    let id = "041b64dab281324ef2b62fd2d04f4758269e120ff063b7bc78709272821a0a02";
    let key = PublicKey::from_json(&root["signed"]["keys"][id]).unwrap();
    assert_eq!(key.id(), id);
    assert_eq!(key.key_type(), &KeyType::Ecdsa);
    assert_eq!(key.canonical_id(), id);
    assert_eq!(key.spki_der(), key.public_bytes());
    let b64 = root["signed"]["keys"][id]["keyval"]["public"]
        .as_str()
        .unwrap();
    assert_eq!(PublicKey::from_parts("ecdsa", b64).unwrap().id(), id);
}

#[test]
fn every_fixture_key_id_matches_its_map_key() {
    if !crate::notary::fixtures_present() {
        return;
    }
    let mut files = Vec::new();
    json_files(&fixtures(), &mut files);
    let mut checked = 0;
    for path in &files {
        for (map_key, v) in keys_of(&load(path)) {
            let key = PublicKey::from_json(&v).unwrap_or_else(|e| panic!("{path:?}: {e}"));
            assert_eq!(key.id(), map_key, "{path:?}");
            assert!(key.unusable_reason().is_none(), "{path:?}");
            checked += 1;
        }
    }
    assert!(checked >= 60, "only {checked} keys");
}

/// All keys declared in the metadata files of `dir` (root keys and delegation keys).
fn key_pool(dir: &Path) -> BTreeMap<String, PublicKey> {
    let mut files = Vec::new();
    json_files(dir, &mut files);
    let mut pool = BTreeMap::new();
    for path in &files {
        for (id, v) in keys_of(&load(path)) {
            pool.insert(id, PublicKey::from_json(&v).unwrap());
        }
    }
    pool
}

/// Verifies every signature of `doc` with the key named by its keyid; returns the results.
fn verify_doc(doc: &Value, pool: &BTreeMap<String, PublicKey>) -> Vec<Result<(), SignatureError>> {
    let msg = signed_bytes(doc);
    doc["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let keyid = s["keyid"].as_str().unwrap();
            let key = &pool[keyid];
            assert_eq!(key.id(), keyid);
            let sig = decode_base64_go(s["sig"].as_str().unwrap()).unwrap();
            key.verify(s["method"].as_str().unwrap(), &msg, &sig)
        })
        .collect()
}

/// Verifies every signature of every metadata file in `dir` against the keys declared in that
/// directory; returns the number of signatures verified.
fn verify_dir(dir: &Path) -> usize {
    let pool = key_pool(dir);
    let mut files = Vec::new();
    json_files(dir, &mut files);
    let mut verified = 0;
    for path in files {
        for result in verify_doc(&load(&path), &pool) {
            result.unwrap_or_else(|e| panic!("{path:?}: {e}"));
            verified += 1;
        }
    }
    verified
}

#[test]
fn every_signature_in_real_fixtures_verifies() {
    if !crate::notary::fixtures_present() {
        return;
    }
    let base = fixtures();
    // root, targets, snapshot, timestamp (+ targets/releases with rsa-x509 + rsapss in 0.3).
    assert_eq!(verify_dir(&base.join("notary/notary0.1")), 4);
    assert_eq!(verify_dir(&base.join("notary/notary0.3")), 5);
    // Pretty-printed files: signatures cover the canonical form of the parsed `signed`.
    assert_eq!(
        verify_dir(&base.join("connaisseur/never-expire-with-delegations-image")),
        7
    );
    // alice's releases file has two signatures.
    assert_eq!(verify_dir(&base.join("connaisseur/alice-image")), 8);
    // The other connaisseur repositories verify too (err-image has its files' names swapped).
    for dir in [
        "never-expire-image",
        "never-expire-with-conflicting-delegations-image",
        "sample-image",
        "edge-case-image",
        "edge-case-err-image",
        "err-image",
    ] {
        assert!(
            verify_dir(&base.join("connaisseur").join(dir)) >= 4,
            "{dir}"
        );
    }
}

/// connaisseur's standalone broken files belong to the never-expire-with-delegations keys.
#[test]
fn connaisseur_invalid_signature_files_fail() {
    if !crate::notary::fixtures_present() {
        return;
    }
    let base = fixtures().join("connaisseur");
    let pool = key_pool(&base.join("never-expire-with-delegations-image"));
    let results = |file: &str| verify_doc(&load(&base.join(file)), &pool);
    assert_eq!(
        results("02_invalid_signature_targets.json"),
        [Err(SignatureError::Invalid)]
    );
    assert_eq!(
        results("04_invalid_signature_delegation.json"),
        [Err(SignatureError::Invalid)]
    );
    assert_eq!(results("06_no_signature_root.json"), []);
    // Expired or not, these are validly signed.
    for file in [
        "01_expired_root.json",
        "03_expired_snapshot.json",
        "05_expired_delegation.json",
    ] {
        assert_eq!(results(file), [Ok(())], "{file}");
    }
    assert_eq!(
        results("07_root_multiple_signatures.json"),
        [Ok(()), Ok(())]
    );
}

#[test]
fn notary03_snapshot_signature_is_high_s_and_verifies() {
    if !crate::notary::fixtures_present() {
        return;
    }
    let snapshot = load(&fixtures().join("notary/notary0.3/snapshot.json"));
    let (keyid, method, sig) = first_sig(&snapshot);
    // P-256 order n; high-S means s > n/2.
    let half_n =
        hex::decode("7fffffff800000007fffffffffffffffde737d56d38bcf4279dce5617e3192a8").unwrap();
    assert!(
        sig[32..] > half_n[..],
        "fixture signature is expected to be high-S"
    );
    let root = load(&fixtures().join("notary/notary0.3/root.json"));
    let key = PublicKey::from_json(&root["signed"]["keys"][&keyid]).unwrap();
    key.verify(&method, &signed_bytes(&snapshot), &sig).unwrap();
    // Method names are compared lowercased.
    key.verify("ECDSA", &signed_bytes(&snapshot), &sig).unwrap();
}

#[test]
fn tampering_and_misuse_are_rejected() {
    if !crate::notary::fixtures_present() {
        return;
    }
    let dir = fixtures().join("notary/notary0.3");
    let root = load(&dir.join("root.json"));
    let (keyid, method, sig) = first_sig(&root);
    let key = PublicKey::from_json(&root["signed"]["keys"][&keyid]).unwrap();
    let msg = signed_bytes(&root);
    key.verify(&method, &msg, &sig).unwrap();

    let mut bad_msg = msg.clone();
    bad_msg[40] ^= 1;
    assert_eq!(
        key.verify(&method, &bad_msg, &sig),
        Err(SignatureError::Invalid)
    );
    let mut bad_sig = sig.clone();
    bad_sig[10] ^= 0x80;
    assert_eq!(
        key.verify(&method, &msg, &bad_sig),
        Err(SignatureError::Invalid)
    );
    assert_eq!(
        key.verify(&method, &msg, &sig[..63]),
        Err(SignatureError::EcdsaSignatureLength {
            expected: 64,
            actual: 63
        })
    );
    for wrong in ["rsapss", "rsapkcs1v15", "eddsa"] {
        assert!(
            matches!(
                key.verify(wrong, &msg, &sig),
                Err(SignatureError::WrongKeyType { .. })
            ),
            "{wrong}"
        );
    }
    assert!(matches!(
        key.verify("ed25519", &msg, &sig),
        Err(SignatureError::UnknownMethod(_))
    ));

    // The rsa-x509 delegation key only takes RSA methods.
    let releases = load(&dir.join("targets/releases.json"));
    let targets = load(&dir.join("targets.json"));
    let (rkeyid, rmethod, rsig) = first_sig(&releases);
    let rsa = PublicKey::from_json(&targets["signed"]["delegations"]["keys"][&rkeyid]).unwrap();
    let rmsg = signed_bytes(&releases);
    rsa.verify(&rmethod, &rmsg, &rsig).unwrap();
    assert!(matches!(
        rsa.verify("ecdsa", &rmsg, &rsig),
        Err(SignatureError::WrongKeyType { .. })
    ));
    // Same key, but PKCS#1 v1.5 instead of PSS.
    assert_eq!(
        rsa.verify("rsapkcs1v15", &rmsg, &rsig),
        Err(SignatureError::Invalid)
    );
    assert_eq!(
        rsa.verify(&rmethod, &rmsg, &rsig[..255]),
        Err(SignatureError::RsaSignatureTooShort { len: 255 })
    );

    // A key of an unknown type is kept (its ID counts) but never verifies.
    let mut unknown = root["signed"]["keys"][&keyid].clone();
    unknown["keytype"] = json!("ecdsa-sha2-nistp256");
    let unknown = PublicKey::from_json(&unknown).unwrap();
    assert_eq!(
        unknown.key_type(),
        &KeyType::Unknown("ecdsa-sha2-nistp256".into())
    );
    assert_eq!(unknown.key_type().to_string(), "ecdsa-sha2-nistp256");
    assert_ne!(unknown.id(), keyid);
    assert!(unknown.verify(&method, &msg, &sig).is_err());
    assert!(unknown.spki_der().is_none() && unknown.certificate().is_none());
}

#[test]
fn malformed_keys() {
    if !crate::notary::fixtures_present() {
        return;
    }
    assert!(matches!(
        PublicKey::from_parts("ecdsa", "not base64!"),
        Err(KeyError::Base64(_))
    ));
    assert!(matches!(
        PublicKey::from_json(&json!({"keytype":"ecdsa","keyval":{"public":"AAA="}})),
        Err(KeyError::PublicKey(_))
    ));
    assert!(matches!(
        PublicKey::from_json(&json!({"keytype":"ecdsa","keyval":{"private":null}})),
        Err(KeyError::Structure(_))
    ));
    assert!(matches!(
        PublicKey::from_json(&json!({"keytype":1,"keyval":{"public":"AAA="}})),
        Err(KeyError::Structure(_))
    ));
    assert!(matches!(
        PublicKey::from_json(&json!(["ecdsa"])),
        Err(KeyError::Structure(_))
    ));
    assert!(matches!(
        PublicKey::from_json(&json!({"keytype":"ed25519","keyval":{"public":"AAAA"}})),
        Err(KeyError::PublicKey(_))
    ));
    assert!(matches!(
        PublicKey::from_json(&json!({"keytype":"ecdsa-x509","keyval":{"public":"AAAA"}})),
        Err(KeyError::Pem(_))
    ));
    // An ecdsa-typed key holding an RSA SPKI.
    let rsa_spki = load(&fixtures().join("notary/notary0.3/targets.json"));
    let (_, rsa_x509) = keys_of(&rsa_spki).into_iter().next().unwrap();
    let rsa_cert = PublicKey::from_json(&rsa_x509).unwrap();
    let spki_b64 = STANDARD.encode(rsa_cert.spki_der().unwrap());
    assert!(matches!(
        PublicKey::from_parts("ecdsa", &spki_b64),
        Err(KeyError::TypeMismatch { .. })
    ));
    assert_eq!(
        PublicKey::from_parts("rsa", &spki_b64)
            .unwrap()
            .canonical_id(),
        rsa_cert.canonical_id()
    );

    // Lenient parsing keeps broken known-type keys (with their ID) as never-verifying keys.
    let broken = json!({"keytype":"ecdsa","keyval":{"private":null,"public":"AAA="}});
    let key = PublicKey::from_json_lenient(&broken).unwrap();
    assert!(key.unusable_reason().is_some());
    assert_eq!(key.id(), super::tuf_key_id("ecdsa", Some(&[0, 0])));
    assert!(matches!(
        key.verify("ecdsa", b"m", &[0; 64]),
        Err(SignatureError::UnusableKey(_))
    ));
    // ... but bad base64 fails as it does in Go's json.Unmarshal.
    assert!(PublicKey::from_json_lenient(&json!({"keytype":"x","keyval":{"public":"A"}})).is_err());
    assert!(
        PublicKey::from_json_lenient(&json!({"keytype":"x","keyval":{"private":"%%"}})).is_err()
    );
    // Absent public: Go marshals a nil []byte as null in the key ID.
    let none = PublicKey::from_json_lenient(&json!({"keytype":"x","keyval":{}})).unwrap();
    assert_eq!(none.id(), super::tuf_key_id("x", None));
}

#[test]
fn base64_is_go_compatible() {
    assert_eq!(decode_base64_go("aGVs\nbG8=\r\n").unwrap(), b"hello");
    assert_eq!(decode_base64_go("").unwrap(), b"");
    // Non-zero trailing bits are accepted, as by Go's StdEncoding.
    assert_eq!(decode_base64_go("QR==").unwrap(), b"A");
    assert!(decode_base64_go("QQ").is_err(), "padding is required");
    assert!(decode_base64_go("QQ= =").is_err(), "spaces are not ignored");
    assert!(
        decode_base64_go("Q-==").is_err(),
        "URL alphabet is not accepted"
    );

    // A public value with line breaks gets the ID of its re-encoded (clean) base64, as in Go.
    let b64 = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAENgK7kx/HdvmLUG4733JIJd0Bv6FML8SVEmgGynvhl64nCVmWzTLdziS1bMUgb6hlSkqTYtvyOCC5YMY+GrAH+Q==";
    let wrapped = format!("{}\n{}", &b64[..64], &b64[64..]);
    let key = PublicKey::from_parts("ecdsa", &wrapped).unwrap();
    assert_eq!(
        key.id(),
        "041b64dab281324ef2b62fd2d04f4758269e120ff063b7bc78709272821a0a02"
    );
}

#[test]
fn root_certificate_info() {
    if !crate::notary::fixtures_present() {
        return;
    }
    for (dir, gun) in [
        ("notary/notary0.1", "docker.com/notary0.1/samplerepo"),
        ("notary/notary0.3", "docker.com/notary0.3/tst"),
    ] {
        let key = root_key(dir, "ecdsa-x509");
        let cert = key.certificate().unwrap();
        assert_eq!(cert.common_name.as_deref(), Some(gun));
        assert!(!cert.is_ca && !cert.sha1_signature);
        assert_eq!(cert.rsa_bits, None);
        assert_eq!(cert.key_algorithm, KeyAlgorithm::Ecdsa);
        assert!(cert.not_before < cert.not_after);
        assert_eq!(key.spki_der(), Some(cert.spki_der.as_slice()));
        // The cert ID (in root.json) and the canonical ID (of the bare key) differ.
        assert_ne!(key.canonical_id(), key.id());
        assert_eq!(
            key.canonical_id(),
            PublicKey::from_parts("ecdsa", &STANDARD.encode(&cert.spki_der))
                .unwrap()
                .id()
        );
        // Rebuilding the key from its bundle, as notary does for root checks, keeps the ID.
        let bundle = key.cert_bundle().unwrap();
        assert_eq!(bundle.len(), 1);
        assert_eq!(PublicKey::from_cert_bundle(&bundle).unwrap().id(), key.id());
        assert_eq!(cert.to_pem().as_bytes(), key.public_bytes().unwrap());
    }
    // Notary names private keys by canonical ID: the fixtures' private/root_keys/<id>.key.
    assert_eq!(
        root_key("notary/notary0.1", "ecdsa-x509").canonical_id(),
        "d0c623c8e70c70d42a8a8125c44a8598588b3f6e31d5c21a83cbc338dfde8a68"
    );
    assert_eq!(
        root_key("notary/notary0.3", "ecdsa-x509").canonical_id(),
        "f4eaf871a74aa3b3a0ff95cef2455a1e4d461639f5625418e76756fc5c948690"
    );
    let cert = root_key("notary/notary0.3", "ecdsa-x509")
        .certificate()
        .unwrap()
        .clone();
    assert_eq!(cert.not_after, datetime!(2026-07-25 22:56:32 UTC));
    assert_eq!(cert.not_before, datetime!(2016-07-27 22:56:32 UTC));

    let targets = load(&fixtures().join("notary/notary0.3/targets.json"));
    let (_, v) = keys_of(&targets).into_iter().next().unwrap();
    let rsa = PublicKey::from_json(&v).unwrap();
    assert_eq!(rsa.key_type(), &KeyType::RsaX509);
    let info = rsa.certificate().unwrap();
    assert_eq!(info.rsa_bits, Some(2048));
    assert_eq!(info.common_name.as_deref(), Some("avaid96"));
    assert_eq!(info.not_after, datetime!(2017-07-27 20:24:52 UTC));
    assert_ne!(rsa.canonical_id(), rsa.id());
    // private/tuf_keys/<canonical id>.key in the notary0.3 fixture.
    assert_eq!(
        rsa.canonical_id(),
        "fa842f66cac2dc898677a8660789dcff0e3b0b93b73f8952491f6493199936d3"
    );
}

/// An ecdsa-with-SHA1 signed RSA-1024 leaf followed by its P-256 CA (made with openssl).
const WEAK_BUNDLE: &str = "-----BEGIN CERTIFICATE-----
MIIBujCCAWKgAwIBAgIBAjAJBgcqhkjOPQQBMBwxGjAYBgNVBAMMEXRydXN0Z2F0
ZSB0ZXN0IENBMB4XDTI2MTEyNTE0NDk0NVoXDTM2MTEyMjE0NDk0NVowGzEZMBcG
A1UEAwwQZXhhbXBsZS5jb20vd2VhazCBnzANBgkqhkiG9w0BAQEFAAOBjQAwgYkC
gYEAr7Y5nhyTp1I75z+pwPxzCQfD0v532d3UFQvtixZjhXRPaNeYYq50cPF6Dw+R
DPkxjXQrSNKM/hd8tej9QClk5dJutKpaVajyCjyyxL+yYejslvNpRo2vfno1ZyG0
Bx1TrDFyxumVc9o+xgs4WN0Xu445ygMR/VaBEyKsH0/equ8CAwEAAaNQME4wDAYD
VR0TAQH/BAIwADAdBgNVHQ4EFgQUE2IUwIi+FvilN2yxBPayi6Xs2K0wHwYDVR0j
BBgwFoAU0uLu+RFsm5sZ4jgLHZiRnDd4aYAwCQYHKoZIzj0EAQNHADBEAiB/j+sK
DO65UFSiZ+JHIZ97ynsr0o7vLK+tf9lsYCE6HAIgEKYmjilXUCG8HBolPWJ0eEG4
JYbw9GKLMjAYAZytQjs=
-----END CERTIFICATE-----
-----BEGIN CERTIFICATE-----
MIIBjzCCATWgAwIBAgIUYOELelxB22SyZYaBviJTuEvin+MwCgYIKoZIzj0EAwIw
HDEaMBgGA1UEAwwRdHJ1c3RnYXRlIHRlc3QgQ0EwIBcNMjYxMTI1MTQ0OTQxWhgP
MjA2NTAzMjUxNDQ5NDFaMBwxGjAYBgNVBAMMEXRydXN0Z2F0ZSB0ZXN0IENBMFkw
EwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEYCif34DwJNwsA4fj3PzbvEB+U8VmrXwX
LO0v1+N5z82eR3SzFEpXPhdfPqU97N/HIQjqXBDVgCGJlMOAlkXg6aNTMFEwHQYD
VR0OBBYEFNLi7vkRbJubGeI4Cx2YkZw3eGmAMB8GA1UdIwQYMBaAFNLi7vkRbJub
GeI4Cx2YkZw3eGmAMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIh
AMbBXaRK7WVwop/EaYJqNoyca5DJNAVMBiQZTmMLv2cUAiB9Fya1le7jnBC1cFpZ
xd+hB48GDk3uE0taQyuerLRJfw==
-----END CERTIFICATE-----
";

#[test]
fn certificate_bundles() {
    let certs = parse_cert_bundle(WEAK_BUNDLE.as_bytes()).unwrap();
    assert_eq!(certs.len(), 2);
    let (leaf, ca) = (&certs[0], &certs[1]);
    assert_eq!(leaf.common_name.as_deref(), Some("example.com/weak"));
    assert!(!leaf.is_ca && leaf.sha1_signature);
    assert_eq!(leaf.rsa_bits, Some(1024));
    assert!(ca.is_ca && !ca.sha1_signature);
    // notAfter in 2065 is a GeneralizedTime.
    assert_eq!(ca.not_after, datetime!(2065-03-25 14:49:41 UTC));
    assert_eq!(leaf.to_pem() + &ca.to_pem(), WEAK_BUNDLE);

    let key = PublicKey::from_parts("rsa-x509", &STANDARD.encode(WEAK_BUNDLE)).unwrap();
    assert_eq!(key.certificate(), Some(leaf));
    assert_eq!(PublicKey::from_cert_bundle(&certs).unwrap().id(), key.id());
    assert!(matches!(
        key.verify("rsapss", b"m", &[0; 128]),
        Err(SignatureError::RsaKeyTooSmall { bits: 1024 })
    ));
    // The leaf holds an RSA key: an ecdsa-x509 key cannot carry it.
    assert!(matches!(
        PublicKey::from_parts("ecdsa-x509", &STANDARD.encode(WEAK_BUNDLE)),
        Err(KeyError::TypeMismatch { .. })
    ));

    // Go's pem.Decode: leading text and CRLF line ends are fine; non-certificate blocks are not
    // allowed in a bundle.
    let crlf = format!("comment\r\n{}", WEAK_BUNDLE.replace('\n', "\r\n"));
    assert_eq!(parse_cert_bundle(crlf.as_bytes()).unwrap(), certs);
    let mixed =
        format!("{WEAK_BUNDLE}-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n");
    assert!(matches!(
        parse_cert_bundle(mixed.as_bytes()),
        Err(KeyError::Pem(_))
    ));
    assert!(parse_cert_bundle(b"no pem here").is_err());
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

#[test]
fn pinned_keys_match_the_fixture_root() {
    if !crate::notary::fixtures_present() {
        return;
    }
    let root_cert_key = root_key("notary/notary0.3", "ecdsa-x509");
    let cert = root_cert_key.certificate().unwrap();
    let other = root_key("notary/notary0.3", "ecdsa");

    let by_key = PinnedKey::from_pem(&pem("PUBLIC KEY", &cert.spki_der)).unwrap();
    let by_cert = PinnedKey::from_pem(&cert.to_pem()).unwrap();
    for pinned in [&by_key, &by_cert] {
        assert!(pinned.matches(&root_cert_key));
        assert!(!pinned.matches(&other));
        assert_eq!(pinned.key_id(), root_cert_key.canonical_id());
    }
    assert_eq!(by_cert.cert_key_id(), Some(root_cert_key.id()));
    assert_eq!(by_key.cert_key_id(), None);
    // A plain ecdsa metadata key with the same SPKI matches too.
    let plain = PublicKey::from_parts("ecdsa", &STANDARD.encode(&cert.spki_der)).unwrap();
    assert!(by_key.matches(&plain));
    assert_eq!(by_key.key_id(), plain.id());

    assert!(matches!(
        PinnedKey::from_pem("-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----\n"),
        Err(KeyError::Pem(_))
    ));
    assert!(PinnedKey::from_pem("garbage").is_err());
    assert!(PinnedKey::from_pem(&pem("PUBLIC KEY", b"\x30\x00")).is_err());
}

const VECTOR_MSG: &[u8] = br#"{"_type":"Targets","note":"trustgate test vector"}"#;

/// (keytype, SPKI base64, signature base64 over `VECTOR_MSG`), made with Python `cryptography`:
/// ECDSA with SHA-256 as fixed r||s, and RSA-PSS (SHA-256, salt 32) with a 1024-bit key.
const VECTORS: [(&str, &str, &str); 3] = [
    (
        "p384",
        "MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAERkrI3aA8Gm96OQIPpLDe1SU4BpVFobfySpHd3DLLwzxM7wKc3dc7Vaaqsn2e4F7qrzGPfSa25VfB0C1+YNGXQpYoQwX6pqGIX16pOFzgyXjM0llw/jf2X0C2pZe++zGN",
        "eZF4vyF9+1M9Ql0Vg5kLuGEnlry7k8oeq0h/ubjku68zHA7OyzOm9uA3QSG+Te9yewFRl3EzwhnKcm08oTMts4/O0/ye/42w5Li2FU/TtVFiGd76lZU6FkFJVrDppd7H",
    ),
    (
        "p521",
        "MIGbMBAGByqGSM49AgEGBSuBBAAjA4GGAAQBkXIJRNje3zXOO+Yf2A+bS6NFNdaN/XNlTvEeUl4uyR3T4a8B8CEEyU4kHCAV4y6r/J4d8WFt8JF5aE1ZUn1J+4cBuEjwaeXESK10ANJN6lD0M5bx17KWGYGJvzJHypks3F7z0drXMUg9zZwf3965GpQa0NTNQuLgmPKsmvv5lLNUCng=",
        "AWgOfK0+UXCMYlFdsO+4WNbmlfnPJWb1Pa88F8TVwbmisCItrS/xfq5SclO5EtrVWCdBYdGTTGeTdzgndSenrS+lAOw7eF/e+mdqw+kj8v5zfgskzwLhXbu7L8MOcUN0HvX2pyP4jeu07/ZiNnaFTl4Ws4uTlnsFhIGEKEnoBEqXt81I",
    ),
    (
        "rsa1024",
        "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQCjzT65tkDkj0YbQpfFpprr+PXNuY336Oa/vRwbsWpEdXVz0BKRXMZdpNZiAvJzbcg5oVd/pIkdjKL5HnswSBNKXh2VkkVk8rNYBPBFpR9QalBpzPKMa5C0P6riZXw7ySa4iXo5dsu0bYIeYp6YMxL2tLivr7aXfH3au8Rau2N+UQIDAQAB",
        "mtobTWCatIzPNYeWD7G/nUXEU03WWiTRYm5nFue0PVRYSFYXBCNeikU4OSzIM+ev1EcrmI6eKCT3iRIFKHWt5PWKKzndVR840dW8QM4vxeSz8U1s94AQiffm5mWXlflfrYHa21TgA7YJt3qaqYy91UN2fk2CDo07dj0yN7a4ztw=",
    ),
];

#[test]
fn p384_and_p521_use_sha256_and_small_rsa_is_rejected() {
    for (name, spki, sig) in &VECTORS[..2] {
        let key = PublicKey::from_parts("ecdsa", spki).unwrap();
        let sig = decode_base64_go(sig).unwrap();
        key.verify("ecdsa", VECTOR_MSG, &sig)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut bad = sig.clone();
        bad[5] ^= 1;
        assert_eq!(
            key.verify("ecdsa", VECTOR_MSG, &bad),
            Err(SignatureError::Invalid),
            "{name}"
        );
        assert!(matches!(
            key.verify("ecdsa", VECTOR_MSG, &sig[..64]),
            Err(SignatureError::EcdsaSignatureLength { .. })
        ));
    }
    let (_, spki, sig) = VECTORS[2];
    let key = PublicKey::from_parts("rsa", spki).unwrap();
    let sig = decode_base64_go(sig).unwrap();
    assert_eq!(
        key.verify("rsapss", VECTOR_MSG, &sig),
        Err(SignatureError::RsaKeyTooSmall { bits: 1024 })
    );
}

#[test]
fn generated_rsa_and_ed25519_keys() {
    let rsa = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let spki = rsa.public_key().as_der().unwrap();
    let key = PublicKey::from_parts("rsa", &STANDARD.encode(spki.as_ref())).unwrap();
    let rng = SystemRandom::new();
    let mut pss = vec![0; rsa.public_modulus_len()];
    rsa.sign(
        &aws_lc_rs::signature::RSA_PSS_SHA256,
        &rng,
        VECTOR_MSG,
        &mut pss,
    )
    .unwrap();
    let mut pkcs1 = vec![0; rsa.public_modulus_len()];
    rsa.sign(
        &aws_lc_rs::signature::RSA_PKCS1_SHA256,
        &rng,
        VECTOR_MSG,
        &mut pkcs1,
    )
    .unwrap();
    key.verify("rsapss", VECTOR_MSG, &pss).unwrap();
    key.verify("RSAPKCS1V15", VECTOR_MSG, &pkcs1).unwrap();
    assert_eq!(
        key.verify("rsapss", VECTOR_MSG, &pkcs1),
        Err(SignatureError::Invalid)
    );
    assert_eq!(
        key.verify("rsapkcs1v15", b"other", &pkcs1),
        Err(SignatureError::Invalid)
    );
    assert!(matches!(
        key.verify("pycrypto-pkcs#1 pss", VECTOR_MSG, &pss),
        Err(SignatureError::UnsupportedMethod(_))
    ));
    let pinned = PinnedKey::from_pem(&pem("PUBLIC KEY", spki.as_ref())).unwrap();
    assert!(pinned.matches(&key));
    assert_eq!(pinned.key_id(), key.id());

    let ed = Ed25519KeyPair::generate().unwrap();
    let raw = ed.public_key().as_ref().to_vec();
    let key = PublicKey::from_parts("ed25519", &STANDARD.encode(&raw)).unwrap();
    assert_eq!(key.raw_ed25519().map(|k| k.to_vec()), Some(raw));
    assert_eq!(key.spki_der(), None);
    let sig = ed.sign(VECTOR_MSG);
    key.verify("eddsa", VECTOR_MSG, sig.as_ref()).unwrap();
    let mut bad = sig.as_ref().to_vec();
    bad[0] ^= 1;
    assert_eq!(
        key.verify("eddsa", VECTOR_MSG, &bad),
        Err(SignatureError::Invalid)
    );
    assert_eq!(
        key.verify("eddsa", VECTOR_MSG, &bad[..63]),
        Err(SignatureError::Ed25519SignatureLength(63))
    );
    assert!(matches!(
        key.verify("ecdsa", VECTOR_MSG, sig.as_ref()),
        Err(SignatureError::WrongKeyType { .. })
    ));
    let ed_spki = ed.public_key().as_der().unwrap();
    let pinned = PinnedKey::from_pem(&pem("PUBLIC KEY", ed_spki.as_ref())).unwrap();
    assert!(pinned.matches(&key));
    assert_eq!(pinned.key_id(), key.id());
}

#[test]
fn pem_decoding_follows_go_and_stays_linear() {
    use super::x509::pem_decode;
    let leaf = WEAK_BUNDLE
        .split_inclusive("-----END CERTIFICATE-----\n")
        .next()
        .unwrap();
    // A malformed block (bad base64) is skipped and the next one is returned, as in Go.
    let input = format!("-----BEGIN CERTIFICATE-----\n%%%%\n-----END CERTIFICATE-----\n{leaf}");
    let (block, rest) = pem_decode(input.as_bytes()).unwrap();
    assert_eq!(block.label, "CERTIFICATE");
    assert!(rest.is_empty());
    // Headers are allowed; the END label must match the BEGIN label.
    let with_headers = leaf.replacen("-----\n", "-----\nProc-Type: 4,ENCRYPTED\n\n", 1);
    assert!(pem_decode(with_headers.as_bytes()).is_some());
    assert!(pem_decode(leaf.replace("END CERTIFICATE", "END X509").as_bytes()).is_none());
    // Many BEGIN lines sharing one far-away END line: no block, and (the decoder gives up after
    // a bounded number of malformed blocks) no quadratic scan. Speed itself is not asserted here.
    let hostile = format!(
        "{}\n-----END B-----\n",
        "-----BEGIN A-----\n".repeat(20_000)
    );
    assert!(pem_decode(hostile.as_bytes()).is_none());
}

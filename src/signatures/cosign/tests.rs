//! Unit tests: a bundle and a legacy signature written by the real cosign 3.1.1 (testdata/),
//! and signatures made here with fresh keys for every negative case.

use std::collections::BTreeMap;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
    KeyPair as _, RSA_PKCS1_SHA256,
};
use base64::Engine;

use super::bundle::pae;
use super::*;

const REAL_BUNDLE: &str = include_str!("testdata/bundle.json");
const REAL_PAYLOAD: &str = include_str!("testdata/legacy.payload");
const REAL_SIG: &str = include_str!("testdata/legacy.sig");
const REAL_PUB: &str = include_str!("testdata/cosign.pub");
const REAL_KEY_ID: &str = "sha256:939aa801c8f798507a1ad9c66ea78a859d0217b333fed428ac2f65d3e1e78fa5";
const REAL_DIGEST: &str = "sha256:b116bc1d4c704135f66efa66cdea883115e78a3460be7dd2beb245156e79535a";
const REAL_REPO: &str = "127.0.0.1:36697/demo/app";

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn subject(repository: &str, digest: &str) -> Subject {
    Subject {
        repository: repository.into(),
        digest: digest.into(),
        media_type: "application/vnd.docker.distribution.manifest.v2+json".into(),
        size: 423,
    }
}

fn real_subject() -> Subject {
    subject(REAL_REPO, REAL_DIGEST)
}

fn other_digest() -> String {
    format!("sha256:{}", "ab".repeat(32))
}

enum TestKey {
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
    Rsa(aws_lc_rs::rsa::KeyPair),
}

impl TestKey {
    fn p256() -> TestKey {
        TestKey::Ec(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap())
    }

    fn spki(&self) -> Vec<u8> {
        match self {
            TestKey::Ec(k) => k.public_key().as_der().unwrap().as_ref().to_vec(),
            TestKey::Ed(k) => k.public_key().as_der().unwrap().as_ref().to_vec(),
            TestKey::Rsa(k) => k.public_key().as_der().unwrap().as_ref().to_vec(),
        }
    }

    fn pem(&self) -> String {
        let body = b64(&self.spki());
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        )
    }

    fn id(&self) -> String {
        key_id(&self.spki())
    }

    fn sign(&self, msg: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match self {
            TestKey::Ec(k) => k.sign(&rng, msg).unwrap().as_ref().to_vec(),
            TestKey::Ed(k) => k.sign(msg).as_ref().to_vec(),
            TestKey::Rsa(k) => {
                let mut sig = vec![0; k.public_modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &rng, msg, &mut sig).unwrap();
                sig
            }
        }
    }
}

fn policy(keys: &[&TestKey], threshold: u32) -> CosignPolicy {
    let pems: Vec<String> = keys.iter().map(|k| k.pem()).collect();
    CosignPolicy::new(&pems, threshold, Revoked::default()).unwrap()
}

fn real_policy() -> CosignPolicy {
    CosignPolicy::new(&[REAL_PUB.to_string()], 1, Revoked::default()).unwrap()
}

fn payload(repository: &str, digest: &str, kind: &str) -> Vec<u8> {
    format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"{repository}"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"{kind}"}},"optional":null}}"#
    )
    .into_bytes()
}

fn legacy(blob: Vec<u8>, sig: &[u8]) -> Attached {
    let mut annotations = BTreeMap::new();
    annotations.insert(SIGNATURE_ANNOTATION.to_string(), b64(sig));
    Attached {
        manifest_digest: format!("sha256:{}", "cd".repeat(32)),
        artifact_type: "application/vnd.oci.image.config.v1+json".into(),
        media_type: SIMPLE_SIGNING_MEDIA_TYPE.into(),
        annotations,
        blob,
    }
}

fn signed_legacy(key: &TestKey, repository: &str, digest: &str) -> Attached {
    let body = payload(repository, digest, SIMPLE_SIGNING_TYPE);
    let sig = key.sign(&body);
    legacy(body, &sig)
}

fn bundle_attached(blob: Vec<u8>) -> Attached {
    Attached {
        manifest_digest: format!("sha256:{}", "ef".repeat(32)),
        artifact_type: BUNDLE_MEDIA_TYPE.into(),
        media_type: BUNDLE_MEDIA_TYPE.into(),
        annotations: BTreeMap::new(),
        blob,
    }
}

fn statement(digest_hex: &str, predicate: &str) -> Vec<u8> {
    format!(
        r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[{{"digest":{{"sha256":"{digest_hex}"}},"annotations":{{}}}}],"predicateType":"{predicate}","predicate":{{}}}}"#
    )
    .into_bytes()
}

fn signed_bundle(keys: &[&TestKey], body: &[u8], material: &str) -> Attached {
    let pae = pae("application/vnd.in-toto+json", body);
    let sigs: Vec<String> = keys
        .iter()
        .map(|k| format!(r#"{{"sig":"{}"}}"#, b64(&k.sign(&pae))))
        .collect();
    let blob = format!(
        r#"{{"mediaType":"{BUNDLE_MEDIA_TYPE}","verificationMaterial":{material},"dsseEnvelope":{{"payload":"{}","payloadType":"application/vnd.in-toto+json","signatures":[{}]}}}}"#,
        b64(body),
        sigs.join(",")
    );
    bundle_attached(blob.into_bytes())
}

fn image_bundle(keys: &[&TestKey], digest: &str) -> Attached {
    let hex = digest.strip_prefix("sha256:").unwrap();
    signed_bundle(
        keys,
        &statement(hex, SIGN_PREDICATE_TYPE),
        r#"{"publicKey":{"hint":"x"}}"#,
    )
}

#[test]
fn pae_matches_the_dsse_specification() {
    assert_eq!(
        pae("http://example.com/HelloWorld", b"hello world"),
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
    );
}

#[test]
fn key_id_is_sha256_of_the_spki() {
    let p = real_policy();
    assert_eq!(p.key_ids(), vec![REAL_KEY_ID.to_string()]);
}

#[test]
fn real_cosign_bundle_verifies() {
    let sig = bundle_attached(REAL_BUNDLE.as_bytes().to_vec());
    let got = verify(&real_policy(), &real_subject(), &sig).unwrap();
    assert_eq!(got, REAL_KEY_ID);
    // The statement names no repository: a bundle binds the digest only.
    let elsewhere = subject("docker.io/library/nginx", REAL_DIGEST);
    assert!(verify(&real_policy(), &elsewhere, &sig).is_ok());
}

#[test]
fn real_cosign_legacy_signature_verifies() {
    let sig = legacy(
        REAL_PAYLOAD.as_bytes().to_vec(),
        &base64::engine::general_purpose::STANDARD
            .decode(REAL_SIG)
            .unwrap(),
    );
    assert_eq!(
        verify(&real_policy(), &real_subject(), &sig).unwrap(),
        REAL_KEY_ID
    );
}

#[test]
fn real_signatures_of_another_digest_are_refused() {
    let other = subject(REAL_REPO, &other_digest());
    let b = bundle_attached(REAL_BUNDLE.as_bytes().to_vec());
    let err = verify(&real_policy(), &other, &b).unwrap_err();
    assert!(matches!(err, CosignError::DigestMismatch { .. }), "{err}");
    let l = legacy(
        REAL_PAYLOAD.as_bytes().to_vec(),
        &base64::engine::general_purpose::STANDARD
            .decode(REAL_SIG)
            .unwrap(),
    );
    let err = verify(&real_policy(), &other, &l).unwrap_err();
    assert!(matches!(err, CosignError::DigestMismatch { .. }), "{err}");
}

#[test]
fn legacy_payload_naming_another_repository_is_refused() {
    let key = TestKey::p256();
    let sig = signed_legacy(&key, "127.0.0.1:5000/evil/app", REAL_DIGEST);
    let err = verify(&policy(&[&key], 1), &real_subject(), &sig).unwrap_err();
    assert!(
        matches!(err, CosignError::RepositoryMismatch { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("evil/app"), "{err}");
}

#[test]
fn docker_reference_is_normalised_and_suffixes_ignored() {
    let key = TestKey::p256();
    let p = policy(&[&key], 1);
    let hub = subject("docker.io/library/nginx", REAL_DIGEST);
    for named in [
        "nginx",
        "index.docker.io/library/nginx",
        "docker.io/library/nginx:1.27",
        &format!("library/nginx@{REAL_DIGEST}"),
    ] {
        let sig = signed_legacy(&key, named, REAL_DIGEST);
        assert!(verify(&p, &hub, &sig).is_ok(), "{named}");
    }
    for named in ["nginx2", "docker.io/nginx/nginx", "", "NGINX"] {
        let sig = signed_legacy(&key, named, REAL_DIGEST);
        assert!(verify(&p, &hub, &sig).is_err(), "{named}");
    }
}

#[test]
fn legacy_payload_of_another_type_is_refused() {
    let key = TestKey::p256();
    let body = payload(REAL_REPO, REAL_DIGEST, "cosign container image attestation");
    let sig = legacy(body.clone(), &key.sign(&body));
    let err = verify(&policy(&[&key], 1), &real_subject(), &sig).unwrap_err();
    assert!(matches!(err, CosignError::WrongType(_)), "{err}");
}

#[test]
fn tampered_payload_and_foreign_keys_do_not_verify() {
    let key = TestKey::p256();
    let stranger = TestKey::p256();
    let mut sig = signed_legacy(&key, REAL_REPO, REAL_DIGEST);
    let err = verify(&policy(&[&stranger], 1), &real_subject(), &sig).unwrap_err();
    assert!(matches!(err, CosignError::NoKeyVerifies { .. }), "{err}");
    sig.blob.push(b' ');
    let err = verify(&policy(&[&key], 1), &real_subject(), &sig).unwrap_err();
    assert!(matches!(err, CosignError::NoKeyVerifies { .. }), "{err}");
    let b = bundle_attached(REAL_BUNDLE.as_bytes().to_vec());
    let err = verify(&policy(&[&stranger], 1), &real_subject(), &b).unwrap_err();
    assert!(
        err.to_string().contains(REAL_KEY_ID),
        "names the hinted key: {err}"
    );
}

#[test]
fn missing_or_garbled_legacy_signature_is_refused() {
    let key = TestKey::p256();
    let mut sig = signed_legacy(&key, REAL_REPO, REAL_DIGEST);
    sig.annotations
        .insert(SIGNATURE_ANNOTATION.into(), "%%%".into());
    assert!(matches!(
        verify(&policy(&[&key], 1), &real_subject(), &sig),
        Err(CosignError::Malformed { .. })
    ));
    sig.annotations.clear();
    assert!(matches!(
        verify(&policy(&[&key], 1), &real_subject(), &sig),
        Err(CosignError::Malformed { .. })
    ));
}

#[test]
fn revoked_keys_never_count() {
    let key = TestKey::p256();
    let revoked = Revoked::from_spki(vec![key.spki()]);
    let p = CosignPolicy::new(&[key.pem()], 1, revoked).unwrap();
    let sig = signed_legacy(&key, REAL_REPO, REAL_DIGEST);
    let err = verify(&p, &real_subject(), &sig).unwrap_err();
    assert_eq!(err, CosignError::Revoked(key.id()));
    let b = image_bundle(&[&key], REAL_DIGEST);
    assert_eq!(
        verify(&p, &real_subject(), &b).unwrap_err(),
        CosignError::Revoked(key.id())
    );
    let e = evaluate(&p, &real_subject(), &[sig, b]);
    assert!(!e.passed && e.signers.is_empty(), "{e:?}");
    assert!(e.reason.contains("revoked"), "{}", e.reason);
}

#[test]
fn threshold_counts_distinct_keys() {
    let a = TestKey::p256();
    let b = TestKey::p256();
    let p = policy(&[&a, &b], 2);
    // One key, signed twice (both formats): one signer.
    let once = [
        signed_legacy(&a, REAL_REPO, REAL_DIGEST),
        image_bundle(&[&a], REAL_DIGEST),
    ];
    let e = evaluate(&p, &real_subject(), &once);
    assert!(!e.passed, "{e:?}");
    assert_eq!(e.signers, vec![a.id()]);
    assert!(
        e.reason.contains("1 distinct cosign key(s)"),
        "{}",
        e.reason
    );
    // Two distinct keys pass.
    let twice = [
        signed_legacy(&a, REAL_REPO, REAL_DIGEST),
        signed_legacy(&b, REAL_REPO, REAL_DIGEST),
    ];
    let e = evaluate(&p, &real_subject(), &twice);
    assert!(e.passed, "{e:?}");
    let mut want = vec![a.id(), b.id()];
    want.sort();
    assert_eq!(e.signers, want);
    // Two signatures in one DSSE envelope count as two keys too.
    let e = evaluate(&p, &real_subject(), &[image_bundle(&[&a, &b], REAL_DIGEST)]);
    assert!(e.passed, "{e:?}");
}

#[test]
fn the_same_key_twice_is_one_key() {
    let a = TestKey::p256();
    let err = CosignPolicy::new(&[a.pem(), a.pem()], 2, Revoked::default()).unwrap_err();
    assert_eq!(
        err,
        CosignError::BadThreshold {
            threshold: 2,
            keys: 1
        }
    );
    assert!(CosignPolicy::new(&[a.pem()], 0, Revoked::default()).is_err());
    assert_eq!(
        CosignPolicy::new(&[], 1, Revoked::default()).unwrap_err(),
        CosignError::NoKeys
    );
}

#[test]
fn bad_keys_are_reported_with_their_index() {
    let a = TestKey::p256();
    let err = CosignPolicy::new(&[a.pem(), "nope".into()], 1, Revoked::default()).unwrap_err();
    assert!(err.to_string().contains("publicKeys[1]"), "{err}");
    let two = format!("{}{}", a.pem(), TestKey::p256().pem());
    let err = CosignPolicy::new(&[two], 1, Revoked::default()).unwrap_err();
    assert!(err.to_string().contains("more than one PEM block"), "{err}");
    let padded = format!("comment\n{}\n", a.pem());
    assert!(CosignPolicy::new(&[padded], 1, Revoked::default()).is_ok());
    let key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_string();
    assert!(CosignPolicy::new(&[key], 1, Revoked::default()).is_err());
}

#[test]
fn certificates_are_accepted_as_keys() {
    let kp = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["signer".into()])
        .unwrap()
        .self_signed(&kp)
        .unwrap();
    let p = CosignPolicy::new(&[cert.pem()], 1, Revoked::default()).unwrap();
    let from_key = CosignPolicy::new(&[kp.public_key_pem()], 1, Revoked::default()).unwrap();
    assert_eq!(p.key_ids(), from_key.key_ids());
}

#[test]
fn rsa_p384_and_ed25519_keys_verify() {
    let keys = [
        TestKey::Ec(EcdsaKeyPair::generate(&ECDSA_P384_SHA384_ASN1_SIGNING).unwrap()),
        TestKey::Ed(Ed25519KeyPair::generate().unwrap()),
        TestKey::Rsa(aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap()),
    ];
    for key in &keys {
        let p = policy(&[key], 1);
        let sig = signed_legacy(key, REAL_REPO, REAL_DIGEST);
        assert_eq!(verify(&p, &real_subject(), &sig).unwrap(), key.id());
        let b = image_bundle(&[key], REAL_DIGEST);
        assert_eq!(verify(&p, &real_subject(), &b).unwrap(), key.id());
    }
}

#[test]
fn bundle_statement_checks() {
    let key = TestKey::p256();
    let p = policy(&[&key], 1);
    let hex = REAL_DIGEST.strip_prefix("sha256:").unwrap();
    let wrong_predicate = signed_bundle(
        &[&key],
        &statement(hex, "https://slsa.dev/provenance/v1"),
        "{}",
    );
    let err = verify(&p, &real_subject(), &wrong_predicate).unwrap_err();
    assert!(matches!(err, CosignError::WrongType(_)), "{err}");
    let other = image_bundle(&[&key], &other_digest());
    let err = verify(&p, &real_subject(), &other).unwrap_err();
    assert!(matches!(err, CosignError::DigestMismatch { .. }), "{err}");
}

#[test]
fn keyless_bundles_and_signatures_are_refused_clearly() {
    let key = TestKey::p256();
    let p = policy(&[&key], 1);
    let hex = REAL_DIGEST.strip_prefix("sha256:").unwrap();
    for material in [
        r#"{"certificate":{"rawBytes":"AAAA"}}"#,
        r#"{"x509CertificateChain":{"certificates":[]}}"#,
    ] {
        let b = signed_bundle(&[&key], &statement(hex, SIGN_PREDICATE_TYPE), material);
        let err = verify(&p, &real_subject(), &b).unwrap_err();
        assert!(matches!(err, CosignError::KeylessUnsupported(_)), "{err}");
        assert!(
            err.to_string().contains("not supported in v1alpha1"),
            "{err}"
        );
        assert!(describe(&b).unwrap().keyless);
    }
    let mut l = signed_legacy(&key, REAL_REPO, REAL_DIGEST);
    l.annotations.insert(
        CERTIFICATE_ANNOTATION.into(),
        "-----BEGIN CERTIFICATE-----".into(),
    );
    let err = verify(&p, &real_subject(), &l).unwrap_err();
    assert!(matches!(err, CosignError::KeylessUnsupported(_)), "{err}");
}

#[test]
fn message_signature_bundles_and_garbage_are_refused() {
    let p = policy(&[&TestKey::p256()], 1);
    let blob = format!(r#"{{"mediaType":"{BUNDLE_MEDIA_TYPE}","messageSignature":{{}}}}"#);
    let err = verify(&p, &real_subject(), &bundle_attached(blob.into_bytes())).unwrap_err();
    assert!(matches!(err, CosignError::WrongType(_)), "{err}");
    for junk in [&b"not json"[..], b"{}", b"[]", b""] {
        let err = verify(&p, &real_subject(), &bundle_attached(junk.to_vec())).unwrap_err();
        assert!(matches!(err, CosignError::Malformed { .. }), "{err}");
        let err = verify(&p, &real_subject(), &legacy(junk.to_vec(), b"x")).unwrap_err();
        assert!(
            matches!(err, CosignError::NoKeyVerifies { .. }),
            "the signature is checked before the payload is parsed: {err}"
        );
    }
    let mut unknown = bundle_attached(b"{}".to_vec());
    unknown.media_type = "application/jose+json".into();
    assert!(matches!(
        verify(&p, &real_subject(), &unknown),
        Err(CosignError::UnknownFormat { .. })
    ));
    assert!(!is_cosign(&unknown) || unknown.artifact_type.starts_with(BUNDLE_MEDIA_TYPE_PREFIX));
}

#[test]
fn envelope_one_past_the_size_limit_is_refused() {
    let p = policy(&[&TestKey::p256()], 1);
    let limit = usize::try_from(LIMITS.signature_envelope_bytes).unwrap();
    let mut at = vec![b' '; limit];
    at[0] = b'{';
    at[limit - 1] = b'}';
    let err = verify(&p, &real_subject(), &bundle_attached(at.clone())).unwrap_err();
    assert!(!matches!(err, CosignError::TooLarge { .. }), "{err}");
    at.push(b' ');
    let err = verify(&p, &real_subject(), &bundle_attached(at)).unwrap_err();
    assert!(matches!(err, CosignError::TooLarge { .. }), "{err}");
}

#[test]
fn json_one_past_the_depth_limit_is_refused() {
    let p = policy(&[&TestKey::p256()], 1);
    let nest = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n)).into_bytes();
    let err = verify(
        &p,
        &real_subject(),
        &bundle_attached(nest(LIMITS.json_depth)),
    )
    .unwrap_err();
    assert!(!matches!(err, CosignError::TooLarge { .. }), "{err}");
    let err = verify(
        &p,
        &real_subject(),
        &bundle_attached(nest(LIMITS.json_depth + 1)),
    )
    .unwrap_err();
    assert!(matches!(err, CosignError::TooLarge { .. }), "{err}");
    assert_eq!(json_depth(br#"{"a":"[[[[\"["}"#), 1);
}

#[test]
fn evaluate_reports_why_and_how_many() {
    let key = TestKey::p256();
    let p = policy(&[&key], 1);
    let e = evaluate(&p, &real_subject(), &[]);
    assert!(!e.passed);
    assert!(
        e.reason.contains("no cosign signature attached"),
        "{}",
        e.reason
    );
    let e = evaluate(
        &p,
        &real_subject(),
        &[signed_legacy(&key, "127.0.0.1:5000/evil/app", REAL_DIGEST)],
    );
    assert!(!e.passed);
    assert!(e.reason.contains("names repository"), "{}", e.reason);
    assert!(!e.reason.contains('\n'));
    let e = evaluate(
        &p,
        &real_subject(),
        &[signed_legacy(&key, REAL_REPO, REAL_DIGEST)],
    );
    assert!(e.passed, "{e:?}");
    assert_eq!(e.signers, vec![key.id()]);
}

fn junk_bundle(i: usize) -> Attached {
    let mut a = image_bundle(&[&TestKey::p256()], REAL_DIGEST);
    a.manifest_digest = format!("sha256:{i:064x}");
    a
}

#[test]
fn evaluate_refuses_more_signatures_than_the_per_format_limit() {
    let key = TestKey::p256();
    let p = policy(&[&key], 1);
    // Junk bundles first (as the registry walk orders them), the good legacy signature last.
    let mut sigs: Vec<Attached> = (0..LIMITS.signatures_per_format).map(junk_bundle).collect();
    sigs.push(signed_legacy(&key, REAL_REPO, REAL_DIGEST));
    let e = evaluate(&p, &real_subject(), &sigs);
    assert!(!e.passed);
    assert!(e.signers.is_empty());
    let expected = format!(
        "{} cosign signatures attached (bundles and legacy .sig layers together), more than the limit of {}",
        LIMITS.signatures_per_format + 1,
        LIMITS.signatures_per_format
    );
    assert_eq!(e.reason, expected);
    // At the limit every one is checked, the last one included.
    sigs.remove(0);
    let e = evaluate(&p, &real_subject(), &sigs);
    assert!(e.passed, "{e:?}");
    assert_eq!(e.signers, vec![key.id()]);
}

fn hint_of(key: &TestKey) -> String {
    let raw = hex::decode(key.id().strip_prefix("sha256:").unwrap()).unwrap();
    format!(r#"{{"publicKey":{{"hint":"{}"}}}}"#, b64(&raw))
}

#[test]
fn bundle_with_more_dsse_signatures_than_the_limit_is_refused() {
    let key = TestKey::p256();
    let p = policy(&[&key], 1);
    let body = statement(
        REAL_DIGEST.strip_prefix("sha256:").unwrap(),
        SIGN_PREDICATE_TYPE,
    );
    let limit = LIMITS.dsse_signatures_per_envelope;
    assert!(limit < LIMITS.signatures_per_file);
    let at_limit: Vec<&TestKey> = vec![&key; limit];
    let ok = signed_bundle(&at_limit, &body, &hint_of(&key));
    assert_eq!(verify(&p, &real_subject(), &ok), Ok(key.id()));
    let over: Vec<&TestKey> = vec![&key; limit + 1];
    let err = verify(
        &p,
        &real_subject(),
        &signed_bundle(&over, &body, &hint_of(&key)),
    )
    .unwrap_err();
    assert_eq!(
        err,
        CosignError::TooManySignatures {
            count: limit + 1,
            limit,
            what: "DSSE signatures in one bundle",
        }
    );
    assert!(
        err.to_string().contains("more than the limit of 4"),
        "{err}"
    );
}

#[test]
fn bundle_hinting_a_policy_key_is_checked_with_that_key_alone() {
    let a = TestKey::p256();
    let b = TestKey::p256();
    let p = policy(&[&a, &b], 1);
    let body = statement(
        REAL_DIGEST.strip_prefix("sha256:").unwrap(),
        SIGN_PREDICATE_TYPE,
    );
    // Hint names a, b signed: only a is tried, so the signature does not count.
    let err = verify(
        &p,
        &real_subject(),
        &signed_bundle(&[&b], &body, &hint_of(&a)),
    )
    .unwrap_err();
    assert!(
        matches!(&err, CosignError::NoKeyVerifies { hint, .. } if hint.contains(&a.id())),
        "{err:?}"
    );
    // The hint matches the signer: verified with it.
    let ok = signed_bundle(&[&b], &body, &hint_of(&b));
    assert_eq!(verify(&p, &real_subject(), &ok), Ok(b.id()));
    // A hint naming no policy key: every key is tried.
    let stranger = TestKey::p256();
    let ok = signed_bundle(&[&b], &body, &hint_of(&stranger));
    assert_eq!(verify(&p, &real_subject(), &ok), Ok(b.id()));
}

#[test]
fn describe_reads_both_formats() {
    let d = describe(&bundle_attached(REAL_BUNDLE.as_bytes().to_vec())).unwrap();
    assert_eq!(d.format, "bundle");
    assert_eq!(d.subjects, vec![REAL_DIGEST.to_string()]);
    assert_eq!(d.key_hint.as_deref(), Some(REAL_KEY_ID));
    assert_eq!((d.signatures, d.keyless, d.tlog_entries), (1, false, 0));
    let l = legacy(REAL_PAYLOAD.as_bytes().to_vec(), b"x");
    let d = describe(&l).unwrap();
    assert_eq!(d.format, "simple-signing");
    assert_eq!(d.docker_reference.as_deref(), Some(REAL_REPO));
    assert_eq!(d.subjects, vec![REAL_DIGEST.to_string()]);
}

/// One RSA key as two PEM public keys: AlgorithmIdentifier parameters NULL, and absent.
fn rsa_key_in_two_encodings() -> (String, String) {
    use aws_lc_rs::signature::KeyPair as _;
    use x509_cert::der::Encode;
    use x509_cert::der::asn1::{AnyRef, BitString};
    use x509_cert::spki::{AlgorithmIdentifier, ObjectIdentifier, SubjectPublicKeyInfo};
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let pkcs1 = pair.public_key().as_ref().to_vec();
    let pem = |params: Option<AnyRef<'_>>| {
        let der = SubjectPublicKeyInfo {
            algorithm: AlgorithmIdentifier {
                oid: ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1"),
                parameters: params,
            },
            subject_public_key: BitString::from_bytes(&pkcs1).unwrap(),
        }
        .to_der()
        .unwrap();
        x509_cert::der::pem::encode_string("PUBLIC KEY", x509_cert::der::pem::LineEnding::LF, &der)
            .unwrap()
    };
    (pem(Some(AnyRef::NULL)), pem(None))
}

#[test]
fn one_key_in_two_encodings_is_one_key_for_the_threshold_and_revocation() {
    let (with_null, without) = rsa_key_in_two_encodings();
    assert_ne!(with_null, without);
    let err = CosignPolicy::new(&[with_null.clone(), without.clone()], 2, Revoked::default())
        .expect_err("one distinct key cannot meet a threshold of 2");
    assert!(
        matches!(
            err,
            CosignError::BadThreshold {
                threshold: 2,
                keys: 1
            }
        ),
        "{err}"
    );
    let p =
        CosignPolicy::new(&[with_null.clone(), without.clone()], 1, Revoked::default()).unwrap();
    assert_eq!(p.key_ids().len(), 1);
    // Revoked in one encoding, the key is revoked in the other.
    let der = |pem: &str| x509_cert::der::pem::decode_vec(pem.as_bytes()).unwrap().1;
    let revoked = Revoked::from_spki(vec![der(&with_null)]);
    assert!(revoked.contains(&der(&without)));
}

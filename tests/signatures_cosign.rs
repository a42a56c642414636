//! cosign signatures end to end: images pushed to the real `docker-registry` of the test stack,
//! signed there with the real `cosign` 3 (Sigstore bundle attached through the referrers tag
//! schema, and the legacy `.sig` simple-signing format), fetched with trustgate's registry
//! client and verified with its cosign verifier. Negatives with real signatures: a payload
//! naming another repository (a signature copied across repositories), another digest, a key
//! not in the policy, a revoked key, threshold 2 with one key; two distinct keys pass.
//! Also over TLS (test CA) and token auth. Skips visibly without the stack or the tools.

mod common;

use std::path::Path;

use common::sigtools::{SigTools, Target, sigtools};
use trustgate::image::credentials::Credentials;
use trustgate::image::reference::ImageRef;
use trustgate::image::registry::{RegistryOptions, Resolver, SignatureFormat};
use trustgate::signatures::cosign::{self, CosignError, CosignPolicy};
use trustgate::signatures::{Attached, Revoked, Subject};

struct Env {
    stack: common::Stack,
    tools: SigTools,
    keys: tempfile::TempDir,
}

fn setup() -> Option<Env> {
    trustgate::tls::install_crypto_provider();
    let stack = common::stack()?;
    let tools = sigtools()?;
    let keys = tempfile::tempdir().expect("tempdir");
    tools.keys(keys.path());
    Some(Env { stack, tools, keys })
}

fn http() -> RegistryOptions {
    RegistryOptions {
        plain_http: true,
        ..RegistryOptions::default()
    }
}

fn plain() -> Target {
    Target {
        plain_http: true,
        ..Target::default()
    }
}

fn pem(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(format!("{name}.pub"))).expect("public key")
}

fn spki_of(pem: &str) -> Vec<u8> {
    use base64::Engine;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("PEM body")
}

fn policy(keys: &[&str], threshold: u32, revoked: &[&str]) -> CosignPolicy {
    let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    let revoked = Revoked::from_spki(revoked.iter().map(|p| spki_of(p)).collect::<Vec<_>>());
    CosignPolicy::new(&keys, threshold, revoked).expect("policy")
}

/// Pushes a fresh image to `registry`/`repo`:v1; returns (tag reference, digest reference).
fn push(env: &Env, seed: &str, repo: &str) -> (ImageRef, String) {
    let layout = common::push_http(&env.stack, seed, repo, "v1");
    let tag = format!("{}/{repo}:v1", env.stack.registry_http);
    let pinned = format!(
        "{}/{repo}@{}",
        env.stack.registry_http, layout.manifest_digest
    );
    (ImageRef::parse(&tag).expect("reference"), pinned)
}

async fn fetch(
    image: &ImageRef,
    opts: &RegistryOptions,
    creds: &Credentials,
) -> (Subject, Vec<Attached>) {
    let r = Resolver::default();
    let subject = r.describe(image, opts, creds).await.expect("describe");
    let sigs = r
        .signatures(image, &subject, SignatureFormat::Cosign, opts, creds)
        .await
        .expect("fetch cosign signatures");
    (subject, sigs)
}

fn formats(sigs: &[Attached]) -> Vec<&'static str> {
    let mut f: Vec<_> = sigs
        .iter()
        .map(|s| cosign::describe(s).expect("describe").format)
        .collect();
    f.sort_unstable();
    f
}

#[tokio::test]
async fn real_bundle_and_legacy_signatures_verify_end_to_end() {
    let Some(env) = setup() else { return };
    let repo = common::unique_repo("cosign/both");
    let (image, pinned) = push(&env, "cosign-both", &repo);
    let k = env.keys.path();
    env.tools.cosign_bundle(k, &pinned, None, &plain());
    env.tools.cosign_legacy(k, &pinned, None, &plain());
    let (subject, sigs) = fetch(&image, &http(), &Credentials::Anonymous).await;
    assert_eq!(formats(&sigs), vec!["bundle", "simple-signing"]);
    let key = pem(k, "cosign");
    let p = policy(&[&key], 1, &[]);
    let id = p.key_ids()[0].clone();
    for sig in &sigs {
        assert_eq!(cosign::verify(&p, &subject, sig).expect("verifies"), id);
    }
    let e = cosign::evaluate(&p, &subject, &sigs);
    assert!(e.passed, "{e:?}");
    assert_eq!(e.signers, vec![id.clone()]);
    // The bundle names its key: the hint is our key ID.
    let bundle = sigs
        .iter()
        .find(|s| cosign::describe(s).unwrap().format == "bundle")
        .unwrap();
    assert_eq!(cosign::describe(bundle).unwrap().key_hint, Some(id));
}

#[tokio::test]
async fn unsigned_image_has_no_cosign_signature() {
    let Some(env) = setup() else { return };
    let repo = common::unique_repo("cosign/unsigned");
    let (image, _) = push(&env, "cosign-unsigned", &repo);
    let (subject, sigs) = fetch(&image, &http(), &Credentials::Anonymous).await;
    assert!(sigs.is_empty());
    let e = cosign::evaluate(
        &policy(&[&pem(env.keys.path(), "cosign")], 1, &[]),
        &subject,
        &sigs,
    );
    assert!(!e.passed);
    assert!(e.reason.contains("no cosign signature"), "{}", e.reason);
}

#[tokio::test]
async fn signature_copied_to_another_repository_names_the_original() {
    let Some(env) = setup() else { return };
    let k = env.keys.path();
    let origin = common::unique_repo("cosign/origin");
    let (_, pinned) = push(&env, "cosign-copied", &origin);
    env.tools.cosign_legacy(k, &pinned, None, &plain());
    env.tools.cosign_bundle(k, &pinned, None, &plain());
    // Same image, its signature tags copied as they are into another repository.
    let copy = common::unique_repo("cosign/copy");
    let reg = &env.stack.registry_http;
    let digest = pinned.rsplit_once('@').unwrap().1.to_string();
    let tag = digest.replace(':', "-");
    env.tools.crane_copy(&pinned, &format!("{reg}/{copy}:v1"));
    env.tools.crane_copy(
        &format!("{reg}/{origin}:{tag}.sig"),
        &format!("{reg}/{copy}:{tag}.sig"),
    );
    env.tools.crane_copy(
        &format!("{reg}/{origin}:{tag}"),
        &format!("{reg}/{copy}:{tag}"),
    );
    let image = ImageRef::parse(&format!("{reg}/{copy}:v1")).unwrap();
    let (subject, sigs) = fetch(&image, &http(), &Credentials::Anonymous).await;
    assert_eq!(subject.digest, digest);
    let p = policy(&[&pem(k, "cosign")], 1, &[]);
    let legacy = sigs
        .iter()
        .find(|s| s.media_type == cosign::SIMPLE_SIGNING_MEDIA_TYPE)
        .expect("legacy signature copied");
    match cosign::verify(&p, &subject, legacy) {
        Err(CosignError::RepositoryMismatch { signed, expected }) => {
            assert!(signed.ends_with(&origin), "{signed}");
            assert!(expected.ends_with(&copy), "{expected}");
        }
        other => panic!("expected a repository mismatch, got {other:?}"),
    }
    // The bundle's statement names no repository: it binds the digest only, so it still counts.
    let e = cosign::evaluate(&p, &subject, &sigs);
    assert!(e.passed, "{e:?}");
}

#[tokio::test]
async fn signatures_of_another_digest_do_not_count() {
    let Some(env) = setup() else { return };
    let k = env.keys.path();
    let repo = common::unique_repo("cosign/other-digest");
    let (_, signed) = push(&env, "cosign-signed", &repo);
    env.tools.cosign_legacy(k, &signed, None, &plain());
    env.tools.cosign_bundle(k, &signed, None, &plain());
    let signed_image = ImageRef::parse(&signed).unwrap();
    let (_, sigs) = fetch(&signed_image, &http(), &Credentials::Anonymous).await;
    assert_eq!(sigs.len(), 2);
    // A different image in the same repository, presented with the first one's signatures.
    let layout = common::push_http(&env.stack, "cosign-unsigned-v2", &repo, "v2");
    let image = ImageRef::parse(&format!("{}/{repo}:v2", env.stack.registry_http)).unwrap();
    let subject = Resolver::default()
        .describe(&image, &http(), &Credentials::Anonymous)
        .await
        .unwrap();
    assert_eq!(subject.digest, layout.manifest_digest);
    let p = policy(&[&pem(k, "cosign")], 1, &[]);
    for sig in &sigs {
        let err = cosign::verify(&p, &subject, sig).unwrap_err();
        assert!(matches!(err, CosignError::DigestMismatch { .. }), "{err}");
    }
    assert!(!cosign::evaluate(&p, &subject, &sigs).passed);
}

#[tokio::test]
async fn keys_outside_the_policy_revoked_keys_and_thresholds() {
    let Some(env) = setup() else { return };
    let k = env.keys.path();
    let a = pem(k, "cosign");
    let b = env.tools.cosign_key(k, "second");
    let stranger = env.tools.cosign_key(k, "stranger");
    let repo = common::unique_repo("cosign/keys");
    let (image, pinned) = push(&env, "cosign-keys", &repo);
    env.tools.cosign_bundle(k, &pinned, None, &plain());
    env.tools.cosign_legacy(k, &pinned, None, &plain());
    let (subject, sigs) = fetch(&image, &http(), &Credentials::Anonymous).await;

    // A key not in the policy.
    let e = cosign::evaluate(&policy(&[&stranger], 1, &[]), &subject, &sigs);
    assert!(!e.passed && e.signers.is_empty(), "{e:?}");
    assert!(e.reason.contains("verifies with none of"), "{}", e.reason);

    // The signing key revoked.
    let e = cosign::evaluate(&policy(&[&a], 1, &[&a]), &subject, &sigs);
    assert!(!e.passed && e.signers.is_empty(), "{e:?}");
    assert!(e.reason.contains("revoked"), "{}", e.reason);

    // Threshold 2 with one key (signed twice, in both formats).
    let two = policy(&[&a, &b], 2, &[]);
    let e = cosign::evaluate(&two, &subject, &sigs);
    assert!(!e.passed, "{e:?}");
    assert!(
        e.reason.contains("1 distinct cosign key(s)"),
        "{}",
        e.reason
    );

    // A second, distinct key signs: the threshold is met.
    env.tools
        .cosign_bundle(k, &pinned, Some(&k.join("second.key")), &plain());
    let (subject, sigs) = fetch(&image, &http(), &Credentials::Anonymous).await;
    assert_eq!(sigs.len(), 3);
    let e = cosign::evaluate(&two, &subject, &sigs);
    assert!(e.passed, "{e:?}");
    assert_eq!(e.signers.len(), 2);
    let mut want = two.key_ids();
    want.sort();
    assert_eq!(e.signers, want);
    // The same key listed twice is one key: threshold 2 cannot be met by it.
    let twice = CosignPolicy::new(&[a.clone(), a.clone()], 2, Revoked::default());
    assert!(matches!(
        twice,
        Err(CosignError::BadThreshold { keys: 1, .. })
    ));
}

#[tokio::test]
async fn over_tls_and_with_token_auth() {
    let Some(env) = setup() else { return };
    let k = env.keys.path();
    let key = pem(k, "cosign");
    let p = policy(&[&key], 1, &[]);
    let st = &env.stack;

    // TLS registry with the stack's CA.
    let repo = common::unique_repo("cosign/tls");
    let layout = common::oci_image("cosign-tls", "v1");
    common::skopeo_push(
        &layout,
        &common::Push {
            registry: &st.registry_tls,
            repo: &repo,
            tag: "v1",
            tls_verify: true,
            cert_dir: Some(&st.cert_dir),
            creds: None,
            format_v2s2: false,
        },
    );
    let pinned = format!("{}/{repo}@{}", st.registry_tls, layout.manifest_digest);
    let tls = Target {
        ca: Some(st.ca.clone()),
        ..Target::default()
    };
    env.tools.cosign_bundle(k, &pinned, None, &tls);
    env.tools.cosign_legacy(k, &pinned, None, &tls);
    let opts = RegistryOptions {
        ca_pem: Some(std::fs::read(&st.ca).unwrap()),
        ..RegistryOptions::default()
    };
    let image = ImageRef::parse(&format!("{}/{repo}:v1", st.registry_tls)).unwrap();
    let (subject, sigs) = fetch(&image, &opts, &Credentials::Anonymous).await;
    assert_eq!(formats(&sigs), vec!["bundle", "simple-signing"]);
    assert!(cosign::evaluate(&p, &subject, &sigs).passed);

    // Token-auth registry (plain HTTP) with a login.
    let (user, password) = st.creds();
    let repo = common::unique_repo("cosign/token");
    let layout = common::oci_image("cosign-token", "v1");
    common::skopeo_push(
        &layout,
        &common::Push {
            registry: &st.registry_token,
            repo: &repo,
            tag: "v1",
            tls_verify: false,
            cert_dir: None,
            creds: Some((user, password)),
            format_v2s2: false,
        },
    );
    let pinned = format!("{}/{repo}@{}", st.registry_token, layout.manifest_digest);
    let token = Target {
        plain_http: true,
        creds: Some((user.to_string(), password.to_string())),
        ..Target::default()
    };
    env.tools.cosign_bundle(k, &pinned, None, &token);
    env.tools.cosign_legacy(k, &pinned, None, &token);
    let creds = Credentials::Basic {
        username: user.to_string(),
        password: password.to_string(),
    };
    let image = ImageRef::parse(&format!("{}/{repo}:v1", st.registry_token)).unwrap();
    let (subject, sigs) = fetch(&image, &http(), &creds).await;
    assert_eq!(formats(&sigs), vec!["bundle", "simple-signing"]);
    assert!(cosign::evaluate(&p, &subject, &sigs).passed);
    // A wrong login is refused: a clear error, not "no signatures".
    let wrong = Credentials::Basic {
        username: user.to_string(),
        password: "wrong".to_string(),
    };
    let err = Resolver::default()
        .signatures(&image, &subject, SignatureFormat::Cosign, &http(), &wrong)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("refused"), "{err}");
}

#[tokio::test]
async fn rsa_p384_p521_and_ed25519_keys_imported_into_cosign() {
    let Some(env) = setup() else { return };
    let k = env.keys.path();
    for alg in ["rsa", "p384", "p521", "ed25519"] {
        let key = env.tools.cosign_import(k, alg, alg);
        let repo = common::unique_repo(&format!("cosign/{alg}"));
        let (image, pinned) = push(&env, &format!("cosign-{alg}"), &repo);
        let private = k.join(format!("{alg}.key"));
        env.tools
            .cosign_bundle(k, &pinned, Some(&private), &plain());
        env.tools
            .cosign_legacy(k, &pinned, Some(&private), &plain());
        let (subject, sigs) = fetch(&image, &http(), &Credentials::Anonymous).await;
        assert_eq!(formats(&sigs), vec!["bundle", "simple-signing"], "{alg}");
        let p = policy(&[&key], 1, &[]);
        for sig in &sigs {
            let format = cosign::describe(sig).unwrap().format;
            let got = cosign::verify(&p, &subject, sig);
            if alg == "ed25519" {
                // cosign 3 signs with Ed25519 keys as Ed25519ph (both formats): refused, saying so.
                let err = got.unwrap_err();
                assert!(err.to_string().contains("Ed25519ph"), "{err}");
            } else {
                assert!(got.is_ok(), "{alg} {format}: {got:?}");
            }
        }
    }
}

#[tokio::test]
async fn notation_and_cosign_signatures_are_told_apart() {
    let Some(env) = setup() else { return };
    let k = env.keys.path();
    let repo = common::unique_repo("cosign/mixed");
    let (image, pinned) = push(&env, "cosign-mixed", &repo);
    env.tools.notation(k, &pinned, "jws", &plain());
    env.tools.cosign_bundle(k, &pinned, None, &plain());
    env.tools.notation(k, &pinned, "cose", &plain());
    env.tools.cosign_legacy(k, &pinned, None, &plain());
    let r = Resolver::default();
    let creds = Credentials::Anonymous;
    let subject = r.describe(&image, &http(), &creds).await.unwrap();
    let listed = r
        .referrers(&image, &subject.digest, &http(), &creds)
        .await
        .unwrap();
    assert_eq!(listed.len(), 3, "{listed:?}");
    let cosign_sigs = r
        .signatures(&image, &subject, SignatureFormat::Cosign, &http(), &creds)
        .await
        .unwrap();
    assert_eq!(formats(&cosign_sigs), vec!["bundle", "simple-signing"]);
    let notation = r
        .signatures(&image, &subject, SignatureFormat::Notation, &http(), &creds)
        .await
        .unwrap();
    let mut types: Vec<&str> = notation.iter().map(|s| s.media_type.as_str()).collect();
    types.sort_unstable();
    assert_eq!(types, vec!["application/cose", "application/jose+json"]);
    assert!(
        notation
            .iter()
            .all(|s| s.artifact_type == "application/vnd.cncf.notary.signature")
    );
    let e = cosign::evaluate(
        &policy(&[&pem(k, "cosign")], 1, &[]),
        &subject,
        &cosign_sigs,
    );
    assert!(e.passed, "{e:?}");
}

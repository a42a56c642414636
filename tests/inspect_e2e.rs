//! `trustgate inspect` without `--notary-url` against the real test stack: an image pushed to
//! the stack's `docker-registry`, signed there with the real `notation` (JWS) and `cosign` 3
//! (Sigstore bundle and legacy `.sig`), is listed with each signature's format, manifest digest,
//! signer (Notation certificate subject and thumbprint, cosign key ID) and signed digest, in
//! JSON and text, under the "attached, not verified" note. An unsigned image lists none; an
//! image that does not exist fails; with `--notary-url` the Notary v1 part comes first and the
//! signatures part still follows. Skips visibly without the stack or the signing tools.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use base64::Engine as _;
use common::sigtools::{SigTools, Target, sigtools};
use serde_json::Value;
use sha2::Digest as _;

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// `trustgate inspect --plain-http ARGS`, with an empty HOME (no docker config) and no Notary
/// login from the environment.
fn inspect(args: &[&str]) -> Run {
    let home = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_trustgate"))
        .arg("inspect")
        .arg("--plain-http")
        .args(args)
        .env("HOME", home.path())
        .env_remove("NOTARY_AUTH")
        .env_remove("DOCKER_CONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("run trustgate");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn pem_der(pem: &str) -> Vec<u8> {
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("PEM body")
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(b))
}

fn plain() -> Target {
    Target {
        plain_http: true,
        ..Target::default()
    }
}

fn setup() -> Option<(common::Stack, SigTools, tempfile::TempDir)> {
    let stack = common::stack()?;
    let tools = sigtools()?;
    let keys = tempfile::tempdir().expect("tempdir");
    tools.keys(keys.path());
    Some((stack, tools, keys))
}

fn by_envelope<'a>(sigs: &'a [Value], envelope: &str) -> &'a Value {
    sigs.iter()
        .find(|s| s["envelope"] == envelope)
        .unwrap_or_else(|| panic!("no {envelope} signature in {sigs:#?}"))
}

#[test]
fn inspect_lists_real_notation_and_cosign_signatures() {
    let Some((st, tools, keys)) = setup() else {
        return;
    };
    let k: &Path = keys.path();
    let repo = common::unique_repo("inspect/signed");
    let layout = common::push_http(&st, "inspect-signed", &repo, "v1");
    let digest = layout.manifest_digest.clone();
    let pinned = format!("{}/{repo}@{digest}", st.registry_http);
    tools.notation(k, &pinned, "jws", &plain());
    tools.cosign_bundle(k, &pinned, None, &plain());
    tools.cosign_legacy(k, &pinned, None, &plain());
    let key_id = format!(
        "sha256:{}",
        sha256_hex(&pem_der(
            &std::fs::read_to_string(k.join("cosign.pub")).expect("cosign.pub")
        ))
    );
    let cert = std::fs::read_to_string(k.join("notation/notation/localkeys/trustgate-test.crt"))
        .expect("notation test certificate");
    let thumbprint = sha256_hex(&pem_der(&cert));
    let tag = format!("{}/{repo}:v1", st.registry_http);

    let run = inspect(&["--output", "json", &tag]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let doc: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(doc["signatureSubject"]["digest"], digest.as_str());
    assert_eq!(doc["signatureSubject"]["note"], "attached, not verified");
    assert_eq!(doc["signatureErrors"], serde_json::json!([]));
    assert!(
        doc.get("gun").is_none(),
        "no Notary part without --notary-url"
    );
    let sigs = doc["signatures"].as_array().expect("signatures").clone();
    assert_eq!(sigs.len(), 3, "{sigs:#?}");
    for s in &sigs {
        let m = s["manifestDigest"].as_str().expect("manifest digest");
        assert!(m.starts_with("sha256:") && m != digest, "{s}");
    }

    let n = by_envelope(&sigs, "JWS");
    assert_eq!(n["format"], "Notation");
    let subject = n["subject"].as_str().expect("subject");
    assert!(subject.starts_with("CN=trustgate-test,"), "{subject}");
    assert!(subject.contains("O=Notary"), "{subject}");
    assert_eq!(n["issuer"], subject, "a self-signed test certificate");
    assert_eq!(n["certificateThumbprints"][0], thumbprint.as_str());
    assert_eq!(n["keyType"], "RSA 2048");
    assert_eq!(n["signedDigest"], digest.as_str());
    assert!(n["signingTime"].as_str().is_some(), "{n}");

    let b = by_envelope(&sigs, "bundle");
    assert_eq!(b["format"], "Cosign");
    assert_eq!(b["keyID"], key_id.as_str());
    assert_eq!(b["signedDigests"], serde_json::json!([digest]));
    assert_eq!(b["dockerReference"], Value::Null);

    let l = by_envelope(&sigs, "legacy .sig");
    assert_eq!(l["format"], "Cosign");
    assert_eq!(l["keyID"], Value::Null);
    assert_eq!(l["signedDigests"], serde_json::json!([digest]));
    let reference = l["dockerReference"].as_str().expect("docker-reference");
    assert!(reference.contains(&repo), "{reference}");

    let run = inspect(&[&tag]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let text = run.stdout;
    assert!(
        text.contains(&format!("@{digest} (attached, not verified):")),
        "{text}"
    );
    for want in [
        "  Notation JWS  manifest sha256:".to_string(),
        "  Cosign bundle  manifest sha256:".to_string(),
        "  Cosign legacy .sig  manifest sha256:".to_string(),
        format!("    subject    {subject}"),
        format!("    key ID     {key_id}"),
        format!("    signs      {digest} ("),
    ] {
        assert!(text.contains(&want), "missing {want:?} in\n{text}");
    }
    assert!(!text.contains("NOT this image's digest"), "{text}");
}

#[test]
fn inspect_of_an_unsigned_image_and_of_a_missing_one() {
    let Some(st) = common::stack() else { return };
    let repo = common::unique_repo("inspect/unsigned");
    let layout = common::push_http(&st, "inspect-unsigned", &repo, "v1");
    let run = inspect(&[
        "--output",
        "json",
        &format!("{}/{repo}:v1", st.registry_http),
    ]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let doc: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(
        doc["signatureSubject"]["digest"],
        layout.manifest_digest.as_str()
    );
    assert_eq!(doc["signatures"], serde_json::json!([]));

    let run = inspect(&[&format!("{}/{repo}:missing", st.registry_http)]);
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("not listed"), "{}", run.stdout);
    assert!(run.stdout.contains("not found"), "{}", run.stdout);
}

#[test]
fn with_notary_url_both_parts_are_shown() {
    let Some(st) = common::stack() else { return };
    let repo = common::scenario::signed_repo(&st, "inspect/notary", false);
    let image = format!("{}:v1", repo.gun);
    let ca = st.ca.display().to_string();
    let notary = ["--notary-url", st.notary_url.as_str(), "--ca", ca.as_str()];

    let mut args = notary.to_vec();
    args.extend(["--output", "json", &image]);
    let run = inspect(&args);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let doc: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(doc["root"]["keys"][0]["keyID"], repo.root_id.as_str());
    assert_eq!(
        doc["resolved"]["digest"],
        repo.signed.manifest_digest.as_str()
    );
    assert_eq!(
        doc["signatureSubject"]["digest"],
        repo.signed.manifest_digest.as_str()
    );
    assert_eq!(doc["signatures"], serde_json::json!([]));

    let mut args = notary.to_vec();
    args.push(&image);
    let run = inspect(&args);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let text = &run.stdout;
    let notary_at = text.find("root keys (pin one in trustRoots").expect(text);
    let listed_at = text
        .find("(attached, not verified):\n  (none)")
        .expect(text);
    assert!(notary_at < listed_at, "{text}");
}

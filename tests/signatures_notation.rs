//! trustgate's Notation verifier against envelopes written by the real `notation` (JWS and
//! COSE), produced at test time into an OCI image layout (`notation sign --oci-layout`, an
//! experimental feature of notation 1.3 that needs no registry), and checked by `notation verify`
//! too, so both verifiers agree on the same bytes.
//!
//! The program comes from `TRUSTGATE_NOTATION` (`eval "$(bash e2e/sigtools.sh env)"`) or the
//! cache `e2e/sigtools.sh fetch` fills; without it the test prints a SKIP line and passes, unless
//! `TRUSTGATE_REQUIRE_SIGTOOLS=1`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use time::{Duration, OffsetDateTime};
use trustgate::signatures::notation::{
    self, ARTIFACT_TYPE, EnvelopeFormat, NotationError, NotationPolicy,
};
use trustgate::signatures::{Attached, Revoked, Subject};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// The `notation` program, or None after printing why the test is skipped.
fn notation_tool() -> Option<PathBuf> {
    let path = std::env::var_os("TRUSTGATE_NOTATION")
        .map(PathBuf::from)
        .or_else(|| {
            let cache = std::env::var_os("TRUSTGATE_SIGTOOLS_CACHE")
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("HOME")
                        .map(|h| Path::new(&h).join(".cache/trustgate-sigtools"))
                })?;
            Some(cache.join("bin/notation"))
        });
    match path {
        Some(p) if p.is_file() => Some(p),
        other => {
            let why = format!("the notation program is not available ({other:?})");
            if std::env::var("TRUSTGATE_REQUIRE_SIGTOOLS").is_ok_and(|v| v == "1") {
                panic!("{why} but TRUSTGATE_REQUIRE_SIGTOOLS=1; run `bash e2e/sigtools.sh fetch`");
            }
            eprintln!(
                "SKIP signatures_notation: {why}; run `bash e2e/sigtools.sh fetch` (TRUSTGATE_REQUIRE_SIGTOOLS=1 makes this fatal)"
            );
            None
        }
    }
}

/// `notation` with its configuration in `dir`, the OCI layout feature enabled.
struct Notation {
    bin: PathBuf,
    xdg: PathBuf,
}

impl Notation {
    fn run(&self, args: &[&str]) -> String {
        let out = Command::new(&self.bin)
            .args(args)
            .env("XDG_CONFIG_HOME", &self.xdg)
            .env("NOTATION_EXPERIMENTAL", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "notation {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn cert_pem(&self, name: &str) -> String {
        std::fs::read_to_string(self.xdg.join(format!("notation/localkeys/{name}.crt"))).unwrap()
    }
}

fn put_blob(layout: &Path, bytes: &[u8]) -> String {
    let hex = hex::encode(Sha256::digest(bytes));
    std::fs::write(layout.join("blobs/sha256").join(&hex), bytes).unwrap();
    format!("sha256:{hex}")
}

fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    std::fs::read(
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    )
    .unwrap()
}

/// An OCI layout holding one small image; its manifest as a [`Subject`].
fn image_layout(layout: &Path) -> Subject {
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    let config = put_blob(layout, b"{}");
    let nonce = OffsetDateTime::now_utc().unix_timestamp_nanos().to_string();
    let layer = put_blob(layout, nonce.as_bytes());
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": nonce.len()}],
    }))
    .unwrap();
    let digest = put_blob(layout, &manifest);
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": digest, "size": manifest.len()}]}))
        .unwrap(),
    )
    .unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    Subject {
        repository: "localhost/notation-layout".into(),
        digest,
        media_type: OCI_MANIFEST.into(),
        size: manifest.len() as u64,
    }
}

/// The signature artifacts whose manifest's `subject` is `subject`, as the registry layer hands
/// them over, with each manifest's thumbprint annotation.
fn attached(layout: &Path, subject: &Subject) -> Vec<(Attached, Vec<String>)> {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let mut out = Vec::new();
    for entry in index["manifests"].as_array().unwrap() {
        let digest = entry["digest"].as_str().unwrap();
        let m: Value = serde_json::from_slice(&blob(layout, digest)).unwrap();
        if m["subject"]["digest"].as_str() != Some(subject.digest.as_str()) {
            continue;
        }
        let artifact_type = m["artifactType"]
            .as_str()
            .or(m["config"]["mediaType"].as_str())
            .unwrap()
            .to_string();
        let layer = &m["layers"][0];
        let thumbprints: Vec<String> = serde_json::from_str(
            m["annotations"]["io.cncf.notary.x509chain.thumbprint#S256"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        out.push((
            Attached {
                manifest_digest: digest.to_string(),
                artifact_type,
                media_type: layer["mediaType"].as_str().unwrap().to_string(),
                annotations: BTreeMap::new(),
                blob: blob(layout, layer["digest"].as_str().unwrap()),
            },
            thumbprints,
        ));
    }
    out
}

fn policy(store: &[String], ids: &[&str], revoked: Revoked) -> NotationPolicy {
    NotationPolicy::new(
        store,
        &ids.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        revoked,
    )
    .unwrap()
}

#[test]
fn envelopes_written_by_the_real_notation_verify_and_tampering_is_refused() {
    let Some(bin) = notation_tool() else { return };
    let dir = tempfile::tempdir().unwrap();
    let n = Notation {
        bin,
        xdg: dir.path().join("xdg"),
    };
    let layout = dir.path().join("layout");
    let subject = image_layout(&layout);
    let reference = format!("{}@{}", layout.display(), subject.digest);

    n.run(&["cert", "generate-test", "--default", "release"]);
    n.run(&["cert", "generate-test", "stranger"]);
    for format in ["jws", "cose"] {
        n.run(&[
            "sign",
            "--signature-format",
            format,
            "--oci-layout",
            &reference,
        ]);
    }
    // The real verifier accepts them with a strict policy over the `release` store.
    let trust_policy = dir.path().join("trustpolicy.json");
    std::fs::write(
        &trust_policy,
        serde_json::to_vec(&json!({"version": "1.0", "trustPolicies": [{
            "name": "release", "registryScopes": ["*"],
            "signatureVerification": {"level": "strict"},
            "trustStores": ["ca:release"], "trustedIdentities": ["*"]}]}))
        .unwrap(),
    )
    .unwrap();
    n.run(&[
        "policy",
        "import",
        "--force",
        trust_policy.to_str().unwrap(),
    ]);
    n.run(&[
        "verify",
        "--oci-layout",
        "--scope",
        "local/layout",
        &reference,
    ]);

    let sigs = attached(&layout, &subject);
    assert_eq!(sigs.len(), 2, "one JWS and one COSE signature");
    let now = OffsetDateTime::now_utc();
    let release = n.cert_pem("release");
    let trusted = policy(
        std::slice::from_ref(&release),
        &["x509.subject: C=US, ST=WA, L=Seattle, O=Notary, CN=release"],
        Revoked::default(),
    );
    let mut formats = Vec::new();
    for (sig, thumbprints) in &sigs {
        assert_eq!(sig.artifact_type, ARTIFACT_TYPE);
        let signer = notation::verify(&trusted, &subject, sig, now)
            .unwrap_or_else(|e| panic!("{}: {e}", sig.media_type));
        assert_eq!(signer.subject, "CN=release,O=Notary,L=Seattle,ST=WA,C=US");
        let d = notation::describe(sig).unwrap();
        assert_eq!(
            &d.thumbprints, thumbprints,
            "thumbprints as notation annotates them"
        );
        assert_eq!(d.target_digest, subject.digest);
        assert_eq!(d.algorithm, "PS256", "notation's test key is RSA 2048");
        formats.push(d.format);

        // Another digest.
        let mut other = subject.clone();
        other.digest = format!("sha256:{}", "0".repeat(64));
        let e = notation::verify(&trusted, &other, sig, now).unwrap_err();
        assert!(matches!(e, NotationError::OtherArtifact { .. }), "{e}");
        // A certificate outside the trust store.
        let p = policy(&[n.cert_pem("stranger")], &["*"], Revoked::default());
        let e = notation::verify(&p, &subject, sig, now).unwrap_err();
        assert!(matches!(e, NotationError::Untrusted { .. }), "{e}");
        // An identity not trusted.
        let p = policy(
            std::slice::from_ref(&release),
            &["x509.subject: C=US, ST=WA, O=Notary, CN=stranger"],
            Revoked::default(),
        );
        let e = notation::verify(&p, &subject, sig, now).unwrap_err();
        assert!(matches!(e, NotationError::IdentityNotTrusted { .. }), "{e}");
        // The signing key revoked.
        let spki = x509_spki(&release);
        let p = policy(
            std::slice::from_ref(&release),
            &["*"],
            Revoked::from_spki(vec![spki]),
        );
        let e = notation::verify(&p, &subject, sig, now).unwrap_err();
        assert!(matches!(e, NotationError::Revoked { .. }), "{e}");
        // The test certificate is valid for a day: two days on it has expired.
        let e = notation::verify(&trusted, &subject, sig, now + Duration::days(2)).unwrap_err();
        assert!(
            matches!(e, NotationError::CertificateNotValidNow { .. }),
            "{e}"
        );
        // One flipped byte of the envelope.
        let mut bad = sig.clone();
        let at = bad.blob.len() - 40;
        bad.blob[at] ^= 0x01;
        assert!(notation::verify(&trusted, &subject, &bad, now).is_err());
    }
    formats.sort_by_key(|f| *f == EnvelopeFormat::Cose);
    assert_eq!(formats, [EnvelopeFormat::Jws, EnvelopeFormat::Cose]);

    let all: Vec<Attached> = sigs.into_iter().map(|(s, _)| s).collect();
    let ev = notation::evaluate(&trusted, &subject, &all, now);
    assert!(ev.passed, "{}", ev.reason);
    assert_eq!(ev.signers, ["CN=release,O=Notary,L=Seattle,ST=WA,C=US"]);
}

/// DER SubjectPublicKeyInfo of a PEM certificate.
fn x509_spki(pem: &str) -> Vec<u8> {
    use x509_cert::der::{DecodePem as _, Encode as _};
    x509_cert::Certificate::from_pem(pem.as_bytes())
        .unwrap()
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .unwrap()
}

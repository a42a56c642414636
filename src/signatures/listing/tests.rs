//! The listing's text and JSON: one block per signature, the header's "not verified" note,
//! real cosign artifacts read through `describe`, unreadable artifacts and fetch errors.

use std::collections::BTreeMap;

use time::macros::datetime;

use super::*;
use crate::signatures::notation::EnvelopeFormat;

const DIGEST: &str = "sha256:b116bc1d4c704135f66efa66cdea883115e78a3460be7dd2beb245156e79535a";
const KEY_ID: &str = "sha256:939aa801c8f798507a1ad9c66ea78a859d0217b333fed428ac2f65d3e1e78fa5";
const REPO: &str = "127.0.0.1:36697/demo/app";

fn subject() -> Subject {
    Subject {
        repository: REPO.into(),
        digest: DIGEST.into(),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        size: 528,
    }
}

fn attached(media_type: &str, blob: &[u8], annotations: &[(&str, &str)]) -> Attached {
    Attached {
        manifest_digest: format!("sha256:{}", "ab".repeat(32)),
        artifact_type: media_type.into(),
        media_type: media_type.into(),
        annotations: annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        blob: blob.to_vec(),
    }
}

fn notation_description(target: &str) -> notation::Description {
    notation::Description {
        format: EnvelopeFormat::Cose,
        algorithm: "ES256".into(),
        signing_scheme: "notary.x509".into(),
        signing_time: Some(datetime!(2026-12-01 10:00 UTC)),
        expiry: None,
        target_media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        target_digest: target.into(),
        target_size: 528,
        subject: "CN=release,O=Shop,C=US".into(),
        issuer: "CN=Shop CA,O=Shop,C=US".into(),
        key_type: "EC P-256".into(),
        thumbprints: vec!["00".repeat(32)],
    }
}

fn listing() -> Listing {
    let bundle = attached(
        cosign::BUNDLE_MEDIA_TYPE,
        include_bytes!("../cosign/testdata/bundle.json"),
        &[],
    );
    let legacy = attached(
        cosign::SIMPLE_SIGNING_MEDIA_TYPE,
        include_bytes!("../cosign/testdata/legacy.payload"),
        &[(cosign::SIGNATURE_ANNOTATION, "c2ln")],
    );
    let mut l = Listing::new(subject(), Ok(vec![]), Ok(vec![bundle, legacy]));
    l.signatures.insert(
        0,
        Listed {
            manifest_digest: format!("sha256:{}", "cd".repeat(32)),
            claims: Claims::Notation(Ok(notation_description(DIGEST))),
        },
    );
    l
}

#[test]
fn text_has_one_block_per_signature_under_a_not_verified_header() {
    let text = listing().text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        format!("signatures on {REPO}@{DIGEST} (attached, not verified):")
    );
    let headers: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("  ") && !l.starts_with("    "))
        .copied()
        .collect();
    assert_eq!(
        headers,
        vec![
            format!("  Notation COSE  manifest sha256:{}", "cd".repeat(32)),
            format!("  Cosign bundle  manifest sha256:{}", "ab".repeat(32)),
            format!("  Cosign legacy .sig  manifest sha256:{}", "ab".repeat(32)),
        ]
    );
    for want in [
        "    subject    CN=release,O=Shop,C=US",
        "    issuer     CN=Shop CA,O=Shop,C=US",
        "    key        EC P-256 (ES256)",
        "    signed at  2026-12-01T10:00:00Z",
        "    expires    never",
        &format!("    key ID     {KEY_ID}"),
        "    key ID     unknown (a legacy signature names no key)",
        "    reference  (none: a bundle names no repository)",
        &format!("    reference  {REPO}"),
    ] {
        assert!(lines.contains(&want), "missing {want:?} in\n{text}");
    }
    // Every signature here signs the subject: no warning.
    assert!(!text.contains("NOT this image's digest"), "{text}");
    assert_eq!(text.matches(&format!("signs      {DIGEST}")).count(), 3);
}

#[test]
fn a_signature_of_another_digest_is_marked() {
    let other = format!("sha256:{}", "99".repeat(32));
    let mut l = Listing::new(subject(), Ok(vec![]), Ok(vec![]));
    l.signatures.push(Listed {
        manifest_digest: DIGEST.into(),
        claims: Claims::Notation(Ok(notation_description(&other))),
    });
    let text = l.text();
    assert!(
        text.contains(&format!("signs      {other} (NOT this image's digest)")),
        "{text}"
    );
}

#[test]
fn json_lists_the_same_fields() {
    let m = listing().json();
    assert_eq!(m["signatureSubject"]["digest"], DIGEST);
    assert_eq!(m["signatureSubject"]["note"], NOT_VERIFIED);
    let sigs = m["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 3);
    assert_eq!(sigs[0]["format"], "Notation");
    assert_eq!(sigs[0]["envelope"], "COSE");
    assert_eq!(sigs[0]["subject"], "CN=release,O=Shop,C=US");
    assert_eq!(sigs[0]["keyType"], "EC P-256");
    assert_eq!(sigs[0]["signedDigest"], DIGEST);
    assert_eq!(sigs[0]["signingTime"], "2026-12-01T10:00:00Z");
    assert_eq!(sigs[0]["expiry"], Value::Null);
    assert_eq!(sigs[1]["format"], "Cosign");
    assert_eq!(sigs[1]["envelope"], "bundle");
    assert_eq!(sigs[1]["keyID"], KEY_ID);
    assert_eq!(sigs[1]["signedDigests"], json!([DIGEST]));
    assert_eq!(sigs[1]["dockerReference"], Value::Null);
    assert_eq!(sigs[2]["envelope"], "legacy .sig");
    assert_eq!(sigs[2]["keyID"], Value::Null);
    assert_eq!(sigs[2]["dockerReference"], REPO);
    assert_eq!(m["signatureErrors"], json!([]));
}

#[test]
fn unreadable_artifacts_and_fetch_errors_are_reported_not_dropped() {
    let mut junk = attached(notation::MEDIA_TYPE_JWS, b"[]", &[]);
    junk.artifact_type = notation::ARTIFACT_TYPE.into();
    let l = Listing::new(
        subject(),
        Ok(vec![junk]),
        Err("referrers list has 300 entries, more than the limit of 256".into()),
    );
    let text = l.text();
    assert!(text.contains("  Notation unreadable  manifest"), "{text}");
    assert!(
        text.contains("    error      malformed JWS envelope"),
        "{text}"
    );
    assert!(
        text.contains("  Cosign signatures could not be read: referrers list has 300"),
        "{text}"
    );
    let m = l.json();
    assert!(m["signatures"][0]["error"].as_str().is_some());
    assert_eq!(m["signatureErrors"][0]["format"], "Cosign");
}

#[test]
fn no_signatures_says_none() {
    let text = Listing::new(subject(), Ok(vec![]), Ok(vec![])).text();
    assert_eq!(text.lines().nth(1), Some("  (none)"));
}

//! Artifact fetching against scripted registries: the referrers API and the tag schema, the
//! entry-type quirk, and hostile answers (oversize lists and blobs, too many referrers, digest
//! mismatches, a manifest redirect to another host), each limit one past; blob redirects to a
//! storage host in [`redirects`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Method as HttpMethod, Response, StatusCode, Uri};
use serde_json::json;

use super::*;
use crate::signatures::cosign::SIMPLE_SIGNING_MEDIA_TYPE;

const BUNDLE_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// A scripted answer: status, headers, body.
type Answer = (u16, Vec<(String, String)>, Vec<u8>);

/// A request as a scripted registry heard it: target (path and query), `Authorization`.
type Heard = (String, Option<String>);

/// A scripted registry: `METHOD path` (or `path` for any method) → status, headers, body.
#[derive(Clone, Default)]
struct Script {
    routes: Arc<Mutex<HashMap<String, Answer>>>,
    seen: Arc<Mutex<Vec<String>>>,
    /// Each request's target (path and query) and `Authorization`.
    heard: Arc<Mutex<Vec<Heard>>>,
}

impl Script {
    fn on(&self, path: &str, status: u16, headers: &[(&str, &str)], body: Vec<u8>) {
        let headers = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.routes
            .lock()
            .unwrap()
            .insert(path.to_string(), (status, headers, body));
    }

    /// Serves `body` at `/v2/<repo>/<tail>` with its digest header; returns the digest.
    fn put(&self, repo: &str, tail: &str, media_type: &str, body: &[u8]) -> String {
        let digest = sha256(body);
        self.on(
            &format!("/v2/{repo}/{tail}"),
            200,
            &[
                ("content-type", media_type),
                ("docker-content-digest", &digest),
            ],
            body.to_vec(),
        );
        digest
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    fn heard(&self) -> Vec<Heard> {
        self.heard.lock().unwrap().clone()
    }

    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let me = self.clone();
        let app = axum::Router::new().fallback(
            move |method: HttpMethod, uri: Uri, headers: axum::http::HeaderMap| {
                let me = me.clone();
                async move {
                    let path = uri.path().to_string();
                    me.seen.lock().unwrap().push(format!("{method} {path}"));
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    me.heard.lock().unwrap().push((uri.to_string(), auth));
                    let routes = me.routes.lock().unwrap();
                    let hit = routes
                        .get(&format!("{method} {path}"))
                        .or_else(|| routes.get(&path))
                        .cloned();
                    let (status, headers, body) = hit.unwrap_or((
                        404,
                        vec![],
                        br#"{"errors":[{"code":"MANIFEST_UNKNOWN"}]}"#.to_vec(),
                    ));
                    let mut r = Response::builder().status(StatusCode::from_u16(status).unwrap());
                    for (k, v) in headers {
                        r = r.header(k, v);
                    }
                    r.body(Body::from(body)).unwrap()
                }
            },
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        addr
    }
}

struct Fixture {
    script: Script,
    image: ImageRef,
    subject: Subject,
}

const REPO: &str = "shop/app";

async fn fixture() -> Fixture {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let script = Script::default();
    let addr = script.start().await;
    let manifest =
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#;
    let digest = script.put(
        REPO,
        "manifests/v1",
        crate::image::registry::MANIFEST_MEDIA_TYPES[1],
        manifest,
    );
    script.put(
        REPO,
        &format!("manifests/{digest}"),
        crate::image::registry::MANIFEST_MEDIA_TYPES[1],
        manifest,
    );
    let image = ImageRef::parse(&format!("{addr}/{REPO}:v1")).unwrap();
    let subject = Subject {
        repository: image.repository(),
        digest,
        media_type: crate::image::registry::MANIFEST_MEDIA_TYPES[1].into(),
        size: manifest.len() as u64,
    };
    Fixture {
        script,
        image,
        subject,
    }
}

fn opts() -> RegistryOptions {
    RegistryOptions {
        plain_http: true,
        ..RegistryOptions::default()
    }
}

impl Fixture {
    /// A cosign bundle artifact for the subject: blob, manifest; returns the index entry.
    fn bundle(&self, blob: &[u8], subject_digest: &str) -> serde_json::Value {
        let blob_digest = self.script.put(
            REPO,
            &format!("blobs/{}", sha256(blob)),
            "application/octet-stream",
            blob,
        );
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": BUNDLE_TYPE,
            "config": {"mediaType": EMPTY_ARTIFACT_TYPE, "digest": sha256(b"{}"), "size": 2},
            "layers": [{"mediaType": BUNDLE_TYPE, "digest": blob_digest, "size": blob.len()}],
            "subject": {"mediaType": self.subject.media_type, "digest": subject_digest, "size": 1},
        }))
        .unwrap();
        let d = self.script.put(
            REPO,
            &format!("manifests/{}", sha256(&manifest)),
            OCI_MANIFEST_TYPE,
            &manifest,
        );
        // cosign's quirk: the entry says "empty", the manifest says "bundle".
        json!({"mediaType": OCI_MANIFEST_TYPE, "digest": d, "size": manifest.len(), "artifactType": EMPTY_ARTIFACT_TYPE})
    }

    fn index(entries: &[serde_json::Value]) -> Vec<u8> {
        serde_json::to_vec(
            &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}),
        )
        .unwrap()
    }

    fn referrers_api(&self, entries: &[serde_json::Value]) {
        self.script.put(
            REPO,
            &format!("referrers/{}", self.subject.digest),
            OCI_INDEX,
            &Self::index(entries),
        );
    }

    fn referrers_tag(&self, entries: &[serde_json::Value]) {
        let tag = self.subject.digest.replace(':', "-");
        self.script.put(
            REPO,
            &format!("manifests/{tag}"),
            OCI_INDEX,
            &Self::index(entries),
        );
    }

    async fn cosign(&self) -> Result<Vec<Attached>, ArtifactError> {
        Resolver::default()
            .signatures(
                &self.image,
                &self.subject,
                SignatureFormat::Cosign,
                &opts(),
                &Credentials::Anonymous,
            )
            .await
    }
}

const OCI_MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

#[tokio::test]
async fn describe_uses_head_and_falls_back_to_get() {
    let f = fixture().await;
    let got = Resolver::default()
        .describe(&f.image, &opts(), &Credentials::Anonymous)
        .await
        .unwrap();
    assert_eq!(got, f.subject);
    // A HEAD without a digest header: GET and hash.
    f.script
        .on(&format!("HEAD /v2/{REPO}/manifests/v1"), 200, &[], vec![]);
    let got = Resolver::default()
        .describe(&f.image, &opts(), &Credentials::Anonymous)
        .await
        .unwrap();
    assert_eq!(got, f.subject);
    // A GET whose body is not the digest it declares.
    f.script.on(
        &format!("/v2/{REPO}/manifests/v1"),
        200,
        &[(
            "docker-content-digest",
            &format!("sha256:{}", "0".repeat(64)),
        )],
        b"{}".to_vec(),
    );
    let err = Resolver::default()
        .describe(&f.image, &opts(), &Credentials::Anonymous)
        .await
        .unwrap_err();
    assert!(matches!(err, ArtifactError::DigestMismatch { .. }), "{err}");
}

#[tokio::test]
async fn bundles_from_the_referrers_api_by_their_own_type() {
    let f = fixture().await;
    let entry = f.bundle(b"{\"bundle\":1}", &f.subject.digest.clone());
    let notation_only = json!({"mediaType": OCI_MANIFEST_TYPE, "digest": sha256(b"x"), "size": 1, "artifactType": NOTATION_ARTIFACT_TYPE});
    f.referrers_api(&[entry, notation_only]);
    let got = f.cosign().await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].artifact_type, BUNDLE_TYPE);
    assert_eq!(got[0].media_type, BUNDLE_TYPE);
    assert_eq!(got[0].blob, b"{\"bundle\":1}");
    let seen = f.script.seen();
    assert!(
        !seen.iter().any(|s| s.contains(&sha256(b"x"))),
        "the Notation entry is not fetched for cosign: {seen:?}"
    );
    assert!(
        !seen.iter().any(|s| s.contains("/manifests/sha256-"))
            || seen.iter().any(|s| s.ends_with(".sig"))
    );
}

#[tokio::test]
async fn tag_schema_when_the_registry_has_no_referrers_api() {
    let f = fixture().await;
    assert!(
        f.cosign().await.unwrap().is_empty(),
        "no API, no tag: no referrers"
    );
    let entry = f.bundle(b"{}", &f.subject.digest.clone());
    f.referrers_tag(&[entry]);
    assert_eq!(f.cosign().await.unwrap().len(), 1);
    // An API answer that is not an index also falls back.
    f.script.put(
        REPO,
        &format!("referrers/{}", f.subject.digest),
        "text/html",
        b"<html>",
    );
    assert_eq!(f.cosign().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_referrer_of_another_digest_is_skipped() {
    let f = fixture().await;
    let entry = f.bundle(b"{}", &format!("sha256:{}", "1".repeat(64)));
    f.referrers_api(&[entry]);
    assert!(f.cosign().await.unwrap().is_empty());
}

#[tokio::test]
async fn referrers_list_size_and_count_limits() {
    let f = fixture().await;
    let entry = json!({"mediaType": OCI_MANIFEST_TYPE, "digest": sha256(b"n"), "size": 1, "artifactType": NOTATION_ARTIFACT_TYPE});
    let at: Vec<_> = (0..LIMITS.referrers_per_subject)
        .map(|_| entry.clone())
        .collect();
    f.referrers_api(&at);
    assert!(f.cosign().await.unwrap().is_empty(), "at the limit: fine");
    let mut past = at.clone();
    past.push(entry);
    f.referrers_api(&past);
    let err = f.cosign().await.unwrap_err();
    assert!(matches!(err, ArtifactError::TooMany { .. }), "{err}");
    let limit = usize::try_from(LIMITS.referrers_index_bytes).unwrap();
    let mut big = Fixture::index(&[]);
    big.resize(limit + 1, b' ');
    f.script.put(
        REPO,
        &format!("referrers/{}", f.subject.digest),
        OCI_INDEX,
        &big,
    );
    let err = f.cosign().await.unwrap_err();
    assert!(matches!(err, ArtifactError::TooLarge { .. }), "{err}");
    assert!(err.to_string().contains("referrers list"), "{err}");
}

#[tokio::test]
async fn signature_candidates_past_the_per_format_limit_are_refused() {
    let f = fixture().await;
    let digest = f.subject.digest.clone();
    let entries: Vec<_> = (0..=LIMITS.signatures_per_format)
        .map(|i| f.bundle(format!("{{\"n\":{i}}}").as_bytes(), &digest))
        .collect();
    f.referrers_api(&entries[..LIMITS.signatures_per_format]);
    assert_eq!(
        f.cosign().await.unwrap().len(),
        LIMITS.signatures_per_format
    );
    f.referrers_api(&entries);
    let err = f.cosign().await.unwrap_err();
    assert!(matches!(err, ArtifactError::TooMany { .. }), "{err}");
}

#[tokio::test]
async fn envelope_one_past_its_limit_and_wrong_digests_are_refused() {
    let f = fixture().await;
    let limit = usize::try_from(LIMITS.signature_envelope_bytes).unwrap();
    let entry = f.bundle(&vec![b' '; limit + 1], &f.subject.digest.clone());
    f.referrers_api(&[entry]);
    let err = f.cosign().await.unwrap_err();
    assert!(matches!(err, ArtifactError::TooLarge { .. }), "{err}");
    // A blob whose bytes are not its digest.
    let f = fixture().await;
    let blob = b"{\"real\":1}";
    let entry = f.bundle(blob, &f.subject.digest.clone());
    f.script.on(
        &format!("/v2/{REPO}/blobs/{}", sha256(blob)),
        200,
        &[],
        b"{\"fake\":1}".to_vec(),
    );
    f.referrers_api(&[entry]);
    let err = f.cosign().await.unwrap_err();
    assert!(matches!(err, ArtifactError::DigestMismatch { .. }), "{err}");
    // A manifest whose bytes are not its digest.
    let f = fixture().await;
    let entry = f.bundle(blob, &f.subject.digest.clone());
    let d = entry["digest"].as_str().unwrap().to_string();
    f.script.on(
        &format!("/v2/{REPO}/manifests/{d}"),
        200,
        &[],
        b"{\"layers\":[]}".to_vec(),
    );
    f.referrers_api(&[entry]);
    let err = f.cosign().await.unwrap_err();
    assert!(matches!(err, ArtifactError::DigestMismatch { .. }), "{err}");
}

#[tokio::test]
async fn signature_manifest_one_past_its_limit_is_refused() {
    let f = fixture().await;
    let limit = usize::try_from(LIMITS.signature_manifest_bytes).unwrap();
    let mut manifest = b"{}".to_vec();
    manifest.resize(limit + 1, b' ');
    let d = f.script.put(
        REPO,
        &format!("manifests/{}", sha256(&manifest)),
        OCI_MANIFEST_TYPE,
        &manifest,
    );
    // The entry lies about its size: the cap holds while reading.
    f.referrers_api(&[json!({"mediaType": OCI_MANIFEST_TYPE, "digest": d, "size": 10})]);
    let err = f.cosign().await.unwrap_err();
    assert!(matches!(err, ArtifactError::TooLarge { .. }), "{err}");
}

#[tokio::test]
async fn manifest_redirects_to_another_host_are_not_followed() {
    let f = fixture().await;
    let elsewhere = Script::default();
    let other = elsewhere.start().await;
    let entry = f.bundle(b"{}", &f.subject.digest.clone());
    let d = entry["digest"].as_str().unwrap().to_string();
    f.script.on(
        &format!("/v2/{REPO}/manifests/{d}"),
        307,
        &[(
            "location",
            &format!("http://{other}/v2/{REPO}/manifests/{d}"),
        )],
        vec![],
    );
    f.referrers_api(&[entry]);
    let err = f.cosign().await.unwrap_err();
    assert!(matches!(err, ArtifactError::Registry(_)), "{err}");
    assert!(elsewhere.seen().is_empty(), "{:?}", elsewhere.seen());
}

#[tokio::test]
async fn legacy_sig_tag_gives_one_artifact_per_simple_signing_layer() {
    let f = fixture().await;
    let payloads = [&b"{\"p\":1}"[..], b"{\"p\":2}"];
    let mut layers = Vec::new();
    for p in payloads {
        let d = f.script.put(
            REPO,
            &format!("blobs/{}", sha256(p)),
            "application/octet-stream",
            p,
        );
        layers.push(
            json!({"mediaType": SIMPLE_SIGNING_MEDIA_TYPE, "digest": d, "size": p.len(),
            "annotations": {"dev.cosignproject.cosign/signature": "c2ln"}}),
        );
    }
    layers
        .push(json!({"mediaType": "application/octet-stream", "digest": sha256(b"z"), "size": 1}));
    let manifest = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST_TYPE,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(b"c"), "size": 1},
        "layers": layers})).unwrap();
    let tag = format!("{}.sig", f.subject.digest.replace(':', "-"));
    f.script.put(
        REPO,
        &format!("manifests/{tag}"),
        OCI_MANIFEST_TYPE,
        &manifest,
    );
    let got = f.cosign().await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].blob, payloads[0]);
    assert_eq!(
        got[1]
            .annotations
            .get("dev.cosignproject.cosign/signature")
            .map(String::as_str),
        Some("c2ln")
    );
    assert_eq!(got[0].manifest_digest, sha256(&manifest));
}

#[tokio::test]
async fn untyped_entries_of_another_format_do_not_count_against_a_format() {
    let f = fixture().await;
    let digest = f.subject.digest.clone();
    // More cosign bundles (listed as "empty") than one format may have: cosign refuses them,
    // Notation fetches their manifests, finds no Notation signature, and is not refused.
    let entries: Vec<_> = (0..=LIMITS.signatures_per_format)
        .map(|i| f.bundle(format!("{{\"n\":{i}}}").as_bytes(), &digest))
        .collect();
    f.referrers_api(&entries);
    let r = Resolver::default();
    let notation = r
        .signatures(
            &f.image,
            &f.subject,
            SignatureFormat::Notation,
            &opts(),
            &Credentials::Anonymous,
        )
        .await
        .unwrap();
    assert!(notation.is_empty());
    assert!(matches!(
        f.cosign().await,
        Err(ArtifactError::TooMany { .. })
    ));
    // The list read once serves both formats.
    let listed = r
        .referrers(&f.image, &digest, &opts(), &Credentials::Anonymous)
        .await
        .unwrap();
    assert_eq!(listed.len(), entries.len());
    let got = r
        .signatures_listed(
            &f.image,
            &f.subject,
            SignatureFormat::Cosign,
            &listed[..3],
            &opts(),
            &Credentials::Anonymous,
        )
        .await
        .unwrap();
    assert_eq!(got.len(), 3);
}

mod redirects;

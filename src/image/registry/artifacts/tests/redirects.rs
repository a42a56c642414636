//! Blob redirects to another origin (a storage host, a pre-signed URL): followed without the
//! registry's credential, the query kept, the digest checked, the size capped, the hops
//! bounded; manifests and referrers lists are never fetched from another host.

use super::*;

const TOKEN: &str = "Bearer registry-secret";

/// A cosign bundle whose blob the fixture's registry redirects to `location`; returns the
/// blob's path on the registry.
fn redirected_bundle(f: &Fixture, blob: &[u8], location: &str) -> String {
    let entry = f.bundle(blob, &f.subject.digest.clone());
    f.referrers_api(&[entry]);
    let path = format!("/v2/{REPO}/blobs/{}", sha256(blob));
    f.script.on(&path, 307, &[("location", location)], vec![]);
    path
}

async fn cosign_with_login(f: &Fixture) -> Result<Vec<Attached>, ArtifactError> {
    Resolver::default()
        .signatures(
            &f.image,
            &f.subject,
            SignatureFormat::Cosign,
            &opts(),
            &Credentials::Bearer("registry-secret".into()),
        )
        .await
}

/// The `Authorization` each request for `path` (with any query) carried.
fn auth_of(script: &Script, path: &str) -> Vec<Option<String>> {
    script
        .heard()
        .into_iter()
        .filter(|(target, _)| target.split('?').next() == Some(path))
        .map(|(_, auth)| auth)
        .collect()
}

#[tokio::test]
async fn a_blob_redirected_to_a_storage_host_is_fetched_without_the_registry_login() {
    let f = fixture().await;
    let storage = Script::default();
    let store = storage.start().await;
    let blob = br#"{"bundle":"redirected"}"#;
    let query = "X-Amz-Signature=ab%2Fcd%3D&X-Amz-Expires=300&response-content-type=x";
    let blob_path = redirected_bundle(&f, blob, &format!("http://{store}/objects/1?{query}"));
    storage.on("/objects/1", 200, &[], blob.to_vec());

    let got = cosign_with_login(&f).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].blob, blob);
    // The registry got its login; the storage host got nothing but the pre-signed URL,
    // query intact.
    assert_eq!(
        auth_of(&f.script, &blob_path),
        vec![Some(TOKEN.to_string())]
    );
    assert_eq!(
        storage.heard(),
        vec![(format!("/objects/1?{query}"), None)],
        "no Authorization to the storage host, query as given"
    );
}

#[tokio::test]
async fn a_same_origin_blob_redirect_keeps_the_login() {
    let f = fixture().await;
    let blob = br#"{"bundle":"moved"}"#;
    let blob_path = redirected_bundle(&f, blob, "/storage/moved");
    f.script.on("/storage/moved", 200, &[], blob.to_vec());
    let got = cosign_with_login(&f).await.unwrap();
    assert_eq!(got[0].blob, blob);
    assert_eq!(
        auth_of(&f.script, &blob_path),
        vec![Some(TOKEN.to_string())]
    );
    assert_eq!(
        auth_of(&f.script, "/storage/moved"),
        vec![Some(TOKEN.to_string())]
    );
}

#[tokio::test]
async fn a_redirected_blob_with_another_digest_is_refused() {
    let f = fixture().await;
    let storage = Script::default();
    let store = storage.start().await;
    let blob = br#"{"bundle":"genuine"}"#;
    redirected_bundle(&f, blob, &format!("http://{store}/objects/1"));
    storage.on("/objects/1", 200, &[], br#"{"bundle":"forged!"}"#.to_vec());
    let err = cosign_with_login(&f).await.unwrap_err();
    assert!(
        matches!(&err, ArtifactError::DigestMismatch { expected, .. } if *expected == sha256(blob)),
        "{err}"
    );
}

#[tokio::test]
async fn a_redirected_blob_one_past_its_limit_is_refused() {
    let f = fixture().await;
    let storage = Script::default();
    let store = storage.start().await;
    redirected_bundle(&f, b"{}", &format!("http://{store}/objects/1"));
    let limit = usize::try_from(LIMITS.signature_envelope_bytes).unwrap();
    storage.on("/objects/1", 200, &[], vec![b' '; limit + 1]);
    let err = cosign_with_login(&f).await.unwrap_err();
    assert!(matches!(err, ArtifactError::TooLarge { .. }), "{err}");
}

#[tokio::test]
async fn a_blob_redirect_loop_is_refused_after_three_hops() {
    let f = fixture().await;
    let storage = Script::default();
    let store = storage.start().await;
    let blob = b"{}";
    let blob_path = redirected_bundle(&f, blob, &format!("http://{store}/bounce"));
    let registry = f.image.domain().to_string();
    storage.on(
        "/bounce",
        307,
        &[("location", &format!("http://{registry}{blob_path}"))],
        vec![],
    );
    let err = cosign_with_login(&f).await.unwrap_err();
    assert!(
        matches!(&err, ArtifactError::Registry(RegistryError::Other { detail, .. })
            if detail.contains("more than 3")),
        "{err}"
    );
    // registry → storage → registry → storage, then refused; the registry's login went only
    // with the first request, never with the ones arriving by redirect.
    assert_eq!(storage.heard().len(), 2, "{:?}", storage.heard());
    assert!(storage.heard().iter().all(|(_, auth)| auth.is_none()));
    assert_eq!(
        auth_of(&f.script, &blob_path),
        vec![Some(TOKEN.to_string()), None]
    );
}

#[tokio::test]
async fn a_storage_host_refusal_is_not_taken_for_the_registry_refusing_the_login() {
    let f = fixture().await;
    let storage = Script::default();
    let store = storage.start().await;
    redirected_bundle(&f, b"{}", &format!("http://{store}/expired?sig=1"));
    storage.on(
        "/expired",
        403,
        &[],
        b"<Error>AccessDenied</Error>".to_vec(),
    );
    let err = cosign_with_login(&f).await.unwrap_err();
    assert!(
        matches!(&err, ArtifactError::Registry(RegistryError::Other { detail, .. })
            if detail.contains("HTTP 403") && !detail.contains("sig=1")),
        "{err}"
    );
}

#[tokio::test]
async fn a_blob_redirect_to_another_scheme_is_refused() {
    let f = fixture().await;
    redirected_bundle(&f, b"{}", "file:///etc/passwd");
    let err = cosign_with_login(&f).await.unwrap_err();
    assert!(
        matches!(&err, ArtifactError::Registry(RegistryError::Other { detail, .. })
            if detail.contains("redirect refused")),
        "{err}"
    );
}

#[tokio::test]
async fn a_referrers_list_redirected_to_another_host_is_not_followed() {
    let f = fixture().await;
    let elsewhere = Script::default();
    let other = elsewhere.start().await;
    let entry = f.bundle(b"{}", &f.subject.digest.clone());
    let listed = Fixture::index(&[entry]);
    elsewhere.put(
        REPO,
        &format!("referrers/{}", f.subject.digest),
        OCI_INDEX,
        &listed,
    );
    f.script.on(
        &format!("/v2/{REPO}/referrers/{}", f.subject.digest),
        307,
        &[(
            "location",
            &format!("http://{other}/v2/{REPO}/referrers/{}", f.subject.digest),
        )],
        vec![],
    );
    let _ = cosign_with_login(&f).await;
    assert!(elsewhere.heard().is_empty(), "{:?}", elsewhere.heard());
}

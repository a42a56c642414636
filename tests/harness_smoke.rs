//! Smoke test of the e2e harness itself: the stack answers, OCI layouts build
//! deterministically, and pushes to every registry flavour serve the local digest.
//! Run with `bash e2e/stack.sh up && TRUSTGATE_REQUIRE_STACK=1 cargo test --test harness_smoke`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Push, oci_image, oci_index, registry_digest, skopeo_push, unique_repo};

#[test]
fn layouts_are_deterministic() {
    let a = oci_image("determinism", "v1");
    let b = oci_image("determinism", "v1");
    let c = oci_image("other seed", "v1");
    assert_eq!(a.manifest_digest, b.manifest_digest);
    assert_ne!(a.manifest_digest, c.manifest_digest);
    assert_eq!(a.manifest_digest, common::sha256_digest(&a.manifest));
    assert_eq!(a.manifest_size, a.manifest.len() as u64);
    let i = oci_index("determinism", "v1");
    let j = oci_index("determinism", "v1");
    assert_eq!(i.manifest_digest, j.manifest_digest);
    assert_eq!(i.media_type, common::OCI_INDEX);
    assert_eq!(i.platforms.len(), 2);
    assert_eq!(
        i.platforms[0].digest, a.manifest_digest,
        "amd64 child = the single image"
    );
    assert_ne!(i.platforms[0].digest, i.platforms[1].digest);
}

#[test]
fn push_image_and_index_to_plain_registry() {
    let Some(st) = common::stack() else { return };
    let repo = unique_repo("smoke/http");
    let img = oci_image(&repo, "v1");
    let pushed = skopeo_push(&img, &Push::plain(&st.registry_http, &repo, "v1"));
    assert_eq!(pushed, img.manifest_digest);
    let served = registry_digest(
        &format!("{}/{repo}:v1", st.registry_http),
        false,
        None,
        None,
    );
    assert_eq!(served, img.manifest_digest);

    let idx = oci_index(&repo, "multi");
    skopeo_push(&idx, &Push::plain(&st.registry_http, &repo, "multi"));
    let served = registry_digest(
        &format!("{}/{repo}:multi", st.registry_http),
        false,
        None,
        None,
    );
    assert_eq!(
        served, idx.manifest_digest,
        "registry serves the index byte-for-byte"
    );
    for p in &idx.platforms {
        let child = registry_digest(
            &format!("{}/{repo}@{}", st.registry_http, p.digest),
            false,
            None,
            None,
        );
        assert_eq!(child, p.digest, "{}", p.platform);
    }

    // v2s2 conversion changes the digest; the returned digest is what the registry serves.
    let v2 = skopeo_push(
        &img,
        &Push {
            format_v2s2: true,
            ..Push::plain(&st.registry_http, &repo, "v1-docker")
        },
    );
    assert_ne!(v2, img.manifest_digest);
    let served = registry_digest(
        &format!("{}/{repo}:v1-docker", st.registry_http),
        false,
        None,
        None,
    );
    assert_eq!(served, v2);
}

#[test]
fn push_image_to_tls_basic_and_token_registries() {
    let Some(st) = common::stack() else { return };
    let repo = unique_repo("smoke/auth");
    let img = oci_image(&repo, "v1");
    let creds = Some(st.creds());
    let cases = [
        (&st.registry_tls, true, Some(st.cert_dir.as_path()), None),
        (&st.registry_basic, true, Some(st.cert_dir.as_path()), creds),
        (&st.registry_token, false, None, creds),
    ];
    for (registry, tls_verify, cert_dir, creds) in cases {
        skopeo_push(
            &img,
            &Push {
                registry,
                repo: &repo,
                tag: "v1",
                tls_verify,
                cert_dir,
                creds,
                format_v2s2: false,
            },
        );
        let served = registry_digest(
            &format!("{registry}/{repo}:v1"),
            tls_verify,
            cert_dir,
            creds,
        );
        assert_eq!(served, img.manifest_digest, "{registry}");
    }
    // anonymous pull from the token registry is allowed (pull-only token)
    let anon = registry_digest(
        &format!("{}/{repo}:v1", st.registry_token),
        false,
        None,
        None,
    );
    assert_eq!(anon, img.manifest_digest);
    let scope = format!("repository:{repo}:pull");
    assert!(
        st.token_requests_for_scope(&scope) >= 1,
        "token server counted {scope}"
    );
}

#[test]
fn auth_is_enforced() {
    let Some(st) = common::stack() else { return };
    let ca = st.ca.to_str().unwrap();
    let basic = format!("https://{}/v2/", st.registry_basic);
    assert_eq!(common::curl_status(&["--cacert", ca, &basic]), 401);
    assert_eq!(
        common::curl_status(&["--cacert", ca, "-u", "testuser:wrong", &basic]),
        401
    );
    assert_eq!(
        common::curl_status(&["--cacert", ca, "-u", "testuser:testpass", &basic]),
        200
    );
    let bad_token = common::curl_status(&[
        "-u",
        "testuser:wrong",
        &format!("{}?service=x", st.token_realm()),
    ]);
    assert_eq!(bad_token, 401);
    let tok_reg = format!("http://{}/v2/", st.registry_token);
    assert_eq!(common::curl_status(&[&tok_reg]), 401);
    let t = st.fetch_token(st.var("REGISTRY_TOKEN_SERVICE"), "registry:catalog:*", true);
    assert_eq!(
        common::curl_status(&["-H", &format!("Authorization: Bearer {t}"), &tok_reg]),
        200
    );
}

#[test]
fn notary_servers_answer() {
    let Some(st) = common::stack() else { return };
    let ca = st.ca.to_str().unwrap();
    for url in [&st.notary_url, &st.notary_token_url] {
        let health = format!("{url}/_notary_server/health");
        assert_eq!(
            common::curl_status(&["--cacert", ca, &health]),
            200,
            "{health}"
        );
    }
    let health = format!("{}/_notary_server/health", st.notary_local_url);
    assert_eq!(common::curl_status(&[&health]), 200, "{health}");
    // the signer path works (health alone does not prove it)
    let key = format!(
        "{}/v2/{}/_trust/tuf/timestamp.key",
        st.notary_url,
        unique_repo("smoke/key")
    );
    assert_eq!(common::curl_status(&["--cacert", ca, &key]), 200);
    // token-protected server: 401 without, 200 with a token
    let gun = unique_repo("smoke/tok");
    let key = format!("{}/v2/{gun}/_trust/tuf/timestamp.key", st.notary_token_url);
    assert_eq!(common::curl_status(&["--cacert", ca, &key]), 401);
    let t = st.fetch_token(
        st.var("NOTARY_TOKEN_SERVICE"),
        &format!("repository:{gun}:push,pull"),
        true,
    );
    assert_eq!(
        common::curl_status(&[
            "--cacert",
            ca,
            "-H",
            &format!("Authorization: Bearer {t}"),
            &key
        ]),
        200
    );
}

#[test]
fn notary_cli_signs_against_every_server() {
    let Some(st) = common::stack() else { return };
    let img = oci_image("notary-cli", "v1");
    for url in [&st.notary_url, &st.notary_local_url, &st.notary_token_url] {
        let gun = format!("{}/{}", st.registry_http, unique_repo("smoke/signed"));
        let signer = st.notary_client(url);
        signer.sign(&gun, "v1", &img.manifest_digest, img.manifest_size);
        let reader = st.notary_client(url);
        let list = reader.run(&["list", &gun]);
        let hex = img.manifest_digest.strip_prefix("sha256:").unwrap();
        assert!(list.contains(hex), "{url}: {list}");
    }
}

//! `HttpSource` (src/notary/fetch.rs) against the scripted HTTP/1.1 server of
//! `common::scripted` (part 1, always runs; deadlines on paused tokio time) and against the real notary-server stack from `e2e/stack.sh` (part 2, skipped when
//! the stack is not up unless `TRUSTGATE_REQUIRE_STACK=1`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest, Sha256};

use common::scripted::{Reply, Request, Scripted, closed_url};
use trustgate::limits::LIMITS;
use trustgate::notary::fetch::{HttpSource, NotaryConfig};
use trustgate::notary::source::{FetchError, MetaRequest, MetadataSource};

// ------------------------------------------------------------------ helpers

fn source(url: &str, timeout: Duration, creds: Option<(&str, &str)>) -> HttpSource {
    trustgate::tls::install_crypto_provider();
    let mut cfg = NotaryConfig::new(url);
    cfg.timeout = timeout;
    cfg.credentials = creds.map(|(u, p)| (u.to_string(), p.to_string()));
    HttpSource::new(cfg).unwrap()
}

fn current(role: &str) -> MetaRequest {
    MetaRequest::Current {
        role: role.to_string(),
    }
}

const GUN: &str = "127.0.0.1:5000/test/app";
const SECOND: Duration = Duration::from_secs(1);

fn stderr_line(s: &str) {
    // fd 2 directly: libtest captures eprintln! of passing tests.
    let _ = writeln!(std::io::stderr(), "{s}");
}

// ------------------------------------------------------------------ part 1: canned server

#[tokio::test]
async fn requests_use_notary_path_layout_and_return_raw_bytes() {
    let raw: &[u8] = b"\xef\xbb\xbf{\"signed\" : {\"x\":1}}\r\n\x00\xff not json at all";
    let body = raw.to_vec();
    let srv = Scripted::start(move |_| Reply::ok(&body)).await;
    let src = source(&srv.url(), 5 * SECOND, None);
    let hex = "ab".repeat(32);
    let reqs = [
        (current("root"), "root.json"),
        (
            MetaRequest::ByHash {
                role: "snapshot".into(),
                sha256_hex: hex.clone(),
            },
            &*format!("snapshot.{hex}.json"),
        ),
        (
            MetaRequest::Version {
                role: "root".into(),
                version: 3,
            },
            "3.root.json",
        ),
        (current("targets/releases"), "targets/releases.json"),
    ];
    for (req, _) in &reqs {
        assert_eq!(src.fetch(GUN, req, 1 << 20).await.unwrap(), raw, "{req:?}");
    }
    let lines: Vec<String> = srv.requests().into_iter().map(|r| r.line).collect();
    let want: Vec<String> = reqs
        .iter()
        .map(|(_, f)| format!("GET /v2/{GUN}/_trust/tuf/{f} HTTP/1.1"))
        .collect();
    assert_eq!(lines, want);
    assert_eq!(src.server(), srv.url());

    // A path prefix on the server URL is kept; a trailing slash does not double up.
    let src = source(&format!("{}/notary/", srv.url()), 5 * SECOND, None);
    src.fetch("docker.io/library/alpine", &current("timestamp"), 1 << 20)
        .await
        .unwrap();
    assert_eq!(
        srv.requests().last().unwrap().line,
        "GET /notary/v2/docker.io/library/alpine/_trust/tuf/timestamp.json HTTP/1.1"
    );
}

#[tokio::test]
async fn hostile_guns_and_roles_are_refused_before_any_request() {
    let srv = Scripted::start(|_| Reply::ok(b"{}")).await;
    let src = source(&srv.url(), 5 * SECOND, None);
    for gun in [
        "a/../b", "..", "a?x=1", "a#frag", "a b", "a\nb", "", "/abs", "a//b", "a%2f..", "a\\b",
    ] {
        let err = src.fetch(gun, &current("root"), 1024).await.unwrap_err();
        assert!(
            matches!(err, FetchError::Protocol { .. }),
            "{gun:?}: {err:?}"
        );
    }
    let err = src
        .fetch(GUN, &current("targets/../../x"), 1024)
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Protocol { .. }), "{err:?}");
    assert_eq!(srv.requests().len(), 0);
}

#[tokio::test]
async fn not_found_and_server_errors() {
    let srv = Scripted::start(|r| match r.path() {
        p if p.ends_with("/root.json") => Reply::json(
            404,
            r#"{"errors":[{"code":"METADATA_NOT_FOUND","message":"not found"}]}"#,
        ),
        p if p.ends_with("/snapshot.json") => {
            Reply::json(500, r#"{"errors":[{"code":"UNKNOWN"}]}"#)
        }
        p if p.ends_with("/targets.json") => Reply::json(400, "bad"),
        p if p.ends_with("/moved.json") => Reply::Full(
            302,
            vec![("Location".into(), "http://127.0.0.2:1/elsewhere".into())],
            vec![],
        ),
        p if p.ends_with("/here.json") => Reply::Full(
            301,
            vec![(
                "Location".into(),
                format!("/v2/{GUN}/_trust/tuf/timestamp.json"),
            )],
            vec![],
        ),
        _ => Reply::ok(b"ts"),
    })
    .await;
    let src = source(&srv.url(), 5 * SECOND, None);
    let err = src.fetch(GUN, &current("root"), 1024).await.unwrap_err();
    assert_eq!(
        err,
        FetchError::NotFound {
            server: srv.url(),
            gun: GUN.into(),
            file: "root.json".into()
        }
    );
    let msg = err.to_string();
    assert!(msg.contains(GUN) && msg.contains("root.json"), "{msg}");
    let err = src
        .fetch(GUN, &current("snapshot"), 1024)
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchError::Server { status: 500, ref file, .. } if file == "snapshot.json"),
        "{err:?}"
    );
    let err = src.fetch(GUN, &current("targets"), 1024).await.unwrap_err();
    assert!(
        matches!(err, FetchError::Server { status: 400, .. }),
        "{err:?}"
    );
    // A redirect to another origin is not followed; one on the same origin is.
    let err = src.fetch(GUN, &current("moved"), 1024).await.unwrap_err();
    assert!(
        matches!(err, FetchError::Server { status: 302, .. }),
        "{err:?}"
    );
    assert_eq!(src.fetch(GUN, &current("here"), 1024).await.unwrap(), b"ts");
}

/// On paused tokio time: a fetch that waited for the body would jump to the 5 s timeout.
#[tokio::test(start_paused = true)]
async fn bodies_over_the_cap_are_refused() {
    let max = 1000u64;
    let srv = Scripted::start(
        move |r| match r.path().rsplit('/').next().unwrap_or_default() {
            "chunked-endless.json" => Reply::Chunked(vec![b'x'; 100], None),
            "chunked-exact.json" => Reply::Chunked(vec![b'x'; 100], Some(10)),
            "chunked-over.json" => Reply::Chunked(vec![b'x'; 91], Some(11)),
            "close-over.json" => Reply::CloseDelimited(vec![b'y'; 1001]),
            "close-exact.json" => Reply::CloseDelimited(vec![b'y'; 1000]),
            "length-exact.json" => Reply::ok(&[b'z'; 1000]),
            "length-over.json" => Reply::HeadersThenStall(Some(1001)),
            "length-huge.json" => Reply::HeadersThenStall(Some(1 << 40)),
            _ => Reply::json(404, ""),
        },
    )
    .await;
    let src = source(&srv.url(), 5 * SECOND, None);
    for name in ["chunked-exact", "close-exact", "length-exact"] {
        let body = src.fetch(GUN, &current(name), max).await.unwrap();
        assert_eq!(body.len(), 1000, "{name}");
    }
    for name in [
        "chunked-endless",
        "chunked-over",
        "close-over",
        "length-over",
        "length-huge",
    ] {
        let t = tokio::time::Instant::now();
        let err = src.fetch(GUN, &current(name), max).await.unwrap_err();
        assert!(
            matches!(err, FetchError::TooLarge { limit: 1000, .. }),
            "{name}: {err:?}"
        );
        // `length-*` never send a body: TooLarge comes from Content-Length alone, long before
        // the 5 s timeout.
        assert!(t.elapsed() < 2 * SECOND, "{name}: {:?}", t.elapsed());
    }
}

/// On paused tokio time: the fetch deadline is the first timer due, so the clock jumps to it.
#[tokio::test(start_paused = true)]
async fn slow_servers_time_out() {
    let srv = Scripted::start(|r| {
        if r.path().ends_with("/silent.json") {
            Reply::Silence
        } else {
            Reply::HeadersThenStall(Some(10))
        }
    })
    .await;
    let limit = Duration::from_millis(300);
    let src = source(&srv.url(), limit, None);
    for name in ["silent", "stalled-body"] {
        let t = tokio::time::Instant::now();
        let err = src.fetch(GUN, &current(name), 1024).await.unwrap_err();
        let took = t.elapsed();
        assert!(matches!(err, FetchError::Timeout { .. }), "{name}: {err:?}");
        assert!(took >= limit && took < 2 * limit, "{name}: {took:?}");
        stderr_line(&format!("timeout {name}: limit {limit:?}, took {took:?}"));
    }
}

#[tokio::test]
async fn closed_port_is_a_connect_error() {
    let src = source(&closed_url(), 5 * SECOND, None);
    let t = Instant::now();
    let err = src.fetch(GUN, &current("root"), 1024).await.unwrap_err();
    assert!(matches!(err, FetchError::Connect { .. }), "{err:?}");
    assert!(t.elapsed() < 2 * SECOND, "{:?}", t.elapsed());
    stderr_line(&format!("closed port: {err} after {:?}", t.elapsed()));
}

/// A notary server at `/v2/` that wants `Bearer <accepted>`, with its token service at
/// `/token` on the same (loopback, plain-http) server. `issue` gives the JSON per token request.
async fn token_server(
    accepted: impl Fn() -> String + Send + Sync + 'static,
    issue: impl Fn(&Request) -> Reply + Send + Sync + 'static,
) -> Scripted {
    let realm = Arc::new(Mutex::new(String::new()));
    let realm2 = realm.clone();
    let srv = Scripted::start(move |r| {
        if r.path() == "/token" {
            return issue(r);
        }
        if r.header("authorization") == Some(&format!("Bearer {}", accepted())) {
            return Reply::ok(b"trust data");
        }
        let gun = r
            .path()
            .trim_start_matches("/v2/")
            .split("/_trust/")
            .next()
            .unwrap_or_default();
        let challenge = format!(
            r#"Bearer realm="{}",service="notary-test",scope="repository:{gun}:push,pull""#,
            realm2.lock().unwrap()
        );
        Reply::Full(
            401,
            vec![("WWW-Authenticate".into(), challenge)],
            br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#.to_vec(),
        )
    })
    .await;
    *realm.lock().unwrap() = format!("{}/token", srv.url());
    srv
}

fn token_json(token: &str, access_token: &str, expires_in: u64) -> Reply {
    let body =
        serde_json::json!({"token": token, "access_token": access_token, "expires_in": expires_in});
    Reply::Full(
        200,
        vec![("Content-Type".into(), "application/json".into())],
        body.to_string().into_bytes(),
    )
}

#[tokio::test]
async fn bearer_token_flow_with_credentials_and_cache() {
    let basic = format!("Basic {}", B64.encode("alice:s3cret"));
    let basic2 = basic.clone();
    let srv = token_server(
        || "good".into(),
        move |r| {
            if r.header("authorization") == Some(basic2.as_str()) {
                // `token` is wrong on purpose: `access_token` must win.
                token_json("plain-token-field", "good", 300)
            } else {
                Reply::json(
                    401,
                    r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#,
                )
            }
        },
    )
    .await;
    let src = source(&srv.url(), 5 * SECOND, Some(("alice", "s3cret")));
    let t = Instant::now();
    assert_eq!(
        src.fetch(GUN, &current("root"), 1024).await.unwrap(),
        b"trust data"
    );
    let first = t.elapsed();
    let reqs = srv.requests();
    let lines: Vec<&str> = reqs.iter().map(|r| r.path()).collect();
    let root = format!("/v2/{GUN}/_trust/tuf/root.json");
    assert_eq!(lines, [root.as_str(), "/token", root.as_str()]);
    let tok = &reqs[1];
    assert_eq!(tok.header("authorization"), Some(basic.as_str()));
    assert_eq!(tok.query("service").as_deref(), Some("notary-test"));
    // The challenge asked for push,pull; a reader asks for pull only.
    assert_eq!(tok.query("scope"), Some(format!("repository:{GUN}:pull")));
    assert_eq!(tok.query("account").as_deref(), Some("alice"));
    assert_eq!(reqs[2].header("authorization"), Some("Bearer good"));
    // Credentials go to the realm only, never to the notary endpoints.
    assert!(reqs.iter().filter(|r| r.path() != "/token").all(|r| {
        !r.header("authorization")
            .unwrap_or_default()
            .starts_with("Basic")
    }));

    // Cached: the next fetch sends the token straight away (one request, no token request).
    let t = Instant::now();
    src.fetch(GUN, &current("timestamp"), 1024).await.unwrap();
    let second = t.elapsed();
    assert_eq!(srv.count("/token"), 1);
    assert_eq!(srv.requests().len(), 4);
    stderr_line(&format!(
        "token flow: cold fetch {first:?} (3 requests), warm fetch {second:?} (1 request)"
    ));

    // Clones share the cache.
    src.clone()
        .fetch(GUN, &current("snapshot"), 1024)
        .await
        .unwrap();
    assert_eq!(srv.count("/token"), 1);

    // Another GUN: the realm is known, so its token is fetched up front (no 401 round trip).
    src.fetch("other/repo", &current("root"), 1024)
        .await
        .unwrap();
    let reqs = srv.requests();
    let tail: Vec<&str> = reqs[reqs.len() - 2..].iter().map(|r| r.path()).collect();
    assert_eq!(tail, ["/token", "/v2/other/repo/_trust/tuf/root.json"]);
    assert_eq!(
        reqs[reqs.len() - 2].query("scope").as_deref(),
        Some("repository:other/repo:pull")
    );
}

#[tokio::test]
async fn concurrent_cold_fetches_share_one_token_request() {
    let srv = token_server(|| "good".into(), |_| token_json("", "good", 300)).await;
    let src = source(&srv.url(), 5 * SECOND, None);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let src = src.clone();
            tokio::spawn(async move { src.fetch(GUN, &current("timestamp"), 1024).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(srv.count("/token"), 1);
}

#[tokio::test]
async fn anonymous_token_request_has_no_credentials() {
    let srv = token_server(|| "anon".into(), |_| token_json("anon", "", 0)).await;
    let src = source(&srv.url(), 5 * SECOND, None);
    src.fetch(GUN, &current("root"), 1024).await.unwrap();
    let tok = srv
        .requests()
        .into_iter()
        .find(|r| r.path() == "/token")
        .unwrap();
    assert_eq!(tok.header("authorization"), None);
    assert_eq!(tok.query("account"), None);
}

#[tokio::test]
async fn token_service_rejecting_credentials_is_unauthorized() {
    let srv = token_server(
        || "never".into(),
        |_| {
            Reply::json(
                401,
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#,
            )
        },
    )
    .await;
    let src = source(&srv.url(), 5 * SECOND, Some(("alice", "wrong")));
    let err = src.fetch(GUN, &current("root"), 1024).await.unwrap_err();
    match &err {
        FetchError::Unauthorized { gun, detail, .. } => {
            assert_eq!(gun, GUN);
            assert_eq!(detail, "token service rejected the credentials");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn refused_after_the_dance_is_unauthorized_with_the_server_message() {
    // The token is issued but the server keeps refusing it: exactly one retry, then give up.
    let srv = token_server(
        || "something-else".into(),
        |_| token_json("", "issued", 300),
    )
    .await;
    let src = source(&srv.url(), 5 * SECOND, None);
    let err = src.fetch(GUN, &current("root"), 1024).await.unwrap_err();
    match &err {
        FetchError::Unauthorized { detail, .. } => {
            assert_eq!(detail, "UNAUTHORIZED: authentication required");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(srv.count("/v2/"), 2);
    assert_eq!(srv.count("/token"), 1);

    // 403 needs no dance.
    let srv =
        Scripted::start(|_| Reply::json(403, r#"{"errors":[{"code":"DENIED","message":"no"}]}"#))
            .await;
    let err = source(&srv.url(), 5 * SECOND, None)
        .fetch(GUN, &current("root"), 1024)
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchError::Unauthorized { ref detail, .. } if detail == "DENIED: no"),
        "{err:?}"
    );
}

/// A token server issuing `t1`, `t2`, ... (each with `expires_in`), in front of a notary
/// server that accepts only the newest token. Returns the server and the issue counter.
async fn rotating_tokens(expires_in: u64) -> (Scripted, Arc<Mutex<u32>>) {
    let issued = Arc::new(Mutex::new(0u32));
    let (i1, i2) = (issued.clone(), issued.clone());
    let srv = token_server(
        move || format!("t{}", i1.lock().unwrap()),
        move |_| {
            let mut n = i2.lock().unwrap();
            *n += 1;
            token_json("", &format!("t{n}"), expires_in)
        },
    )
    .await;
    (srv, issued)
}

/// On paused tokio time: the 0.7 s wait costs nothing.
#[tokio::test(start_paused = true)]
async fn expired_tokens_are_refreshed_up_front() {
    let (srv, _) = rotating_tokens(1).await;
    let src = source(&srv.url(), 5 * SECOND, None);
    src.fetch(GUN, &current("root"), 1024).await.unwrap();
    assert_eq!(srv.count("/token"), 1);
    // expires_in = 1 s: after 0.7 s the token is due for refresh, so a new one is requested
    // before the notary request, which then succeeds at once.
    tokio::time::sleep(Duration::from_millis(700)).await;
    src.fetch(GUN, &current("root"), 1024).await.unwrap();
    assert_eq!(srv.count("/token"), 2);
    assert_eq!(srv.count("/v2/"), 3);
}

#[tokio::test]
async fn a_refused_cached_token_is_replaced_once() {
    let (srv, issued) = rotating_tokens(300).await;
    let src = source(&srv.url(), 5 * SECOND, None);
    src.fetch(GUN, &current("root"), 1024).await.unwrap();
    // The server revokes t1 (it now wants t2): cached t1 → 401 → fresh token → retry succeeds.
    *issued.lock().unwrap() += 1;
    src.fetch(GUN, &current("root"), 1024).await.unwrap();
    assert_eq!(srv.count("/token"), 2);
    let reqs = srv.requests();
    let tail: Vec<(&str, Option<&str>)> = reqs[reqs.len() - 3..]
        .iter()
        .map(|r| (r.path(), r.header("authorization")))
        .collect();
    let root = format!("/v2/{GUN}/_trust/tuf/root.json");
    assert_eq!(
        tail,
        [
            (root.as_str(), Some("Bearer t1")),
            ("/token", None),
            (root.as_str(), Some("Bearer t3"))
        ]
    );
}

#[tokio::test]
async fn basic_challenge_sends_configured_credentials() {
    let want = format!("Basic {}", B64.encode("bob:pw"));
    let srv = Scripted::start(move |r| {
        if r.header("authorization") == Some(want.as_str()) {
            Reply::ok(b"basic ok")
        } else {
            Reply::Full(
                401,
                vec![("WWW-Authenticate".into(), r#"Basic realm="notary""#.into())],
                vec![],
            )
        }
    })
    .await;
    let src = source(&srv.url(), 5 * SECOND, Some(("bob", "pw")));
    assert_eq!(
        src.fetch(GUN, &current("root"), 1024).await.unwrap(),
        b"basic ok"
    );
    assert_eq!(srv.requests().len(), 2);
    src.fetch(GUN, &current("root"), 1024).await.unwrap();
    assert_eq!(
        srv.requests().len(),
        3,
        "basic credentials are sent up front once asked for"
    );

    let anon = source(&srv.url(), 5 * SECOND, None);
    let err = anon.fetch(GUN, &current("root"), 1024).await.unwrap_err();
    assert!(matches!(err, FetchError::Unauthorized { .. }), "{err:?}");
}

#[tokio::test]
async fn debug_output_hides_the_password() {
    let src = source("http://127.0.0.1:9", SECOND, Some(("alice", "hunter2")));
    let cfg = NotaryConfig {
        credentials: Some(("alice".into(), "hunter2".into())),
        ..NotaryConfig::new("http://x")
    };
    for text in [format!("{src:?}"), format!("{cfg:?}")] {
        assert!(
            text.contains("alice") && !text.contains("hunter2"),
            "{text}"
        );
    }
}

// ------------------------------------------------------------------ part 2: real notary-server

fn stack_source(url: &str, ca: Option<Vec<u8>>, creds: Option<(&str, &str)>) -> HttpSource {
    trustgate::tls::install_crypto_provider();
    let mut cfg = NotaryConfig::new(url);
    cfg.timeout = 10 * SECOND;
    cfg.ca_pem = ca;
    cfg.credentials = creds.map(|(u, p)| (u.to_string(), p.to_string()));
    HttpSource::new(cfg).unwrap()
}

fn hex_sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Fetches root, timestamp, snapshot (current and by the sha256 of its bytes) and 1.root.json,
/// and checks they are the bytes the timestamp commits to.
async fn fetch_published(src: &HttpSource, gun: &str) {
    let root = src
        .fetch(gun, &current("root"), LIMITS.root_bytes)
        .await
        .unwrap();
    let ts = src
        .fetch(gun, &current("timestamp"), LIMITS.timestamp_bytes)
        .await
        .unwrap();
    let ts_json: serde_json::Value = serde_json::from_slice(&ts).unwrap();
    let meta = &ts_json["signed"]["meta"]["snapshot"];
    let len = meta["length"].as_u64().unwrap();
    let snap = src.fetch(gun, &current("snapshot"), len).await.unwrap();
    let want_b64 = meta["hashes"]["sha256"].as_str().unwrap();
    assert_eq!(
        B64.encode(Sha256::digest(&snap)),
        want_b64,
        "raw snapshot bytes match the timestamp"
    );
    let by_hash = MetaRequest::ByHash {
        role: "snapshot".into(),
        sha256_hex: hex_sha256(&snap),
    };
    assert_eq!(src.fetch(gun, &by_hash, len).await.unwrap(), snap);
    let v1 = MetaRequest::Version {
        role: "root".into(),
        version: 1,
    };
    assert_eq!(src.fetch(gun, &v1, LIMITS.root_bytes).await.unwrap(), root);
    // A cap one byte below the real length is refused.
    let err = src
        .fetch(gun, &current("snapshot"), len - 1)
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::TooLarge { .. }), "{err:?}");
    let unknown = format!("{gun}-never-published");
    let err = src
        .fetch(&unknown, &current("root"), LIMITS.root_bytes)
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchError::NotFound { ref gun, .. } if *gun == unknown),
        "{err:?}"
    );
}

/// Mean and max of `n` sequential fetches of timestamp.json over one (kept-alive) client.
async fn latency(src: &HttpSource, gun: &str, n: u32) -> (Duration, Duration) {
    let mut max = Duration::ZERO;
    let t = Instant::now();
    for _ in 0..n {
        let one = Instant::now();
        src.fetch(gun, &current("timestamp"), LIMITS.timestamp_bytes)
            .await
            .unwrap();
        max = max.max(one.elapsed());
    }
    (t.elapsed() / n, max)
}

#[tokio::test]
async fn stack_tls_and_plain_http_servers() {
    let Some(st) = common::stack() else { return };
    let ca = std::fs::read(&st.ca).unwrap();
    for (url, ca) in [
        (&st.notary_url, Some(ca.clone())),
        (&st.notary_local_url, None),
    ] {
        let gun = format!("{}/{}", st.registry_http, common::unique_repo("fetch/raw"));
        st.notary_client(url).init(&gun);
        let src = stack_source(url, ca, None);
        let t = Instant::now();
        src.fetch(&gun, &current("timestamp"), LIMITS.timestamp_bytes)
            .await
            .unwrap();
        let cold = t.elapsed();
        fetch_published(&src, &gun).await;
        let (mean, max) = latency(&src, &gun, 50).await;
        stderr_line(&format!(
            "{url}: first fetch {cold:?}; 50 warm timestamp fetches mean {mean:?} max {max:?}"
        ));
    }
}

#[tokio::test]
async fn stack_wrong_ca_is_a_tls_error() {
    let Some(st) = common::stack() else { return };
    // The token-signing cert is self-signed but did not issue the server cert.
    let wrong = std::fs::read(st.var("TOKEN_CERT")).unwrap();
    for ca in [Some(wrong), None] {
        let src = stack_source(&st.notary_url, ca, None);
        let err = src
            .fetch("any/gun", &current("root"), LIMITS.root_bytes)
            .await
            .unwrap_err();
        assert!(matches!(err, FetchError::Tls { .. }), "{err:?}");
        stderr_line(&format!("wrong CA: {err}"));
    }
}

#[tokio::test]
async fn stack_token_auth_server() {
    let Some(st) = common::stack() else { return };
    let ca = std::fs::read(&st.ca).unwrap();
    let gun = format!(
        "{}/{}",
        st.registry_http,
        common::unique_repo("fetch/token")
    );
    st.notary_client(&st.notary_token_url).init(&gun);
    let scope = format!("repository:{gun}:pull");
    let creds = (st.notary_user.as_str(), st.notary_password.as_str());

    let src = stack_source(&st.notary_token_url, Some(ca.clone()), Some(creds));
    let t = Instant::now();
    src.fetch(&gun, &current("root"), LIMITS.root_bytes)
        .await
        .unwrap();
    let cold = t.elapsed();
    assert_eq!(st.token_requests_for_scope(&scope), 1);
    fetch_published(&src, &gun).await;
    let (mean, max) = latency(&src, &gun, 50).await;
    assert_eq!(
        st.token_requests_for_scope(&scope),
        1,
        "one token for all fetches of this GUN"
    );
    stderr_line(&format!(
        "{}: first fetch (401 + token + retry) {cold:?}; 50 warm fetches mean {mean:?} max {max:?}",
        st.notary_token_url
    ));

    // Anonymous users get pull.
    let anon = stack_source(&st.notary_token_url, Some(ca.clone()), None);
    anon.fetch(&gun, &current("timestamp"), LIMITS.timestamp_bytes)
        .await
        .unwrap();
    assert_eq!(st.token_requests_for_scope(&scope), 2);

    // Wrong password.
    let bad = stack_source(
        &st.notary_token_url,
        Some(ca),
        Some((creds.0, "wrong-password")),
    );
    let err = bad
        .fetch(&gun, &current("root"), LIMITS.root_bytes)
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchError::Unauthorized { ref detail, .. } if detail == "token service rejected the credentials"),
        "{err:?}"
    );
}

#[tokio::test]
async fn warming_opens_connections_the_fetches_then_reuse() {
    let body = b"{}".to_vec();
    let srv = Scripted::start(move |r| {
        if r.path() == "/_notary_server/health" {
            // A short answer: read whole, so the connection goes back to the pool.
            Reply::ok(b"{}")
        } else {
            Reply::ok(&body)
        }
    })
    .await;
    let src = source(&srv.url(), 5 * SECOND, Some(("user", "secret")));
    src.warm(3).await;
    assert_eq!(
        srv.connections(),
        3,
        "one connection per concurrent warm request"
    );
    let health: Vec<_> = srv
        .requests()
        .into_iter()
        .filter(|r| r.path() == "/_notary_server/health")
        .collect();
    assert_eq!(health.len(), 3);
    // No credentials go to the health check.
    assert!(health.iter().all(|r| {
        !r.headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
    }));
    // The chain's first fetches, at once, find the warm connections.
    let requests = ["root", "timestamp", "snapshot"].map(current);
    let fetches = requests.iter().map(|req| src.fetch(GUN, req, 1024));
    for got in futures::future::join_all(fetches).await {
        assert_eq!(got.unwrap(), b"{}");
    }
    assert_eq!(
        srv.connections(),
        3,
        "the fetches reused the warm connections"
    );
}

#[tokio::test]
async fn warming_an_unreachable_server_is_quiet() {
    let src = source(&closed_url(), SECOND, None);
    src.warm(2).await;
    assert!(matches!(
        src.fetch(GUN, &current("root"), 1024).await,
        Err(FetchError::Connect { .. })
    ));
}

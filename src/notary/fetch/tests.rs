//! Unit tests of `fetch`.

#![allow(clippy::unwrap_used, clippy::panic)]
use super::exchange::check_path_part;
use super::*;

fn one(h: &str) -> Challenge {
    let v = parse_challenge_header(h.as_bytes());
    assert_eq!(v.len(), 1, "{v:?}");
    v.into_iter().next().unwrap()
}

#[test]
fn parses_notary_bearer_challenge() {
    let c = one(
        r#"Bearer realm="https://auth.example/token",service="notary-server",scope="repository:127.0.0.1:5000/a/b:pull""#,
    );
    assert_eq!(c.scheme, "bearer");
    assert_eq!(c.param("realm"), Some("https://auth.example/token"));
    assert_eq!(c.param("service"), Some("notary-server"));
    assert_eq!(c.param("scope"), Some("repository:127.0.0.1:5000/a/b:pull"));
}

#[test]
fn parses_any_order_escapes_tokens_and_spaces() {
    let c = one(
        r#"bearer  scope="repository:x:pull" , Service=svc ,realm = "http://h/t\"q\\"  ,error="insufficient_scope""#,
    );
    assert_eq!(c.param("realm"), Some(r#"http://h/t"q\"#));
    assert_eq!(c.param("service"), Some("svc"));
    assert_eq!(c.param("error"), Some("insufficient_scope"));
}

#[test]
fn parses_several_challenges_and_basic() {
    let v = parse_challenge_header(br#"Basic realm="r", Bearer realm="https://t/x",service="s""#);
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].scheme, "basic");
    assert_eq!(v[1].param("service"), Some("s"));
    let v = parse_challenge_header(b"Negotiate abc==, Basic realm=x");
    assert_eq!(
        v.iter().map(|c| c.scheme.as_str()).collect::<Vec<_>>(),
        ["negotiate", "basic"]
    );
}

#[test]
fn junk_never_panics() {
    for h in [
        "",
        "\"",
        "=",
        "Bearer realm=\"unterminated",
        "Bearer ,,,=,=\"",
        "\u{00e9}t\u{00e9} x=\"\\",
        "Bearer realm",
    ] {
        let _ = parse_challenge_header(h.as_bytes());
    }
    let v = parse_challenge_header(b"Bearer realm");
    assert_eq!(v[0].param("realm"), None);
    // Junk after a value is skipped up to the next comma; later parameters still count.
    let c = one(r#"Bearer realm="r" junk junk, service="s""#);
    assert_eq!(
        (c.param("realm"), c.param("service")),
        (Some("r"), Some("s"))
    );
}

#[test]
fn scopes_with_colons() {
    assert_eq!(
        parse_scope("repository:127.0.0.1:5000/a/b:push,pull"),
        Some(("repository", "127.0.0.1:5000/a/b", "push,pull"))
    );
    assert_eq!(
        choose_scope(Some("repository:h:5000/a:push,pull"), "h:5000/a"),
        "repository:h:5000/a:pull"
    );
    assert_eq!(
        choose_scope(Some("registry:catalog:*"), "g"),
        "repository:g:pull"
    );
    assert_eq!(choose_scope(None, "g"), "repository:g:pull");
    assert_eq!(
        gun_of_scope("repository:127.0.0.1:5000/a:pull"),
        "127.0.0.1:5000/a"
    );
}

#[test]
fn path_parts() {
    for ok in [
        "docker.io/library/alpine",
        "127.0.0.1:5000/test/app",
        "targets/releases.json",
        "2.root.json",
    ] {
        assert_eq!(check_path_part(ok), Ok(()), "{ok}");
    }
    for bad in [
        "", "a/../b", "..", "a?b", "a#b", "a b", "a\tb", "a%2e", "/a", "a/", "a//b", "a/./b", "é",
    ] {
        assert!(check_path_part(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn token_response() {
    let (t, l) =
        parse_token_response(br#"{"token":"a","access_token":"b","expires_in":300}"#).unwrap();
    assert_eq!((t.as_str(), l), ("b", Duration::from_secs(300)));
    let (t, l) = parse_token_response(br#"{"token":"a"}"#).unwrap();
    assert_eq!((t.as_str(), l), ("a", DEFAULT_TOKEN_LIFETIME));
    let (t, _) = parse_token_response(br#"{"token":"a","access_token":""}"#).unwrap();
    assert_eq!(t, "a");
    assert!(parse_token_response(b"{}").is_err());
    assert!(parse_token_response(br#"{"token":"a b"}"#).is_err());
    assert!(parse_token_response(b"nope").is_err());
}

#[test]
fn errcode_bodies() {
    assert_eq!(
        errcode_message(br#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#),
        "UNAUTHORIZED: bad credentials"
    );
    assert_eq!(errcode_message(b"plain\ntext"), "plain text");
    assert_eq!(errcode_message(b""), "");
}

#[test]
fn realm_policy() {
    let https = HttpSource::new(NotaryConfig::new("https://notary.example:4443")).unwrap();
    assert!(
        https
            .inner
            .check_realm("https://auth.example/token")
            .is_ok()
    );
    assert!(
        https
            .inner
            .check_realm("http://127.0.0.1:5001/token")
            .is_ok()
    );
    assert!(https.inner.check_realm("http://[::1]:5001/token").is_ok());
    assert!(
        https
            .inner
            .check_realm("http://localhost:5001/token")
            .is_ok()
    );
    assert!(
        https
            .inner
            .check_realm("http://auth.example/token")
            .is_err()
    );
    assert!(
        https
            .inner
            .check_realm("https://u:p@auth.example/token")
            .is_err()
    );
    assert!(https.inner.check_realm("ftp://auth.example/token").is_err());
    let http = HttpSource::new(NotaryConfig::new("http://notary.example:4445/")).unwrap();
    assert!(http.inner.check_realm("http://auth.example/token").is_ok());
    assert_eq!(http.server(), "http://notary.example:4445");
}

#[test]
fn bad_configs() {
    for url in [
        "notary.example",
        "ftp://x",
        "https://u:p@x",
        "https://x/?q",
        "https://x/#f",
        "http://",
    ] {
        assert!(HttpSource::new(NotaryConfig::new(url)).is_err(), "{url}");
    }
    for timeout in [Duration::ZERO, Duration::MAX] {
        let cfg = NotaryConfig {
            timeout,
            ..NotaryConfig::new("https://x")
        };
        assert!(HttpSource::new(cfg).is_err());
    }
    let mut cfg = NotaryConfig::new("https://x");
    cfg.ca_pem = Some(b"not pem".to_vec());
    assert!(matches!(HttpSource::new(cfg), Err(FetchError::Tls { .. })));
}

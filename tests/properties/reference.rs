//! Image references: the parser never panics; every rejection is one line naming the input;
//! what the grammar generates parses to exactly its parts; `normalized()` and `familiar()` parse
//! back to the same reference (normalisation is idempotent); digests round-trip.

use proptest::prelude::*;
use trustgate::image::reference::{DEFAULT_DOMAIN, Digest, ImageRef};

use super::config;

/// A lower-case path component: `[a-z0-9]+ (separator [a-z0-9]+)*`.
fn component(dots: bool) -> BoxedStrategy<String> {
    let sep = if dots {
        prop_oneof![Just("."), Just("_"), Just("__"), Just("-"), Just("--")].boxed()
    } else {
        prop_oneof![Just("_"), Just("__"), Just("-"), Just("---")].boxed()
    };
    (
        "[a-z0-9]{1,6}",
        prop::collection::vec((sep, "[a-z0-9]{1,5}"), 0..3),
    )
        .prop_map(|(first, rest)| {
            let mut out = first;
            for (s, part) in rest {
                out.push_str(s);
                out.push_str(&part);
            }
            out
        })
        .boxed()
}

fn hostname() -> impl Strategy<Value = String> {
    prop::collection::vec("[a-zA-Z0-9]([a-zA-Z0-9-]{0,6}[a-zA-Z0-9])?", 2..4)
        .prop_map(|parts| parts.join("."))
}

/// A registry that the parser takes as a domain: a dotted host, `localhost`, an IPv4 address
/// or a bracketed IPv6 address, with an optional port.
fn domain() -> impl Strategy<Value = String> {
    let host = prop_oneof![
        hostname(),
        Just("localhost".to_owned()),
        (any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>())
            .prop_map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}")),
        // A bracketed host is taken as a domain only with a ':' in it (as in distribution).
        "\\[[0-9a-f]{0,4}:[0-9a-f:]{0,10}\\]",
        Just("docker.io".to_owned()),
        Just("index.docker.io".to_owned()),
    ];
    (host, prop::option::of(0u32..70000)).prop_map(|(host, port)| match port {
        Some(p) => format!("{host}:{p}"),
        None => host,
    })
}

fn tag() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"
}

fn digest() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-f0-9]{64}".prop_map(|h| format!("sha256:{h}")),
        "[a-f0-9]{128}".prop_map(|h| format!("sha512:{h}")),
    ]
}

/// A reference built from the grammar, with its expected parts.
#[derive(Debug, Clone)]
struct Valid {
    text: String,
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

fn valid() -> impl Strategy<Value = Valid> {
    (
        prop::option::of(domain()),
        component(false),
        prop::collection::vec(component(true), 0..3),
        prop::option::of(tag()),
        prop::option::of(digest()),
    )
        .prop_map(|(domain, first, rest, tag, digest)| {
            let mut remote = vec![first];
            remote.extend(rest);
            let remote = remote.join("/");
            let mut text = match &domain {
                Some(d) => format!("{d}/{remote}"),
                None => remote.clone(),
            };
            if let Some(t) = &tag {
                text = format!("{text}:{t}");
            }
            if let Some(d) = &digest {
                text = format!("{text}@{d}");
            }
            // The registry as the kubelet reaches it (a model of the parser's rule): host names
            // with a `.` or `:` fold to lower case, the default HTTPS port goes, and Docker
            // Hub's aliases are `docker.io`.
            let registry = domain.as_deref().map(|d| {
                if !d.contains(['.', ':']) {
                    return d.to_owned();
                }
                let mut host = d.to_ascii_lowercase();
                if let Some((h, port)) = host.rsplit_once(':')
                    && !h.is_empty()
                    && (!h.starts_with('[') || h.ends_with(']'))
                    && !port.is_empty()
                    && port.bytes().all(|b| b.is_ascii_digit())
                    && port.trim_start_matches('0') == "443"
                {
                    host.truncate(h.len());
                }
                host
            });
            let hub = match registry.as_deref() {
                None | Some("docker.io" | "index.docker.io" | "registry-1.docker.io") => true,
                Some(_) => false,
            };
            let (expected_domain, path) = match registry {
                _ if hub && !remote.contains('/') => {
                    (DEFAULT_DOMAIN.to_owned(), format!("library/{remote}"))
                }
                _ if hub => (DEFAULT_DOMAIN.to_owned(), remote),
                Some(d) => (d, remote),
                None => unreachable!("no domain is Docker Hub"),
            };
            Valid {
                text,
                domain: expected_domain,
                path,
                tag,
                digest,
            }
        })
}

/// Almost-references: characters of the grammar (and a few outside it) in any order.
fn noise() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9._/:@+\\[\\]-]{0,80}",
        ".{0,40}",
        "[a-f0-9]{64}",
        "[a-z]{1,3}(/[a-z]{1,3}){0,2}(:[a-zA-Z0-9_.-]{0,3})?(@[a-zA-Z0-9:+._-]{0,70})?",
    ]
}

/// A valid reference with one character inserted, removed or replaced.
fn mutated() -> impl Strategy<Value = String> {
    (
        valid(),
        any::<usize>(),
        0u8..3,
        prop::sample::select("A/:@._-+[]$ \u{e9}\u{0}Z9\n".chars().collect::<Vec<char>>()),
    )
        .prop_map(|(v, at, op, c)| {
            let mut chars: Vec<char> = v.text.chars().collect();
            let i = at % (chars.len() + 1);
            match op {
                0 => chars.insert(i, c),
                1 if i < chars.len() => {
                    chars.remove(i);
                }
                _ if i < chars.len() => chars[i] = c,
                _ => chars.push(c),
            }
            chars.into_iter().collect()
        })
}

/// What holds for any input: no panic (proptest reports one as a failure); a rejection is one
/// non-empty line that quotes the input; an accepted reference round-trips.
fn check_any(input: &str) -> Result<(), TestCaseError> {
    match ImageRef::parse(input) {
        Err(e) => {
            let msg = e.to_string();
            prop_assert!(!msg.contains('\n'), "multi-line error: {msg}");
            if !input.is_empty() {
                prop_assert!(
                    msg.contains(&format!("{input:?}")),
                    "error does not quote the input {input:?}: {msg}"
                );
            }
        }
        Ok(r) => check_round_trip(&r)?,
    }
    Ok(())
}

fn check_round_trip(r: &ImageRef) -> Result<(), TestCaseError> {
    let normalized = r.normalized();
    prop_assert_eq!(r.to_string(), normalized.clone());
    let again = ImageRef::parse(&normalized)
        .map_err(|e| TestCaseError::fail(format!("normalized form rejected: {e}")))?;
    prop_assert_eq!(again.normalized(), normalized.clone(), "not idempotent");
    prop_assert_eq!(again.repository(), r.repository());
    prop_assert_eq!(again.digest(), r.digest());
    // Like docker's FamiliarString, familiar() drops `docker.io/` even when the path's first
    // component then reads as a registry (`docker.io/a.b/c` gives `a.b/c`; a documented
    // ambiguity, found again by the long run); everything else round-trips.
    let hub_ambiguous = r.domain() == DEFAULT_DOMAIN
        && r.path()
            .split('/')
            .next()
            .is_some_and(|first| first.contains('.'))
        && r.path().contains('/');
    if !hub_ambiguous {
        let familiar = r.familiar();
        let back = ImageRef::parse(&familiar).map_err(|e| {
            TestCaseError::fail(format!("familiar form {familiar:?} rejected: {e}"))
        })?;
        prop_assert_eq!(&back, r, "familiar form {:?} parses differently", familiar);
    }
    prop_assert_eq!(r.repository(), format!("{}/{}", r.domain(), r.path()));
    if let Some(d) = r.digest() {
        let parsed: Digest = d.to_string().parse().expect("digest round trip");
        prop_assert_eq!(&parsed, d);
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(1, "reference"))]

    #[test]
    fn grammar_references_parse_to_their_parts(v in valid()) {
        let r = ImageRef::parse(&v.text)
            .map_err(|e| TestCaseError::fail(format!("{:?} rejected: {e}", v.text)))?;
        prop_assert_eq!(r.domain(), v.domain.as_str());
        prop_assert_eq!(r.path(), v.path.as_str());
        prop_assert_eq!(r.tag(), v.tag.as_deref());
        prop_assert_eq!(r.digest().map(ToString::to_string), v.digest.clone());
        check_round_trip(&r)?;
    }

    #[test]
    fn arbitrary_strings_parse_or_are_rejected_clearly(s in noise()) {
        check_any(&s)?;
    }

    #[test]
    fn mutated_references_parse_or_are_rejected_clearly(s in mutated()) {
        check_any(&s)?;
    }

    #[test]
    fn digests_parse_or_are_rejected_clearly(s in prop_oneof![
        digest(),
        "[a-zA-Z0-9+._-]{0,8}:[a-fA-F0-9g]{0,130}",
        ".{0,20}",
    ]) {
        match s.parse::<Digest>() {
            Ok(d) => prop_assert_eq!(d.to_string(), s),
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(msg.contains(&format!("{s:?}")) && !msg.contains('\n'), "{}", msg);
            }
        }
    }
}

//! Pattern table tests: normalisation, `*` vs `**`, tags, digests, ports, registry case, and the
//! look-alike references that must never match.

use super::*;

const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

fn image(s: &str) -> ImageRef {
    ImageRef::parse(s).unwrap_or_else(|e| panic!("test image {s:?}: {e}"))
}

fn pattern(s: &str) -> ImagePattern {
    ImagePattern::parse(s).unwrap_or_else(|e| panic!("test pattern {s:?}: {e}"))
}

#[test]
fn normalisation_of_patterns() {
    let cases = [
        ("nginx", "docker.io/library/nginx"),
        ("nginx:1.*", "docker.io/library/nginx:1.*"),
        ("library/nginx", "docker.io/library/nginx"),
        ("docker.io/nginx", "docker.io/library/nginx"),
        ("index.docker.io/nginx", "docker.io/library/nginx"),
        ("Docker.IO/user/app", "docker.io/user/app"),
        ("user/app:v1", "docker.io/user/app:v1"),
        ("*/app", "docker.io/*/app"),
        ("docker.io/*", "docker.io/library/*"),
        ("docker.io/**", "docker.io/**"),
        ("**", "**"),
        ("**/app", "**/app"),
        ("localhost/app", "localhost/app"),
        ("localhost:5000/app:v1", "localhost:5000/app:v1"),
        (
            "Registry.Example.COM:5000/shop/**",
            "registry.example.com:5000/shop/**",
        ),
        ("[::1]:5000/app", "[::1]:5000/app"),
        (
            &format!("nginx@{D1}"),
            &format!("docker.io/library/nginx@{D1}"),
        ),
        (
            "registry.example.com/app@sha256:*",
            "registry.example.com/app@sha256:*",
        ),
    ];
    for (input, normalized) in cases {
        assert_eq!(pattern(input).normalized(), normalized, "pattern {input:?}");
        assert_eq!(pattern(input).as_str(), input);
    }
}

#[test]
fn match_table() {
    // (pattern, image, expected)
    let d1 = format!("@{D1}");
    let pinned = format!("registry.example.com/app{d1}");
    let cases: Vec<(&str, String, bool)> = vec![
        // Docker Hub short names, both sides normalised.
        ("nginx", "nginx".into(), true),
        ("nginx", "docker.io/library/nginx:1.25".into(), true),
        ("docker.io/library/nginx", "nginx:latest".into(), true),
        ("nginx", "nginx-evil".into(), false),
        ("nginx", "evil/nginx".into(), false),
        ("nginx", "registry.example.com/library/nginx".into(), false),
        ("nginx", "docker.io/library/nginx/sub".into(), false),
        // Tag globs.
        ("nginx:1.*", "nginx:1.25".into(), true),
        ("nginx:1.*", "nginx:1.25.3-alpine".into(), true),
        ("nginx:1.*", "nginx:2.0".into(), false),
        ("nginx:1.*", "nginx:11".into(), false),
        ("nginx:1.*", "nginx".into(), false),
        ("nginx:latest", "nginx".into(), true),
        ("nginx:1.*", format!("nginx:1.25{d1}"), true),
        ("nginx:1.*", format!("nginx{d1}"), false),
        // No tag or digest part: every tag and digest.
        (
            "registry.example.com/app",
            "registry.example.com/app:v1".into(),
            true,
        ),
        (
            "registry.example.com/app",
            format!("registry.example.com/app{d1}"),
            true,
        ),
        (
            "registry.example.com/app",
            format!("registry.example.com/app:v1{d1}"),
            true,
        ),
        (
            "registry.example.com/app",
            "registry.example.com/app2".into(),
            false,
        ),
        (
            "registry.example.com/app",
            "registry.example.com/app/x".into(),
            false,
        ),
        // Digest parts.
        (
            pinned.as_str(),
            format!("registry.example.com/app{d1}"),
            true,
        ),
        (
            pinned.as_str(),
            format!("registry.example.com/app:v1{d1}"),
            true,
        ),
        (
            pinned.as_str(),
            format!("registry.example.com/app@{D2}"),
            false,
        ),
        (pinned.as_str(), "registry.example.com/app:v1".into(), false),
        (
            "registry.example.com/app@sha256:*",
            format!("registry.example.com/app@{D2}"),
            true,
        ),
        (
            "registry.example.com/app@sha256:*",
            "registry.example.com/app:v1".into(),
            false,
        ),
        // `*` stays within a segment, `**` crosses them.
        (
            "registry.example.com/a*",
            "registry.example.com/app".into(),
            true,
        ),
        (
            "registry.example.com/a*",
            "registry.example.com/a".into(),
            true,
        ),
        (
            "registry.example.com/a*",
            "registry.example.com/app/x".into(),
            false,
        ),
        (
            "registry.example.com/a*",
            "registry.example.com.evil.io/a".into(),
            false,
        ),
        (
            "registry.example.com/*",
            "registry.example.com/app:v1".into(),
            true,
        ),
        (
            "registry.example.com/*",
            "registry.example.com/team/app".into(),
            false,
        ),
        (
            "registry.example.com/**",
            "registry.example.com/team/app:v1".into(),
            true,
        ),
        (
            "registry.example.com/**",
            "registry.example.com/app".into(),
            true,
        ),
        (
            "registry.example.com/**",
            "registry.example.com.evil.io/x".into(),
            false,
        ),
        (
            "registry.example.com/**",
            "evil.io/registry.example.com/x".into(),
            false,
        ),
        (
            "registry.example.com/**",
            "registry.example.com:5000/x".into(),
            false,
        ),
        (
            "registry.example.com/shop/**",
            "registry.example.com/shopping/x".into(),
            false,
        ),
        (
            "registry.example.com/*/app",
            "registry.example.com/team/app".into(),
            true,
        ),
        (
            "registry.example.com/*/app",
            "registry.example.com/a/b/app".into(),
            false,
        ),
        (
            "registry.example.com/**/app",
            "registry.example.com/a/b/app".into(),
            true,
        ),
        (
            "registry.example.com/**/app",
            "registry.example.com/a/b/app2".into(),
            false,
        ),
        ("*.example.com/app", "registry.example.com/app".into(), true),
        (
            "*.example.com/app",
            "registry.example.com.evil.io/app".into(),
            false,
        ),
        (
            "*.example.com/app",
            "registry.example.com:5000/app".into(),
            false,
        ),
        ("**", "nginx".into(), true),
        ("**", "registry.example.com:5000/a/b/c:v1".into(), true),
        ("docker.io/**", "nginx".into(), true),
        ("docker.io/**", "registry.example.com/nginx".into(), false),
        ("*/app", "user/app".into(), true),
        ("*/app", "registry.example.com/app".into(), false),
        // Ports.
        (
            "registry.example.com:5000/shop/**",
            "registry.example.com:5000/shop/app:v1".into(),
            true,
        ),
        (
            "registry.example.com:5000/shop/**",
            "registry.example.com/shop/app".into(),
            false,
        ),
        (
            "registry.example.com:5000/shop/**",
            "registry.example.com:5001/shop/app".into(),
            false,
        ),
        (
            "registry.example.com:*/app",
            "registry.example.com:5000/app".into(),
            true,
        ),
        ("localhost:5000/app", "localhost:5000/app:v1".into(), true),
        ("localhost/app", "localhost:5000/app".into(), false),
        ("[::1]:5000/app", "[::1]:5000/app:v1".into(), true),
        // The registry is compared case-insensitively.
        (
            "Registry.Example.com/app",
            "registry.example.com/app".into(),
            true,
        ),
        (
            "registry.example.com/app",
            "REGISTRY.EXAMPLE.COM/app".into(),
            true,
        ),
        (
            "registry.example.com/**",
            "Registry.Example.Com:5000/app".into(),
            false,
        ),
        // Tags stay case-sensitive.
        (
            "registry.example.com/app:V1",
            "registry.example.com/app:v1".into(),
            false,
        ),
    ];
    for (p, i, expected) in &cases {
        assert_eq!(
            pattern(p).matches(&image(i)),
            *expected,
            "pattern {p:?} vs image {i:?}"
        );
    }
}

#[test]
fn specificity_is_the_literal_prefix_of_the_normalised_pattern() {
    let cases = [
        ("nginx", "docker.io/library/nginx".len()),
        ("nginx:1.*", "docker.io/library/nginx:1.".len()),
        (
            "registry.example.com/shop/**",
            "registry.example.com/shop/".len(),
        ),
        ("**", 0),
        ("*.example.com/app", 0),
    ];
    for (p, expected) in cases {
        assert_eq!(pattern(p).specificity(), expected, "pattern {p:?}");
    }
    assert!(pattern("nginx").is_exact());
    assert!(!pattern("nginx:*").is_exact());
}

#[test]
fn invalid_patterns() {
    let cases = [
        ("", PatternProblem::Empty),
        (
            "nginx latest",
            PatternProblem::InvalidCharacter {
                character: ' ',
                offset: 5,
            },
        ),
        (
            "registry.example.com/?",
            PatternProblem::InvalidCharacter {
                character: '?',
                offset: 21,
            },
        ),
        ("registry.example.com/***", PatternProblem::TooManyStars),
        ("a@sha256:*@x", PatternProblem::SeveralDigests),
        ("registry.example.com//app", PatternProblem::EmptyComponent),
        ("registry.example.com/", PatternProblem::EmptyComponent),
        (":v1", PatternProblem::MissingRepository),
        (
            "registry.example.com/App",
            PatternProblem::InvalidPathComponent {
                component: "App".into(),
            },
        ),
        (
            "reg_istry.example.com/app",
            PatternProblem::InvalidRegistry {
                domain: "reg_istry.example.com".into(),
            },
        ),
        ("nginx:", PatternProblem::InvalidTag { tag: String::new() }),
        (
            "nginx:v1+x",
            PatternProblem::InvalidTag { tag: "v1+x".into() },
        ),
        (
            "nginx@sha256:abc",
            PatternProblem::InvalidDigest {
                digest: "sha256:abc".into(),
            },
        ),
        (
            "nginx@SHA256:*",
            PatternProblem::InvalidDigest {
                digest: "SHA256:*".into(),
            },
        ),
    ];
    for (input, problem) in cases {
        let err = ImagePattern::parse(input).expect_err(input);
        assert_eq!(err.problem, problem, "pattern {input:?}");
        assert!(err.to_string().contains(&format!("{input:?}")), "{err}");
    }
}

#[test]
fn glob_has_no_exponential_backtracking() {
    let long = format!("registry.example.com/{}", "a/".repeat(100)) + "b";
    let p = pattern(&format!("registry.example.com/**{}c", "a**".repeat(40)));
    assert!(!p.matches(&image(&long)));
}

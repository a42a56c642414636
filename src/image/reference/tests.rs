//! Unit tests of `reference`.

use super::*;

const H64: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
const D1: &str = "sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa";
const D2: &str = "sha256:be178c0543eb17f5f3043021c9e5fcf30285e557a4fc309cce97ff9ca6182912";

fn kind(e: &ReferenceError) -> &'static str {
    use ReferenceError as E;
    match e {
        E::Empty => "empty",
        E::TooLong { .. } => "reference-too-long",
        E::InvalidCharacter { .. } => "char",
        E::AmbiguousIdentifier { .. } => "identifier",
        E::MissingName { .. } => "missing-name",
        E::NameContainsUppercase { .. } => "uppercase",
        E::InvalidDomain { .. } => "domain",
        E::InvalidPathComponent { problem, .. } => match problem {
            PathProblem::Empty => "path-empty",
            PathProblem::BadCharacter(_) => "path-char",
            PathProblem::BadEdge => "path-edge",
            PathProblem::BadSeparator(_) => "path-separator",
        },
        E::NameTooLong { .. } => "too-long",
        E::InvalidTag { .. } => "tag",
        E::InvalidReferenceDigest { problem, .. } | E::InvalidDigest { problem, .. } => {
            match problem {
                DigestProblem::Malformed => "digest-malformed",
                DigestProblem::UnsupportedAlgorithm(_) => "digest-unsupported",
                DigestProblem::NonHexCharacter(_) => "digest-nonhex",
                DigestProblem::WrongLength { .. } => "digest-length",
                DigestProblem::UppercaseHex => "digest-uppercase",
            }
        }
    }
}

fn parse_ok(input: &str) -> ImageRef {
    match ImageRef::parse(input) {
        Ok(r) => r,
        Err(e) => panic!("{input:?} should parse: {e}"),
    }
}

/// (input, domain, path, tag, digest)
type ValidCase<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, Option<&'a str>);

/// (input, domain, path, tag, digest) — from distribution's normalize_test.go,
/// reference_test.go and regexp_test.go, expressed through ParseNormalizedNamed.
#[test]
fn valid_references() {
    let long_a = "a".repeat(255);
    let deep = format!("{}a", "a/".repeat(127));
    let (long_in, deep_in) = (
        format!("example.com/{long_a}:tag"),
        format!("{deep}:tag-puts-this-over-max"),
    );
    let (hex_in, hex_path) = (format!("docker.io/{H64}"), format!("library/{H64}"));
    let generated: [ValidCase; 3] = [
        (&long_in, "example.com", &long_a, Some("tag"), None),
        (
            &deep_in,
            "docker.io",
            &deep,
            Some("tag-puts-this-over-max"),
            None,
        ),
        (&hex_in, "docker.io", &hex_path, None, None),
    ];
    #[rustfmt::skip]
    let cases: &[ValidCase] = &[
        ("docker/docker", "docker.io", "docker/docker", None, None),
        ("library/debian", "docker.io", "library/debian", None, None),
        ("debian", "docker.io", "library/debian", None, None),
        ("localhost/library/debian", "localhost", "library/debian", None, None),
        ("localhost/debian", "localhost", "debian", None, None),
        ("LOCALDOMAIN/library/debian", "LOCALDOMAIN", "library/debian", None, None),
        ("LOCALDOMAIN/debian", "LOCALDOMAIN", "debian", None, None),
        ("docker.io/docker/docker", "docker.io", "docker/docker", None, None),
        ("docker.io/library/debian", "docker.io", "library/debian", None, None),
        ("docker.io/debian", "docker.io", "library/debian", None, None),
        ("index.docker.io/docker/docker", "docker.io", "docker/docker", None, None),
        ("index.docker.io/library/debian", "docker.io", "library/debian", None, None),
        ("index.docker.io/debian", "docker.io", "library/debian", None, None),
        ("127.0.0.1:5000/docker/docker", "127.0.0.1:5000", "docker/docker", None, None),
        ("127.0.0.1:5000/library/debian", "127.0.0.1:5000", "library/debian", None, None),
        ("127.0.0.1:5000/debian", "127.0.0.1:5000", "debian", None, None),
        ("192.168.0.1", "docker.io", "library/192.168.0.1", None, None),
        ("192.168.0.1:80", "docker.io", "library/192.168.0.1", Some("80"), None),
        ("192.168.0.1:8/debian", "192.168.0.1:8", "debian", None, None),
        ("192.168.0.2:25000/debian", "192.168.0.2:25000", "debian", None, None),
        ("thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev", "docker.io", "library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev", None, None),
        ("[fc00::1]:5000/docker", "[fc00::1]:5000", "docker", None, None),
        ("[fc00::1]:5000/docker/docker", "[fc00::1]:5000", "docker/docker", None, None),
        ("[fc00:1:2:3:4:5:6:7]:5000/library/debian", "[fc00:1:2:3:4:5:6:7]:5000", "library/debian", None, None),
        ("Docker/docker", "Docker", "docker", None, None),
        ("DOCKER/docker", "DOCKER", "docker", None, None),
        ("Foo/bar", "Foo", "bar", None, None),
        ("Asdf.com/foo/bar", "asdf.com", "foo/bar", None, None),
        ("docker-rules/docker", "docker.io", "docker-rules/docker", None, None),
        ("docker---rules/docker", "docker.io", "docker---rules/docker", None, None),
        ("doc/docker", "docker.io", "doc/docker", None, None),
        ("d/docker", "docker.io", "d/docker", None, None),
        ("jess/t", "docker.io", "jess/t", None, None),
        ("dock__er/docker", "docker.io", "dock__er/docker", None, None),
        ("do__cker/docker", "docker.io", "do__cker/docker", None, None),
        ("test_com/foo", "docker.io", "test_com/foo", None, None),
        ("test.com/foo", "test.com", "foo", None, None),
        ("test.com:8080/foo", "test.com:8080", "foo", None, None),
        ("test-com:8080/foo", "test-com:8080", "foo", None, None),
        ("xn--n3h.com:18080/foo", "xn--n3h.com:18080", "foo", None, None),
        ("docker.io/library/foo/bar", "docker.io", "library/foo/bar", None, None),
        ("store/foo/bar", "docker.io", "store/foo/bar", None, None),
        ("other/library", "docker.io", "other/library", None, None),
        // reference_test.go TestReferenceParse, normalised
        ("test_com", "docker.io", "library/test_com", None, None),
        ("test.com:tag", "docker.io", "library/test.com", Some("tag"), None),
        ("test.com:5000", "docker.io", "library/test.com", Some("5000"), None),
        ("test.com/repo:tag", "test.com", "repo", Some("tag"), None),
        ("test:5000/repo", "test:5000", "repo", None, None),
        ("test:5000/repo:tag", "test:5000", "repo", Some("tag"), None),
        ("test:5000/repo@sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "test:5000", "repo", None, Some("sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff")),
        ("test:5000/repo:tag@sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "test:5000", "repo", Some("tag"), Some("sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff")),
        ("lowercase:Uppercase", "docker.io", "library/lowercase", Some("Uppercase"), None),
        ("sub-dom1.foo.com/bar/baz/quux:some-long-tag", "sub-dom1.foo.com", "bar/baz/quux", Some("some-long-tag"), None),
        ("b.gcr.io/test.example.com/my-app:test.example.com", "b.gcr.io", "test.example.com/my-app", Some("test.example.com"), None),
        ("xn--n3h.com/myimage:xn--n3h.com", "xn--n3h.com", "myimage", Some("xn--n3h.com"), None),
        ("xn--7o8h.com/myimage:xn--7o8h.com@sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "xn--7o8h.com", "myimage", Some("xn--7o8h.com"), Some("sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff")),
        ("foo_bar.com:8080", "docker.io", "library/foo_bar.com", Some("8080"), None),
        ("foo/foo_bar.com:8080", "docker.io", "foo/foo_bar.com", Some("8080"), None),
        ("192.168.1.1:tag", "docker.io", "library/192.168.1.1", Some("tag"), None),
        ("192.168.1.1/repo", "192.168.1.1", "repo", None, None),
        ("192.168.1.1:5000/repo:5050", "192.168.1.1:5000", "repo", Some("5050"), None),
        ("[2001:db8::1]/repo", "[2001:db8::1]", "repo", None, None),
        ("[2001:db8:1:2:3:4:5:6]/repo:tag", "[2001:db8:1:2:3:4:5:6]", "repo", Some("tag"), None),
        ("[2001:db8::1]:5000/repo:tag@sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "[2001:db8::1]:5000", "repo", Some("tag"), Some("sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff")),
        ("[2001:db8::]:5000/repo", "[2001:db8::]:5000", "repo", None, None),
        ("[::1]:5000/repo", "[::1]:5000", "repo", None, None),
        // regexp_test.go: grammar-valid oddities
        ("[fd00123123123]:75050/x", "[fd00123123123]:75050", "x", None, None),
        ("192.168.1.1:750050/x", "192.168.1.1:750050", "x", None, None),
        ("0101.com/x", "0101.com", "x", None, None),
        ("registry.io/foo/project--id.module--name.ver---sion--name", "registry.io", "foo/project--id.module--name.ver---sion--name", None, None),
        ("example.com/some_separator__underscore/myimage", "example.com", "some_separator__underscore/myimage", None, None),
        ("localhost:8080@sha256:be178c0543eb17f5f3043021c9e5fcf30285e557a4fc309cce97ff9ca6182912", "docker.io", "library/localhost", Some("8080"), Some(D2)),
        ("localhost@sha256:be178c0543eb17f5f3043021c9e5fcf30285e557a4fc309cce97ff9ca6182912", "docker.io", "library/localhost", None, Some(D2)),
        ("localhost:8080/name@sha256:be178c0543eb17f5f3043021c9e5fcf30285e557a4fc309cce97ff9ca6182912", "localhost:8080", "name", None, Some(D2)),
        // 63 hex characters is not an identifier
        ("dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9", "docker.io", "library/dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9", None, None),
        ("busybox:latest@sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa", "docker.io", "library/busybox", Some("latest"), Some(D1)),
        ("a@sha512:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "docker.io", "library/a", None, Some("sha512:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff")),
    ];
    for &(input, domain, path, tag, digest) in generated.iter().chain(cases) {
        let r = parse_ok(input);
        assert_eq!(r.domain(), domain, "domain of {input:?}");
        assert_eq!(r.path(), path, "path of {input:?}");
        assert_eq!(r.tag(), tag, "tag of {input:?}");
        assert_eq!(
            r.digest().map(ToString::to_string).as_deref(),
            digest,
            "digest of {input:?}"
        );
        assert_eq!(r.repository(), format!("{domain}/{path}"));
        assert_eq!(input.parse::<ImageRef>().as_ref(), Ok(&r));
    }
}

#[test]
fn invalid_references() {
    let long_ns = format!(
        "{}/docker",
        "this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_"
            .repeat(4)
            .trim_end_matches('_')
    );
    let owned = [
        (format!("domain/{}:tag", "a".repeat(256)), "too-long"),
        (format!("example.com/{}", "a".repeat(256)), "too-long"),
        ("a".repeat(248), "too-long"), // "library/" + 248 = 256
        (long_ns, "too-long"),
        (format!("a:{}", "t".repeat(129)), "tag"),
    ];
    #[rustfmt::skip]
    let cases: &[(&str, &str)] = &[
        ("", "empty"),
        (":justtag", "missing-name"),
        ("@sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "missing-name"),
        ("docker.io/", "missing-name"),
        ("localhost/:tag", "missing-name"),
        ("repo@sha256:ffffffffffffffffffffffffffffffffff", "digest-length"),
        ("registry.com:8080/myapp@sha256:badbadbadbad", "digest-length"),
        ("repo@sha256:fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "digest-length"),
        ("validname@invaliddigest:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "digest-unsupported"),
        ("validname@sha384:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "digest-unsupported"),
        ("validname@SHA256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "digest-unsupported"),
        ("registry.com:8080/myapp@bad", "digest-malformed"),
        ("registry.com:8080/myapp@2bad", "digest-malformed"),
        ("a@", "digest-malformed"),
        ("a@sha256:", "digest-malformed"),
        ("a@sha256", "digest-malformed"),
        ("a@sha256:gfffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "digest-nonhex"),
        ("a@sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff@sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "digest-nonhex"),
        ("a@sha256:FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", "digest-uppercase"),
        ("Uppercase:tag", "uppercase"),
        ("test:5000/Uppercase/lowercase:tag", "uppercase"),
        ("docker/Docker", "uppercase"),
        ("docker.io/docker/Docker", "uppercase"),
        ("aa/asdf$$^/aa", "char"),
        ("a^a", "char"),
        ("https://github.com/docker/docker", "domain"),
        ("registry.com:8080/myapp:invalid~tag", "char"),
        ("[fe80::1%eth0]:5000/repo", "char"),
        ("[fe80::1%@invalidzone]:5000/repo", "char"),
        ("nginx latest", "char"),
        (" nginx", "char"),
        ("nginx\n", "char"),
        ("nginx\t:1", "char"),
        ("ngïnx", "char"),
        ("nginx:1.0\0", "char"),
        ("1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a", "identifier"),
        ("dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c", "identifier"),
        ("-docker", "path-edge"),
        ("-docker/docker", "path-edge"),
        ("docker-/docker", "path-edge"),
        ("-docker-/docker", "path-edge"),
        ("____/____", "path-edge"),
        ("_docker/_docker", "path-edge"),
        ("foo/bar-", "path-edge"),
        ("foo/-bar", "path-edge"),
        ("example.com/__underscore/myimage", "path-edge"),
        ("example.com/..dots/myimage", "path-edge"),
        ("example.com/.dots/myimage", "path-edge"),
        ("foo.com/a-/a/a", "path-edge"),
        // A first element with '.' is read as a domain, so these fail there...
        ("dock..er/docker", "domain"),
        ("dock_.er/docker", "domain"),
        ("dock-.er/docker", "domain"),
        // ...and as later path components on the separator rule.
        ("a/dock..er", "path-separator"),
        ("a/dock_.er", "path-separator"),
        ("a/dock-.er", "path-separator"),
        ("a/dock.-er", "path-separator"),
        ("a/dock_-er", "path-separator"),
        ("a/foo___bar", "path-separator"),
        ("example.com/nodouble..dots/myimage", "path-separator"),
        ("docker///docker", "path-empty"),
        ("docker.io/docker///docker", "path-empty"),
        ("docker/", "path-empty"),
        ("/", "path-empty"),
        ("/foo", "path-empty"),
        ("a//a/a", "path-empty"),
        ("a/a/a/a/", "path-empty"),
        ("[fc00::1]", "path-char"),
        ("[fc00::1]:5000", "path-char"),
        ("[2001:db8::1]:tag", "path-char"),
        ("a/b:c/d", "path-char"),
        ("-docker.io/docker/docker", "domain"),
        ("fc00::1:5000/debian", "domain"),
        ("[2001:db8:3:4::192.0.2.33]:5000/debian", "domain"),
        ("[fd00:1:2::3]75050/x", "domain"),
        ("[fd00:1:2::3]::75050/x", "domain"),
        ("[]/x", "path-char"),
        ("[::1/x", "domain"),
        ("foo.com:http/bar", "domain"),
        ("foo_bar.com:8080/app", "domain"),
        ("bad_hostname.com:8080/myapp:tag", "domain"),
        ("localhost:http/name@sha256:be178c0543eb17f5f3043021c9e5fcf30285e557a4fc309cce97ff9ca6182912", "domain"),
        ("docker./docker", "domain"),
        (".docker/docker", "domain"),
        ("do..cker/docker", "domain"),
        ("do__cker:8080/docker", "domain"),
        ("ab-.com/x", "domain"),
        ("test.com:/x", "domain"),
        ("foo@x.com/bar", "domain"),
        // Deliberate deviation: distribution accepts this with an empty domain.
        ("foo_bar.com/app", "domain"),
        ("foo:", "tag"),
        ("foo:-tag", "tag"),
        ("foo:.tag", "tag"),
        ("foo:tag@", "digest-malformed"),
    ];
    let all = owned
        .iter()
        .map(|(i, k)| (i.as_str(), *k))
        .chain(cases.iter().copied());
    for (input, expected) in all {
        match ImageRef::parse(input) {
            Ok(r) => panic!("{input:?} should be rejected ({expected}), parsed as {r:?}"),
            Err(e) => {
                assert_eq!(kind(&e), expected, "{input:?}: {e}");
                let msg = e.to_string();
                let prefix = format!("invalid image reference {input:?}: ");
                assert!(
                    msg.starts_with(&prefix),
                    "{msg:?} should start with {prefix:?}"
                );
            }
        }
    }
}

#[test]
fn tag_length_limit() {
    let ok = format!("a:{}", "t".repeat(128));
    assert_eq!(parse_ok(&ok).tag().map(str::len), Some(128));
    // 255-byte path accepted, including the implied "library/" prefix.
    let name = "a".repeat(247);
    assert_eq!(parse_ok(&name).path().len(), 255);
}

#[test]
fn error_messages_name_input_and_problem() {
    let cases = [
        (
            "docker/Docker",
            "invalid image reference \"docker/Docker\": repository name must be lowercase",
        ),
        ("", "invalid image reference \"\": reference is empty"),
        (
            "nginx latest",
            "invalid image reference \"nginx latest\": invalid character ' ' at byte offset 5",
        ),
        (
            "nginx\n",
            "invalid image reference \"nginx\\n\": invalid character '\\n' at byte offset 5",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(ImageRef::parse(input).unwrap_err().to_string(), want);
    }
    let msg = ImageRef::parse("a@sha256:abc").unwrap_err().to_string();
    assert!(
        msg.contains("\"a@sha256:abc\"") && msg.contains("64 hex characters, got 3"),
        "{msg}"
    );
    let msg = ImageRef::parse("a@md5:abc").unwrap_err().to_string();
    assert!(
        msg.contains("unsupported digest algorithm \"md5\""),
        "{msg}"
    );
    let msg = ImageRef::parse(H64).unwrap_err().to_string();
    assert!(
        msg.contains("cannot specify 64-byte hexadecimal strings"),
        "{msg}"
    );
    let msg = "sha256:XYZ".parse::<Digest>().unwrap_err().to_string();
    assert_eq!(
        msg,
        "invalid digest \"sha256:XYZ\": encoded part contains non-hex character 'X'"
    );
}

/// (input, normalized(), familiar()) — TestParseRepositoryInfo / TestParseDockerRef /
/// TestParseAnyReference equivalents.
#[test]
fn normalized_and_familiar_forms() {
    let d = D1;
    let owned = [
        (
            format!("busybox:latest@{d}"),
            format!("docker.io/library/busybox:latest@{d}"),
            format!("busybox:latest@{d}"),
        ),
        (
            format!("busybox@{d}"),
            format!("docker.io/library/busybox@{d}"),
            format!("busybox@{d}"),
        ),
        (
            format!("index.docker.io/library/redis@{d}"),
            format!("docker.io/library/redis@{d}"),
            format!("redis@{d}"),
        ),
        (
            format!("dmcgowan/myapp@{d}"),
            format!("docker.io/dmcgowan/myapp@{d}"),
            format!("dmcgowan/myapp@{d}"),
        ),
        (
            format!("host:5000/a/b:v1@{d}"),
            format!("host:5000/a/b:v1@{d}"),
            format!("host:5000/a/b:v1@{d}"),
        ),
        (
            format!("registry.example.com/a@{d}"),
            format!("registry.example.com/a@{d}"),
            format!("registry.example.com/a@{d}"),
        ),
        (
            format!("gcr.io/library/busybox:latest@{d}"),
            format!("gcr.io/library/busybox:latest@{d}"),
            format!("gcr.io/library/busybox:latest@{d}"),
        ),
    ];
    #[rustfmt::skip]
    let cases: &[(&str, &str, &str)] = &[
        ("nginx", "docker.io/library/nginx:latest", "nginx"),
        ("nginx:1.2", "docker.io/library/nginx:1.2", "nginx:1.2"),
        ("library/nginx", "docker.io/library/nginx:latest", "nginx"),
        ("docker.io/nginx", "docker.io/library/nginx:latest", "nginx"),
        ("docker.io/library/nginx:latest", "docker.io/library/nginx:latest", "nginx:latest"),
        ("index.docker.io/library/ubuntu-12.04-base", "docker.io/library/ubuntu-12.04-base:latest", "ubuntu-12.04-base"),
        ("user/app", "docker.io/user/app:latest", "user/app"),
        ("user/app:1", "docker.io/user/app:1", "user/app:1"),
        ("index.docker.io/fooo/bar", "docker.io/fooo/bar:latest", "fooo/bar"),
        ("nonlibrary/ubuntu", "docker.io/nonlibrary/ubuntu:latest", "nonlibrary/ubuntu"),
        ("library/foo/bar", "docker.io/library/foo/bar:latest", "library/foo/bar"),
        ("docker.io/library/foo/bar", "docker.io/library/foo/bar:latest", "library/foo/bar"),
        ("localhost/fooo/bar", "localhost/fooo/bar:latest", "localhost/fooo/bar"),
        ("localhost:5000/a:v1", "localhost:5000/a:v1", "localhost:5000/a:v1"),
        ("LOCALDOMAIN/fooo", "LOCALDOMAIN/fooo:latest", "LOCALDOMAIN/fooo"),
        ("FOO/bar", "FOO/bar:latest", "FOO/bar"),
        ("127.0.0.1:8000/private/moonbase", "127.0.0.1:8000/private/moonbase:latest", "127.0.0.1:8000/private/moonbase"),
        ("example.com:8000/privatebasee", "example.com:8000/privatebasee:latest", "example.com:8000/privatebasee"),
        ("gcr.io/library/busybox", "gcr.io/library/busybox:latest", "gcr.io/library/busybox"),
        ("[::1]:5000/repo:tag", "[::1]:5000/repo:tag", "[::1]:5000/repo:tag"),
    ];
    let all = owned
        .iter()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
        .chain(cases.iter().copied());
    for (input, normalized, familiar) in all {
        let r = parse_ok(input);
        assert_eq!(r.normalized(), normalized, "normalized of {input:?}");
        assert_eq!(r.to_string(), normalized, "Display of {input:?}");
        assert_eq!(r.familiar(), familiar, "familiar of {input:?}");
        // Both forms parse back to the same repository, tag and digest.
        assert_eq!(
            parse_ok(&r.familiar()),
            r,
            "familiar round trip of {input:?}"
        );
        let again = parse_ok(&r.normalized());
        assert_eq!(again.repository(), r.repository());
        assert_eq!(again.tag(), r.tag_or_latest());
        assert_eq!(again.digest(), r.digest());
        assert_eq!(again.normalized(), normalized);
    }
}

#[test]
fn familiar_is_ambiguous_for_domain_like_hub_namespaces() {
    // Same as docker's FamiliarString: "docker.io/a.b/c" familiarises to "a.b/c",
    // which reads back as registry "a.b". normalized() has no such ambiguity.
    let r = parse_ok("docker.io/a.b/c");
    assert_eq!(r.familiar(), "a.b/c");
    assert_eq!(parse_ok(&r.familiar()).domain(), "a.b");
    assert_eq!(parse_ok(&r.normalized()).repository(), "docker.io/a.b/c");
}

#[test]
fn tag_or_latest_and_with_digest() {
    let digest: Digest = D1.parse().unwrap();
    assert_eq!(parse_ok("nginx").tag_or_latest(), Some("latest"));
    assert_eq!(parse_ok("nginx").tag(), None);
    assert_eq!(parse_ok("nginx:1").tag_or_latest(), Some("1"));
    assert_eq!(parse_ok(&format!("nginx@{D1}")).tag_or_latest(), None);
    assert_eq!(
        parse_ok(&format!("nginx:1@{D1}")).tag_or_latest(),
        Some("1")
    );

    let pinned = parse_ok("nginx:1.25").with_digest(digest.clone());
    assert_eq!(pinned.tag(), Some("1.25"));
    assert_eq!(pinned.digest(), Some(&digest));
    assert_eq!(
        pinned.normalized(),
        format!("docker.io/library/nginx:1.25@{D1}")
    );
    let pinned = parse_ok("nginx").with_digest(digest.clone());
    assert_eq!(pinned.normalized(), format!("docker.io/library/nginx@{D1}"));
    assert_eq!(pinned.tag_or_latest(), None);
    assert_eq!(pinned.repository(), "docker.io/library/nginx");
}

#[test]
fn digests() {
    let d: Digest = D1.parse().unwrap();
    assert_eq!(d.algorithm(), DigestAlgorithm::Sha256);
    assert_eq!(d.hex(), D1.trim_start_matches("sha256:"));
    assert_eq!(d.to_string(), D1);
    let sha512 = format!("sha512:{}", "0a".repeat(64));
    let d: Digest = sha512.parse().unwrap();
    assert_eq!(
        (d.algorithm(), d.hex().len()),
        (DigestAlgorithm::Sha512, 128)
    );
    assert_eq!(d.to_string(), sha512);

    let raw: Vec<u8> = (0u8..32).map(|i| i.wrapping_mul(37) ^ 0xa5).collect();
    let d = Digest::sha256_from_bytes(&raw).unwrap();
    let expected: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(d.hex(), expected);
    assert_eq!(d.to_string().parse::<Digest>(), Ok(d));
    assert_eq!(Digest::sha256_from_bytes(&[0; 31]), None);
    assert_eq!(Digest::sha256_from_bytes(&[0; 64]), None);
    assert_eq!(Digest::sha256_from_bytes(&[]), None);

    let bad = [
        ("", "digest-malformed"),
        ("sha256", "digest-malformed"),
        (":abc", "digest-malformed"),
        ("sha256:", "digest-malformed"),
        ("1sha:abc", "digest-malformed"),
        ("sha256+:ab", "digest-malformed"),
        ("md5:d41d8cd98f00b204e9800998ecf8427e", "digest-unsupported"),
        ("sha384:ab", "digest-unsupported"),
        ("SHA256:ab", "digest-unsupported"),
        ("sha256:abc", "digest-length"),
        (
            "sha512:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
            "digest-length",
        ),
        (
            "sha256:FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
            "digest-uppercase",
        ),
        (
            "sha256: ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
            "digest-nonhex",
        ),
        (
            "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffé",
            "digest-nonhex",
        ),
    ];
    for (input, expected) in bad {
        let e = input.parse::<Digest>().unwrap_err();
        assert_eq!(kind(&e), expected, "{input:?}: {e}");
        assert!(
            e.to_string()
                .starts_with(&format!("invalid digest {input:?}: ")),
            "{e}"
        );
    }
}

/// Small deterministic PRNG (xorshift64*), enough for a no-panic sweep.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n as u64)).unwrap()
    }
}

/// Checks the invariants every successfully parsed reference must satisfy.
fn check_invariants(input: &str) {
    let Ok(r) = ImageRef::parse(input) else {
        return;
    };
    assert!(!r.domain().is_empty() && !r.path().is_empty(), "{input:?}");
    assert!(r.path().len() <= REPOSITORY_PATH_MAX_LEN, "{input:?}");
    let again = ImageRef::parse(&r.normalized())
        .unwrap_or_else(|e| panic!("normalized form of {input:?} must parse: {e}"));
    assert_eq!(again.normalized(), r.normalized(), "{input:?}");
    assert_eq!(again.repository(), r.repository(), "{input:?}");
    let first = r.path().split('/').next().unwrap_or_default();
    let hub_namespace_looks_like_domain =
        r.domain() == DEFAULT_DOMAIN && (first.contains('.') || first == LOCALHOST);
    if !hub_namespace_looks_like_domain {
        assert_eq!(ImageRef::parse(&r.familiar()).as_ref(), Ok(&r), "{input:?}");
    }
}

#[test]
fn malformed_inputs_never_panic() {
    let seeds = [
        format!("[2001:db8::1]:5000/team_a/app__x.y--z:v1.2-rc_3@{D1}"),
        format!("index.docker.io/library/busybox:latest@{D2}"),
        format!("Registry.Example.com:443/a/b/c@sha512:{}", "ab".repeat(64)),
        format!("localhost/{}:{}", "x".repeat(250), "t".repeat(130)),
        "docker.io/library/".to_owned(),
    ];
    // Every prefix, and every single-byte deletion, of a few long references.
    for seed in &seeds {
        for i in 0..=seed.len() {
            if let Some(prefix) = seed.get(..i) {
                check_invariants(prefix);
            }
            if let (Some(a), Some(b)) = (seed.get(..i), seed.get(i + 1..)) {
                check_invariants(&format!("{a}{b}"));
            }
        }
    }
    let alphabet: Vec<char> = "abcdefxyzABCFXZ0123456789._-/:@+[]% \n\u{e9}\u{1f433}sha256"
        .chars()
        .collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20_000 {
        // Grammar-flavoured strings...
        let len = rng.below(80);
        let s: String = (0..len)
            .map(|_| {
                alphabet
                    .get(rng.below(alphabet.len()))
                    .copied()
                    .unwrap_or('a')
            })
            .collect();
        check_invariants(&s);
        // ...mutations of valid references...
        let seed = seeds.get(rng.below(seeds.len())).unwrap();
        let mut chars: Vec<char> = seed.chars().collect();
        for _ in 0..=rng.below(3) {
            let at = rng.below(chars.len() + 1);
            let c = alphabet
                .get(rng.below(alphabet.len()))
                .copied()
                .unwrap_or('a');
            match rng.below(3) {
                0 => chars.insert(at, c),
                1 if at < chars.len() => chars[at] = c,
                _ if at < chars.len() => {
                    chars.remove(at);
                }
                _ => {}
            }
        }
        check_invariants(&chars.into_iter().collect::<String>());
        // ...and raw bytes.
        let bytes: Vec<u8> = (0..rng.below(64))
            .map(|_| (rng.next() >> 24) as u8)
            .collect();
        check_invariants(&String::from_utf8_lossy(&bytes));
        let _ = std::str::from_utf8(&bytes).map(|s| s.parse::<Digest>());
    }
}

#[test]
fn registry_aliases_are_one_registry() {
    for (input, normalized) in [
        (
            "registry.example.com:443/shop/app:v1",
            "registry.example.com/shop/app:v1",
        ),
        (
            "registry.example.com:0443/shop/app:v1",
            "registry.example.com/shop/app:v1",
        ),
        (
            "Registry.Example.COM/shop/app:v1",
            "registry.example.com/shop/app:v1",
        ),
        (
            "REGISTRY.example.com:443/shop/app",
            "registry.example.com/shop/app:latest",
        ),
        (
            "registry.example.com:4443/shop/app:v1",
            "registry.example.com:4443/shop/app:v1",
        ),
        (
            "registry.example.com:5443/shop/app:v1",
            "registry.example.com:5443/shop/app:v1",
        ),
        (
            "index.docker.io/library/nginx:1",
            "docker.io/library/nginx:1",
        ),
        (
            "registry-1.docker.io/library/nginx:1",
            "docker.io/library/nginx:1",
        ),
        ("registry-1.docker.io/nginx:1", "docker.io/library/nginx:1"),
        (
            "Registry-1.Docker.IO:443/nginx",
            "docker.io/library/nginx:latest",
        ),
        ("docker.io:443/team/app:1", "docker.io/team/app:1"),
        ("index.docker.io:443/team/app:1", "docker.io/team/app:1"),
        ("[::1]:443/a:v1", "[::1]/a:v1"),
        ("127.0.0.1:443/a:v1", "127.0.0.1/a:v1"),
    ] {
        let r = parse_ok(input);
        assert_eq!(r.normalized(), normalized, "{input}");
        assert_eq!(
            r.repository(),
            normalized
                .rsplit_once(':')
                .map_or(normalized, |(repo, _)| repo),
            "the GUN of {input}"
        );
    }
}

#[test]
fn a_reference_one_past_the_length_limit_is_refused() {
    let limit = crate::limits::LIMITS.reference_bytes;
    let at_limit = format!("r.example/{}", "a".repeat(200));
    let tag_room = limit - at_limit.len() - 1;
    let ok = format!("{at_limit}:{}", "t".repeat(tag_room.min(128)));
    assert!(ok.len() <= limit);
    parse_ok(&ok);
    // A path of 5 components of 200 bytes would be too long anyway; build exactly limit+1 bytes
    // of otherwise valid characters and check the reason names the limit.
    let long = "a".repeat(limit + 1);
    let e = ImageRef::parse(&long).unwrap_err();
    assert_eq!(kind(&e), "reference-too-long", "{e}");
    assert!(e.to_string().contains(&limit.to_string()), "{e}");
    assert!(
        e.to_string().len() < 200,
        "the reason does not echo the input"
    );
    let exactly = format!("r.example/a@sha256:{}", "0".repeat(64));
    let padded = format!("{}{exactly}", "x".repeat(limit - exactly.len()));
    assert_eq!(padded.len(), limit);
    assert!(
        ImageRef::parse(&padded).is_ok(),
        "{limit} bytes exactly are accepted"
    );
}

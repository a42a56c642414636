//! Image references: the one place that turns a Pod's `image:` string into a
//! structured, normalised [`ImageRef`] (domain, repository path, tag, digest),
//! and the one place that parses content digests ([`Digest`]).
//!
//! Parsing mirrors `ParseNormalizedNamed` from `github.com/distribution/reference`
//! (the code containerd, the kubelet and the docker CLI use), so that the
//! repository we check trust for is the repository the runtime will pull:
//!
//! ```text
//! reference        := name [ ":" tag ] [ "@" digest ]
//! name             := [domain "/"] path
//! domain           := host [":" port]           ; port := [0-9]+
//! host             := domain-name | "[" [a-fA-F0-9:]+ "]"
//! domain-name      := domain-component ("." domain-component)*
//! domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
//! path             := path-component ("/" path-component)*   ; at most 255 bytes
//! path-component   := [a-z0-9]+ (separator [a-z0-9]+)*
//! separator        := "." | "_" | "__" | "-"+
//! tag              := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//! digest           := ("sha256" ":" [a-f0-9]{64}) | ("sha512" ":" [a-f0-9]{128})
//! ```
//!
//! Normalisation (docker's "familiar" names): the first `/`-separated element is
//! the domain when it contains `.` or `:`, is `localhost`, or has an upper-case
//! letter; otherwise the domain is `docker.io`. `index.docker.io` is an alias of
//! `docker.io`, and single-component Docker Hub names get the `library/` prefix.
//! A bare 64-hex-character string is rejected as ambiguous with an image ID.
//!
//! Deliberate differences from distribution/reference:
//! * a first element that was chosen as the domain (it has `.`, `:` or upper
//!   case) but is not a valid domain is an error; distribution instead silently
//!   re-reads it as a path with an *empty* domain (`foo_bar.com/app`);
//! * exactly `sha256` and `sha512` digests are accepted, as if both were the
//!   registered go-digest algorithms (Go accepts `sha512` only when
//!   `crypto/sha512` is linked in; `sha384` and others are "unsupported" here);
//! * an upper-case digest algorithm (`@SHA256:…`) is reported as unsupported
//!   rather than as an upper-case repository name.
//!
//! As in distribution, the domain keeps its case (`Registry.Example.com` is not
//! folded), and the 255-byte limit applies to the path alone, not the domain.

use std::fmt;
use std::str::FromStr;

/// Docker Hub's canonical domain.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// The tag docker pulls when a reference has neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
/// Maximum length in bytes of a repository path (excluding the domain).
pub const REPOSITORY_PATH_MAX_LEN: usize = 255;

const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
const LOCALHOST: &str = "localhost";
const TAG_MAX_LEN: usize = 128;

/// A digest algorithm this crate accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DigestAlgorithm {
    /// `sha256`, 64 hex characters.
    Sha256,
    /// `sha512`, 128 hex characters.
    Sha512,
}

impl DigestAlgorithm {
    /// The algorithm's name as written in a digest string.
    pub fn as_str(self) -> &'static str {
        match self {
            DigestAlgorithm::Sha256 => "sha256",
            DigestAlgorithm::Sha512 => "sha512",
        }
    }

    /// Number of hex characters in an encoded digest of this algorithm.
    pub fn hex_len(self) -> usize {
        match self {
            DigestAlgorithm::Sha256 => 64,
            DigestAlgorithm::Sha512 => 128,
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "sha256" => Some(DigestAlgorithm::Sha256),
            "sha512" => Some(DigestAlgorithm::Sha512),
            _ => None,
        }
    }
}

impl fmt::Display for DigestAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A validated content digest: algorithm plus lowercase hex.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Digest {
    algorithm: DigestAlgorithm,
    hex: String,
}

impl Digest {
    /// The digest algorithm.
    pub fn algorithm(&self) -> DigestAlgorithm {
        self.algorithm
    }

    /// The encoded value: lowercase hex of exactly `algorithm().hex_len()` characters.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// A sha256 digest from a raw 32-byte hash value; `None` for any other length.
    pub fn sha256_from_bytes(raw: &[u8]) -> Option<Digest> {
        const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";
        if raw.len() != 32 {
            return None;
        }
        let mut hex = String::with_capacity(64);
        for byte in raw {
            for nibble in [byte >> 4, byte & 0x0f] {
                hex.push(char::from(*HEX_DIGITS.get(usize::from(nibble))?));
            }
        }
        Some(Digest {
            algorithm: DigestAlgorithm::Sha256,
            hex,
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex)
    }
}

impl FromStr for Digest {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_digest(s).map_err(|problem| ReferenceError::InvalidDigest {
            digest: s.to_owned(),
            problem,
        })
    }
}

/// What is wrong with a digest string.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DigestProblem {
    /// Not of the form `<algorithm>:<hex>`.
    #[error("expected <algorithm>:<hex>, e.g. sha256:<64 hex characters>")]
    Malformed,
    /// A syntactically valid algorithm other than sha256/sha512.
    #[error("unsupported digest algorithm {0:?} (supported: sha256, sha512)")]
    UnsupportedAlgorithm(String),
    /// The encoded part contains something other than hex digits.
    #[error("encoded part contains non-hex character {0:?}")]
    NonHexCharacter(char),
    /// The encoded part has the wrong length for the algorithm.
    #[error("a {algorithm} digest must have exactly {expected} hex characters, got {actual}")]
    WrongLength {
        /// The digest's algorithm.
        algorithm: DigestAlgorithm,
        /// Required number of hex characters.
        expected: usize,
        /// Number of characters found.
        actual: usize,
    },
    /// The encoded part uses upper-case hex, which digests never do.
    #[error("hex must be lowercase")]
    UppercaseHex,
}

/// What is wrong with one `/`-separated component of a repository path.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathProblem {
    /// `//`, or a leading or trailing `/`.
    #[error("path components must not be empty (check for a leading, trailing or doubled '/')")]
    Empty,
    /// A character outside `[a-z0-9._-]`.
    #[error("character {0:?} is not allowed (only a-z, 0-9, '.', '_' and '-')")]
    BadCharacter(char),
    /// Starts or ends with a separator.
    #[error("must start and end with a lowercase letter or digit")]
    BadEdge,
    /// A separator other than `.`, `_`, `__` or a run of `-`.
    #[error("separator {0:?} is not allowed (use one '.', one or two '_', or one or more '-')")]
    BadSeparator(String),
}

/// Why a string is not a valid image reference (or digest). Every message
/// names the offending input and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// The input is the empty string.
    #[error("invalid image reference \"\": reference is empty")]
    Empty,
    /// A character no part of a reference may contain (whitespace, control, non-ASCII, `$`...).
    #[error(
        "invalid image reference {reference:?}: invalid character {character:?} at byte offset {offset}"
    )]
    InvalidCharacter {
        /// The input.
        reference: String,
        /// The first offending character.
        character: char,
        /// Its byte offset in the input.
        offset: usize,
    },
    /// A bare 64-hex-character string, which could be an image ID.
    #[error(
        "invalid image reference {reference:?}: cannot specify 64-byte hexadecimal strings (ambiguous with an image ID; qualify it, e.g. docker.io/library/<name>)"
    )]
    AmbiguousIdentifier {
        /// The input.
        reference: String,
    },
    /// Nothing before the tag or digest (`:tag`, `@sha256:…`, `docker.io/`).
    #[error(
        "invalid image reference {reference:?}: repository name must have at least one component"
    )]
    MissingName {
        /// The input.
        reference: String,
    },
    /// Upper-case letters in the repository path.
    #[error("invalid image reference {reference:?}: repository name must be lowercase")]
    NameContainsUppercase {
        /// The input.
        reference: String,
    },
    /// The registry part is not a hostname, IPv4 or bracketed IPv6 address with optional port.
    #[error(
        "invalid image reference {reference:?}: registry domain {domain:?} is not a valid hostname, IPv4 address or [IPv6] address with an optional numeric port"
    )]
    InvalidDomain {
        /// The input.
        reference: String,
        /// The domain as written.
        domain: String,
    },
    /// A repository path component breaks the path grammar.
    #[error(
        "invalid image reference {reference:?}: invalid repository path component {component:?}: {problem}"
    )]
    InvalidPathComponent {
        /// The input.
        reference: String,
        /// The offending component.
        component: String,
        /// What is wrong with it.
        problem: PathProblem,
    },
    /// The repository path (after normalisation, excluding the domain) is too long.
    #[error(
        "invalid image reference {reference:?}: repository name must not be more than 255 characters (the repository path has {length})"
    )]
    NameTooLong {
        /// The input.
        reference: String,
        /// Length of the normalised path.
        length: usize,
    },
    /// The tag breaks `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
    #[error(
        "invalid image reference {reference:?}: invalid tag {tag:?}: a tag is 1 to 128 characters from [A-Za-z0-9_.-] and must not start with '.' or '-'"
    )]
    InvalidTag {
        /// The input.
        reference: String,
        /// The tag as written.
        tag: String,
    },
    /// The digest part of a reference is invalid.
    #[error("invalid image reference {reference:?}: invalid digest {digest:?}: {problem}")]
    InvalidReferenceDigest {
        /// The input.
        reference: String,
        /// The digest as written.
        digest: String,
        /// What is wrong with it.
        problem: DigestProblem,
    },
    /// A standalone digest string (`Digest::from_str`) is invalid.
    #[error("invalid digest {digest:?}: {problem}")]
    InvalidDigest {
        /// The input.
        digest: String,
        /// What is wrong with it.
        problem: DigestProblem,
    },
}

/// A parsed, normalised image reference.
///
/// `domain` and `path` are always present (Docker Hub names are expanded);
/// `tag` and `digest` are exactly as written, with no defaulting.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImageRef {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl ImageRef {
    /// Parses `s` with docker's `ParseNormalizedNamed` semantics: `nginx`,
    /// `library/nginx:1`, `user/app@sha256:…`, `localhost:5000/a`,
    /// `index.docker.io/x`, `[::1]:5000/a:t@sha256:…`.
    ///
    /// # Errors
    /// A [`ReferenceError`] naming the input and the first rule it breaks.
    pub fn parse(s: &str) -> Result<ImageRef, ReferenceError> {
        let reference = || s.to_owned();
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        // Every character outside this set is rejected by the grammar wherever it appears.
        if let Some((offset, character)) = s.char_indices().find(|&(_, c)| !is_reference_char(c)) {
            return Err(ReferenceError::InvalidCharacter {
                reference: reference(),
                character,
                offset,
            });
        }
        if s.len() == 64 && s.bytes().all(is_lower_hex) {
            return Err(ReferenceError::AmbiguousIdentifier {
                reference: reference(),
            });
        }

        let (domain, remainder, official) = split_docker_domain(s);
        // Neither the path nor the tag can contain '@', so the first '@' starts the digest;
        // the tag separator is a ':' with no '/' after it (a ':' before a '/' is a port).
        let (name_and_tag, digest) = match remainder.split_once('@') {
            Some((name_and_tag, digest)) => (name_and_tag, Some(digest)),
            None => (remainder, None),
        };
        let (remote, tag) = match name_and_tag.rsplit_once(':') {
            Some((remote, tag)) if !tag.contains('/') => (remote, Some(tag)),
            _ => (name_and_tag, None),
        };

        if remote.is_empty() {
            return Err(ReferenceError::MissingName {
                reference: reference(),
            });
        }
        if remote.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ReferenceError::NameContainsUppercase {
                reference: reference(),
            });
        }
        if !is_valid_domain(domain) {
            return Err(ReferenceError::InvalidDomain {
                reference: reference(),
                domain: domain.to_owned(),
            });
        }
        for component in remote.split('/') {
            check_path_component(component).map_err(|problem| {
                ReferenceError::InvalidPathComponent {
                    reference: reference(),
                    component: component.to_owned(),
                    problem,
                }
            })?;
        }
        if let Some(tag) = tag
            && !is_valid_tag(tag)
        {
            return Err(ReferenceError::InvalidTag {
                reference: reference(),
                tag: tag.to_owned(),
            });
        }
        let path = if official {
            format!("{OFFICIAL_REPO_PREFIX}{remote}")
        } else {
            remote.to_owned()
        };
        if path.len() > REPOSITORY_PATH_MAX_LEN {
            return Err(ReferenceError::NameTooLong {
                reference: reference(),
                length: path.len(),
            });
        }
        let digest = match digest {
            Some(digest) => Some(parse_digest(digest).map_err(|problem| {
                ReferenceError::InvalidReferenceDigest {
                    reference: reference(),
                    digest: digest.to_owned(),
                    problem,
                }
            })?),
            None => None,
        };

        Ok(ImageRef {
            domain: domain.to_owned(),
            path,
            tag: tag.map(str::to_owned),
            digest,
        })
    }

    /// Registry domain, with port if any: `docker.io`, `127.0.0.1:5000`, `[::1]:5000`, `localhost`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Repository path within the registry: `library/nginx`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// `domain/path`, e.g. `docker.io/library/nginx`; also the Notary GUN.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The tag as written, if any (no defaulting).
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest as written, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The tag docker would pull by: the tag, or `latest` when there is neither
    /// tag nor digest; `None` for a digest-only reference.
    pub fn tag_or_latest(&self) -> Option<&str> {
        match (&self.tag, &self.digest) {
            (Some(tag), _) => Some(tag),
            (None, None) => Some(DEFAULT_TAG),
            (None, Some(_)) => None,
        }
    }

    /// The fully qualified form used for policy matching:
    /// `docker.io/library/nginx:latest`, `host:5000/a/b:v1@sha256:…`, `host/a@sha256:…`.
    /// `:latest` is added only when there is neither tag nor digest (docker's `TagNameOnly`).
    pub fn normalized(&self) -> String {
        let mut out = self.repository();
        self.push_suffix(&mut out, self.tag_or_latest());
        out
    }

    /// docker's `FamiliarString`: `docker.io/` and a single-level `library/` are
    /// dropped (`nginx:1.2`, `user/app`, `localhost:5000/a:v1`); no tag defaulting.
    pub fn familiar(&self) -> String {
        let mut out = if self.domain == DEFAULT_DOMAIN {
            match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
                Some(name) if !name.contains('/') => name.to_owned(),
                _ => self.path.clone(),
            }
        } else {
            self.repository()
        };
        self.push_suffix(&mut out, self.tag());
        out
    }

    /// The same reference pinned to `digest`; the tag (if any) is kept.
    pub fn with_digest(&self, digest: Digest) -> ImageRef {
        ImageRef {
            digest: Some(digest),
            ..self.clone()
        }
    }

    fn push_suffix(&self, out: &mut String, tag: Option<&str>) {
        if let Some(tag) = tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(&digest.to_string());
        }
    }
}

impl FromStr for ImageRef {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImageRef::parse(s)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.normalized())
    }
}

/// distribution's `splitDockerDomain`: returns `(domain, rest, add_library_prefix)`
/// where `rest` still carries any `:tag` / `@digest`.
fn split_docker_domain(name: &str) -> (&str, &str, bool) {
    let (domain, rest) = match name.split_once('/') {
        // Single element ("familiar" name such as "ubuntu:22.04"): never a domain.
        None => (DEFAULT_DOMAIN, name),
        Some((first, rest)) => {
            if first == LOCALHOST {
                (first, rest)
            } else if first == LEGACY_DEFAULT_DOMAIN {
                (DEFAULT_DOMAIN, rest)
            } else if first.contains(['.', ':']) || first.bytes().any(|b| b.is_ascii_uppercase()) {
                // Looks like a hostname or IP address; upper case is never valid in a
                // path, so distribution treats it as a domain too ("LOCALDOMAIN/x").
                (first, rest)
            } else {
                (DEFAULT_DOMAIN, name)
            }
        }
    };
    let official = domain == DEFAULT_DOMAIN && !rest.contains('/');
    (domain, rest, official)
}

fn is_reference_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':' | '@' | '+' | '[' | ']')
}

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

/// `host [":" port]`, host being a domain name, IPv4 address or `[IPv6]`.
fn is_valid_domain(domain: &str) -> bool {
    let (host_ok, port) = match domain.strip_prefix('[') {
        Some(bracketed) => match bracketed.split_once(']') {
            Some((ipv6, after)) => {
                let ok =
                    !ipv6.is_empty() && ipv6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
                let port = match after.strip_prefix(':') {
                    Some(port) => Some(port),
                    None if after.is_empty() => None,
                    None => return false,
                };
                (ok, port)
            }
            None => return false,
        },
        None => match domain.split_once(':') {
            Some((host, port)) => (is_valid_domain_name(host), Some(port)),
            None => (is_valid_domain_name(domain), None),
        },
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

fn is_valid_domain_name(name: &str) -> bool {
    name.split('.').all(|component| {
        let bytes = component.as_bytes();
        match (bytes.first(), bytes.last()) {
            (Some(first), Some(last)) => {
                first.is_ascii_alphanumeric()
                    && last.is_ascii_alphanumeric()
                    && bytes
                        .iter()
                        .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
            }
            _ => false,
        }
    })
}

fn check_path_component(component: &str) -> Result<(), PathProblem> {
    let is_alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    if component.is_empty() {
        return Err(PathProblem::Empty);
    }
    if let Some(c) = component
        .chars()
        .find(|&c| !(is_alnum(c) || matches!(c, '.' | '_' | '-')))
    {
        return Err(PathProblem::BadCharacter(c));
    }
    let starts_ok = component.chars().next().is_some_and(is_alnum);
    let ends_ok = component.chars().next_back().is_some_and(is_alnum);
    if !(starts_ok && ends_ok) {
        return Err(PathProblem::BadEdge);
    }
    // With alphanumeric ends, every separator run sits between two alphanumeric runs.
    for run in component.split(is_alnum).filter(|run| !run.is_empty()) {
        if !matches!(run, "." | "_" | "__") && !run.bytes().all(|b| b == b'-') {
            return Err(PathProblem::BadSeparator(run.to_owned()));
        }
    }
    Ok(())
}

fn is_valid_tag(tag: &str) -> bool {
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    tag.len() <= TAG_MAX_LEN
        && tag.bytes().next().is_some_and(is_word)
        && tag.bytes().all(|b| is_word(b) || b == b'.' || b == b'-')
}

/// `[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*`
fn is_valid_algorithm_syntax(algorithm: &str) -> bool {
    algorithm.split(['-', '_', '+', '.']).all(|component| {
        component
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic())
            && component.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

fn parse_digest(s: &str) -> Result<Digest, DigestProblem> {
    let Some((name, hex)) = s.split_once(':') else {
        return Err(DigestProblem::Malformed);
    };
    if hex.is_empty() || !is_valid_algorithm_syntax(name) {
        return Err(DigestProblem::Malformed);
    }
    let Some(algorithm) = DigestAlgorithm::from_name(name) else {
        return Err(DigestProblem::UnsupportedAlgorithm(name.to_owned()));
    };
    if let Some(c) = hex.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(DigestProblem::NonHexCharacter(c));
    }
    if hex.len() != algorithm.hex_len() {
        return Err(DigestProblem::WrongLength {
            algorithm,
            expected: algorithm.hex_len(),
            actual: hex.len(),
        });
    }
    if !hex.bytes().all(is_lower_hex) {
        return Err(DigestProblem::UppercaseHex);
    }
    Ok(Digest {
        algorithm,
        hex: hex.to_owned(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    const H64: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
    const D1: &str = "sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa";
    const D2: &str = "sha256:be178c0543eb17f5f3043021c9e5fcf30285e557a4fc309cce97ff9ca6182912";

    fn kind(e: &ReferenceError) -> &'static str {
        use ReferenceError as E;
        match e {
            E::Empty => "empty",
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
            ("Asdf.com/foo/bar", "Asdf.com", "foo/bar", None, None),
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
}

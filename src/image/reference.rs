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
//! letter; otherwise the domain is `docker.io`. Single-component Docker Hub names
//! get the `library/` prefix. A reference longer than `LIMITS.reference_bytes` is
//! refused before it is parsed.
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
//! * the domain names a registry the way the kubelet reaches it, so one registry
//!   has one spelling for policy matching and for the Notary GUN: it is
//!   lower-cased (when it has a `.` or `:`), the default HTTPS port is dropped (`host:443/a` is `host/a`),
//!   and Docker Hub's aliases `index.docker.io` and `registry-1.docker.io` are
//!   `docker.io` (distribution folds only `index.docker.io` and keeps the case).
//!
//! The 255-byte limit applies to the path alone, not the domain.

use std::fmt;
use std::str::FromStr;

use crate::limits::LIMITS;

mod digest;
mod error;

pub use digest::{Digest, DigestAlgorithm, DigestProblem};
use digest::{is_lower_hex, parse_digest};
pub use error::{PathProblem, ReferenceError};

/// Docker Hub's canonical domain.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// The tag docker pulls when a reference has neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
/// Maximum length in bytes of a repository path (excluding the domain).
pub const REPOSITORY_PATH_MAX_LEN: usize = 255;

/// Other names of Docker Hub's registry; references through them are `docker.io` references.
const DOCKER_HUB_ALIASES: [&str; 3] = ["index.docker.io", "registry-1.docker.io", DEFAULT_DOMAIN];
const OFFICIAL_REPO_PREFIX: &str = "library/";
const LOCALHOST: &str = "localhost";
const TAG_MAX_LEN: usize = 128;

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
        if s.len() > LIMITS.reference_bytes {
            return Err(ReferenceError::TooLong {
                length: s.len(),
                limit: LIMITS.reference_bytes,
            });
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
        if !is_valid_domain(&domain) {
            return Err(ReferenceError::InvalidDomain {
                reference: reference(),
                domain: domain.clone(),
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
            domain,
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
fn split_docker_domain(name: &str) -> (String, &str, bool) {
    let (domain, rest) = match name.split_once('/') {
        // Single element ("familiar" name such as "ubuntu:22.04"): never a domain.
        None => (DEFAULT_DOMAIN.to_owned(), name),
        Some((first, rest)) => {
            if first == LOCALHOST {
                (first.to_owned(), rest)
            } else if first.contains(['.', ':']) || first.bytes().any(|b| b.is_ascii_uppercase()) {
                // Looks like a hostname or IP address; upper case is never valid in a
                // path, so distribution treats it as a domain too ("LOCALDOMAIN/x").
                (canonical_domain(first), rest)
            } else {
                (DEFAULT_DOMAIN.to_owned(), name)
            }
        }
    };
    let official = domain == DEFAULT_DOMAIN && !rest.contains('/');
    (domain, rest, official)
}

/// The registry a domain names, as the kubelet reaches it: host names are case-insensitive
/// (lower-cased), the default HTTPS port is dropped (`host:443` is `host`), and Docker Hub's
/// aliases (`index.docker.io`, `registry-1.docker.io`) are `docker.io`. So a host-specific
/// policy pattern cannot be bypassed by spelling the same registry differently.
fn canonical_domain(domain: &str) -> String {
    if !domain.contains(['.', ':']) {
        // A single-label domain chosen for its upper case ("LOCALDOMAIN") keeps it: folded,
        // it would read as a repository path.
        return domain.to_owned();
    }
    let mut host = domain.to_ascii_lowercase();
    if let Some((h, port)) = host.rsplit_once(':')
        && !h.is_empty()
        && (!h.starts_with('[') || h.ends_with(']'))
        && !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.trim_start_matches('0') == "443"
    {
        host.truncate(h.len());
    }
    if DOCKER_HUB_ALIASES.contains(&host.as_str()) {
        return DEFAULT_DOMAIN.to_owned();
    }
    host
}

fn is_reference_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':' | '@' | '+' | '[' | ']')
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests;

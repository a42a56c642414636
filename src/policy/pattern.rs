//! Image patterns (docs/policy-reference.md): parsing with Docker Hub normalisation, anchored glob matching
//! against an [`ImageRef`], and specificity (the length of the literal part before the first
//! wildcard, used to pick the most specific policy).
//!
//! A pattern is split like a reference: `repository[:tag][@digest]`. The repository is
//! normalised as docker normalises names (`nginx` → `docker.io/library/nginx`, `user/app` →
//! `docker.io/user/app`, `index.docker.io` and `registry-1.docker.io` → `docker.io`, `host:443` →
//! `host`; the first component is a registry when
//! it contains `.` or `:`, is `localhost`, or contains `**`) and its registry part is lower-cased.
//! `*` matches any characters except `/`, `**` any characters. The repository must match the
//! image's `domain/path` completely (registry compared case-insensitively); a tag part must match
//! the image's tag (`latest` when it has neither tag nor digest; a digest-only reference has no
//! tag); a digest part must match its digest. A pattern with neither matches every tag and
//! digest of the repositories it matches.

use std::fmt;
use std::str::FromStr;

use crate::image::reference::{Digest, ImageRef};

/// The registry Docker Hub names expand to.
const DOCKER_HUB: &str = "docker.io";
const LEGACY_DOCKER_HUB: &str = "index.docker.io";
const OFFICIAL_PREFIX: &str = "library/";

/// A parsed image pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImagePattern {
    text: String,
    normalized: String,
    repository: Glob,
    tag: Option<Glob>,
    digest: Option<Glob>,
    specificity: usize,
}

/// Why a pattern is invalid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid image pattern {pattern:?}: {problem}")]
pub struct PatternError {
    /// The pattern as written.
    pub pattern: String,
    /// What is wrong with it.
    pub problem: PatternProblem,
}

/// The rule a pattern breaks.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PatternProblem {
    /// Nothing was written.
    #[error("the pattern is empty")]
    Empty,
    /// A character no reference can hold.
    #[error("character {character:?} at offset {offset} cannot appear in an image reference")]
    InvalidCharacter {
        /// The character.
        character: char,
        /// Its byte offset.
        offset: usize,
    },
    /// Three or more `*` in a row.
    #[error("`***` is not a wildcard: use `*` (within a path segment) or `**` (across segments)")]
    TooManyStars,
    /// More than one `@`.
    #[error("more than one `@`")]
    SeveralDigests,
    /// `a//b`, a trailing `/` or a leading `/`.
    #[error("empty path component")]
    EmptyComponent,
    /// Nothing before `:tag` or `@digest`.
    #[error("no repository before the tag or digest")]
    MissingRepository,
    /// The registry part holds a character no registry name can hold.
    #[error("registry {domain:?} may hold only letters, digits, `.`, `-`, `:`, `[`, `]` and `*`")]
    InvalidRegistry {
        /// The registry part.
        domain: String,
    },
    /// A repository path component with upper case or other characters paths cannot hold.
    #[error(
        "repository path component {component:?} may hold only lower-case letters, digits, \
         `.`, `_`, `-` and `*`"
    )]
    InvalidPathComponent {
        /// The component.
        component: String,
    },
    /// A tag part paths cannot hold.
    #[error("tag {tag:?} may hold only letters, digits, `_`, `.`, `-` and `*`")]
    InvalidTag {
        /// The tag part.
        tag: String,
    },
    /// A digest part that is not `algorithm:hex` (wildcards allowed).
    #[error("digest {digest:?} must be `sha256:<64 hex digits>` (wildcards allowed)")]
    InvalidDigest {
        /// The digest part.
        digest: String,
    },
}

impl ImagePattern {
    /// Parses and normalises `text`.
    ///
    /// # Errors
    /// A [`PatternError`] naming the pattern and the rule it breaks.
    pub fn parse(text: &str) -> Result<ImagePattern, PatternError> {
        parse(text).map_err(|problem| PatternError {
            pattern: text.to_owned(),
            problem,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The normalised pattern: `docker.io/library/nginx:1.*`.
    pub fn normalized(&self) -> &str {
        &self.normalized
    }

    /// Length in bytes of the normalised pattern's literal part before its first wildcard (the
    /// whole pattern when it has none). A larger value is more specific.
    pub fn specificity(&self) -> usize {
        self.specificity
    }

    /// True when the pattern has no wildcard (it names one repository, tag or digest).
    pub fn is_exact(&self) -> bool {
        self.specificity == self.normalized.len()
    }

    /// True when `image` matches: repository always, tag and digest when the pattern has them.
    pub fn matches(&self, image: &ImageRef) -> bool {
        let repository = format!("{}/{}", image.domain().to_ascii_lowercase(), image.path());
        if !self.repository.matches(&repository) {
            return false;
        }
        if let Some(tag) = &self.tag {
            match image.tag_or_latest() {
                Some(image_tag) if tag.matches(image_tag) => {}
                _ => return false,
            }
        }
        if let Some(digest) = &self.digest {
            match image.digest() {
                Some(image_digest) if digest.matches(&image_digest.to_string()) => {}
                _ => return false,
            }
        }
        true
    }
}

impl fmt::Display for ImagePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for ImagePattern {
    type Err = PatternError;
    fn from_str(s: &str) -> Result<Self, PatternError> {
        ImagePattern::parse(s)
    }
}

fn is_pattern_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(c, '.' | '_' | '-' | '/' | ':' | '@' | '+' | '[' | ']' | '*')
}

fn parse(text: &str) -> Result<ImagePattern, PatternProblem> {
    if text.is_empty() {
        return Err(PatternProblem::Empty);
    }
    if let Some((offset, character)) = text.char_indices().find(|&(_, c)| !is_pattern_char(c)) {
        return Err(PatternProblem::InvalidCharacter { character, offset });
    }
    if text.contains("***") {
        return Err(PatternProblem::TooManyStars);
    }
    let (name_and_tag, digest) = match text.split_once('@') {
        Some((_, digest)) if digest.contains('@') => return Err(PatternProblem::SeveralDigests),
        Some((name_and_tag, digest)) => (name_and_tag, Some(digest)),
        None => (text, None),
    };
    // As in references, the tag separator is a ':' with no '/' after it (else it is a port).
    let (repository, tag) = match name_and_tag.rsplit_once(':') {
        Some((repository, tag)) if !tag.contains('/') => (repository, Some(tag)),
        _ => (name_and_tag, None),
    };
    if repository.is_empty() {
        return Err(PatternProblem::MissingRepository);
    }
    if repository.split('/').any(str::is_empty) {
        return Err(PatternProblem::EmptyComponent);
    }
    let (domain, path) = split_domain(repository);
    if let Some(domain) = &domain
        && !domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '*'))
    {
        return Err(PatternProblem::InvalidRegistry {
            domain: domain.clone(),
        });
    }
    if let Some(component) = path.split('/').find(|c| {
        !c.chars().all(|ch| {
            ch.is_ascii_lowercase() || ch.is_ascii_digit() || matches!(ch, '.' | '_' | '-' | '*')
        })
    }) {
        return Err(PatternProblem::InvalidPathComponent {
            component: component.to_owned(),
        });
    }
    if let Some(tag) = tag
        && (tag.is_empty()
            || !tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '*')))
    {
        return Err(PatternProblem::InvalidTag {
            tag: tag.to_owned(),
        });
    }
    if let Some(digest) = digest
        && !is_valid_digest_pattern(digest)
    {
        return Err(PatternProblem::InvalidDigest {
            digest: digest.to_owned(),
        });
    }

    let repository = match &domain {
        Some(domain) => format!("{domain}/{path}"),
        None => path,
    };
    let mut normalized = repository.clone();
    if let Some(tag) = tag {
        normalized.push(':');
        normalized.push_str(tag);
    }
    if let Some(digest) = digest {
        normalized.push('@');
        normalized.push_str(digest);
    }
    let specificity = normalized.find('*').unwrap_or(normalized.len());
    Ok(ImagePattern {
        text: text.to_owned(),
        repository: Glob::new(&repository),
        tag: tag.map(Glob::new),
        digest: digest.map(Glob::new),
        normalized,
        specificity,
    })
}

/// Splits a repository pattern into (lower-cased registry, path) the way docker splits names;
/// `None` as registry when the pattern starts with a `**` component that spans registries.
fn split_domain(repository: &str) -> (Option<String>, String) {
    let (domain, path) = match repository.split_once('/') {
        // One component: a Docker Hub official image, unless it is `**`-ish (matches anything).
        None if repository.contains("**") => return (None, repository.to_owned()),
        None => (DOCKER_HUB.to_owned(), repository.to_owned()),
        Some((first, rest)) => {
            let mut lower = first.to_ascii_lowercase();
            // `host:443` is `host`, as image references normalise it.
            if !lower.contains('*') && lower.ends_with(":443") {
                lower.truncate(lower.len() - 4);
            }
            if first.contains("**") {
                return (None, repository.to_owned());
            } else if lower == LEGACY_DOCKER_HUB || lower == "registry-1.docker.io" {
                (DOCKER_HUB.to_owned(), rest.to_owned())
            } else if lower == "localhost"
                || first.contains(['.', ':', '['])
                || first.bytes().any(|b| b.is_ascii_uppercase())
            {
                (lower, rest.to_owned())
            } else {
                (DOCKER_HUB.to_owned(), repository.to_owned())
            }
        }
    };
    let path = if domain == DOCKER_HUB && !path.contains('/') && !path.contains("**") {
        format!("{OFFICIAL_PREFIX}{path}")
    } else {
        path
    };
    (Some(domain), path)
}

fn is_valid_digest_pattern(digest: &str) -> bool {
    if !digest.contains('*') {
        return Digest::from_str(digest).is_ok();
    }
    !digest.is_empty()
        && digest.chars().all(|c| {
            c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || matches!(c, '+' | '.' | '_' | '-' | ':' | '*')
        })
}

/// An anchored glob over ASCII text: `*` never crosses `/`, `**` crosses anything.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Glob {
    tokens: Vec<Token>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Literal(String),
    Star,
    DoubleStar,
}

impl Glob {
    fn new(pattern: &str) -> Glob {
        let mut tokens = Vec::new();
        let mut literal = String::new();
        let mut rest = pattern;
        while let Some(c) = rest.chars().next() {
            if c == '*' {
                if !literal.is_empty() {
                    tokens.push(Token::Literal(std::mem::take(&mut literal)));
                }
                if rest.starts_with("**") {
                    tokens.push(Token::DoubleStar);
                    rest = &rest[2..];
                } else {
                    tokens.push(Token::Star);
                    rest = &rest[1..];
                }
            } else {
                literal.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        if !literal.is_empty() {
            tokens.push(Token::Literal(literal));
        }
        Glob { tokens }
    }

    /// Whole-string match; linear in tokens × text length (no backtracking blow-up).
    fn matches(&self, text: &str) -> bool {
        let bytes = text.as_bytes();
        let n = bytes.len();
        // reach[p]: the tokens so far can consume exactly text[..p].
        let mut reach = vec![false; n + 1];
        reach[0] = true;
        for token in &self.tokens {
            let mut next = vec![false; n + 1];
            match token {
                Token::Literal(lit) => {
                    let lit = lit.as_bytes();
                    for p in (0..=n).filter(|&p| reach[p]) {
                        if bytes[p..].starts_with(lit) {
                            next[p + lit.len()] = true;
                        }
                    }
                }
                Token::Star => {
                    let mut active = false;
                    for p in 0..=n {
                        active |= reach[p];
                        next[p] = active;
                        if p < n && bytes[p] == b'/' {
                            active = false;
                        }
                    }
                }
                Token::DoubleStar => {
                    if let Some(first) = reach.iter().position(|&r| r) {
                        next[first..].fill(true);
                    }
                }
            }
            if !next.contains(&true) {
                return false;
            }
            reach = next;
        }
        reach[n]
    }
}

#[cfg(test)]
mod tests;

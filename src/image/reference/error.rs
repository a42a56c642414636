//! Why a string is not a valid image reference: [`ReferenceError`] (every message names the
//! input and the first rule it breaks) and [`PathProblem`] (one repository path component).

use super::DigestProblem;

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
    /// The reference is longer than `LIMITS.reference_bytes`.
    #[error("invalid image reference: {length} bytes is longer than the limit of {limit} bytes")]
    TooLong {
        /// Length of the input in bytes.
        length: usize,
        /// The limit.
        limit: usize,
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

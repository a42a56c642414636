//! Content digests: [`Digest`] (`sha256:<64 hex>` or `sha512:<128 hex>`), its algorithm and
//! what is wrong with a digest string ([`DigestProblem`]). `ImageRef` parses the digest part of
//! a reference with the same function.

use std::fmt;
use std::str::FromStr;

use super::ReferenceError;

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

/// `[0-9a-f]`: digests are written in lower-case hex.
pub(super) fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
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

/// Parses `<algorithm>:<hex>` (a standalone digest or the digest part of a reference).
pub(super) fn parse_digest(s: &str) -> Result<Digest, DigestProblem> {
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

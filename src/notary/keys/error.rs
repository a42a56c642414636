//! The errors of reading a key ([`KeyError`]) and of checking a signature
//! ([`SignatureError`]). A child of `keys`.

/// Why a key could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key object does not have the shape of a key (the message).
    #[error("malformed key: {0}")]
    Structure(String),
    /// `keyval.public` is not base64 (the message).
    #[error("invalid base64: {0}")]
    Base64(String),
    /// A PEM text or certificate bundle does not decode (the message).
    #[error("invalid PEM: {0}")]
    Pem(String),
    /// The public key material does not parse (the message).
    #[error("invalid public key: {0}")]
    PublicKey(String),
    /// A certificate does not parse (the message).
    #[error("invalid certificate: {0}")]
    Certificate(String),
    /// The key type and the algorithm of its material disagree.
    #[error("a {key_type} key cannot hold a {found} public key")]
    TypeMismatch {
        /// The declared key type.
        key_type: String,
        /// The algorithm found.
        found: String,
    },
    /// A key type or algorithm this verifier does not support (the message).
    #[error("unsupported key: {0}")]
    Unsupported(String),
}

impl KeyError {
    pub(super) fn inner_message(&self) -> String {
        match self {
            KeyError::Structure(m)
            | KeyError::Base64(m)
            | KeyError::Pem(m)
            | KeyError::PublicKey(m)
            | KeyError::Certificate(m)
            | KeyError::Unsupported(m) => m.clone(),
            other => other.to_string(),
        }
    }
}

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// Notary skips signatures with unknown methods.
    #[error("unknown signature method {0:?}")]
    UnknownMethod(String),
    /// A known method this verifier does not support (the method).
    #[error("signature method {0:?} is not supported")]
    UnsupportedMethod(String),
    /// The method does not fit the key type.
    #[error("signature method {method:?} cannot be used with a {key_type:?} key")]
    WrongKeyType {
        /// The signature method.
        method: String,
        /// The key type.
        key_type: String,
    },
    /// The key cannot verify anything (why).
    #[error("unusable key: {0}")]
    UnusableKey(String),
    /// The RSA modulus is too small.
    #[error("RSA key has {bits} bits, at least 2048 are required")]
    RsaKeyTooSmall {
        /// The modulus size.
        bits: usize,
    },
    /// The RSA signature is too short.
    #[error("RSA signature has {len} bytes, at least 256 are required")]
    RsaSignatureTooShort {
        /// Its length in bytes.
        len: usize,
    },
    /// The fixed-size ECDSA signature has the wrong length.
    #[error("ECDSA signature has {actual} bytes, expected {expected}")]
    EcdsaSignatureLength {
        /// The length for the curve.
        expected: usize,
        /// The length found.
        actual: usize,
    },
    /// The Ed25519 signature is not 64 bytes (its length).
    #[error("Ed25519 signature has {0} bytes, expected 64")]
    Ed25519SignatureLength(usize),
    /// The signature does not verify.
    #[error("signature does not verify")]
    Invalid,
}

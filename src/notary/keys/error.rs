//! The errors of reading a key ([`KeyError`]) and of checking a signature
//! ([`SignatureError`]). A child of `keys`.

/// Why a key could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    #[error("malformed key: {0}")]
    Structure(String),
    #[error("invalid base64: {0}")]
    Base64(String),
    #[error("invalid PEM: {0}")]
    Pem(String),
    #[error("invalid public key: {0}")]
    PublicKey(String),
    #[error("invalid certificate: {0}")]
    Certificate(String),
    #[error("a {key_type} key cannot hold a {found} public key")]
    TypeMismatch { key_type: String, found: String },
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
    #[error("signature method {0:?} is not supported")]
    UnsupportedMethod(String),
    #[error("signature method {method:?} cannot be used with a {key_type:?} key")]
    WrongKeyType { method: String, key_type: String },
    #[error("unusable key: {0}")]
    UnusableKey(String),
    #[error("RSA key has {bits} bits, at least 2048 are required")]
    RsaKeyTooSmall { bits: usize },
    #[error("RSA signature has {len} bytes, at least 256 are required")]
    RsaSignatureTooShort { len: usize },
    #[error("ECDSA signature has {actual} bytes, expected {expected}")]
    EcdsaSignatureLength { expected: usize, actual: usize },
    #[error("Ed25519 signature has {0} bytes, expected 64")]
    Ed25519SignatureLength(usize),
    #[error("signature does not verify")]
    Invalid,
}

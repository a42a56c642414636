//! Reading a key object of the metadata: its JSON shape, the material behind each key type
//! (SPKI, certificate bundle, raw Ed25519), the algorithm checks and the TUF key ID. A child of
//! `keys`.

#[allow(clippy::wildcard_imports)]
use super::*;

pub(super) const MIN_RSA_BITS: usize = 2048;
pub(super) const MAX_RSA_BITS: usize = 8192;

/// Reads `(keytype, decoded public)` from a key object. `strict` requires the object shape;
/// otherwise null/absent members take Go's zero values.
pub(super) fn parse_key_json(
    v: &Value,
    strict: bool,
) -> Result<(String, Option<Vec<u8>>), KeyError> {
    let empty = Map::new();
    let obj = match v {
        Value::Object(o) => o,
        Value::Null if !strict => &empty,
        _ => return Err(KeyError::Structure("a key must be a JSON object".into())),
    };
    let keytype = match obj.get("keytype") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) if !strict => String::new(),
        None => return Err(KeyError::Structure("key has no \"keytype\"".into())),
        Some(_) => return Err(KeyError::Structure("\"keytype\" must be a string".into())),
    };
    let keyval = match obj.get("keyval") {
        Some(Value::Object(o)) => o,
        None | Some(Value::Null) if !strict => &empty,
        None => return Err(KeyError::Structure("key has no \"keyval\"".into())),
        Some(_) => return Err(KeyError::Structure("\"keyval\" must be an object".into())),
    };
    let public = match keyval.get("public") {
        Some(Value::String(s)) => Some(
            decode_base64_go(s)
                .map_err(|e| KeyError::Base64(format!("keyval.public: {}", e.inner_message())))?,
        ),
        None | Some(Value::Null) => None,
        Some(_) => {
            return Err(KeyError::Structure(
                "\"keyval.public\" must be a base64 string".into(),
            ));
        }
    };
    // Go decodes `private` too (and fails the document on bad base64), then ignores it.
    match keyval.get("private") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => {
            decode_base64_go(s)
                .map_err(|e| KeyError::Base64(format!("keyval.private: {}", e.inner_message())))?;
        }
        Some(_) => {
            return Err(KeyError::Structure(
                "\"keyval.private\" must be null or a base64 string".into(),
            ));
        }
    }
    Ok((keytype, public))
}

/// Builds a key; the error (if any) explains why a known-type key is unusable.
pub(super) fn build(keytype: &str, public: Option<Vec<u8>>) -> (PublicKey, Option<KeyError>) {
    let key_type = KeyType::parse(keytype);
    let id = tuf_key_id(keytype, public.as_deref());
    let mut key = PublicKey {
        key_type,
        id,
        public,
        spki: None,
        cert: None,
        material: Material::Unusable(String::new()),
    };
    let derived = match (&key.key_type, key.public.as_deref()) {
        (KeyType::Unknown(t), _) => {
            key.material = Material::Unusable(format!("unknown key type {t:?}"));
            return (key, None);
        }
        (kt, None) => Err(KeyError::Structure(format!(
            "{kt} key has no \"keyval.public\""
        ))),
        (kt, Some(public)) => derive_material(kt, public),
    };
    match derived {
        Ok((spki, cert, material)) => {
            key.spki = spki;
            key.cert = cert;
            key.material = material;
            (key, None)
        }
        Err(e) => {
            key.material = Material::Unusable(e.to_string());
            (key, Some(e))
        }
    }
}

pub(super) type Derived = (Option<Vec<u8>>, Option<CertInfo>, Material);

pub(super) fn derive_material(key_type: &KeyType, public: &[u8]) -> Result<Derived, KeyError> {
    match key_type {
        KeyType::Ecdsa | KeyType::Rsa => {
            let parsed = parse_spki(public)?;
            check_algorithm(key_type, parsed.algorithm)?;
            Ok((Some(public.to_vec()), None, parsed.material))
        }
        KeyType::Ed25519 => {
            let raw: [u8; 32] = public.try_into().map_err(|_| {
                KeyError::PublicKey(format!(
                    "an ed25519 public key has 32 bytes, not {}",
                    public.len()
                ))
            })?;
            Ok((None, None, Material::Ed25519(raw)))
        }
        KeyType::EcdsaX509 | KeyType::RsaX509 => {
            // Notary's verifier: the first PEM block, whatever its label, as a certificate.
            let (block, _) = pem_decode(public)
                .ok_or_else(|| KeyError::Pem(format!("{key_type} key holds no PEM certificate")))?;
            let parsed = parse_certificate(&block.der)?;
            check_algorithm(key_type, parsed.info.key_algorithm)?;
            let spki = parsed.info.spki_der.clone();
            Ok((Some(spki), Some(parsed.info), parsed.material))
        }
        KeyType::Unknown(t) => Err(KeyError::Unsupported(format!("unknown key type {t:?}"))),
    }
}

pub(super) fn check_algorithm(key_type: &KeyType, found: KeyAlgorithm) -> Result<(), KeyError> {
    let ok = match key_type {
        KeyType::Ecdsa | KeyType::EcdsaX509 => found == KeyAlgorithm::Ecdsa,
        KeyType::Rsa | KeyType::RsaX509 => found == KeyAlgorithm::Rsa,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(KeyError::TypeMismatch {
            key_type: key_type.to_string(),
            found: format!("{found:?}"),
        })
    }
}

/// `TUFKey.ID`: sha256 of canonical `{"keytype":T,"keyval":{"private":null,"public":B}}`.
pub(super) fn tuf_key_id(keytype: &str, public: Option<&[u8]>) -> String {
    let mut buf = Vec::with_capacity(64 + public.map_or(0, |p| p.len() * 4 / 3 + 4));
    buf.extend_from_slice(b"{\"keytype\":");
    canonical::write_string(&mut buf, keytype);
    buf.extend_from_slice(b",\"keyval\":{\"private\":null,\"public\":");
    match public {
        Some(p) => canonical::write_string(&mut buf, &STANDARD.encode(p)),
        None => buf.extend_from_slice(b"null"),
    }
    buf.extend_from_slice(b"}}");
    hex::encode(Sha256::digest(&buf))
}

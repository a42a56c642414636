//! The typed Notary v1 metadata files (notary's `tuf/data`): the signed envelope, root,
//! targets (and delegation files), snapshot and timestamp, with notary 0.7.0's structural checks.
//!
//! A file is parsed from its raw bytes, which are kept for hashing. Signatures are verified over
//! `to_canonical(signed)`, computed once: when `signed` is already in canonical form (a one-pass
//! check over its text) that is its text, read without building a `Value` tree; otherwise it is
//! parsed and canonicalised. Either way it is never a raw substring that merely looks right. The typed views are for semantics only;
//! unknown fields are ignored. Nothing here checks signatures, hashes, versions or expiry
//! (that is `verify`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

mod parse;

use super::canonical::{canonical_shape, to_canonical};
use super::error::VerifyError;
use super::keys::{PublicKey, decode_base64_go};
use crate::limits::LIMITS;

/// Role names of the four base roles.
pub const ROOT: &str = "root";
/// The top-level targets role.
pub const TARGETS: &str = "targets";
/// The snapshot role.
pub const SNAPSHOT: &str = "snapshot";
/// The timestamp role.
pub const TIMESTAMP: &str = "timestamp";
/// The delegation `docker trust` reads first.
pub const RELEASES: &str = "targets/releases";

/// One entry of `signatures`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The key ID the signer claims.
    pub keyid: String,
    /// The method, lowercased as notary does (`ecdsa`, `rsapss`, `eddsa`, ...).
    pub method: String,
    /// The decoded signature bytes.
    pub sig: Vec<u8>,
}

/// Fields every signed body has (`SignedCommon`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Common {
    /// `version`, at least 1.
    pub version: u64,
    /// `expires`, parsed for comparison only.
    pub expires: OffsetDateTime,
    /// `expires` exactly as written (for messages).
    pub expires_raw: String,
}

/// `keyids` + `threshold` of a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleKeys {
    /// Key IDs allowed to sign the role.
    pub keyids: Vec<String>,
    /// Distinct valid signatures needed (at least 1).
    pub threshold: u64,
}

/// The four base roles declared by a root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseRoles {
    /// `roles.root`.
    pub root: RoleKeys,
    /// `roles.targets`.
    pub targets: RoleKeys,
    /// `roles.snapshot`.
    pub snapshot: RoleKeys,
    /// `roles.timestamp`.
    pub timestamp: RoleKeys,
}

impl BaseRoles {
    /// The declaration of base role `role`, if it is one.
    pub fn get(&self, role: &str) -> Option<&RoleKeys> {
        match role {
            ROOT => Some(&self.root),
            TARGETS => Some(&self.targets),
            SNAPSHOT => Some(&self.snapshot),
            TIMESTAMP => Some(&self.timestamp),
            _ => None,
        }
    }
}

/// A key map (`keys` of a root, `delegations.keys` of a targets file).
pub type KeyMap = BTreeMap<String, Arc<PublicKey>>;

/// `root.json`'s body.
#[derive(Debug, Clone)]
pub struct Root {
    /// Version and expiry.
    pub common: Common,
    /// All keys, by the key ID the file lists them under.
    pub keys: KeyMap,
    /// The base roles.
    pub roles: BaseRoles,
    /// Always false in notary repositories; kept for completeness.
    pub consistent_snapshot: bool,
}

/// `hashes` of a meta entry: only the algorithms notary supports are kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hashes {
    /// `sha256`, decoded (32 bytes when well formed).
    pub sha256: Option<Vec<u8>>,
    /// `sha512`, decoded (64 bytes when well formed).
    pub sha512: Option<Vec<u8>>,
}

impl Hashes {
    /// notary's `CheckValidHashStructures` plus "sha256 is required".
    fn check_with_sha256(&self) -> Result<(), String> {
        match &self.sha256 {
            None => return Err("no sha256 hash".into()),
            Some(h) if h.len() != 32 => return Err(format!("sha256 hash is {} bytes", h.len())),
            Some(_) => {}
        }
        match &self.sha512 {
            Some(h) if h.len() != 64 => Err(format!("sha512 hash is {} bytes", h.len())),
            _ => Ok(()),
        }
    }

    /// The sha256 as a fixed array, when present and 32 bytes long.
    pub fn sha256_array(&self) -> Option<[u8; 32]> {
        self.sha256.as_deref().and_then(|h| h.try_into().ok())
    }
}

/// A meta entry (`FileMeta`): a target, or a file listed by snapshot/timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    /// `length` in bytes.
    pub length: u64,
    /// `hashes`.
    pub hashes: Hashes,
    /// `custom`, untouched.
    pub custom: Option<Value>,
}

/// One entry of `delegations.roles`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelegatedRole {
    /// Full role name, e.g. `targets/releases`.
    pub name: String,
    /// Keys and threshold.
    pub keys: RoleKeys,
    /// Path prefixes the role may sign (`""` matches everything; none matches nothing).
    pub paths: Vec<String>,
}

/// `delegations` of a targets file.
#[derive(Debug, Clone, Default)]
pub struct Delegations {
    /// Keys of the delegated roles.
    pub keys: KeyMap,
    /// Delegated roles in file order (a repeated name keeps its first entry).
    pub roles: Vec<DelegatedRole>,
}

/// `targets.json` or a delegation file's body.
#[derive(Debug, Clone)]
pub struct Targets {
    /// Version and expiry.
    pub common: Common,
    /// Target name (a tag for docker) to its meta.
    pub targets: BTreeMap<String, FileMeta>,
    /// Direct child delegations.
    pub delegations: Delegations,
}

/// `snapshot.json`'s body.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Version and expiry.
    pub common: Common,
    /// Role name (`root`, `targets`, `targets/...`) to the meta of its current file.
    pub meta: BTreeMap<String, FileMeta>,
}

/// `timestamp.json`'s body.
#[derive(Debug, Clone)]
pub struct Timestamp {
    /// Version and expiry.
    pub common: Common,
    /// `meta.snapshot`.
    pub snapshot: FileMeta,
}

/// Where a body is read from: the parsed `signed` value, or the text of a `signed` that is
/// already in canonical form (read without building a `Value` tree).
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// The parsed value.
    Value(&'a Value),
    /// The JSON text.
    Text(&'a str),
}

/// A body type that can be read from a `signed` object.
pub trait RoleBody: Sized {
    /// The capitalised `_type` this body must carry.
    const TYPE: &'static str;
    /// Reads and structurally checks the body of role `role` from `signed`.
    fn from_source(role: &str, signed: Source<'_>) -> Result<Self, String>;
    /// Reads and structurally checks the body of role `role` from the parsed `signed`.
    fn from_signed(role: &str, signed: &Value) -> Result<Self, String> {
        Self::from_source(role, Source::Value(signed))
    }
    /// Version and expiry.
    fn common(&self) -> &Common;
}

/// A parsed metadata file: raw bytes, canonical signed bytes, signatures and the typed body.
#[derive(Debug, Clone)]
pub struct SignedFile<T> {
    /// Repository (GUN) the file belongs to.
    pub gun: String,
    /// Role name.
    pub role: String,
    /// The bytes as served (what parents hash).
    pub raw: Vec<u8>,
    /// `to_canonical(signed)`: the bytes signatures cover.
    pub canonical: Vec<u8>,
    /// `signatures`.
    pub signatures: Vec<Signature>,
    /// The typed body.
    pub body: T,
}

#[derive(Deserialize)]
struct RawEnvelope {
    signed: Value,
    #[serde(default)]
    signatures: Option<Vec<RawSignature>>,
}

/// The envelope with `signed` left as text (the canonical fast path).
#[derive(Deserialize)]
struct TextEnvelope<'a> {
    #[serde(borrow)]
    signed: &'a RawValue,
    #[serde(default)]
    signatures: Option<Vec<RawSignature>>,
}

#[derive(Deserialize)]
struct RawSignature {
    keyid: String,
    method: String,
    #[serde(default)]
    sig: Option<String>,
}

impl<T: RoleBody> SignedFile<T> {
    /// Parses the raw bytes of role `role` of repository `gun`.
    ///
    /// When `signed` is already written in canonical form (as notary writes it), its canonical
    /// bytes are its text and the body is read straight from that text ([`canonical_shape`]
    /// checks it in one pass): no `Value` tree is built. Anything else, valid or not, takes the
    /// general path (parse into a `Value`, then canonicalise), so every check, result and error
    /// is the same either way.
    pub fn parse(gun: &str, role: &str, raw: Vec<u8>) -> Result<Self, VerifyError> {
        if let Some((canonical, signatures, body)) = Self::parse_canonical(role, &raw) {
            return Ok(SignedFile {
                gun: gun.to_owned(),
                role: role.to_owned(),
                raw,
                canonical,
                signatures,
                body,
            });
        }
        Self::parse_value(gun, role, raw)
    }

    /// The fast path of [`parse`](Self::parse): `None` unless every check passes on a `signed`
    /// in canonical form (then the general path would give the same file).
    fn parse_canonical(role: &str, raw: &[u8]) -> Option<(Vec<u8>, Vec<Signature>, T)> {
        let env: TextEnvelope = serde_json::from_slice(raw).ok()?;
        let text = env.signed.get();
        // The envelope is one level above `signed`.
        let shape = canonical_shape(text.as_bytes(), LIMITS.json_depth.checked_sub(1)?)?;
        if shape.type_name != Some(T::TYPE) {
            return None;
        }
        let signatures = signatures(env.signatures.unwrap_or_default()).ok()?;
        let body = T::from_source(role, Source::Text(text)).ok()?;
        Some((text.as_bytes().to_vec(), signatures, body))
    }

    /// The general path of [`parse`](Self::parse), in notary's order of checks.
    fn parse_value(gun: &str, role: &str, raw: Vec<u8>) -> Result<Self, VerifyError> {
        let malformed = |detail: String| VerifyError::Malformed {
            gun: gun.to_owned(),
            role: role.to_owned(),
            detail,
        };
        let env: RawEnvelope =
            serde_json::from_slice(&raw).map_err(|e| malformed(format!("invalid JSON: {e}")))?;
        if !env.signed.is_object() {
            return Err(malformed("`signed` is not an object".into()));
        }
        // The envelope is one level above `signed`.
        let depth = json_depth(&env.signed) + 1;
        if depth > LIMITS.json_depth {
            return Err(malformed(format!(
                "JSON nested {depth} levels deep, more than the limit of {}",
                LIMITS.json_depth
            )));
        }
        let got = env
            .signed
            .get("_type")
            .and_then(Value::as_str)
            .unwrap_or("");
        if got != T::TYPE {
            return Err(VerifyError::WrongType {
                gun: gun.to_owned(),
                role: role.to_owned(),
                expected: T::TYPE.to_owned(),
                got: got.to_owned(),
            });
        }
        let signatures = signatures(env.signatures.unwrap_or_default()).map_err(|e| match e {
            SignatureProblem::TooMany(count) => VerifyError::TooManySignatures {
                gun: gun.to_owned(),
                role: role.to_owned(),
                count,
                limit: LIMITS.signatures_per_file,
            },
            SignatureProblem::Base64(detail) => malformed(detail),
        })?;
        let canonical = to_canonical(&env.signed)
            .map_err(|e| malformed(format!("cannot canonicalize `signed`: {e}")))?;
        let body = T::from_signed(role, &env.signed).map_err(malformed)?;
        Ok(SignedFile {
            gun: gun.to_owned(),
            role: role.to_owned(),
            raw,
            canonical,
            signatures,
            body,
        })
    }
}

/// Why the `signatures` of a file are refused.
enum SignatureProblem {
    /// More than `LIMITS.signatures_per_file` (the count).
    TooMany(usize),
    /// A signature is not base64 (the message).
    Base64(String),
}

/// Decodes `signatures` (at most `LIMITS.signatures_per_file`), lowercasing methods as notary.
fn signatures(raw: Vec<RawSignature>) -> Result<Vec<Signature>, SignatureProblem> {
    if raw.len() > LIMITS.signatures_per_file {
        return Err(SignatureProblem::TooMany(raw.len()));
    }
    let mut out = Vec::with_capacity(raw.len());
    for s in raw {
        let sig = match s.sig {
            Some(b64) => decode_base64_go(&b64).map_err(|e| {
                SignatureProblem::Base64(format!("signature by {}: bad base64: {e}", s.keyid))
            })?,
            None => Vec::new(),
        };
        out.push(Signature {
            keyid: s.keyid,
            method: s.method.to_ascii_lowercase(),
            sig,
        });
    }
    Ok(out)
}

/// Nesting depth of `v`: 0 for a scalar, 1 + the deepest child for an array or object.
/// Iterative, so a deep value cannot overflow the stack here.
pub fn json_depth(v: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(v, 1usize)];
    while let Some((v, level)) = stack.pop() {
        match v {
            Value::Array(items) => {
                deepest = deepest.max(level);
                stack.extend(items.iter().map(|i| (i, level + 1)));
            }
            Value::Object(map) => {
                deepest = deepest.max(level);
                stack.extend(map.values().map(|i| (i, level + 1)));
            }
            _ => {}
        }
    }
    deepest
}

/// notary's `IsDelegation`: `targets/` prefix, `^[-a-z0-9_/]+$`, under 256 bytes, `path.Clean`-stable.
pub fn is_delegation_name(name: &str) -> bool {
    name.len() < 256
        && name.starts_with("targets/")
        && name
            .bytes()
            .all(|b| matches!(b, b'-' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'/'))
        && name.split('/').all(|seg| !seg.is_empty())
}

/// `path.Dir` of a role name (`targets/a/b` gives `targets/a`).
pub fn parent_role(name: &str) -> &str {
    name.rsplit_once('/').map_or("", |(p, _)| p)
}

/// Checks a delegation's meta entry in the snapshot has a well-formed sha256 (to fetch it by hash).
pub fn check_meta_hashes(meta: &FileMeta) -> Result<(), String> {
    meta.hashes.check_with_sha256()
}

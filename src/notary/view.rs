//! The verified view of a repository's trust data that the policy engine and `inspect` read:
//! the trusted root, every loaded targets role with its validity, keys, paths and usable
//! targets, plus the lookups of the decision rules (docs/policy-reference.md) (`docker trust` resolution and per-signer checks).
//! `TrustData` is immutable and cheap to clone (one `Arc`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use time::OffsetDateTime;

use super::keys::{PinnedKey, PublicKey};
use super::schema::{BaseRoles, KeyMap, RELEASES, TARGETS, Targets};
use super::verify::{TrustedRoot, Verified, VerifyError};

/// A key and its ID as listed by the metadata.
#[derive(Debug, Clone)]
pub struct KeyInfo {
    /// The key ID as listed (for root keys: the certificate's key ID).
    pub id: String,
    /// The key.
    pub key: Arc<PublicKey>,
}

/// What the trusted root says.
#[derive(Debug, Clone)]
pub struct RootInfo {
    /// Root version.
    pub version: u64,
    /// Root expiry.
    pub expires: OffsetDateTime,
    /// The root role's keys, as listed in `roles.root.keyids`.
    pub root_keys: Vec<KeyInfo>,
    /// Root keys whose signature counted.
    pub signed_by: Vec<String>,
    /// Key IDs and thresholds of root, targets, snapshot and timestamp.
    pub roles: BaseRoles,
}

impl RootInfo {
    /// Summarises a trusted root.
    pub fn from_trusted(root: &TrustedRoot) -> Self {
        let body = &root.file.body;
        RootInfo {
            version: body.common.version,
            expires: body.common.expires,
            root_keys: key_infos(&body.keys, &body.roles.root.keyids),
            signed_by: root.signed_by.clone(),
            roles: body.roles.clone(),
        }
    }
}

/// Whether a targets role can be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleStatus {
    /// Verified: signatures, hashes, version and expiry all good.
    Valid,
    /// Loaded but skipped (expired, below threshold), as notary does.
    Invalid(VerifyError),
    /// Declared by its parent but not listed in the snapshot (never published).
    NotPublished,
}

/// A target a role signed: the sha256 of the manifest and its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetInfo {
    /// sha256 digest bytes.
    pub sha256: [u8; 32],
    /// Length in bytes.
    pub length: u64,
}

/// One targets role (`targets` or a delegation).
#[derive(Debug, Clone)]
pub struct RoleInfo {
    /// Role name.
    pub name: String,
    /// Validity.
    pub status: RoleStatus,
    /// Version of the loaded file (when loaded).
    pub version: Option<u64>,
    /// Expiry of the loaded file (when loaded).
    pub expires: Option<OffsetDateTime>,
    /// Keys allowed to sign the role.
    pub keys: Vec<KeyInfo>,
    /// Threshold of the role.
    pub threshold: u64,
    /// Effective path prefixes (restricted by the parents'; `[""]` for `targets`).
    pub paths: Vec<String>,
    /// Key IDs whose signature counted (valid roles).
    pub signed_by: Vec<String>,
    /// Usable targets: name to digest and length.
    pub targets: BTreeMap<String, TargetInfo>,
    /// Targets not honoured: outside `paths`, or without a well-formed sha256.
    pub ignored: Vec<String>,
    /// Names of the roles this one delegates to, in file order.
    pub delegations: Vec<String>,
}

impl RoleInfo {
    /// A role that verified.
    pub fn valid(
        name: &str,
        keys: Vec<KeyInfo>,
        threshold: u64,
        paths: Vec<String>,
        v: &Verified<Targets>,
    ) -> Self {
        let body = &v.file.body;
        // In name order already: collected in one go, not inserted one by one.
        let mut targets = Vec::with_capacity(body.targets.len());
        let mut ignored = Vec::new();
        for (tag, meta) in &body.targets {
            match meta.hashes.sha256_array() {
                Some(sha256) if paths_match(&paths, tag) => {
                    targets.push((
                        tag.clone(),
                        TargetInfo {
                            sha256,
                            length: meta.length,
                        },
                    ));
                }
                _ => ignored.push(tag.clone()),
            }
        }
        RoleInfo {
            name: name.to_owned(),
            status: RoleStatus::Valid,
            version: Some(body.common.version),
            expires: Some(body.common.expires),
            keys,
            threshold,
            paths,
            signed_by: v.signed_by.clone(),
            targets: targets.into_iter().collect(),
            ignored,
            delegations: body
                .delegations
                .roles
                .iter()
                .map(|r| r.name.clone())
                .collect(),
        }
    }

    /// A role that is not usable (`Invalid` or `NotPublished`).
    pub fn unusable(
        name: &str,
        keys: Vec<KeyInfo>,
        threshold: u64,
        paths: Vec<String>,
        status: RoleStatus,
    ) -> Self {
        RoleInfo {
            name: name.to_owned(),
            status,
            version: None,
            expires: None,
            keys,
            threshold,
            paths,
            signed_by: Vec::new(),
            targets: BTreeMap::new(),
            ignored: Vec::new(),
            delegations: Vec::new(),
        }
    }

    fn is_valid(&self) -> bool {
        self.status == RoleStatus::Valid
    }
}

/// The keys of `ids` in `map`, in `ids` order.
pub fn key_infos(map: &KeyMap, ids: &[String]) -> Vec<KeyInfo> {
    ids.iter()
        .filter_map(|id| {
            map.get(id).map(|k| KeyInfo {
                id: id.clone(),
                key: k.clone(),
            })
        })
        .collect()
}

/// The tag `docker trust` would pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedTarget {
    /// `targets/releases` or `targets`.
    pub role: String,
    /// sha256 of the manifest.
    pub digest: [u8; 32],
    /// Manifest length.
    pub length: u64,
}

/// Whether a signer (delegation `targets/<name>`) counts for an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignerResult {
    /// The role verifies and signed the tag (or, digest-only, some tag) with this digest.
    Signed,
    /// The role verifies but did not sign this tag with this digest.
    NotSigned {
        /// Why, in one line.
        reason: String,
    },
    /// The role exists but is invalid (expired, below threshold).
    RoleInvalid {
        /// Why, in one line.
        reason: String,
    },
    /// No such delegation in the repository.
    NoSuchRole,
}

/// One signed tag, for `trustgate inspect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagInfo {
    /// Target name (the tag).
    pub tag: String,
    /// Role that signed it.
    pub role: String,
    /// sha256 digest, lowercase hex.
    pub digest_hex: String,
    /// Manifest length.
    pub length: u64,
}

#[derive(Debug)]
struct Inner {
    gun: String,
    root: RootInfo,
    roles: Vec<RoleInfo>,
}

/// Verified trust data of one repository.
#[derive(Debug, Clone)]
pub struct TrustData {
    inner: Arc<Inner>,
}

impl TrustData {
    /// Assembles the view; `roles` starts with `targets`, then delegations in pre-order.
    pub fn new(gun: String, root: RootInfo, roles: Vec<RoleInfo>) -> Self {
        TrustData {
            inner: Arc::new(Inner { gun, root, roles }),
        }
    }

    /// The repository (GUN).
    pub fn gun(&self) -> &str {
        &self.inner.gun
    }

    /// The trusted root.
    pub fn root(&self) -> &RootInfo {
        &self.inner.root
    }

    /// All targets roles that were considered, `targets` first, then delegations in pre-order.
    pub fn roles(&self) -> &[RoleInfo] {
        &self.inner.roles
    }

    /// One role by name.
    pub fn role(&self, name: &str) -> Option<&RoleInfo> {
        self.inner.roles.iter().find(|r| r.name == name)
    }

    /// notary's `WalkTargets` + the visitor of `GetTargetByName`: breadth-first from `targets`,
    /// expanding towards `subtree`, visiting valid roles inside it whose paths match `tag`.
    fn walk(&self, tag: &str, subtree: &str, skip: &str) -> Option<(&RoleInfo, &TargetInfo)> {
        let mut queue = VecDeque::from([TARGETS.to_owned()]);
        while let Some(name) = queue.pop_front() {
            let Some(role) = self.role(&name).filter(|r| r.is_valid()) else {
                continue;
            };
            if subtree.starts_with(&format!("{name}/")) {
                queue.extend(role.delegations.iter().cloned());
                continue;
            }
            let in_subtree = name == subtree || name.starts_with(&format!("{subtree}/"));
            if in_subtree && name != skip && paths_match(&role.paths, tag) {
                if let Some(t) = role.targets.get(tag) {
                    return Some((role, t));
                }
                queue.extend(role.delegations.iter().cloned());
            }
        }
        None
    }

    /// What `docker trust` pulls for `tag` (docker's `TrustedReference` over notary's
    /// `GetTargetByName`): the first hit walking `targets/releases` (and below), else
    /// `targets` (and below, except releases); accepted
    /// only if the hit is in `targets/releases` or `targets` itself.
    pub fn docker_lookup(&self, tag: &str) -> Option<SignedTarget> {
        for (subtree, skip) in [(RELEASES, TARGETS), (TARGETS, RELEASES)] {
            if let Some((role, t)) = self.walk(tag, subtree, skip) {
                return (role.name == RELEASES || role.name == TARGETS).then(|| SignedTarget {
                    role: role.name.clone(),
                    digest: t.sha256,
                    length: t.length,
                });
            }
        }
        None
    }

    fn signer_role(&self, signer: &str) -> Option<&RoleInfo> {
        let name = if signer.starts_with("targets/") {
            signer.to_owned()
        } else {
            format!("targets/{signer}")
        };
        self.role(&name)
    }

    /// Decision rule 3 of the policy reference: whether signer `signer` (`alice` for
    /// `targets/alice`) counts for an image with `digest`, referenced by `tag` (or by digest
    /// only when `tag` is `None`).
    pub fn signer_lookup(
        &self,
        signer: &str,
        tag: Option<&str>,
        digest: &[u8; 32],
    ) -> SignerResult {
        let Some(role) = self.signer_role(signer) else {
            return SignerResult::NoSuchRole;
        };
        let name = &role.name;
        match &role.status {
            RoleStatus::Valid => {}
            RoleStatus::Invalid(e) => {
                return SignerResult::RoleInvalid {
                    reason: e.to_string(),
                };
            }
            RoleStatus::NotPublished => {
                return SignerResult::NotSigned {
                    reason: format!("{name} has never been published"),
                };
            }
        }
        let want = hex::encode(digest);
        let reason = match tag {
            None if role.targets.values().any(|t| t.sha256 == *digest) => {
                return SignerResult::Signed;
            }
            None => format!("{name} has signed no tag with digest sha256:{want}"),
            Some(tag) => match role.targets.get(tag) {
                Some(t) if t.sha256 == *digest => return SignerResult::Signed,
                Some(t) => format!(
                    "{name} signed tag {tag} with digest sha256:{}, not sha256:{want}",
                    hex::encode(t.sha256)
                ),
                None if role.ignored.iter().any(|i| i == tag) => {
                    format!("{name} signed tag {tag} outside its allowed paths")
                }
                None => format!("{name} has not signed tag {tag}"),
            },
        };
        SignerResult::NotSigned { reason }
    }

    /// Whether the signer's role is valid and `pin` is one of the keys whose signature counted.
    pub fn signer_key_matches(&self, signer: &str, pin: &PinnedKey) -> bool {
        self.signer_role(signer).is_some_and(|role| {
            role.is_valid()
                && role
                    .keys
                    .iter()
                    .any(|k| role.signed_by.contains(&k.id) && pin.matches(&k.key))
        })
    }

    /// Every usable signed tag of every valid role, in role order.
    pub fn tags(&self) -> Vec<TagInfo> {
        self.inner
            .roles
            .iter()
            .filter(|r| r.is_valid())
            .flat_map(|r| {
                r.targets.iter().map(|(tag, t)| TagInfo {
                    tag: tag.clone(),
                    role: r.name.clone(),
                    digest_hex: hex::encode(t.sha256),
                    length: t.length,
                })
            })
            .collect()
    }
}

/// Whether `name` starts with one of `paths` (string prefixes; `""` matches everything).
pub fn paths_match(paths: &[String], name: &str) -> bool {
    paths.iter().any(|p| name.starts_with(p.as_str()))
}

/// notary's `RestrictDelegationPathPrefixes`: the child's paths that lie under a parent path.
pub fn restrict_paths(parent: &[String], child: &[String]) -> Vec<String> {
    child
        .iter()
        .filter(|c| paths_match(parent, c))
        .cloned()
        .collect()
}

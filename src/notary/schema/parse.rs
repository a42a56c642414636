//! Reading the typed bodies out of `signed` (the `RoleBody` impls) with notary 0.7.0's
//! structural checks: borrowed serde shapes, versions at least 1, RFC 3339 expiry, thresholds at
//! least 1 over listed keys, delegation names and parents, bounded key and delegation counts.
//! A child of `schema`.

#[allow(clippy::wildcard_imports)]
use super::*;

#[derive(Deserialize)]
struct RawRoleKeys {
    #[serde(default)]
    keyids: Option<Vec<String>>,
    threshold: i64,
}

#[derive(Deserialize)]
struct RawRoot {
    version: i64,
    expires: String,
    #[serde(default)]
    keys: Option<BTreeMap<String, Value>>,
    roles: BTreeMap<String, RawRoleKeys>,
    #[serde(default)]
    consistent_snapshot: bool,
}

/// Borrows its strings from the parsed `signed` value or text (no per-target string copies).
#[derive(Deserialize)]
struct RawFileMeta<'a> {
    length: i64,
    #[serde(default, borrow)]
    hashes: Option<BTreeMap<&'a str, &'a str>>,
    #[serde(default)]
    custom: Option<Value>,
}

/// `targets` of a targets file. Each entry is checked and converted as it is read, straight into
/// the final map: a file with 10,000 targets would otherwise build a second, intermediate map.
struct TargetMap(BTreeMap<String, FileMeta>);

impl<'de> Deserialize<'de> for TargetMap {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> serde::de::Visitor<'de> for Entries {
            type Value = TargetMap;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<TargetMap, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some((name, raw)) = map.next_entry::<&'de str, RawFileMeta<'de>>()? {
                    let meta = file_meta(|| format!("target {name:?}"), raw)
                        .map_err(serde::de::Error::custom)?;
                    entries.push((name.to_owned(), meta));
                }
                // In order already (a `Value` map without `preserve_order`): collecting is linear.
                Ok(TargetMap(entries.into_iter().collect()))
            }
        }
        d.deserialize_map(Entries)
    }
}

#[derive(Deserialize)]
struct RawDelegatedRole {
    name: String,
    #[serde(flatten)]
    keys: RawRoleKeys,
    #[serde(default)]
    paths: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
struct RawDelegations {
    #[serde(default)]
    keys: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    roles: Option<Vec<RawDelegatedRole>>,
}

#[derive(Deserialize)]
struct RawTargets {
    version: i64,
    expires: String,
    #[serde(default)]
    targets: Option<TargetMap>,
    #[serde(default)]
    delegations: Option<RawDelegations>,
}

#[derive(Deserialize)]
struct RawSnapshot<'a> {
    version: i64,
    expires: String,
    #[serde(borrow)]
    meta: BTreeMap<String, RawFileMeta<'a>>,
}

#[derive(Deserialize)]
struct RawTimestamp<'a> {
    version: i64,
    expires: String,
    #[serde(borrow)]
    meta: BTreeMap<String, RawFileMeta<'a>>,
}

fn from_value<'a, R: Deserialize<'a>>(v: Source<'a>) -> Result<R, String> {
    match v {
        Source::Value(v) => R::deserialize(v).map_err(|e| e.to_string()),
        Source::Text(t) => serde_json::from_str(t).map_err(|e| e.to_string()),
    }
}

fn common(version: i64, expires: String) -> Result<Common, String> {
    let version = u64::try_from(version)
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| format!("version {version} is below 1"))?;
    let parsed = OffsetDateTime::parse(&expires, &Rfc3339)
        .map_err(|e| format!("expires {expires:?} is not RFC 3339: {e}"))?;
    Ok(Common {
        version,
        expires: parsed,
        expires_raw: expires,
    })
}

fn key_map(raw: Option<BTreeMap<String, Value>>) -> Result<KeyMap, String> {
    let raw = raw.unwrap_or_default();
    if raw.len() > LIMITS.keys_per_file {
        return Err(format!(
            "declares {} keys, more than the limit of {}",
            raw.len(),
            LIMITS.keys_per_file
        ));
    }
    raw.into_iter()
        .map(|(id, v)| match PublicKey::from_json_lenient(&v) {
            Ok(k) => Ok((id, Arc::new(k))),
            Err(e) => Err(format!("key {id}: {e}")),
        })
        .collect()
}

/// Checks `threshold >= 1` and that every key ID is in `keys` (`isValidRootRoleStructure`).
fn role_keys(name: &str, raw: RawRoleKeys, keys: &KeyMap) -> Result<RoleKeys, String> {
    let threshold = u64::try_from(raw.threshold)
        .ok()
        .filter(|t| *t >= 1)
        .ok_or_else(|| {
            format!(
                "role {name} has threshold {} (must be at least 1)",
                raw.threshold
            )
        })?;
    let keyids = raw.keyids.unwrap_or_default();
    if let Some(missing) = keyids.iter().find(|id| !keys.contains_key(*id)) {
        return Err(format!(
            "role {name} lists key {missing}, which is not in the key map"
        ));
    }
    Ok(RoleKeys { keyids, threshold })
}

fn hashes(raw: Option<BTreeMap<&str, &str>>) -> Result<Hashes, String> {
    let mut out = Hashes::default();
    for (alg, b64) in raw.unwrap_or_default() {
        let bytes = decode_base64_go(b64).map_err(|e| format!("{alg} hash: bad base64: {e}"))?;
        match alg {
            "sha256" => out.sha256 = Some(bytes),
            "sha512" => out.sha512 = Some(bytes),
            _ => {}
        }
    }
    Ok(out)
}

/// `name` (for messages) is only called on error: no allocation per target otherwise.
fn file_meta(name: impl Fn() -> String, raw: RawFileMeta<'_>) -> Result<FileMeta, String> {
    let length = u64::try_from(raw.length)
        .map_err(|_| format!("{}: negative length {}", name(), raw.length))?;
    let hashes = hashes(raw.hashes).map_err(|e| format!("{}: {e}", name()))?;
    Ok(FileMeta {
        length,
        hashes,
        custom: raw.custom.filter(|c| !c.is_null()),
    })
}

impl RoleBody for Root {
    const TYPE: &'static str = "Root";

    fn from_source(_role: &str, signed: Source<'_>) -> Result<Self, String> {
        let raw: RawRoot = from_value(signed)?;
        let keys = key_map(raw.keys)?;
        let mut roles = raw.roles;
        let mut take = |name: &str| match roles.remove(name) {
            Some(r) => role_keys(name, r, &keys),
            None => Err(format!("role {name} is missing")),
        };
        let roles = BaseRoles {
            root: take(ROOT)?,
            targets: take(TARGETS)?,
            snapshot: take(SNAPSHOT)?,
            timestamp: take(TIMESTAMP)?,
        };
        Ok(Root {
            common: common(raw.version, raw.expires)?,
            keys,
            roles,
            consistent_snapshot: raw.consistent_snapshot,
        })
    }

    fn common(&self) -> &Common {
        &self.common
    }
}

impl RoleBody for Targets {
    const TYPE: &'static str = "Targets";

    fn from_source(role: &str, signed: Source<'_>) -> Result<Self, String> {
        if role != TARGETS && !is_delegation_name(role) {
            return Err(format!("{role} is not a targets role name"));
        }
        let raw: RawTargets = from_value(signed)?;
        let targets = raw.targets.map(|t| t.0).unwrap_or_default();
        let raw_del = raw.delegations.unwrap_or_default();
        let keys = key_map(raw_del.keys)?;
        let raw_roles = raw_del.roles.unwrap_or_default();
        if raw_roles.len() > LIMITS.delegations_per_role {
            return Err(format!(
                "declares {} delegations, more than the limit of {}",
                raw_roles.len(),
                LIMITS.delegations_per_role
            ));
        }
        let mut seen = BTreeSet::new();
        let mut roles = Vec::new();
        for r in raw_roles {
            if !is_delegation_name(&r.name) || parent_role(&r.name) != role {
                return Err(format!(
                    "delegation role {:?} is not a valid direct child of {role}",
                    r.name
                ));
            }
            let rk = role_keys(&r.name, r.keys, &keys)?;
            if seen.insert(r.name.clone()) {
                roles.push(DelegatedRole {
                    name: r.name,
                    keys: rk,
                    paths: r.paths.unwrap_or_default(),
                });
            }
        }
        Ok(Targets {
            common: common(raw.version, raw.expires)?,
            targets,
            delegations: Delegations { keys, roles },
        })
    }

    fn common(&self) -> &Common {
        &self.common
    }
}

impl RoleBody for Snapshot {
    const TYPE: &'static str = "Snapshot";

    fn from_source(_role: &str, signed: Source<'_>) -> Result<Self, String> {
        let raw: RawSnapshot = from_value(signed)?;
        let meta: BTreeMap<String, FileMeta> = raw
            .meta
            .into_iter()
            .map(|(name, m)| {
                let meta = file_meta(|| format!("meta {name}"), m)?;
                Ok((name, meta))
            })
            .collect::<Result<_, String>>()?;
        for required in [ROOT, TARGETS] {
            meta.get(required)
                .ok_or_else(|| format!("meta {required} is missing"))?
                .hashes
                .check_with_sha256()
                .map_err(|e| format!("meta {required}: {e}"))?;
        }
        Ok(Snapshot {
            common: common(raw.version, raw.expires)?,
            meta,
        })
    }

    fn common(&self) -> &Common {
        &self.common
    }
}

impl RoleBody for Timestamp {
    const TYPE: &'static str = "Timestamp";

    fn from_source(_role: &str, signed: Source<'_>) -> Result<Self, String> {
        let mut raw: RawTimestamp = from_value(signed)?;
        let snapshot = raw
            .meta
            .remove(SNAPSHOT)
            .ok_or_else(|| "meta snapshot is missing".to_owned())?;
        let snapshot = file_meta(|| "meta snapshot".to_owned(), snapshot)?;
        snapshot
            .hashes
            .check_with_sha256()
            .map_err(|e| format!("meta snapshot: {e}"))?;
        Ok(Timestamp {
            common: common(raw.version, raw.expires)?,
            snapshot,
        })
    }

    fn common(&self) -> &Common {
        &self.common
    }
}

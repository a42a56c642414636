//! Trusted identities in Notation's syntax and their matching, as `notation-go` does it:
//! `"*"` (alone) trusts every signer whose chain is trusted; `"x509.subject: C=US, ST=WA,
//! O=Shop, CN=release"` (an RFC 4514 distinguished name with at least C and O (notation also wants ST), no
//! multi-valued RDN, no attribute twice, no `=#` hex values) trusts a signing certificate whose
//! subject has every one of those attributes with the same value.

use std::collections::BTreeMap;

use x509_cert::der::asn1::{Ia5StringRef, PrintableStringRef, TeletexStringRef, Utf8StringRef};
use x509_cert::der::{Tag, Tagged as _};

use super::NotationError;
use super::chain::Cert;

/// One entry of `trustedIdentities`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum TrustedIdentity {
    /// `*`: any signer.
    Any,
    /// `x509.subject: ...`: attribute type (upper case, `S` read as `ST`) → value.
    Subject(BTreeMap<String, String>),
}

/// Parses the policy's trusted identities.
pub(super) fn parse_all(entries: &[String]) -> Result<Vec<TrustedIdentity>, NotationError> {
    let policy = |i: usize, detail: String| NotationError::Policy {
        entry: format!("trustedIdentities[{i}]"),
        detail,
    };
    if entries.is_empty() {
        return Err(NotationError::Policy {
            entry: "trustedIdentities".into(),
            detail: "empty: list \"*\" or x509.subject identities".into(),
        });
    }
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let e = e.trim();
        if e == "*" {
            if entries.len() > 1 {
                return Err(policy(
                    i,
                    "\"*\" cannot be combined with other identities".into(),
                ));
            }
            out.push(TrustedIdentity::Any);
            continue;
        }
        let Some((prefix, value)) = e.split_once(':') else {
            return Err(policy(i, format!("{e:?} has no \"x509.subject:\" prefix")));
        };
        if prefix.trim() != "x509.subject" {
            return Err(policy(
                i,
                format!(
                    "identity type {:?} is not supported (x509.subject)",
                    prefix.trim()
                ),
            ));
        }
        let dn = parse_dn(value.trim()).map_err(|d| policy(i, d))?;
        if out.contains(&TrustedIdentity::Subject(dn.clone())) {
            return Err(policy(i, "listed twice".into()));
        }
        out.push(TrustedIdentity::Subject(dn));
    }
    Ok(out)
}

/// Parses an RFC 4514 distinguished name into attribute → value.
fn parse_dn(s: &str) -> Result<BTreeMap<String, String>, String> {
    if s.is_empty() {
        return Err("empty distinguished name".into());
    }
    if s.contains("=#") {
        return Err("hex-encoded values (=#) are not supported".into());
    }
    let mut map = BTreeMap::new();
    for rdn in split_unescaped(s, ',')? {
        if split_unescaped(&rdn, '+')?.len() > 1 {
            return Err(format!("multi-valued RDN {rdn:?} is not supported"));
        }
        let (ty, value) = rdn
            .split_once('=')
            .ok_or_else(|| format!("{rdn:?} is not TYPE=value"))?;
        let mut ty = ty.trim().to_ascii_uppercase();
        if ty == "S" {
            ty = "ST".into();
        }
        if ty.is_empty() {
            return Err(format!("{rdn:?} has no attribute type"));
        }
        let value = unescape(value.trim())?;
        if map.insert(ty.clone(), value).is_some() {
            return Err(format!("attribute {ty} appears twice"));
        }
    }
    // notation itself also insists on ST; trustgate's policy syntax needs C and O (an identity
    // such as "C=US, O=Shop, CN=release" is specific enough behind a trust store).
    for m in ["C", "O"] {
        if !map.contains_key(m) {
            return Err(format!(
                "no {m} attribute (an x509.subject identity needs C and O at least)"
            ));
        }
    }
    Ok(map)
}

/// Splits on `sep` outside backslash escapes; the parts keep their escapes.
fn split_unescaped(s: &str, sep: char) -> Result<Vec<String>, String> {
    let (mut parts, mut cur, mut esc) = (Vec::new(), String::new(), false);
    for c in s.chars() {
        if esc {
            cur.push('\\');
            cur.push(c);
            esc = false;
        } else if c == '\\' {
            esc = true;
        } else if c == sep {
            parts.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    if esc {
        return Err(format!("{s:?} ends with a lone backslash"));
    }
    parts.push(cur);
    Ok(parts)
}

/// Resolves `\c` and `\XX` escapes.
fn unescape(v: &str) -> Result<String, String> {
    let mut bytes = Vec::new();
    let mut chars = v.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let Some(n) = chars.next() else {
            return Err(format!("{v:?} ends with a lone backslash"));
        };
        if n.is_ascii_hexdigit()
            && let Some(&m) = chars.peek()
            && m.is_ascii_hexdigit()
        {
            chars.next();
            let hex = format!("{n}{m}");
            bytes.push(u8::from_str_radix(&hex, 16).map_err(|e| e.to_string())?);
        } else {
            let mut buf = [0u8; 4];
            bytes.extend_from_slice(n.encode_utf8(&mut buf).as_bytes());
        }
    }
    String::from_utf8(bytes).map_err(|_| format!("{v:?} is not UTF-8 after unescaping"))
}

/// Short names notation (Go's `pkix.Name.String`) uses for subject attributes.
fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.5" => "SERIALNUMBER",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.17" => "POSTALCODE",
        _ => return None,
    })
}

/// The signing certificate's subject as attribute → value (repeated attributes: the set of the
/// subject then cannot match an identity naming that attribute).
fn subject_attributes(c: &Cert) -> BTreeMap<String, Option<String>> {
    let mut map: BTreeMap<String, Option<String>> = BTreeMap::new();
    for rdn in c.cert.tbs_certificate().subject().iter_rdn() {
        for atv in rdn.iter() {
            let oid = atv.oid.to_string();
            let ty = short_name(&oid).map_or(oid, str::to_string);
            let v = &atv.value;
            let value = match v.tag() {
                Tag::PrintableString => PrintableStringRef::try_from(v).ok().map(|s| s.to_string()),
                Tag::Utf8String => Utf8StringRef::try_from(v).ok().map(|s| s.to_string()),
                Tag::Ia5String => Ia5StringRef::try_from(v).ok().map(|s| s.to_string()),
                Tag::TeletexString => TeletexStringRef::try_from(v).ok().map(|s| s.to_string()),
                _ => None,
            };
            map.entry(ty).and_modify(|e| *e = None).or_insert(value);
        }
    }
    map
}

/// Whether the signing certificate matches a trusted identity.
pub(super) fn check(identities: &[TrustedIdentity], leaf: &Cert) -> Result<(), NotationError> {
    if identities.contains(&TrustedIdentity::Any) {
        return Ok(());
    }
    let subject = subject_attributes(leaf);
    let matches = |dn: &BTreeMap<String, String>| {
        dn.iter()
            .all(|(k, v)| subject.get(k).and_then(Option::as_deref) == Some(v.as_str()))
    };
    if identities.iter().any(|i| match i {
        TrustedIdentity::Any => true,
        TrustedIdentity::Subject(dn) => matches(dn),
    }) {
        Ok(())
    } else {
        Err(NotationError::IdentityNotTrusted {
            subject: leaf.subject.clone(),
        })
    }
}

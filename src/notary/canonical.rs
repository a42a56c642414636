//! Notary's canonical JSON: the bytes that Notary v1 signatures cover.
//!
//! Notary verifies a signature over `MarshalCanonical(v)` where `v` is the `signed` object decoded
//! into Go's generic `map[string]interface{}` (tuf/signed/verify.go). The encoder is the vendored
//! `github.com/docker/go/canonical/json` (an OLPC-style fork of `encoding/json`):
//!
//! - objects: keys sorted by Go `sort.Strings`, i.e. bytewise on the raw UTF-8 key (before any
//!   escaping), written as `{"k":v,...}` without whitespace;
//! - strings: only `"` and `\` are escaped; everything else (control characters, `<>&`,
//!   U+2028/U+2029, non-ASCII) is written raw;
//! - numbers: Go decodes every number to `float64`; canonical mode rejects NaN, infinities and
//!   non-integral values and prints `int64(f)` in decimal;
//! - `null`, `true`, `false` literally; arrays keep their order.
//!
//! The key order is computed here, so this does not depend on serde_json's `preserve_order`
//! feature. Note the difference from `olpc-cjson` (which sorts by the *escaped, quoted* key) when
//! one key is a prefix of another that continues with a byte below `"` (0x22).

use serde_json::{Number, Value};

/// Why a JSON value has no canonical form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CanonicalError {
    /// A number with a fractional part (Go's canonical encoder rejects these).
    #[error("canonical JSON allows only integers, found {0}")]
    NonIntegral(String),
    /// NaN or an infinity (only reachable for values built in code, not parsed JSON).
    #[error("canonical JSON cannot encode the non-finite number {0}")]
    NonFinite(String),
    /// An integral number outside the int64 range after Go's float64 rounding.
    #[error("number {0} is outside the int64 range of canonical JSON")]
    OutOfRange(String),
}

/// Canonical bytes of a parsed JSON value: object keys sorted bytewise on raw UTF-8, no
/// whitespace, strings escape only `"` and `\` (everything else raw), integers only (floats
/// rejected), null/true/false literal.
///
/// Integral numbers are accepted in any serde_json representation (`1`, `1.0`, `1e2`) and are
/// converted exactly as Go does: first to `float64` (so integers above 2^53 are rounded to the
/// nearest representable value), then printed as `int64`.
pub fn to_canonical(v: &Value) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::new();
    write_value(&mut out, v)?;
    Ok(out)
}

fn write_value(out: &mut Vec<u8>, v: &Value) -> Result<(), CanonicalError> {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => out.extend_from_slice(canonical_number(n)?.to_string().as_bytes()),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            // Go's sort.Strings: bytewise comparison of the raw UTF-8 keys (this is also
            // `str`'s `Ord`, but the map's own order is not relied upon).
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (k, val)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(out, k);
                out.push(b':');
                write_value(out, val)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// Appends `s` as a canonical JSON string (quoted; only `"` and `\` escaped).
pub(crate) fn write_string(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    for &b in s.as_bytes() {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// Go: `f := float64(number)`; reject NaN/Inf/non-integral; `int64(f)`.
fn canonical_number(n: &Number) -> Result<i64, CanonicalError> {
    // `as f64` rounds to nearest (ties to even), like Go's correctly rounded ParseFloat.
    #[allow(clippy::cast_precision_loss)]
    let f = if let Some(u) = n.as_u64() {
        u as f64
    } else if let Some(i) = n.as_i64() {
        i as f64
    } else if let Some(f) = n.as_f64() {
        f
    } else {
        return Err(CanonicalError::NonFinite(n.to_string()));
    };
    if !f.is_finite() {
        return Err(CanonicalError::NonFinite(n.to_string()));
    }
    if f.fract() != 0.0 {
        return Err(CanonicalError::NonIntegral(n.to_string()));
    }
    // int64(f) is only defined for -2^63 <= f < 2^63 (Go gives an implementation-specific value
    // outside; reject instead).
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if !(-TWO_63..TWO_63).contains(&f) {
        return Err(CanonicalError::OutOfRange(n.to_string()));
    }
    #[allow(clippy::cast_possible_truncation)]
    Ok(f as i64)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;
    use serde_json::json;

    fn canon(v: &Value) -> String {
        String::from_utf8(to_canonical(v).unwrap()).unwrap()
    }

    fn canon_str(s: &str) -> String {
        canon(&serde_json::from_str(s).unwrap())
    }

    #[test]
    fn sorts_keys_bytewise_on_raw_keys() {
        assert_eq!(
            canon_str(r#"{"b":1,"a":{"z":[3,1,2],"y":null},"A":true}"#),
            r#"{"A":true,"a":{"y":null,"z":[3,1,2]},"b":1}"#
        );
        // Go sorts the raw keys: "a" < "a b" < "a!" (prefix first). olpc-cjson sorts the quoted
        // keys and would put "a b" and "a!" before "a" because ' ' and '!' are below '"'.
        assert_eq!(
            canon_str(r#"{"a!":3,"a b":2,"a":1}"#),
            r#"{"a":1,"a b":2,"a!":3}"#
        );
        // A control-character continuation sorts after the bare prefix, and is written raw.
        assert_eq!(
            canon_str("{\"a\\u0001\":2,\"a\":1}"),
            "{\"a\":1,\"a\u{1}\":2}"
        );
        // Keys containing the escaped characters sort on their raw bytes ('"' 0x22 < '\\' 0x5c).
        assert_eq!(
            canon_str(r#"{"a\\":2,"a\"":1,"a":0}"#),
            r#"{"a":0,"a\"":1,"a\\":2}"#
        );
        // Non-ASCII keys sort by UTF-8 bytes.
        assert_eq!(
            canon_str(r#"{"é":1,"z":2,"\u2028":3}"#),
            "{\"z\":2,\"é\":1,\"\u{2028}\":3}"
        );
    }

    #[test]
    fn escapes_only_quote_and_backslash() {
        let v = json!("q\" b\\ <>& \u{2028}\u{2029} ü 世 \n\t\r\u{1}\u{1f}\u{7f}/");
        assert_eq!(
            canon(&v),
            "\"q\\\" b\\\\ <>& \u{2028}\u{2029} ü 世 \n\t\r\u{1}\u{1f}\u{7f}/\""
        );
        // Parsed from a Go-style HTML-escaped document the raw characters come back.
        assert_eq!(canon_str(r#""\u003cx\u003e\u0026""#), r#""<x>&""#);
        assert_eq!(canon(&json!("")), r#""""#);
    }

    #[test]
    fn numbers_are_integers_only() {
        assert_eq!(canon_str("1"), "1");
        assert_eq!(canon_str("1.0"), "1");
        assert_eq!(canon_str("1e2"), "100");
        assert_eq!(canon_str("-0"), "0");
        assert_eq!(canon_str("-0.0"), "0");
        assert_eq!(canon_str("-17"), "-17");
        assert_eq!(canon_str("0"), "0");
        assert_eq!(canon_str("9007199254740992"), "9007199254740992");
        // Go decodes to float64 first: 2^53+1 rounds to 2^53.
        assert_eq!(canon_str("9007199254740993"), "9007199254740992");
        assert_eq!(canon_str("-9223372036854775808"), "-9223372036854775808");
        assert!(matches!(
            to_canonical(&serde_json::from_str("1.5").unwrap()),
            Err(CanonicalError::NonIntegral(_))
        ));
        assert!(matches!(
            to_canonical(&serde_json::from_str("-0.25").unwrap()),
            Err(CanonicalError::NonIntegral(_))
        ));
        assert!(matches!(
            to_canonical(&json!({"a": [1, {"b": 2.5}]})),
            Err(CanonicalError::NonIntegral(_))
        ));
        // i64::MAX and u64::MAX become >= 2^63 as float64.
        assert!(matches!(
            to_canonical(&json!(i64::MAX)),
            Err(CanonicalError::OutOfRange(_))
        ));
        assert!(matches!(
            to_canonical(&json!(u64::MAX)),
            Err(CanonicalError::OutOfRange(_))
        ));
        assert!(matches!(
            to_canonical(&serde_json::from_str("1e300").unwrap()),
            Err(CanonicalError::OutOfRange(_))
        ));
    }

    #[test]
    fn literals_arrays_and_nesting() {
        assert_eq!(
            canon_str(r#" { "k" : [ true , false , null , [ ] , { } , [ "b" , "a" ] ] } "#),
            r#"{"k":[true,false,null,[],{},["b","a"]]}"#
        );
    }

    /// notary0.1 and notary0.3 files are byte-exact Go output: the canonical form of the parsed
    /// `signed` object must equal the raw `signed` bytes of the file.
    #[test]
    fn round_trips_byte_exact_notary_fixtures() {
        if !crate::notary::fixtures_present() {
            return;
        }
        let mut checked = 0;
        for dir in ["notary/notary0.1", "notary/notary0.3"] {
            for role in [
                "root",
                "targets",
                "snapshot",
                "timestamp",
                "targets/releases",
            ] {
                let path = crate::notary::fixtures_dir().join(format!("{dir}/{role}.json"));
                let Ok(raw) = std::fs::read(&path) else {
                    continue;
                };
                let prefix = br#"{"signed":"#;
                let suffix_at = raw
                    .windows(br#","signatures":["#.len())
                    .rposition(|w| w == br#","signatures":["#)
                    .unwrap();
                assert!(raw.starts_with(prefix), "{}", path.display());
                let signed_raw = &raw[prefix.len()..suffix_at];
                let parsed: Value = serde_json::from_slice(&raw).unwrap();
                let canonical = to_canonical(&parsed["signed"]).unwrap();
                assert_eq!(
                    String::from_utf8_lossy(&canonical),
                    String::from_utf8_lossy(signed_raw),
                    "{}",
                    path.display()
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 9);
    }
}

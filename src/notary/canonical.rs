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

/// What [`canonical_shape`] learned about JSON text that is already in canonical form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CanonicalShape<'a> {
    /// Nesting depth, as `schema::json_depth` counts it (an object of scalars is 1).
    pub depth: usize,
    /// The top-level `_type` member, when it is a string without escapes.
    pub type_name: Option<&'a str>,
}

/// A streaming check that `bytes` is a JSON object written exactly as [`to_canonical`] would
/// write it after parsing (so the canonical bytes ARE `bytes`, and no tree has to be built to
/// compute them), nested at most `max_depth` levels. `None` when it is not, or when this check
/// is unsure (the caller then takes the general path: parse, then [`to_canonical`]):
///
/// - no whitespace; object keys strictly increasing bytewise (so sorted as Go sorts them and
///   never duplicated) and free of escapes; strings valid UTF-8 without raw control characters
///   (which JSON forbids) and with no escape other than `\"` and `\\` (the only two canonical
///   form writes);
/// - numbers only as plain integers of at most 15 digits (exact in Go's `float64`), no `-0`;
/// - `true`, `false`, `null` literally.
///
/// Linear in the input, no allocation; recursion is bounded by `max_depth`.
pub fn canonical_shape(bytes: &[u8], max_depth: usize) -> Option<CanonicalShape<'_>> {
    let mut scan = Scan {
        b: bytes,
        i: 0,
        depth: 0,
        max_depth,
        type_name: None,
    };
    if bytes.first() != Some(&b'{') {
        return None;
    }
    scan.value(0)?;
    (scan.i == bytes.len()).then_some(CanonicalShape {
        depth: scan.depth,
        type_name: scan.type_name,
    })
}

/// The state of [`canonical_shape`]: the input, the position, the deepest level seen.
struct Scan<'a> {
    b: &'a [u8],
    i: usize,
    depth: usize,
    max_depth: usize,
    type_name: Option<&'a str>,
}

impl<'a> Scan<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn value(&mut self, level: usize) -> Option<()> {
        match self.peek()? {
            b'{' => self.object(level + 1),
            b'[' => self.array(level + 1),
            b'"' => self.string().map(|_| ()),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn enter(&mut self, level: usize) -> Option<()> {
        if level > self.max_depth {
            return None;
        }
        self.depth = self.depth.max(level);
        self.i += 1;
        Some(())
    }

    fn object(&mut self, level: usize) -> Option<()> {
        self.enter(level)?;
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        let mut prev: Option<&[u8]> = None;
        loop {
            let (key, escaped) = self.string()?;
            if escaped || prev.is_some_and(|p| p >= key) {
                return None;
            }
            prev = Some(key);
            if self.peek()? != b':' {
                return None;
            }
            self.i += 1;
            if level == 1 && key == b"_type" && self.peek() == Some(b'"') {
                let (value, escaped) = self.string()?;
                if !escaped {
                    self.type_name = std::str::from_utf8(value).ok();
                }
            } else {
                self.value(level)?;
            }
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    fn array(&mut self, level: usize) -> Option<()> {
        self.enter(level)?;
        if self.peek()? == b']' {
            self.i += 1;
            return Some(());
        }
        loop {
            self.value(level)?;
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// A string at `self.i`: its raw content and whether it holds an escape.
    fn string(&mut self) -> Option<(&'a [u8], bool)> {
        if self.peek()? != b'"' {
            return None;
        }
        let start = self.i + 1;
        let mut i = start;
        let mut escaped = false;
        loop {
            match *self.b.get(i)? {
                b'"' => break,
                b'\\' => match self.b.get(i + 1)? {
                    b'"' | b'\\' => {
                        escaped = true;
                        i += 2;
                    }
                    _ => return None,
                },
                c if c < 0x20 => return None,
                _ => i += 1,
            }
        }
        let content = self.b.get(start..i)?;
        std::str::from_utf8(content).ok()?;
        self.i = i + 1;
        Some((content, escaped))
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        if self.b.get(self.i..self.i + word.len())? != word {
            return None;
        }
        self.i += word.len();
        Some(())
    }

    fn number(&mut self) -> Option<()> {
        let negative = self.peek()? == b'-';
        if negative {
            self.i += 1;
        }
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        let digits = self.b.get(start..self.i)?;
        match digits {
            [] => None,
            [b'0'] if negative => None,
            [b'0'] => Some(()),
            [b'0', ..] => None,
            _ if digits.len() > 15 => None,
            _ => Some(()),
        }
    }
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
                // So the one-pass check takes the fast path on real notary files.
                let shape = canonical_shape(signed_raw, 64).unwrap();
                assert_eq!(
                    shape.depth,
                    crate::notary::schema::json_depth(&parsed["signed"])
                );
                assert!(shape.type_name.is_some(), "{}", path.display());
                checked += 1;
            }
        }
        assert_eq!(checked, 9);
    }

    // ---- canonical_shape ----------------------------------------------------------------

    fn shape(s: &str) -> Option<CanonicalShape<'_>> {
        canonical_shape(s.as_bytes(), 64)
    }

    #[test]
    fn canonical_text_is_recognised_with_depth_and_type() {
        let text = r#"{"_type":"Targets","delegations":{"keys":{},"roles":[]},"expires":"2030-01-01T00:00:00Z","targets":{"v1":{"hashes":{"sha256":"qg=="},"length":12}},"version":-3}"#;
        let got = shape(text).unwrap();
        assert_eq!(got.type_name, Some("Targets"));
        let v: Value = serde_json::from_str(text).unwrap();
        assert_eq!(got.depth, crate::notary::schema::json_depth(&v));
        assert_eq!(canon(&v), text);
        assert_eq!(shape(r#"{}"#).unwrap().depth, 1);
        assert_eq!(
            shape(r#"{"a":[[]],"b":"x\"y\\z","c":null,"d":true,"e":false,"f":0}"#)
                .unwrap()
                .depth,
            3
        );
        // `_type` only counts at the top level and as a plain string.
        assert_eq!(shape(r#"{"a":{"_type":"Root"}}"#).unwrap().type_name, None);
        assert_eq!(shape(r#"{"_type":"a\"b"}"#).unwrap().type_name, None);
        assert_eq!(shape(r#"{"_type":1}"#).unwrap().type_name, None);
    }

    #[test]
    fn anything_not_exactly_canonical_is_left_to_the_general_path() {
        for text in [
            "",
            "[]",
            "\"s\"",
            r#"{"a":1} "#,
            r#"{"a":1}x"#,
            r#"{ "a":1}"#,
            r#"{"a": 1}"#,
            r#"{"b":1,"a":2}"#,
            r#"{"a":1,"a":2}"#,
            r#"{"a":"\n"}"#,
            r#"{"a":"\u0041"}"#,
            r#"{"a":"\/"}"#,
            r#"{"a\"b":1}"#,
            r#"{"a":-0}"#,
            r#"{"a":01}"#,
            r#"{"a":1.0}"#,
            r#"{"a":1e2}"#,
            r#"{"a":-}"#,
            r#"{"a":1234567890123456}"#,
            r#"{"a":tru}"#,
            r#"{"a":[1,]}"#,
            r#"{"a":[1 ]}"#,
            r#"{"a":{"b":1,}}"#,
            r#"{"a":"x"#,
            "{\"a\":\"\u{1}\"}",
        ] {
            assert_eq!(shape(text), None, "{text:?}");
        }
        assert_eq!(canonical_shape(b"{\"a\":\"\xff\"}", 64), None);
        assert_eq!(canonical_shape(br#"{"a":[[[]]]}"#, 3), None);
        assert!(canonical_shape(br#"{"a":[[]]}"#, 3).is_some());
        assert!(shape(r#"{"a":123456789012345,"b":-123456789012345}"#).is_some());
    }

    /// Small JSON values: every kind, keys and strings that need escapes or not, numbers around
    /// the limits of the fast path.
    fn arb_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let text = prop_oneof![
            "[a-c]{0,3}",
            Just("\"".to_owned()),
            Just("\\".to_owned()),
            Just("\n".to_owned()),
            Just("é".to_owned()),
            Just("_type".to_owned()),
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            (-1000i64..1000).prop_map(|n| json!(n)),
            Just(json!(1.5)),
            text.clone().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 24, 4, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(text.clone(), inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// Whatever text the check accepts is its own canonical form, at the depth
        /// `json_depth` counts: the fast path never changes what signatures cover.
        #[test]
        fn accepted_text_is_its_own_canonical_form(
            fields in proptest::collection::btree_map("[a-d_]{0,3}", arb_value(), 0..5),
        ) {
            let v = Value::Object(fields.into_iter().collect());
            let mut texts = vec![serde_json::to_string(&v).unwrap(), serde_json::to_string_pretty(&v).unwrap()];
            if let Ok(c) = to_canonical(&v) {
                texts.push(String::from_utf8(c).unwrap());
            }
            for text in texts {
                if let Some(got) = canonical_shape(text.as_bytes(), 64) {
                    let parsed: Value = serde_json::from_str(&text).unwrap();
                    proptest::prop_assert_eq!(canon(&parsed), text.clone());
                    proptest::prop_assert_eq!(got.depth, crate::notary::schema::json_depth(&parsed));
                    proptest::prop_assert_eq!(
                        got.type_name,
                        parsed.get("_type").and_then(Value::as_str).filter(|t| !t.contains(['"', '\\']))
                    );
                }
            }
        }
    }
}

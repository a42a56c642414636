//! Canonical JSON (the bytes Notary signatures cover): never panics on any parsed input however
//! deep or odd; fails exactly on non-integral or out-of-range numbers; equals an independent
//! model of Go's `canonical/json` (keys sorted bytewise on raw UTF-8, only `"` and `\` escaped,
//! integers via float64); canonical ∘ parse ∘ canonical is the identity and parse ∘ canonical
//! gives the value back.

use proptest::prelude::*;
use serde_json::{Map, Number, Value};
use trustgate::notary::canonical::to_canonical;

use super::config;

/// Strings with anything in them: control characters, quotes, backslashes, non-ASCII.
fn any_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{0,4}",
        ".{0,6}",
        "[\\x00-\\x1f\"\\\\/<>&\u{2028}\u{2029}\u{7f}a]{0,6}",
        any::<String>(),
    ]
}

fn number() -> impl Strategy<Value = Number> {
    prop_oneof![
        any::<i64>().prop_map(Number::from),
        any::<u64>().prop_map(Number::from),
        (-(1i64 << 53)..=(1i64 << 53)).prop_map(Number::from),
        any::<f64>().prop_filter_map("finite", Number::from_f64),
        (-1000i32..1000).prop_filter_map("finite", |n| Number::from_f64(f64::from(n))),
    ]
}

/// Any JSON value (objects with arbitrary keys, including keys that are prefixes of others).
fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number().prop_map(Value::Number),
        any_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((any_string(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// An independent model of Go's canonical encoder: `None` where Go refuses the value.
fn model(v: &Value, out: &mut Vec<u8>) -> Option<()> {
    match v {
        Value::Null => out.extend(b"null"),
        Value::Bool(b) => out.extend(if *b { &b"true"[..] } else { &b"false"[..] }),
        Value::Number(n) => {
            let f = n.as_f64()?;
            if !f.is_finite()
                || f.trunc() != f
                || !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f)
            {
                return None;
            }
            out.extend(format!("{}", f as i64).bytes());
        }
        Value::String(s) => {
            out.push(b'"');
            for c in s.chars() {
                if c == '"' || c == '\\' {
                    out.push(b'\\');
                }
                let mut buf = [0; 4];
                out.extend(c.encode_utf8(&mut buf).bytes());
            }
            out.push(b'"');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                model(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let sorted: std::collections::BTreeMap<&[u8], (&String, &Value)> =
                map.iter().map(|(k, v)| (k.as_bytes(), (k, v))).collect();
            out.push(b'{');
            for (i, (k, v)) in sorted.values().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                model(&Value::String((*k).clone()), out)?;
                out.push(b':');
                model(v, out)?;
            }
            out.push(b'}');
        }
    }
    Some(())
}

/// `v` made readable back by serde_json with the same value: control characters (which Go writes
/// raw and strict JSON parsers refuse) become `?`, numbers become integers within ±2^53 (beyond,
/// float64 rounds them; fractions have no canonical form).
fn readable(v: Value) -> Value {
    const LIMIT: i64 = 1 << 53;
    let text = |s: String| {
        s.chars()
            .map(|c| if c < ' ' { '?' } else { c })
            .collect::<String>()
    };
    match v {
        Value::String(s) => Value::String(text(s)),
        Value::Number(n) => {
            let i = n
                .as_i64()
                .unwrap_or_else(|| n.as_f64().unwrap_or(0.0) as i64);
            Value::from(i.clamp(-LIMIT, LIMIT))
        }
        Value::Array(items) => Value::Array(items.into_iter().map(readable).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (text(k), readable(v)))
                .collect(),
        ),
        other => other,
    }
}

/// Nested arrays/objects `depth` deep, as text.
fn nested(depth: usize, objects: bool) -> String {
    if objects {
        format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth))
    } else {
        format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
    }
}

proptest! {
    #![proptest_config(config(1, "canonical"))]

    #[test]
    fn canonical_form_matches_the_go_model(v in any_value()) {
        let mut expected = Vec::new();
        let ours = to_canonical(&v);
        match model(&v, &mut expected) {
            Some(()) => prop_assert_eq!(ours.expect("canonical"), expected),
            None => {
                let e = ours.expect_err("a number Go refuses");
                prop_assert!(!e.to_string().is_empty());
            }
        }
    }

    #[test]
    fn canonical_form_is_idempotent_and_parses_back(v in any_value().prop_map(readable)) {
        let Ok(c) = to_canonical(&v) else {
            return Ok(());
        };
        let parsed: Value = serde_json::from_slice(&c).expect("canonical output is JSON");
        prop_assert_eq!(&parsed, &v);
        prop_assert_eq!(to_canonical(&parsed).expect("again"), c);
    }

    #[test]
    fn odd_json_text_never_panics(text in prop_oneof![
        "[\\[\\]{}:,\"0-9eE.+ a-z\\\\-]{0,60}",
        "-?[0-9]{1,30}(\\.[0-9]{0,20})?([eE][+-]?[0-9]{1,4})?",
        any::<String>(),
    ]) {
        let Ok(v) = serde_json::from_str::<Value>(&text) else {
            return Ok(());
        };
        let Ok(c) = to_canonical(&v) else {
            return Ok(());
        };
        // Canonical bytes of a parsed value are stable under another round.
        if let Ok(again) = serde_json::from_slice::<Value>(&c) {
            prop_assert_eq!(to_canonical(&again).expect("stable"), c.clone());
        }
        // A number is Go's int64(float64(text)): std's parse is correctly rounded, as Go's is.
        if v.is_number() {
            let f: f64 = text.trim().parse().expect("a JSON number is a float");
            prop_assert_eq!(String::from_utf8(c).expect("utf8"), format!("{}", f as i64), "{}", text);
        }
    }

    #[test]
    fn numbers_are_go_float64_integers(
        digits in "[1-9][0-9]{15,40}",
        exponent in prop::option::of(-30i32..30),
        negative in any::<bool>(),
    ) {
        let text = format!(
            "{}{digits}{}",
            if negative { "-" } else { "" },
            exponent.map(|e| format!("e{e}")).unwrap_or_default()
        );
        let f: f64 = text.parse().expect("float");
        let v: Value = serde_json::from_str(&text).expect("json number");
        match to_canonical(&v) {
            Ok(c) => prop_assert_eq!(String::from_utf8(c).expect("utf8"), format!("{}", f as i64), "{}", text),
            Err(e) => prop_assert!(
                f.fract() != 0.0 || f.abs() >= 9.223_372_036_854_776e18,
                "{} refused: {}", text, e
            ),
        }
    }

    #[test]
    fn deep_nesting_is_refused_or_encoded(depth in 1usize..3000, objects in any::<bool>()) {
        let text = nested(depth, objects);
        match serde_json::from_str::<Value>(&text) {
            Ok(v) => {
                let c = to_canonical(&v).expect("canonical");
                prop_assert_eq!(c, text.into_bytes());
            }
            // serde_json's recursion limit (128) refuses it with an error.
            Err(e) => prop_assert!(depth > 100 && e.to_string().contains("recursion")),
        }
    }
}

/// Found by `odd_json_text_never_panics` and `numbers_are_go_float64_integers`: without
/// serde_json's `float_roundtrip`, these parsed one float64 ulp away from Go's (correctly rounded)
/// `ParseFloat`, so their canonical bytes differed from the ones Notary signs.
#[test]
fn integral_numbers_in_decimal_or_exponent_form_round_like_go() {
    for (text, go) in [
        ("5000000001270336.000", "5000000001270336"),
        (
            "1845000000023943297000000000000000000e-20",
            "18450000000239432",
        ),
    ] {
        let v: Value = serde_json::from_str(text).expect("number");
        assert_eq!(
            to_canonical(&v).expect("canonical"),
            go.as_bytes(),
            "{text}"
        );
    }
}

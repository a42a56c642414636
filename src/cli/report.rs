//! The signature-format part of `check` and `audit` output: one line per evaluated format
//! under each decision, and the migration summary (which admitted images still pass only
//! through Docker Content Trust, i.e. no Notation or cosign signature passed for them).

use serde_json::{Value, json};
use trustgate::decision::Decision;
use trustgate::policy::formats::SignatureFormat;

/// The text lines of `d`'s formats (none for policies without `spec.signatures`).
pub fn format_lines(d: &Decision) -> Vec<String> {
    d.formats
        .iter()
        .flatten()
        .map(|(format, e)| {
            let verdict = if e.passed { "passed" } else { "FAILED" };
            format!("{:<8} {:<9} {verdict:<7} {}", "", format.as_str(), e.reason)
        })
        .collect()
}

/// Whether `d` was admitted with Docker Content Trust as the only passing format.
fn only_notary_v1(d: &Decision) -> bool {
    let Some(formats) = &d.formats else {
        return false;
    };
    d.allowed
        && formats
            .get(&SignatureFormat::NotaryV1)
            .is_some_and(|e| e.passed)
        && formats
            .iter()
            .all(|(f, e)| *f == SignatureFormat::NotaryV1 || !e.passed)
}

/// The images (deduplicated, in order) admitted only through Docker Content Trust, and how many
/// admitted decisions showed their formats; `None` when no decision showed formats.
fn migration<'a>(
    decisions: impl IntoIterator<Item = &'a Decision>,
) -> Option<(Vec<String>, usize)> {
    let mut only = Vec::new();
    let mut admitted = 0;
    let mut any = false;
    for d in decisions {
        if d.formats.is_none() {
            continue;
        }
        any = true;
        if d.allowed {
            admitted += 1;
        }
        if only_notary_v1(d) && !only.contains(&d.image) {
            only.push(d.image.clone());
        }
    }
    any.then_some((only, admitted))
}

/// The `MIGRATION ...` summary line, when some decision showed its formats.
pub fn migration_line<'a>(decisions: impl IntoIterator<Item = &'a Decision>) -> Option<String> {
    let (only, admitted) = migration(decisions)?;
    Some(if only.is_empty() {
        format!(
            "MIGRATION every one of the {admitted} admitted images passed a Notation or cosign signature check"
        )
    } else {
        format!(
            "MIGRATION {} of {admitted} admitted images passed only through NotaryV1: {}",
            only.len(),
            only.join(", ")
        )
    })
}

/// The `migration` object of JSON output (`null` when no decision showed its formats).
pub fn migration_json<'a>(decisions: impl IntoIterator<Item = &'a Decision>) -> Value {
    match migration(decisions) {
        None => Value::Null,
        Some((only, admitted)) => json!({ "admitted": admitted, "onlyNotaryV1": only }),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use trustgate::decision::ReasonClass;
    use trustgate::policy::{Action, Mode};
    use trustgate::signatures::Evaluation;

    use super::*;

    fn decision(image: &str, allowed: bool, formats: &[(SignatureFormat, bool)]) -> Decision {
        let formats: BTreeMap<SignatureFormat, Evaluation> = formats
            .iter()
            .map(|(f, passed)| {
                (
                    *f,
                    Evaluation {
                        passed: *passed,
                        reason: "r".into(),
                        signers: Vec::new(),
                    },
                )
            })
            .collect();
        Decision {
            image: image.into(),
            reference: None,
            digest: None,
            policy: Some("p".into()),
            action: Action::Verify,
            mode: Mode::Enforce,
            allowed,
            verified: allowed,
            reason_class: ReasonClass::Verified,
            reason: "r".into(),
            signers: Vec::new(),
            formats: (!formats.is_empty()).then_some(formats),
        }
    }

    #[test]
    fn only_images_without_a_passing_new_format_are_named() {
        use SignatureFormat::*;
        let ds = [
            decision("a:1", true, &[(NotaryV1, true), (Notation, true)]),
            decision("b:1", true, &[(NotaryV1, true), (Notation, false)]),
            decision("b:1", true, &[(NotaryV1, true), (Notation, false)]),
            decision("c:1", false, &[(NotaryV1, false), (Notation, false)]),
            decision("d:1", true, &[(Notation, true)]),
            decision("e:1", true, &[]),
        ];
        assert_eq!(
            migration_line(&ds).as_deref(),
            Some("MIGRATION 1 of 4 admitted images passed only through NotaryV1: b:1")
        );
        assert_eq!(
            migration_json(&ds),
            json!({"admitted": 4, "onlyNotaryV1": ["b:1"]})
        );
        assert_eq!(
            migration_line(&ds[4..]).map(|l| l.contains("every one")),
            Some(true)
        );
        assert_eq!(migration_line(&ds[5..]), None);
        assert_eq!(format_lines(&ds[1]).len(), 2);
        assert!(format_lines(&ds[1])[1].contains("Notation  FAILED"));
    }
}

//! From decisions to the `AdmissionResponse` the API server reads:
//!
//! * allowed, or denied with HTTP code 403 and a message listing every rejected image with its
//!   one-line reason and where it is used (at most `LIMITS.denial_images_listed` images, then
//!   "and N more"; each reason at most `LIMITS.denial_reason_chars` characters);
//! * one `warnings` entry per image a `mode: Warn` policy admitted although it failed
//!   (at most `LIMITS.warning_chars` characters each, as the API server truncates longer ones;
//!   at most `LIMITS.warnings_per_response`);
//! * `auditAnnotations` on every response: `summary`, and `image-<i>` =
//!   `VERDICT reference@digest policy=<policy> <reason>` per image (at most
//!   `LIMITS.audit_annotation_chars` characters, at most `LIMITS.audit_annotated_images`
//!   images, then `images-omitted`).

use std::collections::HashMap;

use kube::core::Status;
use kube::core::admission::AdmissionResponse;

use crate::audit::log::policy_label;
use crate::decision::Decision;
use crate::limits::LIMITS;

const MAX_LISTED: usize = LIMITS.denial_images_listed;
const MAX_REASON: usize = LIMITS.denial_reason_chars;
const MAX_WARNING: usize = LIMITS.warning_chars;
const MAX_WARNINGS: usize = LIMITS.warnings_per_response;
const MAX_ANNOTATION: usize = LIMITS.audit_annotation_chars;
const MAX_ANNOTATED: usize = LIMITS.audit_annotated_images;

/// The decision for one distinct image of a review, and every place the image is used.
#[derive(Debug, Clone, Copy)]
pub struct Checked<'a> {
    /// The engine's decision.
    pub decision: &'a Decision,
    /// Where the image is used (`spec.containers[0] (name: app)`), at least one.
    pub locations: &'a [String],
}

impl Checked<'_> {
    /// `spec.containers[0] (name: app)`, or `... (and 2 more places)`.
    pub fn where_used(&self) -> String {
        match self.locations {
            [] => String::new(),
            [one] => one.clone(),
            [first, rest @ ..] => format!(
                "{first} and {} more place{}",
                rest.len(),
                if rest.len() == 1 { "" } else { "s" }
            ),
        }
    }
}

/// `s` cut to at most `max` characters (on a character boundary), with `…` when cut.
pub fn bounded(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// `s` on one line: every run of whitespace (including newlines) becomes one space.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Denies `rsp` with HTTP code 403 and `message`.
pub fn deny(mut rsp: AdmissionResponse, message: &str) -> AdmissionResponse {
    rsp.allowed = false;
    rsp.result = Status::failure(message, "Forbidden").with_code(403);
    rsp
}

/// Denies `rsp` before any image was decided (fail closed): 403 with `why` (made one line and
/// bounded) as the message and the `summary` annotation.
pub fn refuse(rsp: AdmissionResponse, why: &str) -> AdmissionResponse {
    let message = bounded(&one_line(why), 2 * MAX_REASON);
    let mut rsp = deny(rsp, &message);
    rsp.audit_annotations
        .insert("summary".into(), bounded(&message, MAX_ANNOTATION));
    rsp
}

/// Admits `rsp` without checking any image; `why` goes to the `summary` annotation.
pub fn not_checked(mut rsp: AdmissionResponse, why: &str) -> AdmissionResponse {
    rsp.allowed = true;
    rsp.audit_annotations
        .insert("summary".into(), bounded(why, MAX_ANNOTATION));
    rsp
}

/// The `image-<i>` annotation value of one decision.
pub fn annotation(d: &Decision) -> String {
    let reference = d.reference.as_deref().unwrap_or(&d.image);
    let pinned = match &d.digest {
        Some(digest) if !reference.contains('@') => format!("{reference}@{digest}"),
        _ => reference.to_string(),
    };
    // Reasons start with the reference; it is already in the value.
    let reason = d
        .reason
        .strip_prefix(reference)
        .map_or(d.reason.as_str(), str::trim_start);
    bounded(
        &format!(
            "{} {pinned} policy={} {reason}",
            d.verdict(),
            policy_label(d)
        ),
        MAX_ANNOTATION,
    )
}

/// The summary line: `3 images: 2 admitted, 1 rejected`.
pub fn summary(checked: &[Checked]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for c in checked {
        let verdict = c.decision.result();
        match counts.iter_mut().find(|(v, _)| *v == verdict) {
            Some((_, n)) => *n += 1,
            None => counts.push((verdict, 1)),
        }
    }
    let parts: Vec<String> = counts.iter().map(|(v, n)| format!("{n} {v}")).collect();
    format!("{}: {}", plural(checked.len(), "image"), parts.join(", "))
}

/// The denial message listing the rejected images (`None` when none is rejected).
pub fn denial_message(checked: &[Checked]) -> Option<String> {
    let rejected: Vec<&Checked<'_>> = checked.iter().filter(|c| !c.decision.allowed).collect();
    if rejected.is_empty() {
        return None;
    }
    let listed: Vec<String> = rejected
        .iter()
        .take(MAX_LISTED)
        .map(|c| {
            format!(
                "{} (in {})",
                bounded(&c.decision.reason, MAX_REASON),
                c.where_used()
            )
        })
        .collect();
    let mut message = format!(
        "trustgate: {} of {} rejected: {}",
        plural(rejected.len(), "image"),
        checked.len(),
        listed.join("; ")
    );
    if rejected.len() > MAX_LISTED {
        message.push_str(&format!("; and {} more", rejected.len() - MAX_LISTED));
    }
    Some(message)
}

/// The warnings: one per image admitted by a `mode: Warn` policy although it failed.
pub fn warnings(checked: &[Checked]) -> Vec<String> {
    let warned: Vec<&Checked<'_>> = checked
        .iter()
        .filter(|c| c.decision.verdict() == "WARNED")
        .collect();
    let mut out: Vec<String> = warned
        .iter()
        .take(MAX_WARNINGS)
        .map(|c| {
            bounded(
                &format!("{} (in {})", c.decision.reason, c.where_used()),
                MAX_WARNING,
            )
        })
        .collect();
    if warned.len() > MAX_WARNINGS {
        out.push(format!(
            "trustgate: and {} more images failed verification under mode Warn",
            warned.len() - MAX_WARNINGS
        ));
    }
    out
}

/// The audit annotations: `summary` and one `image-<i>` per image.
pub fn audit_annotations(checked: &[Checked]) -> HashMap<String, String> {
    let mut out: HashMap<String, String> = checked
        .iter()
        .take(MAX_ANNOTATED)
        .enumerate()
        .map(|(i, c)| (format!("image-{i}"), annotation(c.decision)))
        .collect();
    if checked.len() > MAX_ANNOTATED {
        out.insert(
            "images-omitted".into(),
            (checked.len() - MAX_ANNOTATED).to_string(),
        );
    }
    out.insert("summary".into(), summary(checked));
    out
}

/// The full answer for a review whose images were decided.
pub fn respond(rsp: AdmissionResponse, checked: &[Checked]) -> AdmissionResponse {
    let mut rsp = match denial_message(checked) {
        Some(message) => deny(rsp, &message),
        None => {
            let mut rsp = rsp;
            rsp.allowed = true;
            rsp
        }
    };
    let warnings = warnings(checked);
    if !warnings.is_empty() {
        rsp.warnings = Some(warnings);
    }
    rsp.audit_annotations = audit_annotations(checked);
    rsp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::ReasonClass;
    use crate::policy::{Action, Mode};

    fn decision(image: &str, allowed: bool, verified: bool, mode: Mode) -> (Decision, Vec<String>) {
        (
            Decision {
                image: image.into(),
                reference: Some(format!("docker.io/library/{image}")),
                digest: Some(format!("sha256:{}", "a".repeat(64))),
                policy: Some("shop/p".into()),
                action: Action::Verify,
                mode,
                allowed,
                verified,
                reason_class: if verified {
                    ReasonClass::Verified
                } else {
                    ReasonClass::Unsigned
                },
                reason: format!("docker.io/library/{image} something happened"),
                signers: Vec::new(),
                formats: None,
            },
            vec!["spec.containers[0] (name: app)".to_string()],
        )
    }

    fn view(all: &[(Decision, Vec<String>)]) -> Vec<Checked<'_>> {
        all.iter()
            .map(|(decision, locations)| Checked {
                decision,
                locations,
            })
            .collect()
    }

    #[test]
    fn bounded_cuts_on_characters() {
        assert_eq!(bounded("abc", 3), "abc");
        assert_eq!(bounded("äöüß", 3), "äö…");
        assert_eq!(one_line(" a\n  b\tc "), "a b c");
    }

    #[test]
    fn refusals_carry_a_summary() {
        let rsp = refuse(AdmissionResponse::invalid("x"), "policies are\nnot loaded");
        assert!(!rsp.allowed);
        assert_eq!(rsp.result.code, 403);
        assert_eq!(rsp.result.message, "policies are not loaded");
        assert_eq!(rsp.audit_annotations["summary"], "policies are not loaded");
    }

    #[test]
    fn denial_lists_rejected_images_and_bounds_the_list() {
        let mut owned = vec![decision("ok:1", true, true, Mode::Enforce)];
        for i in 0..12 {
            owned.push(decision(&format!("bad:{i}"), false, false, Mode::Enforce));
        }
        let all = view(&owned);
        let msg = denial_message(&all).unwrap();
        assert!(
            msg.starts_with("trustgate: 12 images of 13 rejected: "),
            "{msg}"
        );
        assert!(msg.contains(
            "docker.io/library/bad:0 something happened (in spec.containers[0] (name: app))"
        ));
        assert!(msg.contains("bad:9"));
        assert!(!msg.contains("bad:10 "));
        assert!(msg.ends_with("; and 2 more"), "{msg}");
        assert_eq!(denial_message(&all[..1]), None);
    }

    #[test]
    fn respond_sets_code_warnings_and_annotations() {
        let owned = vec![
            decision("ok:1", true, true, Mode::Enforce),
            decision("warn:1", true, false, Mode::Warn),
            decision("audit:1", true, false, Mode::Audit),
        ];
        let all = view(&owned);
        let rsp = respond(AdmissionResponse::invalid("x"), &all);
        assert!(rsp.allowed);
        let warnings = rsp.warnings.clone().unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("warn:1"));
        let a = &rsp.audit_annotations;
        assert_eq!(a["summary"], "3 images: 1 admitted, 1 warned, 1 audited");
        assert!(a["image-0"].starts_with(&format!(
            "ADMITTED docker.io/library/ok:1@sha256:{} policy=shop/p ",
            "a".repeat(64)
        )));
        assert!(a["image-2"].starts_with("AUDITED "));
        assert_eq!(
            a["image-2"],
            format!(
                "AUDITED docker.io/library/audit:1@sha256:{} policy=shop/p something happened",
                "a".repeat(64)
            )
        );

        let bad = [decision("bad:1", false, false, Mode::Enforce)];
        let denied = respond(AdmissionResponse::invalid("x"), &view(&bad));
        assert!(!denied.allowed);
        assert_eq!(denied.result.code, 403);
        assert!(denied.result.message.contains("bad:1"));
    }

    #[test]
    fn where_used_counts_extra_places() {
        let (d, mut locations) = decision("a:1", true, true, Mode::Enforce);
        locations.push("spec.initContainers[0]".into());
        let c = Checked {
            decision: &d,
            locations: &locations,
        };
        assert_eq!(
            c.where_used(),
            "spec.containers[0] (name: app) and 1 more place"
        );
    }

    #[test]
    fn every_response_bound_stops_one_past_its_limit() {
        // Warnings: one past the count gives the count plus one summary line.
        let owned: Vec<_> = (0..=MAX_WARNINGS)
            .map(|i| decision(&format!("warn:{i}"), true, false, Mode::Warn))
            .collect();
        let w = warnings(&view(&owned));
        assert_eq!(w.len(), MAX_WARNINGS + 1);
        assert!(
            w[MAX_WARNINGS].contains("and 1 more"),
            "{}",
            w[MAX_WARNINGS]
        );
        // Annotated images: one past the count is omitted and counted.
        let owned: Vec<_> = (0..=MAX_ANNOTATED)
            .map(|i| decision(&format!("ok:{i}"), true, true, Mode::Enforce))
            .collect();
        let a = audit_annotations(&view(&owned));
        assert!(a.contains_key(&format!("image-{}", MAX_ANNOTATED - 1)));
        assert!(!a.contains_key(&format!("image-{MAX_ANNOTATED}")));
        assert_eq!(a["images-omitted"], "1");
        // Lengths: one character past each is cut to it.
        let (mut long, _) = decision("long:1", false, false, Mode::Enforce);
        long.reason = "r".repeat(MAX_ANNOTATION + 1);
        assert_eq!(annotation(&long).chars().count(), MAX_ANNOTATION);
        long.reason = "r".repeat(MAX_REASON + 1);
        let locations = vec!["spec.containers[0]".to_string()];
        let msg = denial_message(&[Checked {
            decision: &long,
            locations: &locations,
        }])
        .unwrap();
        assert!(
            msg.contains(&format!("{}… (in", "r".repeat(MAX_REASON - 1))),
            "{msg}"
        );
        assert!(!msg.contains(&"r".repeat(MAX_REASON)));
        long.mode = Mode::Warn;
        long.allowed = true;
        long.reason = "r".repeat(MAX_WARNING + 1);
        let w = warnings(&[Checked {
            decision: &long,
            locations: &locations,
        }]);
        assert_eq!(w[0].chars().count(), MAX_WARNING);
    }
}

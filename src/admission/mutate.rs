//! `POST /mutate`: pin what was verified. The webhook decides a review exactly as `/validate`
//! does (same engine, caches and messages); when the object is admitted, every image location
//! whose image a **Verify** policy verified and that is written by tag is rewritten to
//! `name:tag@sha256:<verified digest>`, so the kubelet pulls the bytes that were checked rather
//! than whatever the tag names when it pulls.
//!
//! * One JSONPatch `replace` per rewritten location (containers, initContainers,
//!   ephemeralContainers, image volumes), and one `add` of the annotation
//!   [`PINNED_ANNOTATION`] with a line `location: original -> pinned` per rewrite (merged with
//!   the annotation already there on UPDATE; bounded by `LIMITS.pinned_annotation_bytes`).
//! * Left as written: references that already carry a digest, images admitted by `action:
//!   Allow` or by the default action, Warn/Audit admissions of images that failed.
//! * Idempotent: a pinned reference carries a digest, so `/mutate` of its own output changes
//!   nothing (the API server may call it again with `reinvocationPolicy: IfNeeded`).
//! * Only Pods are pinned unless the webhook pins templates (`serve --pin-templates`): workload
//!   templates are left to the Pods they create, which GitOps tools do not fight over.
//!
//! [`Decision::pinned`] is the one rule for the pinned form; `trustgate check --pin` uses it too.

use std::collections::BTreeMap;

use kube::core::DynamicObject;
use kube::core::admission::AdmissionResponse;
use serde_json::{Value, json};

use crate::audit::context::ReviewContext;
use crate::decision::Decision;
use crate::image::reference::ImageRef;
use crate::limits::LIMITS;
use crate::metrics::Metrics;
use crate::policy::Action;

use super::extract::image_sites;
use super::response::refuse;

/// The annotation recording every rewrite, one `location: original -> pinned` line each.
pub const PINNED_ANNOTATION: &str = "trustgate.dev/pinned-images";

impl Decision {
    /// The reference `/mutate` writes for this decision's image: the image as written, with
    /// `:latest` when it names no tag, then `@` and the verified digest. `None` when the image
    /// is left as written: not verified by a Verify policy (Allow, default action, rejection, or
    /// a Warn/Audit admission of a failure), no digest known, or the reference already pins a
    /// digest.
    pub fn pinned(&self) -> Option<String> {
        if !(self.allowed && self.verified && self.action == Action::Verify)
            || self.policy.is_none()
        {
            return None;
        }
        let digest = self.digest.as_deref()?;
        let parsed = ImageRef::parse(&self.image).ok()?;
        if parsed.digest().is_some() {
            return None;
        }
        let latest = if parsed.tag().is_some() {
            ""
        } else {
            ":latest"
        };
        Some(format!("{}{latest}@{digest}", self.image))
    }
}

/// One rewrite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// Where, for people: `spec.containers[0] (name: app)`.
    pub location: String,
    /// The JSON pointer of the image string.
    pub pointer: String,
    /// The image as written.
    pub original: String,
    /// What it becomes.
    pub pinned: String,
}

/// Whether `/mutate` pins the images of the object under review: Pods always, other kinds
/// (pod templates, `--extra-kind`) only with `pin_templates`.
pub fn pins_kind(ctx: &ReviewContext, pin_templates: bool) -> bool {
    pin_templates || (ctx.group.is_empty() && ctx.kind == "Pod")
}

/// The decisions with `; pinned to <reference>` added to the reason of each image that will be
/// pinned, so the audit log line, the Event and the audit annotation say what the kubelet pulls.
pub fn note_pins(mut decisions: Vec<Decision>) -> Vec<Decision> {
    for d in &mut decisions {
        if let Some(pinned) = d.pinned() {
            d.reason = format!("{}; pinned to {pinned}", d.reason);
        }
    }
    decisions
}

/// The rewrites for the PodSpec at `path` in `object`, given the review's decisions (images
/// without a decision, e.g. those an UPDATE did not add, are left alone).
pub fn plan(object: &Value, path: &[String], decisions: &[Decision]) -> Vec<Pin> {
    let pinned: Vec<(&str, String)> = decisions
        .iter()
        .filter_map(|d| Some((d.image.as_str(), d.pinned()?)))
        .collect();
    if pinned.is_empty() {
        return Vec::new();
    }
    let Ok(Some(sites)) = image_sites(object, path) else {
        return Vec::new();
    };
    sites
        .into_iter()
        .filter_map(|site| {
            let pinned = pinned
                .iter()
                .find(|(image, _)| *image == site.image)
                .map(|(_, p)| p.clone())?;
            Some(Pin {
                location: site.location,
                pointer: site.pointer,
                original: site.image,
                pinned,
            })
        })
        .collect()
}

/// `lines` joined by newlines, at most `max` bytes: lines that do not fit are summarised in a
/// last line `... and N more`.
fn bounded_lines(lines: &[String], max: usize) -> String {
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        let more = format!("... and {} more", lines.len() - i);
        let needed = out.len() + usize::from(!out.is_empty()) + line.len();
        let reserve = if i + 1 < lines.len() {
            more.len() + 1
        } else {
            0
        };
        if needed + reserve > max {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&more);
            return out;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(line);
    }
    out
}

/// The JSONPatch of `pins` for an object whose annotations are `annotations`: one `replace`
/// per pin, then the [`PINNED_ANNOTATION`] (merged with the existing value when `merge`).
pub fn patch(
    pins: &[Pin],
    annotations: Option<&BTreeMap<String, String>>,
    merge: bool,
) -> Vec<Value> {
    let mut ops: Vec<Value> = pins
        .iter()
        .map(|p| json!({"op": "replace", "path": p.pointer, "value": p.pinned}))
        .collect();
    let mut lines: Vec<String> = match annotations.and_then(|a| a.get(PINNED_ANNOTATION)) {
        Some(existing) if merge => existing.lines().map(str::to_string).collect(),
        _ => Vec::new(),
    };
    for p in pins {
        let line = format!("{}: {} -> {}", p.location, p.original, p.pinned);
        if !lines.contains(&line) {
            lines.push(line);
        }
    }
    let value = bounded_lines(&lines, LIMITS.pinned_annotation_bytes);
    ops.push(match annotations {
        None => json!({
            "op": "add",
            "path": "/metadata/annotations",
            "value": { PINNED_ANNOTATION: value },
        }),
        Some(_) => json!({
            "op": "add",
            "path": format!("/metadata/annotations/{}", PINNED_ANNOTATION.replace('/', "~1")),
            "value": value,
        }),
    });
    ops
}

/// Adds the pinning patch to an admitted `/mutate` response (a denial is returned as it is),
/// counts the rewrites in `trustgate_images_pinned_total` and notes them in the `pinned` audit
/// annotation.
pub fn pin(
    mut rsp: AdmissionResponse,
    object: &DynamicObject,
    path: &[String],
    decisions: &[Decision],
    ctx: &ReviewContext,
    metrics: &Metrics,
) -> AdmissionResponse {
    if !rsp.allowed {
        return rsp;
    }
    let pins = plan(&object.data, path, decisions);
    if pins.is_empty() {
        return rsp;
    }
    let merge = ctx.operation == "UPDATE";
    let ops = patch(&pins, object.metadata.annotations.as_ref(), merge);
    let bytes = match serde_json::to_vec(&ops) {
        Ok(bytes) => bytes,
        Err(e) => {
            return refuse(
                rsp,
                &format!("trustgate: cannot encode the pinning patch: {e} (fail closed)"),
            );
        }
    };
    rsp.audit_annotations.insert(
        "pinned".into(),
        format!(
            "{} image location{} pinned to verified digests",
            pins.len(),
            if pins.len() == 1 { "" } else { "s" }
        ),
    );
    // `with_patch` is the only way to set the (private) patch type; the bytes are ours, built
    // from `ops` above, so no JSON-pointer parsing happens per review.
    let fallback = rsp.clone();
    match rsp.with_patch(json_patch::Patch(Vec::new())) {
        Ok(mut rsp) => {
            rsp.patch = Some(bytes);
            metrics
                .images_pinned
                .inc_by(u64::try_from(pins.len()).unwrap_or(u64::MAX));
            rsp
        }
        Err(e) => refuse(
            fallback,
            &format!("trustgate: cannot encode the pinning patch: {e} (fail closed)"),
        ),
    }
}

/// The JSON body of an AdmissionReview answer, with a response's `patch` as the base64 string
/// the API server's Go types expect for `[]byte` (kube serialises `Vec<u8>` as an array of
/// numbers, four times larger, which the API server also reads but more slowly).
pub fn encode_review(
    mut review: kube::core::admission::AdmissionReview<DynamicObject>,
) -> Result<Vec<u8>, serde_json::Error> {
    use base64::Engine as _;
    let Some(patch) = review.response.as_mut().and_then(|r| r.patch.take()) else {
        return serde_json::to_vec(&review);
    };
    let mut value = serde_json::to_value(&review)?;
    if let Some(response) = value.get_mut("response").and_then(Value::as_object_mut) {
        response.insert(
            "patch".into(),
            Value::String(base64::engine::general_purpose::STANDARD.encode(patch)),
        );
    }
    serde_json::to_vec(&value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::ReasonClass;
    use crate::policy::Mode;

    const D: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    fn verified(image: &str) -> Decision {
        Decision {
            image: image.into(),
            reference: ImageRef::parse(image).ok().map(|r| r.normalized()),
            digest: Some(D.into()),
            policy: Some("shop/signed".into()),
            action: Action::Verify,
            mode: Mode::Enforce,
            allowed: true,
            verified: true,
            reason_class: ReasonClass::Verified,
            reason: format!("{image} verified"),
            signers: vec!["targets/releases".into()],
            formats: None,
        }
    }

    fn path(p: &str) -> Vec<String> {
        p.split('.').map(str::to_string).collect()
    }

    #[test]
    fn only_verified_tag_references_are_pinned() {
        assert_eq!(
            verified("reg.example.com/shop/app:v1").pinned().as_deref(),
            Some(format!("reg.example.com/shop/app:v1@{D}").as_str())
        );
        assert_eq!(
            verified("nginx").pinned().as_deref(),
            Some(format!("nginx:latest@{D}").as_str())
        );
        assert_eq!(
            verified(&format!("reg.example.com/a:v1@{D}")).pinned(),
            None
        );
        assert_eq!(verified(&format!("reg.example.com/a@{D}")).pinned(), None);
        let mut allow = verified("reg.example.com/a:v1");
        allow.action = Action::Allow;
        assert_eq!(allow.pinned(), None);
        let mut default = verified("reg.example.com/a:v1");
        default.policy = None;
        assert_eq!(default.pinned(), None);
        let mut warned = verified("reg.example.com/a:v1");
        warned.verified = false;
        warned.mode = Mode::Warn;
        assert_eq!(warned.pinned(), None);
        let mut rejected = verified("reg.example.com/a:v1");
        rejected.allowed = false;
        assert_eq!(rejected.pinned(), None);
        let mut unresolved = verified("reg.example.com/a:v1");
        unresolved.digest = None;
        assert_eq!(unresolved.pinned(), None);
    }

    #[test]
    fn plan_and_patch_replace_each_location_and_annotate() {
        let object = json!({"spec": {
            "initContainers": [{"name": "setup", "image": "reg.example.com/a:v1"}],
            "containers": [
                {"name": "app", "image": "reg.example.com/a:v1"},
                {"name": "side", "image": "allowed.example.com/b:1"}
            ],
            "volumes": [{"name": "data", "image": {"reference": "reg.example.com/c:v2"}}]
        }});
        let mut allowed = verified("allowed.example.com/b:1");
        allowed.action = Action::Allow;
        let decisions = vec![
            verified("reg.example.com/a:v1"),
            allowed,
            verified("reg.example.com/c:v2"),
        ];
        let pins = plan(&object, &path("spec"), &decisions);
        let pointers: Vec<&str> = pins.iter().map(|p| p.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/spec/initContainers/0/image",
                "/spec/containers/0/image",
                "/spec/volumes/0/image/reference"
            ]
        );
        let ops = patch(&pins, None, false);
        assert_eq!(ops.len(), 4);
        assert_eq!(
            ops[0],
            json!({"op": "replace", "path": "/spec/initContainers/0/image",
                   "value": format!("reg.example.com/a:v1@{D}")})
        );
        assert_eq!(ops[3]["path"], "/metadata/annotations");
        let line = ops[3]["value"][PINNED_ANNOTATION].as_str().unwrap();
        assert_eq!(
            line.lines().next().unwrap(),
            format!(
                "spec.initContainers[0] (name: setup): reg.example.com/a:v1 -> reg.example.com/a:v1@{D}"
            )
        );
        assert_eq!(line.lines().count(), 3);

        // Applying the patch and planning again changes nothing (idempotent).
        let mut doc = json!({"metadata": {}, "spec": object["spec"].clone()});
        let p: json_patch::Patch = serde_json::from_value(Value::Array(ops)).unwrap();
        json_patch::patch(&mut doc, &p).unwrap();
        let again: Vec<Decision> = [
            format!("reg.example.com/a:v1@{D}"),
            format!("reg.example.com/c:v2@{D}"),
        ]
        .iter()
        .map(|i| verified(i))
        .collect();
        assert!(plan(&doc, &path("spec"), &again).is_empty());
    }

    #[test]
    fn existing_annotations_get_a_member_and_updates_merge() {
        let pins = vec![Pin {
            location: "spec.containers[0]".into(),
            pointer: "/spec/containers/0/image".into(),
            original: "a:1".into(),
            pinned: format!("a:1@{D}"),
        }];
        let mut existing = BTreeMap::new();
        existing.insert(PINNED_ANNOTATION.to_string(), "old line".to_string());
        let ops = patch(&pins, Some(&existing), true);
        assert_eq!(
            ops[1]["path"],
            "/metadata/annotations/trustgate.dev~1pinned-images"
        );
        assert_eq!(
            ops[1]["value"],
            format!("old line\nspec.containers[0]: a:1 -> a:1@{D}")
        );
        // On CREATE a value the author wrote is not kept.
        let ops = patch(&pins, Some(&existing), false);
        assert_eq!(
            ops[1]["value"],
            format!("spec.containers[0]: a:1 -> a:1@{D}")
        );
    }

    #[test]
    fn the_annotation_stops_one_line_past_its_limit() {
        let max = LIMITS.pinned_annotation_bytes;
        let line = "x".repeat(99);
        let fits = max / 100;
        let exact: Vec<String> = vec![line.clone(); fits];
        let value = bounded_lines(&exact, fits * 100 - 1);
        assert_eq!(value.len(), fits * 100 - 1);
        assert!(!value.contains("more"));
        let over: Vec<String> = vec![line; fits + 1];
        let value = bounded_lines(&over, max);
        assert!(value.len() <= max, "{}", value.len());
        assert!(value.ends_with(" more"), "{}", &value[value.len() - 20..]);
    }

    #[test]
    fn reasons_note_the_pin_and_only_pods_are_pinned_by_default() {
        let noted = note_pins(vec![verified("reg.example.com/a:v1")]);
        assert_eq!(
            noted[0].reason,
            format!("reg.example.com/a:v1 verified; pinned to reg.example.com/a:v1@{D}")
        );
        let pod = ReviewContext {
            kind: "Pod".into(),
            ..ReviewContext::default()
        };
        let deployment = ReviewContext {
            group: "apps".into(),
            kind: "Deployment".into(),
            ..ReviewContext::default()
        };
        assert!(pins_kind(&pod, false));
        assert!(!pins_kind(&deployment, false));
        assert!(pins_kind(&deployment, true));
    }

    #[test]
    fn the_patch_goes_out_as_base64_with_its_type() {
        use base64::Engine as _;
        let review: kube::core::admission::AdmissionReview<DynamicObject> =
            serde_json::from_value(json!({
                "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                "request": {"uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                    "resource": {"group": "", "version": "v1", "resource": "pods"},
                    "operation": "CREATE", "userInfo": {},
                    "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                               "spec": {"containers": [{"name": "app", "image": "reg.example.com/a:v1"}]}}}
            }))
            .unwrap();
        let req: kube::core::admission::AdmissionRequest<DynamicObject> =
            review.try_into().unwrap();
        let object = req.object.clone().unwrap();
        let ctx = ReviewContext {
            kind: "Pod".into(),
            operation: "CREATE".into(),
            ..ReviewContext::default()
        };
        let metrics = Metrics::new();
        let rsp = pin(
            AdmissionResponse::from(&req),
            &object,
            &path("spec"),
            &[verified("reg.example.com/a:v1")],
            &ctx,
            &metrics,
        );
        assert_eq!(metrics.images_pinned.get(), 1);
        let body: Value =
            serde_json::from_slice(&encode_review(rsp.into_review()).unwrap()).unwrap();
        let rsp = &body["response"];
        assert_eq!(rsp["patchType"], "JSONPatch");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(rsp["patch"].as_str().unwrap())
            .unwrap();
        let ops: Vec<Value> = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(ops[0]["path"], "/spec/containers/0/image");
        assert_eq!(ops[0]["value"], format!("reg.example.com/a:v1@{D}"));
        assert_eq!(ops[1]["path"], "/metadata/annotations");
        assert_eq!(
            rsp["auditAnnotations"]["pinned"],
            "1 image location pinned to verified digests"
        );
    }
}

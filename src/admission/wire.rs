//! Decoding an AdmissionReview body into kube's `AdmissionRequest<DynamicObject>` in one pass.
//!
//! `serde_json::from_slice::<AdmissionReview<DynamicObject>>` works, but both `AdmissionReview`
//! and `DynamicObject` use `#[serde(flatten)]`, which makes serde buffer the whole body (and
//! then each object again) in an intermediate tree before building the real values: about
//! two thirds of the webhook's own CPU time per review. [`decode`] reads the same fields with
//! plain derives (objects as `serde_json::Value`) and splits each object into `DynamicObject`
//! by hand. The result is the same `AdmissionRequest` (a unit test compares both decoders on
//! every fixture).

use k8s_openapi::api::authentication::v1::UserInfo;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::core::admission::{AdmissionRequest, Operation};
use kube::core::{DynamicObject, GroupVersionKind, GroupVersionResource, ObjectMeta, TypeMeta};
use serde::Deserialize;
use serde_json::Value;

/// Accepted `apiVersion`s of an AdmissionReview.
pub const REVIEW_VERSIONS: [&str; 2] = ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"];

/// Why a body is not an AdmissionReview with a request.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON, or not the shape of an AdmissionReview.
    #[error("the body is not an AdmissionReview: {0}")]
    Json(serde_json::Error),
    /// Another kind or API version.
    #[error(
        "expected kind AdmissionReview of admission.k8s.io/v1 or v1beta1, got kind {kind:?} apiVersion {api_version:?}"
    )]
    NotAReview {
        /// The `kind` found.
        kind: String,
        /// The `apiVersion` found.
        api_version: String,
    },
    /// No `request`.
    #[error("the AdmissionReview has no request")]
    NoRequest,
    /// JSON nested deeper than `LIMITS.json_depth`.
    #[error("the AdmissionReview nests JSON deeper than the limit of {limit} levels")]
    TooDeep {
        /// The limit.
        limit: usize,
    },
}

pub use crate::json::json_depth_within;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireReview {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    request: Option<WireRequest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireRequest {
    uid: String,
    kind: GroupVersionKind,
    resource: GroupVersionResource,
    #[serde(default)]
    sub_resource: Option<String>,
    #[serde(default)]
    request_kind: Option<GroupVersionKind>,
    #[serde(default)]
    request_resource: Option<GroupVersionResource>,
    #[serde(default)]
    request_sub_resource: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: Option<String>,
    operation: Operation,
    user_info: UserInfo,
    object: Option<Value>,
    old_object: Option<Value>,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    options: Option<RawExtension>,
}

/// Splits an object into `DynamicObject` (type fields, metadata, everything else) as its
/// flattening `Deserialize` would.
fn dynamic(value: Value) -> Result<DynamicObject, serde_json::Error> {
    let Value::Object(mut map) = value else {
        return serde_json::from_value(value);
    };
    let metadata = match map.remove("metadata") {
        Some(Value::Null) | None => ObjectMeta::default(),
        Some(m) => serde_json::from_value(m)?,
    };
    let types = match (map.get("apiVersion"), map.get("kind")) {
        (Some(Value::String(_)), Some(Value::String(_))) => {
            let api_version = map.remove("apiVersion");
            let kind = map.remove("kind");
            match (api_version, kind) {
                (Some(Value::String(api_version)), Some(Value::String(kind))) => {
                    Some(TypeMeta { api_version, kind })
                }
                _ => None,
            }
        }
        _ => None,
    };
    Ok(DynamicObject {
        types,
        metadata,
        data: Value::Object(map),
    })
}

/// Decodes a body into the request of an `admission.k8s.io` AdmissionReview, with `types`
/// set from the review (so the response echoes its `apiVersion`).
pub fn decode(body: &[u8]) -> Result<AdmissionRequest<DynamicObject>, DecodeError> {
    let limit = crate::limits::LIMITS.json_depth;
    if !json_depth_within(body, limit) {
        return Err(DecodeError::TooDeep { limit });
    }
    let review: WireReview = serde_json::from_slice(body).map_err(DecodeError::Json)?;
    if review.kind != "AdmissionReview" || !REVIEW_VERSIONS.contains(&review.api_version.as_str()) {
        return Err(DecodeError::NotAReview {
            kind: review.kind,
            api_version: review.api_version,
        });
    }
    let r = review.request.ok_or(DecodeError::NoRequest)?;
    let object = r
        .object
        .map(dynamic)
        .transpose()
        .map_err(DecodeError::Json)?;
    let old_object = r
        .old_object
        .map(dynamic)
        .transpose()
        .map_err(DecodeError::Json)?;
    Ok(AdmissionRequest {
        types: TypeMeta {
            api_version: review.api_version,
            kind: review.kind,
        },
        uid: r.uid,
        kind: r.kind,
        resource: r.resource,
        sub_resource: r.sub_resource,
        request_kind: r.request_kind,
        request_resource: r.request_resource,
        request_sub_resource: r.request_sub_resource,
        name: r.name,
        namespace: r.namespace,
        operation: r.operation,
        user_info: r.user_info,
        object,
        old_object,
        dry_run: r.dry_run,
        options: r.options,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::admission::AdmissionReview;

    /// kube's own decoding, for comparison.
    fn kube_decode(body: &[u8]) -> AdmissionRequest<DynamicObject> {
        let review: AdmissionReview<DynamicObject> = serde_json::from_slice(body).unwrap();
        review.try_into().unwrap()
    }

    #[test]
    fn same_request_as_kube_for_every_fixture() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/admission");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let body = std::fs::read(entry.unwrap().path()).unwrap();
            let ours = decode(&body).unwrap();
            let theirs = kube_decode(&body);
            assert_eq!(ours.types, theirs.types);
            assert_eq!(
                serde_json::to_value(&ours).unwrap(),
                serde_json::to_value(&theirs).unwrap()
            );
            assert_eq!(ours.object, theirs.object);
            assert_eq!(ours.old_object, theirs.old_object);
            seen += 1;
        }
        assert!(seen >= 10);
    }

    #[test]
    fn objects_without_type_fields_or_metadata() {
        let body = br#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1beta1",
            "request":{"uid":"u","kind":{"group":"","version":"v1","kind":"Pod"},
            "resource":{"group":"","version":"v1","resource":"pods"},"operation":"CREATE",
            "userInfo":{},"object":{"spec":{"containers":[]}},"oldObject":null}}"#;
        let ours = decode(body).unwrap();
        let theirs = kube_decode(body);
        assert_eq!(ours.object, theirs.object);
        assert_eq!(ours.types.api_version, "admission.k8s.io/v1beta1");
        assert_eq!(ours.old_object, None);
    }

    #[test]
    fn rejects_what_is_not_a_review() {
        assert!(matches!(decode(b"nope"), Err(DecodeError::Json(_))));
        assert!(matches!(decode(b"{}"), Err(DecodeError::NotAReview { .. })));
        assert!(matches!(
            decode(br#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1"}"#),
            Err(DecodeError::NoRequest)
        ));
        assert!(matches!(
            decode(br#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":1}}"#),
            Err(DecodeError::Json(_))
        ));
    }

    #[test]
    fn depth_counts_brackets_outside_strings_only() {
        assert!(json_depth_within(br#"{"a":[{"b":"[[[[{{{{"}]}"#, 3));
        assert!(!json_depth_within(br#"{"a":[{"b":[]}]}"#, 3));
        assert!(json_depth_within(br#"{"a":"\"[[[["}"#, 1));
        assert!(!json_depth_within(br#"{"a":"\\",[[[[0]]]]}"#, 4));
        let review = |n: usize| {
            format!(
                r#"{{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{}1{}}}"#,
                "[".repeat(n),
                "]".repeat(n)
            )
        };
        let limit = crate::limits::LIMITS.json_depth;
        assert!(!matches!(
            decode(review(limit - 1).as_bytes()),
            Err(DecodeError::TooDeep { .. })
        ));
        assert!(matches!(
            decode(review(limit).as_bytes()),
            Err(DecodeError::TooDeep { limit: l }) if l == limit
        ));
    }
}

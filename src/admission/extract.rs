//! Which objects carry a PodSpec, where, and the images in it. [`KindTable`] maps an object's
//! (group, kind) to the dotted path of its PodSpec: Pods and every built-in pod-template kind,
//! plus kinds added with `--extra-kind 'group/Kind=spec.template.spec'` ([`ExtraKind`]).
//! [`images_in`] lists every image the kubelet would pull for a PodSpec: `containers`,
//! `initContainers`, `ephemeralContainers` and image volumes (`volumes[].image.reference`), each
//! with its location (`spec.template.spec.initContainers[0] (name: setup)`, `spec.volumes[2]
//! (name: payload)`); [`image_sites`] adds the JSON pointer of each, for `/mutate`'s patches.
//! At most `LIMITS.images_per_object` occurrences are decided; more refuses the object.
//! [`pull_identity`] reads the PodSpec's `imagePullSecrets` and service account, whose Secrets
//! give registry credentials in cluster mode.

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use crate::limits::LIMITS;

/// An image used by a container, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageUse {
    /// The image as written.
    pub image: String,
    /// Where: `spec.containers[0] (name: app)`.
    pub location: String,
}

/// Why an `--extra-kind` value does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "--extra-kind {value:?}: {problem} (expected group/Kind=dotted.path.to.podSpec, e.g. argoproj.io/Rollout=spec.template.spec)"
)]
pub struct ExtraKindError {
    /// The value given.
    pub value: String,
    /// What is wrong.
    pub problem: &'static str,
}

/// A kind whose objects carry a PodSpec at `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraKind {
    /// API group (empty for the core group).
    pub group: String,
    /// Kind (`Rollout`).
    pub kind: String,
    /// Path from the object root to the PodSpec (`["spec", "template", "spec"]`).
    pub path: Vec<String>,
}

impl FromStr for ExtraKind {
    type Err = ExtraKindError;

    /// `group/Kind=spec.template.spec`; `Kind=...` or `/Kind=...` for the core group.
    fn from_str(value: &str) -> Result<ExtraKind, ExtraKindError> {
        let err = |problem| ExtraKindError {
            value: value.to_string(),
            problem,
        };
        let (gk, path) = value.split_once('=').ok_or_else(|| err("no `=`"))?;
        let (group, kind) = gk.rsplit_once('/').unwrap_or(("", gk));
        let (group, kind, path) = (group.trim(), kind.trim(), path.trim());
        if kind.is_empty() || !kind.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(err("the kind must be a non-empty alphanumeric name"));
        }
        if group.contains('/') || group.contains(char::is_whitespace) {
            return Err(err("the group must not contain `/` or spaces"));
        }
        let path: Vec<String> = path.split('.').map(str::to_string).collect();
        if path.iter().any(String::is_empty) {
            return Err(err("the path must be dot-separated non-empty field names"));
        }
        Ok(ExtraKind {
            group: group.to_string(),
            kind: kind.to_string(),
            path,
        })
    }
}

impl fmt::Display for ExtraKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}={}", self.group, self.kind, self.path.join("."))
    }
}

/// The kinds the webhook checks and where their PodSpec is.
#[derive(Debug, Clone)]
pub struct KindTable {
    kinds: Vec<ExtraKind>,
}

impl Default for KindTable {
    fn default() -> Self {
        KindTable::builtin()
    }
}

impl KindTable {
    /// Pod, Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, CronJob, ReplicationController.
    pub fn builtin() -> KindTable {
        let entry = |group: &str, kind: &str, path: &str| ExtraKind {
            group: group.to_string(),
            kind: kind.to_string(),
            path: path.split('.').map(str::to_string).collect(),
        };
        KindTable {
            kinds: vec![
                entry("", "Pod", "spec"),
                entry("apps", "Deployment", "spec.template.spec"),
                entry("apps", "ReplicaSet", "spec.template.spec"),
                entry("apps", "StatefulSet", "spec.template.spec"),
                entry("apps", "DaemonSet", "spec.template.spec"),
                entry("batch", "Job", "spec.template.spec"),
                entry("batch", "CronJob", "spec.jobTemplate.spec.template.spec"),
                entry("", "ReplicationController", "spec.template.spec"),
            ],
        }
    }

    /// Adds (or, for a kind already known, replaces) kinds.
    pub fn with_extra(mut self, extra: impl IntoIterator<Item = ExtraKind>) -> KindTable {
        for kind in extra {
            self.kinds.retain(|k| {
                !(k.group.eq_ignore_ascii_case(&kind.group)
                    && k.kind.eq_ignore_ascii_case(&kind.kind))
            });
            self.kinds.push(kind);
        }
        self
    }

    /// The PodSpec path of (group, kind); the version does not matter. `None`: not checked.
    pub fn pod_spec_path(&self, group: &str, kind: &str) -> Option<&[String]> {
        self.kinds
            .iter()
            .find(|k| k.group.eq_ignore_ascii_case(group) && k.kind.eq_ignore_ascii_case(kind))
            .map(|k| k.path.as_slice())
    }
}

/// A PodSpec that is not shaped as the API defines it, or one with more images than trustgate
/// decides in one object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    /// A field on the path to the PodSpec, or the PodSpec itself, is not an object.
    #[error("{path} is not an object")]
    NotAnObject {
        /// The dotted path.
        path: String,
    },
    /// A container list is not a list, or a container is not an object.
    #[error("{path} is not a list of containers")]
    NotAList {
        /// The dotted path.
        path: String,
    },
    /// A container's `image` is not a string.
    #[error("{path}.image is not a string")]
    ImageNotString {
        /// The container's path.
        path: String,
    },
    /// `volumes` is not a list, or a volume is not an object.
    #[error("{path} is not a list of volumes")]
    NotAVolumeList {
        /// The dotted path.
        path: String,
    },
    /// An image volume whose `reference` is missing, empty or not a string: the kubelet's
    /// pull cannot be decided, so the object is refused (fail closed).
    #[error("{location} is an image volume without a reference")]
    ImageVolumeWithoutReference {
        /// Where: `spec.volumes[2] (name: payload)`.
        location: String,
    },
    /// More image occurrences than `LIMITS.images_per_object`.
    #[error(
        "the object uses more than {limit} images (containers and image volumes; limit images_per_object)"
    )]
    TooManyImages {
        /// The limit in force.
        limit: usize,
    },
}

/// The container lists of a PodSpec, in the order their images are reported (image volumes,
/// `volumes[].image.reference`, come after them).
pub const CONTAINER_LISTS: [&str; 3] = ["initContainers", "containers", "ephemeralContainers"];

/// One place in an object where the kubelet is told to pull an image: a container's `image`
/// or an image volume's `image.reference`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSite {
    /// The image as written.
    pub image: String,
    /// Where, for people: `spec.containers[0] (name: app)`, `spec.volumes[2] (name: payload)`.
    pub location: String,
    /// Where, as a JSON pointer from the object's root (RFC 6901): `/spec/containers/0/image`,
    /// `/spec/volumes/2/image/reference`.
    pub pointer: String,
}

/// `field` escaped as one JSON pointer segment.
fn pointer_segment(field: &str) -> String {
    field.replace('~', "~0").replace('/', "~1")
}

/// `at`, followed by ` (name: x)` when `item` has a string `name`.
fn named(at: String, item: &serde_json::Map<String, Value>) -> String {
    match item.get("name").and_then(Value::as_str) {
        Some(name) => format!("{at} (name: {name})"),
        None => at,
    }
}

/// The images of the PodSpec at `path` in `object` (the object's fields other than
/// `apiVersion`/`kind`/`metadata`, as `DynamicObject::data` holds them). `Ok(None)` when the
/// path does not exist (e.g. an Argo Rollout using `workloadRef`); containers without an
/// image (pod templates may leave it to a mutating webhook) are skipped; an image volume
/// without a reference is an error (fail closed).
pub fn images_in(object: &Value, path: &[String]) -> Result<Option<Vec<ImageUse>>, ExtractError> {
    Ok(image_sites(object, path)?.map(|sites| {
        sites
            .into_iter()
            .map(|s| ImageUse {
                image: s.image,
                location: s.location,
            })
            .collect()
    }))
}

/// Every image the kubelet would pull for the PodSpec at `path` in `object`, with its
/// location and JSON pointer: `initContainers`, `containers`, `ephemeralContainers`, then image
/// volumes. More than `LIMITS.images_per_object` occurrences is an error, never a partial list.
pub fn image_sites(
    object: &Value,
    path: &[String],
) -> Result<Option<Vec<ImageSite>>, ExtractError> {
    let mut node = object;
    for (i, field) in path.iter().enumerate() {
        let Value::Object(map) = node else {
            return Err(ExtractError::NotAnObject {
                path: path[..i].join("."),
            });
        };
        match map.get(field) {
            Some(Value::Null) | None => return Ok(None),
            Some(next) => node = next,
        }
    }
    let prefix = path.join(".");
    let root: String = path
        .iter()
        .map(|f| format!("/{}", pointer_segment(f)))
        .collect();
    let Value::Object(spec) = node else {
        return Err(ExtractError::NotAnObject { path: prefix });
    };
    let limit = LIMITS.images_per_object;
    let mut sites = Vec::new();
    let mut push = |site: ImageSite| {
        if sites.len() >= limit {
            return Err(ExtractError::TooManyImages { limit });
        }
        sites.push(site);
        Ok(())
    };
    for list in CONTAINER_LISTS {
        let containers = match spec.get(list) {
            None | Some(Value::Null) => continue,
            Some(Value::Array(items)) => items,
            Some(_) => {
                return Err(ExtractError::NotAList {
                    path: format!("{prefix}.{list}"),
                });
            }
        };
        for (i, container) in containers.iter().enumerate() {
            let at = format!("{prefix}.{list}[{i}]");
            let Value::Object(container) = container else {
                return Err(ExtractError::NotAList { path: at });
            };
            let image = match container.get("image") {
                None | Some(Value::Null) => continue,
                Some(Value::String(s)) if s.is_empty() => continue,
                Some(Value::String(s)) => s,
                Some(_) => return Err(ExtractError::ImageNotString { path: at }),
            };
            push(ImageSite {
                image: image.clone(),
                location: named(at, container),
                pointer: format!("{root}/{list}/{i}/image"),
            })?;
        }
    }
    let volumes: &[Value] = match spec.get("volumes") {
        None | Some(Value::Null) => &[],
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(ExtractError::NotAVolumeList {
                path: format!("{prefix}.volumes"),
            });
        }
    };
    for (i, volume) in volumes.iter().enumerate() {
        let at = format!("{prefix}.volumes[{i}]");
        let Value::Object(volume) = volume else {
            return Err(ExtractError::NotAVolumeList { path: at });
        };
        let source = match volume.get("image") {
            None | Some(Value::Null) => continue,
            Some(Value::Object(source)) => source,
            Some(_) => {
                return Err(ExtractError::NotAnObject {
                    path: format!("{at}.image"),
                });
            }
        };
        let location = named(at, volume);
        let image = match source.get("reference") {
            Some(Value::String(s)) if !s.is_empty() => s,
            _ => return Err(ExtractError::ImageVolumeWithoutReference { location }),
        };
        push(ImageSite {
            image: image.clone(),
            location,
            pointer: format!("{root}/volumes/{i}/image/reference"),
        })?;
    }
    Ok(Some(sites))
}

/// Whose registry credentials a PodSpec uses: its `imagePullSecrets` names, in order, and its
/// service account (`serviceAccountName`, else the deprecated `serviceAccount`; `None` means
/// the namespace's `default` account).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullIdentity {
    /// `imagePullSecrets[].name`, in order, without empty names.
    pub image_pull_secrets: Vec<String>,
    /// The service account named by the PodSpec, if any.
    pub service_account: Option<String>,
}

/// The [`PullIdentity`] of the PodSpec at `path` in `object` (empty when the path is missing
/// or the fields are malformed: [`images_in`] reports malformed specs).
pub fn pull_identity(object: &Value, path: &[String]) -> PullIdentity {
    let mut node = object;
    for field in path {
        match node.get(field) {
            Some(next) => node = next,
            None => return PullIdentity::default(),
        }
    }
    let image_pull_secrets = node
        .get("imagePullSecrets")
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .filter_map(|r| r.get("name").and_then(Value::as_str))
                .filter(|name| !name.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let service_account = ["serviceAccountName", "serviceAccount"]
        .iter()
        .find_map(|field| node.get(*field).and_then(Value::as_str))
        .filter(|name| !name.is_empty())
        .map(str::to_string);
    PullIdentity {
        image_pull_secrets,
        service_account,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(p: &str) -> Vec<String> {
        p.split('.').map(str::to_string).collect()
    }

    #[test]
    fn extra_kind_parses() {
        let k: ExtraKind = "argoproj.io/Rollout=spec.template.spec".parse().unwrap();
        assert_eq!(
            (k.group.as_str(), k.kind.as_str()),
            ("argoproj.io", "Rollout")
        );
        assert_eq!(k.path, path("spec.template.spec"));
        assert_eq!(k.to_string(), "argoproj.io/Rollout=spec.template.spec");
        let core: ExtraKind = "PodTemplate=template.spec".parse().unwrap();
        assert_eq!(core.group, "");
        for bad in [
            "Rollout",
            "a/=spec",
            "a/Roll-out=spec",
            "a/R=spec..x",
            "a/R=",
            "a/b/R=spec",
        ] {
            assert!(bad.parse::<ExtraKind>().is_err(), "{bad}");
        }
    }

    #[test]
    fn table_lookup_ignores_case_and_extra_kinds_replace() {
        let t = KindTable::builtin().with_extra(["batch/Job=spec.x".parse().unwrap()]);
        assert_eq!(t.pod_spec_path("", "pod"), Some(path("spec").as_slice()));
        assert_eq!(
            t.pod_spec_path("batch", "CronJob"),
            Some(path("spec.jobTemplate.spec.template.spec").as_slice())
        );
        assert_eq!(
            t.pod_spec_path("batch", "Job"),
            Some(path("spec.x").as_slice())
        );
        assert_eq!(t.pod_spec_path("apps", "Pod"), None);
        assert_eq!(t.pod_spec_path("", "Service"), None);
    }

    #[test]
    fn images_with_locations() {
        let obj = json!({"spec": {"template": {"spec": {
            "initContainers": [{"name": "setup", "image": "busybox:1"}],
            "containers": [{"name": "app", "image": "app:1"}, {"name": "no-image"}],
            "ephemeralContainers": [{"image": "debug:1"}]
        }}}});
        let uses = images_in(&obj, &path("spec.template.spec"))
            .unwrap()
            .unwrap();
        let got: Vec<(&str, &str)> = uses
            .iter()
            .map(|u| (u.image.as_str(), u.location.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "busybox:1",
                    "spec.template.spec.initContainers[0] (name: setup)"
                ),
                ("app:1", "spec.template.spec.containers[0] (name: app)"),
                ("debug:1", "spec.template.spec.ephemeralContainers[0]"),
            ]
        );
    }

    #[test]
    fn pull_identity_of_a_template() {
        let obj = json!({"spec": {"template": {"spec": {
            "serviceAccountName": "builder",
            "imagePullSecrets": [{"name": "a"}, {"name": ""}, {}, {"name": "b"}],
            "containers": [{"image": "app:1"}]
        }}}});
        let id = pull_identity(&obj, &path("spec.template.spec"));
        assert_eq!(id.image_pull_secrets, ["a", "b"]);
        assert_eq!(id.service_account.as_deref(), Some("builder"));
        let legacy = json!({"spec": {"serviceAccount": "old"}});
        assert_eq!(
            pull_identity(&legacy, &path("spec"))
                .service_account
                .as_deref(),
            Some("old")
        );
        assert_eq!(
            pull_identity(&json!({"spec": 3}), &path("spec.template.spec")),
            PullIdentity::default()
        );
    }

    #[test]
    fn missing_paths_and_malformed_specs() {
        let obj = json!({"spec": {"workloadRef": {"name": "x"}}});
        assert_eq!(images_in(&obj, &path("spec.template.spec")).unwrap(), None);
        let obj = json!({"spec": "nope"});
        assert!(matches!(
            images_in(&obj, &path("spec.template.spec")),
            Err(ExtractError::NotAnObject { .. })
        ));
        let obj = json!({"spec": {"containers": {"a": 1}}});
        assert!(matches!(
            images_in(&obj, &path("spec")),
            Err(ExtractError::NotAList { .. })
        ));
        let obj = json!({"spec": {"containers": [{"image": 3}]}});
        assert_eq!(
            images_in(&obj, &path("spec")).unwrap_err().to_string(),
            "spec.containers[0].image is not a string"
        );
    }

    #[test]
    fn image_volumes_are_images_with_locations_and_pointers() {
        for (root, prefix) in [
            ("spec", "spec"),
            ("spec.template.spec", "spec.template.spec"),
        ] {
            let mut obj = json!({
                "containers": [{"name": "app", "image": "app:1"}],
                "volumes": [
                    {"name": "cfg", "configMap": {"name": "c"}},
                    {"name": "data", "emptyDir": {}},
                    {"name": "payload", "image": {"reference": "evil.example.com/x:1", "pullPolicy": "Always"}}
                ]
            });
            for field in root.split('.').rev() {
                obj = json!({ field: obj });
            }
            let sites = image_sites(&obj, &path(root)).unwrap().unwrap();
            let got: Vec<(&str, &str, &str)> = sites
                .iter()
                .map(|s| (s.image.as_str(), s.location.as_str(), s.pointer.as_str()))
                .collect();
            let slash = format!("/{}", prefix.replace('.', "/"));
            assert_eq!(
                got,
                [
                    (
                        "app:1",
                        format!("{prefix}.containers[0] (name: app)").as_str(),
                        format!("{slash}/containers/0/image").as_str()
                    ),
                    (
                        "evil.example.com/x:1",
                        format!("{prefix}.volumes[2] (name: payload)").as_str(),
                        format!("{slash}/volumes/2/image/reference").as_str()
                    ),
                ]
            );
        }
    }

    #[test]
    fn image_volume_without_reference_fails_closed() {
        for source in [json!({}), json!({"reference": ""}), json!({"reference": 7})] {
            let obj = json!({"spec": {"volumes": [{"name": "payload", "image": source}]}});
            assert_eq!(
                images_in(&obj, &path("spec")).unwrap_err().to_string(),
                "spec.volumes[0] (name: payload) is an image volume without a reference"
            );
        }
        let obj = json!({"spec": {"volumes": [{"name": "p", "image": "x:1"}]}});
        assert!(matches!(
            images_in(&obj, &path("spec")),
            Err(ExtractError::NotAnObject { .. })
        ));
        let obj = json!({"spec": {"volumes": {"a": 1}}});
        assert!(matches!(
            images_in(&obj, &path("spec")),
            Err(ExtractError::NotAVolumeList { .. })
        ));
    }

    #[test]
    fn one_image_past_the_limit_is_refused() {
        let limit = LIMITS.images_per_object;
        let containers: Vec<Value> = (0..limit - 1)
            .map(|i| json!({"name": format!("c{i}"), "image": "app:1"}))
            .collect();
        let at_limit = json!({"spec": {
            "containers": containers,
            "volumes": [{"name": "v", "image": {"reference": "data:1"}}]
        }});
        assert_eq!(
            images_in(&at_limit, &path("spec")).unwrap().unwrap().len(),
            limit
        );
        let mut over = at_limit.clone();
        over["spec"]["volumes"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "w", "image": {"reference": "data:2"}}));
        let err = images_in(&over, &path("spec")).unwrap_err();
        assert_eq!(err, ExtractError::TooManyImages { limit });
        assert!(err.to_string().contains("images_per_object"), "{err}");
    }

    #[test]
    fn pointer_segments_are_escaped() {
        let obj = json!({"a/b": {"c~d": {"containers": [{"image": "x:1"}]}}});
        let sites = image_sites(&obj, &["a/b".to_string(), "c~d".to_string()])
            .unwrap()
            .unwrap();
        assert_eq!(sites[0].pointer, "/a~1b/c~0d/containers/0/image");
    }
}

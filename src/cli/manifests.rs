//! Workloads from manifest files for `trustgate check -f`: multi-document YAML or JSON (Helm
//! template and kustomize build output, `kind: *List` objects), read from files or stdin (`-`)
//! up to `LIMITS.manifest_file_bytes`. Images are extracted exactly as the webhook does:
//! [`KindTable`] says which (group, kind) carries a PodSpec and where, and
//! [`images_in`] lists its images with their locations. Objects of other kinds (ConfigMaps,
//! Services) carry no images and are skipped.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;
use trustgate::admission::extract::images_in;
use trustgate::admission::{ImageUse, KindTable};
use trustgate::limits::LIMITS;

/// Why manifests cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file (or stdin) cannot be read.
    #[error("{source_name}: cannot read: {error}")]
    Read {
        /// The file name, or `-`.
        source_name: String,
        /// The I/O error.
        error: std::io::Error,
    },
    /// Larger than `LIMITS.manifest_file_bytes`.
    #[error("{source_name}: larger than {limit} bytes (LIMITS.manifest_file_bytes)")]
    TooLarge {
        /// The file name, or `-`.
        source_name: String,
        /// The limit.
        limit: u64,
    },
    /// Not YAML or JSON.
    #[error("{source_name}: not YAML or JSON: {message}")]
    Parse {
        /// The file name, or `-`.
        source_name: String,
        /// The parser's message.
        message: String,
    },
    /// A workload whose PodSpec is not shaped as the API defines it.
    #[error("{source_name}: {object}: {message}")]
    Object {
        /// The file name, or `-`.
        source_name: String,
        /// `Kind namespace/name`.
        object: String,
        /// What is wrong.
        message: String,
    },
}

/// Which object an image occurrence belongs to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ObjectRef {
    /// `Deployment`, `CronJob`, ...
    pub kind: String,
    /// `metadata.namespace`, or `check --namespace` when the manifest has none.
    pub namespace: String,
    /// `metadata.name` (or `generateName` followed by `*`).
    pub name: String,
}

/// A workload found in a manifest and the images it uses.
#[derive(Debug, Clone)]
pub struct Workload {
    /// The object.
    pub object: ObjectRef,
    /// Every image occurrence, with its location.
    pub uses: Vec<ImageUse>,
}

/// Reads one source: a path, or `-` for stdin, at most `LIMITS.manifest_file_bytes`.
///
/// # Errors
/// Unreadable or too large.
pub fn read_source(path: &Path) -> Result<String, ManifestError> {
    let source_name = path.display().to_string();
    let limit = LIMITS.manifest_file_bytes;
    let read = |reader: &mut dyn Read| -> Result<String, ManifestError> {
        let mut bytes = Vec::new();
        reader
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|error| ManifestError::Read {
                source_name: source_name.clone(),
                error,
            })?;
        if bytes.len() as u64 > limit {
            return Err(ManifestError::TooLarge {
                source_name: source_name.clone(),
                limit,
            });
        }
        String::from_utf8(bytes).map_err(|e| ManifestError::Parse {
            source_name: source_name.clone(),
            message: format!("not UTF-8: {e}"),
        })
    };
    if path == Path::new("-") {
        read(&mut std::io::stdin().lock())
    } else {
        let mut file = std::fs::File::open(path).map_err(|error| ManifestError::Read {
            source_name: source_name.clone(),
            error,
        })?;
        read(&mut file)
    }
}

/// The workloads of every source, in order.
///
/// # Errors
/// The first source that cannot be read or parsed.
pub fn load(
    paths: &[PathBuf],
    kinds: &KindTable,
    default_namespace: &str,
) -> Result<Vec<Workload>, ManifestError> {
    let mut out = Vec::new();
    for path in paths {
        let text = read_source(path)?;
        out.extend(workloads(
            &path.display().to_string(),
            &text,
            kinds,
            default_namespace,
        )?);
    }
    Ok(out)
}

/// The workloads in `text` (YAML documents separated by `---`, or JSON).
///
/// # Errors
/// The text does not parse, or a workload's PodSpec is malformed.
pub fn workloads(
    source_name: &str,
    text: &str,
    kinds: &KindTable,
    default_namespace: &str,
) -> Result<Vec<Workload>, ManifestError> {
    let documents: Vec<Value> =
        serde_saphyr::from_multiple(text).map_err(|e| ManifestError::Parse {
            source_name: source_name.to_string(),
            message: e.to_string(),
        })?;
    let mut out = Vec::new();
    for document in &documents {
        collect(source_name, document, kinds, default_namespace, 0, &mut out)?;
    }
    Ok(out)
}

fn collect(
    source_name: &str,
    object: &Value,
    kinds: &KindTable,
    default_namespace: &str,
    depth: usize,
    out: &mut Vec<Workload>,
) -> Result<(), ManifestError> {
    let Value::Object(map) = object else {
        // Empty documents (`---` at the end) and scalars carry no workload.
        return Ok(());
    };
    let kind = map.get("kind").and_then(Value::as_str).unwrap_or_default();
    if let Some(items) = map.get("items").and_then(Value::as_array)
        && kind.ends_with("List")
        && depth < 2
    {
        for item in items {
            collect(source_name, item, kinds, default_namespace, depth + 1, out)?;
        }
        return Ok(());
    }
    let api_version = map
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    let Some(path) = kinds.pod_spec_path(group, kind) else {
        return Ok(());
    };
    let meta = map.get("metadata");
    let field = |name: &str| {
        meta.and_then(|m| m.get(name))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let namespace = Some(field("namespace"))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| default_namespace.to_string());
    let name = match field("name") {
        n if n.is_empty() => format!("{}*", field("generateName")),
        n => n,
    };
    let object_ref = ObjectRef {
        kind: kind.to_string(),
        namespace,
        name,
    };
    let uses = images_in(object, path).map_err(|e| ManifestError::Object {
        source_name: source_name.to_string(),
        object: format!(
            "{} {}/{}",
            object_ref.kind, object_ref.namespace, object_ref.name
        ),
        message: e.to_string(),
    })?;
    if let Some(uses) = uses
        && !uses.is_empty()
    {
        out.push(Workload {
            object: object_ref,
            uses,
        });
    }
    Ok(())
}

/// Decides every image occurrence of the workloads in `args.files` (each image once per
/// namespace; every occurrence gets its own result with `object` and `location`) and prints
/// them. Exit status as for images: 1 when one is rejected.
///
/// # Errors
/// Unreadable or malformed manifests (exit status 2).
pub async fn check(
    engine: &trustgate::decision::Engine,
    args: &super::check::CheckArgs,
    policies: &trustgate::policy::matcher::PolicySet,
    creds: &dyn trustgate::decision::CredentialSource,
) -> anyhow::Result<std::process::ExitCode> {
    let kinds = KindTable::builtin().with_extra(args.extra_kinds.iter().cloned());
    let found = load(&args.files, &kinds, &args.namespace)?;
    let mut results = Vec::new();
    let mut rejected = false;
    for workload in &found {
        let images: Vec<String> = workload.uses.iter().map(|u| u.image.clone()).collect();
        let decisions = engine
            .decide_all(&workload.object.namespace, &images, policies, creds)
            .await;
        for (u, d) in workload.uses.iter().zip(&decisions) {
            rejected |= !d.allowed;
            results.push((workload.object.clone(), u.location.clone(), d.clone()));
        }
    }
    match args.output {
        super::Output::Text => {
            for (object, location, d) in &results {
                println!(
                    "{:<8} {} {}/{} {location}: {}",
                    d.verdict(),
                    object.kind,
                    object.namespace,
                    object.name,
                    d.reason
                );
                for line in super::report::format_lines(d) {
                    println!("{line}");
                }
            }
            if let Some(line) = super::report::migration_line(results.iter().map(|r| &r.2)) {
                println!("{line}");
            }
        }
        super::Output::Json => {
            let migration = super::report::migration_json(results.iter().map(|r| &r.2));
            let results: Vec<Value> = results
                .iter()
                .map(|(object, location, d)| {
                    let mut r = super::check::result_json(d);
                    r["object"] = serde_json::json!(object);
                    r["location"] = serde_json::json!(location);
                    r
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({ "results": results, "migration": migration })
                )?
            );
        }
    }
    Ok(if rejected {
        std::process::ExitCode::from(1)
    } else {
        std::process::ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  template:
    spec:
      initContainers: [{name: setup, image: "reg.example/shop/setup:1"}]
      containers: [{name: app, image: "reg.example/shop/app:1"}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {image: "not/an-image:really"}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers: [{name: job, image: "reg.example/shop/job:2"}]
---
"#;

    #[test]
    fn deployments_cronjobs_and_configmaps() {
        let w = workloads("m.yaml", MANIFEST, &KindTable::builtin(), "ci").unwrap();
        assert_eq!(w.len(), 2);
        assert_eq!(
            w[0].object,
            ObjectRef {
                kind: "Deployment".into(),
                namespace: "shop".into(),
                name: "web".into()
            }
        );
        let images: Vec<_> = w[0].uses.iter().map(|u| u.image.as_str()).collect();
        assert_eq!(
            images,
            ["reg.example/shop/setup:1", "reg.example/shop/app:1"]
        );
        assert!(
            w[0].uses[0].location.contains("initContainers[0]"),
            "{:?}",
            w[0].uses
        );
        assert_eq!(w[1].object.namespace, "ci", "no namespace: --namespace");
        assert!(
            w[1].uses[0]
                .location
                .starts_with("spec.jobTemplate.spec.template.spec.containers[0]")
        );
    }

    #[test]
    fn json_lists_and_extra_kinds() {
        let list = serde_json::json!({
            "apiVersion": "v1", "kind": "List",
            "items": [
                {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                 "spec": {"containers": [{"name": "a", "image": "nginx"}]}},
                {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "r"},
                 "spec": {"template": {"spec": {"containers": [{"name": "b", "image": "redis"}]}}}}
            ]
        })
        .to_string();
        let w = workloads("-", &list, &KindTable::builtin(), "default").unwrap();
        assert_eq!(w.len(), 1, "Rollout is not a built-in kind");
        let kinds = KindTable::builtin()
            .with_extra(["argoproj.io/Rollout=spec.template.spec".parse().unwrap()]);
        let w = workloads("-", &list, &kinds, "default").unwrap();
        assert_eq!(w.len(), 2);
        assert_eq!(w[1].uses[0].image, "redis");
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let e = workloads("m.yaml", "kind: [", &KindTable::builtin(), "d").unwrap_err();
        assert!(e.to_string().starts_with("m.yaml: not YAML or JSON"), "{e}");
        let bad = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: 3}\n";
        let e = workloads("m.yaml", bad, &KindTable::builtin(), "d").unwrap_err();
        assert!(e.to_string().starts_with("m.yaml: Pod d/p: "), "{e}");
    }

    #[test]
    fn files_one_past_the_limit_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.yaml");
        let limit = usize::try_from(LIMITS.manifest_file_bytes).unwrap();
        std::fs::write(&path, vec![b'#'; limit]).unwrap();
        assert!(read_source(&path).is_ok());
        std::fs::write(&path, vec![b'#'; limit + 1]).unwrap();
        let e = read_source(&path).unwrap_err();
        assert!(e.to_string().contains("LIMITS.manifest_file_bytes"), "{e}");
    }
}

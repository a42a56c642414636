//! Policies from YAML files, for `check --policy FILE --policy-dir DIR` and
//! `serve --policy-dir DIR` (docs/cli.md). A file may hold several documents separated by `---`;
//! each must be a `TrustPolicy` or `ClusterTrustPolicy` of `trustgate.dev/v1alpha1`. A
//! `TrustPolicy` without `metadata.namespace` belongs to `default`. Unknown fields are errors
//! (the API server would prune or reject them), every policy is checked with
//! [`validate_for`](super::validate::validate_for) (in the pass that compiles it), and a
//! (kind, namespace, name) seen twice is an error. Errors name the file, the document (1-based index among non-empty documents, and its
//! line), the policy and the field; all problems are reported, not just the first.
//!
//! A directory is read non-recursively: `*.yaml` and `*.yml` files in name order, skipping
//! names that start with `.` (so the `..data` entries of a mounted ConfigMap are ignored while
//! its symlinked files are read).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::crd::{
    API_VERSION, CLUSTER_TRUST_POLICY_KIND, ClusterTrustPolicy, GROUP, TRUST_POLICY_KIND,
    TrustPolicy,
};
use super::matcher::{LoadedPolicy, PolicyId, PolicySet};
use super::validate::{FieldError, FieldErrors, is_dns_subdomain};

/// Where a document is: file, 1-based index among the file's non-empty documents, first line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentRef {
    /// The file.
    pub path: PathBuf,
    /// 1-based index among the non-empty documents of the file.
    pub index: usize,
    /// 1-based line where the document starts, when known.
    pub line: Option<usize>,
}

impl fmt::Display for DocumentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: document {}", self.path.display(), self.index)?;
        if let Some(line) = self.line {
            write!(f, " (line {line})")?;
        }
        Ok(())
    }
}

/// Why policies could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file could not be read.
    #[error("{}: cannot read: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error (in the message; not a `source`, so it is not printed twice).
        error: std::io::Error,
    },
    /// A policy directory could not be listed.
    #[error("{}: cannot list the policy directory: {error}", path.display())]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error (in the message; not a `source`, so it is not printed twice).
        error: std::io::Error,
    },
    /// The file is not valid YAML.
    #[error("{}: invalid YAML: {message}", path.display())]
    Yaml {
        /// The file.
        path: PathBuf,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A document is not a trustgate policy.
    #[error("{at}: {problem}")]
    NotAPolicy {
        /// The document.
        at: DocumentRef,
        /// What it is instead.
        problem: String,
    },
    /// A policy has invalid fields.
    #[error("{at}: {kind} {policy}: {}", FieldErrors(errors))]
    Invalid {
        /// The document.
        at: DocumentRef,
        /// `TrustPolicy` or `ClusterTrustPolicy`.
        kind: &'static str,
        /// `namespace/name` or `name` (empty when the name is missing).
        policy: String,
        /// The problems, each with its field path.
        errors: Vec<FieldError>,
    },
    /// The same policy is defined twice.
    #[error("{at}: {kind} {policy} is already defined at {first}")]
    Duplicate {
        /// The second definition.
        at: DocumentRef,
        /// The first definition.
        first: Box<DocumentRef>,
        /// `TrustPolicy` or `ClusterTrustPolicy`.
        kind: &'static str,
        /// `namespace/name` or `name`.
        policy: String,
    },
    /// More than one of the above, in file and document order.
    #[error("{} problems in policy files:\n  {}", .0.len(), Lines(.0))]
    Several(Vec<LoadError>),
}

struct Lines<'a>(&'a [LoadError]);

impl fmt::Display for Lines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n  ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl LoadError {
    /// The individual problems (one for anything but [`LoadError::Several`]).
    pub fn problems(&self) -> Vec<&LoadError> {
        match self {
            LoadError::Several(all) => all.iter().collect(),
            other => vec![other],
        }
    }

    fn from_many(mut errors: Vec<LoadError>) -> Option<LoadError> {
        match errors.len() {
            0 => None,
            1 => errors.pop(),
            _ => Some(LoadError::Several(errors)),
        }
    }
}

/// Loads `files` (in the given order) and the policy files of each of `dirs` into a
/// [`PolicySet`] with default action `Deny` (change it with
/// [`PolicySet::with_default_action`]).
///
/// # Errors
/// Every problem found, see [`LoadError`].
pub fn load_policy_set(files: &[PathBuf], dirs: &[PathBuf]) -> Result<PolicySet, LoadError> {
    let mut set = PolicySet::default();
    set.extend(load_policies(files, dirs)?);
    Ok(set)
}

/// As [`load_policy_set`], returning the policies in load order.
///
/// # Errors
/// Every problem found, see [`LoadError`].
pub fn load_policies(files: &[PathBuf], dirs: &[PathBuf]) -> Result<Vec<LoadedPolicy>, LoadError> {
    let mut errors = Vec::new();
    let mut all_files = files.to_vec();
    for dir in dirs {
        match policy_files_in(dir) {
            Ok(found) => all_files.extend(found),
            Err(e) => errors.push(e),
        }
    }
    let mut documents = Vec::new();
    for path in &all_files {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) => {
                errors.push(LoadError::Read {
                    path: path.clone(),
                    error,
                });
                continue;
            }
        };
        match parse_policies(path, &text) {
            Ok(found) => documents.extend(found),
            Err(e) => errors.extend(flatten(e)),
        }
    }
    let mut seen: Vec<(&PolicyId, &DocumentRef)> = Vec::new();
    for (at, policy) in &documents {
        let key = &policy.id;
        let first = seen
            .iter()
            .find(|(id, _)| id.namespace == key.namespace && id.name == key.name);
        match first {
            Some((_, first)) => errors.push(LoadError::Duplicate {
                at: at.clone(),
                first: Box::new((*first).clone()),
                kind: key.kind(),
                policy: key.to_string(),
            }),
            None => seen.push((key, at)),
        }
    }
    match LoadError::from_many(errors) {
        Some(e) => Err(e),
        None => Ok(documents.into_iter().map(|(_, p)| p).collect()),
    }
}

/// The `*.yaml` and `*.yml` files directly in `dir`, sorted by name; names starting with `.`
/// are skipped and symlinks are followed.
///
/// # Errors
/// [`LoadError::ReadDir`] when the directory cannot be listed.
pub fn policy_files_in(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let read_dir_error = |error| LoadError::ReadDir {
        path: dir.to_path_buf(),
        error,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_dir_error)? {
        let path = entry.map_err(read_dir_error)?.path();
        let hidden = path
            .file_name()
            .is_none_or(|n| n.to_string_lossy().starts_with('.'));
        let yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
        if !hidden && yaml && std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Parses the policies of one file's text; `path` is used in messages only.
///
/// # Errors
/// Every problem in the file, see [`LoadError`] (duplicates are checked by the callers that
/// combine files).
pub fn parse_policies(
    path: &Path,
    text: &str,
) -> Result<Vec<(DocumentRef, LoadedPolicy)>, LoadError> {
    let documents: Vec<serde_saphyr::Spanned<Value>> =
        serde_saphyr::from_multiple(text).map_err(|e| LoadError::Yaml {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    let mut policies = Vec::new();
    let mut errors = Vec::new();
    for (i, document) in documents.iter().enumerate() {
        let line = document.referenced.line();
        let at = DocumentRef {
            path: path.to_path_buf(),
            index: i + 1,
            line: (line > 0).then_some(line as usize),
        };
        match parse_document(&document.value, &at) {
            Ok(policy) => policies.push((at, policy)),
            Err(e) => errors.push(e),
        }
    }
    match LoadError::from_many(errors) {
        Some(e) => Err(e),
        None => Ok(policies),
    }
}

fn flatten(e: LoadError) -> Vec<LoadError> {
    match e {
        LoadError::Several(all) => all,
        other => vec![other],
    }
}

fn parse_document(value: &Value, at: &DocumentRef) -> Result<LoadedPolicy, LoadError> {
    let not_a_policy = |problem: String| LoadError::NotAPolicy {
        at: at.clone(),
        problem,
    };
    let Value::Object(map) = value else {
        return Err(not_a_policy(
            "not a mapping; expected a TrustPolicy or ClusterTrustPolicy".into(),
        ));
    };
    let api_version = map.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = map.get("kind").and_then(Value::as_str).unwrap_or("");
    let kind = match (api_version, kind) {
        (API_VERSION, TRUST_POLICY_KIND) => TRUST_POLICY_KIND,
        (API_VERSION, CLUSTER_TRUST_POLICY_KIND) => CLUSTER_TRUST_POLICY_KIND,
        (version, TRUST_POLICY_KIND | CLUSTER_TRUST_POLICY_KIND)
            if version.starts_with(&format!("{GROUP}/")) =>
        {
            return Err(not_a_policy(format!(
                "{kind} has apiVersion {version}; this version of trustgate reads {API_VERSION}"
            )));
        }
        _ => {
            let shown = |s: &str| {
                if s.is_empty() {
                    "(none)".to_owned()
                } else {
                    s.to_owned()
                }
            };
            return Err(not_a_policy(format!(
                "kind {} (apiVersion {}) is not a {API_VERSION} TrustPolicy or ClusterTrustPolicy",
                shown(kind),
                shown(api_version)
            )));
        }
    };
    let metadata = map.get("metadata");
    let name = metadata
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let namespace = metadata
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str);
    let policy = match (kind, namespace) {
        (TRUST_POLICY_KIND, Some(ns)) => format!("{ns}/{name}"),
        (TRUST_POLICY_KIND, None) => format!("default/{name}"),
        _ => name.to_owned(),
    };
    let invalid = |errors: Vec<FieldError>| LoadError::Invalid {
        at: at.clone(),
        kind,
        policy: policy.clone(),
        errors,
    };

    let mut errors = Vec::new();
    if name.is_empty() {
        errors.push(FieldError::new("metadata.name", "required"));
    } else if !is_dns_subdomain(name) {
        errors.push(FieldError::new(
            "metadata.name",
            format!("{name:?} is not a valid object name (lower-case RFC 1123 subdomain)"),
        ));
    }
    if kind == TRUST_POLICY_KIND
        && let Some(ns) = namespace
        && (ns.len() > 63 || ns.contains('.') || !is_dns_subdomain(ns))
    {
        errors.push(FieldError::new(
            "metadata.namespace",
            format!("{ns:?} is not a valid namespace name (lower-case RFC 1123 label)"),
        ));
    }
    // One pass checks the spec (every rule of `validate_for`) and compiles it.
    let loaded = if kind == TRUST_POLICY_KIND {
        typed::<TrustPolicy>(value, &mut errors)
            .map(|object| LoadedPolicy::from_trust_policy(&object))
    } else {
        typed::<ClusterTrustPolicy>(value, &mut errors)
            .map(|object| LoadedPolicy::from_cluster_trust_policy(&object))
    };
    match loaded {
        Some(Ok(policy)) if errors.is_empty() => Ok(policy),
        Some(Err(spec_errors)) => {
            errors.extend(spec_errors);
            Err(invalid(errors))
        }
        _ => Err(invalid(errors)),
    }
}

/// Deserialises `value` as `T`, pushing a field error for the first type error and for every
/// unknown field; `None` when it does not deserialise.
fn typed<T: DeserializeOwned>(value: &Value, errors: &mut Vec<FieldError>) -> Option<T> {
    let mut unknown = Vec::new();
    let result: Result<T, _> = {
        let mut record = |path: serde_ignored::Path<'_>| unknown.push(ignored_path(&path));
        serde_path_to_error::deserialize(serde_ignored::Deserializer::new(value, &mut record))
    };
    for path in unknown {
        // The generated root types have no fields for these two; they were checked above.
        if path != "apiVersion" && path != "kind" {
            errors.push(FieldError::new(path, "unknown field"));
        }
    }
    match result {
        Ok(object) => Some(object),
        Err(e) => {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            let message = e.inner().to_string();
            // serde reports a missing field at its parent ("" for a top-level one): name the
            // field itself, as the other field errors do.
            let missing = message
                .strip_prefix("missing field `")
                .and_then(|rest| rest.strip_suffix('`'));
            match missing {
                Some(field) if path.is_empty() => errors.push(FieldError::new(field, "required")),
                Some(field) => errors.push(FieldError::new(format!("{path}.{field}"), "required")),
                None => errors.push(FieldError::new(path, message)),
            }
            None
        }
    }
}

/// `spec.trustRoots[1].keyid` for a serde_ignored path.
fn ignored_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path as P;
    match path {
        P::Root => String::new(),
        P::Seq { parent, index } => format!("{}[{index}]", ignored_path(parent)),
        P::Map { parent, key } => {
            let parent = ignored_path(parent);
            if parent.is_empty() {
                key.clone()
            } else {
                format!("{parent}.{key}")
            }
        }
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            ignored_path(parent)
        }
    }
}

#[cfg(test)]
mod tests;

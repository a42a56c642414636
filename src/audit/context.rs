//! [`ReviewContext`]: who asked to do what to which object, as the audit log line, the metrics
//! and the event sinks need it. Filled by `admission` from an `AdmissionRequest`; nothing here
//! depends on Kubernetes types, so sinks and tests can build one directly.

/// The admission request an image decision belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReviewContext {
    /// `request.uid` (echoed in the response).
    pub uid: String,
    /// `request.userInfo.username`.
    pub user: String,
    /// Namespace of the object (empty for cluster-scoped objects).
    pub namespace: String,
    /// API group of the object's kind (empty for the core group).
    pub group: String,
    /// API version of the object's kind (`v1`).
    pub version: String,
    /// Kind of the object (`Pod`, `Deployment`, ...).
    pub kind: String,
    /// Name of the object (`metadata.generateName` followed by `*` when it has no name yet).
    pub name: String,
    /// `metadata.uid` of the object, when it has one (UPDATE requests).
    pub object_uid: Option<String>,
    /// `CREATE`, `UPDATE`, ...
    pub operation: String,
    /// `request.subResource` (`ephemeralcontainers`), if any.
    pub sub_resource: Option<String>,
    /// `request.dryRun`: decided as usual, but no side effects (no Events).
    pub dry_run: bool,
}

impl ReviewContext {
    /// `group/version` or `version` for the core group, as `apiVersion` spells it.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `Kind namespace/name` (or `Kind name` when cluster-scoped), for log and event text.
    pub fn object(&self) -> String {
        if self.namespace.is_empty() {
            format!("{} {}", self.kind, self.name)
        } else {
            format!("{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_version_and_object() {
        let mut ctx = ReviewContext {
            kind: "Deployment".into(),
            group: "apps".into(),
            version: "v1".into(),
            namespace: "shop".into(),
            name: "web".into(),
            ..ReviewContext::default()
        };
        assert_eq!(ctx.api_version(), "apps/v1");
        assert_eq!(ctx.object(), "Deployment shop/web");
        ctx.group.clear();
        ctx.namespace.clear();
        assert_eq!(ctx.api_version(), "v1");
        assert_eq!(ctx.object(), "Deployment web");
    }
}

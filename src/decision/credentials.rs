//! Where registry and Notary credentials come from, asked after selection: the engine selects
//! the policy deciding an image, then asks its [`CredentialSource`] for exactly that policy and
//! the image's registry. The CLI answers from a docker config file and `NOTARY_AUTH`; the
//! webhook in cluster mode from the policy's Secrets and the Pod's pull Secrets, read on demand
//! (`cluster::secrets`).

use futures::future::BoxFuture;

use crate::image::credentials::Credentials;
use crate::policy::matcher::LoadedPolicy;

/// The credentials one policy decides one image with.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PolicyCredentials {
    /// For the image's registry.
    pub registry: Credentials,
    /// `user`, `password` for the policy's Notary server.
    pub notary: Option<(String, String)>,
}

impl std::fmt::Debug for PolicyCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secrets.
        f.debug_struct("PolicyCredentials")
            .field("registry_anonymous", &self.registry.is_anonymous())
            .field("notary", &self.notary.as_ref().map(|(user, _)| user))
            .finish()
    }
}

/// Answers the engine's question "which credentials does `policy` use for `registry`?", asked
/// once per policy that verifies an image, after selection.
pub trait CredentialSource: Send + Sync {
    /// Registry credentials for `registry` (a host) and Notary credentials for `policy`'s Notary
    /// server, when `policy` decides an image of that registry.
    ///
    /// # Errors
    /// Why credentials that `policy` names cannot be had (e.g. its `credentialsSecret` is
    /// missing or unreadable): its images then fail closed with this reason instead of being
    /// tried without them.
    fn credentials<'a>(
        &'a self,
        policy: &'a LoadedPolicy,
        registry: &'a str,
    ) -> BoxFuture<'a, Result<PolicyCredentials, String>>;
}

/// No credentials at all.
#[derive(Debug, Clone, Copy, Default)]
pub struct Anonymous;

impl CredentialSource for Anonymous {
    fn credentials<'a>(
        &'a self,
        _: &'a LoadedPolicy,
        _: &'a str,
    ) -> BoxFuture<'a, Result<PolicyCredentials, String>> {
        Box::pin(futures::future::ready(Ok(PolicyCredentials::default())))
    }
}

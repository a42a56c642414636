//! Warming: the Notary sources of the policies in force are opened (HTTP client, TLS
//! configuration) and their connections established before a review needs them, so a cold
//! review pays for its fetches, not for handshakes. Best effort: nothing here decides.

use std::collections::HashSet;
use std::sync::Arc;

use super::{CredentialSource, Engine};
use crate::cache::Key;
use crate::notary::source::MetadataSource as _;
use crate::policy::formats::SignatureFormat;
use crate::policy::matcher::LoadedPolicy;

/// The most Notary set-ups one warming opens: tenants write namespaced policies, and each may
/// name its own server; warming is a courtesy, not a way to make trustgate hold connections
/// to every URL a tenant writes.
pub const MAX_WARM_SOURCES: usize = 32;

impl Engine {
    /// Opens the Notary source each policy verifies with (the one its reviews use: same URL,
    /// CA bundle, credentials from its [`CredentialSource`], timeout) and `connections`
    /// connections to each, all at once. Policies that do not consult Notary v1, or whose
    /// credentials cannot be had, are skipped; a source shared by several policies is warmed
    /// once, and at most [`MAX_WARM_SOURCES`] are warmed (the first ones in `policies`).
    /// Returns how many sources were warmed.
    pub async fn warm(
        &self,
        policies: &[(Arc<LoadedPolicy>, Arc<dyn CredentialSource>)],
        connections: usize,
    ) -> usize {
        let mut seen: HashSet<Key> = HashSet::new();
        let mut sources = Vec::new();
        for (policy, creds) in policies {
            if sources.len() >= MAX_WARM_SOURCES {
                break;
            }
            let Some(Ok(compiled)) = policy.compiled() else {
                continue;
            };
            if !compiled.formats.evaluates(SignatureFormat::NotaryV1)
                || compiled.notary_url.is_empty()
            {
                continue;
            }
            // No registry is asked here: only the Notary side of the answer is used.
            let Ok(credentials) = creds.credentials(policy, "").await else {
                continue;
            };
            let source_id = self.source_id(compiled, credentials.notary.as_ref());
            if !seen.insert(source_id) {
                continue;
            }
            if let Ok(source) = self.source(source_id, compiled, credentials.notary) {
                sources.push(source);
            }
        }
        futures::future::join_all(sources.iter().map(|s| s.warm(connections))).await;
        sources.len()
    }
}

//! Keeps the Notary connections of the policies in force open (`Engine::warm`): when a policy
//! set is first seen or changes, and again every [`REWARM`] so the connection pool does not
//! drop them while no review comes (reqwest closes connections idle for 90 s).

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::credentials::CredentialRequest;
use super::review::Webhook;
use crate::decision::CredentialSource;
use crate::policy::matcher::{LoadedPolicy, PolicySet};

/// How often connections are opened again while the policy set stays the same.
pub const REWARM: Duration = Duration::from_secs(60);

/// How often the policy set is looked at.
const POLL: Duration = Duration::from_secs(1);

impl Webhook {
    /// Spawns the task that keeps `connections` connections open to each Notary server the
    /// policies in force verify with (none when `connections` is 0). It runs until the
    /// runtime stops.
    pub fn spawn_warmer(self: &Arc<Self>, connections: usize) -> Option<JoinHandle<()>> {
        if connections == 0 {
            return None;
        }
        let webhook = Arc::clone(self);
        Some(tokio::spawn(async move {
            let mut last = None;
            let mut warmed_at = Instant::now();
            let mut tick = tokio::time::interval(POLL);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(current) = webhook.policies.current() else {
                    continue;
                };
                let changed = last.as_ref().is_none_or(|l| !Arc::ptr_eq(l, &current));
                if changed || warmed_at.elapsed() >= REWARM {
                    let sources = webhook.warm_once(&current, connections).await;
                    tracing::debug!(sources, connections, changed, "notary connections warmed");
                    warmed_at = Instant::now();
                    last = Some(current);
                }
            }
        }))
    }

    /// Warms the sources of `set`'s policies once (cluster-wide policies first, at most
    /// `decision::MAX_WARM_SOURCES` sources), with the credentials a review in the policy's
    /// namespace (`default` for cluster-wide ones) without pull secrets would get.
    async fn warm_once(&self, set: &PolicySet, connections: usize) -> usize {
        let mut sources: Vec<(Arc<LoadedPolicy>, Arc<dyn CredentialSource>)> = Vec::new();
        // The operator's cluster-wide policies first: warming stops at a bound, and namespaced
        // policies are written by tenants.
        let mut policies: Vec<&Arc<LoadedPolicy>> = set.iter().collect();
        policies.sort_by_key(|p| p.id.namespace.is_some());
        for policy in policies {
            let namespace = policy.id.namespace.as_deref().unwrap_or("default");
            let creds = self
                .credentials
                .for_request(CredentialRequest {
                    namespace,
                    image_pull_secrets: &[],
                    service_account: None,
                })
                .await;
            sources.push((Arc::clone(policy), creds));
        }
        self.engine.warm(&sources, connections).await
    }
}

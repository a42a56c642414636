//! Step 5 of the update chain: the delegations (TUF §5.6.7; notary `update` (d)), walked in
//! pre-order from `targets` as notary's client walks them.
//!
//! - Only the delegations the snapshot lists are fetched; one it does not list was never
//!   published (`NotPublished`). Children come in their parent's `delegations.roles` order.
//! - Each one: length and hashes against the snapshot (a mismatch is fatal), structure and
//!   version (fatal), then signatures by the parent's delegation keys and threshold, then
//!   expiry: a delegation below threshold or expired is skipped with a warning (`Invalid`),
//!   never used. A valid one is descended into before its next sibling.
//! - Siblings are fetched `LIMITS.delegation_fetch_concurrency` at a time (unless kept), and
//!   verified in order once their parent is verified; more than
//!   `LIMITS.delegations_per_repository` declared delegations, all levels together, fail the load.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::future::{BoxFuture, FutureExt};
use futures::stream::{self, StreamExt};

use super::super::ident::{self, Id};
use super::super::schema::{Snapshot, TARGETS, Targets};
use super::super::source::MetadataSource;
use super::super::verify::{Outcome, Verified, VerifyError, verify_delegation};
use super::super::view::{RoleInfo, RoleStatus, key_infos, restrict_paths};
use super::Trusted;
use crate::limits::LIMITS;

/// One parent in the walk: its name, its verified file, the meta identity it was listed with
/// (the verifier context of its children) and its effective paths.
struct Parent<'p> {
    name: &'p str,
    file: Arc<Verified<Targets>>,
    id: Id,
    paths: &'p [String],
}

impl<S: MetadataSource> Trusted<'_, '_, S> {
    /// Step 5: the verified view of every targets role, `targets` first, then its delegations
    /// in pre-order.
    pub(super) async fn delegations(
        &self,
        snapshot: &Arc<Verified<Snapshot>>,
        targets: Arc<Verified<Targets>>,
    ) -> Result<Vec<RoleInfo>, VerifyError> {
        let mut roles = vec![self.targets_info(&targets)];
        let Some(meta) = snapshot.file.body.meta.get(TARGETS) else {
            return Ok(roles);
        };
        let top = [String::new()];
        let parent = Parent {
            name: TARGETS,
            file: targets,
            id: ident::meta_id(meta),
            paths: &top,
        };
        self.children(snapshot, parent, &mut roles).await?;
        Ok(roles)
    }

    /// The delegations `parent` declares, appended to `out` in pre-order (see the module header).
    fn children<'s>(
        &'s self,
        snapshot: &'s Arc<Verified<Snapshot>>,
        parent: Parent<'s>,
        out: &'s mut Vec<RoleInfo>,
    ) -> BoxFuture<'s, Result<(), VerifyError>> {
        async move {
            let chain = self.chain;
            let declared = &parent.file.file.body.delegations.roles;
            let total = self.declared.fetch_add(declared.len(), Ordering::Relaxed) + declared.len();
            if total > LIMITS.delegations_per_repository {
                return Err(VerifyError::TooManyDelegations {
                    gun: chain.gun.to_owned(),
                    role: parent.name.to_owned(),
                    limit: LIMITS.delegations_per_repository,
                });
            }
            let context = ident::context(&parent.id, &self.revoked_id);
            let fetches: Vec<_> = declared
                .iter()
                .map(|d| {
                    let context = &context;
                    async move {
                        let meta = snapshot.file.body.meta.get(&d.name)?;
                        Some((meta, self.obtain::<Targets>(&d.name, meta, context).await))
                    }
                    .boxed()
                })
                .collect();
            let obtained: Vec<_> = stream::iter(fetches)
                .buffered(LIMITS.delegation_fetch_concurrency.max(1))
                .collect()
                .await;
            let delegations = &parent.file.file.body.delegations;
            for (decl, got) in declared.iter().zip(obtained) {
                let keys = key_infos(&delegations.keys, &decl.keys.keyids);
                let paths = restrict_paths(parent.paths, &decl.paths);
                let threshold = decl.keys.threshold;
                let Some((meta, listed)) = got else {
                    out.push(RoleInfo::unusable(&decl.name, keys, threshold, paths, RoleStatus::NotPublished));
                    continue;
                };
                let (gun, parent_role, name) = (chain.gun.to_owned(), parent.name.to_owned(), decl.name.clone());
                let (parent_file, snap, revoked, now) = (parent.file.clone(), snapshot.clone(), self.revoked.clone(), chain.now);
                let verify = move |raw, seen| {
                    verify_delegation(&gun, &parent_role, &parent_file.file.body, &snap.file.body, &name, raw, seen, now, &revoked)
                };
                match self.settle(&decl.name, listed, verify).await? {
                    Outcome::Valid(v) => {
                        out.push(RoleInfo::valid(&decl.name, keys, threshold, paths.clone(), &v));
                        let child = Parent { name: &decl.name, file: v, id: ident::meta_id(meta), paths: &paths };
                        self.children(snapshot, child, out).await?;
                    }
                    Outcome::Invalid(e) => {
                        tracing::warn!(gun = chain.gun, role = %decl.name, error = %e, "skipping invalid delegation");
                        out.push(RoleInfo::unusable(&decl.name, keys, threshold, paths, RoleStatus::Invalid(e)));
                    }
                }
            }
            Ok(())
        }
        .boxed()
    }
}

//! Step 1 of the update chain: the trusted root (TUF §5.3; notary's `bootstrapClient` and
//! `updateRoot` with `trustpinning.ValidateRoot`; the checks of one root are in `verify::root`).
//!
//! - When a root of the repository is remembered (`VersionMemory`), a newer root is reached ONLY
//!   by rotation from it: every version in between, each signed by a threshold of the previous
//!   root's keys and of its own (Notary's `ValidateRoot`, TUF 5.3.4). A newer root that the pins
//!   accept directly but that skips the remembered root's threshold is refused. When the
//!   remembered root does not satisfy the current pins (another policy trusted it), the current
//!   pins must accept the newest root as well.
//! - Otherwise the newest root is trusted directly by the pins, or through a chain of rotations
//!   from an older root the pins accept (walking back at most `LIMITS.root_walk` versions).
//!
//! Every root read feeds the revocations (a revoked key ID found in any of them revokes its
//! public key everywhere), and every signature check runs off the async runtime.

use std::collections::BTreeMap;
use std::sync::Arc;

use time::OffsetDateTime;

use super::super::options::{Revocations, TrustRoot};
use super::super::schema::{ROOT, Root, SignedFile};
use super::super::source::{FetchError, MetaRequest, MetadataSource};
use super::super::verify::{TrustedRoot, VerifyError, verify_pinned_root, verify_rotation};
use super::Chain;
use super::kept::off_runtime;
use crate::limits::LIMITS;

/// What root checks need, owned (they run on the blocking pool).
#[derive(Clone)]
struct Pins {
    pins: Arc<Vec<TrustRoot>>,
    threshold: usize,
    now: OffsetDateTime,
}

impl Pins {
    async fn pinned(
        &self,
        file: SignedFile<Root>,
        revoked: &Revocations,
        is_final: bool,
    ) -> Result<TrustedRoot, VerifyError> {
        let (this, revoked) = (self.clone(), revoked.clone());
        let gun = file.gun.clone();
        off_runtime(&gun, ROOT, move || {
            verify_pinned_root(
                file,
                &this.pins,
                this.threshold,
                &revoked,
                this.now,
                is_final,
            )
        })
        .await
    }

    async fn rotate(
        &self,
        prev: TrustedRoot,
        next: SignedFile<Root>,
        revoked: &Revocations,
        is_final: bool,
    ) -> Result<TrustedRoot, VerifyError> {
        let (now, revoked) = (self.now, revoked.clone());
        let gun = next.gun.clone();
        off_runtime(&gun, ROOT, move || {
            verify_rotation(&prev, next, &revoked, now, is_final)
        })
        .await
    }
}

impl<S: MetadataSource> Chain<'_, S> {
    /// Step 1: the newest root of the repository, trusted (see the module header). `revoked`
    /// learns the public keys of revoked key IDs from every root read.
    pub(super) async fn trusted_root(
        &self,
        revoked: &mut Revocations,
    ) -> Result<TrustedRoot, VerifyError> {
        let (source, gun) = (self.source, self.gun);
        let pins = Pins {
            pins: Arc::new(self.opts.trust_roots.clone()),
            threshold: self.opts.trust_root_threshold,
            now: self.now,
        };
        let raw = source
            .fetch(
                gun,
                &MetaRequest::Current { role: ROOT.into() },
                LIMITS.root_bytes,
            )
            .await?;
        let latest = parse_root(gun, raw).await?;
        revoked.resolve(latest.body.keys.values().map(AsRef::as_ref));
        let newest = latest.body.common.version;
        if let Some(prev) = self.memory.trusted_root(source.server(), gun) {
            revoked.resolve(prev.file.body.keys.values().map(AsRef::as_ref));
            if newest < prev.version() {
                return Err(VerifyError::Rollback {
                    gun: gun.into(),
                    role: ROOT.into(),
                    seen: prev.version(),
                    got: newest,
                });
            }
            if newest == prev.version() && latest.canonical != prev.file.canonical {
                return Err(VerifyError::RootReplaced {
                    gun: gun.into(),
                    version: newest,
                });
            }
            if newest > prev.version() {
                let rotated = self
                    .rotate_forward(&pins, (*prev).clone(), latest.clone(), revoked)
                    .await?;
                // The remembered root may have been trusted under other pins: then these pins
                // must accept the newest root too.
                let pinned_prev = pins.pinned(prev.file.clone(), revoked, false).await;
                if pinned_prev.is_ok() {
                    return Ok(rotated);
                }
                self.trusted_by_pins(&pins, latest, revoked).await?;
                return Ok(rotated);
            }
        }
        self.trusted_by_pins(&pins, latest, revoked).await
    }

    /// Trusts `latest` by the pins alone: directly, or by rotation from an older root they
    /// accept (walking back at most `LIMITS.root_walk` versions).
    async fn trusted_by_pins(
        &self,
        pins: &Pins,
        latest: SignedFile<Root>,
        revoked: &mut Revocations,
    ) -> Result<TrustedRoot, VerifyError> {
        let newest = latest.body.common.version;
        let direct = match pins.pinned(latest.clone(), revoked, true).await {
            Ok(trusted) => return Ok(trusted),
            Err(e @ VerifyError::UntrustedRoot { .. }) if newest > 1 => e,
            Err(e) => return Err(e),
        };

        // Find an anchor: a root the pins accept, older than the newest.
        let mut older: BTreeMap<u64, SignedFile<Root>> = BTreeMap::new();
        let lowest = newest.saturating_sub(LIMITS.root_walk).max(1);
        let mut anchor = None;
        for v in (lowest..newest).rev() {
            let Some(file) = self.root_version(v).await? else {
                break;
            };
            revoked.resolve(file.body.keys.values().map(AsRef::as_ref));
            match pins.pinned(file.clone(), revoked, false).await {
                Ok(found) => {
                    anchor = Some(found);
                    break;
                }
                Err(_) => {
                    older.insert(v, file);
                }
            }
        }
        let anchor = match anchor {
            Some(anchor) => anchor,
            None if lowest > 1 && older.len() as u64 == newest - lowest => {
                return Err(VerifyError::RootChainTooLong {
                    gun: self.gun.into(),
                    version: newest,
                    limit: LIMITS.root_walk,
                });
            }
            None => return Err(direct),
        };
        self.rotate_through(pins, anchor, older, latest, revoked)
            .await
    }

    /// Rotation from the remembered root `prev` to `latest`, through every version in between
    /// (at most `LIMITS.root_walk` of them).
    async fn rotate_forward(
        &self,
        pins: &Pins,
        prev: TrustedRoot,
        latest: SignedFile<Root>,
        revoked: &mut Revocations,
    ) -> Result<TrustedRoot, VerifyError> {
        let newest = latest.body.common.version;
        if newest - prev.version() > LIMITS.root_walk {
            return Err(VerifyError::RootChainTooLong {
                gun: self.gun.into(),
                version: newest,
                limit: LIMITS.root_walk,
            });
        }
        self.rotate_through(pins, prev, BTreeMap::new(), latest, revoked)
            .await
    }

    /// Verifies each rotation from `anchor` to `latest`, using the `older` files already read;
    /// intermediate roots ignore expiry, the newest doesn't.
    async fn rotate_through(
        &self,
        pins: &Pins,
        anchor: TrustedRoot,
        mut older: BTreeMap<u64, SignedFile<Root>>,
        latest: SignedFile<Root>,
        revoked: &mut Revocations,
    ) -> Result<TrustedRoot, VerifyError> {
        let newest = latest.body.common.version;
        let mut current = anchor;
        for v in current.version() + 1..newest {
            let file = match older.remove(&v) {
                Some(file) => file,
                None => self
                    .root_version(v)
                    .await?
                    .ok_or_else(|| FetchError::NotFound {
                        server: self.server.to_owned(),
                        gun: self.gun.to_owned(),
                        file: MetaRequest::Version {
                            role: ROOT.into(),
                            version: v,
                        }
                        .file_name(),
                    })?,
            };
            revoked.resolve(file.body.keys.values().map(AsRef::as_ref));
            current = pins.rotate(current, file, revoked, false).await?;
        }
        pins.rotate(current, latest, revoked, true).await
    }
}

/// Parses a root file off the async runtime (up to `LIMITS.root_bytes` of JSON and keys).
async fn parse_root(gun: &str, raw: Vec<u8>) -> Result<SignedFile<Root>, VerifyError> {
    let owned = gun.to_owned();
    off_runtime(gun, ROOT, move || {
        SignedFile::<Root>::parse(&owned, ROOT, raw)
    })
    .await
}

impl<S: MetadataSource> Chain<'_, S> {
    /// `<v>.root.json`, parsed and checked to hold version `v`; `None` when the server has none.
    async fn root_version(&self, v: u64) -> Result<Option<SignedFile<Root>>, VerifyError> {
        let (source, gun) = (self.source, self.gun);
        let req = MetaRequest::Version {
            role: ROOT.into(),
            version: v,
        };
        let raw = match source.fetch(gun, &req, LIMITS.root_bytes).await {
            Ok(raw) => raw,
            Err(FetchError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let file = parse_root(gun, raw).await?;
        if file.body.common.version != v {
            return Err(VerifyError::VersionMismatch {
                gun: gun.into(),
                role: ROOT.into(),
                expected: v,
                got: file.body.common.version,
            });
        }
        Ok(Some(file))
    }
}

//! Tests of schema, verify, updater and view: real public notary data (read in place from
//! `TRUSTGATE_NOTARY_FIXTURES`, see `notary::fixtures_dir`) and synthetic repositories from
//! `builder` (`notary::testing`, also used by the engine's tests in `decision`), and the
//! re-use of verified files between loads (`caching`).
#![allow(clippy::panic)]

pub(crate) mod attacks;
pub(crate) mod caching;
mod fixtures;
mod limits;
mod prefetch;
mod properties;
mod scenarios;

use std::sync::Arc;

pub(crate) use super::testing as builder;

use time::OffsetDateTime;
use time::macros::datetime;

use crate::clock::FixedClock;
use crate::notary::keys::PinnedKey;
use crate::notary::source::MetadataSource;
use crate::notary::updater::{Revocations, TrustOptions, TrustRoot, Updater};
use crate::notary::verify::VerifyError;
use crate::notary::view::TrustData;

/// 2025-06-01: every fixture (and notary0.3's root certificate) is valid.
pub(crate) const NOW: OffsetDateTime = datetime!(2025-06-01 00:00 UTC);

pub(crate) fn updater_at(now: OffsetDateTime) -> Updater {
    Updater::new(Arc::new(FixedClock(now)))
}

pub(crate) fn pin_ids(ids: &[&str]) -> TrustOptions {
    TrustOptions {
        trust_roots: ids
            .iter()
            .map(|id| TrustRoot::KeyId((*id).to_owned()))
            .collect(),
        trust_root_threshold: 1,
        revoked: Revocations::new(),
    }
}

pub(crate) fn pin_pem(pem: &str) -> TrustOptions {
    TrustOptions {
        trust_roots: vec![TrustRoot::Key(PinnedKey::from_pem(pem).expect("pem"))],
        trust_root_threshold: 1,
        revoked: Revocations::new(),
    }
}

pub(crate) fn load<S: MetadataSource>(
    u: &Updater,
    src: &S,
    gun: &str,
    opts: &TrustOptions,
) -> Result<TrustData, VerifyError> {
    futures::executor::block_on(u.load(src, gun, opts))
}

pub(crate) fn sha(hex_digest: &str) -> [u8; 32] {
    let v = hex::decode(hex_digest).expect("hex");
    v.try_into().expect("32 bytes")
}

//! How long verifying a targets role with 10,000 signed tags takes (a plain binary that prints
//! numbers; `harness = false`):
//!
//! 1. `verify_targets` (parse, canonicalise, hash check, signature check) plus building the
//!    role's view (`RoleInfo::valid`, `TrustData::new`) for the 10k-target file alone, with a
//!    breakdown of its parts;
//! 2. a full `Updater::load` (root, timestamp, snapshot, targets) from an in-memory source;
//! 3. `TrustData::docker_lookup` per call (hit and miss).
//!
//! Run: `cargo bench --features bench-support --bench verify` (optionally `-- <targets>
//! <iterations>`). The repository is synthetic: P-256 keys from aws-lc-rs, a self-signed root
//! certificate, everything signed as notary does (`trustgate::notary::testing`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use trustgate::clock::FixedClock;
use trustgate::notary::canonical::{canonical_shape, to_canonical};
use trustgate::notary::keys::PinnedKey;
use trustgate::notary::schema::{RoleBody, Root, SignedFile, Snapshot, Source, TARGETS, Targets};
use trustgate::notary::testing::{MemSource, Repo, target};
use trustgate::notary::updater::{Revocations, TrustOptions, TrustRoot, Updater};
use trustgate::notary::verify::{
    TrustedRoot, check_meta, verify_pinned_root, verify_targets, verify_threshold,
};
use trustgate::notary::view::{RoleInfo, RootInfo, TrustData, key_infos};

const GUN: &str = "registry.example.com/bench/app";

/// Min / median / p99 / mean of a set of durations.
struct Stats {
    min: Duration,
    median: Duration,
    p99: Duration,
    mean: Duration,
    n: usize,
}

impl Stats {
    fn of(mut samples: Vec<Duration>) -> Stats {
        assert!(!samples.is_empty());
        samples.sort_unstable();
        let n = samples.len();
        let at = |q: f64| {
            // Nearest-rank percentile.
            let rank = (q * n as f64).ceil() as usize;
            samples[rank.clamp(1, n) - 1]
        };
        let total: Duration = samples.iter().sum();
        Stats {
            min: samples[0],
            median: at(0.5),
            p99: at(0.99),
            mean: total / n as u32,
            n,
        }
    }

    fn print(&self, what: &str) {
        println!(
            "{what:<58} n={:<6} min {:>10} median {:>10} p99 {:>10}  {:>12.0} it/s",
            self.n,
            fmt(self.min),
            fmt(self.median),
            fmt(self.p99),
            1.0 / self.mean.as_secs_f64(),
        );
    }
}

fn fmt(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns >= 1_000_000 {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    } else if ns >= 1_000 {
        format!("{:.2} µs", d.as_secs_f64() * 1e6)
    } else {
        format!("{ns} ns")
    }
}

/// Runs `f` `warmup` times untimed, then `n` times timed.
fn bench<T>(n: usize, warmup: usize, mut f: impl FnMut() -> T) -> Stats {
    for _ in 0..warmup {
        black_box(f());
    }
    let samples = (0..n)
        .map(|_| {
            let t = Instant::now();
            black_box(f());
            t.elapsed()
        })
        .collect();
    Stats::of(samples)
}

/// Like `bench`, but `f` gets an owned input made by `setup` outside the timed section.
fn bench_with_input<I, T>(
    n: usize,
    warmup: usize,
    mut setup: impl FnMut() -> I,
    mut f: impl FnMut(I) -> T,
) -> Stats {
    for _ in 0..warmup {
        black_box(f(setup()));
    }
    let samples = (0..n)
        .map(|_| {
            let input = setup();
            let t = Instant::now();
            black_box(f(input));
            t.elapsed()
        })
        .collect();
    Stats::of(samples)
}

fn digest(i: usize) -> [u8; 32] {
    Sha256::digest(format!("manifest of tag-{i}").as_bytes()).into()
}

/// root + targets (`n` tags `tag-<i>`) + snapshot + timestamp, served from memory.
fn repository(n: usize) -> (Repo, MemSource) {
    let mut repo = Repo::new(GUN);
    let targets = &mut repo.role(TARGETS).targets;
    for i in 0..n {
        targets.insert(
            format!("tag-{i}"),
            target(digest(i), 400 + (i as u64 % 2000)),
        );
    }
    let src = repo.publish();
    (repo, src)
}

fn file(src: &MemSource, name: &str) -> Vec<u8> {
    src.files
        .get(name)
        .unwrap_or_else(|| panic!("{name} not published"))
        .clone()
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with("--"));
    let tags: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let iters: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);

    let built = Instant::now();
    let (repo, src) = repository(tags);
    let now = OffsetDateTime::now_utc();
    let root_key = &repo.roles["root"].keys[0];
    let pin = TrustRoot::Key(PinnedKey::from_pem(&root_key.cert_pem()).expect("root cert"));
    let opts = TrustOptions {
        trust_roots: vec![pin],
        trust_root_threshold: 1,
        revoked: Revocations::new(),
    };
    let revoked = Revocations::new();
    let root_raw = file(&src, "root.json");
    let snap_raw = file(&src, "snapshot.json");
    let targets_raw = file(&src, "targets.json");
    let root: TrustedRoot = verify_pinned_root(
        SignedFile::<Root>::parse(GUN, "root", root_raw).expect("root parses"),
        &opts.trust_roots,
        1,
        &revoked,
        now,
        true,
    )
    .expect("root verifies");
    let snapshot = SignedFile::<Snapshot>::parse(GUN, "snapshot", snap_raw)
        .expect("snapshot parses")
        .body;
    println!(
        "synthetic repository: {tags} targets, targets.json {} bytes (canonical `signed` {} bytes), built in {:.0} ms",
        targets_raw.len(),
        SignedFile::<Targets>::parse(GUN, TARGETS, targets_raw.clone())
            .expect("parses")
            .canonical
            .len(),
        built.elapsed().as_secs_f64() * 1e3,
    );
    println!(
        "load average: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    println!();

    // (1) The 10k-target file alone: verify_targets + the role's view.
    let verify_and_view = |raw: Vec<u8>| {
        let v = verify_targets(&root, &snapshot, raw, None, now, &revoked).expect("verifies");
        let spec = &root.file.body.roles.targets;
        let role = RoleInfo::valid(
            TARGETS,
            key_infos(&root.file.body.keys, &spec.keyids),
            spec.threshold,
            vec![String::new()],
            &v,
        );
        assert_eq!(role.targets.len(), tags);
        TrustData::new(GUN.to_owned(), RootInfo::from_trusted(&root), vec![role])
    };
    let s1 = bench_with_input(iters, 5, || targets_raw.clone(), verify_and_view);
    s1.print("(1) verify_targets + RoleInfo::valid + TrustData::new");

    // Breakdown of (1).
    let parsed = SignedFile::<Targets>::parse(GUN, TARGETS, targets_raw.clone()).expect("parses");
    // The general path (a `signed` not in canonical form) builds a `Value` tree; for reference.
    let value: serde_json::Value = serde_json::from_slice(&targets_raw).expect("json");
    let signed_value = value["signed"].clone();
    let signed_text = std::str::from_utf8(&parsed.canonical).expect("utf-8");
    bench_with_input(
        iters,
        5,
        || targets_raw.clone(),
        |raw| serde_json::from_slice::<serde_json::Value>(&raw).expect("json"),
    )
    .print("  1a general path: serde_json -> Value (and its drop)");
    bench(iters, 5, || to_canonical(&signed_value).expect("canonical"))
        .print("  1b general path: to_canonical(signed)");
    bench(iters, 5, || {
        canonical_shape(signed_text.as_bytes(), 64).expect("canonical")
    })
    .print("  1b' canonical_shape (the one-pass check of the text)");
    bench_with_input(
        iters,
        5,
        || targets_raw.clone(),
        |raw| SignedFile::<Targets>::parse(GUN, TARGETS, raw).expect("parses"),
    )
    .print("  1c SignedFile::<Targets>::parse (1b' + typed body)");
    bench(iters, 5, || {
        <Targets as RoleBody>::from_signed(TARGETS, &signed_value).expect("typed body")
    })
    .print("  1d general path: Targets::from_signed (typed body from the Value)");
    bench(iters, 5, || {
        <Targets as RoleBody>::from_source(TARGETS, Source::Text(signed_text)).expect("typed body")
    })
    .print("  1d' Targets::from_source(Text) (typed body from the text)");
    bench(iters, 5, || {
        let spec = &root.file.body.roles.targets;
        verify_threshold(&parsed, &root.file.body.keys, spec, &revoked).expect("signed")
    })
    .print("  1e signature threshold (sha256 of canonical + P-256 verify)");
    let meta = &snapshot.meta[TARGETS];
    bench(iters, 5, || {
        check_meta(GUN, TARGETS, "snapshot", &targets_raw, meta).expect("hashes")
    })
    .print("  1f check_meta: sha256 + sha512 of the raw file");
    let verified = verify_targets(&root, &snapshot, targets_raw.clone(), None, now, &revoked)
        .expect("verifies");
    bench(iters, 5, || {
        let spec = &root.file.body.roles.targets;
        RoleInfo::valid(
            TARGETS,
            key_infos(&root.file.body.keys, &spec.keyids),
            spec.threshold,
            vec![String::new()],
            &verified,
        )
    })
    .print("  1g RoleInfo::valid (view of 10k targets)");
    println!();

    // (2) Full load from memory with a fresh updater (no version memory) each time.
    let clock = Arc::new(FixedClock(now));
    let s2 = bench(iters.div_ceil(2), 3, || {
        let u = Updater::new(clock.clone());
        futures::executor::block_on(u.load(&src, GUN, &opts)).expect("loads")
    });
    s2.print("(2) Updater::load (root, timestamp, snapshot, targets)");
    let same = Updater::new(clock.clone());
    bench(iters.div_ceil(2), 3, || {
        futures::executor::block_on(same.load(&src, GUN, &opts)).expect("loads")
    })
    .print("    same, one updater reused (version memory)");
    println!();

    // (3) docker_lookup per call, timed in batches of 1,000 calls.
    let data =
        futures::executor::block_on(Updater::new(clock).load(&src, GUN, &opts)).expect("loads");
    const BATCH: u32 = 1_000;
    let names: Vec<String> = (0..BATCH as usize)
        .map(|i| format!("tag-{}", (i * 7919) % tags))
        .collect();
    let per_call = |stats: Stats| Stats {
        min: stats.min / BATCH,
        median: stats.median / BATCH,
        p99: stats.p99 / BATCH,
        mean: stats.mean / BATCH,
        n: stats.n,
    };
    per_call(bench(iters, 5, || {
        names
            .iter()
            .filter(|n| data.docker_lookup(n).is_some())
            .count()
    }))
    .print("(3) docker_lookup, hit (per call; n = batches of 1000)");
    per_call(bench(iters, 5, || {
        (0..BATCH)
            .filter(|_| data.docker_lookup("no-such-tag").is_some())
            .count()
    }))
    .print("    docker_lookup, miss (per call; n = batches of 1000)");

    println!();
    let goal = Duration::from_millis(20);
    println!(
        "goal (1) < {}: median {} -> {}",
        fmt(goal),
        fmt(s1.median),
        if s1.median < goal { "met" } else { "NOT met" }
    );
}

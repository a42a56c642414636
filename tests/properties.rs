//! Property-based fuzzing on stable Rust (proptest): image references, AdmissionReview bodies
//! (decoder, extraction and the `/validate` handler in process), policy YAML and canonical JSON.
//! Each property says what must hold for *every* input: no panic, no hang, a clear reason for
//! every rejection, and the round trips the parsers promise. The Notary metadata properties need
//! the crate's test-only repository builder and live in `src/notary/tests/properties.rs`.
//!
//! The number of cases comes from `PROPTEST_CASES` (default 256 per property; the costlier
//! properties run a fraction of it). CI runs the default; docs/fuzzing.md has the long run.
//! Failing cases proptest finds are saved under `proptest-regressions/` and replayed first.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod properties {
    pub mod admission;
    pub mod canonical;
    pub mod mutate;
    pub mod policy;
    pub mod reference;

    use proptest::test_runner::{Config, FileFailurePersistence};

    /// `PROPTEST_CASES` (default 256) divided by `cost`, at least 1; shrinking bounded so that a
    /// failure is reported within minutes. Failing seeds of module `module` are kept in
    /// `proptest-regressions/properties/<module>.txt` (replayed first on every run).
    pub fn config(cost: u32, module: &'static str) -> Config {
        let base = Config::default();
        let file: &'static str = format!("proptest-regressions/properties/{module}.txt").leak();
        Config {
            cases: (base.cases / cost).max(1),
            max_shrink_iters: 1024,
            failure_persistence: Some(Box::new(FileFailurePersistence::Direct(file))),
            ..base
        }
    }

    /// Runs `f` on another thread; `Err` when it panics or takes longer than `limit` (a hang).
    pub fn bounded<T: Send + 'static>(
        limit: std::time::Duration,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, String> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        match rx.recv_timeout(limit) {
            Ok(v) => Ok(v),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                Err(format!("no answer within {limit:?} (a hang)"))
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err("panicked".to_owned()),
        }
    }
}

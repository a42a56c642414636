//! The attack suite: one test per attack class of TUF and per finding of the adversarial review,
//! each named after the attack it tries. Attacks that need a server run against the real local
//! Notary + registry stack (`bash e2e/stack.sh up`), or against a malicious server scripted in
//! the test on 127.0.0.1; the rest run in process. Every test here fails on a trustgate that
//! lets the attack through.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

mod attacks {
    pub mod admission;
    pub mod credentials;
    pub mod notary;
    pub mod policy;
}

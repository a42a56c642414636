//! Attacks on notary (see tests/attacks.rs).

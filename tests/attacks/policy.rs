//! Attacks on policy (see tests/attacks.rs).

//! Attacks on credentials (see tests/attacks.rs).

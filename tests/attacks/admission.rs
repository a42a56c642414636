//! Attacks on admission (see tests/attacks.rs).

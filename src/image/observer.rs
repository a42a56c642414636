//! The one outward hook of `image`: a [`RegistryObserver`] told about every registry round trip,
//! so the application can count them (its metrics implement the trait) without `image`
//! depending on the application.

use std::time::Duration;

/// Told about every tag resolution that asked a registry (a digest taken from the reference
/// itself is not reported). `outcome` is `ok` or the stable error label of
/// [`crate::image::registry::error_label`].
pub trait RegistryObserver: Send + Sync {
    /// One finished resolution: its outcome and how long it took.
    fn resolution_finished(&self, outcome: &str, elapsed: Duration);
}

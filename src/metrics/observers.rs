//! The metrics as the observers `notary` and `image` report to: those modules define the traits
//! (so they import nothing of the application) and [`Metrics`] implements them here.

use std::time::Duration;

use super::Metrics;
use crate::image::observer::RegistryObserver;
use crate::notary::source::FetchObserver;

impl RegistryObserver for Metrics {
    fn resolution_finished(&self, outcome: &str, elapsed: Duration) {
        self.registry_resolution(outcome, elapsed);
    }
}

impl FetchObserver for Metrics {
    fn fetch_finished(&self, role: &str, outcome: &str, elapsed: Duration) {
        self.notary_fetch(role, outcome, elapsed);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::image::credentials::Credentials;
    use crate::image::reference::ImageRef;
    use crate::image::registry::{RegistryOptions, Resolver};

    #[tokio::test]
    async fn registry_round_trips_are_counted() {
        let metrics = Arc::new(Metrics::new());
        let r = Resolver::default().with_metrics(metrics.clone());
        let opts = RegistryOptions {
            ca_pem: Some(b"not pem".to_vec()),
            ..RegistryOptions::default()
        };
        let tagged = ImageRef::parse("127.0.0.1:1/x/y:v1").unwrap();
        assert!(
            r.resolve(&tagged, &opts, &Credentials::Anonymous)
                .await
                .is_err()
        );
        let text = metrics.encode();
        assert!(
            text.contains(r#"trustgate_registry_resolutions_total{outcome="other"} 1"#),
            "{text}"
        );
    }
}

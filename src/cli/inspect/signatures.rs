//! The Notation and cosign part of `trustgate inspect`: the image resolved to its digest on the
//! registry (with the `--registry-*` flags' CA, credentials and timeout, as `check` uses them),
//! its referrers read once, and the signature artifacts of each format fetched within the
//! registry client's limits, then listed without being verified.

use trustgate::image::reference::ImageRef;
use trustgate::image::registry::{Resolver, SignatureFormat};
use trustgate::signatures::listing::Listing;

use crate::cli::RegistryFlags;
use crate::cli::resolve::registry_setup;

/// The signatures attached to the digest `image` resolves to, or why the image could not be
/// resolved or its referrers listed (a format whose artifacts cannot be fetched is reported in
/// the listing). Errors: the registry flags (an unreadable CA bundle or docker config).
pub async fn list(
    image: &ImageRef,
    flags: &RegistryFlags,
) -> anyhow::Result<Result<Listing, String>> {
    let (options, config) = registry_setup(flags)?;
    let creds = config.credentials_for(image.domain());
    let resolver = Resolver::default();
    let subject = match resolver.describe(image, &options, &creds).await {
        Ok(s) => s,
        Err(e) => return Ok(Err(format!("resolving {}: {e}", image.normalized()))),
    };
    let listed = match resolver
        .referrers(image, &subject.digest, &options, &creds)
        .await
    {
        Ok(l) => l,
        Err(e) => {
            return Ok(Err(format!(
                "listing the referrers of {}: {e}",
                subject.digest
            )));
        }
    };
    let fetch = async |format| {
        resolver
            .signatures_listed(image, &subject, format, &listed, &options, &creds)
            .await
            .map_err(|e| e.to_string())
    };
    let notation = fetch(SignatureFormat::Notation).await;
    let cosign = fetch(SignatureFormat::Cosign).await;
    Ok(Ok(Listing::new(subject, notation, cosign)))
}

//! Blob redirects to another origin. Registries (Docker Hub, GHCR, ECR, Quay) answer
//! `GET /v2/<name>/blobs/<digest>` with a redirect to a storage host, often a pre-signed URL
//! whose query string is its authorization. The registry client follows redirects only within
//! the registry's origin (so its `Authorization` never leaves it); for a blob, a redirect to
//! another origin is followed here, by hand:
//!
//! * each hop is a fresh `GET` of the `Location` (resolved against the answering URL, query
//!   kept intact, fragment dropped) carrying no `Authorization`, cookie or other credential;
//!   redirects within the storage host's own origin are followed as usual;
//! * at most [`MAX_BLOB_HOPS`] hops to another origin; more (a loop) is refused;
//! * `https` only, unless the registry itself is plain `http`: a redirect from an https
//!   registry to `http` is refused, and so is any other scheme or a URL with a login in it;
//! * the caller reads the answer with the same size cap and within the same timeout, and
//!   checks its digest: whatever host serves the bytes, only the digest asked for is accepted.
//!
//! Errors name the origin only: a pre-signed URL's query is a credential and is not logged.

use reqwest::header::LOCATION;
use reqwest::{Client, Response, StatusCode};
use url::Url;

use super::Failure;

/// Most redirects to another origin followed for one blob.
pub(super) const MAX_BLOB_HOPS: usize = 3;

/// The answer after following `resp`'s redirects to other origins (none when it is not a
/// redirect), and whether it came from another origin than the registry.
pub(super) async fn follow_elsewhere(
    client: &Client,
    registry_scheme: &str,
    mut resp: Response,
) -> Result<(Response, bool), Failure> {
    let mut hops = 0;
    while is_redirect(resp.status()) {
        let Some(target) = target(resp.url(), resp.headers().get(LOCATION), registry_scheme)?
        else {
            break;
        };
        hops += 1;
        if hops > MAX_BLOB_HOPS {
            return Err(Failure::Protocol(format!(
                "blob redirected more than {MAX_BLOB_HOPS} times to other hosts (last to {})",
                origin(&target)
            )));
        }
        tracing::debug!(to = %origin(&target), "following a blob redirect to another host without credentials");
        drop(resp);
        resp = client
            .get(target)
            .send()
            .await
            .map_err(Failure::Transport)?;
    }
    Ok((resp, hops > 0))
}

fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// Where a redirect from `from` to `location` may be followed without credentials; `None`
/// when there is no `Location` (the 3xx is then the answer).
pub(super) fn target(
    from: &Url,
    location: Option<&reqwest::header::HeaderValue>,
    registry_scheme: &str,
) -> Result<Option<Url>, Failure> {
    let Some(location) = location else {
        return Ok(None);
    };
    let refuse = |why: &str| Failure::Protocol(format!("blob redirect refused: {why}"));
    let location = location
        .to_str()
        .map_err(|_| refuse("Location is not text"))?;
    let mut to = from
        .join(location)
        .map_err(|_| refuse("Location is not a URL"))?;
    to.set_fragment(None);
    match to.scheme() {
        "https" => {}
        "http" if registry_scheme == "http" => {}
        "http" => {
            return Err(refuse(&format!(
                "{} is plain http, the registry is https",
                origin(&to)
            )));
        }
        other => return Err(refuse(&format!("scheme {other:?} is not http(s)"))),
    }
    if !to.username().is_empty() || to.password().is_some() {
        return Err(refuse(&format!("{} carries a login", origin(&to))));
    }
    if to.host().is_none() {
        return Err(refuse("no host"));
    }
    Ok(Some(to))
}

/// `scheme://host:port` of `url` (never its path or query).
fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn to(registry_scheme: &str, from: &str, location: &str) -> Result<Option<Url>, Failure> {
        let from = Url::parse(from).unwrap();
        target(
            &from,
            Some(&HeaderValue::from_str(location).unwrap()),
            registry_scheme,
        )
    }

    #[test]
    fn https_registries_are_redirected_to_https_only() {
        let from = "https://reg.example/v2/a/blobs/sha256:1";
        let err = to("https", from, "http://cdn.example/x?sig=1").unwrap_err();
        assert!(
            matches!(&err, Failure::Protocol(m) if m.contains("plain http")),
            "{err:?}"
        );
        assert!(to("https", from, "ftp://cdn.example/x").is_err());
        assert!(to("https", from, "file:///etc/passwd").is_err());
        assert!(to("https", from, "https://u:p@cdn.example/x").is_err());
        let ok = to(
            "https",
            from,
            "https://cdn.example/x?X-Amz-Signature=a%2Fb&e=1#frag",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            ok.as_str(),
            "https://cdn.example/x?X-Amz-Signature=a%2Fb&e=1",
            "query intact, fragment dropped"
        );
    }

    #[test]
    fn plain_http_registries_may_redirect_to_http_and_relative_locations_resolve() {
        let from = "http://127.0.0.1:5000/v2/a/blobs/sha256:1";
        let ok = to("http", from, "http://127.0.0.1:6000/b?q=1").unwrap();
        assert_eq!(ok.unwrap().as_str(), "http://127.0.0.1:6000/b?q=1");
        let rel = to("http", from, "/storage/x?q=2").unwrap().unwrap();
        assert_eq!(rel.as_str(), "http://127.0.0.1:5000/storage/x?q=2");
        assert!(
            target(&Url::parse(from).unwrap(), None, "http")
                .unwrap()
                .is_none()
        );
    }
}

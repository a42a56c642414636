//! `trustgate resolve`: normalise references and resolve tags to digests.

use std::process::ExitCode;

use anyhow::Context;
use serde_json::json;
use trustgate::image::credentials::DockerConfig;
use trustgate::image::reference::ImageRef;
use trustgate::image::registry::{RegistryOptions, Resolver};

use super::{Output, RegistryFlags};

/// Loads the registry options and credentials named by the flags.
pub fn registry_setup(flags: &RegistryFlags) -> anyhow::Result<(RegistryOptions, DockerConfig)> {
    let ca_pem = match &flags.registry_ca {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?),
        None => None,
    };
    let config_path = flags.registry_config.clone().or_else(|| {
        let p = std::path::PathBuf::from(std::env::var_os("HOME")?).join(".docker/config.json");
        p.exists().then_some(p)
    });
    let config = match config_path {
        Some(p) => {
            let bytes = std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
            DockerConfig::parse(&bytes).with_context(|| format!("in {}", p.display()))?
        }
        None => DockerConfig::default(),
    };
    let options = RegistryOptions {
        ca_pem,
        plain_http: flags.plain_http,
        timeout: flags.registry_timeout,
    };
    Ok((options, config))
}

pub async fn run(
    images: &[String],
    flags: &RegistryFlags,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let refs = images
        .iter()
        .map(|s| ImageRef::parse(s).map_err(anyhow::Error::from))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (options, config) = registry_setup(flags)?;
    let resolver = Resolver::default();
    let lookups = refs.iter().map(|r| {
        let creds = config.credentials_for(r.domain());
        let resolver = &resolver;
        let options = &options;
        async move { resolver.resolve(r, options, &creds).await }
    });
    let results = futures::future::join_all(lookups).await;
    let mut failed = false;
    let mut rows = Vec::new();
    for ((input, r), res) in images.iter().zip(&refs).zip(results) {
        match res {
            Ok(d) => {
                if output == Output::Text {
                    println!("{d}  {}", r.normalized());
                }
                rows.push(json!({"image": input, "reference": r.normalized(), "repository": r.repository(), "digest": d.to_string(), "error": null}));
            }
            Err(e) => {
                failed = true;
                if output == Output::Text {
                    println!("ERROR  {}: {e}", r.normalized());
                }
                rows.push(json!({"image": input, "reference": r.normalized(), "repository": r.repository(), "digest": null, "error": e.to_string()}));
            }
        }
    }
    if output == Output::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "results": rows }))?
        );
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

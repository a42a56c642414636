//! Credentials of the standalone commands (`check`, `serve --policy-dir`, and the fallback of
//! `serve` in cluster mode): one docker config (`--registry-config`, default
//! `~/.docker/config.json`), matched per registry host, and one Notary login
//! (`--notary-user`/`--notary-password`, or `NOTARY_AUTH`) bound to the Notary servers named with
//! `--notary-auth-server`: a policy whose `notary.url` is another server gets no login.

use anyhow::Context;
use futures::future::BoxFuture;
use trustgate::admission::credentials::NotaryLogin;
use trustgate::decision::{CredentialSource, PolicyCredentials};
use trustgate::image::credentials::DockerConfig;
use trustgate::image::registry::RegistryOptions;
use trustgate::policy::Action;
use trustgate::policy::matcher::{LoadedPolicy, PolicySet};

use super::inspect::notary_credentials;
use super::resolve::registry_setup;
use super::{NotaryFlags, RegistryFlags};

/// Which Notary servers a login without `--notary-auth-server` is for.
pub enum Binding<'a> {
    /// None: a login needs `--notary-auth-server` (`serve`, whose policies change at run time).
    Required,
    /// The only Notary server of these policies (`check`); several are an error.
    OnlyServerOf(&'a PolicySet),
}

/// The docker config (per registry host) and the bound Notary login.
pub struct CliCredentials {
    docker: DockerConfig,
    notary: Option<NotaryLogin>,
}

impl CliCredentials {
    /// Reads the docker config and the Notary login the flags name; also returns the
    /// registry options of the flags.
    pub fn from_flags(
        registry: &RegistryFlags,
        notary: &NotaryFlags,
        binding: Binding<'_>,
    ) -> anyhow::Result<(RegistryOptions, CliCredentials)> {
        let (options, docker) = registry_setup(registry)?;
        let creds = CliCredentials {
            docker,
            notary: bound_login(notary, binding)?,
        };
        Ok((options, creds))
    }
}

/// The flags' Notary login bound to its servers (see [`Binding`]).
fn bound_login(flags: &NotaryFlags, binding: Binding<'_>) -> anyhow::Result<Option<NotaryLogin>> {
    let Some((user, password)) = notary_credentials(flags)? else {
        return Ok(None);
    };
    let mut servers = flags.notary_auth_servers.clone();
    servers.retain(|s| !s.trim().is_empty());
    if servers.is_empty() {
        match binding {
            Binding::Required => anyhow::bail!(
                "a Notary login (--notary-user or NOTARY_AUTH) needs --notary-auth-server URL \
                 (repeatable): the Notary server(s) it is for; it is never sent to any other server"
            ),
            Binding::OnlyServerOf(policies) => {
                let mut urls: Vec<String> = policies
                    .iter()
                    .filter(|p| p.action() == Action::Verify)
                    .filter_map(|p| p.spec.notary.as_ref()?.url.clone())
                    .collect();
                urls.sort();
                urls.dedup();
                if urls.len() > 1 {
                    anyhow::bail!(
                        "a Notary login (--notary-user or NOTARY_AUTH) is for one server, but the \
                         policies name {} Notary servers ({}): say which the login is for with \
                         --notary-auth-server URL",
                        urls.len(),
                        urls.join(", ")
                    );
                }
                servers = urls;
            }
        }
    }
    let login = NotaryLogin::new(user, password, &servers).context("--notary-auth-server")?;
    tracing::debug!(servers = ?login.servers(), "Notary login bound");
    Ok(Some(login))
}

impl CliCredentials {
    /// The Notary login for `policy`'s Notary server, if the login is bound to it.
    fn notary_for(&self, policy: &LoadedPolicy) -> Option<(String, String)> {
        let url = policy.spec.notary.as_ref()?.url.as_deref()?;
        self.notary.as_ref()?.for_url(url)
    }
}

impl CredentialSource for CliCredentials {
    fn credentials<'a>(
        &'a self,
        policy: &'a LoadedPolicy,
        registry: &'a str,
    ) -> BoxFuture<'a, Result<PolicyCredentials, String>> {
        Box::pin(futures::future::ready(Ok(PolicyCredentials {
            registry: self.docker.credentials_for(registry),
            notary: self.notary_for(policy),
        })))
    }
}

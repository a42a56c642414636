//! Credentials of the standalone commands (`check`, `serve --policy-dir`): one docker config
//! (`--registry-config`, default `~/.docker/config.json`) for every registry and one Notary login
//! (`--notary-user`/`--notary-password`, or `NOTARY_AUTH`) for every policy.

use trustgate::decision::CredentialSource;
use trustgate::image::credentials::{Credentials, DockerConfig};
use trustgate::image::registry::RegistryOptions;
use trustgate::policy::matcher::LoadedPolicy;

use super::inspect::notary_credentials;
use super::resolve::registry_setup;
use super::{NotaryFlags, RegistryFlags};

/// The same docker config and Notary login whatever the policy.
pub struct CliCredentials {
    docker: DockerConfig,
    notary: Option<(String, String)>,
}

impl CliCredentials {
    /// Reads the docker config and the Notary login the flags name; also returns the
    /// registry options of the flags.
    pub fn from_flags(
        registry: &RegistryFlags,
        notary: &NotaryFlags,
    ) -> anyhow::Result<(RegistryOptions, CliCredentials)> {
        let (options, docker) = registry_setup(registry)?;
        let creds = CliCredentials {
            docker,
            notary: notary_credentials(notary)?,
        };
        Ok((options, creds))
    }
}

impl CredentialSource for CliCredentials {
    fn registry(&self, _: &LoadedPolicy, registry: &str) -> Credentials {
        self.docker.credentials_for(registry)
    }
    fn notary(&self, _: &LoadedPolicy) -> Option<(String, String)> {
        self.notary.clone()
    }
}

//! The set-up of `formats_e2e`: images pushed to the stack's plain-HTTP registry and signed
//! there with the real tools (`notary` for Docker Content Trust, `notation`, `cosign`), and the
//! policy YAML files that `trustgate check` reads.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use crate::common::sigtools::{SigTools, Target};
use crate::common::{self, NotaryClient, Stack};

/// A signature format, as policies and `check --output json` name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Format {
    /// Docker Content Trust, signed with the notary CLI.
    NotaryV1,
    /// Notary Project signatures, signed with `notation`.
    Notation,
    /// Sigstore signatures, signed with `cosign` (bundle format unless said otherwise).
    Cosign,
}

impl Format {
    /// The name in policies and in `formats` of the JSON results.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::NotaryV1 => "NotaryV1",
            Format::Notation => "Notation",
            Format::Cosign => "Cosign",
        }
    }

    /// The format named `s`.
    pub fn parse(s: &str) -> Format {
        match s {
            "NotaryV1" => Format::NotaryV1,
            "Notation" => Format::Notation,
            "Cosign" => Format::Cosign,
            other => panic!("no format {other:?}"),
        }
    }
}

/// Subject of the test certificate `notation cert generate-test trustgate-test` makes.
pub const NOTATION_SUBJECT: &str = "C=US, ST=WA, L=Seattle, O=Notary, CN=trustgate-test";

/// The stack, the tools and the keys every image of a test is signed with.
pub struct Signing {
    /// The running stack.
    pub st: Stack,
    /// cosign, notation, crane.
    pub tools: SigTools,
    /// `cosign.{key,pub}` and the notation test certificate (see `e2e/sign_formats.sh`).
    pub keys: tempfile::TempDir,
    /// The notary CLI (one trust dir for every repository of the test).
    pub notary: NotaryClient,
    /// A directory for policy files.
    pub files: tempfile::TempDir,
}

impl Signing {
    /// Stack, tools and keys; `None` (after a `SKIP` line) when the stack or the tools are
    /// absent and not required.
    pub fn new() -> Option<Signing> {
        trustgate::tls::install_crypto_provider();
        let st = common::stack()?;
        let tools = crate::common::sigtools::sigtools()?;
        let keys = tempfile::Builder::new()
            .prefix("trustgate-formats-e2e-keys-")
            .tempdir()
            .expect("tempdir");
        tools.keys(keys.path());
        let notary = st.notary_client(&st.notary_url);
        let files = tempfile::Builder::new()
            .prefix("trustgate-formats-e2e-")
            .tempdir()
            .expect("tempdir");
        Some(Signing {
            st,
            tools,
            keys,
            notary,
            files,
        })
    }

    /// The notation signing certificate (PEM), for `notation.trustStore`.
    pub fn notation_cert(&self) -> String {
        notation_cert_of(self.keys.path())
    }

    /// The cosign public key (PEM), for `cosign.publicKeys`.
    pub fn cosign_pub(&self) -> String {
        std::fs::read_to_string(self.keys.path().join("cosign.pub")).expect("cosign.pub")
    }

    /// Pushes a fresh image (from `seed`) as `repo:tag`; returns it.
    pub fn push(&self, repo: &str, seed: &str, tag: &str) -> Pushed {
        let layout = common::push_http(&self.st, seed, repo, tag);
        Pushed {
            reference: format!("{}/{repo}:{tag}", self.st.registry_http),
            gun: format!("{}/{repo}", self.st.registry_http),
            digest: layout.manifest_digest.clone(),
            size: layout.manifest_size,
        }
    }

    /// Signs `image` with `format`: Docker Content Trust signs its tag in `targets` (a new
    /// trust repository) and returns the root key ID to pin; Notation signs a JWS envelope
    /// (`cose` for a COSE one); cosign a Sigstore bundle.
    pub fn sign(&self, image: &Pushed, format: Format, cose: bool) -> Option<String> {
        let k = self.keys.path();
        let target = Target {
            plain_http: true,
            ..Target::default()
        };
        match format {
            Format::NotaryV1 => {
                let tag = image.reference.rsplit_once(':').expect("tag").1;
                self.notary.sign(&image.gun, tag, &image.digest, image.size);
                return Some(self.notary.root_key_id(&image.gun));
            }
            Format::Notation => {
                let envelope = if cose { "cose" } else { "jws" };
                self.tools.notation(k, &image.pinned(), envelope, &target);
            }
            Format::Cosign => self.tools.cosign_bundle(k, &image.pinned(), None, &target),
        }
        None
    }

    /// The manifest `reference` (tag or digest) of `gun` as the plain-HTTP registry serves it.
    pub fn manifest(&self, gun: &str, reference: &str) -> serde_json::Value {
        let (host, repo) = gun.split_once('/').expect("registry/repository");
        let out = Command::new("curl")
            .args(["-sf", "--max-time", "10", "-H"])
            .arg(format!(
                "Accept: {},{}",
                common::OCI_MANIFEST,
                common::OCI_INDEX
            ))
            .arg(format!("http://{host}/v2/{repo}/manifests/{reference}"))
            .stdin(Stdio::null())
            .output()
            .expect("spawn curl");
        assert!(
            out.status.success(),
            "GET {gun}:{reference}: {}",
            out.status
        );
        serde_json::from_slice(&out.stdout).expect("manifest JSON")
    }

    /// Puts `manifest` (of `media_type`) into `gun` under `tag`, or under its digest when `tag`
    /// is `None`; returns (digest, size).
    pub fn put_manifest(
        &self,
        gun: &str,
        tag: Option<&str>,
        media_type: &str,
        manifest: &serde_json::Value,
    ) -> (String, u64) {
        let body = serde_json::to_vec(manifest).expect("manifest bytes");
        let digest = common::sha256_digest(&body);
        let (host, repo) = gun.split_once('/').expect("registry/repository");
        let reference = tag.unwrap_or(&digest);
        let file = self.files.path().join("manifest.json");
        std::fs::write(&file, &body).expect("write manifest");
        let out = Command::new("curl")
            .args(["-sf", "--max-time", "10", "-X", "PUT", "-H"])
            .arg(format!("Content-Type: {media_type}"))
            .arg("--data-binary")
            .arg(format!("@{}", file.display()))
            .arg(format!("http://{host}/v2/{repo}/manifests/{reference}"))
            .stdin(Stdio::null())
            .output()
            .expect("spawn curl");
        assert!(
            out.status.success(),
            "PUT {gun}:{reference}: {}",
            out.status
        );
        (digest, body.len() as u64)
    }

    /// Writes `text` as `name` under the policy directory `dir` (created); returns the file.
    pub fn write(&self, dir: &str, name: &str, text: &str) -> PathBuf {
        let dir = self.files.path().join(dir);
        std::fs::create_dir_all(&dir).expect("policy dir");
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write policy");
        path
    }
}

/// The test certificate of the notation key in `dir` (made by `SigTools::keys`).
pub fn notation_cert_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("notation/notation/localkeys/trustgate-test.crt"))
        .expect("notation test certificate")
}

/// The key ID trustgate reports for a cosign public key: `sha256:` and the hex SHA-256 of
/// the DER SubjectPublicKeyInfo.
pub fn cosign_key_id(pem: &str) -> String {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("PEM body");
    format!("sha256:{}", hex::encode(Sha256::digest(&der)))
}

/// An image pushed to the registry.
#[derive(Clone, Debug)]
pub struct Pushed {
    /// `registry/repo:tag`, what `check` is given.
    pub reference: String,
    /// `registry/repo` (the Notary GUN).
    pub gun: String,
    /// The manifest digest the registry serves.
    pub digest: String,
    /// The manifest's size.
    pub size: u64,
}

impl Pushed {
    /// `registry/repo@digest`, what the tools sign.
    pub fn pinned(&self) -> String {
        format!("{}@{}", self.gun, self.digest)
    }

    /// The referrers tag schema's tag of the digest (`sha256-<hex>`).
    pub fn referrers_tag(&self) -> String {
        self.digest.replace(':', "-")
    }
}

/// What a policy verifies with, besides its formats.
#[derive(Clone, Default)]
pub struct Blocks {
    /// NotaryV1: the Notary server URL, its CA (PEM) and the pinned root key IDs.
    pub notary: Option<(String, String, Vec<String>)>,
    /// `notation.trustStore`.
    pub trust_store: Vec<String>,
    /// `notation.trustedIdentities`.
    pub identities: Vec<String>,
    /// `cosign.publicKeys`.
    pub cosign_keys: Vec<String>,
    /// `revokedKeys` (PEMs).
    pub revoked: Vec<String>,
}

/// Appends `- |` literal blocks of `pems` at `indent`.
fn pem_list(out: &mut String, indent: usize, pems: &[String]) {
    let pad = " ".repeat(indent);
    for pem in pems {
        let _ = writeln!(out, "{pad}- |");
        for line in pem.lines() {
            let _ = writeln!(out, "{pad}  {line}");
        }
    }
}

/// The YAML of `ClusterTrustPolicy` `name` for `images` (patterns), evaluating `formats` as
/// `require` says, with the blocks those formats need.
pub fn policy_yaml(
    name: &str,
    images: &[String],
    formats: &[Format],
    require: &str,
    b: &Blocks,
) -> String {
    let mut y = String::new();
    let quoted: Vec<String> = images.iter().map(|i| format!("{i:?}")).collect();
    let names: Vec<&str> = formats.iter().map(|f| f.as_str()).collect();
    let _ = write!(
        y,
        "apiVersion: trustgate.dev/v1alpha1\nkind: ClusterTrustPolicy\nmetadata: {{name: {name}}}\n\
         spec:\n  images: [{}]\n  registry: {{plainHTTP: true}}\n  signatures: {{formats: [{}], require: {require}}}\n",
        quoted.join(", "),
        names.join(", ")
    );
    if formats.contains(&Format::NotaryV1) {
        let (url, ca, roots) = b.notary.as_ref().expect("NotaryV1 needs a notary block");
        let _ = writeln!(y, "  notary:\n    url: {url}\n    caBundle: |");
        for line in ca.lines() {
            let _ = writeln!(y, "      {line}");
        }
        y.push_str("  trustRoots:\n");
        for id in roots {
            let _ = writeln!(y, "  - keyID: {id:?}");
        }
    }
    if formats.contains(&Format::Notation) {
        y.push_str("  notation:\n    trustStore:\n");
        pem_list(&mut y, 4, &b.trust_store);
        let ids: Vec<String> = b.identities.iter().map(|i| format!("{i:?}")).collect();
        let _ = writeln!(y, "    trustedIdentities: [{}]", ids.join(", "));
    }
    if formats.contains(&Format::Cosign) {
        y.push_str("  cosign:\n    publicKeys:\n");
        pem_list(&mut y, 4, &b.cosign_keys);
    }
    if !b.revoked.is_empty() {
        y.push_str("  revokedKeys:\n");
        pem_list(&mut y, 2, &b.revoked);
    }
    y
}

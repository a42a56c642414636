//! Notary CLI scenarios: delegations with generated keys (plain public key or x509 certificate),
//! signing into roles, key rotations, and `notary list` parsed for comparison with trustgate's
//! verified view; a signed repository on the stack and the Verify policy YAML that pins it.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{NotaryClient, Stack};

/// One line of `notary list`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Listed {
    /// Target name (the tag).
    pub name: String,
    /// sha256 hex of the target.
    pub digest_hex: String,
    /// Size in bytes.
    pub size: u64,
    /// Role that signed it (`targets`, `targets/releases`, ...).
    pub role: String,
}

/// A delegation key made with openssl: private key file plus the public form handed to notary.
pub struct DelegationKey {
    /// Role, e.g. `targets/alice`.
    pub role: String,
    /// PKCS#8/SEC1 private key (unencrypted) for `notary key import`.
    pub key_file: PathBuf,
    /// What `delegation add` received: a certificate or a PUBLIC KEY PEM.
    pub public_file: PathBuf,
    /// The PEM text of `public_file`.
    pub public_pem: String,
    /// The plain PUBLIC KEY PEM of the key (also for certificate keys).
    pub spki_pem: String,
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("spawn openssl");
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Generates a P-256 key for `role` in `dir`; with `x509` the public part is a self-signed
/// certificate (notary stores it as `ecdsa-x509`), otherwise a PUBLIC KEY PEM (`ecdsa`).
pub fn delegation_key(dir: &Path, role: &str, x509: bool) -> DelegationKey {
    let base = role.replace('/', "_");
    let key_file = dir.join(format!("{base}.key"));
    let spki_file = dir.join(format!("{base}.pub"));
    let k = key_file.to_str().expect("utf8 path");
    openssl(&[
        "ecparam",
        "-genkey",
        "-name",
        "prime256v1",
        "-noout",
        "-out",
        k,
    ]);
    openssl(&[
        "ec",
        "-in",
        k,
        "-pubout",
        "-out",
        spki_file.to_str().expect("utf8"),
    ]);
    let public_file = if x509 {
        let crt = dir.join(format!("{base}.crt"));
        let cn = format!("/CN={base}");
        openssl(&[
            "req",
            "-new",
            "-x509",
            "-key",
            k,
            "-subj",
            &cn,
            "-days",
            "365",
            "-out",
            crt.to_str().expect("utf8"),
        ]);
        crt
    } else {
        spki_file.clone()
    };
    DelegationKey {
        role: role.to_string(),
        public_pem: std::fs::read_to_string(&public_file).expect("read public"),
        spki_pem: std::fs::read_to_string(&spki_file).expect("read spki"),
        key_file,
        public_file,
    }
}

impl NotaryClient {
    /// Adds `key` as the delegation `key.role` (all paths, or the given path prefixes), imports
    /// its private key so this client can sign into the role; staged until [`Self::publish`].
    pub fn add_delegation(&self, gun: &str, key: &DelegationKey, paths: Option<&[&str]>) {
        let public = key.public_file.to_str().expect("utf8");
        let mut args = vec!["delegation", "add", gun, key.role.as_str(), public];
        let joined;
        match paths {
            None => args.push("--all-paths"),
            Some(p) => {
                joined = p.join(",");
                args.push("--paths");
                args.push(&joined);
            }
        }
        self.run(&args);
        self.run(&[
            "key",
            "import",
            key.key_file.to_str().expect("utf8"),
            "--role",
            &key.role,
        ]);
    }

    /// `notary publish GUN`.
    pub fn publish(&self, gun: &str) {
        self.run(&["publish", gun]);
    }

    /// Signs `target` into `role` (`targets` or a delegation) and publishes.
    pub fn sign_into(&self, gun: &str, role: &str, target: &str, digest: &str, size: u64) {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        let size = size.to_string();
        let mut args = vec!["addhash", "-p", gun, target, size.as_str(), "--sha256", hex];
        if role != "targets" {
            args.push("--roles");
            args.push(role);
        }
        self.run(&args);
    }

    /// `notary key rotate GUN ROLE [-r]`; root rotation answers the yes/no prompt.
    pub fn rotate(&self, gun: &str, role: &str, server_managed: bool) {
        let mut cmd = self.command();
        cmd.args(["key", "rotate", gun, role]);
        if server_managed {
            cmd.arg("-r");
        }
        let mut child = cmd
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn notary");
        {
            use std::io::Write as _;
            let mut stdin = child.stdin.take().expect("stdin");
            let _ = stdin.write_all(b"yes\n");
        }
        let out = child.wait_with_output().expect("notary rotate");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && !text.to_lowercase().contains("abort"),
            "notary key rotate {gun} {role}: {text}"
        );
    }

    /// `notary list GUN [--roles ROLE]` parsed; an empty repository gives an empty list.
    pub fn list(&self, gun: &str, role: Option<&str>) -> Vec<Listed> {
        let mut args = vec!["list", gun];
        if let Some(r) = role {
            args.push("--roles");
            args.push(r);
        }
        let out = self.run(&args);
        let mut rows: Vec<Listed> = out
            .lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.len() != 4 || f[0] == "NAME" || f[0].starts_with("---") {
                    return None;
                }
                Some(Listed {
                    name: f[0].to_string(),
                    digest_hex: f[1].to_string(),
                    size: f[2].parse().ok()?,
                    role: f[3].to_string(),
                })
            })
            .collect();
        rows.sort();
        rows
    }

    /// The key IDs notary reports for the repository's root role (canonical IDs of the certs).
    pub fn key_list(&self) -> String {
        self.run(&["key", "list"])
    }
}

impl NotaryClient {
    /// The root key ID `init` published for `gun`, read from this client's trust dir.
    pub fn root_key_id(&self, gun: &str) -> String {
        let path = self
            .trust_dir
            .join("tuf")
            .join(gun)
            .join("metadata/root.json");
        let root: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read root.json"))
                .expect("root.json is JSON");
        root["signed"]["roles"]["root"]["keyids"][0]
            .as_str()
            .expect("root key id")
            .to_string()
    }
}

/// A repository on the stack's plain-HTTP registry whose `v1` is signed in `targets` on the TLS
/// Notary server (see [`signed_repo`]).
pub struct SignedRepo {
    /// The repository path inside the registry.
    pub repo: String,
    /// `<registry>/<repo>`.
    pub gun: String,
    /// The image pushed and signed as `v1`.
    pub signed: super::Layout,
    /// The repository's root key ID (to pin in `trustRoots`).
    pub root_id: String,
}

/// Pushes an image as `<unique repo>:v1` to the plain-HTTP registry and signs it on the TLS
/// Notary server; with `unsigned_v2`, another image as `v2`, never signed. `prefix` names the
/// repository (made unique) and seeds the images.
pub fn signed_repo(st: &Stack, prefix: &str, unsigned_v2: bool) -> SignedRepo {
    let repo = super::unique_repo(prefix);
    let gun = format!("{}/{repo}", st.registry_http);
    let signed = super::push_http(st, &format!("{prefix}-signed-{repo}"), &repo, "v1");
    if unsigned_v2 {
        super::push_http(st, &format!("{prefix}-unsigned-{repo}"), &repo, "v2");
    }
    let notary = st.notary_client(&st.notary_url);
    notary.sign(&gun, "v1", &signed.manifest_digest, signed.manifest_size);
    let root_id = notary.root_key_id(&gun);
    SignedRepo {
        repo,
        gun,
        signed,
        root_id,
    }
}

/// The YAML of a TrustPolicy `namespace/name` verifying `gun` against `notary_url` (with
/// `ca_pem` as `caBundle` if given), root pinned by key ID, registry over plain HTTP.
pub fn verify_policy_yaml(
    namespace: &str,
    name: &str,
    gun: &str,
    notary_url: &str,
    ca_pem: Option<&str>,
    root_id: &str,
) -> String {
    let ca_block = match ca_pem {
        Some(pem) => {
            let lines: String = pem.lines().map(|l| format!("      {l}\n")).collect();
            format!("    caBundle: |\n{lines}")
        }
        None => String::new(),
    };
    format!(
        r#"apiVersion: trustgate.dev/v1alpha1
kind: TrustPolicy
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  images: ["{gun}"]
  notary:
    url: {notary_url}
{ca_block}  registry: {{plainHTTP: true}}
  trustRoots:
  - keyID: "{root_id}"
"#
    )
}

/// [`verify_policy_yaml`] for `shop/<name>` against the stack's TLS Notary server and CA.
pub fn signed_only_policy(st: &Stack, name: &str, gun: &str, root_id: &str) -> String {
    let ca = std::fs::read_to_string(&st.ca).expect("read the stack CA");
    verify_policy_yaml("shop", name, gun, &st.notary_url, Some(&ca), root_id)
}

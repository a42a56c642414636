//! The real new-format signing tools for tests: `cosign` and `notation` (and `crane`), found as
//! `e2e/sigtools.sh` caches them, driven through `e2e/sign_formats.sh`.
//!
//! [`sigtools()`] returns `None` with a visible `SKIP` line when they are absent (fetch them
//! with `bash e2e/sigtools.sh fetch`); `TRUSTGATE_REQUIRE_SIGTOOLS=1` makes absence fatal.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where to sign: the registry and how to reach it.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// Plain-HTTP registry.
    pub plain_http: bool,
    /// PEM CA of a TLS registry.
    pub ca: Option<PathBuf>,
    /// Registry login.
    pub creds: Option<(String, String)>,
}

/// The tools' paths.
#[derive(Debug, Clone)]
pub struct SigTools {
    /// `cosign`.
    pub cosign: PathBuf,
    /// `notation`.
    pub notation: PathBuf,
    /// `crane` (copies artifacts between repositories in tests).
    pub crane: PathBuf,
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Finds the tools: `TRUSTGATE_COSIGN` / `TRUSTGATE_NOTATION` / `TRUSTGATE_CRANE`, else what
/// `bash e2e/sigtools.sh env` names (the cache); `None` with a `SKIP` line otherwise.
pub fn sigtools() -> Option<SigTools> {
    let mut vars: std::collections::HashMap<String, String> = ["COSIGN", "NOTATION", "CRANE"]
        .iter()
        .filter_map(|t| {
            let k = format!("TRUSTGATE_{t}");
            std::env::var(&k).ok().map(|v| (k, v))
        })
        .collect();
    if vars.len() < 3
        && let Ok(out) = Command::new("bash")
            .arg(repo_root().join("e2e/sigtools.sh"))
            .arg("env")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
        && out.status.success()
    {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some((k, v)) = line.trim_start_matches("export ").split_once('=') {
                vars.entry(k.to_string())
                    .or_insert_with(|| v.trim_matches('\'').to_string());
            }
        }
    }
    let get = |k: &str| vars.get(k).map(PathBuf::from).filter(|p| p.is_file());
    match (
        get("TRUSTGATE_COSIGN"),
        get("TRUSTGATE_NOTATION"),
        get("TRUSTGATE_CRANE"),
    ) {
        (Some(cosign), Some(notation), Some(crane)) => Some(SigTools {
            cosign,
            notation,
            crane,
        }),
        _ => {
            let why = "cosign/notation/crane not found (run `bash e2e/sigtools.sh fetch`)";
            if std::env::var("TRUSTGATE_REQUIRE_SIGTOOLS").is_ok_and(|v| v == "1") {
                panic!("signing tools required (TRUSTGATE_REQUIRE_SIGTOOLS=1): {why}");
            }
            let thread = std::thread::current();
            let _ = writeln!(
                std::io::stderr(),
                "SKIP {}: {why}; TRUSTGATE_REQUIRE_SIGTOOLS=1 makes this fatal",
                thread.name().unwrap_or("test")
            );
            None
        }
    }
}

impl SigTools {
    /// Runs `e2e/sign_formats.sh`'s function `func` with `args`; panics with the tool's output
    /// on failure.
    pub fn run(&self, func: &str, args: &[&str], target: &Target) {
        let script = repo_root().join("e2e/sign_formats.sh");
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg(format!("set -e; . {:?}; \"$@\"", script))
            .arg("sign_formats")
            .arg(func)
            .args(args)
            .env("TRUSTGATE_COSIGN", &self.cosign)
            .env("TRUSTGATE_NOTATION", &self.notation)
            .env(
                "SIGFMT_PLAIN_HTTP",
                if target.plain_http { "1" } else { "" },
            )
            .stdin(Stdio::null());
        if let Some(ca) = &target.ca {
            cmd.env("SIGFMT_CA", ca);
        }
        if let Some((u, p)) = &target.creds {
            cmd.env("SIGFMT_USER", u).env("SIGFMT_PASSWORD", p);
        }
        let out = cmd.output().expect("spawn bash");
        assert!(
            out.status.success(),
            "sign_formats {func} {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Keys in `dir`: `cosign.{key,pub}` and the notation test certificate.
    pub fn keys(&self, dir: &Path) {
        self.run(
            "sigfmt_keys",
            &[&dir.display().to_string()],
            &Target::default(),
        );
    }

    /// Another cosign key pair `dir/name.{key,pub}`; returns the public key PEM.
    pub fn cosign_key(&self, dir: &Path, name: &str) -> String {
        self.run(
            "sigfmt_cosign_key",
            &[&dir.display().to_string(), name],
            &Target::default(),
        );
        std::fs::read_to_string(dir.join(format!("{name}.pub"))).expect("read cosign public key")
    }

    /// A key of `alg` (`ed25519`, `rsa`, `p256`, `p384`, `p521`) made with openssl and imported
    /// into cosign as `dir/name.{key,pub}`; returns the public key PEM.
    pub fn cosign_import(&self, dir: &Path, name: &str, alg: &str) -> String {
        self.run(
            "sigfmt_cosign_import",
            &[&dir.display().to_string(), name, alg],
            &Target::default(),
        );
        std::fs::read_to_string(dir.join(format!("{name}.pub"))).expect("read cosign public key")
    }

    /// `cosign sign` (bundle format) of `reference` with `key` (default `dir/cosign.key`).
    pub fn cosign_bundle(&self, dir: &Path, reference: &str, key: Option<&Path>, t: &Target) {
        self.cosign("sigfmt_cosign_bundle", dir, reference, key, t);
    }

    /// `cosign sign --new-bundle-format=false` (legacy `.sig` tag) of `reference`.
    pub fn cosign_legacy(&self, dir: &Path, reference: &str, key: Option<&Path>, t: &Target) {
        self.cosign("sigfmt_cosign_legacy", dir, reference, key, t);
    }

    fn cosign(&self, func: &str, dir: &Path, reference: &str, key: Option<&Path>, t: &Target) {
        let dir = dir.display().to_string();
        let key = key.map(|k| k.display().to_string());
        let mut args = vec![dir.as_str(), reference];
        if let Some(k) = &key {
            args.push(k);
        }
        self.run(func, &args, t);
    }

    /// `notation sign --signature-format jws|cose` of `reference`.
    pub fn notation(&self, dir: &Path, reference: &str, format: &str, t: &Target) {
        self.run(
            "sigfmt_notation",
            &[&dir.display().to_string(), reference, format],
            t,
        );
    }

    /// `crane copy --insecure SRC DST` (plain-HTTP registries).
    pub fn crane_copy(&self, src: &str, dst: &str) {
        let out = Command::new(&self.crane)
            .args(["copy", "--insecure", src, dst])
            .stdin(Stdio::null())
            .output()
            .expect("spawn crane");
        assert!(
            out.status.success(),
            "crane copy {src} {dst}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

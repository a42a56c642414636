//! `trustgate inspect`: what a policy author needs to write a TrustPolicy for a repository.
//!
//! With `--notary-url`, the repository's Notary v1 trust data (verified, root trusted on first
//! use); always, the Notation and cosign signatures attached to the image's digest, listed but
//! not verified (`signatures`). A registry failure fails the command only without
//! `--notary-url`: with it, the Notary part decides the exit status as it always has.

mod signatures;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use base64::Engine;
use serde_json::{Value, json};
use trustgate::clock::SystemClock;
use trustgate::image::reference::ImageRef;
use trustgate::notary::fetch::{HttpSource, NotaryConfig};
use trustgate::notary::keys::PublicKey;
use trustgate::notary::updater::{TrustOptions, TrustRoot, Updater};
use trustgate::notary::view::{KeyInfo, RoleStatus, TrustData};

use super::{NotaryFlags, Output, RegistryFlags};

/// Notary credentials from the flags, else from `NOTARY_AUTH` (base64 of `user:pass`).
pub fn notary_credentials(flags: &NotaryFlags) -> anyhow::Result<Option<(String, String)>> {
    if let (Some(u), Some(p)) = (&flags.notary_user, &flags.notary_password) {
        return Ok(Some((u.clone(), p.clone())));
    }
    let Ok(auth) = std::env::var("NOTARY_AUTH") else {
        return Ok(None);
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .context("NOTARY_AUTH is not base64")?;
    let text = String::from_utf8(decoded).context("NOTARY_AUTH is not UTF-8")?;
    let (u, p) = text
        .split_once(':')
        .context("NOTARY_AUTH must be base64 of user:password")?;
    Ok(Some((u.to_string(), p.to_string())))
}

/// The `inspect` command line.
pub struct InspectArgs<'a> {
    /// `--notary-url`: also show the Notary v1 trust data.
    pub notary_url: Option<&'a str>,
    /// `--ca` of the Notary server.
    pub ca: Option<&'a Path>,
    /// `--gun`.
    pub gun: Option<String>,
    /// Text or JSON.
    pub output: Output,
    /// The image reference.
    pub image: &'a str,
}

/// Runs `inspect`: the Notary part when asked for, then the attached signatures; the exit
/// status is described in the module header.
pub async fn run(
    args: InspectArgs<'_>,
    notary: &NotaryFlags,
    registry: &RegistryFlags,
) -> anyhow::Result<ExitCode> {
    let image = ImageRef::parse(args.image)?;
    let trust = match args.notary_url {
        Some(url) => match notary_data(url, args.ca, args.gun, notary, &image).await? {
            Ok(data) => Some((url, data)),
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitCode::from(1));
            }
        },
        None => None,
    };
    let listing = signatures::list(&image, registry).await?;
    let tag = image.tag_or_latest();
    match args.output {
        Output::Json => {
            let mut doc = match &trust {
                Some((url, data)) => to_json(data, url, tag),
                None => json!({"image": image.normalized()}),
            };
            if let Some(obj) = doc.as_object_mut() {
                match &listing {
                    Ok(l) => obj.extend(l.json()),
                    Err(e) => {
                        obj.insert("signatures".into(), Value::Null);
                        obj.insert("signaturesError".into(), json!(e));
                    }
                }
            }
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        Output::Text => {
            if let Some((url, data)) = &trust {
                print_text(data, url, tag);
                println!();
            }
            match &listing {
                Ok(l) => print!("{}", l.text()),
                Err(e) => println!(
                    "signatures on {} ({}): not listed: {e}",
                    image.normalized(),
                    trustgate::signatures::listing::NOT_VERIFIED
                ),
            }
        }
    }
    let failed = match &listing {
        Ok(l) => !l.errors.is_empty(),
        Err(_) => true,
    };
    Ok(if failed && trust.is_none() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Loads the repository's trust data from the Notary server at `url` (root trusted on first
/// use). The outer error is a usage error (flags, CA file, login binding); the inner one the
/// server's or the data's.
async fn notary_data(
    url: &str,
    ca: Option<&Path>,
    gun: Option<String>,
    flags: &NotaryFlags,
    image: &ImageRef,
) -> anyhow::Result<Result<TrustData, String>> {
    let gun = gun.unwrap_or_else(|| image.repository());
    let ca_pem = match ca {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?),
        None => None,
    };
    let mut credentials = notary_credentials(flags)?;
    if let Some((user, password)) = credentials.take() {
        // inspect talks to one server; a login bound elsewhere is not sent to it.
        let servers = if flags.notary_auth_servers.is_empty() {
            vec![url.to_string()]
        } else {
            flags.notary_auth_servers.clone()
        };
        let login = trustgate::admission::credentials::NotaryLogin::new(user, password, &servers)
            .context("--notary-auth-server")?;
        credentials = login.for_url(url);
        if credentials.is_none() {
            anyhow::bail!(
                "the Notary login is bound to {} (--notary-auth-server), not to --notary-url {url}",
                login.servers().join(", ")
            );
        }
    }
    let source = HttpSource::new(NotaryConfig {
        url: url.to_string(),
        ca_pem,
        credentials,
        timeout: flags.notary_timeout,
    })?;
    let options = TrustOptions {
        trust_roots: vec![TrustRoot::TrustOnFirstUse],
        trust_root_threshold: 1,
        ..TrustOptions::default()
    };
    Ok(Updater::new(Arc::new(SystemClock))
        .load(&source, &gun, &options)
        .await
        .map_err(|e| e.to_string()))
}

fn ts(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

fn public_key_pem(key: &PublicKey) -> Option<String> {
    let der = key.spki_der()?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(chunk));
        pem.push('\n');
    }
    pem.push_str("-----END PUBLIC KEY-----\n");
    Some(pem)
}

fn key_json(k: &KeyInfo) -> Value {
    let cert = k.key.certificate();
    json!({
        "keyID": k.id,
        "canonicalID": k.key.canonical_id(),
        "keyType": k.key.key_type().to_string(),
        "commonName": cert.and_then(|c| c.common_name.clone()),
        "notAfter": cert.map(|c| ts(c.not_after)),
        "publicKey": public_key_pem(&k.key),
    })
}

fn status_text(s: &RoleStatus) -> String {
    match s {
        RoleStatus::Valid => "valid".into(),
        RoleStatus::Invalid(e) => format!("invalid: {e}"),
        RoleStatus::NotPublished => "not published".into(),
    }
}

fn to_json(data: &TrustData, url: &str, tag: Option<&str>) -> Value {
    let root = data.root();
    let base = |name: &str| {
        root.roles
            .get(name)
            .map(|r| json!({"threshold": r.threshold, "keyIDs": r.keyids}))
    };
    json!({
        "gun": data.gun(),
        "notaryURL": url,
        "root": {
            "version": root.version,
            "expires": ts(root.expires),
            "keys": root.root_keys.iter().map(key_json).collect::<Vec<_>>(),
            "signedBy": root.signed_by,
        },
        "roles": {"root": base("root"), "targets": base("targets"), "snapshot": base("snapshot"), "timestamp": base("timestamp")},
        "delegations": data.roles().iter().filter(|r| r.name != "targets").map(|r| json!({
            "name": r.name,
            "status": status_text(&r.status),
            "threshold": r.threshold,
            "paths": r.paths,
            "keys": r.keys.iter().map(key_json).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "tags": data.tags().iter().map(|t| json!({"tag": t.tag, "role": t.role, "digest": format!("sha256:{}", t.digest_hex), "length": t.length})).collect::<Vec<_>>(),
        "resolved": tag.and_then(|t| data.docker_lookup(t).map(|s| json!({"tag": t, "role": s.role, "digest": format!("sha256:{}", hex::encode(s.digest))}))),
    })
}

fn print_text(data: &TrustData, url: &str, tag: Option<&str>) {
    let root = data.root();
    println!(
        "repository {}  (notary {url}, root version {}, expires {})",
        data.gun(),
        root.version,
        ts(root.expires)
    );
    println!("\nroot keys (pin one in trustRoots, by keyID or publicKey):");
    for k in &root.root_keys {
        let cert = k.key.certificate();
        let cn = cert.and_then(|c| c.common_name.clone()).unwrap_or_default();
        let signed = if root.signed_by.contains(&k.id) {
            "signed"
        } else {
            "not signing"
        };
        println!("  keyID {}  {}  CN={cn}  {signed}", k.id, k.key.key_type());
        if let Some(c) = cert {
            println!("    certificate valid until {}", ts(c.not_after));
        }
        if let Some(pem) = public_key_pem(&k.key) {
            for line in pem.lines() {
                println!("    {line}");
            }
        }
    }
    println!("\nroles:");
    for name in ["root", "targets", "snapshot", "timestamp"] {
        if let Some(r) = root.roles.get(name) {
            println!(
                "  {name:<10} threshold {}  keys {}",
                r.threshold,
                r.keyids.join(", ")
            );
        }
    }
    let delegations: Vec<_> = data
        .roles()
        .iter()
        .filter(|r| r.name != "targets")
        .collect();
    if !delegations.is_empty() {
        println!("\ndelegations (signers are targets/<name>):");
        for r in delegations {
            let ids: Vec<&str> = r.keys.iter().map(|k| k.id.as_str()).collect();
            println!(
                "  {:<20} {}  threshold {}  paths {:?}  keys {}",
                r.name,
                status_text(&r.status),
                r.threshold,
                r.paths,
                ids.join(", ")
            );
        }
    }
    println!("\nsigned tags:");
    let tags = data.tags();
    if tags.is_empty() {
        println!("  (none)");
    }
    for t in &tags {
        println!(
            "  {:<20} sha256:{}  {:>8} bytes  {}",
            t.tag, t.digest_hex, t.length, t.role
        );
    }
    if let Some(tag) = tag {
        match data.docker_lookup(tag) {
            Some(s) => println!(
                "\n`docker trust` resolves {tag} to sha256:{} (from {})",
                hex::encode(s.digest),
                s.role
            ),
            None => println!("\n`docker trust` finds no signed digest for tag {tag}"),
        }
    }
}

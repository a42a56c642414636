//! TLS plumbing shared by every client and server: the process-wide rustls crypto provider
//! (aws-lc-rs), PEM bundle parsing for custom CAs, and the webhook's serving certificate
//! ([`ServingTls`]): from PEM files reloaded in place when their content changes (a mounted
//! Secret's `..data` symlink swap), or a self-signed CA and certificate generated at start-up.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use rustls::ServerConfig;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;

use crate::metrics::Metrics;

/// Errors from loading certificates (the PEM bundle errors of [`crate::pem`]).
pub use crate::pem::PemError as TlsError;
/// Parses every certificate in a PEM bundle (DER form); see [`crate::pem::parse_pem_bundle`].
pub use crate::pem::parse_pem_bundle;

/// Installs aws-lc-rs as the process-wide rustls provider. Safe to call more than once.
pub fn install_crypto_provider() {
    // Err means a provider is already installed, which is what we want.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

// ------------------------------------------------------------------ serving certificates

/// Errors from setting up the webhook's serving certificate.
#[derive(Debug, thiserror::Error)]
pub enum ServingTlsError {
    /// A certificate or key file could not be read.
    #[error("{}: cannot read: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error (in the message; not a `source`, so it is not printed twice).
        error: std::io::Error,
    },
    /// The certificate PEM holds no certificate or is not PEM.
    #[error("serving certificate: {0}")]
    Certificate(TlsError),
    /// The client CA bundle (`--client-ca`) holds no usable certificate.
    #[error("client CA: {0}")]
    ClientCa(TlsError),
    /// The key PEM holds no private key or is not PEM.
    #[error("serving key: {0}")]
    Key(String),
    /// rustls refused the pair (e.g. the key does not belong to the certificate).
    #[error("serving certificate and key: {0}")]
    Rustls(rustls::Error),
    /// Generating the self-signed certificate failed.
    #[error("generating the self-signed certificate: {0}")]
    Generate(rcgen::Error),
    /// The CA could not be written to `--ca-out`.
    #[error("{}: cannot write the CA certificate: {error}", path.display())]
    WriteCa {
        /// The file.
        path: PathBuf,
        /// The I/O error (in the message; not a `source`, so it is not printed twice).
        error: std::io::Error,
    },
}

/// Where the serving certificate comes from.
#[derive(Debug, Clone)]
pub enum ServingCert {
    /// PEM files (e.g. a mounted `kubernetes.io/tls` Secret), polled for changes.
    Files {
        /// Certificate chain PEM (leaf first).
        cert: PathBuf,
        /// Private key PEM (PKCS#8, PKCS#1 or SEC1).
        key: PathBuf,
        /// How often to compare the files' content hashes with the pair in use.
        reload_interval: Duration,
    },
    /// A CA and a serving certificate generated at start-up.
    SelfSigned {
        /// Subject alternative names besides `localhost` and `127.0.0.1` (service DNS names).
        sans: Vec<String>,
        /// Where to write the CA certificate PEM (for the webhook's `caBundle`).
        ca_out: Option<PathBuf>,
    },
}

/// A generated CA and the serving certificate it signed.
#[derive(Debug, Clone)]
pub struct SelfSigned {
    /// The CA certificate (PEM): what clients trust.
    pub ca_pem: String,
    /// The serving certificate (PEM).
    pub cert_pem: String,
    /// The serving certificate's private key (PKCS#8 PEM).
    pub key_pem: String,
}

/// Generates a P-256 CA and a serving certificate for `localhost`, `127.0.0.1` and `sans`,
/// valid from an hour ago for one year.
pub fn generate_self_signed(sans: &[String]) -> Result<SelfSigned, ServingTlsError> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let now = time::OffsetDateTime::now_utc();
    let not_before = now - time::Duration::hours(1);
    let not_after = now + time::Duration::days(365);

    let ca_key = KeyPair::generate().map_err(ServingTlsError::Generate)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(ServingTlsError::Generate)?;
    ca.distinguished_name
        .push(DnType::CommonName, "trustgate webhook CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = not_before;
    ca.not_after = not_after;
    let ca_cert = ca.self_signed(&ca_key).map_err(ServingTlsError::Generate)?;
    let issuer = Issuer::new(ca, ca_key);

    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    for san in sans {
        if !names.contains(san) {
            names.push(san.clone());
        }
    }
    let leaf_key = KeyPair::generate().map_err(ServingTlsError::Generate)?;
    let mut leaf = CertificateParams::new(names).map_err(ServingTlsError::Generate)?;
    leaf.distinguished_name
        .push(DnType::CommonName, "trustgate webhook");
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.not_before = not_before;
    leaf.not_after = not_after;
    let leaf_cert = leaf
        .signed_by(&leaf_key, &issuer)
        .map_err(ServingTlsError::Generate)?;
    Ok(SelfSigned {
        ca_pem: ca_cert.pem(),
        cert_pem: leaf_cert.pem(),
        key_pem: leaf_key.serialize_pem(),
    })
}

/// A rustls server configuration (aws-lc-rs, TLS 1.2 and 1.3, ALPN h2 and http/1.1) serving
/// the certificate chain and key of the given PEM texts.
pub fn server_config(cert_pem: &[u8], key_pem: &[u8]) -> Result<ServerConfig, ServingTlsError> {
    server_config_for_clients(cert_pem, key_pem, None)
}

/// [`server_config`], and with `client_ca_pem` mutual TLS: only clients presenting a
/// certificate issued by one of those CAs complete the handshake (the API server, configured
/// with a client certificate in its admission kubeconfig).
pub fn server_config_for_clients(
    cert_pem: &[u8],
    key_pem: &[u8],
    client_ca_pem: Option<&[u8]>,
) -> Result<ServerConfig, ServingTlsError> {
    let chain = parse_pem_bundle(cert_pem).map_err(ServingTlsError::Certificate)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            ServingTlsError::Key("no private key PEM block found".into())
        }
        other => ServingTlsError::Key(other.to_string()),
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(ServingTlsError::Rustls)?;
    let builder = match client_ca_pem {
        None => builder.with_no_client_auth(),
        Some(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for der in parse_pem_bundle(pem).map_err(ServingTlsError::ClientCa)? {
                roots
                    .add(der)
                    .map_err(|e| ServingTlsError::ClientCa(TlsError::BadPem(e.to_string())))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| ServingTlsError::ClientCa(TlsError::BadPem(e.to_string())))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(ServingTlsError::Rustls)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The webhook's TLS set-up: the config axum-server serves (swapped in place on reload), the
/// generated CA in self-signed mode, and the reload task (stopped on drop).
#[derive(Debug)]
pub struct ServingTls {
    /// The live configuration; new handshakes use the newest, open connections keep theirs.
    pub config: RustlsConfig,
    /// The CA PEM of a self-signed set-up.
    pub ca_pem: Option<String>,
    reloader: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for ServingTls {
    fn drop(&mut self) {
        if let Some(task) = self.reloader.take() {
            task.abort();
        }
    }
}

impl ServingTls {
    /// Loads or generates the serving certificate. With files, a task on the current tokio
    /// runtime polls them every `reload_interval` and swaps in a new pair when their content
    /// changed and the pair is valid; a bad pair is logged (once per content) and counted in
    /// `trustgate_tls_reload_errors_total`, and the previous one stays in use. In self-signed
    /// mode the CA is written to `ca_out` when given and logged.
    pub async fn start(
        source: &ServingCert,
        metrics: Arc<Metrics>,
    ) -> Result<ServingTls, ServingTlsError> {
        ServingTls::start_for_clients(source, None, metrics).await
    }

    /// [`ServingTls::start`] with mutual TLS when `client_ca` names a CA bundle file: only
    /// clients with a certificate from it are answered. With certificate files, the bundle is
    /// polled and reloaded with them.
    pub async fn start_for_clients(
        source: &ServingCert,
        client_ca: Option<&Path>,
        metrics: Arc<Metrics>,
    ) -> Result<ServingTls, ServingTlsError> {
        let ca_pem = match client_ca {
            Some(path) => Some(read_file(path).await?),
            None => None,
        };
        match source {
            ServingCert::Files {
                cert,
                key,
                reload_interval,
            } => {
                let (cert_pem, key_pem) = read_pair(cert, key).await?;
                let config = RustlsConfig::from_config(Arc::new(server_config_for_clients(
                    &cert_pem,
                    &key_pem,
                    ca_pem.as_deref(),
                )?));
                metrics.tls_reloads.inc();
                record_expiry(&metrics, &cert_pem);
                tracing::info!(cert = %cert.display(), key = %key.display(), "serving certificate loaded");
                let reloader = Reloader {
                    cert: cert.clone(),
                    key: key.clone(),
                    config: config.clone(),
                    client_ca: client_ca.map(Path::to_path_buf),
                    in_use: pair_hash(&cert_pem, &key_pem, ca_pem.as_deref()),
                    refused: None,
                    metrics,
                };
                let every = *reload_interval;
                let task = tokio::spawn(reloader.run(every));
                Ok(ServingTls {
                    config,
                    ca_pem: None,
                    reloader: Some(task),
                })
            }
            ServingCert::SelfSigned { sans, ca_out } => {
                let generated = generate_self_signed(sans)?;
                let config = RustlsConfig::from_config(Arc::new(server_config_for_clients(
                    generated.cert_pem.as_bytes(),
                    generated.key_pem.as_bytes(),
                    ca_pem.as_deref(),
                )?));
                record_expiry(&metrics, generated.cert_pem.as_bytes());
                if let Some(path) = ca_out {
                    tokio::fs::write(path, &generated.ca_pem)
                        .await
                        .map_err(|error| ServingTlsError::WriteCa {
                            path: path.clone(),
                            error,
                        })?;
                }
                tracing::info!(
                    ca_out = %ca_out.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
                    ca_pem = %generated.ca_pem,
                    "generated a self-signed serving certificate; clients must trust this CA"
                );
                Ok(ServingTls {
                    config,
                    ca_pem: Some(generated.ca_pem),
                    reloader: None,
                })
            }
        }
    }
}

async fn read_file(path: &Path) -> Result<Vec<u8>, ServingTlsError> {
    tokio::fs::read(path)
        .await
        .map_err(|error| ServingTlsError::Read {
            path: path.to_path_buf(),
            error,
        })
}

async fn read_pair(cert: &Path, key: &Path) -> Result<(Vec<u8>, Vec<u8>), ServingTlsError> {
    Ok((read_file(cert).await?, read_file(key).await?))
}

/// notAfter (Unix seconds) of the first certificate of a PEM chain: the serving certificate.
pub fn not_after_unix(cert_pem: &[u8]) -> Option<i64> {
    use x509_cert::der::Decode as _;
    let ders = parse_pem_bundle(cert_pem).ok()?;
    let cert = x509_cert::Certificate::from_der(ders.first()?.as_ref()).ok()?;
    let secs = cert
        .tbs_certificate()
        .validity()
        .not_after
        .to_unix_duration()
        .as_secs();
    i64::try_from(secs).ok()
}

/// Sets `trustgate_serving_certificate_expiry_timestamp_seconds` from the leaf (first)
/// certificate of `cert_pem`; a certificate that does not parse leaves the gauge as it was.
fn record_expiry(metrics: &Metrics, cert_pem: &[u8]) {
    if let Some(at) = not_after_unix(cert_pem) {
        #[allow(clippy::cast_precision_loss)]
        metrics.state.serving_certificate(at as f64);
    }
}

fn pair_hash(cert_pem: &[u8], key_pem: &[u8], client_ca: Option<&[u8]>) -> [u8; 32] {
    use sha2::{Digest as _, Sha256};
    let mut h = Sha256::new();
    h.update((cert_pem.len() as u64).to_le_bytes());
    h.update(cert_pem);
    h.update((key_pem.len() as u64).to_le_bytes());
    h.update(key_pem);
    if let Some(ca) = client_ca {
        h.update(ca);
    }
    h.finalize().into()
}

/// The polling reload task of file-based serving certificates.
struct Reloader {
    cert: PathBuf,
    key: PathBuf,
    /// The client CA bundle of mutual TLS, reloaded with the pair.
    client_ca: Option<PathBuf>,
    config: RustlsConfig,
    /// Content hash of the pair (and client CA) in use.
    in_use: [u8; 32],
    /// Content hash and error of the last refused pair (logged once).
    refused: Option<([u8; 32], String)>,
    metrics: Arc<Metrics>,
}

impl Reloader {
    async fn run(mut self, every: Duration) {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            self.check().await;
        }
    }

    async fn check(&mut self) {
        let (cert_pem, key_pem) = match read_pair(&self.cert, &self.key).await {
            Ok(pair) => pair,
            Err(e) => {
                // Mid-swap or removed: retried next tick; logged once per message.
                self.refuse([0; 32], e.to_string());
                return;
            }
        };
        let ca_pem = match &self.client_ca {
            Some(path) => match read_file(path).await {
                Ok(pem) => Some(pem),
                Err(e) => {
                    self.refuse([0; 32], e.to_string());
                    return;
                }
            },
            None => None,
        };
        let hash = pair_hash(&cert_pem, &key_pem, ca_pem.as_deref());
        if hash == self.in_use || self.refused.as_ref().is_some_and(|(h, _)| *h == hash) {
            return;
        }
        match server_config_for_clients(&cert_pem, &key_pem, ca_pem.as_deref()) {
            Ok(config) => {
                self.config.reload_from_config(Arc::new(config));
                self.in_use = hash;
                self.refused = None;
                self.metrics.tls_reloads.inc();
                record_expiry(&self.metrics, &cert_pem);
                tracing::info!(cert = %self.cert.display(), "serving certificate reloaded");
            }
            Err(e) => self.refuse(hash, e.to_string()),
        }
    }

    fn refuse(&mut self, hash: [u8; 32], why: String) {
        if self
            .refused
            .as_ref()
            .is_some_and(|(h, w)| *h == hash && *w == why)
        {
            return;
        }
        self.metrics.tls_reload_errors.inc();
        tracing::error!(
            cert = %self.cert.display(),
            key = %self.key.display(),
            error = %why,
            "new serving certificate refused; keeping the previous one"
        );
        self.refused = Some((hash, why));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The serving-certificate expiry gauge, in whole seconds.
    #[allow(clippy::cast_possible_truncation)]
    fn expiry(metrics: &Metrics) -> i64 {
        metrics.state.serving_certificate_expiry.get() as i64
    }

    #[test]
    fn self_signed_pair_builds_a_server_config() {
        install_crypto_provider();
        let s = generate_self_signed(&["trustgate.svc".into()]).unwrap();
        assert!(s.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let config = server_config(s.cert_pem.as_bytes(), s.key_pem.as_bytes()).unwrap();
        assert_eq!(config.alpn_protocols[0], b"h2");
    }

    #[tokio::test]
    async fn the_serving_certificate_expiry_is_published() {
        install_crypto_provider();
        let mut params = rcgen::CertificateParams::new(vec!["trustgate.svc".to_string()]).unwrap();
        params.not_after = rcgen::date_time_ymd(2030, 1, 1);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(not_after_unix(cert.pem().as_bytes()), Some(1_893_456_000));
        assert_eq!(not_after_unix(b"junk"), None);

        let dir = tempfile::tempdir().unwrap();
        let (crt, k) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
        std::fs::write(&crt, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        let metrics = Arc::new(Metrics::new());
        assert_eq!(expiry(&metrics), 0);
        let source = ServingCert::Files {
            cert: crt,
            key: k,
            reload_interval: Duration::from_secs(3600),
        };
        let _tls = ServingTls::start(&source, Arc::clone(&metrics))
            .await
            .unwrap();
        assert_eq!(expiry(&metrics), 1_893_456_000);

        let metrics = Arc::new(Metrics::new());
        let source = ServingCert::SelfSigned {
            sans: vec![],
            ca_out: None,
        };
        let _tls = ServingTls::start(&source, Arc::clone(&metrics))
            .await
            .unwrap();
        let now = i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        )
        .unwrap();
        assert!(expiry(&metrics) > now);
    }

    #[test]
    fn mismatched_or_missing_key_is_refused() {
        install_crypto_provider();
        let a = generate_self_signed(&[]).unwrap();
        let b = generate_self_signed(&[]).unwrap();
        let err = server_config(a.cert_pem.as_bytes(), b.key_pem.as_bytes()).unwrap_err();
        assert!(matches!(err, ServingTlsError::Rustls(_)), "{err}");
        let err = server_config(a.cert_pem.as_bytes(), b"").unwrap_err();
        assert!(matches!(err, ServingTlsError::Key(_)), "{err}");
        let err = server_config(b"junk", a.key_pem.as_bytes()).unwrap_err();
        assert!(matches!(err, ServingTlsError::Certificate(_)), "{err}");
    }

    #[tokio::test]
    async fn files_are_reloaded_and_bad_pairs_kept_out() {
        install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
        let a = generate_self_signed(&[]).unwrap();
        std::fs::write(&cert, &a.cert_pem).unwrap();
        std::fs::write(&key, &a.key_pem).unwrap();
        let metrics = Arc::new(Metrics::new());
        let source = ServingCert::Files {
            cert: cert.clone(),
            key: key.clone(),
            reload_interval: Duration::from_secs(3600),
        };
        let tls = ServingTls::start(&source, Arc::clone(&metrics))
            .await
            .unwrap();
        let first = tls.config.get_inner();
        let mut reloader = Reloader {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: None,
            config: tls.config.clone(),
            in_use: pair_hash(a.cert_pem.as_bytes(), a.key_pem.as_bytes(), None),
            refused: None,
            metrics: Arc::clone(&metrics),
        };
        // Half-written swap: new cert, old key -> refused, old config kept, counted once.
        let b = generate_self_signed(&[]).unwrap();
        std::fs::write(&cert, &b.cert_pem).unwrap();
        reloader.check().await;
        reloader.check().await;
        assert!(Arc::ptr_eq(&first, &tls.config.get_inner()));
        assert_eq!(metrics.tls_reload_errors.get(), 1);
        // Complete pair -> swapped.
        std::fs::write(&key, &b.key_pem).unwrap();
        reloader.check().await;
        assert!(!Arc::ptr_eq(&first, &tls.config.get_inner()));
        assert_eq!(metrics.tls_reloads.get(), 2);
        assert_eq!(
            Some(expiry(&metrics)),
            not_after_unix(b.cert_pem.as_bytes())
        );
    }

    #[tokio::test]
    async fn client_ca_is_required_valid_and_reloaded_with_the_pair() {
        install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let (cert, key, ca) = (
            dir.path().join("tls.crt"),
            dir.path().join("tls.key"),
            dir.path().join("client-ca.pem"),
        );
        let a = generate_self_signed(&[]).unwrap();
        std::fs::write(&cert, &a.cert_pem).unwrap();
        std::fs::write(&key, &a.key_pem).unwrap();
        std::fs::write(&ca, "not a certificate").unwrap();
        let err = server_config_for_clients(
            a.cert_pem.as_bytes(),
            a.key_pem.as_bytes(),
            Some(b"not a certificate"),
        )
        .unwrap_err();
        assert!(matches!(err, ServingTlsError::ClientCa(_)), "{err}");

        let first = generate_self_signed(&[]).unwrap();
        std::fs::write(&ca, &first.ca_pem).unwrap();
        let metrics = Arc::new(Metrics::new());
        let source = ServingCert::Files {
            cert: cert.clone(),
            key: key.clone(),
            reload_interval: Duration::from_millis(50),
        };
        let _tls = ServingTls::start_for_clients(&source, Some(&ca), Arc::clone(&metrics))
            .await
            .unwrap();
        assert_eq!(metrics.tls_reloads.get(), 1);
        let second = generate_self_signed(&[]).unwrap();
        std::fs::write(&ca, &second.ca_pem).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while metrics.tls_reloads.get() < 2 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(metrics.tls_reloads.get(), 2, "a new client CA is picked up");
    }
}

//! TLS: rustls (aws-lc-rs provider), TLS 1.2 and 1.3 only, ALPN h2 + http/1.1, and a certificate
//! that can be swapped at run time (SIGHUP) without dropping connections: new handshakes pick up
//! the new key, established connections keep theirs.

use std::path::Path;
use std::sync::{Arc, RwLock};

use anyhow::{bail, Context};
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The current certificate and key, replaceable while the server runs.
#[derive(Debug)]
pub struct ReloadableCert {
    current: RwLock<Arc<CertifiedKey>>,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Read and check a PEM chain and key. Errors name the file and what is wrong with it.
pub fn load_certified_key(cert: &Path, key: &Path) -> anyhow::Result<CertifiedKey> {
    let cert_pem = std::fs::read(cert)
        .with_context(|| format!("cannot read TLS certificate {}", cert.display()))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("TLS certificate {} is not valid PEM: {e}", cert.display()))?;
    if chain.is_empty() {
        bail!(
            "TLS certificate {} contains no CERTIFICATE block",
            cert.display()
        );
    }
    let key_pem = std::fs::read(key)
        .with_context(|| format!("cannot read TLS private key {}", key.display()))?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        anyhow::anyhow!(
            "TLS private key {} is not a valid PEM private key: {e}",
            key.display()
        )
    })?;
    let signing = provider()
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| anyhow::anyhow!("TLS private key {} is not usable: {e}", key.display()))?;
    let ck = CertifiedKey::new(chain, signing);
    ck.keys_match().map_err(|e| {
        anyhow::anyhow!(
            "TLS private key {} does not match certificate {}: {e}",
            key.display(),
            cert.display()
        )
    })?;
    Ok(ck)
}

impl ReloadableCert {
    pub fn load(cert: &Path, key: &Path) -> anyhow::Result<Arc<ReloadableCert>> {
        Ok(Arc::new(ReloadableCert {
            current: RwLock::new(Arc::new(load_certified_key(cert, key)?)),
        }))
    }

    /// Replace the certificate; on any error the old one stays in use.
    pub fn reload(&self, cert: &Path, key: &Path) -> anyhow::Result<()> {
        let new = Arc::new(load_certified_key(cert, key)?);
        match self.current.write() {
            Ok(mut cur) => *cur = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
        Ok(())
    }
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| c.clone())
    }
}

pub fn server_config(cert: Arc<ReloadableCert>) -> anyhow::Result<Arc<ServerConfig>> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS configuration")?
        .with_no_client_auth()
        .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A self-signed certificate for `localhost` (dev mode), written once into `dir`.
pub fn ensure_self_signed(cert: &Path, key: &Path) -> anyhow::Result<()> {
    if cert.exists() && key.exists() {
        return Ok(());
    }
    if let Some(dir) = cert.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let ck = rcgen::generate_simple_self_signed(vec![
        "localhost".into(),
        "127.0.0.1".into(),
        "::1".into(),
    ])
    .context("cannot generate a self-signed certificate")?;
    std::fs::write(cert, ck.cert.pem())?;
    crate::fsutil::write_private(key, ck.signing_key.serialize_pem().as_bytes())?;
    Ok(())
}

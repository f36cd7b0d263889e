//! TLS for client connections (rustls through pgwire): `sslmode=require` and stricter work.
//!
//! `weft serve --tls-cert server.crt --tls-key server.key` serves the given PEM certificate
//! chain and key. Without them the server makes a self-signed certificate for `localhost`
//! and its listen address at start, so that encryption is on by default (clients that verify
//! the server, `sslmode=verify-full`, need a real certificate); `--no-tls` turns TLS off.

use std::path::Path;
use std::sync::Arc;

use pgwire::tokio::tokio_rustls::rustls;
pub use pgwire::tokio::TlsAcceptor;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

fn config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<TlsAcceptor, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS protocol versions: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("TLS certificate and key do not make a valid pair: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(cfg)))
}

/// The acceptor for a PEM certificate chain and private key.
pub fn from_files(cert: &Path, key: &Path) -> Result<TlsAcceptor, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("cannot read TLS certificate {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("bad TLS certificate {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("no certificate in {}", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read TLS private key {}: {e}", key.display()))?;
    config(certs, key)
}

/// An acceptor with a fresh self-signed certificate for these names.
pub fn self_signed(names: Vec<String>) -> Result<TlsAcceptor, String> {
    let cert = rcgen::generate_simple_self_signed(names)
        .map_err(|e| format!("cannot make a self-signed certificate: {e}"))?;
    let der = CertificateDer::from(cert.cert.der().to_vec());
    let key = PrivateKeyDer::try_from(cert.signing_key.serialize_der())
        .map_err(|e| format!("self-signed key: {e}"))?;
    config(vec![der], key)
}

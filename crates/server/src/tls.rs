//! The rustls server configuration the listeners this crate serves TLS on share (the
//! metrics endpoint, the Kafka listener), from the same PEM files the gRPC listener takes.
//! With a client CA, a client may present a certificate it signed (optional, as on gRPC).

use std::sync::Arc;

use tokio_rustls::rustls::RootCertStore;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tributary_api::TlsFiles;

/// What was wrong with the files: the part at fault and why.
pub(crate) type Fault = (&'static str, String);

pub(crate) fn server_config(files: &TlsFiles) -> Result<ServerConfig, Fault> {
    let bad = |what: &'static str, e: &dyn std::fmt::Display| (what, e.to_string());
    let certs = CertificateDer::pem_slice_iter(&files.cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad("certificate chain", &e))?;
    if certs.is_empty() {
        return Err(bad("certificate chain", &"no certificate in the PEM file"));
    }
    let key = PrivateKeyDer::from_pem_slice(&files.key).map_err(|e| bad("private key", &e))?;
    let provider = Arc::new(ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("protocol versions", &e))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(ca) {
                let cert = cert.map_err(|e| bad("client CA", &e))?;
                roots.add(cert).map_err(|e| bad("client CA", &e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| bad("client CA", &e))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    builder
        .with_single_cert(certs, key)
        .map_err(|e| bad("certificate and key", &e))
}

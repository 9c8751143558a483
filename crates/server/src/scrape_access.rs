//! Who may scrape the metrics endpoint: the bearer token a scrape must send (from a file,
//! as Prometheus' `authorization: {credentials_file: ...}` sends it) and the endpoint's TLS.
//! `metrics.rs` serves; this module only says yes or no and wraps connections.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use subtle::ConstantTimeEq;
use tokio_rustls::TlsAcceptor;
use tributary_api::TlsFiles;

use crate::{Error, Result};

/// A scrape's answer from the access check.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Allowed,
    /// No or a wrong token: 401 with `WWW-Authenticate: Bearer`.
    Refused,
}

/// Reads the token from `path` (surrounding whitespace, such as a final newline, is not
/// part of it); an empty file is an error, so that it never admits an empty token.
pub(crate) async fn read_token(path: &Path) -> std::io::Result<String> {
    let text = tokio::fs::read_to_string(path).await?;
    let token = text.trim();
    if token.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} is empty", path.display()),
        ));
    }
    Ok(token.to_owned())
}

/// Checks a request head against the token file, read anew at each scrape so that a
/// rotated Secret takes effect without a restart. `None`: no token is asked for.
pub(crate) async fn check(token_file: Option<&PathBuf>, head: &str) -> Verdict {
    let Some(path) = token_file else {
        return Verdict::Allowed;
    };
    let expected = match read_token(path).await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "metrics endpoint: token file unreadable; refusing scrapes");
            return Verdict::Refused;
        }
    };
    match bearer(head) {
        Some(sent) if bool::from(sent.as_bytes().ct_eq(expected.as_bytes())) => Verdict::Allowed,
        _ => Verdict::Refused,
    }
}

/// The token of an `Authorization: Bearer TOKEN` header (names and scheme in any case).
fn bearer(head: &str) -> Option<&str> {
    head.split("\r\n").skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        if !name.trim().eq_ignore_ascii_case("authorization") {
            return None;
        }
        let (scheme, token) = value.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    })
}

/// The endpoint's TLS acceptor, from the same PEM files the gRPC listener takes.
pub(crate) fn tls_acceptor(files: &TlsFiles) -> Result<TlsAcceptor> {
    if files.client_ca.is_some() {
        return Err(Error::MetricsTls {
            what: "client certificates",
            message: "the metrics endpoint takes a bearer token, not client certificates".into(),
        });
    }
    let config = crate::tls::server_config(files)
        .map_err(|(what, message)| Error::MetricsTls { what, message })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_token_is_found_in_any_case() {
        let head = "GET /metrics HTTP/1.1\r\nHost: x\r\nauthorization: bearer  s3cret \r\n\r\n";
        assert_eq!(bearer(head), Some("s3cret"));
        assert_eq!(
            bearer("GET / HTTP/1.1\r\nAuthorization: Basic eA==\r\n\r\n"),
            None
        );
        assert_eq!(bearer("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), None);
        // The request line is not a header.
        assert_eq!(bearer("Authorization: Bearer x\r\n\r\n"), None);
    }

    #[tokio::test]
    async fn only_the_files_token_passes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret\n").unwrap();
        let head = |t: &str| format!("GET /metrics HTTP/1.1\r\nAuthorization: Bearer {t}\r\n\r\n");
        assert_eq!(check(Some(&path), &head("s3cret")).await, Verdict::Allowed);
        assert_eq!(check(Some(&path), &head("s3cre")).await, Verdict::Refused);
        assert_eq!(
            check(Some(&path), "GET /metrics HTTP/1.1\r\n\r\n").await,
            Verdict::Refused
        );
        assert_eq!(
            check(None, "GET /metrics HTTP/1.1\r\n\r\n").await,
            Verdict::Allowed
        );
        // Rotated in place: the next scrape reads the new one; an empty file admits nobody.
        std::fs::write(&path, "n3w").unwrap();
        assert_eq!(check(Some(&path), &head("s3cret")).await, Verdict::Refused);
        assert_eq!(check(Some(&path), &head("n3w")).await, Verdict::Allowed);
        std::fs::write(&path, "\n").unwrap();
        assert_eq!(check(Some(&path), &head("")).await, Verdict::Refused);
    }
}

//! A test PKI made with rcgen: a CA, a server certificate for `localhost` and 127.0.0.1,
//! client certificates whose subject CN names a user, and one signed by another CA. The
//! gRPC TLS tests and the Kafka clients' SSL tests share it.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

/// PEM files in a temporary directory, removed when dropped: each pair is (certificate, key).
pub struct Pki {
    _dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub server: (PathBuf, PathBuf),
    /// CN `alice`.
    pub alice: (PathBuf, PathBuf),
    /// CN `stranger`, a user that does not exist.
    pub stranger: (PathBuf, PathBuf),
    /// CN `admin`, signed by another CA.
    pub rogue_admin: (PathBuf, PathBuf),
}

fn write(dir: &Path, name: &str, pem: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, pem).unwrap();
    p
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn leaf(
    dir: &Path,
    name: &str,
    sans: &[&str],
    cn: &str,
    issuer: &CertifiedIssuer<'_, KeyPair>,
) -> (PathBuf, PathBuf) {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    let cert = params.signed_by(&key, issuer).unwrap();
    (
        write(dir, &format!("{name}.crt"), &cert.pem()),
        write(dir, &format!("{name}.key"), &key.serialize_pem()),
    )
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let rogue = ca("Someone else's CA");
        let ca = ca("Tributary test CA");
        Pki {
            ca: write(dir.path(), "ca.crt", &ca.pem()),
            server: leaf(
                dir.path(),
                "server",
                &["localhost", "127.0.0.1"],
                "tributary",
                &ca,
            ),
            alice: leaf(dir.path(), "alice", &[], "alice", &ca),
            stranger: leaf(dir.path(), "stranger", &[], "stranger", &ca),
            rogue_admin: leaf(dir.path(), "rogue", &[], "admin", &rogue),
            _dir: dir,
        }
    }

    /// `serve` flags for TLS with the server certificate, and with client certificates
    /// this CA signed when `mutual`.
    pub fn serve_args(&self, mutual: bool) -> Vec<&str> {
        let mut args = vec![
            "--tls-cert",
            self.server.0.to_str().unwrap(),
            "--tls-key",
            self.server.1.to_str().unwrap(),
        ];
        if mutual {
            args.extend(["--tls-client-ca", self.ca.to_str().unwrap()]);
        }
        args
    }
}

impl Default for Pki {
    fn default() -> Self {
        Pki::new()
    }
}

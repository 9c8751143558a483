//! TLS and mutual TLS on the real server: a test PKI (made with rcgen) signs a server
//! certificate and client certificates; a verified client certificate's subject CN names
//! the user, a certificate from another CA is refused at the handshake. The Python client
//! (`clients/python`) is tried with the same PKI.

use std::path::{Path, PathBuf};

use tonic::Code;
use tributary_client::{Client, ConnectOptions};
use tributary_e2e::{Pki, Server};
use tributary_proto::v1;

fn pki() -> Pki {
    Pki::new()
}

fn start(pki: &Pki, mutual: bool) -> Server {
    Server::builder().args(&pki.serve_args(mutual)).start()
}

async fn connect(
    server: &Server,
    ca: Option<&Path>,
    token: Option<String>,
    id: Option<&(PathBuf, PathBuf)>,
) -> tributary_client::Result<Client> {
    let options = ConnectOptions {
        token,
        ca_cert: ca.map(|p| std::fs::read(p).unwrap()),
        identity: id.map(|(c, k)| (std::fs::read(c).unwrap(), std::fs::read(k).unwrap())),
    };
    Client::connect_with(&server.url, &options).await
}

async fn whoami(c: &Client) -> Result<String, tonic::Status> {
    Ok(c.admin()
        .who_am_i(v1::WhoAmIRequest {})
        .await?
        .into_inner()
        .name)
}

#[tokio::test]
async fn tls_serves_token_holders_and_refuses_plaintext_and_unknown_issuers() {
    let pki = pki();
    let server = start(&pki, false);
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let admin = connect(&server, Some(&pki.ca), Some(server.admin_token()), None)
        .await
        .unwrap();
    assert_eq!(whoami(&admin).await.unwrap(), "admin");
    tributary_e2e::create_stream(&admin, "/tls/s", Default::default()).await;
    admin
        .produce("/tls/s:t", None, vec![tributary_client::unkeyed("secret")])
        .await
        .unwrap();

    // The CLI with --ca-cert and an https:// URL.
    let out = server
        .cli()
        .args(["--ca-cert", pki.ca.to_str().unwrap(), "stream", "list"])
        .run()
        .ok();
    assert!(out.stdout.contains("/tls/s"), "{}", out.stdout);
    // Without the CA the server's certificate is not trusted.
    let out = server.cli().args(["stream", "list"]).run().failed();
    assert!(out.stderr.contains("cannot connect"), "{}", out.stderr);
    // Plaintext to a TLS port does not get through.
    let plain = server.url.replace("https://", "http://");
    let refused = match Client::connect(&plain, Some(&server.admin_token())).await {
        Err(_) => true,
        Ok(c) => c.list_offsets("/tls/s:t", &[], true).await.is_err(),
    };
    assert!(refused, "plaintext must not be served");
}

#[tokio::test]
async fn mutual_tls_maps_the_certificate_cn_to_a_user() {
    let pki = pki();
    let server = start(&pki, true);
    let admin = connect(&server, Some(&pki.ca), Some(server.admin_token()), None)
        .await
        .unwrap();
    admin
        .admin()
        .create_user(v1::CreateUserRequest {
            name: "alice".into(),
            ..Default::default()
        })
        .await
        .unwrap();

    // alice's certificate, no token: the server knows her by the CN.
    let alice = connect(&server, Some(&pki.ca), None, Some(&pki.alice))
        .await
        .unwrap();
    assert_eq!(whoami(&alice).await.unwrap(), "alice");
    let out = server
        .cli_as(None)
        .args([
            "--ca-cert",
            pki.ca.to_str().unwrap(),
            "user",
            "whoami",
            "--json",
        ])
        .args([
            "--client-cert",
            pki.alice.0.to_str().unwrap(),
            "--client-key",
            pki.alice.1.to_str().unwrap(),
        ])
        .run()
        .ok();
    assert!(out.stdout.contains("\"alice\""), "{}", out.stdout);
    // The Python client: a token over TLS, alice's certificate, and an untrusted server.
    let out = tributary_e2e::PythonClient::install()
        .script("tls.py")
        .args([&server.url, pki.ca.to_str().unwrap(), &server.admin_token()])
        .args([&pki.alice.0, &pki.alice.1])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout,
        "TOKEN admin\nCERT alice\nHOSTPORT admin\nUNTRUSTED UNAVAILABLE\n"
    );

    // A valid certificate for a user that does not exist: UNAUTHENTICATED.
    let stranger = connect(&server, Some(&pki.ca), None, Some(&pki.stranger))
        .await
        .unwrap();
    assert_eq!(
        whoami(&stranger).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    // No certificate and no token: UNAUTHENTICATED.
    let nobody = connect(&server, Some(&pki.ca), None, None).await.unwrap();
    assert_eq!(
        whoami(&nobody).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    // A certificate from another CA claiming to be admin never gets a call through.
    let rogue = match connect(&server, Some(&pki.ca), None, Some(&pki.rogue_admin)).await {
        Err(_) => true,
        Ok(c) => whoami(&c).await.is_err(),
    };
    assert!(rogue, "a certificate from an unknown CA must be refused");
}

/// A replica link to an `https://` upstream: verified with `--from-ca-cert`, the token read
/// from `--from-token-file`; without the CA the link reports the failed verification.
#[tokio::test(flavor = "multi_thread")]
async fn a_replica_link_pulls_over_tls_with_a_token_file() {
    let pki = pki();
    let up = start(&pki, false);
    let token = up.admin_token();
    let source = connect(&up, Some(&pki.ca), Some(token.clone()), None)
        .await
        .unwrap();
    let down = Server::start();
    let dest = down.client().await;
    for c in [&source, &dest] {
        tributary_e2e::create_stream(c, "/geo/s", v1::StreamAttributes::default()).await;
    }
    let token_file = down.data_dir.join("upstream.token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let from = format!("{}/geo/s", up.url);
    // Without the CA, the upstream's certificate is not trusted.
    down.cli()
        .args(["upstream", "add", "/geo/s", "--from", &from])
        .args(["--from-token-file", token_file.to_str().unwrap()])
        .run()
        .ok();
    let list = |c: Client| async move {
        c.replication()
            .list_upstreams(v1::ListUpstreamsRequest {
                stream: "/geo/s".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .upstreams
            .pop()
            .unwrap()
    };
    tributary_e2e::wait_until("the untrusted upstream is reported", LONG, || async {
        (!list(dest.clone()).await.last_error.is_empty()).then_some(())
    })
    .await;
    down.cli().args(["upstream", "remove", "/geo/s"]).run().ok();
    down.cli()
        .args(["upstream", "add", "/geo/s", "--from", &from])
        .args(["--from-token-file", token_file.to_str().unwrap()])
        .args(["--from-ca-cert", pki.ca.to_str().unwrap()])
        .run()
        .ok();
    source
        .produce(
            "/geo/s:t",
            None,
            vec![tributary_client::record("k", "over tls")],
        )
        .await
        .unwrap();
    tributary_e2e::wait_until("the record crosses the TLS link", LONG, || async {
        let u = list(dest.clone()).await;
        (u.records_applied == 1).then_some(())
    })
    .await;
    let got = dest
        .fetch("/geo/s:t", 0, 0, 1 << 20, std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        got.records[0].record.value.as_deref(),
        Some(&b"over tls"[..])
    );
}

const LONG: std::time::Duration = std::time::Duration::from_secs(60);

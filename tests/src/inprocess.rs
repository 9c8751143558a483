//! A server inside the test's own tokio runtime: `tributary_server::start`, as `tributary
//! serve` and `bench --embedded` run it, on `127.0.0.1:0` and a temporary data directory.
//! For tests that need no process of their own (no `kill -9`, no signal, no reading of the
//! server's log): it starts without spawning a binary, and the CLI still reaches it by URL.
//!
//! The runtime must be the multi-thread one (`#[tokio::test(flavor = "multi_thread")]`):
//! the server's tasks go on while the test blocks on a CLI run, and dropping the server
//! waits for its clean close (`block_in_place`).

use std::path::PathBuf;

use tempfile::TempDir;
use tokio::runtime::{Handle, RuntimeFlavor};
use tributary_server::{Config, Running};

use crate::{Cli, Client};

/// A server running in this process. Stopped cleanly by [`InProcess::stop`] or when dropped.
pub struct InProcess {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    pub data_dir: PathBuf,
    token: String,
    running: Option<Running>,
    _tmp: TempDir,
}

impl InProcess {
    /// Starts a server with the defaults of `tributary serve`.
    pub async fn start() -> InProcess {
        Self::start_with(|_| {}).await
    }

    /// Starts a server with the defaults changed by `configure`.
    pub async fn start_with(configure: impl FnOnce(&mut Config)) -> InProcess {
        assert_eq!(
            Handle::current().runtime_flavor(),
            RuntimeFlavor::MultiThread,
            "an in-process server needs the multi-thread runtime"
        );
        let tmp = tempfile::tempdir().expect("temp dir");
        let mut config = Config::new(tmp.path());
        configure(&mut config);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind 127.0.0.1:0");
        let running = tributary_server::start(config, listener, std::future::pending())
            .await
            .expect("server starts");
        InProcess {
            url: format!("http://{}", running.addr),
            data_dir: tmp.path().to_owned(),
            token: running.admin_token.clone().expect("a fresh store's admin"),
            running: Some(running),
            _tmp: tmp,
        }
    }

    /// The cluster admin's token, made at the start.
    pub fn admin_token(&self) -> String {
        self.token.clone()
    }

    /// A client acting as the cluster admin.
    pub async fn client(&self) -> Client {
        self.client_as(Some(&self.token)).await
    }

    /// A client acting as the holder of `token` (anonymous when `None`).
    pub async fn client_as(&self, token: Option<&str>) -> Client {
        Client::connect(&self.url, token).await.expect("connect")
    }

    /// A `tributary` CLI command aimed at this server.
    pub fn cli(&self) -> Cli {
        self.cli_as(Some(&self.token))
    }

    /// A `tributary` CLI command aimed at this server, as the holder of `token`.
    pub fn cli_as(&self, token: Option<&str>) -> Cli {
        Cli::new(&self.url, token)
    }

    /// Stops the server and waits for its clean close (write-ahead log synced, store
    /// closed).
    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await.expect("the server stops cleanly");
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            // Before the data directory goes; not to panic while a test is unwinding.
            let stopped = tokio::task::block_in_place(|| Handle::current().block_on(r.stop()));
            if let Err(e) = stopped
                && !std::thread::panicking()
            {
                panic!("the server did not stop cleanly: {e}");
            }
        }
    }
}

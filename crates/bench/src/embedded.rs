//! `--embedded`: a real server (`tributary_server`, as `tributary serve` runs it, with
//! retention, replication and the Kafka listener) started in-process on a fresh temporary
//! data directory and reached over loopback gRPC (or Kafka, for `--protocol kafka`), so a bench needs no running server and measures the same
//! path a remote client takes (client and server then share the machine's cores).

use tempfile::TempDir;
use tokio::net::TcpListener;
use tributary_server::{Config, KafkaListener, Running};

use crate::{Error, Result};

pub(crate) struct Embedded {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The cluster admin's token, made at the first open of the data directory.
    pub token: String,
    /// The Kafka listener's `HOST:PORT`.
    pub kafka: Option<String>,
    server: Running,
    dir: TempDir,
}

impl Embedded {
    /// Starts a server with the defaults on a new temporary directory, on 127.0.0.1, port 0
    /// for gRPC and for Kafka.
    pub async fn start() -> Result<Embedded> {
        let dir = tempfile::Builder::new()
            .prefix("tributary-bench-")
            .tempdir()
            .map_err(|source| Error::Io {
                what: "creating a temporary data directory",
                source,
            })?;
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|source| Error::Io {
                what: "binding 127.0.0.1:0",
                source,
            })?;
        let kafka = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|source| Error::Io {
                what: "binding 127.0.0.1:0 for Kafka",
                source,
            })?;
        let mut config = Config::new(dir.path());
        config.kafka = Some(KafkaListener {
            listener: kafka,
            options: Default::default(),
            group_initial_delay: tributary_server::DEFAULT_GROUP_INITIAL_DELAY,
        });
        // Stopped by `stop`, never by a signal.
        let shutdown = std::future::pending();
        let mut server = tributary_server::start(config, listener, shutdown).await?;
        let Some(token) = server.admin_token.take() else {
            server.stop().await?;
            return Err(Error::Check(
                "a fresh data directory made no admin token".into(),
            ));
        };
        Ok(Embedded {
            url: format!("http://{}", server.addr),
            token,
            kafka: server.kafka_addr.map(|a| a.to_string()),
            server,
            dir,
        })
    }

    /// Stops serving, closes the store and removes the data directory.
    pub async fn stop(self) -> Result<()> {
        let stopped = self.server.stop().await;
        let removed = tokio::task::spawn_blocking(move || self.dir.close()).await;
        stopped?;
        removed?.map_err(|source| Error::Io {
            what: "removing the temporary data directory",
            source,
        })
    }
}

//! `--embedded`: a real server started in-process on a fresh temporary data directory and
//! reached over loopback gRPC, so a bench needs no running server and measures the same
//! path a remote client takes (client and server then share the machine's cores).

use std::sync::Arc;

use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tributary_api::ServerOptions;
use tributary_storage::{Store, StoreOptions};
use tributary_volume::{Namespace, SystemClock};

use crate::{Error, Result};

pub(crate) struct Embedded {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The cluster admin's token, made at the first open of the data directory.
    pub token: String,
    stop: oneshot::Sender<()>,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
    store: Arc<Store>,
    dir: TempDir,
}

impl Embedded {
    /// Opens a store on a new temporary directory and serves it on 127.0.0.1, port 0.
    pub async fn start() -> Result<Embedded> {
        let dir = tempfile::Builder::new()
            .prefix("tributary-bench-")
            .tempdir()
            .map_err(|source| Error::Io {
                what: "creating a temporary data directory",
                source,
            })?;
        let db = dir.path().join("db");
        let store = tokio::task::spawn_blocking(move || Store::open(&db, &StoreOptions::default()))
            .await??;
        let store = Arc::new(store);
        let ns = Arc::new(Namespace::open(store.clone(), Arc::new(SystemClock)).await?);
        let token = ns
            .ensure_admin()
            .await?
            .ok_or_else(|| Error::Check("a fresh data directory made no admin token".into()))?;
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|source| Error::Io {
                what: "binding 127.0.0.1:0",
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Io {
            what: "reading the listener's address",
            source,
        })?;
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let options = ServerOptions::default();
            let shutdown = async move {
                let _ = stopped.await;
            };
            tributary_api::serve(ns, listener, &options, shutdown).await
        });
        Ok(Embedded {
            url: format!("http://{addr}"),
            token,
            stop,
            server,
            store,
            dir,
        })
    }

    /// Stops serving, closes the store and removes the data directory.
    pub async fn stop(self) -> Result<()> {
        let _ = self.stop.send(());
        let served = self.server.await;
        // RocksDB closes when the last reference drops (the namespace's went with the
        // server task); then the directory goes.
        drop(self.store);
        let removed = tokio::task::spawn_blocking(move || self.dir.close()).await;
        served??;
        removed?.map_err(|source| Error::Io {
            what: "removing the temporary data directory",
            source,
        })
    }
}

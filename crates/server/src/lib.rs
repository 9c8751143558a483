//! The running server, wired once: `tributary serve`, `tributary bench --embedded` and the
//! in-process test harness all start it through [`start`].
//!
//! [`start`] takes a [`Config`], an already-bound listener (so a caller may bind port 0 and
//! knows the address before anyone connects) and a shutdown future, as mini-redis's
//! `server::run` does. It opens the store on `DATA_DIR/db`, the namespace, makes the first
//! cluster admin on a fresh store, and starts the gRPC server, the retention loop, the
//! replicator and, when asked, the Kafka listener (`tributary-kafka`, with the gRPC
//! listener's TLS, anonymous access and quota buckets) and the Prometheus endpoint. It returns once all of that is up,
//! with a [`Running`] handle that says where it listens and, on a fresh store, the new admin
//! token: what to do with the token (the binary writes `admin.token`) is the caller's.
//!
//! What is the binary's stays there: parsing and layering the configuration, logging,
//! signals (SIGINT/SIGTERM, health NOT_SERVING and the shutdown delay become the shutdown
//! future), the process's open-files limit, the global allocator and the Prometheus recorder
//! (both process-wide; the recorder's handle comes in through [`MetricsEndpoint`]), and the
//! lines printed for scripts.
//!
//! Once the shutdown future resolves (or [`Running::stop`] is called, or the handle is
//! dropped), in-flight requests get [`DRAIN_LIMIT`] to finish; then the background tasks
//! stop, the write-ahead log is synced and the store closes. [`Running::stop`] and
//! [`Running::closed`] return after that clean close.

pub mod heap;
mod metrics;
mod scrape_access;
mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tributary_api::{Quotas, ServerOptions};
use tributary_replication::{Links, Replicator};
use tributary_storage::{Store, StoreOptions};
use tributary_volume::{Clock, Namespace, SystemClock};
use uuid::Uuid;

pub use metrics_exporter_prometheus::PrometheusHandle;

/// Counted, so that this crate's own heap test sees its allocations.
#[cfg(test)]
#[global_allocator]
static GLOBAL: heap::Counting = heap::Counting::new();

/// How long in-flight requests and open connections get to finish once the server stops.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(20);
/// Kafka's default `group.initial.rebalance.delay.ms`.
pub const DEFAULT_GROUP_INITIAL_DELAY: Duration = Duration::from_secs(3);

/// What the server runs with: the part of `tributary serve`'s configuration that is not
/// the binary's (addresses to bind, logging, the shutdown delay).
#[derive(Debug)]
pub struct Config {
    /// The data directory; the store is its `db` directory.
    pub data_dir: PathBuf,
    /// The gRPC server's transport and access settings (TLS, anonymous access, message
    /// limits, quotas) and the health it reports: a caller may turn that NOT_SERVING before
    /// the shutdown future resolves, to drain.
    pub grpc: ServerOptions,
    /// How often retention and key compaction run (above zero); the first pass comes one
    /// interval after the start.
    pub retention_interval: Duration,
    /// How long an idle idempotent producer's sequence state is kept.
    pub producer_expiry: Duration,
    /// The Prometheus endpoint, if one is wanted.
    pub metrics: Option<MetricsEndpoint>,
    /// The Kafka listener, if one is wanted.
    pub kafka: Option<KafkaListener>,
    /// The namespace's time.
    pub clock: Arc<dyn Clock>,
    /// At the first start, the cluster admin gets this token (`trb_<id>.<secret>`, checked)
    /// instead of a new one; ignored once the store has users.
    pub admin_token: Option<String>,
}

impl Config {
    /// The defaults (those of `tributary serve`) on `data_dir`, without a metrics endpoint.
    pub fn new(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            data_dir: data_dir.into(),
            grpc: ServerOptions::default(),
            retention_interval: Duration::from_secs(30),
            producer_expiry: Duration::from_secs(7 * 86_400),
            metrics: None,
            kafka: None,
            clock: Arc::new(SystemClock),
            admin_token: None,
        }
    }
}

/// Where the Prometheus endpoint serves `GET /metrics`, the recorder it renders, and who
/// may scrape it.
#[derive(Debug)]
pub struct MetricsEndpoint {
    pub listener: TcpListener,
    /// The handle of the recorder the process installed.
    pub handle: PrometheusHandle,
    /// When set, a scrape must send `Authorization: Bearer TOKEN`, TOKEN being this file's
    /// content (read at each scrape, so it may be rotated in place); others get 401.
    pub token_file: Option<PathBuf>,
    /// Serve it over TLS (a certificate chain and key, as the gRPC listener takes them).
    pub tls: Option<tributary_api::TlsFiles>,
}

/// Where Kafka clients are served, and how. TLS, anonymous access and the rate quotas are
/// the gRPC listener's: the options' own are set from [`Config::grpc`].
#[derive(Debug)]
pub struct KafkaListener {
    pub listener: TcpListener,
    pub options: tributary_kafka::Options,
    /// How long a new consumer group's first join phase waits for more members (Kafka's
    /// `group.initial.rebalance.delay.ms`).
    pub group_initial_delay: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("opening data directory {}", .path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: tributary_storage::Error,
    },

    #[error(transparent)]
    Namespace(#[from] tributary_volume::Error),

    #[error("{what}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },

    #[error(transparent)]
    Serve(#[from] tonic::transport::Error),

    #[error(transparent)]
    Task(#[from] tokio::task::JoinError),

    #[error("the first admin's token (admin_token_file)")]
    AdminToken(#[source] tributary_volume::Error),

    #[error("metrics endpoint TLS: {what}: {message}")]
    MetricsTls { what: &'static str, message: String },

    #[error("Kafka listener TLS: {what}: {message}")]
    KafkaTls { what: &'static str, message: String },

    #[error(transparent)]
    Kafka(#[from] tributary_kafka::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A server started by [`start`]. Dropping it stops the server without waiting.
#[derive(Debug)]
pub struct Running {
    /// Where gRPC is served.
    pub addr: SocketAddr,
    /// Where `GET /metrics` is served, when the endpoint is on.
    pub metrics_addr: Option<SocketAddr>,
    /// Where Kafka clients are served, when the listener is on.
    pub kafka_addr: Option<SocketAddr>,
    pub cluster_id: Uuid,
    /// The cluster admin's token, when this start made the admin (a fresh store).
    pub admin_token: Option<String>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<()>>,
}

impl Running {
    /// Stops now, as if the shutdown future had resolved, and waits for the clean close.
    pub async fn stop(self) -> Result<()> {
        let _ = self.stop.send(());
        self.task.await?
    }

    /// Waits until the shutdown future resolves and the server has closed cleanly.
    pub async fn closed(self) -> Result<()> {
        let Running { stop, task, .. } = self;
        let closed = task.await?;
        drop(stop);
        closed
    }
}

/// Opens the store in `config.data_dir` and serves it on `listener` until `shutdown`
/// resolves (or [`Running::stop`]); returns once everything is up.
pub async fn start(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Running> {
    let addr = local_addr(&listener)?;
    // Checked before the store opens: a bad certificate or token changes nothing.
    let given_admin = (config.admin_token.as_deref())
        .map(tributary_volume::auth::given_token)
        .transpose()
        .map_err(Error::AdminToken)?;
    let metrics = match config.metrics {
        Some(m) => {
            let access = metrics::Access::new(m.token_file, m.tls.as_ref()).await?;
            Some((m.listener, m.handle, access))
        }
        None => None,
    };
    // One set of buckets per principal, for both doors: a user's limits cover its gRPC
    // and its Kafka traffic together.
    let quotas = Arc::new(Quotas::new(config.grpc.quotas.clone()));
    let kafka = match config.kafka {
        Some(mut k) => {
            k.options.allow_anonymous = config.grpc.allow_anonymous;
            k.options.quotas = quotas.clone();
            if let Some(files) = &config.grpc.tls {
                let tls = tls::server_config(files)
                    .map_err(|(what, message)| Error::KafkaTls { what, message })?;
                k.options.tls = Some(Arc::new(tls));
            }
            Some(k)
        }
        None => None,
    };
    let db_path = config.data_dir.join("db");
    let store =
        tokio::task::spawn_blocking(move || Store::open(&db_path, &StoreOptions::default()))
            .await?
            .map_err(|source| Error::Open {
                path: config.data_dir.clone(),
                source,
            })?;
    let store = Arc::new(store);
    let cluster_id = store.identity().cluster_id;
    let ns = Arc::new(Namespace::open(store.clone(), config.clock).await?);
    ns.set_producer_expiry(config.producer_expiry);
    if let Some(k) = &kafka {
        ns.set_kafka_group_initial_delay(k.group_initial_delay);
    }
    let admin_token = match given_admin {
        Some(given) => ns.ensure_admin_with(given).await?,
        None => ns.ensure_admin().await?,
    };
    // The replica links, shared by the replicator (which runs them), the API and metrics.
    let links = Links::new(ns.clone());

    let (metrics_addr, metrics_task) = match metrics {
        Some((listener, handle, access)) => {
            let addr = local_addr(&listener)?;
            metrics::describe();
            let task = tokio::spawn(metrics::serve(
                listener,
                handle,
                ns.clone(),
                links.clone(),
                access,
            ));
            (Some(addr), Some(task))
        }
        None => (None, None),
    };
    let (kafka_stop, kafka_stopping) = tokio::sync::watch::channel(false);
    let (kafka_addr, kafka_task) = match kafka {
        Some(KafkaListener {
            listener, options, ..
        }) => {
            let addr = local_addr(&listener)?;
            let mut stopping = kafka_stopping;
            let shutdown = async move {
                let _ = stopping.wait_for(|s| *s).await;
            };
            let task = tokio::spawn(tributary_kafka::serve(
                listener,
                ns.clone(),
                options,
                shutdown,
            ));
            (Some(addr), Some(task))
        }
        None => (None, None),
    };
    let retention = tokio::spawn(retention_loop(ns.clone(), config.retention_interval));
    let replicator = Replicator::start(links.clone());

    let (stop, stopped) = oneshot::channel::<()>();
    let options = ServerOptions {
        links: Some(links),
        ..config.grpc
    };
    let data_dir = config.data_dir;
    let task = tokio::spawn(async move {
        // Once stopping, connections get DRAIN_LIMIT to finish; a client that never closes
        // its connection (or a stuck call) must not keep the server up forever.
        let stopping = tokio::sync::Notify::new();
        let shutdown = async {
            tokio::select! {
                () = shutdown => {}
                _ = stopped => {}
            }
            stopping.notify_one();
            let _ = kafka_stop.send(true);
        };
        // Both listeners stop together; each finishes the requests in flight.
        let both = async {
            let grpc = tributary_api::serve(ns.clone(), listener, &options, quotas, shutdown).await;
            let kafka = match kafka_task {
                Some(t) => t.await.map_err(Error::from).and_then(|k| Ok(k?)),
                None => Ok(()),
            };
            grpc.map_err(Error::from).and(kafka)
        };
        let served = tokio::select! {
            served = both => served,
            () = async { stopping.notified().await; tokio::time::sleep(DRAIN_LIMIT).await } => {
                tracing::warn!(limit = ?DRAIN_LIMIT, "connections still open after the drain limit; closing them");
                Ok(())
            }
        };
        retention.abort();
        let _ = retention.await;
        replicator.stop().await;
        if let Some(t) = metrics_task {
            t.abort();
            let _ = t.await;
        }
        drop(ns);
        close(store, &data_dir);
        served
    });
    Ok(Running {
        addr,
        metrics_addr,
        kafka_addr,
        cluster_id,
        admin_token,
        stop,
        task,
    })
}

fn local_addr(listener: &TcpListener) -> Result<SocketAddr> {
    listener.local_addr().map_err(|source| Error::Io {
        what: "reading a listener's address",
        source,
    })
}

/// Retention and compaction every `interval`, the first one interval after the start (as
/// Kafka delays its first check), so a restart does not add a pass over every compacted
/// partition to the work of coming back.
async fn retention_loop(ns: Arc<Namespace>, interval: Duration) {
    let start = tokio::time::Instant::now() + interval;
    let mut tick = tokio::time::interval_at(start, interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = ns.run_retention().await {
            tracing::warn!(error = %e, "retention failed; retrying at the next interval");
        }
    }
}

/// Makes buffered writes durable and lets go of the store. RocksDB closes when the last
/// reference drops; blocking tasks still finishing hold one, and the runtime waits for them
/// before the process exits.
fn close(store: Arc<Store>, data_dir: &Path) {
    if let Err(e) = store.sync_wal() {
        tracing::error!(error = %e, "syncing the write-ahead log at shutdown");
    }
    drop(store);
    tracing::info!(data_dir = %data_dir.display(), "stopped cleanly");
}

#[cfg(test)]
mod tests;

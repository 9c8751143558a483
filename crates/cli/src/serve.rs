//! `tributary serve`: the server's life from configuration (`config.rs`) to a clean close
//! on SIGINT/SIGTERM: logging, opening the store, the gRPC server, the metrics endpoint and
//! the retention loop.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use tokio::io::AsyncWriteExt;
use tributary_api::{Health, ServerOptions, TlsFiles};
use tributary_replication::{Links, Replicator};
use tributary_storage::{Store, StoreOptions};
use tributary_volume::{Namespace, SystemClock};

use crate::config::{self, Flags, LogFormat, MetricsListen, Settings};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML configuration file (see deploy/tributary.toml); environment variables and
    /// flags override it
    #[arg(long, env = "TRIBUTARY_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Check the configuration, print the effective one with each value's source, and exit:
    /// 0 when it is valid, 2 (with the key at fault named) when it is not
    #[arg(long)]
    check_config: bool,
    #[command(flatten)]
    flags: Flags,
}

/// Where the CLI looks for a token when none is given: the file the server writes at its
/// first start in the default data directory.
pub const DEFAULT_ADMIN_TOKEN: &str = "./data/admin.token";

/// Exit status for a configuration that does not load (as for a usage error).
const BAD_CONFIG: i32 = 2;

/// How long in-flight requests and open connections get to finish once the server stops.
const DRAIN_LIMIT: std::time::Duration = std::time::Duration::from_secs(20);

fn init_logging(cfg: &Settings) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&cfg.log)
        .with_context(|| format!("log filter `{}`", cfg.log))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match cfg.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    Ok(())
}

/// Prints a line on stdout for scripts and tests (e.g. the port picked for port 0).
async fn announce(line: String) -> anyhow::Result<()> {
    let mut stdout = tokio::io::stdout();
    stdout.write_all(line.as_bytes()).await?;
    stdout.write_all(b"\n").await?;
    stdout.flush().await?;
    Ok(())
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let env = |k: &str| std::env::var(k).ok();
    let vars = std::env::vars_os().filter_map(|(k, _)| k.into_string().ok());
    let loaded = match config::load(args.config.as_deref(), &args.flags, &env, vars) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: invalid configuration: {e:#}");
            std::process::exit(BAD_CONFIG);
        }
    };
    if args.check_config {
        print!("{}", loaded.render());
        return Ok(());
    }
    let cfg = loaded.settings;
    init_logging(&cfg)?;
    raise_open_files_limit();
    for v in &loaded.unknown_vars {
        tracing::warn!(variable = %v, "environment variable names no setting; ignored");
    }
    // Before anything reports, so that no early figure is lost.
    let metrics = match cfg.metrics_listen {
        MetricsListen::On(addr) => Some((crate::metrics::install()?, addr)),
        MetricsListen::Off => None,
    };

    let db_path = cfg.data_dir.join("db");
    let store =
        tokio::task::spawn_blocking(move || Store::open(&db_path, &StoreOptions::default()))
            .await?
            .with_context(|| format!("opening data directory {}", cfg.data_dir.display()))?;
    let store = Arc::new(store);
    let cluster_id = store.identity().cluster_id;
    let ns = Arc::new(Namespace::open(store.clone(), Arc::new(SystemClock)).await?);
    ns.set_producer_expiry(cfg.producer_expiry);
    // The replica links, shared by the replicator (which runs them), the API and metrics.
    let links = Links::new(ns.clone());
    if let Some(token) = ns.ensure_admin().await? {
        let path = cfg.data_dir.join("admin.token");
        write_secret(&path, &token).with_context(|| format!("writing {}", path.display()))?;
        tracing::info!(path = %path.display(), "wrote the cluster admin's token");
    }

    let metrics_task = match metrics {
        Some((handle, addr)) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding the metrics endpoint {addr}"))?;
            let addr = listener.local_addr()?;
            tracing::info!(%addr, "metrics at http://{addr}/metrics");
            announce(format!("tributary metrics on {addr}")).await?;
            Some(tokio::spawn(crate::metrics::serve(
                listener,
                handle,
                ns.clone(),
                links.clone(),
            )))
        }
        None => None,
    };

    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("binding {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    // Before the line below: a SIGTERM sent as soon as it is seen must stop us cleanly.
    let signals = Signals::install()?;
    tracing::info!(%addr, %cluster_id, data_dir = %cfg.data_dir.display(), "tributary listening");
    // Last, so that a script reading it knows everything above is up.
    announce(format!("tributary listening on {addr}")).await?;

    let read = |p: &PathBuf| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let tls = match (&cfg.tls_cert, &cfg.tls_key) {
        (Some(c), Some(k)) => Some(TlsFiles {
            cert: read(c)?,
            key: read(k)?,
            client_ca: cfg.tls_client_ca.as_ref().map(read).transpose()?,
        }),
        _ => None,
    };
    let health = Health::default();
    let options = ServerOptions {
        tls,
        max_message_bytes: cfg.max_message_bytes,
        allow_anonymous: cfg.allow_anonymous,
        health: health.clone(),
        quotas: cfg.quotas(),
        links: Some(links.clone()),
        ..ServerOptions::default()
    };
    let retention = tokio::spawn(retention_loop(ns.clone(), cfg.retention_interval));
    let replicator = Replicator::start(links);
    // Once stopping, connections get DRAIN_LIMIT to finish; a client that never closes
    // its connection (or a stuck call) must not keep the server up forever.
    let stopping = tokio::sync::Notify::new();
    let shutdown = async {
        shutdown_signal(signals, health, cfg.shutdown_delay).await;
        stopping.notify_one();
    };
    tokio::select! {
        served = tributary_api::serve(ns.clone(), listener, &options, shutdown) => served?,
        _ = async { stopping.notified().await; tokio::time::sleep(DRAIN_LIMIT).await } => {
            tracing::warn!(limit = ?DRAIN_LIMIT, "connections still open after the drain limit; closing them");
        }
    }
    retention.abort();
    let _ = retention.await;
    replicator.stop().await;
    if let Some(t) = metrics_task {
        t.abort();
        let _ = t.await;
    }

    drop(ns);
    close(store, &cfg.data_dir).await;
    Ok(())
}

/// Raises the soft open-files limit to the hard one: every connection takes a descriptor,
/// and so does every table file the store keeps open. Many systems start programs at a
/// soft 1024, which a thousand clients would exhaust.
fn raise_open_files_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    let before = limit.current;
    // `None` is unlimited; the hard limit is the most a process may ask for.
    if let (Some(soft), Some(hard)) = (limit.current, limit.maximum)
        && soft < hard
    {
        limit.current = Some(hard);
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!(error = %e, ?before, "could not raise the open-files limit");
            return;
        }
    }
    tracing::info!(soft = ?limit.current, was = ?before, "open-files limit");
}

/// Writes a file only its owner can read (mode 0600 from creation).
fn write_secret(path: &Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(secret.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()
}

/// Retention and compaction every `interval`, the first one interval after the start (as
/// Kafka delays its first check), so a restart does not add a pass over every compacted
/// partition to the work of coming back.
async fn retention_loop(ns: Arc<Namespace>, interval: std::time::Duration) {
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

/// The SIGINT and SIGTERM handlers, installed before the server says it listens: a signal
/// sent as soon as that line is seen must stop it cleanly, not kill it.
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
        })
    }
}

/// Resolves when the server should stop: on the first SIGINT or SIGTERM health turns to
/// NOT_SERVING, and the server keeps serving for `delay` (so load balancers move away), or
/// until a second signal.
async fn shutdown_signal(signals: Signals, health: Health, delay: std::time::Duration) {
    let Signals { mut int, mut term } = signals;
    let mut next = async || {
        tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        }
    };
    let first = next().await;
    health.set_not_serving();
    if delay.is_zero() {
        tracing::info!(signal = first, "stopping");
        return;
    }
    tracing::info!(
        signal = first,
        ?delay,
        "health is NOT_SERVING; stopping after the delay (signal again to stop now)"
    );
    tokio::select! {
        _ = tokio::time::sleep(delay) => {}
        second = next() => tracing::info!(signal = second, "stopping now"),
    }
}

/// Makes buffered writes durable and lets go of the store. RocksDB closes when the last
/// reference drops; blocking tasks still finishing hold one, and the runtime waits for them
/// before the process exits.
async fn close(store: Arc<Store>, data_dir: &Path) {
    if let Err(e) = store.sync_wal() {
        tracing::error!(error = %e, "syncing the write-ahead log at shutdown");
    }
    drop(store);
    tracing::info!(data_dir = %data_dir.display(), "stopped cleanly");
}

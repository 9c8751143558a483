//! `tributary serve`: layered configuration (defaults, then `--config` TOML, then
//! `TRIBUTARY_*` variables, then flags), logging, and the server's life from open to a clean
//! close on SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tributary_api::{ServerOptions, TlsFiles};
use tributary_storage::{Store, StoreOptions};
use tributary_volume::{Namespace, SystemClock};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Data directory (created if absent).
    #[arg(long, env = "TRIBUTARY_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// gRPC listen address; port 0 picks a free port.
    #[arg(long, env = "TRIBUTARY_LISTEN")]
    listen: Option<SocketAddr>,
    /// TOML configuration file (see deploy/tributary.toml).
    #[arg(long, env = "TRIBUTARY_CONFIG")]
    config: Option<PathBuf>,
    /// Log filter, RUST_LOG syntax (e.g. `info,tributary_api=debug`).
    #[arg(long, env = "TRIBUTARY_LOG")]
    log: Option<String>,
    /// Log format.
    #[arg(long, env = "TRIBUTARY_LOG_FORMAT", value_parser = ["text", "json"])]
    log_format: Option<String>,
    /// Serve TLS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, env = "TRIBUTARY_TLS_CERT", value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, env = "TRIBUTARY_TLS_KEY", value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// Accept client certificates signed by this CA (PEM): mutual TLS, the subject CN
    /// naming the user.
    #[arg(long, env = "TRIBUTARY_TLS_CLIENT_CA", value_name = "FILE")]
    tls_client_ca: Option<PathBuf>,
    /// How often retention removes records past their stream's TTL (e.g. 30s, 5m).
    #[arg(long, env = "TRIBUTARY_RETENTION_INTERVAL", value_parser = crate::output::parse_duration)]
    retention_interval: Option<std::time::Duration>,
    /// Serve requests without credentials, as the user `anonymous`.
    #[arg(long, env = "TRIBUTARY_ALLOW_ANONYMOUS")]
    allow_anonymous: bool,
}

/// Where the CLI looks for a token when none is given: the file the server writes at its
/// first start in the default data directory.
pub const DEFAULT_ADMIN_TOKEN: &str = "./data/admin.token";

/// The configuration file; unknown keys are an error.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    log: Option<String>,
    log_format: Option<String>,
    max_message_bytes: Option<usize>,
    allow_anonymous: Option<bool>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_client_ca: Option<PathBuf>,
    retention_interval: Option<String>,
}

/// The effective configuration.
#[derive(Debug)]
struct Config {
    data_dir: PathBuf,
    listen: SocketAddr,
    log: String,
    log_format: String,
    max_message_bytes: usize,
    allow_anonymous: bool,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_client_ca: Option<PathBuf>,
    retention_interval: std::time::Duration,
}

fn load(args: ServeArgs) -> anyhow::Result<Config> {
    let file = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            toml::from_str::<FileConfig>(&text).with_context(|| format!("in {}", path.display()))?
        }
        None => FileConfig::default(),
    };
    let defaults = ServerOptions::default();
    let cfg = Config {
        data_dir: args
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("./data")),
        listen: args
            .listen
            .or(file.listen)
            .unwrap_or_else(|| ([127, 0, 0, 1], 7070).into()),
        log: args
            .log
            .or(file.log)
            .or_else(|| std::env::var("RUST_LOG").ok())
            .unwrap_or_else(|| "info".into()),
        log_format: args
            .log_format
            .or(file.log_format)
            .unwrap_or_else(|| "text".into()),
        max_message_bytes: file.max_message_bytes.unwrap_or(defaults.max_message_bytes),
        allow_anonymous: args.allow_anonymous || file.allow_anonymous.unwrap_or(false),
        tls_cert: args.tls_cert.or(file.tls_cert),
        tls_key: args.tls_key.or(file.tls_key),
        tls_client_ca: args.tls_client_ca.or(file.tls_client_ca),
        retention_interval: match (args.retention_interval, &file.retention_interval) {
            (Some(d), _) => d,
            (None, Some(text)) => crate::output::parse_duration(text)
                .map_err(|e| anyhow::anyhow!("retention_interval: {e}"))?,
            (None, None) => std::time::Duration::from_secs(30),
        },
    };
    if cfg.retention_interval.is_zero() {
        bail!("retention_interval must be above zero");
    }
    if cfg.tls_cert.is_some() != cfg.tls_key.is_some() {
        bail!("tls_cert and tls_key go together: give both or neither");
    }
    if cfg.tls_client_ca.is_some() && cfg.tls_cert.is_none() {
        bail!("tls_client_ca needs tls_cert and tls_key");
    }
    if !["text", "json"].contains(&cfg.log_format.as_str()) {
        bail!(
            "log_format must be `text` or `json`, not `{}`",
            cfg.log_format
        );
    }
    Ok(cfg)
}

fn init_logging(cfg: &Config) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&cfg.log)
        .with_context(|| format!("log filter `{}`", cfg.log))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if cfg.log_format == "json" {
        builder.json().init()
    } else {
        builder.init()
    }
    Ok(())
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let cfg = load(args)?;
    init_logging(&cfg)?;
    let db_path = cfg.data_dir.join("db");
    let store =
        tokio::task::spawn_blocking(move || Store::open(&db_path, &StoreOptions::default()))
            .await?
            .with_context(|| format!("opening data directory {}", cfg.data_dir.display()))?;
    let store = Arc::new(store);
    let cluster_id = store.identity().cluster_id;
    let ns = Arc::new(Namespace::open(store.clone(), Arc::new(SystemClock)).await?);
    if let Some(token) = ns.ensure_admin().await? {
        let path = cfg.data_dir.join("admin.token");
        write_secret(&path, &token).with_context(|| format!("writing {}", path.display()))?;
        tracing::info!(path = %path.display(), "wrote the cluster admin's token");
    }

    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("binding {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    // Before the line below: a SIGTERM sent as soon as it is seen must stop us cleanly.
    let shutdown = shutdown_signal()?;
    tracing::info!(%addr, %cluster_id, data_dir = %cfg.data_dir.display(), "tributary listening");
    // One machine-readable line on stdout, for scripts and tests that start on port 0.
    let mut stdout = tokio::io::stdout();
    stdout
        .write_all(format!("tributary listening on {addr}\n").as_bytes())
        .await?;
    stdout.flush().await?;

    let read = |p: &PathBuf| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let tls = match (&cfg.tls_cert, &cfg.tls_key) {
        (Some(c), Some(k)) => Some(TlsFiles {
            cert: read(c)?,
            key: read(k)?,
            client_ca: cfg.tls_client_ca.as_ref().map(read).transpose()?,
        }),
        _ => None,
    };
    let options = ServerOptions {
        tls,
        max_message_bytes: cfg.max_message_bytes,
        allow_anonymous: cfg.allow_anonymous,
        ..ServerOptions::default()
    };
    let retention = tokio::spawn(retention_loop(ns.clone(), cfg.retention_interval));
    tributary_api::serve(ns.clone(), listener, &options, shutdown).await?;
    retention.abort();
    let _ = retention.await;

    drop(ns);
    close(store, &cfg.data_dir).await;
    Ok(())
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

/// Runs retention on every stream at each interval (the first run right after start).
async fn retention_loop(ns: Arc<Namespace>, interval: std::time::Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = ns.run_retention().await {
            tracing::warn!(error = %e, "retention failed; retrying at the next interval");
        }
    }
}

/// Installs the SIGINT and SIGTERM handlers now; the future resolves on the first signal.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => tracing::info!("SIGINT received"),
            _ = term.recv() => tracing::info!("SIGTERM received"),
        }
    })
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

//! `tributary serve`: what the process does around the server (`tributary_server`, which
//! runs it): the configuration (`config.rs`), logging, the open-files limit, the Prometheus
//! recorder, binding the listeners (gRPC, metrics, Kafka), the admin token file, the lines
//! printed for scripts, and SIGINT/SIGTERM (health NOT_SERVING, the shutdown delay) as the
//! server's shutdown future.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tributary_api::metrics::RPC_DURATION;
use tributary_api::{Health, ServerOptions, TlsFiles};
use tributary_server::{KafkaListener, MetricsEndpoint};

use crate::config::{self, Flags, Listen, LogFormat, Settings};

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
        Listen::On(addr) => {
            let handle = install_recorder()?;
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding the metrics endpoint {addr}"))?;
            let tls = match (&cfg.metrics_tls_cert, &cfg.metrics_tls_key) {
                (Some(c), Some(k)) => Some(TlsFiles {
                    cert: read_file(c)?,
                    key: read_file(k)?,
                    client_ca: None,
                }),
                _ => None,
            };
            Some(MetricsEndpoint {
                listener,
                handle,
                token_file: cfg.metrics_token_file.clone(),
                tls,
            })
        }
        Listen::Off => None,
    };
    let listener = TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("binding {}", cfg.listen))?;
    let kafka = match cfg.kafka_listen {
        Listen::On(addr) => {
            let names = config::kafka_names(&cfg)?;
            let listener = TcpListener::bind(addr).await.with_context(|| {
                format!("binding the Kafka listener {addr} (kafka_listen, --kafka-listen; `off` disables it)")
            })?;
            let options = tributary_kafka::Options {
                max_request_bytes: cfg.kafka_max_request_bytes,
                advertised: names.advertised,
                default_stream: names.default_stream,
                aliases: names.aliases,
                ..tributary_kafka::Options::default()
            };
            Some(KafkaListener {
                listener,
                options,
                group_initial_delay: cfg.kafka_group_initial_delay,
            })
        }
        Listen::Off => None,
    };
    let health = Health::default();
    let mut config = server_config(&cfg, health.clone(), metrics)?;
    config.kafka = kafka;
    // Before the server starts: a SIGTERM sent as soon as it is seen listening must stop it
    // cleanly, not kill it.
    let signals = Signals::install()?;
    let shutdown = shutdown_signal(signals, health, cfg.shutdown_delay);
    let running = tributary_server::start(config, listener, shutdown).await?;
    // A token from admin_token_file stays where it came from (a Secret, say): a copy in the
    // data directory would be one more place to guard, and stale once rotated.
    if let Some(path) = &cfg.admin_token_file {
        if running.admin_token.is_some() {
            tracing::info!(path = %path.display(), "made the cluster admin with the token of admin_token_file");
        }
    } else if let Some(token) = &running.admin_token {
        let path = cfg.data_dir.join("admin.token");
        if let Err(e) = write_secret(&path, token) {
            let _ = running.stop().await;
            return Err(e).with_context(|| format!("writing {}", path.display()));
        }
        tracing::info!(path = %path.display(), "wrote the cluster admin's token");
    }
    if let Some(addr) = running.metrics_addr {
        tracing::info!(%addr, "metrics at http://{addr}/metrics");
        announce(format!("tributary metrics on {addr}")).await?;
    }
    if let Some(addr) = running.kafka_addr {
        tracing::info!(%addr, "Kafka clients served at {addr}");
        announce(format!("tributary kafka on {addr}")).await?;
    }
    let (addr, cluster_id) = (running.addr, running.cluster_id);
    tracing::info!(%addr, %cluster_id, data_dir = %cfg.data_dir.display(), "tributary listening");
    // Last, so that a script reading it knows everything above is up.
    announce(format!("tributary listening on {addr}")).await?;
    running.closed().await?;
    Ok(())
}

/// The server's part of the settings; reads the TLS files.
fn server_config(
    cfg: &Settings,
    health: Health,
    metrics: Option<MetricsEndpoint>,
) -> anyhow::Result<tributary_server::Config> {
    let admin_token = match &cfg.admin_token_file {
        Some(p) => Some(
            String::from_utf8(read_file(p)?)
                .with_context(|| format!("admin_token_file {}: not UTF-8 text", p.display()))?,
        ),
        None => None,
    };
    let tls = match (&cfg.tls_cert, &cfg.tls_key) {
        (Some(c), Some(k)) => Some(TlsFiles {
            cert: read_file(c)?,
            key: read_file(k)?,
            client_ca: cfg.tls_client_ca.as_deref().map(read_file).transpose()?,
        }),
        _ => None,
    };
    Ok(tributary_server::Config {
        grpc: ServerOptions {
            tls,
            max_message_bytes: cfg.max_message_bytes,
            allow_anonymous: cfg.allow_anonymous,
            health,
            quotas: cfg.quotas(),
            ..ServerOptions::default()
        },
        retention_interval: cfg.retention_interval,
        producer_expiry: cfg.producer_expiry,
        metrics,
        // Surrounding whitespace (a final newline) is not part of the token.
        admin_token: admin_token.map(|t| t.trim().to_owned()),
        ..tributary_server::Config::new(&cfg.data_dir)
    })
}

/// A file the settings name (a certificate, a key, a token), read whole.
fn read_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Latency buckets in seconds: sub-millisecond appends up to long-poll fetches.
const RPC_BUCKETS: &[f64] = &[
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0, 30.0,
];

/// Installs the process's Prometheus recorder behind the `metrics` facade, which every
/// crate reports through; the server's endpoint renders it. Call once, before anything
/// reports.
fn install_recorder() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(RPC_DURATION.into()), RPC_BUCKETS)?
        .install_recorder()
        .context("installing the metrics recorder")?;
    metrics::describe_gauge!("tributary_build_info", "Always 1; the version is a label.");
    metrics::gauge!("tributary_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    Ok(handle)
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

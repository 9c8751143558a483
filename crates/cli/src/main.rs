//! `tributary`: the server and every user-facing verb in one binary. This file only parses
//! flags and dispatches; each verb lives in its own module.

mod admin;
mod backup;
mod config;
mod consume;
mod group;
mod output;
mod produce;
mod serve;
mod upstream;

use clap::{Args, Parser, Subcommand};

/// mimalloc, counted for the `tributary_memory_heap_bytes` gauge.
#[global_allocator]
static GLOBAL: tributary_server::heap::Counting = tributary_server::heap::Counting::new();

#[derive(Debug, Parser)]
#[command(
    name = "tributary",
    version,
    about = "Tributary: a multi-tenant, replicated stream store"
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Flags every client verb takes, before or after the verb.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Server URL.
    #[arg(
        long,
        global = true,
        env = "TRIBUTARY_SERVER",
        default_value = "http://127.0.0.1:7070"
    )]
    pub server: String,
    /// Bearer token for the server. Without one, ./data/admin.token is used if it exists
    /// (the token `tributary serve` writes at first start).
    #[arg(long, global = true, env = "TRIBUTARY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print JSON (one object per line) instead of human-readable output.
    #[arg(long, global = true)]
    pub json: bool,
    /// CA certificate (PEM) to verify an https:// server with.
    #[arg(long, global = true, env = "TRIBUTARY_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<std::path::PathBuf>,
    /// Client certificate (PEM) for mutual TLS; its subject CN names the user.
    #[arg(
        long,
        global = true,
        env = "TRIBUTARY_CLIENT_CERT",
        value_name = "FILE",
        requires = "client_key"
    )]
    pub client_cert: Option<std::path::PathBuf>,
    /// Key (PEM) of --client-cert.
    #[arg(
        long,
        global = true,
        env = "TRIBUTARY_CLIENT_KEY",
        value_name = "FILE",
        requires = "client_cert"
    )]
    pub client_key: Option<std::path::PathBuf>,
}

impl Global {
    /// `--token`, or else the token `tributary serve` wrote in ./data, if any.
    pub fn token(&self) -> anyhow::Result<Option<String>> {
        Ok(match &self.token {
            Some(t) => Some(t.trim().to_owned()),
            None => match std::fs::read_to_string(serve::DEFAULT_ADMIN_TOKEN) {
                Ok(t) => Some(t.trim().to_owned()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => anyhow::bail!("reading {}: {e}", serve::DEFAULT_ADMIN_TOKEN),
            },
        })
    }

    pub async fn connect(&self) -> anyhow::Result<tributary_client::Client> {
        let token = self.token()?;
        let read = |p: &std::path::Path| {
            std::fs::read(p).map_err(|e| anyhow::anyhow!("reading {}: {e}", p.display()))
        };
        let options = tributary_client::ConnectOptions {
            token,
            ca_cert: self.ca_cert.as_deref().map(read).transpose()?,
            identity: match (&self.client_cert, &self.client_key) {
                (Some(c), Some(k)) => Some((read(c)?, read(k)?)),
                _ => None,
            },
        };
        Ok(tributary_client::Client::connect_with(&self.server, &options).await?)
    }
}

/// The Kafka listener a bench assumes beside a `--server` URL: its host, port 9092.
fn kafka_bootstrap_of(server: &str) -> anyhow::Result<String> {
    let uri: tonic::codegen::http::Uri = server
        .parse()
        .map_err(|e| anyhow::anyhow!("--server {server} is not a URL: {e}"))?;
    match uri.host() {
        Some(host) => Ok(format!("{host}:9092")),
        None => anyhow::bail!("--server {server} names no host; give --kafka-bootstrap"),
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a server.
    Serve(Box<serve::ServeArgs>),
    /// Manage volumes (tenants).
    #[command(subcommand)]
    Volume(admin::VolumeCmd),
    /// Manage streams.
    #[command(subcommand)]
    Stream(admin::StreamCmd),
    /// Manage topics.
    #[command(subcommand)]
    Topic(admin::TopicCmd),
    /// Show the cluster's identity.
    #[command(subcommand)]
    Cluster(admin::ClusterCmd),
    /// Manage users and their tokens.
    #[command(subcommand)]
    User(admin::UserCmd),
    /// Operate the server: health check, online backup by checkpoint.
    #[command(subcommand)]
    Admin(backup::AdminCmd),
    /// Produce records read from standard input, one per line.
    Produce(produce::ProduceArgs),
    /// Print records of a topic.
    Consume(consume::ConsumeArgs),
    /// Consumer groups: list, info (cursors and lag), reset, delete.
    #[command(subcommand)]
    Group(group::GroupCmd),
    /// Replication links into this cluster's streams: add, list (state and lag), pause,
    /// resume, remove.
    #[command(subcommand)]
    Upstream(upstream::UpstreamCmd),
    /// Measure throughput and latency: produce, consume, or e2e (both at once).
    Bench(tributary_bench::BenchArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(*args).await,
            Command::Volume(c) => admin::volume(&cli.global, c).await,
            Command::Stream(c) => admin::stream(&cli.global, c).await,
            Command::Topic(c) => admin::topic(&cli.global, c).await,
            Command::Cluster(c) => admin::cluster(&cli.global, c).await,
            Command::User(c) => admin::user(&cli.global, c).await,
            Command::Admin(c) => backup::run(&cli.global, c).await,
            Command::Produce(args) => produce::run(&cli.global, args).await,
            Command::Consume(args) => consume::run(&cli.global, args).await,
            Command::Group(c) => group::run(&cli.global, c).await,
            Command::Upstream(c) => upstream::run(&cli.global, c).await,
            Command::Bench(args) => {
                let g = &cli.global;
                let kafka = match (args.protocol, args.embedded) {
                    (tributary_bench::Protocol::Kafka, false) => {
                        Some(tributary_bench::KafkaTarget {
                            bootstrap: match &args.kafka_bootstrap {
                                Some(b) => b.clone(),
                                None => kafka_bootstrap_of(&g.server)?,
                            },
                            token: g.token()?,
                        })
                    }
                    _ => None,
                };
                let report =
                    tributary_bench::run(&args, async || Ok(g.connect().await?), kafka).await?;
                if g.json {
                    output::json(&report.to_json());
                } else {
                    print!("{report}");
                }
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // A server refusal prints as `CODE: message`, whatever layer it came through.
            match e.downcast_ref::<tonic::Status>() {
                Some(s) => eprintln!("error: {}", tributary_client::Error::from(s.clone())),
                None => eprintln!("error: {e:#}"),
            }
            std::process::ExitCode::FAILURE
        }
    }
}

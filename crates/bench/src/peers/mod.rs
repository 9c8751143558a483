//! The same workloads against real peers on the same machine, for side-by-side figures:
//! NATS JetStream (`nats.rs`) and Redis Streams (`redis.rs`). Each peer gets the load,
//! pacing, windows and histograms of `tributary bench`, with its own best way to batch
//! (many publishes in flight for NATS, deep `XADD` pipelines for Redis). The binary
//! `tributary-bench-peers` runs them; `bench/compare.sh` starts the servers and alternates
//! the systems.
//!
//! A bench log (a topic partition for Tributary) is a JetStream stream or a Redis stream key
//! of its own, created for the run and deleted after it. Peers have no keyed routing, so
//! `--keyed` is refused, and no embedded mode.

mod nats;
mod redis;

use clap::ValueEnum;

use crate::{BenchArgs, Error, Report, Result, load};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Peer {
    /// NATS JetStream (file storage), through async-nats.
    Nats,
    /// Redis Streams (`XADD`/`XREAD`), through the redis crate.
    Redis,
}

impl Peer {
    pub fn name(self) -> &'static str {
        match self {
            Peer::Nats => "nats",
            Peer::Redis => "redis",
        }
    }

    /// Where the peer listens by default.
    pub fn default_url(self) -> &'static str {
        match self {
            Peer::Nats => "nats://127.0.0.1:4222",
            Peer::Redis => "redis://127.0.0.1:6379",
        }
    }
}

/// Runs one workload against `peer` at `url`.
pub async fn run(peer: Peer, url: &str, args: &BenchArgs) -> Result<Report> {
    args.validate()?;
    if args.embedded || args.keyed || args.cold {
        return Err(Error::Invalid(format!(
            "--embedded, --keyed and --cold are Tributary's; {} takes none",
            peer.name()
        )));
    }
    let figures = match peer {
        Peer::Nats => {
            let system = nats::Nats::create(url, args).await?;
            finish(load::run(args, &system).await, system.delete().await)?
        }
        Peer::Redis => {
            let system = redis::Redis::create(url, args).await?;
            finish(load::run(args, &system).await, system.delete().await)?
        }
    };
    Ok(Report::new(args, peer.name(), url.to_owned(), figures))
}

/// The run's result, unless it failed; then whether its clean-up did.
fn finish<T>(run: Result<T>, cleaned: Result<()>) -> Result<T> {
    let figures = run?;
    cleaned?;
    Ok(figures)
}

/// A fresh name prefix per run: `bench-` and 12 hex digits.
fn prefix() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("bench-{}", &id[..12])
}

/// Records per read: about one Tributary fetch (4 MiB) worth.
fn read_batch(record_size: usize) -> usize {
    (crate::tributary::FETCH_MAX_BYTES as usize / record_size.max(1)).clamp(1, 65_536)
}

/// Maps a peer client's error to the bench's, saying what was being done.
fn peer<E>(what: impl Into<String>) -> impl FnOnce(E) -> Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    let what = what.into();
    move |e| Error::Peer {
        what,
        source: Box::new(e),
    }
}

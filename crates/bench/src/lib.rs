//! `tributary bench`: measures produce throughput, read throughput and produce-to-delivery
//! latency over the real gRPC path, against a running server or one started in-process.
//!
//! A run creates its own volume (`/bench-<random>`), a stream `/bench-<random>/s` with the
//! asked partitions and durability, and topics `t0..tN`; it deletes the volume at the end.
//! Three workloads:
//!
//! - `produce`: producers send batches as fast as allowed; figures are acknowledged
//!   records per second and the produce-ack latency of each batch.
//! - `consume`: first fills the topics by producing for `--duration` (reported as the
//!   `produce` row), then reads every partition from offset 0 to its end, one fetch loop per
//!   partition, and times that whole read. `--warmup` does not apply to the read.
//! - `e2e`: producers and consumers at once. Each record's value starts with its send time
//!   (8 bytes, nanoseconds since an `Instant` shared in-process), so consumers measure
//!   produce-to-delivery latency per record.
//!
//! Producers: each has its own connection and owns a share of the topic partitions (spread
//! evenly; with more producers than partitions, producers share them). A producer keeps up
//! to `--in-flight` requests outstanding (default 4), taking its partitions round-robin.
//! When it owns fewer partitions than that, two batches of one partition can be in flight
//! together and land in either order, as with Kafka's `max.in.flight > 1` without
//! idempotence; the bench counts records and never depends on their order
//! (`--in-flight 1` keeps strict order).
//!
//! `--rate` paces records on a schedule (record `i` is due at `start + i / rate`, a token
//! bucket that never drops tokens). A record's send time is its due time, so a stall shows
//! up as latency instead of silently lowering the offered load (no coordinated omission).
//! A batch leaves when it is full or `--linger` after its first record was due; without
//! `--rate`, batches are always full and linger plays no part.
//!
//! The load drives a `System` (`system.rs`), so the same code runs against NATS JetStream and
//! Redis Streams ([`peers`], the `tributary-bench-peers` binary) for side-by-side figures.
//!
//! `--protocol kafka` drives the same workloads through the server's Kafka listener with a
//! stock Kafka client (librdkafka; [`kafka`](crate::KafkaTarget)), for the two doors side by
//! side.
//!
//! Figures: latencies are counted for what was *sent* inside the measured window (after
//! `--warmup`, for `--duration`), including what completes after it; throughput counts what
//! *completed* inside the window. MB/s is record values only, in 10^6 bytes.

mod args;
mod embedded;
mod fixture;
mod kafka;
mod load;
pub mod peers;
mod report;
mod system;
mod tributary;

use std::time::Duration;

use tributary_client::Client;

pub use args::{BenchArgs, DurabilityArg, Protocol, Workload};
pub use report::{Latency, Report, Throughput};

/// An error from whatever opened the connection for the bench (for a remote server).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid bench settings: {0}")]
    Invalid(String),

    #[error("connecting to the server")]
    Connect(#[source] BoxError),

    #[error("{what}")]
    Client {
        what: String,
        #[source]
        source: tributary_client::Error,
    },

    /// A peer's client (NATS, Redis) or the Kafka client failed.
    #[error("{what}")]
    Peer {
        what: String,
        #[source]
        source: BoxError,
    },

    #[error("{what}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },

    #[error("the embedded server failed")]
    Server(#[from] tributary_server::Error),

    #[error("a bench task failed")]
    Task(#[from] tokio::task::JoinError),

    /// The run did not add up (lost or duplicated records, a misrouted batch).
    #[error("the run does not add up: {0}")]
    Check(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    fn client(what: impl Into<String>) -> impl FnOnce(tributary_client::Error) -> Error {
        let what = what.into();
        move |source| Error::Client { what, source }
    }
}

/// Where `--protocol kafka` finds a running server's Kafka listener, and the token it
/// signs in with (SASL PLAIN, as the token's user).
#[derive(Debug, Clone)]
pub struct KafkaTarget {
    pub bootstrap: String,
    pub token: Option<String>,
}

/// Runs one benchmark. With `--embedded` it starts its own server on a temporary data
/// directory; otherwise it opens its connections with `connect` (one per producer and per
/// consumer, plus one for setup), and with `--protocol kafka` reaches `kafka`.
pub async fn run(
    args: &BenchArgs,
    connect: impl AsyncFn() -> Result<Client, BoxError>,
    kafka: Option<KafkaTarget>,
) -> Result<Report> {
    args.validate()?;
    if args.embedded {
        let server = embedded::Embedded::start().await?;
        let (url, token) = (server.url.clone(), server.token.clone());
        let kafka = server.kafka.clone().map(|bootstrap| KafkaTarget {
            bootstrap,
            token: Some(token.clone()),
        });
        let result = run_on(
            args,
            "embedded".into(),
            async || {
                Client::connect(&url, Some(&token))
                    .await
                    .map_err(|e| Box::new(e) as BoxError)
            },
            kafka,
        )
        .await;
        let stopped = server.stop().await;
        let report = result?;
        stopped?;
        Ok(report)
    } else {
        run_on(args, "server".into(), connect, kafka).await
    }
}

async fn run_on(
    args: &BenchArgs,
    target: String,
    connect: impl AsyncFn() -> Result<Client, BoxError>,
    kafka: Option<KafkaTarget>,
) -> Result<Report> {
    let admin = connect().await.map_err(Error::Connect)?;
    // Before the fixture: a Kafka run that cannot sign in leaves nothing behind.
    let door = match args.protocol {
        Protocol::Grpc => None,
        Protocol::Kafka => Some(kafka_door(&admin, kafka).await?),
    };
    let fixture = fixture::Fixture::create(&admin, args).await?;
    let system = tributary::Tributary {
        connect: &connect,
        pairs: fixture.pairs.clone().into(),
        keyed: args.keyed,
    };
    let (name, result) = match door {
        None => ("tributary", load::run(args, &system).await),
        Some(door) => (
            "tributary-kafka",
            load::run(args, &kafka::Kafka::new(door, system, args)).await,
        ),
    };
    let deleted = fixture.delete(&admin).await;
    let figures = result?;
    deleted?;
    Ok(Report::new(args, name, target, figures))
}

/// The Kafka client's address and credentials: the token's user, asked of the server.
async fn kafka_door(admin: &Client, kafka: Option<KafkaTarget>) -> Result<kafka::KafkaDoor> {
    let Some(KafkaTarget { bootstrap, token }) = kafka else {
        return Err(Error::Invalid(
            "--protocol kafka: this server has no Kafka listener".into(),
        ));
    };
    let plain = match token {
        None => None,
        Some(token) => {
            let me = admin
                .admin()
                .who_am_i(tributary_proto::v1::WhoAmIRequest {})
                .await
                .map_err(|s| Error::client("asking the server who the token is")(s.into()))?
                .into_inner();
            Some((me.name, token))
        }
    };
    Ok(kafka::KafkaDoor { bootstrap, plain })
}

/// Parses `500ms`, `20s`, `5m` (and combinations like `1m30s`); a bare `0` is zero. The same
/// syntax as every other duration flag of the CLI.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    if s.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration like 500ms, 20s or 5m ({e})"))
}

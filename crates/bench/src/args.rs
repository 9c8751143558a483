//! The flags of `tributary bench`, their defaults and the checks that run before anything is
//! created on the server.

use std::time::Duration;

use clap::{Args, ValueEnum};
use serde_json::{Value, json};

use crate::{Error, Result, parse_duration};

/// Largest request the client sends; a batch must fit with room to spare.
const MAX_BATCH_BYTES: usize = tributary_client::MAX_MESSAGE_BYTES - (1 << 20);

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// Producers only: acknowledged records/s and produce-ack latency.
    Produce,
    /// Fill the topics, then read them from offset 0: read throughput and fetch latency.
    Consume,
    /// Producers and consumers at once: produce-to-delivery latency of every record.
    E2e,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Produce => "produce",
            Workload::Consume => "consume",
            Workload::E2e => "e2e",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DurabilityArg {
    /// fsync the write-ahead log before each acknowledgement.
    Sync,
    /// Acknowledge from the memtable and the write-ahead log in the OS cache.
    Buffered,
}

impl DurabilityArg {
    pub fn name(self) -> &'static str {
        match self {
            DurabilityArg::Sync => "sync",
            DurabilityArg::Buffered => "buffered",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// Tributary's gRPC API, through `tributary-client`.
    Grpc,
    /// The Kafka protocol, through librdkafka (a stock Kafka client).
    Kafka,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::Kafka => "kafka",
        }
    }
}

/// `tributary bench WORKLOAD [flags]`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// What to measure.
    #[arg(value_enum)]
    pub workload: Workload,
    /// Start a server in-process on a temporary data directory (instead of using --server).
    #[arg(long)]
    pub embedded: bool,
    /// Which door the load goes through. The bench's volume, stream and topics are made
    /// over gRPC either way.
    #[arg(long, value_enum, default_value_t = Protocol::Grpc)]
    pub protocol: Protocol,
    /// With --protocol kafka against --server: the server's Kafka listener (default: the
    /// --server host, port 9092).
    #[arg(long, value_name = "HOST:PORT")]
    pub kafka_bootstrap: Option<String>,
    /// Producer connections.
    #[arg(long, default_value_t = 2)]
    pub producers: u32,
    /// Consumer connections (fetch loops, one per partition, are spread over them).
    #[arg(long, default_value_t = 1)]
    pub consumers: u32,
    /// Topics t0..tN in the bench's stream.
    #[arg(long, default_value_t = 1)]
    pub topics: u32,
    /// Partitions per topic.
    #[arg(long, default_value_t = 2)]
    pub partitions: u32,
    /// Bytes of each record's value.
    #[arg(long, default_value_t = 100, value_name = "BYTES")]
    pub record_size: usize,
    /// Most records per produce request.
    #[arg(long, default_value_t = 1000)]
    pub batch_records: usize,
    /// Longest a partial batch waits for more records (only matters with --rate).
    #[arg(long, default_value = "5ms", value_parser = parse_duration)]
    pub linger: Duration,
    /// Give records keys; the server routes them by key (each batch's keys are chosen to
    /// land on the partition the producer owns).
    #[arg(long)]
    pub keyed: bool,
    /// Durability of the bench's stream.
    #[arg(long, value_enum, default_value_t = DurabilityArg::Buffered)]
    pub durability: DurabilityArg,
    /// Offered load in records per second, over all producers (default: as fast as acks
    /// come back).
    #[arg(long, value_name = "RECORDS_PER_SEC")]
    pub rate: Option<u64>,
    /// Measured time.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Time run before measuring starts.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Produce requests each producer keeps outstanding.
    #[arg(long, default_value_t = 4)]
    pub in_flight: usize,
    /// consume: read from the disk, not from memory. Between the fill and the read, the
    /// server flushes its memtables into a checkpoint in the temp directory (hard links to
    /// its files: the server must be on this machine and file system), and through those
    /// links its files are written back and evicted from the page cache
    /// (`POSIX_FADV_DONTNEED`); the links are removed at once.
    #[arg(long)]
    pub cold: bool,
}

impl BenchArgs {
    /// Every topic partition, topic-major: pair `i` is topic `i / partitions`, partition
    /// `i % partitions`.
    pub(crate) fn pairs(&self) -> usize {
        self.topics as usize * self.partitions as usize
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::Invalid(m.into()));
        if self.producers == 0 || self.consumers == 0 || self.topics == 0 || self.partitions == 0 {
            return bad("--producers, --consumers, --topics and --partitions must be at least 1");
        }
        if self.batch_records == 0 || self.in_flight == 0 {
            return bad("--batch-records and --in-flight must be at least 1");
        }
        if self.cold && self.workload != Workload::Consume {
            return bad("--cold is for the consume workload");
        }
        if self.kafka_bootstrap.is_some() && (self.protocol != Protocol::Kafka || self.embedded) {
            return bad("--kafka-bootstrap is for --protocol kafka against --server");
        }
        if self.rate == Some(0) {
            return bad("--rate must be at least 1 record per second");
        }
        if self.duration.is_zero() {
            return bad("--duration must be more than 0");
        }
        if self.workload == Workload::E2e && self.record_size < 8 {
            return bad("e2e needs --record-size of at least 8 (the send timestamp)");
        }
        // Each record costs a few bytes of framing besides its value (and key).
        let per_record = self.record_size + 32;
        if self.batch_records.saturating_mul(per_record) > MAX_BATCH_BYTES {
            return Err(Error::Invalid(format!(
                "a batch of {} records of {} bytes exceeds the {} MiB request limit",
                self.batch_records,
                self.record_size,
                MAX_BATCH_BYTES >> 20
            )));
        }
        Ok(())
    }

    /// The parameters, as the JSON report carries them.
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "producers": self.producers,
            "consumers": self.consumers,
            "topics": self.topics,
            "partitions": self.partitions,
            "record_size": self.record_size,
            "batch_records": self.batch_records,
            "linger_ms": self.linger.as_secs_f64() * 1e3,
            "keyed": self.keyed,
            "cold": self.cold,
            "durability": self.durability.name(),
            "protocol": self.protocol.name(),
            "rate": self.rate,
            "duration_s": self.duration.as_secs_f64(),
            "warmup_s": self.warmup.as_secs_f64(),
            "in_flight": self.in_flight,
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let a = Cli::parse_from(["bench", "produce"]).bench;
        assert_eq!(a.workload, Workload::Produce);
        assert!(!a.embedded && !a.keyed);
        assert_eq!(
            (a.protocol, a.kafka_bootstrap.as_deref()),
            (Protocol::Grpc, None)
        );
        assert_eq!(
            (a.producers, a.consumers, a.topics, a.partitions),
            (2, 1, 1, 2)
        );
        assert_eq!(
            (a.record_size, a.batch_records, a.in_flight),
            (100, 1000, 4)
        );
        assert_eq!(a.linger, Duration::from_millis(5));
        assert_eq!(a.durability, DurabilityArg::Buffered);
        assert_eq!(a.rate, None);
        assert_eq!(a.duration, Duration::from_secs(10));
        assert_eq!(a.warmup, Duration::from_secs(2));
        a.validate().unwrap();
    }

    #[test]
    fn flags_parse_and_bad_settings_are_refused() {
        let a = Cli::parse_from([
            "bench",
            "e2e",
            "--embedded",
            "--record-size",
            "1024",
            "--durability",
            "sync",
            "--rate",
            "50000",
            "--duration",
            "1m30s",
            "--warmup",
            "0",
            "--linger",
            "500ms",
        ])
        .bench;
        assert_eq!(a.workload, Workload::E2e);
        assert_eq!(a.durability, DurabilityArg::Sync);
        assert_eq!(a.rate, Some(50_000));
        assert_eq!(a.duration, Duration::from_secs(90));
        assert_eq!(a.warmup, Duration::ZERO);
        a.validate().unwrap();

        let small = Cli::parse_from(["bench", "e2e", "--record-size", "4"]).bench;
        assert!(matches!(small.validate(), Err(Error::Invalid(_))));
        let huge = Cli::parse_from(["bench", "produce", "--record-size", "1000000"]).bench;
        assert!(matches!(huge.validate(), Err(Error::Invalid(_))));
        assert!(Cli::try_parse_from(["bench", "produce", "--duration", "soon"]).is_err());

        let k = Cli::parse_from(["bench", "consume", "--protocol", "kafka"]).bench;
        assert_eq!(k.protocol, Protocol::Kafka);
        k.validate().unwrap();
        let stray = Cli::parse_from(["bench", "produce", "--kafka-bootstrap", "h:9092"]).bench;
        assert!(matches!(stray.validate(), Err(Error::Invalid(_))));
    }
}

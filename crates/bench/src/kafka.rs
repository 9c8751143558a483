//! `--protocol kafka`: the same load through the server's Kafka door, driven by a stock
//! Kafka client — librdkafka, through the `rdkafka` crate — so the Kafka path and the gRPC
//! path are measured by the same workloads, windows and histograms.
//!
//! The fixture (volume, stream, topics) is made over gRPC as for `--protocol grpc`; the
//! Kafka client names each topic verbatim (`/volume/stream:topic`). With a token, the
//! client signs in with SASL PLAIN as the token's user.
//!
//! A producer connection is one librdkafka producer. A bench batch is handed to it record by
//! record with its partition, and completes when every record is acknowledged (`acks=all`);
//! librdkafka forms the wire batches itself, up to `--batch-records` records or `--linger`,
//! with `--in-flight` requests outstanding per connection, as an application tunes it.
//! A reader is a librdkafka consumer assigned one partition from offset 0 (no group
//! membership, no commits), polled on a thread of its own that hands record values over a channel.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tributary_client::{Client, Record};

use crate::fixture::Pair;
use crate::system::{self, System};
use crate::tributary::{FETCH_MAX_BYTES, Tributary};
use crate::{BenchArgs, BoxError, Error, Result};

/// Where and as whom the Kafka client connects.
#[derive(Debug, Clone)]
pub struct KafkaDoor {
    /// The Kafka listener, `HOST:PORT`.
    pub bootstrap: String,
    /// SASL PLAIN credentials (user name, token); none on an anonymous server.
    pub plain: Option<(String, String)>,
}

/// Chunks of record values a consumer thread may have ready ahead of the reader.
const READ_AHEAD: usize = 16;

/// The run's fixture reached through the Kafka door; `grpc` names the pairs and cools the
/// server for `--cold`.
pub(crate) struct Kafka<'a, F> {
    door: KafkaDoor,
    grpc: Tributary<'a, F>,
    producer: ClientConfig,
}

impl<'a, F> Kafka<'a, F> {
    pub fn new(door: KafkaDoor, grpc: Tributary<'a, F>, args: &BenchArgs) -> Self {
        let mut producer = base(&door);
        // Room for every producer's outstanding batches: a full queue is an error here.
        let queued = (2 * args.in_flight * args.batch_records).max(100_000);
        producer
            .set("acks", "all")
            .set("enable.idempotence", "false")
            .set("compression.type", "none")
            .set("linger.ms", args.linger.as_millis().to_string())
            .set("batch.num.messages", args.batch_records.to_string())
            .set("queue.buffering.max.messages", queued.to_string())
            .set(
                "max.in.flight.requests.per.connection",
                args.in_flight.to_string(),
            );
        Kafka {
            door,
            grpc,
            producer,
        }
    }
}

/// Settings every client of the run shares.
fn base(door: &KafkaDoor) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &door.bootstrap)
        .set("client.id", "tributary-bench");
    if let Some((user, token)) = &door.plain {
        c.set("security.protocol", "SASL_PLAINTEXT")
            .set("sasl.mechanisms", "PLAIN")
            .set("sasl.username", user)
            .set("sasl.password", token);
    }
    c
}

fn kafka_error(what: String) -> impl FnOnce(KafkaError) -> Error {
    move |e| Error::Peer {
        what,
        source: Box::new(e),
    }
}

impl<F: AsyncFn() -> Result<Client, BoxError>> System for Kafka<'_, F> {
    type Conn = Conn;

    async fn connect(&self) -> Result<Conn> {
        let producer: FutureProducer = self.producer.create().map_err(kafka_error(format!(
            "starting a Kafka producer for {}",
            self.door.bootstrap
        )))?;
        Ok(Conn {
            producer,
            consumer: base(&self.door),
            pairs: self.grpc.pairs.clone(),
        })
    }

    fn pairs(&self) -> usize {
        self.grpc.pairs.len()
    }

    async fn cool(&self) -> Result<()> {
        self.grpc.cool().await
    }
}

#[derive(Clone)]
pub(crate) struct Conn {
    producer: FutureProducer,
    consumer: ClientConfig,
    pairs: Arc<[Pair]>,
}

impl system::Conn for Conn {
    type Reader = Fetcher;

    fn produce(
        &self,
        pair: usize,
        records: Vec<Record>,
    ) -> impl Future<Output = Result<()>> + Send + 'static + use<> {
        let producer = self.producer.clone();
        let Pair { topic, partition } = self.pairs[pair].clone();
        async move {
            let at = || format!("producing to {topic} partition {partition} over Kafka");
            let p = partition as i32;
            let mut acks = Vec::with_capacity(records.len());
            for r in &records {
                let mut fr = FutureRecord::<[u8], [u8]>::to(&topic).partition(p);
                if let Some(value) = &r.value {
                    fr = fr.payload(&value[..]);
                }
                if let Some(key) = &r.key {
                    fr = fr.key(&key[..]);
                }
                let ack = producer
                    .send_result(fr)
                    .map_err(|(e, _)| kafka_error(at())(e))?;
                acks.push(ack);
            }
            for ack in acks {
                let delivered = ack
                    .await
                    .map_err(|_| Error::Check(format!("{}: the producer went away", at())))?;
                let d = delivered.map_err(|(e, _)| kafka_error(at())(e))?;
                if d.partition != p || d.offset < 0 {
                    return Err(Error::Check(format!(
                        "{}: a record was acknowledged at partition {} offset {}",
                        at(),
                        d.partition,
                        d.offset
                    )));
                }
            }
            Ok(())
        }
    }

    async fn reader(&self, pair: usize) -> Result<Fetcher> {
        let Pair { topic, partition } = self.pairs[pair].clone();
        Ok(Fetcher {
            config: self.consumer.clone(),
            topic,
            partition,
            values: None,
        })
    }

    fn describe(&self, pair: usize) -> String {
        let p = &self.pairs[pair];
        format!("{} partition {} (Kafka)", p.topic, p.partition)
    }
}

/// A reader of one partition from offset 0, started by its first read (which knows the
/// long-poll wait).
pub(crate) struct Fetcher {
    config: ClientConfig,
    topic: Arc<str>,
    partition: u32,
    values: Option<mpsc::Receiver<Result<Vec<Bytes>>>>,
}

impl Fetcher {
    fn start(&self, wait: Duration) -> Result<mpsc::Receiver<Result<Vec<Bytes>>>> {
        let what = format!(
            "consuming {} partition {} over Kafka",
            self.topic, self.partition
        );
        // librdkafka wants a group even for assigned partitions; one in the bench's own
        // stream (a verbatim `/volume/stream:group`), never joined nor committed to.
        let stream = self.topic.rsplit_once(':').map_or(&*self.topic, |(s, _)| s);
        let consumer: BaseConsumer = self
            .config
            .clone()
            .set("group.id", format!("{stream}:bench-reader"))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("fetch.wait.max.ms", wait.as_millis().max(1).to_string())
            .set("fetch.max.bytes", FETCH_MAX_BYTES.to_string())
            .set("max.partition.fetch.bytes", FETCH_MAX_BYTES.to_string())
            .create()
            .map_err(kafka_error(what.clone()))?;
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(&self.topic, self.partition as i32, Offset::Beginning)
            .and_then(|()| consumer.assign(&assignment))
            .map_err(kafka_error(what.clone()))?;
        let (tx, rx) = mpsc::channel(READ_AHEAD);
        std::thread::Builder::new()
            .name("bench-kafka-read".into())
            .spawn(move || poll_loop(consumer, tx, what))
            .map_err(|source| Error::Io {
                what: "starting a Kafka consumer thread",
                source,
            })?;
        Ok(rx)
    }
}

/// Records handed over per chunk, at most.
const CHUNK: usize = 4096;

/// Polls until the reader goes away, handing values over in chunks: whatever is ready
/// after the first record, up to [`CHUNK`].
fn poll_loop(consumer: BaseConsumer, tx: mpsc::Sender<Result<Vec<Bytes>>>, what: String) {
    let value = |m: &rdkafka::message::BorrowedMessage<'_>| {
        Bytes::copy_from_slice(m.payload().unwrap_or_default())
    };
    while !tx.is_closed() {
        let chunk = match consumer.poll(Duration::from_millis(100)) {
            None => continue,
            Some(Err(e)) => Err(kafka_error(what.clone())(e)),
            Some(Ok(first)) => {
                let mut chunk = vec![value(&first)];
                drop(first);
                let mut failed = None;
                while chunk.len() < CHUNK {
                    match consumer.poll(Duration::ZERO) {
                        None => break,
                        Some(Ok(m)) => chunk.push(value(&m)),
                        Some(Err(e)) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
                match failed {
                    // The records before the error are delivered first.
                    Some(e) => {
                        if tx.blocking_send(Ok(chunk)).is_err() {
                            return;
                        }
                        Err(kafka_error(what.clone())(e))
                    }
                    None => Ok(chunk),
                }
            }
        };
        let stop = chunk.is_err();
        if tx.blocking_send(chunk).is_err() || stop {
            return;
        }
    }
}

impl system::Reader for Fetcher {
    async fn read(&mut self, wait: Duration) -> Result<Vec<Bytes>> {
        if self.values.is_none() {
            self.values = Some(self.start(wait)?);
        }
        let values = self.values.as_mut().expect("started above");
        let first = match tokio::time::timeout(wait, values.recv()).await {
            Err(_elapsed) => return Ok(Vec::new()),
            Ok(None) => {
                return Err(Error::Check(format!(
                    "the Kafka consumer of {} partition {} stopped",
                    self.topic, self.partition
                )));
            }
            Ok(Some(chunk)) => chunk?,
        };
        let mut out = first;
        while let Ok(more) = values.try_recv() {
            out.extend(more?);
        }
        Ok(out)
    }
}

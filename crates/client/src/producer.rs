//! The batching producer: records accumulate per partition and go out when a batch is
//! full or has waited `linger`; with idempotence (the default) each batch carries the
//! producer id and the partition's sequence, so retries after a lost response are
//! acknowledged with the original offsets instead of being appended twice.
//!
//! Records are partitioned here, with the server's own partitioner
//! (`tributary_core::partitioner`: Kafka's murmur2 of the key, the empty key included;
//! records with a null key stick to one partition per batch, round-robin), since a retry
//! must go to the partition the first try went to. One request per partition is in flight
//! at a time, so records of a partition are appended in the order they were sent.
//!
//! A topic's partition count is asked once (`GetPartitions`) and then followed: every
//! produce response carries the count, and the count is asked again when it is older than
//! `ProducerConfig::metadata_max_age`. Once a topic has grown, keyed records are routed with
//! the new count, so a key may move to another partition (as in Kafka): records of a key
//! sent before and after the change are ordered within each partition, not across them.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tributary_core::batch::record_size;
use tributary_core::partitioner::partition_for;
use tributary_proto::v1;

use crate::{Client, Error, Record, RecordBatch, Result};

/// How a [`Producer`] batches and retries.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// How long a record may wait for more to fill its batch.
    pub linger: Duration,
    /// A batch is sent once it holds this many bytes of records.
    pub batch_bytes: usize,
    /// Attempts per batch for retriable failures (unavailable, timeouts, lost responses).
    pub retries: u32,
    pub retry_backoff: Duration,
    /// Idempotent produce: retries never duplicate.
    pub idempotent: bool,
    /// Each request's deadline.
    pub request_timeout: Duration,
    /// A topic's partition count is asked again once it is this old (Kafka's
    /// `metadata.max.age.ms`). Produce responses carry the count too, so this only matters
    /// for a server that does not send it.
    pub metadata_max_age: Duration,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        Self {
            linger: Duration::from_millis(5),
            batch_bytes: 1 << 20,
            retries: 20,
            retry_backoff: Duration::from_millis(100),
            idempotent: true,
            request_timeout: Duration::from_secs(30),
            metadata_max_age: Duration::from_secs(300),
        }
    }
}

/// Where an acknowledged record went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub partition: u32,
    pub offset: u64,
}

type Ack = oneshot::Sender<Result<Delivery, String>>;

enum Cmd {
    Send {
        topic: String,
        record: Record,
        ack: Ack,
    },
    Flush(oneshot::Sender<()>),
}

/// A batching, retrying producer over one connection. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Producer {
    tx: mpsc::Sender<Cmd>,
}

impl Producer {
    pub async fn new(client: Client, config: ProducerConfig) -> Result<Producer> {
        let producer_id = if config.idempotent {
            Some(init(&client, config.request_timeout).await?)
        } else {
            None
        };
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(
            Batcher {
                client,
                config,
                producer_id,
                needs_new_id: false,
                topics: HashMap::new(),
                pending_flushes: Vec::new(),
            }
            .run(rx),
        );
        Ok(Producer { tx })
    }

    /// Queues a record; the returned receiver resolves once it is acknowledged (or failed
    /// for good, with the reason).
    pub async fn send(
        &self,
        topic: &str,
        record: Record,
    ) -> Result<oneshot::Receiver<Result<Delivery, String>>> {
        let (ack, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Send {
                topic: topic.to_owned(),
                record,
                ack,
            })
            .await
            .map_err(|_| closed())?;
        Ok(rx)
    }

    /// Sends everything queued now and waits until all of it is acknowledged or failed.
    pub async fn flush(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Cmd::Flush(tx)).await.map_err(|_| closed())?;
        rx.await.map_err(|_| closed())
    }
}

fn closed() -> Error {
    Error::Status(tonic::Status::cancelled("the producer has stopped"))
}

async fn init(client: &Client, timeout: Duration) -> Result<u64> {
    let mut producer = client.producer();
    let call = producer.init_producer(v1::InitProducerRequest {});
    Ok(within(timeout, call).await?.into_inner().producer_id)
}

/// A call with a deadline kept here, not only sent to the server (`grpc-timeout`): a call
/// whose connection died with no word, or that never got one, must not wait forever.
/// Past the deadline it is `DEADLINE_EXCEEDED`, which is retried.
async fn within<T>(
    timeout: Duration,
    call: impl std::future::Future<Output = Result<T, tonic::Status>>,
) -> Result<T, tonic::Status> {
    tokio::time::timeout(timeout, call)
        .await
        .unwrap_or_else(|_| {
            Err(tonic::Status::deadline_exceeded(format!(
                "no answer within {timeout:?}"
            )))
        })
}

struct Batcher {
    client: Client,
    config: ProducerConfig,
    producer_id: Option<u64>,
    /// The id's sequences can no longer be trusted (a batch's outcome is unknown, or the
    /// server forgot the id): nothing is sent until a new id replaces it.
    needs_new_id: bool,
    topics: HashMap<String, TopicState>,
    pending_flushes: Vec<oneshot::Sender<()>>,
}

struct TopicState {
    partitions: u32,
    /// When `partitions` was last learned from the server.
    learned: Instant,
    sticky: u32,
    parts: HashMap<u32, PartState>,
}

#[derive(Default)]
struct PartState {
    next_seq: u64,
    open: Vec<(Record, Ack)>,
    open_bytes: usize,
    open_since: Option<Instant>,
    in_flight: bool,
}

/// The outcome of one batch's request, back to the batcher.
struct Done {
    topic: String,
    partition: u32,
    /// The producer id the batch was sent under.
    producer_id: Option<u64>,
    records: u32,
    /// The producer id must be replaced: its state expired on the server, or the batch
    /// failed for good without an answer, so it may yet be appended under its sequence.
    stale_producer: bool,
    /// The topic's partition count, as the response told it.
    partitions: Option<u32>,
}

impl Batcher {
    async fn run(mut self, mut rx: mpsc::Receiver<Cmd>) {
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
        loop {
            let next_linger = self.next_linger();
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(Cmd::Send { topic, record, ack }) => self.enqueue(topic, record, ack).await,
                    Some(Cmd::Flush(tx)) => self.pending_flushes.push(tx),
                    None if self.idle() => return,
                    None => {}
                },
                Some(d) = done_rx.recv() => {
                    let current = d.producer_id == self.producer_id;
                    if d.stale_producer && current {
                        self.needs_new_id = true;
                    }
                    if let (Some(t), Some(n)) = (self.topics.get_mut(&d.topic), d.partitions) {
                        t.learn(n);
                    }
                    if let Some(p) = self.topics.get_mut(&d.topic).and_then(|t| t.parts.get_mut(&d.partition)) {
                        p.in_flight = false;
                        // Sequences under a replaced id no longer count.
                        if current {
                            p.next_seq += u64::from(d.records);
                        }
                    }
                }
                _ = sleep_until(next_linger) => {}
            }
            if self.needs_new_id {
                self.reinit().await;
            }
            self.dispatch(&done_tx);
            if self.idle() {
                for f in self.pending_flushes.drain(..) {
                    let _ = f.send(());
                }
            }
        }
    }

    fn idle(&self) -> bool {
        self.topics
            .values()
            .flat_map(|t| t.parts.values())
            .all(|p| !p.in_flight && p.open.is_empty())
    }

    fn next_linger(&self) -> Option<Instant> {
        self.topics
            .values()
            .flat_map(|t| t.parts.values())
            .filter(|p| !p.in_flight)
            .filter_map(|p| p.open_since)
            .min()
            .map(|t| t + self.config.linger)
    }

    async fn enqueue(&mut self, topic: String, record: Record, ack: Ack) {
        let max_age = self.config.metadata_max_age;
        match self.topics.get_mut(&topic) {
            None => match self.partitions(&topic).await {
                Ok(partitions) => {
                    self.topics.insert(
                        topic.clone(),
                        TopicState {
                            partitions,
                            learned: Instant::now(),
                            sticky: 0,
                            parts: HashMap::new(),
                        },
                    );
                }
                Err(s) => {
                    let _ = ack.send(Err(Error::from(s).to_string()));
                    return;
                }
            },
            Some(t) if t.learned.elapsed() >= max_age => {
                // Kept as it is when the server cannot be asked: it is asked again next time.
                t.learned = Instant::now();
                if let Ok(n) = self.partitions(&topic).await {
                    self.topics.get_mut(&topic).expect("present").learn(n);
                }
            }
            Some(_) => {}
        }
        let t = self.topics.get_mut(&topic).expect("inserted above");
        let partition = partition_for(record.key.as_deref(), t.partitions).unwrap_or(t.sticky);
        let p = t.parts.entry(partition).or_default();
        p.open_bytes += record_size(&record) + 16;
        p.open_since.get_or_insert_with(Instant::now);
        p.open.push((record, ack));
    }

    /// A topic's partition count from the server, retrying what may pass.
    async fn partitions(&self, topic: &str) -> Result<u32, tonic::Status> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut producer = self.client.producer();
            let call = producer.get_partitions(v1::GetPartitionsRequest {
                topic: topic.to_owned(),
            });
            match within(self.config.request_timeout, call).await {
                Err(s) if retriable(&s) && attempt <= self.config.retries => {
                    tokio::time::sleep(self.config.retry_backoff * attempt.min(10)).await;
                }
                r => break r.map(|r| r.into_inner().partitions.max(1)),
            }
        }
    }

    /// Sends every partition's open batch that is full, lingered long enough, or flushed.
    fn dispatch(&mut self, done: &mpsc::UnboundedSender<Done>) {
        if self.needs_new_id {
            return;
        }
        let now = Instant::now();
        let flushing = !self.pending_flushes.is_empty();
        for (topic, t) in &mut self.topics {
            let mut sent_sticky = false;
            for (&partition, p) in &mut t.parts {
                if p.in_flight || p.open.is_empty() {
                    continue;
                }
                let due = flushing
                    || p.open_bytes >= self.config.batch_bytes
                    || p.open_since.is_some_and(|s| now >= s + self.config.linger);
                if !due {
                    continue;
                }
                sent_sticky |= partition == t.sticky;
                let batch = std::mem::take(&mut p.open);
                p.open_bytes = 0;
                p.open_since = None;
                p.in_flight = true;
                tokio::spawn(send_batch(
                    self.client.clone(),
                    self.config.clone(),
                    topic.clone(),
                    partition,
                    self.producer_id.map(|id| (id, p.next_seq)),
                    batch,
                    done.clone(),
                ));
            }
            if sent_sticky {
                t.sticky = (t.sticky + 1) % t.partitions;
            }
        }
    }

    /// Replaces the producer id, whose sequences can no longer be trusted, and starts
    /// every partition's sequence over. Batches still in flight under the old id finish
    /// on their own; their outcome no longer moves a sequence. When no new id can be had,
    /// the open records fail with the reason, and the next record tries again.
    async fn reinit(&mut self) {
        let mut attempt = 0;
        let outcome = loop {
            attempt += 1;
            match init(&self.client, self.config.request_timeout).await {
                Err(Error::Status(s)) if retriable(&s) && attempt <= self.config.retries => {
                    tokio::time::sleep(self.config.retry_backoff * attempt.min(10)).await;
                }
                r => break r,
            }
        };
        match outcome {
            Ok(id) => {
                self.producer_id = Some(id);
                self.needs_new_id = false;
                for p in self.topics.values_mut().flat_map(|t| t.parts.values_mut()) {
                    p.next_seq = 0;
                }
            }
            Err(e) => {
                let msg = format!("no new producer id: {e}");
                for p in self.topics.values_mut().flat_map(|t| t.parts.values_mut()) {
                    for (_, ack) in p.open.drain(..) {
                        let _ = ack.send(Err(msg.clone()));
                    }
                    p.open_bytes = 0;
                    p.open_since = None;
                }
            }
        }
    }
}

impl TopicState {
    /// Takes the server's partition count: keyed records go by it from now on.
    fn learn(&mut self, partitions: u32) {
        self.learned = Instant::now();
        if partitions > 0 && partitions != self.partitions {
            self.partitions = partitions;
            self.sticky %= partitions;
        }
    }
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Sends one batch, retrying retriable failures with the same sequence, and resolves its
/// records' acknowledgements.
async fn send_batch(
    client: Client,
    config: ProducerConfig,
    topic: String,
    partition: u32,
    producer: Option<(u64, u64)>,
    batch: Vec<(Record, Ack)>,
    done: mpsc::UnboundedSender<Done>,
) {
    let (records, acks): (Vec<Record>, Vec<Ack>) = batch.into_iter().unzip();
    let count = records.len() as u32;
    let req = v1::ProduceRequest {
        topic: topic.clone(),
        partition: Some(partition),
        batch: Some(RecordBatch {
            records,
            ..Default::default()
        }),
        producer: producer.map(|(id, seq)| v1::ProducerSequence {
            producer_id: id,
            epoch: 0,
            sequence: seq,
        }),
        ..Default::default()
    };
    let mut attempt = 0;
    let outcome = loop {
        let mut r = tonic::Request::new(req.clone());
        r.set_timeout(config.request_timeout);
        let mut producer = client.producer();
        match within(config.request_timeout, producer.produce(r)).await {
            Ok(resp) => break Ok(resp.into_inner()),
            // Over a rate quota: nothing was written; wait as told, without using a retry.
            Err(s) if crate::retry_after(&s).is_some() => {
                tokio::time::sleep(crate::retry_after(&s).unwrap_or_default()).await;
            }
            Err(s) if retriable(&s) && attempt < config.retries => {
                attempt += 1;
                tokio::time::sleep(config.retry_backoff * attempt.min(10)).await;
            }
            Err(s) => break Err(s),
        }
    };
    let partitions = outcome
        .as_ref()
        .ok()
        .map(|r| r.partitions)
        .filter(|&n| n > 0);
    let (appended, stale) = match outcome {
        Ok(resp) => {
            let base = resp.acks.first().map_or(0, |a| a.base_offset);
            for (i, ack) in acks.into_iter().enumerate() {
                let _ = ack.send(Ok(Delivery {
                    partition,
                    offset: base + i as u64,
                }));
            }
            (count, false)
        }
        Err(s) => {
            // Forgotten by the server, or the outcome is unknown (the batch may still be
            // appended under this sequence): the next batches start over under a new id.
            let forgotten = s.code() == tonic::Code::FailedPrecondition
                && s.message().contains("no state on partition");
            let stale = forgotten || (producer.is_some() && retriable(&s));
            let msg = Error::from(s).to_string();
            for ack in acks {
                let _ = ack.send(Err(msg.clone()));
            }
            (0, stale)
        }
    };
    let _ = done.send(Done {
        topic,
        partition,
        producer_id: producer.map(|(id, _)| id),
        records: appended,
        stale_producer: stale,
        partitions,
    });
}

/// Failures after which the same request may succeed: the server or the network was away.
fn retriable(s: &tonic::Status) -> bool {
    use tonic::Code::*;
    matches!(
        s.code(),
        Unavailable | DeadlineExceeded | Unknown | Cancelled | Aborted | Internal
    )
}

//! NATS JetStream driven through `async-nats`: one file-backed stream per bench log, a
//! batch is that many publishes sent back to back with their acks awaited together, so up
//! to `--in-flight` × `--batch-records` publishes are in flight per producer (4,000 by
//! default: NATS's own benchmarks use 4,096). Reads use an ephemeral pull consumer without
//! acks, pulling about 4 MiB at a time like Tributary's fetches.
//!
//! Durability is the server's: `sync_interval: always` in its `jetstream` block fsyncs
//! before each ack (`bench/compare.sh` starts the server that way for `--durability sync`);
//! the default (2 minutes) acknowledges from the page cache.

use std::sync::Arc;
use std::time::Duration;

use async_nats::Subject;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::{self, stream};
use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use tributary_client::Record;

use super::{peer, prefix, read_batch};
use crate::system::{self, System};
use crate::{BenchArgs, Error, Result};

/// How long a JetStream API call or a publish ack may take before it is an error.
const TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) struct Nats {
    url: String,
    /// The context the streams were created with.
    admin: jetstream::Context,
    streams: Arc<[String]>,
    subjects: Arc<[Subject]>,
    in_flight: usize,
    read_batch: usize,
}

impl Nats {
    /// Connects and creates one file-backed stream per log.
    pub async fn create(url: &str, args: &BenchArgs) -> Result<Nats> {
        let in_flight = args.in_flight * args.batch_records;
        let admin = context(url, in_flight).await?;
        let prefix = prefix();
        let mut streams = Vec::new();
        let mut subjects = Vec::new();
        let mut nats = Nats {
            url: url.to_owned(),
            admin,
            streams: Arc::new([]),
            subjects: Arc::new([]),
            in_flight,
            read_batch: read_batch(args.record_size),
        };
        for i in 0..args.pairs() {
            let name = format!("{prefix}-{i}");
            let subject = format!("{prefix}.{i}");
            let created = nats
                .admin
                .create_stream(stream::Config {
                    name: name.clone(),
                    subjects: vec![subject.clone()],
                    storage: stream::StorageType::File,
                    num_replicas: 1,
                    ..Default::default()
                })
                .await;
            if let Err(e) = created {
                nats.streams = streams.into();
                let _ = nats.delete().await;
                return Err(peer(format!("creating JetStream stream {name}"))(e));
            }
            streams.push(name);
            subjects.push(Subject::from(subject));
        }
        nats.streams = streams.into();
        nats.subjects = subjects.into();
        Ok(nats)
    }

    /// Deletes the run's streams.
    pub async fn delete(&self) -> Result<()> {
        for name in self.streams.iter() {
            self.admin
                .delete_stream(name)
                .await
                .map_err(peer(format!("deleting JetStream stream {name}")))?;
        }
        Ok(())
    }
}

async fn context(url: &str, in_flight: usize) -> Result<jetstream::Context> {
    let client = async_nats::connect(url)
        .await
        .map_err(|e| Error::Connect(Box::new(e)))?;
    Ok(jetstream::ContextBuilder::new()
        .timeout(TIMEOUT)
        .ack_timeout(TIMEOUT)
        .max_ack_inflight(in_flight.max(1))
        .backpressure_on_inflight(true)
        .build(client))
}

impl System for Nats {
    type Conn = Conn;

    async fn connect(&self) -> Result<Conn> {
        Ok(Conn {
            js: context(&self.url, self.in_flight).await?,
            streams: self.streams.clone(),
            subjects: self.subjects.clone(),
            read_batch: self.read_batch,
        })
    }

    fn pairs(&self) -> usize {
        self.streams.len()
    }
}

#[derive(Clone)]
pub(crate) struct Conn {
    js: jetstream::Context,
    streams: Arc<[String]>,
    subjects: Arc<[Subject]>,
    read_batch: usize,
}

impl system::Conn for Conn {
    type Reader = Reader;

    fn produce(
        &self,
        pair: usize,
        records: Vec<Record>,
    ) -> impl Future<Output = Result<()>> + Send + 'static + use<> {
        let js = self.js.clone();
        let subject = self.subjects[pair].clone();
        async move {
            let mut acks = Vec::with_capacity(records.len());
            for r in records {
                let ack = js
                    .publish(subject.clone(), r.value.unwrap_or_default())
                    .await
                    .map_err(peer(format!("publishing to {subject}")))?;
                acks.push(ack);
            }
            for ack in acks {
                ack.await
                    .map_err(peer(format!("waiting for the ack of {subject}")))?;
            }
            Ok(())
        }
    }

    async fn reader(&self, pair: usize) -> Result<Reader> {
        let name = &self.streams[pair];
        let stream = self
            .js
            .get_stream(name)
            .await
            .map_err(peer(format!("opening JetStream stream {name}")))?;
        let consumer = stream
            .create_consumer(pull::Config {
                ack_policy: AckPolicy::None,
                deliver_policy: DeliverPolicy::All,
                inactive_threshold: Duration::from_secs(60),
                ..Default::default()
            })
            .await
            .map_err(peer(format!("creating a consumer on {name}")))?;
        let messages = consumer
            .stream()
            .max_messages_per_batch(self.read_batch)
            .max_bytes_per_batch(crate::tributary::FETCH_MAX_BYTES as usize)
            .heartbeat(Duration::from_secs(5))
            .messages()
            .await
            .map_err(peer(format!("pulling from {name}")))?;
        Ok(Reader {
            name: name.clone(),
            messages,
            max: self.read_batch,
        })
    }

    fn describe(&self, pair: usize) -> String {
        format!("JetStream stream {}", self.streams[pair])
    }
}

pub(crate) struct Reader {
    name: String,
    messages: pull::Stream,
    max: usize,
}

impl system::Reader for Reader {
    async fn read(&mut self, wait: Duration) -> Result<Vec<Bytes>> {
        let first = match tokio::time::timeout(wait, self.messages.next()).await {
            Err(_elapsed) => return Ok(Vec::new()),
            Ok(next) => next,
        };
        let mut values = Vec::new();
        let mut next = first;
        loop {
            match next {
                None => {
                    return Err(Error::Check(format!(
                        "the consumer of {} stopped",
                        self.name
                    )));
                }
                Some(m) => {
                    let m = m.map_err(peer(format!("pulling from {}", self.name)))?;
                    values.push(m.message.payload);
                }
            }
            if values.len() >= self.max {
                break;
            }
            // Whatever has already arrived, without waiting for more.
            match self.messages.next().now_or_never() {
                Some(n) => next = n,
                None => break,
            }
        }
        Ok(values)
    }
}

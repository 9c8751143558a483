//! The data path: produce (routing, validation, quota reservation, one atomic append)
//! and fetch (whole stored batches, long-poll on the high-water mark), for both doors: a
//! Kafka batch is stored as it came, and each door reads stored batches in its own form
//! (design §9).

use std::sync::atomic::Ordering;
use std::time::Duration;

use std::collections::HashMap;

use bytes::Bytes;
use tokio::time::Instant;
use tributary_core::batch::{self, ServerFields};
use tributary_core::kafka_batch;
use tributary_core::limits::check_count;
use tributary_core::names::TopicPath;
use tributary_core::partitioner::partition_for;
use tributary_storage::{
    self as storage, AppendCheck, AppendRequest, NewBatch, ProducerSeq, SequenceSpace,
};

use super::{Namespace, TopicEntry, blocking, not_found_if_dropped, volume_of};
use crate::auth::{Caller, Credential};
use crate::error::SequenceRefusal;
use crate::limits::MAX_PARTITIONS_PER_REQUEST;
use crate::model::Perm;
use crate::{Error, Result};

/// Fetch budget when the request gives none, and the most a request may ask for.
pub const DEFAULT_FETCH_BYTES: usize = 1 << 20;
pub const MAX_FETCH_BYTES: usize = 64 << 20;
/// Longest long-poll a fetch may ask for.
pub const MAX_FETCH_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionAck {
    pub partition: u32,
    pub base_offset: u64,
    pub record_count: u32,
    pub append_time_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProduceResult {
    /// One per partition written, ascending by partition.
    pub acks: Vec<PartitionAck>,
    /// Partition of each record when they went to more than one; else empty.
    pub record_partitions: Vec<u32>,
    /// An idempotent retry: nothing written, original offsets.
    pub duplicate: bool,
    /// The topic's partition count, for clients that partition records themselves.
    pub partitions: u32,
}

/// An idempotent producer's claim on a produce request (see `Producer.Produce`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdempotentSeq {
    pub producer_id: u64,
    pub epoch: u32,
    pub sequence: u64,
}

/// How a produce is routed and what it must find.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProduceOptions {
    /// Every record to this partition; else by key.
    pub partition: Option<u32>,
    pub producer: Option<IdempotentSeq>,
    /// Conditional append: partition -> offset of its last record (-1: empty).
    pub expected_last_offsets: HashMap<u32, i64>,
}

/// What one partition's fetch asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchRead {
    pub partition: u32,
    pub offset: u64,
    /// The byte budget (0: the default); the first batch is returned whatever its size.
    pub max_bytes: usize,
    pub max_wait: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchResult {
    /// Stored batches, byte for byte.
    pub batches: Vec<Bytes>,
    pub high_watermark: u64,
    pub log_start: u64,
    /// Where the next fetch continues (see the storage's `ReadResult::next_offset`).
    pub next_offset: u64,
}

/// The form a door reads stored batches in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `RecordBatch` messages (gRPC): a Kafka batch's records decoded into them.
    Records,
    /// Kafka record batches: stored ones as they are, others encoded.
    Kafka,
}

/// Reads a partition as `store.read` does, each batch in `form`. A batch that grew in
/// its new form (a Kafka batch's records decompressed) still keeps the read within
/// `max_bytes`: the batches past it are left for the next read.
pub(super) fn read_as(
    store: &storage::Store,
    id: storage::PartitionId,
    offset: u64,
    max_bytes: usize,
    expire_before: Option<i64>,
    form: Form,
) -> Result<storage::ReadResult> {
    let mut r = store.read(id, offset, max_bytes, expire_before)?;
    let mut total = 0usize;
    for (i, b) in r.batches.iter_mut().enumerate() {
        b.value = match form {
            Form::Records => batch::as_records(&b.value)?,
            Form::Kafka => batch::as_kafka(&b.value)?,
        };
        total += storage::framed_len(b.value.len());
        if i > 0 && total > max_bytes {
            r.next_offset = b.base_offset;
            r.batches.truncate(i);
            break;
        }
    }
    Ok(r)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    Earliest,
    Latest,
    /// The earliest offset whose timestamp is at or after this (ms since the epoch).
    Timestamp(i64),
}

/// An offset-keeping mirror takes records from its source only.
pub(super) fn refuse_mirror(s: &super::StreamRow, what: &str) -> Result<()> {
    match &s.mirror_of {
        Some(m) => Err(Error::FailedPrecondition(format!(
            "{}: cannot {what} a read-only mirror of {m}; `tributary stream promote {}` \
             makes it writable",
            s.path, s.path
        ))),
        None => Ok(()),
    }
}

impl Namespace {
    /// Reserves `asked` bytes of a volume's byte quota; the caller settles the reservation
    /// with what it stored.
    pub(super) fn reserve_bytes(
        &self,
        volume: &str,
        asked: u64,
    ) -> Result<std::sync::Arc<super::Usage>> {
        let usage = self.usage(volume);
        let limit = self
            .volumes
            .read()
            .get(volume)
            .and_then(|v| v.quotas.max_bytes);
        if let Err(used) = usage
            .bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| match limit {
                Some(l) if used + asked > l => None,
                _ => Some(used + asked),
            })
        {
            return Err(Error::QuotaExceeded {
                volume: volume.into(),
                quota: "bytes",
                limit: limit.unwrap_or(u64::MAX),
                used,
                asked,
            });
        }
        Ok(usage)
    }

    pub async fn produce(
        &self,
        c: &Caller,
        topic: &str,
        partition: Option<u32>,
        encoded: Bytes,
    ) -> Result<ProduceResult> {
        let opts = ProduceOptions {
            partition,
            ..Default::default()
        };
        self.produce_with(c, topic, opts, encoded).await
    }

    /// Produces with the idempotence and conditions of `opts`.
    pub async fn produce_with(
        &self,
        c: &Caller,
        topic: &str,
        opts: ProduceOptions,
        encoded: Bytes,
    ) -> Result<ProduceResult> {
        let path = TopicPath::parse("topic", topic)?;
        if opts.producer.is_some() && opts.partition.is_none() {
            return Err(Error::invalid(
                "partition",
                "an idempotent produce names its partition, so a retry goes where the first try went".into(),
            ));
        }
        if let Some((p, l)) = opts.expected_last_offsets.iter().find(|(_, l)| **l < -1) {
            return Err(Error::invalid(
                &format!("expected_last_offsets[{p}]"),
                format!("{l} is not an offset (-1 means an empty partition)"),
            ));
        }
        let s = self.stream(&path.stream)?;
        self.check(c, &s, Perm::Produce)?;
        refuse_mirror(&s, "produce to")?;
        let produced = batch::validate(encoded, s.attributes.max_message_bytes)?;
        batch::check_keyed(&produced, s.attributes.compact)?;
        // Reserve the bytes first, so a refused produce neither writes nor creates a topic.
        let asked = produced.encoded.len() as u64;
        let usage = self.reserve_bytes(volume_of(&s.path), asked)?;
        let result = self.produce_reserved(&s, &path, &opts, produced).await;
        settle(
            &usage,
            asked,
            result.as_ref().ok().map(|(_, stored)| *stored),
        );
        result.map(|(r, _)| r)
    }

    /// Appends one Kafka record batch to a partition as a Kafka broker does: checked
    /// (`kafka_batch::validate`, within the stream's `max_message_bytes`), reserved against
    /// the volume's byte quota, then stored as it came with the broker's fields set: its base
    /// offset and, under `LogAppendTime`, the append time (design §9). A refusal keeps which
    /// check failed (`Error::InvalidBatch`). Returns the stream's timestamp type with the
    /// ack: Kafka reports the append time only under `LogAppendTime`.
    pub async fn produce_kafka(
        &self,
        c: &Caller,
        topic: &str,
        partition: u32,
        batch: Bytes,
    ) -> Result<(PartitionAck, tributary_core::TimestampType)> {
        let path = TopicPath::parse("topic", topic)?;
        let s = self.stream(&path.stream)?;
        self.check(c, &s, Perm::Produce)?;
        refuse_mirror(&s, "produce to")?;
        let limits = kafka_batch::Limits {
            max_record_bytes: s.attributes.max_message_bytes as usize,
            ..Default::default()
        };
        let checked = kafka_batch::validate(&batch, &limits).map_err(Error::InvalidBatch)?;
        checked
            .check_keyed(s.attributes.compact)
            .map_err(Error::InvalidBatch)?;
        let ts_type = s.attributes.timestamp_type;
        let append_time_ms = self.clock.now_ms();
        let mut kafka = batch.to_vec();
        // The base offset is set once it is known (`batch::stored_value`).
        kafka_batch::finish(
            &mut kafka,
            0,
            ts_type,
            append_time_ms,
            checked.max_timestamp,
        );
        let body = batch::kafka_body(kafka);
        let max_timestamp_ms = match ts_type {
            tributary_core::TimestampType::LogAppendTime => append_time_ms,
            tributary_core::TimestampType::CreateTime => checked.max_timestamp,
        };
        let record_count = checked.header.records_count as u32;
        let producer = kafka_producer(&checked.header);
        let asked = body.len() as u64;
        let usage = self.reserve_bytes(volume_of(&s.path), asked)?;
        let result = async {
            let t = self.produce_topic(&s, &path, Some(partition)).await?;
            let n = t.row.partitions.len() as u32;
            let id = *t
                .row
                .partitions
                .get(partition as usize)
                .ok_or_else(|| Error::NotFound {
                    what: "partition",
                    path: format!("{path} #{partition} (of {n})"),
                })?;
            let stamp = self.stamp(append_time_ms, ts_type);
            let build = move |_: usize, base: u64| NewBatch {
                value: batch::stored_value(&body, &stamp.at(base)),
                record_count,
                append_time_ms,
                max_timestamp_ms,
            };
            let appended = self
                .store
                .submit(AppendRequest {
                    durability: s.attributes.durability.into(),
                    partitions: vec![id],
                    checks: vec![AppendCheck {
                        producer,
                        ..Default::default()
                    }],
                    build: Box::new(build),
                })
                .await
                .map_err(Error::from)
                .map_err(|e| refused_append(e, &path, &t.row.partitions))?;
            let a = appended[0];
            let ack = PartitionAck {
                partition,
                base_offset: a.base_offset,
                record_count: a.record_count,
                append_time_ms: a.append_time_ms,
            };
            Ok((ack, a.bytes))
        }
        .await;
        settle(
            &usage,
            asked,
            result.as_ref().ok().map(|(_, stored)| *stored),
        );
        result.map(|(ack, _)| (ack, ts_type))
    }

    /// The server's fields of batches appended here now.
    fn stamp(&self, append_time_ms: i64, timestamp_type: tributary_core::TimestampType) -> Stamp {
        let identity = self.store.identity();
        Stamp {
            origin: *identity.cluster_id.as_bytes(),
            incarnation: identity.incarnation,
            append_time_ms,
            timestamp_type,
        }
    }

    /// The topic a produce writes to, created first if the stream autocreates topics; a
    /// partition past the topic's count is refused before anything is created.
    async fn produce_topic(
        &self,
        s: &super::StreamRow,
        path: &TopicPath,
        partition: Option<u32>,
    ) -> Result<std::sync::Arc<TopicEntry>> {
        match self.topic(path, false).await {
            Err(Error::NotFound { what: "topic", .. }) if s.attributes.autocreate_topics => {
                // Refuse before creating anything: a failed produce changes nothing.
                let n = s.attributes.default_partitions;
                if let Some(p) = partition.filter(|&p| p >= n) {
                    return Err(Error::NotFound {
                        what: "partition",
                        path: format!("{path} #{p} (of {n})"),
                    });
                }
                self.topic(path, true).await
            }
            t => t,
        }
    }

    /// Routes and appends a validated batch whose bytes are reserved; returns the result
    /// and the bytes stored.
    async fn produce_reserved(
        &self,
        s: &super::StreamRow,
        path: &TopicPath,
        opts: &ProduceOptions,
        produced: batch::Produced,
    ) -> Result<(ProduceResult, u64)> {
        let path = path.clone();
        let partition = opts.partition;
        let t = self.produce_topic(s, &path, partition).await?;
        let n = t.row.partitions.len() as u32;

        // Route: an explicit partition, else murmur2 of a key (an empty one too), else one
        // round-robin pick for the records with a null key.
        let record_partitions: Vec<u32> = match partition {
            Some(p) if p >= n => {
                return Err(Error::NotFound {
                    what: "partition",
                    path: format!("{path} #{p} (of {n})"),
                });
            }
            Some(p) => vec![p; produced.records.len()],
            None => {
                let rr = t.next_partition.fetch_add(1, Ordering::Relaxed) % n;
                produced
                    .records
                    .iter()
                    .map(|r| partition_for(r.key.as_deref(), n).unwrap_or(rr))
                    .collect()
            }
        };
        let first = record_partitions[0];
        let single = record_partitions.iter().all(|&p| p == first);
        let ts_type = s.attributes.timestamp_type;
        let append_time_ms = self.clock.now_ms();
        // One body per partition: the client's own bytes when they all go to one partition.
        let (targets, bodies): (Vec<u32>, Vec<(Bytes, i64)>) = if single {
            let max_ts = batch::max_timestamp(&produced.records, append_time_ms, ts_type);
            (vec![first], vec![(produced.encoded, max_ts)])
        } else {
            let mut groups: std::collections::BTreeMap<u32, Vec<_>> = Default::default();
            for (r, &p) in produced.records.into_iter().zip(&record_partitions) {
                groups.entry(p).or_default().push(r);
            }
            groups
                .into_iter()
                .map(|(p, recs)| {
                    let max_ts = batch::max_timestamp(&recs, append_time_ms, ts_type);
                    (p, (Bytes::from(batch::encode_records(recs)), max_ts))
                })
                .unzip()
        };
        if let Some(p) = opts
            .expected_last_offsets
            .keys()
            .find(|p| !targets.contains(p))
        {
            return Err(Error::invalid(
                &format!("expected_last_offsets[{p}]"),
                format!("the request writes no record to partition {p}"),
            ));
        }
        let counts: Vec<u32> = targets
            .iter()
            .map(|p| record_partitions.iter().filter(|&&q| q == *p).count() as u32)
            .collect();
        let ids: Vec<_> = targets
            .iter()
            .map(|&p| t.row.partitions[p as usize])
            .collect();

        let checks: Vec<AppendCheck> = targets
            .iter()
            .zip(&counts)
            .map(|(p, &record_count)| AppendCheck {
                expect_next_offset: opts
                    .expected_last_offsets
                    .get(p)
                    .map(|&last| (last + 1) as u64),
                producer: opts.producer.map(|s| ProducerSeq {
                    id: s.producer_id,
                    epoch: s.epoch,
                    sequence: s.sequence,
                    record_count,
                    space: SequenceSpace::Tributary,
                }),
            })
            .collect();
        let stamp = self.stamp(append_time_ms, ts_type);
        let durability = s.attributes.durability.into();
        let store = self.store.clone();
        let build = move |i: usize, base: u64| {
            let (body, max_ts) = &bodies[i];
            NewBatch {
                value: batch::stored_value(body, &stamp.at(base)),
                record_count: counts[i],
                append_time_ms,
                max_timestamp_ms: *max_ts,
            }
        };
        let appended = store
            .submit(AppendRequest {
                durability,
                partitions: ids,
                checks,
                build: Box::new(build),
            })
            .await
            .map_err(Error::from)
            .map_err(|e| refused_append(e, &path, &t.row.partitions))?;
        let stored = appended.iter().map(|a| a.bytes).sum();
        let duplicate = appended.iter().any(|a| a.duplicate);
        let acks = targets
            .iter()
            .zip(appended)
            .map(|(&partition, a)| PartitionAck {
                partition,
                base_offset: a.base_offset,
                record_count: a.record_count,
                append_time_ms: a.append_time_ms,
            })
            .collect();
        let result = ProduceResult {
            acks,
            record_partitions: if single { vec![] } else { record_partitions },
            duplicate,
            partitions: n,
        };
        Ok((result, stored))
    }

    /// A new idempotent producer id (any authenticated caller).
    pub async fn init_producer(&self, _c: &Caller) -> Result<u64> {
        let store = self.store.clone();
        blocking(move || Ok(store.allocate_producer_id()?)).await
    }

    /// A topic's partition count for a producer (the produce permission), creating the
    /// topic as a produce would when the stream autocreates topics.
    pub async fn producer_partitions(&self, c: &Caller, topic: &str) -> Result<u32> {
        let path = TopicPath::parse("topic", topic)?;
        let s = self.stream(&path.stream)?;
        self.check(c, &s, Perm::Produce)?;
        let t = match self.topic(&path, false).await {
            Err(Error::NotFound { what: "topic", .. }) if s.attributes.autocreate_topics => {
                self.topic(&path, true).await?
            }
            t => t?,
        };
        Ok(t.row.partitions.len() as u32)
    }

    /// Whole batches from the one holding `offset`, as `RecordBatch` messages; waits up to
    /// `max_wait` when there is nothing at `offset` yet. Takes how the caller authenticated
    /// rather than the caller: it and the consume permission are checked at the start and
    /// again as the fetch waits.
    pub async fn fetch(
        &self,
        credential: &Credential,
        topic: &str,
        partition: u32,
        offset: u64,
        max_bytes: usize,
        max_wait: Duration,
    ) -> Result<FetchResult> {
        let read = FetchRead {
            partition,
            offset,
            max_bytes,
            max_wait,
        };
        self.fetch_as(credential, topic, read, Form::Records).await
    }

    /// [`Namespace::fetch`], each batch in `form`.
    pub async fn fetch_as(
        &self,
        credential: &Credential,
        topic: &str,
        read: FetchRead,
        form: Form,
    ) -> Result<FetchResult> {
        let FetchRead {
            partition,
            offset,
            max_bytes,
            max_wait,
        } = read;
        let path = TopicPath::parse("topic", topic)?;
        let mut access =
            self.hold_access(credential, &*self.stream(&path.stream)?, Perm::Consume)?;
        let t = self.topic(&path, false).await?;
        let id = self.partition_id(&t, &path, partition)?;
        let stream = t.stream.clone();
        let max_bytes = match max_bytes {
            0 => DEFAULT_FETCH_BYTES,
            n => n.min(MAX_FETCH_BYTES),
        };
        let deadline = Instant::now() + max_wait.min(MAX_FETCH_WAIT);
        // Subscribe before reading so an append between the read and the wait is seen.
        let mut hwm = self
            .store
            .watch(id)
            .map_err(|e| not_found_if_dropped(e.into(), &path))?;
        let mut closing = self.closing.subscribe();
        loop {
            hwm.borrow_and_update();
            let store = self.store.clone();
            let cutoff = self.expire_before(&stream);
            let r = blocking(move || read_as(&store, id, offset, max_bytes, cutoff, form))
                .await
                .map_err(|e| match e {
                    Error::Storage(storage::Error::OffsetOutOfRange {
                        offset,
                        log_start,
                        high_watermark,
                    }) => Error::OffsetOutOfRange {
                        path: format!("{path} #{partition}"),
                        offset,
                        log_start,
                        high_watermark,
                    },
                    e => not_found_if_dropped(e, &path),
                })?;
            if !r.batches.is_empty() || Instant::now() >= deadline || *closing.borrow_and_update() {
                // Read, then checked, then returned: why nothing appended after a
                // revocation is returned is in access.rs.
                access.recheck(self)?;
                return Ok(FetchResult {
                    batches: r.batches.into_iter().map(|b| b.value).collect(),
                    high_watermark: r.high_watermark,
                    log_start: r.log_start,
                    next_offset: r.next_offset,
                });
            }
            tokio::select! {
                changed = hwm.changed() => {
                    if changed.is_err() {
                        return Err(Error::NotFound { what: "topic", path: path.to_string() });
                    }
                }
                _ = closing.changed() => {}
                _ = access.due() => access.recheck(self)?,
                _ = tokio::time::sleep_until(deadline) => {} // one last read above, then return
            }
        }
    }

    /// Offsets of the given partitions (all when empty), in the order asked.
    pub async fn list_offsets(
        &self,
        c: &Caller,
        topic: &str,
        partitions: &[u32],
        spec: OffsetSpec,
    ) -> Result<Vec<(u32, u64)>> {
        let found = self.list_offsets_timed(c, topic, partitions, spec).await?;
        Ok(found.into_iter().map(|(p, o)| (p, o.offset)).collect())
    }

    /// [`Namespace::list_offsets`], with the timestamp of the record found by time.
    pub async fn list_offsets_timed(
        &self,
        c: &Caller,
        topic: &str,
        partitions: &[u32],
        spec: OffsetSpec,
    ) -> Result<Vec<(u32, FoundOffset)>> {
        let path = TopicPath::parse("topic", topic)?;
        check_count(
            "partitions",
            "partitions",
            partitions.len(),
            MAX_PARTITIONS_PER_REQUEST,
        )?;
        self.check(c, &*self.stream(&path.stream)?, Perm::Consume)?;
        let t = self.topic(&path, false).await?;
        let wanted: Vec<u32> = if partitions.is_empty() {
            (0..t.row.partitions.len() as u32).collect()
        } else {
            partitions.to_vec()
        };
        let ids = wanted
            .iter()
            .map(|&p| self.partition_id(&t, &path, p))
            .collect::<Result<Vec<_>>>()?;
        let store = self.store.clone();
        let cutoff = self.expire_before(&t.stream);
        let offsets = blocking(move || {
            ids.iter()
                .map(|&id| partition_offset(&store, id, spec, cutoff))
                .collect::<Result<Vec<_>>>()
        })
        .await
        .map_err(|e| not_found_if_dropped(e, &path))?;
        Ok(wanted.into_iter().zip(offsets).collect())
    }
}

/// An offset found by [`OffsetSpec`]: by time, the timestamp of the record there (`None`
/// when no record is that recent: the offset is then the high-water mark).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoundOffset {
    pub offset: u64,
    pub timestamp_ms: Option<i64>,
}

/// One partition's offset by `spec`, never below the visible log start.
pub(super) fn partition_offset(
    store: &storage::Store,
    id: storage::PartitionId,
    spec: OffsetSpec,
    expire_before: Option<i64>,
) -> Result<FoundOffset> {
    let s = store.partition_stats(id, expire_before)?;
    let at = |offset| FoundOffset {
        offset,
        timestamp_ms: None,
    };
    Ok(match spec {
        OffsetSpec::Earliest => at(s.log_start),
        OffsetSpec::Latest => at(s.high_watermark),
        OffsetSpec::Timestamp(t) => {
            let found = store.seek_time(id, t, s.log_start)?;
            match found.batch {
                None => at(found.high_watermark),
                // The batch's maximum is at or after t, so a record is too; fall back to the
                // batch's start only if the stored batch disagrees with its summary.
                Some(b) => match batch::first_record_at_or_after(&b.value, t)? {
                    Some((offset, ts)) if offset >= s.log_start => FoundOffset {
                        offset,
                        timestamp_ms: Some(ts),
                    },
                    _ => FoundOffset {
                        offset: b.base_offset.max(s.log_start),
                        timestamp_ms: Some(t),
                    },
                },
            }
        }
    })
}

/// What every batch appended here carries, but for its offset.
#[derive(Clone, Copy)]
struct Stamp {
    origin: [u8; 16],
    incarnation: u32,
    append_time_ms: i64,
    timestamp_type: tributary_core::TimestampType,
}

impl Stamp {
    /// The server's fields of a batch appended here at `base`.
    fn at(&self, base: u64) -> ServerFields {
        ServerFields {
            base_offset: base,
            append_time_ms: self.append_time_ms,
            origin_cluster: self.origin,
            origin_base_offset: base,
            timestamp_type: self.timestamp_type,
            origin_incarnation: self.incarnation,
        }
    }
}

/// Settles a byte reservation: the stored size on success, nothing on failure.
fn settle(usage: &super::Usage, asked: u64, stored: Option<u64>) {
    match stored {
        Some(stored) if stored >= asked => usage.bytes.fetch_add(stored - asked, Ordering::AcqRel),
        Some(stored) => usage.bytes.fetch_sub(asked - stored, Ordering::AcqRel),
        None => usage.bytes.fetch_sub(asked, Ordering::AcqRel),
    };
}

/// A Kafka batch's idempotent producer, if it names one (a producer id of 0 or more, as
/// Kafka's `hasProducerId`; `kafka_batch::validate` checked its epoch and sequence).
fn kafka_producer(h: &kafka_batch::BatchHeader) -> Option<ProducerSeq> {
    (h.producer_id >= 0).then_some(ProducerSeq {
        id: h.producer_id as u64,
        epoch: h.producer_epoch as u32,
        sequence: h.base_sequence as u64,
        record_count: h.records_count as u32,
        space: SequenceSpace::Kafka,
    })
}

/// What storage's refusal of an idempotent batch means to a producer.
fn sequence_refusal(e: &storage::Error) -> Option<SequenceRefusal> {
    Some(match e {
        storage::Error::ProducerFenced { .. } => SequenceRefusal::Fenced,
        storage::Error::UnknownProducer { .. } => SequenceRefusal::UnknownProducer,
        storage::Error::SequenceGap { .. }
        | storage::Error::StaleSequence { .. }
        | storage::Error::SequenceMismatch { .. } => SequenceRefusal::OutOfOrder,
        _ => return None,
    })
}

/// Storage's refusals of a checked append, told in the topic's terms.
fn refused_append(e: Error, path: &TopicPath, partitions: &[storage::PartitionId]) -> Error {
    let number = |id: storage::PartitionId| {
        partitions
            .iter()
            .position(|&p| p == id)
            .map_or_else(|| "?".to_string(), |n| n.to_string())
    };
    match e {
        Error::Storage(storage::Error::OffsetMismatch {
            partition,
            expected,
            actual,
        }) => Error::FailedPrecondition(format!(
            "{path} #{}: expected last offset {}, but it is {}; nothing was written",
            number(partition),
            expected as i64 - 1,
            actual as i64 - 1
        )),
        Error::Storage(e) if sequence_refusal(&e).is_some() => Error::Sequence {
            refusal: sequence_refusal(&e).expect("matched"),
            message: format!("{path}: {e}; nothing was written"),
        },
        e => not_found_if_dropped(e, path),
    }
}

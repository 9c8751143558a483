//! The namespace service: volumes, streams and topics over the store, and the produce,
//! fetch and offset calls that resolve a topic path to storage partitions.
//!
//! Catalog changes are serialized by one async mutex and committed with partition
//! creations/drops in one atomic store write. Stream rows are all cached (there are few);
//! topic rows are cached on first use, so a million topics cost rows, not memory.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::RwLock;
use tokio::time::Instant;
use tributary_storage::{self as storage, CatalogTx, NewBatch, PartitionStats, Store};
use uuid::Uuid;

use crate::batch::{self, ServerFields};
use crate::clock::Clock;
use crate::model::*;
use crate::names::{StreamPath, TopicPath, VolumePath};
use crate::partitioner::partition_for_key;
use crate::{Error, Result};

/// Fetch budget when the request gives none, and the most a request may ask for.
pub const DEFAULT_FETCH_BYTES: usize = 1 << 20;
pub const MAX_FETCH_BYTES: usize = 64 << 20;
/// Longest long-poll a fetch may ask for.
pub const MAX_FETCH_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeInfo {
    pub path: String,
    pub owner: String,
    pub created_ms: i64,
    pub stream_count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    pub path: String,
    pub attributes: StreamAttributes,
    pub created_ms: i64,
    pub topic_count: u64,
    pub partition_count: u64,
    pub records: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    pub path: String,
    pub partitions: u32,
    pub created_ms: i64,
    /// Per-partition figures; filled by `describe_topic` only.
    pub partition_stats: Vec<PartitionStats>,
}

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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchResult {
    /// Stored batches, byte for byte.
    pub batches: Vec<Bytes>,
    pub high_watermark: u64,
    pub log_start: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    Earliest,
    Latest,
}

struct TopicEntry {
    stream: Arc<StreamRow>,
    row: TopicRow,
    /// Round-robin position for unkeyed records.
    next_partition: AtomicU32,
}

pub struct Namespace {
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    admin: tokio::sync::Mutex<()>,
    streams: RwLock<HashMap<String, Arc<StreamRow>>>,
    topics: RwLock<HashMap<(Uuid, String), Arc<TopicEntry>>>,
    /// Set when the server stops: parked long-polls return at once.
    closing: tokio::sync::watch::Sender<bool>,
}

impl std::fmt::Debug for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Namespace")
            .field("store", &self.store)
            .finish()
    }
}

/// Runs blocking store work off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| Error::ShuttingDown)?
}

impl Namespace {
    pub async fn open(store: Arc<Store>, clock: Arc<dyn Clock>) -> Result<Self> {
        let s = store.clone();
        let rows = blocking(move || Ok(s.catalog_scan(b"s", usize::MAX)?)).await?;
        let mut streams = HashMap::new();
        for (_, v) in rows {
            let row: StreamRow = decode("stream row", &v)?;
            streams.insert(row.path.clone(), Arc::new(row));
        }
        Ok(Self {
            store,
            clock,
            admin: tokio::sync::Mutex::new(()),
            streams: RwLock::new(streams),
            topics: RwLock::new(HashMap::new()),
            closing: tokio::sync::watch::Sender::new(false),
        })
    }

    /// Ends every parked long-poll (they return what they have) and makes new ones return
    /// at once, so a graceful shutdown does not wait out fetch timeouts.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    // ---- volumes -------------------------------------------------------------------

    pub async fn create_volume(&self, path: &str, owner: &str) -> Result<VolumeInfo> {
        let path = VolumePath::parse("path", path)?;
        let _admin = self.admin.lock().await;
        let key = volume_key(path.as_str());
        if self.get(key.clone()).await?.is_some() {
            return Err(Error::AlreadyExists {
                what: "volume",
                path: path.to_string(),
            });
        }
        if self.streams.read().contains_key(path.as_str()) {
            return Err(Error::AlreadyExists {
                what: "stream",
                path: path.to_string(),
            });
        }
        let row = VolumeRow {
            path: path.to_string(),
            owner: owner.to_owned(),
            created_ms: self.clock.now_ms(),
        };
        let mut tx = CatalogTx::default();
        tx.put(&key, encode(&row));
        self.commit(tx).await?;
        Ok(VolumeInfo {
            path: row.path,
            owner: row.owner,
            created_ms: row.created_ms,
            stream_count: 0,
        })
    }

    pub async fn list_volumes(&self) -> Result<Vec<VolumeInfo>> {
        let s = self.store.clone();
        let rows = blocking(move || Ok(s.catalog_scan(b"v", usize::MAX)?)).await?;
        rows.iter()
            .map(|(_, v)| Ok(self.volume_info(decode("volume row", v)?)))
            .collect()
    }

    pub async fn describe_volume(&self, path: &str) -> Result<VolumeInfo> {
        let path = VolumePath::parse("path", path)?;
        Ok(self.volume_info(self.volume_row(&path).await?))
    }

    pub async fn delete_volume(&self, path: &str, force: bool) -> Result<()> {
        let path = VolumePath::parse("path", path)?;
        let _admin = self.admin.lock().await;
        self.volume_row(&path).await?;
        let streams = self.streams_in(path.as_str());
        if !streams.is_empty() && !force {
            return Err(Error::FailedPrecondition(format!(
                "volume {path} still holds {} stream(s), e.g. {}; delete them first or use force",
                streams.len(),
                streams[0].path
            )));
        }
        let mut tx = CatalogTx::default();
        tx.delete(&volume_key(path.as_str()));
        let mut dropped_topics = Vec::new();
        for s in &streams {
            dropped_topics.extend(self.delete_stream_into(&mut tx, s).await?);
        }
        self.commit(tx).await?;
        self.forget(&streams, &dropped_topics);
        Ok(())
    }

    fn volume_info(&self, row: VolumeRow) -> VolumeInfo {
        let stream_count = self.streams_in(&row.path).len() as u64;
        VolumeInfo {
            path: row.path,
            owner: row.owner,
            created_ms: row.created_ms,
            stream_count,
        }
    }

    async fn volume_row(&self, path: &VolumePath) -> Result<VolumeRow> {
        match self.get(volume_key(path.as_str())).await? {
            Some(v) => decode("volume row", &v),
            None => Err(Error::NotFound {
                what: "volume",
                path: path.to_string(),
            }),
        }
    }

    /// Streams whose path is `prefix` or lies under it, in path order.
    fn streams_in(&self, prefix: &str) -> Vec<Arc<StreamRow>> {
        let mut v: Vec<_> = self
            .streams
            .read()
            .values()
            .filter(|s| {
                prefix.is_empty()
                    || s.path == prefix
                    || (s.path.starts_with(prefix)
                        && s.path.as_bytes().get(prefix.len()) == Some(&b'/'))
            })
            .cloned()
            .collect();
        v.sort_by(|a, b| a.path.cmp(&b.path));
        v
    }

    // ---- streams -------------------------------------------------------------------

    pub async fn create_stream(
        &self,
        path: &str,
        attrs: &StreamAttributesPatch,
    ) -> Result<StreamInfo> {
        let path = StreamPath::parse("path", path)?;
        let attributes = StreamAttributes::default().apply(attrs)?;
        let _admin = self.admin.lock().await;
        self.volume_row(&path.volume()).await?;
        if self.streams.read().contains_key(path.as_str()) {
            return Err(Error::AlreadyExists {
                what: "stream",
                path: path.to_string(),
            });
        }
        let row = StreamRow {
            id: Uuid::new_v4(),
            path: path.to_string(),
            attributes,
            created_ms: self.clock.now_ms(),
        };
        let mut tx = CatalogTx::default();
        tx.put(&stream_key(&row.path), encode(&row));
        self.commit(tx).await?;
        self.streams
            .write()
            .insert(row.path.clone(), Arc::new(row.clone()));
        Ok(StreamInfo {
            path: row.path,
            attributes: row.attributes,
            created_ms: row.created_ms,
            topic_count: 0,
            partition_count: 0,
            records: 0,
            bytes: 0,
        })
    }

    /// Streams at or under `prefix` (a volume or a path inside one; empty for all), with
    /// attributes and topic counts; records and bytes are filled by `describe_stream`.
    pub async fn list_streams(&self, prefix: &str) -> Result<Vec<StreamInfo>> {
        if !prefix.is_empty() {
            let p = prefix.strip_suffix('/').unwrap_or(prefix);
            if VolumePath::parse("prefix", p).is_err() {
                StreamPath::parse("prefix", p)?;
            }
        }
        let mut out = Vec::new();
        for s in self.streams_in(prefix.strip_suffix('/').unwrap_or(prefix)) {
            let topics = self.topic_rows(&s).await?;
            out.push(StreamInfo {
                path: s.path.clone(),
                attributes: s.attributes.clone(),
                created_ms: s.created_ms,
                topic_count: topics.len() as u64,
                partition_count: topics.iter().map(|t| t.partitions.len() as u64).sum(),
                records: 0,
                bytes: 0,
            });
        }
        Ok(out)
    }

    pub async fn describe_stream(&self, path: &str) -> Result<StreamInfo> {
        let path = StreamPath::parse("path", path)?;
        let s = self.stream(&path)?;
        let topics = self.topic_rows(&s).await?;
        let ids: Vec<_> = topics
            .iter()
            .flat_map(|t| t.partitions.iter().copied())
            .collect();
        let store = self.store.clone();
        let (records, bytes) = blocking(move || {
            let mut sum = (0, 0);
            for id in ids {
                match store.partition_stats(id) {
                    Ok(st) => sum = (sum.0 + st.records, sum.1 + st.bytes),
                    Err(storage::Error::UnknownPartition(_)) => {} // dropped meanwhile
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(sum)
        })
        .await?;
        Ok(StreamInfo {
            path: s.path.clone(),
            attributes: s.attributes.clone(),
            created_ms: s.created_ms,
            topic_count: topics.len() as u64,
            partition_count: topics.iter().map(|t| t.partitions.len() as u64).sum(),
            records,
            bytes,
        })
    }

    pub async fn delete_stream(&self, path: &str) -> Result<()> {
        let path = StreamPath::parse("path", path)?;
        let _admin = self.admin.lock().await;
        let s = self.stream(&path)?;
        let mut tx = CatalogTx::default();
        let topics = self.delete_stream_into(&mut tx, &s).await?;
        self.commit(tx).await?;
        self.forget(&[s], &topics);
        Ok(())
    }

    /// Adds the removal of a stream, its topics and their partitions to `tx`; returns the
    /// topic cache keys to forget once committed.
    async fn delete_stream_into(
        &self,
        tx: &mut CatalogTx,
        s: &StreamRow,
    ) -> Result<Vec<(Uuid, String)>> {
        tx.delete(&stream_key(&s.path));
        let topics = self.topic_rows(s).await?;
        for t in &topics {
            tx.delete(&topic_key(s.id, &t.name));
            t.partitions.iter().for_each(|&id| tx.drop_partition(id));
        }
        Ok(topics.into_iter().map(|t| (s.id, t.name)).collect())
    }

    fn forget(&self, streams: &[Arc<StreamRow>], topics: &[(Uuid, String)]) {
        let mut map = self.streams.write();
        for s in streams {
            map.remove(&s.path);
        }
        let mut map = self.topics.write();
        for t in topics {
            map.remove(t);
        }
    }

    fn stream(&self, path: &StreamPath) -> Result<Arc<StreamRow>> {
        self.streams
            .read()
            .get(path.as_str())
            .cloned()
            .ok_or_else(|| Error::NotFound {
                what: "stream",
                path: path.to_string(),
            })
    }

    async fn topic_rows(&self, s: &StreamRow) -> Result<Vec<TopicRow>> {
        let store = self.store.clone();
        let prefix = topics_prefix(s.id);
        let rows = blocking(move || Ok(store.catalog_scan(&prefix, usize::MAX)?)).await?;
        rows.iter().map(|(_, v)| decode("topic row", v)).collect()
    }

    // ---- topics --------------------------------------------------------------------

    pub async fn create_topic(&self, path: &str, partitions: Option<u32>) -> Result<TopicInfo> {
        let path = TopicPath::parse("path", path)?;
        let s = self.stream(&path.stream)?;
        let n = partitions.unwrap_or(s.attributes.default_partitions);
        check_partitions("partitions", n)?;
        let _admin = self.admin.lock().await;
        let s = self.stream(&path.stream)?; // may have been replaced while we waited
        if self.get(topic_key(s.id, &path.topic)).await?.is_some() {
            return Err(Error::AlreadyExists {
                what: "topic",
                path: path.to_string(),
            });
        }
        let row = self.insert_topic(&s, &path.topic, n).await?;
        Ok(TopicInfo {
            path: path.to_string(),
            partitions: n,
            created_ms: row.created_ms,
            partition_stats: vec![],
        })
    }

    /// Creates a topic row and its partitions; the caller holds the admin lock.
    async fn insert_topic(&self, s: &Arc<StreamRow>, name: &str, n: u32) -> Result<TopicRow> {
        let row = TopicRow {
            name: name.to_owned(),
            partitions: self.store.reserve_partition_ids(n as usize),
            created_ms: self.clock.now_ms(),
        };
        let mut tx = CatalogTx::default();
        tx.put(&topic_key(s.id, name), encode(&row));
        row.partitions
            .iter()
            .for_each(|&id| tx.create_partition(id));
        self.commit(tx).await?;
        Ok(row)
    }

    pub async fn list_topics(&self, stream: &str) -> Result<Vec<TopicInfo>> {
        let path = StreamPath::parse("stream", stream)?;
        let s = self.stream(&path)?;
        Ok(self
            .topic_rows(&s)
            .await?
            .into_iter()
            .map(|t| TopicInfo {
                path: format!("{}:{}", s.path, t.name),
                partitions: t.partitions.len() as u32,
                created_ms: t.created_ms,
                partition_stats: vec![],
            })
            .collect())
    }

    pub async fn describe_topic(&self, path: &str) -> Result<TopicInfo> {
        let path = TopicPath::parse("path", path)?;
        let t = self.topic(&path, false).await?;
        let ids = t.row.partitions.clone();
        let store = self.store.clone();
        let partition_stats = blocking(move || {
            ids.iter()
                .map(|&id| store.partition_stats(id).map_err(Error::from))
                .collect()
        })
        .await
        .map_err(|e| not_found_if_dropped(e, &path))?;
        Ok(TopicInfo {
            path: path.to_string(),
            partitions: t.row.partitions.len() as u32,
            created_ms: t.row.created_ms,
            partition_stats,
        })
    }

    pub async fn delete_topic(&self, path: &str) -> Result<()> {
        let path = TopicPath::parse("path", path)?;
        let _admin = self.admin.lock().await;
        let t = self.topic(&path, false).await?;
        let mut tx = CatalogTx::default();
        tx.delete(&topic_key(t.stream.id, &path.topic));
        t.row
            .partitions
            .iter()
            .for_each(|&id| tx.drop_partition(id));
        self.commit(tx).await?;
        self.topics
            .write()
            .remove(&(t.stream.id, path.topic.clone()));
        Ok(())
    }

    /// Resolves a topic, creating it when `autocreate` is asked and the stream allows it.
    async fn topic(&self, path: &TopicPath, autocreate: bool) -> Result<Arc<TopicEntry>> {
        let s = self.stream(&path.stream)?;
        let cache_key = (s.id, path.topic.clone());
        if let Some(t) = self.topics.read().get(&cache_key) {
            return Ok(t.clone());
        }
        let row = match self.get(topic_key(s.id, &path.topic)).await? {
            Some(v) => decode::<TopicRow>("topic row", &v)?,
            None if autocreate && s.attributes.autocreate_topics => {
                let _admin = self.admin.lock().await;
                let s = self.stream(&path.stream)?;
                match self.get(topic_key(s.id, &path.topic)).await? {
                    Some(v) => decode("topic row", &v)?,
                    None => {
                        self.insert_topic(&s, &path.topic, s.attributes.default_partitions)
                            .await?
                    }
                }
            }
            None => {
                return Err(Error::NotFound {
                    what: "topic",
                    path: path.to_string(),
                });
            }
        };
        let entry = Arc::new(TopicEntry {
            stream: s,
            row,
            next_partition: AtomicU32::new(0),
        });
        Ok(self
            .topics
            .write()
            .entry(cache_key)
            .or_insert(entry)
            .clone())
    }

    // ---- produce and fetch -----------------------------------------------------------

    pub async fn produce(
        &self,
        topic: &str,
        partition: Option<u32>,
        encoded: Bytes,
    ) -> Result<ProduceResult> {
        let path = TopicPath::parse("topic", topic)?;
        let s = self.stream(&path.stream)?;
        let produced = batch::validate(encoded, s.attributes.max_message_bytes)?;
        let t = match self.topic(&path, false).await {
            Err(Error::NotFound { what: "topic", .. }) if s.attributes.autocreate_topics => {
                // Refuse before creating anything: a failed produce changes nothing.
                let n = s.attributes.default_partitions;
                if let Some(p) = partition.filter(|&p| p >= n) {
                    return Err(Error::NotFound {
                        what: "partition",
                        path: format!("{path} #{p} (of {n})"),
                    });
                }
                self.topic(&path, true).await?
            }
            t => t?,
        };
        let n = t.row.partitions.len() as u32;

        // Route: an explicit partition, else murmur2 of the key, else one round-robin pick.
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
                    .map(|r| {
                        if r.key.is_empty() {
                            rr
                        } else {
                            partition_for_key(&r.key, n)
                        }
                    })
                    .collect()
            }
        };
        let first = record_partitions[0];
        let single = record_partitions.iter().all(|&p| p == first);
        // One body per partition: the client's own bytes when they all go to one partition.
        let (targets, bodies): (Vec<u32>, Vec<(Bytes, i64)>) = if single {
            let max_ts = produced
                .records
                .iter()
                .filter_map(|r| r.timestamp_ms)
                .max()
                .unwrap_or(0);
            (vec![first], vec![(produced.encoded, max_ts)])
        } else {
            let mut groups: std::collections::BTreeMap<u32, Vec<_>> = Default::default();
            for (r, &p) in produced.records.into_iter().zip(&record_partitions) {
                groups.entry(p).or_default().push(r);
            }
            groups
                .into_iter()
                .map(|(p, recs)| {
                    let max_ts = recs
                        .iter()
                        .filter_map(|r| r.timestamp_ms)
                        .max()
                        .unwrap_or(0);
                    (p, (Bytes::from(batch::encode_records(recs)), max_ts))
                })
                .unzip()
        };
        let counts: Vec<u32> = targets
            .iter()
            .map(|p| record_partitions.iter().filter(|&&q| q == *p).count() as u32)
            .collect();
        let ids: Vec<_> = targets
            .iter()
            .map(|&p| t.row.partitions[p as usize])
            .collect();

        let origin = *self.store.identity().cluster_id.as_bytes();
        let append_time_ms = self.clock.now_ms();
        let durability = s.attributes.durability.into();
        let store = self.store.clone();
        let appended = blocking(move || {
            Ok(store.append(durability, &ids, |i, base| {
                let (body, max_ts) = &bodies[i];
                let fields = ServerFields {
                    base_offset: base,
                    append_time_ms,
                    origin_cluster: origin,
                    origin_base_offset: base,
                };
                NewBatch {
                    value: batch::stored_value(body, &fields),
                    record_count: counts[i],
                    append_time_ms,
                    max_timestamp_ms: (*max_ts).max(append_time_ms),
                }
            })?)
        })
        .await
        .map_err(|e| not_found_if_dropped(e, &path))?;
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
        Ok(ProduceResult {
            acks,
            record_partitions: if single { vec![] } else { record_partitions },
        })
    }

    /// Whole batches from the one holding `offset`; waits up to `max_wait` when there is
    /// nothing at `offset` yet.
    pub async fn fetch(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        max_bytes: usize,
        max_wait: Duration,
    ) -> Result<FetchResult> {
        let path = TopicPath::parse("topic", topic)?;
        let t = self.topic(&path, false).await?;
        let id = self.partition_id(&t, &path, partition)?;
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
            let r = blocking(move || Ok(store.read(id, offset, max_bytes)?))
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
                return Ok(FetchResult {
                    batches: r.batches.into_iter().map(|b| b.value).collect(),
                    high_watermark: r.high_watermark,
                    log_start: r.log_start,
                });
            }
            tokio::select! {
                changed = hwm.changed() => {
                    if changed.is_err() {
                        return Err(Error::NotFound { what: "topic", path: path.to_string() });
                    }
                }
                _ = closing.changed() => {}
                _ = tokio::time::sleep_until(deadline) => {} // one last read above, then return
            }
        }
    }

    /// Offsets of the given partitions (all when empty), in the order asked.
    pub async fn list_offsets(
        &self,
        topic: &str,
        partitions: &[u32],
        spec: OffsetSpec,
    ) -> Result<Vec<(u32, u64)>> {
        let path = TopicPath::parse("topic", topic)?;
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
        let stats = blocking(move || {
            ids.iter()
                .map(|&id| store.partition_stats(id).map_err(Error::from))
                .collect::<Result<Vec<_>>>()
        })
        .await
        .map_err(|e| not_found_if_dropped(e, &path))?;
        Ok(wanted
            .into_iter()
            .zip(stats)
            .map(|(p, s)| {
                (
                    p,
                    if spec == OffsetSpec::Earliest {
                        s.log_start
                    } else {
                        s.high_watermark
                    },
                )
            })
            .collect())
    }

    fn partition_id(
        &self,
        t: &TopicEntry,
        path: &TopicPath,
        p: u32,
    ) -> Result<storage::PartitionId> {
        t.row
            .partitions
            .get(p as usize)
            .copied()
            .ok_or_else(|| Error::NotFound {
                what: "partition",
                path: format!("{path} #{p} (of {})", t.row.partitions.len()),
            })
    }

    // ---- store helpers ---------------------------------------------------------------

    async fn get(&self, key: Vec<u8>) -> Result<Option<Vec<u8>>> {
        let store = self.store.clone();
        blocking(move || Ok(store.catalog_get(&key)?)).await
    }

    async fn commit(&self, tx: CatalogTx) -> Result<()> {
        let store = self.store.clone();
        blocking(move || Ok(store.commit(tx)?)).await
    }
}

/// A partition that vanished under a request means its topic was deleted meanwhile.
fn not_found_if_dropped(e: Error, path: &TopicPath) -> Error {
    match e {
        Error::Storage(storage::Error::UnknownPartition(_)) => Error::NotFound {
            what: "topic",
            path: path.to_string(),
        },
        e => e,
    }
}

//! The namespace service: users, volumes, streams and topics over the store, and the
//! produce, fetch and offset calls that resolve a topic path to storage partitions.
//!
//! Every operation takes the [`Caller`] and decides here whether it may proceed: stream
//! ACLs for data and topic calls, the volume's admin ACL for its streams, cluster admin for
//! volumes and users. A refused call changes nothing.
//!
//! Catalog changes are serialized by one async mutex and committed with partition
//! creations/drops in one atomic store write. Users, volumes and streams are all cached
//! (there are few); topic rows are cached on first use.

mod access;
mod admin;
mod backup;
mod classic;
mod cursors;
mod data;
mod links;
mod members;
mod replica;
mod retention;
mod source;
mod users;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use parking_lot::RwLock;
use tributary_core::names::{StreamPath, TopicPath};
use tributary_storage::{self as storage, CatalogTx, PartitionStats, Store};
use uuid::Uuid;

use crate::auth::{Caller, UserRow};
use crate::clock::Clock;
use crate::model::*;
use crate::{Error, Result};

pub use admin::{NewTopic, VolumeEdit};
pub use classic::{KafkaCommitter, KafkaGroupView, KafkaOffset};
pub use cursors::{
    Committer, CursorCommit, GroupInfo, GroupLag, GroupPartitionInfo, GroupSummary, MemberInfo,
    ResetTo,
};
pub use data::{DEFAULT_FETCH_BYTES, MAX_FETCH_BYTES, MAX_FETCH_WAIT};
pub use data::{
    FetchRead, FetchResult, Form, FoundOffset, IdempotentSeq, OffsetSpec, PartitionAck,
    ProduceOptions, ProduceResult,
};
pub use links::{UpstreamSpec, parse_from};
pub use members::{ClientMsg, JoinRequest, PartitionRecords, ServerMsg};
pub use replica::{AppliedPull, LinkPosition, MirrorCursor, ReplicaPartition, ReplicaTarget};
pub use source::{PullSource, SourceCursor, SourcePartition, SourceRead, SourceTopic};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub groups: Vec<String>,
    pub cluster_admin: bool,
    pub created_ms: i64,
    pub kafka_default_stream: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeInfo {
    pub path: String,
    pub owner: String,
    pub created_ms: i64,
    pub admin_perm: String,
    pub quotas: Quotas,
    pub stream_count: u64,
    pub topic_count: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    pub path: String,
    /// An offset-keeping mirror's `URL/SOURCE` (read-only for producers).
    pub mirror_of: Option<String>,
    pub attributes: StreamAttributes,
    pub created_ms: i64,
    pub topic_count: u64,
    pub partition_count: u64,
    /// Live figures over all partitions; filled by `describe_stream` only.
    pub totals: Totals,
}

/// Figures summed over partitions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub records: u64,
    pub bytes: u64,
    /// What retention (TTL, size caps, key compaction) has removed so far.
    pub purged_records: u64,
    pub purged_bytes: u64,
    /// Append time of the oldest stored batch; `None` while nothing is stored.
    pub earliest_append_ms: Option<i64>,
}

impl Totals {
    fn add(&mut self, st: &PartitionStats) {
        self.records += st.records;
        self.bytes += st.bytes;
        self.purged_records += st.purged_records;
        self.purged_bytes += st.purged_bytes;
        self.earliest_append_ms = match (self.earliest_append_ms, st.first_append_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    pub path: String,
    pub partitions: u32,
    pub created_ms: i64,
    /// Per-partition figures; filled by `describe_topic` only.
    pub partition_stats: Vec<PartitionStats>,
}

struct TopicEntry {
    stream: Arc<StreamRow>,
    row: TopicRow,
    /// Round-robin position for unkeyed records.
    next_partition: AtomicU32,
}

/// What a volume holds, kept current so quota checks need no scan.
#[derive(Debug, Default)]
pub(super) struct Usage {
    pub(super) bytes: AtomicU64,
    topics: AtomicU64,
}

pub struct Namespace {
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    admin: tokio::sync::Mutex<()>,
    users: RwLock<HashMap<String, Arc<UserRow>>>,
    /// Token id -> user name.
    tokens: RwLock<HashMap<String, String>>,
    volumes: RwLock<HashMap<String, Arc<VolumeRow>>>,
    usage: RwLock<HashMap<String, Arc<Usage>>>,
    streams: RwLock<HashMap<String, Arc<StreamRow>>>,
    topics: RwLock<HashMap<(Uuid, String), Arc<TopicEntry>>>,
    /// Set when the server stops: parked long-polls return at once.
    closing: tokio::sync::watch::Sender<bool>,
    /// Idle idempotent producers are forgotten after this long.
    producer_expiry_ms: std::sync::atomic::AtomicI64,
    /// How long a new Kafka group's first join phase waits for more members (0: none).
    kafka_initial_delay_ms: std::sync::atomic::AtomicI64,
    /// Bumped by every catalog commit (live groups follow their stream's topics), and
    /// again once a change to users or ACLs is in the caches: long-running calls then
    /// check their access (`access.rs`).
    catalog: tokio::sync::watch::Sender<u64>,
    live: members::LiveGroups,
    links: links::Links,
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

/// The volume part of a stream path (`/acme` of `/acme/iot/s`).
fn volume_of(stream_path: &str) -> &str {
    let end = stream_path[1..]
        .find('/')
        .map_or(stream_path.len(), |i| i + 1);
    &stream_path[..end]
}

impl Namespace {
    pub async fn open(store: Arc<Store>, clock: Arc<dyn Clock>) -> Result<Self> {
        let s = store.clone();
        let (users, volumes, streams, topics, links) = blocking(move || {
            Ok((
                s.catalog_scan(b"u", usize::MAX)?,
                s.catalog_scan(b"v", usize::MAX)?,
                s.catalog_scan(b"s", usize::MAX)?,
                s.catalog_scan(b"t", usize::MAX)?,
                s.catalog_scan(b"l", usize::MAX)?,
            ))
        })
        .await?;
        let mut ns = Self {
            store,
            clock,
            admin: tokio::sync::Mutex::new(()),
            users: RwLock::default(),
            tokens: RwLock::default(),
            volumes: RwLock::default(),
            usage: RwLock::default(),
            streams: RwLock::default(),
            topics: RwLock::default(),
            closing: tokio::sync::watch::Sender::new(false),
            producer_expiry_ms: std::sync::atomic::AtomicI64::new(7 * 86_400_000),
            kafka_initial_delay_ms: std::sync::atomic::AtomicI64::new(0),
            catalog: tokio::sync::watch::Sender::new(0),
            live: members::LiveGroups::default(),
            links: links::Links::default(),
        };
        ns.links.load(
            links
                .iter()
                .map(|(_, v)| decode("link row", v))
                .collect::<Result<_>>()?,
        );
        for (_, v) in users {
            let u: UserRow = decode("user row", &v)?;
            ns.tokens
                .get_mut()
                .insert(u.token_id.clone(), u.name.clone());
            ns.users.get_mut().insert(u.name.clone(), Arc::new(u));
        }
        for (_, v) in volumes {
            let row: VolumeRow = decode("volume row", &v)?;
            ns.usage.get_mut().insert(row.path.clone(), Arc::default());
            ns.volumes.get_mut().insert(row.path.clone(), Arc::new(row));
        }
        let mut by_id = HashMap::new();
        for (_, v) in streams {
            let row: StreamRow = decode("stream row", &v)?;
            by_id.insert(row.id, row.path.clone());
            ns.streams.get_mut().insert(row.path.clone(), Arc::new(row));
        }
        // Usage per volume: topics counted, bytes summed from partition states.
        let mut ids_by_volume: HashMap<String, Vec<storage::PartitionId>> = HashMap::new();
        for (k, v) in topics {
            let Some(stream) = k
                .get(1..17)
                .and_then(|b| Uuid::from_slice(b).ok())
                .and_then(|id| by_id.get(&id))
            else {
                continue; // a stream deleted meanwhile leaves no topic rows; nothing to count
            };
            let t: TopicRow = decode("topic row", &v)?;
            let volume = volume_of(stream).to_owned();
            ids_by_volume
                .entry(volume.clone())
                .or_default()
                .extend(&t.partitions);
            if let Some(u) = ns.usage.get_mut().get(&volume) {
                u.topics.fetch_add(1, Ordering::Relaxed);
            }
        }
        let s = ns.store.clone();
        let bytes = blocking(move || {
            ids_by_volume
                .into_iter()
                .map(|(v, ids)| {
                    Ok((
                        v,
                        ids.iter()
                            .map(|&id| s.partition_stats(id, None).map(|st| st.bytes))
                            .sum::<Result<u64, _>>()?,
                    ))
                })
                .collect::<Result<Vec<_>>>()
        })
        .await?;
        for (v, b) in bytes {
            if let Some(u) = ns.usage.get_mut().get(&v) {
                u.bytes.store(b, Ordering::Relaxed);
            }
        }
        Ok(ns)
    }

    /// Ends every parked long-poll (they return what they have) and makes new ones return
    /// at once, so a graceful shutdown does not wait out fetch timeouts.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The clock the namespace reads (the system's, or a test's).
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// This cluster's persistent id.
    pub fn cluster_id(&self) -> Uuid {
        self.store.identity().cluster_id
    }

    // ---- authorization ---------------------------------------------------------------

    fn is_volume_admin(&self, c: &Caller, volume: &str) -> bool {
        c.cluster_admin
            || self
                .volumes
                .read()
                .get(volume)
                .is_some_and(|v| v.admin_perm.allows(&c.principal))
    }

    fn check_volume_admin(&self, c: &Caller, volume: &str) -> Result<()> {
        if self.is_volume_admin(c, volume) {
            return Ok(());
        }
        Err(Error::PermissionDenied {
            who: c.name().into(),
            permission: "admin",
            path: volume.into(),
        })
    }

    /// Passes for cluster admins only; `what` names what was asked in the refusal.
    pub fn check_cluster_admin(&self, c: &Caller, what: &str) -> Result<()> {
        if c.cluster_admin {
            return Ok(());
        }
        Err(Error::PermissionDenied {
            who: c.name().into(),
            permission: "cluster admin",
            path: what.into(),
        })
    }

    /// Passes when the stream's `perm` ACL, or the volume's admin ACL, allows the caller.
    fn check(&self, c: &Caller, s: &StreamRow, perm: Perm) -> Result<()> {
        if s.attributes.perm(perm).allows(&c.principal)
            || self.is_volume_admin(c, volume_of(&s.path))
        {
            return Ok(());
        }
        Err(Error::PermissionDenied {
            who: c.name().into(),
            permission: perm.name(),
            path: s.path.clone(),
        })
    }

    /// A stream is visible to whoever holds any of its permissions.
    fn can_see(&self, c: &Caller, s: &StreamRow) -> bool {
        Perm::ALL
            .iter()
            .any(|&p| s.attributes.perm(p).allows(&c.principal))
            || self.is_volume_admin(c, volume_of(&s.path))
    }

    fn check_visible(&self, c: &Caller, s: &StreamRow) -> Result<()> {
        if self.can_see(c, s) {
            return Ok(());
        }
        Err(Error::PermissionDenied {
            who: c.name().into(),
            permission: "any",
            path: s.path.clone(),
        })
    }

    // ---- lookups ---------------------------------------------------------------------

    fn usage(&self, volume: &str) -> Arc<Usage> {
        self.usage
            .write()
            .entry(volume.to_owned())
            .or_default()
            .clone()
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

    async fn topic_rows(&self, s: &StreamRow) -> Result<Vec<TopicRow>> {
        let store = self.store.clone();
        let prefix = topics_prefix(s.id);
        let rows = blocking(move || Ok(store.catalog_scan(&prefix, usize::MAX)?)).await?;
        rows.iter().map(|(_, v)| decode("topic row", v)).collect()
    }

    /// Resolves a topic, creating it when `autocreate` is asked and the stream allows it
    /// (and the volume's topic quota has room).
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
                        self.insert_topic(&s, &path.topic, s.attributes.default_partitions, None)
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

    /// The usage of `s`'s volume, if its topic quota has room for one more.
    fn topic_quota(&self, s: &StreamRow) -> Result<Arc<Usage>> {
        let volume = volume_of(&s.path);
        let usage = self.usage(volume);
        let quotas = self
            .volumes
            .read()
            .get(volume)
            .map(|v| v.quotas)
            .unwrap_or_default();
        let topics = usage.topics.load(Ordering::Acquire);
        if let Some(limit) = quotas.max_topics.filter(|&l| topics + 1 > l) {
            return Err(Error::QuotaExceeded {
                volume: volume.into(),
                quota: "topics",
                limit,
                used: topics,
                asked: 1,
            });
        }
        Ok(usage)
    }

    /// Creates a topic row and its partitions, with the stream's new row if `stream` is
    /// given, in one write; the caller holds the admin lock.
    async fn insert_topic(
        &self,
        s: &Arc<StreamRow>,
        name: &str,
        n: u32,
        stream: Option<StreamRow>,
    ) -> Result<TopicRow> {
        let usage = self.topic_quota(s)?;
        let row = TopicRow {
            name: name.to_owned(),
            partitions: self.store.reserve_partition_ids(n as usize),
            created_ms: self.clock.now_ms(),
        };
        let mut tx = CatalogTx::default();
        tx.put(&topic_key(s.id, name), encode(&row));
        if let Some(stream) = &stream {
            tx.put(&stream_key(&stream.path), encode(stream));
        }
        row.partitions
            .iter()
            .for_each(|&id| tx.create_partition(id));
        self.commit(tx).await?;
        usage.topics.fetch_add(1, Ordering::AcqRel);
        if let Some(stream) = stream {
            self.streams
                .write()
                .insert(stream.path.clone(), Arc::new(stream));
            self.catalog_changed();
        }
        Ok(row)
    }

    /// The store's id of a topic's partition, for tests that write to the store directly.
    #[cfg(test)]
    pub(crate) async fn test_partition_id(
        &self,
        topic: &str,
        p: u32,
    ) -> Result<storage::PartitionId> {
        let path = TopicPath::parse("topic", topic)?;
        let t = self.topic(&path, false).await?;
        self.partition_id(&t, &path, p)
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

    /// Figures of the given partitions, with records older than `cutoff` not counted
    /// (already dropped partitions count zero).
    async fn partition_totals(
        &self,
        ids: Vec<storage::PartitionId>,
        cutoff: Option<i64>,
    ) -> Result<Totals> {
        let store = self.store.clone();
        blocking(move || {
            let mut sum = Totals::default();
            for id in ids {
                match store.partition_stats(id, cutoff) {
                    Ok(st) => sum.add(&st),
                    Err(storage::Error::UnknownPartition(_)) => {} // dropped meanwhile
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(sum)
        })
        .await
    }

    // ---- store helpers ---------------------------------------------------------------

    async fn get(&self, key: Vec<u8>) -> Result<Option<Vec<u8>>> {
        let store = self.store.clone();
        blocking(move || Ok(store.catalog_get(&key)?)).await
    }

    /// Writes one catalog row.
    async fn put_row<T: serde::Serialize>(&self, key: &[u8], row: &T) -> Result<()> {
        let mut tx = CatalogTx::default();
        tx.put(key, encode(row));
        self.commit(tx).await
    }

    async fn commit(&self, tx: CatalogTx) -> Result<()> {
        let store = self.store.clone();
        blocking(move || Ok(store.commit(tx)?)).await?;
        self.catalog_changed();
        Ok(())
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

//! What the upstream side of replication may do with one stream of this cluster: a
//! [`PullSource`], handed out once the puller's `copy` permission is checked. It reaches
//! the partitions of that stream only, and each refresh checks the puller's credential and
//! permission again, so the pull session (`crates/replication`, `upstream.rs`) never
//! touches the store or decides an access itself.
//!
//! Reads, figures, watches and cursors block on the store: the session batches them into
//! one blocking task per response (a response reads up to a thousand partitions).

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::watch;
use tributary_storage::{self as storage, PartitionId, PartitionStats, UpstreamPosition};

use super::Namespace;
use crate::Result;
use crate::auth::Credential;
use crate::model::*;
use tributary_core::names::StreamPath;

/// One stream as a puller may read it; cheap to clone (into a blocking task).
#[derive(Debug, Clone)]
pub struct PullSource {
    ns: Arc<Namespace>,
    /// Checked again at every refresh, so a revoked puller is cut off.
    credential: Credential,
    stream: Arc<StreamRow>,
}

/// A partition of the source's stream (the only ones a source hands out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourcePartition(PartitionId);

/// A topic of the source's stream, with its partitions by number.
#[derive(Debug, Clone)]
pub struct SourceTopic {
    pub name: String,
    pub partitions: Vec<SourcePartition>,
}

/// Stored batches from a partition, as stored, and its figures right after the read.
#[derive(Debug, Clone)]
pub struct SourceRead {
    pub batches: Vec<Bytes>,
    /// Where the next read continues.
    pub next_offset: u64,
    pub stats: PartitionStats,
}

/// A consumer group's cursor on a partition of the source's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceCursor {
    pub group: String,
    pub partition: SourcePartition,
    pub offset: u64,
}

impl Namespace {
    /// The stream at `stream` as the caller may pull it (its `copy` permission).
    /// `credential` is how the caller authenticated: checked now, and again by each
    /// [`PullSource::refresh`], so revoking ends the pull.
    pub fn pull_source(
        self: &Arc<Self>,
        credential: Credential,
        stream: &str,
    ) -> Result<PullSource> {
        let path = StreamPath::parse("stream", stream)?;
        let s = self.reauthorize(&credential, &*self.stream(&path)?, Perm::Copy)?;
        Ok(PullSource {
            ns: self.clone(),
            credential,
            stream: s,
        })
    }
}

impl PullSource {
    /// The source as the catalog has it now, with its topics: NOT_FOUND once the stream
    /// was deleted (even if created again), PERMISSION_DENIED (or UNAUTHENTICATED) once the
    /// puller may no longer copy it. `self` stays as it was; the caller moves to the fresh
    /// source once it has taken the topics in.
    pub async fn refresh(&self) -> Result<(PullSource, Vec<SourceTopic>)> {
        let s = self
            .ns
            .reauthorize(&self.credential, &self.stream, Perm::Copy)?;
        let topics = self
            .ns
            .topic_rows(&s)
            .await?
            .into_iter()
            .map(|t| SourceTopic {
                name: t.name,
                partitions: t.partitions.into_iter().map(SourcePartition).collect(),
            })
            .collect();
        let fresh = PullSource {
            ns: self.ns.clone(),
            credential: self.credential.clone(),
            stream: s,
        };
        Ok((fresh, topics))
    }

    /// Checks the puller's credential and permission again (as [`PullSource::refresh`]
    /// does), without reading topics: the check between reading batches and sending them.
    pub fn reauthorize(&self) -> Result<()> {
        self.ns
            .reauthorize(&self.credential, &self.stream, Perm::Copy)
            .map(|_| ())
    }

    /// A partition's figures, with the stream's TTL applied; `None` once the partition
    /// was dropped (its topic deleted). Blocks.
    pub fn stats(&self, p: SourcePartition) -> Result<Option<PartitionStats>> {
        let cutoff = self.ns.expire_before(&self.stream);
        gone_as_none(self.ns.store.partition_stats(p.0, cutoff))
    }

    /// Whether a puller's position still points into the log it was read from (after a
    /// restart, the log may have lost a tail: design §6.3); `None` once the partition was
    /// dropped. Blocks.
    pub fn position_holds(
        &self,
        p: SourcePartition,
        position: UpstreamPosition,
    ) -> Result<Option<bool>> {
        gone_as_none(self.ns.store.position_holds(p.0, position))
    }

    /// This cluster's incarnation: positions read now are positions in it.
    pub fn incarnation(&self) -> u32 {
        self.ns.store.identity().incarnation
    }

    /// A partition's high-water mark, as it moves; `None` once the partition was dropped.
    /// Blocks.
    pub fn watch(&self, p: SourcePartition) -> Result<Option<watch::Receiver<u64>>> {
        gone_as_none(self.ns.store.watch(p.0))
    }

    /// Stored batches of a partition from `from`, up to `max_bytes` (at least one batch),
    /// with the TTL applied. A position out of range (below the log start after retention,
    /// or past the end when the source lost its tail) reads from the log start instead:
    /// the puller's watermarks skip what it already has. `None` once the partition was
    /// dropped. Blocks.
    pub fn read(
        &self,
        p: SourcePartition,
        from: u64,
        max_bytes: usize,
    ) -> Result<Option<SourceRead>> {
        let store = &self.ns.store;
        let cutoff = self.ns.expire_before(&self.stream);
        let r = match store.read(p.0, from, max_bytes, cutoff) {
            Err(storage::Error::OffsetOutOfRange { log_start, .. }) => {
                store.read(p.0, log_start, max_bytes, cutoff)
            }
            r => r,
        };
        let Some(r) = gone_as_none(r)? else {
            return Ok(None);
        };
        let stats = store.partition_stats(p.0, cutoff)?;
        Ok(Some(SourceRead {
            batches: r.batches.into_iter().map(|b| b.value).collect(),
            next_offset: r.next_offset,
            stats,
        }))
    }

    /// Every consumer-group cursor of the stream, group by group. Blocks.
    pub fn cursors(&self) -> Result<Vec<SourceCursor>> {
        let store = &self.ns.store;
        let scope = *self.stream.id.as_bytes();
        let mut out = Vec::new();
        for group in store.cursor_groups(&scope)? {
            for (id, c) in store.cursors(&scope, &group)? {
                out.push(SourceCursor {
                    group: group.clone(),
                    partition: SourcePartition(id),
                    offset: c.offset,
                });
            }
        }
        Ok(out)
    }

    /// Resolves at the next append to any partition of this cluster; register it (pin and
    /// `enable`) before looking, so an append while looking is not missed.
    pub fn appended(&self) -> tokio::sync::futures::Notified<'_> {
        self.ns.store.appended()
    }

    /// Changes whenever the catalog does (topics created, grown or deleted, attributes
    /// edited, users changed).
    pub fn catalog_changes(&self) -> watch::Receiver<u64> {
        self.ns.catalog.subscribe()
    }

    /// Turns true when the server stops.
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.ns.closing.subscribe()
    }

    /// This cluster's id.
    pub fn cluster_id(&self) -> uuid::Uuid {
        self.ns.cluster_id()
    }

    /// Now, by the namespace's clock.
    pub fn now_ms(&self) -> i64 {
        self.ns.clock.now_ms()
    }
}

/// A dropped partition (its topic deleted meanwhile) as `None`.
fn gone_as_none<T>(r: storage::Result<T>) -> Result<Option<T>> {
    match r {
        Ok(t) => Ok(Some(t)),
        Err(storage::Error::UnknownPartition(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

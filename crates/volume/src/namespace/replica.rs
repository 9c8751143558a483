//! What the downstream side of replication may do with a link's destination stream: a
//! [`ReplicaTarget`], for one link. It shapes the stream's topics as the source's, applies
//! pulled batches to a partition through the store's exactly-once write
//! (`Store::apply_pulled`) against the volume's byte quota as a produce would, reads the
//! link's stored positions, and commits a mirror's consumer-group cursors.
//!
//! Reading the pulled batches (their framing, origins, what to cut off) and keeping the
//! link's status are replication's (`crates/replication`, `downstream.rs`); what the
//! catalog, the quota and the live groups allow is decided here.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tributary_storage::{
    self as storage, ApplyResult, NewBatch, PartitionId, PulledBatch, UpstreamPosition,
};

use super::{Namespace, blocking, volume_of};
use crate::model::*;
use crate::{Error, Result};
use tributary_core::names::{StreamPath, TopicPath};

/// A link's destination stream, as replication may change it.
#[derive(Debug)]
pub struct ReplicaTarget<'a> {
    ns: &'a Namespace,
    link: &'a LinkRow,
    stream: Arc<StreamRow>,
    path: StreamPath,
}

/// One partition of a replica topic.
#[derive(Debug)]
pub struct ReplicaPartition<'a> {
    target: &'a ReplicaTarget<'a>,
    topic: TopicPath,
    id: PartitionId,
}

/// A link's stored position in one partition: the next upstream offset to read, and the
/// upstream's incarnation it was read in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkPosition {
    pub topic: String,
    pub partition: u32,
    pub at: UpstreamPosition,
}

/// What applying a partition's pulled batches did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppliedPull {
    /// Records appended.
    pub records: u64,
    /// Records already here (they came by another path first), or this cluster's own.
    pub skipped: u64,
    /// Bytes the appended batches take in the store.
    pub bytes: u64,
}

/// A consumer-group cursor of a mirror's source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorCursor {
    pub group: String,
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
}

impl Namespace {
    /// The destination stream of `link`; NOT_FOUND once it was deleted (even if created
    /// again).
    pub fn replica<'a>(&'a self, link: &'a LinkRow) -> Result<ReplicaTarget<'a>> {
        let path = StreamPath::parse("stream", &link.stream)?;
        match self.stream(&path) {
            Ok(stream) if stream.id == link.stream_id => {
                let path = StreamPath::parse("stream", &stream.path)?;
                Ok(ReplicaTarget {
                    ns: self,
                    link,
                    stream,
                    path,
                })
            }
            _ => Err(Error::NotFound {
                what: "stream",
                path: link.stream.clone(),
            }),
        }
    }
}

impl ReplicaTarget<'_> {
    /// The destination stream's path.
    pub fn stream(&self) -> &str {
        &self.stream.path
    }

    /// The link's stored positions, for the partitions its stream still has.
    pub async fn positions(&self) -> Result<Vec<LinkPosition>> {
        let topics = self.ns.topic_rows(&self.stream).await?;
        let names: HashMap<_, _> = topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .enumerate()
                    .map(|(n, &id)| (id, (t.name.clone(), n as u32)))
            })
            .collect();
        let store = self.ns.store.clone();
        let id = *self.link.id.as_bytes();
        let stored = blocking(move || Ok(store.link_positions(&id)?)).await?;
        Ok(stored
            .into_iter()
            .filter_map(|(id, at)| {
                names.get(&id).map(|(topic, partition)| LinkPosition {
                    topic: topic.clone(),
                    partition: *partition,
                    at,
                })
            })
            .collect())
    }

    /// Creates a topic the source has, or grows it to the source's partition count (a
    /// topic never shrinks).
    pub async fn ensure_topic(&self, name: &str, partitions: u32) -> Result<()> {
        let path = TopicPath::parse("topic", &format!("{}:{name}", self.path))?;
        match self.ns.topic(&path, false).await {
            Ok(t) if t.row.partitions.len() as u32 >= partitions => return Ok(()),
            Ok(_) | Err(Error::NotFound { what: "topic", .. }) => {}
            Err(e) => return Err(e),
        }
        let _admin = self.ns.admin.lock().await;
        let s = self.ns.stream(&path.stream)?;
        match self.ns.get(topic_key(s.id, &path.topic)).await? {
            None => {
                self.ns
                    .insert_topic(&s, &path.topic, partitions, None)
                    .await?;
            }
            Some(v) => {
                let row: TopicRow = decode("topic row", &v)?;
                self.ns.grow_topic(&s, row, partitions).await?;
            }
        }
        Ok(())
    }

    /// Partition `partition` of topic `topic`; NOT_FOUND when the topic does not have it.
    pub async fn partition(&self, topic: &str, partition: u32) -> Result<ReplicaPartition<'_>> {
        let topic = TopicPath::parse("topic", &format!("{}:{topic}", self.path))?;
        let t = self.ns.topic(&topic, false).await?;
        let id = self.ns.partition_id(&t, &topic, partition)?;
        Ok(ReplicaPartition {
            target: self,
            topic,
            id,
        })
    }

    /// Commits a mirror's replicated cursors: only for groups with no live member here
    /// (theirs are their own commits), each clamped to what this cluster holds (a group
    /// never starts past a record the mirror does not have yet: re-delivery, never loss),
    /// and only those that changed. Cursors of topics or partitions not replicated yet, or
    /// of names this cluster refuses, are left for a later round.
    pub async fn commit_cursors(&self, cursors: Vec<MirrorCursor>) -> Result<()> {
        let live: Vec<String> = self
            .ns
            .live_groups(&self.stream)
            .into_iter()
            .map(|g| g.0)
            .collect();
        let mut by_group: HashMap<String, Vec<(PartitionId, u64)>> = HashMap::new();
        for c in cursors {
            if live.contains(&c.group)
                || tributary_core::names::check_group("group", &c.group).is_err()
            {
                continue;
            }
            let topic = TopicPath::parse("topic", &format!("{}:{}", self.path, c.topic))?;
            let Ok(t) = self.ns.topic(&topic, false).await else {
                continue; // not replicated yet
            };
            let Ok(id) = self.ns.partition_id(&t, &topic, c.partition) else {
                continue;
            };
            by_group.entry(c.group).or_default().push((id, c.offset));
        }
        let store = self.ns.store.clone();
        let scope = *self.stream.id.as_bytes();
        let now = self.ns.clock.now_ms();
        blocking(move || {
            for (group, mut pairs) in by_group {
                for (id, offset) in &mut pairs {
                    *offset = (*offset).min(*store.watch(*id)?.borrow());
                }
                let have: HashMap<_, _> = store
                    .cursors(&scope, &group)?
                    .into_iter()
                    .map(|(id, c)| (id, c.offset))
                    .collect();
                pairs.retain(|(id, o)| have.get(id) != Some(o));
                if !pairs.is_empty() {
                    store.commit_cursors(&scope, &group, &pairs, now)?;
                }
            }
            Ok(())
        })
        .await
    }
}

impl ReplicaPartition<'_> {
    /// Applies `batches`, pulled by the link, and moves its position here to `position`,
    /// in one write (`Store::apply_pulled`: each record exactly once, by its origin's
    /// watermark). `asked_bytes` (the batches as pulled) is reserved against the volume's
    /// byte quota first, and settled with what was stored. `build(i, base_offset, skip)`
    /// makes the bytes to store for `batches[i]` at `base_offset` without its first `skip`
    /// records; it runs under the partition's append lock.
    pub async fn apply(
        &self,
        position: UpstreamPosition,
        asked_bytes: u64,
        batches: &[PulledBatch],
        build: impl FnMut(usize, u64, u32) -> NewBatch + Send + 'static,
    ) -> Result<AppliedPull> {
        let t = self.target;
        let usage = t.ns.reserve_bytes(volume_of(&t.stream.path), asked_bytes)?;
        let store = t.ns.store.clone();
        let durability = t.stream.attributes.durability.into();
        let link_id = *t.link.id.as_bytes();
        let id = self.id;
        let pulled = batches.to_vec();
        let applied = blocking(move || {
            Ok(store.apply_pulled(durability, id, &link_id, position, &pulled, build)?)
        })
        .await;
        let stored = applied.as_ref().map_or(0, stored_bytes);
        if stored >= asked_bytes {
            usage
                .bytes
                .fetch_add(stored - asked_bytes, Ordering::AcqRel);
        } else {
            usage
                .bytes
                .fetch_sub(asked_bytes - stored, Ordering::AcqRel);
        }
        let applied = applied.map_err(|e| match e {
            Error::Storage(storage::Error::UnknownPartition(_)) => Error::NotFound {
                what: "topic",
                path: self.topic.to_string(),
            },
            e => e,
        })?;
        let records = applied.appended_records(batches);
        let total: u64 = batches.iter().map(|b| u64::from(b.record_count)).sum();
        Ok(AppliedPull {
            records,
            skipped: total - records,
            bytes: stored,
        })
    }
}

/// Bytes the appended batches take in the store.
fn stored_bytes(r: &ApplyResult) -> u64 {
    r.applied
        .iter()
        .map(|a| match a {
            storage::Applied::Appended { bytes, .. } => *bytes,
            _ => 0,
        })
        .sum()
}

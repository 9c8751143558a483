//! Consumer-group cursors: commits (from group members, fenced by generation, or from
//! standalone consumers while the group has no members), and the administrator's view:
//! list, describe with per-partition lag, reset and delete.
//!
//! Cursors are stored under the stream's id (see `tributary_storage::keys`), so they go
//! with the stream and survive restarts; a group's membership lives in `groups`.

use std::collections::{BTreeMap, HashMap};

use tributary_core::names::{StreamPath, TopicPath, check_group};
use tributary_storage::{Cursor, PartitionId};

use super::data::{OffsetSpec, partition_offset};
use super::{Namespace, blocking, volume_of};
use crate::auth::Caller;
use crate::model::{Perm, StreamRow};
use crate::{Error, Result};

/// A cursor to commit: the next offset the group reads in a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorCommit {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
}

/// Who is committing: a member at a generation, or a standalone consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committer {
    pub member_id: String,
    pub generation: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPartitionInfo {
    pub topic: String,
    pub partition: u32,
    pub committed: Option<Cursor>,
    pub log_start: u64,
    pub high_watermark: u64,
    /// Records from the cursor (or the log start) to the high-water mark.
    pub lag: u64,
    /// The member reading the partition, if any.
    pub member_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    pub member_id: String,
    pub client_id: String,
    pub partitions: Vec<(String, u32)>,
    pub last_heartbeat_ms: i64,
    pub session_timeout_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    pub stream: String,
    pub group: String,
    pub generation: u64,
    pub assignor: String,
    pub members: Vec<MemberInfo>,
    pub partitions: Vec<GroupPartitionInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSummary {
    pub group: String,
    pub members: u32,
    pub generation: u64,
}

/// A group's lag over all the partitions it has cursors for in one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupLag {
    pub volume: String,
    pub stream: String,
    pub group: String,
    /// Records between the committed cursors and the high-water marks.
    pub records: u64,
    /// The age of the oldest record the group has yet to consume: now minus its append
    /// time, the most over the stream's partitions; 0 when caught up.
    pub age_ms: i64,
}

/// Where `reset_group` moves cursors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetTo {
    Spec(OffsetSpec),
    Offset(u64),
}

/// The stream's partitions by id: `(topic, partition number)`.
type PartitionNames = HashMap<PartitionId, (String, u32)>;

impl Namespace {
    /// Commits cursors for `group` in `stream` (the consume permission).
    pub async fn commit_offsets(
        &self,
        c: &Caller,
        stream: &str,
        group: &str,
        committer: Option<Committer>,
        cursors: Vec<CursorCommit>,
    ) -> Result<()> {
        let path = StreamPath::parse("stream", stream)?;
        check_group("group", group)?;
        let s = self.stream(&path)?;
        self.check(c, &s, Perm::Consume)?;
        let mut resolved = Vec::with_capacity(cursors.len());
        for (i, cur) in cursors.iter().enumerate() {
            let id = self
                .stream_partition(&s, &cur.topic, cur.partition)
                .await
                .map_err(|e| match e {
                    Error::InvalidArgument { message, .. } => {
                        Error::invalid(&format!("cursors[{i}].topic"), message)
                    }
                    e => e,
                })?;
            resolved.push((id, cur));
        }
        self.check_committer(&s, group, committer.as_ref(), &cursors)?;
        // A cursor past the end would skip records not yet written: refuse it.
        let store = self.store.clone();
        let cutoff = self.expire_before(&s);
        let ids: Vec<PartitionId> = resolved.iter().map(|(id, _)| *id).collect();
        let ends = blocking(move || {
            ids.iter()
                .map(|&id| Ok(store.partition_stats(id, cutoff)?.high_watermark))
                .collect::<Result<Vec<_>>>()
        })
        .await?;
        for ((_, cur), end) in resolved.iter().zip(ends) {
            if cur.offset > end {
                return Err(Error::OffsetOutOfRange {
                    path: format!("{}:{} #{}", s.path, cur.topic, cur.partition),
                    offset: cur.offset,
                    log_start: 0,
                    high_watermark: end,
                });
            }
        }
        let scope = *s.id.as_bytes();
        let group = group.to_owned();
        let now = self.clock.now_ms();
        let store = self.store.clone();
        let pairs: Vec<(PartitionId, u64)> =
            resolved.iter().map(|(id, c)| (*id, c.offset)).collect();
        blocking(move || Ok(store.commit_cursors(&scope, &group, &pairs, now)?)).await
    }

    /// The groups of a stream: those with cursors and those with members (the consume
    /// permission).
    pub async fn list_groups(&self, c: &Caller, stream: &str) -> Result<Vec<GroupSummary>> {
        let path = StreamPath::parse("stream", stream)?;
        let s = self.stream(&path)?;
        self.check(c, &s, Perm::Consume)?;
        let scope = *s.id.as_bytes();
        let store = self.store.clone();
        let stored = blocking(move || Ok(store.cursor_groups(&scope)?)).await?;
        let mut out: BTreeMap<String, GroupSummary> = stored
            .into_iter()
            .map(|g| {
                let summary = GroupSummary {
                    group: g.clone(),
                    members: 0,
                    generation: 0,
                };
                (g, summary)
            })
            .collect();
        for (g, members, generation) in self.live_groups(&s) {
            out.insert(
                g.clone(),
                GroupSummary {
                    group: g,
                    members,
                    generation,
                },
            );
        }
        Ok(out.into_values().collect())
    }

    /// A group's members, cursors and lag (the consume permission).
    pub async fn describe_group(&self, c: &Caller, stream: &str, group: &str) -> Result<GroupInfo> {
        let path = StreamPath::parse("stream", stream)?;
        check_group("group", group)?;
        let s = self.stream(&path)?;
        self.check(c, &s, Perm::Consume)?;
        self.group_info(&s, group, true).await
    }

    /// Moves a group's cursors (the stream's admin permission; no members may be reading).
    pub async fn reset_group(
        &self,
        c: &Caller,
        stream: &str,
        group: &str,
        topic: Option<&str>,
        to: ResetTo,
    ) -> Result<GroupInfo> {
        let path = StreamPath::parse("stream", stream)?;
        check_group("group", group)?;
        let s = self.stream(&path)?;
        self.check(c, &s, Perm::Admin)?;
        self.check_inactive(&s, group, "reset")?;
        let names = self.partition_names(&s).await?;
        let scope = *s.id.as_bytes();
        let store = self.store.clone();
        let g = group.to_owned();
        let existing = blocking(move || Ok(store.cursors(&scope, &g)?)).await?;
        // Which partitions: the topic's; else those the group has cursors for; else all.
        let mut targets: Vec<PartitionId> = match topic {
            Some(t) => {
                let ids: Vec<_> = names
                    .iter()
                    .filter(|(_, (name, _))| name == t)
                    .map(|(id, _)| *id)
                    .collect();
                if ids.is_empty() {
                    return Err(Error::NotFound {
                        what: "topic",
                        path: format!("{}:{t}", s.path),
                    });
                }
                ids
            }
            None if existing.iter().any(|(id, _)| names.contains_key(id)) => existing
                .iter()
                .map(|(id, _)| *id)
                .filter(|id| names.contains_key(id))
                .collect(),
            None => names.keys().copied().collect(),
        };
        targets.sort_unstable();
        let store = self.store.clone();
        let cutoff = self.expire_before(&s);
        let ids = targets.clone();
        let offsets = blocking(move || {
            ids.iter()
                .map(|&id| match to {
                    ResetTo::Spec(spec) => {
                        partition_offset(&store, id, spec, cutoff).map(|f| f.offset)
                    }
                    ResetTo::Offset(o) => {
                        let st = store.partition_stats(id, cutoff)?;
                        if o < st.log_start || o > st.high_watermark {
                            return Err(Error::Storage(
                                tributary_storage::Error::OffsetOutOfRange {
                                    offset: o,
                                    log_start: st.log_start,
                                    high_watermark: st.high_watermark,
                                },
                            ));
                        }
                        Ok(o)
                    }
                })
                .collect::<Result<Vec<_>>>()
        })
        .await
        .map_err(|e| match e {
            Error::Storage(tributary_storage::Error::OffsetOutOfRange {
                offset,
                log_start,
                high_watermark,
            }) => Error::OffsetOutOfRange {
                path: format!("{}:{}", s.path, topic.unwrap_or("*")),
                offset,
                log_start,
                high_watermark,
            },
            e => e,
        })?;
        let pairs: Vec<(PartitionId, u64)> = targets.into_iter().zip(offsets).collect();
        let store = self.store.clone();
        let g = group.to_owned();
        let now = self.clock.now_ms();
        blocking(move || Ok(store.commit_cursors(&scope, &g, &pairs, now)?)).await?;
        self.group_info(&s, group, false).await
    }

    /// Deletes a group's cursors (the stream's admin permission; no members may be reading).
    pub async fn delete_group(&self, c: &Caller, stream: &str, group: &str) -> Result<()> {
        let path = StreamPath::parse("stream", stream)?;
        check_group("group", group)?;
        let s = self.stream(&path)?;
        self.check(c, &s, Perm::Admin)?;
        self.check_inactive(&s, group, "delete")?;
        let scope = *s.id.as_bytes();
        let store = self.store.clone();
        let g = group.to_owned();
        let had = blocking(move || {
            let had = !store.cursors(&scope, &g)?.is_empty();
            store.delete_cursors(&scope, &g, None)?;
            Ok(had)
        })
        .await?;
        if !had {
            return Err(Error::NotFound {
                what: "group",
                path: format!("{} {group}", s.path),
            });
        }
        Ok(())
    }

    /// Every group's lag, per stream (cluster admins; for the metrics endpoint): from the
    /// committed cursors and the high-water marks, one scan of each stream's cursors.
    /// Groups that have committed nothing do not appear.
    pub async fn group_lags(&self, c: &Caller) -> Result<Vec<GroupLag>> {
        self.check_cluster_admin(c, "group lags")?;
        let streams: Vec<_> = self
            .streams_in("")
            .into_iter()
            .map(|s| (s.path.clone(), *s.id.as_bytes(), self.expire_before(&s)))
            .collect();
        let store = self.store.clone();
        let now_ms = self.clock.now_ms();
        blocking(move || {
            let mut out = Vec::new();
            for (stream, scope, cutoff) in streams {
                for l in store.group_lags(&scope, cutoff)? {
                    out.push(GroupLag {
                        volume: volume_of(&stream).to_owned(),
                        stream: stream.clone(),
                        group: l.group,
                        records: l.records,
                        age_ms: l.oldest_unconsumed_ms.map_or(0, |t| (now_ms - t).max(0)),
                    });
                }
            }
            Ok(out)
        })
        .await
    }

    /// Committed cursors of a group by partition id (for members starting to read).
    pub(super) async fn group_cursors(
        &self,
        s: &StreamRow,
        group: &str,
    ) -> Result<HashMap<PartitionId, Cursor>> {
        let scope = *s.id.as_bytes();
        let store = self.store.clone();
        let g = group.to_owned();
        Ok(blocking(move || Ok(store.cursors(&scope, &g)?))
            .await?
            .into_iter()
            .collect())
    }

    async fn group_info(&self, s: &StreamRow, group: &str, must_exist: bool) -> Result<GroupInfo> {
        let names = self.partition_names(s).await?;
        let cursors = self.group_cursors(s, group).await?;
        let live = self.live_group_view(s, group);
        if must_exist && cursors.is_empty() && live.is_none() {
            return Err(Error::NotFound {
                what: "group",
                path: format!("{} {group}", s.path),
            });
        }
        let (generation, assignor, members) = live.unwrap_or_default();
        let owner: HashMap<(String, u32), String> = members
            .iter()
            .flat_map(|m| {
                m.partitions
                    .iter()
                    .map(move |tp| (tp.clone(), m.member_id.clone()))
            })
            .collect();
        // The partitions shown: those with a cursor and those a member reads.
        let mut ids: Vec<PartitionId> = cursors
            .keys()
            .copied()
            .filter(|id| names.contains_key(id))
            .collect();
        for (id, tp) in &names {
            if owner.contains_key(tp) && !cursors.contains_key(id) {
                ids.push(*id);
            }
        }
        let store = self.store.clone();
        let cutoff = self.expire_before(s);
        let stats_ids = ids.clone();
        let stats = blocking(move || {
            stats_ids
                .iter()
                .map(|&id| Ok(store.partition_stats(id, cutoff)?))
                .collect::<Result<Vec<_>>>()
        })
        .await?;
        let mut partitions: Vec<GroupPartitionInfo> = ids
            .iter()
            .zip(stats)
            .map(|(id, st)| {
                let (topic, partition) = names[id].clone();
                let committed = cursors.get(id).cloned();
                let from = committed
                    .as_ref()
                    .map_or(st.log_start, |c| c.offset.max(st.log_start));
                GroupPartitionInfo {
                    member_id: owner.get(&(topic.clone(), partition)).cloned(),
                    topic,
                    partition,
                    committed,
                    log_start: st.log_start,
                    high_watermark: st.high_watermark,
                    lag: st.high_watermark.saturating_sub(from),
                }
            })
            .collect();
        partitions.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        Ok(GroupInfo {
            stream: s.path.clone(),
            group: group.to_owned(),
            generation,
            assignor,
            members,
            partitions,
        })
    }

    /// Every partition of the stream by id.
    pub(super) async fn partition_names(&self, s: &StreamRow) -> Result<PartitionNames> {
        Ok(self
            .topic_rows(s)
            .await?
            .into_iter()
            .flat_map(|t| {
                let name = t.name;
                t.partitions
                    .into_iter()
                    .enumerate()
                    .map(move |(n, id)| (id, (name.clone(), n as u32)))
            })
            .collect())
    }

    /// A partition of a topic of `s` by name and number.
    async fn stream_partition(&self, s: &StreamRow, topic: &str, p: u32) -> Result<PartitionId> {
        let path = TopicPath::parse("topic", &format!("{}:{topic}", s.path))?;
        let t = self.topic(&path, false).await?;
        self.partition_id(&t, &path, p)
    }

    fn check_inactive(&self, s: &StreamRow, group: &str, what: &str) -> Result<()> {
        match self.live_group_view(s, group) {
            Some((_, _, members)) if !members.is_empty() => {
                Err(Error::FailedPrecondition(format!(
                    "group {group} of {} has {} active member(s); stop them before you {what} it",
                    s.path,
                    members.len()
                )))
            }
            _ => Ok(()),
        }
    }
}

//! Kafka's classic consumer groups on the namespace (design §9): the live groups around
//! core's [`ClassicGroup`] state machine, with the JoinGroup and SyncGroup requests parked
//! until the group answers them and a ticker per group for its deadlines; and Kafka's
//! OffsetCommit and OffsetFetch on the same cursors as Tributary's own groups, with the
//! commit metadata a Kafka client keeps there.
//!
//! A Kafka group lives in one stream (the door resolves its id to a stream and a group
//! name), under the same key as a Tributary group of that name, and speaks one protocol
//! at a time: while one protocol's members are live the other's are refused. Every call
//! needs the consume permission on the group's stream; a commit or fetch also on each
//! topic's stream.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, oneshot};
use tributary_core::kafka_group::{
    ClassicGroup, Description, JoinRequest, Joined, Leaving, SyncRequest,
};
use tributary_core::names::{StreamPath, TopicPath, check_group};
use tributary_storage::{Cursor, PartitionId};

use super::members::{ClassicInner, ClassicLive};
use super::{Namespace, blocking};
use crate::auth::Caller;
use crate::model::{Perm, StreamRow};
use crate::{Error, Result};

/// Who commits: a member at a generation, or (an empty member id and a negative
/// generation) a standalone consumer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KafkaCommitter {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub generation: i32,
}

/// One partition's offset to commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaOffset {
    pub topic: TopicPath,
    pub partition: u32,
    pub offset: i64,
    pub metadata: String,
}

/// What a Kafka client is told about a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KafkaGroupView {
    /// A live Kafka group.
    Classic(Description),
    /// A live Tributary group: its member ids and client ids.
    Tributary(Vec<(String, String)>),
    /// No members, but committed cursors.
    Committed,
    /// Nothing at all.
    Absent,
}

impl Namespace {
    /// JoinGroup: parks until the group answers (see `kafka_group`).
    pub async fn kafka_join(
        self: &Arc<Self>,
        c: &Caller,
        stream: &StreamPath,
        group: &str,
        req: JoinRequest,
    ) -> Result<Joined> {
        let s = self.group_stream(c, stream, group)?;
        let (live, rx) = loop {
            let live = self.classic_group_or_new(&s, group);
            let _joining = self.live.joining.lock();
            self.live.check_no_tributary_members(&s, group)?;
            let mut inner = live.inner.lock();
            if inner.closed {
                continue;
            }
            let (member, replies) = inner.group.join(req, self.clock.now_ms())?;
            let (tx, rx) = oneshot::channel();
            inner.joins.insert(member, tx);
            inner.route(replies);
            drop(inner);
            break (live, rx);
        };
        live.wake.notify_one();
        self.parked(rx, &live).await
    }

    /// SyncGroup: parks until the leader's assignments come (at once in a stable group).
    pub async fn kafka_sync(
        &self,
        c: &Caller,
        stream: &StreamPath,
        group: &str,
        req: SyncRequest,
    ) -> Result<Bytes> {
        let s = self.group_stream(c, stream, group)?;
        let live = self.classic_live(&s, group, &req.member_id)?;
        let rx = {
            let mut inner = live.inner.lock();
            let replies = inner.group.sync(req.clone(), self.clock.now_ms())?;
            let (tx, rx) = oneshot::channel();
            inner.syncs.insert(req.member_id, tx);
            inner.route(replies);
            rx
        };
        live.wake.notify_one();
        self.parked(rx, &live).await
    }

    pub fn kafka_heartbeat(
        &self,
        c: &Caller,
        stream: &StreamPath,
        group: &str,
        member: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<()> {
        let s = self.group_stream(c, stream, group)?;
        let live = self.classic_live(&s, group, member)?;
        let result =
            live.inner
                .lock()
                .group
                .heartbeat(member, instance_id, generation, self.clock.now_ms());
        live.wake.notify_one();
        Ok(result?)
    }

    /// LeaveGroup: each member's result.
    pub fn kafka_leave(
        &self,
        c: &Caller,
        stream: &StreamPath,
        group: &str,
        leaving: &[Leaving],
    ) -> Result<Vec<Result<String>>> {
        let s = self.group_stream(c, stream, group)?;
        let Some(live) = self.classic_group(&s, group) else {
            let unknown = |l: &Leaving| {
                Err(Error::Group(tributary_core::Error::UnknownMember {
                    group: format!("{} {group}", s.path),
                    member: l.member_id.clone(),
                }))
            };
            return Ok(leaving.iter().map(unknown).collect());
        };
        let results = {
            let mut inner = live.inner.lock();
            let (results, replies) = inner.group.leave(leaving, self.clock.now_ms());
            inner.route(replies);
            results
        };
        live.wake.notify_one();
        Ok(results
            .into_iter()
            .map(|r| r.map_err(Error::Group))
            .collect())
    }

    /// What DescribeGroups shows of a group (the consume permission).
    pub async fn kafka_describe(
        &self,
        c: &Caller,
        stream: &StreamPath,
        group: &str,
    ) -> Result<KafkaGroupView> {
        let s = self.group_stream(c, stream, group)?;
        if let Some(live) = self.classic_group(&s, group) {
            let d = live.inner.lock().group.describe();
            if !d.members.is_empty() {
                return Ok(KafkaGroupView::Classic(d));
            }
        }
        if let Some((_, _, members)) = self.live_group_view(&s, group)
            && !members.is_empty()
        {
            return Ok(KafkaGroupView::Tributary(
                members
                    .into_iter()
                    .map(|m| (m.member_id, m.client_id))
                    .collect(),
            ));
        }
        if self.group_cursors(&s, group).await?.is_empty() {
            Ok(KafkaGroupView::Absent)
        } else {
            Ok(KafkaGroupView::Committed)
        }
    }

    /// OffsetCommit: the group's fencing first (a refusal there is every partition's), then
    /// each partition's own checks; what passes is stored, with its metadata, in one write
    /// per stream.
    pub async fn kafka_commit(
        &self,
        c: &Caller,
        stream: &StreamPath,
        group: &str,
        committer: &KafkaCommitter,
        offsets: Vec<KafkaOffset>,
    ) -> Result<Vec<Result<()>>> {
        let s = self.group_stream(c, stream, group)?;
        self.live.check_no_tributary_members(&s, group)?;
        let now = self.clock.now_ms();
        match self.classic_group(&s, group) {
            Some(live) => live.inner.lock().group.accept_commit(
                &committer.member_id,
                committer.instance_id.as_deref(),
                committer.generation,
                now,
            )?,
            None if committer.generation < 0 => {}
            None => {
                return Err(Error::Group(tributary_core::Error::IllegalGeneration {
                    group: format!("{} {group}", s.path),
                    given: committer.generation,
                    current: 0,
                }));
            }
        }
        let mut results: Vec<Result<()>> = Vec::with_capacity(offsets.len());
        // Per stream: its scope and the (partition, offset, metadata) to write.
        type Pending = (Arc<StreamRow>, Vec<(usize, PartitionId, u64, String)>);
        let mut writes: BTreeMap<String, Pending> = BTreeMap::new();
        for (i, o) in offsets.into_iter().enumerate() {
            results.push(Ok(()));
            let checked = async {
                let t = self.stream(&o.topic.stream)?;
                self.check(c, &t, Perm::Consume)?;
                if t.id != s.id {
                    self.live.check_no_tributary_members(&t, group)?;
                }
                if o.metadata.len() > Cursor::MAX_METADATA {
                    return Err(Error::invalid(
                        "metadata",
                        format!(
                            "{} bytes; the limit is {}",
                            o.metadata.len(),
                            Cursor::MAX_METADATA
                        ),
                    ));
                }
                let topic = self.topic(&o.topic, false).await?;
                let id = self.partition_id(&topic, &o.topic, o.partition)?;
                let store = self.store.clone();
                let cutoff = self.expire_before(&t);
                let end =
                    blocking(move || Ok(store.partition_stats(id, cutoff)?.high_watermark)).await?;
                match u64::try_from(o.offset) {
                    Ok(offset) if offset <= end => Ok((t, id, offset, o.metadata)),
                    _ => Err(Error::OffsetOutOfRange {
                        path: format!("{} #{}", o.topic, o.partition),
                        offset: o.offset.max(0) as u64,
                        log_start: 0,
                        high_watermark: end,
                    }),
                }
            }
            .await;
            match checked {
                Ok((t, id, offset, metadata)) => writes
                    .entry(t.path.clone())
                    .or_insert_with(|| (t.clone(), Vec::new()))
                    .1
                    .push((i, id, offset, metadata)),
                Err(e) => results[i] = Err(e),
            }
        }
        for (_, (t, cursors)) in writes {
            let scope = *t.id.as_bytes();
            let g = group.to_owned();
            let store = self.store.clone();
            let rows: Vec<(PartitionId, u64, String)> = cursors
                .iter()
                .map(|(_, id, o, m)| (*id, *o, m.clone()))
                .collect();
            let written = blocking(move || {
                let with: Vec<(PartitionId, u64, &str)> = rows
                    .iter()
                    .map(|(id, o, m)| (*id, *o, m.as_str()))
                    .collect();
                Ok(store.commit_cursors_with_metadata(&scope, &g, &with, now)?)
            })
            .await;
            if let Err(e) = written {
                for (i, ..) in &cursors {
                    results[*i] = Err(clone_error(&e));
                }
            }
        }
        Ok(results)
    }

    /// OffsetFetch: the committed cursor of each partition asked for (`None` when never
    /// committed), or, when `topics` is `None`, every cursor the group has in its own
    /// stream.
    pub async fn kafka_offsets(
        &self,
        c: &Caller,
        stream: &StreamPath,
        group: &str,
        topics: Option<Vec<(TopicPath, Vec<u32>)>>,
    ) -> Result<Vec<(TopicPath, u32, Result<Option<Cursor>>)>> {
        let s = self.group_stream(c, stream, group)?;
        let Some(topics) = topics else {
            let names = self.partition_names(&s).await?;
            let mut out: Vec<(TopicPath, u32, Result<Option<Cursor>>)> = self
                .group_cursors(&s, group)
                .await?
                .into_iter()
                .filter_map(|(id, cur)| {
                    let (topic, p) = names.get(&id)?.clone();
                    let path = TopicPath {
                        stream: stream.clone(),
                        topic,
                    };
                    Some((path, p, Ok(Some(cur))))
                })
                .collect();
            out.sort_by_key(|a| (a.0.to_string(), a.1));
            return Ok(out);
        };
        let mut cursors: HashMap<String, HashMap<PartitionId, Cursor>> = HashMap::new();
        let mut out = Vec::new();
        for (topic, partitions) in topics {
            let found = async {
                let t = match self.stream(&topic.stream) {
                    Ok(t) => t,
                    Err(Error::NotFound { .. }) => return Ok(None),
                    Err(e) => return Err(e),
                };
                self.check(c, &t, Perm::Consume)?;
                let entry = match self.topic(&topic, false).await {
                    Ok(e) => e,
                    Err(Error::NotFound { .. }) => return Ok(None),
                    Err(e) => return Err(e),
                };
                if !cursors.contains_key(&t.path) {
                    let got = self.group_cursors(&t, group).await?;
                    cursors.insert(t.path.clone(), got);
                }
                Ok(Some((entry, t.path.clone())))
            }
            .await;
            for p in partitions {
                let answer = match &found {
                    Err(e) => Err(clone_error(e)),
                    Ok(None) => Ok(None),
                    Ok(Some((entry, path))) => Ok(entry
                        .row
                        .partitions
                        .get(p as usize)
                        .and_then(|id| cursors[path].get(id).cloned())),
                };
                out.push((topic.clone(), p, answer));
            }
        }
        Ok(out)
    }

    /// May `c` use the group (FindCoordinator's check)? The consume permission on its
    /// stream.
    pub fn authorize_kafka_group(
        &self,
        c: &Caller,
        stream: &StreamPath,
        group: &str,
    ) -> Result<()> {
        self.group_stream(c, stream, group).map(drop)
    }

    /// The group's stream, once the caller may consume from it.
    fn group_stream(&self, c: &Caller, stream: &StreamPath, group: &str) -> Result<Arc<StreamRow>> {
        check_group("group", group)?;
        let s = self.stream(stream)?;
        self.check(c, &s, Perm::Consume)?;
        Ok(s)
    }

    /// The live group of a member: one it is not in is UNKNOWN_MEMBER_ID.
    fn classic_live(
        &self,
        s: &Arc<StreamRow>,
        group: &str,
        member: &str,
    ) -> Result<Arc<ClassicLive>> {
        self.classic_group(s, group).ok_or_else(|| {
            Error::Group(tributary_core::Error::UnknownMember {
                group: format!("{} {group}", s.path),
                member: member.to_owned(),
            })
        })
    }

    /// The live Kafka group, if there is one.
    fn classic_group(&self, s: &StreamRow, group: &str) -> Option<Arc<ClassicLive>> {
        self.live
            .classic
            .lock()
            .get(&(s.id, group.to_owned()))
            .cloned()
    }

    /// How long the first join phase of a new (or emptied) Kafka group waits for more
    /// members: Kafka's `group.initial.rebalance.delay.ms` (0 here until set; the server
    /// sets its configured value, 3 s by default as in Kafka).
    pub fn set_kafka_group_initial_delay(&self, d: Duration) {
        self.kafka_initial_delay_ms.store(
            d.as_millis().min(i64::MAX as u128) as i64,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// The live Kafka group, made (with its ticker) when absent.
    fn classic_group_or_new(self: &Arc<Self>, s: &Arc<StreamRow>, group: &str) -> Arc<ClassicLive> {
        let key = (s.id, group.to_owned());
        let mut map = self.live.classic.lock();
        if let Some(g) = map.get(&key) {
            return g.clone();
        }
        let live = Arc::new(ClassicLive {
            stream: s.clone(),
            name: group.to_owned(),
            inner: parking_lot::Mutex::new(ClassicInner {
                group: ClassicGroup::new(format!("{} {group}", s.path)).with_initial_delay(
                    self.kafka_initial_delay_ms
                        .load(std::sync::atomic::Ordering::Relaxed),
                ),
                joins: HashMap::new(),
                syncs: HashMap::new(),
                closed: false,
            }),
            wake: Notify::new(),
        });
        map.insert(key, live.clone());
        tokio::spawn(self.clone().classic_tick(live.clone()));
        live
    }

    /// Waits for a parked request's answer; the server stopping ends the wait.
    async fn parked<T>(
        &self,
        rx: oneshot::Receiver<tributary_core::Result<T>>,
        live: &ClassicLive,
    ) -> Result<T> {
        let mut closing = self.closing.subscribe();
        tokio::select! {
            answer = rx => match answer {
                Ok(answer) => Ok(answer?),
                // Another request of the same member took its place.
                Err(_) => Err(Error::Group(tributary_core::Error::RebalanceInProgress {
                    group: format!("{} {}", live.stream.path, live.name),
                })),
            },
            _ = closing.wait_for(|c| *c) => Err(Error::ShuttingDown),
        }
    }

    /// A group's ticker: runs its deadlines, and retires it once it has nobody, or when its
    /// stream is gone.
    async fn classic_tick(self: Arc<Self>, live: Arc<ClassicLive>) {
        let mut catalog = self.catalog.subscribe();
        loop {
            let deadline = live.inner.lock().group.next_deadline();
            let wait = deadline.map(|d| {
                Duration::from_millis(d.saturating_sub(self.clock.now_ms()).max(0) as u64)
            });
            tokio::select! {
                _ = async { match wait { Some(w) => tokio::time::sleep(w).await, None => std::future::pending().await } } => {}
                _ = live.wake.notified() => {}
                changed = catalog.changed() => {
                    let gone = changed.is_err() || self
                        .streams
                        .read()
                        .get(&live.stream.path)
                        .is_none_or(|s| s.id != live.stream.id);
                    if gone {
                        self.retire_classic(&live, true);
                        return;
                    }
                }
            }
            {
                let mut inner = live.inner.lock();
                let replies = inner.group.expire(self.clock.now_ms());
                inner.route(replies);
            }
            if self.retire_classic(&live, false) {
                return;
            }
        }
    }

    /// Drops a group from the registry when it holds nobody (or always, when its stream
    /// is gone); returns whether it did.
    fn retire_classic(&self, live: &ClassicLive, stream_gone: bool) -> bool {
        let mut map = self.live.classic.lock();
        let mut inner = live.inner.lock();
        if !stream_gone && !inner.group.is_empty() {
            return false;
        }
        inner.closed = true;
        inner.joins.clear();
        inner.syncs.clear();
        map.remove(&(live.stream.id, live.name.clone()));
        true
    }
}

/// Errors are not `Clone` (storage's carry sources); a copy for each partition a failure
/// covers keeps what a client is told.
fn clone_error(e: &Error) -> Error {
    match e {
        Error::InvalidArgument { field, message } => Error::InvalidArgument {
            field: field.clone(),
            message: message.clone(),
        },
        Error::NotFound { what, path } => Error::NotFound {
            what,
            path: path.clone(),
        },
        Error::PermissionDenied {
            who,
            permission,
            path,
        } => Error::PermissionDenied {
            who: who.clone(),
            permission,
            path: path.clone(),
        },
        Error::Unauthenticated(m) => Error::Unauthenticated(m.clone()),
        Error::FailedPrecondition(m) => Error::FailedPrecondition(m.clone()),
        Error::Group(g) => Error::Group(g.clone()),
        Error::ShuttingDown => Error::ShuttingDown,
        e => Error::FailedPrecondition(e.to_string()),
    }
}

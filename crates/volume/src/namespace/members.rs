//! Live consumer groups: the members' sessions around the pure [`Group`] state machine.
//!
//! Each group with members has a [`LiveGroup`]: the `Group` and a channel to each member's
//! session, behind one lock, plus a ticker task that keeps members with an open session
//! alive, expires those that did not confirm a revocation in time (at
//! [`Group::next_deadline`]) and rebalances when the stream's topics change. A session is
//! one `Subscribe` stream: it pushes the member's assignments and, as the client grants
//! credit, record batches from its partitions, starting at the group's cursors; it ends
//! when the stream does (a vanished peer's by the transport's keepalive) or when its
//! caller's access is revoked (checked again as it runs, `access.rs`). The server
//! holds at most one read per session, bounded by the credit and by `MAX_PUSH_BYTES`
//! whatever credit the client grants: a slow consumer costs no memory beyond it (and the
//! few pushes queued for its connection).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tributary_core::groups::{
    Assignment, Changes, Group, JoinSpec, RemovedReason, Subscription, TopicPartition,
};
use tributary_core::kafka_group::{ClassicGroup, Joined, Reply};
use tributary_core::names::{StreamPath, TopicPath, check_group};
use tributary_storage::{self as storage, PartitionId};
use uuid::Uuid;

use super::access::Access;
use super::data::{Form, OffsetSpec, partition_offset, read_as};
use super::{Namespace, blocking};
use crate::auth::{Caller, Credential};
use crate::model::{Perm, StreamRow};
use crate::namespace::cursors::{Committer, CursorCommit, MemberInfo};
use crate::{Error, Result};

/// Session timeout when the member asks for none, and the range it may ask for.
pub const DEFAULT_SESSION_TIMEOUT_MS: u32 = 10_000;
/// The most one push reads (at least one batch), as Kafka's default per-partition fetch:
/// a client that grants huge credit and stops reading holds a few of these, not gigabytes.
pub const MAX_PUSH_BYTES: usize = 1 << 20;
pub const MIN_SESSION_TIMEOUT_MS: u32 = 1_000;
pub const MAX_SESSION_TIMEOUT_MS: u32 = 300_000;

/// A member's request to join.
#[derive(Debug, Clone, Default)]
pub struct JoinRequest {
    pub stream: String,
    pub group: String,
    pub member_id: Option<String>,
    pub topics: Vec<String>,
    pub topic_pattern: Option<String>,
    pub assignor: String,
    /// 0: the default.
    pub session_timeout_ms: u32,
    pub client_id: String,
    /// Where partitions without a cursor start: `Earliest` or `Latest`.
    pub start: Option<OffsetSpec>,
}

/// What a member's client sends during its session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMsg {
    Credit {
        bytes: u64,
        batches: u32,
    },
    Heartbeat,
    Revoked {
        generation: u64,
        partitions: Vec<TopicPartition>,
    },
}

/// What the server pushes to a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerMsg {
    Joined {
        member_id: String,
        session_timeout_ms: u32,
    },
    /// Every partition the member owns now, with where delivery continues.
    Assignment {
        generation: u64,
        partitions: Vec<(TopicPartition, u64)>,
    },
    Records(PartitionRecords),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRecords {
    pub tp: TopicPartition,
    /// Stored batches, byte for byte.
    pub batches: Vec<Bytes>,
    pub high_watermark: u64,
    /// Delivery jumped to this offset because the position fell below the log start.
    pub skipped_to: Option<u64>,
}

/// What a session learns from its group.
enum Event {
    Assignment(Assignment),
    Removed(RemovedReason),
    /// Another session rejoined with this member id.
    Replaced,
    /// The stream was deleted.
    Gone,
}

pub(super) struct LiveGroup {
    stream: Arc<StreamRow>,
    name: String,
    inner: parking_lot::Mutex<Inner>,
    /// Wakes the ticker when deadlines may have moved.
    wake: Notify,
}

struct Inner {
    group: Group,
    sessions: HashMap<String, mpsc::UnboundedSender<Event>>,
    topics: BTreeMap<String, u32>,
    /// Removed from the registry: joiners must make a new one.
    closed: bool,
}

impl Inner {
    fn dispatch(&mut self, changes: Changes) {
        for (member, reason) in changes.removed {
            if let Some(tx) = self.sessions.remove(&member) {
                let _ = tx.send(Event::Removed(reason));
            }
        }
        for (member, a) in changes.assignments {
            if let Some(tx) = self.sessions.get(&member) {
                let _ = tx.send(Event::Assignment(a));
            }
        }
    }
}

/// The registry of live groups, by stream id and group name: Tributary's own, and Kafka's
/// classic groups (`classic.rs`) under the same keys, so a group speaks one protocol at a
/// time.
#[derive(Default)]
pub(super) struct LiveGroups {
    map: parking_lot::Mutex<HashMap<(Uuid, String), Arc<LiveGroup>>>,
    pub(super) classic: parking_lot::Mutex<HashMap<(Uuid, String), Arc<ClassicLive>>>,
    /// Held across a join's check of the other protocol's members and the join itself,
    /// by both protocols, so two first joins cannot each miss the other. Taken before any
    /// group's lock.
    pub(super) joining: parking_lot::Mutex<()>,
}

/// A live Kafka classic group: the state machine and the requests parked in it.
pub(super) struct ClassicLive {
    pub(super) stream: Arc<StreamRow>,
    pub(super) name: String,
    pub(super) inner: parking_lot::Mutex<ClassicInner>,
    /// Wakes the ticker when deadlines may have moved.
    pub(super) wake: Notify,
}

pub(super) struct ClassicInner {
    pub(super) group: ClassicGroup,
    /// JoinGroup and SyncGroup requests waiting for their answer, by member id.
    pub(super) joins: HashMap<String, oneshot::Sender<tributary_core::Result<Joined>>>,
    pub(super) syncs: HashMap<String, oneshot::Sender<tributary_core::Result<Bytes>>>,
    /// Removed from the registry: callers must make a new one.
    pub(super) closed: bool,
}

impl ClassicInner {
    /// Hands each reply to the request parked for it (gone if its connection closed).
    pub(super) fn route(&mut self, replies: Vec<Reply>) {
        for r in replies {
            match r {
                Reply::Join { member, answer } => {
                    if let Some(tx) = self.joins.remove(&member) {
                        let _ = tx.send(answer);
                    }
                }
                Reply::Sync { member, answer } => {
                    if let Some(tx) = self.syncs.remove(&member) {
                        let _ = tx.send(answer);
                    }
                }
            }
        }
    }
}

impl LiveGroups {
    /// Members of the Tributary group `key`, if it is live.
    fn tributary_members(&self, key: &(Uuid, String)) -> usize {
        let g = self.map.lock().get(key).cloned();
        g.map_or(0, |g| g.inner.lock().group.describe().members.len())
    }

    /// Members of the Kafka group `key`, if it is live.
    pub(super) fn classic_members(&self, key: &(Uuid, String)) -> usize {
        let g = self.classic.lock().get(key).cloned();
        g.map_or(0, |g| g.inner.lock().group.member_count())
    }

    /// Refuses a Kafka member while the Tributary group of the same key has members.
    pub(super) fn check_no_tributary_members(&self, s: &StreamRow, group: &str) -> Result<()> {
        match self.tributary_members(&(s.id, group.to_owned())) {
            0 => Ok(()),
            n => Err(Error::Group(tributary_core::Error::InconsistentProtocol {
                group: format!("{} {group}", s.path),
                detail: format!(
                    "{n} member(s) read it through Tributary's Subscribe; a group speaks one protocol at a time"
                ),
            })),
        }
    }
}

impl Namespace {
    /// Checks, before a session starts, that `c` may read `stream` as a group member (the
    /// consume permission), so a refusal is the call's status rather than the stream's.
    pub fn authorize_subscribe(&self, c: &Caller, stream: &str) -> Result<()> {
        let path = StreamPath::parse("join.stream", stream)?;
        let s = self.stream(&path)?;
        self.check(c, &s, Perm::Consume)
    }

    /// Runs one member's session: joins, then serves `inbound` messages and pushes
    /// assignments and records to `outbound` until the client closes its side, the member
    /// is removed, its access is revoked (how the caller authenticated, `credential`, and
    /// its consume permission are checked at the start and again as the session runs), or
    /// the server stops. Leaves the group however it ends.
    pub async fn subscribe(
        self: &Arc<Self>,
        credential: &Credential,
        join: JoinRequest,
        mut inbound: mpsc::Receiver<ClientMsg>,
        outbound: mpsc::Sender<ServerMsg>,
    ) -> Result<()> {
        let path = StreamPath::parse("join.stream", &join.stream)?;
        check_group("join.group", &join.group)?;
        let s = self.stream(&path)?;
        let access = self.hold_access(credential, &s, Perm::Consume)?;
        let subscription = match join.topic_pattern.as_deref().filter(|p| !p.is_empty()) {
            Some(p) => Subscription::pattern(p),
            None => Subscription::topics(join.topics.iter().cloned()),
        }
        .map_err(|e| match Error::from(e) {
            Error::InvalidArgument { field, message } => Error::InvalidArgument {
                field: format!("join.{field}"),
                message,
            },
            e => e,
        })?;
        let assignor = join.assignor.parse()?;
        let timeout = match join.session_timeout_ms {
            0 => DEFAULT_SESSION_TIMEOUT_MS,
            t if (MIN_SESSION_TIMEOUT_MS..=MAX_SESSION_TIMEOUT_MS).contains(&t) => t,
            t => {
                return Err(Error::invalid(
                    "join.session_timeout_ms",
                    format!("{t} is outside {MIN_SESSION_TIMEOUT_MS} to {MAX_SESSION_TIMEOUT_MS}"),
                ));
            }
        };
        let start = match join.start.unwrap_or(OffsetSpec::Earliest) {
            spec @ (OffsetSpec::Earliest | OffsetSpec::Latest) => spec,
            OffsetSpec::Timestamp(_) => {
                return Err(Error::invalid(
                    "join.start",
                    "EARLIEST or LATEST (seek by time with a group reset)".into(),
                ));
            }
        };
        let spec = JoinSpec {
            member_id: join.member_id.filter(|m| !m.is_empty()),
            client_id: join.client_id,
            subscription,
            assignor,
            session_timeout_ms: i64::from(timeout),
        };
        let (tx, events) = mpsc::unbounded_channel();
        let (live, member) = loop {
            let live = self.live_group(&s, &join.group).await?;
            let _joining = self.live.joining.lock();
            let kafka_members = self.live.classic_members(&(s.id, join.group.clone()));
            if kafka_members > 0 {
                return Err(Error::Group(tributary_core::Error::InconsistentProtocol {
                    group: format!("{} {}", s.path, join.group),
                    detail: format!(
                        "{kafka_members} Kafka client(s) are members; a group speaks one protocol at a time"
                    ),
                }));
            }
            let mut inner = live.inner.lock();
            if inner.closed {
                continue;
            }
            let topics = inner.topics.clone();
            let (member, changes) = inner
                .group
                .join(spec.clone(), &topics, self.clock.now_ms())?;
            if let Some(old) = inner.sessions.insert(member.clone(), tx.clone()) {
                let _ = old.send(Event::Replaced);
            }
            inner.dispatch(changes);
            drop(inner);
            break (live, member);
        };
        live.wake.notify_one();
        let guard = Membership {
            live: live.clone(),
            member: member.clone(),
            tx,
            clock: self.clock.clone(),
        };
        outbound
            .send(ServerMsg::Joined {
                member_id: member.clone(),
                session_timeout_ms: timeout,
            })
            .await
            .map_err(|_| Error::ShuttingDown)?;
        let session = Session {
            ns: self.clone(),
            stream: s,
            access,
            live,
            member,
            start,
            readers: BTreeMap::new(),
            credit_bytes: 0,
            credit_batches: 0,
            last_served: None,
        };
        let result = session.run(events, &mut inbound, &outbound).await;
        drop(guard);
        result
    }

    /// The live group, made (with its ticker) if absent.
    async fn live_group(
        self: &Arc<Self>,
        s: &Arc<StreamRow>,
        group: &str,
    ) -> Result<Arc<LiveGroup>> {
        let key = (s.id, group.to_owned());
        if let Some(g) = self.live.map.lock().get(&key) {
            return Ok(g.clone());
        }
        let topics = self.stream_topics(s).await?;
        let mut map = self.live.map.lock();
        if let Some(g) = map.get(&key) {
            return Ok(g.clone());
        }
        let live = Arc::new(LiveGroup {
            stream: s.clone(),
            name: group.to_owned(),
            inner: parking_lot::Mutex::new(Inner {
                group: Group::new(format!("{} {group}", s.path)),
                sessions: HashMap::new(),
                topics,
                closed: false,
            }),
            wake: Notify::new(),
        });
        map.insert(key, live.clone());
        tokio::spawn(self.clone().tick(live.clone()));
        Ok(live)
    }

    /// Topic name -> partition count of a stream.
    async fn stream_topics(&self, s: &StreamRow) -> Result<BTreeMap<String, u32>> {
        Ok(self
            .topic_rows(s)
            .await?
            .into_iter()
            .map(|t| (t.name, t.partitions.len() as u32))
            .collect())
    }

    /// A group's ticker: expires members at their deadlines, follows topic changes, and
    /// retires the group once it has no members.
    async fn tick(self: Arc<Self>, live: Arc<LiveGroup>) {
        let mut catalog = self.catalog.subscribe();
        loop {
            let deadline = live.inner.lock().group.next_deadline();
            let wait = deadline.map(|d| {
                Duration::from_millis(d.saturating_sub(self.clock.now_ms()).max(0) as u64)
            });
            let mut topics_changed = false;
            tokio::select! {
                _ = async { match wait { Some(w) => tokio::time::sleep(w).await, None => std::future::pending().await } } => {}
                _ = live.wake.notified() => {}
                changed = catalog.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    topics_changed = true;
                }
            }
            if topics_changed {
                let current = self
                    .streams
                    .read()
                    .get(&live.stream.path)
                    .filter(|s| s.id == live.stream.id)
                    .cloned();
                let Some(s) = current else {
                    self.retire(&live, true);
                    return;
                };
                if let Ok(topics) = self.stream_topics(&s).await {
                    let mut inner = live.inner.lock();
                    if inner.topics != topics {
                        let changes = inner.group.topics_changed(&topics, self.clock.now_ms());
                        inner.topics = topics;
                        inner.dispatch(changes);
                    }
                }
            }
            {
                let mut inner = live.inner.lock();
                let now = self.clock.now_ms();
                // An open Subscribe stream keeps its member alive (consumer.proto): a member
                // waiting for records has nothing to say. A peer that vanished is found by
                // the transport's keepalive, which closes its stream, and the session's end
                // leaves the group.
                let open: Vec<String> = inner.sessions.keys().cloned().collect();
                for member in open {
                    let _ = inner.group.heartbeat(&member, now);
                }
                let topics = inner.topics.clone();
                let changes = inner.group.expire(&topics, now);
                inner.dispatch(changes);
            }
            if self.retire(&live, false) {
                return;
            }
        }
    }

    /// Drops a group from the registry when it has no members (or always, when its stream
    /// is gone); returns whether it did.
    fn retire(&self, live: &LiveGroup, stream_gone: bool) -> bool {
        let mut map = self.live.map.lock();
        let mut inner = live.inner.lock();
        if !stream_gone && !inner.group.is_empty() {
            return false;
        }
        inner.closed = true;
        for (_, tx) in inner.sessions.drain() {
            let _ = tx.send(Event::Gone);
        }
        map.remove(&(live.stream.id, live.name.clone()));
        true
    }

    /// `(group, members, generation)` of the stream's live groups.
    pub(super) fn live_groups(&self, s: &StreamRow) -> Vec<(String, u32, u64)> {
        let groups: Vec<_> = self
            .live
            .map
            .lock()
            .iter()
            .filter(|((id, _), _)| *id == s.id)
            .map(|(_, g)| g.clone())
            .collect();
        let classic: Vec<_> = self
            .live
            .classic
            .lock()
            .iter()
            .filter(|((id, _), _)| *id == s.id)
            .map(|(_, g)| g.clone())
            .collect();
        groups
            .into_iter()
            .map(|g| {
                let d = g.inner.lock().group.describe();
                (g.name.clone(), d.members.len() as u32, d.generation)
            })
            .chain(classic.into_iter().map(|g| {
                let inner = g.inner.lock();
                let generation = inner.group.generation().max(0) as u64;
                (
                    g.name.clone(),
                    inner.group.member_count() as u32,
                    generation,
                )
            }))
            .filter(|(_, members, _)| *members > 0)
            .collect()
    }

    /// `(generation, assignor, members)` of a live group.
    pub(super) fn live_group_view(
        &self,
        s: &StreamRow,
        group: &str,
    ) -> Option<(u64, String, Vec<MemberInfo>)> {
        let key = (s.id, group.to_owned());
        let classic = self.live.classic.lock().get(&key).cloned();
        if let Some(g) = classic {
            let d = g.inner.lock().group.describe();
            if !d.members.is_empty() {
                let consumers = d.protocol_type == "consumer";
                let members = d
                    .members
                    .into_iter()
                    .map(|m| MemberInfo {
                        partitions: if consumers {
                            kafka_assignment(&s.path, &m.assignment)
                        } else {
                            Vec::new()
                        },
                        member_id: m.member_id,
                        client_id: m.client_id,
                        last_heartbeat_ms: m.last_heartbeat_ms,
                        session_timeout_ms: i64::from(m.session_timeout_ms),
                    })
                    .collect();
                let protocol = format!("kafka {}", d.protocol_name);
                return Some((d.generation.max(0) as u64, protocol, members));
            }
        }
        let live = self.live.map.lock().get(&key).cloned()?;
        let d = live.inner.lock().group.describe();
        Some((
            d.generation,
            d.assignor.map(|a| a.name().to_owned()).unwrap_or_default(),
            d.members
                .into_iter()
                .map(|m| MemberInfo {
                    member_id: m.member_id,
                    client_id: m.client_id,
                    partitions: m
                        .owned
                        .into_iter()
                        .map(|tp| (tp.topic, tp.partition))
                        .collect(),
                    last_heartbeat_ms: m.last_heartbeat_ms,
                    session_timeout_ms: m.session_timeout_ms,
                })
                .collect(),
        ))
    }

    /// A commit is allowed from a member owning (or revoking) each partition at the current
    /// generation, or, without a member, while the group has no members.
    pub(super) fn check_committer(
        &self,
        s: &StreamRow,
        group: &str,
        committer: Option<&Committer>,
        cursors: &[CursorCommit],
    ) -> Result<()> {
        let kafka_members = self.live.classic_members(&(s.id, group.to_owned()));
        if kafka_members > 0 {
            return Err(Error::Group(tributary_core::Error::InconsistentProtocol {
                group: format!("{} {group}", s.path),
                detail: format!(
                    "{kafka_members} Kafka client(s) are members; they commit through the Kafka protocol"
                ),
            }));
        }
        let live = self.live.map.lock().get(&(s.id, group.to_owned())).cloned();
        match (committer, live) {
            (Some(m), Some(live)) => {
                let inner = live.inner.lock();
                for c in cursors {
                    let tp = TopicPartition::new(c.topic.clone(), c.partition);
                    inner.group.check_commit(&m.member_id, m.generation, &tp)?;
                }
                Ok(())
            }
            (Some(m), None) => Err(Error::Group(tributary_core::Error::UnknownMember {
                group: format!("{} {group}", s.path),
                member: m.member_id.clone(),
            })),
            (None, Some(live)) if !live.inner.lock().group.is_empty() => {
                Err(Error::FailedPrecondition(format!(
                    "group {group} of {} has members; commit as a member, with its member id and generation",
                    s.path
                )))
            }
            (None, _) => Ok(()),
        }
    }
}

/// Leaves the group when the session ends, however it ends.
struct Membership {
    live: Arc<LiveGroup>,
    member: String,
    tx: mpsc::UnboundedSender<Event>,
    clock: Arc<dyn crate::clock::Clock>,
}

impl Drop for Membership {
    fn drop(&mut self) {
        let mut inner = self.live.inner.lock();
        // Only if this session still holds the membership (not replaced by a rejoin).
        if inner
            .sessions
            .get(&self.member)
            .is_some_and(|tx| tx.same_channel(&self.tx))
        {
            inner.sessions.remove(&self.member);
            let topics = inner.topics.clone();
            let changes = inner
                .group
                .leave(&self.member, &topics, self.clock.now_ms());
            inner.dispatch(changes);
        }
        drop(inner);
        self.live.wake.notify_one();
    }
}

struct Reader {
    id: PartitionId,
    position: u64,
    hwm: watch::Receiver<u64>,
    skipped_to: Option<u64>,
}

struct Session {
    ns: Arc<Namespace>,
    stream: Arc<StreamRow>,
    /// Checked again before records go out and whenever it is due while idle.
    access: Access,
    live: Arc<LiveGroup>,
    member: String,
    start: OffsetSpec,
    readers: BTreeMap<TopicPartition, Reader>,
    credit_bytes: i64,
    credit_batches: i64,
    last_served: Option<TopicPartition>,
}

impl Session {
    async fn run(
        mut self,
        mut events: mpsc::UnboundedReceiver<Event>,
        inbound: &mut mpsc::Receiver<ClientMsg>,
        outbound: &mpsc::Sender<ServerMsg>,
    ) -> Result<()> {
        let mut closing = self.ns.closing.subscribe();
        loop {
            if self.credit_bytes > 0
                && self.credit_batches > 0
                && let Some(tp) = self.ready()
            {
                let msg = self.read(&tp).await?;
                if let Some(msg) = msg {
                    // Read, then checked, then pushed: why nothing appended after a
                    // revocation is pushed is in access.rs.
                    self.access.recheck(&self.ns)?;
                    if !self.push(msg, outbound, inbound, &mut closing).await? {
                        return Ok(());
                    }
                }
                continue;
            }
            let can_send = self.credit_bytes > 0 && self.credit_batches > 0;
            let data = self.any_new_data();
            let access_due = self.access.due();
            tokio::select! {
                biased;
                _ = closing.changed() => return Err(Error::ShuttingDown),
                _ = access_due => self.access.recheck(&self.ns)?,
                ev = events.recv() => match ev {
                    Some(Event::Assignment(a)) => {
                        let msg = self.assign(a).await?;
                        if !self.push(msg, outbound, inbound, &mut closing).await? {
                            return Ok(());
                        }
                    }
                    Some(Event::Removed(reason)) => {
                        return Err(Error::FailedPrecondition(format!(
                            "member {} was removed from group {} because {reason}; join again",
                            self.member, self.live.name
                        )));
                    }
                    Some(Event::Replaced) => {
                        return Err(Error::FailedPrecondition(format!(
                            "member {} rejoined group {} on another session", self.member, self.live.name
                        )));
                    }
                    Some(Event::Gone) | None => {
                        return Err(Error::NotFound { what: "stream", path: self.stream.path.clone() });
                    }
                },
                msg = inbound.recv() => match msg {
                    None => return Ok(()),
                    Some(m) => self.handle(m)?,
                },
                _ = data, if can_send => {}
            }
        }
    }

    /// Sends `msg`, still serving the client's messages while the channel is full (a slow
    /// reader); false when the client has left meanwhile.
    async fn push(
        &mut self,
        msg: ServerMsg,
        outbound: &mpsc::Sender<ServerMsg>,
        inbound: &mut mpsc::Receiver<ClientMsg>,
        closing: &mut watch::Receiver<bool>,
    ) -> Result<bool> {
        let permit = loop {
            tokio::select! {
                biased;
                _ = closing.changed() => return Err(Error::ShuttingDown),
                permit = outbound.reserve() => break permit.map_err(|_| Error::ShuttingDown)?,
                m = inbound.recv() => match m {
                    None => return Ok(false),
                    Some(m) => self.handle(m)?,
                },
            }
        };
        permit.send(msg);
        Ok(true)
    }

    fn handle(&mut self, m: ClientMsg) -> Result<()> {
        let now = self.ns.clock.now_ms();
        let mut inner = self.live.inner.lock();
        match m {
            ClientMsg::Credit { bytes, batches } => {
                self.credit_bytes = self
                    .credit_bytes
                    .saturating_add(bytes.min(i64::MAX as u64) as i64);
                self.credit_batches = self.credit_batches.saturating_add(i64::from(batches));
                inner.group.heartbeat(&self.member, now)?;
            }
            ClientMsg::Heartbeat => inner.group.heartbeat(&self.member, now)?,
            ClientMsg::Revoked { partitions, .. } => {
                let topics = inner.topics.clone();
                let changes = inner
                    .group
                    .revoked(&self.member, &partitions, &topics, now)?;
                inner.dispatch(changes);
            }
        }
        drop(inner);
        self.live.wake.notify_one();
        Ok(())
    }

    /// Applies a new assignment: stops reading what was taken away, starts what was given
    /// (at the group's cursor, or the start policy), and tells the client.
    async fn assign(&mut self, a: Assignment) -> Result<ServerMsg> {
        self.readers.retain(|tp, _| a.partitions.contains(tp));
        let cursors = self.ns.group_cursors(&self.stream, &self.live.name).await?;
        let cutoff = self.ns.expire_before(&self.stream);
        for tp in &a.partitions {
            if self.readers.contains_key(tp) {
                continue;
            }
            let path = TopicPath::parse("topic", &format!("{}:{}", self.stream.path, tp.topic))?;
            let t = match self.ns.topic(&path, false).await {
                Ok(t) => t,
                Err(Error::NotFound { .. }) => continue, // deleted meanwhile; a rebalance follows
                Err(e) => return Err(e),
            };
            let Some(&id) = t.row.partitions.get(tp.partition as usize) else {
                continue;
            };
            let store = self.ns.store.clone();
            let start = self.start;
            let committed = cursors.get(&id).map(|c| c.offset);
            let position = blocking(move || {
                let earliest = store.partition_stats(id, cutoff)?;
                Ok(match committed {
                    Some(o) => o.clamp(earliest.log_start, earliest.high_watermark),
                    None => partition_offset(&store, id, start, cutoff)?.offset,
                })
            })
            .await?;
            let hwm = match self.ns.store.watch(id) {
                Ok(w) => w,
                Err(storage::Error::UnknownPartition(_)) => continue,
                Err(e) => return Err(e.into()),
            };
            self.readers.insert(
                tp.clone(),
                Reader {
                    id,
                    position,
                    hwm,
                    skipped_to: None,
                },
            );
        }
        Ok(ServerMsg::Assignment {
            generation: a.generation,
            partitions: self
                .readers
                .iter()
                .map(|(tp, r)| (tp.clone(), r.position))
                .collect(),
        })
    }

    /// The next partition with records to send, round-robin after the last one served.
    fn ready(&mut self) -> Option<TopicPartition> {
        let ready = |r: &mut Reader| r.position < *r.hwm.borrow_and_update();
        let after: Vec<TopicPartition> = match &self.last_served {
            Some(last) => self
                .readers
                .range::<TopicPartition, _>((
                    std::ops::Bound::Excluded(last),
                    std::ops::Bound::Unbounded,
                ))
                .map(|(tp, _)| tp.clone())
                .chain(
                    self.readers
                        .range(..=last.clone())
                        .map(|(tp, _)| tp.clone()),
                )
                .collect(),
            None => self.readers.keys().cloned().collect(),
        };
        after
            .into_iter()
            .find(|tp| self.readers.get_mut(tp).is_some_and(ready))
    }

    /// Reads the next batches of `tp` within the credit; `None` when nothing came back.
    async fn read(&mut self, tp: &TopicPartition) -> Result<Option<ServerMsg>> {
        self.last_served = Some(tp.clone());
        let r = self
            .readers
            .get_mut(tp)
            .expect("ready partitions have readers");
        let (id, position) = (r.id, r.position);
        let budget = (self.credit_bytes as usize).min(MAX_PUSH_BYTES);
        let cutoff = self.ns.expire_before(&self.stream);
        let store = self.ns.store.clone();
        let read =
            blocking(move || read_as(&store, id, position, budget, cutoff, Form::Records)).await;
        let read = match read {
            Ok(read) => read,
            Err(Error::Storage(storage::Error::OffsetOutOfRange { log_start, .. }))
                if position < log_start =>
            {
                // Retention went past the position: skip to the log start, and say so.
                r.position = log_start;
                r.skipped_to = Some(log_start);
                return Ok(None);
            }
            Err(Error::Storage(storage::Error::UnknownPartition(_))) => {
                self.readers.remove(tp);
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        r.position = read.next_offset;
        if read.batches.is_empty() {
            return Ok(None);
        }
        let bytes: usize = read.batches.iter().map(|b| b.value.len()).sum();
        self.credit_bytes -= bytes as i64;
        self.credit_batches -= read.batches.len() as i64;
        Ok(Some(ServerMsg::Records(PartitionRecords {
            tp: tp.clone(),
            batches: read.batches.into_iter().map(|b| b.value).collect(),
            high_watermark: read.high_watermark,
            skipped_to: r.skipped_to.take(),
        })))
    }

    /// Resolves when any assigned partition's high-water mark moves.
    fn any_new_data(&mut self) -> impl Future<Output = ()> + 'static {
        let mut watches: Vec<watch::Receiver<u64>> =
            self.readers.values().map(|r| r.hwm.clone()).collect();
        async move {
            if watches.is_empty() {
                return std::future::pending().await;
            }
            let changed = watches.iter_mut().map(|w| Box::pin(w.changed()));
            let _ = futures::future::select_all(changed).await;
        }
    }
}

/// A Kafka consumer's assignment as `(topic, partition)`s of the group's stream: a topic
/// named verbatim in this stream by its short name, any other name (another stream's) as
/// the client gave it. Bytes that are no consumer assignment show nothing.
fn kafka_assignment(stream: &str, bytes: &[u8]) -> Vec<(String, u32)> {
    let topics = tributary_core::kafka_group::consumer_assignment(bytes).unwrap_or_default();
    topics
        .into_iter()
        .flat_map(|(name, partitions)| {
            let topic = match TopicPath::parse("topic", &name) {
                Ok(t) if t.stream.to_string() == stream => t.topic,
                _ => name,
            };
            partitions
                .into_iter()
                .filter_map(move |p| Some((topic.clone(), u32::try_from(p).ok()?)))
        })
        .collect()
}

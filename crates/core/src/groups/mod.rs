//! Consumer-group coordination (issue #4): membership, session timeouts, generations and
//! partition assignment for one group, as a pure state machine.
//!
//! A [`Group`] is the in-memory state of one group (a stream path and a group name; the
//! caller keys them and checks the stream's ACLs). It does no I/O, takes no locks and never
//! reads the clock: every call is given `now_ms` and the stream's topics with their
//! partition counts, and returns the [`Changes`] the caller must push to members. The
//! caller wraps each group in a mutex, runs [`Group::expire`] from a ticker (sleeping until
//! [`Group::next_deadline`]) and checks every cursor commit with [`Group::check_commit`].
//!
//! # The rebalance protocol
//!
//! Rebalances are cooperative, like Kafka's incremental cooperative protocol. Each change
//! (a join, a leave, an expiry, a topic change, a confirmed revocation) computes a target
//! assignment with the group's [`Assignor`] from the current ownership, then:
//!
//! - a partition the target takes from a **live** member A is first *revoked*: A's
//!   assignment drops it and A is marked as revoking it, but its new owner B does not get it
//!   yet (the group remembers B as its destination, and the next target starts from that);
//! - when A confirms with [`Group::revoked`] (or leaves, expires, or does not confirm within
//!   its session timeout and is removed), the partition is free and the next change hands it
//!   to B;
//! - partitions of a member that left or died are free at once, and free partitions (new
//!   topics, new partitions, a new group) are assigned directly.
//!
//! Each step that changes any member's view (what it owns or is revoking) moves the
//! generation by one, and every member is sent its assignment at the new generation, because
//! commits are checked against the current generation.
//!
//! Why two steps: if B got the partition at once, A could still be delivering records from
//! a fetch in flight while B starts from the last committed cursor, so records would be
//! delivered twice, and A's late commit could move B's cursor. Revoking first orders the
//! handoff: A stops, commits its final position (a revoking member may still commit), and
//! only then does B start, from that position.
//!
//! ```text
//!  gen  member A                 member B                 coordinator
//!   4   owns p0 p1, reading
//!   5                            join ──────────────────► target A{p0} B{p1}; p1 moves
//!       ◄── g5 owns {p0}, revoking {p1}                   A revokes p1, B waits
//!                                ◄── g5 owns {}
//!       stops p1, commits p1@g5 ─────────────────────────► allowed: A is revoking p1
//!       revoked([p1]) ───────────────────────────────────► p1 free: hand it to B
//!   6   ◄── g6 owns {p0}
//!                                ◄── g6 owns {p1}
//!                                reads p1 from A's final commit
//! ```
//!
//! **Invariant:** a partition is never owned by two members, and never owned while any
//! member is still revoking it. Generations strictly increase.

mod assign;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::str::FromStr;

use regex::{Regex, RegexBuilder};

use crate::{Error, Result};

/// The longest session timeout a member may ask for (Kafka's `group.max.session.timeout.ms`).
pub const MAX_SESSION_TIMEOUT_MS: i64 = 30 * 60 * 1000;
/// The longest topic-name pattern accepted.
pub const MAX_PATTERN_BYTES: usize = 1024;
/// The longest client id accepted.
pub const MAX_CLIENT_ID_BYTES: usize = 255;
/// How many removed member ids a group remembers, to tell a zombie why it was removed.
const FENCED_MEMORY: usize = 1024;

/// How a group's partitions are spread over its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Assignor {
    /// Kafka's RangeAssignor: per topic, contiguous ranges, the first members one extra.
    Range,
    /// Kafka's RoundRobinAssignor: all partitions dealt in (topic, partition) order.
    RoundRobin,
    /// Balanced, and moves as few partitions as it can from one rebalance to the next.
    #[default]
    Sticky,
}

impl Assignor {
    pub fn name(self) -> &'static str {
        match self {
            Assignor::Range => "range",
            Assignor::RoundRobin => "roundrobin",
            Assignor::Sticky => "sticky",
        }
    }
}

impl FromStr for Assignor {
    type Err = Error;

    /// `range`, `roundrobin` or `sticky`; the empty string (an unset protobuf field) is the
    /// default, `sticky`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "range" => Ok(Assignor::Range),
            "roundrobin" => Ok(Assignor::RoundRobin),
            "sticky" | "" => Ok(Assignor::Sticky),
            other => Err(Error::invalid(
                "assignor",
                format!("unknown assignor `{other}`; known are range, roundrobin and sticky"),
            )),
        }
    }
}

impl fmt::Display for Assignor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A regular expression that must match a whole topic name.
#[derive(Debug, Clone)]
pub struct TopicPattern {
    source: String,
    anchored: Regex,
}

impl TopicPattern {
    /// Compiles `pattern` (Rust `regex` syntax) to match whole topic names: `temp.*` matches
    /// `temperature` but not `room-temp`.
    pub fn new(pattern: &str) -> Result<Self> {
        let bad = |why: String| Err(Error::invalid("pattern", why));
        if pattern.is_empty() {
            return bad("empty topic pattern".into());
        }
        if pattern.len() > MAX_PATTERN_BYTES {
            return bad(format!(
                "topic pattern is {} bytes long; the limit is {MAX_PATTERN_BYTES}",
                pattern.len()
            ));
        }
        match RegexBuilder::new(&format!("^(?:{pattern})$"))
            .size_limit(1 << 20)
            .build()
        {
            Ok(anchored) => Ok(Self {
                source: pattern.to_owned(),
                anchored,
            }),
            Err(e) => bad(format!("bad topic pattern `{pattern}`: {e}")),
        }
    }

    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn matches(&self, topic: &str) -> bool {
        self.anchored.is_match(topic)
    }
}

impl PartialEq for TopicPattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for TopicPattern {}

/// What a member reads: named topics, or every topic of the stream whose whole name matches
/// a pattern (including topics created later).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subscription {
    /// Sorted and without duplicates once built with [`Subscription::topics`].
    Topics(Vec<String>),
    Pattern(TopicPattern),
}

impl Subscription {
    /// Named topics; at least one. Topics that do not exist yet are assigned once created.
    pub fn topics<S: Into<String>>(topics: impl IntoIterator<Item = S>) -> Result<Self> {
        let set: BTreeSet<String> = topics.into_iter().map(Into::into).collect();
        if set.is_empty() {
            return Err(Error::invalid(
                "topics",
                "subscribe to at least one topic, or give a pattern".into(),
            ));
        }
        if set.contains("") {
            return Err(Error::invalid("topics", "empty topic name".into()));
        }
        Ok(Subscription::Topics(set.into_iter().collect()))
    }

    /// Every topic whose whole name matches `pattern`.
    pub fn pattern(pattern: &str) -> Result<Self> {
        TopicPattern::new(pattern).map(Subscription::Pattern)
    }

    pub fn matches(&self, topic: &str) -> bool {
        match self {
            Subscription::Topics(ts) => ts.iter().any(|t| t == topic),
            Subscription::Pattern(p) => p.matches(topic),
        }
    }

    /// The subscribed topics that exist now.
    fn existing<'t>(&self, topics: &'t BTreeMap<String, u32>) -> BTreeSet<&'t str> {
        match self {
            Subscription::Topics(ts) => ts
                .iter()
                .filter_map(|t| topics.get_key_value(t).map(|(k, _)| k.as_str()))
                .collect(),
            Subscription::Pattern(p) => topics
                .keys()
                .filter(|t| p.matches(t))
                .map(String::as_str)
                .collect(),
        }
    }
}

impl fmt::Display for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subscription::Topics(ts) => write!(f, "topics {}", ts.join(",")),
            Subscription::Pattern(p) => write!(f, "pattern {}", p.as_str()),
        }
    }
}

/// A join or rejoin request.
#[derive(Debug, Clone)]
pub struct JoinSpec {
    /// `None` to join as a new member (the group makes the id); `Some` to rejoin as a
    /// current member, e.g. after a reconnect, keeping its partitions.
    pub member_id: Option<String>,
    pub client_id: String,
    pub subscription: Subscription,
    pub assignor: Assignor,
    /// Silence longer than this removes the member; also the time it has to confirm a
    /// revocation. 1 ms to [`MAX_SESSION_TIMEOUT_MS`].
    pub session_timeout_ms: i64,
}

/// One partition of one topic. Ordered by topic, then partition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: u32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: u32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} #{}", self.topic, self.partition)
    }
}

/// A member's view of the group at one generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub generation: u64,
    /// The partitions the member owns and should read; sorted.
    pub partitions: Vec<TopicPartition>,
    /// Partitions taken from the member: it must stop reading them, commit, and confirm
    /// with [`Group::revoked`] within its session timeout; sorted.
    pub revoking: Vec<TopicPartition>,
}

/// Why a member left the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemovedReason {
    Left,
    SessionExpired,
    RevokeTimeout,
}

impl fmt::Display for RemovedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RemovedReason::Left => "it left the group",
            RemovedReason::SessionExpired => "its session expired",
            RemovedReason::RevokeTimeout => {
                "it did not confirm a revocation within its session timeout"
            }
        })
    }
}

/// What the caller must push after a call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Each member whose view changed, with its new assignment; every member when the
    /// generation moved. Sorted by member id.
    pub assignments: Vec<(String, Assignment)>,
    /// Members removed by this call, and why. Sorted by member id.
    pub removed: Vec<(String, RemovedReason)>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.assignments.is_empty() && self.removed.is_empty()
    }
}

/// A snapshot of a group, for `describe`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub name: String,
    pub generation: u64,
    /// The assignor the members agreed on; `None` while the group is empty.
    pub assignor: Option<Assignor>,
    /// Sorted by member id.
    pub members: Vec<MemberDescription>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    pub member_id: String,
    pub client_id: String,
    pub subscription: Subscription,
    pub last_heartbeat_ms: i64,
    pub session_timeout_ms: i64,
    pub owned: Vec<TopicPartition>,
    pub revoking: Vec<TopicPartition>,
    /// Partitions it gets once their previous owner confirms their revocation.
    pub incoming: Vec<TopicPartition>,
}

#[derive(Debug, Clone)]
struct Member {
    client_id: String,
    subscription: Subscription,
    session_timeout_ms: i64,
    last_heartbeat_ms: i64,
    owned: BTreeSet<TopicPartition>,
    /// Partition → when its revocation began.
    revoking: BTreeMap<TopicPartition, i64>,
}

impl Member {
    fn heartbeat(&mut self, now_ms: i64) {
        self.last_heartbeat_ms = self.last_heartbeat_ms.max(now_ms);
    }

    fn session_deadline(&self) -> i64 {
        self.last_heartbeat_ms
            .saturating_add(self.session_timeout_ms)
    }

    fn revoke_deadline(&self) -> Option<i64> {
        let since = self.revoking.values().min()?;
        Some(since.saturating_add(self.session_timeout_ms))
    }

    /// Why this member should be removed at `now_ms`, if it should.
    fn expiry(&self, now_ms: i64) -> Option<RemovedReason> {
        if now_ms >= self.session_deadline() {
            Some(RemovedReason::SessionExpired)
        } else if self.revoke_deadline().is_some_and(|d| now_ms >= d) {
            Some(RemovedReason::RevokeTimeout)
        } else {
            None
        }
    }
}

/// One consumer group's membership and assignment. See the module docs for the protocol.
#[derive(Debug, Clone)]
pub struct Group {
    name: String,
    generation: u64,
    assignor: Option<Assignor>,
    members: BTreeMap<String, Member>,
    /// Partitions the last target gave to a member while another still revokes them. The
    /// next target starts from them as if owned, so the handoff keeps its destination.
    pending: BTreeMap<TopicPartition, String>,
    /// The topics of the last rebalance; `None` until the first, and while empty.
    last_topics: Option<BTreeMap<String, u32>>,
    /// Recently removed members, oldest first, so a zombie is told why.
    fenced: VecDeque<(String, RemovedReason)>,
}

impl Group {
    /// An empty group at generation 0. `name` appears in error messages.
    pub fn new(name: impl Into<String>) -> Group {
        Group {
            name: name.into(),
            generation: 0,
            assignor: None,
            members: BTreeMap::new(),
            pending: BTreeMap::new(),
            last_topics: None,
            fenced: VecDeque::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Joins a new member (`member_id: None`; the id returned is `CLIENTID-UUID`, or a
    /// bare UUID for an empty client id), or rejoins a current one, which keeps its
    /// partitions: a rejoin that changes nothing else does not rebalance. A `member_id` that
    /// is not a current member is refused (`Fenced` if it was removed recently,
    /// `UnknownMember` otherwise), so a zombie cannot come back under its old id. Every
    /// member must use the group's assignor, the one its first member chose. The result's
    /// `Changes` always holds the joining member's assignment. On error nothing changes.
    pub fn join(
        &mut self,
        spec: JoinSpec,
        topics: &BTreeMap<String, u32>,
        now_ms: i64,
    ) -> Result<(String, Changes)> {
        if !(1..=MAX_SESSION_TIMEOUT_MS).contains(&spec.session_timeout_ms) {
            return Err(Error::invalid(
                "session_timeout_ms",
                format!(
                    "{} is out of range; give 1 to {MAX_SESSION_TIMEOUT_MS}",
                    spec.session_timeout_ms
                ),
            ));
        }
        if spec.client_id.len() > MAX_CLIENT_ID_BYTES {
            return Err(Error::invalid(
                "client_id",
                format!(
                    "is {} bytes long; the limit is {MAX_CLIENT_ID_BYTES}",
                    spec.client_id.len()
                ),
            ));
        }
        if let Some(c) = spec.client_id.chars().find(|c| c.is_control()) {
            return Err(Error::invalid(
                "client_id",
                format!("contains the control character {c:?}"),
            ));
        }
        if let Some(ours) = self.assignor
            && ours != spec.assignor
        {
            return Err(Error::AssignorMismatch {
                group: self.name.clone(),
                group_assignor: ours.name(),
                asked: spec.assignor.name(),
            });
        }
        let id = match spec.member_id {
            Some(id) if self.members.contains_key(&id) => id,
            Some(id) => return Err(self.not_a_member(&id)),
            None => {
                let uuid = uuid::Uuid::new_v4();
                if spec.client_id.is_empty() {
                    uuid.to_string()
                } else {
                    format!("{}-{uuid}", spec.client_id)
                }
            }
        };
        self.assignor = Some(spec.assignor);
        let member = self.members.entry(id.clone()).or_insert_with(|| Member {
            client_id: String::new(),
            subscription: spec.subscription.clone(),
            session_timeout_ms: spec.session_timeout_ms,
            last_heartbeat_ms: now_ms,
            owned: BTreeSet::new(),
            revoking: BTreeMap::new(),
        });
        member.client_id = spec.client_id;
        member.subscription = spec.subscription;
        member.session_timeout_ms = spec.session_timeout_ms;
        member.heartbeat(now_ms);

        let mut changes = self.rebalance(topics, now_ms, false);
        if !changes.assignments.iter().any(|(m, _)| *m == id) {
            let own = self.view(&id).expect("just joined");
            let at = changes.assignments.partition_point(|(m, _)| *m < id);
            changes.assignments.insert(at, (id.clone(), own));
        }
        Ok((id, changes))
    }

    /// Records that `member` is alive.
    pub fn heartbeat(&mut self, member: &str, now_ms: i64) -> Result<()> {
        match self.members.get_mut(member) {
            Some(m) => {
                m.heartbeat(now_ms);
                Ok(())
            }
            None => Err(self.not_a_member(member)),
        }
    }

    /// `member` leaves; its partitions are free at once. Leaving twice is a no-op.
    pub fn leave(&mut self, member: &str, topics: &BTreeMap<String, u32>, now_ms: i64) -> Changes {
        if !self.members.contains_key(member) {
            return Changes::default();
        }
        self.remove(
            vec![(member.to_owned(), RemovedReason::Left)],
            topics,
            now_ms,
        )
    }

    /// Removes members silent for their session timeout or longer, and members that did
    /// not confirm a revocation within their session timeout (both at exactly the timeout),
    /// then rebalances. Called by a ticker at [`Group::next_deadline`].
    pub fn expire(&mut self, topics: &BTreeMap<String, u32>, now_ms: i64) -> Changes {
        let dead: Vec<(String, RemovedReason)> = self
            .members
            .iter()
            .filter_map(|(id, m)| m.expiry(now_ms).map(|why| (id.clone(), why)))
            .collect();
        if dead.is_empty() {
            return Changes::default();
        }
        self.remove(dead, topics, now_ms)
    }

    /// The stream's topics or partition counts changed: rebalances if that affects any
    /// member's subscription (a no-op otherwise).
    pub fn topics_changed(&mut self, topics: &BTreeMap<String, u32>, now_ms: i64) -> Changes {
        if self.last_topics.as_ref() == Some(topics) {
            return Changes::default();
        }
        self.rebalance(topics, now_ms, false)
    }

    /// `member` has stopped reading (and committed) `partitions`, which were being revoked
    /// from it; they go to their new owners. Partitions it is not revoking are ignored, so
    /// a repeated confirmation is harmless. Counts as a heartbeat.
    pub fn revoked(
        &mut self,
        member: &str,
        partitions: &[TopicPartition],
        topics: &BTreeMap<String, u32>,
        now_ms: i64,
    ) -> Result<Changes> {
        let Some(m) = self.members.get_mut(member) else {
            return Err(self.not_a_member(member));
        };
        m.heartbeat(now_ms);
        let confirmed: Vec<&TopicPartition> = partitions
            .iter()
            .filter(|tp| m.revoking.remove(*tp).is_some())
            .collect();
        if confirmed.is_empty() {
            return Ok(Changes::default());
        }
        if self.last_topics.as_ref() != Some(topics) {
            return Ok(self.rebalance(topics, now_ms, true));
        }
        // Members, subscriptions and topics are those of the last rebalance, and its target
        // is what is owned or pending now, so a rebalance would keep that target: hand each
        // partition to the member it was promised to, without recomputing (a confirmation
        // per revoking member would otherwise cost a full rebalance each).
        for tp in confirmed {
            if let Some(to) = self.pending.remove(tp) {
                let to = self.members.get_mut(&to).expect("pending only to members");
                to.owned.insert(tp.clone());
            }
        }
        Ok(self.bump())
    }

    /// May `member` commit `tp`'s cursor at `generation`? Only a current member, at the
    /// current generation, for a partition it owns or is still revoking (so it can commit
    /// its final position before confirming).
    pub fn check_commit(&self, member: &str, generation: u64, tp: &TopicPartition) -> Result<()> {
        let Some(m) = self.members.get(member) else {
            return Err(self.not_a_member(member));
        };
        if generation != self.generation {
            return Err(Error::StaleGeneration {
                group: self.name.clone(),
                given: generation,
                current: self.generation,
            });
        }
        if !m.owned.contains(tp) && !m.revoking.contains_key(tp) {
            return Err(Error::NotAssigned {
                group: self.name.clone(),
                member: member.to_owned(),
                topic: tp.topic.clone(),
                partition: tp.partition,
            });
        }
        Ok(())
    }

    /// `member`'s current assignment, if it is a member.
    pub fn assignment(&self, member: &str) -> Option<Assignment> {
        self.view(member)
    }

    pub fn describe(&self) -> GroupDescription {
        GroupDescription {
            name: self.name.clone(),
            generation: self.generation,
            assignor: self.assignor,
            members: self
                .members
                .iter()
                .map(|(id, m)| MemberDescription {
                    member_id: id.clone(),
                    client_id: m.client_id.clone(),
                    subscription: m.subscription.clone(),
                    last_heartbeat_ms: m.last_heartbeat_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    owned: m.owned.iter().cloned().collect(),
                    revoking: m.revoking.keys().cloned().collect(),
                    incoming: self
                        .pending
                        .iter()
                        .filter(|(_, to)| *to == id)
                        .map(|(tp, _)| tp.clone())
                        .collect(),
                })
                .collect(),
        }
    }

    /// The earliest `now_ms` at which [`Group::expire`] could remove someone; `None` for
    /// an empty group.
    pub fn next_deadline(&self) -> Option<i64> {
        self.members
            .values()
            .flat_map(|m| std::iter::once(m.session_deadline()).chain(m.revoke_deadline()))
            .min()
    }

    fn view(&self, member: &str) -> Option<Assignment> {
        let m = self.members.get(member)?;
        Some(Assignment {
            generation: self.generation,
            partitions: m.owned.iter().cloned().collect(),
            revoking: m.revoking.keys().cloned().collect(),
        })
    }

    fn not_a_member(&self, member: &str) -> Error {
        match self.fenced.iter().rev().find(|(id, _)| id == member) {
            Some((_, reason)) => Error::Fenced {
                group: self.name.clone(),
                member: member.to_owned(),
                reason: *reason,
            },
            None => Error::UnknownMember {
                group: self.name.clone(),
                member: member.to_owned(),
            },
        }
    }

    /// Removes `dead` (current members, sorted by id); their partitions are free at once.
    fn remove(
        &mut self,
        dead: Vec<(String, RemovedReason)>,
        topics: &BTreeMap<String, u32>,
        now_ms: i64,
    ) -> Changes {
        for (id, reason) in &dead {
            self.members.remove(id);
            if self.fenced.len() == FENCED_MEMORY {
                self.fenced.pop_front();
            }
            self.fenced.push_back((id.clone(), *reason));
        }
        if self.members.is_empty() {
            self.assignor = None;
            self.pending.clear();
            self.last_topics = None;
        }
        let mut changes = self.rebalance(topics, now_ms, false);
        changes.removed = dead;
        changes
    }

    /// Moves the group one step towards its target assignment: drops partitions that no
    /// longer exist, starts revoking what the target moves away from its owner, and hands
    /// out target partitions nobody owns or revokes. `dirty` says a member's view already
    /// changed before the call. When any view changed, the generation moves and every
    /// member gets its assignment.
    fn rebalance(&mut self, topics: &BTreeMap<String, u32>, now_ms: i64, dirty: bool) -> Changes {
        let Some(assignor) = self.assignor else {
            return Changes::default();
        };
        let exists = |tp: &TopicPartition| topics.get(&tp.topic).is_some_and(|&n| tp.partition < n);
        let mut changed = dirty;
        for m in self.members.values_mut() {
            let (owned, revoking) = (m.owned.len(), m.revoking.len());
            m.owned.retain(exists);
            m.revoking.retain(|tp, _| exists(tp));
            changed |= m.owned.len() != owned || m.revoking.len() != revoking;
        }

        // Members usually share a subscription: resolve each distinct one once.
        let mut resolved: Vec<(&Subscription, BTreeSet<&str>)> = Vec::new();
        let mut inputs: BTreeMap<&str, assign::MemberInput<'_>> = BTreeMap::new();
        for (id, m) in &self.members {
            let topics = match resolved.iter().find(|(s, _)| **s == m.subscription) {
                Some((_, set)) => set.clone(),
                None => {
                    let set = m.subscription.existing(topics);
                    resolved.push((&m.subscription, set.clone()));
                    set
                }
            };
            let owned = m.owned.clone();
            inputs.insert(id.as_str(), assign::MemberInput { topics, owned });
        }
        for (tp, to) in &self.pending {
            if let Some(input) = inputs.get_mut(to.as_str()) {
                input.owned.insert(tp.clone());
            }
        }
        let target = assign::assign(assignor, &inputs, topics);
        self.pending.clear();

        let none = BTreeSet::new();
        let mut busy: BTreeSet<TopicPartition> = BTreeSet::new();
        for (id, m) in &mut self.members {
            let want = target.get(id).unwrap_or(&none);
            let moving: Vec<TopicPartition> = m.owned.difference(want).cloned().collect();
            for tp in moving {
                m.owned.remove(&tp);
                m.revoking.insert(tp, now_ms);
                changed = true;
            }
            busy.extend(m.owned.iter().cloned());
            busy.extend(m.revoking.keys().cloned());
        }
        for (id, m) in &mut self.members {
            for tp in target.get(id).unwrap_or(&none) {
                if m.owned.contains(tp) {
                    continue;
                }
                if busy.contains(tp) {
                    self.pending.insert(tp.clone(), id.clone());
                } else {
                    m.owned.insert(tp.clone());
                    busy.insert(tp.clone());
                    changed = true;
                }
            }
        }

        self.last_topics = Some(topics.clone());
        if !changed {
            return Changes::default();
        }
        self.bump()
    }

    /// Moves the generation after a change and tells every member.
    fn bump(&mut self) -> Changes {
        self.generation += 1;
        Changes {
            assignments: self
                .members
                .keys()
                .map(|id| (id.clone(), self.view(id).expect("a member")))
                .collect(),
            removed: Vec::new(),
        }
    }
}

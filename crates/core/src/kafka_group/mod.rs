//! Kafka's classic consumer-group protocol (design §9), the one every Kafka client speaks
//! by default, as a pure state machine: no I/O, no locks, no clock (every call is given
//! `now_ms`), as `groups/` is for Tributary's own groups.
//!
//! The broker does not assign partitions here: a client-side leader does. The group only
//! gathers the members (JoinGroup), picks a protocol they all support and a leader, gives
//! the leader every member's metadata, and relays the leader's assignments (SyncGroup).
//! Metadata and assignments are opaque bytes.
//!
//! ```text
//!  Empty ──join──► PreparingRebalance ──all joined, or the rebalance timeout──► CompletingRebalance
//!                        ▲   (generation + 1, leader chosen, joins answered)        │
//!                        │                                                          │ the leader syncs
//!                        └──── a join, leave, expiry, or a sync not sent in time ── Stable
//! ```
//!
//! JoinGroup and SyncGroup are answered late: a call returns the [`Reply`]s it completes,
//! each addressed to a member, and the caller parks the request on its member id until its
//! reply comes (its own may be among those returned). Kafka's rules, kept here:
//!
//! - a first JoinGroup without a member id (version 4 and later) gets a member id and
//!   MEMBER_ID_REQUIRED, and must come back with it;
//! - static members (`group.instance.id`) keep their place across restarts: a join under a
//!   known instance id replaces the old member id, which is fenced (FENCED_INSTANCE_ID);
//! - every member must support one protocol in common (INCONSISTENT_GROUP_PROTOCOL), and
//!   each votes for its most preferred;
//! - heartbeats, syncs and commits name the generation (ILLEGAL_GENERATION) and a current
//!   member (UNKNOWN_MEMBER_ID); a heartbeat during a rebalance is told REBALANCE_IN_PROGRESS;
//! - a member silent past its session timeout, or gone, is removed and the group rebalances;
//! - the first join phase of an empty group lasts the initial rebalance delay (Kafka's
//!   `group.initial.rebalance.delay.ms`), extended by the same again while new members keep
//!   arriving, up to the rebalance timeout: members starting together form one generation,
//!   and a first member's client has time to learn its topics' metadata before it assigns.
//!
//! **Invariant:** the generation moves exactly when a join phase completes; the leader is
//! a member; the protocol chosen is supported by every member.

mod assignment;
#[cfg(test)]
mod tests;

pub use assignment::consumer_assignment;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use bytes::Bytes;

use crate::{Error, Result};

/// The shortest session timeout accepted (Kafka's `group.min.session.timeout.ms` is 6 s;
/// lower here so tests and quick failover can use 1 s).
pub const MIN_SESSION_TIMEOUT_MS: i32 = 1_000;
/// The longest (Kafka's `group.max.session.timeout.ms`).
pub const MAX_SESSION_TIMEOUT_MS: i32 = 30 * 60 * 1000;
/// How long a new member may wait in its first join, as Kafka's new-member timeout.
pub const NEW_MEMBER_TIMEOUT_MS: i64 = 5 * 60 * 1000;
/// Members, and member ids handed out but not yet used, one group holds (Kafka's
/// `group.max.size`, GROUP_MAX_SIZE_REACHED).
pub const MAX_MEMBERS: usize = 1000;
/// The longest prefix of a client or instance id a member id keeps.
const ID_PREFIX_BYTES: usize = 128;

/// Where a group stands (Kafka's names, as DescribeGroups reports them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Empty => "Empty",
            State::PreparingRebalance => "PreparingRebalance",
            State::CompletingRebalance => "CompletingRebalance",
            State::Stable => "Stable",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A JoinGroup request.
#[derive(Debug, Clone, Default)]
pub struct JoinRequest {
    /// Empty for a member without an id yet.
    pub member_id: String,
    /// `group.instance.id`: a static member.
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    /// How long a rebalance waits for the members to rejoin (version 0: the session
    /// timeout).
    pub rebalance_timeout_ms: i32,
    /// `consumer` for consumers; every member must name the same.
    pub protocol_type: String,
    /// `(name, metadata)`, most preferred first.
    pub protocols: Vec<(String, Bytes)>,
    /// Version 4 and later: a member without an id gets one and MEMBER_ID_REQUIRED.
    pub require_known_member_id: bool,
}

/// A completed join, as JoinGroup answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    pub generation: i32,
    pub protocol_type: String,
    pub protocol_name: String,
    pub leader: String,
    pub member_id: String,
    /// Every member with its metadata for the chosen protocol, for the leader; empty for
    /// the others.
    pub members: Vec<JoinedMember>,
    /// A restarted static leader of a stable group: the assignment stands, the leader need
    /// not compute one (JoinGroup v9, KIP-814; before, its SyncGroup gets the one in force).
    pub skip_assignment: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub metadata: Bytes,
}

/// A SyncGroup request.
#[derive(Debug, Clone, Default)]
pub struct SyncRequest {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub generation: i32,
    /// Version 5 and later: checked against the group's.
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    /// The leader's assignments, `(member id, assignment)`; empty from the others.
    pub assignments: Vec<(String, Bytes)>,
}

/// An answer to a parked JoinGroup or SyncGroup, addressed to its member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Join {
        member: String,
        answer: Result<Joined>,
    },
    Sync {
        member: String,
        answer: Result<Bytes>,
    },
}

/// One member leaving (LeaveGroup v3 and later name several).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leaving {
    /// May be empty for a static member named by its instance id.
    pub member_id: String,
    pub instance_id: Option<String>,
}

/// A snapshot of a group, for DescribeGroups and `tributary group info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description {
    pub state: State,
    pub generation: i32,
    /// Empty while the group is.
    pub protocol_type: String,
    /// The protocol chosen at the last join; empty before.
    pub protocol_name: String,
    pub leader: Option<String>,
    /// Sorted by member id.
    pub members: Vec<MemberView>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Its metadata for the chosen protocol (empty if it has none).
    pub metadata: Bytes,
    /// What the leader assigned it at the last sync.
    pub assignment: Bytes,
    pub session_timeout_ms: i32,
    pub last_heartbeat_ms: i64,
}

#[derive(Debug, Clone)]
struct Member {
    instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout_ms: i32,
    rebalance_timeout_ms: i32,
    protocols: Vec<(String, Bytes)>,
    assignment: Bytes,
    /// Parked in JoinGroup.
    awaiting_join: bool,
    /// Parked in SyncGroup.
    awaiting_sync: bool,
    /// Not yet through a completed join.
    is_new: bool,
    last_heartbeat_ms: i64,
}

impl Member {
    /// Takes what a join says; whether its protocols and metadata are unchanged.
    fn update(&mut self, req: JoinRequest, now_ms: i64) -> bool {
        let same = self.protocols == req.protocols;
        self.client_id = req.client_id;
        self.client_host = req.client_host;
        self.session_timeout_ms = req.session_timeout_ms;
        self.rebalance_timeout_ms = req.rebalance_timeout_ms;
        self.protocols = req.protocols;
        self.heartbeat(now_ms);
        same
    }

    fn heartbeat(&mut self, now_ms: i64) {
        self.last_heartbeat_ms = self.last_heartbeat_ms.max(now_ms);
    }

    /// When this member is removed unless heard from. A member parked in a join is kept
    /// (a new one only for the new-member timeout), and so is one parked in a sync.
    fn deadline(&self) -> Option<i64> {
        if self.awaiting_join {
            self.is_new
                .then(|| self.last_heartbeat_ms.saturating_add(NEW_MEMBER_TIMEOUT_MS))
        } else if self.awaiting_sync {
            None
        } else {
            Some(
                self.last_heartbeat_ms
                    .saturating_add(i64::from(self.session_timeout_ms)),
            )
        }
    }

    /// Its metadata for `protocol` (empty if it named no such protocol).
    fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, b)| b.clone())
            .unwrap_or_default()
    }

    fn protocol_names(&self) -> BTreeSet<&str> {
        self.protocols.iter().map(|(n, _)| n.as_str()).collect()
    }
}

/// The first join phase of an empty group (Kafka's InitialDelayedJoin).
#[derive(Debug, Clone, Copy)]
struct InitialJoin {
    /// What is left of the rebalance timeout for further extensions.
    remaining_ms: i64,
    /// Whether a member joined since the delay last began.
    new_member_added: bool,
}

/// One classic group's membership. See the module docs for the protocol.
#[derive(Debug, Clone)]
pub struct ClassicGroup {
    name: String,
    state: State,
    generation: i32,
    protocol_type: Option<String>,
    protocol_name: Option<String>,
    leader: Option<String>,
    members: BTreeMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, until when they may be used.
    pending: BTreeMap<String, i64>,
    /// Static members: instance id → member id.
    statics: BTreeMap<String, String>,
    /// PreparingRebalance: when the join phase completes without the stragglers.
    rebalance_deadline: Option<i64>,
    /// The initial rebalance delay, 0 for none.
    initial_delay_ms: i64,
    /// The first join phase of an empty group, while it waits out the initial delay (which
    /// ends at `rebalance_deadline`).
    initial: Option<InitialJoin>,
    /// CompletingRebalance: members that have not sent SyncGroup, and until when they may.
    pending_sync: BTreeSet<String>,
    sync_deadline: Option<i64>,
}

impl ClassicGroup {
    /// An empty group at generation 0; `name` appears in error messages.
    pub fn new(name: impl Into<String>) -> ClassicGroup {
        ClassicGroup {
            name: name.into(),
            state: State::Empty,
            generation: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: BTreeMap::new(),
            pending: BTreeMap::new(),
            statics: BTreeMap::new(),
            rebalance_deadline: None,
            initial_delay_ms: 0,
            initial: None,
            pending_sync: BTreeSet::new(),
            sync_deadline: None,
        }
    }

    /// The same group whose first join phase lasts `ms` at least (see the module docs).
    pub fn with_initial_delay(mut self, ms: i64) -> ClassicGroup {
        self.initial_delay_ms = ms.max(0);
        self
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn generation(&self) -> i32 {
        self.generation
    }

    /// No members and no member id waiting to be used: the caller may drop the group.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.pending.is_empty()
    }

    /// Members now (not counting ids handed out but not yet used).
    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    /// JoinGroup. On `Ok(member_id)` the caller parks the request on that member id until a
    /// `Reply::Join` for it comes, in the replies returned (possibly at once) or from a
    /// later call. An error is the immediate answer; MEMBER_ID_REQUIRED carries the id to
    /// come back with (the one change an error makes).
    pub fn join(&mut self, req: JoinRequest, now_ms: i64) -> Result<(String, Vec<Reply>)> {
        if !(MIN_SESSION_TIMEOUT_MS..=MAX_SESSION_TIMEOUT_MS).contains(&req.session_timeout_ms) {
            return Err(Error::SessionTimeout {
                group: self.name.clone(),
                given: req.session_timeout_ms,
                min: MIN_SESSION_TIMEOUT_MS,
                max: MAX_SESSION_TIMEOUT_MS,
            });
        }
        if req.protocol_type.is_empty() || req.protocols.is_empty() {
            return Err(self
                .inconsistent("a join names its protocol type and at least one protocol".into()));
        }
        let mut replies = Vec::new();
        if req.member_id.is_empty() {
            if let Some(inst) = req.instance_id.clone() {
                if let Some(old) = self.statics.get(&inst).cloned() {
                    self.check_protocols(&req, Some(&old))?;
                    let id = self.replace_static(&old, &inst, now_ms, &mut replies);
                    self.rejoin_static(&id, req, now_ms, &mut replies);
                    return Ok((id, replies));
                }
                self.check_protocols(&req, None)?;
                self.check_room()?;
                let id = new_member_id(&inst);
                self.add(id.clone(), req, now_ms, &mut replies);
                return Ok((id, replies));
            }
            self.check_protocols(&req, None)?;
            self.check_room()?;
            let id = new_member_id(&req.client_id);
            if req.require_known_member_id {
                self.pending.insert(
                    id.clone(),
                    now_ms.saturating_add(i64::from(req.session_timeout_ms)),
                );
                return Err(Error::MemberIdRequired {
                    group: self.name.clone(),
                    member: id,
                });
            }
            self.add(id.clone(), req, now_ms, &mut replies);
            return Ok((id, replies));
        }
        let id = req.member_id.clone();
        if self.pending.contains_key(&id) {
            self.check_protocols(&req, None)?;
            if self.members.len() >= MAX_MEMBERS {
                return Err(self.full());
            }
            if let Some(inst) = &req.instance_id
                && self.statics.contains_key(inst)
            {
                return Err(self.fenced_instance(inst));
            }
            self.pending.remove(&id);
            self.add(id.clone(), req, now_ms, &mut replies);
            return Ok((id, replies));
        }
        self.check_member(&id, req.instance_id.as_deref())?;
        self.check_protocols(&req, Some(&id))?;
        self.rejoin(&id, req, now_ms, &mut replies);
        Ok((id, replies))
    }

    /// SyncGroup. On `Ok` the caller parks the request on its member id until a
    /// `Reply::Sync` for it comes (possibly among the replies returned).
    pub fn sync(&mut self, req: SyncRequest, now_ms: i64) -> Result<Vec<Reply>> {
        self.check_member(&req.member_id, req.instance_id.as_deref())?;
        if req.generation != self.generation {
            return Err(self.illegal_generation(req.generation));
        }
        if let Some(t) = &req.protocol_type
            && Some(t) != self.protocol_type.as_ref()
        {
            return Err(self.inconsistent(format!(
                "protocol type {t} is not the group's ({})",
                self.protocol_type.as_deref().unwrap_or("none")
            )));
        }
        if let Some(p) = &req.protocol_name
            && Some(p) != self.protocol_name.as_ref()
        {
            return Err(self.inconsistent(format!(
                "protocol {p} is not the one chosen ({})",
                self.protocol_name.as_deref().unwrap_or("none")
            )));
        }
        let id = req.member_id;
        let mut replies = Vec::new();
        match self.state {
            State::Empty | State::PreparingRebalance => {
                return Err(Error::RebalanceInProgress {
                    group: self.name.clone(),
                });
            }
            State::Stable => {
                let m = self.members.get_mut(&id).expect("checked");
                m.heartbeat(now_ms);
                replies.push(Reply::Sync {
                    member: id.clone(),
                    answer: Ok(m.assignment.clone()),
                });
            }
            State::CompletingRebalance => {
                self.pending_sync.remove(&id);
                let m = self.members.get_mut(&id).expect("checked");
                m.heartbeat(now_ms);
                m.awaiting_sync = true;
                if self.leader.as_deref() == Some(id.as_str()) {
                    let mut given: BTreeMap<String, Bytes> = req.assignments.into_iter().collect();
                    for (mid, m) in &mut self.members {
                        m.assignment = given.remove(mid).unwrap_or_default();
                    }
                    self.state = State::Stable;
                    self.pending_sync.clear();
                    self.sync_deadline = None;
                    for (mid, m) in &mut self.members {
                        if std::mem::take(&mut m.awaiting_sync) {
                            replies.push(Reply::Sync {
                                member: mid.clone(),
                                answer: Ok(m.assignment.clone()),
                            });
                        }
                    }
                }
            }
        }
        Ok(replies)
    }

    /// Heartbeat: REBALANCE_IN_PROGRESS (after recording it) while the members must rejoin.
    pub fn heartbeat(
        &mut self,
        member: &str,
        instance_id: Option<&str>,
        generation: i32,
        now_ms: i64,
    ) -> Result<()> {
        self.check_member(member, instance_id)?;
        if generation != self.generation {
            return Err(self.illegal_generation(generation));
        }
        self.members
            .get_mut(member)
            .expect("checked")
            .heartbeat(now_ms);
        if self.state == State::PreparingRebalance {
            return Err(Error::RebalanceInProgress {
                group: self.name.clone(),
            });
        }
        Ok(())
    }

    /// LeaveGroup: each member's own result (its member id, or why not), and the replies
    /// the resulting rebalance completes.
    pub fn leave(&mut self, leaving: &[Leaving], now_ms: i64) -> (Vec<Result<String>>, Vec<Reply>) {
        let mut replies = Vec::new();
        let mut results = Vec::with_capacity(leaving.len());
        for l in leaving {
            let id = match &l.instance_id {
                Some(inst) => match self.statics.get(inst) {
                    Some(id) if l.member_id.is_empty() || *id == l.member_id => Ok(id.clone()),
                    Some(_) => Err(self.fenced_instance(inst)),
                    None => Err(self.unknown(&l.member_id)),
                },
                None if self.pending.remove(&l.member_id).is_some() => {
                    self.maybe_complete_join(now_ms, &mut replies);
                    results.push(Ok(l.member_id.clone()));
                    continue;
                }
                None => self
                    .check_member(&l.member_id, None)
                    .map(|()| l.member_id.clone()),
            };
            if let Ok(id) = &id {
                self.remove(id, now_ms, &mut replies);
            }
            results.push(id);
        }
        (results, replies)
    }

    /// May this OffsetCommit go ahead? A standalone commit (no member, a negative
    /// generation) only while the group has no members; otherwise a current member at the
    /// current generation, and not while the group awaits the leader's assignments. An
    /// accepted commit counts as a heartbeat.
    pub fn accept_commit(
        &mut self,
        member: &str,
        instance_id: Option<&str>,
        generation: i32,
        now_ms: i64,
    ) -> Result<()> {
        if self.members.is_empty() && generation < 0 {
            return Ok(());
        }
        self.check_member(member, instance_id)?;
        if generation != self.generation {
            return Err(self.illegal_generation(generation));
        }
        if self.state == State::CompletingRebalance {
            return Err(Error::RebalanceInProgress {
                group: self.name.clone(),
            });
        }
        self.members
            .get_mut(member)
            .expect("checked")
            .heartbeat(now_ms);
        Ok(())
    }

    /// Removes members past their deadlines, expires unused member ids, and ends a join
    /// or sync phase whose time is up. Called by a ticker at [`ClassicGroup::next_deadline`].
    pub fn expire(&mut self, now_ms: i64) -> Vec<Reply> {
        let mut replies = Vec::new();
        let before = self.pending.len();
        self.pending.retain(|_, until| *until > now_ms);
        if self.pending.len() != before {
            self.maybe_complete_join(now_ms, &mut replies);
        }
        let dead: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| m.deadline().is_some_and(|d| now_ms >= d))
            .map(|(id, _)| id.clone())
            .collect();
        for id in dead {
            self.remove(&id, now_ms, &mut replies);
        }
        if self.state == State::PreparingRebalance
            && self.rebalance_deadline.is_some_and(|d| now_ms >= d)
            && let Some(i) = self.initial.take()
            && i.new_member_added
            && i.remaining_ms > 0
        {
            // New members came during the initial delay: wait as long again for others.
            let delay = self.initial_delay_ms.min(i.remaining_ms);
            self.initial = Some(InitialJoin {
                remaining_ms: i.remaining_ms - delay,
                new_member_added: false,
            });
            self.rebalance_deadline = Some(now_ms.saturating_add(delay));
        }
        if self.state == State::PreparingRebalance
            && self.initial.is_none()
            && self.rebalance_deadline.is_some_and(|d| now_ms >= d)
        {
            // Dynamic members that did not rejoin in time are removed; static ones keep
            // their place.
            let late: Vec<String> = self
                .members
                .iter()
                .filter(|(_, m)| !m.awaiting_join && m.instance_id.is_none())
                .map(|(id, _)| id.clone())
                .collect();
            for id in &late {
                self.drop_member(id, &mut replies);
            }
            self.complete_join(now_ms, &mut replies);
        }
        if self.state == State::CompletingRebalance
            && self.sync_deadline.is_some_and(|d| now_ms >= d)
        {
            let late: Vec<String> = self.pending_sync.iter().cloned().collect();
            for id in &late {
                self.drop_member(id, &mut replies);
            }
            self.prepare_rebalance(now_ms, &mut replies);
        }
        replies
    }

    /// The earliest `now_ms` at which [`ClassicGroup::expire`] has something to do.
    pub fn next_deadline(&self) -> Option<i64> {
        self.members
            .values()
            .filter_map(Member::deadline)
            .chain(self.pending.values().copied())
            .chain(self.rebalance_deadline)
            .chain(self.sync_deadline)
            .min()
    }

    pub fn describe(&self) -> Description {
        let chosen = self.protocol_name.as_deref().unwrap_or_default();
        Description {
            state: self.state,
            generation: self.generation,
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol_name: self.protocol_name.clone().unwrap_or_default(),
            leader: self.leader.clone(),
            members: self
                .members
                .iter()
                .map(|(id, m)| MemberView {
                    member_id: id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: m.metadata(chosen),
                    assignment: m.assignment.clone(),
                    session_timeout_ms: m.session_timeout_ms,
                    last_heartbeat_ms: m.last_heartbeat_ms,
                })
                .collect(),
        }
    }

    /// A new member, parked in its join.
    fn add(&mut self, id: String, req: JoinRequest, now_ms: i64, replies: &mut Vec<Reply>) {
        if let Some(inst) = &req.instance_id {
            self.statics.insert(inst.clone(), id.clone());
        }
        self.members.insert(
            id.clone(),
            Member {
                instance_id: req.instance_id,
                client_id: req.client_id,
                client_host: req.client_host,
                session_timeout_ms: req.session_timeout_ms,
                rebalance_timeout_ms: req.rebalance_timeout_ms,
                protocols: req.protocols,
                assignment: Bytes::new(),
                awaiting_join: true,
                awaiting_sync: false,
                is_new: true,
                last_heartbeat_ms: now_ms,
            },
        );
        if self.leader.is_none() {
            self.leader = Some(id);
        }
        if self.protocol_type.is_none() {
            self.protocol_type = Some(req.protocol_type);
        }
        match self.state {
            State::PreparingRebalance => {
                if let Some(i) = &mut self.initial {
                    i.new_member_added = true;
                }
                self.maybe_complete_join(now_ms, replies)
            }
            _ => self.prepare_rebalance(now_ms, replies),
        }
    }

    /// A current member joins again: answered at once with the current generation when
    /// nothing it says changes the group, else the group rebalances. The leader's rejoin
    /// always rebalances (it is how a leader asks for one).
    fn rejoin(&mut self, id: &str, req: JoinRequest, now_ms: i64, replies: &mut Vec<Reply>) {
        let is_leader = self.leader.as_deref() == Some(id);
        let m = self.members.get_mut(id).expect("a member");
        let same = m.update(req, now_ms);
        match self.state {
            State::PreparingRebalance => {
                m.awaiting_join = true;
                self.maybe_complete_join(now_ms, replies);
            }
            State::CompletingRebalance | State::Stable
                if same && (self.state == State::CompletingRebalance || !is_leader) =>
            {
                let joined = self.joined(id);
                replies.push(Reply::Join {
                    member: id.to_owned(),
                    answer: Ok(joined),
                });
            }
            _ => {
                m.awaiting_join = true;
                self.prepare_rebalance(now_ms, replies);
            }
        }
    }

    /// A restarted static member, its new member id in the old one's place, joins as
    /// Kafka has it: a stable group answers at once with the current generation and
    /// assignment, the leader too (told to skip the assignment), unless the protocol the
    /// group would now choose differs from the one in force; then, and while the leader's
    /// assignments may still name the old id (CompletingRebalance), the group rebalances.
    fn rejoin_static(&mut self, id: &str, req: JoinRequest, now_ms: i64, replies: &mut Vec<Reply>) {
        match self.state {
            State::Stable | State::CompletingRebalance => {
                self.members
                    .get_mut(id)
                    .expect("a member")
                    .update(req, now_ms);
                let keeps = self.protocol_name.as_deref() == Some(self.select_protocol().as_str());
                if self.state == State::Stable && keeps {
                    let mut joined = self.joined(id);
                    joined.skip_assignment = joined.leader == id;
                    replies.push(Reply::Join {
                        member: id.to_owned(),
                        answer: Ok(joined),
                    });
                } else {
                    self.members.get_mut(id).expect("a member").awaiting_join = true;
                    self.prepare_rebalance(now_ms, replies);
                }
            }
            State::Empty | State::PreparingRebalance => self.rejoin(id, req, now_ms, replies),
        }
    }

    /// A static member restarted: its new member id takes the old one's place (and
    /// assignment); the old id is fenced, and a request parked under it is told so.
    fn replace_static(
        &mut self,
        old: &str,
        inst: &str,
        now_ms: i64,
        replies: &mut Vec<Reply>,
    ) -> String {
        let mut m = self.members.remove(old).expect("statics name members");
        let fenced = || Error::FencedInstance {
            group: self.name.clone(),
            instance: inst.to_owned(),
        };
        if std::mem::take(&mut m.awaiting_join) {
            replies.push(Reply::Join {
                member: old.to_owned(),
                answer: Err(fenced()),
            });
        }
        if std::mem::take(&mut m.awaiting_sync) {
            replies.push(Reply::Sync {
                member: old.to_owned(),
                answer: Err(fenced()),
            });
        }
        let id = new_member_id(inst);
        m.heartbeat(now_ms);
        m.is_new = false;
        self.members.insert(id.clone(), m);
        self.statics.insert(inst.to_owned(), id.clone());
        if self.leader.as_deref() == Some(old) {
            self.leader = Some(id.clone());
        }
        if self.pending_sync.remove(old) {
            self.pending_sync.insert(id.clone());
        }
        id
    }

    /// Removes a member and moves the group on: a rebalance, or the join phase completing.
    fn remove(&mut self, id: &str, now_ms: i64, replies: &mut Vec<Reply>) {
        self.drop_member(id, replies);
        match self.state {
            State::Stable | State::CompletingRebalance => self.prepare_rebalance(now_ms, replies),
            State::PreparingRebalance => self.maybe_complete_join(now_ms, replies),
            State::Empty => {}
        }
    }

    /// Removes a member only; a request it has parked is told it is no longer one.
    fn drop_member(&mut self, id: &str, replies: &mut Vec<Reply>) {
        let Some(m) = self.members.remove(id) else {
            return;
        };
        if m.awaiting_join {
            replies.push(Reply::Join {
                member: id.to_owned(),
                answer: Err(self.unknown(id)),
            });
        }
        if m.awaiting_sync {
            replies.push(Reply::Sync {
                member: id.to_owned(),
                answer: Err(self.unknown(id)),
            });
        }
        if let Some(inst) = &m.instance_id {
            self.statics.remove(inst);
        }
        self.pending_sync.remove(id);
        if self.leader.as_deref() == Some(id) {
            self.leader = self
                .members
                .iter()
                .find(|(_, m)| m.awaiting_join)
                .or_else(|| self.members.iter().next())
                .map(|(id, _)| id.clone());
        }
    }

    /// Starts a join phase: the members must rejoin within the longest rebalance timeout.
    /// Syncs parked for the generation now abandoned are told REBALANCE_IN_PROGRESS.
    fn prepare_rebalance(&mut self, now_ms: i64, replies: &mut Vec<Reply>) {
        if self.state == State::CompletingRebalance {
            for (id, m) in &mut self.members {
                if std::mem::take(&mut m.awaiting_sync) {
                    replies.push(Reply::Sync {
                        member: id.clone(),
                        answer: Err(Error::RebalanceInProgress {
                            group: self.name.clone(),
                        }),
                    });
                }
            }
        }
        self.pending_sync.clear();
        self.sync_deadline = None;
        let timeout = self
            .members
            .values()
            .map(|m| i64::from(m.rebalance_timeout_ms.max(0)))
            .max()
            .unwrap_or(0);
        if self.state == State::Empty && self.initial_delay_ms > 0 {
            let delay = self.initial_delay_ms.min(timeout);
            self.initial = Some(InitialJoin {
                remaining_ms: timeout - delay,
                new_member_added: false,
            });
            self.state = State::PreparingRebalance;
            self.rebalance_deadline = Some(now_ms.saturating_add(delay));
            return;
        }
        self.state = State::PreparingRebalance;
        self.rebalance_deadline = Some(now_ms.saturating_add(timeout));
        self.maybe_complete_join(now_ms, replies);
    }

    fn maybe_complete_join(&mut self, now_ms: i64, replies: &mut Vec<Reply>) {
        // Member ids handed out but not yet used, and the initial delay, hold the phase, as
        // in Kafka, unless nobody is left to wait.
        if self.state == State::PreparingRebalance
            && ((self.initial.is_none() && self.pending.is_empty()) || self.members.is_empty())
            && self.members.values().all(|m| m.awaiting_join)
        {
            self.complete_join(now_ms, replies);
        }
    }

    /// Ends the join phase: the next generation, its protocol and leader; every parked
    /// join is answered.
    fn complete_join(&mut self, now_ms: i64, replies: &mut Vec<Reply>) {
        self.rebalance_deadline = None;
        self.initial = None;
        self.generation = self.generation.checked_add(1).unwrap_or(1);
        if self.members.is_empty() {
            self.state = State::Empty;
            self.protocol_type = None;
            self.protocol_name = None;
            self.leader = None;
            return;
        }
        self.protocol_name = Some(self.select_protocol());
        if !self
            .leader
            .as_ref()
            .and_then(|l| self.members.get(l))
            .is_some_and(|m| m.awaiting_join)
            && let Some((id, _)) = self.members.iter().find(|(_, m)| m.awaiting_join)
        {
            self.leader = Some(id.clone());
        }
        self.state = State::CompletingRebalance;
        self.pending_sync = self.members.keys().cloned().collect();
        let timeout = self
            .members
            .values()
            .map(|m| i64::from(m.rebalance_timeout_ms.max(0)))
            .max()
            .unwrap_or(0);
        self.sync_deadline = Some(now_ms.saturating_add(timeout));
        let joined: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| m.awaiting_join)
            .map(|(id, _)| id.clone())
            .collect();
        for m in self.members.values_mut() {
            m.assignment = Bytes::new();
        }
        for id in joined {
            let m = self.members.get_mut(&id).expect("a member");
            m.awaiting_join = false;
            m.is_new = false;
            m.heartbeat(now_ms);
            let answer = Ok(self.joined(&id));
            replies.push(Reply::Join { member: id, answer });
        }
    }

    /// The JoinGroup answer for `id` at the current generation.
    fn joined(&self, id: &str) -> Joined {
        let leader = self.leader.clone().unwrap_or_default();
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let members = if leader == id {
            self.members
                .iter()
                .map(|(mid, m)| JoinedMember {
                    member_id: mid.clone(),
                    instance_id: m.instance_id.clone(),
                    metadata: m.metadata(&protocol),
                })
                .collect()
        } else {
            Vec::new()
        };
        Joined {
            generation: self.generation,
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol_name: protocol,
            leader,
            member_id: id.to_owned(),
            members,
            skip_assignment: false,
        }
    }

    /// Kafka's vote: among the protocols every member supports, each member votes for the
    /// first of its own list; the most votes wins, a tie going to the leader's preference.
    fn select_protocol(&self) -> String {
        let mut common: Option<BTreeSet<&str>> = None;
        for m in self.members.values() {
            let names = m.protocol_names();
            common = Some(match common {
                None => names,
                Some(c) => c.intersection(&names).copied().collect(),
            });
        }
        let common = common.unwrap_or_default();
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some((n, _)) = m
                .protocols
                .iter()
                .find(|(n, _)| common.contains(n.as_str()))
            {
                *votes.entry(n.as_str()).or_default() += 1;
            }
        }
        let leader = self
            .leader
            .as_ref()
            .and_then(|l| self.members.get(l))
            .or_else(|| self.members.values().next())
            .expect("a member");
        let mut best: Option<(&str, usize)> = None;
        for (n, _) in &leader.protocols {
            let v = votes.get(n.as_str()).copied().unwrap_or(0);
            if common.contains(n.as_str()) && best.is_none_or(|(_, b)| v > b) {
                best = Some((n.as_str(), v));
            }
        }
        best.map(|(n, _)| n.to_owned()).unwrap_or_default()
    }

    /// The join's protocol type must be the group's, and its protocols must share one
    /// with every other member.
    fn check_protocols(&self, req: &JoinRequest, me: Option<&str>) -> Result<()> {
        let others: Vec<&Member> = self
            .members
            .iter()
            .filter(|(id, _)| Some(id.as_str()) != me)
            .map(|(_, m)| m)
            .collect();
        if others.is_empty() {
            return Ok(());
        }
        if let Some(t) = &self.protocol_type
            && *t != req.protocol_type
        {
            return Err(self.inconsistent(format!(
                "protocol type {} is not the group's ({t})",
                req.protocol_type
            )));
        }
        let mut common: BTreeSet<&str> = req.protocols.iter().map(|(n, _)| n.as_str()).collect();
        for m in others {
            common = common.intersection(&m.protocol_names()).copied().collect();
        }
        if common.is_empty() {
            let theirs: Vec<&str> = req.protocols.iter().map(|(n, _)| n.as_str()).collect();
            return Err(self.inconsistent(format!(
                "none of the protocols {} is supported by every member",
                theirs.join(", ")
            )));
        }
        Ok(())
    }

    fn check_room(&self) -> Result<()> {
        if self.members.len() + self.pending.len() >= MAX_MEMBERS {
            return Err(self.full());
        }
        Ok(())
    }

    /// `member` is a current member, under `instance_id` if it names one.
    fn check_member(&self, member: &str, instance_id: Option<&str>) -> Result<()> {
        if let Some(inst) = instance_id
            && let Some(id) = self.statics.get(inst)
            && id != member
        {
            return Err(self.fenced_instance(inst));
        }
        match self.members.get(member) {
            Some(m) if m.instance_id.as_deref() == instance_id || instance_id.is_none() => Ok(()),
            Some(_) => Err(self.fenced_instance(instance_id.unwrap_or_default())),
            None => Err(self.unknown(member)),
        }
    }

    fn unknown(&self, member: &str) -> Error {
        Error::UnknownMember {
            group: self.name.clone(),
            member: member.to_owned(),
        }
    }

    fn fenced_instance(&self, inst: &str) -> Error {
        Error::FencedInstance {
            group: self.name.clone(),
            instance: inst.to_owned(),
        }
    }

    fn illegal_generation(&self, given: i32) -> Error {
        Error::IllegalGeneration {
            group: self.name.clone(),
            given,
            current: self.generation,
        }
    }

    fn inconsistent(&self, detail: String) -> Error {
        Error::InconsistentProtocol {
            group: self.name.clone(),
            detail,
        }
    }

    fn full(&self) -> Error {
        Error::GroupFull {
            group: self.name.clone(),
            limit: MAX_MEMBERS,
        }
    }
}

/// `PREFIX-UUID`, as Kafka makes member ids (the client id, or a static member's
/// instance id), the prefix cut to a bounded length.
fn new_member_id(prefix: &str) -> String {
    let mut end = prefix.len().min(ID_PREFIX_BYTES);
    while !prefix.is_char_boundary(end) {
        end -= 1;
    }
    let prefix: String = prefix[..end].chars().filter(|c| !c.is_control()).collect();
    format!("{prefix}-{}", uuid::Uuid::new_v4())
}

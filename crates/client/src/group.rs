//! The group consumer: one member of a consumer group over a `Subscribe` session.
//!
//! The server assigns partitions and pushes their records as this client grants credit
//! (a bounded read-ahead); [`GroupConsumer::poll`] hands them out in order per partition
//! and remembers how far the application got. Commits (explicit, or every
//! `auto_commit` interval) store those positions as the group's cursors. When a rebalance
//! takes a partition away, the consumer commits its position first and then confirms the
//! revocation, so the next owner starts exactly where this one stopped. If the session
//! ends (the server restarted, the member was removed), `poll` joins again and resumes
//! from the committed cursors: records delivered but not committed may come again, none
//! is skipped.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::Stream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use tributary_proto::v1;

use crate::{Client, ConsumedRecord, Error, Result, unpack};

/// Where partitions without a committed cursor start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Start {
    #[default]
    Earliest,
    Latest,
}

#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// The stream whose topics the group reads.
    pub stream: String,
    pub group: String,
    /// Topic names, or else `pattern` (a regular expression over whole topic names).
    pub topics: Vec<String>,
    pub pattern: Option<String>,
    /// `sticky` (default), `range` or `roundrobin`.
    pub assignor: String,
    pub session_timeout: Duration,
    /// Commit what `poll` returned this often; `None` commits only on `commit`.
    pub auto_commit: Option<Duration>,
    pub start: Start,
    pub client_id: String,
    /// Read-ahead the server may push before `poll` catches up.
    pub credit_bytes: u64,
    pub credit_batches: u32,
}

impl GroupConfig {
    pub fn new(stream: &str, group: &str, topics: &[&str]) -> Self {
        Self {
            stream: stream.to_owned(),
            group: group.to_owned(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            pattern: None,
            assignor: String::new(),
            session_timeout: Duration::from_secs(10),
            auto_commit: Some(Duration::from_secs(5)),
            start: Start::Earliest,
            client_id: String::new(),
            credit_bytes: 4 << 20,
            credit_batches: 256,
        }
    }
}

/// A record delivered to a group member.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupRecord {
    pub topic: String,
    pub record: ConsumedRecord,
}

/// One member of a consumer group.
pub struct GroupConsumer {
    client: Client,
    config: GroupConfig,
    session: Option<Session>,
    /// (topic, partition) -> next offset to hand out (what a commit stores).
    positions: BTreeMap<(String, u32), u64>,
    committed: BTreeMap<(String, u32), u64>,
    last_commit: Instant,
    /// Records received while waiting for an assignment inside `commit`.
    pending: std::collections::VecDeque<Vec<GroupRecord>>,
}

impl std::fmt::Debug for GroupConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupConsumer")
            .field("group", &self.config.group)
            .field("member", &self.session.as_ref().map(|s| &s.member_id))
            .finish()
    }
}

struct Session {
    member_id: String,
    generation: u64,
    requests: mpsc::Sender<v1::SubscribeRequest>,
    responses: Streaming<v1::SubscribeResponse>,
    next_heartbeat: Instant,
}

impl GroupConsumer {
    /// Joins the group.
    pub async fn join(client: &Client, config: GroupConfig) -> Result<GroupConsumer> {
        let mut c = GroupConsumer {
            client: client.clone(),
            config,
            session: None,
            positions: BTreeMap::new(),
            committed: BTreeMap::new(),
            last_commit: Instant::now(),
            pending: Default::default(),
        };
        c.connect().await?;
        Ok(c)
    }

    pub fn member_id(&self) -> Option<&str> {
        self.session.as_ref().map(|s| s.member_id.as_str())
    }

    /// The partitions this member reads now.
    pub fn assignment(&self) -> Vec<(String, u32)> {
        self.positions.keys().cloned().collect()
    }

    async fn connect(&mut self) -> Result<()> {
        let (tx, rx) = mpsc::channel(16);
        let join = v1::JoinGroup {
            stream: self.config.stream.clone(),
            group: self.config.group.clone(),
            member_id: String::new(),
            topics: self.config.topics.clone(),
            topic_pattern: self.config.pattern.clone().unwrap_or_default(),
            assignor: self.config.assignor.clone(),
            session_timeout_ms: self.config.session_timeout.as_millis() as u32,
            client_id: self.config.client_id.clone(),
            start: match self.config.start {
                Start::Earliest => v1::OffsetSpec::Earliest,
                Start::Latest => v1::OffsetSpec::Latest,
            } as i32,
        };
        let send = |kind| v1::SubscribeRequest { kind: Some(kind) };
        tx.send(send(v1::subscribe_request::Kind::Join(join)))
            .await
            .expect("receiver alive");
        tx.send(send(v1::subscribe_request::Kind::Credit(v1::Credit {
            bytes: self.config.credit_bytes,
            batches: self.config.credit_batches,
        })))
        .await
        .expect("receiver alive");
        let mut responses = self
            .client
            .consumer()
            .subscribe(ReceiverStream::new(rx))
            .await?
            .into_inner();
        let joined = match responses.message().await? {
            Some(v1::SubscribeResponse {
                kind: Some(v1::subscribe_response::Kind::Joined(j)),
            }) => j,
            _ => {
                return Err(Error::Status(tonic::Status::internal(
                    "the server did not answer the join",
                )));
            }
        };
        self.positions.clear();
        self.committed.clear();
        self.session = Some(Session {
            member_id: joined.member_id,
            generation: 0,
            requests: tx,
            responses,
            next_heartbeat: Instant::now() + self.config.session_timeout / 3,
        });
        Ok(())
    }

    /// The next records, waiting for some; joins again if the session was lost.
    pub async fn poll(&mut self) -> Result<Vec<GroupRecord>> {
        if let Some(rs) = self.pending.pop_front() {
            return Ok(rs);
        }
        let mut backoff = Duration::from_millis(50);
        let mut lost_at: Option<Instant> = None;
        loop {
            if self.session.is_none() {
                match self.connect().await {
                    Ok(()) => lost_at = None,
                    // The server may be restarting: keep trying for a session timeout's worth.
                    Err(e) if rejoinable(&e) || matches!(e, Error::Connect { .. }) => {
                        let since = *lost_at.get_or_insert_with(Instant::now);
                        if since.elapsed()
                            > self.config.session_timeout.max(Duration::from_secs(30))
                        {
                            return Err(e);
                        }
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(1));
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            if let Some(every) = self.config.auto_commit
                && self.last_commit.elapsed() >= every
            {
                self.commit_quietly().await;
            }
            match self.step().await {
                Ok(Some(records)) if !records.is_empty() => return Ok(records),
                Ok(_) => {}
                Err(e) if rejoinable(&e) => {
                    self.session = None;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits for one message from the server (or a heartbeat or commit due).
    async fn step(&mut self) -> Result<Option<Vec<GroupRecord>>> {
        let commit_due = self
            .config
            .auto_commit
            .map(|every| self.last_commit + every);
        let s = self.session.as_mut().expect("connected");
        let deadline = match commit_due {
            Some(c) => c.min(s.next_heartbeat),
            None => s.next_heartbeat,
        };
        let msg = tokio::select! {
            m = s.responses.message() => m?,
            _ = tokio::time::sleep_until(deadline) => {
                if Instant::now() >= s.next_heartbeat {
                    s.next_heartbeat = Instant::now() + self.config.session_timeout / 3;
                    let hb = v1::SubscribeRequest { kind: Some(v1::subscribe_request::Kind::Heartbeat(v1::Heartbeat {})) };
                    let _ = s.requests.send(hb).await;
                }
                return Ok(None);
            }
        };
        let Some(msg) = msg else {
            return Err(Error::Status(tonic::Status::unavailable(
                "the server ended the session",
            )));
        };
        match msg.kind {
            Some(v1::subscribe_response::Kind::Assignment(a)) => {
                self.reassign(a).await?;
                Ok(None)
            }
            Some(v1::subscribe_response::Kind::Records(r)) => Ok(Some(self.records(r).await)),
            _ => Ok(None),
        }
    }

    /// A new assignment: commit and confirm what was taken away, start what was given.
    async fn reassign(&mut self, a: v1::Assignment) -> Result<()> {
        let new: BTreeMap<(String, u32), u64> = a
            .partitions
            .iter()
            .map(|p| ((p.topic.clone(), p.partition), p.offset))
            .collect();
        let revoked: Vec<(String, u32)> = self
            .positions
            .keys()
            .filter(|k| !new.contains_key(*k))
            .cloned()
            .collect();
        self.session.as_mut().expect("connected").generation = a.generation;
        if !revoked.is_empty() {
            // The new owner starts from the cursor: store ours before letting go. When the
            // group has moved on already, the next assignment (every generation reaches
            // every member) says again what to let go, and the commit is retried then.
            match self.commit_partitions(&revoked).await {
                Ok(()) => {}
                Err(e) if stale_generation(&e) => return Ok(()),
                Err(e) => return Err(e),
            }
            for k in &revoked {
                self.positions.remove(k);
                self.committed.remove(k);
            }
            let s = self.session.as_ref().expect("connected");
            let msg = v1::SubscribeRequest {
                kind: Some(v1::subscribe_request::Kind::Revoked(v1::Revoked {
                    generation: a.generation,
                    partitions: revoked
                        .iter()
                        .map(|(topic, partition)| v1::TopicPartition {
                            topic: topic.clone(),
                            partition: *partition,
                        })
                        .collect(),
                })),
            };
            let _ = s.requests.send(msg).await;
        }
        for (k, offset) in new {
            self.positions.entry(k).or_insert(offset);
        }
        Ok(())
    }

    async fn records(&mut self, r: v1::PartitionRecords) -> Vec<GroupRecord> {
        let key = (r.topic.clone(), r.partition);
        let mut out = Vec::new();
        let (mut bytes, batches) = (0u64, r.batches.len() as u32);
        if let Some(pos) = self.positions.get_mut(&key) {
            if r.skipped_to > *pos {
                *pos = r.skipped_to;
            }
            for b in r.batches {
                bytes += prost::Message::encoded_len(&b) as u64;
                for c in unpack(r.partition, b) {
                    if c.offset >= *pos {
                        *pos = c.offset + 1;
                        out.push(GroupRecord {
                            topic: r.topic.clone(),
                            record: c,
                        });
                    }
                }
            }
        } else {
            bytes = r
                .batches
                .iter()
                .map(|b| prost::Message::encoded_len(b) as u64)
                .sum();
        }
        // Give back the credit these batches used.
        let s = self.session.as_ref().expect("connected");
        let credit = v1::SubscribeRequest {
            kind: Some(v1::subscribe_request::Kind::Credit(v1::Credit {
                bytes,
                batches,
            })),
        };
        let _ = s.requests.send(credit).await;
        out
    }

    /// Takes back records `poll` returned that the application did not process: the next
    /// commit stores the first of them per partition, so the group reads them again.
    pub fn rewind(&mut self, unprocessed: &[GroupRecord]) {
        for r in unprocessed {
            let key = (r.topic.clone(), r.record.partition);
            if let Some(pos) = self.positions.get_mut(&key) {
                *pos = (*pos).min(r.record.offset);
            }
        }
    }

    /// Commits the position of every record `poll` returned so far. When a rebalance
    /// moved the generation meanwhile, waits for the new assignment and commits what this
    /// member still owns (what it lost was committed when it let go).
    pub async fn commit(&mut self) -> Result<()> {
        for _ in 0..16 {
            let all: Vec<_> = self.positions.keys().cloned().collect();
            match self.commit_partitions(&all).await {
                Ok(()) => {
                    self.last_commit = Instant::now();
                    return Ok(());
                }
                Err(e) if stale_generation(&e) && self.session.is_some() => {
                    let generation = self.session.as_ref().map(|s| s.generation);
                    while self.session.as_ref().map(|s| s.generation) == generation {
                        if let Some(rs) = self.step().await?
                            && !rs.is_empty()
                        {
                            self.pending.push_back(rs);
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::Status(tonic::Status::aborted(
            "the group kept rebalancing; commit again later",
        )))
    }

    /// An auto-commit: a refusal (a rebalance moved the generation) is retried at the next
    /// interval, after the new assignment arrives.
    async fn commit_quietly(&mut self) {
        let _ = self.commit().await;
        self.last_commit = Instant::now();
    }

    async fn commit_partitions(&mut self, keys: &[(String, u32)]) -> Result<()> {
        let Some(s) = &self.session else {
            return Ok(());
        };
        let cursors: Vec<v1::CursorCommit> = keys
            .iter()
            .filter_map(|k| {
                let pos = *self.positions.get(k)?;
                (self.committed.get(k) != Some(&pos)).then(|| v1::CursorCommit {
                    topic: k.0.clone(),
                    partition: k.1,
                    offset: pos,
                })
            })
            .collect();
        if cursors.is_empty() {
            return Ok(());
        }
        let req = v1::CommitOffsetsRequest {
            stream: self.config.stream.clone(),
            group: self.config.group.clone(),
            member_id: s.member_id.clone(),
            generation: s.generation,
            cursors: cursors.clone(),
        };
        self.client.consumer().commit_offsets(req).await?;
        for c in cursors {
            self.committed.insert((c.topic, c.partition), c.offset);
        }
        Ok(())
    }

    /// Commits (when auto-commit is on) and leaves the group.
    pub async fn close(mut self) -> Result<()> {
        if self.config.auto_commit.is_some() {
            self.commit().await?;
        }
        self.session = None; // closing the request stream leaves the group
        Ok(())
    }

    /// The records as a stream (auto-commit keeps committing while it is polled).
    pub fn into_stream(self) -> impl Stream<Item = Result<GroupRecord>> {
        futures::stream::unfold(
            (self, std::collections::VecDeque::new()),
            |(mut c, mut buf)| async move {
                loop {
                    if let Some(r) = buf.pop_front() {
                        return Some((Ok(r), (c, buf)));
                    }
                    match c.poll().await {
                        Ok(rs) => buf.extend(rs),
                        Err(e) => return Some((Err(e), (c, buf))),
                    }
                }
            },
        )
    }
}

fn stale_generation(e: &Error) -> bool {
    matches!(e, Error::Status(s) if s.code() == tonic::Code::FailedPrecondition && s.message().contains("is stale"))
}

/// Session losses after which joining again is the cure.
fn rejoinable(e: &Error) -> bool {
    matches!(
        e.code(),
        Some(
            tonic::Code::Unavailable
                | tonic::Code::FailedPrecondition
                | tonic::Code::Cancelled
                | tonic::Code::Unknown
                | tonic::Code::Internal
        )
    )
}

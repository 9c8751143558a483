//! The upstream side of replication: a pull session reads one stream for a downstream
//! cluster, from its positions, partition by partition in turn, and keeps going as records
//! arrive. Batches go out as stored (no re-encoding); batches that originated at the puller
//! are left out, and positions move past them all the same.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tributary_core::batch;
use tributary_core::names::StreamPath;
use tributary_proto::v1;
use tributary_storage::{self as storage, ClusterId, PartitionId};

use super::{Namespace, blocking};
use crate::auth::{Caller, Credential};
use crate::model::*;
use crate::{Error, Result};

/// Batch bytes per response when the request gives none, and the most it may ask.
pub const DEFAULT_PULL_BYTES: usize = 1 << 20;
pub const MAX_PULL_BYTES: usize = 16 << 20;
/// An idle session still answers this often, so the puller knows the link is alive.
const KEEPALIVE: Duration = Duration::from_secs(5);
/// How often a session that sends cursors looks for changed ones.
const CURSOR_INTERVAL: Duration = Duration::from_millis(500);
/// Partitions announced (or read) per response, bounding its size with many topics.
const PARTITIONS_PER_RESPONSE: usize = 1024;

struct Part {
    topic: String,
    partition: u32,
    id: PartitionId,
    next: u64,
    hwm: watch::Receiver<u64>,
    /// The puller has been told this partition's position.
    announced: bool,
}

/// One downstream cluster's pull of a stream.
pub struct PullSession {
    ns: Arc<Namespace>,
    /// Checked again at every refresh, so a revoked puller is cut off.
    credential: Credential,
    stream: Arc<StreamRow>,
    puller: Option<ClusterId>,
    start: LinkStart,
    max_bytes: usize,
    cursors: bool,
    /// Positions from the request, taken as their partitions are found.
    asked: HashMap<(String, u32), u64>,
    parts: Vec<Part>,
    shapes: Vec<v1::TopicShape>,
    catalog: watch::Receiver<u64>,
    catalog_seen: u64,
    refreshed: bool,
    rr: usize,
    cursor_digest: Option<u64>,
    next_cursor_check: Instant,
    last_sent: Instant,
}

impl Namespace {
    /// Starts a pull of a stream (its `copy` permission). `credential` is how the caller
    /// authenticated: the session checks it and the permission again as it goes (on every
    /// catalog change and at least every keepalive), so revoking ends the pull.
    pub async fn pull(
        self: &Arc<Self>,
        c: &Caller,
        credential: Credential,
        req: v1::PullRequest,
    ) -> Result<PullSession> {
        let path = StreamPath::parse("stream", &req.stream)?;
        let s = self.stream(&path)?;
        self.check(c, &s, Perm::Copy)?;
        let puller = match req.cluster_id.len() {
            0 => None,
            16 => Some(<ClusterId>::try_from(&req.cluster_id[..]).expect("16 bytes")),
            n => {
                return Err(Error::invalid(
                    "cluster_id",
                    format!("is {n} bytes; a cluster id is 16"),
                ));
            }
        };
        if puller == Some(*self.store.identity().cluster_id.as_bytes()) {
            return Err(Error::FailedPrecondition(format!(
                "the puller has this cluster's id {} (a copy of its data directory?); a \
                 cluster never replicates from itself",
                self.store.identity().cluster_id
            )));
        }
        let start = LinkStart::from_proto(req.start)?;
        let mut asked = HashMap::new();
        for (i, p) in req.positions.into_iter().enumerate() {
            if asked
                .insert((p.topic, p.partition), p.next_offset)
                .is_some()
            {
                return Err(Error::invalid(
                    &format!("positions[{i}]"),
                    "names a partition twice".into(),
                ));
            }
        }
        let max_bytes = match req.max_bytes as usize {
            0 => DEFAULT_PULL_BYTES,
            n => n.min(MAX_PULL_BYTES),
        };
        let now = Instant::now();
        Ok(PullSession {
            ns: self.clone(),
            credential,
            stream: s,
            puller,
            start,
            max_bytes,
            cursors: req.cursors,
            asked,
            parts: Vec::new(),
            shapes: Vec::new(),
            catalog: self.catalog.subscribe(),
            catalog_seen: 0,
            refreshed: false,
            rr: 0,
            cursor_digest: None,
            next_cursor_check: now,
            last_sent: now,
        })
    }
}

impl PullSession {
    /// The next response: topics when they changed, batches when there are any, cursors
    /// when they changed, or a keepalive when idle. Waits until one of those is due.
    pub async fn next(&mut self) -> Result<v1::PullResponse> {
        let store = self.ns.store.clone();
        loop {
            // Registered before looking, so an append while we look wakes the wait below.
            let appended = store.appended();
            tokio::pin!(appended);
            appended.as_mut().enable();
            let mut resp = v1::PullResponse::default();
            let version = *self.catalog.borrow_and_update();
            let recheck = self.last_sent.elapsed() >= KEEPALIVE;
            if !self.refreshed || self.catalog_seen != version || recheck {
                self.catalog_seen = version;
                self.refresh(&mut resp).await?;
            }
            self.announce(&mut resp);
            self.read(&mut resp).await?;
            if self.cursors && Instant::now() >= self.next_cursor_check {
                self.next_cursor_check = Instant::now() + CURSOR_INTERVAL;
                self.add_cursors(&mut resp).await?;
            }
            let idle = resp.topics.is_empty() && resp.chunks.is_empty() && !resp.cursors_sent;
            if !idle || self.last_sent.elapsed() >= KEEPALIVE {
                self.last_sent = Instant::now();
                resp.sent_ms = self.ns.clock.now_ms();
                return Ok(resp);
            }
            let mut wake = self.last_sent + KEEPALIVE;
            if self.cursors {
                wake = wake.min(self.next_cursor_check);
            }
            let mut closing = self.ns.closing.subscribe();
            if *closing.borrow_and_update() {
                return Err(Error::ShuttingDown);
            }
            tokio::select! {
                _ = appended => {}
                _ = self.catalog.changed() => {}
                _ = closing.changed() => return Err(Error::ShuttingDown),
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    /// Follows the stream's topics: new partitions get their start, deleted ones go.
    async fn refresh(&mut self, resp: &mut v1::PullResponse) -> Result<()> {
        self.refreshed = true;
        let path = StreamPath::parse("stream", &self.stream.path)?;
        let s = self.ns.stream(&path)?;
        if s.id != self.stream.id {
            return Err(Error::NotFound {
                what: "stream",
                path: format!("{path} (deleted and created again)"),
            });
        }
        let c = self.ns.reauthenticate(&self.credential)?;
        self.ns.check(&c, &s, Perm::Copy)?;
        let topics = self.ns.topic_rows(&s).await?;
        let mut shapes: Vec<v1::TopicShape> = topics
            .iter()
            .map(|t| v1::TopicShape {
                name: t.name.clone(),
                partitions: t.partitions.len() as u32,
            })
            .collect();
        shapes.sort_by(|a, b| a.name.cmp(&b.name));
        let live: HashSet<PartitionId> = topics
            .iter()
            .flat_map(|t| t.partitions.iter().copied())
            .collect();
        self.parts.retain(|p| live.contains(&p.id));
        let known: HashSet<PartitionId> = self.parts.iter().map(|p| p.id).collect();
        let cutoff = self.ns.expire_before(&s);
        let mut new = Vec::new();
        for t in &topics {
            for (n, &id) in t.partitions.iter().enumerate() {
                if known.contains(&id) {
                    continue;
                }
                let asked = self.asked.remove(&(t.name.clone(), n as u32));
                new.push((t.name.clone(), n as u32, id, asked));
            }
        }
        let start = self.start;
        let store = self.ns.store.clone();
        let resolved = blocking(move || {
            new.into_iter()
                .map(|(topic, partition, id, asked)| {
                    let next = match asked {
                        Some(o) => o,
                        None => {
                            let st = store.partition_stats(id, cutoff)?;
                            match start {
                                LinkStart::Earliest => st.log_start,
                                LinkStart::Latest => st.high_watermark,
                            }
                        }
                    };
                    Ok((topic, partition, id, next, store.watch(id)?))
                })
                .collect::<Result<Vec<_>>>()
        })
        .await;
        let resolved = match resolved {
            Err(Error::Storage(storage::Error::UnknownPartition(_))) => {
                self.refreshed = false; // a topic deleted meanwhile: look again
                return Ok(());
            }
            r => r?,
        };
        for (topic, partition, id, next, hwm) in resolved {
            self.parts.push(Part {
                topic,
                partition,
                id,
                next,
                hwm,
                announced: false,
            });
        }
        self.stream = s;
        if shapes != self.shapes {
            resp.topics = shapes.clone();
            self.shapes = shapes;
        }
        Ok(())
    }

    /// Tells the puller where partitions it has not heard of start, so it stores that
    /// position before any record arrives (a `latest` start is then fixed once).
    fn announce(&mut self, resp: &mut v1::PullResponse) {
        for p in self
            .parts
            .iter_mut()
            .filter(|p| !p.announced)
            .take(PARTITIONS_PER_RESPONSE)
        {
            p.announced = true;
            let hwm = *p.hwm.borrow();
            resp.chunks.push(v1::PullChunk {
                topic: p.topic.clone(),
                partition: p.partition,
                next_offset: p.next,
                high_watermark: hwm,
                ..Default::default()
            });
        }
    }

    /// Reads partitions with records past their position, in turn, up to the byte budget.
    async fn read(&mut self, resp: &mut v1::PullResponse) -> Result<()> {
        if !resp.chunks.is_empty() {
            return Ok(()); // announcements first; data on the next round
        }
        let n = self.parts.len();
        let mut wanted = Vec::new();
        for k in 0..n {
            let i = (self.rr + k) % n;
            let p = &self.parts[i];
            if *p.hwm.borrow() > p.next {
                wanted.push((i, p.id, p.next));
                if wanted.len() == PARTITIONS_PER_RESPONSE {
                    break;
                }
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        self.rr = (wanted.last().expect("not empty").0 + 1) % n.max(1);
        let store = self.ns.store.clone();
        let cutoff = self.ns.expire_before(&self.stream);
        let budget = self.max_bytes;
        let puller = self.puller;
        let reads = blocking(move || {
            let mut out = Vec::new();
            let mut used = 0usize;
            for (i, id, next) in wanted {
                if used >= budget {
                    break;
                }
                let r = match store.read(id, next, budget - used, cutoff) {
                    Err(storage::Error::OffsetOutOfRange { log_start, .. }) => {
                        // Below the log start (retention) or above the end (the source
                        // lost its tail): continue from the log start; the puller's
                        // watermarks skip what it already has.
                        store.read(id, log_start, budget - used, cutoff)
                    }
                    r => r,
                };
                let r = match r {
                    Err(storage::Error::UnknownPartition(_)) => continue, // deleted meanwhile
                    r => r?,
                };
                let st = store.partition_stats(id, cutoff)?;
                let mut batches = Vec::with_capacity(r.batches.len());
                for b in r.batches {
                    used += b.value.len();
                    if puller.is_none() || batch::origin_of(&b.value) != puller {
                        batches.push(b.value);
                    }
                }
                out.push((i, r.next_offset, st, batches));
            }
            Ok(out)
        })
        .await?;
        for (i, next, st, batches) in reads {
            let p = &mut self.parts[i];
            p.next = next;
            resp.chunks.push(v1::PullChunk {
                topic: p.topic.clone(),
                partition: p.partition,
                batches,
                next_offset: next,
                high_watermark: st.high_watermark,
                log_start: st.log_start,
                stored_bytes: st.bytes,
                last_append_ms: st.last_append_ms.unwrap_or(0),
            });
        }
        Ok(())
    }

    /// Adds every group cursor of the stream when they changed since last sent.
    async fn add_cursors(&mut self, resp: &mut v1::PullResponse) -> Result<()> {
        let names: HashMap<PartitionId, (String, u32)> = self
            .parts
            .iter()
            .map(|p| (p.id, (p.topic.clone(), p.partition)))
            .collect();
        let store = self.ns.store.clone();
        let scope = *self.stream.id.as_bytes();
        let all = blocking(move || {
            let mut out = Vec::new();
            for g in store.cursor_groups(&scope)? {
                for (id, c) in store.cursors(&scope, &g)? {
                    if let Some((topic, partition)) = names.get(&id) {
                        out.push(v1::ReplicatedCursor {
                            group: g.clone(),
                            topic: topic.clone(),
                            partition: *partition,
                            offset: c.offset,
                        });
                    }
                }
            }
            Ok(out)
        })
        .await?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for c in &all {
            (&c.group, &c.topic, c.partition, c.offset).hash(&mut h);
        }
        let digest = h.finish();
        if self.cursor_digest != Some(digest) {
            self.cursor_digest = Some(digest);
            resp.cursors = all;
            resp.cursors_sent = true;
        }
        Ok(())
    }
}

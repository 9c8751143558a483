//! The upstream side of replication: a pull session reads one stream for a downstream
//! cluster, from its positions, partition by partition in turn, and keeps going as records
//! arrive. Batches go out as stored (no re-encoding); batches that originated at the puller
//! are left out, and positions move past them all the same.
//!
//! The session reaches the stream only through the [`PullSource`] the namespace handed out
//! for it (after checking the puller's `copy` permission): topics of that stream, reads of
//! its stored batches, and a refresh that checks the puller's credential and permission
//! again, on every catalog change and at least every keepalive, so revoking ends the pull.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tributary_core::batch;
use tributary_volume::{
    Error, LinkStart, PullSource, Result, SourcePartition, SourceRead, UpstreamPosition,
};

use crate::protocol::{
    ClusterId, PullChunk, PullRequest, PullResponse, ReplicatedCursor, TopicShape,
};

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
    id: SourcePartition,
    next: u64,
    hwm: watch::Receiver<u64>,
    /// The puller has been told this partition's position.
    announced: bool,
}

/// One downstream cluster's pull of a stream.
pub struct PullSession {
    source: PullSource,
    puller: Option<ClusterId>,
    start: LinkStart,
    max_bytes: usize,
    cursors: bool,
    /// Positions from the request, taken as their partitions are found.
    asked: HashMap<(String, u32), UpstreamPosition>,
    /// This cluster's incarnation, which every response names.
    incarnation: u32,
    parts: Vec<Part>,
    shapes: Vec<TopicShape>,
    catalog: watch::Receiver<u64>,
    catalog_seen: u64,
    refreshed: bool,
    rr: usize,
    cursor_digest: Option<u64>,
    next_cursor_check: Instant,
    last_sent: Instant,
}

impl PullSession {
    /// Starts the pull `req` of `source` (whose stream is `req.stream`, the caller's
    /// `copy` permission on it already checked).
    pub fn open(source: PullSource, req: PullRequest) -> Result<PullSession> {
        let own = source.cluster_id();
        if req.puller == Some(*own.as_bytes()) {
            return Err(Error::FailedPrecondition(format!(
                "the puller has this cluster's id {own} (a copy of its data directory?); a \
                 cluster never replicates from itself"
            )));
        }
        let mut asked = HashMap::new();
        for (i, p) in req.positions.into_iter().enumerate() {
            let at = UpstreamPosition {
                next_offset: p.next_offset,
                upstream_incarnation: p.upstream_incarnation,
            };
            if asked.insert((p.topic, p.partition), at).is_some() {
                return Err(Error::InvalidArgument {
                    field: format!("positions[{i}]"),
                    message: "names a partition twice".into(),
                });
            }
        }
        let max_bytes = match req.max_bytes as usize {
            0 => DEFAULT_PULL_BYTES,
            n => n.min(MAX_PULL_BYTES),
        };
        let now = Instant::now();
        Ok(PullSession {
            catalog: source.catalog_changes(),
            incarnation: source.incarnation(),
            source,
            puller: req.puller,
            start: req.start,
            max_bytes,
            cursors: req.cursors,
            asked,
            parts: Vec::new(),
            shapes: Vec::new(),
            catalog_seen: 0,
            refreshed: false,
            rr: 0,
            cursor_digest: None,
            next_cursor_check: now,
            last_sent: now,
        })
    }

    /// The next response: topics when they changed, batches when there are any, cursors
    /// when they changed, or a keepalive when idle. Waits until one of those is due.
    pub async fn next(&mut self) -> Result<PullResponse> {
        let source = self.source.clone();
        loop {
            // Registered before looking, so an append while we look wakes the wait below.
            let appended = source.appended();
            tokio::pin!(appended);
            appended.as_mut().enable();
            let mut resp = PullResponse::default();
            let version = *self.catalog.borrow_and_update();
            let recheck = self.last_sent.elapsed() >= KEEPALIVE;
            if !self.refreshed || self.catalog_seen != version || recheck {
                self.catalog_seen = version;
                self.refresh(&mut resp).await?;
            }
            self.announce(&mut resp);
            self.read(&mut resp).await?;
            // A catalog change since the refresh above is checked before the batches go, so
            // none appended after a revocation is sent (the argument: the volume's access.rs).
            if *self.catalog.borrow() != self.catalog_seen {
                self.source.reauthorize()?;
            }
            if self.cursors && Instant::now() >= self.next_cursor_check {
                self.next_cursor_check = Instant::now() + CURSOR_INTERVAL;
                self.add_cursors(&mut resp).await?;
            }
            if !resp.is_idle() || self.last_sent.elapsed() >= KEEPALIVE {
                self.last_sent = Instant::now();
                resp.sent_ms = self.source.now_ms();
                resp.upstream_incarnation = self.incarnation;
                return Ok(resp);
            }
            let mut wake = self.last_sent + KEEPALIVE;
            if self.cursors {
                wake = wake.min(self.next_cursor_check);
            }
            let mut closing = self.source.closing();
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
    async fn refresh(&mut self, resp: &mut PullResponse) -> Result<()> {
        self.refreshed = true;
        let (source, topics) = self.source.refresh().await?;
        let mut shapes: Vec<TopicShape> = topics
            .iter()
            .map(|t| TopicShape {
                name: t.name.clone(),
                partitions: t.partitions.len() as u32,
            })
            .collect();
        shapes.sort_by(|a, b| a.name.cmp(&b.name));
        let live: HashSet<SourcePartition> = topics
            .iter()
            .flat_map(|t| t.partitions.iter().copied())
            .collect();
        self.parts.retain(|p| live.contains(&p.id));
        let known: HashSet<SourcePartition> = self.parts.iter().map(|p| p.id).collect();
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
        let fresh = source.clone();
        // `None`: a topic was deleted meanwhile.
        let resolved = blocking(move || {
            let mut out = Vec::with_capacity(new.len());
            for (topic, partition, id, asked) in new {
                let Some(st) = fresh.stats(id)? else {
                    return Ok(None);
                };
                let next = match asked {
                    Some(at) => match fresh.position_holds(id, at)? {
                        Some(true) => at.next_offset,
                        // Read before a restart that may have lost a tail (design §6.3):
                        // the records below the position may not be those the puller read,
                        // and new ones (of this incarnation) may be among them. Send the
                        // log again; the puller's watermarks skip what it has. (Below the
                        // log start, the read reports what retention removed.)
                        Some(false) => at.next_offset.min(st.log_start),
                        None => return Ok(None),
                    },
                    None => match start {
                        LinkStart::Earliest => st.log_start,
                        LinkStart::Latest => st.high_watermark,
                    },
                };
                let Some(hwm) = fresh.watch(id)? else {
                    return Ok(None);
                };
                out.push((topic, partition, id, next, hwm));
            }
            Ok(Some(out))
        })
        .await?;
        let Some(resolved) = resolved else {
            self.refreshed = false; // look again
            return Ok(());
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
        self.source = source;
        if shapes != self.shapes {
            resp.topics = shapes.clone();
            self.shapes = shapes;
        }
        Ok(())
    }

    /// Tells the puller where partitions it has not heard of start, so it stores that
    /// position before any record arrives (a `latest` start is then fixed once).
    fn announce(&mut self, resp: &mut PullResponse) {
        for p in self
            .parts
            .iter_mut()
            .filter(|p| !p.announced)
            .take(PARTITIONS_PER_RESPONSE)
        {
            p.announced = true;
            let hwm = *p.hwm.borrow();
            resp.chunks.push(PullChunk {
                topic: p.topic.clone(),
                partition: p.partition,
                next_offset: p.next,
                high_watermark: hwm,
                ..Default::default()
            });
        }
    }

    /// Reads partitions with records past their position, in turn, up to the byte budget.
    async fn read(&mut self, resp: &mut PullResponse) -> Result<()> {
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
        let source = self.source.clone();
        let budget = self.max_bytes;
        let puller = self.puller;
        let (reads, deferred) = blocking(move || {
            let mut out = Vec::new();
            let mut used = 0usize;
            for (i, id, next) in wanted {
                if used >= budget {
                    break;
                }
                let Some(SourceRead {
                    batches: read,
                    next_offset,
                    stats,
                }) = source.read(id, next, budget - used)?
                else {
                    continue; // deleted meanwhile
                };
                // A lone batch past what is left of the budget: it leads the next response
                // instead, where it may pass the budget alone.
                let bytes: usize = read.iter().map(|b| b.len()).sum();
                if used > 0 && bytes > budget - used {
                    return Ok((out, Some(i)));
                }
                let mut batches = Vec::with_capacity(read.len());
                for b in read {
                    used += b.len();
                    if puller.is_none() || batch::origin_of(&b) != puller {
                        batches.push(b);
                    }
                }
                out.push((i, next_offset, stats, batches));
            }
            Ok((out, None))
        })
        .await?;
        if let Some(i) = deferred {
            self.rr = i;
        }
        for (i, next, st, batches) in reads {
            let p = &mut self.parts[i];
            p.next = next;
            resp.chunks.push(PullChunk {
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
    async fn add_cursors(&mut self, resp: &mut PullResponse) -> Result<()> {
        let names: HashMap<SourcePartition, (String, u32)> = self
            .parts
            .iter()
            .map(|p| (p.id, (p.topic.clone(), p.partition)))
            .collect();
        let source = self.source.clone();
        let all = blocking(move || {
            let mut out = Vec::new();
            for c in source.cursors()? {
                if let Some((topic, partition)) = names.get(&c.partition) {
                    out.push(ReplicatedCursor {
                        group: c.group,
                        topic: topic.clone(),
                        partition: *partition,
                        offset: c.offset,
                    });
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

/// Runs blocking store work off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| Error::ShuttingDown)?
}

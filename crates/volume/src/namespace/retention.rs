//! Retention by time, size and key. Records older than their stream's TTL are invisible at
//! once (reads start after the expired head of each partition); `purge` removes them, and
//! the oldest batches of partitions above `max_bytes_per_partition`: one range delete per
//! partition, then a compaction of the removed range so the disk space is actually freed.
//! On `compact` streams it then runs key compaction (see `tributary_storage::compaction`):
//! the background task when a partition is due, `tributary stream purge` always. BlobDB's
//! garbage collection, which reclaims the blob files key compaction leaves partly live, is
//! on only while some stream is `compact` (`Store::set_blob_gc`).
//! A background task runs it for every stream, idle ones included; partitions with nothing
//! in them are skipped without being loaded (`Store::may_hold_records`).
//!
//! A stream whose retention fails (a batch key compaction cannot decode, a storage error)
//! does not stop the pass: the others still run, the failure is logged (WARN, naming the
//! stream) and counted, and the pass reports an error naming how many failed.
//!
//! Metrics: `tributary_retention_purged_records_total` and `..._purged_bytes_total`, by
//! volume, count what every cause (TTL, size cap, compaction) removed;
//! `tributary_retention_failures_total`, by volume and stream, the streams' failed passes.

use std::sync::atomic::Ordering;

use tributary_core::names::StreamPath;
use tributary_storage::{self as storage, CompactOptions, DEFAULT_MAX_KEYS, PartitionId, Purged};

use super::{Namespace, blocking, volume_of};
use crate::auth::Caller;
use crate::model::{Perm, StreamRow};
use crate::{Error, Result};

impl Namespace {
    /// Records with timestamps below this are expired in `s`; `None` when it keeps records
    /// forever.
    pub(super) fn expire_before(&self, s: &StreamRow) -> Option<i64> {
        (s.attributes.ttl_ms > 0).then(|| {
            self.clock
                .now_ms()
                .saturating_sub(s.attributes.ttl_ms as i64)
        })
    }

    /// Runs retention on one stream now, compaction included whether due or not
    /// (`tributary stream purge`; the `admin` permission).
    pub async fn purge_stream(&self, c: &Caller, path: &str) -> Result<Purged> {
        let path = StreamPath::parse("path", path)?;
        let s = self.stream(&path)?;
        self.check(c, &s, Perm::Admin)?;
        self.purge(&s, true).await
    }

    /// How long an idle idempotent producer's state is kept (default 7 days).
    pub fn set_producer_expiry(&self, d: std::time::Duration) {
        self.producer_expiry_ms.store(
            d.as_millis().min(i64::MAX as u128) as i64,
            Ordering::Relaxed,
        );
    }

    /// Runs retention on every stream, and forgets idle idempotent producers; what the
    /// background task calls. A stream that fails is logged and counted, and the others
    /// still run; the pass then fails with [`Error::Retention`].
    pub async fn run_retention(&self) -> Result<Purged> {
        let before = self
            .clock
            .now_ms()
            .saturating_sub(self.producer_expiry_ms.load(Ordering::Relaxed));
        let mut streams: Vec<_> = self.streams.read().values().cloned().collect();
        streams.sort_by(|a, b| a.path.cmp(&b.path));
        let compacted = streams.iter().any(|s| s.attributes.compact);
        let store = self.store.clone();
        let expired = blocking(move || {
            store.set_blob_gc(compacted)?;
            Ok(store.expire_producers(before)?)
        })
        .await?;
        if expired > 0 {
            tracing::info!(expired, "forgot idle idempotent producers");
        }
        let mut total = Purged::default();
        let mut failed = Vec::new();
        for s in &streams {
            match self.purge(s, false).await {
                Ok(p) => {
                    total.records += p.records;
                    total.bytes += p.bytes;
                }
                Err(e) => {
                    tracing::warn!(stream = %s.path, error = %e, "retention failed on a stream; the others go on");
                    let labels = [
                        ("volume", volume_of(&s.path).to_owned()),
                        ("stream", s.path.clone()),
                    ];
                    metrics::counter!("tributary_retention_failures_total", &labels).increment(1);
                    failed.push((s.path.clone(), e));
                }
            }
        }
        let count = failed.len();
        match failed.into_iter().next() {
            None => Ok(total),
            Some((stream, first)) => Err(Error::Retention {
                failed: count,
                streams: streams.len(),
                stream,
                first: Box::new(first),
            }),
        }
    }

    async fn purge(&self, s: &StreamRow, compact_now: bool) -> Result<Purged> {
        let cutoff = self.expire_before(s);
        let cap = s.attributes.max_bytes_per_partition;
        let compact = s.attributes.compact.then(|| CompactOptions {
            now_ms: self.clock.now_ms(),
            delete_retention_ms: s.attributes.delete_retention_ms,
            max_keys: DEFAULT_MAX_KEYS,
            force: compact_now,
        });
        if cutoff.is_none() && cap == 0 && compact.is_none() {
            return Ok(Purged::default());
        }
        let ids: Vec<_> = self
            .topic_rows(s)
            .await?
            .into_iter()
            .flat_map(|t| t.partitions)
            .collect();
        let store = self.store.clone();
        let purged = blocking(move || {
            if compact.is_some() {
                store.set_blob_gc(true)?;
            }
            let mut total = Purged::default();
            let mut changed = Vec::new();
            for id in ids {
                match purge_partition(&store, id, cutoff, cap, compact.as_ref()) {
                    Ok((p, below)) => {
                        total.records += p.records;
                        total.bytes += p.bytes;
                        changed.extend(below.map(|b| (id, b)));
                    }
                    Err(storage::Error::UnknownPartition(_)) => {} // deleted meanwhile
                    Err(e) => return Err(e.into()),
                }
            }
            // Once per stream: a flush per partition would write the other partitions'
            // doomed records to blob files that then outlive them.
            store.compact_purged(&changed)?;
            Ok(total)
        })
        .await?;
        if purged.bytes > 0 || purged.records > 0 {
            let volume = volume_of(&s.path);
            let _ =
                self.usage(volume)
                    .bytes
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                        Some(b.saturating_sub(purged.bytes))
                    });
            let labels = [("volume", volume.to_owned())];
            metrics::counter!("tributary_retention_purged_records_total", &labels)
                .increment(purged.records);
            metrics::counter!("tributary_retention_purged_bytes_total", &labels)
                .increment(purged.bytes);
            tracing::info!(stream = %s.path, records = purged.records, bytes = purged.bytes, "retention purged");
        }
        Ok(purged)
    }
}

/// Retention on one partition: the log start moves to whichever of the TTL and the size cap
/// reaches further, then key compaction runs when asked. Returns what went and, when
/// anything did, the offset below which the disk space is to be reclaimed.
fn purge_partition(
    store: &storage::Store,
    id: PartitionId,
    cutoff: Option<i64>,
    cap: u64,
    compact: Option<&CompactOptions>,
) -> storage::Result<(Purged, Option<u64>)> {
    // Idle partitions are most of a large namespace: skip them without loading them.
    if !store.may_hold_records(id)? {
        return Ok((Purged::default(), None));
    }
    let mut start = cutoff.map_or(Ok(0), |c| store.expired_start(id, c))?;
    if cap > 0 {
        start = start.max(store.size_capped_start(id, cap)?);
    }
    let mut purged = store.purge_before(id, start)?;
    let mut below = (purged.records > 0).then_some(start);
    if let Some(o) = compact {
        let c = store.compact_keys(id, &crate::compaction::Codec, o)?;
        purged.records += c.removed.records;
        purged.bytes += c.removed.bytes;
        if c.batches_rewritten > 0 {
            below = Some(below.map_or(c.reclaim_below, |b| b.max(c.reclaim_below)));
        }
        if c.ran {
            tracing::debug!(
                partition = id,
                records = c.removed.records,
                bytes = c.removed.bytes,
                batches = c.batches_rewritten,
                "key compaction pass"
            );
        }
    }
    Ok((purged, below))
}

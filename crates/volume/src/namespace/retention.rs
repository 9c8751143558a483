//! Retention by time and size. Records older than their stream's TTL are invisible at once
//! (reads start after the expired head of each partition); `purge` removes them, and the
//! oldest batches of partitions above `max_bytes_per_partition`: one range delete per
//! partition, then a compaction of the removed range so the disk space is actually freed.
//! A background task runs it for every stream, idle ones included.

use std::sync::atomic::Ordering;

use tributary_storage::Purged;

use super::{Namespace, blocking, volume_of};
use crate::Result;
use crate::auth::Caller;
use crate::model::{Perm, StreamRow};
use crate::names::StreamPath;

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

    /// Runs retention on one stream now (`tributary stream purge`; the `admin` permission).
    pub async fn purge_stream(&self, c: &Caller, path: &str) -> Result<Purged> {
        let path = StreamPath::parse("path", path)?;
        let s = self.stream(&path)?;
        self.check(c, &s, Perm::Admin)?;
        self.purge(&s).await
    }

    /// How long an idle idempotent producer's state is kept (default 7 days).
    pub fn set_producer_expiry(&self, d: std::time::Duration) {
        self.producer_expiry_ms.store(
            d.as_millis().min(i64::MAX as u128) as i64,
            Ordering::Relaxed,
        );
    }

    /// Runs retention on every stream, and forgets idle idempotent producers; what the
    /// background task calls.
    pub async fn run_retention(&self) -> Result<Purged> {
        let before = self
            .clock
            .now_ms()
            .saturating_sub(self.producer_expiry_ms.load(Ordering::Relaxed));
        let store = self.store.clone();
        let expired = blocking(move || Ok(store.expire_producers(before)?)).await?;
        if expired > 0 {
            tracing::info!(expired, "forgot idle idempotent producers");
        }
        let streams: Vec<_> = self.streams.read().values().cloned().collect();
        let mut total = Purged::default();
        for s in streams {
            let p = self.purge(&s).await?;
            total.records += p.records;
            total.bytes += p.bytes;
        }
        Ok(total)
    }

    async fn purge(&self, s: &StreamRow) -> Result<Purged> {
        let cutoff = self.expire_before(s);
        let cap = s.attributes.max_bytes_per_partition;
        if cutoff.is_none() && cap == 0 {
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
            let mut total = Purged::default();
            for id in ids {
                // The log start moves to whichever of the TTL and the size cap reaches further.
                let start = cutoff
                    .map_or(Ok(0), |c| store.expired_start(id, c))
                    .and_then(|t| {
                        if cap == 0 {
                            Ok(t)
                        } else {
                            Ok(t.max(store.size_capped_start(id, cap)?))
                        }
                    });
                let start = match start {
                    Ok(start) => start,
                    Err(tributary_storage::Error::UnknownPartition(_)) => continue, // deleted meanwhile
                    Err(e) => return Err(e.into()),
                };
                let p = store.purge_before(id, start)?;
                if p.records > 0 {
                    store.compact_purged(id, start);
                }
                total.records += p.records;
                total.bytes += p.bytes;
            }
            Ok(total)
        })
        .await?;
        if purged.bytes > 0 {
            let usage = self.usage(volume_of(&s.path));
            let _ = usage
                .bytes
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                    Some(b.saturating_sub(purged.bytes))
                });
            tracing::info!(stream = %s.path, records = purged.records, bytes = purged.bytes, "retention purged");
        }
        Ok(purged)
    }
}

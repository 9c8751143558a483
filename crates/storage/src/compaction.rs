//! Key compaction (the `compact` stream attribute, as in Kafka and MapR 6.1): a partition
//! keeps the latest record of each key forever and drops every record a later one with the
//! same key supersedes. Offsets never change, so a compacted partition has gaps, never a
//! reordering.
//!
//! Storage does not parse batches: a [`KeyCodec`] from the caller lists a stored batch's
//! keys and builds a stored batch from a run of its records.
//!
//! **A pass** over one partition, as Kafka's log cleaner does it:
//!
//! 1. *Map.* From the first dirty batch (not yet compacted against the rest) up to the
//!    high-water mark, every record's key goes into a map of key digest -> latest offset.
//!    Digests are SHA-256 truncated to 128 bits, so a map entry is 24 bytes and memory is
//!    bounded by [`CompactOptions::max_keys`] (about 50 bytes per key with the table's
//!    slack; 1 Mi keys, the default, is about 50 MiB). When the map is full, the pass maps
//!    up to that batch only and the next pass continues from there.
//! 2. *Clean.* Every batch from the log start up to the end of the mapped range is read;
//!    a record survives unless the map holds a later offset for its key. Batches that lose
//!    nothing are left as they are (payloads live in BlobDB; they are never rewritten for
//!    nothing). A batch that loses records is re-stored as one batch per run of contiguous
//!    survivors, each under its own base offset, keeping the append time and origin (the
//!    origin offset moves with the run), so record `i` of every stored batch still has
//!    offset `base_offset + i`. An emptied batch is removed.
//! 3. *Commit.* Rewrites go in `WriteBatch`es of bounded size, each with the partition's new
//!    counters (records and bytes down, the `purged_*` counters up: compaction frees bytes
//!    for retention), under the partition's append lock, after checking that the partition
//!    was not dropped and that the batch was not purged meanwhile. Scanning happens outside
//!    the lock. The caller then hands the rewritten range ([`Compacted::reclaim_below`])
//!    to `Store::compact_purged`, with the other partitions it purged, so the space is
//!    reclaimed.
//!
//! The newest batch (the one ending at the high-water mark when the pass starts) is mapped
//! but never rewritten, so appenders never race a rewrite. Records it supersedes go.
//!
//! **Tombstones** (records with a null value, as the codec reports) delete their key: once
//! a tombstone is the latest record of its key, it stays for `delete_retention_ms` after its batch's append
//! time (the simpler of Kafka's two readings, chosen because it needs no state across
//! restarts; a consumer that lags by more than that may miss the delete), then goes too.
//! Unkeyed records (written before a stream became compacted) are kept as they are.
//!
//! **When.** A pass is due when the partition's dirty bytes (appended since the last pass)
//! are at least [`MIN_DIRTY_RATIO`] of its bytes (Kafka's `min.cleanable.dirty.ratio`), or
//! when a tombstone a pass kept has reached its deletion time; `force` runs it regardless.
//! Progress is kept in memory only: after a restart the first pass maps the whole log.

use std::collections::HashMap;
use std::ops::Range;

use bytes::Bytes;
use rocksdb::{ReadOptions, WriteBatch};
use sha2::{Digest, Sha256};

use crate::db::{partition_range, write_options};
use crate::error::{Error, Result};
use crate::keys::{self, PartitionId, cf};
use crate::state::{Cleaner, Partition, Store};
use crate::types::{Durability, Purged};
use crate::values::{BatchSummary, PartitionState};

/// Distinct keys one pass maps at most, unless a single batch holds more.
pub const DEFAULT_MAX_KEYS: usize = 1 << 20;

/// A pass is due once the bytes appended since the last one reach this share of the
/// partition (Kafka's `min.cleanable.dirty.ratio` default).
pub const MIN_DIRTY_RATIO: f64 = 0.5;

/// Rewrites of one pass are committed in groups of about this many new bytes (or
/// `SCAN_CHUNK` batches).
const COMMIT_BYTES: usize = 16 << 20;

/// Batch summaries read from the index at a time.
const SCAN_CHUNK: usize = 4096;

/// How the caller's stored batches are read and cut; storage never parses them itself.
pub trait KeyCodec {
    /// Calls `f(key, is_tombstone)` for each record of a stored batch, in offset order, and
    /// returns the number of records. An unkeyed record (`None`) is kept as it is.
    fn for_each_key(
        &self,
        batch: &Bytes,
        f: &mut dyn FnMut(Option<&[u8]>, bool),
    ) -> Result<u32, String>;

    /// One stored batch per run of records of `batch` (indexes into it), the run's first
    /// record at offset `base_offset + run.start`, `batch` itself being at `base_offset`.
    fn cut(
        &self,
        batch: &Bytes,
        base_offset: u64,
        runs: &[Range<u32>],
    ) -> Result<Vec<Vec<u8>>, String>;
}

#[derive(Debug, Clone, Copy)]
pub struct CompactOptions {
    /// The time tombstones are judged by.
    pub now_ms: i64,
    /// How long a tombstone stays once it is its key's latest record.
    pub delete_retention_ms: u64,
    /// Memory bound of one pass: distinct keys mapped (see the module docs).
    pub max_keys: usize,
    /// Run even when the partition is not due.
    pub force: bool,
}

/// What one call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Compacted {
    /// Whether a pass ran (false when the partition was not due).
    pub ran: bool,
    /// Records removed and bytes freed.
    pub removed: Purged,
    /// Stored batches replaced or removed.
    pub batches_rewritten: u64,
    /// Batches were rewritten below this offset: the range for `Store::compact_purged`
    /// (0 when none were).
    pub reclaim_below: u64,
}

/// One batch to replace: the old one and the runs of its survivors.
struct Rewrite {
    base: u64,
    old: BatchSummary,
    runs: Vec<(u64, u32, Vec<u8>)>,
}

type KeyMap = HashMap<[u8; 16], u64>;

fn digest(key: &[u8]) -> [u8; 16] {
    let d = Sha256::digest(key);
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
}

fn codec_error(base: u64, e: String) -> Error {
    Error::corrupt("stored batch", format!("at offset {base}: {e}"))
}

impl Store {
    /// Runs a compaction pass on partition `id` when it is due (or `force`), keeping the
    /// latest record of each key (see the module docs).
    pub fn compact_keys(
        &self,
        id: PartitionId,
        codec: &dyn KeyCodec,
        o: &CompactOptions,
    ) -> Result<Compacted> {
        let p = self.partition(id)?;
        let mut cleaner = p.cleaner.lock();
        let state = p.slot.lock().state;
        let hwm = state.next_offset;
        let Some(newest) = self.batch_before(id, hwm)? else {
            return Ok(Compacted::default()); // empty
        };
        let dirty_from = cleaner.cleaned_until.max(state.log_start);
        if !o.force && !self.due(id, &cleaner, &state, dirty_from, o.now_ms)? {
            return Ok(Compacted::default());
        }
        let mut done = Compacted {
            ran: true,
            ..Compacted::default()
        };
        let (map, mapped_until) = self.map_keys(id, codec, dirty_from, hwm, o.max_keys)?;
        let mut tombstone_due: Option<i64> = None;
        let clean_until = mapped_until.min(newest);
        let mut pending: Vec<Rewrite> = Vec::new();
        let mut pending_bytes = 0;
        let mut last_removed = state.log_start;
        let mut next = state.log_start;
        while let Some(chunk) = self.summaries(id, &mut next, clean_until)? {
            for (base, summary) in chunk {
                let Some(value) = self.batch_value(id, base)? else {
                    continue; // purged meanwhile
                };
                let Some(r) = plan(codec, &map, base, summary, &value, o, &mut tombstone_due)?
                else {
                    continue;
                };
                pending_bytes += r.runs.iter().map(|(.., v)| v.len()).sum::<usize>();
                last_removed = base + u64::from(summary.record_count);
                pending.push(r);
                if pending_bytes >= COMMIT_BYTES || pending.len() >= SCAN_CHUNK {
                    self.commit_rewrites(id, &p, std::mem::take(&mut pending), &mut done)?;
                    pending_bytes = 0;
                }
            }
        }
        self.commit_rewrites(id, &p, pending, &mut done)?;
        if done.batches_rewritten > 0 {
            done.reclaim_below = last_removed;
        }
        *cleaner = Cleaner {
            cleaned_until: clean_until,
            // A full map leaves the rest dirty: the ratio decides when to go on.
            last_hwm: (mapped_until == hwm).then_some(hwm),
            tombstone_due_ms: tombstone_due,
        };
        Ok(done)
    }

    /// Whether a pass is due: enough dirty bytes, or a kept tombstone's time has come.
    fn due(
        &self,
        id: PartitionId,
        c: &Cleaner,
        state: &PartitionState,
        dirty_from: u64,
        now_ms: i64,
    ) -> Result<bool> {
        if c.tombstone_due_ms.is_some_and(|t| t <= now_ms) {
            return Ok(true);
        }
        if c.last_hwm == Some(state.next_offset) {
            return Ok(false);
        }
        let (mut dirty, mut next) = (0u64, dirty_from);
        while let Some(chunk) = self.summaries(id, &mut next, state.next_offset)? {
            dirty += chunk.iter().map(|(_, s)| u64::from(s.bytes)).sum::<u64>();
        }
        Ok(dirty > 0 && dirty as f64 >= MIN_DIRTY_RATIO * state.bytes as f64)
    }

    /// Maps each key of `[from, hwm)` to its latest offset, up to `max_keys` keys at batch
    /// granularity (the first batch always). Returns the map and where mapping stopped.
    fn map_keys(
        &self,
        id: PartitionId,
        codec: &dyn KeyCodec,
        from: u64,
        hwm: u64,
        max_keys: usize,
    ) -> Result<(KeyMap, u64)> {
        let mut map = KeyMap::new();
        let mut next = from;
        while let Some(chunk) = self.summaries(id, &mut next, hwm)? {
            for (base, summary) in chunk {
                if !map.is_empty() && map.len() + summary.record_count as usize > max_keys {
                    return Ok((map, base));
                }
                let Some(value) = self.batch_value(id, base)? else {
                    continue;
                };
                let mut offset = base;
                let count = codec
                    .for_each_key(&value, &mut |key, _| {
                        if let Some(k) = key {
                            map.insert(digest(k), offset);
                        }
                        offset += 1;
                    })
                    .map_err(|e| codec_error(base, e))?;
                check_count(base, count, &summary)?;
            }
        }
        Ok((map, hwm))
    }

    /// Commits a group of rewrites with the partition's new counters, under its append lock;
    /// batches purged meanwhile are skipped.
    fn commit_rewrites(
        &self,
        id: PartitionId,
        p: &Partition,
        rewrites: Vec<Rewrite>,
        done: &mut Compacted,
    ) -> Result<()> {
        if rewrites.is_empty() {
            return Ok(());
        }
        let (log, index) = (self.cf(cf::LOG), self.cf(cf::INDEX));
        let mut slot = p.slot.lock();
        if slot.dropped {
            return Err(Error::UnknownPartition(id));
        }
        let old = slot.state;
        let mut wb = WriteBatch::default();
        let (mut records, mut old_bytes, mut new_bytes, mut rewritten) = (0u64, 0u64, 0u64, 0u64);
        for r in rewrites.into_iter().filter(|r| r.base >= old.log_start) {
            if r.runs.first().is_none_or(|(at, ..)| *at != r.base) {
                wb.delete_cf(log, keys::log(id, r.base));
                wb.delete_cf(index, keys::index_batch(id, r.base));
            }
            let mut kept = 0u64;
            for (at, count, value) in r.runs {
                let summary = BatchSummary {
                    record_count: count,
                    bytes: u32::try_from(value.len()).map_err(|_| Error::BatchTooLarge {
                        bytes: value.len(),
                        limit: u32::MAX as usize,
                    })?,
                    ..r.old
                };
                wb.put_cf(log, keys::log(id, at), &value);
                wb.put_cf(index, keys::index_batch(id, at), summary.encode());
                kept += u64::from(count);
                new_bytes += value.len() as u64;
            }
            records += u64::from(r.old.record_count) - kept;
            old_bytes += u64::from(r.old.bytes);
            rewritten += 1;
        }
        let freed = old_bytes.saturating_sub(new_bytes);
        let state = PartitionState {
            records: old.records - records.min(old.records),
            bytes: (old.bytes + new_bytes).saturating_sub(old_bytes),
            purged_records: old.purged_records + records,
            purged_bytes: old.purged_bytes + freed,
            ..old
        };
        wb.put_cf(self.cf(cf::META), keys::partition_state(id), state.encode());
        self.db
            .write_opt(wb, &write_options(Durability::Buffered))?;
        slot.state = state;
        p.expiry.lock().forget();
        done.removed.records += records;
        done.removed.bytes += freed;
        done.batches_rewritten += rewritten;
        Ok(())
    }

    /// The next summaries (a bounded number) of the batches with base offsets in `[*from,
    /// to)`, in offset order, moving `from` past them; `None` once there are no more.
    fn summaries(
        &self,
        id: PartitionId,
        from: &mut u64,
        to: u64,
    ) -> Result<Option<Vec<(u64, BatchSummary)>>> {
        let mut out = Vec::new();
        if *from >= to {
            return Ok(None);
        }
        let (start, _) = partition_range(id);
        let mut ro = ReadOptions::default();
        ro.set_iterate_lower_bound(start);
        ro.set_iterate_upper_bound(keys::index_batch(id, to).to_vec());
        let mut it = self.db.raw_iterator_cf_opt(self.cf(cf::INDEX), ro);
        it.seek(keys::index_batch(id, *from));
        while it.valid() && out.len() < SCAN_CHUNK {
            let (Some(k), Some(v)) = (it.key(), it.value()) else {
                break;
            };
            let Some((_, base)) = keys::decode_index_batch(k) else {
                break;
            };
            out.push((base, BatchSummary::decode(v)?));
            it.next();
        }
        it.status()?;
        match out.last() {
            Some(&(last, _)) => {
                *from = last + 1;
                Ok(Some(out))
            }
            None => {
                *from = to;
                Ok(None)
            }
        }
    }

    /// Base offset of the last batch starting below `offset`.
    fn batch_before(&self, id: PartitionId, offset: u64) -> Result<Option<u64>> {
        if offset == 0 {
            return Ok(None);
        }
        let (start, end) = partition_range(id);
        let mut ro = ReadOptions::default();
        ro.set_iterate_lower_bound(start);
        ro.set_iterate_upper_bound(end);
        let mut it = self.db.raw_iterator_cf_opt(self.cf(cf::INDEX), ro);
        it.seek_for_prev(keys::index_batch(id, offset - 1));
        let base = match (it.valid(), it.key()) {
            (true, Some(k)) => keys::decode_index_batch(k).map(|(_, b)| b),
            _ => None,
        };
        it.status()?;
        Ok(base)
    }

    /// One stored batch, read without filling the block cache (a pass reads the whole log).
    fn batch_value(&self, id: PartitionId, base: u64) -> Result<Option<Bytes>> {
        let mut ro = ReadOptions::default();
        ro.fill_cache(false);
        Ok(self
            .db
            .get_pinned_cf_opt(self.cf(cf::LOG), keys::log(id, base), &ro)?
            .map(|v| Bytes::copy_from_slice(&v)))
    }
}

/// What becomes of one batch in the clean phase: `None` when it keeps every record, else
/// the runs of its survivors, cut. Notes when the earliest tombstone it keeps may go.
fn plan(
    codec: &dyn KeyCodec,
    map: &KeyMap,
    base: u64,
    summary: BatchSummary,
    value: &Bytes,
    o: &CompactOptions,
    tombstone_due: &mut Option<i64>,
) -> Result<Option<Rewrite>> {
    let goes_at = summary
        .append_time_ms
        .saturating_add(o.delete_retention_ms.min(i64::MAX as u64) as i64);
    let expired = goes_at <= o.now_ms;
    let mut keep = Vec::with_capacity(summary.record_count as usize);
    let mut offset = base;
    let count = codec
        .for_each_key(value, &mut |key, tombstone| {
            let tombstone = tombstone && key.is_some(); // unkeyed records are kept as they are
            let latest = key
                .and_then(|k| map.get(&digest(k)))
                .is_none_or(|&last| last <= offset);
            keep.push(latest && !(tombstone && expired));
            if latest && tombstone && !expired {
                *tombstone_due = Some(tombstone_due.map_or(goes_at, |d| d.min(goes_at)));
            }
            offset += 1;
        })
        .map_err(|e| codec_error(base, e))?;
    check_count(base, count, &summary)?;
    if keep.iter().all(|&k| k) {
        return Ok(None);
    }
    let mut runs = Vec::new();
    let mut i = 0u32;
    while i < count {
        let start = i;
        while i < count && keep[i as usize] {
            i += 1;
        }
        if i > start {
            runs.push(start..i);
        }
        i += 1;
    }
    let cuts = codec
        .cut(value, base, &runs)
        .map_err(|e| codec_error(base, e))?;
    if cuts.len() != runs.len() {
        let e = format!("{} cuts for {} runs", cuts.len(), runs.len());
        return Err(codec_error(base, e));
    }
    Ok(Some(Rewrite {
        base,
        old: summary,
        runs: runs
            .iter()
            .zip(cuts)
            .map(|(r, cut)| (base + u64::from(r.start), r.end - r.start, cut))
            .collect(),
    }))
}

fn check_count(base: u64, count: u32, s: &BatchSummary) -> Result<()> {
    if count != s.record_count {
        return Err(Error::corrupt(
            "stored batch",
            format!(
                "at offset {base}: {count} records, its summary says {}",
                s.record_count
            ),
        ));
    }
    Ok(())
}

//! The sparse time index: seek by timestamp without scanning the log.
//!
//! Each partition keeps a running maximum of its batches' timestamps (the batch summaries'
//! `max_timestamp_ms`, whichever timestamp type the caller chose). Every
//! [`TimeTail::INTERVAL`] batches, the append also writes an index key
//! `(partition, running max, base offset)`. Running maxima only grow with the offset, so
//! the first batch holding a record at or after `t` lies between the last entry below `t`
//! and the next one: a lookup reads one index entry and at most `INTERVAL + 1` batch
//! summaries, whatever the partition's size, then one batch.
//!
//! It works on the database alone, below the store's state (`state.rs` keeps each
//! partition's [`TimeTail`] in its slot); `Store::seek_time` is the public entry.

use rocksdb::{DB, ReadOptions};

use crate::db::{self, get, partition_range};
use crate::error::{Error, Result};
use crate::keys::{self, PartitionId, cf};
use crate::types::StoredBatch;
use crate::values::{BatchSummary, PartitionState};

/// Where a partition's time index stands: kept with the append lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeTail {
    /// Largest batch timestamp so far (`i64::MIN` when empty).
    pub(crate) running_max: i64,
    /// Batches appended since the last index entry.
    pub(crate) since_entry: u32,
}

impl TimeTail {
    /// Batches between two index entries: the most a lookup scans.
    pub const INTERVAL: u32 = 32;

    const EMPTY: TimeTail = TimeTail {
        running_max: i64::MIN,
        since_entry: Self::INTERVAL - 1,
    };

    /// Takes a batch at `base` with largest timestamp `max_ts` into account; returns the
    /// index entry `(running max, base)` to write with it, if one is due.
    pub(crate) fn advance(&mut self, base: u64, max_ts: i64) -> Option<(i64, u64)> {
        self.running_max = self.running_max.max(max_ts);
        self.since_entry += 1;
        (self.since_entry >= Self::INTERVAL).then(|| {
            self.since_entry = 0;
            (self.running_max, base)
        })
    }
}

/// The answer to "where does time `t` start in this partition?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeLookup {
    /// The first batch whose largest timestamp is at or after `t`; `None` when every
    /// stored record is older (the answer is then the high-water mark).
    pub batch: Option<StoredBatch>,
    pub high_watermark: u64,
    /// Batch summaries read to find it (bounded by the index interval, not the log size).
    pub summaries_examined: u32,
}

/// Rebuilds a partition's [`TimeTail`] when it is first opened: the last index entry plus
/// the few summaries after it.
pub(crate) fn load_tail(db: &DB, id: PartitionId, state: &PartitionState) -> Result<TimeTail> {
    if state.next_offset == state.log_start {
        return Ok(TimeTail::EMPTY);
    }
    let index = db::cf(db, cf::INDEX);
    let prefix = keys::index_time_prefix(id);
    let mut ro = ReadOptions::default();
    ro.set_iterate_lower_bound(prefix.to_vec());
    ro.set_iterate_upper_bound(keys::prefix_end(&prefix).expect("kind byte is not 0xFF"));
    let mut it = db.raw_iterator_cf_opt(index, ro);
    it.seek_to_last();
    let last = match it.key() {
        Some(k) if it.valid() => keys::decode_index_time(k),
        _ => None,
    };
    it.status()?;
    let (mut tail, from) = match last {
        Some((_, ts, offset)) => (
            TimeTail {
                running_max: ts,
                since_entry: 0,
            },
            offset.saturating_add(1).max(state.log_start),
        ),
        None => (TimeTail::EMPTY, state.log_start),
    };
    scan_summaries(db, id, from, |_, s| {
        tail.running_max = tail.running_max.max(s.max_timestamp_ms);
        tail.since_entry += 1;
        true
    })?;
    Ok(tail)
}

/// The first batch of partition `id` below `high_watermark` holding a record with
/// timestamp at or after `timestamp_ms` (by batch maximum), found through the sparse time
/// index.
pub(crate) fn seek(
    db: &DB,
    id: PartitionId,
    timestamp_ms: i64,
    log_start: u64,
    high_watermark: u64,
) -> Result<TimeLookup> {
    let index = db::cf(db, cf::INDEX);
    let prefix = keys::index_time_prefix(id);
    let mut ro = ReadOptions::default();
    ro.set_iterate_lower_bound(prefix.to_vec());
    let mut it = db.raw_iterator_cf_opt(index, ro);
    // The last entry whose running maximum is below the wanted time: every batch up to
    // it is older, so the scan starts there.
    it.seek_for_prev(keys::index_time(id, timestamp_ms, 0));
    let from = match it.key() {
        Some(k) if it.valid() => keys::decode_index_time(k).map_or(0, |(_, _, o)| o),
        _ => 0,
    };
    it.status()?;
    drop(it);
    let mut examined = 0u32;
    let mut found = None;
    scan_summaries(db, id, from.max(log_start), |base, s| {
        examined += 1;
        if base >= high_watermark {
            return false;
        }
        if s.max_timestamp_ms >= timestamp_ms {
            found = Some(base);
            return false;
        }
        true
    })?;
    let batch = match found {
        Some(base) => {
            let v = get(db, cf::LOG, &keys::log(id, base))?
                .ok_or_else(|| Error::corrupt("time index", format!("no batch at {base}")))?;
            Some(StoredBatch {
                base_offset: base,
                value: v.into(),
            })
        }
        None => None,
    };
    Ok(TimeLookup {
        batch,
        high_watermark,
        summaries_examined: examined,
    })
}

/// The time-index entries of batches below `new_start`, for a purge to remove.
pub(crate) fn entries_below(db: &DB, id: PartitionId, new_start: u64) -> Result<Vec<Vec<u8>>> {
    let prefix = keys::index_time_prefix(id);
    let mut ro = ReadOptions::default();
    ro.set_iterate_lower_bound(prefix.to_vec());
    ro.set_iterate_upper_bound(keys::prefix_end(&prefix).expect("kind byte is not 0xFF"));
    let mut it = db.raw_iterator_cf_opt(db::cf(db, cf::INDEX), ro);
    it.seek_to_first();
    let mut below = Vec::new();
    while it.valid() {
        let Some(k) = it.key() else { break };
        match keys::decode_index_time(k) {
            Some((_, _, offset)) if offset < new_start => below.push(k.to_vec()),
            _ => break,
        }
        it.next();
    }
    it.status()?;
    Ok(below)
}

/// Calls `f(base_offset, summary)` for the batches of `id` from the one at or after `from`,
/// in offset order, until it returns false.
fn scan_summaries(
    db: &DB,
    id: PartitionId,
    from: u64,
    mut f: impl FnMut(u64, &BatchSummary) -> bool,
) -> Result<()> {
    let (_, end) = partition_range(id);
    let mut ro = ReadOptions::default();
    ro.set_iterate_lower_bound(keys::index_batch(id, from).to_vec());
    ro.set_iterate_upper_bound(end);
    let mut it = db.raw_iterator_cf_opt(db::cf(db, cf::INDEX), ro);
    it.seek(keys::index_batch(id, from));
    while it.valid() {
        let (Some(k), Some(v)) = (it.key(), it.value()) else {
            break;
        };
        let Some((_, base)) = keys::decode_index_batch(k) else {
            break; // past the batch summaries: the time entries follow them
        };
        if !f(base, &BatchSummary::decode(v)?) {
            break;
        }
        it.next();
    }
    it.status()?;
    Ok(())
}

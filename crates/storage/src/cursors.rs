//! Consumer-group cursors: a group's committed offset per partition, in the `cursors`
//! column family under the scope of the stream the group reads (see `keys`), so a stream's
//! cursors are deleted with it and a group's cursors are one prefix scan.

use rocksdb::{ReadOptions, WriteBatch};

use crate::db::{partition_range, write_options};
use crate::error::{Error, Result};
use crate::keys::{self, CursorScope, PartitionId, cf};
use crate::state::Store;
use crate::types::Durability;
use crate::values::{BatchSummary, Cursor};

/// How far one group is behind in a scope (see [`Store::group_lags`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupBacklog {
    pub group: String,
    /// Records from each cursor (or the log start, when above it) to the high-water mark,
    /// summed over the group's partitions.
    pub records: u64,
    /// The append time of the oldest record the group has yet to consume (the one at a
    /// cursor, or the first after it), over its partitions; `None` when caught up.
    pub oldest_unconsumed_ms: Option<i64>,
}

impl Store {
    /// Stores a group's cursors (durably, in one write).
    pub fn commit_cursors(
        &self,
        scope: &CursorScope,
        group: &str,
        cursors: &[(PartitionId, u64)],
        now_ms: i64,
    ) -> Result<()> {
        let with: Vec<(PartitionId, u64, &str)> = cursors
            .iter()
            .map(|&(id, offset)| (id, offset, ""))
            .collect();
        self.commit_cursors_with_metadata(scope, group, &with, now_ms)
    }

    /// Stores a group's cursors with each one's metadata (durably, in one write).
    pub fn commit_cursors_with_metadata(
        &self,
        scope: &CursorScope,
        group: &str,
        cursors: &[(PartitionId, u64, &str)],
        now_ms: i64,
    ) -> Result<()> {
        let mut wb = WriteBatch::default();
        for &(id, offset, metadata) in cursors {
            let c = Cursor {
                offset,
                commit_ms: now_ms,
                metadata: metadata.to_owned(),
            };
            wb.put_cf(
                self.cf(cf::CURSORS),
                keys::cursor(scope, group, id),
                c.encode(),
            );
        }
        self.db.write_opt(wb, &write_options(Durability::Sync))?;
        Ok(())
    }

    /// Every cursor of `group`, by partition id.
    pub fn cursors(&self, scope: &CursorScope, group: &str) -> Result<Vec<(PartitionId, Cursor)>> {
        let mut out = Vec::new();
        self.scan_cursors(scope, Some(group), |_, id, c| out.push((id, c)))?;
        Ok(out)
    }

    /// The groups with at least one cursor in `scope`, sorted.
    pub fn cursor_groups(&self, scope: &CursorScope) -> Result<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        self.scan_cursors(scope, None, |g, _, _| {
            if out.last().is_none_or(|l| l != g) {
                out.push(g.to_owned());
            }
        })?;
        Ok(out)
    }

    /// Each group's lag in `scope`, for the metrics endpoint, in group order: per cursor,
    /// the records from it (or from the log start, when that is above it) to the high-water
    /// mark, and for a cursor with records to go the append time of the first of them.
    /// Cursors of dropped partitions count for nothing. One prefix scan, and per cursor
    /// in-memory figures (with `expire_before_ms`, the cached expired head of `read`) and,
    /// when it lags, one index seek.
    pub fn group_lags(
        &self,
        scope: &CursorScope,
        expire_before_ms: Option<i64>,
    ) -> Result<Vec<GroupBacklog>> {
        let mut out: Vec<GroupBacklog> = Vec::new();
        let mut failed = None;
        self.scan_cursors(scope, None, |g, id, c| {
            if failed.is_some() {
                return;
            }
            let (lag, oldest) = match self.cursor_lag(id, c.offset, expire_before_ms) {
                Ok(l) => l,
                Err(e) => return failed = Some(e),
            };
            match out.last_mut() {
                Some(last) if last.group == g => {
                    last.records += lag;
                    last.oldest_unconsumed_ms = match (last.oldest_unconsumed_ms, oldest) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                }
                _ => out.push(GroupBacklog {
                    group: g.to_owned(),
                    records: lag,
                    oldest_unconsumed_ms: oldest,
                }),
            }
        })?;
        match failed {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// One cursor's records to go and the append time of the first of them.
    fn cursor_lag(
        &self,
        id: PartitionId,
        offset: u64,
        expire_before_ms: Option<i64>,
    ) -> Result<(u64, Option<i64>)> {
        let p = match self.partition(id) {
            Ok(p) => p,
            Err(Error::UnknownPartition(_)) => return Ok((0, None)),
            Err(e) => return Err(e),
        };
        let hwm = *p.hwm.borrow();
        let next = offset.max(self.visible_start(id, &p, hwm, expire_before_ms)?);
        match hwm.saturating_sub(next) {
            0 => Ok((0, None)),
            lag => Ok((lag, self.append_ms_from(id, next)?)),
        }
    }

    /// The append time of the batch holding `offset`, or of the first batch after it (when
    /// key compaction left a gap there).
    fn append_ms_from(&self, id: PartitionId, offset: u64) -> Result<Option<i64>> {
        let (start, end) = partition_range(id);
        let mut ro = ReadOptions::default();
        ro.set_iterate_lower_bound(start);
        ro.set_iterate_upper_bound(end);
        let mut it = self.db.raw_iterator_cf_opt(self.cf(cf::INDEX), ro);
        let summary = |it: &rocksdb::DBRawIterator<'_>| -> Result<Option<(u64, BatchSummary)>> {
            match (it.valid(), it.key(), it.value()) {
                (true, Some(k), Some(v)) => match keys::decode_index_batch(k) {
                    Some((_, base)) => Ok(Some((base, BatchSummary::decode(v)?))),
                    None => Ok(None),
                },
                _ => Ok(None),
            }
        };
        it.seek_for_prev(keys::index_batch(id, offset));
        if let Some((base, s)) = summary(&it)?
            && base + u64::from(s.record_count) > offset
        {
            return Ok(Some(s.append_time_ms));
        }
        it.seek(keys::index_batch(id, offset));
        let found = summary(&it)?.map(|(_, s)| s.append_time_ms);
        it.status()?;
        Ok(found)
    }

    /// Removes some (or, with `None`, all) of a group's cursors.
    pub fn delete_cursors(
        &self,
        scope: &CursorScope,
        group: &str,
        partitions: Option<&[PartitionId]>,
    ) -> Result<()> {
        let mut wb = WriteBatch::default();
        let cursors = self.cf(cf::CURSORS);
        match partitions {
            Some(ids) => ids
                .iter()
                .for_each(|&id| wb.delete_cf(cursors, keys::cursor(scope, group, id))),
            None => {
                let start = keys::cursor_prefix(scope, Some(group));
                let end = keys::prefix_end(&start).expect("a scope is not all 0xFF");
                wb.delete_range_cf(cursors, start, end);
            }
        }
        self.db.write_opt(wb, &write_options(Durability::Sync))?;
        Ok(())
    }

    fn scan_cursors(
        &self,
        scope: &CursorScope,
        group: Option<&str>,
        mut f: impl FnMut(&str, PartitionId, Cursor),
    ) -> Result<()> {
        let start = keys::cursor_prefix(scope, group);
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(keys::prefix_end(&start).expect("a scope is not all 0xFF"));
        let mut it = self.db.raw_iterator_cf_opt(self.cf(cf::CURSORS), ro);
        it.seek(&start);
        while it.valid() {
            let (Some(k), Some(v)) = (it.key(), it.value()) else {
                break;
            };
            let (g, id) = keys::decode_cursor(scope, k)
                .ok_or_else(|| Error::corrupt("cursor key", format!("{k:02x?}")))?;
            f(g, id, Cursor::decode(v)?);
            it.next();
        }
        it.status()?;
        Ok(())
    }
}

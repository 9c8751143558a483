//! Consumer-group cursors: a group's committed offset per partition, in the `cursors`
//! column family under the scope of the stream the group reads (see `keys`), so a stream's
//! cursors are deleted with it and a group's cursors are one prefix scan.

use rocksdb::{ReadOptions, WriteBatch};

use crate::db::write_options;
use crate::error::{Error, Result};
use crate::keys::{self, CursorScope, PartitionId, cf};
use crate::state::Store;
use crate::types::Durability;
use crate::values::Cursor;

impl Store {
    /// Stores a group's cursors (durably, in one write).
    pub fn commit_cursors(
        &self,
        scope: &CursorScope,
        group: &str,
        cursors: &[(PartitionId, u64)],
        now_ms: i64,
    ) -> Result<()> {
        let mut wb = WriteBatch::default();
        for &(id, offset) in cursors {
            let c = Cursor {
                offset,
                commit_ms: now_ms,
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

    /// Each group's lag in `scope`, for the metrics endpoint: per cursor, the records from
    /// it (or from the log start, when that is above it) to the high-water mark, summed per
    /// group, in group order. Cursors of dropped partitions count for nothing. One prefix
    /// scan, and per cursor only in-memory figures (with `expire_before_ms`, the cached
    /// expired head of `read`).
    pub fn group_lags(
        &self,
        scope: &CursorScope,
        expire_before_ms: Option<i64>,
    ) -> Result<Vec<(String, u64)>> {
        let mut out: Vec<(String, u64)> = Vec::new();
        let mut failed = None;
        self.scan_cursors(scope, None, |g, id, c| {
            if failed.is_some() {
                return;
            }
            let lag = match self.partition(id) {
                Ok(p) => {
                    let hwm = *p.hwm.borrow();
                    match self.visible_start(id, &p, hwm, expire_before_ms) {
                        Ok(start) => hwm.saturating_sub(c.offset.max(start)),
                        Err(e) => return failed = Some(e),
                    }
                }
                Err(Error::UnknownPartition(_)) => 0,
                Err(e) => return failed = Some(e),
            };
            match out.last_mut() {
                Some((last, sum)) if last == g => *sum += lag,
                _ => out.push((g.to_owned(), lag)),
            }
        })?;
        match failed {
            Some(e) => Err(e),
            None => Ok(out),
        }
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

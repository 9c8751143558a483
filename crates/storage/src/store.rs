//! The store's API: opening a data directory, the namespace catalog, reads, time seeks,
//! partition figures, retention's purges and the space they free. The handle's state is in
//! `state.rs`; appends (`append.rs`), idempotent producers, replication, key compaction,
//! cursors, checkpoints and engine figures each add their methods in their own module.
//! All calls block on disk; async callers use `spawn_blocking`, except appends, which
//! [`Store::submit`] hands to the appender thread.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rocksdb::{DB, ReadOptions, WriteBatch, WriteOptions};
use tokio::sync::watch;
use uuid::Uuid;

use crate::db::{get, partition_range, write_options};
use crate::error::{Error, Result};
use crate::keys::{self, PartitionId, cf};
use crate::options::{StoreOptions, column_families, db_options};
use crate::state::{Partition, Store};
use crate::timeindex::{self, TimeLookup};
use crate::types::{
    ClusterIdentity, Durability, PartitionStats, Purged, ReadResult, StoredBatch, framed_len,
};
use crate::values::{BatchSummary, PartitionState, decode_u64};

/// The on-disk format this build reads and writes.
const FORMAT_VERSION: u32 = 1;

/// Namespace rows and partition lifecycle changes committed in one atomic write.
#[derive(Debug, Default)]
pub struct CatalogTx {
    puts: Vec<(Vec<u8>, Vec<u8>)>,
    deletes: Vec<Vec<u8>>,
    create: Vec<PartitionId>,
    drop: Vec<PartitionId>,
    drop_cursors: Vec<keys::CursorScope>,
}

impl CatalogTx {
    pub fn put(&mut self, key: &[u8], value: Vec<u8>) {
        self.puts.push((key.to_vec(), value));
    }

    pub fn delete(&mut self, key: &[u8]) {
        self.deletes.push(key.to_vec());
    }

    /// Creates an empty partition with an id from [`Store::reserve_partition_ids`].
    pub fn create_partition(&mut self, id: PartitionId) {
        self.create.push(id);
    }

    /// Removes a partition and every batch in it.
    pub fn drop_partition(&mut self, id: PartitionId) {
        self.drop.push(id);
    }

    /// Removes every cursor of a scope (a deleted stream's groups).
    pub fn drop_cursor_scope(&mut self, scope: keys::CursorScope) {
        self.drop_cursors.push(scope);
    }
}

impl Store {
    /// Opens the store at `path` (a directory RocksDB owns), creating it if absent.
    /// Refuses a directory that holds something other than a Tributary store.
    pub fn open(path: &Path, options: &StoreOptions) -> Result<Store> {
        let fresh = check_directory(path)?;
        let opts = db_options(options);
        if !fresh {
            let existing = DB::list_cf(&opts, path).map_err(|e| Error::at_open(path, e))?;
            if let Some(missing) = cf::ALL.iter().find(|c| !existing.iter().any(|e| e == *c)) {
                return Err(Error::ForeignDataDir {
                    path: path.to_owned(),
                    reason: format!(
                        "a RocksDB database without the `{missing}` column family (another \
                         program's, or a damaged Tributary store)"
                    ),
                });
            }
        }
        let db = DB::open_cf_descriptors(&opts, path, column_families(options))
            .map_err(|e| Error::at_open(path, e))?;
        let identity = load_or_create_identity(&db, path)?;
        let next_partition_id = match get(&db, cf::META, keys::META_NEXT_PARTITION_ID)? {
            Some(v) => decode_u64("partition id allocator", &v)?,
            None => 1,
        };
        let next_producer_id = match get(&db, cf::META, keys::META_NEXT_PRODUCER_ID)? {
            Some(v) => decode_u64("producer id allocator", &v)?,
            None => 1,
        };
        Ok(Store::new(
            db,
            opts,
            path.to_owned(),
            identity,
            next_partition_id,
            next_producer_id,
        ))
    }

    pub fn identity(&self) -> &ClusterIdentity {
        &self.identity
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    // ---- catalog -------------------------------------------------------------------

    pub fn catalog_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        get(&self.db, cf::META, &keys::catalog(key))
    }

    /// Catalog rows whose key starts with `prefix`, in key order, keys without the
    /// catalog prefix; at most `limit` rows.
    pub fn catalog_scan(&self, prefix: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let meta = self.cf(cf::META);
        let start = keys::catalog(prefix);
        let mut ro = ReadOptions::default();
        if let Some(end) = keys::prefix_end(&start) {
            ro.set_iterate_upper_bound(end);
        }
        let mut it = self.db.raw_iterator_cf_opt(meta, ro);
        it.seek(&start);
        let mut rows = Vec::new();
        while it.valid() && rows.len() < limit {
            let (Some(k), Some(v)) = (it.key(), it.value()) else {
                break;
            };
            let Some(k) = keys::catalog_suffix(k) else {
                break;
            };
            rows.push((k.to_vec(), v.to_vec()));
            it.next();
        }
        it.status()?;
        Ok(rows)
    }

    /// Reserves `n` fresh partition ids for a [`CatalogTx`]. Ids of a transaction that is
    /// never committed are simply never used.
    pub fn reserve_partition_ids(&self, n: usize) -> Vec<PartitionId> {
        let mut next = self.next_partition_id.lock();
        let ids = (*next..*next + n as u64).collect();
        *next += n as u64;
        ids
    }

    /// Commits namespace rows and partition creations/drops atomically and durably.
    pub fn commit(&self, tx: CatalogTx) -> Result<()> {
        let (meta, log, index) = (self.cf(cf::META), self.cf(cf::LOG), self.cf(cf::INDEX));
        let mut wb = WriteBatch::default();
        for (k, v) in &tx.puts {
            wb.put_cf(meta, keys::catalog(k), v);
        }
        for k in &tx.deletes {
            wb.delete_cf(meta, keys::catalog(k));
        }
        if let Some(&max) = tx.create.iter().max() {
            let next = *self.next_partition_id.lock();
            debug_assert!(max < next, "partition id {max} was not reserved");
            wb.put_cf(
                meta,
                keys::META_NEXT_PARTITION_ID,
                next.max(max + 1).to_be_bytes(),
            );
        }
        for &id in &tx.create {
            wb.put_cf(
                meta,
                keys::partition_state(id),
                PartitionState::default().encode(),
            );
        }
        // Appenders hold a partition's slot lock; take the dropped ones in id order so a
        // concurrent append either lands before the drop or sees `dropped`.
        let mut dropped: Vec<(PartitionId, Arc<Partition>)> = Vec::new();
        let mut drop_ids = tx.drop.clone();
        drop_ids.sort_unstable();
        drop_ids.dedup();
        for &id in &drop_ids {
            match self.partition(id) {
                Ok(p) => dropped.push((id, p)),
                Err(Error::UnknownPartition(_)) => continue,
                Err(e) => return Err(e),
            }
            let (start, end) = partition_range(id);
            wb.delete_range_cf(log, &start, &end);
            wb.delete_range_cf(index, &start, &end);
            wb.delete_range_cf(self.cf(cf::PRODUCERS), &start, &end);
            let marks = keys::watermark_prefix(id);
            let marks_end = keys::prefix_end(&marks).expect("0x01 prefix");
            wb.delete_range_cf(self.cf(cf::REPL), &marks[..], &marks_end[..]);
            wb.delete_cf(meta, keys::partition_state(id));
        }
        for scope in &tx.drop_cursors {
            let start = keys::cursor_prefix(scope, None);
            let end = keys::prefix_end(&start).expect("a scope is not all 0xFF");
            wb.delete_range_cf(self.cf(cf::CURSORS), start, end);
        }
        let mut slots: Vec<_> = dropped.iter().map(|(_, p)| p.slot.lock()).collect();
        self.db.write_opt(wb, &write_options(Durability::Sync))?;
        for slot in &mut slots {
            slot.dropped = true;
        }
        drop(slots);
        if !dropped.is_empty() {
            self.forget_partitions(dropped.iter().map(|(id, _)| *id));
        }
        Ok(())
    }

    // ---- reads -------------------------------------------------------------------

    /// Completes after the next append to any partition; `enable` it before looking at
    /// the partitions so no append in between is missed.
    pub fn appended(&self) -> tokio::sync::futures::Notified<'_> {
        self.appends.notified()
    }

    /// Reads whole batches from the one holding `offset` (or, where key compaction left a
    /// gap, the first one after it) while their total stays within `max_bytes`; a first
    /// batch larger than the budget comes back alone, so a reader always progresses. Each
    /// batch counts with the bytes that frame it as a length-delimited field
    /// ([`framed_len`]), as every reader sends it, so the framed batches fit the budget.
    ///
    /// With `expire_before_ms`, the batches of the log's head whose records are all older
    /// are treated as gone: the log starts after them even before a purge removes them.
    pub fn read(
        &self,
        id: PartitionId,
        offset: u64,
        max_bytes: usize,
        expire_before_ms: Option<i64>,
    ) -> Result<ReadResult> {
        let p = self.partition(id)?;
        let high_watermark = *p.hwm.borrow();
        let log_start = self.visible_start(id, &p, high_watermark, expire_before_ms)?;
        if offset < log_start || offset > high_watermark {
            return Err(Error::OffsetOutOfRange {
                offset,
                log_start,
                high_watermark,
            });
        }
        let mut result = ReadResult {
            batches: Vec::new(),
            high_watermark,
            log_start,
            next_offset: high_watermark,
        };
        if offset == high_watermark {
            return Ok(result);
        }
        let first = self.batch_holding(id, offset)?.unwrap_or(offset);
        let (start, end) = partition_range(id);
        let mut ro = ReadOptions::default();
        ro.set_iterate_lower_bound(start);
        ro.set_iterate_upper_bound(end);
        let mut it = self.db.raw_iterator_cf_opt(self.cf(cf::LOG), ro);
        it.seek(keys::log(id, first));
        let mut total = 0usize;
        while it.valid() {
            let (Some(k), Some(v)) = (it.key(), it.value()) else {
                break;
            };
            let Some((pid, base)) = keys::decode_log(k) else {
                return Err(Error::corrupt("log key", format!("{k:02x?}")));
            };
            if pid != id || base >= high_watermark {
                break;
            }
            let cost = framed_len(v.len());
            if !result.batches.is_empty() && total + cost > max_bytes {
                result.next_offset = base;
                break;
            }
            total += cost;
            result.batches.push(StoredBatch {
                base_offset: base,
                value: Bytes::copy_from_slice(v),
            });
            it.next();
        }
        it.status()?;
        Ok(result)
    }

    /// Base offset of the batch holding `offset`, from the index; `None` when no batch
    /// holds it (a gap key compaction left, or the high-water mark). Batches are only ever
    /// removed or re-stored at the offsets of their surviving records, so a log read that
    /// seeks here, even in a newer view, skips no record at or after `offset`.
    fn batch_holding(&self, id: PartitionId, offset: u64) -> Result<Option<u64>> {
        let (start, end) = partition_range(id);
        let mut ro = ReadOptions::default();
        ro.set_iterate_lower_bound(start);
        ro.set_iterate_upper_bound(end);
        let mut it = self.db.raw_iterator_cf_opt(self.cf(cf::INDEX), ro);
        it.seek_for_prev(keys::index_batch(id, offset));
        let found = match (it.valid(), it.key(), it.value()) {
            (true, Some(k), Some(v)) => match keys::decode_index_batch(k) {
                Some((_, base)) => {
                    let s = BatchSummary::decode(v)?;
                    (base + u64::from(s.record_count) > offset).then_some(base)
                }
                None => None,
            },
            _ => None,
        };
        it.status()?;
        Ok(found)
    }

    /// A receiver of the partition's committed high-water mark, for long-polls. It reports
    /// closed when the partition is dropped.
    pub fn watch(&self, id: PartitionId) -> Result<watch::Receiver<u64>> {
        Ok(self.partition(id)?.hwm.subscribe())
    }

    /// The first batch of partition `id` holding a record with timestamp at or after
    /// `timestamp_ms` (by batch maximum), found through the sparse time index
    /// (`timeindex.rs`).
    pub fn seek_time(
        &self,
        id: PartitionId,
        timestamp_ms: i64,
        log_start: u64,
    ) -> Result<TimeLookup> {
        let p = self.partition(id)?;
        let high_watermark = *p.hwm.borrow();
        timeindex::seek(&self.db, id, timestamp_ms, log_start, high_watermark)
    }

    /// Live figures; with `expire_before_ms`, expired records no longer count (see `read`).
    pub fn partition_stats(
        &self,
        id: PartitionId,
        expire_before_ms: Option<i64>,
    ) -> Result<PartitionStats> {
        let p = self.partition(id)?;
        let mut state = p.slot.lock().state;
        let (start, expired) =
            self.visible_start_counted(id, &p, state.next_offset, expire_before_ms)?;
        state.records -= expired.min(state.records);
        state.log_start = start;
        let (start, end) = partition_range(id);
        let mut ro = ReadOptions::default();
        ro.set_iterate_lower_bound(start);
        ro.set_iterate_upper_bound(end);
        let mut it = self.db.raw_iterator_cf_opt(self.cf(cf::INDEX), ro);
        let append_time = |it: &mut rocksdb::DBRawIterator<'_>| -> Result<Option<i64>> {
            match (it.valid(), it.key(), it.value()) {
                (true, Some(k), Some(v)) if keys::decode_index_batch(k).is_some() => {
                    Ok(Some(BatchSummary::decode(v)?.append_time_ms))
                }
                _ => Ok(None),
            }
        };
        it.seek(keys::index_batch(id, state.log_start));
        let first_append_ms = append_time(&mut it)?;
        it.seek_for_prev(keys::index_batch(id, u64::MAX));
        let last_append_ms = append_time(&mut it)?;
        it.status()?;
        Ok(PartitionStats {
            log_start: state.log_start,
            // Not the slot's next offset: a `sync` append may be written and not yet durable.
            high_watermark: *p.hwm.borrow(),
            records: state.records,
            bytes: state.bytes,
            purged_records: state.purged_records,
            purged_bytes: state.purged_bytes,
            first_append_ms,
            last_append_ms,
        })
    }

    // ---- retention and disk space -----------------------------------------------------

    /// Removes every batch below `new_start` with one range delete per column family, and
    /// moves the log start there. No batch may straddle `new_start`: it is a batch's end
    /// (e.g. from an expiry), or lies in a gap key compaction left.
    pub fn purge_before(&self, id: PartitionId, new_start: u64) -> Result<Purged> {
        let p = self.partition(id)?;
        let mut slot = p.slot.lock();
        if slot.dropped {
            return Err(Error::UnknownPartition(id));
        }
        let old = slot.state;
        if new_start <= old.log_start {
            return Ok(Purged::default());
        }
        let hwm = *p.hwm.borrow();
        if new_start > hwm {
            return Err(Error::OffsetOutOfRange {
                offset: new_start,
                log_start: old.log_start,
                high_watermark: hwm,
            });
        }
        // What goes: the summaries of the purged batches (small rows; payloads stay unread).
        let (start, _) = partition_range(id);
        let mut ro = ReadOptions::default();
        ro.set_iterate_lower_bound(start);
        ro.set_iterate_upper_bound(keys::index_batch(id, new_start).to_vec());
        let mut it = self.db.raw_iterator_cf_opt(self.cf(cf::INDEX), ro);
        it.seek(keys::index_batch(id, old.log_start));
        let mut purged = Purged::default();
        let mut end = old.log_start;
        // Summing counts would not find the end: compaction leaves gaps between batches.
        while it.valid() {
            let (Some(k), Some(v)) = (it.key(), it.value()) else {
                break;
            };
            let Some((_, base)) = keys::decode_index_batch(k) else {
                break;
            };
            let s = BatchSummary::decode(v)?;
            purged.records += u64::from(s.record_count);
            purged.bytes += u64::from(s.bytes);
            end = base + u64::from(s.record_count);
            it.next();
        }
        it.status()?;
        if end > new_start {
            return Err(Error::corrupt(
                "purge",
                format!("{new_start} splits the batch ending at {end}"),
            ));
        }
        let state = PartitionState {
            log_start: new_start,
            records: old.records - purged.records.min(old.records),
            bytes: old.bytes - purged.bytes.min(old.bytes),
            purged_records: old.purged_records + purged.records,
            purged_bytes: old.purged_bytes + purged.bytes,
            ..old
        };
        let mut wb = WriteBatch::default();
        wb.delete_range_cf(self.cf(cf::LOG), keys::log(id, 0), keys::log(id, new_start));
        wb.delete_range_cf(
            self.cf(cf::INDEX),
            keys::index_batch(id, 0),
            keys::index_batch(id, new_start),
        );
        for k in timeindex::entries_below(&self.db, id, new_start)? {
            wb.delete_cf(self.cf(cf::INDEX), k);
        }
        wb.put_cf(self.cf(cf::META), keys::partition_state(id), state.encode());
        self.db
            .write_opt(wb, &write_options(Durability::Buffered))?;
        slot.state = state;
        p.log_start.store(new_start, Ordering::Release);
        Ok(purged)
    }

    /// The first batch boundary at which the partition holds at most `max_bytes`: where a
    /// size cap puts the log start (the oldest batches go first; the newest batch always
    /// stays, even when alone it is larger than the cap).
    pub fn size_capped_start(&self, id: PartitionId, max_bytes: u64) -> Result<u64> {
        let p = self.partition(id)?;
        let state = p.slot.lock().state;
        if state.bytes <= max_bytes {
            return Ok(state.log_start);
        }
        let (start, end) = partition_range(id);
        let mut ro = ReadOptions::default();
        ro.set_iterate_lower_bound(start);
        ro.set_iterate_upper_bound(end);
        let mut it = self.db.raw_iterator_cf_opt(self.cf(cf::INDEX), ro);
        it.seek(keys::index_batch(id, state.log_start));
        let (mut left, mut pos) = (state.bytes, state.log_start);
        while it.valid() && left > max_bytes {
            let (Some(k), Some(v)) = (it.key(), it.value()) else {
                break;
            };
            let Some((_, base)) = keys::decode_index_batch(k) else {
                break;
            };
            let s = BatchSummary::decode(v)?;
            let next = base + u64::from(s.record_count);
            if next >= state.next_offset {
                break; // keep the newest batch
            }
            left -= u64::from(s.bytes).min(left);
            pos = next;
            it.next();
        }
        it.status()?;
        Ok(pos)
    }

    /// The first offset readers see under `expire_before_ms` (see `read`).
    pub fn expired_start(&self, id: PartitionId, expire_before_ms: i64) -> Result<u64> {
        let p = self.partition(id)?;
        let hwm = *p.hwm.borrow();
        self.visible_start(id, &p, hwm, Some(expire_before_ms))
    }

    /// Reclaims the disk space of what purges and key compaction removed: `(partition,
    /// below)` names each partition's changed range. Every memtable is flushed first, once
    /// for all of them: a write-ahead log file, which holds the removed payloads too, is
    /// deleted only once every column family has flushed what it logged (measured: without
    /// this, purging 128 MiB left 129 MiB of WAL on disk, up to `max_total_wal_size`), and
    /// a flush drops what was removed while still in the memtable. Then each range is
    /// compacted, which drops the removed keys; blob files none of them references go.
    pub fn compact_purged(&self, ranges: &[(PartitionId, u64)]) -> Result<()> {
        if ranges.is_empty() {
            return Ok(());
        }
        let all: Vec<_> = cf::ALL.iter().map(|name| self.cf(name)).collect();
        self.db
            .flush_cfs_opt(&all, &rocksdb::FlushOptions::default())?;
        for &(id, below) in ranges {
            self.db.compact_range_cf(
                self.cf(cf::LOG),
                Some(keys::log(id, 0)),
                Some(keys::log(id, below)),
            );
            self.db.compact_range_cf(
                self.cf(cf::INDEX),
                Some(keys::index_batch(id, 0)),
                Some(keys::index_batch(id, below)),
            );
        }
        Ok(())
    }

    /// Waits until RocksDB has no flush or compaction running or queued; each job deletes
    /// the files it made obsolete before it counts as done. `compact_purged` can return
    /// while an automatic compaction that took its range first is still deleting blob
    /// files (a few hundred MiB take ~0.2 s): measuring tools and tests call this before
    /// they read the disk footprint. Under steady writes it may not return.
    pub fn wait_for_background_work(&self) -> Result<()> {
        self.db
            .wait_for_compact(&rocksdb::WaitForCompactOptions::default())?;
        Ok(())
    }

    /// Turns BlobDB's garbage collection in the log's compactions on or off; it starts off.
    /// Retention frees a blob file once every batch in it is gone, which is all an
    /// append-only log needs. Key compaction leaves blob files that hold a few surviving
    /// batches among removed ones; collection moves those survivors (from the oldest
    /// quarter of blob files, as compactions pass over their keys) so the files can go. It
    /// rewrites every live payload it meets, so the namespace turns it on only while a
    /// stream is key-compacted.
    pub fn set_blob_gc(&self, on: bool) -> Result<()> {
        let mut current = self.blob_gc.lock();
        if *current != on {
            let value = if on { "true" } else { "false" };
            self.db.set_options_cf(
                self.cf(cf::LOG),
                &[("enable_blob_garbage_collection", value)],
            )?;
            *current = on;
            tracing::info!(on, "blob garbage collection");
        }
        Ok(())
    }

    /// Whether BlobDB's garbage collection is on ([`Store::set_blob_gc`]).
    pub fn blob_gc(&self) -> bool {
        *self.blob_gc.lock()
    }

    /// Makes buffered appends durable (fsyncs the write-ahead log).
    pub fn sync_wal(&self) -> Result<()> {
        self.db.flush_wal(true)?;
        Ok(())
    }
}

/// True when `path` is absent or empty (a new store); an error when it holds something
/// that is not a RocksDB database.
fn check_directory(path: &Path) -> Result<bool> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    match std::fs::read_dir(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(path).map_err(io)?;
            Ok(true)
        }
        Err(e) => Err(io(e)),
        Ok(mut entries) => {
            if entries.next().is_none() {
                return Ok(true);
            }
            if !path.join("CURRENT").exists() {
                return Err(Error::ForeignDataDir {
                    path: path.to_owned(),
                    reason: "the directory is not empty and holds no RocksDB database".into(),
                });
            }
            Ok(false)
        }
    }
}

/// Loads the directory's identity, or makes one for a brand-new store, and gives it a new
/// incarnation, synced before the store is handed out (so before anything is appended).
fn load_or_create_identity(db: &DB, path: &Path) -> Result<ClusterIdentity> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut id = match get(db, cf::META, keys::META_IDENTITY)? {
        Some(v) => {
            let id: ClusterIdentity = serde_json::from_slice(&v)
                .map_err(|e| Error::corrupt("cluster identity", e.to_string()))?;
            if id.format != FORMAT_VERSION {
                return Err(Error::ForeignDataDir {
                    path: path.to_owned(),
                    reason: format!(
                        "on-disk format {} (this build reads {FORMAT_VERSION})",
                        id.format
                    ),
                });
            }
            id
        }
        None => new_identity(db, path, now.as_millis() as i64)?,
    };
    id.previous_incarnation = id.incarnation;
    id.incarnation = next_incarnation(id.incarnation, Uuid::new_v4().as_u128() as u32);
    let mut wo = WriteOptions::default();
    wo.set_sync(true);
    let mut wb = WriteBatch::default();
    wb.put_cf(
        db.cf_handle(cf::META)
            .expect("column families are created at open"),
        keys::META_IDENTITY,
        serde_json::to_vec(&id).expect("serializable"),
    );
    db.write_opt(wb, &wo)?;
    Ok(id)
}

/// The incarnation of an open that follows one with `stored`, from `random` bits: never
/// 0 (data from before incarnations) and never `stored`. Not a count: a copy of the
/// directory (a checkpoint, a cold copy) carries an older `stored`, so counting would hand
/// the copy, when started, a number the original already used after the copy was made;
/// nor the clock, which ties two starts in one second and may go back. A random number
/// meets one of a cluster's n earlier incarnations with probability n / 2^32 (design
/// §6.3).
pub(crate) fn next_incarnation(stored: u32, random: u32) -> u32 {
    match random.max(1) {
        n if n == stored => stored.checked_add(1).unwrap_or(1),
        n => n,
    }
}

/// A new identity for a brand-new, empty store; refused for one that holds anything.
fn new_identity(db: &DB, path: &Path, now_ms: i64) -> Result<ClusterIdentity> {
    let meta = db
        .cf_handle(cf::META)
        .expect("column families are created at open");
    let mut it = db.raw_iterator_cf(meta);
    it.seek_to_first();
    if it.valid() {
        return Err(Error::ForeignDataDir {
            path: path.to_owned(),
            reason: "metadata without a cluster identity".into(),
        });
    }
    it.status()?;
    Ok(ClusterIdentity {
        format: FORMAT_VERSION,
        cluster_id: Uuid::new_v4(),
        created_ms: now_ms,
        incarnation: 0,
        previous_incarnation: 0,
    })
}

//! The store: one RocksDB instance holding every partition's log, plus the namespace
//! catalog as opaque rows. All calls block on disk; async callers use `spawn_blocking`,
//! except appends, which [`Store::submit`] hands to the appender thread (`append.rs`).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use rocksdb::{ColumnFamily, DB, Options, ReadOptions, WriteBatch, WriteOptions};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::keys::{self, PartitionId, cf};
use crate::options::{StoreOptions, column_families, db_options};
use crate::timeindex::TimeTail;
use crate::values::{BatchSummary, PartitionState, ProducedBatch, ProducerState, decode_u64};

/// The on-disk format this build reads and writes.
const FORMAT_VERSION: u32 = 1;

/// The largest stored batch (the summary keeps sizes as u32).
pub const MAX_BATCH_BYTES: usize = u32::MAX as usize;

/// When an append is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// The write-ahead log is fsynced first (concurrent writers share one fsync).
    Sync,
    /// The write-ahead log is written to the OS page cache.
    Buffered,
}

/// Who this data directory belongs to; made at first open, never changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterIdentity {
    pub format: u32,
    pub cluster_id: Uuid,
    pub created_ms: i64,
}

/// A batch ready to append, built by the caller once it knows its base offset.
#[derive(Debug)]
pub struct NewBatch {
    /// The bytes to store and serve back unchanged.
    pub value: Vec<u8>,
    pub record_count: u32,
    pub append_time_ms: i64,
    pub max_timestamp_ms: i64,
}

/// What an append assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub base_offset: u64,
    pub record_count: u32,
    pub append_time_ms: i64,
    /// Size of the stored batch (0 for a duplicate).
    pub bytes: u64,
    /// The batch was a producer's retry of one already appended: nothing was written, and
    /// the offsets are the original ones.
    pub duplicate: bool,
}

/// Conditions on one partition's append, checked under its append lock before anything is
/// written; a failed check writes nothing to any partition of the append.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppendCheck {
    /// Conditional append: the partition's high-water mark must be exactly this.
    pub expect_next_offset: Option<u64>,
    /// Idempotent append: the producer and the sequence of the batch's first record.
    pub producer: Option<ProducerSeq>,
}

/// An idempotent producer's claim on a batch: records `sequence..sequence + record_count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerSeq {
    pub id: u64,
    pub epoch: u32,
    pub sequence: u64,
    pub record_count: u32,
}

/// One stored batch as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBatch {
    pub base_offset: u64,
    pub value: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadResult {
    /// Whole batches in offset order; the first holds the requested offset, or is the
    /// next one where key compaction left a gap.
    pub batches: Vec<StoredBatch>,
    pub high_watermark: u64,
    pub log_start: u64,
    /// Where the next read continues: the base of the batch after the last one returned
    /// (the high-water mark when none is stored yet).
    pub next_offset: u64,
}

/// Live figures of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionStats {
    pub log_start: u64,
    pub high_watermark: u64,
    pub records: u64,
    pub bytes: u64,
    /// Records and bytes retention has removed.
    pub purged_records: u64,
    pub purged_bytes: u64,
    pub first_append_ms: Option<i64>,
    pub last_append_ms: Option<i64>,
}

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

/// In-memory handle of one partition. Appends serialize on `slot`; readers use the atomics
/// and never wait for a writer.
pub(crate) struct Partition {
    /// In an `Arc` so the appender can hold it across a group (`append.rs`).
    pub(crate) slot: Arc<Mutex<Slot>>,
    /// Committed high-water mark; long-polling readers wait on it.
    pub(crate) hwm: watch::Sender<u64>,
    pub(crate) log_start: AtomicU64,
    /// How far the expired prefix reaches, for read-time expiry (see `visible_start`).
    pub(crate) expiry: Mutex<Expiry>,
    /// Key compaction's progress; held for a whole pass, so passes never overlap.
    pub(crate) cleaner: Mutex<crate::compaction::Cleaner>,
}

/// The expired prefix found so far, counted from log start `from`: everything below
/// `until` (`records` records) is older than the last cutoff checked, and the batch at
/// `until` has max timestamp `head_ts` (when known). A cutoff only moves forward, so the
/// scan resumes where it stopped.
#[derive(Default)]
pub(crate) struct Expiry {
    from: u64,
    until: u64,
    head_ts: Option<i64>,
    records: u64,
}

impl Expiry {
    /// Forgets what was found, e.g. when key compaction removed records below `until`.
    pub(crate) fn forget(&mut self) {
        self.from = u64::MAX;
    }
}

/// What a purge removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub records: u64,
    pub bytes: u64,
}

pub(crate) struct Slot {
    pub(crate) state: PartitionState,
    pub(crate) dropped: bool,
    /// The time index's running maximum and how far the last entry is behind.
    pub(crate) time: TimeTail,
    /// Idempotent producers' states read or written so far (the rest stay on disk).
    pub(crate) producers: HashMap<u64, ProducerState>,
    /// Replication watermarks read or written so far, by origin (see `replication.rs`).
    pub(crate) origins: HashMap<keys::ClusterId, u64>,
}

pub struct Store {
    pub(crate) db: DB,
    /// The options the database was opened with; they hold its statistics (`stats.rs`).
    db_options: Options,
    path: PathBuf,
    identity: ClusterIdentity,
    partitions: RwLock<HashMap<PartitionId, Arc<Partition>>>,
    /// Partitions found empty and not loaded (see [`Store::may_hold_records`]); taken out
    /// when loaded or dropped. Locked after `partitions` where both are.
    pub(crate) empty_unloaded: Mutex<HashSet<PartitionId>>,
    /// Next id to hand out; persisted by the commit that uses it.
    next_partition_id: Mutex<u64>,
    next_producer_id: Mutex<u64>,
    /// Group commit of `sync` writes: the write-ahead log is durable up to this sequence
    /// number. The lock is held by the one thread fsyncing (see [`Store::sync_through`]);
    /// `synced_hint` lets the others see without waiting for it that they are covered.
    pub(crate) synced: Mutex<u64>,
    synced_hint: AtomicU64,
    /// Woken by every append, for readers following many partitions at once.
    appends: tokio::sync::Notify,
    /// The appender thread's queue, started by the first [`Store::submit`].
    pub(crate) appender: std::sync::OnceLock<std::sync::mpsc::Sender<crate::append::Job>>,
    /// Whether BlobDB's garbage collection runs in the log's compactions (see
    /// [`Store::set_blob_gc`]); the lock orders the changes.
    blob_gc: Mutex<bool>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("identity", &self.identity)
            .finish()
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
        Ok(Store {
            db,
            db_options: opts,
            path: path.to_owned(),
            identity,
            partitions: RwLock::new(HashMap::new()),
            empty_unloaded: Mutex::default(),
            next_partition_id: Mutex::new(next_partition_id),
            next_producer_id: Mutex::new(next_producer_id),
            synced: Mutex::new(0),
            synced_hint: AtomicU64::new(0),
            appends: tokio::sync::Notify::new(),
            appender: std::sync::OnceLock::new(),
            blob_gc: Mutex::new(false),
        })
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
            let mut map = self.partitions.write();
            let mut empty = self.empty_unloaded.lock();
            for (id, _) in &dropped {
                map.remove(id);
                empty.remove(id);
            }
        }
        Ok(())
    }

    // ---- partitions ----------------------------------------------------------------

    pub(crate) fn partition(&self, id: PartitionId) -> Result<Arc<Partition>> {
        if let Some(p) = self.partitions.read().get(&id) {
            return Ok(p.clone());
        }
        let state = self.stored_state(id)?;
        let time = self.load_time_tail(id, &state)?;
        let mut map = self.partitions.write();
        self.empty_unloaded.lock().remove(&id);
        let p = map.entry(id).or_insert_with(|| {
            Arc::new(Partition {
                slot: Arc::new(Mutex::new(Slot {
                    state,
                    dropped: false,
                    time,
                    producers: HashMap::new(),
                    origins: HashMap::new(),
                })),
                hwm: watch::Sender::new(state.next_offset),
                log_start: AtomicU64::new(state.log_start),
                expiry: Mutex::new(Expiry::default()),
                cleaner: Mutex::default(),
            })
        });
        Ok(p.clone())
    }

    /// False when partition `id` holds no record (its log starts at its high-water mark),
    /// found without loading it: the retention pass asks first, and skips such partitions.
    /// Loading one keeps its in-memory state for as long as the store is open, so a pass
    /// that loaded every partition made them most of the heap of a server with a million
    /// idle topics (docs/PERFORMANCE.md). A loaded partition answers from memory; another
    /// reads its stored state once, and if it is empty its id joins a set that later calls
    /// check instead (an append loads it, which takes it out). An append under way may be
    /// missed: retention sees it at its next pass.
    pub fn may_hold_records(&self, id: PartitionId) -> Result<bool> {
        if let Some(p) = self.partitions.read().get(&id) {
            return Ok(p.log_start.load(Ordering::Acquire) < *p.hwm.borrow());
        }
        if self.empty_unloaded.lock().contains(&id) {
            return Ok(false);
        }
        let state = self.stored_state(id)?;
        if state.log_start < state.next_offset {
            return Ok(true);
        }
        // Under the map's lock: a partition loaded since is not added (loading takes the
        // map's write lock, then this set's).
        let map = self.partitions.read();
        if !map.contains_key(&id) {
            self.empty_unloaded.lock().insert(id);
        }
        Ok(false)
    }

    /// A partition's state as last written, read from disk (not cached).
    fn stored_state(&self, id: PartitionId) -> Result<PartitionState> {
        match get(&self.db, cf::META, &keys::partition_state(id))? {
            Some(v) => Ok(PartitionState::decode(&v)?),
            None => Err(Error::UnknownPartition(id)),
        }
    }

    /// Partitions whose state is in memory (loaded by a read, an append or retention).
    pub fn loaded_partitions(&self) -> usize {
        self.partitions.read().len()
    }

    /// Appends one batch to each of `partitions` (distinct ids) atomically, on the calling
    /// thread: every batch, its summary and each partition's new state go to RocksDB in one
    /// `WriteBatch`. `build(i, base_offset)` makes the batch for `partitions[i]`; it runs
    /// under the partitions' append locks, so it should only encode. The server's appends
    /// go through [`Store::submit`] instead, which shares writes and fsyncs between
    /// concurrent appends.
    pub fn append(
        &self,
        durability: Durability,
        partitions: &[PartitionId],
        build: impl FnMut(usize, u64) -> NewBatch,
    ) -> Result<Vec<Appended>> {
        self.append_checked(durability, partitions, &[], build)
    }

    /// [`Store::append`] with conditions per partition (`checks[i]` for `partitions[i]`;
    /// missing entries check nothing). The checks run under the append locks before
    /// anything is written: a conditional append whose expected high-water mark is wrong, or
    /// an idempotent producer's sequence gap, fails and writes nothing. An idempotent retry
    /// of a batch already appended returns the original offsets, marked `duplicate`, once
    /// it is as durable as the original's answer would have been.
    pub fn append_checked(
        &self,
        durability: Durability,
        partitions: &[PartitionId],
        checks: &[AppendCheck],
        mut build: impl FnMut(usize, u64) -> NewBatch,
    ) -> Result<Vec<Appended>> {
        let appended = self.append_now(durability, partitions, checks, &mut build)?;
        self.appends.notify_waiters();
        Ok(appended)
    }

    /// Returns once the write-ahead log is durable up to sequence number `seq`. One caller
    /// at a time fsyncs, covering every write made before it started; those that waited
    /// meanwhile usually find themselves covered and return without an fsync of their own.
    pub(crate) fn sync_through(&self, seq: u64) -> Result<()> {
        if self.synced_hint.load(Ordering::Acquire) >= seq {
            return Ok(());
        }
        let mut synced = self.synced.lock();
        if *synced >= seq {
            return Ok(());
        }
        // Every write published up to `target` is in the log file before the fsync starts.
        let target = self.db.latest_sequence_number();
        self.db.flush_wal(true)?;
        *synced = target;
        self.synced_hint.store(target, Ordering::Release);
        Ok(())
    }

    /// Completes after the next append to any partition; `enable` it before looking at
    /// the partitions so no append in between is missed.
    pub fn appended(&self) -> tokio::sync::futures::Notified<'_> {
        self.appends.notified()
    }

    pub(crate) fn notify_appended(&self) {
        self.appends.notify_waiters();
    }

    /// Stages one batch stored at `base` into `wb`: its value, its summary and a time
    /// index entry when one is due. Returns the partition's state after it (the caller
    /// stages that once, after its last batch).
    pub(crate) fn stage_batch(
        &self,
        wb: &mut WriteBatch,
        id: PartitionId,
        state: &PartitionState,
        tail: &mut TimeTail,
        base: u64,
        batch: &NewBatch,
    ) -> PartitionState {
        assert!(batch.record_count > 0, "empty batches are never appended");
        assert!(
            base >= state.next_offset,
            "batches are appended above the end"
        );
        assert!(
            batch.value.len() <= MAX_BATCH_BYTES,
            "batch sizes are checked before staging"
        );
        let summary = BatchSummary {
            record_count: batch.record_count,
            bytes: batch.value.len() as u32,
            append_time_ms: batch.append_time_ms,
            max_timestamp_ms: batch.max_timestamp_ms,
        };
        wb.put_cf(self.cf(cf::LOG), keys::log(id, base), &batch.value);
        wb.put_cf(
            self.cf(cf::INDEX),
            keys::index_batch(id, base),
            summary.encode(),
        );
        if let Some(entry) = tail.advance(base, batch.max_timestamp_ms) {
            wb.put_cf(
                self.cf(cf::INDEX),
                keys::index_time(id, entry.0, entry.1),
                [],
            );
        }
        let count = u64::from(batch.record_count);
        PartitionState {
            next_offset: base + count,
            // An empty partition's first batch may start above its end (an offset-keeping
            // mirror of a log whose head is gone): the log starts there.
            log_start: if state.records == 0 && state.log_start == state.next_offset {
                base
            } else {
                state.log_start
            },
            records: state.records + count,
            bytes: state.bytes + batch.value.len() as u64,
            ..*state
        }
    }

    /// Reads whole batches from the one holding `offset` (or, where key compaction left a
    /// gap, the first one after it), until `max_bytes` is reached (always at least one batch
    /// when any exists at or after `offset`).
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
            if total >= max_bytes {
                result.next_offset = base;
                break;
            }
            total += v.len();
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

    /// The first offset readers see when records older than `expire_before_ms` are expired:
    /// the start of the first batch, from the log start, holding a record at or after it.
    pub(crate) fn visible_start(
        &self,
        id: PartitionId,
        p: &Partition,
        high_watermark: u64,
        expire_before_ms: Option<i64>,
    ) -> Result<u64> {
        Ok(self
            .visible_start_counted(id, p, high_watermark, expire_before_ms)?
            .0)
    }

    /// `visible_start`, and how many records lie expired below it.
    fn visible_start_counted(
        &self,
        id: PartitionId,
        p: &Partition,
        high_watermark: u64,
        expire_before_ms: Option<i64>,
    ) -> Result<(u64, u64)> {
        let log_start = p.log_start.load(Ordering::Acquire);
        let Some(cutoff) = expire_before_ms else {
            return Ok((log_start, 0));
        };
        let mut e = p.expiry.lock();
        if e.from != log_start || e.until < log_start {
            *e = Expiry {
                from: log_start,
                until: log_start,
                head_ts: None,
                records: 0,
            };
        }
        if e.head_ts.is_some_and(|ts| ts >= cutoff) || e.until >= high_watermark {
            return Ok((e.until, e.records));
        }
        let (start, end) = partition_range(id);
        let mut ro = ReadOptions::default();
        ro.set_iterate_lower_bound(start);
        ro.set_iterate_upper_bound(end);
        let mut it = self.db.raw_iterator_cf_opt(self.cf(cf::INDEX), ro);
        it.seek(keys::index_batch(id, e.until));
        e.head_ts = None;
        while it.valid() {
            let (Some(k), Some(v)) = (it.key(), it.value()) else {
                break;
            };
            let Some((_, base)) = keys::decode_index_batch(k) else {
                break;
            };
            if base >= high_watermark {
                break;
            }
            let s = BatchSummary::decode(v)?;
            if s.max_timestamp_ms >= cutoff {
                e.head_ts = Some(s.max_timestamp_ms);
                break;
            }
            e.until = base + u64::from(s.record_count);
            e.records += u64::from(s.record_count);
            it.next();
        }
        it.status()?;
        Ok((e.until, e.records))
    }

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
        for k in self.time_entries_below(id, new_start)? {
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

    /// A new idempotent producer id, never handed out before (persisted before it is
    /// returned).
    pub fn allocate_producer_id(&self) -> Result<u64> {
        let mut next = self.next_producer_id.lock();
        let id = *next;
        let mut wb = WriteBatch::default();
        wb.put_cf(
            self.cf(cf::META),
            keys::META_NEXT_PRODUCER_ID,
            (id + 1).to_be_bytes(),
        );
        self.db.write_opt(wb, &write_options(Durability::Sync))?;
        *next = id + 1;
        Ok(id)
    }

    /// A producer's state on a partition, from the cache or the disk (under the append lock).
    pub(crate) fn producer_state(
        &self,
        id: PartitionId,
        slot: &mut Slot,
        producer: u64,
    ) -> Result<Option<ProducerState>> {
        if let Some(s) = slot.producers.get(&producer) {
            return Ok(Some(s.clone()));
        }
        let state = get(&self.db, cf::PRODUCERS, &keys::producer(id, producer))?
            .map(|v| ProducerState::decode(&v))
            .transpose()?;
        if let Some(s) = &state {
            slot.producers.insert(producer, s.clone());
        }
        Ok(state)
    }

    /// Forgets idempotent producers whose last append is older than `before_ms`; a retry
    /// from one of them is then refused as unknown. Returns how many states were removed.
    pub fn expire_producers(&self, before_ms: i64) -> Result<u64> {
        let mut expired: Vec<(PartitionId, u64)> = Vec::new();
        let mut it = self.db.raw_iterator_cf(self.cf(cf::PRODUCERS));
        it.seek_to_first();
        while it.valid() {
            let (Some(k), Some(v)) = (it.key(), it.value()) else {
                break;
            };
            let key = keys::decode_producer(k)
                .ok_or_else(|| Error::corrupt("producer key", format!("{k:02x?}")))?;
            if ProducerState::decode(v)?.last_ms < before_ms {
                expired.push(key);
            }
            it.next();
        }
        it.status()?;
        let mut removed = 0;
        for (id, producer) in expired {
            let p = match self.partition(id) {
                Ok(p) => p,
                Err(Error::UnknownPartition(_)) => continue,
                Err(e) => return Err(e),
            };
            let mut slot = p.slot.lock();
            // Re-read under the append lock: the producer may have appended since the scan.
            let fresh = self.producer_state(id, &mut slot, producer)?;
            if fresh.is_some_and(|s| s.last_ms < before_ms) {
                let mut wb = WriteBatch::default();
                wb.delete_cf(self.cf(cf::PRODUCERS), keys::producer(id, producer));
                self.db
                    .write_opt(wb, &write_options(Durability::Buffered))?;
                slot.producers.remove(&producer);
                removed += 1;
            }
        }
        Ok(removed)
    }

    pub(crate) fn db(&self) -> &DB {
        &self.db
    }

    pub(crate) fn db_options(&self) -> &Options {
        &self.db_options
    }

    pub(crate) fn cf(&self, name: &str) -> &ColumnFamily {
        self.db
            .cf_handle(name)
            .expect("column families are created at open")
    }
}

pub(crate) enum SequenceCheck {
    /// Append: the sequence is the next one (or a new epoch starts at 0).
    Next,
    /// A retry of a batch already appended.
    Duplicate(ProducedBatch),
}

/// Kafka's rules for an idempotent producer's batch on one partition.
pub(crate) fn check_sequence(
    partition: PartitionId,
    state: Option<&ProducerState>,
    seq: ProducerSeq,
) -> Result<SequenceCheck> {
    let Some(state) = state else {
        return if seq.sequence == 0 {
            Ok(SequenceCheck::Next)
        } else {
            Err(Error::UnknownProducer {
                partition,
                producer: seq.id,
                sequence: seq.sequence,
            })
        };
    };
    if seq.epoch < state.epoch {
        return Err(Error::ProducerFenced {
            producer: seq.id,
            epoch: seq.epoch,
            current: state.epoch,
        });
    }
    let expected = if seq.epoch > state.epoch {
        0
    } else {
        state.next_seq
    };
    if seq.sequence == expected {
        return Ok(SequenceCheck::Next);
    }
    if seq.epoch == state.epoch && seq.sequence < expected {
        if let Some(b) = state.recent.iter().find(|b| b.first_seq == seq.sequence) {
            if b.record_count != seq.record_count {
                return Err(Error::SequenceMismatch {
                    producer: seq.id,
                    sequence: seq.sequence,
                    records: seq.record_count,
                    original: b.record_count,
                });
            }
            return Ok(SequenceCheck::Duplicate(*b));
        }
        return Err(Error::StaleSequence {
            producer: seq.id,
            sequence: seq.sequence,
            next: expected,
        });
    }
    Err(Error::SequenceGap {
        producer: seq.id,
        expected,
        got: seq.sequence,
    })
}

/// Refuses a batch too large to store (the summary keeps sizes as u32).
pub(crate) fn check_batch_size(batch: &NewBatch) -> Result<()> {
    if batch.value.len() > MAX_BATCH_BYTES {
        return Err(Error::BatchTooLarge {
            bytes: batch.value.len(),
            limit: MAX_BATCH_BYTES,
        });
    }
    Ok(())
}

pub(crate) fn partition_range(id: PartitionId) -> (Vec<u8>, Vec<u8>) {
    let end = match id.checked_add(1) {
        Some(next) => keys::partition_start(next).to_vec(),
        None => vec![0xFF; keys::LOG_KEY_LEN + 1],
    };
    (keys::partition_start(id).to_vec(), end)
}

/// Moves a partition's high-water mark up to `end` (never down: appends that share an fsync
/// may publish in any order).
pub(crate) fn publish_hwm(p: &Partition, end: u64) {
    p.hwm.send_if_modified(|h| {
        let higher = end > *h;
        if higher {
            *h = end;
        }
        higher
    });
}

pub(crate) fn write_options(d: Durability) -> WriteOptions {
    let mut wo = WriteOptions::default();
    wo.set_sync(d == Durability::Sync);
    wo
}

pub(crate) fn get(db: &DB, cf_name: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
    let cf = db
        .cf_handle(cf_name)
        .expect("column families are created at open");
    Ok(db.get_pinned_cf(cf, key)?.map(|v| v.to_vec()))
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

fn load_or_create_identity(db: &DB, path: &Path) -> Result<ClusterIdentity> {
    if let Some(v) = get(db, cf::META, keys::META_IDENTITY)? {
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
        return Ok(id);
    }
    // No identity: only a brand-new, empty store may be initialised.
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
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let id = ClusterIdentity {
        format: FORMAT_VERSION,
        cluster_id: Uuid::new_v4(),
        created_ms: now,
    };
    let mut wo = WriteOptions::default();
    wo.set_sync(true);
    let mut wb = WriteBatch::default();
    wb.put_cf(
        meta,
        keys::META_IDENTITY,
        serde_json::to_vec(&id).expect("serializable"),
    );
    db.write_opt(wb, &wo)?;
    Ok(id)
}

//! The store's shared state, which every feature module builds on: the [`Store`] handle's
//! fields, each partition's in-memory state and how it is loaded and cached, staging a
//! batch into a `WriteBatch`, group-committed fsyncs and high-water-mark publishing.
//! It imports no feature module; the feature modules (`append`, `producers`,
//! `replication`, `compaction`, `cursors`, `checkpoint`, `stats`) and `store` (the API
//! itself) import it.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, mpsc};

use parking_lot::{Mutex, RwLock};
use rocksdb::{ColumnFamily, DB, Options, ReadOptions, WriteBatch};
use tokio::sync::{oneshot, watch};

use crate::db::{get, partition_range};
use crate::error::{Error, Result};
use crate::keys::{self, PartitionId, cf};
use crate::timeindex::{self, TimeTail};
use crate::types::{AppendRequest, Appended, ClusterIdentity, MAX_BATCH_BYTES, NewBatch};
use crate::values::{BatchSummary, PartitionState, ProducerState};

/// In-memory handle of one partition. Appends serialize on `slot`; readers use the atomics
/// and never wait for a writer.
pub(crate) struct Partition {
    /// In an `Arc` so the appender can hold it across a group (`append.rs`).
    pub(crate) slot: Arc<Mutex<Slot>>,
    /// Committed high-water mark; long-polling readers wait on it.
    pub(crate) hwm: watch::Sender<u64>,
    pub(crate) log_start: AtomicU64,
    /// Where the log ended when this store opened (it is loaded before any append).
    pub(crate) opened_end: u64,
    /// How far the expired prefix reaches, for read-time expiry (see `visible_start`).
    pub(crate) expiry: Mutex<Expiry>,
    /// Key compaction's progress; held for a whole pass, so passes never overlap.
    pub(crate) cleaner: Mutex<Cleaner>,
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

/// A partition's key-compaction progress, in memory (see "When" in `compaction.rs`, which
/// reads and moves it).
#[derive(Debug, Default)]
pub(crate) struct Cleaner {
    /// Records below this have been compacted against each other.
    pub(crate) cleaned_until: u64,
    /// The high-water mark when the last pass that mapped all of the log started.
    pub(crate) last_hwm: Option<u64>,
    /// When the earliest tombstone a pass kept may go.
    pub(crate) tombstone_due_ms: Option<i64>,
}

/// What a partition's append lock guards.
pub(crate) struct Slot {
    pub(crate) state: PartitionState,
    pub(crate) dropped: bool,
    /// The time index's running maximum and how far the last entry is behind.
    pub(crate) time: TimeTail,
    /// Idempotent producers' states read or written so far (the rest stay on disk).
    pub(crate) producers: HashMap<u64, ProducerState>,
    /// Replication watermarks read or written so far, by origin cluster and incarnation
    /// (see `replication.rs`).
    pub(crate) origins: HashMap<(keys::ClusterId, u32), u64>,
}

/// The store: one RocksDB instance holding every partition's log, plus the namespace
/// catalog as opaque rows. Its methods are in `store.rs` and the feature modules.
pub struct Store {
    pub(crate) db: DB,
    /// The options the database was opened with; they hold its statistics (`stats.rs`).
    db_options: Options,
    pub(crate) path: PathBuf,
    pub(crate) identity: ClusterIdentity,
    partitions: RwLock<HashMap<PartitionId, Arc<Partition>>>,
    /// Partitions found empty and not loaded (see [`Store::may_hold_records`]); taken out
    /// when loaded or dropped. Locked after `partitions` where both are.
    pub(crate) empty_unloaded: Mutex<HashSet<PartitionId>>,
    /// Next id to hand out; persisted by the commit that uses it.
    pub(crate) next_partition_id: Mutex<u64>,
    pub(crate) next_producer_id: Mutex<u64>,
    /// Group commit of `sync` writes: the write-ahead log is durable up to this sequence
    /// number. The lock is held by the one thread fsyncing (see [`Store::sync_through`]);
    /// `synced_hint` lets the others see without waiting for it that they are covered.
    pub(crate) synced: Mutex<u64>,
    synced_hint: AtomicU64,
    /// Woken by every append, for readers following many partitions at once.
    pub(crate) appends: tokio::sync::Notify,
    /// The appender thread's queue, started by the first [`Store::submit`].
    pub(crate) appender: OnceLock<mpsc::Sender<Job>>,
    /// Whether BlobDB's garbage collection runs in the log's compactions (see
    /// [`Store::set_blob_gc`]); the lock orders the changes.
    pub(crate) blob_gc: Mutex<bool>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("identity", &self.identity)
            .finish()
    }
}

/// An append queued for the appender thread (`append.rs`), and where its answer goes.
pub(crate) struct Job {
    pub(crate) req: AppendRequest,
    pub(crate) reply: Reply,
}

pub(crate) type Reply = oneshot::Sender<Result<Vec<Appended>>>;

impl Store {
    /// The handle of a database just opened (see `Store::open`).
    pub(crate) fn new(
        db: DB,
        db_options: Options,
        path: PathBuf,
        identity: ClusterIdentity,
        next_partition_id: u64,
        next_producer_id: u64,
    ) -> Store {
        Store {
            db,
            db_options,
            path,
            identity,
            partitions: RwLock::new(HashMap::new()),
            empty_unloaded: Mutex::default(),
            next_partition_id: Mutex::new(next_partition_id),
            next_producer_id: Mutex::new(next_producer_id),
            synced: Mutex::new(0),
            synced_hint: AtomicU64::new(0),
            appends: tokio::sync::Notify::new(),
            appender: OnceLock::new(),
            blob_gc: Mutex::new(false),
        }
    }

    /// The handle of partition `id`, loaded from disk at first use and kept while the
    /// store is open.
    pub(crate) fn partition(&self, id: PartitionId) -> Result<Arc<Partition>> {
        if let Some(p) = self.partitions.read().get(&id) {
            return Ok(p.clone());
        }
        let state = self.stored_state(id)?;
        let time = timeindex::load_tail(&self.db, id, &state)?;
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
                opened_end: state.next_offset,
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

    /// Forgets dropped partitions (after the commit that dropped them).
    pub(crate) fn forget_partitions(&self, ids: impl Iterator<Item = PartitionId>) {
        let mut map = self.partitions.write();
        let mut empty = self.empty_unloaded.lock();
        for id in ids {
            map.remove(&id);
            empty.remove(&id);
        }
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

    /// Wakes the waiters of `Store::appended`.
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
    pub(crate) fn visible_start_counted(
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

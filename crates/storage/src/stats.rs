//! Engine figures for operators: how much disk the store takes, whether writes stall, how
//! far compaction lags, and how many bytes reach the disk per byte written. Read from
//! RocksDB properties and statistics tickers, and handed out as plain numbers so that
//! RocksDB never shows outside this crate.

use rocksdb::DB;
use rocksdb::statistics::Ticker;

use crate::keys::cf;
use crate::state::Store;

/// A snapshot of the store's engine figures. Sizes are bytes; `*_total` figures count
/// from the moment the store was opened.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreStats {
    /// SST files the current version uses (keys, and small values).
    pub live_sst_bytes: u64,
    /// All SST files on disk, including those awaiting deletion.
    pub total_sst_bytes: u64,
    /// Blob files (record batches) still referenced.
    pub live_blob_bytes: u64,
    /// All blob files on disk.
    pub total_blob_bytes: u64,
    /// Memtables: active, immutable, and flushed ones readers still pin.
    pub memtable_bytes: u64,
    /// The shared block cache's contents (index, filter and data blocks).
    pub block_cache_bytes: u64,
    /// Memory of open SST readers outside the block cache.
    pub table_readers_bytes: u64,
    /// Bytes compaction has to rewrite to bring every level within its target size.
    pub pending_compaction_bytes: u64,
    pub running_compactions: u64,
    pub running_flushes: u64,
    /// Writes are stopped outright (too many memtables or L0 files).
    pub write_stopped: bool,
    /// Non-zero while writes are being slowed down: the rate they are held to (bytes/s).
    pub delayed_write_rate: u64,
    /// Time writers spent stalled or slowed down, in microseconds.
    pub stall_micros_total: u64,
    /// Bytes handed to the store by writers (keys and values).
    pub user_bytes_written_total: u64,
    /// Bytes written to the write-ahead log.
    pub wal_bytes_written_total: u64,
    /// Bytes written by flushes: SST files and the blob files beside them.
    pub flush_bytes_written_total: u64,
    /// Bytes written by compactions (SST files, and blob files rewritten by blob GC).
    pub compaction_bytes_written_total: u64,
    /// The blob-file part of the two figures above (measured by a test: a flush's blob
    /// bytes are in `flush_bytes_written_total`).
    pub blob_bytes_written_total: u64,
}

impl StoreStats {
    /// Bytes written to disk (WAL, then SST and blob files by flushes and compactions) per
    /// byte written by users; `None` before anything was written.
    pub fn write_amplification(&self) -> Option<f64> {
        (self.user_bytes_written_total > 0).then(|| {
            let disk = self.wal_bytes_written_total
                + self.flush_bytes_written_total
                + self.compaction_bytes_written_total;
            disk as f64 / self.user_bytes_written_total as f64
        })
    }
}

impl Store {
    /// Reads the engine figures now. Cheap: property reads and counter loads, no I/O.
    pub fn stats(&self) -> StoreStats {
        let db = self.db();
        // Size properties are per column family; the others are database-wide.
        let sum = |name: &str| -> u64 {
            cf::ALL
                .iter()
                .filter_map(|c| db.cf_handle(c))
                .map(|h| {
                    db.property_int_value_cf(h, name)
                        .ok()
                        .flatten()
                        .unwrap_or(0)
                })
                .sum()
        };
        let int = |name: &str| property(db, name);
        let tick = |t: Ticker| self.db_options().get_ticker_count(t);
        StoreStats {
            live_sst_bytes: sum("rocksdb.live-sst-files-size"),
            total_sst_bytes: sum("rocksdb.total-sst-files-size"),
            live_blob_bytes: sum("rocksdb.live-blob-file-size"),
            total_blob_bytes: sum("rocksdb.total-blob-file-size"),
            memtable_bytes: sum("rocksdb.size-all-mem-tables"),
            // One cache serves our column families (not `default`, which is unused): read
            // it once, through one of them.
            block_cache_bytes: db
                .cf_handle(cf::LOG)
                .and_then(|h| {
                    db.property_int_value_cf(h, "rocksdb.block-cache-usage")
                        .ok()
                })
                .flatten()
                .unwrap_or(0),
            table_readers_bytes: sum("rocksdb.estimate-table-readers-mem"),
            pending_compaction_bytes: sum("rocksdb.estimate-pending-compaction-bytes"),
            running_compactions: int("rocksdb.num-running-compactions"),
            running_flushes: int("rocksdb.num-running-flushes"),
            write_stopped: int("rocksdb.is-write-stopped") != 0,
            delayed_write_rate: int("rocksdb.actual-delayed-write-rate"),
            stall_micros_total: tick(Ticker::StallMicros),
            user_bytes_written_total: tick(Ticker::BytesWritten),
            wal_bytes_written_total: tick(Ticker::WalFileBytes),
            flush_bytes_written_total: tick(Ticker::FlushWriteBytes),
            compaction_bytes_written_total: tick(Ticker::CompactWriteBytes),
            blob_bytes_written_total: tick(Ticker::BlobDbBlobFileBytesWritten),
        }
    }
}

fn property(db: &DB, name: &str) -> u64 {
    db.property_int_value(name).ok().flatten().unwrap_or(0)
}

//! RocksDB tuning for a log store on a small machine. Each choice is named with its reason;
//! measurements live in docs/PERFORMANCE.md.

use rocksdb::statistics::StatsLevel;
use rocksdb::{
    BlockBasedIndexType, BlockBasedOptions, Cache, ColumnFamilyDescriptor, DBCompressionType,
    Options,
};

use crate::keys::cf;

/// Knobs the server exposes; everything else is fixed here.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Memtable size of the log column family.
    pub log_write_buffer_bytes: usize,
    /// Shared block cache for metadata, index and cursor lookups.
    pub block_cache_bytes: usize,
    /// Flush threads + compaction threads.
    pub background_jobs: i32,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            log_write_buffer_bytes: 128 << 20,
            block_cache_bytes: 64 << 20,
            background_jobs: 4,
        }
    }
}

pub(crate) fn db_options(o: &StoreOptions) -> Options {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    opts.set_max_background_jobs(o.background_jobs);
    // Writers to different partitions share the WAL write and one fsync (group commit);
    // pipelining lets the next group write the WAL while this one fills memtables.
    opts.set_enable_pipelined_write(true);
    opts.set_allow_concurrent_memtable_write(true);
    opts.set_enable_write_thread_adaptive_yield(true);
    // The meta CF changes rarely; without a cap it would pin old WAL files forever.
    opts.set_max_total_wal_size(512 << 20);
    opts.set_bytes_per_sync(1 << 20);
    opts.set_wal_bytes_per_sync(0);
    // RocksDB's text log grows with every flush and compaction (retention makes some each
    // interval): roll it so it stays bounded, not just at restarts (measured: tens of KiB
    // per retention run, without end).
    opts.set_max_log_file_size(8 << 20);
    // Consumers read blob files front to back, one blob per batch, and RocksDB's iterators
    // prefetch no blob: let the kernel read ahead (RocksDB's default marks every file
    // random-access and turns that off). Point lookups still read only what they ask for:
    // the kernel reads ahead on sequential misses only.
    opts.set_advise_random_on_open(false);
    opts.set_keep_log_file_num(4);
    // Statistics for `Store::stats` (stats.rs): counters only, no histograms or timers,
    // which keeps the cost on the write path negligible.
    opts.enable_statistics();
    opts.set_statistics_level(StatsLevel::ExceptHistogramOrTimers);
    // A damaged write-ahead log is refused at open, not cut short where the damage starts
    // (the default, point-in-time recovery, would silently drop every acknowledged write
    // after it). A torn last record, from a crash in the middle of an unacknowledged
    // write, is still tolerated.
    opts.set_wal_recovery_mode(rocksdb::DBRecoveryMode::TolerateCorruptedTailRecords);
    opts
}

pub(crate) fn column_families(o: &StoreOptions) -> Vec<ColumnFamilyDescriptor> {
    let cache = Cache::new_lru_cache(o.block_cache_bytes);
    let point_lookups = |cache: &Cache| {
        let mut t = BlockBasedOptions::default();
        t.set_block_cache(cache);
        t.set_bloom_filter(10.0, false);
        t.set_cache_index_and_filter_blocks(true);
        // Filters and indexes in 4 KiB partitions under a pinned top level: a lookup
        // caches only the partitions it touches. A whole filter per SST outgrows a
        // block-cache shard (1 MiB: 64 MiB in 64 shards) once the catalog holds about a
        // million topics, and was then read from disk at every lookup (docs/PERFORMANCE.md).
        t.set_index_type(BlockBasedIndexType::TwoLevelIndexSearch);
        t.set_partition_filters(true);
        t.set_metadata_block_size(4096);
        t.set_pin_top_level_index_and_filter(true);
        t
    };
    let scans = |cache: &Cache| {
        let mut t = BlockBasedOptions::default();
        t.set_block_cache(cache);
        t
    };

    cf::ALL
        .iter()
        .map(|&name| {
            let mut opts = Options::default();
            opts.set_compression_type(DBCompressionType::Lz4);
            match name {
                cf::LOG => {
                    // Batches go to blob files once; compaction moves only the 16-byte keys.
                    opts.set_enable_blob_files(true);
                    opts.set_min_blob_size(256);
                    opts.set_blob_file_size(256 << 20);
                    // Clients may compress; recompressing payloads costs CPU for little.
                    opts.set_blob_compression_type(DBCompressionType::None);
                    opts.set_compression_type(DBCompressionType::None);
                    // Off unless the store holds key-compacted streams (`Store::set_blob_gc`):
                    // an append-only log frees whole blob files as retention removes their
                    // batches, and collection would only rewrite live payloads (measured: a
                    // fifth of the CPU of a 1 KiB produce, docs/PERFORMANCE.md).
                    opts.set_enable_blob_gc(false);
                    opts.set_write_buffer_size(o.log_write_buffer_bytes);
                    opts.set_max_write_buffer_number(4);
                    opts.set_block_based_table_factory(&scans(&cache));
                }
                cf::INDEX => {
                    opts.set_write_buffer_size(32 << 20);
                    opts.set_block_based_table_factory(&scans(&cache));
                }
                _ => {
                    opts.set_write_buffer_size(16 << 20);
                    opts.set_block_based_table_factory(&point_lookups(&cache));
                }
            }
            ColumnFamilyDescriptor::new(name, opts)
        })
        .collect()
}

//! Tests of the engine figures (`stats.rs`).

use super::{new_partition, open};
use crate::*;

#[test]
fn figures_follow_writes_and_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    // Opening wrote the cluster identity (synced WAL), nothing more.
    let before = store.stats();
    assert!(before.user_bytes_written_total < 1024, "{before:?}");
    assert!(!before.write_stopped);

    let id = new_partition(&store);
    for i in 0..64 {
        store
            .append(Durability::Buffered, &[id], |_, _| NewBatch {
                value: vec![i as u8; 64 << 10],
                record_count: 1,
                append_time_ms: 1,
                max_timestamp_ms: 1,
            })
            .unwrap();
    }
    let written = store.stats();
    assert!(written.user_bytes_written_total >= 64 * (64 << 10));
    assert!(written.wal_bytes_written_total >= 64 * (64 << 10));
    assert!(written.memtable_bytes > 0);

    // A flush moves the batches to blob files: on disk, counted once.
    let db = store.db();
    for c in crate::keys::cf::ALL {
        db.flush_cf(db.cf_handle(c).unwrap()).unwrap();
    }
    let flushed = store.stats();
    assert!(flushed.live_blob_bytes >= 64 * (64 << 10), "{flushed:?}");
    assert!(flushed.total_blob_bytes >= flushed.live_blob_bytes);
    assert!(flushed.live_sst_bytes > 0);
    assert!(flushed.blob_bytes_written_total >= 64 * (64 << 10));
    // The flush's blob files are part of its bytes, not on top of them.
    assert!(flushed.flush_bytes_written_total >= flushed.blob_bytes_written_total);
    let wa = flushed.write_amplification().unwrap();
    // The WAL, then one blob write, plus small key files: just above 2.
    assert!(
        (2.0..2.2).contains(&wa),
        "write amplification {wa}: {flushed:?}"
    );

    // Reading the flushed log goes through the block cache and the SST readers.
    let read = store.read(id, 0, usize::MAX, None).unwrap();
    assert_eq!(read.batches.len(), 64);
    let after = store.stats();
    assert!(after.block_cache_bytes > 0, "{after:?}");
    assert!(after.table_readers_bytes > 0, "{after:?}");
}

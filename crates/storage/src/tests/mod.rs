//! Storage's tests, on a real RocksDB in a temp dir: one file per module under test (the
//! pure encodings in `keys.rs` and `values.rs` keep their property tests beside them), and
//! the helpers they share.

use std::path::Path;

use crate::*;

mod append;
mod append_checks;
mod checkpoint;
mod compaction;
mod cursors;
mod replication;
mod stats;
mod store;
mod timeindex;

pub(crate) fn open(dir: &Path) -> Store {
    Store::open(&dir.join("db"), &StoreOptions::default()).unwrap()
}

pub(crate) fn new_partition(store: &Store) -> PartitionId {
    let id = store.reserve_partition_ids(1)[0];
    let mut tx = CatalogTx::default();
    tx.create_partition(id);
    store.commit(tx).unwrap();
    id
}

/// A batch of `count` records, all at time `ts`.
pub(crate) fn timed_batch(count: u32, ts: i64) -> NewBatch {
    NewBatch {
        value: ts.to_be_bytes().to_vec(),
        record_count: count,
        append_time_ms: ts,
        max_timestamp_ms: ts,
    }
}

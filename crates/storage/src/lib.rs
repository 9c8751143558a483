//! Tributary's storage layer: partitions as append-only logs of record batches in RocksDB,
//! with u64 offsets, dense as appended (key compaction later leaves gaps), plus an opaque
//! catalog for the namespace layer.
//!
//! **Boundary:** storage never sees a path, a principal or a protobuf message. It stores
//! opaque batch bytes under `(partition_id, base_offset)` and catalog rows under opaque
//! keys. RocksDB types never leave this crate.
//!
//! **Invariant:** every append is in one `WriteBatch` (with others of its group, see
//! `append.rs`) holding the batch, its summary and the partition's new high-water mark, so
//! after a crash the log and its offsets agree.

mod append;
mod checkpoint;
mod compaction;
mod cursors;
mod error;
pub mod keys;
mod options;
mod replication;
mod stats;
mod store;
mod timeindex;
pub mod values;

pub use append::AppendRequest;
pub use checkpoint::{CHECKPOINT_DB, CheckpointInfo};
pub use compaction::{CompactOptions, Compacted, DEFAULT_MAX_KEYS, KeyCodec, MIN_DIRTY_RATIO};
pub use error::{EngineError, Error, Result};
pub use keys::CursorScope;
pub use keys::PartitionId;
pub use keys::{ClusterId, LinkId};
pub use options::StoreOptions;
pub use replication::{Applied, ApplyResult, PulledBatch};
pub use stats::StoreStats;
pub use store::{
    AppendCheck, Appended, CatalogTx, ClusterIdentity, Durability, MAX_BATCH_BYTES, NewBatch,
    PartitionStats, ProducerSeq, Purged, ReadResult, Store, StoredBatch,
};
pub use timeindex::TimeLookup;
pub use values::Cursor;

#[cfg(test)]
mod compaction_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_append;
#[cfg(test)]
mod tests_groups;
#[cfg(test)]
mod tests_replication;

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
//!
//! **Modules**, bottom to top: each imports only from modules listed before it, so there
//! is no cycle.
//!
//! 1. `keys`, `error`, `values`: key layouts and column families, the error type, the
//!    encodings of storage's own values.
//! 2. `options` (RocksDB tuning) and `types` (the plain values of the API: `NewBatch`,
//!    `AppendRequest`, `Appended`, `ReadResult`, `PartitionStats`, ...).
//! 3. `db`: small RocksDB helpers (a column family's handle, a point read, write options, a
//!    partition's key range).
//! 4. `timeindex`: the sparse time index, on the database alone.
//! 5. `state`: the shared state every feature builds on: the `Store` handle's fields, each
//!    partition's in-memory state (`Partition`, `Slot`, `Expiry`, `Cleaner`), loading and
//!    caching partitions, staging a batch, group-committed fsyncs, publishing high-water
//!    marks.
//! 6. `producers`: idempotent producers (ids, sequence rules, cached state, expiry).
//! 7. The features, each adding its `impl Store` methods and importing none of the
//!    others: `append` (the appender thread, `Store::submit`), `replication`,
//!    `compaction`, `cursors`, `checkpoint`, `stats`, and `store`, the rest of the API
//!    (open, catalog, reads, time seeks, purges).

mod append;
mod checkpoint;
mod compaction;
mod cursors;
mod db;
mod error;
pub mod keys;
mod options;
mod producers;
mod replication;
mod state;
mod stats;
mod store;
mod timeindex;
mod types;
pub mod values;

pub use checkpoint::{CHECKPOINT_DB, CheckpointInfo};
pub use compaction::{CompactOptions, Compacted, DEFAULT_MAX_KEYS, KeyCodec, MIN_DIRTY_RATIO};
pub use cursors::GroupBacklog;
pub use error::{EngineError, Error, Result};
pub use keys::CursorScope;
pub use keys::PartitionId;
pub use keys::{ClusterId, LinkId};
pub use options::StoreOptions;
pub use replication::{Applied, ApplyResult, PulledBatch, UpstreamPosition};
pub use state::Store;
pub use stats::StoreStats;
pub use store::CatalogTx;
pub use timeindex::TimeLookup;
pub use types::AppendRequest;
pub use types::{
    AppendCheck, Appended, ClusterIdentity, Durability, MAX_BATCH_BYTES, NewBatch, PartitionStats,
    ProducerSeq, Purged, ReadResult, SequenceSpace, StoredBatch, framed_len,
};
pub use values::Cursor;

#[cfg(test)]
mod tests;

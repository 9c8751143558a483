//! Tributary's namespace: volumes, streams at paths inside them, topics inside streams, and
//! their attributes, over `tributary-storage`.
//!
//! **Boundary:** this crate knows paths and attributes but no gRPC; it returns domain types
//! and one `Error` enum that `tributary-api` maps to status codes. It never touches RocksDB
//! except through the store's typed API.
//!
//! The rules it applies that link no storage (names, ACL expressions, the consumer-group
//! state machine, the batch codec, the partitioner) are `tributary-core`'s.
//!
//! **Invariant:** a topic path resolves to storage partition ids through the stream's id,
//! so renaming or deleting a stream never rewrites a log.

pub mod auth;
pub mod clock;
mod compaction;
mod error;
pub mod limits;
pub mod model;
mod namespace;
pub mod scram;

pub use auth::{Caller, Credential};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Error, Result, SequenceRefusal};
pub use model::{
    Durability, LinkRow, LinkStart, Perm, Quotas, StreamAttributes, StreamAttributesPatch,
};
pub use namespace::*;
pub use tributary_storage::PartitionStats;
/// Storage's terms for pulled batches, as replication hands them to a [`ReplicaPartition`].
pub use tributary_storage::{NewBatch, PulledBatch, UpstreamPosition};

#[cfg(test)]
mod tests;

//! Pure code every door onto the namespace shares: names, ACL expressions, the
//! consumer-group state machine, the record-batch codecs (Tributary's and Kafka's), the
//! partitioner and the per-principal rate quotas.
//!
//! **Boundary:** this crate links no storage, no runtime and no transport (only the
//! generated `RecordBatch` of `tributary-proto`), so its tests build without RocksDB and the
//! gRPC door, the Kafka door and the client share one copy of each rule. Its errors are one
//! `Error` enum that the namespace turns into its own.

pub mod acl;
pub mod batch;
mod error;
pub mod groups;
pub mod kafka_batch;
pub mod kafka_group;
pub mod kafka_names;
pub mod kafka_records;
pub mod limits;
pub mod names;
pub mod partitioner;
pub mod quota;
mod timestamp;

pub use acl::{Acl, Principal};
pub use error::{Error, Result};
pub use timestamp::TimestampType;

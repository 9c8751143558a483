//! The plain values of storage's API: what an append takes and returns, what a read
//! returns, a partition's figures, the store's identity. They hold no RocksDB type and no
//! lock, so every module (and every caller) can use them.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::keys::PartitionId;

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

/// Who this data directory belongs to: made at first open, and only the incarnation
/// changes after that.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterIdentity {
    pub format: u32,
    pub cluster_id: Uuid,
    pub created_ms: i64,
    /// A new one (random, never 0) at every open, persisted before anything is appended, and
    /// stamped on every batch appended here: after a lost tail (a crash of the machine, a restore from an
    /// older copy) new records never reuse an origin (cluster, incarnation, offset) that
    /// peers already hold (design §6.3). Identities written before it existed read as 0.
    #[serde(default)]
    pub incarnation: u32,
    /// The incarnation before this one (0 when none): a position read in it is checked
    /// against where the log ended when this one opened (`Store::position_holds`).
    #[serde(default)]
    pub previous_incarnation: u32,
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

/// An append for [`Store::submit`](crate::Store::submit): one batch for each of `partitions` (distinct ids),
/// made by `build(i, base_offset)` for `partitions[i]` once its offset is known, under the
/// checks `checks[i]` (missing entries check nothing).
pub struct AppendRequest {
    pub durability: Durability,
    pub partitions: Vec<PartitionId>,
    pub checks: Vec<AppendCheck>,
    pub build: Box<dyn FnMut(usize, u64) -> NewBatch + Send>,
}

impl std::fmt::Debug for AppendRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppendRequest")
            .field("durability", &self.durability)
            .field("partitions", &self.partitions)
            .field("checks", &self.checks)
            .finish_non_exhaustive()
    }
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

/// An idempotent producer's claim on a batch: records `sequence..sequence + record_count`,
/// counted in `space`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerSeq {
    pub id: u64,
    pub epoch: u32,
    pub sequence: u64,
    pub record_count: u32,
    pub space: SequenceSpace,
}

/// How a producer numbers its records: the one difference between the doors' idempotent
/// producers (the rules are `producers.rs`'s, the state the same rows).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SequenceSpace {
    /// gRPC's: a u64 that never wraps in practice.
    #[default]
    Tributary,
    /// Kafka's: an int32 that wraps to 0 after `i32::MAX` (Kafka's `incrementSequence`).
    Kafka,
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

/// A batch of `len` bytes as a length-delimited field of a message (a one-byte tag and a
/// varint length before it): what a read counts against its budget.
pub fn framed_len(len: usize) -> usize {
    let varint = (usize::BITS - (len | 1).leading_zeros()).div_ceil(7) as usize;
    1 + varint + len
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

/// What a purge removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub records: u64,
    pub bytes: u64,
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

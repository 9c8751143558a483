//! Column-family names and every key layout, in one place.
//!
//! All integers in keys are big-endian so that RocksDB's bytewise order is numeric order: a
//! prefix scan over one partition walks it in offset order, and a range delete of
//! `[(p, 0), (p, n))` removes exactly the batches of `p` below offset `n`.

/// Column families. `default` exists (RocksDB requires it) but holds nothing.
pub mod cf {
    /// Cluster identity, id allocator, partition states, and the namespace catalog.
    pub const META: &str = "meta";
    /// Record batches, one value per appended batch (BlobDB).
    pub const LOG: &str = "log";
    /// Per-batch summaries (count, bytes, timestamps): retention and sizing never read blobs.
    pub const INDEX: &str = "index";
    /// Consumer-group cursors.
    pub const CURSORS: &str = "cursors";
    /// Replication positions and per-origin watermarks.
    pub const REPL: &str = "repl";
    /// Idempotent producer state.
    pub const PRODUCERS: &str = "producers";

    pub const ALL: [&str; 6] = [META, LOG, INDEX, CURSORS, REPL, PRODUCERS];
}

/// Partition ids are global and never reused.
pub type PartitionId = u64;

// meta CF
//
//   +------+
//   | 0x01 |                              -> cluster identity (JSON)
//   +------+
//   | 0x02 |                              -> next partition id (u64 BE)
//   +------+----------------------+
//   | 0x03 | partition_id u64 BE  |       -> partition state (see `values`)
//   +------+----------------------+
//   | 0x10 | catalog key ...      |       -> namespace row, opaque to storage
//   +------+----------------------+
pub const META_IDENTITY: &[u8] = &[0x01];
pub const META_NEXT_PARTITION_ID: &[u8] = &[0x02];
const META_PARTITION: u8 = 0x03;
const META_CATALOG: u8 = 0x10;

pub fn partition_state(id: PartitionId) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = META_PARTITION;
    k[1..].copy_from_slice(&id.to_be_bytes());
    k
}

/// A catalog key: the namespace layer's key under the catalog prefix.
pub fn catalog(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + key.len());
    k.push(META_CATALOG);
    k.extend_from_slice(key);
    k
}

/// The namespace layer's key inside a catalog key.
pub fn catalog_suffix(key: &[u8]) -> Option<&[u8]> {
    key.split_first()
        .and_then(|(&p, rest)| (p == META_CATALOG).then_some(rest))
}

/// The first key after every key that starts with `prefix`, or `None` when no such key
/// exists (the prefix is all 0xFF).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

// log CF
//
//   +----------------------+---------------------+
//   | partition_id u64 BE  | base_offset u64 BE  |  -> the stored batch (wire bytes)
//   +----------------------+---------------------+
//
// index CF
//
//   +----------------------+------+---------------------+
//   | partition_id u64 BE  | 0x01 | base_offset u64 BE  |  -> batch summary (see `values`)
//   +----------------------+------+---------------------+
//   (kind bytes other than 0x01 are free for other per-partition indexes)
pub const LOG_KEY_LEN: usize = 16;
const INDEX_BATCH: u8 = 0x01;
pub const INDEX_KEY_LEN: usize = 17;

pub fn log(id: PartitionId, base_offset: u64) -> [u8; LOG_KEY_LEN] {
    let mut k = [0u8; LOG_KEY_LEN];
    k[..8].copy_from_slice(&id.to_be_bytes());
    k[8..].copy_from_slice(&base_offset.to_be_bytes());
    k
}

/// `(partition, base_offset)` of a log key, or `None` if it is not one.
pub fn decode_log(key: &[u8]) -> Option<(PartitionId, u64)> {
    let key: &[u8; LOG_KEY_LEN] = key.try_into().ok()?;
    let (p, o) = key.split_at(8);
    Some((
        u64::from_be_bytes(p.try_into().ok()?),
        u64::from_be_bytes(o.try_into().ok()?),
    ))
}

pub fn index_batch(id: PartitionId, base_offset: u64) -> [u8; INDEX_KEY_LEN] {
    let mut k = [0u8; INDEX_KEY_LEN];
    k[..8].copy_from_slice(&id.to_be_bytes());
    k[8] = INDEX_BATCH;
    k[9..].copy_from_slice(&base_offset.to_be_bytes());
    k
}

/// `(partition, base_offset)` of a batch-summary key, or `None` if it is not one.
pub fn decode_index_batch(key: &[u8]) -> Option<(PartitionId, u64)> {
    let key: &[u8; INDEX_KEY_LEN] = key.try_into().ok()?;
    if key[8] != INDEX_BATCH {
        return None;
    }
    Some((
        u64::from_be_bytes(key[..8].try_into().ok()?),
        u64::from_be_bytes(key[9..].try_into().ok()?),
    ))
}

/// Every key of partition `id` in the log or index CF lies in `[partition_start(id),
/// partition_start(id + 1))`.
pub fn partition_start(id: PartitionId) -> [u8; 8] {
    id.to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn log_keys_round_trip(p: u64, o: u64) {
            prop_assert_eq!(decode_log(&log(p, o)), Some((p, o)));
        }

        #[test]
        fn index_keys_round_trip(p: u64, o: u64) {
            prop_assert_eq!(decode_index_batch(&index_batch(p, o)), Some((p, o)));
        }

        #[test]
        fn log_key_order_is_partition_then_offset(a: (u64, u64), b: (u64, u64)) {
            prop_assert_eq!(log(a.0, a.1).cmp(&log(b.0, b.1)), a.cmp(&b));
            prop_assert_eq!(index_batch(a.0, a.1).cmp(&index_batch(b.0, b.1)), a.cmp(&b));
        }

        #[test]
        fn partition_bounds_hold_every_key_of_the_partition(p in 0..u64::MAX, o: u64) {
            let k = log(p, o);
            prop_assert!(k.as_slice() >= partition_start(p).as_slice());
            prop_assert!(k.as_slice() < partition_start(p + 1).as_slice());
            let k = index_batch(p, o);
            prop_assert!(k.as_slice() < partition_start(p + 1).as_slice());
        }

        #[test]
        fn catalog_keys_round_trip_and_stay_in_their_range(key: Vec<u8>) {
            let k = catalog(&key);
            prop_assert_eq!(catalog_suffix(&k), Some(key.as_slice()));
            prop_assert!(k.as_slice() > partition_state(u64::MAX).as_slice());
        }

        #[test]
        fn prefix_end_bounds_the_prefix(prefix: Vec<u8>, tail: Vec<u8>) {
            let mut k = prefix.clone();
            k.extend_from_slice(&tail);
            match prefix_end(&prefix) {
                Some(end) => prop_assert!(k < end),
                None => prop_assert!(prefix.iter().all(|&b| b == 0xFF)),
            }
        }
    }

    #[test]
    fn wrong_lengths_and_kinds_are_not_keys() {
        assert_eq!(decode_log(&[0; 15]), None);
        let mut k = index_batch(1, 2);
        k[8] = 0x02;
        assert_eq!(decode_index_batch(&k), None);
        assert_eq!(catalog_suffix(&partition_state(1)), None);
    }
}

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
//   | 0x05 |                              -> next producer id (u64 BE)
//   +------+
//   | 0x10 | catalog key ...      |       -> namespace row, opaque to storage
//   +------+----------------------+
pub const META_IDENTITY: &[u8] = &[0x01];
pub const META_NEXT_PARTITION_ID: &[u8] = &[0x02];
/// Next idempotent producer id (u64 BE).
pub const META_NEXT_PRODUCER_ID: &[u8] = &[0x05];
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
//   +----------------------+------+---------------------+---------------------+
//   | partition_id u64 BE  | 0x02 | timestamp (ordered) | offset u64 BE       |  -> empty
//   +----------------------+------+---------------------+---------------------+
//   The sparse time index: the running maximum timestamp of the partition at the batch
//   starting at `offset`. Both grow with the offset, so key order is offset order.
//   (other kind bytes are free for other per-partition indexes)
pub const LOG_KEY_LEN: usize = 16;
const INDEX_BATCH: u8 = 0x01;
const INDEX_TIME: u8 = 0x02;
pub const INDEX_KEY_LEN: usize = 17;
pub const INDEX_TIME_KEY_LEN: usize = 25;

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

pub fn index_time(id: PartitionId, timestamp_ms: i64, offset: u64) -> [u8; INDEX_TIME_KEY_LEN] {
    let mut k = [0u8; INDEX_TIME_KEY_LEN];
    k[..8].copy_from_slice(&id.to_be_bytes());
    k[8] = INDEX_TIME;
    k[9..17].copy_from_slice(&ordered_i64(timestamp_ms).to_be_bytes());
    k[17..].copy_from_slice(&offset.to_be_bytes());
    k
}

/// `(partition, timestamp, offset)` of a time-index key, or `None` if it is not one.
pub fn decode_index_time(key: &[u8]) -> Option<(PartitionId, i64, u64)> {
    let key: &[u8; INDEX_TIME_KEY_LEN] = key.try_into().ok()?;
    if key[8] != INDEX_TIME {
        return None;
    }
    Some((
        u64::from_be_bytes(key[..8].try_into().ok()?),
        (u64::from_be_bytes(key[9..17].try_into().ok()?) ^ (1 << 63)) as i64,
        u64::from_be_bytes(key[17..].try_into().ok()?),
    ))
}

/// The time-index keys of partition `id` lie in `[time_start(id), time_start(id) + 1)`.
pub fn index_time_prefix(id: PartitionId) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[..8].copy_from_slice(&id.to_be_bytes());
    k[8] = INDEX_TIME;
    k
}

/// An i64 as a u64 whose big-endian bytes sort in numeric order (negative first).
fn ordered_i64(v: i64) -> u64 {
    (v as u64) ^ (1 << 63)
}

// producers CF
//
//   +----------------------+---------------------+
//   | partition_id u64 BE  | producer_id u64 BE  |  -> producer state (see `values`)
//   +----------------------+---------------------+
pub const PRODUCER_KEY_LEN: usize = 16;

pub fn producer(id: PartitionId, producer_id: u64) -> [u8; PRODUCER_KEY_LEN] {
    log(id, producer_id)
}

/// `(partition, producer_id)` of a producer-state key.
pub fn decode_producer(key: &[u8]) -> Option<(PartitionId, u64)> {
    decode_log(key)
}

// cursors CF
//
//   +----------------+-----------+-------------+----------------------+
//   | scope 16 bytes | group len | group bytes | partition_id u64 BE  |  -> cursor (see `values`)
//   +----------------+-----------+-------------+----------------------+
//   The scope is the namespace's id of the stream the group reads, so a stream's cursors
//   are one prefix (deleted with the stream) and a group's cursors are one prefix.
pub type CursorScope = [u8; 16];

/// The prefix of every cursor of `group` in `scope` (every cursor of the scope when `group`
/// is `None`).
pub fn cursor_prefix(scope: &CursorScope, group: Option<&str>) -> Vec<u8> {
    let mut k = Vec::with_capacity(16 + 1 + group.map_or(0, str::len) + 8);
    k.extend_from_slice(scope);
    if let Some(g) = group {
        assert!(
            g.len() <= u8::MAX as usize,
            "group names are at most 255 bytes"
        );
        k.push(g.len() as u8);
        k.extend_from_slice(g.as_bytes());
    }
    k
}

pub fn cursor(scope: &CursorScope, group: &str, id: PartitionId) -> Vec<u8> {
    let mut k = cursor_prefix(scope, Some(group));
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// `(group, partition)` of a cursor key of `scope`.
pub fn decode_cursor<'a>(scope: &CursorScope, key: &'a [u8]) -> Option<(&'a str, PartitionId)> {
    let rest = key.strip_prefix(scope.as_slice())?;
    let (&len, rest) = rest.split_first()?;
    if rest.len() != len as usize + 8 {
        return None;
    }
    let (group, id) = rest.split_at(len as usize);
    Some((
        std::str::from_utf8(group).ok()?,
        u64::from_be_bytes(id.try_into().ok()?),
    ))
}

// repl CF
//
//   +------+----------------------+------------------+-------------------+
//   | 0x01 | partition_id u64 BE  | origin 16 bytes  | incarnation u32 BE|  -> next origin
//   +------+----------------------+------------------+-------------------+     offset (u64 BE)
//   | 0x02 | link 16 bytes        | partition_id BE  |  -> next upstream offset (u64 BE),
//   +------+----------------------+------------------+     upstream incarnation (u32 BE)
//   A watermark is per (partition, origin cluster, origin incarnation), design §6.3. For
//   incarnation 0 the key stops after the origin (25 bytes): that is the layout written
//   before incarnations existed, so its keys read as incarnation 0 with no migration, and
//   each watermark has one key. Key order is (partition, origin, incarnation) order. A
//   position stored before incarnations is the offset alone (8 bytes): incarnation 0.
//   A partition's watermarks are one prefix (dropped with it); a link's positions are one
//   prefix (dropped with the link).
pub type ClusterId = [u8; 16];
pub type LinkId = [u8; 16];
const REPL_WATERMARK: u8 = 0x01;
const REPL_POSITION: u8 = 0x02;
/// A watermark key of incarnation 0 (the layout before incarnations); others are 4 longer.
pub const WATERMARK_KEY_LEN: usize = 25;

pub fn watermark(id: PartitionId, origin: &ClusterId, incarnation: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(WATERMARK_KEY_LEN + 4);
    k.push(REPL_WATERMARK);
    k.extend_from_slice(&id.to_be_bytes());
    k.extend_from_slice(origin);
    if incarnation != 0 {
        k.extend_from_slice(&incarnation.to_be_bytes());
    }
    k
}

/// `(partition, origin, incarnation)` of a watermark key, or `None` if it is not one.
pub fn decode_watermark(key: &[u8]) -> Option<(PartitionId, ClusterId, u32)> {
    if key.first() != Some(&REPL_WATERMARK) {
        return None;
    }
    let incarnation = match key.len() {
        WATERMARK_KEY_LEN => 0,
        // Incarnation 0 has the short key only.
        29 => Some(u32::from_be_bytes(key[25..].try_into().ok()?)).filter(|&i| i != 0)?,
        _ => return None,
    };
    Some((
        u64::from_be_bytes(key[1..9].try_into().ok()?),
        key[9..25].try_into().ok()?,
        incarnation,
    ))
}

/// Every watermark of partition `id` starts with this.
pub fn watermark_prefix(id: PartitionId) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = REPL_WATERMARK;
    k[1..].copy_from_slice(&id.to_be_bytes());
    k
}

pub fn link_position(link: &LinkId, id: PartitionId) -> [u8; 25] {
    let mut k = [0u8; 25];
    k[0] = REPL_POSITION;
    k[1..17].copy_from_slice(link);
    k[17..].copy_from_slice(&id.to_be_bytes());
    k
}

pub fn link_prefix(link: &LinkId) -> [u8; 17] {
    let mut k = [0u8; 17];
    k[0] = REPL_POSITION;
    k[1..].copy_from_slice(link);
    k
}

/// The partition of a link-position key.
pub fn decode_link_position(key: &[u8]) -> Option<PartitionId> {
    if key.len() != 25 || key[0] != REPL_POSITION {
        return None;
    }
    Some(u64::from_be_bytes(key[17..].try_into().ok()?))
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
        fn time_keys_round_trip_and_sort_by_timestamp_then_offset(p: u64, a: (i64, u64), b: (i64, u64)) {
            prop_assert_eq!(decode_index_time(&index_time(p, a.0, a.1)), Some((p, a.0, a.1)));
            prop_assert_eq!(index_time(p, a.0, a.1).cmp(&index_time(p, b.0, b.1)), a.cmp(&b));
            prop_assert!(index_time(p, a.0, a.1).starts_with(&index_time_prefix(p)));
            prop_assert_eq!(decode_index_batch(&index_time(p, a.0, a.1)), None);
        }

        #[test]
        fn cursor_keys_round_trip_and_group_by_prefix(scope: [u8; 16], g in "[a-z0-9._-]{1,40}", h in "[a-z0-9._-]{1,40}", p: u64) {
            let k = cursor(&scope, &g, p);
            prop_assert_eq!(decode_cursor(&scope, &k), Some((g.as_str(), p)));
            prop_assert!(k.starts_with(&cursor_prefix(&scope, Some(&g))));
            prop_assert!(k.starts_with(&cursor_prefix(&scope, None)));
            // One group's prefix never covers another group's keys.
            if g != h {
                prop_assert!(!cursor(&scope, &h, p).starts_with(&cursor_prefix(&scope, Some(&g))));
            }
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

    proptest! {
        #[test]
        fn repl_keys_stay_in_their_prefixes(p in 0..u64::MAX, o: [u8; 16], i: u32, l: [u8; 16]) {
            prop_assert!(watermark(p, &o, i).starts_with(&watermark_prefix(p)));
            prop_assert!(!watermark(p + 1, &o, i).starts_with(&watermark_prefix(p)));
            let k = link_position(&l, p);
            prop_assert!(k.starts_with(&link_prefix(&l)));
            prop_assert_eq!(decode_link_position(&k), Some(p));
            prop_assert_eq!(decode_link_position(&watermark(p, &o, i)), None);
            prop_assert_eq!(decode_watermark(&k), None);
        }

        #[test]
        fn watermark_keys_round_trip_and_sort_by_partition_origin_incarnation(
            a: (u64, [u8; 16], u32),
            b: (u64, [u8; 16], u32),
        ) {
            prop_assert_eq!(decode_watermark(&watermark(a.0, &a.1, a.2)), Some(a));
            prop_assert_eq!(
                watermark(a.0, &a.1, a.2).cmp(&watermark(b.0, &b.1, b.2)),
                a.cmp(&b)
            );
        }
    }

    #[test]
    fn the_old_watermark_layout_is_incarnation_0() {
        // The key before incarnations: 0x01, partition, origin.
        let mut old = vec![0x01];
        old.extend_from_slice(&9u64.to_be_bytes());
        old.extend_from_slice(&[0xA; 16]);
        assert_eq!(decode_watermark(&old), Some((9, [0xA; 16], 0)));
        assert_eq!(watermark(9, &[0xA; 16], 0), old);
        // Incarnation 0 spelled out is not a second key for it.
        old.extend_from_slice(&0u32.to_be_bytes());
        assert_eq!(decode_watermark(&old), None);
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

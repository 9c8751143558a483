//! Fixed binary encodings of storage's own values (not the batches themselves, which are
//! opaque). Each starts with a format version byte; decoders reject anything else.

use crate::error::Error;

const V1: u8 = 1;

/// Durable state of one partition, rewritten in the same `WriteBatch` as every append and
/// every purge.
///
/// ```text
/// +----+-----------------+---------------+-------------+-----------+-----------------+----------------+
/// | v2 | next_offset u64 | log_start u64 | records u64 | bytes u64 | purged_recs u64 | purged_bytes u64 |
/// +----+-----------------+---------------+-------------+-----------+-----------------+----------------+
/// ```
///
/// (big-endian; v1, without the two purge counters, is still read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PartitionState {
    /// Offset the next record gets: the high-water mark.
    pub next_offset: u64,
    /// First offset still stored.
    pub log_start: u64,
    /// Records stored (below `next_offset`, at or above `log_start`).
    pub records: u64,
    /// Bytes of the stored batch values.
    pub bytes: u64,
    /// Records and bytes removed by retention so far.
    pub purged_records: u64,
    pub purged_bytes: u64,
}

const V2: u8 = 2;

impl PartitionState {
    pub const LEN: usize = 49;
    const LEN_V1: usize = 33;

    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut v = [0u8; Self::LEN];
        v[0] = V2;
        let fields = [
            self.next_offset,
            self.log_start,
            self.records,
            self.bytes,
            self.purged_records,
            self.purged_bytes,
        ];
        for (i, f) in fields.iter().enumerate() {
            v[1 + 8 * i..9 + 8 * i].copy_from_slice(&f.to_be_bytes());
        }
        v
    }

    pub fn decode(v: &[u8]) -> Result<Self, Error> {
        let ok = matches!(
            (v.first(), v.len()),
            (Some(&V1), Self::LEN_V1) | (Some(&V2), Self::LEN)
        );
        if !ok {
            return Err(Error::corrupt(
                "partition state",
                format!("{} bytes, version {:?}", v.len(), v.first()),
            ));
        }
        let field = |i: usize| v.get(1 + 8 * i..9 + 8 * i).map_or(0, be64);
        let s = Self {
            next_offset: field(0),
            log_start: field(1),
            records: field(2),
            bytes: field(3),
            purged_records: field(4),
            purged_bytes: field(5),
        };
        if s.log_start > s.next_offset || s.records > s.next_offset - s.log_start {
            return Err(Error::corrupt(
                "partition state",
                format!("inconsistent {s:?}"),
            ));
        }
        Ok(s)
    }
}

/// Summary of one stored batch, kept in the index CF beside the batch.
///
/// ```text
/// +----+-----------------+-----------+-------------------+-------------------+
/// | v1 | record_count u32| bytes u32 | append_time_ms i64| max_timestamp i64 |
/// +----+-----------------+-----------+-------------------+-------------------+
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSummary {
    pub record_count: u32,
    /// Size of the stored batch value.
    pub bytes: u32,
    pub append_time_ms: i64,
    /// Largest record timestamp in the batch (create or append time).
    pub max_timestamp_ms: i64,
}

impl BatchSummary {
    pub const LEN: usize = 25;

    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut v = [0u8; Self::LEN];
        v[0] = V1;
        v[1..5].copy_from_slice(&self.record_count.to_be_bytes());
        v[5..9].copy_from_slice(&self.bytes.to_be_bytes());
        v[9..17].copy_from_slice(&self.append_time_ms.to_be_bytes());
        v[17..25].copy_from_slice(&self.max_timestamp_ms.to_be_bytes());
        v
    }

    pub fn decode(v: &[u8]) -> Result<Self, Error> {
        let v: &[u8; Self::LEN] = v
            .try_into()
            .map_err(|_| Error::corrupt("batch summary", format!("{} bytes", v.len())))?;
        if v[0] != V1 {
            return Err(Error::corrupt("batch summary", format!("version {}", v[0])));
        }
        let s = Self {
            record_count: u32::from_be_bytes(v[1..5].try_into().expect("4 bytes")),
            bytes: u32::from_be_bytes(v[5..9].try_into().expect("4 bytes")),
            append_time_ms: be64(&v[9..17]) as i64,
            max_timestamp_ms: be64(&v[17..25]) as i64,
        };
        if s.record_count == 0 {
            return Err(Error::corrupt("batch summary", "empty batch".into()));
        }
        Ok(s)
    }
}

/// What a partition remembers of one idempotent producer: its epoch, the next sequence it
/// may send, and its last few batches, so a retry is answered with the original offsets.
///
/// ```text
/// +----+-----------+--------------+--------------+---------+---------------------------------+
/// | v1 | epoch u32 | next_seq u64 | last_ms i64  | n u8    | n x (first_seq u64, count u32,   |
/// |    |           |              |              |         |      base u64, append_ms i64)   |
/// +----+-----------+--------------+--------------+---------+---------------------------------+
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProducerState {
    pub epoch: u32,
    pub next_seq: u64,
    /// Wall-clock time of the last append, for expiry.
    pub last_ms: i64,
    /// The most recent batches, oldest first, at most [`ProducerState::RECENT`].
    pub recent: Vec<ProducedBatch>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducedBatch {
    pub first_seq: u64,
    pub record_count: u32,
    pub base_offset: u64,
    pub append_time_ms: i64,
}

impl ProducerState {
    /// Batches remembered per producer and partition (Kafka keeps five in flight).
    pub const RECENT: usize = 5;
    const HEAD: usize = 22;
    const ENTRY: usize = 28;

    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(Self::HEAD + Self::ENTRY * self.recent.len());
        v.push(V1);
        v.extend_from_slice(&self.epoch.to_be_bytes());
        v.extend_from_slice(&self.next_seq.to_be_bytes());
        v.extend_from_slice(&self.last_ms.to_be_bytes());
        v.push(self.recent.len() as u8);
        for b in &self.recent {
            v.extend_from_slice(&b.first_seq.to_be_bytes());
            v.extend_from_slice(&b.record_count.to_be_bytes());
            v.extend_from_slice(&b.base_offset.to_be_bytes());
            v.extend_from_slice(&b.append_time_ms.to_be_bytes());
        }
        v
    }

    pub fn decode(v: &[u8]) -> Result<Self, Error> {
        let bad = || {
            Error::corrupt(
                "producer state",
                format!("{} bytes, version {:?}", v.len(), v.first()),
            )
        };
        if v.len() < Self::HEAD || v[0] != V1 {
            return Err(bad());
        }
        let n = v[21] as usize;
        if n > Self::RECENT || v.len() != Self::HEAD + n * Self::ENTRY {
            return Err(bad());
        }
        let recent = v[Self::HEAD..]
            .chunks_exact(Self::ENTRY)
            .map(|e| ProducedBatch {
                first_seq: be64(&e[0..8]),
                record_count: u32::from_be_bytes(e[8..12].try_into().expect("4 bytes")),
                base_offset: be64(&e[12..20]),
                append_time_ms: be64(&e[20..28]) as i64,
            })
            .collect();
        Ok(Self {
            epoch: u32::from_be_bytes(v[1..5].try_into().expect("4 bytes")),
            next_seq: be64(&v[5..13]),
            last_ms: be64(&v[13..21]) as i64,
            recent,
        })
    }
}

/// A consumer group's committed position in one partition, with the metadata a Kafka
/// client committed beside it.
///
/// ```text
/// +----+------------+----------------+
/// | v1 | offset u64 | commit_ms i64  |                                  (no metadata)
/// +----+------------+----------------+
/// +----+------------+----------------+--------------+----------------+
/// | v2 | offset u64 | commit_ms i64  | metadata len | metadata UTF-8 |
/// +----+------------+----------------+--------------+----------------+
///                                        u16 BE
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The next offset the group reads.
    pub offset: u64,
    pub commit_ms: i64,
    /// What the committer said about it (Kafka's commit metadata); empty when none.
    pub metadata: String,
}

impl Cursor {
    pub const LEN: usize = 17;
    /// The longest metadata a cursor holds.
    pub const MAX_METADATA: usize = u16::MAX as usize;

    /// Without metadata, the v1 layout, as before metadata existed.
    pub fn encode(&self) -> Vec<u8> {
        let meta = self.metadata.as_bytes();
        assert!(
            meta.len() <= Self::MAX_METADATA,
            "metadata is bounded by its callers"
        );
        let mut v =
            Vec::with_capacity(Self::LEN + if meta.is_empty() { 0 } else { 2 + meta.len() });
        v.push(if meta.is_empty() { V1 } else { V2 });
        v.extend_from_slice(&self.offset.to_be_bytes());
        v.extend_from_slice(&self.commit_ms.to_be_bytes());
        if !meta.is_empty() {
            v.extend_from_slice(&(meta.len() as u16).to_be_bytes());
            v.extend_from_slice(meta);
        }
        v
    }

    pub fn decode(v: &[u8]) -> Result<Self, Error> {
        let bad = || {
            Error::corrupt(
                "cursor",
                format!("{} bytes, version {:?}", v.len(), v.first()),
            )
        };
        let metadata = match (v.first(), v.len()) {
            (Some(&V1), Self::LEN) => String::new(),
            (Some(&V2), n) if n >= Self::LEN + 2 => {
                let len = u16::from_be_bytes([v[17], v[18]]) as usize;
                let bytes = &v[Self::LEN + 2..];
                // Empty metadata is written as v1: one encoding per cursor.
                if len == 0 || bytes.len() != len {
                    return Err(bad());
                }
                String::from_utf8(bytes.to_vec()).map_err(|_| bad())?
            }
            _ => return Err(bad()),
        };
        Ok(Self {
            offset: be64(&v[1..9]),
            commit_ms: be64(&v[9..17]) as i64,
            metadata,
        })
    }
}

/// Decodes a big-endian u64 counter or id (e.g. the partition id allocator).
pub fn decode_u64(what: &'static str, v: &[u8]) -> Result<u64, Error> {
    let b: [u8; 8] = v
        .try_into()
        .map_err(|_| Error::corrupt(what, format!("{} bytes", v.len())))?;
    Ok(u64::from_be_bytes(b))
}

fn be64(b: &[u8]) -> u64 {
    u64::from_be_bytes(b.try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_v2_cursor_with_empty_metadata_is_refused() {
        // Found by the storage_values fuzz target: it decoded, then encoded as v1.
        let v = [
            2, 0, 66, 1, 4, 253, 255, 16, 115, 0, 0, 0, 0, 29, 0, 0, 0, 0, 0,
        ];
        assert!(Cursor::decode(&v).is_err());
        let c = Cursor::decode(
            &Cursor {
                offset: 7,
                commit_ms: 9,
                metadata: "m".into(),
            }
            .encode(),
        )
        .unwrap();
        assert_eq!(c.metadata, "m");
    }

    proptest! {
        #[test]
        fn partition_state_round_trips(next in 0u64..u64::MAX, start_frac in 0.0f64..=1.0, bytes: u64) {
            let log_start = (next as f64 * start_frac) as u64;
            let s = PartitionState { next_offset: next, log_start, records: next - log_start, bytes, purged_records: log_start, purged_bytes: bytes / 2 };
            prop_assert_eq!(PartitionState::decode(&s.encode()).unwrap(), s);
        }

        #[test]
        fn batch_summary_round_trips(count in 1u32.., bytes: u32, at: i64, ts: i64) {
            let s = BatchSummary { record_count: count, bytes, append_time_ms: at, max_timestamp_ms: ts };
            prop_assert_eq!(BatchSummary::decode(&s.encode()).unwrap(), s);
        }

        #[test]
        fn producer_state_round_trips(epoch: u32, next_seq: u64, last_ms: i64, recent in proptest::collection::vec((any::<u64>(), any::<u32>(), any::<u64>(), any::<i64>()), 0..=5)) {
            let s = ProducerState {
                epoch,
                next_seq,
                last_ms,
                recent: recent.into_iter().map(|(first_seq, record_count, base_offset, append_time_ms)| ProducedBatch { first_seq, record_count, base_offset, append_time_ms }).collect(),
            };
            prop_assert_eq!(ProducerState::decode(&s.encode()).unwrap(), s);
        }

        #[test]
        fn cursor_round_trips(offset: u64, commit_ms: i64, metadata in ".{0,40}") {
            let c = Cursor { offset, commit_ms, metadata };
            prop_assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        }

        #[test]
        fn decoders_never_panic(v: Vec<u8>) {
            let _ = ProducerState::decode(&v);
            let _ = Cursor::decode(&v);
            let _ = PartitionState::decode(&v);
            let _ = BatchSummary::decode(&v);
            let _ = decode_u64("x", &v);
        }
    }

    #[test]
    fn version_1_states_still_decode() {
        let mut v1 = vec![1u8];
        for f in [9u64, 2, 7, 100] {
            v1.extend_from_slice(&f.to_be_bytes());
        }
        let s = PartitionState::decode(&v1).unwrap();
        assert_eq!(
            (
                s.next_offset,
                s.log_start,
                s.records,
                s.bytes,
                s.purged_bytes
            ),
            (9, 2, 7, 100, 0)
        );
    }

    #[test]
    fn bad_versions_and_inconsistent_states_are_corrupt() {
        let mut v = PartitionState {
            next_offset: 5,
            log_start: 2,
            records: 3,
            bytes: 9,
            ..Default::default()
        }
        .encode();
        v[0] = 3;
        assert!(PartitionState::decode(&v).is_err());
        let v = PartitionState {
            next_offset: 1,
            log_start: 2,
            ..Default::default()
        }
        .encode();
        assert!(PartitionState::decode(&v).is_err());
        let mut v = BatchSummary {
            record_count: 1,
            bytes: 1,
            append_time_ms: 0,
            max_timestamp_ms: 0,
        }
        .encode();
        v[1..5].copy_from_slice(&0u32.to_be_bytes());
        assert!(BatchSummary::decode(&v).is_err());
    }
}

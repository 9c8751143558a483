//! Fixed binary encodings of storage's own values (not the batches themselves, which are
//! opaque). Each starts with a format version byte; decoders reject anything else.

use crate::Error;

const V1: u8 = 1;

/// Durable state of one partition, rewritten in the same `WriteBatch` as every append.
///
/// ```text
/// +----+----------------+----------------+------------+------------+
/// | v1 | next_offset u64| log_start u64  | records u64| bytes u64  |   (big-endian)
/// +----+----------------+----------------+------------+------------+
/// ```
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
}

impl PartitionState {
    pub const LEN: usize = 33;

    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut v = [0u8; Self::LEN];
        v[0] = V1;
        v[1..9].copy_from_slice(&self.next_offset.to_be_bytes());
        v[9..17].copy_from_slice(&self.log_start.to_be_bytes());
        v[17..25].copy_from_slice(&self.records.to_be_bytes());
        v[25..33].copy_from_slice(&self.bytes.to_be_bytes());
        v
    }

    pub fn decode(v: &[u8]) -> Result<Self, Error> {
        let v: &[u8; Self::LEN] = v
            .try_into()
            .map_err(|_| Error::corrupt("partition state", format!("{} bytes", v.len())))?;
        if v[0] != V1 {
            return Err(Error::corrupt(
                "partition state",
                format!("version {}", v[0]),
            ));
        }
        let s = Self {
            next_offset: be64(&v[1..9]),
            log_start: be64(&v[9..17]),
            records: be64(&v[17..25]),
            bytes: be64(&v[25..33]),
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

    proptest! {
        #[test]
        fn partition_state_round_trips(next in 0u64..u64::MAX, start_frac in 0.0f64..=1.0, bytes: u64) {
            let log_start = (next as f64 * start_frac) as u64;
            let s = PartitionState { next_offset: next, log_start, records: next - log_start, bytes };
            prop_assert_eq!(PartitionState::decode(&s.encode()).unwrap(), s);
        }

        #[test]
        fn batch_summary_round_trips(count in 1u32.., bytes: u32, at: i64, ts: i64) {
            let s = BatchSummary { record_count: count, bytes, append_time_ms: at, max_timestamp_ms: ts };
            prop_assert_eq!(BatchSummary::decode(&s.encode()).unwrap(), s);
        }

        #[test]
        fn decoders_never_panic(v: Vec<u8>) {
            let _ = PartitionState::decode(&v);
            let _ = BatchSummary::decode(&v);
            let _ = decode_u64("x", &v);
        }
    }

    #[test]
    fn bad_versions_and_inconsistent_states_are_corrupt() {
        let mut v = PartitionState {
            next_offset: 5,
            log_start: 2,
            records: 3,
            bytes: 9,
        }
        .encode();
        v[0] = 2;
        assert!(PartitionState::decode(&v).is_err());
        let v = PartitionState {
            next_offset: 1,
            log_start: 2,
            records: 0,
            bytes: 0,
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

//! Fuzzes storage's own decoders: the partition state, the batch summary, producer states,
//! cursors and the counters in `values.rs`, and the key decoders in `keys.rs` (log, index,
//! time index, producer, cursor and replication watermark keys). What decodes must encode back to an
//! equal value (byte for byte where the format has one encoding), and nothing may panic:
//! these read whatever is on disk.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_storage::keys;
use tributary_storage::values::{BatchSummary, Cursor, PartitionState, ProducerState, decode_u64};

fuzz_target!(|data: &[u8]| {
    let Some((&which, v)) = data.split_first() else {
        return;
    };
    match which % 7 {
        0 => {
            if let Ok(s) = PartitionState::decode(v) {
                assert!(s.log_start <= s.next_offset);
                assert!(s.records <= s.next_offset - s.log_start);
                let again = s.encode();
                assert_eq!(PartitionState::decode(&again).unwrap(), s);
                if v.len() == PartitionState::LEN {
                    assert_eq!(again.as_slice(), v, "one encoding per state");
                } else {
                    // Version 1: no purge counters.
                    assert_eq!((s.purged_records, s.purged_bytes), (0, 0));
                }
            }
        }
        1 => {
            if let Ok(s) = BatchSummary::decode(v) {
                assert!(s.record_count > 0);
                assert_eq!(s.encode().as_slice(), v);
            }
        }
        2 => match decode_u64("fuzz", v) {
            Ok(n) => assert_eq!(n.to_be_bytes().as_slice(), v),
            Err(e) => {
                assert_ne!(v.len(), 8);
                assert!(e.to_string().contains("fuzz"), "{e}");
            }
        },
        3 => {
            match keys::decode_log(v) {
                Some((p, o)) => assert_eq!(keys::log(p, o).as_slice(), v),
                None => assert_ne!(v.len(), keys::LOG_KEY_LEN),
            }
            if let Some((p, o)) = keys::decode_index_batch(v) {
                assert_eq!(keys::index_batch(p, o).as_slice(), v);
                let (start, end) = (
                    keys::partition_start(p),
                    p.checked_add(1).map(keys::partition_start),
                );
                assert!(v >= start.as_slice());
                assert!(end.is_none_or(|e| v < e.as_slice()));
            }
        }
        5 => {
            if let Ok(s) = ProducerState::decode(v) {
                assert!(s.recent.len() <= ProducerState::RECENT);
                assert_eq!(s.encode(), v, "one encoding per producer state");
            }
            if let Ok(c) = Cursor::decode(v) {
                assert_eq!(c.encode().as_slice(), v);
            }
        }
        6 => {
            if let Some((p, t, o)) = keys::decode_index_time(v) {
                assert_eq!(keys::index_time(p, t, o).as_slice(), v);
                assert!(v.starts_with(&keys::index_time_prefix(p)));
                assert_eq!(keys::decode_index_batch(v), None);
            }
            if let Some((p, id)) = keys::decode_producer(v) {
                assert_eq!(keys::producer(p, id).as_slice(), v);
            }
            // One key per (partition, origin, incarnation); incarnation 0 is the short one.
            if let Some((p, origin, incarnation)) = keys::decode_watermark(v) {
                assert_eq!(keys::watermark(p, &origin, incarnation), v);
                assert!(v.starts_with(&keys::watermark_prefix(p)));
                assert_eq!(
                    v.len() == keys::WATERMARK_KEY_LEN,
                    incarnation == 0,
                    "{v:02x?}"
                );
                assert_eq!(keys::decode_link_position(v), None);
            }
            if v.len() >= 16 {
                let scope: [u8; 16] = v[..16].try_into().unwrap();
                if let Some((group, id)) = keys::decode_cursor(&scope, v) {
                    assert_eq!(keys::cursor(&scope, group, id), v);
                    assert!(v.starts_with(&keys::cursor_prefix(&scope, Some(group))));
                }
            }
        }
        _ => {
            if let Some(suffix) = keys::catalog_suffix(v) {
                assert_eq!(keys::catalog(suffix), v);
            }
            match keys::prefix_end(v) {
                Some(end) => {
                    assert!(end.as_slice() > v);
                    let mut longest = v.to_vec();
                    longest.extend_from_slice(&[0xff; 4]);
                    assert!(
                        longest < end,
                        "every key under the prefix sorts before its end"
                    );
                    assert!(
                        !end.starts_with(v),
                        "the end is past every key with the prefix"
                    );
                }
                None => assert!(v.iter().all(|&b| b == 0xff)),
            }
        }
    }
});

//! Fuzzes produced-batch validation, the first thing the server does with a client's bytes:
//! it must accept exactly the batches that decode and obey the rules, count elements as
//! decoding does, and turn what it accepts into a stored batch that decodes to the same
//! records with the server's fields set.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use prost::Message;
use tributary_core::TimestampType;
use tributary_core::batch::{
    ServerFields, count_elements, encode_records, first_at_or_after, max_timestamp, producer_part,
    record_size, stored_header, stored_value, validate,
};
use tributary_core::limits::{MAX_HEADERS_PER_BATCH, MAX_RECORDS_PER_BATCH};
use tributary_proto::v1::RecordBatch;
use tributary_proto::walk::{self, Value};
use tributary_proto::wire::record_count;

fuzz_target!(|data: &[u8]| {
    // Whatever an upstream sends, reading it off its framing never panics.
    let _ = (stored_header(data), producer_part(data));
    // Two bytes of max_message_bytes (small limits are the interesting ones), then the batch.
    let Some((limit, body)) = data.split_first_chunk::<2>() else {
        return;
    };
    let max_message_bytes = u32::from(u16::from_le_bytes(*limit));
    let decoded = RecordBatch::decode(body);
    let counted = count_elements(body);
    if let Some(n) = counted {
        // One walker: the served count agrees with the pre-decoding one.
        assert_eq!(record_count(body), n.records as u64);
    }
    if let Ok(d) = &decoded {
        let n = counted.expect("what prost decodes has sound framing");
        assert_eq!(n.records, d.records.len());
        assert_eq!(
            n.headers,
            d.records.iter().map(|r| r.headers.len()).sum::<usize>()
        );
    }

    match validate(Bytes::copy_from_slice(body), max_message_bytes) {
        Ok(p) => {
            let d = decoded.expect("accepted batches decode");
            assert_eq!(p.records, d.records);
            assert_eq!(p.encoded.as_ref(), body);
            assert!((1..=MAX_RECORDS_PER_BATCH).contains(&d.records.len()));
            assert!(
                d.records
                    .iter()
                    .all(|r| record_size(r) <= max_message_bytes as usize)
            );
            assert!(
                d.records
                    .iter()
                    .all(|r| r.timestamp_ms.is_none_or(|t| t >= 0))
            );
            assert_eq!(
                (
                    d.base_offset,
                    d.append_time_ms,
                    d.origin_base_offset,
                    d.timestamp_type,
                    d.origin_incarnation
                ),
                (0, 0, 0, 0, 0)
            );
            assert!(d.origin_cluster.is_empty());

            let fields = ServerFields {
                base_offset: u64::from(max_message_bytes) * 7919,
                append_time_ms: i64::from(max_message_bytes) - 3,
                origin_cluster: [data.len() as u8; 16],
                origin_base_offset: u64::from(max_message_bytes),
                timestamp_type: if data.len() % 2 == 0 {
                    TimestampType::CreateTime
                } else {
                    TimestampType::LogAppendTime
                },
                origin_incarnation: max_message_bytes.rotate_left(7),
            };
            let stored = stored_value(&p.encoded, &fields);
            assert!(
                stored.starts_with(body),
                "the client's bytes are kept as sent"
            );
            let back = RecordBatch::decode(stored.as_slice()).expect("stored batches decode");
            assert_eq!(back.records, d.records);
            assert_eq!(
                (
                    back.base_offset,
                    back.append_time_ms,
                    back.origin_base_offset,
                    back.origin_incarnation
                ),
                (
                    fields.base_offset,
                    fields.append_time_ms,
                    fields.origin_base_offset,
                    fields.origin_incarnation
                )
            );
            assert_eq!(back.origin_cluster.as_ref(), &fields.origin_cluster);
            // A replica reads the stored batch off its framing, and keeps its producer part.
            let h = stored_header(&stored).expect("stored batches have a header");
            assert_eq!(h.records as usize, d.records.len());
            assert_eq!(h.fields, fields);
            assert_eq!(
                h.max_timestamp_ms,
                max_timestamp(&d.records, fields.append_time_ms, fields.timestamp_type)
            );
            // (Server fields the client set to their defaults go too.)
            let part = producer_part(&stored).expect("sound framing");
            let part = RecordBatch::decode(part.as_slice()).expect("the producer part decodes");
            assert_eq!(part.records, d.records);
            assert_eq!(
                (
                    part.base_offset,
                    part.append_time_ms,
                    part.origin_base_offset,
                    part.origin_incarnation
                ),
                (0, 0, 0, 0)
            );
            assert!(part.origin_cluster.is_empty());
            // Seek by time inside the stored batch agrees with its timestamps.
            let first = first_at_or_after(&stored, 0).expect("stored batches decode");
            if fields.append_time_ms >= 0 {
                assert_eq!(
                    first,
                    Some(fields.base_offset),
                    "every timestamp is at or after 0"
                );
            }

            // A split over partitions re-encodes records; they must survive it.
            let split = encode_records(p.records.clone());
            assert_eq!(
                RecordBatch::decode(split.as_slice()).unwrap().records,
                p.records
            );

            let at = fields.append_time_ms;
            let expected = p.records.iter().map(|r| r.timestamp_ms.unwrap_or(at)).max();
            assert_eq!(
                max_timestamp(&p.records, at, TimestampType::CreateTime),
                expected.unwrap()
            );
            assert_eq!(
                max_timestamp(&p.records, at, TimestampType::LogAppendTime),
                at
            );
        }
        Err(e) => {
            let m = e.to_string();
            assert!(m.starts_with("batch"), "the error names the field: {m}");
            // The refusal must be deserved.
            if let (Ok(d), Some(n)) = (&decoded, counted) {
                // A Kafka batch (field 14) is the Kafka door's to set: refused when it
                // decodes as set, or when it opens the batch the way stored ones do.
                let kafka_first = walk::fields(body).next().is_some_and(|f| {
                    f.is_ok_and(|f| {
                        f.number == 14 && matches!(f.value, Value::Bytes(k) if !k.is_empty())
                    })
                });
                let deserved = n.records > MAX_RECORDS_PER_BATCH
                    || kafka_first
                    || !d.kafka_batch.is_empty()
                    || n.headers > MAX_HEADERS_PER_BATCH
                    || d.records.is_empty()
                    || d.base_offset != 0
                    || d.append_time_ms != 0
                    || d.origin_base_offset != 0
                    || !d.origin_cluster.is_empty()
                    || d.timestamp_type != 0
                    || d.origin_incarnation != 0
                    || d.records.iter().any(|r| {
                        record_size(r) > max_message_bytes as usize
                            || r.timestamp_ms.is_some_and(|t| t < 0)
                    });
                assert!(deserved, "refused a valid batch: {m}");
            }
        }
    }
});

//! Fuzzes Kafka record-batch validation, what the Kafka door does first with a producer's
//! bytes: it must never panic nor allocate past its bounds, accept only batches that obey
//! the rules, and what it accepts must encode back to the same records and stay valid once
//! the broker's fields are set.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tributary_core::TimestampType;
use tributary_core::kafka_batch::{
    BatchHeader, Draft, HeaderRef, Limits, encode, finish, validate,
};

fuzz_target!(|data: &[u8]| {
    // Two bytes of max_record_bytes and two of the decompression bound (in KiB): small
    // limits are the interesting ones. Then the batch.
    let Some((limits, body)) = data.split_first_chunk::<4>() else {
        return;
    };
    let limits = Limits {
        max_record_bytes: usize::from(u16::from_le_bytes([limits[0], limits[1]])),
        max_decompressed_bytes: usize::from(u16::from_le_bytes([limits[2], limits[3]])) << 10,
        ..Limits::default()
    };
    let batch = Bytes::copy_from_slice(body);
    let Ok(checked) = validate(&batch, &limits) else {
        return;
    };
    let h = checked.header;
    assert_eq!(h.magic, 2);
    assert_eq!(h.size(), body.len());
    assert_eq!(checked.records.len(), h.records_count as usize);
    assert!(!h.is_control() && !h.is_transactional());
    for (i, r) in checked.records.iter().enumerate() {
        assert_eq!(r.offset_delta, i as i32);
        assert!(r.size() <= limits.max_record_bytes);
        assert!(h.base_timestamp + r.timestamp_delta >= 0);
        assert!(h.base_timestamp + r.timestamp_delta <= checked.max_timestamp);
    }

    // The broker's fields set, the batch stays valid with the same records.
    let mut stored = body.to_vec();
    let kind = if body.len() % 2 == 0 {
        TimestampType::CreateTime
    } else {
        TimestampType::LogAppendTime
    };
    finish(&mut stored, 77, kind, 1_000, checked.max_timestamp);
    let again =
        validate(&Bytes::from(stored.clone()), &limits).expect("finished batches stay valid");
    assert_eq!(again.records, checked.records);
    let sh = BatchHeader::parse(&stored).unwrap();
    assert_eq!((sh.base_offset, sh.partition_leader_epoch), (77, -1));
    assert_eq!(sh.timestamp_type(), kind);

    // Encoded again (uncompressed, as served to a Kafka reader of gRPC records), the
    // records are the same.
    let headers: Vec<Vec<HeaderRef<'_>>> = checked
        .records
        .iter()
        .map(|r| {
            r.headers
                .iter()
                .map(|h| (&h.key[..], h.value.as_deref()))
                .collect()
        })
        .collect();
    let drafts: Vec<Draft<'_>> = checked
        .records
        .iter()
        .zip(&headers)
        .map(|(r, hs)| Draft {
            timestamp_ms: h.base_timestamp + r.timestamp_delta,
            key: r.key.as_deref(),
            value: r.value.as_deref(),
            headers: hs,
        })
        .collect();
    let plain = encode(5, TimestampType::CreateTime, &drafts);
    let roomy = Limits {
        max_decompressed_bytes: usize::MAX,
        ..limits
    };
    let back = validate(&plain, &roomy).expect("what we encode validates");
    assert_eq!(back.records.len(), checked.records.len());
    for (b, (c, d)) in back.records.iter().zip(checked.records.iter().zip(&drafts)) {
        assert_eq!(
            (&b.key, &b.value, &b.headers),
            (&c.key, &c.value, &c.headers)
        );
        assert_eq!(
            back.header.base_timestamp + b.timestamp_delta,
            d.timestamp_ms
        );
    }
});

//! The Kafka batch codec against an independent implementation (the `kafka-protocol`
//! crate's encoder and decoder), for every codec, and against hostile batches.

use std::io::Write;

use bytes::{Bytes, BytesMut};
use indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression as KCompression, Record as KRecord, RecordBatchDecoder, RecordBatchEncoder,
    RecordEncodeOptions, TimestampType as KTimestampType,
};
use proptest::prelude::*;

use super::*;

const BASE_TS: i64 = 1_700_000_000_000;

fn kafka_records(n: usize) -> Vec<KRecord> {
    (0..n)
        .map(|i| {
            let mut headers = IndexMap::new();
            headers.insert(
                StrBytes::from_static_str("h1"),
                Some(Bytes::from(format!("v{i}"))),
            );
            headers.insert(StrBytes::from_static_str("h-null"), None);
            KRecord {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: 7,
                producer_epoch: 1,
                timestamp_type: KTimestampType::Creation,
                offset: i as i64,
                sequence: i as i32,
                timestamp: BASE_TS + i as i64 * 3,
                // A null key, an empty key, and keys.
                key: match i % 3 {
                    0 => None,
                    1 => Some(Bytes::new()),
                    _ => Some(Bytes::from(format!("key-{i}"))),
                },
                value: match i % 4 {
                    0 => None,
                    1 => Some(Bytes::new()),
                    _ => Some(Bytes::from(vec![b'v'; 100 + i])),
                },
                headers,
            }
        })
        .collect()
}

fn kafka_encode(records: &[KRecord], compression: KCompression) -> Bytes {
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .unwrap();
    buf.freeze()
}

fn assert_same(ours: &Checked, theirs: &[KRecord]) {
    assert_eq!(ours.records.len(), theirs.len());
    for (i, (o, t)) in ours.records.iter().zip(theirs).enumerate() {
        assert_eq!(o.offset_delta, i as i32);
        assert_eq!(ours.header.base_timestamp + o.timestamp_delta, t.timestamp);
        assert_eq!(o.key, t.key, "record {i}'s key");
        assert_eq!(o.value, t.value, "record {i}'s value");
        let headers: Vec<_> = t
            .headers
            .iter()
            .map(|(k, v)| Header {
                key: Bytes::copy_from_slice(k.as_bytes()),
                value: v.clone(),
            })
            .collect();
        assert_eq!(o.headers, headers, "record {i}'s headers");
    }
}

#[test]
fn reads_what_kafka_protocol_writes_with_every_codec() {
    let records = kafka_records(50);
    for codec in [
        KCompression::None,
        KCompression::Gzip,
        KCompression::Snappy,
        KCompression::Lz4,
        KCompression::Zstd,
    ] {
        let batch = kafka_encode(&records, codec);
        let checked =
            validate(&batch, &Limits::default()).unwrap_or_else(|e| panic!("{codec:?}: {e}"));
        assert_eq!(checked.header.records_count, 50);
        assert_eq!(checked.header.producer_id, 7);
        assert_eq!(checked.header.producer_epoch, 1);
        assert_eq!(checked.header.base_sequence, 0);
        assert_eq!(checked.max_timestamp, BASE_TS + 49 * 3);
        assert_same(&checked, &records);
    }
}

#[test]
fn reads_raw_snappy_as_librdkafka_writes_it() {
    let records = kafka_records(5);
    let plain = kafka_encode(&records, KCompression::None);
    let compressed = snap::raw::Encoder::new()
        .compress_vec(&plain[HEADER_LEN..])
        .unwrap();
    let batch = rebuild(&plain, 2, &compressed);
    let checked = validate(&batch, &Limits::default()).unwrap();
    assert_same(&checked, &records);
}

/// `plain`'s header with the codec set to `codec` and `body` as the records, its length and
/// CRC made right.
fn rebuild(plain: &[u8], codec: i16, body: &[u8]) -> Bytes {
    let mut b = plain[..HEADER_LEN].to_vec();
    b.extend_from_slice(body);
    let attributes = i16::from_be_bytes([b[ATTRIBUTES_AT], b[ATTRIBUTES_AT + 1]]);
    let attributes = (attributes & !COMPRESSION_MASK) | codec;
    b[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    fix(&mut b);
    Bytes::from(b)
}

/// Sets the length and the CRC of a batch from its bytes.
fn fix(b: &mut [u8]) {
    let length = (b.len() - LOG_OVERHEAD) as i32;
    b[8..12].copy_from_slice(&length.to_be_bytes());
    let crc = crc32c::crc32c(&b[ATTRIBUTES_AT..]);
    b[CRC_AT..ATTRIBUTES_AT].copy_from_slice(&crc.to_be_bytes());
}

#[test]
fn kafka_protocol_reads_what_we_write() {
    let headers: &[HeaderRef<'_>] = &[(b"a", Some(b"1")), (b"b", None)];
    let drafts: Vec<Draft<'_>> = (0..20)
        .map(|i| Draft {
            timestamp_ms: BASE_TS + 20 - i,
            key: (i % 2 == 0).then_some(&b"k"[..]),
            value: (i % 3 != 0).then_some(&b"value"[..]),
            headers,
        })
        .collect();
    let batch = encode(1000, TimestampType::CreateTime, &drafts);
    let mut buf = batch.clone();
    let set = RecordBatchDecoder::decode(&mut buf).unwrap();
    assert_eq!(set.records.len(), 20);
    for (i, (r, d)) in set.records.iter().zip(&drafts).enumerate() {
        assert_eq!(r.offset, 1000 + i as i64);
        assert_eq!(r.timestamp, d.timestamp_ms);
        assert_eq!(r.key.as_deref(), d.key);
        assert_eq!(r.value.as_deref(), d.value);
        assert_eq!(r.producer_id, -1);
        assert_eq!(r.headers.len(), 2);
    }
    let header = BatchHeader::parse(&batch).unwrap();
    assert_eq!(header.base_timestamp, BASE_TS + 1);
    assert_eq!(header.max_timestamp, BASE_TS + 20);
}

#[test]
fn duplicate_header_keys_keep_their_order() {
    let headers: &[HeaderRef<'_>] = &[
        (b"k", Some(b"1")),
        (b"other", Some(b"")),
        (b"k", None),
        (b"k", Some(b"3")),
    ];
    let draft = Draft {
        timestamp_ms: BASE_TS,
        key: None,
        value: Some(b""),
        headers,
    };
    let batch = encode(0, TimestampType::CreateTime, &[draft]);
    let checked = validate(&batch, &Limits::default()).unwrap();
    let got: Vec<HeaderRef<'_>> = checked.records[0]
        .headers
        .iter()
        .map(|h| (&h.key[..], h.value.as_deref()))
        .collect();
    assert_eq!(got, headers);
    assert_eq!(checked.records[0].key, None);
    assert_eq!(checked.records[0].value, Some(Bytes::new()));
}

#[test]
fn finish_sets_the_offset_and_the_append_time_and_keeps_the_crc_right() {
    let batch = kafka_encode(&kafka_records(3), KCompression::Lz4);
    let checked = validate(&batch, &Limits::default()).unwrap();
    let mut b = batch.to_vec();
    finish(
        &mut b,
        4242,
        TimestampType::CreateTime,
        0,
        checked.max_timestamp,
    );
    let h = BatchHeader::parse(&b).unwrap();
    assert_eq!((h.base_offset, h.partition_leader_epoch), (4242, -1));
    // Only fields outside the CRC changed: the CRC is the producer's.
    assert_eq!(h.crc, checked.header.crc);
    validate(&Bytes::from(b.clone()), &Limits::default()).unwrap();

    finish(
        &mut b,
        4242,
        TimestampType::LogAppendTime,
        BASE_TS + 999,
        checked.max_timestamp,
    );
    let h = BatchHeader::parse(&b).unwrap();
    assert_eq!(h.timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!(h.max_timestamp, BASE_TS + 999);
    assert_ne!(h.crc, checked.header.crc);
    validate(&Bytes::from(b.clone()), &Limits::default()).unwrap();
    let set = RecordBatchDecoder::decode(&mut Bytes::from(b)).unwrap();
    assert!(
        set.records
            .iter()
            .all(|r| r.timestamp_type == KTimestampType::LogAppend)
    );
    assert_eq!(set.records[2].offset, 4244);
}

/// A valid uncompressed batch of `n` records, to break in one place.
fn plain(n: usize) -> Vec<u8> {
    kafka_encode(&kafka_records(n), KCompression::None).to_vec()
}

fn refusal(b: Vec<u8>) -> String {
    validate(&Bytes::from(b), &Limits::default())
        .expect_err("a broken batch passed")
        .to_string()
}

#[test]
fn refuses_broken_batches_naming_what_is_wrong() {
    let mut b = plain(3);
    let last = b.len() - 1;
    b[last] ^= 1;
    let e = validate(&Bytes::from(b), &Limits::default()).unwrap_err();
    assert!(matches!(e, Error::Checksum { .. }), "{e}");

    let mut b = plain(3);
    b[MAGIC_AT] = 1;
    assert!(refusal(b).contains("magic 1"));

    let b = plain(3);
    assert!(refusal(b[..b.len() - 1].to_vec()).contains("batchLength"));
    assert!(refusal(b[..HEADER_LEN - 1].to_vec()).contains("shorter than a record batch header"));
    let mut two = b.clone();
    two.extend_from_slice(&b);
    assert!(refusal(two).contains("one batch per partition"));

    for (flag, what) in [
        (CONTROL_FLAG, "control"),
        (TRANSACTIONAL_FLAG, "transactional"),
    ] {
        let mut b = plain(3);
        b[ATTRIBUTES_AT + 1] |= flag as u8;
        fix(&mut b);
        assert!(refusal(b).contains(what), "{what}");
    }

    let mut b = plain(3);
    b[ATTRIBUTES_AT + 1] |= 5;
    fix(&mut b);
    let e = validate(&Bytes::from(b), &Limits::default()).unwrap_err();
    assert!(
        matches!(e, Error::UnsupportedCompression { codec: 5, .. }),
        "{e}"
    );

    // The header counts four records where there are three, or two.
    for count in [4i32, 2] {
        let mut b = plain(3);
        b[HEADER_LEN - 4..HEADER_LEN].copy_from_slice(&count.to_be_bytes());
        b[23..27].copy_from_slice(&(count - 1).to_be_bytes());
        fix(&mut b);
        let e = refusal(b);
        assert!(
            e.contains("records") || e.contains("follow"),
            "{count}: {e}"
        );
    }

    let mut b = plain(3);
    b[23..27].copy_from_slice(&5i32.to_be_bytes());
    fix(&mut b);
    assert!(refusal(b).contains("lastOffsetDelta 5"));

    let mut b = plain(3);
    b[HEADER_LEN - 4..HEADER_LEN].copy_from_slice(&0i32.to_be_bytes());
    b.truncate(HEADER_LEN);
    fix(&mut b);
    assert!(refusal(b).contains("no records"));
}

#[test]
fn refuses_offset_deltas_out_of_order_and_negative_timestamps() {
    let d = |ts| Draft {
        timestamp_ms: ts,
        key: Some(b"k"),
        value: Some(b"v"),
        headers: &[],
    };
    // Record 1 claims offset delta 0: swap the offset-delta byte of the second record.
    let mut b = encode(0, TimestampType::CreateTime, &[d(BASE_TS), d(BASE_TS)]).to_vec();
    let second = HEADER_LEN + (b.len() - HEADER_LEN) / 2;
    // length(1) attributes(1) timestampDelta(1), then the offset delta.
    assert_eq!(b[second + 3], 2, "zigzag(1)");
    b[second + 3] = 0;
    fix(&mut b);
    assert!(refusal(b).contains("offset deltas must run"));

    let batch = encode(0, TimestampType::CreateTime, &[d(5), d(0)]);
    let mut b = batch.to_vec();
    // The base timestamp becomes -5: record 1 is at -5.
    b[27..35].copy_from_slice(&(-5i64).to_be_bytes());
    fix(&mut b);
    assert!(refusal(b).contains("negative"));
}

#[test]
fn refuses_records_larger_than_the_stream_allows_and_unkeyed_ones_when_compacted() {
    let batch = kafka_encode(&kafka_records(4), KCompression::Zstd);
    let limits = Limits {
        max_record_bytes: 100,
        ..Limits::default()
    };
    match validate(&batch, &limits).unwrap_err() {
        Error::TooLarge { field, size, limit } => {
            assert_eq!(field, "batch.records[2]");
            // value 102, key "key-2" 5, headers "h1" "v2" and "h-null" 10.
            assert_eq!((size, limit), (117, 100));
        }
        e => panic!("{e}"),
    }
    let checked = validate(&batch, &Limits::default()).unwrap();
    checked.check_keyed(false).unwrap();
    let e = checked.check_keyed(true).unwrap_err().to_string();
    assert!(
        e.contains("batch.records[0].key") && e.contains("compacted"),
        "{e}"
    );
}

#[test]
fn hostile_lengths_are_refused_before_anything_is_sized_by_them() {
    let draft = Draft {
        timestamp_ms: BASE_TS,
        key: Some(b"k"),
        value: Some(b"v"),
        headers: &[],
    };
    let b = encode(0, TimestampType::CreateTime, &[draft]).to_vec();
    // The record's header count (the last byte, 0) becomes 2^31 - 1 headers.
    let mut huge = b[..b.len() - 1].to_vec();
    let mut v = BytesMut::new();
    encode_varint(zigzag(i32::MAX as i64), &mut v);
    huge.extend_from_slice(&v);
    // The record's own length grows by the varint's extra bytes.
    huge[HEADER_LEN] += (v.len() - 1) as u8 * 2;
    fix(&mut huge);
    assert!(refusal(huge).contains("cannot fit"));

    // Two billion records claimed in a 70-byte batch.
    let mut b2 = b.clone();
    b2[HEADER_LEN - 4..HEADER_LEN].copy_from_slice(&i32::MAX.to_be_bytes());
    b2[23..27].copy_from_slice(&(i32::MAX - 1).to_be_bytes());
    fix(&mut b2);
    assert!(refusal(b2).contains("the limit is"));

    // A key length past the end.
    let mut b3 = b.clone();
    let key_at = HEADER_LEN + 4;
    assert_eq!(b3[key_at], 2, "zigzag(1)");
    b3[key_at] = 0x7e; // 63 bytes
    fix(&mut b3);
    assert!(refusal(b3).contains("runs past"));

    // Trailing garbage after the last record.
    let mut b4 = b.clone();
    b4.push(0);
    fix(&mut b4);
    assert!(refusal(b4).contains("follow"));
}

#[test]
fn decompression_stops_at_the_bound() {
    // 2 MiB of one record's zeroes compresses to almost nothing.
    let zeroes = vec![0u8; 2 << 20];
    let draft = Draft {
        timestamp_ms: BASE_TS,
        key: None,
        value: Some(&zeroes),
        headers: &[],
    };
    let plain = encode(0, TimestampType::CreateTime, &[draft]);
    let body = &plain[HEADER_LEN..];
    let gzip = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(body).unwrap();
        e.finish().unwrap()
    };
    let lz4 = {
        let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
        e.write_all(body).unwrap();
        e.finish().unwrap()
    };
    let zstd = zstd::encode_all(body, 3).unwrap();
    let snappy = snap::raw::Encoder::new().compress_vec(body).unwrap();
    let limits = Limits {
        max_decompressed_bytes: 1 << 20,
        ..Limits::default()
    };
    for (codec, compressed) in [(1, gzip), (2, snappy), (3, lz4), (4, zstd)] {
        assert!(
            compressed.len() * 20 < body.len(),
            "{codec}: {}",
            compressed.len()
        );
        let batch = rebuild(&plain, codec, &compressed);
        let e = validate(&batch, &limits).unwrap_err().to_string();
        assert!(e.contains("more than 1048576 bytes"), "{codec}: {e}");
        // Under a larger bound the same batch is fine.
        let roomy = Limits {
            max_decompressed_bytes: 4 << 20,
            ..Limits::default()
        };
        let checked = validate(&batch, &roomy).unwrap();
        assert_eq!(checked.records[0].value.as_deref(), Some(&zeroes[..]));
    }
}

#[test]
fn truncated_compressed_records_are_refused() {
    let records = kafka_records(10);
    for codec in [
        KCompression::Gzip,
        KCompression::Snappy,
        KCompression::Lz4,
        KCompression::Zstd,
    ] {
        let mut b = kafka_encode(&records, codec).to_vec();
        // Half the compressed records: whatever a codec tolerates at its end, this is not.
        b.truncate(HEADER_LEN + (b.len() - HEADER_LEN) / 2);
        fix(&mut b);
        let e = refusal(b);
        assert!(e.contains("do not decompress"), "{codec:?}: {e}");
    }
}

type OwnedHeader = (Vec<u8>, Option<Vec<u8>>);

fn arb_bytes() -> impl Strategy<Value = Option<Vec<u8>>> {
    proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20))
}

proptest! {
    #[test]
    fn what_we_encode_validates_to_the_same_records(
        records in proptest::collection::vec(
            (0i64..1_000_000, arb_bytes(), arb_bytes(),
             proptest::collection::vec(("[a-c]{0,3}", arb_bytes()), 0..4)),
            1..20),
        base in 0i64..i64::MAX / 2,
    ) {
        let headers: Vec<Vec<OwnedHeader>> = records
            .iter()
            .map(|(_, _, _, h)| h.iter().map(|(k, v)| (k.clone().into_bytes(), v.clone())).collect())
            .collect();
        let header_refs: Vec<Vec<HeaderRef<'_>>> = headers
            .iter()
            .map(|h| h.iter().map(|(k, v)| (&k[..], v.as_deref())).collect())
            .collect();
        let drafts: Vec<Draft<'_>> = records
            .iter()
            .zip(&header_refs)
            .map(|((ts, k, v, _), h)| Draft {
                timestamp_ms: *ts,
                key: k.as_deref(),
                value: v.as_deref(),
                headers: h,
            })
            .collect();
        let batch = encode(base, TimestampType::CreateTime, &drafts);
        let checked = validate(&batch, &Limits::default()).unwrap();
        prop_assert_eq!(checked.header.base_offset, base);
        prop_assert_eq!(checked.records.len(), drafts.len());
        for (r, d) in checked.records.iter().zip(&drafts) {
            prop_assert_eq!(checked.header.base_timestamp + r.timestamp_delta, d.timestamp_ms);
            prop_assert_eq!(r.key.as_deref(), d.key);
            prop_assert_eq!(r.value.as_deref(), d.value);
            let got: Vec<HeaderRef<'_>> =
                r.headers.iter().map(|h| (&h.key[..], h.value.as_deref())).collect();
            prop_assert_eq!(&got[..], d.headers);
        }
    }

    #[test]
    fn no_input_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = validate(&Bytes::from(bytes), &Limits::default());
    }
}

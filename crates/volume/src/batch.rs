//! Produced batches: decoded once to validate, stored as the client encoded them with the
//! server-assigned fields appended (protobuf merges concatenated encodings, so appending a
//! field sets it without re-encoding the records). Key compaction reads and cuts stored
//! batches through [`Codec`].

use std::ops::Range;

use bytes::Bytes;
use prost::Message;
use tributary_proto::v1::{Record, RecordBatch};
use tributary_storage::KeyCodec;

use crate::{Error, Result};

/// A produced batch that passed validation. `records` slice the request buffer.
#[derive(Debug)]
pub struct Produced {
    pub encoded: Bytes,
    pub records: Vec<Record>,
}

/// Size a record counts against `max_message_bytes`: key, value and headers.
pub fn record_size(r: &Record) -> usize {
    r.key.len()
        + r.value.len()
        + r.headers
            .iter()
            .map(|h| h.key.len() + h.value.len())
            .sum::<usize>()
}

/// Decodes and checks a produced `RecordBatch`.
pub fn validate(encoded: Bytes, max_message_bytes: u32) -> Result<Produced> {
    let batch = RecordBatch::decode(encoded.clone())
        .map_err(|e| Error::invalid("batch", format!("not a valid RecordBatch: {e}")))?;
    let server_set = [
        ("batch.base_offset", batch.base_offset != 0),
        ("batch.append_time_ms", batch.append_time_ms != 0),
        ("batch.origin_cluster", !batch.origin_cluster.is_empty()),
        ("batch.origin_base_offset", batch.origin_base_offset != 0),
    ];
    if let Some((field, _)) = server_set.iter().find(|(_, set)| *set) {
        return Err(Error::invalid(
            field,
            "is assigned by the server; leave it unset".into(),
        ));
    }
    if batch.records.is_empty() {
        return Err(Error::invalid(
            "batch.records",
            "the batch has no records".into(),
        ));
    }
    if batch.records.len() > u32::MAX as usize {
        return Err(Error::invalid(
            "batch.records",
            "too many records in one batch".into(),
        ));
    }
    for (i, r) in batch.records.iter().enumerate() {
        let size = record_size(r);
        if size > max_message_bytes as usize {
            return Err(Error::invalid(
                &format!("batch.records[{i}]"),
                format!(
                    "record is {size} bytes; the stream's max_message_bytes is {max_message_bytes}"
                ),
            ));
        }
        if r.timestamp_ms.is_some_and(|t| t < 0) {
            return Err(Error::invalid(
                &format!("batch.records[{i}].timestamp_ms"),
                "must not be negative".into(),
            ));
        }
    }
    Ok(Produced {
        encoded,
        records: batch.records,
    })
}

/// Refuses unkeyed records on a compacted stream: no later record could ever supersede
/// them.
pub fn check_keyed(p: &Produced, compact: bool) -> Result<()> {
    match p.records.iter().position(|r| r.key.is_empty()) {
        Some(i) if compact => Err(Error::invalid(
            &format!("batch.records[{i}].key"),
            "is empty; the stream is compacted (`compact`), so every record needs a key".into(),
        )),
        _ => Ok(()),
    }
}

/// The records of one partition, encoded as a `RecordBatch` body (no server fields).
pub fn encode_records(records: Vec<Record>) -> Vec<u8> {
    RecordBatch {
        records,
        ..Default::default()
    }
    .encode_to_vec()
}

/// Server-assigned fields of a stored batch.
#[derive(Debug, Clone, Copy)]
pub struct ServerFields {
    pub base_offset: u64,
    pub append_time_ms: i64,
    pub origin_cluster: [u8; 16],
    pub origin_base_offset: u64,
}

/// `body` followed by the encoding of the server's fields: the stored (and served) batch.
pub fn stored_value(body: &[u8], f: &ServerFields) -> Vec<u8> {
    let trailer = RecordBatch {
        records: Vec::new(),
        base_offset: f.base_offset,
        append_time_ms: f.append_time_ms,
        origin_cluster: Bytes::copy_from_slice(&f.origin_cluster),
        origin_base_offset: f.origin_base_offset,
    };
    let mut value = Vec::with_capacity(body.len() + trailer.encoded_len());
    value.extend_from_slice(body);
    trailer.encode(&mut value).expect("a Vec grows as needed");
    value
}

/// Stored batches as key compaction sees them: a record with an empty value is a
/// tombstone; a cut is re-encoded whole, with the batch's append time and origin cluster,
/// its own base offset, and the origin offset moved by as much.
#[derive(Debug, Clone, Copy, Default)]
pub struct Codec;

impl KeyCodec for Codec {
    fn for_each_key(
        &self,
        batch: &Bytes,
        f: &mut dyn FnMut(Option<&[u8]>, bool),
    ) -> std::result::Result<u32, String> {
        let b = RecordBatch::decode(batch.clone()).map_err(|e| e.to_string())?;
        for r in &b.records {
            f(
                (!r.key.is_empty()).then_some(&r.key[..]),
                r.value.is_empty(),
            );
        }
        u32::try_from(b.records.len()).map_err(|_| "too many records".into())
    }

    fn cut(
        &self,
        batch: &Bytes,
        base_offset: u64,
        runs: &[Range<u32>],
    ) -> std::result::Result<Vec<Vec<u8>>, String> {
        let b = RecordBatch::decode(batch.clone()).map_err(|e| e.to_string())?;
        if b.base_offset != base_offset {
            return Err(format!(
                "the batch says base offset {}, stored at {base_offset}",
                b.base_offset
            ));
        }
        runs.iter()
            .map(|run| {
                let records = b
                    .records
                    .get(run.start as usize..run.end as usize)
                    .ok_or_else(|| {
                        format!("no records {run:?} in a batch of {}", b.records.len())
                    })?;
                Ok(RecordBatch {
                    records: records.to_vec(),
                    base_offset: base_offset + u64::from(run.start),
                    append_time_ms: b.append_time_ms,
                    origin_cluster: b.origin_cluster.clone(),
                    origin_base_offset: b.origin_base_offset + u64::from(run.start),
                }
                .encode_to_vec())
            })
            .collect()
    }
}

/// Latest record timestamp; records without one take the append time.
pub fn max_timestamp(records: &[Record], append_time_ms: i64) -> i64 {
    records
        .iter()
        .map(|r| r.timestamp_ms.unwrap_or(append_time_ms))
        .max()
        .unwrap_or(append_time_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_proto::v1::Header;

    fn record(key: &str, value: &str) -> Record {
        Record {
            key: Bytes::copy_from_slice(key.as_bytes()),
            value: Bytes::copy_from_slice(value.as_bytes()),
            headers: vec![Header {
                key: "h".into(),
                value: Bytes::from_static(b"1"),
            }],
            timestamp_ms: None,
        }
    }

    fn encoded(records: Vec<Record>) -> Bytes {
        RecordBatch {
            records,
            ..Default::default()
        }
        .encode_to_vec()
        .into()
    }

    #[test]
    fn stored_batch_is_the_client_bytes_plus_server_fields() {
        let wire = encoded(vec![record("k", "v"), record("", "w")]);
        let p = validate(wire.clone(), 100).unwrap();
        assert_eq!(p.records.len(), 2);
        let f = ServerFields {
            base_offset: 7,
            append_time_ms: 99,
            origin_cluster: [1; 16],
            origin_base_offset: 7,
        };
        let stored = stored_value(&p.encoded, &f);
        assert!(
            stored.starts_with(&wire),
            "the client's encoding is kept byte for byte"
        );
        let back = RecordBatch::decode(stored.as_slice()).unwrap();
        assert_eq!(back.records, p.records);
        assert_eq!(
            (
                back.base_offset,
                back.append_time_ms,
                back.origin_base_offset
            ),
            (7, 99, 7)
        );
        assert_eq!(back.origin_cluster.as_ref(), &[1; 16]);
    }

    #[test]
    fn decoded_payloads_slice_the_request_buffer() {
        let wire = encoded(vec![record("key", "a-long-enough-value")]);
        let p = validate(wire.clone(), 100).unwrap();
        let range = wire.as_ptr() as usize..wire.as_ptr() as usize + wire.len();
        assert!(
            range.contains(&(p.records[0].value.as_ptr() as usize)),
            "no copy on decode"
        );
    }

    #[test]
    fn bad_batches_are_refused_naming_the_field() {
        let err = |b: Bytes, max| validate(b, max).unwrap_err().to_string();
        assert!(
            err(Bytes::from_static(&[0xff, 0xff]), 10)
                .starts_with("batch: not a valid RecordBatch")
        );
        assert!(err(encoded(vec![]), 10).starts_with("batch.records: the batch has no records"));
        let set = RecordBatch {
            records: vec![record("k", "v")],
            base_offset: 3,
            ..Default::default()
        };
        assert!(
            err(set.encode_to_vec().into(), 10)
                .starts_with("batch.base_offset: is assigned by the server")
        );
        let e = err(
            encoded(vec![record("k", "v"), record("k", "0123456789")]),
            10,
        );
        assert!(
            e.starts_with(
                "batch.records[1]: record is 13 bytes; the stream's max_message_bytes is 10"
            ),
            "{e}"
        );
        let mut r = record("k", "v");
        r.timestamp_ms = Some(-1);
        assert!(err(encoded(vec![r]), 10).starts_with("batch.records[0].timestamp_ms"));
    }

    #[test]
    fn compacted_streams_refuse_unkeyed_records() {
        let p = validate(encoded(vec![record("k", "v"), record("", "w")]), 100).unwrap();
        check_keyed(&p, false).unwrap();
        let e = check_keyed(&p, true).unwrap_err().to_string();
        assert!(e.starts_with("batch.records[1].key: is empty"), "{e}");
    }

    #[test]
    fn cuts_keep_offsets_append_time_and_origin() {
        let records = vec![
            record("a", "1"),
            record("b", ""),
            record("c", "3"),
            record("", "4"),
        ];
        let p = validate(encoded(records.clone()), 100).unwrap();
        let f = ServerFields {
            base_offset: 10,
            append_time_ms: 99,
            origin_cluster: [7; 16],
            origin_base_offset: 40,
        };
        let stored = Bytes::from(stored_value(&p.encoded, &f));
        let mut seen = Vec::new();
        let n = Codec
            .for_each_key(&stored, &mut |k, t| seen.push((k.map(<[u8]>::to_vec), t)))
            .unwrap();
        assert_eq!(n, 4);
        assert_eq!(
            seen,
            vec![
                (Some(b"a".to_vec()), false),
                (Some(b"b".to_vec()), true),
                (Some(b"c".to_vec()), false),
                (None, false),
            ]
        );
        let cuts = Codec.cut(&stored, 10, &[0..1, 2..4]).unwrap();
        let second = RecordBatch::decode(cuts[1].as_slice()).unwrap();
        assert_eq!(second.records, records[2..]);
        assert_eq!(
            (
                second.base_offset,
                second.append_time_ms,
                second.origin_base_offset
            ),
            (12, 99, 42)
        );
        assert_eq!(second.origin_cluster.as_ref(), &[7; 16]);
        assert_eq!(
            RecordBatch::decode(cuts[0].as_slice()).unwrap().records,
            records[..1]
        );
        assert!(
            Codec.cut(&stored, 11, &[0..1, 2..3]).is_err(),
            "a batch cut at the wrong offset"
        );
        assert!(Codec.cut(&stored, 10, &[0..1, 3..5]).is_err());
    }

    #[test]
    fn max_timestamp_defaults_to_append_time() {
        let mut a = record("", "");
        a.timestamp_ms = Some(5);
        assert_eq!(max_timestamp(&[a.clone(), record("", "")], 3), 5);
        assert_eq!(max_timestamp(&[a, record("", "")], 9), 9);
    }
}

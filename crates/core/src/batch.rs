//! Produced batches: decoded once to validate, stored as the client encoded them with the
//! server-assigned fields appended (protobuf merges concatenated encodings, so appending a
//! field sets it without re-encoding the records). Replication reads stored batches off
//! their framing (`tributary_proto::walk`) without decoding their records; key compaction
//! lists a stored batch's keys ([`for_each_key`]) and cuts it into runs ([`cut`]).
//!
//! A batch the Kafka door stored carries the Kafka batch as it came in field 14
//! (`kafka_batch`, always the first field, never in a gRPC-produced batch) and no
//! `records`: every reader here takes its counts, timestamps and keys from it, so storage,
//! retention, compaction and replication keep one kind of stored batch (design §9).

use std::ops::Range;

use bytes::Bytes;
use prost::Message;
use tributary_proto::v1::{self, Record, RecordBatch};
use tributary_proto::walk::{self, Value};

use crate::kafka_batch::{self, BatchHeader};
use crate::kafka_records;
use crate::limits::{MAX_HEADERS_PER_BATCH, MAX_RECORDS_PER_BATCH, check_count};
use crate::{Error, Result};

pub use crate::timestamp::TimestampType;

/// A produced batch that passed validation. `records` slice the request buffer.
#[derive(Debug)]
pub struct Produced {
    pub encoded: Bytes,
    pub records: Vec<Record>,
}

/// Size a record counts against `max_message_bytes`: key, value and headers (a null one
/// counts as empty).
pub fn record_size(r: &Record) -> usize {
    let len = |b: &Option<Bytes>| b.as_ref().map_or(0, Bytes::len);
    len(&r.key)
        + len(&r.value)
        + r.headers
            .iter()
            .map(|h| h.key.len() + len(&h.value))
            .sum::<usize>()
}

/// Decodes and checks a produced `RecordBatch`.
pub fn validate(encoded: Bytes, max_message_bytes: u32) -> Result<Produced> {
    // Count before decoding: what decoding allocates grows with the count, not the bytes.
    if let Some(n) = count_elements(&encoded) {
        check_count("batch.records", "records", n.records, MAX_RECORDS_PER_BATCH)?;
        check_count(
            "batch.records.headers",
            "headers",
            n.headers,
            MAX_HEADERS_PER_BATCH,
        )?;
    }
    let batch = RecordBatch::decode(encoded.clone())
        .map_err(|e| Error::invalid("batch", format!("not a valid RecordBatch: {e}")))?;
    if kafka_part(&encoded).is_some() || !batch.kafka_batch.is_empty() {
        return Err(Error::invalid(
            "batch.kafka_batch",
            "is set by the Kafka door only; send records".into(),
        ));
    }
    let server_set = [
        ("batch.base_offset", batch.base_offset != 0),
        ("batch.append_time_ms", batch.append_time_ms != 0),
        ("batch.origin_cluster", !batch.origin_cluster.is_empty()),
        ("batch.origin_base_offset", batch.origin_base_offset != 0),
        ("batch.timestamp_type", batch.timestamp_type != 0),
        ("batch.origin_incarnation", batch.origin_incarnation != 0),
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

/// Refuses unkeyed records (a null key; an empty key is a key) on a compacted stream: no
/// later record could ever supersede them. A client built before keys were `optional`
/// leaves an empty key out, so its empty key is null here, refused as it always was.
pub fn check_keyed(p: &Produced, compact: bool) -> Result<()> {
    match p.records.iter().position(|r| r.key.is_none()) {
        Some(i) if compact => Err(Error::invalid(
            &format!("batch.records[{i}].key"),
            "is null; the stream is compacted (`compact`), so every record needs a key".into(),
        )),
        _ => Ok(()),
    }
}

/// Records and headers in an encoded `RecordBatch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ElementCount {
    pub records: usize,
    pub headers: usize,
}

/// Counts the records and headers of an encoded `RecordBatch` by walking its protobuf
/// framing, without decoding or allocating anything. `None` when the framing is broken;
/// decoding then fails too, and says how.
pub fn count_elements(batch: &[u8]) -> Option<ElementCount> {
    let mut n = ElementCount::default();
    for field in walk::fields(batch) {
        let field = field.ok()?;
        if field.number == RECORDS_FIELD {
            let Value::Bytes(record) = field.value else {
                return None;
            };
            n.records += 1;
            for f in walk::fields(record) {
                n.headers += usize::from(f.ok()?.number == HEADERS_FIELD);
            }
        }
    }
    Some(n)
}

/// The producer's part of a stored batch: every top-level field but the server's, byte for
/// byte (a replica stores these with its own server fields after them). `None` at broken
/// framing.
pub fn producer_part(stored: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(stored.len());
    for field in walk::fields(stored) {
        let field = field.ok()?;
        if !SERVER_FIELDS.contains(&field.number) {
            out.extend_from_slice(field.encoded());
        }
    }
    Some(out)
}

/// What replication needs of a stored batch, read off its framing without decoding (or
/// allocating) its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredHeader {
    pub records: u32,
    pub fields: ServerFields,
    /// The latest record timestamp of the batch's timestamp type.
    pub max_timestamp_ms: i64,
}

/// Reads a stored batch's server fields, record count and latest timestamp, skipping
/// unknown fields as decoding does. `None` at broken framing or a missing origin.
pub fn stored_header(stored: &[u8]) -> Option<StoredHeader> {
    let (mut records, mut max_ts, mut untimed) = (0u32, None::<i64>, false);
    let mut f = ServerFields {
        base_offset: 0,
        append_time_ms: 0,
        origin_cluster: [0; 16],
        origin_base_offset: 0,
        timestamp_type: TimestampType::CreateTime,
        origin_incarnation: 0,
    };
    let mut origin = None;
    if let Some((_, k)) = kafka_part(stored) {
        let h = BatchHeader::parse(k).ok()?;
        records = u32::try_from(h.records_count).ok()?;
        max_ts = Some(h.max_timestamp);
    }
    for field in walk::fields(stored) {
        let field = field.ok()?;
        match (field.number, field.value) {
            (RECORDS_FIELD, Value::Bytes(record)) => {
                records = records.checked_add(1)?;
                match record_timestamp(record)? {
                    Some(ts) => max_ts = Some(max_ts.map_or(ts, |m| m.max(ts))),
                    None => untimed = true,
                }
            }
            // The last occurrence wins, as in decoding.
            (ORIGIN_CLUSTER_FIELD, Value::Bytes(p)) => origin = <[u8; 16]>::try_from(p).ok(),
            (BASE_OFFSET_FIELD, Value::Varint(v)) => f.base_offset = v,
            (APPEND_TIME_FIELD, Value::Varint(v)) => f.append_time_ms = v as i64,
            (ORIGIN_BASE_OFFSET_FIELD, Value::Varint(v)) => f.origin_base_offset = v,
            // uint32 decoding keeps the low 32 bits of the varint.
            (ORIGIN_INCARNATION_FIELD, Value::Varint(v)) => f.origin_incarnation = v as u32,
            (TIMESTAMP_TYPE_FIELD, Value::Varint(v)) => {
                f.timestamp_type = if v == v1::TimestampType::LogAppendTime as u64 {
                    TimestampType::LogAppendTime
                } else {
                    TimestampType::CreateTime
                }
            }
            _ => {}
        }
    }
    f.origin_cluster = origin?;
    // Records without a timestamp take the append time (see `max_timestamp`).
    let max_timestamp_ms = match (f.timestamp_type, max_ts) {
        (TimestampType::LogAppendTime, _) | (_, None) => f.append_time_ms,
        (TimestampType::CreateTime, Some(t)) if untimed => t.max(f.append_time_ms),
        (TimestampType::CreateTime, Some(t)) => t,
    };
    Some(StoredHeader {
        records,
        fields: f,
        max_timestamp_ms,
    })
}

/// `Record.timestamp_ms` of an encoded record: `Some(None)` when absent, `None` at broken
/// framing.
fn record_timestamp(record: &[u8]) -> Option<Option<i64>> {
    let mut ts = None;
    for field in walk::fields(record) {
        let field = field.ok()?;
        if let (RECORD_TIMESTAMP_FIELD, Value::Varint(v)) = (field.number, field.value) {
            ts = Some(v as i64);
        }
    }
    Some(ts)
}

/// `body` (a batch body of whole fields, e.g. a [`producer_part`]) without its first
/// `skip` records, every other byte kept: a replica cuts off records it already has this
/// way, without decoding any (a Kafka batch's tail is decoded and encoded again). `None` at
/// broken framing or a Kafka batch that does not decode.
pub fn without_first_records(body: &[u8], skip: usize) -> Option<Vec<u8>> {
    if let Some((_, k)) = kafka_part(body) {
        let (h, records) = kafka_records_of(&Bytes::copy_from_slice(k)).ok()?;
        let tail = records.get(skip..)?;
        let tail = kafka_batch::reencode(&h, tail, h.base_offset.saturating_add(skip as i64));
        return Some(kafka_body(tail));
    }
    let mut out = Vec::with_capacity(body.len());
    let mut seen = 0usize;
    for field in walk::fields(body) {
        let field = field.ok()?;
        if field.number == RECORDS_FIELD && seen < skip {
            seen += 1;
        } else {
            out.extend_from_slice(field.encoded());
        }
    }
    Some(out)
}

/// The origin cluster a stored batch names (the last occurrence wins, as in decoding),
/// read without decoding its records. `None` at broken framing or without one.
pub fn origin_of(stored: &[u8]) -> Option<[u8; 16]> {
    let mut origin = None;
    for field in walk::fields(stored) {
        let field = field.ok()?;
        if field.number == ORIGIN_CLUSTER_FIELD {
            origin = match field.value {
                Value::Bytes(p) => <[u8; 16]>::try_from(p).ok(),
                _ => None,
            };
        }
    }
    origin
}

/// Field numbers of `RecordBatch` and `Record` (records.proto). Fields 8 to 13 of
/// `RecordBatch` are set by the server.
const RECORDS_FIELD: u32 = 1;
const SERVER_FIELDS: std::ops::RangeInclusive<u32> = 8..=13;
const BASE_OFFSET_FIELD: u32 = 8;
const APPEND_TIME_FIELD: u32 = 9;
const ORIGIN_CLUSTER_FIELD: u32 = 10;
const ORIGIN_BASE_OFFSET_FIELD: u32 = 11;
const TIMESTAMP_TYPE_FIELD: u32 = 12;
const ORIGIN_INCARNATION_FIELD: u32 = 13;
const HEADERS_FIELD: u32 = 3;
const RECORD_TIMESTAMP_FIELD: u32 = 4;
const KAFKA_BATCH_FIELD: u32 = 14;

/// The Kafka batch a stored batch (or its producer's part) carries, and where it starts:
/// only ever its first field.
fn kafka_part(stored: &[u8]) -> Option<(usize, &[u8])> {
    let first = walk::fields(stored).next()?.ok()?;
    match (first.number, first.value) {
        (KAFKA_BATCH_FIELD, Value::Bytes(k)) if !k.is_empty() => {
            Some((k.as_ptr() as usize - stored.as_ptr() as usize, k))
        }
        _ => None,
    }
}

/// The body of a batch the Kafka door stores: the Kafka batch in field 14, alone.
pub fn kafka_body(kafka: Vec<u8>) -> Vec<u8> {
    RecordBatch {
        kafka_batch: kafka.into(),
        ..Default::default()
    }
    .encode_to_vec()
}

/// A stored Kafka batch's header and records (decompressed within the bound produces have).
fn kafka_records_of(kafka: &Bytes) -> Result<(BatchHeader, Vec<kafka_batch::Record>)> {
    let h = BatchHeader::parse(kafka).map_err(|e| Error::corrupt(e.to_string()))?;
    let records = kafka_batch::decode_records(kafka, &h, &kafka_batch::Limits::default())
        .map_err(|e| Error::corrupt(e.to_string()))?;
    Ok((h, records))
}

/// A stored batch as a gRPC consumer reads it: unchanged, or, for a batch the Kafka door
/// stored, its records decoded into `records`, the server's fields kept and the Kafka
/// batch left out.
pub fn as_records(stored: &Bytes) -> Result<Bytes> {
    if kafka_part(stored).is_none() {
        return Ok(stored.clone());
    }
    let mut b = decode_stored(stored.clone())?;
    let (h, records) = kafka_records_of(&b.kafka_batch)?;
    b.kafka_batch = Bytes::new();
    b.records = records
        .into_iter()
        .map(|r| kafka_records::to_record(r, h.base_timestamp))
        .collect();
    Ok(b.encode_to_vec().into())
}

/// A stored batch as a Kafka consumer reads it: the Kafka batch as stored (no copy), or
/// records produced over gRPC encoded as one uncompressed batch.
pub fn as_kafka(stored: &Bytes) -> Result<Bytes> {
    if let Some((at, k)) = kafka_part(stored) {
        return Ok(stored.slice(at..at + k.len()));
    }
    let b = decode_stored(stored.clone())?;
    let t = if b.timestamp_type == v1::TimestampType::LogAppendTime as i32 {
        TimestampType::LogAppendTime
    } else {
        TimestampType::CreateTime
    };
    Ok(kafka_records::encode(
        b.base_offset as i64,
        t,
        b.append_time_ms,
        &b.records,
    ))
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerFields {
    pub base_offset: u64,
    pub append_time_ms: i64,
    pub origin_cluster: [u8; 16],
    pub origin_base_offset: u64,
    pub timestamp_type: TimestampType,
    /// The origin cluster's incarnation when it appended the batch (design §6.3); 0 in
    /// batches stored before incarnations existed.
    pub origin_incarnation: u32,
}

/// `body` followed by the encoding of the server's fields: the stored (and served) batch.
/// A Kafka batch in `body` takes the base offset too.
pub fn stored_value(body: &[u8], f: &ServerFields) -> Vec<u8> {
    let trailer = RecordBatch {
        records: Vec::new(),
        base_offset: f.base_offset,
        append_time_ms: f.append_time_ms,
        origin_cluster: Bytes::copy_from_slice(&f.origin_cluster),
        origin_base_offset: f.origin_base_offset,
        timestamp_type: match f.timestamp_type {
            TimestampType::CreateTime => v1::TimestampType::CreateTime,
            TimestampType::LogAppendTime => v1::TimestampType::LogAppendTime,
        } as i32,
        origin_incarnation: f.origin_incarnation,
        kafka_batch: Bytes::new(),
    };
    let mut value = Vec::with_capacity(body.len() + trailer.encoded_len());
    value.extend_from_slice(body);
    if let Some((at, k)) = kafka_part(body)
        && k.len() >= 8
    {
        // Outside the CRC: the broker's to set, with no other byte touched.
        value[at..at + 8].copy_from_slice(&(f.base_offset as i64).to_be_bytes());
    }
    trailer.encode(&mut value).expect("a Vec grows as needed");
    value
}

/// Calls `f(key, is_tombstone)` for each record of a stored batch, in offset order, and
/// returns the number of records: key compaction's view, as Kafka's, where a record with a
/// null value is a tombstone (an empty value is a value) and an unkeyed record (a null key,
/// `None`; an empty key is a key) is kept as it is. A batch stored before keys and values
/// were `optional` has no empty ones: its client left them out, so they read as null, and
/// compact as they did then. A stored Kafka batch (field 14) reads the same way.
pub fn for_each_key(stored: &Bytes, mut f: impl FnMut(Option<&[u8]>, bool)) -> Result<u32> {
    if let Some((at, k)) = kafka_part(stored) {
        let (_, records) = kafka_records_of(&stored.slice(at..at + k.len()))?;
        for r in &records {
            f(r.key.as_deref(), r.value.is_none());
        }
        return u32::try_from(records.len()).map_err(|_| Error::corrupt("too many records"));
    }
    let b = decode_stored(stored.clone())?;
    for r in &b.records {
        f(r.key.as_deref(), r.value.is_none());
    }
    u32::try_from(b.records.len()).map_err(|_| Error::corrupt("too many records"))
}

/// One stored batch per run of records of `stored` (indexes into it), `stored` being at
/// `base_offset`: each cut is re-encoded whole, with the batch's append time and origin
/// cluster and incarnation, its own base offset, and the origin offset moved by as much.
/// A Kafka batch's runs are Kafka batches again (uncompressed).
pub fn cut(stored: &Bytes, base_offset: u64, runs: &[Range<u32>]) -> Result<Vec<Vec<u8>>> {
    let b = decode_stored(stored.clone())?;
    if b.base_offset != base_offset {
        return Err(Error::corrupt(format!(
            "the batch says base offset {}, stored at {base_offset}",
            b.base_offset
        )));
    }
    if kafka_part(stored).is_some() {
        return cut_kafka(&b, runs);
    }
    runs.iter()
        .map(|run| {
            let records = b
                .records
                .get(run.start as usize..run.end as usize)
                .ok_or_else(|| {
                    Error::corrupt(format!(
                        "no records {run:?} in a batch of {}",
                        b.records.len()
                    ))
                })?;
            Ok(RecordBatch {
                records: records.to_vec(),
                base_offset: base_offset + u64::from(run.start),
                append_time_ms: b.append_time_ms,
                origin_cluster: b.origin_cluster.clone(),
                origin_base_offset: b.origin_base_offset + u64::from(run.start),
                timestamp_type: b.timestamp_type,
                origin_incarnation: b.origin_incarnation,
                kafka_batch: Bytes::new(),
            }
            .encode_to_vec())
        })
        .collect()
}

/// [`cut`] of a stored Kafka batch, decoded as `b`.
fn cut_kafka(b: &RecordBatch, runs: &[Range<u32>]) -> Result<Vec<Vec<u8>>> {
    let (h, records) = kafka_records_of(&b.kafka_batch)?;
    let fields = stored_header(&b.encode_to_vec())
        .ok_or_else(|| Error::corrupt("no origin cluster"))?
        .fields;
    runs.iter()
        .map(|run| {
            let part = records
                .get(run.start as usize..run.end as usize)
                .ok_or_else(|| {
                    Error::corrupt(format!(
                        "no records {run:?} in a batch of {}",
                        records.len()
                    ))
                })?;
            let at = b.base_offset + u64::from(run.start);
            let body = kafka_body(kafka_batch::reencode(&h, part, at as i64));
            Ok(stored_value(
                &body,
                &ServerFields {
                    base_offset: at,
                    origin_base_offset: b.origin_base_offset + u64::from(run.start),
                    ..fields
                },
            ))
        })
        .collect()
}

/// Decodes a stored batch; one that does not decode is corrupt.
fn decode_stored(stored: impl bytes::Buf) -> Result<RecordBatch> {
    RecordBatch::decode(stored).map_err(|e| Error::corrupt(e.to_string()))
}

/// Latest record timestamp of the stream's type; records without one take the append time.
pub fn max_timestamp(records: &[Record], append_time_ms: i64, t: TimestampType) -> i64 {
    match t {
        TimestampType::LogAppendTime => append_time_ms,
        TimestampType::CreateTime => records
            .iter()
            .map(|r| r.timestamp_ms.unwrap_or(append_time_ms))
            .max()
            .unwrap_or(append_time_ms),
    }
}

/// Offset of the first record of a stored batch whose timestamp (of the batch's type) is
/// at or after `t`, or `None` when every record is older.
pub fn first_at_or_after(stored: &[u8], t: i64) -> Result<Option<u64>> {
    Ok(first_record_at_or_after(stored, t)?.map(|(offset, _)| offset))
}

/// [`first_at_or_after`], with that record's timestamp.
pub fn first_record_at_or_after(stored: &[u8], t: i64) -> Result<Option<(u64, i64)>> {
    let b = decode_stored(stored)?;
    if b.timestamp_type == v1::TimestampType::LogAppendTime as i32 {
        return Ok((b.append_time_ms >= t).then_some((b.base_offset, b.append_time_ms)));
    }
    if kafka_part(stored).is_some() {
        let (h, records) = kafka_records_of(&b.kafka_batch)?;
        return Ok(records
            .iter()
            .map(|r| h.base_timestamp.saturating_add(r.timestamp_delta))
            .enumerate()
            .find(|&(_, ts)| ts >= t)
            .map(|(i, ts)| (b.base_offset + i as u64, ts)));
    }
    Ok(b.records
        .iter()
        .map(|r| r.timestamp_ms.unwrap_or(b.append_time_ms))
        .enumerate()
        .find(|&(_, ts)| ts >= t)
        .map(|(i, ts)| (b.base_offset + i as u64, ts)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_proto::v1::Header;
    use tributary_proto::wire;

    /// A record as a client before `optional` sends it: an empty key or value is left out,
    /// so it is null.
    fn record(key: &str, value: &str) -> Record {
        let field = |s: &str| (!s.is_empty()).then(|| Bytes::copy_from_slice(s.as_bytes()));
        Record {
            key: field(key),
            value: field(value),
            headers: vec![Header {
                key: "h".into(),
                value: Some(Bytes::from_static(b"1")),
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
            timestamp_type: TimestampType::CreateTime,
            origin_incarnation: 3,
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
        assert_eq!(back.origin_incarnation, 3);
        assert_eq!(stored_header(&stored).map(|h| h.fields), Some(f));
        assert_eq!(producer_part(&stored).as_deref(), Some(wire.as_ref()));
    }

    #[test]
    fn batches_stored_before_incarnations_read_as_incarnation_0() {
        // Fields 8 to 12 only, as stored before field 13 existed.
        let old = RecordBatch {
            records: vec![record("k", "v")],
            base_offset: 4,
            append_time_ms: 9,
            origin_cluster: Bytes::from_static(&[2; 16]),
            origin_base_offset: 4,
            timestamp_type: v1::TimestampType::CreateTime as i32,
            origin_incarnation: 0,
            kafka_batch: Bytes::new(),
        }
        .encode_to_vec();
        assert!(
            !walk::fields(&old).any(|f| f.is_ok_and(|f| f.number == ORIGIN_INCARNATION_FIELD)),
            "proto3 leaves a zero field out"
        );
        let h = stored_header(&old).unwrap();
        assert_eq!(
            (h.fields.origin_incarnation, h.fields.origin_base_offset),
            (0, 4)
        );
    }

    #[test]
    fn decoded_payloads_slice_the_request_buffer() {
        let wire = encoded(vec![record("key", "a-long-enough-value")]);
        let p = validate(wire.clone(), 100).unwrap();
        let range = wire.as_ptr() as usize..wire.as_ptr() as usize + wire.len();
        assert!(
            range.contains(&(p.records[0].value.as_ref().unwrap().as_ptr() as usize)),
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
        let set = RecordBatch {
            records: vec![record("k", "v")],
            origin_incarnation: 1,
            ..Default::default()
        };
        let e = err(set.encode_to_vec().into(), 10);
        assert!(
            e.starts_with("batch.origin_incarnation: is assigned by the server"),
            "{e}"
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
        assert!(e.starts_with("batch.records[1].key: is null"), "{e}");
    }

    /// `Record` as it was before keys, values and header values were `optional`.
    #[derive(Clone, PartialEq, prost::Message)]
    struct OldRecord {
        #[prost(bytes = "bytes", tag = "1")]
        key: Bytes,
        #[prost(bytes = "bytes", tag = "2")]
        value: Bytes,
        #[prost(message, repeated, tag = "3")]
        headers: Vec<OldHeader>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    struct OldHeader {
        #[prost(string, tag = "1")]
        key: String,
        #[prost(bytes = "bytes", tag = "2")]
        value: Bytes,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    struct OldBatch {
        #[prost(message, repeated, tag = "1")]
        records: Vec<OldRecord>,
    }

    fn old(key: &str, value: &str) -> OldRecord {
        OldRecord {
            key: Bytes::copy_from_slice(key.as_bytes()),
            value: Bytes::copy_from_slice(value.as_bytes()),
            headers: vec![OldHeader {
                key: "h".into(),
                value: Bytes::new(),
            }],
        }
    }

    fn stored(body: &[u8]) -> Bytes {
        let f = ServerFields {
            base_offset: 0,
            append_time_ms: 1,
            origin_cluster: [1; 16],
            origin_base_offset: 0,
            timestamp_type: TimestampType::CreateTime,
            origin_incarnation: 1,
        };
        Bytes::from(stored_value(body, &f))
    }

    fn keys(stored: &Bytes) -> Vec<(Option<Vec<u8>>, bool)> {
        let mut seen = Vec::new();
        for_each_key(stored, |k, t| seen.push((k.map(<[u8]>::to_vec), t))).unwrap();
        seen
    }

    #[test]
    fn null_and_empty_differ_for_keys_values_and_header_values() {
        let (null, empty) = (None, Some(Bytes::new()));
        let header = |value| Header {
            key: "h".into(),
            value,
        };
        let records = vec![
            Record {
                key: empty.clone(),
                value: empty.clone(),
                headers: vec![header(null.clone()), header(empty.clone())],
                timestamp_ms: None,
            },
            Record {
                key: empty.clone(),
                value: null.clone(),
                headers: Vec::new(),
                timestamp_ms: None,
            },
            Record {
                key: null.clone(),
                value: empty.clone(),
                headers: Vec::new(),
                timestamp_ms: None,
            },
        ];
        let p = validate(encoded(records.clone()), 2).unwrap();
        assert_eq!(p.records, records, "presence survives the wire");
        assert_eq!(
            p.records.iter().map(record_size).sum::<usize>(),
            2,
            "the header keys"
        );
        let e = check_keyed(&p, true).unwrap_err().to_string();
        assert!(e.starts_with("batch.records[2].key: is null"), "{e}");
        let keyed = validate(encoded(records[..2].to_vec()), 2).unwrap();
        check_keyed(&keyed, true).expect("an empty key is a key");
        assert_eq!(
            keys(&stored(&keyed.encoded)),
            vec![(Some(vec![]), false), (Some(vec![]), true)],
            "an empty value is a value; a null one a tombstone"
        );
    }

    #[test]
    fn batches_encoded_before_optional_read_and_compact_as_before() {
        let body = OldBatch {
            records: vec![old("k", "v"), old("k", ""), old("", "w"), old("", "")],
        }
        .encode_to_vec();
        let p = validate(body.into(), 100).unwrap();
        assert_eq!(
            p.records
                .iter()
                .map(|r| (r.key.clone(), r.value.clone()))
                .collect::<Vec<_>>(),
            vec![
                (Some(Bytes::from("k")), Some(Bytes::from("v"))),
                (Some(Bytes::from("k")), None),
                (None, Some(Bytes::from("w"))),
                (None, None),
            ],
            "an empty field was left out, so it reads as null"
        );
        assert!(p.records.iter().all(|r| r.headers[0].value.is_none()));
        assert!(check_keyed(&p, true).is_err(), "unkeyed as before");
        assert_eq!(
            keys(&stored(&p.encoded)),
            vec![
                (Some(b"k".to_vec()), false),
                (Some(b"k".to_vec()), true),
                (None, false),
                (None, true),
            ],
            "an old empty value is still a tombstone, an old empty key still unkeyed"
        );
        // What an old client reads back of a new record: null and empty are both empty.
        let new = encoded(vec![Record {
            key: Some(Bytes::new()),
            value: None,
            headers: Vec::new(),
            timestamp_ms: None,
        }]);
        let back = OldBatch::decode(new).unwrap();
        assert_eq!(
            (back.records[0].key.len(), back.records[0].value.len()),
            (0, 0)
        );
    }

    #[test]
    #[allow(clippy::single_range_in_vec_init)] // one run is a valid cut
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
            timestamp_type: TimestampType::CreateTime,
            origin_incarnation: 5,
        };
        let stored = Bytes::from(stored_value(&p.encoded, &f));
        let mut seen = Vec::new();
        let n = for_each_key(&stored, |k, t| seen.push((k.map(<[u8]>::to_vec), t))).unwrap();
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
        let cuts = cut(&stored, 10, &[0..1, 2..4]).unwrap();
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
        assert_eq!(second.origin_incarnation, 5);
        assert_eq!(
            RecordBatch::decode(cuts[0].as_slice()).unwrap().records,
            records[..1]
        );
        assert!(
            cut(&stored, 11, &[0..1, 2..3]).is_err(),
            "a batch cut at the wrong offset"
        );
        assert!(cut(&stored, 10, &[0..1, 3..5]).is_err());
    }

    #[test]
    fn every_walk_skips_an_unknown_group_as_decoding_does() {
        // Field 7, a group holding field 1 (a varint) and an empty group (field 8).
        let group = [0x3b, 0x08, 0x01, 0x43, 0x44, 0x3c];
        let mut timed = record("b", "2");
        timed.timestamp_ms = Some(40);
        // The second record carries the group after its own fields.
        let second = [timed.encode_to_vec(), group.to_vec()].concat();
        let first = record("a", "1").encode_to_vec();
        let body = [
            &group[..],
            &[0x0a, first.len() as u8],
            &first,
            &[0x0a, second.len() as u8],
            &second,
            &group,
        ]
        .concat();
        let f = ServerFields {
            base_offset: 5,
            append_time_ms: 30,
            origin_cluster: [3; 16],
            origin_base_offset: 9,
            timestamp_type: TimestampType::CreateTime,
            origin_incarnation: u32::MAX,
        };
        let stored = stored_value(&body, &f);
        let decoded = RecordBatch::decode(stored.as_slice()).unwrap();
        assert_eq!(decoded.records, vec![record("a", "1"), timed]);

        assert_eq!(
            count_elements(&stored),
            Some(ElementCount {
                records: 2,
                headers: 2
            })
        );
        assert_eq!(wire::record_count(&stored), 2);
        assert_eq!(
            stored_header(&stored),
            Some(StoredHeader {
                records: 2,
                fields: f,
                max_timestamp_ms: 40
            })
        );
        assert_eq!(origin_of(&stored), Some([3; 16]));
        // The groups are the producer's: they stay with its part, and with a cut-off head.
        let part = producer_part(&stored).unwrap();
        assert_eq!(part, body);
        let tail = without_first_records(&part, 1).unwrap();
        assert_eq!(
            tail,
            [&group[..], &[0x0a, second.len() as u8], &second, &group].concat()
        );
        assert_eq!(
            RecordBatch::decode(tail.as_slice()).unwrap().records,
            decoded.records[1..]
        );
    }

    #[test]
    fn elements_are_counted_without_decoding() {
        let mut two = record("k", "v");
        two.headers.push(two.headers[0].clone());
        let wire = encoded(vec![record("a", "b"), two, record("", "")]);
        assert_eq!(
            count_elements(&wire),
            Some(ElementCount {
                records: 3,
                headers: 4
            })
        );
        assert_eq!(count_elements(&[]), Some(ElementCount::default()));
        // A length running past the end, a record that is not length-delimited, a group.
        // A group skipped whole, as prost skips unknown ones.
        let group = [&[0x3b, 0x0a, 0x00, 0x3c][..], &wire].concat();
        assert_eq!(count_elements(&group).map(|n| n.records), Some(3));
        assert!(RecordBatch::decode(group.as_slice()).is_ok());
        // Past the end, a record not length-delimited, an unclosed group, a stray end.
        for broken in [
            &[0x0a, 0x05, 0x00][..],
            &[0x08, 0x01],
            &[0x0b],
            &[0x0c],
            &[0x0a, 0x01, 0x80],
        ] {
            assert_eq!(count_elements(broken), None, "{broken:02x?}");
        }
    }

    #[test]
    fn batches_past_the_element_limits_are_refused_naming_the_limit() {
        let empty_records = Bytes::from([0x0a, 0x00].repeat(MAX_RECORDS_PER_BATCH + 1));
        let e = validate(empty_records, 10).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "batch.records: {} records in one request; the limit is {MAX_RECORDS_PER_BATCH}",
                MAX_RECORDS_PER_BATCH + 1
            )
        );
        let at_limit = Bytes::from([0x0a, 0x00].repeat(MAX_RECORDS_PER_BATCH));
        assert_eq!(
            validate(at_limit, 10).unwrap().records.len(),
            MAX_RECORDS_PER_BATCH
        );

        let headers = [0x1a, 0x00].repeat(MAX_HEADERS_PER_BATCH + 1);
        let mut record = vec![0x0a];
        let mut len = headers.len();
        while len >= 0x80 {
            record.push(len as u8 | 0x80);
            len >>= 7;
        }
        record.push(len as u8);
        record.extend_from_slice(&headers);
        let e = validate(record.into(), 10).unwrap_err().to_string();
        assert!(
            e.starts_with("batch.records.headers: 1000001 headers in one request; the limit"),
            "{e}"
        );
    }

    #[test]
    fn max_timestamp_follows_the_timestamp_type() {
        let mut a = record("", "");
        a.timestamp_ms = Some(5);
        let c = TimestampType::CreateTime;
        assert_eq!(max_timestamp(&[a.clone(), record("", "")], 3, c), 5);
        assert_eq!(max_timestamp(&[a.clone(), record("", "")], 9, c), 9);
        assert_eq!(max_timestamp(&[a], 3, TimestampType::LogAppendTime), 3);
    }

    #[test]
    fn first_record_at_or_after_a_time() {
        let mut rs = vec![record("", ""), record("", ""), record("", "")];
        rs[0].timestamp_ms = Some(10);
        rs[1].timestamp_ms = Some(30);
        rs[2].timestamp_ms = Some(20);
        let p = validate(encoded(rs), 100).unwrap();
        let f = |t| ServerFields {
            base_offset: 100,
            append_time_ms: 50,
            origin_cluster: [0; 16],
            origin_base_offset: 100,
            timestamp_type: t,
            origin_incarnation: 1,
        };
        let create = stored_value(&p.encoded, &f(TimestampType::CreateTime));
        assert_eq!(first_at_or_after(&create, 5).unwrap(), Some(100));
        assert_eq!(first_at_or_after(&create, 15).unwrap(), Some(101));
        assert_eq!(first_at_or_after(&create, 31).unwrap(), None);
        let append = stored_value(&p.encoded, &f(TimestampType::LogAppendTime));
        assert_eq!(first_at_or_after(&append, 31).unwrap(), Some(100));
        assert_eq!(first_at_or_after(&append, 51).unwrap(), None);
    }

    /// A Kafka batch (null key, null value, an empty key, timestamps 10, 30, 20) as the
    /// Kafka door stores it at offset 100.
    fn stored_kafka(t: TimestampType) -> Bytes {
        use crate::kafka_batch::{Draft, encode, finish};
        let h: &[(&[u8], Option<&[u8]>)] = &[(b"h", None), (b"h", Some(b"2"))];
        let d = |ts, key, value| Draft {
            timestamp_ms: ts,
            key,
            value,
            headers: h,
        };
        let drafts = [
            d(10, Some(&b"a"[..]), Some(&b"1"[..])),
            d(30, Some(&b"a"[..]), None),
            d(20, Some(&b""[..]), Some(&b""[..])),
        ];
        let mut k = encode(0, TimestampType::CreateTime, &drafts).to_vec();
        finish(&mut k, 0, t, 50, 30);
        let f = ServerFields {
            base_offset: 100,
            append_time_ms: 50,
            origin_cluster: [4; 16],
            origin_base_offset: 100,
            timestamp_type: t,
            origin_incarnation: 2,
        };
        Bytes::from(stored_value(&kafka_body(k), &f))
    }

    #[test]
    fn a_stored_kafka_batch_reads_as_one_stored_batch() {
        let stored = stored_kafka(TimestampType::CreateTime);
        let h = stored_header(&stored).unwrap();
        assert_eq!((h.records, h.max_timestamp_ms), (3, 30));
        assert_eq!(
            (h.fields.base_offset, h.fields.origin_incarnation),
            (100, 2)
        );
        let kafka = as_kafka(&stored).unwrap();
        let header = BatchHeader::parse(&kafka).unwrap();
        assert_eq!(header.base_offset, 100, "the base offset is the stored one");
        assert!(
            kafka_batch::validate(&kafka, &Default::default()).is_ok(),
            "CRC intact"
        );

        let mut keys = Vec::new();
        assert_eq!(
            for_each_key(&stored, |k, t| keys.push((k.map(<[u8]>::to_vec), t))).unwrap(),
            3
        );
        assert_eq!(
            keys,
            [
                (Some(b"a".to_vec()), false),
                (Some(b"a".to_vec()), true),
                (Some(vec![]), false)
            ]
        );
        assert_eq!(first_at_or_after(&stored, 15).unwrap(), Some(101));
        assert_eq!(first_at_or_after(&stored, 31).unwrap(), None);
        let append = stored_kafka(TimestampType::LogAppendTime);
        assert_eq!(stored_header(&append).unwrap().max_timestamp_ms, 50);
        assert_eq!(first_at_or_after(&append, 40).unwrap(), Some(100));

        let grpc = RecordBatch::decode(as_records(&stored).unwrap()).unwrap();
        assert!(grpc.kafka_batch.is_empty());
        assert_eq!(grpc.base_offset, 100);
        let r: Vec<_> = grpc
            .records
            .iter()
            .map(|r| (r.key.as_deref(), r.value.as_deref(), r.timestamp_ms))
            .collect();
        assert_eq!(
            r,
            [
                (Some(&b"a"[..]), Some(&b"1"[..]), Some(10)),
                (Some(b"a"), None, Some(30)),
                (Some(b""), Some(b""), Some(20))
            ],
            "a tombstone's null value stays null, an empty key and value empty"
        );
        assert_eq!(
            grpc.records[0].headers.len(),
            2,
            "duplicate header keys kept"
        );
    }

    #[test]
    #[allow(clippy::single_range_in_vec_init)] // one run is a valid cut
    fn a_stored_kafka_batch_is_cut_into_kafka_batches() {
        let stored = stored_kafka(TimestampType::CreateTime);
        let cuts = cut(&stored, 100, &[1..3]).unwrap();
        let cut = Bytes::from(cuts[0].clone());
        let h = stored_header(&cut).unwrap();
        assert_eq!(
            (h.records, h.fields.base_offset, h.fields.origin_base_offset),
            (2, 101, 101)
        );
        let kafka = as_kafka(&cut).unwrap();
        let checked = kafka_batch::validate(&kafka, &Default::default()).unwrap();
        assert_eq!(checked.header.base_offset, 101);
        assert_eq!(checked.records[0].value, None, "the tombstone stays null");
        assert_eq!(
            checked.header.base_timestamp + checked.records[1].timestamp_delta,
            20
        );

        // A replica that already holds the first record.
        let part = producer_part(&stored).unwrap();
        let tail = without_first_records(&part, 1).unwrap();
        let mut f = h.fields;
        f.base_offset = 7;
        let replica = Bytes::from(stored_value(&tail, &f));
        let checked =
            kafka_batch::validate(&as_kafka(&replica).unwrap(), &Default::default()).unwrap();
        assert_eq!((checked.header.base_offset, checked.records.len()), (7, 2));
    }

    #[test]
    fn a_produced_batch_may_not_carry_a_kafka_batch() {
        let body = kafka_body(vec![1, 2, 3]);
        let e = validate(body.into(), 100).unwrap_err().to_string();
        assert!(
            e.starts_with("batch.kafka_batch: is set by the Kafka door"),
            "{e}"
        );
        let mut late = encoded(vec![record("k", "v")]).to_vec();
        late.extend_from_slice(&kafka_body(vec![1]));
        assert!(validate(late.into(), 100).is_err());
    }
}

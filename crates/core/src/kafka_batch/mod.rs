//! Kafka's record batch (magic 2), the unit Kafka clients produce and fetch: its 61-byte
//! header, its records (compressed as a whole), the checks a broker makes before storing
//! one, and the encoding of records as a batch. The Kafka door validates produced batches
//! with it and the gRPC door reads Kafka-produced batches as records through it, so a
//! record is the same on both protocols (design §9).
//!
//! Kafka input is hostile input: every length is checked against the bytes left before
//! anything is sized by it, decompression stops at a bound the caller sets, and headers stay
//! an ordered list in which a key may repeat (the `kafka-protocol` crate's decoder keeps
//! them in a map, which is why this codec exists).

use std::io::Read;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::encoding::{decode_varint, encode_varint, encoded_len_varint};

use crate::timestamp::TimestampType;
use crate::{Error, Result};

/// Bytes before the first record: base offset 8, length 4, leader epoch 4, magic 1, CRC 4,
/// attributes 2, last offset delta 4, base and max timestamp 8 + 8, producer id 8, producer
/// epoch 2, base sequence 4, record count 4.
pub const HEADER_LEN: usize = 61;
/// The bytes `batchLength` does not count: the base offset and the length itself.
const LOG_OVERHEAD: usize = 12;
const LEADER_EPOCH_AT: usize = 12;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
/// The CRC covers everything from the attributes to the end of the batch.
const ATTRIBUTES_AT: usize = 21;
const MAX_TIMESTAMP_AT: usize = 35;

const COMPRESSION_MASK: i16 = 0x07;
const LOG_APPEND_TIME_FLAG: i16 = 0x08;
const TRANSACTIONAL_FLAG: i16 = 0x10;
const CONTROL_FLAG: i16 = 0x20;

/// snappy-java's stream header, which the Java client writes before snappy blocks.
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const XERIAL_HEADER_LEN: usize = 16;

/// The largest zstd window a batch may ask for (32 MiB): a frame declaring a larger window
/// would make the decoder allocate it before producing a byte.
const ZSTD_WINDOW_LOG_MAX: u32 = 25;

/// A batch's codec, the low three bits of its attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    fn from_attributes(attributes: i16) -> Result<Self> {
        Ok(match attributes & COMPRESSION_MASK {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            codec => {
                return Err(Error::UnsupportedCompression {
                    field: "batch.attributes".into(),
                    codec: codec as u8,
                });
            }
        })
    }
}

/// The fixed fields of a batch, as its producer (or the broker) wrote them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    /// Reads the header of the batch `b` starts with; `b` may hold more after it.
    pub fn parse(mut b: &[u8]) -> Result<Self> {
        if b.len() < HEADER_LEN {
            return Err(invalid(format!(
                "{} bytes is shorter than a record batch header ({HEADER_LEN} bytes)",
                b.len()
            )));
        }
        Ok(BatchHeader {
            base_offset: b.get_i64(),
            batch_length: b.get_i32(),
            partition_leader_epoch: b.get_i32(),
            magic: b.get_i8(),
            crc: b.get_u32(),
            attributes: b.get_i16(),
            last_offset_delta: b.get_i32(),
            base_timestamp: b.get_i64(),
            max_timestamp: b.get_i64(),
            producer_id: b.get_i64(),
            producer_epoch: b.get_i16(),
            base_sequence: b.get_i32(),
            records_count: b.get_i32(),
        })
    }

    /// The codec the records are compressed with; an unknown one is refused.
    pub fn compression(&self) -> Result<Compression> {
        Compression::from_attributes(self.attributes)
    }

    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & LOG_APPEND_TIME_FLAG != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_FLAG != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_FLAG != 0
    }

    /// Whole size of the batch on the wire, header included.
    pub fn size(&self) -> usize {
        LOG_OVERHEAD + self.batch_length.max(0) as usize
    }
}

/// One header of a record. The key is UTF-8 (Kafka's is a string); the value may be null.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub key: Bytes,
    pub value: Option<Bytes>,
}

/// One record of a batch. Null and empty differ for the key, the value and header values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<Header>,
}

impl Record {
    /// What the record counts against a stream's `max_message_bytes`, as a gRPC record
    /// does: key, value and headers.
    pub fn size(&self) -> usize {
        let len = |b: &Option<Bytes>| b.as_ref().map_or(0, Bytes::len);
        len(&self.key)
            + len(&self.value)
            + self
                .headers
                .iter()
                .map(|h| h.key.len() + len(&h.value))
                .sum::<usize>()
    }
}

/// What a batch may hold; the caller derives them from the stream and the server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The stream's `max_message_bytes`, per record.
    pub max_record_bytes: usize,
    /// The most the records may take once decompressed.
    pub max_decompressed_bytes: usize,
    pub max_records: usize,
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_record_bytes: usize::MAX,
            max_decompressed_bytes: 64 << 20,
            max_records: crate::limits::MAX_RECORDS_PER_BATCH,
            max_headers: crate::limits::MAX_HEADERS_PER_BATCH,
        }
    }
}

/// A batch that passed [`validate`], with its records decoded.
#[derive(Debug, Clone)]
pub struct Checked {
    pub header: BatchHeader,
    pub records: Vec<Record>,
    /// The largest record timestamp (the header's `max_timestamp` may be wrong or stale).
    pub max_timestamp: i64,
}

impl Checked {
    /// Refuses null keys on a compacted stream: no later record could supersede them.
    pub fn check_keyed(&self, compact: bool) -> Result<()> {
        match self.records.iter().position(|r| r.key.is_none()) {
            Some(i) if compact => Err(Error::invalid(
                &format!("batch.records[{i}].key"),
                "is null; the stream is compacted (`compact`), so every record needs a key".into(),
            )),
            _ => Ok(()),
        }
    }
}

/// Checks one produced batch as a Kafka broker does before it stores it: the length, magic
/// 2, the CRC, a known codec, no control or transactional flag, offset deltas 0, 1, 2, …
/// matching the count, non-negative timestamps, UTF-8 header keys, the limits, and nothing
/// after the last record. `batch` must hold exactly one batch.
pub fn validate(batch: &Bytes, limits: &Limits) -> Result<Checked> {
    let header = BatchHeader::parse(batch)?;
    if header.magic != 2 {
        return Err(invalid(format!(
            "magic {}: only record batches v2 (Kafka 0.11 and later) are accepted",
            header.magic
        )));
    }
    if header.batch_length < 0 || header.size() != batch.len() {
        return Err(invalid(format!(
            "batchLength {} does not match the {} bytes sent (one batch per partition)",
            header.batch_length,
            batch.len()
        )));
    }
    let actual = crc32c::crc32c(&batch[ATTRIBUTES_AT..]);
    if actual != header.crc {
        return Err(Error::Checksum {
            field: "batch.crc".into(),
            expected: header.crc,
            actual,
        });
    }
    if header.is_control() {
        return Err(invalid(
            "control batches are written by brokers, not producers".into(),
        ));
    }
    if header.is_transactional() {
        return Err(invalid("transactional batches are not supported".into()));
    }
    // An idempotent producer's batch (Kafka's LogValidator checks the sequence too).
    if header.producer_id >= 0 && (header.producer_epoch < 0 || header.base_sequence < 0) {
        return Err(invalid(format!(
            "producer {} sent epoch {} and base sequence {}: both must be 0 or more",
            header.producer_id, header.producer_epoch, header.base_sequence
        )));
    }
    let count = header.records_count;
    if count <= 0 {
        return Err(invalid("the batch has no records".into()));
    }
    crate::limits::check_count(
        "batch.records",
        "records",
        count as usize,
        limits.max_records,
    )?;
    if header.last_offset_delta != count - 1 {
        return Err(invalid(format!(
            "lastOffsetDelta {} does not match {count} records",
            header.last_offset_delta
        )));
    }
    let records = decode_records(batch, &header, limits)?;
    let mut max_timestamp = i64::MIN;
    let mut headers = 0usize;
    for (i, r) in records.iter().enumerate() {
        if r.offset_delta != i as i32 {
            return Err(Error::invalid(
                &format!("batch.records[{i}].offsetDelta"),
                format!("is {}; offset deltas must run 0, 1, 2, …", r.offset_delta),
            ));
        }
        let ts = header.base_timestamp.checked_add(r.timestamp_delta);
        match ts {
            Some(ts) if ts >= 0 => max_timestamp = max_timestamp.max(ts),
            _ => {
                return Err(Error::invalid(
                    &format!("batch.records[{i}].timestampDelta"),
                    "makes the record's timestamp negative".into(),
                ));
            }
        }
        let size = r.size();
        if size > limits.max_record_bytes {
            return Err(Error::TooLarge {
                field: format!("batch.records[{i}]"),
                size,
                limit: limits.max_record_bytes,
            });
        }
        if let Some(h) = r
            .headers
            .iter()
            .position(|h| std::str::from_utf8(&h.key).is_err())
        {
            return Err(Error::invalid(
                &format!("batch.records[{i}].headers[{h}].key"),
                "is not UTF-8".into(),
            ));
        }
        headers += r.headers.len();
    }
    crate::limits::check_count(
        "batch.records.headers",
        "headers",
        headers,
        limits.max_headers,
    )?;
    Ok(Checked {
        header,
        records,
        max_timestamp,
    })
}

/// Decodes the records of a batch whose header was read: decompressed within
/// `limits.max_decompressed_bytes`, exactly `records_count` of them and no byte after.
pub fn decode_records(batch: &Bytes, header: &BatchHeader, limits: &Limits) -> Result<Vec<Record>> {
    let end = header.size().min(batch.len());
    let body = batch.slice(HEADER_LEN.min(end)..end);
    let body = match header.compression()? {
        Compression::None => body,
        codec => Bytes::from(decompress(codec, &body, limits.max_decompressed_bytes)?),
    };
    let count = usize::try_from(header.records_count).unwrap_or(0);
    // A record takes at least 7 bytes: the count is trusted only that far.
    let mut records = Vec::with_capacity(count.min(body.len() / 7));
    let mut rest = body;
    for i in 0..count {
        records.push(
            decode_record(&mut rest)
                .map_err(|m| Error::invalid(&format!("batch.records[{i}]"), m))?,
        );
    }
    if !rest.is_empty() {
        return Err(invalid(format!(
            "{} bytes follow the last of the {count} records the header counts",
            rest.len()
        )));
    }
    Ok(records)
}

/// Reads one record off `rest`; keys and values slice it without copying.
fn decode_record(rest: &mut Bytes) -> std::result::Result<Record, String> {
    let length = varint32(rest, "length")?;
    let length = usize::try_from(length).map_err(|_| format!("length {length} is negative"))?;
    if length > rest.len() {
        return Err(format!(
            "length {length} runs past the batch's {} bytes",
            rest.len()
        ));
    }
    let mut r = rest.split_to(length);
    let _attributes = take_u8(&mut r, "attributes")?;
    let timestamp_delta = varint64(&mut r, "timestampDelta")?;
    let offset_delta = varint32(&mut r, "offsetDelta")?;
    let key = nullable_bytes(&mut r, "key")?;
    let value = nullable_bytes(&mut r, "value")?;
    let n = varint32(&mut r, "headers")?;
    let n = usize::try_from(n).map_err(|_| format!("header count {n} is negative"))?;
    // A header takes at least 2 bytes.
    if n > r.len() / 2 {
        return Err(format!(
            "{n} headers cannot fit in the record's {} bytes",
            r.len()
        ));
    }
    let mut headers = Vec::with_capacity(n);
    for h in 0..n {
        let key = nullable_bytes(&mut r, "header key")?
            .ok_or_else(|| format!("headers[{h}].key is null"))?;
        let value = nullable_bytes(&mut r, "header value")?;
        headers.push(Header { key, value });
    }
    if !r.is_empty() {
        return Err(format!("{} bytes follow the record's last header", r.len()));
    }
    Ok(Record {
        timestamp_delta,
        offset_delta,
        key,
        value,
        headers,
    })
}

fn take_u8(b: &mut Bytes, what: &str) -> std::result::Result<u8, String> {
    if b.is_empty() {
        return Err(format!("ends before its {what}"));
    }
    Ok(b.get_u8())
}

fn varint64(b: &mut Bytes, what: &str) -> std::result::Result<i64, String> {
    let v = decode_varint(b).map_err(|_| format!("{what} is not a valid varint"))?;
    Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
}

fn varint32(b: &mut Bytes, what: &str) -> std::result::Result<i32, String> {
    let v = varint64(b, what)?;
    i32::try_from(v).map_err(|_| format!("{what} {v} does not fit 32 bits"))
}

fn nullable_bytes(b: &mut Bytes, what: &str) -> std::result::Result<Option<Bytes>, String> {
    match varint32(b, what)? {
        -1 => Ok(None),
        n if n < -1 => Err(format!("{what} length {n} is negative")),
        n if n as usize > b.len() => Err(format!(
            "{what} length {n} runs past the record's {} bytes",
            b.len()
        )),
        n => Ok(Some(b.split_to(n as usize))),
    }
}

/// Decompresses a batch's records, refusing to produce more than `limit` bytes.
fn decompress(codec: Compression, input: &[u8], limit: usize) -> Result<Vec<u8>> {
    let over = || {
        invalid(format!(
            "the records decompress to more than {limit} bytes, the most one batch may hold"
        ))
    };
    let failed =
        |e: &dyn std::fmt::Display| invalid(format!("{codec:?} records do not decompress: {e}"));
    let mut out = Vec::new();
    let cap = limit as u64 + 1;
    match codec {
        Compression::None => out.extend_from_slice(input),
        Compression::Gzip => {
            flate2::read::GzDecoder::new(input)
                .take(cap)
                .read_to_end(&mut out)
                .map_err(|e| failed(&e))?;
        }
        Compression::Lz4 => {
            lz4_flex::frame::FrameDecoder::new(input)
                .take(cap)
                .read_to_end(&mut out)
                .map_err(|e| failed(&e))?;
        }
        Compression::Zstd => {
            let mut d = zstd::stream::read::Decoder::with_buffer(input).map_err(|e| failed(&e))?;
            d.window_log_max(ZSTD_WINDOW_LOG_MAX)
                .map_err(|e| failed(&e))?;
            d.take(cap).read_to_end(&mut out).map_err(|e| failed(&e))?;
        }
        Compression::Snappy => snappy(input, limit, &mut out).map_err(|e| failed(&e))?,
    }
    if out.len() > limit {
        return Err(over());
    }
    Ok(out)
}

/// Kafka's snappy: snappy-java's framing (a header, then length-prefixed raw blocks) from
/// the Java client, or one raw block from librdkafka. Each block's decompressed length is
/// read from its preamble and checked before it is allocated.
fn snappy(input: &[u8], limit: usize, out: &mut Vec<u8>) -> std::result::Result<(), String> {
    let block = |b: &[u8], out: &mut Vec<u8>| -> std::result::Result<(), String> {
        let n = snap::raw::decompress_len(b).map_err(|e| e.to_string())?;
        if out.len() + n > limit {
            // Report it as over the limit: `decompress` checks the length.
            out.resize(limit + 1, 0);
            return Ok(());
        }
        let at = out.len();
        out.resize(at + n, 0);
        snap::raw::Decoder::new()
            .decompress(b, &mut out[at..])
            .map_err(|e| e.to_string())?;
        Ok(())
    };
    if !input.starts_with(&XERIAL_MAGIC) {
        return block(input, out);
    }
    let mut rest = input
        .get(XERIAL_HEADER_LEN..)
        .ok_or("a truncated snappy-java header")?;
    while !rest.is_empty() {
        if rest.len() < 4 {
            return Err("a truncated snappy-java block length".into());
        }
        let n = rest.get_u32() as usize;
        if n > rest.len() {
            return Err(format!(
                "a snappy-java block of {n} bytes runs past the input"
            ));
        }
        let (b, after) = rest.split_at(n);
        block(b, out)?;
        if out.len() > limit {
            return Ok(());
        }
        rest = after;
    }
    Ok(())
}

/// Sets what the broker owns in a batch it is about to store: the base offset, no leader
/// epoch (Tributary reports none, so clients skip epoch validation), and under
/// `LogAppendTime` the append time as the max timestamp with the flag set. Otherwise the
/// max timestamp becomes `max_timestamp`, the records' true one. The CRC is recomputed
/// only if a field it covers changed.
pub fn finish(
    batch: &mut [u8],
    base_offset: i64,
    timestamp_type: TimestampType,
    append_time_ms: i64,
    max_timestamp: i64,
) {
    batch[..8].copy_from_slice(&base_offset.to_be_bytes());
    batch[LEADER_EPOCH_AT..MAGIC_AT].copy_from_slice(&(-1i32).to_be_bytes());
    let mut attributes = i16::from_be_bytes([batch[ATTRIBUTES_AT], batch[ATTRIBUTES_AT + 1]]);
    let max = match timestamp_type {
        TimestampType::LogAppendTime => {
            attributes |= LOG_APPEND_TIME_FLAG;
            append_time_ms
        }
        TimestampType::CreateTime => {
            attributes &= !LOG_APPEND_TIME_FLAG;
            max_timestamp
        }
    };
    batch[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    batch[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&max.to_be_bytes());
    let stored = u32::from_be_bytes(batch[CRC_AT..ATTRIBUTES_AT].try_into().unwrap());
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_AT..]);
    if crc != stored {
        batch[CRC_AT..ATTRIBUTES_AT].copy_from_slice(&crc.to_be_bytes());
    }
}

/// Records of a stored batch whose header is `header`, encoded again (uncompressed) as one
/// batch at `base_offset`, their timestamps and the batch's timestamp type kept (under
/// `LogAppendTime`, the append time the header carries): how key compaction and a replica
/// cut a run out of a stored Kafka batch.
pub fn reencode(header: &BatchHeader, records: &[Record], base_offset: i64) -> Vec<u8> {
    let headers: Vec<Vec<HeaderRef<'_>>> = records
        .iter()
        .map(|r| {
            r.headers
                .iter()
                .map(|h| (&h.key[..], h.value.as_deref()))
                .collect()
        })
        .collect();
    let drafts: Vec<Draft<'_>> = records
        .iter()
        .zip(&headers)
        .map(|(r, headers)| Draft {
            timestamp_ms: header.base_timestamp.saturating_add(r.timestamp_delta),
            key: r.key.as_deref(),
            value: r.value.as_deref(),
            headers,
        })
        .collect();
    let t = header.timestamp_type();
    let mut b = encode(base_offset, t, &drafts).to_vec();
    if t == TimestampType::LogAppendTime {
        finish(&mut b, base_offset, t, header.max_timestamp, 0);
    }
    b
}

/// A header to encode: its key and its value, which may be null.
pub type HeaderRef<'a> = (&'a [u8], Option<&'a [u8]>);

/// One record to encode: borrowed fields, with its absolute timestamp.
#[derive(Debug, Clone, Copy)]
pub struct Draft<'a> {
    pub timestamp_ms: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: &'a [HeaderRef<'a>],
}

/// Encodes records as one uncompressed batch at `base_offset`, with no producer id (the
/// form a broker serves records that were not produced as a Kafka batch).
pub fn encode(base_offset: i64, timestamp_type: TimestampType, records: &[Draft<'_>]) -> Bytes {
    let base_timestamp = records.iter().map(|r| r.timestamp_ms).min().unwrap_or(0);
    let max_timestamp = records.iter().map(|r| r.timestamp_ms).max().unwrap_or(0);
    let mut out = BytesMut::with_capacity(HEADER_LEN + records.len() * 16);
    out.put_i64(base_offset);
    out.put_i32(0); // the length, set below
    out.put_i32(-1);
    out.put_i8(2);
    out.put_u32(0); // the CRC, set below
    let attributes = match timestamp_type {
        TimestampType::LogAppendTime => LOG_APPEND_TIME_FLAG,
        TimestampType::CreateTime => 0,
    };
    out.put_i16(attributes);
    out.put_i32(records.len() as i32 - 1);
    out.put_i64(base_timestamp);
    out.put_i64(max_timestamp);
    out.put_i64(-1);
    out.put_i16(-1);
    out.put_i32(-1);
    out.put_i32(records.len() as i32);
    for (i, r) in records.iter().enumerate() {
        let body = record_body_len(r, base_timestamp, i);
        put_varint(&mut out, body as i64);
        out.put_i8(0);
        put_varint(&mut out, r.timestamp_ms - base_timestamp);
        put_varint(&mut out, i as i64);
        put_nullable(&mut out, r.key);
        put_nullable(&mut out, r.value);
        put_varint(&mut out, r.headers.len() as i64);
        for (k, v) in r.headers {
            put_nullable(&mut out, Some(k));
            put_nullable(&mut out, *v);
        }
    }
    let length = (out.len() - LOG_OVERHEAD) as i32;
    out[8..LEADER_EPOCH_AT].copy_from_slice(&length.to_be_bytes());
    let crc = crc32c::crc32c(&out[ATTRIBUTES_AT..]);
    out[CRC_AT..ATTRIBUTES_AT].copy_from_slice(&crc.to_be_bytes());
    out.freeze()
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn put_varint(out: &mut BytesMut, v: i64) {
    encode_varint(zigzag(v), out);
}

fn varint_len(v: i64) -> usize {
    encoded_len_varint(zigzag(v))
}

fn put_nullable(out: &mut BytesMut, b: Option<&[u8]>) {
    match b {
        None => put_varint(out, -1),
        Some(b) => {
            put_varint(out, b.len() as i64);
            out.put_slice(b);
        }
    }
}

fn nullable_len(b: Option<&[u8]>) -> usize {
    match b {
        None => varint_len(-1),
        Some(b) => varint_len(b.len() as i64) + b.len(),
    }
}

fn record_body_len(r: &Draft<'_>, base_timestamp: i64, i: usize) -> usize {
    1 + varint_len(r.timestamp_ms - base_timestamp)
        + varint_len(i as i64)
        + nullable_len(r.key)
        + nullable_len(r.value)
        + varint_len(r.headers.len() as i64)
        + r.headers
            .iter()
            .map(|(k, v)| nullable_len(Some(k)) + nullable_len(*v))
            .sum::<usize>()
}

fn invalid(message: String) -> Error {
    Error::invalid("batch", message)
}

#[cfg(test)]
mod tests;

//! The server's view of the two messages that carry record batches.
//!
//! A protobuf `bytes` field is encoded exactly like an embedded message field, so the server
//! can read `ProduceRequest.batch` and write `FetchResponse.batches` as opaque bytes while
//! clients see `RecordBatch` messages. The stored batch is the wire batch: it is decoded
//! once for validation and never re-encoded on the way in or out.

use bytes::Bytes;

/// Server-side `tributary.v1.ProduceRequest`, with `batch` left encoded.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProduceRequest {
    #[prost(string, tag = "1")]
    pub topic: String,
    #[prost(uint32, optional, tag = "2")]
    pub partition: Option<u32>,
    /// An encoded `tributary.v1.RecordBatch`.
    #[prost(bytes = "bytes", tag = "3")]
    pub batch: Bytes,
    #[prost(message, optional, tag = "4")]
    pub producer: Option<crate::v1::ProducerSequence>,
    #[prost(map = "uint32, int64", tag = "5")]
    pub expected_last_offsets: std::collections::HashMap<u32, i64>,
}

/// Server-side `tributary.v1.FetchResponse`, with each batch as stored bytes.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FetchResponse {
    /// Encoded `tributary.v1.RecordBatch`es.
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub batches: Vec<Bytes>,
    #[prost(uint64, tag = "2")]
    pub high_watermark: u64,
    #[prost(uint64, tag = "3")]
    pub log_start_offset: u64,
    #[prost(uint64, tag = "4")]
    pub next_offset: u64,
}

/// Server-side `tributary.v1.PartitionRecords`, with each batch as stored bytes.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PartitionRecords {
    #[prost(string, tag = "1")]
    pub topic: String,
    #[prost(uint32, tag = "2")]
    pub partition: u32,
    /// Encoded `tributary.v1.RecordBatch`es.
    #[prost(bytes = "bytes", repeated, tag = "3")]
    pub batches: Vec<Bytes>,
    #[prost(uint64, tag = "4")]
    pub high_watermark: u64,
    #[prost(uint64, tag = "5")]
    pub skipped_to: u64,
}

/// Server-side `tributary.v1.SubscribeResponse`, records as stored bytes.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SubscribeResponse {
    #[prost(oneof = "subscribe_response::Kind", tags = "1, 2, 3")]
    pub kind: Option<subscribe_response::Kind>,
}

pub mod subscribe_response {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Kind {
        #[prost(message, tag = "1")]
        Joined(crate::v1::Joined),
        #[prost(message, tag = "2")]
        Assignment(crate::v1::Assignment),
        #[prost(message, tag = "3")]
        Records(super::PartitionRecords),
    }
}

/// The wire services' codec: prost's, except that a message's whole length is reserved
/// before it is written. A 4 MiB fetch response is then copied into the frame once, not
/// into a buffer that doubles a dozen times from tonic's 8 KiB (each doubling a copy).
#[derive(Debug, Clone)]
pub struct Codec<T, U>(std::marker::PhantomData<(T, U)>);

impl<T, U> Default for Codec<T, U> {
    fn default() -> Self {
        Self(std::marker::PhantomData)
    }
}

impl<T, U> tonic::codec::Codec for Codec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = Encoder<T>;
    type Decoder = tonic_prost::ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        Encoder(std::marker::PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        tonic_prost::ProstDecoder::default()
    }
}

/// See [`Codec`].
#[derive(Debug, Clone)]
pub struct Encoder<T>(std::marker::PhantomData<T>);

impl<T: prost::Message> tonic::codec::Encoder for Encoder<T> {
    type Item = T;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: T,
        buf: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), Self::Error> {
        buf.reserve(item.encoded_len());
        // Encoding fails only for want of room, and the buffer was just given all it needs.
        item.encode(buf)
            .expect("a message encodes into the room reserved for it");
        Ok(())
    }
}

/// Records in an encoded `RecordBatch`: the occurrences of field 1, found by walking the
/// top-level framing ([`crate::walk`]) without decoding (or copying) any record. The server
/// counts what it serves this way; a stored batch was validated when it was produced.
/// Input that does not parse stops the count where it breaks.
pub fn record_count(buf: &[u8]) -> u64 {
    crate::walk::fields(buf)
        .map_while(Result::ok)
        .filter(|f| f.number == 1 && matches!(f.value, crate::walk::Value::Bytes(_)))
        .count() as u64
}

/// Decodes a `RecordBatch` with its records vector sized first (from [`record_count`]):
/// prost would otherwise grow it by doubling, moving every record decoded so far.
pub fn decode_batch(buf: Bytes) -> Result<crate::v1::RecordBatch, prost::DecodeError> {
    use prost::Message;
    let mut batch = crate::v1::RecordBatch::default();
    // At most one record per two bytes, so a hostile count cannot reserve more than that.
    batch.records.reserve_exact(record_count(&buf) as usize);
    batch.merge(buf)?;
    Ok(batch)
}

include!(concat!(env!("OUT_DIR"), "/wire/tributary.v1.Producer.rs"));
include!(concat!(env!("OUT_DIR"), "/wire/tributary.v1.Consumer.rs"));

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1;
    use prost::Message;

    fn batch() -> v1::RecordBatch {
        v1::RecordBatch {
            records: vec![v1::Record {
                key: Some(Bytes::from_static(b"k")),
                value: Some(Bytes::from_static(b"v")),
                headers: vec![v1::Header {
                    key: "h".into(),
                    value: Some(Bytes::from_static(b"x")),
                }],
                timestamp_ms: Some(7),
            }],
            base_offset: 42,
            ..Default::default()
        }
    }

    #[test]
    fn produce_request_batch_is_wire_identical_to_bytes() {
        let client = v1::ProduceRequest {
            topic: "/v/s:t".into(),
            partition: Some(2),
            batch: Some(batch()),
            ..Default::default()
        };
        let server = ProduceRequest::decode(client.encode_to_vec().as_slice()).unwrap();
        assert_eq!(server.topic, "/v/s:t");
        assert_eq!(server.partition, Some(2));
        assert_eq!(server.batch, batch().encode_to_vec());
    }

    #[test]
    fn fetch_response_bytes_decode_as_batches() {
        let server = FetchResponse {
            batches: vec![batch().encode_to_vec().into(), Bytes::new()],
            high_watermark: 43,
            log_start_offset: 1,
            next_offset: 43,
        };
        let client = v1::FetchResponse::decode(server.encode_to_vec().as_slice()).unwrap();
        assert_eq!(client.batches, vec![batch(), v1::RecordBatch::default()]);
        assert_eq!(
            (
                client.high_watermark,
                client.log_start_offset,
                client.next_offset
            ),
            (43, 1, 43)
        );
    }

    #[test]
    fn subscribe_records_decode_as_batches() {
        let server = SubscribeResponse {
            kind: Some(subscribe_response::Kind::Records(PartitionRecords {
                topic: "t".into(),
                partition: 3,
                batches: vec![batch().encode_to_vec().into()],
                high_watermark: 9,
                skipped_to: 0,
            })),
        };
        let client = v1::SubscribeResponse::decode(server.encode_to_vec().as_slice()).unwrap();
        let Some(v1::subscribe_response::Kind::Records(r)) = client.kind else {
            panic!("records expected");
        };
        assert_eq!(
            (r.topic.as_str(), r.partition, r.high_watermark),
            ("t", 3, 9)
        );
        assert_eq!(r.batches, vec![batch()]);
    }

    #[test]
    fn appended_fields_override_by_merge() {
        // The server appends base_offset to the stored encoding; protobuf merge semantics
        // make the appended value the one a client decodes.
        let mut stored = batch().encode_to_vec();
        v1::RecordBatch {
            base_offset: 1000,
            ..Default::default()
        }
        .encode(&mut stored)
        .unwrap();
        let decoded = v1::RecordBatch::decode(stored.as_slice()).unwrap();
        assert_eq!(decoded.base_offset, 1000);
        assert_eq!(decoded.records, batch().records);
    }

    #[test]
    fn record_count_walks_a_stored_batch() {
        let batch = v1::RecordBatch {
            records: (0..7)
                .map(|i| v1::Record {
                    key: Some(vec![i; i as usize].into()),
                    value: Some(vec![1; 300].into()),
                    headers: vec![v1::Header {
                        key: "h".into(),
                        value: Some(vec![9].into()),
                    }],
                    timestamp_ms: Some(5),
                })
                .collect(),
            base_offset: 1 << 40,
            append_time_ms: 1_700_000_000_000,
            origin_cluster: vec![7; 16].into(),
            origin_base_offset: 3,
            timestamp_type: v1::TimestampType::CreateTime as i32,
            origin_incarnation: 9,
            kafka_batch: Default::default(),
        };
        assert_eq!(record_count(&batch.encode_to_vec()), 7);
        assert_eq!(record_count(&v1::RecordBatch::default().encode_to_vec()), 0);
        // Truncated input stops counting instead of reading past the end.
        let bytes = batch.encode_to_vec();
        assert!(record_count(&bytes[..bytes.len() / 2]) < 7);
    }

    #[test]
    fn record_count_skips_an_unknown_group_as_decoding_does() {
        let mut b = batch();
        b.records = vec![b.records[0].clone(); 3];
        // Field 7, a group holding a varint, in front of the batch and after it.
        let group = [0x3b, 0x08, 0x01, 0x3c];
        let stored = [&group[..], &b.encode_to_vec(), &group].concat();
        assert_eq!(v1::RecordBatch::decode(stored.as_slice()).unwrap(), b);
        assert_eq!(record_count(&stored), 3);
        assert_eq!(decode_batch(stored.into()).unwrap().records.capacity(), 3);
    }

    #[test]
    fn decode_batch_sizes_the_records_and_decodes_like_prost() {
        let mut b = batch();
        b.records = vec![b.records[0].clone(); 7];
        let decoded = decode_batch(b.encode_to_vec().into()).unwrap();
        assert_eq!(decoded, b);
        assert_eq!(decoded.records.capacity(), b.records.len());
        assert!(decode_batch(Bytes::from_static(&[0x0a, 0x05, 1])).is_err());
    }
}

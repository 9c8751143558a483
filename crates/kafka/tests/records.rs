//! Produce, Fetch and ListOffsets on a real socket over a real namespace (RocksDB in a
//! temporary directory): Kafka batches stored as they came and served back unchanged, a
//! record the same on both protocols, acks 0, long polls, budgets, offsets by time,
//! hostile batches refused per partition with nothing written, and retention and key
//! compaction on Kafka-produced records.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::{call, framed};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, FetchRequest, FetchResponse,
    ListOffsetsRequest, ListOffsetsResponse, ProduceRequest, ProduceResponse, ResponseHeader,
    TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tributary_core::TimestampType;
use tributary_core::acl::Acl;
use tributary_core::kafka_batch::{self, Draft, Limits};
use tributary_proto::v1;
use tributary_storage::{Store, StoreOptions};
use tributary_volume::{
    Caller, Credential, FetchRead, Form, ManualClock, Namespace, OffsetSpec, Quotas,
    StreamAttributesPatch,
};

const NOW: i64 = 1_700_000_000_000;

/// A listener over a namespace with a manual clock at `NOW` and the stream `/acme/s`
/// (topics `orders`, 3 partitions, and `events`, 1) that anyone may use, with `attrs` and
/// the volume quota `max_bytes`.
struct Door {
    addr: std::net::SocketAddr,
    ns: Arc<Namespace>,
    admin: Caller,
    clock: Arc<ManualClock>,
    _stop: oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

async fn door_with(attrs: StreamAttributesPatch, max_bytes: Option<u64>) -> Door {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("db"), &StoreOptions::default()).unwrap());
    let clock = Arc::new(ManualClock::new(NOW));
    let ns = Arc::new(Namespace::open(store, clock.clone()).await.unwrap());
    let token = ns.ensure_admin().await.unwrap().unwrap();
    let admin = ns.authenticate(&token).unwrap();
    let quotas = Quotas {
        max_bytes,
        ..Default::default()
    };
    ns.create_volume(&admin, "/acme", None, None, quotas)
        .await
        .unwrap();
    let open = StreamAttributesPatch {
        produce_perm: Some(Acl::parse("p").unwrap()),
        consume_perm: Some(Acl::parse("p").unwrap()),
        ..attrs
    };
    ns.create_stream(&admin, "/acme/s", &open).await.unwrap();
    for (t, n) in [("orders", 3), ("events", 1)] {
        ns.create_topic(&admin, &format!("/acme/s:{t}"), Some(n))
            .await
            .unwrap();
    }
    let (addr, stop) = common::listen(ns.clone(), common::anonymous()).await;
    Door {
        addr,
        ns,
        admin,
        clock,
        _stop: stop,
        _dir: dir,
    }
}

async fn door() -> Door {
    door_with(StreamAttributesPatch::default(), None).await
}

/// The next response off `s`: its correlation id and body bytes.
async fn response(s: &mut TcpStream, key: ApiKey, version: i16) -> (i32, Bytes) {
    let mut b = common::read_response(s).await.expect("a response");
    let header = ResponseHeader::decode(&mut b, key.response_header_version(version)).unwrap();
    (header.correlation_id, b)
}

async fn connect(d: &Door) -> TcpStream {
    TcpStream::connect(d.addr).await.unwrap()
}

/// One record: key, value, headers, timestamp.
type Rec<'a> = (
    Option<&'a [u8]>,
    Option<&'a [u8]>,
    &'a [(&'a [u8], Option<&'a [u8]>)],
    i64,
);

/// A Kafka batch of `records` as a producer sends it (base offset 0).
fn batch(records: &[Rec<'_>]) -> Bytes {
    let drafts: Vec<Draft<'_>> = records
        .iter()
        .map(|&(key, value, headers, timestamp_ms)| Draft {
            timestamp_ms,
            key,
            value,
            headers,
        })
        .collect();
    kafka_batch::encode(0, TimestampType::CreateTime, &drafts)
}

fn keyed(key: &'static str, value: Option<&'static str>, ts: i64) -> Rec<'static> {
    (Some(key.as_bytes()), value.map(str::as_bytes), &[], ts)
}

fn produce_request(acks: i16, parts: &[(&str, i32, Bytes)]) -> ProduceRequest {
    let mut topics: Vec<TopicProduceData> = Vec::new();
    for (topic, partition, records) in parts {
        let data = PartitionProduceData::default()
            .with_index(*partition)
            .with_records(Some(records.clone()));
        match topics.iter_mut().find(|t| t.name.0.as_str() == *topic) {
            Some(t) => t.partition_data.push(data),
            None => topics.push(
                TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                    .with_partition_data(vec![data]),
            ),
        }
    }
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(30_000)
        .with_topic_data(topics)
}

/// Produces and returns each partition's (error code, base offset), in request order.
async fn produce(s: &mut TcpStream, version: i16, parts: &[(&str, i32, Bytes)]) -> Vec<(i16, i64)> {
    let r: ProduceResponse = call(s, ApiKey::Produce, version, &produce_request(-1, parts)).await;
    r.responses
        .iter()
        .flat_map(|t| t.partition_responses.iter())
        .map(|p| (p.error_code, p.base_offset))
        .collect()
}

fn fetch_request(parts: &[(&str, i32, i64)], max_wait_ms: i32, partition_max: i32) -> FetchRequest {
    let topics = parts
        .iter()
        .map(|&(topic, partition, offset)| {
            FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(partition)
                        .with_fetch_offset(offset)
                        .with_partition_max_bytes(partition_max),
                ])
        })
        .collect();
    FetchRequest::default()
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(50 << 20)
        .with_session_epoch(-1)
        .with_topics(topics)
}

async fn fetch(
    s: &mut TcpStream,
    version: i16,
    topic: &str,
    partition: i32,
    offset: i64,
) -> (i16, i64, Bytes) {
    let r: FetchResponse = call(
        s,
        ApiKey::Fetch,
        version,
        &fetch_request(&[(topic, partition, offset)], 0, 1 << 20),
    )
    .await;
    let p = &r.responses[0].partitions[0];
    (
        p.error_code,
        p.high_watermark,
        p.records.clone().unwrap_or_default(),
    )
}

/// The batches of a record set, each validated as a broker would.
fn batches(mut set: Bytes) -> Vec<kafka_batch::Checked> {
    let mut out = Vec::new();
    while !set.is_empty() {
        let h = kafka_batch::BatchHeader::parse(&set).unwrap();
        let one = set.split_to(h.size());
        out.push(kafka_batch::validate(&one, &Limits::default()).unwrap());
    }
    out
}

/// (offset, key, value) of every record of a record set.
fn offsets_keys_values(set: Bytes) -> Vec<(i64, Option<Bytes>, Option<Bytes>)> {
    batches(set)
        .into_iter()
        .flat_map(|b| {
            let base = b.header.base_offset;
            b.records
                .into_iter()
                .map(move |r| (base + i64::from(r.offset_delta), r.key, r.value))
        })
        .collect()
}

#[tokio::test]
async fn a_produced_batch_is_fetched_back_as_it_came_at_every_version() {
    let d = door().await;
    let mut s = connect(&d).await;
    let headers: &[(&[u8], Option<&[u8]>)] = &[(b"h", Some(b"1")), (b"h", None)];
    let sent = batch(&[
        (Some(b"k"), Some(b"v"), headers, NOW),
        (None, Some(b""), &[], NOW + 5),
        (Some(b""), None, &[], NOW + 2),
    ]);
    let mut offset = 0;
    for version in 3..=11 {
        let acks = produce(&mut s, version, &[("events", 0, sent.clone())]).await;
        assert_eq!(acks, [(0, offset)], "v{version}");
        offset += 3;
    }
    for version in 4..=12 {
        let (code, hwm, set) = fetch(&mut s, version, "events", 0, 0).await;
        assert_eq!((code, hwm), (0, 27), "v{version}");
        let stored = batches(set.clone());
        assert_eq!(stored.len(), 9);
        // Byte for byte, but for the fields the broker owns: the base offset and the
        // leader epoch (-1), outside the CRC.
        let first = set.slice(..sent.len());
        assert_eq!(first[8..12], sent[8..12]);
        assert_eq!(first[16..], sent[16..], "the CRC and the records as sent");
        assert_eq!(&first[12..16], &(-1i32).to_be_bytes());
        for (i, b) in stored.iter().enumerate() {
            assert_eq!(b.header.base_offset, 3 * i as i64);
        }
    }
    // A fetch in the middle of a batch gets the whole batch: the client skips.
    let (_, _, set) = fetch(&mut s, 12, "events", 0, 4).await;
    assert_eq!(batches(set)[0].header.base_offset, 3);
}

#[tokio::test]
async fn a_record_reads_the_same_on_both_protocols() {
    let d = door().await;
    let mut s = connect(&d).await;
    let headers: &[(&[u8], Option<&[u8]>)] = &[(b"h", Some(b"1")), (b"h", Some(b"")), (b"h", None)];
    let sent = batch(&[
        (Some(b"key"), Some(b"value"), headers, NOW - 7),
        (Some(b""), None, &[], NOW - 6),
    ]);
    assert_eq!(produce(&mut s, 9, &[("events", 0, sent)]).await, [(0, 0)]);

    // Kafka in, gRPC out: the namespace's fetch is what the gRPC door serves.
    let read = |offset| FetchRead {
        partition: 0,
        offset,
        max_bytes: 0,
        max_wait: Duration::ZERO,
    };
    let grpc =
        d.ns.fetch_as(
            &Credential::Anonymous,
            "/acme/s:events",
            read(0),
            Form::Records,
        )
        .await
        .unwrap();
    let b = v1::RecordBatch::decode(grpc.batches[0].clone()).unwrap();
    assert!(b.kafka_batch.is_empty(), "a gRPC reader gets records");
    assert_eq!(b.base_offset, 0);
    let r = &b.records[0];
    assert_eq!(
        (r.key.as_deref(), r.value.as_deref()),
        (Some(&b"key"[..]), Some(&b"value"[..]))
    );
    assert_eq!(r.timestamp_ms, Some(NOW - 7));
    let h: Vec<_> = r
        .headers
        .iter()
        .map(|h| (h.key.as_str(), h.value.as_deref()))
        .collect();
    assert_eq!(
        h,
        [("h", Some(&b"1"[..])), ("h", Some(&b""[..])), ("h", None)],
        "null and empty header values stay apart, in order"
    );
    let r = &b.records[1];
    assert_eq!(
        (r.key.as_deref(), r.value.as_deref()),
        (Some(&b""[..]), None),
        "an empty key stays a key, a null value null"
    );

    // gRPC in, Kafka out.
    let produced = v1::RecordBatch {
        records: vec![v1::Record {
            key: Some(Bytes::from_static(b"g-key")),
            value: Some(Bytes::from_static(b"g-value")),
            headers: vec![
                v1::Header {
                    key: "x".into(),
                    value: Some(Bytes::from_static(b"1")),
                },
                v1::Header {
                    key: "x".into(),
                    value: Some(Bytes::new()),
                },
                v1::Header {
                    key: "x".into(),
                    value: None,
                },
            ],
            timestamp_ms: Some(NOW - 3),
        }],
        ..Default::default()
    };
    let ack =
        d.ns.produce(
            &d.admin,
            "/acme/s:events",
            Some(0),
            produced.encode_to_vec().into(),
        )
        .await
        .unwrap();
    assert_eq!(ack.acks[0].base_offset, 2);
    let (_, hwm, set) = fetch(&mut s, 12, "events", 0, 2).await;
    assert_eq!(hwm, 3);
    let b = &batches(set)[0];
    assert_eq!(b.header.base_offset, 2);
    let r = &b.records[0];
    assert_eq!(r.key.as_deref(), Some(&b"g-key"[..]));
    assert_eq!(r.value.as_deref(), Some(&b"g-value"[..]));
    assert_eq!(b.header.base_timestamp + r.timestamp_delta, NOW - 3);
    let h: Vec<_> = r
        .headers
        .iter()
        .map(|h| (&h.key[..], h.value.as_deref()))
        .collect();
    assert_eq!(
        h,
        [
            (&b"x"[..], Some(&b"1"[..])),
            (b"x", Some(b"")),
            (b"x", None)
        ]
    );
}

#[tokio::test]
async fn acks_0_gets_no_response_and_the_batch_is_written() {
    let d = door().await;
    let mut s = connect(&d).await;
    let sent = batch(&[keyed("k", Some("v"), NOW)]);
    s.write_all(&framed(
        ApiKey::Produce,
        7,
        1,
        &produce_request(0, &[("events", 0, sent)]),
    ))
    .await
    .unwrap();
    s.write_all(&framed(
        ApiKey::ApiVersions,
        3,
        2,
        &ApiVersionsRequest::default(),
    ))
    .await
    .unwrap();
    let (id, mut b) = response(&mut s, ApiKey::ApiVersions, 3).await;
    assert_eq!(id, 2, "the next response answers the next request");
    let versions = ApiVersionsResponse::decode(&mut b, 3).unwrap();
    let range = |key: ApiKey| {
        versions
            .api_keys
            .iter()
            .find(|k| k.api_key == key as i16)
            .map(|k| (k.min_version, k.max_version))
    };
    assert_eq!(range(ApiKey::Produce), Some((0, 11)));
    assert_eq!(range(ApiKey::Fetch), Some((4, 12)));
    assert_eq!(range(ApiKey::ListOffsets), Some((1, 6)));
    let (code, hwm, _) = fetch(&mut s, 11, "events", 0, 0).await;
    assert_eq!((code, hwm), (0, 1));
}

#[tokio::test]
async fn produce_before_record_batches_closes_the_connection() {
    let d = door().await;
    let mut s = connect(&d).await;
    // kafka-protocol encodes no Produce before 3: a v3 body under a v2 header.
    let sent = batch(&[keyed("k", Some("v"), NOW)]);
    let request = produce_request(1, &[("events", 0, sent)]);
    let mut v2 = framed(ApiKey::Produce, 3, 1, &request).to_vec();
    v2[6..8].copy_from_slice(&2i16.to_be_bytes());
    s.write_all(&v2).await.unwrap();
    let mut b = [0u8; 1];
    assert!(matches!(s.read(&mut b).await, Ok(0) | Err(_)), "closed");
    let mut s = connect(&d).await;
    let (code, hwm, _) = fetch(&mut s, 4, "events", 0, 0).await;
    assert_eq!((code, hwm), (0, 0), "nothing written");
}

/// `sent` with the CRC made right again after a change.
fn recrc(mut sent: Vec<u8>) -> Bytes {
    let h = kafka_batch::BatchHeader::parse(&sent).unwrap();
    kafka_batch::finish(&mut sent, 0, TimestampType::CreateTime, 0, h.max_timestamp);
    sent.into()
}

#[tokio::test]
async fn hostile_batches_are_refused_per_partition_and_write_nothing() {
    let d = door_with(
        StreamAttributesPatch {
            max_message_bytes: Some(100),
            autocreate_topics: Some(false),
            ..Default::default()
        },
        None,
    )
    .await;
    let mut s = connect(&d).await;
    let good = batch(&[keyed("k", Some("v"), NOW)]);
    let mut bad_crc = good.to_vec();
    *bad_crc.last_mut().unwrap() ^= 1;
    let big = "x".repeat(200);
    let too_large = batch(&[(Some(b"k"), Some(big.as_bytes()), &[], NOW)]);
    let mut codec = good.to_vec();
    codec[22] |= 5; // attributes: codec 5
    let codec = recrc(codec);
    let mut deltas = good.to_vec();
    deltas[23..27].copy_from_slice(&3i32.to_be_bytes()); // lastOffsetDelta
    let deltas = recrc(deltas);
    let two = [good.clone(), good.clone()].concat();
    let truncated = good.slice(..good.len() - 3);
    let cases: [(&str, Bytes, i16); 7] = [
        ("a CRC that does not match", bad_crc.into(), 2),
        ("a record over max_message_bytes", too_large, 10),
        ("codec 5", codec, 76),
        ("offset deltas past the count", deltas, 87),
        ("two batches", two.into(), 87),
        ("a truncated batch", truncated, 87),
        ("no batch", Bytes::new(), 87),
    ];
    for (what, hostile, code) in cases {
        let acks = produce(
            &mut s,
            9,
            &[
                ("orders", 0, hostile),
                ("orders", 1, good.clone()),
                ("nope", 0, good.clone()),
            ],
        )
        .await;
        assert_eq!(acks[0], (code, -1), "{what}");
        assert_eq!(acks[1].0, 0, "{what}: the other partition is written");
        assert_eq!(acks[2].0, 3, "{what}: an unknown topic");
        let (_, hwm, _) = fetch(&mut s, 12, "orders", 0, 0).await;
        assert_eq!(hwm, 0, "{what}: nothing written");
    }
    // Past the partition count, and a malformed name.
    let acks = produce(
        &mut s,
        9,
        &[("orders", 3, good.clone()), ("a/b", 0, good.clone())],
    )
    .await;
    assert_eq!(acks, [(3, -1), (17, -1)]);
    // The error message says why, from version 8.
    let r: ProduceResponse = call(
        &mut s,
        ApiKey::Produce,
        8,
        &produce_request(1, &[("orders", 0, Bytes::from_static(b"short"))]),
    )
    .await;
    let message = r.responses[0].partition_responses[0].error_message.clone();
    assert!(message.is_some_and(|m| m.contains("shorter than a record batch header")));
}

#[tokio::test]
async fn compacted_streams_refuse_null_keys_and_quotas_refuse_without_writing() {
    let d = door_with(
        StreamAttributesPatch {
            compact: Some(true),
            ..Default::default()
        },
        Some(400),
    )
    .await;
    let mut s = connect(&d).await;
    let unkeyed = batch(&[(None, Some(b"v"), &[], NOW)]);
    assert_eq!(
        produce(&mut s, 9, &[("events", 0, unkeyed)]).await,
        [(87, -1)]
    );
    let value = "v".repeat(100);
    let one = batch(&[(Some(b"k"), Some(value.as_bytes()), &[], NOW)]);
    assert_eq!(
        produce(&mut s, 9, &[("events", 0, one.clone())]).await,
        [(0, 0)]
    );
    let acks = produce(&mut s, 9, &[("events", 0, one.clone())]).await;
    assert_eq!(acks, [(0, 1)]);
    let acks = produce(&mut s, 9, &[("events", 0, one)]).await;
    assert_eq!(acks, [(44, -1)], "over the volume's byte quota");
    let (_, hwm, _) = fetch(&mut s, 12, "events", 0, 0).await;
    assert_eq!(hwm, 2);
}

#[tokio::test]
async fn a_long_poll_fetch_returns_when_records_arrive() {
    let d = door().await;
    let mut consumer = connect(&d).await;
    let waiting = fetch_request(&[("orders", 0, 0), ("orders", 2, 0)], 30_000, 1 << 20);
    consumer
        .write_all(&framed(ApiKey::Fetch, 12, 7, &waiting))
        .await
        .unwrap();
    let mut producer = connect(&d).await;
    let sent = batch(&[keyed("k", Some("v"), NOW)]);
    assert_eq!(
        produce(&mut producer, 9, &[("orders", 2, sent)]).await,
        [(0, 0)]
    );
    let (id, mut b) = response(&mut consumer, ApiKey::Fetch, 12).await;
    assert_eq!(id, 7);
    let r = FetchResponse::decode(&mut b, 12).unwrap();
    assert_eq!(r.session_id, 0, "no fetch session");
    let parts: Vec<_> = r.responses.iter().flat_map(|t| &t.partitions).collect();
    assert_eq!(parts[0].records.as_ref().map(Bytes::len), Some(0));
    assert_eq!(parts[1].high_watermark, 1);
    assert_eq!(
        offsets_keys_values(parts[1].records.clone().unwrap()),
        [(
            0,
            Some(Bytes::from_static(b"k")),
            Some(Bytes::from_static(b"v"))
        )]
    );

    // Nothing arrives: the wait ends at max_wait, empty.
    let r: FetchResponse = call(
        &mut consumer,
        ApiKey::Fetch,
        12,
        &fetch_request(&[("orders", 1, 0)], 50, 1 << 20),
    )
    .await;
    assert_eq!(
        r.responses[0].partitions[0]
            .records
            .as_ref()
            .map(Bytes::len),
        Some(0)
    );
}

#[tokio::test]
async fn fetch_keeps_its_budgets_and_answers_errors_per_partition() {
    let d = door().await;
    let mut s = connect(&d).await;
    let big = "x".repeat(1000);
    for _ in 0..3 {
        let sent = batch(&[(Some(b"k"), Some(big.as_bytes()), &[], NOW)]);
        produce(
            &mut s,
            9,
            &[("events", 0, sent.clone()), ("orders", 0, sent)],
        )
        .await;
    }
    // A partition budget smaller than a batch still gets its first batch.
    let r: FetchResponse = call(
        &mut s,
        ApiKey::Fetch,
        12,
        &fetch_request(&[("events", 0, 0)], 0, 10),
    )
    .await;
    assert_eq!(
        batches(r.responses[0].partitions[0].records.clone().unwrap()).len(),
        1
    );
    let r: FetchResponse = call(
        &mut s,
        ApiKey::Fetch,
        12,
        &fetch_request(&[("events", 0, 0)], 0, 2500),
    )
    .await;
    assert_eq!(
        batches(r.responses[0].partitions[0].records.clone().unwrap()).len(),
        2
    );
    // The response's budget: once spent, later partitions report their marks only.
    let mut two = fetch_request(&[("events", 0, 0), ("orders", 0, 0)], 0, 1 << 20);
    two.max_bytes = 100;
    let r: FetchResponse = call(&mut s, ApiKey::Fetch, 12, &two).await;
    assert_eq!(
        batches(r.responses[0].partitions[0].records.clone().unwrap()).len(),
        1
    );
    let orders = &r.responses[1].partitions[0];
    assert_eq!(
        (
            orders.high_watermark,
            orders.records.as_ref().map(Bytes::len)
        ),
        (3, Some(0))
    );

    // Out of range, an unknown partition and topic, a fetch session asked for.
    let r: FetchResponse = call(
        &mut s,
        ApiKey::Fetch,
        12,
        &fetch_request(
            &[("events", 0, 9), ("events", 4, 0), ("nope", 0, 0)],
            0,
            1 << 20,
        ),
    )
    .await;
    let codes: Vec<_> = r
        .responses
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (p.error_code, p.high_watermark))
        })
        .collect();
    assert_eq!(codes, [(1, 3), (3, -1), (3, -1)]);
    let mut session = fetch_request(&[("events", 0, 0)], 0, 1 << 20);
    session.session_id = 12;
    let r: FetchResponse = call(&mut s, ApiKey::Fetch, 12, &session).await;
    assert_eq!(r.error_code, 70, "FETCH_SESSION_ID_NOT_FOUND");
}

/// `n` records of `size` zero bytes, compressed with zstd by `kafka-protocol`'s encoder
/// as a Kafka client would send them.
fn zstd_batch(n: usize, size: usize) -> Bytes {
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: i as i32,
            timestamp: NOW,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(vec![0u8; size])),
            headers: indexmap::IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::Zstd,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
    buf.freeze()
}

#[tokio::test]
async fn a_compressed_batch_stays_compressed_for_kafka_and_is_decoded_within_budget_for_grpc() {
    let d = door().await;
    let mut s = connect(&d).await;
    let sent = zstd_batch(10, 10_000);
    assert!(sent.len() < 2_000, "{} bytes", sent.len());
    for offset in [0, 10] {
        assert_eq!(
            produce(&mut s, 9, &[("events", 0, sent.clone())]).await,
            [(0, offset)]
        );
    }
    let (_, hwm, set) = fetch(&mut s, 12, "events", 0, 0).await;
    assert_eq!(
        (hwm, set.len()),
        (20, 2 * sent.len()),
        "served as stored, compressed"
    );
    assert_eq!(set[61..sent.len()], sent[61..]);

    // A gRPC reader gets the records decoded: 100 KB a batch, so a 150 KB budget takes one.
    let read = FetchRead {
        partition: 0,
        offset: 0,
        max_bytes: 150_000,
        max_wait: Duration::ZERO,
    };
    let r =
        d.ns.fetch_as(
            &Credential::Anonymous,
            "/acme/s:events",
            read,
            Form::Records,
        )
        .await
        .unwrap();
    assert_eq!((r.batches.len(), r.next_offset), (1, 10));
    let b = v1::RecordBatch::decode(r.batches[0].clone()).unwrap();
    assert_eq!(b.records.len(), 10);
    assert_eq!(b.records[9].value.as_ref().map(|v| v.len()), Some(10_000));
}

async fn list_offsets(s: &mut TcpStream, version: i16, timestamp: i64) -> (i16, i64, i64) {
    let r = ListOffsetsRequest::default()
        .with_replica_id((-1).into())
        .with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("events")))
                .with_partitions(vec![
                    ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(timestamp),
                ]),
        ]);
    let r: ListOffsetsResponse = call(s, ApiKey::ListOffsets, version, &r).await;
    let p = &r.topics[0].partitions[0];
    (p.error_code, p.offset, p.timestamp)
}

#[tokio::test]
async fn list_offsets_finds_earliest_latest_and_by_time() {
    let d = door().await;
    let mut s = connect(&d).await;
    let t = |s: i64| NOW - 10_000 + s * 1000;
    let sent = batch(&[keyed("a", Some("1"), t(1)), keyed("b", Some("2"), t(3))]);
    produce(&mut s, 9, &[("events", 0, sent)]).await;
    let sent = batch(&[keyed("c", Some("3"), t(2)), keyed("d", Some("4"), t(4))]);
    produce(&mut s, 9, &[("events", 0, sent)]).await;
    for version in 1..=6 {
        assert_eq!(list_offsets(&mut s, version, -2).await, (0, 0, -1));
        assert_eq!(list_offsets(&mut s, version, -1).await, (0, 4, -1));
        assert_eq!(
            list_offsets(&mut s, version, t(1) + 500).await,
            (0, 1, t(3))
        );
        assert_eq!(
            list_offsets(&mut s, version, t(3) + 500).await,
            (0, 3, t(4))
        );
        assert_eq!(
            list_offsets(&mut s, version, t(4) + 1).await,
            (0, -1, -1),
            "nothing that recent"
        );
    }
    assert_eq!(
        list_offsets(&mut s, 6, -3).await.0,
        35,
        "the largest timestamp (version 7, KIP-734) is not served"
    );
}

#[tokio::test]
async fn retention_removes_kafka_produced_records_by_their_time() {
    let d = door_with(
        StreamAttributesPatch {
            ttl_ms: Some(60_000),
            ..Default::default()
        },
        None,
    )
    .await;
    let mut s = connect(&d).await;
    produce(
        &mut s,
        9,
        &[("events", 0, batch(&[keyed("a", Some("1"), NOW - 120_000)]))],
    )
    .await;
    produce(
        &mut s,
        9,
        &[("events", 0, batch(&[keyed("b", Some("2"), NOW)]))],
    )
    .await;
    let purged = d.ns.purge_stream(&d.admin, "/acme/s").await.unwrap();
    assert_eq!(purged.records, 1);
    assert_eq!(list_offsets(&mut s, 6, -2).await, (0, 1, -1));
    d.clock.advance_ms(60_001);
    let (code, hwm, set) = fetch(&mut s, 12, "events", 0, 1).await;
    assert_eq!(
        (code, hwm, set.len()),
        (1, 2, 0),
        "expired on read, before a purge"
    );
    let found =
        d.ns.list_offsets(&d.admin, "/acme/s:events", &[0], OffsetSpec::Earliest)
            .await
            .unwrap();
    assert_eq!(found, [(0, 2)]);
}

#[tokio::test]
async fn key_compaction_keeps_the_latest_kafka_record_of_each_key() {
    let d = door_with(
        StreamAttributesPatch {
            compact: Some(true),
            ttl_ms: Some(0),
            delete_retention_ms: Some(3_600_000),
            ..Default::default()
        },
        None,
    )
    .await;
    let mut s = connect(&d).await;
    for b in [
        batch(&[keyed("a", Some("a1"), NOW), keyed("b", Some("b1"), NOW)]), // 0, 1
        batch(&[keyed("a", Some("a2"), NOW)]),                              // 2
        batch(&[keyed("c", Some("c1"), NOW), keyed("b", None, NOW)]),       // 3, 4: b's tombstone
        batch(&[keyed("a", Some("a3"), NOW)]),                              // 5
    ] {
        produce(&mut s, 9, &[("events", 0, b)]).await;
    }
    assert_eq!(
        d.ns.purge_stream(&d.admin, "/acme/s")
            .await
            .unwrap()
            .records,
        3
    );
    let b = |v: &'static str| Some(Bytes::from_static(v.as_bytes()));
    let (_, _, set) = fetch(&mut s, 12, "events", 0, 0).await;
    assert_eq!(
        offsets_keys_values(set),
        [
            (3, b("c"), b("c1")),
            (4, b("b"), None),
            (5, b("a"), b("a3"))
        ],
        "the latest value of each key at its own offset; the null tombstone stays for now"
    );
    d.clock.advance_ms(3_600_000);
    assert_eq!(
        d.ns.purge_stream(&d.admin, "/acme/s")
            .await
            .unwrap()
            .records,
        1
    );
    let (_, _, set) = fetch(&mut s, 12, "events", 0, 0).await;
    assert_eq!(
        offsets_keys_values(set),
        [(3, b("c"), b("c1")), (5, b("a"), b("a3"))]
    );
    // An empty value is a value, not a tombstone.
    produce(
        &mut s,
        9,
        &[("events", 0, batch(&[keyed("c", Some(""), NOW)]))],
    )
    .await;
    produce(
        &mut s,
        9,
        &[("events", 0, batch(&[keyed("z", Some("z"), NOW)]))],
    )
    .await;
    d.ns.purge_stream(&d.admin, "/acme/s").await.unwrap();
    let (_, _, set) = fetch(&mut s, 12, "events", 0, 0).await;
    assert_eq!(
        offsets_keys_values(set),
        [
            (5, b("a"), b("a3")),
            (6, b("c"), b("")),
            (7, b("z"), b("z"))
        ]
    );
}

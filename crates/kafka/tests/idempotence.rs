//! Idempotent producers on a real socket over a real namespace (RocksDB in a temporary
//! directory, a manual clock): InitProducerId at every version, and Kafka's sequence rules
//! on Produce, answered with the codes Kafka's broker uses: a retry of any of the last five
//! batches gets its original offset and append time and writes nothing, the sixth-oldest,
//! a gap or a new epoch not at 0 are OUT_OF_ORDER_SEQUENCE_NUMBER, an old epoch
//! INVALID_PRODUCER_EPOCH, an expired producer UNKNOWN_PRODUCER_ID; sequences wrap to 0
//! after i32::MAX.

mod common;

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use common::call;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, FetchRequest, FetchResponse,
    InitProducerIdRequest, InitProducerIdResponse, ProduceRequest, ProduceResponse, ProducerId,
    TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tributary_core::acl::Acl;
use tributary_core::kafka_batch::BatchHeader;
use tributary_storage::{
    AppendCheck, AppendRequest, Durability, NewBatch, ProducerSeq, SequenceSpace, Store,
    StoreOptions,
};
use tributary_volume::{ManualClock, Namespace, StreamAttributesPatch};

const NOW: i64 = 1_700_000_000_000;
const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
const INVALID_PRODUCER_EPOCH: i16 = 47;
const UNKNOWN_PRODUCER_ID: i16 = 59;
const INVALID_RECORD: i16 = 87;
const INVALID_REQUEST: i16 = 42;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;

/// A listener over a namespace with a manual clock at `NOW`: the stream `/acme/s` (topics
/// `orders` and `wrap`, one partition each) and `/acme/stamped` (topic `t`, with
/// LOG_APPEND_TIME), which anyone may use.
struct Door {
    addr: std::net::SocketAddr,
    ns: Arc<Namespace>,
    store: Arc<Store>,
    clock: Arc<ManualClock>,
    _stop: oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

async fn door() -> Door {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("db"), &StoreOptions::default()).unwrap());
    let clock = Arc::new(ManualClock::new(NOW));
    let ns = Arc::new(Namespace::open(store.clone(), clock.clone()).await.unwrap());
    let token = ns.ensure_admin().await.unwrap().unwrap();
    let admin = ns.authenticate(&token).unwrap();
    ns.create_volume(&admin, "/acme", None, None, Default::default())
        .await
        .unwrap();
    let open = StreamAttributesPatch {
        produce_perm: Some(Acl::parse("p").unwrap()),
        consume_perm: Some(Acl::parse("p").unwrap()),
        ..Default::default()
    };
    ns.create_stream(&admin, "/acme/s", &open).await.unwrap();
    let stamped = StreamAttributesPatch {
        timestamp_type: Some(tributary_core::TimestampType::LogAppendTime),
        ..open.clone()
    };
    ns.create_stream(&admin, "/acme/stamped", &stamped)
        .await
        .unwrap();
    for t in ["/acme/s:orders", "/acme/s:wrap", "/acme/stamped:t"] {
        ns.create_topic(&admin, t, Some(1)).await.unwrap();
    }
    let (addr, stop) = common::listen(ns.clone(), common::anonymous()).await;
    Door {
        addr,
        ns,
        store,
        clock,
        _stop: stop,
        _dir: dir,
    }
}

async fn connect(d: &Door) -> TcpStream {
    TcpStream::connect(d.addr).await.unwrap()
}

/// InitProducerId at `version` with a null transactional id, and from version 3 the
/// producer's current id and epoch: (error code, producer id, epoch).
async fn init(s: &mut TcpStream, version: i16, current: Option<(i64, i16)>) -> (i16, i64, i16) {
    let (id, epoch) = current.unwrap_or((-1, -1));
    let r = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(id))
        .with_producer_epoch(epoch);
    let r: InitProducerIdResponse = call(s, ApiKey::InitProducerId, version, &r).await;
    (r.error_code, r.producer_id.0, r.producer_epoch)
}

/// An idempotent producer's batch of `count` records from `sequence` (wrapping as
/// Kafka's do), encoded as a client encodes it.
fn batch(producer: i64, epoch: i16, sequence: i32, count: i32) -> Bytes {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: producer,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i64::from(i),
            sequence: sequence.wrapping_add(i),
            timestamp: NOW,
            key: None,
            value: Some(Bytes::from(format!("{sequence}+{i}"))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
    buf.freeze()
}

/// Produces `records` to partition 0 of `topic` at version 9: (error code, base offset,
/// log append time).
async fn produce(s: &mut TcpStream, topic: &str, records: Bytes) -> (i16, i64, i64) {
    let r = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(records)),
                ]),
        ]);
    let r: ProduceResponse = call(s, ApiKey::Produce, 9, &r).await;
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset, p.log_append_time_ms)
}

/// The headers of the batches of `topic` #0 from offset 0, and its high-water mark.
async fn stored(s: &mut TcpStream, topic: &str) -> (Vec<BatchHeader>, i64) {
    let r = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(50 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(0)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ]);
    let r: FetchResponse = call(s, ApiKey::Fetch, 12, &r).await;
    let p = &r.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    let mut set = p.records.clone().unwrap_or_default();
    let mut out = Vec::new();
    while !set.is_empty() {
        let h = BatchHeader::parse(&set).unwrap();
        let _ = set.split_to(h.size());
        out.push(h);
    }
    (out, p.high_watermark)
}

#[tokio::test]
async fn init_producer_id_hands_out_a_new_id_at_epoch_0_at_every_version() {
    let d = door().await;
    let mut s = connect(&d).await;
    let versions: ApiVersionsResponse = call(
        &mut s,
        ApiKey::ApiVersions,
        3,
        &ApiVersionsRequest::default(),
    )
    .await;
    let served = versions
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::InitProducerId as i16)
        .expect("InitProducerId is advertised");
    assert_eq!((served.min_version, served.max_version), (0, 4));

    let mut ids = Vec::new();
    for v in 0..=4 {
        let (code, id, epoch) = init(&mut s, v, None).await;
        assert_eq!((code, epoch), (0, 0), "v{v}");
        assert!(id >= 0 && !ids.contains(&id), "v{v}: a new id, not {ids:?}");
        ids.push(id);
        if v >= 3 {
            // As Kafka's broker does for a null transactional id: a new id, not a bump.
            let (code, again, epoch) = init(&mut s, v, Some((id, 0))).await;
            assert_eq!((code, epoch), (0, 0), "v{v}");
            assert!(!ids.contains(&again));
            ids.push(again);
            let (code, ..) = init(&mut s, v, Some((id, -1))).await;
            assert_eq!(code, INVALID_REQUEST, "v{v}: an id without an epoch");
        }
    }

    // Transactions are not served: no coordinator for a transactional id.
    for (tx, code) in [("tx-1", COORDINATOR_NOT_AVAILABLE), ("", INVALID_REQUEST)] {
        let r = InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str(tx))))
            .with_transaction_timeout_ms(60_000);
        let r: InitProducerIdResponse = call(&mut s, ApiKey::InitProducerId, 4, &r).await;
        assert_eq!((r.error_code, r.producer_id.0), (code, -1), "{tx:?}");
    }
}

#[tokio::test]
async fn a_retry_of_each_of_the_last_five_batches_gets_its_original_offset() {
    let d = door().await;
    let mut s = connect(&d).await;
    let (_, pid, _) = init(&mut s, 4, None).await;
    // Six batches of two records: sequences 0, 2, .., 10 at offsets 0, 2, .., 10.
    for n in 0..6 {
        let sent = produce(&mut s, "orders", batch(pid, 0, 2 * n, 2)).await;
        assert_eq!((sent.0, sent.1), (0, i64::from(2 * n)));
    }
    for n in 1..6 {
        let again = produce(&mut s, "orders", batch(pid, 0, 2 * n, 2)).await;
        assert_eq!(
            (again.0, again.1),
            (0, i64::from(2 * n)),
            "retry of batch {n}"
        );
    }
    // The sixth-oldest is forgotten; a gap, and a retry with another count, are out of order.
    for (sequence, count) in [(0, 2), (14, 1), (10, 1)] {
        let r = produce(&mut s, "orders", batch(pid, 0, sequence, count)).await;
        assert_eq!(
            (r.0, r.1),
            (OUT_OF_ORDER_SEQUENCE_NUMBER, -1),
            "sequence {sequence}, {count} records"
        );
    }
    let (headers, hwm) = stored(&mut s, "orders").await;
    assert_eq!(hwm, 12, "nothing written twice, nothing refused written");
    // Each batch keeps the producer's fields as produced.
    let fields: Vec<_> = headers
        .iter()
        .map(|h| (h.producer_id, h.producer_epoch, h.base_sequence))
        .collect();
    assert_eq!(fields, (0..6).map(|n| (pid, 0, 2 * n)).collect::<Vec<_>>());

    // The next one goes on where the sequence is.
    let next = produce(&mut s, "orders", batch(pid, 0, 12, 1)).await;
    assert_eq!((next.0, next.1), (0, 12));

    // Under LOG_APPEND_TIME a retry is answered with the original append time.
    let first = produce(&mut s, "/acme/stamped:t", batch(pid, 0, 0, 3)).await;
    assert_eq!(first, (0, 0, NOW));
    d.clock.advance_ms(5_000);
    let again = produce(&mut s, "/acme/stamped:t", batch(pid, 0, 0, 3)).await;
    assert_eq!(again, (0, 0, NOW));
}

#[tokio::test]
async fn a_new_epoch_starts_at_0_and_fences_the_old_one() {
    let d = door().await;
    let mut s = connect(&d).await;
    let (_, pid, _) = init(&mut s, 4, None).await;
    assert_eq!(produce(&mut s, "orders", batch(pid, 0, 0, 2)).await.0, 0);
    // A client bumps its own epoch (Kafka's idempotent producers do): only at sequence 0.
    let r = produce(&mut s, "orders", batch(pid, 1, 2, 1)).await;
    assert_eq!(r.0, OUT_OF_ORDER_SEQUENCE_NUMBER);
    let r = produce(&mut s, "orders", batch(pid, 1, 0, 1)).await;
    assert_eq!((r.0, r.1), (0, 2));
    for (sequence, what) in [(2, "the old epoch's next"), (0, "a retry at the old epoch")] {
        let r = produce(&mut s, "orders", batch(pid, 0, sequence, 2)).await;
        assert_eq!(r.0, INVALID_PRODUCER_EPOCH, "{what}");
    }
    // A producer id with a negative sequence is a malformed batch.
    let r = produce(&mut s, "orders", batch(pid, 1, -5, 1)).await;
    assert_eq!(r.0, INVALID_RECORD);
    assert_eq!(stored(&mut s, "orders").await.1, 3);
}

#[tokio::test]
async fn sequences_wrap_to_0_after_i32_max() {
    let d = door().await;
    let mut s = connect(&d).await;
    let (_, pid, _) = init(&mut s, 4, None).await;
    // No client sends 2^31 records in a test: find the partition (the one a record lands
    // in) and bring the producer there through the store's own append, as if it had.
    assert_eq!(produce(&mut s, "wrap", batch(-1, -1, -1, 1)).await.0, 0);
    let below = d.store.reserve_partition_ids(1)[0];
    let id = (0..below)
        .find(|&id| {
            d.store
                .partition_stats(id, None)
                .is_ok_and(|p| p.high_watermark == 1)
        })
        .expect("the topic's partition");
    let max = i32::MAX;
    let planted = (max - 3) as u32;
    d.store
        .submit(AppendRequest {
            durability: Durability::Buffered,
            partitions: vec![id],
            checks: vec![AppendCheck {
                producer: Some(ProducerSeq {
                    id: pid as u64,
                    epoch: 0,
                    sequence: 0,
                    record_count: planted,
                    space: SequenceSpace::Kafka,
                }),
                ..Default::default()
            }],
            build: Box::new(move |_, _| NewBatch {
                value: Vec::new(),
                record_count: planted,
                append_time_ms: NOW,
                max_timestamp_ms: NOW,
            }),
        })
        .await
        .unwrap();
    let base = 1 + i64::from(planted);

    let a = produce(&mut s, "wrap", batch(pid, 0, max - 3, 2)).await;
    assert_eq!((a.0, a.1), (0, base));
    // MAX - 1, MAX, then 0: one batch across the wrap.
    let b = produce(&mut s, "wrap", batch(pid, 0, max - 1, 3)).await;
    assert_eq!((b.0, b.1), (0, base + 2));
    let c = produce(&mut s, "wrap", batch(pid, 0, 1, 1)).await;
    assert_eq!((c.0, c.1), (0, base + 5));
    for (sequence, count, offset) in [(max - 3, 2, base), (max - 1, 3, base + 2), (1, 1, base + 5)]
    {
        let r = produce(&mut s, "wrap", batch(pid, 0, sequence, count)).await;
        assert_eq!((r.0, r.1), (0, offset), "a retry of {sequence}");
    }
    for sequence in [3, max, 0] {
        let r = produce(&mut s, "wrap", batch(pid, 0, sequence, 1)).await;
        assert_eq!(r.0, OUT_OF_ORDER_SEQUENCE_NUMBER, "sequence {sequence}");
    }
    let d2 = produce(&mut s, "wrap", batch(pid, 0, 2, 1)).await;
    assert_eq!((d2.0, d2.1), (0, base + 6));
}

#[tokio::test]
async fn an_expired_producer_is_unknown_until_it_starts_over() {
    let d = door().await;
    let mut s = connect(&d).await;
    let (_, pid, _) = init(&mut s, 4, None).await;
    assert_eq!(produce(&mut s, "orders", batch(pid, 0, 0, 2)).await.0, 0);
    d.ns.set_producer_expiry(std::time::Duration::from_secs(60));
    d.clock.advance_ms(61_000);
    d.ns.run_retention().await.unwrap();
    // Its state is gone: its next batch could follow a lost one, so it is not taken
    // (librdkafka then bumps its epoch and starts over at 0, or fails if any is unacked).
    let r = produce(&mut s, "orders", batch(pid, 0, 2, 1)).await;
    assert_eq!(r.0, UNKNOWN_PRODUCER_ID);
    let r = produce(&mut s, "orders", batch(pid, 1, 0, 1)).await;
    assert_eq!((r.0, r.1), (0, 2));
    let r = produce(&mut s, "orders", batch(pid, 1, 1, 1)).await;
    assert_eq!((r.0, r.1), (0, 3));
}

//! The Kafka door's rate quotas and sessions on a real socket over a real namespace: a
//! request over its principal's quota is served and answered with `throttle_time_ms`, the
//! connection muted that long (the response itself held back for a client before KIP-219),
//! a throttled Fetch answered empty; and a connection whose token is rotated away, or
//! whose user is deleted, closed at its next request.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{call, door, handshake, plain, private};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, MetadataRequest, MetadataResponse,
    ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tributary_core::TimestampType;
use tributary_core::kafka_batch::{self, Draft};
use tributary_core::quota::{QuotaConfig, QuotaLimits, Quotas};
use tributary_kafka::Options;

/// Every principal held to `limits`; the buckets, to look at.
fn limited(limits: QuotaLimits) -> (Options, Arc<Quotas>) {
    let quotas = Arc::new(Quotas::new(QuotaConfig {
        default: limits,
        ..QuotaConfig::default()
    }));
    let options = Options {
        quotas: quotas.clone(),
        ..private()
    };
    (options, quotas)
}

/// A connection authenticated as `user` with `token` (SASL PLAIN).
async fn connect(d: &common::Door, user: &str, token: &str) -> TcpStream {
    let mut s = TcpStream::connect(d.addr).await.unwrap();
    assert_eq!(handshake(&mut s, "PLAIN").await.error_code, 0);
    assert_eq!(plain(&mut s, 2, user, token).await.error_code, 0);
    s
}

/// A batch of one record of `size` bytes, stamped now (within the stream's retention).
fn batch(size: usize) -> Bytes {
    let value = vec![b'v'; size];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let draft = Draft {
        timestamp_ms: now.as_millis() as i64,
        key: None,
        value: Some(&value),
        headers: &[],
    };
    kafka_batch::encode(0, TimestampType::CreateTime, &[draft])
}

async fn produce(s: &mut TcpStream, version: i16, records: Bytes) -> ProduceResponse {
    let data = PartitionProduceData::default()
        .with_index(0)
        .with_records(Some(records));
    let topic = TopicProduceData::default()
        .with_name(TopicName(StrBytes::from_static_str("clicks")))
        .with_partition_data(vec![data]);
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![topic]);
    call(s, ApiKey::Produce, version, &request).await
}

fn produced(r: &ProduceResponse) -> (i16, i64) {
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

async fn metadata(s: &mut TcpStream) -> MetadataResponse {
    let all = MetadataRequest::default().with_topics(None);
    call(s, ApiKey::Metadata, 9, &all).await
}

async fn fetch(s: &mut TcpStream) -> FetchResponse {
    let partition = FetchPartition::default()
        .with_partition(0)
        .with_fetch_offset(0)
        .with_partition_max_bytes(1 << 20);
    let topic = FetchTopic::default()
        .with_topic(TopicName(StrBytes::from_static_str("clicks")))
        .with_partitions(vec![partition]);
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_session_epoch(-1)
        .with_min_bytes(1)
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_topics(vec![topic]);
    call(s, ApiKey::Fetch, 11, &request).await
}

/// The peer closed the connection: a read returns end of file (or a reset).
async fn closed(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    matches!(
        tokio::time::timeout(Duration::from_secs(10), s.read(&mut b)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test]
async fn a_produce_over_quota_is_written_throttled_and_mutes_its_connection() {
    let (options, _) = limited(QuotaLimits {
        produce_bytes_per_sec: 1000,
        ..Default::default()
    });
    let d = door(options).await;
    let mut s = connect(&d, "admin", &d.token).await;
    // Within the burst (1 s of the rate): no throttle.
    let r = produce(&mut s, 9, batch(100)).await;
    assert_eq!((produced(&r), r.throttle_time_ms), ((0, 0), 0));
    // Far over it: written all the same, and told to wait.
    let start = Instant::now();
    let r = produce(&mut s, 9, batch(2000)).await;
    assert_eq!(produced(&r), (0, 1), "the batch is written");
    assert!(r.throttle_time_ms > 0, "{r:?}");
    // The connection reads nothing more until the time is up.
    let m = metadata(&mut s).await;
    assert!(start.elapsed() >= Duration::from_millis(r.throttle_time_ms as u64));
    assert_eq!(m.throttle_time_ms, 0, "requests are not limited here");
    // The bytes are the principal's, whatever its connection: another one is throttled.
    let mut other = connect(&d, "admin", &d.token).await;
    let r = produce(&mut other, 9, batch(3000)).await;
    assert_eq!(produced(&r), (0, 2));
    assert!(r.throttle_time_ms > 0);
}

#[tokio::test]
async fn a_client_before_kip_219_gets_its_throttled_response_late() {
    let (options, _) = limited(QuotaLimits {
        produce_bytes_per_sec: 1000,
        ..Default::default()
    });
    let d = door(options).await;
    let mut s = connect(&d, "admin", &d.token).await;
    let start = Instant::now();
    // Produce v5 clients do not throttle themselves: the broker holds the answer back.
    let r = produce(&mut s, 5, batch(1500)).await;
    assert_eq!(produced(&r), (0, 0));
    assert!(r.throttle_time_ms > 0);
    assert!(start.elapsed() >= Duration::from_millis(r.throttle_time_ms as u64));
}

#[tokio::test]
async fn a_fetch_over_quota_is_served_then_the_next_is_answered_empty() {
    let (options, quotas) = limited(QuotaLimits {
        fetch_bytes_per_sec: 1000,
        ..Default::default()
    });
    let d = door(options).await;
    let mut s = connect(&d, "admin", &d.token).await;
    assert_eq!(produced(&produce(&mut s, 9, batch(3000)).await), (0, 0));
    // Let in while not in debt, answered in full, and charged.
    let r = fetch(&mut s).await;
    let p = &r.responses[0].partitions[0];
    let records = p.records.clone().unwrap_or_default();
    assert!(records.len() > 3000, "{} bytes: {p:?}", records.len());
    assert!(r.throttle_time_ms > 0);
    // In debt: another connection's fetch is answered at once, with no partitions.
    let mut other = connect(&d, "admin", &d.token).await;
    let r = fetch(&mut other).await;
    assert!(r.responses.is_empty(), "{r:?}");
    assert!(r.throttle_time_ms > 0);
    // gRPC's check sees the same debt.
    assert!(quotas.admit_fetch("admin").is_err());
}

#[tokio::test]
async fn a_rotated_token_or_a_deleted_user_ends_the_session_at_its_next_request() {
    let d = door(private()).await;
    let admin = d.ns.authenticate(&d.token).unwrap();
    for end in ["rotate", "delete"] {
        let token =
            d.ns.create_user(&admin, "alice", Vec::new(), false)
                .await
                .unwrap()
                .1;
        let mut s = connect(&d, "alice", &token).await;
        assert!(!metadata(&mut s).await.topics.is_empty(), "{end}");
        let mut admin_conn = connect(&d, "admin", &d.token).await;
        match end {
            "rotate" => {
                d.ns.rotate_token(&admin, "alice").await.unwrap();
            }
            _ => d.ns.delete_user(&admin, "alice").await.unwrap(),
        }
        // The next request closes the connection unanswered, as an expired session does.
        let request = common::framed(ApiKey::Metadata, 9, 5, &MetadataRequest::default());
        tokio::io::AsyncWriteExt::write_all(&mut s, &request)
            .await
            .unwrap();
        assert!(closed(&mut s).await, "{end}");
        // Other users' sessions go on.
        assert!(!metadata(&mut admin_conn).await.topics.is_empty(), "{end}");
        if end == "rotate" {
            d.ns.delete_user(&admin, "alice").await.unwrap();
        }
    }
}

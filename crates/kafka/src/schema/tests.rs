//! Each shape against `kafka-protocol`'s encoder at every version: what it encodes walks
//! to the end, and every truncation or one-byte change the walk accepts decodes.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, MetadataRequest, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::*;

fn encode<M: Encodable>(m: &M, version: i16) -> Bytes {
    let mut b = BytesMut::new();
    m.encode(&mut b, version).unwrap();
    b.freeze()
}

/// `bytes` walks to its end, and so do none of its truncations that fail to decode; no
/// one-byte change the walk accepts fails to decode.
fn agrees<M: Decodable>(key: ApiKey, version: i16, bytes: &[u8]) {
    let shape = shape(key).unwrap();
    check(shape, version, bytes).unwrap_or_else(|e| panic!("{key:?} v{version}: {e}"));
    let decodes = |b: &[u8]| {
        let mut buf = Bytes::copy_from_slice(b);
        M::decode(&mut buf, version).is_ok() && buf.is_empty()
    };
    assert!(decodes(bytes));
    let mut variants: Vec<Vec<u8>> = (0..bytes.len()).map(|n| bytes[..n].to_vec()).collect();
    for i in 0..bytes.len() {
        for v in [
            0x00,
            0x01,
            0x7f,
            0x80,
            0xff,
            bytes[i].wrapping_add(1),
            bytes[i].wrapping_sub(1),
        ] {
            let mut m = bytes.to_vec();
            m[i] = v;
            variants.push(m);
        }
    }
    for m in variants {
        // Only what the walk accepts is handed to the decoder: the rest could make it
        // allocate without bound, which is the point of the walk.
        if check(shape, version, &m).is_ok() {
            assert!(
                decodes(&m),
                "{key:?} v{version}: the walk accepted {m:?}, which does not decode"
            );
        }
    }
}

#[test]
fn api_versions() {
    let r = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("librdkafka"))
        .with_client_software_version(StrBytes::from_static_str("2.0.2"));
    for v in 0..=4 {
        agrees::<ApiVersionsRequest>(ApiKey::ApiVersions, v, &encode(&r, v));
    }
}

#[test]
fn metadata() {
    let topic = |n: &'static str| {
        MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_static_str(n))))
    };
    for v in 0..=12 {
        let some = MetadataRequest::default()
            .with_topics(Some(vec![topic("a"), topic("orders"), topic("x.y-z")]))
            .with_allow_auto_topic_creation(v < 4)
            .with_include_topic_authorized_operations(v >= 8);
        agrees::<MetadataRequest>(ApiKey::Metadata, v, &encode(&some, v));
        let none = MetadataRequest::default().with_topics(Some(vec![]));
        agrees::<MetadataRequest>(ApiKey::Metadata, v, &encode(&none, v));
        if v >= 1 {
            let all = MetadataRequest::default().with_topics(None);
            agrees::<MetadataRequest>(ApiKey::Metadata, v, &encode(&all, v));
        }
    }
}

#[test]
fn hostile_counts_are_refused() {
    // Metadata v0 announcing 54 million topics in five bytes (kafka-protocol-rs#152).
    let e = check(
        shape(ApiKey::Metadata).unwrap(),
        0,
        &[0x03, 0x3c, 0x0c, 0x00, 0xb6],
    )
    .unwrap_err();
    assert!(e.contains("cannot fit"), "{e}");
    // The same at a flexible version: a varint count.
    let e = check(
        shape(ApiKey::Metadata).unwrap(),
        9,
        &[0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0],
    )
    .unwrap_err();
    assert!(e.contains("cannot fit"), "{e}");
    // A million and one elements, each really there, are over the budget.
    let mut b = ((MAX_ELEMENTS + 1) as i32).to_be_bytes().to_vec();
    b.extend(std::iter::repeat_n([0xff, 0xff], MAX_ELEMENTS + 1).flatten());
    b.push(1);
    let e = check(shape(ApiKey::Metadata).unwrap(), 4, &b).unwrap_err();
    assert!(e.contains("array elements in one request"), "{e}");
    // Trailing bytes.
    let e = check(
        shape(ApiKey::Metadata).unwrap(),
        1,
        &[0xff, 0xff, 0xff, 0xff, 0],
    )
    .unwrap_err();
    assert!(e.contains("follow"), "{e}");
}

#[test]
fn every_advertised_api_has_a_shape() {
    for s in crate::ADVERTISED {
        assert!(
            shape(s.key).is_some(),
            "{:?} is advertised but has no shape",
            s.key
        );
    }
}

fn name(n: &'static str) -> TopicName {
    TopicName(StrBytes::from_static_str(n))
}

#[test]
fn produce() {
    use kafka_protocol::messages::ProduceRequest;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    for v in 3..=11 {
        let partition = |i, records: Option<&'static [u8]>| {
            PartitionProduceData::default()
                .with_index(i)
                .with_records(records.map(Bytes::from_static))
        };
        let r = ProduceRequest::default()
            .with_transactional_id(None)
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(name("orders"))
                    .with_partition_data(vec![partition(0, Some(b"batch")), partition(2, None)]),
                TopicProduceData::default().with_name(name("clicks")),
            ]);
        agrees::<ProduceRequest>(ApiKey::Produce, v, &encode(&r, v));
    }
}

#[test]
fn fetch() {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
    use kafka_protocol::messages::{BrokerId, FetchRequest};
    for v in 4..=12 {
        let mut p = FetchPartition::default()
            .with_partition(1)
            .with_fetch_offset(77)
            .with_partition_max_bytes(1 << 20);
        if v >= 5 {
            p = p.with_log_start_offset(3);
        }
        if v >= 9 {
            p = p.with_current_leader_epoch(-1);
        }
        let mut r = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(500)
            .with_min_bytes(1)
            .with_max_bytes(50 << 20)
            .with_isolation_level(0)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(name("orders"))
                    .with_partitions(vec![p.clone(), p.with_partition(2)]),
            ]);
        if v >= 7 {
            r = r
                .with_session_id(0)
                .with_session_epoch(-1)
                .with_forgotten_topics_data(vec![
                    ForgottenTopic::default()
                        .with_topic(name("old"))
                        .with_partitions(vec![0, 1, 2]),
                ]);
        }
        if v >= 11 {
            r = r.with_rack_id(StrBytes::from_static_str("rack-a"));
        }
        if v >= 12 {
            r = r.with_cluster_id(Some(StrBytes::from_static_str("c1")));
        }
        agrees::<FetchRequest>(ApiKey::Fetch, v, &encode(&r, v));
    }
}

#[test]
fn list_offsets() {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::{BrokerId, ListOffsetsRequest};
    for v in 1..=7 {
        let mut r = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![
                ListOffsetsTopic::default()
                    .with_name(name("orders"))
                    .with_partitions(vec![
                        ListOffsetsPartition::default()
                            .with_partition_index(0)
                            .with_timestamp(-2),
                        ListOffsetsPartition::default()
                            .with_partition_index(1)
                            .with_timestamp(1_700_000_000_000),
                    ]),
            ]);
        if v >= 2 {
            r = r.with_isolation_level(0);
        }
        agrees::<ListOffsetsRequest>(ApiKey::ListOffsets, v, &encode(&r, v));
    }
}

#[test]
fn find_coordinator() {
    use kafka_protocol::messages::FindCoordinatorRequest;
    for v in 0..=4 {
        let mut r = FindCoordinatorRequest::default();
        if v <= 3 {
            r = r.with_key(StrBytes::from_static_str("group-1"));
        } else {
            r = r.with_coordinator_keys(vec![
                StrBytes::from_static_str("group-1"),
                StrBytes::from_static_str("group-2"),
            ]);
        }
        agrees::<FindCoordinatorRequest>(ApiKey::FindCoordinator, v, &encode(&r, v));
    }
}

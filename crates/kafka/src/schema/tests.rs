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

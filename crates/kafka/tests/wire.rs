//! The Kafka door on a real socket over a real namespace (RocksDB in a temporary
//! directory): version negotiation (KIP-511 included), responses in request order, hostile
//! frames that close one connection and leave the listener serving, and Metadata's names.

mod common;

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use common::*;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, DescribeClusterRequest,
    DescribeClusterResponse, MetadataRequest, MetadataResponse, RequestHeader, ResponseHeader,
    TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tributary_kafka::{ADVERTISED, Options};

fn request(correlation_id: i32, version: i16) -> Bytes {
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::ApiVersions as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("wire-test")));
    let body = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("wire-test"))
        .with_client_software_version(StrBytes::from_static_str("1.0"));
    // A version past what kafka-protocol knows is framed as its newest.
    let known = version.min(ApiKey::ApiVersions.valid_versions().max);
    let hv = ApiKey::ApiVersions.request_header_version(known);
    let mut b = BytesMut::new();
    b.put_i32(0);
    header.encode(&mut b, hv).unwrap();
    body.encode(&mut b, known).unwrap();
    let size = (b.len() - 4) as i32;
    b[..4].copy_from_slice(&size.to_be_bytes());
    b.freeze()
}

/// The correlation id and the body of an ApiVersions response read at `version`.
fn decode(mut b: Bytes, version: i16) -> (i32, ApiVersionsResponse) {
    let header = ResponseHeader::decode(&mut b, 0).unwrap();
    let body = ApiVersionsResponse::decode(&mut b, version).unwrap();
    assert!(!b.has_remaining(), "{} bytes left over", b.remaining());
    (header.correlation_id, body)
}

/// The peer closed the connection: a read returns end of file (or a reset).
async fn closed(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    matches!(
        tokio::time::timeout(Duration::from_secs(10), s.read(&mut b)).await,
        Ok(Ok(0) | Err(_))
    )
}

async fn still_serves(addr: std::net::SocketAddr) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&request(9, 3)).await.unwrap();
    let (id, body) = decode(read_response(&mut s).await.expect("a response"), 3);
    assert_eq!((id, body.error_code), (9, 0));
}

#[tokio::test]
async fn api_versions_at_every_version_lists_what_is_served() {
    let d = door(anonymous()).await;
    for version in 0..=4 {
        let mut s = TcpStream::connect(d.addr).await.unwrap();
        s.write_all(&request(100 + i32::from(version), version))
            .await
            .unwrap();
        let (id, body) = decode(read_response(&mut s).await.unwrap(), version);
        assert_eq!(id, 100 + i32::from(version));
        assert_eq!(body.error_code, 0, "v{version}");
        let listed: Vec<(i16, i16, i16)> = body
            .api_keys
            .iter()
            .map(|k| (k.api_key, k.min_version, k.max_version))
            .collect();
        let advertised: Vec<(i16, i16, i16)> = ADVERTISED
            .iter()
            .map(|s| (s.key as i16, s.min, s.max))
            .collect();
        assert_eq!(listed, advertised, "v{version}");
    }
}

#[tokio::test]
async fn an_unknown_api_versions_version_is_answered_at_v0_with_unsupported_version() {
    let d = door(anonymous()).await;
    let mut s = TcpStream::connect(d.addr).await.unwrap();
    s.write_all(&request(7, 99)).await.unwrap();
    let (id, body) = decode(read_response(&mut s).await.unwrap(), 0);
    assert_eq!((id, body.error_code), (7, 35));
    assert!(
        body.api_keys
            .iter()
            .any(|k| k.api_key == ApiKey::ApiVersions as i16 && k.max_version == 4)
    );
    // The connection stays open for the retry.
    s.write_all(&request(8, 4)).await.unwrap();
    let (id, body) = decode(read_response(&mut s).await.unwrap(), 4);
    assert_eq!((id, body.error_code), (8, 0));
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let d = door(anonymous()).await;
    let mut s = TcpStream::connect(d.addr).await.unwrap();
    let mut all = BytesMut::new();
    for id in 1..=20 {
        all.put_slice(&request(id, (id % 5) as i16));
    }
    s.write_all(&all).await.unwrap();
    for id in 1..=20 {
        let (got, _) = decode(read_response(&mut s).await.unwrap(), (id % 5) as i16);
        assert_eq!(got, id);
    }
}

#[tokio::test]
async fn hostile_frames_close_their_connection_only() {
    let d = door(Options {
        max_request_bytes: 1 << 20,
        ..anonymous()
    })
    .await;
    let hostile: Vec<(&str, Vec<u8>)> = vec![
        // 2 GiB announced: closed before anything is read or allocated.
        ("huge size", i32::MAX.to_be_bytes().to_vec()),
        (
            "just over the limit",
            ((1 << 20) + 1i32).to_be_bytes().to_vec(),
        ),
        ("negative size", (-5i32).to_be_bytes().to_vec()),
        // API key 999, version 0.
        (
            "unknown key",
            [
                &10i32.to_be_bytes()[..],
                &[0x03, 0xe7, 0, 0, 0, 0, 0, 1, 0xff, 0xff],
            ]
            .concat(),
        ),
        // Metadata is not served (yet): a known key outside the table closes too.
        (
            "unserved key",
            [
                &10i32.to_be_bytes()[..],
                &[0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xff],
            ]
            .concat(),
        ),
        (
            "short header",
            [&3i32.to_be_bytes()[..], &[0, 18, 0]].concat(),
        ),
        // A client id length past the frame.
        (
            "broken header",
            [
                &10i32.to_be_bytes()[..],
                &[0, 18, 0, 0, 0, 0, 0, 1, 0x7f, 0xff],
            ]
            .concat(),
        ),
    ];
    for (what, bytes) in hostile {
        let mut s = TcpStream::connect(d.addr).await.unwrap();
        s.write_all(&bytes).await.unwrap();
        assert!(closed(&mut s).await, "{what}: the connection stays open");
        still_serves(d.addr).await;
    }
    // A frame cut short by the peer closing.
    let mut s = TcpStream::connect(d.addr).await.unwrap();
    s.write_all(&100i32.to_be_bytes()).await.unwrap();
    s.write_all(&[0, 18, 0, 3]).await.unwrap();
    drop(s);
    still_serves(d.addr).await;
}

#[tokio::test]
async fn connections_past_the_limit_are_closed() {
    let d = door(Options {
        max_connections: 1,
        ..anonymous()
    })
    .await;
    let mut first = TcpStream::connect(d.addr).await.unwrap();
    first.write_all(&request(1, 3)).await.unwrap();
    read_response(&mut first).await.unwrap();
    let mut second = TcpStream::connect(d.addr).await.unwrap();
    assert!(closed(&mut second).await);
    // The first is still served; once it closes, a new one is.
    first.write_all(&request(2, 3)).await.unwrap();
    read_response(&mut first).await.unwrap();
    drop(first);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut s = TcpStream::connect(d.addr).await.unwrap();
        s.write_all(&request(3, 3)).await.unwrap();
        if read_response(&mut s).await.is_some() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot was never freed"
        );
        tokio::task::yield_now().await;
    }
}

/// A Metadata request framed at `version`, for `topics` (`None`: all topics).
fn metadata_request(correlation_id: i32, version: i16, topics: Option<&[&str]>) -> Bytes {
    metadata_request_with(correlation_id, version, topics, false)
}

/// The same, allowing auto-creation (a field of versions 4 and up) when `auto_create`.
fn metadata_request_with(
    correlation_id: i32,
    version: i16,
    topics: Option<&[&str]>,
    auto_create: bool,
) -> Bytes {
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Metadata as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("wire-test")));
    let topics = topics.map(|names| {
        names
            .iter()
            .map(|n| {
                MetadataRequestTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_string(n.to_string()))))
            })
            .collect()
    });
    // Version 0 says "all topics" with an empty list.
    let topics = if version == 0 {
        Some(topics.unwrap_or_default())
    } else {
        topics
    };
    let mut body = MetadataRequest::default().with_topics(topics);
    if version >= 4 {
        body = body.with_allow_auto_topic_creation(auto_create);
    }
    let mut b = BytesMut::new();
    b.put_i32(0);
    header
        .encode(&mut b, ApiKey::Metadata.request_header_version(version))
        .unwrap();
    body.encode(&mut b, version).unwrap();
    let size = (b.len() - 4) as i32;
    b[..4].copy_from_slice(&size.to_be_bytes());
    b.freeze()
}

async fn metadata(s: &mut TcpStream, version: i16, topics: Option<&[&str]>) -> MetadataResponse {
    metadata_with(s, version, topics, false).await
}

async fn metadata_with(
    s: &mut TcpStream,
    version: i16,
    topics: Option<&[&str]>,
    auto_create: bool,
) -> MetadataResponse {
    s.write_all(&metadata_request_with(42, version, topics, auto_create))
        .await
        .unwrap();
    let mut b = read_response(s).await.expect("a Metadata response");
    let header =
        ResponseHeader::decode(&mut b, ApiKey::Metadata.response_header_version(version)).unwrap();
    assert_eq!(header.correlation_id, 42);
    let body = MetadataResponse::decode(&mut b, version).unwrap();
    assert!(!b.has_remaining());
    body
}

/// (name, error code, partitions) of each topic in a response.
fn topics(r: &MetadataResponse) -> Vec<(String, i16, usize)> {
    r.topics
        .iter()
        .map(|t| {
            let name = t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
            (name, t.error_code, t.partitions.len())
        })
        .collect()
}

#[tokio::test]
async fn metadata_lists_the_default_streams_topics_under_short_names_at_every_version() {
    let d = door(anonymous()).await;
    let mut s = TcpStream::connect(d.addr).await.unwrap();
    for version in 0..=12 {
        let r = metadata(&mut s, version, None).await;
        let mut got = topics(&r);
        got.sort();
        assert_eq!(
            got,
            [("clicks".to_string(), 0, 1), ("orders".to_string(), 0, 3)],
            "v{version}"
        );
        assert_eq!(r.brokers.len(), 1);
        assert_eq!(r.brokers[0].host.as_str(), "127.0.0.1");
        assert_eq!(r.brokers[0].port, i32::from(d.addr.port()));
        let orders = r.topics.iter().find(|t| t.partitions.len() == 3).unwrap();
        for (i, p) in orders.partitions.iter().enumerate() {
            assert_eq!(p.partition_index, i as i32);
            assert_eq!(p.leader_id, r.brokers[0].node_id);
            assert_eq!(p.isr_nodes, [r.brokers[0].node_id]);
            assert_eq!(p.leader_epoch, -1);
        }
        if version >= 2 {
            let id = d.ns.cluster_id().to_string();
            assert_eq!(r.cluster_id.as_ref().map(|c| c.as_str()), Some(id.as_str()));
        }
    }
}

#[tokio::test]
async fn metadata_answers_each_name_with_what_it_resolves_to() {
    let d = door(anonymous()).await;
    let mut s = TcpStream::connect(d.addr).await.unwrap();
    let names = [
        "orders",
        "/acme/s:clicks",
        "nope",
        "bad name",
        "/acme/private:secret",
        "/acme/none:x",
        "/acme/s",
    ];
    for version in [1, 9, 12] {
        let r = metadata(&mut s, version, Some(&names)).await;
        let got: Vec<(String, i16, usize)> = topics(&r);
        assert_eq!(
            got,
            [
                ("orders".into(), 0, 3),
                ("/acme/s:clicks".into(), 0, 1),
                ("nope".into(), 3, 0),
                ("bad name".into(), 17, 0),
                ("/acme/private:secret".into(), 29, 0),
                ("/acme/none:x".into(), 3, 0),
                ("/acme/s".into(), 17, 0),
            ],
            "v{version}"
        );
    }
}

#[tokio::test]
async fn metadata_creates_a_named_topic_where_a_produce_would() {
    let d = door(private()).await;
    let mut s = TcpStream::connect(d.addr).await.unwrap();
    assert_eq!(handshake(&mut s, "PLAIN").await.error_code, 0);
    assert_eq!(plain(&mut s, 2, "admin", &d.token).await.error_code, 0);
    // Not asked (and never below version 4, which has no such field): unknown.
    for (version, auto_create) in [(3, true), (9, false)] {
        let r = metadata_with(&mut s, version, Some(&["fresh"]), auto_create).await;
        assert_eq!(topics(&r), [("fresh".into(), 3, 0)], "v{version}");
    }
    // Asked: created in the default stream with its default partitions, as a produce would.
    let r = metadata_with(&mut s, 9, Some(&["fresh", "/acme/none:x"]), true).await;
    assert_eq!(
        topics(&r),
        [("fresh".into(), 0, 1), ("/acme/none:x".into(), 3, 0)]
    );
    let admin = d.ns.authenticate(&d.token).unwrap();
    let made = d.ns.list_topics(&admin, "/acme/s").await.unwrap();
    assert!(made.iter().any(|t| t.path == "/acme/s:fresh"), "{made:?}");
    // Someone who may not produce there gets nothing created.
    let open = door(anonymous()).await;
    let mut anon = TcpStream::connect(open.addr).await.unwrap();
    let r = metadata_with(&mut anon, 9, Some(&["other"]), true).await;
    assert_eq!(topics(&r), [("other".into(), 3, 0)]);
}

#[tokio::test]
async fn metadata_reports_the_advertised_address() {
    let d = door(Options {
        advertised: Some(("kafka.example.com".into(), 19092)),
        ..anonymous()
    })
    .await;
    let mut s = TcpStream::connect(d.addr).await.unwrap();
    let r = metadata(&mut s, 9, None).await;
    assert_eq!(r.brokers[0].host.as_str(), "kafka.example.com");
    assert_eq!(r.brokers[0].port, 19092);
}

#[tokio::test]
async fn without_anonymous_access_only_api_versions_is_served_before_authentication() {
    let d = door(Options {
        allow_anonymous: false,
        ..anonymous()
    })
    .await;
    let mut s = TcpStream::connect(d.addr).await.unwrap();
    s.write_all(&request(1, 3)).await.unwrap();
    let (_, body) = decode(read_response(&mut s).await.unwrap(), 3);
    assert_eq!(body.error_code, 0);
    s.write_all(&metadata_request(2, 9, None)).await.unwrap();
    assert!(
        closed(&mut s).await,
        "Metadata before authentication was served"
    );
}

#[tokio::test]
async fn sasl_plain_with_a_token_authenticates_the_connection_as_its_user() {
    let d = door(private()).await;
    for version in 0..=2 {
        let mut s = TcpStream::connect(d.addr).await.unwrap();
        let h = handshake(&mut s, "PLAIN").await;
        assert_eq!(h.error_code, 0);
        assert_eq!(
            h.mechanisms.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
            ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]
        );
        let a = plain(&mut s, version, "admin", &d.token).await;
        assert_eq!(a.error_code, 0, "{:?}", a.error_message);
        // Authenticated as the admin, who sees the private stream.
        let r = metadata(&mut s, 9, Some(&["/acme/private:secret"])).await;
        assert_eq!(topics(&r), [("/acme/private:secret".to_string(), 0, 1)]);
        // Once is enough: a second handshake is out of turn.
        assert_eq!(handshake(&mut s, "PLAIN").await.error_code, 34);
    }
}

#[tokio::test]
async fn a_failed_authentication_is_answered_then_the_connection_closes() {
    let d = door(private()).await;
    let wrong_secret = format!("{}x", &d.token[..d.token.len() - 1]);
    for (user, token) in [
        ("admin", wrong_secret.as_str()),
        ("someone-else", d.token.as_str()),
        ("admin", "not-a-token"),
    ] {
        let mut s = TcpStream::connect(d.addr).await.unwrap();
        assert_eq!(handshake(&mut s, "PLAIN").await.error_code, 0);
        let a = plain(&mut s, 2, user, token).await;
        assert_eq!(a.error_code, 58, "{user}");
        assert!(
            a.error_message
                .unwrap()
                .contains("invalid user name or token")
        );
        assert!(closed(&mut s).await, "{user}: the connection stays open");
    }
    // Authenticating without a handshake is out of turn, and closes too.
    let mut s = TcpStream::connect(d.addr).await.unwrap();
    let a = plain(&mut s, 1, "admin", &d.token).await;
    assert_eq!(a.error_code, 34);
    assert!(closed(&mut s).await);
}

#[tokio::test]
async fn an_unknown_mechanism_is_refused_with_the_ones_offered() {
    let d = door(private()).await;
    let mut s = TcpStream::connect(d.addr).await.unwrap();
    let h = handshake(&mut s, "GSSAPI").await;
    assert_eq!(h.error_code, 33);
    assert_eq!(
        h.mechanisms.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
        ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]
    );
    // Still unauthenticated: Metadata closes the connection.
    s.write_all(&metadata_request(2, 9, None)).await.unwrap();
    assert!(closed(&mut s).await);
}

#[tokio::test]
async fn describe_cluster_names_the_cluster_and_this_broker() {
    let d = door(Options {
        advertised: Some(("kafka.example.com".into(), 19092)),
        ..anonymous()
    })
    .await;
    let mut s = TcpStream::connect(d.addr).await.unwrap();
    for version in 0..=1 {
        let mut r = DescribeClusterRequest::default();
        if version >= 1 {
            r = r.with_endpoint_type(1);
        }
        let got: DescribeClusterResponse = call(&mut s, ApiKey::DescribeCluster, version, &r).await;
        assert_eq!(got.error_code, 0);
        assert_eq!(got.cluster_id.as_str(), d.ns.cluster_id().to_string());
        assert_eq!(got.brokers.len(), 1);
        assert_eq!(
            (got.brokers[0].host.as_str(), got.brokers[0].port),
            ("kafka.example.com", 19092)
        );
        assert_eq!(got.controller_id, got.brokers[0].broker_id);
    }
    let controllers = DescribeClusterRequest::default().with_endpoint_type(2);
    let got: DescribeClusterResponse = call(&mut s, ApiKey::DescribeCluster, 1, &controllers).await;
    assert_eq!(got.error_code, 115, "UNSUPPORTED_ENDPOINT_TYPE");
    assert!(got.brokers.is_empty());
}

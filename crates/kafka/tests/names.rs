//! How the Kafka door resolves names for the connection's user, on a real socket over a
//! real namespace: a user's default stream before the listener's (topics, "all topics"
//! and group ids alike), set, refused when malformed and cleared through the namespace;
//! and a request with bytes after its body answered, as Kafka answers it.

mod common;

use bytes::{BufMut, BytesMut};
use common::*;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, StrBytes};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tributary_core::acl::Acl;
use tributary_volume::StreamAttributesPatch;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

/// `/acme/b` (topic `mine`) that anyone may consume, and users `bob`, whose default stream
/// it is, and `carol`, who has none; their tokens.
async fn users(d: &Door) -> (String, String) {
    let admin = d.ns.authenticate(&d.token).unwrap();
    let open = StreamAttributesPatch {
        consume_perm: Some(Acl::parse("p").unwrap()),
        ..Default::default()
    };
    d.ns.create_stream(&admin, "/acme/b", &open).await.unwrap();
    d.ns.create_topic(&admin, "/acme/b:mine", Some(2))
        .await
        .unwrap();
    let (_, bob) =
        d.ns.create_user(&admin, "bob", vec![], false)
            .await
            .unwrap();
    let (_, carol) =
        d.ns.create_user(&admin, "carol", vec![], false)
            .await
            .unwrap();
    let u =
        d.ns.edit_user(&admin, "bob", Some("/acme/b"))
            .await
            .unwrap();
    assert_eq!(u.kafka_default_stream.as_deref(), Some("/acme/b"));
    (bob, carol)
}

async fn login(d: &Door, user: &str, token: &str) -> TcpStream {
    let mut c = TcpStream::connect(d.addr).await.unwrap();
    assert_eq!(handshake(&mut c, "PLAIN").await.error_code, 0);
    assert_eq!(plain(&mut c, 2, user, token).await.error_code, 0);
    c
}

/// Metadata v12 for `names` (all topics when `None`): each topic's name and code.
async fn metadata(c: &mut TcpStream, names: Option<&[&str]>) -> Vec<(String, i16)> {
    let topics = names.map(|n| {
        n.iter()
            .map(|t| MetadataRequestTopic::default().with_name(Some(TopicName(s(t)))))
            .collect()
    });
    let r: MetadataResponse = call(
        c,
        ApiKey::Metadata,
        12,
        &MetadataRequest::default().with_topics(topics),
    )
    .await;
    let mut v: Vec<_> = r
        .topics
        .iter()
        .map(|t| (t.name.as_ref().unwrap().to_string(), t.error_code))
        .collect();
    v.sort();
    v
}

fn named(v: &[(&str, i16)]) -> Vec<(String, i16)> {
    v.iter().map(|(n, c)| (n.to_string(), *c)).collect()
}

#[tokio::test]
async fn a_users_default_stream_comes_before_the_listeners() {
    let d = door(private()).await;
    let (bob, carol) = users(&d).await;
    let mut b = login(&d, "bob", &bob).await;
    let mut c = login(&d, "carol", &carol).await;
    assert_eq!(metadata(&mut b, None).await, named(&[("mine", 0)]));
    assert_eq!(
        metadata(&mut c, None).await,
        named(&[("clicks", 0), ("orders", 0)])
    );
    // Bob's flat names are his stream's; the listener's default is not reached.
    assert_eq!(
        metadata(&mut b, Some(&["mine", "orders", "/acme/s:orders"])).await,
        named(&[("/acme/s:orders", 0), ("mine", 0), ("orders", 3)])
    );
    assert_eq!(
        metadata(&mut c, Some(&["mine"])).await,
        named(&[("mine", 3)])
    );

    // Bob's group ids live in his stream too.
    let commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(s("bob's group")))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![
            OffsetCommitRequestTopic::default()
                .with_name(TopicName(s("mine")))
                .with_partitions(vec![OffsetCommitRequestPartition::default()]),
        ]);
    let r: OffsetCommitResponse = call(&mut b, ApiKey::OffsetCommit, 8, &commit).await;
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    let admin = d.ns.authenticate(&d.token).unwrap();
    let groups = d.ns.list_groups(&admin, "/acme/b").await.unwrap();
    assert_eq!(
        groups.iter().map(|g| g.group.as_str()).collect::<Vec<_>>(),
        ["_k.bob_27s_20group"]
    );
    let listed: ListGroupsResponse =
        call(&mut b, ApiKey::ListGroups, 4, &ListGroupsRequest::default()).await;
    assert_eq!(listed.groups.len(), 1);
    assert_eq!(listed.groups[0].group_id.as_str(), "bob's group");
    let listed: ListGroupsResponse =
        call(&mut c, ApiKey::ListGroups, 4, &ListGroupsRequest::default()).await;
    assert!(listed.groups.is_empty(), "{listed:?}");

    // A malformed path is refused and changes nothing; only cluster admins edit users.
    for bad in ["/acme", "acme/b", "/acme/b:mine", "/acme//b"] {
        let e =
            d.ns.edit_user(&admin, "bob", Some(bad))
                .await
                .unwrap_err()
                .to_string();
        assert!(e.contains("kafka_default_stream"), "{bad}: {e}");
    }
    let carol_caller = d.ns.authenticate(&carol).unwrap();
    assert!(
        d.ns.edit_user(&carol_caller, "carol", Some("/acme/b"))
            .await
            .is_err()
    );
    assert_eq!(metadata(&mut b, None).await, named(&[("mine", 0)]));
    assert_eq!(metadata(&mut c, None).await.len(), 2);

    // Cleared, bob's flat names are the listener's again, on the same connection.
    let u = d.ns.edit_user(&admin, "bob", Some("")).await.unwrap();
    assert_eq!(u.kafka_default_stream, None);
    assert_eq!(
        metadata(&mut b, None).await,
        named(&[("clicks", 0), ("orders", 0)])
    );
}

#[tokio::test]
async fn anonymous_connections_resolve_in_the_listeners_default_stream() {
    let d = door(anonymous()).await;
    let mut a = TcpStream::connect(d.addr).await.unwrap();
    assert_eq!(
        metadata(&mut a, None).await,
        named(&[("clicks", 0), ("orders", 0)])
    );
}

#[tokio::test]
async fn bytes_after_a_requests_body_are_ignored_as_kafka_ignores_them() {
    let d = door(anonymous()).await;
    let mut a = TcpStream::connect(d.addr).await.unwrap();
    // librdkafka 2.10+'s all-topics Metadata v12: three bytes after the body.
    let framed = framed(
        ApiKey::Metadata,
        12,
        7,
        &MetadataRequest::default().with_topics(None),
    );
    let mut b = BytesMut::from(&framed[..]);
    b.put_slice(&[0, 0, 0]);
    let size = (b.len() - 4) as i32;
    b[..4].copy_from_slice(&size.to_be_bytes());
    a.write_all(&b).await.unwrap();
    let mut r = read_response(&mut a).await.expect("an answer");
    let h = ResponseHeader::decode(&mut r, ApiKey::Metadata.response_header_version(12)).unwrap();
    assert_eq!(h.correlation_id, 7);
    let md = MetadataResponse::decode(&mut r, 12).unwrap();
    assert_eq!(md.topics.len(), 2);
    // The connection goes on.
    assert_eq!(
        metadata(&mut a, Some(&["orders"])).await,
        named(&[("orders", 0)])
    );
}

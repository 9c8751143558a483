//! Kafka's classic consumer groups on a real socket over a real namespace (RocksDB in a
//! temporary directory), spoken byte for byte as a client does: KIP-394's member id, a
//! second member's rebalance with the leader's assignments relayed, generation fencing,
//! commits with metadata read back and seen by Tributary's own group views, session
//! expiry, leaving, the stream ACL as the group's, one protocol per group, and any
//! non-empty string as a group id.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tributary_core::acl::Acl;
use tributary_storage::{Store, StoreOptions};
use tributary_volume::{
    Caller, ClientMsg, Credential, Namespace, ServerMsg, StreamAttributesPatch, SystemClock,
};

/// A listener whose default stream is `/acme/s` (topic `orders`, 4 partitions, with 10
/// records in partition 0; anyone may consume), beside `/acme/private` that only its owner
/// may use.
struct Door {
    addr: std::net::SocketAddr,
    ns: Arc<Namespace>,
    admin: Caller,
    token: String,
    _stop: oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

async fn door() -> Door {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("db"), &StoreOptions::default()).unwrap());
    let ns = Arc::new(Namespace::open(store, Arc::new(SystemClock)).await.unwrap());
    let token = ns.ensure_admin().await.unwrap().unwrap();
    let admin = ns.authenticate(&token).unwrap();
    ns.create_volume(&admin, "/acme", None, None, Default::default())
        .await
        .unwrap();
    let open = StreamAttributesPatch {
        consume_perm: Some(Acl::parse("p").unwrap()),
        produce_perm: Some(Acl::parse("p").unwrap()),
        ..Default::default()
    };
    ns.create_stream(&admin, "/acme/s", &open).await.unwrap();
    ns.create_topic(&admin, "/acme/s:orders", Some(4))
        .await
        .unwrap();
    let batch = tributary_proto::v1::RecordBatch {
        records: vec![tributary_proto::v1::Record::default(); 10],
        ..Default::default()
    };
    ns.produce(
        &admin,
        "/acme/s:orders",
        Some(0),
        batch.encode_to_vec().into(),
    )
    .await
    .unwrap();
    ns.create_stream(&admin, "/acme/private", &StreamAttributesPatch::default())
        .await
        .unwrap();
    ns.create_topic(&admin, "/acme/private:secret", Some(1))
        .await
        .unwrap();
    let (addr, stop) = common::listen(ns.clone(), common::anonymous()).await;
    Door {
        addr,
        ns,
        admin,
        token,
        _stop: stop,
        _dir: dir,
    }
}

/// One client connection, numbering its requests.
struct Conn {
    s: TcpStream,
    next: i32,
}

impl Conn {
    async fn open(d: &Door) -> Conn {
        Conn {
            s: TcpStream::connect(d.addr).await.unwrap(),
            next: 1,
        }
    }

    /// A connection authenticated as the cluster admin (SASL PLAIN, the token as password).
    async fn admin(d: &Door) -> Conn {
        let mut c = Conn::open(d).await;
        let h: SaslHandshakeResponse = c
            .call(
                ApiKey::SaslHandshake,
                1,
                &SaslHandshakeRequest::default().with_mechanism(s("PLAIN")),
            )
            .await;
        assert_eq!(h.error_code, 0);
        let auth = format!("\0admin\0{}", d.token);
        let a: SaslAuthenticateResponse = c
            .call(
                ApiKey::SaslAuthenticate,
                2,
                &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(auth)),
            )
            .await;
        assert_eq!(a.error_code, 0);
        c
    }

    async fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        body: &Req,
    ) -> Resp {
        let id = self.next;
        self.next += 1;
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(id)
            .with_client_id(Some(StrBytes::from_static_str("raw")));
        let mut b = BytesMut::new();
        b.put_i32(0);
        header
            .encode(&mut b, key.request_header_version(version))
            .unwrap();
        body.encode(&mut b, version).unwrap();
        let size = (b.len() - 4) as i32;
        b[..4].copy_from_slice(&size.to_be_bytes());
        self.s.write_all(&b).await.unwrap();
        let mut size = [0u8; 4];
        self.s.read_exact(&mut size).await.unwrap();
        let mut r = vec![0u8; i32::from_be_bytes(size) as usize];
        self.s.read_exact(&mut r).await.unwrap();
        let mut r = Bytes::from(r);
        let h = ResponseHeader::decode(&mut r, key.response_header_version(version)).unwrap();
        assert_eq!(h.correlation_id, id);
        let body = Resp::decode(&mut r, version).unwrap();
        assert!(!r.has_remaining(), "{key:?} v{version}: bytes left over");
        body
    }

    async fn join(&mut self, group: &str, member: &str, version: i16) -> JoinGroupResponse {
        let req = JoinGroupRequest::default()
            .with_group_id(gid(group))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(20_000)
            .with_member_id(s(member))
            .with_protocol_type(s("consumer"))
            .with_protocols(vec![
                JoinGroupRequestProtocol::default()
                    .with_name(s("range"))
                    .with_metadata(Bytes::from_static(b"subscription")),
            ]);
        self.call(ApiKey::JoinGroup, version, &req).await
    }

    /// KIP-394's two steps: the id, then the join.
    async fn join_new(&mut self, group: &str) -> JoinGroupResponse {
        let first = self.join(group, "", 5).await;
        assert_eq!(first.error_code, 79, "MEMBER_ID_REQUIRED");
        assert!(!first.member_id.is_empty());
        self.join(group, &first.member_id, 5).await
    }

    async fn sync(
        &mut self,
        group: &str,
        member: &str,
        generation: i32,
        assignments: &[(&str, &'static [u8])],
    ) -> SyncGroupResponse {
        let req = SyncGroupRequest::default()
            .with_group_id(gid(group))
            .with_generation_id(generation)
            .with_member_id(s(member))
            .with_protocol_type(Some(s("consumer")))
            .with_protocol_name(Some(s("range")))
            .with_assignments(
                assignments
                    .iter()
                    .map(|(m, a)| {
                        SyncGroupRequestAssignment::default()
                            .with_member_id(s(m))
                            .with_assignment(Bytes::from_static(a))
                    })
                    .collect(),
            );
        self.call(ApiKey::SyncGroup, 5, &req).await
    }

    async fn heartbeat(&mut self, group: &str, member: &str, generation: i32) -> i16 {
        let req = HeartbeatRequest::default()
            .with_group_id(gid(group))
            .with_generation_id(generation)
            .with_member_id(s(member));
        let r: HeartbeatResponse = self.call(ApiKey::Heartbeat, 4, &req).await;
        r.error_code
    }

    /// Commits `(partition, offset, metadata)` of `orders`; each partition's code.
    async fn commit(
        &mut self,
        group: &str,
        member: &str,
        generation: i32,
        offsets: &[(i32, i64, Option<&str>)],
    ) -> Vec<i16> {
        let req = OffsetCommitRequest::default()
            .with_group_id(gid(group))
            .with_generation_id_or_member_epoch(generation)
            .with_member_id(s(member))
            .with_topics(vec![
                OffsetCommitRequestTopic::default()
                    .with_name(TopicName(s("orders")))
                    .with_partitions(
                        offsets
                            .iter()
                            .map(|(p, o, m)| {
                                OffsetCommitRequestPartition::default()
                                    .with_partition_index(*p)
                                    .with_committed_offset(*o)
                                    .with_committed_metadata(m.map(s))
                            })
                            .collect(),
                    ),
            ]);
        let r: OffsetCommitResponse = self.call(ApiKey::OffsetCommit, 8, &req).await;
        r.topics[0]
            .partitions
            .iter()
            .map(|p| p.error_code)
            .collect()
    }

    /// OffsetFetch v5 of `orders` partitions 0-3: `(offset, metadata, code)` each.
    async fn fetch(&mut self, group: &str) -> (i16, Vec<(i64, String, i16)>) {
        let req = OffsetFetchRequest::default()
            .with_group_id(gid(group))
            .with_topics(Some(vec![
                OffsetFetchRequestTopic::default()
                    .with_name(TopicName(s("orders")))
                    .with_partition_indexes(vec![0, 1, 2, 3]),
            ]));
        let r: OffsetFetchResponse = self.call(ApiKey::OffsetFetch, 5, &req).await;
        let parts = r
            .topics
            .first()
            .map(|t| {
                t.partitions
                    .iter()
                    .map(|p| {
                        let meta = p
                            .metadata
                            .as_ref()
                            .map(|m| m.to_string())
                            .unwrap_or_default();
                        (p.committed_offset, meta, p.error_code)
                    })
                    .collect()
            })
            .unwrap_or_default();
        (r.error_code, parts)
    }
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

fn gid(v: &str) -> GroupId {
    GroupId(s(v))
}

async fn until(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn two_members_join_sync_commit_and_rebalance_on_leave() {
    let d = door().await;
    let mut a = Conn::open(&d).await;
    let fc: FindCoordinatorResponse = a
        .call(
            ApiKey::FindCoordinator,
            4,
            &FindCoordinatorRequest::default().with_coordinator_keys(vec![s("billing")]),
        )
        .await;
    assert_eq!(fc.coordinators[0].error_code, 0);
    assert_eq!(fc.coordinators[0].port, i32::from(d.addr.port()));

    let ja = a.join_new("billing").await;
    assert_eq!((ja.error_code, ja.generation_id), (0, 1));
    assert_eq!(ja.leader, ja.member_id, "the first member leads");
    assert_eq!(ja.members.len(), 1);
    assert_eq!(ja.members[0].metadata, Bytes::from_static(b"subscription"));
    let ma = ja.member_id.to_string();
    let sa = a.sync("billing", &ma, 1, &[(&ma, b"all four")]).await;
    assert_eq!((sa.error_code, &sa.assignment[..]), (0, &b"all four"[..]));
    assert_eq!(a.heartbeat("billing", &ma, 1).await, 0);

    // A second member parks in its join until the leader rejoins.
    let mut b = Conn::open(&d).await;
    let first = b.join("billing", "", 9).await;
    assert_eq!(first.error_code, 79);
    let mb = first.member_id.to_string();
    let b_join = tokio::spawn(async move {
        let r = b.join("billing", &mb, 9).await;
        (b, r)
    });
    until("the leader hears of the rebalance", async || {
        a.heartbeat("billing", &ma, 1).await == 27
    })
    .await;
    let ja = a.join("billing", &ma, 5).await;
    let (mut b, jb) = b_join.await.unwrap();
    assert_eq!((ja.generation_id, jb.generation_id), (2, 2));
    assert_eq!(ja.members.len(), 2);
    assert!(jb.members.is_empty());
    assert_eq!(jb.protocol_name.as_deref(), Some("range"));
    assert_eq!(jb.protocol_type.as_deref(), Some("consumer"));
    let mb = jb.member_id.to_string();
    let b_sync = tokio::spawn(async move {
        let r = b.sync("billing", &mb, 2, &[]).await;
        (b, r)
    });
    let sa = a
        .sync(
            "billing",
            &ma,
            2,
            &[(&ma, b"p0 p1"), (&jb.member_id, b"p2 p3")],
        )
        .await;
    let (mut b, sb) = b_sync.await.unwrap();
    assert_eq!(&sa.assignment[..], b"p0 p1");
    assert_eq!(&sb.assignment[..], b"p2 p3");
    let mb = jb.member_id.to_string();

    // Commits: fenced by member and generation, metadata kept.
    assert_eq!(
        a.commit("billing", &ma, 2, &[(0, 7, Some("epoch=3")), (1, 0, None)])
            .await,
        vec![0, 0]
    );
    assert_eq!(a.commit("billing", &ma, 1, &[(0, 8, None)]).await, vec![22]);
    assert_eq!(
        a.commit("billing", "ghost", 2, &[(0, 8, None)]).await,
        vec![25]
    );
    assert_eq!(a.commit("billing", "", -1, &[(0, 8, None)]).await, vec![25]);
    // Past the end, an unknown partition, metadata over Kafka's limit.
    let long = "m".repeat(5000);
    assert_eq!(
        b.commit(
            "billing",
            &mb,
            2,
            &[(2, 11, None), (9, 0, None), (3, 0, Some(&long))]
        )
        .await,
        vec![1, 3, 12]
    );
    let (code, parts) = b.fetch("billing").await;
    assert_eq!(code, 0);
    assert_eq!(
        parts,
        vec![
            (7, "epoch=3".into(), 0),
            (0, String::new(), 0),
            (-1, String::new(), 0),
            (-1, String::new(), 0)
        ]
    );

    // Tributary's own views see the Kafka group: its members and its cursors, with lag.
    let info =
        d.ns.describe_group(&d.admin, "/acme/s", "billing")
            .await
            .unwrap();
    assert_eq!(info.members.len(), 2);
    let p0 = info.partitions.iter().find(|p| p.partition == 0).unwrap();
    assert_eq!((p0.committed.as_ref().unwrap().offset, p0.lag), (7, 3));
    let listed = d.ns.list_groups(&d.admin, "/acme/s").await.unwrap();
    assert_eq!(
        (listed[0].group.as_str(), listed[0].members),
        ("billing", 2)
    );
    // …and refuse what needs it idle.
    assert!(
        d.ns.reset_group(
            &d.admin,
            "/acme/s",
            "billing",
            None,
            tributary_volume::ResetTo::Offset(0)
        )
        .await
        .is_err()
    );
    let described: DescribeGroupsResponse = a
        .call(
            ApiKey::DescribeGroups,
            5,
            &DescribeGroupsRequest::default().with_groups(vec![gid("billing"), gid("nobody")]),
        )
        .await;
    let g = &described.groups[0];
    assert_eq!((g.error_code, g.group_state.as_str()), (0, "Stable"));
    assert_eq!(
        (g.protocol_type.as_str(), g.protocol_data.as_str()),
        ("consumer", "range")
    );
    assert_eq!(g.members.len(), 2);
    assert!(g.members.iter().all(|m| m.client_id.as_str() == "raw"));
    assert!(
        g.members
            .iter()
            .any(|m| &m.member_assignment[..] == b"p2 p3")
    );
    assert_eq!(described.groups[1].group_state.as_str(), "Dead");

    // Deleting takes the stream's admin permission; and a non-empty group cannot be.
    let del: DeleteGroupsResponse = a
        .call(
            ApiKey::DeleteGroups,
            2,
            &DeleteGroupsRequest::default().with_groups_names(vec![gid("billing")]),
        )
        .await;
    assert_eq!(del.results[0].error_code, 30);
    let mut admin = Conn::admin(&d).await;
    let del: DeleteGroupsResponse = admin
        .call(
            ApiKey::DeleteGroups,
            2,
            &DeleteGroupsRequest::default().with_groups_names(vec![gid("billing"), gid("nobody")]),
        )
        .await;
    assert_eq!(
        del.results.iter().map(|r| r.error_code).collect::<Vec<_>>(),
        vec![68, 69]
    );

    // b leaves (v3 names its members): a is told to rejoin, and gets everything.
    let left: LeaveGroupResponse = b
        .call(
            ApiKey::LeaveGroup,
            4,
            &LeaveGroupRequest::default()
                .with_group_id(gid("billing"))
                .with_members(vec![MemberIdentity::default().with_member_id(s(&mb))]),
        )
        .await;
    assert_eq!((left.error_code, left.members[0].error_code), (0, 0));
    assert_eq!(a.heartbeat("billing", &ma, 2).await, 27);
    let ja = a.join("billing", &ma, 5).await;
    assert_eq!((ja.generation_id, ja.members.len()), (3, 1));
    assert_eq!(b.heartbeat("billing", &mb, 3).await, 25);

    // Once empty, the group is listed as such and may be deleted; its cursors go with it.
    let left: LeaveGroupResponse = a
        .call(
            ApiKey::LeaveGroup,
            1,
            &LeaveGroupRequest::default()
                .with_group_id(gid("billing"))
                .with_member_id(s(&ma)),
        )
        .await;
    assert_eq!(left.error_code, 0);
    let listed: ListGroupsResponse = a
        .call(ApiKey::ListGroups, 4, &ListGroupsRequest::default())
        .await;
    assert_eq!(listed.groups.len(), 1);
    assert_eq!(
        (
            listed.groups[0].group_id.as_str(),
            listed.groups[0].group_state.as_str()
        ),
        ("billing", "Empty")
    );
    let del: DeleteGroupsResponse = admin
        .call(
            ApiKey::DeleteGroups,
            0,
            &DeleteGroupsRequest::default().with_groups_names(vec![gid("billing")]),
        )
        .await;
    assert_eq!(del.results[0].error_code, 0);
    assert_eq!(b.fetch("billing").await.1[0].0, -1);
}

#[tokio::test]
async fn a_silent_member_is_removed_at_its_session_timeout() {
    let d = door().await;
    let mut a = Conn::open(&d).await;
    let mut b = Conn::open(&d).await;
    let ja = a.join_new("g").await;
    let ma = ja.member_id.to_string();
    a.sync("g", &ma, 1, &[]).await;
    let jb = {
        let first = b.join("g", "", 5).await;
        let mb = first.member_id.to_string();
        let parked = tokio::spawn(async move { (b.join("g", &mb, 5).await, b) });
        a.join("g", &ma, 5).await;
        let (jb, b) = parked.await.unwrap();
        drop(b); // b is never heard from again.
        jb
    };
    assert_eq!(jb.generation_id, 2);
    a.sync("g", &ma, 2, &[]).await;
    // b's 10 s session runs out while a keeps heartbeating; then a must rejoin, alone.
    until("b's session expires", async || {
        a.heartbeat("g", &ma, 2).await == 27
    })
    .await;
    let ja = a.join("g", &ma, 5).await;
    assert_eq!((ja.generation_id, ja.members.len()), (3, 1));
}

#[tokio::test]
async fn a_group_of_a_stream_the_caller_may_not_consume_is_refused() {
    let d = door().await;
    let mut c = Conn::open(&d).await;
    let fc: FindCoordinatorResponse = c
        .call(
            ApiKey::FindCoordinator,
            2,
            &FindCoordinatorRequest::default().with_key(s("/acme/private:g")),
        )
        .await;
    assert_eq!(fc.error_code, 30);
    let j = c.join("/acme/private:g", "", 5).await;
    assert_eq!(j.error_code, 30);
    assert_eq!(c.heartbeat("/acme/private:g", "m", 1).await, 30);
    assert_eq!(c.fetch("/acme/private:g").await.0, 30);
    let codes = c.commit("/acme/private:g", "", -1, &[(0, 1, None)]).await;
    assert_eq!(codes, vec![30]);
    // A group in an open stream committing a topic of the private one: the topic's code.
    let req = OffsetCommitRequest::default()
        .with_group_id(gid("g"))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![
            OffsetCommitRequestTopic::default()
                .with_name(TopicName(s("/acme/private:secret")))
                .with_partitions(vec![OffsetCommitRequestPartition::default()]),
        ]);
    let r: OffsetCommitResponse = c.call(ApiKey::OffsetCommit, 2, &req).await;
    assert_eq!(r.topics[0].partitions[0].error_code, 29);
    // The one group id Kafka refuses: the empty one.
    let j = c.join("", "", 5).await;
    assert_eq!(j.error_code, 24);
    let fc: FindCoordinatorResponse = c
        .call(
            ApiKey::FindCoordinator,
            3,
            &FindCoordinatorRequest::default()
                .with_key(s("t"))
                .with_key_type(1),
        )
        .await;
    assert_eq!(fc.error_code, 15, "transactions have no coordinator here");
}

#[tokio::test]
async fn any_group_id_is_a_group_stored_under_a_name_tributary_shows() {
    let d = door().await;
    let mut c = Conn::open(&d).await;
    let id = "connect-cluster.my sink/1:x";
    let fc: FindCoordinatorResponse = c
        .call(
            ApiKey::FindCoordinator,
            4,
            &FindCoordinatorRequest::default().with_coordinator_keys(vec![s(id), s("")]),
        )
        .await;
    let codes: Vec<i16> = fc.coordinators.iter().map(|c| c.error_code).collect();
    assert_eq!(codes, vec![0, 24]);
    let j = c.join_new(id).await;
    assert_eq!(j.error_code, 0);
    let sync = c
        .sync(id, &j.member_id, j.generation_id, &[(&j.member_id, b"all")])
        .await;
    assert_eq!(sync.error_code, 0);
    let codes = c
        .commit(id, &j.member_id, j.generation_id, &[(0, 7, Some("m"))])
        .await;
    assert_eq!(codes, vec![0]);
    let (code, parts) = c.fetch(id).await;
    assert_eq!((code, parts[0].0, parts[0].1.as_str()), (0, 7, "m"));

    // Tributary's own views show it under its stored name; Kafka's under its id.
    let name = "_k.connect-cluster.my_20sink_2F1_3Ax";
    let groups = d.ns.list_groups(&d.admin, "/acme/s").await.unwrap();
    assert_eq!(
        groups.iter().map(|g| g.group.as_str()).collect::<Vec<_>>(),
        [name]
    );
    let info =
        d.ns.describe_group(&d.admin, "/acme/s", name)
            .await
            .unwrap();
    assert!(
        info.partitions
            .iter()
            .any(|p| p.committed.as_ref().is_some_and(|c| c.offset == 7)),
        "{info:?}"
    );
    let listed: ListGroupsResponse = c
        .call(ApiKey::ListGroups, 4, &ListGroupsRequest::default())
        .await;
    let listed: Vec<_> = listed
        .groups
        .iter()
        .map(|g| (g.group_id.to_string(), g.group_state.to_string()))
        .collect();
    assert_eq!(listed, [(id.to_string(), "Stable".to_string())]);
    let described: DescribeGroupsResponse = c
        .call(
            ApiKey::DescribeGroups,
            5,
            &DescribeGroupsRequest::default().with_groups(vec![gid(id)]),
        )
        .await;
    let g = &described.groups[0];
    assert_eq!((g.error_code, g.members.len()), (0, 1));
    // A verbatim stream keeps its ACL whatever the id.
    assert_eq!(c.join("/acme/private:my sink", "", 5).await.error_code, 30);
    // An id that looks like a stored name is a group of its own.
    assert_eq!(c.fetch(name).await.1[0].0, -1);
}

#[tokio::test]
async fn a_group_speaks_one_protocol_at_a_time() {
    let d = door().await;
    // A Tributary member holds group `both`: a Kafka join is refused.
    let (to_server, inbound) = mpsc::channel::<ClientMsg>(8);
    let (outbound, mut from_server) = mpsc::channel::<ServerMsg>(8);
    let ns = d.ns.clone();
    let credential = Credential::Token(d.token.clone());
    let session = tokio::spawn(async move {
        let join = tributary_volume::JoinRequest {
            stream: "/acme/s".into(),
            group: "both".into(),
            topics: vec!["orders".into()],
            ..Default::default()
        };
        ns.subscribe(&credential, join, inbound, outbound).await
    });
    assert!(matches!(
        from_server.recv().await,
        Some(ServerMsg::Joined { .. })
    ));
    let mut k = Conn::open(&d).await;
    assert_eq!(k.join("both", "", 5).await.error_code, 23);
    assert_eq!(k.commit("both", "", -1, &[(0, 1, None)]).await, vec![23]);
    drop(to_server);
    session.await.unwrap().unwrap();

    // Now a Kafka member holds it: Tributary's join and standalone commit are refused.
    let j = k.join_new("both").await;
    assert_eq!(j.error_code, 0);
    let (_to_server, inbound) = mpsc::channel::<ClientMsg>(8);
    let (outbound, _from_server) = mpsc::channel::<ServerMsg>(8);
    let join = tributary_volume::JoinRequest {
        stream: "/acme/s".into(),
        group: "both".into(),
        topics: vec!["orders".into()],
        ..Default::default()
    };
    let refused =
        d.ns.subscribe(&Credential::Token(d.token.clone()), join, inbound, outbound)
            .await
            .unwrap_err();
    assert!(
        matches!(
            refused,
            tributary_volume::Error::Group(tributary_core::Error::InconsistentProtocol { .. })
        ),
        "{refused}"
    );
    let commit =
        d.ns.commit_offsets(
            &d.admin,
            "/acme/s",
            "both",
            None,
            vec![tributary_volume::CursorCommit {
                topic: "orders".into(),
                partition: 0,
                offset: 1,
            }],
        )
        .await;
    assert!(commit.is_err());
}

/// KIP-345 and KIP-814: a static leader restarting into a stable group keeps the
/// generation, is told (JoinGroup v9) to skip the assignment, and its SyncGroup gets the
/// assignment in force.
#[tokio::test]
async fn a_restarted_static_leader_keeps_the_generation_and_skips_the_assignment() {
    let d = door().await;
    let join = JoinGroupRequest::default()
        .with_group_id(gid("static"))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(20_000)
        .with_group_instance_id(Some(s("inst-1")))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![
            JoinGroupRequestProtocol::default()
                .with_name(s("range"))
                .with_metadata(Bytes::from_static(b"subscription")),
        ]);
    let mut a = Conn::open(&d).await;
    let first: JoinGroupResponse = a.call(ApiKey::JoinGroup, 9, &join).await;
    assert_eq!((first.error_code, first.generation_id), (0, 1));
    assert!(!first.skip_assignment, "a first leader assigns");
    let old = first.member_id.to_string();
    let synced = a.sync("static", &old, 1, &[(&old, b"A")]).await;
    assert_eq!(synced.assignment, Bytes::from_static(b"A"));

    let mut b = Conn::open(&d).await;
    let again: JoinGroupResponse = b.call(ApiKey::JoinGroup, 9, &join).await;
    let new = again.member_id.to_string();
    assert_ne!(new, old);
    assert_eq!((again.error_code, again.generation_id), (0, 1));
    assert_eq!(again.leader.to_string(), new);
    assert!(again.skip_assignment);
    let synced = b.sync("static", &new, 1, &[(&new, b"other")]).await;
    assert_eq!(
        synced.assignment,
        Bytes::from_static(b"A"),
        "the one in force"
    );
    assert_eq!(b.heartbeat("static", &new, 1).await, 0);
}

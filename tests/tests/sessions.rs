//! Long-running sessions end to end: revoking a caller's access (an ACL edit, a deleted
//! user, a rotated token) reaches its open `Subscribe` session and its parked long-poll
//! `Fetch` at once, and no record produced after the revocation reaches either; and a
//! group member's liveness as `consumer.proto` states it: the open stream keeps it alive
//! without a word from the client, and a peer that silently vanished is dropped.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;
use tributary_client::{Client, GroupConfig, GroupConsumer, unkeyed};
use tributary_e2e::{InProcess, Proxy, wait_until};
use tributary_proto::v1;

const USER: &str = "reader";
const STREAM: &str = "/v/s";
const TOPIC: &str = "/v/s:t";

/// The three ways to take a user's access away.
#[derive(Debug, Clone, Copy)]
enum Revocation {
    /// The stream's consume ACL no longer names the user.
    Acl,
    DeleteUser,
    RotateToken,
}

impl Revocation {
    async fn apply(self, admin: &Client) {
        let mut a = admin.admin();
        match self {
            Revocation::Acl => {
                let attributes = v1::StreamAttributes {
                    consume_perm: Some("u:someone-else".into()),
                    ..Default::default()
                };
                a.edit_stream(v1::EditStreamRequest {
                    path: STREAM.into(),
                    attributes: Some(attributes),
                })
                .await
                .unwrap();
            }
            Revocation::DeleteUser => {
                a.delete_user(v1::DeleteUserRequest { name: USER.into() })
                    .await
                    .unwrap();
            }
            Revocation::RotateToken => {
                a.rotate_token(v1::RotateTokenRequest { name: USER.into() })
                    .await
                    .unwrap();
            }
        }
    }

    /// The status that ends the revoked caller's session, and a word its message has.
    fn expected(self) -> (Code, &'static str) {
        match self {
            Revocation::Acl => (Code::PermissionDenied, "consume"),
            Revocation::DeleteUser | Revocation::RotateToken => (Code::Unauthenticated, ""),
        }
    }
}

/// A server with a stream whose one topic `USER` may consume, the admin's client and the
/// user's.
async fn setup() -> (InProcess, Client, Client) {
    let server = InProcess::start().await;
    let admin = server.client().await;
    let mut a = admin.admin();
    let token = a
        .create_user(v1::CreateUserRequest {
            name: USER.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .token;
    a.create_volume(v1::CreateVolumeRequest {
        path: "/v".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let attributes = v1::StreamAttributes {
        consume_perm: Some(format!("u:{USER}")),
        ..Default::default()
    };
    a.create_stream(v1::CreateStreamRequest {
        path: STREAM.into(),
        attributes: Some(attributes),
    })
    .await
    .unwrap();
    a.create_topic(v1::CreateTopicRequest {
        path: TOPIC.into(),
        partitions: Some(1),
    })
    .await
    .unwrap();
    let user = server.client_as(Some(&token)).await;
    (server, admin, user)
}

async fn produce(admin: &Client, value: &'static str) {
    admin
        .produce(TOPIC, Some(0), vec![unkeyed(value)])
        .await
        .unwrap();
}

/// The group's members as `(client_id, partitions owned)`, sorted; none once the group
/// (without members or cursors) is gone.
async fn members(admin: &Client) -> Vec<(String, usize)> {
    let g = admin
        .consumer()
        .describe_group(v1::DescribeGroupRequest {
            stream: STREAM.into(),
            group: "g".into(),
        })
        .await;
    let g = match g {
        Err(e) if e.code() == Code::NotFound => return Vec::new(),
        g => g.unwrap().into_inner(),
    };
    let mut m: Vec<_> = g
        .members
        .into_iter()
        .map(|m| (m.client_id, m.partitions.len()))
        .collect();
    m.sort();
    m
}

/// A member receiving records; revoked; then a record produced by the admin: the member's
/// session ends with the revocation's status, the group drops it, and the record produced
/// after the revocation never reaches it.
async fn revoking_ends_the_subscribe_session(how: Revocation) {
    let (_server, admin, user) = setup().await;
    let mut config = GroupConfig::new(STREAM, "g", &["t"]);
    config.auto_commit = None;
    let mut member = GroupConsumer::join(&user, config).await.unwrap();
    produce(&admin, "before").await;
    let got = tokio::time::timeout(Duration::from_secs(30), member.poll())
        .await
        .expect("the member receives the first record")
        .unwrap();
    assert_eq!(got[0].record.record.value.as_deref(), Some(&b"before"[..]));

    how.apply(&admin).await;
    produce(&admin, "after").await;
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match member.poll().await {
                Ok(records) => {
                    for r in records {
                        assert_ne!(
                            r.record.record.value.as_deref(),
                            Some(&b"after"[..]),
                            "{how:?}: a record produced after the revocation reached the member"
                        );
                    }
                }
                Err(e) => return e,
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{how:?}: the revoked member's session went on"));
    let (code, word) = how.expected();
    assert_eq!(ended.code(), Some(code), "{how:?}: {ended}");
    assert!(ended.to_string().contains(word), "{how:?}: {ended}");

    wait_until(
        "the group to drop the revoked member",
        Duration::from_secs(10),
        || async { members(&admin).await.is_empty().then_some(()) },
    )
    .await;
}

/// A long-poll fetch parked at the end of the partition; revoked; then a record produced
/// by the admin: the fetch returns the revocation's status, not the record.
async fn revoking_ends_a_parked_fetch(how: Revocation) {
    let (_server, admin, user) = setup().await;
    produce(&admin, "before").await;
    let parked = {
        let user = user.clone();
        tokio::spawn(async move { user.fetch(TOPIC, 0, 1, 0, Duration::from_secs(60)).await })
    };
    // A call sent after the fetch on the same connection has come back, so the fetch has
    // reached the server and is parked (had it not, its start would refuse it just the same).
    user.fetch(TOPIC, 0, 0, 0, Duration::ZERO).await.unwrap();
    how.apply(&admin).await;
    produce(&admin, "after").await;
    let r = tokio::time::timeout(Duration::from_secs(30), parked)
        .await
        .unwrap_or_else(|_| panic!("{how:?}: the parked fetch went on waiting"))
        .unwrap();
    let e = match r {
        Ok(f) => panic!(
            "{how:?}: the revoked fetch returned {} record(s) produced after the revocation",
            f.records.len()
        ),
        Err(e) => e,
    };
    let (code, word) = how.expected();
    assert_eq!(e.code(), Some(code), "{how:?}: {e}");
    assert!(e.to_string().contains(word), "{how:?}: {e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_acl_edit_ends_the_subscribe_session() {
    revoking_ends_the_subscribe_session(Revocation::Acl).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_the_user_ends_the_subscribe_session() {
    revoking_ends_the_subscribe_session(Revocation::DeleteUser).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rotating_the_token_ends_the_subscribe_session() {
    revoking_ends_the_subscribe_session(Revocation::RotateToken).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_acl_edit_ends_a_parked_fetch() {
    revoking_ends_a_parked_fetch(Revocation::Acl).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_the_user_ends_a_parked_fetch() {
    revoking_ends_a_parked_fetch(Revocation::DeleteUser).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rotating_the_token_ends_a_parked_fetch() {
    revoking_ends_a_parked_fetch(Revocation::RotateToken).await;
}

/// A group member that does what `consumer.proto` says and nothing more: it joins with the
/// shortest session timeout, grants credit, then sends nothing (no heartbeat) while its
/// stream stays open.
struct QuietMember {
    /// Held open: dropping it would close the member's side of the stream.
    _requests: mpsc::Sender<v1::SubscribeRequest>,
    responses: tonic::Streaming<v1::SubscribeResponse>,
}

impl QuietMember {
    async fn join(client: &Client, client_id: &str) -> QuietMember {
        let (tx, rx) = mpsc::channel(4);
        let join = v1::JoinGroup {
            stream: STREAM.into(),
            group: "g".into(),
            topics: vec!["t".into()],
            session_timeout_ms: 1_000,
            client_id: client_id.into(),
            ..Default::default()
        };
        let credit = v1::Credit {
            bytes: 1 << 20,
            batches: 1_000,
        };
        for kind in [
            v1::subscribe_request::Kind::Join(join),
            v1::subscribe_request::Kind::Credit(credit),
        ] {
            tx.send(v1::SubscribeRequest { kind: Some(kind) })
                .await
                .unwrap();
        }
        let responses = client
            .consumer()
            .subscribe(ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        QuietMember {
            _requests: tx,
            responses,
        }
    }

    /// Waits (up to 30 s) for a push of records, skipping other messages.
    async fn records(&mut self) -> v1::PartitionRecords {
        tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let m = self.responses.message().await.unwrap();
                let m = m.expect("the member's stream stays open");
                if let Some(v1::subscribe_response::Kind::Records(r)) = m.kind {
                    return r;
                }
            }
        })
        .await
        .expect("records reach the member")
    }
}

/// A member that opened its stream, gave credit and then said nothing stays a member well
/// past its 1 s session timeout, and still receives what is produced.
#[tokio::test(flavor = "multi_thread")]
async fn an_open_stream_keeps_a_silent_member_alive() {
    let (_server, admin, user) = setup().await;
    let mut member = QuietMember::join(&user, "quiet").await;
    produce(&admin, "first").await;
    member.records().await;
    // Five session timeouts, checking the membership all along.
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        assert_eq!(
            members(&admin).await,
            [("quiet".to_owned(), 1)],
            "the silent member was dropped while its stream was open"
        );
        tokio::time::sleep(Duration::from_millis(100)).await; // time passing is the test
    }
    produce(&admin, "later").await;
    let r = member.records().await;
    assert_eq!((r.topic.as_str(), r.partition), ("t", 0));
}

/// Two silent members share two partitions; one's link stops carrying anything (the proxy
/// holds every byte, the connection stays open): the server's keepalive finds it, it
/// leaves the group, and the other member owns both partitions.
#[tokio::test(flavor = "multi_thread")]
async fn a_member_whose_peer_vanished_is_dropped() {
    let (server, admin, user) = setup().await;
    let _alive = QuietMember::join(&user, "alive").await;
    let proxy = Proxy::start(server.url.trim_start_matches("http://").parse().unwrap()).await;
    let via_proxy = Client::connect(&proxy.url(), Some(&server.admin_token()))
        .await
        .unwrap();
    let _vanishing = QuietMember::join(&via_proxy, "vanishing").await;
    // The second partition goes to the member without one: no partition moves, so neither
    // member has a revocation to confirm.
    admin
        .admin()
        .edit_topic(v1::EditTopicRequest {
            path: TOPIC.into(),
            partitions: Some(2),
        })
        .await
        .unwrap();
    wait_until(
        "both members own a partition",
        Duration::from_secs(30),
        || async {
            let m = members(&admin).await;
            (m == [("alive".to_owned(), 1), ("vanishing".to_owned(), 1)]).then_some(())
        },
    )
    .await;

    proxy.delay(Duration::from_secs(3600));
    wait_until(
        "the vanished member to leave and its partition to move",
        Duration::from_secs(40),
        || async { (members(&admin).await == [("alive".to_owned(), 2)]).then_some(()) },
    )
    .await;
}

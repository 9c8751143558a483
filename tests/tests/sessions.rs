//! Long-running sessions end to end: revoking a caller's access (an ACL edit, a deleted
//! user, a rotated token) reaches its open `Subscribe` session and its parked long-poll
//! `Fetch` at once, and no record produced after the revocation reaches either.

use std::time::Duration;

use tonic::Code;
use tributary_client::{Client, GroupConfig, GroupConsumer, record};
use tributary_e2e::{InProcess, wait_until};
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
        .produce(TOPIC, Some(0), vec![record("", value)])
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
    assert_eq!(&got[0].record.record.value[..], b"before");

    how.apply(&admin).await;
    produce(&admin, "after").await;
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match member.poll().await {
                Ok(records) => {
                    for r in records {
                        assert_ne!(
                            &r.record.record.value[..],
                            b"after",
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

//! Security review, as tests: every RPC of the API refuses a caller without credentials, a
//! caller with a revoked token, and an authenticated caller without rights, and changes
//! nothing; the table of RPCs is checked against the proto, so a new RPC cannot be
//! forgotten. Tokens are stored only hashed, and neither tokens nor payloads reach the log.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use prost::Message;
use sha2::{Digest, Sha256};
use tonic::{Code, Status};
use tributary_e2e::{Client, Server, create_stream, repo_root, snapshot};
use tributary_proto::v1;

type Answer = Pin<Box<dyn Future<Output = Result<bool, Status>> + Send>>;
type Call = Box<dyn Fn(Client) -> Answer>;

/// What a caller without rights on anything gets from an RPC.
#[derive(Debug, Clone, Copy)]
enum Stranger {
    /// `PERMISSION_DENIED`, naming this permission.
    Denied(&'static str),
    /// Allowed, and the answer shows nothing the caller may not see.
    Allowed,
}

struct Rpc {
    /// `Service/Method`, as in the proto.
    name: &'static str,
    stranger: Stranger,
    /// Makes the call; `Ok(false)` when the answer showed something it should not.
    call: Call,
}

/// One row: `rpc!(NAME, STRANGER, |client| CALL)`, optionally followed by `, |answer|
/// CHECK` (for answers a stranger may get, a check that they show nothing of others).
macro_rules! rpc {
    ($name:literal, $stranger:expr, |$c:ident| $call:expr) => {
        rpc!($name, $stranger, |$c| $call, |_answer| true)
    };
    ($name:literal, $stranger:expr, |$c:ident| $call:expr, |$r:ident| $check:expr) => {
        Rpc {
            name: $name,
            stranger: $stranger,
            call: Box::new(|$c: Client| -> Answer {
                Box::pin(async move {
                    let $r = $call.await?.into_inner();
                    Ok($check)
                })
            }),
        }
    };
}

use Stranger::{Allowed, Denied};

/// Every RPC, aimed at what the fixture holds (volume /v, stream /v/s, topic /v/s:t, user
/// alice, a paused upstream link into /v/s). A new RPC needs a row here:
/// `every_rpc_of_the_proto_is_in_the_table` fails until it has one.
#[rustfmt::skip]
fn rpcs() -> Vec<Rpc> {
    vec![
        rpc!("Admin/GetCluster", Allowed, |c| c.admin().get_cluster(v1::GetClusterRequest {})),
        rpc!("Admin/WhoAmI", Allowed, |c| c.admin().who_am_i(v1::WhoAmIRequest {}), |u| u.name == "mallory"),
        rpc!("Admin/CreateUser", Denied("cluster admin"), |c| c.admin().create_user(v1::CreateUserRequest { name: "eve".into(), groups: vec![], cluster_admin: true })),
        rpc!("Admin/ListUsers", Denied("cluster admin"), |c| c.admin().list_users(v1::ListUsersRequest {})),
        rpc!("Admin/DeleteUser", Denied("cluster admin"), |c| c.admin().delete_user(v1::DeleteUserRequest { name: "alice".into() })),
        rpc!("Admin/EditUser", Denied("cluster admin"), |c| c.admin().edit_user(v1::EditUserRequest { name: "alice".into(), kafka_default_stream: Some("/v/s".into()) })),
        rpc!("Admin/RotateToken", Denied("cluster admin"), |c| c.admin().rotate_token(v1::RotateTokenRequest { name: "alice".into() })),
        rpc!("Admin/CreateVolume", Denied("cluster admin"), |c| c.admin().create_volume(v1::CreateVolumeRequest { path: "/w".into(), ..Default::default() })),
        rpc!("Admin/ListVolumes", Allowed, |c| c.admin().list_volumes(v1::ListVolumesRequest {}), |r| r.volumes.is_empty()),
        rpc!("Admin/DescribeVolume", Denied("admin"), |c| c.admin().describe_volume(v1::DescribeVolumeRequest { path: "/v".into() })),
        rpc!("Admin/EditVolume", Denied("admin"), |c| c.admin().edit_volume(v1::EditVolumeRequest { path: "/v".into(), admin_perm: Some("u:mallory".into()), ..Default::default() })),
        rpc!("Admin/DeleteVolume", Denied("admin"), |c| c.admin().delete_volume(v1::DeleteVolumeRequest { path: "/v".into(), force: true })),
        rpc!("Admin/CreateStream", Denied("admin"), |c| c.admin().create_stream(v1::CreateStreamRequest { path: "/v/s2".into(), attributes: None })),
        rpc!("Admin/ListStreams", Allowed, |c| c.admin().list_streams(v1::ListStreamsRequest { prefix: String::new() }), |r| r.streams.is_empty()),
        rpc!("Admin/ListStreams", Allowed, |c| c.admin().list_streams(v1::ListStreamsRequest { prefix: "/v".into() }), |r| r.streams.is_empty()),
        rpc!("Admin/DescribeStream", Denied("any"), |c| c.admin().describe_stream(v1::DescribeStreamRequest { path: "/v/s".into() })),
        rpc!("Admin/EditStream", Denied("admin"), |c| c.admin().edit_stream(v1::EditStreamRequest { path: "/v/s".into(), attributes: Some(v1::StreamAttributes { consume_perm: Some("p".into()), ..Default::default() }) })),
        rpc!("Admin/PurgeStream", Denied("admin"), |c| c.admin().purge_stream(v1::PurgeStreamRequest { path: "/v/s".into() })),
        rpc!("Admin/DeleteStream", Denied("admin"), |c| c.admin().delete_stream(v1::DeleteStreamRequest { path: "/v/s".into() })),
        rpc!("Admin/CreateTopic", Denied("topic"), |c| c.admin().create_topic(v1::CreateTopicRequest { path: "/v/s:t2".into(), partitions: None })),
        rpc!("Admin/ListTopics", Denied("any"), |c| c.admin().list_topics(v1::ListTopicsRequest { stream: "/v/s".into() })),
        rpc!("Admin/DescribeTopic", Denied("any"), |c| c.admin().describe_topic(v1::DescribeTopicRequest { path: "/v/s:t".into() })),
        rpc!("Admin/EditTopic", Denied("topic"), |c| c.admin().edit_topic(v1::EditTopicRequest { path: "/v/s:t".into(), partitions: Some(3) })),
        rpc!("Admin/DeleteTopic", Denied("topic"), |c| c.admin().delete_topic(v1::DeleteTopicRequest { path: "/v/s:t".into() })),
        rpc!("Producer/Produce", Denied("produce"), |c| c.producer().produce(v1::ProduceRequest { topic: "/v/s:t".into(), partition: None, batch: Some(v1::RecordBatch { records: vec![tributary_client::record("k", "v")], ..Default::default() }), ..Default::default() })),
        rpc!("Producer/InitProducer", Allowed, |c| c.producer().init_producer(v1::InitProducerRequest {}), |r| r.producer_id > 0),
        rpc!("Producer/GetPartitions", Denied("produce"), |c| c.producer().get_partitions(v1::GetPartitionsRequest { topic: "/v/s:t".into() })),
        rpc!("Consumer/Fetch", Denied("consume"), |c| c.consumer().fetch(v1::FetchRequest { topic: "/v/s:t".into(), partition: 0, offset: 0, max_bytes: 0, max_wait_ms: 0 })),
        rpc!("Consumer/ListOffsets", Denied("consume"), |c| c.consumer().list_offsets(v1::ListOffsetsRequest { topic: "/v/s:t".into(), partitions: vec![], spec: v1::OffsetSpec::Latest as i32, timestamp_ms: 0 })),
        rpc!("Consumer/Subscribe", Denied("consume"), |c| c.consumer().subscribe(tokio_stream::iter(vec![join("g")]))),
        rpc!("Consumer/CommitOffsets", Denied("consume"), |c| c.consumer().commit_offsets(v1::CommitOffsetsRequest { stream: "/v/s".into(), group: "g".into(), cursors: vec![v1::CursorCommit { topic: "t".into(), partition: 0, offset: 0 }], ..Default::default() })),
        rpc!("Consumer/ListGroups", Denied("consume"), |c| c.consumer().list_groups(v1::ListGroupsRequest { stream: "/v/s".into() })),
        rpc!("Consumer/DescribeGroup", Denied("consume"), |c| c.consumer().describe_group(v1::DescribeGroupRequest { stream: "/v/s".into(), group: "g".into() })),
        rpc!("Consumer/ResetGroup", Denied("admin"), |c| c.consumer().reset_group(v1::ResetGroupRequest { stream: "/v/s".into(), group: "g".into(), to: v1::OffsetSpec::Earliest as i32, ..Default::default() })),
        rpc!("Consumer/DeleteGroup", Denied("admin"), |c| c.consumer().delete_group(v1::DeleteGroupRequest { stream: "/v/s".into(), group: "g".into() })),
        rpc!("Admin/Checkpoint", Denied("cluster admin"), |c| c.admin().checkpoint(v1::CheckpointRequest { dir: "/tmp/tributary-security-checkpoint".into() })),
        rpc!("Replication/Pull", Denied("copy"), |c| c.replication().pull(v1::PullRequest { stream: "/v/s".into(), ..Default::default() })),
        rpc!("Replication/AddUpstream", Denied("admin"), |c| c.replication().add_upstream(v1::AddUpstreamRequest { stream: "/v/s".into(), from: "http://127.0.0.1:9/v/other".into(), ..Default::default() })),
        rpc!("Replication/ListUpstreams", Denied("admin"), |c| c.replication().list_upstreams(v1::ListUpstreamsRequest { stream: "/v/s".into() })),
        rpc!("Replication/ListUpstreams", Allowed, |c| c.replication().list_upstreams(v1::ListUpstreamsRequest { stream: String::new() }), |r| r.upstreams.is_empty()),
        rpc!("Replication/PauseUpstream", Denied("admin"), |c| c.replication().pause_upstream(link())),
        rpc!("Replication/ResumeUpstream", Denied("admin"), |c| c.replication().resume_upstream(link())),
        rpc!("Replication/RemoveUpstream", Denied("admin"), |c| c.replication().remove_upstream(link())),
        rpc!("Replication/PromoteStream", Denied("admin"), |c| c.replication().promote_stream(v1::PromoteStreamRequest { path: "/v/s".into() })),
    ]
}

/// The fixture's link into /v/s (paused: it never connects).
const LINK_FROM: &str = "http://127.0.0.1:9/v/s";

fn link() -> v1::UpstreamRef {
    v1::UpstreamRef {
        stream: "/v/s".into(),
        from: LINK_FROM.into(),
    }
}

/// Every link of the cluster, as its admin sees them.
async fn links(admin: &Client) -> v1::ListUpstreamsResponse {
    let all = v1::ListUpstreamsRequest {
        stream: String::new(),
    };
    admin
        .replication()
        .list_upstreams(all)
        .await
        .unwrap()
        .into_inner()
}

/// The first message of a consumer-group session.
fn join(group: &str) -> v1::SubscribeRequest {
    v1::SubscribeRequest {
        kind: Some(v1::subscribe_request::Kind::Join(v1::JoinGroup {
            stream: "/v/s".into(),
            group: group.into(),
            topics: vec!["t".into()],
            ..Default::default()
        })),
    }
}

/// Every `Service/Method` in the API's descriptor set, i.e. in `proto/tributary/v1`.
fn proto_rpcs() -> BTreeSet<String> {
    let set = prost_types::FileDescriptorSet::decode(tributary_proto::FILE_DESCRIPTOR_SET)
        .expect("the descriptor set decodes");
    set.file
        .iter()
        .flat_map(|f| &f.service)
        .flat_map(|s| {
            s.method
                .iter()
                .map(move |m| format!("{}/{}", s.name(), m.name()))
        })
        .collect()
}

#[test]
fn every_rpc_of_the_proto_is_in_the_table() {
    let table: BTreeSet<String> = rpcs().iter().map(|r| r.name.to_owned()).collect();
    let proto = proto_rpcs();
    let missing: Vec<_> = proto.difference(&table).collect();
    let unknown: Vec<_> = table.difference(&proto).collect();
    assert!(
        missing.is_empty(),
        "RPCs without a row in security.rs's table: {missing:?}"
    );
    assert!(
        unknown.is_empty(),
        "rows for RPCs not in the proto: {unknown:?}"
    );
    assert!(
        proto.len() >= 25 && proto.contains("Producer/Produce"),
        "the descriptor lists the API: {proto:?}"
    );
}

/// docs/RELIABILITY.md counts the RPCs (from the descriptor) and those that refuse a
/// stranger (from the table): each figure it gives must be the current one.
#[test]
fn reliability_md_gives_the_current_rpc_counts() {
    let doc = std::fs::read_to_string(repo_root().join("docs/RELIABILITY.md")).unwrap();
    let doc = doc.split_whitespace().collect::<Vec<_>>().join(" ");
    let all = proto_rpcs().len();
    let table = rpcs();
    let denied: BTreeSet<_> = table
        .iter()
        .filter(|r| matches!(r.stranger, Denied(_)))
        .map(|r| r.name)
        .collect();
    let open = all - denied.len();
    for figure in [
        format!("a table of all {all} RPCs"),
        format!("all {all} refuse a caller without credentials"),
        format!(
            "{} refuse an authenticated caller without rights",
            denied.len()
        ),
        format!("and the other {open} ("),
    ] {
        assert!(
            doc.contains(&figure),
            "docs/RELIABILITY.md should say `{figure}`"
        );
    }
}

#[tokio::test]
async fn every_rpc_refuses_strangers_and_the_unauthenticated_and_changes_nothing() {
    let server = Server::start();
    let admin = server.client().await;
    create_stream(&admin, "/v/s", v1::StreamAttributes::default()).await;
    admin
        .produce("/v/s:t", None, vec![tributary_client::record("k", "v")])
        .await
        .unwrap();
    admin
        .replication()
        .add_upstream(v1::AddUpstreamRequest {
            stream: "/v/s".into(),
            from: LINK_FROM.into(),
            paused: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let links_before = links(&admin).await;
    assert_eq!(links_before.upstreams.len(), 1, "{links_before:?}");
    let mut a = admin.admin();
    for name in ["alice", "mallory"] {
        a.create_user(v1::CreateUserRequest {
            name: name.into(),
            groups: vec!["staff".into()],
            cluster_admin: false,
        })
        .await
        .unwrap();
    }
    let revoked = a
        .rotate_token(v1::RotateTokenRequest {
            name: "mallory".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .token;
    let mallory = a
        .rotate_token(v1::RotateTokenRequest {
            name: "mallory".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .token;
    let before = snapshot(&admin).await.unwrap();

    let nobody = server.client_as(None).await;
    let stale = server.client_as(Some(&revoked)).await;
    let stranger = server.client_as(Some(&mallory)).await;
    for rpc in rpcs() {
        for (who, client, fragment) in [
            ("no token", &nobody, "no credentials"),
            ("a revoked token", &stale, "unknown or revoked token"),
        ] {
            match (rpc.call)(client.clone()).await {
                Err(s) => {
                    assert_eq!(
                        s.code(),
                        Code::Unauthenticated,
                        "{} with {who}: {s:?}",
                        rpc.name
                    );
                    assert!(
                        s.message().contains(fragment),
                        "{} with {who}: {s:?}",
                        rpc.name
                    );
                }
                Ok(_) => panic!("{} with {who} succeeded", rpc.name),
            }
        }
        match ((rpc.call)(stranger.clone()).await, rpc.stranger) {
            (Err(s), Denied(permission)) => {
                assert_eq!(s.code(), Code::PermissionDenied, "{}: {s:?}", rpc.name);
                let named = match permission {
                    "any" => "mallory has no permission on".to_owned(),
                    p => format!("mallory lacks the `{p}` permission on"),
                };
                assert!(
                    s.message().starts_with(&named),
                    "{}: {}",
                    rpc.name,
                    s.message()
                );
            }
            (Ok(shows_nothing), Allowed) => {
                assert!(
                    shows_nothing,
                    "{} showed a stranger more than it should",
                    rpc.name
                )
            }
            (r, expected) => panic!("{}: expected {expected:?}, got {r:?}", rpc.name),
        }
    }
    // Existence is not hidden: what does not exist is NOT_FOUND, for strangers too.
    let missing = stranger
        .admin()
        .describe_stream(v1::DescribeStreamRequest {
            path: "/v/nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");
    assert_eq!(
        snapshot(&admin).await.unwrap(),
        before,
        "refused calls changed nothing"
    );
    assert_eq!(
        links(&admin).await,
        links_before,
        "refused calls left the link as it was"
    );
}

/// Every file under `dir`, recursively.
fn files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn tokens_are_stored_hashed_and_never_logged_nor_are_payloads() {
    let mut server = Server::builder()
        .args(&["--log", "debug", "--log-format", "json"])
        .start();
    let admin = server.client().await;
    create_stream(
        &admin,
        "/v/s",
        v1::StreamAttributes {
            produce_perm: Some("u:bob".into()),
            consume_perm: Some("u:bob".into()),
            ..Default::default()
        },
    )
    .await;
    let token = admin
        .admin()
        .create_user(v1::CreateUserRequest {
            name: "bob".into(),
            groups: vec![],
            cluster_admin: false,
        })
        .await
        .unwrap()
        .into_inner()
        .token;
    let secret = token.split_once('.').unwrap().1.to_owned();
    let bob = server.client_as(Some(&token)).await;

    let key = "key-marker-7f3e9a";
    let value = "value-marker-c41d2b";
    let mut record = tributary_client::record(key, value);
    record.headers.push(v1::Header {
        key: "header-marker-5be810".into(),
        value: Some("header-value-marker-0d6a".into()),
    });
    bob.produce("/v/s:t", None, vec![record]).await.unwrap();
    let got = bob.fetch("/v/s:t", 0, 0, 0, Duration::ZERO).await.unwrap();
    assert_eq!(
        got.records[0].record.value.as_deref(),
        Some(value.as_bytes())
    );
    // A refused call and a failed one are logged too; they must not leak either.
    let wrong = server.client_as(Some(&format!("{token}x"))).await;
    assert!(
        wrong
            .fetch("/v/s:t", 0, 0, 0, Duration::ZERO)
            .await
            .is_err()
    );
    assert!(bob.fetch("/v/s:t", 0, 99, 0, Duration::ZERO).await.is_err());

    server.kill9();
    let log = server.log();
    assert!(log.lines().count() > 5, "the debug log was written: {log}");
    assert!(
        log.contains("\"level\":\"DEBUG\""),
        "debug lines are there: {log}"
    );
    for marker in [
        key,
        value,
        "header-marker-5be810",
        "header-value-marker-0d6a",
        &secret,
    ] {
        assert!(
            !log.contains(marker),
            "`{marker}` is in the server's log:\n{log}"
        );
    }

    // The store keeps the secret's SHA-256, never the secret (the write-ahead log holds the
    // user row uncompressed, so the hash is there to be found).
    let hash: String = Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let db = files(&server.data_dir.join("db"));
    let found = |needle: &str| {
        db.iter()
            .filter(|f| contains(&std::fs::read(f).unwrap(), needle.as_bytes()))
            .count()
    };
    assert!(found(&hash) > 0, "the token's hash is stored");
    assert_eq!(
        found(&secret),
        0,
        "the token's secret is stored in the clear"
    );
}

//! Multi-tenancy end to end: users and tokens, two isolated tenants, each stream permission
//! granted and refused, ACL edits taking effect on the next request, quotas refusing without
//! partial writes, bad input refused, and everything kept across a restart. Scenarios that
//! need no process of the server's own run it in-process.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use tonic::Code;
use tributary_client::unkeyed;
use tributary_e2e::{Client, InProcess, Run, Server};
use tributary_proto::v1;

/// Creates a user through the CLI and returns its token.
fn user(server: &Server, name: &str, groups: &str) -> String {
    let mut args = vec!["user", "create", name];
    if !groups.is_empty() {
        args.extend(["--groups", groups]);
    }
    server.cli().args(args).run().ok().stdout.trim().to_owned()
}

fn refused(run: Run, code: &str, needle: &str) {
    let run = run.failed();
    assert!(
        run.stderr.contains(code) && run.stderr.contains(needle),
        "wanted {code} ({needle}), got: {}",
        run.stderr
    );
}

fn code<T: std::fmt::Debug>(r: Result<T, tributary_client::Error>) -> Code {
    r.expect_err("the call should be refused")
        .code()
        .expect("a server status")
}

/// The "Managing streams" walkthrough of the README, on the real CLI.
#[test]
fn two_isolated_tenants_through_the_cli() {
    let server = Server::start();
    let mode = std::fs::metadata(server.data_dir.join("admin.token"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "the admin token is readable by its owner only"
    );

    let alice = user(&server, "alice", "acme-ops");
    let bob = user(&server, "bob", "");
    let carol = user(&server, "carol", "acme-ops");
    assert!(alice.starts_with("trb_"), "{alice}");
    let users = server.cli().args(["user", "list"]).run().ok().stdout;
    assert!(
        users.contains("alice") && users.contains("acme-ops"),
        "{users}"
    );

    server
        .cli()
        .args([
            "volume",
            "create",
            "/acme",
            "--owner",
            "alice",
            "--max-streams",
            "5",
        ])
        .run()
        .ok();
    server
        .cli()
        .args(["volume", "create", "/globex", "--owner", "bob"])
        .run()
        .ok();
    let as_alice = |args: &[&str]| server.cli_as(Some(&alice)).args(args);
    let as_bob = |args: &[&str]| server.cli_as(Some(&bob)).args(args);
    let as_carol = |args: &[&str]| server.cli_as(Some(&carol)).args(args);

    as_alice(&[
        "stream",
        "create",
        "/acme/iot",
        "--partitions",
        "2",
        "--consume-perm",
        "u:alice | g:acme-ops",
    ])
    .run()
    .ok();
    as_bob(&["stream", "create", "/globex/orders"]).run().ok();
    as_alice(&["produce", "/acme/iot:temp"])
        .run_with_stdin(b"21.5\n22.0\n")
        .ok();
    as_bob(&["produce", "/globex/orders:new"])
        .run_with_stdin(b"o-1\n")
        .ok();

    // Neither tenant can list, describe, produce to or consume from the other's streams.
    let listed = as_bob(&["stream", "list"]).run().ok().stdout;
    assert!(
        listed.contains("/globex/orders") && !listed.contains("/acme"),
        "{listed}"
    );
    let volumes = as_bob(&["volume", "list", "--json"]).run().ok().stdout;
    assert_eq!(volumes.lines().count(), 1, "{volumes}");
    refused(
        as_bob(&["stream", "info", "/acme/iot"]).run(),
        "PERMISSION_DENIED",
        "/acme/iot",
    );
    refused(
        as_bob(&["topic", "list", "/acme/iot"]).run(),
        "PERMISSION_DENIED",
        "/acme/iot",
    );
    refused(
        as_bob(&["produce", "/acme/iot:temp"]).run_with_stdin(b"x\n"),
        "PERMISSION_DENIED",
        "`produce`",
    );
    refused(
        as_bob(&[
            "consume",
            "/acme/iot:temp",
            "--from",
            "earliest",
            "--max",
            "1",
        ])
        .run(),
        "PERMISSION_DENIED",
        "`consume`",
    );
    refused(
        as_alice(&["stream", "info", "/globex/orders"]).run(),
        "PERMISSION_DENIED",
        "/globex/orders",
    );
    refused(
        as_bob(&["stream", "create", "/acme/evil"]).run(),
        "PERMISSION_DENIED",
        "`admin`",
    );
    refused(
        as_bob(&["volume", "create", "/bobs"]).run(),
        "PERMISSION_DENIED",
        "cluster admin",
    );

    // Carol (group acme-ops) consumes through the group grant but may not produce.
    let got = as_carol(&[
        "consume",
        "/acme/iot:temp",
        "--from",
        "earliest",
        "--timeout",
        "300ms",
    ])
    .run()
    .ok()
    .stdout;
    assert_eq!(got.lines().count(), 2, "{got}");
    refused(
        as_carol(&["produce", "/acme/iot:temp"]).run_with_stdin(b"x\n"),
        "PERMISSION_DENIED",
        "`produce`",
    );
    // An ACL edit applies on the very next request.
    as_alice(&[
        "stream",
        "edit",
        "/acme/iot",
        "--produce-perm",
        "u:alice | u:carol",
    ])
    .run()
    .ok();
    as_carol(&["produce", "/acme/iot:temp"])
        .run_with_stdin(b"23.1\n")
        .ok();
    let info = as_alice(&["stream", "info", "/acme/iot", "--json"])
        .run()
        .ok()
        .stdout;
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["produce_perm"], "u:alice | u:carol");
    assert_eq!(info["records"], 3);

    // whoami and token rotation.
    let me = as_carol(&["user", "whoami", "--json"]).run().ok().stdout;
    assert!(me.contains("\"carol\"") && me.contains("acme-ops"), "{me}");
    let new = as_carol(&["user", "token", "rotate"])
        .run()
        .ok()
        .stdout
        .trim()
        .to_owned();
    refused(
        as_carol(&["user", "whoami"]).run(),
        "UNAUTHENTICATED",
        "token",
    );
    server
        .cli_as(Some(&new))
        .args(["user", "whoami"])
        .run()
        .ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn every_call_needs_valid_credentials() {
    let server = InProcess::start().await;
    let admin = server.client().await;
    tributary_e2e::create_stream(&admin, "/v/s", Default::default()).await;
    admin
        .produce("/v/s:t", None, vec![unkeyed("x")])
        .await
        .unwrap();

    for token in [
        None,
        Some("trb_0123456789abcdef.forged"),
        Some("not-a-token"),
    ] {
        let c = server.client_as(token).await;
        assert_eq!(
            code(c.produce("/v/s:t", None, vec![unkeyed("y")]).await),
            Code::Unauthenticated
        );
        assert_eq!(
            code(c.fetch("/v/s:t", 0, 0, 0, Duration::ZERO).await),
            Code::Unauthenticated
        );
        assert_eq!(
            code(c.list_offsets("/v/s:t", &[], true).await),
            Code::Unauthenticated
        );
        let r = c
            .admin()
            .list_volumes(v1::ListVolumesRequest {})
            .await
            .map_err(tributary_client::Error::from);
        assert_eq!(code(r), Code::Unauthenticated);
        let r = c
            .admin()
            .get_cluster(v1::GetClusterRequest {})
            .await
            .map_err(tributary_client::Error::from);
        assert_eq!(code(r), Code::Unauthenticated);
    }
    assert_eq!(
        admin.list_offsets("/v/s:t", &[], true).await.unwrap()[0].1,
        1,
        "nothing was written"
    );
    let out = server.cli_as(None).args(["volume", "list"]).run().failed();
    assert!(out.stderr.contains("UNAUTHENTICATED"), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn anonymous_use_is_opt_in_and_still_bound_by_acls() {
    let server = InProcess::start_with(|c| c.grpc.allow_anonymous = true).await;
    let admin = server.client().await;
    let public = v1::StreamAttributes {
        produce_perm: Some("p".into()),
        consume_perm: Some("p".into()),
        ..Default::default()
    };
    tributary_e2e::create_stream(&admin, "/pub/open", public).await;
    admin
        .admin()
        .create_stream(v1::CreateStreamRequest {
            path: "/pub/closed".into(),
            attributes: None,
        })
        .await
        .unwrap();
    let anon = server.client_as(None).await;
    anon.produce("/pub/open:t", None, vec![unkeyed("hello")])
        .await
        .unwrap();
    assert_eq!(
        anon.fetch("/pub/open:t", 0, 0, 0, Duration::ZERO)
            .await
            .unwrap()
            .records
            .len(),
        1
    );
    assert_eq!(
        code(
            anon.produce("/pub/closed:t", None, vec![unkeyed("no")])
                .await
        ),
        Code::PermissionDenied
    );
    let who = anon
        .admin()
        .who_am_i(v1::WhoAmIRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(who.name, "anonymous");
}

/// Each permission allowed for its holder and refused to everyone else, over gRPC.
#[tokio::test(flavor = "multi_thread")]
async fn each_permission_is_allowed_and_refused() {
    let server = InProcess::start().await;
    let admin = server.client().await;
    let mut a = admin.admin();
    let token = |name: &str| {
        let mut a = a.clone();
        let name = name.to_owned();
        async move {
            a.create_user(v1::CreateUserRequest {
                name,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .token
        }
    };
    let owner = server.client_as(Some(&token("owner").await)).await;
    let p = server.client_as(Some(&token("producer").await)).await;
    let c = server.client_as(Some(&token("consumer").await)).await;
    let t = server.client_as(Some(&token("topics").await)).await;
    let s = server.client_as(Some(&token("steward").await)).await;
    a.create_volume(v1::CreateVolumeRequest {
        path: "/v".into(),
        owner: "owner".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let attributes = v1::StreamAttributes {
        produce_perm: Some("u:producer".into()),
        consume_perm: Some("u:consumer".into()),
        topic_perm: Some("u:topics".into()),
        admin_perm: Some("u:steward".into()),
        copy_perm: Some("".into()),
        ..Default::default()
    };
    owner
        .admin()
        .create_stream(v1::CreateStreamRequest {
            path: "/v/s".into(),
            attributes: Some(attributes),
        })
        .await
        .unwrap();

    let create_topic = |client: &Client, name: &str| {
        let mut a = client.admin();
        let req = v1::CreateTopicRequest {
            path: format!("/v/s:{name}"),
            partitions: Some(1),
        };
        async move {
            a.create_topic(req)
                .await
                .map_err(tributary_client::Error::from)
        }
    };
    let edit = |client: &Client| {
        let mut a = client.admin();
        let attributes = v1::StreamAttributes {
            ttl_ms: Some(0),
            ..Default::default()
        };
        let req = v1::EditStreamRequest {
            path: "/v/s".into(),
            attributes: Some(attributes),
        };
        async move {
            a.edit_stream(req)
                .await
                .map_err(tributary_client::Error::from)
        }
    };

    // topic
    create_topic(&t, "events").await.unwrap();
    for other in [&p, &c, &s] {
        assert_eq!(code(create_topic(other, "x").await), Code::PermissionDenied);
    }
    // produce
    p.produce("/v/s:events", None, vec![unkeyed("1")])
        .await
        .unwrap();
    for other in [&c, &t, &s] {
        assert_eq!(
            code(other.produce("/v/s:events", None, vec![unkeyed("2")]).await),
            Code::PermissionDenied
        );
    }
    // consume
    assert_eq!(
        c.fetch("/v/s:events", 0, 0, 0, Duration::ZERO)
            .await
            .unwrap()
            .records
            .len(),
        1
    );
    for other in [&p, &t, &s] {
        assert_eq!(
            code(other.fetch("/v/s:events", 0, 0, 0, Duration::ZERO).await),
            Code::PermissionDenied
        );
    }
    // admin
    edit(&s).await.unwrap();
    for other in [&p, &c, &t] {
        assert_eq!(code(edit(other).await), Code::PermissionDenied);
    }
    // The volume owner administers everything in the volume, whatever the stream ACLs say.
    owner
        .produce("/v/s:events", None, vec![unkeyed("3")])
        .await
        .unwrap();
    edit(&owner).await.unwrap();
    // Refused calls changed nothing.
    let topics = admin
        .admin()
        .list_topics(v1::ListTopicsRequest {
            stream: "/v/s".into(),
        })
        .await
        .unwrap();
    assert_eq!(topics.into_inner().topics.len(), 1);
    assert_eq!(
        admin.list_offsets("/v/s:events", &[], true).await.unwrap()[0].1,
        2
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn quotas_and_bad_input_change_nothing() {
    let server = InProcess::start().await;
    let admin = server.client().await;
    let mut a = admin.admin();
    let quotas = v1::VolumeQuotas {
        max_bytes: Some(2_000),
        max_streams: Some(1),
        max_topics: Some(1),
    };
    a.create_volume(v1::CreateVolumeRequest {
        path: "/q".into(),
        quotas: Some(quotas),
        ..Default::default()
    })
    .await
    .unwrap();
    a.create_stream(v1::CreateStreamRequest {
        path: "/q/s".into(),
        attributes: None,
    })
    .await
    .unwrap();
    let status = a
        .create_stream(v1::CreateStreamRequest {
            path: "/q/s2".into(),
            attributes: None,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(
        status.message().contains("streams quota"),
        "{}",
        status.message()
    );

    admin
        .produce("/q/s:t", None, vec![unkeyed("x".repeat(1_000))])
        .await
        .unwrap();
    let err = admin
        .produce(
            "/q/s:t",
            None,
            vec![unkeyed("y".repeat(1_000)), unkeyed("z")],
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::ResourceExhausted));
    assert!(err.to_string().contains("bytes quota of 2000"), "{err}");
    assert_eq!(
        code(admin.produce("/q/s:t2", None, vec![unkeyed("a")]).await),
        Code::ResourceExhausted
    );
    assert_eq!(
        admin.list_offsets("/q/s:t", &[], true).await.unwrap()[0].1,
        1,
        "no partial write"
    );
    let topics = a
        .list_topics(v1::ListTopicsRequest {
            stream: "/q/s".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        topics.topics.len(),
        1,
        "no topic was created by the refused produce"
    );

    // Bad names and ACL expressions: INVALID_ARGUMENT naming the field, nothing created.
    let bad_acl = v1::StreamAttributes {
        produce_perm: Some("u:alice |".into()),
        ..Default::default()
    };
    let status = a
        .edit_stream(v1::EditStreamRequest {
            path: "/q/s".into(),
            attributes: Some(bad_acl),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status
            .message()
            .starts_with("attributes.produce_perm: column"),
        "{}",
        status.message()
    );
    let status = a
        .create_volume(v1::CreateVolumeRequest {
            path: "/bad name".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = a
        .create_topic(v1::CreateTopicRequest {
            path: "/q/s:t/x".into(),
            partitions: None,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let out = server
        .cli()
        .args(["stream", "edit", "/q/s", "--consume-perm", "u:a & (g:b"])
        .run()
        .failed();
    assert!(
        out.stderr.contains("INVALID_ARGUMENT") && out.stderr.contains("column"),
        "{}",
        out.stderr
    );
    let s = a
        .describe_stream(v1::DescribeStreamRequest {
            path: "/q/s".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        s.attributes.unwrap().produce_perm.as_deref(),
        Some("u:admin"),
        "refused edits changed nothing"
    );
}

#[tokio::test]
async fn users_volumes_streams_and_topics_survive_a_restart() {
    let mut server = Server::start();
    let alice = user(&server, "alice", "g1,g2");
    server
        .cli()
        .args([
            "volume",
            "create",
            "/acme",
            "--owner",
            "alice",
            "--max-topics",
            "7",
        ])
        .run()
        .ok();
    server
        .cli_as(Some(&alice))
        .args([
            "stream",
            "create",
            "/acme/s",
            "--partitions",
            "2",
            "--ttl",
            "1d",
            "--consume-perm",
            "g:g2",
        ])
        .run()
        .ok();
    server
        .cli_as(Some(&alice))
        .args(["topic", "create", "/acme/s:t", "--partitions", "3"])
        .run()
        .ok();
    server
        .cli_as(Some(&alice))
        .args(["topic", "edit", "/acme/s:t", "--partitions", "4"])
        .run()
        .ok();
    let status = server.terminate();
    assert!(status.success());
    server.restart();

    let c = server.client_as(Some(&alice)).await;
    let who = c
        .admin()
        .who_am_i(v1::WhoAmIRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(who.groups, vec!["g1", "g2"]);
    let v = c
        .admin()
        .describe_volume(v1::DescribeVolumeRequest {
            path: "/acme".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            v.owner.as_str(),
            v.quotas.unwrap().max_topics,
            v.topic_count
        ),
        ("alice", Some(7), 1)
    );
    let s = c
        .admin()
        .describe_stream(v1::DescribeStreamRequest {
            path: "/acme/s".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let attrs = s.attributes.unwrap();
    assert_eq!(
        (attrs.default_partitions, attrs.ttl_ms),
        (Some(2), Some(86_400_000))
    );
    assert_eq!(attrs.consume_perm.as_deref(), Some("g:g2"));
    let t = c
        .admin()
        .describe_topic(v1::DescribeTopicRequest {
            path: "/acme/s:t".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(t.partitions, 4);
}

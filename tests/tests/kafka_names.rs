//! Kafka names end to end, on the real server with stock clients: a user's default stream
//! set, shown, refused when malformed and cleared with `tributary user`; kcat producing
//! to a flat name that lands in its user's default stream while another user's default
//! shows that user's topics (kcat and confluent-kafka, whose all-topics Metadata v12
//! carries bytes after its body); and a kcat consumer group whose id is no group name,
//! shown and reset by `tributary group` under its stored name.

use std::time::Duration;

use serde_json::{Value, json};
use tributary_e2e::kafka::{self, Security};
use tributary_e2e::{Server, wait_until};
use tributary_proto::v1;

/// Stored name of the group id `connect-cluster.my sink/1:x` (docs/kafka.md, Names).
const ESCAPED: &str = "_k.connect-cluster.my_20sink_2F1_3Ax";

/// `/acme/s` (the listener's default, topic `general`), `/acme/bob` (topic `orders`) and
/// `/acme/carol` (topics `orders` and `extra`), open to every user; users `bob` and
/// `carol` with their tokens.
async fn setup(server: &Server) -> (String, String) {
    let admin = server.client().await;
    let mut a = admin.admin();
    a.create_volume(v1::CreateVolumeRequest {
        path: "/acme".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let open = v1::StreamAttributes {
        consume_perm: Some("p".into()),
        produce_perm: Some("p".into()),
        ..Default::default()
    };
    for (stream, topics) in [
        ("/acme/s", &["general"][..]),
        ("/acme/bob", &["orders"][..]),
        ("/acme/carol", &["orders", "extra"][..]),
    ] {
        a.create_stream(v1::CreateStreamRequest {
            path: stream.into(),
            attributes: Some(open.clone()),
        })
        .await
        .unwrap();
        for t in topics {
            a.create_topic(v1::CreateTopicRequest {
                path: format!("{stream}:{t}"),
                partitions: Some(1),
            })
            .await
            .unwrap();
        }
    }
    let token = |name: &str| {
        let out = server.cli().args(["user", "create", name]).run().ok();
        out.stdout.trim().to_owned()
    };
    (token("bob"), token("carol"))
}

/// `user info NAME --json`.
fn info(server: &Server, name: &str) -> Value {
    let out = server
        .cli()
        .args(["--json", "user", "info", name])
        .run()
        .ok();
    serde_json::from_str(out.stdout.trim()).unwrap()
}

fn edit(server: &Server, name: &str, stream: &str) -> tributary_e2e::Run {
    server
        .cli()
        .args(["user", "edit", name, "--kafka-default-stream", stream])
        .run()
}

/// The records stored in `topic`'s partition 0, read over gRPC.
async fn records(server: &Server, topic: &str) -> u64 {
    let t = server
        .client()
        .await
        .admin()
        .describe_topic(v1::DescribeTopicRequest { path: topic.into() })
        .await
        .unwrap()
        .into_inner();
    t.partition_info[0].latest_offset
}

#[tokio::test]
async fn a_users_default_stream_is_where_its_kafka_clients_names_resolve() {
    let server = Server::builder()
        .args(&["--kafka-default-stream", "/acme/s"])
        .start();
    let (bob_token, carol_token) = setup(&server).await;
    let bootstrap = server.kafka_addr.clone().expect("the Kafka listener is on");
    let bob = Security::sasl("PLAIN", "bob", &bob_token);
    let carol = Security::sasl("PLAIN", "carol", &carol_token);

    // Set and shown.
    edit(&server, "bob", "/acme/bob").ok();
    edit(&server, "carol", "/acme/carol").ok();
    assert_eq!(info(&server, "bob")["kafka_default_stream"], "/acme/bob");
    let list = server.cli().args(["user", "list"]).run().ok();
    assert!(
        list.stdout.contains("KAFKA DEFAULT STREAM"),
        "{}",
        list.stdout
    );
    assert!(list.stdout.contains("/acme/carol"), "{}", list.stdout);
    // Malformed paths are refused, saying why, and change nothing.
    for bad in ["acme/bob", "/acme", "/acme/bob:orders"] {
        let run = edit(&server, "bob", bad).failed();
        assert!(
            run.stderr.contains("kafka_default_stream"),
            "{bad}: {}",
            run.stderr
        );
    }
    assert_eq!(info(&server, "bob")["kafka_default_stream"], "/acme/bob");
    // Only cluster admins edit users.
    let run = server
        .cli_as(Some(&bob_token))
        .args(["user", "edit", "bob", "--kafka-default-stream", "/acme/s"])
        .run()
        .failed();
    assert!(run.stderr.contains("cluster admin"), "{}", run.stderr);

    // Each user's "all topics" is their own default stream's, under short names.
    for client in ["kcat", "confluent"] {
        let md = kafka::run(client, "metadata", &bootstrap, None, &bob);
        assert_eq!(md, json!({ "topics": { "orders": 1 } }), "{client}: bob");
        let md = kafka::run(client, "metadata", &bootstrap, None, &carol);
        assert_eq!(
            md,
            json!({ "topics": { "extra": 1, "orders": 1 } }),
            "{client}: carol"
        );
    }

    // Bob's `orders` is his stream's: what kcat produces lands there, not in carol's.
    let out = kafka::kcat_with(&bootstrap, &bob, &["-P", "-t", "orders"], b"a\nb\nc\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(records(&server, "/acme/bob:orders").await, 3);
    assert_eq!(records(&server, "/acme/carol:orders").await, 0);

    // A consumer group whose id is no group name reads them and commits.
    let id = "connect-cluster.my sink/1:x";
    let out = kafka::kcat_with(
        &bootstrap,
        &bob,
        &[
            "-G",
            id,
            "-X",
            "auto.offset.reset=earliest",
            "-c",
            "3",
            "-f",
            "%s\n",
            "orders",
        ],
        b"",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "a\nb\nc\n");
    let committed = || {
        let run = server
            .cli()
            .args(["--json", "group", "info", "/acme/bob", ESCAPED])
            .run();
        serde_json::from_str::<Value>(run.stdout.trim()).ok()
    };
    wait_until(
        "the group's commit is seen",
        Duration::from_secs(30),
        || {
            let v = committed();
            async move {
                v.filter(|v| v["partitions"][0]["committed"].as_u64() == Some(3))
                    .map(|_| ())
            }
        },
    )
    .await;
    let list = server.cli().args(["group", "list", "/acme/bob"]).run().ok();
    assert!(list.stdout.contains(ESCAPED), "{}", list.stdout);
    server
        .cli()
        .args(["group", "reset", "/acme/bob", ESCAPED, "--to", "earliest"])
        .run()
        .ok();
    let v = committed().expect("group info");
    assert_eq!(v["partitions"][0]["committed"].as_u64(), Some(0), "{v}");

    // Cleared: bob's names resolve in the listener's default stream again.
    edit(&server, "bob", "none").ok();
    assert_eq!(info(&server, "bob")["kafka_default_stream"], Value::Null);
    let md = kafka::run("kcat", "metadata", &bootstrap, None, &bob);
    assert_eq!(md, json!({ "topics": { "general": 1 } }));
}

//! The Kafka door's security with stock clients against the real server
//! (`tests/kafka/security.py`): one user's rate quotas spent through either door throttle
//! the other (confluent-kafka's throttle callback reports `throttle_time_ms`, gRPC is
//! refused with a retry hint); a token rotated under a live producer ends its session and
//! the old secret no longer authenticates; and each authorization code as
//! confluent-kafka and kafka-python report it.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;

use serde_json::{Value, json};
use tonic::Code;
use tributary_client::{Client, unkeyed};
use tributary_e2e::kafka::{self, Security};
use tributary_e2e::{Server, create_stream};
use tributary_proto::v1;

/// A server whose Kafka listener resolves flat names in `/acme/s` (topic `orders`, 1
/// partition), to which `alice` and `bob` may produce, from which only alice may read,
/// and where `eve` may do nothing; alice's, bob's and eve's tokens.
struct Setup {
    server: Server,
    admin: Client,
    tokens: [String; 3],
}

async fn setup(args: &[&str]) -> Setup {
    let server = Server::builder()
        .args(&["--kafka-default-stream", "/acme/s"])
        .args(args)
        .start();
    let admin = server.client().await;
    let attributes = v1::StreamAttributes {
        consume_perm: Some("u:alice".into()),
        produce_perm: Some("u:alice | u:bob".into()),
        ..Default::default()
    };
    create_stream(&admin, "/acme/s", attributes).await;
    admin
        .admin()
        .create_topic(v1::CreateTopicRequest {
            path: "/acme/s:orders".into(),
            partitions: Some(1),
        })
        .await
        .unwrap();
    let mut tokens = Vec::new();
    for name in ["alice", "bob", "eve"] {
        let token = admin
            .admin()
            .create_user(v1::CreateUserRequest {
                name: name.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .token;
        tokens.push(token);
    }
    Setup {
        server,
        admin,
        tokens: tokens.try_into().unwrap(),
    }
}

impl Setup {
    fn bootstrap(&self) -> &str {
        self.server
            .kafka_addr
            .as_deref()
            .expect("the Kafka listener")
    }

    /// Runs `op` of `tests/kafka/security.py` with `client`; its answer.
    fn run(&self, client: &str, op: &str, sec: &Security, extra: Value) -> Value {
        let mut spec = json!({
            "client": client,
            "op": op,
            "bootstrap": self.bootstrap(),
            "security": sec.json(),
            "topic": "orders",
        });
        for (k, v) in extra.as_object().into_iter().flatten() {
            spec[k] = v.clone();
        }
        let out = kafka::python_script("security.py")
            .arg(spec.to_string())
            .output()
            .unwrap();
        last_json(client, op, &out.stdout, &out.stderr)
    }
}

fn last_json(client: &str, op: &str, stdout: &[u8], stderr: &[u8]) -> Value {
    let text = String::from_utf8_lossy(stdout);
    let line = text.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "{client} {op}: no JSON ({e}):\n{text}\n{}",
            String::from_utf8_lossy(stderr)
        )
    })
}

fn plain(user: &str, token: &str) -> Security {
    Security::sasl("PLAIN", user, token)
}

/// `records` gRPC records of 1 KiB produced as `token`'s user.
async fn grpc_produce(s: &Setup, token: &str, records: usize) -> tributary_client::Result<()> {
    let c = s.server.client_as(Some(token)).await;
    let records = vec![unkeyed(vec![b'g'; 1024]); records];
    c.produce("/acme/s:orders", Some(0), records)
        .await
        .map(drop)
}

#[tokio::test]
async fn one_users_quota_covers_both_doors_and_kafka_reports_throttle_time() {
    // 2 KiB/s each, so 40 KiB is a debt of about 19 s: far longer than the steps below.
    let s = setup(&[
        "--quota-users",
        "{ alice = { produce_bytes_per_sec = 2048 }, bob = { produce_bytes_per_sec = 2048 } }",
    ])
    .await;
    let [alice, bob, _] = &s.tokens;

    // Kafka first: served, throttled (librdkafka's throttle callback has the field)...
    // The client holds what follows a throttled request for its throttle time: the
    // records' timeout covers the whole debt, however librdkafka batches them.
    let answer = s.run(
        "confluent",
        "produce",
        &plain("alice", alice),
        json!({ "count": 40, "timeout_s": 60 }),
    );
    assert_eq!(answer["delivered"], 40, "{answer}");
    assert!(answer["throttle_ms"].as_f64().unwrap() > 0.0, "{answer}");
    // ... and the debt refuses alice on gRPC.
    let refused = grpc_produce(&s, alice, 1).await.unwrap_err();
    assert_eq!(refused.code(), Some(Code::ResourceExhausted), "{refused}");

    // gRPC first: bob's 40 KiB let in, then Kafka throttles his one record for them,
    // far longer than its own kilobyte costs (half a second).
    grpc_produce(&s, bob, 40).await.unwrap();
    let answer = s.run("confluent", "produce", &plain("bob", bob), json!({}));
    assert_eq!(answer["delivered"], 1, "{answer}");
    assert!(answer["throttle_ms"].as_f64().unwrap() > 5000.0, "{answer}");

    let scrape = s.server.scrape();
    let throttled = scrape
        .lines()
        .find(|l| l.starts_with("tributary_quota_throttled_total{quota=\"produce_bytes\"}"))
        .unwrap_or_else(|| panic!("no throttled produce counted:\n{scrape}"));
    let n: f64 = throttled.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n >= 3.0, "{throttled}");
}

/// A producer authenticates, produces, and keeps its connection; the token is rotated;
/// its next produce ends the session, and the client's reconnection with the old secret
/// fails to authenticate. The new token works.
#[tokio::test]
async fn a_rotated_token_ends_a_live_kafka_session() {
    let s = setup(&[]).await;
    for mechanism in ["PLAIN", "SCRAM-SHA-256"] {
        let old = s
            .admin
            .admin()
            .rotate_token(v1::RotateTokenRequest {
                name: "alice".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .token;
        let sec = Security::sasl(mechanism, "alice", &old);
        let spec = json!({
            "client": "confluent",
            "op": "rotation",
            "bootstrap": s.bootstrap(),
            "security": sec.json(),
            "topic": "orders",
        });
        let mut child = kafka::python_script("security.py")
            .arg(spec.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        assert_eq!(first, json!({ "first": ["delivered"] }), "{mechanism}");
        let new = s
            .admin
            .admin()
            .rotate_token(v1::RotateTokenRequest {
                name: "alice".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .token;
        writeln!(child.stdin.take().unwrap(), "go").unwrap();
        let rest: Vec<String> = lines.map(Result::unwrap).collect();
        let status = child.wait().unwrap();
        assert!(status.success(), "{mechanism}: {status}");
        let second: Value = serde_json::from_str(rest.last().unwrap()).unwrap();
        let error = second["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("uthenticat"),
            "{mechanism}: the old secret still served: {second}"
        );
        let answer = s.run(
            "confluent",
            "produce",
            &Security::sasl(mechanism, "alice", &new),
            json!({}),
        );
        assert_eq!(answer["delivered"], 1, "{mechanism}: {answer}");
    }
}

/// Each authorization code where Kafka uses it, as both clients report it: eve may not
/// produce to or describe the stream's topics, and bob may see but not read them
/// (TOPIC_AUTHORIZATION_FAILED); eve may not join or commit its groups
/// (GROUP_AUTHORIZATION_FAILED), create topics in it (TOPIC_AUTHORIZATION_FAILED, as
/// Kafka answers without CREATE) or alter the broker's configs
/// (CLUSTER_AUTHORIZATION_FAILED); a wrong token fails SASL.
#[tokio::test]
async fn each_authorization_code_reaches_real_clients() {
    let s = setup(&[]).await;
    let [alice, bob, eve] = &s.tokens;
    let alice = plain("alice", alice);
    assert_eq!(
        s.run("confluent", "produce", &alice, json!({}))["delivered"],
        1
    );
    let (bob, eve) = (plain("bob", bob), plain("eve", eve));
    let group = json!({ "group": "g1" });
    let cases: &[(&str, &Security, Value, &str)] = &[
        ("produce", &eve, json!({}), "TOPIC_AUTHORIZATION_FAILED"),
        ("metadata", &eve, json!({}), "TOPIC_AUTHORIZATION_FAILED"),
        ("fetch", &bob, json!({}), "TOPIC_AUTHORIZATION_FAILED"),
        ("join", &eve, group.clone(), "GROUP_AUTHORIZATION_FAILED"),
        ("commit", &eve, group.clone(), "GROUP_AUTHORIZATION_FAILED"),
        (
            "create_topic",
            &eve,
            json!({ "topic": "fresh" }),
            "TOPIC_AUTHORIZATION_FAILED",
        ),
        (
            "alter_broker",
            &eve,
            json!({}),
            "CLUSTER_AUTHORIZATION_FAILED",
        ),
    ];
    for client in ["confluent", "kafka-python"] {
        // Alice reads what the others may not.
        assert_eq!(s.run(client, "fetch", &alice, json!({}))["read"], 1024);
        for (op, who, extra, code) in cases {
            let answer = match (client, *op) {
                // confluent's metadata is clients.py's: the topic maps to its error.
                ("confluent", "metadata") => {
                    let md = kafka::run(client, "metadata", s.bootstrap(), Some(&["orders"]), who);
                    json!({ "error": md["topics"]["orders"] })
                }
                _ => s.run(client, op, who, extra.clone()),
            };
            assert_eq!(answer["error"], *code, "{client} {op}: {answer}");
        }
        let wrong = plain("alice", "trb_0123456789abcdef.nope");
        let answer = s.run(client, "produce", &wrong, json!({}));
        let error = answer["error"].as_str().unwrap_or_default();
        // kafka-python retries a refused authentication until its timeout, then says
        // only that.
        if client == "confluent" {
            assert!(error.contains("uthenticat"), "{client}: {answer}");
        } else {
            assert!(!error.is_empty(), "{client}: {answer}");
        }
    }
}

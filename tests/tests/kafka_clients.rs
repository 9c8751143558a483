//! Stock Kafka clients against the real server's Kafka listener (`tributary_e2e::kafka`):
//! kcat on Debian's librdkafka 2.0.2, confluent-kafka, kafka-python, aiokafka and kafkajs,
//! unchanged. Each case runs across every client that supports it: Metadata (all topics
//! lists the default stream's under their short names, a named topic resolves); SASL
//! PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 with a user's token, good and bad; OAUTHBEARER
//! carrying a token; SSL and SASL_SSL with the server's certificates; a client
//! certificate's CN as the user; anonymous access where the server allows it. Records:
//! every codec from every client read back exactly by another; null and empty keys, values
//! and header values across clients and gRPC both ways; offsets_for_times; the admin
//! clients' topic and config calls; hostile raw frames on the running server.

use serde_json::{Value, json};
use tributary_client::{Client, ConnectOptions};
use tributary_e2e::kafka::{self, CLIENTS, Security};
use tributary_e2e::{Pki, Server, create_stream};
use tributary_proto::v1;

/// A server whose Kafka listener resolves flat names in `/acme/s` (topics `orders`, 3
/// partitions, and `clicks`, 1), which only `alice` may read; and alice's token.
struct Setup {
    server: Server,
    alice: String,
    admin: Client,
}

async fn setup(args: &[&str], ca: Option<&Pki>) -> Setup {
    let server = Server::builder()
        .args(&["--kafka-default-stream", "/acme/s"])
        .args(args)
        .start();
    let options = ConnectOptions {
        token: Some(server.admin_token()),
        ca_cert: ca.map(|p| std::fs::read(&p.ca).unwrap()),
        identity: None,
    };
    let admin = Client::connect_with(&server.url, &options).await.unwrap();
    let attributes = v1::StreamAttributes {
        consume_perm: Some("u:alice".into()),
        produce_perm: Some("u:alice".into()),
        ..Default::default()
    };
    create_stream(&admin, "/acme/s", attributes).await;
    for (topic, partitions) in [("orders", 3), ("clicks", 1)] {
        admin
            .admin()
            .create_topic(v1::CreateTopicRequest {
                path: format!("/acme/s:{topic}"),
                partitions: Some(partitions),
            })
            .await
            .unwrap();
    }
    let alice = admin
        .admin()
        .create_user(v1::CreateUserRequest {
            name: "alice".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .token;
    Setup {
        server,
        alice,
        admin,
    }
}

impl Setup {
    fn bootstrap(&self) -> &str {
        self.server
            .kafka_addr
            .as_deref()
            .expect("the Kafka listener is on")
    }

    fn metadata(&self, client: &str, topics: Option<&[&str]>, sec: &Security) -> Value {
        kafka::run(client, "metadata", self.bootstrap(), topics, sec)
    }
}

/// Alice's view: both topics, under their short names, with their partition counts.
fn alices_topics() -> Value {
    json!({ "topics": { "clicks": 1, "orders": 3 } })
}

/// The two topics, asked for by name.
const BOTH: Option<&[&str]> = Some(&["clicks", "orders"]);

fn assert_refused(client: &str, case: &str, answer: &Value) {
    let error = answer["error"].as_str().unwrap_or_else(|| {
        panic!("{client} {case}: expected an authentication failure, got {answer}")
    });
    if ["kafka-python", "aiokafka"].contains(&client) {
        // They retry a refused bootstrap until their timeout, then say only that.
        return;
    }
    let lower = error.to_lowercase();
    assert!(
        lower.contains("auth") || lower.contains("sasl"),
        "{client} {case}: not an authentication failure: {error}"
    );
}

#[tokio::test]
async fn every_client_reads_metadata_with_sasl_plain() {
    let s = setup(&[], None).await;
    let alice = Security::sasl("PLAIN", "alice", &s.alice);
    for client in CLIENTS {
        // confluent-kafka's librdkafka sends its "all topics" Metadata v12 with three bytes
        // after the body, which the door ignores as Kafka brokers do.
        assert_eq!(
            s.metadata(client, None, &alice),
            alices_topics(),
            "{client}: all topics"
        );
        let named = s.metadata(client, Some(&["orders"]), &alice);
        assert_eq!(
            named,
            json!({ "topics": { "orders": 3 } }),
            "{client}: orders"
        );
        let wrong = Security::sasl("PLAIN", "alice", "trb_0123456789abcdef.nope");
        assert_refused(
            client,
            "PLAIN with a wrong token",
            &s.metadata(client, None, &wrong),
        );
    }
    // Nothing but ApiVersions and the SASL handshake is served before authenticating.
    for client in ["confluent", "kafkajs"] {
        let answer = s.metadata(client, None, &Security::plaintext());
        assert!(answer.get("error").is_some(), "{client}: {answer}");
    }
}

#[tokio::test]
async fn scram_sha_256_and_512_prove_a_token_without_sending_it() {
    let s = setup(&[], None).await;
    for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
        for client in CLIENTS {
            let good = Security::sasl(mechanism, "alice", &s.alice);
            assert_eq!(
                s.metadata(client, BOTH, &good),
                alices_topics(),
                "{client} {mechanism}"
            );
            let wrong = Security::sasl(mechanism, "alice", "trb_0123456789abcdef.nope");
            assert_refused(client, mechanism, &s.metadata(client, None, &wrong));
            // An unknown user, with the clients that say at once why they failed.
            if ["kcat", "confluent", "kafkajs"].contains(client) {
                let nobody = Security::sasl(mechanism, "mallory", &s.alice);
                assert_refused(client, mechanism, &s.metadata(client, None, &nobody));
            }
        }
    }
    // A rotated token's verifiers replace the old ones: the old token fails, the new works.
    // A fresh connection: the setup's has been idle through every client's run.
    let admin = s.server.client().await;
    let rotated = admin
        .admin()
        .rotate_token(v1::RotateTokenRequest {
            name: "alice".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .token;
    let old = Security::sasl("SCRAM-SHA-256", "alice", &s.alice);
    assert_refused(
        "confluent",
        "old token",
        &s.metadata("confluent", None, &old),
    );
    let new = Security::sasl("SCRAM-SHA-256", "alice", &rotated);
    assert_eq!(s.metadata("confluent", BOTH, &new), alices_topics());
}

#[tokio::test]
async fn oauthbearer_carries_a_token() {
    let s = setup(&[], None).await;
    // kcat's librdkafka can only make unsecured JWTs of its own; the others take a token.
    for client in ["confluent", "kafka-python", "aiokafka", "kafkajs"] {
        let good = Security::sasl("OAUTHBEARER", "", &s.alice);
        assert_eq!(s.metadata(client, BOTH, &good), alices_topics(), "{client}");
        let wrong = Security::sasl("OAUTHBEARER", "", "trb_0123456789abcdef.nope");
        assert_refused(client, "OAUTHBEARER", &s.metadata(client, None, &wrong));
    }
}

#[tokio::test]
async fn ssl_sasl_ssl_and_client_certificates() {
    let pki = Pki::new();
    let s = setup(&pki.serve_args(true), Some(&pki)).await;
    let tls = |protocol: &'static str| Security {
        protocol,
        ca: Some(pki.ca.clone()),
        ..Security::default()
    };
    for client in CLIENTS {
        // SASL_SSL: a token over TLS.
        let sasl_ssl = Security {
            mechanism: Some("PLAIN"),
            user: "alice".into(),
            password: s.alice.clone(),
            ..tls("SASL_SSL")
        };
        assert_eq!(
            s.metadata(client, BOTH, &sasl_ssl),
            alices_topics(),
            "{client} SASL_SSL"
        );
        // SSL with alice's certificate: its CN is the user.
        let cert = Security {
            cert: Some(pki.alice.clone()),
            ..tls("SSL")
        };
        assert_eq!(
            s.metadata(client, BOTH, &cert),
            alices_topics(),
            "{client} SSL as alice"
        );
    }
    // A certificate naming no user, or from another CA, gets nowhere.
    for (case, id) in [("stranger", &pki.stranger), ("rogue CA", &pki.rogue_admin)] {
        let sec = Security {
            cert: Some(id.clone()),
            ..tls("SSL")
        };
        let answer = s.metadata("confluent", None, &sec);
        assert!(answer.get("error").is_some(), "{case}: {answer}");
    }
}

#[tokio::test]
async fn anonymous_access_is_what_it_is_on_grpc() {
    let s = setup(&["--allow-anonymous"], None).await;
    let admin = &s.admin;
    create_stream(
        admin,
        "/open/s",
        v1::StreamAttributes {
            consume_perm: Some("p".into()),
            ..Default::default()
        },
    )
    .await;
    admin
        .admin()
        .create_topic(v1::CreateTopicRequest {
            path: "/open/s:news".into(),
            partitions: Some(2),
        })
        .await
        .unwrap();
    for client in CLIENTS {
        // Without credentials: the anonymous user, who may not see alice's stream.
        let answer = s.metadata(client, Some(&["/open/s:news"]), &Security::plaintext());
        if *client == "kafka-python" {
            // kafka-python refuses `/` and `:` in names (it finds no partitions).
            assert_ne!(
                answer["topics"]["/open/s:news"],
                json!(2),
                "{client}: {answer}"
            );
        } else {
            assert_eq!(
                answer["topics"]["/open/s:news"],
                json!(2),
                "{client}: {answer}"
            );
        }
        if *client != "confluent" {
            let all = s.metadata(client, None, &Security::plaintext());
            assert_eq!(
                all,
                json!({ "topics": {} }),
                "{client}: anonymous sees no topic of /acme/s"
            );
        }
        // With credentials, alice.
        let alice = Security::sasl("PLAIN", "alice", &s.alice);
        assert_eq!(
            s.metadata(client, BOTH, &alice),
            alices_topics(),
            "{client}"
        );
    }
}

// --- Records through the door ------------------------------------------------------------

/// A server whose flat names resolve in `/acme/s` (ACLs open to the admin), the cluster
/// admin's SASL PLAIN credentials, and these topics of `/acme/s` with their partitions.
async fn records_door(args: &[&str], topics: &[(&str, u32)]) -> (Server, Security) {
    let server = Server::builder()
        .args(&["--kafka-default-stream", "/acme/s"])
        .args(args)
        .start();
    let admin = server.client().await;
    create_stream(&admin, "/acme/s", v1::StreamAttributes::default()).await;
    for (topic, partitions) in topics {
        admin
            .admin()
            .create_topic(v1::CreateTopicRequest {
                path: format!("/acme/s:{topic}"),
                partitions: Some(*partitions),
            })
            .await
            .unwrap();
    }
    let sec = Security::sasl("PLAIN", "admin", &server.admin_token());
    (server, sec)
}

fn bootstrap(server: &Server) -> &str {
    server
        .kafka_addr
        .as_deref()
        .expect("the Kafka listener is on")
}

/// The records of a consume answer, without their offsets.
fn consumed(client: &str, answer: &Value) -> Vec<Value> {
    let records = answer["records"]
        .as_array()
        .unwrap_or_else(|| panic!("{client}: {answer}"));
    records
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.as_object_mut().unwrap().remove("offset");
            r
        })
        .collect()
}

fn produce(client: &str, server: &Server, sec: &Security, spec: Value) {
    let answer = kafka::call(client, bootstrap(server), sec, spec);
    assert!(
        answer.get("produced").is_some(),
        "{client} produce: {answer}"
    );
}

fn consume(client: &str, server: &Server, sec: &Security, topic: &str, count: usize) -> Vec<Value> {
    let spec = json!({ "op": "consume", "topic": topic, "count": count });
    consumed(client, &kafka::call(client, bootstrap(server), sec, spec))
}

fn now_ms() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.expect("after 1970").as_millis() as i64
}

/// The codecs every client sends and reads (kafkajs: gzip built in, snappy through
/// kafkajs-snappy), then those all but kafkajs do: no maintained lz4 or zstd codec for
/// kafkajs builds without native code.
const CODECS: [&[&str]; 2] = [&["none", "gzip", "snappy"], &["lz4", "zstd"]];

#[tokio::test]
async fn every_codec_from_every_client_is_read_back_exactly_by_another() {
    let mut topics = Vec::new();
    for client in CLIENTS {
        topics.push((format!("z-{client}"), 3));
        topics.push((format!("zx-{client}"), 2));
    }
    let partitions: Vec<(&str, u32)> = topics.iter().map(|(t, n)| (t.as_str(), *n)).collect();
    let (server, sec) = records_door(&[], &partitions).await;
    let base = now_ms() - 60_000;
    for (i, producer) in CLIENTS.iter().enumerate() {
        // The room the producer's uncompressed records take.
        let mut uncompressed = None;
        for (group, codecs) in CODECS.iter().enumerate() {
            if group == 1 && *producer == "kafkajs" {
                continue;
            }
            let topic = format!("{}-{producer}", ["z", "zx"][group]);
            let started = now_ms();
            // Partition p holds the records sent with codec p: compressible values, headers.
            let mut sent = Vec::new();
            for (p, codec) in codecs.iter().enumerate() {
                let records: Vec<Value> = (0..4)
                    .map(|n| {
                        json!({
                            "partition": p,
                            "key": format!("{codec}-{n}"),
                            "value": format!("{producer} {codec} {n} {}", "abc".repeat(100)),
                            "headers": [["h1", format!("{codec}")], ["h2", ""]],
                            "timestamp": base + (i * 100 + p * 10 + n) as i64,
                        })
                    })
                    .collect();
                let spec = json!({ "op": "produce", "topic": topic, "compression": codec,
                                   "records": records });
                produce(producer, &server, &sec, spec);
                sent.extend(records);
            }
            // The next client in the list reads, skipping kafkajs for lz4 and zstd.
            let readers: Vec<&str> = CLIENTS
                .iter()
                .cycle()
                .skip(i + 1)
                .take(CLIENTS.len() - 1)
                .copied()
                .filter(|r| group == 0 || *r != "kafkajs")
                .collect();
            let reader = readers[0];
            let mut got = consume(reader, &server, &sec, &topic, sent.len());
            if *producer == "kcat" {
                // kcat stamps its records itself: the time it sent them.
                for (r, s) in got.iter_mut().zip(&sent) {
                    let ts = r["timestamp"].as_i64().unwrap();
                    assert!((started..=now_ms()).contains(&ts), "kcat's timestamp {ts}");
                    r["timestamp"] = s["timestamp"].clone();
                }
            }
            assert_eq!(got, sent, "{producer}'s {codecs:?} as {reader} read them");
            // The batches are stored as sent: compressed ones take a fraction of the room
            // (under half even if a producer sent a batch per record: 300 repeated bytes).
            let path = format!("/acme/s:{topic}");
            let info = &cli_json(&server, &["topic", "info", &path])[0];
            for (p, codec) in codecs.iter().enumerate() {
                let stored = info["partition_info"][p]["bytes"].as_u64().unwrap();
                let plain = *uncompressed.get_or_insert(stored);
                if *codec != "none" {
                    assert!(
                        stored < plain / 2,
                        "{producer} {codec}: {stored} bytes, {plain} plain"
                    );
                }
            }
        }
    }
}

/// What `tributary consume --json` (gRPC) printed, as the Kafka clients answer records.
fn grpc_records(server: &Server, topic: &str, count: usize) -> Vec<Value> {
    let run = server
        .cli()
        .args(["--json", "consume", topic, "--from", "earliest"])
        .args(["--max", &count.to_string(), "--timeout", "10s"])
        .run()
        .ok();
    run.stdout
        .lines()
        .map(|l| {
            let r: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            json!({
                "partition": r["partition"],
                "key": r["key"],
                "value": r["value"],
                "headers": r.get("headers").cloned().unwrap_or(json!([])),
                "timestamp": r["timestamp_ms"],
            })
        })
        .collect()
}

#[tokio::test]
async fn null_and_empty_cross_clients_and_grpc_both_ways() {
    let (server, sec) = records_door(&[], &[("nulls", 1), ("back", 1), ("grpc", 1)]).await;
    let t = now_ms() - 60_000;
    let record = |key: Value, value: Value, headers: Value, n: i64| {
        json!({ "partition": 0, "key": key, "value": value, "headers": headers,
                "timestamp": t + n })
    };
    let sent = vec![
        // Duplicate header keys in order, a null header value and an empty one.
        record(
            Value::Null,
            json!("unkeyed"),
            json!([["dup", "1"], ["n", null], ["e", ""], ["dup", "2"]]),
            0,
        ),
        record(json!(""), json!("empty key"), json!([]), 1),
        record(json!("tombstone"), Value::Null, json!([["dup", "x"]]), 2),
        record(json!("empty value"), json!(""), json!([]), 3),
        record(json!(""), json!(""), json!([["", ""]]), 4),
    ];
    // confluent sends all of them (kafka-python refuses a null header value).
    let spec = json!({ "op": "produce", "topic": "nulls", "records": sent });
    produce("confluent", &server, &sec, spec);
    for reader in ["kafka-python", "aiokafka", "kcat"] {
        let got = consume(reader, &server, &sec, "nulls", sent.len());
        assert_eq!(got, sent, "confluent's records as {reader} read them");
    }
    assert_eq!(
        grpc_records(&server, "/acme/s:nulls", sent.len()),
        sent,
        "confluent's records as gRPC reads them"
    );
    // The reverse: `tributary produce --null` over gRPC, read by Kafka clients.
    let lines = "NULL|unkeyed\n|empty key\ntombstone|NULL\nempty value|\n|\n";
    server
        .cli()
        .args([
            "produce",
            "/acme/s:back",
            "--key-separator",
            "|",
            "--null",
            "NULL",
        ])
        .args(["--partition", "0"])
        .run_with_stdin(lines.as_bytes())
        .ok();
    let grpc = grpc_records(&server, "/acme/s:back", 5);
    let fields: Vec<(Value, Value)> = grpc
        .iter()
        .map(|r| (r["key"].clone(), r["value"].clone()))
        .collect();
    let expected = [
        (Value::Null, json!("unkeyed")),
        (json!(""), json!("empty key")),
        (json!("tombstone"), Value::Null),
        (json!("empty value"), json!("")),
        (json!(""), json!("")),
    ];
    assert_eq!(fields, expected, "as gRPC reads them");
    for reader in ["confluent", "kafka-python", "kafkajs"] {
        let got = consume(reader, &server, &sec, "back", 5);
        assert_eq!(got, grpc, "gRPC's records as {reader} reads them");
    }
    // And through the Rust client, with headers and timestamps: confluent's records again.
    let bytes = |v: &Value| v.as_str().map(|s| bytes::Bytes::from(s.to_owned()));
    let records = sent
        .iter()
        .map(|r| v1::Record {
            key: bytes(&r["key"]),
            value: bytes(&r["value"]),
            headers: r["headers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| v1::Header {
                    key: h[0].as_str().unwrap().to_owned(),
                    value: bytes(&h[1]),
                })
                .collect(),
            timestamp_ms: r["timestamp"].as_i64(),
        })
        .collect();
    let client = server.client().await;
    client
        .produce("/acme/s:grpc", Some(0), records)
        .await
        .unwrap();
    for reader in ["confluent", "aiokafka", "kcat"] {
        let got = consume(reader, &server, &sec, "grpc", sent.len());
        assert_eq!(
            got, sent,
            "the Rust client's records as {reader} reads them"
        );
    }
}

#[tokio::test]
async fn offsets_for_times_finds_the_first_record_at_or_after_a_time() {
    let (server, sec) = records_door(&[], &[("times", 1)]).await;
    let t = now_ms() - 60_000;
    let records: Vec<Value> = (0..3)
        .map(|n| {
            json!({ "partition": 0, "key": format!("k{n}"), "value": "v", "headers": [],
                    "timestamp": t + 1000 * n })
        })
        .collect();
    let spec = json!({ "op": "produce", "topic": "times", "records": records });
    produce("confluent", &server, &sec, spec);
    // Before all, exactly the first, between, exactly the last, after all.
    let times = [t - 5000, t, t + 500, t + 2000, t + 2001];
    let found = [json!(0), json!(0), json!(1), json!(2)];
    // Kafka answers -1 for "none": confluent reports it so, kafka-python as None.
    for (client, none) in [("confluent", json!(-1)), ("kafka-python", Value::Null)] {
        let spec = json!({ "op": "offsets_for_times", "topic": "times", "partition": 0,
                           "times": times });
        let answer = kafka::call(client, bootstrap(&server), &sec, spec);
        let mut expected = found.to_vec();
        expected.push(none);
        assert_eq!(answer, json!({ "offsets": expected }), "{client}");
    }
}

/// `tributary --json ARGS...`, parsed line by line.
fn cli_json(server: &Server, args: &[&str]) -> Vec<Value> {
    let run = server.cli().args(["--json"]).args(args).run().ok();
    run.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// A stream's topics and their partition counts, as the CLI lists them.
fn cli_topics(server: &Server, stream: &str) -> Vec<(String, u64)> {
    cli_json(server, &["topic", "list", stream])
        .iter()
        .map(|t| {
            (
                t["path"].as_str().unwrap().to_owned(),
                t["partitions"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn admin_clients_create_grow_configure_and_delete_topics() {
    // Each client's topics go to a stream of their own: configs are a stream's.
    let aliases = r#"["cf-*=/cf/s","kp-*=/kp/s"]"#;
    let (server, sec) = records_door(&["--kafka-aliases", aliases], &[]).await;
    let admin = server.client().await;
    for (client, p) in [("confluent", "cf"), ("kafka-python", "kp")] {
        let stream = format!("/{p}/s");
        create_stream(&admin, &stream, v1::StreamAttributes::default()).await;
        let (a, b) = (format!("{p}-a"), format!("{p}-b"));
        let admin_steps = |steps: Value| {
            let spec = json!({ "op": "admin", "steps": steps });
            kafka::call(client, bootstrap(&server), &sec, spec)["steps"].clone()
        };
        let steps = admin_steps(json!([
            { "do": "create", "name": a, "partitions": 2,
              "configs": { "retention.ms": "3600000", "cleanup.policy": "delete" } },
            { "do": "create", "name": b, "partitions": 1 },
            { "do": "grow", "name": a, "partitions": 4 },
            { "do": "grow", "name": a, "partitions": 3 },
            { "do": "alter", "name": a, "configs": { "max.message.bytes": "2000000" } },
            { "do": "describe", "name": b },
        ]));
        let partitions = json!({ "error": "INVALID_PARTITIONS" });
        let ok = json!("ok");
        let done = &steps.as_array().expect("steps")[..5];
        assert_eq!(
            done,
            [ok.clone(), ok.clone(), ok.clone(), partitions, ok],
            "{client}: {steps}"
        );
        // b shares a's stream, so its configs are a's.
        let configs = &steps[5];
        for (key, value) in [
            ("retention.ms", "3600000"),
            ("cleanup.policy", "delete"),
            ("max.message.bytes", "2000000"),
            ("min.insync.replicas", "1"),
        ] {
            assert_eq!(configs[key], json!(value), "{client}: {key} in {configs}");
        }
        let info = &cli_json(&server, &["stream", "info", &stream])[0];
        assert_eq!(
            (
                &info["ttl_ms"],
                &info["max_message_bytes"],
                &info["compact"]
            ),
            (&json!(3_600_000), &json!(2_000_000), &json!(false)),
            "{client}: {info}"
        );
        let topics = vec![(format!("{stream}:{a}"), 4), (format!("{stream}:{b}"), 1)];
        assert_eq!(cli_topics(&server, &stream), topics, "{client}");

        // Configs a stream cannot hold are refused with INVALID_CONFIG, changing nothing.
        let steps = admin_steps(json!([
            { "do": "alter", "name": a, "configs": { "retention.ms": "0" } },
            { "do": "alter", "name": a, "configs": { "segment.bytes": "100" } },
            { "do": "create", "name": format!("{p}-c"), "partitions": 1,
              "configs": { "retention.ms": "0" } },
        ]));
        let invalid = json!({ "error": "INVALID_CONFIG" });
        assert_eq!(steps, json!([invalid, invalid, invalid]), "{client}");
        assert_eq!(
            &cli_json(&server, &["stream", "info", &stream])[0],
            info,
            "{client}"
        );
        assert_eq!(cli_topics(&server, &stream), topics, "{client}");

        // Deleted, then unknown (librdkafka names the code UNKNOWN_TOPIC_OR_PART).
        let steps = admin_steps(json!([
            { "do": "delete", "name": b },
            { "do": "delete", "name": b },
        ]));
        assert_eq!(steps[0], json!("ok"), "{client}: {steps}");
        let unknown = steps[1]["error"].as_str().unwrap_or_default();
        assert!(
            unknown.starts_with("UNKNOWN_TOPIC_OR_PART"),
            "{client}: {steps}"
        );
        assert_eq!(cli_topics(&server, &stream), topics[..1], "{client}");
    }
}

// --- Hostile frames on a running server ---------------------------------------------------

/// A raw connection to the Kafka listener, blocking, giving up on a read after 10 s.
fn raw_connection(server: &Server) -> std::net::TcpStream {
    let s = std::net::TcpStream::connect(bootstrap(server)).expect("connects");
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    s
}

/// A request frame: size, then header v1 (key, version, correlation id 1, a null client
/// id), then `body`; a flexible version (`tagged`) adds the header's empty tagged fields.
fn raw_request(key: i16, version: i16, tagged: bool, body: &[u8]) -> Vec<u8> {
    let mut frame = [
        &key.to_be_bytes()[..],
        &version.to_be_bytes(),
        &1i32.to_be_bytes(),
    ]
    .concat();
    frame.extend([0xff, 0xff]);
    if tagged {
        frame.push(0);
    }
    frame.extend(body);
    [&(frame.len() as i32).to_be_bytes()[..], &frame].concat()
}

/// The next response's bytes after its size, or `None` once the server closed.
fn raw_response(s: &mut std::net::TcpStream) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut size = [0; 4];
    match s.read_exact(&mut size) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return None,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
        Err(e) => panic!("neither a response nor a close within the deadline: {e}"),
    }
    let mut body = vec![0; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut body).expect("a whole response");
    Some(body)
}

fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

/// Sends `frame` on a new connection and expects the server to close it.
fn closes(server: &Server, what: &str, frame: &[u8], authenticated: bool) {
    let mut s = raw_connection(server);
    if authenticated {
        sasl_plain(&mut s, "admin", &server.admin_token());
    }
    std::io::Write::write_all(&mut s, frame).unwrap();
    assert_eq!(raw_response(&mut s), None, "{what}: answered, not closed");
}

/// SaslHandshake v1 and SaslAuthenticate v0 with PLAIN, by hand.
fn sasl_plain(s: &mut std::net::TcpStream, user: &str, token: &str) {
    let plain = format!("\0{user}\0{token}");
    let handshake = [&5i16.to_be_bytes()[..], b"PLAIN"].concat();
    let authenticate = [&(plain.len() as i32).to_be_bytes()[..], plain.as_bytes()].concat();
    for (key, version, body) in [(17, 1, handshake), (36, 0, authenticate)] {
        std::io::Write::write_all(s, &raw_request(key, version, false, &body)).unwrap();
        let answer = raw_response(s).expect("an answer");
        assert_eq!(i16_at(&answer, 4), 0, "SASL step {key} refused");
    }
}

#[tokio::test]
async fn hostile_frames_leave_the_running_server_serving_stock_clients() {
    let (server, sec) = records_door(&[], &[("h", 1)]).await;
    let t = now_ms() - 60_000;
    let mut sent = Vec::new();
    let mut still_serves = |case: &str| {
        let metadata = kafka::run(
            "confluent",
            "metadata",
            bootstrap(&server),
            Some(&["h"]),
            &sec,
        );
        assert_eq!(metadata, json!({ "topics": { "h": 1 } }), "after {case}");
        let r = json!({ "partition": 0, "key": case, "value": "v", "headers": [],
                        "timestamp": t + sent.len() as i64 });
        let spec = json!({ "op": "produce", "topic": "h", "records": [r] });
        produce("kafka-python", &server, &sec, spec);
        sent.push(r);
    };

    // An unknown API key (999), from an authenticated connection.
    closes(
        &server,
        "unknown key",
        &raw_request(999, 0, false, &[]),
        true,
    );
    still_serves("unknown key");
    // 2 GiB announced: closed before anything is read or allocated.
    closes(&server, "2 GiB", &i32::MAX.to_be_bytes(), false);
    still_serves("2 GiB");
    // A Produce before SASL on a listener that needs it.
    closes(
        &server,
        "Produce before SASL",
        &raw_request(0, 3, false, &[0; 16]),
        false,
    );
    still_serves("Produce before SASL");
    // ApiVersions v99: answered at v0 with UNSUPPORTED_VERSION and the served range.
    let mut s = raw_connection(&server);
    std::io::Write::write_all(&mut s, &raw_request(18, 99, true, &[1, 1, 0])).unwrap();
    let answer = raw_response(&mut s).expect("an answer");
    assert_eq!(
        i32::from_be_bytes(answer[..4].try_into().unwrap()),
        1,
        "correlation id"
    );
    assert_eq!(i16_at(&answer, 4), 35, "UNSUPPORTED_VERSION");
    let count = i32::from_be_bytes(answer[6..10].try_into().unwrap()) as usize;
    assert_eq!(answer.len(), 10 + 6 * count, "a v0 body");
    let apis: Vec<(i16, i16, i16)> = answer[10..]
        .chunks(6)
        .map(|k| (i16_at(k, 0), i16_at(k, 2), i16_at(k, 4)))
        .collect();
    assert!(apis.contains(&(18, 0, 4)), "ApiVersions 0-4 in {apis:?}");
    still_serves("ApiVersions v99");
    // A truncated frame, its connection left open while stock clients are served.
    let mut cut = raw_connection(&server);
    std::io::Write::write_all(&mut cut, &[&100i32.to_be_bytes()[..], &[0, 18, 0]].concat())
        .unwrap();
    still_serves("a truncated frame");
    drop(cut);
    still_serves("the truncated frame's close");
    assert_eq!(
        consume("aiokafka", &server, &sec, "h", sent.len()),
        sent,
        "every record produced between the hostile frames"
    );
}

#[tokio::test]
async fn stock_producers_create_their_topic_as_a_grpc_produce_does() {
    let (server, sec) = records_door(&[], &[]).await;
    let t = now_ms() - 60_000;
    for producer in ["kcat", "kafka-python", "kafkajs"] {
        let topic = format!("new-{producer}");
        let r = json!({ "partition": 0, "key": "k", "value": producer, "headers": [],
                        "timestamp": t });
        let spec = json!({ "op": "produce", "topic": topic, "records": [r] });
        produce(producer, &server, &sec, spec);
        let got = consume("confluent", &server, &sec, &topic, 1);
        assert_eq!(got[0]["value"], json!(producer), "{producer}: {got:?}");
    }
    // In the default stream, with its default partition count.
    let made: Vec<(String, u64)> = ["kafka-python", "kafkajs", "kcat"]
        .iter()
        .map(|p| (format!("/acme/s:new-{p}"), 1))
        .collect();
    assert_eq!(cli_topics(&server, "/acme/s"), made);
}

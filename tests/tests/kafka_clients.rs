//! Stock Kafka clients against the real server's Kafka listener (`tributary_e2e::kafka`):
//! kcat on Debian's librdkafka 2.0.2, confluent-kafka, kafka-python, aiokafka and kafkajs,
//! unchanged. Each case runs across every client that supports it: Metadata (all topics
//! lists the default stream's under their short names, a named topic resolves); SASL
//! PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 with a user's token, good and bad; OAUTHBEARER
//! carrying a token; SSL and SASL_SSL with the server's certificates; a client
//! certificate's CN as the user; anonymous access where the server allows it.

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

//! Stock idempotent Kafka producers (confluent-kafka with `enable.idempotence=true`,
//! kafka-python 3, idempotent by default; `tests/kafka/idempotent.py`) against the real
//! server through the fault proxy: a produce response is lost and the client retries; the
//! retry is answered with the original offset and leaves one copy, also when the server
//! was killed and restarted before the retry reached it (the producer's state is stored).

use std::io::{BufRead, BufReader, Write};
use std::process::{ChildStdout, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use tributary_e2e::{Proxy, Server, create_stream, kafka, repo_root, wait_until};
use tributary_proto::v1;

const TOPIC: &str = "/acme/s:events";

/// A server whose Kafka listener resolves flat names in `/acme/s` (topic `events`, one
/// partition), and a proxy in front of that listener, which the listener advertises, so
/// clients reach it through the proxy after bootstrapping too.
async fn setup() -> (Server, Proxy) {
    // The proxy needs the listener's address, and the listener the proxy's: pick a free
    // port for the listener first.
    let kafka: std::net::SocketAddr = {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        free.local_addr().unwrap()
    };
    let proxy = Proxy::start(kafka).await;
    let server = Server::builder()
        .args(&["--kafka-default-stream", "/acme/s"])
        .args(&["--kafka-listen", &kafka.to_string()])
        .args(&["--kafka-advertised", &proxy.addr.to_string()])
        .start();
    let admin = server.client().await;
    create_stream(&admin, "/acme/s", v1::StreamAttributes::default()).await;
    admin
        .admin()
        .create_topic(v1::CreateTopicRequest {
            path: TOPIC.into(),
            partitions: Some(1),
        })
        .await
        .unwrap();
    (server, proxy)
}

/// Runs `client`'s idempotent producer through `proxy`: it writes `first`, then `second`,
/// whose response the proxy swallows; with `restart`, the server is killed and started
/// again before the client's retry can reach it. The producer's answer.
async fn lose_a_response(client: &str, server: &mut Server, proxy: &Proxy, restart: bool) -> Value {
    let spec = json!({
        "client": client,
        "bootstrap": proxy.addr.to_string(),
        "topic": "events",
        "user": "admin",
        "password": server.admin_token(),
    });
    let mut child = kafka::python()
        .arg(repo_root().join("tests/kafka/idempotent.py"))
        .arg(spec.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python runs");
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (ready, lines) = next_json(lines).await;
    assert_eq!(ready, json!({"ready": true}), "{client}");
    if restart {
        proxy.drop_next_response_and_cut();
    } else {
        proxy.drop_next_response();
    }
    writeln!(child.stdin.as_mut().unwrap(), "go").unwrap();
    wait_until(
        "the produce response to be lost",
        Duration::from_secs(30),
        || async { (proxy.dropped_responses() == 1).then_some(()) },
    )
    .await;
    if restart {
        // The retry cannot reach the server until it has been killed and started again.
        proxy.cut();
        server.kill9();
        server.restart_in_place();
        proxy.resume();
    }
    let (answer, _) = next_json(lines).await;
    assert!(child.wait().unwrap().success(), "{client} exited");
    answer
}

type Lines = std::io::Lines<BufReader<ChildStdout>>;

/// The next JSON line the client prints, read off the runtime's threads.
async fn next_json(mut lines: Lines) -> (Value, Lines) {
    tokio::task::spawn_blocking(move || {
        let line = lines.next().expect("a line").expect("utf-8");
        let v = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        (v, lines)
    })
    .await
    .unwrap()
}

/// The values stored in the topic, in offset order.
async fn values(server: &Server) -> Vec<String> {
    let admin = server.client().await;
    let f = admin
        .fetch(TOPIC, 0, 0, 0, Duration::ZERO)
        .await
        .expect("fetch");
    f.records
        .iter()
        .map(|r| String::from_utf8_lossy(r.record.value.as_deref().unwrap_or_default()).into())
        .collect()
}

async fn one_copy(client: &str, restart: bool) {
    let (mut server, proxy) = setup().await;
    let answer = lose_a_response(client, &mut server, &proxy, restart).await;
    assert_eq!(
        answer,
        json!({"offsets": [0, 1]}),
        "{client}: the retry is answered with the original offset"
    );
    assert_eq!(
        values(&server).await,
        ["first", "second"],
        "{client}: one copy"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confluent_retries_a_lost_produce_response_once() {
    one_copy("confluent", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_python_retries_a_lost_produce_response_once() {
    one_copy("kafka-python", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confluent_retry_after_a_restart_is_recognised() {
    one_copy("confluent", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_python_retry_after_a_restart_is_recognised() {
    one_copy("kafka-python", true).await;
}

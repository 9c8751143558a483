//! Null and empty are different records, on the real server: keys, values and header
//! values round-trip byte for byte between the Rust and the Python clients; an empty key is
//! hashed to murmur2's partition and a null one spread; a compacted stream keeps an empty
//! value and deletes its key on a null one; batches encoded before the fields were
//! `optional` (an empty field left out) route and compact as they always did; the CLI
//! sends and prints a null apart from an empty.

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use tributary_client::{Producer, ProducerConfig, record, tombstone, unkeyed};
use tributary_e2e::{Client, PythonClient, Server, create_stream};
use tributary_proto::{v1, wire};

/// Java's murmur2 of the empty key (librdkafka's `unittest_murmur2`), sign bit cleared.
const MURMUR2_OF_EMPTY: u32 = 0x106e_08d9;
const PARTITIONS: u32 = 4;

fn bytes(s: Option<&str>) -> Option<Bytes> {
    s.map(|s| Bytes::copy_from_slice(s.as_bytes()))
}

/// Every pairing of a null, an empty and a non-empty key and value, each with a null, an
/// empty and a non-empty header value under one repeated key. `clients/python/tests/
/// records.py` makes the same nine.
fn combos() -> Vec<v1::Record> {
    let opts = |x| [None, Some(""), Some(x)];
    let headers: Vec<v1::Header> = opts("x")
        .into_iter()
        .map(|v| v1::Header {
            key: "h".into(),
            value: bytes(v),
        })
        .collect();
    opts("k")
        .into_iter()
        .flat_map(|k| {
            let headers = headers.clone();
            opts("v").into_iter().map(move |v| v1::Record {
                key: bytes(k),
                value: bytes(v),
                headers: headers.clone(),
                timestamp_ms: None,
            })
        })
        .collect()
}

/// The stored batches of partition 0 of `topic` from offset 0, as the server sends them.
async fn stored_batches(client: &Client, topic: &str) -> Vec<Bytes> {
    let req = v1::FetchRequest {
        topic: topic.into(),
        partition: 0,
        offset: 0,
        max_bytes: 0,
        max_wait_ms: 0,
    };
    wire::consumer_client::ConsumerClient::new(client.service())
        .fetch(req)
        .await
        .unwrap()
        .into_inner()
        .batches
}

/// Every record of partition 0 of `topic`, with its offset.
async fn read_all(client: &Client, topic: &str) -> Vec<(u64, v1::Record)> {
    let f = client.fetch(topic, 0, 0, 0, Duration::ZERO).await.unwrap();
    f.records
        .into_iter()
        .map(|r| (r.offset, r.record))
        .collect()
}

/// The one stored batch of `topic` holds `records`, encoded exactly as the Rust client
/// encodes them (the server's fields follow), and decodes back to them.
async fn assert_stored_exactly(client: &Client, topic: &str, records: &[v1::Record]) {
    let encoded = v1::RecordBatch {
        records: records.to_vec(),
        ..Default::default()
    }
    .encode_to_vec();
    let stored = stored_batches(client, topic).await;
    assert_eq!(stored.len(), 1, "{topic}: one batch");
    assert!(
        stored[0].starts_with(&encoded),
        "{topic}: the producer's bytes are stored byte for byte"
    );
    let back = v1::RecordBatch::decode(stored[0].clone()).unwrap();
    assert_eq!(back.records, records, "{topic}");
    let read: Vec<_> = read_all(client, topic)
        .await
        .into_iter()
        .map(|r| r.1)
        .collect();
    assert_eq!(read, records, "{topic}: through the client");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_and_empty_round_trip_between_the_rust_and_python_clients() {
    let python = PythonClient::install();
    let server = Server::start();
    let client = server.client().await;
    let attributes = v1::StreamAttributes {
        default_partitions: Some(PARTITIONS),
        ..Default::default()
    };
    create_stream(&client, "/nulls/s", attributes).await;
    client
        .produce("/nulls/s:from-rust", Some(0), combos())
        .await
        .unwrap();
    assert_stored_exactly(&client, "/nulls/s:from-rust", &combos()).await;

    let out = python
        .script("records.py")
        .args([&server.url, &server.admin_token(), "/nulls/s"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "records.py failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Vec<&str>> = stdout.lines().map(|l| l.split(' ').collect()).collect();
    assert_eq!(lines[0], ["FROM_RUST", "9"], "{stdout}");
    assert_eq!(lines[1], ["PRODUCED", "9"], "{stdout}");
    // Python's encoding of the records is Rust's, byte for byte.
    assert_stored_exactly(&client, "/nulls/s:from-python", &combos()).await;

    let empty = (MURMUR2_OF_EMPTY % PARTITIONS).to_string();
    assert_eq!(lines[2][0], "EMPTY_KEY", "{stdout}");
    assert!(
        lines[2][1..].iter().all(|p| *p == empty),
        "an empty key goes to murmur2's partition {empty}: {stdout}"
    );
    assert_eq!(lines[3][0], "NULL_KEY", "{stdout}");
    let spread: BTreeSet<_> = lines[3][1..].iter().collect();
    assert!(spread.len() > 1, "null keys are spread: {stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_key_is_hashed_and_a_null_key_spread() {
    let server = Server::start();
    let client = server.client().await;
    let attributes = v1::StreamAttributes {
        default_partitions: Some(PARTITIONS),
        ..Default::default()
    };
    create_stream(&client, "/route/s", attributes).await;
    let hashed = MURMUR2_OF_EMPTY % PARTITIONS;

    // Routed by the server, one request at a time.
    let (mut keyed, mut spread) = (BTreeSet::new(), BTreeSet::new());
    for i in 0..8 {
        let r = client
            .produce("/route/s:t", None, vec![record("", format!("e{i}"))])
            .await
            .unwrap();
        keyed.insert(r.acks[0].partition);
        let r = client
            .produce("/route/s:t", None, vec![unkeyed(format!("n{i}"))])
            .await
            .unwrap();
        spread.insert(r.acks[0].partition);
    }
    assert_eq!(keyed, BTreeSet::from([hashed]), "murmur2 of the empty key");
    assert!(spread.len() > 1, "null keys go round-robin: {spread:?}");

    // Routed by the client's producer, with the same partitioner.
    let producer = Producer::new(client.clone(), ProducerConfig::default())
        .await
        .unwrap();
    let mut acks = Vec::new();
    for i in 0..8 {
        acks.push(
            producer
                .send("/route/s:t", record("", format!("p{i}")))
                .await
                .unwrap(),
        );
    }
    producer.flush().await.unwrap();
    for ack in acks {
        assert_eq!(ack.await.unwrap().unwrap().partition, hashed);
    }
}

/// Runs key compaction on `stream` now.
fn purge(server: &Server, stream: &str) {
    server.cli().args(["stream", "purge", stream]).run().ok();
}

fn compacted_stream(server: &Server, volume: &str, stream: &str) {
    server.cli().args(["volume", "create", volume]).run().ok();
    server
        .cli()
        .args(["stream", "create", stream, "--compact", "true"])
        .args([
            "--delete-retention",
            "1h",
            "--ttl",
            "0",
            "--partitions",
            "1",
        ])
        .run()
        .ok();
}

/// What compaction keeps of partition 0: (offset, key, value).
async fn kept(client: &Client, topic: &str) -> Vec<(u64, Option<Bytes>, Option<Bytes>)> {
    read_all(client, topic)
        .await
        .into_iter()
        .map(|(o, r)| (o, r.key, r.value))
        .collect()
}

fn kv(o: u64, k: &str, v: Option<&str>) -> (u64, Option<Bytes>, Option<Bytes>) {
    (o, bytes(Some(k)), bytes(v))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compacted_stream_keeps_an_empty_value_and_deletes_on_a_null_one() {
    // Only the purge compacts: the background pass is an hour away.
    let server = Server::builder()
        .args(&["--retention-interval", "1h"])
        .start();
    compacted_stream(&server, "/cmp", "/cmp/s");
    let client = server.client().await;
    let topic = "/cmp/s:t";
    let err = client
        .produce(topic, None, vec![unkeyed("v")])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(tonic::Code::InvalidArgument), "{err}");
    assert!(
        err.to_string().contains("batch.records[0].key: is null"),
        "{err}"
    );
    for batch in [
        vec![record("a", "1"), record("b", "2"), record("c", "3")],
        vec![record("a", ""), tombstone("b")],
        vec![record("", "the empty key")],
        vec![record("d", "4")], // the newest batch, never rewritten
    ] {
        client.produce(topic, None, batch).await.unwrap();
    }
    purge(&server, "/cmp/s");
    assert_eq!(
        kept(&client, topic).await,
        [
            kv(2, "c", Some("3")),
            kv(3, "a", Some("")),
            kv(4, "b", None), // a tombstone stays for the delete retention
            kv(5, "", Some("the empty key")),
            kv(6, "d", Some("4")),
        ],
        "a's empty value replaced its value; b's null deleted it"
    );
}

/// `Record` as clients encoded it before its fields were `optional`: an empty key or value
/// is left out of the encoding.
#[derive(Clone, PartialEq, prost::Message)]
struct OldRecord {
    #[prost(bytes = "bytes", tag = "1")]
    key: Bytes,
    #[prost(bytes = "bytes", tag = "2")]
    value: Bytes,
}

#[derive(Clone, PartialEq, prost::Message)]
struct OldBatch {
    #[prost(message, repeated, tag = "1")]
    records: Vec<OldRecord>,
}

/// Produces `(key, value)` records as an old client encodes them.
async fn produce_old(
    client: &Client,
    topic: &str,
    records: &[(&str, &str)],
) -> Result<u32, tonic::Status> {
    let batch = OldBatch {
        records: records
            .iter()
            .map(|(k, v)| OldRecord {
                key: Bytes::copy_from_slice(k.as_bytes()),
                value: Bytes::copy_from_slice(v.as_bytes()),
            })
            .collect(),
    };
    let req = wire::ProduceRequest {
        topic: topic.into(),
        batch: batch.encode_to_vec().into(),
        ..Default::default()
    };
    let r = wire::producer_client::ProducerClient::new(client.service())
        .produce(req)
        .await?;
    Ok(r.into_inner().acks[0].partition)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_from_clients_before_optional_route_and_compact_as_before() {
    let server = Server::builder()
        .args(&["--retention-interval", "1h"])
        .start();
    let client = server.client().await;

    // An old empty key is left out, so it is null: spread, not hashed.
    let attributes = v1::StreamAttributes {
        default_partitions: Some(PARTITIONS),
        ..Default::default()
    };
    create_stream(&client, "/old/s", attributes).await;
    let mut spread = BTreeSet::new();
    for i in 0..8 {
        let v = format!("v{i}");
        spread.insert(produce_old(&client, "/old/s:t", &[("", &v)]).await.unwrap());
    }
    assert!(
        spread.len() > 1,
        "old unkeyed records go round-robin: {spread:?}"
    );

    // On a compacted stream an old empty key is refused and an old empty value deletes.
    compacted_stream(&server, "/oldc", "/oldc/s");
    let topic = "/oldc/s:t";
    let err = produce_old(&client, topic, &[("", "v")]).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("key: is null"), "{err:?}");
    for batch in [
        &[("k", "1"), ("j", "2")][..],
        &[("k", "")],
        &[("m", "3")], // the newest batch, never rewritten
    ] {
        produce_old(&client, topic, batch).await.unwrap();
    }
    purge(&server, "/oldc/s");
    assert_eq!(
        kept(&client, topic).await,
        [
            kv(1, "j", Some("2")),
            kv(2, "k", None),
            kv(3, "m", Some("3"))
        ],
        "the old empty value is a tombstone, and reads back as null"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_sends_and_prints_a_null_apart_from_an_empty() {
    let server = Server::start();
    let client = server.client().await;
    create_stream(&client, "/cli/s", v1::StreamAttributes::default()).await;
    let topic = "/cli/s:t";
    let lines = "k1:v\nk2:\nk3:NULL\n:empty key\nNULL:null key\nno key\n";
    server
        .cli()
        .args(["produce", topic, "--partition", "0", "--key-separator", ":"])
        .args(["--null", "NULL"])
        .run_with_stdin(lines.as_bytes())
        .ok();
    let got: Vec<_> = read_all(&client, topic)
        .await
        .into_iter()
        .map(|(_, r)| (r.key, r.value))
        .collect();
    let some = |s| bytes(Some(s));
    assert_eq!(
        got,
        [
            (some("k1"), some("v")),
            (some("k2"), some("")),
            (some("k3"), None),
            (some(""), some("empty key")),
            (None, some("null key")),
            (None, some("no key")),
        ]
    );

    let consume = |extra: &[&str]| {
        server
            .cli()
            .args(["consume", topic, "--from", "earliest", "--max", "6"])
            .args(["--timeout", "30s"])
            .args(extra)
            .run()
            .ok()
            .stdout
    };
    // Printed as the producer's input, so it round-trips.
    let text = consume(&["--print-key", "--key-separator", ":"]);
    assert_eq!(
        text,
        "k1:v\nk2:\nk3:NULL\n:empty key\nNULL:null key\nNULL:no key\n"
    );
    let json: Vec<serde_json::Value> = consume(&["--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let pairs: Vec<_> = json.iter().map(|o| (&o["key"], &o["value"])).collect();
    use serde_json::json;
    assert_eq!(
        pairs,
        [
            (&json!("k1"), &json!("v")),
            (&json!("k2"), &json!("")),
            (&json!("k3"), &json!(null)),
            (&json!(""), &json!("empty key")),
            (&json!(null), &json!("null key")),
            (&json!(null), &json!("no key")),
        ]
    );
}

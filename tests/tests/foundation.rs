//! The foundation, end to end: the README's quick start on the real binary (its kcat line
//! too), 100,000 records through a 3-partition topic surviving `kill -9`, fetches within
//! their byte budget and the message limit, clean shutdown, and refusal of a foreign data
//! directory.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use serde_json::json;
use tributary_e2e::{Client, Server, binary, create_stream, kafka};
use tributary_proto::v1;

#[test]
fn readme_quick_start() {
    let server = Server::start();
    server.cli().args(["volume", "create", "/demo"]).run().ok();
    server
        .cli()
        .args(["stream", "create", "/demo/iot/sensors", "--partitions", "3"])
        .run()
        .ok();
    // Global flags are accepted after the verb too.
    let url = server.url.clone();
    server
        .cli()
        .args([
            "topic",
            "create",
            "/demo/iot/sensors:temperature",
            "--server",
            &url,
        ])
        .run()
        .ok();
    server
        .cli()
        .args(["produce", "/demo/iot/sensors:temperature"])
        .run_with_stdin(b"a\nb\nc\n")
        .ok();
    let out = server
        .cli()
        .args([
            "consume",
            "/demo/iot/sensors:temperature",
            "--from",
            "earliest",
            "--max",
            "3",
        ])
        .run()
        .ok();
    assert_eq!(out.stdout, "a\nb\nc\n");

    // The quick start's kcat line: a stock Kafka client reads the same records.
    let bootstrap = server.kafka_addr.clone().expect("a Kafka listener");
    let sec = kafka::Security::sasl("PLAIN", "admin", &server.admin_token());
    let spec = json!({ "op": "consume", "topic": "/demo/iot/sensors:temperature", "count": 3 });
    let read = kafka::call("kcat", &bootstrap, &sec, spec);
    let values: Vec<&str> = read["records"]
        .as_array()
        .unwrap_or_else(|| panic!("kcat read nothing: {read}"))
        .iter()
        .filter_map(|r| r["value"].as_str())
        .collect();
    assert_eq!(values, ["a", "b", "c"], "{read}");

    // --json before the verb, keys and offsets.
    server
        .cli()
        .args(["produce", "/demo/iot/sensors:keyed", "--key-separator", "="])
        .run_with_stdin(b"k1=v1\nk2=v2\n")
        .ok();
    let out = server
        .cli()
        .args([
            "--json",
            "consume",
            "/demo/iot/sensors:keyed",
            "--from",
            "earliest",
            "--timeout",
            "500ms",
        ])
        .run()
        .ok();
    let mut rows: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    rows.sort_by_key(|r| r["key"].as_str().unwrap().to_owned());
    assert_eq!(rows.len(), 2, "{}", out.stdout);
    assert_eq!(
        (rows[0]["key"].as_str(), rows[0]["value"].as_str()),
        (Some("k1"), Some("v1"))
    );
    assert_eq!(rows[1]["value"], "v2");
    let out = server
        .cli()
        .args(["topic", "info", "/demo/iot/sensors:keyed", "--json"])
        .run()
        .ok();
    let info: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        info["partitions"], 3,
        "autocreated with the stream's default partitions"
    );

    // Errors exit non-zero with the server's message.
    let bad = server
        .cli()
        .args(["stream", "create", "/demo/bad name"])
        .run()
        .failed();
    assert!(
        bad.stderr.contains("INVALID_ARGUMENT") && bad.stderr.contains("bad name"),
        "{}",
        bad.stderr
    );
    let missing = server
        .cli()
        .args([
            "consume",
            "/demo/nope:t",
            "--from",
            "earliest",
            "--max",
            "1",
        ])
        .run()
        .failed();
    assert!(missing.stderr.contains("NOT_FOUND"), "{}", missing.stderr);
    let listed = server.cli().args(["stream", "list", "/demo"]).run().ok();
    assert_eq!(
        listed.stdout.lines().count(),
        2,
        "one stream under a header:\n{}",
        listed.stdout
    );
}

const RECORDS: usize = 100_000;
const BATCH: usize = 1_000;

/// Every record of every partition, in offset order, as (offset, key, value).
async fn read_all(
    client: &Client,
    topic: &str,
    partitions: u32,
) -> BTreeMap<u32, Vec<(u64, Bytes, Bytes)>> {
    let mut out = BTreeMap::new();
    for p in 0..partitions {
        let end = client.list_offsets(topic, &[p], true).await.unwrap()[0].1;
        let mut offset = 0;
        let mut records = Vec::new();
        let mut reader = client.reader(topic, p, 0, 256 << 10, Duration::ZERO);
        while offset < end {
            let f = reader.next().await.unwrap();
            assert!(!f.records.is_empty(), "no progress at {offset} of {end}");
            assert_eq!(
                f.records[0].offset, offset,
                "each read starts where the last ended"
            );
            for r in f.records {
                records.push((r.offset, r.record.key.unwrap(), r.record.value.unwrap()));
            }
            offset = f.next_offset;
        }
        out.insert(p, records);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_records_survive_kill_9() {
    let mut server = Server::start();
    let client = server.client().await;
    let attributes = v1::StreamAttributes {
        default_partitions: Some(3),
        durability: v1::Durability::Sync as i32,
        ..Default::default()
    };
    create_stream(&client, "/e2e/s", attributes).await;
    let topic = "/e2e/s:events";

    // Keyed records spread by murmur2; the acks tell where each one went.
    let mut expected: BTreeMap<u32, Vec<(u64, Bytes, Bytes)>> = BTreeMap::new();
    for b in 0..RECORDS / BATCH {
        let records: Vec<_> = (b * BATCH..(b + 1) * BATCH)
            .map(|i| tributary_client::record(format!("key-{i}"), format!("value-{i:06}")))
            .collect();
        let r = client.produce(topic, None, records.clone()).await.unwrap();
        let mut next: BTreeMap<u32, u64> = r
            .acks
            .iter()
            .map(|a| (a.partition, a.base_offset))
            .collect();
        for (i, rec) in records.into_iter().enumerate() {
            let p = r
                .record_partitions
                .get(i)
                .copied()
                .unwrap_or(r.acks[0].partition);
            let o = next.get_mut(&p).unwrap();
            expected
                .entry(p)
                .or_default()
                .push((*o, rec.key.unwrap(), rec.value.unwrap()));
            *o += 1;
        }
    }
    assert_eq!(expected.len(), 3, "keys spread over every partition");
    for (p, recs) in &expected {
        let offsets: Vec<u64> = recs.iter().map(|r| r.0).collect();
        assert_eq!(
            offsets,
            (0..recs.len() as u64).collect::<Vec<_>>(),
            "partition {p}: dense offsets from 0"
        );
    }
    assert_eq!(
        read_all(&client, topic, 3).await,
        expected,
        "read back in order before the crash"
    );

    // Every produce above was acknowledged with sync durability: a crash loses none.
    server.kill9();
    server.restart();
    let client = server.client().await;
    assert_eq!(
        read_all(&client, topic, 3).await,
        expected,
        "read back in order after kill -9"
    );
    let r = client
        .produce(topic, Some(0), vec![tributary_client::unkeyed("after")])
        .await
        .unwrap();
    assert_eq!(
        r.acks[0].base_offset,
        expected[&0].len() as u64,
        "offsets continue after the crash"
    );
}

/// A fetch says where the next one starts, and a reader sends that fetch before it hands
/// back the records of this one: every record once, in order, then a long-poll.
/// One `Fetch` of partition 0 that returns at once, as sent on the wire.
async fn raw_fetch(
    client: &Client,
    topic: &str,
    offset: u64,
    max_bytes: u32,
) -> Result<v1::FetchResponse, tonic::Status> {
    let req = v1::FetchRequest {
        topic: topic.into(),
        partition: 0,
        offset,
        max_bytes,
        max_wait_ms: 0,
    };
    client.consumer().fetch(req).await.map(|r| r.into_inner())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_reads_one_fetch_ahead() {
    let server = Server::start();
    let client = server.client().await;
    create_stream(&client, "/r/s", v1::StreamAttributes::default()).await;
    let topic = "/r/s:t";
    for b in 0..10 {
        let records = (b * 100..(b + 1) * 100)
            .map(|i| tributary_client::unkeyed(format!("v{i}")))
            .collect();
        client.produce(topic, Some(0), records).await.unwrap();
    }

    // The raw call: whole batches, and the base of the first one not returned.
    let fetch = |offset, max_bytes| raw_fetch(&client, topic, offset, max_bytes);
    let r = fetch(150, 1).await.unwrap();
    assert_eq!(
        r.batches.len(),
        1,
        "one batch, at least, whatever the budget"
    );
    assert_eq!((r.batches[0].base_offset, r.next_offset), (100, 200));
    let r = fetch(0, 0).await.unwrap();
    assert_eq!((r.batches.len(), r.next_offset), (10, 1000), "to the end");
    let r = fetch(1000, 0).await.unwrap();
    assert_eq!((r.batches.len(), r.next_offset), (0, 1000), "nothing yet");

    // From the middle of a batch, a few batches per fetch.
    let mut reader = client.reader(topic, 0, 250, 250, Duration::ZERO);
    let mut offset = 250;
    let mut fetches = 0;
    while offset < 1000 {
        let f = reader.next().await.unwrap();
        fetches += 1;
        let offsets: Vec<u64> = f.records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, (offset..f.next_offset).collect::<Vec<_>>());
        for r in &f.records {
            assert_eq!(
                r.record.value.as_deref(),
                Some(format!("v{}", r.offset).as_bytes())
            );
        }
        offset = f.next_offset;
    }
    assert_eq!(fetches, 8, "one batch per fetch: 2..=9");
    let f = reader.next().await.unwrap();
    assert_eq!((f.records.len(), f.next_offset), (0, 1000), "at the end");

    // A reader that long-polls gets what is produced after it asked.
    let mut reader = client.reader(topic, 0, 1000, 0, Duration::from_secs(30));
    let polling = tokio::spawn(async move { reader.next().await });
    client
        .produce(topic, Some(0), vec![tributary_client::unkeyed("late")])
        .await
        .unwrap();
    let f = polling.await.unwrap().unwrap();
    assert_eq!(f.records.len(), 1);
    assert_eq!((f.records[0].offset, f.next_offset), (1000, 1001));

    // An offset past the end is refused, by the reader as by a fetch.
    let mut reader = client.reader(topic, 0, 5000, 0, Duration::ZERO);
    let e = reader.next().await.unwrap_err();
    assert_eq!(e.code(), Some(tonic::Code::OutOfRange), "{e}");
}

/// A fetch returns no more batch bytes than its budget, unless one batch alone is larger;
/// and never a response past the server's message limit, whatever the budget asked: 8 MB
/// batches fetched with 64 MiB or u32::MAX come back (not `OUT_OF_RANGE` from a response
/// too large to send).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetches_keep_their_byte_budget_and_the_message_limit() {
    let server = Server::start();
    let client = server.client().await;
    let large = v1::StreamAttributes {
        max_message_bytes: Some(16 << 20),
        ..Default::default()
    };
    create_stream(&client, "/f/s", large).await;
    let fetch = |topic, offset, max_bytes| raw_fetch(&client, topic, offset, max_bytes);
    let size = |r: &v1::FetchResponse| -> usize { r.batches.iter().map(|b| b.encoded_len()).sum() };

    // Small batches of uneven sizes: each response within 40,000 bytes.
    for b in 0..200u32 {
        let value = vec![b as u8; 500 + (b as usize * 37) % 1_500];
        client
            .produce(
                "/f/s:small",
                Some(0),
                vec![tributary_client::unkeyed(value)],
            )
            .await
            .unwrap();
    }
    let mut offset = 0;
    while offset < 200 {
        let r = fetch("/f/s:small", offset, 40_000).await.unwrap();
        let lens: Vec<usize> = r.batches.iter().map(|b| b.encoded_len()).collect();
        assert!(
            size(&r) <= 40_000,
            "{} bytes from {offset}: {lens:?}",
            size(&r)
        );
        assert!(r.next_offset > offset);
        offset = r.next_offset;
    }

    // Ten batches of 8 MB: 80 MB, past the 64 MiB message limit.
    const BATCH: usize = 8_000_000;
    for b in 0..10u8 {
        client
            .produce(
                "/f/s:big",
                Some(0),
                vec![tributary_client::unkeyed(vec![b; BATCH])],
            )
            .await
            .unwrap();
    }
    for max_bytes in [64 << 20, u32::MAX, BATCH as u32 - 1] {
        let (mut offset, mut batches) = (0, 0);
        while offset < 10 {
            let r = fetch("/f/s:big", offset, max_bytes)
                .await
                .unwrap_or_else(|s| panic!("max_bytes {max_bytes} at {offset}: {s:?}"));
            assert!(!r.batches.is_empty() && size(&r) < 64 << 20);
            for (i, b) in r.batches.iter().enumerate() {
                assert_eq!(b.base_offset, offset + i as u64);
                assert_eq!(b.records[0].value.as_ref().map(Bytes::len), Some(BATCH));
            }
            batches += r.batches.len();
            offset = r.next_offset;
        }
        assert_eq!(batches, 10, "max_bytes {max_bytes}");
    }
}

#[tokio::test]
async fn sigterm_stops_cleanly_and_keeps_buffered_writes() {
    let mut server = Server::start();
    let client = server.client().await;
    let attributes = v1::StreamAttributes {
        durability: v1::Durability::Buffered as i32,
        ..Default::default()
    };
    create_stream(&client, "/v/s", attributes).await;
    client
        .produce("/v/s:t", None, vec![tributary_client::unkeyed("kept")])
        .await
        .unwrap();

    // A parked long-poll must not hold up the shutdown.
    let poller = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .fetch("/v/s:t", 0, 1, 0, Duration::from_secs(60))
                .await
        }
    });
    let status = tokio::task::spawn_blocking(move || {
        let status = server.terminate();
        (status, server)
    });
    let (status, mut server) = status.await.unwrap();
    assert!(status.success(), "exit status {status}");
    assert!(server.log().contains("stopped cleanly"), "{}", server.log());
    let _ = poller.await.unwrap(); // ended by the shutdown, either way

    server.restart();
    let f = server
        .client()
        .await
        .fetch("/v/s:t", 0, 0, 0, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(f.records.len(), 1);
    assert_eq!(f.records[0].record.value, Some(Bytes::from_static(b"kept")));
}

#[test]
fn a_foreign_data_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    std::fs::create_dir_all(&db).unwrap();
    std::fs::write(db.join("precious.txt"), "not ours").unwrap();
    let out = std::process::Command::new(binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refusing to open it as a Tributary data directory"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(db.join("precious.txt")).unwrap(),
        "not ours"
    );
}

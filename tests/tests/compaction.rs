//! Key compaction on the real server: a compacted changelog stream made with the CLI takes
//! many updates per key; `tributary stream purge` compacts it; a consumer reading from the
//! earliest offset sees exactly the latest value of each key, in offset order, with gaps;
//! the result survives `kill -9` and a restart, and compaction goes on after it.

use std::collections::BTreeMap;
use std::time::Duration;

use tributary_client::{record, tombstone, unkeyed};
use tributary_e2e::{Client, Server};
use tributary_proto::v1;

const TOPIC: &str = "/cmp/changelog:users";
const KEYS: usize = 40;
const PARTITIONS: u32 = 2;

/// One batch with an update of every key; in `tombstones` rounds, every fifth key is
/// deleted (a null value).
async fn update_all(client: &Client, round: usize, tombstones: bool) {
    let records = (0..KEYS)
        .map(|k| {
            if tombstones && k % 5 == 0 {
                tombstone(format!("k{k}"))
            } else {
                record(format!("k{k}"), format!("k{k}-v{round}"))
            }
        })
        .collect();
    client.produce(TOPIC, None, records).await.unwrap();
}

/// Every record of every partition from its earliest offset: key -> (value, offset) per
/// partition, checking offsets only ever increase and counting the gaps skipped.
async fn consume_all(client: &Client) -> (BTreeMap<String, String>, usize, u64) {
    let mut latest = BTreeMap::new();
    let (mut records, mut gaps) = (0, 0);
    for (p, earliest) in client.list_offsets(TOPIC, &[], false).await.unwrap() {
        let mut offset = earliest;
        let mut last: Option<u64> = None;
        let mut reader = client.reader(TOPIC, p, offset, 1 << 10, Duration::ZERO);
        loop {
            let f = reader.next().await.unwrap();
            assert!(
                !f.records.is_empty(),
                "a fetch below the end returns records"
            );
            for r in &f.records {
                let expected = last.map_or(earliest, |l| l + 1);
                assert!(r.offset >= expected, "offsets only increase");
                gaps += r.offset - expected;
                last = Some(r.offset);
                let key = String::from_utf8(r.record.key.clone().unwrap().to_vec()).unwrap();
                // A tombstone (a null value) reads as "", as `expected` writes it.
                let value =
                    String::from_utf8(r.record.value.clone().unwrap_or_default().to_vec()).unwrap();
                assert!(
                    latest.insert(key.clone(), value).is_none(),
                    "{key} appears twice after compaction"
                );
                records += 1;
            }
            offset = f.next_offset;
            if offset >= f.high_watermark {
                break;
            }
        }
    }
    (latest, records, gaps)
}

fn expected(round: usize, tombstones: bool) -> BTreeMap<String, String> {
    (0..KEYS)
        .map(|k| {
            let v = if tombstones && k % 5 == 0 {
                String::new()
            } else {
                format!("k{k}-v{round}")
            };
            (format!("k{k}"), v)
        })
        .collect()
}

/// A CLI verb's `--json` output.
fn cli_json(server: &Server, args: &[&str]) -> serde_json::Value {
    let out = server.cli().args(args).run().ok();
    serde_json::from_str(&out.stdout).unwrap()
}

fn purge(server: &Server) -> serde_json::Value {
    cli_json(server, &["stream", "purge", "/cmp/changelog", "--json"])
}

#[tokio::test]
async fn compacted_changelog_keeps_the_latest_value_per_key() {
    // Only the purges below compact: the background pass (which would also compact what is
    // due, and take records from the purges' counts) is an hour away.
    let mut server = Server::builder()
        .args(&["--retention-interval", "1h"])
        .start();
    server.cli().args(["volume", "create", "/cmp"]).run().ok();
    let partitions = PARTITIONS.to_string();
    server
        .cli()
        .args([
            "stream",
            "create",
            "/cmp/changelog",
            "--compact",
            "true",
            "--delete-retention",
            "1h",
            "--ttl",
            "0",
            "--partitions",
            &partitions,
        ])
        .run()
        .ok();
    let info = cli_json(&server, &["stream", "info", "/cmp/changelog", "--json"]);
    assert_eq!(info["compact"], true);
    assert_eq!(info["delete_retention_ms"], 3_600_000);

    let client = server.client().await;
    let err = client
        .produce(TOPIC, None, vec![record("k1", "v"), unkeyed("unkeyed")])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(tonic::Code::InvalidArgument), "{err}");
    assert!(err.to_string().contains("batch.records[1].key"), "{err}");

    // 20 rounds of updates to every key; the last deletes every fifth key.
    for round in 0..20 {
        update_all(&client, round, round == 19).await;
    }
    let purged = purge(&server);
    let removed = purged["purged_records"].as_u64().unwrap();
    assert_eq!(removed, 19 * KEYS as u64, "every superseded update goes");

    let (latest, records, gaps) = consume_all(&client).await;
    assert_eq!(latest, expected(19, true));
    assert_eq!(records, KEYS, "exactly one record per key");
    assert!(gaps > 0, "consumers see gaps in offsets");
    let topic = server
        .client()
        .await
        .admin()
        .describe_topic(v1::DescribeTopicRequest { path: TOPIC.into() })
        .await
        .unwrap()
        .into_inner();
    for p in &topic.partition_info {
        assert_eq!(p.earliest_offset, 0, "the log start stays");
        assert_eq!(p.latest_offset, 20 * p.records, "offsets never change");
        assert!(p.purged_bytes > 0);
    }

    // kill -9 and restart: the compacted log is what comes back; more updates and another
    // purge compact again (the first pass after a restart maps the whole log).
    server.kill9();
    server.restart();
    let client = server.client().await;
    assert_eq!(consume_all(&client).await.0, expected(19, true));
    update_all(&client, 20, false).await;
    let purged = purge(&server);
    assert_eq!(purged["purged_records"].as_u64().unwrap(), KEYS as u64);
    let (latest, records, _) = consume_all(&client).await;
    assert_eq!(latest, expected(20, false));
    assert_eq!(records, KEYS);
    let info = cli_json(&server, &["stream", "info", "/cmp/changelog", "--json"]);
    assert_eq!(info["records"], KEYS);
    assert_eq!(info["purged_records"], 20 * KEYS);
}

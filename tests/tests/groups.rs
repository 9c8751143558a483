//! Consumer groups, cursors, seek by time and idempotent producers on the real server:
//! members sharing partitions, a member killed mid-stream, restarts resuming from cursors,
//! time lookups over a million records, retries after a lost response, and a running
//! producer following a topic that grows.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tributary_client::{
    Client, GroupConfig, GroupConsumer, Producer, ProducerConfig, record, unkeyed,
};
use tributary_e2e::{Proxy, Server, binary, create_stream, wait_until};
use tributary_proto::v1;

const LONG: Duration = Duration::from_secs(60);

async fn setup(server: &Server, stream: &str, topic: &str, partitions: u32) -> Client {
    let client = server.client().await;
    // Kept forever: the time test's records are older than any default TTL.
    let forever = v1::StreamAttributes {
        ttl_ms: Some(0),
        ..Default::default()
    };
    create_stream(&client, stream, forever).await;
    client
        .admin()
        .create_topic(v1::CreateTopicRequest {
            path: format!("{stream}:{topic}"),
            partitions: Some(partitions),
        })
        .await
        .unwrap();
    client
}

/// Produces `n` keyed records (values `v{from+i}`) spread over the topic's partitions.
async fn produce(client: &Client, topic: &str, from: usize, n: usize) {
    for chunk in (from..from + n).collect::<Vec<_>>().chunks(100) {
        let records = chunk
            .iter()
            .map(|i| record(format!("k{i}"), format!("v{i}")))
            .collect();
        client.produce(topic, None, records).await.unwrap();
    }
}

type Seen = Arc<Mutex<Vec<(usize, u32, u64)>>>;

/// A member that records what it gets as `(member, partition, offset)` and commits after
/// every poll, until `stop` is set.
fn member(
    client: Client,
    idx: usize,
    group: &str,
    seen: Seen,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let mut config = GroupConfig::new("/g/s", group, &["t"]);
    config.auto_commit = None;
    config.client_id = format!("m{idx}");
    tokio::spawn(async move {
        let mut c = GroupConsumer::join(&client, config).await.unwrap();
        let mut stop = stop;
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                rs = c.poll() => {
                    let rs = rs.unwrap();
                    seen.lock().unwrap().extend(rs.iter().map(|r| (idx, r.record.partition, r.record.offset)));
                    c.commit().await.unwrap();
                }
            }
        }
        c.close().await.unwrap();
    })
}

async fn describe(client: &Client, group: &str) -> v1::GroupDescription {
    try_describe(client, group).await.expect("the group exists")
}

async fn try_describe(client: &Client, group: &str) -> Option<v1::GroupDescription> {
    client
        .consumer()
        .describe_group(v1::DescribeGroupRequest {
            stream: "/g/s".into(),
            group: group.into(),
        })
        .await
        .ok()
        .map(|r| r.into_inner())
}

fn total_lag(d: &v1::GroupDescription) -> u64 {
    d.partitions.iter().map(|p| p.lag).sum()
}

#[tokio::test]
async fn three_members_share_twelve_partitions_and_see_each_record_once() {
    let server = Server::start();
    let client = setup(&server, "/g/s", "t", 12).await;

    let seen: Seen = Arc::default();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let members: Vec<_> = (0..3)
        .map(|i| member(client.clone(), i, "share", seen.clone(), stopped.clone()))
        .collect();
    // The records arrive once the three members hold four partitions each, so the first
    // to join cannot have read them all alone before the others came.
    wait_until("the group to balance", LONG, || async {
        let d = try_describe(&client, "share").await?;
        (d.members.len() == 3 && d.members.iter().all(|m| m.partitions.len() == 4)).then_some(())
    })
    .await;
    produce(&client, "/g/s:t", 0, 1200).await;
    // Everything read and committed, by three members with four partitions each.
    wait_until("the group to read everything, balanced", LONG, || async {
        let d = try_describe(&client, "share").await?;
        let balanced = d.members.len() == 3 && d.members.iter().all(|m| m.partitions.len() == 4);
        (balanced && d.partitions.len() == 12 && total_lag(&d) == 0).then_some(())
    })
    .await;
    stop.send(true).unwrap();
    for m in members {
        m.await.unwrap();
    }
    let seen = seen.lock().unwrap();
    let unique: BTreeSet<(u32, u64)> = seen.iter().map(|&(_, p, o)| (p, o)).collect();
    assert_eq!(unique.len(), 1200, "every record delivered");
    assert_eq!(seen.len(), 1200, "and delivered once");
    // Each partition went to one member at a time: no two members share an offset.
    let by_member: HashMap<usize, usize> = seen.iter().fold(HashMap::new(), |mut m, &(i, _, _)| {
        *m.entry(i).or_default() += 1;
        m
    });
    assert!(by_member.len() >= 2, "the work was shared: {by_member:?}");
}

#[tokio::test]
async fn a_killed_member_loses_its_partitions_and_committed_records_are_not_read_again() {
    let server = Server::start();
    let client = setup(&server, "/g/s", "t", 6).await;
    produce(&client, "/g/s:t", 0, 600).await;

    // Member C is a real `tributary consume --group` process; it reads alone at first.
    let mut c = Command::new(binary())
        .args(["consume", "/g/s:t", "--group", "kill", "--print-offset"])
        .env("TRIBUTARY_SERVER", &server.url)
        .env("TRIBUTARY_TOKEN", server.admin_token())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = c.stdout.take().unwrap();
    let printed: Arc<Mutex<Vec<(u32, u64)>>> = Arc::default();
    let p2 = printed.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            let (pos, _) = line.split_once('\t').unwrap();
            let (p, o) = pos.split_once(':').unwrap();
            p2.lock()
                .unwrap()
                .push((p.parse().unwrap(), o.parse().unwrap()));
        }
    });
    // Kill it once it has committed part of what it read.
    let committed: BTreeMap<u32, u64> = wait_until("C to commit", LONG, || async {
        let d = try_describe(&client, "kill").await?;
        let c: BTreeMap<u32, u64> = d
            .partitions
            .iter()
            .filter_map(|p| p.committed.filter(|&o| o > 0).map(|o| (p.partition, o)))
            .collect();
        (!c.is_empty()).then_some(c)
    })
    .await;
    c.kill().unwrap();
    c.wait().unwrap();

    // A and B take over; more records arrive meanwhile.
    let seen: Seen = Arc::default();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let members: Vec<_> = (0..2)
        .map(|i| member(client.clone(), i, "kill", seen.clone(), stopped.clone()))
        .collect();
    produce(&client, "/g/s:t", 600, 600).await;
    wait_until("A and B to read everything", LONG, || async {
        let d = try_describe(&client, "kill").await?;
        (d.members.len() == 2 && d.partitions.len() == 6 && total_lag(&d) == 0).then_some(())
    })
    .await;
    stop.send(true).unwrap();
    for m in members {
        m.await.unwrap();
    }

    let seen = seen.lock().unwrap();
    let printed = printed.lock().unwrap();
    let ab: BTreeSet<(u32, u64)> = seen.iter().map(|&(_, p, o)| (p, o)).collect();
    assert_eq!(ab.len(), seen.len(), "A and B never read the same record");
    let all: BTreeSet<(u32, u64)> = ab.iter().chain(printed.iter()).copied().collect();
    assert_eq!(all.len(), 1200, "no record lost");
    for (&p, &cursor) in &committed {
        let first = ab
            .iter()
            .filter(|(q, _)| *q == p)
            .map(|(_, o)| *o)
            .min()
            .unwrap();
        assert!(
            first >= cursor,
            "partition {p}: C committed {cursor}, yet the new owner re-read from {first}"
        );
    }
    // What was read twice is only what C printed after its last commit.
    for &(p, o) in printed.iter().filter(|r| ab.contains(r)) {
        assert!(o >= committed.get(&p).copied().unwrap_or(0));
    }
}

/// A running producer learns from the produce responses that its topic grew, and routes
/// keyed records with the new count: they reach the new partitions, none lost or doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_producer_follows_a_topic_that_grows() {
    let server = Server::start();
    let client = setup(&server, "/g/s", "t", 2).await;
    let producer = Producer::new(client.clone(), ProducerConfig::default())
        .await
        .unwrap();
    let sent = Arc::new(Mutex::new(BTreeMap::new()));
    // Sends a round of keyed records and returns the partitions they went to.
    let round = |r: usize| {
        let (producer, sent) = (producer.clone(), sent.clone());
        async move {
            let mut acks = Vec::new();
            for i in 0..100 {
                let (key, value) = (format!("k{i}"), format!("r{r}-{i}"));
                let ack = producer.send("/g/s:t", record(key, value.clone()));
                acks.push((value, ack.await.unwrap()));
            }
            producer.flush().await.unwrap();
            let mut parts = BTreeSet::new();
            for (value, ack) in acks {
                let d = ack.await.unwrap().unwrap();
                parts.insert(d.partition);
                sent.lock().unwrap().insert(value, d);
            }
            parts
        }
    };
    assert_eq!(round(0).await, BTreeSet::from([0, 1]));
    server
        .cli()
        .args(["topic", "edit", "/g/s:t", "--partitions", "5"])
        .run()
        .ok();
    // The first round after the change learns the count; a later one uses it.
    let mut r = 0;
    wait_until(
        "keyed records in the new partitions",
        Duration::from_secs(30),
        || {
            r += 1;
            let next = round(r);
            async move { next.await.iter().any(|&p| p >= 2).then_some(()) }
        },
    )
    .await;
    let last = round(r + 1).await;
    assert_eq!(last, (0..5).collect(), "100 keys over 5 partitions");

    // Every record acknowledged is stored once, where its acknowledgement said.
    let mut stored = BTreeMap::new();
    for p in 0..5 {
        let f = client
            .fetch("/g/s:t", p, 0, 64 << 20, Duration::ZERO)
            .await
            .unwrap();
        for rec in f.records {
            let value = String::from_utf8(rec.record.value.unwrap().to_vec()).unwrap();
            let at = tributary_client::Delivery {
                partition: p,
                offset: rec.offset,
            };
            assert!(stored.insert(value, at).is_none(), "stored once");
        }
    }
    assert_eq!(stored, *sent.lock().unwrap());
}

// Multi-threaded: `terminate` blocks this thread while the server waits for our
// connections to close, which their tasks must do on another thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_resumes_the_group_from_its_cursors() {
    let mut server = Server::start();
    let client = setup(&server, "/g/s", "t", 4).await;
    produce(&client, "/g/s:t", 0, 1000).await;

    let mut config = GroupConfig::new("/g/s", "resume", &["t"]);
    config.auto_commit = None;
    let mut first = GroupConsumer::join(&client, config.clone()).await.unwrap();
    let mut before = BTreeSet::new();
    while before.len() < 500 {
        for r in first.poll().await.unwrap() {
            assert!(before.insert((r.record.partition, r.record.offset)));
        }
    }
    first.commit().await.unwrap();
    first.close().await.unwrap();
    server.terminate();
    server.restart();
    let client = server.client().await;
    let cursors: BTreeMap<u32, u64> = describe(&client, "resume")
        .await
        .partitions
        .iter()
        .map(|p| (p.partition, p.committed.unwrap_or(0)))
        .collect();
    let mut second = GroupConsumer::join(&client, config).await.unwrap();
    let mut after = BTreeSet::new();
    while before.len() + after.len() < 1000 {
        for r in second.poll().await.unwrap() {
            let key = (r.record.partition, r.record.offset);
            assert!(
                !before.contains(&key),
                "{key:?} was committed before the restart"
            );
            assert!(r.record.offset >= cursors[&r.record.partition]);
            assert!(after.insert(key));
        }
    }
    second.close().await.unwrap();
}

#[tokio::test]
async fn group_verbs_list_show_lag_reset_and_delete() {
    let server = Server::start();
    let client = setup(&server, "/g/s", "t", 2).await;
    produce(&client, "/g/s:t", 0, 10).await;
    // A standalone commit (the group has no members).
    standalone_commit(&client, "ops", 0, 1).await.unwrap();
    let list = server.cli().args(["group", "list", "/g/s"]).run().ok();
    assert!(list.stdout.contains("ops"), "{}", list.stdout);
    let info = server
        .cli()
        .args(["--json", "group", "info", "/g/s", "ops"])
        .run()
        .ok();
    let v: serde_json::Value = serde_json::from_str(info.stdout.trim()).unwrap();
    let p0 = &v["partitions"][0];
    assert_eq!(
        (p0["committed"].as_u64(), p0["lag"].as_u64()),
        (Some(1), Some(p0["high_watermark"].as_u64().unwrap() - 1))
    );
    server
        .cli()
        .args(["group", "reset", "/g/s", "ops", "--to", "latest"])
        .run()
        .ok();
    let d = describe(&client, "ops").await;
    assert!(d.partitions.iter().all(|p| p.lag == 0), "{d:?}");
    // A commit past the end is refused; a stale member cannot commit.
    let err = client
        .consumer()
        .commit_offsets(v1::CommitOffsetsRequest {
            stream: "/g/s".into(),
            group: "ops".into(),
            cursors: vec![v1::CursorCommit {
                topic: "t".into(),
                partition: 0,
                offset: 1_000,
            }],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::OutOfRange);
    let err = client
        .consumer()
        .commit_offsets(v1::CommitOffsetsRequest {
            stream: "/g/s".into(),
            group: "ops".into(),
            member_id: "nobody".into(),
            generation: 3,
            cursors: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    server
        .cli()
        .args(["group", "delete", "/g/s", "ops"])
        .run()
        .ok();
    let gone = server
        .cli()
        .args(["group", "info", "/g/s", "ops"])
        .run()
        .failed();
    assert!(gone.stderr.contains("NOT_FOUND"), "{}", gone.stderr);
    // Deleting the stream deletes its cursors.
    standalone_commit(&client, "again", 1, 1).await.unwrap();
    let mut admin = client.admin();
    admin
        .delete_stream(v1::DeleteStreamRequest {
            path: "/g/s".into(),
        })
        .await
        .unwrap();
    create_stream_again(&client).await;
    let groups = client
        .consumer()
        .list_groups(v1::ListGroupsRequest {
            stream: "/g/s".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(groups.groups.is_empty(), "{groups:?}");
}

/// A commit outside any membership (allowed while the group has no members).
async fn standalone_commit(
    client: &Client,
    group: &str,
    partition: u32,
    offset: u64,
) -> Result<tonic::Response<v1::CommitOffsetsResponse>, tonic::Status> {
    client
        .consumer()
        .commit_offsets(v1::CommitOffsetsRequest {
            stream: "/g/s".into(),
            group: group.into(),
            cursors: vec![v1::CursorCommit {
                topic: "t".into(),
                partition,
                offset,
            }],
            ..Default::default()
        })
        .await
}

async fn create_stream_again(client: &Client) {
    client
        .admin()
        .create_stream(v1::CreateStreamRequest {
            path: "/g/s".into(),
            attributes: None,
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn seek_by_time_finds_the_first_record_at_or_after_a_time_in_a_million() {
    let server = Server::start();
    let client = setup(&server, "/g/s", "t", 1).await;
    let base = 1_767_225_600_000i64; // 2026-01-01T00:00:00Z
    for chunk in 0..100 {
        let records = (0..10_000)
            .map(|i| {
                let n = chunk * 10_000 + i;
                let mut r = unkeyed(format!("{n}"));
                r.timestamp_ms = Some(base + n as i64);
                r
            })
            .collect();
        client.produce("/g/s:t", Some(0), records).await.unwrap();
    }
    for (t, want) in [
        (base - 5, 0),
        (base, 0),
        (base + 123_456, 123_456),
        (base + 999_999, 999_999),
        (base + 5_000_000, 1_000_000),
    ] {
        let got = client.offsets_for_time("/g/s:t", &[0], t).await.unwrap();
        assert_eq!(got, vec![(0, want)], "t = base + {}", t - base);
    }
    let out = server
        .cli()
        .args([
            "consume",
            "/g/s:t",
            "--from",
            "@2026-01-01T00:00:01Z",
            "--max",
            "2",
            "--print-offset",
        ])
        .run()
        .ok();
    assert_eq!(out.stdout, "0:1000\t1000\n0:1001\t1001\n");
}

// Multi-threaded: `terminate` blocks this thread while the server waits for our
// connections to close, which their tasks must do on another thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_after_a_lost_response_are_not_appended_twice() {
    let server = Server::start();
    let client = setup(&server, "/g/s", "t", 2).await;
    let addr = server.url.trim_start_matches("http://").parse().unwrap();
    let proxy = Proxy::start(addr).await;
    let via_proxy = Client::connect(&proxy.url(), Some(&server.admin_token()))
        .await
        .unwrap();
    let pid = client
        .producer()
        .init_producer(v1::InitProducerRequest {})
        .await
        .unwrap()
        .into_inner()
        .producer_id;
    let req = |seq: u64, values: &[&str]| v1::ProduceRequest {
        topic: "/g/s:t".into(),
        partition: Some(0),
        batch: Some(v1::RecordBatch {
            records: values.iter().map(|v| unkeyed(v.to_string())).collect(),
            ..Default::default()
        }),
        producer: Some(v1::ProducerSequence {
            producer_id: pid,
            epoch: 0,
            sequence: seq,
        }),
        ..Default::default()
    };
    // Warm the connection, then lose the answer to a produce.
    via_proxy
        .admin()
        .get_cluster(v1::GetClusterRequest {})
        .await
        .unwrap();
    proxy.drop_next_response();
    via_proxy
        .producer()
        .produce(req(0, &["a", "b", "c"]))
        .await
        .unwrap_err();
    assert_eq!(proxy.dropped_responses(), 1);
    let end = |c: Client| async move { c.list_offsets("/g/s:t", &[0], true).await.unwrap()[0].1 };
    assert_eq!(
        end(client.clone()).await,
        3,
        "the lost request was appended"
    );
    // The retry is acknowledged with the original offsets, and appends nothing.
    let retry = via_proxy
        .producer()
        .produce(req(0, &["a", "b", "c"]))
        .await
        .unwrap()
        .into_inner();
    assert!(retry.duplicate);
    assert_eq!(retry.acks[0].base_offset, 0);
    assert_eq!(end(client.clone()).await, 3);
    // A gap is refused, and so is a conditional append that expects the wrong end.
    let gap = client.producer().produce(req(5, &["x"])).await.unwrap_err();
    assert_eq!(gap.code(), tonic::Code::FailedPrecondition, "{gap:?}");
    let mut conditional = req(3, &["d"]);
    conditional.expected_last_offsets.insert(0, 1);
    let err = client
        .producer()
        .produce(conditional.clone())
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    conditional.expected_last_offsets.insert(0, 2);
    client.producer().produce(conditional).await.unwrap();
    assert_eq!(end(client.clone()).await, 4);

    // The batching producer retries through the same fault without duplicates.
    let producer = Producer::new(via_proxy.clone(), ProducerConfig::default())
        .await
        .unwrap();
    let mut acks = Vec::new();
    for i in 0..50 {
        if i == 25 {
            // The first half is acknowledged; the answer to the second half is lost.
            producer.flush().await.unwrap();
            proxy.drop_next_response();
        }
        acks.push(
            producer
                .send("/g/s:t", record(format!("k{i}"), format!("p{i}")))
                .await
                .unwrap(),
        );
    }
    producer.flush().await.unwrap();
    assert_eq!(
        proxy.dropped_responses(),
        2,
        "a response was lost mid-stream"
    );
    for a in acks {
        a.await.unwrap().unwrap();
    }
    let mut values = Vec::new();
    for p in 0..2 {
        let f = client
            .fetch("/g/s:t", p, 0, 1 << 20, Duration::ZERO)
            .await
            .unwrap();
        values.extend(
            f.records
                .into_iter()
                .map(|r| String::from_utf8(r.record.value.unwrap().to_vec()).unwrap()),
        );
    }
    let ps: Vec<_> = values.iter().filter(|v| v.starts_with('p')).collect();
    let unique: BTreeSet<_> = ps.iter().collect();
    assert_eq!(
        (ps.len(), unique.len()),
        (50, 50),
        "each record exactly once"
    );

    // Producer state survives a restart: the old retry is still recognised.
    drop(proxy);
    let mut server = server;
    server.terminate();
    server.restart();
    let client = server.client().await;
    let again = client
        .producer()
        .produce(req(0, &["a", "b", "c"]))
        .await
        .unwrap()
        .into_inner();
    assert!(again.duplicate);
    assert_eq!(again.acks[0].base_offset, 0);
}

/// The example application (`examples/src/bin/group-member.rs`): three member processes
/// share a topic; one is killed with `kill -9`, the server restarts in place, more records
/// arrive. Together they print every record, and print one twice only when a member had
/// printed it without committing (at most one poll's worth per partition and incident).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_group_application_survives_churn_and_restarts() {
    let mut server = Server::start();
    let client = setup(&server, "/g/s", "t", 6).await;
    let example = binary().with_file_name("group-member");
    let printed: Arc<Mutex<Vec<(u32, u64)>>> = Arc::default();
    let spawn = |url: &str, token: &str| {
        let mut child = Command::new(&example)
            .args(["/g/s", "t", "app"])
            .env("TRIBUTARY_SERVER", url)
            .env("TRIBUTARY_TOKEN", token)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the example is built with the workspace");
        let out = child.stdout.take().unwrap();
        let printed = printed.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines() {
                let Ok(line) = line else { return };
                let (pos, _) = line.split_once('\t').unwrap();
                let (p, o) = pos.split_once(':').unwrap();
                printed
                    .lock()
                    .unwrap()
                    .push((p.parse().unwrap(), o.parse().unwrap()));
            }
        });
        child
    };
    let token = server.admin_token();
    let mut members: Vec<_> = (0..3).map(|_| spawn(&server.url, &token)).collect();
    let seen = |printed: &Arc<Mutex<Vec<(u32, u64)>>>| {
        printed
            .lock()
            .unwrap()
            .iter()
            .copied()
            .collect::<BTreeSet<_>>()
            .len()
    };
    produce(&client, "/g/s:t", 0, 600).await;
    wait_until("the members to print the first 600", LONG, || async {
        (seen(&printed) >= 600).then_some(())
    })
    .await;

    // One member dies; the others take over its partitions.
    members[0].kill().unwrap();
    members[0].wait().unwrap();
    produce(&client, "/g/s:t", 600, 600).await;
    wait_until("the survivors to print 1200", LONG, || async {
        (seen(&printed) >= 1200).then_some(())
    })
    .await;

    // The server restarts where it was; the members rejoin from the cursors.
    drop(client);
    server.terminate();
    server.restart_in_place();
    let client = server.client().await;
    produce(&client, "/g/s:t", 1200, 600).await;
    wait_until("the members to print all 1800", LONG, || async {
        (seen(&printed) >= 1800).then_some(())
    })
    .await;
    for m in &mut members[1..] {
        m.kill().unwrap();
        m.wait().unwrap();
    }

    let printed = printed.lock().unwrap();
    let unique: BTreeSet<_> = printed.iter().copied().collect();
    assert_eq!(unique.len(), 1800, "nothing lost");
    let dups = printed.len() - unique.len();
    // Re-deliveries come only from the two incidents, each at most the records of one
    // poll per partition (6 partitions of 100-record batches): far below everything.
    assert!(dups <= 2 * 6 * 100, "{dups} records printed twice");
}

//! Geo-replication between real clusters: multi-master pairs, rings, full meshes and chains,
//! through a fault proxy that cuts links, with a cluster `kill -9`ed mid-stream, an
//! offset-keeping mirror failing over with a consumer group, and a link that fell behind
//! the upstream's retention. Every test ends with the convergence checker: per partition
//! and origin, every cluster holds the origin's own sequence, no gap, no duplicate. And a
//! raw pull whose responses keep within their byte budget.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tributary_client::{Client, GroupConfig, GroupConsumer, record, unkeyed};
use tributary_e2e::replication::{read_partition, wait_converged};
use tributary_e2e::{Proxy, Server, create_stream, prometheus, wait_until};
use tributary_proto::v1;

const STREAM: &str = "/geo/s";
const TOPIC: &str = "/geo/s:t";
const PARTITIONS: u32 = 3;
const LONG: Duration = Duration::from_secs(90);

/// A cluster with the stream (records kept forever) and, when `topic`, its topic.
async fn cluster(topic: bool) -> (Server, Client) {
    let server = Server::start();
    let client = server.client().await;
    let forever = v1::StreamAttributes {
        ttl_ms: Some(0),
        durability: v1::Durability::Buffered as i32,
        ..Default::default()
    };
    create_stream(&client, STREAM, forever).await;
    if topic {
        create_topic(&client).await;
    }
    (server, client)
}

/// Creates TOPIC with PARTITIONS partitions.
async fn create_topic(client: &Client) {
    client
        .admin()
        .create_topic(v1::CreateTopicRequest {
            path: TOPIC.into(),
            partitions: Some(PARTITIONS),
        })
        .await
        .unwrap();
}

fn addr(s: &Server) -> SocketAddr {
    s.url.trim_start_matches("http://").parse().unwrap()
}

/// `dest` pulls the stream from `from_url` (the upstream or a proxy in front of it).
fn link(dest: &Server, from_url: &str, upstream: &Server, extra: &[&str]) {
    let from = format!("{from_url}{STREAM}");
    let token = upstream.admin_token();
    let mut args = vec![
        "upstream",
        "add",
        STREAM,
        "--from",
        &from,
        "--from-token",
        &token,
    ];
    args.extend(extra);
    dest.cli().args(args).run().ok();
}

/// Produces `n` keyed records named `{tag}-{i}` in batches of 50.
async fn produce(client: &Client, tag: &str, from: usize, n: usize) {
    for chunk in (from..from + n).collect::<Vec<_>>().chunks(50) {
        let records = chunk
            .iter()
            .map(|i| record(format!("k{i}"), format!("{tag}-{i}")))
            .collect();
        client.produce(TOPIC, None, records).await.unwrap();
    }
}

/// Records a cluster holds in the topic, over all partitions.
async fn held(client: &Client) -> u64 {
    client
        .list_offsets(TOPIC, &[], true)
        .await
        .map_or(0, |ps| ps.iter().map(|p| p.1).sum())
}

async fn upstreams(client: &Client) -> Vec<v1::Upstream> {
    client
        .replication()
        .list_upstreams(v1::ListUpstreamsRequest {
            stream: STREAM.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .upstreams
}

#[tokio::test(flavor = "multi_thread")]
async fn a_multi_master_pair_converges_through_cuts() {
    let ((a, ca), (b, cb)) = (cluster(true).await, cluster(true).await);
    let (pa, pb) = (Proxy::start(addr(&a)).await, Proxy::start(addr(&b)).await);
    link(&b, &pa.url(), &a, &[]);
    link(&a, &pb.url(), &b, &[]);

    // Both sides write the same topic at once.
    let (ca2, cb2) = (ca.clone(), cb.clone());
    let wa = tokio::spawn(async move { produce(&ca2, "A", 0, 1500).await });
    let wb = tokio::spawn(async move { produce(&cb2, "B", 0, 1500).await });
    wa.await.unwrap();
    wb.await.unwrap();

    // Cut both links, write more on both sides, and see the links notice.
    pa.cut();
    pb.cut();
    produce(&ca, "A", 1500, 500).await;
    produce(&cb, "B", 1500, 500).await;
    for c in [&ca, &cb] {
        wait_until("a cut link reports its error", LONG, || async {
            upstreams(c)
                .await
                .iter()
                .all(|u| !u.last_error.is_empty())
                .then_some(())
        })
        .await;
    }
    pa.resume();
    pb.resume();
    // Then a slow link one way.
    pb.delay(Duration::from_millis(5));
    produce(&ca, "A", 2000, 200).await;
    produce(&cb, "B", 2000, 200).await;
    let done = wait_converged(&[&ca, &cb], &[TOPIC], PARTITIONS, 4400, LONG).await;
    assert_eq!(done.partitions, 3);

    // Each side applied the other's 2,000 records once; its own came back and were
    // filtered upstream, so nothing was even skipped.
    for c in [&ca, &cb] {
        let u = &upstreams(c).await[0];
        assert_eq!(u.records_applied, 2200, "{u:?}");
        assert_eq!(u.lag_records, 0);
        assert_eq!(u.state, v1::UpstreamState::Running as i32);
        assert!(
            u.last_error.is_empty(),
            "the error clears once running: {u:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ring_of_three_converges() {
    let (a, ca) = cluster(true).await;
    let (b, cb) = cluster(true).await;
    let (c, cc) = cluster(true).await;
    // A -> B -> C -> A.
    link(&b, &a.url, &a, &[]);
    link(&c, &b.url, &b, &[]);
    link(&a, &c.url, &c, &[]);
    let writers: Vec<_> = [(&ca, "A"), (&cb, "B"), (&cc, "C")]
        .into_iter()
        .map(|(client, tag)| {
            let client = client.clone();
            tokio::spawn(async move { produce(&client, tag, 0, 1000).await })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    wait_converged(&[&ca, &cb, &cc], &[TOPIC], PARTITIONS, 3000, LONG).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_mesh_of_four_applies_every_record_once() {
    let mut nodes = Vec::new();
    for _ in 0..4 {
        nodes.push(cluster(true).await);
    }
    for (i, (dest, _)) in nodes.iter().enumerate() {
        for (j, (up, _)) in nodes.iter().enumerate() {
            if i != j {
                link(dest, &up.url, up, &[]);
            }
        }
    }
    let writers: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(i, (_, client))| {
            let client = client.clone();
            tokio::spawn(async move { produce(&client, &format!("N{i}"), 0, 600).await })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let clients: Vec<&Client> = nodes.iter().map(|n| &n.1).collect();
    wait_converged(&clients, &[TOPIC], PARTITIONS, 2400, LONG).await;
    // Every record reached each cluster by three paths and was applied once: the other
    // two copies were skipped.
    for client in &clients {
        let ups = upstreams(client).await;
        let applied: u64 = ups.iter().map(|u| u.records_applied).sum();
        assert_eq!(applied, 1800, "{ups:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chain_survives_its_middle_cluster_killed_mid_stream() {
    // Only A has the topic: B and C get it by replication.
    let (a, ca) = cluster(true).await;
    let (mut b, _) = cluster(false).await;
    let (c, cc) = cluster(false).await;
    link(&b, &a.url, &a, &[]);
    link(&c, &b.url, &b, &[]);

    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let (ca, stop, written) = (ca.clone(), stop.clone(), written.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                produce(&ca, "A", i, 50).await;
                i += 50;
                written.store(i as u64, Ordering::SeqCst);
            }
        })
    };
    wait_until("C has records through B", LONG, || async {
        let total = held(&cc).await;
        (total >= 500).then_some(())
    })
    .await;
    b.kill9();
    let at_kill = written.load(Ordering::SeqCst);
    wait_until("A takes more records while B is down", LONG, || async {
        (written.load(Ordering::SeqCst) >= at_kill + 500).then_some(())
    })
    .await;
    b.restart_in_place();
    let cb = b.client().await;
    wait_until("records flow through B again", LONG, || async {
        let total = held(&cc).await;
        (total > at_kill + 500).then_some(())
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    writer.await.unwrap();
    let total = written.load(Ordering::SeqCst);
    let done = wait_converged(&[&ca, &cb, &cc], &[TOPIC], PARTITIONS, total, LONG).await;
    assert_eq!(done.records, total);

    // A partition increase at A reaches the end of the chain, and so do its records.
    a.cli()
        .args(["topic", "edit", TOPIC, "--partitions", "5"])
        .run()
        .ok();
    produce(&ca, "A", total as usize, 500).await;
    let done = wait_converged(&[&ca, &cb, &cc], &[TOPIC], 5, total + 500, LONG).await;
    assert_eq!(done.partitions, 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mirror_fails_over_with_its_consumer_group() {
    let (mut a, ca) = cluster(true).await;
    let (b, cb) = cluster(false).await;
    link(&b, &a.url, &a, &["--mirror"]);
    produce(&ca, "A", 0, 1000).await;

    // A group reads part of the stream at A and commits there.
    let mut config = GroupConfig::new(STREAM, "billing", &["t"]);
    config.auto_commit = None;
    let mut g = GroupConsumer::join(&ca, config.clone()).await.unwrap();
    let mut consumed = 0;
    while consumed < 400 {
        consumed += g.poll().await.unwrap().len();
    }
    g.commit().await.unwrap();
    g.close().await.unwrap();
    let committed = describe(&ca).await;

    // The mirror has the same offsets, values and timestamps, and the group's cursors.
    wait_until("the mirror holds A's records and cursors", LONG, || async {
        for p in 0..PARTITIONS {
            let (x, y) = (
                read_partition(&ca, TOPIC, p).await.ok()?,
                read_partition(&cb, TOPIC, p).await.ok()?,
            );
            if x != y {
                return None;
            }
        }
        let d = try_describe(&cb).await?;
        (cursors(&d) == cursors(&committed)).then_some(())
    })
    .await;
    for p in 0..PARTITIONS {
        let (x, y) = (
            ca.fetch(TOPIC, p, 0, 1 << 20, Duration::ZERO)
                .await
                .unwrap(),
            cb.fetch(TOPIC, p, 0, 1 << 20, Duration::ZERO)
                .await
                .unwrap(),
        );
        assert_eq!(x.records, y.records, "offsets, keys, values and timestamps");
    }
    // Producers are refused on a mirror.
    let refused = cb
        .produce(TOPIC, None, vec![record("k", "x")])
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        Some(tonic::Code::FailedPrecondition),
        "{refused}"
    );
    let info = b.cli().args(["stream", "info", STREAM]).run().ok().stdout;
    assert!(info.contains("mirror of"), "{info}");

    // A is lost; B is promoted and the group carries on there.
    a.kill9();
    b.cli().args(["stream", "promote", STREAM]).run().ok();
    produce(&cb, "B", 1000, 200).await;
    let start = cursors(&committed);
    let ends = cb.list_offsets(TOPIC, &[], true).await.unwrap();
    let expected: u64 = ends
        .iter()
        .map(|&(p, end)| end - start.iter().find(|c| c.0 == p).map_or(0, |c| c.1))
        .sum();
    assert!(expected >= 200, "the new records at least");
    let mut g = GroupConsumer::join(&cb, config).await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(LONG, async {
        while (got.len() as u64) < expected {
            got.extend(g.poll().await.unwrap());
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{} of {expected} records after failover", got.len()));
    g.close().await.unwrap();
    // Nothing the group had consumed at A comes again, and nothing is missed.
    for r in &got {
        let p = r.record.partition;
        let from = start.iter().find(|c| c.0 == p).map_or(0, |c| c.1);
        assert!(
            r.record.offset >= from,
            "re-read {p}@{} below the cursor {from}",
            r.record.offset
        );
    }
    let mut offsets: Vec<_> = got
        .iter()
        .map(|r| (r.record.partition, r.record.offset))
        .collect();
    offsets.sort_unstable();
    offsets.dedup();
    assert_eq!(offsets.len() as u64, expected, "each remaining record once");
}

async fn try_describe(c: &Client) -> Option<v1::GroupDescription> {
    c.consumer()
        .describe_group(v1::DescribeGroupRequest {
            stream: STREAM.into(),
            group: "billing".into(),
        })
        .await
        .ok()
        .map(|r| r.into_inner())
}

async fn describe(c: &Client) -> v1::GroupDescription {
    try_describe(c).await.expect("the group exists")
}

/// `(partition, committed offset)` of the group's cursors on topic `t`.
fn cursors(d: &v1::GroupDescription) -> Vec<(u32, u64)> {
    let mut v: Vec<_> = d
        .partitions
        .iter()
        .filter(|p| p.topic == "t")
        .filter_map(|p| p.committed.map(|o| (p.partition, o)))
        .collect();
    v.sort_unstable();
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn a_link_behind_the_upstreams_retention_says_so() {
    let (a, ca) = cluster(true).await;
    let (b, cb) = cluster(false).await;
    a.cli()
        .args([
            "stream",
            "edit",
            STREAM,
            "--max-bytes-per-partition",
            "4096",
        ])
        .run()
        .ok();
    link(&b, &a.url, &a, &[]);
    // The link copies a first few records, then stops while the size cap removes many.
    produce(&ca, "A", 0, 10).await;
    wait_until("the first records are copied", LONG, || async {
        let u = upstreams(&cb).await.pop()?;
        (u.records_applied == 10).then_some(())
    })
    .await;
    b.cli().args(["upstream", "pause", STREAM]).run().ok();
    // Many small batches, so the size cap removes whole batches from each partition.
    for i in 10..310 {
        let value = format!("A-{i}-{}", "x".repeat(100));
        ca.produce(
            TOPIC,
            Some(i % PARTITIONS),
            vec![record(format!("k{i}"), value)],
        )
        .await
        .unwrap();
    }
    a.cli().args(["stream", "purge", STREAM]).run().ok();
    let starts = ca.list_offsets(TOPIC, &[], false).await.unwrap();
    let log_start: u64 = starts.iter().map(|p| p.1).sum();
    assert!(
        starts.iter().all(|p| p.1 > 10),
        "the size cap removed the head past the copied records: {starts:?}"
    );
    b.cli().args(["upstream", "resume", STREAM]).run().ok();
    let u = wait_until("the link reports the records it lost", LONG, || async {
        let u = upstreams(&cb).await.pop()?;
        (u.lag_records == 0 && u.lost_records > 0).then_some(u)
    })
    .await;
    assert_eq!(u.lost_records, log_start - 10, "{u:?}");
    // In `upstream list`, the metrics and the log.
    let list = b.cli().args(["upstream", "list", STREAM]).run().ok().stdout;
    assert!(list.contains("records lost"), "{list}");
    let m = prometheus::parse(&b.scrape()).unwrap();
    assert_eq!(
        m.value(
            "tributary_replication_lost_records_total",
            &[("stream", STREAM)]
        ),
        (log_start - 10) as f64
    );
    assert!(b.log().contains("fell behind the upstream's retention"));
    // What was still there arrived, once.
    let stored = held(&cb).await;
    assert_eq!(stored, 10 + 310 - log_start);
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_commands_check_their_input_and_show_state() {
    let (a, ca) = cluster(true).await;
    let (b, _cb) = cluster(true).await;
    let from = format!("{}{STREAM}", a.url);
    let token = a.admin_token();
    let fail = |args: &[String], code: &str| {
        let r = b.cli().args(args).run().failed();
        assert!(r.stderr.contains(code), "{args:?}: {}", r.stderr);
    };
    // `upstream add STREAM --from FROM --from-token T EXTRA...`
    let add = |stream: &str, from: &str, extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["upstream", "add", stream, "--from", from, "--from-token"]
            .map(String::from)
            .into();
        v.push(token.clone());
        v.extend(extra.iter().map(|e| e.to_string()));
        v
    };
    fail(&add(STREAM, "ftp://x/a/b", &[]), "INVALID_ARGUMENT");
    fail(&add(STREAM, &a.url, &[]), "INVALID_ARGUMENT");
    fail(&add("/geo/nope", &from, &[]), "NOT_FOUND");
    // B's stream is not empty: a mirror must start empty.
    produce(&b.client().await, "B", 0, 10).await;
    fail(&add(STREAM, &from, &["--mirror"]), "FAILED_PRECONDITION");
    let added = b
        .cli()
        .args(add(STREAM, &from, &["--paused"]))
        .run()
        .ok()
        .stdout;
    assert!(added.contains("paused"), "{added}");
    fail(&add(STREAM, &from, &[]), "ALREADY_EXISTS");
    fail(
        &["stream", "promote", STREAM].map(String::from),
        "FAILED_PRECONDITION",
    );
    b.cli().args(["upstream", "resume", STREAM]).run().ok();
    produce(&ca, "A", 0, 100).await;
    wait_until("the resumed link copies", LONG, || async {
        b.cli()
            .args(["upstream", "list", STREAM])
            .run()
            .ok()
            .stdout
            .contains("running")
            .then_some(())
    })
    .await;
    b.cli()
        .args(["upstream", "remove", STREAM, "--from", &from])
        .run()
        .ok();

    // `--start latest` copies only what arrives after the link is made.
    let (c, cc) = cluster(true).await;
    c.cli()
        .args([
            "upstream",
            "add",
            STREAM,
            "--from",
            &from,
            "--from-token",
            &token,
            "--start",
            "latest",
        ])
        .run()
        .ok();
    wait_until("the new link has its starting positions", LONG, || async {
        let u = upstreams(&cc).await.pop()?;
        (u.partitions.len() == PARTITIONS as usize).then_some(())
    })
    .await;
    produce(&ca, "late", 100, 30).await;
    wait_until("only the new records are copied", LONG, || async {
        let u = upstreams(&cc).await.pop()?;
        (u.records_applied == 30 && u.lag_records == 0).then_some(())
    })
    .await;
    let stored = held(&cc).await;
    assert_eq!(stored, 30);
    let list = b.cli().args(["upstream", "list"]).run().ok().stdout;
    assert!(!list.contains(&from), "{list}");

    // A token without `copy` on the source: the link says why it cannot pull.
    let no_copy = a.cli().args(["user", "create", "nocopy"]).run().ok().stdout;
    let nocopy_token = no_copy
        .split_whitespace()
        .find(|w| w.starts_with("trb_"))
        .expect("the new user's token")
        .to_owned();
    b.cli()
        .args([
            "upstream",
            "add",
            STREAM,
            "--from",
            &from,
            "--from-token",
            &nocopy_token,
        ])
        .run()
        .ok();
    wait_until("the link reports the refusal", LONG, || async {
        b.cli()
            .args(["upstream", "list", STREAM])
            .run()
            .ok()
            .stdout
            .contains("copy")
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn revoking_the_puller_ends_a_running_pull() {
    let (a, ca) = cluster(true).await;
    let (b, cb) = cluster(false).await;
    let token = a
        .cli()
        .args(["user", "create", "puller"])
        .run()
        .ok()
        .stdout
        .trim()
        .to_owned();
    a.cli()
        .args(["stream", "edit", STREAM, "--copy-perm", "u:puller"])
        .run()
        .ok();
    let from = format!("{}{STREAM}", a.url);
    b.cli()
        .args([
            "upstream",
            "add",
            STREAM,
            "--from",
            &from,
            "--from-token",
            &token,
        ])
        .run()
        .ok();
    produce(&ca, "A", 0, 100).await;
    wait_until("the first records are copied", LONG, || async {
        (upstreams(&cb).await.pop()?.records_applied == 100).then_some(())
    })
    .await;

    // The ACL changes under the running pull: nothing produced afterwards is sent.
    a.cli()
        .args(["stream", "edit", STREAM, "--copy-perm", "u:nobody"])
        .run()
        .ok();
    produce(&ca, "A", 100, 100).await;
    let u = wait_until("the link reports the refusal", LONG, || async {
        let u = upstreams(&cb).await.pop()?;
        u.last_error.contains("copy").then_some(u)
    })
    .await;
    assert_eq!(u.records_applied, 100, "{u:?}");

    // Allowed again, but the user is deleted: refused too.
    a.cli()
        .args(["stream", "edit", STREAM, "--copy-perm", "u:puller"])
        .run()
        .ok();
    wait_until("the link runs again", LONG, || async {
        (upstreams(&cb).await.pop()?.records_applied == 200).then_some(())
    })
    .await;
    a.cli().args(["user", "delete", "puller"]).run().ok();
    produce(&ca, "A", 200, 100).await;
    wait_until("the link reports the revoked token", LONG, || async {
        let u = upstreams(&cb).await.pop()?;
        u.last_error.contains("token").then_some(())
    })
    .await;
    let stored = held(&cb).await;
    assert_eq!(stored, 200, "nothing after the user's deletion");
}

/// Takes a checkpoint of `server` into `dir` (which must not exist yet).
fn checkpoint(server: &Server, dir: &std::path::Path) {
    server
        .cli()
        .args(["admin", "checkpoint", dir.to_str().unwrap()])
        .run()
        .ok();
}

/// Stops `server`, puts the checkpoint in `dir` in place of its store, and starts it again
/// on the same address.
fn restore(server: &mut Server, dir: &std::path::Path) {
    assert!(server.terminate().success());
    let db = server.data_dir.join("db");
    std::fs::remove_dir_all(&db).unwrap();
    std::fs::rename(dir.join("db"), &db).unwrap();
    server.restart_in_place();
}

/// Waits until each of `clients` holds `n` records in the topic.
async fn wait_held(clients: &[&Client], n: u64) {
    for c in clients {
        wait_until(&format!("{n} records held"), LONG, || async {
            (held(c).await == n).then_some(())
        })
        .await;
    }
}

/// Every record value a cluster holds in the topic, sorted.
async fn values(client: &Client) -> Vec<String> {
    let mut out = Vec::new();
    for p in 0..PARTITIONS {
        for e in read_partition(client, TOPIC, p).await.unwrap() {
            out.push(String::from_utf8(e.3.to_vec()).unwrap());
        }
    }
    out.sort();
    out
}

/// `{tag}-{i}` for `i` in `range`.
fn named(tag: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{tag}-{i}")).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_restored_from_an_older_checkpoint_reaches_its_peers_again() {
    // A is restored while B's link to it keeps retrying, and takes new records at the
    // origin offsets of the tail it lost: fewer than it lost, so B's position stays past
    // A's end in every partition.
    restore_a_peer(false, 150).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_peer_reconnecting_after_the_restored_cluster_grew_past_its_position_misses_nothing() {
    // B's link is paused while A is restored and takes more new records than it lost: B's
    // position is inside A's log again, but the records below it are not those B read.
    restore_a_peer(true, 600).await;
}

/// Two clusters A ⇄ B; A is restored from a checkpoint older than what B pulled, then
/// produces `new` records (with B's link to A paused meanwhile when `paused`).
async fn restore_a_peer(paused: bool, new: usize) {
    let ((mut a, ca), (b, cb)) = (cluster(true).await, cluster(true).await);
    link(&b, &a.url, &a, &[]);
    link(&a, &b.url, &b, &[]);
    produce(&ca, "A", 0, 300).await;
    produce(&cb, "B", 0, 300).await;
    wait_held(&[&ca, &cb], 600).await;
    let backups = tempfile::tempdir().unwrap();
    let ckpt = backups.path().join("a");
    checkpoint(&a, &ckpt);

    // A tail the checkpoint misses: A's own records (B pulls them) and B's (A pulls them).
    produce(&ca, "A", 300, 300).await;
    produce(&cb, "B", 300, 100).await;
    wait_held(&[&ca, &cb], 1000).await;

    if paused {
        b.cli().args(["upstream", "pause", STREAM]).run().ok();
        wait_until("B's link to A is paused", LONG, || async {
            let u = upstreams(&cb).await.pop()?;
            (u.state == v1::UpstreamState::Paused as i32).then_some(())
        })
        .await;
    }
    restore(&mut a, &ckpt);
    let ca = a.client().await;
    produce(&ca, "N", 0, new).await;
    if paused {
        b.cli().args(["upstream", "resume", STREAM]).run().ok();
    }

    // B receives every new record, once, and keeps the tail A lost; A gets B's records
    // again, once, and never its own lost tail back (loop prevention leaves it out).
    let mut want_b = [named("A", 0..600), named("B", 0..400), named("N", 0..new)].concat();
    want_b.sort();
    wait_until("B holds every new record of A", LONG, || async {
        (values(&cb).await.len() >= want_b.len()).then_some(())
    })
    .await;
    let mut want_a = [named("A", 0..300), named("B", 0..400), named("N", 0..new)].concat();
    want_a.sort();
    wait_until("A holds B's records again", LONG, || async {
        (values(&ca).await.len() >= want_a.len()).then_some(())
    })
    .await;
    assert_eq!(values(&cb).await, want_b);
    assert_eq!(values(&ca).await, want_a);
    // B's positions came back to where A's log now ends.
    wait_until("B's link is caught up with A", LONG, || async {
        let u = upstreams(&cb).await.pop()?;
        u.partitions
            .iter()
            .all(|p| p.position == p.upstream_high_watermark)
            .then_some(())
    })
    .await;
    let ends = ca.list_offsets(TOPIC, &[], true).await.unwrap();
    let u = upstreams(&cb).await.pop().unwrap();
    for p in &u.partitions {
        assert_eq!(p.position, ends[p.partition as usize].1, "{u:?}");
    }
    assert!(u.last_error.is_empty(), "{u:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mirror_whose_source_lost_records_it_holds_stops_and_says_so() {
    let (mut a, ca) = cluster(true).await;
    let (b, cb) = cluster(false).await;
    link(&b, &a.url, &a, &["--mirror"]);
    produce(&ca, "A", 0, 300).await;
    let backups = tempfile::tempdir().unwrap();
    let ckpt = backups.path().join("a");
    checkpoint(&a, &ckpt);
    produce(&ca, "A", 300, 300).await;
    wait_held(&[&cb], 600).await;

    restore(&mut a, &ckpt);
    let ca = a.client().await;
    produce(&ca, "N", 0, 150).await;
    // The new records would take offsets the mirror holds other records at: the link
    // refuses them, keeps what it has, and says why.
    let u = wait_until("the mirror's link reports the divergence", LONG, || async {
        let u = upstreams(&cb).await.pop()?;
        u.last_error
            .contains("the source's offsets diverged at")
            .then_some(u)
    })
    .await;
    assert!(
        u.last_error.contains("it lost records this mirror holds"),
        "{u:?}"
    );
    let m = prometheus::parse(&b.scrape()).unwrap();
    assert!(
        m.value(
            "tributary_replication_diverged_total",
            &[("stream", STREAM)]
        ) >= 1.0
    );
    assert!(
        b.log()
            .contains("the mirror's source lost records this mirror holds")
    );
    assert_eq!(values(&cb).await, named_sorted("A", 0..600));
}

fn named_sorted(tag: &str, range: std::ops::Range<usize>) -> Vec<String> {
    let mut v = named(tag, range);
    v.sort();
    v
}

/// A pull response holds no more batch bytes than the puller's budget, except a lone batch
/// larger than it: a partition whose next batch does not fit what is left of the budget
/// leads the next response instead.
#[tokio::test]
async fn pull_responses_keep_within_their_byte_budget() {
    let server = Server::start();
    let client = server.client().await;
    let large = v1::StreamAttributes {
        max_message_bytes: Some(16 << 20),
        ..Default::default()
    };
    create_stream(&client, STREAM, large).await;
    create_topic(&client).await;
    const BATCH: usize = 3 << 20;
    for p in 0..PARTITIONS {
        client
            .produce(TOPIC, Some(p), vec![unkeyed(vec![p as u8; BATCH])])
            .await
            .unwrap();
    }
    let budget = 4 << 20;
    let mut pull = client
        .replication()
        .pull(v1::PullRequest {
            stream: STREAM.into(),
            max_bytes: budget,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut got = 0;
    while got < PARTITIONS {
        let r = tokio::time::timeout(LONG, pull.message())
            .await
            .expect("a response")
            .unwrap()
            .expect("the pull goes on");
        let batches: Vec<usize> = r
            .chunks
            .iter()
            .flat_map(|c| c.batches.iter().map(|b| b.len()))
            .collect();
        let bytes: usize = batches.iter().sum();
        assert!(
            bytes <= budget as usize || batches.len() == 1,
            "{bytes} bytes in one response: {batches:?}"
        );
        got += batches.len() as u32;
    }
    assert_eq!(got, PARTITIONS);
}

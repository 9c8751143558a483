//! Consumer groups and replication with stock Kafka clients, each member its own process
//! (`tests/kafka/members.py`): a confluent-kafka and a kafka-python member share one group
//! until one is `kill -9`ed and the survivor reads on from the commits; cooperative-sticky
//! moves only the partitions that must move; `tributary group` lists, shows and resets a
//! Kafka group; and Kafka-produced batches (compressed, with headers, null keys and
//! tombstones) read the same through a mirror and a link, by a Kafka client and by
//! `tributary consume`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tributary_client::{Client, record};
use tributary_e2e::kafka::{self, Security};
use tributary_e2e::{Server, create_stream, wait_until};
use tributary_proto::v1;

const STREAM: &str = "/acme/s";
const TOPIC: &str = "orders";
const PARTITIONS: u32 = 4;
const GROUP: &str = "orders-app";
/// The members' session timeout: a killed member's partitions move after it.
const SESSION_MS: u64 = 6_000;
const LONG: Duration = Duration::from_secs(90);

/// A server whose Kafka listener resolves names in STREAM (with TOPIC, unless it is to be
/// a mirror); clients connect as the admin over SASL PLAIN.
struct Setup {
    server: Server,
    client: Client,
    sec: Security,
}

async fn setup(topic: bool) -> Setup {
    let server = Server::builder()
        .args(&["--kafka-default-stream", STREAM])
        .start();
    let client = server.client().await;
    create_stream(&client, STREAM, v1::StreamAttributes::default()).await;
    if topic {
        client
            .admin()
            .create_topic(v1::CreateTopicRequest {
                path: full_topic(),
                partitions: Some(PARTITIONS),
            })
            .await
            .unwrap();
    }
    let sec = Security::sasl("PLAIN", "admin", &server.admin_token());
    Setup {
        server,
        client,
        sec,
    }
}

fn full_topic() -> String {
    format!("{STREAM}:{TOPIC}")
}

impl Setup {
    fn spec(&self, client: &str, role: &str) -> Value {
        json!({
            "client": client,
            "role": role,
            "bootstrap": self.server.kafka_addr.as_deref().expect("the Kafka listener is on"),
            "security": self.sec.json(),
            "topics": [TOPIC],
        })
    }

    /// How a member of GROUP starts.
    fn member_spec(&self, client: &str, strategy: &str) -> Value {
        let mut spec = self.spec(client, "member");
        spec["group"] = json!(GROUP);
        spec["strategy"] = json!(strategy);
        spec["session_timeout_ms"] = json!(SESSION_MS);
        spec
    }

    /// A member of GROUP, started.
    fn member(&self, client: &str, strategy: &str) -> Member {
        Member::start(client, &self.member_spec(client, strategy))
    }

    /// `n` records in every partition through gRPC, valued `{tag}-{p}-{i}`.
    async fn produce(&self, tag: &str, n: usize) {
        for p in 0..PARTITIONS {
            let records = (0..n)
                .map(|i| record(format!("k{i}"), format!("{tag}-{p}-{i}")))
                .collect();
            self.client
                .produce(&full_topic(), Some(p), records)
                .await
                .unwrap();
        }
    }

    /// `tributary --json group info` of GROUP.
    fn group_json(&self) -> Value {
        let out = self
            .server
            .cli()
            .args(["--json", "group", "info", STREAM, GROUP])
            .run()
            .ok()
            .stdout;
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    /// The group's committed offsets as `tributary group info` shows them, with the lag.
    fn group_info(&self) -> BTreeMap<u32, (Option<u64>, u64)> {
        self.group_json()["partitions"]
            .as_array()
            .expect("partitions")
            .iter()
            .filter(|p| p["topic"] == TOPIC)
            .map(|p| {
                let partition = p["partition"].as_u64().unwrap() as u32;
                (
                    partition,
                    (p["committed"].as_u64(), p["lag"].as_u64().unwrap()),
                )
            })
            .collect()
    }

    /// Runs a one-shot role (`produce`, `read`) to its end; its events.
    fn run(&self, client: &str, role: &str, extra: Value) -> Vec<Value> {
        let mut spec = self.spec(client, role);
        for (k, v) in extra.as_object().expect("an object") {
            spec[k] = v.clone();
        }
        let out = kafka::python_script("members.py")
            .arg(spec.to_string())
            .output()
            .expect("members.py runs");
        let text = String::from_utf8_lossy(&out.stdout);
        let events: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        assert!(
            out.status.success() && !events.iter().any(|e| e["event"] == "error"),
            "{client} {role}: {}\n{text}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        events
    }

    /// What a Kafka client reads of TOPIC from the start: `count` records by
    /// `(partition, offset)`.
    fn kafka_read(&self, count: usize) -> BTreeMap<(u64, u64), Value> {
        let records: BTreeMap<_, _> = self
            .run("confluent", "read", json!({ "count": count }))
            .into_iter()
            .filter(|e| e["event"] == "record")
            .map(|e| {
                (
                    (
                        e["partition"].as_u64().unwrap(),
                        e["offset"].as_u64().unwrap(),
                    ),
                    e,
                )
            })
            .collect();
        assert_eq!(records.len(), count, "{records:#?}");
        records
    }

    /// End offsets of TOPIC.
    async fn ends(&self) -> Vec<(u32, u64)> {
        self.client
            .list_offsets(&full_topic(), &[], true)
            .await
            .unwrap_or_default()
    }
}

/// What a member process has said so far.
#[derive(Debug, Default)]
struct Seen {
    events: Vec<Value>,
    /// Its partitions of TOPIC now.
    assigned: BTreeSet<u32>,
    /// Its stdout ended.
    ended: bool,
}

impl Seen {
    /// Offsets read per partition after the `mark`th event, in the order read.
    fn read_since(&self, mark: usize) -> BTreeMap<u32, Vec<u64>> {
        let mut out: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
        for e in &self.events[mark..] {
            if e["event"] == "record" {
                let p = e["partition"].as_u64().unwrap() as u32;
                out.entry(p)
                    .or_default()
                    .push(e["offset"].as_u64().unwrap());
            }
        }
        out
    }

    /// Whether it has read up to `end` (exclusive) in each of `partitions`.
    fn read_to(&self, partitions: &BTreeSet<u32>, end: u64) -> bool {
        let read = self.read_since(0);
        partitions
            .iter()
            .all(|p| read.get(p).and_then(|o| o.last()) == Some(&(end - 1)))
    }

    /// The partitions revoked after the `mark`th event.
    fn revoked_since(&self, mark: usize) -> BTreeSet<u32> {
        self.events[mark..]
            .iter()
            .filter(|e| e["event"] == "revoked")
            .flat_map(|e| partitions(&e["partitions"]))
            .collect()
    }
}

/// `[[TOPIC, P], ...]` as partition numbers.
fn partitions(list: &Value) -> Vec<u32> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|tp| tp[1].as_u64().unwrap() as u32)
        .collect()
}

/// One group member: a `members.py` process, its events gathered by a thread.
struct Member {
    name: String,
    child: Child,
    stdin: ChildStdin,
    seen: Arc<Mutex<Seen>>,
}

impl Member {
    fn start(name: &str, spec: &Value) -> Member {
        let mut child = kafka::python_script("members.py")
            .arg(spec.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("members.py starts");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let seen = Arc::new(Mutex::new(Seen::default()));
        let gather = seen.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let e: Value =
                    serde_json::from_str(&line).unwrap_or_else(|_| json!({ "event": line }));
                let mut s = gather.lock().unwrap();
                match e["event"].as_str() {
                    Some("assigned") => s.assigned.extend(partitions(&e["partitions"])),
                    Some("revoked") => {
                        for p in partitions(&e["partitions"]) {
                            s.assigned.remove(&p);
                        }
                    }
                    _ => {}
                }
                s.events.push(e);
            }
            gather.lock().unwrap().ended = true;
        });
        Member {
            name: name.to_owned(),
            child,
            stdin,
            seen,
        }
    }

    fn seen<T>(&self, f: impl FnOnce(&Seen) -> T) -> T {
        f(&self.seen.lock().unwrap())
    }

    fn assigned(&self) -> BTreeSet<u32> {
        self.seen(|s| s.assigned.clone())
    }

    /// Events so far: a mark for `read_since` and `revoked_since`.
    fn mark(&self) -> usize {
        self.seen(|s| s.events.len())
    }

    /// Waits until `check` holds of what it said; fails at once on an error it reports, or
    /// if it ends.
    async fn until<T>(&self, what: &str, check: impl Fn(&Seen) -> Option<T>) -> T {
        let what = format!("{}: {what}", self.name);
        wait_until(&what, LONG, || {
            let answer = self.seen(|s| {
                let failed = s.events.iter().find(|e| e["event"] == "error");
                assert!(failed.is_none(), "{what}: {failed:?}");
                let answer = check(s);
                assert!(answer.is_some() || !s.ended, "{what}: it ended: {s:?}");
                answer
            });
            std::future::ready(answer)
        })
        .await
    }

    fn send(&mut self, command: &str) {
        writeln!(self.stdin, "{command}").expect("the member reads its commands");
    }

    /// Commits what it read; the `(partition, offset)`s committed.
    async fn commit(&mut self) -> BTreeMap<u32, u64> {
        let mark = self.mark();
        self.send("commit");
        self.until("its commit", |s| {
            s.events[mark..]
                .iter()
                .find(|e| e["event"] == "committed")
                .map(|e| {
                    e["offsets"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|o| (o[1].as_u64().unwrap() as u32, o[2].as_u64().unwrap()))
                        .collect()
                })
        })
        .await
    }

    /// Leaves the group and waits for the process to end.
    async fn close(mut self) {
        self.send("close");
        self.until("leaving", |s| s.ended.then_some(())).await;
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "{}: {status}", self.name);
    }

    fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("wait");
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn all() -> BTreeSet<u32> {
    (0..PARTITIONS).collect()
}

/// `from..to` as the offsets a reader should see.
fn span(from: u64, to: u64) -> Vec<u64> {
    (from..to).collect()
}

/// `offset` for each of `partitions`.
fn at(partitions: &BTreeSet<u32>, offset: u64) -> BTreeMap<u32, u64> {
    partitions.iter().map(|&p| (p, offset)).collect()
}

/// Two members from different libraries share TOPIC; each reads and commits a round, then
/// reads a second that only the one to survive commits; the other is `kill -9`ed (the
/// first to join, the group's leader, when `kill_leader`). After the session timeout the
/// survivor has all four partitions and reads on from the commits: its own from 20, the
/// dead member's from 10 (read but never committed past it), each record once. Returns
/// the server and the survivor, everything read (25 records a partition) committed.
async fn share_then_kill(first: &str, second: &str, kill_leader: bool) -> (Setup, Member) {
    let s = setup(true).await;
    let a = s.member(first, "range");
    a.until("all four partitions", |x| {
        (x.assigned == all()).then_some(())
    })
    .await;
    let b = s.member(second, "range");
    wait_until("the two members to split the topic", LONG, || {
        let (x, y) = (a.assigned(), b.assigned());
        let split = x.len() == 2 && y.len() == 2 && x.is_disjoint(&y);
        std::future::ready(split.then_some(()))
    })
    .await;
    let (mut survivor, mut dying) = if kill_leader { (b, a) } else { (a, b) };
    let (mine, theirs) = (survivor.assigned(), dying.assigned());

    s.produce("r1", 10).await;
    survivor
        .until("round 1", |x| x.read_to(&mine, 10).then_some(()))
        .await;
    dying
        .until("round 1", |x| x.read_to(&theirs, 10).then_some(()))
        .await;
    assert_eq!(survivor.commit().await, at(&mine, 10));
    assert_eq!(dying.commit().await, at(&theirs, 10));
    s.produce("r2", 10).await;
    survivor
        .until("round 2", |x| x.read_to(&mine, 20).then_some(()))
        .await;
    dying
        .until("round 2", |x| x.read_to(&theirs, 20).then_some(()))
        .await;
    assert_eq!(survivor.commit().await, at(&mine, 20));
    let committed: BTreeMap<u32, u64> = at(&mine, 20).into_iter().chain(at(&theirs, 10)).collect();
    let info = s.group_info();
    for (p, o) in &committed {
        assert_eq!(info[p], (Some(*o), 20 - o), "partition {p}: {info:?}");
    }

    dying.kill9();
    let mark = survivor.mark();
    survivor
        .until("the dead member's partitions", |x| {
            (x.assigned == all()).then_some(())
        })
        .await;
    let since = survivor.seen(|x| {
        x.events[mark..]
            .iter()
            .rposition(|e| e["event"] == "assigned")
            .map(|i| mark + i)
            .expect("an assignment")
    });
    s.produce("r3", 5).await;
    survivor
        .until("everything after the commits", |x| {
            x.read_to(&all(), 25).then_some(())
        })
        .await;
    let read = survivor.seen(|x| x.read_since(since));
    for p in all() {
        assert_eq!(read[&p], span(committed[&p], 25), "partition {p}");
    }
    assert_eq!(survivor.commit().await, at(&all(), 25));
    (s, survivor)
}

#[tokio::test(flavor = "multi_thread")]
async fn kafka_python_and_aiokafka_share_a_group_and_the_leader_dies() {
    let (_s, survivor) = share_then_kill("kafka-python", "aiokafka", true).await;
    survivor.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn confluent_and_kafka_python_share_a_group_that_tributary_shows_and_resets() {
    let (s, a) = share_then_kill("confluent", "kafka-python", false).await;

    // The group as Tributary's tools see it: live, so it cannot be reset.
    let list = s
        .server
        .cli()
        .args(["--json", "group", "list", STREAM])
        .run()
        .ok()
        .stdout;
    let listed: Vec<Value> = list
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        listed
            .iter()
            .any(|g| g["group"] == GROUP && g["members"] == 1),
        "{list}"
    );
    // Its one member reads the four partitions its leader gave it, as the client decided.
    let info = s.group_json();
    let members = info["members"].as_array().expect("members");
    assert_eq!(members.len(), 1, "{info}");
    let mut shown: Vec<String> = members[0]["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect();
    shown.sort();
    let four: Vec<String> = all().iter().map(|p| format!("{TOPIC}#{p}")).collect();
    assert_eq!(shown, four, "{info}");
    for p in info["partitions"].as_array().unwrap() {
        assert_eq!(p["member_id"], members[0]["member_id"], "{info}");
    }
    let reset = [
        "group", "reset", STREAM, GROUP, "--to", "22", "--topic", TOPIC,
    ];
    let refused = s.server.cli().args(reset).run().failed();
    assert!(
        refused.stderr.contains("active member"),
        "{}",
        refused.stderr
    );

    // Empty, it shows its commits and lag, and a reset moves where a new member starts.
    a.close().await;
    s.produce("r4", 5).await;
    assert_eq!(
        s.group_info(),
        all().into_iter().map(|p| (p, (Some(25), 5))).collect()
    );
    s.server.cli().args(reset).run().ok();
    assert_eq!(
        s.group_info(),
        all().into_iter().map(|p| (p, (Some(22), 8))).collect()
    );
    let c = s.member("kafka-python", "range");
    c.until("the group's four partitions", |x| {
        x.read_to(&all(), 30).then_some(())
    })
    .await;
    let read = c.seen(|x| x.read_since(0));
    for p in all() {
        assert_eq!(read[&p], span(22, 30), "partition {p}");
    }
    c.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cooperative_sticky_revokes_only_what_moves() {
    let s = setup(true).await;
    let a = s.member("confluent", "cooperative-sticky");
    a.until("all four partitions", |x| {
        (x.assigned == all()).then_some(())
    })
    .await;
    s.produce("r1", 10).await;
    a.until("round 1", |x| x.read_to(&all(), 10).then_some(()))
        .await;
    let mark = a.mark();
    let b = s.member("confluent", "cooperative-sticky");
    let (kept, moved) = wait_until("the two members to split the topic", LONG, || {
        let (x, y) = (a.assigned(), b.assigned());
        let split = x.len() == 2 && y.len() == 2 && x.is_disjoint(&y);
        std::future::ready(split.then_some((x, y)))
    })
    .await;
    // a was told to give up exactly the partitions that moved, never its others.
    assert_eq!(a.seen(|x| x.revoked_since(mark)), moved);

    // a reads on in the partitions it kept, from where it was: it committed nothing, so
    // a partition revoked and given back would have started over from the earliest.
    s.produce("r2", 10).await;
    a.until("round 2", |x| x.read_to(&kept, 20).then_some(()))
        .await;
    b.until("round 2", |x| x.read_to(&moved, 20).then_some(()))
        .await;
    let read = a.seen(|x| x.read_since(mark));
    for p in &kept {
        assert_eq!(read[p], span(10, 20), "partition {p}");
    }
    for p in &moved {
        assert_eq!(read.get(p), None, "partition {p} moved");
    }
    let read = b.seen(|x| x.read_since(0));
    for p in &moved {
        assert_eq!(read[p], span(0, 20), "partition {p}");
    }
    b.close().await;
    a.close().await;
}

/// Kafka records as a producer sends them to partition `p`: headers (a null value, an
/// empty one, a repeated key), a null key, a tombstone, an empty key and value, and a long
/// value that compression shrinks (librdkafka sends a batch uncompressed when it does not).
fn kafka_records(tag: &str, p: u32) -> Vec<Value> {
    let r = |key: Value, value: Value, headers: Value| json!({ "topic": TOPIC, "partition": p, "key": key, "value": value, "headers": headers });
    vec![
        r(
            json!(format!("{tag}-k{p}")),
            json!(format!("{tag}-v{p}")),
            json!([["trace", "t"], ["none", null], ["empty", ""]]),
        ),
        r(Value::Null, json!(format!("{tag}-unkeyed-{p}")), json!([])),
        r(json!(format!("{tag}-gone-{p}")), Value::Null, json!([])),
        r(json!(""), json!(""), json!([["h", "1"], ["h", "2"]])),
        r(
            json!("long"),
            json!(format!("{tag}-{p}-").repeat(500)),
            json!([]),
        ),
    ]
}

/// The fields a record keeps across clusters.
fn content(e: &Value) -> Value {
    let headers = e.get("headers").cloned().unwrap_or_else(|| json!([]));
    json!([e["key"], e["value"], headers, e["timestamp"]])
}

#[tokio::test(flavor = "multi_thread")]
async fn kafka_batches_cross_a_mirror_and_a_link() {
    let a = setup(true).await;
    let (mirror, linked) = (setup(false).await, setup(true).await);
    // The linked cluster holds records of its own first, so A's land at other offsets.
    linked.produce("own", 3).await;
    let token = a.server.admin_token();
    let from = format!("{}{STREAM}", a.server.url);
    let add = [
        "upstream",
        "add",
        STREAM,
        "--from",
        &from,
        "--from-token",
        &token,
    ];
    mirror.server.cli().args(add).args(["--mirror"]).run().ok();
    linked.server.cli().args(add).run().ok();

    // Two batches per partition through librdkafka, compressed two ways.
    for (tag, compression) in [("zstd", "zstd"), ("gzip", "gzip")] {
        let records: Vec<Value> = (0..PARTITIONS)
            .flat_map(|p| kafka_records(tag, p))
            .collect();
        let produced = a.run(
            "confluent",
            "produce",
            json!({ "records": records, "compression": compression }),
        );
        assert_eq!(produced.last().unwrap()["event"], "produced");
    }
    let n = 2 * 5 * PARTITIONS as usize;
    let source = a.kafka_read(n);
    let ends = a.ends().await;
    for (cluster, shift) in [(&mirror, 0), (&linked, 3)] {
        let want: Vec<(u32, u64)> = ends.iter().map(|&(p, e)| (p, e + shift)).collect();
        wait_until("A's records", LONG, || async {
            (cluster.ends().await == want).then_some(())
        })
        .await;
        let read = cluster.kafka_read(n + shift as usize * PARTITIONS as usize);
        for ((p, o), e) in &source {
            let there = &read[&(*p, o + shift)];
            assert_eq!(content(there), content(e), "{p}@{o} shifted by {shift}");
        }
        let out = cluster
            .server
            .cli()
            .args(["--json", "consume", &full_topic(), "--from", "earliest"])
            .args(["--max", &read.len().to_string(), "--timeout", "10s"])
            .run()
            .ok()
            .stdout;
        let consumed: BTreeMap<(u64, u64), Value> = out
            .lines()
            .map(|l| {
                let mut e: Value = serde_json::from_str(l).unwrap();
                e["timestamp"] = e["timestamp_ms"].clone();
                (
                    (
                        e["partition"].as_u64().unwrap(),
                        e["offset"].as_u64().unwrap(),
                    ),
                    e,
                )
            })
            .collect();
        assert_eq!(consumed.len(), read.len(), "{out}");
        for (at, e) in &read {
            assert_eq!(
                content(&consumed[at]),
                content(e),
                "{at:?} shifted by {shift}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_static_member_restarts_into_its_place_without_a_rebalance() {
    static_member_restarts(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_static_leader_restarts_into_its_place_without_a_rebalance() {
    static_member_restarts(true).await;
}

/// A static member (confluent-kafka, `group.instance.id`) beside a kafka-python one, the
/// group's leader when `leads` (the first to join), is `kill -9`ed and started again well
/// within its session timeout: it takes the old member's place, partitions and generation,
/// reads on from its commit, and nobody rebalances (Kafka's rule for a static member
/// rejoining a stable group, the leader too).
async fn static_member_restarts(leads: bool) {
    let s = setup(true).await;
    let mut spec = s.member_spec("confluent", "range");
    spec["instance_id"] = json!("orders-b");
    let start_static = |name: &str| Member::start(name, &spec);
    let four = |x: &Seen| (x.assigned == all()).then_some(());
    let (a, mut b) = if leads {
        let b = start_static("static confluent");
        b.until("all four partitions", four).await;
        (s.member("kafka-python", "range"), b)
    } else {
        let a = s.member("kafka-python", "range");
        a.until("all four partitions", four).await;
        (a, start_static("static confluent"))
    };
    let (mine, theirs) = wait_until("the two members to split the topic", LONG, || {
        let (x, y) = (a.assigned(), b.assigned());
        let split = x.len() == 2 && y.len() == 2 && x.is_disjoint(&y);
        std::future::ready(split.then_some((x, y)))
    })
    .await;
    s.produce("r1", 10).await;
    a.until("round 1", |x| x.read_to(&mine, 10).then_some(()))
        .await;
    b.until("round 1", |x| x.read_to(&theirs, 10).then_some(()))
        .await;
    assert_eq!(b.commit().await, at(&theirs, 10));
    let before = s.group_json();
    let static_id = |info: &Value| -> String {
        let members = info["members"].as_array().expect("members");
        assert_eq!(members.len(), 2, "{info}");
        let ids: Vec<&str> = members
            .iter()
            .filter_map(|m| m["member_id"].as_str())
            .filter(|id| id.starts_with("orders-b-"))
            .collect();
        assert_eq!(ids.len(), 1, "{info}");
        ids[0].to_owned()
    };
    let old = static_id(&before);

    let mark = a.mark();
    b.kill9();
    let b = start_static("static confluent, restarted");
    b.until("its old partitions", |x| {
        (x.assigned == theirs).then_some(())
    })
    .await;
    s.produce("r2", 10).await;
    a.until("round 2", |x| x.read_to(&mine, 20).then_some(()))
        .await;
    b.until("round 2 from its commit", |x| {
        x.read_to(&theirs, 20).then_some(())
    })
    .await;
    let read = b.seen(|x| x.read_since(0));
    for p in &theirs {
        assert_eq!(read[p], span(10, 20), "partition {p}");
    }
    let after = s.group_json();
    assert_ne!(static_id(&after), old, "the old member id is fenced");
    assert_eq!(after["generation"], before["generation"], "{after}");
    assert_eq!(a.seen(|x| x.revoked_since(mark)), BTreeSet::new());
    b.close().await;
    a.close().await;
}

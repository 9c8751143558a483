//! Load on a real server (issue #9, point 4): a thousand connections producing and
//! consuming at once, consumers that never read, and per-principal rate quotas keeping one
//! tenant's flood away from another. Figures are printed (`--no-capture`), never asserted:
//! the tests assert on errors, refusals and bounds. docs/RELIABILITY.md §4 has the runs.
//!
//! `LOAD_SECS` and `LOAD_CONNECTIONS` lengthen or widen a run by hand.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;
use tributary_client::{Client, RETRY_AFTER_MS, record, unkeyed};
use tributary_e2e::{Server, create_stream, prometheus, wait_until};
use tributary_proto::v1;

const LONG: Duration = Duration::from_secs(120);
const MIB: u64 = 1 << 20;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Raises this process's open-files limit (inherited by the servers it starts) to at
/// least `want`, within the hard limit.
fn raise_fd_limit(want: u64) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut l = getrlimit(Resource::Nofile);
    let hard = l.maximum.unwrap_or(u64::MAX);
    assert!(
        hard >= want,
        "the hard open-files limit ({hard}) is below the {want} this test needs"
    );
    if l.current.is_some_and(|c| c < want) {
        l.current = Some(want);
        setrlimit(Resource::Nofile, l).expect("raise the open-files limit");
    }
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB as f64)
}

/// Latency percentiles of `samples`, for the report.
fn percentiles(samples: &mut [Duration]) -> String {
    if samples.is_empty() {
        return "no samples".into();
    }
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    format!(
        "n={} p50={:.2?} p90={:.2?} p99={:.2?} max={:.2?}",
        samples.len(),
        at(0.50),
        at(0.90),
        at(0.99),
        samples[samples.len() - 1]
    )
}

async fn topic(client: &Client, stream: &str, name: &str, partitions: u32, durability: i32) {
    create_stream(
        client,
        stream,
        v1::StreamAttributes {
            durability,
            ..Default::default()
        },
    )
    .await;
    client
        .admin()
        .create_topic(v1::CreateTopicRequest {
            path: format!("{stream}:{name}"),
            partitions: Some(partitions),
        })
        .await
        .expect("create topic");
}

/// 1,000 clients, each on its own TCP connection, produce a record and read it back in a
/// loop for a bounded time. Every call succeeds; the server's peak memory is reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_connections_produce_and_consume_without_errors() {
    let connections = env_or("LOAD_CONNECTIONS", 1000) as usize;
    let secs = env_or("LOAD_SECS", 10);
    // Each connection is a socket here and one in the server, plus the store's files.
    raise_fd_limit(2 * connections as u64 + 1024);
    let server = Server::start();
    let admin = server.client().await;
    let partitions = 16;
    topic(
        &admin,
        "/load/s",
        "t",
        partitions,
        v1::Durability::Buffered as i32,
    )
    .await;
    let token = server.admin_token();
    let pid = server.pid();
    let idle_rss = server.memory("VmRSS");

    // Connect in waves, so the listen backlog never overflows into SYN retries.
    let mut clients = Vec::with_capacity(connections);
    for wave in (0..connections).collect::<Vec<_>>().chunks(100) {
        let connects = wave
            .iter()
            .map(|_| Client::connect(&server.url, Some(&token)));
        for c in futures::future::join_all(connects).await {
            clients.push(c.expect("connect"));
        }
    }
    // A connect returns once the kernel has the connection, maybe before the server has
    // accepted it; a call answered on every connection proves each one is in the server.
    let answered = clients
        .iter()
        .map(|c| c.list_offsets("/load/s:t", &[0], true));
    for a in futures::future::join_all(answered).await {
        a.expect("a first call on each connection");
    }
    let fds = open_fds(pid);
    assert!(
        fds >= connections,
        "the server holds {fds} descriptors for {connections} connections: are they separate?"
    );

    let ops = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for (i, client) in clients.into_iter().enumerate() {
        let ops = ops.clone();
        tasks.push(tokio::spawn(async move {
            let partition = i as u32 % partitions;
            let mut latencies = Vec::new();
            let mut n = 0u64;
            while Instant::now() < deadline {
                let value = format!("c{i}:{n}:{}", "x".repeat(100));
                let t = Instant::now();
                let ack = client
                    .produce(
                        "/load/s:t",
                        Some(partition),
                        vec![record(format!("c{i}"), value.clone())],
                    )
                    .await
                    .map_err(|e| format!("connection {i} produce {n}: {e}"))?;
                let offset = ack.acks[0].base_offset;
                let got = client
                    .fetch("/load/s:t", partition, offset, 64 << 10, Duration::ZERO)
                    .await
                    .map_err(|e| format!("connection {i} fetch {n}: {e}"))?;
                latencies.push(t.elapsed());
                let first = got.records.first().and_then(|r| r.record.value.clone());
                if first.as_deref() != Some(value.as_bytes()) {
                    return Err(format!(
                        "connection {i}: offset {offset} holds {first:?}, not its record"
                    ));
                }
                n += 1;
                ops.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, String>(latencies)
        }));
    }
    let mut peak_fds = open_fds(pid);
    let mut errors = Vec::new();
    let mut latencies = Vec::new();
    for t in tasks {
        peak_fds = peak_fds.max(open_fds(pid));
        match t.await.expect("task") {
            Ok(l) => latencies.extend(l),
            Err(e) => errors.push(e),
        }
    }
    let hwm = server.memory("VmHWM");
    let rss = server.memory("VmRSS");
    let total = ops.load(Ordering::Relaxed);
    println!(
        "{connections} connections for {secs} s: {total} produce+fetch round trips ({:.0}/s), \
         errors {}; round trip {}; server: peak RSS (VmHWM) {}, RSS {} (idle {}), \
         descriptors {peak_fds}",
        total as f64 / secs as f64,
        errors.len(),
        percentiles(&mut latencies),
        mib(hwm),
        mib(rss),
        mib(idle_rss),
    );
    assert!(
        errors.is_empty(),
        "{} errors: {:?}",
        errors.len(),
        &errors[..errors.len().min(10)]
    );
    assert!(
        total >= connections as u64,
        "every connection got through at least once"
    );
}

/// A member of its own group that joins, grants ample credit, keeps its session alive and
/// never reads what the server pushes. Returns the response stream, to read at the end.
async fn slow_member(
    client: &Client,
    group: &str,
) -> (
    tonic::Streaming<v1::SubscribeResponse>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = mpsc::channel(4);
    let join = v1::SubscribeRequest {
        kind: Some(v1::subscribe_request::Kind::Join(v1::JoinGroup {
            stream: "/slow/s".into(),
            group: group.into(),
            topics: vec!["t".into()],
            // A backlog to catch up on: the server has plenty to push at once.
            start: v1::OffsetSpec::Earliest as i32,
            ..Default::default()
        })),
    };
    let credit = v1::SubscribeRequest {
        kind: Some(v1::subscribe_request::Kind::Credit(v1::Credit {
            bytes: 1 << 40,
            batches: u32::MAX,
        })),
    };
    tx.send(join).await.unwrap();
    tx.send(credit).await.unwrap();
    let responses = client
        .consumer()
        .subscribe(ReceiverStream::new(rx))
        .await
        .expect("subscribe")
        .into_inner();
    let heartbeats = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1)); // the protocol's heartbeat
        loop {
            tick.tick().await;
            let hb = v1::SubscribeRequest {
                kind: Some(v1::subscribe_request::Kind::Heartbeat(v1::Heartbeat {})),
            };
            if tx.send(hb).await.is_err() {
                return;
            }
        }
    });
    (responses, heartbeats)
}

fn bytes_out(server: &Server) -> u64 {
    server
        .scrape()
        .lines()
        .filter(|l| l.starts_with("tributary_bytes_out_total{") && l.contains("stream=\"/slow/s\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Waits until the server, having pushed something, has pushed nothing more to
/// subscribers for a second; what it has pushed by then.
async fn stalled(server: &Server, what: &str) -> u64 {
    let mut last = (bytes_out(server), Instant::now());
    wait_until(what, LONG, || {
        let now = bytes_out(server);
        if now != last.0 {
            last = (now, Instant::now());
        }
        let quiet = now > 0 && last.1.elapsed() >= Duration::from_secs(1);
        async move { quiet.then_some(now) }
    })
    .await
}

/// The server's own heap: what its Rust code holds (sessions, queues, pushes), apart from
/// RocksDB's memtables and caches, which its options bound. Not RSS: glibc keeps a flushed
/// memtable's pages for the next one, so RSS swings by up to the memtables' size (about
/// 160 MiB here) with the phase of the flushes, whoever reads.
fn server_heap(server: &Server) -> u64 {
    prometheus::parse(&server.scrape())
        .expect("valid exposition format")
        .value("tributary_memory_heap_bytes", &[("heap", "server")]) as u64
}

/// Produces `bytes` in 256 KiB batches of 4 KiB records; the highest
/// [`server_heap`] seen along the way, sampled every 16 MiB.
async fn produce_bytes(server: &Server, client: &Client, topic: &str, bytes: u64) -> u64 {
    let value = vec![b'v'; 4096];
    let batch = 64;
    let mut most = 0;
    for i in 0..bytes / (batch * 4096) {
        let records = (0..batch).map(|_| unkeyed(value.clone())).collect();
        client
            .produce(topic, Some(0), records)
            .await
            .expect("produce");
        if i % 64 == 63 {
            most = most.max(server_heap(server));
        }
    }
    most
}

/// Consumers that subscribe and never read: while they sit on a large backlog and more
/// is produced, the server pushes nothing more and holds only what flow control lets it
/// (a push or two per member): its own heap (Rust allocations, RocksDB's apart) stays
/// within a few MiB per member of what the same writes cost with nobody subscribed; and each
/// consumer still gets its records once it reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_that_never_read_do_not_grow_server_memory() {
    let members = env_or("LOAD_SLOW_MEMBERS", 8);
    let push = env_or("LOAD_SLOW_MIB", 256) * MIB;
    let server = Server::start();
    let admin = server.client().await;
    topic(&admin, "/slow/s", "t", 1, v1::Durability::Buffered as i32).await;
    // The control: the store at its steady state (memtables filling and flushing) with the
    // same writes as below, nobody subscribed.
    produce_bytes(&server, &admin, "/slow/s:t", 384 * MIB).await;
    let control = produce_bytes(&server, &admin, "/slow/s:t", push).await;
    let peak_control = server.memory("VmHWM");

    let mut slow = Vec::new();
    for m in 0..members {
        // Each on its own connection, as separate applications would be.
        let c = server.client().await;
        slow.push(slow_member(&c, &format!("g{m}")).await);
    }
    for m in 0..members {
        let group = format!("g{m}");
        wait_until("each member to be assigned the partition", LONG, || async {
            let g = admin
                .consumer()
                .describe_group(v1::DescribeGroupRequest {
                    stream: "/slow/s".into(),
                    group: group.clone(),
                })
                .await
                .ok()?
                .into_inner();
            g.members
                .iter()
                .any(|m| !m.partitions.is_empty())
                .then_some(())
        })
        .await;
    }
    let sent_before = stalled(&server, "the slow members' pipelines to stall").await;
    let stalled_heap = server_heap(&server);
    let during = produce_bytes(&server, &admin, "/slow/s:t", push).await;
    let sent_after = stalled(&server, "the server to stop pushing").await;
    let peak = server.memory("VmHWM");
    let backlog = 384 * MIB + push;
    println!(
        "{members} members that never read, on a {} backlog: {} pushed to them before they \
         stalled, {} while {} more was produced; the server's own heap: at most {} while \
         producing with nobody subscribed, {} once they stalled, at most {} while producing \
         to them; peak RSS {} ({} before they joined)",
        mib(backlog),
        mib(sent_before),
        mib(sent_after - sent_before),
        mib(push),
        mib(control),
        mib(stalled_heap),
        mib(during),
        mib(peak),
        mib(peak_control),
    );
    // What each member is owed is the backlog (5 GiB in all); what the server sent its
    // way before stopping is a push or two held here and the client's HTTP/2 window.
    assert!(
        sent_before < members * 16 * MIB,
        "{} pushed to {members} members that never read",
        mib(sent_before)
    );
    assert!(
        sent_after - sent_before < members * MIB,
        "the server kept pushing to members that never read"
    );
    // The server's memory does not grow with what is produced for them...
    assert!(
        during < stalled_heap + 16 * MIB,
        "the server's heap grew from {} to {} while {} was produced for members that never \
         read",
        mib(stalled_heap),
        mib(during),
        mib(push)
    );
    // ...and what they cost at all (the pushes queued for them, their sessions: 6 MiB each
    // when measured) is far from what they are owed (640 MiB each, then 896 MiB).
    assert!(
        stalled_heap < control + members * 16 * MIB,
        "the server's heap: {} with {members} members that never read, {} without",
        mib(stalled_heap),
        mib(control)
    );

    // Each member still gets its records once it reads.
    for (mut responses, heartbeats) in slow {
        let mut records = 0;
        while records == 0 {
            let m = tokio::time::timeout(LONG, responses.next())
                .await
                .expect("a response in time")
                .expect("the stream is open")
                .expect("no error");
            if let Some(v1::subscribe_response::Kind::Records(r)) = m.kind {
                records += r.batches.len();
            }
        }
        heartbeats.abort();
    }
}

/// Outcomes of one tenant's calls.
#[derive(Debug, Default)]
struct Tally {
    ok: u64,
    throttled: u64,
    other: Vec<String>,
    /// Records acknowledged.
    records: u64,
    retry_hints_ms: Vec<u64>,
}

impl Tally {
    fn add<T>(&mut self, r: Result<T, tributary_client::Error>) -> Option<T> {
        match r {
            Ok(v) => {
                self.ok += 1;
                Some(v)
            }
            Err(tributary_client::Error::Status(s)) if s.code() == Code::ResourceExhausted => {
                let hint = s
                    .metadata()
                    .get(RETRY_AFTER_MS)
                    .and_then(|v| v.to_str().ok()?.parse().ok());
                match hint {
                    Some(ms)
                        if s.message().contains("quota") && s.message().contains("retry in") =>
                    {
                        self.throttled += 1;
                        self.retry_hints_ms.push(ms);
                    }
                    _ => self.other.push(format!("{s:?}")),
                }
                None
            }
            Err(e) => {
                self.other.push(e.to_string());
                None
            }
        }
    }
}

/// Tenant B's steady, modest work: a produce and a fetch back every 20 ms. Every call
/// must succeed; its latencies are the figure.
async fn tenant_b(client: Client, calls: usize) -> (Tally, Vec<Duration>) {
    let mut tally = Tally::default();
    let mut latencies = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(20)); // B's pace
    for i in 0..calls {
        tick.tick().await;
        let t = Instant::now();
        let acked = tally.add(
            client
                .produce(
                    "/b/s:t",
                    Some(0),
                    vec![record("b", format!("b{i}:{}", "y".repeat(1000)))],
                )
                .await,
        );
        latencies.push(t.elapsed());
        if let Some(a) = acked {
            tally.records += 1;
            let t = Instant::now();
            tally.add(
                client
                    .fetch("/b/s:t", 0, a.acks[0].base_offset, 64 << 10, Duration::ZERO)
                    .await,
            );
            latencies.push(t.elapsed());
        }
    }
    (tally, latencies)
}

/// Per-principal quotas: tenant A floods (many connections, large batches, big fetches)
/// and is throttled with RESOURCE_EXHAUSTED and a retry hint, while every call of tenant
/// B, at a modest rate, succeeds. A refused produce writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_tenant_is_throttled_and_the_other_is_not() {
    let server = Server::builder().args(&[
        "--quota-requests-per-sec",
        "400",
        "--quota-produce-bytes-per-sec",
        "2097152",
        "--quota-fetch-bytes-per-sec",
        "4194304",
        // Tenant A has a tighter request rate than the default; the admin is unlimited.
        "--quota-users",
        "{ a = { requests_per_sec = 200 }, admin = { requests_per_sec = 0, produce_bytes_per_sec = 0, fetch_bytes_per_sec = 0 } }",
    ]).start();
    let admin = server.client().await;
    let mut tokens = Vec::new();
    for tenant in ["a", "b"] {
        let token = admin
            .admin()
            .create_user(v1::CreateUserRequest {
                name: tenant.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .token;
        admin
            .admin()
            .create_volume(v1::CreateVolumeRequest {
                path: format!("/{tenant}"),
                owner: tenant.into(),
                ..Default::default()
            })
            .await
            .unwrap();
        let client = server.client_as(Some(&token)).await;
        client
            .admin()
            .create_stream(v1::CreateStreamRequest {
                path: format!("/{tenant}/s"),
                attributes: None,
            })
            .await
            .unwrap();
        client
            .admin()
            .create_topic(v1::CreateTopicRequest {
                path: format!("/{tenant}/s:t"),
                partitions: Some(1),
            })
            .await
            .unwrap();
        tokens.push(token);
    }
    let b = server.client_as(Some(&tokens[1])).await;
    let calls = env_or("LOAD_B_CALLS", 150) as usize;

    // B alone, for the baseline.
    let (alone, mut alone_latency) = tenant_b(b.clone(), calls).await;
    assert!(alone.other.is_empty() && alone.throttled == 0, "{alone:?}");

    // A floods from 16 connections while B works as before.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut flood = Vec::new();
    for f in 0..16 {
        let a = server.client_as(Some(&tokens[0])).await;
        let stop = stop.clone();
        flood.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let value = vec![b'a'; 64 << 10];
            while !stop.load(Ordering::Relaxed) {
                if f % 4 == 0 {
                    // Big fetches from the start.
                    tally.add(a.fetch("/a/s:t", 0, 0, 16 << 20, Duration::ZERO).await);
                } else {
                    let records = vec![unkeyed(value.clone()); 4];
                    if tally
                        .add(a.produce("/a/s:t", Some(0), records).await)
                        .is_some()
                    {
                        tally.records += 4;
                    }
                }
            }
            tally
        }));
    }
    let (during, mut during_latency) = tenant_b(b.clone(), calls).await;
    stop.store(true, Ordering::Relaxed);
    let mut a = Tally::default();
    for t in flood {
        let t = t.await.unwrap();
        a.ok += t.ok;
        a.throttled += t.throttled;
        a.records += t.records;
        a.other.extend(t.other);
        a.retry_hints_ms.extend(t.retry_hints_ms);
    }
    a.retry_hints_ms.sort_unstable();
    println!(
        "tenant A flooding: {} calls let in, {} throttled (retry hints {}..{} ms), {} other errors; \
         tenant B alone: {}; tenant B during the flood: {} ({} calls, {} refused)",
        a.ok,
        a.throttled,
        a.retry_hints_ms.first().copied().unwrap_or(0),
        a.retry_hints_ms.last().copied().unwrap_or(0),
        a.other.len(),
        percentiles(&mut alone_latency),
        percentiles(&mut during_latency),
        during.ok,
        during.throttled + during.other.len() as u64,
    );
    assert!(
        a.other.is_empty(),
        "A's calls failed otherwise: {:?}",
        &a.other[..a.other.len().min(5)]
    );
    assert!(a.throttled > 0, "the flood was never throttled");
    assert!(a.ok > 0, "A was shut out entirely, not throttled");
    assert!(
        during.throttled == 0 && during.other.is_empty(),
        "tenant B was refused during A's flood: {during:?}"
    );
    assert_eq!(during.records as usize, calls);

    // A refused produce wrote nothing: A's log holds exactly what was acknowledged.
    let hw = admin.list_offsets("/a/s:t", &[0], true).await.unwrap()[0].1;
    assert_eq!(hw, a.records, "A's log against its acknowledged records");
}

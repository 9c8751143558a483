//! The crash loop (issue #9): idempotent producers write to a `sync` stream while the
//! server is killed with SIGKILL at random moments and restarted in place, round after
//! round; at the end every partition is read back and checked against what was
//! acknowledged. The `crashloop` binary runs it by hand; a test runs a short form.
//!
//! What must hold: every acknowledged record is stored exactly once, at the offset its
//! acknowledgement gave, in its producer's order within the partition; no record is
//! stored twice (acknowledged or not); offsets are dense from 0. A record whose send
//! failed for good may be stored or not (at most once).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tributary_client::{Client, Delivery, Producer, ProducerConfig, Record};
use tributary_proto::v1;

use crate::{Server, create_stream};

const STREAM: &str = "/crash/loop";
const TOPIC: &str = "/crash/loop:t";
/// How long the producers get to settle their outstanding records at the end.
const SETTLE: Duration = Duration::from_secs(120);

/// One run's settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// Kills and restarts.
    pub rounds: u32,
    /// Seeds the kill moments and record sizes; the same seed gives the same schedule.
    pub seed: u64,
    /// Concurrent idempotent producers, each on its own connection.
    pub producers: u32,
    pub partitions: u32,
    /// The server runs for a random time up to this long before each kill.
    pub max_uptime: Duration,
    /// Records a producer may have unacknowledged at once.
    pub window: usize,
    /// Records per second each producer offers (the crash loop is about kills, not speed;
    /// this keeps a long run's disk use in bounds).
    pub rate: u64,
    /// Where the data directory goes (a fresh temporary directory inside it); it is kept
    /// when a check fails.
    pub work_dir: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            rounds: 5,
            seed: 1,
            producers: 4,
            partitions: 4,
            max_uptime: Duration::from_millis(1500),
            window: 2000,
            rate: 2000,
            work_dir: None,
        }
    }
}

/// What a run did and found.
#[derive(Debug, Default)]
pub struct Report {
    pub rounds: u32,
    /// Records sent and acknowledged.
    pub acknowledged: u64,
    /// Records whose send failed for good (the server was away past the retries).
    pub failed: u64,
    /// Of those, the ones stored anyway (their outcome was unknown to the producer).
    pub failed_but_stored: u64,
    /// Records read back and checked.
    pub checked: u64,
    /// Restart times, from the kill to `listening`.
    pub restart_ms: Vec<u64>,
    pub elapsed: Duration,
    /// Broken promises found (the first `MAX_LISTED`); none when the run passed.
    pub violations: Vec<String>,
    pub violation_count: u64,
    /// The data directory, when kept for a look after a failure.
    pub kept_dir: Option<PathBuf>,
}

/// Violations listed in a report; the rest are only counted.
const MAX_LISTED: usize = 50;

impl Report {
    fn violation(&mut self, what: String) {
        self.violation_count += 1;
        if self.violations.len() < MAX_LISTED {
            self.violations.push(what);
        }
    }

    pub fn passed(&self) -> bool {
        self.violation_count == 0
    }
}

/// The value of a record: who sent it and its place in that producer's sequence.
fn value(producer: u32, seq: u64, pad: usize) -> Vec<u8> {
    let mut v = format!("p{producer}:s{seq}:").into_bytes();
    v.resize(v.len() + pad, b'.');
    v
}

fn parse(value: &[u8]) -> Option<(u32, u64)> {
    let text = std::str::from_utf8(value).ok()?;
    let mut parts = text.split(':');
    let p = parts.next()?.strip_prefix('p')?.parse().ok()?;
    let s = parts.next()?.strip_prefix('s')?.parse().ok()?;
    Some((p, s))
}

/// Outcome of each record, by `(producer, seq)`.
#[derive(Debug, Default)]
struct Outcomes {
    acked: HashMap<(u32, u64), Delivery>,
    failed: HashMap<(u32, u64), String>,
}

/// Runs the crash loop. `Err` is for a run that could not be carried out (a server that
/// will not start is a violation, reported in the `Report`).
pub async fn run(opts: &Options) -> anyhow::Result<Report> {
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let tmp = match &opts.work_dir {
        Some(d) => tempfile::Builder::new().prefix("crashloop").tempdir_in(d)?,
        None => tempfile::Builder::new().prefix("crashloop").tempdir()?,
    };
    let mut server = Server::builder()
        .data_dir(tmp.path())
        .try_start()
        .context("starting the server")?;
    let admin = server.client().await;
    create_stream(
        &admin,
        STREAM,
        v1::StreamAttributes {
            ttl_ms: Some(0),
            durability: v1::Durability::Sync as i32,
            ..Default::default()
        },
    )
    .await;
    admin
        .admin()
        .create_topic(v1::CreateTopicRequest {
            path: TOPIC.into(),
            partitions: Some(opts.partitions),
        })
        .await?;
    let durability = admin
        .admin()
        .describe_stream(v1::DescribeStreamRequest {
            path: STREAM.into(),
        })
        .await?
        .into_inner()
        .attributes
        .map(|a| a.durability);
    anyhow::ensure!(
        durability == Some(v1::Durability::Sync as i32),
        "the stream's durability is {durability:?}, not sync"
    );
    let token = server.admin_token();

    let stop = Arc::new(AtomicBool::new(false));
    let mut producers = Vec::new();
    let mut progress = Vec::new();
    for p in 0..opts.producers {
        let client = Client::connect(&server.url, Some(&token)).await?;
        let pad = rng.random_range(16..128);
        let counts = Arc::new(Progress::default());
        progress.push(counts.clone());
        producers.push(tokio::spawn(produce(
            client,
            p,
            pad,
            (opts.window, opts.rate),
            stop.clone(),
            counts,
        )));
    }

    let mut report = Report::default();
    for round in 1..=opts.rounds {
        let uptime = rng.random_range(0..=opts.max_uptime.as_millis() as u64);
        tokio::time::sleep(Duration::from_millis(uptime)).await; // the random moment of the kill
        server.kill9();
        let t = Instant::now();
        if let Err(e) = server.try_restart_in_place() {
            report.violation(format!("round {round}: the server did not restart: {e:#}"));
            break;
        }
        report.restart_ms.push(t.elapsed().as_millis() as u64);
        report.rounds = round;
        let counts: Vec<String> = progress.iter().map(|p| p.to_string()).collect();
        log(&format!(
            "round {round}: killed after {uptime} ms up, back in {} ms; producers (sent/settled ok/failed): {}",
            t.elapsed().as_millis(),
            counts.join(" ")
        ));
    }

    stop.store(true, Ordering::Relaxed);
    let mut outcomes = Outcomes::default();
    for (p, task) in producers.into_iter().enumerate() {
        // The server is up: every outstanding record gets its outcome, or this is a hang.
        let Ok(done) = tokio::time::timeout(SETTLE, task).await else {
            report.violation(format!(
                "producer {p}: records still without an outcome {SETTLE:?} after the last restart ({})",
                progress[p]
            ));
            continue;
        };
        let o = done?.with_context(|| format!("producer {p} stopped"))?;
        outcomes.acked.extend(o.acked);
        outcomes.failed.extend(o.failed);
    }
    report.acknowledged = outcomes.acked.len() as u64;
    report.failed = outcomes.failed.len() as u64;
    if report.passed() {
        let reader = Client::connect(&server.url, Some(&token)).await?;
        let logs = read_all(&reader, opts.partitions).await?;
        verify(&logs, &outcomes, &mut report);
    }
    report.elapsed = started.elapsed();
    if !report.passed() {
        server.kill9();
        report.kept_dir = Some(tmp.keep());
    }
    Ok(report)
}

/// Progress lines go to stderr, so stdout carries only the summary.
fn log(line: &str) {
    eprintln!("{line}");
}

/// One producer's counts, for the progress lines.
#[derive(Debug, Default)]
struct Progress {
    sent: AtomicU64,
    acked: AtomicU64,
    failed: AtomicU64,
}

impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        write!(
            f,
            "{}/{}/{}",
            get(&self.sent),
            get(&self.acked),
            get(&self.failed)
        )
    }
}

/// One producer: sends numbered records until told to stop, then waits for every
/// outcome.
async fn produce(
    client: Client,
    producer: u32,
    pad: usize,
    (window, rate): (usize, u64),
    stop: Arc<AtomicBool>,
    counts: Arc<Progress>,
) -> anyhow::Result<Outcomes> {
    let config = ProducerConfig {
        linger: Duration::from_millis(2),
        batch_bytes: 16 << 10,
        // Enough to ride out any restart; an exhausted batch is counted, not hidden.
        retries: 100,
        retry_backoff: Duration::from_millis(50),
        request_timeout: Duration::from_secs(10),
        ..ProducerConfig::default()
    };
    let producer_handle = Producer::new(client, config).await?;
    let mut outcomes = Outcomes::default();
    let mut pending = VecDeque::new();
    let mut seq = 0u64;
    let settle = |outcomes: &mut Outcomes, seq: u64, r: Result<Result<Delivery, String>, _>| match r
    {
        Ok(Ok(d)) => {
            outcomes.acked.insert((producer, seq), d);
            counts.acked.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Err(e)) => {
            outcomes.failed.insert((producer, seq), e);
            counts.failed.fetch_add(1, Ordering::Relaxed);
        }
        Err(_) => {
            outcomes
                .failed
                .insert((producer, seq), "the producer dropped the record".into());
            counts.failed.fetch_add(1, Ordering::Relaxed);
        }
    };
    let started = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        // Paced: never ahead of `rate` records per second since the start.
        let due = Duration::from_secs_f64(seq as f64 / rate as f64);
        if let Some(early) = due.checked_sub(started.elapsed()) {
            tokio::time::sleep(early).await;
        }
        let record = Record {
            value: Some(value(producer, seq, pad).into()),
            ..Default::default()
        };
        pending.push_back((seq, producer_handle.send(TOPIC, record).await?));
        seq += 1;
        counts.sent.store(seq, Ordering::Relaxed);
        if pending.len() >= window {
            let (s, rx) = pending.pop_front().expect("not empty");
            settle(&mut outcomes, s, rx.await);
        }
    }
    producer_handle.flush().await?;
    for (s, rx) in pending {
        settle(&mut outcomes, s, rx.await);
    }
    Ok(outcomes)
}

/// One partition as read back: its log-start offset, and each record's offset and who
/// sent it (`None`: a value no producer writes).
#[derive(Debug, Default)]
struct PartitionLog {
    log_start: u64,
    records: Vec<(u64, Option<(u32, u64)>)>,
}

/// Reads every partition from 0 to its high-water mark.
async fn read_all(client: &Client, partitions: u32) -> anyhow::Result<Vec<PartitionLog>> {
    let mut logs = Vec::new();
    for partition in 0..partitions {
        let mut log = PartitionLog::default();
        let mut offset = 0;
        loop {
            let f = client
                .fetch(TOPIC, partition, offset, 8 << 20, Duration::ZERO)
                .await?;
            log.log_start = f.log_start_offset;
            for r in f.records {
                offset = r.offset + 1;
                log.records.push((
                    r.offset,
                    parse(r.record.value.as_deref().unwrap_or_default()),
                ));
            }
            if offset >= f.high_watermark {
                break;
            }
            if log.records.last().is_none_or(|(o, _)| *o + 1 != offset) {
                bail!(
                    "partition {partition}: an empty fetch at {offset} below the high-water mark {}",
                    f.high_watermark
                );
            }
        }
        logs.push(log);
    }
    Ok(logs)
}

/// Checks the partitions read back (index = partition) against the outcomes.
fn verify(logs: &[PartitionLog], outcomes: &Outcomes, report: &mut Report) {
    let mut stored: HashMap<(u32, u64), (u32, u64)> = HashMap::new();
    for (partition, log) in (0u32..).zip(logs) {
        if log.log_start != 0 {
            report.violation(format!(
                "partition {partition}: the log starts at {}, not 0",
                log.log_start
            ));
        }
        // The last acknowledged sequence seen per producer in this partition.
        let mut last: BTreeMap<u32, u64> = BTreeMap::new();
        let mut expected = 0;
        for &(offset, sender) in &log.records {
            if offset != expected {
                report.violation(format!(
                    "partition {partition}: offset {offset} where {expected} was due: not dense"
                ));
            }
            expected = offset + 1;
            report.checked += 1;
            let Some(id) = sender else {
                report.violation(format!(
                    "partition {partition} offset {offset}: a record that no producer sent"
                ));
                continue;
            };
            if let Some(first) = stored.insert(id, (partition, offset)) {
                report.violation(format!(
                    "producer {} seq {}: stored twice, at {first:?} and {:?}",
                    id.0,
                    id.1,
                    (partition, offset)
                ));
            }
            if outcomes.acked.contains_key(&id) {
                if let Some(prev) = last.insert(id.0, id.1)
                    && prev >= id.1
                {
                    report.violation(format!(
                        "partition {partition} offset {offset}: producer {} seq {} after seq {prev}: out of order",
                        id.0, id.1
                    ));
                }
            } else if outcomes.failed.contains_key(&id) {
                report.failed_but_stored += 1;
            } else {
                report.violation(format!(
                    "partition {partition} offset {offset}: producer {} seq {} was never sent",
                    id.0, id.1
                ));
            }
        }
    }
    for (id, d) in &outcomes.acked {
        match stored.get(id) {
            Some(&at) if at == (d.partition, d.offset) => {}
            Some(at) => report.violation(format!(
                "producer {} seq {}: acknowledged at {:?}, stored at {at:?}",
                id.0,
                id.1,
                (d.partition, d.offset)
            )),
            None => report.violation(format!(
                "producer {} seq {}: acknowledged at {:?}, missing",
                id.0,
                id.1,
                (d.partition, d.offset)
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_name_their_producer_and_sequence() {
        let v = value(7, 123_456, 40);
        assert_eq!(parse(&v), Some((7, 123_456)));
        assert_eq!(parse(b"p1:x"), None);
    }

    /// Producer 0 sent seqs 0..4, acknowledged at offsets 0..4 of partition 0; seq 4
    /// failed for good.
    type Records = Vec<(u64, Option<(u32, u64)>)>;

    fn sent() -> (Outcomes, Records) {
        let mut o = Outcomes::default();
        for seq in 0..4 {
            let d = Delivery {
                partition: 0,
                offset: seq,
            };
            o.acked.insert((0, seq), d);
        }
        o.failed.insert((0, 4), "UNAVAILABLE".into());
        let records = (0..4).map(|s| (s, Some((0, s)))).collect();
        (o, records)
    }

    fn violations(records: Records, o: &Outcomes) -> Vec<String> {
        let mut r = Report::default();
        let logs = [PartitionLog {
            log_start: 0,
            records,
        }];
        verify(&logs, o, &mut r);
        assert_eq!(r.violation_count as usize, r.violations.len());
        r.violations
    }

    #[test]
    fn the_check_passes_what_was_acknowledged_and_finds_each_broken_promise() {
        let (o, good) = sent();
        assert!(violations(good.clone(), &o).is_empty());
        // A failed send may be stored once.
        let mut with_failed = good.clone();
        with_failed.push((4, Some((0, 4))));
        assert!(violations(with_failed, &o).is_empty());

        let lost = good[..3].to_vec();
        let v = violations(lost, &o);
        assert!(v[0].contains("seq 3") && v[0].contains("missing"), "{v:?}");

        let mut twice = good.clone();
        twice.push((4, Some((0, 3))));
        let v = violations(twice, &o);
        assert!(v.iter().any(|v| v.contains("stored twice")), "{v:?}");

        let mut swapped = good.clone();
        swapped.swap(1, 2);
        swapped[1].0 = 1;
        swapped[2].0 = 2;
        let v = violations(swapped, &o);
        assert!(v.iter().any(|v| v.contains("out of order")), "{v:?}");
        assert!(v.iter().any(|v| v.contains("stored at")), "{v:?}");

        let mut gap = good.clone();
        gap[3].0 = 5;
        let v = violations(gap, &o);
        assert!(v.iter().any(|v| v.contains("not dense")), "{v:?}");

        let mut stranger = good;
        stranger.push((4, Some((9, 0))));
        stranger.push((5, None));
        let v = violations(stranger, &o);
        assert!(v.iter().any(|v| v.contains("never sent")), "{v:?}");
        assert!(v.iter().any(|v| v.contains("no producer sent")), "{v:?}");
    }
}

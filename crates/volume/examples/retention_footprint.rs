//! Retention's disk footprint, measured on the real store through the namespace (the
//! produce path without gRPC), with an injected clock so a simulated day takes minutes.
//!
//! - `purge`: writes `--mib` MiB of records into a stream with a 1-hour TTL, measures the
//!   data directory, moves the clock two hours on, times one retention run, and measures
//!   again.
//! - `day`: a stream with a `--ttl-min` TTL and steady traffic (`--mib-per-hour`) over
//!   `--hours` simulated hours: every `--step-min` minutes it produces that step's records,
//!   moves the clock and runs retention, and samples the footprint once per hour.
//! - `compact`: a compacted changelog stream takes `--mib` MiB of updates to `--keys` keys;
//!   it measures, times one `stream purge` (a forced compaction pass), measures again, and
//!   reads everything back to count the records left per key.
//!
//! The footprint is what `du` counts once RocksDB's background jobs are done: allocated
//! bytes of every file in the data directory, split into SST files, blob files (the
//! payloads), write-ahead logs and the rest.
//!
//! ```text
//! cargo run --release -p tributary-volume --example retention_footprint -- purge --mib 1024
//! cargo run --release -p tributary-volume --example retention_footprint -- day --hours 24
//! cargo run --release -p tributary-volume --example retention_footprint -- compact --mib 1024
//! ```
//!
//! Its tests run both on a small scale and check space bounds only (never time).

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use prost::Message;
use tributary_proto::v1::{Record, RecordBatch};
use tributary_storage::{Store, StoreOptions};
use tributary_volume::{Caller, Credential, ManualClock, Namespace, Quotas, StreamAttributesPatch};

const STREAM: &str = "/footprint/s";
const TOPIC: &str = "/footprint/s:t";
const MIB: u64 = 1 << 20;
const HOUR_MS: i64 = 3_600_000;

/// Allocated bytes in a data directory, by kind of file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Footprint {
    sst: u64,
    blob: u64,
    wal: u64,
    manifest: u64,
    /// RocksDB's own text log (`LOG`, `LOG.old.*`).
    info_log: u64,
    other: u64,
}

impl Footprint {
    fn of(dir: &Path) -> Footprint {
        let mut f = Footprint::default();
        let mut stack = vec![dir.to_owned()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).expect("read the data directory") {
                let e = e.expect("directory entry");
                // Files may vanish under us (RocksDB deletes obsolete ones): skip those.
                let Ok(m) = e.metadata() else { continue };
                if m.is_dir() {
                    stack.push(e.path());
                    continue;
                }
                let bytes = m.blocks() * 512;
                let name = e.file_name();
                let name = name.to_string_lossy();
                match name.rsplit('.').next() {
                    _ if name.starts_with("MANIFEST-") => f.manifest += bytes,
                    _ if name.starts_with("LOG") => f.info_log += bytes,
                    Some("sst") => f.sst += bytes,
                    Some("blob") => f.blob += bytes,
                    Some("log") if name.chars().next().is_some_and(|c| c.is_ascii_digit()) => {
                        f.wal += bytes
                    }
                    _ => f.other += bytes,
                }
            }
        }
        f
    }

    fn total(&self) -> u64 {
        self.sst + self.blob + self.wal + self.manifest + self.info_log + self.other
    }

    fn mib(&self) -> String {
        let m = |b: u64| format!("{:.1}", b as f64 / MIB as f64);
        format!(
            "{:>8} MiB (sst {}, blob {}, wal {}, manifest {}, LOG {}, other {})",
            m(self.total()),
            m(self.sst),
            m(self.blob),
            m(self.wal),
            m(self.manifest),
            m(self.info_log),
            m(self.other)
        )
    }
}

/// A store with one stream, a manual clock and the cluster admin.
struct Bench {
    dir: tempfile::TempDir,
    store: Arc<Store>,
    ns: Arc<Namespace>,
    clock: ManualClock,
    admin: Caller,
    partitions: u32,
    /// Records of one batch; `batch` is them encoded, unkeyed.
    records: Vec<Record>,
    batch: Bytes,
    batch_bytes: u64,
}

#[derive(Debug, Clone, Copy)]
struct Shape {
    partitions: u32,
    record_size: usize,
    batch_records: usize,
    ttl_ms: u64,
    /// A compacted stream (then without a TTL).
    compact: bool,
}

impl Bench {
    async fn start(shape: Shape) -> Bench {
        let dir = tempfile::Builder::new()
            .prefix("tributary-footprint-")
            .tempdir()
            .expect("temp dir");
        let db = dir.path().join("db");
        let store = Arc::new(Store::open(&db, &StoreOptions::default()).expect("open"));
        let clock = ManualClock::new(1_700_000_000_000);
        let ns = Arc::new(
            Namespace::open(store.clone(), Arc::new(clock.clone()))
                .await
                .expect("namespace"),
        );
        let token = ns.ensure_admin().await.unwrap().expect("a fresh store");
        let admin = ns.authenticate(&token).unwrap();
        ns.create_volume(&admin, "/footprint", None, None, Quotas::default())
            .await
            .unwrap();
        let attrs = StreamAttributesPatch {
            ttl_ms: Some(if shape.compact { 0 } else { shape.ttl_ms }),
            compact: Some(shape.compact),
            default_partitions: Some(shape.partitions),
            durability: Some(tributary_volume::Durability::Buffered),
            ..Default::default()
        };
        ns.create_stream(&admin, STREAM, &attrs).await.unwrap();
        // Incompressible values, as client-compressed payloads are.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let records: Vec<Record> = (0..shape.batch_records)
            .map(|_| {
                let value: Vec<u8> = (0..shape.record_size)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x as u8
                    })
                    .collect();
                Record {
                    value: Some(value.into()),
                    ..Default::default()
                }
            })
            .collect();
        let batch = Bytes::from(
            RecordBatch {
                records: records.clone(),
                ..Default::default()
            }
            .encode_to_vec(),
        );
        Bench {
            dir,
            store,
            ns,
            clock,
            admin,
            partitions: shape.partitions,
            records,
            batch_bytes: (shape.record_size * shape.batch_records) as u64,
            batch,
        }
    }

    /// The data directory's footprint once RocksDB's background jobs are done: a purge
    /// can return while an automatic compaction that took its range is still deleting
    /// the files (measured: 377–622 MiB of blob files left for ~0.2 s after purging 1 GiB).
    fn footprint(&self) -> Footprint {
        self.store
            .wait_for_background_work()
            .expect("background work");
        Footprint::of(self.dir.path())
    }

    /// Produces at least `bytes` of record values, spread over the partitions.
    async fn write(&self, bytes: u64) -> u64 {
        let mut written = 0;
        let mut p = 0;
        while written < bytes {
            self.ns
                .produce(&self.admin, TOPIC, Some(p), self.batch.clone())
                .await
                .expect("produce");
            written += self.batch_bytes;
            p = (p + 1) % self.partitions;
        }
        written
    }

    /// Produces at least `bytes` of record values as updates to `keys` keys in turn, routed
    /// by key.
    async fn write_keyed(&self, bytes: u64, keys: u64) -> u64 {
        let (mut written, mut next) = (0, 0u64);
        while written < bytes {
            let records = self
                .records
                .iter()
                .map(|r| {
                    next += 1;
                    Record {
                        key: Some(format!("key-{:08}", next % keys).into()),
                        ..r.clone()
                    }
                })
                .collect();
            let batch = RecordBatch {
                records,
                ..Default::default()
            };
            self.ns
                .produce(&self.admin, TOPIC, None, batch.encode_to_vec().into())
                .await
                .expect("produce");
            written += self.batch_bytes;
        }
        written
    }

    /// Every record of every partition, from each log start: (records, distinct keys).
    async fn read_all(&self) -> (u64, u64) {
        let (mut records, mut keys) = (0, HashSet::new());
        let admin = Credential::User(self.admin.name().to_owned());
        for p in 0..self.partitions {
            let mut offset = 0;
            loop {
                let f = self
                    .ns
                    .fetch(&admin, TOPIC, p, offset, 16 << 20, Duration::ZERO)
                    .await
                    .expect("fetch");
                for b in &f.batches {
                    let b = RecordBatch::decode(b.clone()).expect("a stored batch");
                    for (i, r) in b.records.into_iter().enumerate() {
                        let o = b.base_offset + i as u64;
                        if o >= offset {
                            records += 1;
                            keys.insert(r.key);
                            offset = o + 1;
                        }
                    }
                }
                if offset >= f.high_watermark || f.batches.is_empty() {
                    break;
                }
            }
        }
        (records, keys.len() as u64)
    }

    /// Bytes the stream holds, as retention counts them.
    async fn live_bytes(&self) -> u64 {
        let info = self.ns.describe_stream(&self.admin, STREAM).await.unwrap();
        info.totals.bytes
    }
}

#[derive(Debug)]
struct PurgeFigures {
    written: u64,
    before: Footprint,
    after: Footprint,
    purge_time: Duration,
    purged_bytes: u64,
}

async fn purge_run(mib: u64, shape: Shape) -> PurgeFigures {
    let b = Bench::start(shape).await;
    let written = b.write(mib * MIB).await;
    let before = b.footprint();
    b.clock.advance_ms(2 * HOUR_MS);
    let start = Instant::now();
    let purged = b.ns.run_retention().await.expect("retention");
    let purge_time = start.elapsed();
    let after = b.footprint();
    assert_eq!(b.live_bytes().await, 0, "everything expired");
    PurgeFigures {
        written,
        before,
        after,
        purge_time,
        purged_bytes: purged.bytes,
    }
}

#[derive(Debug)]
struct CompactFigures {
    written: u64,
    before: Footprint,
    after: Footprint,
    compact_time: Duration,
    freed_bytes: u64,
    records_left: u64,
    keys_left: u64,
}

async fn compact_run(mib: u64, keys: u64, shape: Shape) -> CompactFigures {
    let b = Bench::start(Shape {
        compact: true,
        ..shape
    })
    .await;
    let written = b.write_keyed(mib * MIB, keys).await;
    let before = b.footprint();
    let start = Instant::now();
    let purged = b.ns.purge_stream(&b.admin, STREAM).await.expect("purge");
    let compact_time = start.elapsed();
    let after = b.footprint();
    let (records_left, keys_left) = b.read_all().await;
    CompactFigures {
        written,
        before,
        after,
        compact_time,
        freed_bytes: purged.bytes,
        records_left,
        keys_left,
    }
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    hour: u64,
    written: u64,
    live: u64,
    disk: Footprint,
    /// Longest retention run in the hour.
    slowest_purge: Duration,
}

async fn day_run(hours: u64, step_min: u64, mib_per_hour: u64, shape: Shape) -> Vec<Sample> {
    let b = Bench::start(shape).await;
    let steps_per_hour = 60 / step_min;
    let per_step = mib_per_hour * MIB / steps_per_hour;
    let mut written = 0;
    let mut samples = Vec::new();
    for hour in 1..=hours {
        let mut slowest = Duration::ZERO;
        for _ in 0..steps_per_hour {
            written += b.write(per_step).await;
            b.clock.advance_ms(step_min as i64 * 60_000);
            let start = Instant::now();
            b.ns.run_retention().await.expect("retention");
            slowest = slowest.max(start.elapsed());
        }
        samples.push(Sample {
            hour,
            written,
            live: b.live_bytes().await,
            disk: b.footprint(),
            slowest_purge: slowest,
        });
    }
    samples
}

fn flag(args: &[String], name: &str, default: u64) -> u64 {
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} takes a number")),
        None => default,
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let shape = Shape {
        partitions: flag(&args, "--partitions", 4) as u32,
        record_size: flag(&args, "--record-size", 1024) as usize,
        batch_records: flag(&args, "--batch-records", 256) as usize,
        ttl_ms: flag(&args, "--ttl-min", 60) * 60_000,
        compact: false,
    };
    match args.first().map(String::as_str) {
        Some("purge") => {
            let f = purge_run(flag(&args, "--mib", 1024), shape).await;
            println!("{shape:?}");
            println!("written       {} MiB of record values", f.written / MIB);
            println!("before purge  {}", f.before.mib());
            println!("after purge   {}", f.after.mib());
            println!(
                "purge         {:.2} s, {} MiB freed (stored batch bytes)",
                f.purge_time.as_secs_f64(),
                f.purged_bytes / MIB
            );
        }
        Some("compact") => {
            let keys = flag(&args, "--keys", 10_000);
            let f = compact_run(flag(&args, "--mib", 1024), keys, shape).await;
            println!("{shape:?} (compacted, no TTL), {keys} keys");
            println!("written       {} MiB of record values", f.written / MIB);
            println!("before        {}", f.before.mib());
            println!("after         {}", f.after.mib());
            println!(
                "compaction    {:.2} s, {} MiB freed (stored batch bytes)",
                f.compact_time.as_secs_f64(),
                f.freed_bytes / MIB
            );
            println!(
                "left          {} records, {} distinct keys",
                f.records_left, f.keys_left
            );
        }
        Some("day") => {
            let hours = flag(&args, "--hours", 24);
            let step = flag(&args, "--step-min", 5);
            let rate = flag(&args, "--mib-per-hour", 256);
            println!("{shape:?}, {rate} MiB/h, retention every {step} simulated minutes");
            println!("hour  written MiB  live MiB  slowest purge  disk");
            for s in day_run(hours, step, rate, shape).await {
                println!(
                    "{:>4}  {:>11}  {:>8}  {:>11.2}s  {}",
                    s.hour,
                    s.written / MIB,
                    s.live / MIB,
                    s.slowest_purge.as_secs_f64(),
                    s.disk.mib()
                );
            }
        }
        _ => {
            eprintln!(
                "usage: retention_footprint purge|day|compact [--mib N] [--keys N] [--hours N]"
            );
            eprintln!("       [--step-min N]");
            eprintln!("       [--mib-per-hour N] [--ttl-min N] [--partitions N] [--record-size N]");
            eprintln!("       [--batch-records N]");
            std::process::exit(2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Shape {
        Shape {
            partitions: 2,
            record_size: 1024,
            batch_records: 64,
            ttl_ms: HOUR_MS as u64,
            compact: false,
        }
    }

    #[tokio::test]
    async fn compaction_keeps_one_record_per_key_and_frees_the_rest() {
        let f = compact_run(32, 500, small()).await;
        assert_eq!((f.records_left, f.keys_left), (500, 500), "{f:?}");
        assert!(f.freed_bytes > f.written * 9 / 10, "{f:?}");
        let payloads = |d: &Footprint| d.blob + d.wal + d.sst;
        assert!(payloads(&f.after) < f.written / 4, "{f:?}");
    }

    #[tokio::test]
    async fn purging_frees_the_disk_space() {
        let f = purge_run(64, small()).await;
        assert!(f.purged_bytes >= f.written, "{f:?}");
        let payloads = |d: &Footprint| d.blob + d.wal + d.sst;
        assert!(payloads(&f.before) >= f.written, "on disk first: {f:?}");
        assert!(payloads(&f.after) < f.written / 16, "then gone: {f:?}");
    }

    #[tokio::test]
    async fn steady_traffic_under_a_ttl_keeps_a_flat_footprint() {
        let samples = day_run(6, 10, 16, small()).await;
        let kept = samples[1].disk.total();
        for s in &samples[1..] {
            assert!(
                s.live <= 18 * MIB,
                "at most an hour and a step is live: {s:?}"
            );
            assert!(
                s.disk.total() <= kept + 32 * MIB,
                "the footprint stays flat after the first TTL: {s:?} vs {kept}"
            );
        }
        assert!(samples[5].written >= 6 * 16 * MIB);
    }
}

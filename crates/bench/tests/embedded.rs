//! Short `--embedded` runs of each workload: they must finish without errors and their
//! counts must add up. No speed is asserted; the machine is shared.

use clap::Parser;
use tributary_bench::{BenchArgs, BoxError, Report, Workload};
use tributary_client::Client;

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    bench: BenchArgs,
}

async fn try_bench(flags: &[&str]) -> Result<Report, tributary_bench::Error> {
    let argv = ["bench", "--embedded", "--duration", "1s", "--warmup", "0"];
    let args = Cli::parse_from(argv.iter().chain(flags)).bench;
    tributary_bench::run(
        &args,
        async || -> Result<Client, BoxError> {
            Err("an embedded run opens no outside connection".into())
        },
        None,
    )
    .await
}

async fn bench(flags: &[&str]) -> Report {
    try_bench(flags)
        .await
        .unwrap_or_else(|e| panic!("bench {flags:?}: {e:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_acknowledges_records() {
    let r = bench(&["produce", "--rate", "200000"]).await;
    assert_eq!(r.workload, Workload::Produce);
    assert!(r.produce.records > 0, "{r}");
    assert!(r.produced >= r.produce.records, "{r}");
    assert_eq!(r.produce.bytes, r.produce.records * 100);
    assert!(r.produce.latency.count > 0, "{r}");
    assert!(r.consume.is_none());
    let json = r.to_json();
    assert_eq!(json["workload"], "produce");
    assert_eq!(json["params"]["producers"], 2);
    assert!(json["produce"]["ack_latency_ms"]["p99_9"].is_number());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_reads_back_everything_produced() {
    let r = bench(&[
        "consume",
        "--rate",
        "200000",
        "--topics",
        "2",
        "--partitions",
        "3",
        "--consumers",
        "2",
        "--keyed",
    ])
    .await;
    let c = r.consume.as_ref().expect("consume figures");
    assert!(r.produced > 0, "{r}");
    assert_eq!(r.consumed, r.produced, "{r}");
    assert_eq!(c.records, r.produced, "{r}");
    assert!(c.latency.count > 0, "{r}");
    assert!(r.to_json()["consume"]["fetch_latency_ms"]["p50"].is_number());
}

/// `--cold`: the server's memtables are flushed and its files evicted from the page cache
/// between the fill and the read, and every record still comes back. The embedded server
/// runs in this process, so the bytes it read from the block device are this process's
/// `read_bytes`: at least every payload, or the read was served from memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_cold_reads_back_everything_from_disk() {
    let before = read_bytes();
    let r = bench(&["consume", "--cold", "--rate", "100000"]).await;
    let read = read_bytes() - before;
    assert!(r.produced > 0, "{r}");
    assert_eq!(r.consumed, r.produced, "{r}");
    assert!(
        read >= r.produced * 100,
        "{read} bytes read from the device for {} records of 100 B",
        r.produced
    );
    assert_eq!(r.to_json()["params"]["cold"], true);
    assert!(r.to_string().contains("from disk (--cold)"), "{r}");
}

/// Bytes this process has caused to be read from storage (Linux task I/O accounting).
fn read_bytes() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").expect("/proc/self/io");
    io.lines()
        .find_map(|l| l.strip_prefix("read_bytes: "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no read_bytes in /proc/self/io: {io}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_delivers_every_record_produced() {
    let r = bench(&[
        "e2e",
        "--rate",
        "50000",
        "--durability",
        "sync",
        "--producers",
        "3",
        "--record-size",
        "64",
    ])
    .await;
    let e = r.consume.as_ref().expect("e2e figures");
    assert!(r.produced > 0, "{r}");
    assert_eq!(r.consumed, r.produced, "{r}");
    // Every record sent in the window is timed; without warmup that is nearly all of them.
    assert!(e.latency.count > 0 && e.latency.count <= r.produced, "{r}");
    assert!(e.latency.p50_ms <= e.latency.max_ms, "{r}");
    let json = r.to_json();
    assert_eq!(json["produced"], json["consumed"]);
    assert!(json["e2e"]["latency_ms"]["max"].is_number());
}

/// `--protocol kafka`: the same load through the Kafka listener with librdkafka; every
/// record produced through it is read back through it, keyed records included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_through_the_kafka_door_reads_back_everything() {
    let r = bench(&[
        "consume",
        "--protocol",
        "kafka",
        "--rate",
        "50000",
        "--partitions",
        "3",
        "--keyed",
    ])
    .await;
    let c = r.consume.as_ref().expect("consume figures");
    assert_eq!(r.system, "tributary-kafka");
    assert!(r.produced > 0, "{r}");
    assert_eq!(r.consumed, r.produced, "{r}");
    assert_eq!(c.records, r.produced, "{r}");
    assert_eq!(r.to_json()["params"]["protocol"], "kafka");
}

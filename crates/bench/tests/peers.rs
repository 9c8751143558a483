//! The peer drivers against real servers: short runs of each workload on a `redis-server`
//! and a `nats-server` started on loopback with a temporary directory; the counts must add
//! up, as for Tributary. No speed is asserted. The servers are found through
//! `TRIBUTARY_REDIS_SERVER` and `TRIBUTARY_NATS_SERVER` (set by `bench/peers.sh`, which
//! `scripts/test.sh` and `bench/compare.sh` run), or on the PATH; a missing one fails.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use tributary_bench::peers::{self, Peer};
use tributary_bench::{BenchArgs, Report};

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    bench: BenchArgs,
}

/// A peer server on loopback; killed and its directory removed on drop.
struct Server {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server `env` names, or the first `name` on the PATH or at one of `extra`; a test
/// that cannot find its server fails rather than pass without running.
fn find(env: &str, name: &str, extra: &[PathBuf]) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .chain(extra.iter().cloned())
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} is not installed: `source bench/peers.sh` installs it (scripts/test.sh does)")
        })
}

fn free_port() -> u16 {
    let l = TcpListener::bind(("127.0.0.1", 0)).expect("bind 127.0.0.1:0");
    l.local_addr().expect("local address").port()
}

fn start(
    program: &Path,
    args: &[String],
    dir: tempfile::TempDir,
    port: u16,
    url: String,
) -> Server {
    let log = std::fs::File::create(dir.path().join("server.log")).expect("log file");
    let child = Command::new(program)
        .args(args)
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()));
    let server = Server {
        child,
        url,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{} did not listen on port {port}",
            program.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server
}

fn redis() -> Server {
    let program = find("TRIBUTARY_REDIS_SERVER", "redis-server", &[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let args = [
        "--bind",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--dir",
        dir.path().to_str().expect("UTF-8 temp dir"),
        "--appendonly",
        "yes",
        "--save",
        "",
    ]
    .map(String::from);
    start(
        &program,
        &args,
        dir,
        port,
        format!("redis://127.0.0.1:{port}"),
    )
}

fn nats() -> Server {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".cache"));
    let venv = cache.join("tributary/nats-server-venv/bin/nats-server");
    let program = find("TRIBUTARY_NATS_SERVER", "nats-server", &[venv]);
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let conf = dir.path().join("nats.conf");
    std::fs::write(
        &conf,
        format!(
            "listen: 127.0.0.1:{port}\njetstream {{ store_dir: {:?} }}\n",
            dir.path().join("js")
        ),
    )
    .expect("nats.conf");
    let args = ["-c".to_owned(), conf.to_str().expect("UTF-8").to_owned()];
    start(
        &program,
        &args,
        dir,
        port,
        format!("nats://127.0.0.1:{port}"),
    )
}

async fn bench(peer: Peer, url: &str, flags: &[&str]) -> Report {
    let argv = ["bench", "--duration", "1s", "--warmup", "0"];
    let args = Cli::parse_from(argv.iter().chain(flags)).bench;
    peers::run(peer, url, &args)
        .await
        .unwrap_or_else(|e| panic!("{} {flags:?}: {e:?}", peer.name()))
}

/// Each workload once: produce, consume (everything read back), e2e (every record
/// delivered and timed).
async fn workloads(peer: Peer, url: &str) {
    let r = bench(peer, url, &["produce", "--rate", "20000"]).await;
    assert_eq!(r.system, peer.name());
    assert!(
        r.produce.records > 0 && r.produced >= r.produce.records,
        "{r}"
    );
    assert!(r.produce.latency.count > 0, "{r}");

    let r = bench(
        peer,
        url,
        &[
            "consume",
            "--rate",
            "20000",
            "--partitions",
            "3",
            "--batch-records",
            "100",
        ],
    )
    .await;
    let c = r.consume.as_ref().expect("consume figures");
    assert!(r.produced > 0, "{r}");
    assert_eq!(r.consumed, r.produced, "{r}");
    assert_eq!(c.records, r.produced, "{r}");

    let r = bench(
        peer,
        url,
        &[
            "e2e",
            "--rate",
            "5000",
            "--producers",
            "3",
            "--record-size",
            "64",
        ],
    )
    .await;
    let e = r.consume.as_ref().expect("e2e figures");
    assert_eq!(r.consumed, r.produced, "{r}");
    assert!(e.latency.count > 0 && e.latency.count <= r.produced, "{r}");
    assert_eq!(r.to_json()["system"], peer.name());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_streams_run_every_workload() {
    let server = redis();
    workloads(Peer::Redis, &server.url).await;
    // Sync durability is set on the server by the run itself.
    let r = bench(
        Peer::Redis,
        &server.url,
        &["produce", "--rate", "5000", "--durability", "sync"],
    )
    .await;
    assert!(r.produce.records > 0, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_jetstream_runs_every_workload() {
    let server = nats();
    workloads(Peer::Nats, &server.url).await;
}

#[tokio::test]
async fn peers_refuse_tributary_only_flags() {
    for flags in [
        ["produce", "--keyed"],
        ["produce", "--embedded"],
        ["consume", "--cold"],
    ] {
        let args = Cli::parse_from(["bench"].iter().chain(&flags)).bench;
        let e = peers::run(Peer::Redis, "redis://127.0.0.1:1", &args)
            .await
            .expect_err("refused");
        assert!(matches!(e, tributary_bench::Error::Invalid(_)), "{e:?}");
    }
}

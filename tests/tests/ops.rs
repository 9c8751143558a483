//! Operability end to end, on the real binary: the Prometheus endpoint scraped and parsed
//! strictly, gRPC health and reflection driven by grpcio's clients (not ours), the config
//! layers and `--check-config`, the per-RPC log span without payloads or tokens, an online
//! checkpoint restored into a second server, and the deployment examples.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use tonic::Code;
use tributary_client::{record, unkeyed};
use tributary_e2e::{
    Client, HttpAuth, Proxy, Server, binary, create_stream, http_get, http_get_as, prometheus,
    python, repo_root, wait_until,
};
use tributary_proto::v1;

/// A one-partition stream (and its volume), made by the cluster admin.
async fn one_partition_stream(client: &Client, path: &str) {
    let attributes = v1::StreamAttributes {
        default_partitions: Some(1),
        ..Default::default()
    };
    create_stream(client, path, attributes).await;
}

/// Produces `n` records of `size` bytes to `topic`, in batches of 10.
async fn produce(client: &Client, topic: &str, n: usize, size: usize) {
    for start in (0..n).step_by(10) {
        let batch = (start..n.min(start + 10))
            .map(|i| unkeyed(format!("{i:0size$}")))
            .collect();
        client.produce(topic, None, batch).await.unwrap();
    }
}

/// Every record value of `topic` partition 0, from offset 0.
async fn values(client: &Client, topic: &str) -> Vec<String> {
    let end = client.list_offsets(topic, &[0], true).await.unwrap()[0].1;
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < end {
        let f = client
            .fetch(topic, 0, offset, 1 << 20, Duration::ZERO)
            .await
            .unwrap();
        out.extend(
            f.records
                .iter()
                .map(|r| String::from_utf8_lossy(r.record.value.as_ref().unwrap()).into_owned()),
        );
        offset = f.next_offset;
    }
    out
}

#[tokio::test]
async fn metrics_endpoint_serves_the_promised_series() {
    let server = Server::start();
    let client = server.client().await;
    one_partition_stream(&client, "/m/iot/s").await;
    for t in ["a", "b", "c"] {
        produce(&client, &format!("/m/iot/s:{t}"), 30, 100).await;
    }
    assert_eq!(values(&client, "/m/iot/s:a").await.len(), 30);
    // Group `g` commits in two topics: 30 - 10 in a, 30 - 25 in b, nothing in c.
    let commit = |cursors: Vec<(&str, u64)>| v1::CommitOffsetsRequest {
        stream: "/m/iot/s".into(),
        group: "g".into(),
        cursors: cursors
            .into_iter()
            .map(|(topic, offset)| v1::CursorCommit {
                topic: topic.into(),
                partition: 0,
                offset,
            })
            .collect(),
        ..Default::default()
    };
    let mut consumer = client.consumer();
    consumer
        .commit_offsets(commit(vec![("a", 10), ("b", 25)]))
        .await
        .unwrap();
    let mut caught_up = commit(vec![("a", 30)]);
    caught_up.group = "done".into();
    consumer.commit_offsets(caught_up).await.unwrap();
    let denied = server.client_as(Some("trb_x.y")).await;
    denied
        .list_offsets("/m/iot/s:a", &[], true)
        .await
        .unwrap_err();

    let e = prometheus::parse(&server.scrape()).expect("valid exposition format");
    let produce_ok = [("rpc", "tributary.v1.Producer/Produce"), ("code", "OK")];
    assert_eq!(e.value("tributary_rpc_requests_total", &produce_ok), 9.0);
    assert_eq!(
        e.value(
            "tributary_rpc_requests_total",
            &[
                ("rpc", "tributary.v1.Consumer/ListOffsets"),
                ("code", "Unauthenticated")
            ]
        ),
        1.0
    );
    assert_eq!(e.types["tributary_rpc_duration_seconds"], "histogram");
    let produce_rpc = [("rpc", "tributary.v1.Producer/Produce")];
    assert_eq!(
        e.value("tributary_rpc_duration_seconds_count", &produce_rpc),
        9.0
    );
    assert!(e.value("tributary_rpc_duration_seconds_sum", &produce_rpc) > 0.0);

    // Data counters per volume and stream: three topics, one series.
    let stream = [("volume", "/m"), ("stream", "/m/iot/s")];
    assert_eq!(e.value("tributary_records_in_total", &stream), 90.0);
    assert!(e.value("tributary_bytes_in_total", &stream) > 90.0 * 100.0);
    assert_eq!(e.value("tributary_records_out_total", &stream), 30.0);
    assert!(e.value("tributary_bytes_out_total", &stream) > 30.0 * 100.0);
    // Consumer-group lag: one series per group, summed over its partitions.
    let lag = "tributary_group_lag_records";
    assert_eq!(e.types[lag], "gauge");
    let group = |g| [("volume", "/m"), ("stream", "/m/iot/s"), ("group", g)];
    assert_eq!(e.value(lag, &group("g")), 25.0);
    assert_eq!(e.value(lag, &group("done")), 0.0);
    assert_eq!(e.find(lag, &[]).len(), 2);
    for s in &e.samples {
        assert!(
            !s.labels.contains_key("topic") && !s.labels.contains_key("partition"),
            "no per-topic series: {s:?}"
        );
    }

    // Storage and engine figures.
    assert!(e.value("tributary_rocksdb_bytes_written_total", &[("kind", "user")]) > 9000.0);
    assert!(e.value("tributary_rocksdb_bytes_written_total", &[("kind", "wal")]) > 9000.0);
    assert!(e.value("tributary_rocksdb_memtable_bytes", &[]) > 0.0);
    // Both heaps: the server's own, and RocksDB's (this is glibc), which holds the memtables.
    assert!(e.value("tributary_memory_heap_bytes", &[("heap", "server")]) > 0.0);
    assert!(
        e.value("tributary_memory_heap_bytes", &[("heap", "engine")])
            >= e.value("tributary_rocksdb_memtable_bytes", &[])
    );
    assert!(e.value("tributary_rocksdb_write_amplification", &[]) >= 1.0);
    assert_eq!(e.value("tributary_rocksdb_write_stopped", &[]), 0.0);
    for gauge in [
        "tributary_storage_disk_bytes",
        "tributary_rocksdb_live_sst_bytes",
        "tributary_rocksdb_live_blob_bytes",
        "tributary_rocksdb_pending_compaction_bytes",
        "tributary_rocksdb_block_cache_bytes",
        "tributary_rocksdb_table_readers_bytes",
        "tributary_rocksdb_running_compactions",
        "tributary_rocksdb_delayed_write_rate_bytes",
    ] {
        assert!(e.value(gauge, &[]) >= 0.0, "{gauge}");
    }
    e.value("tributary_rocksdb_stall_microseconds_total", &[]);
    assert!(e.value("tributary_volume_bytes", &[("volume", "/m")]) > 9000.0);
    assert_eq!(
        e.value("tributary_volume_streams", &[("volume", "/m")]),
        1.0
    );
    assert_eq!(e.value("tributary_volume_topics", &[("volume", "/m")]), 3.0);
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        e.value("tributary_build_info", &[("version", version)]),
        1.0
    );
    assert!(e.help.contains_key("tributary_records_in_total"));

    // Lag follows new records and commits, and a deleted group leaves the next scrape.
    produce(&client, "/m/iot/s:c", 10, 10).await;
    consumer
        .commit_offsets(commit(vec![("a", 30), ("c", 35)]))
        .await
        .unwrap();
    let e = prometheus::parse(&server.scrape()).expect("valid exposition format");
    assert_eq!(e.value(lag, &group("g")), 5.0 + 5.0);
    server
        .cli()
        .args(["group", "delete", "/m/iot/s", "g"])
        .run()
        .ok();
    let e = prometheus::parse(&server.scrape()).expect("valid exposition format");
    assert_eq!(e.find(lag, &group("g")).len(), 0);
    assert_eq!(e.value(lag, &group("done")), 0.0);

    // Anything but GET /metrics is refused.
    let addr = server.metrics_addr.as_deref().unwrap();
    assert_eq!(http_get(addr, "/").unwrap().0, 404);

    // The endpoint can be turned off.
    let quiet = Server::builder().args(&["--metrics-listen", "off"]).start();
    assert_eq!(quiet.metrics_addr, None);
}

/// With `metrics_token_file` the endpoint answers only scrapes that send the file's token
/// (read at each scrape, so a rotated file takes effect at once); with `metrics_tls_*` it
/// speaks TLS only.
#[tokio::test]
async fn the_metrics_endpoint_asks_for_its_token_and_can_speak_tls() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("metrics.token");
    std::fs::write(&token_file, "s3cret-scrape-token\n").unwrap();
    let token_arg = token_file.to_str().unwrap();
    let server = Server::builder()
        .args(&["--metrics-token-file", token_arg])
        .start();
    let addr = server.metrics_addr.as_deref().unwrap();
    let with = |token| HttpAuth {
        token: Some(token),
        ..HttpAuth::default()
    };
    for (auth, path) in [
        (HttpAuth::default(), "/metrics"),
        (with("s3cret"), "/metrics"),
        (with("s3cret-scrape-token-and-more"), "/metrics"),
        (HttpAuth::default(), "/"),
    ] {
        let (status, body) = http_get_as(addr, path, auth).unwrap();
        assert_eq!((status, body.as_str()), (401, ""), "{auth:?} {path}");
    }
    let (status, body) = http_get_as(addr, "/metrics", with("s3cret-scrape-token")).unwrap();
    assert_eq!(status, 200);
    let e = prometheus::parse(&body).expect("valid exposition format");
    assert!(e.help.contains_key("tributary_build_info"));
    // The challenge names the scheme a client should use.
    let mut raw = std::net::TcpStream::connect(addr).unwrap();
    std::io::Write::write_all(&mut raw, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut head = String::new();
    std::io::Read::read_to_string(&mut raw, &mut head).unwrap();
    assert!(head.contains("\r\nWWW-Authenticate: Bearer"), "{head}");
    // Rotated in place.
    std::fs::write(&token_file, "n3w-token").unwrap();
    assert_eq!(
        http_get_as(addr, "/metrics", with("s3cret-scrape-token"))
            .unwrap()
            .0,
        401
    );
    assert_eq!(
        http_get_as(addr, "/metrics", with("n3w-token")).unwrap().0,
        200
    );
    assert!(server.scrape().contains("tributary_build_info"));

    // TLS, with the token too: a TLS scrape trusting the certificate works; plain HTTP
    // gets no answer.
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert_pem, key_pem) = (cert.cert.pem(), cert.signing_key.serialize_pem());
    let (cert_file, key_file) = (dir.path().join("m.crt"), dir.path().join("m.key"));
    std::fs::write(&cert_file, &cert_pem).unwrap();
    std::fs::write(&key_file, &key_pem).unwrap();
    let tls = Server::builder()
        .args(&[
            "--metrics-token-file",
            token_arg,
            "--metrics-tls-cert",
            cert_file.to_str().unwrap(),
            "--metrics-tls-key",
            key_file.to_str().unwrap(),
        ])
        .start();
    let addr = tls.metrics_addr.as_deref().unwrap();
    let over_tls = |token| HttpAuth {
        token,
        tls_ca_pem: Some(cert_pem.as_bytes()),
    };
    let (status, body) = http_get_as(addr, "/metrics", over_tls(Some("n3w-token"))).unwrap();
    assert_eq!(status, 200);
    prometheus::parse(&body).expect("valid exposition format");
    assert_eq!(
        http_get_as(addr, "/metrics", over_tls(None)).unwrap().0,
        401
    );
    let plain = http_get_as(addr, "/metrics", with("n3w-token"));
    assert!(plain.is_err(), "plain HTTP answered: {plain:?}");

    // A bad certificate file stops the start, naming what is wrong.
    std::fs::write(&cert_file, "not a certificate").unwrap();
    let e = Server::builder()
        .args(&[
            "--metrics-tls-cert",
            cert_file.to_str().unwrap(),
            "--metrics-tls-key",
            key_file.to_str().unwrap(),
        ])
        .try_start()
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("metrics endpoint TLS: certificate chain"), "{e}");
}

/// `admin_token_file` makes the first admin with the file's token (no `admin.token` is
/// written), which stays valid across restarts; a malformed file stops the start.
#[tokio::test]
async fn the_first_admin_token_can_come_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let token = format!("trb_0123456789abcdef.{}", "Zk9_-".repeat(9));
    let file = dir.path().join("admin-token");
    std::fs::write(&file, format!("{token}\n")).unwrap();
    let data = dir.path().join("data");
    let mut server = Server::builder()
        .args(&["--admin-token-file", file.to_str().unwrap()])
        .data_dir(&data)
        .start();
    assert!(
        !data.join("admin.token").exists(),
        "the token stays in its file"
    );
    let who = async |server: &Server, token: &str| {
        let client = server.client_as(Some(token)).await;
        let r = client.admin().who_am_i(v1::WhoAmIRequest {}).await;
        r.map(|u| u.into_inner().cluster_admin)
    };
    assert!(who(&server, &token).await.unwrap());
    server.kill9();
    server.restart_in_place();
    assert!(
        who(&server, &token).await.unwrap(),
        "still valid after a restart"
    );

    // Once the cluster has users, another file's token is ignored (and says so).
    let other = format!("trb_fedcba9876543210.{}", "a".repeat(40));
    std::fs::write(&file, &other).unwrap();
    server.kill9();
    server.restart_in_place();
    assert!(who(&server, &token).await.unwrap());
    assert_eq!(
        who(&server, &other).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    assert!(server.log().contains("the given admin token is ignored"));

    // A malformed one stops a fresh start, and says what a token looks like.
    std::fs::write(&file, "trb_short.x").unwrap();
    let fresh = dir.path().join("fresh");
    let e = Server::builder()
        .args(&["--admin-token-file", file.to_str().unwrap()])
        .data_dir(&fresh)
        .try_start()
        .err()
        .expect("refused")
        .to_string();
    assert!(
        e.contains("admin_token_file") && e.contains("trb_<16 lowercase hex digits>"),
        "{e}"
    );
}

/// `tributary_group_lag_seconds`: the age of the oldest record a group has yet to consume,
/// growing while it does not consume, 0 once caught up.
#[tokio::test]
async fn group_lag_in_seconds_ages_until_the_group_catches_up() {
    let server = Server::start();
    let client = server.client().await;
    one_partition_stream(&client, "/g/s").await;
    produce(&client, "/g/s:t", 30, 10).await;
    let commit = |offset| v1::CommitOffsetsRequest {
        stream: "/g/s".into(),
        group: "g".into(),
        cursors: vec![v1::CursorCommit {
            topic: "t".into(),
            partition: 0,
            offset,
        }],
        ..Default::default()
    };
    let mut consumer = client.consumer();
    consumer.commit_offsets(commit(10)).await.unwrap();
    let group = [("volume", "/g"), ("stream", "/g/s"), ("group", "g")];
    let seconds = |server: &Server| {
        let e = prometheus::parse(&server.scrape()).expect("valid exposition format");
        assert_eq!(e.types["tributary_group_lag_seconds"], "gauge");
        assert_eq!(e.value("tributary_group_lag_records", &group), 20.0);
        e.value("tributary_group_lag_seconds", &group)
    };
    let first = wait_until(
        "the group's lag has an age",
        Duration::from_secs(10),
        || async {
            let s = seconds(&server);
            (s > 0.0).then_some(s)
        },
    )
    .await;
    wait_until("the group's lag ages", Duration::from_secs(10), || async {
        (seconds(&server) > first).then_some(())
    })
    .await;
    consumer.commit_offsets(commit(30)).await.unwrap();
    let e = prometheus::parse(&server.scrape()).expect("valid exposition format");
    assert_eq!(e.value("tributary_group_lag_records", &group), 0.0);
    assert_eq!(e.value("tributary_group_lag_seconds", &group), 0.0);
}

/// The replication gauges through a cut link: up and nearly caught up; cut part-way through
/// a large copy, down with what it had yet to copy in records and bytes, and lag in seconds
/// growing while cut; back to 0 once restored.
#[tokio::test(flavor = "multi_thread")]
async fn replication_lag_gauges_follow_a_cut_link() {
    let (upstream, downstream) = (Server::start(), Server::start());
    let (cu, cd) = (upstream.client().await, downstream.client().await);
    one_partition_stream(&cu, "/r/s").await;
    one_partition_stream(&cd, "/r/s").await;
    produce(&cu, "/r/s:t", 10, 100).await;
    let proxy = Proxy::start(upstream.url.trim_start_matches("http://").parse().unwrap()).await;
    let from = format!("{}/r/s", proxy.url());
    let token = upstream.admin_token();
    let link = [
        "upstream",
        "add",
        "/r/s",
        "--from",
        &from,
        "--from-token",
        &token,
    ];
    downstream.cli().args(link).run().ok();
    let stream = [("stream", "/r/s")];
    let gauges = |server: &Server| {
        let e = prometheus::parse(&server.scrape()).expect("valid exposition format");
        let v = |name| e.value(name, &stream);
        (
            v("tributary_replication_link_up"),
            v("tributary_replication_lag_records"),
            v("tributary_replication_lag_bytes"),
            v("tributary_replication_lag_seconds"),
        )
    };
    let long = Duration::from_secs(60);
    wait_until("the link is up and caught up", long, || async {
        (gauges(&downstream) == (1.0, 0.0, 0.0, 0.0)).then_some(())
    })
    .await;

    // Cut, and write 8 MiB upstream while the link cannot see it; then let it back in
    // slowly: its first answer brings part of that and says how much there is.
    proxy.cut();
    wait_until("the link is down", long, || async {
        (gauges(&downstream).0 == 0.0).then_some(())
    })
    .await;
    produce(&cu, "/r/s:t", 2000, 4096).await;
    proxy.delay(Duration::from_millis(50));
    proxy.resume();
    wait_until("the link is back with records to copy", long, || async {
        let (up, records, bytes, _) = gauges(&downstream);
        (up == 1.0 && records > 0.0 && bytes > records * 1000.0).then_some(())
    })
    .await;
    proxy.cut();
    let (_, records, bytes, seconds) = wait_until("the link is down", long, || async {
        let g = gauges(&downstream);
        (g.0 == 0.0).then_some(g)
    })
    .await;
    assert!(records > 0.0 && bytes > 0.0, "{records} {bytes}");
    wait_until("lag in seconds grows while cut", long, || async {
        let g = gauges(&downstream);
        assert_eq!(
            (g.0, g.1, g.2),
            (0.0, records, bytes),
            "as last seen while cut"
        );
        (g.3 > seconds).then_some(())
    })
    .await;

    proxy.delay(Duration::ZERO);
    proxy.resume();
    wait_until("the link is back and caught up", long, || async {
        (gauges(&downstream) == (1.0, 0.0, 0.0, 0.0)).then_some(())
    })
    .await;
}

/// Health and reflection through grpcio (Python), then NOT_SERVING during shutdown.
/// Synchronous on purpose: no client of ours holds a connection while the server stops.
#[test]
fn health_and_reflection_work_with_a_stock_grpc_client() {
    let mut server = Server::builder().args(&["--shutdown-delay", "1h"]).start();
    let info = server.cli().args(["cluster", "info", "--json"]).run().ok();
    let info: serde_json::Value = serde_json::from_str(&info.stdout).unwrap();
    let cluster_id = info["cluster_id"].as_str().unwrap().to_owned();
    let run = server.cli().args(["admin", "health"]).run().ok();
    assert_eq!(run.stdout.trim(), "SERVING");
    let addr = server.url.trim_start_matches("http://").to_owned();
    let mut probe = Command::new(python())
        .arg(repo_root().join("tests/py/grpc_probe.py"))
        .args([&addr, &server.admin_token()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python runs");
    let mut lines = BufReader::new(probe.stdout.take().unwrap()).lines();
    let mut next = || lines.next().map(Result::unwrap).unwrap_or_default();
    assert_eq!(next(), "CHECK SERVING");
    assert_eq!(next(), format!("CLUSTER {cluster_id}"));
    assert_eq!(next(), "WATCH SERVING");
    server.signal("TERM");
    assert_eq!(next(), "WATCH NOT_SERVING");
    assert_eq!(next(), "WATCH END");
    assert_eq!(next(), "CHECK NOT_SERVING");
    assert!(probe.wait().unwrap().success());
    // The health verb of the CLI sees the same.
    let run = server.cli().args(["admin", "health"]).run().failed();
    assert_eq!(run.stdout.trim(), "NOT_SERVING");
    // A second signal ends the shutdown delay at once.
    server.signal("TERM");
    assert!(server.wait().success());
    assert!(server.log().contains("stopped cleanly"), "{}", server.log());
}

/// Runs `tributary serve --check-config` with `args` and `env`.
fn check_config(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(binary());
    cmd.args(["serve", "--check-config"]).args(args);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("TRIBUTARY_") || k == "RUST_LOG") {
        cmd.env_remove(k);
    }
    cmd.envs(env.iter().copied())
        .output()
        .expect("tributary runs")
}

fn line_of<'a>(stdout: &'a str, key: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.starts_with(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("no {key} in:\n{stdout}"))
}

#[tokio::test]
async fn config_layers_file_then_env_then_flags() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:1001\"\nlog = \"warn\"\n").unwrap();
    let file = file.to_str().unwrap();
    let env = [("TRIBUTARY_LISTEN", "127.0.0.1:1002")];

    let out = check_config(&["--config", file], &[]);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        line_of(&stdout, "listen"),
        format!("listen = \"127.0.0.1:1001\"  # file {file}")
    );
    assert_eq!(
        line_of(&stdout, "data_dir"),
        "data_dir = \"./data\"  # default"
    );

    let out = check_config(&["--config", file], &env);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        line_of(&stdout, "listen"),
        "listen = \"127.0.0.1:1002\"  # env TRIBUTARY_LISTEN"
    );
    assert!(line_of(&stdout, "log").contains("# file"), "{stdout}");

    let out = check_config(&["--config", file, "--listen", "127.0.0.1:1003"], &env);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        line_of(&stdout, "listen"),
        "listen = \"127.0.0.1:1003\"  # flag --listen"
    );
    // The printed configuration is itself a valid configuration file.
    let printed = dir.path().join("printed.toml");
    std::fs::write(&printed, &stdout).unwrap();
    assert!(
        check_config(&["--config", printed.to_str().unwrap()], &[])
            .status
            .success()
    );

    // A server started that way really uses each layer's winner: the file allows anonymous
    // use, the environment turns it off again; the file's port is overridden by the
    // kit's `--listen 127.0.0.1:0` flag.
    std::fs::write(
        dir.path().join("t.toml"),
        "listen = \"127.0.0.1:1\"\nallow_anonymous = true\n",
    )
    .unwrap();
    let server = Server::builder()
        .args(&["--config", file])
        .env(&[("TRIBUTARY_ALLOW_ANONYMOUS", "false")])
        .start();
    let anonymous = server.client_as(None).await;
    let err = anonymous
        .list_offsets("/x/y:z", &[], true)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(Code::Unauthenticated));
}

#[test]
fn bad_configuration_exits_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:1\"\nretention_intreval = \"5s\"\n",
    )
    .unwrap();
    for (args, env, needle) in [
        (
            vec!["--config", file.to_str().unwrap()],
            vec![],
            "retention_intreval",
        ),
        (
            vec![],
            vec![("TRIBUTARY_LOG_FORMAT", "yaml")],
            "TRIBUTARY_LOG_FORMAT",
        ),
        (
            vec!["--retention-interval", "soon"],
            vec![],
            "--retention-interval",
        ),
        (vec!["--tls-cert", "/nonexistent.pem"], vec![], "tls_key"),
    ] {
        let out = check_config(&args, &env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}: {stderr}");
        assert!(stderr.contains(needle), "{needle} not in: {stderr}");
    }
    // The same check applies when the server starts for real: it never opens the store.
    let out = Command::new(binary())
        .args(["serve", "--config", file.to_str().unwrap(), "--data-dir"])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!dir.path().join("data").exists());
}

#[tokio::test]
async fn rpc_spans_name_principal_and_path_never_payloads_or_tokens() {
    let server = Server::builder()
        .args(&["--log", "debug", "--log-format", "json"])
        .start();
    let admin = server.client().await;
    let made = admin
        .admin()
        .create_user(v1::CreateUserRequest {
            name: "alice".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let attributes = v1::StreamAttributes {
        default_partitions: Some(1),
        produce_perm: Some("u:alice".into()),
        consume_perm: Some("u:alice".into()),
        ..Default::default()
    };
    create_stream(&admin, "/logs/app", attributes).await;
    let alice = server.client_as(Some(&made.token)).await;
    let marker = format!("payload-marker-{}", std::process::id());
    alice
        .produce(
            "/logs/app:events",
            None,
            vec![record("key-marker", marker.clone())],
        )
        .await
        .unwrap();
    let fetched = alice
        .fetch("/logs/app:events", 0, 0, 1 << 20, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        fetched.records[0].record.value.as_deref(),
        Some(marker.as_bytes())
    );

    let log = tributary_e2e::wait_until(
        "the produce span in the log",
        Duration::from_secs(10),
        || {
            let log = server.log();
            async move {
                log.lines()
                    .any(|l| l.contains("Producer/Produce") && l.contains(r#""message":"rpc""#))
                    .then_some(log)
            }
        },
    )
    .await;
    let secret = made.token.split('.').nth(1).unwrap();
    let admin_secret = server.admin_token().split('.').nth(1).unwrap().to_owned();
    for needle in [
        marker.as_str(),
        "key-marker",
        made.token.as_str(),
        secret,
        &admin_secret,
    ] {
        assert!(!log.contains(needle), "the log shows `{needle}`:\n{log}");
    }
    let mut produce_span = false;
    for line in log.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        let span = &v["span"];
        if span["rpc"] == "tributary.v1.Producer/Produce" && v["fields"]["message"] == "rpc" {
            assert_eq!(span["principal"], "alice", "{line}");
            assert_eq!(span["path"], "/logs/app:events", "{line}");
            assert_eq!(v["fields"]["code"], "OK", "{line}");
            produce_span = true;
        }
    }
    assert!(produce_span, "no finished Produce RPC in:\n{log}");
}

#[tokio::test]
async fn a_checkpoint_of_a_live_server_restores_into_a_new_one() {
    let server = Server::start();
    let client = server.client().await;
    one_partition_stream(&client, "/b/s").await;
    produce(&client, "/b/s:t", 500, 50).await;

    let backups = tempfile::tempdir().unwrap();
    let dir = backups.path().join("ckpt-1");
    let dir_arg = dir.to_str().unwrap();
    let out = server
        .cli()
        .args(["admin", "checkpoint", dir_arg])
        .run()
        .ok();
    assert!(out.stdout.contains(dir_arg), "{}", out.stdout);
    assert!(dir.join("db/CURRENT").exists());
    // Writes after the checkpoint are not in it.
    produce(&client, "/b/s:t", 20, 50).await;

    // Refusals change nothing: relative, existing, missing parent, not a cluster admin.
    for (bad, needle) in [
        ("relative/dir", "absolute"),
        (dir_arg, "already exists"),
        ("/nonexistent-parent-dir/x", "parent"),
    ] {
        let run = server
            .cli()
            .args(["admin", "checkpoint", bad])
            .run()
            .failed();
        assert!(
            run.stderr.contains("INVALID_ARGUMENT") && run.stderr.contains(needle),
            "{bad}: {}",
            run.stderr
        );
    }
    let bob = server
        .cli()
        .args(["user", "create", "bob"])
        .run()
        .ok()
        .stdout
        .trim()
        .to_owned();
    let other = backups.path().join("by-bob");
    let run = server
        .cli_as(Some(&bob))
        .args(["admin", "checkpoint", other.to_str().unwrap()])
        .run()
        .failed();
    assert!(run.stderr.contains("PERMISSION_DENIED"), "{}", run.stderr);
    assert!(!other.exists());

    // The checkpoint is a data directory: a second server runs on it as the same cluster,
    // with the same users and tokens, and exactly the data of the moment it was taken.
    let restored = Server::builder().data_dir(&dir).start();
    let token = server.admin_token();
    let copy = restored.client_as(Some(&token)).await;
    let id = |c: Client| async move {
        c.admin()
            .get_cluster(v1::GetClusterRequest {})
            .await
            .unwrap()
            .into_inner()
            .cluster_id
    };
    assert_eq!(id(copy.clone()).await, id(client.clone()).await);
    let restored_values = values(&copy, "/b/s:t").await;
    assert_eq!(restored_values.len(), 500);
    assert_eq!(restored_values, values(&client, "/b/s:t").await[..500]);
    // And it takes writes of its own.
    produce(&copy, "/b/s:t", 10, 50).await;
    assert_eq!(values(&copy, "/b/s:t").await.len(), 510);
}

/// Every YAML and TOML file under deploy/ parses and has what docs/deploy.md promises;
/// every configuration in it is accepted by `--check-config`.
#[test]
fn deployment_examples_are_valid() {
    let root = repo_root();
    let out = Command::new(python())
        .arg(root.join("scripts/check-deploy.py"))
        .arg(&root)
        .env("TRIBUTARY_BIN", binary())
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "scripts/check-deploy.py failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every command and flag that `tributary … --help` shows is in docs/cli.md.
#[test]
fn the_cli_guide_covers_every_command_and_flag() {
    let guide = std::fs::read_to_string(repo_root().join("docs/cli.md")).unwrap();
    let mut missing = Vec::new();
    let mut todo = vec![Vec::<String>::new()];
    while let Some(path) = todo.pop() {
        let out = Command::new(binary())
            .args(&path)
            .arg("--help")
            .output()
            .unwrap();
        let help = String::from_utf8(out.stdout).unwrap();
        let mut section = "";
        for line in help.lines() {
            let trimmed = line.trim_start();
            if trimmed.len() == line.len() {
                section = line;
                continue;
            }
            let indent = line.len() - trimmed.len();
            let word = trimmed.split_whitespace().next().unwrap_or("");
            if section == "Commands:" && indent == 2 && word != "help" {
                let mut sub = path.clone();
                sub.push(word.to_owned());
                if !guide.contains(&sub.join(" ")) {
                    missing.push(sub.join(" "));
                }
                todo.push(sub);
            }
            if section == "Options:" && indent <= 6 {
                let flag = trimmed
                    .split_whitespace()
                    .find(|w| w.starts_with("--"))
                    .map(|w| w.trim_end_matches(','));
                if let Some(flag) = flag.filter(|f| !["--help", "--version"].contains(f))
                    && !guide.contains(flag)
                {
                    missing.push(format!("{} {flag}", path.join(" ")));
                }
            }
        }
    }
    assert!(missing.is_empty(), "docs/cli.md lacks: {missing:?}");
}

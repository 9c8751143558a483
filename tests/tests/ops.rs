//! Operability end to end, on the real binary: the Prometheus endpoint scraped and parsed
//! strictly, gRPC health and reflection driven by grpcio's clients (not ours), the config
//! layers and `--check-config`, the per-RPC log span without payloads or tokens, an online
//! checkpoint restored into a second server, and the deployment examples.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use tonic::Code;
use tributary_client::record;
use tributary_e2e::{
    Client, Server, binary, create_stream, http_get, prometheus, python, repo_root,
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
            .map(|i| record(Vec::new(), format!("{i:0size$}")))
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
                .map(|r| String::from_utf8_lossy(&r.record.value).into_owned()),
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
    assert_eq!(fetched.records[0].record.value, marker.as_bytes());

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

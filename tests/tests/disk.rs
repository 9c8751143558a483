//! Disk trouble: a full disk refuses writes with a clear `RESOURCE_EXHAUSTED`, keeps
//! serving reads, and recovers by itself once space returns; a damaged data directory is
//! refused at start with a clear message and left exactly as it was, never repaired.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tonic::Code;
use tributary_e2e::{Server, binary, create_stream, wait_until};
use tributary_proto::v1;

const TOPIC: &str = "/v/s:t";

#[tokio::test]
async fn a_full_disk_refuses_writes_keeps_reads_and_recovers_by_itself() {
    let server = Server::builder()
        .tmpfs(32 << 20)
        .try_start()
        .expect("a server on a 32 MiB tmpfs");
    let admin = server.client().await;
    create_stream(&admin, "/v/s", v1::StreamAttributes::default()).await;
    let value = vec![b'x'; 256 << 10];
    let batch = |tag: u64| {
        let mut v = value.clone();
        v[..8].copy_from_slice(&tag.to_be_bytes());
        vec![tributary_client::unkeyed(v)]
    };

    // Fill the disk: every acknowledged produce gets the next offset; then one fails.
    let mut acked = 0u64;
    let refused = loop {
        match admin.produce(TOPIC, Some(0), batch(acked)).await {
            Ok(r) => {
                assert_eq!(r.acks[0].base_offset, acked);
                acked += 1;
                assert!(acked < 1000, "256 MB went into a 32 MiB disk");
            }
            Err(e) => break e,
        }
    };
    assert!(
        acked > 10,
        "the disk filled only after some records: {acked}"
    );
    assert_eq!(refused.code(), Some(Code::ResourceExhausted), "{refused}");
    assert!(
        refused
            .to_string()
            .contains("disk full, writes are refused until space is freed"),
        "{refused}"
    );

    // Every write is refused the same way, catalog changes too, and none takes an offset.
    let e = admin
        .produce(TOPIC, Some(0), batch(acked))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(Code::ResourceExhausted), "{e}");
    let e = admin
        .admin()
        .create_topic(v1::CreateTopicRequest {
            path: "/v/s:other".into(),
            partitions: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");

    // Reads go on: every acknowledged record is there, in order.
    let mut offset = 0;
    while offset < acked {
        let f = admin
            .fetch(TOPIC, 0, offset, 0, Duration::ZERO)
            .await
            .expect("reads work on a full disk");
        for r in &f.records {
            assert_eq!(r.offset, offset);
            assert_eq!(r.record.value.as_ref().unwrap()[..8], offset.to_be_bytes());
            offset += 1;
        }
    }
    assert_eq!(offset, acked);
    let t = admin
        .admin()
        .describe_topic(v1::DescribeTopicRequest { path: TOPIC.into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(t.partition_info[0].latest_offset, acked);

    // Space comes back; writes resume without a restart, at the next offset.
    eprintln!("the 32 MiB disk was full after {acked} acknowledged batches of 256 KiB");
    server.resize_tmpfs(512 << 20).unwrap();
    let freed = std::time::Instant::now();
    let ack = wait_until("writes to resume", Duration::from_secs(90), || async {
        admin.produce(TOPIC, Some(0), batch(acked)).await.ok()
    })
    .await;
    eprintln!("writes resumed {:?} after space returned", freed.elapsed());
    assert_eq!(
        ack.acks[0].base_offset, acked,
        "refused writes took no offset"
    );
    admin
        .admin()
        .create_topic(v1::CreateTopicRequest {
            path: "/v/s:other".into(),
            partitions: None,
        })
        .await
        .expect("catalog writes resume too");
    let f = admin
        .fetch(TOPIC, 0, acked, 0, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(f.records.len(), 1);
    assert_eq!(
        f.records[0].record.value.as_ref().unwrap()[..8],
        acked.to_be_bytes()
    );
}

/// Contents of every file of a store except RocksDB's own diagnostic log (`LOG*`), which
/// an open attempt writes.
fn store_files(db: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    std::fs::read_dir(db)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with("LOG"))
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

/// A stopped server's data directory holding records, flushed to table files by a
/// restart (RocksDB writes what it recovers from its log to L0 at open).
async fn stopped_store() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::builder().data_dir(dir.path()).start();
    let client = server.client().await;
    create_stream(&client, "/v/s", v1::StreamAttributes::default()).await;
    let records = (0..100)
        .map(|i| tributary_client::record(format!("k{i}"), "v".repeat(300)))
        .collect();
    client.produce(TOPIC, None, records).await.unwrap();
    drop(client);
    let mut server = stop(server).await;
    server.restart();
    stop(server).await;
    let db = dir.path().join("db");
    (dir, db)
}

/// SIGTERM, waited for off the runtime, which must go on serving the client's side of the
/// graceful shutdown.
async fn stop(mut server: Server) -> Server {
    tokio::task::spawn_blocking(move || {
        assert!(server.terminate().success());
        server
    })
    .await
    .unwrap()
}

/// Starts a server on `dir` and expects it to refuse, saying `says`; the store's files
/// must be exactly as they were.
fn refused_at_start(dir: &Path, says: &str) {
    let db = dir.join("db");
    let before = store_files(&db);
    let out = std::process::Command::new(binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the server started: {stderr}");
    assert!(
        String::from_utf8_lossy(&out.stdout).is_empty(),
        "it never listened"
    );
    assert!(stderr.contains(says), "{stderr}");
    let after = store_files(&db);
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>(),
        "no file was added or removed"
    );
    for (path, bytes) in &before {
        assert!(after[path] == *bytes, "{} was changed", path.display());
    }
}

const DAMAGED: &str = "the store is damaged";

#[tokio::test]
async fn a_garbled_current_file_is_refused_and_left_alone() {
    let (dir, db) = stopped_store().await;
    std::fs::write(db.join("CURRENT"), b"\x00\x13garbage without newline").unwrap();
    refused_at_start(dir.path(), DAMAGED);
    refused_at_start(dir.path(), "Nothing was changed or repaired");
}

#[tokio::test]
async fn a_truncated_manifest_is_refused_and_left_alone() {
    let (dir, db) = stopped_store().await;
    let current = std::fs::read_to_string(db.join("CURRENT")).unwrap();
    let manifest = db.join(current.trim());
    let bytes = std::fs::read(&manifest).unwrap();
    std::fs::write(&manifest, &bytes[..bytes.len() / 2]).unwrap();
    // RocksDB reads the column families from what is left of it, and some are missing.
    refused_at_start(dir.path(), "or a damaged Tributary store");
}

#[tokio::test]
async fn a_damaged_write_ahead_log_is_refused_and_left_alone() {
    // Acknowledged records, in the write-ahead log only: a kill -9 leaves them there.
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::builder().data_dir(dir.path()).start();
    let client = server.client().await;
    create_stream(&client, "/v/s", v1::StreamAttributes::default()).await;
    for i in 0..20 {
        let records = vec![tributary_client::record(format!("k{i}"), "v".repeat(300))];
        client.produce(TOPIC, Some(0), records).await.unwrap();
    }
    server.kill9();
    let db = dir.path().join("db");
    let wal = store_files(&db)
        .into_keys()
        .find(|p| p.extension().is_some_and(|e| e == "log"))
        .expect("a write-ahead log");
    // Damage a record in the middle: replaying up to it and dropping what follows would
    // lose acknowledged records without a word.
    let mut bytes = std::fs::read(&wal).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle..middle + 16]
        .iter_mut()
        .for_each(|b| *b ^= 0x5a);
    std::fs::write(&wal, bytes).unwrap();
    refused_at_start(dir.path(), DAMAGED);
}

#[tokio::test]
async fn damaged_table_files_are_refused_and_left_alone() {
    let (dir, db) = stopped_store().await;
    let tables: Vec<PathBuf> = store_files(&db)
        .into_keys()
        .filter(|p| p.extension().is_some_and(|e| e == "sst"))
        .collect();
    assert!(!tables.is_empty(), "the restart flushed table files");
    for t in &tables {
        // Zero the footer, where every table keeps its magic number and index handle.
        let mut bytes = std::fs::read(t).unwrap();
        let n = bytes.len();
        bytes[n - 64..].fill(0);
        std::fs::write(t, bytes).unwrap();
    }
    refused_at_start(dir.path(), DAMAGED);
}

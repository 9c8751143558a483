//! The Prometheus endpoint: `GET /metrics` over a minimal HTTP/1.1 responder, rendering
//! the recorder the process installed behind the `metrics` facade (which every crate reports
//! through; installing it is the binary's, being process-wide). Gauges read from the store
//! and the namespace are refreshed at each scrape, so they are as fresh as the scrape and
//! cost nothing between scrapes; consumer-group and replication lag are computed at each
//! scrape too, and rendered beside the recorder's output.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tributary_core::Principal;
use tributary_replication::Links;
use tributary_volume::{Caller, Namespace};

use crate::scrape_access::{self, Verdict};
use crate::{Error, Result};

/// A request head larger than this is refused; a scrape sends a few hundred bytes.
const MAX_REQUEST_HEAD: usize = 8 << 10;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Help text for the RPC series and the gauges refreshed here (the binary describes its own).
pub(crate) fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    use tributary_api::metrics as api;
    describe_counter!(api::RPC_REQUESTS, "RPCs served, by method and status code.");
    describe_histogram!(api::RPC_DURATION, Unit::Seconds, "RPC latency, by method.");
    describe_counter!(api::RECORDS_IN, "Records produced, per volume and stream.");
    describe_counter!(api::BYTES_IN, Unit::Bytes, "Record batch bytes produced.");
    describe_counter!(api::RECORDS_OUT, "Records fetched, per volume and stream.");
    describe_counter!(api::BYTES_OUT, Unit::Bytes, "Record batch bytes fetched.");
    describe_gauge!(
        "tributary_storage_disk_bytes",
        Unit::Bytes,
        "SST and blob files on disk (the store's size, without the write-ahead log)."
    );
    describe_gauge!(
        "tributary_rocksdb_live_sst_bytes",
        Unit::Bytes,
        "SST files in use."
    );
    describe_gauge!(
        "tributary_rocksdb_total_sst_bytes",
        Unit::Bytes,
        "All SST files."
    );
    describe_gauge!(
        "tributary_rocksdb_live_blob_bytes",
        Unit::Bytes,
        "Blob files in use."
    );
    describe_gauge!(
        "tributary_rocksdb_total_blob_bytes",
        Unit::Bytes,
        "All blob files."
    );
    describe_gauge!(
        "tributary_rocksdb_memtable_bytes",
        Unit::Bytes,
        "Memtables, including flushed ones readers still pin."
    );
    describe_gauge!(
        "tributary_rocksdb_block_cache_bytes",
        Unit::Bytes,
        "The block cache's contents."
    );
    describe_gauge!(
        "tributary_rocksdb_table_readers_bytes",
        Unit::Bytes,
        "Memory of open SST readers outside the block cache."
    );
    describe_gauge!(
        "tributary_rocksdb_pending_compaction_bytes",
        Unit::Bytes,
        "Bytes compaction must rewrite to catch up."
    );
    describe_gauge!(
        "tributary_rocksdb_running_compactions",
        "Compactions running."
    );
    describe_gauge!("tributary_rocksdb_running_flushes", "Flushes running.");
    describe_gauge!(
        "tributary_rocksdb_write_stopped",
        "1 while writes are stopped."
    );
    describe_gauge!(
        "tributary_rocksdb_delayed_write_rate_bytes",
        "Non-zero while writes are slowed: the rate they are held to, bytes per second."
    );
    describe_counter!(
        "tributary_rocksdb_stall_microseconds_total",
        Unit::Microseconds,
        "Time writers spent stalled or slowed down."
    );
    describe_counter!(
        "tributary_rocksdb_bytes_written_total",
        Unit::Bytes,
        "Bytes written by users (kind=user) and to disk (wal, flush, compaction; blob is the blob-file part of flush and compaction)."
    );
    describe_gauge!(
        "tributary_rocksdb_write_amplification",
        "Disk bytes written (wal+flush+compaction) per user byte, since start."
    );
    describe_gauge!(
        "tributary_memory_heap_bytes",
        Unit::Bytes,
        "Heap in use: heap=server (allocated by the server's Rust code) or heap=engine (RocksDB's, through malloc)."
    );
    describe_gauge!(
        "tributary_volume_bytes",
        Unit::Bytes,
        "Bytes stored, per volume."
    );
    describe_gauge!("tributary_volume_streams", "Streams, per volume.");
    describe_gauge!("tributary_volume_topics", "Topics, per volume.");
    describe_gauge!(
        "tributary_volume_quota_bytes",
        Unit::Bytes,
        "The volume's byte quota, when it has one."
    );
    describe_counter!(
        "tributary_retention_failures_total",
        "Retention passes that failed on a stream (the others still ran), per volume and stream."
    );
}

/// Sets the gauges read from the store and the namespace.
async fn refresh(ns: &Arc<Namespace>) {
    use metrics::{counter, gauge};
    let store = ns.store().clone();
    let Ok(s) = tokio::task::spawn_blocking(move || store.stats()).await else {
        return;
    };
    gauge!("tributary_storage_disk_bytes").set((s.total_sst_bytes + s.total_blob_bytes) as f64);
    gauge!("tributary_rocksdb_live_sst_bytes").set(s.live_sst_bytes as f64);
    gauge!("tributary_rocksdb_total_sst_bytes").set(s.total_sst_bytes as f64);
    gauge!("tributary_rocksdb_live_blob_bytes").set(s.live_blob_bytes as f64);
    gauge!("tributary_rocksdb_total_blob_bytes").set(s.total_blob_bytes as f64);
    gauge!("tributary_rocksdb_memtable_bytes").set(s.memtable_bytes as f64);
    gauge!("tributary_rocksdb_block_cache_bytes").set(s.block_cache_bytes as f64);
    gauge!("tributary_rocksdb_table_readers_bytes").set(s.table_readers_bytes as f64);
    gauge!("tributary_rocksdb_pending_compaction_bytes").set(s.pending_compaction_bytes as f64);
    gauge!("tributary_rocksdb_running_compactions").set(s.running_compactions as f64);
    gauge!("tributary_rocksdb_running_flushes").set(s.running_flushes as f64);
    gauge!("tributary_rocksdb_write_stopped").set(f64::from(u8::from(s.write_stopped)));
    gauge!("tributary_rocksdb_delayed_write_rate_bytes").set(s.delayed_write_rate as f64);
    counter!("tributary_rocksdb_stall_microseconds_total").absolute(s.stall_micros_total);
    for (kind, v) in [
        ("user", s.user_bytes_written_total),
        ("wal", s.wal_bytes_written_total),
        ("flush", s.flush_bytes_written_total),
        ("compaction", s.compaction_bytes_written_total),
        ("blob", s.blob_bytes_written_total),
    ] {
        counter!("tributary_rocksdb_bytes_written_total", "kind" => kind).absolute(v);
    }
    if let Some(wa) = s.write_amplification() {
        gauge!("tributary_rocksdb_write_amplification").set(wa);
    }
    let heaps = crate::heap::read();
    gauge!("tributary_memory_heap_bytes", "heap" => "server").set(heaps.server_bytes as f64);
    if let Some(engine) = heaps.engine_bytes {
        gauge!("tributary_memory_heap_bytes", "heap" => "engine").set(engine as f64);
    }

    for v in ns.list_volumes(&scraper()) {
        let labels = [("volume", v.path)];
        gauge!("tributary_volume_bytes", &labels).set(v.bytes as f64);
        gauge!("tributary_volume_streams", &labels).set(v.stream_count as f64);
        gauge!("tributary_volume_topics", &labels).set(v.topic_count as f64);
        if let Some(max) = v.quotas.max_bytes {
            gauge!("tributary_volume_quota_bytes", &labels).set(max as f64);
        }
    }
}

/// The server itself, as a cluster admin: it sees every volume and group.
fn scraper() -> Caller {
    Caller {
        principal: Principal {
            name: "tributary-metrics".into(),
            groups: Vec::new(),
        },
        cluster_admin: true,
    }
}

/// Consumer-group lag, one series per (volume, stream, group) and figure, rendered here
/// rather than kept in the recorder: a deleted group or stream must vanish from the next
/// scrape, not linger at its last value.
async fn group_lags(ns: &Namespace) -> String {
    let lags = match ns.group_lags(&scraper()).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "metrics endpoint: group lags unavailable");
            return String::new();
        }
    };
    let series: [(&str, &str); 2] = [
        (
            "tributary_group_lag_records",
            "Records between a consumer group's committed cursors and the high-water marks, summed over the stream's partitions.",
        ),
        (
            "tributary_group_lag_seconds",
            "Age of the oldest record a consumer group has yet to consume (now minus its append time, the most over the stream's partitions); 0 when caught up.",
        ),
    ];
    let mut out = String::new();
    for (name, help) in series {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
        for l in &lags {
            let value = match name {
                "tributary_group_lag_records" => l.records as f64,
                _ => l.age_ms as f64 / 1000.0,
            };
            out.push_str(&format!(
                "{name}{{volume=\"{}\",stream=\"{}\",group=\"{}\"}} {value}\n",
                label(&l.volume),
                label(&l.stream),
                label(&l.group),
            ));
        }
    }
    out
}

/// Replication lag per link, one series per (stream, from), rendered at scrape time like
/// group lag: a removed link vanishes from the next scrape.
async fn link_lags(links: &Links, now_ms: i64) -> String {
    let links = match links.list(&scraper(), "").await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "metrics endpoint: replication links unavailable");
            return String::new();
        }
    };
    let series: [(&str, &str, &str); 4] = [
        (
            "tributary_replication_lag_records",
            "gauge",
            "Records the link's upstream holds that it has not copied yet, as last seen.",
        ),
        (
            "tributary_replication_lag_bytes",
            "gauge",
            "Bytes the link's upstream holds that it has not copied yet, as last seen (estimated from the upstream's bytes per record).",
        ),
        (
            "tributary_replication_lag_seconds",
            "gauge",
            "The upstream's newest append time minus that of the last batch the link read (0 when caught up); while the upstream is out of reach, that plus the time since the last contact.",
        ),
        (
            "tributary_replication_link_up",
            "gauge",
            "1 while the link is pulling, 0 while paused, connecting or retrying after an error.",
        ),
    ];
    let mut out = String::new();
    for (name, kind, help) in series {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for l in &links {
            let value = match name {
                "tributary_replication_lag_records" => l.status.lag_records() as f64,
                "tributary_replication_lag_bytes" => l.status.lag_bytes() as f64,
                "tributary_replication_lag_seconds" => l.status.lag_ms_at(now_ms) as f64 / 1000.0,
                _ => f64::from(u8::from(l.is_up())),
            };
            out.push_str(&format!(
                "{name}{{stream=\"{}\",from=\"{}\"}} {value}\n",
                label(&l.stream),
                label(&l.from)
            ));
        }
    }
    out
}

/// A label value escaped for the text format (names allow none of these today).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Who may scrape: the token file a scrape's bearer token must match, and the TLS acceptor.
pub(crate) struct Access {
    token_file: Option<PathBuf>,
    tls: Option<TlsAcceptor>,
}

impl Access {
    /// Checks the files once, so that a missing token or a bad certificate stops the start.
    pub(crate) async fn new(
        token_file: Option<PathBuf>,
        tls: Option<&tributary_api::TlsFiles>,
    ) -> Result<Access> {
        if let Some(path) = &token_file {
            scrape_access::read_token(path)
                .await
                .map_err(|source| Error::Io {
                    what: "reading the metrics endpoint's token file",
                    source,
                })?;
        }
        let tls = tls.map(scrape_access::tls_acceptor).transpose()?;
        Ok(Access { token_file, tls })
    }
}

/// Serves `GET /metrics` on `listener` until the task is dropped.
pub(crate) async fn serve(
    listener: TcpListener,
    handle: PrometheusHandle,
    ns: Arc<Namespace>,
    links: Arc<Links>,
    access: Access,
) {
    let access = Arc::new(access);
    loop {
        let (conn, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "metrics endpoint: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await; // back off, e.g. EMFILE
                continue;
            }
        };
        let handle = handle.clone();
        let ns = ns.clone();
        let links = links.clone();
        let access = access.clone();
        tokio::spawn(async move {
            let answered = tokio::time::timeout(REQUEST_TIMEOUT, async {
                match &access.tls {
                    Some(tls) => {
                        let conn = tls.accept(conn).await?;
                        answer(conn, &access, &handle, &ns, &links).await
                    }
                    None => answer(conn, &access, &handle, &ns, &links).await,
                }
            })
            .await;
            if let Ok(Err(e)) = answered {
                tracing::debug!(%peer, error = %e, "metrics endpoint: request failed");
            }
        });
    }
}

/// Reads one request head and answers it; the connection closes after the response.
async fn answer(
    mut conn: impl AsyncRead + AsyncWrite + Unpin,
    access: &Access,
    handle: &PrometheusHandle,
    ns: &Arc<Namespace>,
    links: &Links,
) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > MAX_REQUEST_HEAD {
            return respond(&mut conn, "431 Request Header Fields Too Large", &[], "").await;
        }
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = std::str::from_utf8(line).unwrap_or("").split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    // Every path answers 401 without the token: an unauthenticated caller learns nothing.
    let head = String::from_utf8_lossy(&head);
    if scrape_access::check(access.token_file.as_ref(), &head).await == Verdict::Refused {
        let challenge = [("WWW-Authenticate", "Bearer realm=\"tributary metrics\"")];
        return respond(&mut conn, "401 Unauthorized", &challenge, "").await;
    }
    match (method, path) {
        ("GET", "/metrics") => {
            refresh(ns).await;
            handle.run_upkeep();
            let mut body = handle.render();
            body.push_str(&group_lags(ns).await);
            body.push_str(&link_lags(links, ns.clock().now_ms()).await);
            let text = [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")];
            respond(&mut conn, "200 OK", &text, &body).await
        }
        (_, "/metrics") => respond(&mut conn, "405 Method Not Allowed", &[], "").await,
        _ => {
            let body = "Tributary serves its metrics at /metrics\n";
            respond(
                &mut conn,
                "404 Not Found",
                &[("Content-Type", "text/plain")],
                body,
            )
            .await
        }
    }
}

async fn respond(
    conn: &mut (impl AsyncWrite + Unpin),
    status: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(body);
    conn.write_all(out.as_bytes()).await?;
    conn.shutdown().await
}

//! `tributary upstream add|list|pause|resume|remove`: replica links into streams of this
//! cluster, configured on the receiving side (see docs/replication.md).

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use serde_json::json;
use tributary_proto::v1;

use crate::Global;
use crate::admin::time;
use crate::output::{json, table};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Start {
    /// Everything the source still stores.
    Earliest,
    /// Only records the source receives from now on.
    Latest,
}

#[derive(Debug, Subcommand)]
pub enum UpstreamCmd {
    /// Pull a stream of another cluster into DEST_STREAM of this one.
    Add {
        /// The destination stream, on this cluster.
        dest_stream: String,
        /// The source: URL/SOURCE_STREAM, e.g. http://dc1:7070/acme/orders.
        #[arg(long = "from")]
        from: String,
        /// A token of a user with `copy` on the source stream.
        #[arg(long, conflicts_with = "from_token_file")]
        from_token: Option<String>,
        /// A file holding that token, read by the server at every connection (a path on
        /// the server's machine; rotate the token by rewriting the file).
        #[arg(long)]
        from_token_file: Option<std::path::PathBuf>,
        /// PEM CA certificate(s) to verify an https:// upstream with.
        #[arg(long)]
        from_ca_cert: Option<std::path::PathBuf>,
        /// Where partitions start.
        #[arg(long, value_enum, default_value = "earliest")]
        start: Start,
        /// An offset-keeping mirror: DEST_STREAM (empty) becomes read-only for producers and
        /// keeps the source's offsets, timestamps and consumer-group cursors.
        #[arg(long)]
        mirror: bool,
        /// Create the link paused.
        #[arg(long)]
        paused: bool,
    },
    /// Links with their state, lag and last error; per partition for one DEST_STREAM.
    List { dest_stream: Option<String> },
    /// Stop pulling (positions are kept).
    Pause {
        dest_stream: String,
        /// Which upstream, when the stream has several (URL/SOURCE_STREAM).
        #[arg(long = "from")]
        from: Option<String>,
    },
    /// Pull again from where the link stopped.
    Resume {
        dest_stream: String,
        #[arg(long = "from")]
        from: Option<String>,
    },
    /// Remove a link and its positions; what it copied stays.
    Remove {
        dest_stream: String,
        #[arg(long = "from")]
        from: Option<String>,
    },
}

pub async fn run(g: &Global, cmd: UpstreamCmd) -> anyhow::Result<()> {
    let mut repl = g.connect().await?.replication();
    match cmd {
        UpstreamCmd::Add {
            dest_stream,
            from,
            from_token,
            from_token_file,
            from_ca_cert,
            start,
            mirror,
            paused,
        } => {
            let token_file = match from_token_file {
                Some(f) => std::path::absolute(&f)
                    .with_context(|| format!("--from-token-file {}", f.display()))?
                    .to_string_lossy()
                    .into_owned(),
                None => String::new(),
            };
            let ca_cert = match from_ca_cert {
                Some(f) => std::fs::read(&f)
                    .with_context(|| format!("--from-ca-cert {}", f.display()))?
                    .into(),
                None => Default::default(),
            };
            let u = repl
                .add_upstream(v1::AddUpstreamRequest {
                    stream: dest_stream,
                    from,
                    token: from_token.unwrap_or_default(),
                    token_file,
                    ca_cert,
                    paused,
                    start: match start {
                        Start::Earliest => v1::PullStart::Earliest,
                        Start::Latest => v1::PullStart::Latest,
                    } as i32,
                    mirror,
                })
                .await?
                .into_inner();
            print(g, &[u], false);
        }
        UpstreamCmd::List { dest_stream } => {
            let detail = dest_stream.is_some();
            let r = repl
                .list_upstreams(v1::ListUpstreamsRequest {
                    stream: dest_stream.unwrap_or_default(),
                })
                .await?
                .into_inner();
            print(g, &r.upstreams, detail);
        }
        UpstreamCmd::Pause { dest_stream, from } => {
            let u = repl
                .pause_upstream(link(dest_stream, from))
                .await?
                .into_inner();
            print(g, &[u], false);
        }
        UpstreamCmd::Resume { dest_stream, from } => {
            let u = repl
                .resume_upstream(link(dest_stream, from))
                .await?
                .into_inner();
            print(g, &[u], false);
        }
        UpstreamCmd::Remove { dest_stream, from } => {
            let r = link(dest_stream, from);
            let what = format!("{} <- {}", r.stream, r.from);
            repl.remove_upstream(r).await?;
            if g.json {
                json(&json!({ "upstream": what, "result": "removed" }));
            } else {
                println!("removed upstream of {what}");
            }
        }
    }
    Ok(())
}

fn link(stream: String, from: Option<String>) -> v1::UpstreamRef {
    v1::UpstreamRef {
        stream,
        from: from.unwrap_or_default(),
    }
}

fn state(u: &v1::Upstream) -> &'static str {
    match v1::UpstreamState::try_from(u.state) {
        Ok(v1::UpstreamState::Paused) => "paused",
        Ok(v1::UpstreamState::Running) => "running",
        Ok(v1::UpstreamState::Connecting) if u.last_error.is_empty() => "connecting",
        Ok(v1::UpstreamState::Connecting) => "retrying",
        _ => "unknown",
    }
}

fn seconds(ms: i64) -> String {
    format!("{:.1}", ms as f64 / 1000.0)
}

fn print(g: &Global, ups: &[v1::Upstream], detail: bool) {
    if g.json {
        for u in ups {
            json(&json!({
                "id": u.id,
                "stream": u.stream,
                "from": u.from,
                "mirror": u.mirror,
                "start": if u.start == v1::PullStart::Latest as i32 { "latest" } else { "earliest" },
                "state": state(u),
                "lag_records": u.lag_records,
                "lag_bytes": u.lag_bytes,
                "lag_ms": u.lag_ms,
                "records_applied": u.records_applied,
                "records_skipped": u.records_skipped,
                "lost_records": u.lost_records,
                "last_error": u.last_error,
                "last_error_ms": u.last_error_ms,
                "last_contact_ms": u.last_contact_ms,
                "partitions": u.partitions.iter().map(|p| json!({
                    "topic": p.topic,
                    "partition": p.partition,
                    "position": p.position,
                    "upstream_high_watermark": p.upstream_high_watermark,
                    "upstream_log_start": p.upstream_log_start,
                    "lag_records": p.lag_records,
                    "lag_bytes": p.lag_bytes,
                    "lag_ms": p.lag_ms,
                    "lost_records": p.lost_records,
                })).collect::<Vec<_>>(),
            }));
        }
        return;
    }
    let rows: Vec<_> = ups
        .iter()
        .map(|u| {
            vec![
                u.stream.clone(),
                u.from.clone(),
                if u.mirror { "mirror" } else { "copy" }.into(),
                state(u).into(),
                u.lag_records.to_string(),
                u.lag_bytes.to_string(),
                seconds(u.lag_ms),
                u.records_applied.to_string(),
                u.lost_records.to_string(),
                if u.last_contact_ms > 0 {
                    time(u.last_contact_ms)
                } else {
                    "-".into()
                },
            ]
        })
        .collect();
    table(
        &[
            "STREAM",
            "FROM",
            "MODE",
            "STATE",
            "LAG",
            "LAG BYTES",
            "LAG S",
            "APPLIED",
            "LOST",
            "LAST CONTACT",
        ],
        &rows,
    );
    for u in ups.iter().filter(|u| !u.last_error.is_empty()) {
        println!(
            "\n{} <- {}: last error at {}: {}",
            u.stream,
            u.from,
            time(u.last_error_ms),
            u.last_error
        );
    }
    for u in ups.iter().filter(|u| u.lost_records > 0) {
        println!(
            "\n{} <- {}: {} records lost: the link fell behind the upstream's retention, \
             which removed them before they were copied",
            u.stream, u.from, u.lost_records
        );
    }
    if detail {
        for u in ups {
            println!("\n{} <- {}", u.stream, u.from);
            let rows: Vec<_> = u
                .partitions
                .iter()
                .map(|p| {
                    vec![
                        p.topic.clone(),
                        p.partition.to_string(),
                        p.position.to_string(),
                        p.upstream_high_watermark.to_string(),
                        p.lag_records.to_string(),
                        p.lag_bytes.to_string(),
                        seconds(p.lag_ms),
                        p.lost_records.to_string(),
                    ]
                })
                .collect();
            table(
                &[
                    "TOPIC",
                    "PARTITION",
                    "POSITION",
                    "UPSTREAM END",
                    "LAG",
                    "LAG BYTES",
                    "LAG S",
                    "LOST",
                ],
                &rows,
            );
        }
    }
}

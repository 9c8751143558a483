//! `tributary group list|info|reset|delete`: consumer groups of a stream, their members,
//! cursors and lag.

use anyhow::bail;
use clap::Subcommand;
use serde_json::json;
use tributary_proto::v1;

use crate::Global;
use crate::consume::{Start, parse_start};
use crate::output::{json, table};

#[derive(Debug, Subcommand)]
pub enum GroupCmd {
    /// The consumer groups of a stream (with cursors or members).
    List { stream: String },
    /// A group's members, and per partition its cursor, end offset and lag.
    Info { stream: String, group: String },
    /// Move a group's cursors (the group must have no members).
    Reset {
        stream: String,
        group: String,
        /// earliest, latest, an offset, or @TIME (e.g. @2026-01-01T00:00:00Z).
        #[arg(long)]
        to: String,
        /// Only this topic's cursors (default: the topics the group has cursors for).
        #[arg(long)]
        topic: Option<String>,
    },
    /// Delete a group's cursors (the group must have no members).
    Delete { stream: String, group: String },
}

pub async fn run(g: &Global, cmd: GroupCmd) -> anyhow::Result<()> {
    let mut consumer = g.connect().await?.consumer();
    match cmd {
        GroupCmd::List { stream } => {
            let r = consumer
                .list_groups(v1::ListGroupsRequest { stream })
                .await?
                .into_inner();
            if g.json {
                for gr in &r.groups {
                    json(
                        &json!({"group": gr.group, "members": gr.members, "generation": gr.generation}),
                    );
                }
                return Ok(());
            }
            let rows: Vec<_> = r
                .groups
                .iter()
                .map(|gr| {
                    vec![
                        gr.group.clone(),
                        gr.members.to_string(),
                        gr.generation.to_string(),
                    ]
                })
                .collect();
            table(&["GROUP", "MEMBERS", "GENERATION"], &rows);
        }
        GroupCmd::Info { stream, group } => {
            let d = consumer
                .describe_group(v1::DescribeGroupRequest { stream, group })
                .await?
                .into_inner();
            print_group(g, &d);
        }
        GroupCmd::Reset {
            stream,
            group,
            to,
            topic,
        } => {
            let mut req = v1::ResetGroupRequest {
                stream,
                group,
                topic: topic.unwrap_or_default(),
                ..Default::default()
            };
            match parse_start("--to", &to)? {
                Start::Earliest => req.to = v1::OffsetSpec::Earliest as i32,
                Start::Latest => req.to = v1::OffsetSpec::Latest as i32,
                Start::Time(t) => {
                    req.to = v1::OffsetSpec::Timestamp as i32;
                    req.timestamp_ms = t;
                }
                Start::Offset(o) => {
                    if req.topic.is_empty() {
                        bail!("--to OFFSET needs --topic: offsets differ between topics");
                    }
                    req.offset = Some(o);
                }
            }
            let d = consumer.reset_group(req).await?.into_inner();
            print_group(g, &d);
        }
        GroupCmd::Delete { stream, group } => {
            consumer
                .delete_group(v1::DeleteGroupRequest {
                    stream: stream.clone(),
                    group: group.clone(),
                })
                .await?;
            if !g.json {
                println!("deleted group {group} of {stream}");
            }
        }
    }
    Ok(())
}

fn print_group(g: &Global, d: &v1::GroupDescription) {
    if g.json {
        json(&json!({
            "stream": d.stream,
            "group": d.group,
            "generation": d.generation,
            "assignor": d.assignor,
            "members": d.members.iter().map(|m| json!({
                "member_id": m.member_id,
                "client_id": m.client_id,
                "partitions": m.partitions.iter().map(|tp| format!("{}#{}", tp.topic, tp.partition)).collect::<Vec<_>>(),
                "last_heartbeat_ms": m.last_heartbeat_ms,
            })).collect::<Vec<_>>(),
            "partitions": d.partitions.iter().map(|p| json!({
                "topic": p.topic,
                "partition": p.partition,
                "committed": p.committed,
                "log_start": p.log_start,
                "high_watermark": p.high_watermark,
                "lag": p.lag,
                "member_id": p.member_id,
            })).collect::<Vec<_>>(),
        }));
        return;
    }
    println!(
        "{} {}  (generation {}, {} member(s){})",
        d.stream,
        d.group,
        d.generation,
        d.members.len(),
        if d.assignor.is_empty() {
            String::new()
        } else {
            format!(", {} assignor", d.assignor)
        }
    );
    let rows: Vec<_> = d
        .partitions
        .iter()
        .map(|p| {
            vec![
                p.topic.clone(),
                p.partition.to_string(),
                p.committed.map_or("-".into(), |c| c.to_string()),
                p.high_watermark.to_string(),
                p.lag.to_string(),
                if p.member_id.is_empty() {
                    "-".into()
                } else {
                    p.member_id.clone()
                },
            ]
        })
        .collect();
    table(
        &["TOPIC", "PARTITION", "CURSOR", "END", "LAG", "MEMBER"],
        &rows,
    );
}

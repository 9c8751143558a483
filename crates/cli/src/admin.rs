//! `tributary volume|stream|topic|cluster …`: namespace administration, as human tables by
//! default and JSON with `--json`.

use clap::{Subcommand, ValueEnum};
use serde_json::json;
use tributary_proto::v1;

use crate::Global;
use crate::output::{format_duration_ms, json, parse_duration, table};

#[derive(Debug, Subcommand)]
pub enum VolumeCmd {
    /// Create a volume, e.g. `/acme`.
    Create {
        path: String,
        /// Owner (defaults to the caller).
        #[arg(long)]
        owner: Option<String>,
    },
    /// List volumes.
    List,
    /// Describe a volume.
    Info { path: String },
    /// Delete a volume; refused while it holds streams unless --force.
    Delete {
        path: String,
        /// Also delete every stream in it.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DurabilityArg {
    Sync,
    Buffered,
}

#[derive(Debug, clap::Args)]
pub struct StreamAttrs {
    /// Partitions of topics created without an explicit count.
    #[arg(long)]
    partitions: Option<u32>,
    /// Keep records this long (e.g. 7d, 12h); 0 keeps them forever.
    #[arg(long, value_parser = parse_duration)]
    ttl: Option<std::time::Duration>,
    /// When a produce is acknowledged: after fsync (sync) or from the OS cache (buffered).
    #[arg(long)]
    durability: Option<DurabilityArg>,
    /// Create topics on first produce.
    #[arg(long)]
    autocreate: Option<bool>,
    /// Largest record accepted, in bytes.
    #[arg(long)]
    max_message_bytes: Option<u32>,
}

#[derive(Debug, Subcommand)]
pub enum StreamCmd {
    /// Create a stream, e.g. `/acme/iot/sensors`.
    Create {
        path: String,
        #[command(flatten)]
        attrs: StreamAttrs,
    },
    /// List streams, all or under a volume/path prefix.
    List { prefix: Option<String> },
    /// Describe a stream with its live figures.
    Info { path: String },
    /// Delete a stream, its topics and records.
    Delete { path: String },
}

#[derive(Debug, Subcommand)]
pub enum TopicCmd {
    /// Create a topic, e.g. `/acme/iot/sensors:temperature`.
    Create {
        path: String,
        /// Partition count (defaults to the stream's).
        #[arg(long)]
        partitions: Option<u32>,
    },
    /// List the topics of a stream.
    List { stream: String },
    /// Describe a topic with per-partition offsets.
    Info { path: String },
    /// Delete a topic and its records.
    Delete { path: String },
}

#[derive(Debug, Subcommand)]
pub enum ClusterCmd {
    /// Show the cluster id and server version.
    Info,
}

pub async fn volume(g: &Global, cmd: VolumeCmd) -> anyhow::Result<()> {
    let mut admin = g.connect().await?.admin();
    match cmd {
        VolumeCmd::Create { path, owner } => {
            let v = admin
                .create_volume(v1::CreateVolumeRequest {
                    path,
                    owner: owner.unwrap_or_default(),
                })
                .await?;
            print_volumes(g, &[v.into_inner()], "created");
        }
        VolumeCmd::List => {
            let r = admin
                .list_volumes(v1::ListVolumesRequest {})
                .await?
                .into_inner();
            print_volumes(g, &r.volumes, "");
        }
        VolumeCmd::Info { path } => {
            let v = admin
                .describe_volume(v1::DescribeVolumeRequest { path })
                .await?
                .into_inner();
            print_volumes(g, &[v], "");
        }
        VolumeCmd::Delete { path, force } => {
            admin
                .delete_volume(v1::DeleteVolumeRequest {
                    path: path.clone(),
                    force,
                })
                .await?;
            done(g, "deleted", &path);
        }
    }
    Ok(())
}

pub async fn stream(g: &Global, cmd: StreamCmd) -> anyhow::Result<()> {
    let mut admin = g.connect().await?.admin();
    match cmd {
        StreamCmd::Create { path, attrs } => {
            let attributes = v1::StreamAttributes {
                default_partitions: attrs.partitions,
                autocreate_topics: attrs.autocreate,
                durability: match attrs.durability {
                    None => v1::Durability::Unspecified,
                    Some(DurabilityArg::Sync) => v1::Durability::Sync,
                    Some(DurabilityArg::Buffered) => v1::Durability::Buffered,
                } as i32,
                ttl_ms: attrs.ttl.map(|d| d.as_millis() as u64),
                max_message_bytes: attrs.max_message_bytes,
            };
            let s = admin
                .create_stream(v1::CreateStreamRequest {
                    path,
                    attributes: Some(attributes),
                })
                .await?;
            print_streams(g, &[s.into_inner()], false);
        }
        StreamCmd::List { prefix } => {
            let r = admin
                .list_streams(v1::ListStreamsRequest {
                    prefix: prefix.unwrap_or_default(),
                })
                .await?;
            print_streams(g, &r.into_inner().streams, false);
        }
        StreamCmd::Info { path } => {
            let s = admin
                .describe_stream(v1::DescribeStreamRequest { path })
                .await?
                .into_inner();
            print_streams(g, &[s], true);
        }
        StreamCmd::Delete { path } => {
            admin
                .delete_stream(v1::DeleteStreamRequest { path: path.clone() })
                .await?;
            done(g, "deleted", &path);
        }
    }
    Ok(())
}

pub async fn topic(g: &Global, cmd: TopicCmd) -> anyhow::Result<()> {
    let mut admin = g.connect().await?.admin();
    match cmd {
        TopicCmd::Create { path, partitions } => {
            let t = admin
                .create_topic(v1::CreateTopicRequest { path, partitions })
                .await?
                .into_inner();
            print_topics(g, &[t]);
        }
        TopicCmd::List { stream } => {
            let r = admin
                .list_topics(v1::ListTopicsRequest { stream })
                .await?
                .into_inner();
            print_topics(g, &r.topics);
        }
        TopicCmd::Info { path } => {
            let t = admin
                .describe_topic(v1::DescribeTopicRequest { path })
                .await?
                .into_inner();
            if g.json {
                json(&topic_json(&t));
            } else {
                println!("{}  ({} partitions)", t.path, t.partitions);
                let rows: Vec<_> = t
                    .partition_info
                    .iter()
                    .map(|p| {
                        vec![
                            p.partition.to_string(),
                            p.earliest_offset.to_string(),
                            p.latest_offset.to_string(),
                            p.records.to_string(),
                            p.bytes.to_string(),
                            p.latest_append_ms.map_or("-".into(), time),
                        ]
                    })
                    .collect();
                table(
                    &[
                        "PARTITION",
                        "EARLIEST",
                        "LATEST",
                        "RECORDS",
                        "BYTES",
                        "LAST APPEND",
                    ],
                    &rows,
                );
            }
        }
        TopicCmd::Delete { path } => {
            admin
                .delete_topic(v1::DeleteTopicRequest { path: path.clone() })
                .await?;
            done(g, "deleted", &path);
        }
    }
    Ok(())
}

pub async fn cluster(g: &Global, cmd: ClusterCmd) -> anyhow::Result<()> {
    let ClusterCmd::Info = cmd;
    let c = g
        .connect()
        .await?
        .admin()
        .get_cluster(v1::GetClusterRequest {})
        .await?
        .into_inner();
    if g.json {
        json(&json!({ "cluster_id": c.cluster_id, "name": c.name, "version": c.version }));
    } else {
        table(&["CLUSTER ID", "VERSION"], &[vec![c.cluster_id, c.version]]);
    }
    Ok(())
}

fn done(g: &Global, what: &str, path: &str) {
    if g.json {
        json(&json!({ "path": path, "result": what }));
    } else {
        println!("{what} {path}");
    }
}

fn time(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

fn print_volumes(g: &Global, vs: &[v1::Volume], verb: &str) {
    if g.json {
        for v in vs {
            json(
                &json!({ "path": v.path, "owner": v.owner, "created_ms": v.created_ms, "streams": v.stream_count }),
            );
        }
    } else if !verb.is_empty() && vs.len() == 1 {
        println!("{verb} {}", vs[0].path);
    } else {
        let rows: Vec<_> = vs
            .iter()
            .map(|v| {
                vec![
                    v.path.clone(),
                    v.owner.clone(),
                    v.stream_count.to_string(),
                    time(v.created_ms),
                ]
            })
            .collect();
        table(&["VOLUME", "OWNER", "STREAMS", "CREATED"], &rows);
    }
}

fn durability_name(d: i32) -> &'static str {
    match v1::Durability::try_from(d) {
        Ok(v1::Durability::Sync) => "sync",
        Ok(v1::Durability::Buffered) => "buffered",
        _ => "unspecified",
    }
}

fn print_streams(g: &Global, ss: &[v1::Stream], figures: bool) {
    if g.json {
        for s in ss {
            let a = s.attributes.unwrap_or_default();
            json(&json!({
                "path": s.path,
                "default_partitions": a.default_partitions,
                "autocreate": a.autocreate_topics,
                "durability": durability_name(a.durability),
                "ttl_ms": a.ttl_ms,
                "max_message_bytes": a.max_message_bytes,
                "created_ms": s.created_ms,
                "topics": s.topic_count,
                "partitions": s.partition_count,
                "records": s.records,
                "bytes": s.bytes,
            }));
        }
        return;
    }
    let mut header = vec![
        "STREAM",
        "PARTITIONS",
        "TTL",
        "DURABILITY",
        "AUTOCREATE",
        "TOPICS",
    ];
    if figures {
        header.extend(["RECORDS", "BYTES"]);
    }
    let rows: Vec<_> = ss
        .iter()
        .map(|s| {
            let a = s.attributes.unwrap_or_default();
            let mut row = vec![
                s.path.clone(),
                a.default_partitions.unwrap_or(1).to_string(),
                format_duration_ms(a.ttl_ms.unwrap_or(0)),
                durability_name(a.durability).into(),
                a.autocreate_topics.unwrap_or(true).to_string(),
                s.topic_count.to_string(),
            ];
            if figures {
                row.extend([s.records.to_string(), s.bytes.to_string()]);
            }
            row
        })
        .collect();
    table(&header, &rows);
}

fn topic_json(t: &v1::Topic) -> serde_json::Value {
    json!({
        "path": t.path,
        "partitions": t.partitions,
        "created_ms": t.created_ms,
        "partition_info": t.partition_info.iter().map(|p| json!({
            "partition": p.partition,
            "earliest_offset": p.earliest_offset,
            "latest_offset": p.latest_offset,
            "records": p.records,
            "bytes": p.bytes,
            "earliest_append_ms": p.earliest_append_ms,
            "latest_append_ms": p.latest_append_ms,
        })).collect::<Vec<_>>(),
    })
}

fn print_topics(g: &Global, ts: &[v1::Topic]) {
    if g.json {
        ts.iter().for_each(|t| json(&topic_json(t)));
    } else {
        let rows: Vec<_> = ts
            .iter()
            .map(|t| vec![t.path.clone(), t.partitions.to_string(), time(t.created_ms)])
            .collect();
        table(&["TOPIC", "PARTITIONS", "CREATED"], &rows);
    }
}

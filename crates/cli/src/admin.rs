//! `tributary volume|stream|topic|cluster …`: namespace administration, as human tables by
//! default and JSON with `--json`.

use clap::{Subcommand, ValueEnum};
use serde_json::json;
use tributary_proto::v1;

use crate::Global;
use crate::output::{format_duration_ms, json, parse_duration, table};

#[derive(Debug, Subcommand)]
pub enum VolumeCmd {
    /// Create a volume, e.g. `/acme` (cluster admins).
    Create {
        path: String,
        /// Owner (defaults to the caller).
        #[arg(long)]
        owner: Option<String>,
        #[command(flatten)]
        settings: VolumeSettings,
    },
    /// Change a volume's admin ACL (volume admins), or its owner and quotas (cluster admins).
    Edit {
        path: String,
        /// New owner.
        #[arg(long)]
        owner: Option<String>,
        #[command(flatten)]
        settings: VolumeSettings,
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

#[derive(Debug, clap::Args)]
pub struct VolumeSettings {
    /// Who administers the volume and its streams (ACL expression; default `u:OWNER`).
    #[arg(long, value_name = "EXPR")]
    admin_perm: Option<String>,
    /// Quota on bytes stored in the volume (`none` for unlimited).
    #[arg(long, value_parser = parse_limit, value_name = "N|none")]
    max_bytes: Option<Limit>,
    /// Quota on the number of streams.
    #[arg(long, value_parser = parse_limit, value_name = "N|none")]
    max_streams: Option<Limit>,
    /// Quota on the number of topics.
    #[arg(long, value_parser = parse_limit, value_name = "N|none")]
    max_topics: Option<Limit>,
}

/// A quota value: a number, or `none` for unlimited.
#[derive(Debug, Clone, Copy)]
pub struct Limit(Option<u64>);

fn parse_limit(s: &str) -> Result<Limit, String> {
    match s {
        "none" | "unlimited" => Ok(Limit(None)),
        n => n
            .parse()
            .map(|n| Limit(Some(n)))
            .map_err(|_| format!("`{n}` is not a number or `none`")),
    }
}

impl VolumeSettings {
    fn any_quota(&self) -> bool {
        self.max_bytes.is_some() || self.max_streams.is_some() || self.max_topics.is_some()
    }

    /// Quotas given on the command line over `base` (the current ones, when editing).
    fn quotas(&self, base: Option<v1::VolumeQuotas>) -> v1::VolumeQuotas {
        let base = base.unwrap_or_default();
        v1::VolumeQuotas {
            max_bytes: self.max_bytes.map_or(base.max_bytes, |l| l.0),
            max_streams: self.max_streams.map_or(base.max_streams, |l| l.0),
            max_topics: self.max_topics.map_or(base.max_topics, |l| l.0),
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TimestampTypeArg {
    CreateTime,
    LogAppendTime,
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
    /// Retention by size: keep at most this many bytes per partition, oldest batches going
    /// first (0: no cap).
    #[arg(long, value_name = "BYTES")]
    max_bytes_per_partition: Option<u64>,
    /// Which timestamp TTL and seek by time use: the producer's (create-time) or the
    /// server's (log-append-time).
    #[arg(long)]
    timestamp_type: Option<TimestampTypeArg>,
    /// Key compaction: keep the latest record of each key (records then need keys).
    #[arg(long, value_name = "true|false")]
    compact: Option<bool>,
    /// In a compacted stream, how long a tombstone (an empty value) stays once it is its
    /// key's latest record (e.g. 1d, 12h).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    delete_retention: Option<std::time::Duration>,
    /// Who may produce (ACL expression such as `u:alice | g:ops`; default: the creator).
    #[arg(long, value_name = "EXPR")]
    produce_perm: Option<String>,
    /// Who may consume.
    #[arg(long, value_name = "EXPR")]
    consume_perm: Option<String>,
    /// Who may create, edit and delete topics.
    #[arg(long, value_name = "EXPR")]
    topic_perm: Option<String>,
    /// Who may replicate the stream to another cluster.
    #[arg(long, value_name = "EXPR")]
    copy_perm: Option<String>,
    /// Who may edit and delete the stream.
    #[arg(long, value_name = "EXPR")]
    admin_perm: Option<String>,
}

impl StreamAttrs {
    fn to_proto(&self) -> v1::StreamAttributes {
        v1::StreamAttributes {
            default_partitions: self.partitions,
            autocreate_topics: self.autocreate,
            durability: match self.durability {
                None => v1::Durability::Unspecified,
                Some(DurabilityArg::Sync) => v1::Durability::Sync,
                Some(DurabilityArg::Buffered) => v1::Durability::Buffered,
            } as i32,
            ttl_ms: self.ttl.map(|d| d.as_millis() as u64),
            max_message_bytes: self.max_message_bytes,
            max_bytes_per_partition: self.max_bytes_per_partition,
            timestamp_type: match self.timestamp_type {
                None => v1::TimestampType::Unspecified,
                Some(TimestampTypeArg::CreateTime) => v1::TimestampType::CreateTime,
                Some(TimestampTypeArg::LogAppendTime) => v1::TimestampType::LogAppendTime,
            } as i32,
            compact: self.compact,
            delete_retention_ms: self.delete_retention.map(|d| d.as_millis() as u64),
            produce_perm: self.produce_perm.clone(),
            consume_perm: self.consume_perm.clone(),
            topic_perm: self.topic_perm.clone(),
            copy_perm: self.copy_perm.clone(),
            admin_perm: self.admin_perm.clone(),
        }
    }
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
    /// Describe a stream with its live figures and permissions.
    Info { path: String },
    /// Change a stream's attributes or permissions; the others stay as they are.
    Edit {
        path: String,
        #[command(flatten)]
        attrs: StreamAttrs,
    },
    /// Run retention now: remove records past the stream's TTL or size cap, compact keys on a
    /// compacted stream, and reclaim the space.
    Purge { path: String },
    /// Delete a stream, its topics and records.
    Delete { path: String },
    /// Make an offset-keeping mirror a normal writable stream (failover): its mirror link
    /// is removed and producers are accepted.
    Promote { path: String },
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
    /// Add partitions to a topic (it never shrinks).
    Edit {
        path: String,
        /// The new partition count.
        #[arg(long)]
        partitions: u32,
    },
    /// Delete a topic and its records.
    Delete { path: String },
}

#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Create a user and print its token (shown only once).
    Create {
        name: String,
        /// Groups, comma-separated.
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
        /// Make the user a cluster admin.
        #[arg(long)]
        cluster_admin: bool,
    },
    /// List users.
    List,
    /// Describe a user.
    Info { name: String },
    /// Change a user's settings; the others stay as they are.
    Edit {
        name: String,
        /// Where the Kafka door resolves the user's flat topic names and group ids, after
        /// the alias rules and before the listener's default (`none` clears it).
        #[arg(long, value_name = "/VOLUME/STREAM|none")]
        kafka_default_stream: Option<String>,
    },
    /// Delete a user; its token stops working.
    Delete { name: String },
    /// Show who the server takes you for.
    Whoami,
    /// Manage a user's token.
    #[command(subcommand)]
    Token(TokenCmd),
}

#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Replace a user's token (yours when NAME is absent) and print the new one.
    Rotate { name: Option<String> },
}

#[derive(Debug, Subcommand)]
pub enum ClusterCmd {
    /// Show the cluster id and server version.
    Info,
}

pub async fn volume(g: &Global, cmd: VolumeCmd) -> anyhow::Result<()> {
    let mut admin = g.connect().await?.admin();
    match cmd {
        VolumeCmd::Create {
            path,
            owner,
            settings,
        } => {
            let req = v1::CreateVolumeRequest {
                path,
                owner: owner.unwrap_or_default(),
                admin_perm: settings.admin_perm.clone(),
                quotas: Some(settings.quotas(None)),
            };
            let v = admin.create_volume(req).await?;
            print_volumes(g, &[v.into_inner()], "created");
        }
        VolumeCmd::Edit {
            path,
            owner,
            settings,
        } => {
            let quotas = if settings.any_quota() {
                let current = admin
                    .describe_volume(v1::DescribeVolumeRequest { path: path.clone() })
                    .await?;
                Some(settings.quotas(current.into_inner().quotas))
            } else {
                None
            };
            let req = v1::EditVolumeRequest {
                path,
                owner,
                admin_perm: settings.admin_perm.clone(),
                quotas,
            };
            let v = admin.edit_volume(req).await?;
            print_volumes(g, &[v.into_inner()], "");
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
            let req = v1::CreateStreamRequest {
                path,
                attributes: Some(attrs.to_proto()),
            };
            let s = admin.create_stream(req).await?.into_inner();
            print_streams(g, &[s], false);
        }
        StreamCmd::Edit { path, attrs } => {
            let req = v1::EditStreamRequest {
                path,
                attributes: Some(attrs.to_proto()),
            };
            let s = admin.edit_stream(req).await?.into_inner();
            print_streams(g, &[s], true);
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
        StreamCmd::Purge { path } => {
            let r = admin
                .purge_stream(v1::PurgeStreamRequest { path: path.clone() })
                .await?
                .into_inner();
            if g.json {
                json(
                    &json!({ "path": path, "purged_records": r.purged_records, "purged_bytes": r.purged_bytes }),
                );
            } else {
                println!(
                    "purged {} records ({} bytes) from {path}",
                    r.purged_records, r.purged_bytes
                );
            }
        }
        StreamCmd::Delete { path } => {
            admin
                .delete_stream(v1::DeleteStreamRequest { path: path.clone() })
                .await?;
            done(g, "deleted", &path);
        }
        StreamCmd::Promote { path } => {
            let s = g
                .connect()
                .await?
                .replication()
                .promote_stream(v1::PromoteStreamRequest { path })
                .await?
                .into_inner();
            print_streams(g, &[s], true);
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
        TopicCmd::Edit { path, partitions } => {
            let req = v1::EditTopicRequest {
                path,
                partitions: Some(partitions),
            };
            let t = admin.edit_topic(req).await?.into_inner();
            print_topic_info(g, &t);
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
            print_topic_info(g, &t);
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

pub async fn user(g: &Global, cmd: UserCmd) -> anyhow::Result<()> {
    let mut admin = g.connect().await?.admin();
    match cmd {
        UserCmd::Create {
            name,
            groups,
            cluster_admin,
        } => {
            let r = admin
                .create_user(v1::CreateUserRequest {
                    name,
                    groups,
                    cluster_admin,
                })
                .await?
                .into_inner();
            let u = r.user.unwrap_or_default();
            if g.json {
                json(
                    &json!({ "name": u.name, "groups": u.groups, "cluster_admin": u.cluster_admin, "token": r.token }),
                );
            } else {
                eprintln!("created user {}; its token (shown only now):", u.name);
                println!("{}", r.token);
            }
        }
        UserCmd::List => {
            let r = admin
                .list_users(v1::ListUsersRequest {})
                .await?
                .into_inner();
            print_users(g, &r.users);
        }
        UserCmd::Info { name } => {
            let r = admin
                .list_users(v1::ListUsersRequest {})
                .await?
                .into_inner();
            let Some(u) = r.users.into_iter().find(|u| u.name == name) else {
                anyhow::bail!("no user {name}");
            };
            print_users(g, &[u]);
        }
        UserCmd::Edit {
            name,
            kafka_default_stream,
        } => {
            let req = v1::EditUserRequest {
                name,
                kafka_default_stream: kafka_default_stream
                    .map(|s| if s == "none" { String::new() } else { s }),
            };
            let u = admin.edit_user(req).await?.into_inner();
            print_users(g, &[u]);
        }
        UserCmd::Delete { name } => {
            admin
                .delete_user(v1::DeleteUserRequest { name: name.clone() })
                .await?;
            done(g, "deleted", &name);
        }
        UserCmd::Whoami => {
            let u = admin.who_am_i(v1::WhoAmIRequest {}).await?.into_inner();
            print_users(g, &[u]);
        }
        UserCmd::Token(TokenCmd::Rotate { name }) => {
            let req = v1::RotateTokenRequest {
                name: name.unwrap_or_default(),
            };
            let r = admin.rotate_token(req).await?.into_inner();
            if g.json {
                json(&json!({ "token": r.token }));
            } else {
                eprintln!("new token (shown only now; the old one no longer works):");
                println!("{}", r.token);
            }
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

pub(crate) fn time(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

fn limit(v: Option<u64>) -> String {
    v.map_or("-".into(), |n| n.to_string())
}

fn print_users(g: &Global, us: &[v1::User]) {
    if g.json {
        for u in us {
            json(
                &json!({ "name": u.name, "groups": u.groups, "cluster_admin": u.cluster_admin, "created_ms": u.created_ms, "kafka_default_stream": u.kafka_default_stream }),
            );
        }
    } else {
        let rows: Vec<_> = us
            .iter()
            .map(|u| {
                vec![
                    u.name.clone(),
                    u.groups.join(","),
                    u.cluster_admin.to_string(),
                    u.kafka_default_stream.clone().unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        table(
            &["USER", "GROUPS", "CLUSTER ADMIN", "KAFKA DEFAULT STREAM"],
            &rows,
        );
    }
}

fn print_volumes(g: &Global, vs: &[v1::Volume], verb: &str) {
    if g.json {
        for v in vs {
            let q = v.quotas.unwrap_or_default();
            json(&json!({
                "path": v.path,
                "owner": v.owner,
                "admin_perm": v.admin_perm,
                "created_ms": v.created_ms,
                "streams": v.stream_count,
                "topics": v.topic_count,
                "bytes": v.bytes,
                "max_bytes": q.max_bytes,
                "max_streams": q.max_streams,
                "max_topics": q.max_topics,
            }));
        }
    } else if !verb.is_empty() && vs.len() == 1 {
        println!("{verb} {}", vs[0].path);
    } else {
        let rows: Vec<_> = vs
            .iter()
            .map(|v| {
                let q = v.quotas.unwrap_or_default();
                vec![
                    v.path.clone(),
                    v.owner.clone(),
                    v.admin_perm.clone(),
                    format!("{}/{}", v.stream_count, limit(q.max_streams)),
                    format!("{}/{}", v.topic_count, limit(q.max_topics)),
                    format!("{}/{}", v.bytes, limit(q.max_bytes)),
                ]
            })
            .collect();
        table(
            &["VOLUME", "OWNER", "ADMIN", "STREAMS", "TOPICS", "BYTES"],
            &rows,
        );
    }
}

fn timestamp_type_name(t: i32) -> &'static str {
    match v1::TimestampType::try_from(t) {
        Ok(v1::TimestampType::LogAppendTime) => "log-append-time",
        _ => "create-time",
    }
}

fn durability_name(d: i32) -> &'static str {
    match v1::Durability::try_from(d) {
        Ok(v1::Durability::Sync) => "sync",
        Ok(v1::Durability::Buffered) => "buffered",
        _ => "unspecified",
    }
}

fn print_streams(g: &Global, ss: &[v1::Stream], details: bool) {
    if g.json {
        for s in ss {
            let a = s.attributes.clone().unwrap_or_default();
            json(&json!({
                "path": s.path,
                "default_partitions": a.default_partitions,
                "autocreate": a.autocreate_topics,
                "durability": durability_name(a.durability),
                "ttl_ms": a.ttl_ms,
                "max_message_bytes": a.max_message_bytes,
                "max_bytes_per_partition": a.max_bytes_per_partition,
                "timestamp_type": timestamp_type_name(a.timestamp_type),
                "compact": a.compact,
                "delete_retention_ms": a.delete_retention_ms,
                "produce_perm": a.produce_perm,
                "consume_perm": a.consume_perm,
                "topic_perm": a.topic_perm,
                "copy_perm": a.copy_perm,
                "admin_perm": a.admin_perm,
                "created_ms": s.created_ms,
                "topics": s.topic_count,
                "partitions": s.partition_count,
                "records": s.records,
                "bytes": s.bytes,
                "purged_records": s.purged_records,
                "purged_bytes": s.purged_bytes,
                "earliest_append_ms": s.earliest_append_ms,
                "mirror_of": s.mirror_of,
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
        "COMPACT",
        "TOPICS",
    ];
    if details {
        header.extend(["RECORDS", "BYTES", "PURGED BYTES", "OLDEST APPEND"]);
    }
    let rows: Vec<_> = ss
        .iter()
        .map(|s| {
            let a = s.attributes.clone().unwrap_or_default();
            let mut row = vec![
                s.path.clone(),
                a.default_partitions.unwrap_or(1).to_string(),
                format_duration_ms(a.ttl_ms.unwrap_or(0)),
                durability_name(a.durability).into(),
                a.autocreate_topics.unwrap_or(true).to_string(),
                match a.compact {
                    Some(true) => format!(
                        "true (tombstones {})",
                        format_duration_ms(a.delete_retention_ms.unwrap_or(0))
                    ),
                    _ => "false".into(),
                },
                s.topic_count.to_string(),
            ];
            if details {
                row.extend([
                    s.records.to_string(),
                    s.bytes.to_string(),
                    s.purged_bytes.to_string(),
                    s.earliest_append_ms.map_or("-".into(), time),
                ]);
            }
            row
        })
        .collect();
    table(&header, &rows);
    if details && ss.len() == 1 {
        let a = ss[0].attributes.clone().unwrap_or_default();
        println!("\ntimestamps: {}", timestamp_type_name(a.timestamp_type));
        if !ss[0].mirror_of.is_empty() {
            println!(
                "mirror of: {} (read-only; `stream promote` makes it writable)",
                ss[0].mirror_of
            );
        }
        let perms = [
            ("produce", a.produce_perm),
            ("consume", a.consume_perm),
            ("topic", a.topic_perm),
            ("copy", a.copy_perm),
            ("admin", a.admin_perm),
        ];
        println!();
        let rows: Vec<_> = perms
            .into_iter()
            .map(|(p, e)| vec![p.to_string(), e.unwrap_or_default()])
            .collect();
        table(&["PERMISSION", "WHO"], &rows);
    }
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
            "purged_records": p.purged_records,
            "purged_bytes": p.purged_bytes,
        })).collect::<Vec<_>>(),
    })
}

fn print_topic_info(g: &Global, t: &v1::Topic) {
    if g.json {
        json(&topic_json(t));
        return;
    }
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
                p.earliest_append_ms.map_or("-".into(), time),
                p.latest_append_ms.map_or("-".into(), time),
                p.purged_bytes.to_string(),
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
            "FIRST APPEND",
            "LAST APPEND",
            "PURGED BYTES",
        ],
        &rows,
    );
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

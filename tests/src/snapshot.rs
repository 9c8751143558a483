//! Everything a server stores, read back through the public API as the cluster admin, so a
//! test can show that refused requests changed nothing: users, volumes, streams with their
//! attributes, topics with their partition figures, and every stored batch byte for byte.

use std::fmt::Write;
use std::hash::{Hash, Hasher};

use tributary_client::Client;
use tributary_proto::v1;

/// The store's contents, one line per user, volume, stream, topic and batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub lines: Vec<String>,
}

impl Snapshot {
    /// A checksum of the lines, for messages; compare snapshots with `==` for a diff.
    pub fn checksum(&self) -> u64 {
        let mut h = std::hash::DefaultHasher::new();
        self.lines.hash(&mut h);
        h.finish()
    }

    /// Stored batches (the `batch` lines).
    pub fn batches(&self) -> usize {
        self.lines
            .iter()
            .filter(|l| l.starts_with("batch "))
            .count()
    }
}

/// Reads everything `admin` (a cluster admin's client) can see.
pub async fn snapshot(admin: &Client) -> anyhow::Result<Snapshot> {
    let mut a = admin.admin();
    let mut lines = Vec::new();
    let users = a.list_users(v1::ListUsersRequest {}).await?.into_inner();
    lines.extend(users.users.iter().map(|u| format!("user {u:?}")));
    let volumes = a
        .list_volumes(v1::ListVolumesRequest {})
        .await?
        .into_inner();
    lines.extend(volumes.volumes.iter().map(|v| format!("volume {v:?}")));
    let streams = a
        .list_streams(v1::ListStreamsRequest {
            prefix: String::new(),
        })
        .await?
        .into_inner();
    for s in streams.streams {
        let s = a
            .describe_stream(v1::DescribeStreamRequest { path: s.path })
            .await?
            .into_inner();
        lines.push(format!("stream {s:?}"));
        let topics = a
            .list_topics(v1::ListTopicsRequest {
                stream: s.path.clone(),
            })
            .await?
            .into_inner();
        for t in topics.topics {
            let t = a
                .describe_topic(v1::DescribeTopicRequest { path: t.path })
                .await?
                .into_inner();
            lines.push(format!("topic {t:?}"));
            for p in &t.partition_info {
                let mut offset = p.earliest_offset;
                while offset < p.latest_offset {
                    let r = admin
                        .consumer()
                        .fetch(v1::FetchRequest {
                            topic: t.path.clone(),
                            partition: p.partition,
                            offset,
                            max_bytes: 0,
                            max_wait_ms: 0,
                        })
                        .await?
                        .into_inner();
                    anyhow::ensure!(
                        !r.batches.is_empty(),
                        "{} #{}: no batch at {offset}",
                        t.path,
                        p.partition
                    );
                    for b in r.batches {
                        let mut line = format!("batch {} #{} ", t.path, p.partition);
                        write!(line, "{b:?}")?;
                        offset = b.base_offset + b.records.len() as u64;
                        lines.push(line);
                    }
                }
            }
        }
    }
    Ok(Snapshot { lines })
}

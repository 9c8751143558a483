//! Replication checks for the end-to-end tests: the convergence checker and a wait until
//! clusters converge.
//!
//! The checker reads every partition of the given topics at every cluster, groups records
//! by origin, and demands that each origin's records appear at every cluster exactly as in
//! the origin's own log: the same origin offsets and values, in origin order, none missing
//! and none twice, and nothing else in the log.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use bytes::Bytes;
use tributary_client::Client;
use tributary_proto::v1;

/// One record as the checker sees it: `(origin cluster, origin offset, local offset, value)`.
pub type Entry = ([u8; 16], u64, u64, Bytes);

/// Every record of one partition at one cluster, in offset order.
pub async fn read_partition(
    client: &Client,
    topic: &str,
    partition: u32,
) -> anyhow::Result<Vec<Entry>> {
    let mut consumer = client.consumer();
    let mut offset = client
        .list_offsets(topic, &[partition], false)
        .await
        .with_context(|| format!("earliest offset of {topic} #{partition}"))?[0]
        .1;
    let mut out = Vec::new();
    loop {
        let r = consumer
            .fetch(v1::FetchRequest {
                topic: topic.into(),
                partition,
                offset,
                max_bytes: 4 << 20,
                max_wait_ms: 0,
            })
            .await
            .with_context(|| format!("fetch {topic} #{partition} at {offset}"))?
            .into_inner();
        if r.batches.is_empty() {
            return Ok(out);
        }
        for b in r.batches {
            let origin: [u8; 16] = b
                .origin_cluster
                .as_ref()
                .try_into()
                .context("a stored batch names its origin")?;
            let next = b.base_offset + b.records.len() as u64;
            for (i, rec) in b.records.into_iter().enumerate() {
                let local = b.base_offset + i as u64;
                if local >= offset {
                    out.push((
                        origin,
                        b.origin_base_offset + i as u64,
                        local,
                        rec.value.unwrap_or_default(),
                    ));
                }
            }
            offset = offset.max(next);
        }
    }
}

/// This cluster's id, as batches name their origin.
pub async fn cluster_id(client: &Client) -> [u8; 16] {
    let c = client
        .admin()
        .get_cluster(v1::GetClusterRequest {})
        .await
        .expect("get cluster")
        .into_inner();
    let hex: String = c.cluster_id.chars().filter(|c| *c != '-').collect();
    let mut id = [0u8; 16];
    for (i, b) in id.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("a UUID");
    }
    id
}

/// What a successful check saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Converged {
    pub partitions: usize,
    /// Records per cluster (the same at every cluster).
    pub records: u64,
}

/// Checks that `clusters` agree on every partition of `topics` (full topic paths with
/// `partitions` each): per partition and origin, each cluster holds exactly the origin's own
/// sequence.
pub async fn check_convergence(
    clusters: &[&Client],
    topics: &[&str],
    partitions: u32,
) -> anyhow::Result<Converged> {
    let mut ids = Vec::new();
    for c in clusters {
        ids.push(cluster_id(c).await);
    }
    let mut records = 0u64;
    for topic in topics {
        for p in 0..partitions {
            let mut logs = Vec::new();
            for c in clusters {
                logs.push(read_partition(c, topic, p).await?);
            }
            // Each origin's own sequence, from its own log.
            let mut truth: BTreeMap<[u8; 16], Vec<(u64, Bytes)>> = BTreeMap::new();
            for (id, log) in ids.iter().zip(&logs) {
                truth.insert(
                    *id,
                    log.iter()
                        .filter(|e| e.0 == *id)
                        .map(|e| (e.1, e.3.clone()))
                        .collect(),
                );
            }
            let expected: usize = truth.values().map(Vec::len).sum();
            for (c, log) in logs.iter().enumerate() {
                let mut by_origin: BTreeMap<[u8; 16], Vec<(u64, Bytes)>> = BTreeMap::new();
                for e in log {
                    by_origin.entry(e.0).or_default().push((e.1, e.3.clone()));
                }
                for (origin, seq) in &by_origin {
                    let Some(want) = truth.get(origin) else {
                        bail!("{topic} #{p} at cluster {c}: records of an unknown origin");
                    };
                    if seq != want {
                        let dup = seq.windows(2).any(|w| w[0].0 >= w[1].0);
                        bail!(
                            "{topic} #{p} at cluster {c}: origin {} has {} records, its own \
                             log {}{}",
                            hex(origin),
                            seq.len(),
                            want.len(),
                            if dup {
                                " (out of order or duplicated)"
                            } else {
                                ""
                            }
                        );
                    }
                }
                ensure!(
                    log.len() == expected,
                    "{topic} #{p} at cluster {c}: {} records, every origin together {expected}",
                    log.len()
                );
                // Local offsets are dense (no retention or compaction in these tests).
                ensure!(
                    log.iter().enumerate().all(|(i, e)| e.2 == i as u64),
                    "{topic} #{p} at cluster {c}: offsets are not dense from 0"
                );
            }
            records += expected as u64;
        }
    }
    Ok(Converged {
        partitions: topics.len() * partitions as usize,
        records,
    })
}

/// Waits until [`check_convergence`] passes and every cluster holds `expected` records in
/// all; panics with the last disagreement after `timeout`.
pub async fn wait_converged(
    clusters: &[&Client],
    topics: &[&str],
    partitions: u32,
    expected: u64,
    timeout: Duration,
) -> Converged {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match check_convergence(clusters, topics, partitions).await {
            Ok(c) if c.records == expected => return c,
            Ok(c) => format!("{} of {expected} records everywhere", c.records),
            Err(e) => format!("{e:#}"),
        };
        assert!(
            Instant::now() < deadline,
            "clusters did not converge in {timeout:?}: {last}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await; // poll interval
    }
}

fn hex(id: &[u8; 16]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

//! The downstream side of replication: applying a pull response to the link's destination
//! stream. Topics follow the source's shape; each pulled batch keeps its origin and is
//! stored with this cluster's offsets (or, on a mirror, the source's), through the store's
//! exactly-once write; the link's position moves in the same write.
//!
//! Here replication reads what it needs off each pulled batch's framing (its count, origin
//! and timestamps: decoding every record made catch-up seven times slower), builds the
//! bytes to store (cutting off a head already applied), detects lost records and keeps the
//! link's status and metrics. The link's [`ReplicaTarget`] (the namespace) decides the rest:
//! creating and growing topics, the volume's byte quota, the write itself, and which of a
//! mirror's cursors to commit (not those of groups live here, none past what this cluster
//! holds), since those are the catalog's and the live groups' rules.

use bytes::Bytes;
use tributary_core::batch::{self, ServerFields};
use tributary_volume::{
    Error, LinkRow, MirrorCursor, Namespace, NewBatch, PulledBatch, ReplicaTarget, Result,
    UpstreamPosition,
};

use crate::protocol::{Position, PullChunk, PullResponse};
use crate::status::LiveStatus;

/// A pulled batch, decoded once.
struct Decoded {
    records: u32,
    body: Vec<u8>,
    fields: ServerFields,
    max_timestamp_ms: i64,
}

/// A link's stored positions, as a pull request gives them; the status learns them too.
pub(crate) async fn positions(
    ns: &Namespace,
    link: &LinkRow,
    status: &LiveStatus,
) -> Result<Vec<Position>> {
    let positions: Vec<Position> = ns
        .replica(link)?
        .positions()
        .await?
        .into_iter()
        .map(|p| Position {
            topic: p.topic,
            partition: p.partition,
            next_offset: p.at.next_offset,
            upstream_incarnation: p.at.upstream_incarnation,
        })
        .collect();
    status.change(|s| {
        s.positions(
            positions
                .iter()
                .map(|p| ((p.topic.clone(), p.partition), p.next_offset)),
        )
    });
    Ok(positions)
}

/// Applies one pull response of `link`: topics, then batches, then cursors.
pub(crate) async fn apply(
    ns: &Namespace,
    link: &LinkRow,
    status: &LiveStatus,
    resp: PullResponse,
) -> Result<()> {
    let target = ns.replica(link)?;
    for shape in &resp.topics {
        target.ensure_topic(&shape.name, shape.partitions).await?;
    }
    for chunk in resp.chunks {
        apply_chunk(&target, link, status, resp.upstream_incarnation, chunk).await?;
    }
    if link.mirror && resp.cursors_sent {
        let cursors = resp
            .cursors
            .into_iter()
            .map(|c| MirrorCursor {
                group: c.group,
                topic: c.topic,
                partition: c.partition,
                offset: c.offset,
            })
            .collect();
        target.commit_cursors(cursors).await?;
    }
    let now = ns.clock().now_ms();
    status.change(|s| s.contacted(now));
    Ok(())
}

async fn apply_chunk(
    target: &ReplicaTarget<'_>,
    link: &LinkRow,
    status: &LiveStatus,
    upstream_incarnation: u32,
    chunk: PullChunk,
) -> Result<()> {
    let partition = target.partition(&chunk.topic, chunk.partition).await?;
    let key = (chunk.topic.clone(), chunk.partition);
    let before = status.change(|s| s.position(&key));
    if let Some(pos) = before
        && pos < chunk.log_start
        && chunk.next_offset > pos
    {
        let lost = chunk.log_start - pos;
        tracing::warn!(
            link = %link.from, stream = %target.stream(), topic = %chunk.topic,
            partition = chunk.partition, position = pos, log_start = chunk.log_start,
            lost,
            "replication fell behind the upstream's retention: records were removed \
             upstream before this link copied them"
        );
        status.change(|s| s.lost(key.clone(), lost));
        metrics::counter!("tributary_replication_lost_records_total",
            "stream" => target.stream().to_owned(), "from" => link.from.clone())
        .increment(lost);
    }

    let decoded = chunk
        .batches
        .iter()
        .map(decode_pulled)
        .collect::<Result<Vec<_>>>()?;
    let pulled: Vec<PulledBatch> = decoded
        .iter()
        .map(|d| PulledBatch {
            origin: d.fields.origin_cluster,
            origin_incarnation: d.fields.origin_incarnation,
            origin_base: d.fields.origin_base_offset,
            record_count: d.records,
            keep_offset: link.mirror.then_some(d.fields.base_offset),
        })
        .collect();
    let read_append_ms = decoded.last().map(|d| d.fields.append_time_ms);

    let asked: u64 = chunk.batches.iter().map(|b| b.len() as u64).sum();
    let position = UpstreamPosition {
        next_offset: chunk.next_offset,
        upstream_incarnation,
    };
    let applied = partition
        .apply(position, asked, &pulled, move |i, base, skip| {
            let d = &decoded[i];
            let mut fields = d.fields;
            fields.base_offset = base;
            fields.origin_base_offset += u64::from(skip);
            let value = if skip == 0 {
                batch::stored_value(&d.body, &fields)
            } else {
                batch::stored_value(&d.tail(skip as usize), &fields)
            };
            NewBatch {
                value,
                record_count: d.records - skip,
                append_time_ms: d.fields.append_time_ms,
                max_timestamp_ms: d.max_timestamp_ms,
            }
        })
        .await
        .inspect_err(|e| {
            if let Error::Storage(s) = e
                && s.is_mirror_divergence()
            {
                tracing::warn!(
                    link = %link.from, stream = %target.stream(), topic = %chunk.topic,
                    partition = chunk.partition, error = %e,
                    "the mirror's source lost records this mirror holds; the link applies \
                     nothing more until the mirror is promoted or re-seeded"
                );
                metrics::counter!("tributary_replication_diverged_total",
                    "stream" => target.stream().to_owned(), "from" => link.from.clone())
                .increment(1);
            }
        })?;

    let labels = [
        ("stream", target.stream().to_owned()),
        ("from", link.from.clone()),
    ];
    metrics::counter!("tributary_replication_records_applied_total", &labels)
        .increment(applied.records);
    metrics::counter!("tributary_replication_bytes_applied_total", &labels)
        .increment(applied.bytes);
    status.change(|s| s.applied(&chunk, applied.records, applied.skipped, read_append_ms));
    Ok(())
}

/// Reads what replication needs off a pulled batch, without decoding its records.
fn decode_pulled(raw: &Bytes) -> Result<Decoded> {
    let bad = |why: &str| Error::InvalidArgument {
        field: "pulled batch".into(),
        message: why.into(),
    };
    let h = batch::stored_header(raw)
        .ok_or_else(|| bad("broken framing, or no 16-byte origin_cluster"))?;
    if h.records == 0 {
        return Err(bad("it has no records"));
    }
    let body = batch::producer_part(raw).ok_or_else(|| bad("broken framing"))?;
    Ok(Decoded {
        body,
        records: h.records,
        fields: h.fields,
        max_timestamp_ms: h.max_timestamp_ms,
    })
}

impl Decoded {
    /// The batch's records from the `skip`th on, as a batch body.
    fn tail(&self, skip: usize) -> Vec<u8> {
        batch::without_first_records(&self.body, skip)
            .expect("the producer part is whole fields, walked once already")
    }
}

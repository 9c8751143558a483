//! The downstream side of replication: applying a pull response to the destination
//! stream. Topics follow the source's shape; each pulled batch keeps its origin and is
//! stored with this cluster's offsets (or, on a mirror, the source's), through the store's
//! exactly-once check (`storage::replication`); the link's position moves in the same write.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use tributary_core::batch::{self, ServerFields};
use tributary_core::names::{StreamPath, TopicPath, check_group};
use tributary_proto::v1;
use tributary_storage::{self as storage, NewBatch, PulledBatch};

use super::{Namespace, blocking, volume_of};
use crate::model::*;
use crate::{Error, Result};

/// A pulled batch, decoded once.
struct Decoded {
    records: u32,
    body: Vec<u8>,
    fields: ServerFields,
    max_timestamp_ms: i64,
}

impl Namespace {
    /// A link's stored positions, as a pull request gives them.
    pub async fn link_positions(&self, link: &LinkRow) -> Result<Vec<v1::PullPosition>> {
        let s = self.link_stream(link)?;
        let topics = self.topic_rows(&s).await?;
        let names: HashMap<_, _> = topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .enumerate()
                    .map(|(n, &id)| (id, (t.name.clone(), n as u32)))
            })
            .collect();
        let store = self.store.clone();
        let id = *link.id.as_bytes();
        let stored = blocking(move || Ok(store.link_positions(&id)?)).await?;
        let positions: Vec<_> = stored
            .into_iter()
            .filter_map(|(id, next_offset)| {
                names.get(&id).map(|(topic, partition)| v1::PullPosition {
                    topic: topic.clone(),
                    partition: *partition,
                    next_offset,
                })
            })
            .collect();
        let status = self.link_status(link.id);
        let mut status = status.lock();
        for p in &positions {
            status
                .partitions
                .entry((p.topic.clone(), p.partition))
                .or_default()
                .position = p.next_offset;
        }
        Ok(positions)
    }

    /// Applies one pull response of `link`: topics, then batches, then cursors.
    pub async fn apply_pulled(&self, link: &LinkRow, resp: v1::PullResponse) -> Result<()> {
        let s = self.link_stream(link)?;
        let path = StreamPath::parse("stream", &s.path)?;
        for shape in &resp.topics {
            let topic = TopicPath::parse("topic", &format!("{path}:{}", shape.name))?;
            self.replica_topic(&topic, shape.partitions).await?;
        }
        for chunk in resp.chunks {
            self.apply_chunk(link, &s, &path, chunk).await?;
        }
        if link.mirror && resp.cursors_sent {
            self.apply_cursors(&s, &path, resp.cursors).await?;
        }
        let status = self.link_status(link.id);
        let mut status = status.lock();
        status.last_contact_ms = self.clock.now_ms();
        Ok(())
    }

    /// The destination stream of a link; NOT_FOUND once it was deleted.
    fn link_stream(&self, link: &LinkRow) -> Result<std::sync::Arc<StreamRow>> {
        let path = StreamPath::parse("stream", &link.stream)?;
        match self.stream(&path) {
            Ok(s) if s.id == link.stream_id => Ok(s),
            _ => Err(Error::NotFound {
                what: "stream",
                path: link.stream.clone(),
            }),
        }
    }

    /// Creates a topic the source has, or grows it to the source's partition count.
    async fn replica_topic(&self, path: &TopicPath, partitions: u32) -> Result<()> {
        match self.topic(path, false).await {
            Ok(t) if t.row.partitions.len() as u32 >= partitions => return Ok(()),
            Ok(_) | Err(Error::NotFound { what: "topic", .. }) => {}
            Err(e) => return Err(e),
        }
        let _admin = self.admin.lock().await;
        let s = self.stream(&path.stream)?;
        match self.get(topic_key(s.id, &path.topic)).await? {
            None => {
                self.insert_topic(&s, &path.topic, partitions).await?;
            }
            Some(v) => {
                let row: TopicRow = decode("topic row", &v)?;
                self.grow_topic(&s, row, partitions).await?;
            }
        }
        Ok(())
    }

    async fn apply_chunk(
        &self,
        link: &LinkRow,
        s: &StreamRow,
        path: &StreamPath,
        chunk: v1::PullChunk,
    ) -> Result<()> {
        let topic = TopicPath::parse("topic", &format!("{path}:{}", chunk.topic))?;
        let t = self.topic(&topic, false).await?;
        let id = self.partition_id(&t, &topic, chunk.partition)?;
        let key = (chunk.topic.clone(), chunk.partition);
        let status = self.link_status(link.id);
        let before = status.lock().partitions.get(&key).map(|p| p.position);
        if let Some(pos) = before
            && pos < chunk.log_start
            && chunk.next_offset > pos
        {
            let lost = chunk.log_start - pos;
            tracing::warn!(
                link = %link.from, stream = %s.path, topic = %chunk.topic,
                partition = chunk.partition, position = pos, log_start = chunk.log_start,
                lost,
                "replication fell behind the upstream's retention: records were removed \
                 upstream before this link copied them"
            );
            let mut st = status.lock();
            st.lost_records += lost;
            st.partitions.entry(key.clone()).or_default().lost_records += lost;
            metrics::counter!("tributary_replication_lost_records_total",
                "stream" => s.path.clone(), "from" => link.from.clone())
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
                origin_base: d.fields.origin_base_offset,
                record_count: d.records,
                keep_offset: link.mirror.then_some(d.fields.base_offset),
            })
            .collect();
        let read_append_ms = decoded.last().map(|d| d.fields.append_time_ms);

        // Reserve the volume's bytes as a produce would.
        let asked: u64 = chunk.batches.iter().map(|b| b.len() as u64).sum();
        let usage = self.reserve_bytes(volume_of(&s.path), asked)?;
        let store = self.store.clone();
        let durability = s.attributes.durability.into();
        let link_id = *link.id.as_bytes();
        let position = chunk.next_offset;
        let pulled_for_store = pulled.clone();
        let applied = blocking(move || {
            Ok(store.apply_pulled(
                durability,
                id,
                &link_id,
                position,
                &pulled_for_store,
                |i, base, skip| {
                    let d = &decoded[i];
                    let skip_n = skip as usize;
                    let mut fields = d.fields;
                    fields.base_offset = base;
                    fields.origin_base_offset += u64::from(skip);
                    let value = if skip == 0 {
                        batch::stored_value(&d.body, &fields)
                    } else {
                        batch::stored_value(&d.tail(skip_n), &fields)
                    };
                    NewBatch {
                        value,
                        record_count: d.records - skip,
                        append_time_ms: d.fields.append_time_ms,
                        max_timestamp_ms: d.max_timestamp_ms,
                    }
                },
            )?)
        })
        .await;
        let stored: u64 = applied.as_ref().map_or(0, |r| {
            r.applied
                .iter()
                .map(|a| match a {
                    storage::Applied::Appended { bytes, .. } => *bytes,
                    _ => 0,
                })
                .sum()
        });
        if stored >= asked {
            usage.bytes.fetch_add(stored - asked, Ordering::AcqRel);
        } else {
            usage.bytes.fetch_sub(asked - stored, Ordering::AcqRel);
        }
        let applied = applied.map_err(|e| match e {
            Error::Storage(storage::Error::UnknownPartition(_)) => Error::NotFound {
                what: "topic",
                path: topic.to_string(),
            },
            e => e,
        })?;

        let appended = applied.appended_records(&pulled);
        let total: u64 = pulled.iter().map(|b| u64::from(b.record_count)).sum();
        let labels = [("stream", s.path.clone()), ("from", link.from.clone())];
        metrics::counter!("tributary_replication_records_applied_total", &labels)
            .increment(appended);
        metrics::counter!("tributary_replication_bytes_applied_total", &labels).increment(stored);
        let mut st = status.lock();
        st.records_applied += appended;
        st.records_skipped += total - appended;
        let p = st.partitions.entry(key).or_default();
        p.position = chunk.next_offset;
        if chunk.high_watermark > 0 || chunk.next_offset == 0 {
            p.upstream_high_watermark = chunk.high_watermark.max(p.upstream_high_watermark);
        }
        p.upstream_log_start = chunk.log_start;
        if chunk.stored_bytes > 0 || chunk.last_append_ms > 0 {
            p.upstream_bytes = chunk.stored_bytes;
            p.upstream_last_append_ms = chunk.last_append_ms;
        }
        if let Some(ms) = read_append_ms {
            p.read_append_ms = ms;
        }
        Ok(())
    }

    /// A mirror's group cursors: the source's, for groups with no live member here, never
    /// past what this cluster holds yet (re-delivery, never loss).
    async fn apply_cursors(
        &self,
        s: &StreamRow,
        path: &StreamPath,
        cursors: Vec<v1::ReplicatedCursor>,
    ) -> Result<()> {
        let live: Vec<String> = self.live_groups(s).into_iter().map(|g| g.0).collect();
        let mut by_group: HashMap<String, Vec<(storage::PartitionId, u64)>> = HashMap::new();
        for c in cursors {
            if live.contains(&c.group) || check_group("group", &c.group).is_err() {
                continue;
            }
            let topic = TopicPath::parse("topic", &format!("{path}:{}", c.topic))?;
            let Ok(t) = self.topic(&topic, false).await else {
                continue; // not replicated yet
            };
            let Ok(id) = self.partition_id(&t, &topic, c.partition) else {
                continue;
            };
            by_group.entry(c.group).or_default().push((id, c.offset));
        }
        let store = self.store.clone();
        let scope = *s.id.as_bytes();
        let now = self.clock.now_ms();
        blocking(move || {
            for (group, mut pairs) in by_group {
                for (id, offset) in &mut pairs {
                    *offset = (*offset).min(*store.watch(*id)?.borrow());
                }
                let have: HashMap<_, _> = store
                    .cursors(&scope, &group)?
                    .into_iter()
                    .map(|(id, c)| (id, c.offset))
                    .collect();
                pairs.retain(|(id, o)| have.get(id) != Some(o));
                if !pairs.is_empty() {
                    store.commit_cursors(&scope, &group, &pairs, now)?;
                }
            }
            Ok(())
        })
        .await
    }
}

/// Reads what replication needs off a pulled batch, without decoding its records.
fn decode_pulled(raw: &Bytes) -> Result<Decoded> {
    let bad = |why: String| Error::invalid("pulled batch", why);
    let h = batch::stored_header(raw)
        .ok_or_else(|| bad("broken framing, or no 16-byte origin_cluster".into()))?;
    if h.records == 0 {
        return Err(bad("it has no records".into()));
    }
    let body = batch::producer_part(raw).ok_or_else(|| bad("broken framing".into()))?;
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

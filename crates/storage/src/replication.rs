//! Applying batches pulled from another cluster, exactly once in any topology.
//!
//! Every stored batch names its origin: the cluster, that cluster's incarnation (a new one
//! at every start, design §6.3) and its offset there. Each partition keeps, per origin
//! cluster and incarnation, the next origin offset it expects (its watermark, in the `repl`
//! column family). A pulled batch is appended only for its records at or above that watermark, and
//! the watermark moves in the same `WriteBatch` as the records, with the link's position in
//! its upstream (and the upstream's incarnation it was read in, which the upstream checks
//! with [`Store::position_holds`] when the link comes back). Every log holds each origin's records as an in-order prefix, so whatever
//! path a record takes it is applied once; a batch of the pulling cluster's own origin (any
//! incarnation) is never applied. Storage never parses a batch: the caller says what each one holds and
//! builds the bytes to store (cutting off a head already applied, when asked).

use std::collections::HashMap;

use rocksdb::{ReadOptions, WriteBatch};

use crate::db::{get, write_options};
use crate::error::{Error, Result};
use crate::keys::{self, ClusterId, LinkId, PartitionId, cf};
use crate::state::{Store, publish_hwm};
use crate::types::{Durability, NewBatch, check_batch_size};
use crate::values::decode_u64;

/// What a pulled batch holds, as read from it by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PulledBatch {
    pub origin: ClusterId,
    /// The origin's incarnation when it appended the batch.
    pub origin_incarnation: u32,
    /// Offset of its first record in the origin's partition.
    pub origin_base: u64,
    pub record_count: u32,
    /// Offset-keeping mirrors: the offset it had upstream, which it keeps here.
    pub keep_offset: Option<u64>,
}

/// Where a link continues in one upstream partition: the next upstream offset, and the
/// upstream's incarnation when the link read up to it (0 when unknown: stored before
/// incarnations, or from an upstream without them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UpstreamPosition {
    pub next_offset: u64,
    pub upstream_incarnation: u32,
}

impl UpstreamPosition {
    /// 8 bytes (the offset, as stored before incarnations) or 12 (offset, incarnation).
    fn decode(v: &[u8]) -> Result<Self> {
        match v.len() {
            8 => Ok(UpstreamPosition {
                next_offset: decode_u64("link position", v)?,
                upstream_incarnation: 0,
            }),
            12 => Ok(UpstreamPosition {
                next_offset: decode_u64("link position", &v[..8])?,
                upstream_incarnation: u32::from_be_bytes(v[8..].try_into().expect("4 bytes")),
            }),
            n => Err(Error::corrupt(
                "link position",
                format!("{n} bytes, not 8 or 12"),
            )),
        }
    }

    fn encode(&self) -> [u8; 12] {
        let mut v = [0u8; 12];
        v[..8].copy_from_slice(&self.next_offset.to_be_bytes());
        v[8..].copy_from_slice(&self.upstream_incarnation.to_be_bytes());
        v
    }
}

/// How one pulled batch was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Stored at `base_offset`, without its first `skipped` records (already applied).
    Appended {
        base_offset: u64,
        skipped: u32,
        bytes: u64,
    },
    /// Every record was already applied (it came by another path first).
    Duplicate,
    /// The pulling cluster's own record, come back around.
    Own,
}

/// The result of applying one partition's pulled batches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyResult {
    pub applied: Vec<Applied>,
    pub high_watermark: u64,
}

impl ApplyResult {
    pub fn appended_records(&self, batches: &[PulledBatch]) -> u64 {
        self.applied
            .iter()
            .zip(batches)
            .map(|(a, b)| match a {
                Applied::Appended { skipped, .. } => u64::from(b.record_count - skipped),
                _ => 0,
            })
            .sum()
    }
}

impl Store {
    /// Applies `batches` pulled by `link` to partition `id`, and sets the link's position
    /// there to `position`, in one write. `build(i, base_offset, skip)` makes the bytes to
    /// store for `batches[i]` at `base_offset` without its first `skip` records; it runs
    /// under the partition's append lock.
    pub fn apply_pulled(
        &self,
        durability: Durability,
        id: PartitionId,
        link: &LinkId,
        position: UpstreamPosition,
        batches: &[PulledBatch],
        mut build: impl FnMut(usize, u64, u32) -> NewBatch,
    ) -> Result<ApplyResult> {
        let own = *self.identity().cluster_id.as_bytes();
        let p = self.partition(id)?;
        let mut slot = p.slot.lock();
        if slot.dropped {
            return Err(Error::UnknownPartition(id));
        }
        let mut marks: HashMap<(ClusterId, u32), u64> = HashMap::new();
        for b in batches {
            let origin = (b.origin, b.origin_incarnation);
            if b.origin != own && !marks.contains_key(&origin) {
                let m = match slot.origins.get(&origin) {
                    Some(&m) => m,
                    None => self.watermark(id, &b.origin, b.origin_incarnation)?,
                };
                marks.insert(origin, m);
            }
        }
        let mut wb = WriteBatch::default();
        let mut state = slot.state;
        let mut tail = slot.time;
        let mut result = ApplyResult::default();
        for (i, b) in batches.iter().enumerate() {
            if b.record_count == 0 {
                return Err(Error::corrupt("pulled batch", "it has no records".into()));
            }
            if b.origin == own {
                result.applied.push(Applied::Own);
                continue;
            }
            let mark = marks
                .get_mut(&(b.origin, b.origin_incarnation))
                .expect("loaded above");
            let end = b.origin_base + u64::from(b.record_count);
            if end <= *mark {
                result.applied.push(Applied::Duplicate);
                continue;
            }
            let skip = mark.saturating_sub(b.origin_base) as u32;
            let base = match b.keep_offset {
                // New records at offsets this mirror already holds: the source lost them
                // (design §6.3). Neither keeping offsets nor taking the records is possible.
                Some(at) if at + u64::from(skip) < state.next_offset => {
                    return Err(Error::MirrorDiverged {
                        partition: id,
                        offset: at + u64::from(skip),
                        end: state.next_offset,
                    });
                }
                Some(at) => at + u64::from(skip),
                None => state.next_offset,
            };
            let batch = build(i, base, skip);
            debug_assert_eq!(batch.record_count, b.record_count - skip);
            check_batch_size(&batch)?;
            state = self.stage_batch(&mut wb, id, &state, &mut tail, base, &batch);
            *mark = end;
            wb.put_cf(
                self.cf(cf::REPL),
                keys::watermark(id, &b.origin, b.origin_incarnation),
                end.to_be_bytes(),
            );
            result.applied.push(Applied::Appended {
                base_offset: base,
                skipped: skip,
                bytes: batch.value.len() as u64,
            });
        }
        let appended = state != slot.state;
        if appended {
            wb.put_cf(self.cf(cf::META), keys::partition_state(id), state.encode());
        }
        wb.put_cf(
            self.cf(cf::REPL),
            keys::link_position(link, id),
            position.encode(),
        );
        self.db.write_opt(wb, &write_options(durability))?;
        slot.origins.extend(marks);
        if appended {
            slot.state = state;
            slot.time = tail;
            p.log_start
                .fetch_max(state.log_start, std::sync::atomic::Ordering::AcqRel);
            publish_hwm(&p, state.next_offset);
            self.notify_appended();
        }
        result.high_watermark = state.next_offset;
        Ok(result)
    }

    /// The next offset of `origin` in its `incarnation` that partition `id` expects (0 when
    /// none came yet).
    pub fn watermark(&self, id: PartitionId, origin: &ClusterId, incarnation: u32) -> Result<u64> {
        match get(
            &self.db,
            cf::REPL,
            &keys::watermark(id, origin, incarnation),
        )? {
            Some(v) => decode_u64("origin watermark", &v),
            None => Ok(0),
        }
    }

    /// Every (origin, incarnation)'s watermark in partition `id`, in that order.
    pub fn watermarks(&self, id: PartitionId) -> Result<Vec<(ClusterId, u32, u64)>> {
        self.scan_repl(&keys::watermark_prefix(id), |k, v| {
            let (_, origin, incarnation) = keys::decode_watermark(k)
                .ok_or_else(|| Error::corrupt("watermark key", format!("{k:02x?}")))?;
            Ok((origin, incarnation, decode_u64("origin watermark", v)?))
        })
    }

    /// A link's stored positions, by partition.
    pub fn link_positions(&self, link: &LinkId) -> Result<Vec<(PartitionId, UpstreamPosition)>> {
        self.scan_repl(&keys::link_prefix(link), |k, v| {
            let id = keys::decode_link_position(k)
                .ok_or_else(|| Error::corrupt("link position key", format!("{k:02x?}")))?;
            Ok((id, UpstreamPosition::decode(v)?))
        })
    }

    /// Whether a puller's `position` in partition `id` of this store still points into the
    /// log it was read from (design §6.3). Read in this incarnation, it does up to the end.
    /// Read in the previous one, it does up to where the log ended when this one opened:
    /// what a crash kept, or what the restored copy holds, is a prefix of that log. Read
    /// in any other, the log may have lost a tail since and grown again: it does not.
    pub fn position_holds(&self, id: PartitionId, position: UpstreamPosition) -> Result<bool> {
        let me = self.identity();
        let p = self.partition(id)?;
        let offset = position.next_offset;
        Ok(match position.upstream_incarnation {
            i if i == me.incarnation => offset <= *p.hwm.borrow(),
            i if i == me.previous_incarnation => offset <= p.opened_end,
            _ => false,
        })
    }

    /// Forgets a removed link's positions.
    pub fn drop_link(&self, link: &LinkId) -> Result<()> {
        let start = keys::link_prefix(link);
        let end = keys::prefix_end(&start).expect("a link prefix is not all 0xFF");
        let mut wb = WriteBatch::default();
        wb.delete_range_cf(self.cf(cf::REPL), &start[..], &end[..]);
        self.db.write_opt(wb, &write_options(Durability::Sync))?;
        Ok(())
    }

    fn scan_repl<T>(
        &self,
        prefix: &[u8],
        mut f: impl FnMut(&[u8], &[u8]) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut ro = ReadOptions::default();
        if let Some(end) = keys::prefix_end(prefix) {
            ro.set_iterate_upper_bound(end);
        }
        let mut it = self.db.raw_iterator_cf_opt(self.cf(cf::REPL), ro);
        it.seek(prefix);
        let mut out = Vec::new();
        while it.valid() {
            let (Some(k), Some(v)) = (it.key(), it.value()) else {
                break;
            };
            out.push(f(k, v)?);
            it.next();
        }
        it.status()?;
        Ok(out)
    }
}

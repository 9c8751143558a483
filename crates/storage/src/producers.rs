//! Idempotent producers: their ids, Kafka's rules for each batch's sequence, the state
//! each partition keeps per producer (cached in its slot, stored in the `producers` column
//! family with the append), and its expiry.

use rocksdb::WriteBatch;

use crate::db::{get, write_options};
use crate::error::{Error, Result};
use crate::keys::{self, PartitionId, cf};
use crate::state::{Slot, Store};
use crate::types::{Durability, ProducerSeq};
use crate::values::{ProducedBatch, ProducerState};

impl Store {
    /// A new idempotent producer id, never handed out before (persisted before it is
    /// returned).
    pub fn allocate_producer_id(&self) -> Result<u64> {
        let mut next = self.next_producer_id.lock();
        let id = *next;
        let mut wb = WriteBatch::default();
        wb.put_cf(
            self.cf(cf::META),
            keys::META_NEXT_PRODUCER_ID,
            (id + 1).to_be_bytes(),
        );
        self.db.write_opt(wb, &write_options(Durability::Sync))?;
        *next = id + 1;
        Ok(id)
    }

    /// A producer's state on a partition, from the cache or the disk (under the append lock).
    pub(crate) fn producer_state(
        &self,
        id: PartitionId,
        slot: &mut Slot,
        producer: u64,
    ) -> Result<Option<ProducerState>> {
        if let Some(s) = slot.producers.get(&producer) {
            return Ok(Some(s.clone()));
        }
        let state = get(&self.db, cf::PRODUCERS, &keys::producer(id, producer))?
            .map(|v| ProducerState::decode(&v))
            .transpose()?;
        if let Some(s) = &state {
            slot.producers.insert(producer, s.clone());
        }
        Ok(state)
    }

    /// Forgets idempotent producers whose last append is older than `before_ms`; a retry
    /// from one of them is then refused as unknown. Returns how many states were removed.
    pub fn expire_producers(&self, before_ms: i64) -> Result<u64> {
        let mut expired: Vec<(PartitionId, u64)> = Vec::new();
        let mut it = self.db.raw_iterator_cf(self.cf(cf::PRODUCERS));
        it.seek_to_first();
        while it.valid() {
            let (Some(k), Some(v)) = (it.key(), it.value()) else {
                break;
            };
            let key = keys::decode_producer(k)
                .ok_or_else(|| Error::corrupt("producer key", format!("{k:02x?}")))?;
            if ProducerState::decode(v)?.last_ms < before_ms {
                expired.push(key);
            }
            it.next();
        }
        it.status()?;
        let mut removed = 0;
        for (id, producer) in expired {
            let p = match self.partition(id) {
                Ok(p) => p,
                Err(Error::UnknownPartition(_)) => continue,
                Err(e) => return Err(e),
            };
            let mut slot = p.slot.lock();
            // Re-read under the append lock: the producer may have appended since the scan.
            let fresh = self.producer_state(id, &mut slot, producer)?;
            if fresh.is_some_and(|s| s.last_ms < before_ms) {
                let mut wb = WriteBatch::default();
                wb.delete_cf(self.cf(cf::PRODUCERS), keys::producer(id, producer));
                self.db
                    .write_opt(wb, &write_options(Durability::Buffered))?;
                slot.producers.remove(&producer);
                removed += 1;
            }
        }
        Ok(removed)
    }
}

pub(crate) enum SequenceCheck {
    /// Append: the sequence is the next one (or a new epoch starts at 0).
    Next,
    /// A retry of a batch already appended.
    Duplicate(ProducedBatch),
}

/// Kafka's rules for an idempotent producer's batch on one partition.
pub(crate) fn check_sequence(
    partition: PartitionId,
    state: Option<&ProducerState>,
    seq: ProducerSeq,
) -> Result<SequenceCheck> {
    let Some(state) = state else {
        return if seq.sequence == 0 {
            Ok(SequenceCheck::Next)
        } else {
            Err(Error::UnknownProducer {
                partition,
                producer: seq.id,
                sequence: seq.sequence,
            })
        };
    };
    if seq.epoch < state.epoch {
        return Err(Error::ProducerFenced {
            producer: seq.id,
            epoch: seq.epoch,
            current: state.epoch,
        });
    }
    let expected = if seq.epoch > state.epoch {
        0
    } else {
        state.next_seq
    };
    if seq.sequence == expected {
        return Ok(SequenceCheck::Next);
    }
    if seq.epoch == state.epoch && seq.sequence < expected {
        if let Some(b) = state.recent.iter().find(|b| b.first_seq == seq.sequence) {
            if b.record_count != seq.record_count {
                return Err(Error::SequenceMismatch {
                    producer: seq.id,
                    sequence: seq.sequence,
                    records: seq.record_count,
                    original: b.record_count,
                });
            }
            return Ok(SequenceCheck::Duplicate(*b));
        }
        return Err(Error::StaleSequence {
            producer: seq.id,
            sequence: seq.sequence,
            next: expected,
        });
    }
    Err(Error::SequenceGap {
        producer: seq.id,
        expected,
        got: seq.sequence,
    })
}

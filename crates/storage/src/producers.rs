//! Idempotent producers: their ids, Kafka's rules for each batch's sequence, the state
//! each partition keeps per producer (cached in its slot, stored in the `producers` column
//! family with the append), and its expiry.

use rocksdb::WriteBatch;

use crate::db::{get, write_options};
use crate::error::{Error, Result};
use crate::keys::{self, PartitionId, cf};
use crate::state::{Slot, Store};
use crate::types::{Durability, ProducerSeq, SequenceSpace};
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

impl SequenceSpace {
    /// The sequence `n` records after `seq`.
    fn advance(self, seq: u64, n: u32) -> u64 {
        match self {
            SequenceSpace::Tributary => seq.wrapping_add(u64::from(n)),
            SequenceSpace::Kafka => (seq + u64::from(n)) % KAFKA_SEQUENCES,
        }
    }

    /// Whether `seq` is before `next` (a batch already passed) rather than after it (a
    /// gap); on Kafka's circle, by the shorter way round.
    fn behind(self, seq: u64, next: u64) -> bool {
        match self {
            SequenceSpace::Tributary => seq < next,
            SequenceSpace::Kafka => {
                let back = (next + KAFKA_SEQUENCES - seq) % KAFKA_SEQUENCES;
                back <= KAFKA_SEQUENCES / 2
            }
        }
    }
}

/// Kafka's sequences: 0 to `i32::MAX`, then 0 again.
const KAFKA_SEQUENCES: u64 = 1 << 31;

/// Kafka's rules for an idempotent producer's batch on one partition (its `ProducerAppendInfo`
/// and `ProducerStateEntry.findDuplicateBatch`), for gRPC and Kafka producers alike:
/// - a batch of an older epoch is fenced;
/// - one of the current epoch whose range is one of the last [`ProducerState::RECENT`]
///   is a retry, answered with its original offsets;
/// - otherwise the sequence must be the next one (a new epoch starts at 0), counted in
///   the batch's [`SequenceSpace`]: Kafka's wraps to 0 after `i32::MAX`.
///
/// One difference from Kafka since 2.5: a producer this partition has no state for (never
/// seen, expired, or a promoted mirror's) must start at 0, else it is refused as unknown
/// (UNKNOWN_PRODUCER_ID on Kafka, as brokers before 2.5 answered) rather than accepted
/// whatever its sequence: a retry across a lost state is refused, never appended twice.
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
    if seq.epoch == state.epoch {
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
        if seq.space.behind(seq.sequence, expected) {
            return Err(Error::StaleSequence {
                producer: seq.id,
                sequence: seq.sequence,
                next: expected,
            });
        }
    }
    Err(Error::SequenceGap {
        producer: seq.id,
        expected,
        got: seq.sequence,
    })
}

/// The producer's state once the batch `seq` (which passed [`check_sequence`]) is
/// appended at `base_offset`: a new epoch forgets the old one's batches.
pub(crate) fn appended(
    state: Option<ProducerState>,
    seq: ProducerSeq,
    base_offset: u64,
    append_time_ms: i64,
) -> ProducerState {
    let mut state = state.filter(|s| s.epoch == seq.epoch).unwrap_or_default();
    state.epoch = seq.epoch;
    state.next_seq = seq.space.advance(seq.sequence, seq.record_count);
    state.last_ms = append_time_ms;
    state.recent.push(ProducedBatch {
        first_seq: seq.sequence,
        record_count: seq.record_count,
        base_offset,
        append_time_ms,
    });
    if state.recent.len() > ProducerState::RECENT {
        state.recent.remove(0);
    }
    state
}

#[cfg(test)]
mod tests {
    //! Kafka producers' batches against a model of Kafka's broker (`ProducerAppendInfo`,
    //! `ProducerStateEntry`, `DefaultRecordBatch.incrementSequence`), in int32 arithmetic.

    use std::collections::VecDeque;

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Outcome {
        Appended,
        Duplicate(u64),
        OutOfOrder,
        InvalidEpoch,
        UnknownProducer,
    }

    /// Kafka's `ProducerStateEntry`: an epoch and its last five batches (first and last
    /// sequence, base offset).
    #[derive(Debug, Clone)]
    struct Entry {
        epoch: i16,
        batches: VecDeque<(i32, i32, u64)>,
    }

    fn increment_sequence(sequence: i32, increment: i32) -> i32 {
        if sequence > i32::MAX - increment {
            return increment - (i32::MAX - sequence) - 1;
        }
        sequence + increment
    }

    fn in_sequence(last: i32, next: i32) -> bool {
        i64::from(next) == i64::from(last) + 1 || (next == 0 && last == i32::MAX)
    }

    /// What Kafka's broker does with a client's batch, state updated on an append; the one
    /// difference (documented on `check_sequence`) is an unknown producer's first sequence.
    fn kafka(entry: &mut Option<Entry>, epoch: i16, first: i32, count: i32, at: u64) -> Outcome {
        let last = increment_sequence(first, count - 1);
        if let Some(e) = entry.as_ref() {
            if e.epoch == epoch
                && let Some(b) = e.batches.iter().find(|b| b.0 == first && b.1 == last)
            {
                return Outcome::Duplicate(b.2);
            }
            if epoch < e.epoch {
                return Outcome::InvalidEpoch;
            }
            let ok = if epoch != e.epoch {
                first == 0
            } else {
                in_sequence(e.batches.back().expect("an entry has a batch").1, first)
            };
            if !ok {
                return Outcome::OutOfOrder;
            }
        } else if first != 0 {
            return Outcome::UnknownProducer;
        }
        let e = entry.get_or_insert(Entry {
            epoch,
            batches: VecDeque::new(),
        });
        if e.epoch != epoch {
            e.epoch = epoch;
            e.batches.clear();
        }
        if e.batches.len() == 5 {
            e.batches.pop_front();
        }
        e.batches.push_back((first, last, at));
        Outcome::Appended
    }

    /// The same batch through `check_sequence` and `appended`.
    fn ours(
        state: &mut Option<ProducerState>,
        epoch: i16,
        first: i32,
        count: i32,
        at: u64,
    ) -> Outcome {
        let seq = ProducerSeq {
            id: 1,
            epoch: epoch as u32,
            sequence: first as u64,
            record_count: count as u32,
            space: SequenceSpace::Kafka,
        };
        match check_sequence(1, state.as_ref(), seq) {
            Ok(SequenceCheck::Next) => {
                *state = Some(appended(state.take(), seq, at, 0));
                Outcome::Appended
            }
            Ok(SequenceCheck::Duplicate(b)) => Outcome::Duplicate(b.base_offset),
            Err(Error::ProducerFenced { .. }) => Outcome::InvalidEpoch,
            Err(Error::UnknownProducer { .. }) => Outcome::UnknownProducer,
            Err(
                Error::SequenceGap { .. }
                | Error::StaleSequence { .. }
                | Error::SequenceMismatch { .. },
            ) => Outcome::OutOfOrder,
            Err(e) => panic!("unexpected {e}"),
        }
    }

    /// What a step sends: the next sequence, a retry of the `k`th-last batch (one past
    /// the five remembered included), or any sequence near the wrap; at the same epoch,
    /// the next one, or an older one.
    #[derive(Debug, Clone, Copy)]
    enum Pick {
        Next,
        Retry(usize),
        Any(u32),
    }

    fn steps() -> impl Strategy<Value = Vec<(Pick, i16, i32)>> {
        let pick = prop_oneof![
            5 => Just(Pick::Next),
            2 => (0usize..6).prop_map(Pick::Retry),
            1 => (0u32..24).prop_map(Pick::Any),
        ];
        let epoch = prop_oneof![8 => Just(0i16), 1 => Just(1), 1 => Just(-1)];
        proptest::collection::vec((pick, epoch, 1i32..4), 1..80)
    }

    /// Sent batches (epoch, first sequence, count), newest last, for retries.
    type Sent = Vec<(i16, i32, i32)>;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn kafka_producers_follow_kafkas_rules_across_the_wrap(
            start in proptest::option::of((0i16..2, 1i32..4)),
            steps in steps(),
        ) {
            let (mut model, mut state) = (None, None);
            let (mut at, mut epoch, mut next) = (0u64, 0i16, 0i32);
            let mut sent: Sent = Vec::new();
            // Start near the wrap: a first batch ending a few sequences before i32::MAX.
            if let Some((e, count)) = start {
                let first = i32::MAX - 6 - count;
                model = Some(Entry { epoch: e, batches: VecDeque::from([(first, first + count - 1, 0)]) });
                state = Some(ProducerState {
                    epoch: e as u32,
                    next_seq: (first + count) as u64,
                    last_ms: 0,
                    recent: vec![ProducedBatch { first_seq: first as u64, record_count: count as u32, base_offset: 0, append_time_ms: 0 }],
                });
                (at, epoch, next) = (count as u64, e, first + count);
                sent.push((e, first, count));
            }
            for (pick, bump, count) in steps {
                // A bump starts the new epoch at 0, as clients do.
                let e = (epoch + bump).max(0);
                if e > epoch {
                    (epoch, next) = (e, 0);
                }
                let (e, first, count) = match pick {
                    Pick::Next => (e, next, count),
                    Pick::Retry(k) if k < sent.len() => sent[sent.len() - 1 - k],
                    Pick::Retry(_) => (e, next, count),
                    Pick::Any(k) => (e, ((i64::from(i32::MAX) - 8 + i64::from(k)) % (1 << 31)) as i32, count),
                };
                let expected = kafka(&mut model, e, first, count, at);
                let got = ours(&mut state, e, first, count, at);
                prop_assert_eq!(got, expected, "epoch {} first {} count {}", e, first, count);
                if got == Outcome::Appended {
                    at += count as u64;
                    next = increment_sequence(first, count);
                    sent.push((e, first, count));
                }
            }
        }
    }

    #[test]
    fn a_kafka_batch_across_the_wrap_is_followed_by_its_next_sequence() {
        let seq = |sequence: u64, record_count| ProducerSeq {
            id: 1,
            epoch: 0,
            sequence,
            record_count,
            space: SequenceSpace::Kafka,
        };
        let max = i32::MAX as u64;
        let s = appended(None, seq(max - 1, 3), 0, 0);
        assert_eq!(s.next_seq, 1);
        assert!(matches!(
            check_sequence(1, Some(&s), seq(1, 1)),
            Ok(SequenceCheck::Next)
        ));
        assert!(matches!(
            check_sequence(1, Some(&s), seq(max - 1, 3)),
            Ok(SequenceCheck::Duplicate(b)) if b.base_offset == 0
        ));
        // Just behind is old, just ahead a gap; gRPC's u64 sequences never wrap.
        assert!(matches!(
            check_sequence(1, Some(&s), seq(0, 1)),
            Err(Error::StaleSequence { .. })
        ));
        assert!(matches!(
            check_sequence(1, Some(&s), seq(2, 1)),
            Err(Error::SequenceGap { .. })
        ));
        let grpc = ProducerSeq {
            space: SequenceSpace::Tributary,
            ..seq(max - 1, 3)
        };
        assert_eq!(appended(None, grpc, 0, 0).next_seq, max + 2);
    }
}

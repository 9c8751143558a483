//! Tests of the checks on an append (`AppendCheck`): idempotent producers' sequences,
//! retries and expiry (`producers.rs`), and conditional appends.

use super::{new_partition, open, timed_batch};
use crate::values::ProducerState;
use crate::*;

fn produce(store: &Store, id: PartitionId, check: AppendCheck, count: u32) -> Result<Appended> {
    store
        .append_checked(Durability::Buffered, &[id], &[check], |_, _| {
            timed_batch(count, 7)
        })
        .map(|mut a| a.remove(0))
}

fn seq(id: u64, epoch: u32, sequence: u64, record_count: u32) -> AppendCheck {
    AppendCheck {
        producer: Some(ProducerSeq {
            id,
            epoch,
            sequence,
            record_count,
            space: SequenceSpace::Tributary,
        }),
        ..Default::default()
    }
}

#[test]
fn idempotent_retries_return_the_original_offsets_also_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (id, pid) = {
        let store = open(dir.path());
        let id = new_partition(&store);
        let pid = store.allocate_producer_id().unwrap();
        assert_ne!(pid, store.allocate_producer_id().unwrap(), "ids are unique");
        let a = produce(&store, id, seq(pid, 0, 0, 3), 3).unwrap();
        let b = produce(&store, id, seq(pid, 0, 3, 2), 2).unwrap();
        assert_eq!((a.base_offset, b.base_offset), (0, 3));
        assert!(!a.duplicate && !b.duplicate);
        // A retry of either is acknowledged with its first offsets and writes nothing.
        let again = produce(&store, id, seq(pid, 0, 0, 3), 3).unwrap();
        assert_eq!((again.base_offset, again.duplicate), (0, true));
        assert_eq!(store.partition_stats(id, None).unwrap().high_watermark, 5);
        (id, pid)
    };
    let store = open(dir.path());
    let again = produce(&store, id, seq(pid, 0, 3, 2), 2).unwrap();
    assert_eq!((again.base_offset, again.duplicate), (3, true));
    assert_eq!(store.partition_stats(id, None).unwrap().high_watermark, 5);
    assert_eq!(
        store.allocate_producer_id().unwrap(),
        pid + 2,
        "the allocator persists"
    );
    let next = produce(&store, id, seq(pid, 0, 5, 1), 1).unwrap();
    assert_eq!((next.base_offset, next.duplicate), (5, false));
}

#[test]
fn sequence_gaps_unknown_producers_and_old_epochs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = new_partition(&store);
    let pid = store.allocate_producer_id().unwrap();
    assert!(matches!(
        produce(&store, id, seq(pid, 0, 4, 1), 1),
        Err(Error::UnknownProducer { sequence: 4, .. })
    ));
    produce(&store, id, seq(pid, 0, 0, 2), 2).unwrap();
    assert!(matches!(
        produce(&store, id, seq(pid, 0, 3, 1), 1),
        Err(Error::SequenceGap {
            expected: 2,
            got: 3,
            ..
        })
    ));
    assert!(matches!(
        produce(&store, id, seq(pid, 0, 0, 5), 5),
        Err(Error::SequenceMismatch { .. })
    ));
    // A new epoch starts over at 0 and fences the old one.
    produce(&store, id, seq(pid, 1, 0, 1), 1).unwrap();
    assert!(matches!(
        produce(&store, id, seq(pid, 0, 2, 1), 1),
        Err(Error::ProducerFenced { current: 1, .. })
    ));
    // Only the last few batches are remembered.
    for s in 1..=ProducerState::RECENT as u64 {
        produce(&store, id, seq(pid, 1, s, 1), 1).unwrap();
    }
    assert!(matches!(
        produce(&store, id, seq(pid, 1, 0, 1), 1),
        Err(Error::StaleSequence { .. })
    ));
    assert_eq!(store.partition_stats(id, None).unwrap().high_watermark, 8);
}

#[test]
fn producer_state_expires() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = new_partition(&store);
    produce(&store, id, seq(9, 0, 0, 1), 1).unwrap(); // append time 7
    assert_eq!(store.expire_producers(7).unwrap(), 0);
    assert_eq!(store.expire_producers(8).unwrap(), 1);
    assert!(matches!(
        produce(&store, id, seq(9, 0, 1, 1), 1),
        Err(Error::UnknownProducer { .. })
    ));
}

#[test]
fn conditional_appends_write_nothing_on_a_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (a, b) = (new_partition(&store), new_partition(&store));
    let expect = |n| AppendCheck {
        expect_next_offset: Some(n),
        ..Default::default()
    };
    store
        .append_checked(
            Durability::Sync,
            &[a, b],
            &[expect(0), expect(0)],
            |_, _| timed_batch(2, 1),
        )
        .unwrap();
    // b's expectation is wrong: neither partition is written.
    let err = store
        .append_checked(
            Durability::Sync,
            &[a, b],
            &[expect(2), expect(1)],
            |_, _| timed_batch(1, 1),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::OffsetMismatch {
                expected: 1,
                actual: 2,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(store.partition_stats(a, None).unwrap().high_watermark, 2);
    assert_eq!(store.partition_stats(b, None).unwrap().high_watermark, 2);
    // A duplicate wins over a stale expectation: the retry of a conditional append that
    // succeeded is acknowledged, not refused.
    let check = AppendCheck {
        expect_next_offset: Some(2),
        ..seq(1, 0, 0, 1)
    };
    let first = produce(&store, a, check, 1).unwrap();
    let retry = produce(&store, a, check, 1).unwrap();
    assert_eq!(
        (first.base_offset, retry.base_offset, retry.duplicate),
        (2, 2, true)
    );
}

#[test]
fn kafka_sequences_wrap_to_zero_after_i32_max_also_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let kafka = |sequence, record_count| AppendCheck {
        producer: Some(ProducerSeq {
            id: 3,
            epoch: 0,
            sequence,
            record_count,
            space: SequenceSpace::Kafka,
        }),
        ..Default::default()
    };
    let max = i32::MAX as u32;
    let id = {
        let store = open(dir.path());
        let id = new_partition(&store);
        // Batches claiming many records bring the producer near the wrap.
        produce(&store, id, kafka(0, max - 2), max - 2).unwrap();
        let b = produce(&store, id, kafka(u64::from(max - 2), 3), 3).unwrap();
        assert_eq!(b.base_offset, u64::from(max - 2));
        id
    };
    let store = open(dir.path());
    let again = produce(&store, id, kafka(u64::from(max - 2), 3), 3).unwrap();
    assert_eq!(
        (again.base_offset, again.duplicate),
        (u64::from(max - 2), true)
    );
    let gap = produce(&store, id, kafka(1, 1), 1);
    assert!(
        matches!(gap, Err(Error::SequenceGap { expected: 0, .. })),
        "{gap:?}"
    );
    let wrapped = produce(&store, id, kafka(0, 1), 1).unwrap();
    assert_eq!(
        (wrapped.base_offset, wrapped.duplicate),
        (u64::from(max) + 1, false)
    );
}

//! Store tests of idempotent and conditional appends, the sparse time index and cursors,
//! on a real RocksDB in a temp dir.

use std::path::Path;

use crate::*;

pub(crate) fn open(dir: &Path) -> Store {
    Store::open(&dir.join("db"), &StoreOptions::default()).unwrap()
}

pub(crate) fn new_partition(store: &Store) -> PartitionId {
    let id = store.reserve_partition_ids(1)[0];
    let mut tx = CatalogTx::default();
    tx.create_partition(id);
    store.commit(tx).unwrap();
    id
}

fn batch(count: u32, ts: i64) -> NewBatch {
    NewBatch {
        value: ts.to_be_bytes().to_vec(),
        record_count: count,
        append_time_ms: ts,
        max_timestamp_ms: ts,
    }
}

fn produce(store: &Store, id: PartitionId, check: AppendCheck, count: u32) -> Result<Appended> {
    store
        .append_checked(Durability::Buffered, &[id], &[check], |_, _| {
            batch(count, 7)
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

use crate::values::ProducerState;

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
            |_, _| batch(2, 1),
        )
        .unwrap();
    // b's expectation is wrong: neither partition is written.
    let err = store
        .append_checked(
            Durability::Sync,
            &[a, b],
            &[expect(2), expect(1)],
            |_, _| batch(1, 1),
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

/// A lookup over a million records reads a bounded number of summaries, not the log.
#[test]
fn time_lookups_read_a_bounded_number_of_summaries() {
    let dir = tempfile::tempdir().unwrap();
    let id;
    {
        let store = open(dir.path());
        id = new_partition(&store);
        // 1,000,000 records in 100,000 batches of 10, timestamps 0, 10, 20, ...
        for i in 0..100_000i64 {
            store
                .append(Durability::Buffered, &[id], |_, _| batch(10, i * 10))
                .unwrap();
        }
        let bound = crate::timeindex::TimeTail::INTERVAL + 2;
        for t in [0, 1, 5, 10, 123_456, 500_000, 999_990, 999_991, 5_000_000] {
            let l = store.seek_time(id, t, 0).unwrap();
            assert!(
                l.summaries_examined <= bound,
                "t={t}: {} summaries",
                l.summaries_examined
            );
            let want = (t + 9) / 10; // first batch whose timestamp is >= t
            match l.batch {
                Some(b) => assert_eq!(b.base_offset, want as u64 * 10, "t={t}"),
                None => assert!(want >= 100_000, "t={t}"),
            }
            assert_eq!(l.high_watermark, 1_000_000);
        }
    }
    // Reopened, the index continues where it was.
    let store = open(dir.path());
    store
        .append(Durability::Buffered, &[id], |_, _| batch(1, 2_000_000))
        .unwrap();
    let l = store.seek_time(id, 1_500_000, 0).unwrap();
    assert_eq!(l.batch.map(|b| b.base_offset), Some(1_000_000));
}

#[test]
fn time_lookups_follow_the_running_maximum_and_the_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = new_partition(&store);
    // Producer timestamps out of order: 50, 10, 80, 20, then many at 30.
    for ts in [50, 10, 80, 20]
        .into_iter()
        .chain(std::iter::repeat_n(30, 100))
    {
        store
            .append(Durability::Buffered, &[id], |_, _| batch(1, ts))
            .unwrap();
    }
    let at = |t| {
        store
            .seek_time(id, t, 0)
            .unwrap()
            .batch
            .map(|b| b.base_offset)
    };
    assert_eq!(at(5), Some(0));
    assert_eq!(at(50), Some(0));
    assert_eq!(at(60), Some(2));
    assert_eq!(at(81), None);
    // After a purge the answer never lies below the log start.
    store.purge_before(id, 3).unwrap();
    assert_eq!(
        store
            .seek_time(id, 5, 3)
            .unwrap()
            .batch
            .map(|b| b.base_offset),
        Some(3)
    );
}

#[test]
fn cursors_are_scoped_listed_deleted_and_dropped_with_their_scope() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (s1, s2) = ([1u8; 16], [2u8; 16]);
    store
        .commit_cursors(&s1, "g1", &[(10, 5), (11, 7)], 100)
        .unwrap();
    store.commit_cursors(&s1, "g2", &[(10, 1)], 100).unwrap();
    store.commit_cursors(&s2, "g1", &[(20, 3)], 100).unwrap();
    store.commit_cursors(&s1, "g1", &[(10, 6)], 200).unwrap();
    let g1 = store.cursors(&s1, "g1").unwrap();
    assert_eq!(
        g1,
        vec![
            (
                10,
                Cursor {
                    offset: 6,
                    commit_ms: 200
                }
            ),
            (
                11,
                Cursor {
                    offset: 7,
                    commit_ms: 100
                }
            )
        ]
    );
    assert_eq!(store.cursor_groups(&s1).unwrap(), vec!["g1", "g2"]);
    store.delete_cursors(&s1, "g1", Some(&[11])).unwrap();
    assert_eq!(store.cursors(&s1, "g1").unwrap().len(), 1);
    store.delete_cursors(&s1, "g2", None).unwrap();
    assert_eq!(store.cursor_groups(&s1).unwrap(), vec!["g1"]);
    let mut tx = CatalogTx::default();
    tx.drop_cursor_scope(s1);
    store.commit(tx).unwrap();
    assert!(store.cursor_groups(&s1).unwrap().is_empty());
    assert_eq!(
        store.cursor_groups(&s2).unwrap(),
        vec!["g1"],
        "other scopes stay"
    );
}

#[test]
fn group_lags_sum_each_groups_cursors_against_the_visible_log() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let scope = [3u8; 16];
    let (a, b, gone) = (
        new_partition(&store),
        new_partition(&store),
        new_partition(&store),
    );
    let append = |id, count, ts| {
        store
            .append_checked(
                Durability::Buffered,
                &[id],
                &[AppendCheck::default()],
                |_, _| batch(count, ts),
            )
            .unwrap();
    };
    for ts in [10, 20, 30] {
        append(a, 5, ts); // offsets 0-4, 5-9, 10-14
    }
    append(b, 4, 30);
    store
        .commit_cursors(&scope, "g1", &[(a, 2), (b, 4), (gone, 1)], 1)
        .unwrap();
    store.commit_cursors(&scope, "g2", &[(a, 12)], 1).unwrap();
    let mut tx = CatalogTx::default();
    tx.drop_partition(gone);
    store.commit(tx).unwrap();
    let lags = |cutoff| store.group_lags(&scope, cutoff).unwrap();
    let expect = |g1: u64, g2: u64| vec![("g1".to_owned(), g1), ("g2".to_owned(), g2)];

    assert_eq!(
        lags(None),
        expect(13, 3),
        "a dropped partition counts nothing"
    );
    // Expired records are below the log start: the cursor at 2 lags from 5.
    assert_eq!(lags(Some(15)), expect(10, 3));
    store.purge_before(a, 10).unwrap();
    assert_eq!(lags(None), expect(5, 3));
    assert!(store.group_lags(&[4u8; 16], None).unwrap().is_empty());
}

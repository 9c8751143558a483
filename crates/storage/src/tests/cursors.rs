//! Tests of consumer-group cursors (`cursors.rs`): scopes, listing, deletion and lags.

use super::{new_partition, open, timed_batch};
use crate::*;

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
                    commit_ms: 200,
                    metadata: String::new(),
                }
            ),
            (
                11,
                Cursor {
                    offset: 7,
                    commit_ms: 100,
                    metadata: String::new(),
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
fn commit_metadata_is_kept_and_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let s = [3u8; 16];
    store
        .commit_cursors_with_metadata(&s, "g", &[(1, 5, "leader epoch 7"), (2, 9, "")], 10)
        .unwrap();
    let got = store.cursors(&s, "g").unwrap();
    assert_eq!(got[0].1.metadata, "leader epoch 7");
    assert_eq!((got[0].1.offset, got[1].1.offset), (5, 9));
    assert_eq!(got[1].1.metadata, "");
    // A commit without metadata clears it, as Kafka's does.
    store.commit_cursors(&s, "g", &[(1, 6)], 11).unwrap();
    assert_eq!(store.cursors(&s, "g").unwrap()[0].1.metadata, "");
}

/// Partition `a` gets batches of 5 records at times 10, 20 and 30 (offsets 0-4, 5-9,
/// 10-14); `b` one of 4 at `b_ts`.
fn three_batches_and_one(store: &Store, a: PartitionId, b: PartitionId, b_ts: i64) {
    let append = |id, count, ts| {
        store
            .append_checked(
                Durability::Buffered,
                &[id],
                &[AppendCheck::default()],
                |_, _| timed_batch(count, ts),
            )
            .unwrap();
    };
    for ts in [10, 20, 30] {
        append(a, 5, ts);
    }
    append(b, 4, b_ts);
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
    three_batches_and_one(&store, a, b, 30);
    store
        .commit_cursors(&scope, "g1", &[(a, 2), (b, 4), (gone, 1)], 1)
        .unwrap();
    store.commit_cursors(&scope, "g2", &[(a, 12)], 1).unwrap();
    let mut tx = CatalogTx::default();
    tx.drop_partition(gone);
    store.commit(tx).unwrap();
    let lags = |cutoff| {
        let lags = store.group_lags(&scope, cutoff).unwrap();
        lags.into_iter()
            .map(|l| (l.group, l.records))
            .collect::<Vec<_>>()
    };
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

#[test]
fn group_lags_name_the_append_time_of_the_first_record_to_consume() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let scope = [5u8; 16];
    let (a, b) = (new_partition(&store), new_partition(&store));
    three_batches_and_one(&store, a, b, 25);
    let oldest = |group| {
        let lags = store.group_lags(&scope, None).unwrap();
        let l = lags.into_iter().find(|l| l.group == group).unwrap();
        (l.records, l.oldest_unconsumed_ms)
    };
    // Mid-batch, at a batch's start, past the end; the oldest over the partitions.
    store
        .commit_cursors(&scope, "g", &[(a, 7), (b, 4)], 1)
        .unwrap();
    assert_eq!(oldest("g"), (8, Some(20)));
    store.commit_cursors(&scope, "g", &[(a, 10)], 1).unwrap();
    assert_eq!(oldest("g"), (5, Some(30)));
    store.commit_cursors(&scope, "g", &[(b, 0)], 1).unwrap();
    assert_eq!(oldest("g"), (9, Some(25)));
    store
        .commit_cursors(&scope, "g", &[(a, 15), (b, 4)], 1)
        .unwrap();
    assert_eq!(oldest("g"), (0, None), "caught up");
    // Below the log start: the first record kept.
    store.purge_before(a, 5).unwrap();
    store.commit_cursors(&scope, "h", &[(a, 0)], 1).unwrap();
    assert_eq!(oldest("h"), (10, Some(20)));
}

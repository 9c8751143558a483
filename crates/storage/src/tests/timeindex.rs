//! Tests of the sparse time index (`timeindex.rs`): bounded lookups, the running maximum,
//! reopens and purges.

use super::{new_partition, open, timed_batch};
use crate::*;

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
                .append(Durability::Buffered, &[id], |_, _| timed_batch(10, i * 10))
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
        .append(Durability::Buffered, &[id], |_, _| {
            timed_batch(1, 2_000_000)
        })
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
            .append(Durability::Buffered, &[id], |_, _| timed_batch(1, ts))
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

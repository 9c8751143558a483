//! Store tests of applying pulled batches: exactly once per origin, own records skipped,
//! offset-keeping mirrors, positions and watermarks in the same write, across a reopen.

use proptest::prelude::*;

use super::{new_partition, open};
use crate::*;

const A: ClusterId = [0xA; 16];
const C: ClusterId = [0xC; 16];
const LINK: LinkId = [7; 16];

fn pulled(origin: ClusterId, origin_base: u64, record_count: u32) -> PulledBatch {
    PulledBatch {
        origin,
        origin_incarnation: 0,
        origin_base,
        record_count,
        keep_offset: None,
    }
}

/// Applies `batches`; each stored value is `(origin_base + skip)` so tests can read back
/// which origin records landed where.
fn apply(store: &Store, id: PartitionId, position: u64, batches: &[PulledBatch]) -> ApplyResult {
    store
        .apply_pulled(
            Durability::Buffered,
            id,
            &LINK,
            UpstreamPosition {
                next_offset: position,
                upstream_incarnation: 0,
            },
            batches,
            |i, _, skip| {
                let b = batches[i];
                NewBatch {
                    value: (b.origin_base + u64::from(skip)).to_be_bytes().to_vec(),
                    record_count: b.record_count - skip,
                    append_time_ms: 5,
                    max_timestamp_ms: 5,
                }
            },
        )
        .unwrap()
}

/// An upstream position read in no known incarnation.
fn at(next_offset: u64) -> UpstreamPosition {
    UpstreamPosition {
        next_offset,
        upstream_incarnation: 0,
    }
}

/// The link's stored positions, by partition.
fn positions(store: &Store) -> Vec<(PartitionId, u64)> {
    store
        .link_positions(&LINK)
        .unwrap()
        .into_iter()
        .map(|(id, p)| (id, p.next_offset))
        .collect()
}

/// `(base_offset, first origin offset)` of every stored batch.
fn stored(store: &Store, id: PartitionId) -> Vec<(u64, u64)> {
    store
        .read(
            id,
            store.partition_stats(id, None).unwrap().log_start,
            usize::MAX,
            None,
        )
        .unwrap()
        .batches
        .iter()
        .map(|b| {
            (
                b.base_offset,
                u64::from_be_bytes(b.value[..8].try_into().unwrap()),
            )
        })
        .collect()
}

#[test]
fn each_origin_record_is_applied_once_whatever_path_brings_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = new_partition(&store);
    // From one upstream: A's 0..3, C's 0..2.
    let r = apply(&store, id, 2, &[pulled(A, 0, 3), pulled(C, 0, 2)]);
    assert_eq!(r.high_watermark, 5);
    // From another: A's 0..3 again (duplicate), A's 3..5, C's 1..4 overlapping by one.
    let batches = [pulled(A, 0, 3), pulled(A, 3, 2), pulled(C, 1, 3)];
    let r = apply(&store, id, 9, &batches);
    assert_eq!(r.applied[0], Applied::Duplicate);
    assert!(matches!(
        r.applied[1],
        Applied::Appended {
            base_offset: 5,
            skipped: 0,
            ..
        }
    ));
    assert!(matches!(
        r.applied[2],
        Applied::Appended {
            base_offset: 7,
            skipped: 1,
            ..
        }
    ));
    assert_eq!(r.appended_records(&batches), 4);
    assert_eq!(stored(&store, id), vec![(0, 0), (3, 0), (5, 3), (7, 2)]);
    assert_eq!(store.watermarks(id).unwrap(), vec![(A, 0, 5), (C, 0, 4)]);
    assert_eq!(positions(&store), vec![(id, 9)]);
}

#[test]
fn own_records_are_skipped_and_origin_offsets_need_not_be_dense() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let own = *store.identity().cluster_id.as_bytes();
    let id = new_partition(&store);
    let r = apply(&store, id, 4, &[pulled(own, 0, 4), pulled(A, 10, 2)]);
    assert_eq!(r.applied[0], Applied::Own);
    assert!(matches!(
        r.applied[1],
        Applied::Appended {
            base_offset: 0,
            skipped: 0,
            ..
        }
    ));
    assert_eq!(stored(&store, id), vec![(0, 10)]);
    assert_eq!(store.watermarks(id).unwrap(), vec![(A, 0, 12)]);
}

/// A batch of `origin` in its `incarnation`.
fn of(incarnation: u32, mut b: PulledBatch) -> PulledBatch {
    b.origin_incarnation = incarnation;
    b
}

#[test]
fn a_new_incarnation_reusing_origin_offsets_is_applied_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let own = *store.identity().cluster_id.as_bytes();
    let id = new_partition(&store);
    apply(&store, id, 5, &[of(1, pulled(A, 0, 5))]);
    // A lost its tail from 3 on and starts again there as incarnation 2.
    let batches = [of(2, pulled(A, 3, 4)), of(1, pulled(A, 2, 3))];
    let r = apply(&store, id, 9, &batches);
    assert!(matches!(
        r.applied[0],
        Applied::Appended {
            base_offset: 5,
            skipped: 0,
            ..
        }
    ));
    assert_eq!(
        r.applied[1],
        Applied::Duplicate,
        "incarnation 1 is as it was"
    );
    assert_eq!(stored(&store, id), vec![(0, 0), (5, 3)]);
    // Own records are left out whatever their incarnation.
    let own_batches = [of(7, pulled(own, 0, 2)), of(0, pulled(own, 2, 1))];
    let r = apply(&store, id, 10, &own_batches);
    assert_eq!(r.applied, vec![Applied::Own, Applied::Own]);
    assert_eq!(store.watermarks(id).unwrap(), vec![(A, 1, 5), (A, 2, 7)]);
    drop(store);
    // The watermarks of each incarnation hold across a reopen.
    let store = open(dir.path());
    let batches = [of(2, pulled(A, 5, 3)), of(1, pulled(A, 4, 2))];
    let r = apply(&store, id, 11, &batches);
    assert!(matches!(r.applied[0], Applied::Appended { skipped: 2, .. }));
    assert!(matches!(r.applied[1], Applied::Appended { skipped: 1, .. }));
    assert_eq!(store.watermarks(id).unwrap(), vec![(A, 1, 6), (A, 2, 8)]);
}

#[test]
fn watermarks_written_before_incarnations_are_incarnation_0() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = new_partition(&store);
    // The key as written before incarnations: 0x01, partition, origin.
    let mut old_key = vec![0x01];
    old_key.extend_from_slice(&id.to_be_bytes());
    old_key.extend_from_slice(&A);
    store
        .db
        .put_cf(store.cf(keys::cf::REPL), &old_key, 4u64.to_be_bytes())
        .unwrap();
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.watermark(id, &A, 0).unwrap(), 4);
    assert_eq!(store.watermarks(id).unwrap(), vec![(A, 0, 4)]);
    // Batches stored before incarnations (0) are compared with it; later ones are not.
    let batches = [pulled(A, 2, 4), of(1, pulled(A, 0, 2))];
    let r = apply(&store, id, 3, &batches);
    assert!(matches!(r.applied[0], Applied::Appended { skipped: 2, .. }));
    assert!(matches!(r.applied[1], Applied::Appended { skipped: 0, .. }));
    assert_eq!(store.watermarks(id).unwrap(), vec![(A, 0, 6), (A, 1, 2)]);
    assert_eq!(
        crate::db::get(&store.db, keys::cf::REPL, &old_key).unwrap(),
        Some(6u64.to_be_bytes().to_vec()),
        "incarnation 0 keeps its old key"
    );
}

#[test]
fn a_mirror_refuses_new_records_at_offsets_it_holds_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = new_partition(&store);
    let mut b = of(1, pulled(A, 100, 10));
    b.keep_offset = Some(100);
    apply(&store, id, 110, &[b]);
    // The source lost 105.. and wrote new records there as incarnation 2.
    let mut old = of(1, pulled(A, 100, 5));
    old.keep_offset = Some(100);
    let mut new = of(2, pulled(A, 105, 3));
    new.keep_offset = Some(105);
    let e = store
        .apply_pulled(
            Durability::Sync,
            id,
            &LINK,
            at(108),
            &[old, new],
            |_, _, _| unreachable!("nothing is built"),
        )
        .unwrap_err();
    assert!(e.is_mirror_divergence(), "{e}");
    assert!(
        e.to_string()
            .starts_with("the source's offsets diverged at 105: it lost records this mirror holds"),
        "{e}"
    );
    assert_eq!(positions(&store), vec![(id, 110)]);
    assert_eq!(store.watermarks(id).unwrap(), vec![(A, 1, 110)]);
    assert_eq!(store.partition_stats(id, None).unwrap().high_watermark, 110);
}

#[test]
fn positions_keep_the_upstream_incarnation_and_old_ones_read_as_0() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = new_partition(&store);
    let p = UpstreamPosition {
        next_offset: 7,
        upstream_incarnation: 1_700_000_000,
    };
    store
        .apply_pulled(
            Durability::Sync,
            id,
            &LINK,
            p,
            &[],
            |_, _, _| unreachable!(),
        )
        .unwrap();
    assert_eq!(store.link_positions(&LINK).unwrap(), vec![(id, p)]);
    // A position as stored before incarnations: the offset alone.
    store
        .db
        .put_cf(
            store.cf(keys::cf::REPL),
            keys::link_position(&LINK, id),
            9u64.to_be_bytes(),
        )
        .unwrap();
    assert_eq!(store.link_positions(&LINK).unwrap(), vec![(id, at(9))]);
}

#[test]
fn a_position_holds_only_where_the_log_below_it_is_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("backup");
    std::fs::create_dir(&backup).unwrap();
    let append = |store: &Store, id| {
        store
            .append(Durability::Sync, &[id], |_, _| NewBatch {
                value: vec![1],
                record_count: 5,
                append_time_ms: 1,
                max_timestamp_ms: 1,
            })
            .unwrap();
    };
    let (id, first) = {
        let store = open(dir.path());
        let id = new_partition(&store);
        append(&store, id);
        append(&store, id);
        let first = store.identity().incarnation;
        let read = |o| UpstreamPosition {
            next_offset: o,
            upstream_incarnation: first,
        };
        assert!(store.position_holds(id, read(10)).unwrap());
        assert!(!store.position_holds(id, read(11)).unwrap());
        assert!(
            !store.position_holds(id, at(10)).unwrap(),
            "another incarnation"
        );
        // A checkpoint at 10; the log goes on to 20 and a puller reads all of it.
        store.checkpoint(&backup).unwrap();
        append(&store, id);
        append(&store, id);
        assert!(store.position_holds(id, read(20)).unwrap());
        (id, first)
    };
    let read = |o| UpstreamPosition {
        next_offset: o,
        upstream_incarnation: first,
    };
    // A restart keeps the log: positions read before it hold up to its end.
    let store = open(dir.path());
    assert!(store.position_holds(id, read(20)).unwrap());
    let second = store.identity().incarnation;
    drop(store);
    // The checkpoint, restored, ends at 10: a position read past that in the incarnation
    // it was taken in does not hold, nor one read in a later incarnation of the original.
    let copy = Store::open(&backup.join(CHECKPOINT_DB), &StoreOptions::default()).unwrap();
    assert!(copy.position_holds(id, read(10)).unwrap());
    assert!(!copy.position_holds(id, read(20)).unwrap());
    let later = UpstreamPosition {
        next_offset: 5,
        upstream_incarnation: second,
    };
    assert!(!copy.position_holds(id, later).unwrap());
}

#[test]
fn a_chunk_without_batches_still_moves_the_position() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = new_partition(&store);
    apply(&store, id, 42, &[]);
    assert_eq!(positions(&store), vec![(id, 42)]);
    assert_eq!(store.partition_stats(id, None).unwrap().high_watermark, 0);
    store.drop_link(&LINK).unwrap();
    assert!(store.link_positions(&LINK).unwrap().is_empty());
}

#[test]
fn a_mirror_keeps_upstream_offsets_and_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = new_partition(&store);
    let mut b = pulled(A, 100, 5);
    b.keep_offset = Some(100);
    let mut c = pulled(A, 108, 2); // a gap key compaction left upstream
    c.keep_offset = Some(108);
    let r = apply(&store, id, 110, &[b, c]);
    assert_eq!(r.high_watermark, 110);
    let st = store.partition_stats(id, None).unwrap();
    assert_eq!((st.log_start, st.high_watermark, st.records), (100, 110, 7));
    assert_eq!(stored(&store, id), vec![(100, 100), (108, 108)]);
    assert!(matches!(
        store.read(id, 0, 1, None),
        Err(Error::OffsetOutOfRange { log_start: 100, .. })
    ));
}

#[test]
fn watermarks_and_positions_survive_a_reopen_and_go_with_the_partition() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let store = open(dir.path());
        let id = new_partition(&store);
        apply(&store, id, 3, &[pulled(A, 0, 3)]);
        id
    };
    let store = open(dir.path());
    let r = apply(&store, id, 3, &[pulled(A, 0, 3)]);
    assert_eq!(r.applied, vec![Applied::Duplicate]);
    assert_eq!(positions(&store), vec![(id, 3)]);
    let mut tx = CatalogTx::default();
    tx.drop_partition(id);
    store.commit(tx).unwrap();
    assert!(store.watermarks(id).unwrap().is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Three paths deliver one origin's records, each path in origin order but cut into
    /// batches differently and interleaved arbitrarily: the log ends up with every record
    /// exactly once, in origin order.
    #[test]
    fn any_interleaving_of_in_order_paths_applies_each_record_once(
        cuts in proptest::collection::vec(proptest::collection::vec(1u32..6, 1..20), 3),
        order in proptest::collection::vec(0usize..3, 0..120),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let id = new_partition(&store);
        let paths: Vec<Vec<PulledBatch>> = cuts
            .iter()
            .map(|sizes| {
                let mut at = 0;
                sizes.iter().map(|&n| { let b = pulled(A, at, n); at += u64::from(n); b }).collect()
            })
            .collect();
        let mut next = [0usize; 3];
        let schedule = order.into_iter().chain((0..3).flat_map(|p| std::iter::repeat_n(p, 20)));
        for p in schedule {
            if let Some(b) = paths[p].get(next[p]) {
                apply(&store, id, 0, std::slice::from_ref(b));
                next[p] += 1;
            }
        }
        let longest: u64 = cuts.iter().map(|c| c.iter().map(|&n| u64::from(n)).sum::<u64>()).max().unwrap();
        // Offsets are dense and each stored batch starts at the origin offset it holds.
        let batches = stored(&store, id);
        prop_assert_eq!(store.partition_stats(id, None).unwrap().high_watermark, longest);
        for (base, origin) in batches {
            prop_assert_eq!(base, origin);
        }
    }
}

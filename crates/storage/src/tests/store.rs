//! Tests of the store's API (`store.rs`): offsets, reads, the catalog, partitions'
//! lifecycle, expiry, purges and size caps, including a model-based property test of
//! appends, reads and reopens against a `Vec` of batches.

use proptest::prelude::*;

use super::{new_partition, open};
use crate::*;

/// A batch whose value names its base offset and carries `len` bytes of payload.
fn batch(count: u32, len: usize) -> impl Fn(u64) -> NewBatch {
    move |base: u64| {
        let mut value = base.to_be_bytes().to_vec();
        value.resize(8 + len, (base % 251) as u8);
        NewBatch {
            value,
            record_count: count,
            append_time_ms: 1_000 + base as i64,
            max_timestamp_ms: 0,
        }
    }
}

fn append1(
    store: &Store,
    id: PartitionId,
    d: Durability,
    mut b: impl FnMut(u64) -> NewBatch,
) -> Result<Appended> {
    store
        .append(d, &[id], |_, base| b(base))
        .map(|mut a| a.remove(0))
}

fn base_of(b: &StoredBatch) -> u64 {
    u64::from_be_bytes(b.value[..8].try_into().unwrap())
}

#[test]
fn offsets_are_dense_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (id, cluster) = {
        let store = open(dir.path());
        let id = new_partition(&store);
        let a = append1(&store, id, Durability::Sync, batch(3, 10)).unwrap();
        let b = append1(&store, id, Durability::Buffered, batch(1, 10)).unwrap();
        let c = append1(&store, id, Durability::Sync, batch(5, 10)).unwrap();
        assert_eq!((a.base_offset, b.base_offset, c.base_offset), (0, 3, 4));
        (id, store.identity().cluster_id)
    };
    let store = open(dir.path());
    assert_eq!(
        store.identity().cluster_id,
        cluster,
        "identity is made once"
    );
    let r = store.read(id, 0, usize::MAX, None).unwrap();
    assert_eq!(r.high_watermark, 9);
    assert_eq!(
        r.batches.iter().map(|b| b.base_offset).collect::<Vec<_>>(),
        vec![0, 3, 4]
    );
    assert!(
        r.batches.iter().all(|b| base_of(b) == b.base_offset),
        "values are returned as stored"
    );
    let next = append1(&store, id, Durability::Sync, batch(2, 10)).unwrap();
    assert_eq!(next.base_offset, 9);
    let stats = store.partition_stats(id, None).unwrap();
    assert_eq!(
        (stats.log_start, stats.high_watermark, stats.records),
        (0, 11, 11)
    );
    assert_eq!(stats.bytes, 4 * 18);
    assert_eq!(
        (stats.first_append_ms, stats.last_append_ms),
        (Some(1_000), Some(1_009))
    );
}

#[test]
fn every_open_is_a_new_incarnation_persisted_before_use() {
    let dir = tempfile::tempdir().unwrap();
    let stored = |store: &Store| -> ClusterIdentity {
        let v = crate::db::get(&store.db, keys::cf::META, keys::META_IDENTITY).unwrap();
        serde_json::from_slice(&v.unwrap()).unwrap()
    };
    let first = {
        let store = open(dir.path());
        assert!(store.identity().incarnation >= 1);
        assert_eq!(&stored(&store), store.identity(), "persisted at open");
        store.identity().clone()
    };
    let store = open(dir.path());
    let second = store.identity().clone();
    assert_eq!(second.cluster_id, first.cluster_id);
    assert_ne!(second.incarnation, first.incarnation);
    assert_eq!(second.previous_incarnation, first.incarnation);
    assert_eq!(stored(&store), second);

    // An identity written before incarnations existed reads as 0 and is bumped.
    let mut old = serde_json::to_value(&second).unwrap();
    old.as_object_mut().unwrap().remove("incarnation");
    store
        .db
        .put_cf(
            store.cf(keys::cf::META),
            keys::META_IDENTITY,
            serde_json::to_vec(&old).unwrap(),
        )
        .unwrap();
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.identity().cluster_id, first.cluster_id);
    assert!(store.identity().incarnation >= 1);
}

#[test]
fn a_new_incarnation_is_never_0_nor_the_stored_one() {
    use crate::store::next_incarnation;
    assert_eq!(next_incarnation(7, 1234), 1234);
    assert_eq!(next_incarnation(0, 0), 1);
    assert_eq!(next_incarnation(3, 0), 1);
    assert_eq!(next_incarnation(1, 0), 2);
    assert_eq!(next_incarnation(5, 5), 6);
    assert_eq!(next_incarnation(u32::MAX, u32::MAX), 1);
}

#[test]
fn reads_start_at_the_batch_holding_the_offset_and_respect_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = new_partition(&store);
    for _ in 0..10 {
        append1(&store, id, Durability::Buffered, batch(10, 92)).unwrap(); // 100-byte values
    }
    // Each batch costs its 100 bytes and 2 of framing: a third would pass 250.
    let r = store.read(id, 35, 250, None).unwrap();
    assert_eq!(
        r.batches.iter().map(|b| b.base_offset).collect::<Vec<_>>(),
        vec![30, 40]
    );
    assert_eq!(r.next_offset, 50);
    // A budget smaller than one batch still returns that batch.
    let r = store.read(id, 99, 1, None).unwrap();
    assert_eq!(
        r.batches.iter().map(|b| b.base_offset).collect::<Vec<_>>(),
        vec![90]
    );
    // At the high-water mark: nothing yet, not an error.
    assert!(store.read(id, 100, 1, None).unwrap().batches.is_empty());
    match store.read(id, 101, 1, None) {
        Err(Error::OffsetOutOfRange {
            offset: 101,
            log_start: 0,
            high_watermark: 100,
        }) => {}
        other => panic!("expected out of range, got {other:?}"),
    }
}

#[test]
fn partitions_are_isolated_and_dropping_one_removes_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let a = new_partition(&store);
    let b = new_partition(&store);
    assert_ne!(a, b);
    append1(&store, a, Durability::Sync, batch(1, 1)).unwrap();
    append1(&store, b, Durability::Sync, batch(2, 1)).unwrap();
    append1(&store, b, Durability::Sync, batch(2, 1)).unwrap();
    assert_eq!(store.read(a, 0, usize::MAX, None).unwrap().batches.len(), 1);
    assert_eq!(store.read(b, 0, usize::MAX, None).unwrap().batches.len(), 2);

    let mut tx = CatalogTx::default();
    tx.drop_partition(b);
    store.commit(tx).unwrap();
    assert!(matches!(store.read(b, 0, 1, None), Err(Error::UnknownPartition(id)) if id == b));
    assert!(matches!(
        append1(&store, b, Durability::Sync, batch(1, 1)),
        Err(Error::UnknownPartition(_))
    ));
    assert_eq!(
        store.read(a, 0, usize::MAX, None).unwrap().high_watermark,
        1
    );

    drop(store);
    let store = open(dir.path());
    assert!(matches!(
        store.read(b, 0, 1, None),
        Err(Error::UnknownPartition(_))
    ));
    let c = new_partition(&store);
    assert!(c > b, "partition ids are never reused");
    assert_eq!(
        store.read(c, 0, usize::MAX, None).unwrap().high_watermark,
        0
    );
}

#[test]
fn catalog_rows_commit_atomically_with_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let ids = store.reserve_partition_ids(2);
    let mut tx = CatalogTx::default();
    tx.put(b"s/a", b"1".to_vec());
    tx.put(b"s/b", b"2".to_vec());
    tx.put(b"t/a", b"3".to_vec());
    ids.iter().for_each(|&id| tx.create_partition(id));
    store.commit(tx).unwrap();
    assert_eq!(store.catalog_get(b"s/a").unwrap(), Some(b"1".to_vec()));
    let rows = store.catalog_scan(b"s/", 10).unwrap();
    assert_eq!(
        rows,
        vec![
            (b"s/a".to_vec(), b"1".to_vec()),
            (b"s/b".to_vec(), b"2".to_vec())
        ]
    );
    assert_eq!(
        store.catalog_scan(b"", 2).unwrap().len(),
        2,
        "limit applies"
    );
    let mut tx = CatalogTx::default();
    tx.delete(b"s/a");
    store.commit(tx).unwrap();
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.catalog_get(b"s/a").unwrap(), None);
    assert_eq!(store.catalog_scan(b"", 10).unwrap().len(), 2);
    for id in ids {
        assert_eq!(store.partition_stats(id, None).unwrap().high_watermark, 0);
    }
}

#[test]
fn foreign_directories_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "hello").unwrap();
    let err = Store::open(dir.path(), &StoreOptions::default()).unwrap_err();
    assert!(matches!(err, Error::ForeignDataDir { .. }), "{err}");
    assert!(dir.path().join("notes.txt").exists(), "nothing was touched");

    let other = tempfile::tempdir().unwrap();
    {
        let mut o = rocksdb::Options::default();
        o.create_if_missing(true);
        let db = rocksdb::DB::open(&o, other.path()).unwrap();
        db.put(b"k", b"v").unwrap();
    }
    let err = Store::open(other.path(), &StoreOptions::default()).unwrap_err();
    assert!(err.to_string().contains("column family"), "{err}");
}

#[test]
fn multi_partition_appends_are_one_write() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let a = new_partition(&store);
    let b = new_partition(&store);
    append1(&store, b, Durability::Sync, batch(5, 1)).unwrap();
    // Ids given out of order: locks are still taken in id order, results in given order.
    let acks = store
        .append(Durability::Sync, &[b, a], |i, base| {
            batch(i as u32 + 1, 1)(base)
        })
        .unwrap();
    assert_eq!(
        acks.iter()
            .map(|a| (a.base_offset, a.record_count))
            .collect::<Vec<_>>(),
        vec![(5, 1), (0, 2)]
    );
    // One unknown partition fails the whole append and writes nothing.
    assert!(
        store
            .append(Durability::Sync, &[a, 9_999], |_, base| batch(1, 1)(base))
            .is_err()
    );
    assert_eq!(store.partition_stats(a, None).unwrap().high_watermark, 2);
}

#[test]
fn a_store_in_use_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let _first = open(dir.path());
    let err = Store::open(&dir.path().join("db"), &StoreOptions::default()).unwrap_err();
    assert!(matches!(err, Error::InUse { .. }), "{err}");
}

#[test]
fn watchers_see_the_high_water_mark_move() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = new_partition(&store);
    let mut rx = store.watch(id).unwrap();
    assert_eq!(*rx.borrow_and_update(), 0);
    append1(&store, id, Durability::Buffered, batch(4, 1)).unwrap();
    assert!(rx.has_changed().unwrap());
    assert_eq!(*rx.borrow_and_update(), 4);
}

#[derive(Debug, Clone)]
enum Op {
    Append { count: u32, len: usize, sync: bool },
    Read { at: f64, budget: usize },
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u32..20, 0usize..300, any::<bool>()).prop_map(|(count, len, sync)| Op::Append { count, len, sync }),
        3 => (0.0f64..=1.0, 1usize..2_000).prop_map(|(at, budget)| Op::Read { at, budget }),
        1 => Just(Op::Reopen),
    ]
}

/// A read never passes its budget, counted as the framed batches go on the wire, except
/// with a lone first batch larger than the budget.
#[test]
fn reads_never_pass_the_budget_but_a_lone_first_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = new_partition(&store);
    for i in 0..500 {
        append1(&store, id, Durability::Buffered, batch(1, 20 + i % 37)).unwrap();
    }
    append1(&store, id, Durability::Buffered, batch(1, 100_000)).unwrap();
    append1(&store, id, Durability::Buffered, batch(1, 10)).unwrap();
    for budget in [1, 29, 30, 31, 100, 1_000, 4_321, 10_000] {
        let mut offset = 0;
        while offset < 500 {
            let r = store.read(id, offset, budget, None).unwrap();
            let sizes: Vec<usize> = r
                .batches
                .iter()
                .map(|b| framed_len(b.value.len()))
                .collect();
            let total: usize = sizes.iter().sum();
            assert!(
                total <= budget || sizes.len() == 1,
                "budget {budget} at {offset}: {total} bytes in {} batches",
                sizes.len()
            );
            assert!(r.next_offset > offset);
            offset = r.next_offset;
        }
        let r = store.read(id, 500, budget, None).unwrap();
        assert_eq!(
            r.batches.len(),
            1,
            "the big batch comes alone at budget {budget}"
        );
        assert_eq!((r.batches[0].base_offset, r.next_offset), (500, 501));
    }
    let r = store.read(id, 500, 200_000, None).unwrap();
    assert_eq!(r.batches.len(), 2, "and with what fits after it");
}

#[test]
fn framed_len_is_the_protobuf_length_of_a_bytes_field() {
    // A tag byte, then the length as a varint of 7 bits a byte.
    let prefix = [
        (0, 1),
        (127, 1),
        (128, 2),
        (16_383, 2),
        (16_384, 3),
        (2_097_151, 3),
        (2_097_152, 4),
        (64 << 20, 4),
    ];
    for (len, varint) in prefix {
        assert_eq!(framed_len(len), 1 + varint + len, "{len}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// The log behaves like a `Vec` of (base_offset, count, value): dense offsets, reads
    /// that start at the batch holding the offset and stop at the byte budget, and nothing
    /// lost or changed by a reopen.
    #[test]
    fn log_matches_a_vec_model(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path());
        let id = new_partition(&store);
        let mut model: Vec<(u64, u32, Vec<u8>)> = Vec::new();
        let hwm = |m: &[(u64, u32, Vec<u8>)]| m.last().map_or(0, |(b, c, _)| b + u64::from(*c));
        for op in ops {
            match op {
                Op::Append { count, len, sync } => {
                    let d = if sync { Durability::Sync } else { Durability::Buffered };
                    let mut stored = Vec::new();
                    let a = append1(&store, id, d, |base| { let b = batch(count, len)(base); stored = b.value.clone(); b }).unwrap();
                    prop_assert_eq!(a.base_offset, hwm(&model));
                    model.push((a.base_offset, count, stored));
                }
                Op::Read { at, budget } => {
                    let offset = (hwm(&model) as f64 * at) as u64;
                    let r = store.read(id, offset, budget, None).unwrap();
                    prop_assert_eq!(r.high_watermark, hwm(&model));
                    let first = model.iter().position(|(b, c, _)| offset < b + u64::from(*c));
                    let mut expected = Vec::new();
                    let mut total = 0;
                    for (b, _, v) in first.map_or(&model[..0], |i| &model[i..]) {
                        let cost = framed_len(v.len());
                        if !expected.is_empty() && total + cost > budget { break; }
                        expected.push((*b, v.clone()));
                        total += cost;
                    }
                    let got: Vec<_> = r.batches.iter().map(|b| (b.base_offset, b.value.to_vec())).collect();
                    prop_assert_eq!(got, expected);
                }
                Op::Reopen => {
                    drop(store);
                    store = open(dir.path());
                }
            }
        }
    }
}

#[test]
fn expired_heads_are_invisible_at_once_and_purged_by_range_delete() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = new_partition(&store);
    // Batches at t = 1000, 1010, 1020 (their max timestamps), 5 records each.
    for _ in 0..3 {
        append1(&store, id, Durability::Buffered, |base| NewBatch {
            max_timestamp_ms: 1_000 + base as i64 * 2,
            ..batch(5, 10)(base)
        })
        .unwrap();
    }
    // Nothing has expired below t = 1000; the first batch has by t = 1005.
    assert_eq!(
        store
            .read(id, 0, usize::MAX, Some(1_000))
            .unwrap()
            .log_start,
        0
    );
    let r = store.read(id, 5, usize::MAX, Some(1_005)).unwrap();
    assert_eq!((r.log_start, r.batches[0].base_offset), (5, 5));
    match store.read(id, 4, usize::MAX, Some(1_005)) {
        Err(Error::OffsetOutOfRange {
            log_start: 5,
            high_watermark: 15,
            ..
        }) => {}
        other => panic!("an expired offset must be out of range, got {other:?}"),
    }
    let stats = store.partition_stats(id, Some(1_015)).unwrap();
    assert_eq!(
        (stats.log_start, stats.records),
        (10, 5),
        "expired records no longer count"
    );

    // Purge: the expired head goes with a range delete; offsets of survivors are unchanged.
    let start = store.expired_start(id, 1_015).unwrap();
    assert_eq!(start, 10);
    let purged = store.purge_before(id, start).unwrap();
    assert_eq!(
        purged,
        Purged {
            records: 10,
            bytes: 2 * 18
        }
    );
    store.compact_purged(&[(id, start)]).unwrap();
    let r = store.read(id, 10, usize::MAX, None).unwrap();
    assert_eq!(
        (r.log_start, r.batches.len(), r.batches[0].base_offset),
        (10, 1, 10)
    );
    assert!(
        base_of(&r.batches[0]) == 10,
        "the surviving batch is byte for byte what was stored"
    );
    assert!(matches!(
        store.read(id, 0, 1, None),
        Err(Error::OffsetOutOfRange { log_start: 10, .. })
    ));
    assert_eq!(
        store.purge_before(id, 10).unwrap(),
        Purged::default(),
        "purging twice is a no-op"
    );
    assert!(store.purge_before(id, 12).is_err(), "only batch boundaries");

    // The purge survives a reopen; appends continue after it.
    drop(store);
    let store = open(dir.path());
    let stats = store.partition_stats(id, None).unwrap();
    assert_eq!(
        (stats.log_start, stats.high_watermark, stats.records),
        (10, 15, 5)
    );
    assert_eq!((stats.purged_records, stats.purged_bytes), (10, 36));
    assert_eq!(
        append1(&store, id, Durability::Sync, batch(1, 1))
            .unwrap()
            .base_offset,
        15
    );
    // Everything expired: the log is empty at its high-water mark, not an error.
    let r = store.read(id, 16, 1, Some(i64::MAX)).unwrap();
    assert_eq!(
        (r.log_start, r.high_watermark, r.batches.len()),
        (16, 16, 0)
    );
}

#[test]
fn size_caps_drop_the_oldest_whole_batches() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = new_partition(&store);
    for _ in 0..10 {
        append1(&store, id, Durability::Buffered, batch(2, 92)).unwrap(); // 100-byte values
    }
    assert_eq!(
        store.size_capped_start(id, 1_000).unwrap(),
        0,
        "under the cap: nothing goes"
    );
    assert_eq!(
        store.size_capped_start(id, 450).unwrap(),
        12,
        "six oldest batches go, four stay"
    );
    assert_eq!(
        store.size_capped_start(id, 0).unwrap(),
        18,
        "the newest batch always stays"
    );
    store.purge_before(id, 12).unwrap();
    let stats = store.partition_stats(id, None).unwrap();
    assert_eq!(
        (stats.log_start, stats.bytes, stats.purged_bytes),
        (12, 400, 600)
    );
}

/// `sync` appends to one partition share an fsync: eight appenders that wrote while
/// another fsync was under way (here: the test holding the group-commit lock) are all
/// covered by the next one. None is visible to readers before it is durable, and offsets
/// stay dense.
#[test]
fn sync_appends_to_one_partition_share_an_fsync() {
    use rocksdb::statistics::Ticker;
    const WRITERS: u64 = 8;
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = new_partition(&store);
    let p = store.partition(id).unwrap();
    let syncs = || store.db_options().get_ticker_count(Ticker::WalFileSynced);

    let in_progress = store.synced.lock();
    std::thread::scope(|s| {
        let writers: Vec<_> = (0..WRITERS)
            .map(|_| s.spawn(|| append1(&store, id, Durability::Sync, batch(1, 100)).unwrap()))
            .collect();
        // Every writer has written (its offset taken) and waits for the fsync.
        while p.slot.lock().state.next_offset < WRITERS {
            std::thread::yield_now();
        }
        assert_eq!(
            *p.hwm.borrow(),
            0,
            "nothing is visible before it is durable"
        );
        let before = syncs();
        drop(in_progress);
        let mut bases: Vec<u64> = writers
            .into_iter()
            .map(|w| w.join().unwrap().base_offset)
            .collect();
        bases.sort_unstable();
        assert_eq!(bases, (0..WRITERS).collect::<Vec<_>>());
        assert_eq!(syncs() - before, 1, "one fsync for all {WRITERS}");
    });
    assert_eq!(*p.hwm.borrow(), WRITERS);
    assert_eq!(
        store.read(id, 0, usize::MAX, None).unwrap().batches.len(),
        8
    );
}

#[test]
fn empty_partitions_are_told_apart_without_being_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let (idle, busy) = {
        let store = open(dir.path());
        let idle = new_partition(&store);
        let busy = new_partition(&store);
        append1(&store, busy, Durability::Sync, batch(2, 10)).unwrap();
        (idle, busy)
    };
    // Reopened, nothing is loaded: both answers come from the stored states.
    let store = open(dir.path());
    assert!(!store.may_hold_records(idle).unwrap());
    assert!(
        !store.may_hold_records(idle).unwrap(),
        "again, from the set"
    );
    assert!(store.may_hold_records(busy).unwrap());
    assert_eq!(store.loaded_partitions(), 0);

    // An append loads the idle partition, and the next answer sees it.
    append1(&store, idle, Durability::Buffered, batch(1, 10)).unwrap();
    assert!(store.may_hold_records(idle).unwrap());
    assert!(store.empty_unloaded.lock().is_empty());
    // Purged to its end, a loaded partition is empty again.
    store.purge_before(idle, 1).unwrap();
    assert!(!store.may_hold_records(idle).unwrap());

    let mut tx = CatalogTx::default();
    tx.drop_partition(idle);
    store.commit(tx).unwrap();
    assert!(matches!(
        store.may_hold_records(idle),
        Err(Error::UnknownPartition(_))
    ));
}

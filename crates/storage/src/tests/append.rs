//! Tests of the appender thread (`append.rs`): queued appends share one write and one
//! fsync, a refused append leaves the rest of its group alone, and concurrent appends
//! over overlapping partitions neither deadlock nor lose an offset. Real RocksDB, temp dir.

use std::future::Future;
use std::sync::Arc;

use rocksdb::statistics::Ticker;

use super::{new_partition, open};
use crate::*;

fn value(tag: u64) -> NewBatch {
    NewBatch {
        value: tag.to_be_bytes().to_vec(),
        record_count: 1,
        append_time_ms: 1_000,
        max_timestamp_ms: 1_000,
    }
}

/// Appends one record tagged `tag` to each of `ids`.
fn submit(
    store: &Arc<Store>,
    durability: Durability,
    ids: &[PartitionId],
    checks: Vec<AppendCheck>,
    tag: u64,
) -> impl Future<Output = Result<Vec<Appended>>> + use<> {
    store.submit(AppendRequest {
        durability,
        partitions: ids.to_vec(),
        checks,
        build: Box::new(move |_, _| value(tag)),
    })
}

/// Submits `appends` (durability, checks, tag) to partition `id` while holding its lock,
/// so the appender finds them all queued when the lock is let go.
fn queued(
    store: &Arc<Store>,
    id: PartitionId,
    appends: Vec<(Durability, Vec<AppendCheck>, u64)>,
) -> Vec<impl Future<Output = Result<Vec<Appended>>> + use<>> {
    let p = store.partition(id).unwrap();
    let locked = p.slot.lock();
    let answers = appends
        .into_iter()
        .map(|(d, checks, tag)| submit(store, d, &[id], checks, tag))
        .collect();
    drop(locked);
    answers
}

fn writes(store: &Store) -> u64 {
    let o = store.db_options();
    o.get_ticker_count(Ticker::WriteDoneBySelf) + o.get_ticker_count(Ticker::WriteDoneByOther)
}

fn expect(next_offset: u64) -> Vec<AppendCheck> {
    vec![AppendCheck {
        expect_next_offset: Some(next_offset),
        ..Default::default()
    }]
}

/// While a partition is locked, sixteen `sync` appends queue up; once it is free they
/// take at most two writes and two fsyncs (the first append may be taken alone before
/// the others are queued), where one blocking task per append took sixteen of each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_appends_share_one_write_and_one_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path()));
    let id = new_partition(&store);
    let p = store.partition(id).unwrap();
    let (writes_before, syncs_before) = (
        writes(&store),
        store.db_options().get_ticker_count(Ticker::WalFileSynced),
    );

    let answers = queued(
        &store,
        id,
        (0..16).map(|tag| (Durability::Sync, vec![], tag)).collect(),
    );
    let mut bases = Vec::new();
    for a in answers {
        bases.push(a.await.unwrap()[0].base_offset);
    }
    assert_eq!(bases, (0..16).collect::<Vec<_>>(), "offsets in queue order");
    assert!(writes(&store) - writes_before <= 2);
    assert!(store.db_options().get_ticker_count(Ticker::WalFileSynced) - syncs_before <= 2);
    assert_eq!(*p.hwm.borrow(), 16, "visible once acknowledged");
    let read = store.read(id, 0, usize::MAX, None).unwrap();
    let tags: Vec<u64> = read
        .batches
        .iter()
        .map(|b| u64::from_be_bytes(b.value[..8].try_into().unwrap()))
        .collect();
    assert_eq!(tags, (0..16).collect::<Vec<_>>());
}

/// In one group, an append whose condition fails is refused alone: the ones before and
/// after it are stored, with dense offsets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_append_leaves_the_rest_of_its_group() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path()));
    let id = new_partition(&store);
    let b = Durability::Buffered;
    let [first, stale, last] = queued(
        &store,
        id,
        vec![(b, expect(0), 1), (b, expect(0), 2), (b, vec![], 3)],
    )
    .try_into()
    .ok()
    .unwrap();
    assert_eq!(first.await.unwrap()[0].base_offset, 0);
    match stale.await {
        Err(Error::OffsetMismatch {
            expected: 0,
            actual: 1,
            ..
        }) => {}
        other => panic!("expected an offset mismatch, got {other:?}"),
    }
    assert_eq!(last.await.unwrap()[0].base_offset, 1);
    let read = store.read(id, 0, usize::MAX, None).unwrap();
    assert_eq!(read.high_watermark, 2);
    assert_eq!(read.batches.len(), 2);
}

/// One producer's appends queued together follow each other's sequences, a retry in the
/// same group gets the original offsets, and the producer's state is stored: after a
/// reopen a retry is still recognised.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_appends_in_one_group_follow_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let seq = |sequence| {
        vec![AppendCheck {
            producer: Some(ProducerSeq {
                id: 7,
                epoch: 0,
                sequence,
                record_count: 1,
                space: SequenceSpace::Tributary,
            }),
            ..Default::default()
        }]
    };
    let id = {
        let store = Arc::new(open(dir.path()));
        let id = new_partition(&store);
        let s = Durability::Sync;
        let [a, b, retry] = queued(
            &store,
            id,
            vec![(s, seq(0), 1), (s, seq(1), 2), (s, seq(0), 1)],
        )
        .try_into()
        .ok()
        .unwrap();
        assert_eq!(a.await.unwrap()[0].base_offset, 0);
        assert_eq!(b.await.unwrap()[0].base_offset, 1);
        let r = retry.await.unwrap()[0];
        assert!(r.duplicate);
        assert_eq!(r.base_offset, 0);
        id
    };
    let store = Arc::new(open(dir.path()));
    let r = submit(&store, Durability::Sync, &[id], seq(1), 2)
        .await
        .unwrap()[0];
    assert!(r.duplicate, "the state survived the reopen");
    assert_eq!(r.base_offset, 1);
    let next = submit(&store, Durability::Sync, &[id], seq(2), 3)
        .await
        .unwrap()[0];
    assert_eq!((next.base_offset, next.duplicate), (2, false));
}

/// The appender does not wait for an fsync: while one is held up, a `buffered` append
/// is answered; the `sync` one only after the fsync, and it is invisible until then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(
    clippy::await_holding_lock,
    reason = "holding up the fsync is the point"
)]
async fn buffered_appends_do_not_wait_for_an_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path()));
    let (a, b) = (new_partition(&store), new_partition(&store));
    let pa = store.partition(a).unwrap();

    let fsync = store.synced.lock();
    let durable = tokio::spawn(submit(&store, Durability::Sync, &[a], vec![], 1));
    let quick = submit(&store, Durability::Buffered, &[b], vec![], 2);
    assert_eq!(quick.await.unwrap()[0].base_offset, 0);
    // The buffered append was queued after the sync one, so the sync one is written.
    assert_eq!(pa.slot.lock().state.next_offset, 1);
    assert!(!durable.is_finished());
    assert_eq!(*pa.hwm.borrow(), 0, "not visible before its fsync");
    drop(fsync);
    assert_eq!(durable.await.unwrap().unwrap()[0].base_offset, 0);
    assert_eq!(*pa.hwm.borrow(), 1);
}

/// Appends to overlapping sets of partitions, from the appender and from blocking
/// callers at once, while another thread holds each partition's lock now and then: no
/// deadlock, and every partition's offsets are dense and match what was appended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_appends_neither_deadlock_nor_lose_offsets() {
    const ROUNDS: u64 = 300;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path()));
    let ids: Vec<PartitionId> = (0..3).map(|_| new_partition(&store)).collect();
    let sets: Vec<Vec<PartitionId>> = vec![
        vec![ids[0], ids[1]],
        vec![ids[2], ids[1]],
        vec![ids[2], ids[0]],
        vec![ids[1]],
    ];

    let blocking = {
        let store = store.clone();
        let ids = ids.clone();
        std::thread::spawn(move || {
            for i in 0..ROUNDS {
                store
                    .append(Durability::Buffered, &[ids[2], ids[0]], |_, _| value(i))
                    .unwrap();
                // Take a partition's lock the way retention does, now and then.
                let p = store.partition(ids[(i % 3) as usize]).unwrap();
                drop(p.slot.lock());
            }
        })
    };
    let tasks: Vec<_> = sets
        .iter()
        .map(|set| {
            let (store, set) = (store.clone(), set.clone());
            tokio::spawn(async move {
                for i in 0..ROUNDS {
                    let d = if i % 2 == 0 {
                        Durability::Buffered
                    } else {
                        Durability::Sync
                    };
                    submit(&store, d, &set, vec![], i).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    blocking.join().unwrap();

    for &id in &ids {
        let appended_to = sets.iter().filter(|s| s.contains(&id)).count() as u64
            + u64::from(id == ids[0] || id == ids[2]);
        let read = store.read(id, 0, usize::MAX, None).unwrap();
        assert_eq!(read.high_watermark, appended_to * ROUNDS);
        let bases: Vec<u64> = read.batches.iter().map(|b| b.base_offset).collect();
        assert_eq!(bases, (0..appended_to * ROUNDS).collect::<Vec<_>>());
    }
}

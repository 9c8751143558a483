//! Key compaction on a real RocksDB against a model: the partition as a list of
//! (offset, key, value) records, where a pass keeps the latest record of each key (and every
//! record of the newest batch) and drops tombstones past their deletion time.

use std::collections::HashSet;
use std::ops::Range;

use bytes::Bytes;
use proptest::prelude::*;

use super::{new_partition, open};
use crate::*;

/// The test's own batch format: `count u32`, then per record `offset u64` (the offset it
/// was appended at, to check offsets never change), `key u8`, `tombstone u8`, `value u8`.
struct TestCodec;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rec {
    offset: u64,
    key: u8,
    /// `None` is a tombstone.
    value: Option<u8>,
}

const REC_LEN: usize = 11;

fn encode(recs: &[Rec]) -> Vec<u8> {
    let mut v = (recs.len() as u32).to_be_bytes().to_vec();
    for r in recs {
        v.extend_from_slice(&r.offset.to_be_bytes());
        v.extend_from_slice(&[r.key, u8::from(r.value.is_none()), r.value.unwrap_or(0)]);
    }
    v
}

fn decode(v: &[u8]) -> Result<Vec<Rec>, String> {
    let n = u32::from_be_bytes(v.get(..4).ok_or("short")?.try_into().unwrap()) as usize;
    if v.len() != 4 + n * REC_LEN {
        return Err(format!("{} bytes for {n} records", v.len()));
    }
    Ok(v[4..]
        .chunks(REC_LEN)
        .map(|c| Rec {
            offset: u64::from_be_bytes(c[..8].try_into().unwrap()),
            key: c[8],
            value: (c[9] == 0).then_some(c[10]),
        })
        .collect())
}

impl KeyCodec for TestCodec {
    fn for_each_key(
        &self,
        batch: &Bytes,
        f: &mut dyn FnMut(Option<&[u8]>, bool),
    ) -> Result<u32, String> {
        let recs = decode(batch)?;
        for r in &recs {
            // Key 0 stands for an unkeyed record.
            f((r.key != 0).then_some(&[r.key]), r.value.is_none());
        }
        Ok(recs.len() as u32)
    }

    fn cut(
        &self,
        batch: &Bytes,
        base_offset: u64,
        runs: &[Range<u32>],
    ) -> Result<Vec<Vec<u8>>, String> {
        let recs = decode(batch)?;
        if recs[0].offset != base_offset {
            return Err(format!("batch at {} cut as {base_offset}", recs[0].offset));
        }
        Ok(runs
            .iter()
            .map(|r| encode(&recs[r.start as usize..r.end as usize]))
            .collect())
    }
}

/// Appends `(key, value)` pairs (value `None`: a tombstone) as one batch at `now`.
fn append(store: &Store, id: PartitionId, now: i64, kvs: &[(u8, Option<u8>)]) -> Vec<Rec> {
    let mut recs = Vec::new();
    store
        .append(Durability::Buffered, &[id], |_, base| {
            recs = kvs
                .iter()
                .enumerate()
                .map(|(i, &(key, value))| Rec {
                    offset: base + i as u64,
                    key,
                    value,
                })
                .collect();
            NewBatch {
                value: encode(&recs),
                record_count: recs.len() as u32,
                append_time_ms: now,
                max_timestamp_ms: now,
            }
        })
        .unwrap();
    recs
}

/// Every stored record in offset order, checking that record `i` of each batch has offset
/// `base_offset + i` and that offsets strictly increase.
fn read_all(store: &Store, id: PartitionId) -> Vec<Rec> {
    let log_start = store.partition_stats(id, None).unwrap().log_start;
    let r = store.read(id, log_start, usize::MAX, None).unwrap();
    let mut out: Vec<Rec> = Vec::new();
    for b in &r.batches {
        for (i, rec) in decode(&b.value).unwrap().into_iter().enumerate() {
            assert_eq!(rec.offset, b.base_offset + i as u64, "offset of record {i}");
            assert!(out.last().is_none_or(|l| l.offset < rec.offset), "order");
            out.push(rec);
        }
    }
    out
}

fn options(now_ms: i64, max_keys: usize) -> CompactOptions {
    CompactOptions {
        now_ms,
        delete_retention_ms: 1_000,
        max_keys,
        force: true,
    }
}

/// What a complete pass leaves: the latest record of each key, unless it is a tombstone
/// appended `delete_retention` ago or more; every record of the newest batch; every
/// unkeyed record (key 0).
fn model_pass(model: &[Rec], newest: Range<u64>, appended: &[(u64, i64)], now: i64) -> Vec<Rec> {
    let append_ms = |o: u64| appended.iter().rev().find(|(b, _)| *b <= o).unwrap().1;
    let mut later = HashSet::new();
    let mut kept: Vec<Rec> = model
        .iter()
        .rev()
        .filter(|r| {
            if r.key == 0 {
                return true; // unkeyed: never superseded, never a tombstone
            }
            let latest = later.insert(r.key);
            newest.contains(&r.offset)
                || (latest && !(r.value.is_none() && append_ms(r.offset) + 1_000 <= now))
        })
        .copied()
        .collect();
    kept.reverse();
    kept
}

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<(u8, Option<u8>)>),
    Compact,
    Advance(i64),
    CapBytes(u64),
    Read(f64),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    let rec = (0u8..6, prop::option::weighted(0.8, any::<u8>()));
    prop_oneof![
        6 => prop::collection::vec(rec, 1..6).prop_map(Op::Append),
        3 => Just(Op::Compact),
        2 => (0i64..800).prop_map(Op::Advance),
        1 => (0u64..400).prop_map(Op::CapBytes),
        2 => (0.0f64..=1.0).prop_map(Op::Read),
        1 => Just(Op::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// After every pass the partition holds exactly the model's records at their original
    /// offsets, in order; reads starting in a gap begin at the next record; purges by size
    /// cap and reopens mix in. With a tiny key map a pass may stop early: then survivors
    /// only include the model's, and repeated passes converge to it.
    #[test]
    fn compaction_matches_a_latest_value_model(
        ops in prop::collection::vec(op(), 1..50),
        tiny_map in any::<bool>(),
    ) {
        let max_keys = if tiny_map { 2 } else { DEFAULT_MAX_KEYS };
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path());
        let id = new_partition(&store);
        let mut now = 10_000i64;
        let mut model: Vec<Rec> = Vec::new();
        let mut appended: Vec<(u64, i64)> = Vec::new(); // (base, append time) per batch
        let mut hwm = 0u64;
        for op in ops {
            match op {
                Op::Append(kvs) => {
                    let recs = append(&store, id, now, &kvs);
                    appended.push((hwm, now));
                    hwm += recs.len() as u64;
                    model.extend(recs);
                }
                Op::Compact => {
                    let before = store.partition_stats(id, None).unwrap();
                    let done = store.compact_keys(id, &TestCodec, &options(now, max_keys)).unwrap();
                    let newest = appended.last().map_or(0, |a| a.0)..hwm;
                    let expected = model_pass(&model, newest, &appended, now);
                    let got = read_all(&store, id);
                    if tiny_map {
                        let got_set: HashSet<_> = got.iter().map(|r| r.offset).collect();
                        prop_assert!(expected.iter().all(|r| got_set.contains(&r.offset)), "a latest record went");
                        prop_assert!(got.iter().all(|r| model.contains(r)), "only stored records come back");
                        model = got;
                    } else {
                        prop_assert_eq!(&got, &expected);
                        model = expected;
                    }
                    let after = store.partition_stats(id, None).unwrap();
                    prop_assert_eq!(after.records, model.len() as u64);
                    prop_assert_eq!(before.records - after.records, done.removed.records);
                    prop_assert_eq!(after.purged_records - before.purged_records, done.removed.records);
                    prop_assert_eq!(before.bytes - after.bytes, done.removed.bytes);
                    prop_assert_eq!(after.high_watermark, hwm, "offsets never change");
                }
                Op::Advance(ms) => now += ms,
                Op::CapBytes(cap) => {
                    let start = store.size_capped_start(id, cap).unwrap();
                    store.purge_before(id, start).unwrap();
                    model.retain(|r| r.offset >= start);
                    prop_assert_eq!(read_all(&store, id), model.clone());
                }
                Op::Read(at) => {
                    let log_start = store.partition_stats(id, None).unwrap().log_start;
                    let offset = log_start + ((hwm - log_start) as f64 * at) as u64;
                    let r = store.read(id, offset, 1, None).unwrap();
                    match model.iter().find(|r| r.offset >= offset) {
                        None => prop_assert!(r.batches.is_empty()),
                        Some(next) => {
                            prop_assert_eq!(r.batches.len(), 1);
                            let recs = decode(&r.batches[0].value).unwrap();
                            prop_assert!(recs.contains(next), "the first batch holds the next record");
                        }
                    }
                }
                Op::Reopen => {
                    drop(store);
                    store = open(dir.path());
                }
            }
        }
        // Passes with nothing appended converge on the model, whatever the map's size.
        for _ in 0..hwm + 2 {
            store.compact_keys(id, &TestCodec, &options(now, max_keys)).unwrap();
        }
        let newest = appended.last().map_or(0, |a| a.0)..hwm;
        let expected = model_pass(&model, newest, &appended, now);
        prop_assert_eq!(read_all(&store, id), expected);
    }
}

#[test]
fn only_batches_that_lose_records_are_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = new_partition(&store);
    append(&store, id, 0, &[(1, Some(1)), (2, Some(2))]); // offsets 0, 1
    append(&store, id, 0, &[(3, Some(3)), (1, Some(4)), (4, Some(5))]); // 2, 3, 4
    append(&store, id, 0, &[(2, Some(6))]); // 5: supersedes offset 1
    append(&store, id, 0, &[(5, Some(7))]); // 6: the newest batch
    let done = store
        .compact_keys(id, &TestCodec, &options(0, DEFAULT_MAX_KEYS))
        .unwrap();
    assert_eq!((done.removed.records, done.batches_rewritten), (2, 1));
    let r = store.read(id, 0, usize::MAX, None).unwrap();
    assert_eq!(
        r.batches.iter().map(|b| b.base_offset).collect::<Vec<_>>(),
        vec![2, 5, 6],
        "batch 0 lost both records, the others nothing"
    );
    // A run in the middle of a batch keeps its own base offset and origin.
    append(&store, id, 0, &[(3, Some(8)), (6, Some(9))]); // 7, 8: supersedes offset 2
    store
        .compact_keys(id, &TestCodec, &options(0, DEFAULT_MAX_KEYS))
        .unwrap();
    let r = store.read(id, 0, usize::MAX, None).unwrap();
    assert_eq!(
        r.batches.iter().map(|b| b.base_offset).collect::<Vec<_>>(),
        vec![3, 5, 6, 7]
    );
    // A read in a gap starts at the next batch; a read inside a cut batch at the run.
    assert_eq!(
        store.read(id, 0, 1, None).unwrap().batches[0].base_offset,
        3
    );
    assert_eq!(
        store.read(id, 4, 1, None).unwrap().batches[0].base_offset,
        3
    );
    // Nothing new: the next pass is not due, and a forced one changes nothing.
    let unforced = CompactOptions {
        force: false,
        ..options(0, DEFAULT_MAX_KEYS)
    };
    assert!(!store.compact_keys(id, &TestCodec, &unforced).unwrap().ran);
    let again = store
        .compact_keys(id, &TestCodec, &options(0, DEFAULT_MAX_KEYS))
        .unwrap();
    assert_eq!((again.ran, again.batches_rewritten), (true, 0));
}

#[test]
fn passes_are_due_by_dirty_ratio_and_tombstone_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = new_partition(&store);
    let unforced = |now| CompactOptions {
        force: false,
        ..options(now, DEFAULT_MAX_KEYS)
    };
    let ran = |now| store.compact_keys(id, &TestCodec, &unforced(now)).unwrap();
    for k in 1..9 {
        append(&store, id, 0, &[(k, Some(k))]);
    }
    append(&store, id, 0, &[(1, None)]); // a tombstone for key 1
    append(&store, id, 0, &[(9, Some(9))]);
    // A fresh process knows nothing: everything is dirty.
    let first = ran(0);
    assert!(first.ran);
    assert_eq!(
        first.removed.records, 1,
        "key 1's value goes, its tombstone stays"
    );
    // One small batch on a clean log is below the ratio.
    append(&store, id, 0, &[(2, Some(10))]);
    assert!(!ran(10).ran);
    // The tombstone's time comes: a pass is due and removes it.
    assert!(ran(1_000).ran);
    assert!(
        read_all(&store, id).iter().all(|r| r.key != 1),
        "key 1 is gone entirely"
    );
    assert!(!ran(1_000).ran, "nothing is due any more");
    // Enough new bytes make it dirty again.
    for k in 1..9 {
        append(&store, id, 1_000, &[(k, Some(k))]);
    }
    assert!(ran(1_000).ran);
}

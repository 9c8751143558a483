//! Storage's hot paths: key encoding (every append and read builds several keys), appending
//! one batch as the server does, through the appender thread (`Store::submit`: one RocksDB
//! `WriteBatch` with the batch, its summary and the partition's state, and a round trip
//! between threads) and reading batches back. Batches are 100,000-byte values standing for
//! 1,000 records of 100 bytes. CI only compiles this (`cargo clippy --all-targets`); run it with
//! `cargo bench -p tributary-storage` (the append group writes a few GB to the temp dir).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;
use tributary_storage::{
    AppendRequest, Appended, CatalogTx, Durability, NewBatch, PartitionId, Store, StoreOptions,
    keys,
};

const RECORDS: u32 = 1_000;
const BATCH_BYTES: usize = 100_000;

fn key_encoding(c: &mut Criterion) {
    let mut g = c.benchmark_group("keys");
    g.throughput(Throughput::Elements(1));
    g.bench_function("log", |b| {
        b.iter(|| keys::log(black_box(42), black_box(1_234_567)))
    });
    let k = keys::log(42, 1_234_567);
    g.bench_function("decode_log", |b| b.iter(|| keys::decode_log(black_box(&k))));
    g.bench_function("index_batch", |b| {
        b.iter(|| keys::index_batch(black_box(42), black_box(1_234_567)))
    });
    g.bench_function("index_time", |b| {
        b.iter(|| keys::index_time(black_box(42), black_box(1_700_000_000_000), black_box(7)))
    });
    let scope = [9u8; 16];
    g.bench_function("cursor", |b| {
        b.iter(|| keys::cursor(black_box(&scope), black_box("billing"), black_box(42)))
    });
    g.finish();
}

/// A store on a fresh temporary directory with one partition.
fn store() -> (tempfile::TempDir, Arc<Store>, PartitionId) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::open(&dir.path().join("db"), &StoreOptions::default()).expect("open");
    let id = store.reserve_partition_ids(1)[0];
    let mut tx = CatalogTx::default();
    tx.create_partition(id);
    store.commit(tx).expect("create the partition");
    (dir, Arc::new(store), id)
}

/// Appends `batch` to partition `id` through the appender thread, waiting for the answer.
fn submit(rt: &Runtime, store: &Arc<Store>, id: PartitionId, batch: NewBatch) -> Vec<Appended> {
    let mut batch = Some(batch);
    rt.block_on(store.submit(AppendRequest {
        durability: Durability::Buffered,
        partitions: vec![id],
        checks: Vec::new(),
        build: Box::new(move |_, _| batch.take().expect("one batch")),
    }))
    .expect("append")
}

/// A runtime for waiting on appends' answers; the appender is a thread of its own.
fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
}

fn batch(value: &[u8]) -> NewBatch {
    NewBatch {
        value: value.to_vec(),
        record_count: RECORDS,
        append_time_ms: 1_700_000_000_000,
        max_timestamp_ms: 1_700_000_000_000,
    }
}

fn append(c: &mut Criterion) {
    let mut g = c.benchmark_group("store/append");
    g.throughput(Throughput::Bytes(BATCH_BYTES as u64));
    g.sample_size(20);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));
    let value = vec![0x5a; BATCH_BYTES];
    let (_dir, store, id) = store();
    let rt = runtime();
    g.bench_function("buffered", |b| {
        b.iter_batched(
            || batch(&value),
            |nb| submit(&rt, &store, id, nb),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn read(c: &mut Criterion) {
    let mut g = c.benchmark_group("store/read");
    let (_dir, store, id) = store();
    let value = vec![0x5a; BATCH_BYTES];
    const BATCHES: u64 = 200;
    let rt = runtime();
    for _ in 0..BATCHES {
        submit(&rt, &store, id, batch(&value));
    }
    let end = BATCHES * u64::from(RECORDS);
    g.throughput(Throughput::Bytes(BATCH_BYTES as u64));
    let mut offset = 0;
    g.bench_function("one_batch", |b| {
        b.iter(|| {
            offset = (offset + 7 * u64::from(RECORDS) + 13) % end;
            store.read(id, black_box(offset), 1, None).expect("read")
        })
    });
    g.throughput(Throughput::Bytes(4 << 20));
    g.bench_function("4_mib", |b| {
        b.iter(|| store.read(id, black_box(0), 4 << 20, None).expect("read"))
    });
    g.finish();
}

criterion_group!(benches, key_encoding, append, read);
criterion_main!(benches);

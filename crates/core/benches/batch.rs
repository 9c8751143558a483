//! The produce and fetch hot paths of a record batch, without RocksDB or gRPC: encoding
//! (what a client does per request), validation (the server's one decode), the stored
//! value's appended server fields, decoding a fetched batch, and walking a stored batch's
//! framing without decoding it; and the Kafka door's costs: validating a produced Kafka
//! batch, and serving a stored batch to the other protocol's readers (`batch/kafka`).
//! 1,000 records of 100 bytes, as in `tributary bench`'s default produce run. CI only compiles this (`cargo clippy --all-targets`); run it with
//! `cargo bench -p tributary-core`.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use prost::Message;
use tributary_core::TimestampType;
use tributary_core::batch::{self, ServerFields};
use tributary_proto::v1::{Record, RecordBatch};
use tributary_proto::wire;

const RECORDS: usize = 1_000;
const VALUE_BYTES: usize = 100;

fn records(keyed: bool) -> Vec<Record> {
    let value = Bytes::from(vec![0x5a; VALUE_BYTES]);
    (0..RECORDS)
        .map(|i| Record {
            key: keyed.then(|| Bytes::from(format!("key-{:012}", i % 64))),
            value: Some(value.clone()),
            headers: Vec::new(),
            timestamp_ms: None,
        })
        .collect()
}

fn encoded(keyed: bool) -> Bytes {
    Bytes::from(batch::encode_records(records(keyed)))
}

fn server_fields() -> ServerFields {
    ServerFields {
        base_offset: 1_000_000,
        append_time_ms: 1_700_000_000_000,
        origin_cluster: [7; 16],
        origin_base_offset: 1_000_000,
        timestamp_type: TimestampType::CreateTime,
        origin_incarnation: 2,
    }
}

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("batch/encode");
    g.throughput(Throughput::Elements(RECORDS as u64));
    for keyed in [false, true] {
        let rs = records(keyed);
        let name = if keyed { "keyed" } else { "unkeyed" };
        g.bench_function(name, |b| {
            b.iter(|| {
                RecordBatch {
                    records: black_box(rs.clone()),
                    ..Default::default()
                }
                .encode_to_vec()
            })
        });
    }
    g.finish();
}

fn server_side(c: &mut Criterion) {
    let mut g = c.benchmark_group("batch/server");
    g.throughput(Throughput::Elements(RECORDS as u64));
    let body = encoded(false);
    g.bench_function("count_elements", |b| {
        b.iter(|| batch::count_elements(black_box(&body)))
    });
    g.bench_function("validate", |b| {
        b.iter(|| batch::validate(black_box(body.clone()), 1 << 20).expect("valid"))
    });
    let fields = server_fields();
    g.bench_function("stored_value", |b| {
        b.iter(|| batch::stored_value(black_box(&body), &fields))
    });
    g.finish();
}

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("batch/decode");
    g.throughput(Throughput::Elements(RECORDS as u64));
    let stored = Bytes::from(batch::stored_value(&encoded(false), &server_fields()));
    g.bench_function("fetched", |b| {
        b.iter(|| RecordBatch::decode(black_box(stored.clone())).expect("valid"))
    });
    g.bench_function("first_at_or_after", |b| {
        b.iter(|| batch::first_at_or_after(black_box(&stored), 0).expect("valid"))
    });
    g.finish();
}

/// The walks over a stored batch's framing that decode no record: the served count
/// (metrics, and sizing the client's decode), and what replication reads of each batch.
fn walk(c: &mut Criterion) {
    let mut g = c.benchmark_group("batch/walk");
    g.throughput(Throughput::Elements(RECORDS as u64));
    let stored = Bytes::from(batch::stored_value(&encoded(false), &server_fields()));
    g.bench_function("record_count", |b| {
        b.iter(|| wire::record_count(black_box(&stored)))
    });
    g.bench_function("stored_header", |b| {
        b.iter(|| batch::stored_header(black_box(&stored)).expect("valid"))
    });
    g.bench_function("producer_part", |b| {
        b.iter(|| batch::producer_part(black_box(&stored)).expect("valid"))
    });
    g.finish();
}

/// A stored batch the Kafka door wrote, from `kafka` (a batch as a client sends it).
fn stored_kafka(kafka: &Bytes) -> Bytes {
    let mut k = kafka.to_vec();
    tributary_core::kafka_batch::finish(&mut k, 0, TimestampType::CreateTime, 0, 0);
    Bytes::from(batch::stored_value(&batch::kafka_body(k), &server_fields()))
}

/// `records(false)` as a Kafka client sends them, compressed with `compression`.
fn kafka_client_batch(compression: kafka_protocol::records::Compression) -> Bytes {
    use kafka_protocol::records::{Record as KRecord, RecordBatchEncoder, RecordEncodeOptions};
    let rs: Vec<KRecord> = records(false)
        .into_iter()
        .enumerate()
        .map(|(i, r)| KRecord {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: kafka_protocol::records::TimestampType::Creation,
            offset: i as i64,
            sequence: i as i32,
            timestamp: 1_700_000_000_000,
            key: None,
            value: r.value,
            headers: Default::default(),
        })
        .collect();
    let mut buf = bytes::BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, &rs, &options).expect("encodes");
    buf.freeze()
}

/// The Kafka door's paths: a produced batch checked (and decompressed) once; a stored
/// Kafka batch served to a Kafka reader (a slice of the stored value) and to a gRPC reader
/// (records decoded and encoded as a `RecordBatch`); a gRPC-produced batch served to a
/// Kafka reader (encoded as a Kafka batch).
fn kafka(c: &mut Criterion) {
    use kafka_protocol::records::Compression;
    use tributary_core::kafka_batch::{Limits, validate};
    let mut g = c.benchmark_group("batch/kafka");
    g.throughput(Throughput::Elements(RECORDS as u64));
    for (name, codec) in [
        ("none", Compression::None),
        ("lz4", Compression::Lz4),
        ("zstd", Compression::Zstd),
    ] {
        let sent = kafka_client_batch(codec);
        g.bench_function(format!("validate/{name}"), |b| {
            b.iter(|| validate(black_box(&sent), &Limits::default()).expect("valid"))
        });
        let stored = stored_kafka(&sent);
        g.bench_function(format!("kafka_to_kafka/{name}"), |b| {
            b.iter(|| batch::as_kafka(black_box(&stored)).expect("valid"))
        });
        g.bench_function(format!("kafka_to_grpc/{name}"), |b| {
            b.iter(|| batch::as_records(black_box(&stored)).expect("valid"))
        });
    }
    let grpc = Bytes::from(batch::stored_value(&encoded(false), &server_fields()));
    g.bench_function("grpc_to_kafka", |b| {
        b.iter(|| batch::as_kafka(black_box(&grpc)).expect("valid"))
    });
    g.bench_function("grpc_to_grpc", |b| {
        b.iter(|| batch::as_records(black_box(&grpc)).expect("valid"))
    });
    g.finish();
}

criterion_group!(benches, encode, server_side, decode, walk, kafka);
criterion_main!(benches);

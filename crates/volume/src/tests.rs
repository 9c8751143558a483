//! Namespace tests over a real store in a temp dir.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use tributary_proto::v1::{Record, RecordBatch};
use tributary_storage::{Store, StoreOptions};

use crate::*;

struct Fixture {
    _dir: tempfile::TempDir,
    ns: Arc<Namespace>,
    clock: ManualClock,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("db"), &StoreOptions::default()).unwrap());
    let clock = ManualClock::new(1_700_000_000_000);
    let ns = Arc::new(
        Namespace::open(store, Arc::new(clock.clone()))
            .await
            .unwrap(),
    );
    Fixture {
        _dir: dir,
        ns,
        clock,
    }
}

fn encoded(records: &[(&str, &str)]) -> Bytes {
    let records = records
        .iter()
        .map(|(k, v)| Record {
            key: Bytes::copy_from_slice(k.as_bytes()),
            value: Bytes::copy_from_slice(v.as_bytes()),
            ..Default::default()
        })
        .collect();
    RecordBatch {
        records,
        ..Default::default()
    }
    .encode_to_vec()
    .into()
}

fn partitions(n: u32) -> StreamAttributesPatch {
    StreamAttributesPatch {
        default_partitions: Some(n),
        ..Default::default()
    }
}

async fn values(ns: &Namespace, topic: &str, partition: u32) -> Vec<(u64, String)> {
    let r = ns
        .fetch(topic, partition, 0, usize::MAX, Duration::ZERO)
        .await
        .unwrap();
    r.batches
        .iter()
        .flat_map(|b| {
            let b = RecordBatch::decode(b.clone()).unwrap();
            let base = b.base_offset;
            b.records.into_iter().enumerate().map(move |(i, r)| {
                (
                    base + i as u64,
                    String::from_utf8(r.value.to_vec()).unwrap(),
                )
            })
        })
        .collect()
}

#[tokio::test]
async fn produce_and_fetch_through_the_namespace() {
    let f = fixture().await;
    f.ns.create_volume("/demo", "admin").await.unwrap();
    f.ns.create_stream("/demo/iot/sensors", &partitions(3))
        .await
        .unwrap();
    let t =
        f.ns.create_topic("/demo/iot/sensors:temp", None)
            .await
            .unwrap();
    assert_eq!(t.partitions, 3);

    // Unkeyed: one partition per request, round-robin across requests.
    let a =
        f.ns.produce(
            "/demo/iot/sensors:temp",
            None,
            encoded(&[("", "a"), ("", "b")]),
        )
        .await
        .unwrap();
    let b =
        f.ns.produce("/demo/iot/sensors:temp", None, encoded(&[("", "c")]))
            .await
            .unwrap();
    assert_eq!(a.acks.len(), 1);
    assert!(a.record_partitions.is_empty());
    assert_ne!(a.acks[0].partition, b.acks[0].partition);
    assert_eq!(
        values(&f.ns, "/demo/iot/sensors:temp", a.acks[0].partition).await,
        vec![(0, "a".into()), (1, "b".into())]
    );

    // Keyed: Kafka's partitioner, split across partitions in one atomic append.
    let keys = ["k0", "k1", "k2", "k3", "k4", "k5"];
    let recs: Vec<_> = keys.iter().map(|k| (*k, *k)).collect();
    let r =
        f.ns.produce("/demo/iot/sensors:temp", None, encoded(&recs))
            .await
            .unwrap();
    let expected: Vec<u32> = keys
        .iter()
        .map(|k| partitioner::partition_for_key(k.as_bytes(), 3))
        .collect();
    if r.acks.len() > 1 {
        assert_eq!(r.record_partitions, expected);
    }
    assert_eq!(r.acks.iter().map(|a| a.record_count).sum::<u32>(), 6);
    assert_eq!(
        r.acks[0].append_time_ms, 1_700_000_000_000,
        "append time comes from the injected clock"
    );

    // Explicit partition.
    let r =
        f.ns.produce("/demo/iot/sensors:temp", Some(2), encoded(&[("x", "y")]))
            .await
            .unwrap();
    assert_eq!(r.acks[0].partition, 2);
    let err =
        f.ns.produce("/demo/iot/sensors:temp", Some(3), encoded(&[("", "z")]))
            .await
            .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotFound {
                what: "partition",
                ..
            }
        ),
        "{err}"
    );

    let info = f.ns.describe_topic("/demo/iot/sensors:temp").await.unwrap();
    assert_eq!(
        info.partition_stats.iter().map(|p| p.records).sum::<u64>(),
        10
    );
    let s = f.ns.describe_stream("/demo/iot/sensors").await.unwrap();
    assert_eq!((s.topic_count, s.partition_count, s.records), (1, 3, 10));
    let offs =
        f.ns.list_offsets("/demo/iot/sensors:temp", &[], OffsetSpec::Latest)
            .await
            .unwrap();
    assert_eq!(offs.iter().map(|(_, o)| o).sum::<u64>(), 10);
}

#[tokio::test]
async fn autocreate_follows_the_stream_attribute() {
    let f = fixture().await;
    f.ns.create_volume("/v", "u").await.unwrap();
    f.ns.create_stream("/v/auto", &partitions(2)).await.unwrap();
    let off = StreamAttributesPatch {
        autocreate_topics: Some(false),
        ..Default::default()
    };
    f.ns.create_stream("/v/manual", &off).await.unwrap();
    f.ns.produce("/v/auto:new", None, encoded(&[("", "a")]))
        .await
        .unwrap();
    assert_eq!(
        f.ns.describe_topic("/v/auto:new").await.unwrap().partitions,
        2
    );
    let err =
        f.ns.produce("/v/manual:new", None, encoded(&[("", "a")]))
            .await
            .unwrap_err();
    assert!(
        matches!(err, Error::NotFound { what: "topic", .. }),
        "{err}"
    );
    assert!(
        f.ns.list_topics("/v/manual").await.unwrap().is_empty(),
        "nothing was created"
    );
}

#[tokio::test]
async fn a_fetch_at_the_end_waits_for_the_next_append() {
    let f = fixture().await;
    f.ns.create_volume("/v", "u").await.unwrap();
    f.ns.create_stream("/v/s", &partitions(1)).await.unwrap();
    f.ns.create_topic("/v/s:t", None).await.unwrap();
    let ns = f.ns.clone();
    let waiter =
        tokio::spawn(async move { ns.fetch("/v/s:t", 0, 0, 0, Duration::from_secs(30)).await });
    // The waiter is parked on the high-water mark; the append wakes it.
    f.ns.produce("/v/s:t", None, encoded(&[("", "x")]))
        .await
        .unwrap();
    let r = waiter.await.unwrap().unwrap();
    assert_eq!((r.batches.len(), r.high_watermark), (1, 1));
    // Nothing new: an expired wait returns empty, not an error.
    let r =
        f.ns.fetch("/v/s:t", 0, 1, 0, Duration::from_millis(1))
            .await
            .unwrap();
    assert!(r.batches.is_empty());
    let err =
        f.ns.fetch("/v/s:t", 0, 2, 0, Duration::ZERO)
            .await
            .unwrap_err();
    assert!(
        err.to_string().contains("valid offsets are 0 to 1"),
        "{err}"
    );
}

#[tokio::test]
async fn deleted_streams_leave_nothing_behind() {
    let f = fixture().await;
    f.ns.create_volume("/v", "u").await.unwrap();
    f.ns.create_stream("/v/s", &partitions(1)).await.unwrap();
    f.ns.produce("/v/s:t", None, encoded(&[("", "old")]))
        .await
        .unwrap();
    let err = f.ns.delete_volume("/v", false).await.unwrap_err();
    assert!(matches!(err, Error::FailedPrecondition(_)), "{err}");
    f.ns.delete_stream("/v/s").await.unwrap();
    assert!(matches!(
        f.ns.describe_stream("/v/s").await,
        Err(Error::NotFound { .. })
    ));
    f.clock.advance_ms(1);
    f.ns.create_stream("/v/s", &partitions(1)).await.unwrap();
    assert!(
        f.ns.list_topics("/v/s").await.unwrap().is_empty(),
        "a new stream shares nothing"
    );
    f.ns.produce("/v/s:t", None, encoded(&[("", "new")]))
        .await
        .unwrap();
    assert_eq!(values(&f.ns, "/v/s:t", 0).await, vec![(0, "new".into())]);
    f.ns.delete_volume("/v", true).await.unwrap();
    assert!(f.ns.list_volumes().await.unwrap().is_empty());
    assert!(f.ns.list_streams("").await.unwrap().is_empty());
}

#[tokio::test]
async fn bad_requests_change_nothing() {
    let f = fixture().await;
    assert!(matches!(
        f.ns.create_stream("/nov/s", &partitions(1)).await,
        Err(Error::NotFound { what: "volume", .. })
    ));
    f.ns.create_volume("/v", "u").await.unwrap();
    assert!(matches!(
        f.ns.create_volume("/v", "u").await,
        Err(Error::AlreadyExists { .. })
    ));
    assert!(matches!(
        f.ns.create_stream("/v", &partitions(1)).await,
        Err(Error::InvalidArgument { .. })
    ));
    f.ns.create_stream("/v/s", &partitions(1)).await.unwrap();
    assert!(matches!(
        f.ns.create_stream("/v/s", &partitions(1)).await,
        Err(Error::AlreadyExists { .. })
    ));
    assert!(matches!(
        f.ns.create_topic("/v/s:t", Some(0)).await,
        Err(Error::InvalidArgument { .. })
    ));
    let err =
        f.ns.produce("/v/s:t", None, Bytes::from_static(&[0xff]))
            .await
            .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
    assert!(
        f.ns.list_topics("/v/s").await.unwrap().is_empty(),
        "a refused produce creates no topic"
    );
    let err =
        f.ns.produce("/v/s:t", Some(1), encoded(&[("", "x")]))
            .await
            .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotFound {
                what: "partition",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        f.ns.list_topics("/v/s").await.unwrap().is_empty(),
        "not even to a partition it lacks"
    );
    assert_eq!(f.ns.list_volumes().await.unwrap()[0].stream_count, 1);
}

#[tokio::test]
async fn the_namespace_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let store = Arc::new(Store::open(&path, &StoreOptions::default()).unwrap());
        let ns = Namespace::open(store, Arc::new(SystemClock)).await.unwrap();
        ns.create_volume("/v", "u").await.unwrap();
        ns.create_stream("/v/s", &partitions(2)).await.unwrap();
        ns.produce("/v/s:t", Some(1), encoded(&[("", "kept")]))
            .await
            .unwrap();
    }
    let store = Arc::new(Store::open(&path, &StoreOptions::default()).unwrap());
    let ns = Namespace::open(store, Arc::new(SystemClock)).await.unwrap();
    assert_eq!(
        ns.describe_stream("/v/s")
            .await
            .unwrap()
            .attributes
            .default_partitions,
        2
    );
    assert_eq!(values(&ns, "/v/s:t", 1).await, vec![(0, "kept".into())]);
}

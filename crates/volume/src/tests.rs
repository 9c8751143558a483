//! Namespace tests over a real store in a temp dir.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use tributary_core::{Acl, partitioner};
use tributary_proto::v1::{Record, RecordBatch};
use tributary_storage::{Store, StoreOptions};

use crate::*;

struct Fixture {
    _dir: tempfile::TempDir,
    ns: Arc<Namespace>,
    clock: ManualClock,
    /// The cluster admin.
    a: Caller,
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
    let token = ns
        .ensure_admin()
        .await
        .unwrap()
        .expect("first start makes the admin");
    let a = ns.authenticate(&token).unwrap();
    assert!(a.cluster_admin);
    Fixture {
        _dir: dir,
        ns,
        clock,
        a,
    }
}

/// The credential of a test caller (a user authenticated by name, as by a certificate).
fn by_name(c: &Caller) -> Credential {
    Credential::User(c.name().to_owned())
}

/// A batch of (key, value) records as a client before `optional` sends them: an empty key
/// or value is left out, so it is null (unkeyed; a tombstone).
fn encoded(records: &[(&str, &str)]) -> Bytes {
    let field = |s: &str| (!s.is_empty()).then(|| Bytes::copy_from_slice(s.as_bytes()));
    let records = records
        .iter()
        .map(|(k, v)| Record {
            key: field(k),
            value: field(v),
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

async fn values(ns: &Namespace, c: &Caller, topic: &str, partition: u32) -> Vec<(u64, String)> {
    let r = ns
        .fetch(&by_name(c), topic, partition, 0, usize::MAX, Duration::ZERO)
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
                    String::from_utf8(r.value.unwrap_or_default().to_vec()).unwrap(),
                )
            })
        })
        .collect()
}

#[tokio::test]
async fn produce_and_fetch_through_the_namespace() {
    let f = fixture().await;
    f.ns.create_volume(&f.a, "/demo", None, None, Quotas::default())
        .await
        .unwrap();
    f.ns.create_stream(&f.a, "/demo/iot/sensors", &partitions(3))
        .await
        .unwrap();
    let t =
        f.ns.create_topic(&f.a, "/demo/iot/sensors:temp", None)
            .await
            .unwrap();
    assert_eq!(t.partitions, 3);

    // Unkeyed: one partition per request, round-robin across requests.
    let a =
        f.ns.produce(
            &f.a,
            "/demo/iot/sensors:temp",
            None,
            encoded(&[("", "a"), ("", "b")]),
        )
        .await
        .unwrap();
    let b =
        f.ns.produce(&f.a, "/demo/iot/sensors:temp", None, encoded(&[("", "c")]))
            .await
            .unwrap();
    assert_eq!(a.acks.len(), 1);
    assert!(a.record_partitions.is_empty());
    assert_ne!(a.acks[0].partition, b.acks[0].partition);
    assert_eq!(
        values(&f.ns, &f.a, "/demo/iot/sensors:temp", a.acks[0].partition).await,
        vec![(0, "a".into()), (1, "b".into())]
    );

    // Keyed: Kafka's partitioner, split across partitions in one atomic append.
    let keys = ["k0", "k1", "k2", "k3", "k4", "k5"];
    let recs: Vec<_> = keys.iter().map(|k| (*k, *k)).collect();
    let r =
        f.ns.produce(&f.a, "/demo/iot/sensors:temp", None, encoded(&recs))
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
        f.ns.produce(
            &f.a,
            "/demo/iot/sensors:temp",
            Some(2),
            encoded(&[("x", "y")]),
        )
        .await
        .unwrap();
    assert_eq!(r.acks[0].partition, 2);
    let err =
        f.ns.produce(
            &f.a,
            "/demo/iot/sensors:temp",
            Some(3),
            encoded(&[("", "z")]),
        )
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

    let info =
        f.ns.describe_topic(&f.a, "/demo/iot/sensors:temp")
            .await
            .unwrap();
    assert_eq!(
        info.partition_stats.iter().map(|p| p.records).sum::<u64>(),
        10
    );
    let s =
        f.ns.describe_stream(&f.a, "/demo/iot/sensors")
            .await
            .unwrap();
    assert_eq!(
        (s.topic_count, s.partition_count, s.totals.records),
        (1, 3, 10)
    );
    let offs =
        f.ns.list_offsets(&f.a, "/demo/iot/sensors:temp", &[], OffsetSpec::Latest)
            .await
            .unwrap();
    assert_eq!(offs.iter().map(|(_, o)| o).sum::<u64>(), 10);
}

#[tokio::test]
async fn autocreate_follows_the_stream_attribute() {
    let f = fixture().await;
    f.ns.create_volume(&f.a, "/v", None, None, Quotas::default())
        .await
        .unwrap();
    f.ns.create_stream(&f.a, "/v/auto", &partitions(2))
        .await
        .unwrap();
    let off = StreamAttributesPatch {
        autocreate_topics: Some(false),
        ..Default::default()
    };
    f.ns.create_stream(&f.a, "/v/manual", &off).await.unwrap();
    f.ns.produce(&f.a, "/v/auto:new", None, encoded(&[("", "a")]))
        .await
        .unwrap();
    assert_eq!(
        f.ns.describe_topic(&f.a, "/v/auto:new")
            .await
            .unwrap()
            .partitions,
        2
    );
    let err =
        f.ns.produce(&f.a, "/v/manual:new", None, encoded(&[("", "a")]))
            .await
            .unwrap_err();
    assert!(
        matches!(err, Error::NotFound { what: "topic", .. }),
        "{err}"
    );
    assert!(
        f.ns.list_topics(&f.a, "/v/manual")
            .await
            .unwrap()
            .is_empty(),
        "nothing was created"
    );
}

#[tokio::test]
async fn a_fetch_at_the_end_waits_for_the_next_append() {
    let f = fixture().await;
    f.ns.create_volume(&f.a, "/v", None, None, Quotas::default())
        .await
        .unwrap();
    f.ns.create_stream(&f.a, "/v/s", &partitions(1))
        .await
        .unwrap();
    f.ns.create_topic(&f.a, "/v/s:t", None).await.unwrap();
    let (ns, a) = (f.ns.clone(), f.a.clone());
    let waiter = tokio::spawn(async move {
        ns.fetch(&by_name(&a), "/v/s:t", 0, 0, 0, Duration::from_secs(30))
            .await
    });
    // The waiter is parked on the high-water mark; the append wakes it.
    f.ns.produce(&f.a, "/v/s:t", None, encoded(&[("", "x")]))
        .await
        .unwrap();
    let r = waiter.await.unwrap().unwrap();
    assert_eq!((r.batches.len(), r.high_watermark), (1, 1));
    // Nothing new: an expired wait returns empty, not an error.
    let r =
        f.ns.fetch(&by_name(&f.a), "/v/s:t", 0, 1, 0, Duration::from_millis(1))
            .await
            .unwrap();
    assert!(r.batches.is_empty());
    let err =
        f.ns.fetch(&by_name(&f.a), "/v/s:t", 0, 2, 0, Duration::ZERO)
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
    f.ns.create_volume(&f.a, "/v", None, None, Quotas::default())
        .await
        .unwrap();
    f.ns.create_stream(&f.a, "/v/s", &partitions(1))
        .await
        .unwrap();
    f.ns.produce(&f.a, "/v/s:t", None, encoded(&[("", "old")]))
        .await
        .unwrap();
    let err = f.ns.delete_volume(&f.a, "/v", false).await.unwrap_err();
    assert!(matches!(err, Error::FailedPrecondition(_)), "{err}");
    f.ns.delete_stream(&f.a, "/v/s").await.unwrap();
    assert!(matches!(
        f.ns.describe_stream(&f.a, "/v/s").await,
        Err(Error::NotFound { .. })
    ));
    f.clock.advance_ms(1);
    f.ns.create_stream(&f.a, "/v/s", &partitions(1))
        .await
        .unwrap();
    assert!(
        f.ns.list_topics(&f.a, "/v/s").await.unwrap().is_empty(),
        "a new stream shares nothing"
    );
    f.ns.produce(&f.a, "/v/s:t", None, encoded(&[("", "new")]))
        .await
        .unwrap();
    assert_eq!(
        values(&f.ns, &f.a, "/v/s:t", 0).await,
        vec![(0, "new".into())]
    );
    f.ns.delete_volume(&f.a, "/v", true).await.unwrap();
    assert!(f.ns.list_volumes(&f.a).is_empty());
    assert!(f.ns.list_streams(&f.a, "").await.unwrap().is_empty());
}

#[tokio::test]
async fn bad_requests_change_nothing() {
    let f = fixture().await;
    assert!(matches!(
        f.ns.create_stream(&f.a, "/nov/s", &partitions(1)).await,
        Err(Error::NotFound { what: "volume", .. })
    ));
    f.ns.create_volume(&f.a, "/v", None, None, Quotas::default())
        .await
        .unwrap();
    assert!(matches!(
        f.ns.create_volume(&f.a, "/v", None, None, Quotas::default())
            .await,
        Err(Error::AlreadyExists { .. })
    ));
    assert!(matches!(
        f.ns.create_stream(&f.a, "/v", &partitions(1)).await,
        Err(Error::InvalidArgument { .. })
    ));
    f.ns.create_stream(&f.a, "/v/s", &partitions(1))
        .await
        .unwrap();
    assert!(matches!(
        f.ns.create_stream(&f.a, "/v/s", &partitions(1)).await,
        Err(Error::AlreadyExists { .. })
    ));
    assert!(matches!(
        f.ns.create_topic(&f.a, "/v/s:t", Some(0)).await,
        Err(Error::InvalidArgument { .. })
    ));
    let err =
        f.ns.produce(&f.a, "/v/s:t", None, Bytes::from_static(&[0xff]))
            .await
            .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
    assert!(
        f.ns.list_topics(&f.a, "/v/s").await.unwrap().is_empty(),
        "a refused produce creates no topic"
    );
    let err =
        f.ns.produce(&f.a, "/v/s:t", Some(1), encoded(&[("", "x")]))
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
        f.ns.list_topics(&f.a, "/v/s").await.unwrap().is_empty(),
        "not even to a partition it lacks"
    );
    assert_eq!(f.ns.list_volumes(&f.a)[0].stream_count, 1);
}

#[tokio::test]
async fn the_namespace_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let open = || async {
        let store = Arc::new(Store::open(&path, &StoreOptions::default()).unwrap());
        Namespace::open(store, Arc::new(SystemClock)).await.unwrap()
    };
    let (admin_token, bob_token) = {
        let ns = open().await;
        let admin_token = ns.ensure_admin().await.unwrap().unwrap();
        let a = ns.authenticate(&admin_token).unwrap();
        let (_, bob_token) = ns
            .create_user(&a, "bob", vec!["ops".into()], false)
            .await
            .unwrap();
        ns.create_volume(
            &a,
            "/v",
            Some("bob"),
            None,
            Quotas {
                max_topics: Some(5),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let bob = ns.authenticate(&bob_token).unwrap();
        ns.create_stream(&bob, "/v/s", &partitions(2))
            .await
            .unwrap();
        ns.edit_user(&a, "bob", Some("/v/s")).await.unwrap();
        ns.produce(&bob, "/v/s:t", Some(1), encoded(&[("", "kept")]))
            .await
            .unwrap();
        (admin_token, bob_token)
    };
    let ns = open().await;
    assert_eq!(
        ns.ensure_admin().await.unwrap(),
        None,
        "the admin is made once"
    );
    ns.authenticate(&admin_token).unwrap();
    let bob = ns.authenticate(&bob_token).unwrap();
    assert_eq!(bob.principal.groups, vec!["ops".to_string()]);
    assert_eq!(
        ns.kafka_default_stream(&bob).map(|s| s.to_string()),
        Some("/v/s".to_string())
    );
    assert_eq!(
        ns.describe_stream(&bob, "/v/s")
            .await
            .unwrap()
            .attributes
            .default_partitions,
        2
    );
    assert_eq!(
        values(&ns, &bob, "/v/s:t", 1).await,
        vec![(0, "kept".into())]
    );
    let v = ns.describe_volume(&bob, "/v").unwrap();
    assert_eq!(
        (v.owner.as_str(), v.topic_count, v.quotas.max_topics),
        ("bob", 1, Some(5))
    );
    assert!(v.bytes > 0, "usage is rebuilt at open");
}

/// Two tenants with their own volume admins, and a third user with scoped permissions.
struct Tenants {
    f: Fixture,
    alice: Caller,
    bob: Caller,
    carol: Caller,
}

async fn tenants() -> Tenants {
    let f = fixture().await;
    let user = |name: &'static str, groups: &[&str]| {
        let (ns, a, groups) = (
            f.ns.clone(),
            f.a.clone(),
            groups.iter().map(|g| g.to_string()).collect(),
        );
        async move {
            let (_, token) = ns.create_user(&a, name, groups, false).await.unwrap();
            ns.authenticate(&token).unwrap()
        }
    };
    let alice = user("alice", &[]).await;
    let bob = user("bob", &[]).await;
    let carol = user("carol", &["readers"]).await;
    f.ns.create_volume(&f.a, "/a", Some("alice"), None, Quotas::default())
        .await
        .unwrap();
    f.ns.create_volume(&f.a, "/b", Some("bob"), None, Quotas::default())
        .await
        .unwrap();
    f.ns.create_stream(&alice, "/a/s", &partitions(1))
        .await
        .unwrap();
    f.ns.create_stream(&bob, "/b/s", &partitions(1))
        .await
        .unwrap();
    f.ns.produce(&alice, "/a/s:t", None, encoded(&[("", "a1")]))
        .await
        .unwrap();
    f.ns.produce(&bob, "/b/s:t", None, encoded(&[("", "b1")]))
        .await
        .unwrap();
    Tenants {
        f,
        alice,
        bob,
        carol,
    }
}

fn denied<T: std::fmt::Debug>(r: Result<T>, permission: &str) {
    match r {
        Err(Error::PermissionDenied { permission: p, .. }) if p == permission => {}
        other => panic!("expected PermissionDenied({permission}), got {other:?}"),
    }
}

#[tokio::test]
async fn tenants_cannot_reach_each_other() {
    let Tenants { f, alice, bob, .. } = tenants().await;
    let ns = &f.ns;
    // Listing shows only what the caller may see.
    assert_eq!(
        ns.list_volumes(&alice)
            .iter()
            .map(|v| v.path.as_str())
            .collect::<Vec<_>>(),
        vec!["/a"]
    );
    assert_eq!(
        ns.list_streams(&bob, "")
            .await
            .unwrap()
            .iter()
            .map(|s| s.path.as_str())
            .collect::<Vec<_>>(),
        vec!["/b/s"]
    );
    assert!(ns.list_streams(&bob, "/a").await.unwrap().is_empty());
    denied(ns.describe_volume(&bob, "/a"), "admin");
    denied(ns.describe_stream(&bob, "/a/s").await, "any");
    denied(ns.list_topics(&bob, "/a/s").await, "any");
    denied(ns.describe_topic(&bob, "/a/s:t").await, "any");
    denied(
        ns.produce(&bob, "/a/s:t", None, encoded(&[("", "x")]))
            .await,
        "produce",
    );
    denied(
        ns.fetch(&by_name(&bob), "/a/s:t", 0, 0, 0, Duration::ZERO)
            .await,
        "consume",
    );
    denied(
        ns.list_offsets(&bob, "/a/s:t", &[], OffsetSpec::Latest)
            .await,
        "consume",
    );
    denied(
        ns.create_stream(&bob, "/a/other", &partitions(1)).await,
        "admin",
    );
    denied(ns.create_topic(&bob, "/a/s:new", None).await, "topic");
    denied(ns.delete_stream(&bob, "/a/s").await, "admin");
    denied(ns.delete_volume(&bob, "/a", true).await, "admin");
    denied(
        ns.create_volume(&bob, "/c", None, None, Quotas::default())
            .await,
        "cluster admin",
    );
    denied(
        ns.create_user(&bob, "eve", vec![], true).await,
        "cluster admin",
    );
    // Nothing changed.
    assert_eq!(
        values(ns, &alice, "/a/s:t", 0).await,
        vec![(0, "a1".into())]
    );
    assert!(ns.list_topics(&alice, "/a/s").await.unwrap().len() == 1);
    assert_eq!(ns.list_volumes(&f.a).len(), 2);
}

#[tokio::test]
async fn each_permission_is_granted_by_its_acl_and_edits_apply_at_once() {
    let Tenants {
        f, alice, carol, ..
    } = tenants().await;
    let ns = &f.ns;
    denied(
        ns.fetch(&by_name(&carol), "/a/s:t", 0, 0, 0, Duration::ZERO)
            .await,
        "consume",
    );
    let grant = |consume: &str| StreamAttributesPatch {
        consume_perm: Some(Acl::parse(consume).unwrap()),
        ..Default::default()
    };
    ns.edit_stream(&alice, "/a/s", &grant("u:alice | g:readers"))
        .await
        .unwrap();
    assert_eq!(
        values(ns, &carol, "/a/s:t", 0).await,
        vec![(0, "a1".into())],
        "a group grant applies on the next call"
    );
    denied(
        ns.produce(&carol, "/a/s:t", None, encoded(&[("", "x")]))
            .await,
        "produce",
    );
    denied(ns.edit_stream(&carol, "/a/s", &grant("p")).await, "admin");
    ns.edit_stream(&alice, "/a/s", &grant("u:alice | g:readers & !u:carol"))
        .await
        .unwrap();
    denied(
        ns.fetch(&by_name(&carol), "/a/s:t", 0, 0, 0, Duration::ZERO)
            .await,
        "consume",
    );

    let perms = StreamAttributesPatch {
        produce_perm: Some(Acl::parse("u:carol").unwrap()),
        topic_perm: Some(Acl::parse("u:carol").unwrap()),
        admin_perm: Some(Acl::parse("u:carol").unwrap()),
        ..Default::default()
    };
    ns.edit_stream(&alice, "/a/s", &perms).await.unwrap();
    ns.produce(&carol, "/a/s:t", None, encoded(&[("", "c")]))
        .await
        .unwrap();
    ns.create_topic(&carol, "/a/s:mine", Some(2)).await.unwrap();
    let t = ns.edit_topic(&carol, "/a/s:mine", Some(4)).await.unwrap();
    assert_eq!(t.partitions, 4);
    let err = ns
        .edit_topic(&carol, "/a/s:mine", Some(3))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("never shrinks"), "{err}");
    ns.delete_topic(&carol, "/a/s:mine").await.unwrap();
    ns.edit_stream(
        &carol,
        "/a/s",
        &StreamAttributesPatch {
            ttl_ms: Some(0),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    // The volume admin keeps every right in the volume whatever the stream ACLs say.
    assert_eq!(values(ns, &alice, "/a/s:t", 0).await.len(), 2);
    // Volume admin ACLs: carol can manage streams of /a once the ACL names her.
    denied(
        ns.create_stream(&carol, "/a/s2", &partitions(1)).await,
        "admin",
    );
    let edit = VolumeEdit {
        admin_perm: Some(Acl::parse("u:alice | u:carol").unwrap()),
        ..Default::default()
    };
    ns.edit_volume(&alice, "/a", edit).await.unwrap();
    ns.create_stream(&carol, "/a/s2", &partitions(1))
        .await
        .unwrap();
    // Only a cluster admin changes quotas and owners.
    let quota = VolumeEdit {
        quotas: Some(Quotas {
            max_streams: Some(9),
            ..Default::default()
        }),
        ..Default::default()
    };
    denied(
        ns.edit_volume(&alice, "/a", quota.clone()).await,
        "cluster admin",
    );
    ns.edit_volume(&f.a, "/a", quota).await.unwrap();
}

#[tokio::test]
async fn quotas_refuse_without_partial_writes() {
    let f = fixture().await;
    let ns = &f.ns;
    let q = Quotas {
        max_bytes: Some(400),
        max_streams: Some(1),
        max_topics: Some(2),
    };
    ns.create_volume(&f.a, "/q", None, None, q).await.unwrap();
    ns.create_stream(&f.a, "/q/s", &partitions(2))
        .await
        .unwrap();
    let err = ns
        .create_stream(&f.a, "/q/s2", &partitions(1))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::QuotaExceeded {
                quota: "streams",
                limit: 1,
                ..
            }
        ),
        "{err}"
    );
    ns.create_topic(&f.a, "/q/s:t1", None).await.unwrap();
    ns.produce(&f.a, "/q/s:t2", None, encoded(&[("", "autocreated")]))
        .await
        .unwrap();
    let err = ns.create_topic(&f.a, "/q/s:t3", None).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::QuotaExceeded {
                quota: "topics",
                ..
            }
        ),
        "{err}"
    );
    let err = ns
        .produce(&f.a, "/q/s:t4", None, encoded(&[("", "x")]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::QuotaExceeded {
                quota: "topics",
                ..
            }
        ),
        "{err}"
    );

    // Bytes: fill close to the limit, then a keyed batch spanning both partitions is
    // refused whole.
    let used = ns.describe_volume(&f.a, "/q").unwrap().bytes;
    let big = "x".repeat((400 - used as usize) / 2);
    ns.produce(&f.a, "/q/s:t1", Some(0), encoded(&[("", &big)]))
        .await
        .unwrap();
    let before: Vec<_> = ns
        .list_offsets(&f.a, "/q/s:t1", &[], OffsetSpec::Latest)
        .await
        .unwrap();
    let err = ns
        .produce(
            &f.a,
            "/q/s:t1",
            None,
            encoded(&[("k1", &big), ("k2", &big), ("k3", &big)]),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::QuotaExceeded {
                quota: "bytes",
                limit: 400,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("bytes quota of 400"), "{err}");
    assert_eq!(
        ns.list_offsets(&f.a, "/q/s:t1", &[], OffsetSpec::Latest)
            .await
            .unwrap(),
        before,
        "nothing written"
    );
    let names: Vec<_> = ns
        .list_topics(&f.a, "/q/s")
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.path)
        .collect();
    assert_eq!(names, vec!["/q/s:t1", "/q/s:t2"]);
    // Deleting frees the quota.
    ns.delete_topic(&f.a, "/q/s:t1").await.unwrap();
    assert!(ns.describe_volume(&f.a, "/q").unwrap().bytes < used + 10);
    ns.produce(&f.a, "/q/s:t5", None, encoded(&[("", "fits again")]))
        .await
        .unwrap();
}

#[test]
fn a_user_row_from_before_kafka_default_streams_has_none() {
    let row: crate::auth::UserRow = serde_json::from_str(
        r#"{"name":"x","groups":[],"cluster_admin":false,"created_ms":0,"token_id":"a","token_hash":"b"}"#,
    )
    .unwrap();
    assert_eq!(row.kafka_default_stream, None);
    let written = serde_json::to_string(&row).unwrap();
    assert!(!written.contains("kafka"), "{written}");
}

#[tokio::test]
async fn users_tokens_and_rotation() {
    let f = fixture().await;
    let ns = &f.ns;
    let (u, token) = ns
        .create_user(&f.a, "dave", vec!["ops".into(), "dev".into()], false)
        .await
        .unwrap();
    assert_eq!((u.name.as_str(), u.cluster_admin), ("dave", false));
    assert!(matches!(
        ns.create_user(&f.a, "dave", vec![], false).await,
        Err(Error::AlreadyExists { .. })
    ));
    assert!(matches!(
        ns.create_user(&f.a, "bad name", vec![], false).await,
        Err(Error::InvalidArgument { .. })
    ));
    let dave = ns.authenticate(&token).unwrap();
    assert_eq!(
        ns.whoami(&dave).groups,
        vec!["ops".to_string(), "dev".to_string()]
    );
    denied(ns.list_users(&dave), "cluster admin");
    denied(ns.rotate_token(&dave, "admin").await, "cluster admin");
    let new = ns.rotate_token(&dave, "").await.unwrap();
    assert!(
        matches!(ns.authenticate(&token), Err(Error::Unauthenticated(_))),
        "the old token stops working"
    );
    ns.authenticate(&new).unwrap();
    let mut forged = new.clone();
    forged.pop();
    assert!(matches!(
        ns.authenticate(&forged),
        Err(Error::Unauthenticated(_))
    ));
    assert!(matches!(
        ns.authenticate("nonsense"),
        Err(Error::Unauthenticated(_))
    ));
    assert_eq!(ns.list_users(&f.a).unwrap().len(), 2);
    assert!(
        matches!(
            ns.delete_user(&f.a, "admin").await,
            Err(Error::FailedPrecondition(_))
        ),
        "the last cluster admin stays"
    );
    ns.delete_user(&f.a, "dave").await.unwrap();
    assert!(matches!(
        ns.authenticate(&new),
        Err(Error::Unauthenticated(_))
    ));
}

#[tokio::test]
async fn ttl_hides_expired_records_at_once_and_retention_removes_them() {
    let f = fixture().await;
    let ns = &f.ns;
    ns.create_volume(&f.a, "/r", None, None, Quotas::default())
        .await
        .unwrap();
    let hour = StreamAttributesPatch {
        ttl_ms: Some(3_600_000),
        default_partitions: Some(1),
        ..Default::default()
    };
    ns.create_stream(&f.a, "/r/hot", &hour).await.unwrap();
    ns.create_stream(&f.a, "/r/idle", &hour).await.unwrap();
    let forever = StreamAttributesPatch {
        ttl_ms: Some(0),
        ..Default::default()
    };
    ns.create_stream(&f.a, "/r/kept", &forever).await.unwrap();
    for s in ["/r/hot:t", "/r/idle:t", "/r/kept:t"] {
        ns.produce(&f.a, s, None, encoded(&[("", "old-1"), ("", "old-2")]))
            .await
            .unwrap();
    }
    f.clock.advance_ms(30 * 60_000);
    ns.produce(&f.a, "/r/hot:t", None, encoded(&[("", "new")]))
        .await
        .unwrap();
    let used = ns.describe_volume(&f.a, "/r").unwrap().bytes;

    // An hour after the first batch: it is gone from every read, before any purge.
    f.clock.advance_ms(31 * 60_000);
    let err = ns
        .fetch(&by_name(&f.a), "/r/hot:t", 0, 0, 0, Duration::ZERO)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("valid offsets are 2 to 3"),
        "{err}"
    );
    let r = ns
        .fetch(&by_name(&f.a), "/r/hot:t", 0, 2, 0, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!((r.log_start, r.batches.len()), (2, 1));
    assert_eq!(
        ns.list_offsets(&f.a, "/r/idle:t", &[], OffsetSpec::Earliest)
            .await
            .unwrap(),
        vec![(0, 2)]
    );
    assert_eq!(
        ns.describe_topic(&f.a, "/r/hot:t")
            .await
            .unwrap()
            .partition_stats[0]
            .records,
        1
    );

    // Retention removes them, idle streams included; TTL 0 keeps everything.
    let purged = ns.run_retention().await.unwrap();
    assert_eq!(purged.records, 4);
    let hot = ns
        .describe_topic(&f.a, "/r/hot:t")
        .await
        .unwrap()
        .partition_stats[0];
    assert_eq!(
        (
            hot.log_start,
            hot.high_watermark,
            hot.records,
            hot.purged_records
        ),
        (2, 3, 1, 2)
    );
    assert_eq!(
        ns.list_offsets(&f.a, "/r/kept:t", &[], OffsetSpec::Earliest)
            .await
            .unwrap(),
        vec![(0, 0)]
    );
    assert_eq!(values(ns, &f.a, "/r/kept:t", 0).await.len(), 2);
    assert!(
        ns.describe_volume(&f.a, "/r").unwrap().bytes < used,
        "purged bytes leave the quota usage"
    );
    assert_eq!(
        ns.run_retention().await.unwrap().records,
        0,
        "nothing left to purge"
    );
    // The surviving record keeps its offset.
    let r = ns
        .fetch(&by_name(&f.a), "/r/hot:t", 0, 2, 0, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        RecordBatch::decode(r.batches[0].clone())
            .unwrap()
            .base_offset,
        2
    );
    // `stream purge` needs the stream's admin permission.
    let (_, token) = ns.create_user(&f.a, "eve", vec![], false).await.unwrap();
    let eve = ns.authenticate(&token).unwrap();
    assert!(matches!(
        ns.purge_stream(&eve, "/r/hot").await,
        Err(Error::PermissionDenied { .. })
    ));
    assert_eq!(ns.purge_stream(&f.a, "/r/hot").await.unwrap().records, 0);
}

#[tokio::test]
async fn size_caps_keep_partitions_under_their_byte_limit() {
    let f = fixture().await;
    let ns = &f.ns;
    ns.create_volume(&f.a, "/c", None, None, Quotas::default())
        .await
        .unwrap();
    let capped = StreamAttributesPatch {
        max_bytes_per_partition: Some(1_000),
        ttl_ms: Some(0),
        ..Default::default()
    };
    ns.create_stream(&f.a, "/c/s", &capped).await.unwrap();
    let value = "v".repeat(200);
    for _ in 0..20 {
        ns.produce(&f.a, "/c/s:t", Some(0), encoded(&[("", &value)]))
            .await
            .unwrap();
    }
    let before = ns
        .describe_topic(&f.a, "/c/s:t")
        .await
        .unwrap()
        .partition_stats[0];
    assert!(before.bytes > 4_000);
    let purged = ns.run_retention().await.unwrap();
    let after = ns
        .describe_topic(&f.a, "/c/s:t")
        .await
        .unwrap()
        .partition_stats[0];
    assert!(after.bytes <= 1_000, "{after:?}");
    assert_eq!(after.high_watermark, 20, "offsets never change");
    assert_eq!(after.log_start, purged.records);
    assert_eq!(after.records, 20 - purged.records);
    // The survivors are the newest records, at their original offsets.
    let r = ns
        .fetch(
            &by_name(&f.a),
            "/c/s:t",
            0,
            after.log_start,
            0,
            Duration::ZERO,
        )
        .await
        .unwrap();
    assert_eq!(
        RecordBatch::decode(r.batches[0].clone())
            .unwrap()
            .base_offset,
        after.log_start
    );
    // Raising the cap keeps what is left; lowering it purges more.
    let tighter = StreamAttributesPatch {
        max_bytes_per_partition: Some(500),
        ..Default::default()
    };
    ns.edit_stream(&f.a, "/c/s", &tighter).await.unwrap();
    ns.run_retention().await.unwrap();
    assert!(
        ns.describe_topic(&f.a, "/c/s:t")
            .await
            .unwrap()
            .partition_stats[0]
            .bytes
            <= 500
    );
}

/// Counts every counter by name and labels, for the test that checks retention's metrics.
#[derive(Default)]
struct Counters(
    parking_lot::Mutex<std::collections::HashMap<String, Arc<std::sync::atomic::AtomicU64>>>,
);

impl Counters {
    fn get(&self, name: &str) -> u64 {
        self.0
            .lock()
            .get(name)
            .map_or(0, |c| c.load(std::sync::atomic::Ordering::Relaxed))
    }
}

impl metrics::Recorder for Counters {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }

    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        let labels: Vec<_> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        metrics::Counter::from_arc(self.0.lock().entry(name).or_default().clone())
    }

    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }

    fn register_histogram(
        &self,
        _: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

/// A retention pass skips partitions with nothing in them and leaves them unloaded: loading
/// each kept ~650 bytes of a server with a million idle topics in memory for good.
#[tokio::test]
async fn retention_leaves_empty_partitions_unloaded() {
    let f = fixture().await;
    let ns = &f.ns;
    let store = ns.store().clone();
    ns.create_volume(&f.a, "/i", None, None, Quotas::default())
        .await
        .unwrap();
    let four = StreamAttributesPatch {
        default_partitions: Some(4),
        ..Default::default()
    };
    ns.create_stream(&f.a, "/i/s", &four).await.unwrap();
    for t in ["a", "b", "c"] {
        ns.create_topic(&f.a, &format!("/i/s:{t}"), None)
            .await
            .unwrap();
    }
    let loaded = store.loaded_partitions();
    ns.run_retention().await.unwrap();
    ns.run_retention().await.unwrap();
    assert_eq!(store.loaded_partitions(), loaded, "12 empty partitions");

    // A written partition is still purged once its record expires (the default TTL is 7 days).
    ns.produce(&f.a, "/i/s:a", None, encoded(&[("", "x")]))
        .await
        .unwrap();
    f.clock.advance_ms(8 * 24 * 3_600_000);
    assert_eq!(ns.run_retention().await.unwrap().records, 1);
    assert_eq!(store.loaded_partitions(), loaded + 1);
}

/// BlobDB's garbage collection rewrites live payloads; retention turns it on only while a
/// stream is key-compacted, whose partly emptied blob files need it.
#[tokio::test]
async fn blob_gc_runs_only_while_a_stream_is_compacted() {
    let f = fixture().await;
    let ns = &f.ns;
    let store = ns.store().clone();
    ns.create_volume(&f.a, "/g", None, None, Quotas::default())
        .await
        .unwrap();
    ns.create_stream(&f.a, "/g/plain", &StreamAttributesPatch::default())
        .await
        .unwrap();
    ns.run_retention().await.unwrap();
    assert!(!store.blob_gc(), "no compacted stream");

    let compact = StreamAttributesPatch {
        compact: Some(true),
        ..Default::default()
    };
    ns.create_stream(&f.a, "/g/log", &compact).await.unwrap();
    ns.run_retention().await.unwrap();
    assert!(store.blob_gc(), "a compacted stream");

    let plain = StreamAttributesPatch {
        compact: Some(false),
        ..Default::default()
    };
    ns.edit_stream(&f.a, "/g/log", &plain).await.unwrap();
    ns.run_retention().await.unwrap();
    assert!(!store.blob_gc(), "compaction turned off");

    ns.edit_stream(&f.a, "/g/log", &compact).await.unwrap();
    ns.purge_stream(&f.a, "/g/log").await.unwrap();
    assert!(store.blob_gc(), "a forced pass turns it on at once");
    ns.delete_stream(&f.a, "/g/log").await.unwrap();
    ns.run_retention().await.unwrap();
    assert!(!store.blob_gc(), "the compacted stream is gone");
}

/// One stream whose retention fails (its log holds a batch key compaction cannot decode)
/// does not stop the pass: the next stream's expired records still go, the failure is
/// counted by volume and stream, and the pass reports it.
#[tokio::test]
async fn retention_goes_on_past_a_failing_stream() {
    let f = fixture().await;
    let ns = &f.ns;
    let counters = Counters::default();
    let _recorder = metrics::set_default_local_recorder(&counters);
    ns.create_volume(&f.a, "/b", None, None, Quotas::default())
        .await
        .unwrap();
    let compact = StreamAttributesPatch {
        compact: Some(true),
        ttl_ms: Some(0),
        ..Default::default()
    };
    // Streams are purged in path order: the failing one comes first.
    ns.create_stream(&f.a, "/b/a-broken", &compact)
        .await
        .unwrap();
    ns.create_topic(&f.a, "/b/a-broken:t", Some(1))
        .await
        .unwrap();
    let id = ns.test_partition_id("/b/a-broken:t", 0).await.unwrap();
    let now = f.clock.now_ms();
    ns.store()
        .submit(tributary_storage::AppendRequest {
            durability: tributary_storage::Durability::Sync,
            partitions: vec![id],
            checks: vec![Default::default()],
            build: Box::new(move |_, _| NewBatch {
                value: vec![0xff; 16],
                record_count: 1,
                append_time_ms: now,
                max_timestamp_ms: now,
            }),
        })
        .await
        .unwrap();
    let ttl = StreamAttributesPatch {
        ttl_ms: Some(60_000),
        ..Default::default()
    };
    ns.create_stream(&f.a, "/b/z-ttl", &ttl).await.unwrap();
    ns.produce(&f.a, "/b/z-ttl:t", Some(0), encoded(&[("", "old")]))
        .await
        .unwrap();
    f.clock.advance_ms(120_000);

    let err = ns.run_retention().await.unwrap_err();
    assert!(
        matches!(&err, Error::Retention { failed: 1, stream, .. } if stream == "/b/a-broken"),
        "{err}"
    );
    assert_eq!(
        counters.get("tributary_retention_failures_total{volume=/b,stream=/b/a-broken}"),
        1
    );
    let after = ns
        .describe_topic(&f.a, "/b/z-ttl:t")
        .await
        .unwrap()
        .partition_stats[0];
    assert_eq!((after.log_start, after.purged_records), (1, 1), "{after:?}");
    assert_eq!(
        counters.get("tributary_retention_purged_records_total{volume=/b}"),
        1
    );
    // The next pass fails again on the same stream, and counts it again.
    ns.run_retention().await.unwrap_err();
    assert_eq!(
        counters.get("tributary_retention_failures_total{volume=/b,stream=/b/a-broken}"),
        2
    );
}

#[tokio::test]
async fn compacted_streams_keep_the_latest_value_of_each_key() {
    let f = fixture().await;
    let ns = &f.ns;
    let counters = Counters::default();
    let _recorder = metrics::set_default_local_recorder(&counters);
    ns.create_volume(&f.a, "/k", None, None, Quotas::default())
        .await
        .unwrap();
    let changelog = StreamAttributesPatch {
        compact: Some(true),
        ttl_ms: Some(0),
        delete_retention_ms: Some(3_600_000),
        ..Default::default()
    };
    let s = ns.create_stream(&f.a, "/k/log", &changelog).await.unwrap();
    assert!(s.attributes.compact);
    assert_eq!(s.attributes.delete_retention_ms, 3_600_000);

    // Unkeyed records are refused, naming the field; nothing is written.
    let err = ns
        .produce(&f.a, "/k/log:t", None, encoded(&[("a", "1"), ("", "x")]))
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("batch.records[1].key"), "{err}");
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    assert!(
        ns.describe_topic(&f.a, "/k/log:t").await.is_err(),
        "no topic was made"
    );

    for batch in [
        &[("a", "a1"), ("b", "b1")][..], // 0, 1
        &[("a", "a2")],                  // 2
        &[("c", "c1"), ("b", "")],       // 3, 4: b's tombstone
        &[("a", "a3")],                  // 5: the newest batch
    ] {
        ns.produce(&f.a, "/k/log:t", None, encoded(batch))
            .await
            .unwrap();
    }
    let used = ns.describe_volume(&f.a, "/k").unwrap().bytes;

    // The background task finds the partition due (a fresh server: all of it is dirty).
    let purged = ns.run_retention().await.unwrap();
    assert_eq!(purged.records, 3);
    let expected = |v: &[(u64, &str)]| {
        v.iter()
            .map(|(o, s)| (*o, s.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        values(ns, &f.a, "/k/log:t", 0).await,
        expected(&[(3, "c1"), (4, ""), (5, "a3")]),
        "the latest value of each key at its own offset; b's tombstone stays for now"
    );
    assert_eq!(
        ns.list_offsets(&f.a, "/k/log:t", &[], OffsetSpec::Earliest)
            .await
            .unwrap(),
        vec![(0, 0)],
        "the log start does not move: a consumer from 0 skips the gap"
    );
    let info = ns.describe_stream(&f.a, "/k/log").await.unwrap();
    assert_eq!((info.totals.records, info.totals.purged_records), (3, 3));
    assert!(info.totals.purged_bytes > 0);
    assert_eq!(info.totals.earliest_append_ms, Some(f.clock.now_ms()));
    assert_eq!(
        ns.describe_volume(&f.a, "/k").unwrap().bytes,
        used - info.totals.purged_bytes,
        "freed bytes leave the quota usage"
    );
    assert_eq!(
        ns.run_retention().await.unwrap().records,
        0,
        "nothing is due"
    );

    // Past delete_retention the tombstone goes on the next pass (stream purge forces one).
    f.clock.advance_ms(3_600_000);
    assert_eq!(ns.purge_stream(&f.a, "/k/log").await.unwrap().records, 1);
    assert_eq!(
        values(ns, &f.a, "/k/log:t", 0).await,
        expected(&[(3, "c1"), (5, "a3")])
    );
    assert_eq!(
        counters.get("tributary_retention_purged_records_total{volume=/k}"),
        4
    );
    assert_eq!(
        counters.get("tributary_retention_purged_bytes_total{volume=/k}"),
        ns.describe_stream(&f.a, "/k/log")
            .await
            .unwrap()
            .totals
            .purged_bytes
    );

    // Attributes edit like any other; turning compaction off keeps what is left.
    let off = StreamAttributesPatch {
        compact: Some(false),
        ..Default::default()
    };
    let s = ns.edit_stream(&f.a, "/k/log", &off).await.unwrap();
    assert!(!s.attributes.compact);
    ns.produce(
        &f.a,
        "/k/log:t",
        None,
        encoded(&[("", "unkeyed"), ("c", "c2")]),
    )
    .await
    .unwrap();
    assert_eq!(ns.purge_stream(&f.a, "/k/log").await.unwrap().records, 0);
    assert_eq!(values(ns, &f.a, "/k/log:t", 0).await.len(), 4);
}

#[tokio::test]
async fn a_new_topic_sets_its_streams_attributes_only_as_the_first_and_validating_writes_nothing() {
    let f = fixture().await;
    let ns = &f.ns;
    ns.create_volume(&f.a, "/v", None, None, Quotas::default())
        .await
        .unwrap();
    ns.create_stream(&f.a, "/v/s", &partitions(2))
        .await
        .unwrap();
    let compact = StreamAttributesPatch {
        compact: Some(true),
        ttl_ms: Some(0),
        ..Default::default()
    };
    let check = NewTopic {
        partitions: Some(3),
        stream_attributes: compact.clone(),
        validate_only: true,
    };
    let t = ns.create_topic_with(&f.a, "/v/s:a", &check).await.unwrap();
    assert_eq!(t.partitions, 3);
    assert!(ns.list_topics(&f.a, "/v/s").await.unwrap().is_empty());
    assert!(
        !ns.describe_stream(&f.a, "/v/s")
            .await
            .unwrap()
            .attributes
            .compact
    );
    // The first topic sets them, in the same write.
    let first = NewTopic {
        validate_only: false,
        ..check
    };
    ns.create_topic_with(&f.a, "/v/s:a", &first).await.unwrap();
    let a = ns.describe_stream(&f.a, "/v/s").await.unwrap().attributes;
    assert!(a.compact && a.ttl_ms == 0);
    // A later topic takes them as they are, or is refused naming the stream.
    ns.create_topic_with(&f.a, "/v/s:b", &first).await.unwrap();
    let other = NewTopic {
        stream_attributes: StreamAttributesPatch {
            compact: Some(false),
            ..Default::default()
        },
        ..NewTopic::default()
    };
    let e = ns
        .create_topic_with(&f.a, "/v/s:c", &other)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::InvalidArgument { field, message } if field == "attributes" && message.contains("/v/s has topics")),
        "{e}"
    );
    assert_eq!(ns.list_topics(&f.a, "/v/s").await.unwrap().len(), 2);
    // Validating an edit or a growth writes nothing either.
    let off = StreamAttributesPatch {
        compact: Some(false),
        ..Default::default()
    };
    let would = ns.edit_stream_with(&f.a, "/v/s", &off, true).await.unwrap();
    assert!(!would.attributes.compact);
    assert!(
        ns.describe_stream(&f.a, "/v/s")
            .await
            .unwrap()
            .attributes
            .compact
    );
    ns.edit_topic_with(&f.a, "/v/s:a", Some(5), true)
        .await
        .unwrap();
    assert_eq!(
        ns.describe_topic(&f.a, "/v/s:a").await.unwrap().partitions,
        3
    );
}

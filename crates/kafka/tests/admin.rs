//! The Kafka door's topic and config APIs on a real socket over a real namespace:
//! CreateTopics, DeleteTopics, CreatePartitions, DescribeConfigs, AlterConfigs and
//! IncrementalAlterConfigs at the lowest and highest version served, each refusal's code,
//! validation that changes nothing, alters that apply whole or not at all, and the stream
//! ACLs deciding.

mod common;

use common::*;
use kafka_protocol::messages::create_partitions_request::{
    CreatePartitionsAssignment, CreatePartitionsTopic,
};
use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use tokio::net::TcpStream;
use tributary_core::acl::Acl;
use tributary_core::kafka_names::AliasRule;
use tributary_kafka::Options;
use tributary_volume::{Caller, StreamAttributes, StreamAttributesPatch};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

fn name(v: &str) -> TopicName {
    TopicName(s(v))
}

/// A connection authenticated as `user`.
async fn as_user(d: &Door, user: &str, token: &str) -> TcpStream {
    let mut c = TcpStream::connect(d.addr).await.unwrap();
    assert_eq!(handshake(&mut c, "PLAIN").await.error_code, 0);
    assert_eq!(plain(&mut c, 2, user, token).await.error_code, 0);
    c
}

async fn as_admin(d: &Door) -> TcpStream {
    as_user(d, "admin", &d.token).await
}

fn admin(d: &Door) -> Caller {
    d.ns.authenticate(&d.token).unwrap()
}

/// The topics of a stream and their partitions, as the namespace has them.
async fn topics(d: &Door, stream: &str) -> Vec<(String, u32)> {
    let mut t: Vec<_> =
        d.ns.list_topics(&admin(d), stream)
            .await
            .unwrap()
            .into_iter()
            .map(|t| (t.path, t.partitions))
            .collect();
    t.sort();
    t
}

async fn attributes(d: &Door, stream: &str) -> StreamAttributes {
    d.ns.describe_stream(&admin(d), stream)
        .await
        .unwrap()
        .attributes
}

fn topic(n: &str, partitions: i32, replication: i16, configs: &[(&str, &str)]) -> CreatableTopic {
    CreatableTopic::default()
        .with_name(name(n))
        .with_num_partitions(partitions)
        .with_replication_factor(replication)
        .with_configs(
            configs
                .iter()
                .map(|(k, v)| {
                    CreatableTopicConfig::default()
                        .with_name(s(k))
                        .with_value(Some(s(v)))
                })
                .collect(),
        )
}

async fn create(
    c: &mut TcpStream,
    version: i16,
    topics: Vec<CreatableTopic>,
    validate_only: bool,
) -> CreateTopicsResponse {
    let r = CreateTopicsRequest::default()
        .with_topics(topics)
        .with_timeout_ms(30_000)
        .with_validate_only(validate_only);
    call(c, ApiKey::CreateTopics, version, &r).await
}

/// (name, code) of each topic answered, with the message of each refusal.
fn codes(r: &CreateTopicsResponse) -> Vec<(String, i16)> {
    r.topics
        .iter()
        .map(|t| {
            assert_eq!(t.error_message.is_some(), t.error_code != 0, "{t:?}");
            (t.name.0.to_string(), t.error_code)
        })
        .collect()
}

fn message(m: &Option<StrBytes>) -> String {
    m.as_ref().map(|m| m.to_string()).unwrap_or_default()
}

#[tokio::test]
async fn create_topics_at_every_version_makes_them_in_the_resolved_stream() {
    let d = door(anonymous()).await;
    let mut c = as_admin(&d).await;
    for v in 2..=7 {
        let r = create(
            &mut c,
            v,
            vec![
                topic(&format!("t{v}"), 2, -1, &[]),
                topic(&format!("/acme/private:p{v}"), -1, 1, &[]),
            ],
            false,
        )
        .await;
        assert_eq!(
            codes(&r),
            [(format!("t{v}"), 0), (format!("/acme/private:p{v}"), 0)],
            "v{v}"
        );
        if v >= 5 {
            let t = &r.topics[0];
            assert_eq!((t.num_partitions, t.replication_factor), (2, 1));
            let configs = t.configs.as_ref().unwrap();
            let retention = configs
                .iter()
                .find(|c| c.name.as_str() == "retention.ms")
                .unwrap();
            assert_eq!(retention.value.as_deref(), Some("604800000"));
            // -1 partitions: the stream's default.
            assert_eq!(r.topics[1].num_partitions, 1);
        }
    }
    let made = topics(&d, "/acme/s").await;
    for v in 2..=7 {
        assert!(made.contains(&(format!("/acme/s:t{v}"), 2)), "{made:?}");
    }
    assert_eq!(topics(&d, "/acme/private").await.len(), 7);
}

#[tokio::test]
async fn create_topics_refuses_each_topic_with_its_code_and_changes_nothing() {
    let d = door(anonymous()).await;
    let mut c = as_admin(&d).await;
    let before = (topics(&d, "/acme/s").await, attributes(&d, "/acme/s").await);
    let assigned = topic("assigned", 1, 1, &[]).with_assignments(vec![
        CreatableReplicaAssignment::default()
            .with_partition_index(0)
            .with_broker_ids(vec![BrokerId(0)]),
    ]);
    let null_config = topic("nulls", 1, 1, &[]).with_configs(vec![
        CreatableTopicConfig::default()
            .with_name(s("retention.ms"))
            .with_value(None),
    ]);
    for v in [2, 7] {
        let r = create(
            &mut c,
            v,
            vec![
                topic("orders", 1, 1, &[]),
                topic("zero", 0, 1, &[]),
                topic("many", 10_001, 1, &[]),
                topic("copies", 1, 3, &[]),
                topic("bad name", 1, 1, &[]),
                topic("/acme/none:x", 1, 1, &[]),
                assigned.clone(),
                topic("twice", 1, 1, &[]),
                topic("twice", 1, 1, &[]),
                topic("unknown-config", 1, 1, &[("segment.bytes", "1024")]),
                topic("compacted", 1, 1, &[("cleanup.policy", "compact")]),
                topic(
                    "both",
                    1,
                    1,
                    &[("retention.ms", "1"), ("retention.ms", "2")],
                ),
                null_config.clone(),
            ],
            false,
        )
        .await;
        assert_eq!(
            codes(&r),
            [
                ("orders".into(), 36),
                ("zero".into(), 37),
                ("many".into(), 37),
                ("copies".into(), 38),
                ("bad name".into(), 17),
                ("/acme/none:x".into(), 3),
                ("assigned".into(), 42),
                ("twice".into(), 42),
                ("twice".into(), 42),
                ("unknown-config".into(), 40),
                ("compacted".into(), 40),
                ("both".into(), 42),
                ("nulls".into(), 40),
            ],
            "v{v}"
        );
        assert!(message(&r.topics[3].error_message).contains("one copy of each partition"));
        // A stream with topics keeps its attributes; the refusal names it.
        assert!(message(&r.topics[10].error_message).contains("/acme/s has topics"));
        if v >= 5 {
            assert!(r.topics[0].configs.is_none());
            assert_eq!(r.topics[0].num_partitions, -1);
        }
    }
    // The anonymous user sees the stream but holds no `topic` permission on it.
    let mut anon = TcpStream::connect(d.addr).await.unwrap();
    let r = create(&mut anon, 7, vec![topic("mine", 1, 1, &[])], false).await;
    assert_eq!(codes(&r), [("mine".into(), 29)]);
    assert_eq!(
        (topics(&d, "/acme/s").await, attributes(&d, "/acme/s").await),
        before
    );
}

#[tokio::test]
async fn validate_only_checks_everything_and_changes_nothing() {
    let d = door(anonymous()).await;
    let mut c = as_admin(&d).await;
    let before = (topics(&d, "/acme/s").await, attributes(&d, "/acme/s").await);
    let r = create(
        &mut c,
        7,
        vec![
            topic("fresh", 4, 1, &[("retention.ms", "604800000")]),
            topic("orders", 1, 1, &[]),
        ],
        true,
    )
    .await;
    assert_eq!(codes(&r), [("fresh".into(), 0), ("orders".into(), 36)]);
    assert_eq!(r.topics[0].num_partitions, 4);

    let grow = CreatePartitionsRequest::default()
        .with_topics(vec![
            CreatePartitionsTopic::default()
                .with_name(name("orders"))
                .with_count(8),
        ])
        .with_validate_only(true);
    let r: CreatePartitionsResponse = call(&mut c, ApiKey::CreatePartitions, 3, &grow).await;
    assert_eq!(r.results[0].error_code, 0);

    let set = |key: &str, value: &str, validate_only| {
        use incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
        IncrementalAlterConfigsRequest::default()
            .with_resources(vec![
                AlterConfigsResource::default()
                    .with_resource_type(TOPIC)
                    .with_resource_name(s("orders"))
                    .with_configs(vec![
                        AlterableConfig::default()
                            .with_name(s(key))
                            .with_config_operation(0)
                            .with_value(Some(s(value))),
                    ]),
            ])
            .with_validate_only(validate_only)
    };
    let r: IncrementalAlterConfigsResponse = call(
        &mut c,
        ApiKey::IncrementalAlterConfigs,
        1,
        &set("retention.ms", "1000", true),
    )
    .await;
    assert_eq!(r.responses[0].error_code, 0);
    // What would be refused is refused when only validating too.
    let r: IncrementalAlterConfigsResponse = call(
        &mut c,
        ApiKey::IncrementalAlterConfigs,
        1,
        &set("retention.ms", "0", true),
    )
    .await;
    assert_eq!(r.responses[0].error_code, 40);

    let legacy = {
        use alter_configs_request::{AlterConfigsResource, AlterableConfig};
        AlterConfigsRequest::default()
            .with_resources(vec![
                AlterConfigsResource::default()
                    .with_resource_type(TOPIC)
                    .with_resource_name(s("orders"))
                    .with_configs(vec![
                        AlterableConfig::default()
                            .with_name(s("cleanup.policy"))
                            .with_value(Some(s("compact"))),
                    ]),
            ])
            .with_validate_only(true)
    };
    let r: AlterConfigsResponse = call(&mut c, ApiKey::AlterConfigs, 2, &legacy).await;
    assert_eq!(r.responses[0].error_code, 0);
    assert_eq!(
        (topics(&d, "/acme/s").await, attributes(&d, "/acme/s").await),
        before
    );
}

#[tokio::test]
async fn kafka_connects_compacted_topics_get_a_stream_of_their_own() {
    let options = Options {
        aliases: vec![AliasRule::parse("r", "connect-*=/acme/connect").unwrap()],
        ..anonymous()
    };
    let d = door(options).await;
    d.ns.create_stream(
        &admin(&d),
        "/acme/connect",
        &StreamAttributesPatch::default(),
    )
    .await
    .unwrap();
    let mut c = as_admin(&d).await;
    // What Kafka Connect's workers ask for its three internal topics.
    let internal = |n: &str, p| topic(n, p, -1, &[("cleanup.policy", "compact")]);
    let r = create(
        &mut c,
        5,
        vec![
            internal("connect-configs", 1),
            internal("connect-offsets", 25),
            internal("connect-status", 5),
        ],
        false,
    )
    .await;
    assert_eq!(
        codes(&r),
        [
            ("connect-configs".into(), 0),
            ("connect-offsets".into(), 0),
            ("connect-status".into(), 0)
        ]
    );
    let policy = |t: &create_topics_response::CreatableTopicResult| {
        let configs = t.configs.as_ref().unwrap();
        let c = configs.iter().find(|c| c.name.as_str() == "cleanup.policy");
        c.unwrap().value.as_deref().unwrap().to_owned()
    };
    assert!(r.topics.iter().all(|t| policy(t) == "compact"));
    // Compacted as Kafka's are: records stay whatever their age.
    let a = attributes(&d, "/acme/connect").await;
    assert!(a.compact && a.ttl_ms == 0 && a.max_bytes_per_partition == 0);
    // The default stream is untouched, and another policy in that stream is refused.
    assert!(!attributes(&d, "/acme/s").await.compact);
    let r = create(
        &mut c,
        7,
        vec![topic("connect-x", 1, 1, &[("cleanup.policy", "delete")])],
        false,
    )
    .await;
    assert_eq!(codes(&r), [("connect-x".into(), 40)]);
    assert!(message(&r.topics[0].error_message).contains("/acme/connect"));
}

async fn delete(c: &mut TcpStream, version: i16, names: &[&str]) -> DeleteTopicsResponse {
    let r = if version >= 6 {
        DeleteTopicsRequest::default().with_topics(
            names
                .iter()
                .map(|n| DeleteTopicState::default().with_name(Some(name(n))))
                .collect(),
        )
    } else {
        DeleteTopicsRequest::default().with_topic_names(names.iter().map(|n| name(n)).collect())
    };
    call(c, ApiKey::DeleteTopics, version, &r).await
}

fn deleted(r: &DeleteTopicsResponse) -> Vec<(String, i16)> {
    r.responses
        .iter()
        .map(|t| {
            let n = t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
            (n, t.error_code)
        })
        .collect()
}

#[tokio::test]
async fn delete_topics_by_name_at_every_version_and_ids_are_unknown() {
    let d = door(anonymous()).await;
    let mut c = as_admin(&d).await;
    for v in 1..=6 {
        d.ns.create_topic(&admin(&d), &format!("/acme/s:gone{v}"), Some(2))
            .await
            .unwrap();
        let gone = format!("gone{v}");
        let r = delete(&mut c, v, &[&gone, "nope", "bad name"]).await;
        assert_eq!(
            deleted(&r),
            [
                (gone.clone(), 0),
                ("nope".into(), 3),
                ("bad name".into(), 17)
            ],
            "v{v}"
        );
        if v >= 5 {
            assert!(r.responses[0].error_message.is_none());
            assert!(message(&r.responses[1].error_message).contains("does not exist"));
        }
    }
    assert_eq!(
        topics(&d, "/acme/s").await,
        [("/acme/s:clicks".into(), 1), ("/acme/s:orders".into(), 3)]
    );
    let id = uuid::Uuid::from_u128(7);
    let by_id = DeleteTopicsRequest::default()
        .with_topics(vec![DeleteTopicState::default().with_topic_id(id)]);
    let r: DeleteTopicsResponse = call(&mut c, ApiKey::DeleteTopics, 6, &by_id).await;
    assert_eq!(r.responses[0].error_code, 100);
    assert_eq!(r.responses[0].topic_id, id);
    // The anonymous user may read /acme/s but not delete its topics.
    let mut anon = TcpStream::connect(d.addr).await.unwrap();
    let r = delete(&mut anon, 6, &["orders"]).await;
    assert_eq!(deleted(&r), [("orders".into(), 29)]);
    assert_eq!(topics(&d, "/acme/s").await.len(), 2);
}

fn grow(n: &str, count: i32) -> CreatePartitionsTopic {
    CreatePartitionsTopic::default()
        .with_name(name(n))
        .with_count(count)
}

async fn create_partitions(
    c: &mut TcpStream,
    version: i16,
    topics: Vec<CreatePartitionsTopic>,
) -> Vec<(String, i16)> {
    let r = CreatePartitionsRequest::default().with_topics(topics);
    let r: CreatePartitionsResponse = call(c, ApiKey::CreatePartitions, version, &r).await;
    r.results
        .iter()
        .map(|t| {
            assert_eq!(t.error_message.is_some(), t.error_code != 0, "{t:?}");
            (t.name.0.to_string(), t.error_code)
        })
        .collect()
}

#[tokio::test]
async fn create_partitions_only_grows() {
    let d = door(anonymous()).await;
    let mut c = as_admin(&d).await;
    for v in 0..=3 {
        let to = 4 + i32::from(v);
        let placed = grow("/acme/s:clicks", 9).with_assignments(Some(vec![
            CreatePartitionsAssignment::default().with_broker_ids(vec![BrokerId(0)]),
        ]));
        let got = create_partitions(
            &mut c,
            v,
            vec![
                grow("orders", to),
                grow("clicks", 1),
                grow("/acme/s:nope", 2),
                placed,
            ],
        )
        .await;
        assert_eq!(
            got,
            [
                ("orders".into(), 0),
                ("clicks".into(), 37),
                ("/acme/s:nope".into(), 3),
                ("/acme/s:clicks".into(), 42)
            ],
            "v{v}"
        );
    }
    // Shrinking or staying put is refused too, and an empty request has an empty answer.
    let got = create_partitions(&mut c, 3, vec![grow("orders", 2)]).await;
    assert_eq!(got, [("orders".into(), 37)]);
    assert!(create_partitions(&mut c, 3, vec![]).await.is_empty());
    let mut anon = TcpStream::connect(d.addr).await.unwrap();
    let got = create_partitions(&mut anon, 3, vec![grow("orders", 10)]).await;
    assert_eq!(got, [("orders".into(), 29)]);
    assert_eq!(
        topics(&d, "/acme/s").await,
        [("/acme/s:clicks".into(), 1), ("/acme/s:orders".into(), 7)]
    );
}

async fn describe(
    c: &mut TcpStream,
    version: i16,
    resources: Vec<(i8, &str, Option<&[&str]>)>,
) -> DescribeConfigsResponse {
    let resources = resources
        .into_iter()
        .map(|(t, n, keys)| {
            DescribeConfigsResource::default()
                .with_resource_type(t)
                .with_resource_name(s(n))
                .with_configuration_keys(keys.map(|k| k.iter().map(|k| s(k)).collect()))
        })
        .collect();
    let mut r = DescribeConfigsRequest::default()
        .with_resources(resources)
        .with_include_synonyms(true);
    if version >= 3 {
        r = r.with_include_documentation(true);
    }
    call(c, ApiKey::DescribeConfigs, version, &r).await
}

/// The configs of one result, as name → value.
fn values(r: &describe_configs_response::DescribeConfigsResult) -> Vec<(String, String)> {
    r.configs
        .iter()
        .map(|c| {
            (
                c.name.to_string(),
                c.value.as_deref().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn value_of(r: &describe_configs_response::DescribeConfigsResult, key: &str) -> String {
    let all = values(r);
    let found = all.iter().find(|(k, _)| k == key);
    found.map(|(_, v)| v.clone()).unwrap_or_default()
}

#[tokio::test]
async fn describe_configs_reports_the_streams_attributes_in_kafka_names() {
    let d = door(anonymous()).await;
    d.ns.edit_stream(
        &admin(&d),
        "/acme/s",
        &StreamAttributesPatch {
            ttl_ms: Some(0),
            max_bytes_per_partition: Some(1 << 30),
            max_message_bytes: Some(2_000_000),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mut anon = TcpStream::connect(d.addr).await.unwrap();
    for v in 1..=4 {
        let r = describe(
            &mut anon,
            v,
            vec![
                (TOPIC, "orders", None),
                (TOPIC, "clicks", Some(&["retention.ms", "no.such.key"])),
                (BROKER, "0", None),
                (BROKER, "", Some(&["message.max.bytes"])),
                (TOPIC, "nope", None),
                (TOPIC, "/acme/private:secret", None),
                (BROKER, "5", None),
                (8, "0", None),
            ],
        )
        .await;
        let got: Vec<i16> = r.results.iter().map(|r| r.error_code).collect();
        assert_eq!(got, [0, 0, 0, 0, 3, 29, 42, 42], "v{v}");
        let orders = &r.results[0];
        assert_eq!(
            values(orders),
            [
                ("cleanup.policy".into(), "delete".into()),
                ("delete.retention.ms".into(), "86400000".into()),
                ("max.message.bytes".into(), "2000000".into()),
                ("message.timestamp.type".into(), "CreateTime".into()),
                ("min.insync.replicas".into(), "1".into()),
                ("retention.bytes".into(), "1073741824".into()),
                ("retention.ms".into(), "-1".into()),
            ],
            "v{v}"
        );
        let retention = orders
            .configs
            .iter()
            .find(|c| c.name.as_str() == "retention.ms")
            .unwrap();
        assert_eq!((retention.config_source, retention.read_only), (1, false));
        let synonyms: Vec<_> = retention
            .synonyms
            .iter()
            .map(|s| (s.name.to_string(), s.source))
            .collect();
        assert_eq!(
            synonyms,
            [("retention.ms".into(), 1), ("log.retention.ms".into(), 5)]
        );
        let min_isr = orders
            .configs
            .iter()
            .find(|c| c.name.as_str() == "min.insync.replicas")
            .unwrap();
        assert!(min_isr.read_only);
        if v >= 3 {
            assert_eq!(retention.config_type, 5, "LONG");
            assert!(message(&retention.documentation).contains("ttl_ms"));
        }
        assert_eq!(
            values(&r.results[1]),
            [("retention.ms".into(), "-1".into())]
        );
        assert!(r.results[2].configs.iter().all(|c| c.read_only));
        assert_eq!(value_of(&r.results[2], "auto.create.topics.enable"), "true");
        assert_eq!(value_of(&r.results[3], "message.max.bytes"), "1048576");
        assert!(message(&r.results[6].error_message).contains("its one broker is 0"));
    }
}

/// An IncrementalAlterConfigs resource: (key, operation, value) for each key.
fn incremental(
    resource_type: i8,
    n: &str,
    keys: &[(&str, i8, Option<&str>)],
) -> incremental_alter_configs_request::AlterConfigsResource {
    use incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    AlterConfigsResource::default()
        .with_resource_type(resource_type)
        .with_resource_name(s(n))
        .with_configs(
            keys.iter()
                .map(|&(k, op, v)| {
                    AlterableConfig::default()
                        .with_name(s(k))
                        .with_config_operation(op)
                        .with_value(v.map(s))
                })
                .collect(),
        )
}

async fn alter_incremental(
    c: &mut TcpStream,
    version: i16,
    resources: Vec<incremental_alter_configs_request::AlterConfigsResource>,
) -> Vec<(i16, String)> {
    let r = IncrementalAlterConfigsRequest::default().with_resources(resources);
    let r: IncrementalAlterConfigsResponse =
        call(c, ApiKey::IncrementalAlterConfigs, version, &r).await;
    r.responses
        .iter()
        .map(|r| (r.error_code, message(&r.error_message)))
        .collect()
}

async fn alter_legacy(
    c: &mut TcpStream,
    version: i16,
    resource_type: i8,
    n: &str,
    keys: &[(&str, &str)],
) -> (i16, String) {
    use alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let resource = AlterConfigsResource::default()
        .with_resource_type(resource_type)
        .with_resource_name(s(n))
        .with_configs(
            keys.iter()
                .map(|&(k, v)| {
                    AlterableConfig::default()
                        .with_name(s(k))
                        .with_value(Some(s(v)))
                })
                .collect(),
        );
    let r = AlterConfigsRequest::default().with_resources(vec![resource]);
    let r: AlterConfigsResponse = call(c, ApiKey::AlterConfigs, version, &r).await;
    let r = &r.responses[0];
    (r.error_code, message(&r.error_message))
}

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

#[tokio::test]
async fn incremental_alters_apply_to_the_whole_stream_all_or_nothing() {
    let d = door(anonymous()).await;
    let mut c = as_admin(&d).await;
    for v in 0..=1 {
        let ttl = 1000 + u64::try_from(v).unwrap();
        let got = alter_incremental(
            &mut c,
            v,
            vec![incremental(
                TOPIC,
                "orders",
                &[
                    ("retention.ms", SET, Some(&ttl.to_string())),
                    ("message.timestamp.type", SET, Some("LogAppendTime")),
                ],
            )],
        )
        .await;
        assert_eq!(got, [(0, String::new())], "v{v}");
        // A topic's configs are its stream's: the sibling has them too.
        let a = attributes(&d, "/acme/s").await;
        assert_eq!(a.ttl_ms, ttl);
        let r = describe(&mut c, 4, vec![(TOPIC, "clicks", Some(&["retention.ms"]))]).await;
        assert_eq!(value_of(&r.results[0], "retention.ms"), ttl.to_string());
    }
    let before = attributes(&d, "/acme/s").await;
    let refused = alter_incremental(
        &mut c,
        1,
        vec![
            // A good key beside a bad one: neither applies.
            incremental(
                TOPIC,
                "orders",
                &[
                    ("max.message.bytes", SET, Some("2000000")),
                    ("max.message.bytes", DELETE, None),
                ],
            ),
            incremental(
                TOPIC,
                "orders",
                &[
                    ("delete.retention.ms", SET, Some("5")),
                    ("max.message.bytes", SET, Some("999999999")),
                ],
            ),
            incremental(
                TOPIC,
                "orders",
                &[
                    ("delete.retention.ms", SET, Some("5")),
                    ("min.insync.replicas", SET, Some("2")),
                ],
            ),
            incremental(
                TOPIC,
                "orders",
                &[("cleanup.policy", SET, Some("compact,retain"))],
            ),
            incremental(TOPIC, "orders", &[("retention.ms", APPEND, Some("5"))]),
            incremental(TOPIC, "orders", &[("retention.ms", 9, Some("5"))]),
            incremental(TOPIC, "orders", &[("retention.ms", SET, None)]),
            incremental(TOPIC, "nope", &[("retention.ms", SET, Some("5"))]),
        ],
    )
    .await;
    let codes: Vec<i16> = refused.iter().map(|r| r.0).collect();
    assert_eq!(codes, [42, 40, 40, 40, 42, 42, 40, 3]);
    assert!(
        refused[2].1.contains("min.insync.replicas: read-only"),
        "{}",
        refused[2].1
    );
    assert_eq!(attributes(&d, "/acme/s").await, before);

    // cleanup.policy is a list: APPEND and SUBTRACT edit it.
    let policy = async |c: &mut TcpStream| {
        let r = describe(c, 4, vec![(TOPIC, "orders", Some(&["cleanup.policy"]))]).await;
        value_of(&r.results[0], "cleanup.policy")
    };
    let step = |op, v| {
        vec![incremental(
            TOPIC,
            "orders",
            &[("cleanup.policy", op, Some(v))],
        )]
    };
    assert_eq!(
        alter_incremental(&mut c, 1, step(APPEND, "compact")).await[0].0,
        0
    );
    assert_eq!(policy(&mut c).await, "compact,delete");
    assert!(attributes(&d, "/acme/s").await.ttl_ms > 0);
    assert_eq!(
        alter_incremental(&mut c, 1, step(SUBTRACT, "delete")).await[0].0,
        0
    );
    assert_eq!(policy(&mut c).await, "compact");
    assert_eq!(attributes(&d, "/acme/s").await.ttl_ms, 0);
    assert_eq!(
        alter_incremental(&mut c, 1, step(SUBTRACT, "compact")).await[0].0,
        40
    );
    let reset = vec![incremental(
        TOPIC,
        "orders",
        &[
            ("cleanup.policy", DELETE, None),
            ("retention.ms", DELETE, None),
        ],
    )];
    assert_eq!(alter_incremental(&mut c, 0, reset).await[0].0, 0);
    let a = attributes(&d, "/acme/s").await;
    assert_eq!((a.compact, a.ttl_ms), (false, 604_800_000));
}

#[tokio::test]
async fn alter_configs_replaces_every_config_of_the_stream() {
    let d = door(anonymous()).await;
    let mut c = as_admin(&d).await;
    d.ns.edit_stream(
        &admin(&d),
        "/acme/s",
        &StreamAttributesPatch {
            max_message_bytes: Some(2_000_000),
            delete_retention_ms: Some(5),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    for v in 0..=2 {
        let got = alter_legacy(&mut c, v, TOPIC, "orders", &[("cleanup.policy", "compact")]).await;
        assert_eq!(got, (0, String::new()), "v{v}");
        // What is not given goes back to its default; compact alone keeps records forever.
        let a = attributes(&d, "/acme/s").await;
        assert!(a.compact);
        assert_eq!(
            (
                a.ttl_ms,
                a.max_bytes_per_partition,
                a.max_message_bytes,
                a.delete_retention_ms
            ),
            (0, 0, 1 << 20, 86_400_000)
        );
        let got = alter_legacy(&mut c, v, TOPIC, "orders", &[("retention.ms", "60000")]).await;
        assert_eq!(got.0, 0);
        let a = attributes(&d, "/acme/s").await;
        assert_eq!((a.compact, a.ttl_ms), (false, 60_000));
    }
    let got = alter_legacy(
        &mut c,
        2,
        TOPIC,
        "orders",
        &[("cleanup.policy", "compact"), ("retention.ms", "1000")],
    )
    .await;
    assert_eq!(got.0, 40);
    assert!(got.1.contains("compact,delete"), "{}", got.1);
    assert_eq!(attributes(&d, "/acme/s").await.ttl_ms, 60_000);
}

#[tokio::test]
async fn the_streams_acls_decide_and_broker_configs_are_read_only() {
    let d = door(anonymous()).await;
    let a = admin(&d);
    let (_, bob) = d.ns.create_user(&a, "bob", vec![], false).await.unwrap();
    // Bob may make topics in /acme/team but not administer it.
    let team = StreamAttributesPatch {
        topic_perm: Some(Acl::parse("u:bob").unwrap()),
        ..Default::default()
    };
    d.ns.create_stream(&a, "/acme/team", &team).await.unwrap();
    let mut b = as_user(&d, "bob", &bob).await;
    let r = create(
        &mut b,
        7,
        vec![
            topic("/acme/team:plain", 2, 1, &[]),
            // Configs that change the stream need its `admin` permission.
            topic(
                "/acme/team:compacted",
                1,
                1,
                &[("cleanup.policy", "compact")],
            ),
            topic("/acme/team:same", 1, 1, &[("cleanup.policy", "delete")]),
        ],
        false,
    )
    .await;
    assert_eq!(
        codes(&r),
        [
            ("/acme/team:plain".into(), 0),
            ("/acme/team:compacted".into(), 29),
            ("/acme/team:same".into(), 0)
        ]
    );
    assert!(!attributes(&d, "/acme/team").await.compact);
    let got = alter_incremental(
        &mut b,
        1,
        vec![
            incremental(
                TOPIC,
                "/acme/team:plain",
                &[("retention.ms", SET, Some("5"))],
            ),
            incremental(BROKER, "0", &[("message.max.bytes", SET, Some("5"))]),
            incremental(BROKER, "0", &[]),
        ],
    )
    .await;
    let codes: Vec<i16> = got.iter().map(|g| g.0).collect();
    assert_eq!(codes, [29, 31, 0]);
    let got = alter_legacy(&mut b, 2, BROKER, "", &[("num.partitions", "3")]).await;
    assert_eq!(got.0, 31);
    // A cluster admin is told the broker's configs are read-only.
    let mut c = as_admin(&d).await;
    let got = alter_legacy(&mut c, 0, BROKER, "0", &[("num.partitions", "3")]).await;
    assert_eq!(got.0, 40);
    assert!(got.1.contains("read-only"), "{}", got.1);
    let got = alter_legacy(&mut c, 0, 8, "0", &[("x", "3")]).await;
    assert_eq!(got.0, 42);
    let mut anon = TcpStream::connect(d.addr).await.unwrap();
    let r = describe(&mut anon, 4, vec![(TOPIC, "/acme/team:plain", None)]).await;
    assert_eq!(r.results[0].error_code, 29);
    let r = delete(&mut b, 6, &["/acme/team:plain"]).await;
    assert_eq!(deleted(&r), [("/acme/team:plain".into(), 0)]);
}

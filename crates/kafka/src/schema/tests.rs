//! Each shape against `kafka-protocol`'s encoder at every version: what it encodes walks
//! to the end, and every truncation or one-byte change the walk accepts decodes.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, MetadataRequest, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::*;

fn encode<M: Encodable>(m: &M, version: i16) -> Bytes {
    let mut b = BytesMut::new();
    m.encode(&mut b, version).unwrap();
    b.freeze()
}

/// `bytes` walks to its end, and with bytes after it walks to the same place; whatever
/// truncation or one-byte change the walk accepts decodes, ending where the walk ended.
fn agrees<M: Decodable>(key: ApiKey, version: i16, bytes: &[u8]) {
    let shape = shape(key).unwrap();
    let walked = check(shape, version, bytes).unwrap_or_else(|e| panic!("{key:?} v{version}: {e}"));
    assert_eq!(walked, bytes.len(), "{key:?} v{version}");
    // Decodes, ending the body where the walk said it ends.
    let decodes = |b: &[u8], walked: usize| {
        let mut buf = Bytes::copy_from_slice(b);
        M::decode(&mut buf, version).is_ok() && b.len() - buf.len() == walked
    };
    assert!(decodes(bytes, walked));
    // Bytes after the body (librdkafka's three after Metadata v12) are left unread.
    let mut trailing = bytes.to_vec();
    trailing.extend_from_slice(&[0, 0xff, 0x80]);
    assert_eq!(check(shape, version, &trailing), Ok(bytes.len()));
    assert!(decodes(&trailing, bytes.len()));
    let mut variants: Vec<Vec<u8>> = (0..bytes.len()).map(|n| bytes[..n].to_vec()).collect();
    for i in 0..bytes.len() {
        for v in [
            0x00,
            0x01,
            0x7f,
            0x80,
            0xff,
            bytes[i].wrapping_add(1),
            bytes[i].wrapping_sub(1),
        ] {
            let mut m = bytes.to_vec();
            m[i] = v;
            variants.push(m);
        }
    }
    for m in variants {
        // Only what the walk accepts is handed to the decoder: the rest could make it
        // allocate without bound, which is the point of the walk.
        if let Ok(walked) = check(shape, version, &m) {
            assert!(
                decodes(&m, walked),
                "{key:?} v{version}: the walk accepted {m:?}, which does not decode"
            );
        }
    }
}

#[test]
fn api_versions() {
    let r = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("librdkafka"))
        .with_client_software_version(StrBytes::from_static_str("2.0.2"));
    for v in 0..=4 {
        agrees::<ApiVersionsRequest>(ApiKey::ApiVersions, v, &encode(&r, v));
    }
}

#[test]
fn metadata() {
    let topic = |n: &'static str| {
        MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_static_str(n))))
    };
    for v in 0..=12 {
        let some = MetadataRequest::default()
            .with_topics(Some(vec![topic("a"), topic("orders"), topic("x.y-z")]))
            .with_allow_auto_topic_creation(v < 4)
            .with_include_topic_authorized_operations(v >= 8);
        agrees::<MetadataRequest>(ApiKey::Metadata, v, &encode(&some, v));
        let none = MetadataRequest::default().with_topics(Some(vec![]));
        agrees::<MetadataRequest>(ApiKey::Metadata, v, &encode(&none, v));
        if v >= 1 {
            let all = MetadataRequest::default().with_topics(None);
            agrees::<MetadataRequest>(ApiKey::Metadata, v, &encode(&all, v));
        }
    }
}

#[test]
fn hostile_counts_are_refused() {
    // Metadata v0 announcing 54 million topics in five bytes (kafka-protocol-rs#152).
    let e = check(
        shape(ApiKey::Metadata).unwrap(),
        0,
        &[0x03, 0x3c, 0x0c, 0x00, 0xb6],
    )
    .unwrap_err();
    assert!(e.contains("cannot fit"), "{e}");
    // The same at a flexible version: a varint count.
    let e = check(
        shape(ApiKey::Metadata).unwrap(),
        9,
        &[0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0],
    )
    .unwrap_err();
    assert!(e.contains("cannot fit"), "{e}");
    // A million and one elements, each really there, are over the budget.
    let mut b = ((MAX_ELEMENTS + 1) as i32).to_be_bytes().to_vec();
    b.extend(std::iter::repeat_n([0xff, 0xff], MAX_ELEMENTS + 1).flatten());
    b.push(1);
    let e = check(shape(ApiKey::Metadata).unwrap(), 4, &b).unwrap_err();
    assert!(e.contains("array elements in one request"), "{e}");
    // Bytes after a complete body are not the walk's to judge: a null topic list and one
    // byte after it walk as the five bytes before it.
    assert_eq!(
        check(
            shape(ApiKey::Metadata).unwrap(),
            1,
            &[0xff, 0xff, 0xff, 0xff, 0],
        ),
        Ok(4)
    );
    // A count that runs past the end is still refused, trailing bytes or not.
    let e = check(shape(ApiKey::Metadata).unwrap(), 1, &[0, 0, 0, 2, 0, 0]).unwrap_err();
    assert!(e.contains("runs past"), "{e}");
}

#[test]
fn every_advertised_api_has_a_shape() {
    for s in crate::ADVERTISED {
        assert!(
            shape(s.key).is_some(),
            "{:?} is advertised but has no shape",
            s.key
        );
    }
}

fn name(n: &'static str) -> TopicName {
    TopicName(StrBytes::from_static_str(n))
}

#[test]
fn produce() {
    use kafka_protocol::messages::ProduceRequest;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    for v in 3..=11 {
        let partition = |i, records: Option<&'static [u8]>| {
            PartitionProduceData::default()
                .with_index(i)
                .with_records(records.map(Bytes::from_static))
        };
        let r = ProduceRequest::default()
            .with_transactional_id(None)
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(name("orders"))
                    .with_partition_data(vec![partition(0, Some(b"batch")), partition(2, None)]),
                TopicProduceData::default().with_name(name("clicks")),
            ]);
        agrees::<ProduceRequest>(ApiKey::Produce, v, &encode(&r, v));
    }
}

#[test]
fn fetch() {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
    use kafka_protocol::messages::{BrokerId, FetchRequest};
    for v in 4..=12 {
        let mut p = FetchPartition::default()
            .with_partition(1)
            .with_fetch_offset(77)
            .with_partition_max_bytes(1 << 20);
        if v >= 5 {
            p = p.with_log_start_offset(3);
        }
        if v >= 9 {
            p = p.with_current_leader_epoch(-1);
        }
        let mut r = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(500)
            .with_min_bytes(1)
            .with_max_bytes(50 << 20)
            .with_isolation_level(0)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(name("orders"))
                    .with_partitions(vec![p.clone(), p.with_partition(2)]),
            ]);
        if v >= 7 {
            r = r
                .with_session_id(0)
                .with_session_epoch(-1)
                .with_forgotten_topics_data(vec![
                    ForgottenTopic::default()
                        .with_topic(name("old"))
                        .with_partitions(vec![0, 1, 2]),
                ]);
        }
        if v >= 11 {
            r = r.with_rack_id(StrBytes::from_static_str("rack-a"));
        }
        if v >= 12 {
            r = r.with_cluster_id(Some(StrBytes::from_static_str("c1")));
        }
        agrees::<FetchRequest>(ApiKey::Fetch, v, &encode(&r, v));
    }
}

#[test]
fn list_offsets() {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::{BrokerId, ListOffsetsRequest};
    for v in 1..=7 {
        let mut r = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![
                ListOffsetsTopic::default()
                    .with_name(name("orders"))
                    .with_partitions(vec![
                        ListOffsetsPartition::default()
                            .with_partition_index(0)
                            .with_timestamp(-2),
                        ListOffsetsPartition::default()
                            .with_partition_index(1)
                            .with_timestamp(1_700_000_000_000),
                    ]),
            ]);
        if v >= 2 {
            r = r.with_isolation_level(0);
        }
        agrees::<ListOffsetsRequest>(ApiKey::ListOffsets, v, &encode(&r, v));
    }
}

#[test]
fn find_coordinator() {
    use kafka_protocol::messages::FindCoordinatorRequest;
    for v in 0..=4 {
        let mut r = FindCoordinatorRequest::default();
        if v <= 3 {
            r = r.with_key(StrBytes::from_static_str("group-1"));
        } else {
            r = r.with_coordinator_keys(vec![
                StrBytes::from_static_str("group-1"),
                StrBytes::from_static_str("group-2"),
            ]);
        }
        agrees::<FindCoordinatorRequest>(ApiKey::FindCoordinator, v, &encode(&r, v));
    }
}

fn s(v: &'static str) -> StrBytes {
    StrBytes::from_static_str(v)
}

fn group(v: &'static str) -> kafka_protocol::messages::GroupId {
    kafka_protocol::messages::GroupId(s(v))
}

#[test]
fn consumer_groups() {
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use kafka_protocol::messages::leave_group_request::MemberIdentity;
    use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
    use kafka_protocol::messages::*;
    for v in 0..=9 {
        // A first join (no member id, no instance id) and a static member's.
        for instance in [None, Some(s("host-1"))] {
            let mut r = JoinGroupRequest::default()
                .with_group_id(group("g"))
                .with_session_timeout_ms(10_000)
                .with_member_id(s(""))
                .with_protocol_type(s("consumer"))
                .with_protocols(vec![
                    JoinGroupRequestProtocol::default()
                        .with_name(s("range"))
                        .with_metadata(Bytes::from_static(b"\0\x01\0\0")),
                    JoinGroupRequestProtocol::default().with_name(s("cooperative-sticky")),
                ]);
            if v >= 1 {
                r = r.with_rebalance_timeout_ms(30_000);
            }
            if v >= 5 {
                r = r.with_group_instance_id(instance.clone());
            }
            if v >= 8 {
                r = r.with_reason(Some(s("rebalance")));
            }
            agrees::<JoinGroupRequest>(ApiKey::JoinGroup, v, &encode(&r, v));
        }
    }
    for v in 0..=5 {
        let mut r = SyncGroupRequest::default()
            .with_group_id(group("g"))
            .with_generation_id(3)
            .with_member_id(s("m-1"))
            .with_assignments(vec![
                SyncGroupRequestAssignment::default()
                    .with_member_id(s("m-1"))
                    .with_assignment(Bytes::from_static(b"\0\x01")),
            ]);
        if v >= 5 {
            r = r
                .with_protocol_type(Some(s("consumer")))
                .with_protocol_name(None);
        }
        agrees::<SyncGroupRequest>(ApiKey::SyncGroup, v, &encode(&r, v));
    }
    for v in 0..=4 {
        let mut r = HeartbeatRequest::default()
            .with_group_id(group("g"))
            .with_generation_id(3)
            .with_member_id(s("m-1"));
        if v >= 3 {
            r = r.with_group_instance_id(Some(s("host-1")));
        }
        agrees::<HeartbeatRequest>(ApiKey::Heartbeat, v, &encode(&r, v));
    }
    for v in 0..=5 {
        let mut r = LeaveGroupRequest::default().with_group_id(group("g"));
        if v <= 2 {
            r = r.with_member_id(s("m-1"));
        } else {
            let mut m = MemberIdentity::default().with_member_id(s("m-1"));
            if v >= 5 {
                m = m.with_reason(Some(s("bye")));
            }
            r = r.with_members(vec![
                m,
                MemberIdentity::default().with_group_instance_id(Some(s("h"))),
            ]);
        }
        agrees::<LeaveGroupRequest>(ApiKey::LeaveGroup, v, &encode(&r, v));
    }
}

#[test]
fn offsets() {
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::offset_fetch_request::{
        OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
    };
    use kafka_protocol::messages::*;
    for v in 2..=9 {
        let partition = |i, meta| {
            OffsetCommitRequestPartition::default()
                .with_partition_index(i)
                .with_committed_offset(100)
                .with_committed_metadata(meta)
        };
        let mut r = OffsetCommitRequest::default()
            .with_group_id(group("g"))
            .with_generation_id_or_member_epoch(3)
            .with_member_id(s("m-1"))
            .with_topics(vec![
                OffsetCommitRequestTopic::default()
                    .with_name(name("orders"))
                    .with_partitions(vec![partition(0, Some(s("meta"))), partition(1, None)]),
            ]);
        if v <= 4 {
            r = r.with_retention_time_ms(-1);
        }
        agrees::<OffsetCommitRequest>(ApiKey::OffsetCommit, v, &encode(&r, v));
    }
    for v in 1..=9 {
        let r = if v <= 7 {
            let topics = vec![
                OffsetFetchRequestTopic::default()
                    .with_name(name("orders"))
                    .with_partition_indexes(vec![0, 1, 2]),
            ];
            let mut r = OffsetFetchRequest::default()
                .with_group_id(group("g"))
                .with_topics(Some(topics));
            if v >= 7 {
                r = r.with_require_stable(true);
            }
            r
        } else {
            let mut g = OffsetFetchRequestGroup::default()
                .with_group_id(group("g"))
                .with_topics(Some(vec![
                    OffsetFetchRequestTopics::default()
                        .with_name(name("orders"))
                        .with_partition_indexes(vec![0, 1]),
                ]));
            if v >= 9 {
                g = g.with_member_id(Some(s("m-1"))).with_member_epoch(5);
            }
            let all = OffsetFetchRequestGroup::default()
                .with_group_id(group("h"))
                .with_topics(None);
            OffsetFetchRequest::default().with_groups(vec![g, all])
        };
        agrees::<OffsetFetchRequest>(ApiKey::OffsetFetch, v, &encode(&r, v));
        if (2..=7).contains(&v) {
            let all = OffsetFetchRequest::default()
                .with_group_id(group("g"))
                .with_topics(None);
            agrees::<OffsetFetchRequest>(ApiKey::OffsetFetch, v, &encode(&all, v));
        }
    }
    for v in 0..=4 {
        let mut r = InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000);
        if v >= 3 {
            r = r
                .with_producer_id(kafka_protocol::messages::ProducerId(7))
                .with_producer_epoch(2);
        }
        agrees::<InitProducerIdRequest>(ApiKey::InitProducerId, v, &encode(&r, v));
    }
}

#[test]
fn group_admin() {
    use kafka_protocol::messages::*;
    for v in 0..=5 {
        let mut r = ListGroupsRequest::default();
        if v >= 4 {
            r = r.with_states_filter(vec![s("Stable"), s("Empty")]);
        }
        if v >= 5 {
            r = r.with_types_filter(vec![s("classic")]);
        }
        agrees::<ListGroupsRequest>(ApiKey::ListGroups, v, &encode(&r, v));
    }
    for v in 0..=5 {
        let mut r = DescribeGroupsRequest::default().with_groups(vec![group("g"), group("h")]);
        if v >= 3 {
            r = r.with_include_authorized_operations(true);
        }
        agrees::<DescribeGroupsRequest>(ApiKey::DescribeGroups, v, &encode(&r, v));
    }
    for v in 0..=2 {
        let r = DeleteGroupsRequest::default().with_groups_names(vec![group("g")]);
        agrees::<DeleteGroupsRequest>(ApiKey::DeleteGroups, v, &encode(&r, v));
    }
}

#[test]
fn topic_admin() {
    use kafka_protocol::messages::create_partitions_request::{
        CreatePartitionsAssignment, CreatePartitionsTopic,
    };
    use kafka_protocol::messages::create_topics_request::{
        CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
    };
    use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
    use kafka_protocol::messages::*;
    for v in 2..=7 {
        let r = CreateTopicsRequest::default()
            .with_topics(vec![
                CreatableTopic::default()
                    .with_name(name("orders"))
                    .with_num_partitions(3)
                    .with_replication_factor(-1)
                    .with_assignments(vec![
                        CreatableReplicaAssignment::default()
                            .with_partition_index(0)
                            .with_broker_ids(vec![BrokerId(0)]),
                    ])
                    .with_configs(vec![
                        CreatableTopicConfig::default()
                            .with_name(s("retention.ms"))
                            .with_value(Some(s("60000"))),
                        CreatableTopicConfig::default()
                            .with_name(s("cleanup.policy"))
                            .with_value(None),
                    ]),
            ])
            .with_timeout_ms(30_000)
            .with_validate_only(true);
        agrees::<CreateTopicsRequest>(ApiKey::CreateTopics, v, &encode(&r, v));
    }
    for v in 1..=6 {
        let r = if v <= 5 {
            DeleteTopicsRequest::default().with_topic_names(vec![name("orders"), name("clicks")])
        } else {
            DeleteTopicsRequest::default().with_topics(vec![
                DeleteTopicState::default().with_name(Some(name("orders"))),
                DeleteTopicState::default().with_name(None),
            ])
        }
        .with_timeout_ms(30_000);
        agrees::<DeleteTopicsRequest>(ApiKey::DeleteTopics, v, &encode(&r, v));
    }
    for v in 0..=3 {
        let r = CreatePartitionsRequest::default()
            .with_topics(vec![
                CreatePartitionsTopic::default()
                    .with_name(name("orders"))
                    .with_count(6)
                    .with_assignments(Some(vec![
                        CreatePartitionsAssignment::default().with_broker_ids(vec![BrokerId(0)]),
                    ])),
                CreatePartitionsTopic::default()
                    .with_name(name("clicks"))
                    .with_count(2)
                    .with_assignments(None),
            ])
            .with_timeout_ms(30_000);
        agrees::<CreatePartitionsRequest>(ApiKey::CreatePartitions, v, &encode(&r, v));
    }
}

#[test]
fn configs_cluster_and_sasl() {
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    use kafka_protocol::messages::*;
    for v in 1..=4 {
        let mut r = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s("orders"))
                .with_configuration_keys(Some(vec![s("retention.ms")])),
            DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s("clicks"))
                .with_configuration_keys(None),
        ]);
        if v >= 3 {
            r = r.with_include_documentation(true);
        }
        agrees::<DescribeConfigsRequest>(ApiKey::DescribeConfigs, v, &encode(&r, v));
    }
    for v in 0..=2 {
        use kafka_protocol::messages::alter_configs_request::{
            AlterConfigsResource, AlterableConfig,
        };
        let r = AlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s("orders"))
                .with_configs(vec![
                    AlterableConfig::default()
                        .with_name(s("retention.ms"))
                        .with_value(Some(s("1000"))),
                    AlterableConfig::default()
                        .with_name(s("x"))
                        .with_value(None),
                ]),
        ]);
        agrees::<AlterConfigsRequest>(ApiKey::AlterConfigs, v, &encode(&r, v));
    }
    for v in 0..=1 {
        use kafka_protocol::messages::incremental_alter_configs_request::{
            AlterConfigsResource, AlterableConfig,
        };
        let r = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s("orders"))
                .with_configs(vec![
                    AlterableConfig::default()
                        .with_name(s("retention.ms"))
                        .with_config_operation(0)
                        .with_value(Some(s("1000"))),
                    AlterableConfig::default()
                        .with_name(s("x"))
                        .with_config_operation(1)
                        .with_value(None),
                ]),
        ]);
        agrees::<IncrementalAlterConfigsRequest>(
            ApiKey::IncrementalAlterConfigs,
            v,
            &encode(&r, v),
        );
    }
    for v in 0..=1 {
        let mut r =
            DescribeClusterRequest::default().with_include_cluster_authorized_operations(true);
        if v >= 1 {
            r = r.with_endpoint_type(1);
        }
        agrees::<DescribeClusterRequest>(ApiKey::DescribeCluster, v, &encode(&r, v));
    }
    for v in 0..=1 {
        let r = SaslHandshakeRequest::default().with_mechanism(s("SCRAM-SHA-512"));
        agrees::<SaslHandshakeRequest>(ApiKey::SaslHandshake, v, &encode(&r, v));
    }
    for v in 0..=2 {
        let r = SaslAuthenticateRequest::default()
            .with_auth_bytes(Bytes::from_static(b"\0user\0trb_x.y"));
        agrees::<SaslAuthenticateRequest>(ApiKey::SaslAuthenticate, v, &encode(&r, v));
    }
}

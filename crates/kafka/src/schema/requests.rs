//! The shapes of the requests this door decodes, one per API, from the protocol's
//! reference (each request's fields and the versions that carry them).

use kafka_protocol::messages::ApiKey;

use super::Kind::*;
use super::{Field, Shape, between, since, tagged};

/// The shape of `key`'s request, if this door decodes it.
pub(crate) fn shape(key: ApiKey) -> Option<&'static Shape> {
    Some(match key {
        ApiKey::ApiVersions => &API_VERSIONS,
        ApiKey::Metadata => &METADATA,
        ApiKey::Produce => &PRODUCE,
        ApiKey::Fetch => &FETCH,
        ApiKey::ListOffsets => &LIST_OFFSETS,
        ApiKey::FindCoordinator => &FIND_COORDINATOR,
        ApiKey::JoinGroup => &JOIN_GROUP,
        ApiKey::SyncGroup => &SYNC_GROUP,
        ApiKey::Heartbeat => &HEARTBEAT,
        ApiKey::LeaveGroup => &LEAVE_GROUP,
        ApiKey::OffsetCommit => &OFFSET_COMMIT,
        ApiKey::OffsetFetch => &OFFSET_FETCH,
        ApiKey::ListGroups => &LIST_GROUPS,
        ApiKey::DescribeGroups => &DESCRIBE_GROUPS,
        ApiKey::DeleteGroups => &DELETE_GROUPS,
        ApiKey::InitProducerId => &INIT_PRODUCER_ID,
        ApiKey::CreateTopics => &CREATE_TOPICS,
        ApiKey::DeleteTopics => &DELETE_TOPICS,
        ApiKey::CreatePartitions => &CREATE_PARTITIONS,
        ApiKey::DescribeConfigs => &DESCRIBE_CONFIGS,
        ApiKey::AlterConfigs => &ALTER_CONFIGS,
        ApiKey::IncrementalAlterConfigs => &INCREMENTAL_ALTER_CONFIGS,
        ApiKey::DescribeCluster => &DESCRIBE_CLUSTER,
        ApiKey::SaslHandshake => &SASL_HANDSHAKE,
        ApiKey::SaslAuthenticate => &SASL_AUTHENTICATE,
        _ => return None,
    })
}

static API_VERSIONS: Shape = Shape {
    flexible_from: 3,
    fields: &[
        since(3, Str), // client_software_name
        since(3, Str), // client_software_version
    ],
};

static METADATA_TOPIC: [Field; 2] = [
    since(10, Uuid),            // topic_id
    since(0, Str).nullable(10), // name
];

static METADATA: Shape = Shape {
    flexible_from: 9,
    fields: &[
        since(0, Structs(&METADATA_TOPIC)).nullable(1), // topics
        since(4, Bool),                                 // allow_auto_topic_creation
        between(8, 10, Bool),                           // include_cluster_authorized_operations
        since(8, Bool),                                 // include_topic_authorized_operations
    ],
};

static PRODUCE_PARTITION: [Field; 2] = [
    since(0, Int32),             // index
    since(0, Bytes).nullable(0), // records
];

static PRODUCE_TOPIC: [Field; 3] = [
    between(0, 12, Str),                   // name
    since(13, Uuid),                       // topic_id
    since(0, Structs(&PRODUCE_PARTITION)), // partition_data
];

/// Versions 0 to 2 carry message sets v0/v1, which are refused before their shape matters.
static PRODUCE: Shape = Shape {
    flexible_from: 9,
    fields: &[
        since(3, Str).nullable(3),         // transactional_id
        since(0, Int16),                   // acks
        since(0, Int32),                   // timeout_ms
        since(0, Structs(&PRODUCE_TOPIC)), // topic_data
    ],
};

static FETCH_PARTITION: [Field; 8] = [
    since(0, Int32),      // partition
    since(9, Int32),      // current_leader_epoch
    since(0, Int64),      // fetch_offset
    since(12, Int32),     // last_fetched_epoch
    since(5, Int64),      // log_start_offset
    since(0, Int32),      // partition_max_bytes
    tagged(0, 17, Uuid),  // replica_directory_id
    tagged(1, 18, Int64), // high_watermark
];

static REPLICA_STATE: [Field; 2] = [
    since(0, Int32), // replica_id
    since(0, Int64), // replica_epoch
];

static FETCH_TOPIC: [Field; 3] = [
    between(0, 12, Str),                 // topic
    since(13, Uuid),                     // topic_id
    since(0, Structs(&FETCH_PARTITION)), // partitions
];

static FORGOTTEN_TOPIC: [Field; 3] = [
    between(7, 12, Str),     // topic
    since(13, Uuid),         // topic_id
    since(7, Array(&Int32)), // partitions
];

static FETCH: Shape = Shape {
    flexible_from: 12,
    fields: &[
        tagged(0, 12, Str).nullable(12),       // cluster_id
        tagged(1, 15, Struct(&REPLICA_STATE)), // replica_state
        between(0, 14, Int32),                 // replica_id
        since(0, Int32),                       // max_wait_ms
        since(0, Int32),                       // min_bytes
        since(3, Int32),                       // max_bytes
        since(4, Int8),                        // isolation_level
        since(7, Int32),                       // session_id
        since(7, Int32),                       // session_epoch
        since(0, Structs(&FETCH_TOPIC)),       // topics
        since(7, Structs(&FORGOTTEN_TOPIC)),   // forgotten_topics_data
        since(11, Str),                        // rack_id
    ],
};

static LIST_OFFSETS_PARTITION: [Field; 3] = [
    since(0, Int32), // partition_index
    since(4, Int32), // current_leader_epoch
    since(0, Int64), // timestamp
];

static LIST_OFFSETS_TOPIC: [Field; 2] = [
    since(0, Str),                              // name
    since(0, Structs(&LIST_OFFSETS_PARTITION)), // partitions
];

static LIST_OFFSETS: Shape = Shape {
    flexible_from: 6,
    fields: &[
        since(0, Int32),                        // replica_id
        since(2, Int8),                         // isolation_level
        since(0, Structs(&LIST_OFFSETS_TOPIC)), // topics
        since(10, Int32),                       // timeout_ms
    ],
};

static FIND_COORDINATOR: Shape = Shape {
    flexible_from: 3,
    fields: &[
        between(0, 3, Str), // key
        since(1, Int8),     // key_type
        since(4, Strings),  // coordinator_keys
    ],
};

static JOIN_GROUP_PROTOCOL: [Field; 2] = [
    since(0, Str),   // name
    since(0, Bytes), // metadata
];

static JOIN_GROUP: Shape = Shape {
    flexible_from: 6,
    fields: &[
        since(0, Str),                           // group_id
        since(0, Int32),                         // session_timeout_ms
        since(1, Int32),                         // rebalance_timeout_ms
        since(0, Str),                           // member_id
        since(5, Str).nullable(5),               // group_instance_id
        since(0, Str),                           // protocol_type
        since(0, Structs(&JOIN_GROUP_PROTOCOL)), // protocols
        since(8, Str).nullable(8),               // reason
    ],
};

static SYNC_GROUP_ASSIGNMENT: [Field; 2] = [
    since(0, Str),   // member_id
    since(0, Bytes), // assignment
];

static SYNC_GROUP: Shape = Shape {
    flexible_from: 4,
    fields: &[
        since(0, Str),                             // group_id
        since(0, Int32),                           // generation_id
        since(0, Str),                             // member_id
        since(3, Str).nullable(3),                 // group_instance_id
        since(5, Str).nullable(5),                 // protocol_type
        since(5, Str).nullable(5),                 // protocol_name
        since(0, Structs(&SYNC_GROUP_ASSIGNMENT)), // assignments
    ],
};

static HEARTBEAT: Shape = Shape {
    flexible_from: 4,
    fields: &[
        since(0, Str),             // group_id
        since(0, Int32),           // generation_id
        since(0, Str),             // member_id
        since(3, Str).nullable(3), // group_instance_id
    ],
};

static LEAVE_GROUP_MEMBER: [Field; 3] = [
    since(0, Str),             // member_id
    since(0, Str).nullable(0), // group_instance_id
    since(5, Str).nullable(5), // reason
];

static LEAVE_GROUP: Shape = Shape {
    flexible_from: 4,
    fields: &[
        since(0, Str),                          // group_id
        between(0, 2, Str),                     // member_id
        since(3, Structs(&LEAVE_GROUP_MEMBER)), // members
    ],
};

static OFFSET_COMMIT_PARTITION: [Field; 4] = [
    since(0, Int32),           // partition_index
    since(0, Int64),           // committed_offset
    since(6, Int32),           // committed_leader_epoch
    since(0, Str).nullable(0), // committed_metadata
];

static OFFSET_COMMIT_TOPIC: [Field; 2] = [
    since(0, Str),                               // name
    since(0, Structs(&OFFSET_COMMIT_PARTITION)), // partitions
];

static OFFSET_COMMIT: Shape = Shape {
    flexible_from: 8,
    fields: &[
        since(0, Str),                           // group_id
        since(1, Int32),                         // generation_id_or_member_epoch
        since(1, Str),                           // member_id
        since(7, Str).nullable(7),               // group_instance_id
        between(2, 4, Int64),                    // retention_time_ms
        since(0, Structs(&OFFSET_COMMIT_TOPIC)), // topics
    ],
};

static OFFSET_FETCH_TOPIC: [Field; 2] = [
    since(0, Str),           // name
    since(0, Array(&Int32)), // partition_indexes
];

static OFFSET_FETCH_GROUP: [Field; 4] = [
    since(8, Str),                                      // group_id
    since(9, Str).nullable(9),                          // member_id
    since(9, Int32),                                    // member_epoch
    since(8, Structs(&OFFSET_FETCH_TOPIC)).nullable(8), // topics
];

static OFFSET_FETCH: Shape = Shape {
    flexible_from: 6,
    fields: &[
        between(0, 7, Str),                                      // group_id
        between(0, 7, Structs(&OFFSET_FETCH_TOPIC)).nullable(2), // topics
        since(8, Structs(&OFFSET_FETCH_GROUP)),                  // groups
        since(7, Bool),                                          // require_stable
    ],
};

static LIST_GROUPS: Shape = Shape {
    flexible_from: 3,
    fields: &[
        since(4, Strings), // states_filter
        since(5, Strings), // types_filter
    ],
};

static DESCRIBE_GROUPS: Shape = Shape {
    flexible_from: 5,
    fields: &[
        since(0, Strings), // groups
        since(3, Bool),    // include_authorized_operations
    ],
};

static DELETE_GROUPS: Shape = Shape {
    flexible_from: 2,
    fields: &[since(0, Strings)], // groups_names
};

static INIT_PRODUCER_ID: Shape = Shape {
    flexible_from: 2,
    fields: &[
        since(0, Str).nullable(0), // transactional_id
        since(0, Int32),           // transaction_timeout_ms
        since(3, Int64),           // producer_id
        since(3, Int16),           // producer_epoch
    ],
};

static CREATABLE_ASSIGNMENT: [Field; 2] = [
    since(0, Int32),         // partition_index
    since(0, Array(&Int32)), // broker_ids
];

static CREATABLE_CONFIG: [Field; 2] = [
    since(0, Str),             // name
    since(0, Str).nullable(0), // value
];

static CREATABLE_TOPIC: [Field; 5] = [
    since(0, Str),                            // name
    since(0, Int32),                          // num_partitions
    since(0, Int16),                          // replication_factor
    since(0, Structs(&CREATABLE_ASSIGNMENT)), // assignments
    since(0, Structs(&CREATABLE_CONFIG)),     // configs
];

static CREATE_TOPICS: Shape = Shape {
    flexible_from: 5,
    fields: &[
        since(0, Structs(&CREATABLE_TOPIC)), // topics
        since(0, Int32),                     // timeout_ms
        since(1, Bool),                      // validate_only
    ],
};

static DELETE_TOPIC_STATE: [Field; 2] = [
    since(6, Str).nullable(6), // name
    since(6, Uuid),            // topic_id
];

static DELETE_TOPICS: Shape = Shape {
    flexible_from: 4,
    fields: &[
        since(6, Structs(&DELETE_TOPIC_STATE)), // topics
        between(0, 5, Strings),                 // topic_names
        since(0, Int32),                        // timeout_ms
    ],
};

static CREATE_PARTITIONS_ASSIGNMENT: [Field; 1] = [since(0, Array(&Int32))]; // broker_ids

static CREATE_PARTITIONS_TOPIC: [Field; 3] = [
    since(0, Str),                                                // name
    since(0, Int32),                                              // count
    since(0, Structs(&CREATE_PARTITIONS_ASSIGNMENT)).nullable(0), // assignments
];

static CREATE_PARTITIONS: Shape = Shape {
    flexible_from: 2,
    fields: &[
        since(0, Structs(&CREATE_PARTITIONS_TOPIC)), // topics
        since(0, Int32),                             // timeout_ms
        since(0, Bool),                              // validate_only
    ],
};

static DESCRIBE_CONFIGS_RESOURCE: [Field; 3] = [
    since(0, Int8),                // resource_type
    since(0, Str),                 // resource_name
    since(0, Strings).nullable(0), // configuration_keys
];

static DESCRIBE_CONFIGS: Shape = Shape {
    flexible_from: 4,
    fields: &[
        since(0, Structs(&DESCRIBE_CONFIGS_RESOURCE)), // resources
        since(1, Bool),                                // include_synonyms
        since(3, Bool),                                // include_documentation
    ],
};

static ALTERABLE_CONFIG: [Field; 2] = [
    since(0, Str),             // name
    since(0, Str).nullable(0), // value
];

static ALTER_CONFIGS_RESOURCE: [Field; 3] = [
    since(0, Int8),                       // resource_type
    since(0, Str),                        // resource_name
    since(0, Structs(&ALTERABLE_CONFIG)), // configs
];

static ALTER_CONFIGS: Shape = Shape {
    flexible_from: 2,
    fields: &[
        since(0, Structs(&ALTER_CONFIGS_RESOURCE)), // resources
        since(0, Bool),                             // validate_only
    ],
};

static INCREMENTAL_CONFIG: [Field; 3] = [
    since(0, Str),             // name
    since(0, Int8),            // config_operation
    since(0, Str).nullable(0), // value
];

static INCREMENTAL_RESOURCE: [Field; 3] = [
    since(0, Int8),                         // resource_type
    since(0, Str),                          // resource_name
    since(0, Structs(&INCREMENTAL_CONFIG)), // configs
];

static INCREMENTAL_ALTER_CONFIGS: Shape = Shape {
    flexible_from: 1,
    fields: &[
        since(0, Structs(&INCREMENTAL_RESOURCE)), // resources
        since(0, Bool),                           // validate_only
    ],
};

static DESCRIBE_CLUSTER: Shape = Shape {
    flexible_from: 0,
    fields: &[
        since(0, Bool), // include_cluster_authorized_operations
        since(1, Int8), // endpoint_type
        since(2, Bool), // include_fenced_brokers
    ],
};

/// Never flexible.
static SASL_HANDSHAKE: Shape = Shape {
    flexible_from: i16::MAX,
    fields: &[since(0, Str)], // mechanism
};

static SASL_AUTHENTICATE: Shape = Shape {
    flexible_from: 2,
    fields: &[since(0, Bytes)], // auth_bytes
};

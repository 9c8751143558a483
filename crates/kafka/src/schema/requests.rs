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

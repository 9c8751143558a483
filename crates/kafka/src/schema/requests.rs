//! The shapes of the requests this door decodes, one per API, from the protocol's
//! reference (each request's fields and the versions that carry them).

use kafka_protocol::messages::ApiKey;

use super::Kind::*;
use super::{Field, Shape, between, since};

/// The shape of `key`'s request, if this door decodes it.
pub(crate) fn shape(key: ApiKey) -> Option<&'static Shape> {
    Some(match key {
        ApiKey::ApiVersions => &API_VERSIONS,
        ApiKey::Metadata => &METADATA,
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

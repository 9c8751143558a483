//! Conversions between the wire messages and the namespace's domain types.

use tributary_proto::v1;
use tributary_volume::{
    self as volume, Durability, PartitionStats, StreamAttributes, StreamAttributesPatch,
};

use crate::ApiError;

pub fn patch(a: Option<v1::StreamAttributes>) -> Result<StreamAttributesPatch, ApiError> {
    let a = a.unwrap_or_default();
    let durability = match v1::Durability::try_from(a.durability) {
        Ok(v1::Durability::Unspecified) => None,
        Ok(v1::Durability::Sync) => Some(Durability::Sync),
        Ok(v1::Durability::Buffered) => Some(Durability::Buffered),
        Err(_) => {
            return Err(ApiError::InvalidArgument {
                field: "attributes.durability",
                message: format!("unknown value {}", a.durability),
            });
        }
    };
    Ok(StreamAttributesPatch {
        default_partitions: a.default_partitions,
        autocreate_topics: a.autocreate_topics,
        durability,
        ttl_ms: a.ttl_ms,
        max_message_bytes: a.max_message_bytes,
    })
}

pub fn attributes(a: &StreamAttributes) -> v1::StreamAttributes {
    v1::StreamAttributes {
        default_partitions: Some(a.default_partitions),
        autocreate_topics: Some(a.autocreate_topics),
        durability: match a.durability {
            Durability::Sync => v1::Durability::Sync,
            Durability::Buffered => v1::Durability::Buffered,
        } as i32,
        ttl_ms: Some(a.ttl_ms),
        max_message_bytes: Some(a.max_message_bytes),
    }
}

pub fn volume(v: volume::VolumeInfo) -> v1::Volume {
    v1::Volume {
        path: v.path,
        owner: v.owner,
        created_ms: v.created_ms,
        stream_count: v.stream_count,
    }
}

pub fn stream(s: volume::StreamInfo) -> v1::Stream {
    v1::Stream {
        path: s.path,
        attributes: Some(attributes(&s.attributes)),
        created_ms: s.created_ms,
        topic_count: s.topic_count,
        partition_count: s.partition_count,
        records: s.records,
        bytes: s.bytes,
    }
}

pub fn topic(t: volume::TopicInfo) -> v1::Topic {
    v1::Topic {
        path: t.path,
        partitions: t.partitions,
        created_ms: t.created_ms,
        partition_info: t
            .partition_stats
            .iter()
            .enumerate()
            .map(|(i, p)| partition(i as u32, p))
            .collect(),
    }
}

fn partition(partition: u32, p: &PartitionStats) -> v1::PartitionInfo {
    v1::PartitionInfo {
        partition,
        earliest_offset: p.log_start,
        latest_offset: p.high_watermark,
        records: p.records,
        bytes: p.bytes,
        earliest_append_ms: p.first_append_ms,
        latest_append_ms: p.last_append_ms,
    }
}

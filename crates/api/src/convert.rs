//! Conversions between the wire messages and the namespace's domain types.

use tributary_core::{Acl, TimestampType};
use tributary_proto::v1;
use tributary_volume::{
    self as volume, Durability, PartitionStats, Quotas, StreamAttributes, StreamAttributesPatch,
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
    let timestamp_type = match v1::TimestampType::try_from(a.timestamp_type) {
        Ok(v1::TimestampType::Unspecified) => None,
        Ok(v1::TimestampType::CreateTime) => Some(TimestampType::CreateTime),
        Ok(v1::TimestampType::LogAppendTime) => Some(TimestampType::LogAppendTime),
        Err(_) => {
            return Err(ApiError::InvalidArgument {
                field: "attributes.timestamp_type",
                message: format!("unknown value {}", a.timestamp_type),
            });
        }
    };
    Ok(StreamAttributesPatch {
        timestamp_type,
        default_partitions: a.default_partitions,
        autocreate_topics: a.autocreate_topics,
        durability,
        ttl_ms: a.ttl_ms,
        max_message_bytes: a.max_message_bytes,
        max_bytes_per_partition: a.max_bytes_per_partition,
        compact: a.compact,
        delete_retention_ms: a.delete_retention_ms,
        produce_perm: acl("attributes.produce_perm", a.produce_perm.as_deref())?,
        consume_perm: acl("attributes.consume_perm", a.consume_perm.as_deref())?,
        topic_perm: acl("attributes.topic_perm", a.topic_perm.as_deref())?,
        copy_perm: acl("attributes.copy_perm", a.copy_perm.as_deref())?,
        admin_perm: acl("attributes.admin_perm", a.admin_perm.as_deref())?,
    })
}

/// Parses an optional ACL expression, naming the field and column on error.
pub fn acl(field: &'static str, text: Option<&str>) -> Result<Option<Acl>, ApiError> {
    text.map(|t| {
        Acl::parse(t).map_err(|e| ApiError::InvalidArgument {
            field,
            message: e.to_string(),
        })
    })
    .transpose()
}

pub fn quotas(q: Option<v1::VolumeQuotas>) -> Quotas {
    let q = q.unwrap_or_default();
    Quotas {
        max_bytes: q.max_bytes,
        max_streams: q.max_streams,
        max_topics: q.max_topics,
    }
}

pub fn user(u: volume::UserInfo) -> v1::User {
    v1::User {
        name: u.name,
        groups: u.groups,
        cluster_admin: u.cluster_admin,
        created_ms: u.created_ms,
        kafka_default_stream: u.kafka_default_stream,
    }
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
        max_bytes_per_partition: Some(a.max_bytes_per_partition),
        timestamp_type: timestamp_type(a.timestamp_type) as i32,
        compact: Some(a.compact),
        delete_retention_ms: Some(a.delete_retention_ms),
        produce_perm: Some(a.produce_perm.to_string()),
        consume_perm: Some(a.consume_perm.to_string()),
        topic_perm: Some(a.topic_perm.to_string()),
        copy_perm: Some(a.copy_perm.to_string()),
        admin_perm: Some(a.admin_perm.to_string()),
    }
}

pub fn timestamp_type(t: TimestampType) -> v1::TimestampType {
    match t {
        TimestampType::CreateTime => v1::TimestampType::CreateTime,
        TimestampType::LogAppendTime => v1::TimestampType::LogAppendTime,
    }
}

pub fn volume(v: volume::VolumeInfo) -> v1::Volume {
    v1::Volume {
        path: v.path,
        owner: v.owner,
        created_ms: v.created_ms,
        stream_count: v.stream_count,
        admin_perm: v.admin_perm,
        quotas: Some(v1::VolumeQuotas {
            max_bytes: v.quotas.max_bytes,
            max_streams: v.quotas.max_streams,
            max_topics: v.quotas.max_topics,
        }),
        topic_count: v.topic_count,
        bytes: v.bytes,
    }
}

pub fn stream(s: volume::StreamInfo) -> v1::Stream {
    v1::Stream {
        path: s.path,
        attributes: Some(attributes(&s.attributes)),
        created_ms: s.created_ms,
        topic_count: s.topic_count,
        partition_count: s.partition_count,
        records: s.totals.records,
        bytes: s.totals.bytes,
        purged_records: s.totals.purged_records,
        purged_bytes: s.totals.purged_bytes,
        earliest_append_ms: s.totals.earliest_append_ms,
        mirror_of: s.mirror_of.unwrap_or_default(),
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
        purged_records: p.purged_records,
        purged_bytes: p.purged_bytes,
    }
}

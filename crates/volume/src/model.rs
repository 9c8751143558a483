//! The namespace's persistent rows and their catalog keys, and the attribute rules.
//!
//! Catalog keys (opaque to storage, under its catalog prefix):
//!
//! ```text
//!   'u' | user name                        -> UserRow   (JSON)
//!   'v' | volume path                      -> VolumeRow (JSON)
//!   's' | stream path                      -> StreamRow (JSON)
//!   't' | stream id (16 bytes) | topic     -> TopicRow  (JSON)
//!   'l' | stream id (16 bytes) | link id   -> LinkRow   (JSON): an upstream of the stream
//! ```
//!
//! Topics hang off the stream's id, not its path: a stream deleted and created again at the
//! same path shares nothing with the old one.

use serde::{Deserialize, Serialize};
use tributary_storage::PartitionId;

use tributary_core::TimestampType;
use tributary_core::acl::Acl;
use uuid::Uuid;

use crate::{Error, Result};

pub const DEFAULT_TTL_MS: u64 = 7 * 24 * 3600 * 1000;
/// How long a compacted stream keeps a tombstone (Kafka's `delete.retention.ms` default).
pub const DEFAULT_DELETE_RETENTION_MS: u64 = 24 * 3600 * 1000;
pub const DEFAULT_MAX_MESSAGE_BYTES: u32 = 1 << 20;
/// Largest `max_message_bytes` a stream may set; the server's request limit is above it.
pub const MAX_MESSAGE_BYTES_LIMIT: u32 = 16 << 20;
pub const MAX_PARTITIONS: u32 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    Sync,
    Buffered,
}

impl From<Durability> for tributary_storage::Durability {
    fn from(d: Durability) -> Self {
        match d {
            Durability::Sync => tributary_storage::Durability::Sync,
            Durability::Buffered => tributary_storage::Durability::Buffered,
        }
    }
}

/// The five per-stream permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Perm {
    Produce,
    Consume,
    Topic,
    Copy,
    Admin,
}

impl Perm {
    pub const ALL: [Perm; 5] = [
        Perm::Produce,
        Perm::Consume,
        Perm::Topic,
        Perm::Copy,
        Perm::Admin,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Perm::Produce => "produce",
            Perm::Consume => "consume",
            Perm::Topic => "topic",
            Perm::Copy => "copy",
            Perm::Admin => "admin",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamAttributes {
    pub default_partitions: u32,
    pub autocreate_topics: bool,
    pub durability: Durability,
    /// 0 keeps records forever.
    pub ttl_ms: u64,
    pub max_message_bytes: u32,
    /// Retention by size: the oldest batches of a partition above this go; 0 is no cap.
    #[serde(default)]
    pub max_bytes_per_partition: u64,
    #[serde(default)]
    pub timestamp_type: TimestampType,
    /// Key compaction: each partition keeps the latest record of every key; records need keys.
    #[serde(default)]
    pub compact: bool,
    /// In a compacted stream, how long a tombstone (a record with an empty value) stays once
    /// it is its key's latest record, counted from its append time.
    #[serde(default = "default_delete_retention_ms")]
    pub delete_retention_ms: u64,
    pub produce_perm: Acl,
    pub consume_perm: Acl,
    pub topic_perm: Acl,
    pub copy_perm: Acl,
    pub admin_perm: Acl,
}

/// Attributes given in a request; `None` keeps the current (or default) value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamAttributesPatch {
    pub default_partitions: Option<u32>,
    pub autocreate_topics: Option<bool>,
    pub durability: Option<Durability>,
    pub ttl_ms: Option<u64>,
    pub max_message_bytes: Option<u32>,
    pub max_bytes_per_partition: Option<u64>,
    pub timestamp_type: Option<TimestampType>,
    pub compact: Option<bool>,
    pub delete_retention_ms: Option<u64>,
    pub produce_perm: Option<Acl>,
    pub consume_perm: Option<Acl>,
    pub topic_perm: Option<Acl>,
    pub copy_perm: Option<Acl>,
    pub admin_perm: Option<Acl>,
}

impl StreamAttributes {
    /// Defaults for a stream made by `creator`: every permission is the creator's alone.
    pub fn defaults_for(creator: &str) -> Self {
        let me = Acl::user(creator);
        Self {
            default_partitions: 1,
            autocreate_topics: true,
            durability: Durability::Sync,
            ttl_ms: DEFAULT_TTL_MS,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_bytes_per_partition: 0,
            timestamp_type: TimestampType::CreateTime,
            compact: false,
            delete_retention_ms: DEFAULT_DELETE_RETENTION_MS,
            produce_perm: me.clone(),
            consume_perm: me.clone(),
            topic_perm: me.clone(),
            copy_perm: me.clone(),
            admin_perm: me,
        }
    }

    pub fn perm(&self, p: Perm) -> &Acl {
        match p {
            Perm::Produce => &self.produce_perm,
            Perm::Consume => &self.consume_perm,
            Perm::Topic => &self.topic_perm,
            Perm::Copy => &self.copy_perm,
            Perm::Admin => &self.admin_perm,
        }
    }

    pub fn apply(&self, p: &StreamAttributesPatch) -> Result<Self> {
        let pick = |new: &Option<Acl>, old: &Acl| new.clone().unwrap_or_else(|| old.clone());
        let a = Self {
            default_partitions: p.default_partitions.unwrap_or(self.default_partitions),
            autocreate_topics: p.autocreate_topics.unwrap_or(self.autocreate_topics),
            durability: p.durability.unwrap_or(self.durability),
            ttl_ms: p.ttl_ms.unwrap_or(self.ttl_ms),
            max_message_bytes: p.max_message_bytes.unwrap_or(self.max_message_bytes),
            max_bytes_per_partition: p
                .max_bytes_per_partition
                .unwrap_or(self.max_bytes_per_partition),
            timestamp_type: p.timestamp_type.unwrap_or(self.timestamp_type),
            compact: p.compact.unwrap_or(self.compact),
            delete_retention_ms: p.delete_retention_ms.unwrap_or(self.delete_retention_ms),
            produce_perm: pick(&p.produce_perm, &self.produce_perm),
            consume_perm: pick(&p.consume_perm, &self.consume_perm),
            topic_perm: pick(&p.topic_perm, &self.topic_perm),
            copy_perm: pick(&p.copy_perm, &self.copy_perm),
            admin_perm: pick(&p.admin_perm, &self.admin_perm),
        };
        check_partitions("attributes.default_partitions", a.default_partitions)?;
        if a.max_message_bytes == 0 || a.max_message_bytes > MAX_MESSAGE_BYTES_LIMIT {
            return Err(Error::invalid(
                "attributes.max_message_bytes",
                format!(
                    "{} is outside 1 to {MAX_MESSAGE_BYTES_LIMIT}",
                    a.max_message_bytes
                ),
            ));
        }
        Ok(a)
    }
}

fn default_delete_retention_ms() -> u64 {
    DEFAULT_DELETE_RETENTION_MS
}

/// Limits of a volume; `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quotas {
    pub max_bytes: Option<u64>,
    pub max_streams: Option<u64>,
    pub max_topics: Option<u64>,
}

pub fn check_partitions(field: &str, n: u32) -> Result<()> {
    if n == 0 || n > MAX_PARTITIONS {
        return Err(Error::invalid(
            field,
            format!("{n} partitions is outside 1 to {MAX_PARTITIONS}"),
        ));
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeRow {
    pub path: String,
    pub owner: String,
    pub created_ms: i64,
    /// Who administers the volume and every stream in it.
    pub admin_perm: Acl,
    pub quotas: Quotas,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamRow {
    pub id: Uuid,
    pub path: String,
    pub attributes: StreamAttributes,
    pub created_ms: i64,
    /// An offset-keeping mirror (read-only for producers): the `URL/SOURCE` it mirrors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror_of: Option<String>,
}

/// Where a link starts in partitions it has no position for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkStart {
    #[default]
    Earliest,
    Latest,
}

/// A replica link: stream `source` at `url` feeds the stream `stream_id` of this cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkRow {
    pub id: Uuid,
    pub stream_id: Uuid,
    pub stream: String,
    /// `url` and `source` joined: `URL/SOURCE_STREAM`, as the link is named.
    pub from: String,
    pub url: String,
    pub source: String,
    /// The credential for the upstream: a token, or a file (read at every connection).
    /// A token has to be usable, so it is kept as given, in the data directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<String>,
    pub start: LinkStart,
    pub mirror: bool,
    pub paused: bool,
    pub created_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRow {
    pub name: String,
    /// Storage partition id of each partition, by partition number.
    pub partitions: Vec<PartitionId>,
    pub created_ms: i64,
}

pub fn user_key(name: &str) -> Vec<u8> {
    [b"u".as_slice(), name.as_bytes()].concat()
}

pub fn volume_key(path: &str) -> Vec<u8> {
    [b"v".as_slice(), path.as_bytes()].concat()
}

pub fn stream_key(path: &str) -> Vec<u8> {
    [b"s".as_slice(), path.as_bytes()].concat()
}

pub fn topics_prefix(stream: Uuid) -> Vec<u8> {
    [b"t".as_slice(), stream.as_bytes()].concat()
}

pub fn links_prefix(stream: Uuid) -> Vec<u8> {
    [b"l".as_slice(), stream.as_bytes()].concat()
}

pub fn link_key(stream: Uuid, link: Uuid) -> Vec<u8> {
    [b"l".as_slice(), stream.as_bytes(), link.as_bytes()].concat()
}

pub fn topic_key(stream: Uuid, topic: &str) -> Vec<u8> {
    [topics_prefix(stream).as_slice(), topic.as_bytes()].concat()
}

pub fn encode<T: Serialize>(row: &T) -> Vec<u8> {
    serde_json::to_vec(row).expect("rows serialize")
}

pub fn decode<T: for<'de> Deserialize<'de>>(what: &'static str, v: &[u8]) -> Result<T> {
    serde_json::from_slice(v).map_err(|e| {
        Error::Storage(tributary_storage::Error::Corrupt {
            what,
            detail: e.to_string(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_patches() {
        let d = StreamAttributes::defaults_for("alice");
        assert_eq!(
            (d.default_partitions, d.ttl_ms, d.durability),
            (1, 7 * 86_400_000, Durability::Sync)
        );
        assert!(
            Perm::ALL.iter().all(|&p| d.perm(p) == &Acl::user("alice")),
            "the creator holds every permission"
        );
        let p = StreamAttributesPatch {
            default_partitions: Some(3),
            ..Default::default()
        };
        assert_eq!(d.apply(&p).unwrap().default_partitions, 3);
        let p = StreamAttributesPatch {
            default_partitions: Some(0),
            ..Default::default()
        };
        assert!(
            d.apply(&p)
                .unwrap_err()
                .to_string()
                .starts_with("attributes.default_partitions")
        );
        let p = StreamAttributesPatch {
            max_message_bytes: Some(MAX_MESSAGE_BYTES_LIMIT + 1),
            ..Default::default()
        };
        assert!(d.apply(&p).is_err());
    }

    #[test]
    fn topic_keys_of_one_stream_share_its_prefix_only() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        assert!(topic_key(a, "x").starts_with(&topics_prefix(a)));
        assert!(!topic_key(b, "x").starts_with(&topics_prefix(a)));
    }
}

//! Kafka's topic configs as a stream's attributes (design §9). A topic's configs are its
//! stream's, so altering one topic's alters its siblings'. Each settable key maps onto one
//! attribute both ways; keys clients read but a stream has no attribute for are reported
//! read-only; the broker's configs are a small read-only set. CreateTopics, DescribeConfigs,
//! AlterConfigs and IncrementalAlterConfigs share this table.

use tributary_core::TimestampType;
use tributary_volume::model::{DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_TTL_MS};
use tributary_volume::{StreamAttributes, StreamAttributesPatch};

use crate::{Error, Result};

/// Kafka's config types (DescribeConfigs v3+).
const BOOLEAN: i8 = 1;
const STRING: i8 = 2;
const INT: i8 = 3;
const LONG: i8 = 5;
const LIST: i8 = 7;

/// Where a reported value comes from: set on the topic (here, its stream), set in the
/// server's configuration, or the default.
const SOURCE_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;
pub(crate) const SOURCE_DEFAULT: i8 = 5;

/// One config as DescribeConfigs and CreateTopics v5+ report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Described {
    pub name: &'static str,
    pub value: String,
    pub read_only: bool,
    pub source: i8,
    /// The broker-wide key that sets its default, and that default (a synonym).
    pub default: Option<(&'static str, String)>,
    pub config_type: i8,
    pub doc: &'static str,
}

/// One topic config: its Kafka name, the broker-wide key of its default, its type, and
/// how it reads off a stream's attributes.
struct TopicKey {
    name: &'static str,
    broker_name: &'static str,
    config_type: i8,
    /// Reported, never set: the stream has no attribute for it.
    read_only: bool,
    doc: &'static str,
    get: fn(&StreamAttributes) -> String,
}

const RETENTION_MS: &str = "retention.ms";
const RETENTION_BYTES: &str = "retention.bytes";
const CLEANUP_POLICY: &str = "cleanup.policy";

static TOPIC_KEYS: &[TopicKey] = &[
    TopicKey {
        name: CLEANUP_POLICY,
        broker_name: "log.cleanup.policy",
        config_type: LIST,
        read_only: false,
        doc: "The stream's `compact`: `delete` (not compacted), `compact` (compacted, \
              records kept whatever their age and size), or `compact,delete` (compacted, \
              and a TTL or size cap applies too).",
        get: |a| cleanup_policy(a).to_owned(),
    },
    TopicKey {
        name: "delete.retention.ms",
        broker_name: "log.cleaner.delete.retention.ms",
        config_type: LONG,
        read_only: false,
        doc: "The stream's `delete_retention_ms`: how long a compacted stream keeps a \
              tombstone.",
        get: |a| a.delete_retention_ms.to_string(),
    },
    TopicKey {
        name: "max.message.bytes",
        broker_name: "message.max.bytes",
        config_type: INT,
        read_only: false,
        doc: "The stream's `max_message_bytes`: the largest record accepted.",
        get: |a| a.max_message_bytes.to_string(),
    },
    TopicKey {
        name: "message.timestamp.type",
        broker_name: "log.message.timestamp.type",
        config_type: STRING,
        read_only: false,
        doc: "The stream's `timestamp_type`: `CreateTime` (the producer's) or \
              `LogAppendTime` (the server's).",
        get: |a| timestamp_type(a.timestamp_type).to_owned(),
    },
    TopicKey {
        name: "min.insync.replicas",
        broker_name: "min.insync.replicas",
        config_type: INT,
        read_only: true,
        doc: "Always 1: a cluster keeps one copy of each partition, written before it is \
              acknowledged.",
        get: |_| "1".to_owned(),
    },
    TopicKey {
        name: RETENTION_BYTES,
        broker_name: "log.retention.bytes",
        config_type: LONG,
        read_only: false,
        doc: "The stream's `max_bytes_per_partition`: the oldest records of a partition \
              above it go; -1 is no cap.",
        get: |a| minus_one_if_zero(a.max_bytes_per_partition),
    },
    TopicKey {
        name: RETENTION_MS,
        broker_name: "log.retention.ms",
        config_type: LONG,
        read_only: false,
        doc: "The stream's `ttl_ms`: records older than this go; -1 keeps them forever.",
        get: |a| minus_one_if_zero(a.ttl_ms),
    },
];

fn minus_one_if_zero(v: u64) -> String {
    if v == 0 {
        "-1".to_owned()
    } else {
        v.to_string()
    }
}

fn timestamp_type(t: TimestampType) -> &'static str {
    match t {
        TimestampType::CreateTime => "CreateTime",
        TimestampType::LogAppendTime => "LogAppendTime",
    }
}

/// `compact` alone when nothing else removes records, as in Kafka, where a compacted
/// topic keeps its records whatever their age.
fn cleanup_policy(a: &StreamAttributes) -> &'static str {
    match (a.compact, a.ttl_ms == 0 && a.max_bytes_per_partition == 0) {
        (false, _) => "delete",
        (true, true) => "compact",
        (true, false) => "compact,delete",
    }
}

/// A new stream's attributes, the defaults topic configs are reported against.
fn defaults() -> StreamAttributes {
    StreamAttributes::defaults_for(tributary_volume::auth::ANONYMOUS)
}

/// The topic configs of a stream with attributes `a`, in name order; `keys` picks some.
pub(crate) fn topic(a: &StreamAttributes, keys: Option<&[String]>) -> Vec<Described> {
    let d = defaults();
    TOPIC_KEYS
        .iter()
        .filter(|k| keys.is_none_or(|keys| keys.iter().any(|n| n == k.name)))
        .map(|k| {
            let value = (k.get)(a);
            let default = (k.get)(&d);
            Described {
                name: k.name,
                source: if value == default {
                    SOURCE_DEFAULT
                } else {
                    SOURCE_TOPIC
                },
                value,
                read_only: k.read_only,
                default: Some((k.broker_name, default)),
                config_type: k.config_type,
                doc: k.doc,
            }
        })
        .collect()
}

/// The broker's configs clients ask about, all read-only; `keys` picks some.
pub(crate) fn broker(max_request_bytes: usize, keys: Option<&[String]>) -> Vec<Described> {
    let d = defaults();
    let fixed = |name, value: String, config_type, doc| Described {
        name,
        value,
        read_only: true,
        source: SOURCE_DEFAULT,
        default: None,
        config_type,
        doc,
    };
    let mut all = vec![
        fixed(
            "auto.create.topics.enable",
            d.autocreate_topics.to_string(),
            BOOLEAN,
            "Per stream: a stream's `autocreate_topics` decides; new streams have it on.",
        ),
        fixed(
            "broker.id",
            "0".into(),
            INT,
            "This node: a cluster is one node.",
        ),
        fixed(
            "default.replication.factor",
            "1".into(),
            INT,
            "One copy per cluster; replica links copy streams to other clusters.",
        ),
        fixed(
            "log.cleanup.policy",
            cleanup_policy(&d).into(),
            LIST,
            "A new stream's `compact` (off).",
        ),
        fixed(
            "log.retention.bytes",
            minus_one_if_zero(d.max_bytes_per_partition),
            LONG,
            "A new stream's `max_bytes_per_partition`.",
        ),
        fixed(
            "log.retention.ms",
            DEFAULT_TTL_MS.to_string(),
            LONG,
            "A new stream's `ttl_ms`.",
        ),
        fixed(
            "message.max.bytes",
            DEFAULT_MAX_MESSAGE_BYTES.to_string(),
            INT,
            "A new stream's `max_message_bytes`.",
        ),
        fixed(
            "min.insync.replicas",
            "1".into(),
            INT,
            "One copy per cluster, written before it is acknowledged.",
        ),
        fixed(
            "num.partitions",
            d.default_partitions.to_string(),
            INT,
            "A new stream's `default_partitions`.",
        ),
        Described {
            source: SOURCE_STATIC_BROKER,
            ..fixed(
                "socket.request.max.bytes",
                max_request_bytes.to_string(),
                INT,
                "The server's `kafka_max_request_bytes`.",
            )
        },
    ];
    all.retain(|c| keys.is_none_or(|keys| keys.iter().any(|n| n == c.name)));
    all
}

/// A change to one topic config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    Set(String),
    /// Back to the default.
    Reset,
}

/// The attributes that make a stream's topic configs read as `changes` say;
/// INVALID_CONFIG, naming the key, for what a stream cannot hold.
/// `cleanup.policy=compact` also keeps records forever (no TTL, no size cap), as a
/// compacted Kafka topic does, unless `retention.ms` or `retention.bytes` are set with it,
/// which contradicts it.
pub(crate) fn patch(changes: &[(&str, Change)]) -> Result<StreamAttributesPatch> {
    let d = defaults();
    let mut p = StreamAttributesPatch::default();
    let mut compact_only = false;
    let mut bounded = None;
    for (name, change) in changes {
        let name = *name;
        let invalid = |why: String| Error::InvalidConfig(format!("{name}: {why}"));
        let key = TOPIC_KEYS.iter().find(|k| k.name == name).ok_or_else(|| {
            let known: Vec<&str> = TOPIC_KEYS.iter().map(|k| k.name).collect();
            invalid(format!(
                "not a topic config here; a topic's configs are its stream's attributes: {}",
                known.join(", ")
            ))
        })?;
        let value = match change {
            Change::Reset => (key.get)(&d),
            Change::Set(v) => v.clone(),
        };
        // A read-only key's value is the same for every stream.
        if key.read_only {
            if value != (key.get)(&d) {
                return Err(invalid(format!(
                    "read-only here, always {}: {}",
                    (key.get)(&d),
                    key.doc
                )));
            }
            continue;
        }
        let number = |v: &str| {
            v.trim()
                .parse::<i64>()
                .map_err(|_| invalid(format!("`{v}` is not a whole number")))
        };
        match name {
            CLEANUP_POLICY => {
                let mut policies: Vec<&str> = value.split(',').map(str::trim).collect();
                policies.sort_unstable();
                policies.dedup();
                match policies.as_slice() {
                    ["delete"] => p.compact = Some(false),
                    ["compact"] => {
                        p.compact = Some(true);
                        compact_only = true;
                    }
                    ["compact", "delete"] => p.compact = Some(true),
                    _ => {
                        return Err(invalid(format!(
                            "`{value}` is not one of delete, compact, compact,delete"
                        )));
                    }
                }
            }
            RETENTION_MS | RETENTION_BYTES => {
                let n = number(&value)?;
                let v = match n {
                    -1 => 0,
                    n if n > 0 => n as u64,
                    n => {
                        return Err(invalid(format!(
                            "{n} cannot be held: a positive limit, or -1 for none"
                        )));
                    }
                };
                if v > 0 && matches!(change, Change::Set(_)) {
                    bounded = Some(name);
                }
                if name == RETENTION_MS {
                    p.ttl_ms = Some(v);
                } else {
                    p.max_bytes_per_partition = Some(v);
                }
            }
            "max.message.bytes" => {
                let n = number(&value)?;
                p.max_message_bytes = Some(
                    u32::try_from(n)
                        .map_err(|_| invalid(format!("{n} is outside 1 to {}", u32::MAX)))?,
                );
            }
            "message.timestamp.type" => {
                p.timestamp_type = Some(match value.as_str() {
                    "CreateTime" => TimestampType::CreateTime,
                    "LogAppendTime" => TimestampType::LogAppendTime,
                    v => {
                        return Err(invalid(format!("`{v}` is not CreateTime or LogAppendTime")));
                    }
                });
            }
            "delete.retention.ms" => {
                let n = number(&value)?;
                p.delete_retention_ms =
                    Some(u64::try_from(n).map_err(|_| invalid(format!("{n} is negative")))?);
            }
            _ => unreachable!("every settable key is matched"),
        }
    }
    if compact_only {
        if let Some(key) = bounded {
            return Err(Error::InvalidConfig(format!(
                "cleanup.policy=compact keeps records whatever their age and size, and {key} \
                 would remove them: use cleanup.policy=compact,delete for both"
            )));
        }
        p.ttl_ms = Some(0);
        p.max_bytes_per_partition = Some(0);
    }
    Ok(p)
}

/// Every settable topic config, for AlterConfigs, which replaces them all: those not
/// given go back to their defaults.
pub(crate) fn settable() -> impl Iterator<Item = &'static str> {
    TOPIC_KEYS.iter().filter(|k| !k.read_only).map(|k| k.name)
}

/// `cleanup.policy` after IncrementalAlterConfigs' APPEND (`append`) or SUBTRACT of
/// `items` to its current value; no other key is a list.
pub(crate) fn list_op(
    a: &StreamAttributes,
    name: &str,
    items: &str,
    append: bool,
) -> Result<String> {
    if name != CLEANUP_POLICY {
        return Err(Error::InvalidRequest(format!(
            "{name} is not a list: only cleanup.policy takes APPEND and SUBTRACT"
        )));
    }
    let mut list: Vec<&str> = cleanup_policy(a).split(',').collect();
    for item in items.split(',').map(str::trim) {
        if append {
            if !list.contains(&item) {
                list.push(item);
            }
        } else {
            list.retain(|p| *p != item);
        }
    }
    if list.is_empty() {
        return Err(Error::InvalidConfig(
            "cleanup.policy: a stream needs a policy, delete or compact or both".into(),
        ));
    }
    Ok(list.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set<'a>(pairs: &[(&'a str, &str)]) -> Vec<(&'a str, Change)> {
        pairs
            .iter()
            .map(|&(k, v)| (k, Change::Set(v.to_owned())))
            .collect()
    }

    fn value(a: &StreamAttributes, key: &str) -> String {
        topic(a, None)
            .into_iter()
            .find(|c| c.name == key)
            .unwrap()
            .value
    }

    #[test]
    fn every_settable_key_reads_back_what_was_set() {
        let d = defaults();
        for (key, v) in [
            ("retention.ms", "60000"),
            ("retention.ms", "-1"),
            ("retention.bytes", "1048576"),
            ("retention.bytes", "-1"),
            ("max.message.bytes", "2000000"),
            ("message.timestamp.type", "LogAppendTime"),
            ("delete.retention.ms", "0"),
            ("cleanup.policy", "compact"),
            ("cleanup.policy", "compact,delete"),
            ("cleanup.policy", "delete"),
        ] {
            let a = d.apply(&patch(&set(&[(key, v)])).unwrap()).unwrap();
            assert_eq!(value(&a, key), v, "{key}");
        }
        // The reverse order of a list reads in Kafka's.
        let a = d
            .apply(&patch(&set(&[("cleanup.policy", "delete,compact")])).unwrap())
            .unwrap();
        assert_eq!(value(&a, "cleanup.policy"), "compact,delete");
    }

    #[test]
    fn what_a_stream_cannot_hold_is_invalid_config_naming_the_key() {
        for (key, v, why) in [
            ("segment.bytes", "1", "not a topic config"),
            ("retention.ms", "0", "-1 for none"),
            ("retention.ms", "-2", "-1 for none"),
            ("retention.ms", "soon", "not a whole number"),
            ("retention.bytes", "0", "-1 for none"),
            ("max.message.bytes", "-1", "outside"),
            ("message.timestamp.type", "Now", "CreateTime"),
            ("delete.retention.ms", "-1", "negative"),
            ("cleanup.policy", "", "not one of"),
            ("cleanup.policy", "compact,retain", "not one of"),
            ("min.insync.replicas", "2", "read-only"),
        ] {
            let e = patch(&set(&[(key, v)])).unwrap_err();
            assert_eq!(e.code(), 40, "{key}={v}");
            let m = e.to_string();
            assert!(m.starts_with(key) && m.contains(why), "{key}={v}: {m}");
        }
        // A read-only key at its value is accepted and changes nothing.
        let p = patch(&set(&[("min.insync.replicas", "1")])).unwrap();
        assert_eq!(p, StreamAttributesPatch::default());
    }

    #[test]
    fn compact_alone_keeps_records_forever() {
        let p = patch(&set(&[("cleanup.policy", "compact")])).unwrap();
        assert_eq!(
            (p.compact, p.ttl_ms, p.max_bytes_per_partition),
            (Some(true), Some(0), Some(0))
        );
        let e = patch(&set(&[
            ("cleanup.policy", "compact"),
            ("retention.ms", "1000"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("compact,delete"), "{e}");
        // A reset alongside does not contradict it.
        let p = patch(&[
            ("cleanup.policy", Change::Set("compact".into())),
            ("retention.ms", Change::Reset),
        ])
        .unwrap();
        assert_eq!(p.ttl_ms, Some(0));
    }

    #[test]
    fn list_operations_apply_to_cleanup_policy_only() {
        let d = defaults();
        assert_eq!(
            list_op(&d, "cleanup.policy", "compact", true).unwrap(),
            "delete,compact"
        );
        let e = list_op(&d, "cleanup.policy", "delete", false).unwrap_err();
        assert_eq!(e.code(), 40);
        assert_eq!(
            list_op(&d, "retention.ms", "1", true).unwrap_err().code(),
            42
        );
    }

    #[test]
    fn defaults_are_reported_as_defaults_with_their_broker_synonym() {
        let d = defaults();
        let all = topic(&d, None);
        assert!(all.iter().all(|c| c.source == SOURCE_DEFAULT));
        let r = all.iter().find(|c| c.name == "retention.ms").unwrap();
        assert_eq!(
            r.default,
            Some(("log.retention.ms", DEFAULT_TTL_MS.to_string()))
        );
        let picked = topic(&d, Some(&["retention.ms".to_string(), "nope".to_string()]));
        assert_eq!(picked.len(), 1);
    }
}

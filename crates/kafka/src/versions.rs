//! The APIs this door serves and the versions of each, as ApiVersions advertises them:
//! exactly what is implemented. Old librdkafka (kcat on Debian) turns a feature on only if
//! a range *contains* the versions it probes for, so ranges start low where clients probe.

use kafka_protocol::messages::ApiKey;

/// One served API and its version range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Served {
    pub key: ApiKey,
    pub min: i16,
    pub max: i16,
}

/// Every API served, in key order. Produce is advertised from 0 so that old librdkafka's
/// probes find its compression codecs, but versions 0 to 2 (message sets before record
/// batches) close the connection ([`closed`]). Fetch stops at 12 and Produce at 11: later
/// versions name topics by id. ListOffsets stops at 6: 7 only adds the lookup of the
/// record with the largest timestamp (KIP-734), which is not served. Metadata stops at 12:
/// 13 only adds top-level error fields no client needs. SaslHandshake starts at 0: librdkafka before 2.11.1 turns SASL
/// on only if the range holds 0 (then uses version 1 with SaslAuthenticate).
pub const ADVERTISED: &[Served] = &[
    Served {
        key: ApiKey::Produce,
        min: 0,
        max: 11,
    },
    Served {
        key: ApiKey::Fetch,
        min: 4,
        max: 12,
    },
    Served {
        key: ApiKey::ListOffsets,
        min: 1,
        max: 6,
    },
    Served {
        key: ApiKey::Metadata,
        min: 0,
        max: 12,
    },
    Served {
        key: ApiKey::OffsetCommit,
        min: 2,
        max: 9,
    },
    Served {
        key: ApiKey::OffsetFetch,
        min: 1,
        max: 9,
    },
    Served {
        key: ApiKey::FindCoordinator,
        min: 0,
        max: 4,
    },
    Served {
        key: ApiKey::JoinGroup,
        min: 0,
        max: 9,
    },
    Served {
        key: ApiKey::Heartbeat,
        min: 0,
        max: 4,
    },
    Served {
        key: ApiKey::LeaveGroup,
        min: 0,
        max: 5,
    },
    Served {
        key: ApiKey::SyncGroup,
        min: 0,
        max: 5,
    },
    Served {
        key: ApiKey::DescribeGroups,
        min: 0,
        max: 5,
    },
    Served {
        key: ApiKey::ListGroups,
        min: 0,
        max: 4,
    },
    Served {
        key: ApiKey::SaslHandshake,
        min: 0,
        max: 1,
    },
    Served {
        key: ApiKey::ApiVersions,
        min: 0,
        max: 4,
    },
    Served {
        key: ApiKey::CreateTopics,
        min: 2,
        max: 7,
    },
    Served {
        key: ApiKey::DeleteTopics,
        min: 1,
        max: 6,
    },
    Served {
        key: ApiKey::InitProducerId,
        min: 0,
        max: 4,
    },
    Served {
        key: ApiKey::DescribeConfigs,
        min: 1,
        max: 4,
    },
    Served {
        key: ApiKey::AlterConfigs,
        min: 0,
        max: 2,
    },
    Served {
        key: ApiKey::SaslAuthenticate,
        min: 0,
        max: 2,
    },
    Served {
        key: ApiKey::CreatePartitions,
        min: 0,
        max: 3,
    },
    Served {
        key: ApiKey::DeleteGroups,
        min: 0,
        max: 2,
    },
    Served {
        key: ApiKey::IncrementalAlterConfigs,
        min: 0,
        max: 1,
    },
    Served {
        key: ApiKey::DescribeCluster,
        min: 0,
        max: 1,
    },
];

/// The range served for `key`, if it is served.
pub(crate) fn served(key: ApiKey) -> Option<Served> {
    ADVERTISED.iter().copied().find(|s| s.key == key)
}

/// Versions inside an advertised range that are refused all the same, closing the
/// connection: Produce 0 to 2, which carry message sets no client since Kafka 0.11 sends.
pub(crate) fn closed(key: ApiKey, version: i16) -> bool {
    key == ApiKey::Produce && version < 3
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/kafka.md's table of APIs and versions is what ApiVersions advertises.
    #[test]
    fn the_documented_table_is_the_advertised_one() {
        let doc = include_str!("../../../docs/kafka.md");
        let section = doc
            .split("## APIs and versions")
            .nth(1)
            .expect("docs/kafka.md has an APIs and versions section");
        let rows: Vec<(i16, i16, i16)> = section
            .lines()
            .take_while(|l| !l.starts_with("## "))
            .filter_map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                let key = cells.get(2)?.parse().ok()?;
                let range = cells.get(3)?.split_whitespace().next()?;
                let (min, max) = range.split_once('–')?;
                Some((key, min.parse().ok()?, max.parse().ok()?))
            })
            .collect();
        let advertised: Vec<(i16, i16, i16)> = ADVERTISED
            .iter()
            .map(|s| (s.key as i16, s.min, s.max))
            .collect();
        assert_eq!(rows, advertised);
        for s in ADVERTISED {
            assert!(
                section.contains(&format!("| {:?} | {} |", s.key, s.key as i16)),
                "{:?} is named as kafka-protocol names it",
                s.key
            );
        }
    }
}

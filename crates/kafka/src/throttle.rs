//! Kafka's answer to a principal over its rate quotas (KIP-219): the request is served
//! anyway and charged to the principal's buckets (`tributary_core::quota`, shared with the
//! gRPC door); the response carries `throttle_time_ms`, the time until the debt is paid,
//! and the connection reads no further request for that long. A client at a version that
//! throttles itself gets the response at once; an older one gets it after the wait, as
//! brokers answered before KIP-219. A Fetch made while the principal's fetched bytes are in
//! debt (or over its request rate) is answered empty, as Kafka answers a throttled fetch.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use tributary_core::quota::{QuotaKind, Quotas, THROTTLED_METRIC};

/// For each API whose response has `throttle_time_ms`: the first version with the field,
/// and the first whose clients throttle themselves (Apache Kafka's `shouldClientThrottle`).
/// The field is the body's first, except in Produce (after the partitions; the handler
/// sets it).
const FIELDS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 1, 6),
    (ApiKey::Fetch, 1, 8),
    (ApiKey::ListOffsets, 2, 3),
    (ApiKey::Metadata, 3, 6),
    (ApiKey::OffsetCommit, 3, 4),
    (ApiKey::OffsetFetch, 3, 4),
    (ApiKey::FindCoordinator, 1, 2),
    (ApiKey::JoinGroup, 2, 3),
    (ApiKey::Heartbeat, 1, 2),
    (ApiKey::LeaveGroup, 1, 2),
    (ApiKey::SyncGroup, 1, 2),
    (ApiKey::DescribeGroups, 1, 2),
    (ApiKey::ListGroups, 1, 2),
    (ApiKey::CreateTopics, 2, 3),
    (ApiKey::DeleteTopics, 1, 2),
    (ApiKey::InitProducerId, 0, 1),
    (ApiKey::DescribeConfigs, 0, 2),
    (ApiKey::AlterConfigs, 0, 1),
    (ApiKey::CreatePartitions, 0, 1),
    (ApiKey::DeleteGroups, 0, 1),
    (ApiKey::IncrementalAlterConfigs, 0, 0),
    (ApiKey::DescribeCluster, 0, 0),
];

fn field(key: ApiKey) -> Option<(i16, i16)> {
    FIELDS
        .iter()
        .find(|(k, ..)| *k == key)
        .map(|&(_, has, client)| (has, client))
}

/// A client at `version` of `key` waits out `throttle_time_ms` itself.
fn client_throttles(key: ApiKey, version: i16) -> bool {
    field(key).is_some_and(|(_, client)| version >= client)
}

/// What one request owes its principal's quotas: the longest wait any of its charges
/// asked for.
pub(crate) struct Charge<'a> {
    quotas: &'a Quotas,
    principal: String,
    wait: Duration,
    kind: Option<QuotaKind>,
}

impl<'a> Charge<'a> {
    /// A request by `principal`, charged one request.
    pub(crate) fn request(quotas: &'a Quotas, principal: &str) -> Charge<'a> {
        let mut c = Charge::none(quotas);
        c.principal = principal.to_owned();
        let wait = quotas.charge_request(principal);
        c.owe(QuotaKind::Requests, wait);
        c
    }

    /// A request no quota applies to (ApiVersions and SASL, before anyone is known).
    pub(crate) fn none(quotas: &'a Quotas) -> Charge<'a> {
        Charge {
            quotas,
            principal: String::new(),
            wait: Duration::ZERO,
            kind: None,
        }
    }

    fn owe(&mut self, kind: QuotaKind, wait: Option<Duration>) {
        if let Some(wait) = wait
            && wait > self.wait
        {
            self.wait = wait;
            self.kind = Some(kind);
        }
    }

    /// `bytes` of record batches produced.
    pub(crate) fn produce(&mut self, bytes: u64) {
        let wait = self.quotas.charge_produce(&self.principal, bytes);
        self.owe(QuotaKind::ProduceBytes, wait);
    }

    /// Whether a Fetch is to be answered empty: the request is already throttled, or the
    /// principal's fetched bytes are in debt.
    pub(crate) fn fetch_refused(&mut self) -> bool {
        if let Err(r) = self.quotas.admit_fetch(&self.principal) {
            self.owe(r.kind, Some(r.retry_after));
        }
        self.wait > Duration::ZERO
    }

    /// `bytes` of record batches fetched.
    pub(crate) fn fetch(&mut self, bytes: u64) {
        let wait = self.quotas.charge_fetch(&self.principal, bytes);
        self.owe(QuotaKind::FetchBytes, wait);
    }

    /// `throttle_time_ms` as the response carries it.
    pub(crate) fn ms(&self) -> i32 {
        i32::try_from(self.wait.as_millis()).unwrap_or(i32::MAX)
    }

    /// The handled request's answer: its response with `throttle_time_ms` set, and how
    /// the connection waits.
    pub(crate) fn answer(self, key: ApiKey, version: i16, response: Option<Bytes>) -> Answer {
        if self.wait.is_zero() {
            return Answer {
                response,
                throttle: Duration::ZERO,
                delay: false,
            };
        }
        if let Some(kind) = self.kind {
            metrics::counter!(THROTTLED_METRIC, "quota" => kind.label()).increment(1);
        }
        tracing::debug!(principal = %self.principal, wait_ms = self.ms(), "kafka: throttled");
        Answer {
            response: response.map(|r| set_field(r, key, version, self.ms())),
            throttle: self.wait,
            delay: !client_throttles(key, version),
        }
    }
}

/// A handled request's response and what it owes.
pub(crate) struct Answer {
    /// `None` when the request gets no response (Produce with acks 0).
    pub response: Option<Bytes>,
    /// The connection reads no request for this long.
    pub throttle: Duration,
    /// The response is held back for `throttle` first: the client's version does not
    /// throttle itself.
    pub delay: bool,
}

impl Answer {
    /// A response owing nothing.
    pub(crate) fn now(response: Option<Bytes>) -> Answer {
        Answer {
            response,
            throttle: Duration::ZERO,
            delay: false,
        }
    }
}

/// Writes `ms` into a framed response whose body starts with `throttle_time_ms`: after the
/// size prefix and the response header (the correlation id, and an empty tagged-field
/// section from header version 1).
fn set_field(response: Bytes, key: ApiKey, version: i16, ms: i32) -> Bytes {
    let at_front = key != ApiKey::Produce;
    let Some((has, _)) = field(key).filter(|(has, _)| at_front && version >= *has) else {
        return response;
    };
    debug_assert!(version >= has);
    let at = 4 + 4 + usize::from(key.response_header_version(version) >= 1);
    if response.len() < at + 4 {
        return response;
    }
    let mut out = BytesMut::from(&response[..]);
    out[at..at + 4].copy_from_slice(&ms.to_be_bytes());
    out.freeze()
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::*;

    use super::*;
    use crate::frame;
    use crate::versions::served;

    /// Patching a response encoded with no throttle gives the response encoded with it,
    /// at every served version of every API whose body starts with the field.
    #[test]
    fn the_field_is_written_where_each_response_has_it() {
        macro_rules! check {
            ($($key:ident => $ty:ty),* $(,)?) => {$(
                let key = ApiKey::$key;
                let range = served(key).expect("served");
                let (has, _) = field(key).expect("in the table");
                for v in range.min..=range.max {
                    let hv = key.response_header_version(v);
                    let plain = frame::response(7, hv, &<$ty>::default(), v).unwrap();
                    let want = if v >= has {
                        frame::response(7, hv, &<$ty>::default().with_throttle_time_ms(1234), v)
                            .unwrap()
                    } else {
                        plain.clone()
                    };
                    assert_eq!(set_field(plain, key, v, 1234), want, "{key:?} v{v}");
                }
            )*};
        }
        check!(
            Fetch => FetchResponse,
            ListOffsets => ListOffsetsResponse,
            Metadata => MetadataResponse,
            OffsetCommit => OffsetCommitResponse,
            OffsetFetch => OffsetFetchResponse,
            FindCoordinator => FindCoordinatorResponse,
            JoinGroup => JoinGroupResponse,
            Heartbeat => HeartbeatResponse,
            LeaveGroup => LeaveGroupResponse,
            SyncGroup => SyncGroupResponse,
            DescribeGroups => DescribeGroupsResponse,
            ListGroups => ListGroupsResponse,
            CreateTopics => CreateTopicsResponse,
            DeleteTopics => DeleteTopicsResponse,
            InitProducerId => InitProducerIdResponse,
            DescribeConfigs => DescribeConfigsResponse,
            AlterConfigs => AlterConfigsResponse,
            CreatePartitions => CreatePartitionsResponse,
            DeleteGroups => DeleteGroupsResponse,
            IncrementalAlterConfigs => IncrementalAlterConfigsResponse,
            DescribeCluster => DescribeClusterResponse,
        );
    }

    #[test]
    fn every_charged_api_is_in_the_table() {
        for s in crate::versions::ADVERTISED {
            let exempt = matches!(
                s.key,
                ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
            );
            assert_eq!(field(s.key).is_some(), !exempt, "{:?}", s.key);
        }
    }

    #[test]
    fn old_versions_get_their_response_late() {
        assert!(!client_throttles(ApiKey::Produce, 5));
        assert!(client_throttles(ApiKey::Produce, 6));
        assert!(!client_throttles(ApiKey::Fetch, 7));
        assert!(client_throttles(ApiKey::Fetch, 8));
        assert!(!client_throttles(ApiKey::ApiVersions, 3));
    }
}

//! The one table from domain errors to gRPC status (design §7). Handlers never build a
//! status for a domain failure themselves.

use std::time::Duration;

use tonic::{Code, Status};
use tributary_core as core;
use tributary_storage as storage;
use tributary_volume as volume;

use tributary_core::quota::{QuotaKind, Refusal};

/// The metadata key of a throttled call's retry hint: whole milliseconds to wait.
pub const RETRY_AFTER_MS: &str = "retry-after-ms";

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Namespace(#[from] volume::Error),

    /// A request field the namespace layer never sees (e.g. an enum left unspecified).
    #[error("{field}: {message}")]
    InvalidArgument {
        field: &'static str,
        message: String,
    },

    /// A request past one of the server's transport limits (see `limits`).
    #[error("{what}: {size} {unit}; the limit is {limit}")]
    LimitExceeded {
        what: &'static str,
        size: usize,
        unit: &'static str,
        limit: usize,
    },

    /// A principal over one of its rate quotas (`tributary_core::quota`); nothing was done.
    #[error(
        "principal `{principal}` is over its quota of {limit} {} per second; retry in {} ms",
        kind.unit(),
        retry_after.as_millis()
    )]
    Throttled {
        principal: String,
        kind: QuotaKind,
        limit: u64,
        retry_after: Duration,
    },
}

impl ApiError {
    /// `principal`'s call refused by its quotas; counted in the throttled metric.
    pub(crate) fn throttled(principal: &str, r: Refusal) -> ApiError {
        crate::metrics::throttled(r.kind);
        ApiError::Throttled {
            principal: principal.to_owned(),
            kind: r.kind,
            limit: r.limit,
            retry_after: r.retry_after,
        }
    }
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Status {
        let message = e.to_string();
        let code = match &e {
            ApiError::InvalidArgument { .. } => Code::InvalidArgument,
            ApiError::LimitExceeded { .. } => Code::ResourceExhausted,
            ApiError::Throttled { retry_after, .. } => {
                let mut s = Status::resource_exhausted(message);
                let ms = retry_after.as_millis().max(1).to_string();
                s.metadata_mut().insert(
                    RETRY_AFTER_MS,
                    ms.parse().expect("digits are a header value"),
                );
                return s;
            }
            ApiError::Namespace(n) => match n {
                volume::Error::InvalidArgument { .. } => Code::InvalidArgument,
                volume::Error::Unauthenticated(_) => Code::Unauthenticated,
                volume::Error::PermissionDenied { .. } => Code::PermissionDenied,
                volume::Error::QuotaExceeded { .. } => Code::ResourceExhausted,
                volume::Error::NotFound { .. } => Code::NotFound,
                volume::Error::AlreadyExists { .. } => Code::AlreadyExists,
                volume::Error::FailedPrecondition(_) | volume::Error::Sequence { .. } => {
                    Code::FailedPrecondition
                }
                volume::Error::Group(g) => match g {
                    core::Error::StaleGeneration { .. }
                    | core::Error::UnknownMember { .. }
                    | core::Error::Fenced { .. }
                    | core::Error::NotAssigned { .. }
                    | core::Error::MemberIdRequired { .. }
                    | core::Error::RebalanceInProgress { .. }
                    | core::Error::InconsistentProtocol { .. }
                    | core::Error::FencedInstance { .. }
                    | core::Error::IllegalGeneration { .. } => Code::FailedPrecondition,
                    core::Error::SessionTimeout { .. } => Code::InvalidArgument,
                    core::Error::GroupFull { .. } => Code::ResourceExhausted,
                    core::Error::AssignorMismatch { .. }
                    | core::Error::InvalidArgument { .. }
                    | core::Error::TooLarge { .. }
                    | core::Error::Checksum { .. }
                    | core::Error::UnsupportedCompression { .. } => Code::InvalidArgument,
                    core::Error::CorruptBatch { .. } => Code::DataLoss,
                },
                volume::Error::OffsetOutOfRange { .. } => Code::OutOfRange,
                volume::Error::InvalidBatch(_) => Code::InvalidArgument,
                volume::Error::ShuttingDown => Code::Unavailable,
                volume::Error::Retention { .. } => Code::Internal,
                volume::Error::Storage(s) => match s {
                    storage::Error::UnknownPartition(_) => Code::NotFound,
                    storage::Error::OffsetOutOfRange { .. } => Code::OutOfRange,
                    storage::Error::BatchTooLarge { .. } => Code::InvalidArgument,
                    storage::Error::OffsetMismatch { .. }
                    | storage::Error::ProducerFenced { .. }
                    | storage::Error::SequenceGap { .. }
                    | storage::Error::UnknownProducer { .. }
                    | storage::Error::StaleSequence { .. }
                    | storage::Error::SequenceMismatch { .. }
                    | storage::Error::MirrorDiverged { .. } => Code::FailedPrecondition,
                    storage::Error::Corrupt { .. } => Code::DataLoss,
                    storage::Error::DiskFull(_) => Code::ResourceExhausted,
                    storage::Error::ForeignDataDir { .. }
                    | storage::Error::Damaged { .. }
                    | storage::Error::InUse { .. }
                    | storage::Error::Engine(_)
                    | storage::Error::AppenderStopped
                    | storage::Error::Io { .. } => Code::Internal,
                },
            },
        };
        if code == Code::Internal || code == Code::DataLoss {
            tracing::error!(error = %message, "request failed in storage");
        }
        Status::new(code, message)
    }
}

/// The statuses tonic makes by itself while reading a request, before any handler runs,
/// mapped to design §7: a request too large for the server is `RESOURCE_EXHAUSTED` (tonic
/// says `OUT_OF_RANGE`), and one that cannot be decoded is the client's bad argument
/// (tonic says `INTERNAL`, which would blame the server). `None` for every other status.
pub fn request_decoding_status(s: &Status) -> Option<Status> {
    let m = s.message();
    match s.code() {
        Code::OutOfRange if m.starts_with("Error, decoded message length too large") => {
            Some(Status::resource_exhausted(format!(
                "request message too large ({}); raise the server's max_message_bytes or send less per call",
                &m[7..]
            )))
        }
        Code::Internal
            if m.starts_with("failed to decode Protobuf message")
                || m.starts_with("protocol error: received message with")
                || m.starts_with("Error decompressing")
                || m == "Unexpected EOF decoding stream."
                || m == "Missing request message." =>
        {
            Some(Status::invalid_argument(format!("request: {m}")))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_maps_to_its_status() {
        let mut cases: Vec<(volume::Error, Code)> = vec![
            (
                volume::Error::InvalidArgument {
                    field: "path".into(),
                    message: "bad".into(),
                },
                Code::InvalidArgument,
            ),
            (
                volume::Error::NotFound {
                    what: "stream",
                    path: "/v/s".into(),
                },
                Code::NotFound,
            ),
            (
                volume::Error::AlreadyExists {
                    what: "volume",
                    path: "/v".into(),
                },
                Code::AlreadyExists,
            ),
            (
                volume::Error::FailedPrecondition("x".into()),
                Code::FailedPrecondition,
            ),
            (
                volume::Error::Sequence {
                    refusal: volume::SequenceRefusal::OutOfOrder,
                    message: "x".into(),
                },
                Code::FailedPrecondition,
            ),
            (
                volume::Error::OffsetOutOfRange {
                    path: "/v/s:t #0".into(),
                    offset: 9,
                    log_start: 0,
                    high_watermark: 3,
                },
                Code::OutOfRange,
            ),
            (volume::Error::ShuttingDown, Code::Unavailable),
            (
                volume::Error::Group(core::Error::StaleGeneration {
                    group: "g".into(),
                    given: 3,
                    current: 4,
                }),
                Code::FailedPrecondition,
            ),
            (
                volume::Error::Group(core::Error::UnknownMember {
                    group: "g".into(),
                    member: "m".into(),
                }),
                Code::FailedPrecondition,
            ),
            (
                volume::Error::Group(core::Error::Fenced {
                    group: "g".into(),
                    member: "m".into(),
                    reason: tributary_core::groups::RemovedReason::SessionExpired,
                }),
                Code::FailedPrecondition,
            ),
            (
                volume::Error::Group(core::Error::NotAssigned {
                    group: "g".into(),
                    member: "m".into(),
                    topic: "t".into(),
                    partition: 0,
                }),
                Code::FailedPrecondition,
            ),
            (
                volume::Error::Group(core::Error::InconsistentProtocol {
                    group: "g".into(),
                    detail: "Kafka members are live".into(),
                }),
                Code::FailedPrecondition,
            ),
            (
                volume::Error::Group(core::Error::AssignorMismatch {
                    group: "g".into(),
                    group_assignor: "range",
                    asked: "sticky",
                }),
                Code::InvalidArgument,
            ),
            (
                volume::Error::Unauthenticated("bad".into()),
                Code::Unauthenticated,
            ),
            (
                volume::Error::PermissionDenied {
                    who: "bob".into(),
                    permission: "produce",
                    path: "/a/s".into(),
                },
                Code::PermissionDenied,
            ),
            (
                volume::Error::QuotaExceeded {
                    volume: "/a".into(),
                    quota: "bytes",
                    limit: 1,
                    used: 1,
                    asked: 1,
                },
                Code::ResourceExhausted,
            ),
        ];
        cases.push((
            volume::Error::Storage(storage::Error::DiskFull(
                "IO error: No space left on device".into(),
            )),
            Code::ResourceExhausted,
        ));
        for (e, code) in cases {
            let text = e.to_string();
            let s = Status::from(ApiError::from(e));
            assert_eq!(s.code(), code, "{text}");
            assert_eq!(s.message(), text, "the message is the domain error's own");
        }
    }
}

#[cfg(test)]
mod quota_tests {
    use super::*;

    #[test]
    fn a_throttled_call_says_when_to_retry() {
        let s = Status::from(ApiError::Throttled {
            principal: "alice".into(),
            kind: QuotaKind::ProduceBytes,
            limit: 1024,
            retry_after: Duration::from_millis(250),
        });
        assert_eq!(s.code(), Code::ResourceExhausted);
        assert_eq!(
            s.message(),
            "principal `alice` is over its quota of 1024 produced bytes per second; retry in 250 ms"
        );
        assert_eq!(s.metadata().get(RETRY_AFTER_MS).unwrap(), "250");
    }
}

#[cfg(test)]
mod transport_tests {
    use super::*;

    #[test]
    fn tonics_request_decoding_statuses_follow_the_design() {
        let too_large = Status::out_of_range(
            "Error, decoded message length too large: found 70 bytes, the limit is: 64 bytes",
        );
        let s = request_decoding_status(&too_large).unwrap();
        assert_eq!(s.code(), Code::ResourceExhausted);
        assert!(
            s.message()
                .starts_with("request message too large (decoded message length too large: found 70 bytes, the limit is: 64 bytes)"),
            "{}",
            s.message()
        );
        for m in [
            "failed to decode Protobuf message: FetchRequest.topic: invalid string value: data is not UTF-8 encoded",
            "protocol error: received message with invalid compression flag: 7 (valid flags are 0 and 1), while sending request",
            "Error decompressing: corrupt deflate stream, while sending request",
            "Unexpected EOF decoding stream.",
            "Missing request message.",
        ] {
            let s = request_decoding_status(&Status::internal(m)).unwrap();
            assert_eq!(s.code(), Code::InvalidArgument, "{m}");
            assert_eq!(s.message(), format!("request: {m}"));
        }
        // The handlers' own statuses pass unchanged.
        for s in [
            Status::out_of_range(
                "offset 9 is out of range for /v/s:t #0: valid offsets are 0 to 3",
            ),
            Status::internal("storage engine: IO error"),
            Status::resource_exhausted("Error decompressing: size limit, of 64 bytes, exceeded"),
        ] {
            assert!(request_decoding_status(&s).is_none(), "{s:?}");
        }
    }
}

//! The one table from domain errors to gRPC status (DESIGN §7). Handlers never build a
//! status for a domain failure themselves.

use tonic::{Code, Status};
use tributary_storage as storage;
use tributary_volume as volume;

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
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Status {
        let message = e.to_string();
        let code = match &e {
            ApiError::InvalidArgument { .. } => Code::InvalidArgument,
            ApiError::Namespace(n) => match n {
                volume::Error::InvalidArgument { .. } => Code::InvalidArgument,
                volume::Error::Unauthenticated(_) => Code::Unauthenticated,
                volume::Error::PermissionDenied { .. } => Code::PermissionDenied,
                volume::Error::QuotaExceeded { .. } => Code::ResourceExhausted,
                volume::Error::NotFound { .. } => Code::NotFound,
                volume::Error::AlreadyExists { .. } => Code::AlreadyExists,
                volume::Error::FailedPrecondition(_)
                | volume::Error::StaleGeneration { .. }
                | volume::Error::UnknownMember { .. }
                | volume::Error::Fenced { .. }
                | volume::Error::NotAssigned { .. } => Code::FailedPrecondition,
                volume::Error::AssignorMismatch { .. } => Code::InvalidArgument,
                volume::Error::OffsetOutOfRange { .. } => Code::OutOfRange,
                volume::Error::ShuttingDown => Code::Unavailable,
                volume::Error::Storage(s) => match s {
                    storage::Error::UnknownPartition(_) => Code::NotFound,
                    storage::Error::OffsetOutOfRange { .. } => Code::OutOfRange,
                    storage::Error::BatchTooLarge { .. } => Code::InvalidArgument,
                    storage::Error::Corrupt { .. } => Code::DataLoss,
                    storage::Error::ForeignDataDir { .. }
                    | storage::Error::InUse { .. }
                    | storage::Error::Engine(_)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_maps_to_its_status() {
        let cases: Vec<(volume::Error, Code)> = vec![
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
                volume::Error::StaleGeneration {
                    group: "g".into(),
                    given: 3,
                    current: 4,
                },
                Code::FailedPrecondition,
            ),
            (
                volume::Error::UnknownMember {
                    group: "g".into(),
                    member: "m".into(),
                },
                Code::FailedPrecondition,
            ),
            (
                volume::Error::Fenced {
                    group: "g".into(),
                    member: "m".into(),
                    reason: volume::groups::RemovedReason::SessionExpired,
                },
                Code::FailedPrecondition,
            ),
            (
                volume::Error::NotAssigned {
                    group: "g".into(),
                    member: "m".into(),
                    topic: "t".into(),
                    partition: 0,
                },
                Code::FailedPrecondition,
            ),
            (
                volume::Error::AssignorMismatch {
                    group: "g".into(),
                    group_assignor: "range",
                    asked: "sticky",
                },
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
        for (e, code) in cases {
            let text = e.to_string();
            let s = Status::from(ApiError::from(e));
            assert_eq!(s.code(), code, "{text}");
            assert_eq!(s.message(), text, "the message is the domain error's own");
        }
    }
}

//! The Kafka door's errors: what ends a connection (a frame too large, an API or version
//! not served, broken framing), and the one place the namespace's refusals become Kafka
//! error codes ([`topic_code`], and for a produced batch [`produce_code`]).

use kafka_protocol::ResponseError;

/// Why a connection ended or a request failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("connection: {0}")]
    Io(#[source] std::io::Error),

    /// A size prefix over the limit: the connection closes without reading the request.
    #[error("a request of {size} bytes is over the limit of {limit} (kafka_max_request_bytes)")]
    TooLarge { size: u64, limit: usize },

    /// A request that does not parse as its header says.
    #[error("malformed {what}: {detail}")]
    Malformed { what: String, detail: String },

    /// An API key this door does not serve; Kafka brokers close the connection.
    #[error("API key {0} is not served here")]
    UnknownApi(i16),

    /// A request other than ApiVersions and the SASL handshake before authentication, on
    /// a listener without anonymous access.
    #[error("{0} before authenticating; authenticate with SASL first")]
    Unauthenticated(&'static str),

    /// A version outside the advertised range; Kafka brokers close the connection
    /// (ApiVersions excepted: it is answered, at version 0, with UNSUPPORTED_VERSION).
    #[error("{api} version {version} is not served here (versions {min} to {max} are)")]
    UnsupportedVersion {
        api: &'static str,
        version: i16,
        min: i16,
        max: i16,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The Kafka error code a response carries for this error.
    pub fn code(&self) -> i16 {
        match self {
            Error::UnsupportedVersion { .. } => ResponseError::UnsupportedVersion.code(),
            Error::Malformed { .. } | Error::TooLarge { .. } => {
                ResponseError::InvalidRequest.code()
            }
            Error::Unauthenticated(_) => ResponseError::SaslAuthenticationFailed.code(),
            Error::UnknownApi(_) | Error::Io(_) => ResponseError::UnknownServerError.code(),
        }
    }
}

/// The code a per-topic answer carries for what the namespace refused.
pub(crate) fn topic_code(e: &tributary_volume::Error) -> i16 {
    use tributary_volume::Error as V;
    let code = match e {
        V::InvalidArgument { .. } => ResponseError::InvalidTopicException,
        V::NotFound { .. } => ResponseError::UnknownTopicOrPartition,
        V::AlreadyExists { .. } => ResponseError::TopicAlreadyExists,
        V::PermissionDenied { .. } | V::Unauthenticated(_) => {
            ResponseError::TopicAuthorizationFailed
        }
        V::QuotaExceeded { .. } => ResponseError::PolicyViolation,
        V::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        V::ShuttingDown => ResponseError::NotLeaderOrFollower,
        _ => ResponseError::UnknownServerError,
    };
    code.code()
}

/// The code a produced partition carries for what the namespace refused: a refused batch
/// by the check it failed, the rest as for any topic.
pub(crate) fn produce_code(e: &tributary_volume::Error) -> i16 {
    use tributary_core::Error as Core;
    use tributary_volume::Error as V;
    let code = match e {
        V::InvalidBatch(Core::TooLarge { .. }) => ResponseError::MessageTooLarge,
        V::InvalidBatch(Core::Checksum { .. }) => ResponseError::CorruptMessage,
        V::InvalidBatch(Core::UnsupportedCompression { .. }) => {
            ResponseError::UnsupportedCompressionType
        }
        V::InvalidBatch(_) => ResponseError::InvalidRecord,
        V::FailedPrecondition(_) => ResponseError::PolicyViolation,
        e => return topic_code(e),
    };
    code.code()
}

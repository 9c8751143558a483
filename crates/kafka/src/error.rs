//! The Kafka door's errors: what ends a connection (a frame too large, an API or version
//! not served, broken framing), what refuses one topic or resource of an admin request,
//! and the one place the namespace's refusals become Kafka error codes ([`topic_code`],
//! [`group_code`], [`partition_code`], [`produce_code`] for a produced batch, and
//! [`Asked`] for the admin APIs).

use kafka_protocol::ResponseError;

/// Why a connection ended or a request failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("connection: {0}")]
    Io(#[source] std::io::Error),

    /// A TLS handshake that failed, or a client certificate that names no user.
    #[error("{0}")]
    Tls(String),

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

    /// The credential the connection authenticated with no longer holds (the token was
    /// revoked or rotated away, the user deleted): the connection closes, as Kafka closes
    /// one whose session expired (KIP-368), and the client authenticates afresh.
    #[error("the session's credential no longer holds ({0}); authenticate again")]
    SessionExpired(String),

    /// A version outside the advertised range; Kafka brokers close the connection
    /// (ApiVersions excepted: it is answered, at version 0, with UNSUPPORTED_VERSION).
    #[error("{api} version {version} is not served here (versions {min} to {max} are)")]
    UnsupportedVersion {
        api: &'static str,
        version: i16,
        min: i16,
        max: i16,
    },

    /// The namespace refused one topic or resource of an admin request; the code depends
    /// on what was asked.
    #[error("{source}")]
    Refused {
        asked: Asked,
        #[source]
        source: tributary_volume::Error,
    },

    /// A topic name that resolves to no stream.
    #[error("{0}")]
    UnknownTopic(String),

    /// A malformed topic name.
    #[error("{0}")]
    InvalidTopic(String),

    /// A topic id: ids are not kept (Metadata reports none), so none is known.
    #[error("topic id {0} is unknown: topics are named, not numbered, here; use the name")]
    UnknownTopicId(uuid::Uuid),

    /// A partition count that is not a growth, or out of range.
    #[error("{0}")]
    InvalidPartitions(String),

    #[error(
        "replication factor {0}: a Tributary cluster keeps one copy of each partition today \
         (copies go to other clusters through replica links); ask for 1 or -1"
    )]
    InvalidReplicationFactor(i16),

    /// A topic config the stream cannot hold (an unknown key, a read-only one, a value
    /// out of range).
    #[error("{0}")]
    InvalidConfig(String),

    /// An admin request asked for what this door does not do (manual replica
    /// assignments, a key or name twice, a resource type not served).
    #[error("{0}")]
    InvalidRequest(String),

    /// A transactional id: transactions are not served, so no transaction coordinator is
    /// available, as FindCoordinator answers for its key.
    #[error("transactional id {0}: transactions are not supported")]
    TransactionsNotServed(String),
}

/// What an admin request asked of the namespace, which decides a refusal's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// Create, grow or delete a topic.
    Topic,
    /// Describe or alter a topic's configs, which are its stream's attributes.
    TopicConfig,
    /// Alter the broker's configs.
    Cluster,
    /// Allocate an idempotent producer id (Kafka's IdempotentWrite on the cluster).
    ProducerId,
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
            Error::Unauthenticated(_) | Error::SessionExpired(_) => {
                ResponseError::SaslAuthenticationFailed.code()
            }
            Error::UnknownApi(_) | Error::Io(_) | Error::Tls(_) => {
                ResponseError::UnknownServerError.code()
            }
            Error::Refused { asked, source } => admin_code(*asked, source),
            Error::UnknownTopic(_) => ResponseError::UnknownTopicOrPartition.code(),
            Error::InvalidTopic(_) => ResponseError::InvalidTopicException.code(),
            Error::UnknownTopicId(_) => ResponseError::UnknownTopicId.code(),
            Error::InvalidPartitions(_) => ResponseError::InvalidPartitions.code(),
            Error::InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor.code(),
            Error::InvalidConfig(_) => ResponseError::InvalidConfig.code(),
            Error::InvalidRequest(_) => ResponseError::InvalidRequest.code(),
            Error::TransactionsNotServed(_) => ResponseError::CoordinatorNotAvailable.code(),
        }
    }
}

/// The code of a namespace refusal of an admin request. A bad argument is told by its
/// field: a partition count, a stream attribute (a topic config), or else the name; an
/// ACL refusal is the topic's, or the cluster's for broker configs; a read-only mirror
/// refuses by policy.
fn admin_code(asked: Asked, e: &tributary_volume::Error) -> i16 {
    use tributary_volume::Error as V;
    let code = match (asked, e) {
        (
            Asked::Cluster | Asked::ProducerId,
            V::PermissionDenied { .. } | V::Unauthenticated(_),
        ) => ResponseError::ClusterAuthorizationFailed,
        (Asked::ProducerId, V::ShuttingDown) => ResponseError::CoordinatorNotAvailable,
        (Asked::ProducerId, _) => ResponseError::UnknownServerError,
        (Asked::TopicConfig, V::InvalidArgument { .. }) => ResponseError::InvalidConfig,
        (_, V::InvalidArgument { field, .. }) if field == "partitions" => {
            ResponseError::InvalidPartitions
        }
        (_, V::InvalidArgument { field, .. }) if field.starts_with("attributes") => {
            ResponseError::InvalidConfig
        }
        (_, V::FailedPrecondition(_)) => ResponseError::PolicyViolation,
        _ => return topic_code(e),
    };
    code.code()
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

/// The code a group call carries for what the namespace refused (the group's stream
/// refusing the caller is GROUP_AUTHORIZATION_FAILED).
pub(crate) fn group_code(e: &tributary_volume::Error) -> i16 {
    use tributary_core::Error as G;
    use tributary_volume::Error as V;
    let code = match e {
        V::PermissionDenied { .. } | V::Unauthenticated(_) => {
            ResponseError::GroupAuthorizationFailed
        }
        V::InvalidArgument { .. } => ResponseError::InvalidGroupId,
        V::NotFound { .. } => ResponseError::GroupIdNotFound,
        V::FailedPrecondition(_) => ResponseError::NonEmptyGroup,
        V::ShuttingDown => ResponseError::CoordinatorNotAvailable,
        V::Group(g) => match g {
            G::UnknownMember { .. } | G::Fenced { .. } | G::NotAssigned { .. } => {
                ResponseError::UnknownMemberId
            }
            G::IllegalGeneration { .. } | G::StaleGeneration { .. } => {
                ResponseError::IllegalGeneration
            }
            G::RebalanceInProgress { .. } => ResponseError::RebalanceInProgress,
            G::InconsistentProtocol { .. } | G::AssignorMismatch { .. } => {
                ResponseError::InconsistentGroupProtocol
            }
            G::FencedInstance { .. } => ResponseError::FencedInstanceId,
            G::MemberIdRequired { .. } => ResponseError::MemberIdRequired,
            G::SessionTimeout { .. } => ResponseError::InvalidSessionTimeout,
            G::GroupFull { .. } => ResponseError::GroupMaxSizeReached,
            _ => ResponseError::UnknownServerError,
        },
        _ => ResponseError::UnknownServerError,
    };
    code.code()
}

/// The code one partition of an OffsetCommit or OffsetFetch carries: the group's refusals
/// as for the group, the rest as for the topic.
pub(crate) fn partition_code(e: &tributary_volume::Error) -> i16 {
    match e {
        tributary_volume::Error::Group(_) => group_code(e),
        e => topic_code(e),
    }
}

/// The code a produced partition carries for what the namespace refused: a refused batch
/// by the check it failed, the rest as for any topic. An idempotent producer's refusals
/// are the codes Kafka's broker answers (`ProducerAppendInfo`): an older epoch is
/// INVALID_PRODUCER_EPOCH (since Kafka 2.7), a gap, an old batch not among the last five
/// or a retry with another record count OUT_OF_ORDER_SEQUENCE_NUMBER, and an unknown
/// producer's first sequence other than 0 UNKNOWN_PRODUCER_ID (see `producers.rs`).
/// A duplicate is not refused: it is answered with its original offset.
pub(crate) fn produce_code(e: &tributary_volume::Error) -> i16 {
    use tributary_core::Error as Core;
    use tributary_volume::Error as V;
    use tributary_volume::SequenceRefusal;
    let code = match e {
        V::InvalidBatch(Core::TooLarge { .. }) => ResponseError::MessageTooLarge,
        V::InvalidBatch(Core::Checksum { .. }) => ResponseError::CorruptMessage,
        V::InvalidBatch(Core::UnsupportedCompression { .. }) => {
            ResponseError::UnsupportedCompressionType
        }
        V::InvalidBatch(_) => ResponseError::InvalidRecord,
        V::Sequence { refusal, .. } => match refusal {
            SequenceRefusal::Fenced => ResponseError::InvalidProducerEpoch,
            SequenceRefusal::OutOfOrder => ResponseError::OutOfOrderSequenceNumber,
            SequenceRefusal::UnknownProducer => ResponseError::UnknownProducerId,
        },
        V::FailedPrecondition(_) => ResponseError::PolicyViolation,
        e => return topic_code(e),
    };
    code.code()
}

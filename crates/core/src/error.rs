//! The pure code's error type: the failures names, ACL-bearing requests, consumer groups and
//! record batches can raise. The namespace turns a bad argument into its own
//! `InvalidArgument` and carries a group's refusals as they are (`Error::Group`).

/// A failure of the pure code; each message names what the caller can act on (design §7).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A bad name or argument; `field` is the request field at fault.
    #[error("{field}: {message}")]
    InvalidArgument { field: String, message: String },

    /// A consumer-group call made at a generation that is no longer current.
    #[error("group {group}: generation {given} is stale; the current generation is {current}")]
    StaleGeneration {
        group: String,
        given: u64,
        current: u64,
    },

    /// A consumer-group call from a member id the group does not know.
    #[error("group {group} has no member {member}; join without a member id")]
    UnknownMember { group: String, member: String },

    /// A consumer-group call from a member the group removed (a zombie).
    #[error("group {group} removed member {member} because {reason}; join without a member id")]
    Fenced {
        group: String,
        member: String,
        reason: crate::groups::RemovedReason,
    },

    /// A commit for a partition the member neither owns nor is revoking.
    #[error("group {group}: member {member} is not assigned {topic} #{partition}")]
    NotAssigned {
        group: String,
        member: String,
        topic: String,
        partition: u32,
    },

    /// A member asked for another assignor than the group's.
    #[error(
        "assignor: group {group} uses the {group_assignor} assignor; the member asked for {asked}"
    )]
    AssignorMismatch {
        group: String,
        group_assignor: &'static str,
        asked: &'static str,
    },

    /// A Kafka group's join without a member id (version 4 and later): the client must join
    /// again with the member id given (Kafka's MEMBER_ID_REQUIRED).
    #[error("group {group}: join again with the member id {member}")]
    MemberIdRequired { group: String, member: String },

    /// A Kafka group is gathering its members: rejoin (REBALANCE_IN_PROGRESS).
    #[error("group {group} is rebalancing; join again")]
    RebalanceInProgress { group: String },

    /// A member whose protocols the group cannot use, or a member of one group protocol
    /// (Kafka's classic, Tributary's) while the group has live members of the other
    /// (INCONSISTENT_GROUP_PROTOCOL).
    #[error("group {group}: {detail}")]
    InconsistentProtocol { group: String, detail: String },

    /// A static member's instance id now belongs to a newer member id (FENCED_INSTANCE_ID).
    #[error("group {group}: instance {instance} has joined again under another member id")]
    FencedInstance { group: String, instance: String },

    /// A Kafka group call at a generation that is not the group's (ILLEGAL_GENERATION).
    #[error("group {group}: generation {given} is not the current generation {current}")]
    IllegalGeneration {
        group: String,
        given: i32,
        current: i32,
    },

    /// A session timeout outside what the group accepts (INVALID_SESSION_TIMEOUT).
    #[error("group {group}: session timeout {given} ms is outside {min} to {max} ms")]
    SessionTimeout {
        group: String,
        given: i32,
        min: i32,
        max: i32,
    },

    /// A group already holding its most members (GROUP_MAX_SIZE_REACHED).
    #[error("group {group} has reached its limit of {limit} members")]
    GroupFull { group: String, limit: usize },

    /// A record larger than the stream's `max_message_bytes` (Kafka's MESSAGE_TOO_LARGE).
    #[error("{field}: record is {size} bytes; the stream's max_message_bytes is {limit}")]
    TooLarge {
        field: String,
        size: usize,
        limit: usize,
    },

    /// A Kafka batch whose CRC does not match its bytes (Kafka's CORRUPT_MESSAGE).
    #[error("{field}: the batch's CRC is {expected:#010x} but its bytes give {actual:#010x}")]
    Checksum {
        field: String,
        expected: u32,
        actual: u32,
    },

    /// A Kafka batch compressed with a codec Kafka does not define.
    #[error(
        "{field}: compression codec {codec} is not one of none (0), gzip (1), snappy (2), lz4 (3), zstd (4)"
    )]
    UnsupportedCompression { field: String, codec: u8 },

    /// A stored batch that does not decode or cannot be cut as asked: the store holds
    /// something that was never a validated batch.
    #[error("corrupt stored batch: {detail}")]
    CorruptBatch { detail: String },
}

impl Error {
    pub(crate) fn invalid(field: &str, message: String) -> Self {
        Error::InvalidArgument {
            field: field.to_owned(),
            message,
        }
    }

    pub(crate) fn corrupt(detail: impl Into<String>) -> Self {
        Error::CorruptBatch {
            detail: detail.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

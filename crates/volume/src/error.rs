//! The namespace layer's error type: one variant per kind of failure a client can act on
//! (design §7). `tributary-api` maps each variant to a gRPC status in one place.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad name, attribute or argument; `field` is the request field at fault.
    #[error("{field}: {message}")]
    InvalidArgument { field: String, message: String },

    #[error("{what} {path} does not exist")]
    NotFound { what: &'static str, path: String },

    #[error("{what} {path} already exists")]
    AlreadyExists { what: &'static str, path: String },

    /// No or bad credentials.
    #[error("{0}")]
    Unauthenticated(String),

    /// An ACL refused the call; `permission` is `any` when the caller holds none at all.
    #[error("{}", denied(who, permission, path))]
    PermissionDenied {
        who: String,
        permission: &'static str,
        path: String,
    },

    /// A volume quota would be passed; nothing was written.
    #[error(
        "volume {volume} would pass its {quota} quota of {limit} (using {used}, asked for {asked} more)"
    )]
    QuotaExceeded {
        volume: String,
        quota: &'static str,
        limit: u64,
        used: u64,
        asked: u64,
    },

    /// The request is valid but the state forbids it (e.g. deleting a non-empty volume).
    #[error("{0}")]
    FailedPrecondition(String),

    #[error(
        "offset {offset} is out of range for {path}: valid offsets are {log_start} to {high_watermark}"
    )]
    OffsetOutOfRange {
        path: String,
        offset: u64,
        log_start: u64,
        high_watermark: u64,
    },

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
        reason: tributary_core::groups::RemovedReason,
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

    #[error(transparent)]
    Storage(#[from] tributary_storage::Error),

    /// A blocking storage task could not run (the runtime is shutting down).
    #[error("server is shutting down")]
    ShuttingDown,
}

fn denied(who: &str, permission: &str, path: &str) -> String {
    match permission {
        "any" => format!("{who} has no permission on {path}"),
        p => format!("{who} lacks the `{p}` permission on {path}"),
    }
}

/// Each error of the pure code is the namespace's variant of the same name and message; a
/// stored batch that does not decode is the store's corruption, as when storage finds it.
impl From<tributary_core::Error> for Error {
    fn from(e: tributary_core::Error) -> Self {
        use tributary_core::Error as Core;
        match e {
            Core::InvalidArgument { field, message } => Error::InvalidArgument { field, message },
            Core::StaleGeneration {
                group,
                given,
                current,
            } => Error::StaleGeneration {
                group,
                given,
                current,
            },
            Core::UnknownMember { group, member } => Error::UnknownMember { group, member },
            Core::Fenced {
                group,
                member,
                reason,
            } => Error::Fenced {
                group,
                member,
                reason,
            },
            Core::NotAssigned {
                group,
                member,
                topic,
                partition,
            } => Error::NotAssigned {
                group,
                member,
                topic,
                partition,
            },
            Core::AssignorMismatch {
                group,
                group_assignor,
                asked,
            } => Error::AssignorMismatch {
                group,
                group_assignor,
                asked,
            },
            Core::CorruptBatch { detail } => Error::Storage(tributary_storage::Error::Corrupt {
                what: "stored batch",
                detail,
            }),
        }
    }
}

impl Error {
    pub(crate) fn invalid(field: &str, message: String) -> Self {
        Error::InvalidArgument {
            field: field.to_owned(),
            message,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

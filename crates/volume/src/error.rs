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

    /// A Kafka record batch refused as a Kafka broker refuses one; which check failed (a
    /// CRC, a record's size, the codec, the framing) picks the Kafka door's error code.
    #[error(transparent)]
    InvalidBatch(tributary_core::Error),

    /// A consumer-group call the group's state machine refused (a stale generation, an
    /// unknown or fenced member, a partition not assigned, another assignor), as
    /// `tributary_core` raised it.
    #[error(transparent)]
    Group(tributary_core::Error),

    /// An idempotent producer's batch refused by its epoch or sequence (storage's rules,
    /// design §1.3 invariant 7); nothing was written. The refusal picks the Kafka code.
    #[error("{message}")]
    Sequence {
        refusal: SequenceRefusal,
        message: String,
    },

    #[error(transparent)]
    Storage(#[from] tributary_storage::Error),

    /// A retention pass that failed on some streams (each logged) and ran on the others.
    #[error("retention failed on {failed} of {streams} streams; the first, {stream}: {first}")]
    Retention {
        failed: usize,
        streams: usize,
        stream: String,
        #[source]
        first: Box<Error>,
    },

    /// A blocking storage task could not run (the runtime is shutting down).
    #[error("server is shutting down")]
    ShuttingDown,
}

/// Why an idempotent producer's batch was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceRefusal {
    /// An epoch older than the producer's latest on the partition.
    Fenced,
    /// Not the next sequence, nor a retry of one of the last five batches (or one whose
    /// record count differs from the original's).
    OutOfOrder,
    /// A sequence other than 0 from a producer the partition has no state for (never
    /// seen, or expired).
    UnknownProducer,
}

fn denied(who: &str, permission: &str, path: &str) -> String {
    match permission {
        "any" => format!("{who} has no permission on {path}"),
        p => format!("{who} lacks the `{p}` permission on {path}"),
    }
}

/// A bad argument the pure code found is the namespace's own `InvalidArgument`, and a stored
/// batch that does not decode is the store's corruption, as when storage finds it; the rest
/// are the group state machine's refusals.
impl From<tributary_core::Error> for Error {
    fn from(e: tributary_core::Error) -> Self {
        use tributary_core::Error as Core;
        match e {
            Core::InvalidArgument { field, message } => Error::InvalidArgument { field, message },
            Core::TooLarge { ref field, .. }
            | Core::Checksum { ref field, .. }
            | Core::UnsupportedCompression { ref field, .. } => {
                let message = e.to_string();
                let message = message
                    .strip_prefix(&format!("{field}: "))
                    .unwrap_or(&message)
                    .to_owned();
                Error::InvalidArgument {
                    field: field.clone(),
                    message,
                }
            }
            Core::CorruptBatch { detail } => Error::Storage(tributary_storage::Error::Corrupt {
                what: "stored batch",
                detail,
            }),
            e => Error::Group(e),
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

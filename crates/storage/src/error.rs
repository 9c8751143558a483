//! The storage error type. RocksDB's error is wrapped, never exposed as such.

use std::path::PathBuf;

use crate::keys::PartitionId;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("partition {0} does not exist")]
    UnknownPartition(PartitionId),

    #[error("offset {offset} is out of range: valid offsets are {log_start} to {high_watermark}")]
    OffsetOutOfRange {
        offset: u64,
        log_start: u64,
        high_watermark: u64,
    },

    #[error("partition {partition}: expected the next offset to be {expected}, it is {actual}")]
    OffsetMismatch {
        partition: PartitionId,
        expected: u64,
        actual: u64,
    },

    #[error("producer {producer} epoch {epoch} is fenced by epoch {current}")]
    ProducerFenced {
        producer: u64,
        epoch: u32,
        current: u32,
    },

    #[error("producer {producer}: sequence gap, expected {expected}, got {got}")]
    SequenceGap {
        producer: u64,
        expected: u64,
        got: u64,
    },

    #[error(
        "producer {producer} has no state on partition {partition} (never seen or expired) and sent sequence {sequence}, not 0"
    )]
    UnknownProducer {
        partition: PartitionId,
        producer: u64,
        sequence: u64,
    },

    #[error(
        "producer {producer}: sequence {sequence} was acknowledged too long ago to return its offsets (next is {next})"
    )]
    StaleSequence {
        producer: u64,
        sequence: u64,
        next: u64,
    },

    #[error(
        "producer {producer}: sequence {sequence} was first sent with {original} records, now with {records}"
    )]
    SequenceMismatch {
        producer: u64,
        sequence: u64,
        records: u32,
        original: u32,
    },

    /// An offset-keeping mirror was sent new records at offsets it already holds: its
    /// source lost records the mirror has (design §6.3).
    #[error(
        "the source's offsets diverged at {offset}: it lost records this mirror holds \
         (partition {partition} here ends at {end}); promote the mirror or re-seed it"
    )]
    MirrorDiverged {
        partition: PartitionId,
        offset: u64,
        end: u64,
    },

    #[error("batch of {bytes} bytes is larger than the {limit}-byte limit of one stored batch")]
    BatchTooLarge { bytes: usize, limit: usize },

    #[error("{path}: {reason}; refusing to open it as a Tributary data directory")]
    ForeignDataDir { path: PathBuf, reason: String },

    #[error("{path} is in use by another process (is another tributary server running on it?)")]
    InUse { path: PathBuf },

    /// RocksDB found its own files damaged while opening the store. Nothing is repaired:
    /// the files stay as they are for an operator (or a restore) to deal with.
    #[error(
        "{path}: the store is damaged ({detail}); refusing to open it. Nothing was changed or \
         repaired: restore the data directory from a backup or a replica"
    )]
    Damaged { path: PathBuf, detail: String },

    #[error("corrupt {what} in the store: {detail}")]
    Corrupt { what: &'static str, detail: String },

    /// The disk holding the store is full. Writes fail until space is freed; then RocksDB
    /// recovers by itself (its `SstFileManager` polls the free space) and writes resume.
    /// Reads keep working throughout.
    #[error("disk full, writes are refused until space is freed (reads still work): {0}")]
    DiskFull(String),

    #[error("storage engine: {0}")]
    Engine(EngineError),

    /// The appender thread dropped an append without answering, which only a bug in it can
    /// do (see the server log). The append may or may not have been written.
    #[error("the store's appender stopped before answering; the append may or may not be stored")]
    AppenderStopped,

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn corrupt(what: &'static str, detail: String) -> Self {
        Error::Corrupt { what, detail }
    }

    /// An error of RocksDB while opening the store at `path`, with the cases an operator
    /// must act on told apart: another process holds it, or its files are damaged.
    pub(crate) fn at_open(path: &std::path::Path, e: rocksdb::Error) -> Self {
        match e.kind() {
            rocksdb::ErrorKind::IOError if e.as_ref().contains("/LOCK") => Error::InUse {
                path: path.to_owned(),
            },
            rocksdb::ErrorKind::Corruption => Error::Damaged {
                path: path.to_owned(),
                detail: e.into_string(),
            },
            _ => e.into(),
        }
    }

    /// The same failure again, for another of the appends it failed together (a group's
    /// write or fsync).
    pub(crate) fn again(&self) -> Self {
        match self {
            Error::Engine(EngineError(e)) => Error::Engine(EngineError(e.clone())),
            Error::DiskFull(m) => Error::DiskFull(m.clone()),
            Error::Io { path, source } => Error::Io {
                path: path.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            other => Error::corrupt("shared write", other.to_string()),
        }
    }

    /// True when an offset-keeping mirror's source lost records the mirror holds.
    pub fn is_mirror_divergence(&self) -> bool {
        matches!(self, Error::MirrorDiverged { .. })
    }

    /// True for failures of the disk or engine rather than of the request.
    pub fn is_engine(&self) -> bool {
        matches!(
            self,
            Error::Engine(_)
                | Error::AppenderStopped
                | Error::Io { .. }
                | Error::Corrupt { .. }
                | Error::Damaged { .. }
                | Error::DiskFull(_)
        )
    }
}

/// An error reported by the storage engine.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct EngineError(rocksdb::Error);

impl From<rocksdb::Error> for Error {
    fn from(e: rocksdb::Error) -> Self {
        if is_no_space(&e) {
            return Error::DiskFull(e.into_string());
        }
        Error::Engine(EngineError(e))
    }
}

/// RocksDB reports a full disk (ENOSPC, or its own space limit) as an I/O error whose
/// text carries the sub-code; the C API keeps no other trace of it.
fn is_no_space(e: &rocksdb::Error) -> bool {
    e.kind() == rocksdb::ErrorKind::IOError
        && ["No space left on device", "Space limit reached"]
            .iter()
            .any(|m| e.as_ref().contains(m))
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

//! Online backup: a RocksDB checkpoint of the live store, taken at one instant while
//! writers go on. The copy is a complete data directory (`DIR/db`), so restoring it is
//! starting a server on it.

use std::path::{Path, PathBuf};

use rocksdb::checkpoint::Checkpoint;

use crate::error::{Error, Result};
use crate::state::Store;

/// Where a checkpoint directory keeps the store, as a data directory does.
pub const CHECKPOINT_DB: &str = "db";

/// A checkpoint written to disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointInfo {
    /// The store inside the checkpoint directory (`DIR/db`).
    pub db_path: PathBuf,
    /// Sum of its files' sizes (hard-linked files count in full).
    pub bytes: u64,
}

impl Store {
    /// Writes a consistent copy of the store into `dir/db`. `dir` must exist and be empty
    /// (the caller creates it, so that two checkpoints never share one). The memtables are
    /// flushed first, so the copy needs no write-ahead log; SST and blob files are
    /// hard-linked when `dir` is on the same filesystem, else copied.
    pub fn checkpoint(&self, dir: &Path) -> Result<CheckpointInfo> {
        let db_path = dir.join(CHECKPOINT_DB);
        Checkpoint::new(self.db())?.create_checkpoint(&db_path)?;
        // Make the new directory entries durable, not only the files.
        for d in [db_path.as_path(), dir] {
            std::fs::File::open(d)
                .and_then(|f| f.sync_all())
                .map_err(|source| Error::Io {
                    path: d.to_owned(),
                    source,
                })?;
        }
        let bytes = dir_size(&db_path)?;
        Ok(CheckpointInfo { db_path, bytes })
    }
}

fn dir_size(dir: &Path) -> Result<u64> {
    let io = |source| Error::Io {
        path: dir.to_owned(),
        source,
    };
    let mut total = 0;
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let meta = entry.map_err(io)?.metadata().map_err(io)?;
        if meta.is_file() {
            total += meta.len();
        }
    }
    Ok(total)
}

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

#[cfg(test)]
mod tests {
    use crate::tests::{new_partition, open};
    use crate::*;

    #[test]
    fn a_checkpoint_opens_as_the_same_store_with_the_same_data() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let id = new_partition(&store);
        let mut tx = CatalogTx::default();
        tx.put(b"x-row", b"catalog".to_vec());
        store.commit(tx).unwrap();
        let append = |byte: u8| {
            store
                .append(Durability::Buffered, &[id], |_, _| NewBatch {
                    value: vec![byte; 1000],
                    record_count: 2,
                    append_time_ms: 1,
                    max_timestamp_ms: 1,
                })
                .unwrap()
        };
        append(1);
        append(2);

        let backup = dir.path().join("backup");
        std::fs::create_dir(&backup).unwrap();
        let info = store.checkpoint(&backup).unwrap();
        assert_eq!(info.db_path, backup.join(CHECKPOINT_DB));
        assert!(info.bytes > 2000, "{info:?}");
        // Later writes stay out of the copy.
        append(3);
        // The target must be new.
        assert!(store.checkpoint(&backup).is_err());

        let copy = Store::open(&info.db_path, &StoreOptions::default()).unwrap();
        assert_eq!(copy.identity(), store.identity());
        assert_eq!(copy.catalog_get(b"x-row").unwrap().unwrap(), b"catalog");
        let read = copy.read(id, 0, usize::MAX, None).unwrap();
        assert_eq!(read.high_watermark, 4);
        let values: Vec<u8> = read.batches.iter().map(|b| b.value[0]).collect();
        assert_eq!(values, [1, 2]);
        assert_eq!(
            store.read(id, 0, usize::MAX, None).unwrap().high_watermark,
            6
        );
    }
}

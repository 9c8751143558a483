//! The small RocksDB helpers every module uses: a column family's handle, a point read,
//! write options by durability, and one partition's key range.

use rocksdb::{ColumnFamily, DB, WriteOptions};

use crate::error::Result;
use crate::keys::{self, PartitionId};
use crate::types::Durability;

/// The handle of column family `name` (see `keys::cf`), for code that has the database and
/// not the `Store` (which has `Store::cf`).
pub(crate) fn cf<'a>(db: &'a DB, name: &str) -> &'a ColumnFamily {
    db.cf_handle(name)
        .expect("column families are created at open")
}

/// Write options for `d`: `sync` fsyncs the write-ahead log before the write returns.
pub(crate) fn write_options(d: Durability) -> WriteOptions {
    let mut wo = WriteOptions::default();
    wo.set_sync(d == Durability::Sync);
    wo
}

/// A point read of `key` in column family `cf_name`.
pub(crate) fn get(db: &DB, cf_name: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
    Ok(db.get_pinned_cf(cf(db, cf_name), key)?.map(|v| v.to_vec()))
}

/// The key range `[start, end)` of partition `id` in the `log`, `index` and `producers`
/// column families (see `keys::partition_start`).
pub(crate) fn partition_range(id: PartitionId) -> (Vec<u8>, Vec<u8>) {
    let end = match id.checked_add(1) {
        Some(next) => keys::partition_start(next).to_vec(),
        None => vec![0xFF; keys::LOG_KEY_LEN + 1],
    };
    (keys::partition_start(id).to_vec(), end)
}

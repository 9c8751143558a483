//! Tests of online backups (`checkpoint.rs`).

use super::{new_partition, open};
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
    let (a, b) = (copy.identity(), store.identity());
    assert_eq!((a.cluster_id, a.created_ms), (b.cluster_id, b.created_ms));
    // Started, the copy is a new incarnation of the same cluster (design §6.3).
    assert_ne!(a.incarnation, b.incarnation);
    assert_eq!(a.previous_incarnation, b.incarnation);
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

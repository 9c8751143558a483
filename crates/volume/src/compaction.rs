//! Key compaction's view of a stored batch: storage's `KeyCodec` over the pure functions of
//! `tributary_core::batch`. Storage parses no protobuf and the pure code links no storage, so
//! the adapter between them lives here, beside the retention pass that hands it to storage.

use std::ops::Range;

use bytes::Bytes;
use tributary_core::batch;
use tributary_storage::KeyCodec;

/// Stored batches as key compaction sees them: [`batch::for_each_key`] and [`batch::cut`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Codec;

impl KeyCodec for Codec {
    fn for_each_key(
        &self,
        stored: &Bytes,
        f: &mut dyn FnMut(Option<&[u8]>, bool),
    ) -> Result<u32, String> {
        batch::for_each_key(stored, f).map_err(detail)
    }

    fn cut(
        &self,
        stored: &Bytes,
        base_offset: u64,
        runs: &[Range<u32>],
    ) -> Result<Vec<Vec<u8>>, String> {
        batch::cut(stored, base_offset, runs).map_err(detail)
    }
}

/// What is wrong with the batch; storage's error names the batch and the store.
fn detail(e: tributary_core::Error) -> String {
    match e {
        tributary_core::Error::CorruptBatch { detail } => detail,
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_core::TimestampType;
    use tributary_proto::v1::Record;

    #[test]
    #[allow(clippy::single_range_in_vec_init)] // one run is a valid cut
    fn errors_say_what_is_wrong_with_the_batch() {
        let body = batch::encode_records(vec![Record::default(), Record::default()]);
        let fields = batch::ServerFields {
            base_offset: 10,
            append_time_ms: 0,
            origin_cluster: [0; 16],
            origin_base_offset: 10,
            timestamp_type: TimestampType::CreateTime,
            origin_incarnation: 1,
        };
        let stored = Bytes::from(batch::stored_value(&body, &fields));
        assert_eq!(Codec.for_each_key(&stored, &mut |_, _| {}), Ok(2));
        assert_eq!(Codec.cut(&stored, 10, &[1..2]).map(|c| c.len()), Ok(1));
        assert_eq!(
            Codec.cut(&stored, 11, &[0..1]),
            Err("the batch says base offset 10, stored at 11".to_owned())
        );
        assert_eq!(
            Codec.cut(&stored, 10, &[1..3]),
            Err("no records 1..3 in a batch of 2".to_owned())
        );
        let garbage = Bytes::from_static(&[0x0a, 0x05]);
        assert!(Codec.for_each_key(&garbage, &mut |_, _| {}).is_err());
    }
}

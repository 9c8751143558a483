//! Kafka's default partitioner, bit for bit, so Kafka clients and Tributary agree on where a
//! keyed record lives.

/// `toPositive(murmur2(key)) % partitions`, as in Kafka's `BuiltInPartitioner`.
pub fn partition_for_key(key: &[u8], partitions: u32) -> u32 {
    debug_assert!(partitions > 0);
    (murmur2::murmur2(key, murmur2::KAFKA_SEED) & 0x7fff_ffff) % partitions
}

/// Where a record's key puts it, as Kafka decides: any non-null key, the empty one
/// included, by [`partition_for_key`]; a null key nowhere in particular (`None`), and the
/// caller spreads it (round robin, or a sticky partition per batch).
pub fn partition_for(key: Option<&[u8]>, partitions: u32) -> Option<u32> {
    key.map(|k| partition_for_key(k, partitions))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Java's murmur2 of the keys of librdkafka's `unittest_murmur2` (its
    /// `java_murmur2_results`, taken from Kafka's `Utils.murmur2`), the empty key among them.
    const JAVA_VECTORS: &[(&[u8], u32)] = &[
        (b"kafka", 0xd067_cf64),
        (b"giberish123456789", 0x8f55_2b0c),
        (b"1234", 0x9fc9_7b14),
        (b"234", 0xe7c0_09ca),
        (b"34", 0x8739_30da),
        (b"4", 0x5a4b_5ca1),
        (b"PreAmbleWillBeRemoved,ThePrePartThatIs", 0x7842_4f1c),
        (b"reAmbleWillBeRemoved,ThePrePartThatIs", 0x4a62_b377),
        (b"", 0x106e_08d9),
    ];

    proptest! {
        /// Kafka hashes an empty key like any other and spreads only a null one, whatever
        /// the partition count.
        #[test]
        fn an_empty_key_is_hashed_and_a_null_key_spread(n in 1u32..) {
            prop_assert_eq!(partition_for(Some(b""), n), Some(0x106e_08d9 % n));
            prop_assert_eq!(partition_for(None, n), None);
        }

        #[test]
        fn keys_go_where_kafka_puts_them(i in 0..JAVA_VECTORS.len(), n in 1u32..) {
            let (key, hash) = JAVA_VECTORS[i];
            prop_assert_eq!(murmur2::murmur2(key, murmur2::KAFKA_SEED), hash);
            prop_assert_eq!(partition_for(Some(key), n), Some((hash & 0x7fff_ffff) % n));
        }
    }

    /// Vectors from Kafka's `UtilsTest.testMurmur2` (signed Java ints).
    #[test]
    fn matches_kafkas_murmur2() {
        let cases: &[(&str, i32)] = &[
            ("21", -973_932_308),
            ("foobar", -790_332_482),
            ("a-little-bit-long-string", -985_981_536),
            ("a-little-bit-longer-string", -1_486_304_829),
            (
                "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            ("abc", 479_470_107),
        ];
        for &(key, expected) in cases {
            assert_eq!(
                murmur2::murmur2(key.as_bytes(), murmur2::KAFKA_SEED) as i32,
                expected,
                "{key}"
            );
        }
    }

    #[test]
    fn partitions_are_positive_modulo() {
        // murmur2("foobar") is negative as a Java int; Kafka masks the sign bit first.
        let h = (-790_332_482i32 as u32) & 0x7fff_ffff;
        assert_eq!(partition_for_key(b"foobar", 3), h % 3);
        for n in 1..50 {
            assert!(partition_for_key(b"k", n) < n);
        }
    }
}

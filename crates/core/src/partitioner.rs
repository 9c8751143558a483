//! Kafka's default partitioner, bit for bit, so Kafka clients and Tributary agree on where a
//! keyed record lives.

/// `toPositive(murmur2(key)) % partitions`, as in Kafka's `BuiltInPartitioner`.
pub fn partition_for_key(key: &[u8], partitions: u32) -> u32 {
    debug_assert!(partitions > 0);
    (murmur2::murmur2(key, murmur2::KAFKA_SEED) & 0x7fff_ffff) % partitions
}

#[cfg(test)]
mod tests {
    use super::*;

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

//! The consumer protocol's assignment (Kafka's `ConsumerProtocolAssignment`): what a
//! consumer group's leader gives each member through SyncGroup. The group relays it as
//! opaque bytes; only the views of a group (`tributary group info`) read it, to show which
//! member reads what, as Kafka's `kafka-consumer-groups --describe --members` does.
//!
//! ```text
//! version: int16 | count: int32, then per topic: name (int16 length, UTF-8),
//! count: int32, then partition: int32 each | user_data: nullable bytes (ignored)
//! ```
//!
//! Versions 0–3 have this layout; a later version is read as the latest known, as Kafka's
//! clients read one. The bytes come from a client: every length is checked against what is
//! left before anything is read, and nothing is sized by a count.

/// Each topic named with its partitions, in the leader's order; `None` when the bytes are
/// not an assignment of the consumer protocol.
pub fn consumer_assignment(bytes: &[u8]) -> Option<Vec<(String, Vec<i32>)>> {
    let mut r = Reader(bytes);
    if r.i16()? < 0 {
        return None;
    }
    let topics = r.count()?;
    let mut out = Vec::new();
    for _ in 0..topics {
        let len = usize::try_from(r.i16()?).ok()?;
        let name = std::str::from_utf8(r.take(len)?).ok()?.to_owned();
        let n = r.count()?;
        let mut partitions = Vec::new();
        for _ in 0..n {
            partitions.push(r.i32()?);
        }
        out.push((name, partitions));
    }
    Some(out)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }

    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    /// An array's count: not negative (the arrays here are not nullable).
    fn count(&mut self) -> Option<usize> {
        usize::try_from(self.i32()?).ok()
    }
}

#[cfg(test)]
mod tests {
    use bytes::{BufMut, Bytes, BytesMut};
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::messages::consumer_protocol_assignment::{
        ConsumerProtocolAssignment, TopicPartition,
    };
    use kafka_protocol::protocol::{Encodable, StrBytes};
    use proptest::prelude::*;

    use super::consumer_assignment;

    fn encoded(version: i16, topics: &[(String, Vec<i32>)], user_data: Option<&[u8]>) -> Bytes {
        let a = ConsumerProtocolAssignment::default()
            .with_assigned_partitions(
                topics
                    .iter()
                    .map(|(t, ps)| {
                        TopicPartition::default()
                            .with_topic(TopicName(StrBytes::from_string(t.clone())))
                            .with_partitions(ps.clone())
                    })
                    .collect(),
            )
            .with_user_data(user_data.map(Bytes::copy_from_slice));
        let mut buf = BytesMut::new();
        buf.put_i16(version);
        a.encode(&mut buf, version.min(3)).unwrap();
        buf.freeze()
    }

    fn topics() -> impl Strategy<Value = Vec<(String, Vec<i32>)>> {
        proptest::collection::vec(
            (
                "[a-z0-9._-]{0,12}|/[a-z]{1,4}/[a-z]{1,4}:[a-z]{1,6}",
                proptest::collection::vec(any::<i32>(), 0..6),
            ),
            0..5,
        )
    }

    proptest! {
        /// What kafka-protocol encodes, at every version, reads back; any cut of it is
        /// refused, never misread (the user data, last, is not read).
        #[test]
        fn kafka_protocols_encoding_reads_back(
            version in 0i16..6,
            topics in topics(),
            user_data in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
        ) {
            let bytes = encoded(version, &topics, user_data.as_deref());
            prop_assert_eq!(consumer_assignment(&bytes), Some(topics.clone()));
            let body = encoded(version, &topics, None).len() - 4;
            for cut in 0..body {
                prop_assert_eq!(consumer_assignment(&bytes[..cut]), None, "cut at {}", cut);
            }
        }

        /// Arbitrary bytes never panic, and never allocate by a count they claim.
        #[test]
        fn any_bytes_are_read_or_refused(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = consumer_assignment(&bytes);
        }
    }

    #[test]
    fn what_is_not_an_assignment_is_refused() {
        // A negative version, a negative count, a huge count with nothing behind it, a
        // name that is not UTF-8.
        assert_eq!(consumer_assignment(&[0xff, 0xff, 0, 0, 0, 0]), None);
        assert_eq!(consumer_assignment(&[0, 0, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(consumer_assignment(&[0, 0, 0x7f, 0xff, 0xff, 0xff]), None);
        assert_eq!(
            consumer_assignment(&[0, 0, 0, 0, 0, 1, 0, 1, 0xff, 0, 0, 0, 0]),
            None
        );
        assert_eq!(consumer_assignment(&[]), None);
        // The empty assignment a member with nothing gets.
        assert_eq!(
            consumer_assignment(&[0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]),
            Some(vec![])
        );
    }
}

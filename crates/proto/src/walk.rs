//! The one walker over protobuf framing, for code that reads an encoded message without
//! decoding it: counting a batch's records and headers, reading a stored batch's server
//! fields, cutting records off its front.
//!
//! It reads keys and varints with prost's own functions and skips a group whole as prost
//! skips an unknown one (`skip_field`, with prost's recursion limit), so it accepts every
//! message prost decodes: a count or a check made here before decoding cannot be dodged by
//! framing that prost would still decode.

use prost::encoding::{DecodeContext, WireType, decode_key, decode_varint, skip_field};

/// One field of an encoded message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    pub number: u32,
    pub value: Value<'a>,
    /// The message from this field on, and the length of this field's encoding in it.
    from: &'a [u8],
    len: usize,
}

impl<'a> Field<'a> {
    /// The field's whole encoding, key included. Sliced when asked for: a bounds check in
    /// every step of a walk that never asks cost the replica's header read a fifth.
    #[inline]
    pub fn encoded(&self) -> &'a [u8] {
        &self.from[..self.len]
    }
}

/// What a field holds, as far as the walker reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Varint(u64),
    /// The payload of a length-delimited field (bytes, a string, an embedded message).
    Bytes(&'a [u8]),
    /// A fixed 32- or 64-bit value, or a group (skipped whole).
    Other,
}

/// Framing that does not parse: a bad key or varint, a length past the end, an end-group
/// tag without its start, a group nested past prost's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Broken;

/// The fields of an encoded message, in order. At broken framing it yields `Err(Broken)`
/// once and ends.
pub fn fields(buf: &[u8]) -> Fields<'_> {
    Fields { buf }
}

/// See [`fields`].
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    buf: &'a [u8],
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<Field<'a>, Broken>;

    // Inlined into each caller's loop: walks run per record on the produce, fetch and
    // replication paths, and a call per field cost up to half again (benches/batch.rs of
    // tributary-core).
    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() {
            return None;
        }
        let from = self.buf;
        match read(&mut self.buf) {
            Some((number, value)) => Some(Ok(Field {
                number,
                value,
                from,
                len: from.len() - self.buf.len(),
            })),
            None => {
                self.buf = &[];
                Some(Err(Broken))
            }
        }
    }
}

/// Reads one field off `buf`, leaving `buf` after it.
#[inline(always)]
fn read<'a>(buf: &mut &'a [u8]) -> Option<(u32, Value<'a>)> {
    let (number, wire_type) = decode_key(buf).ok()?;
    let value = match wire_type {
        WireType::Varint => Value::Varint(decode_varint(buf).ok()?),
        WireType::LengthDelimited => {
            let len = usize::try_from(decode_varint(buf).ok()?).ok()?;
            let payload = buf.get(..len)?;
            *buf = &buf[len..];
            Value::Bytes(payload)
        }
        // Fixed widths, and a group skipped whole; an end-group tag here has no start.
        other => {
            skip_field(other, number, buf, DecodeContext::default()).ok()?;
            Value::Other
        }
    };
    Some((number, value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1;
    use prost::Message;

    fn walk(buf: &[u8]) -> Vec<Result<(u32, Value<'_>), Broken>> {
        fields(buf)
            .map(|f| f.map(|f| (f.number, f.value)))
            .collect()
    }

    #[test]
    fn reads_each_wire_type_and_keeps_each_fields_encoding() {
        // 1: bytes "ab", 2: varint 300, 3: fixed64, 4: group holding 5: varint, 6: fixed32.
        let buf = [
            0x0a, 2, b'a', b'b', 0x10, 0xac, 0x02, 0x19, 1, 2, 3, 4, 5, 6, 7, 8, 0x23, 0x28, 1,
            0x24, 0x35, 1, 2, 3, 4,
        ];
        assert_eq!(
            walk(&buf),
            vec![
                Ok((1, Value::Bytes(b"ab"))),
                Ok((2, Value::Varint(300))),
                Ok((3, Value::Other)),
                Ok((4, Value::Other)),
                Ok((6, Value::Other)),
            ]
        );
        let encoded: Vec<&[u8]> = fields(&buf).map(|f| f.unwrap().encoded()).collect();
        assert_eq!(encoded.concat(), buf);
        assert_eq!(encoded[3], [0x23, 0x28, 1, 0x24]);
    }

    #[test]
    fn broken_framing_ends_the_walk() {
        for broken in [
            &[0x0a, 0x05, 0x00][..], // a length past the end
            &[0x0b],                 // an unclosed group
            &[0x0b, 0x14],           // a group closed by another field's end
            &[0x0c],                 // an end without a start
            &[0x0a, 0x01],           // a payload cut short
            &[0x80],                 // a key cut short
            &[0x02, 0x00],           // field number 0
            &[0x0e, 0x00],           // wire type 6
            &[0x08, 0x80],           // a varint cut short
            &[0x09, 1, 2],           // a fixed64 cut short
        ] {
            let walked = walk(broken);
            assert_eq!(walked.last(), Some(&Err(Broken)), "{broken:02x?}");
            assert_eq!(walked.iter().filter(|f| f.is_err()).count(), 1);
        }
        // Fields before the break are read.
        assert_eq!(
            walk(&[0x08, 1, 0x0c]),
            vec![Ok((1, Value::Varint(1))), Err(Broken)]
        );
    }

    #[test]
    fn accepts_what_prost_decodes_and_no_more_at_group_depth() {
        // A group nested `depth` deep (field 15) in front of a batch's one record.
        let nested = |depth: usize| {
            let mut b = [0x7b].repeat(depth);
            b.extend([0x7c].repeat(depth));
            b.extend(
                v1::RecordBatch {
                    records: vec![v1::Record::default()],
                    ..Default::default()
                }
                .encode_to_vec(),
            );
            b
        };
        for depth in [1, 50, 99, 100, 101, 200] {
            let b = nested(depth);
            let decoded = v1::RecordBatch::decode(b.as_slice());
            let walked = fields(&b).collect::<Result<Vec<_>, _>>();
            assert_eq!(walked.is_ok(), decoded.is_ok(), "depth {depth}");
        }
    }
}

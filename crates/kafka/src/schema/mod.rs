//! The shape of every request this door decodes, and a walk over a request's bytes that
//! checks every length and count against the bytes left before `kafka-protocol` decodes
//! it. That crate sizes a vector by the count read off the wire (`Vec::with_capacity(n)`),
//! so eight hostile bytes could make it ask for gigabytes and abort the process; after
//! this walk, every count it reads is one whose elements are really there, and the
//! elements of one request are at most [`MAX_ELEMENTS`].
//!
//! A shape lists a message's fields with the versions that carry them and those in which
//! they may be null, as the protocol's reference describes each request. The walk also
//! refuses what the decoder would (a null where none is allowed, a string that is not
//! UTF-8), so tests can check each shape against `kafka-protocol` at every served
//! version: what its encoder writes walks to the end, and whatever the walk accepts, it
//! decodes.

mod requests;

pub(crate) use requests::shape;

/// Array elements one request may hold, at every depth: what decoding allocates grows
/// with them (tens of bytes of structure per element of a few bytes on the wire).
pub const MAX_ELEMENTS: usize = 1_000_000;

/// What a field holds.
#[derive(Debug, Clone, Copy)]
#[allow(dead_code, reason = "the kinds the requests still to be served hold")]
pub(crate) enum Kind {
    Bool,
    Int8,
    Int16,
    Int32,
    Int64,
    Float64,
    Uuid,
    /// A string: an `int16` length, or in flexible versions an unsigned varint length + 1.
    Str,
    /// Bytes (and record batches): an `int32` length, or a varint length + 1.
    Bytes,
    /// An array of fixed-size values: an `int32` count, or a varint count + 1.
    Array(&'static Kind),
    /// An array of strings.
    Strings,
    /// An array of structs.
    Structs(&'static [Field]),
    /// One struct, inline.
    Struct(&'static [Field]),
}

impl Kind {
    /// The size on the wire of a fixed-size value.
    fn fixed(self) -> Option<usize> {
        Some(match self {
            Kind::Bool | Kind::Int8 => 1,
            Kind::Int16 => 2,
            Kind::Int32 => 4,
            Kind::Int64 | Kind::Float64 => 8,
            Kind::Uuid => 16,
            _ => return None,
        })
    }
}

/// One field: what it holds, the versions that carry it, the first version in which it
/// may be null, and its tag if it is a tagged field (flexible versions only).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    pub kind: Kind,
    pub from: i16,
    pub to: i16,
    pub null_from: i16,
    pub tag: Option<u32>,
}

impl Field {
    fn carried(&self, version: i16) -> bool {
        (self.from..=self.to).contains(&version)
    }

    /// The same field, null allowed from `version` on.
    pub(crate) const fn nullable(self, version: i16) -> Field {
        Field {
            null_from: version,
            ..self
        }
    }
}

/// A field in versions `from` and later.
pub(crate) const fn since(from: i16, kind: Kind) -> Field {
    Field {
        kind,
        from,
        to: i16::MAX,
        null_from: i16::MAX,
        tag: None,
    }
}

/// A field in versions `from` to `to`.
pub(crate) const fn between(from: i16, to: i16, kind: Kind) -> Field {
    Field {
        kind,
        from,
        to,
        null_from: i16::MAX,
        tag: None,
    }
}

/// A tagged field, in flexible versions from `from`.
pub(crate) const fn tagged(tag: u32, from: i16, kind: Kind) -> Field {
    Field {
        kind,
        from,
        to: i16::MAX,
        null_from: i16::MAX,
        tag: Some(tag),
    }
}

/// A request's shape: its fields, and the first flexible version.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    pub flexible_from: i16,
    pub fields: &'static [Field],
}

/// Walks `body`, a request at `version`: every length and count must fit in what is
/// left and the elements must stay within [`MAX_ELEMENTS`]. Returns the body's length:
/// bytes after its last field are left unread, as Kafka's broker leaves them
/// (`RequestContext.parseRequest` reads the request's fields off the buffer and never
/// checks that it is exhausted; librdkafka 2.10 and later send three such bytes after an
/// all-topics Metadata v12). The error says where the walk stopped.
pub(crate) fn check(shape: &Shape, version: i16, body: &[u8]) -> Result<usize, String> {
    let mut w = Walk {
        buf: body,
        flexible: version >= shape.flexible_from,
        version,
        elements: 0,
    };
    w.fields(shape.fields)?;
    Ok(body.len() - w.buf.len())
}

struct Walk<'a> {
    buf: &'a [u8],
    flexible: bool,
    version: i16,
    elements: usize,
}

impl<'a> Walk<'a> {
    fn fields(&mut self, fields: &[Field]) -> Result<(), String> {
        let version = self.version;
        for f in fields
            .iter()
            .filter(|f| f.tag.is_none() && f.carried(version))
        {
            self.value(f)?;
        }
        if self.flexible {
            self.tagged_fields(fields)?;
        }
        Ok(())
    }

    fn tagged_fields(&mut self, fields: &[Field]) -> Result<(), String> {
        let n = self.uvarint("tagged field count")?;
        if n as usize > self.buf.len() {
            return Err(format!(
                "{n} tagged fields cannot fit in {} bytes",
                self.buf.len()
            ));
        }
        for _ in 0..n {
            let tag = self.uvarint("tag")?;
            let size = self.uvarint("tagged field size")? as usize;
            let value = self.take(size, "tagged field")?;
            let declared = fields.iter().find(|f| f.tag == Some(tag));
            if declared.is_some_and(|f| !f.carried(self.version)) {
                return Err(format!(
                    "tag {tag} is not valid at version {}",
                    self.version
                ));
            }
            if let Some(f) = declared {
                let mut inner = Walk {
                    buf: value,
                    flexible: true,
                    version: self.version,
                    elements: self.elements,
                };
                inner.value(f)?;
                if !inner.buf.is_empty() {
                    return Err(format!(
                        "tagged field {tag} has {} bytes left over",
                        inner.buf.len()
                    ));
                }
                self.elements = inner.elements;
            }
        }
        Ok(())
    }

    fn value(&mut self, field: &Field) -> Result<(), String> {
        let nullable = self.version >= field.null_from;
        let kind = field.kind;
        if let Some(n) = kind.fixed() {
            self.take(n, "a fixed-size field")?;
            return Ok(());
        }
        match kind {
            Kind::Str => {
                let len = if self.flexible {
                    self.uvarint("string length")? as i64 - 1
                } else {
                    i64::from(self.int16("string length")?)
                };
                let s = self.sized(len, nullable, "string")?;
                std::str::from_utf8(s).map_err(|_| "a string is not UTF-8".to_string())?;
                Ok(())
            }
            Kind::Bytes => {
                let len = if self.flexible {
                    self.uvarint("bytes length")? as i64 - 1
                } else {
                    i64::from(self.int32("bytes length")?)
                };
                self.sized(len, nullable, "bytes").map(|_| ())
            }
            Kind::Array(element) => {
                let n = self.count(nullable)?;
                let size = element
                    .fixed()
                    .expect("arrays of primitives have fixed-size elements");
                self.take(n * size, "array")?;
                Ok(())
            }
            Kind::Strings => {
                let n = self.count(nullable)?;
                let element = since(0, Kind::Str);
                for _ in 0..n {
                    self.value(&element)?;
                }
                Ok(())
            }
            Kind::Structs(fields) => {
                let n = self.count(nullable)?;
                for _ in 0..n {
                    self.fields(fields)?;
                }
                Ok(())
            }
            Kind::Struct(fields) => self.fields(fields),
            _ => unreachable!("fixed-size kinds are handled above"),
        }
    }

    /// An array's count (0 for a null array), checked against the bytes left (every
    /// element takes at least one) and the element budget.
    fn count(&mut self, nullable: bool) -> Result<usize, String> {
        let n = if self.flexible {
            i64::from(self.uvarint("array count")?) - 1
        } else {
            i64::from(self.int32("array count")?)
        };
        if n < -1 || (n == -1 && !nullable) {
            return Err(format!("array count {n} is negative"));
        }
        let n = n.max(0) as usize;
        if n > self.buf.len() {
            return Err(format!(
                "{n} array elements cannot fit in {} bytes",
                self.buf.len()
            ));
        }
        self.elements += n;
        if self.elements > MAX_ELEMENTS {
            return Err(format!(
                "more than {MAX_ELEMENTS} array elements in one request"
            ));
        }
        Ok(n)
    }

    fn sized(&mut self, len: i64, nullable: bool, what: &str) -> Result<&'a [u8], String> {
        match len {
            -1 if nullable => Ok(&[]),
            n if n < 0 => Err(format!("{what} length {n} is negative")),
            n => self.take(n as usize, what),
        }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        if n > self.buf.len() {
            return Err(format!(
                "{what} of {n} bytes runs past the {} bytes left",
                self.buf.len()
            ));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn int16(&mut self, what: &str) -> Result<i16, String> {
        let b = self.take(2, what)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn int32(&mut self, what: &str) -> Result<i32, String> {
        let b = self.take(4, what)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn uvarint(&mut self, what: &str) -> Result<u32, String> {
        let mut v: u32 = 0;
        for i in 0..5 {
            let b = *self.take(1, what)?.first().expect("one byte");
            v |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                if i == 4 && b > 0x0f {
                    break;
                }
                return Ok(v);
            }
        }
        Err(format!("{what} is not a valid unsigned varint"))
    }
}

#[cfg(test)]
mod tests;

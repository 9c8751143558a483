//! Limits on a request's transport, enforced before any handler or authentication work: the
//! size of its message (tonic, `ServerOptions::max_message_bytes`) and of its headers.
//!
//! Headers have two lines of defence. Up to `HTTP2_MAX_HEADER_LIST_BYTES`, HTTP/2 accepts
//! them and this module refuses a request past `MAX_METADATA_BYTES` or
//! `MAX_METADATA_ENTRIES` with `RESOURCE_EXHAUSTED` naming the limit. Past it, the HTTP/2
//! layer refuses the stream itself (431 and `REFUSED_STREAM`) without decoding the rest.

use tonic::metadata::{KeyAndValueRef, MetadataMap};

use crate::ApiError;

/// Bytes of request metadata (names and values) one call may carry. A normal call carries
/// a few hundred (content type, user agent, timeout, a bearer token).
pub const MAX_METADATA_BYTES: usize = 8 << 10;
/// Metadata entries one call may carry.
pub const MAX_METADATA_ENTRIES: usize = 64;
/// Largest HTTP/2 frame a client may send (the default is 16 KiB): a produce request of
/// 1,000 records of 100 B arrives in one frame, not seven, and each frame costs both sides
/// a parse and a wakeup (measured: 1–7 % more records/s). Small enough that one request
/// holds up the connection's other calls for little time (256 KiB is 2 ms at 1 Gbit/s).
pub const HTTP2_MAX_FRAME_BYTES: u32 = 256 << 10;

/// The HTTP/2 header list size above which the transport refuses a stream outright.
pub const HTTP2_MAX_HEADER_LIST_BYTES: u32 = 64 << 10;

/// Refuses metadata past `MAX_METADATA_ENTRIES` or `MAX_METADATA_BYTES`.
pub fn check_metadata(md: &MetadataMap) -> Result<(), ApiError> {
    if md.len() > MAX_METADATA_ENTRIES {
        return Err(ApiError::LimitExceeded {
            what: "request headers",
            size: md.len(),
            unit: "entries",
            limit: MAX_METADATA_ENTRIES,
        });
    }
    let bytes: usize = md
        .iter()
        .map(|kv| match kv {
            KeyAndValueRef::Ascii(k, v) => k.as_str().len() + v.as_encoded_bytes().len(),
            KeyAndValueRef::Binary(k, v) => k.as_str().len() + v.as_encoded_bytes().len(),
        })
        .sum();
    if bytes > MAX_METADATA_BYTES {
        return Err(ApiError::LimitExceeded {
            what: "request headers",
            size: bytes,
            unit: "bytes",
            limit: MAX_METADATA_BYTES,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;
    use tonic::metadata::MetadataValue;

    #[test]
    fn metadata_past_either_limit_is_refused_naming_it() {
        let mut md = MetadataMap::new();
        md.insert("authorization", MetadataValue::from_static("Bearer x"));
        check_metadata(&md).unwrap();

        let mut big = md.clone();
        let value = "v".repeat(MAX_METADATA_BYTES);
        big.insert("x-big", value.parse().unwrap());
        let s = tonic::Status::from(check_metadata(&big).unwrap_err());
        assert_eq!(s.code(), Code::ResourceExhausted);
        assert!(
            s.message().starts_with("request headers: 8")
                && s.message().ends_with("the limit is 8192"),
            "{}",
            s.message()
        );

        let mut many = md;
        for i in 0..MAX_METADATA_ENTRIES {
            many.append("x-many", i.to_string().parse().unwrap());
        }
        let s = tonic::Status::from(check_metadata(&many).unwrap_err());
        assert_eq!(s.code(), Code::ResourceExhausted);
        assert_eq!(s.message(), "request headers: 65 entries; the limit is 64");
    }
}

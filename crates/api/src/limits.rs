//! Limits on a request's transport, enforced before any handler or authentication work: the
//! size of its message (tonic, `ServerOptions::max_message_bytes`) and of its headers; and
//! the same message limit on a fetch's response, which the fetch budget is cut to.
//!
//! Headers have two lines of defence. Up to `HTTP2_MAX_HEADER_LIST_BYTES`, HTTP/2 accepts
//! them and this module refuses a request past `MAX_METADATA_BYTES` or
//! `MAX_METADATA_ENTRIES` with `RESOURCE_EXHAUSTED` naming the limit. Past it, the HTTP/2
//! layer refuses the stream itself (431 and `REFUSED_STREAM`) without decoding the rest.

use bytes::Bytes;
use tonic::metadata::{KeyAndValueRef, MetadataMap};
use tributary_storage as storage;
use tributary_volume as volume;

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

/// Bytes a response keeps beside its batches, out of the message limit: its other fields
/// (a few varints) and what gzip adds to incompressible bytes (5 bytes a 64 KiB block).
fn response_reserve(limit: usize) -> usize {
    64 + limit / 4096
}

/// A fetch's byte budget: what was asked (0: the default), cut to `MAX_FETCH_BYTES` and to
/// what the message limit leaves for batches (the store counts them framed), so that a
/// response of more than one batch always fits.
pub fn fetch_budget(asked: u32, limit: usize) -> usize {
    let asked = match asked {
        0 => volume::DEFAULT_FETCH_BYTES,
        n => n as usize,
    };
    asked
        .min(volume::MAX_FETCH_BYTES)
        .min(limit.saturating_sub(response_reserve(limit)))
        .max(1)
}

/// Refuses a fetch response past the message limit, which only a lone stored batch larger
/// than the limit can make (the server's limit lowered after it was stored): a clear
/// `RESOURCE_EXHAUSTED`, where tonic would fail the encoding with `OUT_OF_RANGE`.
pub fn check_fetch_response(batches: &[Bytes], limit: usize) -> Result<(), ApiError> {
    let size: usize = batches.iter().map(|b| storage::framed_len(b.len())).sum();
    if size + response_reserve(limit) > limit {
        return Err(ApiError::LimitExceeded {
            what: "fetch response (a stored batch over the server's max_message_bytes)",
            size,
            unit: "bytes",
            limit,
        });
    }
    Ok(())
}

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
    fn a_fetch_budget_leaves_room_in_the_message_for_the_rest_of_the_response() {
        let limit = 64 << 20;
        assert_eq!(fetch_budget(0, limit), volume::DEFAULT_FETCH_BYTES);
        assert_eq!(fetch_budget(40_000, limit), 40_000);
        for asked in [64 << 20, u32::MAX] {
            let budget = fetch_budget(asked, limit);
            assert!(budget < limit && budget + response_reserve(limit) <= limit);
        }
        assert_eq!(fetch_budget(u32::MAX, 1024), 1024 - 64);
        // A lone batch within the budget fits; one past the limit is refused, naming it.
        let fits = Bytes::from(vec![0; fetch_budget(u32::MAX, limit) - 5]);
        check_fetch_response(&[fits], limit).unwrap();
        let big = Bytes::from(vec![0; limit]);
        let s = tonic::Status::from(check_fetch_response(&[big], limit).unwrap_err());
        assert_eq!(s.code(), Code::ResourceExhausted);
        assert!(
            s.message().ends_with("the limit is 67108864"),
            "{}",
            s.message()
        );
    }

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

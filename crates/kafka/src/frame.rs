//! Kafka's framing: every request and response is a 4-byte big-endian size, then that many
//! bytes. A request's bytes start with its header (API key, version, correlation id,
//! client id, and for flexible versions tagged fields); a response's with the correlation
//! id it answers.
//!
//! The size prefix is checked against the limit before a byte of the request is read, so a
//! hostile size allocates nothing; a request is read into one buffer of exactly its size.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::{Error, Result};

/// A request off the socket: its header and its body, not yet decoded.
#[derive(Debug)]
pub(crate) struct Request {
    pub api_key: i16,
    pub api_version: i16,
    pub header: RequestHeader,
    pub body: Bytes,
}

/// Reads the next frame's bytes (a request, or a legacy SASL token); `None` when the peer
/// closed the connection between frames.
pub(crate) async fn read<R: AsyncRead + Unpin>(r: &mut R, max: usize) -> Result<Option<Bytes>> {
    let mut size = [0u8; 4];
    match r.read_exact(&mut size).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(Error::Io(e)),
    }
    let size = i32::from_be_bytes(size);
    let size = usize::try_from(size).map_err(|_| Error::Malformed {
        what: "request size".into(),
        detail: format!("{size} is negative"),
    })?;
    if size > max {
        return Err(Error::TooLarge {
            size: size as u64,
            limit: max,
        });
    }
    let mut buf = BytesMut::zeroed(size);
    r.read_exact(&mut buf).await.map_err(Error::Io)?;
    Ok(Some(buf.freeze()))
}

/// Frames bytes that travel outside Kafka's messages: a legacy SASL token's answer.
pub(crate) fn raw(bytes: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(4 + bytes.len());
    out.put_i32(bytes.len() as i32);
    out.put_slice(bytes);
    out.freeze()
}

/// Splits a request's bytes into its header and body.
pub(crate) fn parse(mut bytes: Bytes) -> Result<Request> {
    if bytes.len() < 8 {
        return Err(Error::Malformed {
            what: "request header".into(),
            detail: format!("{} bytes is shorter than any request header", bytes.len()),
        });
    }
    let api_key = i16::from_be_bytes([bytes[0], bytes[1]]);
    let api_version = i16::from_be_bytes([bytes[2], bytes[3]]);
    let key = ApiKey::try_from(api_key).map_err(|_| Error::UnknownApi(api_key))?;
    let header_version = key.request_header_version(api_version);
    let header =
        RequestHeader::decode(&mut bytes, header_version).map_err(|e| Error::Malformed {
            what: format!("{key:?} v{api_version} request header"),
            detail: e.to_string(),
        })?;
    Ok(Request {
        api_key,
        api_version,
        header,
        body: bytes,
    })
}

/// Frames a response: the size, the response header for `correlation_id` at
/// `header_version`, then the body `encode` writes.
pub(crate) fn response<M: Encodable>(
    correlation_id: i32,
    header_version: i16,
    body: &M,
    version: i16,
) -> Result<Bytes> {
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let encoding = |e: anyhow::Error| Error::Malformed {
        what: "response".into(),
        detail: e.to_string(),
    };
    let size = header.compute_size(header_version).map_err(encoding)?
        + body.compute_size(version).map_err(encoding)?;
    let mut out = BytesMut::with_capacity(4 + size);
    out.put_i32(size as i32);
    header.encode(&mut out, header_version).map_err(encoding)?;
    body.encode(&mut out, version).map_err(encoding)?;
    debug_assert_eq!(out.len(), 4 + size);
    Ok(out.freeze())
}

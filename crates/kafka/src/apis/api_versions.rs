//! ApiVersions: what a client sends first, to learn which APIs and versions it may use.
//! A version this door does not know is answered anyway (KIP-511), at version 0 with
//! UNSUPPORTED_VERSION and the supported range, so the client retries with one it shares.

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};

use crate::Result;
use crate::frame::{self, Request};
use crate::versions::ADVERTISED;

pub(super) fn handle(mut req: Request) -> Result<Bytes> {
    super::decode::<ApiVersionsRequest>(&mut req)?;
    respond(&req, 0, req.api_version)
}

/// The answer to a version this door does not serve: version 0, UNSUPPORTED_VERSION.
pub(super) fn unsupported(req: &Request) -> Result<Bytes> {
    respond(req, ResponseError::UnsupportedVersion.code(), 0)
}

fn respond(req: &Request, error_code: i16, version: i16) -> Result<Bytes> {
    let api_keys = ADVERTISED
        .iter()
        .map(|s| {
            ApiVersion::default()
                .with_api_key(s.key as i16)
                .with_min_version(s.min)
                .with_max_version(s.max)
        })
        .collect();
    let body = ApiVersionsResponse::default()
        .with_error_code(error_code)
        .with_api_keys(api_keys);
    // The response header is version 0 at every version, so that a client can read the
    // answer to a version the broker does not know.
    let header_version = ApiKey::ApiVersions.response_header_version(version);
    frame::response(req.header.correlation_id, header_version, &body, version)
}

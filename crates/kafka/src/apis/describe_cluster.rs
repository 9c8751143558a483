//! DescribeCluster: the cluster's id, its controller and its brokers — this node, at the
//! address Metadata reports. Only brokers are described (endpoint type 1); a cluster of one
//! node has no separate controllers to list.

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{ApiKey, BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use super::metadata::NODE_ID;
use crate::frame::{self, Request};
use crate::{Door, Result};

/// The endpoint type that asks for brokers.
const BROKERS: i8 = 1;

pub(super) fn handle(door: &Door, mut req: Request) -> Result<Bytes> {
    let version = req.api_version;
    let request: DescribeClusterRequest = super::decode(&mut req)?;
    let (host, port) = &door.advertised;
    let mut body = DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(door.ns.cluster_id().to_string()))
        .with_controller_id(BrokerId(NODE_ID));
    if version >= 1 && request.endpoint_type != BROKERS {
        body = body
            .with_error_code(ResponseError::UnsupportedEndpointType.code())
            .with_error_message(Some(StrBytes::from_string(format!(
                "endpoint type {} is not served; only brokers (1) are",
                request.endpoint_type
            ))));
    } else {
        body = body.with_brokers(vec![
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(NODE_ID))
                .with_host(StrBytes::from_string(host.clone()))
                .with_port(i32::from(*port)),
        ]);
    }
    if version >= 1 {
        body = body.with_endpoint_type(request.endpoint_type);
    }
    let hv = ApiKey::DescribeCluster.response_header_version(version);
    frame::response(req.header.correlation_id, hv, &body, version)
}

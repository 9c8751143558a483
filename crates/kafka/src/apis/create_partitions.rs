//! CreatePartitions: each topic grown to the count asked (the stream's `topic`
//! permission). A topic only grows: a count at or below the current one is
//! INVALID_PARTITIONS. The cluster places partitions itself, so manual assignments are
//! INVALID_REQUEST. `validate_only` checks everything and changes nothing; an empty
//! request gets an empty answer.

use bytes::Bytes;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{ApiKey, CreatePartitionsRequest, CreatePartitionsResponse};
use tributary_volume::Caller;

use super::admin::{self, refused};
use crate::error::Asked;
use crate::frame::{self, Request};
use crate::{Door, Error, Result};

pub(super) async fn handle(door: &Door, caller: &Caller, mut req: Request) -> Result<Bytes> {
    let version = req.api_version;
    let request: CreatePartitionsRequest = super::decode(&mut req)?;
    let repeated = admin::repeated(request.topics.iter().map(|t| t.name.0.as_str()));
    let mut results = Vec::with_capacity(request.topics.len());
    for t in &request.topics {
        let name = t.name.0.as_str();
        let grown = if repeated.contains(name) {
            Err(admin::twice("topic", name))
        } else {
            grow(door, caller, t, request.validate_only).await
        };
        let (code, message) = admin::outcome(&grown);
        results.push(
            CreatePartitionsTopicResult::default()
                .with_name(t.name.clone())
                .with_error_code(code)
                .with_error_message(message),
        );
    }
    let body = CreatePartitionsResponse::default().with_results(results);
    let hv = ApiKey::CreatePartitions.response_header_version(version);
    frame::response(req.header.correlation_id, hv, &body, version)
}

async fn grow(
    door: &Door,
    caller: &Caller,
    t: &CreatePartitionsTopic,
    validate_only: bool,
) -> Result<()> {
    let path = admin::resolve(door, caller, t.name.0.as_str())?;
    if t.assignments.as_ref().is_some_and(|a| !a.is_empty()) {
        return Err(Error::InvalidRequest(
            "manual replica assignments are not supported: the cluster places partitions \
             itself; give the count only"
                .into(),
        ));
    }
    let have = admin::existing(door, caller, &path, Asked::Topic)
        .await?
        .partitions;
    let count = u32::try_from(t.count).unwrap_or(0);
    if count <= have {
        return Err(Error::InvalidPartitions(format!(
            "{path} has {have} partitions already and a topic only grows: ask for more than \
             {have}"
        )));
    }
    door.ns
        .edit_topic_with(caller, &path.to_string(), Some(count), validate_only)
        .await
        .map_err(refused(Asked::Topic))?;
    Ok(())
}

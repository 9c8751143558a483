//! DeleteTopics: each named topic deleted with its records (the stream's `topic`
//! permission). Topic ids are not kept (Metadata reports none), so v6's deletion by id is
//! UNKNOWN_TOPIC_ID.

use bytes::Bytes;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{ApiKey, DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use uuid::Uuid;

use super::admin::{self, refused};
use crate::error::Asked;
use crate::frame::{self, Request};
use crate::{Door, Error, Result};
use tributary_volume::Caller;

pub(super) async fn handle(door: &Door, caller: &Caller, mut req: Request) -> Result<Bytes> {
    let version = req.api_version;
    let request: DeleteTopicsRequest = super::decode(&mut req)?;
    // Before v6 by name only; from v6 by name or by id.
    let asked: Vec<(Option<TopicName>, Uuid)> = if version >= 6 {
        request
            .topics
            .into_iter()
            .map(|t| (t.name, t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .into_iter()
            .map(|n| (Some(n), Uuid::nil()))
            .collect()
    };
    let repeated = admin::repeated(
        asked
            .iter()
            .filter_map(|(n, _)| n.as_ref().map(|n| n.0.as_str())),
    );
    let mut responses = Vec::with_capacity(asked.len());
    for (name, id) in asked {
        let deleted = match &name {
            Some(n) if repeated.contains(n.0.as_str()) => Err(admin::twice("topic", n.0.as_str())),
            Some(n) => delete(door, caller, n.0.as_str()).await,
            None if id.is_nil() => Err(Error::InvalidRequest(
                "a topic to delete needs a name".into(),
            )),
            None => Err(Error::UnknownTopicId(id)),
        };
        let (code, message) = admin::outcome(&deleted);
        let mut r = DeletableTopicResult::default()
            .with_name(name)
            .with_error_code(code);
        if version >= 5 {
            r = r.with_error_message(message);
        }
        if version >= 6 {
            r = r.with_topic_id(id);
        }
        responses.push(r);
    }
    let body = DeleteTopicsResponse::default().with_responses(responses);
    let hv = ApiKey::DeleteTopics.response_header_version(version);
    frame::response(req.header.correlation_id, hv, &body, version)
}

async fn delete(door: &Door, caller: &Caller, name: &str) -> Result<()> {
    let path = admin::resolve(door, caller, name)?;
    door.ns
        .delete_topic(caller, &path.to_string())
        .await
        .map_err(refused(Asked::Topic))
}

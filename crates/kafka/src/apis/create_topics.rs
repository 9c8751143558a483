//! CreateTopics: each topic made in the stream its name resolves to (design §9), with its
//! partitions (-1: the stream's `default_partitions`) and configs, which are the stream's
//! attributes: set with the stream's first topic, and for any later one already the
//! stream's (INVALID_CONFIG otherwise). A cluster keeps one copy: replication factor 1 or
//! -1. `validate_only` checks everything and changes nothing. Topic ids are not kept, so
//! v7 answers with none, as Metadata does.

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{ApiKey, CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;
use tributary_volume::{Caller, NewTopic, StreamAttributes};

use super::admin::{self, refused};
use crate::configs::{self, Change};
use crate::error::Asked;
use crate::frame::{self, Request};
use crate::{Door, Error, Result};

pub(super) async fn handle(door: &Door, caller: &Caller, mut req: Request) -> Result<Bytes> {
    let version = req.api_version;
    let request: CreateTopicsRequest = super::decode(&mut req)?;
    let repeated = admin::repeated(request.topics.iter().map(|t| t.name.0.as_str()));
    let mut results = Vec::with_capacity(request.topics.len());
    for t in &request.topics {
        let name = t.name.0.as_str();
        let created = if repeated.contains(name) {
            Err(admin::twice("topic", name))
        } else {
            create(door, caller, t, request.validate_only).await
        };
        let (code, message) = admin::outcome(&created);
        let mut r = CreatableTopicResult::default()
            .with_name(t.name.clone())
            .with_error_code(code)
            .with_error_message(message);
        match created {
            Ok((partitions, attributes)) if version >= 5 => {
                let configs = configs::topic(&attributes, None)
                    .into_iter()
                    .map(|c| {
                        CreatableTopicConfigs::default()
                            .with_name(StrBytes::from_static_str(c.name))
                            .with_value(Some(StrBytes::from_string(c.value)))
                            .with_read_only(c.read_only)
                            .with_config_source(c.source)
                    })
                    .collect();
                r = r
                    .with_num_partitions(partitions as i32)
                    .with_replication_factor(1)
                    .with_configs(Some(configs));
            }
            _ => r = r.with_configs(None),
        }
        results.push(r);
    }
    let body = CreateTopicsResponse::default().with_topics(results);
    let hv = ApiKey::CreateTopics.response_header_version(version);
    frame::response(req.header.correlation_id, hv, &body, version)
}

/// Creates (or with `validate_only`, checks) one topic; its partitions and its stream's
/// attributes as they are then.
async fn create(
    door: &Door,
    caller: &Caller,
    t: &CreatableTopic,
    validate_only: bool,
) -> Result<(u32, StreamAttributes)> {
    let path = admin::resolve(door, caller, t.name.0.as_str())?;
    if !t.assignments.is_empty() {
        return Err(Error::InvalidRequest(
            "manual replica assignments are not supported: the cluster places partitions \
             itself; give num_partitions instead"
                .into(),
        ));
    }
    let partitions = match t.num_partitions {
        -1 => None,
        n if n >= 1 => Some(n as u32),
        n => {
            return Err(Error::InvalidPartitions(format!(
                "{n} partitions: ask for 1 or more, or -1 for the stream's default"
            )));
        }
    };
    if !matches!(t.replication_factor, -1 | 1) {
        return Err(Error::InvalidReplicationFactor(t.replication_factor));
    }
    let repeated = admin::repeated(t.configs.iter().map(|c| c.name.as_str()));
    let mut changes = Vec::with_capacity(t.configs.len());
    for c in &t.configs {
        let name = c.name.as_str();
        if repeated.contains(name) {
            return Err(admin::twice("config", name));
        }
        let Some(value) = &c.value else {
            return Err(Error::InvalidConfig(format!(
                "{name}: a null value is not a config; leave the key out for the default"
            )));
        };
        changes.push((name, Change::Set(value.to_string())));
    }
    let patch = configs::patch(&changes)?;
    let new = NewTopic {
        partitions,
        stream_attributes: patch.clone(),
        validate_only,
    };
    let info = door
        .ns
        .create_topic_with(caller, &path.to_string(), &new)
        .await
        .map_err(refused(Asked::Topic))?;
    // With validate_only, what the stream's attributes would be.
    let attributes = admin::attributes(door, caller, &path.stream, Asked::Topic)
        .await?
        .apply(&patch)
        .map_err(refused(Asked::Topic))?;
    Ok((info.partitions, attributes))
}

//! Metadata: the brokers (this one), and for each topic asked for (or, for "all topics",
//! those of the caller's default stream, under their short names) its partitions, each led
//! by this broker. Names resolve as `tributary_core::kafka_names` says; a name that
//! resolves nowhere is UNKNOWN_TOPIC_OR_PARTITION, a malformed one
//! INVALID_TOPIC_EXCEPTION, one the caller may not see TOPIC_AUTHORIZATION_FAILED.
//! Leader epochs are reported as -1, so clients skip epoch validation
//! (OffsetForLeaderEpoch is not served). A named topic that does not exist is created, as a
//! produce creates it, when the request allows auto-creation (versions 4 and up), its
//! stream autocreates topics and the caller may produce there (the broker's
//! `auto.create.topics.enable` is the stream's attribute); otherwise it is unknown.

use std::collections::HashMap;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{ApiKey, BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use tributary_core::names::{StreamPath, TopicPath};
use tributary_volume::{Caller, TopicInfo};

use crate::error::topic_code;
use crate::frame::{self, Request};
use crate::{Door, Result};

/// This broker's id: a cluster is one node today.
pub(crate) const NODE_ID: i32 = 0;

pub(super) async fn handle(door: &Door, caller: &Caller, mut req: Request) -> Result<Bytes> {
    let version = req.api_version;
    let request: MetadataRequest = super::decode(&mut req)?;
    let auto_create = version >= 4 && request.allow_auto_topic_creation;
    let resolver = super::resolver(door, caller);
    // Version 0 asks for every topic with an empty list; later versions with a null one.
    let names: Option<Vec<String>> = match request.topics {
        None => None,
        Some(t) if t.is_empty() && version == 0 => None,
        Some(t) => Some(
            t.into_iter()
                .map(|t| t.name.map(|n| n.0.to_string()).unwrap_or_default())
                .collect(),
        ),
    };
    let mut streams: HashMap<StreamPath, std::result::Result<Vec<TopicInfo>, i16>> = HashMap::new();
    let mut topics = Vec::new();
    match names {
        None => {
            let listed = match resolver.default_stream() {
                Some(stream) => topics_of(door, caller, stream, &mut streams).await.ok(),
                None => None,
            };
            for t in listed.into_iter().flatten() {
                let Ok(path) = TopicPath::parse("topic", &t.path) else {
                    continue;
                };
                topics.push(topic(version, resolver.kafka_name(&path), 0, t.partitions));
            }
        }
        Some(names) => {
            for name in names {
                let answer = match resolver.resolve(&name) {
                    Err(_) => topic(
                        version,
                        name,
                        ResponseError::InvalidTopicException.code(),
                        0,
                    ),
                    Ok(None) => topic(
                        version,
                        name,
                        ResponseError::UnknownTopicOrPartition.code(),
                        0,
                    ),
                    Ok(Some(path)) => {
                        match topics_of(door, caller, &path.stream, &mut streams).await {
                            Err(code) => topic(version, name, code, 0),
                            Ok(list) => match list.iter().find(|t| t.path == path.to_string()) {
                                Some(t) => topic(version, name, 0, t.partitions),
                                None => {
                                    // Created as a produce creates it, where that may be.
                                    let created = if auto_create {
                                        let path = path.to_string();
                                        door.ns.producer_partitions(caller, &path).await.ok()
                                    } else {
                                        None
                                    };
                                    let code = ResponseError::UnknownTopicOrPartition.code();
                                    match created {
                                        Some(n) => topic(version, name, 0, n),
                                        None => topic(version, name, code, 0),
                                    }
                                }
                            },
                        }
                    }
                };
                topics.push(answer);
            }
        }
    }
    let (host, port) = &door.advertised;
    let mut response = MetadataResponse::default()
        .with_brokers(vec![
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(NODE_ID))
                .with_host(StrBytes::from_string(host.clone()))
                .with_port(i32::from(*port)),
        ])
        .with_topics(topics);
    if version >= 1 {
        response = response.with_controller_id(BrokerId(NODE_ID));
    }
    if version >= 2 {
        let id = door.ns.cluster_id().to_string();
        response = response.with_cluster_id(Some(StrBytes::from_string(id)));
    }
    let header_version = ApiKey::Metadata.response_header_version(version);
    frame::response(
        req.header.correlation_id,
        header_version,
        &response,
        version,
    )
}

/// The topics of `stream`, listed once per request; a refusal is its per-topic code.
async fn topics_of<'a>(
    door: &Door,
    caller: &Caller,
    stream: &StreamPath,
    cache: &'a mut HashMap<StreamPath, std::result::Result<Vec<TopicInfo>, i16>>,
) -> std::result::Result<&'a Vec<TopicInfo>, i16> {
    if !cache.contains_key(stream) {
        let listed = door
            .ns
            .list_topics(caller, stream.as_str())
            .await
            .map_err(|e| topic_code(&e));
        cache.insert(stream.clone(), listed);
    }
    cache[stream].as_ref().map_err(|&c| c)
}

fn topic(version: i16, name: String, error_code: i16, partitions: u32) -> MetadataResponseTopic {
    let partitions = (0..partitions as i32)
        .map(|i| {
            let mut p = MetadataResponsePartition::default()
                .with_partition_index(i)
                .with_leader_id(BrokerId(NODE_ID))
                .with_replica_nodes(vec![BrokerId(NODE_ID)])
                .with_isr_nodes(vec![BrokerId(NODE_ID)]);
            if version >= 7 {
                p = p.with_leader_epoch(-1);
            }
            p
        })
        .collect();
    MetadataResponseTopic::default()
        .with_error_code(error_code)
        .with_name(Some(TopicName(StrBytes::from_string(name))))
        .with_partitions(partitions)
}

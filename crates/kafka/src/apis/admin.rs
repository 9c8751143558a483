//! What the topic and config handlers share: a Kafka name resolved to a topic as Metadata
//! resolves it, a topic looked up, its stream's attributes, names asked twice, and a
//! refusal's code and message for a response.

use std::collections::HashSet;

use kafka_protocol::protocol::StrBytes;
use tributary_core::names::{StreamPath, TopicPath};
use tributary_volume::{Caller, StreamAttributes, TopicInfo};

use super::metadata::NODE_ID;
use crate::error::Asked;
use crate::{Door, Error, Result};

/// Kafka's resource types served by the config APIs.
pub(super) const TOPIC: i8 = 2;
pub(super) const BROKER: i8 = 4;

/// Checks a broker resource's name: this node's id, or empty for the cluster's defaults.
pub(super) fn broker_name(name: &str) -> Result<()> {
    if name.is_empty() || name == NODE_ID.to_string() {
        return Ok(());
    }
    Err(Error::InvalidRequest(format!(
        "broker {name} is not this cluster's: its one broker is {NODE_ID}"
    )))
}

/// The refusal of a resource type the config APIs do not serve.
pub(super) fn unserved_resource(t: i8) -> Error {
    Error::InvalidRequest(format!(
        "resource type {t} is not served: topics ({TOPIC}) and the broker ({BROKER}) are"
    ))
}

/// The topic a Kafka name stands for; a name that resolves nowhere is unknown.
pub(super) fn resolve(door: &Door, caller: &Caller, name: &str) -> Result<TopicPath> {
    match super::resolver(door, caller).resolve(name) {
        Err(e) => Err(Error::InvalidTopic(e.to_string())),
        Ok(None) => Err(Error::UnknownTopic(format!(
            "topic {name} resolves to no stream: no alias rule matches it and there is no \
             default stream; name it /volume/stream:topic"
        ))),
        Ok(Some(path)) => Ok(path),
    }
}

/// The namespace's refusal of what was `asked`.
pub(super) fn refused(asked: Asked) -> impl Fn(tributary_volume::Error) -> Error {
    move |source| Error::Refused { asked, source }
}

/// An existing topic, as the caller may see it.
pub(super) async fn existing(
    door: &Door,
    caller: &Caller,
    path: &TopicPath,
    asked: Asked,
) -> Result<TopicInfo> {
    let full = path.to_string();
    door.ns
        .list_topics(caller, path.stream.as_str())
        .await
        .map_err(refused(asked))?
        .into_iter()
        .find(|t| t.path == full)
        .ok_or_else(|| Error::UnknownTopic(format!("topic {full} does not exist")))
}

/// The attributes of a stream the caller may see.
pub(super) async fn attributes(
    door: &Door,
    caller: &Caller,
    stream: &StreamPath,
    asked: Asked,
) -> Result<StreamAttributes> {
    door.ns
        .list_streams(caller, stream.as_str())
        .await
        .map_err(refused(asked))?
        .into_iter()
        .find(|s| s.path == stream.as_str())
        .map(|s| s.attributes)
        .ok_or_else(|| {
            refused(asked)(tributary_volume::Error::NotFound {
                what: "stream",
                path: stream.to_string(),
            })
        })
}

/// The names that occur more than once: Kafka refuses every copy of a name asked for
/// twice in one request.
pub(super) fn repeated<'a>(names: impl Iterator<Item = &'a str>) -> HashSet<String> {
    let mut seen = HashSet::new();
    names
        .filter(|n| !seen.insert(*n))
        .map(str::to_owned)
        .collect()
}

/// The refusal of a name asked for twice.
pub(super) fn twice(what: &str, name: &str) -> Error {
    Error::InvalidRequest(format!("{what} {name} is in the request more than once"))
}

/// A response's code and message for an outcome; no message on success.
pub(super) fn outcome<T>(r: &Result<T>) -> (i16, Option<StrBytes>) {
    match r {
        Ok(_) => (0, None),
        Err(e) => (e.code(), Some(StrBytes::from_string(e.to_string()))),
    }
}

//! AlterConfigs and IncrementalAlterConfigs. A topic's configs are its stream's attributes,
//! so altering them is `edit_stream` (the stream's `admin` permission) and alters every
//! topic of that stream alike. All the keys of a resource apply together or not at all.
//! AlterConfigs replaces every config: those not given go back to their defaults.
//! IncrementalAlterConfigs SETs a key, DELETEs it (back to its default), and APPENDs to
//! or SUBTRACTs from `cleanup.policy`, the one list. The broker's configs are read-only:
//! CLUSTER_AUTHORIZATION_FAILED for all but cluster admins, INVALID_CONFIG for them.

use bytes::Bytes;
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, ApiKey, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse, alter_configs_response, incremental_alter_configs_response,
};
use kafka_protocol::protocol::StrBytes;
use tributary_volume::Caller;

use super::admin::{self, BROKER, TOPIC, refused};
use crate::configs::{self, Change};
use crate::error::Asked;
use crate::frame::{self, Request};
use crate::{Door, Error, Result};

/// IncrementalAlterConfigs' operations; AlterConfigs sets.
const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

/// One key of a resource to alter: its name, operation and value.
type Alter<'a> = (&'a str, i8, Option<&'a str>);

/// A resource to alter: its type, its name and its keys.
type Resource<'a> = (i8, &'a StrBytes, Vec<Alter<'a>>);

/// What each resource's alteration answers: its type, name, code and message.
type Answered = (i8, StrBytes, i16, Option<StrBytes>);

pub(super) async fn legacy(door: &Door, caller: &Caller, mut req: Request) -> Result<Bytes> {
    use alter_configs_response::AlterConfigsResourceResponse as Answer;
    let version = req.api_version;
    let request: AlterConfigsRequest = super::decode(&mut req)?;
    let resources = request.resources.iter().map(|r| {
        let keys = r.configs.iter();
        let keys = keys.map(|c| (c.name.as_str(), SET, c.value.as_deref()));
        (r.resource_type, &r.resource_name, keys.collect())
    });
    let answered = alter_each(door, caller, resources, true, request.validate_only).await;
    let responses = answered.into_iter().map(|(t, name, code, message)| {
        Answer::default()
            .with_error_code(code)
            .with_error_message(message)
            .with_resource_type(t)
            .with_resource_name(name)
    });
    let body = AlterConfigsResponse::default().with_responses(responses.collect());
    let hv = ApiKey::AlterConfigs.response_header_version(version);
    frame::response(req.header.correlation_id, hv, &body, version)
}

pub(super) async fn incremental(door: &Door, caller: &Caller, mut req: Request) -> Result<Bytes> {
    use incremental_alter_configs_response::AlterConfigsResourceResponse as Answer;
    let version = req.api_version;
    let request: IncrementalAlterConfigsRequest = super::decode(&mut req)?;
    let resources = request.resources.iter().map(|r| {
        let keys = r.configs.iter();
        let keys = keys.map(|c| (c.name.as_str(), c.config_operation, c.value.as_deref()));
        (r.resource_type, &r.resource_name, keys.collect())
    });
    let answered = alter_each(door, caller, resources, false, request.validate_only).await;
    let responses = answered.into_iter().map(|(t, name, code, message)| {
        Answer::default()
            .with_error_code(code)
            .with_error_message(message)
            .with_resource_type(t)
            .with_resource_name(name)
    });
    let body = IncrementalAlterConfigsResponse::default().with_responses(responses.collect());
    let hv = ApiKey::IncrementalAlterConfigs.response_header_version(version);
    frame::response(req.header.correlation_id, hv, &body, version)
}

/// Alters each resource in turn, as `alter` does.
async fn alter_each<'a>(
    door: &Door,
    caller: &Caller,
    resources: impl Iterator<Item = Resource<'a>>,
    replace: bool,
    validate_only: bool,
) -> Vec<Answered> {
    let mut answered = Vec::new();
    for (t, name, keys) in resources {
        let done = alter(
            door,
            caller,
            t,
            name.as_str(),
            &keys,
            replace,
            validate_only,
        )
        .await;
        let (code, message) = admin::outcome(&done);
        answered.push((t, name.clone(), code, message));
    }
    answered
}

/// Alters one resource's configs; with `replace`, those not given go back to their
/// defaults.
async fn alter(
    door: &Door,
    caller: &Caller,
    resource_type: i8,
    name: &str,
    keys: &[Alter<'_>],
    replace: bool,
    validate_only: bool,
) -> Result<()> {
    let repeated = admin::repeated(keys.iter().map(|k| k.0));
    if let Some(k) = keys.iter().find(|k| repeated.contains(k.0)) {
        return Err(admin::twice("config", k.0));
    }
    match resource_type {
        TOPIC => {
            let path = admin::resolve(door, caller, name)?;
            admin::existing(door, caller, &path, Asked::TopicConfig).await?;
            let a = admin::attributes(door, caller, &path.stream, Asked::TopicConfig).await?;
            let mut changes = Vec::with_capacity(keys.len());
            for &(key, op, value) in keys {
                let value = || {
                    value.map(str::to_owned).ok_or_else(|| {
                        Error::InvalidConfig(format!(
                            "{key}: a null value is not a config; DELETE sets the default"
                        ))
                    })
                };
                let change = match op {
                    SET => Change::Set(value()?),
                    DELETE => Change::Reset,
                    APPEND | SUBTRACT => {
                        Change::Set(configs::list_op(&a, key, &value()?, op == APPEND)?)
                    }
                    op => {
                        return Err(Error::InvalidRequest(format!(
                            "{key}: operation {op} is not SET (0), DELETE (1), APPEND (2) \
                             or SUBTRACT (3)"
                        )));
                    }
                };
                changes.push((key, change));
            }
            if replace {
                for key in configs::settable().filter(|s| !keys.iter().any(|k| k.0 == *s)) {
                    changes.push((key, Change::Reset));
                }
            }
            let patch = configs::patch(&changes)?;
            door.ns
                .edit_stream_with(caller, path.stream.as_str(), &patch, validate_only)
                .await
                .map_err(refused(Asked::TopicConfig))?;
            Ok(())
        }
        BROKER => {
            admin::broker_name(name)?;
            let Some(&(key, _, _)) = keys.first() else {
                return Ok(());
            };
            door.ns
                .check_cluster_admin(caller, "the broker's configs")
                .map_err(refused(Asked::Cluster))?;
            Err(Error::InvalidConfig(format!(
                "{key}: the broker's configs are read-only over Kafka: they are the server's \
                 configuration, and a topic's are its stream's attributes"
            )))
        }
        t => Err(admin::unserved_resource(t)),
    }
}

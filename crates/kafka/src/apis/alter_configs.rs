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

pub(super) async fn legacy(door: &Door, caller: &Caller, mut req: Request) -> Result<Bytes> {
    use alter_configs_response::AlterConfigsResourceResponse as Answer;
    let version = req.api_version;
    let request: AlterConfigsRequest = super::decode(&mut req)?;
    let mut responses = Vec::with_capacity(request.resources.len());
    for r in &request.resources {
        let keys: Vec<Alter<'_>> = r
            .configs
            .iter()
            .map(|c| (c.name.as_str(), SET, c.value.as_ref().map(|v| v.as_str())))
            .collect();
        let name = r.resource_name.as_str();
        let done = alter(
            door,
            caller,
            r.resource_type,
            name,
            &keys,
            true,
            request.validate_only,
        );
        let (code, message) = admin::outcome(&done.await);
        responses.push(
            Answer::default()
                .with_error_code(code)
                .with_error_message(message)
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone()),
        );
    }
    let body = AlterConfigsResponse::default().with_responses(responses);
    let hv = ApiKey::AlterConfigs.response_header_version(version);
    frame::response(req.header.correlation_id, hv, &body, version)
}

pub(super) async fn incremental(door: &Door, caller: &Caller, mut req: Request) -> Result<Bytes> {
    use incremental_alter_configs_response::AlterConfigsResourceResponse as Answer;
    let version = req.api_version;
    let request: IncrementalAlterConfigsRequest = super::decode(&mut req)?;
    let mut responses = Vec::with_capacity(request.resources.len());
    for r in &request.resources {
        let keys: Vec<Alter<'_>> = r
            .configs
            .iter()
            .map(|c| {
                let value = c.value.as_ref().map(|v| v.as_str());
                (c.name.as_str(), c.config_operation, value)
            })
            .collect();
        let name = r.resource_name.as_str();
        let done = alter(
            door,
            caller,
            r.resource_type,
            name,
            &keys,
            false,
            request.validate_only,
        );
        let (code, message) = admin::outcome(&done.await);
        responses.push(
            Answer::default()
                .with_error_code(code)
                .with_error_message(message)
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone()),
        );
    }
    let body = IncrementalAlterConfigsResponse::default().with_responses(responses);
    let hv = ApiKey::IncrementalAlterConfigs.response_header_version(version);
    frame::response(req.header.correlation_id, hv, &body, version)
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
            let path = admin::resolve(door, name)?;
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

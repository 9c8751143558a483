//! DescribeConfigs: a topic's configs, which are its stream's attributes in Kafka's names
//! (`configs`), and the broker's, a small read-only set. Synonyms name the broker-wide key
//! of each default; documentation comes from v3 on.

use bytes::Bytes;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{ApiKey, DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use tributary_volume::Caller;

use super::admin::{self, BROKER, TOPIC};
use crate::configs::{self, Described};
use crate::error::Asked;
use crate::frame::{self, Request};
use crate::{Door, Result};

pub(super) async fn handle(door: &Door, caller: &Caller, mut req: Request) -> Result<Bytes> {
    let version = req.api_version;
    let request: DescribeConfigsRequest = super::decode(&mut req)?;
    let mut results = Vec::with_capacity(request.resources.len());
    for r in &request.resources {
        let described = describe(door, caller, r).await;
        let (code, message) = admin::outcome(&described);
        let configs = described
            .unwrap_or_default()
            .into_iter()
            .map(|c| entry(c, version, &request))
            .collect();
        results.push(
            DescribeConfigsResult::default()
                .with_error_code(code)
                .with_error_message(message)
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone())
                .with_configs(configs),
        );
    }
    let body = DescribeConfigsResponse::default().with_results(results);
    let hv = ApiKey::DescribeConfigs.response_header_version(version);
    frame::response(req.header.correlation_id, hv, &body, version)
}

async fn describe(
    door: &Door,
    caller: &Caller,
    r: &DescribeConfigsResource,
) -> Result<Vec<Described>> {
    let keys = r.configuration_keys.as_ref().map(|keys| {
        keys.iter()
            .map(|k| k.as_str().to_owned())
            .collect::<Vec<_>>()
    });
    let name = r.resource_name.as_str();
    match r.resource_type {
        TOPIC => {
            let path = admin::resolve(door, caller, name)?;
            admin::existing(door, caller, &path, Asked::TopicConfig).await?;
            let a = admin::attributes(door, caller, &path.stream, Asked::TopicConfig).await?;
            Ok(configs::topic(&a, keys.as_deref()))
        }
        BROKER => {
            admin::broker_name(name)?;
            Ok(configs::broker(
                door.options.max_request_bytes,
                keys.as_deref(),
            ))
        }
        t => Err(admin::unserved_resource(t)),
    }
}

fn entry(
    c: Described,
    version: i16,
    request: &DescribeConfigsRequest,
) -> DescribeConfigsResourceResult {
    let mut synonyms = Vec::new();
    if request.include_synonyms {
        if c.default.as_ref().is_none_or(|(_, d)| *d != c.value) {
            synonyms.push(synonym(c.name, &c.value, c.source));
        }
        if let Some((name, value)) = &c.default {
            synonyms.push(synonym(name, value, configs::SOURCE_DEFAULT));
        }
    }
    let mut e = DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_static_str(c.name))
        .with_value(Some(StrBytes::from_string(c.value)))
        .with_read_only(c.read_only)
        .with_config_source(c.source)
        .with_is_sensitive(false)
        .with_synonyms(synonyms);
    if version >= 3 {
        e = e.with_config_type(c.config_type);
        if request.include_documentation {
            e = e.with_documentation(Some(StrBytes::from_static_str(c.doc)));
        }
    }
    e
}

fn synonym(name: &'static str, value: &str, source: i8) -> DescribeConfigsSynonym {
    DescribeConfigsSynonym::default()
        .with_name(StrBytes::from_static_str(name))
        .with_value(Some(StrBytes::from_string(value.to_owned())))
        .with_source(source)
}

//! A handler per API. [`handle`] checks the version against what is advertised and the
//! bytes against the request's shape (`schema`), checks the session's proof again and
//! charges the request to its principal's quotas (`throttle`), and hands the request to
//! its handler; a handler returns the framed response, or `None` when the request gets
//! none (a Produce with acks 0).

mod admin;
mod alter_configs;
mod api_versions;
mod create_partitions;
mod create_topics;
mod delete_topics;
mod describe_cluster;
mod describe_configs;
mod fetch;
mod groups;
mod init_producer_id;
mod list_offsets;
mod metadata;
mod offsets;
mod produce;
pub(crate) mod sasl;

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::Decodable;
use tributary_core::kafka_names::Resolver;
use tributary_core::names::TopicPath;
use tributary_volume::{Caller, Credential};

use crate::frame::Request;
use crate::schema;
use crate::session::Session;
use crate::throttle::{Answer, Charge};
use crate::versions::{closed, served};
use crate::{Door, Error, Result};

/// Handles one request: its version checked against what is advertised and its bytes
/// against its shape before anything decodes them. An error closes the connection, as
/// Kafka brokers do for an API or version they do not serve, or for a session whose
/// credential no longer holds; failures a client can act on are answered in the response.
pub(crate) async fn handle(door: &Door, session: &mut Session, mut req: Request) -> Result<Answer> {
    let key = ApiKey::try_from(req.api_key).map_err(|_| Error::UnknownApi(req.api_key))?;
    let Some(range) = served(key) else {
        return Err(Error::UnknownApi(req.api_key));
    };
    if !(range.min..=range.max).contains(&req.api_version) {
        if key == ApiKey::ApiVersions {
            return api_versions::unsupported(&req).map(|r| Answer::now(Some(r)));
        }
        return Err(Error::UnsupportedVersion {
            api: api_name(key),
            version: req.api_version,
            min: range.min,
            max: range.max,
        });
    }
    if closed(key, req.api_version) {
        return Err(Error::UnsupportedVersion {
            api: api_name(key),
            version: req.api_version,
            min: range.min,
            max: range.max,
        });
    }
    let shape = schema::shape(key).ok_or(Error::UnknownApi(req.api_key))?;
    let body =
        schema::check(shape, req.api_version, &req.body).map_err(|detail| Error::Malformed {
            what: format!("{} v{} request", api_name(key), req.api_version),
            detail,
        })?;
    // What follows the body is ignored, as Kafka ignores it (`schema::check`).
    req.body.truncate(body);
    let quotas = &door.options.quotas;
    let mut charge = match key {
        // Answered before anyone is known, and never charged.
        ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate => {
            Charge::none(quotas)
        }
        _ => {
            session.recheck(&door.ns)?;
            Charge::request(quotas, caller(session, key)?.name())
        }
    };
    let version = req.api_version;
    let response = dispatch(door, session, req, key, &mut charge).await?;
    Ok(charge.answer(key, version, response))
}

/// The request's handler.
async fn dispatch(
    door: &Door,
    session: &mut Session,
    req: Request,
    key: ApiKey,
    charge: &mut Charge<'_>,
) -> Result<Option<Bytes>> {
    match key {
        ApiKey::ApiVersions => api_versions::handle(req).map(Some),
        ApiKey::SaslHandshake => sasl::handshake(session, req).map(Some),
        ApiKey::SaslAuthenticate => sasl::authenticate(door, session, req).map(Some),
        ApiKey::Metadata => {
            let caller = caller(session, key)?;
            metadata::handle(door, &caller, req).await.map(Some)
        }
        ApiKey::DescribeCluster => {
            caller(session, key)?;
            describe_cluster::handle(door, req).map(Some)
        }
        ApiKey::CreateTopics => {
            let caller = caller(session, key)?;
            create_topics::handle(door, &caller, req).await.map(Some)
        }
        ApiKey::DeleteTopics => {
            let caller = caller(session, key)?;
            delete_topics::handle(door, &caller, req).await.map(Some)
        }
        ApiKey::CreatePartitions => {
            let caller = caller(session, key)?;
            create_partitions::handle(door, &caller, req)
                .await
                .map(Some)
        }
        ApiKey::DescribeConfigs => {
            let caller = caller(session, key)?;
            describe_configs::handle(door, &caller, req).await.map(Some)
        }
        ApiKey::AlterConfigs => {
            let caller = caller(session, key)?;
            alter_configs::legacy(door, &caller, req).await.map(Some)
        }
        ApiKey::IncrementalAlterConfigs => {
            let caller = caller(session, key)?;
            alter_configs::incremental(door, &caller, req)
                .await
                .map(Some)
        }
        ApiKey::FindCoordinator => {
            let caller = caller(session, key)?;
            groups::find_coordinator(door, &caller, req).map(Some)
        }
        ApiKey::JoinGroup => {
            let caller = caller(session, key)?;
            groups::join(door, session, &caller, req).await.map(Some)
        }
        ApiKey::SyncGroup => {
            let caller = caller(session, key)?;
            groups::sync(door, &caller, req).await.map(Some)
        }
        ApiKey::Heartbeat => {
            let caller = caller(session, key)?;
            groups::heartbeat(door, &caller, req).map(Some)
        }
        ApiKey::LeaveGroup => {
            let caller = caller(session, key)?;
            groups::leave(door, &caller, req).map(Some)
        }
        ApiKey::ListGroups => {
            let caller = caller(session, key)?;
            groups::list(door, &caller, req).await.map(Some)
        }
        ApiKey::DescribeGroups => {
            let caller = caller(session, key)?;
            groups::describe(door, &caller, req).await.map(Some)
        }
        ApiKey::DeleteGroups => {
            let caller = caller(session, key)?;
            groups::delete(door, &caller, req).await.map(Some)
        }
        ApiKey::OffsetCommit => {
            let caller = caller(session, key)?;
            offsets::commit(door, &caller, req).await.map(Some)
        }
        ApiKey::OffsetFetch => {
            let caller = caller(session, key)?;
            offsets::fetch(door, &caller, req).await.map(Some)
        }
        ApiKey::InitProducerId => {
            let caller = caller(session, key)?;
            init_producer_id::handle(door, &caller, req).await.map(Some)
        }
        ApiKey::Produce => {
            let caller = caller(session, key)?;
            produce::handle(door, &caller, req, charge).await
        }
        ApiKey::Fetch => {
            let caller = caller(session, key)?;
            let credential = credential(session, key)?;
            fetch::handle(door, &caller, &credential, req, charge)
                .await
                .map(Some)
        }
        ApiKey::ListOffsets => {
            let caller = caller(session, key)?;
            list_offsets::handle(door, &caller, req).await.map(Some)
        }
        _ => Err(Error::UnknownApi(req.api_key)),
    }
}

/// How names resolve for `caller` on this listener: its alias rules, the caller's default
/// stream (none for anonymous callers), its default stream. Every API that resolves a
/// topic name or a group id resolves it here.
fn resolver<'a>(door: &'a Door, caller: &Caller) -> Resolver<'a> {
    Resolver {
        rules: &door.options.aliases,
        user_default: door.ns.kafka_default_stream(caller),
        listener_default: door.options.default_stream.as_ref(),
    }
}

/// A bare SASL token after SaslHandshake v0: its answer framed, `None` when the exchange
/// failed (the connection closes without an answer, as Kafka's legacy exchange does).
pub(crate) fn sasl_token(door: &Door, session: &mut Session, token: &[u8]) -> Option<Bytes> {
    sasl::raw_token(door, session, token)
}

/// The session's caller; before authentication, only ApiVersions and the handshake are
/// served.
fn caller(session: &Session, key: ApiKey) -> Result<Caller> {
    session
        .caller
        .clone()
        .ok_or(Error::Unauthenticated(api_name(key)))
}

/// How the session's caller authenticated, for calls that check it again as they wait.
fn credential(session: &Session, key: ApiKey) -> Result<Credential> {
    session
        .credential
        .clone()
        .ok_or(Error::Unauthenticated(api_name(key)))
}

/// A topic name resolved, or the code a partition of it is answered with: malformed is
/// INVALID_TOPIC_EXCEPTION, resolving nowhere UNKNOWN_TOPIC_OR_PARTITION.
fn resolve(resolver: &Resolver<'_>, name: &str) -> std::result::Result<TopicPath, i16> {
    match resolver.resolve(name) {
        Ok(Some(path)) => Ok(path),
        Ok(None) => Err(kafka_protocol::ResponseError::UnknownTopicOrPartition.code()),
        Err(_) => Err(kafka_protocol::ResponseError::InvalidTopicException.code()),
    }
}

/// Decodes a request whose bytes passed its shape.
fn decode<M: Decodable>(req: &mut Request) -> Result<M> {
    let version = req.api_version;
    M::decode(&mut req.body, version).map_err(|e| Error::Malformed {
        what: format!("v{version} request"),
        detail: e.to_string(),
    })
}

fn api_name(key: ApiKey) -> &'static str {
    match key {
        ApiKey::ApiVersions => "ApiVersions",
        ApiKey::Metadata => "Metadata",
        ApiKey::DescribeCluster => "DescribeCluster",
        ApiKey::SaslHandshake => "SaslHandshake",
        ApiKey::SaslAuthenticate => "SaslAuthenticate",
        ApiKey::CreateTopics => "CreateTopics",
        ApiKey::DeleteTopics => "DeleteTopics",
        ApiKey::CreatePartitions => "CreatePartitions",
        ApiKey::DescribeConfigs => "DescribeConfigs",
        ApiKey::AlterConfigs => "AlterConfigs",
        ApiKey::IncrementalAlterConfigs => "IncrementalAlterConfigs",
        ApiKey::FindCoordinator => "FindCoordinator",
        ApiKey::JoinGroup => "JoinGroup",
        ApiKey::SyncGroup => "SyncGroup",
        ApiKey::Heartbeat => "Heartbeat",
        ApiKey::LeaveGroup => "LeaveGroup",
        ApiKey::OffsetCommit => "OffsetCommit",
        ApiKey::OffsetFetch => "OffsetFetch",
        ApiKey::ListGroups => "ListGroups",
        ApiKey::DescribeGroups => "DescribeGroups",
        ApiKey::DeleteGroups => "DeleteGroups",
        ApiKey::InitProducerId => "InitProducerId",
        ApiKey::Produce => "Produce",
        ApiKey::Fetch => "Fetch",
        ApiKey::ListOffsets => "ListOffsets",
        _ => "this API",
    }
}

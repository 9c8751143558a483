//! The classic consumer-group APIs: FindCoordinator (this broker, for every group),
//! JoinGroup and SyncGroup (parked until the group answers, as Kafka does), Heartbeat,
//! LeaveGroup, ListGroups, DescribeGroups and DeleteGroups. The protocol itself is
//! `tributary_core::kafka_group`, run by the namespace; a group id names its stream as
//! `tributary_core::kafka_names` says, and the consume permission on that stream is the
//! group's ACL (GROUP_AUTHORIZATION_FAILED); deleting a group takes its admin permission.

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    ApiKey, BrokerId, DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest,
    DescribeGroupsResponse, FindCoordinatorRequest, FindCoordinatorResponse, GroupId,
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, ListGroupsRequest, ListGroupsResponse, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;
use tributary_core::kafka_group::{JoinRequest, Leaving, State, SyncRequest};
use tributary_core::kafka_names::{Resolver, group_id};
use tributary_core::names::StreamPath;
use tributary_volume::{Caller, KafkaGroupView};

use super::metadata::NODE_ID;
use super::{decode, resolver};
use crate::error::group_code;
use crate::frame::{self, Request};
use crate::session::Session;
use crate::{Door, Result};

/// A group id's stream and name there, or the code that refuses it.
pub(super) fn home(
    names: &Resolver<'_>,
    id: &str,
) -> std::result::Result<(StreamPath, String), i16> {
    match names.group(id) {
        Ok(Some(home)) => Ok(home),
        Ok(None) | Err(_) => Err(ResponseError::InvalidGroupId.code()),
    }
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

pub(super) fn find_coordinator(door: &Door, caller: &Caller, mut req: Request) -> Result<Bytes> {
    let version = req.api_version;
    let request: FindCoordinatorRequest = decode(&mut req)?;
    let keys: Vec<String> = if version >= 4 {
        request
            .coordinator_keys
            .iter()
            .map(|k| k.to_string())
            .collect()
    } else {
        vec![request.key.to_string()]
    };
    let (host, port) = &door.advertised;
    let names = resolver(door, caller);
    let answers: Vec<Coordinator> = keys
        .into_iter()
        .map(|key| {
            let code = if request.key_type != 0 {
                ResponseError::CoordinatorNotAvailable.code()
            } else {
                match home(&names, &key) {
                    Err(code) => code,
                    Ok((stream, group)) => {
                        match door.ns.authorize_kafka_group(caller, &stream, &group) {
                            Ok(()) => 0,
                            Err(e) => group_code(&e),
                        }
                    }
                }
            };
            let c = Coordinator::default()
                .with_key(s(&key))
                .with_error_code(code);
            if code == 0 {
                c.with_node_id(BrokerId(NODE_ID))
                    .with_host(s(host))
                    .with_port(i32::from(*port))
            } else {
                let why = if request.key_type != 0 {
                    "transactions are not supported"
                } else {
                    "no such group here, or not yours to use"
                };
                c.with_node_id(BrokerId(-1))
                    .with_port(-1)
                    .with_error_message(Some(s(why)))
            }
        })
        .collect();
    let mut body = FindCoordinatorResponse::default();
    if version >= 4 {
        body = body.with_coordinators(answers);
    } else {
        let c = answers.into_iter().next().unwrap_or_default();
        body = body
            .with_error_code(c.error_code)
            .with_node_id(c.node_id)
            .with_host(c.host)
            .with_port(c.port);
        if version >= 1 {
            body = body.with_error_message(c.error_message);
        }
    }
    let hv = ApiKey::FindCoordinator.response_header_version(version);
    frame::response(req.header.correlation_id, hv, &body, version)
}

pub(super) async fn join(
    door: &Door,
    session: &Session,
    caller: &Caller,
    mut req: Request,
) -> Result<Bytes> {
    let version = req.api_version;
    let request: JoinGroupRequest = decode(&mut req)?;
    let member_id = request.member_id.to_string();
    let answer = match home(&resolver(door, caller), &request.group_id.0) {
        Err(code) => Err((code, member_id.clone())),
        Ok((stream, group)) => {
            let join = JoinRequest {
                member_id: member_id.clone(),
                instance_id: request.group_instance_id.as_ref().map(|i| i.to_string()),
                client_id: req
                    .header
                    .client_id
                    .as_ref()
                    .map(|c| c.to_string())
                    .unwrap_or_default(),
                client_host: session.client_host.clone(),
                session_timeout_ms: request.session_timeout_ms,
                rebalance_timeout_ms: if version == 0 {
                    request.session_timeout_ms
                } else {
                    request.rebalance_timeout_ms
                },
                protocol_type: request.protocol_type.to_string(),
                protocols: request
                    .protocols
                    .iter()
                    .map(|p| (p.name.to_string(), p.metadata.clone()))
                    .collect(),
                require_known_member_id: version >= 4,
            };
            door.ns
                .kafka_join(caller, &stream, &group, join)
                .await
                .map_err(|e| {
                    let id = match &e {
                        tributary_volume::Error::Group(
                            tributary_core::Error::MemberIdRequired { member, .. },
                        ) => member.clone(),
                        _ => member_id.clone(),
                    };
                    (group_code(&e), id)
                })
        }
    };
    let body = match answer {
        Ok(j) => JoinGroupResponse::default()
            .with_generation_id(j.generation)
            .with_protocol_type((version >= 7).then(|| s(&j.protocol_type)))
            .with_protocol_name(Some(s(&j.protocol_name)))
            .with_leader(s(&j.leader))
            .with_skip_assignment(version >= 9 && j.skip_assignment)
            .with_member_id(s(&j.member_id))
            .with_members(
                j.members
                    .into_iter()
                    .map(|m| {
                        JoinGroupResponseMember::default()
                            .with_member_id(s(&m.member_id))
                            .with_group_instance_id(
                                m.instance_id.filter(|_| version >= 5).map(|i| s(&i)),
                            )
                            .with_metadata(m.metadata)
                    })
                    .collect(),
            ),
        Err((code, member)) => JoinGroupResponse::default()
            .with_error_code(code)
            .with_generation_id(-1)
            .with_protocol_name((version < 7).then(StrBytes::default))
            .with_member_id(s(&member)),
    };
    let hv = ApiKey::JoinGroup.response_header_version(version);
    frame::response(req.header.correlation_id, hv, &body, version)
}

pub(super) async fn sync(door: &Door, caller: &Caller, mut req: Request) -> Result<Bytes> {
    let version = req.api_version;
    let request: SyncGroupRequest = decode(&mut req)?;
    let answer = match home(&resolver(door, caller), &request.group_id.0) {
        Err(code) => Err(code),
        Ok((stream, group)) => {
            let sync = SyncRequest {
                member_id: request.member_id.to_string(),
                instance_id: request.group_instance_id.as_ref().map(|i| i.to_string()),
                generation: request.generation_id,
                protocol_type: request.protocol_type.as_ref().map(|t| t.to_string()),
                protocol_name: request.protocol_name.as_ref().map(|t| t.to_string()),
                assignments: request
                    .assignments
                    .iter()
                    .map(|a| (a.member_id.to_string(), a.assignment.clone()))
                    .collect(),
            };
            door.ns
                .kafka_sync(caller, &stream, &group, sync)
                .await
                .map_err(|e| group_code(&e))
        }
    };
    let mut body = match answer {
        Ok(assignment) => SyncGroupResponse::default().with_assignment(assignment),
        Err(code) => SyncGroupResponse::default().with_error_code(code),
    };
    if version >= 5 && body.error_code == 0 {
        body = body
            .with_protocol_type(request.protocol_type)
            .with_protocol_name(request.protocol_name);
    }
    let hv = ApiKey::SyncGroup.response_header_version(version);
    frame::response(req.header.correlation_id, hv, &body, version)
}

pub(super) fn heartbeat(door: &Door, caller: &Caller, mut req: Request) -> Result<Bytes> {
    let version = req.api_version;
    let request: HeartbeatRequest = decode(&mut req)?;
    let code = match home(&resolver(door, caller), &request.group_id.0) {
        Err(code) => code,
        Ok((stream, group)) => match door.ns.kafka_heartbeat(
            caller,
            &stream,
            &group,
            &request.member_id,
            request.group_instance_id.as_deref(),
            request.generation_id,
        ) {
            Ok(()) => 0,
            Err(e) => group_code(&e),
        },
    };
    let body = HeartbeatResponse::default().with_error_code(code);
    let hv = ApiKey::Heartbeat.response_header_version(version);
    frame::response(req.header.correlation_id, hv, &body, version)
}

pub(super) fn leave(door: &Door, caller: &Caller, mut req: Request) -> Result<Bytes> {
    let version = req.api_version;
    let request: LeaveGroupRequest = decode(&mut req)?;
    let leaving: Vec<Leaving> = if version >= 3 {
        request
            .members
            .iter()
            .map(|m| Leaving {
                member_id: m.member_id.to_string(),
                instance_id: m.group_instance_id.as_ref().map(|i| i.to_string()),
            })
            .collect()
    } else {
        vec![Leaving {
            member_id: request.member_id.to_string(),
            instance_id: None,
        }]
    };
    let results: std::result::Result<Vec<i16>, i16> =
        match home(&resolver(door, caller), &request.group_id.0) {
            Err(code) => Err(code),
            Ok((stream, group)) => door
                .ns
                .kafka_leave(caller, &stream, &group, &leaving)
                .map(|rs| {
                    rs.iter()
                        .map(|r| r.as_ref().map_or_else(group_code, |_| 0))
                        .collect()
                })
                .map_err(|e| group_code(&e)),
        };
    let mut body = LeaveGroupResponse::default();
    match results {
        Err(code) => body = body.with_error_code(code),
        Ok(codes) if version < 3 => body = body.with_error_code(codes[0]),
        Ok(codes) => {
            body = body.with_members(
                leaving
                    .iter()
                    .zip(codes)
                    .map(|(l, code)| {
                        MemberResponse::default()
                            .with_member_id(s(&l.member_id))
                            .with_group_instance_id(l.instance_id.as_deref().map(s))
                            .with_error_code(code)
                    })
                    .collect(),
            )
        }
    }
    let hv = ApiKey::LeaveGroup.response_header_version(version);
    frame::response(req.header.correlation_id, hv, &body, version)
}

/// A group's state and protocol type as Kafka reports them.
fn summary(view: &KafkaGroupView) -> (&'static str, String) {
    match view {
        KafkaGroupView::Classic(d) => (d.state.name(), d.protocol_type.clone()),
        KafkaGroupView::Tributary(_) => (State::Stable.name(), String::new()),
        KafkaGroupView::Committed => (State::Empty.name(), "consumer".into()),
        KafkaGroupView::Absent => ("Dead", String::new()),
    }
}

pub(super) async fn list(door: &Door, caller: &Caller, mut req: Request) -> Result<Bytes> {
    let version = req.api_version;
    let request: ListGroupsRequest = decode(&mut req)?;
    let mut groups = Vec::new();
    let names = resolver(door, caller);
    if let Some(stream) = names.default_stream() {
        // Groups the caller may not see are left out, as Kafka leaves them, and so are
        // names no Kafka group id maps to.
        let listed = door
            .ns
            .list_groups(caller, stream.as_str())
            .await
            .unwrap_or_default();
        for g in listed {
            let Some(id) = group_id(&g.group) else {
                continue;
            };
            let Ok(view) = door.ns.kafka_describe(caller, stream, &g.group).await else {
                continue;
            };
            let (state, protocol_type) = summary(&view);
            let wanted = request.states_filter.is_empty()
                || request
                    .states_filter
                    .iter()
                    .any(|f| f.eq_ignore_ascii_case(state));
            if wanted {
                groups.push(
                    ListedGroup::default()
                        .with_group_id(GroupId(s(&id)))
                        .with_protocol_type(s(&protocol_type))
                        .with_group_state(s(state)),
                );
            }
        }
    }
    let body = ListGroupsResponse::default().with_groups(groups);
    let hv = ApiKey::ListGroups.response_header_version(version);
    frame::response(req.header.correlation_id, hv, &body, version)
}

pub(super) async fn describe(door: &Door, caller: &Caller, mut req: Request) -> Result<Bytes> {
    let version = req.api_version;
    let request: DescribeGroupsRequest = decode(&mut req)?;
    let names = resolver(door, caller);
    let mut groups = Vec::with_capacity(request.groups.len());
    for id in request.groups {
        let described = DescribedGroup::default()
            .with_group_id(id.clone())
            .with_authorized_operations(i32::MIN);
        let view = match home(&names, &id.0) {
            Err(code) => Err(code),
            Ok((stream, group)) => door
                .ns
                .kafka_describe(caller, &stream, &group)
                .await
                .map_err(|e| group_code(&e)),
        };
        let view = match view {
            Ok(v) => v,
            Err(code) => {
                groups.push(described.with_error_code(code).with_group_state(s("Dead")));
                continue;
            }
        };
        let (state, protocol_type) = summary(&view);
        let mut described = described
            .with_group_state(s(state))
            .with_protocol_type(s(&protocol_type));
        match view {
            KafkaGroupView::Classic(d) => {
                // Metadata and assignments only once the group is stable, as Kafka shows.
                let stable = d.state == State::Stable;
                if stable {
                    described = described.with_protocol_data(s(&d.protocol_name));
                }
                described = described.with_members(
                    d.members
                        .into_iter()
                        .map(|m| {
                            let member = DescribedGroupMember::default()
                                .with_member_id(s(&m.member_id))
                                .with_group_instance_id(
                                    m.instance_id.as_deref().filter(|_| version >= 4).map(s),
                                )
                                .with_client_id(s(&m.client_id))
                                .with_client_host(s(&m.client_host));
                            if stable {
                                member
                                    .with_member_metadata(m.metadata)
                                    .with_member_assignment(m.assignment)
                            } else {
                                member
                            }
                        })
                        .collect(),
                );
            }
            KafkaGroupView::Tributary(members) => {
                described = described.with_members(
                    members
                        .into_iter()
                        .map(|(id, client)| {
                            DescribedGroupMember::default()
                                .with_member_id(s(&id))
                                .with_client_id(s(&client))
                        })
                        .collect(),
                );
            }
            KafkaGroupView::Committed | KafkaGroupView::Absent => {}
        }
        groups.push(described);
    }
    let body = DescribeGroupsResponse::default().with_groups(groups);
    let hv = ApiKey::DescribeGroups.response_header_version(version);
    frame::response(req.header.correlation_id, hv, &body, version)
}

pub(super) async fn delete(door: &Door, caller: &Caller, mut req: Request) -> Result<Bytes> {
    let version = req.api_version;
    let request: DeleteGroupsRequest = decode(&mut req)?;
    let names = resolver(door, caller);
    let mut results = Vec::with_capacity(request.groups_names.len());
    for id in request.groups_names {
        let code = match home(&names, &id.0) {
            Err(code) => code,
            Ok((stream, group)) => {
                match door.ns.delete_group(caller, stream.as_str(), &group).await {
                    Ok(()) => 0,
                    Err(e) => group_code(&e),
                }
            }
        };
        results.push(
            DeletableGroupResult::default()
                .with_group_id(id)
                .with_error_code(code),
        );
    }
    let body = DeleteGroupsResponse::default().with_results(results);
    let hv = ApiKey::DeleteGroups.response_header_version(version);
    frame::response(req.header.correlation_id, hv, &body, version)
}

//! The Producer and Consumer handlers: produce (idempotent, conditional), fetch, offsets,
//! and consumer groups (the Subscribe session, commits, and the group admin calls).

use std::pin::Pin;
use std::time::Duration;

use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tributary_core::groups::TopicPartition;
use tributary_proto::{v1, wire};
use tributary_volume::{
    ClientMsg, Committer, CursorCommit, GroupInfo, IdempotentSeq, JoinRequest, OffsetSpec,
    ProduceOptions, ResetTo, ServerMsg,
};

use crate::auth::credential;
use crate::services::{Reply, Services, ok};
use crate::trace::caller;
use crate::{ApiError, limits, metrics};

fn invalid(field: &'static str, message: impl Into<String>) -> Status {
    ApiError::InvalidArgument {
        field,
        message: message.into(),
    }
    .into()
}

/// An OffsetSpec from the wire; `timestamp_ms` is used for TIMESTAMP.
fn offset_spec(
    field: &'static str,
    spec: i32,
    timestamp_ms: i64,
) -> Result<Option<OffsetSpec>, Status> {
    match v1::OffsetSpec::try_from(spec) {
        Ok(v1::OffsetSpec::Unspecified) => Ok(None),
        Ok(v1::OffsetSpec::Earliest) => Ok(Some(OffsetSpec::Earliest)),
        Ok(v1::OffsetSpec::Latest) => Ok(Some(OffsetSpec::Latest)),
        Ok(v1::OffsetSpec::Timestamp) => Ok(Some(OffsetSpec::Timestamp(timestamp_ms))),
        Err(_) => Err(invalid(field, format!("unknown value {spec}"))),
    }
}

#[tonic::async_trait]
impl wire::producer_server::Producer for Services {
    async fn produce(&self, r: Request<wire::ProduceRequest>) -> Reply<v1::ProduceResponse> {
        let c = caller(&r)?;
        let r = r.into_inner();
        let bytes = r.batch.len() as u64;
        (self.quotas)
            .admit_produce(c.name(), bytes)
            .map_err(|r| ApiError::throttled(c.name(), r))?;
        let opts = ProduceOptions {
            partition: r.partition,
            producer: r.producer.map(|p| IdempotentSeq {
                producer_id: p.producer_id,
                epoch: p.epoch,
                sequence: p.sequence,
            }),
            expected_last_offsets: r.expected_last_offsets,
        };
        let res = self
            .ns
            .produce_with(&c, &r.topic, opts, r.batch)
            .await
            .map_err(ApiError::from)?;
        if !res.duplicate {
            let records = res.acks.iter().map(|a| u64::from(a.record_count)).sum();
            metrics::produced(&r.topic, records, bytes);
        }
        ok(v1::ProduceResponse {
            acks: res
                .acks
                .into_iter()
                .map(|a| v1::PartitionAck {
                    partition: a.partition,
                    base_offset: a.base_offset,
                    record_count: a.record_count,
                    append_time_ms: a.append_time_ms,
                })
                .collect(),
            record_partitions: res.record_partitions,
            duplicate: res.duplicate,
            partitions: res.partitions,
        })
    }

    async fn init_producer(
        &self,
        r: Request<v1::InitProducerRequest>,
    ) -> Reply<v1::InitProducerResponse> {
        let c = caller(&r)?;
        let producer_id = self.ns.init_producer(&c).await.map_err(ApiError::from)?;
        ok(v1::InitProducerResponse {
            producer_id,
            epoch: 0,
        })
    }

    async fn get_partitions(
        &self,
        r: Request<v1::GetPartitionsRequest>,
    ) -> Reply<v1::GetPartitionsResponse> {
        let c = caller(&r)?;
        let partitions = self
            .ns
            .producer_partitions(&c, &r.get_ref().topic)
            .await
            .map_err(ApiError::from)?;
        ok(v1::GetPartitionsResponse { partitions })
    }
}

type SubscribeStream = Pin<Box<dyn Stream<Item = Result<wire::SubscribeResponse, Status>> + Send>>;

#[tonic::async_trait]
impl wire::consumer_server::Consumer for Services {
    async fn fetch(&self, r: Request<v1::FetchRequest>) -> Reply<wire::FetchResponse> {
        let c = caller(&r)?;
        (self.quotas)
            .admit_fetch(c.name())
            .map_err(|r| ApiError::throttled(c.name(), r))?;
        let credential = credential(&r);
        let r = r.into_inner();
        let res = self
            .ns
            .fetch(
                &credential,
                &r.topic,
                r.partition,
                r.offset,
                limits::fetch_budget(r.max_bytes, self.max_message_bytes),
                Duration::from_millis(r.max_wait_ms.into()),
            )
            .await
            .map_err(ApiError::from)?;
        limits::check_fetch_response(&res.batches, self.max_message_bytes)?;
        let bytes = metrics::fetched(&r.topic, &res.batches);
        self.quotas.charge_fetch(c.name(), bytes);
        ok(wire::FetchResponse {
            batches: res.batches,
            high_watermark: res.high_watermark,
            log_start_offset: res.log_start,
            next_offset: res.next_offset,
        })
    }

    async fn list_offsets(
        &self,
        r: Request<v1::ListOffsetsRequest>,
    ) -> Reply<v1::ListOffsetsResponse> {
        let c = caller(&r)?;
        let r = r.into_inner();
        let Some(spec) = offset_spec("spec", r.spec, r.timestamp_ms)? else {
            return Err(invalid(
                "spec",
                "must be OFFSET_SPEC_EARLIEST, OFFSET_SPEC_LATEST or OFFSET_SPEC_TIMESTAMP",
            ));
        };
        let offsets = self
            .ns
            .list_offsets(&c, &r.topic, &r.partitions, spec)
            .await
            .map_err(ApiError::from)?;
        ok(v1::ListOffsetsResponse {
            offsets: offsets
                .into_iter()
                .map(|(partition, offset)| v1::PartitionOffset { partition, offset })
                .collect(),
        })
    }

    type SubscribeStream = SubscribeStream;

    async fn subscribe(
        &self,
        r: Request<Streaming<v1::SubscribeRequest>>,
    ) -> Reply<SubscribeStream> {
        let c = caller(&r)?;
        let credential = credential(&r);
        let mut inbound = r.into_inner();
        let first = inbound
            .message()
            .await?
            .ok_or_else(|| invalid("join", "the stream ended before its first message"))?;
        let Some(v1::subscribe_request::Kind::Join(j)) = first.kind else {
            return Err(invalid("join", "the first message must be `join`"));
        };
        let join = JoinRequest {
            stream: j.stream,
            group: j.group,
            member_id: Some(j.member_id).filter(|m| !m.is_empty()),
            topics: j.topics,
            topic_pattern: Some(j.topic_pattern).filter(|p| !p.is_empty()),
            assignor: j.assignor,
            session_timeout_ms: j.session_timeout_ms,
            client_id: j.client_id,
            start: offset_spec("join.start", j.start, 0)?,
        };
        self.ns
            .authorize_subscribe(&c, &join.stream)
            .map_err(ApiError::from)?;
        // Client messages after the join, until the client closes its side.
        let (in_tx, in_rx) = mpsc::channel(16);
        tokio::spawn(async move {
            while let Ok(Some(m)) = inbound.message().await {
                let msg = match m.kind {
                    Some(v1::subscribe_request::Kind::Credit(c)) => ClientMsg::Credit {
                        bytes: c.bytes,
                        batches: c.batches,
                    },
                    Some(v1::subscribe_request::Kind::Revoked(r)) => ClientMsg::Revoked {
                        generation: r.generation,
                        partitions: r
                            .partitions
                            .into_iter()
                            .map(|tp| TopicPartition::new(tp.topic, tp.partition))
                            .collect(),
                    },
                    Some(v1::subscribe_request::Kind::Heartbeat(_)) => ClientMsg::Heartbeat,
                    Some(v1::subscribe_request::Kind::Join(_)) | None => ClientMsg::Heartbeat,
                };
                if in_tx.send(msg).await.is_err() {
                    break;
                }
            }
        });
        // The session runs in its own task; a forwarder turns its messages into responses
        // and its end into the stream's status. Neither waits on the other, so a client
        // that stops reading never stalls the session's shutdown.
        // One push waiting in each, so that a client that stops reading holds few.
        let (res_tx, res_rx) = mpsc::channel(1);
        let (out_tx, mut out_rx) = mpsc::channel(1);
        let ns = self.ns.clone();
        let stream = join.stream.clone();
        let (quotas, principal) = (self.quotas.clone(), c.name().to_owned());
        let session =
            tokio::spawn(async move { ns.subscribe(&credential, join, in_rx, out_tx).await });
        tokio::spawn(async move {
            while let Some(m) = out_rx.recv().await {
                if let ServerMsg::Records(r) = &m {
                    let bytes = metrics::fetched(&format!("{stream}:{}", r.tp.topic), &r.batches);
                    // Over its fetch quota, the session waits before pushing on.
                    if let Some(wait) = quotas.charge_fetch(&principal, bytes) {
                        metrics::throttled(crate::QuotaKind::FetchBytes);
                        tokio::time::sleep(wait).await;
                    }
                }
                if res_tx.send(Ok(server_msg(m))).await.is_err() {
                    session.abort(); // the client is gone: leaving the group is the session's drop
                    return;
                }
            }
            if let Ok(Err(e)) = session.await {
                let _ = res_tx.send(Err(ApiError::from(e).into())).await;
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(res_rx))))
    }

    async fn commit_offsets(
        &self,
        r: Request<v1::CommitOffsetsRequest>,
    ) -> Reply<v1::CommitOffsetsResponse> {
        let c = caller(&r)?;
        let r = r.into_inner();
        let committer = (!r.member_id.is_empty()).then_some(Committer {
            member_id: r.member_id,
            generation: r.generation,
        });
        let cursors = r
            .cursors
            .into_iter()
            .map(|c| CursorCommit {
                topic: c.topic,
                partition: c.partition,
                offset: c.offset,
            })
            .collect();
        self.ns
            .commit_offsets(&c, &r.stream, &r.group, committer, cursors)
            .await
            .map_err(ApiError::from)?;
        ok(v1::CommitOffsetsResponse {})
    }

    async fn list_groups(
        &self,
        r: Request<v1::ListGroupsRequest>,
    ) -> Reply<v1::ListGroupsResponse> {
        let c = caller(&r)?;
        let groups = self
            .ns
            .list_groups(&c, &r.get_ref().stream)
            .await
            .map_err(ApiError::from)?;
        ok(v1::ListGroupsResponse {
            groups: groups
                .into_iter()
                .map(|g| v1::GroupSummary {
                    group: g.group,
                    members: g.members,
                    generation: g.generation,
                })
                .collect(),
        })
    }

    async fn describe_group(
        &self,
        r: Request<v1::DescribeGroupRequest>,
    ) -> Reply<v1::GroupDescription> {
        let c = caller(&r)?;
        let r = r.into_inner();
        let g = self
            .ns
            .describe_group(&c, &r.stream, &r.group)
            .await
            .map_err(ApiError::from)?;
        ok(group(g))
    }

    async fn reset_group(&self, r: Request<v1::ResetGroupRequest>) -> Reply<v1::GroupDescription> {
        let c = caller(&r)?;
        let r = r.into_inner();
        let to = match (offset_spec("to", r.to, r.timestamp_ms)?, r.offset) {
            (Some(spec), None) => ResetTo::Spec(spec),
            (None, Some(o)) => ResetTo::Offset(o),
            _ => {
                return Err(invalid(
                    "to",
                    "give either `to` (earliest, latest or timestamp) or an exact `offset`",
                ));
            }
        };
        let topic = Some(r.topic.as_str()).filter(|t| !t.is_empty());
        let g = self
            .ns
            .reset_group(&c, &r.stream, &r.group, topic, to)
            .await
            .map_err(ApiError::from)?;
        ok(group(g))
    }

    async fn delete_group(
        &self,
        r: Request<v1::DeleteGroupRequest>,
    ) -> Reply<v1::DeleteGroupResponse> {
        let c = caller(&r)?;
        let r = r.into_inner();
        self.ns
            .delete_group(&c, &r.stream, &r.group)
            .await
            .map_err(ApiError::from)?;
        ok(v1::DeleteGroupResponse {})
    }
}

fn server_msg(m: ServerMsg) -> wire::SubscribeResponse {
    use wire::subscribe_response::Kind;
    let kind = match m {
        ServerMsg::Joined {
            member_id,
            session_timeout_ms,
        } => Kind::Joined(v1::Joined {
            member_id,
            session_timeout_ms,
        }),
        ServerMsg::Assignment {
            generation,
            partitions,
        } => Kind::Assignment(v1::Assignment {
            generation,
            partitions: partitions
                .into_iter()
                .map(|(tp, offset)| v1::AssignedPartition {
                    topic: tp.topic,
                    partition: tp.partition,
                    offset,
                })
                .collect(),
        }),
        ServerMsg::Records(r) => Kind::Records(wire::PartitionRecords {
            topic: r.tp.topic,
            partition: r.tp.partition,
            batches: r.batches,
            high_watermark: r.high_watermark,
            skipped_to: r.skipped_to.unwrap_or(0),
        }),
    };
    wire::SubscribeResponse { kind: Some(kind) }
}

fn group(g: GroupInfo) -> v1::GroupDescription {
    v1::GroupDescription {
        stream: g.stream,
        group: g.group,
        generation: g.generation,
        assignor: g.assignor,
        members: g
            .members
            .into_iter()
            .map(|m| v1::GroupMember {
                member_id: m.member_id,
                client_id: m.client_id,
                partitions: m
                    .partitions
                    .into_iter()
                    .map(|(topic, partition)| v1::TopicPartition { topic, partition })
                    .collect(),
                last_heartbeat_ms: m.last_heartbeat_ms,
                session_timeout_ms: m.session_timeout_ms as u32,
            })
            .collect(),
        partitions: g
            .partitions
            .into_iter()
            .map(|p| v1::GroupPartition {
                topic: p.topic,
                partition: p.partition,
                committed: p.committed.as_ref().map(|c| c.offset),
                commit_ms: p.committed.map(|c| c.commit_ms),
                log_start: p.log_start,
                high_watermark: p.high_watermark,
                lag: p.lag,
                member_id: p.member_id.unwrap_or_default(),
            })
            .collect(),
    }
}

//! OffsetCommit and OffsetFetch: a Kafka group's offsets are the cursors Tributary's own
//! groups commit, with the commit's metadata kept beside them. A commit is fenced by the
//! group's member and generation (a refusal there is every partition's code); each
//! partition then needs its topic's consume permission. A partition never committed
//! fetches as offset -1.

use std::collections::HashMap;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    ApiKey, GroupId, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest,
    OffsetFetchResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use tributary_core::names::TopicPath;
use tributary_volume::{Caller, KafkaCommitter, KafkaOffset};

use super::groups::home;
use super::{decode, resolve, resolver};
use crate::error::{group_code, partition_code};
use crate::frame::{self, Request};
use crate::{Door, Result};

/// The longest commit metadata accepted (Kafka's `offset.metadata.max.bytes`).
pub(crate) const MAX_METADATA_BYTES: usize = 4096;

pub(super) async fn commit(door: &Door, caller: &Caller, mut req: Request) -> Result<Bytes> {
    let version = req.api_version;
    let request: OffsetCommitRequest = decode(&mut req)?;
    // Each partition's code, in request order; 0 until something refuses it.
    let mut codes: Vec<Vec<i16>> = request
        .topics
        .iter()
        .map(|t| vec![0; t.partitions.len()])
        .collect();
    let names = resolver(door, caller);
    match home(&names, &request.group_id.0) {
        Err(code) => codes.iter_mut().flatten().for_each(|c| *c = code),
        Ok((stream, group)) => {
            let committer = KafkaCommitter {
                member_id: request.member_id.to_string(),
                instance_id: request.group_instance_id.as_ref().map(|i| i.to_string()),
                generation: request.generation_id_or_member_epoch,
            };
            let mut offsets = Vec::new();
            let mut at = Vec::new();
            for (ti, t) in request.topics.iter().enumerate() {
                let path = resolve(&names, &t.name.0);
                for (pi, p) in t.partitions.iter().enumerate() {
                    let metadata = p.committed_metadata.as_deref().unwrap_or("");
                    let refused = match &path {
                        Err(code) => Some(*code),
                        Ok(_) if p.partition_index < 0 => {
                            Some(ResponseError::UnknownTopicOrPartition.code())
                        }
                        Ok(_) if metadata.len() > MAX_METADATA_BYTES => {
                            Some(ResponseError::OffsetMetadataTooLarge.code())
                        }
                        Ok(_) => None,
                    };
                    match (refused, &path) {
                        (Some(code), _) => codes[ti][pi] = code,
                        (None, Ok(path)) => {
                            offsets.push(KafkaOffset {
                                topic: path.clone(),
                                partition: p.partition_index as u32,
                                offset: p.committed_offset,
                                metadata: metadata.to_owned(),
                            });
                            at.push((ti, pi));
                        }
                        (None, Err(_)) => unreachable!("refused above"),
                    }
                }
            }
            match door
                .ns
                .kafka_commit(caller, &stream, &group, &committer, offsets)
                .await
            {
                Err(e) => {
                    let code = group_code(&e);
                    codes.iter_mut().flatten().for_each(|c| *c = code);
                }
                Ok(results) => {
                    for ((ti, pi), r) in at.into_iter().zip(results) {
                        codes[ti][pi] = r.as_ref().map_or_else(partition_code, |_| 0);
                    }
                }
            }
        }
    }
    let topics = request
        .topics
        .iter()
        .zip(codes)
        .map(|(t, codes)| {
            OffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .zip(codes)
                        .map(|(p, code)| {
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect();
    let body = OffsetCommitResponse::default().with_topics(topics);
    let hv = ApiKey::OffsetCommit.response_header_version(version);
    frame::response(req.header.correlation_id, hv, &body, version)
}

/// One partition's answer: `(offset, metadata, code)`.
type Fetched = (i64, String, i16);

/// The offsets of one group: per topic (as named, or every topic it committed in its
/// stream when `topics` is `None`), each partition's answer; or the group's code.
async fn fetch_group(
    door: &Door,
    caller: &Caller,
    group_id: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> std::result::Result<Vec<(String, Vec<(i32, Fetched)>)>, i16> {
    let names = resolver(door, caller);
    let (stream, group) = home(&names, group_id)?;
    let never = |code| (-1, String::new(), code);
    let Some(topics) = topics else {
        let all = door
            .ns
            .kafka_offsets(caller, &stream, &group, None)
            .await
            .map_err(|e| group_code(&e))?;
        let mut out: Vec<(String, Vec<(i32, Fetched)>)> = Vec::new();
        for (path, p, cursor) in all {
            let name = names.kafka_name(&path);
            let answer = match cursor {
                Ok(Some(c)) => (c.offset as i64, c.metadata, 0),
                Ok(None) => never(0),
                Err(e) => never(partition_code(&e)),
            };
            match out.last_mut() {
                Some((n, ps)) if *n == name => ps.push((p as i32, answer)),
                _ => out.push((name, vec![(p as i32, answer)])),
            }
        }
        return Ok(out);
    };
    let mut asked = Vec::new();
    let mut answers: Vec<(String, Vec<(i32, Fetched)>)> = Vec::new();
    for (ti, (name, partitions)) in topics.iter().enumerate() {
        let path = resolve(&names, name);
        answers.push((name.clone(), Vec::new()));
        match path {
            Err(code) => {
                answers[ti].1 = partitions.iter().map(|&p| (p, never(code))).collect();
            }
            Ok(path) => {
                let valid: Vec<u32> = partitions
                    .iter()
                    .filter(|&&p| p >= 0)
                    .map(|&p| p as u32)
                    .collect();
                asked.push((ti, path, valid));
            }
        }
    }
    let request: Vec<(TopicPath, Vec<u32>)> = asked
        .iter()
        .map(|(_, p, v)| (p.clone(), v.clone()))
        .collect();
    let got = door
        .ns
        .kafka_offsets(caller, &stream, &group, Some(request))
        .await
        .map_err(|e| group_code(&e))?;
    let mut by: HashMap<(String, u32), Fetched> = HashMap::new();
    for (path, p, cursor) in got {
        let answer = match cursor {
            Ok(Some(c)) => (c.offset as i64, c.metadata, 0),
            Ok(None) => never(0),
            Err(e) => never(partition_code(&e)),
        };
        by.insert((path.to_string(), p), answer);
    }
    for (ti, path, _) in asked {
        let key = path.to_string();
        answers[ti].1 = topics[ti]
            .1
            .iter()
            .map(|&p| {
                let answer = u32::try_from(p)
                    .ok()
                    .and_then(|p| by.get(&(key.clone(), p)).cloned())
                    .unwrap_or_else(|| never(0));
                (p, answer)
            })
            .collect();
    }
    Ok(answers)
}

/// The answer for one group's topics, in either of OffsetFetch's layouts (before version 8
/// and after, whose types differ but whose fields are the same).
macro_rules! fetched_topics {
    ($topics:expr, $topic:ident, $partition:ident) => {
        $topics
            .into_iter()
            .map(|(name, ps)| {
                $topic::default()
                    .with_name(TopicName(StrBytes::from_string(name)))
                    .with_partitions(
                        ps.into_iter()
                            .map(|(p, (offset, meta, code))| {
                                $partition::default()
                                    .with_partition_index(p)
                                    .with_committed_offset(offset)
                                    .with_committed_leader_epoch(-1)
                                    .with_metadata(Some(StrBytes::from_string(meta)))
                                    .with_error_code(code)
                            })
                            .collect(),
                    )
            })
            .collect()
    };
}

pub(super) async fn fetch(door: &Door, caller: &Caller, mut req: Request) -> Result<Bytes> {
    let version = req.api_version;
    let request: OffsetFetchRequest = decode(&mut req)?;
    let mut body = OffsetFetchResponse::default();
    if version >= 8 {
        let mut groups = Vec::with_capacity(request.groups.len());
        for g in &request.groups {
            let topics = g.topics.as_ref().map(|ts| {
                ts.iter()
                    .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
                    .collect()
            });
            let group = OffsetFetchResponseGroup::default().with_group_id(g.group_id.clone());
            groups.push(
                match fetch_group(door, caller, &g.group_id.0, topics).await {
                    Err(code) => group.with_error_code(code),
                    Ok(topics) => group.with_topics(fetched_topics!(
                        topics,
                        OffsetFetchResponseTopics,
                        OffsetFetchResponsePartitions
                    )),
                },
            );
        }
        body = body.with_groups(groups);
    } else {
        let topics = request.topics.as_ref().map(|ts| {
            ts.iter()
                .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
                .collect()
        });
        let group_id: GroupId = request.group_id.clone();
        match fetch_group(door, caller, &group_id.0, topics).await {
            // Before version 2 there is no group-level code: each partition carries it.
            Err(code) if version < 2 => {
                let ts = request.topics.clone().unwrap_or_default();
                body = body.with_topics(
                    ts.into_iter()
                        .map(|t| {
                            OffsetFetchResponseTopic::default()
                                .with_name(t.name)
                                .with_partitions(
                                    t.partition_indexes
                                        .iter()
                                        .map(|&p| {
                                            OffsetFetchResponsePartition::default()
                                                .with_partition_index(p)
                                                .with_committed_offset(-1)
                                                .with_metadata(Some(StrBytes::default()))
                                                .with_error_code(code)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                );
            }
            Err(code) => body = body.with_error_code(code),
            Ok(topics) => {
                body = body.with_topics(fetched_topics!(
                    topics,
                    OffsetFetchResponseTopic,
                    OffsetFetchResponsePartition
                ));
            }
        }
    }
    let hv = ApiKey::OffsetFetch.response_header_version(version);
    frame::response(req.header.correlation_id, hv, &body, version)
}

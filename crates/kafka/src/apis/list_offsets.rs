//! ListOffsets (versions 1 to 6): a partition's earliest offset (timestamp -2), its latest
//! (-1, the high-water mark), or the first offset whose record's timestamp is at or after
//! a time, through the time index. A time past every record is answered with offset -1,
//! as Kafka does. The record with the largest timestamp (-3) is version 7's (KIP-734),
//! not advertised: asked at an earlier version it is UNSUPPORTED_VERSION, as in Kafka.

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ApiKey, ListOffsetsRequest, ListOffsetsResponse};
use tributary_volume::{Caller, OffsetSpec};

use crate::error::topic_code;
use crate::frame::{self, Request};
use crate::{Door, Result};

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;

pub(super) async fn handle(door: &Door, caller: &Caller, mut req: Request) -> Result<Bytes> {
    let version = req.api_version;
    let request: ListOffsetsRequest = super::decode(&mut req)?;
    let resolver = super::resolver(door, caller);
    let mut topics = Vec::with_capacity(request.topics.len());
    for t in request.topics {
        let path = super::resolve(&resolver, &t.name.0);
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let answer =
                ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
            let spec = match p.timestamp {
                LATEST => Some(OffsetSpec::Latest),
                EARLIEST => Some(OffsetSpec::Earliest),
                t if t >= 0 => Some(OffsetSpec::Timestamp(t)),
                _ => None,
            };
            let answer = match (&path, spec) {
                (Err(code), _) => answer.with_error_code(*code),
                (Ok(_), None) => answer.with_error_code(ResponseError::UnsupportedVersion.code()),
                (Ok(_), Some(_)) if p.partition_index < 0 => {
                    answer.with_error_code(ResponseError::UnknownTopicOrPartition.code())
                }
                (Ok(path), Some(spec)) => {
                    let found = door
                        .ns
                        .list_offsets_timed(
                            caller,
                            &path.to_string(),
                            &[p.partition_index as u32],
                            spec,
                        )
                        .await;
                    match found.map(|f| f.first().map(|(_, o)| *o)) {
                        Ok(Some(o)) => match (spec, o.timestamp_ms) {
                            // Nothing that recent.
                            (OffsetSpec::Timestamp(_), None) => answer,
                            (_, ts) => answer
                                .with_offset(o.offset as i64)
                                .with_timestamp(ts.unwrap_or(-1)),
                        },
                        Ok(None) => {
                            answer.with_error_code(ResponseError::UnknownTopicOrPartition.code())
                        }
                        Err(e) => answer.with_error_code(topic_code(&e)),
                    }
                }
            };
            partitions.push(answer);
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions),
        );
    }
    let body = ListOffsetsResponse::default().with_topics(topics);
    let header_version = ApiKey::ListOffsets.response_header_version(version);
    frame::response(req.header.correlation_id, header_version, &body, version)
}

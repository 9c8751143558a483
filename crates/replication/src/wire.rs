//! The protobuf form of replication (`tributary.v1`, `replication.proto`) and the crate's
//! own types, both ways: the replicator uses it as a client (its request out, responses
//! in), the API's Replication service as a server (requests in, responses and link
//! listings out). Nothing else in the crate sees a protobuf message.

use tributary_proto::v1;
use tributary_volume::{Error, LinkStart, Result};

use crate::links::LinkInfo;
use crate::protocol::{
    Position, PullChunk, PullRequest, PullResponse, ReplicatedCursor, TopicShape,
};
use crate::status::LinkState;

/// A link's start from the `start` field of a request.
pub fn link_start(start: i32) -> Result<LinkStart> {
    match v1::PullStart::try_from(start) {
        Ok(v1::PullStart::Earliest) => Ok(LinkStart::Earliest),
        Ok(v1::PullStart::Latest) => Ok(LinkStart::Latest),
        Err(_) => Err(Error::InvalidArgument {
            field: "start".into(),
            message: format!("{start} is not a PullStart"),
        }),
    }
}

pub fn pull_start(start: LinkStart) -> v1::PullStart {
    match start {
        LinkStart::Earliest => v1::PullStart::Earliest,
        LinkStart::Latest => v1::PullStart::Latest,
    }
}

impl TryFrom<v1::PullRequest> for PullRequest {
    type Error = Error;

    fn try_from(r: v1::PullRequest) -> Result<PullRequest> {
        let puller = match r.cluster_id.len() {
            0 => None,
            16 => Some(r.cluster_id[..].try_into().expect("16 bytes")),
            n => {
                return Err(Error::InvalidArgument {
                    field: "cluster_id".into(),
                    message: format!("is {n} bytes; a cluster id is 16"),
                });
            }
        };
        Ok(PullRequest {
            stream: r.stream,
            puller,
            start: link_start(r.start)?,
            positions: r
                .positions
                .into_iter()
                .map(|p| Position {
                    topic: p.topic,
                    partition: p.partition,
                    next_offset: p.next_offset,
                    upstream_incarnation: p.upstream_incarnation,
                })
                .collect(),
            max_bytes: r.max_bytes,
            cursors: r.cursors,
        })
    }
}

impl From<PullRequest> for v1::PullRequest {
    fn from(r: PullRequest) -> v1::PullRequest {
        v1::PullRequest {
            stream: r.stream,
            cluster_id: r.puller.map(|id| id.to_vec()).unwrap_or_default().into(),
            positions: r
                .positions
                .into_iter()
                .map(|p| v1::PullPosition {
                    topic: p.topic,
                    partition: p.partition,
                    next_offset: p.next_offset,
                    upstream_incarnation: p.upstream_incarnation,
                })
                .collect(),
            start: pull_start(r.start) as i32,
            max_bytes: r.max_bytes,
            cursors: r.cursors,
        }
    }
}

impl From<v1::PullResponse> for PullResponse {
    fn from(r: v1::PullResponse) -> PullResponse {
        PullResponse {
            topics: r
                .topics
                .into_iter()
                .map(|t| TopicShape {
                    name: t.name,
                    partitions: t.partitions,
                })
                .collect(),
            chunks: r
                .chunks
                .into_iter()
                .map(|c| PullChunk {
                    topic: c.topic,
                    partition: c.partition,
                    batches: c.batches,
                    next_offset: c.next_offset,
                    high_watermark: c.high_watermark,
                    log_start: c.log_start,
                    stored_bytes: c.stored_bytes,
                    last_append_ms: c.last_append_ms,
                })
                .collect(),
            cursors: r
                .cursors
                .into_iter()
                .map(|c| ReplicatedCursor {
                    group: c.group,
                    topic: c.topic,
                    partition: c.partition,
                    offset: c.offset,
                })
                .collect(),
            cursors_sent: r.cursors_sent,
            sent_ms: r.sent_ms,
            upstream_incarnation: r.upstream_incarnation,
        }
    }
}

impl From<PullResponse> for v1::PullResponse {
    fn from(r: PullResponse) -> v1::PullResponse {
        v1::PullResponse {
            topics: r
                .topics
                .into_iter()
                .map(|t| v1::TopicShape {
                    name: t.name,
                    partitions: t.partitions,
                })
                .collect(),
            chunks: r
                .chunks
                .into_iter()
                .map(|c| v1::PullChunk {
                    topic: c.topic,
                    partition: c.partition,
                    batches: c.batches,
                    next_offset: c.next_offset,
                    high_watermark: c.high_watermark,
                    log_start: c.log_start,
                    stored_bytes: c.stored_bytes,
                    last_append_ms: c.last_append_ms,
                })
                .collect(),
            cursors: r
                .cursors
                .into_iter()
                .map(|c| v1::ReplicatedCursor {
                    group: c.group,
                    topic: c.topic,
                    partition: c.partition,
                    offset: c.offset,
                })
                .collect(),
            cursors_sent: r.cursors_sent,
            sent_ms: r.sent_ms,
            upstream_incarnation: r.upstream_incarnation,
        }
    }
}

impl From<LinkInfo> for v1::Upstream {
    fn from(l: LinkInfo) -> v1::Upstream {
        let st = &l.status;
        v1::Upstream {
            id: l.id.to_string(),
            mirror: l.mirror,
            start: pull_start(l.start) as i32,
            state: match st.state() {
                LinkState::Paused => v1::UpstreamState::Paused,
                LinkState::Connecting => v1::UpstreamState::Connecting,
                LinkState::Running => v1::UpstreamState::Running,
            } as i32,
            created_ms: l.created_ms,
            last_error: st.last_error().map(|e| e.1.to_owned()).unwrap_or_default(),
            last_error_ms: st.last_error().map_or(0, |e| e.0),
            lag_records: st.lag_records(),
            lag_bytes: st.lag_bytes(),
            lag_ms: st.lag_ms(),
            records_applied: st.records_applied(),
            records_skipped: st.records_skipped(),
            lost_records: st.lost_records(),
            last_contact_ms: st.last_contact_ms(),
            partitions: st
                .partitions()
                .iter()
                .map(|((topic, partition), p)| v1::UpstreamPartition {
                    topic: topic.clone(),
                    partition: *partition,
                    position: p.position(),
                    upstream_high_watermark: p.upstream_high_watermark(),
                    upstream_log_start: p.upstream_log_start(),
                    lag_records: p.lag_records(),
                    lag_bytes: p.lag_bytes(),
                    lag_ms: p.lag_ms(),
                    lost_records: p.lost_records(),
                })
                .collect(),
            stream: l.stream,
            from: l.from,
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn a_pull_request_goes_through_the_wire_unchanged() {
        let req = PullRequest {
            stream: "/a/s".into(),
            puller: Some([7; 16]),
            positions: vec![Position {
                topic: "t".into(),
                partition: 3,
                next_offset: 42,
                upstream_incarnation: 7,
            }],
            start: LinkStart::Latest,
            max_bytes: 4 << 20,
            cursors: true,
        };
        let back = PullRequest::try_from(v1::PullRequest::from(req.clone())).unwrap();
        assert_eq!(back, req);
        let anonymous = PullRequest {
            puller: None,
            ..req
        };
        let back = PullRequest::try_from(v1::PullRequest::from(anonymous.clone())).unwrap();
        assert_eq!(back, anonymous);
    }

    #[test]
    fn a_bad_cluster_id_or_start_is_refused_naming_its_field() {
        let short = v1::PullRequest {
            cluster_id: vec![1; 15].into(),
            ..Default::default()
        };
        let e = PullRequest::try_from(short).unwrap_err().to_string();
        assert_eq!(e, "cluster_id: is 15 bytes; a cluster id is 16");
        let e = link_start(9).unwrap_err().to_string();
        assert_eq!(e, "start: 9 is not a PullStart");
    }

    #[test]
    fn a_pull_response_goes_through_the_wire_unchanged() {
        let resp = PullResponse {
            topics: vec![TopicShape {
                name: "t".into(),
                partitions: 2,
            }],
            chunks: vec![PullChunk {
                topic: "t".into(),
                partition: 1,
                batches: vec![Bytes::from_static(b"batch")],
                next_offset: 9,
                high_watermark: 10,
                log_start: 1,
                stored_bytes: 500,
                last_append_ms: 77,
            }],
            cursors: vec![ReplicatedCursor {
                group: "g".into(),
                topic: "t".into(),
                partition: 0,
                offset: 4,
            }],
            cursors_sent: true,
            sent_ms: 1234,
            upstream_incarnation: 1_700_000_000,
        };
        assert_eq!(
            PullResponse::from(v1::PullResponse::from(resp.clone())),
            resp
        );
    }
}

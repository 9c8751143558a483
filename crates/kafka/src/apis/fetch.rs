//! Fetch (versions 4 to 12): each partition read from its offset through the namespace,
//! stored Kafka batches served as they are (a batch may start before the offset asked
//! for; clients skip what they did not ask for) and gRPC-produced ones encoded as Kafka
//! batches. The response waits, up to `max_wait_ms`, until `min_bytes` are there; the
//! waiting is the namespace's long poll, which checks the caller's access again as it
//! waits, as gRPC's does. Budgets: `partition_max_bytes` per partition and `max_bytes` for
//! the response, the first batch always returned whatever its size (as Kafka does).
//! Incremental fetch sessions are declined (session id 0), so every request is a full one.
//! A principal over its request rate, or whose fetched bytes are in debt, is answered at
//! once with no partitions, as Kafka answers a throttled fetch; the bytes a fetch returns
//! are charged to its fetch quota (`throttle`).

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{ApiKey, FetchRequest, FetchResponse, TopicName};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tributary_core::names::TopicPath;
use tributary_volume::{
    Caller, Credential, FetchRead, Form, MAX_FETCH_BYTES, MAX_FETCH_WAIT, Namespace,
};

use crate::error::topic_code;
use crate::frame::{self, Request};
use crate::throttle::Charge;
use crate::{Door, Result};

/// One partition asked for, its topic resolved (or the code that says why not).
struct Wanted {
    topic: usize,
    path: std::result::Result<TopicPath, i16>,
    partition: i32,
    offset: i64,
    max_bytes: usize,
}

pub(super) async fn handle(
    door: &Door,
    caller: &Caller,
    credential: &Credential,
    mut req: Request,
    charge: &mut Charge<'_>,
) -> Result<Bytes> {
    let version = req.api_version;
    let request: FetchRequest = super::decode(&mut req)?;
    let respond = |body: &FetchResponse| {
        let header_version = ApiKey::Fetch.response_header_version(version);
        frame::response(req.header.correlation_id, header_version, body, version)
    };
    if version >= 7 && request.session_id != 0 {
        // No session is ever handed out.
        return respond(
            &FetchResponse::default()
                .with_error_code(ResponseError::FetchSessionIdNotFound.code())
                .with_responses(vec![]),
        );
    }
    if version >= 7 && request.session_epoch > 0 {
        return respond(
            &FetchResponse::default()
                .with_error_code(ResponseError::InvalidFetchSessionEpoch.code())
                .with_responses(vec![]),
        );
    }
    if charge.fetch_refused() {
        let mut body = FetchResponse::default().with_responses(vec![]);
        if version >= 7 {
            body = body.with_session_id(0);
        }
        return respond(&body);
    }
    let resolver = super::resolver(door, caller);
    let mut names: Vec<TopicName> = Vec::with_capacity(request.topics.len());
    let mut wanted = Vec::new();
    for (i, t) in request.topics.into_iter().enumerate() {
        let path = super::resolve(&resolver, &t.topic.0);
        for p in t.partitions {
            wanted.push(Wanted {
                topic: i,
                path: path.clone(),
                partition: p.partition,
                offset: p.fetch_offset,
                max_bytes: usize::try_from(p.partition_max_bytes).unwrap_or(0),
            });
        }
        names.push(t.topic);
    }
    let max_bytes = match version {
        // Versions before 3 have no response budget.
        v if v >= 3 => usize::try_from(request.max_bytes)
            .unwrap_or(0)
            .min(MAX_FETCH_BYTES),
        _ => MAX_FETCH_BYTES,
    };
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    let wait = Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0));
    let deadline = Instant::now() + wait.min(MAX_FETCH_WAIT);
    let ns = door.ns.clone();
    let read = loop {
        let read = read_all(&ns, credential, &wanted, max_bytes).await;
        if read.bytes >= min_bytes || read.full || read.failed || Instant::now() >= deadline {
            break read;
        }
        wait_for_records(&ns, credential, &wanted, &read.next, deadline).await;
        if Instant::now() >= deadline {
            break read_all(&ns, credential, &wanted, max_bytes).await;
        }
    };
    charge.fetch(read.bytes as u64);
    let mut topics: Vec<FetchableTopicResponse> = names
        .into_iter()
        .map(|name| FetchableTopicResponse::default().with_topic(name))
        .collect();
    for (w, mut p) in wanted.iter().zip(read.partitions) {
        p.last_stable_offset = p.high_watermark;
        if version < 5 {
            p.log_start_offset = -1;
        }
        topics[w.topic].partitions.push(p);
    }
    let mut body = FetchResponse::default().with_responses(topics);
    if version >= 7 {
        body = body.with_session_id(0);
    }
    respond(&body)
}

/// What one pass over the partitions read.
struct Read {
    partitions: Vec<PartitionData>,
    bytes: usize,
    /// Where each partition's records end so far: a wait waits for more.
    next: Vec<u64>,
    /// A budget left records out: waiting would bring nothing more.
    full: bool,
    /// A partition answered with an error: the response goes out now.
    failed: bool,
}

/// Reads every partition once, without waiting, within the budgets.
async fn read_all(
    ns: &Namespace,
    credential: &Credential,
    wanted: &[Wanted],
    max_bytes: usize,
) -> Read {
    let mut read = Read {
        partitions: Vec::with_capacity(wanted.len()),
        bytes: 0,
        next: Vec::with_capacity(wanted.len()),
        full: false,
        failed: false,
    };
    for w in wanted {
        let mut p = PartitionData::default()
            .with_partition_index(w.partition)
            .with_high_watermark(-1)
            .with_records(Some(Bytes::new()));
        let left = max_bytes.saturating_sub(read.bytes);
        let mut next = w.offset.max(0) as u64;
        let code = match &w.path {
            Err(code) => Some(*code),
            Ok(_) if w.partition < 0 => Some(ResponseError::UnknownTopicOrPartition.code()),
            Ok(_) if w.offset < 0 => Some(ResponseError::OffsetOutOfRange.code()),
            Ok(path) => {
                let budget = FetchRead {
                    partition: w.partition as u32,
                    offset: w.offset as u64,
                    // Past the response's budget a partition reports its marks only.
                    max_bytes: w.max_bytes.min(left).max(1),
                    max_wait: Duration::ZERO,
                };
                match ns
                    .fetch_as(credential, &path.to_string(), budget, Form::Kafka)
                    .await
                {
                    Ok(r) => {
                        p = p
                            .with_high_watermark(r.high_watermark as i64)
                            .with_log_start_offset(r.log_start as i64);
                        read.full |= r.next_offset < r.high_watermark;
                        if left > 0 && w.max_bytes > 0 {
                            next = r.next_offset;
                            let records = concat(r.batches);
                            read.bytes += records.len();
                            p = p.with_records(Some(records));
                        }
                        None
                    }
                    Err(e) => {
                        if let tributary_volume::Error::OffsetOutOfRange {
                            log_start,
                            high_watermark,
                            ..
                        } = e
                        {
                            p = p
                                .with_high_watermark(high_watermark as i64)
                                .with_log_start_offset(log_start as i64);
                        }
                        Some(topic_code(&e))
                    }
                }
            }
        };
        if let Some(code) = code {
            read.failed = true;
            p = p.with_error_code(code);
        }
        read.partitions.push(p);
        read.next.push(next);
    }
    read
}

/// Batches one after another, as a Kafka record set is.
fn concat(batches: Vec<Bytes>) -> Bytes {
    match batches.len() {
        0 => Bytes::new(),
        1 => batches.into_iter().next().expect("one batch"),
        _ => {
            let mut out = BytesMut::with_capacity(batches.iter().map(Bytes::len).sum());
            for b in batches {
                out.extend_from_slice(&b);
            }
            out.freeze()
        }
    }
}

/// Waits until a record arrives on any of the partitions, or the deadline: the
/// namespace's long poll on each, the first to end ending the wait.
async fn wait_for_records(
    ns: &Arc<Namespace>,
    credential: &Credential,
    wanted: &[Wanted],
    from: &[u64],
    deadline: Instant,
) {
    let mut polls = JoinSet::new();
    for (w, &from) in wanted.iter().zip(from) {
        let Ok(path) = &w.path else { continue };
        let (ns, credential, topic) = (ns.clone(), credential.clone(), path.to_string());
        let read = FetchRead {
            partition: w.partition.max(0) as u32,
            offset: from,
            max_bytes: 1,
            max_wait: deadline.saturating_duration_since(Instant::now()),
        };
        polls.spawn(async move { ns.fetch_as(&credential, &topic, read, Form::Kafka).await });
    }
    while let Some(done) = polls.join_next().await {
        if !matches!(done, Ok(Ok(r)) if r.batches.is_empty()) {
            return;
        }
    }
}

//! Produce (versions 3 to 11; 0 to 2 are advertised for old librdkafka's feature probes
//! and close the connection): each partition's record batch goes to the namespace's
//! `produce_kafka`, which checks it as a broker does and stores it as it came. Each
//! partition is answered on its own: MESSAGE_TOO_LARGE, CORRUPT_MESSAGE, INVALID_RECORD,
//! UNSUPPORTED_COMPRESSION_TYPE, a quota or an ACL refusal leave the others written.
//! acks 1 and -1 are both answered once the batch is appended (a `sync` stream's after the
//! fsync); acks 0 gets no response at all. A batch with a producer id (an idempotent
//! producer's, from InitProducerId) passes Kafka's sequence rules in storage: a retry of
//! one of its last five batches is answered with the original base offset and append
//! time, and writes nothing. The batches' bytes are charged to the principal's produce
//! quota once written, and the response says how long to wait (`throttle`).

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use tributary_core::TimestampType;
use tributary_volume::Caller;

use crate::error::produce_code;
use crate::frame::{self, Request};
use crate::throttle::Charge;
use crate::{Door, Result};

pub(super) async fn handle(
    door: &Door,
    caller: &Caller,
    mut req: Request,
    charge: &mut Charge<'_>,
) -> Result<Option<Bytes>> {
    let version = req.api_version;
    let request: ProduceRequest = super::decode(&mut req)?;
    let acks = request.acks;
    let resolver = super::resolver(door, caller);
    let mut topics = Vec::with_capacity(request.topic_data.len());
    let mut produced = 0;
    for t in request.topic_data {
        let name = t.name.0.to_string();
        let path = super::resolve(&resolver, &name);
        let mut partitions = Vec::with_capacity(t.partition_data.len());
        for p in t.partition_data {
            produced += p.records.as_ref().map_or(0, |r| r.len() as u64);
            let answer = |code: i16, message: Option<String>| {
                let mut r = PartitionProduceResponse::default()
                    .with_index(p.index)
                    .with_error_code(code)
                    .with_base_offset(-1);
                if version >= 8 {
                    r = r.with_error_message(message.map(StrBytes::from_string));
                }
                r
            };
            let answer = match (&path, acks) {
                (_, a) if !matches!(a, -1..=1) => answer(
                    ResponseError::InvalidRequiredAcks.code(),
                    Some(format!("acks {a}: only 0, 1 and -1 are valid")),
                ),
                (Err(code), _) => answer(*code, None),
                (Ok(_), _) if p.index < 0 => {
                    answer(ResponseError::UnknownTopicOrPartition.code(), None)
                }
                (Ok(path), _) => {
                    let records = p.records.unwrap_or_default();
                    match door
                        .ns
                        .produce_kafka(caller, &path.to_string(), p.index as u32, records)
                        .await
                    {
                        Ok((ack, ts_type)) => {
                            let mut r = answer(0, None).with_base_offset(ack.base_offset as i64);
                            if ts_type == TimestampType::LogAppendTime {
                                r = r.with_log_append_time_ms(ack.append_time_ms);
                            }
                            r
                        }
                        Err(e) => {
                            tracing::debug!(topic = %name, partition = p.index, error = %e, "kafka: produce refused");
                            answer(produce_code(&e), Some(e.to_string()))
                        }
                    }
                }
            };
            partitions.push(answer);
        }
        topics.push(
            TopicProduceResponse::default()
                .with_name(t.name)
                .with_partition_responses(partitions),
        );
    }
    // What was sent is charged, written or refused, as Kafka charges the request.
    charge.produce(produced);
    if acks == 0 {
        return Ok(None);
    }
    let body = ProduceResponse::default()
        .with_responses(topics)
        .with_throttle_time_ms(charge.ms());
    let header_version = ApiKey::Produce.response_header_version(version);
    frame::response(req.header.correlation_id, header_version, &body, version).map(Some)
}

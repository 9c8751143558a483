//! InitProducerId (versions 0 to 4): an idempotent producer's id, from the store's
//! allocator that gRPC's `InitProducer` uses, so both doors' producers keep their state in
//! the same rows. As Kafka's broker does for a null transactional id, every call gets a new
//! id at epoch 0, also from version 3 when the producer sends its current id and epoch
//! (Kafka bumps an epoch in place only for transactional ids; an idempotent producer bumps
//! its own epoch in Produce, which the sequence rules accept at sequence 0). Transactions
//! are not served: a transactional id is answered as FindCoordinator answers its key.

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use tributary_volume::Caller;

use crate::error::Asked;
use crate::frame::{self, Request};
use crate::{Door, Error, Result};

pub(super) async fn handle(door: &Door, caller: &Caller, mut req: Request) -> Result<Bytes> {
    let version = req.api_version;
    let request: InitProducerIdRequest = super::decode(&mut req)?;
    let answer = match allocate(door, caller, &request).await {
        Ok(id) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(e) => {
            tracing::debug!(error = %e, "kafka: InitProducerId refused");
            InitProducerIdResponse::default()
                .with_error_code(e.code())
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1)
        }
    };
    let hv = ApiKey::InitProducerId.response_header_version(version);
    frame::response(req.header.correlation_id, hv, &answer, version)
}

/// A new producer id, or why not. Kafka's checks, in its order: a producer id without an
/// epoch (or the reverse) is malformed, a transactional id goes to the transaction
/// coordinator (none here), an empty one is malformed.
async fn allocate(door: &Door, caller: &Caller, r: &InitProducerIdRequest) -> Result<i64> {
    if (r.producer_id.0 == -1) != (r.producer_epoch == -1) {
        return Err(Error::InvalidRequest(format!(
            "producer id {} with epoch {}: give both or neither",
            r.producer_id.0, r.producer_epoch
        )));
    }
    match r.transactional_id.as_ref().map(|t| t.0.as_str()) {
        None => {}
        Some("") => {
            return Err(Error::InvalidRequest(
                "an empty transactional id; send null for an idempotent producer".into(),
            ));
        }
        Some(id) => return Err(Error::TransactionsNotServed(id.to_owned())),
    }
    let id = door
        .ns
        .init_producer(caller)
        .await
        .map_err(|source| Error::Refused {
            asked: Asked::ProducerId,
            source,
        })?;
    i64::try_from(id).map_err(|_| Error::InvalidRequest("producer ids are exhausted".into()))
}

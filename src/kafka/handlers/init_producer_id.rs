//! InitProducerId (key 22, v0–4): a producer id and epoch for an idempotent producer (KIP-98).
//! Transactional ids (other than null or empty) are refused with TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53): transactions
//! are not served. A durable broker takes ids from blocks reserved in its topics file, so an id
//! is never handed out twice, across restarts too; KAFKA_STORAGE_ERROR (56) if a block cannot be
//! reserved.

use crate::kafka::context::Context;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::ResponseError as E;

/// A fresh producer id, epoch 0.
pub fn handle(ctx: &Context, req: InitProducerIdRequest) -> InitProducerIdResponse {
    if req.transactional_id.as_ref().is_some_and(|t| !t.is_empty()) {
        return error(E::TransactionalIdAuthorizationFailed.code());
    }
    let (id, epoch) = match super::blocking_if_durable(ctx, || ctx.init_producer_id()) {
        Ok(x) => x,
        Err(e) => {
            tracing::error!("InitProducerId: {e}");
            return error(E::KafkaStorageError.code());
        }
    };
    InitProducerIdResponse::default()
        .with_producer_id(ProducerId(id))
        .with_producer_epoch(epoch)
}

/// `code`, producer id -1.
pub fn error(code: i16) -> InitProducerIdResponse {
    InitProducerIdResponse::default()
        .with_error_code(code)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1)
}

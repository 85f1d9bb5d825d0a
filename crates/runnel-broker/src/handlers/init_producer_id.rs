//! InitProducerId: an idempotent producer (no transactional id) gets a fresh producer id here;
//! a transactional one goes to the transaction coordinator, which fences older epochs.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use runnel_coordinator::txn::TxnRequest;

use super::{txn, HandlerError, RequestContext};

pub async fn handle(ctx: &RequestContext<'_>, body: Bytes) -> Result<Option<Bytes>, HandlerError> {
    let request: InitProducerIdRequest = ctx.decode(body)?;
    if request.transactional_id.is_some() {
        if ctx.broker.txn_state_topic().is_none() {
            let unavailable = InitProducerIdResponse::default()
                .with_error_code(ResponseError::CoordinatorNotAvailable.code());
            return ctx.respond(
                &unavailable
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1),
            );
        }
        return txn::call(ctx, TxnRequest::InitProducerId(request)).await;
    }
    ctx.respond(&idempotent_producer(ctx, &request))
}

/// As Kafka's TransactionCoordinator.handleInitProducerId with a null transactional id: always
/// a fresh producer id at epoch 0, whatever producer the request names (an idempotent producer
/// bumps its epoch itself, KIP-360); naming only one of producer id and epoch is INVALID_REQUEST
/// (KafkaApis checks that first).
fn idempotent_producer(
    ctx: &RequestContext,
    request: &InitProducerIdRequest,
) -> InitProducerIdResponse {
    let response = InitProducerIdResponse::default();
    if (request.producer_id.0 == -1) != (request.producer_epoch == -1) {
        return response
            .with_error_code(ResponseError::InvalidRequest.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
    }
    match ctx.broker.producer_ids.lock().next() {
        Ok(id) => response
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(error) => {
            tracing::error!(%error, "cannot reserve producer ids");
            response
                .with_error_code(ResponseError::CoordinatorNotAvailable.code())
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1)
        }
    }
}

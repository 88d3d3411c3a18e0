//! InitProducerId for idempotent producers: a fresh producer id at epoch 0 from the
//! blocks the quorum allocates. Transactional ids need the transaction coordinator,
//! which this version does not have yet: they are refused with
//! COORDINATOR_NOT_AVAILABLE and a log line.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::RequestContext;
use crate::broker::Broker;

pub async fn handle(
    b: Arc<Broker>,
    ctx: RequestContext,
    req: InitProducerIdRequest,
) -> Option<InitProducerIdResponse> {
    let resp = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if let Some(tid) = &req.transactional_id {
        tracing::warn!(
            transactional_id = %tid.0,
            client_id = ctx.client_id.as_deref().unwrap_or(""),
            "transactional producers are not supported yet"
        );
        return Some(resp.with_error_code(ResponseError::CoordinatorNotAvailable.code()));
    }
    match b
        .producer_ids
        .next(&b.controller, b.node_id, b.broker_epoch())
        .await
    {
        Ok(id) => Some(resp.with_producer_id(ProducerId(id)).with_producer_epoch(0)),
        Err(code) => Some(resp.with_error_code(code)),
    }
}

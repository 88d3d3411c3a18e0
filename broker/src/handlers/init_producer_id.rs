//! InitProducerId. Without a transactional id: a fresh producer id at epoch 0 from the
//! blocks the quorum allocates (idempotent producers). With one: the transaction
//! coordinator's answer — the id's producer id with a bumped epoch, fencing older
//! instances (KIP-98), or the epoch bump a producer asks for after an abortable error
//! (KIP-360, v3+).

use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::RequestContext;
use crate::broker::Broker;
use crate::txn::metadata::ProducerIdEpoch;

pub async fn handle(
    b: Arc<Broker>,
    ctx: RequestContext,
    req: InitProducerIdRequest,
) -> Option<InitProducerIdResponse> {
    let resp = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let alloc = || async {
        b.producer_ids
            .next(&b.controller, b.node_id, b.broker_epoch())
            .await
            .map_err(|code| E::try_from_code(code).unwrap_or(E::UnknownServerError))
    };
    let Some(tid) = &req.transactional_id else {
        return Some(match alloc().await {
            Ok(id) => resp.with_producer_id(ProducerId(id)).with_producer_epoch(0),
            Err(e) => resp.with_error_code(e.code()),
        });
    };
    let expected = (ctx.api_version >= 3 && req.producer_id.0 >= 0).then_some(ProducerIdEpoch {
        id: req.producer_id.0,
        epoch: req.producer_epoch,
    });
    match b
        .txns
        .init_producer_id(&tid.0, req.transaction_timeout_ms, expected, alloc)
        .await
    {
        Ok(p) => Some(
            resp.with_producer_id(ProducerId(p.id))
                .with_producer_epoch(p.epoch),
        ),
        Err(e) => {
            tracing::debug!(transactional_id = %tid.0, error = %e, "InitProducerId refused");
            Some(resp.with_error_code(e.code()))
        }
    }
}

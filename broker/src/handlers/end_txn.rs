//! EndTxn: the producer commits or aborts its transaction. The coordinator answers once
//! PrepareCommit/PrepareAbort is written; the markers follow. From v5 (KIP-890 part 2,
//! transaction version 2) the coordinator bumps the producer's epoch with every EndTxn
//! and answers the producer id and epoch for the next transaction.

use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse, ProducerId};

use super::{txn_code, RequestContext};
use crate::broker::Broker;
use crate::txn::metadata::{ProducerIdEpoch, TxnResult};

pub async fn handle(
    b: Arc<Broker>,
    ctx: RequestContext,
    req: EndTxnRequest,
) -> Option<EndTxnResponse> {
    let producer = ProducerIdEpoch {
        id: req.producer_id.0,
        epoch: req.producer_epoch,
    };
    let result = if req.committed {
        TxnResult::Commit
    } else {
        TxnResult::Abort
    };
    let tv2 = ctx.api_version >= 5;
    let alloc = || async {
        b.producer_ids
            .next(&b.controller, b.node_id, b.broker_epoch())
            .await
            .map_err(|code| E::try_from_code(code).unwrap_or(E::UnknownServerError))
    };
    let resp = EndTxnResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    match b
        .txns
        .end_txn(&req.transactional_id.0, producer, result, tv2, alloc)
        .await
    {
        Ok(next) if tv2 => Some(
            resp.with_producer_id(ProducerId(next.id))
                .with_producer_epoch(next.epoch),
        ),
        Ok(_) => Some(resp),
        Err(e) => {
            tracing::debug!(transactional_id = %req.transactional_id.0, ?result, error = %e, "EndTxn refused");
            Some(resp.with_error_code(txn_code(e, ctx.api_version, 2)))
        }
    }
}

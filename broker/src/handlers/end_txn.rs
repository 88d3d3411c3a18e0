//! EndTxn: the producer commits or aborts its transaction. The coordinator answers once
//! PrepareCommit/PrepareAbort is written; the markers follow.

use std::sync::Arc;

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse};

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
    let code = match b
        .txns
        .end_txn(&req.transactional_id.0, producer, result)
        .await
    {
        Ok(()) => 0,
        Err(e) => {
            tracing::debug!(transactional_id = %req.transactional_id.0, ?result, error = %e, "EndTxn refused");
            txn_code(e, ctx.api_version, 2)
        }
    };
    Some(EndTxnResponse::default().with_error_code(code))
}

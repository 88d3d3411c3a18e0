//! AddOffsetsToTxn: the group's `__consumer_offsets` partition joins the producer's
//! transaction, so that its TxnOffsetCommit records get the transaction's marker.

use std::collections::BTreeSet;
use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};

use super::{txn_code, RequestContext};
use crate::broker::Broker;
use crate::group::OFFSETS_TOPIC;
use crate::txn::metadata::ProducerIdEpoch;

pub async fn handle(
    b: Arc<Broker>,
    ctx: RequestContext,
    req: AddOffsetsToTxnRequest,
) -> Option<AddOffsetsToTxnResponse> {
    let resp = AddOffsetsToTxnResponse::default();
    if req.group_id.0.is_empty() {
        return Some(resp.with_error_code(E::InvalidGroupId.code()));
    }
    let p = b.groups.partition_for(&req.group_id.0);
    let partitions = BTreeSet::from([(OFFSETS_TOPIC.to_string(), p)]);
    let producer = ProducerIdEpoch {
        id: req.producer_id.0,
        epoch: req.producer_epoch,
    };
    let code = match b
        .txns
        .add_partitions(&req.transactional_id.0, producer, &partitions)
        .await
    {
        Ok(()) => 0,
        Err(e) => {
            tracing::debug!(transactional_id = %req.transactional_id.0, error = %e, "AddOffsetsToTxn refused");
            txn_code(e, ctx.api_version, 2)
        }
    };
    Some(resp.with_error_code(code))
}

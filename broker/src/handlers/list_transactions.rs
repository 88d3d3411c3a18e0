//! ListTransactions (KIP-664): the transactional ids this broker coordinates, filtered
//! by state, producer id, how long they have run (v1, KIP-994) and a regular
//! expression on the id (v2, KIP-1152), as `kafka-transactions.sh list` shows them
//! (the tool asks every broker). Unknown state names are echoed back.

use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::broker::Broker;
use crate::txn::metadata::TxnState;

const STATES: [TxnState; 8] = [
    TxnState::Empty,
    TxnState::Ongoing,
    TxnState::PrepareCommit,
    TxnState::PrepareAbort,
    TxnState::CompleteCommit,
    TxnState::CompleteAbort,
    TxnState::Dead,
    TxnState::PrepareEpochFence,
];

pub async fn handle(
    b: Arc<Broker>,
    ctx: RequestContext,
    req: ListTransactionsRequest,
) -> Option<ListTransactionsResponse> {
    let resp = ListTransactionsResponse::default();
    let mut unknown = Vec::new();
    let mut wanted = Vec::new();
    for f in &req.state_filters {
        match STATES.iter().find(|s| s.name() == f.as_str()) {
            Some(s) => wanted.push(*s),
            None => unknown.push(f.clone()),
        }
    }
    let pattern = match req.transactional_id_pattern.as_deref() {
        Some(p) if ctx.api_version >= 2 && !p.is_empty() => {
            match regex::Regex::new(&format!("^(?:{p})$")) {
                Ok(r) => Some(r),
                Err(_) => return Some(resp.with_error_code(E::InvalidRegularExpression.code())),
            }
        }
        _ => None,
    };
    let now = strom_common::clock::now_ms();
    let min_duration = if ctx.api_version >= 1 {
        req.duration_filter
    } else {
        -1
    };
    let states = b
        .txns
        .list()
        .await
        .into_iter()
        .filter(|(_, r)| req.state_filters.is_empty() || wanted.contains(&r.state))
        .filter(|(_, r)| {
            req.producer_id_filters.is_empty()
                || req.producer_id_filters.iter().any(|p| p.0 == r.producer_id)
        })
        .filter(|(_, r)| min_duration < 0 || now - r.start_ms >= min_duration)
        .filter(|(id, _)| pattern.as_ref().is_none_or(|p| p.is_match(id)))
        .map(|(id, r)| {
            TransactionState::default()
                .with_transactional_id(TransactionalId(StrBytes::from_string(id)))
                .with_producer_id(ProducerId(r.producer_id))
                .with_transaction_state(StrBytes::from_static_str(r.state.name()))
        })
        .collect();
    Some(
        resp.with_unknown_state_filters(unknown)
            .with_transaction_states(states),
    )
}

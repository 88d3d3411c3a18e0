//! DescribeTransactions (KIP-664): the state of transactional ids this broker
//! coordinates — state, producer id and epoch, timeout, start time, partitions — as
//! `kafka-transactions.sh describe` shows them. Ids coordinated elsewhere answer
//! NOT_COORDINATOR; unknown ones TRANSACTIONAL_ID_NOT_FOUND.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::broker::Broker;

pub async fn handle(
    b: Arc<Broker>,
    _ctx: RequestContext,
    req: DescribeTransactionsRequest,
) -> Option<DescribeTransactionsResponse> {
    let mut states = Vec::with_capacity(req.transactional_ids.len());
    for tid in &req.transactional_ids {
        let s = TransactionState::default().with_transactional_id(tid.clone());
        states.push(match b.txns.describe(&tid.0).await {
            Err(e) => s
                .with_error_code(e.code())
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
            Ok(r) => {
                let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
                for (t, p) in &r.partitions {
                    by_topic.entry(t).or_default().push(*p);
                }
                s.with_transaction_state(StrBytes::from_static_str(r.state.name()))
                    .with_transaction_timeout_ms(r.timeout_ms)
                    .with_transaction_start_time_ms(r.start_ms)
                    .with_producer_id(ProducerId(r.producer_id))
                    .with_producer_epoch(r.producer_epoch)
                    .with_topics(
                        by_topic
                            .into_iter()
                            .map(|(t, ps)| {
                                TopicData::default()
                                    .with_topic(TopicName(StrBytes::from_string(t.to_string())))
                                    .with_partitions(ps)
                            })
                            .collect(),
                    )
            }
        });
    }
    Some(DescribeTransactionsResponse::default().with_transaction_states(states))
}

//! AddPartitionsToTxn. Up to v3 a producer adds partitions to its transaction before it
//! writes to them; from v4 (KIP-890 part 1) brokers batch several transactions, and with
//! `verify_only` a partition leader asks whether partitions are already in one. A
//! partition that does not exist fails the request: it gets UNKNOWN_TOPIC_OR_PARTITION
//! and the others OPERATION_NOT_ATTEMPTED, as in Kafka.

use std::collections::BTreeSet;
use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, TopicName, TransactionalId,
};

use super::{txn_code, RequestContext};
use crate::broker::Broker;
use crate::txn::metadata::ProducerIdEpoch;

/// PRODUCER_FENCED reaches clients from v2 on.
const FENCED_SINCE: i16 = 2;

pub async fn handle(
    b: Arc<Broker>,
    ctx: RequestContext,
    req: AddPartitionsToTxnRequest,
) -> Option<AddPartitionsToTxnResponse> {
    let v = ctx.api_version;
    if v <= 3 {
        let results = one(
            &b,
            v,
            &req.v3_and_below_transactional_id,
            ProducerIdEpoch {
                id: req.v3_and_below_producer_id.0,
                epoch: req.v3_and_below_producer_epoch,
            },
            false,
            &req.v3_and_below_topics,
        )
        .await;
        return Some(
            AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results),
        );
    }
    // v4+ is sent by brokers (KIP-890), never by clients.
    if !super::from_broker(&b, &ctx, "txn-verify") {
        tracing::warn!(client_id = ?ctx.client_id, peer = %ctx.peer,
            "refused AddPartitionsToTxn v4+ from a client (brokers only)");
        return Some(
            AddPartitionsToTxnResponse::default()
                .with_error_code(E::ClusterAuthorizationFailed.code()),
        );
    }
    let mut out = Vec::with_capacity(req.transactions.len());
    for t in &req.transactions {
        let results = one(
            &b,
            v,
            &t.transactional_id,
            ProducerIdEpoch {
                id: t.producer_id.0,
                epoch: t.producer_epoch,
            },
            t.verify_only,
            &t.topics,
        )
        .await;
        out.push(
            AddPartitionsToTxnResult::default()
                .with_transactional_id(t.transactional_id.clone())
                .with_topic_results(results),
        );
    }
    Some(AddPartitionsToTxnResponse::default().with_results_by_transaction(out))
}

async fn one(
    b: &Broker,
    v: i16,
    tid: &TransactionalId,
    producer: ProducerIdEpoch,
    verify_only: bool,
    topics: &[AddPartitionsToTxnTopic],
) -> Vec<AddPartitionsToTxnTopicResult> {
    let img = b.cache.image();
    let mut wanted = BTreeSet::new();
    let mut unknown = BTreeSet::new();
    for t in topics {
        let meta = img.topic_by_name(&t.name.0);
        for p in &t.partitions {
            let tp = (t.name.0.to_string(), *p);
            if meta.is_some_and(|m| m.partitions.contains_key(p)) {
                wanted.insert(tp);
            } else {
                unknown.insert(tp);
            }
        }
    }
    let verdict = |tp: &(String, i32)| -> i16 {
        if unknown.contains(tp) {
            E::UnknownTopicOrPartition.code()
        } else {
            E::OperationNotAttempted.code()
        }
    };
    if !unknown.is_empty() {
        return results(topics, verdict);
    }
    if verify_only {
        match b.txns.verify_partitions(&tid.0, producer, &wanted).await {
            Ok(missing) => results(topics, |tp| {
                if missing.contains(tp) {
                    E::InvalidTxnState.code()
                } else {
                    0
                }
            }),
            Err(e) => {
                let c = txn_code(e, v, FENCED_SINCE);
                results(topics, |_| c)
            }
        }
    } else {
        let c = match b.txns.add_partitions(&tid.0, producer, &wanted).await {
            Ok(()) => 0,
            Err(e) => {
                tracing::debug!(transactional_id = %tid.0, error = %e, "AddPartitionsToTxn refused");
                txn_code(e, v, FENCED_SINCE)
            }
        };
        results(topics, |_| c)
    }
}

fn results(
    topics: &[AddPartitionsToTxnTopic],
    code: impl Fn(&(String, i32)) -> i16,
) -> Vec<AddPartitionsToTxnTopicResult> {
    topics
        .iter()
        .map(|t| {
            AddPartitionsToTxnTopicResult::default()
                .with_name(TopicName(t.name.0.clone()))
                .with_results_by_partition(
                    t.partitions
                        .iter()
                        .map(|p| {
                            AddPartitionsToTxnPartitionResult::default()
                                .with_partition_index(*p)
                                .with_partition_error_code(code(&(t.name.0.to_string(), *p)))
                        })
                        .collect(),
                )
        })
        .collect()
}

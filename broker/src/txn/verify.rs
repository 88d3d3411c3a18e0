//! KIP-890 part 1, the partition leader's side: before a transactional batch may start a
//! transaction at a partition, the leader asks the transactional id's coordinator whether
//! the partition is in the producer's ongoing transaction (AddPartitionsToTxn v4+ with
//! `verify_only`, or a local call when this broker coordinates the id). Without it a
//! late or stray batch could open a transaction no marker ever ends. For a client of
//! transaction version 2 (KIP-890 part 2: Produce v12+, TxnOffsetCommit v5+) the leader
//! adds the partition to the transaction instead (`verify_only` false): such clients
//! send no AddPartitionsToTxn.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, ProducerId, TopicName, TransactionalId};
use kafka_protocol::protocol::StrBytes;

use super::metadata::ProducerIdEpoch;
use super::store::TXN_TOPIC;
use crate::broker::Broker;
use crate::coordinator::partition_for;

type Verdicts = BTreeMap<(String, i32), Result<(), E>>;

/// Asks the coordinator about `partitions`; one verdict each. Errors are already what a
/// Produce answer carries: retriable coordinator trouble becomes NOT_ENOUGH_REPLICAS
/// (which every producer retries, as Kafka answers), a fenced producer
/// INVALID_PRODUCER_EPOCH, a partition outside the transaction INVALID_TXN_STATE.
pub async fn verify(
    b: &Broker,
    transactional_id: &str,
    producer: ProducerIdEpoch,
    partitions: &BTreeSet<(String, i32)>,
    add: bool,
) -> Verdicts {
    let raw = ask(b, transactional_id, producer, partitions, add).await;
    partitions
        .iter()
        .map(|tp| {
            let r = match &raw {
                Err(e) => Err(*e),
                Ok(v) => v.get(tp).copied().unwrap_or(Err(E::UnknownServerError)),
            };
            (tp.clone(), r.map_err(for_produce))
        })
        .collect()
}

fn for_produce(e: E) -> E {
    match e {
        E::CoordinatorLoadInProgress
        | E::CoordinatorNotAvailable
        | E::NotCoordinator
        | E::ConcurrentTransactions
        | E::BrokerNotAvailable
        | E::RequestTimedOut
        | E::UnsupportedVersion => E::NotEnoughReplicas,
        E::ProducerFenced => E::InvalidProducerEpoch,
        E::InvalidProducerIdMapping | E::InvalidTxnState | E::InvalidProducerEpoch => e,
        _ => E::InvalidTxnState,
    }
}

async fn ask(
    b: &Broker,
    transactional_id: &str,
    producer: ProducerIdEpoch,
    partitions: &BTreeSet<(String, i32)>,
    add: bool,
) -> Result<Verdicts, E> {
    let img = b.cache.image();
    let p = partition_for(transactional_id, b.txns.cfg.partitions);
    let leader = img
        .topic_by_name(TXN_TOPIC)
        .and_then(|t| t.partitions.get(&p))
        .map(|x| x.leader)
        .ok_or(E::CoordinatorNotAvailable)?;
    if leader < 0 {
        return Err(E::CoordinatorNotAvailable);
    }
    if leader == b.node_id && add {
        b.txns
            .add_partitions(transactional_id, producer, partitions)
            .await?;
        return Ok(partitions.iter().map(|tp| (tp.clone(), Ok(()))).collect());
    }
    if leader == b.node_id {
        let missing = b
            .txns
            .verify_partitions(transactional_id, producer, partitions)
            .await?;
        return Ok(partitions
            .iter()
            .map(|tp| {
                let r = if missing.contains(tp) {
                    Err(E::InvalidTxnState)
                } else {
                    Ok(())
                };
                (tp.clone(), r)
            })
            .collect());
    }
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in partitions {
        topics.entry(t).or_default().push(*p);
    }
    let txn = AddPartitionsToTxnTransaction::default()
        .with_transactional_id(TransactionalId(StrBytes::from_string(
            transactional_id.to_string(),
        )))
        .with_producer_id(ProducerId(producer.id))
        .with_producer_epoch(producer.epoch)
        .with_verify_only(!add)
        .with_topics(
            topics
                .into_iter()
                .map(|(t, ps)| {
                    AddPartitionsToTxnTopic::default()
                        .with_name(TopicName(StrBytes::from_string(t.to_string())))
                        .with_partitions(ps)
                })
                .collect(),
        );
    let req = AddPartitionsToTxnRequest::default().with_transactions(vec![txn]);
    let resp = b.txn_verifier.send(leader, req, 5).await?;
    if let Some(e) = E::try_from_code(resp.error_code) {
        return Err(e);
    }
    let mut out = Verdicts::new();
    for r in resp.results_by_transaction {
        for t in r.topic_results {
            for p in t.results_by_partition {
                let v = match E::try_from_code(p.partition_error_code) {
                    None => Ok(()),
                    Some(e) => Err(e),
                };
                out.insert((t.name.0.to_string(), p.partition_index), v);
            }
        }
    }
    Ok(out)
}

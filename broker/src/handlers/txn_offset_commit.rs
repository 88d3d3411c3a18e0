//! TxnOffsetCommit: a transactional producer commits a consumer group's offsets inside
//! its transaction (KIP-98; KIP-447 adds the member's generation and ids). The group
//! coordinator first checks with the transaction coordinator that the group's partition
//! is in the transaction (KIP-890), then writes the offsets as transactional records;
//! they count once the commit marker arrives.

use std::collections::BTreeSet;
use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use super::{txn_code, RequestContext};
use crate::broker::Broker;
use crate::group::api::{OffsetCommit, TxnCommitter};
use crate::group::OFFSETS_TOPIC;
use crate::txn::metadata::ProducerIdEpoch;

pub async fn handle(
    b: Arc<Broker>,
    ctx: RequestContext,
    req: TxnOffsetCommitRequest,
) -> Option<TxnOffsetCommitResponse> {
    let v = ctx.api_version;
    let offsets: Vec<OffsetCommit> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| OffsetCommit {
                topic: t.name.0.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: if v >= 2 { p.committed_leader_epoch } else { -1 },
                metadata: p
                    .committed_metadata
                    .as_ref()
                    .map(|m| m.to_string())
                    .unwrap_or_default(),
            })
        })
        .collect();
    let producer = ProducerIdEpoch {
        id: req.producer_id.0,
        epoch: req.producer_epoch,
    };
    let group = req.group_id.0.to_string();
    let part = b.groups.partition_for(&group);
    let wanted = BTreeSet::from([(OFFSETS_TOPIC.to_string(), part)]);
    // The guard first, then the coordinator's confirmation: a marker written between
    // the two voids the guard, so a commit confirmed for a transaction that ends
    // meanwhile cannot open a new one at the group's partition.
    let guard = match b
        .replicas
        .get(OFFSETS_TOPIC, part)
        .filter(|p| p.is_leader())
    {
        Some(p) => {
            p.log
                .start_txn_verification_for(producer.id, producer.epoch)
                .await
        }
        None => None,
    };
    // v5+ (transaction version 2): the group's partition is added to the transaction
    // here (such clients send no AddOffsetsToTxn).
    let verdict =
        crate::txn::verify::verify(&b, &req.transactional_id.0, producer, &wanted, v >= 5)
            .await
            .into_values()
            .next()
            .unwrap_or(Err(E::UnknownServerError));
    let results: Vec<Result<(), E>> = match verdict {
        Err(e) => {
            // The verification's retriable answer for Produce is NOT_ENOUGH_REPLICAS;
            // a TxnOffsetCommit retries on COORDINATOR_NOT_AVAILABLE instead.
            let e = if e == E::NotEnoughReplicas {
                E::CoordinatorNotAvailable
            } else if e == E::InvalidProducerEpoch && v >= 2 {
                E::ProducerFenced
            } else {
                e
            };
            offsets.iter().map(|_| Err(e)).collect()
        }
        Ok(()) => {
            let member = req.member_id.to_string();
            let instance = req.group_instance_id.as_ref().map(|s| s.to_string());
            let who = TxnCommitter {
                producer_id: producer.id,
                producer_epoch: producer.epoch,
                guard,
                member_id: if v >= 3 { &member } else { "" },
                instance_id: if v >= 3 { instance.as_deref() } else { None },
                generation: if v >= 3 { req.generation_id } else { -1 },
            };
            b.groups.txn_commit_offsets(&group, who, offsets).await
        }
    };
    let mut results = results.into_iter();
    let topics = req
        .topics
        .iter()
        .map(|t| {
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            let code = match results.next() {
                                Some(Ok(())) => 0,
                                Some(Err(e)) => txn_code(e, v, 2),
                                None => E::UnknownServerError.code(),
                            };
                            TxnOffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect();
    Some(TxnOffsetCommitResponse::default().with_topics(topics))
}

//! Produce: acks 0 (no answer), 1 (after the leader's append) and all (after the high
//! watermark passes the batch); errors per partition, as Kafka returns them. With
//! acks=all every partition of the request is appended first and then all are waited on
//! at once, within the request's timeout. NOT_LEADER_OR_FOLLOWER answers carry the
//! current leader (KIP-951) so clients fail over without a metadata round trip.
//!
//! A transactional batch that would start a transaction at a partition is appended only
//! after the transaction coordinator confirmed the partition is in the producer's
//! transaction (KIP-890 part 1, `txn::verify`), with the guard the partition handed out
//! for it: a marker written meanwhile voids the guard.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse,
    TopicProduceResponse,
};
use kafka_protocol::messages::{ApiKey, BrokerId, ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use strom_common::clock::now_ms;

use super::RequestContext;
use crate::admin;
use crate::broker::Broker;
use crate::log::batch::BatchHeader;
use crate::log::TxnCheck;
use crate::replication::{Appended, Partition, ProduceRefusal};
use crate::txn::metadata::ProducerIdEpoch;

/// One partition of the request on its way through append and wait.
struct Slot {
    topic: usize,
    response: PartitionProduceResponse,
    waiting: Option<(Arc<Partition>, Appended)>,
}

fn apply_refusal(r: &mut PartitionProduceResponse, refusal: ProduceRefusal, version: i16) {
    r.error_code = refusal.code;
    if version >= 8 {
        r.error_message = Some(StrBytes::from_string(refusal.message));
        // KIP-467: which records of the batch were at fault.
        r.record_errors = refusal
            .record_errors
            .into_iter()
            .map(|(i, m)| {
                BatchIndexAndErrorMessage::default()
                    .with_batch_index(i)
                    .with_batch_index_error_message(Some(StrBytes::from_string(m)))
            })
            .collect();
    }
}

/// Whether `records` holds a whole batch followed by more bytes that start another.
fn more_than_one_batch(records: &bytes::Bytes) -> bool {
    match BatchHeader::parse(records) {
        Some(h) if h.batch_length >= 0 => records.len() > h.size(),
        _ => false,
    }
}

/// The header of `records` if it is one transactional batch.
fn transactional(records: &bytes::Bytes) -> Option<BatchHeader> {
    BatchHeader::parse(records).filter(|h| h.is_transactional() && !more_than_one_batch(records))
}

/// KIP-890 verification of the request's transaction-starting batches: for each
/// transactional partition this broker leads, the guard to append with (`None`: the
/// transaction is already open there), or the error to answer.
async fn verify_transactional(
    b: &Broker,
    req: &ProduceRequest,
    names: &[String],
    version: i16,
) -> BTreeMap<(String, i32), Result<Option<u64>, ResponseError>> {
    let mut out = BTreeMap::new();
    let mut to_verify: BTreeMap<(i64, i16), BTreeSet<(String, i32)>> = BTreeMap::new();
    let mut guards = BTreeMap::new();
    for (t, name) in req.topic_data.iter().zip(names) {
        for pd in &t.partition_data {
            let Some(h) = pd.records.as_ref().and_then(transactional) else {
                continue;
            };
            if crate::admin::is_internal(name) {
                continue; // refused below
            }
            let tp = (name.clone(), pd.index);
            if req.transactional_id.as_ref().is_none_or(|t| t.0.is_empty()) {
                out.insert(tp, Err(ResponseError::InvalidTxnState));
                continue;
            }
            let Some(p) = b.replicas.get(name, pd.index).filter(|p| p.is_leader()) else {
                continue; // answered NOT_LEADER_OR_FOLLOWER below
            };
            match p.log.start_txn_verification(&h).await {
                None => {
                    out.insert(tp, Ok(None));
                }
                Some(g) => {
                    guards.insert(tp.clone(), g);
                    to_verify
                        .entry((h.producer_id, h.producer_epoch))
                        .or_default()
                        .insert(tp);
                }
            }
        }
    }
    let Some(tid) = req.transactional_id.as_ref() else {
        return out;
    };
    for ((id, epoch), parts) in to_verify {
        // Produce v12+ comes from clients of transaction version 2 (KIP-890 part 2):
        // the partition is added to the transaction here, not verified.
        let add = version >= 12;
        let verdicts =
            crate::txn::verify::verify(b, &tid.0, ProducerIdEpoch { id, epoch }, &parts, add).await;
        for (tp, v) in verdicts {
            let g = guards.get(&tp).copied();
            if let Err(e) = v {
                tracing::debug!(topic = %tp.0, partition = tp.1, transactional_id = %tid.0, error = %e,
                    "a transactional batch failed verification");
            }
            out.insert(tp, v.map(|()| g));
        }
    }
    out
}

pub async fn handle(
    b: Arc<Broker>,
    ctx: RequestContext,
    req: ProduceRequest,
) -> Option<ProduceResponse> {
    let acks = req.acks;
    let deadline =
        tokio::time::Instant::now() + Duration::from_millis(req.timeout_ms.max(0) as u64);
    let valid_acks = matches!(acks, -1..=1);
    let version = ctx.api_version;
    let img = b.cache.image();
    let names: Vec<String> = req
        .topic_data
        .iter()
        .map(|t| {
            if version >= 13 {
                b.replicas.topic_name(&t.topic_id).unwrap_or_default()
            } else {
                t.name.0.to_string()
            }
        })
        .collect();
    let verified = if valid_acks {
        verify_transactional(&b, &req, &names, version).await
    } else {
        BTreeMap::new()
    };
    let mut slots: Vec<Slot> = Vec::new();
    let mut topics = Vec::with_capacity(req.topic_data.len());
    for (ti, t) in req.topic_data.iter().enumerate() {
        let name = names[ti].clone();
        topics.push(
            TopicProduceResponse::default()
                .with_name(t.name.clone())
                .with_topic_id(t.topic_id),
        );
        for pd in &t.partition_data {
            let mut r = PartitionProduceResponse::default()
                .with_index(pd.index)
                .with_base_offset(-1)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(-1);
            let mut waiting = None;
            if !valid_acks {
                r.error_code = ResponseError::InvalidRequiredAcks.code();
            } else if admin::is_internal(&name) {
                // Kafka: only the broker's coordinators write internal topics; one
                // crafted batch there would corrupt every group's committed offsets.
                tracing::info!(topic = %name, client = ?ctx.client_id, "refused a produce to an internal topic");
                r.error_code = ResponseError::InvalidTopicException.code();
            } else if pd.records.as_ref().is_some_and(more_than_one_batch) {
                // Kafka (Produce v3+): exactly one record batch per partition.
                tracing::info!(topic = %name, partition = pd.index, "refused a produce with several batches for one partition");
                apply_refusal(
                    &mut r,
                    (
                        ResponseError::InvalidRecord.code(),
                        "Produce requests with version 3 and above are only allowed to contain exactly one record batch per partition".to_string(),
                    )
                        .into(),
                    version,
                );
            } else if let Some(Err(e)) = verified.get(&(name.clone(), pd.index)) {
                apply_refusal(
                    &mut r,
                    (
                        e.code(),
                        "the transaction coordinator did not confirm this partition is in the producer's transaction".to_string(),
                    )
                        .into(),
                    version,
                );
            } else {
                let guard = match verified.get(&(name.clone(), pd.index)) {
                    Some(Ok(g)) => *g,
                    _ => None,
                };
                match b.replicas.leader_partition(&img, &name, pd.index) {
                    Err(code) => r.error_code = code,
                    Ok(p) => match p
                        .append_as_leader(
                            pd.records.as_ref(),
                            acks,
                            now_ms(),
                            TxnCheck::Verified(guard),
                        )
                        .await
                    {
                        Err(refusal) => apply_refusal(&mut r, refusal, version),
                        Ok(appended) => {
                            let i = appended.info;
                            r = r
                                .with_base_offset(i.first_offset)
                                .with_log_append_time_ms(i.log_append_time);
                            if version >= 5 {
                                r = r.with_log_start_offset(i.log_start);
                            }
                            if acks == -1 {
                                waiting = Some((p, appended));
                            }
                        }
                    },
                }
            }
            slots.push(Slot {
                topic: ti,
                response: r,
                waiting,
            });
        }
    }
    if acks == 0 {
        b.metrics.partition_errors(
            ApiKey::Produce as i16,
            slots.iter().map(|s| s.response.error_code),
        );
        return None;
    }
    // acks=all: wait on every appended partition at once.
    let waits = slots.iter().map(|s| async {
        match &s.waiting {
            Some((p, appended)) => p.wait_for_commit(appended, deadline).await.err(),
            None => None,
        }
    });
    let outcomes = join_all(waits).await;
    let mut endpoints: Vec<NodeEndpoint> = Vec::new();
    for (slot, outcome) in slots.iter_mut().zip(outcomes) {
        if let Some(refusal) = outcome {
            apply_refusal(&mut slot.response, refusal.into(), version);
        }
        if version >= 10 && slot.response.error_code == ResponseError::NotLeaderOrFollower.code() {
            let topic = &req.topic_data[slot.topic];
            let name = if version >= 13 {
                img.topics.get(&topic.topic_id).map(|t| t.name.clone())
            } else {
                Some(topic.name.0.to_string())
            };
            let current = name
                .and_then(|n| img.topic_by_name(&n).cloned())
                .and_then(|t| t.partitions.get(&slot.response.index).cloned());
            if let Some(p) = current {
                slot.response.current_leader = LeaderIdAndEpoch::default()
                    .with_leader_id(BrokerId(p.leader))
                    .with_leader_epoch(p.leader_epoch);
                if let Some(ep) = super::leader_endpoint(&img, p.leader, &ctx.listener) {
                    if !endpoints.iter().any(|e| e.node_id.0 == p.leader) {
                        endpoints.push(
                            NodeEndpoint::default()
                                .with_node_id(BrokerId(p.leader))
                                .with_host(StrBytes::from_string(ep.0))
                                .with_port(ep.1)
                                .with_rack(ep.2.map(StrBytes::from_string)),
                        );
                    }
                }
            }
        }
    }
    b.metrics.partition_errors(
        ApiKey::Produce as i16,
        slots.iter().map(|s| s.response.error_code),
    );
    for slot in slots {
        topics[slot.topic].partition_responses.push(slot.response);
    }
    Some(
        ProduceResponse::default()
            .with_responses(topics)
            .with_node_endpoints(endpoints),
    )
}

//! Produce: acks 0 (no answer), 1 (after the leader's append) and all (after the high
//! watermark passes the batch); errors per partition, as Kafka returns them. With
//! acks=all every partition of the request is appended first and then all are waited on
//! at once, within the request's timeout. NOT_LEADER_OR_FOLLOWER answers carry the
//! current leader (KIP-951) so clients fail over without a metadata round trip.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse,
    TopicProduceResponse,
};
use kafka_protocol::messages::{BrokerId, ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use strom_common::clock::now_ms;

use super::RequestContext;
use crate::admin;
use crate::broker::Broker;
use crate::log::batch::BatchHeader;
use crate::replication::{Appended, Partition, ProduceRefusal};

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

/// Whether `records` starts with a transactional batch (one batch per partition is
/// enforced before this is asked).
fn transactional(records: &bytes::Bytes) -> bool {
    BatchHeader::parse(records).is_some_and(|h| h.is_transactional())
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
    let mut slots: Vec<Slot> = Vec::new();
    let mut topics = Vec::with_capacity(req.topic_data.len());
    for (ti, t) in req.topic_data.iter().enumerate() {
        let name = if version >= 13 {
            b.replicas.topic_name(&t.topic_id).unwrap_or_default()
        } else {
            t.name.0.to_string()
        };
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
            } else if pd.records.as_ref().is_some_and(transactional) {
                // No transaction coordinator yet, so no transaction can include this
                // partition: what KIP-890's verification answers for a partition outside
                // the producer's transaction. Accepting it would open a transaction here
                // that no marker ever ends, and hold read_committed consumers at it.
                tracing::info!(topic = %name, partition = pd.index, client = ?ctx.client_id,
                    transactional_id = ?req.transactional_id.as_ref().map(|t| t.0.to_string()),
                    "refused a transactional batch: transactions are not supported yet");
                apply_refusal(
                    &mut r,
                    (
                        ResponseError::InvalidTxnState.code(),
                        "The partition is not part of an ongoing transaction (transactions are not supported yet)".to_string(),
                    )
                        .into(),
                    version,
                );
            } else {
                match b.replicas.leader_partition(&img, &name, pd.index) {
                    Err(code) => r.error_code = code,
                    Ok(p) => match p
                        .append_as_leader(pd.records.as_ref(), acks, now_ms())
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
    for slot in slots {
        topics[slot.topic].partition_responses.push(slot.response);
    }
    Some(
        ProduceResponse::default()
            .with_responses(topics)
            .with_node_endpoints(endpoints),
    )
}

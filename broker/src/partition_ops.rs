//! Partition-level operations shared by request handlers: finding the leader replica
//! for a request and appending to it with the acknowledgement the producer asked for.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use strom_common::clock::now_ms;

use crate::broker::Broker;
use crate::error::{batch_error_code, log_error_code};
use crate::log::batch::validate_batches;
use crate::log::AppendInfo;
use crate::replica_manager::Partition;

/// The hosted partition if this broker leads it, else the Kafka error to answer with.
pub fn leader_partition(b: &Broker, topic: &str, index: i32) -> Result<Arc<Partition>, i16> {
    match b.replicas.get(topic, index) {
        Some(p) if p.is_leader(b.node_id) => Ok(p),
        Some(_) => Err(ResponseError::NotLeaderOrFollower.code()),
        None => {
            let img = b.cache.image();
            match img.topic_by_name(topic) {
                Some(t) if t.partitions.contains_key(&index) => {
                    Err(ResponseError::NotLeaderOrFollower.code())
                }
                _ => Err(ResponseError::UnknownTopicOrPartition.code()),
            }
        }
    }
}

/// The outcome of a produce to one partition.
pub struct ProduceOutcome {
    pub error_code: i16,
    pub error_message: Option<String>,
    pub info: Option<AppendInfo>,
}

impl ProduceOutcome {
    fn err(code: i16, msg: impl Into<String>) -> ProduceOutcome {
        ProduceOutcome {
            error_code: code,
            error_message: Some(msg.into()),
            info: None,
        }
    }
}

/// Checks and appends a partition's records as leader; with `acks == -1` waits until
/// the high watermark passes them (at most `timeout`).
pub async fn produce_to(
    node_id: i32,
    p: &Partition,
    records: Option<&Bytes>,
    acks: i16,
    timeout: Duration,
) -> ProduceOutcome {
    let config = p.log.config();
    let Some(records) = records else {
        return ProduceOutcome::err(ResponseError::InvalidRecord.code(), "null records");
    };
    let batches = match validate_batches(records, config.max_message_bytes) {
        Ok(v) => v,
        Err(e) => {
            tracing::debug!(topic = %p.topic, partition = p.index, error = %e, "refused a record batch");
            return ProduceOutcome::err(batch_error_code(&e), e.to_string());
        }
    };
    if batches.iter().any(|v| v.header.is_transactional()) {
        return ProduceOutcome::err(
            ResponseError::InvalidRecord.code(),
            "transactional writes are not supported by this strom version yet",
        );
    }
    let state = p.state();
    if acks == -1 && (state.isr.len() as i32) < config.min_insync_replicas {
        return ProduceOutcome::err(
            ResponseError::NotEnoughReplicas.code(),
            "fewer in-sync replicas than min.insync.replicas",
        );
    }
    let info = match p.log.append(&batches, state.leader_epoch, now_ms()).await {
        Ok(i) => i,
        Err(e) => {
            tracing::debug!(topic = %p.topic, partition = p.index, error = %e, "append refused");
            return ProduceOutcome::err(log_error_code(&e), e.to_string());
        }
    };
    // The leader alone in the ISR commits what it appends.
    if state.isr == [node_id] {
        p.log.advance_high_watermark(info.last_offset + 1).await;
    }
    if acks == -1 && info.last_offset >= 0 {
        let target = info.last_offset + 1;
        let mut rx = p.log.subscribe();
        let wait = rx.wait_for(|o| o.high_watermark >= target);
        if tokio::time::timeout(timeout, wait).await.is_err() {
            return ProduceOutcome::err(
                ResponseError::RequestTimedOut.code(),
                "timed out waiting for in-sync replicas",
            );
        }
    }
    ProduceOutcome {
        error_code: 0,
        error_message: None,
        info: Some(info),
    }
}

//! One hosted partition: its log and its replication state (role, leader epoch, ISR),
//! and the leader's append path (validate, append, and for `acks=all` wait until the
//! high watermark passes the records).
//!
//! It must not know about Kafka requests beyond the produce path's error codes, nor
//! reach the metadata cache or the controller: the replica manager tells it its state.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use parking_lot::RwLock;
use strom_common::clock::now_ms;
use strom_controller::metadata::PartitionImage;
use uuid::Uuid;

use crate::error::{batch_error_code, log_error_code};
use crate::log::batch::validate_batches;
use crate::log::{AppendInfo, PartitionLog};

/// Leadership of a hosted partition, from the metadata image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionState {
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

/// A partition hosted here.
pub struct Partition {
    pub topic: String,
    pub index: i32,
    pub topic_id: Uuid,
    pub log: Arc<PartitionLog>,
    state: RwLock<PartitionState>,
}

impl PartitionState {
    pub fn from_image(p: &PartitionImage) -> PartitionState {
        PartitionState {
            leader: p.leader,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
            replicas: p.replicas.clone(),
            isr: p.isr.clone(),
        }
    }
}

impl Partition {
    pub fn new(
        topic: &str,
        index: i32,
        topic_id: Uuid,
        log: Arc<PartitionLog>,
        state: PartitionState,
    ) -> Partition {
        Partition {
            topic: topic.to_string(),
            index,
            topic_id,
            log,
            state: RwLock::new(state),
        }
    }

    pub fn set_state(&self, state: PartitionState) {
        *self.state.write() = state;
    }

    pub fn state(&self) -> PartitionState {
        self.state.read().clone()
    }

    pub fn is_leader(&self, node_id: i32) -> bool {
        self.state.read().leader == node_id
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

impl Partition {
    /// Checks and appends records as leader; with `acks == -1` waits until the high
    /// watermark passes them (at most `timeout`).
    pub async fn append_records_to_leader(
        &self,
        node_id: i32,
        records: Option<&Bytes>,
        acks: i16,
        timeout: Duration,
    ) -> ProduceOutcome {
        let p = self;
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
}

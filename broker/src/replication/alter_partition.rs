//! Sends ISR changes to the controller (Kafka's `AlterPartitionManager`): at most one
//! request in flight, carrying every partition's pending change; a partition has at most
//! one change queued. Answers go back to the partition, which may ask for a resend
//! (controller unreachable or not the leader): resent after a short pause while the
//! partition still wants that change.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use strom_common::clock::now_ms;
use strom_proto::controller::{AlterPartitionItem, AlterPartitionRequest, BrokerAndEpoch};
use tokio::sync::Notify;
use uuid::Uuid;

use super::partition::{AfterAnswer, IsrAnswer, IsrProposal, Partition};
use crate::controller_client::ControllerClient;

type Queue = BTreeMap<(Uuid, i32), (Arc<Partition>, IsrProposal)>;

pub struct AlterPartitionSender {
    local_id: i32,
    broker_epoch: Arc<AtomicI64>,
    controller: Arc<ControllerClient>,
    queue: Mutex<Queue>,
    wake: Notify,
}

impl AlterPartitionSender {
    pub fn new(
        local_id: i32,
        broker_epoch: Arc<AtomicI64>,
        controller: Arc<ControllerClient>,
    ) -> Arc<AlterPartitionSender> {
        let s = Arc::new(AlterPartitionSender {
            local_id,
            broker_epoch,
            controller,
            queue: Mutex::new(BTreeMap::new()),
            wake: Notify::new(),
        });
        tokio::spawn(run(Arc::downgrade(&s)));
        s
    }

    /// Queues a partition's proposal (replacing an older one for the same partition).
    pub fn submit(&self, partition: Arc<Partition>, proposal: IsrProposal) {
        self.queue
            .lock()
            .insert((partition.topic_id, partition.index), (partition, proposal));
        self.wake.notify_one();
    }
}

async fn run(weak: Weak<AlterPartitionSender>) {
    loop {
        let Some(me) = weak.upgrade() else { return };
        let batch: Queue = {
            let mut q = me.queue.lock();
            std::mem::take(&mut *q)
        };
        if batch.is_empty() {
            // Wake at least now and then so that a dropped sender ends the task.
            let _ = tokio::time::timeout(Duration::from_secs(1), me.wake.notified()).await;
            continue;
        }
        let batch: Vec<(Arc<Partition>, IsrProposal)> = batch
            .into_values()
            .filter(|(p, prop)| p.is_pending(prop))
            .collect();
        if batch.is_empty() {
            continue;
        }
        let broker_epoch = me.broker_epoch.load(Ordering::Acquire);
        let req = AlterPartitionRequest {
            broker_id: me.local_id,
            broker_epoch,
            partitions: batch
                .iter()
                .map(|(p, prop)| AlterPartitionItem {
                    topic_id: bytes::Bytes::copy_from_slice(p.topic_id.as_bytes()),
                    partition: p.index,
                    leader_epoch: prop.leader_epoch,
                    partition_epoch: prop.partition_epoch,
                    new_isr: prop
                        .isr
                        .iter()
                        .map(|&(b, e)| BrokerAndEpoch {
                            broker_id: b,
                            broker_epoch: if b == me.local_id { broker_epoch } else { e },
                        })
                        .collect(),
                    leader_recovery_state: 0,
                })
                .collect(),
        };
        let res = me
            .controller
            .call(Duration::from_secs(10), |mut c| {
                let r = req.clone();
                async move { c.alter_partition(r).await }
            })
            .await;
        let mut retry = Vec::new();
        match res {
            Ok(resp) if resp.error_code == 0 => {
                let by_key: BTreeMap<(Vec<u8>, i32), _> = resp
                    .partitions
                    .iter()
                    .map(|r| ((r.topic_id.to_vec(), r.partition), r))
                    .collect();
                for (p, prop) in batch {
                    let key = (p.topic_id.as_bytes().to_vec(), p.index);
                    let Some(r) = by_key.get(&key) else {
                        retry.push((p, prop));
                        continue;
                    };
                    let answer = IsrAnswer {
                        error_code: r.error_code as i16,
                        leader_epoch: r.leader_epoch,
                        partition_epoch: r.partition_epoch,
                        isr: r.isr.clone(),
                    };
                    if answer.error_code != 0 {
                        tracing::info!(topic = %p.topic, partition = p.index, code = answer.error_code, "AlterPartition refused");
                    }
                    if p.on_isr_answer(&prop, &answer, broker_epoch, now_ms())
                        .await
                        == AfterAnswer::Retry
                    {
                        retry.push((p, prop));
                    }
                }
            }
            Ok(resp) => {
                tracing::warn!(
                    code = resp.error_code,
                    "AlterPartition refused for the whole request"
                );
                retry = batch;
            }
            Err(s) => {
                tracing::debug!(status = %s, "AlterPartition failed; retrying");
                retry = batch;
            }
        }
        if !retry.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let mut q = me.queue.lock();
            for (p, prop) in retry {
                q.entry((p.topic_id, p.index)).or_insert((p, prop));
            }
        }
    }
}

//! Transaction markers between brokers (KIP-98's WriteTxnMarkers): the coordinator
//! sends each partition leader of a transaction the commit or abort marker; the leader
//! appends it as a control batch, waits until its in-sync replicas have it (as Kafka
//! does, acks=all) and, for a `__consumer_offsets` partition, lets the group coordinator
//! apply or drop the transaction's offsets.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{ProducerId, TopicName, WriteTxnMarkersRequest};
use kafka_protocol::protocol::StrBytes;

use super::coordinator::{BoxFuture, TxnMarkers};
use super::metadata::{ProducerIdEpoch, TxnResult};
use crate::group::{GroupCoordinator, OFFSETS_TOPIC};
use crate::inter_broker::BrokerPool;
use crate::log::marker::Marker;
use crate::metadata_cache::MetadataCache;
use crate::replication::ReplicaManager;

/// How long a leader waits for its in-sync replicas to have a marker.
const MARKER_TIMEOUT: Duration = Duration::from_secs(30);

/// Writes one marker at a partition this broker leads and waits until it is committed;
/// a `__consumer_offsets` partition then ends the producer's pending offsets.
pub async fn write_local(
    replicas: &ReplicaManager,
    groups: &GroupCoordinator,
    topic: &str,
    partition: i32,
    m: &Marker,
) -> Result<(), E> {
    let Some(p) = replicas.get(topic, partition) else {
        return Err(E::UnknownTopicOrPartition);
    };
    let now = strom_common::clock::now_ms();
    p.append_marker_and_wait(m, MARKER_TIMEOUT, now)
        .await
        .map_err(|(code, _)| E::try_from_code(code).unwrap_or(E::UnknownServerError))?;
    if topic == OFFSETS_TOPIC {
        groups.end_txn(partition, m.producer_id, m.commit).await;
    }
    Ok(())
}

/// The coordinator's side: sends the markers to the leaders and retries until every
/// partition has its marker.
pub struct MarkerWriter {
    node_id: i32,
    cache: Arc<MetadataCache>,
    replicas: Arc<ReplicaManager>,
    groups: Arc<GroupCoordinator>,
    pool: BrokerPool,
}

impl MarkerWriter {
    pub fn new(
        node_id: i32,
        inter_broker_listener: String,
        cache: Arc<MetadataCache>,
        replicas: Arc<ReplicaManager>,
        groups: Arc<GroupCoordinator>,
    ) -> Arc<MarkerWriter> {
        let pool = BrokerPool::new("txn-markers", node_id, inter_broker_listener, cache.clone());
        Arc::new(MarkerWriter {
            node_id,
            cache,
            replicas,
            groups,
            pool,
        })
    }

    /// One round: writes the marker at every partition of `left`, grouped by leader;
    /// returns each partition's outcome.
    async fn round(
        &self,
        m: &Marker,
        left: &BTreeSet<(String, i32)>,
    ) -> Vec<((String, i32), Result<(), E>)> {
        let img = self.cache.image();
        let mut by_leader: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
        let mut out = Vec::new();
        for (t, p) in left {
            let Some(part) = img.topic_by_name(t).and_then(|x| x.partitions.get(p)) else {
                // The topic is gone: nothing to mark (Kafka skips deleted partitions).
                out.push(((t.clone(), *p), Ok(())));
                continue;
            };
            if part.leader < 0 {
                out.push(((t.clone(), *p), Err(E::LeaderNotAvailable)));
                continue;
            }
            by_leader
                .entry(part.leader)
                .or_default()
                .push((t.clone(), *p));
        }
        let sends = by_leader.into_iter().map(|(leader, parts)| async move {
            if leader == self.node_id {
                let writes = parts.iter().map(|(t, p)| async move {
                    let r = write_local(&self.replicas, &self.groups, t, *p, m).await;
                    ((t.clone(), *p), r)
                });
                return join_all(writes).await;
            }
            self.send_remote(leader, m, parts).await
        });
        for rs in join_all(sends).await {
            out.extend(rs);
        }
        out
    }

    async fn send_remote(
        &self,
        leader: i32,
        m: &Marker,
        parts: Vec<(String, i32)>,
    ) -> Vec<((String, i32), Result<(), E>)> {
        let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (t, p) in &parts {
            topics.entry(t).or_default().push(*p);
        }
        let marker = WritableTxnMarker::default()
            .with_producer_id(ProducerId(m.producer_id))
            .with_producer_epoch(m.producer_epoch)
            .with_transaction_result(m.commit)
            .with_coordinator_epoch(m.coordinator_epoch)
            .with_topics(
                topics
                    .into_iter()
                    .map(|(t, ps)| {
                        WritableTxnMarkerTopic::default()
                            .with_name(TopicName(StrBytes::from_string(t.to_string())))
                            .with_partition_indexes(ps)
                    })
                    .collect(),
            );
        let req = WriteTxnMarkersRequest::default().with_markers(vec![marker]);
        let resp = match self.pool.send(leader, req, 1).await {
            Ok(r) => r,
            Err(e) => return parts.into_iter().map(|tp| (tp, Err(e))).collect(),
        };
        let mut got: BTreeMap<(String, i32), Result<(), E>> = BTreeMap::new();
        for mk in resp.markers {
            for t in mk.topics {
                for p in t.partitions {
                    let r = match E::try_from_code(p.error_code) {
                        None => Ok(()),
                        Some(e) => Err(e),
                    };
                    got.insert((t.name.0.to_string(), p.partition_index), r);
                }
            }
        }
        parts
            .into_iter()
            .map(|tp| {
                let r = got.remove(&tp).unwrap_or(Err(E::UnknownServerError));
                (tp, r)
            })
            .collect()
    }
}

impl TxnMarkers for MarkerWriter {
    fn write<'a>(
        &'a self,
        coordinator_epoch: i32,
        producer: ProducerIdEpoch,
        result: TxnResult,
        partitions: &'a BTreeSet<(String, i32)>,
    ) -> BoxFuture<'a, Result<(), E>> {
        Box::pin(async move {
            let m = Marker {
                producer_id: producer.id,
                producer_epoch: producer.epoch,
                coordinator_epoch,
                commit: result == TxnResult::Commit,
            };
            let mut left = partitions.clone();
            let mut backoff = Duration::from_millis(20);
            let deadline = tokio::time::Instant::now() + MARKER_TIMEOUT * 2;
            loop {
                for (tp, r) in self.round(&m, &left).await {
                    match r {
                        Ok(()) => {
                            left.remove(&tp);
                        }
                        // A newer coordinator has written markers for this producer:
                        // this one is stale and stops (the new one finishes the job).
                        Err(E::TransactionCoordinatorFenced) => {
                            tracing::info!(topic = %tp.0, partition = tp.1, producer_id = m.producer_id,
                                "a newer transaction coordinator wrote markers; stopping");
                            return Err(E::NotCoordinator);
                        }
                        // The partition has seen a newer epoch of the producer: this
                        // transaction cannot be open there any more.
                        Err(E::InvalidProducerEpoch | E::ProducerFenced) => {
                            tracing::warn!(topic = %tp.0, partition = tp.1, producer_id = m.producer_id,
                                epoch = m.producer_epoch, "a partition refused a marker of an older producer epoch");
                            left.remove(&tp);
                        }
                        Err(e) => {
                            tracing::debug!(topic = %tp.0, partition = tp.1, error = %e, "marker not written yet; retrying");
                        }
                    }
                }
                if left.is_empty() {
                    return Ok(());
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(E::RequestTimedOut);
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(500));
            }
        })
    }
}

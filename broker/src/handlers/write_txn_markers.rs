//! WriteTxnMarkers, from a transaction coordinator to this broker as the leader of the
//! transaction's partitions: each marker is appended as a control batch and answered
//! once the in-sync replicas have it (see `txn::markers`).
//!
//! Kafka takes WriteTxnMarkers from whoever holds CLUSTER_ACTION; its admin client sends
//! one to abort a hanging transaction (`kafka-transactions abort`, KIP-664). strom has no
//! authentication yet: commit markers come only from its brokers, abort markers from
//! anyone (an abort is what the tool sends, and what a transaction's coordinator would
//! have written had it not lost the transaction).

use std::sync::Arc;

use futures::future::join_all;
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};

use super::RequestContext;
use crate::broker::Broker;
use crate::log::marker::Marker;
use crate::txn::markers::write_local;

pub async fn handle(
    b: Arc<Broker>,
    ctx: RequestContext,
    req: WriteTxnMarkersRequest,
) -> Option<WriteTxnMarkersResponse> {
    let from_broker = super::from_broker(&b, &ctx, "txn-markers");
    let mut out = Vec::with_capacity(req.markers.len());
    for mk in &req.markers {
        let allowed = from_broker || !mk.transaction_result;
        if !allowed {
            tracing::warn!(client_id = ?ctx.client_id, peer = %ctx.peer,
                "refused a commit marker from a client (brokers only)");
        } else if !from_broker {
            tracing::info!(client_id = ?ctx.client_id, peer = %ctx.peer,
                producer_id = mk.producer_id.0, producer_epoch = mk.producer_epoch,
                "a client aborts a transaction (kafka-transactions abort)");
        }
        let m = Marker {
            producer_id: mk.producer_id.0,
            producer_epoch: mk.producer_epoch,
            coordinator_epoch: mk.coordinator_epoch,
            commit: mk.transaction_result,
        };
        let mut topics = Vec::with_capacity(mk.topics.len());
        for t in &mk.topics {
            let rs = join_all(t.partition_indexes.iter().map(|&p| {
                let b = &b;
                async move {
                    let r = if allowed {
                        write_local(&b.replicas, &b.groups, &t.name.0, p, &m).await
                    } else {
                        Err(kafka_protocol::error::ResponseError::ClusterAuthorizationFailed)
                    };
                    WritableTxnMarkerPartitionResult::default()
                        .with_partition_index(p)
                        .with_error_code(super::code(r))
                }
            }))
            .await;
            topics.push(
                WritableTxnMarkerTopicResult::default()
                    .with_name(t.name.clone())
                    .with_partitions(rs),
            );
        }
        out.push(
            WritableTxnMarkerResult::default()
                .with_producer_id(mk.producer_id)
                .with_topics(topics),
        );
    }
    Some(WriteTxnMarkersResponse::default().with_markers(out))
}

//! AlterPartitionReassignments (KIP-455): moves partitions to other brokers, or cancels a
//! move (`replicas` null). The controller adds the new replicas, which catch up as
//! followers; once every target replica is in the ISR the move completes and the
//! replicas that leave are dropped (the leader too, if it leaves).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use strom_proto::controller::{AlterReassignmentsRequest, ReassignPartition};
use strom_proto::metadata::IntList;

use super::RequestContext;
use crate::broker::Broker;
use crate::error::controller_status_code;

pub async fn handle(
    b: Arc<Broker>,
    ctx: RequestContext,
    req: AlterPartitionReassignmentsRequest,
) -> Option<AlterPartitionReassignmentsResponse> {
    let allow_rf_change = ctx.api_version < 1 || req.allow_replication_factor_change;
    let greq = AlterReassignmentsRequest {
        partitions: req
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(move |p| ReassignPartition {
                    topic: t.name.0.to_string(),
                    partition: p.partition_index,
                    replicas: p.replicas.as_ref().map(|r| IntList {
                        values: r.iter().map(|x| x.0).collect(),
                    }),
                })
            })
            .collect(),
        allow_replication_factor_change: allow_rf_change,
    };
    let timeout = Duration::from_millis(req.timeout_ms.clamp(1000, 60_000) as u64);
    let res = b
        .controller
        .call(timeout, |mut c| {
            let r = greq.clone();
            async move { c.alter_partition_reassignments(r).await }
        })
        .await;
    let mut resp = AlterPartitionReassignmentsResponse::default();
    if ctx.api_version >= 1 {
        resp = resp.with_allow_replication_factor_change(allow_rf_change);
    }
    match res {
        Err(status) => Some(
            resp.with_error_code(controller_status_code(&status))
                .with_error_message(Some(StrBytes::from_string(status.message().to_string()))),
        ),
        Ok(r) => {
            if r.metadata_offset > 0 {
                b.cache.wait_for(r.metadata_offset, timeout).await;
            }
            let mut by_topic: BTreeMap<String, Vec<ReassignablePartitionResponse>> =
                BTreeMap::new();
            for p in r.results {
                by_topic.entry(p.topic).or_default().push(
                    ReassignablePartitionResponse::default()
                        .with_partition_index(p.partition)
                        .with_error_code(p.error_code as i16)
                        .with_error_message(
                            (p.error_code != 0).then(|| StrBytes::from_string(p.error_message)),
                        ),
                );
            }
            Some(
                resp.with_error_code(r.error_code as i16).with_responses(
                    by_topic
                        .into_iter()
                        .map(|(t, parts)| {
                            ReassignableTopicResponse::default()
                                .with_name(TopicName(StrBytes::from_string(t)))
                                .with_partitions(parts)
                        })
                        .collect(),
                ),
            )
        }
    }
}

//! ElectLeaders (KIP-183/460): preferred or unclean leader elections, decided by the
//! controller quorum. With no partitions named, every partition is considered and those
//! that need no election are left out of the answer, as Kafka does.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use strom_proto::controller::{TopicPartitions, TopicPartitionsList};

use super::RequestContext;
use crate::broker::Broker;
use crate::error::controller_status_code;

pub async fn handle(
    b: Arc<Broker>,
    ctx: RequestContext,
    req: ElectLeadersRequest,
) -> Option<ElectLeadersResponse> {
    let election_type = if ctx.api_version >= 1 {
        req.election_type as i32
    } else {
        0
    };
    let partitions = req
        .topic_partitions
        .as_ref()
        .map(|tps| TopicPartitionsList {
            topics: tps
                .iter()
                .map(|t| TopicPartitions {
                    topic: t.topic.0.to_string(),
                    partitions: t.partitions.clone(),
                })
                .collect(),
        });
    if partitions.as_ref().is_some_and(|p| p.topics.is_empty()) {
        return Some(ElectLeadersResponse::default());
    }
    let greq = strom_proto::controller::ElectLeadersRequest {
        election_type,
        partitions,
    };
    let timeout = Duration::from_millis(req.timeout_ms.clamp(1000, 60_000) as u64);
    let res = b
        .controller
        .call(timeout, |mut c| {
            let r = greq.clone();
            async move { c.elect_leaders(r).await }
        })
        .await;
    let resp = match res {
        Ok(r) => r,
        Err(status) => {
            let code = controller_status_code(&status);
            return Some(error_answer(&req, code, ctx.api_version));
        }
    };
    if resp.error_code != 0 {
        return Some(error_answer(&req, resp.error_code as i16, ctx.api_version));
    }
    if resp.metadata_offset > 0 {
        b.cache.wait_for(resp.metadata_offset, timeout).await;
    }
    let mut by_topic: BTreeMap<String, Vec<PartitionResult>> = BTreeMap::new();
    for r in resp.results {
        by_topic.entry(r.topic).or_default().push(
            PartitionResult::default()
                .with_partition_id(r.partition)
                .with_error_code(r.error_code as i16)
                .with_error_message(
                    (r.error_code != 0).then(|| StrBytes::from_string(r.error_message)),
                ),
        );
    }
    Some(
        ElectLeadersResponse::default().with_replica_election_results(
            by_topic
                .into_iter()
                .map(|(t, parts)| {
                    ReplicaElectionResult::default()
                        .with_topic(TopicName(StrBytes::from_string(t)))
                        .with_partition_result(parts)
                })
                .collect(),
        ),
    )
}

/// The same error on every partition named (and at the top level from v1).
fn error_answer(req: &ElectLeadersRequest, code: i16, version: i16) -> ElectLeadersResponse {
    let results = req
        .topic_partitions
        .iter()
        .flatten()
        .map(|t| {
            ReplicaElectionResult::default()
                .with_topic(t.topic.clone())
                .with_partition_result(
                    t.partitions
                        .iter()
                        .map(|p| {
                            PartitionResult::default()
                                .with_partition_id(*p)
                                .with_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect();
    let r = ElectLeadersResponse::default().with_replica_election_results(results);
    if version >= 1 {
        r.with_error_code(code)
    } else {
        r
    }
}

//! DescribeQuorum: the metadata quorum's state (leader, epoch, high watermark, voters
//! and observers with their log end offsets), asked of the quorum leader over gRPC.
//! Brokers appear as observers, with the metadata offset they last reported.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::{
    BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use strom_proto::controller::VoterState;

use super::RequestContext;
use crate::broker::Broker;
use crate::error::controller_status_code;

pub const METADATA_TOPIC: &str = "__cluster_metadata";

pub async fn handle(
    b: Arc<Broker>,
    ctx: RequestContext,
    _req: DescribeQuorumRequest,
) -> Option<DescribeQuorumResponse> {
    let v = ctx.api_version;
    let res = b
        .controller
        .call(Duration::from_secs(5), |mut c| async move {
            c.describe_quorum(strom_proto::controller::DescribeQuorumRequest {})
                .await
        })
        .await;
    let q = match res {
        Ok(q) => q,
        Err(s) => {
            return Some(
                DescribeQuorumResponse::default()
                    .with_error_code(controller_status_code(&s))
                    .with_error_message(if v >= 2 {
                        Some(StrBytes::from_string(s.message().to_string()))
                    } else {
                        None
                    }),
            )
        }
    };
    let state = |s: &VoterState| {
        let r = ReplicaState::default()
            .with_replica_id(BrokerId(s.node_id))
            .with_log_end_offset(s.log_end_offset as i64);
        if v >= 1 {
            r.with_last_fetch_timestamp(s.last_contact_ms)
                .with_last_caught_up_timestamp(s.last_contact_ms)
        } else {
            r
        }
    };
    let partition = PartitionData::default()
        .with_partition_index(0)
        .with_error_code(if q.error_code == 0 {
            0
        } else {
            ResponseError::NotController.code()
        })
        .with_leader_id(BrokerId(q.leader_id))
        .with_leader_epoch(q.leader_epoch as i32)
        .with_high_watermark(q.high_watermark as i64)
        .with_current_voters(q.voters.iter().map(state).collect())
        .with_observers(q.observers.iter().map(state).collect());
    let mut resp = DescribeQuorumResponse::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(StrBytes::from_static_str(METADATA_TOPIC)))
        .with_partitions(vec![partition])]);
    if v >= 2 {
        let nodes = b
            .config
            .voters
            .iter()
            .filter_map(|(id, addr)| {
                let (host, port) = addr.rsplit_once(':')?;
                Some(
                    Node::default()
                        .with_node_id(BrokerId(*id as i32))
                        .with_listeners(vec![Listener::default()
                            .with_name(StrBytes::from_static_str("CONTROLLER"))
                            .with_host(StrBytes::from_string(host.to_string()))
                            .with_port(port.parse().ok()?)]),
                )
            })
            .collect();
        resp = resp.with_nodes(nodes);
    }
    Some(resp)
}

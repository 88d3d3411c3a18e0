//! DescribeCluster: the live brokers, the cluster id, and a live broker as controller
//! id (clients cannot reach controllers; KRaft answers the same way).

use std::sync::Arc;

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use super::metadata::{broker_entries, CLUSTER_AUTHORIZED_OPERATIONS};
use super::RequestContext;
use crate::broker::Broker;

pub async fn handle(
    b: Arc<Broker>,
    ctx: RequestContext,
    req: DescribeClusterRequest,
) -> Option<DescribeClusterResponse> {
    let img = b.cache.image();
    let brokers: Vec<DescribeClusterBroker> =
        broker_entries(&img, &b.cache.listed_brokers(&img), &ctx.listener)
            .into_iter()
            .map(|x| {
                DescribeClusterBroker::default()
                    .with_broker_id(x.node_id)
                    .with_host(x.host)
                    .with_port(x.port)
                    .with_rack(x.rack)
            })
            .collect();
    let controller_id = super::metadata::controller_id_for(&img, b.node_id);
    Some(
        DescribeClusterResponse::default()
            .with_cluster_id(StrBytes::from_string(
                img.cluster_id.clone().unwrap_or_default(),
            ))
            .with_controller_id(BrokerId(controller_id))
            .with_brokers(brokers)
            .with_cluster_authorized_operations(if req.include_cluster_authorized_operations {
                CLUSTER_AUTHORIZED_OPERATIONS
            } else {
                i32::MIN
            }),
    )
}

//! ListConfigResources (KIP-1142; v0 was ListClientMetricsResources): the config
//! resources of the asked types, every supported type when none is asked. Topics are
//! every topic; brokers and broker loggers every registered broker; groups every group
//! with dynamic configs (KIP-848). strom keeps no client-metrics configs, so that type
//! lists nothing. v0 lists only
//! client-metrics resources, as Kafka's v0 does; an unknown type is INVALID_REQUEST.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_config_resources_response::ConfigResource;
use kafka_protocol::messages::{ListConfigResourcesRequest, ListConfigResourcesResponse};
use kafka_protocol::protocol::StrBytes;

use super::describe_configs::{BROKER, BROKER_LOGGER, GROUP, TOPIC};
use super::RequestContext;
use crate::broker::Broker;

const CLIENT_METRICS: i8 = 16;

pub async fn handle(
    b: Arc<Broker>,
    ctx: RequestContext,
    req: ListConfigResourcesRequest,
) -> Option<ListConfigResourcesResponse> {
    let supported: &[i8] = if ctx.api_version == 0 {
        &[CLIENT_METRICS]
    } else {
        &[TOPIC, BROKER, BROKER_LOGGER, GROUP, CLIENT_METRICS]
    };
    let types: Vec<i8> = if req.resource_types.is_empty() {
        supported.to_vec()
    } else {
        req.resource_types.clone()
    };
    if let Some(t) = types.iter().find(|t| !supported.contains(t)) {
        tracing::info!(
            resource_type = t,
            "ListConfigResources: unsupported resource type"
        );
        return Some(
            ListConfigResourcesResponse::default()
                .with_error_code(ResponseError::InvalidRequest.code()),
        );
    }
    let img = b.cache.image();
    let mut out = Vec::new();
    let mut add = |name: String, t: i8| {
        out.push(
            ConfigResource::default()
                .with_resource_name(StrBytes::from_string(name))
                .with_resource_type(t),
        )
    };
    for &t in &types {
        match t {
            TOPIC => {
                for name in img.topic_ids.keys() {
                    add(name.clone(), t);
                }
            }
            BROKER | BROKER_LOGGER => {
                for id in img.brokers.keys() {
                    add(id.to_string(), t);
                }
            }
            GROUP => {
                for name in img.all_group_configs().into_keys() {
                    add(name, t);
                }
            }
            _ => {}
        }
    }
    Some(ListConfigResourcesResponse::default().with_config_resources(out))
}

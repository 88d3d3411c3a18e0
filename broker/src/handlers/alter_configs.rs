//! AlterConfigs (the legacy, replace-everything form) for topic configs.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use strom_proto::controller::{AlterConfigOp, AlterConfigsResource, AlterOp};

use super::RequestContext;
use crate::broker::Broker;

pub async fn handle(
    b: Arc<Broker>,
    _ctx: RequestContext,
    req: AlterConfigsRequest,
) -> Option<AlterConfigsResponse> {
    let resources = req
        .resources
        .iter()
        .map(|r| AlterConfigsResource {
            resource_type: r.resource_type as i32,
            resource_name: r.resource_name.to_string(),
            ops: r
                .configs
                .iter()
                .map(|c| AlterConfigOp {
                    name: c.name.to_string(),
                    op: if c.value.is_some() {
                        AlterOp::AlterSet
                    } else {
                        AlterOp::AlterDelete
                    } as i32,
                    value: c.value.as_ref().map(|v| v.to_string()),
                })
                .collect(),
            replace_all: true,
        })
        .collect();
    let results = super::incremental_alter_configs::forward(
        &b,
        resources,
        req.validate_only,
        Duration::from_secs(30),
    )
    .await;
    let responses = results
        .into_iter()
        .map(|(rt, name, code, msg)| {
            AlterConfigsResourceResponse::default()
                .with_resource_type(rt)
                .with_resource_name(StrBytes::from_string(name))
                .with_error_code(code)
                .with_error_message(msg.map(StrBytes::from_string))
        })
        .collect();
    Some(AlterConfigsResponse::default().with_responses(responses))
}

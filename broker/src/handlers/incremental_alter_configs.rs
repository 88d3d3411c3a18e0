//! IncrementalAlterConfigs (set, delete, append, subtract) for topic, dynamic broker and
//! group configs, forwarded
//! to the quorum and answered once this broker's metadata has the change.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use strom_proto::controller::{AlterConfigOp, AlterConfigsRequest, AlterConfigsResource};

use super::RequestContext;
use crate::broker::Broker;
use crate::error::controller_status_code;

pub async fn handle(
    b: Arc<Broker>,
    _ctx: RequestContext,
    req: IncrementalAlterConfigsRequest,
) -> Option<IncrementalAlterConfigsResponse> {
    let mut bad = Vec::new();
    let mut resources = Vec::new();
    for r in &req.resources {
        if r.configs
            .iter()
            .any(|c| !(0..=3).contains(&c.config_operation))
        {
            bad.push((r.resource_type, r.resource_name.to_string()));
            continue;
        }
        resources.push(AlterConfigsResource {
            resource_type: r.resource_type as i32,
            resource_name: r.resource_name.to_string(),
            ops: r
                .configs
                .iter()
                .map(|c| AlterConfigOp {
                    name: c.name.to_string(),
                    op: c.config_operation as i32,
                    value: c.value.as_ref().map(|v| v.to_string()),
                })
                .collect(),
            replace_all: false,
        });
    }
    let mut results = forward(&b, resources, req.validate_only, Duration::from_secs(30)).await;
    for (rt, name) in bad {
        results.push((
            rt,
            name,
            ResponseError::InvalidRequest.code(),
            Some("unknown config operation".into()),
        ));
    }
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
    Some(IncrementalAlterConfigsResponse::default().with_responses(responses))
}

/// Sends config changes to the quorum: (resource type, name, error code, message) each.
pub async fn forward(
    b: &Broker,
    resources: Vec<AlterConfigsResource>,
    validate_only: bool,
    timeout: Duration,
) -> Vec<(i8, String, i16, Option<String>)> {
    // Internal topics keep the configs their coordinators rely on (compaction,
    // retention): refused, never forwarded.
    let (internal, resources): (Vec<_>, Vec<_>) = resources.into_iter().partition(|r| {
        r.resource_type == TOPIC_RESOURCE && crate::admin::is_internal(&r.resource_name)
    });
    let mut out: Vec<_> = internal
        .into_iter()
        .map(|r| {
            tracing::info!(topic = %r.resource_name, "refused to alter the configs of an internal topic");
            let msg = format!("Cannot alter the configs of internal topic {}", r.resource_name);
            (
                r.resource_type as i8,
                r.resource_name,
                kafka_protocol::error::ResponseError::InvalidTopicException.code(),
                Some(msg),
            )
        })
        .collect();
    // A broker's own configs are altered through that broker (Kafka's rule; clients
    // send a broker resource to the broker it names).
    let (elsewhere, resources): (Vec<_>, Vec<_>) = resources.into_iter().partition(|r| {
        r.resource_type == BROKER_RESOURCE
            && !r.resource_name.is_empty()
            && r.resource_name != b.node_id.to_string()
    });
    out.extend(elsewhere.into_iter().map(|r| {
        let msg = format!(
            "Unexpected broker id, expected {} or empty string, but received {}",
            b.node_id, r.resource_name
        );
        (
            r.resource_type as i8,
            r.resource_name,
            kafka_protocol::error::ResponseError::InvalidRequest.code(),
            Some(msg),
        )
    }));
    if resources.is_empty() {
        return out;
    }
    out.extend(forward_to_quorum(b, resources, validate_only, timeout).await);
    out
}

/// Kafka's ConfigResource types of a topic and a broker.
const TOPIC_RESOURCE: i32 = 2;
const BROKER_RESOURCE: i32 = 4;

async fn forward_to_quorum(
    b: &Broker,
    resources: Vec<AlterConfigsResource>,
    validate_only: bool,
    timeout: Duration,
) -> Vec<(i8, String, i16, Option<String>)> {
    let req = AlterConfigsRequest {
        resources: resources.clone(),
        validate_only,
    };
    let res = b
        .controller
        .call(timeout, |mut c| {
            let r = req.clone();
            async move { c.alter_configs(r).await }
        })
        .await;
    match res {
        Ok(resp) => {
            if resp.metadata_offset > 0 && !validate_only {
                b.cache.wait_for(resp.metadata_offset, timeout).await;
            }
            resp.resources
                .into_iter()
                .map(|r| {
                    let msg = (r.error_code != 0).then_some(r.error_message);
                    (
                        r.resource_type as i8,
                        r.resource_name,
                        r.error_code as i16,
                        msg,
                    )
                })
                .collect()
        }
        Err(s) => resources
            .into_iter()
            .map(|r| {
                (
                    r.resource_type as i8,
                    r.resource_name,
                    controller_status_code(&s),
                    Some(s.message().to_string()),
                )
            })
            .collect(),
    }
}

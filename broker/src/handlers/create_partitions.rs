//! CreatePartitions: grows topics through the quorum.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use strom_proto::metadata::IntList;

use super::RequestContext;
use crate::admin;
use crate::broker::Broker;
use crate::error::controller_status_code;

pub async fn handle(
    b: Arc<Broker>,
    ctx: RequestContext,
    mut req: CreatePartitionsRequest,
) -> Option<CreatePartitionsResponse> {
    // Internal topics keep the partition count their coordinators hash keys over.
    let (internal, topics): (Vec<_>, Vec<_>) = std::mem::take(&mut req.topics)
        .into_iter()
        .partition(|t| admin::is_internal(&t.name));
    req.topics = topics;
    let refused: Vec<_> = internal
        .into_iter()
        .map(|t| {
            tracing::info!(topic = %t.name.0, client = ?ctx.client_id, "refused to add partitions to an internal topic");
            let msg = format!("Cannot add partitions to internal topic {}", t.name.0);
            CreatePartitionsTopicResult::default()
                .with_name(t.name)
                .with_error_code(ResponseError::InvalidTopicException.code())
                .with_error_message(Some(StrBytes::from_string(msg)))
        })
        .collect();
    if req.topics.is_empty() {
        return Some(CreatePartitionsResponse::default().with_results(refused));
    }
    let greq = strom_proto::controller::CreatePartitionsRequest {
        topics: req
            .topics
            .iter()
            .map(|t| strom_proto::controller::CreatePartitionsTopic {
                name: t.name.0.to_string(),
                count: t.count,
                assignments: t
                    .assignments
                    .iter()
                    .flatten()
                    .map(|a| IntList {
                        values: a.broker_ids.iter().map(|x| x.0).collect(),
                    })
                    .collect(),
            })
            .collect(),
        validate_only: req.validate_only,
    };
    let timeout = Duration::from_millis(req.timeout_ms.clamp(1000, 60_000) as u64);
    let res = b
        .controller
        .call(timeout, |mut c| {
            let r = greq.clone();
            async move { c.create_partitions(r).await }
        })
        .await;
    let results: Vec<CreatePartitionsTopicResult> = match res {
        Ok(resp) => {
            if resp.metadata_offset > 0 && !req.validate_only {
                b.cache.wait_for(resp.metadata_offset, timeout).await;
            }
            resp.topics
                .into_iter()
                .map(|t| {
                    let msg = (t.error_code != 0).then(|| StrBytes::from_string(t.error_message));
                    CreatePartitionsTopicResult::default()
                        .with_name(TopicName(StrBytes::from_string(t.name)))
                        .with_error_code(t.error_code as i16)
                        .with_error_message(msg)
                })
                .collect()
        }
        Err(s) => req
            .topics
            .iter()
            .map(|t| {
                CreatePartitionsTopicResult::default()
                    .with_name(t.name.clone())
                    .with_error_code(controller_status_code(&s))
                    .with_error_message(Some(StrBytes::from_string(s.message().to_string())))
            })
            .collect(),
    };
    let mut results = results;
    results.extend(refused);
    Some(CreatePartitionsResponse::default().with_results(results))
}

//! CreateTopics: forwarded to the controller quorum; answered once the topics are in
//! this broker's metadata, with ids, partition counts and configs (v5+).

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;
use strom_proto::controller::{ConfigEntry, CreatableTopic, TopicResult};
use strom_proto::metadata::IntList;
use uuid::Uuid;

use super::RequestContext;
use crate::admin;
use crate::broker::Broker;

pub async fn handle(
    b: Arc<Broker>,
    ctx: RequestContext,
    req: CreateTopicsRequest,
) -> Option<CreateTopicsResponse> {
    let topics: Vec<CreatableTopic> = req
        .topics
        .iter()
        .map(|t| {
            let mut assignments: Vec<_> = t.assignments.iter().collect();
            assignments.sort_by_key(|a| a.partition_index);
            CreatableTopic {
                name: t.name.0.to_string(),
                num_partitions: t.num_partitions,
                replication_factor: t.replication_factor as i32,
                assignments: assignments
                    .iter()
                    .map(|a| IntList {
                        values: a.broker_ids.iter().map(|x| x.0).collect(),
                    })
                    .collect(),
                configs: t
                    .configs
                    .iter()
                    .map(|c| ConfigEntry {
                        name: c.name.to_string(),
                        value: c.value.as_ref().map(|v| v.to_string()),
                    })
                    .collect(),
            }
        })
        .collect();
    let timeout = Duration::from_millis(req.timeout_ms.clamp(1000, 60_000) as u64);
    // The broker creates internal topics itself, with the partition count and configs
    // its coordinators need; a client-made one (say, 1 partition, `delete` policy)
    // would strand groups. An existing one is left to the quorum's TOPIC_ALREADY_EXISTS.
    let known = b.cache.image();
    let (internal, topics): (Vec<_>, Vec<_>) = topics
        .into_iter()
        .partition(|t| admin::is_internal(&t.name) && known.topic_by_name(&t.name).is_none());
    let mut results = Vec::new();
    for t in internal {
        tracing::info!(topic = %t.name, client = ?ctx.client_id, "refused to create an internal topic");
        results.push(TopicResult {
            error_code: ResponseError::InvalidTopicException.code() as i32,
            error_message: format!(
                "Internal topic {} is created by the broker on first use",
                t.name
            ),
            name: t.name,
            ..Default::default()
        });
    }
    if !topics.is_empty() {
        results.extend(admin::create_topics(&b, topics, req.validate_only, timeout).await);
    }
    let img = b.cache.image();
    let v = ctx.api_version;
    let out = results
        .into_iter()
        .map(|r| {
            let name = kafka_protocol::messages::TopicName(StrBytes::from_string(r.name.clone()));
            if r.error_code != 0 {
                let e = CreatableTopicResult::default()
                    .with_name(name)
                    .with_error_code(r.error_code as i16)
                    .with_error_message(Some(StrBytes::from_string(r.error_message)));
                return if v >= 5 {
                    e.with_num_partitions(-1)
                        .with_replication_factor(-1)
                        .with_configs(None)
                } else {
                    e
                };
            }
            let requested = req.topics.iter().find(|t| t.name.0.as_str() == r.name);
            let overrides = if req.validate_only {
                requested
                    .map(|t| {
                        t.configs
                            .iter()
                            .filter_map(|c| {
                                Some((c.name.to_string(), c.value.as_ref()?.to_string()))
                            })
                            .collect()
                    })
                    .unwrap_or_default()
            } else {
                img.topic_configs(&r.name)
            };
            let configs = admin::topic_configs(&b, &overrides)
                .into_iter()
                .map(|c| {
                    CreatableTopicConfigs::default()
                        .with_name(StrBytes::from_string(c.name))
                        .with_value(Some(StrBytes::from_string(c.value)))
                        .with_read_only(c.read_only)
                        .with_config_source(c.source.kafka_code())
                        .with_is_sensitive(false)
                })
                .collect();
            // Kafka answers a success with a null message (the codec's default is "").
            let mut ok = CreatableTopicResult::default()
                .with_name(name)
                .with_error_message(None);
            if v >= 5 {
                ok = ok
                    .with_num_partitions(r.num_partitions)
                    .with_replication_factor(r.replication_factor as i16)
                    .with_configs(Some(configs));
            }
            if v >= 7 {
                ok = ok.with_topic_id(Uuid::from_slice(&r.topic_id).unwrap_or(Uuid::nil()));
            }
            ok
        })
        .collect();
    Some(CreateTopicsResponse::default().with_topics(out))
}

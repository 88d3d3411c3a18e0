//! Topic administration shared by several handlers: forwarding creations to the
//! controller quorum and waiting until this broker's metadata includes them, and
//! describing a topic's effective configs.

use std::collections::BTreeMap;
use std::time::Duration;

use strom_common::topic_config::{
    resolve_layers, BrokerLayers, ConfigSource, ResolvedSynonym, TOPIC_CONFIGS,
};
use strom_proto::controller::{CreatableTopic, CreateTopicsRequest, TopicResult};

use crate::broker::Broker;

/// Forwards a CreateTopics to the quorum; on success waits (up to `timeout`) until the
/// local metadata cache holds the new topics. Request-wide failures come back as the
/// same error code on every topic.
pub async fn create_topics(
    b: &Broker,
    topics: Vec<CreatableTopic>,
    validate_only: bool,
    timeout: Duration,
) -> Vec<TopicResult> {
    let names: Vec<String> = topics.iter().map(|t| t.name.clone()).collect();
    let req = CreateTopicsRequest {
        topics,
        validate_only,
    };
    let res = b
        .controller
        .call(timeout.max(Duration::from_secs(1)), |mut c| {
            let req = req.clone();
            async move { c.create_topics(req).await }
        })
        .await;
    match res {
        Ok(resp) => {
            if resp.metadata_offset > 0 && !validate_only {
                b.cache
                    .wait_for(resp.metadata_offset, timeout.max(Duration::from_secs(1)))
                    .await;
            }
            resp.topics
        }
        Err(status) => {
            let code = crate::error::controller_status_code(&status) as i32;
            tracing::warn!(error = %status, "CreateTopics forwarding failed");
            names
                .into_iter()
                .map(|name| TopicResult {
                    name,
                    error_code: code,
                    error_message: status.message().to_string(),
                    ..Default::default()
                })
                .collect()
        }
    }
}

/// One described config entry.
#[derive(Clone, Debug)]
pub struct DescribedConfig {
    pub name: String,
    pub value: String,
    pub source: ConfigSource,
    pub read_only: bool,
    pub ty: strom_common::topic_config::ConfigType,
    pub synonyms: Vec<ResolvedSynonym>,
}

/// Every topic config's effective value for a topic with `overrides`.
pub fn topic_configs(b: &Broker, overrides: &BTreeMap<String, String>) -> Vec<DescribedConfig> {
    let img = b.cache.image();
    let per_broker = img.broker_configs(b.node_id);
    let cluster = img.cluster_configs();
    let layers = BrokerLayers {
        per_broker: &per_broker,
        cluster: &cluster,
        static_settings: b.replicas.broker_settings(),
    };
    TOPIC_CONFIGS
        .iter()
        .map(|def| {
            let r = resolve_layers(def, overrides, &layers);
            DescribedConfig {
                name: def.name.to_string(),
                value: r.value,
                source: r.source,
                read_only: false,
                ty: def.ty,
                synonyms: r.synonyms,
            }
        })
        .collect()
}

/// Whether a topic is one of Kafka's internal topics.
pub fn is_internal(topic: &str) -> bool {
    topic == "__consumer_offsets" || topic == "__transaction_state"
}

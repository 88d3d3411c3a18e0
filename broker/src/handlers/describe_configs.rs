//! DescribeConfigs for topics (every topic config with its value, source and synonyms),
//! for this broker (its settings: dynamic per broker or cluster-wide, static, default),
//! for the cluster-wide dynamic defaults (broker ""), and for groups (KIP-848).

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use strom_common::broker_config;
use strom_common::topic_config::{ConfigSource, ConfigType, TOPIC_CONFIGS};

use super::RequestContext;
use crate::admin;
use crate::broker::Broker;

pub const TOPIC: i8 = 2;
pub const BROKER: i8 = 4;
pub const BROKER_LOGGER: i8 = 8;
pub const GROUP: i8 = 32;

fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

/// One broker config: its effective value is the first of `chain` (value, source),
/// the rest are its synonyms in precedence order.
fn broker_entry(
    name: String,
    chain: Vec<(String, ConfigSource)>,
    read_only: bool,
    include_synonyms: bool,
    version: i16,
) -> DescribeConfigsResourceResult {
    let (value, source) = chain[0].clone();
    let synonyms = if include_synonyms {
        chain
            .iter()
            .map(|(v, src)| {
                DescribeConfigsSynonym::default()
                    .with_name(s(name.clone()))
                    .with_value(Some(s(v.clone())))
                    .with_source(src.kafka_code())
            })
            .collect()
    } else {
        vec![]
    };
    let ty = if version >= 3 {
        broker_config_type(&name, &value).kafka_code()
    } else {
        0
    };
    DescribeConfigsResourceResult::default()
        .with_config_type(ty)
        .with_name(s(name))
        .with_value(Some(s(value)))
        .with_read_only(read_only)
        .with_config_source(source.kafka_code())
        .with_is_sensitive(false)
        .with_synonyms(synonyms)
}

pub async fn handle(
    b: Arc<Broker>,
    ctx: RequestContext,
    req: DescribeConfigsRequest,
) -> Option<DescribeConfigsResponse> {
    let img = b.cache.image();
    let mut results = Vec::new();
    for r in &req.resources {
        let wanted = |name: &str| {
            r.configuration_keys
                .as_ref()
                .is_none_or(|keys| keys.iter().any(|k| k.as_str() == name))
        };
        let base = DescribeConfigsResult::default()
            .with_resource_type(r.resource_type)
            .with_resource_name(r.resource_name.clone());
        let result = match r.resource_type {
            TOPIC => {
                if img.topic_by_name(&r.resource_name).is_none() {
                    base.with_error_code(ResponseError::UnknownTopicOrPartition.code())
                        .with_error_message(Some(s(format!(
                            "Topic {} does not exist",
                            r.resource_name.as_str()
                        ))))
                } else {
                    let configs = admin::topic_configs(&b, &img.topic_configs(&r.resource_name))
                        .into_iter()
                        .filter(|c| wanted(&c.name))
                        .map(|c| {
                            let synonyms = if req.include_synonyms {
                                c.synonyms
                                    .iter()
                                    .map(|x| {
                                        DescribeConfigsSynonym::default()
                                            .with_name(s(x.name.clone()))
                                            .with_value(Some(s(x.value.clone())))
                                            .with_source(x.source.kafka_code())
                                    })
                                    .collect()
                            } else {
                                vec![]
                            };
                            DescribeConfigsResourceResult::default()
                                .with_name(s(c.name))
                                .with_value(Some(s(c.value)))
                                .with_read_only(c.read_only)
                                .with_config_source(c.source.kafka_code())
                                .with_is_sensitive(false)
                                .with_synonyms(synonyms)
                                .with_config_type(if ctx.api_version >= 3 {
                                    c.ty.kafka_code()
                                } else {
                                    0
                                })
                        })
                        .collect();
                    base.with_configs(configs)
                }
            }
            BROKER => {
                let name = r.resource_name.as_str();
                if !name.is_empty() && name != b.node_id.to_string() {
                    base.with_error_code(ResponseError::InvalidRequest.code())
                        .with_error_message(Some(s(format!(
                        "Unexpected broker id, expected {} or empty string, but received {name}",
                        b.node_id
                    ))))
                } else if name.is_empty() {
                    // The cluster-wide dynamic defaults (`--entity-default`).
                    let configs = img
                        .cluster_configs()
                        .into_iter()
                        .filter(|(k, _)| wanted(k))
                        .map(|(k, v)| {
                            let chain = vec![(v, ConfigSource::DynamicDefaultBroker)];
                            broker_entry(k, chain, false, req.include_synonyms, ctx.api_version)
                        })
                        .collect();
                    base.with_configs(configs)
                } else {
                    // Kafka's order: this broker's dynamic configs, the cluster-wide
                    // ones, the node's static setting, the default.
                    let mut chains: BTreeMap<String, Vec<(String, ConfigSource)>> = BTreeMap::new();
                    for (k, v, explicit) in b.config.describe() {
                        let own = if explicit {
                            ConfigSource::StaticBroker
                        } else {
                            ConfigSource::Default
                        };
                        chains.entry(k).or_default().push((v, own));
                    }
                    for (layer, source) in [
                        (img.cluster_configs(), ConfigSource::DynamicDefaultBroker),
                        (img.broker_configs(b.node_id), ConfigSource::DynamicBroker),
                    ] {
                        for (k, v) in layer {
                            chains.entry(k).or_default().insert(0, (v, source));
                        }
                    }
                    let configs = chains
                        .into_iter()
                        .filter(|(k, _)| wanted(k))
                        .map(|(k, chain)| {
                            let read_only = !broker_config::is_dynamic(&k);
                            broker_entry(k, chain, read_only, req.include_synonyms, ctx.api_version)
                        })
                        .collect();
                    base.with_configs(configs)
                }
            }
            GROUP => {
                if r.resource_name.is_empty() {
                    base.with_error_code(ResponseError::InvalidRequest.code())
                        .with_error_message(Some(s("Group name must not be empty")))
                } else {
                    // KIP-848 group configs: the group's own value, else the broker's.
                    let own = img.group_configs(&r.resource_name);
                    let configs = broker_config::GROUP_CONFIGS
                        .iter()
                        .filter(|d| wanted(d.name))
                        .map(|d| {
                            let (v, source) = match own.get(d.name) {
                                Some(v) => (v.clone(), ConfigSource::GroupConfig),
                                None => (
                                    b.config.known::<i64>(d.broker_default).to_string(),
                                    ConfigSource::Default,
                                ),
                            };
                            let synonyms = if req.include_synonyms {
                                vec![DescribeConfigsSynonym::default()
                                    .with_name(s(d.name))
                                    .with_value(Some(s(v.clone())))
                                    .with_source(source.kafka_code())]
                            } else {
                                vec![]
                            };
                            DescribeConfigsResourceResult::default()
                                .with_config_type(if ctx.api_version >= 3 {
                                    ConfigType::Int.kafka_code()
                                } else {
                                    0
                                })
                                .with_name(s(d.name))
                                .with_value(Some(s(v)))
                                .with_read_only(false)
                                .with_config_source(source.kafka_code())
                                .with_is_sensitive(false)
                                .with_synonyms(synonyms)
                        })
                        .collect();
                    base.with_configs(configs)
                }
            }
            BROKER_LOGGER => base,
            other => base
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_error_message(Some(s(format!("Unsupported resource type {other}")))),
        };
        results.push(result);
    }
    Some(DescribeConfigsResponse::default().with_results(results))
}

fn broker_config_type(name: &str, value: &str) -> ConfigType {
    if let Some(def) = TOPIC_CONFIGS
        .iter()
        .find(|d| d.synonyms.iter().any(|s| s.name == name))
    {
        return def.ty;
    }
    if value == "true" || value == "false" {
        ConfigType::Boolean
    } else if value.parse::<i32>().is_ok() {
        ConfigType::Int
    } else if value.parse::<i64>().is_ok() {
        ConfigType::Long
    } else if name.ends_with("listeners") || name == "process.roles" || name == "log.dirs" {
        ConfigType::List
    } else {
        ConfigType::String
    }
}

//! FindCoordinator. A group's coordinator is the leader of its `__consumer_offsets`
//! partition (`abs(hashCode(group)) % offsets.topic.num.partitions`), a transactional
//! id's the leader of its `__transaction_state` partition (the same hash over
//! `transaction.state.log.num.partitions`); each topic is created on first use as Kafka
//! does. (The API is advertised from v0: librdkafka enables LZ4 only when the broker
//! lists FindCoordinator v0.)

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use strom_proto::controller::{ConfigEntry, CreatableTopic};

use super::RequestContext;
use crate::admin;
use crate::broker::Broker;
use crate::coordinator::partition_for;
use crate::group::OFFSETS_TOPIC;
use crate::txn::store::TXN_TOPIC;

type Found = Result<(i32, String, i32), (i16, String)>;

pub async fn handle(
    b: Arc<Broker>,
    ctx: RequestContext,
    req: FindCoordinatorRequest,
) -> Option<FindCoordinatorResponse> {
    let keys: Vec<String> = if ctx.api_version >= 4 {
        req.coordinator_keys.iter().map(|k| k.to_string()).collect()
    } else {
        vec![req.key.to_string()]
    };
    let mut found = Vec::with_capacity(keys.len());
    for k in &keys {
        let f: Found = match req.key_type {
            0 => coordinator(&b, &offsets_topic(&b), k, &ctx.listener).await,
            1 if k.is_empty() => Err((
                ResponseError::InvalidRequest.code(),
                "an empty transactional id".to_string(),
            )),
            1 => coordinator(&b, &txn_topic(&b), k, &ctx.listener).await,
            _ => Err((
                ResponseError::InvalidRequest.code(),
                format!("unknown key type {}", req.key_type),
            )),
        };
        found.push(f);
    }
    let resp = FindCoordinatorResponse::default();
    if ctx.api_version >= 4 {
        let coordinators = keys
            .into_iter()
            .zip(found)
            .map(|(k, f)| {
                let c = Coordinator::default().with_key(StrBytes::from_string(k));
                match f {
                    Ok((id, host, port)) => c
                        .with_node_id(BrokerId(id))
                        .with_host(StrBytes::from_string(host))
                        .with_port(port),
                    Err((code, msg)) => c
                        .with_node_id(BrokerId(-1))
                        .with_port(-1)
                        .with_error_code(code)
                        .with_error_message(Some(StrBytes::from_string(msg))),
                }
            })
            .collect();
        return Some(resp.with_coordinators(coordinators));
    }
    let resp = match found.into_iter().next().expect("one key") {
        Ok((id, host, port)) => resp
            .with_node_id(BrokerId(id))
            .with_host(StrBytes::from_string(host))
            .with_port(port),
        Err((code, msg)) => {
            let r = resp
                .with_error_code(code)
                .with_node_id(BrokerId(-1))
                .with_port(-1);
            if ctx.api_version >= 1 {
                r.with_error_message(Some(StrBytes::from_string(msg)))
            } else {
                r
            }
        }
    };
    Some(resp)
}

/// An internal topic whose partitions' leaders coordinate keys, and how it is created.
struct InternalTopic {
    name: &'static str,
    partitions: i32,
    /// The wanted replication factor (capped at the brokers that are up).
    replication_factor: i32,
    configs: Vec<(&'static str, String)>,
}

fn offsets_topic(b: &Broker) -> InternalTopic {
    InternalTopic {
        name: OFFSETS_TOPIC,
        partitions: b.groups.cfg.offsets_partitions,
        replication_factor: b.config.offsets_topic_replication_factor,
        configs: vec![
            ("cleanup.policy", "compact".into()),
            ("segment.bytes", "104857600".into()),
            ("compression.type", "producer".into()),
        ],
    }
}

/// Kafka's `__transaction_state`: compacted, `transaction.state.log.*` settings.
fn txn_topic(b: &Broker) -> InternalTopic {
    InternalTopic {
        name: TXN_TOPIC,
        partitions: b.txns.cfg.partitions,
        replication_factor: b.config.known("transaction.state.log.replication.factor"),
        configs: vec![
            ("cleanup.policy", "compact".into()),
            (
                "segment.bytes",
                b.config
                    .known::<String>("transaction.state.log.segment.bytes"),
            ),
            (
                "min.insync.replicas",
                b.config.known::<String>("transaction.state.log.min.isr"),
            ),
            ("compression.type", "producer".into()),
        ],
    }
}

/// Creates the internal topic if needed and finds the leader of the key's partition.
async fn coordinator(b: &Broker, topic: &InternalTopic, key: &str, listener: &str) -> Found {
    let unavailable = |m: &str| Err((ResponseError::CoordinatorNotAvailable.code(), m.to_string()));
    let mut img = b.cache.image();
    if img.topic_by_name(topic.name).is_none() {
        let live = img.unfenced_brokers().len().max(1) as i32;
        let t = CreatableTopic {
            name: topic.name.to_string(),
            num_partitions: topic.partitions,
            replication_factor: topic.replication_factor.clamp(1, live),
            assignments: vec![],
            configs: topic
                .configs
                .iter()
                .map(|(k, v)| ConfigEntry {
                    name: k.to_string(),
                    value: Some(v.clone()),
                })
                .collect(),
        };
        let r = admin::create_topics(b, vec![t], false, Duration::from_secs(10)).await;
        if let Some(e) = r.iter().find(|r| r.error_code != 0 && r.error_code != 36) {
            tracing::warn!(topic = topic.name, code = e.error_code, message = %e.error_message, "creating an internal topic");
            return unavailable("the coordinator's internal topic could not be created");
        }
        img = b.cache.image();
    }
    let p = partition_for(key, topic.partitions);
    let Some(leader) = img
        .topic_by_name(topic.name)
        .and_then(|t| t.partitions.get(&p))
        .map(|x| x.leader)
    else {
        return unavailable("the coordinator's internal topic is not ready");
    };
    if leader < 0 {
        return unavailable("the key's coordinator partition has no leader");
    }
    let Some(reg) = img.brokers.get(&leader).filter(|r| !r.fenced) else {
        return unavailable("the coordinator is not available");
    };
    let ep = reg
        .endpoints
        .iter()
        .find(|e| e.listener == listener)
        .or_else(|| reg.endpoints.first());
    match ep {
        Some(ep) => Ok((leader, ep.host.clone(), ep.port)),
        None => unavailable("the coordinator has no endpoint"),
    }
}

//! FindCoordinator. A group's coordinator is the leader of its `__consumer_offsets`
//! partition (`abs(hashCode(group)) % offsets.topic.num.partitions`), the topic being
//! created on first use as Kafka does. Transaction coordinators do not exist yet:
//! transactional ids are answered COORDINATOR_NOT_AVAILABLE. (The API is advertised from
//! v0: librdkafka enables LZ4 only when the broker lists FindCoordinator v0.)

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
use crate::group::OFFSETS_TOPIC;

const NO_TXN: &str = "transactions are not supported by this strom version yet";

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
        let f: Found = if req.key_type == 1 {
            Err((
                ResponseError::CoordinatorNotAvailable.code(),
                NO_TXN.to_string(),
            ))
        } else if req.key_type != 0 {
            Err((
                ResponseError::InvalidRequest.code(),
                format!("unknown key type {}", req.key_type),
            ))
        } else {
            group_coordinator(&b, k, &ctx.listener).await
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

/// Creates `__consumer_offsets` if needed and finds the leader of the group's partition.
async fn group_coordinator(b: &Broker, group: &str, listener: &str) -> Found {
    let unavailable = |m: &str| Err((ResponseError::CoordinatorNotAvailable.code(), m.to_string()));
    let mut img = b.cache.image();
    if img.topic_by_name(OFFSETS_TOPIC).is_none() {
        // offsets.topic.replication.factor, capped at the brokers that are up.
        let live = img.unfenced_brokers().len().max(1) as i32;
        let rf = b.config.offsets_topic_replication_factor.clamp(1, live);
        let t = CreatableTopic {
            name: OFFSETS_TOPIC.to_string(),
            num_partitions: b.groups.cfg.offsets_partitions,
            replication_factor: rf,
            assignments: vec![],
            configs: vec![
                ConfigEntry {
                    name: "cleanup.policy".into(),
                    value: Some("compact".into()),
                },
                ConfigEntry {
                    name: "segment.bytes".into(),
                    value: Some("104857600".into()),
                },
                ConfigEntry {
                    name: "compression.type".into(),
                    value: Some("producer".into()),
                },
            ],
        };
        let r = admin::create_topics(b, vec![t], false, Duration::from_secs(10)).await;
        if let Some(e) = r.iter().find(|r| r.error_code != 0 && r.error_code != 36) {
            tracing::warn!(code = e.error_code, message = %e.error_message, "creating __consumer_offsets");
            return unavailable("the offsets topic could not be created");
        }
        img = b.cache.image();
    }
    let p = b.groups.partition_for(group);
    let Some(leader) = img
        .topic_by_name(OFFSETS_TOPIC)
        .and_then(|t| t.partitions.get(&p))
        .map(|x| x.leader)
    else {
        return unavailable("the offsets topic is not ready");
    };
    if leader < 0 {
        return unavailable("the group's offsets partition has no leader");
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

//! Metadata: brokers, cluster id, a live broker as controller id (as KRaft does), and
//! topics with partitions, leaders, epochs, replicas and ISR; topics named by id (v10+);
//! auto-creation when `auto.create.topics.enable` and the client allow it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use strom_controller::metadata::{MetadataImage, TopicImage};
use strom_proto::controller::CreatableTopic;
use uuid::Uuid;

use super::RequestContext;
use crate::admin;
use crate::broker::Broker;

/// Every operation allowed (no ACLs): READ..ALTER_CONFIGS bits for topics.
pub const TOPIC_AUTHORIZED_OPERATIONS: i32 = 0b1101_1111_1000;
pub const CLUSTER_AUTHORIZED_OPERATIONS: i32 = 0b111_1111_1010_0000;
const OMITTED: i32 = i32::MIN;

pub async fn handle(
    b: Arc<Broker>,
    ctx: RequestContext,
    req: MetadataRequest,
) -> Option<MetadataResponse> {
    let v = ctx.api_version;
    let mut img = b.cache.image();
    // v0: an empty list means every topic; v1+: null means every topic.
    let all = req.topics.is_none() || (v == 0 && req.topics.as_ref().is_some_and(|t| t.is_empty()));
    let auto_create = b.config.auto_create_topics && (v < 4 || req.allow_auto_topic_creation);

    let mut wanted: Vec<(Option<String>, Uuid)> = Vec::new();
    if !all {
        for t in req.topics.iter().flatten() {
            wanted.push((t.name.as_ref().map(|n| n.0.to_string()), t.topic_id));
        }
    }
    // Auto-create missing topics.
    let mut just_created: BTreeSet<String> = BTreeSet::new();
    if auto_create {
        let missing: Vec<CreatableTopic> = wanted
            .iter()
            .filter_map(|(n, _)| n.clone())
            .filter(|n| img.topic_by_name(n).is_none() && !admin::is_internal(n) && valid_name(n))
            .map(|name| CreatableTopic {
                name,
                num_partitions: -1,
                replication_factor: -1,
                ..Default::default()
            })
            .collect();
        if !missing.is_empty() {
            let results = admin::create_topics(&b, missing, false, Duration::from_secs(5)).await;
            for r in results
                .iter()
                .filter(|r| r.error_code != 0 && r.error_code != 36)
            {
                tracing::info!(topic = %r.name, code = r.error_code, "auto-creation refused");
            }
            // As Kafka does, a topic this request created is answered LEADER_NOT_AVAILABLE:
            // the client asks again a moment later, by when its leaders (other brokers
            // that apply the metadata log on their own) know they lead it. Answering with
            // the leaders at once let a producer's first batch reach a leader that did
            // not know the topic yet, and its retry overtake the next batch.
            just_created = results
                .iter()
                .filter(|r| r.error_code == 0 || r.error_code == 36)
                .map(|r| r.name.clone())
                .collect();
            img = b.cache.image();
        }
    }

    let mut topics = Vec::new();
    if all {
        for t in img.topics.values() {
            topics.push(describe_topic(&img, t, &req, v));
        }
    } else {
        for (name, id) in wanted {
            let found = match &name {
                Some(n) => img.topic_by_name(n),
                None => img.topics.get(&id).map(|t| &**t),
            };
            match found {
                Some(t) if !just_created.contains(&t.name) => {
                    topics.push(describe_topic(&img, t, &req, v))
                }
                _ => {
                    let code = match &name {
                        None => ResponseError::UnknownTopicId.code(),
                        Some(n) if !valid_name(n) => ResponseError::InvalidTopicException.code(),
                        Some(n) if auto_create || just_created.contains(n) => {
                            ResponseError::LeaderNotAvailable.code()
                        }
                        Some(_) => ResponseError::UnknownTopicOrPartition.code(),
                    };
                    let t = MetadataResponseTopic::default()
                        .with_error_code(code)
                        .with_name(Some(TopicName(StrBytes::from_string(
                            name.unwrap_or_default(),
                        ))))
                        .with_topic_authorized_operations(OMITTED);
                    topics.push(if v >= 10 { t.with_topic_id(id) } else { t });
                }
            }
        }
    }

    let mut brokers = broker_entries(&img, &b.cache.listed_brokers(&img), &ctx.listener);
    let controller_id = controller_id_for(&img, b.node_id);
    if v < 1 {
        brokers = brokers.into_iter().map(|b| b.with_rack(None)).collect();
    }
    let mut resp = MetadataResponse::default()
        .with_brokers(brokers)
        .with_topics(topics);
    if v >= 1 {
        resp = resp.with_controller_id(BrokerId(controller_id));
    }
    if v >= 2 {
        resp = resp.with_cluster_id(img.cluster_id.clone().map(StrBytes::from_string));
    }
    if (8..=10).contains(&v) && req.include_cluster_authorized_operations {
        resp = resp.with_cluster_authorized_operations(CLUSTER_AUTHORIZED_OPERATIONS);
    }
    Some(resp)
}

fn valid_name(n: &str) -> bool {
    strom_controller::metadata::decide::validate_topic_name(n).is_ok()
}

/// The broker clients should send controller-bound requests to: this node while it is
/// live (every node forwards to the quorum), else the lowest live broker, else -1.
pub fn controller_id_for(img: &MetadataImage, me: i32) -> i32 {
    match img.brokers.get(&me) {
        Some(x) if !x.fenced => me,
        _ => img.unfenced_brokers().first().copied().unwrap_or(-1),
    }
}

/// The brokers to list (`MetadataCache::listed_brokers`) with their endpoint on
/// `listener`, by id.
pub fn broker_entries(
    img: &MetadataImage,
    listed: &[i32],
    listener: &str,
) -> Vec<MetadataResponseBroker> {
    listed
        .iter()
        .filter_map(|id| img.brokers.get(id))
        .filter_map(|b| {
            let ep = b
                .endpoints
                .iter()
                .find(|e| e.listener == listener)
                .or_else(|| b.endpoints.first())?;
            Some(
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(b.broker_id))
                    .with_host(StrBytes::from_string(ep.host.clone()))
                    .with_port(ep.port)
                    .with_rack(if b.rack.is_empty() {
                        None
                    } else {
                        Some(StrBytes::from_string(b.rack.clone()))
                    }),
            )
        })
        .collect()
}

fn describe_topic(
    img: &MetadataImage,
    t: &TopicImage,
    req: &MetadataRequest,
    v: i16,
) -> MetadataResponseTopic {
    let live = img.unfenced_brokers();
    let partitions = t
        .partitions
        .iter()
        .map(|(&i, p)| {
            let code = if p.leader < 0 {
                ResponseError::LeaderNotAvailable.code()
            } else {
                0
            };
            let mut mp = MetadataResponsePartition::default()
                .with_error_code(code)
                .with_partition_index(i)
                .with_leader_id(BrokerId(p.leader))
                .with_replica_nodes(p.replicas.iter().map(|&r| BrokerId(r)).collect())
                .with_isr_nodes(p.isr.iter().map(|&r| BrokerId(r)).collect());
            if v >= 5 {
                mp = mp.with_offline_replicas(
                    p.replicas
                        .iter()
                        .filter(|r| !live.contains(r))
                        .map(|&r| BrokerId(r))
                        .collect(),
                );
            }
            if v >= 7 {
                mp = mp.with_leader_epoch(p.leader_epoch);
            }
            mp
        })
        .collect();
    let mut mt = MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(t.name.clone()))))
        .with_partitions(partitions);
    if v >= 1 {
        mt = mt.with_is_internal(admin::is_internal(&t.name));
    }
    if v >= 8 && req.include_topic_authorized_operations {
        mt = mt.with_topic_authorized_operations(TOPIC_AUTHORIZED_OPERATIONS);
    }
    if v >= 10 {
        mt = mt.with_topic_id(t.id);
    }
    mt
}

//! The controller's decisions: given the current image and a request, the records that
//! carry it out, or the Kafka error that refuses it. Pure functions (ids and time passed
//! in), so they are tested without a quorum and every controller decides alike.
//!
//! One file per subject: `topics` (create, delete, grow), `configs`, `brokers`
//! (registration, heartbeats, fencing, producer-id blocks) and `partitions` (replica
//! sets, leader election, ISR changes). Nothing here touches the Raft log or the
//! network; `service.rs` commits what these functions return.

pub mod brokers;
pub mod configs;
pub mod partitions;
pub mod topics;

use std::collections::BTreeMap;

pub use brokers::{
    allocate_producer_ids, check_broker_epoch, controlled_shutdown, current_state, fence_broker,
    has_leaderships, next_state, register_broker, transition_records, unfence_broker,
    unregister_broker, BrokerState, Heartbeat, Registration,
};
pub use configs::alter_configs;
pub use partitions::{
    alter_partition, alter_reassignments, balance_leaders, elect_leaders, elect_unclean_leaders,
    list_reassignments, recover_leaderless, Recovery, RecoveryReports, ReplicaLog,
};
pub use topics::{
    create_partitions, create_topics, delete_topics, validate_topic_name,
    MAX_PARTITIONS_PER_REQUEST,
};

/// Cluster-wide defaults the decisions fall back on (Kafka's broker settings).
#[derive(Clone, Debug)]
pub struct Defaults {
    pub num_partitions: i32,
    pub default_replication_factor: i32,
    pub unclean_leader_election: bool,
    /// `min.insync.replicas`, the cluster default (topics may override it).
    pub min_insync_replicas: i32,
    /// Eligible leader replicas (KIP-966); on by default, as in Kafka 4.1+.
    pub elr_enabled: bool,
    pub producer_id_block_size: i64,
    /// The `group.consumer.*` settings that bound and default the dynamic group configs
    /// (KIP-848), as this controller's node has them.
    pub group_settings: BTreeMap<String, i64>,
}

impl Defaults {
    /// A `group.consumer.*` setting: this node's value, else Kafka's default.
    pub fn group_setting(&self, name: &str) -> i64 {
        self.group_settings.get(name).copied().unwrap_or_else(|| {
            strom_common::broker_config::default_of(name)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        })
    }
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            num_partitions: 1,
            default_replication_factor: 1,
            unclean_leader_election: false,
            min_insync_replicas: 1,
            elr_enabled: true,
            producer_id_block_size: 1000,
            group_settings: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Images and requests shared by the decision tests.
    use strom_proto::controller::{CreatableTopic, CreateTopicsRequest, TopicResult};
    use strom_proto::metadata::{
        metadata_record::Record, Endpoint, RegisterBrokerRecord, UnfenceBrokerRecord,
    };
    use uuid::Uuid;

    use super::{create_topics, Defaults};
    use crate::metadata::records::record;
    use crate::metadata::MetadataImage;

    pub fn cluster(n: i32) -> MetadataImage {
        let mut img = MetadataImage::default();
        for b in 1..=n {
            img.apply(
                b as u64,
                &record(Record::RegisterBroker(RegisterBrokerRecord {
                    broker_id: b,
                    broker_epoch: 0,
                    incarnation_id: format!("inc-{b}"),
                    endpoints: vec![Endpoint {
                        listener: "PLAINTEXT".into(),
                        host: "h".into(),
                        port: 1,
                    }],
                    rack: String::new(),
                })),
            );
            img.apply(
                b as u64,
                &record(Record::UnfenceBroker(UnfenceBrokerRecord {
                    broker_id: b,
                    broker_epoch: b as i64,
                })),
            );
        }
        img.offset = n as u64;
        img
    }

    pub fn ids() -> impl FnMut() -> Uuid {
        let mut n = 0u128;
        move || {
            n += 1;
            Uuid::from_u128(n)
        }
    }

    pub fn topic(name: &str, p: i32, rf: i32) -> CreatableTopic {
        CreatableTopic {
            name: name.into(),
            num_partitions: p,
            replication_factor: rf,
            ..Default::default()
        }
    }

    pub fn create(img: &mut MetadataImage, t: CreatableTopic) -> TopicResult {
        let req = CreateTopicsRequest {
            topics: vec![t],
            validate_only: false,
        };
        let mut n = img.topics.len() as u128 + 100;
        let (r, recs) = create_topics(img, &req, &Defaults::default(), || {
            n += 1;
            Uuid::from_u128(n)
        });
        img.apply_batch(img.offset + 1, &recs);
        r.into_iter().next().unwrap()
    }

    /// Sets a topic config directly in the image.
    pub fn set_config(img: &mut MetadataImage, topic: &str, name: &str, value: &str) {
        use strom_proto::metadata::{ConfigRecord, ResourceType};
        img.apply(
            img.offset + 1,
            &record(Record::Config(ConfigRecord {
                resource_type: ResourceType::ResourceTopic as i32,
                resource_name: topic.into(),
                name: name.into(),
                value: Some(value.into()),
            })),
        );
    }

    /// A partition of the image.
    pub fn part(img: &MetadataImage, topic: &str, i: i32) -> crate::metadata::PartitionImage {
        img.topic_by_name(topic).unwrap().partitions[&i].clone()
    }

    /// Applies records as the next batch.
    pub fn apply(img: &mut MetadataImage, recs: &[strom_proto::metadata::MetadataRecord]) {
        let next = img.offset + 1;
        img.apply_batch(next, recs);
    }
}

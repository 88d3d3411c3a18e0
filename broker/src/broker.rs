//! `Broker`: what every request handler can reach — settings, the metadata cache, the
//! hosted partitions, the controller client and the producer-id allocator.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use kafka_protocol::messages::api_versions_response::ApiVersion;

use crate::config::NodeConfig;
use crate::controller_client::ControllerClient;
use crate::group::GroupCoordinator;
use crate::health::Health;
use crate::inter_broker::BrokerPool;
use crate::metadata_cache::MetadataCache;
use crate::metrics::Metrics;
use crate::producer_ids::ProducerIdManager;
use crate::replication::ReplicaManager;
use crate::txn::coordinator::TransactionCoordinator;

pub struct Broker {
    pub config: NodeConfig,
    pub node_id: i32,
    pub cache: Arc<MetadataCache>,
    pub replicas: Arc<ReplicaManager>,
    pub controller: Arc<ControllerClient>,
    pub producer_ids: ProducerIdManager,
    pub groups: Arc<GroupCoordinator>,
    pub txns: Arc<TransactionCoordinator>,
    /// Connections to transaction coordinators for KIP-890 verification.
    pub txn_verifier: BrokerPool,
    pub api_versions: Vec<ApiVersion>,
    /// Incremental fetch sessions (KIP-227).
    pub fetch_sessions: parking_lot::Mutex<crate::fetch_session::FetchSessionCache>,
    /// Shared with the replica fetchers and the ISR sender.
    broker_epoch: Arc<AtomicI64>,
    /// The registration's incarnation id (a random UUID per process start).
    pub incarnation: String,
    pub metrics: Arc<Metrics>,
    /// What `/health/ready` reports (the heartbeat loop keeps it current).
    pub health: Arc<Health>,
}

impl Broker {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: NodeConfig,
        cache: Arc<MetadataCache>,
        replicas: Arc<ReplicaManager>,
        controller: Arc<ControllerClient>,
        groups: Arc<GroupCoordinator>,
        txns: Arc<TransactionCoordinator>,
        api_versions: Vec<ApiVersion>,
        broker_epoch: Arc<AtomicI64>,
        incarnation: String,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
    ) -> Broker {
        let slots = config.fetch_session_slots;
        let txn_verifier = BrokerPool::new(
            "txn-verify",
            config.node_id,
            config.replication_config().inter_broker_listener,
            cache.clone(),
        );
        Broker {
            node_id: config.node_id,
            config,
            cache,
            replicas,
            controller,
            producer_ids: ProducerIdManager::default(),
            groups,
            txns,
            txn_verifier,
            fetch_sessions: parking_lot::Mutex::new(crate::fetch_session::FetchSessionCache::new(
                slots,
            )),
            api_versions,
            broker_epoch,
            incarnation,
            metrics,
            health,
        }
    }

    pub fn broker_epoch(&self) -> i64 {
        self.broker_epoch.load(Ordering::Acquire)
    }

    pub fn set_broker_epoch(&self, e: i64) {
        self.broker_epoch.store(e, Ordering::Release);
    }
}

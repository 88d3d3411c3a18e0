//! Whether a node can take client traffic (`/health/ready`, what a Kubernetes readiness
//! probe or a compose healthcheck calls), from what the node itself observed: its
//! registration with the quorum, the quorum's last heartbeat answer (fenced or not,
//! caught up with the metadata log or not), and how long ago that answer came.
//!
//! A broker is ready when it is registered, serving its Kafka listeners, not stopping,
//! and its last successful heartbeat — younger than `broker.session.timeout.ms` — said
//! it is unfenced and caught up. A broker that cannot reach the quorum for a session
//! timeout is not ready: the quorum fences it by then, and its metadata may be stale.
//! A controller-only node is ready when it knows a quorum leader.
//!
//! A broker is also not ready while one of its replicas is out of the ISR although the
//! partition's leader is up ([`replicas_out_of_sync`]): after a restart, the node says
//! ready only once its followers have caught up and rejoined. That is what a rolling
//! restart (the StatefulSet controller waits for each pod to be ready before it stops
//! the next) needs so as never to take a partition below `min.insync.replicas`. A
//! replica still being added by a reassignment is not waited for.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

#[derive(Debug)]
pub struct Health {
    session_timeout: Duration,
    broker: bool,
    registered: AtomicBool,
    serving: AtomicBool,
    stopping: AtomicBool,
    /// The last successful heartbeat: when, fenced, caught up.
    last_heartbeat: Mutex<Option<(Instant, bool, bool)>>,
    /// Set by the node for a controller-only node: whether it knows a quorum leader.
    quorum_leader_known: AtomicBool,
}

/// The answer to a readiness check: ready, or the reasons not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    pub ready: bool,
    pub reasons: Vec<String>,
}

impl Health {
    pub fn new(broker: bool, session_timeout: Duration) -> Health {
        Health {
            session_timeout,
            broker,
            registered: AtomicBool::new(false),
            serving: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            last_heartbeat: Mutex::new(None),
            quorum_leader_known: AtomicBool::new(false),
        }
    }

    pub fn set_registered(&self, v: bool) {
        self.registered.store(v, Ordering::Release);
    }

    pub fn set_serving(&self) {
        self.serving.store(true, Ordering::Release);
    }

    pub fn set_stopping(&self) {
        self.stopping.store(true, Ordering::Release);
    }

    pub fn set_quorum_leader_known(&self, v: bool) {
        self.quorum_leader_known.store(v, Ordering::Release);
    }

    /// A heartbeat the quorum answered without error.
    pub fn heartbeat(&self, fenced: bool, caught_up: bool) {
        *self.last_heartbeat.lock() = Some((Instant::now(), fenced, caught_up));
    }

    pub fn readiness(&self) -> Readiness {
        self.readiness_at(Instant::now())
    }

    fn readiness_at(&self, now: Instant) -> Readiness {
        let mut reasons = Vec::new();
        if self.stopping.load(Ordering::Acquire) {
            reasons.push("shutting down".to_string());
        }
        if self.broker {
            if !self.registered.load(Ordering::Acquire) {
                reasons.push("not registered with the controller quorum".to_string());
            }
            match *self.last_heartbeat.lock() {
                None => reasons.push("no heartbeat answered by the quorum yet".to_string()),
                Some((at, fenced, caught_up)) => {
                    let age = now.saturating_duration_since(at);
                    if age > self.session_timeout {
                        reasons.push(format!(
                            "the quorum has not answered a heartbeat for {} ms (broker.session.timeout.ms is {})",
                            age.as_millis(),
                            self.session_timeout.as_millis()
                        ));
                    } else {
                        if fenced {
                            reasons.push("fenced by the controller quorum".to_string());
                        }
                        if !caught_up {
                            reasons.push("not caught up with the metadata log".to_string());
                        }
                    }
                }
            }
            if !self.serving.load(Ordering::Acquire) {
                reasons.push("Kafka listeners not serving yet".to_string());
            }
        } else if !self.quorum_leader_known.load(Ordering::Acquire) {
            reasons.push("no known controller quorum leader".to_string());
        }
        Readiness {
            ready: reasons.is_empty(),
            reasons,
        }
    }
}

/// The partitions with a replica on `node` that is out of the ISR while the leader, on
/// another active (registered, unfenced, not shutting down) broker, could take it back: how many, and the
/// first few (`topic-partition`).
pub fn replicas_out_of_sync(
    img: &strom_controller::metadata::MetadataImage,
    node: i32,
) -> (usize, Vec<String>) {
    let live = |b: i32| img.brokers.get(&b).is_some_and(|r| r.is_active());
    let mut count = 0;
    let mut first = Vec::new();
    for t in img.topics.values() {
        for (p, part) in &t.partitions {
            if part.replicas.contains(&node)
                && !part.isr.contains(&node)
                && !part.adding_replicas.contains(&node)
                && part.leader >= 0
                && part.leader != node
                && live(part.leader)
            {
                count += 1;
                if first.len() < 3 {
                    first.push(format!("{}-{p}", t.name));
                }
            }
        }
    }
    (count, first)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[tokio::test]
    async fn a_broker_is_ready_only_registered_serving_unfenced_caught_up_and_heard_from() {
        let h = Health::new(true, Duration::from_secs(9));
        assert_eq!(h.readiness().reasons.len(), 3);
        h.set_registered(true);
        h.heartbeat(true, false);
        h.set_serving();
        let r = h.readiness();
        assert!(!r.ready);
        assert_eq!(
            r.reasons,
            vec![
                "fenced by the controller quorum",
                "not caught up with the metadata log"
            ]
        );
        h.heartbeat(false, true);
        assert!(h.readiness().ready);
        let r = h.readiness_at(Instant::now() + Duration::from_secs(10));
        assert!(!r.ready);
        assert!(
            r.reasons[0].contains("has not answered a heartbeat"),
            "{r:?}"
        );
        h.heartbeat(false, true);
        assert!(h.readiness().ready);
        h.set_stopping();
        assert_eq!(h.readiness().reasons, vec!["shutting down"]);
    }

    #[tokio::test]
    async fn a_controller_only_node_is_ready_when_it_knows_a_leader() {
        let h = Health::new(false, Duration::from_secs(9));
        assert!(!h.readiness().ready);
        h.set_quorum_leader_known(true);
        assert!(h.readiness().ready);
    }

    #[test]
    fn replicas_out_of_the_isr_under_a_live_leader_are_counted() {
        use strom_controller::metadata::{
            BrokerRegistration, MetadataImage, PartitionImage, TopicImage,
        };
        let broker = |id: i32, fenced: bool| BrokerRegistration {
            broker_id: id,
            broker_epoch: 1,
            incarnation_id: String::new(),
            endpoints: Vec::new(),
            rack: String::new(),
            fenced,
            in_controlled_shutdown: false,
        };
        let part = |leader: i32, isr: Vec<i32>, adding: Vec<i32>| PartitionImage {
            replicas: vec![1, 2, 3],
            isr,
            leader,
            adding_replicas: adding,
            ..PartitionImage::default()
        };
        let mut img = MetadataImage::default();
        for (id, fenced) in [(1, false), (2, false), (3, true)] {
            img.brokers.insert(id, broker(id, fenced));
        }
        let id = uuid::Uuid::from_u128(7);
        img.topics.insert(
            id,
            std::sync::Arc::new(TopicImage {
                name: "t".into(),
                id,
                partitions: BTreeMap::from([
                    (0, part(1, vec![1, 2], vec![])), // 3 is out, leader 1 is up
                    (1, part(3, vec![3], vec![])),    // leader 3 is fenced: nothing to wait for
                    (2, part(2, vec![2], vec![3])),   // 3 is being added by a reassignment
                    (3, part(-1, vec![], vec![])),    // no leader
                    (4, part(2, vec![1, 2, 3], vec![])),
                ]),
            }),
        );
        assert_eq!(replicas_out_of_sync(&img, 3), (1, vec!["t-0".to_string()]));
        assert_eq!(replicas_out_of_sync(&img, 2), (0, vec![]));
        // Node 1 is out of partition 1's ISR, but its leader (3) is fenced.
        assert_eq!(replicas_out_of_sync(&img, 1).0, 1); // partition 2: leader 2 is up
    }
}

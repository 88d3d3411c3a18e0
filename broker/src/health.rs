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

#[cfg(test)]
mod tests {
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
}

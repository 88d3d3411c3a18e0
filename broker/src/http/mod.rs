//! The admin listener (`admin.listener`, HTTP): Prometheus metrics at `/metrics`,
//! `/health/live` and `/health/ready` for probes, JSON for scripts at `/v1/cluster`,
//! `/v1/topics` and `/v1/groups` (and the console's: see [`api`]), and the web console at
//! `/`.
//!
//! It comes up before the node registers, so a probe sees a live node that is not ready
//! yet; the broker and the controller are attached once they exist. What it reports
//! about the cluster comes from this node's metadata image; consumer groups and log end
//! offsets come from the cluster itself, through a Kafka client on this node's own
//! listener (so the answers are the leaders' and coordinators', as a Kafka tool's are).
//! Not built in the simulation, which has no real sockets for hyper.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use strom_client::consumer::{list_offsets_many, OffsetSpec};
use strom_client::{Admin, Client, ClientConfig};
use strom_controller::quorum::Controller;
use tokio::net::TcpListener;

use crate::broker::Broker;
use crate::health::Health;
use crate::metrics::render::{self, GroupView, QuorumView};
use crate::metrics::{process, text, Metrics};
use crate::server::Connections;

mod api;
mod console;

/// What the admin listener reads; the broker parts are set once the node has them.
pub struct AdminState {
    pub node_id: i32,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    pub controller: Option<Arc<Controller>>,
    /// `admin.console.write.enable`: whether the console's changes are allowed.
    pub console_write: bool,
    broker: OnceLock<Arc<Broker>>,
    connections: OnceLock<Arc<Connections>>,
    /// A client of this node's own Kafka listener (connected on first use).
    client_config: OnceLock<ClientConfig>,
    client: tokio::sync::OnceCell<Client>,
}

impl AdminState {
    pub fn new(
        node_id: i32,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
        controller: Option<Arc<Controller>>,
        console_write: bool,
    ) -> Arc<AdminState> {
        Arc::new(AdminState {
            node_id,
            metrics,
            health,
            controller,
            console_write,
            broker: OnceLock::new(),
            connections: OnceLock::new(),
            client_config: OnceLock::new(),
            client: tokio::sync::OnceCell::new(),
        })
    }

    /// The broker is serving on `bootstrap` (its own Kafka listener).
    pub fn attach_broker(&self, broker: Arc<Broker>, conns: Arc<Connections>, bootstrap: String) {
        let _ = self.broker.set(broker);
        let _ = self.connections.set(conns);
        let mut cfg = ClientConfig::new([bootstrap])
            .client_id(format!("strom-admin-{}", self.node_id))
            .request_timeout(Duration::from_secs(5));
        // Looking at a topic that does not exist must not create it.
        cfg.allow_auto_topic_creation = false;
        let _ = self.client_config.set(cfg);
    }

    /// The client of this node's Kafka listener, once the broker serves.
    async fn client(&self) -> Option<&Client> {
        let cfg = self.client_config.get()?;
        self.client
            .get_or_try_init(|| Client::connect(cfg.clone()))
            .await
            .map_err(|e| tracing::debug!(error = %e, "admin listener: no client"))
            .ok()
    }

    fn readiness(&self) -> crate::health::Readiness {
        if let Some(c) = &self.controller {
            self.health.set_quorum_leader_known(c.leader().is_some());
        }
        let mut r = self.health.readiness();
        if let Some(b) = self.broker.get() {
            let (n, first) = crate::health::replicas_out_of_sync(&b.cache.image(), self.node_id);
            if n > 0 {
                r.ready = false;
                r.reasons.push(format!(
                    "{n} replicas here are not back in their ISR yet ({}{})",
                    first.join(", "),
                    if n > first.len() { ", …" } else { "" }
                ));
            }
        }
        r
    }
}

/// Binds `addr` (fails the node's start when it cannot, as a Kafka listener does).
pub async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves until the task is dropped.
pub async fn serve(listener: TcpListener, state: Arc<AdminState>) {
    let app = Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/v1/cluster", get(cluster))
        .route("/v1/topics", get(topics).post(api::create_topic))
        .route(
            "/v1/topics/{name}",
            axum::routing::delete(api::delete_topic),
        )
        .route("/v1/topics/{name}/messages", get(api::messages))
        .route(
            "/v1/topics/{name}/configs",
            get(api::topic_configs).post(api::alter_topic_configs),
        )
        .route("/v1/groups", get(groups))
        .route("/v1/groups/{id}/reset", post(api::reset_offsets))
        .route("/", get(console::index))
        .route("/console/app.js", get(console::app_js))
        .route("/console/app.css", get(console::app_css))
        .with_state(state);
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "admin listener failed");
    }
}

pub fn local_addr(l: &TcpListener) -> Option<SocketAddr> {
    l.local_addr().ok()
}

type S = State<Arc<AdminState>>;

async fn live(State(s): S) -> Json<Value> {
    Json(json!({ "status": "live", "node_id": s.node_id }))
}

async fn ready(State(s): S) -> Response {
    let r = s.readiness();
    let status = if r.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({ "ready": r.ready, "node_id": s.node_id, "reasons": r.reasons });
    (status, Json(body)).into_response()
}

async fn metrics(State(s): S) -> Response {
    let broker = s.broker.get().cloned();
    let groups = match &broker {
        Some(b) => local_groups(b).await,
        None => Vec::new(),
    };
    let log_ends = match s.client().await {
        Some(c) if !groups.is_empty() => {
            let parts: Vec<(String, i32)> = groups
                .iter()
                .flat_map(|g| g.offsets.keys().cloned())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            tokio::time::timeout(
                Duration::from_secs(5),
                list_offsets_many(c, &parts, OffsetSpec::Latest),
            )
            .await
            .unwrap_or_default()
        }
        _ => BTreeMap::new(),
    };
    let quorum = s.controller.as_ref().map(|c| quorum_view(c));
    let ready = s.readiness().ready;
    let page = render::render(&render::Inputs {
        node_id: s.node_id,
        metrics: &s.metrics,
        broker: broker.as_deref(),
        open_connections: s.connections.get().map(|c| c.count()),
        quorum,
        groups: &groups,
        log_ends: &log_ends,
        ready,
        process: process::read(),
    });
    ([(header::CONTENT_TYPE, text::CONTENT_TYPE)], page).into_response()
}

/// The groups this node coordinates, with their committed offsets.
pub async fn local_groups(b: &Broker) -> Vec<GroupView> {
    use crate::group::coordinator::GroupKind;
    let mut out = Vec::new();
    for g in b.groups.all_groups() {
        let e = g.lock().await;
        out.push(GroupView {
            id: e.id.clone(),
            state: e.state_name(),
            kind: e.type_name(),
            protocol_type: e.protocol_type(),
            members: match &e.kind {
                GroupKind::Classic(c) => c.members.len(),
                GroupKind::Consumer(c) => c.members.len(),
            },
            offsets: e
                .offsets
                .iter()
                .map(|(k, v)| (k.clone(), v.offset))
                .collect(),
        });
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

fn quorum_view(c: &Controller) -> QuorumView {
    use openraft::ServerState;
    let m = c.raft().metrics().borrow().clone();
    QuorumView {
        role: match m.state {
            ServerState::Leader => "leader",
            ServerState::Follower => "follower",
            ServerState::Candidate => "candidate",
            ServerState::Learner => "learner",
            ServerState::Shutdown => "shutdown",
        },
        term: m.current_term,
        leader: m.current_leader,
        last_log_index: m.last_log_index,
        last_applied_index: m.last_applied.map(|l| l.index),
        voters: m.membership_config.membership().voter_ids().count(),
    }
}

async fn cluster(State(s): S) -> Json<Value> {
    let r = s.readiness();
    let mut out = json!({
        "node_id": s.node_id,
        "ready": r.ready,
        "not_ready_because": r.reasons,
        "console_write_enabled": s.console_write,
    });
    if let Some(c) = &s.controller {
        let q = quorum_view(c);
        out["quorum"] = json!({
            "role": q.role,
            "term": q.term,
            "leader": q.leader,
            "voters": q.voters,
            "last_log_index": q.last_log_index,
            "last_applied_index": q.last_applied_index,
        });
    }
    if let Some(b) = s.broker.get() {
        let img = b.cache.image();
        out["cluster_id"] = json!(img.cluster_id);
        out["metadata_offset"] = json!(b.cache.applied());
        out["brokers"] = img
            .brokers
            .values()
            .map(|r| {
                json!({
                    "id": r.broker_id,
                    "epoch": r.broker_epoch,
                    "rack": (!r.rack.is_empty()).then_some(&r.rack),
                    "fenced": r.fenced,
                    "in_controlled_shutdown": r.in_controlled_shutdown,
                    "endpoints": r.endpoints.iter().map(|e| json!({
                        "listener": e.listener, "host": e.host, "port": e.port,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let (mut partitions, mut offline, mut under) = (0, 0, 0);
        for t in img.topics.values() {
            for p in t.partitions.values() {
                partitions += 1;
                offline += (p.leader < 0) as usize;
                under += (p.isr.len() < p.replicas.len()) as usize;
            }
        }
        out["topics"] = json!(img.topics.len());
        out["partitions"] = json!(partitions);
        out["offline_partitions"] = json!(offline);
        out["under_replicated_partitions"] = json!(under);
    }
    Json(out)
}

#[derive(Deserialize)]
struct TopicsQuery {
    /// Only topics whose name contains this.
    q: Option<String>,
    /// One topic, with its partitions.
    name: Option<String>,
    #[serde(default)]
    offset: usize,
    limit: Option<usize>,
    /// Include internal topics (`__consumer_offsets`, `__transaction_state`).
    #[serde(default)]
    internal: bool,
    /// Add each topic's records, log end offset sum and size (asks the leaders).
    #[serde(default)]
    stats: bool,
}

async fn topics(State(s): S, Query(q): Query<TopicsQuery>) -> Response {
    let Some(b) = s.broker.get() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": "this node has no broker (yet)"})),
        )
            .into_response();
    };
    let img = b.cache.image();
    let matching: Vec<_> = img
        .topics
        .values()
        .filter(|t| q.internal || !crate::admin::is_internal(&t.name))
        .filter(|t| q.name.as_ref().is_none_or(|n| &t.name == n))
        .filter(|t| q.q.as_ref().is_none_or(|f| t.name.contains(f.as_str())))
        .collect();
    let mut sorted = matching;
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let total = sorted.len();
    let limit = q.limit.unwrap_or(100).min(1000);
    let page: Vec<_> = sorted.into_iter().skip(q.offset).take(limit).collect();
    let detail = q.name.is_some();
    let client = s.client().await;
    let ends = match (detail || q.stats, client) {
        (true, Some(c)) => {
            let parts: Vec<(String, i32)> = page
                .iter()
                .flat_map(|t| t.partitions.keys().map(|&p| (t.name.clone(), p)))
                .collect();
            let (start, end) = tokio::join!(
                list_offsets_many(c, &parts, OffsetSpec::Earliest),
                list_offsets_many(c, &parts, OffsetSpec::Latest)
            );
            Some((start, end))
        }
        _ => None,
    };
    // The size of each partition's leader replica (DescribeLogDirs to every broker).
    let sizes: BTreeMap<(String, i32), i64> = match (q.stats, client) {
        (true, Some(c)) => match Admin::new(c.clone()).describe_log_dirs().await {
            Ok(dirs) => dirs
                .into_iter()
                .flat_map(|d| d.partitions)
                .filter(|p| {
                    img.topic_by_name(&p.topic)
                        .and_then(|t| t.partitions.get(&p.partition))
                        .is_some_and(|m| m.leader == p.broker)
                })
                .map(|p| ((p.topic, p.partition), p.size))
                .collect(),
            Err(e) => {
                tracing::debug!(error = %e, "admin listener: no log dir sizes");
                BTreeMap::new()
            }
        },
        _ => BTreeMap::new(),
    };
    let items: Vec<Value> = page
        .iter()
        .map(|t| {
            let rf = t
                .partitions
                .values()
                .map(|p| p.replicas.len())
                .max()
                .unwrap_or(0);
            let under = t
                .partitions
                .values()
                .filter(|p| p.isr.len() < p.replicas.len())
                .count();
            let offline = t.partitions.values().filter(|p| p.leader < 0).count();
            let mut v = json!({
                "name": t.name,
                "id": t.id.to_string(),
                "internal": crate::admin::is_internal(&t.name),
                "partitions": t.partitions.len(),
                "replication_factor": rf,
                "under_replicated_partitions": under,
                "offline_partitions": offline,
            });
            if let (true, Some((start, end))) = (q.stats, &ends) {
                let keys: Vec<(String, i32)> =
                    t.partitions.keys().map(|&p| (t.name.clone(), p)).collect();
                let sum = |m: &BTreeMap<(String, i32), i64>| -> i64 {
                    keys.iter().filter_map(|k| m.get(k)).sum()
                };
                v["log_end_offset_sum"] = json!(sum(end));
                v["records"] = json!(sum(end) - sum(start));
                if !sizes.is_empty() {
                    v["size_bytes"] = json!(sum(&sizes));
                }
            }
            if let (true, Some((start, end))) = (detail, &ends) {
                v["partition_detail"] = t
                    .partitions
                    .iter()
                    .map(|(&i, p)| {
                        let k = (t.name.clone(), i);
                        json!({
                            "partition": i,
                            "leader": p.leader,
                            "leader_epoch": p.leader_epoch,
                            "replicas": p.replicas,
                            "isr": p.isr,
                            "log_start_offset": start.get(&k),
                            "log_end_offset": end.get(&k),
                            "size_bytes": sizes.get(&k),
                        })
                    })
                    .collect();
            }
            v
        })
        .collect();
    Json(json!({ "total": total, "offset": q.offset, "topics": items })).into_response()
}

#[derive(Deserialize)]
struct GroupsQuery {
    /// Only this group.
    id: Option<String>,
}

async fn groups(State(s): S, Query(q): Query<GroupsQuery>) -> Response {
    let Some(client) = s.client().await else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": "this node has no broker (yet)"})),
        )
            .into_response();
    };
    let admin = Admin::new(client.clone());
    let listed = match admin.list_groups().await {
        Ok(l) => l,
        Err(e) => {
            return (
                StatusCode::BAD_GATEWAY,
                Json(json!({"error": format!("listing groups: {e}")})),
            )
                .into_response()
        }
    };
    let mut out = Vec::new();
    for g in listed
        .into_iter()
        .filter(|g| q.id.as_ref().is_none_or(|id| &g.group_id == id))
    {
        let desc = admin.describe_group(&g.group_id).await.ok();
        let offsets = admin.group_offsets(&g.group_id).await.unwrap_or_default();
        let parts: Vec<(String, i32)> = offsets.keys().cloned().collect();
        let ends = list_offsets_many(client, &parts, OffsetSpec::Latest).await;
        let mut lag_total = 0i64;
        let partitions: Vec<Value> = offsets
            .iter()
            .map(|((t, p), committed)| {
                let end = ends.get(&(t.clone(), *p)).copied();
                let lag = end.map(|e| (e - committed).max(0));
                lag_total += lag.unwrap_or(0);
                let owner = desc.as_ref().and_then(|d| {
                    d.members
                        .iter()
                        .find(|m| m.assignment.get(t).is_some_and(|ps| ps.contains(p)))
                        .map(|m| m.member_id.clone())
                });
                json!({
                    "topic": t, "partition": p, "committed_offset": committed,
                    "log_end_offset": end, "lag": lag, "member_id": owner,
                })
            })
            .collect();
        out.push(json!({
            "group_id": g.group_id,
            "state": desc.as_ref().map(|d| d.state.clone()).unwrap_or(g.state.clone()),
            "type": g.group_type,
            "protocol_type": g.protocol_type,
            "coordinator": g.coordinator,
            "members": desc.as_ref().map(|d| d.members.iter().map(|m| json!({
                "member_id": m.member_id,
                "group_instance_id": m.group_instance_id,
                "client_id": m.client_id,
                "client_host": m.client_host,
                "assignment": m.assignment,
            })).collect::<Vec<_>>()).unwrap_or_default(),
            "lag": lag_total,
            "partitions": partitions,
        }));
    }
    Json(json!({ "groups": out })).into_response()
}

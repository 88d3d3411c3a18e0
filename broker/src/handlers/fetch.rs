//! Fetch, from consumers and from follower replicas. Stored bytes go into the response
//! as read (no re-encoding), bounded by `partition_max_bytes` and `max_bytes` (the first
//! batch always fits, KIP-74). When fewer than `min_bytes` are ready the request waits,
//! woken by appends and high-watermark moves, for up to `max_wait_ms`.
//!
//! - A follower (`replica_id` / ReplicaState ≥ 0) reads up to the log end; its fetch
//!   offset is its log end, which moves the ISR and the high watermark; a diverging last
//!   fetched epoch gets `diverging_epoch` and no records (KIP-279).
//! - A consumer reads below the high watermark. A new leader whose high watermark is
//!   still below the start of its epoch cannot yet tell what was committed before it led
//!   (KIP-207): the fetch waits for the followers to catch up, and answers
//!   NOT_LEADER_OR_FOLLOWER if they have not by the deadline, so that no client ever sees
//!   the high watermark go back.
//! - NOT_LEADER_OR_FOLLOWER and FENCED_LEADER_EPOCH carry the current leader (KIP-951).
//! - Incremental fetch sessions (KIP-227, `crate::fetch_session`): the session decides
//!   which partitions are read (the request's, or the session's with the request's
//!   changes) and which the answer names.

use std::sync::Arc;
use std::time::Duration;

use futures::future::select_all;
use futures::FutureExt;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint,
    PartitionData,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, ProducerId, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use strom_common::clock::now_ms;
use strom_common::watch;
use strom_controller::metadata::MetadataImage;
use uuid::Uuid;

use super::RequestContext;
use crate::broker::Broker;
use crate::fetch_session::{self, Answered, FetchState, Plan, Planned, TopicKey};
use crate::log::LogOffsets;
use crate::metrics::TopicStats;
use crate::replication::FollowerRead;

pub async fn handle(
    b: Arc<Broker>,
    ctx: RequestContext,
    req: FetchRequest,
) -> Option<FetchResponse> {
    let version = ctx.api_version;
    let uses_topic_ids = version >= 13;
    let privileged = replica_of(&req, version).0 >= 0;
    let key = |name: &TopicName, id: Uuid| {
        if uses_topic_ids {
            TopicKey::Id(id)
        } else {
            TopicKey::Name(name.0.to_string())
        }
    };
    let partitions: Vec<Planned> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(move |fp| Planned {
                topic: key(&t.topic, t.topic_id),
                partition: fp.partition,
                state: FetchState {
                    fetch_offset: fp.fetch_offset,
                    partition_max_bytes: fp.partition_max_bytes,
                    current_leader_epoch: if version >= 9 {
                        fp.current_leader_epoch
                    } else {
                        -1
                    },
                    last_fetched_epoch: if version >= 12 {
                        fp.last_fetched_epoch
                    } else {
                        -1
                    },
                    log_start_offset: fp.log_start_offset,
                },
            })
        })
        .collect();
    let forgotten: Vec<(TopicKey, i32)> = req
        .forgotten_topics_data
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |&p| (key(&t.topic, t.topic_id), p))
        })
        .collect();
    let (session_id, session_epoch) = if version >= 7 {
        (req.session_id, req.session_epoch)
    } else {
        (0, -1)
    };
    let begun = b.fetch_sessions.lock().begin(
        fetch_session::Request {
            session_id,
            session_epoch,
            uses_topic_ids,
            privileged,
            partitions,
            forgotten: &forgotten,
        },
        now_ms(),
    );
    let plan = match begun {
        Ok(p) => p,
        Err(code) => return Some(FetchResponse::default().with_error_code(code)),
    };
    let deadline =
        tokio::time::Instant::now() + Duration::from_millis(req.max_wait_ms.max(0) as u64);
    let round = loop {
        let now = tokio::time::Instant::now();
        let last = now >= deadline;
        let round = read_once(&b, &ctx, &req, &plan.partitions, last).await;
        if round.bytes >= req.min_bytes.max(0) as usize
            || round.had_error
            || last
            || round.watchers.is_empty()
        {
            break round;
        }
        let mut watchers = round.watchers;
        let woke = {
            let changes = select_all(watchers.iter_mut().map(|w| w.changed().boxed()));
            tokio::time::timeout(deadline.saturating_duration_since(now), changes)
                .await
                .map(|(r, _, _)| r.is_ok())
        };
        match woke {
            Ok(true) => {}
            // A log went away (deleted, or the broker is stopping), or the deadline came:
            // one last read so that data that arrived just now is not missed.
            Ok(false) | Err(_) => break read_once(&b, &ctx, &req, &plan.partitions, true).await,
        }
    };
    Some(answer(
        &b,
        version,
        &plan,
        round,
        uses_topic_ids,
        privileged,
    ))
}

/// The (replica id, broker epoch) of a fetch: ≥ 0 for a follower (ReplicaState from v15).
fn replica_of(req: &FetchRequest, version: i16) -> (i32, i64) {
    if version >= 15 {
        (
            req.replica_state.replica_id.0,
            req.replica_state.replica_epoch,
        )
    } else {
        (req.replica_id.0, -1)
    }
}

/// The response: the partitions the session says to name, grouped by topic in order.
fn answer(
    b: &Broker,
    version: i16,
    plan: &Plan,
    round: Round,
    uses_topic_ids: bool,
    privileged: bool,
) -> FetchResponse {
    let answered: Vec<Answered> = round
        .parts
        .iter()
        .map(|(_, _, pd)| Answered {
            error_code: pd.error_code,
            high_watermark: pd.high_watermark,
            log_start: pd.log_start_offset,
            has_records: pd.records.as_ref().is_some_and(|r| !r.is_empty()),
            diverging: pd.diverging_epoch.epoch >= 0 || pd.diverging_epoch.end_offset >= 0,
        })
        .collect();
    let (session_id, include) =
        b.fetch_sessions
            .lock()
            .finish(plan, &answered, uses_topic_ids, privileged, now_ms());
    let mut topics: Vec<FetchableTopicResponse> = Vec::new();
    let mut parts: Vec<Option<_>> = round.parts.into_iter().map(Some).collect();
    let mut codes = Vec::new();
    for i in include {
        let Some((key, name, pd)) = parts[i].take() else {
            continue;
        };
        codes.push(pd.error_code);
        if let (Some(n), Some(records)) = (&name, &pd.records) {
            if !records.is_empty() {
                let stats = b.metrics.topic(n);
                if privileged {
                    TopicStats::add(&stats.replication_bytes_out, records.len() as u64);
                } else {
                    TopicStats::add(&stats.bytes_out, records.len() as u64);
                    TopicStats::add(&stats.records_out, crate::metrics::batch_records(records));
                }
            }
        }
        let same = topics.last().is_some_and(|t| match &key {
            TopicKey::Id(id) => t.topic_id == *id,
            TopicKey::Name(n) => t.topic.0.as_str() == n,
        });
        if !same {
            let mut t = FetchableTopicResponse::default();
            match &key {
                TopicKey::Id(id) => t.topic_id = *id,
                TopicKey::Name(n) => t.topic = TopicName(StrBytes::from_string(n.clone())),
            }
            if !uses_topic_ids {
                t.topic = TopicName(StrBytes::from_string(name.unwrap_or_default()));
            }
            topics.push(t);
        }
        topics.last_mut().expect("pushed above").partitions.push(pd);
    }
    b.metrics.partition_errors(ApiKey::Fetch as i16, codes);
    let resp = FetchResponse::default()
        .with_responses(topics)
        .with_node_endpoints(round.endpoints);
    if version >= 7 {
        resp.with_session_id(session_id)
    } else {
        resp
    }
}

struct Round {
    /// Per planned partition, in order: its key, topic name (if known), and answer.
    parts: Vec<(TopicKey, Option<String>, PartitionData)>,
    endpoints: Vec<NodeEndpoint>,
    bytes: usize,
    watchers: Vec<watch::Receiver<LogOffsets>>,
    had_error: bool,
}

/// The partition data of an error answer, with the KIP-951 leader hint where Kafka
/// gives one.
fn with_error(
    pd: PartitionData,
    code: i16,
    version: i16,
    img: &MetadataImage,
    topic: Option<&str>,
    listener: &str,
    endpoints: &mut Vec<NodeEndpoint>,
) -> PartitionData {
    let mut pd = pd.with_error_code(code);
    let hinted = code == ResponseError::NotLeaderOrFollower.code()
        || code == ResponseError::FencedLeaderEpoch.code();
    if version >= 16 && hinted {
        let current = topic
            .and_then(|t| img.topic_by_name(t))
            .and_then(|t| t.partitions.get(&pd.partition_index));
        if let Some(p) = current {
            pd = pd.with_current_leader(
                LeaderIdAndEpoch::default()
                    .with_leader_id(BrokerId(p.leader))
                    .with_leader_epoch(p.leader_epoch),
            );
            if let Some((host, port, rack)) = super::leader_endpoint(img, p.leader, listener) {
                if !endpoints.iter().any(|e| e.node_id.0 == p.leader) {
                    endpoints.push(
                        NodeEndpoint::default()
                            .with_node_id(BrokerId(p.leader))
                            .with_host(StrBytes::from_string(host))
                            .with_port(port)
                            .with_rack(rack.map(StrBytes::from_string)),
                    );
                }
            }
        }
    }
    pd
}

async fn read_once(
    b: &Broker,
    ctx: &RequestContext,
    req: &FetchRequest,
    planned: &[Planned],
    last: bool,
) -> Round {
    let version = ctx.api_version;
    let (replica_id, broker_epoch) = replica_of(req, version);
    let from_follower = replica_id >= 0;
    let mut remaining = if req.max_bytes <= 0 {
        i32::MAX as usize
    } else {
        req.max_bytes as usize
    };
    if !from_follower {
        // Kafka: a consumer's answer is also bounded by the broker's `fetch.max.bytes`.
        remaining = remaining.min(b.config.fetch_max_bytes);
    }
    let mut total = 0usize;
    let mut watchers = Vec::new();
    let mut had_error = false;
    let mut endpoints = Vec::new();
    let img = b.cache.image();
    let mut parts = Vec::with_capacity(planned.len());
    for pl in planned {
        let fp = &pl.state;
        let pd = PartitionData::default()
            .with_partition_index(pl.partition)
            .with_high_watermark(-1)
            .with_last_stable_offset(-1)
            .with_log_start_offset(-1)
            .with_preferred_read_replica(BrokerId(-1));
        let name = match &pl.topic {
            TopicKey::Id(id) => img.topics.get(id).map(|x| x.name.clone()),
            TopicKey::Name(n) => Some(n.clone()),
        };
        let Some(topic) = name.clone() else {
            had_error = true;
            parts.push((
                pl.topic.clone(),
                None,
                pd.with_error_code(ResponseError::UnknownTopicId.code()),
            ));
            continue;
        };
        let max = (fp.partition_max_bytes.max(0) as usize).min(remaining);
        let mut err = |code: i16, endpoints: &mut Vec<NodeEndpoint>| {
            had_error = true;
            with_error(
                pd.clone(),
                code,
                version,
                &img,
                Some(&topic),
                &ctx.listener,
                endpoints,
            )
        };
        let answer = if from_follower {
            let watcher = b
                .replicas
                .get(&topic, pl.partition)
                .map(|p| p.log.subscribe());
            let read = b
                .replicas
                .read_for_follower(
                    &topic,
                    pl.partition,
                    replica_id,
                    broker_epoch,
                    fp.fetch_offset,
                    fp.last_fetched_epoch,
                    fp.current_leader_epoch,
                    max,
                    total == 0,
                )
                .await;
            match read {
                Err((code, msg)) => {
                    tracing::debug!(%topic, partition = pl.partition, replica_id, code, %msg, "follower fetch refused");
                    err(code, &mut endpoints)
                }
                Ok(FollowerRead::Diverging {
                    epoch,
                    end_offset,
                    high_watermark,
                    log_start,
                }) => {
                    // Answer at once: the follower must truncate first.
                    had_error = true;
                    pd.with_high_watermark(high_watermark)
                        .with_last_stable_offset(high_watermark)
                        .with_log_start_offset(log_start)
                        .with_diverging_epoch(
                            EpochEndOffset::default()
                                .with_epoch(epoch)
                                .with_end_offset(end_offset),
                        )
                        .with_records(Some(bytes::Bytes::new()))
                }
                Ok(FollowerRead::Records {
                    records,
                    high_watermark,
                    log_start,
                }) => {
                    total += records.len();
                    remaining = remaining.saturating_sub(records.len());
                    if let Some(w) = watcher {
                        watchers.push(w);
                    }
                    pd.with_high_watermark(high_watermark)
                        .with_last_stable_offset(high_watermark)
                        .with_log_start_offset(log_start)
                        .with_records(Some(records))
                }
            }
        } else {
            match b.replicas.leader_partition(&img, &topic, pl.partition) {
                Err(code) => err(code, &mut endpoints),
                Ok(p) => {
                    // Subscribe before reading so that an append right after the read
                    // still wakes us.
                    let watcher = p.log.subscribe();
                    // KIP-207: a new leader that has not caught up with its epoch's start
                    // offers nothing yet; wait, and refuse at the deadline.
                    let behind = p
                        .epoch_start_offset()
                        .is_some_and(|s| p.log.offsets().high_watermark < s);
                    if behind && last {
                        tracing::debug!(%topic, partition = pl.partition, "new leader's high watermark still below its epoch start");
                        err(ResponseError::NotLeaderOrFollower.code(), &mut endpoints)
                    } else if behind {
                        watchers.push(watcher);
                        pd.with_records(Some(bytes::Bytes::new()))
                    } else {
                        match p
                            .read_for_consumer(
                                fp.fetch_offset,
                                fp.current_leader_epoch,
                                max,
                                total == 0,
                                req.isolation_level == 1,
                            )
                            .await
                        {
                            Ok(r) => {
                                total += r.records.len();
                                remaining = remaining.saturating_sub(r.records.len());
                                let o = r.offsets;
                                watchers.push(watcher);
                                pd.with_high_watermark(o.high_watermark)
                                    .with_last_stable_offset(o.last_stable)
                                    .with_log_start_offset(if version >= 5 {
                                        o.log_start
                                    } else {
                                        -1
                                    })
                                    .with_aborted_transactions(if req.isolation_level == 1 {
                                        Some(
                                            r.aborted
                                                .iter()
                                                .map(|a| {
                                                    AbortedTransaction::default()
                                                        .with_producer_id(ProducerId(a.producer_id))
                                                        .with_first_offset(a.first_offset)
                                                })
                                                .collect(),
                                        )
                                    } else {
                                        None
                                    })
                                    .with_records(Some(r.records))
                            }
                            Err((code, offsets)) => {
                                let mut d = err(code, &mut endpoints);
                                if let Some(o) = offsets {
                                    d = d
                                        .with_high_watermark(o.high_watermark)
                                        .with_last_stable_offset(o.last_stable)
                                        .with_log_start_offset(if version >= 5 {
                                            o.log_start
                                        } else {
                                            -1
                                        });
                                }
                                d
                            }
                        }
                    }
                }
            }
        };
        parts.push((pl.topic.clone(), name, answer));
    }
    Round {
        parts,
        endpoints,
        bytes: total,
        watchers,
        had_error,
    }
}

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
//! - No fetch sessions yet: `session_id` 0 tells clients to send full requests (KIP-227
//!   allows a broker to decline sessions).

use std::sync::Arc;
use std::time::Duration;

use futures::future::select_all;
use futures::FutureExt;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{
    EpochEndOffset, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint, PartitionData,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse};
use kafka_protocol::protocol::StrBytes;
use strom_common::watch;
use strom_controller::metadata::MetadataImage;

use super::RequestContext;
use crate::broker::Broker;
use crate::log::LogOffsets;
use crate::replication::FollowerRead;

pub async fn handle(
    b: Arc<Broker>,
    ctx: RequestContext,
    req: FetchRequest,
) -> Option<FetchResponse> {
    if req.session_id != 0 || req.session_epoch > 0 {
        return Some(
            FetchResponse::default().with_error_code(ResponseError::FetchSessionIdNotFound.code()),
        );
    }
    let deadline =
        tokio::time::Instant::now() + Duration::from_millis(req.max_wait_ms.max(0) as u64);
    loop {
        let now = tokio::time::Instant::now();
        let last = now >= deadline;
        let round = read_once(&b, &ctx, &req, last).await;
        if round.bytes >= req.min_bytes.max(0) as usize
            || round.had_error
            || last
            || round.watchers.is_empty()
        {
            return Some(round.response);
        }
        let mut watchers = round.watchers;
        let woke = {
            let changes = select_all(watchers.iter_mut().map(|w| w.changed().boxed()));
            tokio::time::timeout(deadline.saturating_duration_since(now), changes)
                .await
                .map(|(r, _, _)| r.is_ok())
        };
        match woke {
            // A partition's log went away (deleted, or the broker is stopping).
            Ok(false) => return Some(read_once(&b, &ctx, &req, true).await.response),
            Ok(true) => {}
            Err(_) => {
                // One last read so that data that arrived just now is not missed.
                return Some(read_once(&b, &ctx, &req, true).await.response);
            }
        }
    }
}

struct Round {
    response: FetchResponse,
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

async fn read_once(b: &Broker, ctx: &RequestContext, req: &FetchRequest, last: bool) -> Round {
    let version = ctx.api_version;
    let (replica_id, broker_epoch) = if version >= 15 {
        (
            req.replica_state.replica_id.0,
            req.replica_state.replica_epoch,
        )
    } else {
        (req.replica_id.0, -1)
    };
    let from_follower = replica_id >= 0;
    let mut remaining = if req.max_bytes <= 0 {
        i32::MAX as usize
    } else {
        req.max_bytes as usize
    };
    let mut total = 0usize;
    let mut watchers = Vec::new();
    let mut had_error = false;
    let mut endpoints = Vec::new();
    let img = b.cache.image();
    let mut responses = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let name = if version >= 13 {
            img.topics.get(&t.topic_id).map(|x| x.name.clone())
        } else {
            Some(t.topic.0.to_string())
        };
        let mut parts = Vec::with_capacity(t.partitions.len());
        for fp in &t.partitions {
            let pd = PartitionData::default()
                .with_partition_index(fp.partition)
                .with_high_watermark(-1)
                .with_last_stable_offset(-1)
                .with_log_start_offset(-1)
                .with_preferred_read_replica(BrokerId(-1));
            let Some(name) = &name else {
                had_error = true;
                parts.push(pd.with_error_code(ResponseError::UnknownTopicId.code()));
                continue;
            };
            let max = (fp.partition_max_bytes.max(0) as usize).min(remaining);
            let current_epoch = if version >= 9 {
                fp.current_leader_epoch
            } else {
                -1
            };
            macro_rules! err {
                ($code:expr) => {{
                    had_error = true;
                    with_error(
                        pd.clone(),
                        $code,
                        version,
                        &img,
                        Some(name),
                        &ctx.listener,
                        &mut endpoints,
                    )
                }};
            }
            if from_follower {
                let last_fetched = if version >= 12 {
                    fp.last_fetched_epoch
                } else {
                    -1
                };
                let watcher = b
                    .replicas
                    .get(name, fp.partition)
                    .map(|p| p.log.subscribe());
                let read = b
                    .replicas
                    .read_for_follower(
                        name,
                        fp.partition,
                        replica_id,
                        broker_epoch,
                        fp.fetch_offset,
                        last_fetched,
                        current_epoch,
                        max,
                        total == 0,
                    )
                    .await;
                match read {
                    Err((code, msg)) => {
                        tracing::debug!(topic = %name, partition = fp.partition, replica_id, code, %msg, "follower fetch refused");
                        parts.push(err!(code));
                    }
                    Ok(FollowerRead::Diverging {
                        epoch,
                        end_offset,
                        high_watermark,
                        log_start,
                    }) => {
                        // Answer at once: the follower must truncate first.
                        had_error = true;
                        parts.push(
                            pd.with_high_watermark(high_watermark)
                                .with_last_stable_offset(high_watermark)
                                .with_log_start_offset(log_start)
                                .with_diverging_epoch(
                                    EpochEndOffset::default()
                                        .with_epoch(epoch)
                                        .with_end_offset(end_offset),
                                )
                                .with_records(Some(bytes::Bytes::new())),
                        );
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
                        parts.push(
                            pd.with_high_watermark(high_watermark)
                                .with_last_stable_offset(high_watermark)
                                .with_log_start_offset(log_start)
                                .with_records(Some(records)),
                        );
                    }
                }
                continue;
            }
            let p = match b.replicas.leader_partition(&img, name, fp.partition) {
                Ok(p) => p,
                Err(code) => {
                    parts.push(err!(code));
                    continue;
                }
            };
            // Subscribe before reading so an append right after the read still wakes us.
            let watcher = p.log.subscribe();
            // KIP-207: a new leader that has not caught up with its epoch's start offers
            // nothing yet; wait, and refuse at the deadline.
            let behind = p
                .epoch_start_offset()
                .is_some_and(|s| p.log.offsets().high_watermark < s);
            if behind {
                if last {
                    tracing::debug!(topic = %name, partition = fp.partition, "new leader's high watermark still below its epoch start");
                    parts.push(err!(ResponseError::NotLeaderOrFollower.code()));
                } else {
                    watchers.push(watcher);
                    parts.push(pd.with_records(Some(bytes::Bytes::new())));
                }
                continue;
            }
            match p
                .read_for_consumer(fp.fetch_offset, current_epoch, max, total == 0)
                .await
            {
                Ok(r) => {
                    total += r.records.len();
                    remaining = remaining.saturating_sub(r.records.len());
                    let o = r.offsets;
                    watchers.push(watcher);
                    parts.push(
                        pd.with_high_watermark(o.high_watermark)
                            .with_last_stable_offset(o.high_watermark)
                            .with_log_start_offset(if version >= 5 { o.log_start } else { -1 })
                            .with_aborted_transactions(if req.isolation_level == 1 {
                                Some(vec![])
                            } else {
                                None
                            })
                            .with_records(Some(r.records)),
                    );
                }
                Err((code, offsets)) => {
                    let mut d = err!(code);
                    if let Some(o) = offsets {
                        d = d
                            .with_high_watermark(o.high_watermark)
                            .with_last_stable_offset(o.high_watermark)
                            .with_log_start_offset(if version >= 5 { o.log_start } else { -1 });
                    }
                    parts.push(d);
                }
            }
        }
        responses.push(
            FetchableTopicResponse::default()
                .with_topic(t.topic.clone())
                .with_topic_id(t.topic_id)
                .with_partitions(parts),
        );
    }
    Round {
        response: FetchResponse::default()
            .with_responses(responses)
            .with_node_endpoints(endpoints),
        bytes: total,
        watchers,
        had_error,
    }
}

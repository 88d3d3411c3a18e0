//! Fetch for consumers: stored bytes go into the response as read (no re-encoding),
//! bounded by the high watermark, `partition_max_bytes` and `max_bytes` (the first batch
//! always fits, KIP-74). When fewer than `min_bytes` are ready the request waits, woken
//! by appends, for up to `max_wait_ms`. No fetch sessions: `session_id` 0 tells clients
//! to send full requests (KIP-227 allows a broker to decline sessions).

use std::sync::Arc;
use std::time::Duration;

use futures::future::select_all;
use futures::FutureExt;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse};
use strom_common::watch;

use super::RequestContext;
use crate::broker::Broker;
use crate::error::log_error_code;
use crate::log::LogOffsets;

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
        let (resp, bytes, mut watchers, had_error) = read_once(&b, &ctx, &req).await;
        let now = tokio::time::Instant::now();
        if bytes >= req.min_bytes.max(0) as usize
            || had_error
            || now >= deadline
            || watchers.is_empty()
        {
            return Some(resp);
        }
        let changes = select_all(watchers.iter_mut().map(|w| w.changed().boxed()));
        if tokio::time::timeout(deadline.saturating_duration_since(now), changes)
            .await
            .is_err()
        {
            // One last read so that data that arrived just now is not missed.
            let (resp, ..) = read_once(&b, &ctx, &req).await;
            return Some(resp);
        }
    }
}

async fn read_once(
    b: &Broker,
    ctx: &RequestContext,
    req: &FetchRequest,
) -> (FetchResponse, usize, Vec<watch::Receiver<LogOffsets>>, bool) {
    let mut remaining = if req.max_bytes <= 0 {
        i32::MAX as usize
    } else {
        req.max_bytes as usize
    };
    let mut total = 0usize;
    let mut watchers = Vec::new();
    let mut had_error = false;
    let img = b.cache.image();
    let mut responses = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let name = if ctx.api_version >= 13 {
            img.topics.get(&t.topic_id).map(|x| x.name.clone())
        } else {
            Some(t.topic.0.to_string())
        };
        let mut parts = Vec::with_capacity(t.partitions.len());
        for fp in &t.partitions {
            let mut pd = PartitionData::default()
                .with_partition_index(fp.partition)
                .with_high_watermark(-1)
                .with_last_stable_offset(-1)
                .with_log_start_offset(-1)
                .with_preferred_read_replica(BrokerId(-1));
            let Some(name) = &name else {
                pd = pd.with_error_code(ResponseError::UnknownTopicId.code());
                had_error = true;
                parts.push(pd);
                continue;
            };
            let p = match b
                .replicas
                .leader_partition(&b.cache.image(), name, fp.partition)
            {
                Ok(p) => p,
                Err(code) => {
                    had_error = true;
                    parts.push(pd.with_error_code(code));
                    continue;
                }
            };
            let state = p.state();
            if fp.current_leader_epoch >= 0 && fp.current_leader_epoch != state.leader_epoch {
                let code = if fp.current_leader_epoch < state.leader_epoch {
                    ResponseError::FencedLeaderEpoch.code()
                } else {
                    ResponseError::UnknownLeaderEpoch.code()
                };
                had_error = true;
                parts.push(pd.with_error_code(code));
                continue;
            }
            let max = (fp.partition_max_bytes.max(0) as usize).min(remaining);
            // Subscribe before reading so an append right after the read still wakes us.
            let watcher = p.log.subscribe();
            match p.log.read(fp.fetch_offset, max, total == 0, false).await {
                Ok(r) => {
                    total += r.records.len();
                    remaining = remaining.saturating_sub(r.records.len());
                    let o = r.offsets;
                    pd = pd
                        .with_high_watermark(o.high_watermark)
                        .with_last_stable_offset(o.high_watermark)
                        .with_log_start_offset(if ctx.api_version >= 5 {
                            o.log_start
                        } else {
                            -1
                        })
                        .with_aborted_transactions(if req.isolation_level == 1 {
                            Some(vec![])
                        } else {
                            None
                        })
                        .with_records(Some(r.records));
                    watchers.push(watcher);
                }
                Err(e) => {
                    let o = p.log.offsets();
                    had_error = true;
                    pd = pd
                        .with_error_code(log_error_code(&e))
                        .with_high_watermark(o.high_watermark)
                        .with_last_stable_offset(o.high_watermark)
                        .with_log_start_offset(if ctx.api_version >= 5 {
                            o.log_start
                        } else {
                            -1
                        });
                }
            }
            parts.push(pd);
        }
        responses.push(
            FetchableTopicResponse::default()
                .with_topic(t.topic.clone())
                .with_topic_id(t.topic_id)
                .with_partitions(parts),
        );
    }
    (
        FetchResponse::default().with_responses(responses),
        total,
        watchers,
        had_error,
    )
}

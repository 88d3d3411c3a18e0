//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3), earliest local (-4,
//! the log start here: there is no tiered storage), latest tiered (-5, KIP-1005) and
//! earliest pending upload (-6, KIP-1023, v11) answered with offset -1 as Kafka answers
//! them for a topic without remote storage, and by timestamp. Consumers see
//! offsets below the high watermark; a follower (`replica_id` ≥ 0) asking for the latest
//! gets the log end. A new leader whose high watermark is still below its epoch's start
//! answers OFFSET_NOT_AVAILABLE (LEADER_NOT_AVAILABLE before v5) for anything but the
//! earliest offset (KIP-207), so the latest offset a client sees never goes back.
//! With `isolation_level` read_committed (v2+) the latest offset is the last stable
//! offset, and a timestamp lookup finds only offsets below it (KIP-98).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::RequestContext;
use crate::broker::Broker;
use crate::error::log_error_code;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;
const EARLIEST_PENDING_UPLOAD: i64 = -6;

pub async fn handle(
    b: Arc<Broker>,
    ctx: RequestContext,
    req: ListOffsetsRequest,
) -> Option<ListOffsetsResponse> {
    let from_replica = req.replica_id.0 >= 0;
    let read_committed = ctx.api_version >= 2 && req.isolation_level == 1;
    let img = b.cache.image();
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let mut parts = Vec::with_capacity(t.partitions.len());
        for lp in &t.partitions {
            let r = ListOffsetsPartitionResponse::default()
                .with_partition_index(lp.partition_index)
                .with_timestamp(-1)
                .with_offset(-1)
                .with_leader_epoch(-1);
            let p = match b
                .replicas
                .leader_partition(&img, &t.name.0, lp.partition_index)
            {
                Ok(p) => p,
                Err(code) => {
                    parts.push(r.with_error_code(code));
                    continue;
                }
            };
            let state = p.state();
            if lp.current_leader_epoch >= 0 && lp.current_leader_epoch != state.leader_epoch {
                let code = if lp.current_leader_epoch < state.leader_epoch {
                    ResponseError::FencedLeaderEpoch.code()
                } else {
                    ResponseError::UnknownLeaderEpoch.code()
                };
                parts.push(r.with_error_code(code));
                continue;
            }
            let o = p.log.offsets();
            let behind =
                !from_replica && p.epoch_start_offset().is_some_and(|s| o.high_watermark < s);
            if behind && !matches!(lp.timestamp, EARLIEST | EARLIEST_LOCAL) {
                let code = if ctx.api_version >= 5 {
                    ResponseError::OffsetNotAvailable.code()
                } else {
                    ResponseError::LeaderNotAvailable.code()
                };
                parts.push(r.with_error_code(code));
                continue;
            }
            let fetchable = if read_committed {
                o.last_stable
            } else {
                o.high_watermark
            };
            let found: Result<Option<(i64, i64)>, i16> = match lp.timestamp {
                LATEST if from_replica => Ok(Some((o.log_end, -1))),
                LATEST => Ok(Some((fetchable, -1))),
                EARLIEST | EARLIEST_LOCAL => Ok(Some((o.log_start, -1))),
                LATEST_TIERED | EARLIEST_PENDING_UPLOAD => Ok(None),
                MAX_TIMESTAMP => p
                    .log
                    .max_timestamp_offset()
                    .await
                    .map_err(|e| log_error_code(&e)),
                ts if ts >= 0 => p
                    .log
                    .offset_for_timestamp(ts)
                    .await
                    .map(|f| f.filter(|(offset, _)| from_replica || *offset < fetchable))
                    .map_err(|e| log_error_code(&e)),
                _ => Err(ResponseError::InvalidRequest.code()),
            };
            let r = match found {
                Ok(Some((offset, ts))) => {
                    let r = r.with_offset(offset).with_timestamp(ts);
                    if ctx.api_version >= 4 {
                        r.with_leader_epoch(state.leader_epoch)
                    } else {
                        r
                    }
                }
                Ok(None) => r,
                Err(code) => r.with_error_code(code),
            };
            parts.push(r);
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(parts),
        );
    }
    Some(ListOffsetsResponse::default().with_topics(topics))
}

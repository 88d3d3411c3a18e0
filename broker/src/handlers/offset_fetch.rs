//! OffsetFetch: committed offsets of one group (v1–v7) or several (v8+), all or the
//! partitions asked for; -1 where nothing was committed. With `require_stable` (v7+,
//! KIP-447) a partition whose offset an open transaction holds is answered
//! UNSTABLE_OFFSET_COMMIT, which the consumer retries.

use std::sync::Arc;

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::broker::Broker;
use crate::group::api::Committed;

pub async fn handle(
    b: Arc<Broker>,
    ctx: RequestContext,
    req: OffsetFetchRequest,
) -> Option<OffsetFetchResponse> {
    let v = ctx.api_version;
    let epoch_field = |e: i32| if v >= 5 { e } else { -1 };
    let stable = v >= 7 && req.require_stable;
    const UNSTABLE: i16 = kafka_protocol::error::ResponseError::UnstableOffsetCommit.code();
    if v >= 8 {
        let mut groups = Vec::new();
        for gr in &req.groups {
            let wanted = gr.topics.as_ref().map(|ts| {
                ts.iter()
                    .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
                    .collect()
            });
            let member = gr.member_id.as_deref().map(|m| (m, gr.member_epoch));
            let res = b.groups.fetch_offsets(&gr.group_id.0, wanted, member).await;
            let g = OffsetFetchResponseGroup::default().with_group_id(gr.group_id.clone());
            groups.push(match res {
                Err(e) => g.with_error_code(e.code()),
                Ok(topics) => g.with_topics(
                    topics
                        .into_iter()
                        .map(|(t, ps)| {
                            OffsetFetchResponseTopics::default()
                                .with_name(TopicName(StrBytes::from_string(t)))
                                .with_partitions(
                                    ps.into_iter()
                                        .map(|c| {
                                            let r = OffsetFetchResponsePartitions::default()
                                                .with_partition_index(c.partition);
                                            if stable && c.unstable {
                                                return r
                                                    .with_committed_offset(-1)
                                                    .with_committed_leader_epoch(-1)
                                                    .with_error_code(UNSTABLE);
                                            }
                                            r.with_committed_offset(c.offset)
                                                .with_committed_leader_epoch(c.leader_epoch)
                                                .with_metadata(Some(StrBytes::from_string(
                                                    c.metadata,
                                                )))
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ),
            });
        }
        return Some(OffsetFetchResponse::default().with_groups(groups));
    }
    let wanted = req.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
            .collect::<Vec<_>>()
    });
    let res = b
        .groups
        .fetch_offsets(&req.group_id.0, wanted.clone(), None)
        .await;
    let (code, topics) = match res {
        Ok(t) => (0, t),
        Err(e) => {
            // v1 has no group error: every asked partition carries it.
            let t = wanted
                .unwrap_or_default()
                .into_iter()
                .map(|(t, ps)| (t, ps.into_iter().map(Committed::none).collect()))
                .collect();
            (e.code(), t)
        }
    };
    let part_code = if v < 2 { code } else { 0 };
    let topics = topics
        .into_iter()
        .map(|(t, ps)| {
            OffsetFetchResponseTopic::default()
                .with_name(TopicName(StrBytes::from_string(t)))
                .with_partitions(
                    ps.into_iter()
                        .map(|c| {
                            let r = OffsetFetchResponsePartition::default()
                                .with_partition_index(c.partition);
                            if stable && c.unstable {
                                return r
                                    .with_committed_offset(-1)
                                    .with_committed_leader_epoch(-1)
                                    .with_error_code(UNSTABLE);
                            }
                            r.with_committed_offset(c.offset)
                                .with_committed_leader_epoch(epoch_field(c.leader_epoch))
                                .with_metadata(Some(StrBytes::from_string(c.metadata)))
                                .with_error_code(part_code)
                        })
                        .collect(),
                )
        })
        .collect();
    let resp = OffsetFetchResponse::default().with_topics(topics);
    Some(if v >= 2 {
        resp.with_error_code(code)
    } else {
        resp
    })
}

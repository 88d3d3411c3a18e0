//! OffsetFetch: committed offsets of one group (v1–v7) or several (v8+), all or the
//! partitions asked for; -1 where nothing was committed.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::broker::Broker;
use crate::group::GroupKind;

/// (topic, partition) -> (offset, leader epoch, metadata), or a group-level error.
type Fetched = Result<BTreeMap<String, Vec<(i32, i64, i32, String)>>, i16>;

async fn fetch(
    b: &Broker,
    group: &str,
    wanted: Option<Vec<(String, Vec<i32>)>>,
    member: Option<(&str, i32)>,
) -> Fetched {
    let g = match b.groups.group(group, false) {
        Err(code) => return Err(code),
        Ok(g) => g,
    };
    let mut out: BTreeMap<String, Vec<(i32, i64, i32, String)>> = BTreeMap::new();
    let Some(g) = g else {
        for (t, ps) in wanted.unwrap_or_default() {
            out.insert(
                t,
                ps.into_iter().map(|p| (p, -1, -1, String::new())).collect(),
            );
        }
        return Ok(out);
    };
    let e = g.lock().await;
    if let (Some((member_id, epoch)), GroupKind::Consumer(c)) = (member, &e.kind) {
        if !member_id.is_empty() {
            c.check_commit(member_id, epoch)?;
        }
    }
    match wanted {
        Some(topics) => {
            for (t, ps) in topics {
                let v = ps
                    .into_iter()
                    .map(|p| match e.offsets.get(&(t.clone(), p)) {
                        Some(o) => (p, o.offset, o.leader_epoch, o.metadata.clone()),
                        None => (p, -1, -1, String::new()),
                    })
                    .collect();
                out.insert(t, v);
            }
        }
        None => {
            for ((t, p), o) in &e.offsets {
                out.entry(t.clone()).or_default().push((
                    *p,
                    o.offset,
                    o.leader_epoch,
                    o.metadata.clone(),
                ));
            }
        }
    }
    Ok(out)
}

pub async fn handle(
    b: Arc<Broker>,
    ctx: RequestContext,
    req: OffsetFetchRequest,
) -> Option<OffsetFetchResponse> {
    let v = ctx.api_version;
    let epoch_field = |e: i32| if v >= 5 { e } else { -1 };
    if v >= 8 {
        let mut groups = Vec::new();
        for gr in &req.groups {
            let wanted = gr.topics.as_ref().map(|ts| {
                ts.iter()
                    .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
                    .collect()
            });
            let member = gr.member_id.as_deref().map(|m| (m, gr.member_epoch));
            let res = fetch(&b, &gr.group_id.0, wanted, member).await;
            let g = OffsetFetchResponseGroup::default().with_group_id(gr.group_id.clone());
            groups.push(match res {
                Err(code) => g.with_error_code(code),
                Ok(topics) => g.with_topics(
                    topics
                        .into_iter()
                        .map(|(t, ps)| {
                            OffsetFetchResponseTopics::default()
                                .with_name(TopicName(StrBytes::from_string(t)))
                                .with_partitions(
                                    ps.into_iter()
                                        .map(|(p, o, le, m)| {
                                            OffsetFetchResponsePartitions::default()
                                                .with_partition_index(p)
                                                .with_committed_offset(o)
                                                .with_committed_leader_epoch(le)
                                                .with_metadata(Some(StrBytes::from_string(m)))
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
    let res = fetch(&b, &req.group_id.0, wanted.clone(), None).await;
    let (code, topics) = match res {
        Ok(t) => (0, t),
        Err(code) => {
            // v1 has no group error: every asked partition carries it.
            let t = wanted
                .unwrap_or_default()
                .into_iter()
                .map(|(t, ps)| {
                    (
                        t,
                        ps.into_iter().map(|p| (p, -1, -1, String::new())).collect(),
                    )
                })
                .collect();
            (code, t)
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
                        .map(|(p, o, le, m)| {
                            OffsetFetchResponsePartition::default()
                                .with_partition_index(p)
                                .with_committed_offset(o)
                                .with_committed_leader_epoch(epoch_field(le))
                                .with_metadata(Some(StrBytes::from_string(m)))
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

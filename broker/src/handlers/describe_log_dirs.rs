//! DescribeLogDirs: this broker's one log directory, the partitions in it with their
//! size in bytes and offset lag (Kafka's `max(HW - LEO, 0)`: always 0 for a current
//! log), and the file system's total and usable bytes (v4).

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::broker::Broker;

pub async fn handle(
    b: Arc<Broker>,
    ctx: RequestContext,
    req: DescribeLogDirsRequest,
) -> Option<DescribeLogDirsResponse> {
    let wanted: Option<BTreeMap<String, Vec<i32>>> = req.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (t.topic.0.to_string(), t.partitions.clone()))
            .collect()
    });
    let mut by_topic: BTreeMap<String, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
    for p in b.replicas.all() {
        if let Some(w) = &wanted {
            if !w.get(&p.topic).is_some_and(|ps| ps.contains(&p.index)) {
                continue;
            }
        }
        let o = p.log.offsets();
        by_topic.entry(p.topic.clone()).or_default().push(
            DescribeLogDirsPartition::default()
                .with_partition_index(p.index)
                .with_partition_size(p.log.size() as i64)
                .with_offset_lag((o.high_watermark - o.log_end).max(0))
                .with_is_future_key(false),
        );
    }
    let dir = b.replicas.log_dir();
    let (total, usable) = b
        .replicas
        .disk_space()
        .map_or((-1, -1), |(t, u)| (t as i64, u as i64));
    let mut result = DescribeLogDirsResult::default()
        .with_log_dir(StrBytes::from_string(dir.display().to_string()))
        .with_topics(
            by_topic
                .into_iter()
                .map(|(t, mut parts)| {
                    parts.sort_by_key(|p| p.partition_index);
                    DescribeLogDirsTopic::default()
                        .with_name(TopicName(StrBytes::from_string(t)))
                        .with_partitions(parts)
                })
                .collect(),
        );
    if ctx.api_version >= 4 {
        result = result.with_total_bytes(total).with_usable_bytes(usable);
    }
    Some(DescribeLogDirsResponse::default().with_results(vec![result]))
}

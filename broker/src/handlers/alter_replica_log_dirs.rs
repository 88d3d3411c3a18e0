//! AlterReplicaLogDirs: strom keeps one log directory per broker, so the only valid
//! move is to that directory: NONE, as Kafka answers a move to the current directory
//! (or, for a partition it does not host yet, records the directory for later). Any
//! other path is LOG_DIR_NOT_FOUND; a partition the metadata does not know,
//! UNKNOWN_TOPIC_OR_PARTITION.

use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::alter_replica_log_dirs_response::{
    AlterReplicaLogDirPartitionResult, AlterReplicaLogDirTopicResult,
};
use kafka_protocol::messages::{AlterReplicaLogDirsRequest, AlterReplicaLogDirsResponse};

use super::RequestContext;
use crate::broker::Broker;

pub async fn handle(
    b: Arc<Broker>,
    _ctx: RequestContext,
    req: AlterReplicaLogDirsRequest,
) -> Option<AlterReplicaLogDirsResponse> {
    let ours = b.replicas.log_dir();
    let img = b.cache.image();
    let mut results = Vec::new();
    for d in &req.dirs {
        let same_dir = std::path::Path::new(d.path.as_str()) == ours;
        for t in &d.topics {
            let parts = t
                .partitions
                .iter()
                .map(|&p| {
                    let code = if !same_dir {
                        E::LogDirNotFound.code()
                    } else if img
                        .topic_by_name(&t.name.0)
                        .is_none_or(|x| !x.partitions.contains_key(&p))
                    {
                        E::UnknownTopicOrPartition.code()
                    } else {
                        0
                    };
                    AlterReplicaLogDirPartitionResult::default()
                        .with_partition_index(p)
                        .with_error_code(code)
                })
                .collect();
            results.push(
                AlterReplicaLogDirTopicResult::default()
                    .with_topic_name(t.name.clone())
                    .with_partitions(parts),
            );
        }
    }
    Some(AlterReplicaLogDirsResponse::default().with_results(results))
}

//! DeleteRecords: raises a partition's log start offset (-1 = the high watermark);
//! segments wholly below it are deleted.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use super::RequestContext;
use crate::admin;
use crate::broker::Broker;
use crate::error::log_error_code;

pub async fn handle(
    b: Arc<Broker>,
    ctx: RequestContext,
    req: DeleteRecordsRequest,
) -> Option<DeleteRecordsResponse> {
    let mut topics = Vec::new();
    for t in &req.topics {
        let mut parts = Vec::new();
        for dp in &t.partitions {
            let r = DeleteRecordsPartitionResult::default()
                .with_partition_index(dp.partition_index)
                .with_low_watermark(-1);
            if admin::is_internal(&t.name.0) {
                // Kafka: "Cannot delete records of internal topic".
                tracing::info!(topic = %t.name.0, client = ?ctx.client_id, "refused to delete records of an internal topic");
                parts.push(r.with_error_code(ResponseError::InvalidTopicException.code()));
                continue;
            }
            let r =
                match b
                    .replicas
                    .leader_partition(&b.cache.image(), &t.name.0, dp.partition_index)
                {
                    Err(code) => r.with_error_code(code),
                    Ok(p) => {
                        let offset = if dp.offset == -1 {
                            p.log.offsets().high_watermark
                        } else {
                            dp.offset
                        };
                        match p.log.delete_records_before(offset).await {
                            Ok(low) => r.with_low_watermark(low),
                            Err(e) => r.with_error_code(log_error_code(&e)),
                        }
                    }
                };
            parts.push(r);
        }
        topics.push(
            DeleteRecordsTopicResult::default()
                .with_name(t.name.clone())
                .with_partitions(parts),
        );
    }
    Some(DeleteRecordsResponse::default().with_topics(topics))
}

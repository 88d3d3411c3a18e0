//! Produce: acks 0 (no answer), 1 (after the leader's append) and all (after the high
//! watermark passes the batch); errors per partition, as Kafka returns them.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::broker::Broker;

pub async fn handle(
    b: Arc<Broker>,
    ctx: RequestContext,
    req: ProduceRequest,
) -> Option<ProduceResponse> {
    let acks = req.acks;
    let timeout = Duration::from_millis(req.timeout_ms.max(0) as u64);
    let valid_acks = matches!(acks, -1..=1);
    let mut responses = Vec::with_capacity(req.topic_data.len());
    for t in &req.topic_data {
        let name = if ctx.api_version >= 13 {
            b.replicas.topic_name(&t.topic_id).unwrap_or_default()
        } else {
            t.name.0.to_string()
        };
        let mut parts = Vec::with_capacity(t.partition_data.len());
        for pd in &t.partition_data {
            let mut r = PartitionProduceResponse::default()
                .with_index(pd.index)
                .with_base_offset(-1)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(-1);
            if !valid_acks {
                r = r.with_error_code(ResponseError::InvalidRequiredAcks.code());
            } else {
                match b
                    .replicas
                    .leader_partition(&b.cache.image(), &name, pd.index)
                {
                    Err(code) => r = r.with_error_code(code),
                    Ok(p) => {
                        let out = p
                            .append_records_to_leader(b.node_id, pd.records.as_ref(), acks, timeout)
                            .await;
                        r = r.with_error_code(out.error_code);
                        if ctx.api_version >= 8 {
                            r = r.with_error_message(out.error_message.map(StrBytes::from_string));
                        }
                        if let Some(i) = out.info {
                            r = r
                                .with_base_offset(i.first_offset)
                                .with_log_append_time_ms(i.log_append_time);
                            if ctx.api_version >= 5 {
                                r = r.with_log_start_offset(i.log_start);
                            }
                        }
                    }
                }
            }
            parts.push(r);
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(t.name.clone())
                .with_topic_id(t.topic_id)
                .with_partition_responses(parts),
        );
    }
    if acks == 0 {
        return None;
    }
    Some(ProduceResponse::default().with_responses(responses))
}

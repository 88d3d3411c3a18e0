//! DeleteTopics, by name (all versions) or id (v6+), forwarded to the quorum and
//! answered once this broker's metadata no longer has the topics.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::RequestContext;
use crate::admin;
use crate::broker::Broker;
use crate::error::controller_status_code;

pub async fn handle(
    b: Arc<Broker>,
    ctx: RequestContext,
    req: DeleteTopicsRequest,
) -> Option<DeleteTopicsResponse> {
    let mut names: Vec<String> = req.topic_names.iter().map(|n| n.0.to_string()).collect();
    let mut ids = Vec::new();
    for t in &req.topics {
        match &t.name {
            Some(n) => names.push(n.0.to_string()),
            None => ids.push(t.topic_id),
        }
    }
    let v = ctx.api_version;
    let result = |name: Option<String>, id: Uuid, code: i16, msg: Option<String>| {
        let name = if v >= 6 {
            name
        } else {
            Some(name.unwrap_or_default())
        };
        let mut r = DeletableTopicResult::default()
            .with_name(name.map(|n| TopicName(StrBytes::from_string(n))))
            .with_error_code(code);
        if v >= 5 {
            r = r.with_error_message(msg.map(StrBytes::from_string));
        }
        if v >= 6 {
            r = r.with_topic_id(id);
        }
        r
    };
    if !b.config.delete_topic_enable {
        let code = ResponseError::TopicDeletionDisabled.code();
        let mut out: Vec<_> = names
            .into_iter()
            .map(|n| result(Some(n), Uuid::nil(), code, None))
            .collect();
        out.extend(ids.into_iter().map(|id| result(None, id, code, None)));
        return Some(DeleteTopicsResponse::default().with_responses(out));
    }
    // Internal topics are the coordinators' state: refused, never forwarded.
    let img = b.cache.image();
    let mut refused = Vec::new();
    let internal_msg = |n: &str| Some(format!("Cannot delete internal topic {n}"));
    let code = ResponseError::InvalidTopicException.code();
    names.retain(|n| {
        let internal = admin::is_internal(n);
        if internal {
            refused.push(result(Some(n.clone()), Uuid::nil(), code, internal_msg(n)));
        }
        !internal
    });
    ids.retain(
        |id| match img.topics.get(id).filter(|t| admin::is_internal(&t.name)) {
            Some(t) => {
                refused.push(result(
                    Some(t.name.clone()),
                    *id,
                    code,
                    internal_msg(&t.name),
                ));
                false
            }
            None => true,
        },
    );
    if !refused.is_empty() {
        tracing::info!(client = ?ctx.client_id, "refused to delete an internal topic");
        if names.is_empty() && ids.is_empty() {
            return Some(DeleteTopicsResponse::default().with_responses(refused));
        }
    }
    let greq = strom_proto::controller::DeleteTopicsRequest {
        names: names.clone(),
        topic_ids: ids
            .iter()
            .map(|id| bytes::Bytes::copy_from_slice(id.as_bytes()))
            .collect(),
    };
    let timeout = Duration::from_millis(req.timeout_ms.clamp(1000, 60_000) as u64);
    let res = b
        .controller
        .call(timeout, |mut c| {
            let r = greq.clone();
            async move { c.delete_topics(r).await }
        })
        .await;
    let out = match res {
        Ok(resp) => {
            if resp.metadata_offset > 0 {
                b.cache.wait_for(resp.metadata_offset, timeout).await;
            }
            resp.topics
                .into_iter()
                .map(|t| {
                    let id = Uuid::from_slice(&t.topic_id).unwrap_or(Uuid::nil());
                    let name = if t.name.is_empty() {
                        None
                    } else {
                        Some(t.name)
                    };
                    let msg = if t.error_code != 0 {
                        Some(t.error_message)
                    } else {
                        None
                    };
                    result(name, id, t.error_code as i16, msg)
                })
                .collect()
        }
        Err(s) => {
            let code = controller_status_code(&s);
            let mut out: Vec<_> = names
                .into_iter()
                .map(|n| result(Some(n), Uuid::nil(), code, None))
                .collect();
            out.extend(ids.into_iter().map(|id| result(None, id, code, None)));
            out
        }
    };
    let mut out = out;
    out.extend(refused);
    Some(DeleteTopicsResponse::default().with_responses(out))
}

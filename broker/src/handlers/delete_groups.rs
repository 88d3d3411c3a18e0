//! DeleteGroups: only groups without members; their offsets and state are deleted
//! (tombstones in `__consumer_offsets`).

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};
use tokio::time::Instant;

use super::RequestContext;
use crate::broker::Broker;
use crate::group::{store, GroupKind};

pub async fn handle(
    b: Arc<Broker>,
    _ctx: RequestContext,
    req: DeleteGroupsRequest,
) -> Option<DeleteGroupsResponse> {
    let mut results = Vec::new();
    for id in &req.groups_names {
        let code = match b.groups.group(&id.0, false) {
            Err(code) => code,
            Ok(None) => E::GroupIdNotFound.code(),
            Ok(Some(g)) => {
                let mut e = g.lock().await;
                if !e.is_empty() {
                    E::NonEmptyGroup.code()
                } else {
                    let mut records: Vec<(Bytes, Option<Bytes>)> = e
                        .offsets
                        .keys()
                        .map(|(t, p)| (store::offset_key(&e.id, t, *p), None))
                        .collect();
                    records.push((store::classic_key(&e.id), None));
                    records.push((store::consumer_key(&e.id), None));
                    match b.groups.write(e.partition, records).await {
                        Ok(()) => {
                            e.offsets.clear();
                            if let GroupKind::Classic(c) = &mut e.kind {
                                c.mark_dead(Instant::now());
                            }
                            b.groups.remove_group(&e.id);
                            0
                        }
                        Err(code) => code,
                    }
                }
            }
        };
        results.push(
            DeletableGroupResult::default()
                .with_group_id(id.clone())
                .with_error_code(code),
        );
    }
    Some(DeleteGroupsResponse::default().with_results(results))
}

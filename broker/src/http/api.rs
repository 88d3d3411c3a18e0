//! The admin listener's JSON endpoints beyond the read-only summaries: a topic's
//! messages, its configs, and the changes the web console makes (create and delete a
//! topic, alter configs, reset a group's offsets). Changes are refused with 403 unless
//! `admin.console.write.enable` is set on the node; they go through this node's own Kafka
//! listener as a Kafka admin client's requests would, so the cluster's answer (an error
//! code included) is what the caller sees.
//!
//! Write endpoints take `application/json` bodies only: a browser cannot send those
//! cross-origin without a CORS preflight, which this listener never grants.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use strom_client::admin::{AlterConfigOp, ConfigResource, NewTopic};
use strom_client::consumer::{
    list_offsets_detail, list_offsets_many, ConsumerRecord, OffsetReset, OffsetSpec,
};
use strom_client::groups::{reset_plan, ResetTo};
use strom_client::{Admin, ClientError, Consumer, ConsumerConfig, StartOffset};

use super::AdminState;

type S = State<Arc<AdminState>>;

/// Most records one messages request returns.
const MAX_MESSAGES: usize = 500;
/// How long a messages request keeps fetching before answering with what it has.
const MESSAGES_DEADLINE: Duration = Duration::from_secs(5);

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

fn client_error(what: &str, e: ClientError) -> Response {
    let status = match &e {
        ClientError::Kafka(k) => match k.name() {
            "UNKNOWN_TOPIC_OR_PARTITION" | "GROUP_ID_NOT_FOUND" => StatusCode::NOT_FOUND,
            "TOPIC_ALREADY_EXISTS" => StatusCode::CONFLICT,
            _ => StatusCode::BAD_REQUEST,
        },
        _ => StatusCode::BAD_GATEWAY,
    };
    error(status, format!("{what}: {e}"))
}

/// The 403 answer, unless the node lets the console write.
fn refuse_write(s: &AdminState) -> Option<Response> {
    (!s.console_write).then(|| {
        error(
            StatusCode::FORBIDDEN,
            "read-only: set admin.console.write.enable=true on this node to allow changes",
        )
    })
}

fn no_broker() -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "this node has no broker (yet)",
    )
}

async fn admin(s: &AdminState) -> Option<Admin> {
    s.client().await.map(|c| Admin::new(c.clone()))
}

#[derive(Deserialize)]
pub struct MessagesQuery {
    /// One partition; all of the topic's when absent.
    partition: Option<i32>,
    /// `newest` (default: the latest records, newest first), `oldest`, `offset` or
    /// `timestamp` (the records from there on, oldest first).
    from: Option<String>,
    offset: Option<i64>,
    /// Milliseconds since the epoch.
    timestamp: Option<i64>,
    limit: Option<usize>,
    /// Longest key or value returned, in bytes (longer ones are cut and flagged).
    max_bytes: Option<usize>,
}

#[derive(Clone, Copy, PartialEq)]
enum From {
    Newest,
    Oldest,
    Offset(i64),
    Timestamp(i64),
}

/// `GET /v1/topics/{name}/messages`: records of a topic, read from the partitions'
/// leaders as a group-less consumer reads them (read_uncommitted).
pub async fn messages(
    State(s): S,
    Path(topic): Path<String>,
    Query(q): Query<MessagesQuery>,
) -> Response {
    let Some(client) = s.client().await else {
        return no_broker();
    };
    let from = match (q.from.as_deref().unwrap_or("newest"), q.offset, q.timestamp) {
        ("newest", _, _) => From::Newest,
        ("oldest", _, _) => From::Oldest,
        ("offset", Some(o), _) => From::Offset(o),
        ("timestamp", _, Some(t)) => From::Timestamp(t),
        (f, _, _) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("from={f}: expected newest, oldest, offset (with offset=N) or timestamp (with timestamp=MS)"),
            )
        }
    };
    let limit = q.limit.unwrap_or(50).clamp(1, MAX_MESSAGES);
    let max_bytes = q.max_bytes.unwrap_or(16 * 1024).clamp(64, 1024 * 1024);
    // The partitions from this node's metadata image (no Metadata round trip, and a
    // topic that does not exist is never auto-created by looking at it).
    let all: Vec<i32> = match s.broker.get() {
        Some(b) => match b.cache.image().topic_by_name(&topic) {
            Some(t) => t.partitions.keys().copied().collect(),
            None => return error(StatusCode::NOT_FOUND, format!("no topic {topic}")),
        },
        None => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "this node has no broker (yet)",
            )
        }
    };
    let mut parts: Vec<(String, i32)> = all
        .iter()
        .filter(|&&p| q.partition.is_none_or(|want| want == p))
        .map(|&p| (topic.clone(), p))
        .collect();
    if parts.is_empty() {
        return error(
            StatusCode::NOT_FOUND,
            format!("topic {topic} has no partition {:?}", q.partition),
        );
    }
    let (starts, ends) = tokio::join!(
        list_offsets_many(client, &parts, OffsetSpec::Earliest),
        list_offsets_many(client, &parts, OffsetSpec::Latest)
    );
    // Partitions whose leader did not answer are left out, as empty ones are.
    parts.retain(|k| matches!((starts.get(k), ends.get(k)), (Some(s), Some(e)) if e > s));
    // The newest `limit` records of a topic lie in at most `limit` partitions, and those
    // are among the `limit` partitions whose newest record is newest: read only those.
    if from == From::Newest && parts.len() > limit {
        let newest = list_offsets_detail(client, &parts, OffsetSpec::MaxTimestamp).await;
        parts.sort_by_key(|k| std::cmp::Reverse(newest.get(k).map_or(-1, |l| l.timestamp)));
        parts.truncate(limit);
    }
    let at_time = match from {
        From::Timestamp(ts) => list_offsets_many(client, &parts, OffsetSpec::Timestamp(ts)).await,
        _ => BTreeMap::new(),
    };
    // Where each partition's read starts and where it stops (exclusive).
    let mut ranges: BTreeMap<(String, i32), (i64, i64)> = BTreeMap::new();
    for k in &parts {
        let (start, end) = (starts[k], ends[k]);
        let pos = match from {
            From::Newest => (end - limit as i64).max(start),
            From::Oldest => start,
            From::Offset(o) => o.clamp(start, end),
            From::Timestamp(_) => match at_time.get(k) {
                Some(&o) if o >= 0 => o.clamp(start, end),
                _ => end,
            },
        };
        let stop = match from {
            From::Newest => end,
            _ => end.min(pos.saturating_add(limit as i64)),
        };
        if pos < stop {
            ranges.insert(k.clone(), (pos, stop));
        }
    }
    let records = match read_ranges(client, &ranges).await {
        Ok(r) => r,
        Err(e) => return client_error(&format!("reading {topic}"), e),
    };
    let mut records = records;
    if from == From::Newest {
        records.sort_by(|a, b| {
            (b.timestamp, b.offset, a.partition).cmp(&(a.timestamp, a.offset, b.partition))
        });
    } else {
        records.sort_by_key(|r| (r.timestamp, r.partition, r.offset));
    }
    records.truncate(limit);
    let partitions: Vec<Value> = all
        .iter()
        .filter(|&&p| q.partition.is_none_or(|want| want == p))
        .map(|&p| {
            let k = (topic.clone(), p);
            json!({
                "partition": p,
                "log_start_offset": starts.get(&k),
                "log_end_offset": ends.get(&k),
            })
        })
        .collect();
    Json(json!({
        "topic": topic,
        "partitions": partitions,
        "records": records.iter().map(|r| record_json(r, max_bytes)).collect::<Vec<_>>(),
    }))
    .into_response()
}

/// Reads every range `[from, to)` (one Fetch per leader per round) until all are read or
/// the deadline passes.
async fn read_ranges(
    client: &strom_client::Client,
    ranges: &BTreeMap<(String, i32), (i64, i64)>,
) -> Result<Vec<ConsumerRecord>, ClientError> {
    let config = ConsumerConfig {
        max_bytes: 8 * 1024 * 1024,
        partition_max_bytes: 512 * 1024,
        auto_offset_reset: OffsetReset::None,
        ..ConsumerConfig::default()
    };
    let mut consumer = Consumer::new(client.clone(), config);
    for ((t, p), (from, _)) in ranges {
        consumer.assign(t, *p, StartOffset::Offset(*from)).await?;
    }
    let deadline = tokio::time::Instant::now() + MESSAGES_DEADLINE;
    let mut out = Vec::new();
    while !consumer.assignments().is_empty() && tokio::time::Instant::now() < deadline {
        let got = consumer.poll(Duration::from_millis(200)).await?;
        for r in got {
            if let Some(&(_, to)) = ranges.get(&(r.topic.clone(), r.partition)) {
                if r.offset < to {
                    out.push(r);
                }
            }
        }
        let done: Vec<(String, i32)> = consumer
            .assignments()
            .iter()
            .filter(|(k, pos)| ranges.get(*k).is_none_or(|&(_, to)| pos.position >= to))
            .map(|(k, _)| k.clone())
            .collect();
        for (t, p) in done {
            consumer.unassign(&t, p);
        }
    }
    Ok(out)
}

/// A key or value as text: UTF-8 as is, anything else as hex; cut at `max` bytes.
fn bytes_json(b: &Option<bytes::Bytes>, max: usize) -> Value {
    let Some(b) = b else { return Value::Null };
    let cut = &b[..b.len().min(max)];
    let (text, encoding) = match std::str::from_utf8(cut) {
        Ok(s) => (s.to_owned(), "utf8"),
        // A cut through a multi-byte character is still text.
        Err(e) if b.len() > max && e.error_len().is_none() => (
            String::from_utf8_lossy(&cut[..e.valid_up_to()]).into_owned(),
            "utf8",
        ),
        Err(_) => (cut.iter().map(|x| format!("{x:02x}")).collect(), "hex"),
    };
    json!({ "text": text, "encoding": encoding, "size": b.len(), "truncated": b.len() > max })
}

fn record_json(r: &ConsumerRecord, max: usize) -> Value {
    json!({
        "partition": r.partition,
        "offset": r.offset,
        "timestamp": r.timestamp,
        "key": bytes_json(&r.key, max),
        "value": bytes_json(&r.value, max),
        "headers": r.headers.iter().map(|(k, v)| json!({
            "key": k, "value": bytes_json(v, max),
        })).collect::<Vec<_>>(),
    })
}

/// `GET /v1/topics/{name}/configs`: every config with its value and source.
pub async fn topic_configs(State(s): S, Path(topic): Path<String>) -> Response {
    let Some(admin) = admin(&s).await else {
        return no_broker();
    };
    match admin
        .describe_configs(&ConfigResource::Topic(topic.clone()), None)
        .await
    {
        Ok(entries) => Json(json!({
            "topic": topic,
            "configs": entries.iter().map(|c| json!({
                "name": c.name,
                "value": if c.is_sensitive { None } else { c.value.clone() },
                "source": format!("{:?}", c.source),
                "default": matches!(c.source, strom_client::admin::ConfigSource::Default),
                "read_only": c.read_only,
                "sensitive": c.is_sensitive,
            })).collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(e) => client_error(&format!("configs of {topic}"), e),
    }
}

#[derive(Deserialize)]
pub struct AlterConfigs {
    #[serde(default)]
    set: BTreeMap<String, String>,
    #[serde(default)]
    delete: Vec<String>,
}

/// `POST /v1/topics/{name}/configs` `{"set": {k: v}, "delete": [k]}`
/// (IncrementalAlterConfigs: keys not named keep their values).
pub async fn alter_topic_configs(
    State(s): S,
    Path(topic): Path<String>,
    Json(body): Json<AlterConfigs>,
) -> Response {
    if let Some(r) = refuse_write(&s) {
        return r;
    }
    let Some(admin) = admin(&s).await else {
        return no_broker();
    };
    let mut ops: Vec<AlterConfigOp> = body
        .set
        .into_iter()
        .map(|(k, v)| AlterConfigOp::Set(k, v))
        .collect();
    ops.extend(body.delete.into_iter().map(AlterConfigOp::Delete));
    if ops.is_empty() {
        return error(StatusCode::BAD_REQUEST, "nothing to change");
    }
    match admin
        .incremental_alter_configs(&ConfigResource::Topic(topic.clone()), &ops, false)
        .await
    {
        Ok(()) => {
            tracing::info!(topic, changes = ops.len(), "console: configs altered");
            Json(json!({ "topic": topic, "altered": ops.len() })).into_response()
        }
        Err(e) => client_error(&format!("altering configs of {topic}"), e),
    }
}

#[derive(Deserialize)]
pub struct CreateTopic {
    name: String,
    /// -1 (or absent): the broker's `num.partitions`.
    partitions: Option<i32>,
    /// -1 (or absent): the broker's `default.replication.factor`.
    replication_factor: Option<i16>,
    #[serde(default)]
    configs: BTreeMap<String, String>,
}

/// `POST /v1/topics` `{"name", "partitions", "replication_factor", "configs"}`.
pub async fn create_topic(State(s): S, Json(body): Json<CreateTopic>) -> Response {
    if let Some(r) = refuse_write(&s) {
        return r;
    }
    let Some(admin) = admin(&s).await else {
        return no_broker();
    };
    let mut t = NewTopic::new(
        body.name.clone(),
        body.partitions.unwrap_or(-1),
        body.replication_factor.unwrap_or(-1),
    );
    t.configs = body.configs;
    match admin.create_topics(vec![t], false).await {
        Ok(rs) => match rs.into_iter().next() {
            Some(r) if r.error.is_none() => {
                tracing::info!(topic = r.name, "console: topic created");
                (
                    StatusCode::CREATED,
                    Json(json!({
                        "name": r.name,
                        "id": r.topic_id.map(|u| u.to_string()),
                        "partitions": r.num_partitions,
                        "replication_factor": r.replication_factor,
                    })),
                )
                    .into_response()
            }
            Some(r) => client_error(
                &format!("creating {}", body.name),
                ClientError::Kafka(r.error.expect("checked")),
            ),
            None => error(StatusCode::BAD_GATEWAY, "CreateTopics answered no topic"),
        },
        Err(e) => client_error(&format!("creating {}", body.name), e),
    }
}

/// `DELETE /v1/topics/{name}`.
pub async fn delete_topic(State(s): S, Path(topic): Path<String>) -> Response {
    if let Some(r) = refuse_write(&s) {
        return r;
    }
    let Some(admin) = admin(&s).await else {
        return no_broker();
    };
    match admin.delete_topics(std::slice::from_ref(&topic)).await {
        Ok(rs) => match rs.into_iter().next().and_then(|r| r.error) {
            None => {
                tracing::info!(topic, "console: topic deleted");
                Json(json!({ "deleted": topic })).into_response()
            }
            Some(e) => client_error(&format!("deleting {topic}"), ClientError::Kafka(e)),
        },
        Err(e) => client_error(&format!("deleting {topic}"), e),
    }
}

#[derive(Deserialize)]
pub struct ResetOffsets {
    /// `earliest`, `latest`, `offset` (with `offset`), `timestamp` (with `timestamp`, ms)
    /// or `shift` (with `shift`, records; negative moves back).
    to: String,
    offset: Option<i64>,
    timestamp: Option<i64>,
    shift: Option<i64>,
    /// Only this topic's partitions (all of them); else every partition the group has
    /// an offset for.
    topic: Option<String>,
    /// Only show the plan (`kafka-consumer-groups --reset-offsets --dry-run`).
    #[serde(default)]
    dry_run: bool,
}

/// `POST /v1/groups/{id}/reset`: moves a group's committed offsets, as
/// `kafka-consumer-groups --reset-offsets --execute` does (the group must have no
/// members); answers the plan, per partition the current and the new offset.
pub async fn reset_offsets(
    State(s): S,
    Path(group): Path<String>,
    Json(body): Json<ResetOffsets>,
) -> Response {
    if !body.dry_run {
        if let Some(r) = refuse_write(&s) {
            return r;
        }
    }
    let Some(admin) = admin(&s).await else {
        return no_broker();
    };
    let to = match (body.to.as_str(), body.offset, body.timestamp, body.shift) {
        ("earliest", ..) => ResetTo::Earliest,
        ("latest", ..) => ResetTo::Latest,
        ("offset", Some(o), _, _) => ResetTo::Offset(o),
        ("timestamp", _, Some(t), _) => ResetTo::Time(t),
        ("shift", _, _, Some(n)) => ResetTo::ShiftBy(n),
        (t, ..) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("to={t}: expected earliest, latest, offset (with offset), timestamp (with timestamp) or shift (with shift)"),
            )
        }
    };
    let desc = match admin.describe_group(&group).await {
        Ok(d) => d,
        Err(e) => return client_error(&format!("group {group}"), e),
    };
    if !body.dry_run && !desc.members.is_empty() {
        return error(
            StatusCode::CONFLICT,
            format!(
                "group {group} has {} active member(s) (state {}): stop them before resetting offsets",
                desc.members.len(),
                desc.state
            ),
        );
    }
    let current = match admin.group_offsets(&group).await {
        Ok(o) => o,
        Err(e) => return client_error(&format!("offsets of {group}"), e),
    };
    let client = admin.client();
    let targets: Vec<(String, i32)> = match &body.topic {
        None => current.keys().cloned().collect(),
        Some(t) => match client.topic_metadata(t).await {
            Ok(m) => m
                .partitions
                .iter()
                .map(|p| (t.clone(), p.partition))
                .collect(),
            Err(e) => return client_error(&format!("topic {t}"), e),
        },
    };
    if targets.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            format!("group {group} has no committed offsets: name a topic"),
        );
    }
    let plan = reset_plan(client, &current, targets, to).await;
    let rows: Vec<Value> = plan
        .iter()
        .map(|((t, p), o)| {
            json!({
                "topic": t, "partition": p,
                "current_offset": current.get(&(t.clone(), *p)),
                "new_offset": o,
            })
        })
        .collect();
    if body.dry_run {
        return Json(json!({ "group": group, "executed": false, "plan": rows })).into_response();
    }
    match admin.commit_group_offsets(&group, &plan).await {
        Ok(()) => {
            tracing::info!(group, partitions = plan.len(), "console: offsets reset");
            Json(json!({ "group": group, "executed": true, "plan": rows })).into_response()
        }
        Err(e) => client_error(&format!("committing offsets of {group}"), e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn keys_and_values_are_text_or_hex_and_cut() {
        let v = bytes_json(&Some(Bytes::from_static(b"{\"a\":1}")), 100);
        assert_eq!(v["text"], "{\"a\":1}");
        assert_eq!(v["encoding"], "utf8");
        assert_eq!(v["truncated"], false);
        let v = bytes_json(&Some(Bytes::from_static(&[0xff, 0x00, 0x10])), 100);
        assert_eq!(v["text"], "ff0010");
        assert_eq!(v["encoding"], "hex");
        // Cut inside "é" (two bytes): still text, without the partial character.
        let v = bytes_json(&Some(Bytes::from("aé".as_bytes().to_vec())), 2);
        assert_eq!(v["text"], "a");
        assert_eq!(v["encoding"], "utf8");
        assert_eq!(v["truncated"], true);
        assert_eq!(v["size"], 3);
        assert_eq!(bytes_json(&None, 10), Value::Null);
    }
}

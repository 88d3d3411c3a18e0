//! Simulated consumer-group members speaking the Kafka protocol through strom's client
//! connection: a classic member (JoinGroup/SyncGroup with a range assignor in the
//! leader, Heartbeat, OffsetCommit) and a KIP-848 member (ConsumerGroupHeartbeat). Each
//! "consumes" by advancing its committed offset, and writes what it owned, when, and
//! what it committed into a shared history that the invariants check.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions as OwnedTp;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use parking_lot::Mutex;
use strom_client::{group_consumer, Client, Connection};
use tokio::time::Instant;

/// Closes a crashed member's open ownership intervals at the crash: a crashed process
/// consumes nothing, whatever the coordinator still believes.
pub fn crashed(history: &SharedHistory, member: &str) {
    let now = Instant::now();
    for iv in history
        .lock()
        .intervals
        .iter_mut()
        .filter(|iv| iv.0 == member && iv.3.is_none())
    {
        iv.3 = Some(now);
    }
}

/// Everything members observed.
#[derive(Default, Debug)]
pub struct History {
    /// Classic: (generation, member, partition) from successful SyncGroups.
    pub classic_owned: Vec<(i32, String, i32)>,
    /// KIP-848: (member, partition, from, to) ownership intervals (to: None while held).
    pub intervals: Vec<(String, i32, Instant, Option<Instant>)>,
    /// Successful commits, in the order their answers arrived: (partition, offset). Only
    /// a measure of progress: a delayed answer can arrive after later commits.
    pub commits: Vec<(i32, i64)>,
    /// Committed offsets as a single poller read them, one OffsetFetch after another:
    /// (partition, offset) in the coordinator's order.
    pub polled: Vec<(i32, i64)>,
    /// For each reading in `polled`: the coordinator that answered, and when.
    pub polled_from: Vec<(i32, Instant)>,
    /// KIP-848: when each member last sent a heartbeat that was answered. Its hold on a
    /// partition it has not released yet ends a session timeout later at the latest
    /// (a zombie that has not noticed yet).
    pub heard: BTreeMap<String, Instant>,
    /// Committed offsets read after the members stopped.
    pub final_committed: BTreeMap<i32, i64>,
}

/// Reads the group's committed offsets every 200 ms, one request at a time, into
/// `history.polled`.
pub async fn poll_committed(
    client: Client,
    group: String,
    topic: String,
    partitions: i32,
    history: SharedHistory,
) {
    let all: Vec<i32> = (0..partitions).collect();
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let Some((node, conn)) = coordinator(&client, &group).await else {
            continue;
        };
        if let Some(offs) = committed(&conn, &group, &topic, &all).await {
            let mut h = history.lock();
            for (p, o) in offs {
                if o > 0 {
                    h.polled.push((p, o));
                    h.polled_from.push((node, Instant::now()));
                }
            }
        }
    }
}

pub type SharedHistory = Arc<Mutex<History>>;

/// `group.consumer.session.timeout.ms` of the group tests: how long a KIP-848 member
/// may go unheard before the coordinator fences it.
pub const KIP848_SESSION: Duration = Duration::from_millis(3000);

/// The group's committed offsets once its members are gone, read until a coordinator
/// answers (for `acked_commits_are_kept`).
pub async fn final_committed(
    client: Client,
    group: String,
    topic: String,
    partitions: i32,
) -> BTreeMap<i32, i64> {
    let all: Vec<i32> = (0..partitions).collect();
    loop {
        if let Some((_, conn)) = coordinator(&client, &group).await {
            if let Some(offs) = committed(&conn, &group, &topic, &all).await {
                return offs;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_string())
}

async fn coordinator(client: &Client, group: &str) -> Option<(i32, Arc<Connection>)> {
    let conn = client.any_connection().await.ok()?;
    let v = conn.version_for::<FindCoordinatorRequest>(3).ok()?;
    let resp = conn
        .send(FindCoordinatorRequest::default().with_key(s(group)), v)
        .await
        .ok()?;
    if resp.error_code != 0 {
        return None;
    }
    client.refresh_metadata(Some(&[])).await.ok()?;
    let conn = client.broker_connection(resp.node_id.0).await.ok()?;
    Some((resp.node_id.0, conn))
}

fn subscription(topic: &str) -> Bytes {
    group_consumer::encode_subscription(&[topic.to_owned()])
}

fn assignment(topic: &str, partitions: Vec<i32>) -> Bytes {
    group_consumer::encode_assignment(&BTreeMap::from([(topic.to_owned(), partitions)]))
}

fn decode_assignment(b: Bytes) -> Vec<i32> {
    group_consumer::decode_assignment(b)
        .into_values()
        .flatten()
        .collect()
}

async fn committed(
    conn: &Connection,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> Option<BTreeMap<i32, i64>> {
    let req = OffsetFetchRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(TopicName(s(topic)))
            .with_partition_indexes(partitions.to_vec())]));
    let resp = conn.send(req, 6).await.ok()?;
    if resp.error_code != 0
        || resp
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .any(|p| p.error_code != 0)
    {
        return None;
    }
    Some(
        resp.topics
            .into_iter()
            .flat_map(|t| t.partitions)
            .map(|p| (p.partition_index, p.committed_offset.max(0)))
            .collect(),
    )
}

async fn commit(
    conn: &Connection,
    group: &str,
    topic: &str,
    generation: i32,
    member: &str,
    offsets: &BTreeMap<i32, i64>,
) -> i16 {
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(s(member))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(s(topic)))
            .with_partitions(
                offsets
                    .iter()
                    .map(|(p, o)| {
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(*p)
                            .with_committed_offset(*o)
                    })
                    .collect(),
            )]);
    match conn.send(req, 8).await {
        Ok(r) => r
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .map(|p| p.error_code)
            .find(|c| *c != 0)
            .unwrap_or(0),
        Err(_) => -1,
    }
}

/// Runs a classic member until the task is dropped.
pub async fn classic_member(
    client: Client,
    group: String,
    topic: String,
    partitions: i32,
    history: SharedHistory,
) {
    let mut member_id = String::new();
    loop {
        let Some((_, conn)) = coordinator(&client, &group).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let join = |member_id: String| {
            JoinGroupRequest::default()
                .with_group_id(GroupId(s(&group)))
                .with_session_timeout_ms(2000)
                .with_rebalance_timeout_ms(4000)
                .with_member_id(s(&member_id))
                .with_protocol_type(s("consumer"))
                .with_protocols(vec![JoinGroupRequestProtocol::default()
                    .with_name(s("range"))
                    .with_metadata(subscription(&topic))])
        };
        let Ok(mut j) = conn.send(join(member_id.clone()), 5).await else {
            continue;
        };
        if j.error_code == 79 {
            member_id = j.member_id.to_string();
            let Ok(j2) = conn.send(join(member_id.clone()), 5).await else {
                continue;
            };
            j = j2;
        }
        match j.error_code {
            0 => {}
            25 => {
                member_id.clear();
                continue;
            }
            _ => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        }
        member_id = j.member_id.to_string();
        let generation = j.generation_id;
        let assignments = if j.leader == j.member_id {
            // Range: consecutive partitions over the members, in id order.
            let mut members: Vec<String> =
                j.members.iter().map(|m| m.member_id.to_string()).collect();
            members.sort();
            let n = members.len() as i32;
            let mut next = 0;
            members
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    let take = partitions / n + if (i as i32) < partitions % n { 1 } else { 0 };
                    let ps: Vec<i32> = (next..next + take).collect();
                    next += take;
                    SyncGroupRequestAssignment::default()
                        .with_member_id(s(m))
                        .with_assignment(assignment(&topic, ps))
                })
                .collect()
        } else {
            Vec::new()
        };
        let sync = SyncGroupRequest::default()
            .with_group_id(GroupId(s(&group)))
            .with_generation_id(generation)
            .with_member_id(s(&member_id))
            .with_assignments(assignments);
        let Ok(sr) = conn.send(sync, 3).await else {
            continue;
        };
        if sr.error_code != 0 {
            continue;
        }
        let mine = decode_assignment(sr.assignment);
        {
            let mut h = history.lock();
            for p in &mine {
                h.classic_owned.push((generation, member_id.clone(), *p));
            }
        }
        let Some(mut positions) = committed(&conn, &group, &topic, &mine).await else {
            continue;
        };
        // Consume: advance and commit, heartbeating, until told to rejoin.
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            for o in positions.values_mut() {
                *o += 1;
            }
            let code = commit(&conn, &group, &topic, generation, &member_id, &positions).await;
            if code == 0 {
                let mut h = history.lock();
                for (p, o) in &positions {
                    h.commits.push((*p, *o));
                }
            } else {
                break;
            }
            let hb = HeartbeatRequest::default()
                .with_group_id(GroupId(s(&group)))
                .with_generation_id(generation)
                .with_member_id(s(&member_id));
            match conn.send(hb, 3).await {
                Ok(r) if r.error_code == 0 => {}
                Ok(r) if r.error_code == 25 => {
                    member_id.clear();
                    break;
                }
                _ => break,
            }
        }
    }
}

/// Runs a KIP-848 member until the task is dropped; `stop` makes it leave cleanly.
pub async fn consumer_member(
    client: Client,
    member_id: String,
    group: String,
    topic: String,
    history: SharedHistory,
    stop: Arc<tokio::sync::Notify>,
) {
    let mut epoch = 0;
    let mut owned: BTreeSet<i32> = BTreeSet::new();
    let mut positions: BTreeMap<i32, i64> = BTreeMap::new();
    // Partitions gained whose committed offset could not be read yet: like a real
    // consumer, the member neither consumes nor commits them until it has one.
    let mut unpositioned: BTreeSet<i32> = BTreeSet::new();
    let mut conn: Option<Arc<Connection>> = None;
    let release_at = |history: &SharedHistory, member: &str, p: i32, at: Instant| {
        let mut h = history.lock();
        if let Some(iv) = h
            .intervals
            .iter_mut()
            .rev()
            .find(|(m, q, _, to)| m == member && *q == p && to.is_none())
        {
            iv.3 = Some(at);
        }
    };
    // When the last heartbeat that got an answer was sent: the coordinator heard from
    // us no earlier, so it keeps our assignment at least a session timeout after it.
    // Past that, a partition may already be someone else's: whatever ends our hold on
    // it, it ended no later than then.
    let mut last_ok_sent: Option<Instant> = None;
    let held_until = |last: Option<Instant>| {
        let now = Instant::now();
        last.map_or(now, |t| (t + KIP848_SESSION).min(now))
    };
    let release = |history: &SharedHistory, member: &str, p: i32, last: Option<Instant>| {
        release_at(history, member, p, held_until(last))
    };
    loop {
        let stopping = tokio::select! {
            biased;
            _ = stop.notified() => true,
            _ = tokio::time::sleep(Duration::from_millis(300)) => false,
        };
        // Cut off for a session timeout (a zombie): the coordinator may have given our
        // partitions away by now, so they are lost from that moment on; rejoin.
        if let Some(t) = last_ok_sent {
            let expiry = t + KIP848_SESSION;
            if !owned.is_empty() && Instant::now() >= expiry {
                for p in std::mem::take(&mut owned) {
                    release_at(&history, &member_id, p, expiry);
                }
                unpositioned.clear();
                epoch = 0;
            }
        }
        if conn.is_none() {
            conn = coordinator(&client, &group).await.map(|(_, c)| c);
        }
        let Some(c) = conn.clone() else { continue };
        let topic_id = client
            .topic_metadata(&topic)
            .await
            .map(|t| t.topic_id)
            .unwrap_or_default();
        if stopping {
            for p in std::mem::take(&mut owned) {
                release(&history, &member_id, p, last_ok_sent);
            }
            let leave = ConsumerGroupHeartbeatRequest::default()
                .with_group_id(GroupId(s(&group)))
                .with_member_id(s(&member_id))
                .with_member_epoch(-1);
            let _ = c.send(leave, 1).await;
            return;
        }
        if !unpositioned.is_empty() {
            let want: Vec<i32> = unpositioned.iter().copied().collect();
            if let Some(offs) = committed(&c, &group, &topic, &want).await {
                for (p, o) in offs {
                    if unpositioned.remove(&p) {
                        positions.insert(p, o);
                    }
                }
            }
        }
        // Commit progress on what we own (and have a position for).
        let ready: Vec<i32> = owned.difference(&unpositioned).copied().collect();
        if epoch > 0 && !ready.is_empty() {
            for p in &ready {
                *positions.entry(*p).or_insert(0) += 1;
            }
            let mine: BTreeMap<i32, i64> = ready.iter().map(|p| (*p, positions[p])).collect();
            if commit(&c, &group, &topic, epoch, &member_id, &mine).await == 0 {
                let mut h = history.lock();
                for (p, o) in &mine {
                    h.commits.push((*p, *o));
                }
            }
        }
        let req = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(s(&group)))
            .with_member_id(s(&member_id))
            .with_member_epoch(epoch)
            .with_rebalance_timeout_ms(5000)
            .with_subscribed_topic_names(Some(vec![TopicName(s(&topic))]))
            .with_topic_partitions(Some(vec![OwnedTp::default()
                .with_topic_id(topic_id)
                .with_partitions(owned.iter().copied().collect())]));
        let sent_at = Instant::now();
        let r = match c.send(req, 1).await {
            Ok(r) => r,
            Err(_) => {
                conn = None;
                continue;
            }
        };
        match r.error_code {
            0 => {
                last_ok_sent = Some(sent_at);
                history.lock().heard.insert(member_id.clone(), sent_at);
            }
            110 | 25 => {
                // Fenced: give everything up and join again.
                for p in std::mem::take(&mut owned) {
                    release(&history, &member_id, p, last_ok_sent);
                }
                unpositioned.clear();
                epoch = 0;
                continue;
            }
            _ => {
                conn = None;
                continue;
            }
        }
        // An answer that took longer than a session timeout to arrive is stale: the
        // coordinator may have fenced us and moved our partitions since it was written.
        if Instant::now() >= sent_at + KIP848_SESSION {
            let at = sent_at + KIP848_SESSION;
            for p in std::mem::take(&mut owned) {
                release_at(&history, &member_id, p, at);
            }
            unpositioned.clear();
            epoch = 0;
            continue;
        }
        epoch = r.member_epoch;
        if let Some(a) = r.assignment {
            let new: BTreeSet<i32> = a
                .topic_partitions
                .iter()
                .flat_map(|t| t.partitions.iter().copied())
                .collect();
            for p in owned.difference(&new) {
                release(&history, &member_id, *p, last_ok_sent);
                unpositioned.remove(p);
            }
            let gained: Vec<i32> = new.difference(&owned).copied().collect();
            if !gained.is_empty() {
                // The position comes from the committed offset; until it is read, the
                // partition waits (see `unpositioned`).
                unpositioned.extend(gained.iter().copied());
                if let Some(offs) = committed(&c, &group, &topic, &gained).await {
                    for (p, o) in offs {
                        unpositioned.remove(&p);
                        positions.insert(p, o);
                    }
                }
                let mut h = history.lock();
                for p in gained {
                    h.intervals
                        .push((member_id.clone(), p, Instant::now(), None));
                }
            }
            owned = new;
        }
    }
}

//! A consumer that is a member of a consumer group, with Kafka's classic group protocol
//! (the one every client speaks): FindCoordinator, JoinGroup (with the member id the
//! coordinator hands out, KIP-394), the leader computes a range assignment for everyone,
//! SyncGroup, OffsetFetch for the starting positions, Heartbeat while consuming,
//! OffsetCommit (automatic every `auto_commit_interval` and before a rebalance, or by
//! hand), LeaveGroup on close.
//!
//! As Java's consumer does, the member talks to its coordinator over a connection of its
//! own, whose request timeout covers a JoinGroup held for the whole rebalance timeout;
//! other requests on it keep the client's request timeout.
//!
//! There is no background thread: heartbeats and automatic commits happen inside
//! [`GroupConsumer::poll`], which keeps each wait shorter than the heartbeat interval. A
//! caller that stops polling for longer than the session timeout loses its partitions,
//! as a Java consumer that stops polling for `max.poll.interval.ms` does.
//!
//! The assignor is Kafka's `range` (per topic, consecutive partitions over the members
//! subscribed to it in member id order), so strom's members share a group with Java,
//! librdkafka and Python consumers, whose default strategies all include `range`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, GroupId, HeartbeatRequest,
    JoinGroupRequest, LeaveGroupRequest, OffsetCommitRequest, OffsetFetchRequest, SyncGroupRequest,
    TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::time::Instant;

use crate::client::Client;
use crate::connection::Connection;
use crate::consumer::{
    list_offsets_many, Consumer, ConsumerConfig, ConsumerRecord, OffsetReset, OffsetSpec,
    StartOffset,
};
use crate::error::{ClientError, KafkaError};

/// The one assignment strategy offered.
pub const RANGE: &str = "range";

const REBALANCE_IN_PROGRESS: i16 = 27;
const ILLEGAL_GENERATION: i16 = 22;
const UNKNOWN_MEMBER_ID: i16 = 25;
const MEMBER_ID_REQUIRED: i16 = 79;
const NOT_COORDINATOR: i16 = 16;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;

/// Group membership settings (defaults are the Java consumer's).
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// `group.id`.
    pub group_id: String,
    /// `session.timeout.ms` (45 s).
    pub session_timeout: Duration,
    /// `max.poll.interval.ms`, sent as the rebalance timeout (300 s).
    pub rebalance_timeout: Duration,
    /// `heartbeat.interval.ms` (3 s).
    pub heartbeat_interval: Duration,
    /// `enable.auto.commit` (true).
    pub auto_commit: bool,
    /// `auto.commit.interval.ms` (5 s).
    pub auto_commit_interval: Duration,
    /// How long a join may take before [`GroupConsumer::poll`] gives up (60 s).
    pub join_timeout: Duration,
}

impl GroupConfig {
    /// Defaults for `group_id`.
    pub fn new(group_id: impl Into<String>) -> Self {
        GroupConfig {
            group_id: group_id.into(),
            session_timeout: Duration::from_secs(45),
            rebalance_timeout: Duration::from_secs(300),
            heartbeat_interval: Duration::from_secs(3),
            auto_commit: true,
            auto_commit_interval: Duration::from_secs(5),
            join_timeout: Duration::from_secs(60),
        }
    }
}

/// A member of a consumer group.
pub struct GroupConsumer {
    client: Client,
    config: GroupConfig,
    /// `auto.offset.reset` for partitions without a committed offset.
    reset: OffsetReset,
    consumer: Consumer,
    topics: Vec<String>,
    coordinator: Option<Arc<Connection>>,
    member_id: String,
    generation: i32,
    joined: bool,
    /// Set while a JoinGroup/SyncGroup round runs: if the caller drops `poll` then, the
    /// coordinator connection has an answer still owed and is replaced before `close`.
    joining: bool,
    last_heartbeat: Instant,
    last_commit: Instant,
    /// What the group holds for each assigned partition, as far as this member knows.
    committed: BTreeMap<(String, i32), i64>,
    rebalances: u32,
    rebalance_time: Duration,
}

impl GroupConsumer {
    /// A member that has not joined yet; it joins on the first [`poll`](Self::poll).
    pub fn new(client: Client, consumer: ConsumerConfig, config: GroupConfig) -> Self {
        let now = Instant::now();
        GroupConsumer {
            reset: consumer.auto_offset_reset,
            consumer: Consumer::new(client.clone(), consumer),
            client,
            config,
            topics: Vec::new(),
            coordinator: None,
            member_id: String::new(),
            generation: -1,
            joined: false,
            joining: false,
            last_heartbeat: now,
            last_commit: now,
            committed: BTreeMap::new(),
            rebalances: 0,
            rebalance_time: Duration::ZERO,
        }
    }

    /// Sets the subscription; a member already in the group rejoins with it.
    pub fn subscribe(&mut self, topics: impl IntoIterator<Item = impl Into<String>>) {
        let mut topics: Vec<String> = topics.into_iter().map(Into::into).collect();
        topics.sort();
        topics.dedup();
        if topics != self.topics {
            self.topics = topics;
            self.joined = false;
        }
    }

    /// The member id the coordinator gave (empty before the first join).
    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    /// The generation of the last successful join (-1 before).
    pub fn generation(&self) -> i32 {
        self.generation
    }

    /// The partitions this member owns now.
    pub fn assignment(&self) -> Vec<(String, i32)> {
        self.consumer.assignments().keys().cloned().collect()
    }

    /// How many times this member has joined, and the time all joins took together.
    pub fn rebalances(&self) -> (u32, Duration) {
        (self.rebalances, self.rebalance_time)
    }

    /// The group's committed offsets for the owned partitions, as this member last knew them.
    pub fn committed(&self) -> &BTreeMap<(String, i32), i64> {
        &self.committed
    }

    /// Joins if needed, heartbeats and commits when due, then fetches for at most
    /// `max_wait` (capped at the heartbeat interval).
    pub async fn poll(&mut self, max_wait: Duration) -> Result<Vec<ConsumerRecord>, ClientError> {
        if self.topics.is_empty() {
            return Err(ClientError::InvalidArgument(
                "subscribe to a topic before polling".into(),
            ));
        }
        if !self.joined {
            self.join().await?;
        }
        if self.last_heartbeat.elapsed() >= self.config.heartbeat_interval {
            self.heartbeat().await;
        }
        if self.joined
            && self.config.auto_commit
            && self.last_commit.elapsed() >= self.config.auto_commit_interval
        {
            // An automatic commit that fails is retried at the next interval or before
            // the rebalance that its error announces, as the Java consumer does.
            let _ = self.commit().await;
        }
        if !self.joined {
            return Ok(Vec::new());
        }
        let wait = max_wait.min(self.config.heartbeat_interval);
        self.consumer.poll(wait).await
    }

    /// Moves the positions back to the first of `records` in each partition: the caller
    /// took records from a poll but did not process them all (a tool that stops after
    /// N messages), and the group must not commit past what was used.
    pub async fn rewind(&mut self, records: &[ConsumerRecord]) -> Result<(), ClientError> {
        let mut first: BTreeMap<(&str, i32), i64> = BTreeMap::new();
        for r in records {
            let o = first
                .entry((r.topic.as_str(), r.partition))
                .or_insert(r.offset);
            *o = (*o).min(r.offset);
        }
        for ((t, p), o) in first {
            if self.consumer.assignments().contains_key(&(t.to_owned(), p)) {
                self.consumer.seek(t, p, StartOffset::Offset(o)).await?;
            }
        }
        Ok(())
    }

    /// Commits the position of every owned partition (the offset after the last record
    /// returned) that moved since the last commit.
    pub async fn commit(&mut self) -> Result<(), ClientError> {
        self.last_commit = Instant::now();
        let positions: BTreeMap<(String, i32), i64> = self
            .consumer
            .assignments()
            .iter()
            .filter(|(k, p)| self.committed.get(*k) != Some(&p.position))
            .map(|(k, p)| (k.clone(), p.position))
            .collect();
        if positions.is_empty() {
            return Ok(());
        }
        let conn = self.coordinator().await?;
        let version = conn.version_for::<OffsetCommitRequest>(8)?;
        let req = OffsetCommitRequest::default()
            .with_group_id(group(&self.config.group_id))
            .with_generation_id_or_member_epoch(self.generation)
            .with_member_id(s(&self.member_id))
            .with_topics(crate::groups::offset_commit_topics(&positions));
        let resp = match self.bounded(conn.send(req, version)).await {
            Ok(r) => r,
            Err(e) => {
                self.coordinator = None;
                return Err(e);
            }
        };
        let mut first_error = None;
        for t in resp.topics {
            for p in t.partitions {
                let key = (t.name.0.to_string(), p.partition_index);
                match KafkaError::from_code(p.error_code, None) {
                    None => {
                        if let Some(o) = positions.get(&key) {
                            self.committed.insert(key, *o);
                        }
                    }
                    Some(e) => {
                        self.on_group_error(e.code);
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
        match first_error {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// Commits (if automatic commits are on) and leaves the group, so that the others
    /// get this member's partitions at once instead of after the session timeout.
    pub async fn close(mut self) -> Result<(), ClientError> {
        if self.joining {
            // The coordinator answers a connection's requests in order: a LeaveGroup
            // behind the held JoinGroup would wait for the rebalance it is meant to end.
            self.coordinator = None;
        }
        let committed = if self.config.auto_commit && self.joined {
            self.commit().await
        } else {
            Ok(())
        };
        if !self.member_id.is_empty() {
            let conn = self.coordinator().await?;
            let version = conn.version_for::<LeaveGroupRequest>(4)?;
            let req = if version >= 3 {
                LeaveGroupRequest::default()
                    .with_group_id(group(&self.config.group_id))
                    .with_members(vec![MemberIdentity::default()
                        .with_member_id(s(&self.member_id))
                        .with_reason(Some(StrBytes::from_static_str(
                            "the consumer is closing",
                        )))])
            } else {
                LeaveGroupRequest::default()
                    .with_group_id(group(&self.config.group_id))
                    .with_member_id(s(&self.member_id))
            };
            self.bounded(conn.send(req, version)).await?;
        }
        committed
    }

    /// A request other than JoinGroup/SyncGroup, within the client's request timeout.
    async fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, ClientError>>,
    ) -> Result<T, ClientError> {
        let after = self.client.config().connection.request_timeout;
        match tokio::time::timeout(after, call).await {
            Ok(r) => r,
            Err(_) => Err(ClientError::Timeout {
                addr: self
                    .coordinator
                    .as_ref()
                    .map_or_else(String::new, |c| c.addr().to_owned()),
                after,
            }),
        }
    }

    /// What a group error means for membership: a rebalance, a stale generation or an
    /// unknown member all send this member back to JoinGroup; a moved coordinator is
    /// looked up again.
    fn on_group_error(&mut self, code: i16) {
        match code {
            REBALANCE_IN_PROGRESS | ILLEGAL_GENERATION => self.joined = false,
            UNKNOWN_MEMBER_ID => {
                self.joined = false;
                self.member_id.clear();
            }
            NOT_COORDINATOR | COORDINATOR_NOT_AVAILABLE => self.coordinator = None,
            _ => {}
        }
    }

    async fn heartbeat(&mut self) {
        self.last_heartbeat = Instant::now();
        let Ok(conn) = self.coordinator().await else {
            return;
        };
        let Ok(version) = conn.version_for::<HeartbeatRequest>(4) else {
            return;
        };
        let req = HeartbeatRequest::default()
            .with_group_id(group(&self.config.group_id))
            .with_generation_id(self.generation)
            .with_member_id(s(&self.member_id));
        match self.bounded(conn.send(req, version)).await {
            Ok(r) if r.error_code != 0 => {
                if r.error_code == REBALANCE_IN_PROGRESS && self.config.auto_commit {
                    // The group waits for this member's rejoin: hand over what it read.
                    let _ = self.commit().await;
                }
                self.on_group_error(r.error_code);
            }
            Ok(_) => {}
            Err(_) => self.coordinator = None,
        }
    }

    async fn coordinator(&mut self) -> Result<Arc<Connection>, ClientError> {
        if let Some(c) = &self.coordinator {
            if !c.is_closed() {
                return Ok(c.clone());
            }
        }
        let id = find_coordinator(&self.client, &self.config.group_id, 0).await?;
        let addr = match self.client.metadata().brokers.get(&id) {
            Some(b) => b.addr(),
            None => {
                self.client.refresh_metadata(Some(&[])).await?;
                self.client
                    .metadata()
                    .brokers
                    .get(&id)
                    .map(|b| b.addr())
                    .ok_or_else(|| {
                        ClientError::NoBrokerAvailable(format!("coordinator {id} unknown"))
                    })?
            }
        };
        let mut config = self.client.config().connection.clone();
        config.request_timeout = config
            .request_timeout
            .max(self.config.rebalance_timeout + Duration::from_secs(5));
        let conn = Arc::new(Connection::connect(&addr, config).await?);
        self.coordinator = Some(conn.clone());
        Ok(conn)
    }

    /// Joins (or rejoins) the group and takes the assignment, retrying through
    /// coordinator moves and concurrent rebalances for up to the join timeout.
    async fn join(&mut self) -> Result<(), ClientError> {
        let started = Instant::now();
        // Drop what was owned: the next owner starts where this member committed.
        for (t, p) in self.assignment() {
            self.consumer.unassign(&t, p);
        }
        self.committed.clear();
        let mut last_error = None;
        while started.elapsed() < self.config.join_timeout {
            self.joining = true;
            let round = self.join_once().await;
            self.joining = false;
            match round {
                Ok(true) => {
                    self.joined = true;
                    self.rebalances += 1;
                    self.rebalance_time += started.elapsed();
                    let now = Instant::now();
                    self.last_heartbeat = now;
                    self.last_commit = now;
                    return Ok(());
                }
                Ok(false) => {}
                Err(e) => {
                    let fatal = matches!(&e, ClientError::InvalidArgument(_))
                        || e.kafka_code().is_some_and(|c| {
                            !matches!(
                                c,
                                REBALANCE_IN_PROGRESS
                                    | ILLEGAL_GENERATION
                                    | UNKNOWN_MEMBER_ID
                                    | NOT_COORDINATOR
                                    | COORDINATOR_NOT_AVAILABLE
                                    | COORDINATOR_LOAD_IN_PROGRESS
                            ) && !KafkaError::new(c).is_retriable()
                        });
                    if fatal {
                        return Err(e);
                    }
                    last_error = Some(e);
                    tokio::time::sleep(self.client.config().retry_backoff).await;
                }
            }
        }
        Err(last_error.unwrap_or_else(|| {
            ClientError::InvalidArgument(format!(
                "could not join group {} within {:?}",
                self.config.group_id, self.config.join_timeout
            ))
        }))
    }

    /// One JoinGroup + SyncGroup round; `Ok(false)` when the group asks to start over.
    async fn join_once(&mut self) -> Result<bool, ClientError> {
        let conn = self.coordinator().await?;
        let version = conn.version_for::<JoinGroupRequest>(7)?;
        let mut resp = None;
        for _ in 0..2 {
            let req = JoinGroupRequest::default()
                .with_group_id(group(&self.config.group_id))
                .with_session_timeout_ms(self.config.session_timeout.as_millis() as i32)
                .with_rebalance_timeout_ms(self.config.rebalance_timeout.as_millis() as i32)
                .with_member_id(s(&self.member_id))
                .with_protocol_type(StrBytes::from_static_str("consumer"))
                .with_protocols(vec![JoinGroupRequestProtocol::default()
                    .with_name(StrBytes::from_static_str(RANGE))
                    .with_metadata(encode_subscription(&self.topics))]);
            let r = match conn.send(req, version).await {
                Ok(r) => r,
                Err(e) => {
                    self.coordinator = None;
                    return Err(e);
                }
            };
            if r.error_code == MEMBER_ID_REQUIRED {
                self.member_id = r.member_id.to_string();
                continue;
            }
            resp = Some(r);
            break;
        }
        let Some(join) = resp else {
            return Ok(false);
        };
        if let Some(e) = KafkaError::from_code(join.error_code, None) {
            self.on_group_error(e.code);
            return Err(e.into());
        }
        self.member_id = join.member_id.to_string();
        self.generation = join.generation_id;
        let assignments = if join.leader == join.member_id {
            let subscriptions: BTreeMap<String, Vec<String>> = join
                .members
                .iter()
                .map(|m| {
                    (
                        m.member_id.to_string(),
                        decode_subscription(m.metadata.clone()),
                    )
                })
                .collect();
            let mut counts = BTreeMap::new();
            let wanted: BTreeSet<&String> = subscriptions.values().flatten().collect();
            for t in wanted {
                // A topic that does not exist (yet) gets no partitions, as in Kafka.
                if let Ok(meta) = self.client.topic_metadata(t).await {
                    counts.insert(t.clone(), meta.partitions.len() as i32);
                }
            }
            range_assign(&subscriptions, &counts)
                .into_iter()
                .map(|(member, owned)| {
                    SyncGroupRequestAssignment::default()
                        .with_member_id(s(&member))
                        .with_assignment(encode_assignment(&owned))
                })
                .collect()
        } else {
            Vec::new()
        };
        let version = conn.version_for::<SyncGroupRequest>(5)?;
        let req = SyncGroupRequest::default()
            .with_group_id(group(&self.config.group_id))
            .with_generation_id(self.generation)
            .with_member_id(s(&self.member_id))
            .with_protocol_type(Some(StrBytes::from_static_str("consumer")))
            .with_protocol_name(Some(StrBytes::from_static_str(RANGE)))
            .with_assignments(assignments);
        let sync = match conn.send(req, version).await {
            Ok(r) => r,
            Err(e) => {
                self.coordinator = None;
                return Err(e);
            }
        };
        if let Some(e) = KafkaError::from_code(sync.error_code, None) {
            self.on_group_error(e.code);
            return Err(e.into());
        }
        let owned: Vec<(String, i32)> = decode_assignment(sync.assignment)
            .into_iter()
            .flat_map(|(t, ps)| ps.into_iter().map(move |p| (t.clone(), p)))
            .collect();
        let committed = self.fetch_committed(&conn, &owned).await?;
        let missing: Vec<(String, i32)> = owned
            .iter()
            .filter(|k| !committed.contains_key(*k))
            .cloned()
            .collect();
        let reset = match self.reset {
            OffsetReset::Earliest => {
                list_offsets_many(&self.client, &missing, OffsetSpec::Earliest).await
            }
            OffsetReset::Latest => {
                list_offsets_many(&self.client, &missing, OffsetSpec::Latest).await
            }
            OffsetReset::None => BTreeMap::new(),
        };
        for (t, p) in &owned {
            let key = (t.clone(), *p);
            let start = match (committed.get(&key), reset.get(&key)) {
                (Some(o), _) | (None, Some(o)) => *o,
                (None, None) if self.reset == OffsetReset::None => {
                    return Err(ClientError::InvalidArgument(format!(
                        "no committed offset for {t}-{p} and auto.offset.reset is none"
                    )))
                }
                // The leader did not answer: ask again, partition by partition.
                (None, None) => {
                    let spec = match self.reset {
                        OffsetReset::Earliest => StartOffset::Earliest,
                        _ => StartOffset::Latest,
                    };
                    self.consumer.assign(t, *p, spec).await?;
                    continue;
                }
            };
            self.consumer
                .assign(t, *p, StartOffset::Offset(start))
                .await?;
        }
        self.committed = committed;
        Ok(true)
    }

    async fn fetch_committed(
        &self,
        conn: &Connection,
        owned: &[(String, i32)],
    ) -> Result<BTreeMap<(String, i32), i64>, ClientError> {
        if owned.is_empty() {
            return Ok(BTreeMap::new());
        }
        let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (t, p) in owned {
            topics.entry(t).or_default().push(*p);
        }
        let version = conn.version_for::<OffsetFetchRequest>(7)?;
        let req = OffsetFetchRequest::default()
            .with_group_id(group(&self.config.group_id))
            .with_require_stable(version >= 7)
            .with_topics(Some(
                topics
                    .into_iter()
                    .map(|(t, ps)| {
                        OffsetFetchRequestTopic::default()
                            .with_name(TopicName(s(t)))
                            .with_partition_indexes(ps)
                    })
                    .collect(),
            ));
        crate::groups::committed_offsets(self.bounded(conn.send(req, version)).await?)
    }
}

/// The broker coordinating a key: a group (`key_type` 0) or a transactional id (1),
/// retrying while the coordinator is being elected or loaded.
pub async fn find_coordinator(
    client: &Client,
    key: &str,
    key_type: i8,
) -> Result<i32, ClientError> {
    use kafka_protocol::messages::FindCoordinatorRequest;
    let mut last = None;
    for _ in 0..20 {
        let conn = client.any_connection().await?;
        let version = conn.version_for::<FindCoordinatorRequest>(3)?;
        let req = FindCoordinatorRequest::default()
            .with_key(s(key))
            .with_key_type(key_type);
        let resp = conn.send(req, version).await?;
        match KafkaError::from_code(resp.error_code, resp.error_message.as_deref()) {
            None => return Ok(resp.node_id.0),
            Some(e) if e.is_retriable() => {
                last = Some(e);
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Some(e) => return Err(ClientError::Kafka(e)),
        }
    }
    Err(ClientError::Kafka(last.unwrap_or_else(|| {
        KafkaError::from_code(
            COORDINATOR_NOT_AVAILABLE,
            Some(&format!("no coordinator for {key}")),
        )
        .expect("an error code")
    })))
}

/// Kafka's RangeAssignor: for each topic, the members subscribed to it in member id
/// order each take a consecutive run of partitions, the first `partitions % members`
/// one more than the rest. Every member gets an entry, possibly empty.
pub fn range_assign(
    subscriptions: &BTreeMap<String, Vec<String>>,
    partition_counts: &BTreeMap<String, i32>,
) -> BTreeMap<String, BTreeMap<String, Vec<i32>>> {
    let mut out: BTreeMap<String, BTreeMap<String, Vec<i32>>> = subscriptions
        .keys()
        .map(|m| (m.clone(), BTreeMap::new()))
        .collect();
    for (topic, &count) in partition_counts {
        let members: Vec<&String> = subscriptions
            .iter()
            .filter(|(_, topics)| topics.contains(topic))
            .map(|(m, _)| m)
            .collect();
        if members.is_empty() || count <= 0 {
            continue;
        }
        let n = members.len() as i32;
        let (each, extra) = (count / n, count % n);
        let mut next = 0;
        for (i, m) in members.into_iter().enumerate() {
            let take = each + i32::from((i as i32) < extra);
            if take > 0 {
                out.get_mut(m)
                    .expect("every member has an entry")
                    .insert(topic.clone(), (next..next + take).collect());
            }
            next += take;
        }
    }
    out
}

/// A consumer-protocol subscription (version 0: topics, no user data).
pub fn encode_subscription(topics: &[String]) -> Bytes {
    let mut b = BytesMut::new();
    b.extend_from_slice(&0i16.to_be_bytes());
    ConsumerProtocolSubscription::default()
        .with_topics(topics.iter().map(|t| s(t)).collect())
        .encode(&mut b, 0)
        .expect("a subscription encodes");
    b.freeze()
}

/// The topics of a consumer-protocol subscription (any version); none if it does not decode.
pub fn decode_subscription(mut b: Bytes) -> Vec<String> {
    if b.len() < 2 {
        return Vec::new();
    }
    let version = b.get_i16().clamp(0, 3);
    ConsumerProtocolSubscription::decode(&mut b, version)
        .map(|sub| sub.topics.into_iter().map(|t| t.to_string()).collect())
        .unwrap_or_default()
}

/// A consumer-protocol assignment (version 0).
pub fn encode_assignment(owned: &BTreeMap<String, Vec<i32>>) -> Bytes {
    let mut b = BytesMut::new();
    b.extend_from_slice(&0i16.to_be_bytes());
    ConsumerProtocolAssignment::default()
        .with_assigned_partitions(
            owned
                .iter()
                .map(|(t, ps)| {
                    AssignedTopic::default()
                        .with_topic(TopicName(s(t)))
                        .with_partitions(ps.clone())
                })
                .collect(),
        )
        .encode(&mut b, 0)
        .expect("an assignment encodes");
    b.freeze()
}

pub use crate::groups::decode_assignment;

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_owned())
}

fn group(id: &str) -> GroupId {
    GroupId(s(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subs(list: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        list.iter()
            .map(|(m, ts)| (m.to_string(), ts.iter().map(|t| t.to_string()).collect()))
            .collect()
    }

    #[test]
    fn range_gives_the_first_members_one_more() {
        let s = subs(&[("b", &["t"]), ("a", &["t"]), ("c", &["t"])]);
        let counts = BTreeMap::from([("t".to_string(), 7)]);
        let got = range_assign(&s, &counts);
        assert_eq!(got["a"]["t"], vec![0, 1, 2]);
        assert_eq!(got["b"]["t"], vec![3, 4]);
        assert_eq!(got["c"]["t"], vec![5, 6]);
    }

    #[test]
    fn range_is_per_topic_and_skips_members_not_subscribed() {
        let s = subs(&[("a", &["x", "y"]), ("b", &["y"]), ("c", &["x"])]);
        let counts = BTreeMap::from([("x".to_string(), 2), ("y".to_string(), 1)]);
        let got = range_assign(&s, &counts);
        assert_eq!(got["a"]["x"], vec![0]);
        assert_eq!(got["c"]["x"], vec![1]);
        assert_eq!(got["a"]["y"], vec![0]);
        assert!(!got["b"].contains_key("y") || got["b"]["y"].is_empty());
        // More members than partitions: the last ones get nothing, but an entry.
        let s = subs(&[("a", &["t"]), ("b", &["t"]), ("c", &["t"])]);
        let got = range_assign(&s, &BTreeMap::from([("t".to_string(), 1)]));
        assert_eq!(got["a"]["t"], vec![0]);
        assert!(got["b"].is_empty() && got["c"].is_empty());
    }

    #[test]
    fn subscription_and_assignment_round_trip() {
        let topics = vec!["a".to_string(), "b".to_string()];
        assert_eq!(decode_subscription(encode_subscription(&topics)), topics);
        let owned = BTreeMap::from([("a".to_string(), vec![0, 2]), ("b".to_string(), vec![1])]);
        assert_eq!(decode_assignment(encode_assignment(&owned)), owned);
        assert!(decode_subscription(Bytes::from_static(b"\x00")).is_empty());
    }
}

//! The group coordinator's operations, one per group request: join, sync, heartbeat
//! (both protocols), leave, commit, fetch and delete. Each finds the group, runs its
//! state machine, writes what changed to `__consumer_offsets` (acks=all) and applies it
//! only after the write. Handlers translate wire messages to these calls and the
//! results back; errors are the codec's typed `ResponseError` until the response.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::ConsumerProtocolSubscription;
use kafka_protocol::protocol::Decodable;
use prost::Message;
use strom_proto::group::OffsetValue;
use tokio::time::Instant;

use super::classic::{ClassicGroup, ClassicState, JoinRequest, JoinResult, Reply, SyncResult};
use super::consumer::{Assignment, ClassicJoin, ConsumerGroup, Heartbeat, HeartbeatAnswer};
use super::coordinator::{group_record, kind_change_records, GroupCoordinator};
use super::{protocol, store, GroupEntry, GroupKind};

/// SyncGroup, as the coordinator needs it.
pub struct SyncRequest {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub generation: i32,
    /// v5+: the protocol type and name the member expects.
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    /// From the leader: every member's assignment.
    pub assignments: Vec<(String, Bytes)>,
}

/// One partition's offset in an OffsetCommit.
pub struct OffsetCommit {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
}

/// A committed offset as OffsetFetch answers it (-1 where nothing was committed).
#[derive(Clone, Debug, PartialEq)]
pub struct Committed {
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    /// An open transaction holds an offset for this partition (KIP-447: a consumer
    /// asking with `require_stable` gets UNSTABLE_OFFSET_COMMIT and retries).
    pub unstable: bool,
}

impl Committed {
    pub fn none(partition: i32) -> Committed {
        Committed {
            partition,
            offset: -1,
            leader_epoch: -1,
            metadata: String::new(),
            unstable: false,
        }
    }
}

/// Who sends a TxnOffsetCommit: the producer of the transaction and, with KIP-447, the
/// consumer group member whose offsets they are (generation -1 and an empty member id
/// when the client does not say).
pub struct TxnCommitter<'a> {
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// The KIP-890 verification guard of the group's partition (see
    /// `PartitionLog::start_txn_verification_for`), when it had to be verified.
    pub guard: Option<u64>,
    pub member_id: &'a str,
    pub instance_id: Option<&'a str>,
    pub generation: i32,
}

/// A group as ListGroups shows it.
pub struct GroupListing {
    pub id: String,
    pub protocol_type: String,
    pub state: &'static str,
    /// "classic" or "consumer" (KIP-848).
    pub kind: &'static str,
}

/// A group as DescribeGroups shows it. KIP-848 groups are described too, their members'
/// subscriptions and assignments encoded as the classic consumer protocol so classic
/// tools can read them.
pub struct ClassicDescription {
    pub state: &'static str,
    pub protocol_type: String,
    /// The chosen protocol (classic, once stable) or the assignor (KIP-848).
    pub protocol_data: String,
    pub members: Vec<ClassicMemberDescription>,
}

pub struct ClassicMemberDescription {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Empty unless the group is stable.
    pub metadata: Bytes,
    pub assignment: Bytes,
}

/// A KIP-848 group as ConsumerGroupDescribe shows it.
pub struct ConsumerDescription {
    pub state: &'static str,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub assignor: String,
    pub members: Vec<ConsumerMemberDescription>,
}

pub struct ConsumerMemberDescription {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub member_epoch: i32,
    /// A classic-protocol member (KIP-1099 `member_type` 0).
    pub classic: bool,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    /// (topic id, name, partitions); a topic gone has an empty name.
    pub assigned: Vec<(uuid::Uuid, String, Vec<i32>)>,
    pub target: Vec<(uuid::Uuid, String, Vec<i32>)>,
}

/// Why a consumer-protocol heartbeat failed: the code and, where Kafka gives one, a
/// message for the client.
pub type HeartbeatError = (E, Option<String>);

impl GroupCoordinator {
    /// JoinGroup (classic protocol). An empty consumer group becomes classic; a classic
    /// member joining a live KIP-848 group is assigned by the coordinator (online
    /// migration). The answer may wait for the join phase to complete.
    pub async fn join(&self, group_id: &str, req: JoinRequest) -> JoinResult {
        let member_id = req.member_id.clone();
        if group_id.is_empty() {
            return JoinResult::error(E::InvalidGroupId, &member_id);
        }
        let g = match self.group(group_id, true) {
            Err(e) => return JoinResult::error(e.into(), &member_id),
            Ok(None) => return JoinResult::error(E::CoordinatorNotAvailable, &member_id),
            Ok(Some(g)) => g,
        };
        let reply = {
            let mut e = g.lock().await;
            let mut kind_changed = false;
            if let GroupKind::Consumer(c) = &e.kind {
                if !c.members.is_empty() {
                    return self.join_consumer_group(&mut e, req).await;
                }
                e.kind = GroupKind::Classic(ClassicGroup::new(group_id, Instant::now()));
                kind_changed = true;
            }
            let GroupKind::Classic(c) = &mut e.kind else {
                unreachable!("classic just ensured")
            };
            let reply = c.join(req, Instant::now(), &self.cfg.classic);
            if c.take_dirty() || kind_changed {
                // A static member was replaced in place: store the new member id before
                // answering, as Kafka does. A group that was an empty consumer group
                // drops its consumer-group state (the classic state is written once the
                // rebalance completes).
                let recs = if kind_changed {
                    vec![(store::consumer_key(group_id), None)]
                } else {
                    vec![group_record(&e)]
                };
                if let Err(err) = self.write(e.partition, recs).await {
                    tracing::warn!(group = %group_id, error = %err,
                        "could not store the group after a member joined");
                }
            }
            reply
        };
        match reply {
            Reply::Now(r) => r,
            Reply::Later(rx) => rx
                .await
                .unwrap_or_else(|_| JoinResult::error(E::CoordinatorNotAvailable, &member_id)),
        }
    }

    /// JoinGroup of a classic-protocol member into a KIP-848 group: the coordinator
    /// assigns (no leader, no member list); the answer waits only for the group's write.
    async fn join_consumer_group(&self, e: &mut GroupEntry, req: JoinRequest) -> JoinResult {
        let member_id = req.member_id.clone();
        let cfg = &self.cfg.classic;
        if req.session_timeout_ms < cfg.min_session_timeout_ms
            || req.session_timeout_ms > cfg.max_session_timeout_ms
        {
            return JoinResult::error(E::InvalidSessionTimeout, &member_id);
        }
        let topics = self.topics();
        let consumer_cfg = self.consumer_config(&e.id);
        let before = group_record(e).1;
        let GroupKind::Consumer(c) = &mut e.kind else {
            return JoinResult::error(E::InconsistentGroupProtocol, &member_id);
        };
        let j = ClassicJoin {
            member_id: req.member_id,
            instance_id: req.group_instance_id,
            require_known_member_id: req.require_known_member_id,
            client_id: req.client_id,
            client_host: req.client_host,
            session_timeout_ms: req.session_timeout_ms,
            rebalance_timeout_ms: req.rebalance_timeout_ms,
            protocol_type: req.protocol_type,
            protocols: req.protocols,
        };
        let answer = match c.classic_join(j, &topics, Instant::now(), &consumer_cfg) {
            Ok(a) => a,
            Err((e, id)) => return JoinResult::error(e, &id),
        };
        let after = group_record(e);
        if after.1 != before {
            if let Err(err) = self.write(e.partition, vec![after]).await {
                return JoinResult::error(err.into(), &member_id);
            }
        }
        JoinResult {
            error: None,
            generation: answer.generation,
            protocol_type: Some("consumer".into()),
            protocol_name: Some(answer.protocol_name),
            leader: String::new(),
            member_id: answer.member_id,
            members: vec![],
            skip_assignment: false,
        }
    }

    /// SyncGroup (classic protocol): the leader's assignments are written before any
    /// member gets its own. A classic member of a KIP-848 group gets the coordinator's
    /// assignment, in its embedded protocol's version.
    pub async fn sync(&self, group_id: &str, req: SyncRequest) -> SyncResult {
        let g = match self.group(group_id, false) {
            Err(e) => return SyncResult::error(e.into()),
            Ok(None) => return SyncResult::error(E::UnknownMemberId),
            Ok(Some(g)) => g,
        };
        let reply = {
            let mut e = g.lock().await;
            let partition = e.partition;
            if let GroupKind::Consumer(c) = &mut e.kind {
                return match c.classic_sync(
                    &req.member_id,
                    req.instance_id.as_deref(),
                    req.generation,
                    req.protocol_type.as_deref(),
                    req.protocol_name.as_deref(),
                    Instant::now(),
                ) {
                    Err(e) => SyncResult::error(e),
                    Ok((assigned, version, name)) => SyncResult {
                        error: None,
                        protocol_type: req.protocol_type.map(|_| "consumer".to_string()),
                        protocol_name: req.protocol_name.map(|_| name),
                        assignment: protocol::encode_assignment(version, &self.by_name(&assigned)),
                    },
                };
            }
            let GroupKind::Classic(c) = &mut e.kind else {
                unreachable!("a group is classic or consumer")
            };
            let (reply, effects) = c.sync(
                &req.member_id,
                req.instance_id.as_deref(),
                req.generation,
                req.protocol_type.as_deref(),
                req.protocol_name.as_deref(),
                req.assignments,
                Instant::now(),
            );
            if effects.persist {
                let generation = c.generation;
                let rec = group_record(&e);
                let ok = self.write(partition, vec![rec]).await.is_ok();
                if let GroupKind::Classic(c) = &mut e.kind {
                    c.persisted(generation, ok, Instant::now());
                }
            }
            reply
        };
        match reply {
            Reply::Now(r) => r,
            Reply::Later(rx) => rx
                .await
                .unwrap_or_else(|_| SyncResult::error(E::CoordinatorNotAvailable)),
        }
    }

    /// Heartbeat (classic protocol), also from a classic member of a KIP-848 group.
    pub async fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), E> {
        let Some(g) = self.group(group_id, false)? else {
            return Err(E::UnknownMemberId);
        };
        let mut e = g.lock().await;
        let now = Instant::now();
        match &mut e.kind {
            GroupKind::Classic(c) => c.heartbeat(member_id, instance_id, generation, now),
            GroupKind::Consumer(c) => c.classic_heartbeat(member_id, instance_id, generation, now),
        }
    }

    /// ConsumerGroupHeartbeat (KIP-848): joining, staying, leaving, and server-side
    /// assignments. An empty classic group becomes a consumer group; a live one is
    /// upgraded when the migration policy allows. Changes are written before the answer.
    pub async fn consumer_heartbeat(
        &self,
        group_id: &str,
        hb: Heartbeat,
    ) -> Result<HeartbeatAnswer, HeartbeatError> {
        if group_id.is_empty() {
            return Err((E::InvalidRequest, Some("GroupId can't be empty.".into())));
        }
        if hb.member_epoch == 0
            && hb.subscribed_topic_names.is_none()
            && hb.subscribed_topic_regex.is_none()
        {
            return Err((
                E::InvalidRequest,
                Some(
                    "SubscribedTopicNames or SubscribedTopicRegex must be set in first request."
                        .into(),
                ),
            ));
        }
        let g = match self.group(group_id, hb.member_epoch == 0) {
            Err(e) => return Err((e.into(), None)),
            Ok(None) => return Err((E::UnknownMemberId, None)),
            Ok(Some(g)) => g,
        };
        let topics = self.topics();
        let mut e = g.lock().await;
        let now = Instant::now();
        let mut kind_changed = false;
        if let GroupKind::Classic(c) = &mut e.kind {
            if c.state == ClassicState::Dead {
                return Err((
                    E::GroupIdNotFound,
                    Some(format!("Group {group_id} is not a consumer group.")),
                ));
            }
            if c.is_empty() {
                e.kind = GroupKind::Consumer(ConsumerGroup::new(group_id, now));
            } else {
                // KIP-848's online upgrade of a live classic group.
                let refusal = if hb.member_epoch != 0 {
                    Some(format!("Group {group_id} is not a consumer group."))
                } else if !self.cfg.migration_policy.upgrade() {
                    Some(format!(
                        "Cannot upgrade classic group {group_id} to consumer group because the online upgrade is disabled."
                    ))
                } else if c.protocol_type.as_deref() != Some("consumer") {
                    Some(format!(
                        "Cannot upgrade classic group {group_id} to consumer group because it is not a consumer group (protocol type {:?}).",
                        c.protocol_type.as_deref().unwrap_or("")
                    ))
                } else if c.members.len() > self.cfg.consumer.max_size {
                    Some(format!(
                        "Cannot upgrade classic group {group_id} to consumer group because its size exceeds the consumer group maximum size."
                    ))
                } else {
                    None
                };
                if let Some(msg) = refusal {
                    return Err((E::GroupIdNotFound, Some(msg)));
                }
                match ConsumerGroup::from_classic(c, &topics, now) {
                    Err(why) => {
                        return Err((
                            E::GroupIdNotFound,
                            Some(format!(
                                "Cannot upgrade classic group {group_id} to consumer group: {why}."
                            )),
                        ))
                    }
                    Ok(g) => {
                        tracing::info!(group = %group_id, members = g.members.len(), generation = g.group_epoch,
                            "a consumer-protocol member joins: the classic group becomes a consumer group (KIP-848 upgrade)");
                        c.fail_waiters(E::RebalanceInProgress);
                        e.kind = GroupKind::Consumer(g);
                        kind_changed = true;
                    }
                }
            }
        }
        let before = group_record(&e).1;
        let GroupKind::Consumer(cg) = &mut e.kind else {
            unreachable!("consumer just ensured")
        };
        let cfg = self.consumer_config(group_id);
        let answer = cg
            .heartbeat(hb, &topics, now, &cfg)
            .map_err(|e| (e, None))?;
        if self.maybe_downgrade(&mut e, now) {
            kind_changed = true;
        }
        let after = group_record(&e);
        let recs = if kind_changed {
            kind_change_records(&e)
        } else if after.1 != before {
            vec![after]
        } else {
            vec![]
        };
        self.write(e.partition, recs)
            .await
            .map_err(|err| (err.into(), None))?;
        Ok(answer)
    }

    /// LeaveGroup: members leave (by member id, or by instance id for static members);
    /// one result per member. A KIP-848 group takes leaves from both protocols, as Kafka
    /// 4.x does.
    pub async fn leave(
        &self,
        group_id: &str,
        leaving: &[(String, Option<String>)],
    ) -> Result<Vec<Result<(), E>>, E> {
        let Some(g) = self.group(group_id, false)? else {
            return Err(E::UnknownMemberId);
        };
        let mut e = g.lock().await;
        let partition = e.partition;
        let now = Instant::now();
        let (results, recs) = match &mut e.kind {
            GroupKind::Consumer(c) => {
                let results: Vec<Result<(), E>> = leaving
                    .iter()
                    .map(|(m, i)| c.leave_member(m, i.as_deref(), now))
                    .collect();
                let recs = if !results.iter().any(Result::is_ok) {
                    vec![]
                } else if self.maybe_downgrade(&mut e, now) {
                    kind_change_records(&e)
                } else {
                    vec![group_record(&e)]
                };
                (results, recs)
            }
            GroupKind::Classic(c) => {
                let results: Vec<Result<(), E>> = leaving
                    .iter()
                    .map(|(m, i)| c.leave(m, i.as_deref(), now, &self.cfg.classic))
                    .collect();
                let recs = if c.state == ClassicState::Empty {
                    vec![group_record(&e)]
                } else {
                    vec![]
                };
                (results, recs)
            }
        };
        if let Err(err) = self.write(partition, recs).await {
            tracing::debug!(group = %group_id, error = %err, "writing a group after members left");
        }
        Ok(results)
    }

    /// OffsetCommit: checked against the group's member and generation (classic) or
    /// member epoch (KIP-848), or accepted from "simple" consumers when the group has no
    /// members (Kafka's rule: a negative generation or member epoch, whatever the member
    /// id — a KIP-848 consumer that never subscribed sends its own member id with epoch
    /// -1); written (acks=all) before the answer. One result per offset, in order.
    pub async fn commit_offsets(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        offsets: Vec<OffsetCommit>,
    ) -> Vec<Result<(), E>> {
        let all = |e: E| -> Vec<Result<(), E>> { offsets.iter().map(|_| Err(e)).collect() };
        if group_id.is_empty() {
            return all(E::InvalidGroupId);
        }
        let simple = generation < 0;
        let g = match self.group(group_id, simple) {
            Err(e) => return all(e.into()),
            Ok(None) => return all(E::IllegalGeneration),
            Ok(Some(g)) => g,
        };
        let mut e = g.lock().await;
        if let Err(err) = may_commit(&e, member_id, instance_id, generation) {
            return all(err);
        }
        let (mut results, records, accepted) = self.offset_records(group_id, offsets);
        match self.write(e.partition, records).await {
            Ok(()) => {
                for (_, topic, p, v) in accepted {
                    e.offsets.insert((topic, p), v);
                }
            }
            Err(err) => {
                for (i, ..) in accepted {
                    results[i] = Err(err.into());
                }
            }
        }
        results
    }

    /// OffsetFetch: the committed offsets of `wanted` partitions (by topic), or of
    /// every partition with one. A KIP-848 member asking (v9+) must be current.
    pub async fn fetch_offsets(
        &self,
        group_id: &str,
        wanted: Option<Vec<(String, Vec<i32>)>>,
        member: Option<(&str, i32)>,
    ) -> Result<BTreeMap<String, Vec<Committed>>, E> {
        let mut out: BTreeMap<String, Vec<Committed>> = BTreeMap::new();
        let Some(g) = self.group(group_id, false)? else {
            for (t, ps) in wanted.unwrap_or_default() {
                out.insert(t, ps.into_iter().map(Committed::none).collect());
            }
            return Ok(out);
        };
        let e = g.lock().await;
        if let (Some((member_id, epoch)), GroupKind::Consumer(c)) = (member, &e.kind) {
            if !member_id.is_empty() {
                c.check_commit(member_id, epoch)?;
            }
        }
        let committed = |p: i32, o: &OffsetValue| Committed {
            partition: p,
            offset: o.offset,
            leader_epoch: o.leader_epoch,
            metadata: o.metadata.clone(),
            unstable: false,
        };
        let unstable = |t: &String, p: i32| {
            let k = (t.clone(), p);
            e.pending_txn.values().any(|o| o.contains_key(&k))
        };
        match wanted {
            Some(topics) => {
                for (t, ps) in topics {
                    let v = ps
                        .into_iter()
                        .map(|p| {
                            let mut c = match e.offsets.get(&(t.clone(), p)) {
                                Some(o) => committed(p, o),
                                None => Committed::none(p),
                            };
                            c.unstable = unstable(&t, p);
                            c
                        })
                        .collect();
                    out.insert(t, v);
                }
            }
            None => {
                for ((t, p), o) in &e.offsets {
                    let mut c = committed(*p, o);
                    c.unstable = unstable(t, *p);
                    out.entry(t.clone()).or_default().push(c);
                }
            }
        }
        Ok(out)
    }

    /// TxnOffsetCommit (KIP-98, KIP-447): the offsets are written to the group's
    /// partition inside the producer's transaction (the producer must have added the
    /// partition with AddOffsetsToTxn) and become the group's committed offsets when
    /// the transaction's commit marker reaches that partition (`end_txn`). A member
    /// that says who it is (KIP-447) is checked like a commit; one that does not is
    /// trusted, as Kafka does.
    pub async fn txn_commit_offsets(
        &self,
        group_id: &str,
        who: TxnCommitter<'_>,
        offsets: Vec<OffsetCommit>,
    ) -> Vec<Result<(), E>> {
        let all = |e: E| -> Vec<Result<(), E>> { offsets.iter().map(|_| Err(e)).collect() };
        if group_id.is_empty() {
            return all(E::InvalidGroupId);
        }
        let g = match self.group(group_id, true) {
            Err(e) => return all(e.into()),
            Ok(None) => return all(E::CoordinatorNotAvailable),
            Ok(Some(g)) => g,
        };
        let mut e = g.lock().await;
        if let Err(err) = may_txn_commit(&e, &who) {
            return all(err);
        }
        let (mut results, records, accepted) = self.offset_records(group_id, offsets);
        let producer = Some((who.producer_id, who.producer_epoch));
        match self
            .write_txn(e.partition, records, producer, who.guard)
            .await
        {
            Ok(()) => {
                let pending = e.pending_txn.entry(who.producer_id).or_default();
                for (_, topic, p, v) in accepted {
                    pending.insert((topic, p), v);
                }
            }
            Err(err) => {
                for (i, ..) in accepted {
                    results[i] = Err(err.into());
                }
            }
        }
        results
    }

    /// A transaction marker was written (and replicated) at `partition` of
    /// `__consumer_offsets`: the producer's pending offsets there become committed
    /// offsets (commit) or are dropped (abort).
    pub async fn end_txn(&self, partition: i32, producer_id: i64, commit: bool) {
        for g in self.groups_of(partition) {
            let mut e = g.lock().await;
            if let Some(pending) = e.pending_txn.remove(&producer_id) {
                tracing::debug!(group = %e.id, producer_id, commit, offsets = pending.len(), "transactional offsets ended");
                store::end_txn_offsets(&mut e.offsets, pending, commit);
            }
        }
    }

    /// OffsetDelete: removes committed offsets of partitions whose topic the group is not
    /// subscribed to (GROUP_SUBSCRIBED_TO_TOPIC otherwise). One result per partition.
    pub async fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> Result<Vec<Result<(), E>>, E> {
        let Some(g) = self.group(group_id, false)? else {
            return Err(E::GroupIdNotFound);
        };
        let mut e = g.lock().await;
        let subs = subscribed(&e);
        let mut records = Vec::new();
        let mut doomed = Vec::new();
        let mut results = Vec::with_capacity(partitions.len());
        for (t, p) in partitions {
            if subs.contains(t) {
                results.push(Err(E::GroupSubscribedToTopic));
                continue;
            }
            let key = (t.clone(), *p);
            if e.offsets.contains_key(&key) {
                records.push((store::offset_key(&e.id, t, *p), None::<Bytes>));
                doomed.push(key);
            }
            results.push(Ok(()));
        }
        self.write(e.partition, records).await?;
        for k in doomed {
            e.offsets.remove(&k);
        }
        Ok(results)
    }

    /// DeleteGroups, one group: only a group without members; its offsets and state are
    /// deleted (tombstones).
    pub async fn delete_group(&self, group_id: &str) -> Result<(), E> {
        let Some(g) = self.group(group_id, false)? else {
            return Err(E::GroupIdNotFound);
        };
        let mut e = g.lock().await;
        if !e.is_empty() {
            return Err(E::NonEmptyGroup);
        }
        let mut records: Vec<(Bytes, Option<Bytes>)> = e
            .offsets
            .keys()
            .map(|(t, p)| (store::offset_key(&e.id, t, *p), None))
            .collect();
        records.push((store::classic_key(&e.id), None));
        records.push((store::consumer_key(&e.id), None));
        self.write(e.partition, records).await?;
        e.offsets.clear();
        if let GroupKind::Classic(c) = &mut e.kind {
            c.mark_dead(Instant::now());
        }
        self.remove_group(&e.id);
        Ok(())
    }

    /// ListGroups: the groups this broker coordinates, by id.
    pub async fn list(&self) -> Vec<GroupListing> {
        let mut out = Vec::new();
        for g in self.all_groups() {
            let e = g.lock().await;
            out.push(GroupListing {
                id: e.id.clone(),
                protocol_type: e.protocol_type(),
                state: e.state_name(),
                kind: e.type_name(),
            });
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// DescribeGroups, one group; `Ok(None)` for a group this coordinator does not have.
    pub async fn describe(&self, group_id: &str) -> Result<Option<ClassicDescription>, E> {
        let Some(g) = self.group(group_id, false)? else {
            return Ok(None);
        };
        let e = g.lock().await;
        Ok(Some(match &e.kind {
            GroupKind::Classic(c) => {
                let stable = c.state == ClassicState::Stable;
                let protocol = c.protocol_name.clone().unwrap_or_default();
                ClassicDescription {
                    state: c.state.name(),
                    protocol_type: c.protocol_type.clone().unwrap_or_default(),
                    protocol_data: if stable {
                        protocol.clone()
                    } else {
                        String::new()
                    },
                    members: c
                        .members
                        .values()
                        .map(|m| ClassicMemberDescription {
                            member_id: m.member_id.clone(),
                            instance_id: m.group_instance_id.clone(),
                            client_id: m.client_id.clone(),
                            client_host: m.client_host.clone(),
                            metadata: if stable {
                                m.metadata(&protocol)
                            } else {
                                Bytes::new()
                            },
                            assignment: if stable {
                                m.assignment.clone()
                            } else {
                                Bytes::new()
                            },
                        })
                        .collect(),
                }
            }
            GroupKind::Consumer(c) => ClassicDescription {
                state: c.state_name(),
                protocol_type: "consumer".into(),
                protocol_data: assignor(c),
                members: c
                    .members
                    .values()
                    .map(|m| ClassicMemberDescription {
                        member_id: m.member_id.clone(),
                        instance_id: m.instance_id.clone(),
                        client_id: m.client_id.clone(),
                        client_host: m.client_host.clone(),
                        metadata: protocol::encode_subscription(&m.subscribed_topic_names),
                        assignment: protocol::encode_assignment(0, &self.by_name(&m.assigned)),
                    })
                    .collect(),
            },
        }))
    }

    /// ConsumerGroupDescribe, one group: GROUP_ID_NOT_FOUND (with Kafka's message) for a
    /// group this coordinator does not have or a classic group.
    pub async fn describe_consumer(
        &self,
        group_id: &str,
    ) -> Result<ConsumerDescription, (E, Option<String>)> {
        let g = match self.group(group_id, false) {
            Err(e) => return Err((e.into(), None)),
            Ok(None) => {
                return Err((
                    E::GroupIdNotFound,
                    Some(format!("Group {group_id} not found.")),
                ))
            }
            Ok(Some(g)) => g,
        };
        let e = g.lock().await;
        let GroupKind::Consumer(c) = &e.kind else {
            return Err((
                E::GroupIdNotFound,
                Some(format!("Group {group_id} is not a consumer group.")),
            ));
        };
        let names = self.topic_names.lock().clone();
        let named = |a: &Assignment| {
            a.iter()
                .map(|(id, ps)| {
                    let name = names.get(id).cloned().unwrap_or_default();
                    (*id, name, ps.iter().copied().collect())
                })
                .collect()
        };
        Ok(ConsumerDescription {
            state: c.state_name(),
            group_epoch: c.group_epoch,
            assignment_epoch: c.assignment_epoch,
            assignor: assignor(c),
            members: c
                .members
                .values()
                .map(|m| ConsumerMemberDescription {
                    member_id: m.member_id.clone(),
                    instance_id: m.instance_id.clone(),
                    rack_id: m.rack_id.clone(),
                    member_epoch: m.member_epoch,
                    classic: m.classic.is_some(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    subscribed_topic_names: m.subscribed_topic_names.clone(),
                    subscribed_topic_regex: m.subscribed_topic_regex.clone(),
                    assigned: named(&m.assigned),
                    target: named(c.target.get(&m.member_id).unwrap_or(&Assignment::new())),
                })
                .collect(),
        })
    }

    /// An assignment by topic id as partitions by topic name (topics gone are left out).
    pub fn by_name(&self, a: &Assignment) -> Vec<(String, Vec<i32>)> {
        let names = self.topic_names.lock();
        a.iter()
            .filter_map(|(id, ps)| Some((names.get(id)?.clone(), ps.iter().copied().collect())))
            .collect()
    }
}

/// The server-side assignor a KIP-848 group uses (its members', else Kafka's default).
fn assignor(c: &ConsumerGroup) -> String {
    c.members
        .values()
        .find_map(|m| m.server_assignor.clone())
        .unwrap_or_else(|| "uniform".into())
}

/// Whether `member_id` may commit offsets to the group now.
fn may_commit(
    e: &GroupEntry,
    member_id: &str,
    instance_id: Option<&str>,
    generation: i32,
) -> Result<(), E> {
    let simple = generation < 0;
    match &e.kind {
        GroupKind::Classic(c) => {
            if c.state == ClassicState::Dead {
                return Err(E::CoordinatorNotAvailable);
            }
            if simple && c.is_empty() {
                return Ok(());
            }
            if let Some(i) = instance_id {
                if c.static_members.get(i).is_some_and(|m| m != member_id) {
                    return Err(E::FencedInstanceId);
                }
            }
            if !c.members.contains_key(member_id) {
                return Err(E::UnknownMemberId);
            }
            if generation != c.generation {
                return Err(E::IllegalGeneration);
            }
            if c.state == ClassicState::CompletingRebalance {
                return Err(E::RebalanceInProgress);
            }
            Ok(())
        }
        GroupKind::Consumer(c) => {
            if simple && c.members.is_empty() {
                return Ok(());
            }
            c.check_commit(member_id, generation)
        }
    }
}

/// One offset a commit accepted: its index in the request, partition and value.
type AcceptedOffset = (usize, String, i32, OffsetValue);

/// What checking a commit's offsets gives: a result per offset, the records to write,
/// and the accepted offsets.
type OffsetRecords = (
    Vec<Result<(), E>>,
    Vec<(Bytes, Option<Bytes>)>,
    Vec<AcceptedOffset>,
);

impl GroupCoordinator {
    /// Checks the offsets of a commit (metadata size, partition exists) and makes their
    /// records: a result per offset, the records, and the accepted offsets.
    fn offset_records(&self, group_id: &str, offsets: Vec<OffsetCommit>) -> OffsetRecords {
        let topics = self.topics();
        let now = strom_common::clock::now_ms();
        let mut results: Vec<Result<(), E>> = Vec::with_capacity(offsets.len());
        let mut records = Vec::new();
        let mut accepted = Vec::new();
        for (i, o) in offsets.into_iter().enumerate() {
            if o.metadata.len() > self.cfg.offset_metadata_max_bytes {
                results.push(Err(E::OffsetMetadataTooLarge));
                continue;
            }
            if !topics
                .get(&o.topic)
                .is_some_and(|(_, n)| (0..*n).contains(&o.partition))
            {
                results.push(Err(E::UnknownTopicOrPartition));
                continue;
            }
            let v = OffsetValue {
                offset: o.offset,
                leader_epoch: o.leader_epoch,
                metadata: o.metadata,
                commit_timestamp: now,
            };
            records.push((
                store::offset_key(group_id, &o.topic, o.partition),
                Some(Bytes::from(v.encode_to_vec())),
            ));
            accepted.push((i, o.topic, o.partition, v));
            results.push(Ok(()));
        }
        (results, records, accepted)
    }
}

/// Kafka's checks of a TxnOffsetCommit's member (KIP-447), looser than a commit's: a
/// member that gives no id and no generation is not checked, and a rebalance in
/// progress does not refuse it.
fn may_txn_commit(e: &GroupEntry, who: &TxnCommitter<'_>) -> Result<(), E> {
    let named = who.generation >= 0 || !who.member_id.is_empty() || who.instance_id.is_some();
    match &e.kind {
        GroupKind::Classic(c) => {
            if c.state == ClassicState::Dead {
                return Err(E::CoordinatorNotAvailable);
            }
            if !named || (who.generation < 0 && c.is_empty()) {
                return Ok(());
            }
            if let Some(i) = who.instance_id {
                if c.static_members.get(i).is_some_and(|m| m != who.member_id) {
                    return Err(E::FencedInstanceId);
                }
            }
            if !who.member_id.is_empty() && !c.members.contains_key(who.member_id) {
                return Err(E::UnknownMemberId);
            }
            if who.generation >= 0 && who.generation != c.generation {
                return Err(E::IllegalGeneration);
            }
            Ok(())
        }
        GroupKind::Consumer(c) => {
            if !named || who.member_id.is_empty() {
                return Ok(());
            }
            c.check_commit(who.member_id, who.generation)
        }
    }
}

/// Topics some member of the group subscribes to.
fn subscribed(e: &GroupEntry) -> BTreeSet<String> {
    match &e.kind {
        GroupKind::Classic(c) if c.protocol_type.as_deref() == Some("consumer") => {
            let protocol = c.protocol_name.clone().unwrap_or_default();
            c.members
                .values()
                .flat_map(|m| {
                    let mut meta = m.metadata(&protocol);
                    if meta.len() < 2 {
                        return Vec::new();
                    }
                    let version = i16::from_be_bytes([meta[0], meta[1]]);
                    let _ = bytes::Buf::get_i16(&mut meta);
                    ConsumerProtocolSubscription::decode(&mut meta, version.clamp(0, 3))
                        .map(|s| s.topics.iter().map(|t| t.to_string()).collect())
                        .unwrap_or_default()
                })
                .collect()
        }
        GroupKind::Classic(_) => BTreeSet::new(),
        GroupKind::Consumer(c) => c
            .members
            .values()
            .flat_map(|m| m.subscribed_topic_names.clone())
            .collect(),
    }
}

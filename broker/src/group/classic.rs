//! The classic group protocol (JoinGroup / SyncGroup / Heartbeat / LeaveGroup) as Kafka's
//! group coordinator runs it: member ids handed out with MEMBER_ID_REQUIRED (KIP-394),
//! generations, the initial rebalance delay, session and rebalance timeouts, static
//! members (KIP-345). The leader member computes assignments with the client's own
//! assignor; the coordinator never looks inside subscription or assignment bytes.
//!
//! A pure state machine: time comes in as `now`, delayed answers leave through oneshot
//! channels, and the caller persists the group (and then calls `persisted`) when an
//! operation says so. It does no I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError as E;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// Broker settings the protocol depends on (Kafka's names and defaults).
#[derive(Clone, Debug)]
pub struct ClassicConfig {
    /// `group.min.session.timeout.ms`
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`
    pub max_session_timeout_ms: i32,
    /// `group.initial.rebalance.delay.ms`
    pub initial_rebalance_delay_ms: i64,
    /// `group.max.size`
    pub max_size: usize,
}

impl Default for ClassicConfig {
    fn default() -> Self {
        ClassicConfig {
            min_session_timeout_ms: 6000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 3000,
            max_size: usize::MAX,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClassicState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl ClassicState {
    /// The name DescribeGroups and ListGroups report.
    pub fn name(self) -> &'static str {
        match self {
            ClassicState::Empty => "Empty",
            ClassicState::PreparingRebalance => "PreparingRebalance",
            ClassicState::CompletingRebalance => "CompletingRebalance",
            ClassicState::Stable => "Stable",
            ClassicState::Dead => "Dead",
        }
    }
}

/// A JoinGroup as the state machine needs it.
#[derive(Clone, Debug)]
pub struct JoinRequest {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// v4+: a member must join with a member id the coordinator handed out.
    pub require_known_member_id: bool,
    pub reason: Option<String>,
}

/// The JoinGroup answer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JoinResult {
    /// None: success.
    pub error: Option<E>,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Only for the leader: every member's id, instance id and chosen metadata.
    pub members: Vec<(String, Option<String>, Bytes)>,
    pub skip_assignment: bool,
}

impl JoinResult {
    pub fn error(e: E, member_id: &str) -> JoinResult {
        JoinResult {
            error: Some(e),
            generation: -1,
            member_id: member_id.to_string(),
            ..Default::default()
        }
    }
}

/// The SyncGroup answer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SyncResult {
    /// None: success.
    pub error: Option<E>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResult {
    pub fn error(e: E) -> SyncResult {
        SyncResult {
            error: Some(e),
            ..Default::default()
        }
    }
}

/// An answer now, or later through the receiver.
pub enum Reply<T> {
    Now(T),
    Later(oneshot::Receiver<T>),
}

#[derive(Debug)]
pub struct Member {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    last_heartbeat: Instant,
    join_waiter: Option<oneshot::Sender<JoinResult>>,
    sync_waiter: Option<oneshot::Sender<SyncResult>>,
}

impl Member {
    /// The member's metadata for a protocol.
    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
}

/// A member a consumer group hands to the classic group it becomes (KIP-848 downgrade).
#[derive(Clone, Debug)]
pub struct MigratedMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocols: Vec<(String, Bytes)>,
    /// Its target assignment, partitions by topic name.
    pub assignment: Vec<(String, Vec<i32>)>,
}

/// A classic group.
#[derive(Debug)]
pub struct ClassicGroup {
    pub id: String,
    pub state: ClassicState,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub generation: i32,
    pub leader: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, until they join or time out.
    pending: BTreeMap<String, Instant>,
    /// Static members: instance id -> member id.
    pub static_members: BTreeMap<String, String>,
    /// When the current PreparingRebalance must end.
    join_deadline: Option<Instant>,
    /// During the initial delay of a group that was empty: when to stop waiting.
    initial_delay_until: Option<Instant>,
    /// When a CompletingRebalance must have received every SyncGroup.
    sync_deadline: Option<Instant>,
    /// Generation whose assignment is being persisted.
    persisting: Option<i32>,
    /// When the group last changed state (offsets of empty groups expire from here).
    pub state_since: Instant,
    /// Changed outside a rebalance; see `take_dirty`.
    dirty: bool,
}

/// What the caller must do after an operation.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Effects {
    /// Write the group's state to `__consumer_offsets`, then call `persisted`.
    pub persist: bool,
}

fn new_member_id(client_id: &str) -> String {
    let u = uuid::Builder::from_random_bytes(strom_common::clock::random_u128().to_be_bytes())
        .into_uuid();
    format!("{client_id}-{u}")
}

impl ClassicGroup {
    pub fn new(id: &str, now: Instant) -> ClassicGroup {
        ClassicGroup {
            id: id.to_string(),
            state: ClassicState::Empty,
            protocol_type: None,
            protocol_name: None,
            generation: 0,
            leader: None,
            members: BTreeMap::new(),
            pending: BTreeMap::new(),
            static_members: BTreeMap::new(),
            join_deadline: None,
            initial_delay_until: None,
            sync_deadline: None,
            persisting: None,
            state_since: now,
            dirty: false,
        }
    }

    fn set_state(&mut self, s: ClassicState, now: Instant) {
        if self.state != s {
            self.state = s;
            self.state_since = now;
        }
    }

    fn max_rebalance_timeout(&self) -> Duration {
        let ms = self
            .members
            .values()
            .map(|m| m.rebalance_timeout_ms)
            .max()
            .unwrap_or(0);
        Duration::from_millis(ms.max(0) as u64)
    }

    /// The protocol every member supports, most preferred by votes (Kafka's rule).
    fn select_protocol(&self) -> Option<String> {
        let mut candidates: Option<BTreeSet<String>> = None;
        for m in self.members.values() {
            let names: BTreeSet<String> = m.protocols.iter().map(|(n, _)| n.clone()).collect();
            candidates = Some(match candidates {
                None => names,
                Some(c) => c.intersection(&names).cloned().collect(),
            });
        }
        let candidates = candidates?;
        let mut votes: BTreeMap<&String, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some((n, _)) = m.protocols.iter().find(|(n, _)| candidates.contains(n)) {
                *votes.entry(n).or_default() += 1;
            }
        }
        votes
            .into_iter()
            .max_by_key(|(n, v)| (*v, std::cmp::Reverse(*n)))
            .map(|(n, _)| n.clone())
    }

    /// Whether a member with these protocols could join (same type, a common protocol).
    fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        self.members.values().all(|m| {
            m.protocols
                .iter()
                .any(|(n, _)| protocols.iter().any(|(p, _)| p == n))
        })
    }

    /// JoinGroup.
    pub fn join(
        &mut self,
        req: JoinRequest,
        now: Instant,
        cfg: &ClassicConfig,
    ) -> Reply<JoinResult> {
        let me = req.member_id.clone();
        if self.state == ClassicState::Dead {
            return Reply::Now(JoinResult::error(E::CoordinatorNotAvailable, &me));
        }
        if req.session_timeout_ms < cfg.min_session_timeout_ms
            || req.session_timeout_ms > cfg.max_session_timeout_ms
        {
            return Reply::Now(JoinResult::error(E::InvalidSessionTimeout, &me));
        }
        let known = self.members.contains_key(&me);
        if !known && !self.supports(&req.protocol_type, &req.protocols) {
            return Reply::Now(JoinResult::error(E::InconsistentGroupProtocol, &me));
        }
        if me.is_empty() {
            let new_id = new_member_id(&req.client_id);
            if let Some(instance) = &req.group_instance_id {
                // A static member (re)joins: its new member id replaces the old one,
                // whose requests are fenced from now on.
                if let Some(old) = self.static_members.get(instance).cloned() {
                    if self.members.contains_key(&old) {
                        return self.replace_static(&old, new_id, req, now, cfg);
                    }
                }
                self.static_members.insert(instance.clone(), new_id.clone());
                return self.add_and_join(new_id, req, now, cfg);
            }
            if req.require_known_member_id {
                if self.members.len() + self.pending.len() >= cfg.max_size {
                    return Reply::Now(JoinResult::error(E::GroupMaxSizeReached, ""));
                }
                let deadline = now + Duration::from_millis(req.session_timeout_ms.max(0) as u64);
                self.pending.insert(new_id.clone(), deadline);
                return Reply::Now(JoinResult::error(E::MemberIdRequired, &new_id));
            }
            return self.add_and_join(new_id, req, now, cfg);
        }
        if self.pending.remove(&me).is_some() {
            return self.add_and_join(me, req, now, cfg);
        }
        if let Some(instance) = &req.group_instance_id {
            if self.static_members.get(instance).is_some_and(|m| *m != me) {
                return Reply::Now(JoinResult::error(E::FencedInstanceId, &me));
            }
        }
        if !known {
            return Reply::Now(JoinResult::error(E::UnknownMemberId, &me));
        }
        // A known member rejoins.
        let is_leader = self.leader.as_deref() == Some(me.as_str());
        let changed;
        {
            let m = self.members.get_mut(&me).expect("known");
            changed = m.protocols != req.protocols;
            m.protocols = req.protocols;
            m.session_timeout_ms = req.session_timeout_ms;
            m.rebalance_timeout_ms = req.rebalance_timeout_ms;
            m.client_id = req.client_id;
            m.client_host = req.client_host;
            m.last_heartbeat = now;
        }
        match self.state {
            // It missed the join answer of the generation being synced: send it again.
            ClassicState::CompletingRebalance if !changed => {
                return Reply::Now(self.join_result_for(&me, is_leader));
            }
            // Nothing changed for a follower of a stable group: the current generation.
            ClassicState::Stable if !changed && !is_leader => {
                return Reply::Now(self.join_result_for(&me, false));
            }
            ClassicState::PreparingRebalance => {}
            _ => self.prepare_rebalance(now, cfg),
        }
        let (tx, rx) = oneshot::channel();
        if let Some(old) = self
            .members
            .get_mut(&me)
            .expect("known")
            .join_waiter
            .replace(tx)
        {
            let _ = old.send(JoinResult::error(E::UnknownMemberId, &me));
        }
        self.try_complete_join(now, false);
        Reply::Later(rx)
    }

    /// A static member's instance joins again without a member id (KIP-345): the new
    /// id takes over the old member and its assignment, and the old id is fenced. In a
    /// stable group whose protocol stays the same this is answered at once with the
    /// current generation (no rebalance, the other members notice nothing); otherwise
    /// the group rebalances, as Kafka's coordinator does.
    fn replace_static(
        &mut self,
        old: &str,
        new_id: String,
        req: JoinRequest,
        now: Instant,
        cfg: &ClassicConfig,
    ) -> Reply<JoinResult> {
        let mut m = self.members.remove(old).expect("checked");
        if let Some(w) = m.join_waiter.take() {
            let _ = w.send(JoinResult::error(E::FencedInstanceId, old));
        }
        if let Some(w) = m.sync_waiter.take() {
            let _ = w.send(SyncResult::error(E::FencedInstanceId));
        }
        let was_leader = self.leader.as_deref() == Some(old);
        if was_leader {
            self.leader = Some(new_id.clone());
        }
        let instance = req.group_instance_id.clone().expect("a static member");
        tracing::info!(group = %self.id, instance = %instance, old = %old, new = %new_id,
            "static member replaced by its returning instance");
        m.member_id = new_id.clone();
        m.client_id = req.client_id;
        m.client_host = req.client_host;
        m.session_timeout_ms = req.session_timeout_ms;
        m.rebalance_timeout_ms = req.rebalance_timeout_ms;
        m.protocols = req.protocols;
        m.last_heartbeat = now;
        self.members.insert(new_id.clone(), m);
        self.static_members.insert(instance, new_id.clone());
        self.dirty = true;
        match self.state {
            ClassicState::Stable if self.select_protocol() == self.protocol_name => {
                let mut r = self.join_result_for(&new_id, was_leader);
                // KIP-814: the leader need not compute an assignment again.
                r.skip_assignment = was_leader;
                return Reply::Now(r);
            }
            ClassicState::PreparingRebalance => {}
            _ => self.prepare_rebalance(now, cfg),
        }
        let (tx, rx) = oneshot::channel();
        self.members.get_mut(&new_id).expect("inserted").join_waiter = Some(tx);
        self.try_complete_join(now, false);
        Reply::Later(rx)
    }

    /// Whether the group changed outside a rebalance (a static member replaced) and
    /// should be written to `__consumer_offsets`; clears the flag.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    fn add_and_join(
        &mut self,
        member_id: String,
        req: JoinRequest,
        now: Instant,
        cfg: &ClassicConfig,
    ) -> Reply<JoinResult> {
        if self.members.len() >= cfg.max_size {
            return Reply::Now(JoinResult::error(E::GroupMaxSizeReached, &member_id));
        }
        let (tx, rx) = oneshot::channel();
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        self.members.insert(
            member_id.clone(),
            Member {
                member_id: member_id.clone(),
                group_instance_id: req.group_instance_id.clone(),
                client_id: req.client_id,
                client_host: req.client_host,
                session_timeout_ms: req.session_timeout_ms,
                rebalance_timeout_ms: req.rebalance_timeout_ms,
                protocol_type: req.protocol_type,
                protocols: req.protocols,
                assignment: Bytes::new(),
                last_heartbeat: now,
                join_waiter: Some(tx),
                sync_waiter: None,
            },
        );
        if let Some(i) = req.group_instance_id {
            self.static_members.insert(i, member_id);
        }
        if self.state == ClassicState::PreparingRebalance {
            // New members extend the initial delay (Kafka's InitialDelayedJoin).
            if let Some(until) = self.initial_delay_until {
                let extended =
                    now + Duration::from_millis(cfg.initial_rebalance_delay_ms.max(0) as u64);
                let cap = self.join_deadline.unwrap_or(extended);
                self.initial_delay_until = Some(extended.min(cap).max(until));
            }
        } else {
            self.prepare_rebalance(now, cfg);
        }
        self.try_complete_join(now, false);
        Reply::Later(rx)
    }

    fn prepare_rebalance(&mut self, now: Instant, cfg: &ClassicConfig) {
        // Pending SyncGroups of the old generation must rejoin.
        for m in self.members.values_mut() {
            if let Some(w) = m.sync_waiter.take() {
                let _ = w.send(SyncResult::error(E::RebalanceInProgress));
            }
        }
        let was_empty = self.state == ClassicState::Empty;
        self.set_state(ClassicState::PreparingRebalance, now);
        self.sync_deadline = None;
        self.persisting = None;
        let timeout = self.max_rebalance_timeout();
        self.join_deadline = Some(now + timeout);
        self.initial_delay_until = if was_empty && cfg.initial_rebalance_delay_ms > 0 {
            let d = now + Duration::from_millis(cfg.initial_rebalance_delay_ms as u64);
            Some(d.min(now + timeout))
        } else {
            None
        };
    }

    /// Ends the join phase if every member rejoined (and the initial delay is over), or
    /// when `forced` (the rebalance timeout passed): members that did not rejoin leave.
    fn try_complete_join(&mut self, now: Instant, forced: bool) {
        if self.state != ClassicState::PreparingRebalance {
            return;
        }
        let all_joined = self.members.values().all(|m| m.join_waiter.is_some());
        let delay_over = self.initial_delay_until.is_none_or(|u| now >= u);
        if !(forced || all_joined && delay_over) {
            return;
        }
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join_waiter.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for id in gone {
            self.remove_member(&id);
        }
        self.generation += 1;
        self.join_deadline = None;
        self.initial_delay_until = None;
        if self.members.is_empty() {
            self.protocol_name = None;
            self.leader = None;
            self.set_state(ClassicState::Empty, now);
            return;
        }
        self.protocol_name = self.select_protocol();
        if self
            .leader
            .as_ref()
            .is_none_or(|l| !self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        self.set_state(ClassicState::CompletingRebalance, now);
        self.sync_deadline = Some(now + self.max_rebalance_timeout());
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let is_leader = self.leader.as_deref() == Some(id.as_str());
            let result = self.join_result_for(&id, is_leader);
            let m = self.members.get_mut(&id).expect("member");
            m.last_heartbeat = now;
            if let Some(w) = m.join_waiter.take() {
                let _ = w.send(result);
            }
        }
    }

    fn join_result_for(&self, member_id: &str, with_members: bool) -> JoinResult {
        let protocol = self.protocol_name.clone();
        let members = if with_members {
            let p = protocol.clone().unwrap_or_default();
            self.members
                .values()
                .map(|m| {
                    (
                        m.member_id.clone(),
                        m.group_instance_id.clone(),
                        m.metadata(&p),
                    )
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResult {
            error: None,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: protocol,
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members,
            skip_assignment: false,
        }
    }

    fn remove_member(&mut self, id: &str) {
        if let Some(mut m) = self.members.remove(id) {
            if let Some(w) = m.join_waiter.take() {
                let _ = w.send(JoinResult::error(E::UnknownMemberId, id));
            }
            if let Some(w) = m.sync_waiter.take() {
                let _ = w.send(SyncResult::error(E::UnknownMemberId));
            }
            if let Some(i) = &m.group_instance_id {
                if self.static_members.get(i).is_some_and(|x| x == id) {
                    self.static_members.remove(i);
                }
            }
        }
        if self.leader.as_deref() == Some(id) {
            self.leader = self.members.keys().next().cloned();
        }
    }

    fn check_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), E> {
        if let Some(i) = instance_id {
            if let Some(current) = self.static_members.get(i) {
                if current != member_id {
                    return Err(E::FencedInstanceId);
                }
            }
        }
        if !self.members.contains_key(member_id) {
            return Err(E::UnknownMemberId);
        }
        if generation != self.generation {
            return Err(E::IllegalGeneration);
        }
        Ok(())
    }

    /// SyncGroup. `assignments` are only read from the leader.
    #[allow(clippy::too_many_arguments)]
    pub fn sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Bytes)>,
        now: Instant,
    ) -> (Reply<SyncResult>, Effects) {
        let none = Effects::default();
        if self.state == ClassicState::Dead {
            return (
                Reply::Now(SyncResult::error(E::CoordinatorNotAvailable)),
                none,
            );
        }
        if let Err(e) = self.check_member(member_id, instance_id, generation) {
            return (Reply::Now(SyncResult::error(e)), none);
        }
        if protocol_type.is_some_and(|t| Some(t) != self.protocol_type.as_deref())
            || protocol_name.is_some_and(|n| Some(n) != self.protocol_name.as_deref())
        {
            return (
                Reply::Now(SyncResult::error(E::InconsistentGroupProtocol)),
                none,
            );
        }
        match self.state {
            ClassicState::PreparingRebalance => {
                (Reply::Now(SyncResult::error(E::RebalanceInProgress)), none)
            }
            ClassicState::Stable => {
                let m = &self.members[member_id];
                (Reply::Now(self.sync_result(m.assignment.clone())), none)
            }
            ClassicState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                {
                    let m = self.members.get_mut(member_id).expect("checked");
                    m.last_heartbeat = now;
                    if let Some(old) = m.sync_waiter.replace(tx) {
                        let _ = old.send(SyncResult::error(E::RebalanceInProgress));
                    }
                }
                if self.leader.as_deref() == Some(member_id) && self.persisting.is_none() {
                    let given: BTreeMap<String, Bytes> = assignments.into_iter().collect();
                    for (id, m) in self.members.iter_mut() {
                        m.assignment = given.get(id).cloned().unwrap_or_default();
                    }
                    self.persisting = Some(self.generation);
                    return (Reply::Later(rx), Effects { persist: true });
                }
                (Reply::Later(rx), none)
            }
            ClassicState::Empty | ClassicState::Dead => {
                (Reply::Now(SyncResult::error(E::UnknownMemberId)), none)
            }
        }
    }

    fn sync_result(&self, assignment: Bytes) -> SyncResult {
        SyncResult {
            error: None,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            assignment,
        }
    }

    /// The group state for `generation` was written (or not): answer the waiting syncs.
    pub fn persisted(&mut self, generation: i32, ok: bool, now: Instant) {
        if self.persisting != Some(generation) || self.state != ClassicState::CompletingRebalance {
            return;
        }
        self.persisting = None;
        if !ok {
            for m in self.members.values_mut() {
                if let Some(w) = m.sync_waiter.take() {
                    let _ = w.send(SyncResult::error(E::CoordinatorNotAvailable));
                }
            }
            return;
        }
        self.set_state(ClassicState::Stable, now);
        self.sync_deadline = None;
        let results: Vec<(String, SyncResult)> = self
            .members
            .values()
            .map(|m| (m.member_id.clone(), self.sync_result(m.assignment.clone())))
            .collect();
        for (id, r) in results {
            let m = self.members.get_mut(&id).expect("member");
            if let Some(w) = m.sync_waiter.take() {
                let _ = w.send(r);
            }
        }
    }

    /// Heartbeat: NONE, or the reason the member must rejoin.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> Result<(), E> {
        if self.state == ClassicState::Dead {
            return Err(E::CoordinatorNotAvailable);
        }
        self.check_member(member_id, instance_id, generation)?;
        self.members
            .get_mut(member_id)
            .expect("checked")
            .last_heartbeat = now;
        match self.state {
            ClassicState::PreparingRebalance => Err(E::RebalanceInProgress),
            _ => Ok(()),
        }
    }

    /// LeaveGroup for one member (by member id, or by instance id for static members).
    pub fn leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        now: Instant,
        cfg: &ClassicConfig,
    ) -> Result<(), E> {
        let id = match instance_id {
            Some(i) => match self.static_members.get(i) {
                Some(current) if member_id.is_empty() || current == member_id => current.clone(),
                Some(_) => return Err(E::FencedInstanceId),
                None => return Err(E::UnknownMemberId),
            },
            None => member_id.to_string(),
        };
        if self.pending.remove(&id).is_some() {
            return Ok(());
        }
        if !self.members.contains_key(&id) {
            return Err(E::UnknownMemberId);
        }
        self.remove_member(&id);
        self.member_left(now, cfg);
        Ok(())
    }

    fn member_left(&mut self, now: Instant, cfg: &ClassicConfig) {
        match self.state {
            ClassicState::Stable | ClassicState::CompletingRebalance => {
                if self.members.is_empty() {
                    self.generation += 1;
                    self.protocol_name = None;
                    self.leader = None;
                    self.set_state(ClassicState::Empty, now);
                } else {
                    self.prepare_rebalance(now, cfg);
                    self.try_complete_join(now, false);
                }
            }
            ClassicState::PreparingRebalance => self.try_complete_join(now, false),
            _ => {}
        }
    }

    /// Expires sessions, ends join phases whose time is up, and drops members that did
    /// not sync in time. Returns whether the group state must be written.
    pub fn tick(&mut self, now: Instant, cfg: &ClassicConfig) -> Effects {
        let before = (self.state, self.generation);
        self.pending.retain(|_, deadline| *deadline > now);
        // Members waiting in JoinGroup are not expired; the rebalance timeout governs them.
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join_waiter.is_none())
            .filter(|m| {
                now.saturating_duration_since(m.last_heartbeat)
                    > Duration::from_millis(m.session_timeout_ms.max(0) as u64)
            })
            .map(|m| m.member_id.clone())
            .collect();
        for id in &expired {
            tracing::info!(group = %self.id, member = %id, "member session expired");
            self.remove_member(id);
        }
        if !expired.is_empty() {
            self.member_left(now, cfg);
        }
        if self.state == ClassicState::PreparingRebalance {
            let forced = self.join_deadline.is_some_and(|d| now >= d);
            self.try_complete_join(now, forced);
        }
        if self.state == ClassicState::CompletingRebalance && self.persisting.is_none() {
            if let Some(d) = self.sync_deadline {
                if now >= d {
                    // Members that never sent SyncGroup leave; the rest rebalance.
                    let lagging: Vec<String> = self
                        .members
                        .values()
                        .filter(|m| m.sync_waiter.is_none())
                        .map(|m| m.member_id.clone())
                        .collect();
                    for id in lagging {
                        self.remove_member(&id);
                    }
                    self.member_left(now, cfg);
                    if self.state == ClassicState::CompletingRebalance {
                        self.prepare_rebalance(now, cfg);
                    }
                }
            }
        }
        let after = (self.state, self.generation);
        Effects {
            persist: before != after && self.state == ClassicState::Empty,
        }
    }

    /// Marks the group deleted; every waiter is told to find the coordinator again.
    pub fn mark_dead(&mut self, now: Instant) {
        for m in self.members.values_mut() {
            if let Some(w) = m.join_waiter.take() {
                let _ = w.send(JoinResult::error(E::CoordinatorNotAvailable, &m.member_id));
            }
            if let Some(w) = m.sync_waiter.take() {
                let _ = w.send(SyncResult::error(E::CoordinatorNotAvailable));
            }
        }
        self.set_state(ClassicState::Dead, now);
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Answers every waiting JoinGroup and SyncGroup with `e` (the group is becoming a
    /// consumer group: its members rejoin through the new protocol's rules).
    pub fn fail_waiters(&mut self, e: E) {
        for m in self.members.values_mut() {
            if let Some(w) = m.join_waiter.take() {
                let _ = w.send(JoinResult::error(e, &m.member_id));
            }
            if let Some(w) = m.sync_waiter.take() {
                let _ = w.send(SyncResult::error(e));
            }
        }
    }

    /// KIP-848's online downgrade: the classic group a consumer group becomes when only
    /// classic-protocol members are left. Generation = the consumer group's epoch,
    /// protocol = the one every member supports that most members prefer, each member's
    /// assignment its target in the consumer group; then a rebalance starts, so every
    /// member rejoins under the classic protocol's rules.
    pub fn from_consumer(
        id: &str,
        generation: i32,
        members: Vec<MigratedMember>,
        now: Instant,
        cfg: &ClassicConfig,
    ) -> ClassicGroup {
        let mut g = ClassicGroup::new(id, now);
        g.protocol_type = Some("consumer".into());
        let supported = |name: &str| {
            members
                .iter()
                .all(|m| m.protocols.iter().any(|(n, _)| n == name))
        };
        let mut votes: BTreeMap<String, usize> = BTreeMap::new();
        for m in &members {
            if let Some((n, _)) = m.protocols.iter().find(|(n, _)| supported(n)) {
                *votes.entry(n.clone()).or_default() += 1;
            }
        }
        let selected = votes
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(n, _)| n.clone())
            .unwrap_or_default();
        for m in members {
            let metadata = m
                .protocols
                .iter()
                .find(|(n, _)| *n == selected)
                .map(|(_, b)| b.clone())
                .unwrap_or_default();
            let assignment = super::protocol::encode_assignment(
                super::protocol::version_of(&metadata),
                &m.assignment,
            );
            if g.leader.is_none() {
                g.leader = Some(m.member_id.clone());
            }
            if let Some(i) = &m.group_instance_id {
                g.static_members.insert(i.clone(), m.member_id.clone());
            }
            g.members.insert(
                m.member_id.clone(),
                Member {
                    member_id: m.member_id,
                    group_instance_id: m.group_instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    session_timeout_ms: m.session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    protocol_type: "consumer".into(),
                    protocols: m.protocols,
                    assignment,
                    last_heartbeat: now,
                    join_waiter: None,
                    sync_waiter: None,
                },
            );
        }
        g.generation = generation;
        g.protocol_name = Some(selected);
        g.set_state(ClassicState::Stable, now);
        g.prepare_rebalance(now, cfg);
        g
    }

    /// Restores a member from the stored group state (after a coordinator change).
    #[allow(clippy::too_many_arguments)]
    pub fn restore_member(
        &mut self,
        member_id: String,
        group_instance_id: Option<String>,
        client_id: String,
        client_host: String,
        session_timeout_ms: i32,
        rebalance_timeout_ms: i32,
        protocol: Option<(String, Bytes)>,
        assignment: Bytes,
        now: Instant,
    ) {
        if let Some(i) = &group_instance_id {
            self.static_members.insert(i.clone(), member_id.clone());
        }
        self.members.insert(
            member_id.clone(),
            Member {
                member_id,
                group_instance_id,
                client_id,
                client_host,
                session_timeout_ms,
                rebalance_timeout_ms,
                protocol_type: self.protocol_type.clone().unwrap_or_default(),
                protocols: protocol.into_iter().collect(),
                assignment,
                last_heartbeat: now,
                join_waiter: None,
                sync_waiter: None,
            },
        );
    }

    /// Sets the restored group's generation, protocol and state.
    pub fn restore(
        &mut self,
        protocol_type: Option<String>,
        protocol_name: Option<String>,
        generation: i32,
        leader: Option<String>,
        now: Instant,
    ) {
        self.protocol_type = protocol_type;
        self.protocol_name = protocol_name;
        self.generation = generation;
        self.leader = leader;
        let s = if self.members.is_empty() {
            ClassicState::Empty
        } else {
            ClassicState::Stable
        };
        self.set_state(s, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ClassicConfig {
        ClassicConfig {
            initial_rebalance_delay_ms: 0,
            ..Default::default()
        }
    }

    fn req(member: &str, protocols: &[&str]) -> JoinRequest {
        JoinRequest {
            member_id: member.to_string(),
            group_instance_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            protocol_type: "consumer".into(),
            protocols: protocols
                .iter()
                .map(|p| (p.to_string(), Bytes::from(format!("meta-{p}"))))
                .collect(),
            require_known_member_id: true,
            reason: None,
        }
    }

    fn now_result<T>(r: Reply<T>) -> T {
        match r {
            Reply::Now(t) => t,
            Reply::Later(_) => panic!("expected an immediate answer"),
        }
    }

    fn later<T>(r: Reply<T>) -> oneshot::Receiver<T> {
        match r {
            Reply::Later(rx) => rx,
            Reply::Now(_) => panic!("expected a delayed answer"),
        }
    }

    /// Joins with MEMBER_ID_REQUIRED first, as clients ≥ v4 do; returns the member id and
    /// the pending join.
    fn join_new(
        g: &mut ClassicGroup,
        now: Instant,
        protocols: &[&str],
    ) -> (String, oneshot::Receiver<JoinResult>) {
        let first = now_result(g.join(req("", protocols), now, &cfg()));
        assert_eq!(first.error, Some(E::MemberIdRequired));
        let id = first.member_id.clone();
        let rx = later(g.join(req(&id, protocols), now, &cfg()));
        (id, rx)
    }

    #[tokio::test]
    async fn two_members_join_sync_and_become_stable() {
        let t0 = Instant::now();
        let mut g = ClassicGroup::new("g", t0);
        let (a, mut ja) = join_new(&mut g, t0, &["range", "roundrobin"]);
        // With no initial delay the first member completes the join at once.
        let r = ja.try_recv().unwrap();
        assert_eq!(
            (r.error, r.generation, r.leader.as_str()),
            (None, 1, a.as_str())
        );
        assert_eq!(g.state, ClassicState::CompletingRebalance);
        // A second member joins: generation 2, both must rejoin.
        let (b, mut jb) = join_new(&mut g, t0, &["roundrobin"]);
        assert_eq!(g.state, ClassicState::PreparingRebalance);
        assert!(jb.try_recv().is_err());
        let mut ja = later(g.join(req(&a, &["range", "roundrobin"]), t0, &cfg()));
        let ra = ja.try_recv().unwrap();
        let rb = jb.try_recv().unwrap();
        assert_eq!((ra.generation, rb.generation), (2, 2));
        assert_eq!(
            ra.protocol_name.as_deref(),
            Some("roundrobin"),
            "the only common protocol"
        );
        assert_eq!(ra.members.len(), 2, "the leader sees every member");
        assert!(rb.members.is_empty());
        // Follower syncs first and waits; the leader's assignments release both.
        let (sb, e) = g.sync(&b, None, 2, None, None, vec![], t0);
        assert!(!e.persist);
        let mut sb = later(sb);
        let (sa, e) = g.sync(
            &a,
            None,
            2,
            Some("consumer"),
            Some("roundrobin"),
            vec![(a.clone(), Bytes::from("A")), (b.clone(), Bytes::from("B"))],
            t0,
        );
        assert!(e.persist);
        let mut sa = later(sa);
        assert!(sb.try_recv().is_err(), "answered only once persisted");
        g.persisted(2, true, t0);
        assert_eq!(sa.try_recv().unwrap().assignment, Bytes::from("A"));
        assert_eq!(sb.try_recv().unwrap().assignment, Bytes::from("B"));
        assert_eq!(g.state, ClassicState::Stable);
        assert_eq!(g.heartbeat(&a, None, 2, t0), Ok(()));
        assert_eq!(g.heartbeat(&a, None, 1, t0), Err(E::IllegalGeneration));
        assert_eq!(g.heartbeat("nobody", None, 2, t0), Err(E::UnknownMemberId));
    }

    #[tokio::test]
    async fn leave_and_session_expiry_trigger_rebalances() {
        let t0 = Instant::now();
        let mut g = ClassicGroup::new("g", t0);
        let (a, _ja) = join_new(&mut g, t0, &["range"]);
        let (b, jb) = join_new(&mut g, t0, &["range"]);
        let _ja = later(g.join(req(&a, &["range"]), t0, &cfg()));
        drop(jb);
        let (_s, _) = g.sync(&a, None, 2, None, None, vec![], t0);
        g.persisted(2, true, t0);
        assert_eq!(g.state, ClassicState::Stable);
        // b leaves: a must rejoin (heartbeat says so).
        assert_eq!(g.leave(&b, None, t0, &cfg()), Ok(()));
        assert_eq!(g.state, ClassicState::PreparingRebalance);
        assert_eq!(g.heartbeat(&a, None, 2, t0), Err(E::RebalanceInProgress));
        let mut ja = later(g.join(req(&a, &["range"]), t0, &cfg()));
        assert_eq!(ja.try_recv().unwrap().generation, 3);
        let (_s, _) = g.sync(&a, None, 3, None, None, vec![], t0);
        g.persisted(3, true, t0);
        // a stops heartbeating: after its session timeout the group is empty.
        let later_t = t0 + Duration::from_secs(11);
        g.tick(later_t, &cfg());
        assert_eq!(g.state, ClassicState::Empty);
        assert!(g.members.is_empty());
    }

    #[tokio::test]
    async fn members_that_do_not_rejoin_are_dropped_after_the_rebalance_timeout() {
        let t0 = Instant::now();
        let mut g = ClassicGroup::new("g", t0);
        let (a, _) = join_new(&mut g, t0, &["range"]);
        let (b, _jb) = join_new(&mut g, t0, &["range"]);
        let _ = g.join(req(&a, &["range"]), t0, &cfg());
        let (_s, _) = g.sync(&a, None, 2, None, None, vec![], t0);
        g.persisted(2, true, t0);
        // b rejoins (leader election or new subscription); a never does.
        let mut jb = later(g.join(req(&b, &["range", "x"]), t0, &cfg()));
        assert!(jb.try_recv().is_err());
        assert_eq!(
            g.heartbeat(&a, None, 2, t0 + Duration::from_secs(5)),
            Err(E::RebalanceInProgress)
        );
        g.tick(t0 + Duration::from_secs(31), &cfg());
        let r = jb.try_recv().unwrap();
        assert_eq!((r.error, r.generation), (None, 3));
        assert!(!g.members.contains_key(&a));
    }

    #[tokio::test]
    async fn initial_delay_waits_for_more_members() {
        let t0 = Instant::now();
        let c = ClassicConfig {
            initial_rebalance_delay_ms: 3000,
            ..Default::default()
        };
        let mut g = ClassicGroup::new("g", t0);
        let first = now_result(g.join(req("", &["range"]), t0, &c));
        let mut ja = later(g.join(req(&first.member_id, &["range"]), t0, &c));
        assert!(ja.try_recv().is_err(), "waiting out the initial delay");
        let second = now_result(g.join(req("", &["range"]), t0 + Duration::from_secs(1), &c));
        let mut jb = later(g.join(
            req(&second.member_id, &["range"]),
            t0 + Duration::from_secs(1),
            &c,
        ));
        g.tick(t0 + Duration::from_secs(3), &c);
        assert!(ja.try_recv().is_err(), "extended by the second member");
        g.tick(t0 + Duration::from_secs(4), &c);
        assert_eq!(ja.try_recv().unwrap().generation, 1);
        assert_eq!(jb.try_recv().unwrap().generation, 1);
    }

    #[tokio::test]
    async fn bad_joins_get_kafka_errors() {
        let t0 = Instant::now();
        let mut g = ClassicGroup::new("g", t0);
        let mut r = req("", &["range"]);
        r.session_timeout_ms = 10;
        assert_eq!(
            now_result(g.join(r, t0, &cfg())).error,
            Some(E::InvalidSessionTimeout)
        );
        assert_eq!(
            now_result(g.join(req("ghost", &["range"]), t0, &cfg())).error,
            Some(E::UnknownMemberId)
        );
        let (_a, _) = join_new(&mut g, t0, &["range"]);
        let mut other = req("", &["sticky"]);
        assert_eq!(
            now_result(g.join(other.clone(), t0, &cfg())).error,
            Some(E::InconsistentGroupProtocol)
        );
        other.protocol_type = "connect".into();
        other.protocols = vec![("range".into(), Bytes::new())];
        assert_eq!(
            now_result(g.join(other, t0, &cfg())).error,
            Some(E::InconsistentGroupProtocol)
        );
    }

    #[tokio::test]
    async fn a_full_group_refuses_one_more_member() {
        let t0 = Instant::now();
        let mut g = ClassicGroup::new("g", t0);
        let small = ClassicConfig {
            max_size: 2,
            ..cfg()
        };
        let mut waiting = Vec::new();
        for _ in 0..2 {
            let first = now_result(g.join(req("", &["range"]), t0, &small));
            assert_eq!(first.error, Some(E::MemberIdRequired));
            waiting.push(later(g.join(req(&first.member_id, &["range"]), t0, &small)));
        }
        let third = now_result(g.join(req("", &["range"]), t0, &small));
        let third = if third.error == Some(E::MemberIdRequired) {
            now_result(g.join(req(&third.member_id, &["range"]), t0, &small))
        } else {
            third
        };
        assert_eq!(third.error, Some(E::GroupMaxSizeReached));
    }

    #[tokio::test]
    async fn a_static_member_rejoining_fences_its_old_id() {
        let t0 = Instant::now();
        let mut g = ClassicGroup::new("g", t0);
        let mut r = req("", &["range"]);
        r.group_instance_id = Some("host-1".into());
        let mut j = later(g.join(r.clone(), t0, &cfg()));
        let first = j.try_recv().unwrap();
        let old = first.member_id.clone();
        let (_s, _) = g.sync(&old, Some("host-1"), 1, None, None, vec![], t0);
        g.persisted(1, true, t0);
        // The same instance restarts and joins without a member id.
        let j2 = now_result(g.join(r, t0, &cfg()));
        assert_eq!((j2.error, j2.generation), (None, 1));
        assert_eq!(
            g.heartbeat(&old, Some("host-1"), 1, t0),
            Err(E::FencedInstanceId)
        );
        assert_eq!(g.members.len(), 1);
    }

    #[tokio::test]
    async fn a_static_member_returning_to_a_stable_group_causes_no_rebalance() {
        let t0 = Instant::now();
        let mut g = ClassicGroup::new("g", t0);
        let static_req = |instance: &str| JoinRequest {
            group_instance_id: Some(instance.into()),
            ..req("", &["range"])
        };
        let mut ja = later(g.join(static_req("a"), t0, &cfg()));
        let mut jb = later(g.join(static_req("b"), t0, &cfg()));
        // b's join started a new round; a rejoins with its id to complete it.
        let a_first = ja.try_recv().unwrap();
        let a = a_first.member_id.clone();
        let mut ja = later(g.join(
            JoinRequest {
                member_id: a.clone(),
                ..static_req("a")
            },
            t0,
            &cfg(),
        ));
        let (ra, rb) = (ja.try_recv().unwrap(), jb.try_recv().unwrap());
        assert_eq!((ra.generation, rb.generation), (2, 2));
        let b = rb.member_id.clone();
        let leader = ra.leader.clone();
        let assignments = vec![
            (a.clone(), Bytes::from_static(b"for-a")),
            (b.clone(), Bytes::from_static(b"for-b")),
        ];
        let (_sa, e) = g.sync(&leader, None, 2, None, None, assignments.clone(), t0);
        assert!(e.persist);
        let follower = if leader == a { &b } else { &a };
        let _sf = g.sync(follower, None, 2, None, None, vec![], t0);
        g.persisted(2, true, t0);
        assert_eq!(g.state, ClassicState::Stable);
        // a's process restarts (a static member sends no LeaveGroup) and joins again.
        let r = now_result(g.join(static_req("a"), t0, &cfg()));
        assert_eq!((r.error, r.generation), (None, 2));
        assert_ne!(r.member_id, a);
        assert!(g.take_dirty());
        assert_eq!(g.state, ClassicState::Stable);
        assert_eq!(r.skip_assignment, leader == a);
        // Its SyncGroup gets its old assignment back; b's heartbeat sees no rebalance.
        let (s, _) = g.sync(&r.member_id, Some("a"), 2, None, None, vec![], t0);
        assert_eq!(now_result(s).assignment, Bytes::from_static(b"for-a"));
        assert_eq!(g.heartbeat(&b, Some("b"), 2, t0), Ok(()));
        assert_eq!(g.heartbeat(&a, Some("a"), 2, t0), Err(E::FencedInstanceId));
    }
}

//! The consumer group protocol of KIP-848 (ConsumerGroupHeartbeat): the coordinator
//! assigns partitions itself (uniform or range), members move from epoch to epoch, and a
//! partition moves to its new owner only after the old owner has revoked it, so no
//! partition is ever held by two members at once.
//!
//! Pure state machine with time passed in; the coordinator persists the group after
//! every change a heartbeat reports.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;

use kafka_protocol::error::ResponseError as E;
use tokio::time::Instant;
use uuid::Uuid;

use super::classic::ClassicGroup;
use super::protocol;

/// Partitions by topic id.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// Settings (Kafka's `group.consumer.*` names and defaults).
#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    /// `group.consumer.session.timeout.ms`
    pub session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms`
    pub heartbeat_interval_ms: i32,
    /// `group.consumer.max.size`
    pub max_size: usize,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 5000,
            max_size: usize::MAX,
        }
    }
}

/// The topics as the coordinator sees them: name -> (id, partition count).
pub type TopicView = BTreeMap<String, (Uuid, i32)>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberState {
    Stable,
    /// Told to revoke partitions; keeps its epoch until it confirms.
    UnrevokedPartitions,
    /// At the new epoch, waiting for partitions other members still hold.
    UnreleasedPartitions,
}

#[derive(Clone, Debug)]
pub struct ConsumerMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    pub state: MemberState,
    pub assigned: Assignment,
    pub pending_revocation: Assignment,
    pub last_heartbeat: Instant,
    revocation_deadline: Option<Instant>,
    /// A static member that left with epoch -2 and whose instance may come back.
    pub static_left: bool,
    /// Set for a member that speaks the classic protocol (KIP-848's online migration).
    pub classic: Option<ClassicMeta>,
}

/// What the coordinator keeps of a classic-protocol member inside a consumer group.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassicMeta {
    /// From its JoinGroup: its session ends this long after its last JoinGroup,
    /// SyncGroup or Heartbeat.
    pub session_timeout_ms: i32,
    /// Its JoinGroup protocols (name, subscription bytes), kept for a downgrade.
    pub protocols: Vec<(String, Bytes)>,
    /// It was told to rejoin, or joined and must sync: fenced if not done by then
    /// (its rebalance timeout, Kafka's join and sync timers).
    pub deadline: Option<Instant>,
}

impl ClassicMeta {
    /// The protocol the member prefers (its first), which Kafka echoes back.
    pub fn protocol_name(&self) -> String {
        self.protocols
            .first()
            .map(|(n, _)| n.clone())
            .unwrap_or_default()
    }

    /// The embedded protocol version of its subscription (its assignment is written at
    /// the same version).
    pub fn version(&self) -> i16 {
        self.protocols
            .first()
            .map_or(0, |(_, m)| protocol::version_of(m))
    }
}

/// A classic JoinGroup for a consumer group.
#[derive(Clone, Debug)]
pub struct ClassicJoin {
    pub member_id: String,
    pub instance_id: Option<String>,
    /// v4+: a new dynamic member must come back with the id it is given.
    pub require_known_member_id: bool,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
}

/// What a classic member is told after joining a consumer group: no leader, no member
/// list (the coordinator assigns), its generation is its member epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassicJoinAnswer {
    pub member_id: String,
    pub generation: i32,
    pub protocol_name: String,
}

/// A heartbeat as the state machine needs it (absent fields: unchanged).
#[derive(Clone, Debug, Default)]
pub struct Heartbeat {
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub subscribed_topic_names: Option<Vec<String>>,
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    /// The partitions the member owns now (None: not reported).
    pub owned: Option<Assignment>,
    /// v0: the coordinator makes member ids; v1 (KIP-1082): the client does.
    pub client_makes_member_id: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct HeartbeatAnswer {
    pub member_id: String,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    /// Sent when the member's assignment changed or it just joined.
    pub assignment: Option<Assignment>,
}

/// A KIP-848 consumer group.
#[derive(Clone, Debug)]
pub struct ConsumerGroup {
    pub id: String,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub members: BTreeMap<String, ConsumerMember>,
    pub target: BTreeMap<String, Assignment>,
    pub static_members: BTreeMap<String, String>,
    /// The subscribed topics' ids and partition counts the target was computed for.
    subscription_view: TopicView,
    /// Regular expressions the group has resolved. As in Kafka, a member's new regex is
    /// resolved after the heartbeat that brings it (Kafka does it asynchronously): that
    /// heartbeat's target has the literal topics only, and the matched topics come with
    /// a new group epoch on the next one.
    resolved_regexes: BTreeSet<String>,
    pub state_since: Instant,
    pub dead: bool,
}

pub const ASSIGNORS: &[&str] = &["uniform", "range"];

fn sub(a: &Assignment, b: &Assignment) -> Assignment {
    let mut out = Assignment::new();
    for (t, ps) in a {
        let keep: BTreeSet<i32> = ps
            .iter()
            .filter(|p| !b.get(t).is_some_and(|x| x.contains(p)))
            .copied()
            .collect();
        if !keep.is_empty() {
            out.insert(*t, keep);
        }
    }
    out
}

fn inter(a: &Assignment, b: &Assignment) -> Assignment {
    let mut out = Assignment::new();
    for (t, ps) in a {
        if let Some(other) = b.get(t) {
            let keep: BTreeSet<i32> = ps.intersection(other).copied().collect();
            if !keep.is_empty() {
                out.insert(*t, keep);
            }
        }
    }
    out
}

fn union(a: &Assignment, b: &Assignment) -> Assignment {
    let mut out = a.clone();
    for (t, ps) in b {
        out.entry(*t).or_default().extend(ps.iter().copied());
    }
    out
}

/// Partitions by topic name as partitions by topic id (topics not in `topics` dropped).
fn to_ids(parts: &[(String, Vec<i32>)], topics: &TopicView) -> Assignment {
    let mut out = Assignment::new();
    for (t, ps) in parts {
        if let Some((id, _)) = topics.get(t) {
            out.entry(*id).or_default().extend(ps.iter().copied());
        }
    }
    out.retain(|_, ps| !ps.is_empty());
    out
}

fn count(a: &Assignment) -> usize {
    a.values().map(|s| s.len()).sum()
}

impl ConsumerGroup {
    pub fn new(id: &str, now: Instant) -> ConsumerGroup {
        ConsumerGroup {
            id: id.to_string(),
            group_epoch: 0,
            assignment_epoch: 0,
            members: BTreeMap::new(),
            target: BTreeMap::new(),
            static_members: BTreeMap::new(),
            subscription_view: TopicView::new(),
            resolved_regexes: BTreeSet::new(),
            state_since: now,
            dead: false,
        }
    }

    /// The state names ConsumerGroupDescribe and ListGroups report.
    pub fn state_name(&self) -> &'static str {
        if self.dead {
            "Dead"
        } else if self.members.is_empty() {
            "Empty"
        } else if self.group_epoch > self.assignment_epoch {
            "Assigning"
        } else if self
            .members
            .values()
            .any(|m| m.member_epoch != self.assignment_epoch || m.state != MemberState::Stable)
        {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    /// Topics some member subscribes to (by name, resolved regex matched against `topics`).
    fn subscribed(&self, topics: &TopicView) -> TopicView {
        let mut out = TopicView::new();
        for m in self.members.values() {
            for t in Self::member_topics(m, topics, &self.resolved_regexes) {
                if let Some(v) = topics.get(&t) {
                    out.insert(t, *v);
                }
            }
        }
        out
    }

    fn member_topics(
        m: &ConsumerMember,
        topics: &TopicView,
        resolved: &BTreeSet<String>,
    ) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = m
            .subscribed_topic_names
            .iter()
            .filter(|t| topics.contains_key(*t))
            .cloned()
            .collect();
        if let Some(re) = m
            .subscribed_topic_regex
            .as_ref()
            .filter(|r| resolved.contains(*r))
            .and_then(|r| regex::Regex::new(&format!("^(?:{r})$")).ok())
        {
            out.extend(
                topics
                    .keys()
                    .filter(|t| re.is_match(t) && !t.starts_with("__"))
                    .cloned(),
            );
        }
        out
    }

    /// Resolves the members' regexes the group has not resolved yet; a new group epoch
    /// when there were any, so the next heartbeat's target includes what they match.
    fn resolve_new_regexes(&mut self, now: Instant) {
        let new: Vec<String> = self
            .members
            .values()
            .filter_map(|m| m.subscribed_topic_regex.clone())
            .filter(|r| !r.is_empty() && !self.resolved_regexes.contains(r))
            .collect();
        if new.is_empty() {
            return;
        }
        self.resolved_regexes.extend(new);
        self.bump(now);
    }

    /// Forgets regexes no member subscribes with any more (Kafka deletes a resolved
    /// regex with its last subscriber), so subscribing with one again waits for its
    /// resolution like any new regex.
    fn forget_unused_regexes(&mut self) {
        let in_use: BTreeSet<String> = self
            .members
            .values()
            .filter_map(|m| m.subscribed_topic_regex.clone())
            .collect();
        self.resolved_regexes.retain(|r| in_use.contains(r));
    }

    fn bump(&mut self, now: Instant) {
        self.group_epoch += 1;
        self.state_since = now;
    }

    /// ConsumerGroupHeartbeat.
    pub fn heartbeat(
        &mut self,
        hb: Heartbeat,
        topics: &TopicView,
        now: Instant,
        cfg: &ConsumerConfig,
    ) -> Result<HeartbeatAnswer, E> {
        if self.dead {
            return Err(E::CoordinatorNotAvailable);
        }
        self.forget_unused_regexes();
        if let Some(a) = &hb.server_assignor {
            if !ASSIGNORS.contains(&a.as_str()) {
                return Err(E::UnsupportedAssignor);
            }
        }
        let mut joined = false;
        let member_id = match hb.member_epoch {
            -2 if self
                .members
                .get(&hb.member_id)
                .is_some_and(|m| m.instance_id.is_some()) =>
            {
                // A static member leaving for a while (KIP-848): it stays in the group with
                // its partitions, so that the same instance coming back within the session
                // timeout takes them over without a rebalance; the session timeout removes
                // it otherwise.
                let m = self.members.get_mut(&hb.member_id).expect("checked");
                m.static_left = true;
                m.last_heartbeat = now;
                return Ok(HeartbeatAnswer {
                    member_id: hb.member_id,
                    member_epoch: -2,
                    heartbeat_interval_ms: cfg.heartbeat_interval_ms,
                    assignment: None,
                });
            }
            -1 | -2 => {
                if let Some(m) = self.members.remove(&hb.member_id) {
                    if let Some(i) = &m.instance_id {
                        self.static_members.remove(i);
                    }
                    self.target.remove(&hb.member_id);
                    self.bump(now);
                }
                return Ok(HeartbeatAnswer {
                    member_id: hb.member_id,
                    member_epoch: hb.member_epoch,
                    heartbeat_interval_ms: cfg.heartbeat_interval_ms,
                    assignment: None,
                });
            }
            0 => {
                let id = if hb.client_makes_member_id {
                    if hb.member_id.is_empty() {
                        return Err(E::InvalidRequest);
                    }
                    hb.member_id.clone()
                } else if hb.member_id.is_empty() {
                    uuid::Builder::from_random_bytes(
                        strom_common::clock::random_u128().to_be_bytes(),
                    )
                    .into_uuid()
                    .to_string()
                } else {
                    hb.member_id.clone()
                };
                if let Some(instance) = &hb.instance_id {
                    if let Some(old_id) = self.static_members.get(instance).cloned() {
                        // Kafka's rule: the instance id stays with a live consumer-protocol
                        // member until it leaves (epoch -2) or its session ends.
                        if self.members.get(&old_id).is_some_and(|old| {
                            old_id != id && !old.static_left && old.classic.is_none()
                        }) {
                            return Err(E::UnreleasedInstanceId);
                        }
                        if let Some(old) = self.members.remove(&old_id) {
                            // The instance came back (KIP-345/848): the new member id takes
                            // over the old member's epoch and partitions, and the group
                            // rebalances only if the subscription changed.
                            let target = self.target.remove(&old_id);
                            let answer = self.replace_static(old, id, target, hb, topics, now, cfg);
                            return Ok(answer);
                        }
                    }
                    self.static_members.insert(instance.clone(), id.clone());
                }
                if self.members.len() >= cfg.max_size && !self.members.contains_key(&id) {
                    return Err(E::GroupMaxSizeReached);
                }
                // A (re)joining member starts over with nothing.
                self.members.insert(
                    id.clone(),
                    ConsumerMember {
                        rack_id: hb.rack_id.clone(),
                        client_id: hb.client_id.clone(),
                        client_host: hb.client_host.clone(),
                        subscribed_topic_names: hb
                            .subscribed_topic_names
                            .clone()
                            .unwrap_or_default(),
                        subscribed_topic_regex: hb.subscribed_topic_regex.clone(),
                        server_assignor: hb.server_assignor.clone(),
                        ..ConsumerMember::joining(
                            &id,
                            hb.instance_id.clone(),
                            hb.rebalance_timeout_ms,
                            now,
                        )
                    },
                );
                self.bump(now);
                joined = true;
                id
            }
            epoch => {
                let Some(m) = self.members.get_mut(&hb.member_id) else {
                    return Err(E::UnknownMemberId);
                };
                if m.classic.is_some() {
                    // A classic member's id: it speaks JoinGroup and Heartbeat, not this.
                    return Err(E::UnknownMemberId);
                }
                if let Some(instance) = &hb.instance_id {
                    if self
                        .static_members
                        .get(instance)
                        .is_some_and(|x| *x != hb.member_id)
                    {
                        return Err(E::FencedInstanceId);
                    }
                }
                if m.static_left || epoch != m.member_epoch && epoch != m.previous_member_epoch {
                    return Err(E::FencedMemberEpoch);
                }
                m.last_heartbeat = now;
                m.client_id = hb.client_id.clone();
                m.client_host = hb.client_host.clone();
                if hb.rebalance_timeout_ms > 0 {
                    m.rebalance_timeout_ms = hb.rebalance_timeout_ms;
                }
                let mut changed = false;
                if let Some(names) = &hb.subscribed_topic_names {
                    if *names != m.subscribed_topic_names {
                        m.subscribed_topic_names = names.clone();
                        changed = true;
                    }
                }
                if hb.subscribed_topic_regex.is_some()
                    && hb.subscribed_topic_regex != m.subscribed_topic_regex
                {
                    m.subscribed_topic_regex = hb.subscribed_topic_regex.clone();
                    changed = true;
                }
                if hb.server_assignor.is_some() && hb.server_assignor != m.server_assignor {
                    m.server_assignor = hb.server_assignor.clone();
                    changed = true;
                }
                if changed {
                    self.bump(now);
                }
                hb.member_id.clone()
            }
        };
        // Topic changes (a subscribed topic created, deleted or grown) need a new target.
        if self.group_epoch <= self.assignment_epoch
            && self.subscribed(topics) != self.subscription_view
        {
            self.bump(now);
        }
        if self.group_epoch > self.assignment_epoch {
            self.compute_target(topics);
        }
        let before = self.members[&member_id].assigned.clone();
        let epoch_before = self.members[&member_id].member_epoch;
        self.reconcile(&member_id, hb.owned.as_ref(), now);
        self.resolve_new_regexes(now);
        let m = &self.members[&member_id];
        let send = joined
            || m.assigned != before
            || m.member_epoch != epoch_before
            || hb.owned.as_ref().is_some_and(|o| *o != m.assigned);
        Ok(HeartbeatAnswer {
            member_id: member_id.clone(),
            member_epoch: m.member_epoch,
            heartbeat_interval_ms: cfg.heartbeat_interval_ms,
            assignment: send.then(|| m.assigned.clone()),
        })
    }

    /// A static member's instance joins again under `new_id`: it inherits `old`'s epochs
    /// and partitions (and its target), as Kafka's coordinator does.
    #[allow(clippy::too_many_arguments)]
    fn replace_static(
        &mut self,
        old: ConsumerMember,
        new_id: String,
        target: Option<Assignment>,
        hb: Heartbeat,
        topics: &TopicView,
        now: Instant,
        cfg: &ConsumerConfig,
    ) -> HeartbeatAnswer {
        let names = hb
            .subscribed_topic_names
            .clone()
            .unwrap_or_else(|| old.subscribed_topic_names.clone());
        let regex = hb
            .subscribed_topic_regex
            .clone()
            .or_else(|| old.subscribed_topic_regex.clone());
        let assignor = hb
            .server_assignor
            .clone()
            .or_else(|| old.server_assignor.clone());
        let changed = names != old.subscribed_topic_names
            || regex != old.subscribed_topic_regex
            || assignor != old.server_assignor;
        let instance = old.instance_id.clone().expect("a static member");
        tracing::info!(group = %self.id, instance = %instance, old = %old.member_id, new = %new_id,
            "static member replaced by its returning instance");
        self.members.insert(
            new_id.clone(),
            ConsumerMember {
                member_id: new_id.clone(),
                instance_id: Some(instance.clone()),
                rack_id: hb.rack_id.clone().or(old.rack_id),
                client_id: hb.client_id.clone(),
                client_host: hb.client_host.clone(),
                subscribed_topic_names: names,
                subscribed_topic_regex: regex,
                server_assignor: assignor,
                rebalance_timeout_ms: if hb.rebalance_timeout_ms > 0 {
                    hb.rebalance_timeout_ms
                } else {
                    old.rebalance_timeout_ms
                },
                static_left: false,
                last_heartbeat: now,
                classic: None,
                ..old
            },
        );
        if let Some(t) = target {
            self.target.insert(new_id.clone(), t);
        }
        self.static_members.insert(instance, new_id.clone());
        if changed {
            self.bump(now);
        }
        if self.group_epoch <= self.assignment_epoch
            && self.subscribed(topics) != self.subscription_view
        {
            self.bump(now);
        }
        if self.group_epoch > self.assignment_epoch {
            self.compute_target(topics);
        }
        self.reconcile(&new_id, None, now);
        let m = &self.members[&new_id];
        HeartbeatAnswer {
            member_id: new_id.clone(),
            member_epoch: m.member_epoch,
            heartbeat_interval_ms: cfg.heartbeat_interval_ms,
            assignment: Some(m.assigned.clone()),
        }
    }

    fn compute_target(&mut self, topics: &TopicView) {
        let assignor = self
            .members
            .values()
            .filter_map(|m| m.server_assignor.clone())
            .next()
            .unwrap_or_else(|| "uniform".to_string());
        let subs: BTreeMap<String, BTreeSet<String>> = self
            .members
            .values()
            .map(|m| {
                (
                    m.member_id.clone(),
                    Self::member_topics(m, topics, &self.resolved_regexes),
                )
            })
            .collect();
        self.target = match assignor.as_str() {
            "range" => assign_range(&subs, topics),
            _ => assign_uniform(&subs, topics, &self.target),
        };
        self.subscription_view = self.subscribed(topics);
        self.assignment_epoch = self.group_epoch;
    }

    /// Moves one member toward its target without ever giving it a partition another
    /// member still holds.
    fn reconcile(&mut self, member_id: &str, owned: Option<&Assignment>, now: Instant) {
        let target = self.target.get(member_id).cloned().unwrap_or_default();
        let held_by_others: Assignment = self
            .members
            .values()
            .filter(|o| o.member_id != member_id)
            .fold(Assignment::new(), |acc, o| {
                union(&union(&acc, &o.assigned), &o.pending_revocation)
            });
        let epoch = self.assignment_epoch;
        let m = self.members.get_mut(member_id).expect("member");
        if m.state == MemberState::UnrevokedPartitions {
            // Still holding what it must give up? Then wait.
            let still = owned
                .map(|o| !inter(o, &m.pending_revocation).is_empty())
                .unwrap_or(true);
            if still {
                return;
            }
            m.pending_revocation.clear();
            m.revocation_deadline = None;
            m.state = MemberState::Stable;
        }
        let revoking = sub(&m.assigned, &target);
        // A classic member gives up partitions by rejoining: an eager one owns nothing
        // when it rejoins, a cooperative one lists what it still owns and is told to
        // rejoin until it no longer owns what it must give up.
        let must_wait = match &m.classic {
            Some(_) => owned.is_some_and(|o| !inter(o, &revoking).is_empty()),
            None => !revoking.is_empty(),
        };
        if must_wait {
            m.assigned = inter(&m.assigned, &target);
            m.pending_revocation = revoking;
            m.state = MemberState::UnrevokedPartitions;
            if m.classic.is_none() {
                m.revocation_deadline =
                    Some(now + Duration::from_millis(m.rebalance_timeout_ms.max(0) as u64));
            }
            return;
        }
        m.assigned = inter(&m.assigned, &target);
        let wanted = sub(&target, &m.assigned);
        let free = sub(&wanted, &held_by_others);
        m.assigned = union(&m.assigned, &free);
        if m.member_epoch != epoch {
            m.previous_member_epoch = m.member_epoch;
            m.member_epoch = epoch;
        }
        m.state = if count(&free) == count(&wanted) {
            MemberState::Stable
        } else {
            MemberState::UnreleasedPartitions
        };
    }

    /// Fences members whose session or revocation time ran out. Returns true if the
    /// group changed.
    pub fn tick(&mut self, now: Instant, cfg: &ConsumerConfig) -> bool {
        let session = Duration::from_millis(cfg.session_timeout_ms.max(0) as u64);
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                let session = m.classic.as_ref().map_or(session, |c| {
                    Duration::from_millis(c.session_timeout_ms.max(0) as u64)
                });
                now.saturating_duration_since(m.last_heartbeat) > session
                    || m.revocation_deadline.is_some_and(|d| now >= d)
                    || m.classic
                        .as_ref()
                        .and_then(|c| c.deadline)
                        .is_some_and(|d| now >= d)
            })
            .map(|m| m.member_id.clone())
            .collect();
        for id in &gone {
            tracing::info!(group = %self.id, member = %id, "consumer group member fenced (session or revocation timeout)");
            if let Some(m) = self.members.remove(id) {
                if let Some(i) = m.instance_id {
                    self.static_members.remove(&i);
                }
            }
            self.target.remove(id);
        }
        if !gone.is_empty() {
            self.bump(now);
        }
        !gone.is_empty()
    }

    /// The epoch an OffsetCommit must carry for `member_id`.
    pub fn check_commit(&self, member_id: &str, epoch: i32) -> Result<(), E> {
        let Some(m) = self.members.get(member_id) else {
            return Err(E::UnknownMemberId);
        };
        if m.classic.is_some() {
            // A classic member commits with its generation, which is its member epoch.
            return if epoch == m.member_epoch {
                Ok(())
            } else {
                Err(E::IllegalGeneration)
            };
        }
        if epoch > m.member_epoch {
            return Err(E::FencedMemberEpoch);
        }
        if epoch < m.member_epoch && epoch != m.previous_member_epoch {
            return Err(E::StaleMemberEpoch);
        }
        Ok(())
    }

    /// KIP-848's online upgrade: the consumer group a non-empty classic group becomes
    /// when a member using the consumer protocol joins it. Every classic member stays,
    /// at member epoch = the classic generation, with the subscription and assignment
    /// its JoinGroup and SyncGroup carried (topics gone are dropped); the group epoch is
    /// the generation. Err (a reason) when the embedded protocol cannot be read.
    pub fn from_classic(
        c: &ClassicGroup,
        topics: &TopicView,
        now: Instant,
    ) -> Result<ConsumerGroup, String> {
        let mut g = ConsumerGroup::new(&c.id, now);
        g.group_epoch = c.generation;
        g.assignment_epoch = c.generation;
        let selected = c.protocol_name.clone().unwrap_or_default();
        for m in c.members.values() {
            let meta = match m.protocols.iter().find(|(n, _)| *n == selected) {
                Some((_, b)) => b.clone(),
                None => m
                    .protocols
                    .first()
                    .map(|(_, b)| b.clone())
                    .unwrap_or_default(),
            };
            let sub = protocol::decode_subscription(&meta).ok_or_else(|| {
                format!(
                    "the embedded consumer protocol of member {} is malformed",
                    m.member_id
                )
            })?;
            let parts = protocol::decode_assignment(&m.assignment).map_err(str::to_string)?;
            let assigned = to_ids(&parts, topics);
            g.members.insert(
                m.member_id.clone(),
                ConsumerMember {
                    member_id: m.member_id.clone(),
                    instance_id: m.group_instance_id.clone(),
                    rack_id: sub.rack.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    subscribed_topic_names: sub.topics.clone(),
                    subscribed_topic_regex: None,
                    server_assignor: None,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    member_epoch: c.generation,
                    previous_member_epoch: c.generation,
                    state: MemberState::Stable,
                    assigned: assigned.clone(),
                    pending_revocation: Assignment::new(),
                    last_heartbeat: now,
                    revocation_deadline: None,
                    static_left: false,
                    classic: Some(ClassicMeta {
                        session_timeout_ms: m.session_timeout_ms,
                        protocols: m.protocols.clone(),
                        deadline: None,
                    }),
                },
            );
            g.target.insert(m.member_id.clone(), assigned);
            if let Some(i) = &m.group_instance_id {
                g.static_members.insert(i.clone(), m.member_id.clone());
            }
        }
        g.subscription_view = g.subscribed(topics);
        Ok(g)
    }

    /// JoinGroup from a classic-protocol member (Kafka's
    /// `classicGroupJoinToConsumerGroup`): the member is created or updated from its
    /// subscription, the target is recomputed when the group changed, and the member
    /// moves toward its target at once. Err: (the error, member id to answer with).
    pub fn classic_join(
        &mut self,
        j: ClassicJoin,
        topics: &TopicView,
        now: Instant,
        cfg: &ConsumerConfig,
    ) -> Result<ClassicJoinAnswer, (E, String)> {
        let fail = |e: E| Err((e, j.member_id.clone()));
        if self.dead {
            return fail(E::CoordinatorNotAvailable);
        }
        let supported_by_all = |name: &str| {
            self.members
                .values()
                .filter_map(|m| m.classic.as_ref())
                .all(|c| c.protocols.iter().any(|(n, _)| n == name))
        };
        if j.protocol_type != "consumer" || !j.protocols.iter().any(|(n, _)| supported_by_all(n)) {
            return fail(E::InconsistentGroupProtocol);
        }
        let Some(sub) = protocol::decode_subscription(&j.protocols[0].1) else {
            return fail(E::InconsistentGroupProtocol);
        };
        let new_id = j.member_id.is_empty();
        let id = if new_id {
            uuid::Builder::from_random_bytes(strom_common::clock::random_u128().to_be_bytes())
                .into_uuid()
                .to_string()
        } else {
            j.member_id.clone()
        };
        let mut replaced: Option<ConsumerMember> = None;
        match &j.instance_id {
            Some(instance) if new_id => {
                // A static instance (re)joining with a new member id takes the place of
                // the member it was, whichever protocol that member used.
                if let Some(old_id) = self.static_members.get(instance).cloned() {
                    replaced = self.members.remove(&old_id);
                    if let Some(t) = self.target.remove(&old_id) {
                        self.target.insert(id.clone(), t);
                    }
                }
            }
            Some(instance) => match self.static_members.get(instance) {
                None => return fail(E::UnknownMemberId),
                Some(x) if *x != id => return fail(E::FencedInstanceId),
                Some(_) => {}
            },
            None if new_id && j.require_known_member_id => {
                return Err((E::MemberIdRequired, id));
            }
            None => {}
        }
        if replaced.is_none()
            && !self.members.contains_key(&id)
            && self.members.len() >= cfg.max_size
        {
            return fail(E::GroupMaxSizeReached);
        }
        let is_new = replaced.is_none() && !self.members.contains_key(&id);
        let base = replaced.clone().or_else(|| self.members.get(&id).cloned());
        let changed_subscription = base.as_ref().is_none_or(|m| {
            m.subscribed_topic_names != sub.topics || m.subscribed_topic_regex.is_some()
        });
        let mut m = base.unwrap_or_else(|| {
            ConsumerMember::joining(&id, j.instance_id.clone(), j.rebalance_timeout_ms, now)
        });
        m.member_id = id.clone();
        m.instance_id = j.instance_id.clone();
        m.rack_id = sub.rack.clone();
        m.client_id = j.client_id.clone();
        m.client_host = j.client_host.clone();
        m.subscribed_topic_names = sub.topics.clone();
        m.subscribed_topic_regex = None;
        m.server_assignor = None;
        if j.rebalance_timeout_ms > 0 {
            m.rebalance_timeout_ms = j.rebalance_timeout_ms;
        }
        m.revocation_deadline = None;
        m.static_left = false;
        m.last_heartbeat = now;
        m.classic = Some(ClassicMeta {
            session_timeout_ms: j.session_timeout_ms,
            protocols: j.protocols.clone(),
            deadline: None,
        });
        if let Some(i) = &j.instance_id {
            self.static_members.insert(i.clone(), id.clone());
        }
        self.members.insert(id.clone(), m);
        if is_new || changed_subscription {
            self.bump(now);
        }
        if self.group_epoch <= self.assignment_epoch
            && self.subscribed(topics) != self.subscription_view
        {
            self.bump(now);
        }
        if self.group_epoch > self.assignment_epoch {
            self.compute_target(topics);
        }
        let owned = to_ids(&sub.owned, topics);
        self.reconcile(&id, Some(&owned), now);
        let m = self.members.get_mut(&id).expect("just inserted");
        let rebalance = Duration::from_millis(m.rebalance_timeout_ms.max(0) as u64);
        let classic = m.classic.as_mut().expect("classic");
        // Kafka's sync timer: the member must now SyncGroup within its rebalance timeout.
        classic.deadline = Some(now + rebalance);
        Ok(ClassicJoinAnswer {
            member_id: id,
            generation: m.member_epoch,
            protocol_name: classic.protocol_name(),
        })
    }

    /// Finds the classic member a SyncGroup, Heartbeat or LeaveGroup names.
    fn classic_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<&ConsumerMember, E> {
        if let Some(i) = instance_id {
            match self.static_members.get(i) {
                None => return Err(E::UnknownMemberId),
                Some(x) if x != member_id => return Err(E::FencedInstanceId),
                Some(_) => {}
            }
        }
        match self.members.get(member_id) {
            Some(m) if m.classic.is_some() => Ok(m),
            _ => Err(E::UnknownMemberId),
        }
    }

    /// SyncGroup from a classic member: its current assignment (partitions by topic
    /// id) and the embedded protocol version to write it at, or REBALANCE_IN_PROGRESS
    /// when the group moved on since its JoinGroup.
    #[allow(clippy::too_many_arguments)]
    pub fn classic_sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        now: Instant,
    ) -> Result<(Assignment, i16, String), E> {
        let m = self.classic_member(member_id, instance_id)?;
        if generation != m.member_epoch {
            return Err(E::IllegalGeneration);
        }
        let c = m.classic.as_ref().expect("classic");
        if protocol_type.is_some_and(|t| t != "consumer")
            || protocol_name.is_some_and(|n| n != c.protocol_name())
        {
            return Err(E::InconsistentGroupProtocol);
        }
        let rebalancing =
            self.group_epoch > m.member_epoch && m.state != MemberState::UnrevokedPartitions;
        let m = self.members.get_mut(member_id).expect("found");
        let rebalance = Duration::from_millis(m.rebalance_timeout_ms.max(0) as u64);
        let c = m.classic.as_mut().expect("classic");
        if rebalancing {
            c.deadline.get_or_insert(now + rebalance);
            return Err(E::RebalanceInProgress);
        }
        c.deadline = None;
        m.last_heartbeat = now;
        let (version, name) = (c.version(), c.protocol_name());
        Ok((m.assigned.clone(), version, name))
    }

    /// Heartbeat from a classic member: NONE, or REBALANCE_IN_PROGRESS when it must
    /// rejoin to move toward its target (a newer group epoch, partitions to give up, or
    /// partitions it waited for now free).
    pub fn classic_heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> Result<(), E> {
        let m = self.classic_member(member_id, instance_id)?;
        if generation != m.member_epoch {
            return Err(E::IllegalGeneration);
        }
        let must_rejoin = m.member_epoch < self.group_epoch
            || m.state == MemberState::UnrevokedPartitions
            || m.state == MemberState::UnreleasedPartitions && !self.waiting_on_unreleased(m);
        let m = self.members.get_mut(member_id).expect("found");
        m.last_heartbeat = now;
        if must_rejoin {
            let rebalance = Duration::from_millis(m.rebalance_timeout_ms.max(0) as u64);
            let c = m.classic.as_mut().expect("classic");
            c.deadline.get_or_insert(now + rebalance);
            return Err(E::RebalanceInProgress);
        }
        Ok(())
    }

    /// Whether some partition `m` is waiting for is still held by another member.
    fn waiting_on_unreleased(&self, m: &ConsumerMember) -> bool {
        let target = self.target.get(&m.member_id).cloned().unwrap_or_default();
        let wanted = sub(&target, &m.assigned);
        self.members
            .values()
            .filter(|o| o.member_id != m.member_id)
            .any(|o| {
                !inter(&wanted, &o.assigned).is_empty()
                    || !inter(&wanted, &o.pending_revocation).is_empty()
            })
    }

    /// LeaveGroup for one member (by member id, or by instance id for static members),
    /// of either protocol, as Kafka 4.x allows.
    pub fn leave_member(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        now: Instant,
    ) -> Result<(), E> {
        let id = match instance_id {
            Some(i) => match self.static_members.get(i) {
                None => return Err(E::UnknownMemberId),
                Some(x) if !member_id.is_empty() && x != member_id => {
                    return Err(E::FencedInstanceId)
                }
                Some(x) => x.clone(),
            },
            None if self.members.contains_key(member_id) => member_id.to_string(),
            None => return Err(E::UnknownMemberId),
        };
        if let Some(m) = self.members.remove(&id) {
            if let Some(i) = m.instance_id {
                self.static_members.remove(&i);
            }
            self.target.remove(&id);
            self.bump(now);
        }
        Ok(())
    }

    /// Whether only classic-protocol members are left (KIP-848's online downgrade turns
    /// such a group back into a classic group).
    pub fn only_classic_members(&self) -> bool {
        !self.members.is_empty() && self.members.values().all(|m| m.classic.is_some())
    }

    /// Restores a stored group (after a coordinator change).
    pub fn restore(
        &mut self,
        group_epoch: i32,
        assignment_epoch: i32,
        members: Vec<ConsumerMember>,
        target: BTreeMap<String, Assignment>,
    ) {
        self.group_epoch = group_epoch;
        self.assignment_epoch = assignment_epoch;
        for m in members {
            if let Some(i) = &m.instance_id {
                self.static_members.insert(i.clone(), m.member_id.clone());
            }
            self.members.insert(m.member_id.clone(), m);
        }
        self.target = target;
        // Regexes were resolved before the group was stored.
        self.resolved_regexes = self
            .members
            .values()
            .filter_map(|m| m.subscribed_topic_regex.clone())
            .collect();
    }
}

impl ConsumerMember {
    /// A member joining now: epoch 0, nothing assigned, no subscription yet.
    fn joining(
        id: &str,
        instance_id: Option<String>,
        rebalance_timeout_ms: i32,
        now: Instant,
    ) -> ConsumerMember {
        ConsumerMember {
            member_id: id.to_string(),
            instance_id,
            rack_id: None,
            client_id: String::new(),
            client_host: String::new(),
            subscribed_topic_names: Vec::new(),
            subscribed_topic_regex: None,
            server_assignor: None,
            rebalance_timeout_ms,
            member_epoch: 0,
            previous_member_epoch: -1,
            state: MemberState::Stable,
            assigned: Assignment::new(),
            pending_revocation: Assignment::new(),
            last_heartbeat: now,
            revocation_deadline: None,
            static_left: false,
            classic: None,
        }
    }

    /// A member restored from storage, heartbeat clock starting now.
    #[allow(clippy::too_many_arguments)]
    pub fn restored(
        member_id: String,
        instance_id: Option<String>,
        rack_id: Option<String>,
        client_id: String,
        client_host: String,
        subscribed_topic_names: Vec<String>,
        subscribed_topic_regex: Option<String>,
        server_assignor: Option<String>,
        rebalance_timeout_ms: i32,
        member_epoch: i32,
        previous_member_epoch: i32,
        assigned: Assignment,
        pending_revocation: Assignment,
        now: Instant,
    ) -> ConsumerMember {
        let state = if pending_revocation.is_empty() {
            MemberState::Stable
        } else {
            MemberState::UnrevokedPartitions
        };
        ConsumerMember {
            member_id,
            instance_id,
            rack_id,
            client_id,
            client_host,
            subscribed_topic_names,
            subscribed_topic_regex,
            server_assignor,
            rebalance_timeout_ms,
            member_epoch,
            previous_member_epoch,
            state,
            assigned,
            pending_revocation,
            last_heartbeat: now,
            revocation_deadline: None,
            static_left: false,
            classic: None,
        }
    }
}

/// Range: per topic, consecutive partitions split over the members subscribed to it.
pub fn assign_range(
    subs: &BTreeMap<String, BTreeSet<String>>,
    topics: &TopicView,
) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = subs
        .keys()
        .map(|m| (m.clone(), Assignment::new()))
        .collect();
    for (name, (id, partitions)) in topics {
        let members: Vec<&String> = subs
            .iter()
            .filter(|(_, t)| t.contains(name))
            .map(|(m, _)| m)
            .collect();
        if members.is_empty() {
            continue;
        }
        let n = members.len() as i32;
        let (per, extra) = (partitions / n, partitions % n);
        let mut next = 0;
        for (i, m) in members.iter().enumerate() {
            let take = per + if (i as i32) < extra { 1 } else { 0 };
            let ps: BTreeSet<i32> = (next..next + take).collect();
            next += take;
            if !ps.is_empty() {
                out.get_mut(*m).expect("member").insert(*id, ps);
            }
        }
    }
    out
}

/// Uniform: every partition of the subscribed topics to one subscribed member, as evenly
/// as possible, keeping each partition where the previous target put it when that keeps
/// the balance (sticky).
pub fn assign_uniform(
    subs: &BTreeMap<String, BTreeSet<String>>,
    topics: &TopicView,
    previous: &BTreeMap<String, Assignment>,
) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = subs
        .keys()
        .map(|m| (m.clone(), Assignment::new()))
        .collect();
    let mut load: BTreeMap<&String, usize> = subs.keys().map(|m| (m, 0)).collect();
    // Per topic: the eligible members and a fair share for each.
    for (name, (id, partitions)) in topics {
        let eligible: Vec<&String> = subs
            .iter()
            .filter(|(_, t)| t.contains(name))
            .map(|(m, _)| m)
            .collect();
        if eligible.is_empty() {
            continue;
        }
        let quota = (*partitions as usize).div_ceil(eligible.len());
        let mut per_member: BTreeMap<&String, usize> = eligible.iter().map(|m| (*m, 0)).collect();
        let mut unassigned = Vec::new();
        for p in 0..*partitions {
            let prev = previous
                .iter()
                .find(|(m, a)| {
                    a.get(id).is_some_and(|s| s.contains(&p)) && per_member.contains_key(m)
                })
                .map(|(m, _)| m);
            match prev {
                Some(m) if per_member[m] < quota => {
                    let key = eligible
                        .iter()
                        .find(|e| **e == m)
                        .copied()
                        .expect("eligible");
                    *per_member.get_mut(key).expect("member") += 1;
                    *load.get_mut(key).expect("member") += 1;
                    out.get_mut(key)
                        .expect("member")
                        .entry(*id)
                        .or_default()
                        .insert(p);
                }
                _ => unassigned.push(p),
            }
        }
        for p in unassigned {
            let m = *eligible
                .iter()
                .min_by_key(|m| (per_member[*m], load[*m], **m))
                .expect("eligible");
            *per_member.get_mut(m).expect("member") += 1;
            *load.get_mut(m).expect("member") += 1;
            out.get_mut(m)
                .expect("member")
                .entry(*id)
                .or_default()
                .insert(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(topics: &[(&str, i32)]) -> TopicView {
        topics
            .iter()
            .enumerate()
            .map(|(i, (n, p))| (n.to_string(), (Uuid::from_u128(i as u128 + 1), *p)))
            .collect()
    }

    fn hb(member: &str, epoch: i32, topics: &[&str], owned: Option<Assignment>) -> Heartbeat {
        Heartbeat {
            member_id: member.to_string(),
            member_epoch: epoch,
            client_id: "c".into(),
            client_host: "/h".into(),
            rebalance_timeout_ms: 30_000,
            subscribed_topic_names: Some(topics.iter().map(|t| t.to_string()).collect()),
            owned,
            client_makes_member_id: true,
            ..Default::default()
        }
    }

    /// No partition in two members' (assigned ∪ pending revocation).
    fn check_exclusive(g: &ConsumerGroup) {
        let mut seen = BTreeSet::new();
        for m in g.members.values() {
            for (t, ps) in union(&m.assigned, &m.pending_revocation) {
                for p in ps {
                    assert!(seen.insert((t, p)), "partition {t}/{p} held twice");
                }
            }
        }
    }

    /// A classic subscription (v1) to `topics`, owning `owned`.
    fn classic_sub(topics: &[&str], owned: &[(&str, Vec<i32>)]) -> Bytes {
        use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition;
        use kafka_protocol::messages::{ConsumerProtocolSubscription, TopicName};
        use kafka_protocol::protocol::{Encodable, StrBytes};
        let mut b = bytes::BytesMut::new();
        b.extend_from_slice(&1i16.to_be_bytes());
        ConsumerProtocolSubscription::default()
            .with_topics(
                topics
                    .iter()
                    .map(|t| StrBytes::from_string(t.to_string()))
                    .collect(),
            )
            .with_owned_partitions(
                owned
                    .iter()
                    .map(|(t, ps)| {
                        TopicPartition::default()
                            .with_topic(TopicName(StrBytes::from_string(t.to_string())))
                            .with_partitions(ps.clone())
                    })
                    .collect(),
            )
            .encode(&mut b, 1)
            .unwrap();
        b.freeze()
    }

    fn classic_join(member: &str, owned: &[(&str, Vec<i32>)]) -> ClassicJoin {
        ClassicJoin {
            member_id: member.into(),
            instance_id: None,
            require_known_member_id: true,
            client_id: "c".into(),
            client_host: "/h".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            protocol_type: "consumer".into(),
            protocols: vec![
                ("range".into(), classic_sub(&["orders"], owned)),
                ("roundrobin".into(), classic_sub(&["orders"], owned)),
            ],
        }
    }

    /// KIP-848's online migration, both ways: a stable classic group (one member, all
    /// six partitions, generation 3) becomes a consumer group when a consumer-protocol
    /// member joins; the classic member is told to rejoin, gets half, and no partition
    /// is ever held twice; when the consumer member leaves only classic members are
    /// left, and the classic group they become keeps the generation and assignment.
    #[tokio::test]
    async fn a_classic_group_upgrades_and_downgrades_online() {
        let t = Instant::now();
        let cfg = ConsumerConfig::default();
        let topics = view(&[("orders", 6)]);
        let orders = topics["orders"].0;
        let mut classic = ClassicGroup::new("g", t);
        classic.protocol_type = Some("consumer".into());
        classic.restore_member(
            "c1".into(),
            None,
            "c".into(),
            "/h".into(),
            10_000,
            30_000,
            Some(("range".into(), classic_sub(&["orders"], &[]))),
            protocol::encode_assignment(1, &[("orders".into(), (0..6).collect())]),
            t,
        );
        classic.restore(
            Some("consumer".into()),
            Some("range".into()),
            3,
            Some("c1".into()),
            t,
        );
        let mut g = ConsumerGroup::from_classic(&classic, &topics, t).unwrap();
        assert_eq!((g.group_epoch, g.assignment_epoch), (3, 3));
        let c1 = &g.members["c1"];
        assert_eq!((c1.member_epoch, count(&c1.assigned)), (3, 6));
        assert!(c1.classic.is_some());
        assert_eq!(
            g.classic_heartbeat("c1", None, 3, t),
            Ok(()),
            "nothing changed yet"
        );

        // A consumer-protocol member joins: target 3/3, it waits for c1.
        let k = g
            .heartbeat(hb("k", 0, &["orders"], None), &topics, t, &cfg)
            .unwrap();
        assert_eq!(k.member_epoch, 4);
        assert_eq!(count(k.assignment.as_ref().unwrap()), 0);
        assert_eq!(
            g.classic_heartbeat("c1", None, 3, t),
            Err(E::RebalanceInProgress)
        );
        check_exclusive(&g);

        // A cooperative rejoin that still owns all six: kept at generation 3 until it
        // gives up the three that move.
        let all = [("orders", (0..6).collect::<Vec<_>>())];
        let j = g
            .classic_join(classic_join("c1", &all), &topics, t, &cfg)
            .unwrap();
        assert_eq!((j.generation, j.protocol_name.as_str()), (3, "range"));
        assert_eq!(g.members["c1"].state, MemberState::UnrevokedPartitions);
        let (kept, version, _) = g
            .classic_sync("c1", None, 3, Some("consumer"), Some("range"), t)
            .unwrap();
        assert_eq!((count(&kept), version), (3, 1));
        assert_eq!(
            g.classic_heartbeat("c1", None, 3, t),
            Err(E::RebalanceInProgress)
        );
        let mine: Vec<i32> = kept[&orders].iter().copied().collect();
        let j = g
            .classic_join(
                classic_join("c1", &[("orders", mine.clone())]),
                &topics,
                t,
                &cfg,
            )
            .unwrap();
        assert_eq!(j.generation, 4);
        assert_eq!(
            g.classic_sync("c1", None, 3, None, None, t),
            Err(E::IllegalGeneration)
        );
        let (kept, _, _) = g.classic_sync("c1", None, 4, None, None, t).unwrap();
        assert_eq!(kept[&orders].iter().copied().collect::<Vec<_>>(), mine);
        assert_eq!(g.classic_heartbeat("c1", None, 4, t), Ok(()));
        assert_eq!(g.check_commit("c1", 4), Ok(()));
        assert_eq!(g.check_commit("c1", 3), Err(E::IllegalGeneration));
        check_exclusive(&g);
        let k2 = g
            .heartbeat(
                hb("k", 4, &["orders"], Some(Assignment::new())),
                &topics,
                t,
                &cfg,
            )
            .unwrap();
        assert_eq!(count(k2.assignment.as_ref().unwrap()), 3);
        check_exclusive(&g);
        assert_eq!(g.state_name(), "Stable");

        // The consumer member leaves: only the classic member is left.
        assert!(!g.only_classic_members());
        g.heartbeat(hb("k", -1, &["orders"], None), &topics, t, &cfg)
            .unwrap();
        assert!(g.only_classic_members());
        let names: BTreeMap<Uuid, String> = [(orders, "orders".to_string())].into();
        let migrated = g
            .members
            .values()
            .map(|m| super::super::classic::MigratedMember {
                member_id: m.member_id.clone(),
                group_instance_id: None,
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                session_timeout_ms: m.classic.as_ref().unwrap().session_timeout_ms,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                protocols: m.classic.as_ref().unwrap().protocols.clone(),
                assignment: g.target[&m.member_id]
                    .iter()
                    .map(|(id, ps)| (names[id].clone(), ps.iter().copied().collect()))
                    .collect(),
            })
            .collect();
        let back = ClassicGroup::from_consumer(
            "g",
            g.group_epoch,
            migrated,
            t,
            &super::super::classic::ClassicConfig::default(),
        );
        assert_eq!(back.generation, g.group_epoch);
        assert_eq!(back.protocol_name.as_deref(), Some("range"));
        assert_eq!(
            back.state,
            super::super::classic::ClassicState::PreparingRebalance
        );
        let a = protocol::decode_assignment(&back.members["c1"].assignment).unwrap();
        assert_eq!(
            a,
            vec![("orders".to_string(), mine)],
            "the target of the consumer group"
        );
    }

    /// Kafka resolves a new regex after the heartbeat that brings it: that heartbeat is
    /// assigned the literal topics, the next the matched ones too (librdkafka's
    /// 0045_subscribe_update expects exactly this of a KIP-848 broker).
    #[tokio::test]
    async fn a_new_regex_is_resolved_after_the_heartbeat_that_brings_it() {
        let t = Instant::now();
        let cfg = ConsumerConfig::default();
        let topics = view(&[("regex_1", 4), ("regex_2", 4), ("plain", 2)]);
        let mut g = ConsumerGroup::new("g", t);
        let mut first = hb("a", 0, &["plain"], None);
        first.subscribed_topic_regex = Some("^.*regex_.*".into());
        let a = g.heartbeat(first, &topics, t, &cfg).unwrap();
        let got = a.assignment.unwrap();
        assert_eq!(count(&got), 2, "only the literal topic at first: {got:?}");
        let a2 = g
            .heartbeat(
                hb("a", a.member_epoch, &["plain"], Some(got)),
                &topics,
                t,
                &cfg,
            )
            .unwrap();
        assert!(a2.member_epoch > a.member_epoch);
        assert_eq!(count(&a2.assignment.unwrap()), 10);
        // A second member with the same regex needs no wait: the group knows it.
        let mut second = hb("b", 0, &[], None);
        second.subscribed_topic_regex = Some("^.*regex_.*".into());
        let b = g.heartbeat(second, &topics, t, &cfg).unwrap();
        assert_eq!(g.target["b"].values().map(|p| p.len()).sum::<usize>(), 4);
        assert_eq!(b.member_epoch, g.group_epoch);
        // Both leave; the regex is forgotten with its last subscriber, so subscribing
        // with it again waits for its resolution once more.
        for m in ["a", "b"] {
            g.heartbeat(hb(m, -1, &[], None), &topics, t, &cfg).unwrap();
        }
        let mut again = hb("c", 0, &["plain"], None);
        again.subscribed_topic_regex = Some("^.*regex_.*".into());
        let c = g.heartbeat(again, &topics, t, &cfg).unwrap();
        assert_eq!(count(&c.assignment.unwrap()), 2);
    }

    /// KIP-848 static membership: an instance id stays with its live member until that
    /// member leaves with epoch -2 (or its session ends): a second instance with the same
    /// id gets UNRELEASED_INSTANCE_ID (librdkafka's 0102 fenced-member test).
    #[tokio::test]
    async fn an_instance_id_in_use_is_unreleased() {
        let t = Instant::now();
        let cfg = ConsumerConfig::default();
        let topics = view(&[("orders", 3)]);
        let mut g = ConsumerGroup::new("g", t);
        let mut a = hb("a", 0, &["orders"], None);
        a.instance_id = Some("i1".into());
        let first = g.heartbeat(a.clone(), &topics, t, &cfg).unwrap();
        let mut b = a.clone();
        b.member_id = "b".into();
        assert_eq!(
            g.heartbeat(b.clone(), &topics, t, &cfg).unwrap_err(),
            E::UnreleasedInstanceId
        );
        // a leaves for a while (epoch -2): now b takes the instance's place.
        let mut leave = a.clone();
        leave.member_epoch = -2;
        g.heartbeat(leave, &topics, t, &cfg).unwrap();
        let took = g.heartbeat(b, &topics, t, &cfg).unwrap();
        assert_eq!(took.member_epoch, first.member_epoch);
        assert!(g.members.contains_key("b") && !g.members.contains_key("a"));
    }

    #[tokio::test]
    async fn classic_joins_to_a_consumer_group_follow_kafkas_rules() {
        let t = Instant::now();
        let cfg = ConsumerConfig::default();
        let topics = view(&[("orders", 4)]);
        let mut g = ConsumerGroup::new("g", t);
        g.heartbeat(hb("k", 0, &["orders"], None), &topics, t, &cfg)
            .unwrap();
        // v4+: a new dynamic member gets an id to come back with, and nothing is kept.
        let (err, id) = g
            .classic_join(classic_join("", &[]), &topics, t, &cfg)
            .unwrap_err();
        assert_eq!(err, E::MemberIdRequired);
        assert!(!id.is_empty() && !g.members.contains_key(&id));
        let mut wrong = classic_join(&id, &[]);
        wrong.protocol_type = "connect".into();
        assert_eq!(
            g.classic_join(wrong, &topics, t, &cfg).unwrap_err().0,
            E::InconsistentGroupProtocol
        );
        let j = g
            .classic_join(classic_join(&id, &[]), &topics, t, &cfg)
            .unwrap();
        assert_eq!(j.member_id, id);
        // The consumer member still holds everything: the eager classic member gets
        // nothing yet, and is told to rejoin once it is free.
        assert_eq!(count(&g.members[&id].assigned), 0);
        let mut only_b = classic_join("", &[]);
        only_b.protocols = vec![("sticky".into(), classic_sub(&["orders"], &[]))];
        only_b.require_known_member_id = false;
        assert_eq!(
            g.classic_join(only_b, &topics, t, &cfg).unwrap_err().0,
            E::InconsistentGroupProtocol,
            "a protocol the classic members share is needed"
        );
        // A classic member that never syncs within its rebalance timeout is fenced.
        let later = t + Duration::from_millis(30_001);
        assert!(g.tick(later, &cfg));
        assert!(!g.members.contains_key(&id));
        assert_eq!(
            g.classic_heartbeat(&id, None, 0, later),
            Err(E::UnknownMemberId)
        );
        assert_eq!(g.leave_member(&id, None, later), Err(E::UnknownMemberId));
        assert_eq!(g.leave_member("k", None, later), Ok(()));
        assert!(g.members.is_empty());
    }

    #[tokio::test]
    async fn members_join_and_partitions_move_only_after_revocation() {
        let t = Instant::now();
        let cfg = ConsumerConfig::default();
        let topics = view(&[("orders", 6)]);
        let mut g = ConsumerGroup::new("g", t);
        let a = g
            .heartbeat(hb("a", 0, &["orders"], None), &topics, t, &cfg)
            .unwrap();
        assert_eq!(a.member_epoch, 1);
        assert_eq!(count(a.assignment.as_ref().unwrap()), 6);
        // b joins: the target splits 3/3, but b gets nothing until a revokes.
        let b = g
            .heartbeat(hb("b", 0, &["orders"], None), &topics, t, &cfg)
            .unwrap();
        assert_eq!(count(b.assignment.as_ref().unwrap()), 0);
        check_exclusive(&g);
        // a heartbeats still owning all 6: told to keep 3 (revoke 3), epoch unchanged.
        let owned_a = a.assignment.clone().unwrap();
        let a2 = g
            .heartbeat(hb("a", 1, &["orders"], Some(owned_a)), &topics, t, &cfg)
            .unwrap();
        assert_eq!(a2.member_epoch, 1);
        let kept = a2.assignment.clone().unwrap();
        assert_eq!(count(&kept), 3);
        check_exclusive(&g);
        // b still waits: a has not confirmed.
        let b2 = g
            .heartbeat(
                hb("b", b.member_epoch, &["orders"], Some(Assignment::new())),
                &topics,
                t,
                &cfg,
            )
            .unwrap();
        assert_eq!(
            count(b2.assignment.as_ref().unwrap_or(&Assignment::new())),
            0
        );
        // a confirms (owns only the 3 it keeps): epoch 2; then b gets the other 3.
        let a3 = g
            .heartbeat(
                hb("a", 1, &["orders"], Some(kept.clone())),
                &topics,
                t,
                &cfg,
            )
            .unwrap();
        assert_eq!(a3.member_epoch, 2);
        let b3 = g
            .heartbeat(
                hb("b", b2.member_epoch, &["orders"], Some(Assignment::new())),
                &topics,
                t,
                &cfg,
            )
            .unwrap();
        assert_eq!(b3.member_epoch, 2);
        assert_eq!(count(b3.assignment.as_ref().unwrap()), 3);
        assert_eq!(g.state_name(), "Stable");
        check_exclusive(&g);
    }

    #[tokio::test]
    async fn a_static_member_that_leaves_and_returns_keeps_its_partitions() {
        let t = Instant::now();
        let cfg = ConsumerConfig::default();
        let topics = view(&[("t", 4)]);
        let mut g = ConsumerGroup::new("g", t);
        let static_hb = |id: &str, epoch: i32, owned: Option<Assignment>| Heartbeat {
            instance_id: Some(format!("inst-{id}")),
            ..hb(id, epoch, &["t"], owned)
        };
        // a and b settle on 2 partitions each.
        let mut owned: BTreeMap<&str, (i32, Assignment)> = BTreeMap::new();
        for id in ["a", "b"] {
            let r = g
                .heartbeat(static_hb(id, 0, None), &topics, t, &cfg)
                .unwrap();
            owned.insert(id, (r.member_epoch, r.assignment.unwrap_or_default()));
        }
        for _ in 0..4 {
            for id in ["a", "b"] {
                let (e, o) = owned[id].clone();
                let r = g
                    .heartbeat(static_hb(id, e, Some(o.clone())), &topics, t, &cfg)
                    .unwrap();
                owned.insert(id, (r.member_epoch, r.assignment.unwrap_or(o)));
            }
        }
        assert_eq!(g.state_name(), "Stable");
        let (a_epoch, a_parts) = owned["a"].clone();
        let (b_epoch, b_parts) = owned["b"].clone();
        assert_eq!((count(&a_parts), count(&b_parts)), (2, 2));
        let group_epoch = g.group_epoch;
        // a leaves as a static member (-2): it stays, with its partitions.
        let left = g
            .heartbeat(static_hb("a", -2, None), &topics, t, &cfg)
            .unwrap();
        assert_eq!(left.member_epoch, -2);
        assert_eq!(g.members.len(), 2);
        assert_eq!(g.group_epoch, group_epoch);
        // Its old id is fenced from now on.
        assert_eq!(
            g.heartbeat(static_hb("a", a_epoch, None), &topics, t, &cfg),
            Err(E::FencedMemberEpoch)
        );
        // The instance returns under a new id: same partitions, same epoch, no rebalance.
        let back = Heartbeat {
            instance_id: Some("inst-a".into()),
            ..hb("a2", 0, &["t"], None)
        };
        let r = g.heartbeat(back, &topics, t, &cfg).unwrap();
        assert_eq!(r.member_epoch, a_epoch);
        assert_eq!(r.assignment, Some(a_parts));
        assert_eq!(g.group_epoch, group_epoch);
        assert!(!g.members.contains_key("a"));
        let rb = g
            .heartbeat(
                static_hb("b", b_epoch, Some(b_parts.clone())),
                &topics,
                t,
                &cfg,
            )
            .unwrap();
        assert_eq!(rb.member_epoch, b_epoch);
        assert_eq!(rb.assignment, None);
        check_exclusive(&g);
        // A static member that never comes back is removed by the session timeout.
        let _ = g
            .heartbeat(static_hb("b", -2, None), &topics, t, &cfg)
            .unwrap();
        let later = t + Duration::from_millis(cfg.session_timeout_ms as u64 + 1);
        let _ = g.heartbeat(
            Heartbeat {
                instance_id: Some("inst-a".into()),
                ..hb("a2", a_epoch, &["t"], None)
            },
            &topics,
            later,
            &cfg,
        );
        assert!(g.tick(later, &cfg));
        assert_eq!(g.members.keys().collect::<Vec<_>>(), vec!["a2"]);
    }

    #[tokio::test]
    async fn leaving_and_expiry_hand_partitions_back() {
        let t = Instant::now();
        let cfg = ConsumerConfig::default();
        let topics = view(&[("t", 4)]);
        let mut g = ConsumerGroup::new("g", t);
        let a = g
            .heartbeat(hb("a", 0, &["t"], None), &topics, t, &cfg)
            .unwrap();
        let b = g
            .heartbeat(hb("b", 0, &["t"], None), &topics, t, &cfg)
            .unwrap();
        let owned = a.assignment.unwrap();
        let a2 = g
            .heartbeat(hb("a", 1, &["t"], Some(owned)), &topics, t, &cfg)
            .unwrap();
        let _ = g
            .heartbeat(hb("a", 1, &["t"], a2.assignment.clone()), &topics, t, &cfg)
            .unwrap();
        let b2 = g
            .heartbeat(
                hb("b", b.member_epoch, &["t"], Some(Assignment::new())),
                &topics,
                t,
                &cfg,
            )
            .unwrap();
        assert_eq!(count(b2.assignment.as_ref().unwrap()), 2);
        // b leaves: a gets everything at its next heartbeat.
        g.heartbeat(hb("b", -1, &["t"], None), &topics, t, &cfg)
            .unwrap();
        let a3 = g
            .heartbeat(hb("a", 2, &["t"], a2.assignment.clone()), &topics, t, &cfg)
            .unwrap();
        assert_eq!(count(a3.assignment.as_ref().unwrap()), 4);
        // a goes silent past the session timeout: fenced, the group is empty.
        assert!(g.tick(t + Duration::from_secs(46), &cfg));
        assert_eq!(g.state_name(), "Empty");
        assert_eq!(
            g.heartbeat(hb("a", 3, &["t"], None), &topics, t, &cfg)
                .unwrap_err(),
            E::UnknownMemberId
        );
    }

    #[tokio::test]
    async fn epochs_are_checked() {
        let t = Instant::now();
        let cfg = ConsumerConfig::default();
        let topics = view(&[("t", 2)]);
        let mut g = ConsumerGroup::new("g", t);
        let a = g
            .heartbeat(hb("a", 0, &["t"], None), &topics, t, &cfg)
            .unwrap();
        assert_eq!(
            g.heartbeat(hb("a", a.member_epoch + 5, &["t"], None), &topics, t, &cfg)
                .unwrap_err(),
            E::FencedMemberEpoch
        );
        assert_eq!(g.check_commit("a", a.member_epoch), Ok(()));
        assert_eq!(
            g.check_commit("a", a.member_epoch + 1),
            Err(E::FencedMemberEpoch)
        );
        assert_eq!(g.check_commit("x", 1), Err(E::UnknownMemberId));
        let mut bad = hb("", 0, &["t"], None);
        assert_eq!(
            g.heartbeat(bad.clone(), &topics, t, &cfg).unwrap_err(),
            E::InvalidRequest
        );
        bad.client_makes_member_id = false;
        let made = g.heartbeat(bad, &topics, t, &cfg).unwrap();
        assert!(
            !made.member_id.is_empty(),
            "v0: the coordinator makes the member id"
        );
        let mut odd = hb("z", 0, &["t"], None);
        odd.server_assignor = Some("sticky".into());
        assert_eq!(
            g.heartbeat(odd, &topics, t, &cfg).unwrap_err(),
            E::UnsupportedAssignor
        );
    }

    #[tokio::test]
    async fn new_partitions_reach_subscribers() {
        let t = Instant::now();
        let cfg = ConsumerConfig::default();
        let mut g = ConsumerGroup::new("g", t);
        let a = g
            .heartbeat(hb("a", 0, &["t"], None), &view(&[("t", 2)]), t, &cfg)
            .unwrap();
        assert_eq!(count(a.assignment.as_ref().unwrap()), 2);
        let grown = view(&[("t", 5)]);
        let a2 = g
            .heartbeat(
                hb("a", a.member_epoch, &["t"], a.assignment.clone()),
                &grown,
                t,
                &cfg,
            )
            .unwrap();
        assert_eq!(count(a2.assignment.as_ref().unwrap()), 5);
        assert!(a2.member_epoch > a.member_epoch);
    }

    #[tokio::test]
    async fn assignors_balance() {
        let topics = view(&[("x", 7), ("y", 3)]);
        let subs: BTreeMap<String, BTreeSet<String>> = ["a", "b", "c"]
            .iter()
            .map(|m| {
                (
                    m.to_string(),
                    ["x".to_string(), "y".to_string()].into_iter().collect(),
                )
            })
            .collect();
        for out in [
            assign_range(&subs, &topics),
            assign_uniform(&subs, &topics, &BTreeMap::new()),
        ] {
            let counts: Vec<usize> = out.values().map(count).collect();
            assert_eq!(counts.iter().sum::<usize>(), 10);
            assert!(
                counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 2,
                "{counts:?}"
            );
        }
        // Uniform is sticky: the same members keep their partitions.
        let first = assign_uniform(&subs, &topics, &BTreeMap::new());
        let again = assign_uniform(&subs, &topics, &first);
        assert_eq!(first, again);
    }
}

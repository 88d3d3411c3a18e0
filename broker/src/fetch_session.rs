//! Incremental fetch sessions (KIP-227), as Kafka's `FetchSession` keeps them.
//!
//! A client (or a follower) asks for a session with a full fetch at (session 0, epoch 0);
//! the broker remembers the partitions and their fetch state and answers with a session
//! id. The next requests carry (id, 1), (id, 2), … and name only the partitions whose
//! fetch state changed (and those to forget); the answer names only partitions with
//! news: records, a new high watermark or log start, an error, or a diverging epoch.
//!
//! - (0, -1): a full fetch without a session; (0, 0): full, and a new session if there is
//!   room; (id, 0): closes `id`, then as (0, 0); (id, -1): closes `id`, full, no session.
//! - (id, n > 0): incremental: FETCH_SESSION_ID_NOT_FOUND for an unknown id,
//!   INVALID_FETCH_SESSION_EPOCH when `n` is not the expected epoch,
//!   FETCH_SESSION_TOPIC_ID_ERROR when the request's use of topic ids differs from the
//!   session's. An error answer names no partitions and leaves the session alone.
//! - The cache holds `max.incremental.fetch.session.cache.slots` (1000) sessions; when
//!   full, a session idle for 120 s is evicted, else a smaller one (followers' sessions
//!   are privileged: only they may evict consumers', and only idle ones go).
//! - Partitions that returned records move to the end of the session, so that every
//!   partition in turn comes first (round robin under `max_bytes`).
//!
//! Time is passed in; nothing here does I/O.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use kafka_protocol::error::ResponseError as E;
use uuid::Uuid;

/// How long a session must be idle before any newcomer may evict it.
pub const EVICTION_MS: i64 = 120_000;

/// A partition of a session: by topic id (Fetch v13+) or by name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TopicKey {
    Id(Uuid),
    Name(String),
}

/// What a fetch asks of one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchState {
    pub fetch_offset: i64,
    pub partition_max_bytes: i32,
    pub current_leader_epoch: i32,
    pub last_fetched_epoch: i32,
    pub log_start_offset: i64,
}

/// A partition in a session: what was asked, and what the last answer said.
#[derive(Clone, Debug)]
struct Cached {
    state: FetchState,
    /// High watermark and log start last sent (-1: none yet, or an error was sent).
    sent_hw: i64,
    sent_log_start: i64,
}

struct Session {
    /// The epoch the next request must carry.
    next_epoch: i32,
    uses_topic_ids: bool,
    privileged: bool,
    created_ms: i64,
    last_used_ms: i64,
    partitions: IndexMap<(TopicKey, i32), Cached>,
}

/// One partition to read for a request, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planned {
    pub topic: TopicKey,
    pub partition: i32,
    pub state: FetchState,
}

/// How a request uses sessions, decided when it arrives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Answer every partition; no session.
    Sessionless,
    /// Answer every partition and try to create a session for them.
    Full,
    /// Answer what changed in session `id` (already moved to its next epoch).
    Incremental { id: i32, epoch: i32 },
}

/// The partitions to read and how to answer, or a top-level error code.
#[derive(Clone, Debug)]
pub struct Plan {
    pub mode: Mode,
    pub partitions: Vec<Planned>,
}

/// What one partition's answer carries, for deciding whether an incremental answer
/// includes it.
#[derive(Clone, Copy, Debug)]
pub struct Answered {
    pub error_code: i16,
    pub high_watermark: i64,
    pub log_start: i64,
    pub has_records: bool,
    pub diverging: bool,
}

/// A fetch request's session fields and partitions, in protocol-neutral form.
pub struct Request<'a> {
    pub session_id: i32,
    pub session_epoch: i32,
    pub uses_topic_ids: bool,
    pub privileged: bool,
    pub partitions: Vec<Planned>,
    pub forgotten: &'a [(TopicKey, i32)],
}

pub struct FetchSessionCache {
    max_slots: usize,
    sessions: BTreeMap<i32, Session>,
    next_id: i32,
}

fn next_epoch(e: i32) -> i32 {
    if e == i32::MAX {
        1
    } else {
        e + 1
    }
}

impl FetchSessionCache {
    pub fn new(max_slots: usize) -> FetchSessionCache {
        FetchSessionCache {
            max_slots,
            sessions: BTreeMap::new(),
            next_id: 1,
        }
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Decides how to answer `req` and which partitions to read (for an incremental
    /// request, the session's partitions after applying the request's changes).
    pub fn begin(&mut self, req: Request<'_>, now_ms: i64) -> Result<Plan, i16> {
        let full = |mode| Plan {
            mode,
            partitions: req.partitions.clone(),
        };
        match (req.session_id, req.session_epoch) {
            (0, -1) => Ok(full(Mode::Sessionless)),
            (0, 0) => Ok(full(Mode::Full)),
            (id, 0) => {
                self.sessions.remove(&id);
                Ok(full(Mode::Full))
            }
            (id, -1) => {
                self.sessions.remove(&id);
                Ok(full(Mode::Sessionless))
            }
            (0, _) => Err(E::FetchSessionIdNotFound.code()),
            (id, epoch) => {
                let Some(s) = self.sessions.get_mut(&id) else {
                    return Err(E::FetchSessionIdNotFound.code());
                };
                if s.next_epoch != epoch {
                    return Err(E::InvalidFetchSessionEpoch.code());
                }
                if s.uses_topic_ids != req.uses_topic_ids {
                    return Err(E::FetchSessionTopicIdError.code());
                }
                for p in req.partitions {
                    let key = (p.topic, p.partition);
                    match s.partitions.get_mut(&key) {
                        Some(c) => c.state = p.state,
                        None => {
                            s.partitions.insert(
                                key,
                                Cached {
                                    state: p.state,
                                    sent_hw: -1,
                                    sent_log_start: -1,
                                },
                            );
                        }
                    }
                }
                for f in req.forgotten {
                    s.partitions.shift_remove(f);
                }
                s.last_used_ms = now_ms;
                s.next_epoch = next_epoch(epoch);
                let partitions = s
                    .partitions
                    .iter()
                    .map(|((t, p), c)| Planned {
                        topic: t.clone(),
                        partition: *p,
                        state: c.state.clone(),
                    })
                    .collect();
                if s.partitions.is_empty() {
                    self.sessions.remove(&id);
                    return Ok(Plan {
                        mode: Mode::Sessionless,
                        partitions,
                    });
                }
                Ok(Plan {
                    mode: Mode::Incremental { id, epoch },
                    partitions,
                })
            }
        }
    }

    /// After the partitions were read: which answers to send (indexes into the plan's
    /// partitions, in order) and the session id for the response (0: none).
    pub fn finish(
        &mut self,
        plan: &Plan,
        answers: &[Answered],
        uses_topic_ids: bool,
        privileged: bool,
        now_ms: i64,
    ) -> (i32, Vec<usize>) {
        match &plan.mode {
            Mode::Sessionless => (0, (0..answers.len()).collect()),
            Mode::Full => {
                let all: Vec<usize> = (0..answers.len()).collect();
                if plan.partitions.is_empty()
                    || !self.make_room(privileged, plan.partitions.len(), now_ms)
                {
                    return (0, all);
                }
                let id = self.new_id();
                let mut partitions = IndexMap::new();
                for (p, a) in plan.partitions.iter().zip(answers) {
                    partitions.insert(
                        (p.topic.clone(), p.partition),
                        Cached {
                            state: p.state.clone(),
                            sent_hw: if a.error_code == 0 {
                                a.high_watermark
                            } else {
                                -1
                            },
                            sent_log_start: if a.error_code == 0 { a.log_start } else { -1 },
                        },
                    );
                }
                self.sessions.insert(
                    id,
                    Session {
                        next_epoch: 1,
                        uses_topic_ids,
                        privileged,
                        created_ms: now_ms,
                        last_used_ms: now_ms,
                        partitions,
                    },
                );
                (id, all)
            }
            Mode::Incremental { id, .. } => {
                let Some(s) = self.sessions.get_mut(id) else {
                    return (0, (0..answers.len()).collect());
                };
                let mut include = Vec::new();
                let mut to_back = Vec::new();
                for (i, (p, a)) in plan.partitions.iter().zip(answers).enumerate() {
                    let key = (p.topic.clone(), p.partition);
                    let Some(c) = s.partitions.get_mut(&key) else {
                        continue;
                    };
                    let changed = a.has_records
                        || a.error_code != 0
                        || a.diverging
                        || a.high_watermark != c.sent_hw
                        || a.log_start != c.sent_log_start;
                    if a.error_code != 0 {
                        c.sent_hw = -1;
                        c.sent_log_start = -1;
                    } else {
                        c.sent_hw = a.high_watermark;
                        c.sent_log_start = a.log_start;
                    }
                    if changed {
                        include.push(i);
                    }
                    if a.has_records {
                        to_back.push(key);
                    }
                }
                for key in to_back {
                    if let Some(c) = s.partitions.shift_remove(&key) {
                        s.partitions.insert(key, c);
                    }
                }
                s.last_used_ms = now_ms;
                (*id, include)
            }
        }
    }

    fn new_id(&mut self) -> i32 {
        loop {
            let id = self.next_id;
            self.next_id = if self.next_id == i32::MAX {
                1
            } else {
                self.next_id + 1
            };
            if !self.sessions.contains_key(&id) {
                return id;
            }
        }
    }

    /// Frees a slot for a new session of `size` partitions if the cache is full, by
    /// Kafka's rules; false when no session may be evicted.
    fn make_room(&mut self, privileged: bool, size: usize, now_ms: i64) -> bool {
        if self.max_slots == 0 {
            return false;
        }
        if self.sessions.len() < self.max_slots {
            return true;
        }
        let idle = self
            .sessions
            .iter()
            .filter(|(_, s)| now_ms - s.last_used_ms > EVICTION_MS)
            .min_by_key(|(_, s)| s.last_used_ms)
            .map(|(id, _)| *id);
        if let Some(id) = idle {
            self.sessions.remove(&id);
            return true;
        }
        // A follower may evict a consumer's session; otherwise only a session older than
        // the eviction time with fewer partitions than the newcomer.
        let evictable = |s: &Session| match (s.privileged, privileged) {
            (false, true) => true,
            _ => now_ms - s.created_ms > EVICTION_MS && size > s.partitions.len(),
        };
        let victim = self
            .sessions
            .iter()
            .filter(|(_, s)| evictable(s))
            .min_by_key(|(_, s)| (s.privileged, s.partitions.len(), s.last_used_ms))
            .map(|(id, _)| *id);
        match victim {
            Some(id) => {
                self.sessions.remove(&id);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(p: i32, offset: i64) -> Planned {
        Planned {
            topic: TopicKey::Name("t".into()),
            partition: p,
            state: FetchState {
                fetch_offset: offset,
                partition_max_bytes: 1 << 20,
                current_leader_epoch: 0,
                last_fetched_epoch: -1,
                log_start_offset: -1,
            },
        }
    }

    fn req(id: i32, epoch: i32, parts: Vec<Planned>) -> Request<'static> {
        Request {
            session_id: id,
            session_epoch: epoch,
            uses_topic_ids: false,
            privileged: false,
            partitions: parts,
            forgotten: &[],
        }
    }

    fn quiet(hw: i64) -> Answered {
        Answered {
            error_code: 0,
            high_watermark: hw,
            log_start: 0,
            has_records: false,
            diverging: false,
        }
    }

    #[test]
    fn a_session_answers_only_what_changed_and_moves_its_epoch() {
        let mut c = FetchSessionCache::new(10);
        let plan = c
            .begin(req(0, 0, vec![planned(0, 5), planned(1, 7)]), 0)
            .unwrap();
        assert_eq!(plan.mode, Mode::Full);
        let (id, include) = c.finish(&plan, &[quiet(5), quiet(7)], false, false, 0);
        assert!(id > 0);
        assert_eq!(include, vec![0, 1], "a full answer names everything");
        // Nothing changed: the session's partitions are read, none is answered.
        let plan = c.begin(req(id, 1, vec![]), 1).unwrap();
        assert_eq!(plan.partitions.len(), 2);
        let (same, include) = c.finish(&plan, &[quiet(5), quiet(7)], false, false, 1);
        assert_eq!(same, id);
        assert!(include.is_empty());
        // Partition 1 got records; 0's high watermark moved.
        let plan = c.begin(req(id, 2, vec![]), 2).unwrap();
        let got = Answered {
            has_records: true,
            ..quiet(9)
        };
        let (_, include) = c.finish(&plan, &[quiet(6), got], false, false, 2);
        assert_eq!(include, vec![0, 1]);
        // The client moves partition 1's offset; partition 1 went to the back.
        let plan = c.begin(req(id, 3, vec![planned(1, 9)]), 3).unwrap();
        assert_eq!(plan.partitions[0].partition, 0);
        assert_eq!(plan.partitions[1].state.fetch_offset, 9);
        // Wrong epoch, unknown id, topic-id mismatch.
        assert_eq!(
            c.begin(req(id, 3, vec![]), 4).unwrap_err(),
            E::InvalidFetchSessionEpoch.code()
        );
        assert_eq!(
            c.begin(req(999, 1, vec![]), 4).unwrap_err(),
            E::FetchSessionIdNotFound.code()
        );
        let mut r = req(id, 4, vec![]);
        r.uses_topic_ids = true;
        assert_eq!(
            c.begin(r, 4).unwrap_err(),
            E::FetchSessionTopicIdError.code()
        );
        // Closing.
        let plan = c.begin(req(id, -1, vec![planned(0, 1)]), 5).unwrap();
        assert_eq!(plan.mode, Mode::Sessionless);
        assert!(c.is_empty());
    }

    #[test]
    fn forgotten_partitions_leave_and_an_emptied_session_closes() {
        let mut c = FetchSessionCache::new(10);
        let plan = c
            .begin(req(0, 0, vec![planned(0, 0), planned(1, 0)]), 0)
            .unwrap();
        let (id, _) = c.finish(&plan, &[quiet(0), quiet(0)], false, false, 0);
        let forget = [(TopicKey::Name("t".into()), 0)];
        let mut r = req(id, 1, vec![]);
        r.forgotten = &forget;
        let plan = c.begin(r, 1).unwrap();
        assert_eq!(plan.partitions.len(), 1);
        let forget = [(TopicKey::Name("t".into()), 1)];
        let mut r = req(id, 2, vec![]);
        r.forgotten = &forget;
        let plan = c.begin(r, 2).unwrap();
        assert_eq!(plan.mode, Mode::Sessionless);
        assert!(c.is_empty());
    }

    #[test]
    fn an_error_is_sent_and_the_partition_reappears_when_it_clears() {
        let mut c = FetchSessionCache::new(10);
        let plan = c.begin(req(0, 0, vec![planned(0, 0)]), 0).unwrap();
        let (id, _) = c.finish(&plan, &[quiet(3)], false, false, 0);
        let err = Answered {
            error_code: 6,
            ..quiet(-1)
        };
        let plan = c.begin(req(id, 1, vec![]), 1).unwrap();
        assert_eq!(c.finish(&plan, &[err], false, false, 1).1, vec![0]);
        let plan = c.begin(req(id, 2, vec![]), 2).unwrap();
        assert_eq!(
            c.finish(&plan, &[quiet(3)], false, false, 2).1,
            vec![0],
            "cleared"
        );
    }

    #[test]
    fn a_full_cache_evicts_idle_then_smaller_sessions_and_favours_followers() {
        let mut c = FetchSessionCache::new(2);
        let mk = |c: &mut FetchSessionCache, n: usize, privileged: bool, now: i64| {
            let parts: Vec<Planned> = (0..n as i32).map(|p| planned(p, 0)).collect();
            let plan = c.begin(req(0, 0, parts), now).unwrap();
            let answers = vec![quiet(0); n];
            c.finish(&plan, &answers, false, privileged, now).0
        };
        let a = mk(&mut c, 2, false, 0);
        let b = mk(&mut c, 3, false, 0);
        assert!(a > 0 && b > 0);
        assert_eq!(
            mk(&mut c, 1, false, 10),
            0,
            "full, nothing evictable: no session"
        );
        let f = mk(&mut c, 1, true, 10);
        assert!(f > 0, "a follower evicts a consumer session");
        assert_eq!(c.len(), 2);
        let late = mk(&mut c, 1, false, 10 + EVICTION_MS + 1);
        assert!(late > 0, "an idle session goes");
    }
}

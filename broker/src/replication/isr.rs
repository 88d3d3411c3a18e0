//! The leader's rules for followers, the ISR and the high watermark, as Kafka's
//! `Partition` keeps them: pure functions of the state and of the time passed in.
//!
//! - A follower's log end is the offset of its last fetch. It was last *caught up* when a
//!   fetch reached the leader's log end (or the leader's log end at its previous fetch).
//! - The high watermark is the smallest log end over the *maximal* ISR (the committed ISR
//!   plus a member being added; a member being removed still counts until the controller
//!   commits the removal), and it does not advance while the committed ISR is smaller
//!   than `min.insync.replicas` (capped at the replica count; KIP-966).
//! - A follower joins the ISR when its log end reaches both the high watermark and the
//!   start of the current leader epoch (KAFKA-7128) and the metadata says its broker may
//!   join (unfenced, not shutting down, same broker epoch: KIP-841/903).
//! - A member leaves when it has not been caught up for `replica.lag.time.max.ms`.
//! - One ISR change is in flight at a time (KIP-497).
//!
//! Nothing here does I/O or reads clocks.

use std::collections::BTreeMap;

/// What the leader knows about one follower (Kafka's remote replica state).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FollowerState {
    /// The follower's log end: the offset of its last fetch; -1 until it fetches.
    pub log_end: i64,
    pub last_caught_up_ms: i64,
    pub last_fetch_ms: i64,
    /// The leader's log end when the follower last fetched.
    pub last_fetch_leader_log_end: i64,
    /// The broker epoch the follower fetched with (-1: unknown).
    pub broker_epoch: i64,
}

/// A fetch from an older incarnation of the follower's broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("fetch with broker epoch {got}, older than {known}")]
pub struct StaleBrokerEpoch {
    pub got: i64,
    pub known: i64,
}

impl FollowerState {
    /// A follower as a new leader sees it: log end unknown; members of the ISR count as
    /// caught up now, so they are not dropped before they had a chance to fetch.
    pub fn new(in_isr: bool, now_ms: i64) -> FollowerState {
        FollowerState {
            log_end: -1,
            last_caught_up_ms: if in_isr { now_ms } else { 0 },
            last_fetch_ms: 0,
            last_fetch_leader_log_end: -1,
            broker_epoch: -1,
        }
    }

    /// Notes a fetch at `fetch_offset` when the leader's log ended at `leader_log_end`.
    pub fn on_fetch(
        &mut self,
        fetch_offset: i64,
        now_ms: i64,
        leader_log_end: i64,
        broker_epoch: i64,
    ) -> Result<(), StaleBrokerEpoch> {
        if broker_epoch != -1 && self.broker_epoch > broker_epoch {
            return Err(StaleBrokerEpoch {
                got: broker_epoch,
                known: self.broker_epoch,
            });
        }
        if fetch_offset >= leader_log_end {
            self.last_caught_up_ms = self.last_caught_up_ms.max(now_ms);
        } else if fetch_offset >= self.last_fetch_leader_log_end {
            self.last_caught_up_ms = self.last_caught_up_ms.max(self.last_fetch_ms);
        }
        self.log_end = fetch_offset;
        self.last_fetch_leader_log_end = self.last_fetch_leader_log_end.max(leader_log_end);
        self.last_fetch_ms = now_ms;
        if broker_epoch != -1 {
            self.broker_epoch = broker_epoch;
        }
        Ok(())
    }

    /// Kafka's `isCaughtUp`: at the leader's log end, or caught up within `max_lag_ms`.
    pub fn is_caught_up(&self, leader_log_end: i64, now_ms: i64, max_lag_ms: i64) -> bool {
        self.log_end == leader_log_end || now_ms - self.last_caught_up_ms <= max_lag_ms
    }
}

/// An ISR change sent to the controller and not answered yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PendingIsr {
    Expand { replica: i32, isr: Vec<i32> },
    Shrink { isr: Vec<i32> },
}

impl PendingIsr {
    /// The ISR asked for.
    pub fn target(&self) -> &[i32] {
        match self {
            PendingIsr::Expand { isr, .. } | PendingIsr::Shrink { isr } => isr,
        }
    }
}

/// A leader's view of its partition's ISR and followers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderState {
    pub local_id: i32,
    /// The ISR as committed (the metadata image, or the controller's last answer).
    pub isr: Vec<i32>,
    pub replicas: Vec<i32>,
    pub pending: Option<PendingIsr>,
    pub followers: BTreeMap<i32, FollowerState>,
    /// The first offset of the current leader epoch.
    pub epoch_start_offset: i64,
    /// Brokers that may join the ISR, with their registered broker epoch (active in the
    /// metadata: unfenced, not shutting down), refreshed on every metadata change.
    pub eligible: BTreeMap<i32, i64>,
}

impl LeaderState {
    pub fn new(
        local_id: i32,
        replicas: &[i32],
        isr: &[i32],
        epoch_start_offset: i64,
        now_ms: i64,
    ) -> LeaderState {
        let followers = replicas
            .iter()
            .filter(|&&r| r != local_id)
            .map(|&r| (r, FollowerState::new(isr.contains(&r), now_ms)))
            .collect();
        LeaderState {
            local_id,
            isr: isr.to_vec(),
            replicas: replicas.to_vec(),
            pending: None,
            followers,
            epoch_start_offset,
            eligible: BTreeMap::new(),
        }
    }

    /// Whether `replica` may join the ISR: active in the metadata, and its last fetch came
    /// from its current incarnation (KIP-841/903).
    pub fn is_eligible(&self, replica: i32) -> bool {
        let Some(&registered) = self.eligible.get(&replica) else {
            return false;
        };
        self.followers
            .get(&replica)
            .is_some_and(|f| f.broker_epoch == -1 || f.broker_epoch == registered)
    }

    /// The committed ISR plus a member being added (a member being removed is still in
    /// the committed ISR): the set the high watermark waits for.
    pub fn maximal_isr(&self) -> Vec<i32> {
        let mut isr = self.isr.clone();
        if let Some(PendingIsr::Expand { replica, .. }) = &self.pending {
            if !isr.contains(replica) {
                isr.push(*replica);
            }
        }
        isr
    }

    /// `min.insync.replicas`, capped at the number of replicas (Kafka's effective min ISR).
    pub fn effective_min_isr(&self, min_isr: i32) -> usize {
        (min_isr.max(1) as usize).min(self.replicas.len().max(1))
    }

    /// Whether the committed ISR is below the effective `min.insync.replicas`.
    pub fn under_min_isr(&self, min_isr: i32) -> bool {
        self.isr.len() < self.effective_min_isr(min_isr)
    }

    /// The high watermark the ISR allows: the smallest log end over the maximal ISR (the
    /// leader's own is `leader_log_end`) and over caught-up eligible followers outside it
    /// (so that they can reach the HW and join); `None` while under min ISR or while a
    /// member's log end is unknown.
    pub fn high_watermark(
        &self,
        leader_log_end: i64,
        now_ms: i64,
        max_lag_ms: i64,
        min_isr: i32,
    ) -> Option<i64> {
        if self.under_min_isr(min_isr) {
            return None;
        }
        let maximal = self.maximal_isr();
        let mut hw = leader_log_end;
        for r in maximal.iter().filter(|&&r| r != self.local_id) {
            let end = self.followers.get(r).map_or(-1, |f| f.log_end);
            if end < 0 {
                return None;
            }
            hw = hw.min(end);
        }
        for (r, f) in &self.followers {
            if maximal.contains(r) || f.log_end < 0 {
                continue;
            }
            if f.is_caught_up(leader_log_end, now_ms, max_lag_ms) && self.is_eligible(*r) {
                hw = hw.min(f.log_end);
            }
        }
        Some(hw)
    }

    /// Whether `replica` should be added to the ISR now: it is a follower outside the
    /// maximal ISR, no change is in flight, and its log end reached the high watermark
    /// and the current epoch's start.
    pub fn should_expand(&self, replica: i32, high_watermark: i64) -> bool {
        if self.pending.is_some() || self.isr.contains(&replica) || !self.is_eligible(replica) {
            return false;
        }
        let Some(f) = self.followers.get(&replica) else {
            return false;
        };
        f.log_end >= 0 && f.log_end >= high_watermark && f.log_end >= self.epoch_start_offset
    }

    /// ISR members (other than the leader) not caught up within `max_lag_ms`; empty while
    /// a change is in flight.
    pub fn out_of_sync(&self, leader_log_end: i64, now_ms: i64, max_lag_ms: i64) -> Vec<i32> {
        if self.pending.is_some() {
            return Vec::new();
        }
        self.isr
            .iter()
            .copied()
            .filter(|&r| r != self.local_id)
            .filter(|r| {
                self.followers
                    .get(r)
                    .is_none_or(|f| !f.is_caught_up(leader_log_end, now_ms, max_lag_ms))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leader() -> LeaderState {
        let mut l = LeaderState::new(1, &[1, 2, 3], &[1, 2, 3], 100, 1_000);
        l.eligible = [(2, 7), (3, 8)].into_iter().collect();
        l
    }

    const LAG: i64 = 30_000;

    #[test]
    fn the_high_watermark_waits_for_every_isr_member_and_min_isr() {
        let mut l = leader();
        assert_eq!(
            l.high_watermark(150, 1_020, LAG, 1),
            None,
            "follower log ends unknown"
        );
        l.followers
            .get_mut(&2)
            .unwrap()
            .on_fetch(120, 1_010, 150, 7)
            .unwrap();
        assert_eq!(l.high_watermark(150, 1_020, LAG, 1), None);
        l.followers
            .get_mut(&3)
            .unwrap()
            .on_fetch(140, 1_010, 150, 8)
            .unwrap();
        assert_eq!(l.high_watermark(150, 1_020, LAG, 1), Some(120));
        l.isr = vec![1, 3];
        l.eligible.remove(&2); // fenced: it no longer holds the HW back
        assert_eq!(
            l.high_watermark(150, 1_020, LAG, 2),
            Some(140),
            "2 left the ISR"
        );
        assert_eq!(
            l.high_watermark(150, 1_020, LAG, 3),
            None,
            "under min ISR: no advance"
        );
        l.isr = vec![1];
        l.replicas = vec![1];
        l.followers.clear();
        assert_eq!(
            l.high_watermark(150, 1_020, LAG, 3),
            Some(150),
            "min ISR is capped at the replica count"
        );
    }

    #[test]
    fn a_pending_expansion_counts_and_a_pending_shrink_still_waits() {
        let mut l = leader();
        l.isr = vec![1, 2];
        l.eligible.remove(&3);
        l.followers
            .get_mut(&2)
            .unwrap()
            .on_fetch(150, 1_010, 150, 7)
            .unwrap();
        l.followers
            .get_mut(&3)
            .unwrap()
            .on_fetch(110, 1_010, 150, 8)
            .unwrap();
        assert_eq!(l.high_watermark(150, 1_020, LAG, 1), Some(150));
        l.pending = Some(PendingIsr::Expand {
            replica: 3,
            isr: vec![1, 2, 3],
        });
        assert_eq!(l.high_watermark(150, 1_020, LAG, 1), Some(110));
        l.pending = Some(PendingIsr::Shrink { isr: vec![1] });
        assert_eq!(
            l.high_watermark(150, 1_020, LAG, 1),
            Some(150),
            "2 counts until removed"
        );
    }

    #[test]
    fn expansion_needs_the_high_watermark_and_the_epoch_start() {
        let mut l = leader();
        l.isr = vec![1, 2];
        let f = l.followers.get_mut(&3).unwrap();
        f.on_fetch(90, 1_010, 150, 8).unwrap();
        assert!(
            !l.should_expand(3, 80),
            "below the epoch start (KAFKA-7128)"
        );
        l.followers
            .get_mut(&3)
            .unwrap()
            .on_fetch(100, 1_020, 150, 8)
            .unwrap();
        assert!(!l.should_expand(3, 120), "below the high watermark");
        assert!(l.should_expand(3, 100));
        l.pending = Some(PendingIsr::Shrink { isr: vec![1] });
        assert!(!l.should_expand(3, 100), "one change in flight");
        assert!(!l.should_expand(2, 0), "already a member");
        l.pending = None;
        l.eligible.remove(&3);
        assert!(!l.should_expand(3, 100), "fenced or shutting down");
        l.eligible.insert(3, 9);
        assert!(
            !l.should_expand(3, 100),
            "fetched from an older incarnation"
        );
    }

    #[test]
    fn a_caught_up_eligible_follower_outside_the_isr_holds_the_high_watermark() {
        let mut l = leader();
        l.isr = vec![1, 2];
        l.followers
            .get_mut(&2)
            .unwrap()
            .on_fetch(150, 1_010, 150, 7)
            .unwrap();
        // 3 fetches at 140 when the leader ends at 140: caught up.
        l.followers
            .get_mut(&3)
            .unwrap()
            .on_fetch(140, 1_010, 140, 8)
            .unwrap();
        assert_eq!(l.high_watermark(150, 1_020, LAG, 1), Some(140));
        l.eligible.remove(&3);
        assert_eq!(l.high_watermark(150, 1_020, LAG, 1), Some(150));
        l.eligible.insert(3, 8);
        assert_eq!(
            l.high_watermark(150, 1_010 + LAG + 1, LAG, 1),
            Some(150),
            "no longer caught up"
        );
    }

    #[test]
    fn members_fall_out_of_sync_after_the_lag_time() {
        let mut l = leader();
        // Caught up to the leader's end at t=1010; then the leader moves on.
        l.followers
            .get_mut(&2)
            .unwrap()
            .on_fetch(150, 1_010, 150, 7)
            .unwrap();
        l.followers
            .get_mut(&3)
            .unwrap()
            .on_fetch(150, 1_010, 150, 8)
            .unwrap();
        // 3 keeps fetching the previous end: still caught up as of its previous fetch.
        l.followers
            .get_mut(&3)
            .unwrap()
            .on_fetch(150, 20_000, 200, 8)
            .unwrap();
        l.followers
            .get_mut(&3)
            .unwrap()
            .on_fetch(200, 40_000, 260, 8)
            .unwrap();
        assert_eq!(l.out_of_sync(260, 41_000, 30_000), vec![2]);
        assert_eq!(l.out_of_sync(260, 25_000, 30_000), Vec::<i32>::new());
        l.pending = Some(PendingIsr::Shrink { isr: vec![1, 3] });
        assert!(l.out_of_sync(260, 41_000, 30_000).is_empty());
    }

    #[test]
    fn a_fetch_from_an_older_incarnation_is_refused() {
        let mut f = FollowerState::new(true, 0);
        f.on_fetch(10, 1, 10, 20).unwrap();
        assert_eq!(
            f.on_fetch(12, 2, 12, 19),
            Err(StaleBrokerEpoch { got: 19, known: 20 })
        );
        assert_eq!(f.log_end, 10);
        f.on_fetch(12, 3, 12, -1).unwrap();
        assert_eq!(f.log_end, 12, "no epoch (Fetch before v15) is accepted");
    }
}

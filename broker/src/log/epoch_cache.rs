//! The leader-epoch cache of one partition log: which leader epoch began at which offset
//! (KIP-101), kept in `leader-epoch-checkpoint` beside the segments in Kafka's text
//! format (a version line `0`, an entry count, then `epoch start_offset` lines).
//!
//! Followers use it to find where their log diverges from a new leader's (Fetch's
//! diverging epoch, KIP-279/320); clients validate positions with OffsetForLeaderEpoch.
//! Entries keep both epochs and start offsets strictly increasing. It must not know about
//! segments or replication: the log calls `assign` on appends and truncations.

/// An epoch and the first offset written in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: i32,
    pub start_offset: i64,
}

/// Kafka's "undefined" answers of `end_offset_for`.
pub const UNDEFINED_EPOCH: i32 = -1;
pub const UNDEFINED_EPOCH_OFFSET: i64 = -1;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaderEpochCache {
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    pub fn latest(&self) -> Option<EpochEntry> {
        self.entries.last().copied()
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Records that `epoch` starts at `start_offset`. A no-op when the latest entry is
    /// the same epoch starting at or before it; otherwise entries that would break
    /// monotonicity (an epoch at or above `epoch`, or a start at or above
    /// `start_offset`) are dropped first. Returns whether the cache changed.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> bool {
        if epoch < 0 || start_offset < 0 {
            return false;
        }
        if let Some(last) = self.latest() {
            if last.epoch == epoch && start_offset >= last.start_offset {
                return false;
            }
        }
        while let Some(last) = self.entries.last() {
            if last.epoch >= epoch || last.start_offset >= start_offset {
                self.entries.pop();
            } else {
                break;
            }
        }
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        true
    }

    /// The start offset of `epoch`, if it is known.
    pub fn start_offset_of(&self, epoch: i32) -> Option<i64> {
        self.entries
            .iter()
            .find(|e| e.epoch == epoch)
            .map(|e| e.start_offset)
    }

    /// Kafka's `endOffsetFor`: the largest epoch at or below `requested` and the offset
    /// where it ended (the start of the next epoch, or `log_end` for the latest epoch).
    /// Below the first known epoch: `requested` and the first epoch's start. Unknown
    /// (`requested` undefined, or above every epoch): `(-1, -1)`.
    pub fn end_offset_for(&self, requested: i32, log_end: i64) -> (i32, i64) {
        if requested == UNDEFINED_EPOCH {
            return (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        }
        if self.latest_epoch() == Some(requested) {
            return (requested, log_end);
        }
        let Some(higher) = self.entries.iter().find(|e| e.epoch > requested) else {
            return (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        };
        match self.entries.iter().rev().find(|e| e.epoch <= requested) {
            Some(floor) => (floor.epoch, higher.start_offset),
            None => (requested, higher.start_offset),
        }
    }

    /// Drops entries starting at or after `end_offset` (the log was truncated there).
    pub fn truncate_from_end(&mut self, end_offset: i64) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| e.start_offset < end_offset);
        before != self.entries.len()
    }

    /// Drops entries wholly below `start_offset` (the log start moved there); the last
    /// of them is kept, moved up to `start_offset`, since its epoch still covers it.
    pub fn truncate_from_start(&mut self, start_offset: i64) -> bool {
        let below = self
            .entries
            .iter()
            .take_while(|e| e.start_offset < start_offset)
            .count();
        if below == 0 {
            return false;
        }
        let mut kept = self.entries[below - 1];
        self.entries.drain(..below);
        let covered = self
            .entries
            .first()
            .is_some_and(|e| e.start_offset == start_offset);
        if !covered {
            kept.start_offset = start_offset;
            self.entries.insert(0, kept);
        }
        true
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// The checkpoint file's text.
    pub fn encode(&self) -> Vec<u8> {
        let mut s = format!("0\n{}\n", self.entries.len());
        for e in &self.entries {
            s.push_str(&format!("{} {}\n", e.epoch, e.start_offset));
        }
        s.into_bytes()
    }

    /// Parses a checkpoint file; `None` when it is not one (the caller rebuilds the
    /// cache from the log's batches).
    pub fn decode(raw: &[u8]) -> Option<LeaderEpochCache> {
        let text = std::str::from_utf8(raw).ok()?;
        let mut lines = text.lines();
        if lines.next()? != "0" {
            return None;
        }
        let count: usize = lines.next()?.trim().parse().ok()?;
        let mut cache = LeaderEpochCache::default();
        for _ in 0..count {
            let mut it = lines.next()?.split_whitespace();
            let epoch: i32 = it.next()?.parse().ok()?;
            let start: i64 = it.next()?.parse().ok()?;
            let last = cache.latest();
            if last.is_some_and(|l| l.epoch >= epoch || l.start_offset >= start) {
                return None;
            }
            cache.entries.push(EpochEntry {
                epoch,
                start_offset: start,
            });
        }
        Some(cache)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> LeaderEpochCache {
        let mut c = LeaderEpochCache::default();
        for &(e, o) in entries {
            assert!(c.assign(e, o));
        }
        c
    }

    #[test]
    fn assign_keeps_epochs_and_offsets_increasing() {
        let mut c = cache(&[(0, 0), (2, 10), (5, 20)]);
        assert!(!c.assign(5, 25), "same epoch, later start: no change");
        assert!(
            c.assign(3, 15),
            "an older epoch at a lower offset drops the newer"
        );
        assert_eq!(
            c.entries(),
            &[
                EpochEntry {
                    epoch: 0,
                    start_offset: 0
                },
                EpochEntry {
                    epoch: 2,
                    start_offset: 10
                },
                EpochEntry {
                    epoch: 3,
                    start_offset: 15
                }
            ]
        );
        assert!(
            c.assign(7, 12),
            "a newer epoch at a lower offset drops later starts"
        );
        assert_eq!(
            c.latest(),
            Some(EpochEntry {
                epoch: 7,
                start_offset: 12
            })
        );
        assert_eq!(c.entries().len(), 3);
        assert!(!c.assign(-1, 3));
    }

    #[test]
    fn end_offset_for_follows_kafka() {
        let c = cache(&[(1, 0), (3, 10), (6, 25)]);
        assert_eq!(
            c.end_offset_for(6, 40),
            (6, 40),
            "the latest epoch ends at the log end"
        );
        assert_eq!(c.end_offset_for(3, 40), (3, 25));
        assert_eq!(
            c.end_offset_for(4, 40),
            (3, 25),
            "a gap answers with the epoch below"
        );
        assert_eq!(c.end_offset_for(0, 40), (0, 0), "below the first epoch");
        assert_eq!(c.end_offset_for(9, 40), (-1, -1), "above every epoch");
        assert_eq!(c.end_offset_for(-1, 40), (-1, -1));
        assert_eq!(LeaderEpochCache::default().end_offset_for(0, 5), (-1, -1));
    }

    #[test]
    fn truncation_from_either_end() {
        let mut c = cache(&[(1, 0), (3, 10), (6, 25)]);
        assert!(c.truncate_from_end(25));
        assert_eq!(c.latest_epoch(), Some(3));
        assert!(!c.truncate_from_end(30));
        let mut c = cache(&[(1, 0), (3, 10), (6, 25)]);
        assert!(c.truncate_from_start(12));
        assert_eq!(
            c.entries()[0],
            EpochEntry {
                epoch: 3,
                start_offset: 12
            }
        );
        assert!(c.truncate_from_start(25));
        assert_eq!(
            c.entries(),
            &[EpochEntry {
                epoch: 6,
                start_offset: 25
            }]
        );
    }

    #[test]
    fn checkpoint_round_trips_and_rejects_garbage() {
        let c = cache(&[(1, 0), (3, 10)]);
        assert_eq!(LeaderEpochCache::decode(&c.encode()), Some(c));
        assert_eq!(LeaderEpochCache::decode(b"0\n2\n1 0\n"), None, "short");
        assert_eq!(
            LeaderEpochCache::decode(b"0\n2\n3 0\n1 5\n"),
            None,
            "not increasing"
        );
        assert_eq!(LeaderEpochCache::decode(b"1\n0\n"), None, "unknown version");
        assert_eq!(
            LeaderEpochCache::decode(b"0\n0\n"),
            Some(LeaderEpochCache::default())
        );
    }
}

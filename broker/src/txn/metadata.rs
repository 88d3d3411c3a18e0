//! One transactional id's state at its coordinator, and the transitions Kafka's
//! transaction coordinator makes (KIP-98; KIP-360 epoch bumps by the client). Pure: each
//! `prepare_*` returns the state to write to `__transaction_state`; the caller applies it
//! (`TxnMetadata::complete`) only after the write commits, and until then the id has a
//! pending transition and concurrent requests get CONCURRENT_TRANSACTIONS.

use std::collections::BTreeSet;

use kafka_protocol::error::ResponseError as E;

/// No producer id / epoch (Kafka's `RecordBatch.NO_PRODUCER_ID` / `NO_PRODUCER_EPOCH`).
pub const NO_PRODUCER_ID: i64 = -1;
pub const NO_PRODUCER_EPOCH: i16 = -1;

/// A transaction's state (Kafka's `TransactionState`, with its wire ids).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TxnState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    Dead,
    PrepareEpochFence,
}

impl TxnState {
    pub fn id(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
            TxnState::Dead => 6,
            TxnState::PrepareEpochFence => 7,
        }
    }

    pub fn from_id(id: i8) -> Option<TxnState> {
        Some(match id {
            0 => TxnState::Empty,
            1 => TxnState::Ongoing,
            2 => TxnState::PrepareCommit,
            3 => TxnState::PrepareAbort,
            4 => TxnState::CompleteCommit,
            5 => TxnState::CompleteAbort,
            6 => TxnState::Dead,
            7 => TxnState::PrepareEpochFence,
            _ => return None,
        })
    }

    /// The name DescribeTransactions and ListTransactions give (Kafka's `stateName`).
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// The states this one may be entered from (Kafka's `validPreviousStates`).
    fn valid_previous(self) -> &'static [TxnState] {
        use TxnState::*;
        match self {
            Empty => &[Empty, CompleteCommit, CompleteAbort],
            Ongoing => &[Ongoing, Empty, CompleteCommit, CompleteAbort],
            PrepareCommit => &[Ongoing],
            PrepareAbort => &[Ongoing, PrepareEpochFence],
            CompleteCommit => &[PrepareCommit],
            CompleteAbort => &[PrepareAbort],
            Dead => &[Empty, CompleteCommit, CompleteAbort],
            PrepareEpochFence => &[Ongoing],
        }
    }
}

/// Commit or abort.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnResult {
    Commit,
    Abort,
}

/// A producer id and epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProducerIdEpoch {
    pub id: i64,
    pub epoch: i16,
}

/// What `__transaction_state` holds for a transactional id (Kafka's
/// `TxnTransitMetadata`): the whole state, written as one record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnRecord {
    pub producer_id: i64,
    /// The producer id before the last rotation (KIP-360), for retried InitProducerIds.
    pub prev_producer_id: i64,
    pub producer_epoch: i16,
    /// The epoch before the last bump, for retried InitProducerIds (KIP-360).
    pub last_producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    /// Partitions in the transaction, by topic.
    pub partitions: BTreeSet<(String, i32)>,
    /// When the transaction started (-1: none).
    pub start_ms: i64,
    pub last_update_ms: i64,
    /// Ended by a KIP-890 part 2 client (EndTxn v5+): each EndTxn bumps the epoch, and
    /// the transaction's markers carry the bumped epoch.
    pub tv2: bool,
    /// With `tv2`, when the bump exhausted the epoch: the producer id the transaction
    /// completes on (epoch 0); -1 otherwise.
    pub next_producer_id: i64,
}

/// A transactional id at its coordinator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnMetadata {
    pub transactional_id: String,
    pub current: TxnRecord,
    /// The state being written, if any (Kafka's `pendingState`). A fence
    /// (PrepareEpochFence) is only ever pending: the abort that follows it is written.
    pub pending: Option<TxnRecord>,
}

/// The largest epoch a producer id can use before it is rotated (Kafka's
/// `isEpochExhausted`: `Short.MAX_VALUE - 1`, keeping one bump for fencing).
pub fn epoch_exhausted(epoch: i16) -> bool {
    epoch >= i16::MAX - 1
}

/// What an InitProducerId must do next.
#[derive(Debug, PartialEq, Eq)]
pub enum InitStep {
    /// Write this state and answer with its producer id and epoch.
    Write(TxnRecord),
    /// The ongoing transaction's producer is fenced (epoch + 1, pending): abort the
    /// transaction with this producer id and epoch (`prepare_end`, not from a client),
    /// then answer CONCURRENT_TRANSACTIONS so the client retries.
    FenceAndAbort(ProducerIdEpoch),
}

impl TxnMetadata {
    /// A transactional id seen for the first time: producer `producer_id`, no epoch yet.
    pub fn new(transactional_id: &str, producer_id: i64, timeout_ms: i32, now_ms: i64) -> Self {
        TxnMetadata {
            transactional_id: transactional_id.to_string(),
            current: TxnRecord {
                producer_id,
                prev_producer_id: NO_PRODUCER_ID,
                producer_epoch: NO_PRODUCER_EPOCH,
                last_producer_epoch: NO_PRODUCER_EPOCH,
                timeout_ms,
                state: TxnState::Empty,
                partitions: BTreeSet::new(),
                start_ms: -1,
                last_update_ms: now_ms,
                tv2: false,
                next_producer_id: NO_PRODUCER_ID,
            },
            pending: None,
        }
    }

    pub fn restored(transactional_id: &str, record: TxnRecord) -> Self {
        TxnMetadata {
            transactional_id: transactional_id.to_string(),
            current: record,
            pending: None,
        }
    }

    pub fn state(&self) -> TxnState {
        self.current.state
    }

    /// Marks `next` as being written. Err if the transition is not one Kafka makes.
    fn transit(&mut self, next: TxnRecord) -> Result<TxnRecord, E> {
        if !next.state.valid_previous().contains(&self.current.state) {
            tracing::error!(
                transactional_id = %self.transactional_id,
                from = self.current.state.name(),
                to = next.state.name(),
                "illegal transaction state transition"
            );
            return Err(E::InvalidTxnState);
        }
        self.pending = Some(next.clone());
        Ok(next)
    }

    /// The write of the pending state committed: it becomes the state.
    pub fn complete(&mut self) {
        if let Some(next) = self.pending.take() {
            self.current = next;
        }
    }

    /// The write of the pending state failed: it is dropped. (A failed fence's abort
    /// leaves the epoch as it was, so the next fence picks the same bumped epoch, which
    /// never reached a client.)
    pub fn abandon(&mut self) {
        self.pending = None;
    }

    /// InitProducerId for this id (Kafka's `prepareInitProducerIdTransit`).
    /// `expected`: the producer id and epoch a client sends to bump its own epoch
    /// (KIP-360, InitProducerId v3+). `new_producer_id` is called when the epoch is
    /// exhausted and the id must rotate.
    pub fn prepare_init(
        &mut self,
        timeout_ms: i32,
        expected: Option<ProducerIdEpoch>,
        now_ms: i64,
        new_producer_id: impl FnOnce() -> Result<i64, E>,
    ) -> Result<InitStep, E> {
        if self.pending.is_some() {
            return Err(E::ConcurrentTransactions);
        }
        let cur = &self.current;
        let valid = |e: &ProducerIdEpoch| {
            // A just-created id; or the client's id is the current one (its epoch is
            // checked when bumping); or it is the previous one with an exhausted epoch
            // (a retry after a rotation whose answer was lost).
            cur.producer_epoch == NO_PRODUCER_EPOCH
                || e.id == cur.producer_id
                || (e.id == cur.prev_producer_id && epoch_exhausted(e.epoch))
        };
        if !expected.as_ref().is_none_or(valid) {
            return Err(E::ProducerFenced);
        }
        match cur.state {
            TxnState::PrepareAbort | TxnState::PrepareCommit => Err(E::ConcurrentTransactions),
            TxnState::Empty | TxnState::CompleteAbort | TxnState::CompleteCommit => {
                let next = if epoch_exhausted(cur.producer_epoch)
                    && expected.is_none_or(|e| e.epoch == cur.producer_epoch)
                {
                    // Rotate: a new producer id at epoch 0.
                    let id = new_producer_id()?;
                    TxnRecord {
                        producer_id: id,
                        prev_producer_id: if expected.is_some() {
                            cur.producer_id
                        } else {
                            NO_PRODUCER_ID
                        },
                        producer_epoch: 0,
                        last_producer_epoch: if expected.is_some() {
                            cur.producer_epoch
                        } else {
                            NO_PRODUCER_EPOCH
                        },
                        timeout_ms,
                        state: TxnState::Empty,
                        partitions: BTreeSet::new(),
                        start_ms: -1,
                        last_update_ms: now_ms,
                        tv2: false,
                        next_producer_id: NO_PRODUCER_ID,
                    }
                } else {
                    let bumped = cur.producer_epoch + 1;
                    let (epoch, last) = match expected {
                        None => (bumped, NO_PRODUCER_EPOCH),
                        Some(e)
                            if cur.producer_epoch == NO_PRODUCER_EPOCH
                                || e.epoch == cur.producer_epoch =>
                        {
                            (bumped, cur.producer_epoch)
                        }
                        // A retry of a bump that succeeded: answer the current epoch.
                        Some(e) if e.epoch == cur.last_producer_epoch => {
                            (cur.producer_epoch, cur.last_producer_epoch)
                        }
                        Some(_) => return Err(E::ProducerFenced),
                    };
                    TxnRecord {
                        producer_id: cur.producer_id,
                        prev_producer_id: cur.prev_producer_id,
                        producer_epoch: epoch,
                        last_producer_epoch: last,
                        timeout_ms,
                        state: TxnState::Empty,
                        partitions: BTreeSet::new(),
                        start_ms: -1,
                        last_update_ms: now_ms,
                        tv2: false,
                        next_producer_id: NO_PRODUCER_ID,
                    }
                };
                Ok(InitStep::Write(self.transit(next)?))
            }
            TxnState::Ongoing => Ok(InitStep::FenceAndAbort(self.prepare_fence(now_ms)?)),
            TxnState::Dead | TxnState::PrepareEpochFence => {
                tracing::error!(transactional_id = %self.transactional_id, state = cur.state.name(),
                    "InitProducerId found a state the coordinator never rests in");
                Err(E::UnknownServerError)
            }
        }
    }

    /// Fences the current producer of an ongoing transaction (a new instance called
    /// InitProducerId, or the transaction timed out): a pending PrepareEpochFence at
    /// epoch + 1, which the abort that must follow at once uses (Kafka's
    /// `prepareFenceProducerEpoch`). Returns the producer id and fenced epoch.
    pub fn prepare_fence(&mut self, now_ms: i64) -> Result<ProducerIdEpoch, E> {
        let cur = &self.current;
        if cur.producer_epoch == i16::MAX {
            return Err(E::UnknownServerError);
        }
        let next = TxnRecord {
            producer_epoch: cur.producer_epoch + 1,
            state: TxnState::PrepareEpochFence,
            last_update_ms: now_ms,
            ..cur.clone()
        };
        let r = self.transit(next)?;
        Ok(ProducerIdEpoch {
            id: r.producer_id,
            epoch: r.producer_epoch,
        })
    }

    /// Checks the producer of a client request against this id (AddPartitionsToTxn,
    /// AddOffsetsToTxn, EndTxn).
    fn check_producer(&self, producer: ProducerIdEpoch) -> Result<(), E> {
        if self.current.producer_id != producer.id {
            return Err(E::InvalidProducerIdMapping);
        }
        if self.current.producer_epoch != producer.epoch {
            return Err(E::ProducerFenced);
        }
        Ok(())
    }

    /// AddPartitionsToTxn (and AddOffsetsToTxn, with the group's `__consumer_offsets`
    /// partition): Ok(None) when they are already in the ongoing transaction (nothing
    /// to write).
    pub fn prepare_add_partitions(
        &mut self,
        producer: ProducerIdEpoch,
        partitions: &BTreeSet<(String, i32)>,
        now_ms: i64,
    ) -> Result<Option<TxnRecord>, E> {
        self.check_producer(producer)?;
        if self.pending.is_some() {
            return Err(E::ConcurrentTransactions);
        }
        let cur = &self.current;
        match cur.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => {
                return Err(E::ConcurrentTransactions)
            }
            TxnState::Ongoing if partitions.is_subset(&cur.partitions) => return Ok(None),
            _ => {}
        }
        let start_ms = match cur.state {
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => now_ms,
            _ => cur.start_ms,
        };
        let next = TxnRecord {
            state: TxnState::Ongoing,
            partitions: cur.partitions.union(partitions).cloned().collect(),
            start_ms,
            last_update_ms: now_ms,
            ..cur.clone()
        };
        self.transit(next).map(Some)
    }

    /// EndTxn from a client, or the abort that follows a fence (`from_client` false,
    /// with the fenced epoch). Ok(None): nothing to do (a retry of an EndTxn that
    /// completed). Ok(Some): write this PrepareCommit/PrepareAbort, then send markers.
    pub fn prepare_end(
        &mut self,
        producer: ProducerIdEpoch,
        result: TxnResult,
        from_client: bool,
        now_ms: i64,
    ) -> Result<Option<TxnRecord>, E> {
        self.prepare_end_v(producer, result, from_client, false, now_ms, || {
            Err(E::UnknownServerError)
        })
    }

    /// `prepare_end` with the client's transaction version: with `tv2` (EndTxn v5+,
    /// KIP-890 part 2) the prepared state carries the epoch + 1 (the markers use it and
    /// the client gets it back for its next transaction; `new_producer_id` rotates the
    /// id when that exhausts the epoch). A retry of an EndTxn whose transaction was
    /// already ended with the same result (the request's epoch is the one before the
    /// bump) is answered with success; any other request with an older epoch — a
    /// delayed EndTxn of a finished transaction — is fenced and leaves the current
    /// transaction alone.
    pub fn prepare_end_v(
        &mut self,
        producer: ProducerIdEpoch,
        result: TxnResult,
        from_client: bool,
        tv2: bool,
        now_ms: i64,
        new_producer_id: impl FnOnce() -> Result<i64, E>,
    ) -> Result<Option<TxnRecord>, E> {
        use TxnState::*;
        let cur = &self.current;
        if from_client && tv2 && cur.tv2 && self.pending.is_none() {
            let same = matches!(
                (cur.state, result),
                (PrepareCommit | CompleteCommit, TxnResult::Commit)
                    | (PrepareAbort | CompleteAbort, TxnResult::Abort)
            );
            let before_bump = producer.epoch == cur.last_producer_epoch
                && (producer.id == cur.producer_id || producer.id == cur.prev_producer_id);
            if same && before_bump {
                return Ok(None);
            }
        }
        if cur.producer_id != producer.id {
            return Err(E::InvalidProducerIdMapping);
        }
        // Clients must match the epoch exactly; the coordinator's own abort after a
        // fence carries the fence's higher epoch.
        if (from_client && producer.epoch != cur.producer_epoch)
            || producer.epoch < cur.producer_epoch
        {
            return Err(E::ProducerFenced);
        }
        let fence = self
            .pending
            .as_ref()
            .filter(|p| p.state == TxnState::PrepareEpochFence && !from_client)
            .cloned();
        if self.pending.is_some() && fence.is_none() {
            return Err(E::ConcurrentTransactions);
        }
        match (cur.state, result) {
            (Ongoing, _) => {
                let mut next = TxnRecord {
                    state: match result {
                        TxnResult::Commit => PrepareCommit,
                        TxnResult::Abort => PrepareAbort,
                    },
                    last_update_ms: now_ms,
                    tv2: from_client && tv2,
                    next_producer_id: NO_PRODUCER_ID,
                    ..cur.clone()
                };
                if from_client && tv2 {
                    next.producer_epoch = cur.producer_epoch + 1;
                    next.last_producer_epoch = cur.producer_epoch;
                    if epoch_exhausted(next.producer_epoch) {
                        next.next_producer_id = new_producer_id()?;
                    }
                }
                if let Some(f) = fence {
                    if result == TxnResult::Abort {
                        // The fence becomes the abort: its epoch, no previous epoch.
                        self.pending = None;
                        next.producer_epoch = f.producer_epoch;
                        next.last_producer_epoch = NO_PRODUCER_EPOCH;
                    } else {
                        return Err(E::ConcurrentTransactions);
                    }
                }
                self.transit(next).map(Some)
            }
            (CompleteCommit, TxnResult::Commit) | (CompleteAbort, TxnResult::Abort) => Ok(None),
            (PrepareCommit, TxnResult::Commit) | (PrepareAbort, TxnResult::Abort) => {
                Err(E::ConcurrentTransactions)
            }
            (Dead | PrepareEpochFence, _) => Err(E::UnknownServerError),
            _ => Err(E::InvalidTxnState),
        }
    }

    /// The markers are written: CompleteCommit/CompleteAbort, no partitions (Kafka's
    /// `prepareComplete`).
    pub fn prepare_complete(&mut self, now_ms: i64) -> Result<TxnRecord, E> {
        let cur = &self.current;
        let state = match cur.state {
            TxnState::PrepareCommit => TxnState::CompleteCommit,
            TxnState::PrepareAbort => TxnState::CompleteAbort,
            _ => return Err(E::InvalidTxnState),
        };
        let mut next = TxnRecord {
            state,
            partitions: BTreeSet::new(),
            last_update_ms: now_ms,
            ..cur.clone()
        };
        if cur.next_producer_id != NO_PRODUCER_ID {
            // KIP-890 part 2: the markers went out with the exhausted epoch; the id
            // continues on the new producer id at epoch 0.
            next.prev_producer_id = cur.producer_id;
            next.producer_id = cur.next_producer_id;
            next.producer_epoch = 0;
            next.last_producer_epoch = NO_PRODUCER_EPOCH;
            next.next_producer_id = NO_PRODUCER_ID;
        }
        self.transit(next)
    }

    /// Whether an ongoing transaction ran past its timeout and nothing is in flight.
    pub fn timed_out(&self, now_ms: i64) -> bool {
        self.pending.is_none()
            && self.current.state == TxnState::Ongoing
            && self.current.start_ms >= 0
            && self.current.start_ms + self.current.timeout_ms as i64 <= now_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pe(id: i64, epoch: i16) -> ProducerIdEpoch {
        ProducerIdEpoch { id, epoch }
    }

    fn parts(ps: &[(&str, i32)]) -> BTreeSet<(String, i32)> {
        ps.iter().map(|(t, p)| (t.to_string(), *p)).collect()
    }

    fn no_new_id() -> Result<i64, E> {
        panic!("no rotation expected")
    }

    fn write(m: &mut TxnMetadata, step: Result<InitStep, E>) -> TxnRecord {
        match step.unwrap() {
            InitStep::Write(r) => {
                m.complete();
                r
            }
            other => panic!("expected a write, got {other:?}"),
        }
    }

    #[test]
    fn a_new_id_starts_at_epoch_0_and_each_init_bumps_it() {
        let mut m = TxnMetadata::new("t", 7, 60_000, 0);
        let step = m.prepare_init(60_000, None, 1, no_new_id);
        let r = write(&mut m, step);
        assert_eq!(
            (r.producer_id, r.producer_epoch, r.state),
            (7, 0, TxnState::Empty)
        );
        assert_eq!(m.current.producer_epoch, 0);
        let step = m.prepare_init(60_000, None, 2, no_new_id);
        assert_eq!(write(&mut m, step).producer_epoch, 1);
    }

    #[test]
    fn a_pending_write_makes_requests_wait() {
        let mut m = TxnMetadata::new("t", 7, 60_000, 0);
        assert!(matches!(
            m.prepare_init(60_000, None, 1, no_new_id),
            Ok(InitStep::Write(_))
        ));
        assert_eq!(
            m.prepare_init(60_000, None, 1, no_new_id),
            Err(E::ConcurrentTransactions)
        );
        m.abandon();
        assert!(m.prepare_init(60_000, None, 1, no_new_id).is_ok());
    }

    /// Empty → Ongoing (add) → PrepareCommit (end) → CompleteCommit (markers).
    #[test]
    fn a_transaction_commits_through_kafkas_states() {
        let mut m = TxnMetadata::new("t", 7, 60_000, 0);
        m.prepare_init(60_000, None, 1, no_new_id).unwrap();
        m.complete();
        let p = pe(7, 0);
        let r = m
            .prepare_add_partitions(p, &parts(&[("a", 0)]), 10)
            .unwrap()
            .unwrap();
        assert_eq!((r.state, r.start_ms), (TxnState::Ongoing, 10));
        m.complete();
        // Already in: nothing to write.
        assert_eq!(
            m.prepare_add_partitions(p, &parts(&[("a", 0)]), 11),
            Ok(None)
        );
        let r = m
            .prepare_add_partitions(p, &parts(&[("b", 1)]), 12)
            .unwrap()
            .unwrap();
        assert_eq!(r.partitions, parts(&[("a", 0), ("b", 1)]));
        assert_eq!(r.start_ms, 10, "the start stays the first add's");
        m.complete();
        let r = m
            .prepare_end(p, TxnResult::Commit, true, 20)
            .unwrap()
            .unwrap();
        assert_eq!(r.state, TxnState::PrepareCommit);
        m.complete();
        // While markers are written, adds and a second commit wait; an abort is refused.
        assert_eq!(
            m.prepare_add_partitions(p, &parts(&[("c", 0)]), 21),
            Err(E::ConcurrentTransactions)
        );
        assert_eq!(
            m.prepare_end(p, TxnResult::Commit, true, 21),
            Err(E::ConcurrentTransactions)
        );
        assert_eq!(
            m.prepare_end(p, TxnResult::Abort, true, 21),
            Err(E::InvalidTxnState)
        );
        let r = m.prepare_complete(22).unwrap();
        assert_eq!((r.state, r.partitions.len()), (TxnState::CompleteCommit, 0));
        m.complete();
        // A retried commit succeeds without a write; an abort now is refused.
        assert_eq!(m.prepare_end(p, TxnResult::Commit, true, 23), Ok(None));
        assert_eq!(
            m.prepare_end(p, TxnResult::Abort, true, 23),
            Err(E::InvalidTxnState)
        );
        // The next transaction starts anew.
        let r = m
            .prepare_add_partitions(p, &parts(&[("c", 0)]), 30)
            .unwrap()
            .unwrap();
        assert_eq!((r.partitions.len(), r.start_ms), (1, 30));
    }

    #[test]
    fn end_without_a_transaction_and_wrong_producers_get_kafkas_errors() {
        let mut m = TxnMetadata::new("t", 7, 60_000, 0);
        m.prepare_init(60_000, None, 1, no_new_id).unwrap();
        m.complete();
        assert_eq!(
            m.prepare_end(pe(7, 0), TxnResult::Commit, true, 2),
            Err(E::InvalidTxnState)
        );
        assert_eq!(
            m.prepare_end(pe(8, 0), TxnResult::Commit, true, 2),
            Err(E::InvalidProducerIdMapping)
        );
        assert_eq!(
            m.prepare_add_partitions(pe(7, 1), &parts(&[("a", 0)]), 2),
            Err(E::ProducerFenced)
        );
        assert_eq!(
            m.prepare_add_partitions(pe(9, 0), &parts(&[("a", 0)]), 2),
            Err(E::InvalidProducerIdMapping)
        );
    }

    /// A second instance's InitProducerId during an ongoing transaction: fence (one
    /// epoch up), abort with that epoch, CONCURRENT_TRANSACTIONS; its retry bumps
    /// again. The old instance is fenced everywhere.
    #[test]
    fn a_new_instance_fences_the_old_and_aborts_its_transaction() {
        let mut m = TxnMetadata::new("t", 7, 60_000, 0);
        m.prepare_init(60_000, None, 1, no_new_id).unwrap();
        m.complete();
        let old = pe(7, 0);
        m.prepare_add_partitions(old, &parts(&[("a", 0)]), 2)
            .unwrap();
        m.complete();
        let InitStep::FenceAndAbort(f) = m.prepare_init(60_000, None, 3, no_new_id).unwrap() else {
            panic!("expected a fence")
        };
        assert_eq!(f, pe(7, 1));
        // The coordinator's own abort carries the fenced epoch.
        let r = m
            .prepare_end(f, TxnResult::Abort, false, 4)
            .unwrap()
            .unwrap();
        assert_eq!((r.state, r.producer_epoch), (TxnState::PrepareAbort, 1));
        m.complete();
        // The old client can neither end nor add; the new one waits for the markers.
        assert_eq!(
            m.prepare_end(old, TxnResult::Commit, true, 4),
            Err(E::ProducerFenced)
        );
        assert_eq!(
            m.prepare_init(60_000, None, 5, no_new_id),
            Err(E::ConcurrentTransactions)
        );
        m.prepare_complete(6).unwrap();
        m.complete();
        let InitStep::Write(r) = m.prepare_init(60_000, None, 7, no_new_id).unwrap() else {
            panic!()
        };
        m.complete();
        assert_eq!((r.producer_epoch, r.state), (2, TxnState::Empty));
        assert_eq!(
            m.prepare_add_partitions(old, &parts(&[("a", 0)]), 8),
            Err(E::ProducerFenced)
        );
    }

    #[test]
    fn a_failed_fence_reuses_its_epoch() {
        let mut m = TxnMetadata::new("t", 7, 60_000, 0);
        m.prepare_init(60_000, None, 1, no_new_id).unwrap();
        m.complete();
        m.prepare_add_partitions(pe(7, 0), &parts(&[("a", 0)]), 2)
            .unwrap();
        m.complete();
        let f = m.prepare_fence(3).unwrap();
        assert_eq!(f.epoch, 1);
        m.prepare_end(f, TxnResult::Abort, false, 3).unwrap();
        m.abandon(); // the abort's write failed
        assert_eq!(m.state(), TxnState::Ongoing);
        assert_eq!(m.prepare_fence(4).unwrap().epoch, 1);
    }

    /// KIP-360: a client bumping its own epoch (InitProducerId with its id and epoch);
    /// a retry of that bump answers the same epoch; an older epoch is fenced.
    #[test]
    fn clients_bump_their_own_epoch_and_retries_are_idempotent() {
        let mut m = TxnMetadata::new("t", 7, 60_000, 0);
        m.prepare_init(60_000, None, 1, no_new_id).unwrap();
        m.complete();
        m.prepare_init(60_000, None, 1, no_new_id).unwrap();
        m.complete(); // epoch 1, last -1
        let InitStep::Write(r) = m
            .prepare_init(60_000, Some(pe(7, 1)), 2, no_new_id)
            .unwrap()
        else {
            panic!()
        };
        m.complete();
        assert_eq!((r.producer_epoch, r.last_producer_epoch), (2, 1));
        // The answer was lost; the client retries with epoch 1.
        let InitStep::Write(r) = m
            .prepare_init(60_000, Some(pe(7, 1)), 3, no_new_id)
            .unwrap()
        else {
            panic!()
        };
        m.complete();
        assert_eq!(r.producer_epoch, 2);
        assert_eq!(
            m.prepare_init(60_000, Some(pe(7, 0)), 4, no_new_id),
            Err(E::ProducerFenced)
        );
        assert_eq!(
            m.prepare_init(60_000, Some(pe(99, 0)), 4, no_new_id),
            Err(E::ProducerFenced)
        );
    }

    #[test]
    fn an_exhausted_epoch_rotates_the_producer_id() {
        let mut m = TxnMetadata::new("t", 7, 60_000, 0);
        m.current.producer_epoch = i16::MAX - 1;
        let InitStep::Write(r) = m.prepare_init(60_000, None, 1, || Ok(8)).unwrap() else {
            panic!()
        };
        m.complete();
        assert_eq!((r.producer_id, r.producer_epoch), (8, 0));
    }

    #[test]
    fn transactions_time_out_only_when_ongoing_and_idle() {
        let mut m = TxnMetadata::new("t", 7, 1_000, 0);
        m.prepare_init(1_000, None, 1, no_new_id).unwrap();
        m.complete();
        assert!(!m.timed_out(10_000), "no transaction");
        m.prepare_add_partitions(pe(7, 0), &parts(&[("a", 0)]), 100)
            .unwrap();
        m.complete();
        assert!(!m.timed_out(1_099));
        assert!(m.timed_out(1_100));
        m.prepare_fence(1_100).unwrap();
        assert!(!m.timed_out(2_000), "a fence in flight");
    }

    #[test]
    fn states_round_trip_their_wire_ids() {
        for id in 0..8 {
            assert_eq!(TxnState::from_id(id).unwrap().id(), id);
        }
        assert_eq!(TxnState::from_id(8), None);
    }

    /// Transaction version 2 (KIP-890 part 2): each EndTxn bumps the epoch; a retry of
    /// it is answered, a late one is fenced without touching the next transaction; the
    /// id rotates when the bump exhausts the epoch.
    #[test]
    fn version_2_bumps_the_epoch_per_transaction() {
        let mut m = TxnMetadata::new("t", 7, 60_000, 0);
        let step = m.prepare_init(60_000, None, 1, no_new_id);
        write(&mut m, step);
        let t1 = parts(&[("a", 0)]);
        m.prepare_add_partitions(pe(7, 0), &t1, 2).unwrap();
        m.complete();
        let r = m
            .prepare_end_v(pe(7, 0), TxnResult::Commit, true, true, 3, no_new_id)
            .unwrap()
            .unwrap();
        assert_eq!(
            (r.state, r.producer_epoch, r.last_producer_epoch),
            (TxnState::PrepareCommit, 1, 0)
        );
        m.complete();
        // A retry while prepared, and once complete: answered, nothing written.
        assert_eq!(
            m.prepare_end_v(pe(7, 0), TxnResult::Commit, true, true, 4, no_new_id),
            Ok(None)
        );
        let done = m.prepare_complete(5).unwrap();
        m.complete();
        assert_eq!((done.producer_epoch, done.partitions.len()), (1, 0));
        assert_eq!(
            m.prepare_end_v(pe(7, 0), TxnResult::Commit, true, true, 6, no_new_id),
            Ok(None)
        );
        // The old epoch cannot start the next transaction; the new one does.
        assert_eq!(
            m.prepare_add_partitions(pe(7, 0), &t1, 7),
            Err(E::ProducerFenced)
        );
        m.prepare_add_partitions(pe(7, 1), &t1, 7).unwrap();
        m.complete();
        // The late EndTxn of the first transaction: fenced, the second stays open.
        assert_eq!(
            m.prepare_end_v(pe(7, 0), TxnResult::Commit, true, true, 8, no_new_id),
            Err(E::ProducerFenced)
        );
        assert_eq!(m.current.state, TxnState::Ongoing);
        // Near the end of the epochs the id rotates at completion.
        m.current.producer_epoch = i16::MAX - 2;
        let r = m
            .prepare_end_v(pe(7, i16::MAX - 2), TxnResult::Abort, true, true, 9, || {
                Ok(8)
            })
            .unwrap()
            .unwrap();
        assert_eq!((r.producer_epoch, r.next_producer_id), (i16::MAX - 1, 8));
        m.complete();
        let done = m.prepare_complete(10).unwrap();
        assert_eq!(
            (
                done.producer_id,
                done.producer_epoch,
                done.prev_producer_id,
                done.next_producer_id
            ),
            (8, 0, 7, NO_PRODUCER_ID)
        );
    }
}

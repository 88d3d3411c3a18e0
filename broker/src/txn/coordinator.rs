//! The transaction coordinator of one broker (KIP-98). A transactional id lives in the
//! `__transaction_state` partition `partition_for(id)` and the broker leading it
//! coordinates the id, through the coordinator runtime (`crate::coordinator`): loaded
//! on leadership, every transition written (acks=all) before it takes effect and before
//! the client hears of it, forgotten when leadership moves.
//!
//! Each request locks its id, asks the state machine (`metadata.rs`) for the next state,
//! writes it, then applies it (or drops it if the write failed). Ending a transaction
//! writes PrepareCommit/PrepareAbort, answers the client, and then has the markers
//! written to every partition of the transaction (`TxnMarkers`) before writing
//! CompleteCommit/CompleteAbort; a ticker aborts transactions past their timeout and
//! finishes the markers of transactions a failed-over coordinator found prepared.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError as E;
use parking_lot::Mutex;
use strom_controller::metadata::MetadataImage;

use super::metadata::{
    epoch_exhausted, InitStep, ProducerIdEpoch, TxnMetadata, TxnRecord, TxnResult, TxnState,
};
use super::store::{self, TxnLoader, TXN_TOPIC};
use crate::coordinator::{CoordinatorRuntime, Handle};
use crate::replication::ReplicaManager;

/// Settings of the transaction coordinator (Kafka's names and defaults).
#[derive(Clone, Debug)]
pub struct TxnConfig {
    /// `transaction.state.log.num.partitions`
    pub partitions: i32,
    /// `transaction.max.timeout.ms`
    pub max_timeout_ms: i32,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`
    pub abort_check_interval_ms: u64,
    /// `transactional.id.expiration.ms`: an id without a transaction for this long is
    /// forgotten (a tombstone in `__transaction_state`).
    pub id_expiration_ms: i64,
}

impl Default for TxnConfig {
    fn default() -> Self {
        TxnConfig {
            partitions: 50,
            max_timeout_ms: 900_000,
            abort_check_interval_ms: 10_000,
            id_expiration_ms: 7 * 24 * 3600 * 1000,
        }
    }
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Writes a transaction's markers (commit or abort control batches) to its partitions,
/// at their leaders (Kafka's WriteTxnMarkers), and returns once every one is written.
pub trait TxnMarkers: Send + Sync + 'static {
    /// `coordinator_epoch`: the leader epoch of the transactional id's
    /// `__transaction_state` partition here, so that partitions refuse markers from a
    /// coordinator older than one they already heard from.
    fn write<'a>(
        &'a self,
        coordinator_epoch: i32,
        producer: ProducerIdEpoch,
        result: TxnResult,
        partitions: &'a BTreeSet<(String, i32)>,
    ) -> BoxFuture<'a, Result<(), E>>;
}

/// Requests on an id that expired while they waited for it.
fn alive(m: &TxnMetadata) -> Result<(), E> {
    if m.current.state == TxnState::Dead {
        return Err(E::InvalidProducerIdMapping);
    }
    Ok(())
}

pub struct TransactionCoordinator {
    pub cfg: TxnConfig,
    rt: Arc<CoordinatorRuntime<TxnMetadata>>,
    markers: Arc<dyn TxnMarkers>,
    /// Transactional ids whose markers are being written.
    completing: Mutex<BTreeSet<String>>,
}

impl TransactionCoordinator {
    pub fn new(
        node_id: i32,
        cfg: TxnConfig,
        replicas: Arc<ReplicaManager>,
        markers: Arc<dyn TxnMarkers>,
    ) -> Arc<Self> {
        let rt = CoordinatorRuntime::new(TXN_TOPIC, node_id, cfg.partitions, replicas);
        Arc::new(TransactionCoordinator {
            cfg,
            rt,
            markers,
            completing: Mutex::new(BTreeSet::new()),
        })
    }

    pub fn partition_for(&self, transactional_id: &str) -> i32 {
        self.rt.partition_for(transactional_id)
    }

    /// Follows leadership of the `__transaction_state` partitions.
    pub fn on_metadata(self: &Arc<Self>, img: &MetadataImage) {
        let n = self.cfg.partitions;
        self.rt.on_metadata(img, || TxnLoader::new(n));
    }

    /// Writes `next` for `m` (already marked pending) and applies it, or drops it when
    /// the write fails.
    async fn write(&self, m: &mut TxnMetadata, next: &TxnRecord) -> Result<(), E> {
        let p = self.rt.partition_for(&m.transactional_id);
        let rec = (store::key(&m.transactional_id), Some(store::value(next)));
        match self.rt.write(p, vec![rec]).await {
            Ok(()) => {
                m.complete();
                Ok(())
            }
            Err(e) => {
                m.abandon();
                Err(e.into())
            }
        }
    }

    /// InitProducerId with a transactional id: a producer id and a new epoch for it,
    /// fencing older instances. `alloc` hands out a fresh producer id (for a new id, or
    /// when the epoch is exhausted). An ongoing transaction of an older instance is
    /// aborted first and the caller told CONCURRENT_TRANSACTIONS (it retries).
    pub async fn init_producer_id<F, Fut>(
        self: &Arc<Self>,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<ProducerIdEpoch>,
        alloc: F,
    ) -> Result<ProducerIdEpoch, E>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<i64, E>>,
    {
        if transactional_id.is_empty() {
            return Err(E::InvalidRequest);
        }
        if timeout_ms <= 0 || timeout_ms > self.cfg.max_timeout_ms {
            return Err(E::InvalidTransactionTimeout);
        }
        let h = match self.rt.entry(transactional_id, None)? {
            Some(h) => h,
            None => {
                let pid = alloc().await?;
                let now = strom_common::clock::now_ms();
                let make = |_: i32| TxnMetadata::new(transactional_id, pid, timeout_ms, now);
                self.rt
                    .entry(transactional_id, Some(&make))?
                    .expect("created")
            }
        };
        let mut m = h.lock().await;
        if m.current.state == TxnState::Dead {
            // Expired while we waited: the retry makes a new entry.
            return Err(E::ConcurrentTransactions);
        }
        let rotation = if epoch_exhausted(m.current.producer_epoch) {
            Some(alloc().await?)
        } else {
            None
        };
        let now = strom_common::clock::now_ms();
        let step = m.prepare_init(timeout_ms, expected, now, || {
            rotation.ok_or(E::UnknownServerError)
        })?;
        match step {
            InitStep::Write(next) => {
                self.write(&mut m, &next).await?;
                Ok(ProducerIdEpoch {
                    id: next.producer_id,
                    epoch: next.producer_epoch,
                })
            }
            InitStep::FenceAndAbort(fenced) => {
                tracing::info!(
                    transactional_id,
                    producer_id = fenced.id,
                    epoch = fenced.epoch,
                    "a new producer instance fences the ongoing transaction: aborting it"
                );
                self.end_locked(&mut m, fenced, TxnResult::Abort, false)
                    .await?;
                Err(E::ConcurrentTransactions)
            }
        }
    }

    /// AddPartitionsToTxn (and AddOffsetsToTxn with the group's `__consumer_offsets`
    /// partition): the partitions join the producer's ongoing transaction, or start one.
    pub async fn add_partitions(
        &self,
        transactional_id: &str,
        producer: ProducerIdEpoch,
        partitions: &BTreeSet<(String, i32)>,
    ) -> Result<(), E> {
        let h = self.existing(transactional_id)?;
        let mut m = h.lock().await;
        alive(&m)?;
        let now = strom_common::clock::now_ms();
        match m.prepare_add_partitions(producer, partitions, now)? {
            None => Ok(()),
            Some(next) => self.write(&mut m, &next).await,
        }
    }

    /// Which of `partitions` are in the producer's ongoing transaction (KIP-890 part 1:
    /// a partition leader asks before it accepts a batch that starts a transaction
    /// there): the ones that are not. An error concerns them all.
    pub async fn verify_partitions(
        &self,
        transactional_id: &str,
        producer: ProducerIdEpoch,
        partitions: &BTreeSet<(String, i32)>,
    ) -> Result<BTreeSet<(String, i32)>, E> {
        let h = self.existing(transactional_id)?;
        let m = h.lock().await;
        alive(&m)?;
        let cur = &m.current;
        if cur.producer_id != producer.id {
            return Err(E::InvalidProducerIdMapping);
        }
        if cur.producer_epoch != producer.epoch {
            return Err(E::ProducerFenced);
        }
        if m.pending.is_some()
            || matches!(cur.state, TxnState::PrepareCommit | TxnState::PrepareAbort)
        {
            return Err(E::ConcurrentTransactions);
        }
        if cur.state != TxnState::Ongoing {
            return Ok(partitions.clone());
        }
        Ok(partitions.difference(&cur.partitions).cloned().collect())
    }

    /// EndTxn from a client: PrepareCommit/PrepareAbort is written before the answer;
    /// the markers and the completion follow. With `tv2` (EndTxn v5+, KIP-890 part 2)
    /// the epoch is bumped (`alloc` gives a new producer id if that exhausts it).
    /// Returns the producer id and epoch the client goes on with.
    pub async fn end_txn<F, Fut>(
        self: &Arc<Self>,
        transactional_id: &str,
        producer: ProducerIdEpoch,
        result: TxnResult,
        tv2: bool,
        alloc: F,
    ) -> Result<ProducerIdEpoch, E>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<i64, E>>,
    {
        let h = self.existing(transactional_id)?;
        let mut m = h.lock().await;
        alive(&m)?;
        let rotation = if tv2
            && m.current.state == TxnState::Ongoing
            && epoch_exhausted(m.current.producer_epoch.saturating_add(1))
        {
            Some(alloc().await?)
        } else {
            None
        };
        self.end_locked_v(&mut m, producer, result, true, tv2, rotation)
            .await?;
        if !tv2 {
            return Ok(producer);
        }
        let r = &m.current;
        Ok(if r.next_producer_id >= 0 {
            ProducerIdEpoch {
                id: r.next_producer_id,
                epoch: 0,
            }
        } else {
            ProducerIdEpoch {
                id: r.producer_id,
                epoch: r.producer_epoch,
            }
        })
    }

    /// DescribeTransactions: the id's current state (TRANSACTIONAL_ID_NOT_FOUND when this
    /// coordinator has none).
    pub async fn describe(&self, transactional_id: &str) -> Result<TxnRecord, E> {
        let h = self
            .rt
            .entry(transactional_id, None)?
            .ok_or(E::TransactionalIdNotFound)?;
        let m = h.lock().await;
        Ok(m.current.clone())
    }

    /// ListTransactions: every id this broker coordinates with its state.
    pub async fn list(&self) -> Vec<(String, TxnRecord)> {
        let mut out = Vec::new();
        for h in self.rt.all() {
            let m = h.lock().await;
            out.push((m.transactional_id.clone(), m.current.clone()));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    fn existing(&self, transactional_id: &str) -> Result<Handle<TxnMetadata>, E> {
        if transactional_id.is_empty() {
            return Err(E::InvalidRequest);
        }
        self.rt
            .entry(transactional_id, None)?
            .ok_or(E::InvalidProducerIdMapping)
    }

    async fn end_locked(
        self: &Arc<Self>,
        m: &mut TxnMetadata,
        producer: ProducerIdEpoch,
        result: TxnResult,
        from_client: bool,
    ) -> Result<(), E> {
        self.end_locked_v(m, producer, result, from_client, false, None)
            .await
    }

    async fn end_locked_v(
        self: &Arc<Self>,
        m: &mut TxnMetadata,
        producer: ProducerIdEpoch,
        result: TxnResult,
        from_client: bool,
        tv2: bool,
        rotation: Option<i64>,
    ) -> Result<(), E> {
        let now = strom_common::clock::now_ms();
        let next = match m.prepare_end_v(producer, result, from_client, tv2, now, || {
            rotation.ok_or(E::UnknownServerError)
        }) {
            Ok(Some(next)) => next,
            // A retry of a transaction already completed.
            Ok(None) => return Ok(()),
            Err(e) => {
                if !from_client {
                    m.abandon(); // the fence that asked for this abort
                }
                return Err(e);
            }
        };
        self.write(m, &next).await?;
        self.spawn_completion(m.transactional_id.clone());
        Ok(())
    }

    /// Writes the markers of a prepared transaction and then its completion, retrying
    /// until done or until this broker no longer coordinates the id.
    fn spawn_completion(self: &Arc<Self>, transactional_id: String) {
        if !self.completing.lock().insert(transactional_id.clone()) {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(50);
            loop {
                match me.complete_once(&transactional_id).await {
                    Ok(true) | Err(E::NotCoordinator) => break,
                    Ok(false) | Err(_) => {
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                    }
                }
            }
            me.completing.lock().remove(&transactional_id);
        });
    }

    /// One attempt: Ok(true) when the transaction is complete (or no longer prepared).
    async fn complete_once(&self, transactional_id: &str) -> Result<bool, E> {
        let Some(h) = self.rt.entry(transactional_id, None)? else {
            return Ok(true);
        };
        let (producer, result, partitions) = {
            let m = h.lock().await;
            let cur = &m.current;
            let result = match cur.state {
                TxnState::PrepareCommit => TxnResult::Commit,
                TxnState::PrepareAbort => TxnResult::Abort,
                _ => return Ok(true),
            };
            let producer = ProducerIdEpoch {
                id: cur.producer_id,
                epoch: cur.producer_epoch,
            };
            (producer, result, cur.partitions.clone())
        };
        let p = self.rt.partition_for(transactional_id);
        let Some(coordinator_epoch) = self.rt.leader_epoch(p) else {
            return Err(E::NotCoordinator);
        };
        // Markers are written without holding the id: requests meanwhile see the
        // prepared state and wait (CONCURRENT_TRANSACTIONS).
        self.markers
            .write(coordinator_epoch, producer, result, &partitions)
            .await?;
        let mut m = h.lock().await;
        if m.current.producer_id != producer.id || m.current.producer_epoch != producer.epoch {
            return Ok(true);
        }
        let next = m.prepare_complete(strom_common::clock::now_ms())?;
        self.write(&mut m, &next).await?;
        Ok(true)
    }

    /// Forgets an id idle for longer than `transactional.id.expiration.ms` (no open
    /// transaction): a tombstone is written, then the entry goes (Kafka's
    /// `removeExpiredTransactionalIds`). Requests that held it meanwhile see it Dead.
    async fn maybe_expire(&self, m: &mut TxnMetadata, now: i64) {
        let cur = &m.current;
        let idle = matches!(
            cur.state,
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
        ) && m.pending.is_none()
            && now - cur.last_update_ms > self.cfg.id_expiration_ms;
        if !idle {
            return;
        }
        let id = m.transactional_id.clone();
        let p = self.rt.partition_for(&id);
        match self.rt.write(p, vec![(store::key(&id), None)]).await {
            Ok(()) => {
                m.current.state = TxnState::Dead;
                self.rt.remove(&id);
                tracing::info!(transactional_id = %id, "expired a transactional id (transactional.id.expiration.ms)");
            }
            Err(e) => {
                tracing::debug!(transactional_id = %id, error = %e, "expiring a transactional id failed; retrying later")
            }
        }
    }

    /// Aborts transactions past their timeout (fencing their producer, as Kafka does)
    /// and finishes prepared transactions whose markers nobody is writing (after a
    /// coordinator failover), every `abort_check_interval_ms`.
    pub fn spawn_ticker(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let every = Duration::from_millis(self.cfg.abort_check_interval_ms.max(10));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(me) = weak.upgrade() else { return };
                let now = strom_common::clock::now_ms();
                for h in me.rt.all() {
                    let mut m = h.lock().await;
                    let id = m.transactional_id.clone();
                    let state = m.current.state;
                    match state {
                        TxnState::PrepareCommit | TxnState::PrepareAbort => {
                            drop(m);
                            me.spawn_completion(id);
                        }
                        TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
                            me.maybe_expire(&mut m, now).await;
                        }
                        TxnState::Ongoing if m.timed_out(now) => {
                            tracing::info!(transactional_id = %id, timeout_ms = m.current.timeout_ms,
                                "aborting a transaction past its timeout");
                            let fenced = match m.prepare_fence(now) {
                                Ok(f) => f,
                                Err(e) => {
                                    tracing::warn!(transactional_id = %id, error = %e, "cannot fence a timed-out transaction");
                                    continue;
                                }
                            };
                            if let Err(e) =
                                me.end_locked(&mut m, fenced, TxnResult::Abort, false).await
                            {
                                tracing::debug!(transactional_id = %id, error = %e, "aborting a timed-out transaction failed; retrying later");
                            }
                        }
                        _ => {}
                    }
                }
            }
        });
    }
}

//! The controller's state machine: applies committed metadata batches to the
//! `MetadataImage`, keeps recent batches for brokers following the log, and persists
//! snapshots (the image as records). The image itself is rebuilt on start from the last
//! snapshot plus the log entries openraft replays after it.

// openraft's storage traits fix the error type (StorageError, 224 bytes).
#![allow(clippy::result_large_err)]

use std::collections::VecDeque;
use std::io::Cursor;
use std::sync::{Arc, RwLock};

use openraft::storage::RaftStateMachine;
use openraft::{
    EntryPayload, ErrorSubject, ErrorVerb, OptionalSend, RaftSnapshotBuilder, Snapshot,
};
use serde::{Deserialize, Serialize};
use strom_common::watch;
use strom_proto::metadata::MetadataRecordBatch;

use super::Backend;
use crate::metadata::records::{decode_batch, encode_batch};
use crate::metadata::MetadataImage;
use crate::types::{Entry, LogId, SnapshotMeta, StorageError, StoredMembership, TypeConfig};

const SNAPSHOT: &str = "snapshot";
/// How many applied batches stay available to brokers that follow the log; a broker
/// further behind gets the whole image instead.
const RETAINED_BATCHES: usize = 10_000;

/// State shared between the state machine (which openraft owns) and the controller
/// service that reads it.
pub struct SmShared {
    pub state: RwLock<SmState>,
    applied_tx: watch::Sender<u64>,
}

impl SmShared {
    /// A receiver that sees the last applied metadata offset.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.applied_tx.subscribe()
    }

    /// A copy of the current image.
    pub fn image(&self) -> MetadataImage {
        self.state.read().expect("sm lock").image.clone()
    }

    /// Calls `f` with the current image without copying it.
    pub fn with_image<T>(&self, f: impl FnOnce(&MetadataImage) -> T) -> T {
        f(&self.state.read().expect("sm lock").image)
    }
}

/// The applied state.
pub struct SmState {
    pub image: MetadataImage,
    pub last_applied: Option<LogId>,
    pub last_membership: StoredMembership,
    /// Applied batches with offsets above `retained_floor`, ascending.
    pub retained: VecDeque<(u64, Arc<MetadataRecordBatch>)>,
    /// Every batch above this offset is in `retained`.
    pub retained_floor: u64,
}

impl SmState {
    /// What a broker that applied everything up to `after` needs next: either the retained
    /// batches after it, or (when it is behind the retained window) the whole image.
    pub fn catch_up(&self, after: u64, max: usize) -> CatchUp {
        let applied = self.last_applied.map_or(0, |l| l.index);
        if after >= self.retained_floor || after >= applied {
            let mut entries = Vec::new();
            let mut upto = applied;
            for (off, b) in self.retained.iter().filter(|(o, _)| *o > after) {
                if entries.len() >= max {
                    upto = entries.last().map_or(after, |(o, _): &(u64, _)| *o);
                    break;
                }
                entries.push((*off, b.clone()));
            }
            CatchUp::Entries {
                entries,
                upto: upto.max(after),
            }
        } else {
            CatchUp::Image {
                offset: self.image.offset.max(applied),
                image: self.image.clone(),
            }
        }
    }
}

/// The answer to a broker following the metadata log.
pub enum CatchUp {
    Entries {
        entries: Vec<(u64, Arc<MetadataRecordBatch>)>,
        upto: u64,
    },
    Image {
        offset: u64,
        image: MetadataImage,
    },
}

#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

/// The `RaftStateMachine` handed to openraft.
#[derive(Clone)]
pub struct StateMachineStore {
    shared: Arc<SmShared>,
    backend: Arc<dyn Backend>,
    observer: Option<ApplyObserver>,
}

/// Told of every metadata batch a controller applies (offset, encoded batch), in order,
/// for histories kept outside the node (the simulation's `metadata_logs_agree`).
pub type ApplyObserver = Arc<dyn Fn(u64, &[u8]) + Send + Sync>;

fn sm_err(verb: ErrorVerb, e: impl ToString) -> StorageError {
    StorageError::from_io_error(
        ErrorSubject::StateMachine,
        verb,
        std::io::Error::other(e.to_string()),
    )
}

impl StateMachineStore {
    /// Opens the state machine, loading the last persisted snapshot if there is one.
    pub fn open(
        backend: Arc<dyn Backend>,
        observer: Option<ApplyObserver>,
    ) -> Result<StateMachineStore, StorageError> {
        let mut state = SmState {
            image: MetadataImage::default(),
            last_applied: None,
            last_membership: StoredMembership::default(),
            retained: VecDeque::new(),
            retained_floor: 0,
        };
        if let Some(raw) = backend
            .meta_get(SNAPSHOT)
            .map_err(|e| sm_err(ErrorVerb::Read, e))?
        {
            let s: StoredSnapshot =
                serde_json::from_slice(&raw).map_err(|e| sm_err(ErrorVerb::Read, e))?;
            let batch = decode_batch(&s.data).map_err(|e| sm_err(ErrorVerb::Read, e))?;
            let offset = s.meta.last_log_id.map_or(0, |l| l.index);
            state.image = MetadataImage::from_records(offset, &batch.records);
            state.last_applied = s.meta.last_log_id;
            state.last_membership = s.meta.last_membership.clone();
            state.retained_floor = offset;
        }
        let applied = state.last_applied.map_or(0, |l| l.index);
        let (applied_tx, _) = watch::channel(applied);
        Ok(StateMachineStore {
            shared: Arc::new(SmShared {
                state: RwLock::new(state),
                applied_tx,
            }),
            backend,
            observer,
        })
    }

    pub fn shared(&self) -> Arc<SmShared> {
        self.shared.clone()
    }

    fn load_snapshot(&self) -> Result<Option<StoredSnapshot>, StorageError> {
        match self
            .backend
            .meta_get(SNAPSHOT)
            .map_err(|e| sm_err(ErrorVerb::Read, e))?
        {
            Some(raw) => Ok(Some(
                serde_json::from_slice(&raw).map_err(|e| sm_err(ErrorVerb::Read, e))?,
            )),
            None => Ok(None),
        }
    }

    fn save_snapshot(&self, s: &StoredSnapshot) -> Result<(), StorageError> {
        let raw = serde_json::to_vec(s).map_err(|e| sm_err(ErrorVerb::Write, e))?;
        self.backend
            .meta_put(SNAPSHOT, raw)
            .map_err(|e| sm_err(ErrorVerb::Write, e))?;
        self.backend
            .flush()
            .map_err(|e| sm_err(ErrorVerb::Write, e))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let (data, meta) = {
            let st = self.shared.state.read().expect("sm lock");
            let data = encode_batch(st.image.to_records());
            let id = match st.last_applied {
                Some(l) => format!("{}-{}-{}", l.leader_id.term, l.index, data.len()),
                None => format!("none-{}", data.len()),
            };
            let meta = SnapshotMeta {
                last_log_id: st.last_applied,
                last_membership: st.last_membership.clone(),
                snapshot_id: id,
            };
            (data, meta)
        };
        self.save_snapshot(&StoredSnapshot {
            meta: meta.clone(),
            data: data.clone(),
        })?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = StateMachineStore;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let st = self.shared.state.read().expect("sm lock");
        Ok((st.last_applied, st.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<()>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut out = Vec::new();
        let applied = {
            let mut st = self.shared.state.write().expect("sm lock");
            for e in entries {
                let index = e.log_id.index;
                match e.payload {
                    EntryPayload::Blank => {}
                    EntryPayload::Normal(p) => {
                        let batch = decode_batch(&p.0).map_err(|e| sm_err(ErrorVerb::Read, e))?;
                        if let Some(observe) = &self.observer {
                            observe(index, &p.0);
                        }
                        st.image.apply_batch(index, &batch.records);
                        st.retained.push_back((index, Arc::new(batch)));
                        while st.retained.len() > RETAINED_BATCHES {
                            if let Some((off, _)) = st.retained.pop_front() {
                                st.retained_floor = off;
                            }
                        }
                    }
                    EntryPayload::Membership(m) => {
                        st.last_membership = StoredMembership::new(Some(e.log_id), m);
                    }
                }
                st.image.offset = index;
                st.last_applied = Some(e.log_id);
                out.push(());
            }
            st.last_applied.map_or(0, |l| l.index)
        };
        self.shared.applied_tx.send_replace(applied);
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let batch = decode_batch(&data).map_err(|e| sm_err(ErrorVerb::Read, e))?;
        self.save_snapshot(&StoredSnapshot {
            meta: meta.clone(),
            data,
        })?;
        let offset = meta.last_log_id.map_or(0, |l| l.index);
        {
            let mut st = self.shared.state.write().expect("sm lock");
            st.image = MetadataImage::from_records(offset, &batch.records);
            st.last_applied = meta.last_log_id;
            st.last_membership = meta.last_membership.clone();
            st.retained.clear();
            st.retained_floor = offset;
        }
        self.shared.applied_tx.send_replace(offset);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        Ok(self.load_snapshot()?.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}

//! openraft's `RaftLogStorage` on a `Backend`. Rules it keeps (openraft's): log entries are
//! consecutive; the vote and appended entries are durable (flushed) before openraft is
//! told they are stored; truncation and purge only remove entries.

// openraft's storage traits fix the error type (StorageError, 224 bytes).
#![allow(clippy::result_large_err)]

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, OptionalSend, RaftLogReader};

use super::Backend;
use crate::types::{Entry, LogId, StorageError, TypeConfig, Vote};

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const LAST_PURGED: &str = "last_purged";

/// The Raft log of one controller.
#[derive(Clone)]
pub struct LogStore {
    backend: Arc<dyn Backend>,
}

fn io_err(
    subject: ErrorSubject<u64>,
    verb: ErrorVerb,
    e: impl std::error::Error + 'static,
) -> StorageError {
    StorageError::from_io_error(subject, verb, io::Error::other(e.to_string()))
}

fn read_err(e: impl std::error::Error + 'static) -> StorageError {
    io_err(ErrorSubject::Logs, ErrorVerb::Read, e)
}

fn write_err(e: impl std::error::Error + 'static) -> StorageError {
    io_err(ErrorSubject::Logs, ErrorVerb::Write, e)
}

impl LogStore {
    pub fn new(backend: Arc<dyn Backend>) -> LogStore {
        LogStore { backend }
    }

    fn meta<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StorageError> {
        match self.backend.meta_get(key).map_err(read_err)? {
            Some(v) => Ok(Some(serde_json::from_slice(&v).map_err(read_err)?)),
            None => Ok(None),
        }
    }

    fn put_meta<T: serde::Serialize>(&self, key: &str, v: &T) -> Result<(), StorageError> {
        let bytes = serde_json::to_vec(v).map_err(write_err)?;
        self.backend.meta_put(key, bytes).map_err(write_err)
    }

    /// True when nothing was ever stored: no vote, no log, no purge.
    pub async fn is_pristine(&mut self) -> Result<bool, StorageError> {
        Ok(self.meta::<Vote>(VOTE)?.is_none()
            && self.backend.log_last().map_err(read_err)?.is_none()
            && self.meta::<LogId>(LAST_PURGED)?.is_none())
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let from = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i + 1,
            Bound::Unbounded => 0,
        };
        let to = match range.end_bound() {
            Bound::Included(&i) => i.saturating_add(1),
            Bound::Excluded(&i) => i,
            Bound::Unbounded => u64::MAX,
        };
        self.backend
            .log_range(from, to)
            .map_err(read_err)?
            .into_iter()
            .map(|(_, v)| serde_json::from_slice(&v).map_err(read_err))
            .collect()
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged: Option<LogId> = self.meta(LAST_PURGED)?;
        let last = match self.backend.log_last().map_err(read_err)? {
            Some((_, v)) => Some(
                serde_json::from_slice::<Entry>(&v)
                    .map_err(read_err)?
                    .log_id,
            ),
            None => last_purged,
        };
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.put_meta(VOTE, vote)?;
        self.backend
            .flush()
            .map_err(|e| io_err(ErrorSubject::Vote, ErrorVerb::Write, e))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        // Read only at startup. A node that led before it stopped comes back as a
        // follower that voted for itself in that term (standard Raft), not as the leader:
        // openraft 0.9 would resume leading the same term at once, and a leader that lost
        // the tail of its log in a power failure would then write other entries under log
        // ids its followers already hold (found by the simulation's metadata history).
        Ok(self.meta::<Vote>(VOTE)?.map(|v| {
            if v.is_committed() {
                Vote::new(v.leader_id.term, v.leader_id.node_id)
            } else {
                v
            }
        }))
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.put_meta(COMMITTED, &committed)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.meta::<Option<LogId>>(COMMITTED)?.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = Vec::new();
        for e in entries {
            batch.push((e.log_id.index, serde_json::to_vec(&e).map_err(write_err)?));
        }
        self.backend.log_insert(batch).map_err(write_err)?;
        let flushed = self.backend.flush();
        let ok = flushed
            .as_ref()
            .map(|_| ())
            .map_err(|e| io::Error::other(e.to_string()));
        callback.log_io_completed(ok);
        flushed.map_err(write_err)
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.backend
            .log_truncate_from(log_id.index)
            .map_err(write_err)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.put_meta(LAST_PURGED, &log_id)?;
        self.backend
            .log_purge_upto(log_id.index)
            .map_err(write_err)?;
        self.backend.flush().map_err(write_err)
    }
}

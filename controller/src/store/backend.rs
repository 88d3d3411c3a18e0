//! The key-value seam under the controller's Raft storage. Two keyspaces: the log
//! (`u64` index → serialized entry) and meta (small named values: vote, committed,
//! last purged, snapshot, cluster id). `flush` makes every earlier write durable; writes
//! not flushed may be lost on power failure.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex};

pub trait Backend: Send + Sync + 'static {
    fn meta_get(&self, key: &str) -> io::Result<Option<Vec<u8>>>;
    fn meta_put(&self, key: &str, value: Vec<u8>) -> io::Result<()>;
    fn meta_delete(&self, key: &str) -> io::Result<()>;
    /// Entries with `from <= index < to`, ascending.
    fn log_range(&self, from: u64, to: u64) -> io::Result<Vec<(u64, Vec<u8>)>>;
    fn log_last(&self) -> io::Result<Option<(u64, Vec<u8>)>>;
    fn log_insert(&self, entries: Vec<(u64, Vec<u8>)>) -> io::Result<()>;
    /// Removes every entry with `index >= from`.
    fn log_truncate_from(&self, from: u64) -> io::Result<()>;
    /// Removes every entry with `index <= upto`.
    fn log_purge_upto(&self, upto: u64) -> io::Result<()>;
    fn flush(&self) -> io::Result<()>;
}

#[cfg(not(madsim))]
pub use sled_backend::SledBackend;

#[cfg(not(madsim))]
mod sled_backend {
    use super::*;

    /// sled: two trees, flushed (fsync) on `flush`.
    pub struct SledBackend {
        db: sled::Db,
        log: sled::Tree,
        meta: sled::Tree,
    }

    fn err(e: sled::Error) -> io::Error {
        io::Error::other(e)
    }

    impl SledBackend {
        pub fn open(dir: &std::path::Path) -> io::Result<SledBackend> {
            let db = sled::Config::new()
                .path(dir)
                .flush_every_ms(Some(500))
                // The metadata log is small; sled's default 1 GiB page cache is not needed.
                .cache_capacity(16 << 20)
                .open()
                .map_err(err)?;
            let log = db.open_tree("raft_log").map_err(err)?;
            let meta = db.open_tree("raft_meta").map_err(err)?;
            Ok(SledBackend { db, log, meta })
        }
    }

    impl Backend for SledBackend {
        fn meta_get(&self, key: &str) -> io::Result<Option<Vec<u8>>> {
            Ok(self.meta.get(key).map_err(err)?.map(|v| v.to_vec()))
        }
        fn meta_put(&self, key: &str, value: Vec<u8>) -> io::Result<()> {
            self.meta.insert(key, value).map_err(err)?;
            Ok(())
        }
        fn meta_delete(&self, key: &str) -> io::Result<()> {
            self.meta.remove(key).map_err(err)?;
            Ok(())
        }
        fn log_range(&self, from: u64, to: u64) -> io::Result<Vec<(u64, Vec<u8>)>> {
            if from >= to {
                return Ok(Vec::new());
            }
            self.log
                .range(from.to_be_bytes()..to.to_be_bytes())
                .map(|r| {
                    let (k, v) = r.map_err(err)?;
                    Ok((key_index(&k), v.to_vec()))
                })
                .collect()
        }
        fn log_last(&self) -> io::Result<Option<(u64, Vec<u8>)>> {
            Ok(self
                .log
                .last()
                .map_err(err)?
                .map(|(k, v)| (key_index(&k), v.to_vec())))
        }
        fn log_insert(&self, entries: Vec<(u64, Vec<u8>)>) -> io::Result<()> {
            let mut batch = sled::Batch::default();
            for (i, v) in entries {
                batch.insert(&i.to_be_bytes(), v);
            }
            self.log.apply_batch(batch).map_err(err)
        }
        fn log_truncate_from(&self, from: u64) -> io::Result<()> {
            let mut batch = sled::Batch::default();
            for r in self.log.range(from.to_be_bytes()..) {
                batch.remove(r.map_err(err)?.0);
            }
            self.log.apply_batch(batch).map_err(err)
        }
        fn log_purge_upto(&self, upto: u64) -> io::Result<()> {
            let mut batch = sled::Batch::default();
            for r in self.log.range(..=upto.to_be_bytes()) {
                batch.remove(r.map_err(err)?.0);
            }
            self.log.apply_batch(batch).map_err(err)
        }
        fn flush(&self) -> io::Result<()> {
            self.db.flush().map_err(err)?;
            Ok(())
        }
    }

    fn key_index(k: &[u8]) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&k[..8]);
        u64::from_be_bytes(b)
    }
}

#[derive(Clone, Default)]
struct SimState {
    log: BTreeMap<u64, Vec<u8>>,
    meta: BTreeMap<String, Vec<u8>>,
}

enum Op {
    MetaPut(String, Vec<u8>),
    MetaDelete(String),
    LogInsert(Vec<(u64, Vec<u8>)>),
    LogTruncateFrom(u64),
    LogPurgeUpto(u64),
}

impl SimState {
    fn apply(&mut self, op: &Op) {
        match op {
            Op::MetaPut(k, v) => {
                self.meta.insert(k.clone(), v.clone());
            }
            Op::MetaDelete(k) => {
                self.meta.remove(k);
            }
            Op::LogInsert(es) => {
                for (i, v) in es {
                    self.log.insert(*i, v.clone());
                }
            }
            Op::LogTruncateFrom(from) => {
                self.log.split_off(from);
            }
            Op::LogPurgeUpto(upto) => {
                self.log = self.log.split_off(&(upto + 1));
            }
        }
    }
}

#[derive(Default)]
struct SimInner {
    current: SimState,
    durable: SimState,
    pending: Vec<Op>,
}

/// Memory standing in for a disk: cloned handles share it, so a simulated node restarted
/// with the same handle finds its state. `power_fail` drops what was not flushed.
#[derive(Clone, Default)]
pub struct SimBackend {
    inner: Arc<Mutex<SimInner>>,
}

impl SimBackend {
    pub fn new() -> SimBackend {
        SimBackend::default()
    }

    /// Loses every write since the last flush, as a power failure would.
    pub fn power_fail(&self) {
        self.power_fail_keeping(0);
    }

    /// A power failure as sled's ordered log may leave it: of the writes since the last
    /// flush, a prefix drawn from `seed` survives (each batch whole).
    pub fn power_fail_seeded(&self, seed: u64) {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let n = self.inner.lock().expect("sim backend lock").pending.len();
        self.power_fail_keeping((z % (n as u64 + 1)) as usize);
    }

    fn power_fail_keeping(&self, survive: usize) {
        let mut g = self.inner.lock().expect("sim backend lock");
        let pending = std::mem::take(&mut g.pending);
        let mut state = g.durable.clone();
        for op in pending.iter().take(survive) {
            state.apply(op);
        }
        g.durable = state.clone();
        g.current = state;
    }

    fn write(&self, op: Op) {
        let mut g = self.inner.lock().expect("sim backend lock");
        g.current.apply(&op);
        g.pending.push(op);
    }
}

impl Backend for SimBackend {
    fn meta_get(&self, key: &str) -> io::Result<Option<Vec<u8>>> {
        Ok(self
            .inner
            .lock()
            .expect("lock")
            .current
            .meta
            .get(key)
            .cloned())
    }
    fn meta_put(&self, key: &str, value: Vec<u8>) -> io::Result<()> {
        self.write(Op::MetaPut(key.to_string(), value));
        Ok(())
    }
    fn meta_delete(&self, key: &str) -> io::Result<()> {
        self.write(Op::MetaDelete(key.to_string()));
        Ok(())
    }
    fn log_range(&self, from: u64, to: u64) -> io::Result<Vec<(u64, Vec<u8>)>> {
        if from >= to {
            return Ok(Vec::new());
        }
        let g = self.inner.lock().expect("lock");
        Ok(g.current
            .log
            .range(from..to)
            .map(|(k, v)| (*k, v.clone()))
            .collect())
    }
    fn log_last(&self) -> io::Result<Option<(u64, Vec<u8>)>> {
        let g = self.inner.lock().expect("lock");
        Ok(g.current.log.last_key_value().map(|(k, v)| (*k, v.clone())))
    }
    fn log_insert(&self, entries: Vec<(u64, Vec<u8>)>) -> io::Result<()> {
        self.write(Op::LogInsert(entries));
        Ok(())
    }
    fn log_truncate_from(&self, from: u64) -> io::Result<()> {
        self.write(Op::LogTruncateFrom(from));
        Ok(())
    }
    fn log_purge_upto(&self, upto: u64) -> io::Result<()> {
        self.write(Op::LogPurgeUpto(upto));
        Ok(())
    }
    fn flush(&self) -> io::Result<()> {
        let mut g = self.inner.lock().expect("lock");
        let ops = std::mem::take(&mut g.pending);
        for op in &ops {
            g.durable.apply(op);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sim_backend_power_failure_keeps_only_flushed_writes() {
        let b = SimBackend::new();
        b.log_insert(vec![(1, b"a".to_vec()), (2, b"b".to_vec())])
            .unwrap();
        b.meta_put("vote", b"v1".to_vec()).unwrap();
        b.flush().unwrap();
        b.log_insert(vec![(3, b"c".to_vec())]).unwrap();
        b.log_truncate_from(2).unwrap();
        b.meta_put("vote", b"v2".to_vec()).unwrap();
        assert_eq!(b.log_range(0, 10).unwrap().len(), 1);
        b.power_fail();
        assert_eq!(
            b.log_range(0, 10)
                .unwrap()
                .iter()
                .map(|e| e.0)
                .collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(b.meta_get("vote").unwrap().unwrap(), b"v1".to_vec());
        b.log_purge_upto(1).unwrap();
        b.flush().unwrap();
        b.power_fail();
        assert_eq!(
            b.log_range(0, 10)
                .unwrap()
                .iter()
                .map(|e| e.0)
                .collect::<Vec<_>>(),
            vec![2]
        );
    }

    #[test]
    fn a_seeded_power_failure_keeps_a_prefix_of_the_unflushed_writes() {
        let mut kept = std::collections::BTreeSet::new();
        for seed in 0..64 {
            let b = SimBackend::new();
            b.log_insert(vec![(1, b"a".to_vec())]).unwrap();
            b.flush().unwrap();
            b.log_insert(vec![(2, b"b".to_vec())]).unwrap();
            b.meta_put("vote", b"v2".to_vec()).unwrap();
            b.log_insert(vec![(3, b"c".to_vec())]).unwrap();
            b.power_fail_seeded(seed);
            let log: Vec<u64> = b.log_range(0, 10).unwrap().iter().map(|e| e.0).collect();
            let vote = b.meta_get("vote").unwrap();
            // In order: 2, then the vote, then 3.
            let state = match (log.as_slice(), vote.is_some()) {
                ([1], false) => 0,
                ([1, 2], false) => 1,
                ([1, 2], true) => 2,
                ([1, 2, 3], true) => 3,
                other => panic!("not a prefix: {other:?}"),
            };
            kept.insert(state);
        }
        assert_eq!(kept.len(), 4);
    }
}

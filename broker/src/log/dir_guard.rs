//! A log directory goes offline at its first I/O error, as in Kafka (`LogDirFailureChannel`):
//! after a failed write, sync or directory change nobody knows what the disk holds, so
//! nothing more is read from or written to it. Every later call fails (the partitions
//! answer KAFKA_STORAGE_ERROR) and the owner is told once, through `failure`. With a
//! single log directory Kafka then halts the broker, so that its leaderships move to
//! the other replicas; the node does the same (`Node::log_dir_failure`).
//!
//! `NotFound` is not a failure: opening a file that is not there is how the log asks.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use strom_common::watch;

use super::storage::{Storage, StorageFile};

struct State {
    inner: Arc<dyn Storage>,
    dir: PathBuf,
    failed: watch::Sender<Option<String>>,
    /// The first error, set once.
    first: Mutex<Option<String>>,
}

impl State {
    fn check(&self) -> io::Result<()> {
        match &*self.failed.borrow() {
            None => Ok(()),
            Some(why) => Err(io::Error::other(format!(
                "log directory {} is offline ({why})",
                self.dir.display()
            ))),
        }
    }

    fn observe<T>(&self, what: &str, path: &Path, r: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &r {
            if e.kind() != io::ErrorKind::NotFound {
                let why = format!("{what} {}: {e}", path.display());
                let first = {
                    let mut f = self.first.lock();
                    f.is_none() && f.replace(why.clone()).is_none()
                };
                if first {
                    self.failed.send_replace(Some(why.clone()));
                    tracing::error!(dir = %self.dir.display(), error = %why, "log directory failed; it is offline from now on");
                }
            }
        }
        r
    }
}

/// `Storage` for one log directory that takes the directory offline at the first error.
#[derive(Clone)]
pub struct LogDirGuard {
    state: Arc<State>,
}

impl LogDirGuard {
    pub fn new(inner: Arc<dyn Storage>, dir: &Path) -> LogDirGuard {
        LogDirGuard {
            state: Arc::new(State {
                inner,
                dir: dir.to_path_buf(),
                failed: watch::channel(None).0,
                first: Mutex::new(None),
            }),
        }
    }

    /// `None` while the directory works; the first error once it failed.
    pub fn failure(&self) -> watch::Receiver<Option<String>> {
        self.state.failed.subscribe()
    }
}

struct GuardedFile {
    inner: Arc<dyn StorageFile>,
    path: PathBuf,
    state: Arc<State>,
}

#[async_trait]
impl StorageFile for GuardedFile {
    async fn append(&self, parts: &[&[u8]]) -> io::Result<u64> {
        self.state.check()?;
        let r = self.inner.append(parts).await;
        self.state.observe("append to", &self.path, r)
    }
    async fn read_at(&self, pos: u64, len: usize) -> io::Result<Bytes> {
        self.state.check()?;
        let r = self.inner.read_at(pos, len).await;
        self.state.observe("read of", &self.path, r)
    }
    async fn sync(&self) -> io::Result<()> {
        self.state.check()?;
        let r = self.inner.sync().await;
        self.state.observe("fsync of", &self.path, r)
    }
    async fn truncate(&self, len: u64) -> io::Result<()> {
        self.state.check()?;
        let r = self.inner.truncate(len).await;
        self.state.observe("truncation of", &self.path, r)
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
}

#[async_trait]
impl Storage for LogDirGuard {
    async fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        let s = &self.state;
        s.check()?;
        let r = s.inner.open(path, create).await;
        let inner = s.observe("open of", path, r)?;
        Ok(Arc::new(GuardedFile {
            inner,
            path: path.to_path_buf(),
            state: s.clone(),
        }))
    }
    async fn read_file(&self, path: &Path) -> io::Result<Option<Bytes>> {
        self.state.check()?;
        let r = self.state.inner.read_file(path).await;
        self.state.observe("read of", path, r)
    }
    async fn write_file_atomic(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.state.check()?;
        let r = self.state.inner.write_file_atomic(path, data).await;
        self.state.observe("write of", path, r)
    }
    async fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.state.check()?;
        let r = self.state.inner.list_dir(dir).await;
        self.state.observe("listing of", dir, r)
    }
    async fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.state.check()?;
        let r = self.state.inner.create_dir_all(dir).await;
        self.state.observe("creation of", dir, r)
    }
    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.state.check()?;
        let r = self.state.inner.rename(from, to).await;
        self.state.observe("rename of", from, r)
    }
    async fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.state.check()?;
        let r = self.state.inner.remove_file(path).await;
        self.state.observe("removal of", path, r)
    }
    async fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.state.check()?;
        let r = self.state.inner.remove_dir_all(dir).await;
        self.state.observe("removal of", dir, r)
    }
    async fn exists(&self, path: &Path) -> bool {
        self.state.check().is_ok() && self.state.inner.exists(path).await
    }
    fn disk_space(&self, dir: &Path) -> Option<(u64, u64)> {
        self.state.inner.disk_space(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::super::storage::{DiskFault, SimStorage};
    use super::*;

    #[tokio::test]
    async fn the_first_error_takes_the_directory_offline_and_not_found_does_not() {
        let sim = SimStorage::new();
        let g = LogDirGuard::new(Arc::new(sim.clone()), Path::new("/d"));
        let mut failure = g.failure();
        g.create_dir_all(Path::new("/d")).await.unwrap();
        assert!(g.open(Path::new("/d/missing"), false).await.is_err());
        assert!(
            failure.borrow().is_none(),
            "NotFound is an answer, not a failure"
        );
        let f = g.open(Path::new("/d/x"), true).await.unwrap();
        f.append(&[b"ok"]).await.unwrap();
        sim.inject(Some(DiskFault::Enospc));
        assert!(f.append(&[b"more"]).await.is_err());
        failure.changed().await.unwrap();
        let why = failure.borrow().clone().unwrap();
        assert!(why.contains("/d/x"), "{why}");
        // The disk works again, the directory stays offline: nothing trusts it now.
        sim.inject(None);
        assert!(f.read_at(0, 10).await.is_err());
        assert!(g.read_file(Path::new("/d/x")).await.is_err());
        assert!(g.open(Path::new("/d/y"), true).await.is_err());
        assert!(!g.exists(Path::new("/d/x")).await);
    }
}

//! The storage seam: every byte the partition log reads or writes goes through `Storage`
//! and `StorageFile`. Two implementations: `FsStorage` (the real file system) and
//! `SimStorage` (memory, kept per node across simulated restarts, losing bytes that were
//! never synced on a simulated power failure).
//!
//! Rules every implementation keeps:
//! - `append` writes at the end and returns the position it wrote at; one writer per file.
//! - `read_at` returns fewer bytes than asked only at the end of the file; never panics.
//! - data is durable only after `sync`; directory changes (create, rename, remove) are
//!   durable when they return (the real implementation syncs the directory).
//! - a failed `append` leaves the file as it was (a short write is cut back); any other
//!   failed call may leave its change half done, and the caller stops using the
//!   directory (Kafka takes such a log directory offline).
//! - no mmap: truncation during recovery or retention must not turn into SIGBUS.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;

/// An open file of the partition log.
#[async_trait]
pub trait StorageFile: Send + Sync + 'static {
    /// Appends the concatenation of `parts`; returns the position of its first byte.
    async fn append(&self, parts: &[&[u8]]) -> io::Result<u64>;
    /// Up to `len` bytes from `pos` (fewer at the end of the file).
    async fn read_at(&self, pos: u64, len: usize) -> io::Result<Bytes>;
    /// Makes everything written so far durable.
    async fn sync(&self) -> io::Result<()>;
    /// Cuts the file to `len` bytes.
    async fn truncate(&self, len: u64) -> io::Result<()>;
    /// The current length.
    fn len(&self) -> u64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Directory operations and file opening.
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// Opens `path`, creating it (empty) when `create` is set and it does not exist.
    async fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn StorageFile>>;
    /// The whole content of a small file, or `None` if it does not exist.
    async fn read_file(&self, path: &Path) -> io::Result<Option<Bytes>>;
    /// Replaces a small file atomically and durably (write, sync, rename).
    async fn write_file_atomic(&self, path: &Path, data: &[u8]) -> io::Result<()>;
    /// Names of the entries of a directory (empty if it does not exist).
    async fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>>;
    async fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    async fn remove_file(&self, path: &Path) -> io::Result<()>;
    async fn remove_dir_all(&self, dir: &Path) -> io::Result<()>;
    async fn exists(&self, path: &Path) -> bool;
    /// (total, usable) bytes of the file system holding `dir`, when known.
    fn disk_space(&self, _dir: &Path) -> Option<(u64, u64)> {
        None
    }
}

#[cfg(not(madsim))]
pub use fs::FsStorage;

#[cfg(not(madsim))]
mod fs {
    use std::fs::{File, OpenOptions};
    use std::io::{IoSlice, Write};
    use std::os::unix::fs::FileExt;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    /// The real file system. Appends and reads are positional syscalls on the calling
    /// task (they hit the page cache); `sync` is an fsync.
    #[derive(Clone, Default)]
    pub struct FsStorage;

    struct FsFile {
        file: File,
        len: AtomicU64,
        path: PathBuf,
    }

    #[async_trait]
    impl StorageFile for FsFile {
        async fn append(&self, parts: &[&[u8]]) -> io::Result<u64> {
            let pos = self.len.load(Ordering::Acquire);
            let total: usize = parts.iter().map(|p| p.len()).sum();
            let mut slices: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
            let mut bufs = &mut slices[..];
            let mut f = &self.file;
            while !bufs.is_empty() {
                let n = match f.write_vectored(bufs) {
                    Ok(0) => Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "append wrote nothing",
                    )),
                    Ok(n) => Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => Err(e),
                };
                match n {
                    Ok(n) => IoSlice::advance_slices(&mut bufs, n),
                    Err(e) => {
                        // A short write (ENOSPC part-way) left bytes past `pos`: cut them
                        // so that the file and its recorded length agree. If even that
                        // fails the caller takes the directory offline.
                        let _ = self.file.set_len(pos);
                        return Err(e);
                    }
                }
            }
            self.len.store(pos + total as u64, Ordering::Release);
            Ok(pos)
        }

        async fn read_at(&self, pos: u64, len: usize) -> io::Result<Bytes> {
            let end = self.len.load(Ordering::Acquire);
            if pos >= end {
                return Ok(Bytes::new());
            }
            let n = len.min((end - pos) as usize);
            let mut buf = vec![0u8; n];
            let mut done = 0;
            while done < n {
                let r = self.file.read_at(&mut buf[done..], pos + done as u64)?;
                if r == 0 {
                    break;
                }
                done += r;
            }
            buf.truncate(done);
            Ok(Bytes::from(buf))
        }

        async fn sync(&self) -> io::Result<()> {
            self.file.sync_data()
        }

        async fn truncate(&self, len: u64) -> io::Result<()> {
            self.file.set_len(len)?;
            self.len.store(len, Ordering::Release);
            Ok(())
        }

        fn len(&self) -> u64 {
            self.len.load(Ordering::Acquire)
        }
    }

    impl Drop for FsFile {
        fn drop(&mut self) {
            tracing::trace!(path = %self.path.display(), "closing");
        }
    }

    fn sync_dir(dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    #[async_trait]
    impl Storage for FsStorage {
        fn disk_space(&self, dir: &Path) -> Option<(u64, u64)> {
            use std::os::unix::ffi::OsStrExt;
            let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
            let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
            // SAFETY: a valid NUL-terminated path and a zeroed statvfs to fill in.
            if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
                return None;
            }
            let frag = st.f_frsize as u64;
            Some((st.f_blocks as u64 * frag, st.f_bavail as u64 * frag))
        }

        async fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn StorageFile>> {
            let existed = path.exists();
            let file = OpenOptions::new()
                .read(true)
                .append(true)
                .create(create)
                .open(path)?;
            if !existed {
                if let Some(parent) = path.parent() {
                    sync_dir(parent)?;
                }
            }
            let len = file.metadata()?.len();
            Ok(Arc::new(FsFile {
                file,
                len: AtomicU64::new(len),
                path: path.to_path_buf(),
            }))
        }

        async fn read_file(&self, path: &Path) -> io::Result<Option<Bytes>> {
            match std::fs::read(path) {
                Ok(v) => Ok(Some(Bytes::from(v))),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            }
        }

        async fn write_file_atomic(&self, path: &Path, data: &[u8]) -> io::Result<()> {
            let tmp = path.with_extension("tmp");
            {
                let mut f = File::create(&tmp)?;
                f.write_all(data)?;
                f.sync_all()?;
            }
            std::fs::rename(&tmp, path)?;
            if let Some(parent) = path.parent() {
                sync_dir(parent)?;
            }
            Ok(())
        }

        async fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
            let rd = match std::fs::read_dir(dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(e),
            };
            let mut out = Vec::new();
            for e in rd {
                out.push(e?.file_name().to_string_lossy().into_owned());
            }
            out.sort();
            Ok(out)
        }

        async fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
            std::fs::create_dir_all(dir)?;
            if let Some(parent) = dir.parent() {
                sync_dir(parent)?;
            }
            Ok(())
        }

        async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
            std::fs::rename(from, to)?;
            if let Some(parent) = to.parent() {
                sync_dir(parent)?;
            }
            Ok(())
        }

        async fn remove_file(&self, path: &Path) -> io::Result<()> {
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            }
            // Until the directory is synced a crash may bring the file back (the
            // clean-shutdown marker, a deleted segment).
            if let Some(parent) = path.parent() {
                sync_dir(parent)?;
            }
            Ok(())
        }

        async fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
            match std::fs::remove_dir_all(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            }
            if let Some(parent) = dir.parent() {
                sync_dir(parent)?;
            }
            Ok(())
        }

        async fn exists(&self, path: &Path) -> bool {
            path.exists()
        }
    }
}

/// Faults a test injects into a simulated disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskFault {
    /// Every write, sync and directory change fails with EIO.
    Eio,
    /// Appends write part of their bytes and then fail with ENOSPC, as a `write` that
    /// runs out of space does; syncs and directory changes fail with ENOSPC.
    Enospc,
}

/// What a simulated power failure leaves of the state that was not yet synced.
#[derive(Clone, Copy, Debug)]
pub enum PowerLoss {
    /// Exactly what was synced: every later byte and directory change is lost.
    SyncedOnly,
    /// What a real disk may leave, drawn from the seed: each file keeps its synced bytes
    /// plus a random prefix of its later writes (cut anywhere, so the last write may be
    /// torn), sometimes followed by zeros up to the length it had (the size reached the
    /// disk, the data did not); of the directory changes not yet synced a random prefix
    /// survives (a journal commits them in order).
    Random(u64),
}

/// SplitMix64: a few random numbers from a seed, without a dependency.
struct SeededRng(u64);

impl SeededRng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..=max`.
    fn upto(&mut self, max: usize) -> usize {
        (self.next() % (max as u64 + 1)) as usize
    }
}

#[derive(Default)]
struct Faults {
    fault: Option<DiskFault>,
    sync_delay: std::time::Duration,
}

fn fault_error(f: DiskFault) -> io::Error {
    match f {
        DiskFault::Eio => io::Error::from_raw_os_error(5),
        DiskFault::Enospc => io::Error::from_raw_os_error(28),
    }
}

#[derive(Default)]
struct SimFileData {
    current: Vec<u8>,
    durable: Vec<u8>,
    /// The lowest byte changed since the last sync.
    dirty_from: usize,
}

struct SimFile {
    data: Mutex<SimFileData>,
    faults: Arc<Mutex<Faults>>,
}

impl SimFile {
    fn new(faults: Arc<Mutex<Faults>>, synced: Vec<u8>) -> Arc<SimFile> {
        Arc::new(SimFile {
            data: Mutex::new(SimFileData {
                dirty_from: synced.len(),
                current: synced.clone(),
                durable: synced,
            }),
            faults,
        })
    }

    fn fault(&self) -> Option<DiskFault> {
        self.faults.lock().fault
    }
}

/// Every simulated storage call is a point where the simulation may switch tasks, so a
/// crash can land between two steps of a multi-step change (a segment roll, a
/// compaction swap, a checkpoint write).
async fn storage_yield() {
    tokio::task::yield_now().await;
}

#[async_trait]
impl StorageFile for SimFile {
    async fn append(&self, parts: &[&[u8]]) -> io::Result<u64> {
        storage_yield().await;
        let fault = self.fault();
        let mut d = self.data.lock();
        let pos = d.current.len() as u64;
        match fault {
            Some(DiskFault::Eio) => return Err(fault_error(DiskFault::Eio)),
            Some(DiskFault::Enospc) => {
                // A short write, then no space: half of the bytes land.
                let all: Vec<u8> = parts.concat();
                d.current.extend_from_slice(&all[..all.len() / 2]);
                return Err(fault_error(DiskFault::Enospc));
            }
            None => {}
        }
        for p in parts {
            d.current.extend_from_slice(p);
        }
        Ok(pos)
    }

    async fn read_at(&self, pos: u64, len: usize) -> io::Result<Bytes> {
        storage_yield().await;
        let d = self.data.lock();
        let start = (pos as usize).min(d.current.len());
        let end = start.saturating_add(len).min(d.current.len());
        Ok(Bytes::copy_from_slice(&d.current[start..end]))
    }

    async fn sync(&self) -> io::Result<()> {
        let delay = self.faults.lock().sync_delay;
        if delay.is_zero() {
            storage_yield().await;
        } else {
            tokio::time::sleep(delay).await;
        }
        if let Some(f) = self.fault() {
            return Err(fault_error(f));
        }
        let mut d = self.data.lock();
        let from = d.dirty_from.min(d.durable.len());
        d.durable.truncate(from);
        let tail = d.current[from.min(d.current.len())..].to_vec();
        d.durable.extend_from_slice(&tail);
        d.dirty_from = d.current.len();
        Ok(())
    }

    async fn truncate(&self, len: u64) -> io::Result<()> {
        storage_yield().await;
        if let Some(f) = self.fault() {
            return Err(fault_error(f));
        }
        let mut d = self.data.lock();
        let len = len as usize;
        if len < d.current.len() {
            d.current.truncate(len);
        } else {
            d.current.resize(len, 0);
        }
        d.dirty_from = d.dirty_from.min(len);
        Ok(())
    }

    fn len(&self) -> u64 {
        self.data.lock().current.len() as u64
    }
}

impl SimFile {
    fn power_fail(&self, rng: Option<&mut SeededRng>) {
        let mut d = self.data.lock();
        let from = d.dirty_from.min(d.durable.len()).min(d.current.len());
        let after = match rng {
            None => d.durable.clone(),
            Some(rng) => match rng.upto(2) {
                0 => d.durable.clone(),
                mode => {
                    let keep = from + rng.upto(d.current.len() - from);
                    let mut v = d.current[..keep].to_vec();
                    if mode == 2 {
                        let had = d.current.len().max(d.durable.len());
                        v.resize(keep + rng.upto(had - keep), 0);
                    }
                    v
                }
            },
        };
        d.current = after.clone();
        d.durable = after;
        d.dirty_from = d.current.len();
    }
}

/// Names of files and directories.
#[derive(Clone, Default)]
struct Namespace {
    files: BTreeMap<PathBuf, Arc<SimFile>>,
    dirs: BTreeSet<PathBuf>,
}

/// A directory change; durable only once a directory sync commits it.
enum DirOp {
    Create(PathBuf, Arc<SimFile>),
    Mkdir(PathBuf),
    Rename(PathBuf, PathBuf),
    Remove(PathBuf),
    RemoveAll(PathBuf),
}

impl Namespace {
    fn apply(&mut self, op: &DirOp) {
        match op {
            DirOp::Create(p, f) => {
                self.files.insert(p.clone(), f.clone());
            }
            DirOp::Mkdir(p) => {
                self.dirs.insert(p.clone());
            }
            DirOp::Rename(from, to) => {
                if let Some(f) = self.files.remove(from) {
                    self.files.insert(to.clone(), f);
                    return;
                }
                let dirs: Vec<PathBuf> = self
                    .dirs
                    .iter()
                    .filter(|d| d.starts_with(from))
                    .cloned()
                    .collect();
                for d in dirs {
                    self.dirs.remove(&d);
                    self.dirs
                        .insert(to.join(d.strip_prefix(from).expect("prefix")));
                }
                let files: Vec<PathBuf> = self
                    .files
                    .keys()
                    .filter(|p| p.starts_with(from))
                    .cloned()
                    .collect();
                for p in files {
                    let f = self.files.remove(&p).expect("listed");
                    self.files
                        .insert(to.join(p.strip_prefix(from).expect("prefix")), f);
                }
            }
            DirOp::Remove(p) => {
                self.files.remove(p);
            }
            DirOp::RemoveAll(dir) => {
                self.files.retain(|p, _| !p.starts_with(dir));
                self.dirs.retain(|p| !p.starts_with(dir));
            }
        }
    }

    fn has_dir(&self, dir: &Path) -> bool {
        dir.as_os_str().is_empty() || self.dirs.contains(dir)
    }
}

#[derive(Default)]
struct SimFs {
    current: Namespace,
    durable: Namespace,
    /// Applied to `current`, not yet to `durable`, in order.
    pending: Vec<DirOp>,
}

impl SimFs {
    fn change(&mut self, op: DirOp) {
        self.current.apply(&op);
        self.pending.push(op);
    }

    /// A directory fsync. As with ext4's journal, it commits every earlier change.
    fn commit(&mut self) {
        for op in self.pending.drain(..) {
            self.durable.apply(&op);
        }
    }
}

/// A node's simulated disk. Clones share it, so a node restarted with the same handle
/// finds its files. It keeps the rules of the real one and no more: file bytes are
/// durable after `sync`, a directory change only once the call that made it returns
/// (`FsStorage` fsyncs the directory there), and every call may be where a crash lands.
/// `power_fail_with` drops what was not durable, as kindly or as unkindly as asked;
/// `inject` makes calls fail with EIO or ENOSPC and `slow_sync` makes fsync slow.
#[derive(Clone, Default)]
pub struct SimStorage {
    fs: Arc<Mutex<SimFs>>,
    faults: Arc<Mutex<Faults>>,
}

impl SimStorage {
    pub fn new() -> SimStorage {
        SimStorage::default()
    }

    /// Every file loses what was written since its last `sync`.
    pub fn power_fail(&self) {
        self.power_fail_with(PowerLoss::SyncedOnly);
    }

    /// A power failure: what was not durable is lost as `loss` says.
    pub fn power_fail_with(&self, loss: PowerLoss) {
        let mut rng = match loss {
            PowerLoss::SyncedOnly => None,
            PowerLoss::Random(seed) => Some(SeededRng(seed)),
        };
        let mut fs = self.fs.lock();
        let survive = match rng.as_mut() {
            None => 0,
            Some(r) => r.upto(fs.pending.len()),
        };
        let pending = std::mem::take(&mut fs.pending);
        let mut ns = fs.durable.clone();
        for op in &pending[..survive] {
            ns.apply(op);
        }
        for f in ns.files.values() {
            f.power_fail(rng.as_mut());
        }
        fs.current = ns.clone();
        fs.durable = ns;
    }

    /// From now on, calls fail as `fault` says (`None`: the disk works again).
    pub fn inject(&self, fault: Option<DiskFault>) {
        self.faults.lock().fault = fault;
    }

    /// Every `sync` takes `delay` (zero: none).
    pub fn slow_sync(&self, delay: std::time::Duration) {
        self.faults.lock().sync_delay = delay;
    }

    fn check(&self) -> io::Result<()> {
        match self.faults.lock().fault {
            Some(f) => Err(fault_error(f)),
            None => Ok(()),
        }
    }

    /// A directory change, then (after a point where a crash may land) its directory
    /// sync, as `FsStorage` does it.
    async fn change_then_sync(&self, ops: Vec<DirOp>) {
        {
            let mut fs = self.fs.lock();
            for op in ops {
                fs.change(op);
            }
        }
        storage_yield().await;
        self.fs.lock().commit();
    }
}

#[async_trait]
impl Storage for SimStorage {
    async fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        storage_yield().await;
        let f = {
            let fs = self.fs.lock();
            if let Some(f) = fs.current.files.get(path) {
                return Ok(f.clone());
            }
            if !create {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{} not found", path.display()),
                ));
            }
            let parent = path.parent().unwrap_or(Path::new(""));
            if !fs.current.has_dir(parent) {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no directory {}", parent.display()),
                ));
            }
            SimFile::new(self.faults.clone(), Vec::new())
        };
        self.check()?;
        self.change_then_sync(vec![DirOp::Create(path.to_path_buf(), f.clone())])
            .await;
        Ok(f)
    }

    async fn read_file(&self, path: &Path) -> io::Result<Option<Bytes>> {
        storage_yield().await;
        let fs = self.fs.lock();
        Ok(fs
            .current
            .files
            .get(path)
            .map(|f| Bytes::copy_from_slice(&f.data.lock().current)))
    }

    async fn write_file_atomic(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        storage_yield().await;
        self.check()?;
        // Write and sync a temporary file, rename it over the target, sync the directory.
        let tmp = path.with_extension("tmp");
        let f = SimFile::new(self.faults.clone(), data.to_vec());
        self.fs.lock().change(DirOp::Create(tmp.clone(), f));
        storage_yield().await;
        self.change_then_sync(vec![DirOp::Rename(tmp, path.to_path_buf())])
            .await;
        Ok(())
    }

    async fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        storage_yield().await;
        let fs = self.fs.lock();
        let mut out = BTreeSet::new();
        // Paths order by component, so a directory's descendants follow it in one run.
        let below = |p: &&PathBuf| p.starts_with(dir);
        let files = fs.current.files.range(dir.to_path_buf()..).map(|(p, _)| p);
        let dirs = fs.current.dirs.range(dir.to_path_buf()..);
        for p in files.take_while(below).chain(dirs.take_while(below)) {
            if p.parent() == Some(dir) {
                if let Some(n) = p.file_name() {
                    out.insert(n.to_string_lossy().into_owned());
                }
            }
        }
        Ok(out.into_iter().collect())
    }

    async fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        storage_yield().await;
        let missing: Vec<DirOp> = {
            let fs = self.fs.lock();
            let mut out = Vec::new();
            let mut d = Some(dir);
            while let Some(p) = d {
                if p.as_os_str().is_empty() || fs.current.dirs.contains(p) {
                    break;
                }
                out.push(DirOp::Mkdir(p.to_path_buf()));
                d = p.parent();
            }
            out.reverse();
            out
        };
        if missing.is_empty() {
            return Ok(());
        }
        self.check()?;
        self.change_then_sync(missing).await;
        Ok(())
    }

    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        storage_yield().await;
        self.check()?;
        {
            let fs = self.fs.lock();
            if !fs.current.files.contains_key(from) && !fs.current.dirs.contains(from) {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{} not found", from.display()),
                ));
            }
        }
        self.change_then_sync(vec![DirOp::Rename(from.to_path_buf(), to.to_path_buf())])
            .await;
        Ok(())
    }

    async fn remove_file(&self, path: &Path) -> io::Result<()> {
        storage_yield().await;
        if !self.fs.lock().current.files.contains_key(path) {
            return Ok(());
        }
        self.check()?;
        self.change_then_sync(vec![DirOp::Remove(path.to_path_buf())])
            .await;
        Ok(())
    }

    async fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        storage_yield().await;
        self.check()?;
        self.change_then_sync(vec![DirOp::RemoveAll(dir.to_path_buf())])
            .await;
        Ok(())
    }

    async fn exists(&self, path: &Path) -> bool {
        let fs = self.fs.lock();
        fs.current.files.contains_key(path) || fs.current.dirs.contains(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn suite(s: &dyn Storage, root: &Path) {
        let dir = root.join("t-0");
        s.create_dir_all(&dir).await.unwrap();
        let f = s.open(&dir.join("a.log"), true).await.unwrap();
        assert_eq!(f.append(&[b"hello", b" "]).await.unwrap(), 0);
        assert_eq!(f.append(&[b"world"]).await.unwrap(), 6);
        assert_eq!(f.len(), 11);
        assert_eq!(&f.read_at(6, 100).await.unwrap()[..], b"world");
        assert_eq!(f.read_at(20, 5).await.unwrap().len(), 0);
        f.truncate(5).await.unwrap();
        assert_eq!(&f.read_at(0, 100).await.unwrap()[..], b"hello");
        assert_eq!(f.append(&[b"!"]).await.unwrap(), 5);
        s.write_file_atomic(&dir.join("cp"), b"x").await.unwrap();
        assert_eq!(
            &s.read_file(&dir.join("cp")).await.unwrap().unwrap()[..],
            b"x"
        );
        assert!(s.read_file(&dir.join("none")).await.unwrap().is_none());
        assert_eq!(
            s.list_dir(&dir).await.unwrap(),
            vec!["a.log".to_string(), "cp".to_string()]
        );
        s.rename(&dir, &root.join("t-0.del")).await.unwrap();
        assert!(!s.exists(&dir).await);
        assert!(s.exists(&root.join("t-0.del").join("a.log")).await);
        s.remove_dir_all(&root.join("t-0.del")).await.unwrap();
        assert!(s.list_dir(root).await.unwrap().is_empty());
        assert!(s.open(&root.join("missing"), false).await.is_err());
    }

    #[tokio::test]
    async fn sim_storage_passes_the_suite() {
        suite(&SimStorage::new(), Path::new("/data")).await;
    }

    #[cfg(not(madsim))]
    #[tokio::test]
    async fn fs_storage_passes_the_suite() {
        let d = tempfile::tempdir().unwrap();
        suite(&FsStorage, d.path()).await;
    }

    #[tokio::test]
    async fn sim_power_failure_keeps_synced_bytes_only() {
        let s = SimStorage::new();
        s.create_dir_all(Path::new("/d")).await.unwrap();
        let f = s.open(Path::new("/d/x"), true).await.unwrap();
        f.append(&[b"synced"]).await.unwrap();
        f.sync().await.unwrap();
        f.append(&[b"-lost"]).await.unwrap();
        s.power_fail();
        assert_eq!(&f.read_at(0, 100).await.unwrap()[..], b"synced");
        // A truncation that was never synced is undone too.
        f.truncate(2).await.unwrap();
        s.power_fail();
        assert_eq!(&f.read_at(0, 100).await.unwrap()[..], b"synced");
        f.truncate(2).await.unwrap();
        f.append(&[b"NC"]).await.unwrap();
        f.sync().await.unwrap();
        s.power_fail();
        assert_eq!(&f.read_at(0, 100).await.unwrap()[..], b"syNC");
    }

    #[tokio::test]
    async fn random_power_loss_keeps_synced_bytes_and_a_prefix_of_the_rest() {
        let mut seen = BTreeSet::new();
        for seed in 0..300u64 {
            let s = SimStorage::new();
            s.create_dir_all(Path::new("/d")).await.unwrap();
            let f = s.open(Path::new("/d/x"), true).await.unwrap();
            f.append(&[b"abc"]).await.unwrap();
            f.sync().await.unwrap();
            f.append(&[b"defgh"]).await.unwrap();
            s.power_fail_with(PowerLoss::Random(seed));
            let got = f.read_at(0, 100).await.unwrap();
            assert!(got.starts_with(b"abc") && got.len() <= 8, "{got:?}");
            let written = got[3..].iter().take_while(|b| **b != 0).count();
            assert_eq!(&got[3..3 + written], &b"defgh"[..written]);
            assert!(got[3 + written..].iter().all(|b| *b == 0), "{got:?}");
            let zeros = got.len() - 3 - written;
            seen.insert(match (written, zeros) {
                (0, 0) => "lost",
                (5, 0) => "kept",
                (_, 0) => "torn",
                _ => "zero tail",
            });
            // What survived is durable now.
            s.power_fail();
            assert_eq!(f.read_at(0, 100).await.unwrap(), got);
        }
        assert_eq!(seen.len(), 4, "{seen:?}");
    }

    #[tokio::test]
    async fn directory_changes_are_durable_only_once_their_call_returns() {
        let s = SimStorage::new();
        let (a, b) = (Path::new("/d/a"), Path::new("/d/b"));
        s.create_dir_all(Path::new("/d")).await.unwrap();
        s.write_file_atomic(a, b"x").await.unwrap();
        s.power_fail();
        assert!(s.exists(a).await, "a returned change is durable");
        // A crash inside `rename`, after the change and before the directory sync.
        {
            let mut rename = std::pin::pin!(s.rename(a, b));
            assert!(futures::poll!(rename.as_mut()).is_pending());
            assert!(futures::poll!(rename.as_mut()).is_pending());
        }
        assert!(s.exists(b).await && !s.exists(a).await);
        s.power_fail();
        assert!(
            s.exists(a).await && !s.exists(b).await,
            "the rename was undone"
        );
        // A random power loss keeps a prefix of the unsynced changes, in order.
        let mut outcomes = BTreeSet::new();
        for seed in 0..64 {
            {
                let mut rename = std::pin::pin!(s.rename(a, b));
                let _ = futures::poll!(rename.as_mut());
                let _ = futures::poll!(rename.as_mut());
            }
            {
                let mut remove = std::pin::pin!(s.remove_file(b));
                let _ = futures::poll!(remove.as_mut());
                let _ = futures::poll!(remove.as_mut());
            }
            s.power_fail_with(PowerLoss::Random(seed));
            let state = (s.exists(a).await, s.exists(b).await);
            assert_ne!(state, (true, true), "a rename never leaves both names");
            outcomes.insert(state);
            if !s.exists(a).await {
                if s.exists(b).await {
                    s.rename(b, a).await.unwrap();
                } else {
                    s.write_file_atomic(a, b"x").await.unwrap();
                }
            }
        }
        // (a) nothing survived, (b) the rename did, (neither) both did.
        assert_eq!(
            outcomes,
            BTreeSet::from([(true, false), (false, true), (false, false)])
        );
    }

    #[tokio::test]
    async fn injected_faults_fail_calls_and_a_short_write_leaves_bytes() {
        let s = SimStorage::new();
        s.create_dir_all(Path::new("/d")).await.unwrap();
        let f = s.open(Path::new("/d/x"), true).await.unwrap();
        f.append(&[b"ok"]).await.unwrap();
        s.inject(Some(DiskFault::Eio));
        assert_eq!(
            f.append(&[b"zz"]).await.unwrap_err().raw_os_error(),
            Some(5)
        );
        assert!(f.sync().await.is_err());
        assert!(s
            .rename(Path::new("/d/x"), Path::new("/d/y"))
            .await
            .is_err());
        assert!(s.open(Path::new("/d/new"), true).await.is_err());
        assert_eq!(f.len(), 2);
        s.inject(Some(DiskFault::Enospc));
        let e = f.append(&[b"1234"]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        assert_eq!(
            &f.read_at(0, 100).await.unwrap()[..],
            b"ok12",
            "half landed"
        );
        s.inject(None);
        f.sync().await.unwrap();
    }
}

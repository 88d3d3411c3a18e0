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
                let n = f.write_vectored(bufs)?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "append wrote nothing",
                    ));
                }
                IoSlice::advance_slices(&mut bufs, n);
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
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e),
            }
        }

        async fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
            match std::fs::remove_dir_all(dir) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e),
            }
        }

        async fn exists(&self, path: &Path) -> bool {
            path.exists()
        }
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
}

#[async_trait]
impl StorageFile for SimFile {
    async fn append(&self, parts: &[&[u8]]) -> io::Result<u64> {
        let mut d = self.data.lock();
        let pos = d.current.len() as u64;
        for p in parts {
            d.current.extend_from_slice(p);
        }
        Ok(pos)
    }

    async fn read_at(&self, pos: u64, len: usize) -> io::Result<Bytes> {
        let d = self.data.lock();
        let start = (pos as usize).min(d.current.len());
        let end = start.saturating_add(len).min(d.current.len());
        Ok(Bytes::copy_from_slice(&d.current[start..end]))
    }

    async fn sync(&self) -> io::Result<()> {
        let mut d = self.data.lock();
        let from = d.dirty_from.min(d.durable.len());
        d.durable.truncate(from);
        let tail = d.current[from.min(d.current.len())..].to_vec();
        d.durable.extend_from_slice(&tail);
        d.dirty_from = d.current.len();
        Ok(())
    }

    async fn truncate(&self, len: u64) -> io::Result<()> {
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
    fn power_fail(&self) {
        let mut d = self.data.lock();
        d.current = d.durable.clone();
        d.dirty_from = d.current.len();
    }
}

#[derive(Default)]
struct SimFs {
    files: BTreeMap<PathBuf, Arc<SimFile>>,
    dirs: BTreeSet<PathBuf>,
}

/// A node's simulated disk. Clones share it, so a node restarted with the same handle
/// finds its files; `power_fail` drops every byte not yet synced.
#[derive(Clone, Default)]
pub struct SimStorage {
    fs: Arc<Mutex<SimFs>>,
}

impl SimStorage {
    pub fn new() -> SimStorage {
        SimStorage::default()
    }

    /// Every file loses what was written since its last `sync`.
    pub fn power_fail(&self) {
        let fs = self.fs.lock();
        for f in fs.files.values() {
            f.power_fail();
        }
    }

    fn add_dirs(fs: &mut SimFs, dir: &Path) {
        let mut d = Some(dir);
        while let Some(p) = d {
            if p.as_os_str().is_empty() {
                break;
            }
            fs.dirs.insert(p.to_path_buf());
            d = p.parent();
        }
    }
}

#[async_trait]
impl Storage for SimStorage {
    async fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        let mut fs = self.fs.lock();
        if let Some(f) = fs.files.get(path) {
            return Ok(f.clone());
        }
        if !create {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} not found", path.display()),
            ));
        }
        let parent = path.parent().unwrap_or(Path::new(""));
        if !parent.as_os_str().is_empty() && !fs.dirs.contains(parent) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no directory {}", parent.display()),
            ));
        }
        let f = Arc::new(SimFile {
            data: Mutex::new(SimFileData::default()),
        });
        fs.files.insert(path.to_path_buf(), f.clone());
        Ok(f)
    }

    async fn read_file(&self, path: &Path) -> io::Result<Option<Bytes>> {
        let fs = self.fs.lock();
        Ok(fs
            .files
            .get(path)
            .map(|f| Bytes::copy_from_slice(&f.data.lock().current)))
    }

    async fn write_file_atomic(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let mut fs = self.fs.lock();
        let f = SimFileData {
            current: data.to_vec(),
            durable: data.to_vec(),
            dirty_from: data.len(),
        };
        fs.files.insert(
            path.to_path_buf(),
            Arc::new(SimFile {
                data: Mutex::new(f),
            }),
        );
        Ok(())
    }

    async fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let fs = self.fs.lock();
        let mut out = BTreeSet::new();
        for p in fs.files.keys().chain(fs.dirs.iter()) {
            if p.parent() == Some(dir) {
                if let Some(n) = p.file_name() {
                    out.insert(n.to_string_lossy().into_owned());
                }
            }
        }
        Ok(out.into_iter().collect())
    }

    async fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut fs = self.fs.lock();
        SimStorage::add_dirs(&mut fs, dir);
        Ok(())
    }

    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut fs = self.fs.lock();
        if let Some(f) = fs.files.remove(from) {
            fs.files.insert(to.to_path_buf(), f);
            return Ok(());
        }
        if fs.dirs.contains(from) {
            let moved: Vec<PathBuf> = fs
                .dirs
                .iter()
                .filter(|d| d.starts_with(from))
                .cloned()
                .collect();
            for d in moved {
                fs.dirs.remove(&d);
                let rel = d.strip_prefix(from).expect("prefix");
                fs.dirs.insert(to.join(rel));
            }
            let files: Vec<PathBuf> = fs
                .files
                .keys()
                .filter(|p| p.starts_with(from))
                .cloned()
                .collect();
            for p in files {
                let f = fs.files.remove(&p).expect("listed");
                let rel = p.strip_prefix(from).expect("prefix");
                fs.files.insert(to.join(rel), f);
            }
            return Ok(());
        }
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} not found", from.display()),
        ))
    }

    async fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.fs.lock().files.remove(path);
        Ok(())
    }

    async fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut fs = self.fs.lock();
        fs.files.retain(|p, _| !p.starts_with(dir));
        fs.dirs.retain(|p| !p.starts_with(dir));
        Ok(())
    }

    async fn exists(&self, path: &Path) -> bool {
        let fs = self.fs.lock();
        fs.files.contains_key(path) || fs.dirs.contains(path)
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
}

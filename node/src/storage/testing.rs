//! File layers for tests of the write-ahead log: [`FaultyFs`], real files
//! with the faults of real disks (a failing `fdatasync`, a disk that fills
//! up after a given number of bytes), and [`PowerLossFs`], in-memory files
//! that lose what was not synced at a power loss.

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::fs::{FileSystem, RealFs, WalFile};
pub use super::power_loss::{PAGE_BYTES, PowerLossFs, PowerLossStats, SECTOR_BYTES};

#[derive(Debug, Default)]
struct Faults {
    /// Every `sync_data` fails with `EIO` while set.
    fail_sync: bool,
    /// Bytes that can still be written before `ENOSPC`; unlimited if `None`.
    space_left: Option<u64>,
}

/// Real files with injectable faults. Cheap to clone: clones share faults.
#[derive(Clone, Debug, Default)]
pub struct FaultyFs {
    faults: Arc<Mutex<Faults>>,
}

impl FaultyFs {
    /// No faults until one is armed.
    pub fn new() -> FaultyFs {
        FaultyFs::default()
    }

    fn faults(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes every later `sync_data` fail with `EIO`.
    pub fn fail_syncs(&self) {
        self.faults().fail_sync = true;
    }

    /// Lets `bytes` more bytes be written (to any file), then fails writes
    /// with `ENOSPC`; the write that crosses the limit is written partly.
    pub fn disk_full_after(&self, bytes: u64) {
        self.faults().space_left = Some(bytes);
    }

    /// Removes every fault.
    pub fn heal(&self) {
        *self.faults() = Faults::default();
    }

    fn wrap(&self, inner: Box<dyn WalFile>) -> Box<dyn WalFile> {
        Box::new(FaultyFile {
            inner,
            fs: self.clone(),
        })
    }
}

#[derive(Debug)]
struct FaultyFile {
    inner: Box<dyn WalFile>,
    fs: FaultyFs,
}

impl WalFile for FaultyFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let allowed = {
            let mut f = self.fs.faults();
            match f.space_left {
                None => buf.len(),
                Some(left) => {
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                    f.space_left = Some(left - n as u64);
                    n
                }
            }
        };
        self.inner.write_all(&buf[..allowed])?;
        if allowed < buf.len() {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        if self.fs.faults().fail_sync {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        self.inner.sync_data()
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }

    /// Refused with `ENOSPC` once a space limit is set (zero-filling ahead
    /// is the first thing a filling disk refuses), without writing.
    fn preallocate(&mut self, len: u64) -> io::Result<()> {
        if self.fs.faults().space_left.is_some() {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        self.inner.preallocate(len)
    }

    fn file_len(&self) -> u64 {
        self.inner.file_len()
    }
}

impl FileSystem for FaultyFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        RealFs.create_dir_all(dir)
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn WalFile>> {
        Ok(self.wrap(RealFs.create(path)?))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WalFile>> {
        Ok(self.wrap(RealFs.open_append(path)?))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        RealFs.read(path)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        RealFs.list(dir)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        RealFs.rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        RealFs.remove(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        if self.faults().fail_sync {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        RealFs.sync_dir(dir)
    }
}

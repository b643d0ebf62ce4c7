//! The file operations the write-ahead log uses, behind a trait so that
//! tests can inject the faults real disks have (a failed fsync, a full
//! disk), and the data-directory lock.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// A file open for appending.
pub trait WalFile: Send + fmt::Debug {
    /// Appends all of `buf` at the end of the file.
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;
    /// `fdatasync`: makes every byte written so far durable.
    fn sync_data(&mut self) -> io::Result<()>;
    /// Cuts or extends the file to `len` bytes; later appends go after it.
    fn set_len(&mut self, len: u64) -> io::Result<()>;
}

/// The directory and file operations of the write-ahead log and the
/// snapshot files.
pub trait FileSystem: Send + Sync + fmt::Debug {
    /// Creates `dir` and its parents if missing.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Creates `path` empty (truncating a file already there), for appending.
    fn create(&self, path: &Path) -> io::Result<Box<dyn WalFile>>;
    /// Opens the existing file `path` for appending.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WalFile>>;
    /// Reads the whole of `path`.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// The names of the regular files in `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Renames `from` to `to`, replacing `to` atomically.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Deletes `path`.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// `fsync` of the directory itself, so that created, renamed and
    /// deleted names are durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The operating system's file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct RealFs;

#[derive(Debug)]
struct RealFile(File);

impl WalFile for RealFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        // The file is in append mode: the next write goes to the new end.
        self.0.set_len(len)
    }
}

impl FileSystem for RealFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn WalFile>> {
        let f = OpenOptions::new().append(true).create(true).open(path)?;
        f.set_len(0)?;
        Ok(Box::new(RealFile(f)))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WalFile>> {
        let f = OpenOptions::new().append(true).open(path)?;
        Ok(Box::new(RealFile(f)))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                if let Some(name) = entry.file_name().to_str() {
                    names.push(name.to_owned());
                }
            }
        }
        Ok(names)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// An exclusive `flock` on `DIR/LOCK`, held while the value lives: two
/// processes (or two `Wal`s in one process) appending to the same log
/// would interleave records and corrupt it.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

/// Why the lock could not be taken.
pub(crate) enum LockError {
    /// Another open file description holds it.
    Held,
    /// The lock file could not be opened or locked.
    Io(io::Error),
}

impl DirLock {
    pub(crate) fn acquire(path: PathBuf) -> Result<DirLock, LockError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(LockError::Io)?;
        // SAFETY: `flock` takes a file descriptor we own for the call's
        // duration and has no other memory effects.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = io::Error::last_os_error();
            return Err(if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                LockError::Held
            } else {
                LockError::Io(err)
            });
        }
        // Closing the file (on drop) releases the lock.
        Ok(DirLock { _file: file })
    }
}

//! The file operations the write-ahead log uses, behind a trait so that
//! tests can inject the faults real disks have (a failed fsync, a full
//! disk), and the data-directory lock.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

/// A file open for appending.
///
/// Its *end* is the end of what was written, which may lie before the end
/// of the file: [`WalFile::preallocate`] zero-fills the file ahead of it.
pub trait WalFile: Send + fmt::Debug {
    /// Writes all of `buf` at the end and moves the end after it.
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;
    /// `fdatasync`: makes every byte written so far durable.
    fn sync_data(&mut self) -> io::Result<()>;
    /// Cuts or extends the file to `len` bytes and puts the end there.
    fn set_len(&mut self, len: u64) -> io::Result<()>;
    /// Makes the file at least `len` bytes long by writing zeros after
    /// its last byte, leaving the end where it is. Writes into the zeros
    /// then rewrite blocks the file already has, so their `fdatasync` has
    /// no file size or block allocation to record: one device write
    /// instead of two.
    fn preallocate(&mut self, len: u64) -> io::Result<()>;
    /// The file's length: its end, or more once preallocated.
    fn file_len(&self) -> u64;
}

/// Zeros written at a time by [`WalFile::preallocate`].
const ZERO_CHUNK: usize = 64 << 10;

/// The directory and file operations of the write-ahead log and the
/// snapshot files.
pub trait FileSystem: Send + Sync + fmt::Debug {
    /// Creates `dir` and its parents if missing.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Creates `path` empty (truncating a file already there), its end at 0.
    fn create(&self, path: &Path) -> io::Result<Box<dyn WalFile>>;
    /// Opens the existing file `path`, its end at the end of the file.
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
struct RealFile {
    file: File,
    /// Where the next write goes.
    end: u64,
    /// The file's length (at least `end`; more once preallocated).
    len: u64,
}

impl RealFile {
    fn open(file: File) -> io::Result<RealFile> {
        let len = file.metadata()?.len();
        Ok(RealFile {
            file,
            end: len,
            len,
        })
    }
}

impl WalFile for RealFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file.write_all_at(buf, self.end)?;
        self.end += buf.len() as u64;
        self.len = self.len.max(self.end);
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)?;
        (self.end, self.len) = (len, len);
        Ok(())
    }

    fn preallocate(&mut self, len: u64) -> io::Result<()> {
        static ZEROS: [u8; ZERO_CHUNK] = [0; ZERO_CHUNK];
        while self.len < len {
            let n = (len - self.len).min(ZERO_CHUNK as u64) as usize;
            self.file.write_all_at(&ZEROS[..n], self.len)?;
            self.len += n as u64;
        }
        Ok(())
    }

    fn file_len(&self) -> u64 {
        self.len
    }
}

impl FileSystem for RealFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn WalFile>> {
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(Box::new(RealFile::open(f)?))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WalFile>> {
        let f = OpenOptions::new().write(true).open(path)?;
        Ok(Box::new(RealFile::open(f)?))
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

//! [`PowerLossFs`]: an in-memory [`FileSystem`] that loses power.
//!
//! It keeps, for every file, what reads see and what is durable (as of the
//! file's last `sync_data`), and for the directory the names reads see and
//! the names made durable by `sync_dir`. At a power loss it keeps, as
//! CrashMonkey and ALICE do, an arbitrary subset of what was not synced:
//!
//! - of each file's unsynced pages ([`PAGE_BYTES`]), each is kept old, kept
//!   new, or torn (a random mix of its old and new [`SECTOR_BYTES`]
//!   sectors), independently of the others and of their order;
//! - an unsynced length (a file extended by writes or zero-filling, or cut)
//!   is kept or lost; bytes past the old length read as zeros;
//! - of the directory operations since the last `sync_dir` (a new file's
//!   name, a rename, a removal), a prefix survives, each operation whole:
//!   journaling file systems commit them in order.
//!
//! Every byte synced before the power loss survives it. Power is lost
//! either at a step the test chooses ([`PowerLossFs::power_loss`]) or
//! inside the `n`-th operation that changes state
//! ([`PowerLossFs::lose_power_at_op`]), so inside an `fdatasync`, between a
//! file's sync and its directory's, or in the middle of recovery. From then
//! on every call fails with `EIO` until [`PowerLossFs::restart`].

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::fs::{FileSystem, WalFile};

/// The unit in which unsynced data survives or is lost.
pub const PAGE_BYTES: usize = 4096;
/// The unit of a torn page: a device writes a sector whole or not at all.
pub const SECTOR_BYTES: usize = 512;

/// One file: its bytes as read, and as durable.
#[derive(Debug, Default)]
struct Inode {
    /// What reads see.
    data: Vec<u8>,
    /// What survives a power loss for certain: the file as of its last
    /// `sync_data`.
    durable: Vec<u8>,
    /// Pages written, zero-filled or cut since the last `sync_data`.
    dirty: BTreeSet<usize>,
    /// `write_all` calls since the last `sync_data`.
    writes_since_sync: u32,
}

/// Resizes `v` to `len`, new bytes zero. (`Vec::resize` writes the zeros
/// one by one in an unoptimised build; a zeroed allocation is free.)
fn resize_zeroed(v: &mut Vec<u8>, len: usize) {
    if len <= v.len() {
        v.truncate(len);
    } else if len - v.len() >= PAGE_BYTES {
        let mut grown = vec![0; len];
        grown[..v.len()].copy_from_slice(v);
        *v = grown;
    } else {
        v.resize(len, 0);
    }
}

impl Inode {
    fn touch(&mut self, from: usize, to: usize) {
        if to > from {
            self.dirty
                .extend(from / PAGE_BYTES..to.div_ceil(PAGE_BYTES));
        }
    }

    fn write_at(&mut self, at: usize, buf: &[u8]) {
        if self.data.len() < at + buf.len() {
            resize_zeroed(&mut self.data, at + buf.len());
        }
        self.data[at..at + buf.len()].copy_from_slice(buf);
        self.touch(at, at + buf.len());
    }

    fn set_len(&mut self, len: usize) {
        let old = self.data.len();
        resize_zeroed(&mut self.data, len);
        self.touch(old.min(len), old.max(len));
    }

    fn sync(&mut self) {
        resize_zeroed(&mut self.durable, self.data.len());
        for &p in &self.dirty {
            let lo = p * PAGE_BYTES;
            let hi = (lo + PAGE_BYTES).min(self.data.len());
            if lo < hi {
                self.durable[lo..hi].copy_from_slice(&self.data[lo..hi]);
            }
        }
        self.dirty.clear();
        self.writes_since_sync = 0;
    }

    /// What a power loss leaves of the file: durable bytes, plus an
    /// arbitrary subset of the unsynced pages (whole or torn), at the old
    /// or the new length.
    fn lose_power(&mut self, rng: &mut SmallRng, stats: &mut PowerLossStats) {
        if self.dirty.is_empty() && self.data.len() == self.durable.len() {
            return;
        }
        let len = if self.data.len() == self.durable.len() || rng.random_bool(0.5) {
            self.data.len()
        } else {
            stats.lengths_lost += 1;
            self.durable.len()
        };
        let mut after = std::mem::take(&mut self.durable);
        resize_zeroed(&mut after, len);
        // Takes the unsynced bytes of `lo..hi`; past a cut (beyond what
        // reads see) the old bytes stay.
        let data = &self.data;
        let take_new = |after: &mut Vec<u8>, lo: usize, hi: usize| {
            let hi = hi.min(data.len());
            if lo < hi {
                after[lo..hi].copy_from_slice(&data[lo..hi]);
            }
        };
        for &p in &self.dirty {
            let lo = p * PAGE_BYTES;
            if lo >= len {
                continue;
            }
            let hi = (lo + PAGE_BYTES).min(len);
            match rng.random_range(0..4u8) {
                // Not written back: the old page stays.
                0 => stats.pages_lost += 1,
                // Torn: some sectors new, some old.
                1 => {
                    stats.pages_torn += 1;
                    for s in (lo..hi).step_by(SECTOR_BYTES) {
                        if rng.random_bool(0.5) {
                            take_new(&mut after, s, (s + SECTOR_BYTES).min(hi));
                        }
                    }
                }
                // Written back whole.
                _ => {
                    stats.pages_kept += 1;
                    take_new(&mut after, lo, hi);
                }
            }
        }
        self.data.clone_from(&after);
        self.durable = after;
        self.dirty.clear();
        self.writes_since_sync = 0;
    }
}

/// A directory operation not yet made durable by `sync_dir`.
#[derive(Clone, Debug)]
enum DirOp {
    Link(PathBuf, usize),
    Unlink(PathBuf),
    Rename(PathBuf, PathBuf),
}

fn apply(names: &mut BTreeMap<PathBuf, usize>, op: &DirOp) {
    match op {
        DirOp::Link(name, inode) => {
            names.insert(name.clone(), *inode);
        }
        DirOp::Unlink(name) => {
            names.remove(name);
        }
        DirOp::Rename(from, to) => {
            if let Some(inode) = names.remove(from) {
                names.insert(to.clone(), inode);
            }
        }
    }
}

/// What the power losses so far kept and lost, for a test to check that it
/// explored what it meant to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PowerLossStats {
    /// Power losses.
    pub power_losses: u64,
    /// Unsynced pages kept whole.
    pub pages_kept: u64,
    /// Unsynced pages kept in part (some sectors old, some new).
    pub pages_torn: u64,
    /// Unsynced pages lost.
    pub pages_lost: u64,
    /// Unsynced file lengths lost.
    pub lengths_lost: u64,
    /// Unsynced directory operations lost.
    pub dir_ops_lost: u64,
    /// The most `write_all` calls to one file between two of its syncs.
    pub max_writes_between_syncs: u32,
}

#[derive(Debug)]
struct State {
    inodes: Vec<Inode>,
    /// The names reads see.
    names: BTreeMap<PathBuf, usize>,
    /// The names as of the last `sync_dir`.
    durable_names: BTreeMap<PathBuf, usize>,
    /// Operations since the last `sync_dir`, in order.
    pending: Vec<DirOp>,
    rng: SmallRng,
    /// State-changing operations so far.
    ops: u64,
    /// Power is lost inside this operation.
    lose_power_at: Option<u64>,
    /// Power is off: every call fails until a restart.
    off: bool,
    stats: PowerLossStats,
}

fn eio() -> io::Error {
    io::Error::from_raw_os_error(libc::EIO)
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: no such file", path.display()),
    )
}

impl State {
    fn check(&self) -> io::Result<()> {
        if self.off { Err(eio()) } else { Ok(()) }
    }

    /// Counts a state-changing operation; power is lost in it if armed.
    fn op(&mut self) -> io::Result<()> {
        self.check()?;
        self.ops += 1;
        if self.lose_power_at.is_some_and(|n| self.ops >= n) {
            self.lose_power();
            return Err(eio());
        }
        Ok(())
    }

    fn lose_power(&mut self) {
        self.stats.power_losses += 1;
        self.lose_power_at = None;
        self.off = true;
        let kept = self.rng.random_range(0..=self.pending.len());
        self.stats.dir_ops_lost += (self.pending.len() - kept) as u64;
        let mut names = std::mem::take(&mut self.durable_names);
        for op in &self.pending[..kept] {
            apply(&mut names, op);
        }
        self.pending.clear();
        let live: BTreeSet<usize> = names.values().copied().collect();
        for (i, inode) in self.inodes.iter_mut().enumerate() {
            if live.contains(&i) {
                inode.lose_power(&mut self.rng, &mut self.stats);
            } else {
                *inode = Inode::default();
            }
        }
        self.names = names.clone();
        self.durable_names = names;
    }

    fn lookup(&self, path: &Path) -> io::Result<usize> {
        self.names.get(path).copied().ok_or_else(|| not_found(path))
    }
}

/// An in-memory file system that keeps only some of what was not synced
/// when it loses power (see the module's documentation). Cheap to clone:
/// clones share the files.
#[derive(Clone, Debug)]
pub struct PowerLossFs {
    state: Arc<Mutex<State>>,
}

impl PowerLossFs {
    /// An empty file system whose power losses draw from `seed`.
    pub fn new(seed: u64) -> PowerLossFs {
        PowerLossFs {
            state: Arc::new(Mutex::new(State {
                inodes: Vec::new(),
                names: BTreeMap::new(),
                durable_names: BTreeMap::new(),
                pending: Vec::new(),
                rng: SmallRng::seed_from_u64(seed),
                ops: 0,
                lose_power_at: None,
                off: false,
                stats: PowerLossStats::default(),
            })),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// State-changing operations so far.
    pub fn ops(&self) -> u64 {
        self.state().ops
    }

    /// Loses power inside the `n`-th state-changing operation from now
    /// (`n` ≥ 1): it and every later call fail with `EIO`.
    pub fn lose_power_at_op(&self, n: u64) {
        let mut s = self.state();
        s.lose_power_at = Some(s.ops + n.max(1));
    }

    /// Loses power now (if it is still on).
    pub fn power_loss(&self) {
        let mut s = self.state();
        if !s.off {
            s.lose_power();
        }
    }

    /// Whether power is off.
    pub fn is_off(&self) -> bool {
        self.state().off
    }

    /// Powers back on, with what the power loss left.
    pub fn restart(&self) {
        let mut s = self.state();
        s.off = false;
        s.lose_power_at = None;
    }

    /// What the power losses so far kept and lost.
    pub fn stats(&self) -> PowerLossStats {
        self.state().stats
    }

    /// Overwrites `bytes` at `offset` of `path`, durable at once: damage
    /// of data that was synced, as a failing disk or a stray write does.
    pub fn corrupt(&self, path: &Path, offset: usize, bytes: &[u8]) -> io::Result<()> {
        let mut s = self.state();
        let i = s.lookup(path)?;
        let inode = &mut s.inodes[i];
        assert!(
            offset + bytes.len() <= inode.data.len() && inode.dirty.is_empty(),
            "only synced bytes are corrupted"
        );
        inode.data[offset..offset + bytes.len()].copy_from_slice(bytes);
        inode.durable[offset..offset + bytes.len()].copy_from_slice(bytes);
        Ok(())
    }
}

#[derive(Debug)]
struct PowerLossFile {
    fs: PowerLossFs,
    inode: usize,
    /// Where the next write goes.
    end: u64,
}

impl WalFile for PowerLossFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut s = self.fs.state();
        s.op()?;
        let inode = &mut s.inodes[self.inode];
        inode.write_at(self.end as usize, buf);
        inode.writes_since_sync += 1;
        let writes = inode.writes_since_sync;
        s.stats.max_writes_between_syncs = s.stats.max_writes_between_syncs.max(writes);
        self.end += buf.len() as u64;
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        let mut s = self.fs.state();
        s.op()?;
        s.inodes[self.inode].sync();
        Ok(())
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        let mut s = self.fs.state();
        s.op()?;
        s.inodes[self.inode].set_len(len as usize);
        self.end = len;
        Ok(())
    }

    fn preallocate(&mut self, len: u64) -> io::Result<()> {
        let mut s = self.fs.state();
        s.op()?;
        let inode = &mut s.inodes[self.inode];
        if (inode.data.len() as u64) < len {
            inode.set_len(len as usize);
        }
        Ok(())
    }

    fn file_len(&self) -> u64 {
        self.fs.state().inodes[self.inode].data.len() as u64
    }
}

impl FileSystem for PowerLossFs {
    fn create_dir_all(&self, _dir: &Path) -> io::Result<()> {
        self.state().check()
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn WalFile>> {
        let mut s = self.state();
        s.op()?;
        let inode = match s.names.get(path) {
            Some(&i) => {
                s.inodes[i].set_len(0);
                i
            }
            None => {
                let i = s.inodes.len();
                s.inodes.push(Inode::default());
                s.names.insert(path.to_owned(), i);
                s.pending.push(DirOp::Link(path.to_owned(), i));
                i
            }
        };
        drop(s);
        Ok(Box::new(PowerLossFile {
            fs: self.clone(),
            inode,
            end: 0,
        }))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WalFile>> {
        let s = self.state();
        s.check()?;
        let inode = s.lookup(path)?;
        let end = s.inodes[inode].data.len() as u64;
        drop(s);
        Ok(Box::new(PowerLossFile {
            fs: self.clone(),
            inode,
            end,
        }))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let s = self.state();
        s.check()?;
        let i = s.lookup(path)?;
        Ok(s.inodes[i].data.clone())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let s = self.state();
        s.check()?;
        Ok(s.names
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.state();
        s.op()?;
        s.lookup(from)?;
        let op = DirOp::Rename(from.to_owned(), to.to_owned());
        apply(&mut s.names, &op);
        s.pending.push(op);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut s = self.state();
        s.op()?;
        s.lookup(path)?;
        let op = DirOp::Unlink(path.to_owned());
        apply(&mut s.names, &op);
        s.pending.push(op);
        Ok(())
    }

    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        let mut s = self.state();
        s.op()?;
        s.durable_names = s.names.clone();
        s.pending.clear();
        Ok(())
    }
}

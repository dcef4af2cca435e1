//! SimDisk: an in-memory directory that keeps what the page cache holds apart from what reached
//! the platter, because AOF and RDB recovery must be tested against power loss, fsync errors,
//! torn writes and full disks, and madsim models none of them.
//!
//! The model follows FoundationDB's `AsyncFileNonDurable` and TigerBeetle's `testing/storage.zig`:
//! - a file has `cache` (what reads see), `durable` (what survives power loss) and `pending`, the
//!   writes and truncations since its last fsync, in order;
//! - the directory has `cache_dir` and `durable_dir`; only `sync_dir` (or the kernel's periodic
//!   [`SimDisk::writeback`]) carries new, renamed and removed entries across;
//! - every random choice comes from one [`SeededRng`]: same seed and same calls, same disk.
//!
//! Methods never wait, so plain tests poll them with a no-op waker. The disk has no clock: it
//! draws a delay in [`SimDisk::latency_ms`] and the simulator's env sleeps it on madsim time.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Disk, DiskFile, Rng, SeededRng};

/// A power loss keeps or drops pending writes in whole sectors, as disks promise.
pub const SECTOR_BYTES: u64 = 512;

/// No simulated file grows past this; a larger offset is a caller bug, not a workload.
const MAX_FILE_BYTES: u64 = 1 << 30;

/// Faults drawn on each operation. The default is a perfect disk: all zero, no draws.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DiskFaults {
    /// fsync returns EIO and the unsynced writes are dropped from the durable path: reads still
    /// see them until power loss, and a later fsync returns Ok ("fsyncgate"). The first error is
    /// final for the data written before it: `appendfsync always`: the node exits; `everysec`:
    /// writes get MISCONF until an fsync succeeds again.
    pub fsync_eio_probability: f64,
    /// write returns EIO and writes nothing (a failing device). `appendfsync always`: the node
    /// exits; otherwise Redis keeps the data in `aof_buf`, refuses writes with MISCONF and
    /// retries on the next cycle.
    pub write_eio_probability: f64,
    /// write writes a random non-empty prefix (a signal, a quota, a nearly full disk). Callers
    /// loop (`write_all_at`); Redis truncates a partial AOF write away or retries the rest.
    pub short_write_probability: f64,
    /// Bytes the directory holds, counted as the lengths of visible and open files (sparse
    /// files are not modelled). A write past it is cut to fit, or fails with ENOSPC when nothing
    /// fits. AOF: MISCONF until space returns; BGSAVE fails and the old RDB stays.
    pub capacity_bytes: Option<u64>,
    /// A read flips one random bit of what it returns while the stored bytes stay intact (a bad
    /// controller or cable). Loaders must catch it by checksum (RDB CRC64) and refuse the file.
    pub read_bitflip_probability: f64,
    /// Only reads of the file with this name are bit-flipped; `None`: every file.
    pub read_bitflip_file: Option<String>,
    /// Each operation takes `latency_min_ms..=latency_max_ms` (a busy or throttled device).
    /// Slow fsyncs are what make Redis postpone `everysec` fsyncs and report `aof_delayed_fsync`.
    pub latency_min_ms: u64,
    pub latency_max_ms: u64,
    /// fsync alone takes `fsync_latency_min_ms..=fsync_latency_max_ms` more, while writes stay
    /// fast (they only reach the page cache): a disk busy with other writeback. Redis's
    /// `everysec` then postpones writes for up to 2 s and counts `aof_delayed_fsync`.
    pub fsync_latency_min_ms: u64,
    pub fsync_latency_max_ms: u64,
}

impl DiskFaults {
    fn validate(&self) {
        for p in [
            self.fsync_eio_probability,
            self.write_eio_probability,
            self.short_write_probability,
            self.read_bitflip_probability,
        ] {
            assert!((0.0..=1.0).contains(&p), "fault probability {p} outside 0..=1");
        }
        assert!(self.latency_min_ms <= self.latency_max_ms, "latency_min_ms > latency_max_ms");
        assert!(self.fsync_latency_min_ms <= self.fsync_latency_max_ms, "fsync_latency_min_ms > fsync_latency_max_ms");
    }
}

/// What a power loss leaves of each file's pending writes. Synced bytes survive unless a lost
/// write was overwriting them in place; the directory reverts to its last `sync_dir`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerLoss {
    /// Only what was fsynced survives: a volatile write cache that flushed nothing.
    LoseAll,
    /// The device wrote each file's pending sectors in order and stopped part way: a prefix
    /// survives. With `torn_garbage` the sector being written holds random bytes. Loaders must
    /// accept a truncated tail (`aof-load-truncated`) and reject garbage by checksum.
    Prefix { torn_garbage: bool },
    /// The device reordered its writes: each pending sector (and truncation) survives or not on
    /// its own (FoundationDB `DROP_ONLY`); with `torn_garbage` a sector may instead hold random
    /// bytes (`FULL_CORRUPTION`). Garbage lands only on bytes a lost write targeted.
    AnySector { torn_garbage: bool },
}

/// What a power loss did with one pending piece: the part of a write within one sector, or a
/// whole truncation (never garbage).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SectorFate {
    Kept,
    Lost,
    Garbage,
}

/// Per surviving file name that had pending writes, the fate of each piece in write order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PowerLossReport {
    pub files: BTreeMap<String, Vec<SectorFate>>,
}

/// Counters for the simulator's trace and for tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiskStats {
    pub reads: u64,
    pub bytes_read: u64,
    pub corrupted_reads: u64,
    pub writes: u64,
    pub bytes_written: u64,
    pub short_writes: u64,
    /// Writes and truncations refused with EIO or ENOSPC.
    pub failed_writes: u64,
    pub fsyncs: u64,
    pub failed_fsyncs: u64,
    pub dir_syncs: u64,
    pub writebacks: u64,
    pub power_failures: u64,
    pub process_crashes: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum PendingOp {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

impl PendingOp {
    fn apply(&self, bytes: &mut Vec<u8>) {
        match self {
            PendingOp::Write { offset, data } => write_bytes(bytes, *offset, data),
            PendingOp::SetLen(len) => bytes.resize(*len as usize, 0),
        }
    }
}

fn write_bytes(bytes: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let (start, end) = (offset as usize, offset as usize + data.len());
    if bytes.len() < end {
        bytes.resize(end, 0);
    }
    bytes[start..end].copy_from_slice(data);
}

/// Splits writes at sector boundaries, the unit in which a power loss keeps or drops them.
fn split_into_sectors(ops: Vec<PendingOp>) -> Vec<PendingOp> {
    let mut pieces = Vec::with_capacity(ops.len());
    for op in ops {
        let PendingOp::Write { mut offset, data } = op else {
            pieces.push(op);
            continue;
        };
        let mut rest = &data[..];
        while !rest.is_empty() {
            let take = rest.len().min((SECTOR_BYTES - offset % SECTOR_BYTES) as usize);
            pieces.push(PendingOp::Write { offset, data: rest[..take].to_vec() });
            offset += take as u64;
            rest = &rest[take..];
        }
    }
    pieces
}

#[derive(Debug, Default)]
struct Inode {
    cache: Vec<u8>,
    durable: Vec<u8>,
    pending: Vec<PendingOp>,
    open_handles: u32,
}

#[derive(Debug)]
struct State {
    rng: SeededRng,
    faults: DiskFaults,
    stats: DiskStats,
    /// Bumped by each crash: handles of a dead process must not touch the next one's files.
    generation: u64,
    next_ino: u64,
    inodes: BTreeMap<u64, Inode>,
    cache_dir: BTreeMap<String, u64>,
    durable_dir: BTreeMap<String, u64>,
}

/// A simulated directory. Clones share it, so the simulator keeps one outside a node and hands
/// clones in, and the disk outlives kill and restart.
#[derive(Clone)]
pub struct SimDisk {
    state: Arc<Mutex<State>>,
    /// Where this handle's directory sits: "" for the top, "name/" for a subdirectory. Entries
    /// of a subdirectory are stored under their full name; directories themselves are always
    /// present (their own creation is not modelled as losable).
    prefix: Arc<str>,
}

impl fmt::Debug for SimDisk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.lock();
        f.debug_struct("SimDisk").field("files", &st.cache_dir.keys()).field("stats", &st.stats).finish()
    }
}

impl SimDisk {
    /// A perfect, empty disk whose random choices all come from `seed`.
    pub fn new(seed: u64) -> Self {
        let state = State {
            rng: SeededRng::from_seed(seed),
            faults: DiskFaults::default(),
            stats: DiskStats::default(),
            generation: 0,
            next_ino: 1,
            inodes: BTreeMap::new(),
            cache_dir: BTreeMap::new(),
            durable_dir: BTreeMap::new(),
        };
        SimDisk { state: Arc::new(Mutex::new(state)), prefix: Arc::from("") }
    }

    /// Replaces the faults for every later operation. Panics on a probability outside 0..=1.
    pub fn set_faults(&self, faults: DiskFaults) {
        faults.validate();
        self.lock().faults = faults;
    }

    pub fn faults(&self) -> DiskFaults {
        self.lock().faults.clone()
    }

    pub fn stats(&self) -> DiskStats {
        self.lock().stats.clone()
    }

    /// How long the next operation takes, drawn from the seed; 0 (and no draw) unless latency
    /// faults are set. The simulator's env sleeps it on madsim time before calling the disk.
    pub fn latency_ms(&self) -> u64 {
        self.draw_ms(|f| (f.latency_min_ms, f.latency_max_ms))
    }

    /// How much longer the next fsync takes, drawn from the seed; 0 (and no draw) unless fsync
    /// latency faults are set.
    pub fn fsync_latency_ms(&self) -> u64 {
        self.draw_ms(|f| (f.fsync_latency_min_ms, f.fsync_latency_max_ms))
    }

    fn draw_ms(&self, range: impl Fn(&DiskFaults) -> (u64, u64)) -> u64 {
        let mut st = self.lock();
        let (min, max) = range(&st.faults);
        if max == 0 {
            return 0;
        }
        min + st.rng.below(max - min + 1)
    }

    /// The machine lost power: each file keeps its durable bytes plus what `mode` lets survive
    /// of its pending writes, and the directory reverts to its last `sync_dir`. Open handles die.
    pub fn power_fail(&self, mode: PowerLoss) -> PowerLossReport {
        self.lock().power_fail(mode)
    }

    /// The process was killed (kill -9, OOM, panic) but the OS lives on: the page cache keeps
    /// every write and pending writes stay pending (a later power loss can still drop them).
    /// Only the dead process's handles die. `appendfsync everysec` loses nothing here.
    pub fn process_crash(&self) {
        let mut st = self.lock();
        st.end_generation();
        st.stats.process_crashes += 1;
    }

    /// The kernel's periodic flush (dirty pages after `dirty_expire_centisecs`, the journal
    /// commit every few seconds): all pending writes and directory changes become durable
    /// without anyone calling fsync. Models `appendfsync no` surviving most power losses.
    pub fn writeback(&self) {
        let mut st = self.lock();
        for inode in st.inodes.values_mut() {
            for op in std::mem::take(&mut inode.pending) {
                op.apply(&mut inode.durable);
            }
        }
        st.durable_dir = st.cache_dir.clone();
        st.stats.writebacks += 1;
        st.prune();
    }

    /// What a power loss with `LoseAll` would leave under `name` now.
    pub fn durable_contents(&self, name: &str) -> Option<Vec<u8>> {
        let st = self.lock();
        st.durable_dir.get(name).map(|ino| st.inodes[ino].durable.clone())
    }

    /// What a read of `name` sees now (without read faults).
    pub fn cache_contents(&self, name: &str) -> Option<Vec<u8>> {
        let st = self.lock();
        st.cache_dir.get(name).map(|ino| st.inodes[ino].cache.clone())
    }

    /// Entry names a power loss would leave, sorted.
    pub fn durable_names(&self) -> Vec<String> {
        self.lock().durable_dir.keys().cloned().collect()
    }

    /// Entry names `list` shows, sorted.
    pub fn cached_names(&self) -> Vec<String> {
        self.lock().cache_dir.keys().cloned().collect()
    }

    /// Bytes counted against `capacity_bytes`.
    pub fn used_bytes(&self) -> u64 {
        self.lock().used_bytes()
    }

    /// The stored name of this directory's entry `name`.
    fn full_name(&self, name: &str) -> io::Result<String> {
        check_name(name)?;
        Ok(format!("{}{name}", self.prefix))
    }

    /// This directory's entries among stored `names`, by their short names.
    fn own_entries<'a>(&self, names: impl Iterator<Item = &'a String>) -> Vec<String> {
        names.filter_map(|n| n.strip_prefix(&*self.prefix)).filter(|n| !n.contains('/')).map(String::from).collect()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock, and a test that did should still inspect.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn eio() -> io::Error {
    io::Error::from_raw_os_error(libc::EIO)
}

fn enospc() -> io::Error {
    io::Error::from_raw_os_error(libc::ENOSPC)
}

fn check_name(name: &str) -> io::Result<()> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("bad file name {name:?}")));
    }
    Ok(())
}

fn not_found(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("no such file {name:?}"))
}

impl State {
    fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        // 53 random bits give every f64 in 0..1 its fair share.
        p >= 1.0 || ((self.rng.next_u64() >> 11) as f64) < p * (1u64 << 53) as f64
    }

    fn inode(&mut self, ino: u64) -> &mut Inode {
        self.inodes.get_mut(&ino).expect("a live handle's inode is never pruned")
    }

    fn check_live(&self, generation: u64) -> io::Result<()> {
        if generation != self.generation {
            // A handle from before a crash: its process is dead, so this is a simulator bug.
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        }
        Ok(())
    }

    fn used_bytes(&self) -> u64 {
        let visible: BTreeSet<u64> = self.cache_dir.values().copied().collect();
        let counted = |(ino, f): &(&u64, &Inode)| visible.contains(ino) || f.open_handles > 0;
        self.inodes.iter().filter(counted).map(|(_, f)| f.cache.len() as u64).sum()
    }

    /// Drops inodes nothing can reach again: no entry in either directory, no open handle.
    fn prune(&mut self) {
        let named: BTreeSet<u64> = self.cache_dir.values().chain(self.durable_dir.values()).copied().collect();
        self.inodes.retain(|ino, f| named.contains(ino) || f.open_handles > 0);
    }

    fn end_generation(&mut self) {
        self.generation += 1;
        for inode in self.inodes.values_mut() {
            inode.open_handles = 0;
        }
        self.prune();
    }

    /// Bytes a write of `len` at `offset` may place before the capacity runs out.
    fn room_for(&self, ino: u64, offset: u64, len: u64) -> u64 {
        let Some(capacity) = self.faults.capacity_bytes else {
            return len;
        };
        let free = capacity.saturating_sub(self.used_bytes());
        let end_max = self.inodes[&ino].cache.len() as u64 + free;
        len.min(end_max.saturating_sub(offset))
    }

    /// Decides how many bytes of a write land, or which error it gets.
    fn admit_write(&mut self, ino: u64, offset: u64, len: u64) -> io::Result<usize> {
        if offset.saturating_add(len) > MAX_FILE_BYTES {
            return Err(io::Error::from_raw_os_error(libc::EFBIG));
        }
        if self.chance(self.faults.write_eio_probability) {
            self.stats.failed_writes += 1;
            return Err(eio());
        }
        let mut n = self.room_for(ino, offset, len);
        if n == 0 {
            self.stats.failed_writes += 1;
            return Err(enospc());
        }
        if n > 1 && self.chance(self.faults.short_write_probability) {
            n = 1 + self.rng.below(n - 1);
            self.stats.short_writes += 1;
        }
        Ok(n as usize)
    }

    fn write_at(&mut self, ino: u64, buf: &[u8], offset: u64) -> io::Result<usize> {
        self.stats.writes += 1;
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.admit_write(ino, offset, buf.len() as u64)?;
        let op = PendingOp::Write { offset, data: buf[..n].to_vec() };
        let inode = self.inode(ino);
        op.apply(&mut inode.cache);
        inode.pending.push(op);
        self.stats.bytes_written += n as u64;
        Ok(n)
    }

    fn set_len(&mut self, ino: u64, len: u64) -> io::Result<()> {
        let cur = self.inode(ino).cache.len() as u64;
        if len > MAX_FILE_BYTES {
            return Err(io::Error::from_raw_os_error(libc::EFBIG));
        }
        if len > cur && self.room_for(ino, cur, len - cur) < len - cur {
            self.stats.failed_writes += 1;
            return Err(enospc());
        }
        let op = PendingOp::SetLen(len);
        let inode = self.inode(ino);
        op.apply(&mut inode.cache);
        inode.pending.push(op);
        Ok(())
    }

    fn read_at(&mut self, ino: u64, buf: &mut [u8], offset: u64) -> usize {
        let cache = &self.inode(ino).cache;
        let start = (offset as usize).min(cache.len());
        let n = buf.len().min(cache.len() - start);
        buf[..n].copy_from_slice(&cache[start..start + n]);
        self.stats.reads += 1;
        self.stats.bytes_read += n as u64;
        if n > 0 && self.bitflip_targets(ino) && self.chance(self.faults.read_bitflip_probability) {
            let bit = self.rng.below(n as u64 * 8);
            buf[(bit / 8) as usize] ^= 1 << (bit % 8);
            self.stats.corrupted_reads += 1;
        }
        n
    }

    fn bitflip_targets(&self, ino: u64) -> bool {
        match &self.faults.read_bitflip_file {
            None => true,
            Some(name) => self.cache_dir.get(name) == Some(&ino),
        }
    }

    /// The pending ops leave the durable path either way: on EIO they are gone for good, which
    /// is why a later fsync can return Ok without making them durable.
    fn sync_data(&mut self, ino: u64) -> io::Result<()> {
        self.stats.fsyncs += 1;
        let pending = std::mem::take(&mut self.inode(ino).pending);
        if self.chance(self.faults.fsync_eio_probability) {
            self.stats.failed_fsyncs += 1;
            return Err(eio());
        }
        let inode = self.inode(ino);
        for op in &pending {
            op.apply(&mut inode.durable);
        }
        Ok(())
    }

    fn open(&mut self, name: &str, create: bool) -> io::Result<u64> {
        let ino = match self.cache_dir.get(name) {
            Some(&ino) => ino,
            None if create => self.create(name),
            None => return Err(not_found(name)),
        };
        self.inode(ino).open_handles += 1;
        Ok(ino)
    }

    fn create(&mut self, name: &str) -> u64 {
        let ino = self.next_ino;
        self.next_ino += 1;
        self.inodes.insert(ino, Inode::default());
        self.cache_dir.insert(name.to_string(), ino);
        ino
    }

    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        let ino = self.cache_dir.remove(from).ok_or_else(|| not_found(from))?;
        self.cache_dir.insert(to.to_string(), ino);
        self.prune();
        Ok(())
    }

    fn remove(&mut self, name: &str) -> io::Result<()> {
        self.cache_dir.remove(name).ok_or_else(|| not_found(name))?;
        self.prune();
        Ok(())
    }

    /// Makes the entries directly under `prefix` durable as the cache shows them.
    fn sync_dir(&mut self, prefix: &str) {
        self.stats.dir_syncs += 1;
        let own = |n: &String| n.strip_prefix(prefix).is_some_and(|rest| !rest.contains('/'));
        self.durable_dir.retain(|n, _| !own(n));
        let synced: Vec<(String, u64)> =
            self.cache_dir.iter().filter(|(n, _)| own(n)).map(|(n, &i)| (n.clone(), i)).collect();
        self.durable_dir.extend(synced);
        self.prune();
    }

    fn power_fail(&mut self, mode: PowerLoss) -> PowerLossReport {
        let mut report = PowerLossReport::default();
        let entries: Vec<(String, u64)> = self.durable_dir.iter().map(|(n, &i)| (n.clone(), i)).collect();
        for (name, ino) in entries {
            let pieces = split_into_sectors(std::mem::take(&mut self.inode(ino).pending));
            if pieces.is_empty() {
                continue;
            }
            let fates = self.choose_fates(&pieces, mode);
            self.settle(ino, &pieces, &fates);
            report.files.insert(name, fates);
        }
        self.cache_dir = self.durable_dir.clone();
        self.end_generation();
        for inode in self.inodes.values_mut() {
            inode.cache = inode.durable.clone();
            inode.pending.clear();
        }
        self.stats.power_failures += 1;
        report
    }

    fn choose_fates(&mut self, pieces: &[PendingOp], mode: PowerLoss) -> Vec<SectorFate> {
        let n = pieces.len();
        match mode {
            PowerLoss::LoseAll => vec![SectorFate::Lost; n],
            PowerLoss::Prefix { torn_garbage } => {
                let kept = self.rng.below(n as u64 + 1) as usize;
                let mut fates = vec![SectorFate::Lost; n];
                fates[..kept].fill(SectorFate::Kept);
                if torn_garbage && kept < n && matches!(pieces[kept], PendingOp::Write { .. }) {
                    fates[kept] = SectorFate::Garbage;
                }
                fates
            }
            PowerLoss::AnySector { torn_garbage } => {
                pieces.iter().map(|p| self.any_sector_fate(p, torn_garbage)).collect()
            }
        }
    }

    fn any_sector_fate(&mut self, piece: &PendingOp, torn_garbage: bool) -> SectorFate {
        let can_tear = torn_garbage && matches!(piece, PendingOp::Write { .. });
        match self.rng.below(if can_tear { 3 } else { 2 }) {
            0 => SectorFate::Kept,
            1 => SectorFate::Lost,
            _ => SectorFate::Garbage,
        }
    }

    /// Applies the surviving pieces to the durable image, in write order.
    fn settle(&mut self, ino: u64, pieces: &[PendingOp], fates: &[SectorFate]) {
        for (piece, fate) in pieces.iter().zip(fates) {
            let op = match (fate, piece) {
                (SectorFate::Lost, _) => continue,
                (SectorFate::Kept, _) => piece.clone(),
                (SectorFate::Garbage, PendingOp::Write { offset, data }) => {
                    let mut junk = vec![0u8; data.len()];
                    self.rng.fill(&mut junk);
                    PendingOp::Write { offset: *offset, data: junk }
                }
                (SectorFate::Garbage, PendingOp::SetLen(_)) => {
                    unreachable!("truncations never tear")
                }
            };
            op.apply(&mut self.inode(ino).durable);
        }
    }
}

/// An open file of a [`SimDisk`]. Like a Unix descriptor it follows its inode through renames
/// and removal; unlike one it dies with the simulated process (crash or power loss).
#[derive(Debug)]
pub struct SimFile {
    disk: SimDisk,
    ino: u64,
    generation: u64,
}

impl SimFile {
    fn with<T>(&self, op: impl FnOnce(&mut State) -> io::Result<T>) -> io::Result<T> {
        let mut st = self.disk.lock();
        st.check_live(self.generation)?;
        op(&mut st)
    }
}

impl Drop for SimFile {
    fn drop(&mut self) {
        let mut st = self.disk.lock();
        if st.generation != self.generation {
            return;
        }
        if let Some(inode) = st.inodes.get_mut(&self.ino) {
            inode.open_handles -= 1;
        }
        st.prune();
    }
}

impl DiskFile for SimFile {
    async fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.with(|st| Ok(st.read_at(self.ino, buf, offset)))
    }
    async fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        self.with(|st| st.write_at(self.ino, buf, offset))
    }
    async fn len(&self) -> io::Result<u64> {
        self.with(|st| Ok(st.inode(self.ino).cache.len() as u64))
    }
    async fn set_len(&self, len: u64) -> io::Result<()> {
        self.with(|st| st.set_len(self.ino, len))
    }
    async fn sync_data(&self) -> io::Result<()> {
        self.with(|st| st.sync_data(self.ino))
    }
}

impl Disk for SimDisk {
    type File = SimFile;
    async fn open(&self, name: &str, create: bool) -> io::Result<SimFile> {
        let name = self.full_name(name)?;
        let mut st = self.lock();
        let ino = st.open(&name, create)?;
        Ok(SimFile { disk: self.clone(), ino, generation: st.generation })
    }
    async fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let (from, to) = (self.full_name(from)?, self.full_name(to)?);
        self.lock().rename(&from, &to)
    }
    async fn remove(&self, name: &str) -> io::Result<()> {
        let name = self.full_name(name)?;
        self.lock().remove(&name)
    }
    async fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.own_entries(self.lock().cache_dir.keys()))
    }
    async fn sync_dir(&self) -> io::Result<()> {
        self.lock().sync_dir(&self.prefix);
        Ok(())
    }
    async fn subdir(&self, name: &str) -> io::Result<SimDisk> {
        let prefix = format!("{}/", self.full_name(name)?);
        Ok(SimDisk { state: self.state.clone(), prefix: Arc::from(prefix) })
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod model_tests;

//! The only door out of node code: clock, disk, network, randomness and task spawning.
//!
//! Node code (protocol, engine, commands, server, persistence, replication…) names none of
//! tokio, `std::net`, `std::fs`, `Instant` or `SystemTime`; it is generic over [`Env`]. Two
//! backends implement it: [`real::RealEnv`] (tokio networking and timers, `std::fs` with real
//! file and directory fsync) and the simulator's `SimEnv` in `sim/` (madsim scheduling, time and
//! TCP, [`sim_disk::SimDisk`], skewed clocks). `clippy.toml` enforces the door: the disallowed
//! methods and types are allowed only inside this module.

#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::io::{AsyncRead, AsyncWrite};

pub mod alloc;

/// What the driver needs from the async runtime, named here so that no module outside the
/// env layer names tokio: byte-stream helpers, a wake-up primitive, `select!`, and plain
/// socket address types.
pub mod rt {
    pub use crate::__redsim_select as select;
    pub use std::net::{IpAddr, SocketAddr};
    pub use tokio::io::{AsyncReadExt, AsyncWriteExt};
    #[doc(hidden)]
    pub use tokio::select as __tokio_select;
    pub use tokio::sync::Mutex as AsyncMutex;
    pub use tokio::sync::Notify;
}
/// `tokio::select!` polling its branches in the order written (`biased;`), so write them in
/// priority order. Tokio's default starts at a random branch, drawn from a per-thread
/// generator that tokio seeds from a process-wide counter: under the simulator the branch a
/// node took when two were ready at once depended on how many threads had run before in the
/// process, not on the seed, and a sweep's report could replay to another trace.
#[doc(hidden)]
#[macro_export]
macro_rules! __redsim_select {
    ($($branches:tt)*) => {
        $crate::env::rt::__tokio_select! { biased; $($branches)* }
    };
}

pub mod real;
pub mod sim_disk;
pub mod skew;

/// Time as node code sees it. Read once per turn: `let now_ms = env.clock().now_ms();`.
pub trait Clock: Clone + Send + Sync + 'static {
    /// Monotonic milliseconds since an arbitrary origin; never goes back. Timeouts use it.
    fn now_ms(&self) -> u64;
    /// Monotonic microseconds, same origin as `now_ms`. Latency and stats use it.
    fn now_us(&self) -> u64;
    /// Wall-clock milliseconds since the Unix epoch. May jump (NTP, faults). Expiry uses it.
    fn unix_ms(&self) -> u64;
    /// Wall-clock microseconds since the Unix epoch (TIME, INFO `server_time_usec`).
    fn unix_us(&self) -> u64 {
        self.unix_ms() * 1000
    }
    /// Sleeps for `ms` milliseconds of monotonic time.
    fn sleep_ms(&self, ms: u64) -> impl Future<Output = ()> + Send;
}

/// A byte stream to a peer.
pub trait Conn: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Conn for T {}

pub trait Listener: Send + Sync + 'static {
    type Conn: Conn;
    fn accept(&self) -> impl Future<Output = io::Result<(Self::Conn, SocketAddr)>> + Send;
    fn local_addr(&self) -> io::Result<SocketAddr>;
}

pub trait Net: Clone + Send + Sync + 'static {
    type Conn: Conn;
    type Listener: Listener<Conn = Self::Conn>;
    fn bind(&self, addr: SocketAddr) -> impl Future<Output = io::Result<Self::Listener>> + Send;
    fn connect(&self, addr: SocketAddr) -> impl Future<Output = io::Result<Self::Conn>> + Send;
}

/// An open file. Writes may be short (callers loop); data is durable only after a
/// `sync_data` that returned Ok. A failed `sync_data` may have dropped the unsynced data,
/// and a later one may still return Ok (Linux "fsyncgate"): callers must treat the first
/// error as final for the data written before it.
#[allow(clippy::len_without_is_empty)] // an async length: is_empty would be one more I/O
pub trait DiskFile: Send + Sync + 'static {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> impl Future<Output = io::Result<usize>> + Send;
    fn write_at(&self, buf: &[u8], offset: u64) -> impl Future<Output = io::Result<usize>> + Send;
    fn len(&self) -> impl Future<Output = io::Result<u64>> + Send;
    fn set_len(&self, len: u64) -> impl Future<Output = io::Result<()>> + Send;
    fn sync_data(&self) -> impl Future<Output = io::Result<()>> + Send;
}

/// A directory of files, addressed by plain names (no path separators). New, renamed and
/// removed entries are durable only after `sync_dir` returned Ok.
pub trait Disk: Clone + Send + Sync + 'static {
    type File: DiskFile;
    fn open(&self, name: &str, create: bool) -> impl Future<Output = io::Result<Self::File>> + Send;
    fn rename(&self, from: &str, to: &str) -> impl Future<Output = io::Result<()>> + Send;
    fn remove(&self, name: &str) -> impl Future<Output = io::Result<()>> + Send;
    /// Entry names in the directory, sorted.
    fn list(&self) -> impl Future<Output = io::Result<Vec<String>>> + Send;
    fn sync_dir(&self) -> impl Future<Output = io::Result<()>> + Send;
    /// The directory `name` inside this one (created if missing), with its own entries and
    /// its own `sync_dir`. A new subdirectory is durable once this directory's `sync_dir`
    /// returned Ok. The AOF keeps its files in one (`appenddirname`).
    fn subdir(&self, name: &str) -> impl Future<Output = io::Result<Self>> + Send;
}

/// Randomness. Every draw in node code comes from one of these, seeded by the env: from the OS
/// in the real build, from the run's seed in the simulator.
pub trait Rng: Send + 'static {
    fn next_u64(&mut self) -> u64;
    /// Uniform in `0..n`; `n` must be > 0.
    fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        // Lemire's multiply-shift; the bias is negligible for our n (< 2^40).
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
    fn fill(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// The seeded generator handed to node code.
#[derive(Clone, Debug)]
pub struct SeededRng(ChaCha8Rng);

impl SeededRng {
    pub fn from_seed(seed: u64) -> Self {
        SeededRng(ChaCha8Rng::seed_from_u64(seed))
    }
}

impl Rng for SeededRng {
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
}

/// Everything a node may touch, bundled.
pub trait Env: Clone + Send + Sync + 'static {
    type Clock: Clock;
    type Net: Net;
    type Disk: Disk;
    fn clock(&self) -> &Self::Clock;
    fn net(&self) -> &Self::Net;
    fn disk(&self) -> &Self::Disk;
    /// A disk rooted at another directory (`""`: this env's own), where a file outside the
    /// data directory lives (the config file CONFIG REWRITE writes).
    fn disk_at(&self, dir: &str) -> io::Result<Self::Disk>;
    /// A new generator derived from the env's seed; each call gives a different stream.
    fn rng(&self) -> SeededRng;
    /// Spawns a task owned by this node (in the simulator: killed with the node).
    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, fut: F);
    /// The process's identity as `INFO server` reports it (`process_id`).
    fn process_id(&self) -> u32;
    /// Resident set size in bytes, from the OS, where it can be known.
    fn rss_bytes(&self) -> u64;
    /// Bytes allocated, counted as Redis's zmalloc counts them (see `alloc`).
    fn used_memory(&self) -> u64;
    /// jemalloc's (allocated, active, resident) bytes where jemalloc is the allocator.
    fn allocator_stats(&self) -> Option<(u64, u64, u64)>;
    /// Writes one finished log line (already in Redis's format) to the log: stdout, the
    /// logfile, or the simulator's trace.
    fn log_line(&self, line: &str);
    /// User and system CPU seconds used by the process.
    fn cpu_usage(&self) -> (f64, f64);

    /// The forked child of a snapshot (see [`Env::fork_snapshot`]).
    type Child: SnapshotChild;
    /// Redis's `fork()` for a snapshot: `write` runs on a copy of the process's memory as it is
    /// now, so it may borrow the dataset the caller holds locked, and its bytes come back to the
    /// parent through the returned [`SnapshotChild`] while the parent goes on serving. The
    /// real backend forks a process and pipes the bytes; the simulator runs `write` at once
    /// (CPU work takes no simulated time) and hands the bytes out over simulated time, so the
    /// save is "in progress" for a while and a node crash mid-way loses it.
    fn fork_snapshot<F: FnOnce(&mut dyn std::io::Write) -> io::Result<()>>(&self, write: F) -> io::Result<Self::Child>;
}

/// The parent's handle on a forked snapshot writer (Redis's `child_pid` + its pipe).
pub trait SnapshotChild: Send + 'static {
    /// The child's process id (`Background saving started by pid N`, `temp-N.rdb`).
    fn pid(&self) -> u32;
    /// The next bytes the child wrote; empty once the child closed its end.
    fn read_chunk(&mut self) -> impl Future<Output = io::Result<Vec<u8>>> + Send;
    /// Waits for the child to exit; Ok(true) when it reported success (exit code 0).
    fn wait(&mut self) -> impl Future<Output = io::Result<bool>> + Send;
    /// Ends the child at once (Redis's `killRDBChild`); `wait` then returns false.
    fn kill(&mut self);
}

/// A snapshot child whose bytes were all produced up front (the simulator's fork): hands them
/// out in `MEM_CHILD_CHUNK` pieces, sleeping `MEM_CHILD_CHUNK_DELAY_MS` of the clock's time
/// before each, so that the parent sees the save in progress for a while.
pub struct MemChild<C: Clock> {
    pid: u32,
    clock: C,
    bytes: Vec<u8>,
    pos: usize,
    ok: bool,
}

/// Bytes per chunk a [`MemChild`] hands out.
pub const MEM_CHILD_CHUNK: usize = 64 * 1024;
/// Simulated delay before each chunk of a [`MemChild`], in ms.
pub const MEM_CHILD_CHUNK_DELAY_MS: u64 = 1;

impl<C: Clock> MemChild<C> {
    /// Runs `write` now into memory; a failed or panicking `write` makes a child that exits 1.
    pub fn run<F: FnOnce(&mut dyn std::io::Write) -> io::Result<()>>(pid: u32, clock: C, write: F) -> Self {
        let mut bytes = Vec::new();
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| write(&mut bytes))).is_ok_and(|r| r.is_ok());
        MemChild { pid, clock, bytes, pos: 0, ok }
    }
}

impl<C: Clock> SnapshotChild for MemChild<C> {
    fn pid(&self) -> u32 {
        self.pid
    }
    async fn read_chunk(&mut self) -> io::Result<Vec<u8>> {
        if self.pos >= self.bytes.len() {
            return Ok(Vec::new());
        }
        self.clock.sleep_ms(MEM_CHILD_CHUNK_DELAY_MS).await;
        let end = (self.pos + MEM_CHILD_CHUNK).min(self.bytes.len());
        let chunk = self.bytes[self.pos..end].to_vec();
        self.pos = end;
        Ok(chunk)
    }
    async fn wait(&mut self) -> io::Result<bool> {
        Ok(self.ok)
    }
    fn kill(&mut self) {
        self.ok = false;
        self.pos = self.bytes.len();
    }
}

/// Reads a whole file through the `Disk` door.
pub async fn read_file<D: Disk>(disk: &D, name: &str) -> io::Result<Vec<u8>> {
    let f = disk.open(name, false).await?;
    let len = f.len().await? as usize;
    let mut buf = vec![0u8; len];
    let mut off = 0;
    while off < len {
        let n = f.read_at(&mut buf[off..], off as u64).await?;
        if n == 0 {
            buf.truncate(off);
            break;
        }
        off += n;
    }
    Ok(buf)
}

/// Replaces `name` with `bytes` so that a crash leaves the old file or the new one: a
/// temporary file written, fsynced and renamed over it, then the directory fsynced.
pub async fn replace_file<D: Disk>(disk: &D, name: &str, tmp_suffix: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = format!("{name}.tmp-{tmp_suffix}");
    let f = disk.open(&tmp, true).await?;
    f.set_len(0).await?;
    write_all_at(&f, bytes, 0).await?;
    f.sync_data().await?;
    drop(f);
    disk.rename(&tmp, name).await?;
    disk.sync_dir().await
}

/// Writes all of `buf` at `offset`, looping over short writes.
pub async fn write_all_at<F: DiskFile>(f: &F, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        let n = f.write_at(buf, offset).await?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "short write of zero bytes"));
        }
        buf = &buf[n..];
        offset += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod select_tests {
    /// Every `select!` of the node code and of the simulator goes through `rt::select!`
    /// (biased): tokio's own, unbiased, draws its first branch from a generator the seed does
    /// not fix. A source scan, as clippy's disallowed-macros cannot be allowed inside a macro.
    #[test]
    fn no_select_but_the_biased_one() {
        fn walk(dir: &std::path::Path, bad: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).expect("source dir") {
                let path = entry.expect("dir entry").path();
                if path.is_dir() {
                    walk(&path, bad);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).expect("source file");
                    for (i, line) in text.lines().enumerate() {
                        let code = line.split("//").next().unwrap_or_default();
                        let mut rest = code;
                        while let Some(at) = rest.find(&["select", "!"].concat()) {
                            let before = &rest[..at];
                            if !(before.ends_with("env::rt::") || before.ends_with("__tokio_")) {
                                bad.push(format!("{}:{}: {}", path.display(), i + 1, line.trim()));
                            }
                            rest = &rest[at + 1..];
                        }
                    }
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut bad = Vec::new();
        walk(&root.join("src"), &mut bad);
        walk(&root.join("sim/src"), &mut bad);
        assert!(bad.is_empty(), "use crate::env::rt::select! (biased):\n{}", bad.join("\n"));
    }
}

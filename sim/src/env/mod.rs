//! SimEnv: redsim's `Env` for one simulated node. madsim gives scheduling, time and TCP; this
//! adds what madsim lacks and real machines have: a clock of the node's own ([`SkewedClock`],
//! faults set by the nemesis), connect timeouts, writes that arrive in pieces, a disk that
//! survives the node ([`SimDisk`], with its latency slept on simulated time), randomness from
//! the run's seed, and log lines that go to the run's trace.
//!
//! It compiles in both builds (the adapters name only `tokio`, which is madsim's in the
//! simulator build); only the simulator build has a world to put it in. Like redsim's
//! `src/env`, this is the door itself, so it may name what node code may not.

#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod net;

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use redsim::env::real::TokioClock;
use redsim::env::sim_disk::{SimDisk, SimFile};
use redsim::env::skew::SkewedClock;
use redsim::env::{Clock, Disk, DiskFile, Env, MemChild, SeededRng};

pub use net::{NetConfig, SimConn, SimListener, SimNet};

use crate::faults::rng_for;
use crate::trace::Trace;

/// What SimEnv reports as memory: a constant, because the process's allocator counts every
/// node and client of every run on the thread, which is neither this node's nor deterministic.
/// Scenarios with `maxmemory` need a per-node estimate first.
const SIM_USED_MEMORY_BYTES: u64 = 1 << 20;

/// The node's disk with the latency faults slept on simulated time before each operation.
#[derive(Clone, Debug)]
pub struct SlowDisk {
    disk: SimDisk,
}

impl SlowDisk {
    pub fn new(disk: SimDisk) -> Self {
        SlowDisk { disk }
    }

    pub fn inner(&self) -> &SimDisk {
        &self.disk
    }
}

async fn latency(disk: &SimDisk) {
    let ms = disk.latency_ms();
    if ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
}

pub struct SlowFile {
    file: SimFile,
    disk: SimDisk,
}

impl DiskFile for SlowFile {
    async fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        latency(&self.disk).await;
        self.file.read_at(buf, offset).await
    }
    async fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        latency(&self.disk).await;
        self.file.write_at(buf, offset).await
    }
    async fn len(&self) -> io::Result<u64> {
        self.file.len().await
    }
    async fn set_len(&self, len: u64) -> io::Result<()> {
        latency(&self.disk).await;
        self.file.set_len(len).await
    }
    async fn sync_data(&self) -> io::Result<()> {
        latency(&self.disk).await;
        let ms = self.disk.fsync_latency_ms();
        if ms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
        self.file.sync_data().await
    }
}

impl Disk for SlowDisk {
    type File = SlowFile;
    async fn open(&self, name: &str, create: bool) -> io::Result<SlowFile> {
        latency(&self.disk).await;
        let file = self.disk.open(name, create).await?;
        Ok(SlowFile { file, disk: self.disk.clone() })
    }
    async fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        latency(&self.disk).await;
        self.disk.rename(from, to).await
    }
    async fn remove(&self, name: &str) -> io::Result<()> {
        latency(&self.disk).await;
        self.disk.remove(name).await
    }
    async fn list(&self) -> io::Result<Vec<String>> {
        self.disk.list().await
    }
    async fn sync_dir(&self) -> io::Result<()> {
        latency(&self.disk).await;
        self.disk.sync_dir().await
    }
    async fn subdir(&self, name: &str) -> io::Result<SlowDisk> {
        Ok(SlowDisk { disk: self.disk.subdir(name).await? })
    }
}

/// One node's environment. The world builds a new one for each incarnation from parts that
/// outlive the node (clock, disk), so faults set on them persist across restarts.
#[derive(Clone)]
pub struct SimEnv {
    clock: SkewedClock<TokioClock>,
    net: SimNet,
    disk: SlowDisk,
    /// Streams handed out by `rng()` are derived from this and a counter.
    rng_seed: u64,
    rng_streams: Arc<AtomicU64>,
    pid: u32,
    /// Forks so far: a child's pid is the node's pid plus this count.
    forks: Arc<AtomicU64>,
    name: Arc<str>,
    trace: Trace,
    /// True simulated time since the world started, for trace stamps.
    world_clock: TokioClock,
}

/// What a node's env is made of.
pub struct SimEnvParts {
    pub clock: SkewedClock<TokioClock>,
    pub disk: SimDisk,
    pub net: NetConfig,
    pub run_seed: u64,
    /// `n0`, `c3`: names the node in the trace and derives its random streams.
    pub name: String,
    /// Counts restarts, so each incarnation draws fresh streams.
    pub incarnation: u64,
    pub pid: u32,
    pub trace: Trace,
    pub world_clock: TokioClock,
}

impl SimEnv {
    pub fn new(p: SimEnvParts) -> Self {
        let purpose = format!("env/{}/{}", p.name, p.incarnation);
        let mut rng = rng_for(p.run_seed, &purpose);
        let net_seed = redsim::env::Rng::next_u64(&mut rng);
        SimEnv {
            clock: p.clock,
            net: SimNet::new(p.net, SeededRng::from_seed(net_seed)),
            disk: SlowDisk::new(p.disk),
            rng_seed: redsim::env::Rng::next_u64(&mut rng),
            rng_streams: Arc::default(),
            pid: p.pid,
            forks: Arc::default(),
            name: p.name.into(),
            trace: p.trace,
            world_clock: p.world_clock,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// Simulated µs since the world started.
    pub fn world_us(&self) -> u64 {
        self.world_clock.now_us()
    }
}

impl Env for SimEnv {
    type Clock = SkewedClock<TokioClock>;
    type Net = SimNet;
    type Disk = SlowDisk;
    fn clock(&self) -> &Self::Clock {
        &self.clock
    }
    fn net(&self) -> &SimNet {
        &self.net
    }
    fn disk(&self) -> &SlowDisk {
        &self.disk
    }
    fn disk_at(&self, dir: &str) -> io::Result<SlowDisk> {
        if dir.is_empty() {
            return Ok(self.disk.clone());
        }
        Err(io::Error::new(io::ErrorKind::Unsupported, "a simulated node has one directory"))
    }
    fn rng(&self) -> SeededRng {
        let stream = self.rng_streams.fetch_add(1, Ordering::Relaxed);
        SeededRng::from_seed(self.rng_seed ^ stream.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }
    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, fut: F) {
        // madsim: owned by the node whose task calls this, and killed with it.
        tokio::spawn(fut);
    }
    fn process_id(&self) -> u32 {
        self.pid
    }
    fn rss_bytes(&self) -> u64 {
        SIM_USED_MEMORY_BYTES
    }
    fn used_memory(&self) -> u64 {
        SIM_USED_MEMORY_BYTES
    }
    fn allocator_stats(&self) -> Option<(u64, u64, u64)> {
        None
    }
    fn log_line(&self, line: &str) {
        self.trace.event(self.world_us(), &format!("{} log: {line}", self.name));
    }
    fn cpu_usage(&self) -> (f64, f64) {
        // Simulated time has no CPU; a function of it keeps INFO plausible and deterministic.
        (self.world_us() as f64 / 1e8, 0.0)
    }

    type Child = MemChild<SkewedClock<TokioClock>>;
    fn fork_snapshot<F: FnOnce(&mut dyn std::io::Write) -> io::Result<()>>(&self, write: F) -> io::Result<Self::Child> {
        let n = self.forks.fetch_add(1, Ordering::Relaxed) + 1;
        Ok(MemChild::run(self.pid.wrapping_add(n as u32), self.clock.clone(), write))
    }
}

//! Crash at every step of writing a snapshot: whatever the step and whatever the crash (the
//! process dies and the page cache lives, or the power fails in any of SimDisk's ways),
//! dump.rdb is afterwards either the complete old file or the complete new one.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use super::*;
use crate::env::sim_disk::{PowerLoss, SimDisk, SimFile};

/// SimDisk's futures and the test child's are ready at once: no runtime needed.
fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a future waited"),
    }
}

/// A disk whose process dies after `ops_left` operations: every later call fails and changes
/// nothing, as if the process were gone.
#[derive(Clone)]
struct DyingDisk {
    disk: SimDisk,
    ops_left: Arc<AtomicU64>,
}

fn step(ops_left: &AtomicU64) -> io::Result<()> {
    match ops_left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)) {
        Ok(_) => Ok(()),
        Err(_) => Err(io::Error::other("the process died")),
    }
}

struct DyingFile {
    file: SimFile,
    ops_left: Arc<AtomicU64>,
}

impl DiskFile for DyingFile {
    async fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        step(&self.ops_left)?;
        self.file.read_at(buf, offset).await
    }
    async fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        step(&self.ops_left)?;
        self.file.write_at(buf, offset).await
    }
    async fn len(&self) -> io::Result<u64> {
        step(&self.ops_left)?;
        self.file.len().await
    }
    async fn set_len(&self, len: u64) -> io::Result<()> {
        step(&self.ops_left)?;
        self.file.set_len(len).await
    }
    async fn sync_data(&self) -> io::Result<()> {
        step(&self.ops_left)?;
        self.file.sync_data().await
    }
}

impl Disk for DyingDisk {
    type File = DyingFile;
    async fn open(&self, name: &str, create: bool) -> io::Result<DyingFile> {
        step(&self.ops_left)?;
        Ok(DyingFile { file: self.disk.open(name, create).await?, ops_left: self.ops_left.clone() })
    }
    async fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        step(&self.ops_left)?;
        self.disk.rename(from, to).await
    }
    async fn remove(&self, name: &str) -> io::Result<()> {
        step(&self.ops_left)?;
        self.disk.remove(name).await
    }
    async fn list(&self) -> io::Result<Vec<String>> {
        step(&self.ops_left)?;
        self.disk.list().await
    }
    async fn sync_dir(&self) -> io::Result<()> {
        step(&self.ops_left)?;
        self.disk.sync_dir().await
    }
    async fn subdir(&self, name: &str) -> io::Result<Self> {
        step(&self.ops_left)?;
        Ok(DyingDisk { disk: self.disk.subdir(name).await?, ops_left: self.ops_left.clone() })
    }
}

/// A child that hands its bytes out in a few chunks, so the file is written piecewise.
struct ChunkChild {
    chunks: Vec<Vec<u8>>,
    /// The exit status the child reports.
    ok: bool,
}

impl SnapshotChild for ChunkChild {
    fn pid(&self) -> u32 {
        4242
    }
    async fn read_chunk(&mut self) -> io::Result<Vec<u8>> {
        Ok(if self.chunks.is_empty() { Vec::new() } else { self.chunks.remove(0) })
    }
    async fn wait(&mut self) -> io::Result<bool> {
        Ok(self.ok)
    }
    fn kill(&mut self) {
        self.chunks.clear();
        self.ok = false;
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

/// A disk holding a durable dump.rdb = `old`.
fn disk_with(old: &[u8], seed: u64) -> SimDisk {
    let disk = SimDisk::new(seed);
    let f = block_on(disk.open("dump.rdb", true)).unwrap();
    block_on(write_all_at(&f, old, 0)).unwrap();
    block_on(f.sync_data()).unwrap();
    drop(f);
    block_on(disk.sync_dir()).unwrap();
    disk
}

/// Writes `new` over a disk that dies after `ops` operations; whether the write reported
/// success.
fn save_dying_after(disk: &SimDisk, new: &[u8], ops: u64) -> bool {
    let dying = DyingDisk { disk: disk.clone(), ops_left: Arc::new(AtomicU64::new(ops)) };
    let mut child = ChunkChild { chunks: new.chunks(10_000).map(<[u8]>::to_vec).collect(), ok: true };
    block_on(write_snapshot(&dying, &mut child, "dump.rdb", &AtomicBool::new(false))).is_ok()
}

#[derive(Clone, Copy, Debug)]
enum Crash {
    Process,
    Power(PowerLoss),
}

const CRASHES: [Crash; 5] = [
    Crash::Process,
    Crash::Power(PowerLoss::LoseAll),
    Crash::Power(PowerLoss::Prefix { torn_garbage: false }),
    Crash::Power(PowerLoss::Prefix { torn_garbage: true }),
    Crash::Power(PowerLoss::AnySector { torn_garbage: true }),
];

#[test]
fn a_crash_at_any_step_leaves_the_old_or_the_new_dump_whole() {
    let old = pattern(25_000, 1);
    let new = pattern(33_333, 7);
    // Operations of a save that completes: count them on a disk that never dies.
    let full = {
        let disk = disk_with(&old, 1);
        let dying = DyingDisk { disk: disk.clone(), ops_left: Arc::new(AtomicU64::new(u64::MAX)) };
        let mut child = ChunkChild { chunks: new.chunks(10_000).map(<[u8]>::to_vec).collect(), ok: true };
        assert!(block_on(write_snapshot(&dying, &mut child, "dump.rdb", &AtomicBool::new(false))).is_ok());
        u64::MAX - dying.ops_left.load(Ordering::SeqCst)
    };
    assert!(full >= 8, "open, set_len, 4 writes, fsync, rename, dir fsync: {full}");
    let mut outcomes = [0u32; 2];
    for ops in 0..=full {
        for crash in CRASHES {
            for seed in 0..4 {
                let disk = disk_with(&old, seed);
                let ok = save_dying_after(&disk, &new, ops);
                assert_eq!(ok, ops == full, "only a save with every step done reports success");
                match crash {
                    Crash::Process => disk.process_crash(),
                    Crash::Power(mode) => {
                        disk.power_fail(mode);
                    }
                }
                let after = disk
                    .cache_contents("dump.rdb")
                    .unwrap_or_else(|| panic!("dump.rdb gone after {crash:?} at step {ops}"));
                let is_new = after == new;
                assert!(after == old || is_new, "{crash:?} at step {ops} (seed {seed}): a mix of old and new");
                if ok {
                    assert!(is_new, "{crash:?} after a save that reported success lost it");
                }
                outcomes[usize::from(is_new)] += 1;
            }
        }
    }
    assert!(outcomes[0] > 0 && outcomes[1] > 0, "both outcomes happen: {outcomes:?}");
}

#[test]
fn a_child_that_fails_leaves_no_temp_file_and_the_old_dump() {
    let old = pattern(1000, 3);
    let disk = disk_with(&old, 9);
    let mut child = ChunkChild { chunks: vec![pattern(500, 4)], ok: false };
    let r = block_on(write_snapshot(&disk, &mut child, "dump.rdb", &AtomicBool::new(false)));
    assert!(r.is_err());
    assert_eq!(disk.cache_contents("dump.rdb"), Some(old));
    assert_eq!(disk.cached_names(), vec!["dump.rdb".to_string()], "the temp file is removed");
}

#[test]
fn incremental_fsync_syncs_each_time_another_interval_is_written() {
    // 10 chunks of 300 bytes with a 1000-byte interval: offsets 1000, 2000 and 3000 are
    // crossed by chunks 4, 7 and 10, so three syncs on the way plus the final one.
    for (interval, want) in [(1000, 4), (0, 1)] {
        let disk = disk_with(&pattern(10, 1), 13);
        let before = disk.stats().fsyncs;
        let chunks: Vec<Vec<u8>> = (0..10).map(|i| pattern(300, i)).collect();
        let mut child = ChunkChild { chunks: chunks.clone(), ok: true };
        let r = block_on(write_snapshot_autosync(&disk, &mut child, "dump.rdb", &AtomicBool::new(false), interval));
        assert_eq!(r, Ok(3000));
        assert_eq!(disk.stats().fsyncs - before, want, "interval {interval}");
        assert_eq!(disk.durable_contents("dump.rdb"), Some(chunks.concat()));
    }
}

#[test]
fn a_cancelled_save_keeps_the_old_dump() {
    let old = pattern(1000, 3);
    let disk = disk_with(&old, 11);
    let mut child = ChunkChild { chunks: vec![pattern(500, 4)], ok: true };
    let r = block_on(write_snapshot(&disk, &mut child, "dump.rdb", &AtomicBool::new(true)));
    assert!(r.is_err());
    assert_eq!(disk.cache_contents("dump.rdb"), Some(old));
    assert_eq!(disk.cached_names(), vec!["dump.rdb".to_string()]);
}

#[test]
fn save_points_are_seconds_and_changes_pairs() {
    assert_eq!(save_points("3600 1 300 100 60 10000"), vec![(3600, 1), (300, 100), (60, 10000)]);
    assert_eq!(save_points(""), vec![]);
}

/// A Forker that forks nothing: it records each BGSAVE and hands out pids 100, 101...
struct RecordingForker(Arc<AtomicU64>);

impl Forker for RecordingForker {
    fn bgsave(&self, _: BgsaveRequest<'_>) -> io::Result<u32> {
        Ok(100 + self.0.fetch_add(1, Ordering::SeqCst) as u32)
    }
}

fn server_with_forker(save: &str) -> (Server, Arc<AtomicU64>) {
    use crate::commands::testing;
    let mut srv = testing::server();
    assert_eq!(testing::run(&mut srv, &["CONFIG", "SET", "save", save]), b"+OK\r\n");
    let forks = Arc::new(AtomicU64::new(0));
    srv.forker = Box::new(RecordingForker(forks.clone()));
    (srv, forks)
}

fn cron_after(srv: &mut Server, ms: u64) {
    crate::commands::testing::advance(srv, ms);
    srv.snapshot_cron();
}

#[test]
fn save_points_fork_once_due_and_a_failure_waits_the_retry_delay() {
    use crate::commands::testing::run;
    let (mut srv, forks) = server_with_forker("10 2");
    run(&mut srv, &["SET", "a", "1"]);
    cron_after(&mut srv, 11_000);
    assert_eq!(forks.load(Ordering::SeqCst), 0, "one change is below the save point");
    run(&mut srv, &["SET", "b", "1"]);
    cron_after(&mut srv, 100);
    assert_eq!(forks.load(Ordering::SeqCst), 1, "2 changes after more than 10 s");
    cron_after(&mut srv, 100);
    assert_eq!(forks.load(Ordering::SeqCst), 1, "one child at a time");

    srv.bgsave_done(100, Err("Write error saving DB on disk: No space left on device".into()));
    assert_eq!(run(&mut srv, &["SET", "c", "1"]), format!("-{MISCONF_RDB}\r\n").into_bytes());
    assert_eq!(run(&mut srv, &["GET", "a"]), b"$1\r\n1\r\n", "reads go on");
    cron_after(&mut srv, 4_000);
    assert_eq!(forks.load(Ordering::SeqCst), 1, "no retry within CONFIG_BGSAVE_RETRY_DELAY_SECS");
    cron_after(&mut srv, 2_000);
    assert_eq!(forks.load(Ordering::SeqCst), 2, "retried after the delay");

    srv.bgsave_done(101, Ok(()));
    assert_eq!(srv.dirty, 0, "the changes before the fork are saved");
    assert_eq!(run(&mut srv, &["SET", "c", "1"]), b"+OK\r\n", "writes are back");
}

#[test]
fn changes_during_a_bgsave_stay_dirty_and_a_stale_child_is_ignored() {
    use crate::commands::testing::run;
    let (mut srv, _) = server_with_forker("");
    run(&mut srv, &["SET", "a", "1"]);
    assert_eq!(run(&mut srv, &["BGSAVE"]), b"+Background saving started\r\n");
    assert_eq!(run(&mut srv, &["BGSAVE"]), b"-ERR Background save already in progress\r\n");
    assert_eq!(run(&mut srv, &["SAVE"]), b"-ERR Background save already in progress\r\n");
    run(&mut srv, &["SET", "b", "1"]);
    srv.bgsave_done(999, Ok(()));
    assert_eq!(srv.child_kind, ChildKind::Rdb, "another pid's report changes nothing");
    srv.bgsave_done(100, Ok(()));
    assert_eq!(srv.child_kind, ChildKind::None);
    assert_eq!(srv.dirty, 1, "the write after the fork is not in the snapshot");
    // No save points: a failed save does not refuse writes.
    assert_eq!(run(&mut srv, &["BGSAVE"]), b"+Background saving started\r\n");
    srv.bgsave_done(101, Err("the child failed".into()));
    assert_eq!(run(&mut srv, &["SET", "c", "1"]), b"+OK\r\n");
}

#[test]
fn bgsave_schedule_waits_for_the_aof_child() {
    use crate::commands::testing::run;
    let (mut srv, forks) = server_with_forker("");
    srv.child_kind = ChildKind::Aof;
    assert!(run(&mut srv, &["BGSAVE"]).starts_with(b"-ERR Another child process is active (AOF?)"));
    assert_eq!(run(&mut srv, &["BGSAVE", "SCHEDULE"]), b"+Background saving scheduled\r\n");
    cron_after(&mut srv, 100);
    assert_eq!(forks.load(Ordering::SeqCst), 0);
    srv.child_kind = ChildKind::None;
    cron_after(&mut srv, 100);
    assert_eq!(forks.load(Ordering::SeqCst), 1, "started once the AOF child is gone");
    assert_eq!(run(&mut srv, &["BGSAVE", "x"]), b"-ERR syntax error\r\n");
}

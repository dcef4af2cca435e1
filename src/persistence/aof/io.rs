//! The AOF's I/O, done by the driver on the decisions of [`super::Aof`]: loading at startup,
//! group commit before replies, the `everysec` background fsync, and the rewrite's file switch.
//!
//! Group commit: one async mutex serializes flushers. A client whose requests ran takes it,
//! and if the AOF does not yet hold what was buffered (written, or fsynced under `always`),
//! flushes everything in `aof_buf` — its own commands and anyone else's — so one write and
//! one fsync serve every client waiting behind it. The plan is taken under the server lock,
//! so the file receives commands in execution order.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use super::load::{has_rdb_preamble, parse_commands, ParseEnd};
use super::manifest::{self, AofFile, FileType, Manifest};
use super::rewrite::rewrite_base;
use super::{FlushPlan, WriteOutcome};
use crate::env::rt::AsyncMutex;
use crate::env::{read_file, Clock, Disk, DiskFile, Env, SnapshotChild};
use crate::persistence::rdb;
use crate::server::driver::{now, Shared};
use crate::server::log::Level;
use crate::server::Server;

/// The AOF cron looks at postponed writes, failed writes and background fsyncs this often.
const AOF_CRON_MS: u64 = 100;

/// What a client's wait for the AOF ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flushed {
    /// Replies may go out (the AOF holds the commands, or Redis would reply anyway: a
    /// postponed `everysec` write, a write error under `everysec`/`no`).
    Reply,
    /// The process must exit without replying (`always` after a write or fsync error).
    Fatal,
}

/// The driver's handle on the AOF, without the env's type (so `Shared` can hold it).
pub trait AofDriver: Send + Sync {
    /// Flushes `aof_buf` as the policy requires before replies to requests already run.
    fn flush_before_reply<'a>(&'a self, shared: &'a Shared) -> Pin<Box<dyn Future<Output = Flushed> + Send + 'a>>;
    /// At SHUTDOWN: writes and fsyncs whatever is buffered (Redis's `flushAppendOnlyFile(1)`
    /// and `redis_fsync` in `prepareForShutdown`).
    fn flush_on_shutdown<'a>(&'a self, shared: &'a Shared) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;
}

/// The open AOF directory and the file being appended to.
pub struct AofIo<E: Env> {
    env: E,
    dir: E::Disk,
    appendfilename: String,
    manifest: Mutex<Manifest>,
    incr: Mutex<Arc<<E::Disk as Disk>::File>>,
    flush_lock: AsyncMutex<()>,
}

fn errno_of(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(5)
}

impl<E: Env> AofIo<E> {
    fn new(env: E, dir: E::Disk, appendfilename: String, m: Manifest, incr: <E::Disk as Disk>::File) -> Self {
        AofIo {
            env,
            dir,
            appendfilename,
            manifest: Mutex::new(m),
            incr: Mutex::new(Arc::new(incr)),
            flush_lock: AsyncMutex::new(()),
        }
    }

    fn incr_file(&self) -> Arc<<E::Disk as Disk>::File> {
        self.incr.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// One flush round under the flush lock; true when a write happened.
    async fn flush_once(&self, shared: &Shared, force: bool) -> bool {
        let (plan, skip_fsync) = {
            let mut s = shared.lock();
            feed(&mut s);
            let t = now(self.env.clock());
            (s.aof.plan_flush(t.mono_ms, force), s.aof.skips_fsync())
        };
        let FlushPlan::Write { data, file_offset, fsync } = plan else { return false };
        let file = self.incr_file();
        let start_us = self.env.clock().now_us();
        let out = write_plan(&*file, &data, file_offset, fsync && !skip_fsync).await;
        let took_ms = self.env.clock().now_us().saturating_sub(start_us) / 1000;
        let fatal = {
            let mut s = shared.lock();
            record_write_latency(&mut s, took_ms, fsync && !skip_fsync);
            let t = now(self.env.clock());
            s.aof.write_done(data, out, t.mono_ms, t.unix_ms / 1000);
            drain_log(&mut s);
            s.aof.fatal.is_some()
        };
        if fatal && fsync {
            // Under `always` everything before this write was fsynced. What this write left in
            // the page cache was never acknowledged and may never reach the disk (a failed fsync
            // drops it); cutting it off keeps the next incarnation's writes contiguous with the
            // durable bytes, so a later power loss cannot leave a hole in the middle of the file.
            let _ = file.set_len(file_offset).await;
        }
        true
    }

    async fn wait_flushed(&self, shared: &Shared) -> Flushed {
        let _g = self.flush_lock.lock().await;
        loop {
            {
                let mut s = shared.lock();
                feed(&mut s);
                if s.aof.fatal.is_some() {
                    return Flushed::Fatal;
                }
                if !s.aof.on || s.aof.is_durable_enough(s.aof.buffered_end) {
                    return Flushed::Reply;
                }
            }
            if !self.flush_once(shared, false).await {
                return Flushed::Reply;
            }
            let s = shared.lock();
            if s.aof.fatal.is_some() {
                return Flushed::Fatal;
            }
            if !s.aof.last_write_ok {
                return Flushed::Reply;
            }
        }
    }

    /// Starts an `everysec` background fsync when one is due.
    fn maybe_bg_fsync(self: &Arc<Self>, shared: &Arc<Shared>) {
        let end = {
            let mut s = shared.lock();
            let secs = now(self.env.clock()).unix_ms / 1000;
            s.aof.plan_bg_fsync(secs)
        };
        let Some(end) = end else { return };
        let file = self.incr_file();
        let (me, shared) = (self.clone(), shared.clone());
        self.env.spawn(async move {
            let r = file.sync_data().await.map_err(|e| errno_of(&e));
            let mut s = shared.lock();
            s.aof.bg_fsync_done(end, r);
            drain_log(&mut s);
            drop(me);
        });
    }

    /// BGREWRITEAOF as Redis 7.0 does it: a new incr file joins the manifest, a forked child
    /// writes the dataset as of the fork into a new base while writes go on into the new incr,
    /// then the manifest switches to the new base and incr and the old files go. A crash at
    /// any step leaves a manifest whose files hold every write: before the switch the old
    /// base and incrs plus the new incr, after it the new base and the new incr.
    async fn rewrite_now(&self, shared: &Shared) -> io::Result<()> {
        let r = self.rewrite_steps(shared).await;
        let mut s = shared.lock();
        s.aof.rewrite_in_progress = false;
        s.aof.no_fsync = false;
        if s.child_kind == crate::persistence::snapshot::ChildKind::Aof {
            s.child_kind = crate::persistence::snapshot::ChildKind::None;
        }
        match &r {
            Ok(()) => {
                s.log(Level::Notice, "Background AOF rewrite terminated with success");
                s.log(Level::Notice, "Background AOF rewrite finished successfully");
            }
            Err(e) => {
                s.aof.last_rewrite_ok = false;
                s.log(Level::Warning, &format!("Background AOF rewrite failed: {e}"));
            }
        }
        r
    }

    async fn rewrite_steps(&self, shared: &Shared) -> io::Result<()> {
        let guard = self.flush_lock.lock().await;
        // 1. The new incr file is in the manifest, durably, before anything goes into it.
        let mut m = self.manifest.lock().unwrap_or_else(|e| e.into_inner()).clone();
        m.curr_incr_seq += 1;
        let new_incr = AofFile {
            name: manifest::incr_name(&self.appendfilename, m.curr_incr_seq),
            seq: m.curr_incr_seq,
            kind: FileType::Incr,
        };
        let incr = self.dir.open(&new_incr.name, true).await?;
        incr.set_len(0).await?;
        incr.sync_data().await?;
        m.incrs.push(new_incr.clone());
        persist_manifest(&self.dir, &self.appendfilename, &m).await?;
        *self.manifest.lock().unwrap_or_else(|e| e.into_inner()) = m;
        // 2. The fork, at a command boundary: what was buffered before it belongs to the old
        //    incr (the child's base holds its effect), what comes after to the new one.
        let (mut child, plan, skip_fsync, preamble) = {
            let mut s = shared.lock();
            feed(&mut s);
            let preamble = s.config.get("aof-use-rdb-preamble") == Some("yes");
            let now_ms = s.now.unix_ms;
            let child = self.env.fork_snapshot(|w| {
                let base = rewrite_base(&s.dbs, now_ms, preamble);
                if base.fallback.is_some() {
                    return Err(io::Error::other("the RDB preamble could not be written"));
                }
                w.write_all(&base.bytes)
            })?;
            let t = now(self.env.clock());
            let plan = s.aof.plan_flush(t.mono_ms, true);
            s.aof.selected_db = None;
            s.aof.no_fsync = s.config.get("no-appendfsync-on-rewrite") == Some("yes");
            s.stats.total_forks += 1;
            s.child_kind = crate::persistence::snapshot::ChildKind::Aof;
            s.log(Level::Notice, &format!("Background append only file rewriting started by pid {}", child.pid()));
            (child, plan, s.aof.skips_fsync(), preamble)
        };
        if let FlushPlan::Write { data, file_offset, fsync } = plan {
            let old = self.incr_file();
            let out = write_plan(&*old, &data, file_offset, fsync && !skip_fsync).await;
            let failed = out.written != data.len() || out.error.is_some();
            let mut s = shared.lock();
            let t = now(self.env.clock());
            s.aof.write_done(data, out, t.mono_ms, t.unix_ms / 1000);
            drain_log(&mut s);
            if failed {
                // The unwritten commands precede the fork: they must not land in the new incr.
                child.kill();
                return Err(io::Error::other("writing the AOF before the rewrite failed"));
            }
        }
        {
            *self.incr.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(incr);
            let mut s = shared.lock();
            let a = &mut s.aof;
            a.history_size += a.incr_size;
            a.incr_size = 0;
        }
        drop(guard);
        // 3. The child's bytes become the new base; writers are not held meanwhile.
        let mut base = Vec::new();
        loop {
            let chunk = child.read_chunk().await?;
            if chunk.is_empty() {
                break;
            }
            base.extend_from_slice(&chunk);
        }
        if !child.wait().await? {
            return Err(io::Error::other("the rewrite child failed"));
        }
        let mut m = self.manifest.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let base_file = AofFile {
            name: manifest::base_name(&self.appendfilename, m.curr_base_seq + 1, preamble),
            seq: m.curr_base_seq + 1,
            kind: FileType::Base,
        };
        write_synced(&self.dir, &base_file.name, &base).await?;
        // 4. The switch: the new base and the incr written since the fork; the rest goes.
        let _guard = self.flush_lock.lock().await;
        let old: Vec<AofFile> = m.load_order().cloned().chain(m.history.iter().cloned()).collect();
        m.curr_base_seq += 1;
        m.base = Some(base_file);
        m.incrs.retain(|f| f.seq >= new_incr.seq);
        m.history.clear();
        persist_manifest(&self.dir, &self.appendfilename, &m).await?;
        for f in old {
            if m.load_order().all(|n| n.name != f.name) {
                let _ = self.dir.remove(&f.name).await;
            }
        }
        let _ = self.dir.sync_dir().await;
        *self.manifest.lock().unwrap_or_else(|e| e.into_inner()) = m;
        let mut s = shared.lock();
        let a = &mut s.aof;
        a.base_size = base.len() as u64;
        a.history_size = 0;
        a.rewrites += 1;
        a.last_rewrite_ok = true;
        a.rewrite_base_size = a.current_size();
        a.last_rewrite_time_secs = 0;
        Ok(())
    }
}

/// Writes a new base and an empty incr file after `m`'s, switches the manifest to them and
/// removes the old files. A crash before the rename leaves the old manifest, whose files are
/// intact.
async fn switch_files<D: Disk>(
    dir: &D,
    appendfilename: &str,
    mut m: Manifest,
    base: &[u8],
    preamble: bool,
) -> io::Result<(Manifest, D::File)> {
    let old: Vec<AofFile> = m.load_order().cloned().chain(m.history.iter().cloned()).collect();
    m.curr_base_seq += 1;
    m.curr_incr_seq += 1;
    let base_file = AofFile {
        name: manifest::base_name(appendfilename, m.curr_base_seq, preamble),
        seq: m.curr_base_seq,
        kind: FileType::Base,
    };
    let incr_file = AofFile {
        name: manifest::incr_name(appendfilename, m.curr_incr_seq),
        seq: m.curr_incr_seq,
        kind: FileType::Incr,
    };
    write_synced(dir, &base_file.name, base).await?;
    let incr = dir.open(&incr_file.name, true).await?;
    incr.set_len(0).await?;
    incr.sync_data().await?;
    m.base = Some(base_file);
    m.history.clear();
    m.incrs = vec![incr_file];
    persist_manifest(dir, appendfilename, &m).await?;
    for f in old {
        if m.load_order().all(|n| n.name != f.name) {
            let _ = dir.remove(&f.name).await;
        }
    }
    let _ = dir.sync_dir().await;
    Ok((m, incr))
}

/// Follows `appendonly` changed by CONFIG SET: turning it on writes a base of the current
/// dataset and a new incr file (Redis's `startAppendOnly`, its rewrite done in-process);
/// turning it off flushes, fsyncs and closes the AOF (`stopAppendOnly`).
pub async fn appendonly_watch<E: Env>(env: E, shared: Arc<Shared>) {
    loop {
        env.clock().sleep_ms(AOF_CRON_MS).await;
        let (want, on) = {
            let s = shared.lock();
            (s.config.hot.appendonly, s.aof.on)
        };
        if want && !on {
            start_appendonly(&env, &shared).await;
        } else if !want && on {
            stop_appendonly(&shared).await;
        }
    }
}

async fn start_appendonly<E: Env>(env: &E, shared: &Arc<Shared>) {
    let (dirname, appendfilename, base, preamble, snapshot_end) = {
        let mut s = shared.lock();
        let want = s.config.get("aof-use-rdb-preamble") == Some("yes");
        let base = rewrite_base(&s.dbs, s.now.unix_ms, want);
        // From here on writes are buffered for the new incr file.
        let fsync = s.config.hot.appendfsync;
        let a = &mut s.aof;
        a.fsync = fsync;
        a.on = true;
        a.rewrite_in_progress = true;
        a.buf.clear();
        a.selected_db = None;
        let end = a.buffered_end;
        s.propagate_enabled = true;
        s.propagated.clear();
        let dirname = s.config.get("appenddirname").unwrap_or("appendonlydir").to_string();
        let appendfilename = s.config.get("appendfilename").unwrap_or("appendonly.aof").to_string();
        (dirname, appendfilename, base.bytes, base.rdb_preamble, end)
    };
    let opened = async {
        let dir = env.disk().subdir(&dirname).await?;
        let name = manifest::manifest_name(&appendfilename);
        let m = if dir.list().await?.contains(&name) {
            Manifest::parse(&read_file(&dir, &name).await?).map_err(io::Error::other)?
        } else {
            Manifest::default()
        };
        let (m, incr) = switch_files(&dir, &appendfilename, m, &base, preamble).await?;
        io::Result::Ok((dir, m, incr))
    };
    let result = opened.await;
    let mut s = shared.lock();
    s.aof.rewrite_in_progress = false;
    match result {
        Ok((dir, m, incr)) => {
            let now_secs = s.now.unix_ms / 1000;
            let a = &mut s.aof;
            a.written_end = snapshot_end;
            a.fsynced_end = snapshot_end;
            a.base_size = base.len() as u64;
            a.history_size = 0;
            a.incr_size = 0;
            a.rewrites += 1;
            a.rewrite_base_size = a.current_size();
            a.last_fsync_secs = now_secs;
            let io = Arc::new(AofIo::new(env.clone(), dir, appendfilename, m, incr));
            shared.set_aof(Some(io.clone()));
            env.spawn(aof_cron(io, shared.clone()));
            s.log(Level::Notice, "Background append only file rewriting started");
            s.log(Level::Notice, "Background AOF rewrite finished successfully");
        }
        Err(e) => {
            s.aof.on = false;
            s.aof.buf.clear();
            s.propagate_enabled = s.repl.state.backlog.is_some();
            let _ = s.config.set_startup("appendonly", "no");
            s.log(
                Level::Warning,
                &format!("Redis needs to enable the AOF but can't trigger a background AOF rewrite operation: {e}"),
            );
        }
    }
}

async fn stop_appendonly(shared: &Arc<Shared>) {
    if let Some(io) = shared.aof() {
        io.flush_on_shutdown(shared).await;
    }
    shared.set_aof(None);
    let mut s = shared.lock();
    s.aof.on = false;
    s.aof.buf.clear();
    s.aof.fsync_in_progress = false;
    // The replication stream still wants the commands when there is a backlog.
    s.propagate_enabled = s.repl.state.backlog.is_some();
    if !s.propagate_enabled {
        s.propagated.clear();
    }
    s.log(Level::Notice, "AOF disabled");
}

impl<E: Env> AofDriver for AofIo<E> {
    fn flush_before_reply<'a>(&'a self, shared: &'a Shared) -> Pin<Box<dyn Future<Output = Flushed> + Send + 'a>> {
        Box::pin(self.wait_flushed(shared))
    }
    fn flush_on_shutdown<'a>(&'a self, shared: &'a Shared) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            let _g = self.flush_lock.lock().await;
            self.flush_once(shared, true).await;
            let _ = self.incr_file().sync_data().await;
        })
    }
}

/// Moves propagated commands into `aof_buf` (and the replication stream), in execution order.
pub fn feed(s: &mut Server) {
    s.feed_propagated();
}

/// The latency events of an AOF write (Redis's `flushAppendOnlyFile`): the write classified by
/// what else was going on, and under `always` the write-and-fsync as `aof-fsync-always` (the
/// env writes and fsyncs in one step, so both events carry its whole time).
fn record_write_latency(s: &mut Server, ms: u64, fsynced: bool) {
    let class = if s.aof.fsync_in_progress {
        "aof-write-pending-fsync"
    } else if s.child_kind != crate::persistence::snapshot::ChildKind::None {
        "aof-write-active-child"
    } else {
        "aof-write-alone"
    };
    s.latency_sample(class, ms);
    s.latency_sample("aof-write", ms);
    if fsynced {
        s.latency_sample("aof-fsync-always", ms);
    }
}

fn drain_log(s: &mut Server) {
    for line in std::mem::take(&mut s.aof.log) {
        s.log(Level::Warning, &line);
    }
    if let Some(f) = s.aof.fatal.clone() {
        if !s.log_lines.iter().any(|l| l.ends_with(&f)) {
            s.log(Level::Warning, &f);
        }
    }
}

/// Writes `data` at `offset` (looping over short writes), cuts a partial write back off, and
/// fsyncs when asked.
async fn write_plan<F: DiskFile>(file: &F, data: &[u8], offset: u64, fsync: bool) -> WriteOutcome {
    let mut written = 0;
    let mut error = None;
    while written < data.len() {
        match file.write_at(&data[written..], offset + written as u64).await {
            Ok(0) => {
                error = Some(28);
                break;
            }
            Ok(n) => written += n,
            Err(e) => {
                error = Some(errno_of(&e));
                break;
            }
        }
    }
    let mut truncated = false;
    if written > 0 && written < data.len() {
        truncated = file.set_len(offset).await.is_ok();
    }
    let fsync = if fsync && error.is_none() { Some(file.sync_data().await.map_err(|e| errno_of(&e))) } else { None };
    WriteOutcome { written, error, truncated, fsync }
}

async fn write_synced<D: Disk>(dir: &D, name: &str, data: &[u8]) -> io::Result<()> {
    let f = dir.open(name, true).await?;
    f.set_len(0).await?;
    crate::env::write_all_at(&f, data, 0).await?;
    f.sync_data().await
}

/// Writes the manifest to a temp name, fsyncs it, renames it over the old one and fsyncs the
/// directory (Redis's `persistAofManifest`).
async fn persist_manifest<D: Disk>(dir: &D, appendfilename: &str, m: &Manifest) -> io::Result<()> {
    let tmp = manifest::temp_manifest_name(appendfilename);
    write_synced(dir, &tmp, m.to_text().as_bytes()).await?;
    dir.rename(&tmp, &manifest::manifest_name(appendfilename)).await?;
    dir.sync_dir().await
}

/// The AOF cron: retries postponed and failed writes, starts background fsyncs.
pub async fn aof_cron<E: Env>(io: Arc<AofIo<E>>, shared: Arc<Shared>) {
    loop {
        io.env.clock().sleep_ms(AOF_CRON_MS).await;
        let (postponed, failed) = {
            let s = shared.lock();
            if s.aof.fatal.is_some() || !s.aof.on {
                return;
            }
            (s.aof.flush_postponed_start_ms != 0, !s.aof.last_write_ok)
        };
        if postponed || failed || !shared.lock().propagated.is_empty() {
            let _g = io.flush_lock.lock().await;
            io.flush_once(&shared, false).await;
        }
        io.maybe_bg_fsync(&shared);
        if shared.lock().aof.fatal.is_some() {
            shared.request_exit();
            return;
        }
        let due = {
            let mut s = shared.lock();
            // One child at a time: a scheduled rewrite waits for a running BGSAVE.
            let free = !s.aof.rewrite_in_progress && s.rdb.child_pid.is_none();
            let start = free && (std::mem::take(&mut s.aof.rewrite_scheduled) || auto_rewrite_due(&s));
            if start {
                s.aof.rewrite_in_progress = true;
            }
            start
        };
        if due {
            // Its own task: the cron goes on retrying writes and fsyncing meanwhile.
            let (io, shared) = (io.clone(), shared.clone());
            let env = io.env.clone();
            env.spawn(async move {
                let _ = io.rewrite_now(&shared).await;
            });
        }
    }
}

fn auto_rewrite_due(s: &Server) -> bool {
    let pct: u64 = s.config.get("auto-aof-rewrite-percentage").and_then(|v| v.parse().ok()).unwrap_or(0);
    let min: u64 = s.config.get("auto-aof-rewrite-min-size").and_then(|v| v.parse().ok()).unwrap_or(u64::MAX);
    let size = s.aof.current_size();
    if pct == 0 || size < min || !s.aof.last_write_ok {
        return false;
    }
    let base = s.aof.rewrite_base_size.max(1);
    size.saturating_sub(base) * 100 / base >= pct
}

/// Why the AOF could not be loaded; the server must not start.
#[derive(Debug)]
pub struct LoadError(pub String);

/// Opens the AOF at startup when `appendonly yes`: loads the manifest's files into `srv`
/// (commands run through the normal command path by a fake client), or creates a base and an
/// incr file when the directory holds none. Returns the handle the driver keeps.
pub async fn open<E: Env>(env: &E, srv: &mut Server) -> Result<Option<Arc<AofIo<E>>>, LoadError> {
    srv.aof.fsync = srv.config.hot.appendfsync;
    if !srv.config.hot.appendonly {
        return Ok(None);
    }
    let io_err = |what: &str, e: io::Error| LoadError(format!("{what}: {e}"));
    let dirname = srv.config.get("appenddirname").unwrap_or("appendonlydir").to_string();
    let appendfilename = srv.config.get("appendfilename").unwrap_or("appendonly.aof").to_string();
    let dir = env.disk().subdir(&dirname).await.map_err(|e| io_err("Can't open the append-only dir", e))?;
    let manifest_name = manifest::manifest_name(&appendfilename);
    let has_manifest =
        dir.list().await.map_err(|e| io_err("Can't list the append-only dir", e))?.contains(&manifest_name);
    let (m, incr) = if has_manifest {
        let text = read_file(&dir, &manifest_name).await.map_err(|e| io_err("Can't read the AOF manifest", e))?;
        let m = Manifest::parse(&text).map_err(LoadError)?;
        load_files(srv, &dir, &m).await?;
        let last = m.incrs.last().cloned();
        let incr = match last {
            Some(f) => dir.open(&f.name, true).await.map_err(|e| io_err("Can't open the AOF incr file", e))?,
            None => return Err(LoadError("The AOF manifest has no incr file".into())),
        };
        (m, incr)
    } else {
        create_on_start(srv, &dir, &appendfilename).await?
    };
    srv.aof.incr_size = incr.len().await.map_err(|e| io_err("Can't stat the AOF incr file", e))?;
    srv.aof.base_size = match &m.base {
        Some(b) => dir.open(&b.name, false).await.map_err(|e| io_err("open base", e))?.len().await.unwrap_or(0),
        None => 0,
    };
    let mut hist = 0;
    for f in &m.incrs[..m.incrs.len() - 1] {
        if let Ok(h) = dir.open(&f.name, false).await {
            hist += h.len().await.unwrap_or(0);
        }
    }
    srv.aof.history_size = hist;
    srv.aof.rewrite_base_size = srv.aof.current_size();
    srv.aof.on = true;
    srv.propagate_enabled = true;
    srv.aof.last_fsync_secs = srv.now.unix_ms / 1000;
    Ok(Some(Arc::new(AofIo::new(env.clone(), dir, appendfilename, m, incr))))
}

/// The directory holds no AOF: write a base of the current dataset and an empty incr file
/// (Redis's `aofOpenIfNeededOnServerStart`).
async fn create_on_start<D: Disk>(
    srv: &mut Server,
    dir: &D,
    appendfilename: &str,
) -> Result<(Manifest, D::File), LoadError> {
    let io_err = |e: io::Error| LoadError(format!("Can't create the AOF: {e}"));
    let want = srv.config.get("aof-use-rdb-preamble") == Some("yes");
    let base = rewrite_base(&srv.dbs, srv.now.unix_ms, want);
    if let Some(why) = &base.fallback {
        srv.log(Level::Notice, &format!("Writing the AOF base in command form: {why}"));
    }
    let base_file =
        AofFile { name: manifest::base_name(appendfilename, 1, base.rdb_preamble), seq: 1, kind: FileType::Base };
    let incr_file = AofFile { name: manifest::incr_name(appendfilename, 1), seq: 1, kind: FileType::Incr };
    write_synced(dir, &base_file.name, &base.bytes).await.map_err(io_err)?;
    srv.log(Level::Notice, &format!("Creating AOF base file {} on server start", base_file.name));
    let incr = dir.open(&incr_file.name, true).await.map_err(io_err)?;
    incr.sync_data().await.map_err(io_err)?;
    srv.log(Level::Notice, &format!("Creating AOF incr file {} on server start", incr_file.name));
    let m = Manifest {
        base: Some(base_file),
        history: Vec::new(),
        incrs: vec![incr_file],
        curr_base_seq: 1,
        curr_incr_seq: 1,
    };
    persist_manifest(dir, appendfilename, &m).await.map_err(io_err)?;
    Ok((m, incr))
}

/// Loads the base and the incr files in order. A truncated tail is cut off (only in the last
/// file, and only with `aof-load-truncated yes`); anything else wrong refuses the start.
async fn load_files<D: Disk>(srv: &mut Server, dir: &D, m: &Manifest) -> Result<(), LoadError> {
    let files: Vec<&AofFile> = m.load_order().collect();
    let load_truncated = srv.config.get("aof-load-truncated") != Some("no");
    let fake = srv.add_client(String::new(), String::new());
    srv.stats.numconnections -= 1;
    if let Some(c) = srv.clients.get_mut(&fake) {
        c.authenticated = true;
    }
    let mut result = Ok(());
    let mut truncated_any = false;
    for (i, f) in files.iter().enumerate() {
        let last = i + 1 == files.len();
        let bytes = match read_file(dir, &f.name).await {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound && f.kind == FileType::Incr && last => Vec::new(),
            Err(e) => {
                result =
                    Err(LoadError(format!("Fatal error: can't open the append log file {} for reading: {e}", f.name)));
                break;
            }
        };
        let kind = if f.kind == FileType::Base { "base" } else { "incr" };
        if bytes.is_empty() {
            continue;
        }
        let mut start = 0;
        if has_rdb_preamble(&bytes) {
            srv.log(Level::Notice, "Reading RDB base file on AOF loading...");
            let seed = crate::env::Rng::next_u64(&mut srv.rng);
            // Redis keeps keys that expired meanwhile when loading an AOF's preamble
            // (RDBFLAGS_AOF_PREAMBLE): the AOF's tail may still touch them.
            let opts = rdb::LoadOptions { skip_expired: false, ..rdb::LoadOptions::for_server(srv, seed) };
            match rdb::load(&bytes, &mut srv.dbs, &opts) {
                Ok(loaded) => {
                    start = loaded.len;
                    srv.log(Level::Notice, "Reading the remaining AOF tail...");
                }
                Err(e) => {
                    result = Err(LoadError(format!(
                        "Error reading the RDB base file {}, AOF loading aborted: {} at offset {}",
                        f.name, e.msg, e.offset
                    )));
                    break;
                }
            }
        }
        let end = parse_commands(&bytes, start, &mut |argv| {
            srv.process(fake, argv);
            if let Some(c) = srv.clients.get_mut(&fake) {
                c.out.buf.clear();
            }
        });
        match end {
            ParseEnd::Complete => {}
            ParseEnd::Truncated { valid_up_to } if load_truncated && last => {
                srv.log(Level::Warning, &format!("!!! Warning: short read while loading the AOF file {}!!!", f.name));
                srv.log(Level::Warning, &format!("!!! Truncating the AOF {} at offset {} !!!", f.name, valid_up_to));
                let cut = async {
                    let h = dir.open(&f.name, false).await?;
                    h.set_len(valid_up_to).await?;
                    h.sync_data().await
                };
                if let Err(e) = cut.await {
                    result = Err(LoadError(format!("Error truncating the AOF file {}: {e}", f.name)));
                    break;
                }
                truncated_any = true;
            }
            ParseEnd::Truncated { valid_up_to } => {
                let why = if last {
                    format!(
                        "Unexpected end of file reading the append only file {} (at offset {valid_up_to}). You can: 1) \
                         Make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>. 2) \
                         Alternatively you can set the 'aof-load-truncated' configuration option to yes and restart \
                         the server.",
                        f.name
                    )
                } else {
                    format!("Fatal error: the truncated file is not the last file ({}, offset {valid_up_to})", f.name)
                };
                result = Err(LoadError(why));
                break;
            }
            ParseEnd::Bad { offset } => {
                result = Err(LoadError(format!(
                    "Bad file format reading the append only file {} at offset {offset}: make a backup of your AOF \
                     file, then use ./redis-check-aof --fix <filename.manifest>",
                    f.name
                )));
                break;
            }
        }
        srv.log(Level::Notice, &format!("DB loaded from {kind} file {}: 0.000 seconds", f.name));
    }
    srv.remove_client(fake);
    result?;
    if truncated_any {
        srv.log(Level::Warning, "AOF loaded anyway because aof-load-truncated is enabled");
    }
    srv.log(Level::Notice, "DB loaded from append only file: 0.000 seconds");
    Ok(())
}

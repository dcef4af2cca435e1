//! RDB snapshots on disk: BGSAVE through a forked child, blocking SAVE, save points from
//! `serverCron`, the startup load, and the MISCONF gate after a failed background save.
//!
//! Why the parent writes the file: the child (a real `fork()`, or the simulator's in-memory
//! stand-in) only produces bytes; the file I/O goes through the `Disk` door in the parent, so
//! that the same code runs over the real disk and over `SimDisk`, whose crash and fsync faults
//! then reach every step of the sequence: write `temp-<pid>.rdb`, fsync it, rename it over
//! `dbfilename`, fsync the directory. Until the rename is durable the old file is intact, so a
//! crash at any step leaves either the complete old snapshot or the complete new one.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use super::rdb::{self, LoadOptions, RdbAux, SaveOptions};
use crate::engine::db::Db;
use crate::env::{write_all_at, Clock, Disk, DiskFile, Env, SnapshotChild};
use crate::server::driver::{now, Shared};
use crate::server::log::{self, Level};
use crate::server::Server;

/// After a failed BGSAVE, save points wait this long before trying again (Redis's
/// `CONFIG_BGSAVE_RETRY_DELAY`), in seconds.
pub const CONFIG_BGSAVE_RETRY_DELAY_SECS: u64 = 5;

/// Redis's reply to writes while the last background save failed.
pub const MISCONF_RDB: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to \
persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report \
errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for \
details about the RDB error.";

/// Which kind of child process the server has (Redis's `server.child_type`); at most one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ChildKind {
    #[default]
    None,
    Rdb,
    Aof,
}

/// Starts a snapshot child; the driver's implementation forks through the env and spawns the
/// parent side that writes the file and calls [`Server::bgsave_done`].
pub trait Forker: Send + 'static {
    /// Forks a child that writes the request's dataset; returns the child's pid.
    fn bgsave(&self, req: BgsaveRequest<'_>) -> io::Result<u32>;
}

/// What a snapshot child writes and where the parent side puts it.
pub struct BgsaveRequest<'a> {
    pub dbs: &'a [Db],
    pub aux: RdbAux,
    pub opts: SaveOptions,
    /// The file the parent side renames the finished snapshot to (`dbfilename`).
    pub target: String,
    /// Set to true: the parent side kills the child and discards the file.
    pub cancel: Arc<AtomicBool>,
    /// `rdb-save-incremental-fsync`: sync the file every this many bytes (0: only at the end).
    pub autosync_bytes: u64,
}

/// A server without a driver (unit tests) cannot fork.
pub struct NoFork;

impl Forker for NoFork {
    fn bgsave(&self, _: BgsaveRequest<'_>) -> io::Result<u32> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "no fork without a driver"))
    }
}

/// Work that blocks the whole server while the driver does the file I/O (SAVE, DEBUG RELOAD,
/// SHUTDOWN's final save): the command serialized under the lock, the driver writes or reads
/// the file with every other client and cron held, then [`Server::finish_disk_job`] replies.
#[derive(Debug)]
pub struct DiskJob {
    /// Who gets the reply.
    pub client: u64,
    pub kind: DiskJobKind,
    /// Inside EXEC: where in the client's output the reply goes (the replies of the
    /// transaction's later commands are already there).
    pub reply_at: Option<usize>,
}

impl DiskJob {
    /// A job whose reply goes to `client`, in its place when it runs inside EXEC.
    pub fn for_client(client: &crate::server::client::Client, kind: DiskJobKind) -> DiskJob {
        DiskJob { client: client.id, kind, reply_at: client.multi.is_some().then_some(client.out.buf.len()) }
    }
}

#[derive(Debug)]
pub enum DiskJobKind {
    Save {
        bytes: Vec<u8>,
    },
    /// DEBUG RELOAD: save `save` first when present, else load the file as it is; flush
    /// first unless `noflush`.
    Reload {
        save: Option<Vec<u8>>,
        noflush: bool,
    },
    Shutdown {
        bytes: Vec<u8>,
    },
    /// CONFIG REWRITE: the old file (`path`, absolute) is read, `plan` applied to it and the
    /// result written over it atomically.
    ConfigRewrite {
        path: String,
        plan: Vec<crate::server::config::rewrite::Directive>,
    },
    /// FLUSHALL with save points writes the empty dataset; FLUSHALL already replied.
    FlushallSave {
        bytes: Vec<u8>,
    },
}

/// What the driver's I/O for a [`DiskJob`] gave: the bytes read (DEBUG RELOAD NOSAVE), or the
/// error text.
pub type DiskJobResult = Result<Option<Vec<u8>>, String>;

/// The snapshot state of the server (the `rdb_*` fields of Redis's `server`).
#[derive(Debug)]
pub struct RdbState {
    pub child_pid: Option<u32>,
    pub cancel: Option<Arc<AtomicBool>>,
    /// BGSAVE SCHEDULE while another child ran: start one when it is gone.
    pub bgsave_scheduled: bool,
    pub dirty_before_bgsave: u64,
    pub save_start_mono_ms: u64,
    pub last_bgsave_ok: bool,
    pub last_bgsave_try_unix_secs: u64,
    /// Seconds the last background save took, -1 before the first.
    pub last_bgsave_time_secs: i64,
    pub saves: u64,
    pub last_load_keys_loaded: u64,
    pub last_load_keys_expired: u64,
    pub job: Option<DiskJob>,
    /// The aux fields of the snapshot loaded at startup: replication resumes from its
    /// repl-id and offset (PSYNC after a restart).
    pub loaded_aux: Option<RdbAux>,
}

impl Default for RdbState {
    fn default() -> Self {
        RdbState {
            child_pid: None,
            cancel: None,
            bgsave_scheduled: false,
            dirty_before_bgsave: 0,
            save_start_mono_ms: 0,
            last_bgsave_ok: true,
            last_bgsave_try_unix_secs: 0,
            last_bgsave_time_secs: -1,
            saves: 0,
            last_load_keys_loaded: 0,
            last_load_keys_expired: 0,
            job: None,
            loaded_aux: None,
        }
    }
}

/// The `save` directive as (seconds, changes) pairs.
pub fn save_points(config: &str) -> Vec<(u64, u64)> {
    let words: Vec<u64> = config.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    words.chunks_exact(2).map(|p| (p[0], p[1])).collect()
}

impl Server {
    pub fn rdb_filename(&self) -> String {
        self.config.get("dbfilename").unwrap_or("dump.rdb").to_string()
    }

    fn has_save_points(&self) -> bool {
        !save_points(self.config.get("save").unwrap_or("")).is_empty()
    }

    /// The aux fields written at the head of a snapshot.
    pub fn rdb_aux(&self) -> RdbAux {
        RdbAux {
            redis_ver: "7.0.15".into(),
            redis_bits: 64,
            ctime: (self.now.unix_ms / 1000) as i64,
            used_mem: self.sys.used_memory() as i64,
            // Redis's `rdbPopulateSaveInfo`: a master records its own stream position, so a
            // restarted node (or a replica loading it) can continue with PSYNC.
            repl_stream_db: Some(0),
            repl_id: Some(self.repl.state.replid.clone()),
            repl_offset: Some(self.repl.state.master_repl_offset as i64),
            aof_base: false,
            other: Vec::new(),
        }
    }

    pub fn rdb_save_options(&self) -> SaveOptions {
        SaveOptions::for_server(self)
    }

    /// The dataset as RDB bytes, as of now.
    pub fn rdb_bytes(&self) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        rdb::save(&mut out, &self.dbs, &self.rdb_aux(), &self.rdb_save_options())?;
        Ok(out)
    }

    /// Redis's `REDIS_AUTOSYNC_BYTES` under `rdb-save-incremental-fsync yes`, else 0.
    pub fn rdb_autosync_bytes(&self) -> u64 {
        if self.config.get("rdb-save-incremental-fsync") == Some("no") {
            0
        } else {
            AUTOSYNC_BYTES
        }
    }

    pub fn rdb_child_running(&self) -> bool {
        self.child_kind != ChildKind::None
    }

    /// Redis's `rdbSaveBackground`: forks the snapshot child. The reply text on failure.
    pub fn bgsave_start(&mut self) -> Result<u32, String> {
        if self.rdb_child_running() {
            return Err("ERR Background save already in progress".into());
        }
        self.rdb.dirty_before_bgsave = self.dirty;
        self.rdb.last_bgsave_try_unix_secs = self.now.unix_ms / 1000;
        let cancel = Arc::new(AtomicBool::new(false));
        let req = BgsaveRequest {
            dbs: &self.dbs,
            aux: self.rdb_aux(),
            opts: self.rdb_save_options(),
            target: self.rdb_filename(),
            cancel: cancel.clone(),
            autosync_bytes: self.rdb_autosync_bytes(),
        };
        let fork_start_us = self.sys.mono_us();
        match self.forker.bgsave(req) {
            Ok(pid) => {
                self.stats.total_forks += 1;
                self.stats.latest_fork_usec = self.sys.mono_us().saturating_sub(fork_start_us);
                self.latency_sample("fork", self.stats.latest_fork_usec / 1000);
                self.log(Level::Notice, &format!("Background saving started by pid {pid}"));
                // Redis counts saves started (rdb_saves), whatever their outcome.
                self.rdb.saves += 1;
                self.child_kind = ChildKind::Rdb;
                self.rdb.child_pid = Some(pid);
                self.rdb.cancel = Some(cancel);
                self.rdb.save_start_mono_ms = self.now.mono_ms;
                Ok(pid)
            }
            Err(e) => {
                self.rdb.last_bgsave_ok = false;
                self.log(Level::Warning, &format!("Can't save in background: fork: {e}"));
                Err(format!("ERR {e}"))
            }
        }
    }

    /// Redis's `backgroundSaveDoneHandler`: the parent side finished writing (or failed).
    pub fn bgsave_done(&mut self, pid: u32, result: Result<(), String>) {
        if self.rdb.child_pid != Some(pid) {
            return;
        }
        match result {
            Ok(()) => {
                let line = log::format_line(pid, 'C', self.now.unix_ms, Level::Notice, "DB saved on disk");
                if Level::Notice as u8 >= self.config.hot.loglevel {
                    self.log_lines.push(line);
                }
                self.log(Level::Notice, "Background saving terminated with success");
                self.dirty = self.dirty.saturating_sub(self.rdb.dirty_before_bgsave);
                self.lastsave_unix_secs = self.now.unix_ms / 1000;
                self.rdb.last_bgsave_ok = true;
            }
            Err(e) => {
                self.log(Level::Warning, &e);
                self.log(Level::Warning, "Background saving error");
                self.rdb.last_bgsave_ok = false;
            }
        }
        self.rdb.last_bgsave_time_secs = (self.now.mono_ms.saturating_sub(self.rdb.save_start_mono_ms) / 1000) as i64;
        self.child_kind = ChildKind::None;
        self.rdb.child_pid = None;
        self.rdb.cancel = None;
        if self.repl.disk_sync.as_ref().is_some_and(|d| d.pid == pid) {
            self.disk_sync_done(self.rdb.last_bgsave_ok);
        }
    }

    /// FLUSHALL's part (Redis's `flushAllDataAndResetRDB`): a running snapshot child is
    /// killed, and with save points the now empty dataset is saved at once, so that a restart
    /// cannot bring the flushed keys back.
    pub fn flushall_reset_rdb(&mut self, client: u64) {
        if self.child_kind == ChildKind::Rdb {
            self.kill_rdb_child();
        }
        if !self.has_save_points() {
            return;
        }
        match self.rdb_bytes() {
            Ok(bytes) => {
                self.rdb.job = Some(DiskJob { client, kind: DiskJobKind::FlushallSave { bytes }, reply_at: None })
            }
            Err(e) => self.log(Level::Warning, &format!("Write error saving DB on disk: {e}")),
        }
    }

    /// Kills the snapshot child (Redis's `killRDBChild`); its file is discarded.
    pub fn kill_rdb_child(&mut self) {
        if let Some(c) = self.rdb.cancel.take() {
            c.store(true, Ordering::Relaxed);
        }
        if self.child_kind == ChildKind::Rdb {
            self.child_kind = ChildKind::None;
        }
        self.rdb.child_pid = None;
        // Replicas waiting for this snapshot will not get it.
        self.disk_sync_done(false);
    }

    /// The snapshot part of `serverCron`: a scheduled BGSAVE, then the save points.
    pub fn snapshot_cron(&mut self) {
        if self.rdb_child_running() || self.rdb.job.is_some() {
            return;
        }
        let now_secs = self.now.unix_ms / 1000;
        let retry_ok = self.rdb.last_bgsave_ok
            || now_secs.saturating_sub(self.rdb.last_bgsave_try_unix_secs) > CONFIG_BGSAVE_RETRY_DELAY_SECS;
        if self.rdb.bgsave_scheduled && retry_ok {
            self.rdb.bgsave_scheduled = false;
            let _ = self.bgsave_start();
            return;
        }
        let since_save = now_secs.saturating_sub(self.lastsave_unix_secs);
        let due = save_points(self.config.get("save").unwrap_or(""))
            .into_iter()
            .find(|&(secs, changes)| self.dirty >= changes && since_save > secs);
        if let Some((secs, changes)) = due {
            if retry_ok {
                self.log(Level::Notice, &format!("{changes} changes in {secs} seconds. Saving..."));
                let _ = self.bgsave_start();
            }
        }
    }

    /// Redis's `writeCommandsDeniedByDiskError` for RDB: the MISCONF text when writes must
    /// be refused.
    pub fn rdb_denies_writes(&self) -> Option<&'static str> {
        // The last BGSAVE's outcome first: the config is only read once it failed.
        if self.rdb.last_bgsave_ok || !self.is_master() {
            return None;
        }
        let stop = self.config.get("stop-writes-on-bgsave-error") != Some("no");
        (stop && self.has_save_points()).then_some(MISCONF_RDB)
    }

    /// Loads `bytes` into the dataset (after the caller flushed it, unless merging), recording
    /// the counts INFO shows. The error names the offset.
    pub fn load_rdb_bytes(&mut self, bytes: &[u8]) -> Result<rdb::Loaded, rdb::RdbError> {
        self.load_rdb_bytes_merging(bytes, false)
    }

    /// As `load_rdb_bytes`; `merge`: keys already present are replaced by the file's.
    pub fn load_rdb_bytes_merging(&mut self, bytes: &[u8], merge: bool) -> Result<rdb::Loaded, rdb::RdbError> {
        let seed = crate::env::Rng::next_u64(&mut self.rng);
        let opts = LoadOptions { allow_dup: merge, ..LoadOptions::for_server(self, seed) };
        let loaded = rdb::load(bytes, &mut self.dbs, &opts);
        self.forget_added_keys();
        let loaded = loaded?;
        self.rdb.last_load_keys_loaded = loaded.keys_loaded;
        self.rdb.last_load_keys_expired = loaded.keys_expired;
        Ok(loaded)
    }

    /// The reply of a blocking disk job, once the driver did its I/O.
    pub fn finish_disk_job(&mut self, job: DiskJob, result: DiskJobResult) {
        let client = job.client;
        let reply: Result<(), String> = match (job.kind, result) {
            (DiskJobKind::Reload { save: None, noflush, .. }, Err(e)) => {
                // NOSAVE and the file cannot be read: flushed all the same, as Redis.
                self.log(Level::Warning, &format!("Failed opening the RDB file {}: {e}", self.rdb_filename()));
                self.reload(None, noflush)
            }
            (kind, Err(e)) => {
                // A failed blocking save leaves rdb_last_bgsave_status alone, as rdbSave does.
                match kind {
                    DiskJobKind::ConfigRewrite { .. } => {
                        self.log(Level::Warning, &format!("CONFIG REWRITE failed: {e}"))
                    }
                    _ => self.log(Level::Warning, &e),
                }
                match kind {
                    DiskJobKind::Shutdown { .. } => {
                        self.log(Level::Warning, "Error trying to save the DB, can't exit.");
                        Err("ERR Errors trying to SHUTDOWN. Check logs.".into())
                    }
                    DiskJobKind::FlushallSave { .. } => return,
                    DiskJobKind::ConfigRewrite { .. } => Err(format!("ERR Rewriting config file: {e}")),
                    _ => Err("ERR".into()),
                }
            }
            (DiskJobKind::ConfigRewrite { .. }, Ok(_)) => {
                self.log(Level::Notice, "CONFIG REWRITE executed with success.");
                Ok(())
            }
            (DiskJobKind::Save { .. }, Ok(_)) => {
                self.saved_now();
                Ok(())
            }
            (DiskJobKind::FlushallSave { .. }, Ok(_)) => {
                self.saved_now();
                return;
            }
            (DiskJobKind::Shutdown { .. }, Ok(_)) => {
                self.saved_now();
                self.shutdown = Some(crate::server::Shutdown::Requested { save: Some(true) });
                if let Some(c) = self.clients.get_mut(&client) {
                    c.close_after_reply = true;
                }
                return;
            }
            (DiskJobKind::Reload { save, noflush, .. }, Ok(read)) => {
                if save.is_some() {
                    self.saved_now();
                }
                self.reload(save.or(read), noflush)
            }
        };
        let Some(c) = self.clients.get_mut(&client) else { return };
        match reply {
            Ok(()) => c.out.ok(),
            Err(e) => {
                c.out.error(&e);
                self.count_error(&e);
            }
        }
    }

    /// DEBUG RELOAD's second half: flush (unless NOFLUSH), then load `bytes` (None: the file
    /// could not be read). Keys already present are overwritten by the file's (MERGE; without
    /// it Redis would abort on a duplicate).
    fn reload(&mut self, bytes: Option<Vec<u8>>, noflush: bool) -> Result<(), String> {
        const LOAD_FAILED: &str = "ERR Error trying to load the RDB dump";
        if !noflush {
            for db in &mut self.dbs {
                db.clear();
            }
        }
        let Some(bytes) = bytes else { return Err(LOAD_FAILED.into()) };
        match self.load_rdb_bytes_merging(&bytes, noflush) {
            Ok(_) => {
                self.log(Level::Warning, "DB reloaded by DEBUG RELOAD");
                Ok(())
            }
            Err(e) => {
                self.log(Level::Warning, &format!("Internal error in RDB reading: {e}"));
                Err(LOAD_FAILED.into())
            }
        }
    }

    /// A blocking save reached the disk (Redis's `rdbSave` success path).
    fn saved_now(&mut self) {
        self.log(Level::Notice, "DB saved on disk");
        self.dirty = 0;
        self.lastsave_unix_secs = self.now.unix_ms / 1000;
        self.rdb.last_bgsave_ok = true;
    }
}

/// Bytes written between syncs under `rdb-save-incremental-fsync yes` (Redis 7.0's
/// `REDIS_AUTOSYNC_BYTES`): the final sync then has little left to flush, so it does not
/// hold the disk (and, measured, the parent's command loop) for a long stretch.
pub const AUTOSYNC_BYTES: u64 = 4 * 1024 * 1024;

/// Writes a snapshot durably: the child's bytes into `temp-<pid>.rdb`, fsync, rename over
/// `target`, fsync the directory. On any error the child is killed, the temp file removed
/// and `target` left as it was.
pub async fn write_snapshot<D: Disk, C: SnapshotChild>(
    disk: &D,
    child: &mut C,
    target: &str,
    cancel: &AtomicBool,
) -> Result<u64, String> {
    write_snapshot_autosync(disk, child, target, cancel, 0).await
}

/// As [`write_snapshot`], also syncing the temp file every `autosync_bytes` (0: never before
/// the end), as Redis's `rdb-save-incremental-fsync`.
pub async fn write_snapshot_autosync<D: Disk, C: SnapshotChild>(
    disk: &D,
    child: &mut C,
    target: &str,
    cancel: &AtomicBool,
    autosync_bytes: u64,
) -> Result<u64, String> {
    let tmp = format!("temp-{}.rdb", child.pid());
    let r = write_snapshot_steps(disk, child, &tmp, target, cancel, autosync_bytes).await;
    if r.is_err() {
        child.kill();
        let _ = child.wait().await;
        let _ = disk.remove(&tmp).await;
    }
    r
}

async fn write_snapshot_steps<D: Disk, C: SnapshotChild>(
    disk: &D,
    child: &mut C,
    tmp: &str,
    target: &str,
    cancel: &AtomicBool,
    autosync_bytes: u64,
) -> Result<u64, String> {
    let open_err = |e: io::Error| format!("Failed opening the temp RDB file {tmp} for saving: {}", strerror(&e));
    let f = disk.open(tmp, true).await.map_err(open_err)?;
    f.set_len(0).await.map_err(open_err)?;
    let mut off = 0u64;
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(CANCELLED.into());
        }
        let chunk = child.read_chunk().await.map_err(|e| format!("reading from the child: {e}"))?;
        if chunk.is_empty() {
            break;
        }
        write_all_at(&f, &chunk, off).await.map_err(|e| write_error(&e))?;
        let synced_upto = off.checked_div(autosync_bytes);
        off += chunk.len() as u64;
        if synced_upto.is_some_and(|upto| off / autosync_bytes > upto) {
            f.sync_data().await.map_err(|e| write_error(&e))?;
        }
    }
    if !child.wait().await.map_err(|e| write_error(&e))? {
        return Err("the child failed".into());
    }
    f.sync_data().await.map_err(|e| write_error(&e))?;
    drop(f);
    // Checked again right before the rename: a save killed by FLUSHALL must not put the
    // flushed keys back over the dump FLUSHALL wrote.
    if cancel.load(Ordering::Relaxed) {
        return Err(CANCELLED.into());
    }
    disk.rename(tmp, target)
        .await
        .map_err(|e| format!("Error moving temp DB file {tmp} on the final destination {target}: {}", strerror(&e)))?;
    disk.sync_dir().await.map_err(|e| write_error(&e))?;
    Ok(off)
}

/// Why a save killed by SHUTDOWN or FLUSHALL stopped.
const CANCELLED: &str = "the snapshot was cancelled";

/// C's `strerror` text of an I/O error, without Rust's " (os error N)".
fn strerror(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

fn write_error(e: &io::Error) -> String {
    format!("Write error saving DB on disk: {}", strerror(e))
}

/// Bytes already produced, handed out at once: SAVE's "child" is the server itself.
pub struct ReadyBytes {
    pub pid: u32,
    pub bytes: Option<Vec<u8>>,
}

impl SnapshotChild for ReadyBytes {
    fn pid(&self) -> u32 {
        self.pid
    }
    async fn read_chunk(&mut self) -> io::Result<Vec<u8>> {
        Ok(self.bytes.take().unwrap_or_default())
    }
    async fn wait(&mut self) -> io::Result<bool> {
        Ok(true)
    }
    fn kill(&mut self) {
        self.bytes = None;
    }
}

/// The driver's [`Forker`]: forks through the env and spawns the parent side.
pub struct EnvForker<E: Env> {
    pub env: E,
    pub shared: Weak<Shared>,
}

impl<E: Env> Forker for EnvForker<E> {
    fn bgsave(&self, req: BgsaveRequest<'_>) -> io::Result<u32> {
        let BgsaveRequest { dbs, aux, opts, target, cancel, autosync_bytes } = req;
        let mut child = self.env.fork_snapshot(|mut w| rdb::save(&mut w, dbs, &aux, &opts))?;
        let pid = child.pid();
        let (env, shared) = (self.env.clone(), self.shared.clone());
        self.env.spawn(async move {
            let r = write_snapshot_autosync(env.disk(), &mut child, &target, &cancel, autosync_bytes).await;
            if let Some(shared) = shared.upgrade() {
                let mut s = shared.lock();
                s.set_now(now(env.clock()));
                s.bgsave_done(pid, r.map(|_| ()));
            }
        });
        Ok(pid)
    }
}

/// Runs a blocking disk job's I/O (the caller holds every other client back).
pub async fn run_disk_job<E: Env>(env: &E, job: &DiskJob, target: &str) -> DiskJobResult {
    let bytes = match &job.kind {
        DiskJobKind::Save { bytes } | DiskJobKind::Shutdown { bytes } | DiskJobKind::FlushallSave { bytes } => {
            Some(bytes)
        }
        DiskJobKind::Reload { save, .. } => save.as_ref(),
        DiskJobKind::ConfigRewrite { path, plan } => {
            return rewrite_config_file(env, path, plan).await.map(|()| None).map_err(|e| strerror(&e));
        }
    };
    let Some(bytes) = bytes else {
        return crate::env::read_file(env.disk(), target).await.map(Some).map_err(|e| e.to_string());
    };
    let mut src = ReadyBytes { pid: env.process_id(), bytes: Some(bytes.clone()) };
    write_snapshot(env.disk(), &mut src, target, &AtomicBool::new(false)).await.map(|_| None)
}

/// CONFIG REWRITE's I/O: the old file (a missing one is rewritten from scratch), the plan
/// applied, the new one in place through a temporary file.
async fn rewrite_config_file<E: Env>(
    env: &E,
    path: &str,
    plan: &[crate::server::config::rewrite::Directive],
) -> io::Result<()> {
    let (dir, name) = path.rsplit_once('/').map_or(("", path), |(d, n)| (if d.is_empty() { "/" } else { d }, n));
    let disk = env.disk_at(dir)?;
    let old = match crate::env::read_file(&disk, name).await {
        Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let text = crate::server::config::rewrite::merge(old.as_deref(), plan);
    crate::env::replace_file(&disk, name, "redsim", text.as_bytes()).await
}

/// Loads `dbfilename` at startup when there is no AOF (Redis's `loadDataFromDisk`). A missing
/// file is an empty dataset; a corrupt one is an error naming the file and the offset, and the
/// server must not start.
pub async fn load_at_startup<E: Env>(env: &E, s: &mut Server) -> Result<(), String> {
    if s.config.hot.appendonly {
        return Ok(());
    }
    let name = s.rdb_filename();
    let start_ms = env.clock().now_ms();
    let bytes = match crate::env::read_file(env.disk(), &name).await {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            let msg = format!("Fatal error loading the DB: {e}. Exiting.");
            s.log(Level::Warning, &msg);
            return Err(msg);
        }
    };
    match s.load_rdb_bytes(&bytes) {
        Ok(loaded) => {
            let age = (s.now.unix_ms / 1000) as i64 - loaded.aux.ctime;
            s.log(Level::Notice, &format!("Loading RDB produced by version {}", loaded.aux.redis_ver));
            s.log(Level::Notice, &format!("RDB age {age} seconds"));
            s.log(
                Level::Notice,
                &format!("RDB memory usage when created {:.2} Mb", loaded.aux.used_mem as f64 / (1024.0 * 1024.0)),
            );
            s.log(
                Level::Notice,
                &format!(
                    "Done loading RDB, keys loaded: {}, keys expired: {}.",
                    loaded.keys_loaded, loaded.keys_expired
                ),
            );
            let secs = env.clock().now_ms().saturating_sub(start_ms) as f64 / 1000.0;
            s.log(Level::Notice, &format!("DB loaded from disk: {secs:.3} seconds"));
            s.restore_repl_history(&loaded.aux);
            s.rdb.loaded_aux = Some(loaded.aux);
            Ok(())
        }
        Err(e) => {
            let msg = format!("Fatal error loading the DB ({name}): {e}. Exiting.");
            s.log(Level::Warning, &msg);
            Err(msg)
        }
    }
}

#[cfg(test)]
mod tests;

//! The append-only file, as Redis 7.0 keeps it: every propagated write is appended to `aof_buf`
//! (RESP, with SELECT when the db changes), and `aof_buf` reaches the file before the replies of
//! the commands in it are sent, because a reply promises that the write is in the AOF.
//!
//! This module is sans-IO: [`Aof`] holds the state and decides (a [`FlushPlan`]), the driver
//! (`io.rs`) performs the writes and fsyncs and reports back. Redis's `flushAppendOnlyFile`
//! rules are kept: `always` fsyncs before replying and exits on any write or fsync error;
//! `everysec` fsyncs in the background once a second and, while a background fsync runs,
//! postpones writes for up to 2 s (the documented loss window), then writes anyway and counts
//! `aof_delayed_fsync`; `no` never fsyncs. A failed write under `everysec`/`no` keeps the
//! unwritten bytes in `aof_buf`, marks `aof_last_write_status:err` and refuses writes with
//! MISCONF until a write succeeds again.

pub mod check;
pub mod cmd;
pub mod io;
pub mod load;
pub mod manifest;
pub mod rewrite;

use bytes::Bytes;

use crate::server::config::AppendFsync;

/// While a background fsync runs, `everysec` holds writes back at most this long.
pub const AOF_MAX_FLUSH_POSTPONE_MS: u64 = 2000;
/// Write errors are logged at most once per this many ms (Redis's `AOF_WRITE_LOG_ERROR_RATE`).
pub const AOF_WRITE_LOG_ERROR_RATE_MS: u64 = 30_000;

const ENOSPC: i32 = 28;

/// Bugs the simulator plants to prove its checkers; the real build never sets one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlantedBug {
    /// Acknowledge without fsyncing: `always` skips its fsync, `everysec` its background fsync.
    SkipFsync,
    /// Treat a failed fsync as a successful one.
    IgnoreFsyncError,
}

impl PlantedBug {
    pub fn parse(s: &str) -> Option<PlantedBug> {
        match s {
            "aof-skip-fsync" => Some(PlantedBug::SkipFsync),
            "aof-ignore-fsync-error" => Some(PlantedBug::IgnoreFsyncError),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            PlantedBug::SkipFsync => "aof-skip-fsync",
            PlantedBug::IgnoreFsyncError => "aof-ignore-fsync-error",
        }
    }
}

/// Appends `argv` as a RESP array of bulk strings (the AOF's command form).
pub fn encode_command(out: &mut Vec<u8>, argv: &[Bytes]) {
    encode_parts(out, argv.iter().map(|a| &a[..]));
}

/// As [`encode_command`], for borrowed arguments.
pub fn encode_parts<'a>(out: &mut Vec<u8>, argv: impl ExactSizeIterator<Item = &'a [u8]>) {
    out.push(b'*');
    out.extend_from_slice(itoa::Buffer::new().format(argv.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in argv {
        out.push(b'$');
        out.extend_from_slice(itoa::Buffer::new().format(a.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// What the driver must do to flush `aof_buf` now.
#[derive(Debug, PartialEq, Eq)]
pub enum FlushPlan {
    /// Nothing buffered.
    Idle,
    /// `everysec` with a background fsync running for less than 2 s: write later. Replies
    /// still go out (Redis's documented window).
    Postponed,
    /// Write `data` at `file_offset` of the incr file (looping over short writes), then fsync
    /// when `fsync` (`always`).
    Write { data: Vec<u8>, file_offset: u64, fsync: bool },
}

/// What happened to a [`FlushPlan::Write`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Bytes written before the first error (all of them when `error` is None).
    pub written: usize,
    /// The errno of the write that failed.
    pub error: Option<i32>,
    /// After a short write: whether truncating the file back to its old size worked.
    pub truncated: bool,
    /// The fsync's result when the plan asked for one and the write succeeded.
    pub fsync: Option<Result<(), i32>>,
}

/// The AOF state of a server (Redis's `server.aof_*`).
#[derive(Debug, Default)]
pub struct Aof {
    /// `aof_state == AOF_ON`: propagated writes are appended.
    pub on: bool,
    pub fsync: AppendFsync,
    /// no-appendfsync-on-rewrite with a rewrite running: no fsyncs.
    pub no_fsync: bool,
    /// Commands not yet written (`aof_buf`).
    pub buf: Vec<u8>,
    /// The db the last buffered command ran in (`aof_selected_db`).
    pub selected_db: Option<usize>,
    /// Logical offsets since start: bytes ever buffered, written, and fsynced. A client
    /// whose commands end at offset `o` may be answered once `written_end >= o` (`always`:
    /// `fsynced_end >= o`).
    pub buffered_end: u64,
    pub written_end: u64,
    pub fsynced_end: u64,
    /// Size of the current incr file: where the next write goes.
    pub incr_size: u64,
    /// Size of the base file (`aof_base_size` in INFO).
    pub base_size: u64,
    /// Sizes of older incr files still in the manifest.
    pub history_size: u64,
    pub fsync_in_progress: bool,
    /// Unix seconds of the last fsync started (`aof_last_fsync`).
    pub last_fsync_secs: u64,
    /// Monotonic ms since which a write is postponed; 0 when none (`aof_flush_postponed_start`).
    pub flush_postponed_start_ms: u64,
    pub delayed_fsync: u64,
    pub last_write_ok: bool,
    pub last_write_errno: i32,
    /// The last background fsync's result (`aof_bio_fsync_status`).
    pub bio_fsync_ok: bool,
    pub bio_fsync_errno: i32,
    pub last_write_error_log_ms: Option<u64>,
    /// Set when the process must exit (Redis's `exit(1)` paths); the driver acts on it.
    pub fatal: Option<String>,
    pub log: Vec<String>,
    pub planted: Option<PlantedBug>,
    /// BGREWRITEAOF bookkeeping for INFO.
    pub rewrites: u64,
    pub rewrite_scheduled: bool,
    pub rewrite_in_progress: bool,
    pub last_rewrite_ok: bool,
    pub last_rewrite_time_secs: i64,
    /// `aof_rewrite_base_size`: the AOF's size after the last rewrite, for auto rewrite.
    pub rewrite_base_size: u64,
}

impl Aof {
    pub fn new(fsync: AppendFsync) -> Self {
        Aof {
            fsync,
            last_write_ok: true,
            bio_fsync_ok: true,
            last_rewrite_ok: true,
            last_rewrite_time_secs: -1,
            ..Aof::default()
        }
    }

    /// `aof_current_size`: base plus every incr file.
    pub fn current_size(&self) -> u64 {
        self.base_size + self.history_size + self.incr_size
    }

    /// Appends one propagated command (Redis's `feedAppendOnlyFile`).
    pub fn feed(&mut self, db: usize, argv: &[Bytes]) {
        debug_assert!(self.on);
        let before = self.buf.len();
        if self.selected_db != Some(db) {
            let n = itoa::Buffer::new().format(db).as_bytes().to_vec();
            encode_parts(&mut self.buf, [&b"SELECT"[..], &n].into_iter());
            self.selected_db = Some(db);
        }
        encode_command(&mut self.buf, argv);
        self.buffered_end += (self.buf.len() - before) as u64;
    }

    /// The MISCONF text when writes must be refused (Redis's `writeCommandsDeniedByDiskError`
    /// for the AOF part).
    pub fn deny_write_error(&self) -> Option<String> {
        if !self.on {
            return None;
        }
        let errno = if !self.last_write_ok {
            self.last_write_errno
        } else if !self.bio_fsync_ok {
            self.bio_fsync_errno
        } else {
            return None;
        };
        Some(format!("MISCONF Errors writing to the AOF file: {}", strerror(errno)))
    }

    /// Whether the client whose commands end at `end` may get its replies.
    pub fn is_durable_enough(&self, end: u64) -> bool {
        match self.fsync {
            AppendFsync::Always if !self.no_fsync => self.fsynced_end >= end,
            _ => self.written_end >= end,
        }
    }

    /// Decides what to write now (the first half of `flushAppendOnlyFile`). `force` writes
    /// even when an `everysec` fsync is running (shutdown, the 2 s limit being reached is
    /// handled here).
    pub fn plan_flush(&mut self, now_mono_ms: u64, force: bool) -> FlushPlan {
        if self.buf.is_empty() || !self.on {
            return FlushPlan::Idle;
        }
        if self.fsync == AppendFsync::EverySec && !force && self.fsync_in_progress {
            if self.flush_postponed_start_ms == 0 {
                self.flush_postponed_start_ms = now_mono_ms.max(1);
                return FlushPlan::Postponed;
            }
            if now_mono_ms.saturating_sub(self.flush_postponed_start_ms) < AOF_MAX_FLUSH_POSTPONE_MS {
                return FlushPlan::Postponed;
            }
            self.delayed_fsync += 1;
            self.log.push(
                "Asynchronous AOF fsync is taking too long (disk is busy?). Writing the AOF buffer without waiting \
                 for fsync to complete, this may slow down Redis."
                    .into(),
            );
        }
        self.flush_postponed_start_ms = 0;
        let fsync = self.fsync == AppendFsync::Always && !self.no_fsync;
        FlushPlan::Write { data: std::mem::take(&mut self.buf), file_offset: self.incr_size, fsync }
    }

    /// Records what became of a planned write (the second half of `flushAppendOnlyFile`).
    /// `data` is the plan's data, handed back so that unwritten bytes return to `aof_buf`.
    pub fn write_done(&mut self, data: Vec<u8>, out: WriteOutcome, now_mono_ms: u64, now_unix_secs: u64) {
        let expected = data.len();
        if out.written != expected || out.error.is_some() {
            self.write_failed(data, out, now_mono_ms);
            return;
        }
        if !self.last_write_ok {
            self.log.push("AOF write error looks solved, Redis can write again.".into());
            self.last_write_ok = true;
        }
        self.incr_size += expected as u64;
        self.written_end += expected as u64;
        if let Some(r) = out.fsync {
            match r {
                Err(errno) if self.planted != Some(PlantedBug::IgnoreFsyncError) => {
                    self.fatal = Some(format!(
                        "Can't persist AOF for fsync error when the AOF fsync policy is 'always': {}. Exiting...",
                        strerror(errno)
                    ));
                }
                _ => {
                    self.fsynced_end = self.written_end;
                    self.last_fsync_secs = now_unix_secs;
                }
            }
        }
    }

    fn write_failed(&mut self, data: Vec<u8>, out: WriteOutcome, now_mono_ms: u64) {
        let can_log =
            self.last_write_error_log_ms.is_none_or(|t| now_mono_ms.saturating_sub(t) > AOF_WRITE_LOG_ERROR_RATE_MS);
        if can_log {
            self.last_write_error_log_ms = Some(now_mono_ms);
        }
        let mut kept = out.written;
        if out.written == 0 {
            let errno = out.error.unwrap_or(libc_eio());
            if can_log {
                self.log.push(format!("Error writing to the AOF file: {}", strerror(errno)));
            }
            self.last_write_errno = errno;
        } else {
            if can_log {
                self.log.push(format!(
                    "Short write while writing to the AOF file: (nwritten={}, expected={})",
                    out.written,
                    data.len()
                ));
            }
            if out.truncated {
                kept = 0;
            } else if can_log {
                self.log.push(
                    "Could not remove short write from the append-only file.  Redis may refuse to load the AOF the \
                     next time it starts.  ftruncate: Input/output error"
                        .into(),
                );
            }
            self.last_write_errno = ENOSPC;
        }
        if self.fsync == AppendFsync::Always {
            self.fatal =
                Some("Can't recover from AOF write error when the AOF fsync policy is 'always'. Exiting...".into());
            return;
        }
        self.last_write_ok = false;
        self.incr_size += kept as u64;
        self.written_end += kept as u64;
        let mut rest = data[kept..].to_vec();
        rest.append(&mut self.buf);
        self.buf = rest;
    }

    /// Whether to start a background fsync now (`everysec`, at most one per second, one at a
    /// time); returns the logical offset it will cover.
    pub fn plan_bg_fsync(&mut self, now_unix_secs: u64) -> Option<u64> {
        if !self.on
            || self.fsync != AppendFsync::EverySec
            || self.no_fsync
            || self.fsync_in_progress
            || now_unix_secs <= self.last_fsync_secs
            || self.fsynced_end >= self.written_end
        {
            return None;
        }
        self.last_fsync_secs = now_unix_secs;
        if self.planted == Some(PlantedBug::SkipFsync) {
            return None;
        }
        self.fsync_in_progress = true;
        Some(self.written_end)
    }

    /// Records a background fsync's result (Redis's bio job for `BIO_AOF_FSYNC`).
    pub fn bg_fsync_done(&mut self, end: u64, result: Result<(), i32>) {
        debug_assert!(self.fsync_in_progress);
        self.fsync_in_progress = false;
        match result {
            Err(errno) if self.planted != Some(PlantedBug::IgnoreFsyncError) => {
                if self.bio_fsync_ok {
                    self.log.push(format!("Fail to fsync the AOF file: {}", strerror(errno)));
                }
                self.bio_fsync_ok = false;
                self.bio_fsync_errno = errno;
            }
            _ => {
                self.bio_fsync_ok = true;
                self.fsynced_end = self.fsynced_end.max(end);
            }
        }
    }

    /// Whether the planted bug skips the `always` fsync.
    pub fn skips_fsync(&self) -> bool {
        self.planted == Some(PlantedBug::SkipFsync)
    }
}

fn libc_eio() -> i32 {
    5
}

/// The C library's text for `errno`, as Redis's `strerror` prints it.
pub fn strerror(errno: i32) -> String {
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    // Rust appends " (os error N)".
    match text.rfind(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests;

//! The node: all state of one redsim server (databases, clients, stats, config) and the
//! sans-IO entry points the driver calls: `process` a request for a client, `cron` once per
//! `1000/hz` ms (Redis's `serverCron`). Time arrives through `set_now`, read once per turn.

pub mod blocking;
pub mod client;
pub mod cluster;
pub mod config;
pub mod driver;
pub mod evict;
pub mod failover;
pub mod info;
pub mod latency;
pub mod log;
pub mod migrate_io;
pub mod notify;
pub mod replication;

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::commands::{CommandTable, Ctx};
use crate::engine::db::Db;
use crate::engine::expire::{ActiveExpire, ExpireEffort};
use crate::env::{Rng, SeededRng};
use crate::persistence::aof::Aof;
use crate::persistence::snapshot::{ChildKind, Forker, NoFork, RdbState};
pub use client::Client;
pub use config::Config;

/// The clocks, read once per turn by the driver.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Now {
    /// Wall clock, Unix ms: expiry, LASTSAVE, TIME.
    pub unix_ms: u64,
    /// Wall clock, Unix µs (TIME's second field).
    pub unix_us: u64,
    /// Monotonic ms: uptime, idle times, timeouts.
    pub mono_ms: u64,
}

/// Facts about the process that only the env can know.
pub trait SysInfo: Send + 'static {
    fn used_memory(&self) -> u64;
    fn rss_bytes(&self) -> u64;
    fn allocator_stats(&self) -> Option<(u64, u64, u64)>;
    fn cpu_usage(&self) -> (f64, f64);
    fn process_id(&self) -> u32;
    /// Monotonic µs, for time budgets inside a turn (expire cycle, command duration).
    fn mono_us(&self) -> u64;
}

/// Counters behind INFO stats.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub numcommands: u64,
    pub numconnections: u64,
    pub rejected_conn: u64,
    pub expiredkeys: u64,
    pub evictedkeys: u64,
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    pub net_input_bytes: u64,
    pub net_output_bytes: u64,
    pub total_error_replies: u64,
    pub unexpected_error_replies: u64,
    pub errors: BTreeMap<String, u64>,
    pub client_qbuf_limit_disconnections: u64,
    pub evicted_clients: u64,
    /// (mono_ms, commands, net in, net out) at the last instantaneous sample.
    pub last_sample: (u64, u64, u64, u64),
    /// Recent per-second rates: ops, input kbps, output kbps.
    pub instantaneous: (f64, f64, f64),
    pub peak_memory: u64,
    /// Child processes started (BGSAVE, AOF rewrite) and how long the last fork took.
    pub total_forks: u64,
    pub latest_fork_usec: u64,
}

/// Per-command counters (INFO commandstats).
#[derive(Debug, Default, Clone, Copy)]
pub struct CmdStat {
    pub calls: u64,
    pub usec: u64,
    pub rejected_calls: u64,
    pub failed_calls: u64,
}

/// What the driver must do after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// Write what is buffered, then close (QUIT, protocol errors, CLIENT KILL of self).
    CloseAfterReply,
}

/// A request for the process as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shutdown {
    Requested { save: Option<bool> },
}

/// A write command as it reaches the AOF and replicas: absolute times, the db it ran in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Propagated {
    pub db: usize,
    pub argv: Vec<Bytes>,
    /// A DEL of a key found expired (lazy or active expiry): Redis propagates it at once, on
    /// its own, never inside the transaction that wraps a command's other operations.
    pub expiry: bool,
}

pub struct Server {
    pub config: Config,
    pub dbs: Vec<Db>,
    /// Boxed: a client leaves the map while its command runs, and moving a pointer is cheap.
    pub clients: BTreeMap<u64, Box<Client>>,
    pub table: &'static CommandTable,
    pub cmd_stats: Vec<CmdStat>,
    /// Per-command latency histograms (INFO latencystats), by command index.
    pub cmd_latency: Vec<info::LatencyHistogram>,
    pub stats: Stats,
    pub rng: SeededRng,
    pub sys: Box<dyn SysInfo>,
    pub now: Now,
    pub start: Now,
    pub run_id: String,
    pub next_client_id: u64,
    pub active_expire: ActiveExpire,
    /// Changes since the last successful save (Redis's `server.dirty`).
    pub dirty: u64,
    pub lastsave_unix_secs: u64,
    /// All clients wait until this monotonic time (DEBUG SLEEP).
    pub paused_until_mono_ms: u64,
    /// CLIENT PAUSE: what waits, until when, and who is waiting.
    pub client_pause: client::ClientPause,
    /// DEBUG SET-ACTIVE-EXPIRE: whether cron expires keys nobody touches.
    pub active_expire_enabled: bool,
    pub shutdown: Option<Shutdown>,
    /// Commands to propagate, when something consumes them (AOF, replicas, the simulator).
    pub propagate_enabled: bool,
    pub propagated: Vec<Propagated>,
    /// The running command propagated itself in a rewritten form.
    pub cmd_rewritten: bool,
    /// Clients whose driver must wake up (killed, unblocked).
    pub wakeups: Vec<u64>,
    /// Clients blocked on keys (BLPOP...), and keys made ready for them.
    pub blocking: blocking::Blocking,
    pub log_lines: Vec<String>,
    pub cron_loops: u64,
    pub listening_port: u16,
    pub executable: String,
    pub config_file: String,
    /// Replication: this node's stream and backlog, its replicas, its master link.
    pub repl: crate::replication::Replication,
    /// LATENCY's events (latency-monitor-threshold).
    pub latency: latency::LatencyMonitor,
    /// Forks the snapshots of replicas' full syncs; the driver installs one through the env.
    pub repl_forker: Box<dyn crate::replication::sync::ReplicaForker>,
    /// used_memory when the server had just started (INFO used_memory_startup).
    pub used_memory_startup: u64,
    /// The one child process the server may have (Redis's `child_type`).
    pub child_kind: ChildKind,
    /// Snapshot (RDB) state: the child, the last save, pending blocking disk work.
    pub rdb: RdbState,
    /// Starts snapshot children; the driver installs one that forks through the env.
    pub forker: Box<dyn Forker>,
    /// WATCHed keys and the transactions they doomed.
    pub watches: crate::commands::multi::Watches,
    /// Channel, pattern and shard channel subscribers.
    pub pubsub: crate::commands::pubsub::PubSub,
    /// The append-only file's state (`aof_buf`, offsets, fsync and error status).
    pub aof: Aof,
    /// Cluster mode's state (`cluster-enabled yes`).
    pub cluster: Option<Box<crate::cluster::Cluster>>,
    /// A MIGRATE waiting for the driver's exchange with its target; everyone else waits too.
    pub migrate_job: Option<crate::commands::migrate::MigrateJob>,
    /// Connections MIGRATE keeps to targets (INFO `migrate_cached_sockets`), as the driver's
    /// cache last counted them.
    pub migrate_cached_sockets: usize,
}

impl Server {
    pub fn new(config: Config, mut rng: SeededRng, sys: Box<dyn SysInfo>, now: Now) -> Self {
        let seed = rng.next_u64();
        let dbs = (0..config.hot.databases).map(|i| Db::new(i, seed)).collect();
        let mut id = [0u8; 20];
        rng.fill(&mut id);
        let run_id = id.iter().map(|b| format!("{b:02x}")).collect();
        let repl = crate::replication::Replication::new(&mut rng);
        let table = crate::commands::table();
        let config_appendfsync = config.hot.appendfsync;
        Server {
            repl,
            latency: Default::default(),
            repl_forker: Box::new(crate::replication::sync::NoReplicaFork),
            cmd_stats: vec![CmdStat::default(); table.len()],
            cmd_latency: vec![info::LatencyHistogram::default(); table.len()],
            used_memory_startup: sys.used_memory(),
            listening_port: config.hot.port,
            config,
            dbs,
            clients: BTreeMap::new(),
            table,
            stats: Stats::default(),
            rng,
            sys,
            now,
            start: now,
            run_id,
            next_client_id: 1,
            active_expire: ActiveExpire::default(),
            dirty: 0,
            lastsave_unix_secs: now.unix_ms / 1000,
            paused_until_mono_ms: 0,
            client_pause: client::ClientPause::default(),
            active_expire_enabled: true,
            shutdown: None,
            propagate_enabled: false,
            propagated: Vec::new(),
            cmd_rewritten: false,
            wakeups: Vec::new(),
            blocking: blocking::Blocking::default(),
            log_lines: Vec::new(),
            cron_loops: 0,
            executable: String::new(),
            config_file: String::new(),
            child_kind: ChildKind::None,
            rdb: RdbState::default(),
            forker: Box::new(NoFork),
            watches: Default::default(),
            pubsub: Default::default(),
            aof: Aof::new(config_appendfsync),
            cluster: None,
            migrate_job: None,
            migrate_cached_sockets: 0,
        }
    }

    pub fn set_now(&mut self, now: Now) {
        self.now = now;
    }

    /// Redis's LRU clock: seconds, 24 bits.
    pub fn lru_clock(&self) -> u32 {
        ((self.now.unix_ms / 1000) & crate::server::evict::LRU_CLOCK_MAX as u64) as u32
    }

    pub fn add_client(&mut self, addr: String, laddr: String) -> u64 {
        let id = self.next_client_id;
        self.next_client_id += 1;
        self.stats.numconnections += 1;
        let c = Client::new(id, addr, laddr, self.now.mono_ms, self.config.hot.requirepass.is_none());
        self.clients.insert(id, Box::new(c));
        id
    }

    pub fn remove_client(&mut self, id: u64) {
        if let Some(mut c) = self.clients.remove(&id) {
            self.discard_transaction(&mut c);
            self.pubsub_unsubscribe_all(&mut c);
        }
        self.client_pause.postponed.remove(&id);
        self.blocking.unblock(id);
        self.detach_replica(id);
    }

    /// Runs one request for client `id`; the reply goes to the client's output buffer,
    /// unless CLIENT REPLY OFF or SKIP silences it.
    pub fn process(&mut self, id: u64, argv: Vec<Bytes>) -> Flow {
        let Some(mut client) = self.clients.remove(&id) else { return Flow::CloseAfterReply };
        let skip_this = std::mem::take(&mut client.reply_skip_next);
        let reply_start = client.out.len();
        let dirty_before = self.dirty;
        let first_propagated = self.propagated.len();
        {
            let mut ctx = Ctx { srv: self, client: &mut client };
            crate::commands::process_command(&mut ctx, argv);
        }
        if client.multi.is_none() && client.last_cmd != "asking" {
            client.cluster_asking = false;
        }
        self.wrap_command_ops(first_propagated);
        if client.reply_off || skip_this {
            client.out.buf.truncate(reply_start);
        }
        let flow = if client.close_after_reply { Flow::CloseAfterReply } else { Flow::Continue };
        self.clients.insert(id, client);
        if self.dirty != dirty_before && !self.blocking.by_key.is_empty() {
            self.signal_awaited_keys_present();
        }
        self.handle_clients_blocked_on_keys();
        self.feed_propagated();
        if self.dirty != dirty_before {
            if let Some(c) = self.clients.get_mut(&id) {
                c.woff = self.repl.state.master_repl_offset;
            }
        }
        self.flush_get_ack();
        flow
    }

    /// A command that propagated several operations of its own (SPOP with a count) reaches the
    /// AOF and replicas as one transaction (Redis 7.0's `propagatePendingCommands`); DELs of
    /// keys it found expired go first, on their own, as Redis propagates them at once. EXEC
    /// wraps its own commands.
    fn wrap_command_ops(&mut self, first: usize) {
        let ops = &self.propagated[first.min(self.propagated.len())..];
        if ops.len() < 2 || ops[0].argv[0].eq_ignore_ascii_case(b"multi") {
            return;
        }
        let own = ops.iter().filter(|p| !p.expiry).count();
        if own < 2 {
            return;
        }
        let ops: Vec<Propagated> = self.propagated.drain(first..).collect();
        let (dels, own): (Vec<Propagated>, Vec<Propagated>) = ops.into_iter().partition(|p| p.expiry);
        self.propagated.extend(dels);
        let at = self.propagated.len();
        self.propagated.extend(own);
        crate::commands::multi::wrap_in_multi_exec(&mut self.propagated, at);
    }

    /// Replies with a protocol error and marks the client to close (Redis's
    /// `setProtocolError`).
    pub fn protocol_error(&mut self, id: u64, text: &str) {
        self.count_error(text);
        if let Some(c) = self.clients.get_mut(&id) {
            c.out.error(&format!("ERR {text}"));
            c.close_after_reply = true;
        }
    }

    /// Counts an error reply under its code (INFO errorstats).
    pub fn count_error(&mut self, text: &str) {
        self.stats.total_error_replies += 1;
        let code = text.split(' ').next().unwrap_or("ERR");
        let code = if text.starts_with("Protocol error") { "ERR" } else { code };
        *self.stats.errors.entry(code.to_string()).or_default() += 1;
    }

    /// Redis's `serverCron`: active expiry, stats sampling, client timeouts.
    pub fn cron(&mut self) {
        self.cron_loops += 1;
        self.active_expire_cycle();
        self.sample_stats();
        self.close_timedout_clients();
        self.unblock_timed_out_clients();
        self.snapshot_cron();
        self.replication_cron();
        self.cluster_cron();
        self.feed_propagated();
        let used = self.sys.used_memory();
        self.stats.peak_memory = self.stats.peak_memory.max(used);
    }

    fn active_expire_cycle(&mut self) {
        // A replica never expires keys itself: it waits for its master's DELs.
        let replica_expires = crate::replication::planted(crate::replication::PlantedBug::ReplicaExpiresKeys);
        if !self.active_expire_enabled || self.writes_paused() || !(self.is_master() || replica_expires) {
            return;
        }
        let cycle_start_us = self.sys.mono_us();
        let effort = ExpireEffort::new(self.config.hot.active_expire_effort);
        let now_ms = self.now.unix_ms;
        let hz = self.config.hot.hz;
        let mut expired: Vec<(usize, Box<[u8]>)> = Vec::new();
        let sys = &self.sys;
        self.active_expire.cycle(&mut self.dbs, effort, hz, now_ms, &|| sys.mono_us(), &mut |db, key| {
            expired.push((db, key.into()));
        });
        for (db, key) in expired {
            self.stats.expiredkeys += 1;
            if self.is_master() {
                self.propagate_del(db, &key);
            }
            self.deleted_by_server(None, db, &key, notify::Removal::Expired);
        }
        let ms = self.sys.mono_us().saturating_sub(cycle_start_us) / 1000;
        self.latency_sample("expire-cycle", ms);
    }

    fn sample_stats(&mut self) {
        let (t0, c0, i0, o0) = self.stats.last_sample;
        let t = self.now.mono_ms;
        if t < t0 + 100 {
            return;
        }
        let dt = (t - t0) as f64 / 1000.0;
        let s = &mut self.stats;
        s.instantaneous = (
            (s.numcommands - c0) as f64 / dt,
            (s.net_input_bytes - i0) as f64 / dt / 1024.0,
            (s.net_output_bytes - o0) as f64 / dt / 1024.0,
        );
        s.last_sample = (t, s.numcommands, s.net_input_bytes, s.net_output_bytes);
    }

    fn close_timedout_clients(&mut self) {
        let timeout_ms = self.config.hot.timeout_secs * 1000;
        if timeout_ms == 0 {
            return;
        }
        let now = self.now.mono_ms;
        let ids: Vec<u64> = self
            .clients
            .values()
            // A client waiting for CLIENT PAUSE to end, or blocked on keys, is not idle.
            .filter(|c| !c.postponed && !c.blocked && now.saturating_sub(c.last_interaction_ms) > timeout_ms)
            .map(|c| c.id)
            .collect();
        for id in ids {
            self.log(log::Level::Verbose, "Closing idle client");
            self.kill_client(id);
        }
    }

    /// Marks a client to be closed by its driver as soon as possible.
    pub fn kill_client(&mut self, id: u64) {
        if let Some(c) = self.clients.get_mut(&id) {
            c.close_asap = true;
            self.wakeups.push(id);
        }
    }

    /// Queues a write for the AOF and replicas.
    pub fn propagate(&mut self, db: usize, argv: Vec<Bytes>) {
        if self.propagate_enabled {
            self.propagated.push(Propagated { db, argv, expiry: false });
        }
    }

    /// A key deleted by expiry reaches replicas and the AOF as DEL (Redis's
    /// `propagateDeletion`), so replicas never expire keys themselves.
    pub fn propagate_del(&mut self, db: usize, key: &[u8]) {
        let cmd: &'static [u8] =
            if self.config.get("lazyfree-lazy-expire") == Some("yes") { b"UNLINK" } else { b"DEL" };
        self.propagate(db, vec![Bytes::from_static(cmd), Bytes::copy_from_slice(key)]);
        if let Some(p) = self.propagated.last_mut() {
            p.expiry = true;
        }
    }

    pub fn log(&mut self, level: log::Level, msg: &str) {
        if (level as u8) < self.config.hot.loglevel {
            return;
        }
        let line = log::format_line(
            self.sys.process_id(),
            if self.is_replica() { 'S' } else { 'M' },
            self.now.unix_ms,
            level,
            msg,
        );
        self.log_lines.push(line);
    }

    /// A master (not a replica of another node): it expires keys itself and takes writes.
    pub fn is_master(&self) -> bool {
        self.repl.master.is_none()
    }
}

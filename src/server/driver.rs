//! The driver: the only part of the server that awaits. It accepts connections, reads query
//! bytes, hands complete requests to the sans-IO `Server` under one lock (one logical thread,
//! as Redis), writes the replies, and runs `cron` every `1000/hz` ms. Generic over `Env`, so
//! the same code serves real sockets and the simulator's.

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};

use super::log::Level;
use super::migrate_io::{self, MigrateSockets};
use super::{Config, Flow, Now, Server, SysInfo};
use crate::env::rt::{AsyncReadExt, AsyncWriteExt, IpAddr, Notify, SocketAddr};
use crate::env::{Clock, Env, Listener, Net};
use crate::persistence::aof::io::{self as aof_io, AofDriver, Flushed};
use crate::persistence::snapshot;
use crate::protocol::parser::{Limits, ParseError, RequestParser, PROTO_IOBUF_LEN};

/// A client held back by CLIENT PAUSE looks again at least this often, so that a long pause
/// never needs a timer far in the future.
const POSTPONED_RECHECK_MS: u64 = 1000;
/// A blocked client's task rechecks its state at least this often (a lost wakeup costs no
/// more than this).
const BLOCKED_RECHECK_MS: u64 = 1000;

/// The node's state shared by its tasks.
pub struct Shared {
    server: Mutex<Server>,
    wakers: Mutex<BTreeMap<u64, Arc<Notify>>>,
    shutdown: Notify,
    /// The server's `paused_until_mono_ms`, readable without the lock.
    paused_until_mono_ms: AtomicU64,
    /// A blocking job (SAVE, DEBUG RELOAD, SHUTDOWN's save, MIGRATE) runs: everyone else waits.
    busy: AtomicBool,
    /// MIGRATE's cached connections to its targets.
    migrate_sockets: Mutex<MigrateSockets>,
    /// The AOF's I/O side when `appendonly yes`.
    aof: Mutex<Option<Arc<dyn AofDriver>>>,
    /// Set when the process must exit on an unrecoverable error (`srv.aof.fatal`).
    exit: AtomicBool,
    /// The cluster bus's links and pump (cluster mode only).
    pub cluster_io: crate::cluster::driver::ClusterIo,
}

impl Shared {
    /// Wakes the tasks of the clients the server asked to wake (`Server::wakeups`).
    pub fn wake_pending(&self, s: &mut Server) {
        wake(self, s);
    }

    pub fn lock(&self) -> MutexGuard<'_, Server> {
        // A panic inside a command is caught before it can poison the lock (see `process`).
        self.server.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The AOF's I/O side, when the AOF is on.
    pub fn aof(&self) -> Option<Arc<dyn AofDriver>> {
        self.aof.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Installs (CONFIG SET appendonly yes) or drops (no) the AOF's I/O side.
    pub fn set_aof(&self, aof: Option<Arc<dyn AofDriver>>) {
        *self.aof.lock().unwrap_or_else(|e| e.into_inner()) = aof;
    }

    /// Asks `run` to end the process with an error (Redis's `exit(1)` paths).
    pub fn request_exit(&self) {
        self.exit.store(true, Ordering::SeqCst);
        self.shutdown.notify_one();
    }
}

struct EnvSys<E: Env>(E);

impl<E: Env> SysInfo for EnvSys<E> {
    fn used_memory(&self) -> u64 {
        self.0.used_memory()
    }
    fn rss_bytes(&self) -> u64 {
        self.0.rss_bytes()
    }
    fn allocator_stats(&self) -> Option<(u64, u64, u64)> {
        self.0.allocator_stats()
    }
    fn cpu_usage(&self) -> (f64, f64) {
        self.0.cpu_usage()
    }
    fn process_id(&self) -> u32 {
        self.0.process_id()
    }
    fn mono_us(&self) -> u64 {
        self.0.clock().now_us()
    }
}

/// The clocks for one turn: one wall-clock read (µs, ms derived from it) and one monotonic.
pub fn now<C: Clock>(c: &C) -> Now {
    let unix_us = c.unix_us();
    Now { unix_ms: unix_us / 1000, unix_us, mono_ms: c.now_ms() }
}

/// Options that are not config directives.
#[derive(Debug, Clone, Default)]
pub struct RunOpts {
    pub executable: String,
    pub config_file: String,
    /// A bug the simulator plants in the AOF; never set by the real server.
    pub aof_bug: Option<crate::persistence::aof::PlantedBug>,
}

/// A started node: its address and its shared state (for the simulator and tests).
pub struct Node {
    pub shared: Arc<Shared>,
    pub addrs: Vec<SocketAddr>,
}

/// Binds, builds the server, logs the startup lines and spawns the accept loops and cron.
pub async fn start<E: Env>(env: E, config: Config, opts: RunOpts) -> io::Result<Node> {
    let pid = env.process_id();
    let clock = env.clock().clone();
    let t = now(&clock);
    let startup = |role: char, level: Level, msg: &str| {
        env.log_line(&super::log::format_line(pid, role, t.unix_ms, level, msg));
    };
    startup('C', Level::Warning, "oO0OoO0OoO0Oo redsim is starting oO0OoO0OoO0Oo");
    startup(
        'C',
        Level::Warning,
        &format!(
            "Redis version=7.0.15, bits=64, commit=00000000, modified=0, pid={pid}, just started (redsim {})",
            env!("CARGO_PKG_VERSION")
        ),
    );
    if opts.config_file.is_empty() {
        startup(
            'C',
            Level::Warning,
            "Warning: no config file specified, using the default config. In order to specify a config file use \
             redsim server /path/to/redis.conf",
        );
    } else {
        startup('C', Level::Warning, "Configuration loaded");
    }
    let port = config.hot.port;
    let mut listeners = Vec::new();
    let binds: Vec<String> = config.get("bind").unwrap_or("").split_whitespace().map(String::from).collect();
    for b in &binds {
        let (optional, host) = match b.strip_prefix('-') {
            Some(h) => (true, h),
            None => (false, b.as_str()),
        };
        let host = match host {
            "*" => "0.0.0.0",
            "::*" => "::",
            h => h,
        };
        let addr: SocketAddr = match host.parse::<IpAddr>() {
            Ok(ip) => SocketAddr::new(ip, port),
            Err(_) => {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("Invalid bind address '{host}'")))
            }
        };
        match env.net().bind(addr).await {
            Ok(l) => listeners.push(l),
            Err(e) if optional => {
                startup(
                    'M',
                    Level::Warning,
                    &format!("Warning: Could not create server TCP listening socket {b}:{port}: {e}"),
                );
            }
            Err(e) => {
                startup(
                    'M',
                    Level::Warning,
                    &format!("Warning: Could not create server TCP listening socket {host}:{port}: {e}"),
                );
                return Err(e);
            }
        }
    }
    let addrs: Vec<SocketAddr> = listeners.iter().filter_map(|l| l.local_addr().ok()).collect();
    let mut server = Server::new(config, env.rng(), Box::new(EnvSys(env.clone())), t);
    server.listening_port = addrs.first().map(|a| a.port()).unwrap_or(port);
    server.init_cluster();
    server.executable = opts.executable;
    server.config_file = opts.config_file;
    let aof = open_aof(&env, &mut server, opts.aof_bug).await?;
    startup('M', Level::Notice, "monotonic clock: POSIX clock_gettime");
    let mode = if server.cluster.is_some() { "cluster" } else { "standalone" };
    startup('M', Level::Notice, &format!("Running mode={mode}, port={}.", server.listening_port));
    startup('M', Level::Warning, "Server initialized");
    server.replicaof_at_startup();
    load_data_from_disk(&env, &mut server).await?;
    startup('M', Level::Notice, "Ready to accept connections");
    let shared = Arc::new(Shared {
        server: Mutex::new(server),
        wakers: Mutex::new(BTreeMap::new()),
        shutdown: Notify::new(),
        paused_until_mono_ms: AtomicU64::new(0),
        busy: AtomicBool::new(false),
        migrate_sockets: Mutex::new(MigrateSockets::default()),
        aof: Mutex::new(aof.clone().map(|a| a as Arc<dyn AofDriver>)),
        exit: AtomicBool::new(false),
        cluster_io: Default::default(),
    });
    shared.lock().forker = Box::new(snapshot::EnvForker { env: env.clone(), shared: Arc::downgrade(&shared) });
    shared.lock().repl_forker =
        Box::new(crate::replication::sync::EnvReplicaForker { env: env.clone(), shared: Arc::downgrade(&shared) });
    if let Some(a) = aof {
        env.spawn(aof_io::aof_cron(a, shared.clone()));
    }
    env.spawn(aof_io::appendonly_watch(env.clone(), shared.clone()));
    for l in listeners {
        env.spawn(accept_loop(env.clone(), shared.clone(), l));
    }
    let bind_ips: Vec<IpAddr> = addrs.iter().map(|a| a.ip()).collect();
    crate::cluster::driver::start(&env, &shared, &bind_ips).await?;
    env.spawn(cron_loop(env.clone(), shared.clone()));
    start_replica_link(&env, &shared);
    Ok(Node { shared, addrs })
}

/// Runs a node until a SHUTDOWN command.
pub async fn run<E: Env>(env: E, config: Config, opts: RunOpts) -> io::Result<()> {
    let node = start(env.clone(), config, opts).await?;
    node.shared.shutdown.notified().await;
    if node.shared.exit.load(Ordering::SeqCst) {
        let mut s = node.shared.lock();
        let why = s.aof.fatal.clone().unwrap_or_else(|| "fatal error".into());
        flush_logs(&env, &mut s);
        return Err(io::Error::other(why));
    }
    if let Some(a) = node.shared.aof() {
        a.flush_on_shutdown(&node.shared).await;
    }
    let mut s = node.shared.lock();
    s.log(Level::Warning, "redsim is now ready to exit, bye bye...");
    flush_logs(&env, &mut s);
    Ok(())
}

/// The startup load of `dbfilename`; a file that cannot be loaded stops the server.
async fn load_data_from_disk<E: Env>(env: &E, server: &mut Server) -> io::Result<()> {
    let r = snapshot::load_at_startup(env, server).await;
    flush_logs(env, server);
    r.map_err(io::Error::other)
}

/// Runs the blocking disk job the last request left (SAVE, DEBUG RELOAD, SHUTDOWN's save)
/// with every other client and cron held back, and appends its reply to `st.out`. The flow
/// after it, when there was one.
async fn run_disk_job<E: Env>(env: &E, shared: &Shared, id: u64, st: &mut ConnState) -> Option<Flow> {
    if !shared.busy.load(Ordering::SeqCst) {
        return None;
    }
    let (job, target) = {
        let mut s = shared.lock();
        let job = s.rdb.job.take()?;
        (job, s.rdb_filename())
    };
    let result = snapshot::run_disk_job(env, &job, &target).await;
    let reply_at = job.reply_at;
    let mut s = shared.lock();
    shared.busy.store(false, Ordering::SeqCst);
    s.set_now(now(env.clock()));
    s.finish_disk_job(job, result);
    Some(take_job_reply(env, shared, &mut s, id, st, reply_at))
}

/// Runs the MIGRATE the last request left: Redis's MIGRATE talks to its target synchronously,
/// so every other client and cron are held back until it is over or timed out. Appends its
/// reply to `st.out`; the flow after it, when there was one.
async fn run_migrate_job<E: Env>(env: &E, shared: &Shared, id: u64, st: &mut ConnState) -> Option<Flow> {
    if !shared.busy.load(Ordering::SeqCst) {
        return None;
    }
    let job = shared.lock().migrate_job.take()?;
    let outcome = migrate_io::exchange(env, &shared.migrate_sockets, &job).await;
    let mut s = shared.lock();
    shared.busy.store(false, Ordering::SeqCst);
    s.set_now(now(env.clock()));
    s.finish_migrate(job, outcome);
    s.migrate_cached_sockets = shared.migrate_sockets.lock().unwrap_or_else(|e| e.into_inner()).len();
    Some(take_job_reply(env, shared, &mut s, id, st, None))
}

/// After a blocking job: moves its reply into `st.out` (at `insert_at` when the job ran inside
/// EXEC, whose later replies are there already) and wakes whoever it concerned.
fn take_job_reply<E: Env>(
    env: &E,
    shared: &Shared,
    s: &mut Server,
    id: u64,
    st: &mut ConnState,
    insert_at: Option<usize>,
) -> Flow {
    let mut flow = Flow::Continue;
    if let Some(c) = s.clients.get_mut(&id) {
        c.tot_net_out += c.out.buf.len() as u64;
        s.stats.net_output_bytes += c.out.buf.len() as u64;
        match insert_at.filter(|&at| at <= st.out.len()) {
            Some(at) => drop(st.out.splice(at..at, c.out.buf.drain(..))),
            None => st.out.append(&mut c.out.buf),
        }
        if c.close_after_reply {
            flow = Flow::CloseAfterReply;
        }
    }
    if s.shutdown.is_some() {
        shared.shutdown.notify_one();
    }
    flush_logs(env, s);
    wake(shared, s);
    flow
}

/// Writes the server's pending log lines (for the cluster's driver).
pub fn flush_server_logs<E: Env>(env: &E, s: &mut Server) {
    flush_logs(env, s);
}

fn flush_logs<E: Env>(env: &E, s: &mut Server) {
    for line in s.log_lines.drain(..) {
        env.log_line(&line);
    }
}

async fn cron_loop<E: Env>(env: E, shared: Arc<Shared>) {
    loop {
        let hz = shared.lock().config.hot.hz.max(1);
        env.clock().sleep_ms(1000 / hz).await;
        if shared.busy.load(Ordering::SeqCst) {
            continue;
        }
        let mut s = shared.lock();
        s.set_now(now(env.clock()));
        s.cron();
        let mut sockets = shared.migrate_sockets.lock().unwrap_or_else(|e| e.into_inner());
        sockets.close_idle(s.now.unix_ms / 1000);
        s.migrate_cached_sockets = sockets.len();
        drop(sockets);
        flush_logs(&env, &mut s);
        wake(&shared, &mut s);
        crate::cluster::driver::notify_if_pending(&shared, &s);
        drop(s);
        start_replica_link(&env, &shared);
    }
}

/// Spawns the link to the master when REPLICAOF (or the config) asked for one.
fn start_replica_link<E: Env>(env: &E, shared: &Arc<Shared>) {
    let generation = {
        let mut s = shared.lock();
        if !std::mem::take(&mut s.repl.link_start_requested) {
            return;
        }
        s.repl.link_generation
    };
    env.spawn(crate::replication::link::run_link(env.clone(), shared.clone(), generation));
}

fn wake(shared: &Shared, s: &mut Server) {
    if s.wakeups.is_empty() {
        return;
    }
    let wakers = shared.wakers.lock().unwrap_or_else(|e| e.into_inner());
    for id in s.wakeups.drain(..) {
        if let Some(n) = wakers.get(&id) {
            n.notify_one();
        }
    }
}

async fn accept_loop<E: Env>(env: E, shared: Arc<Shared>, listener: <E::Net as Net>::Listener) {
    let laddr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    loop {
        match listener.accept().await {
            Ok((conn, addr)) => env.spawn(serve_client(env.clone(), shared.clone(), conn, addr, laddr.clone())),
            Err(_) => env.clock().sleep_ms(10).await,
        }
    }
}

const MAXCLIENTS_ERR: &[u8] = b"-ERR max number of clients reached\r\n";

/// Redis 7.0's refusal of a non-loopback client while protected mode is on and the default
/// user has no password (networking.c, clientAcceptHandler).
const PROTECTED_MODE_ERR: &[u8] =
    b"-DENIED Redis is running in protected mode because protected mode is enabled and no \
password is set for the default user. In this mode connections are only accepted from the loopback interface. If you \
want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable \
protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis \
from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do \
so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by \
editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. \
3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a \
an authentication password for the default user. NOTE: You only need to do one of the above things in order for the \
server to start accepting connections from the outside.\r\n";

/// Why a new connection is refused before it becomes a client.
enum Refusal {
    MaxClients,
    ProtectedMode,
}

async fn serve_client<E: Env>(
    env: E,
    shared: Arc<Shared>,
    mut conn: <E::Net as Net>::Conn,
    peer: SocketAddr,
    laddr: String,
) {
    let admitted = {
        let mut s = shared.lock();
        s.set_now(now(env.clock()));
        if s.config.hot.protected_mode && s.config.hot.requirepass.is_none() && !peer.ip().is_loopback() {
            Err(Refusal::ProtectedMode)
        } else if s.clients.len() >= s.config.hot.maxclients {
            s.stats.rejected_conn += 1;
            Err(Refusal::MaxClients)
        } else {
            let limits = Limits {
                max_bulk_len: s.config.hot.proto_max_bulk_len,
                query_buffer_limit: s.config.hot.client_query_buffer_limit,
            };
            Ok((s.add_client(peer.to_string(), laddr), limits))
        }
    };
    let (id, limits) = match admitted {
        Ok(v) => v,
        Err(why) => {
            let text = match why {
                Refusal::MaxClients => MAXCLIENTS_ERR,
                Refusal::ProtectedMode => PROTECTED_MODE_ERR,
            };
            let _ = conn.write_all(text).await;
            return;
        }
    };
    let notify = Arc::new(Notify::new());
    shared.wakers.lock().unwrap_or_else(|e| e.into_inner()).insert(id, notify.clone());
    let mut conn_state = ConnState {
        parser: RequestParser::new(limits),
        qbuf: BytesMut::with_capacity(PROTO_IOBUF_LEN),
        out: Vec::new(),
        postponed: None,
        blocked: false,
    };
    let _ = client_loop(&env, &shared, &mut conn, &notify, id, &mut conn_state).await;
    shared.wakers.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    shared.lock().remove_client(id);
}

struct ConnState {
    parser: RequestParser,
    qbuf: BytesMut,
    out: Vec<u8>,
    /// A parsed request that CLIENT PAUSE holds back; it runs before anything else.
    postponed: Option<Vec<Bytes>>,
    /// The last request blocked on keys (BLPOP...): wait for it to be served first.
    blocked: bool,
}

async fn client_loop<E: Env>(
    env: &E,
    shared: &Shared,
    conn: &mut <E::Net as Net>::Conn,
    notify: &Notify,
    id: u64,
    st: &mut ConnState,
) -> io::Result<()> {
    // Requests pipelined behind a blocking job wait in the query buffer: they run before
    // anything more is read.
    let mut after_job = false;
    loop {
        let mut n = 0;
        if std::mem::take(&mut after_job) {
        } else if st.blocked {
            if !wait_blocked(env, shared, conn, notify, id, st).await {
                return Ok(());
            }
        } else if let Some(argv) = &st.postponed {
            if !wait_postponed(env, shared, notify, id, argv).await {
                return Ok(());
            }
        } else {
            if st.qbuf.capacity() - st.qbuf.len() < 1024 {
                st.qbuf.reserve(PROTO_IOBUF_LEN);
            }
            // Output first, as Redis writes pending replies in beforeSleep before it reads.
            n = crate::env::rt::select! {
                _ = notify.notified() => {
                    if !take_pushed_output(shared, id, st) || !write_pushed(shared, conn, notify, id, st).await? {
                        return Ok(());
                    }
                    continue;
                }
                r = conn.read_buf(&mut st.qbuf) => r?,
            };
            if n == 0 {
                return Ok(());
            }
            wait_while_paused(env, shared).await;
        }
        let (flow, pause_until) = process_input(env, shared, id, n, st);
        let job_flow = match run_disk_job(env, shared, id, st).await {
            Some(f) => Some(f),
            None => run_migrate_job(env, shared, id, st).await,
        };
        after_job = job_flow.is_some() && !st.qbuf.is_empty();
        let flow = job_flow.unwrap_or(flow);
        if pause_until > env.clock().now_ms() {
            // DEBUG SLEEP: the reply is sent when the pause ends.
            env.clock().sleep_ms(pause_until - env.clock().now_ms()).await;
        }
        if let Some(aof) = shared.aof() {
            // The AOF must hold these commands before their replies leave.
            if aof.flush_before_reply(shared).await == Flushed::Fatal {
                shared.request_exit();
                return Ok(());
            }
        }
        if !st.out.is_empty() {
            conn.write_all(&st.out).await?;
            conn.flush().await?;
            st.out.clear();
        }
        if flow == Flow::CloseAfterReply {
            return Ok(());
        }
    }
}

/// A wakeup of an idle client: moves what others wrote into its buffer while it sent
/// nothing (pub/sub messages) into `st.out`. False when the client must close instead.
fn take_pushed_output(shared: &Shared, id: u64, st: &mut ConnState) -> bool {
    let mut s = shared.lock();
    let Some(c) = s.clients.get_mut(&id).filter(|c| !c.close_asap) else { return false };
    debug_assert!(st.out.is_empty(), "replies are written before the task waits again");
    std::mem::swap(&mut c.out.buf, &mut st.out);
    c.tot_net_out += st.out.len() as u64;
    s.stats.net_output_bytes += st.out.len() as u64;
    true
}

/// Writes what `take_pushed_output` took, unless the client is killed meanwhile: a
/// subscriber that stopped reading is closed at its output limit, not waited on forever.
/// Ok(false) when it must close.
async fn write_pushed<C: AsyncWriteExt + Unpin>(
    shared: &Shared,
    conn: &mut C,
    notify: &Notify,
    id: u64,
    st: &mut ConnState,
) -> io::Result<bool> {
    if st.out.is_empty() {
        return Ok(true);
    }
    let killed = async {
        loop {
            notify.notified().await;
            if shared.lock().clients.get(&id).is_none_or(|c| c.close_asap) {
                return;
            }
        }
    };
    let written = crate::env::rt::select! {
        _ = killed => false,
        r = async {
            conn.write_all(&st.out).await?;
            conn.flush().await
        } => {
            r?;
            true
        }
    };
    st.out.clear();
    // Wakeups taken while writing may have brought more messages: look again.
    notify.notify_one();
    Ok(written)
}

/// Waits until the blocked client is served, times out or is unblocked. Input keeps
/// arriving into the query buffer (unprocessed, as Redis does) so that a client that hangs
/// up while blocked is noticed and stops waiting on its keys. Returns false to close.
async fn wait_blocked<E: Env>(
    env: &E,
    shared: &Shared,
    conn: &mut <E::Net as Net>::Conn,
    notify: &Notify,
    id: u64,
    st: &mut ConnState,
) -> bool {
    loop {
        let deadline_ms = {
            let mut s = shared.lock();
            s.set_now(now(env.clock()));
            if s.clients.get(&id).is_none_or(|c| c.close_asap) {
                return false;
            }
            s.unblock_timed_out_clients();
            wake(shared, &mut s);
            match s.blocking.deadline_of(id) {
                None => {
                    st.blocked = false;
                    return true;
                }
                Some(d) => d,
            }
        };
        let unix_now = env.clock().unix_ms();
        let wait_ms = if deadline_ms == 0 {
            BLOCKED_RECHECK_MS
        } else {
            deadline_ms.saturating_sub(unix_now).clamp(1, BLOCKED_RECHECK_MS)
        };
        if st.qbuf.capacity() - st.qbuf.len() < 1024 {
            st.qbuf.reserve(PROTO_IOBUF_LEN);
        }
        // Being served beats timing out, as Redis serves ready keys right after the command
        // that fed them; the state is looked at again at the top either way.
        crate::env::rt::select! {
            _ = notify.notified() => {
                // A RESP3 client may be subscribed while blocked: its messages go out now.
                if !take_pushed_output(shared, id, st) {
                    return false;
                }
                if !matches!(write_pushed(shared, conn, notify, id, st).await, Ok(true)) {
                    return false;
                }
            }
            r = conn.read_buf(&mut st.qbuf) => match r {
                Ok(0) | Err(_) => return false,
                Ok(n) => shared.lock().stats.net_input_bytes += n as u64,
            },
            _ = env.clock().sleep_ms(wait_ms) => {}
        }
    }
}

async fn wait_while_paused<E: Env>(env: &E, shared: &Shared) {
    loop {
        if shared.busy.load(Ordering::SeqCst) {
            env.clock().sleep_ms(1).await;
            continue;
        }
        // An atomic copy, so that every request does not take the lock twice.
        let until = shared.paused_until_mono_ms.load(Ordering::Relaxed);
        let now_ms = env.clock().now_ms();
        if until <= now_ms {
            return;
        }
        env.clock().sleep_ms(until - now_ms).await;
    }
}

/// Waits until CLIENT PAUSE lets `argv` run: until the pause ends or a wakeup (UNPAUSE, a
/// kill). False when the client was killed meanwhile.
async fn wait_postponed<E: Env>(env: &E, shared: &Shared, notify: &Notify, id: u64, argv: &[Bytes]) -> bool {
    loop {
        let end_ms = {
            let mut s = shared.lock();
            s.set_now(now(env.clock()));
            if s.clients.get(&id).is_none_or(|c| c.close_asap) {
                return false;
            }
            match s.must_postpone(argv) {
                Some(end_ms) => end_ms,
                None => return true,
            }
        };
        let wait_ms = end_ms.saturating_sub(env.clock().now_ms()).clamp(1, POSTPONED_RECHECK_MS);
        crate::env::rt::select! {
            _ = notify.notified() => {}
            _ = env.clock().sleep_ms(wait_ms) => {}
        }
    }
}

/// The next request to run: the one CLIENT PAUSE held back, else the next parsed one.
fn next_request(s: &mut Server, id: u64, st: &mut ConnState) -> Result<Option<Vec<Bytes>>, ParseError> {
    if let Some(argv) = st.postponed.take() {
        s.resume(id);
        return Ok(Some(argv));
    }
    let authed = s.clients.get(&id).is_some_and(|c| c.authenticated);
    st.parser.next_request(&mut st.qbuf, authed)
}

/// Parses and runs every complete request in the query buffer under one lock, stopping at
/// one that CLIENT PAUSE holds back; the replies are swapped into `st.out`.
fn process_input<E: Env>(env: &E, shared: &Shared, id: u64, nread: usize, st: &mut ConnState) -> (Flow, u64) {
    let mut s = shared.lock();
    s.set_now(now(env.clock()));
    s.stats.net_input_bytes += nread as u64;
    let mut flow = Flow::Continue;
    loop {
        match next_request(&mut s, id, st) {
            Ok(Some(argv)) => {
                if s.must_postpone(&argv).is_some() {
                    s.postpone(id);
                    st.postponed = Some(argv);
                    break;
                }
                flow = process_guarded(&mut s, id, argv);
                // A blocked client's later requests wait in the query buffer until it is served.
                if flow == Flow::CloseAfterReply
                    || s.paused_until_mono_ms > s.now.mono_ms
                    || s.is_blocked(id)
                    || s.rdb.job.is_some()
                    || s.migrate_job.is_some()
                {
                    break;
                }
            }
            Ok(None) => break,
            Err(ParseError::Protocol(text)) => {
                s.log(Level::Verbose, &format!("Protocol error ({text}) from client: id={id}"));
                s.protocol_error(id, &text);
                flow = Flow::CloseAfterReply;
                break;
            }
            Err(ParseError::QueryBufferLimit) => {
                s.log(Level::Warning, &format!("Closing client that reached max query buffer length: id={id}"));
                s.stats.client_qbuf_limit_disconnections += 1;
                flow = Flow::CloseAfterReply;
                break;
            }
        }
    }
    if let Some(c) = s.clients.get_mut(&id) {
        c.qbuf = st.qbuf.len();
        c.tot_net_in += nread as u64;
        std::mem::swap(&mut c.out.buf, &mut st.out);
        c.tot_net_out += st.out.len() as u64;
        if c.close_asap {
            flow = Flow::CloseAfterReply;
        }
    }
    s.stats.net_output_bytes += st.out.len() as u64;
    st.blocked = s.is_blocked(id);
    if s.shutdown.is_some() {
        shared.shutdown.notify_one();
    }
    let pause = s.paused_until_mono_ms;
    shared.paused_until_mono_ms.store(pause, Ordering::Relaxed);
    if s.rdb.job.is_some() || s.migrate_job.is_some() {
        shared.busy.store(true, Ordering::SeqCst);
    }
    flush_logs(env, &mut s);
    wake(shared, &mut s);
    crate::cluster::driver::notify_if_pending(shared, &s);
    (flow, pause)
}

/// Runs one request; a panic in a handler becomes an error reply instead of taking the
/// server down with a poisoned lock.
fn process_guarded(s: &mut Server, id: u64, argv: Vec<Bytes>) -> Flow {
    let name = argv[0].clone();
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| s.process(id, argv))) {
        Ok(flow) => flow,
        Err(_) => {
            let name = String::from_utf8_lossy(&name);
            s.log(Level::Warning, &format!("internal error while running '{name}'"));
            s.stats.unexpected_error_replies += 1;
            if let Some(c) = s.clients.get_mut(&id) {
                c.out.error("ERR internal error");
            }
            Flow::Continue
        }
    }
}

/// Loads or creates the AOF before the node serves anyone; a load error refuses the start.
async fn open_aof<E: Env>(
    env: &E,
    server: &mut Server,
    bug: Option<crate::persistence::aof::PlantedBug>,
) -> io::Result<Option<Arc<aof_io::AofIo<E>>>> {
    server.aof.planted = bug;
    let opened = aof_io::open(env, server).await;
    flush_logs(env, server);
    match opened {
        Ok(a) => Ok(a),
        Err(e) => {
            env.log_line(&super::log::format_line(env.process_id(), 'M', server.now.unix_ms, Level::Warning, &e.0));
            Err(io::Error::other(e.0))
        }
    }
}

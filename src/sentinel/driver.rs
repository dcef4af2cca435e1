//! Runs a [`Sentinel`] over an `Env`: the timer (10–19 Hz, as Redis randomises a sentinel's
//! `hz`), one task per outgoing link (command or pub/sub), the clients' connections, the event
//! fan-out to subscribed clients and the log, and the config file rewrite, which is on disk
//! before a vote or a new epoch is answered.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};

use super::commands::{SClient, ServerFacts};
use super::config::{self, ServerConf};
use super::{random_id, Action, Event, LinkKey, PlantedBug, Sentinel, Tag};
use crate::env::rt::{AsyncMutex, AsyncReadExt, AsyncWriteExt, IpAddr, Notify, SocketAddr};
use crate::env::{Clock, Env, Listener, Net, Rng};
use crate::protocol::frame::Frame;
use crate::protocol::parser::{Limits, ParseError, RequestParser, PROTO_IOBUF_LEN};
use crate::server::log::{format_line, Level};

/// How long a connect to an instance may take before it counts as failed.
const CONNECT_TIMEOUT_MS: u64 = 1000;

/// Options that are not config statements.
#[derive(Debug, Clone, Default)]
pub struct SentinelOpts {
    pub executable: String,
    /// The config file's name inside the env's disk (the sentinel rewrites it there).
    pub config_name: String,
    pub config_path: String,
    pub bug: Option<PlantedBug>,
}

/// Commands waiting for a link's task to write them.
type Queue = Arc<Mutex<Vec<(Vec<Vec<u8>>, Tag)>>>;

struct LinkHandle {
    generation: u64,
    queue: Queue,
    wake: Arc<Notify>,
    closed: Arc<std::sync::atomic::AtomicBool>,
}

struct ClientSlot {
    client: Mutex<SClient>,
    wake: Notify,
}

/// Everything the sentinel's tasks share.
pub struct SentinelShared {
    state: Mutex<Sentinel>,
    links: Mutex<BTreeMap<LinkKey, LinkHandle>>,
    clients: Mutex<BTreeMap<u64, Arc<ClientSlot>>>,
    conf: Mutex<ServerConf>,
    flush: AsyncMutex<()>,
    facts: Mutex<ServerFacts>,
    next_id: std::sync::atomic::AtomicU64,
    started_ms: u64,
    pub shutdown: Notify,
    opts: SentinelOpts,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SentinelShared {
    pub fn lock(&self) -> MutexGuard<'_, Sentinel> {
        lock(&self.state)
    }
}

/// A started sentinel: its listening addresses and shared state.
pub struct SentinelNode {
    pub shared: Arc<SentinelShared>,
    pub addrs: Vec<SocketAddr>,
}

fn log<E: Env>(env: &E, level: Level, msg: &str) {
    env.log_line(&format_line(env.process_id(), 'X', env.clock().unix_ms(), level, msg));
}

/// Loads the config text, binds, and spawns the timer and the accept loops.
pub async fn start<E: Env>(env: E, text: &str, opts: SentinelOpts) -> io::Result<SentinelNode> {
    let now = env.clock().now_ms();
    let mut sentinel = Sentinel::new(env.rng(), now, env.clock().unix_ms());
    sentinel.bug = opts.bug;
    let mut conf = ServerConf::default();
    config::load(text, &mut conf, &mut sentinel, now).map_err(|e| {
        io::Error::new(io::ErrorKind::InvalidInput, format!("\n*** FATAL CONFIG FILE ERROR (redsim) ***\n{e}"))
    })?;
    log(&env, Level::Warning, "oO0OoO0OoO0Oo redsim is starting oO0OoO0OoO0Oo");
    log(
        &env,
        Level::Warning,
        &format!(
            "Redis version=7.0.15, bits=64, commit=00000000, modified=0, pid={}, just started (redsim {})",
            env.process_id(),
            env!("CARGO_PKG_VERSION")
        ),
    );
    log(&env, Level::Warning, "Configuration loaded");
    let binds = if conf.bind.is_empty() { vec!["0.0.0.0".to_string()] } else { conf.bind.clone() };
    let mut listeners = Vec::new();
    for b in &binds {
        let host = b.trim_start_matches('-');
        let host = if host == "*" { "0.0.0.0" } else { host };
        let ip: IpAddr = host
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("Invalid bind address '{host}'")))?;
        match env.net().bind(SocketAddr::new(ip, conf.port)).await {
            Ok(l) => listeners.push(l),
            Err(e) if b.starts_with('-') => {
                log(&env, Level::Warning, &format!("Warning: Could not create server TCP listening socket {b}: {e}"))
            }
            Err(e) => return Err(e),
        }
    }
    let addrs: Vec<SocketAddr> = listeners.iter().filter_map(|l| l.local_addr().ok()).collect();
    let port = addrs.first().map(|a| a.port()).unwrap_or(conf.port);
    sentinel.my_port = port;
    if let Some(a) = addrs.iter().find(|a| !a.ip().is_unspecified()) {
        sentinel.my_ip = a.ip().to_string();
    }
    log(&env, Level::Notice, &format!("Running mode=sentinel, port={port}."));
    let mut rng = env.rng();
    let facts = ServerFacts {
        run_id: random_id(&mut rng),
        process_id: env.process_id(),
        tcp_port: port,
        executable: opts.executable.clone(),
        config_file: opts.config_path.clone(),
        hz: 10,
        ..ServerFacts::default()
    };
    let monitors: Vec<String> = sentinel
        .masters
        .values()
        .map(|m| format!("+monitor master {} {} {} quorum {}", m.name, m.addr().ip, m.addr().port, m.quorum))
        .collect();
    let myid = sentinel.myid.clone();
    let shared = Arc::new(SentinelShared {
        state: Mutex::new(sentinel),
        links: Mutex::new(BTreeMap::new()),
        clients: Mutex::new(BTreeMap::new()),
        conf: Mutex::new(conf),
        flush: AsyncMutex::new(()),
        facts: Mutex::new(facts),
        next_id: std::sync::atomic::AtomicU64::new(1),
        started_ms: now,
        shutdown: Notify::new(),
        opts,
    });
    flush_config(&env, &shared).await.map_err(|e| {
        io::Error::other(format!("Sentinel config file {} is not writable: {e}. Exiting...", shared.opts.config_path))
    })?;
    log(&env, Level::Notice, "Sentinel new configuration saved on disk");
    log(&env, Level::Warning, &format!("Sentinel ID is {myid}"));
    for m in monitors {
        log(&env, Level::Warning, &m);
    }
    for l in listeners {
        env.spawn(accept_loop(env.clone(), shared.clone(), l));
    }
    env.spawn(timer(env.clone(), shared.clone()));
    Ok(SentinelNode { shared, addrs })
}

/// Runs a sentinel until SHUTDOWN.
pub async fn run<E: Env>(env: E, text: &str, opts: SentinelOpts) -> io::Result<()> {
    let node = start(env.clone(), text, opts).await?;
    node.shared.shutdown.notified().await;
    let _ = flush_config(&env, &node.shared).await;
    log(&env, Level::Warning, "redsim is now ready to exit, bye bye...");
    Ok(())
}

/// Writes the config file: a temp file, fsync, rename over the old one, fsync the directory.
async fn flush_config<E: Env>(env: &E, shared: &SentinelShared) -> io::Result<()> {
    let _order = shared.flush.lock().await;
    let text = {
        let mut s = shared.lock();
        s.config_dirty = false;
        config::rewrite(&lock(&shared.conf), &s)
    };
    crate::env::replace_file(env.disk(), &shared.opts.config_name, "sentinel", text.as_bytes()).await
}

/// Performs what the state machine asked for, logs and publishes its events, and writes the
/// config if it changed (awaited: callers reply only after it is on disk).
async fn pump<E: Env>(env: &E, shared: &Arc<SentinelShared>) {
    let (actions, events, dirty) = {
        let mut s = shared.lock();
        (s.take_actions(), s.take_events(), s.config_dirty)
    };
    publish_events(env, shared, &events);
    for a in actions {
        match a {
            Action::Connect { key, auth, client_name } => {
                let generation = shared.next_id.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let handle = LinkHandle {
                    generation,
                    queue: Arc::new(Mutex::new(Vec::new())),
                    wake: Arc::new(Notify::new()),
                    closed: Arc::new(std::sync::atomic::AtomicBool::new(false)),
                };
                let (queue, wake, closed) = (handle.queue.clone(), handle.wake.clone(), handle.closed.clone());
                if let Some(old) = lock(&shared.links).insert(key.clone(), handle) {
                    old.closed.store(true, std::sync::atomic::Ordering::SeqCst);
                    old.wake.notify_one();
                }
                env.spawn(link_task(
                    env.clone(),
                    shared.clone(),
                    key,
                    auth,
                    client_name,
                    generation,
                    queue,
                    wake,
                    closed,
                ));
            }
            Action::Send { key, cmds } => {
                if let Some(h) = lock(&shared.links).get(&key) {
                    lock(&h.queue).extend(cmds);
                    h.wake.notify_one();
                }
            }
            Action::Close(key) => {
                if let Some(h) = lock(&shared.links).remove(&key) {
                    h.closed.store(true, std::sync::atomic::Ordering::SeqCst);
                    h.wake.notify_one();
                }
            }
        }
    }
    if dirty {
        if let Err(e) = flush_config(env, shared).await {
            log(
                env,
                Level::Warning,
                &format!("WARNING: Sentinel was not able to save the new configuration on disk!!!: {e}"),
            );
        }
    }
}

fn publish_events<E: Env>(env: &E, shared: &SentinelShared, events: &[Event]) {
    if events.is_empty() {
        return;
    }
    for e in events {
        if e.kind.is_empty() {
            log(env, e.level, &e.msg);
        } else {
            log(env, e.level, &format!("{} {}", e.kind, e.msg));
        }
    }
    let clients: Vec<Arc<ClientSlot>> = lock(&shared.clients).values().cloned().collect();
    for slot in clients {
        let mut c = lock(&slot.client);
        if c.subscriptions() == 0 {
            continue;
        }
        let mut wrote = false;
        for e in events.iter().filter(|e| !e.kind.is_empty()) {
            let ch = e.kind.as_bytes();
            if c.channels.contains(ch) {
                c.out.push(3);
                c.out.bulk(b"message");
                c.out.bulk(ch);
                c.out.bulk(e.msg.as_bytes());
                wrote = true;
            }
            let matching: Vec<Vec<u8>> =
                c.patterns.iter().filter(|p| crate::util::glob_match(p, ch, false)).cloned().collect();
            for p in matching {
                c.out.push(4);
                c.out.bulk(b"pmessage");
                c.out.bulk(&p);
                c.out.bulk(ch);
                c.out.bulk(e.msg.as_bytes());
                wrote = true;
            }
        }
        drop(c);
        if wrote {
            slot.wake.notify_one();
        }
    }
}

async fn timer<E: Env>(env: E, shared: Arc<SentinelShared>) {
    let mut rng = env.rng();
    loop {
        let hz = 10 + rng.below(10);
        env.clock().sleep_ms(1000 / hz).await;
        {
            let mut s = shared.lock();
            s.tick(env.clock().now_ms(), env.clock().unix_ms());
            lock(&shared.facts).hz = hz as u32;
        }
        pump(&env, &shared).await;
    }
}

fn resolve(ip: &str, port: u16) -> Option<SocketAddr> {
    let ip: IpAddr = if ip == "localhost" { IpAddr::from([127, 0, 0, 1]) } else { ip.parse().ok()? };
    Some(SocketAddr::new(ip, port))
}

fn encode(cmd: &[Vec<u8>], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("*{}\r\n", cmd.len()).as_bytes());
    for a in cmd {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// A link's task, boxed: it pumps actions, which spawn link tasks.
#[allow(clippy::too_many_arguments)]
fn link_task<E: Env>(
    env: E,
    shared: Arc<SentinelShared>,
    key: LinkKey,
    auth: Option<(Option<String>, String)>,
    client_name: String,
    generation: u64,
    queue: Queue,
    wake: Arc<Notify>,
    closed: Arc<std::sync::atomic::AtomicBool>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
    Box::pin(async move {
        let _ = link_io(&env, &shared, &key, auth, client_name, &queue, &wake, &closed).await;
        let current = {
            let mut links = lock(&shared.links);
            let current = links.get(&key).is_some_and(|h| h.generation == generation);
            if current {
                links.remove(&key);
            }
            current
        };
        if current {
            shared.lock().link_down(&key);
            pump(&env, &shared).await;
        }
    })
}

#[allow(clippy::too_many_arguments)]
async fn link_io<E: Env>(
    env: &E,
    shared: &Arc<SentinelShared>,
    key: &LinkKey,
    auth: Option<(Option<String>, String)>,
    client_name: String,
    queue: &Queue,
    wake: &Notify,
    closed: &std::sync::atomic::AtomicBool,
) -> Result<(), String> {
    use std::sync::atomic::Ordering;
    let addr = resolve(&key.addr.ip, key.addr.port).ok_or("can't resolve")?;
    let mut conn = crate::env::rt::select! {
        c = env.net().connect(addr) => c.map_err(|e| e.to_string())?,
        _ = env.clock().sleep_ms(CONNECT_TIMEOUT_MS) => return Err("connect timeout".into()),
    };
    let mut first = Vec::new();
    let mut tags: std::collections::VecDeque<Tag> = std::collections::VecDeque::new();
    if let Some((user, pass)) = auth {
        match user {
            Some(u) => encode(&[b"AUTH".to_vec(), u.into_bytes(), pass.into_bytes()], &mut first),
            None => encode(&[b"AUTH".to_vec(), pass.into_bytes()], &mut first),
        }
        tags.push_back(Tag::Ignore);
    }
    encode(&[b"CLIENT".to_vec(), b"SETNAME".to_vec(), client_name.into_bytes()], &mut first);
    tags.push_back(Tag::Ignore);
    conn.write_all(&first).await.map_err(|e| e.to_string())?;
    if closed.load(Ordering::SeqCst) {
        return Ok(());
    }
    shared.lock().link_up(key, env.clock().now_ms());
    pump(env, shared).await;
    let mut buf = BytesMut::with_capacity(PROTO_IOBUF_LEN);
    loop {
        if closed.load(Ordering::SeqCst) {
            return Ok(());
        }
        let cmds = std::mem::take(&mut *lock(queue));
        if !cmds.is_empty() {
            let mut out = Vec::new();
            for (c, t) in cmds {
                encode(&c, &mut out);
                tags.push_back(t);
            }
            conn.write_all(&out).await.map_err(|e| e.to_string())?;
            continue;
        }
        let n = crate::env::rt::select! {
            _ = wake.notified() => continue,
            r = conn.read_buf(&mut buf) => r.map_err(|e| e.to_string())?,
        };
        if n == 0 {
            return Err("closed by peer".into());
        }
        let mut any = false;
        loop {
            match Frame::parse(&buf) {
                Ok(Some((frame, used))) => {
                    let _ = buf.split_to(used);
                    let now = env.clock().now_ms();
                    let mut s = shared.lock();
                    if key.pubsub {
                        s.on_pubsub(key, &frame, now);
                    } else if let Some(tag) = tags.pop_front() {
                        s.on_reply(key, tag, &frame, now);
                    }
                    any = true;
                }
                Ok(None) => break,
                Err(e) => return Err(e.0),
            }
        }
        if any {
            pump(env, shared).await;
        }
    }
}

async fn accept_loop<E: Env>(env: E, shared: Arc<SentinelShared>, listener: <E::Net as Net>::Listener) {
    let laddr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    loop {
        match listener.accept().await {
            Ok((conn, peer)) => env.spawn(serve_client(env.clone(), shared.clone(), conn, peer, laddr.clone())),
            Err(_) => env.clock().sleep_ms(10).await,
        }
    }
}

async fn serve_client<E: Env>(
    env: E,
    shared: Arc<SentinelShared>,
    mut conn: <E::Net as Net>::Conn,
    peer: SocketAddr,
    laddr: String,
) {
    let id = shared.next_id.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let slot = Arc::new(ClientSlot {
        client: Mutex::new(SClient::new(id, peer.to_string(), laddr, env.clock().now_ms())),
        wake: Notify::new(),
    });
    lock(&shared.clients).insert(id, slot.clone());
    lock(&shared.facts).total_connections += 1;
    let _ = client_loop(&env, &shared, &mut conn, &slot).await;
    lock(&shared.clients).remove(&id);
}

async fn client_loop<E: Env>(
    env: &E,
    shared: &Arc<SentinelShared>,
    conn: &mut <E::Net as Net>::Conn,
    slot: &ClientSlot,
) -> io::Result<()> {
    let mut parser = RequestParser::new(Limits::default());
    let mut qbuf = BytesMut::with_capacity(PROTO_IOBUF_LEN);
    loop {
        let out = std::mem::take(&mut lock(&slot.client).out.buf);
        if !out.is_empty() {
            conn.write_all(&out).await?;
        }
        if lock(&slot.client).close_after_reply {
            return Ok(());
        }
        let n = crate::env::rt::select! {
            _ = slot.wake.notified() => continue,
            r = conn.read_buf(&mut qbuf) => r?,
        };
        if n == 0 {
            return Ok(());
        }
        loop {
            let req = parser.next_request(&mut qbuf, true);
            let argv: Vec<Bytes> = match req {
                Ok(Some(a)) => a,
                Ok(None) => break,
                Err(ParseError::Protocol(text)) => {
                    let mut c = lock(&slot.client);
                    c.out.error(&format!("ERR {text}"));
                    c.close_after_reply = true;
                    break;
                }
                Err(ParseError::QueryBufferLimit) => return Ok(()),
            };
            let now = env.clock().now_ms();
            let facts = {
                let mut f = lock(&shared.facts).clone();
                f.uptime_ms = now.saturating_sub(shared.started_ms);
                f.unix_us = env.clock().unix_us();
                f.connected_clients = lock(&shared.clients).len();
                f
            };
            let shutdown = {
                let mut c = lock(&slot.client);
                shared.lock().command(&mut c, &argv, &facts, now);
                lock(&shared.facts).total_commands += 1;
                std::mem::take(&mut c.shutdown)
            };
            // Votes and epochs are on disk before the reply goes out.
            pump(env, shared).await;
            if shutdown {
                shared.shutdown.notify_one();
            }
        }
    }
}

/// Reads the config file from the env's disk (empty text when it does not exist yet).
pub async fn read_config<E: Env>(env: &E, name: &str) -> io::Result<String> {
    let bytes = crate::env::read_file(env.disk(), name).await?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

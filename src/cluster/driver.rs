//! The cluster bus's I/O: a listener on the bus port, one task per connection, and a pump
//! that performs what the cluster asked (connect, send, close) and writes nodes.conf. The
//! config is written before the packets queued with it leave, so that a vote is on disk
//! before its ACK is on the wire.

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::bus::Framer;
use super::BusAction;
use crate::env::rt::{AsyncReadExt, AsyncWriteExt, IpAddr, Notify, SocketAddr};
use crate::env::{Clock, Env, Listener, Net};
use crate::server::driver::{now, Shared};

/// How long a bus connect may take before the link is dropped (the cron retries).
const CONNECT_TIMEOUT_MS: u64 = 1000;
/// Bytes read from a bus link at once.
const READ_CHUNK: usize = 16 * 1024;

/// One link's outgoing queue and its task's wake-up.
pub struct LinkHandle {
    queue: Arc<Mutex<Vec<Vec<u8>>>>,
    wake: Arc<Notify>,
    closed: Arc<AtomicBool>,
}

/// The cluster's I/O side, shared by its tasks.
#[derive(Default)]
pub struct ClusterIo {
    links: Mutex<BTreeMap<u64, LinkHandle>>,
    /// Wakes the pump: a command, the cron or a packet left actions.
    pub wake: Notify,
    /// Serialises nodes.conf writes.
    saving: crate::env::rt::AsyncMutex<()>,
    config_file: Mutex<String>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Loads nodes.conf (or creates the node's first one), binds the bus port and starts the
/// pump. A corrupt nodes.conf stops the server, as in Redis.
pub async fn start<E: Env>(env: &E, shared: &Arc<Shared>, bind_ips: &[IpAddr]) -> io::Result<()> {
    let (file, port) = {
        let s = shared.lock();
        if s.cluster.is_none() {
            return Ok(());
        }
        (s.config.get("cluster-config-file").unwrap_or("nodes.conf").to_string(), s.cluster_bus_port())
    };
    *lock(&shared.cluster_io.config_file) = file.clone();
    let bytes = match crate::env::read_file(env.disk(), &file).await {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    let text = String::from_utf8_lossy(&bytes).into_owned();
    {
        let mut s = shared.lock();
        s.set_now(now(env.clock()));
        let now_ms = s.now.unix_ms;
        let c = s.cluster.as_mut().expect("checked");
        match super::config::load(c, &text, now_ms) {
            Ok(true) => {
                let me = c.myself.clone();
                s.log(crate::server::log::Level::Notice, &format!("Node configuration loaded, I'm {me}"));
            }
            Ok(false) => {
                let me = c.myself.clone();
                s.log(crate::server::log::Level::Notice, &format!("No cluster configuration found, I'm {me}"));
            }
            Err(e) => {
                let msg = format!("Unrecoverable error: corrupted cluster config file \"{file}\" ({e}).");
                s.log(crate::server::log::Level::Warning, &msg);
                return Err(io::Error::other(msg));
            }
        }
        s.cluster_refresh_facts();
        if let Err(msg) = s.cluster_verify_data() {
            s.log(crate::server::log::Level::Warning, &msg);
            crate::server::driver::flush_server_logs(env, &mut s);
            return Err(io::Error::other(msg));
        }
        let c = s.cluster.as_mut().expect("checked");
        c.save_config_soon(true);
        // A replica (from nodes.conf) replicates its master from the start.
        let me = c.me();
        if let Some(m) = me.slaveof.as_deref().and_then(|m| c.nodes.get(m)).filter(|_| me.is_replica()) {
            let (ip, p) = (m.ip.clone(), m.port);
            c.effects.push(super::Effect::ReplicaOf { ip, port: p });
        }
        s.cluster_apply();
    }
    save_config(env, shared).await?;
    for ip in bind_ips {
        let l = env.net().bind(SocketAddr::new(*ip, port)).await?;
        env.spawn(accept_loop(env.clone(), shared.clone(), l));
    }
    env.spawn(pump_loop(env.clone(), shared.clone()));
    Ok(())
}

/// Writes nodes.conf through a temporary file, fsynced and renamed.
async fn save_config<E: Env>(env: &E, shared: &Shared) -> io::Result<()> {
    let _one = shared.cluster_io.saving.lock().await;
    let text = {
        let mut s = shared.lock();
        let Some(c) = s.cluster.as_mut() else { return Ok(()) };
        c.todo_save_config = false;
        c.todo_fsync_config = false;
        super::config::render(c)
    };
    let name = lock(&shared.cluster_io.config_file).clone();
    crate::env::replace_file(env.disk(), &name, "redsim", text.as_bytes()).await
}

/// Wakes the pump if the last turn left the cluster something to do.
pub fn notify_if_pending(shared: &Shared, s: &crate::server::Server) {
    if s.cluster.as_ref().is_some_and(|c| !c.out.is_empty() || c.todo_save_config || c.todo_update_state) {
        shared.cluster_io.wake.notify_one();
    }
}

async fn pump_loop<E: Env>(env: E, shared: Arc<Shared>) {
    loop {
        crate::env::rt::select! {
            _ = shared.cluster_io.wake.notified() => {}
            _ = env.clock().sleep_ms(super::super::server::cluster::CLUSTER_CRON_PERIOD_MS) => {}
        }
        pump(&env, &shared).await;
    }
}

/// Performs the cluster's actions; the config goes to disk before any packet leaves.
pub async fn pump<E: Env>(env: &E, shared: &Arc<Shared>) {
    let (actions, save) = {
        let mut s = shared.lock();
        s.set_now(now(env.clock()));
        s.cluster_before_sleep();
        let Some(c) = s.cluster.as_mut() else { return };
        let actions = std::mem::take(&mut c.out);
        let save = c.todo_save_config;
        shared.wake_pending(&mut s);
        crate::server::driver::flush_server_logs(env, &mut s);
        (actions, save)
    };
    if save {
        if let Err(e) = save_config(env, shared).await {
            let mut s = shared.lock();
            s.log(crate::server::log::Level::Warning, &format!("Could not save the cluster config: {e}"));
            crate::server::driver::flush_server_logs(env, &mut s);
        }
    }
    for a in actions {
        match a {
            BusAction::Connect { link, ip, cport } => {
                let handle = new_handle();
                let io = (handle.queue.clone(), handle.wake.clone(), handle.closed.clone());
                lock(&shared.cluster_io.links).insert(link, handle);
                env.spawn(outbound(env.clone(), shared.clone(), link, ip, cport, io));
            }
            BusAction::Send { link, bytes } => {
                if let Some(h) = lock(&shared.cluster_io.links).get(&link) {
                    lock(&h.queue).push(bytes);
                    h.wake.notify_one();
                }
            }
            BusAction::Close { link } => {
                if let Some(h) = lock(&shared.cluster_io.links).remove(&link) {
                    h.closed.store(true, Ordering::SeqCst);
                    h.wake.notify_one();
                }
            }
        }
    }
}

fn new_handle() -> LinkHandle {
    LinkHandle {
        queue: Arc::new(Mutex::new(Vec::new())),
        wake: Arc::new(Notify::new()),
        closed: Arc::new(AtomicBool::new(false)),
    }
}

type LinkIo = (Arc<Mutex<Vec<Vec<u8>>>>, Arc<Notify>, Arc<AtomicBool>);

/// A boxed task, so that the pump (which spawns link tasks) and the links (which pump) can
/// refer to each other.
fn outbound<E: Env>(
    env: E,
    shared: Arc<Shared>,
    link: u64,
    ip: String,
    cport: u16,
    io: LinkIo,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
    Box::pin(async move {
        let addr = ip.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, cport));
        let conn = match addr {
            None => None,
            Some(addr) => crate::env::rt::select! {
                c = env.net().connect(addr) => c.ok(),
                _ = env.clock().sleep_ms(CONNECT_TIMEOUT_MS) => None,
            },
        };
        if let Some(mut conn) = conn {
            if !io.2.load(Ordering::SeqCst) {
                {
                    let mut s = shared.lock();
                    s.set_now(now(env.clock()));
                    s.cluster_refresh_facts();
                    let now_ms = s.now.unix_ms;
                    let srv = &mut *s;
                    if let Some(c) = srv.cluster.as_mut() {
                        c.link_connected(link, now_ms, &mut srv.rng);
                    }
                }
                pump(&env, &shared).await;
                let _ = link_io(&env, &shared, link, &mut conn, &io).await;
            }
        } else {
            let mut s = shared.lock();
            s.log(crate::server::log::Level::Verbose, &format!("Connection with Node at {ip}:{cport} failed"));
        }
        closed(&env, &shared, link).await;
    })
}

async fn closed<E: Env>(env: &E, shared: &Arc<Shared>, link: u64) {
    let current = lock(&shared.cluster_io.links).remove(&link).is_some();
    {
        let mut s = shared.lock();
        if let Some(c) = s.cluster.as_mut() {
            c.link_closed(link);
        }
    }
    if current {
        pump(env, shared).await;
    }
}

/// Writes what is queued, reads packets and hands them to the cluster, until either side
/// closes.
async fn link_io<E: Env>(
    env: &E,
    shared: &Arc<Shared>,
    link: u64,
    conn: &mut <E::Net as Net>::Conn,
    io: &LinkIo,
) -> io::Result<()> {
    let (queue, wake, closed) = io;
    let mut framer = Framer::new();
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        if closed.load(Ordering::SeqCst) {
            return Ok(());
        }
        let pending = std::mem::take(&mut *lock(queue));
        if !pending.is_empty() {
            for p in pending {
                conn.write_all(&p).await?;
            }
            conn.flush().await?;
            continue;
        }
        let n = crate::env::rt::select! {
            _ = wake.notified() => continue,
            r = conn.read(&mut buf) => r?,
        };
        if n == 0 {
            return Ok(());
        }
        framer.feed(&buf[..n]);
        let mut keep = true;
        loop {
            match framer.next() {
                Ok(Some(packet)) => {
                    let mut s = shared.lock();
                    s.set_now(now(env.clock()));
                    if !s.cluster_packet(link, &packet) {
                        keep = false;
                        break;
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    keep = false;
                    break;
                }
            }
        }
        pump(env, shared).await;
        if !keep {
            return Ok(());
        }
    }
}

async fn accept_loop<E: Env>(env: E, shared: Arc<Shared>, listener: <E::Net as Net>::Listener) {
    let local = listener.local_addr().ok().filter(|a| !a.ip().is_unspecified()).map(|a| a.ip().to_string());
    let local = local.unwrap_or_default();
    loop {
        match listener.accept().await {
            Ok((conn, peer)) => {
                let link = {
                    let mut s = shared.lock();
                    s.set_now(now(env.clock()));
                    let now_ms = s.now.unix_ms;
                    let Some(c) = s.cluster.as_mut() else { return };
                    // On a wildcard bind the local address is unknown here: the node then
                    // learns its address from the peers' gossip instead.
                    c.link_accepted(&peer.ip().to_string(), &local, now_ms)
                };
                let handle = new_handle();
                let io = (handle.queue.clone(), handle.wake.clone(), handle.closed.clone());
                lock(&shared.cluster_io.links).insert(link, handle);
                env.spawn(inbound(env.clone(), shared.clone(), link, conn, io));
            }
            Err(_) => env.clock().sleep_ms(10).await,
        }
    }
}

fn inbound<E: Env>(
    env: E,
    shared: Arc<Shared>,
    link: u64,
    mut conn: <E::Net as Net>::Conn,
    io: LinkIo,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
    Box::pin(async move {
        let _ = link_io(&env, &shared, link, &mut conn, &io).await;
        closed(&env, &shared, link).await;
    })
}

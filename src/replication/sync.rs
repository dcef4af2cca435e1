//! The master's side of a full resync: fork a snapshot (as BGSAVE does) and send its bytes to
//! the replica's connection, then the stream buffered since the fork. Diskless, as Redis 7.0's
//! default `repl-diskless-sync yes`: the RDB goes from the child's pipe to the socket, framed
//! `$EOF:<mark>` ... `<mark>` for replicas with `capa eof`, else `$<len>` (buffered first).
//! With `repl-diskless-sync no` a BGSAVE writes the RDB file and every replica waiting for it
//! gets the file as `$<len>` (`commands::replication` decides, `disk_sync_done` sends).

use std::io;
use std::sync::Weak;

use crate::engine::db::Db;
use crate::env::{Clock, Env, SnapshotChild};
use crate::persistence::rdb::{self, RdbAux, SaveOptions};
use crate::server::driver::{now, Shared};
use crate::server::log::Level;
use crate::server::Server;

/// A replica's output beyond this many bytes makes the sender wait before reading more of
/// the snapshot (so a slow replica does not make the master buffer a whole RDB).
const SYNC_OUTPUT_HIGH_WATER: usize = 4 << 20;

/// Starts replica syncs; the driver installs one that forks through the env.
pub trait ReplicaForker: Send + 'static {
    /// Forks a snapshot of `dbs` for client `client` and spawns its sender; the child's pid.
    fn replica_sync(
        &self,
        dbs: &[Db],
        aux: &RdbAux,
        opts: SaveOptions,
        client: u64,
        eof_mark: Option<[u8; 40]>,
    ) -> io::Result<u32>;

    /// Sends the RDB file `name` (written by a BGSAVE for replication) to replica `client`
    /// as `$<len>` and its bytes, then puts it online.
    fn send_rdb_file(&self, client: u64, name: String) -> io::Result<()>;
}

/// A server without a driver (unit tests) cannot sync replicas.
pub struct NoReplicaFork;

impl ReplicaForker for NoReplicaFork {
    fn replica_sync(&self, _: &[Db], _: &RdbAux, _: SaveOptions, _: u64, _: Option<[u8; 40]>) -> io::Result<u32> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "no fork without a driver"))
    }

    fn send_rdb_file(&self, _: u64, _: String) -> io::Result<()> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "no transfer without a driver"))
    }
}

/// The driver's [`ReplicaForker`].
pub struct EnvReplicaForker<E: Env> {
    pub env: E,
    pub shared: Weak<Shared>,
}

impl<E: Env> ReplicaForker for EnvReplicaForker<E> {
    fn replica_sync(
        &self,
        dbs: &[Db],
        aux: &RdbAux,
        opts: SaveOptions,
        client: u64,
        eof_mark: Option<[u8; 40]>,
    ) -> io::Result<u32> {
        let mut child = self.env.fork_snapshot(|mut w| rdb::save(&mut w, dbs, aux, &opts))?;
        let pid = child.pid();
        let (env, shared) = (self.env.clone(), self.shared.clone());
        self.env.spawn(async move {
            let ok = send_snapshot(&env, &shared, &mut child, client, eof_mark).await;
            let Some(shared) = shared.upgrade() else { return };
            let mut s = shared.lock();
            s.set_now(now(env.clock()));
            if ok {
                s.log(Level::Notice, "Background RDB transfer terminated with success");
                s.replica_online(client, eof_mark.is_some());
            } else {
                s.log(Level::Warning, "Background RDB transfer error");
                s.kill_client(client);
            }
            shared.wake_pending(&mut s);
        });
        Ok(pid)
    }

    fn send_rdb_file(&self, client: u64, name: String) -> io::Result<()> {
        let (env, shared) = (self.env.clone(), self.shared.clone());
        self.env.spawn(async move {
            let ok = send_file(&env, &shared, client, &name).await;
            let Some(shared) = shared.upgrade() else { return };
            let mut s = shared.lock();
            s.set_now(now(env.clock()));
            if ok {
                s.replica_online(client, false);
            } else {
                s.log(Level::Warning, &format!("SYNC failed. Can't open/stat DB after BGSAVE: {name}"));
                s.kill_client(client);
            }
            shared.wake_pending(&mut s);
        });
        Ok(())
    }
}

/// Reads the RDB file and sends it as one `$<len>` bulk, paced by the replica's output.
async fn send_file<E: Env>(env: &E, shared: &Weak<Shared>, client: u64, name: &str) -> bool {
    let Ok(bytes) = crate::env::read_file(env.disk(), name).await else { return false };
    let Some(sh) = shared.upgrade() else { return false };
    if push(&sh, client, format!("${}\r\n", bytes.len()).as_bytes()).is_none() {
        return false;
    }
    for chunk in bytes.chunks(SYNC_OUTPUT_HIGH_WATER / 4) {
        if !push_paced(env, &sh, client, chunk).await {
            return false;
        }
    }
    true
}

/// [`push`], then waits while the replica's output is above the high-water mark.
async fn push_paced<E: Env>(env: &E, sh: &Shared, client: u64, bytes: &[u8]) -> bool {
    match push(sh, client, bytes) {
        None => false,
        Some(pending) => {
            if pending > SYNC_OUTPUT_HIGH_WATER {
                // Let the replica's task drain its output first.
                while sh.lock().clients.get(&client).is_some_and(|c| c.out.buf.len() > SYNC_OUTPUT_HIGH_WATER / 2) {
                    env.clock().sleep_ms(1).await;
                }
            }
            true
        }
    }
}

/// Appends bytes to the replica's output and wakes its task; false when it is gone.
fn push(shared: &Shared, client: u64, bytes: &[u8]) -> Option<usize> {
    let mut s = shared.lock();
    let c = s.clients.get_mut(&client)?;
    if c.close_asap {
        return None;
    }
    c.out.buf.extend_from_slice(bytes);
    let pending = c.out.buf.len();
    s.wakeups.push(client);
    shared.wake_pending(&mut s);
    Some(pending)
}

async fn send_snapshot<E: Env, C: SnapshotChild>(
    env: &E,
    shared: &Weak<Shared>,
    child: &mut C,
    client: u64,
    eof_mark: Option<[u8; 40]>,
) -> bool {
    let Some(sh) = shared.upgrade() else { return false };
    let mut buffered = Vec::new();
    if let Some(mark) = &eof_mark {
        let mut header = b"$EOF:".to_vec();
        header.extend_from_slice(mark);
        header.extend_from_slice(b"\r\n");
        if push(&sh, client, &header).is_none() {
            child.kill();
            return false;
        }
    }
    loop {
        let chunk = match child.read_chunk().await {
            Ok(c) => c,
            Err(_) => {
                child.kill();
                return false;
            }
        };
        if chunk.is_empty() {
            break;
        }
        if eof_mark.is_none() {
            buffered.extend_from_slice(&chunk);
            continue;
        }
        if !push_paced(env, &sh, client, &chunk).await {
            child.kill();
            return false;
        }
    }
    if !child.wait().await.unwrap_or(false) {
        return false;
    }
    let tail = match &eof_mark {
        Some(mark) => mark.to_vec(),
        None => {
            let mut t = format!("${}\r\n", buffered.len()).into_bytes();
            t.extend_from_slice(&buffered);
            t
        }
    };
    push(&sh, client, &tail).is_some()
}

impl Server {
    /// Forks the snapshot a full resync sends to replica `client`.
    pub fn start_replica_sync(&mut self, client: u64, eof_mark: Option<[u8; 40]>) -> io::Result<u32> {
        let (aux, opts) = (self.rdb_aux(), self.rdb_save_options());
        let start_us = self.sys.mono_us();
        let pid = self.repl_forker.replica_sync(&self.dbs, &aux, opts, client, eof_mark)?;
        self.stats.total_forks += 1;
        self.stats.latest_fork_usec = self.sys.mono_us().saturating_sub(start_us);
        self.latency_sample("fork", self.stats.latest_fork_usec / 1000);
        Ok(pid)
    }
}

//! The replica's link to its master (Redis's `connectWithMaster` / `syncWithMaster` /
//! `readSyncBulkPayload` and the master client): connect, handshake, load the RDB of a full
//! resync or continue from the backlog, then apply the stream through a client flagged as the
//! master, passing every byte on to this node's backlog and replicas, and acknowledging the
//! applied offset every second and on GETACK. Generic over `Env`.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::handshake::{Handshake, HandshakeConfig, PayloadReader, Progress};
use super::LinkState;
use crate::env::rt::{AsyncReadExt, AsyncWriteExt, IpAddr, SocketAddr};
use crate::env::{Clock, Env, Net};
use crate::persistence::snapshot::{write_snapshot, ReadyBytes};
use crate::protocol::frame::Frame;
use crate::protocol::parser::PROTO_IOBUF_LEN;
use crate::server::client::ReplRole;
use crate::server::driver::{now, Shared};
use crate::server::log::Level;
use crate::server::Server;

/// How often the replica acknowledges its offset (Redis: every replicationCron, 1 s).
const ACK_PERIOD_MS: u64 = 1000;
/// How long to wait before reconnecting after the link failed.
const RECONNECT_DELAY_MS: u64 = 1000;

/// Runs the link of `generation` until a REPLICAOF replaces it.
pub async fn run_link<E: Env>(env: E, shared: Arc<Shared>, generation: u64) {
    loop {
        let target = {
            let s = shared.lock();
            if s.repl.link_generation != generation {
                return;
            }
            s.repl.master.as_ref().map(|m| (m.host.clone(), m.port))
        };
        let Some((host, port)) = target else { return };
        let result = link_once(&env, &shared, generation, &host, port).await;
        {
            let mut s = shared.lock();
            s.set_now(now(env.clock()));
            if let Err(e) = result {
                if s.repl.link_generation == generation {
                    s.log(Level::Warning, &e);
                }
            }
            s.link_down(generation);
            shared.wake_pending(&mut s);
        }
        env.clock().sleep_ms(RECONNECT_DELAY_MS).await;
    }
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    let ip: IpAddr = match host {
        "localhost" => IpAddr::from([127, 0, 0, 1]),
        h => h.parse().map_err(|_| format!("Unable to connect to MASTER: can't resolve '{h}'"))?,
    };
    Ok(SocketAddr::new(ip, port))
}

/// Reads until a full line is in `buf`; returns it without its CRLF.
async fn read_line<C: AsyncReadExt + Unpin>(conn: &mut C, buf: &mut BytesMut) -> Result<Vec<u8>, String> {
    loop {
        if let Some(nl) = buf.iter().position(|&b| b == b'\n') {
            let line = buf.split_to(nl + 1);
            let line = line.strip_suffix(b"\n").unwrap_or(&line);
            return Ok(line.strip_suffix(b"\r").unwrap_or(line).to_vec());
        }
        match conn.read_buf(buf).await {
            Ok(0) => return Err("Master closed the connection during the handshake".into()),
            Ok(_) => {}
            Err(e) => return Err(format!("Error condition on socket for SYNC: {e}")),
        }
    }
}

fn set_state(shared: &Shared, generation: u64, state: LinkState) -> Result<(), String> {
    if shared.lock().set_link_state(generation, state) {
        Ok(())
    } else {
        Err(String::new())
    }
}

async fn link_once<E: Env>(
    env: &E,
    shared: &Arc<Shared>,
    generation: u64,
    host: &str,
    port: u16,
) -> Result<(), String> {
    {
        let mut s = shared.lock();
        s.set_now(now(env.clock()));
        s.log(Level::Notice, &format!("Connecting to MASTER {host}:{port}"));
        s.log(Level::Notice, "MASTER <-> REPLICA sync started");
    }
    set_state(shared, generation, LinkState::Connecting)?;
    let addr = resolve(host, port)?;
    let mut conn = env.net().connect(addr).await.map_err(|e| format!("Error condition on socket for SYNC: {e}"))?;
    let cfg = {
        let mut s = shared.lock();
        s.log(Level::Notice, "Non blocking connect for SYNC fired the event.");
        handshake_config(&s)
    };
    set_state(shared, generation, LinkState::Handshake)?;
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let (mut hs, first) = Handshake::start(cfg.clone());
    conn.write_all(&first).await.map_err(|e| format!("Error condition on socket for SYNC: {e}"))?;
    let answer = loop {
        let line = read_line(&mut conn, &mut buf).await?;
        if line.is_empty() {
            continue;
        }
        let psync_reply = hs.awaits_psync_reply();
        let progress = hs.on_line(&line);
        if psync_reply && cfg.failover {
            match &progress {
                Ok(Progress::FullResync { .. } | Progress::Continue { .. }) => {}
                Ok(Progress::Retry(why)) | Err(why) => {
                    let mut s = shared.lock();
                    if s.repl.link_generation == generation {
                        s.log(Level::Warning, why);
                        s.abort_failover("Failover target rejected psync request");
                    }
                    return Err(String::new());
                }
                Ok(_) => {}
            }
        }
        match progress? {
            Progress::Wait => {}
            Progress::Send(bytes) => {
                if hs.awaits_psync_reply() {
                    let mut s = shared.lock();
                    match &cfg.psync {
                        Some((id, off)) => s.log(
                            Level::Notice,
                            &format!("Trying a partial resynchronization (request {id}:{}).", off + 1),
                        ),
                        None => s.log(Level::Notice, "Partial resynchronization not possible (no cached master)"),
                    }
                } else {
                    shared.lock().log(Level::Notice, "Master replied to PING, replication can continue...");
                }
                conn.write_all(&bytes).await.map_err(|e| format!("Error condition on socket for SYNC: {e}"))?;
            }
            Progress::Retry(why) => return Err(why),
            p @ (Progress::FullResync { .. } | Progress::Continue { .. }) => break p,
        }
    };
    if cfg.failover {
        let mut s = shared.lock();
        if s.repl.link_generation == generation {
            s.failover_done();
        }
    }
    match answer {
        Progress::FullResync { replid, offset } => {
            let (mode, target) = {
                let mut s = shared.lock();
                s.log(Level::Notice, &format!("Full resync from master: {replid}:{offset}"));
                let mode = s.full_sync_load_mode();
                let how = if mode == LoadMode::Disk { "to disk" } else { "to parser" };
                s.log(Level::Notice, &format!("MASTER <-> REPLICA sync: receiving streamed RDB from master {how}"));
                (mode, s.rdb_filename())
            };
            set_state(shared, generation, LinkState::Sync)?;
            let mut reader = PayloadReader::default();
            let mut chunk = buf.split().freeze().to_vec();
            let rest = loop {
                if let Some(n) = reader.feed(&chunk)? {
                    break chunk[n..].to_vec();
                }
                chunk.clear();
                let mut more = BytesMut::with_capacity(64 * 1024);
                match conn.read_buf(&mut more).await {
                    Ok(0) => return Err("I/O error trying to sync with MASTER: connection lost".into()),
                    Ok(_) => chunk.extend_from_slice(&more),
                    Err(e) => return Err(format!("I/O error trying to sync with MASTER: {e}")),
                }
                let mut s = shared.lock();
                s.set_now(now(env.clock()));
                let now_ms = s.now.mono_ms;
                if let Some(m) = s.repl.master.as_mut() {
                    let sync = m.sync.get_or_insert_with(Default::default);
                    sync.read = reader.payload.len() as u64;
                    sync.last_io_ms = now_ms;
                    m.last_io_ms = Some(now_ms);
                }
            };
            // repl-diskless-load disabled (the default), or on-empty-db with data: the RDB is
            // stored as dbfilename first, durably, then loaded (Redis keeps the master's
            // snapshot on disk).
            if mode == LoadMode::Disk {
                let mut bytes = ReadyBytes { pid: env.process_id(), bytes: Some(std::mem::take(&mut reader.payload)) };
                let keep = bytes.bytes.clone();
                let cancel = std::sync::atomic::AtomicBool::new(false);
                if let Err(e) = write_snapshot(env.disk(), &mut bytes, &target, &cancel).await {
                    return Err(format!("Failed trying to save the MASTER synchronization DB to disk: {e}"));
                }
                reader.payload = keep.unwrap_or_default();
            }
            {
                let mut s = shared.lock();
                s.set_now(now(env.clock()));
                if s.repl.link_generation != generation {
                    return Err(String::new());
                }
                s.full_sync_loaded(&reader.payload, replid, offset, mode == LoadMode::Swap)?;
            }
            buf = BytesMut::from(&rest[..]);
        }
        Progress::Continue { new_replid } => {
            let mut s = shared.lock();
            s.set_now(now(env.clock()));
            s.log(Level::Notice, "Successful partial resynchronization with master.");
            s.partial_sync_accepted(new_replid);
            s.log(Level::Notice, "MASTER <-> REPLICA sync: Master accepted a Partial Resynchronization.");
        }
        _ => unreachable!("the handshake loop ends on a resync answer"),
    }
    stream(env, shared, generation, &mut conn, buf, addr).await
}

fn handshake_config(s: &Server) -> HandshakeConfig {
    let nonempty = |n: &str| s.config.get(n).filter(|v| !v.is_empty()).map(str::to_string);
    HandshakeConfig {
        listening_port: s
            .config
            .get("replica-announce-port")
            .and_then(|p| p.parse().ok())
            .filter(|&p| p != 0)
            .unwrap_or(s.listening_port),
        announce_ip: nonempty("replica-announce-ip"),
        masteruser: nonempty("masteruser"),
        masterauth: nonempty("masterauth"),
        psync: s.repl.cached.clone(),
        failover: s.failover_in_progress(),
    }
}

/// Applies the master's stream until the link breaks or a REPLICAOF replaces it.
async fn stream<E: Env, C>(
    env: &E,
    shared: &Arc<Shared>,
    generation: u64,
    conn: &mut C,
    mut buf: BytesMut,
    addr: SocketAddr,
) -> Result<(), String>
where
    C: AsyncReadExt + AsyncWriteExt + Unpin,
{
    let client = {
        let mut s = shared.lock();
        let id = s.add_client(addr.to_string(), String::new());
        if let Some(c) = s.clients.get_mut(&id) {
            c.repl_role = ReplRole::Master;
            c.authenticated = true;
        }
        s.repl.master_client = Some(id);
        if !s.set_link_state(generation, LinkState::Connected) {
            return Err(String::new());
        }
        let (t, off) = (s.now.mono_ms, s.repl.state.master_repl_offset);
        if let Some(m) = s.repl.master.as_mut() {
            m.last_io_ms = Some(t);
            m.reploff = off;
            m.read_reploff = off;
            m.sync = None;
        }
        id
    };
    let mut next_ack = 0;
    let mut got_data = false;
    loop {
        let (ack, now_ms, timeout_ms, last_io) = {
            let mut s = shared.lock();
            s.set_now(now(env.clock()));
            if s.repl.link_generation != generation || s.repl.master_client != Some(client) {
                return Err(String::new());
            }
            let now_ms = s.now.mono_ms;
            if std::mem::take(&mut got_data) {
                if let Some(m) = s.repl.master.as_mut() {
                    m.last_io_ms = Some(now_ms);
                }
            }
            let ack = s.apply_master_stream(client, &mut buf)?;
            shared.wake_pending(&mut s);
            let off = s.repl.state.master_repl_offset;
            let last_io = s.repl.master.as_ref().and_then(|m| m.last_io_ms).unwrap_or(0);
            ((ack || now_ms >= next_ack).then_some(off), now_ms, s.config.hot.repl_timeout * 1000, last_io)
        };
        if now_ms.saturating_sub(last_io) > timeout_ms {
            return Err("MASTER timeout: no data nor PING received...".into());
        }
        if let Some(off) = ack {
            let cmd = format!("*3\r\n$8\r\nREPLCONF\r\n$3\r\nACK\r\n${}\r\n{off}\r\n", off.to_string().len());
            conn.write_all(cmd.as_bytes()).await.map_err(|e| format!("Error writing to MASTER: {e}"))?;
            next_ack = now_ms + ACK_PERIOD_MS;
        }
        // Read greedily, as Redis does for its master: a full buffer's worth per call.
        if buf.capacity() - buf.len() < PROTO_IOBUF_LEN / 2 {
            buf.reserve(PROTO_IOBUF_LEN);
        }
        let wait = next_ack.saturating_sub(now_ms).max(1);
        let read = crate::env::rt::select! {
            r = conn.read_buf(&mut buf) => Some(r),
            _ = env.clock().sleep_ms(wait) => None,
        };
        match read {
            Some(Ok(0)) => return Err("Connection with master lost.".into()),
            Some(Err(e)) => return Err(format!("Connection with master lost: {e}")),
            Some(Ok(_)) => got_data = true,
            None => {}
        }
    }
}

/// Parses one command of the master's stream from the start of `buf` with the client-side
/// frame parser: its arguments and its length in bytes, or None when incomplete. The stream
/// is always multibulk; anything else is a protocol error.
pub fn parse_multibulk(buf: &[u8]) -> Result<Option<(Vec<Bytes>, usize)>, String> {
    let Some((frame, len)) = Frame::parse(buf).map_err(|e| format!("Protocol error from master: {}", e.0))? else {
        return Ok(None);
    };
    let Frame::Array(items) = frame else {
        return Err(format!("Protocol error from master: expected a multibulk, got {frame:?}"));
    };
    let argv = items
        .into_iter()
        .map(|f| match f {
            Frame::Bulk(b) => Ok(b),
            other => Err(format!("Protocol error from master: expected a bulk string, got {other:?}")),
        })
        .collect::<Result<Vec<Bytes>, String>>()?;
    Ok(Some((argv, len)))
}

/// Where a full sync's RDB goes (`repl-diskless-load`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadMode {
    /// Saved as dbfilename, then loaded.
    Disk,
    /// Loaded from the socket's bytes over the flushed dataset.
    Parser,
    /// Loaded from the socket's bytes while the old dataset waits aside (swapdb).
    Swap,
}

impl Server {
    /// Redis's `useDisklessLoad`: `on-empty-db` goes diskless only when no key is held.
    pub fn full_sync_load_mode(&self) -> LoadMode {
        match self.config.get("repl-diskless-load").unwrap_or("disabled") {
            "swapdb" => LoadMode::Swap,
            "on-empty-db" if self.dbs.iter().all(|db| db.is_empty()) => LoadMode::Parser,
            _ => LoadMode::Disk,
        }
    }

    /// The link broke or was replaced: forget the master client, keep what PSYNC can offer
    /// next time (Redis's cached master).
    pub fn link_down(&mut self, generation: u64) {
        if let Some(id) = self.repl.master_client.take() {
            self.remove_client(id);
        }
        if generation != self.repl.link_generation {
            return;
        }
        self.set_link_state(generation, LinkState::Connect);
        if let Some(m) = self.repl.master.as_mut() {
            m.sync = None;
        }
        if self.repl.has_history {
            self.repl.cached = Some((self.repl.state.replid.clone(), self.repl.state.master_repl_offset));
        }
    }

    /// The RDB of a full resync arrived: replace the dataset with it and take the master's
    /// history (Redis's `readSyncBulkPayload` after the transfer).
    /// `swap`: `repl-diskless-load swapdb`, the old dataset stays aside until the new one
    /// loaded, and comes back if it fails to.
    pub fn full_sync_loaded(&mut self, rdb: &[u8], replid: String, offset: u64, swap: bool) -> Result<(), String> {
        let mut kept = None;
        if swap {
            self.log(Level::Notice, "MASTER <-> REPLICA sync: Backing up the current dataset");
            let seed = crate::env::Rng::next_u64(&mut self.rng);
            let fresh = self.fresh_dbs(seed);
            kept = Some(std::mem::replace(&mut self.dbs, fresh));
        } else {
            self.log(Level::Notice, "MASTER <-> REPLICA sync: Flushing old data");
            for db in &mut self.dbs {
                db.clear();
            }
        }
        self.log(Level::Notice, "MASTER <-> REPLICA sync: Loading DB in memory");
        match self.load_rdb_bytes(rdb) {
            Ok(l) => {
                self.log(
                    Level::Notice,
                    &format!("Done loading RDB, keys loaded: {}, keys expired: {}.", l.keys_loaded, l.keys_expired),
                );
            }
            Err(e) => {
                self.log(Level::Warning, &format!("Internal error in RDB reading: {e}"));
                if let Some(old) = kept {
                    self.dbs = old;
                    self.log(Level::Notice, "MASTER <-> REPLICA sync: Restoring the backup of the dataset");
                }
                return Err("Failed trying to load the MASTER synchronization DB from socket".into());
            }
        }
        if kept.is_some() {
            self.log(Level::Notice, "MASTER <-> REPLICA sync: Discarding the backup of the dataset");
        }
        self.repl.state.replid = replid;
        self.repl.state.master_repl_offset = offset;
        self.repl.state.clear_replid2();
        self.repl.state.backlog = None;
        self.ensure_backlog();
        self.repl.state.stream_db = None;
        self.repl.has_history = true;
        // Sub-replicas followed the old history: they must resync.
        let subs: Vec<u64> = self.repl.replicas.iter().map(|r| r.client_id).collect();
        for id in subs {
            self.kill_client(id);
        }
        self.dirty += 1;
        self.log(Level::Notice, "MASTER <-> REPLICA sync: Finished with success");
        Ok(())
    }

    /// +CONTINUE: the stream goes on from our offset; a new ID means the master was promoted
    /// (PSYNC2: our old ID stays valid up to here, for our own replicas).
    pub fn partial_sync_accepted(&mut self, new_replid: Option<String>) {
        if let Some(id) = new_replid {
            if id != self.repl.state.replid {
                let old = std::mem::replace(&mut self.repl.state.replid, id.clone());
                self.repl.state.replid2 = old;
                self.repl.state.second_replid_offset = self.repl.state.master_repl_offset as i64 + 1;
                self.log(Level::Notice, &format!("Master replication ID changed to {id}"));
                let subs: Vec<u64> = self.repl.replicas.iter().map(|r| r.client_id).collect();
                for sub in subs {
                    self.kill_client(sub);
                }
            }
        }
        // The dataset follows the master's history now: a later switch of masters offers it.
        self.repl.has_history = true;
        self.repl.state.stream_db = None;
        self.ensure_backlog();
    }

    /// Applies every complete command in `buf` as the master client, passing each one's bytes
    /// on; returns whether the master asked for an ACK (REPLCONF GETACK).
    pub fn apply_master_stream(&mut self, client: u64, buf: &mut BytesMut) -> Result<bool, String> {
        let mut ack = false;
        while let Some((argv, len)) = parse_multibulk(buf)? {
            let raw = buf.split_to(len);
            if argv.is_empty() {
                continue;
            }
            let getack =
                argv.len() >= 2 && argv[0].eq_ignore_ascii_case(b"replconf") && argv[1].eq_ignore_ascii_case(b"getack");
            self.stats.net_input_bytes += len as u64;
            if !getack {
                self.process(client, argv);
                if let Some(c) = self.clients.get_mut(&client) {
                    c.out.buf.clear();
                }
            }
            self.proxy_stream(&raw);
            if let Some(m) = self.repl.master.as_mut() {
                m.reploff = self.repl.state.master_repl_offset;
                m.read_reploff = self.repl.state.master_repl_offset;
            }
            ack |= getack;
        }
        Ok(ack)
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_multibulk, LoadMode};
    use crate::commands::testing::{run, server};

    #[test]
    fn diskless_load_modes_pick_the_target_and_swapdb_keeps_the_old_data_on_a_bad_rdb() {
        let mut srv = server();
        assert_eq!(srv.full_sync_load_mode(), LoadMode::Disk);
        run(&mut srv, &["config", "set", "repl-diskless-load", "on-empty-db"]);
        assert_eq!(srv.full_sync_load_mode(), LoadMode::Parser);
        run(&mut srv, &["set", "k", "old"]);
        assert_eq!(srv.full_sync_load_mode(), LoadMode::Disk, "on-empty-db with data goes to disk");
        run(&mut srv, &["config", "set", "repl-diskless-load", "swapdb"]);
        assert_eq!(srv.full_sync_load_mode(), LoadMode::Swap);
        let id = srv.repl.state.replid.clone();
        assert!(srv.full_sync_loaded(b"REDIS0010garbage", "x".repeat(40), 7, true).is_err());
        assert_eq!(run(&mut srv, &["get", "k"]), b"$3\r\nold\r\n", "swapdb restores the dataset");
        assert_eq!(srv.repl.state.replid, id, "a failed load takes no history");
        assert!(srv.full_sync_loaded(b"REDIS0010garbage", "x".repeat(40), 7, false).is_err());
        assert_eq!(run(&mut srv, &["get", "k"]), b"$-1\r\n", "without swapdb the flush stays");
    }

    #[test]
    fn multibulk_commands_parse_with_their_exact_length_and_wait_when_incomplete() {
        let s = b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*1\r\n$4\r\nPING\r\n";
        let (argv, n) = parse_multibulk(s).unwrap().unwrap();
        assert_eq!((argv.len(), n), (2, 23));
        let (argv, m) = parse_multibulk(&s[n..]).unwrap().unwrap();
        assert_eq!((&argv[0][..], m), (&b"PING"[..], 14));
        for cut in 0..n {
            assert_eq!(parse_multibulk(&s[..cut]).unwrap(), None, "cut {cut}");
        }
        assert!(parse_multibulk(b"+OK\r\n").is_err());
    }
}

//! The server's side of replication: the stream its writes become, the replicas that get it,
//! and the checks of `replicationCron`. Sans-IO: bytes for a replica go to its client's output
//! buffer (its driver task writes them) or wait in `repl.pending` during its full sync.

use bytes::Bytes;

use super::log::Level;
use super::Server;
use crate::replication::{LinkState, ReplicaInfo, SyncState};

impl Server {
    /// True when this node is a replica (REPLICAOF host port).
    pub fn is_replica(&self) -> bool {
        self.repl.master.is_some()
    }

    /// Whether the client is the link this replica applies its master's stream through.
    pub fn is_master_client(&self, id: u64) -> bool {
        self.repl.master_client == Some(id)
    }

    /// Hands the commands propagated since the last call to their consumers, in execution
    /// order: the AOF's buffer (Redis's `feedAppendOnlyFile`) and, on a master with a backlog
    /// or replicas, the replication stream (`replicationFeedSlaves`). A replica does not
    /// re-encode what it applies: its link proxies the master's bytes (`proxy_stream`).
    /// Without a consumer the commands stay (unit tests read them).
    pub fn feed_propagated(&mut self) {
        if self.propagated.is_empty() {
            return;
        }
        let to_aof = self.aof.on;
        let to_stream = !self.is_replica() && (self.repl.state.backlog.is_some() || !self.repl.replicas.is_empty());
        if !to_aof && !to_stream && !self.is_replica() {
            return;
        }
        let mut cmds = std::mem::take(&mut self.propagated);
        if to_aof {
            for p in &cmds {
                self.aof.feed(p.db, &p.argv);
            }
        }
        if to_stream {
            let mut bytes = std::mem::take(&mut self.repl.scratch);
            bytes.clear();
            for p in &cmds {
                self.repl.state.feed_command(p.db, &p.argv, &mut bytes);
            }
            self.send_to_replicas(&bytes);
            self.repl.scratch = bytes;
        }
        // Keep the allocations for the next command.
        cmds.clear();
        if self.propagated.is_empty() {
            self.propagated = cmds;
        }
    }

    /// Feeds a command of this node's own (PING, REPLCONF GETACK) into the stream.
    pub fn feed_own_command(&mut self, argv: &[&'static [u8]]) {
        let argv: Vec<Bytes> = argv.iter().map(|a| Bytes::from_static(a)).collect();
        let mut bytes = Vec::new();
        crate::replication::encode_command(&mut bytes, &argv);
        self.repl.state.feed_bytes(&bytes);
        self.send_to_replicas(&bytes);
    }

    /// A replica passes its master's stream on, byte for byte: into its own backlog (so its
    /// replicas, and itself after a promotion, can continue from the same offsets) and to its
    /// own replicas (chained replication).
    pub fn proxy_stream(&mut self, bytes: &[u8]) {
        self.repl.state.feed_bytes(bytes);
        self.send_to_replicas(bytes);
    }

    /// Appends stream bytes for every replica: online ones get them now, those in full sync
    /// after their RDB.
    fn send_to_replicas(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let ids: Vec<(u64, bool)> = self
            .repl
            .replicas
            .iter()
            .map(|r| (r.client_id, r.state == SyncState::Online && !r.stream_on_ack))
            .collect();
        for (id, streaming) in ids {
            if streaming {
                if let Some(c) = self.clients.get_mut(&id) {
                    // One wakeup per turn is enough: the task takes the whole buffer.
                    if c.out.buf.is_empty() {
                        self.wakeups.push(id);
                    }
                    c.out.buf.extend_from_slice(bytes);
                }
            } else {
                self.repl.pending.entry(id).or_default().extend_from_slice(bytes);
            }
        }
    }

    /// The `+FULLRESYNC` a replica in full sync gets first (none for an old SYNC).
    pub fn fullresync_line(&self, id: u64, replid: &str, offset: u64) -> Vec<u8> {
        match self.repl.replicas.get(id) {
            Some(r) if r.psync => format!("+FULLRESYNC {replid} {offset}\r\n").into_bytes(),
            _ => Vec::new(),
        }
    }

    /// Starts a BGSAVE to disk for the replicas waiting for one (`repl-diskless-sync no`)
    /// and writes each its `+FULLRESYNC`; `current` is the output of the client whose PSYNC
    /// is running (out of the client map meanwhile). On a failed fork they are disconnected
    /// (and retry).
    pub fn start_disk_sync(&mut self, mut current: Option<(u64, &mut Vec<u8>)>) {
        let waiting: Vec<u64> = self
            .repl
            .replicas
            .iter()
            .filter(|r| r.state == SyncState::WaitBgsave && r.waiting_next_bgsave)
            .map(|r| r.client_id)
            .collect();
        if waiting.is_empty() {
            return;
        }
        self.log(Level::Notice, "Starting BGSAVE for SYNC with target: disk");
        let pid = match self.bgsave_start() {
            Ok(pid) => pid,
            Err(e) => {
                self.log(Level::Warning, &format!("BGSAVE for replication failed: {e}"));
                for id in waiting {
                    self.repl.replicas.detach(id);
                    self.kill_client(id);
                }
                return;
            }
        };
        // The stream after the snapshot starts with a SELECT.
        self.repl.state.stream_db = None;
        let (replid, offset) = (self.repl.state.replid.clone(), self.repl.state.master_repl_offset);
        self.repl.disk_sync = Some(crate::replication::DiskSync { pid, replid: replid.clone(), offset });
        for id in waiting {
            if let Some(r) = self.repl.replicas.get_mut(id) {
                r.waiting_next_bgsave = false;
            }
            self.repl.pending.insert(id, Vec::new());
            let line = self.fullresync_line(id, &replid, offset);
            match &mut current {
                Some((cur, out)) if *cur == id => out.extend_from_slice(&line),
                _ => {
                    if let Some(c) = self.clients.get_mut(&id) {
                        c.out.buf.extend_from_slice(&line);
                        self.wakeups.push(id);
                    }
                }
            }
        }
    }

    /// The BGSAVE made for replicas ended or was killed (Redis's `updateSlavesWaitingBgsave`):
    /// those waiting for it get the file, or are disconnected when it failed. Those waiting
    /// for the next one get it from the cron (never from inside a kill, e.g. FLUSHALL's).
    pub fn disk_sync_done(&mut self, ok: bool) {
        if self.repl.disk_sync.take().is_none() {
            return;
        }
        let attached: Vec<u64> = self
            .repl
            .replicas
            .iter()
            .filter(|r| r.state == SyncState::WaitBgsave && !r.waiting_next_bgsave)
            .map(|r| r.client_id)
            .collect();
        let file = self.rdb_filename();
        for id in attached {
            let sent = ok && self.repl_forker.send_rdb_file(id, file.clone()).is_ok();
            if sent {
                if let Some(r) = self.repl.replicas.get_mut(id) {
                    r.state = SyncState::SendBulk;
                }
            } else {
                self.log(Level::Warning, "SYNC failed. BGSAVE child returned an error");
                self.kill_client(id);
            }
        }
    }

    /// Creates the backlog when the first replica attaches (Redis's `createReplicationBacklog`
    /// in `syncCommand`); with no replica and no master a new history begins.
    pub fn ensure_backlog(&mut self) {
        if self.repl.state.backlog.is_some() {
            return;
        }
        if self.repl.replicas.is_empty() && !self.is_replica() {
            self.repl.state.change_replid(&mut self.rng);
            self.repl.state.clear_replid2();
        }
        let size = self.config.hot.repl_backlog_size as usize;
        self.repl.state.ensure_backlog(size);
        self.propagate_enabled = true;
        let (id, id2) = (self.repl.state.replid.clone(), self.repl.state.replid2.clone());
        self.log(Level::Notice, &format!("Replication backlog created, my new replication IDs are '{id}' and '{id2}'"));
    }

    /// Registers the client as a replica in full sync or online.
    pub fn attach_replica(&mut self, r: ReplicaInfo) {
        let id = r.client_id;
        self.repl.replicas.attach(r);
        self.repl.pending.entry(id).or_default();
    }

    /// The full sync's RDB reached the replica: it goes online and gets the stream buffered
    /// since its snapshot, at once after a `$<len>` transfer, or at its first REPLCONF ACK
    /// after an EOF-marked one (`eof_marked`).
    pub fn replica_online(&mut self, id: u64, eof_marked: bool) {
        let Some(r) = self.repl.replicas.get_mut(id) else { return };
        r.state = SyncState::Online;
        r.ack_ms = self.now.mono_ms;
        let name = r.name();
        if eof_marked {
            r.stream_on_ack = true;
            self.log(
                Level::Notice,
                &format!(
                    "Streamed RDB transfer with replica {name} succeeded (socket). Waiting for REPLCONF ACK from slave \
                     to enable streaming"
                ),
            );
            return;
        }
        let pending = self.start_streaming(id);
        if let Some(c) = self.clients.get_mut(&id) {
            c.out.buf.extend_from_slice(&pending);
            self.wakeups.push(id);
        }
    }

    /// A replica streams from now on; returns the stream buffered for it meanwhile, which
    /// the caller puts in its output (the replica's client may be out of the map while its
    /// own REPLCONF ACK runs).
    pub fn start_streaming(&mut self, id: u64) -> Vec<u8> {
        let Some(r) = self.repl.replicas.get_mut(id) else { return Vec::new() };
        r.stream_on_ack = false;
        let name = r.name();
        self.log(Level::Notice, &format!("Synchronization with replica {name} succeeded"));
        self.repl.pending.remove(&id).unwrap_or_default()
    }

    /// A replica's connection ended.
    pub fn detach_replica(&mut self, id: u64) {
        if let Some(r) = self.repl.replicas.detach(id) {
            self.repl.pending.remove(&id);
            self.log(Level::Warning, &format!("Connection with replica {} lost.", r.name()));
        }
    }

    /// The replication part of `serverCron` (Redis's `replicationCron`): the master PINGs its
    /// replicas every `repl-ping-replica-period` seconds and drops those silent for
    /// `repl-timeout`.
    pub fn replication_cron(&mut self) {
        let now = self.now.mono_ms;
        let period_ms = self.config_u64("repl-ping-replica-period", 10) * 1000;
        // No PING while a failover waits for a replica to reach our offset.
        self.update_failover_status();
        let failover = self.repl.failover.is_some();
        if !self.is_replica()
            && !failover
            && !self.repl.replicas.is_empty()
            && now >= self.repl.last_ping_ms + period_ms
        {
            self.repl.last_ping_ms = now;
            self.feed_own_command(&[b"PING"]);
        }
        let timeout_ms = self.config_u64("repl-timeout", 60) * 1000;
        let silent: Vec<u64> = self
            .repl
            .replicas
            .iter()
            .filter(|r| r.state == SyncState::Online && now.saturating_sub(r.ack_ms) > timeout_ms)
            .map(|r| r.client_id)
            .collect();
        for id in silent {
            let name = self.repl.replicas.get(id).map(|r| r.name()).unwrap_or_default();
            self.log(Level::Warning, &format!("Disconnecting timedout replica (streaming sync): {name}"));
            self.kill_client(id);
        }
        self.flush_get_ack();
        if !self.rdb_child_running() {
            // Replicas waiting for the next BGSAVE get one as soon as no child runs.
            self.start_disk_sync(None);
        }
        self.backlog_ttl_check(now);
    }

    /// A master without replicas for `repl-backlog-ttl` seconds frees its backlog and starts a
    /// new history (nobody can continue the old one from it anyway). 0 keeps it forever.
    fn backlog_ttl_check(&mut self, now: u64) {
        if self.is_replica() || self.repl.state.backlog.is_none() || !self.repl.replicas.is_empty() {
            self.repl.no_replicas_since_ms = None;
            return;
        }
        let since = *self.repl.no_replicas_since_ms.get_or_insert(now);
        let ttl_secs = self.config_u64("repl-backlog-ttl", 3600);
        if ttl_secs > 0 && now.saturating_sub(since) >= ttl_secs * 1000 {
            self.repl.state.backlog = None;
            self.repl.state.change_replid(&mut self.rng);
            self.repl.state.clear_replid2();
            self.repl.no_replicas_since_ms = None;
            self.log(
                Level::Notice,
                &format!("Replication backlog freed after {ttl_secs} seconds without connected replicas."),
            );
        }
    }

    /// Sends the pending GETACK of a WAIT at the end of the turn (Redis does it in beforeSleep).
    pub fn flush_get_ack(&mut self) {
        // A GETACK moves the offset: none while writes are paused (a failover waits for it).
        if !self.repl.get_ack_requested || self.writes_paused() {
            return;
        }
        if std::mem::take(&mut self.repl.get_ack_requested) && !self.repl.replicas.is_empty() {
            self.feed_own_command(&[b"REPLCONF", b"GETACK", b"*"]);
        }
    }

    fn config_u64(&self, name: &str, default: u64) -> u64 {
        self.config.get(name).and_then(|s| s.parse().ok()).unwrap_or(default)
    }

    /// REPLICAOF host port: become a replica (or follow another master); the driver starts
    /// the link task for the new generation.
    pub fn become_replica(&mut self, host: String, port: u16) {
        self.follow_master(host, port);
        // Its replicas must resync with the new history.
        let ids: Vec<u64> = self.repl.replicas.iter().map(|r| r.client_id).collect();
        for id in ids {
            self.kill_client(id);
        }
    }

    /// Follows `host:port`, keeping this node's replicas (a coordinated failover: they go on
    /// from the same history, chained through us, once the target takes over).
    pub fn follow_master(&mut self, host: String, port: u16) {
        // Before following a master, this node's own history becomes the "cached master" its
        // PSYNC offers, so a demoted master can continue partially when histories agree
        // (Redis's `replicationCacheMasterUsingMyself`). A replica switching masters caches
        // the history it follows now, with the ID a +CONTINUE may have changed (Redis caches
        // the master client it frees).
        if self.repl.master.is_none() || self.repl.has_history {
            self.repl.cached = Some((self.repl.state.replid.clone(), self.repl.state.master_repl_offset));
        }
        self.repl.master = Some(crate::replication::MasterLink::new(host, port));
        self.repl.link_generation += 1;
        self.repl.link_start_requested = true;
        self.repl.master_client = None;
    }

    /// REPLICAOF NO ONE: the history continues under a new ID; replicas of the old master
    /// can continue with us (PSYNC2).
    pub fn become_master(&mut self) {
        if self.repl.master.take().is_none() {
            return;
        }
        self.repl.link_generation += 1;
        if let Some(id) = self.repl.master_client.take() {
            self.kill_client(id);
        }
        self.repl.state.shift_replid(&mut self.rng);
        self.repl.state.stream_db = None;
        let (id, id2, off) =
            (self.repl.state.replid.clone(), self.repl.state.replid2.clone(), self.repl.state.second_replid_offset);
        self.log(
            Level::Notice,
            &format!(
                "Setting secondary replication ID to {id2}, valid up to offset: {off}. New replication ID is {id}"
            ),
        );
    }

    /// The link reached `state` (the driver's link task reports its progress).
    pub fn set_link_state(&mut self, generation: u64, state: LinkState) -> bool {
        if generation != self.repl.link_generation {
            return false;
        }
        let now_unix = self.now.unix_ms / 1000;
        let Some(m) = self.repl.master.as_mut() else { return false };
        if m.state == LinkState::Connected && state != LinkState::Connected {
            m.down_since_unix_secs = Some(now_unix);
        }
        m.state = state;
        true
    }

    /// After loading an RDB at startup: its repl-id/repl-offset aux fields are the history this
    /// node holds, so a restarted replica continues with PSYNC from there (Redis 7.0's
    /// `rdbPopulateSaveInfo` / `replicationCacheMasterUsingMyself` on load).
    pub fn restore_repl_history(&mut self, aux: &crate::persistence::rdb::RdbAux) {
        let (Some(id), Some(off)) = (&aux.repl_id, aux.repl_offset) else { return };
        if id.len() != 40 || off < 0 {
            return;
        }
        self.repl.state.replid = id.clone();
        self.repl.state.master_repl_offset = off as u64;
        self.repl.has_history = true;
        if self.is_replica() {
            self.repl.cached = Some((id.clone(), off as u64));
        }
    }

    /// The `replicaof` directive at startup: a replica from the first moment, without a cached
    /// master unless its RDB gave one.
    pub fn replicaof_at_startup(&mut self) {
        let value = self.config.get("replicaof").unwrap_or("").to_string();
        let Some((host, port)) = value.split_once(' ') else { return };
        let Ok(port) = port.parse::<u16>() else { return };
        self.repl.master = Some(crate::replication::MasterLink::new(host.to_string(), port));
        self.repl.link_generation += 1;
        self.repl.link_start_requested = true;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use bytes::Bytes;

    use crate::commands::testing::{run, server};
    use crate::persistence::rdb::RdbAux;
    use crate::persistence::snapshot::{BgsaveRequest, Forker};
    use crate::replication::sync::ReplicaForker;
    use crate::replication::SyncState;
    use crate::server::Server;

    /// Snapshot children that always start, numbered from 100.
    struct CountingFork(Arc<Mutex<u32>>);

    impl Forker for CountingFork {
        fn bgsave(&self, _: BgsaveRequest<'_>) -> std::io::Result<u32> {
            let mut n = self.0.lock().unwrap();
            *n += 1;
            Ok(99 + *n)
        }
    }

    /// Records which replica was sent which RDB file.
    struct SentFiles(Arc<Mutex<Vec<u64>>>);

    impl ReplicaForker for SentFiles {
        fn replica_sync(
            &self,
            _: &[crate::engine::db::Db],
            _: &RdbAux,
            _: crate::persistence::rdb::SaveOptions,
            _: u64,
            _: Option<[u8; 40]>,
        ) -> std::io::Result<u32> {
            unreachable!("repl-diskless-sync is off")
        }

        fn send_rdb_file(&self, client: u64, _: String) -> std::io::Result<()> {
            self.0.lock().unwrap().push(client);
            Ok(())
        }
    }

    fn disk_sync_server() -> (Server, Arc<Mutex<Vec<u64>>>) {
        let mut srv = server();
        run(&mut srv, &["CONFIG", "SET", "repl-diskless-sync", "no"]);
        srv.forker = Box::new(CountingFork(Arc::default()));
        let sent = Arc::new(Mutex::new(Vec::new()));
        srv.repl_forker = Box::new(SentFiles(sent.clone()));
        (srv, sent)
    }

    /// A replica's PSYNC ? -1; returns its id and what it was sent.
    fn psync(srv: &mut Server) -> (u64, String) {
        let id = srv.add_client("127.0.0.1:50000".into(), "127.0.0.1:6379".into());
        srv.process(id, ["PSYNC", "?", "-1"].iter().map(|a| Bytes::from_static(a.as_bytes())).collect());
        (id, out(srv, id))
    }

    fn out(srv: &mut Server, id: u64) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut srv.clients.get_mut(&id).unwrap().out.buf)).into_owned()
    }

    /// A replica arriving while the BGSAVE made for another one runs shares it: the same
    /// FULLRESYNC offset and a copy of the stream buffered since, and both get the file.
    #[test]
    fn a_second_replica_shares_the_running_replication_bgsave() {
        let (mut srv, sent) = disk_sync_server();
        let (a, a_out) = psync(&mut srv);
        assert!(a_out.starts_with("+FULLRESYNC "), "{a_out}");
        let pid = srv.repl.disk_sync.as_ref().unwrap().pid;
        run(&mut srv, &["SET", "k", "v"]);
        let (b, b_out) = psync(&mut srv);
        assert_eq!(a_out, b_out, "same history and offset");
        assert_eq!(srv.repl.pending.get(&a), srv.repl.pending.get(&b));
        assert!(String::from_utf8_lossy(&srv.repl.pending[&b]).contains("SET\r\n$1\r\nk"));
        assert_eq!(srv.stats.total_forks, 1, "one BGSAVE for both");
        srv.bgsave_done(pid, Ok(()));
        assert_eq!(*sent.lock().unwrap(), vec![a, b]);
        for id in [a, b] {
            assert_eq!(srv.repl.replicas.get(id).unwrap().state, SyncState::SendBulk);
        }
    }

    /// A replica arriving during a user's BGSAVE cannot use it (its stream offset is unknown):
    /// it waits, without a FULLRESYNC, for the next BGSAVE, which the cron starts once the
    /// user's ends.
    #[test]
    fn a_replica_arriving_during_a_user_bgsave_waits_for_the_next_one() {
        let (mut srv, sent) = disk_sync_server();
        assert_eq!(run(&mut srv, &["BGSAVE"]), b"+Background saving started\r\n");
        let user_pid = srv.rdb.child_pid.unwrap();
        let (a, a_out) = psync(&mut srv);
        assert_eq!(a_out, "", "no FULLRESYNC before its BGSAVE starts");
        assert!(srv.repl.replicas.get(a).unwrap().waiting_next_bgsave);
        srv.replication_cron();
        assert!(srv.repl.disk_sync.is_none(), "the user's child still runs");
        srv.bgsave_done(user_pid, Ok(()));
        assert!(sent.lock().unwrap().is_empty(), "the user's file is not for the replica");
        srv.replication_cron();
        let pid = srv.repl.disk_sync.as_ref().expect("the cron started the replicas' BGSAVE").pid;
        assert_ne!(pid, user_pid);
        assert!(out(&mut srv, a).starts_with("+FULLRESYNC "));
        srv.bgsave_done(pid, Ok(()));
        assert_eq!(*sent.lock().unwrap(), vec![a]);
    }

    /// A demoted master that continued with a promoted replica (+CONTINUE with a new ID) and is
    /// then told to follow a third node offers the new ID and its current offset, not the
    /// history it had as a master: PSYNC2 lets it continue partially.
    #[test]
    fn switching_masters_after_a_partial_resync_offers_the_current_history() {
        let mut srv = server();
        run(&mut srv, &["REPLICAOF", "10.0.0.2", "6379"]);
        let own = srv.repl.state.replid.clone();
        assert_eq!(srv.repl.cached, Some((own.clone(), 0)));
        let new_id = "1".repeat(40);
        srv.partial_sync_accepted(Some(new_id.clone()));
        srv.repl.state.feed_bytes(b"*1\r\n$4\r\nPING\r\n");
        assert_eq!((srv.repl.state.replid2.as_str(), srv.repl.state.replid.as_str()), (own.as_str(), new_id.as_str()));
        run(&mut srv, &["REPLICAOF", "10.0.0.3", "6379"]);
        assert_eq!(srv.repl.cached, Some((new_id, 14)));
    }
}

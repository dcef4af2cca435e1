//! The server's side of cluster mode: it hands the cluster the facts it reads (ports, offset,
//! settings), runs its cron every 100 ms and its before-sleep step after every turn, and
//! carries out what the cluster asks (replicate, promote, pause, drop a lost slot's keys,
//! deliver a bus PUBLISH). The cluster itself never touches the server.

use bytes::Bytes;

use super::log::Level;
use super::Server;
use crate::cluster::{key_hash_slot, Cluster, ClusterConf, Effect};

/// clusterCron's period (Redis runs it every 100 ms of serverCron).
pub const CLUSTER_CRON_PERIOD_MS: u64 = 100;

impl Server {
    /// Creates the cluster state when `cluster-enabled yes` (before nodes.conf is read).
    pub fn init_cluster(&mut self) {
        if self.config.get("cluster-enabled") != Some("yes") {
            return;
        }
        for db in &mut self.dbs {
            db.enable_slot_to_keys();
        }
        let now = self.now.unix_ms;
        self.cluster = Some(Box::new(Cluster::new(&mut self.rng, now)));
        self.cluster_refresh_facts();
    }

    /// The bus port: cluster-port, else port + 10000.
    pub fn cluster_bus_port(&self) -> u16 {
        match self.config.get("cluster-port").and_then(|p| p.parse::<u16>().ok()) {
            Some(p) if p != 0 => p,
            _ => self.listening_port.wrapping_add(10000),
        }
    }

    /// What the cluster reads from the server and its config, refreshed before each call.
    pub fn cluster_refresh_facts(&mut self) {
        let Some(mut c) = self.cluster.take() else { return };
        let cfg = |name: &str| self.config.get(name).unwrap_or("").to_string();
        let num = |name: &str, default: u64| self.config.get(name).and_then(|v| v.parse().ok()).unwrap_or(default);
        c.conf = ClusterConf {
            node_timeout_ms: num("cluster-node-timeout", 15000),
            require_full_coverage: cfg("cluster-require-full-coverage") != "no",
            allow_reads_when_down: cfg("cluster-allow-reads-when-down") == "yes",
            replica_validity_factor: num("cluster-replica-validity-factor", 10),
            migration_barrier: num("cluster-migration-barrier", 1),
            allow_replica_migration: cfg("cluster-allow-replica-migration") != "no",
            replica_no_failover: cfg("cluster-replica-no-failover") == "yes",
            announce_ip: cfg("cluster-announce-ip"),
            announce_hostname: cfg("cluster-announce-hostname"),
            announce_port: num("cluster-announce-port", 0) as u16,
            announce_bus_port: num("cluster-announce-bus-port", 0) as u16,
            repl_ping_replica_period_secs: num("repl-ping-replica-period", 10),
        };
        let port = if c.conf.announce_port != 0 { c.conf.announce_port } else { self.listening_port };
        let cport = if c.conf.announce_bus_port != 0 { c.conf.announce_bus_port } else { self.cluster_bus_port() };
        c.facts.port = port;
        c.facts.cport = cport;
        {
            let me = c.me_mut();
            me.port = port;
            me.cport = cport;
            if !c.conf.announce_ip.is_empty() {
                let ip = c.conf.announce_ip.clone();
                c.me_mut().ip = ip;
            }
        }
        c.facts.repl_offset = self.cluster_repl_offset();
        c.facts.has_master = self.repl.master.is_some();
        c.facts.master_data_age_ms = match &self.repl.master {
            Some(m) if m.state == crate::replication::LinkState::Connected => {
                m.last_io_ms.map(|t| self.now.mono_ms.saturating_sub(t)).unwrap_or(0)
            }
            Some(m) => m
                .down_since_unix_secs
                .map(|t| (self.now.unix_ms / 1000).saturating_sub(t) * 1000)
                .unwrap_or(u64::MAX / 4),
            None => 0,
        };
        c.planted_serve_lost_slots = crate::cluster::planted(crate::cluster::PlantedBug::ServesLostSlot);
        self.cluster = Some(c);
    }

    /// Redis's `replicationGetSlaveOffset` on a replica, master_repl_offset on a master.
    pub fn cluster_repl_offset(&self) -> u64 {
        if self.is_replica() && !self.repl.has_history {
            0
        } else {
            self.repl.state.master_repl_offset
        }
    }

    /// clusterCron, at most every 100 ms.
    pub fn cluster_cron(&mut self) {
        let Some(last) = self.cluster.as_ref().map(|c| c.last_ping_random_ms) else { return };
        let now = self.now.unix_ms;
        if now.saturating_sub(last) < CLUSTER_CRON_PERIOD_MS && last <= now {
            return;
        }
        self.cluster_refresh_facts();
        let mut c = self.cluster.take().expect("checked");
        c.last_ping_random_ms = now;
        c.cron(now, &mut self.rng);
        self.cluster = Some(c);
        self.cluster_apply();
        self.cluster_redirect_blocked_clients();
    }

    /// Redis's `clusterRedirectBlockedClientIfNeeded`, from clientsCron: a client blocked on
    /// keys of a slot this node no longer serves (or while the cluster is down) gets the
    /// redirect it would get now, instead of waiting for a push that cannot come here.
    pub fn cluster_redirect_blocked_clients(&mut self) {
        let Some(c) = self.cluster.as_deref() else { return };
        let preferred = crate::cluster::redirect::preferred_endpoint(&self.config);
        let mut redirects: Vec<(u64, String)> = Vec::new();
        for (&id, st) in &self.blocking.clients {
            if matches!(st.op, super::blocking::BlockedOp::Wait { .. }) {
                continue;
            }
            use crate::cluster::redirect::{error_text, Redirect};
            if c.state == crate::cluster::State::Fail {
                redirects.push((id, error_text(c, &Redirect::Down, preferred)));
                continue;
            }
            let Some(key) = st.keys.first() else { continue };
            let slot = key_hash_slot(key);
            let mut owner = c.slots[slot as usize].clone();
            let readonly = self.clients.get(&id).is_some_and(|cl| cl.cluster_readonly);
            if readonly && c.me().is_replica() && c.me().slaveof == owner {
                owner = Some(c.myself.clone());
            }
            if owner.as_deref() != Some(c.myself.as_str()) && !c.importing_from.contains_key(&slot) {
                let r = match owner {
                    None => Redirect::Unbound,
                    Some(node) => Redirect::Moved { slot, node },
                };
                redirects.push((id, error_text(c, &r, preferred)));
            }
        }
        for (id, text) in redirects {
            self.blocking.unblock(id);
            self.count_error(&text);
            if let Some(cl) = self.clients.get_mut(&id) {
                cl.blocked = false;
                if !cl.reply_off {
                    cl.out.error(&text);
                }
            }
            self.wakeups.push(id);
        }
    }

    /// clusterBeforeSleep: failovers and state changes a packet or command asked for.
    pub fn cluster_before_sleep(&mut self) {
        if self.cluster.is_none() {
            return;
        }
        self.cluster_refresh_facts();
        let now = self.now.unix_ms;
        let mut c = self.cluster.take().expect("checked");
        c.before_sleep(now, &mut self.rng);
        self.cluster = Some(c);
        self.cluster_apply();
    }

    /// One bus packet from `link` (false: close the link).
    pub fn cluster_packet(&mut self, link: u64, packet: &[u8]) -> bool {
        if self.cluster.is_none() {
            return false;
        }
        self.cluster_refresh_facts();
        let now = self.now.unix_ms;
        let mut c = self.cluster.take().expect("checked");
        let keep = c.on_packet(link, packet, now, &mut self.rng);
        c.before_sleep(now, &mut self.rng);
        self.cluster = Some(c);
        self.cluster_apply();
        keep
    }

    /// Carries out the cluster's effects and logs its lines.
    pub fn cluster_apply(&mut self) {
        let Some(c) = self.cluster.as_mut() else { return };
        let effects = std::mem::take(&mut c.effects);
        let log = std::mem::take(&mut c.log);
        for (level, line) in log {
            let level = match level {
                0 => Level::Debug,
                1 => Level::Verbose,
                2 => Level::Notice,
                _ => Level::Warning,
            };
            self.log(level, &line);
        }
        for e in effects {
            match e {
                Effect::ReplicaOf { ip, port } => {
                    let same = self.repl.master.as_ref().is_some_and(|m| m.host == ip && m.port == port);
                    if !same && !ip.is_empty() {
                        self.become_replica(ip, port);
                    }
                }
                Effect::BecomeMaster => self.become_master(),
                Effect::PauseWrites { .. } => self.pause_for_failover(true),
                Effect::Unpause => self.pause_for_failover(false),
                Effect::DeleteKeysInSlot(slot) => self.delete_keys_in_slot(slot),
                Effect::Publish { shard, channel, message } => {
                    self.publish_message(None, &channel, &message, shard);
                }
                Effect::FlushAll => {
                    for db in &mut self.dbs {
                        db.clear();
                    }
                }
            }
        }
        self.cluster_journal();
    }

    /// The simulator's journal of this node's cluster state, for its checkers: which slots it
    /// owns and imports whenever that changes, every vote it grants and every promotion it
    /// makes. Written as log lines `cluster-journal <myid> ...` at the moment of the change
    /// (before any later command is served). Outside the simulator the votes and promotions are
    /// only dropped, so that they do not pile up.
    fn cluster_journal(&mut self) {
        let Some(c) = self.cluster.as_mut() else { return };
        let (votes, promotions) = c.take_journal();
        #[cfg(madsim)]
        {
            let owned = crate::cluster::slots::format_ranges(&c.me().slots.ranges(), ",");
            let importing: Vec<String> = c.importing_from.keys().map(u16::to_string).collect();
            let state = format!("owns [{owned}] importing [{}]", importing.join(","));
            let me = c.myself.clone();
            if state != c.journaled {
                c.journaled = state.clone();
                self.log_lines.push(format!("cluster-journal {me} {state}"));
            }
            for (epoch, candidate) in votes {
                self.log_lines.push(format!("cluster-journal {me} vote {epoch} {candidate}"));
            }
            for (epoch, _) in promotions {
                self.log_lines.push(format!("cluster-journal {me} promoted {epoch}"));
            }
        }
        #[cfg(not(madsim))]
        let _ = (votes, promotions);
    }

    /// Empty databases for a dataset about to be loaded, indexed by slot as the current ones are.
    pub fn fresh_dbs(&self, seed: u64) -> Vec<crate::engine::db::Db> {
        let mut dbs: Vec<_> = (0..self.dbs.len()).map(|i| crate::engine::db::Db::new(i, seed)).collect();
        if self.cluster.is_some() {
            dbs.iter_mut().for_each(crate::engine::db::Db::enable_slot_to_keys);
        }
        dbs
    }

    /// Redis's `verifyClusterConfigWithData` after the dataset loaded: keys only in db 0;
    /// keys of an unassigned slot make the slot ours, keys of another node's slot put it in
    /// importing state. Err: the server must not start.
    pub fn cluster_verify_data(&mut self) -> Result<(), String> {
        let Some(c) = self.cluster.as_deref() else { return Ok(()) };
        if c.me().is_replica() {
            return Ok(());
        }
        if self.dbs.iter().skip(1).any(|db| !db.is_empty()) {
            return Err("You can't have keys in a DB different than DB 0 when in Cluster mode. Exiting.".into());
        }
        let populated: Vec<u16> =
            (0..crate::cluster::CLUSTER_SLOTS as u16).filter(|&s| self.dbs[0].count_keys_in_slot(s) > 0).collect();
        let mut lines = Vec::new();
        let c = self.cluster.as_deref_mut().expect("checked");
        let me = c.myself.clone();
        for slot in populated {
            if c.i_own(slot) || c.importing_from.contains_key(&slot) {
                continue;
            }
            match c.slots[slot as usize].clone() {
                None => {
                    lines.push(format!("I have keys for unassigned slot {slot}. Taking responsibility for it."));
                    c.add_slot(&me, slot);
                }
                Some(owner) => {
                    lines.push(format!(
                        "I have keys for slot {slot}, but the slot is assigned to another node. Setting it to importing state."
                    ));
                    c.importing_from.insert(slot, owner);
                }
            }
            c.save_config_soon(true);
        }
        for l in lines {
            self.log(Level::Warning, &l);
        }
        Ok(())
    }

    /// Redis's `delKeysInSlot`: deletions propagated, as any other, newest key first.
    pub fn delete_keys_in_slot(&mut self, slot: u16) {
        let keys: Vec<Vec<u8>> = self.dbs[0].keys_in_slot(slot).map(<[u8]>::to_vec).collect();
        for k in keys {
            self.dbs[0].delete(&k);
            self.propagate(0, vec![Bytes::from_static(b"DEL"), Bytes::from(k.clone())]);
            self.touch_watched_key(0, &k);
            self.notify_keyspace_event(None, super::notify::class::GENERIC, "del", &k, 0);
        }
        self.feed_propagated();
    }

    /// CLUSTER REPLICATE and SETSLOT's demotion.
    pub fn cluster_set_master(&mut self, name: &str) {
        if let Some(c) = self.cluster.as_mut() {
            c.set_master(name);
        }
        self.cluster_apply();
    }

    /// CLUSTER FAILOVER TAKEOVER.
    pub fn cluster_failover_replace_master(&mut self) {
        let now = self.now.unix_ms;
        if let Some(mut c) = self.cluster.take() {
            c.failover_replace_master(now, &mut self.rng);
            self.cluster = Some(c);
        }
        self.cluster_apply();
    }

    pub fn cluster_reset(&mut self, hard: bool) {
        let now = self.now.unix_ms;
        if let Some(mut c) = self.cluster.take() {
            c.reset(hard, &mut self.rng, now);
            self.cluster = Some(c);
        }
        self.cluster_apply();
    }

    pub fn cluster_broadcast_pong(&mut self, now: u64) {
        self.cluster_refresh_facts();
        if let Some(mut c) = self.cluster.take() {
            c.broadcast_pong(false, now, &mut self.rng);
            self.cluster = Some(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::commands::testing::{self, run, take_propagated};
    use crate::engine::object::RObj;

    fn cluster_server() -> super::Server {
        let mut srv = testing::server();
        srv.config.set_startup("cluster-enabled", "yes").expect("a boolean");
        srv.init_cluster();
        srv
    }

    #[test]
    fn a_lost_slots_keys_are_deleted_newest_first_and_propagated() {
        let mut srv = cluster_server();
        for k in ["{t}a", "{t}b", "other", "{t}c"] {
            srv.dbs[0].add(k.as_bytes(), RObj::from_int(1, 0, false));
        }
        srv.propagate_enabled = true;
        srv.delete_keys_in_slot(crate::cluster::key_hash_slot(b"t"));
        let dels: Vec<String> =
            take_propagated(&mut srv).into_iter().filter(|p| p[0] == "DEL").map(|p| p[1].clone()).collect();
        assert_eq!(dels, ["{t}c", "{t}b", "{t}a"]);
        assert_eq!(run(&mut srv, &["CLUSTER", "COUNTKEYSINSLOT", "15891"]), b":0\r\n");
        assert_eq!(srv.dbs[0].len(), 1, "other slots keep their keys");
    }

    #[test]
    fn datasets_loaded_aside_are_indexed_by_slot_in_cluster_mode_only() {
        let srv = cluster_server();
        assert!(srv.dbs.iter().chain(&srv.fresh_dbs(1)).all(|db| db.slot_to_keys.is_some()));
        let standalone = testing::server();
        assert!(standalone.dbs.iter().chain(&standalone.fresh_dbs(1)).all(|db| db.slot_to_keys.is_none()));
    }
}

//! Redis Cluster (Redis 7.0's `cluster.c`): the node's view of the cluster, kept as a sans-IO
//! state machine inside the server. Slots are owned by masters; each node learns who owns what
//! from the bus's heartbeats, where a claim with a greater config epoch wins; failure is agreed
//! by gossip (PFAIL seen by a majority of masters becomes FAIL); a replica of a failed master
//! asks the masters for votes in a new epoch and takes the slots over. The driver moves the
//! bus's bytes and calls back in; this module never awaits.

pub mod bus;
pub mod commands;
pub mod config;
pub mod driver;
pub mod failover;
pub mod gossip;
pub mod redirect;
pub mod slots;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use crate::env::Rng;
pub use slots::{key_hash_slot, SlotBitmap, CLUSTER_SLOTS};

/// Cluster bugs the simulator can plant to prove its checkers catch them (simulator build only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlantedBug {
    /// A node goes on serving keys of a slot it owned once, after the slot moved away.
    ServesLostSlot,
}

#[cfg(madsim)]
thread_local! {
    static PLANTED: std::cell::Cell<Option<PlantedBug>> = const { std::cell::Cell::new(None) };
}

/// Plants `bug` for every node run on this thread (a madsim runtime runs on one thread).
#[cfg(madsim)]
pub fn plant(bug: Option<PlantedBug>) {
    PLANTED.with(|p| p.set(bug));
}

/// Whether `bug` is planted on this thread; always false outside the simulator.
pub fn planted(bug: PlantedBug) -> bool {
    #[cfg(madsim)]
    {
        PLANTED.with(|p| p.get() == Some(bug))
    }
    #[cfg(not(madsim))]
    {
        let _ = bug;
        false
    }
}

/// A node's name: 40 lowercase hex characters.
pub type NodeName = String;
/// A bus connection, numbered by the cluster; the driver owns the socket.
pub type LinkId = u64;

/// Node flags, with the bus's bit values (`CLUSTER_NODE_*`).
pub mod flag {
    pub const MASTER: u16 = 1;
    pub const SLAVE: u16 = 2;
    pub const PFAIL: u16 = 4;
    pub const FAIL: u16 = 8;
    pub const MYSELF: u16 = 16;
    pub const HANDSHAKE: u16 = 32;
    pub const NOADDR: u16 = 64;
    pub const MEET: u16 = 128;
    pub const MIGRATE_TO: u16 = 256;
    pub const NOFAILOVER: u16 = 512;
}

/// A failure report older than node-timeout × this is forgotten.
pub const FAIL_REPORT_VALIDITY_MULT: u64 = 2;
/// A FAIL flag on a node that is reachable again and serves no slots is cleared after
/// node-timeout × this.
pub const FAIL_UNDO_TIME_MULT: u64 = 2;
/// A manual failover that has not completed by then is aborted (ms).
pub const MF_TIMEOUT_MS: u64 = 5000;
/// The master pauses its clients this multiple of the manual failover timeout.
pub const MF_PAUSE_MULT: u64 = 2;
/// A master that just started (or rejoined) waits this long before serving (ms).
pub const WRITABLE_DELAY_MS: u64 = 2000;
/// A FORGET keeps the node from being re-learned for this long (s).
pub const BLACKLIST_TTL_SECS: u64 = 60;
/// A replica waits this long with an orphaned master before migrating to it (ms).
pub const SLAVE_MIGRATION_DELAY_MS: u64 = 5000;

/// What a cluster node knows about one node (Redis's `clusterNode`).
#[derive(Debug, Clone)]
pub struct ClusterNode {
    pub name: NodeName,
    pub flags: u16,
    pub ctime_ms: u64,
    pub config_epoch: u64,
    pub slots: SlotBitmap,
    pub numslots: usize,
    /// The master's name, for a replica (None also when the master is unknown).
    pub slaveof: Option<NodeName>,
    /// Replicas by name, sorted (Redis sorts them so replies are stable).
    pub replicas: Vec<NodeName>,
    /// When the PING we wait an answer for went out (0: none outstanding).
    pub ping_sent_ms: u64,
    pub pong_received_ms: u64,
    pub data_received_ms: u64,
    pub fail_time_ms: u64,
    /// Last time we voted for a replica of this master.
    pub voted_time_ms: u64,
    pub repl_offset_time_ms: u64,
    pub orphaned_time_ms: u64,
    pub repl_offset: u64,
    pub ip: String,
    pub port: u16,
    pub pport: u16,
    pub cport: u16,
    pub hostname: String,
    /// Our connection to it.
    pub link: Option<LinkId>,
    /// Its connection to us.
    pub inbound_link: Option<LinkId>,
    /// Which masters said it is failing, and when they last said so.
    pub fail_reports: BTreeMap<NodeName, u64>,
    /// The PING (by our count) whose gossip last mentioned it, so one PING names it once.
    pub last_in_ping_gossip: u64,
}

impl ClusterNode {
    pub fn new(name: NodeName, flags: u16, now_ms: u64) -> Self {
        ClusterNode {
            name,
            flags,
            ctime_ms: now_ms,
            config_epoch: 0,
            slots: SlotBitmap::default(),
            numslots: 0,
            slaveof: None,
            replicas: Vec::new(),
            ping_sent_ms: 0,
            pong_received_ms: 0,
            data_received_ms: 0,
            fail_time_ms: 0,
            voted_time_ms: 0,
            repl_offset_time_ms: 0,
            orphaned_time_ms: 0,
            repl_offset: 0,
            ip: String::new(),
            port: 0,
            pport: 0,
            cport: 0,
            hostname: String::new(),
            link: None,
            inbound_link: None,
            fail_reports: BTreeMap::new(),
            last_in_ping_gossip: 0,
        }
    }

    pub fn has(&self, f: u16) -> bool {
        self.flags & f != 0
    }
    pub fn is_master(&self) -> bool {
        self.has(flag::MASTER)
    }
    pub fn is_replica(&self) -> bool {
        self.has(flag::SLAVE)
    }
    pub fn in_handshake(&self) -> bool {
        self.has(flag::HANDSHAKE)
    }
    pub fn timed_out(&self) -> bool {
        self.has(flag::PFAIL)
    }
    pub fn failed(&self) -> bool {
        self.has(flag::FAIL)
    }
    pub fn has_addr(&self) -> bool {
        !self.has(flag::NOADDR)
    }
}

/// A bus connection: outbound ones are made for a node; inbound ones learn their node from
/// the first packet.
#[derive(Debug, Clone)]
pub struct Link {
    pub node: Option<NodeName>,
    pub inbound: bool,
    pub ctime_ms: u64,
    /// Outbound: the driver reported the connection made.
    pub connected: bool,
}

/// What the driver must do for the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusAction {
    Connect { link: LinkId, ip: String, cport: u16 },
    Send { link: LinkId, bytes: Vec<u8> },
    Close { link: LinkId },
}

/// What the cluster asks of the rest of the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Replicate from this address (Redis's `replicationSetMaster`).
    ReplicaOf {
        ip: String,
        port: u16,
    },
    /// Stop replicating and take writes (`replicationUnsetMaster`).
    BecomeMaster,
    /// A replica asked for a manual failover: hold writes until then (Unix ms).
    PauseWrites {
        until_ms: u64,
    },
    Unpause,
    /// A slot was taken away while this node still had keys in it.
    DeleteKeysInSlot(u16),
    /// A PUBLISH from another node, for this node's subscribers.
    Publish {
        shard: bool,
        channel: Vec<u8>,
        message: Vec<u8>,
    },
    /// The node's keys must go (CLUSTER RESET of a replica).
    FlushAll,
}

/// What the cluster reads from the server before each call.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// The client port and bus port this node announces.
    pub port: u16,
    pub cport: u16,
    /// master_repl_offset on a master; the processed offset on a replica.
    pub repl_offset: u64,
    /// How long this replica has gone without its master's data (ms), as Redis computes
    /// data_age from the last interaction or the time the link went down.
    pub master_data_age_ms: u64,
    /// Whether the replication link is set up at all (Redis's `server.masterhost`).
    pub has_master: bool,
}

/// Whether the cluster serves queries (`cluster_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Ok,
    Fail,
}

/// Why a replica does not fail over (Redis logs each reason once per period).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CantFailover {
    None,
    DataAge,
    WaitingDelay,
    Expired,
    WaitingVotes,
}

/// The settings the cluster reads each turn (copied from the config by the server).
#[derive(Debug, Clone)]
pub struct ClusterConf {
    pub node_timeout_ms: u64,
    pub require_full_coverage: bool,
    pub allow_reads_when_down: bool,
    pub replica_validity_factor: u64,
    pub migration_barrier: u64,
    pub allow_replica_migration: bool,
    pub replica_no_failover: bool,
    pub announce_ip: String,
    pub announce_hostname: String,
    pub announce_port: u16,
    pub announce_bus_port: u16,
    pub repl_ping_replica_period_secs: u64,
}

impl Default for ClusterConf {
    fn default() -> Self {
        ClusterConf {
            node_timeout_ms: 15000,
            require_full_coverage: true,
            allow_reads_when_down: false,
            replica_validity_factor: 10,
            migration_barrier: 1,
            allow_replica_migration: true,
            replica_no_failover: false,
            announce_ip: String::new(),
            announce_hostname: String::new(),
            announce_port: 0,
            announce_bus_port: 0,
            repl_ping_replica_period_secs: 10,
        }
    }
}

/// Bus messages by type, sent and received (CLUSTER INFO's `cluster_stats_messages_*`).
pub const MSG_TYPE_NAMES: [&str; 11] =
    ["ping", "pong", "meet", "fail", "publish", "auth-req", "auth-ack", "update", "mfstart", "module", "publishshard"];

/// The cluster as this node sees it (Redis's `clusterState`).
#[derive(Debug, Clone)]
pub struct Cluster {
    pub myself: NodeName,
    pub current_epoch: u64,
    pub last_vote_epoch: u64,
    pub state: State,
    /// Masters serving at least one slot.
    pub size: usize,
    pub nodes: BTreeMap<NodeName, ClusterNode>,
    /// FORGET: names not to re-add until the Unix second stored.
    pub blacklist: BTreeMap<NodeName, u64>,
    /// The owner of each slot.
    pub slots: Vec<Option<NodeName>>,
    pub migrating_to: BTreeMap<u16, NodeName>,
    pub importing_from: BTreeMap<u16, NodeName>,
    pub failover_auth_time_ms: u64,
    pub failover_auth_count: usize,
    pub failover_auth_sent: bool,
    pub failover_auth_rank: usize,
    pub failover_auth_epoch: u64,
    pub cant_failover_reason: CantFailover,
    pub last_cant_failover_log_ms: u64,
    /// Manual failover: when it ends (0: none), the replica doing it (on a master), the
    /// master's offset to reach and whether the replica may start the election.
    pub mf_end_ms: u64,
    pub mf_replica: Option<NodeName>,
    pub mf_master_offset: Option<u64>,
    pub mf_can_start: bool,
    pub stats_sent: [u64; 11],
    pub stats_received: [u64; 11],
    pub stats_pfail_nodes: u64,
    pub links_buffer_limit_exceeded: u64,
    pub links: BTreeMap<LinkId, Link>,
    pub next_link: LinkId,
    pub out: Vec<BusAction>,
    pub conf: ClusterConf,
    /// beforeSleep's to-do flags.
    pub todo_save_config: bool,
    pub todo_fsync_config: bool,
    pub todo_update_state: bool,
    pub todo_handle_failover: bool,
    pub first_call_time_ms: u64,
    pub among_minority_time_ms: u64,
    /// When clusterCron last ran its once-a-second part, and how many times it ran.
    pub cron_iteration: u64,
    pub last_ping_random_ms: u64,
    /// Our address as our peers see it (learned from the first MEET, or announced).
    pub myip: String,
    /// Log lines for the server's log, as (Redis level, text).
    pub log: Vec<(u8, String)>,
    pub effects: Vec<Effect>,
    pub facts: Facts,
    /// Slots whose owner stopped claiming them (Redis's `owner_not_claiming_slot`): kept bound,
    /// but not taught to others in UPDATEs.
    pub owner_not_claiming: SlotBitmap,
    /// PINGs sent, numbering each one's gossip.
    pub pings_sent: u64,
    /// Peer address of each inbound link, and the local address the driver saw it on.
    pub link_addrs: BTreeMap<LinkId, (String, String)>,
    /// Planted bug (simulator): keep serving slots this node no longer owns.
    pub planted_serve_lost_slots: bool,
    /// Slots this node owned at some point, for the planted bug.
    pub once_owned: SlotBitmap,
    /// Votes this node granted and promotions it made, as (epoch, node), for the simulator.
    pub votes: Vec<(u64, NodeName)>,
    pub promotions: Vec<(u64, NodeName)>,
    /// The simulator's journal: this node's ownership as last written to it.
    pub journaled: String,
}

impl Cluster {
    /// A cluster of one: this node, master of no slots.
    pub fn new(rng: &mut impl Rng, now_ms: u64) -> Self {
        let name = random_name(rng);
        let mut me = ClusterNode::new(name.clone(), flag::MYSELF | flag::MASTER, now_ms);
        me.config_epoch = 0;
        let mut nodes = BTreeMap::new();
        nodes.insert(name.clone(), me);
        Cluster {
            myself: name,
            current_epoch: 0,
            last_vote_epoch: 0,
            state: State::Fail,
            size: 1,
            nodes,
            blacklist: BTreeMap::new(),
            slots: vec![None; CLUSTER_SLOTS],
            migrating_to: BTreeMap::new(),
            importing_from: BTreeMap::new(),
            failover_auth_time_ms: 0,
            failover_auth_count: 0,
            failover_auth_sent: false,
            failover_auth_rank: 0,
            failover_auth_epoch: 0,
            cant_failover_reason: CantFailover::None,
            last_cant_failover_log_ms: 0,
            mf_end_ms: 0,
            mf_replica: None,
            mf_master_offset: None,
            mf_can_start: false,
            stats_sent: [0; 11],
            stats_received: [0; 11],
            stats_pfail_nodes: 0,
            links_buffer_limit_exceeded: 0,
            links: BTreeMap::new(),
            next_link: 1,
            out: Vec::new(),
            conf: ClusterConf::default(),
            todo_save_config: true,
            todo_fsync_config: false,
            todo_update_state: true,
            todo_handle_failover: false,
            first_call_time_ms: 0,
            among_minority_time_ms: 0,
            cron_iteration: 0,
            last_ping_random_ms: 0,
            myip: String::new(),
            log: Vec::new(),
            effects: Vec::new(),
            facts: Facts::default(),
            owner_not_claiming: SlotBitmap::default(),
            pings_sent: 0,
            link_addrs: BTreeMap::new(),
            planted_serve_lost_slots: false,
            once_owned: SlotBitmap::default(),
            votes: Vec::new(),
            promotions: Vec::new(),
            journaled: String::new(),
        }
    }

    pub fn me(&self) -> &ClusterNode {
        &self.nodes[&self.myself]
    }

    pub fn me_mut(&mut self) -> &mut ClusterNode {
        self.nodes.get_mut(&self.myself).expect("myself is always known")
    }

    pub fn node(&self, name: &str) -> Option<&ClusterNode> {
        self.nodes.get(name)
    }

    pub fn logln(&mut self, level: u8, text: impl Into<String>) {
        self.log.push((level, text.into()));
    }

    pub fn save_config_soon(&mut self, fsync: bool) {
        self.todo_save_config = true;
        self.todo_fsync_config |= fsync;
    }

    /// The master a node serves under: itself for a master, its master for a replica.
    pub fn master_of<'a>(&'a self, n: &'a ClusterNode) -> Option<&'a ClusterNode> {
        if n.is_master() {
            Some(n)
        } else {
            n.slaveof.as_deref().and_then(|m| self.nodes.get(m))
        }
    }

    /// The owner of a slot.
    pub fn slot_owner(&self, slot: u16) -> Option<&ClusterNode> {
        self.slots[slot as usize].as_deref().and_then(|n| self.nodes.get(n))
    }

    pub fn i_own(&self, slot: u16) -> bool {
        self.slots[slot as usize].as_deref() == Some(self.myself.as_str())
    }

    /// Redis's `clusterAddSlot`: false if the slot already has an owner.
    pub fn add_slot(&mut self, name: &str, slot: u16) -> bool {
        if self.slots[slot as usize].is_some() {
            return false;
        }
        let Some(n) = self.nodes.get_mut(name) else { return false };
        if !n.slots.get(slot) {
            n.slots.set(slot);
            n.numslots += 1;
        }
        self.slots[slot as usize] = Some(name.to_string());
        if name == self.myself {
            self.once_owned.set(slot);
        }
        true
    }

    /// Redis's `clusterDelSlot`: false if nobody owned it.
    pub fn del_slot(&mut self, slot: u16) -> bool {
        let Some(owner) = self.slots[slot as usize].take() else { return false };
        if let Some(n) = self.nodes.get_mut(&owner) {
            if n.slots.get(slot) {
                n.slots.clear(slot);
                n.numslots -= 1;
            }
        }
        true
    }

    /// Redis's `clusterDelNodeSlots`: how many it owned.
    pub fn del_node_slots(&mut self, name: &str) -> usize {
        let owned: Vec<u16> = match self.nodes.get(name) {
            Some(n) => n.slots.iter().collect(),
            None => return 0,
        };
        for &s in &owned {
            self.del_slot(s);
        }
        owned.len()
    }

    /// Slots nobody serves... and all of them back to nobody (CLUSTER FLUSHSLOTS).
    pub fn flush_slots(&mut self) {
        for s in 0..CLUSTER_SLOTS as u16 {
            self.del_slot(s);
        }
    }

    /// Redis's `clusterNodeAddSlave` / `clusterNodeRemoveSlave`.
    pub fn add_replica(&mut self, master: &str, replica: &str) {
        if let Some(m) = self.nodes.get_mut(master) {
            if let Err(at) = m.replicas.binary_search_by(|r| r.as_str().cmp(replica)) {
                m.replicas.insert(at, replica.to_string());
            }
            if m.replicas.len() == 1 {
                m.flags |= flag::MIGRATE_TO;
            }
        }
    }

    pub fn remove_replica(&mut self, master: &str, replica: &str) {
        if let Some(m) = self.nodes.get_mut(master) {
            m.replicas.retain(|r| r != replica);
            if m.replicas.is_empty() {
                m.flags &= !flag::MIGRATE_TO;
            }
        }
    }

    /// Redis's `clusterNodeAddFailureReport`: true when the report is new.
    pub fn add_failure_report(&mut self, failing: &str, sender: &str, now_ms: u64) -> bool {
        let Some(n) = self.nodes.get_mut(failing) else { return false };
        n.fail_reports.insert(sender.to_string(), now_ms).is_none()
    }

    pub fn del_failure_report(&mut self, failing: &str, sender: &str) -> bool {
        self.nodes.get_mut(failing).is_some_and(|n| n.fail_reports.remove(sender).is_some())
    }

    /// Valid reports only (Redis's `clusterNodeFailureReportsCount` after cleanup).
    pub fn failure_reports_count(&mut self, failing: &str, now_ms: u64) -> usize {
        let maxtime = self.conf.node_timeout_ms * FAIL_REPORT_VALIDITY_MULT;
        let Some(n) = self.nodes.get_mut(failing) else { return 0 };
        n.fail_reports.retain(|_, t| now_ms.saturating_sub(*t) <= maxtime);
        n.fail_reports.len()
    }

    /// Redis's `clusterDelNode`: slots it owned become unassigned, its links close, and its
    /// failure reports from others disappear.
    pub fn del_node(&mut self, name: &str) {
        for s in 0..CLUSTER_SLOTS as u16 {
            if self.importing_from.get(&s).map(String::as_str) == Some(name) {
                self.importing_from.remove(&s);
            }
            if self.migrating_to.get(&s).map(String::as_str) == Some(name) {
                self.migrating_to.remove(&s);
            }
            if self.slots[s as usize].as_deref() == Some(name) {
                self.del_slot(s);
            }
        }
        let reporters: Vec<NodeName> = self.nodes.keys().cloned().collect();
        for other in reporters {
            self.del_failure_report(&other, name);
        }
        if let Some(n) = self.nodes.remove(name) {
            if let Some(m) = n.slaveof.as_deref() {
                let m = m.to_string();
                self.remove_replica(&m, name);
            }
            for link in [n.link, n.inbound_link].into_iter().flatten() {
                self.free_link(link);
            }
        }
    }

    /// Forgets a connection (asking the driver to close it).
    pub fn free_link(&mut self, link: LinkId) {
        if let Some(l) = self.links.remove(&link) {
            if let Some(n) = l.node.and_then(|n| self.nodes.get_mut(&n)) {
                if n.link == Some(link) {
                    n.link = None;
                }
                if n.inbound_link == Some(link) {
                    n.inbound_link = None;
                }
            }
            self.out.push(BusAction::Close { link });
        }
    }

    /// Redis's `clusterRenameNode`: a handshake node learns its real name.
    pub fn rename_node(&mut self, old: &str, new: &str) {
        let Some(mut n) = self.nodes.remove(old) else { return };
        n.name = new.to_string();
        for l in [n.link, n.inbound_link].into_iter().flatten() {
            if let Some(link) = self.links.get_mut(&l) {
                link.node = Some(new.to_string());
            }
        }
        self.nodes.insert(new.to_string(), n);
    }

    /// Redis's `clusterBlacklistAddNode` / cleanup / exists.
    pub fn blacklist_add(&mut self, name: &str, now_secs: u64) {
        self.blacklist_cleanup(now_secs);
        self.blacklist.insert(name.to_string(), now_secs + BLACKLIST_TTL_SECS);
    }

    pub fn blacklist_cleanup(&mut self, now_secs: u64) {
        self.blacklist.retain(|_, until| *until >= now_secs);
    }

    pub fn blacklisted(&mut self, name: &str, now_secs: u64) -> bool {
        self.blacklist_cleanup(now_secs);
        self.blacklist.contains_key(name)
    }

    /// The greatest config epoch of any node (Redis's `clusterGetMaxEpoch`).
    pub fn max_epoch(&self) -> u64 {
        self.nodes.values().map(|n| n.config_epoch).max().unwrap_or(0).max(self.current_epoch)
    }

    /// Redis's `clusterBumpConfigEpochWithoutConsensus`: true when myself's epoch changed.
    pub fn bump_epoch_without_consensus(&mut self) -> bool {
        let max = self.max_epoch();
        let mine = self.me().config_epoch;
        if mine == 0 || mine != max {
            self.current_epoch += 1;
            let e = self.current_epoch;
            self.me_mut().config_epoch = e;
            self.save_config_soon(true);
            self.logln(3, format!("New configEpoch set to {e}"));
            true
        } else {
            false
        }
    }

    /// Redis's `clusterHandleConfigEpochCollision`: of two masters with one config epoch, the
    /// one with the smaller name takes a new epoch.
    pub fn handle_config_epoch_collision(&mut self, sender: &str) {
        let Some(s) = self.nodes.get(sender) else { return };
        let me = self.me();
        if s.config_epoch != me.config_epoch || !s.is_master() || !me.is_master() {
            return;
        }
        if sender <= self.myself.as_str() {
            return;
        }
        self.current_epoch += 1;
        let e = self.current_epoch;
        self.me_mut().config_epoch = e;
        self.save_config_soon(true);
        self.logln(2, format!("WARNING: configEpoch collision with node {sender} (). configEpoch set to {e}"));
    }

    /// Redis's `clusterUpdateState`: ok when every slot is served (or full coverage is not
    /// required) and this node is in the majority partition.
    pub fn update_state(&mut self, now_ms: u64) {
        self.todo_update_state = false;
        if self.first_call_time_ms == 0 {
            self.first_call_time_ms = now_ms;
        }
        if self.me().is_master()
            && self.state == State::Fail
            && now_ms.saturating_sub(self.first_call_time_ms) < WRITABLE_DELAY_MS
        {
            return;
        }
        let mut new_state = State::Ok;
        if self.conf.require_full_coverage {
            let uncovered = self.slots.iter().any(|o| match o.as_deref().and_then(|n| self.nodes.get(n)) {
                None => true,
                Some(n) => n.failed(),
            });
            if uncovered {
                new_state = State::Fail;
            }
        }
        self.size = 0;
        let mut reachable = 0;
        for n in self.nodes.values() {
            if n.is_master() && n.numslots > 0 {
                self.size += 1;
                if !n.has(flag::FAIL | flag::PFAIL) {
                    reachable += 1;
                }
            }
        }
        let quorum = self.size / 2 + 1;
        if reachable < quorum {
            new_state = State::Fail;
            self.among_minority_time_ms = now_ms;
        }
        if new_state != self.state {
            // A master that was in the minority waits before serving again, so that the
            // others' view of its slots can reach it first.
            let rejoin_delay = self.conf.node_timeout_ms.clamp(500, 5000);
            if new_state == State::Ok
                && self.me().is_master()
                && now_ms.saturating_sub(self.among_minority_time_ms) < rejoin_delay
            {
                return;
            }
            self.logln(3, format!("Cluster state changed: {}", if new_state == State::Ok { "ok" } else { "fail" }));
            self.state = new_state;
        }
    }

    /// Allocates a link id for a connection the driver made or accepted.
    pub fn new_link(&mut self, node: Option<NodeName>, inbound: bool, now_ms: u64) -> LinkId {
        let id = self.next_link;
        self.next_link += 1;
        self.links.insert(id, Link { node, inbound, ctime_ms: now_ms, connected: inbound });
        id
    }

    /// Adds a node we are told to meet (CLUSTER MEET) or heard of in gossip, under a random
    /// name until its first reply says the real one.
    pub fn start_handshake(&mut self, rng: &mut impl Rng, ip: &str, port: u16, cport: u16, now_ms: u64) -> bool {
        let in_progress = self
            .nodes
            .values()
            .any(|n| n.in_handshake() && n.ip.eq_ignore_ascii_case(ip) && n.port == port && n.cport == cport);
        if in_progress {
            return false;
        }
        let name = random_name(rng);
        let mut n = ClusterNode::new(name.clone(), flag::HANDSHAKE | flag::MEET, now_ms);
        n.ip = ip.to_string();
        n.port = port;
        n.cport = cport;
        self.nodes.insert(name, n);
        true
    }
}

/// 40 random hex characters from the seeded RNG (Redis's `getRandomHexChars`).
pub fn random_name(rng: &mut impl Rng) -> NodeName {
    let mut b = [0u8; 20];
    rng.fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Whether `s` is a well-formed node name (Redis's `verifyClusterNodeId`: 40 characters of
/// `a-z0-9`, wider than hex).
pub fn valid_name(s: &[u8]) -> bool {
    s.len() == 40 && s.iter().all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
}

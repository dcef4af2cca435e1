//! What the clients saw: every operation from invocation to outcome, with simulated times, plus
//! the fault events the checkers must know about (kills: a node without persistence restarts
//! empty; clock changes: expiry follows the node's clock, not true time).

use serde::{Deserialize, Serialize};

use crate::scenario::OpKind;

/// An operation's request, with the arguments the checkers need.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Call {
    Get { key: String },
    Set { key: String, value: String, ttl_ms: Option<u64> },
    Del { key: String },
    Incr { key: String },
    GetCounter { key: String },
    Append { id: u64 },
    Read,
    Expire { key: String, ttl_ms: u64 },
    Persist { key: String },
}

impl Call {
    pub fn key(&self) -> Option<&str> {
        match self {
            Call::Get { key }
            | Call::Set { key, .. }
            | Call::Del { key }
            | Call::Incr { key }
            | Call::GetCounter { key }
            | Call::Expire { key, .. }
            | Call::Persist { key } => Some(key),
            Call::Append { .. } | Call::Read => None,
        }
    }
}

/// A reply as the checkers read it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Value {
    Nil,
    Ok,
    Int(i64),
    Str(String),
    Ids(Vec<u64>),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The node replied with a value.
    Ok(Value),
    /// The operation certainly had no effect: nothing was sent (connect failed) or the node
    /// replied with an error.
    Fail(String),
    /// The request may or may not have taken effect: a timeout or a connection lost after
    /// sending. Checkers let it happen at any time from sending on, or never.
    Unknown(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    pub id: usize,
    pub client: u32,
    pub node: u32,
    pub kind: OpKind,
    pub call: Call,
    /// Simulated µs since the world started.
    pub invoke_us: u64,
    /// When the whole request had been handed to the network; `None` if it never was. An
    /// operation cannot take effect before this.
    pub sent_us: Option<u64>,
    pub complete_us: u64,
    pub outcome: Outcome,
}

impl Op {
    pub fn is_ok(&self) -> bool {
        matches!(self.outcome, Outcome::Ok(_))
    }
    pub fn is_unknown(&self) -> bool {
        matches!(self.outcome, Outcome::Unknown(_))
    }
    pub fn value(&self) -> Option<&Value> {
        match &self.outcome {
            Outcome::Ok(v) => Some(v),
            _ => None,
        }
    }
}

/// A change of one node's wall-clock error, as the nemesis applied it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockChange {
    pub at_us: u64,
    /// The wall clock's error (node time − true time) just after the change, µs.
    pub error_us: i64,
    /// How fast the error grows from here on, µs per second of true time.
    pub drift_ppm: i64,
}

/// Everything the checkers read.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct History {
    pub ops: Vec<Op>,
    /// Per node, the simulated µs at which it was killed (its memory is gone from then on).
    pub kills_us: Vec<Vec<u64>>,
    /// Per node, the simulated µs of its power failures (also in `kills_us`): unsynced writes
    /// may be gone from then on.
    #[serde(default)]
    pub power_fails_us: Vec<Vec<u64>>,
    /// Per node, its wall clock's changes in time order.
    pub clocks: Vec<Vec<ClockChange>>,
    /// When every fault was healed: the liveness phase starts here.
    pub healed_us: u64,
    pub end_us: u64,
    /// What a replication world saw beyond the clients' operations.
    #[serde(default)]
    pub repl: ReplRecord,
    /// What the sentinels of a sentinel world journaled.
    #[serde(default)]
    pub sentinel: SentinelRecord,
    /// What a cluster world's nodes journaled and its operator saw.
    #[serde(default)]
    pub cluster: ClusterRecord,
    /// Who could hear whom: the node-to-node links the faults cut and the stretches each node
    /// ran nothing.
    #[serde(default)]
    pub reach: ReachRecord,
}

/// What the faults did to the nodes' processes and to the links between nodes, as the world
/// applied them, for checkers that reason about which node could hear which (`min_replicas`).
/// Links to and from clients and sentinels are left out.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ReachRecord {
    /// One directed node-to-node link cut (partition both ways or one way, split, replication
    /// link cut) per stretch during which some fault held it cut (overlapping faults make one
    /// stretch), in the order the stretches ended.
    pub link_cuts: Vec<LinkCut>,
    /// Per node, the stretches during which it ran nothing (paused, or down from a kill, a
    /// power failure or an exit until its restart), in the order they ended.
    pub stops: Vec<Vec<Stop>>,
    /// No message took longer than this on the wire (the highest message latency the network
    /// had at any moment of the run, exclusive bound), µs.
    pub max_latency_us: u64,
}

/// Messages from node `from` could not reach node `to` during `[start_us, end_us)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LinkCut {
    pub from: u32,
    pub to: u32,
    pub start_us: u64,
    pub end_us: u64,
}

/// A node ran nothing during `[start_us, end_us)`: paused, or down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Stop {
    pub start_us: u64,
    pub end_us: u64,
    pub paused: bool,
}

/// A cluster world's record for the cluster checkers. Nodes are numbered as in the world.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ClusterRecord {
    /// Node number → cluster node ID, as CLUSTER MYID told the operator at creation.
    pub ids: Vec<String>,
    /// When every node reported cluster_state:ok after the creation (clients start then).
    pub ready_us: u64,
    /// Every change of a node's own slots, in time order, from the nodes' journal.
    pub owns: Vec<Ownership>,
    /// (µs, voter, epoch, candidate ID): votes the masters granted.
    pub votes: Vec<(u64, u32, u64, String)>,
    /// (µs, node, config epoch): replicas that promoted themselves.
    pub promotions: Vec<(u64, u32, u64)>,
    /// Operations served after an ASK redirect (sent with ASKING), by op id.
    pub asked: Vec<usize>,
    /// The operator's slot moves.
    pub reshards: Vec<Reshard>,
    /// Every node's view probed after the settle phase.
    pub probes: Vec<ClusterProbe>,
}

/// From this moment on, `node` owns `owned` and imports `importing`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ownership {
    pub at_us: u64,
    pub node: u32,
    pub owned: Vec<(u16, u16)>,
    pub importing: Vec<u16>,
}

/// One slot moved by the operator (or tried).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reshard {
    pub start_us: u64,
    pub end_us: u64,
    pub slot: u16,
    pub from: u32,
    pub to: u32,
    pub keys_moved: u64,
    /// `done`, or why it stopped (finished later by the operator's fix after the heal).
    pub outcome: String,
}

/// One node's cluster view after the settle phase.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterProbe {
    pub node: u32,
    pub id: String,
    /// `cluster_state` of CLUSTER INFO.
    pub state: String,
    /// The master this node replicates (its ID), None for a master.
    pub master: Option<String>,
    /// (first, last, owner ID) for every slot range, as this node's CLUSTER NODES says.
    pub slots: Vec<(u16, u16, String)>,
    /// Its keys (db 0).
    pub keys: Vec<String>,
    pub digest: String,
    pub error: Option<String>,
}

/// The sentinels' elections, for the `sentinel_leader` checker. Sentinels are named `s<i>`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SentinelRecord {
    /// (voter, epoch, candidate), in the order the votes were given.
    pub votes: Vec<(String, u64, String)>,
    /// (leader, epoch): elections won.
    pub elected: Vec<(String, u64)>,
    /// (µs, sentinel number, epoch): when each election was won, from the sentinels' logs.
    #[serde(default)]
    pub elected_us: Vec<(u64, u32, u64)>,
    /// (leader, epoch, replica address): promotions the leaders started.
    pub promoting: Vec<(String, u64, String)>,
}

/// A replication world's record for the replication checkers.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ReplRecord {
    /// The scenario's replication expectations, as the checkers need them.
    pub nodes: u32,
    pub expect_resync: Option<crate::scenario::ResyncExpect>,
    pub wait_replicas: Option<u32>,
    /// `replication.max_lost_acked_writes`.
    #[serde(default)]
    pub max_lost_acked_writes: Option<u64>,
    /// The nodes' `repl-timeout`, in ms: a cut longer than it breaks the link on both sides.
    #[serde(default)]
    pub repl_timeout_ms: u64,
    /// Per node, its (`min-replicas-to-write`, `min-replicas-max-lag` in seconds) as it starts.
    #[serde(default)]
    pub min_replicas: Vec<(u64, u64)>,
    /// Per acknowledged write that was followed by WAIT: (op id, replicas WAIT reported).
    pub waits: Vec<(usize, i64)>,
    /// Replication link cuts that took effect: (replica node, start µs, end µs).
    pub cuts: Vec<(u32, u64, u64)>,
    /// Failovers and promotions that took effect, in time order.
    pub promotions: Vec<Promotion>,
    /// When a replica's link came up, from its log: a full or a partial resync finished
    /// (node, µs), in time order.
    #[serde(default)]
    pub synced_us: Vec<(u32, u64)>,
    /// Replica restarts (node, µs).
    pub restarts: Vec<(u32, u64)>,
    /// The master at the end, and every node's state probed after the settle phase.
    pub final_master: u32,
    pub probes: Vec<NodeProbe>,
}

/// A failover or forced promotion the operator carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promotion {
    /// When the operator started (writes may still reach the old master) and finished (every
    /// reachable node told to follow the new master).
    pub start_us: u64,
    pub end_us: u64,
    pub node: u32,
    pub forced: bool,
}

/// One node's replication state as INFO and DEBUG DIGEST showed it after the settle phase.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeProbe {
    pub node: u32,
    /// `master` or `slave`; empty when the node did not answer.
    pub role: String,
    pub digest: String,
    pub master_repl_offset: u64,
    pub sync_full: u64,
    pub sync_partial_ok: u64,
    pub sync_partial_err: u64,
    /// The log list (RPUSHed ids) the node holds.
    pub log: Vec<u64>,
    /// How many times the node was started (stats count from the last start).
    pub incarnations: u32,
    pub error: Option<String>,
}

impl History {
    pub fn new(nodes: usize) -> Self {
        History {
            kills_us: vec![Vec::new(); nodes],
            power_fails_us: vec![Vec::new(); nodes],
            clocks: vec![Vec::new(); nodes],
            reach: ReachRecord { stops: vec![Vec::new(); nodes], ..ReachRecord::default() },
            ..History::default()
        }
    }

    /// The first kill of `node` at or after `t_us`: an operation sent on a connection to the
    /// node before then cannot take effect after it.
    pub fn next_kill_us(&self, node: u32, t_us: u64) -> Option<u64> {
        self.kills_us[node as usize].iter().copied().find(|&k| k >= t_us)
    }

    /// How many times `node` was killed before `t_us`: the incarnation serving a request
    /// sent then.
    /// The history as if one node had served every operation (node 0, with node 0's clock and
    /// no kills): how the register and counter checkers see a cluster, whose keys move.
    pub fn as_one_keyspace(&self) -> History {
        let mut h = self.clone();
        for op in &mut h.ops {
            op.node = 0;
        }
        h.kills_us = vec![Vec::new()];
        h.power_fails_us = vec![Vec::new()];
        h.clocks.truncate(1);
        h
    }

    pub fn epoch(&self, node: u32, t_us: u64) -> usize {
        self.kills_us[node as usize].iter().filter(|&&k| k < t_us).count()
    }

    /// The window in which `op` could have taken effect: from sending to its reply, or for an
    /// unknown outcome to the node's next kill (or the end of the run). `None`: it had none.
    pub fn effect_window(&self, op: &Op) -> Option<(u64, u64)> {
        let sent = op.sent_us?;
        match op.outcome {
            Outcome::Ok(_) => Some((sent, op.complete_us.max(sent))),
            Outcome::Fail(_) => None,
            Outcome::Unknown(_) => {
                let end = match self.next_kill_us(op.node, sent) {
                    Some(k) => k.saturating_sub(1).max(sent),
                    None => self.end_us.max(sent),
                };
                Some((sent, end))
            }
        }
    }
}

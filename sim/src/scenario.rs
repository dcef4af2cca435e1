//! Scenario files: what a run simulates (topology, server config, workload, faults, checkers),
//! as data in `scenarios/*.toml`. Loading rejects unknown fields and checks every value, and
//! each error names the field, because a typo in a scenario must not silently test nothing.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Bounds that keep a run small enough to sweep; a scenario past them is a mistake.
pub const MAX_NODES: u32 = 8;
pub const MAX_CLIENTS: u32 = 64;
pub const MAX_KEYS: u32 = 1_000;
pub const MAX_DURATION_MS: u64 = 3_600_000;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub topology: Topology,
    /// redis.conf directives for every node, `name = "value"`, applied at startup.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Per-role overrides of `config`, applied after it: `[role_config.master]` for the node
    /// that starts as the master (node 0 of a replication topology), `[role_config.replica]`
    /// for the nodes that start as replicas.
    #[serde(default, skip_serializing_if = "RoleConfig::is_empty")]
    pub role_config: RoleConfig,
    pub workload: Workload,
    #[serde(default)]
    pub net: NetOptions,
    #[serde(default)]
    pub faults: Faults,
    /// The safety phase: workload under faults.
    pub duration_ms: u64,
    /// The liveness phase: every fault healed, the workload goes on and must succeed.
    pub settle_ms: u64,
    /// How long after the heal the liveness checker lets operations still fail; default one
    /// connect timeout and two operation timeouts. A Sentinel world needs more when a
    /// sentinel missed a failover: it may repoint the new master at the old one, and the
    /// others only notice a master that reports itself a replica after down-after plus two
    /// INFO periods (20 s), then fail over again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness_grace_ms: Option<u64>,
    pub checkers: Vec<CheckerKind>,
    /// Replication topology: node 0 starts as the master, the others as its replicas (or a
    /// chain); absent: every node stands alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication: Option<ReplicationOpts>,
    /// A sentinel group (redsim's Sentinel) watching the replication topology's master as
    /// `mymaster` and failing it over; the operator then only watches, as a client would.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentinel: Option<SentinelGroup>,
    /// A Redis Cluster: `masters` nodes share the 16384 slots, each with `replicas` replicas;
    /// the operator creates it as `redis-cli --cluster create` does, and the clients route by
    /// slot, following MOVED and ASK.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterOpts>,
}

/// The `[cluster]` section. Nodes `0..masters` start as masters, each owning an equal share of
/// the slots in order; node `masters + i` replicates master `i % masters`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClusterOpts {
    pub masters: u32,
    /// Replicas per master.
    #[serde(default)]
    pub replicas: u32,
    /// `cluster-node-timeout`.
    pub node_timeout_ms: u64,
    /// Percent of operations a client first sends to a random node instead of the slot's
    /// owner in its map, as a client with a stale map would (they are redirected).
    #[serde(default)]
    pub misroute_pct: u32,
}

impl ClusterOpts {
    pub fn nodes(&self) -> u32 {
        self.masters * (1 + self.replicas)
    }

    /// The master node `n` starts under, or None if it starts as a master.
    pub fn initial_master_of(&self, n: u32) -> Option<u32> {
        (n >= self.masters).then(|| n % self.masters)
    }

    /// The slots master `m` starts with, as redis-cli splits them: inclusive bounds.
    pub fn initial_slots(&self, m: u32) -> (u16, u16) {
        let per = 16384.0 / f64::from(self.masters);
        let lo = (f64::from(m) * per).round() as u16;
        let hi = if m + 1 == self.masters { 16383 } else { ((f64::from(m + 1) * per).round() as u16) - 1 };
        (lo, hi)
    }
}

/// The sentinels of a `[sentinel]` section: each its own machine, partitioned with the rest.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SentinelGroup {
    pub count: u32,
    pub quorum: u32,
    /// `sentinel down-after-milliseconds`.
    pub down_after_ms: u64,
    /// `sentinel failover-timeout`.
    pub failover_timeout_ms: u64,
    /// `sentinel parallel-syncs`.
    #[serde(default = "one")]
    pub parallel_syncs: u32,
}

fn one() -> u32 {
    1
}

/// What a replication scenario sets up and what its checkers expect.
/// redis.conf directives by the role a node starts in.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RoleConfig {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub master: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub replica: BTreeMap<String, String>,
}

impl RoleConfig {
    pub fn is_empty(&self) -> bool {
        self.master.is_empty() && self.replica.is_empty()
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReplicationOpts {
    /// Node i > 0 replicates node i − 1 (a chain) instead of node 0.
    #[serde(default)]
    pub chain: bool,
    /// What the `repl_resync` checker expects of every resync after the initial full syncs.
    #[serde(default)]
    pub expect_resync: Option<ResyncExpect>,
    /// After each acknowledged write the client sends `WAIT replicas timeout_ms`.
    #[serde(default)]
    pub wait: Option<WaitOpts>,
    /// repl_writes: how many acknowledged appends no promise covered (no WAIT, lost across a
    /// promotion, as asynchronous replication allows) the run may lose; absent: any number,
    /// reported in the notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_lost_acked_writes: Option<u64>,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ResyncExpect {
    /// Every resync after the initial full syncs is partial.
    Partial,
    /// Every resync after a link cut is full (the backlog overflowed), one per cut.
    Full,
    /// After each forced promotion the demoted master, whose writes went past the new master's
    /// second_replid_offset, resyncs fully; every other resync is partial.
    Divergent,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WaitOpts {
    pub replicas: u32,
    pub timeout_ms: u64,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    /// The real redsim server (`redsim::server::driver`).
    #[default]
    Redsim,
    /// The toy append-only log in `toylog.rs`, which proves that the loop catches a planted bug.
    Toylog,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    pub nodes: u32,
    #[serde(default)]
    pub service: Service,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    /// GET of a register key.
    Get,
    /// SET of a register key to a value no other op writes.
    Set,
    /// SET … PX ttl of a register key.
    SetPx,
    /// SET … EX ttl (whole seconds) of a register key.
    SetEx,
    /// DEL of a register key.
    Del,
    /// INCR of a counter key.
    Incr,
    /// GET of a counter key.
    GetCounter,
    /// Toy log: append a unique id.
    Append,
    /// Toy log: read every id.
    Read,
    /// PEXPIRE of a counter key (TTL from `ttl_ms`): counters that expire while INCRs go on.
    ExpireCounter,
    /// PERSIST of a counter key: a key a replica expired too early stays on the master.
    PersistCounter,
}

impl OpKind {
    pub fn is_register(self) -> bool {
        matches!(self, OpKind::Get | OpKind::Set | OpKind::SetPx | OpKind::SetEx | OpKind::Del)
    }
    pub fn is_counter(self) -> bool {
        matches!(self, OpKind::Incr | OpKind::GetCounter)
    }
    pub fn is_log(self) -> bool {
        matches!(self, OpKind::Append | OpKind::Read)
    }
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Get => "get",
            OpKind::Set => "set",
            OpKind::SetPx => "set_px",
            OpKind::SetEx => "set_ex",
            OpKind::Del => "del",
            OpKind::Incr => "incr",
            OpKind::GetCounter => "get_counter",
            OpKind::Append => "append",
            OpKind::Read => "read",
            OpKind::ExpireCounter => "expire_counter",
            OpKind::PersistCounter => "persist_counter",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    pub clients: u32,
    /// Keys per class: registers `r0..`, counters `c0..`.
    pub keys: u32,
    /// Relative weights of the operations each client draws.
    pub ops: BTreeMap<OpKind, u32>,
    /// A client waits `think_ms[0]..=think_ms[1]` between operations.
    pub think_ms: [u64; 2],
    /// TTLs of `set_px` (ms) and `set_ex` (rounded up to whole seconds) are drawn from here.
    #[serde(default = "default_ttl_ms")]
    pub ttl_ms: [u64; 2],
    /// Swarm the mix too: each seed draws every weight from `0..=weight` (at least one stays
    /// above 0), so that some runs are all writes and others nearly all reads.
    #[serde(default)]
    pub swarm_mix: bool,
    /// Which keys the operations pick: `"uniform"`, or `{ zipf = s }` (key i with weight
    /// 1/(i+1)^s: a few hot keys, as real workloads have, so contention concentrates).
    #[serde(default, skip_serializing_if = "KeyDistribution::is_uniform")]
    pub distribution: KeyDistribution,
}

/// `workload.distribution`.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum KeyDistribution {
    #[default]
    Uniform,
    Zipf(f64),
}

impl KeyDistribution {
    fn is_uniform(&self) -> bool {
        *self == KeyDistribution::Uniform
    }

    /// Cumulative integer weights of keys `0..keys` (None: uniform, drawn directly).
    pub fn cumulative(&self, keys: u32) -> Option<Vec<u64>> {
        let KeyDistribution::Zipf(s) = *self else { return None };
        let mut total = 0u64;
        Some(
            (0..keys)
                .map(|i| {
                    total += ((1e9 / f64::from(i + 1).powf(s)) as u64).max(1);
                    total
                })
                .collect(),
        )
    }
}

fn default_ttl_ms() -> [u64; 2] {
    [100, 5_000]
}

/// How clients and nodes see the simulated network.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NetOptions {
    /// A connect to a clogged or dead node fails with TimedOut after this long (madsim itself
    /// refuses at once, which no real network does).
    pub connect_timeout_ms: u64,
    /// A client gives up on a reply after this long; the operation's outcome is then unknown.
    pub op_timeout_ms: u64,
    /// Chance that a write is cut into two or more pieces sent separately, so that RESP
    /// parsers see partial frames.
    pub split_write_probability: f64,
    /// madsim's per-message latency when no latency fault is active.
    pub latency_ms: [u64; 2],
}

impl Default for NetOptions {
    fn default() -> Self {
        NetOptions { connect_timeout_ms: 500, op_timeout_ms: 1_000, split_write_probability: 0.1, latency_ms: [1, 5] }
    }
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    Partition,
    PartitionIn,
    PartitionOut,
    Split,
    Kill,
    PowerFail,
    Pause,
    ClockJump,
    ClockOffset,
    ClockDrift,
    Latency,
    /// Every fsync of the node's disk fails with EIO for the duration.
    FsyncEio,
    /// Every fsync of the node's disk takes 500..3000 ms for the duration.
    DiskSlow,
    /// Cuts the replication link between the node and its master (both directions); clients
    /// still reach both.
    ReplLinkCut,
    /// A graceful failover to the node (as Redis's FAILOVER): writes on the master are paused
    /// until the node caught up, then the node is promoted and every other node follows it.
    Failover,
    /// Redis's FAILOVER command on the master, `TO` the node: the master itself pauses
    /// writes, waits for the node to catch up and hands over (or aborts at its timeout).
    FailoverCommand,
    /// A forced promotion (REPLICAOF NO ONE on the node, every other node told to follow it)
    /// without waiting for the old master: its unreplicated writes diverge.
    Promote,
    /// Cluster: the operator moves a few slots (chosen by the seed among those holding the
    /// workload's keys) from their master to another, as `redis-cli --cluster reshard` does:
    /// SETSLOT IMPORTING / MIGRATING, MIGRATE of every key, SETSLOT NODE on both and the rest.
    Reshard,
}

impl FaultKind {
    pub const ALL: [FaultKind; 18] = [
        FaultKind::Partition,
        FaultKind::PartitionIn,
        FaultKind::PartitionOut,
        FaultKind::Split,
        FaultKind::Kill,
        FaultKind::PowerFail,
        FaultKind::Pause,
        FaultKind::ClockJump,
        FaultKind::ClockOffset,
        FaultKind::ClockDrift,
        FaultKind::Latency,
        FaultKind::FsyncEio,
        FaultKind::DiskSlow,
        FaultKind::ReplLinkCut,
        FaultKind::Failover,
        FaultKind::FailoverCommand,
        FaultKind::Promote,
        FaultKind::Reshard,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Partition => "partition",
            FaultKind::PartitionIn => "partition_in",
            FaultKind::PartitionOut => "partition_out",
            FaultKind::Split => "split",
            FaultKind::Kill => "kill",
            FaultKind::PowerFail => "power_fail",
            FaultKind::Pause => "pause",
            FaultKind::ClockJump => "clock_jump",
            FaultKind::ClockOffset => "clock_offset",
            FaultKind::ClockDrift => "clock_drift",
            FaultKind::Latency => "latency",
            FaultKind::FsyncEio => "fsync_eio",
            FaultKind::DiskSlow => "disk_slow",
            FaultKind::ReplLinkCut => "repl_link_cut",
            FaultKind::Failover => "failover",
            FaultKind::FailoverCommand => "failover_command",
            FaultKind::Promote => "promote",
            FaultKind::Reshard => "reshard",
        }
    }

    /// Faults that act on a node (the others act on links, a machine or the whole network).
    pub fn needs_node(self) -> bool {
        matches!(
            self,
            FaultKind::Kill
                | FaultKind::PowerFail
                | FaultKind::Pause
                | FaultKind::ClockJump
                | FaultKind::ClockOffset
                | FaultKind::ClockDrift
                | FaultKind::FsyncEio
                | FaultKind::DiskSlow
                | FaultKind::ReplLinkCut
                | FaultKind::Failover
                | FaultKind::FailoverCommand
                | FaultKind::Promote
        )
    }

    /// Faults that only make sense with a `[replication]` topology.
    pub fn needs_replication(self) -> bool {
        matches!(self, FaultKind::ReplLinkCut | FaultKind::Failover | FaultKind::FailoverCommand | FaultKind::Promote)
    }

    /// Faults that only make sense in a `[cluster]`.
    pub fn needs_cluster(self) -> bool {
        matches!(self, FaultKind::Reshard)
    }

    /// Faults that act once and have nothing to undo.
    pub fn is_instant(self) -> bool {
        matches!(
            self,
            FaultKind::ClockJump
                | FaultKind::Failover
                | FaultKind::FailoverCommand
                | FaultKind::Promote
                | FaultKind::Reshard
        )
    }
}

/// What a power failure leaves of unsynced writes (`redsim::env::sim_disk::PowerLoss`).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PowerMode {
    LoseAll,
    Prefix,
    PrefixTorn,
    AnySector,
    AnySectorTorn,
}

impl PowerMode {
    pub const ALL: [PowerMode; 5] =
        [PowerMode::LoseAll, PowerMode::Prefix, PowerMode::PrefixTorn, PowerMode::AnySector, PowerMode::AnySectorTorn];
    pub fn name(self) -> &'static str {
        match self {
            PowerMode::LoseAll => "lose_all",
            PowerMode::Prefix => "prefix",
            PowerMode::PrefixTorn => "prefix_torn",
            PowerMode::AnySector => "any_sector",
            PowerMode::AnySectorTorn => "any_sector_torn",
        }
    }
}

/// One fault at a fixed time.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScheduledFault {
    pub at_ms: u64,
    pub fault: FaultKind,
    /// `node:N`, `client:N`, `sentinel:N`, `any_node`, `any_client`, `any_sentinel`, or empty for
    /// faults without a target.
    #[serde(default)]
    pub target: String,
    /// How long the fault lasts; 0 for a clock jump that NTP never corrects.
    #[serde(default)]
    pub duration_ms: u64,
    /// clock_jump: the step; clock_offset: the offset.
    #[serde(default)]
    pub delta_ms: i64,
    /// clock_drift: how fast the wall clock runs, parts per million.
    #[serde(default)]
    pub ppm: i64,
    /// latency: the message latency range while the fault lasts.
    #[serde(default)]
    pub latency_ms: Option<[u64; 2]>,
    /// power_fail: what survives of unsynced writes (default: drawn from the seed).
    #[serde(default)]
    pub mode: Option<PowerMode>,
    /// split: the machines of one side (`node:N`, `client:N`); empty: drawn from the seed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group: Vec<String>,
}

/// Faults drawn from the seed, TigerBeetle's "swarm testing": each seed picks which of `kinds`
/// are on and how often, so that some runs hammer one fault and others mix them.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Swarm {
    pub kinds: Vec<FaultKind>,
    /// Each enabled kind's rate is drawn from `1..=max_per_min` (per simulated minute).
    pub max_per_min: u32,
    pub duration_ms: [u64; 2],
    /// clock_jump and clock_offset steps are drawn from ±`clock_step_ms`.
    #[serde(default = "default_clock_step_ms")]
    pub clock_step_ms: [u64; 2],
    /// clock_drift rates are drawn from ±`drift_ppm`.
    #[serde(default = "default_drift_ppm")]
    pub drift_ppm: [u64; 2],
    /// power_fail modes to draw from; empty: all. AOF scenarios leave out the torn and
    /// reordering modes: an AOF has no checksums, so Redis refuses such a file until
    /// redis-check-aof --fix cuts it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub power_modes: Vec<PowerMode>,
    /// Which machines the swarm's partitions (both ways and one way) cut off.
    #[serde(default, skip_serializing_if = "LinkTargets::is_any")]
    pub link_targets: LinkTargets,
    /// A third of the swarm's kills, pauses and partitions hit a sentinel instead (needs a
    /// `[sentinel]` section): a killed sentinel restarts from its config file.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sentinels: bool,
}

/// `faults.swarm.link_targets`.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LinkTargets {
    /// A node or a client, half and half.
    #[default]
    Any,
    Nodes,
    Clients,
}

impl FaultKind {
    /// The kinds that act on a sentinel as well as on a node.
    pub fn acts_on_sentinel(self) -> bool {
        matches!(
            self,
            FaultKind::Kill
                | FaultKind::Pause
                | FaultKind::Partition
                | FaultKind::PartitionIn
                | FaultKind::PartitionOut
        )
    }
}

impl LinkTargets {
    fn is_any(&self) -> bool {
        *self == LinkTargets::Any
    }
}

fn default_clock_step_ms() -> [u64; 2] {
    [500, 60_000]
}

fn default_drift_ppm() -> [u64; 2] {
    [100, 200_000]
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    #[serde(default)]
    pub schedule: Vec<ScheduledFault>,
    #[serde(default)]
    pub swarm: Option<Swarm>,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum CheckerKind {
    /// Per-key linearizability of register keys, expiry included.
    Register,
    /// INCR replies consistent with one counter per key, split at restarts.
    Counter,
    /// Every client succeeds once the network is healed.
    Liveness,
    /// Acknowledged toy-log appends survive every later read.
    Durability,
    /// AOF promises for `appendfsync always`: no acknowledged RPUSH is ever lost.
    AofAlways,
    /// `appendfsync everysec`: only pushes acknowledged shortly before a crash may be lost.
    AofEverysec,
    /// `appendfsync no`: pushes may be lost only across a power failure.
    AofNo,
    /// After the settle phase every node's DEBUG DIGEST equals the final master's.
    ReplConvergence,
    /// The INFO sync_full / sync_partial_ok / sync_partial_err counts match
    /// `replication.expect_resync`.
    ReplResync,
    /// WAIT-acknowledged appends survive; other lost appends are reported, not failed; at
    /// most one node acknowledges writes at a time unless a forced promotion split them.
    ReplWrites,
    /// Sentinel elections: at most one leader per epoch, and no sentinel votes twice in one.
    SentinelLeader,
    /// Cluster: every operation a node served was for a slot it owned at that moment (or was
    /// importing, asked with ASKING); no master votes twice in an epoch, at most one replica
    /// is promoted per epoch.
    SlotOwnership,
    /// Cluster, after the settle phase: every node reports the same owner for every slot,
    /// all slots are served and the state is ok, each master holds keys only of its own
    /// slots, and each replica has its master's data.
    ClusterConvergence,
    /// `min-replicas-to-write N` / `min-replicas-max-lag T`: every write a node acknowledged
    /// had N other nodes able to reach it within T seconds (plus slack) before.
    MinReplicas,
}

impl CheckerKind {
    pub fn needs_replication(self) -> bool {
        matches!(
            self,
            CheckerKind::ReplConvergence | CheckerKind::ReplResync | CheckerKind::ReplWrites | CheckerKind::MinReplicas
        )
    }

    pub fn needs_cluster(self) -> bool {
        matches!(self, CheckerKind::SlotOwnership | CheckerKind::ClusterConvergence)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError(pub String);

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScenarioError {}

fn err<T>(field: &str, msg: impl fmt::Display) -> Result<T, ScenarioError> {
    Err(ScenarioError(format!("{field}: {msg}")))
}

/// A parsed target: which machine a fault hits, before or after the seed chose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    None,
    Node(u32),
    Client(u32),
    /// A sentinel of the `[sentinel]` group (kill, pause and partitions only).
    Sentinel(u32),
    AnyNode,
    AnyClient,
    AnySentinel,
}

impl Target {
    pub fn parse(s: &str) -> Option<Target> {
        let t = match s {
            "" => Target::None,
            "any_node" => Target::AnyNode,
            "any_client" => Target::AnyClient,
            "any_sentinel" => Target::AnySentinel,
            _ => match s.split_once(':') {
                Some(("node", n)) => Target::Node(n.parse().ok()?),
                Some(("client", n)) => Target::Client(n.parse().ok()?),
                Some(("sentinel", n)) => Target::Sentinel(n.parse().ok()?),
                _ => return None,
            },
        };
        Some(t)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::None => f.write_str("-"),
            Target::Node(n) => write!(f, "node:{n}"),
            Target::Client(n) => write!(f, "client:{n}"),
            Target::Sentinel(n) => write!(f, "sentinel:{n}"),
            Target::AnyNode => f.write_str("any_node"),
            Target::AnyClient => f.write_str("any_client"),
            Target::AnySentinel => f.write_str("any_sentinel"),
        }
    }
}

impl Scenario {
    pub fn from_toml(text: &str) -> Result<Scenario, ScenarioError> {
        let s: Scenario = toml::from_str(text).map_err(|e| ScenarioError(e.to_string()))?;
        s.validate()?;
        Ok(s)
    }

    /// Reads a scenario file: the harness's own input, not node I/O.
    #[allow(clippy::disallowed_methods)]
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError(format!("{}: {e}", path.display())))?;
        Scenario::from_toml(&text).map_err(|e| ScenarioError(format!("{}: {e}", path.display())))
    }

    pub fn validate(&self) -> Result<(), ScenarioError> {
        if self.name.is_empty() || !self.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return err("name", "must be non-empty and use only [A-Za-z0-9_-] (it names the report directory)");
        }
        let n = self.topology.nodes;
        if !(1..=MAX_NODES).contains(&n) {
            return err("topology.nodes", format!("must be in 1..={MAX_NODES} (got {n})"));
        }
        self.validate_config()?;
        if self.replication.is_some() && (n < 2 || self.topology.service != Service::Redsim) {
            return err("replication", "needs topology.nodes >= 2 and service redsim");
        }
        if let Some(w) = self.replication.as_ref().and_then(|r| r.wait) {
            if w.replicas == 0 || w.replicas >= n || w.timeout_ms == 0 {
                return err("replication.wait", "needs 0 < replicas < topology.nodes and timeout_ms > 0");
            }
        }
        if let Some(g) = &self.sentinel {
            if self.replication.is_none() {
                return err("sentinel", "needs a [replication] topology to watch");
            }
            if !(1..=7).contains(&g.count) || g.quorum == 0 || g.quorum > g.count {
                return err("sentinel", "needs 1 <= count <= 7 and 1 <= quorum <= count");
            }
            if g.down_after_ms == 0 || g.failover_timeout_ms == 0 || g.parallel_syncs == 0 {
                return err("sentinel", "down_after_ms, failover_timeout_ms and parallel_syncs must be > 0");
            }
        }
        if let Some(c) = &self.cluster {
            if self.replication.is_some() || self.sentinel.is_some() || self.topology.service != Service::Redsim {
                return err("cluster", "does not combine with [replication] or [sentinel], and needs service redsim");
            }
            if c.masters < 3 {
                return err("cluster.masters", "must be at least 3 (a failover needs a majority of masters)");
            }
            if c.nodes() != n {
                return err(
                    "cluster",
                    format!("masters × (1 + replicas) = {} must equal topology.nodes ({n})", c.nodes()),
                );
            }
            if c.node_timeout_ms < 100 || c.misroute_pct > 100 {
                return err("cluster", "needs node_timeout_ms >= 100 and misroute_pct <= 100");
            }
            // The register and counter checkers see the cluster as one keyspace: nothing may
            // reset a key (a kill, a failover to a replica that missed writes) or expire it by
            // one node's clock rather than another's.
            let keyspace_checked =
                self.checkers.iter().any(|k| matches!(k, CheckerKind::Register | CheckerKind::Counter));
            let resets_or_skews = self.fault_kinds().into_iter().find(|k| {
                matches!(
                    k,
                    FaultKind::Kill
                        | FaultKind::PowerFail
                        | FaultKind::ClockJump
                        | FaultKind::ClockOffset
                        | FaultKind::ClockDrift
                )
            });
            if keyspace_checked && c.replicas > 0 {
                return err("checkers", "register and counter need cluster.replicas = 0 (a failover loses writes)");
            }
            if let (true, Some(k)) = (keyspace_checked, resets_or_skews) {
                return err("checkers", format!("register and counter in a cluster rule out {} faults", k.name()));
            }
        }
        self.validate_workload()?;
        self.validate_net()?;
        self.validate_faults()?;
        if self.duration_ms == 0 || self.duration_ms > MAX_DURATION_MS {
            return err("duration_ms", format!("must be in 1..={MAX_DURATION_MS} (got {})", self.duration_ms));
        }
        // Liveness is judged on operations invoked after the grace; a client must have time
        // for a few of them.
        let min_settle = self.liveness_grace_ms() + 2 * self.workload.think_ms[1].max(500);
        if self.settle_ms < min_settle || self.settle_ms > MAX_DURATION_MS {
            return err(
                "settle_ms",
                format!(
                    "must be at least {min_settle} (the liveness grace: liveness_grace_ms, by default net.connect_timeout_ms + 2 × net.op_timeout_ms; plus two think times) and at most {MAX_DURATION_MS} (got {})",
                    self.settle_ms
                ),
            );
        }
        if self.checkers.is_empty() {
            return err("checkers", "name at least one checker");
        }
        for c in &self.checkers {
            let fits = matches!(
                (self.topology.service, c),
                (_, CheckerKind::Liveness)
                    | (Service::Redsim, CheckerKind::Register | CheckerKind::Counter)
                    | (Service::Toylog, CheckerKind::Durability)
                    | (Service::Redsim, CheckerKind::AofAlways | CheckerKind::AofEverysec | CheckerKind::AofNo)
                    | (
                        Service::Redsim,
                        CheckerKind::ReplConvergence
                            | CheckerKind::ReplResync
                            | CheckerKind::ReplWrites
                            | CheckerKind::SentinelLeader
                            | CheckerKind::SlotOwnership
                            | CheckerKind::ClusterConvergence
                            | CheckerKind::MinReplicas
                    )
            );
            if !fits {
                return err("checkers", format!("{c:?} does not apply to service {:?}", self.topology.service));
            }
            if c.needs_replication() && self.replication.is_none() {
                return err("checkers", format!("{c:?} needs a [replication] section"));
            }
            if c.needs_cluster() && self.cluster.is_none() {
                return err("checkers", format!("{c:?} needs a [cluster] section"));
            }
            if *c == CheckerKind::SentinelLeader && self.sentinel.is_none() {
                return err("checkers", "SentinelLeader needs a [sentinel] section");
            }
            if *c == CheckerKind::ReplResync && self.replication.as_ref().is_some_and(|r| r.expect_resync.is_none()) {
                return err("checkers", "ReplResync needs replication.expect_resync");
            }
            if *c == CheckerKind::MinReplicas {
                self.validate_min_replicas()?;
            }
            let policy = match c {
                CheckerKind::AofAlways => Some("always"),
                CheckerKind::AofEverysec => Some("everysec"),
                CheckerKind::AofNo => Some("no"),
                _ => None,
            };
            if let Some(p) = policy {
                let cfg = |k: &str| self.config.get(k).map(String::as_str);
                if cfg("appendonly") != Some("yes") || cfg("appendfsync").unwrap_or("everysec") != p {
                    return err(
                        "checkers",
                        format!("{c:?} needs config appendonly = \"yes\" and appendfsync = \"{p}\""),
                    );
                }
            }
        }
        Ok(())
    }

    /// The `min_replicas` checker judges a master with its replicas by the master's own
    /// clock and event loop: see `checkers::min_replicas` for why these faults are refused.
    fn validate_min_replicas(&self) -> Result<(), ScenarioError> {
        if self.replication.as_ref().is_some_and(|r| r.chain) {
            return err("checkers", "min_replicas needs a master with its replicas, not a chain (replication.chain)");
        }
        let (to_write, max_lag_s) = self.min_replicas(0);
        if to_write == 0 {
            return err(
                "checkers",
                "min_replicas needs min-replicas-to-write >= 1 on the master ([config] or [role_config.master])",
            );
        }
        if max_lag_s == 0 {
            return err("checkers", "min_replicas needs min-replicas-max-lag >= 1 (0 turns the check off)");
        }
        let refused = self.fault_kinds().into_iter().find(|k| {
            matches!(
                k,
                FaultKind::ClockJump
                    | FaultKind::ClockOffset
                    | FaultKind::ClockDrift
                    | FaultKind::DiskSlow
                    | FaultKind::FsyncEio
            )
        });
        if let Some(k) = refused {
            return err(
                "checkers",
                format!(
                    "min_replicas rules out {} faults (clock faults move the master's unixtime that lag is \
                     measured in; disk faults stall its event loop, so that it reads old ACKs late)",
                    k.name()
                ),
            );
        }
        Ok(())
    }

    /// Node `n`'s (`min-replicas-to-write`, `min-replicas-max-lag` in seconds) as it starts.
    pub fn min_replicas(&self, n: u32) -> (u64, u64) {
        let mut config = redsim::server::Config::default();
        for (name, value) in self.node_config(n) {
            // Checked by `validate_config`; a directive it refused leaves the default.
            let _ = config.set_startup(&name, &value);
        }
        (config.hot.min_replicas_to_write, config.hot.min_replicas_max_lag)
    }

    fn validate_config(&self) -> Result<(), ScenarioError> {
        let sections = [
            ("config", &self.config),
            ("role_config.master", &self.role_config.master),
            ("role_config.replica", &self.role_config.replica),
        ];
        for (section, directives) in sections {
            let mut config = redsim::server::Config::default();
            for (name, value) in directives {
                let cluster_chosen = self.cluster.is_some()
                    && matches!(name.as_str(), "cluster-enabled" | "cluster-node-timeout" | "cluster-config-file");
                if cluster_chosen || matches!(name.as_str(), "bind" | "port" | "replicaof" | "slaveof") {
                    return err(&format!("{section}.{name}"), "is chosen by the simulator");
                }
                if let Err(e) = config.set_startup(name, value) {
                    return err(&format!("{section}.{name}"), format!("{e:?}"));
                }
            }
        }
        if self.replication.is_none() && self.cluster.is_none() && !self.role_config.replica.is_empty() {
            return err("role_config.replica", "needs a [replication] topology (every node stands alone)");
        }
        Ok(())
    }

    /// The directives node `n` starts with: `config`, then its role's overrides.
    pub fn node_config(&self, n: u32) -> BTreeMap<String, String> {
        let mut directives = self.config.clone();
        let replica = match &self.cluster {
            Some(c) => c.initial_master_of(n).is_some(),
            None => self.replication.is_some() && n > 0,
        };
        let role = if replica { &self.role_config.replica } else { &self.role_config.master };
        directives.extend(role.iter().map(|(k, v)| (k.clone(), v.clone())));
        if let Some(c) = &self.cluster {
            directives.insert("cluster-enabled".into(), "yes".into());
            directives.insert("cluster-node-timeout".into(), c.node_timeout_ms.to_string());
        }
        directives
    }

    fn validate_workload(&self) -> Result<(), ScenarioError> {
        let w = &self.workload;
        if !(1..=MAX_CLIENTS).contains(&w.clients) {
            return err("workload.clients", format!("must be in 1..={MAX_CLIENTS} (got {})", w.clients));
        }
        if !(1..=MAX_KEYS).contains(&w.keys) {
            return err("workload.keys", format!("must be in 1..={MAX_KEYS} (got {})", w.keys));
        }
        if w.ops.values().all(|&weight| weight == 0) {
            return err("workload.ops", "give at least one operation a weight above 0");
        }
        if let KeyDistribution::Zipf(s) = w.distribution {
            if !(s > 0.0 && s <= 10.0) {
                return err("workload.distribution", format!("the zipf exponent must be in (0, 10] (got {s})"));
            }
        }
        for op in w.ops.keys() {
            let fits = match self.topology.service {
                // Redsim serves the log operations as RPUSH / LRANGE of one list.
                Service::Redsim => true,
                Service::Toylog => op.is_log(),
            };
            if !fits {
                return err(
                    &format!("workload.ops.{}", op.name()),
                    format!("not an operation of service {:?}", self.topology.service),
                );
            }
        }
        if w.think_ms[0] > w.think_ms[1] || w.think_ms[1] == 0 {
            return err("workload.think_ms", "must be [min, max] with min <= max and max > 0");
        }
        if w.ttl_ms[0] == 0 || w.ttl_ms[0] > w.ttl_ms[1] {
            return err("workload.ttl_ms", "must be [min, max] with 0 < min <= max");
        }
        Ok(())
    }

    fn validate_net(&self) -> Result<(), ScenarioError> {
        let n = &self.net;
        if n.connect_timeout_ms == 0 {
            return err("net.connect_timeout_ms", "must be > 0");
        }
        if n.op_timeout_ms == 0 {
            return err("net.op_timeout_ms", "must be > 0");
        }
        if !(0.0..=1.0).contains(&n.split_write_probability) {
            return err("net.split_write_probability", "must be in 0..=1");
        }
        if n.latency_ms[0] > n.latency_ms[1] || n.latency_ms[1] == 0 {
            return err("net.latency_ms", "must be [min, max] with min <= max and max > 0");
        }
        Ok(())
    }

    /// Every fault kind the schedule names or the swarm may draw.
    fn fault_kinds(&self) -> Vec<FaultKind> {
        let mut kinds: Vec<FaultKind> = self.faults.schedule.iter().map(|f| f.fault).collect();
        if let Some(s) = &self.faults.swarm {
            kinds.extend(s.kinds.iter().copied());
        }
        kinds
    }

    fn validate_faults(&self) -> Result<(), ScenarioError> {
        for (i, f) in self.faults.schedule.iter().enumerate() {
            let field = |name: &str| format!("faults.schedule[{i}].{name}");
            let Some(target) = Target::parse(&f.target) else {
                return err(
                    &field("target"),
                    format!(
                        "{:?} is not node:N, client:N, sentinel:N, any_node, any_client, any_sentinel or empty",
                        f.target
                    ),
                );
            };
            match target {
                Target::Node(n) if n >= self.topology.nodes => {
                    return err(
                        &field("target"),
                        format!("node {n} does not exist (topology.nodes = {})", self.topology.nodes),
                    );
                }
                Target::Client(c) if c >= self.workload.clients => {
                    return err(
                        &field("target"),
                        format!("client {c} does not exist (workload.clients = {})", self.workload.clients),
                    );
                }
                Target::Sentinel(_) | Target::AnySentinel if self.sentinel.is_none() => {
                    return err(&field("target"), "sentinel targets need a [sentinel] section");
                }
                Target::Sentinel(n) if self.sentinel.as_ref().is_some_and(|g| n >= g.count) => {
                    return err(&field("target"), format!("sentinel {n} does not exist (sentinel.count)"));
                }
                Target::Sentinel(_) | Target::AnySentinel if !f.fault.acts_on_sentinel() => {
                    return err(
                        &field("target"),
                        format!("{} does not act on a sentinel (kill, pause and partitions do)", f.fault.name()),
                    );
                }
                Target::Client(_) | Target::AnyClient if f.fault.needs_node() => {
                    return err(&field("target"), format!("{} needs a node target", f.fault.name()));
                }
                Target::None
                    if f.fault.needs_node()
                        || matches!(
                            f.fault,
                            FaultKind::Partition | FaultKind::PartitionIn | FaultKind::PartitionOut
                        ) =>
                {
                    return err(&field("target"), format!("{} needs a target", f.fault.name()));
                }
                _ => {}
            }
            if f.fault.needs_replication() && self.replication.is_none() {
                return err(&field("fault"), format!("{} needs a [replication] section", f.fault.name()));
            }
            if f.fault.needs_cluster() && self.cluster.is_none() {
                return err(&field("fault"), format!("{} needs a [cluster] section", f.fault.name()));
            }
            if f.at_ms >= self.duration_ms {
                return err(&field("at_ms"), format!("must be before duration_ms ({})", self.duration_ms));
            }
            let needs_duration = !f.fault.is_instant();
            if needs_duration && f.duration_ms == 0 {
                return err(&field("duration_ms"), format!("{} needs a duration", f.fault.name()));
            }
            match f.fault {
                FaultKind::ClockJump | FaultKind::ClockOffset if f.delta_ms == 0 => {
                    return err(&field("delta_ms"), format!("{} needs a non-zero delta_ms", f.fault.name()));
                }
                FaultKind::ClockDrift if f.ppm == 0 || f.ppm.abs() >= 1_000_000 => {
                    return err(&field("ppm"), "must be non-zero and within ±999999");
                }
                FaultKind::Latency => match f.latency_ms {
                    Some([lo, hi]) if lo <= hi && hi > 0 => {}
                    _ => {
                        return err(
                            &field("latency_ms"),
                            "latency needs latency_ms = [min, max] with min <= max, max > 0",
                        )
                    }
                },
                _ => {}
            }
            self.validate_group(f, &field("group"))?;
        }
        if let Some(s) = &self.faults.swarm {
            if s.kinds.is_empty() {
                return err("faults.swarm.kinds", "name at least one fault kind");
            }
            if let Some(k) = s.kinds.iter().find(|k| k.needs_replication() && self.replication.is_none()) {
                return err("faults.swarm.kinds", format!("{} needs a [replication] section", k.name()));
            }
            if let Some(k) = s.kinds.iter().find(|k| k.needs_cluster() && self.cluster.is_none()) {
                return err("faults.swarm.kinds", format!("{} needs a [cluster] section", k.name()));
            }
            if s.sentinels && self.sentinel.is_none() {
                return err("faults.swarm.sentinels", "needs a [sentinel] section");
            }
            if s.sentinels && !s.kinds.iter().any(|k| k.acts_on_sentinel()) {
                return err(
                    "faults.swarm.sentinels",
                    "no kind of faults.swarm.kinds acts on a sentinel (kill, pause and partitions do)",
                );
            }
            if s.max_per_min == 0 {
                return err("faults.swarm.max_per_min", "must be > 0");
            }
            if s.duration_ms[0] == 0 || s.duration_ms[0] > s.duration_ms[1] {
                return err("faults.swarm.duration_ms", "must be [min, max] with 0 < min <= max");
            }
            if s.clock_step_ms[0] == 0 || s.clock_step_ms[0] > s.clock_step_ms[1] {
                return err("faults.swarm.clock_step_ms", "must be [min, max] with 0 < min <= max");
            }
            if s.drift_ppm[0] == 0 || s.drift_ppm[0] > s.drift_ppm[1] || s.drift_ppm[1] >= 1_000_000 {
                return err("faults.swarm.drift_ppm", "must be [min, max] with 0 < min <= max < 1000000");
            }
        }
        Ok(())
    }

    fn validate_group(&self, f: &ScheduledFault, field: &str) -> Result<(), ScenarioError> {
        if f.group.is_empty() {
            return Ok(());
        }
        if f.fault != FaultKind::Split {
            return err(field, format!("only split takes a group, not {}", f.fault.name()));
        }
        for m in &f.group {
            match Target::parse(m) {
                Some(Target::Node(n)) if n < self.topology.nodes => {}
                Some(Target::Client(c)) if c < self.workload.clients => {}
                _ => return err(field, format!("{m:?} is not an existing node:N or client:N")),
            }
        }
        let machines = (self.topology.nodes + self.workload.clients) as usize;
        if f.group.len() >= machines {
            return err(field, "one side of a split must leave someone on the other");
        }
        Ok(())
    }

    /// After the heal, how long before every operation must succeed: an old connection's
    /// operation times out, then a connect to a node that was down may time out once more.
    pub fn liveness_grace_ms(&self) -> u64 {
        self.liveness_grace_ms.unwrap_or(self.net.connect_timeout_ms + 2 * self.net.op_timeout_ms)
    }

    /// Every checker the scenario names, each once.
    pub fn checker_set(&self) -> std::collections::BTreeSet<CheckerKind> {
        self.checkers.iter().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
name = "t"
duration_ms = 1000
settle_ms = 4000
checkers = ["register"]
[topology]
nodes = 1
[workload]
clients = 2
keys = 2
think_ms = [1, 10]
ops = { get = 1, set = 1 }
"#;

    /// Every scenario file of the repository (not the shrinker's output) loads and says what it
    /// tests.
    #[test]
    #[allow(clippy::disallowed_methods)] // test code reads the repository's files
    fn repository_scenarios_are_valid() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir).expect("scenarios/") {
            let path = entry.expect("dir entry").path();
            if path.extension().is_some_and(|e| e == "toml") {
                let text = std::fs::read_to_string(&path).expect("scenario file");
                let s = Scenario::from_toml(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert!(!s.description.is_empty(), "{} says what it tests", s.name);
                assert_eq!(Some(s.name.as_str()), path.file_stem().and_then(|n| n.to_str()), "named as its file");
                names.push(s.name);
            }
        }
        assert!(names.len() >= 26, "{names:?}");
    }

    #[test]
    fn minimal_scenario_loads_with_defaults() {
        let s = Scenario::from_toml(MINIMAL).unwrap();
        assert_eq!(s.net, NetOptions::default());
        assert_eq!(s.topology.service, Service::Redsim);
    }

    #[test]
    fn a_zipf_key_distribution_loads_and_a_bad_exponent_is_named() {
        let with =
            |d: &str| Scenario::from_toml(&MINIMAL.replace("keys = 2", &format!("keys = 2\ndistribution = {d}")));
        assert_eq!(with("{ zipf = 1.2 }").unwrap().workload.distribution, KeyDistribution::Zipf(1.2));
        assert_eq!(with("\"uniform\"").unwrap().workload.distribution, KeyDistribution::Uniform);
        let e = with("{ zipf = 0.0 }").unwrap_err();
        assert!(e.0.contains("workload.distribution"), "{e}");
    }

    #[test]
    fn unknown_field_is_named() {
        let e = Scenario::from_toml(&MINIMAL.replace("keys = 2", "keys = 2\nkeyz = 3")).unwrap_err();
        assert!(e.0.contains("keyz"), "{e}");
    }

    #[test]
    fn bad_values_name_their_field() {
        let cases = [
            ("clients = 2", "clients = 0", "workload.clients"),
            ("nodes = 1", "nodes = 9", "topology.nodes"),
            ("settle_ms = 4000", "settle_ms = 10", "settle_ms"),
            ("nodes = 1", "nodes = 1\nservice = \"toylog\"", "workload.ops.get"),
            ("checkers = [\"register\"]", "checkers = [\"durability\"]", "checkers"),
            // An AOF checker needs the AOF on, with its policy.
            ("checkers = [\"register\"]", "checkers = [\"aof_always\"]", "checkers"),
        ];
        for (from, to, field) in cases {
            let e = Scenario::from_toml(&MINIMAL.replace(from, to)).unwrap_err();
            assert!(e.0.starts_with(field), "{to}: {e}");
        }
    }

    #[test]
    fn role_config_overrides_config_for_its_role() {
        let text = format!(
            "{}[config]\nhz = \"10\"\n[role_config.replica]\nhz = \"20\"\nreplica-priority = \"0\"\n\
             [replication]\n",
            MINIMAL.replace("nodes = 1", "nodes = 2")
        );
        let s = Scenario::from_toml(&text).unwrap();
        assert_eq!(s.node_config(0).get("hz").map(String::as_str), Some("10"));
        assert_eq!(s.node_config(1).get("hz").map(String::as_str), Some("20"));
        assert_eq!(s.node_config(1).get("replica-priority").map(String::as_str), Some("0"));
        let bad = format!("{MINIMAL}[role_config.master]\nhz = \"banana\"\n");
        assert!(Scenario::from_toml(&bad).unwrap_err().0.starts_with("role_config.master.hz"));
        let lone = format!("{MINIMAL}[role_config.replica]\nhz = \"20\"\n");
        assert!(Scenario::from_toml(&lone).unwrap_err().0.starts_with("role_config.replica"));
    }

    #[test]
    fn bad_config_directive_is_named() {
        let text = format!("{MINIMAL}[config]\nhz = \"banana\"\n");
        let e = Scenario::from_toml(&text).unwrap_err();
        assert!(e.0.starts_with("config.hz"), "{e}");
    }

    #[test]
    fn scheduled_fault_target_is_checked() {
        let text = format!(
            "{}\n[[faults.schedule]]\nat_ms = 10\nfault = \"kill\"\ntarget = \"node:3\"\nduration_ms = 5\n",
            MINIMAL.replace("[topology]", "[faults]\n[topology]")
        );
        let e = Scenario::from_toml(&text).unwrap_err();
        assert!(e.0.starts_with("faults.schedule[0].target"), "{e}");
    }

    #[test]
    fn sentinel_targets_need_a_sentinel_group_and_a_fault_that_acts_on_one() {
        let base = include_str!("../../scenarios/sentinel_failover.toml");
        let with = |fault: &str, target: &str| {
            format!(
                "{base}
[[faults.schedule]]
at_ms = 10
fault = \"{fault}\"
target = \"{target}\"
duration_ms = 5
"
            )
        };
        for (fault, target) in [("kill", "sentinel:2"), ("pause", "any_sentinel"), ("partition_out", "sentinel:0")] {
            Scenario::from_toml(&with(fault, target)).unwrap_or_else(|e| panic!("{fault} {target}: {e}"));
        }
        for (fault, target, says) in [
            ("kill", "sentinel:3", "does not exist"),
            ("fsync_eio", "sentinel:0", "does not act on a sentinel"),
            ("clock_drift", "any_sentinel", "does not act on a sentinel"),
            ("kill", "sentinel:x", "is not node:N"),
        ] {
            let e = Scenario::from_toml(&with(fault, target)).unwrap_err();
            assert!(e.0.starts_with("faults.schedule[") && e.0.contains(says), "{fault} {target}: {e}");
        }
        let standalone = format!(
            "{}
[[faults.schedule]]
at_ms = 10
fault = \"kill\"
target = \"sentinel:0\"
duration_ms = 5
",
            MINIMAL.replace("[topology]", "[faults]\n[topology]")
        );
        assert!(Scenario::from_toml(&standalone).unwrap_err().0.contains("need a [sentinel] section"));
        assert_eq!(Target::parse("sentinel:4"), Some(Target::Sentinel(4)));
        assert_eq!(Target::Sentinel(4).to_string(), "sentinel:4");
        assert_eq!(Target::parse(&Target::AnySentinel.to_string()), Some(Target::AnySentinel));
    }

    #[test]
    fn min_replicas_needs_a_master_with_replicas_min_replicas_to_write_and_no_clock_or_disk_faults() {
        let base = include_str!("../../scenarios/repl_min_replicas.toml");
        Scenario::from_toml(base).unwrap();
        let clock = "[[faults.schedule]]\nat_ms = 100\nfault = \"clock_jump\"\ntarget = \"node:0\"\ndelta_ms = 5000\n";
        let cases = [
            (
                base.replace("min-replicas-to-write = \"1\"", "min-replicas-to-write = \"0\""),
                "min-replicas-to-write >= 1",
            ),
            (base.replace("min-replicas-max-lag = \"3\"", "min-replicas-max-lag = \"0\""), "min-replicas-max-lag >= 1"),
            (base.replace("[replication.wait]", "[replication]\nchain = true\n[replication.wait]"), "not a chain"),
            (base.replace("[faults.swarm]", &format!("{clock}[faults.swarm]")), "clock_jump"),
            (base.replace("kinds = [\"latency\"]", "kinds = [\"latency\", \"disk_slow\"]"), "disk_slow"),
        ];
        for (text, says) in cases {
            let e = Scenario::from_toml(&text).unwrap_err();
            assert!(e.0.starts_with("checkers: min_replicas") && e.0.contains(says), "{says}: {e}");
        }
        // The master's setting may come from [config] too (then every node has it).
        let s = Scenario::from_toml(&base.replace("[role_config.master]\n", "")).unwrap();
        assert_eq!((s.min_replicas(0), s.min_replicas(1)), ((1, 3), (1, 3)));
        assert_eq!(Scenario::from_toml(base).unwrap().min_replicas(1), (0, 10));
    }

    #[test]
    fn split_group_names_existing_machines_and_leaves_someone_out() {
        let split = |group: &str| {
            format!(
                "{}\n[[faults.schedule]]\nat_ms = 10\nfault = \"split\"\nduration_ms = 5\ngroup = {group}\n",
                MINIMAL.replace("[topology]", "[faults]\n[topology]")
            )
        };
        assert!(Scenario::from_toml(&split(r#"["node:0", "client:1"]"#)).is_ok());
        for bad in [r#"["node:1"]"#, r#"["client:2"]"#, r#"["node:0", "client:0", "client:1"]"#] {
            let e = Scenario::from_toml(&split(bad)).unwrap_err();
            assert!(e.0.starts_with("faults.schedule[0].group"), "{bad}: {e}");
        }
    }
}

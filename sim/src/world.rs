//! The world: N server nodes (the real node code, each a madsim node with its own IP, clock and
//! disk), K workload clients, and the nemesis that applies the fault plan. It runs the safety
//! phase (workload under faults), heals everything, runs the liveness phase, and leaves behind
//! the history and the trace.
//!
//! The world is the harness, outside the env door: it drives madsim directly.

#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use madsim::net::NetSim;
use madsim::runtime::Handle;
use madsim::task::NodeId;
use redsim::env::real::TokioClock;
use redsim::env::sim_disk::{DiskFaults, PowerLoss, SimDisk};
use redsim::env::skew::SkewedClock;
use redsim::server::driver::{self, RunOpts};
use redsim::server::Config;

use crate::clusterworld::ClusterAdmin;
use crate::env::{NetConfig, SimEnv, SimEnvParts, SimNet};
use crate::faults::{rng_for, Machine, Plan, PlannedFault};
use crate::history::{ClockChange, History, LinkCut, Promotion, Stop};
use crate::replworld::{on_admin, Admin, ReplTopology};
use crate::scenario::{FaultKind, OpKind, PowerMode, Scenario, Service, Target};
use crate::toylog::{self, Bug};
use crate::trace::Trace;
use crate::workload::{run_client, ClientPlan, ClusterRoute, Recorder};

pub const SERVER_PORT: u16 = 6379;

pub fn node_ip(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, n as u8 + 1))
}

pub fn client_ip(c: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 1, c as u8 + 1))
}

/// The operator's machine in replication worlds (never partitioned).
pub fn admin_ip() -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 2, 1))
}

fn power_loss(mode: PowerMode) -> PowerLoss {
    match mode {
        PowerMode::LoseAll => PowerLoss::LoseAll,
        PowerMode::Prefix => PowerLoss::Prefix { torn_garbage: false },
        PowerMode::PrefixTorn => PowerLoss::Prefix { torn_garbage: true },
        PowerMode::AnySector => PowerLoss::AnySector { torn_garbage: false },
        PowerMode::AnySectorTorn => PowerLoss::AnySector { torn_garbage: true },
    }
}

/// What the run was asked for beyond the scenario.
#[derive(Clone, Debug, Default)]
pub struct WorldOptions {
    pub bug: Option<Bug>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NodeState {
    Up,
    Paused,
    Down,
}

/// A node's wall-clock error as the nemesis set it, mirrored for the checkers.
#[derive(Clone, Copy, Debug, Default)]
struct ClockModel {
    since_us: u64,
    error_us: i64,
    drift_ppm: i64,
}

impl ClockModel {
    fn error_at(&self, t_us: u64) -> i64 {
        let elapsed = t_us.saturating_sub(self.since_us) as i128;
        (self.error_us as i128 + elapsed * self.drift_ppm as i128 / 1_000_000) as i64
    }
}

struct ServerNode {
    id: NodeId,
    clock: SkewedClock<TokioClock>,
    disk: SimDisk,
    state: NodeState,
    clock_model: ClockModel,
    /// Since when (µs) and whether paused, while the node is not up: for `History::reach`.
    stopped_since: Option<(u64, bool)>,
}

/// A sentinel's machine: the nemesis kills, pauses and cuts it off like a node.
struct SentinelMachine {
    id: NodeId,
    disk: SimDisk,
    state: NodeState,
}

/// The world during a run; the nemesis owns it.
struct World {
    scenario: Scenario,
    handle: Handle,
    net: Arc<NetSim>,
    rec: Recorder,
    nodes: Vec<ServerNode>,
    sentinels: Vec<SentinelMachine>,
    machines: BTreeMap<Machine, NodeId>,
    /// Clogged links with how many active faults want each (overlapping faults heal cleanly)
    /// and since when (µs).
    clogs: BTreeMap<(Machine, Machine), (u32, u64)>,
    /// Active latency faults by plan index.
    latencies: BTreeMap<usize, [u64; 2]>,
    /// Per planned fault: whether its start took effect (its end must then undo it).
    applied: Vec<bool>,
    /// Replication worlds: the operator and its machine.
    admin: Option<(Admin, NodeId)>,
    /// Replication link cuts in effect, by plan index: the links cut and when.
    cuts: BTreeMap<usize, (Vec<(Machine, Machine)>, u64)>,
    /// Cluster worlds: the operator and its machine.
    cluster: Option<(ClusterAdmin, NodeId)>,
}

/// Runs the whole world; returns when the liveness phase is over and every client stopped.
pub async fn run_world(s: Scenario, seed: u64, plan: Plan, opts: WorldOptions, rec: Recorder) {
    let handle = Handle::current();
    let net = NetSim::current();
    let [lo, hi] = s.net.latency_ms;
    net.update_config(|c| c.send_latency = latency_range(lo, hi));
    note_latency(&rec, hi);
    let net_config = NetConfig {
        connect_timeout_ms: s.net.connect_timeout_ms,
        split_write_probability: s.net.split_write_probability,
    };
    let world_clock = rec.clock.clone();
    let mut w = World {
        scenario: s.clone(),
        handle: handle.clone(),
        net,
        rec: rec.clone(),
        nodes: Vec::new(),
        sentinels: Vec::new(),
        machines: BTreeMap::new(),
        clogs: BTreeMap::new(),
        latencies: BTreeMap::new(),
        applied: vec![false; plan.faults.len()],
        admin: None,
        cuts: BTreeMap::new(),
        cluster: None,
    };
    #[cfg(madsim)]
    redsim::replication::plant(opts.bug.and_then(Bug::repl));
    #[cfg(madsim)]
    redsim::cluster::plant(opts.bug.and_then(Bug::cluster));
    crate::sentinelworld::reset_journal();
    if let Some(r) = &s.replication {
        let mut h = rec.history.lock().unwrap_or_else(|e| e.into_inner());
        h.repl.nodes = s.topology.nodes;
        h.repl.expect_resync = r.expect_resync;
        h.repl.wait_replicas = r.wait.map(|w| w.replicas);
        h.repl.max_lost_acked_writes = r.max_lost_acked_writes;
        // Redis's default repl-timeout is 60 s.
        let timeout_s = s.config.get("repl-timeout").and_then(|t| t.parse::<u64>().ok()).unwrap_or(60);
        h.repl.repl_timeout_ms = timeout_s * 1000;
        h.repl.min_replicas = (0..s.topology.nodes).map(|n| s.min_replicas(n)).collect();
    }
    let topo = s.replication.as_ref().map(|r| ReplTopology::new(s.topology.nodes, r.chain));
    let addrs: Vec<SocketAddr> = (0..s.topology.nodes).map(|n| SocketAddr::new(node_ip(n), SERVER_PORT)).collect();
    for n in 0..s.topology.nodes {
        let clock = SkewedClock::new(world_clock.clone());
        let disk = SimDisk::new(redsim::env::Rng::next_u64(&mut rng_for(seed, &format!("disk/n{n}"))));
        let exited = Arc::new(AtomicU64::new(0));
        let id = start_node(&handle, &s, seed, n, &clock, &disk, net_config, &rec, &world_clock, opts.bug, &exited);
        // Only redsim exits by itself (the toy log has no fatal path, and its traces stay as
        // they were).
        if s.topology.service == Service::Redsim {
            handle.create_node().name(format!("supervisor-n{n}")).build().spawn(supervise(
                handle.clone(),
                id,
                n,
                disk.clone(),
                exited,
                rec.clone(),
                stop_us_of(&s),
            ));
        }
        w.machines.insert(Machine::Node(n), id);
        w.nodes.push(ServerNode {
            id,
            clock,
            disk,
            state: NodeState::Up,
            clock_model: ClockModel::default(),
            stopped_since: None,
        });
    }
    // The operator's machine: a replication world's, or a cluster world's (never both).
    let admin_machine = |topo: ReplTopology| {
        let node = handle.create_node().name("admin").ip(admin_ip()).build();
        let mut rng = rng_for(seed, "admin");
        let net = SimNet::new(net_config, redsim::env::SeededRng::from_seed(redsim::env::Rng::next_u64(&mut rng)));
        (Admin { net, addrs: addrs.clone(), topo, rec: rec.clone() }, node)
    };
    if let Some(topo) = &topo {
        let (admin, node) = admin_machine(topo.clone());
        w.admin = Some((admin, node.id()));
    }
    if let Some(opts) = &s.cluster {
        let (admin, node) = admin_machine(ReplTopology::new(s.topology.nodes, false));
        let ca = ClusterAdmin::new(admin, opts.clone(), seed);
        let creator = ca.clone();
        node.spawn(async move { creator.create().await });
        w.cluster = Some((ca, node.id()));
    }
    let stop_us = stop_us_of(&s);
    if let (Some(g), Some((admin, node))) = (&s.sentinel, w.admin.clone()) {
        for i in 0..g.count {
            let (id, disk) = crate::sentinelworld::start_sentinel(
                &handle,
                g,
                seed,
                i,
                net_config,
                rec.trace.clone(),
                &world_clock,
                opts.bug,
            );
            w.machines.insert(Machine::Sentinel(i), id);
            w.sentinels.push(SentinelMachine { id, disk, state: NodeState::Up });
        }
        let (count, nodes) = (g.count, s.topology.nodes);
        handle
            .get_node(node)
            .expect("the admin machine exists")
            .spawn(crate::sentinelworld::observe(admin, count, nodes, stop_us));
    }
    let mix = cumulative(&plan.mix);
    let mut clients = Vec::new();
    let key_weights = s.workload.distribution.cumulative(s.workload.keys).map(Arc::new);
    for c in 0..s.workload.clients {
        let node = handle.create_node().name(format!("c{c}")).ip(client_ip(c)).build();
        w.machines.insert(Machine::Client(c), node.id());
        // Replication worlds: every client writes to the master and follows it.
        let target = if topo.is_some() { 0 } else { c % s.topology.nodes };
        let plan = ClientPlan {
            client: c,
            node: target,
            addr: SocketAddr::new(node_ip(target), SERVER_PORT),
            mix: mix.clone(),
            keys: s.workload.keys,
            key_weights: key_weights.clone(),
            think_ms: s.workload.think_ms,
            ttl_ms: s.workload.ttl_ms,
            op_timeout_ms: s.net.op_timeout_ms,
            stop_us,
            service: s.topology.service,
            follow: topo.as_ref().map(|t| (t.master.clone(), addrs.clone())),
            wait: s.replication.as_ref().and_then(|r| r.wait),
            cluster: w.cluster.as_ref().map(|(ca, _)| ClusterRoute {
                addrs: addrs.clone(),
                ready: ca.ready.clone(),
                misroute_pct: ca.opts.misroute_pct,
            }),
        };
        let mut rng = rng_for(seed, &format!("client/{c}"));
        let net = SimNet::new(net_config, redsim::env::SeededRng::from_seed(redsim::env::Rng::next_u64(&mut rng)));
        clients.push(node.spawn(run_client(plan, net, rng, rec.clone())));
    }
    w.nemesis(&plan).await;
    w.heal_all();
    let healed_us = rec.now_us();
    rec.history.lock().unwrap_or_else(|e| e.into_inner()).healed_us = healed_us;
    if let Some((ca, node)) = w.cluster.clone() {
        on_admin(&handle, node, async move { ca.fix_open_slots().await }).await;
    }
    for c in clients {
        let _ = c.await;
    }
    if let Some((ca, node)) = w.cluster.clone() {
        let probes = on_admin(&handle, node, async move { ca.probe_all().await }).await;
        let mut h = rec.history.lock().unwrap_or_else(|e| e.into_inner());
        h.cluster.probes = probes;
        crate::clusterworld::take_journal(&rec.trace, &mut h);
    }
    if let Some((admin, node)) = w.admin.clone() {
        let master = admin.topo.master.load(Ordering::SeqCst);
        let probes = on_admin(&handle, node, async move { admin.probe_all().await }).await;
        let mut h = rec.history.lock().unwrap_or_else(|e| e.into_inner());
        h.repl.final_master = master;
        h.repl.probes = probes;
    }
    crate::sentinelworld::take_journal(&rec.trace, &mut rec.history.lock().unwrap_or_else(|e| e.into_inner()));
    let end_us = rec.now_us();
    rec.event("world: every client stopped");
    let mut h = rec.history.lock().unwrap_or_else(|e| e.into_inner());
    h.end_us = end_us;
}

fn stop_us_of(s: &Scenario) -> u64 {
    (s.duration_ms + s.settle_ms) * 1000
}

/// How long a supervisor waits before restarting a node that exited (systemd's RestartSec).
const SUPERVISOR_RESTART_MS: u64 = 500;

/// The node's supervisor (systemd, Kubernetes): a node that exits by itself (e.g. `appendfsync
/// always` after an fsync error) is restarted after a short delay, from its disk. The exit is
/// recorded as a kill: the process's memory is gone.
async fn supervise(
    handle: Handle,
    id: NodeId,
    n: u32,
    disk: SimDisk,
    exited: Arc<AtomicU64>,
    rec: Recorder,
    stop_us: u64,
) {
    let mut seen = 0;
    while rec.now_us() < stop_us {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let exits = exited.load(Ordering::SeqCst);
        if exits == seen {
            continue;
        }
        seen = exits;
        let now = rec.now_us();
        rec.history.lock().unwrap_or_else(|e| e.into_inner()).kills_us[n as usize].push(now);
        // The exited process's tasks (listener, clients) die with it, as with a real exit.
        handle.kill(id);
        disk.process_crash();
        tokio::time::sleep(Duration::from_millis(SUPERVISOR_RESTART_MS)).await;
        rec.event(&format!("supervisor: n{n} exited; restarting it"));
        handle.restart(id);
        let stop = Stop { start_us: now, end_us: rec.now_us(), paused: false };
        rec.history.lock().unwrap_or_else(|e| e.into_inner()).reach.stops[n as usize].push(stop);
    }
}

fn latency_range(lo_ms: u64, hi_ms: u64) -> std::ops::Range<Duration> {
    Duration::from_millis(lo_ms)..Duration::from_millis(hi_ms) + Duration::from_micros(1)
}

/// Raises the history's bound on message latency to what `latency_range(_, hi_ms)` allows.
fn note_latency(rec: &Recorder, hi_ms: u64) {
    let mut h = rec.history.lock().unwrap_or_else(|e| e.into_inner());
    h.reach.max_latency_us = h.reach.max_latency_us.max(hi_ms * 1000 + 1);
}

/// The mix as cumulative bounds, for drawing.
fn cumulative(mix: &[(OpKind, u32)]) -> Vec<(OpKind, u64)> {
    let mut acc = 0;
    mix.iter()
        .map(|&(k, w)| {
            acc += u64::from(w);
            (k, acc)
        })
        .collect()
}

/// Each redsim node's redis.conf, on its own disk: written from the scenario's directives at
/// the first start, read at every start, rewritten by CONFIG REWRITE (as a sentinel does
/// after a promotion or a repointing, so a restarted node keeps its new role, as in Redis).
pub const NODE_CONFIG_FILE: &str = "redis.conf";

/// The node's config: its redis.conf (written first from the simulator's own directives and
/// the scenario's when the disk has none yet).
async fn node_config(env: &SimEnv, n: u32, directives: &BTreeMap<String, String>) -> std::io::Result<Config> {
    use redsim::env::Env;
    let text = match redsim::env::read_file(env.disk(), NODE_CONFIG_FILE).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let ip = node_ip(n).to_string();
            let fixed = [("bind", ip.as_str()), ("port", "6379"), ("protected-mode", "no")];
            let mut text = String::from("# written by the simulator from the scenario\n");
            for (k, v) in fixed.into_iter().chain(directives.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
                let v = if v.is_empty() { "\"\"" } else { v };
                text.push_str(&format!("{k} {v}\n"));
            }
            redsim::env::replace_file(env.disk(), NODE_CONFIG_FILE, "sim", text.as_bytes()).await?;
            text
        }
        Err(e) => return Err(e),
    };
    let mut config = Config::default();
    config.load_text(&text).map_err(|e| {
        std::io::Error::other(format!("*** FATAL CONFIG FILE ERROR *** Reading the configuration file, at {e}"))
    })?;
    Ok(config)
}

#[allow(clippy::too_many_arguments)]
fn start_node(
    handle: &Handle,
    s: &Scenario,
    seed: u64,
    n: u32,
    clock: &SkewedClock<TokioClock>,
    disk: &SimDisk,
    net: NetConfig,
    rec: &Recorder,
    world_clock: &TokioClock,
    bug: Option<Bug>,
    exited: &Arc<AtomicU64>,
) -> NodeId {
    let exited = exited.clone();
    let incarnation = Arc::new(AtomicU64::new(0));
    let (clock, disk, trace, world_clock) = (clock.clone(), disk.clone(), rec.trace.clone(), world_clock.clone());
    let (service, mut directives) = (s.topology.service, s.node_config(n));
    if let Some(r) = &s.replication {
        if n > 0 {
            let up = if r.chain { n - 1 } else { 0 };
            directives.insert("replicaof".into(), format!("{} {SERVER_PORT}", node_ip(up)));
        }
    }
    let addr = SocketAddr::new(node_ip(n), SERVER_PORT);
    handle
        .create_node()
        .name(format!("n{n}"))
        .ip(node_ip(n))
        .init(move || {
            let inc = incarnation.fetch_add(1, Ordering::Relaxed);
            let exited = exited.clone();
            let env = SimEnv::new(SimEnvParts {
                clock: clock.clone(),
                disk: disk.clone(),
                net,
                run_seed: seed,
                name: format!("n{n}"),
                incarnation: inc,
                pid: 1000 + n * 100 + inc as u32,
                trace: trace.clone(),
                world_clock: world_clock.clone(),
            });
            let directives = directives.clone();
            async move {
                env.trace().event(env.world_us(), &format!("n{n} start (incarnation {inc})"));
                let result = match service {
                    Service::Redsim => match node_config(&env, n, &directives).await {
                        Ok(config) => {
                            driver::run(
                                env.clone(),
                                config,
                                RunOpts {
                                    executable: "redsim-sim".into(),
                                    config_file: NODE_CONFIG_FILE.into(),
                                    aof_bug: bug.and_then(Bug::aof),
                                },
                            )
                            .await
                        }
                        Err(e) => Err(e),
                    },
                    Service::Toylog => toylog::serve(env.clone(), addr, bug).await,
                };
                env.trace().event(env.world_us(), &format!("n{n} exit: {result:?}"));
                if result.is_err() {
                    exited.fetch_add(1, Ordering::SeqCst);
                }
            }
        })
        .build()
        .id()
}

impl World {
    fn now_us(&self) -> u64 {
        self.rec.now_us()
    }

    fn event(&self, msg: &str) {
        self.rec.event(&format!("nemesis: {msg}"));
    }

    /// Applies the plan in time order: each fault starts at `at_ms` and ends after its duration.
    async fn nemesis(&mut self, plan: &Plan) {
        // (time, ends before starts, plan index): a fault ending when another starts frees
        // its links first.
        let mut timeline: Vec<(u64, u8, usize)> = Vec::new();
        for (i, f) in plan.faults.iter().enumerate() {
            timeline.push((f.at_ms, 1, i));
            if f.duration_ms > 0 {
                timeline.push((f.at_ms + f.duration_ms, 0, i));
            }
        }
        timeline.sort();
        for (at_ms, is_start, i) in timeline {
            self.sleep_until_ms(at_ms).await;
            if is_start == 1 && plan.faults[i].kind == FaultKind::Reshard {
                self.reshard(&plan.faults[i]);
            } else if is_start == 1
                && matches!(plan.faults[i].kind, FaultKind::Failover | FaultKind::FailoverCommand | FaultKind::Promote)
            {
                self.promote(&plan.faults[i]).await;
            } else if is_start == 1 {
                self.start(i, &plan.faults[i]);
            } else {
                self.end(i, &plan.faults[i]);
            }
        }
        self.sleep_until_ms(self.scenario.duration_ms).await;
    }

    async fn sleep_until_ms(&self, at_ms: u64) {
        let now_us = self.now_us();
        let at_us = at_ms * 1000;
        if at_us > now_us {
            tokio::time::sleep(Duration::from_micros(at_us - now_us)).await;
        }
    }

    fn start(&mut self, i: usize, f: &PlannedFault) {
        let applied = match f.kind {
            FaultKind::Partition | FaultKind::PartitionIn | FaultKind::PartitionOut | FaultKind::Split => {
                for link in self.links(f) {
                    self.clog(link);
                }
                true
            }
            FaultKind::Kill | FaultKind::PowerFail => self.kill(f),
            FaultKind::Pause => {
                let (id, state) = self.process_of(f);
                if *state == NodeState::Up {
                    *state = NodeState::Paused;
                    self.handle.pause(id);
                    if let Target::Node(n) = f.target {
                        self.stop_began(n as usize, true);
                    }
                    true
                } else {
                    false
                }
            }
            FaultKind::ClockJump | FaultKind::ClockOffset => {
                self.clock_step(node_of(f), f.delta_ms);
                true
            }
            FaultKind::ClockDrift => {
                self.clock_drift(node_of(f), f.ppm);
                true
            }
            FaultKind::Latency => {
                self.latencies.insert(i, f.latency_ms);
                self.apply_latency();
                true
            }
            FaultKind::FsyncEio => {
                let disk = &self.nodes[node_of(f)].disk;
                disk.set_faults(DiskFaults { fsync_eio_probability: 1.0, ..disk.faults() });
                true
            }
            FaultKind::DiskSlow => {
                let disk = &self.nodes[node_of(f)].disk;
                disk.set_faults(DiskFaults { fsync_latency_min_ms: 500, fsync_latency_max_ms: 3000, ..disk.faults() });
                true
            }
            FaultKind::ReplLinkCut => self.cut_repl_link(i, f),
            // Promotions run in `promote` (awaiting the operator) and reshards in `reshard`.
            FaultKind::Failover | FaultKind::FailoverCommand | FaultKind::Promote | FaultKind::Reshard => false,
        };
        self.applied[i] = applied;
        let what = if applied { "start" } else { "skip (target not up)" };
        self.event(&format!("{what} {}", f.describe()));
    }

    fn end(&mut self, i: usize, f: &PlannedFault) {
        if !self.applied[i] {
            return;
        }
        self.applied[i] = false;
        match f.kind {
            FaultKind::Partition | FaultKind::PartitionIn | FaultKind::PartitionOut | FaultKind::Split => {
                for link in self.links(f) {
                    self.unclog(link);
                }
            }
            FaultKind::Kill | FaultKind::PowerFail => match f.target {
                Target::Sentinel(i) => self.restart_sentinel(i as usize),
                _ => self.restart(node_of(f)),
            },
            FaultKind::Pause => {
                let (id, state) = self.process_of(f);
                if *state == NodeState::Paused {
                    *state = NodeState::Up;
                    self.handle.resume(id);
                    if let Target::Node(n) = f.target {
                        self.stop_ended(n as usize);
                    }
                }
            }
            FaultKind::ClockJump | FaultKind::ClockOffset => self.clock_step(node_of(f), -f.delta_ms),
            FaultKind::ClockDrift => self.clock_drift(node_of(f), 0),
            FaultKind::Latency => {
                self.latencies.remove(&i);
                self.apply_latency();
            }
            FaultKind::FsyncEio => {
                let disk = &self.nodes[node_of(f)].disk;
                disk.set_faults(DiskFaults { fsync_eio_probability: 0.0, ..disk.faults() });
            }
            FaultKind::DiskSlow => {
                let disk = &self.nodes[node_of(f)].disk;
                disk.set_faults(DiskFaults { fsync_latency_min_ms: 0, fsync_latency_max_ms: 0, ..disk.faults() });
            }
            FaultKind::ReplLinkCut => self.heal_repl_link(i, node_of(f) as u32),
            FaultKind::Failover | FaultKind::FailoverCommand | FaultKind::Promote | FaultKind::Reshard => {}
        }
        self.event(&format!("end {}", f.describe()));
    }

    /// The directed links a network fault cuts.
    fn links(&self, f: &PlannedFault) -> Vec<(Machine, Machine)> {
        let all: Vec<Machine> = self.machines.keys().copied().collect();
        let target = match f.target {
            Target::Node(n) => Some(Machine::Node(n)),
            Target::Client(c) => Some(Machine::Client(c)),
            Target::Sentinel(i) => Some(Machine::Sentinel(i)),
            _ => None,
        };
        let mut links = Vec::new();
        for &a in &all {
            for &b in &all {
                if a == b {
                    continue;
                }
                let cut = match f.kind {
                    FaultKind::Partition => target == Some(a) || target == Some(b),
                    FaultKind::PartitionIn => target == Some(b),
                    FaultKind::PartitionOut => target == Some(a),
                    FaultKind::Split => f.group.contains(&a) != f.group.contains(&b),
                    _ => false,
                };
                if cut {
                    links.push((a, b));
                }
            }
        }
        links
    }

    fn clog(&mut self, link: (Machine, Machine)) {
        let now = self.now_us();
        let (count, _) = self.clogs.entry(link).or_insert((0, now));
        *count += 1;
        if *count == 1 {
            self.net.clog_link(self.machines[&link.0], self.machines[&link.1]);
        }
    }

    fn unclog(&mut self, link: (Machine, Machine)) {
        if let Some((count, since)) = self.clogs.get_mut(&link) {
            *count -= 1;
            if *count == 0 {
                let since = *since;
                self.clogs.remove(&link);
                self.net.unclog_link(self.machines[&link.0], self.machines[&link.1]);
                self.note_link_cut(link, since);
            }
        }
    }

    /// A node-to-node link was cut from `since_us` until now: for `History::reach`.
    fn note_link_cut(&self, link: (Machine, Machine), since_us: u64) {
        if let (Machine::Node(from), Machine::Node(to)) = link {
            let cut = LinkCut { from, to, start_us: since_us, end_us: self.now_us() };
            self.rec.history.lock().unwrap_or_else(|e| e.into_inner()).reach.link_cuts.push(cut);
        }
    }

    /// Node `n` stops running (paused, or down), which ends a pause it was in.
    fn stop_began(&mut self, n: usize, paused: bool) {
        self.stop_ended(n);
        self.nodes[n].stopped_since = Some((self.now_us(), paused));
    }

    /// Node `n` runs again: its stop goes into `History::reach`.
    fn stop_ended(&mut self, n: usize) {
        if let Some((start_us, paused)) = self.nodes[n].stopped_since.take() {
            let stop = Stop { start_us, end_us: self.now_us(), paused };
            self.rec.history.lock().unwrap_or_else(|e| e.into_inner()).reach.stops[n].push(stop);
        }
    }

    fn apply_latency(&self) {
        let [lo, hi] =
            self.latencies.values().copied().max_by_key(|r| (r[1], r[0])).unwrap_or(self.scenario.net.latency_ms);
        self.net.update_config(|c| c.send_latency = latency_range(lo, hi));
        note_latency(&self.rec, hi);
    }

    /// The machine a kill or pause acts on and the nemesis's record of its state.
    fn process_of(&mut self, f: &PlannedFault) -> (NodeId, &mut NodeState) {
        match f.target {
            Target::Sentinel(i) => {
                let m = &mut self.sentinels[i as usize];
                (m.id, &mut m.state)
            }
            _ => {
                let n = &mut self.nodes[node_of(f)];
                (n.id, &mut n.state)
            }
        }
    }

    /// A sentinel killed: its process is gone, its disk keeps what it synced (the config
    /// with its epochs and votes is written with fsync).
    fn kill_sentinel(&mut self, i: usize) -> bool {
        let m = &mut self.sentinels[i];
        if m.state == NodeState::Down {
            return false;
        }
        m.state = NodeState::Down;
        self.handle.kill(m.id);
        m.disk.process_crash();
        true
    }

    fn restart_sentinel(&mut self, i: usize) {
        let m = &mut self.sentinels[i];
        if m.state != NodeState::Down {
            return;
        }
        m.state = NodeState::Up;
        self.handle.restart(m.id);
        self.event(&format!("s{i} restarted"));
    }

    fn kill(&mut self, f: &PlannedFault) -> bool {
        if let Target::Sentinel(i) = f.target {
            return self.kill_sentinel(i as usize);
        }
        let n = node_of(f);
        if self.nodes[n].state == NodeState::Down {
            return false;
        }
        self.handle.kill(self.nodes[n].id);
        self.nodes[n].state = NodeState::Down;
        self.stop_began(n, false);
        let now = self.now_us();
        self.rec.history.lock().unwrap_or_else(|e| e.into_inner()).kills_us[n].push(now);
        if f.kind == FaultKind::PowerFail {
            self.rec.history.lock().unwrap_or_else(|e| e.into_inner()).power_fails_us[n].push(now);
            let report = self.nodes[n].disk.power_fail(power_loss(f.mode));
            let fates: Vec<String> = report
                .files
                .iter()
                .map(|(name, fates)| {
                    let kept = fates.iter().filter(|f| **f == redsim::env::sim_disk::SectorFate::Kept).count();
                    format!("{name}: {kept}/{} pending pieces kept", fates.len())
                })
                .collect();
            self.event(&format!("n{n} lost power ({}) [{}]", f.mode.name(), fates.join("; ")));
        } else {
            self.nodes[n].disk.process_crash();
        }
        true
    }

    fn restart(&mut self, n: usize) {
        if self.nodes[n].state != NodeState::Down {
            return;
        }
        self.handle.restart(self.nodes[n].id);
        self.nodes[n].state = NodeState::Up;
        self.stop_ended(n);
        self.event(&format!("n{n} restarted"));
        if let Some((admin, node)) = self.admin.clone() {
            let now = self.now_us();
            self.rec.history.lock().unwrap_or_else(|e| e.into_inner()).repl.restarts.push((n as u32, now));
            if self.scenario.sentinel.is_some() {
                // The sentinels reconfigure a returning node (+convert-to-slave).
                return;
            }
            self.handle.get_node(node).expect("the admin machine exists").spawn(async move {
                admin.reattach(n as u32).await;
            });
        }
    }

    fn record_clock(&mut self, n: usize, model: ClockModel) {
        self.nodes[n].clock_model = model;
        let change = ClockChange { at_us: model.since_us, error_us: model.error_us, drift_ppm: model.drift_ppm };
        self.rec.history.lock().unwrap_or_else(|e| e.into_inner()).clocks[n].push(change);
    }

    fn clock_step(&mut self, n: usize, delta_ms: i64) {
        let now = self.now_us();
        self.nodes[n].clock.jump_ms(delta_ms);
        let m = self.nodes[n].clock_model;
        let model = ClockModel { since_us: now, error_us: m.error_at(now) + delta_ms * 1000, drift_ppm: m.drift_ppm };
        self.record_clock(n, model);
        self.event(&format!("n{n} wall clock stepped {delta_ms}ms (now {}ms off)", model.error_us / 1000));
    }

    fn clock_drift(&mut self, n: usize, ppm: i64) {
        let now = self.now_us();
        self.nodes[n].clock.set_drift_ppm(ppm);
        let m = self.nodes[n].clock_model;
        let model = ClockModel { since_us: now, error_us: m.error_at(now), drift_ppm: ppm };
        self.record_clock(n, model);
        self.event(&format!("n{n} wall clock drift {ppm}ppm (now {}ms off)", model.error_us / 1000));
    }

    /// Cuts the link between the node and the node it replicates, both ways.
    fn cut_repl_link(&mut self, i: usize, f: &PlannedFault) -> bool {
        let n = node_of(f) as u32;
        let Some(up) = self.admin.as_ref().and_then(|(a, _)| a.topo.upstream_of(n)) else {
            return false;
        };
        let links = vec![(Machine::Node(n), Machine::Node(up)), (Machine::Node(up), Machine::Node(n))];
        for &l in &links {
            self.clog(l);
        }
        self.cuts.insert(i, (links, self.now_us()));
        true
    }

    fn heal_repl_link(&mut self, i: usize, n: u32) {
        if let Some((links, since)) = self.cuts.remove(&i) {
            for l in links {
                self.unclog(l);
            }
            let now = self.now_us();
            self.rec.history.lock().unwrap_or_else(|e| e.into_inner()).repl.cuts.push((n, since, now));
        }
    }

    /// A failover (graceful) or forced promotion of the fault's node, run by the operator.
    async fn promote(&mut self, f: &PlannedFault) {
        let Some((admin, node)) = self.admin.clone() else { return };
        let target = node_of(f) as u32;
        let (graceful, command) = (f.kind != FaultKind::Promote, f.kind == FaultKind::FailoverCommand);
        self.event(&format!("start {}", f.describe()));
        let start_us = self.now_us();
        let done = on_admin(&self.handle, node, async move {
            if command {
                admin.failover_command(target).await
            } else {
                admin.promote(target, graceful).await
            }
        })
        .await;
        if done {
            let p = Promotion { start_us, end_us: self.now_us(), node: target, forced: !graceful };
            self.rec.history.lock().unwrap_or_else(|e| e.into_inner()).repl.promotions.push(p);
        }
    }

    /// A reshard by the cluster's operator, who works through the moves one at a time while
    /// the nemesis goes on with its schedule.
    fn reshard(&mut self, f: &PlannedFault) {
        let Some((ca, node)) = self.cluster.clone() else { return };
        self.event(&format!("start {}", f.describe()));
        let keys = self.scenario.workload.keys;
        self.handle.get_node(node).expect("the admin machine exists").spawn(async move { ca.reshard(keys).await });
    }

    /// The start of the liveness phase: every link open, every node up and running, every
    /// clock back on true time, the network fast again.
    fn heal_all(&mut self) {
        let cuts: Vec<usize> = self.cuts.keys().copied().collect();
        let now = self.now_us();
        for i in cuts {
            if let Some((links, since)) = self.cuts.remove(&i) {
                if let Machine::Node(n) = links[0].0 {
                    self.rec.history.lock().unwrap_or_else(|e| e.into_inner()).repl.cuts.push((n, since, now));
                }
            }
        }
        let links: Vec<((Machine, Machine), u64)> = self.clogs.iter().map(|(&l, &(_, since))| (l, since)).collect();
        for ((a, b), since) in links {
            self.net.unclog_link(self.machines[&a], self.machines[&b]);
            self.note_link_cut((a, b), since);
        }
        self.clogs.clear();
        self.latencies.clear();
        self.apply_latency();
        for node in &self.nodes {
            node.disk.set_faults(DiskFaults::default());
        }
        for i in 0..self.sentinels.len() {
            match self.sentinels[i].state {
                NodeState::Down => self.restart_sentinel(i),
                NodeState::Paused => {
                    self.handle.resume(self.sentinels[i].id);
                    self.sentinels[i].state = NodeState::Up;
                }
                NodeState::Up => {}
            }
        }
        for n in 0..self.nodes.len() {
            match self.nodes[n].state {
                NodeState::Down => self.restart(n),
                NodeState::Paused => {
                    self.handle.resume(self.nodes[n].id);
                    self.nodes[n].state = NodeState::Up;
                    self.stop_ended(n);
                }
                NodeState::Up => {}
            }
            let m = self.nodes[n].clock_model;
            if m.drift_ppm != 0 || m.error_at(self.now_us()) != 0 {
                self.nodes[n].clock.heal();
                let model = ClockModel { since_us: self.now_us(), error_us: 0, drift_ppm: 0 };
                self.record_clock(n, model);
            }
        }
        self.applied.iter_mut().for_each(|a| *a = false);
        self.event("healed: links open, nodes up, clocks true");
    }
}

fn node_of(f: &PlannedFault) -> usize {
    match f.target {
        Target::Node(n) => n as usize,
        other => unreachable!("node fault planned with target {other}"),
    }
}

/// A fresh world's shared record; call inside the runtime (the clock starts now).
pub fn recorder(history: Arc<Mutex<History>>, trace: Trace) -> Recorder {
    Recorder { history, trace, clock: TokioClock::new() }
}

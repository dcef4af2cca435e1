//! The fault plan: the scenario's scheduled faults plus the swarm's, every choice drawn from the
//! seed before the run starts, so that the run prints what the seed chose and a reader (or a
//! shrinker) can see the whole plan at once.
//!
//! What each fault models and what the system must do about it:
//! - `partition`: a machine is cut off from every other (a dead switch port, a firewall rule).
//!   Traffic on open connections waits, connects time out. Clients must time out and report
//!   unknown outcomes; nothing acknowledged may be lost.
//! - `partition_in` / `partition_out`: only one direction is cut (an asymmetric route, a
//!   half-open connection). With `_out` requests still arrive and run while replies are lost:
//!   the classic unknown-outcome write that later shows up.
//! - `split`: the machines fall into two groups that cannot talk to each other.
//! - `kill`: the server process dies (kill -9, OOM killer) and restarts after the duration;
//!   the OS lives on, so the page cache keeps unsynced writes. A node without persistence
//!   restarts empty; clients see connections reset.
//! - `power_fail`: the machine loses power and reboots after the duration; unsynced writes
//!   survive only as the power-loss mode allows. Acknowledged fsynced data must survive.
//! - `pause`: the node stops running (a GC pause, a stopped VM, SIGSTOP) while messages queue;
//!   when it resumes it serves the backlog. Clients time out meanwhile.
//! - `clock_jump`: the node's wall clock steps by `delta_ms` (NTP step, VM resume, `date -s`);
//!   with a duration, NTP steps it back afterwards. Expiry follows the node's clock: keys may
//!   expire early or live longer, but never outlive a TTL by the node's own clock.
//! - `clock_offset`: the wall clock is `delta_ms` off for the duration (a bad RTC at boot).
//! - `clock_drift`: the wall clock runs `ppm` fast or slow for the duration (no NTP).
//! - `latency`: every message takes `latency_ms` for the duration (a congested network).
//!   Clients with short timeouts see unknown outcomes; the server must not care.
//! - `fsync_eio`: every fsync of the node's disk returns EIO for the duration, and the data it
//!   should have synced may vanish at a power loss ("fsyncgate"). `appendfsync always`: the node
//!   exits (and its supervisor restarts it); `everysec`: writes get MISCONF until an fsync
//!   succeeds again. No acknowledged write may be lost beyond the policy's window.
//! - `disk_slow`: every fsync takes 500..3000 ms while writes stay fast (a disk busy with
//!   other writeback).
//!   `everysec` postpones writes while an fsync runs, for at most 2 s, then writes anyway.

use redsim::env::{Rng, SeededRng};

use crate::scenario::{FaultKind, LinkTargets, OpKind, PowerMode, Scenario, ScheduledFault, Target};
use crate::trace::fnv1a64;

/// A machine of the world: a server node or a workload client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Machine {
    Node(u32),
    Client(u32),
    /// A sentinel of a `[sentinel]` group.
    Sentinel(u32),
}

impl std::fmt::Display for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Machine::Node(n) => write!(f, "node:{n}"),
            Machine::Client(c) => write!(f, "client:{c}"),
            Machine::Sentinel(i) => write!(f, "sentinel:{i}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct PlannedFault {
    pub at_ms: u64,
    pub kind: FaultKind,
    /// Resolved: `Node`, `Client` or `None`, never `Any*`.
    pub target: Target,
    pub duration_ms: u64,
    pub delta_ms: i64,
    pub ppm: i64,
    pub latency_ms: [u64; 2],
    pub mode: PowerMode,
    /// `split`: the machines of one side; the other side is everyone else.
    pub group: Vec<Machine>,
    /// Where it came from, for the trace: `schedule[3]` or `swarm`.
    pub source: String,
}

impl PlannedFault {
    pub fn describe(&self) -> String {
        let mut s = format!("{} {} at {}ms", self.kind.name(), self.target, self.at_ms);
        if self.duration_ms > 0 {
            s += &format!(" for {}ms", self.duration_ms);
        }
        match self.kind {
            FaultKind::ClockJump | FaultKind::ClockOffset => s += &format!(" delta={}ms", self.delta_ms),
            FaultKind::ClockDrift => s += &format!(" ppm={}", self.ppm),
            FaultKind::Latency => s += &format!(" latency={}..{}ms", self.latency_ms[0], self.latency_ms[1]),
            FaultKind::PowerFail => s += &format!(" mode={}", self.mode.name()),
            FaultKind::Split => {
                let g: Vec<String> = self.group.iter().map(|m| m.to_string()).collect();
                s += &format!(" group=[{}]", g.join(","));
            }
            _ => {}
        }
        s + &format!(" ({})", self.source)
    }
}

/// A generator for one purpose, derived from the run's seed: adding draws for one purpose
/// never shifts another's.
pub fn rng_for(seed: u64, purpose: &str) -> SeededRng {
    let h = fnv1a64(fnv1a64(0xcbf2_9ce4_8422_2325, &seed.to_le_bytes()), purpose.as_bytes());
    SeededRng::from_seed(h)
}

fn in_range(rng: &mut SeededRng, [lo, hi]: [u64; 2]) -> u64 {
    lo + rng.below(hi - lo + 1)
}

fn signed(rng: &mut SeededRng, range: [u64; 2]) -> i64 {
    let v = in_range(rng, range) as i64;
    if rng.below(2) == 0 {
        -v
    } else {
        v
    }
}

/// The plan and the lines that say what the seed chose.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub faults: Vec<PlannedFault>,
    /// Operation weights the clients draw from, in `OpKind` order, zeros left out.
    pub mix: Vec<(OpKind, u32)>,
    pub choices: Vec<String>,
}

/// The workload's mix for this seed: the scenario's weights, or with `swarm_mix` a draw below
/// each.
fn plan_mix(s: &Scenario, seed: u64) -> Vec<(OpKind, u32)> {
    let mut rng = rng_for(seed, "workload");
    let weights: Vec<(OpKind, u32)> = s.workload.ops.iter().map(|(&k, &w)| (k, w)).filter(|&(_, w)| w > 0).collect();
    if !s.workload.swarm_mix {
        return weights;
    }
    let mut drawn: Vec<(OpKind, u32)> = weights.iter().map(|&(k, w)| (k, rng.below(u64::from(w) + 1) as u32)).collect();
    if drawn.iter().all(|&(_, w)| w == 0) {
        let i = rng.below(drawn.len() as u64) as usize;
        drawn[i].1 = weights[i].1;
    }
    drawn.retain(|&(_, w)| w > 0);
    drawn
}

pub fn mix_text(mix: &[(OpKind, u32)]) -> String {
    let parts: Vec<String> = mix.iter().map(|(k, w)| format!("{}={w}", k.name())).collect();
    parts.join(" ")
}

pub fn plan(s: &Scenario, seed: u64) -> Plan {
    let mut rng = rng_for(seed, "faults");
    let mut p = Plan { mix: plan_mix(s, seed), ..Plan::default() };
    let swarmed = if s.workload.swarm_mix { " (swarm)" } else { "" };
    p.choices.push(format!("workload mix{swarmed}: {}", mix_text(&p.mix)));
    for (i, f) in s.faults.schedule.iter().enumerate() {
        p.faults.push(resolve(s, f, format!("schedule[{i}]"), &mut rng));
    }
    if let Some(sw) = &s.faults.swarm {
        let mut kinds = sw.kinds.clone();
        kinds.sort();
        kinds.dedup();
        // Each kind is on with probability 1/2 (at least one always is) at a rate of its own.
        let mut on: Vec<bool> = kinds.iter().map(|_| rng.below(2) == 0).collect();
        if !on.iter().any(|&b| b) {
            on[rng.below(kinds.len() as u64) as usize] = true;
        }
        for (k, kind) in kinds.iter().enumerate() {
            if !on[k] {
                p.choices.push(format!("swarm: {} off", kind.name()));
                continue;
            }
            let per_min = 1 + rng.below(u64::from(sw.max_per_min));
            p.choices.push(format!("swarm: {} on, {per_min}/min", kind.name()));
            // Uniform gaps with the rate's mean: a Poisson process's mean without floats.
            let mean_gap_ms = (60_000 / per_min).max(1);
            let mut t = rng.below(2 * mean_gap_ms);
            while t < s.duration_ms {
                let f = swarm_fault(s, *kind, t, &mut rng);
                p.faults.push(f);
                t += 1 + rng.below(2 * mean_gap_ms);
            }
        }
    }
    for f in &mut p.faults {
        // Every fault is over by the end of the safety phase, when the world heals anyway.
        if f.duration_ms > 0 {
            f.duration_ms = f.duration_ms.min(s.duration_ms - f.at_ms).max(1);
        }
    }
    p.faults.sort_by_key(|f| f.at_ms);
    for f in &p.faults {
        p.choices.push(format!("fault: {}", f.describe()));
    }
    p
}

fn pick_target(s: &Scenario, t: Target, rng: &mut SeededRng) -> Target {
    match t {
        Target::AnyNode => Target::Node(rng.below(u64::from(s.topology.nodes)) as u32),
        Target::AnyClient => Target::Client(rng.below(u64::from(s.workload.clients)) as u32),
        Target::AnySentinel => {
            Target::Sentinel(rng.below(u64::from(s.sentinel.as_ref().map_or(1, |g| g.count))) as u32)
        }
        t => t,
    }
}

fn random_group(s: &Scenario, rng: &mut SeededRng) -> Vec<Machine> {
    let all: Vec<Machine> =
        (0..s.topology.nodes).map(Machine::Node).chain((0..s.workload.clients).map(Machine::Client)).collect();
    loop {
        let group: Vec<Machine> = all.iter().copied().filter(|_| rng.below(2) == 0).collect();
        if !group.is_empty() && group.len() < all.len() {
            return group;
        }
    }
}

/// A planned fault as a scheduled one with nothing left to draw: replaying it does not consult
/// the seed (how `shrink` makes the seed's choices explicit).
pub fn explicit(f: &PlannedFault) -> ScheduledFault {
    ScheduledFault {
        at_ms: f.at_ms,
        fault: f.kind,
        target: match f.target {
            Target::None => String::new(),
            t => t.to_string(),
        },
        duration_ms: f.duration_ms,
        delta_ms: f.delta_ms,
        ppm: f.ppm,
        latency_ms: (f.kind == FaultKind::Latency).then_some(f.latency_ms),
        mode: (f.kind == FaultKind::PowerFail).then_some(f.mode),
        group: f.group.iter().map(|m| m.to_string()).collect(),
    }
}

fn resolve(s: &Scenario, f: &ScheduledFault, source: String, rng: &mut SeededRng) -> PlannedFault {
    let target = pick_target(s, Target::parse(&f.target).unwrap_or(Target::None), rng);
    let mode = f.mode.unwrap_or_else(|| PowerMode::ALL[rng.below(PowerMode::ALL.len() as u64) as usize]);
    let group = match f.fault {
        FaultKind::Split if f.group.is_empty() => random_group(s, rng),
        FaultKind::Split => f
            .group
            .iter()
            .filter_map(|m| match Target::parse(m) {
                Some(Target::Node(n)) => Some(Machine::Node(n)),
                Some(Target::Client(c)) => Some(Machine::Client(c)),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    PlannedFault {
        at_ms: f.at_ms,
        kind: f.fault,
        target,
        duration_ms: f.duration_ms,
        delta_ms: f.delta_ms,
        ppm: f.ppm,
        latency_ms: f.latency_ms.unwrap_or([0, 0]),
        mode,
        group,
        source,
    }
}

fn swarm_fault(s: &Scenario, kind: FaultKind, at_ms: u64, rng: &mut SeededRng) -> PlannedFault {
    let sw = s.faults.swarm.as_ref().expect("swarm faults come from a swarm");
    let any = if kind.needs_node() || rng.below(2) == 0 { Target::AnyNode } else { Target::AnyClient };
    let any = match (kind.needs_node(), sw.link_targets) {
        (false, LinkTargets::Nodes) => Target::AnyNode,
        (false, LinkTargets::Clients) => Target::AnyClient,
        _ => any,
    };
    let target = match kind {
        FaultKind::Split | FaultKind::Latency | FaultKind::Reshard => Target::None,
        // Drawn only when asked for, so that other scenarios' plans stay as they were.
        k if sw.sentinels && k.acts_on_sentinel() && rng.below(3) == 0 => pick_target(s, Target::AnySentinel, rng),
        // Replication faults act on a replica: node 0 starts as the master.
        k if k.needs_replication() => Target::Node(1 + rng.below(u64::from(s.topology.nodes - 1)) as u32),
        _ => pick_target(s, any, rng),
    };
    let mut f = PlannedFault {
        at_ms,
        kind,
        target,
        duration_ms: in_range(rng, sw.duration_ms),
        delta_ms: 0,
        ppm: 0,
        latency_ms: [0, 0],
        mode: PowerMode::LoseAll,
        group: Vec::new(),
        source: "swarm".into(),
    };
    match kind {
        FaultKind::Split => f.group = random_group(s, rng),
        FaultKind::PowerFail => {
            let modes: &[PowerMode] = if sw.power_modes.is_empty() { &PowerMode::ALL } else { &sw.power_modes };
            f.mode = modes[rng.below(modes.len() as u64) as usize];
        }
        FaultKind::ClockJump => {
            f.delta_ms = signed(rng, sw.clock_step_ms);
            if rng.below(2) == 0 {
                f.duration_ms = 0;
            }
        }
        FaultKind::ClockOffset => f.delta_ms = signed(rng, sw.clock_step_ms),
        FaultKind::ClockDrift => f.ppm = signed(rng, sw.drift_ppm),
        FaultKind::Latency => {
            let lo = 1 + rng.below(20);
            f.latency_ms = [lo, lo + rng.below(500)];
        }
        _ => {}
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario() -> Scenario {
        Scenario::from_toml(
            r#"
name = "t"
duration_ms = 30000
settle_ms = 5000
checkers = ["register"]
[topology]
nodes = 1
[workload]
clients = 4
keys = 2
think_ms = [1, 10]
ops = { get = 1, set = 1 }
[faults.swarm]
kinds = ["partition", "kill", "clock_jump", "split", "latency"]
max_per_min = 20
duration_ms = [100, 2000]
"#,
        )
        .unwrap()
    }

    #[test]
    fn plan_is_a_function_of_the_seed() {
        let s = scenario();
        let (a, b, c) = (plan(&s, 7), plan(&s, 7), plan(&s, 8));
        assert_eq!(a.faults, b.faults);
        assert_eq!(a.choices, b.choices);
        assert_ne!(a.choices, c.choices);
    }

    #[test]
    fn planned_faults_end_within_the_safety_phase() {
        let s = scenario();
        for seed in 0..50 {
            for f in plan(&s, seed).faults {
                assert!(f.at_ms + f.duration_ms <= s.duration_ms, "{}", f.describe());
                assert!(!matches!(f.target, Target::AnyNode | Target::AnyClient));
            }
        }
    }

    #[test]
    fn explicit_faults_plan_the_same_faults_under_any_seed() {
        let s = scenario();
        for seed in 0..20 {
            let planned = plan(&s, seed).faults;
            let mut e = s.clone();
            e.faults = crate::scenario::Faults { schedule: planned.iter().map(explicit).collect(), swarm: None };
            e.validate().unwrap_or_else(|err| panic!("seed {seed}: {err}"));
            let again = plan(&e, seed + 1000).faults;
            assert_eq!(planned.len(), again.len());
            // Only a power failure reads its mode; the others draw one that nothing uses.
            let norm = |f: &PlannedFault| PlannedFault {
                source: String::new(),
                mode: if f.kind == FaultKind::PowerFail { f.mode } else { PowerMode::LoseAll },
                ..f.clone()
            };
            for (a, b) in planned.iter().zip(&again) {
                assert_eq!(norm(a), norm(b));
            }
        }
    }

    #[test]
    fn a_swarm_with_sentinels_hits_them_with_kills_pauses_and_partitions_only() {
        let s = Scenario::from_toml(
            r#"
name = "t"
duration_ms = 60000
settle_ms = 5000
checkers = ["sentinel_leader"]
[topology]
nodes = 3
[replication]
[sentinel]
count = 3
quorum = 2
down_after_ms = 5000
failover_timeout_ms = 6000
[workload]
clients = 2
keys = 2
think_ms = [1, 10]
ops = { get = 1, set = 1 }
[faults.swarm]
kinds = ["kill", "pause", "partition", "partition_out", "latency", "repl_link_cut"]
max_per_min = 20
duration_ms = [100, 2000]
sentinels = true
"#,
        )
        .unwrap();
        let mut on_sentinels = 0;
        for seed in 0..20 {
            for f in plan(&s, seed).faults {
                if let Target::Sentinel(n) = f.target {
                    assert!(n < 3, "{}", f.describe());
                    assert!(f.kind.acts_on_sentinel(), "{}", f.describe());
                    on_sentinels += 1;
                }
            }
        }
        assert!(on_sentinels > 20, "about a third of the kills, pauses and partitions: {on_sentinels}");
        let mut no_group = s.clone();
        no_group.sentinel = None;
        no_group.checkers.clear();
        let e = no_group.validate().unwrap_err().to_string();
        assert!(e.contains("faults.swarm.sentinels"), "{e}");
    }
}

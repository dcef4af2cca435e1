//! One seed of one scenario, start to verdict: plan the faults, run the world in a fresh madsim
//! runtime seeded with the same seed, check the history. Also the sweep over many seeds, each
//! runtime on an OS thread of its own (a madsim runtime is single-threaded and keeps its state
//! per thread, so `--jobs 2` runs two seeds at once on two cores).

#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::checkers::{self, Verdict};
use crate::faults;
use crate::history::{History, Outcome};
use crate::scenario::Scenario;
use crate::toylog::Bug;
use crate::trace::{hash_hex, Trace};
use crate::world::{self, WorldOptions};

/// Extra simulated time past the scenario's end before the runtime gives up on a hung run.
const TIME_LIMIT_SLACK: Duration = Duration::from_secs(120);

/// Everything one run leaves for the report.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    pub seed: u64,
    pub bug: Option<Bug>,
    pub choices: Vec<String>,
    pub trace: Trace,
    pub history: History,
    pub verdict: Verdict,
    /// A node or the harness panicked: a failure even when the checkers passed.
    pub panic: Option<String>,
    /// Wall time of the whole run, and of the checkers alone.
    pub wall: Duration,
    pub check_wall: Duration,
}

impl RunOutcome {
    pub fn passed(&self) -> bool {
        self.panic.is_none() && self.verdict.passed()
    }

    pub fn trace_hash(&self) -> u64 {
        self.trace.hash()
    }

    pub fn sim_secs(&self) -> f64 {
        self.history.end_us as f64 / 1e6
    }

    /// (ok, fail, unknown) operation counts.
    pub fn op_counts(&self) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for op in &self.history.ops {
            match op.outcome {
                Outcome::Ok(_) => c.0 += 1,
                Outcome::Fail(_) => c.1 += 1,
                Outcome::Unknown(_) => c.2 += 1,
            }
        }
        c
    }

    /// One line: how much was simulated, how fast, and what the clients saw.
    pub fn summary_line(&self) -> String {
        let (ok, fail, unknown) = self.op_counts();
        let wall = self.wall.as_secs_f64().max(1e-9);
        format!(
            "simulated {:.1}s in {:.3}s wall ({:.0}x; checkers {:.3}s): {} ops ({ok} ok, {fail} fail, {unknown} unknown), {} trace lines",
            self.sim_secs(),
            wall,
            self.sim_secs() / wall,
            self.check_wall.as_secs_f64(),
            self.history.ops.len(),
            self.trace.len()
        )
    }
}

/// The world inside a runtime that already runs: plans from the seed, writes the header and
/// runs to the end. Shared by `run_seed` and determinism tests.
pub async fn simulate(
    s: Scenario,
    seed: u64,
    opts: WorldOptions,
    trace: Trace,
    history: Arc<Mutex<History>>,
) -> Vec<String> {
    let plan = faults::plan(&s, seed);
    trace.push(format!("redsim-sim: scenario {} seed {seed}", s.name));
    if let Some(bug) = opts.bug {
        trace.push(format!("planted bug: {}", bug.name()));
    }
    for c in &plan.choices {
        trace.push(format!("seed chose: {c}"));
    }
    let choices = plan.choices.clone();
    let rec = world::recorder(history.clone(), trace.clone());
    let replication = s.replication.is_some();
    world::run_world(s, seed, plan, opts, rec).await;
    if replication {
        let synced = replica_syncs(&trace);
        history.lock().unwrap_or_else(|e| e.into_inner()).repl.synced_us = synced;
    }
    choices
}

/// When each replica's link came up, read from the nodes' log lines in the trace
/// (`[   4.101003] n2 log: ... MASTER <-> REPLICA sync: Finished with success`).
fn replica_syncs(trace: &Trace) -> Vec<(u32, u64)> {
    const SYNCED: [&str; 2] =
        ["MASTER <-> REPLICA sync: Finished with success", "MASTER <-> REPLICA sync: Master accepted a Partial"];
    let mut synced = Vec::new();
    trace.for_each_line(|line| {
        if !SYNCED.iter().any(|s| line.contains(s)) {
            return;
        }
        synced.extend(crate::trace::node_log(line).map(|(at_us, node, _)| (node, at_us)));
    });
    synced
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic with a non-string payload".into())
}

/// Stack of the thread a seed runs on (the main thread's default; spawned threads get less).
const RUN_STACK_BYTES: usize = 64 << 20;

/// Runs one seed in a fresh runtime on a fresh thread and checks it.
///
/// The fresh thread is what makes std's `HashMap` order (madsim's network keeps its sockets
/// in one) a function of the seed: std draws a thread's hash keys once, at the thread's first
/// `HashMap`, and madsim can seed that draw only if its runtime comes first. A second runtime
/// on the same thread (the next seed of a sweep worker, a replay in a process whose argument
/// parsing made a map) would iterate in an order the seed does not fix.
pub fn run_seed(s: &Scenario, seed: u64, opts: &WorldOptions) -> RunOutcome {
    warm_up();
    on_fresh_thread(|| run_seed_on_this_thread(s, seed, opts))
}

fn on_fresh_thread<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("simulation".into())
            .stack_size(RUN_STACK_BYTES)
            .spawn_scoped(scope, f)
            .expect("a thread for the run")
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// The smallest redsim world, run once per process before any other run.
const WARM_UP_SCENARIO: &str = r#"
name = "warm_up"
description = "One node, one client, one second: run once per process before any seed."
duration_ms = 1000
settle_ms = 4000
checkers = ["liveness"]
[topology]
nodes = 1
[workload]
clients = 1
keys = 1
think_ms = [10, 20]
ops = { get = 1, set = 1, incr = 1 }
"#;

/// Process-wide state of the server code that is built on first use (the command table, the
/// config directives) creates hash maps; built inside a run, it draws std's per-thread hash
/// keys and shifts the order of every map made after it in that run (madsim's network among
/// them), so the first seed of a process would not run as it does anywhere else (a sweep, a
/// replay). One throwaway run of the smallest world first builds all of it.
///
/// The other process-wide state that reached node code was tokio's `select!` branch order
/// (a generator seeded from a process-wide counter): the env layer's `select!` is biased.
/// `replay` of many reports in one process checks both (`redsim-sim replay <dir> --jobs 2`).
fn warm_up() {
    static WARM: std::sync::Once = std::sync::Once::new();
    WARM.call_once(|| {
        let _ = redsim::commands::table();
        let _ = redsim::server::config::find_def("hz");
        let s = Scenario::from_toml(WARM_UP_SCENARIO).expect("the warm-up scenario is valid");
        let _ = on_fresh_thread(|| run_seed_on_this_thread(&s, 1, &WorldOptions::default()));
    });
}

fn run_seed_on_this_thread(s: &Scenario, seed: u64, opts: &WorldOptions) -> RunOutcome {
    let started = Instant::now();
    // The runtime first: it seeds this thread's HashMap keys (see `run_seed`).
    let mut rt = madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default());
    let trace = Trace::new();
    let history = Arc::new(Mutex::new(History::new(s.topology.nodes as usize)));
    rt.set_time_limit(Duration::from_millis(s.duration_ms + s.settle_ms) + TIME_LIMIT_SLACK);
    let result = catch_unwind(AssertUnwindSafe(|| {
        rt.block_on(simulate(s.clone(), seed, opts.clone(), trace.clone(), history.clone()))
    }));
    // Tear the runtime down before reading shared state: node tasks hold clones.
    drop(rt);
    let (choices, panic) = match result {
        Ok(c) => (c, None),
        Err(p) => {
            let text = panic_text(&*p);
            trace.push(format!("panic: {text}"));
            (faults::plan(s, seed).choices, Some(text))
        }
    };
    let history = history.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let grace_us = s.liveness_grace_ms() * 1000;
    let check_started = Instant::now();
    let verdict = if panic.is_none() { checkers::run(&s.checkers, &history, grace_us) } else { Verdict::default() };
    RunOutcome {
        seed,
        bug: opts.bug,
        choices,
        trace,
        history,
        verdict,
        panic,
        wall: started.elapsed(),
        check_wall: check_started.elapsed(),
    }
}

/// A seed's result as a sweep keeps it (whole outcomes of a thousand runs would not fit).
#[derive(Clone, Debug)]
pub struct SeedResult {
    pub seed: u64,
    pub passed: bool,
    pub trace_hash: u64,
    pub sim_secs: f64,
    pub first_finding: Option<String>,
}

/// The first seed in `1..=budget` on which the scenario fails (a finding or a panic), with its
/// outcome; seeds run `jobs` at a time (the first failing seed of the first chunk that has one
/// is the first overall). How the planted-bug table counts "seeds needed".
pub fn first_failing_seed(s: &Scenario, opts: &WorldOptions, budget: u64, jobs: usize) -> Option<RunOutcome> {
    let jobs = jobs.max(1);
    let mut next = 1;
    while next <= budget {
        let end = (next + jobs as u64).min(budget + 1);
        let failed: Mutex<BTreeMap<u64, RunOutcome>> = Mutex::new(BTreeMap::new());
        sweep(s, next..end, jobs, opts, &|r, out| {
            if !r.passed {
                failed.lock().unwrap_or_else(|e| e.into_inner()).insert(r.seed, out.clone());
            }
        });
        let first = failed.into_inner().unwrap_or_else(|e| e.into_inner()).into_values().next();
        if first.is_some() {
            return first;
        }
        next = end;
    }
    None
}

/// Runs `seeds` on `jobs` threads, calling `on_done` (from the worker threads, in completion
/// order) with each result and its full outcome; returns the results by seed.
pub fn sweep(
    s: &Scenario,
    seeds: std::ops::Range<u64>,
    jobs: usize,
    opts: &WorldOptions,
    on_done: &(dyn Fn(&SeedResult, &RunOutcome) + Sync),
) -> BTreeMap<u64, SeedResult> {
    let next = AtomicU64::new(seeds.start);
    let results = Mutex::new(BTreeMap::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= seeds.end {
                    return;
                }
                let out = run_seed(s, seed, opts);
                let r = SeedResult {
                    seed,
                    passed: out.passed(),
                    trace_hash: out.trace_hash(),
                    sim_secs: out.sim_secs(),
                    first_finding: out
                        .panic
                        .clone()
                        .map(|p| format!("panic: {p}"))
                        .or_else(|| out.verdict.findings.first().map(|f| format!("{}: {}", f.checker, f.message))),
                };
                on_done(&r, &out);
                results.lock().unwrap_or_else(|e| e.into_inner()).insert(seed, r);
            });
        }
    });
    results.into_inner().unwrap_or_else(|e| e.into_inner())
}

/// `hash_hex` re-exported for callers that print hashes.
pub fn hex(hash: u64) -> String {
    hash_hex(hash)
}

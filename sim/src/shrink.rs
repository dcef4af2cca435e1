//! `shrink`: from a failing seed to the smallest scenario that still fails, so that a reader
//! starts from one fault instead of twenty. The seed's choices are first made explicit (its
//! swarm faults become a fixed schedule, its workload mix fixed weights); then delta
//! debugging drops faults (halves, quarters, … one at a time), halves each remaining fault's
//! duration, cuts the safety phase down towards the last fault's end, and tries fewer clients.
//!
//! The seed stays: it still drives the workload, the disk and madsim's scheduling, so the
//! shrunk scenario reproduces with the same `--seed`. A candidate counts as failing only when
//! the same checker fails (or the run panics again), so that shrinking cannot wander off to a
//! different bug.

#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::collections::BTreeSet;

use crate::faults;
use crate::run::{run_seed, RunOutcome};
use crate::scenario::{Faults, Scenario};
use crate::world::WorldOptions;

/// Runs a shrink may spend; each is a whole simulated run.
pub const DEFAULT_MAX_RUNS: usize = 300;

/// Halvings tried per fault duration: 2^-8 of a duration is below anything that matters.
const MAX_HALVINGS: u32 = 8;

#[derive(Clone, Debug)]
pub struct Shrunk {
    pub scenario: Scenario,
    pub faults_before: usize,
    pub faults_after: usize,
    pub duration_before_ms: u64,
    pub clients_before: u32,
    pub runs: usize,
    /// The shrunk run's first finding (or panic), for the summary line.
    pub reason: String,
}

/// The scenario with the seed's choices written out: a schedule and a fixed mix, no swarm.
pub fn explicit(s: &Scenario, seed: u64) -> Scenario {
    let plan = faults::plan(s, seed);
    let mut e = s.clone();
    e.faults = Faults { schedule: plan.faults.iter().map(faults::explicit).collect(), swarm: None };
    e.workload.ops = plan.mix.iter().copied().collect();
    e.workload.swarm_mix = false;
    e
}

/// What makes a failure "the same": the failing checkers, or a panic.
fn signature(out: &RunOutcome) -> BTreeSet<String> {
    if out.panic.is_some() {
        return BTreeSet::from(["panic".to_string()]);
    }
    out.verdict.findings.iter().map(|f| f.checker.clone()).collect()
}

fn reason(out: &RunOutcome) -> String {
    out.panic
        .clone()
        .map(|p| format!("panic: {p}"))
        .or_else(|| out.verdict.findings.first().map(|f| format!("{}: {}", f.checker, f.message)))
        .unwrap_or_else(|| "failed".into())
}

struct Search<'a> {
    seed: u64,
    opts: &'a WorldOptions,
    wanted: BTreeSet<String>,
    runs: usize,
    max_runs: usize,
    last_reason: String,
}

impl Search<'_> {
    fn still_fails(&mut self, candidate: &Scenario) -> bool {
        if self.runs >= self.max_runs || candidate.validate().is_err() {
            return false;
        }
        self.runs += 1;
        let out = run_seed(candidate, self.seed, self.opts);
        let fails = !out.passed() && !signature(&out).is_disjoint(&self.wanted);
        if fails {
            self.last_reason = reason(&out);
        }
        fails
    }

    /// Drops chunks of faults, halving the chunk size down to single faults, until no single
    /// fault can go.
    fn drop_faults(&mut self, cur: &mut Scenario) {
        let mut chunk = cur.faults.schedule.len().div_ceil(2).max(1);
        loop {
            let mut removed_any = false;
            let mut i = 0;
            while i < cur.faults.schedule.len() {
                let mut cand = cur.clone();
                let end = (i + chunk).min(cand.faults.schedule.len());
                cand.faults.schedule.drain(i..end);
                if self.still_fails(&cand) {
                    *cur = cand;
                    removed_any = true;
                } else {
                    i += chunk;
                }
            }
            if chunk == 1 && !removed_any {
                return;
            }
            if !removed_any || chunk > 1 {
                chunk = (chunk / 2).max(1);
            }
        }
    }

    fn shorten_faults(&mut self, cur: &mut Scenario) {
        for i in 0..cur.faults.schedule.len() {
            for _ in 0..MAX_HALVINGS {
                let d = cur.faults.schedule[i].duration_ms;
                if d <= 1 {
                    break;
                }
                let mut cand = cur.clone();
                cand.faults.schedule[i].duration_ms = d / 2;
                if !self.still_fails(&cand) {
                    break;
                }
                *cur = cand;
            }
        }
    }

    /// Fewer clients, smallest first, as long as every fault's machines still exist.
    fn drop_clients(&mut self, cur: &mut Scenario) {
        let n = cur.workload.clients;
        let mut tries: Vec<u32> = vec![1, 2, n / 2, n.saturating_sub(1)];
        tries.retain(|&c| c >= 1 && c < n);
        tries.sort_unstable();
        tries.dedup();
        for clients in tries {
            let mut cand = cur.clone();
            cand.workload.clients = clients;
            // Invalid candidates (a fault on a client that no longer exists) count as passing.
            if self.still_fails(&cand) {
                *cur = cand;
                return;
            }
        }
    }

    /// Binary search of the safety phase between the last fault's end and its current length
    /// (failure need not be monotone in it; only failing lengths are ever kept).
    fn cut_duration(&mut self, cur: &mut Scenario) {
        let floor = cur.faults.schedule.iter().map(|f| f.at_ms + f.duration_ms.max(1)).max().unwrap_or(0).max(1);
        let (mut lo, mut hi) = (floor, cur.duration_ms);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let mut cand = cur.clone();
            cand.duration_ms = mid;
            if self.still_fails(&cand) {
                *cur = cand;
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
    }
}

/// Shrinks `s` at `seed`; an error when the seed passes (nothing to shrink) or when its
/// explicit schedule no longer fails.
pub fn shrink(s: &Scenario, seed: u64, opts: &WorldOptions, max_runs: usize) -> Result<Shrunk, String> {
    let first = run_seed(s, seed, opts);
    if first.passed() {
        return Err(format!("{} seed {seed} passes: nothing to shrink", s.name));
    }
    let mut search = Search { seed, opts, wanted: signature(&first), runs: 1, max_runs, last_reason: reason(&first) };
    let mut cur = explicit(s, seed);
    if !search.still_fails(&cur) {
        return Err(format!(
            "{} seed {seed} fails, but not once its faults are an explicit schedule; the failure depends on something the schedule does not capture",
            s.name
        ));
    }
    let faults_before = cur.faults.schedule.len();
    // Each pass can enable another (fewer clients or a shorter run change what a fault does),
    // so the passes repeat until a round changes nothing or the run budget is spent.
    loop {
        let before = (cur.faults.schedule.clone(), cur.duration_ms, cur.workload.clients);
        search.drop_faults(&mut cur);
        search.shorten_faults(&mut cur);
        search.cut_duration(&mut cur);
        search.drop_clients(&mut cur);
        if (cur.faults.schedule.clone(), cur.duration_ms, cur.workload.clients) == before
            || search.runs >= search.max_runs
        {
            break;
        }
    }
    cur.name = format!("{}_seed{seed}_shrunk", s.name);
    cur.description = format!(
        "{} seed {seed}, shrunk: {} of its {faults_before} faults, safety phase {}ms of {}ms, {} of {} clients.\n{}",
        s.name,
        cur.faults.schedule.len(),
        cur.duration_ms,
        s.duration_ms,
        cur.workload.clients,
        s.workload.clients,
        s.description.trim()
    );
    Ok(Shrunk {
        faults_after: cur.faults.schedule.len(),
        scenario: cur,
        faults_before,
        duration_before_ms: s.duration_ms,
        clients_before: s.workload.clients,
        runs: search.runs,
        reason: search.last_reason,
    })
}

/// The shrunk scenario as a TOML file, with a header saying how it was made and how to run it.
pub fn to_toml(shrunk: &Shrunk, seed: u64, command: &str, path: &str, bug: Option<&str>) -> Result<String, String> {
    let body = toml::to_string(&shrunk.scenario).map_err(|e| format!("serializing the shrunk scenario: {e}"))?;
    let bug = bug.map(|b| format!(" --bug {b}")).unwrap_or_default();
    let header = format!(
        "# Made by shrinking a failing seed:\n\
         #   {command}\n\
         # The seed's choices were made explicit, then delta debugging dropped faults, halved\n\
         # durations, cut the safety phase and tried fewer clients while the same checker still\n\
         # failed:\n\
         # {} faults -> {}, duration_ms {} -> {}, clients {} -> {}, {} runs.\n\
         # Still fails with: {}\n\
         # The seed still drives the workload and the disk; reproduce with:\n\
         #   redsim-sim run {path} --seed {seed}{bug}\n\n",
        shrunk.faults_before,
        shrunk.faults_after,
        shrunk.duration_before_ms,
        shrunk.scenario.duration_ms,
        shrunk.clients_before,
        shrunk.scenario.workload.clients,
        shrunk.runs,
        shrunk.reason.replace('\n', " "),
    );
    let text = header + &body;
    Scenario::from_toml(&text).map_err(|e| format!("the shrunk scenario does not load back: {e}"))?;
    Ok(text)
}

//! Simulator tests: determinism, the planted bug, and the standalone scenarios, each on fixed
//! seeds (never MADSIM_TEST_SEED: the runner builds its own runtime from the seed it is given).

#![cfg(madsim)]

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use redsim_sim::checkers;
use redsim_sim::history::{Call, History, Outcome, Value};
use redsim_sim::run::{run_seed, simulate, RunOutcome};
use redsim_sim::scenario::Scenario;
use redsim_sim::toylog::Bug;
use redsim_sim::trace::Trace;
use redsim_sim::world::WorldOptions;

const CHAOS: &str = include_str!("../../scenarios/standalone_chaos.toml");
const COUNTERS: &str = include_str!("../../scenarios/standalone_counters.toml");
const TTL: &str = include_str!("../../scenarios/standalone_ttl.toml");
const TOYLOG: &str = include_str!("../../scenarios/toylog_power.toml");
const AOF_SCENARIOS: [(&str, &str); 6] = [
    ("aof_always", include_str!("../../scenarios/aof_always.toml")),
    ("aof_everysec", include_str!("../../scenarios/aof_everysec.toml")),
    ("aof_no", include_str!("../../scenarios/aof_no.toml")),
    ("aof_fsync_eio", include_str!("../../scenarios/aof_fsync_eio.toml")),
    ("aof_fsync_eio_always", include_str!("../../scenarios/aof_fsync_eio_always.toml")),
    ("aof_rewrite", include_str!("../../scenarios/aof_rewrite.toml")),
];
/// Seeds per AOF scenario in CI; `cargo simrun-release sweep` runs thousands.
const AOF_CI_SEEDS: u64 = 12;

/// The planted bug must be caught within this many seeds (the bar).
const BUG_SEED_BUDGET: u64 = 200;

fn scenario(text: &str) -> Scenario {
    Scenario::from_toml(text).expect("scenario in the repository is valid")
}

fn healthy() -> WorldOptions {
    WorldOptions::default()
}

fn assert_passes(out: &RunOutcome, what: &str) {
    assert!(
        out.passed(),
        "{what} seed {} failed: panic {:?}, findings {:#?}",
        out.seed,
        out.panic,
        out.verdict.findings
    );
}

#[test]
fn same_scenario_and_seed_give_the_same_trace_hash() {
    let s = scenario(CHAOS);
    let (a, b) = (run_seed(&s, 7, &healthy()), run_seed(&s, 7, &healthy()));
    assert_eq!(a.trace_hash(), b.trace_hash());
    assert_eq!(a.trace.lines(), b.trace.lines());
    assert!(a.history.ops.len() > 1_000, "the workload ran: {}", a.summary_line());
}

#[test]
fn different_seeds_give_different_trace_hashes() {
    let s = scenario(CHAOS);
    let (a, b) = (run_seed(&s, 7, &healthy()), run_seed(&s, 8, &healthy()));
    assert_ne!(a.trace_hash(), b.trace_hash());
    assert_ne!(a.choices, b.choices, "the seed chooses the faults");
}

fn short_chaos_hash() -> Pin<Box<dyn Future<Output = u64>>> {
    Box::pin(async {
        let mut s = scenario(CHAOS);
        s.duration_ms = 6_000;
        s.settle_ms = 4_000;
        s.faults.swarm.as_mut().expect("chaos has a swarm").max_per_min = 30;
        let seed = madsim::runtime::Handle::current().seed();
        let trace = Trace::new();
        let history = Arc::new(Mutex::new(History::new(1)));
        simulate(s, seed, healthy(), trace.clone(), history).await;
        trace.hash()
    })
}

#[test]
fn madsim_finds_no_nondeterminism_in_a_chaos_run() {
    // Runs the world twice, comparing every random draw and its simulated time.
    let hash = madsim::runtime::Runtime::check_determinism(11, madsim::Config::default(), short_chaos_hash);
    assert_ne!(hash, 0);
}

#[test]
fn planted_skip_fsync_is_caught_within_200_seeds_and_replays_bit_for_bit() {
    let s = scenario(TOYLOG);
    let bug = WorldOptions { bug: Some(Bug::SkipFsync) };
    let caught = (0..BUG_SEED_BUDGET)
        .map(|seed| run_seed(&s, seed, &bug))
        .find(|out| !out.passed())
        .expect("skip-fsync survived 200 seeds of power failures");
    assert!(caught.panic.is_none(), "{:?}", caught.panic);
    assert!(caught.verdict.findings.iter().all(|f| f.checker == "durability"));
    let again = run_seed(&s, caught.seed, &bug);
    assert_eq!(again.trace_hash(), caught.trace_hash());
    assert_eq!(again.verdict, caught.verdict);
}

#[test]
fn healthy_toy_log_passes_the_same_200_seeds() {
    let s = scenario(TOYLOG);
    for seed in 0..BUG_SEED_BUDGET {
        assert_passes(&run_seed(&s, seed, &healthy()), "toylog_power");
    }
}

#[test]
fn standalone_scenarios_pass_on_fixed_seeds() {
    for (name, text) in [("chaos", CHAOS), ("counters", COUNTERS), ("ttl", TTL)] {
        let s = scenario(text);
        for seed in [1, 2, 3] {
            let out = run_seed(&s, seed, &healthy());
            assert_passes(&out, name);
            assert!(out.verdict.inconclusive.is_empty(), "{name} seed {seed}: {:?}", out.verdict.inconclusive);
        }
    }
}

#[test]
fn aof_scenarios_pass_on_fixed_seeds() {
    for (name, text) in AOF_SCENARIOS {
        let s = scenario(text);
        for seed in 1..=AOF_CI_SEEDS {
            assert_passes(&run_seed(&s, seed, &healthy()), name);
        }
    }
}

#[test]
fn planted_aof_bugs_are_caught_by_their_scenarios() {
    let cases = [
        ("aof_always", Bug::AofSkipFsync, "aof_always"),
        ("aof_everysec", Bug::AofSkipFsync, "aof_everysec"),
        // The node loads a file with a hole where the acknowledged, never-synced push was:
        // either the checker sees it missing, or the node refuses to start (liveness).
        ("aof_fsync_eio_always", Bug::AofIgnoreFsyncError, ""),
    ];
    for (name, bug, checker) in cases {
        let text = AOF_SCENARIOS.iter().find(|(n, _)| *n == name).expect("listed").1;
        let s = scenario(text);
        let opts = WorldOptions { bug: Some(bug) };
        let caught = (1..=BUG_SEED_BUDGET)
            .map(|seed| run_seed(&s, seed, &opts))
            .find(|out| !out.passed())
            .unwrap_or_else(|| panic!("{} survived {BUG_SEED_BUDGET} seeds of {name}", bug.name()));
        assert!(caught.panic.is_none(), "{:?}", caught.panic);
        if !checker.is_empty() {
            assert!(caught.verdict.findings.iter().any(|f| f.checker == checker), "{:#?}", caught.verdict.findings);
        }
    }
}

/// The checkers must catch what they claim on real histories, not only on hand-made ones: take
/// a passing run, plant one anomaly, and expect exactly that checker to object.
#[test]
fn checkers_flag_anomalies_planted_in_a_real_history() {
    let mut s = scenario(CHAOS);
    // The full mix, so every anomaly below has candidates; seed 1 draws no clock faults, so
    // node time is true time and expiry is sharp.
    s.workload.swarm_mix = false;
    let out = run_seed(&s, 1, &healthy());
    assert_passes(&out, "chaos");
    assert!(out.history.clocks[0].is_empty());
    let grace_us = 3_000_000;

    // A read returns the value of the first write to its key after a later write completed.
    let mut h = out.history.clone();
    let stale = stale_read(&mut h).expect("the run has a key written twice then read");
    let v = checkers::run(&s.checkers, &h, grace_us);
    assert!(v.findings.iter().any(|f| f.checker == "register" && f.ops.contains(&stale)), "{:#?}", v.findings);

    // A read returns a value whose TTL had run out, with nothing else written meanwhile.
    let mut h = out.history.clone();
    let expired = expired_read(&mut h).expect("the run has an expired key read as nil");
    let v = checkers::run(&s.checkers, &h, grace_us);
    assert!(v.findings.iter().any(|f| f.checker == "register" && f.ops.contains(&expired)), "{:#?}", v.findings);

    // An INCR repeats an earlier INCR's reply.
    let mut h = out.history.clone();
    let (first, dup) = duplicate_incr(&mut h).expect("the run has two INCRs of one key");
    let v = checkers::run(&s.checkers, &h, grace_us);
    assert!(
        v.findings.iter().any(|f| f.checker == "counter" && (f.ops.contains(&dup) || f.ops.contains(&first))),
        "{:#?}",
        v.findings
    );
}

/// Makes the last acknowledged GET of some register key return the first value ever written to
/// it, where a later SET of the key completed before the GET was sent. Returns the GET's id.
fn stale_read(h: &mut History) -> Option<usize> {
    let epoch_ops = h.ops.clone();
    for get in epoch_ops.iter().rev() {
        let (Call::Get { key }, Outcome::Ok(_), Some(sent)) = (&get.call, &get.outcome, get.sent_us) else {
            continue;
        };
        if h.kills_us[0].iter().any(|&k| k < sent) {
            continue;
        }
        let sets: Vec<_> = epoch_ops
            .iter()
            .filter(|o| matches!(&o.call, Call::Set { key: k, ttl_ms: None, .. } if k == key) && o.is_ok())
            .collect();
        let [first, .., last] = sets.as_slice() else {
            continue;
        };
        if last.complete_us < sent && first.complete_us < last.sent_us.unwrap_or(0) {
            let Call::Set { value, .. } = &first.call else { unreachable!() };
            h.ops[get.id].outcome = Outcome::Ok(Value::Str(value.clone()));
            return Some(get.id);
        }
    }
    None
}

/// Finds an acknowledged SET PX followed, after its TTL and a margin, by a GET that found the
/// key gone with no other write to the key meanwhile, and makes the GET return the value.
fn expired_read(h: &mut History) -> Option<usize> {
    const MARGIN_US: u64 = 50_000;
    let ops = h.ops.clone();
    let writes_key = |o: &redsim_sim::history::Op, key: &str| {
        matches!(&o.call, Call::Set { key: k, .. } | Call::Del { key: k } if k == key) && o.sent_us.is_some()
    };
    for set in &ops {
        let (Call::Set { key, value, ttl_ms: Some(ttl) }, true) = (&set.call, set.is_ok()) else {
            continue;
        };
        let expired_at = set.complete_us + ttl * 1000 + MARGIN_US;
        let Some(get) = ops.iter().find(|g| {
            matches!(&g.call, Call::Get { key: k } if k == key)
                && g.outcome == Outcome::Ok(Value::Nil)
                && g.sent_us.is_some_and(|s| s > expired_at)
        }) else {
            continue;
        };
        let quiet = ops.iter().filter(|o| o.id != set.id && writes_key(o, key)).all(|o| {
            let sent = o.sent_us.unwrap_or(0);
            sent > get.complete_us || (o.is_ok() && o.complete_us < set.sent_us.unwrap_or(0))
        });
        if quiet && h.kills_us[0].iter().all(|&k| k < set.sent_us.unwrap_or(0) || k > get.complete_us) {
            h.ops[get.id].outcome = Outcome::Ok(Value::Str(value.clone()));
            return Some(get.id);
        }
    }
    None
}

fn duplicate_incr(h: &mut History) -> Option<(usize, usize)> {
    let incrs: Vec<(usize, String, i64)> = h
        .ops
        .iter()
        .filter_map(|o| match (&o.call, &o.outcome) {
            (Call::Incr { key }, Outcome::Ok(Value::Int(n))) => Some((o.id, key.clone(), *n)),
            _ => None,
        })
        .collect();
    for (i, (a, key, n)) in incrs.iter().enumerate() {
        if let Some((b, _, _)) = incrs[i + 1..].iter().find(|(_, k, _)| k == key) {
            h.ops[*b].outcome = Outcome::Ok(Value::Int(*n));
            return Some((*a, *b));
        }
    }
    None
}

#[test]
fn report_round_trip_replays_the_same_trace_hash() {
    let s = scenario(TOYLOG);
    let bug = WorldOptions { bug: Some(Bug::SkipFsync) };
    let out = run_seed(&s, 7, &bug);
    let dir = std::env::temp_dir().join(format!("redsim-sim-test-{}", out.trace_hash()));
    let json = redsim_sim::report::write(&out, &s, None, &dir).expect("report written");
    let r = redsim_sim::report::read(&json).expect("report read back");
    assert_eq!(r.scenario, s);
    assert_eq!(r.bug.as_deref(), Some("skip-fsync"));
    let again = run_seed(&r.scenario, r.seed, &bug);
    assert_eq!(redsim_sim::trace::hash_hex(again.trace_hash()), r.trace_hash);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The toy log's seed 7 with skip-fsync, reported as if written under `reports/`, with the wall
/// times (the only numbers a rerun changes) zeroed.
fn stable_toylog_report() -> (redsim_sim::report::ReportJson, RunOutcome) {
    let s = scenario(TOYLOG);
    let out = run_seed(&s, 7, &WorldOptions { bug: Some(Bug::SkipFsync) });
    let json = std::path::Path::new("reports/toylog_power/7/report.json");
    let mut r = redsim_sim::report::build(&out, &s, Some("scenarios/toylog_power.toml"), json);
    r.stats.wall_secs = 0.0;
    (r, out)
}

#[test]
fn report_md_of_toylog_seed_7_is_stable() {
    let (r, out) = stable_toylog_report();
    insta::assert_snapshot!("toylog_power_seed7_report_md", redsim_sim::report::markdown(&r, &out.trace.lines()));
}

#[test]
fn report_html_is_one_self_contained_svg_timeline_with_every_lane() {
    let (r, out) = stable_toylog_report();
    let page = redsim_sim::report::html::render(&r, &out.history);
    assert!(page.starts_with("<!DOCTYPE html>") && page.trim_end().ends_with("</html>"));
    assert_eq!(page.matches("<svg").count(), 1);
    assert_eq!(page.matches("</svg>").count(), 1);
    assert!(!page.contains("http://") && !page.contains("https://"), "nothing fetched from the network");
    assert!(!page.contains(" src=") && !page.contains("<link"), "no external resources");
    for lane in ["network", "n0", "n0-net", "n0-clock", "n0-disk", "c0", "c1", "c2"] {
        assert!(page.contains(&format!("data-lane=\"{lane}\"")), "lane {lane}");
    }
    assert_eq!(page.matches("<rect id=\"op-").count(), out.history.ops.len(), "every operation drawn");
    for f in &r.findings {
        for op in &f.ops {
            assert!(page.contains(&format!("id=\"op-{op}\" class=\"ok bad\"")), "op #{op} highlighted");
        }
    }
    assert_eq!(page.matches("class=\"down\"").count(), 3, "three power failures take n0 down");
    assert!(page.contains(&r.trace_hash) && page.contains("redsim-sim replay"));
    assert_eq!(page.matches("<title>").count(), page.matches("</title>").count());
}

#[test]
fn explicit_schedule_replays_the_seeds_run_operation_for_operation() {
    let s = scenario(CHAOS);
    let explicit = redsim_sim::shrink::explicit(&s, 3);
    assert!(explicit.faults.swarm.is_none() && !explicit.workload.swarm_mix);
    let (a, b) = (run_seed(&s, 3, &healthy()), run_seed(&explicit, 3, &healthy()));
    assert_eq!(a.history.ops, b.history.ops);
    assert_eq!(a.verdict, b.verdict);
}

#[test]
fn shrinking_toylog_seed_7_gives_fewer_faults_that_still_fail() {
    let s = scenario(TOYLOG);
    let bug = WorldOptions { bug: Some(Bug::SkipFsync) };
    let before = redsim_sim::faults::plan(&s, 7).faults.len();
    let shrunk = redsim_sim::shrink::shrink(&s, 7, &bug, redsim_sim::shrink::DEFAULT_MAX_RUNS).expect("seed 7 fails");
    assert_eq!(shrunk.faults_before, before);
    assert!(shrunk.faults_after < before, "{} of {before} faults left", shrunk.faults_after);
    assert!(shrunk.scenario.duration_ms < s.duration_ms);
    let text = redsim_sim::shrink::to_toml(&shrunk, 7, "test", "shrunk.toml", Some("skip-fsync")).unwrap();
    assert!(text.starts_with("# Made by shrinking a failing seed:\n#   test\n"));
    let out = run_seed(&scenario(&text), 7, &bug);
    assert!(!out.passed(), "the shrunk scenario still fails");
    assert!(out.verdict.findings.iter().all(|f| f.checker == "durability"), "{:?}", out.verdict.findings);
}

#[test]
fn shrinking_a_passing_seed_is_refused() {
    let e = redsim_sim::shrink::shrink(&scenario(TOYLOG), 7, &healthy(), 10).unwrap_err();
    assert!(e.contains("nothing to shrink"), "{e}");
}

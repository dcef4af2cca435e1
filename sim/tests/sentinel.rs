//! Sentinel scenarios in the simulator: they pass on fixed seeds, a run is reproducible, and the
//! planted sentinel bugs are caught. Sweeps of thousands of seeds are `cargo simrun-release
//! sweep scenarios/sentinel_*.toml --seeds 1..=1000 --jobs 2`.

#![cfg(madsim)]

use redsim_sim::run::{first_failing_seed, run_seed};
use redsim_sim::scenario::Scenario;
use redsim_sim::toylog::Bug;
use redsim_sim::world::WorldOptions;

const SCENARIOS: [(&str, &str); 3] = [
    ("sentinel_failover", include_str!("../../scenarios/sentinel_failover.toml")),
    ("sentinel_chaos", include_str!("../../scenarios/sentinel_chaos.toml")),
    ("sentinel_swarm", include_str!("../../scenarios/sentinel_swarm.toml")),
];

/// Seeds per scenario in CI.
const CI_SEEDS: u64 = 4;
/// The bar: each planted bug is caught within this many seeds of its scenario.
const BUG_SEED_BUDGET: u64 = 1_000;

fn scenario(name: &str) -> Scenario {
    let text = SCENARIOS.iter().find(|(n, _)| *n == name).expect("listed").1;
    Scenario::from_toml(text).expect("scenario in the repository is valid")
}

#[test]
fn sentinel_scenarios_pass_on_fixed_seeds() {
    for (name, _) in SCENARIOS {
        let s = scenario(name);
        for seed in 1..=CI_SEEDS {
            let out = run_seed(&s, seed, &WorldOptions::default());
            assert!(
                out.passed(),
                "{name} seed {seed} failed: panic {:?}, findings {:#?}",
                out.panic,
                out.verdict.findings
            );
            let r = &out.history.sentinel;
            assert!(!r.elected.is_empty(), "{name} seed {seed}: no sentinel was elected: {}", out.summary_line());
            // Every election has its time from the winner's log (report.html marks it).
            let timed: Vec<(String, u64)> = r.elected_us.iter().map(|&(_, s, e)| (format!("s{s}"), e)).collect();
            assert_eq!(timed, r.elected, "{name} seed {seed}");
            assert!(!out.history.repl.promotions.is_empty(), "{name} seed {seed}: the master never moved");
            assert_ne!(out.history.repl.final_master, 0, "{name} seed {seed}: the killed master is still the master");
        }
    }
}

/// A promoted replica that is killed comes back a master: the sentinel's CONFIG REWRITE put
/// its new role in its redis.conf. (Seed 8 of sentinel_swarm kills n2 at 50.5 s, 35 s after
/// its promotion; when nodes had no config file it came back a replica of its old master and
/// the service refused writes until the next failover, a liveness finding.)
#[test]
fn a_promoted_node_restarted_keeps_its_role_from_its_rewritten_config() {
    let out = run_seed(&scenario("sentinel_swarm"), 8, &WorldOptions::default());
    assert!(out.passed(), "{:#?}", out.verdict.findings);
    let repl = &out.history.repl;
    let lines = out.trace.lines();
    let mut checked = 0;
    for &(node, at_us) in &repl.restarts {
        let master_then = repl.promotions.iter().rfind(|p| p.end_us < at_us).map(|p| p.node);
        if master_then != Some(node) {
            continue;
        }
        let ready = lines
            .iter()
            .skip_while(|l| !l.contains(&format!("n{node} start (incarnation")) || trace_us(l) < at_us)
            .find(|l| l.contains(&format!("n{node} log: ")) && l.ends_with("Ready to accept connections"))
            .expect("the restarted node starts");
        assert!(ready.contains(":M "), "n{node} restarted at {at_us} µs as a replica: {ready}");
        checked += 1;
    }
    assert!(checked > 0, "no master was restarted in this run: {:?} {:?}", repl.restarts, repl.promotions);
    assert!(lines.iter().any(|l| l.contains("CONFIG REWRITE executed with success")));
}

fn trace_us(line: &str) -> u64 {
    let secs = line.trim_start_matches('[').split(']').next().unwrap_or("").trim();
    (secs.parse::<f64>().unwrap_or(0.0) * 1e6) as u64
}

#[test]
fn a_sentinel_run_is_deterministic() {
    let s = scenario("sentinel_failover");
    let (a, b) = (run_seed(&s, 3, &WorldOptions::default()), run_seed(&s, 3, &WorldOptions::default()));
    assert_eq!(a.trace_hash(), b.trace_hash());
    assert_eq!(a.trace.lines(), b.trace.lines());
}

/// Each planted sentinel bug is caught; prints the table of seeds needed
/// (`cargo simtest -p redsim-sim --test sentinel -- --nocapture`).
#[test]
fn planted_sentinel_bugs_are_caught() {
    let cases = [
        (Bug::SentinelVotesTwice, "sentinel_failover"),
        (Bug::SentinelVotesTwice, "sentinel_chaos"),
        (Bug::FailoverPicksLowestOffset, "sentinel_failover"),
    ];
    println!("{:<30} {:<20} {:>6}  first finding", "bug", "scenario", "seeds");
    for (bug, name) in cases {
        let out = first_failing_seed(&scenario(name), &WorldOptions { bug: Some(bug) }, BUG_SEED_BUDGET, 1)
            .unwrap_or_else(|| panic!("{} survived {BUG_SEED_BUDGET} seeds of {name}", bug.name()));
        assert!(out.panic.is_none(), "{} on {name} seed {}: panic {:?}", bug.name(), out.seed, out.panic);
        let why = out.verdict.findings.first().map(|f| f.message.clone()).unwrap_or_default();
        println!("{:<30} {:<20} {:>6}  {why}", bug.name(), name, out.seed);
    }
}

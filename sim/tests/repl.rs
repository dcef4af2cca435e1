//! Replication under the simulator: every replication scenario on a few fixed seeds, the
//! determinism of one of them, and the planted replication bugs each caught by a scenario.

#![cfg(madsim)]

use redsim_sim::history::Outcome;
use redsim_sim::run::{first_failing_seed, run_seed};
use redsim_sim::scenario::Scenario;
use redsim_sim::toylog::Bug;
use redsim_sim::world::WorldOptions;

const SCENARIOS: [(&str, &str); 9] = [
    ("repl_partition_short", include_str!("../../scenarios/repl_partition_short.toml")),
    ("repl_partition_long", include_str!("../../scenarios/repl_partition_long.toml")),
    ("repl_disk_sync", include_str!("../../scenarios/repl_disk_sync.toml")),
    ("repl_replica_restart", include_str!("../../scenarios/repl_replica_restart.toml")),
    ("repl_promote", include_str!("../../scenarios/repl_promote.toml")),
    ("repl_demote_divergent", include_str!("../../scenarios/repl_demote_divergent.toml")),
    ("repl_chain", include_str!("../../scenarios/repl_chain.toml")),
    ("repl_wait_promote", include_str!("../../scenarios/repl_wait_promote.toml")),
    ("repl_failover_command", include_str!("../../scenarios/repl_failover_command.toml")),
];

/// Seeds per scenario in CI; `cargo simrun-release sweep` runs thousands.
const CI_SEEDS: u64 = 8;

/// The bar: each planted bug is caught within this many seeds of its scenario.
const BUG_SEED_BUDGET: u64 = 1_000;

fn scenario(name: &str) -> Scenario {
    let text = SCENARIOS.iter().find(|(n, _)| *n == name).expect("listed").1;
    Scenario::from_toml(text).expect("scenario in the repository is valid")
}

#[test]
fn replication_scenarios_pass_on_fixed_seeds() {
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
            assert_eq!(
                out.history.repl.probes.len(),
                s.topology.nodes as usize,
                "{name} seed {seed}: every node probed"
            );
        }
    }
}

#[test]
fn a_replication_run_is_deterministic() {
    let s = scenario("repl_promote");
    let (a, b) = (run_seed(&s, 5, &WorldOptions::default()), run_seed(&s, 5, &WorldOptions::default()));
    assert_eq!(a.trace_hash(), b.trace_hash());
    assert_eq!(a.trace.lines(), b.trace.lines());
    assert_eq!(a.history.repl.promotions.len(), 2, "both failovers took place: {}", a.summary_line());
}

/// Each planted replication bug is caught by the scenario built for it; prints the table of
/// seeds needed (`cargo simtest -p redsim-sim --test repl -- --nocapture`).
#[test]
fn planted_replication_bugs_are_caught_by_their_scenarios() {
    let cases = [
        (Bug::ReplBacklogOffByOne, "repl_partition_short"),
        (Bug::ReplBacklogOffByOne, "repl_replica_restart"),
        (Bug::PsyncStaleReplid, "repl_demote_divergent"),
        (Bug::ReplicaExpiresKeys, "repl_partition_short"),
    ];
    println!("{:<26} {:<24} {:>6}  first finding", "bug", "scenario", "seeds");
    for (bug, name) in cases {
        let out = first_failing_seed(&scenario(name), &WorldOptions { bug: Some(bug) }, BUG_SEED_BUDGET, 1)
            .unwrap_or_else(|| panic!("{} survived {BUG_SEED_BUDGET} seeds of {name}", bug.name()));
        assert!(out.panic.is_none(), "{} on {name} seed {}: panic {:?}", bug.name(), out.seed, out.panic);
        let why = out.verdict.findings.first().map(|f| f.checker.clone()).unwrap_or_default();
        println!("{:<26} {:<24} {:>6}  {why}", bug.name(), name, out.seed);
    }
}

fn min_replicas_scenario() -> Scenario {
    Scenario::from_toml(include_str!("../../scenarios/repl_min_replicas.toml")).expect("valid")
}

/// With both replicas' links cut, the master refuses writes (NOREPLICAS) from shortly after
/// each cut, in time for the `min_replicas` checker; the world records each directed cut.
#[test]
fn repl_min_replicas_passes_and_the_master_refuses_writes_during_the_cuts() {
    let s = min_replicas_scenario();
    for seed in [1, 2] {
        let out = run_seed(&s, seed, &WorldOptions::default());
        assert!(out.passed(), "seed {seed} failed: panic {:?}, findings {:#?}", out.panic, out.verdict.findings);
        let refused = out
            .history
            .ops
            .iter()
            .filter(|o| matches!(&o.outcome, Outcome::Fail(e) if e.starts_with("NOREPLICAS")))
            .count();
        assert!(refused > 0, "seed {seed}: no write was refused: {}", out.summary_line());
        // Two cuts of two replicas' links, both directions each.
        assert_eq!(out.history.reach.link_cuts.len(), 8, "seed {seed}: {:?}", out.history.reach.link_cuts);
    }
}

/// A master that never refuses for lack of good replicas is caught by `min_replicas`; prints
/// the seeds needed (`cargo simtest -p redsim-sim --test repl -- --nocapture`).
#[test]
fn a_master_ignoring_min_replicas_is_caught_by_repl_min_replicas() {
    let bug = Bug::MinReplicasIgnored;
    let out = first_failing_seed(&min_replicas_scenario(), &WorldOptions { bug: Some(bug) }, BUG_SEED_BUDGET, 1)
        .unwrap_or_else(|| panic!("{} survived {BUG_SEED_BUDGET} seeds of repl_min_replicas", bug.name()));
    assert!(out.panic.is_none(), "seed {}: panic {:?}", out.seed, out.panic);
    let found = out.verdict.findings.iter().find(|f| f.checker == "min_replicas");
    assert!(found.is_some(), "seed {}: caught by another checker: {:#?}", out.seed, out.verdict.findings);
    println!("{} repl_min_replicas: caught on seed {}", bug.name(), out.seed);
}

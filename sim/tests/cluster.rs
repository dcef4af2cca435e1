//! Cluster scenarios in the simulator: they pass on fixed seeds with the moves and the
//! failover they were written for, a run is reproducible, and the planted cluster bug is
//! caught. Sweeps are `cargo simrun-release sweep scenarios/cluster_*.toml --seeds 1..1001
//! --jobs 2`.

#![cfg(madsim)]

use redsim_sim::run::{first_failing_seed, run_seed};
use redsim_sim::scenario::Scenario;
use redsim_sim::toylog::Bug;
use redsim_sim::world::WorldOptions;

const SCENARIOS: [(&str, &str); 2] = [
    ("cluster_reshard", include_str!("../../scenarios/cluster_reshard.toml")),
    ("cluster_failover", include_str!("../../scenarios/cluster_failover.toml")),
];

/// Seeds per scenario in CI.
const CI_SEEDS: u64 = 2;
/// The bar: each planted bug is caught within this many seeds of its scenario.
const BUG_SEED_BUDGET: u64 = 1_000;

fn scenario(name: &str) -> Scenario {
    let text = SCENARIOS.iter().find(|(n, _)| *n == name).expect("listed").1;
    Scenario::from_toml(text).expect("scenario in the repository is valid")
}

#[test]
fn cluster_scenarios_pass_on_fixed_seeds() {
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
            let c = &out.history.cluster;
            assert_eq!(c.probes.len(), s.topology.nodes as usize, "{name} seed {seed}: every node probed");
            let done = c.reshards.iter().filter(|r| r.outcome == "done").count();
            assert!(done > 0, "{name} seed {seed}: no slot moved: {:?}", c.reshards);
            if name == "cluster_failover" {
                // n0's replica took over when n0 was killed (the second kill may promote
                // another); n0 came back and rejoined, holding no slots of its own.
                assert_eq!(c.promotions.first().map(|p| p.1), Some(3), "{name} seed {seed}: {:?}", c.promotions);
                let n0 = c.probes.iter().find(|p| p.node == 0).expect("probed");
                assert!(n0.error.is_none() && n0.master.is_some(), "{name} seed {seed}: n0 is a replica: {n0:?}");
            }
        }
    }
}

#[test]
fn a_cluster_run_is_deterministic() {
    let s = scenario("cluster_reshard");
    let (a, b) = (run_seed(&s, 3, &WorldOptions::default()), run_seed(&s, 3, &WorldOptions::default()));
    assert_eq!(a.trace_hash(), b.trace_hash());
    assert_eq!(a.trace.lines(), b.trace.lines());
}

/// The planted cluster bug is caught by slot_ownership; prints the seeds needed
/// (`cargo simtest -p redsim-sim --test cluster -- --nocapture`).
#[test]
fn planted_cluster_bug_is_caught() {
    let cases = [(Bug::ClusterServesLostSlot, "cluster_reshard")];
    println!("{:<26} {:<20} {:>6}  first finding", "bug", "scenario", "seeds");
    for (bug, name) in cases {
        let out = first_failing_seed(&scenario(name), &WorldOptions { bug: Some(bug) }, BUG_SEED_BUDGET, 1)
            .unwrap_or_else(|| panic!("{} survived {BUG_SEED_BUDGET} seeds of {name}", bug.name()));
        assert!(out.panic.is_none(), "{} on {name} seed {}: panic {:?}", bug.name(), out.seed, out.panic);
        let why = out.verdict.findings.iter().find(|f| f.checker == "slot_ownership").map(|f| &f.message);
        let why =
            why.unwrap_or_else(|| panic!("{} on {name} seed {}: slot_ownership saw nothing", bug.name(), out.seed));
        println!("{:<26} {:<20} {:>6}  {why}", bug.name(), name, out.seed);
    }
}

//! redsim-sim: the deterministic simulation testbed. The real redsim node code runs on madsim
//! nodes behind [`env::SimEnv`]; workload clients record a history while the nemesis injects
//! the scenario's faults; checkers judge the history; every run ends with a trace hash that a
//! replay must reproduce.
//!
//! Scenario parsing, fault planning and the checkers compile in both builds (their unit tests
//! run under plain `cargo test`); the world, the runner and the reports exist only in the
//! simulator build (`--cfg madsim`, `cargo simtest` / `cargo simrun`).

pub mod checkers;
pub mod env;
pub mod faults;
pub mod history;
pub mod scenario;
pub mod toylog;
pub mod trace;
pub mod workload;

#[cfg(madsim)]
pub mod clusterworld;
#[cfg(madsim)]
pub mod replworld;
#[cfg(madsim)]
pub mod report;
#[cfg(madsim)]
pub mod run;
#[cfg(madsim)]
pub mod sentinelworld;
#[cfg(madsim)]
pub mod shrink;
#[cfg(madsim)]
pub mod world;

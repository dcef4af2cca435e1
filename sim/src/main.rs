//! `redsim-sim`: run one seed of a scenario, sweep many, or replay a report.
//!
//! Exit codes: 0 pass (replay: identical trace), 1 checker failure (replay: the trace
//! differs), 2 bad input or the wrong build.

#[cfg(not(madsim))]
fn main() {
    eprintln!(
        "redsim-sim needs the simulator build (--cfg madsim); run it with `cargo simrun <args>`, e.g.\n  \
         cargo simrun run scenarios/standalone_chaos.toml --seed 1"
    );
    std::process::exit(2);
}

#[cfg(madsim)]
mod cli;

#[cfg(madsim)]
fn main() {
    std::process::exit(cli::main());
}

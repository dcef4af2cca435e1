//! The command line of the simulator build.

#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use clap::{Parser, Subcommand};
use redsim_sim::faults;
use redsim_sim::report;
use redsim_sim::run::{run_seed, sweep, RunOutcome, SeedResult};
use redsim_sim::scenario::{Scenario, Service};
use redsim_sim::toylog::Bug;
use redsim_sim::trace::hash_hex;
use redsim_sim::world::WorldOptions;

const EXIT_PASS: i32 = 0;
const EXIT_FAIL: i32 = 1;
const EXIT_BAD_INPUT: i32 = 2;

/// Findings printed on the terminal; the report has them all.
const PRINTED_FINDINGS: usize = 5;

#[derive(Parser)]
#[command(name = "redsim-sim", about = "Deterministic simulation of redsim under faults")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one seed of a scenario and write its report.
    Run {
        scenario: PathBuf,
        #[arg(long, value_parser = parse_seed)]
        seed: u64,
        /// Plant a known bug (simulator only): skip-fsync.
        #[arg(long)]
        bug: Option<String>,
        #[arg(long, default_value = "reports")]
        reports_dir: PathBuf,
    },
    /// Run a range of seeds (A..B, or A..=B) and summarize the failing ones.
    Sweep {
        scenario: PathBuf,
        #[arg(long)]
        seeds: String,
        /// Seeds run at once, each on its own thread.
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        #[arg(long)]
        bug: Option<String>,
        #[arg(long, default_value = "reports")]
        reports_dir: PathBuf,
    },
    /// Re-run a report's scenario and seed and check that the trace hash is the same.
    Replay { report: PathBuf },
}

fn parse_seed(s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    r.map_err(|e| format!("seed {s:?}: {e}"))
}

fn parse_seeds(s: &str) -> Result<std::ops::Range<u64>, String> {
    let (a, b, inclusive) = if let Some((a, b)) = s.split_once("..=") {
        (a, b, true)
    } else if let Some((a, b)) = s.split_once("..") {
        (a, b, false)
    } else {
        return Err(format!("--seeds {s:?}: expected A..B or A..=B"));
    };
    let (a, b) = (parse_seed(a)?, parse_seed(b)?);
    let end = if inclusive { b.saturating_add(1) } else { b };
    if a >= end {
        return Err(format!("--seeds {s:?}: empty range"));
    }
    Ok(a..end)
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_BAD_INPUT } else { EXIT_PASS };
        }
    };
    let result = match cli.cmd {
        Cmd::Run { scenario, seed, bug, reports_dir } => cmd_run(&scenario, seed, bug.as_deref(), &reports_dir),
        Cmd::Sweep { scenario, seeds, jobs, bug, reports_dir } => {
            cmd_sweep(&scenario, &seeds, jobs, bug.as_deref(), &reports_dir)
        }
        Cmd::Replay { report } => cmd_replay(&report),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("redsim-sim: {e}");
            EXIT_BAD_INPUT
        }
    }
}

fn load(path: &Path, bug: Option<&str>) -> Result<(Scenario, WorldOptions), String> {
    let s = Scenario::load(path).map_err(|e| e.to_string())?;
    let bug = match bug {
        None => None,
        Some(b) => Some(Bug::parse(b).ok_or_else(|| format!("--bug {b:?}: known bugs: skip-fsync"))?),
    };
    if bug.is_some() && s.topology.service != Service::Toylog {
        return Err(format!(
            "--bug skip-fsync plants a bug in the toy log; scenario {} runs {:?}",
            s.name, s.topology.service
        ));
    }
    Ok((s, WorldOptions { bug }))
}

fn print_findings(out: &RunOutcome) {
    if let Some(p) = &out.panic {
        println!("  panic: {p}");
    }
    for f in out.verdict.findings.iter().take(PRINTED_FINDINGS) {
        println!("  [{}] {}", f.checker, f.message);
    }
    if out.verdict.findings.len() > PRINTED_FINDINGS {
        println!("  … {} more in the report", out.verdict.findings.len() - PRINTED_FINDINGS);
    }
    for i in &out.verdict.inconclusive {
        println!("  inconclusive: {i}");
    }
}

fn cmd_run(path: &Path, seed: u64, bug: Option<&str>, reports_dir: &Path) -> Result<i32, String> {
    let (s, opts) = load(path, bug)?;
    println!("scenario {} seed {seed}{}", s.name, bug.map(|b| format!(" bug {b}")).unwrap_or_default());
    for c in faults::plan(&s, seed).choices {
        println!("  seed chose: {c}");
    }
    let out = run_seed(&s, seed, &opts);
    println!("{}", out.summary_line());
    println!("verdict: {}", if out.passed() { "PASS" } else { "FAIL" });
    print_findings(&out);
    println!("trace hash: {}", hash_hex(out.trace_hash()));
    let json = report::write(&out, &s, Some(&path.display().to_string()), reports_dir)
        .map_err(|e| format!("writing the report: {e}"))?;
    println!("report: {}", json.display());
    println!("replay: {}", report::replay_command(&json));
    Ok(if out.passed() { EXIT_PASS } else { EXIT_FAIL })
}

fn cmd_sweep(path: &Path, seeds: &str, jobs: usize, bug: Option<&str>, reports_dir: &Path) -> Result<i32, String> {
    let (s, opts) = load(path, bug)?;
    let range = parse_seeds(seeds)?;
    let total = range.end - range.start;
    println!("sweep {} seeds {}..{} on {jobs} threads", s.name, range.start, range.end);
    let started = Instant::now();
    let done = AtomicUsize::new(0);
    let failing = AtomicUsize::new(0);
    let report_paths = Mutex::new(std::collections::BTreeMap::new());
    let path_text = path.display().to_string();
    let tty = std::io::stderr().is_terminal();
    let on_done = |r: &SeedResult, out: &RunOutcome| {
        if !r.passed {
            failing.fetch_add(1, Ordering::Relaxed);
            if let Ok(p) = report::write(out, &s, Some(&path_text), reports_dir) {
                report_paths.lock().unwrap_or_else(|e| e.into_inner()).insert(r.seed, p);
            }
        }
        let n = done.fetch_add(1, Ordering::Relaxed) + 1;
        // A terminal gets one line rewritten in place; a log gets a line per tenth.
        let line = format!(
            "  {n}/{total} seeds, {} failing, {:.0}s wall",
            failing.load(Ordering::Relaxed),
            started.elapsed().as_secs_f64()
        );
        if tty {
            eprint!("\r{line}");
            let _ = std::io::stderr().flush();
        } else if (n as u64).is_multiple_of(total.div_ceil(10)) {
            eprintln!("{line}");
        }
    };
    let results = sweep(&s, range, jobs, &opts, &on_done);
    if tty {
        eprintln!();
    }
    let wall = started.elapsed().as_secs_f64();
    let sim: f64 = results.values().map(|r| r.sim_secs).sum();
    let failed: Vec<&SeedResult> = results.values().filter(|r| !r.passed).collect();
    println!(
        "{} seeds: {} passed, {} failed; simulated {sim:.0}s in {wall:.1}s wall ({:.0}x)",
        results.len(),
        results.len() - failed.len(),
        failed.len(),
        sim / wall.max(1e-9)
    );
    let paths = report_paths.into_inner().unwrap_or_else(|e| e.into_inner());
    for r in &failed {
        println!("  seed {}: {}", r.seed, r.first_finding.as_deref().unwrap_or("failed"));
        if let Some(p) = paths.get(&r.seed) {
            println!("    {}", report::replay_command(p));
        }
    }
    Ok(if failed.is_empty() { EXIT_PASS } else { EXIT_FAIL })
}

fn cmd_replay(path: &Path) -> Result<i32, String> {
    let r = report::read(path)?;
    let bug = match r.bug.as_deref() {
        None => None,
        Some(b) => Some(Bug::parse(b).ok_or_else(|| format!("{}: unknown bug {b:?}", path.display()))?),
    };
    println!(
        "replay {} seed {}{}",
        r.scenario.name,
        r.seed,
        r.bug.as_deref().map(|b| format!(" bug {b}")).unwrap_or_default()
    );
    let out = run_seed(&r.scenario, r.seed, &WorldOptions { bug });
    println!("{}", out.summary_line());
    println!(
        "verdict: {} (recorded: {})",
        if out.passed() { "PASS" } else { "FAIL" },
        if r.passed { "PASS" } else { "FAIL" }
    );
    print_findings(&out);
    let hash = hash_hex(out.trace_hash());
    if hash == r.trace_hash {
        println!("trace hash: {hash}, identical to the report's");
        Ok(EXIT_PASS)
    } else {
        println!("trace hash: {hash}, the report has {}: the run is NOT reproducible", r.trace_hash);
        Ok(EXIT_FAIL)
    }
}

//! The command line of the simulator build.
//!
//! Exit codes: 0 pass, 1 checker failure, 2 bad input (`shrink` of a passing seed included).

#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use redsim_sim::faults;
use redsim_sim::report;
use redsim_sim::report::index::{one_line, SweepSummary};
use redsim_sim::run::{run_seed, sweep, RunOutcome, SeedResult};
use redsim_sim::scenario::Scenario;
use redsim_sim::shrink;
use redsim_sim::toylog::Bug;
use redsim_sim::trace::hash_hex;
use redsim_sim::world::WorldOptions;

const EXIT_PASS: i32 = 0;
const EXIT_FAIL: i32 = 1;
const EXIT_BAD_INPUT: i32 = 2;

/// Findings printed on the terminal; the report has them all.
const PRINTED_FINDINGS: usize = 5;

/// Passing seeds of a sweep (the first of its range) that still get a full report, as
/// examples of what passing looks like.
const SWEEP_KEPT_PASSING: usize = 3;

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
        /// Plant a known bug (simulator only; `redsim-sim bugs` lists them): skip-fsync,
        /// aof-skip-fsync, aof-ignore-fsync-error, repl-backlog-off-by-one, psync-stale-replid,
        /// replica-expires-keys, sentinel-votes-twice, failover-picks-lowest-offset,
        /// cluster-serves-lost-slot, min-replicas-ignored.
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
    /// Re-run a report's scenario and seed and check that the trace hash is the same. Given
    /// several reports, or directories (searched for report.json, e.g. a sweep's reports),
    /// replays them all and lists those that differ.
    Replay {
        #[arg(required = true)]
        reports: Vec<PathBuf>,
        /// Reports replayed at once, each on its own thread (several reports only).
        #[arg(long, default_value_t = 1)]
        jobs: usize,
    },
    /// Reduce a failing seed's faults and run time to a small scenario that still fails, and
    /// write it as a new scenario file.
    Shrink {
        scenario: PathBuf,
        #[arg(long, value_parser = parse_seed)]
        seed: u64,
        #[arg(long)]
        bug: Option<String>,
        /// Where the shrunk scenario goes, as `<name>-seed<N>.toml`.
        #[arg(long, default_value = "scenarios/shrunk")]
        out_dir: PathBuf,
        /// Simulated runs the search may spend.
        #[arg(long, default_value_t = shrink::DEFAULT_MAX_RUNS)]
        max_runs: usize,
    },
    /// The planted-bug table: for each bug of the catalogue and each scenario written to catch
    /// it, the first seed (from 1) on which the scenario fails with the bug planted. Exit 1 if
    /// some bug survives the budget.
    Bugs {
        /// Where the catalogue's scenarios are.
        #[arg(long, default_value = "scenarios")]
        dir: PathBuf,
        /// Seeds tried per (bug, scenario) before giving up.
        #[arg(long, default_value_t = 1000)]
        budget: u64,
        /// Seeds run at once, each on its own thread.
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// Only the bugs whose name contains this.
        #[arg(long)]
        only: Option<String>,
    },
    /// List the scenarios of a directory with their descriptions.
    List {
        #[arg(default_value = "scenarios")]
        dir: PathBuf,
    },
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
        Cmd::Bugs { dir, budget, jobs, only } => cmd_bugs(&dir, budget, jobs, only.as_deref()),
        Cmd::Sweep { scenario, seeds, jobs, bug, reports_dir } => {
            cmd_sweep(&scenario, &seeds, jobs, bug.as_deref(), &reports_dir)
        }
        Cmd::Replay { reports, jobs } => match reports.as_slice() {
            [one] if one.is_file() => cmd_replay(one),
            _ => cmd_replay_many(&reports, jobs),
        },
        Cmd::Shrink { scenario, seed, bug, out_dir, max_runs } => {
            cmd_shrink(&scenario, seed, bug.as_deref(), &out_dir, max_runs)
        }
        Cmd::List { dir } => cmd_list(&dir),
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
        Some(b) => Some(Bug::parse(b).ok_or_else(|| format!("--bug {b:?}: known bugs: {}", Bug::NAMES))?),
    };
    if let Some(b) = bug.filter(|b| b.service() != s.topology.service) {
        return Err(format!(
            "--bug {} plants a bug in {:?}; scenario {} runs {:?}",
            b.name(),
            b.service(),
            s.name,
            s.topology.service
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

fn cmd_bugs(dir: &Path, budget: u64, jobs: usize, only: Option<&str>) -> Result<i32, String> {
    let (mut pairs, mut caught, mut seeds_needed) = (0, 0, 0);
    println!("{:<30} {:<22} {:>6}  first finding", "bug", "scenario", "seeds");
    for (bug, name) in Bug::CATALOGUE.into_iter().filter(|(b, _)| only.is_none_or(|o| b.name().contains(o))) {
        let path = dir.join(format!("{name}.toml"));
        let (s, opts) = load(&path, Some(bug.name()))?;
        let started = Instant::now();
        let first = redsim_sim::run::first_failing_seed(&s, &opts, budget, jobs);
        let (seeds, why) = match &first {
            Some(out) => {
                caught += 1;
                seeds_needed += out.seed;
                let why = out
                    .panic
                    .as_ref()
                    .map(|p| format!("panic: {p}"))
                    .or_else(|| out.verdict.findings.first().map(|f| format!("{}: {}", f.checker, f.message)))
                    .unwrap_or_default();
                (out.seed.to_string(), why.chars().take(100).collect::<String>())
            }
            None => (format!(">{budget}"), "never caught".to_string()),
        };
        pairs += 1;
        println!("{:<30} {:<22} {:>6}  {why} ({:.1}s)", bug.name(), name, seeds, started.elapsed().as_secs_f64());
    }
    println!("{pairs} bug × scenario pairs, {caught} caught within {budget} seeds; {seeds_needed} seeds needed in all");
    Ok(if caught == pairs { EXIT_PASS } else { EXIT_FAIL })
}

fn cmd_sweep(path: &Path, seeds: &str, jobs: usize, bug: Option<&str>, reports_dir: &Path) -> Result<i32, String> {
    let (s, opts) = load(path, bug)?;
    let range = parse_seeds(seeds)?;
    let total = range.end - range.start;
    println!("sweep {} seeds {}..{} on {jobs} threads", s.name, range.start, range.end);
    let started = Instant::now();
    let done = AtomicUsize::new(0);
    let failing = AtomicUsize::new(0);
    let reported = Mutex::new(BTreeSet::new());
    let path_text = path.display().to_string();
    let tty = std::io::stderr().is_terminal();
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} seeds, {msg} failing, {elapsed} elapsed, ETA {eta}")
            .map_err(|e| e.to_string())?,
    );
    bar.set_message("0");
    let keep_passing_below = range.start.saturating_add(SWEEP_KEPT_PASSING as u64);
    let on_done = |r: &SeedResult, out: &RunOutcome| {
        if !r.passed {
            let f = failing.fetch_add(1, Ordering::Relaxed) + 1;
            bar.set_message(f.to_string());
            bar.println(format!("  seed {} FAIL: {}", r.seed, one_line(r)));
        }
        if (!r.passed || r.seed < keep_passing_below) && report::write(out, &s, Some(&path_text), reports_dir).is_ok() {
            reported.lock().unwrap_or_else(|e| e.into_inner()).insert(r.seed);
        }
        bar.inc(1);
        let n = done.fetch_add(1, Ordering::Relaxed) + 1;
        // indicatif draws nothing when stderr is not a terminal: a log gets a line per tenth.
        if !tty && (n as u64).is_multiple_of(total.div_ceil(10)) {
            eprintln!(
                "  {n}/{total} seeds, {} failing, {:.0}s wall",
                failing.load(Ordering::Relaxed),
                started.elapsed().as_secs_f64()
            );
        }
    };
    let results = sweep(&s, range.clone(), jobs, &opts, &on_done);
    bar.finish_and_clear();
    let reported = reported.into_inner().unwrap_or_else(|e| e.into_inner());
    let summary = SweepSummary {
        scenario: &s.name,
        seeds: range,
        bug,
        jobs,
        wall_secs: started.elapsed().as_secs_f64(),
        results: &results,
        reported: &reported,
        kept_passing: SWEEP_KEPT_PASSING,
    };
    print_sweep(&summary, &results, reports_dir, &s.name);
    let index_dir = reports_dir.join(&s.name).join(summary.dir_name());
    std::fs::create_dir_all(&index_dir)
        .and_then(|()| std::fs::write(index_dir.join("index.md"), summary.markdown()))
        .and_then(|()| std::fs::write(index_dir.join("index.html"), summary.html()))
        .map_err(|e| format!("writing the sweep index: {e}"))?;
    println!("index: {}", index_dir.join("index.html").display());
    let failed = results.values().any(|r| !r.passed);
    Ok(if failed { EXIT_FAIL } else { EXIT_PASS })
}

fn print_sweep(summary: &SweepSummary, results: &BTreeMap<u64, SeedResult>, reports_dir: &Path, name: &str) {
    let failed: Vec<&SeedResult> = results.values().filter(|r| !r.passed).collect();
    let sim: f64 = results.values().map(|r| r.sim_secs).sum();
    let wall = summary.wall_secs.max(1e-9);
    println!(
        "{} seeds: {} passed, {} failed; simulated {sim:.0}s in {:.1}s wall ({:.0}x, {:.1} seeds/s on {} threads)",
        results.len(),
        results.len() - failed.len(),
        failed.len(),
        summary.wall_secs,
        sim / wall,
        results.len() as f64 / wall,
        summary.jobs
    );
    for r in &failed {
        println!("  seed {}: {}", r.seed, one_line(r));
        if summary.reported.contains(&r.seed) {
            let json = reports_dir.join(name).join(r.seed.to_string()).join("report.json");
            println!("    {}", report::replay_command(&json));
        }
    }
}

fn cmd_shrink(path: &Path, seed: u64, bug: Option<&str>, out_dir: &Path, max_runs: usize) -> Result<i32, String> {
    let (s, opts) = load(path, bug)?;
    let started = Instant::now();
    println!("shrink {} seed {seed}{}", s.name, bug.map(|b| format!(" bug {b}")).unwrap_or_default());
    let shrunk = shrink::shrink(&s, seed, &opts, max_runs)?;
    let out = out_dir.join(format!("{}-seed{seed}.toml", s.name));
    let bug_arg = bug.map(|b| format!(" --bug {b}")).unwrap_or_default();
    let command = format!("redsim-sim shrink {} --seed {seed}{bug_arg}", path.display());
    let text = shrink::to_toml(&shrunk, seed, &command, &out.display().to_string(), bug)?;
    std::fs::create_dir_all(out_dir)
        .and_then(|()| std::fs::write(&out, text))
        .map_err(|e| format!("{}: {e}", out.display()))?;
    println!(
        "{} faults -> {}, duration_ms {} -> {}, clients {} -> {}, in {} runs ({:.1}s wall)",
        shrunk.faults_before,
        shrunk.faults_after,
        shrunk.duration_before_ms,
        shrunk.scenario.duration_ms,
        shrunk.clients_before,
        shrunk.scenario.workload.clients,
        shrunk.runs,
        started.elapsed().as_secs_f64()
    );
    for f in &shrunk.scenario.faults.schedule {
        println!("  fault: {} {} at {}ms for {}ms", f.fault.name(), f.target, f.at_ms, f.duration_ms);
    }
    println!("still fails: {}", shrunk.reason);
    println!("{}", out.display());
    Ok(EXIT_PASS)
}

fn cmd_list(dir: &Path) -> Result<i32, String> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    let mut bad = false;
    for p in paths {
        match Scenario::load(&p) {
            Ok(s) => {
                println!("{}  ({})", s.name, p.display());
                for line in s.description.trim().lines() {
                    println!("    {line}");
                }
            }
            Err(e) => {
                bad = true;
                println!("{}: invalid: {e}", p.display());
            }
        }
    }
    Ok(if bad { EXIT_BAD_INPUT } else { EXIT_PASS })
}

fn report_bug(path: &Path, r: &report::ReportJson) -> Result<Option<Bug>, String> {
    match r.bug.as_deref() {
        None => Ok(None),
        Some(b) => Bug::parse(b).map(Some).ok_or_else(|| format!("{}: unknown bug {b:?}", path.display())),
    }
}

fn cmd_replay(path: &Path) -> Result<i32, String> {
    let r = report::read(path)?;
    let bug = report_bug(path, &r)?;
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

/// Every report.json named by `paths`: files as given, directories searched recursively,
/// in path order.
fn find_reports(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
        let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries {
            let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
            if path.is_dir() {
                walk(&path, out)?;
            } else if path.file_name().is_some_and(|n| n == "report.json") {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out)?;
        } else {
            out.push(p.clone());
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Replays many reports in one process, `jobs` at a time, as a sweep ran them: a run that
/// depends on the runs before it in the process shows up here.
fn cmd_replay_many(paths: &[PathBuf], jobs: usize) -> Result<i32, String> {
    let reports = find_reports(paths)?;
    if reports.is_empty() {
        return Err(format!(
            "no report.json under {}",
            paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        ));
    }
    let mut loaded = Vec::with_capacity(reports.len());
    for path in &reports {
        let r = report::read(path)?;
        let bug = report_bug(path, &r)?;
        loaded.push((path, r, bug));
    }
    println!("replay {} reports on {} threads", loaded.len(), jobs.max(1));
    let started = Instant::now();
    let bar = ProgressBar::new(loaded.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} reports, {msg} differ, {elapsed} elapsed, ETA {eta}")
            .map_err(|e| e.to_string())?,
    );
    bar.set_message("0");
    let next = AtomicUsize::new(0);
    let differ = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| loop {
                let Some((path, r, bug)) = loaded.get(next.fetch_add(1, Ordering::Relaxed)) else { return };
                let hash = hash_hex(run_seed(&r.scenario, r.seed, &WorldOptions { bug: *bug }).trace_hash());
                if hash != r.trace_hash {
                    let mut d = differ.lock().unwrap_or_else(|e| e.into_inner());
                    d.push(format!("  {}: trace hash {hash}, the report has {}", path.display(), r.trace_hash));
                    bar.set_message(d.len().to_string());
                }
                bar.inc(1);
            });
        }
    });
    bar.finish_and_clear();
    let mut differ = differ.into_inner().unwrap_or_else(|e| e.into_inner());
    differ.sort();
    println!(
        "{} reports: {} identical, {} differ ({:.1}s wall)",
        loaded.len(),
        loaded.len() - differ.len(),
        differ.len(),
        started.elapsed().as_secs_f64()
    );
    for line in &differ {
        println!("{line}");
    }
    Ok(if differ.is_empty() { EXIT_PASS } else { EXIT_FAIL })
}

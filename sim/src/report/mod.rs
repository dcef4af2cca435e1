//! Reports: `report.json` for machines (and `replay`), `report.md` for people, `report.html`
//! (a self-contained timeline), `trace.txt` with every line of the trace, under
//! `reports/<scenario>/<seed>/`.

#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

pub mod html;
pub mod index;

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::checkers::Finding;
use crate::faults;
use crate::history::Op;
use crate::run::RunOutcome;
use crate::scenario::Scenario;
use crate::trace::hash_hex;

pub const REPORT_FORMAT: u32 = 1;

/// Trace lines shown around each operation a finding names.
const EXCERPT_LINES: usize = 8;

/// Findings whose trace excerpts the Markdown shows; the rest are listed without.
const EXCERPTED_FINDINGS: usize = 3;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Stats {
    pub ops: usize,
    pub ok: usize,
    pub fail: usize,
    pub unknown: usize,
    pub simulated_secs: f64,
    pub wall_secs: f64,
    pub trace_lines: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReportJson {
    pub format: u32,
    pub scenario_path: Option<String>,
    pub scenario: Scenario,
    pub seed: u64,
    pub bug: Option<String>,
    pub passed: bool,
    pub trace_hash: String,
    pub choices: Vec<String>,
    pub panic: Option<String>,
    pub findings: Vec<Finding>,
    pub inconclusive: Vec<String>,
    pub notes: Vec<String>,
    /// The operations the findings name.
    pub involved_ops: Vec<Op>,
    pub stats: Stats,
    pub replay: String,
    /// The fault plan as the nemesis applied it, for the timeline (absent in older reports).
    #[serde(default)]
    pub faults: Vec<FaultSpan>,
}

/// One planned fault on the timeline.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FaultSpan {
    pub at_ms: u64,
    pub duration_ms: u64,
    pub kind: crate::scenario::FaultKind,
    /// `node:N`, `client:N` or `-`.
    pub target: String,
    /// `split`: the machines of one side.
    #[serde(default)]
    pub group: Vec<String>,
    pub description: String,
    /// False when the nemesis skipped it (e.g. a kill of a node that was already down).
    pub applied: bool,
}

fn fault_spans(scenario: &Scenario, seed: u64, trace: &[String]) -> Vec<FaultSpan> {
    const SKIPPED: &str = "nemesis: skip (target not up) ";
    let skipped: std::collections::BTreeSet<&str> =
        trace.iter().filter_map(|l| l.split_once(SKIPPED).map(|(_, what)| what)).collect();
    faults::plan(scenario, seed)
        .faults
        .iter()
        .map(|f| {
            let description = f.describe();
            FaultSpan {
                at_ms: f.at_ms,
                duration_ms: f.duration_ms,
                kind: f.kind,
                target: f.target.to_string(),
                group: f.group.iter().map(|m| m.to_string()).collect(),
                applied: !skipped.contains(description.as_str()),
                description,
            }
        })
        .collect()
}

pub fn replay_command(report_json: &Path) -> String {
    format!("redsim-sim replay {}", report_json.display())
}

pub fn run_command(scenario_path: Option<&str>, name: &str, seed: u64, bug: Option<&str>) -> String {
    let path = scenario_path.map_or_else(|| format!("scenarios/{name}.toml"), str::to_string);
    let bug = bug.map(|b| format!(" --bug {b}")).unwrap_or_default();
    format!("redsim-sim run {path} --seed {seed}{bug}")
}

pub fn build(out: &RunOutcome, scenario: &Scenario, scenario_path: Option<&str>, json_path: &Path) -> ReportJson {
    let trace = out.trace.lines();
    let (ok, fail, unknown) = out.op_counts();
    let mut involved: Vec<usize> = out.verdict.findings.iter().flat_map(|f| f.ops.iter().copied()).collect();
    involved.sort_unstable();
    involved.dedup();
    ReportJson {
        format: REPORT_FORMAT,
        scenario_path: scenario_path.map(str::to_string),
        scenario: scenario.clone(),
        seed: out.seed,
        bug: out.bug.map(|b| b.name().to_string()),
        passed: out.passed(),
        trace_hash: hash_hex(out.trace_hash()),
        choices: out.choices.clone(),
        panic: out.panic.clone(),
        findings: out.verdict.findings.clone(),
        inconclusive: out.verdict.inconclusive.clone(),
        notes: out.verdict.notes.clone(),
        involved_ops: involved.iter().filter_map(|&i| out.history.ops.get(i).cloned()).collect(),
        stats: Stats {
            ops: out.history.ops.len(),
            ok,
            fail,
            unknown,
            simulated_secs: out.sim_secs(),
            wall_secs: out.wall.as_secs_f64(),
            trace_lines: out.trace.len(),
        },
        replay: replay_command(json_path),
        faults: fault_spans(scenario, out.seed, &trace),
    }
}

pub fn markdown(r: &ReportJson, trace: &[String]) -> String {
    let mut md = String::new();
    let verdict = if r.passed { "PASS" } else { "FAIL" };
    let _ = writeln!(md, "# {} seed {}: {verdict}\n", r.scenario.name, r.seed);
    if !r.scenario.description.is_empty() {
        let _ = writeln!(md, "{}\n", r.scenario.description.trim());
    }
    let _ = writeln!(md, "- trace hash: `{}`", r.trace_hash);
    if let Some(b) = &r.bug {
        let _ = writeln!(md, "- planted bug: `{b}`");
    }
    let s = &r.stats;
    let _ = writeln!(
        md,
        "- {} operations: {} ok, {} fail, {} unknown; {:.1} simulated s in {:.3} s wall; {} trace lines",
        s.ops, s.ok, s.fail, s.unknown, s.simulated_secs, s.wall_secs, s.trace_lines
    );
    let _ = writeln!(md, "- replay: `{}`", r.replay);
    let _ = writeln!(md, "- timeline: [report.html](report.html)");
    let _ = writeln!(
        md,
        "- run again: `{}`\n",
        run_command(r.scenario_path.as_deref(), &r.scenario.name, r.seed, r.bug.as_deref())
    );
    let _ = writeln!(md, "## What the seed chose\n");
    for c in &r.choices {
        let _ = writeln!(md, "- {c}");
    }
    if r.choices.is_empty() {
        let _ = writeln!(md, "- no faults");
    }
    let _ = writeln!(md, "\n## Checkers\n");
    for n in &r.notes {
        let _ = writeln!(md, "- {n}");
    }
    for i in &r.inconclusive {
        let _ = writeln!(md, "- inconclusive: {i}");
    }
    if let Some(p) = &r.panic {
        let _ = writeln!(md, "\n**panic:** `{p}`");
    }
    if r.findings.is_empty() && r.panic.is_none() {
        let _ = writeln!(md, "\nNo findings.");
    }
    for (i, f) in r.findings.iter().enumerate() {
        let _ = writeln!(md, "\n### Finding {} ({})\n\n{}\n", i + 1, f.checker, f.message);
        let ops = if i < EXCERPTED_FINDINGS { &f.ops[..] } else { &[] };
        for &op in ops {
            let excerpt = excerpt(trace, op);
            if !excerpt.is_empty() {
                let _ = writeln!(md, "Trace around op #{op}:\n\n```\n{}\n```", excerpt.join("\n"));
            }
        }
    }
    md
}

/// The trace lines around the line that records operation `op`.
fn excerpt(trace: &[String], op: usize) -> Vec<String> {
    let tag = format!(" #{op} ");
    let Some(at) = trace.iter().position(|l| l.contains(&tag)) else {
        return Vec::new();
    };
    let from = at.saturating_sub(EXCERPT_LINES);
    let to = (at + EXCERPT_LINES + 1).min(trace.len());
    trace[from..to].to_vec()
}

/// Writes `report.json`, `report.md`, `report.html` and `trace.txt`; returns the JSON path.
pub fn write(
    out: &RunOutcome,
    scenario: &Scenario,
    scenario_path: Option<&str>,
    reports_dir: &Path,
) -> io::Result<PathBuf> {
    let dir = reports_dir.join(&scenario.name).join(out.seed.to_string());
    std::fs::create_dir_all(&dir)?;
    let json_path = dir.join("report.json");
    let r = build(out, scenario, scenario_path, &json_path);
    let lines = out.trace.lines();
    std::fs::write(&json_path, serde_json::to_string_pretty(&r).map_err(io::Error::other)? + "\n")?;
    std::fs::write(dir.join("report.md"), markdown(&r, &lines))?;
    std::fs::write(dir.join("report.html"), html::render(&r, &out.history))?;
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(dir.join("trace.txt"), text)?;
    Ok(json_path)
}

pub fn read(path: &Path) -> Result<ReportJson, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let r: ReportJson = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    if r.format != REPORT_FORMAT {
        return Err(format!("{}: report format {} (this redsim-sim reads {REPORT_FORMAT})", path.display(), r.format));
    }
    r.scenario.validate().map_err(|e| format!("{}: embedded scenario: {e}", path.display()))?;
    Ok(r)
}

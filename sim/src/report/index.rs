//! A sweep's index, `reports/<scenario>/sweep-<A>-<B>/{index.md,index.html}`: every failing
//! seed with its one-line reason and a link to its report. Full reports are written only for
//! failing seeds and a few passing ones (a thousand passing reports would be disk spent on
//! nothing), and the index says so.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::ops::Range;

use super::html::escape;
use crate::run::SeedResult;

pub struct SweepSummary<'a> {
    pub scenario: &'a str,
    pub seeds: Range<u64>,
    pub bug: Option<&'a str>,
    pub jobs: usize,
    pub wall_secs: f64,
    pub results: &'a BTreeMap<u64, SeedResult>,
    /// Seeds whose full report was written, under `reports/<scenario>/<seed>/`.
    pub reported: &'a BTreeSet<u64>,
    /// How many passing seeds (the first of the range) got a report.
    pub kept_passing: usize,
}

impl SweepSummary<'_> {
    pub fn dir_name(&self) -> String {
        format!("sweep-{}-{}", self.seeds.start, self.seeds.end)
    }

    fn failing(&self) -> impl Iterator<Item = &SeedResult> {
        self.results.values().filter(|r| !r.passed)
    }

    fn headline(&self) -> String {
        let failed = self.failing().count();
        let sim: f64 = self.results.values().map(|r| r.sim_secs).sum();
        format!(
            "{} seeds ({}..{}), {} passed, {failed} failed; simulated {sim:.0}s in {:.1}s wall on {} threads{}",
            self.results.len(),
            self.seeds.start,
            self.seeds.end,
            self.results.len() - failed,
            self.wall_secs,
            self.jobs,
            self.bug.map(|b| format!("; planted bug {b}")).unwrap_or_default()
        )
    }

    fn disk_note(&self) -> String {
        format!(
            "Full reports exist only for the failing seeds and the first {} passing ones, to keep disk use small; \
             any other seed's report is one `redsim-sim run` away.",
            self.kept_passing
        )
    }

    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# Sweep of {}\n\n{}\n\n{}\n", self.scenario, self.headline(), self.disk_note());
        let _ = writeln!(md, "## Failing seeds\n");
        for r in self.failing() {
            let _ = writeln!(md, "- [seed {}](../{}/report.md): {}", r.seed, r.seed, one_line(r));
        }
        if self.failing().next().is_none() {
            let _ = writeln!(md, "None.");
        }
        let _ = writeln!(md, "\n## Passing seeds with reports\n");
        for r in self.results.values().filter(|r| r.passed && self.reported.contains(&r.seed)) {
            let _ = writeln!(md, "- [seed {}](../{}/report.md): trace hash `{:016x}`", r.seed, r.seed, r.trace_hash);
        }
        md
    }

    pub fn html(&self) -> String {
        let mut h = String::new();
        let title = format!("Sweep of {}", escape(self.scenario));
        let _ = writeln!(
            h,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
             <style>body {{ font: 14px/1.5 system-ui, sans-serif; margin: 16px; }} .f {{ color: #c62828; }} \
             td {{ padding: 1px 10px 1px 0; vertical-align: top; }}</style></head><body>"
        );
        let _ = writeln!(h, "<h1>{title}</h1><p>{}</p><p>{}</p>", escape(&self.headline()), escape(&self.disk_note()));
        let _ = writeln!(h, "<h2>Failing seeds</h2><table>");
        for r in self.failing() {
            let _ = writeln!(
                h,
                "<tr><td><a href=\"../{0}/report.html\">seed {0}</a></td><td class=\"f\">{1}</td></tr>",
                r.seed,
                escape(&one_line(r))
            );
        }
        let _ = writeln!(h, "</table><h2>Passing seeds with reports</h2><ul>");
        for r in self.results.values().filter(|r| r.passed && self.reported.contains(&r.seed)) {
            let _ = writeln!(h, "<li><a href=\"../{0}/report.html\">seed {0}</a></li>", r.seed);
        }
        let _ = writeln!(h, "</ul></body></html>");
        h
    }
}

/// A finding's first line, cut to fit one line of a terminal or a table.
pub fn one_line(r: &SeedResult) -> String {
    const MAX_CHARS: usize = 160;
    let text = r.first_finding.as_deref().unwrap_or("failed");
    let line = text.lines().next().unwrap_or_default();
    if line.chars().count() > MAX_CHARS {
        let cut: String = line.chars().take(MAX_CHARS).collect();
        format!("{cut}…")
    } else {
        line.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(seed: u64, finding: Option<&str>) -> SeedResult {
        SeedResult {
            seed,
            passed: finding.is_none(),
            trace_hash: seed,
            sim_secs: 1.0,
            first_finding: finding.map(str::to_string),
        }
    }

    #[test]
    fn index_links_failing_seeds_and_says_which_reports_exist() {
        let results: BTreeMap<u64, SeedResult> =
            [result(0, None), result(1, Some("durability: lost <append>\nmore")), result(2, None)]
                .into_iter()
                .map(|r| (r.seed, r))
                .collect();
        let reported = BTreeSet::from([0, 1]);
        let s = SweepSummary {
            scenario: "toylog_power",
            seeds: 0..3,
            bug: Some("skip-fsync"),
            jobs: 2,
            wall_secs: 1.0,
            results: &results,
            reported: &reported,
            kept_passing: 1,
        };
        assert_eq!(s.dir_name(), "sweep-0-3");
        let md = s.markdown();
        assert!(md.contains("3 seeds (0..3), 2 passed, 1 failed"), "{md}");
        assert!(md.contains("- [seed 1](../1/report.md): durability: lost <append>\n"), "{md}");
        assert!(md.contains("[seed 0](../0/report.md)") && !md.contains("../2/"), "{md}");
        assert!(md.contains("only for the failing seeds and the first 1 passing"), "{md}");
        let html = s.html();
        assert!(html.contains("<a href=\"../1/report.html\">seed 1</a>") && html.contains("lost &lt;append&gt;"));
        assert!(!html.contains("http://") && !html.contains("https://"));
    }
}

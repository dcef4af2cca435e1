//! `report.html`: one self-contained page (inline CSS, SVG and a few lines of JS, nothing
//! fetched) with the run on a timeline, a lane per node and per client, because a verdict is
//! read fastest next to the faults and operations around it.
//!
//! Operations are bare rects with a `<title>` each (the browser's own tooltip, and the info
//! bar mirrors it on hover), so a run with thousands of them stays a few hundred kilobytes and
//! needs no layout work in the browser.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::{run_command, FaultSpan, ReportJson};
use crate::history::{History, Op, Outcome};
use crate::scenario::{FaultKind, Service};
use crate::workload::{call_text, outcome_text};

/// Pixels per simulated second, within bounds that keep short runs readable and long ones
/// scrollable rather than unbounded.
const PX_PER_SEC: f64 = 40.0;
const MIN_PLOT_PX: f64 = 1_200.0;
const MAX_PLOT_PX: f64 = 16_000.0;
const LABEL_PX: f64 = 150.0;
const RIGHT_PX: f64 = 20.0;
const AXIS_PX: f64 = 24.0;
/// Zoom factors of the time axis the page offers.
const ZOOMS: [u32; 6] = [1, 2, 4, 8, 16, 64];
/// An operation is drawn at least this wide, so a sub-pixel one still shows and can be hovered.
const MIN_OP_PX: f64 = 1.5;

const ROW_STATE_PX: f64 = 18.0;
/// A role's stripe this wide at least gets its name written on the band.
const ROLE_LABEL_MIN_PX: f64 = 40.0;
const ROW_FAULT_PX: f64 = 12.0;
const ROW_CLIENT_PX: f64 = 20.0;
const GAP_PX: f64 = 6.0;

const STYLE: &str = r#"
body { font: 13px/1.4 system-ui, sans-serif; margin: 16px; color: #222; background: #fafafa; }
h1 { font-size: 20px; margin: 0 0 8px; }
.pass { color: #fff; background: #2e9d5b; padding: 1px 8px; border-radius: 3px; }
.fail { color: #fff; background: #c62828; padding: 1px 8px; border-radius: 3px; }
code { background: #eee; padding: 0 3px; border-radius: 2px; }
table.meta td { padding: 1px 10px 1px 0; vertical-align: top; }
#plot { overflow-x: auto; border: 1px solid #ccc; background: #fff; margin: 10px 0; }
#info { position: sticky; top: 0; background: #fffbe6; border: 1px solid #e6d98c; padding: 4px 8px;
        min-height: 18px; white-space: pre; font-family: ui-monospace, monospace; font-size: 12px; z-index: 1; }
svg text { font: 11px system-ui, sans-serif; fill: #333; }
svg .lane { fill: #f4f4f4; } svg .labelbg { fill: #fff; }
svg .up { fill: #cfe8d6; } svg .down { fill: #c62828; } svg .paused { fill: #f0b429; }
svg .ok { fill: #2e9d5b; } svg .failop { fill: #d64545; } svg .unknown { fill: #e0a526; }
svg .net { fill: #7b5ea7; } svg .clock { fill: #1f77b4; } svg .disk { fill: #8c564b; }
svg .latency { fill: #9e9e9e; } svg .lasting { fill-opacity: 0.5; } svg .skipped { fill-opacity: 0.25; }
svg .liveness { fill: #9cc3ee; fill-opacity: 0.3; }
svg .bad { stroke: #000; stroke-width: 1.5; }
svg .marker { fill: #c62828; }
svg .role-master { fill: #1b5e20; } svg .role-replica { fill: #81c784; }
svg .leader rect { fill: #6a1b9a; }
svg text.role { font-size: 9px; fill: #1b3d1f; pointer-events: none; }
svg .grid { stroke: #ddd; stroke-width: 1; }
svg rect:hover { stroke: #000; stroke-width: 1; }
:target { outline: 2px solid #c62828; }
.legend span { display: inline-block; width: 10px; height: 10px; margin: 0 4px 0 12px; vertical-align: middle; }
li.finding { margin-bottom: 6px; }
"#;

/// Shows the hovered element's `<title>` in the info bar, which stays put while scrolling, and
/// zooms the time axis: every x and width past the label column is rescaled in place (labels
/// keep their size, which stretching the whole SVG would not).
const SCRIPT: &str = r#"
(function () {
  var info = document.getElementById('info');
  var plot = document.getElementById('plot');
  plot.addEventListener('mouseover', function (e) {
    var t = e.target.querySelector && e.target.querySelector('title');
    if (t) { info.textContent = t.textContent; }
  });
  var svg = plot.querySelector('svg');
  var left = +svg.dataset.left, right = +svg.dataset.right, zoom = 1;
  var steps = [STEPS], minPx = MIN_PX, endUs = +svg.dataset.endUs;
  // The grid is redrawn rather than stretched, so that ticks stay one label apart.
  function ticks(plotPx) {
    var axis = document.getElementById('axis'), h = svg.getAttribute('height'), ns = svg.namespaceURI;
    var total = endUs / 1e6, step = steps.find(function (st) { return total / st <= plotPx / minPx; }) || 600;
    while (axis.firstChild) { axis.removeChild(axis.firstChild); }
    for (var i = 0; i * step <= total; i++) {
      var x = (left + i * step * 1e6 * plotPx / endUs).toFixed(1);
      var line = document.createElementNS(ns, 'line');
      [['class', 'grid'], ['x1', x], ['x2', x], ['y1', 14], ['y2', h]].forEach(function (a) { line.setAttribute(a[0], a[1]); });
      var text = document.createElementNS(ns, 'text');
      [['x', x], ['y', 11], ['text-anchor', 'middle']].forEach(function (a) { text.setAttribute(a[0], a[1]); });
      text.textContent = (i * step).toFixed(step < 0.1 ? 2 : 1) + 's';
      axis.appendChild(line);
      axis.appendChild(text);
    }
  }
  function scale(el, attr, k, offset) {
    var v = el.getAttribute(attr);
    if (v !== null) { el.setAttribute(attr, (offset + (+v - offset) * k).toFixed(1)); }
  }
  document.querySelectorAll('button[data-zoom]').forEach(function (b) {
    b.addEventListener('click', function () {
      var z = +b.dataset.zoom, k = z / zoom;
      if (k === 1) { return; }
      var centre = (plot.scrollLeft + plot.clientWidth / 2 - left) * k + left - plot.clientWidth / 2;
      zoom = z;
      svg.querySelectorAll('rect:not(.labelbg)').forEach(function (el) {
        scale(el, 'x', k, left);
        scale(el, 'width', k, 0);
      });
      svg.querySelectorAll('path.marker').forEach(function (el) {
        var cx = left + (+el.dataset.cx - left) * k;
        el.dataset.cx = cx;
        el.setAttribute('transform', 'translate(' + cx.toFixed(1) + ',' + el.dataset.y + ')');
      });
      var w = (+svg.getAttribute('width') - left - right) * k + left + right;
      svg.setAttribute('width', w.toFixed(0));
      ticks(w - left - right);
      svg.setAttribute('viewBox', '0 0 ' + w.toFixed(0) + ' ' + svg.getAttribute('height'));
      plot.scrollLeft = Math.max(0, centre);
    });
  });
  // `report.html#zoom=8` opens zoomed (handy for screenshots and links).
  var labels = document.getElementById('labels');
  plot.addEventListener('scroll', function () {
    labels.setAttribute('transform', 'translate(' + plot.scrollLeft + ',0)');
  });
  var m = /zoom=(\d+)/.exec(location.hash);
  var b = m && document.querySelector('button[data-zoom="' + m[1] + '"]');
  if (b) { b.click(); }
})();
"#;

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn secs(us: u64) -> String {
    format!("{}.{:06}s", us / 1_000_000, us % 1_000_000)
}

/// Simulated µs to x pixels.
struct Scale {
    end_us: u64,
    plot_px: f64,
}

impl Scale {
    fn x(&self, us: u64) -> f64 {
        LABEL_PX + us.min(self.end_us) as f64 * self.plot_px / self.end_us.max(1) as f64
    }
    fn width(&self, from_us: u64, to_us: u64) -> f64 {
        (self.x(to_us) - self.x(from_us)).max(MIN_OP_PX)
    }
}

pub fn render(r: &ReportJson, history: &History) -> String {
    let mut page = String::new();
    let verdict = if r.passed { "<span class=\"pass\">PASS</span>" } else { "<span class=\"fail\">FAIL</span>" };
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} seed {}</title><style>{STYLE}</style></head><body>\n",
        escape(&r.scenario.name),
        r.seed
    );
    let _ = writeln!(page, "<h1>{} seed {} {verdict}</h1>", escape(&r.scenario.name), r.seed);
    header(&mut page, r);
    let _ = writeln!(page, "<div id=\"info\">hover an operation or a fault for details</div>");
    let zooms: Vec<String> = ZOOMS.iter().map(|z| format!("<button data-zoom=\"{z}\">{z}×</button>")).collect();
    let _ = writeln!(page, "<div>zoom: {}</div>", zooms.join(" "));
    let _ = writeln!(page, "<div id=\"plot\">{}</div>", svg(r, history));
    legend(&mut page);
    findings(&mut page, r);
    choices(&mut page, r);
    let steps: Vec<String> = TICK_STEPS_S.iter().map(|st| st.to_string()).collect();
    let script =
        SCRIPT.replace("[STEPS]", &format!("[{}]", steps.join(", "))).replace("MIN_PX", &TICK_MIN_PX.to_string());
    let _ = write!(page, "<script>{script}</script>\n</body></html>\n");
    page
}

fn header(page: &mut String, r: &ReportJson) {
    let s = &r.stats;
    let mut rows = vec![
        ("trace hash", format!("<code>{}</code>", escape(&r.trace_hash))),
        ("replay", format!("<code>{}</code>", escape(&r.replay))),
        (
            "run again",
            format!(
                "<code>{}</code>",
                escape(&run_command(r.scenario_path.as_deref(), &r.scenario.name, r.seed, r.bug.as_deref()))
            ),
        ),
        (
            "operations",
            format!(
                "{} ({} ok, {} fail, {} unknown); {:.1} simulated s; {} trace lines",
                s.ops, s.ok, s.fail, s.unknown, s.simulated_secs, s.trace_lines
            ),
        ),
    ];
    if let Some(b) = &r.bug {
        rows.insert(0, ("planted bug", format!("<code>{}</code>", escape(b))));
    }
    let _ = writeln!(page, "<p>{}</p>", escape(r.scenario.description.trim()));
    let _ = writeln!(page, "<table class=\"meta\">");
    for (k, v) in rows {
        let _ = writeln!(page, "<tr><td>{k}</td><td>{v}</td></tr>");
    }
    for n in &r.notes {
        let _ = writeln!(page, "<tr><td>checked</td><td>{}</td></tr>", escape(n));
    }
    for i in &r.inconclusive {
        let _ = writeln!(page, "<tr><td>inconclusive</td><td>{}</td></tr>", escape(i));
    }
    if let Some(p) = &r.panic {
        let _ = writeln!(page, "<tr><td>panic</td><td><code>{}</code></td></tr>", escape(p));
    }
    let _ = writeln!(page, "</table>");
}

fn legend(page: &mut String) {
    let items = [
        ("#2e9d5b", "op ok"),
        ("#d64545", "op fail"),
        ("#e0a526", "op unknown"),
        ("#cfe8d6", "node up"),
        ("#c62828", "node down"),
        ("#f0b429", "node paused"),
        ("#1b5e20", "master"),
        ("#81c784", "replica"),
        ("#6a1b9a", "sentinel elected leader"),
        ("#7b5ea7", "partition / split"),
        ("#1f77b4", "clock fault"),
        ("#8c564b", "disk (power loss)"),
        ("#9e9e9e", "latency"),
        ("#d7e7f9", "liveness phase (healed)"),
    ];
    let _ = write!(page, "<div class=\"legend\">");
    for (color, what) in items {
        let _ = write!(page, "<span style=\"background:{color}\"></span>{what}");
    }
    let _ = writeln!(
        page,
        " — black outline and ▼: operations a finding names. Faults the nemesis skipped are faint.</div>"
    );
}

fn findings(page: &mut String, r: &ReportJson) {
    let _ = writeln!(page, "<h2>Checker verdict: {}</h2>", if r.passed { "pass" } else { "fail" });
    if r.findings.is_empty() {
        let _ = writeln!(page, "<p>No findings.</p>");
        return;
    }
    let _ = writeln!(page, "<ol>");
    for f in &r.findings {
        let links: Vec<String> = f.ops.iter().map(|id| format!("<a href=\"#op-{id}\">#{id}</a>")).collect();
        let _ = writeln!(
            page,
            "<li class=\"finding\"><b>{}</b>: {} <br>operations: {}</li>",
            escape(&f.checker),
            escape(&f.message),
            links.join(" ")
        );
    }
    let _ = writeln!(page, "</ol>");
}

fn choices(page: &mut String, r: &ReportJson) {
    let _ = writeln!(page, "<h2>What the seed chose</h2><ul>");
    for c in &r.choices {
        let _ = writeln!(page, "<li><code>{}</code></li>", escape(c));
    }
    let _ = writeln!(page, "</ul>");
}

/// One horizontal lane of the timeline.
struct Lane {
    id: String,
    label: String,
    y: f64,
    h: f64,
}

fn svg(r: &ReportJson, history: &History) -> String {
    let end_us = history.end_us.max(1);
    let plot_px = (end_us as f64 / 1e6 * PX_PER_SEC).clamp(MIN_PLOT_PX, MAX_PLOT_PX);
    let sc = Scale { end_us, plot_px };
    let nodes = r.scenario.topology.nodes;
    let clients = r.scenario.workload.clients;
    let role = match r.scenario.topology.service {
        Service::Redsim => "master",
        Service::Toylog => "toylog",
    };

    let mut lanes: Vec<Lane> = Vec::new();
    let mut y = AXIS_PX;
    let mut push = |id: String, label: String, h: f64, gap: f64| {
        lanes.push(Lane { id, label, y, h });
        y += h + gap;
    };
    push("network".into(), "network".into(), ROW_FAULT_PX, GAP_PX);
    let node_roles: Vec<Vec<(u64, String)>> = (0..nodes).map(|n| roles(r, history, n)).collect();
    for n in 0..nodes {
        let first = node_roles[n as usize].first().map_or(role, |(_, r)| r.split(' ').next().unwrap_or(role));
        push(format!("n{n}"), format!("n{n} ({first})"), ROW_STATE_PX, 1.0);
        push(format!("n{n}-net"), format!("n{n} net"), ROW_FAULT_PX, 1.0);
        push(format!("n{n}-clock"), format!("n{n} clock"), ROW_FAULT_PX, 1.0);
        push(format!("n{n}-disk"), format!("n{n} disk"), ROW_FAULT_PX, GAP_PX);
    }
    let sentinels = r.scenario.sentinel.as_ref().map_or(0, |g| g.count);
    for i in 0..sentinels {
        push(format!("s{i}"), format!("s{i} (sentinel)"), ROW_STATE_PX, 1.0);
        push(format!("s{i}-net"), format!("s{i} net"), ROW_FAULT_PX, GAP_PX);
    }
    for c in 0..clients {
        let to = if r.scenario.cluster.is_some() {
            "by slot".to_string()
        } else if r.scenario.replication.is_some() {
            "master".to_string()
        } else {
            format!("n{}", c % nodes.max(1))
        };
        push(format!("c{c}"), format!("c{c} → {to}"), ROW_CLIENT_PX, 1.0);
    }
    let height = y + 4.0;
    let width = LABEL_PX + plot_px + RIGHT_PX;
    let lane_y = |id: &str| lanes.iter().find(|l| l.id == id).map(|l| (l.y, l.h));

    let mut s = String::with_capacity(256 * history.ops.len() + 16 * 1024);
    let _ = writeln!(
        s,
        "<svg width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\" role=\"img\" data-left=\"{LABEL_PX}\" data-right=\"{RIGHT_PX}\" data-end-us=\"{end_us}\">"
    );
    axis(&mut s, &sc, height);
    for l in &lanes {
        let _ = writeln!(
            s,
            "<g data-lane=\"{}\"><rect class=\"lane\" x=\"{LABEL_PX}\" y=\"{:.1}\" width=\"{plot_px:.1}\" height=\"{}\"/></g>",
            l.id, l.y, l.h,
        );
    }
    let healed = history.healed_us.min(end_us);
    let _ = writeln!(
        s,
        "<rect class=\"liveness\" x=\"{:.1}\" y=\"0\" width=\"{:.1}\" height=\"{height:.0}\"><title>liveness phase: every fault healed at {}</title></rect>",
        sc.x(healed),
        sc.x(end_us) - sc.x(healed),
        secs(healed)
    );
    for n in 0..nodes {
        if let Some((ly, lh)) = lane_y(&format!("n{n}")) {
            node_states(&mut s, &sc, r, &format!("node:{n}"), &format!("n{n}"), ly, lh, end_us);
            role_stripes(&mut s, &sc, n, &node_roles[n as usize], ly, lh, end_us);
        }
    }
    for i in 0..sentinels {
        if let Some((ly, lh)) = lane_y(&format!("s{i}")) {
            node_states(&mut s, &sc, r, &format!("sentinel:{i}"), &format!("s{i}"), ly, lh, end_us);
            for &(at, _, epoch) in history.sentinel.elected_us.iter().filter(|e| e.1 == i) {
                leader_mark(&mut s, &sc, i, at, epoch, ly, lh);
            }
        }
    }
    let safety_end_us = r.scenario.duration_ms * 1000;
    for f in &r.faults {
        fault(&mut s, &sc, f, safety_end_us, &lane_y);
    }
    let bad: BTreeSet<usize> = r.findings.iter().flat_map(|f| f.ops.iter().copied()).collect();
    for op in &history.ops {
        if let Some((ly, lh)) = lane_y(&format!("c{}", op.client)) {
            op_rect(&mut s, &sc, op, ly, lh, bad.contains(&op.id));
        }
    }
    // Labels last, on a background of their own, so that the page can keep them in view when
    // the plot scrolls sideways.
    let _ = writeln!(
        s,
        "<g id=\"labels\"><rect class=\"labelbg\" x=\"0\" y=\"0\" width=\"{:.0}\" height=\"{height:.0}\"/>",
        LABEL_PX - 2.0
    );
    for l in &lanes {
        let _ = writeln!(s, "<text x=\"4\" y=\"{:.1}\">{}</text>", l.y + l.h - 3.0, escape(&l.label));
    }
    let _ = writeln!(s, "</g>\n</svg>");
    s
}

/// Tick steps of the time axis, seconds; the page's zoom picks from the same list.
const TICK_STEPS_S: [f64; 15] = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0];
/// Ticks at least this far apart.
const TICK_MIN_PX: f64 = 70.0;

fn axis(s: &mut String, sc: &Scale, height: f64) {
    let total_s = sc.end_us as f64 / 1e6;
    let step_s = TICK_STEPS_S.into_iter().find(|st| total_s / st <= sc.plot_px / TICK_MIN_PX).unwrap_or(600.0);
    let digits = if step_s < 0.1 { 2 } else { 1 };
    let _ = writeln!(s, "<g id=\"axis\">");
    let mut i = 0u32;
    loop {
        let t = f64::from(i) * step_s;
        if t > total_s {
            break;
        }
        let x = sc.x((t * 1e6) as u64);
        let _ = writeln!(
            s,
            "<line class=\"grid\" x1=\"{x:.1}\" y1=\"14\" x2=\"{x:.1}\" y2=\"{height:.0}\"/><text x=\"{x:.1}\" y=\"11\" text-anchor=\"middle\">{t:.digits$}s</text>"
        );
        i += 1;
    }
    let _ = writeln!(s, "</g>");
}

/// A node's roles over the run, as (from µs, role) with each entry a change: a replication or
/// sentinel world's node 0 starts as the master and every promotion makes its node the master
/// and the others replicas; a cluster node is a master while its journal says it owns slots.
/// Empty for standalone nodes.
fn roles(r: &ReportJson, history: &History, n: u32) -> Vec<(u64, String)> {
    let mut out: Vec<(u64, String)> = Vec::new();
    let change = |out: &mut Vec<(u64, String)>, at: u64, role: String| {
        if out.last().is_none_or(|(_, last)| *last != role) {
            out.push((at, role));
        }
    };
    if let Some(c) = &r.scenario.cluster {
        let first = if c.initial_master_of(n).is_some() { "replica" } else { "master" };
        change(&mut out, 0, first.to_string());
        let mut had_slots = false;
        for o in history.cluster.owns.iter().filter(|o| o.node == n) {
            let slots: u32 = o.owned.iter().map(|&(a, b)| u32::from(b - a) + 1).sum();
            let role = if slots > 0 { format!("master {slots} slots") } else { "replica".to_string() };
            // Before the operator assigned slots, a future master owns none yet.
            if slots > 0 || first == "replica" || had_slots {
                change(&mut out, o.at_us, role);
            }
            had_slots |= slots > 0;
        }
    } else if r.scenario.replication.is_some() {
        change(&mut out, 0, if n == 0 { "master" } else { "replica" }.to_string());
        for p in &history.repl.promotions {
            change(&mut out, p.end_us, if p.node == n { "master" } else { "replica" }.to_string());
        }
    }
    out
}

/// A sentinel's election won: a mark on its band, named with the epoch.
fn leader_mark(s: &mut String, sc: &Scale, i: u32, at: u64, epoch: u64, ly: f64, lh: f64) {
    let x = sc.x(at);
    let _ = writeln!(
        s,
        "<g class=\"leader\"><rect x=\"{:.1}\" y=\"{ly:.1}\" width=\"3\" height=\"{lh:.1}\"/><text class=\"role\" x=\"{:.1}\" y=\"{:.1}\">leader e{epoch}</text><title>s{i} elected leader of epoch {epoch} at {}</title></g>",
        x - 1.0,
        x + 3.0,
        ly + lh - 4.0,
        secs(at)
    );
}

/// A thin stripe along the top of the node's band per role, with its name where it changes.
fn role_stripes(s: &mut String, sc: &Scale, n: u32, roles: &[(u64, String)], ly: f64, lh: f64, end_us: u64) {
    for (i, (from, role)) in roles.iter().enumerate() {
        let to = roles.get(i + 1).map_or(end_us, |(t, _)| *t).min(end_us);
        let class = if role.starts_with("master") { "role-master" } else { "role-replica" };
        let _ = writeln!(
            s,
            "<rect class=\"{class}\" x=\"{:.1}\" y=\"{ly:.1}\" width=\"{:.1}\" height=\"4\"><title>n{n} {} {} → {}</title></rect>",
            sc.x(*from),
            sc.width(*from, to),
            escape(role),
            secs(*from),
            secs(to),
        );
        // Named where there is room for the name.
        if sc.width(*from, to) >= ROLE_LABEL_MIN_PX {
            let _ = writeln!(
                s,
                "<text class=\"role\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                sc.x(*from) + 2.0,
                ly + lh - 4.0,
                escape(role)
            );
        }
    }
}

/// A node's (or sentinel's) up/down/paused band from its kill, power-fail and pause faults;
/// `target` as the faults name it, `name` as the lane does.
#[allow(clippy::too_many_arguments)]
fn node_states(s: &mut String, sc: &Scale, r: &ReportJson, target: &str, name: &str, ly: f64, lh: f64, end_us: u64) {
    let _ = writeln!(
        s,
        "<rect class=\"up\" x=\"{LABEL_PX}\" y=\"{ly:.1}\" width=\"{:.1}\" height=\"{lh}\"><title>{name} up</title></rect>",
        sc.x(end_us) - LABEL_PX
    );
    for f in r.faults.iter().filter(|f| f.target == target && f.applied) {
        let class = match f.kind {
            FaultKind::Kill | FaultKind::PowerFail => "down",
            FaultKind::Pause => "paused",
            _ => continue,
        };
        let (from, to) = (f.at_ms * 1000, (f.at_ms + f.duration_ms) * 1000);
        let _ = writeln!(
            s,
            "<rect class=\"{class}\" x=\"{:.1}\" y=\"{ly:.1}\" width=\"{:.1}\" height=\"{lh}\"><title>{name} {class} {} → {}\n{}</title></rect>",
            sc.x(from),
            sc.width(from, to),
            secs(from),
            secs(to),
            escape(&f.description)
        );
    }
}

/// Which lanes a fault is drawn on, and in what colour.
fn fault_lanes(f: &FaultSpan) -> (Vec<String>, &'static str) {
    let machine_lane = |m: &str| -> Option<String> {
        let (kind, n) = m.split_once(':')?;
        match kind {
            "node" => Some(format!("n{n}-net")),
            "client" => Some(format!("c{n}")),
            "sentinel" => Some(format!("s{n}-net")),
            _ => None,
        }
    };
    let node_row = |row: &str| -> Vec<String> {
        f.target.strip_prefix("node:").map(|n| vec![format!("n{n}-{row}")]).unwrap_or_default()
    };
    match f.kind {
        FaultKind::Partition | FaultKind::PartitionIn | FaultKind::PartitionOut => {
            (machine_lane(&f.target).into_iter().collect(), "net")
        }
        FaultKind::Split => {
            let mut lanes = vec!["network".to_string()];
            lanes.extend(f.group.iter().filter_map(|m| machine_lane(m)));
            (lanes, "net")
        }
        FaultKind::Latency => (vec!["network".into()], "latency"),
        FaultKind::ClockJump | FaultKind::ClockOffset | FaultKind::ClockDrift => (node_row("clock"), "clock"),
        FaultKind::PowerFail | FaultKind::FsyncEio | FaultKind::DiskSlow => (node_row("disk"), "disk"),
        FaultKind::Kill | FaultKind::Pause => (Vec::new(), ""),
        FaultKind::ReplLinkCut => (machine_lane(&f.target).into_iter().collect(), "net"),
        FaultKind::Failover | FaultKind::FailoverCommand | FaultKind::Promote | FaultKind::Reshard => (Vec::new(), ""),
    }
}

fn fault(s: &mut String, sc: &Scale, f: &FaultSpan, safety_end_us: u64, lane_y: &dyn Fn(&str) -> Option<(f64, f64)>) {
    let (lanes, class) = fault_lanes(f);
    // A clock jump that is never undone lasts until the heal, which sets every clock true.
    let lasting = f.duration_ms == 0 && f.kind == FaultKind::ClockJump;
    let from = f.at_ms * 1000;
    let to = if lasting { safety_end_us } else { (f.at_ms + f.duration_ms) * 1000 };
    let class = if lasting { format!("{class} lasting") } else { class.to_string() };
    let links = match f.kind {
        FaultKind::Partition => "every link to and from the target clogged",
        FaultKind::PartitionIn => "links into the target clogged",
        FaultKind::PartitionOut => "links out of the target clogged",
        FaultKind::Split => "links between the group and everyone else clogged",
        _ => "",
    };
    let skipped = if f.applied { "" } else { " skipped" };
    for lane in lanes {
        let Some((ly, lh)) = lane_y(&lane) else { continue };
        // Faults on a client lane sit in a thin strip above its operations.
        let h = if lane.starts_with('c') { 4.0 } else { lh };
        let _ = writeln!(
            s,
            "<rect class=\"{class}{skipped}\" x=\"{:.1}\" y=\"{ly:.1}\" width=\"{:.1}\" height=\"{h}\"><title>{}\n{} → {}{}{}</title></rect>",
            sc.x(from),
            sc.width(from, to),
            escape(&f.description),
            secs(from),
            if lasting { format!("{} (never undone: the heal sets the clock true)", secs(to)) } else { secs(to) },
            if links.is_empty() { String::new() } else { format!("\n{links}") },
            if f.applied { "" } else { "\nskipped: the target was not up" },
        );
    }
}

fn op_rect(s: &mut String, sc: &Scale, op: &Op, ly: f64, lh: f64, bad: bool) {
    let class = match op.outcome {
        Outcome::Ok(_) => "ok",
        Outcome::Fail(_) => "failop",
        Outcome::Unknown(_) => "unknown",
    };
    let (x, w) = (sc.x(op.invoke_us), sc.width(op.invoke_us, op.complete_us));
    let (top, h) = (ly + 5.0, lh - 6.0);
    let sent = op.sent_us.map_or_else(|| "never sent".to_string(), |t| format!("sent {}", secs(t)));
    let _ = writeln!(
        s,
        "<rect id=\"op-{}\" class=\"{class}{}\" x=\"{x:.1}\" y=\"{top:.1}\" width=\"{w:.1}\" height=\"{h}\"><title>op #{} c{} → n{}: {}\n→ {}\ninvoked {} → completed {} ({sent})</title></rect>",
        op.id,
        if bad { " bad" } else { "" },
        op.id,
        op.client,
        op.node,
        escape(&call_text(&op.call)),
        escape(&outcome_text(&op.outcome)),
        secs(op.invoke_us),
        secs(op.complete_us),
    );
    if bad {
        let cx = x + w / 2.0;
        let _ = writeln!(
            s,
            "<path class=\"marker\" data-cx=\"{cx:.1}\" data-y=\"{:.1}\" transform=\"translate({cx:.1},{:.1})\" d=\"M-4 0 L4 0 L0 7 Z\"/>",
            ly - 3.0,
            ly - 3.0
        );
    }
}

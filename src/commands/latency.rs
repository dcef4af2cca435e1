//! LATENCY (Redis's `latency.c` commands): LATEST, HISTORY, RESET and DOCTOR over the latency
//! monitor's events, HISTOGRAM over the per-command latency histograms (latency-tracking).

use bytes::Bytes;

use super::server_cmds::reply_help;
use super::{CmdResult, Ctx, Handler};

pub static COMMANDS: &[(&str, Handler)] = &[
    ("latency|latest", latest),
    ("latency|history", history),
    ("latency|reset", reset),
    ("latency|doctor", doctor),
    ("latency|histogram", histogram),
    ("latency|help", help),
];

const HELP: &[&str] = &[
    "DOCTOR",
    "    Return a human readable latency analysis report.",
    "GRAPH <event>",
    "    Return an ASCII latency graph for the <event> class.",
    "HISTORY <event>",
    "    Return time-latency samples for the <event> class.",
    "LATEST",
    "    Return the latest latency samples for all events.",
    "RESET [<event> ...]",
    "    Reset latency data of one or more <event> classes.",
    "    (default: reset all data for all event classes)",
    "HISTOGRAM [COMMAND ...]",
    "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
    "    If no commands are specified then all histograms are replied.",
];

fn help(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    reply_help(ctx, &a[0], HELP);
    Ok(())
}

/// Per event: name, time of the latest sample, its latency, the all-time maximum.
fn latest(ctx: &mut Ctx, _a: &[Bytes]) -> CmdResult {
    let rows: Vec<(String, u64, u64, u64)> = ctx
        .srv
        .latency
        .events
        .iter()
        .filter_map(|(name, s)| s.samples.back().map(|&(t, ms)| (name.clone(), t, ms, s.max)))
        .collect();
    let out = ctx.out();
    out.array(rows.len());
    for (name, t, ms, max) in rows {
        out.array(4);
        out.bulk(name.as_bytes());
        out.int(t as i64);
        out.int(ms as i64);
        out.int(max as i64);
    }
    Ok(())
}

/// The event's samples, oldest first, as [time, latency] pairs.
fn history(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let name = String::from_utf8_lossy(&a[2]).into_owned();
    let samples: Vec<(u64, u64)> =
        ctx.srv.latency.events.get(&name).map(|s| s.samples.iter().copied().collect()).unwrap_or_default();
    let out = ctx.out();
    out.array(samples.len());
    for (t, ms) in samples {
        out.array(2);
        out.int(t as i64);
        out.int(ms as i64);
    }
    Ok(())
}

fn reset(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let names: Vec<String> = a[2..].iter().map(|n| String::from_utf8_lossy(n).into_owned()).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let n = ctx.srv.latency.reset(&names);
    ctx.out().int(n as i64);
    Ok(())
}

/// A human-readable report: Redis's fixed texts when monitoring is off or nothing happened,
/// otherwise per event its sample count, average, maximum and when it was last seen.
fn doctor(ctx: &mut Ctx, _a: &[Bytes]) -> CmdResult {
    let threshold = ctx.srv.config.get("latency-monitor-threshold").unwrap_or("0").to_string();
    let text = if threshold == "0" {
        "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \
         \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep \
         space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n"
            .to_string()
    } else if ctx.srv.latency.events.is_empty() {
        "Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. \
         I honestly think you ought to sleep tonight.\n"
            .to_string()
    } else {
        let now = ctx.srv.now.unix_ms / 1000;
        let mut t = String::from("Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n");
        for (i, (name, s)) in ctx.srv.latency.events.iter().enumerate() {
            let n = s.samples.len().max(1) as u64;
            let avg = s.samples.iter().map(|x| x.1).sum::<u64>() / n;
            let last = s.samples.back().map(|x| now.saturating_sub(x.0)).unwrap_or(0);
            t.push_str(&format!(
                "{}. {name}: {} latency spikes (average {avg}ms, mean deviation n/a, period n/a). Worst all time \
                 event {}ms. Last seen {last} seconds ago.\n",
                i + 1,
                s.samples.len(),
                s.max
            ));
        }
        t.push_str(&format!("\nThe latency-monitor-threshold is {threshold} ms.\n"));
        t
    };
    ctx.out().verbatim(text.as_bytes());
    Ok(())
}

/// LATENCY HISTOGRAM [command ...]: per command with calls, its call count and cumulative
/// counts at Redis's logarithmic bucket bounds (µs: 1, 2, 4, 8, 16, 32, 65, 131...).
fn histogram(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let table = ctx.srv.table;
    let wanted: Vec<String> = a[2..].iter().map(|n| String::from_utf8_lossy(n).to_ascii_lowercase()).collect();
    let mut rows = Vec::new();
    for cmd in &table.cmds {
        let name = cmd.name();
        if !wanted.is_empty() && !wanted.iter().any(|w| *w == name) {
            continue;
        }
        let h = &ctx.srv.cmd_latency[cmd.index];
        if h.is_empty() {
            continue;
        }
        rows.push((name.to_string(), h.total(), h.cumulative_log2_us()));
    }
    let out = ctx.out();
    out.map(rows.len());
    for (name, calls, cdf) in rows {
        out.bulk(name.as_bytes());
        out.map(2);
        out.bulk(b"calls");
        out.int(calls as i64);
        out.bulk(b"histogram_usec");
        out.map(cdf.len());
        for (us, n) in cdf {
            out.int(us as i64);
            out.int(n as i64);
        }
    }
    Ok(())
}

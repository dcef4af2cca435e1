//! The promise of `min-replicas-to-write N` with `min-replicas-max-lag T` (Redis's
//! `repl_min_slaves_to_write`): a master refuses writes with `-NOREPLICAS` unless at least N
//! replicas sent it a REPLCONF ACK within the last T seconds. A master cut off from its replicas
//! thus stops acknowledging writes soon after the cut, which bounds how many acknowledged
//! writes a failover after a partition can lose.
//!
//! Guarantee checked: every write a node X acknowledged (a write op that succeeded, served by X,
//! whose own N ≥ 1 and T ≥ 1 as it started) had, at some moment from T + [`SLACK_US`] before it
//! was sent (X cannot have run it earlier) up to its reply, at least N other nodes in reach of
//! X. A node R is in reach of X while
//! - the link R→X is open: no partition of R (both ways or outbound) or of X (both ways or
//!   inbound), no split between them, no replication link cut of theirs. Only this direction
//!   counts: ACKs go from replica to master, and a replica keeps sending them while the
//!   master's messages to it are held;
//! - R runs: it is not paused, nor down from a kill, a power failure or an exit until its
//!   restart (but see below for what madsim still delivers);
//!
//! and for the highest message latency after either ends: an ACK that left R just before
//! still arrives. X's own pauses stop X from acknowledging anything while they last; but an ACK
//! that arrives while X is paused is read when X resumes and looks fresh then, so when the
//! window starts inside a pause of X it starts at the pause's start instead.
//!
//! Slack, 2 s: Redis measures the lag in whole seconds of the master's unixtime (lag T holds an
//! ACK up to just under T + 1 s old), and refreshes its count of good replicas on each ACK and
//! in replicationCron once a second, so the count a write meets can be a second stale. redsim
//! counts at every write by its monotonic clock and needs only the first second.
//!
//! Over-approximation: any other node in reach counts, whether or not it replicates X, has
//! synced, or is past the lag; so a correct master never fails this checker. It misses a master
//! that goes on acknowledging for less than the slack too long, one whose count includes a
//! replica that is in reach but not replicating, and, for the reason below, what kills and pauses
//! of a replica hide once its link to X has been cut.
//!
//! What a stop does not end in madsim (as with TCP): messages R wrote before it stopped are
//! still delivered, and a message written into a cut link waits for the heal (retried with a
//! backoff of up to 10 s) and holds back every message behind it. So R's stop counts only if it
//! began before the first cut of R→X: until then every message R sent arrived within the latency
//! bound. After that cut R counts as in reach whenever the link is open.
//!
//! Validation refuses chains and clusters, clock faults (the lag is measured in the master's
//! unixtime; redsim's follows its monotonic clock, but the promise is Redis's) and disk faults
//! (an event loop stalled in fsync reads old ACKs late, as after a pause, and the world does not
//! record when a loop stalls).

use super::register::fmt_us;
use super::Finding;
use crate::history::{Call, History, Op};
use crate::scenario::OpKind;

/// How much older than `min-replicas-max-lag` an ACK may be and still count: see the module doc.
pub const SLACK_US: u64 = 2_000_000;

const S: u64 = 1_000_000; // µs

/// Half-open `[start, end)` µs, sorted and disjoint once merged.
type Intervals = Vec<(u64, u64)>;

fn merge(mut v: Intervals) -> Intervals {
    v.retain(|&(a, b)| a < b);
    v.sort_unstable();
    let mut out: Intervals = Vec::with_capacity(v.len());
    for (a, b) in v {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// The moments not in `blocked` (merged), as intervals up to `u64::MAX`.
fn complement(blocked: &Intervals) -> Intervals {
    let mut out = Vec::with_capacity(blocked.len() + 1);
    let mut from = 0;
    for &(a, b) in blocked {
        if a > from {
            out.push((from, a));
        }
        from = b;
    }
    if from < u64::MAX {
        out.push((from, u64::MAX));
    }
    out
}

/// When node `r` could have delivered an ACK to node `x`: see the module doc.
pub fn reach(h: &History, r: u32, x: u32) -> Intervals {
    let cuts: Intervals =
        h.reach.link_cuts.iter().filter(|c| c.from == r && c.to == x).map(|c| (c.start_us, c.end_us)).collect();
    let first_cut = cuts.iter().map(|c| c.0).min().unwrap_or(u64::MAX);
    let stops = h.reach.stops.get(r as usize).into_iter().flatten();
    let counted = stops.filter(|s| s.start_us < first_cut).map(|s| (s.start_us, s.end_us));
    let blocked = merge(cuts.iter().copied().chain(counted).collect());
    let lat = h.reach.max_latency_us;
    merge(complement(&blocked).into_iter().map(|(a, b)| (a, b.saturating_add(lat))).collect())
}

/// The moments at which at least `need` of `sets` hold.
fn at_least(sets: &[Intervals], need: usize) -> Intervals {
    let mut events: Vec<(u64, i64)> = sets.iter().flatten().flat_map(|&(a, b)| [(a, 1), (b, -1)]).collect();
    events.sort_unstable();
    let mut out = Vec::new();
    let (mut count, mut since) = (0i64, None);
    let mut i = 0;
    while i < events.len() {
        let t = events[i].0;
        while i < events.len() && events[i].0 == t {
            count += events[i].1;
            i += 1;
        }
        match (count >= need as i64, since) {
            (true, None) => since = Some(t),
            (false, Some(s)) => {
                out.push((s, t));
                since = None;
            }
            _ => {}
        }
    }
    if let Some(s) = since {
        out.push((s, u64::MAX));
    }
    out
}

fn is_write(op: &Op) -> bool {
    !matches!(op.kind, OpKind::Get | OpKind::GetCounter | OpKind::Read)
}

fn call_text(call: &Call) -> String {
    match call {
        Call::Get { key } | Call::GetCounter { key } => format!("GET {key}"),
        Call::Set { key, value, ttl_ms: None } => format!("SET {key} {value}"),
        Call::Set { key, value, ttl_ms: Some(t) } => format!("SET {key} {value} (ttl {t} ms)"),
        Call::Del { key } => format!("DEL {key}"),
        Call::Incr { key } => format!("INCR {key}"),
        Call::Append { id } => format!("RPUSH {id}"),
        Call::Read => "LRANGE".into(),
        Call::Expire { key, ttl_ms } => format!("PEXPIRE {key} {ttl_ms}"),
        Call::Persist { key } => format!("PERSIST {key}"),
    }
}

/// Where the window of an op sent at `sent_us` to `x` starts: see the module doc.
fn window_start(h: &History, x: u32, sent_us: u64, max_lag_s: u64) -> u64 {
    let mut w = sent_us.saturating_sub(max_lag_s * S + SLACK_US);
    let mut pauses = h.reach.stops.get(x as usize).into_iter().flatten().filter(|s| s.paused);
    // A node's stops do not overlap: one step back is enough.
    if let Some(p) = pauses.find(|p| p.start_us <= w && w < p.end_us) {
        w = p.start_us;
    }
    w
}

/// Findings, and how many acknowledged writes were judged.
pub fn check(h: &History) -> (Vec<Finding>, usize) {
    let nodes = h.repl.min_replicas.len() as u32;
    let mut found = Vec::new();
    let mut judged = 0;
    for x in 0..nodes {
        let (need, max_lag_s) = h.repl.min_replicas[x as usize];
        if need == 0 || max_lag_s == 0 {
            continue;
        }
        let reaches: Vec<Intervals> = (0..nodes).filter(|&r| r != x).map(|r| reach(h, r, x)).collect();
        let good = at_least(&reaches, need as usize);
        for op in h.ops.iter().filter(|o| o.node == x && o.is_ok() && is_write(o)) {
            let Some(sent) = op.sent_us else { continue };
            judged += 1;
            let from = window_start(h, x, sent, max_lag_s);
            if good.iter().any(|&(a, b)| a <= op.complete_us && b > from) {
                continue;
            }
            let last = good.iter().rev().find(|&&(a, _)| a <= op.complete_us).map(|&(_, b)| b);
            let last = match last {
                Some(b) => {
                    format!("it last had them at {}, {} before sending", fmt_us(b), fmt_us(sent.saturating_sub(b)))
                }
                None => "it never had them".into(),
            };
            let nodes = if need == 1 { "node" } else { "nodes" };
            found.push(Finding {
                checker: "min_replicas".into(),
                message: format!(
                    "n{x} acknowledged op #{} (client {}, {}) at {} (sent {}), but from {} on (min-replicas-max-lag \
                     {max_lag_s} s + {} s slack before sending) it never had the {need} other {nodes} in reach that \
                     min-replicas-to-write {need} needs: {last}",
                    op.id,
                    op.client,
                    call_text(&op.call),
                    fmt_us(op.complete_us),
                    fmt_us(sent),
                    fmt_us(from),
                    SLACK_US / S
                ),
                ops: vec![op.id],
            });
        }
    }
    (found, judged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{LinkCut, Outcome, Stop, Value};

    /// n0 the master (min-replicas-to-write 1, max-lag 3 s), n1 and n2 its replicas.
    fn history() -> History {
        let mut h = History::new(3);
        h.repl.nodes = 3;
        h.repl.min_replicas = vec![(1, 3), (0, 10), (0, 10)];
        h.reach.max_latency_us = 5_001;
        h
    }

    fn cut_both_replicas(h: &mut History, start_us: u64, end_us: u64) {
        for r in [1, 2] {
            h.reach.link_cuts.push(LinkCut { from: r, to: 0, start_us, end_us });
            h.reach.link_cuts.push(LinkCut { from: 0, to: r, start_us, end_us });
        }
    }

    fn write_at(h: &mut History, sent_us: u64) {
        let id = h.ops.len();
        h.ops.push(Op {
            id,
            client: 0,
            node: 0,
            kind: OpKind::Set,
            call: Call::Set { key: "r0".into(), value: format!("c0-{id}"), ttl_ms: None },
            invoke_us: sent_us - 100,
            sent_us: Some(sent_us),
            complete_us: sent_us + 2_000,
            outcome: Outcome::Ok(Value::Ok),
        });
    }

    #[test]
    fn a_write_acknowledged_10_s_into_a_cut_of_every_replica_is_a_finding() {
        let mut h = history();
        cut_both_replicas(&mut h, 10 * S, 30 * S);
        write_at(&mut h, 20 * S);
        let (found, judged) = check(&h);
        assert_eq!((found.len(), judged), (1, 1), "{found:#?}");
        let m = &found[0].message;
        assert!(m.contains("n0 acknowledged op #0 (client 0, SET r0 c0-0) at 20.002000s"), "{m}");
        assert!(m.contains("from 15.000000s on") && m.contains("last had them at 10.005001s"), "{m}");
    }

    #[test]
    fn a_write_within_max_lag_and_slack_of_the_cut_is_fine() {
        let mut h = history();
        cut_both_replicas(&mut h, 10 * S, 30 * S);
        write_at(&mut h, 14 * S + S / 2);
        assert!(check(&h).0.is_empty());
        // Past T + slack (and the latency) it is not.
        write_at(&mut h, 15 * S + 10_000);
        assert_eq!(check(&h).0.len(), 1);
    }

    #[test]
    fn one_replica_in_reach_is_enough_for_one() {
        let mut h = history();
        cut_both_replicas(&mut h, 10 * S, 30 * S);
        h.reach.link_cuts.retain(|c| c.from != 2);
        write_at(&mut h, 20 * S);
        assert!(check(&h).0.is_empty());
        // Master→replica cuts alone stop nothing: ACKs still arrive.
        let mut h = history();
        cut_both_replicas(&mut h, 10 * S, 30 * S);
        h.reach.link_cuts.retain(|c| c.to != 0);
        write_at(&mut h, 20 * S);
        assert!(check(&h).0.is_empty());
        // Two needed, one cut off: a finding.
        let mut h = history();
        h.repl.min_replicas[0] = (2, 3);
        h.reach.link_cuts.push(LinkCut { from: 2, to: 0, start_us: 10 * S, end_us: 30 * S });
        write_at(&mut h, 20 * S);
        assert_eq!(check(&h).0.len(), 1);
    }

    #[test]
    fn replica_kills_and_pauses_end_reach_until_its_link_was_first_cut() {
        let mut h = history();
        h.reach.stops[1].push(Stop { start_us: 10 * S, end_us: 30 * S, paused: false });
        h.reach.stops[2].push(Stop { start_us: 9 * S, end_us: 30 * S, paused: true });
        write_at(&mut h, 20 * S);
        assert_eq!(check(&h).0.len(), 1);
        // After a cut of n2→n0, messages n2 wrote may still be held: its pause hides nothing.
        h.reach.link_cuts.push(LinkCut { from: 2, to: 0, start_us: 2 * S, end_us: 3 * S });
        assert!(check(&h).0.is_empty());
    }

    #[test]
    fn a_pause_of_the_master_moves_the_window_back_to_its_start() {
        let mut h = history();
        cut_both_replicas(&mut h, 10 * S, 30 * S);
        // Paused from 9 s to 19.5 s: ACKs that reached n0 meanwhile are read at 19.5 s.
        h.reach.stops[0].push(Stop { start_us: 9 * S, end_us: 19 * S + S / 2, paused: true });
        write_at(&mut h, 20 * S);
        assert!(check(&h).0.is_empty());
        // A kill is no pause: n0 restarts without replicas.
        h.reach.stops[0][0].paused = false;
        assert_eq!(check(&h).0.len(), 1);
    }

    #[test]
    fn nodes_without_min_replicas_and_failed_writes_are_not_judged() {
        let mut h = history();
        cut_both_replicas(&mut h, 10 * S, 30 * S);
        write_at(&mut h, 20 * S);
        h.ops[0].outcome = Outcome::Fail("NOREPLICAS Not enough good replicas to write.".into());
        write_at(&mut h, 21 * S);
        h.ops[1].node = 1;
        assert_eq!(check(&h), (vec![], 0));
    }
}

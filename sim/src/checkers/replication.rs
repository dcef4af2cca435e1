//! Replication checkers, over the clients' history and the probe of every node taken after the
//! settle phase (`History::repl`).
//!
//! - convergence: once healed and settled, every node holds the final master's dataset (equal
//!   DEBUG DIGEST and replication offset). Misses divergence that heals itself before the probe.
//! - resync: the INFO sync counters (summed over nodes; each counts the PSYNCs it served as a
//!   master since its last start) match the scenario's expectation. `partial`: no full sync
//!   beyond one initial sync per replica, no failed partial attempt, and at least one partial
//!   resync per cut that surely broke a link (see [`link_breaks`]). `full`: exactly one extra full sync and one failed partial
//!   attempt per replication link cut, and no partial resync. `divergent`: one full sync and one
//!   failed partial attempt per forced promotion (the demoted master), the others partial.
//! - writes: appends acknowledged and then WAIT-acknowledged by the scenario's number of
//!   replicas are in the final master's log (every replica that could be promoted held them);
//!   without promotions every acknowledged append is. Lost appends that no promise covered are
//!   reported in the notes, not as findings. Unless a forced promotion split the cluster, after
//!   each promotion only the new master acknowledges writes sent later.

use std::collections::BTreeSet;

use super::Finding;
use crate::history::{Call, History, NodeProbe};
use crate::scenario::{OpKind, ResyncExpect};

fn finding(checker: &str, message: String, ops: Vec<usize>) -> Finding {
    Finding { checker: checker.into(), message, ops }
}

fn final_master(h: &History) -> Option<&NodeProbe> {
    h.repl.probes.iter().find(|p| p.node == h.repl.final_master)
}

pub fn convergence(h: &History) -> Vec<Finding> {
    let mut found = Vec::new();
    let Some(m) = final_master(h) else {
        return vec![finding("repl_convergence", "the final master was not probed".into(), vec![])];
    };
    for p in &h.repl.probes {
        if let Some(e) = &p.error {
            found.push(finding("repl_convergence", format!("n{} did not answer the probe: {e}", p.node), vec![]));
        } else if p.digest != m.digest || p.master_repl_offset != m.master_repl_offset {
            found.push(finding(
                "repl_convergence",
                format!(
                    "n{} ({}, offset {}, digest {}) differs from master n{} (offset {}, digest {}) after the settle phase",
                    p.node, p.role, p.master_repl_offset, p.digest, m.node, m.master_repl_offset, m.digest
                ),
                vec![],
            ));
        }
    }
    found
}

/// (full, partial ok, partial err) summed over the probed nodes.
pub fn sync_counts(h: &History) -> (u64, u64, u64) {
    h.repl.probes.iter().fold((0, 0, 0), |a, p| (a.0 + p.sync_full, a.1 + p.sync_partial_ok, a.2 + p.sync_partial_err))
}

/// Both sides check repl-timeout once a second (replicationCron), so a cut must outlast the
/// timeout by this much to be sure to break the link.
const TIMEOUT_SLACK_MS: u64 = 1000;
/// A replica reconnects on its next replicationCron (1 s) and then needs a few round trips:
/// cuts of one link closer together than this may end in a single resync.
const RECONNECT_SLACK_MS: u64 = 2000;

/// How many times replication links were surely broken: per replica, cuts that began while its
/// link was up, merged when they are closer than [`RECONNECT_SLACK_MS`], counted when longer
/// than repl-timeout plus [`TIMEOUT_SLACK_MS`]. Each must have ended in a resync.
pub fn link_breaks(h: &History) -> u64 {
    // A cut before the replica's link is up (its first sync since it started) only delays
    // that sync.
    let up = |node: u32, at: u64| {
        let started = h.kills_us.get(node as usize).and_then(|k| k.iter().rev().find(|&&t| t <= at)).copied();
        h.repl.synced_us.iter().any(|&(n, t)| n == node && t <= at && started.is_none_or(|s| t > s))
    };
    let mut cuts: Vec<_> = h.repl.cuts.iter().copied().filter(|&(node, start, _)| up(node, start)).collect();
    cuts.sort_unstable();
    let mut merged: Vec<(u32, u64, u64)> = Vec::new();
    for (node, start, end) in cuts {
        match merged.last_mut() {
            Some(m) if m.0 == node && start <= m.2 + RECONNECT_SLACK_MS * 1000 => m.2 = m.2.max(end),
            _ => merged.push((node, start, end)),
        }
    }
    let min_us = (h.repl.repl_timeout_ms + TIMEOUT_SLACK_MS) * 1000;
    merged.iter().filter(|(_, start, end)| end - start >= min_us).count() as u64
}

pub fn resync(h: &History) -> Vec<Finding> {
    let (full, ok, err) = sync_counts(h);
    let initial = u64::from(h.repl.nodes.saturating_sub(1));
    let cuts = h.repl.cuts.len() as u64;
    let what = format!("sync_full {full}, sync_partial_ok {ok}, sync_partial_err {err}");
    let bad = match h.repl.expect_resync {
        Some(ResyncExpect::Partial) => {
            let breaks = link_breaks(h);
            (full != initial || err != 0 || ok < breaks).then(|| {
                format!(
                    "expected only partial resyncs after {initial} initial full syncs, at least {breaks} of them \
                     (cuts longer than repl-timeout), got {what}"
                )
            })
        }
        Some(ResyncExpect::Full) => (full != initial + cuts || err != cuts || ok != 0).then(|| {
            format!(
                "expected {} full syncs ({initial} initial + one per cut) and {cuts} failed partial attempts, got {what}",
                initial + cuts
            )
        }),
        Some(ResyncExpect::Divergent) => {
            let forced = h.repl.promotions.iter().filter(|p| p.forced).count() as u64;
            (full != initial + forced || err != forced || ok < forced * u64::from(h.repl.nodes.saturating_sub(2)))
                .then(|| {
                    format!(
                        "expected {} full syncs ({initial} initial + one per forced promotion), {forced} failed partial \
                         attempts and a partial resync of every other replica, got {what}",
                        initial + forced
                    )
                })
        }
        None => None,
    };
    bad.map(|m| finding("repl_resync", m, vec![])).into_iter().collect()
}

/// Findings, and notes on losses no promise covered. A promise is WAIT's (the append was
/// WAIT-acknowledged by the scenario's number of replicas) or, without any promotion, the
/// master's own acknowledgement; appends lost across a promotion without WAIT are what
/// asynchronous replication allows: a note, or a finding when there are more than
/// `replication.max_lost_acked_writes`.
pub fn writes(h: &History) -> (Vec<Finding>, Vec<String>) {
    let mut found = Vec::new();
    let mut notes = Vec::new();
    let Some(m) = final_master(h) else {
        return (vec![finding("repl_writes", "the final master was not probed".into(), vec![])], notes);
    };
    let present: BTreeSet<u64> = m.log.iter().copied().collect();
    let promoted = !h.repl.promotions.is_empty();
    let waited: std::collections::BTreeMap<usize, i64> = h.repl.waits.iter().copied().collect();
    let need = h.repl.wait_replicas.map(i64::from);
    let mut sent = BTreeSet::new();
    let mut lost_unpromised = 0;
    for op in &h.ops {
        let Call::Append { id } = op.call else { continue };
        if op.sent_us.is_some() {
            sent.insert(id);
        }
        if !op.is_ok() || present.contains(&id) {
            continue;
        }
        let acks = waited.get(&op.id).copied();
        let promised = match need {
            Some(n) if acks.is_some_and(|a| a >= n) => {
                Some(format!("WAIT-acknowledged by {} replicas", acks.unwrap_or(0)))
            }
            _ if !promoted => Some("acknowledged with no promotion".into()),
            _ => None,
        };
        match promised {
            Some(why) => found.push(finding(
                "repl_writes",
                format!("append {id} ({why}) is missing from the final master n{}", m.node),
                vec![op.id],
            )),
            None => lost_unpromised += 1,
        }
    }
    match h.repl.max_lost_acked_writes {
        Some(max) if lost_unpromised > max => found.push(finding(
            "repl_writes",
            format!(
                "{lost_unpromised} acknowledged appends lost across a promotion (no WAIT promise), more than \
                 replication.max_lost_acked_writes = {max}"
            ),
            vec![],
        )),
        _ if lost_unpromised > 0 => notes.push(format!(
            "repl_writes: {lost_unpromised} acknowledged appends lost across a promotion (no WAIT promise)"
        )),
        _ => {}
    }
    for id in &m.log {
        if !sent.contains(id) {
            found.push(finding("repl_writes", format!("id {id} in the final log was never appended"), vec![]));
        }
    }
    if !h.repl.promotions.iter().any(|p| p.forced) {
        // Epochs between promotions: (from, until, master). Node 0 is the first master.
        let mut epochs = Vec::new();
        let mut from = 0;
        let mut master = 0;
        for p in &h.repl.promotions {
            epochs.push((from, p.start_us, master));
            (from, master) = (p.end_us, p.node);
        }
        epochs.push((from, u64::MAX, master));
        for op in &h.ops {
            let write = !matches!(op.kind, OpKind::Get | OpKind::GetCounter | OpKind::Read);
            let Some(sent) = op.sent_us.filter(|_| write && op.is_ok()) else { continue };
            if let Some(&(_, _, m)) = epochs.iter().find(|e| sent > e.0 && op.complete_us < e.1 && op.node != e.2) {
                found.push(finding(
                    "repl_writes",
                    format!("n{} acknowledged a write while n{m} was the master", op.node),
                    vec![op.id],
                ));
            }
        }
    }
    (found, notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Op, Outcome, Promotion, Value};

    fn partial_history(cuts: Vec<(u32, u64, u64)>, sync_partial_ok: u64) -> History {
        let mut h = History::new(3);
        h.repl.nodes = 3;
        h.repl.expect_resync = Some(ResyncExpect::Partial);
        h.repl.repl_timeout_ms = 2000;
        h.repl.cuts = cuts;
        h.repl.synced_us = vec![(1, S), (2, S)];
        h.repl.probes = vec![NodeProbe { node: 0, sync_full: 2, sync_partial_ok, ..NodeProbe::default() }];
        h
    }

    /// Three appends acknowledged by node 0 without WAIT, a promotion of node 1 after them,
    /// and only the first in the final master's list.
    fn lost_across_a_promotion(max: Option<u64>) -> History {
        let mut h = History::new(2);
        h.repl.nodes = 2;
        h.repl.final_master = 1;
        h.repl.max_lost_acked_writes = max;
        h.repl.promotions = vec![Promotion { start_us: 20 * S, end_us: 21 * S, node: 1, forced: false }];
        h.repl.probes = vec![NodeProbe { node: 1, log: vec![1], ..NodeProbe::default() }];
        for id in 1..=3u64 {
            h.ops.push(Op {
                id: id as usize - 1,
                client: 0,
                node: 0,
                kind: OpKind::Append,
                call: Call::Append { id },
                invoke_us: id * S,
                sent_us: Some(id * S),
                complete_us: id * S + 1000,
                outcome: Outcome::Ok(Value::Int(id as i64)),
            });
        }
        h
    }

    #[test]
    fn unpromised_losses_are_noted_or_fail_past_the_scenarios_bound() {
        let (found, notes) = writes(&lost_across_a_promotion(None));
        assert!(found.is_empty(), "{found:?}");
        assert_eq!(notes, ["repl_writes: 2 acknowledged appends lost across a promotion (no WAIT promise)"]);
        assert!(writes(&lost_across_a_promotion(Some(2))).0.is_empty());
        let (found, _) = writes(&lost_across_a_promotion(Some(1)));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].message.contains("more than replication.max_lost_acked_writes = 1"), "{}", found[0].message);
    }

    const S: u64 = 1_000_000; // µs

    #[test]
    fn partial_expectation_needs_a_resync_per_cut_longer_than_repl_timeout() {
        let h = partial_history(vec![(1, 10 * S, 14 * S)], 0);
        assert_eq!(link_breaks(&h), 1);
        assert_eq!(resync(&h).len(), 1, "a 4 s cut with repl-timeout 2 s and no partial resync is a finding");
        assert!(resync(&partial_history(vec![(1, 10 * S, 14 * S)], 1)).is_empty());
    }

    #[test]
    fn short_or_adjacent_cuts_of_one_link_count_once() {
        // 2.5 s is within repl-timeout + slack: the link may survive it.
        assert_eq!(link_breaks(&partial_history(vec![(1, 10 * S, 12 * S + S / 2)], 0)), 0);
        // Two cuts of n1 one second apart end in one resync; a cut of n2 is its own.
        let h = partial_history(vec![(1, 10 * S, 14 * S), (2, 11 * S, 15 * S), (1, 15 * S, 19 * S)], 2);
        assert_eq!(link_breaks(&h), 2);
        assert!(resync(&h).is_empty());
    }

    #[test]
    fn a_cut_before_the_replicas_first_sync_breaks_nothing() {
        let mut h = partial_history(vec![(1, S / 2, 5 * S)], 0);
        h.repl.synced_us = vec![(1, 6 * S)];
        assert_eq!(link_breaks(&h), 0);
        // Nor one after a restart, until the restarted replica has synced again.
        let mut h = partial_history(vec![(1, 10 * S, 14 * S)], 0);
        h.kills_us[1].push(9 * S);
        assert_eq!(link_breaks(&h), 0);
        h.repl.synced_us.push((1, 9 * S + S / 2));
        assert_eq!(link_breaks(&h), 1);
    }
}

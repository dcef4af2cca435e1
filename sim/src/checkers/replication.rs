//! Replication checkers, over the clients' history and the probe of every node taken after the
//! settle phase (`History::repl`).
//!
//! - convergence: once healed and settled, every node holds the final master's dataset (equal
//!   DEBUG DIGEST and replication offset). Misses divergence that heals itself before the probe.
//! - resync: the INFO sync counters (summed over nodes; each counts the PSYNCs it served as a
//!   master since its last start) match the scenario's expectation. `partial`: no full sync
//!   beyond one initial sync per replica and no failed partial attempt. `full`: exactly one extra full sync and one failed partial
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

pub fn resync(h: &History) -> Vec<Finding> {
    let (full, ok, err) = sync_counts(h);
    let initial = u64::from(h.repl.nodes.saturating_sub(1));
    let cuts = h.repl.cuts.len() as u64;
    let what = format!("sync_full {full}, sync_partial_ok {ok}, sync_partial_err {err}");
    let bad = match h.repl.expect_resync {
        Some(ResyncExpect::Partial) => {
            // A cut shorter than repl-timeout need not break the link, so partial resyncs are
            // not counted; a replica that never resynced fails convergence instead.
            (full != initial || err != 0)
                .then(|| format!("expected only partial resyncs after {initial} initial full syncs, got {what}"))
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

/// Findings, and notes on losses no promise covered.
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
    if lost_unpromised > 0 {
        notes.push(format!(
            "repl_writes: {lost_unpromised} acknowledged appends lost across a promotion (no WAIT promise)"
        ));
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

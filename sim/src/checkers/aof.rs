//! What an AOF promises under each `appendfsync` policy, checked on the RPUSH log workload:
//! `append` pushes a unique id to one list, `read` reads the whole list.
//!
//! - `always`: a push acknowledged before a read was sent is in that read, whatever crashed.
//! - `everysec`: an acknowledged push may be missing only if a kill or power failure came
//!   within [`EVERYSEC_LOSS_WINDOW_US`] after its acknowledgement (Redis: up to 2 s of
//!   postponed writes, plus the fsync that runs once a second and may be slow).
//! - `no`: an acknowledged push may be missing only across a power failure (a kill keeps the
//!   page cache, and writes reach it before replies).
//!
//! Under every policy: a read holds no id twice and no id that was never pushed, and what
//! survives is a prefix — a read agrees with the read before it up to some point, and holds
//! nothing of the earlier read after that point (no holes, no reordering). Without a crash in
//! between, the earlier read is a prefix of the later one.
//!
//! What it can miss: losses that no read observed, and losses of pushes with unknown outcomes.

use std::collections::{BTreeMap, BTreeSet};

use super::register::{describe, fmt_us};
use super::Finding;
use crate::history::{Call, History, Op, Value};

/// Everysec may lose pushes acknowledged this long before a crash: 2 s of postponement, the
/// next once-a-second fsync, a slow disk's fsync (up to 3 s under `disk_slow`), and slack.
pub const EVERYSEC_LOSS_WINDOW_US: u64 = 7_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    Always,
    Everysec,
    No,
}

impl Policy {
    fn name(self) -> &'static str {
        match self {
            Policy::Always => "aof_always",
            Policy::Everysec => "aof_everysec",
            Policy::No => "aof_no",
        }
    }
}

fn finding(policy: Policy, message: String, ops: Vec<usize>) -> Finding {
    Finding { checker: policy.name().into(), message, ops }
}

fn ids_of(op: &Op) -> Option<&[u64]> {
    match (&op.call, op.value()) {
        (Call::Read, Some(Value::Ids(ids))) => Some(ids),
        _ => None,
    }
}

pub fn check(history: &History, policy: Policy) -> Vec<Finding> {
    // (acknowledged, id, op, sent): a crash after sending may hit a reply still in flight.
    let mut acked: Vec<(u64, u64, usize, u64)> = Vec::new();
    let mut sent: BTreeMap<u64, u64> = BTreeMap::new();
    for op in &history.ops {
        if let (Call::Append { id }, Some(s)) = (&op.call, op.sent_us) {
            sent.insert(*id, s);
            if op.is_ok() {
                acked.push((op.complete_us, *id, op.id, s));
            }
        }
    }
    acked.sort_unstable();
    let crashes: Vec<u64> = history.kills_us.iter().flatten().copied().collect();
    let power: Vec<u64> = history.power_fails_us.iter().flatten().copied().collect();
    let may_lose = |sent_us: u64, acked_us: u64, read_sent_us: u64| -> bool {
        let between = |t: &u64| *t >= sent_us && *t <= read_sent_us;
        match policy {
            Policy::Always => false,
            Policy::Everysec => {
                crashes.iter().any(|t| between(t) && t.saturating_sub(acked_us) <= EVERYSEC_LOSS_WINDOW_US)
            }
            Policy::No => power.iter().any(between),
        }
    };
    let mut reads: Vec<&Op> = history.ops.iter().filter(|o| ids_of(o).is_some() && o.sent_us.is_some()).collect();
    reads.sort_by_key(|o| o.complete_us);
    let mut findings = Vec::new();
    let mut reported: BTreeSet<u64> = BTreeSet::new();
    for (i, read) in reads.iter().enumerate() {
        let ids = ids_of(read).expect("filtered");
        let read_sent = read.sent_us.expect("filtered");
        let present: BTreeSet<u64> = ids.iter().copied().collect();
        if present.len() != ids.len() {
            findings.push(finding(policy, format!("{} holds an id twice", describe(read)), vec![read.id]));
        }
        for id in &present {
            if sent.get(id).is_none_or(|&s| s > read.complete_us) {
                findings.push(finding(
                    policy,
                    format!("id {id} was never pushed but is in {}", describe(read)),
                    vec![read.id],
                ));
            }
        }
        for &(done, id, op, sent_us) in acked.iter().take_while(|a| a.0 < read_sent) {
            if !present.contains(&id) && !may_lose(sent_us, done, read_sent) && reported.insert(id) {
                findings.push(finding(
                    policy,
                    format!("push of {id} acknowledged at {} is missing from {}", fmt_us(done), describe(read)),
                    vec![op, read.id],
                ));
            }
        }
        // The latest read that completed before this one was sent.
        let Some(prev) = reads[..i].iter().rev().find(|p| p.complete_us < read_sent) else { continue };
        let before = ids_of(prev).expect("filtered");
        let common = before.iter().zip(ids).take_while(|(a, b)| a == b).count();
        let crashed = crashes.iter().any(|&t| t >= prev.sent_us.unwrap_or(0) && t <= read.complete_us);
        let earlier: BTreeSet<u64> = before.iter().copied().collect();
        let reordered = ids[common..].iter().any(|id| earlier.contains(id));
        if reordered || (!crashed && common < before.len()) {
            findings.push(finding(
                policy,
                format!(
                    "{} is not a prefix-extension of {}: they agree on {common} ids, then differ",
                    describe(read),
                    describe(prev)
                ),
                vec![prev.id, read.id],
            ));
        }
    }
    findings
}

//! Checkers read the history after the run and say what it contradicts. Each is sound for
//! what it claims (a correct system never fails it); each documents what it can miss.

pub mod aof;
pub mod clock;
pub mod counter;
pub mod durability;
pub mod liveness;
pub mod register;
pub mod replication;
pub mod sentinel;

use serde::{Deserialize, Serialize};

use crate::history::History;
use crate::scenario::CheckerKind;

/// One contradiction: which checker, what, and the operations involved (ids in the history).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub checker: String,
    pub message: String,
    pub ops: Vec<usize>,
}

/// Findings cap per checker: one is enough to fail a run, a few help to read it.
const MAX_FINDINGS_PER_CHECKER: usize = 20;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub findings: Vec<Finding>,
    /// Checks that gave up within their budget: neither pass nor fail.
    pub inconclusive: Vec<String>,
    /// What was checked, for the report (`register: 12 keys, 3410 ops`).
    pub notes: Vec<String>,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Runs the scenario's checkers over the history.
pub fn run(kinds: &[CheckerKind], history: &History, liveness_grace_us: u64) -> Verdict {
    let mut v = Verdict::default();
    let mut kinds = kinds.to_vec();
    kinds.sort();
    kinds.dedup();
    for kind in kinds {
        let mut found = match kind {
            CheckerKind::Register => {
                let (f, stats) = register::check(history, register::DEFAULT_STEP_BUDGET);
                v.notes.push(format!("register: {} keys, {} ops searched", stats.keys, stats.ops));
                v.inconclusive.extend(
                    stats.inconclusive_keys.into_iter().map(|k| format!("register: {k}: search budget exhausted")),
                );
                f
            }
            CheckerKind::Counter => {
                v.notes.push(format!("counter: {} ops", history.ops.iter().filter(|o| o.kind.is_counter()).count()));
                counter::check(history)
            }
            CheckerKind::Liveness => liveness::check(history, liveness_grace_us),
            CheckerKind::Durability => {
                v.notes.push(format!(
                    "durability: {} acknowledged appends",
                    history.ops.iter().filter(|o| o.kind == crate::scenario::OpKind::Append && o.is_ok()).count()
                ));
                durability::check(history)
            }
            CheckerKind::AofAlways | CheckerKind::AofEverysec | CheckerKind::AofNo => {
                let policy = match kind {
                    CheckerKind::AofAlways => aof::Policy::Always,
                    CheckerKind::AofEverysec => aof::Policy::Everysec,
                    _ => aof::Policy::No,
                };
                let pushes = history.ops.iter().filter(|o| o.kind == crate::scenario::OpKind::Append && o.is_ok());
                let reads = history.ops.iter().filter(|o| o.kind == crate::scenario::OpKind::Read && o.is_ok());
                v.notes.push(format!("{kind:?}: {} acknowledged pushes, {} reads", pushes.count(), reads.count()));
                aof::check(history, policy)
            }
            CheckerKind::ReplConvergence => {
                v.notes.push(format!("repl_convergence: {} nodes probed", history.repl.probes.len()));
                replication::convergence(history)
            }
            CheckerKind::ReplResync => {
                let (full, ok, err) = replication::sync_counts(history);
                v.notes.push(format!(
                    "repl_resync: sync_full {full}, sync_partial_ok {ok}, sync_partial_err {err}; {} cuts, {} restarts, {} promotions",
                    history.repl.cuts.len(),
                    history.repl.restarts.len(),
                    history.repl.promotions.len()
                ));
                replication::resync(history)
            }
            CheckerKind::SentinelLeader => {
                let r = &history.sentinel;
                v.notes.push(format!(
                    "sentinel_leader: {} votes, {} elections won, {} promotions started",
                    r.votes.len(),
                    r.elected.len(),
                    r.promoting.len()
                ));
                sentinel::leaders(history)
            }
            CheckerKind::ReplWrites => {
                let (f, notes) = replication::writes(history);
                v.notes.push(format!("repl_writes: {} WAITs", history.repl.waits.len()));
                v.notes.extend(notes);
                f
            }
        };
        found.truncate(MAX_FINDINGS_PER_CHECKER);
        v.findings.extend(found);
    }
    v
}

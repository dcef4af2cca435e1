//! Checkers read the history after the run and say what it contradicts. Each is sound for
//! what it claims (a correct system never fails it); each documents what it can miss.

pub mod aof;
pub mod clock;
pub mod cluster;
pub mod counter;
pub mod durability;
pub mod liveness;
pub mod min_replicas;
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

/// In a cluster the per-key checkers name "the cluster", not the node 0 they were shown.
fn name_keyspace(findings: &mut [Finding], history: &History) {
    if !history.cluster.ids.is_empty() {
        for f in findings {
            if let Some(rest) = f.message.strip_prefix("node 0") {
                f.message = format!("cluster{rest}");
            }
        }
    }
}

/// Runs the scenario's checkers over the history.
pub fn run(kinds: &[CheckerKind], history: &History, liveness_grace_us: u64) -> Verdict {
    let mut v = Verdict::default();
    let mut kinds = kinds.to_vec();
    kinds.sort();
    kinds.dedup();
    // A cluster is one keyspace spread over its masters: the register and counter models
    // follow each key wherever it moves (the scenario rules out what would reset a key or
    // expire it by a different clock).
    let one_keyspace;
    let keyspace = if history.cluster.ids.is_empty() {
        history
    } else {
        one_keyspace = history.as_one_keyspace();
        &one_keyspace
    };
    for kind in kinds {
        let mut found = match kind {
            CheckerKind::Register => {
                let (mut f, stats) = register::check(keyspace, register::DEFAULT_STEP_BUDGET);
                name_keyspace(&mut f, history);
                v.notes.push(format!("register: {} keys, {} ops searched", stats.keys, stats.ops));
                v.inconclusive.extend(
                    stats.inconclusive_keys.into_iter().map(|k| format!("register: {k}: search budget exhausted")),
                );
                f
            }
            CheckerKind::Counter => {
                v.notes.push(format!("counter: {} ops", history.ops.iter().filter(|o| o.kind.is_counter()).count()));
                let mut f = counter::check(keyspace);
                name_keyspace(&mut f, history);
                f
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
            CheckerKind::SlotOwnership => {
                let c = &history.cluster;
                v.notes.push(format!(
                    "slot_ownership: {} served operations ({} after ASK), {} ownership changes, {} votes, {} promotions, {} reshards",
                    history.ops.iter().filter(|o| o.is_ok()).count(),
                    c.asked.len(),
                    c.owns.len(),
                    c.votes.len(),
                    c.promotions.len(),
                    c.reshards.len()
                ));
                cluster::slot_ownership(history)
            }
            CheckerKind::ClusterConvergence => {
                v.notes.push(format!("cluster_convergence: {} nodes probed", history.cluster.probes.len()));
                cluster::convergence(history)
            }
            CheckerKind::MinReplicas => {
                let (f, judged) = min_replicas::check(history);
                let r = &history.reach;
                v.notes.push(format!(
                    "min_replicas: {judged} acknowledged writes on nodes with min-replicas-to-write; {} node link cuts, {} stops",
                    r.link_cuts.len(),
                    r.stops.iter().map(Vec::len).sum::<usize>()
                ));
                f
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

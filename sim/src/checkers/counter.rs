//! Counter keys: INCR and GET replies must fit one counter per (node, key), which a kill resets
//! (no persistence yet: a restarted node starts empty). The history is split into epochs at
//! the node's kills; an operation belongs to the epoch in which it was sent (an acknowledged
//! one also completed there: its connection died with the incarnation).
//!
//! Within an epoch, for acknowledged INCRs `a`, `b` and GETs `g` (replies are counts of
//! increments applied since the epoch began), the rules, each implied by any linearization:
//! 1. distinct INCRs return distinct values;
//! 2. if `a` completed before `b` was sent, `a`'s reply < `b`'s;
//! 3. `b`'s reply ≥ 1 + the acknowledged INCRs that completed before `b` was sent;
//! 4. `b`'s reply ≤ the INCRs (acknowledged or unknown) sent before `b` completed;
//! 5. `g` returns at least the largest INCR reply, and the number of acknowledged INCRs,
//!    completed before `g` was sent, and at most the INCRs sent before `g` completed; nil is
//!    0.
//!
//! The rules are necessary, not sufficient, for linearizability: the check is polynomial and
//! never raises a false alarm, but can miss an anomaly only a full search would see.

use std::collections::BTreeMap;

use super::register::describe;
use super::Finding;
use crate::history::{Call, History, Op, Outcome, Value};

#[derive(Default)]
struct Epoch<'a> {
    /// (sent, completed, reply, op) of acknowledged INCRs.
    acked: Vec<(u64, u64, i64, &'a Op)>,
    /// Send times of every INCR that may have taken effect (acknowledged or unknown).
    sent: Vec<u64>,
    /// (sent, completed, value, op) of acknowledged GETs.
    gets: Vec<(u64, u64, i64, &'a Op)>,
}

pub fn check(history: &History) -> Vec<Finding> {
    let mut epochs: BTreeMap<(u32, &str, usize), Epoch<'_>> = BTreeMap::new();
    let mut findings = Vec::new();
    for op in history.ops.iter().filter(|o| o.kind.is_counter()) {
        let (Some(key), Some(sent)) = (op.call.key(), op.sent_us) else {
            continue;
        };
        let epoch = epochs.entry((op.node, key, history.epoch(op.node, sent))).or_default();
        match (&op.call, &op.outcome) {
            (Call::Incr { .. }, Outcome::Ok(Value::Int(n))) => {
                epoch.sent.push(sent);
                epoch.acked.push((sent, op.complete_us, *n, op));
            }
            (Call::Incr { .. }, Outcome::Unknown(_)) => epoch.sent.push(sent),
            (Call::GetCounter { .. }, Outcome::Ok(v)) => {
                let n = match v {
                    Value::Nil => 0,
                    Value::Str(s) => match s.parse::<i64>() {
                        Ok(n) => n,
                        Err(_) => {
                            findings.push(bad(op, "GET of a counter returned a non-integer"));
                            continue;
                        }
                    },
                    _ => {
                        findings.push(bad(op, "GET of a counter returned an unexpected reply"));
                        continue;
                    }
                };
                epoch.gets.push((sent, op.complete_us, n, op));
            }
            (Call::Incr { .. }, Outcome::Ok(_)) => {
                findings.push(bad(op, "INCR returned a non-integer"));
            }
            _ => {}
        }
    }
    for ((node, key, epoch_no), e) in &epochs {
        let ctx = format!("node {node} key {key} epoch {epoch_no}");
        check_epoch(&ctx, e, &mut findings);
    }
    findings
}

fn bad(op: &Op, what: &str) -> Finding {
    Finding { checker: "counter".into(), message: format!("{what}: {}", describe(op)), ops: vec![op.id] }
}

fn check_epoch(ctx: &str, e: &Epoch<'_>, findings: &mut Vec<Finding>) {
    let mut sent = e.sent.clone();
    sent.sort_unstable();
    let sent_before = |t: u64| sent.partition_point(|&s| s < t) as i64;
    // Acknowledged INCRs by completion time: prefix maxima answer "largest reply completed
    // before t" and prefix counts "how many completed before t".
    let mut by_completion: Vec<(u64, i64)> = e.acked.iter().map(|a| (a.1, a.2)).collect();
    by_completion.sort_unstable();
    let mut prefix_max = Vec::with_capacity(by_completion.len());
    let mut m = i64::MIN;
    for &(_, n) in &by_completion {
        m = m.max(n);
        prefix_max.push(m);
    }
    let completed_before = |t: u64| {
        let k = by_completion.partition_point(|&(c, _)| c < t);
        (k as i64, if k == 0 { None } else { Some(prefix_max[k - 1]) })
    };
    let mut fail = |op: &Op, msg: String| {
        findings.push(Finding {
            checker: "counter".into(),
            message: format!("{ctx}: {msg}: {}", describe(op)),
            ops: vec![op.id],
        });
    };
    let mut seen: BTreeMap<i64, &Op> = BTreeMap::new();
    for &(s, c, n, op) in &e.acked {
        if let Some(other) = seen.insert(n, op) {
            fail(op, format!("INCR reply {n} also returned by op #{}", other.id));
            continue;
        }
        let (done, max_done) = completed_before(s);
        if let Some(max) = max_done.filter(|&max| max >= n) {
            fail(op, format!("INCR returned {n} after an INCR that had returned {max} completed"));
        } else if n < 1 + done {
            fail(op, format!("INCR returned {n} though {done} INCRs had completed before it was sent"));
        } else if n > sent_before(c) {
            fail(op, format!("INCR returned {n} though only {} INCRs were sent before it completed", sent_before(c)));
        }
    }
    for &(s, c, n, op) in &e.gets {
        let (done, max_done) = completed_before(s);
        let low = done.max(max_done.unwrap_or(0));
        let high = sent_before(c);
        if n < low {
            fail(op, format!("GET returned {n} though the counter had reached {low} before it was sent"));
        } else if n > high {
            fail(op, format!("GET returned {n} though only {high} INCRs were sent before it completed"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::OpKind;

    fn op(h: &mut History, call: Call, t: (u64, u64), outcome: Outcome) {
        let kind = if matches!(call, Call::Incr { .. }) { OpKind::Incr } else { OpKind::GetCounter };
        let id = h.ops.len();
        h.ops.push(Op {
            id,
            client: 0,
            node: 0,
            kind,
            call,
            invoke_us: t.0,
            sent_us: Some(t.0),
            complete_us: t.1,
            outcome,
        });
    }
    fn incr(h: &mut History, t: (u64, u64), n: i64) {
        op(h, Call::Incr { key: "c0".into() }, t, Outcome::Ok(Value::Int(n)));
    }
    fn get(h: &mut History, t: (u64, u64), v: Value) {
        op(h, Call::GetCounter { key: "c0".into() }, t, Outcome::Ok(v));
    }

    #[test]
    fn increasing_replies_pass() {
        let mut h = History::new(1);
        incr(&mut h, (0, 1), 1);
        incr(&mut h, (2, 5), 3);
        incr(&mut h, (3, 4), 2);
        get(&mut h, (6, 7), Value::Str("3".into()));
        assert!(check(&h).is_empty());
    }

    #[test]
    fn lost_increment_or_duplicate_fails() {
        let mut h = History::new(1);
        incr(&mut h, (0, 1), 1);
        incr(&mut h, (2, 3), 1);
        assert_eq!(check(&h).len(), 1);
        let mut h = History::new(1);
        incr(&mut h, (0, 1), 1);
        incr(&mut h, (2, 3), 2);
        get(&mut h, (4, 5), Value::Str("1".into()));
        assert_eq!(check(&h).len(), 1);
    }

    #[test]
    fn reply_beyond_the_increments_sent_fails() {
        let mut h = History::new(1);
        incr(&mut h, (0, 1), 2);
        assert_eq!(check(&h).len(), 1);
        let mut h = History::new(1);
        op(&mut h, Call::Incr { key: "c0".into() }, (0, 9), Outcome::Unknown("timeout".into()));
        incr(&mut h, (1, 2), 2);
        assert!(check(&h).is_empty(), "the unknown INCR may have landed first");
    }

    #[test]
    fn kill_starts_a_new_epoch() {
        let mut h = History::new(1);
        incr(&mut h, (0, 1), 1);
        incr(&mut h, (2, 3), 2);
        h.kills_us[0].push(5);
        incr(&mut h, (6, 7), 1);
        get(&mut h, (8, 9), Value::Str("1".into()));
        assert!(check(&h).is_empty());
    }
}

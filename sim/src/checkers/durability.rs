//! The toy log's promise: an append acknowledged (after fsync) is in every read that starts
//! after the acknowledgement, across kills and power failures; and a read holds only ids that
//! some append sent before the read completed. Appends with unknown or failed outcomes may or
//! may not appear.

use std::collections::{BTreeMap, BTreeSet};

use super::register::describe;
use super::Finding;
use crate::history::{Call, History, Value};

pub fn check(history: &History) -> Vec<Finding> {
    let mut acked: Vec<(u64, u64, usize)> = Vec::new();
    let mut sent: BTreeMap<u64, u64> = BTreeMap::new();
    for op in &history.ops {
        if let (Call::Append { id }, Some(s)) = (&op.call, op.sent_us) {
            sent.insert(*id, s);
            if op.is_ok() {
                acked.push((op.complete_us, *id, op.id));
            }
        }
    }
    acked.sort_unstable();
    let mut findings = Vec::new();
    // One finding per lost append, at the first read that misses it: later reads only repeat it.
    let mut reported: BTreeSet<u64> = BTreeSet::new();
    for read in &history.ops {
        let (Call::Read, Some(Value::Ids(ids)), Some(read_sent)) = (&read.call, read.value(), read.sent_us) else {
            continue;
        };
        let present: BTreeSet<u64> = ids.iter().copied().collect();
        for &(done, id, op) in acked.iter().take_while(|a| a.0 < read_sent) {
            if !present.contains(&id) && reported.insert(id) {
                findings.push(Finding {
                    checker: "durability".into(),
                    message: format!(
                        "append {id} acknowledged at {} is missing from {}",
                        super::register::fmt_us(done),
                        describe(read)
                    ),
                    ops: vec![op, read.id],
                });
            }
        }
        for id in &present {
            if sent.get(id).is_none_or(|&s| s > read.complete_us) {
                findings.push(Finding {
                    checker: "durability".into(),
                    message: format!("id {id} was never appended but is in {}", describe(read)),
                    ops: vec![read.id],
                });
            }
        }
    }
    findings
}

//! After every fault is healed, the system must serve again: each client's operations invoked
//! once `grace` has passed (time to give up on an old connection and connect anew) must all
//! succeed, and each client must complete at least one.

use std::collections::BTreeMap;

use super::register::{describe, fmt_us};
use super::Finding;
use crate::history::History;

pub fn check(history: &History, grace_us: u64) -> Vec<Finding> {
    let from = history.healed_us + grace_us;
    let mut findings = Vec::new();
    let mut ok_per_client: BTreeMap<u32, usize> = BTreeMap::new();
    let clients = history.ops.iter().map(|o| o.client).max().map_or(0, |c| c + 1);
    for c in 0..clients {
        ok_per_client.insert(c, 0);
    }
    for op in history.ops.iter().filter(|o| o.invoke_us >= from) {
        if op.is_ok() {
            *ok_per_client.entry(op.client).or_default() += 1;
        } else {
            findings.push(Finding {
                checker: "liveness".into(),
                message: format!("healed since {} but {}", fmt_us(history.healed_us), describe(op)),
                ops: vec![op.id],
            });
        }
    }
    for (client, n) in ok_per_client {
        if n == 0 {
            findings.push(Finding {
                checker: "liveness".into(),
                message: format!(
                    "client {client} completed no operation between {} and the end ({})",
                    fmt_us(from),
                    fmt_us(history.end_us)
                ),
                ops: vec![],
            });
        }
    }
    findings
}

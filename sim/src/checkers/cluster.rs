//! Cluster checkers over the nodes' journal and the operator's final probe.
//!
//! `slot_ownership` guarantees, for every operation a node answered with a value (not a
//! redirect or an error): at some moment between the request leaving the client and its reply,
//! that node owned the key's slot by its own journal, or was importing it and the request came
//! with ASKING. A correct node never breaks this: it redirects everything else
//! (`getNodeByQuery`), and a replica owns no slots (the workload never sends READONLY). It also
//! checks elections: no master grants votes to two candidates in one epoch, and no two
//! replicas promote themselves with the same epoch. What it cannot see: whether the node's
//! own view was right, and operations whose outcome is unknown (nobody knows who served them).
//!
//! `cluster_convergence` guarantees, after the settle phase (every fault healed, interrupted
//! slot moves finished by the operator): every node answers, says `cluster_state:ok`, and
//! reports the same owner for every one of the 16384 slots; every master holds keys only of
//! slots it owns (a key left behind by a move, or written where it no longer belongs, shows
//! here); every replica has its master's DEBUG DIGEST.

use std::collections::{BTreeMap, BTreeSet};

use super::Finding;
use crate::history::{History, Ownership};
use crate::workload::{call_text, LOG_KEY};

fn finding(checker: &str, message: String, ops: Vec<usize>) -> Finding {
    Finding { checker: checker.into(), message, ops }
}

fn covers(o: &Ownership, slot: u16, asked: bool) -> bool {
    o.owned.iter().any(|&(a, b)| a <= slot && slot <= b) || (asked && o.importing.contains(&slot))
}

/// Per node, its journal in time order.
fn timelines(h: &History) -> BTreeMap<u32, Vec<&Ownership>> {
    let mut t: BTreeMap<u32, Vec<&Ownership>> = BTreeMap::new();
    for o in &h.cluster.owns {
        t.entry(o.node).or_default().push(o);
    }
    for v in t.values_mut() {
        v.sort_by_key(|o| o.at_us);
    }
    t
}

/// The node that owned `slot` at `t_us` by the journal (the last claim at or before then).
fn owner_at(t: &BTreeMap<u32, Vec<&Ownership>>, slot: u16, t_us: u64) -> Option<u32> {
    t.iter()
        .filter_map(|(&n, entries)| {
            let last = entries.iter().rev().find(|o| o.at_us <= t_us)?;
            covers(last, slot, false).then_some((last.at_us, n))
        })
        .max()
        .map(|(_, n)| n)
}

pub fn slot_ownership(h: &History) -> Vec<Finding> {
    let mut out = Vec::new();
    let t = timelines(h);
    let asked: BTreeSet<usize> = h.cluster.asked.iter().copied().collect();
    for op in h.ops.iter().filter(|o| o.is_ok()) {
        let Some(sent) = op.sent_us else { continue };
        let key = op.call.key().unwrap_or(LOG_KEY);
        let slot = redsim::cluster::key_hash_slot(key.as_bytes());
        let with_ask = asked.contains(&op.id);
        let entries = t.get(&op.node).map(Vec::as_slice).unwrap_or(&[]);
        let at_send = entries.iter().rev().find(|o| o.at_us <= sent);
        let during = entries.iter().filter(|o| o.at_us > sent && o.at_us <= op.complete_us);
        let ok = at_send.into_iter().chain(during).any(|o| covers(o, slot, with_ask));
        if !ok {
            let owner = owner_at(&t, slot, sent).map_or("nobody".to_string(), |n| format!("n{n}"));
            out.push(finding(
                "slot_ownership",
                format!(
                    "n{} served {} (slot {slot}{}) between {sent} and {} µs without owning the slot; its owner then: {owner}",
                    op.node,
                    call_text(&op.call),
                    if with_ask { ", asked with ASKING" } else { "" },
                    op.complete_us
                ),
                vec![op.id],
            ));
        }
    }
    let mut votes: BTreeMap<(u32, u64), BTreeSet<&str>> = BTreeMap::new();
    for (_, voter, epoch, candidate) in &h.cluster.votes {
        votes.entry((*voter, *epoch)).or_default().insert(candidate);
    }
    for ((voter, epoch), candidates) in votes.into_iter().filter(|(_, c)| c.len() > 1) {
        let names: Vec<&str> = candidates.into_iter().collect();
        out.push(finding(
            "slot_ownership",
            format!("n{voter} voted for {} in epoch {epoch}", names.join(" and ")),
            vec![],
        ));
    }
    let mut promoted: BTreeMap<u64, BTreeSet<u32>> = BTreeMap::new();
    for (_, node, epoch) in &h.cluster.promotions {
        promoted.entry(*epoch).or_default().insert(*node);
    }
    for (epoch, nodes) in promoted.into_iter().filter(|(_, n)| n.len() > 1) {
        let names: Vec<String> = nodes.iter().map(|n| format!("n{n}")).collect();
        out.push(finding(
            "slot_ownership",
            format!("{} all promoted themselves in epoch {epoch}", names.join(", ")),
            vec![],
        ));
    }
    out
}

pub fn convergence(h: &History) -> Vec<Finding> {
    let mut out = Vec::new();
    let probes = &h.cluster.probes;
    let bad = |m: String| finding("cluster_convergence", m, vec![]);
    for p in probes {
        if let Some(e) = &p.error {
            out.push(bad(format!("n{} did not answer the final probe: {e}", p.node)));
        } else if p.state != "ok" {
            out.push(bad(format!("n{} reports cluster_state:{} after the settle phase", p.node, p.state)));
        }
    }
    let answered: Vec<_> = probes.iter().filter(|p| p.error.is_none()).collect();
    let Some(first) = answered.first() else {
        if !probes.is_empty() {
            out.push(bad("no node answered the final probe".into()));
        }
        return out;
    };
    let covered: u32 = first.slots.iter().map(|&(a, b, _)| u32::from(b - a) + 1).sum();
    if covered != redsim::cluster::CLUSTER_SLOTS as u32 {
        out.push(bad(format!("n{}'s slot map covers {covered} of 16384 slots", first.node)));
    }
    for p in &answered[1..] {
        if p.slots != first.slots {
            let diff = p
                .slots
                .iter()
                .find(|s| !first.slots.contains(s))
                .or_else(|| first.slots.iter().find(|s| !p.slots.contains(s)));
            out.push(bad(format!(
                "n{} and n{} disagree on the slot map (first difference: {diff:?})",
                p.node, first.node
            )));
        }
    }
    let name = |id: &str| match probes.iter().find(|q| q.id == id) {
        Some(q) => format!("n{}", q.node),
        None => id.to_string(),
    };
    for p in &answered {
        match &p.master {
            None => {
                let foreign: Vec<&String> = p
                    .keys
                    .iter()
                    .filter(|k| {
                        let s = redsim::cluster::key_hash_slot(k.as_bytes());
                        !p.slots.iter().any(|(a, b, owner)| *a <= s && s <= *b && *owner == p.id)
                    })
                    .collect();
                if let Some(k) = foreign.first() {
                    let s = redsim::cluster::key_hash_slot(k.as_bytes());
                    let owner = p.slots.iter().find(|(a, b, _)| *a <= s && s <= *b).map(|(_, _, o)| name(o));
                    out.push(bad(format!(
                        "master n{} holds {} key(s) of slots it does not own, e.g. {k} (slot {s}, owner {})",
                        p.node,
                        foreign.len(),
                        owner.unwrap_or_else(|| "nobody".into())
                    )));
                }
            }
            Some(m) => match answered.iter().find(|q| &q.id == m) {
                Some(q) if q.digest != p.digest => out.push(bad(format!(
                    "replica n{} has digest {} but its master n{} has {}",
                    p.node, p.digest, q.node, q.digest
                ))),
                Some(_) => {}
                None => out.push(bad(format!("replica n{}'s master {} did not answer", p.node, name(m)))),
            },
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Call, ClusterProbe, Op, Outcome, Value};
    use crate::scenario::OpKind;

    fn own(at_us: u64, node: u32, owned: &[(u16, u16)], importing: &[u16]) -> Ownership {
        Ownership { at_us, node, owned: owned.to_vec(), importing: importing.to_vec() }
    }

    fn get(id: usize, node: u32, key: &str, sent: u64, done: u64) -> Op {
        Op {
            id,
            client: 0,
            node,
            kind: OpKind::Get,
            call: Call::Get { key: key.into() },
            invoke_us: sent,
            sent_us: Some(sent),
            complete_us: done,
            outcome: Outcome::Ok(Value::Nil),
        }
    }

    /// `r0` is in slot 6248 (CLUSTER KEYSLOT r0).
    const R0: u16 = 6248;

    #[test]
    fn a_node_serving_a_slot_it_gave_away_is_caught_and_one_it_owned_meanwhile_is_not() {
        assert_eq!(redsim::cluster::key_hash_slot(b"r0"), R0);
        let mut h = History::new(2);
        h.cluster.owns = vec![
            own(0, 0, &[(0, 16383)], &[]),
            own(0, 1, &[], &[]),
            own(100, 1, &[], &[R0]),
            own(200, 1, &[(R0, R0)], &[]),
            own(250, 0, &[(0, R0 - 1), (R0 + 1, 16383)], &[]),
        ];
        h.ops = vec![
            get(0, 0, "r0", 50, 60),   // owner
            get(1, 0, "r0", 240, 300), // gave it away during the request: fine
            get(2, 0, "r0", 260, 270), // served after giving it away: caught
            get(3, 1, "r0", 120, 130), // importing, asked: fine
            get(4, 1, "r0", 150, 160), // importing, not asked: caught
            get(5, 1, "r0", 300, 310), // owner
        ];
        h.cluster.asked = vec![3];
        let f = slot_ownership(&h);
        let ops: Vec<usize> = f.iter().flat_map(|f| f.ops.clone()).collect();
        assert_eq!(ops, vec![2, 4], "{f:#?}");
        assert!(f[0].message.contains("its owner then: n1"), "{}", f[0].message);
    }

    #[test]
    fn two_candidates_in_one_epoch_or_two_promotions_with_one_epoch_are_caught() {
        let mut h = History::new(3);
        h.cluster.votes = vec![(1, 0, 5, "a".into()), (2, 0, 5, "a".into()), (3, 1, 5, "a".into())];
        h.cluster.promotions = vec![(4, 2, 5)];
        assert!(slot_ownership(&h).is_empty());
        h.cluster.votes.push((5, 1, 5, "b".into()));
        h.cluster.promotions.push((6, 1, 5));
        let f = slot_ownership(&h);
        assert_eq!(f.len(), 2, "{f:#?}");
        assert!(f[0].message.contains("n1 voted for a and b in epoch 5"));
        assert!(f[1].message.contains("n1, n2 all promoted themselves in epoch 5"));
    }

    fn probe(node: u32, id: &str, master: Option<&str>, keys: &[&str], digest: &str) -> ClusterProbe {
        ClusterProbe {
            node,
            id: id.into(),
            state: "ok".into(),
            master: master.map(String::from),
            slots: vec![(0, 8191, "a".into()), (8192, 16383, "b".into())],
            keys: keys.iter().map(|k| k.to_string()).collect(),
            digest: digest.into(),
            error: None,
        }
    }

    #[test]
    fn convergence_needs_one_map_keys_in_their_owners_slots_and_replicas_equal_to_masters() {
        // r0 is in slot 6248 (a's half), c0 in 10282 (b's half).
        let mut h = History::new(3);
        h.cluster.probes = vec![
            probe(0, "a", None, &["r0"], "d1"),
            probe(1, "b", None, &["c0"], "d2"),
            probe(2, "c", Some("a"), &["r0"], "d1"),
        ];
        assert!(convergence(&h).is_empty(), "{:#?}", convergence(&h));
        h.cluster.probes[1].keys.push("r0".into());
        h.cluster.probes[2].digest = "d3".into();
        h.cluster.probes[2].slots.pop();
        let f = convergence(&h);
        let text: Vec<&str> = f.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(f.len(), 3, "{text:#?}");
        assert!(text[0].contains("n2 and n0 disagree"));
        assert!(text[1].contains("master n1 holds 1 key(s) of slots it does not own, e.g. r0 (slot 6248, owner n0)"));
        assert!(text[2].contains("replica n2 has digest d3 but its master n0 has d1"));
    }
}

//! Sentinel elections, over what every sentinel journaled (`History::sentinel`).
//!
//! Guarantees checked: (1) no sentinel gives its vote to two candidates in one epoch (Redis's
//! `sentinelVoteLeader`: one vote per epoch, stored before the reply); (2) at most one
//! sentinel wins the election of an epoch (a majority of votes, each given once, has one
//! winner). Not checked here: that the leader promoted the best replica (the consequence,
//! lost WAIT-acknowledged writes, is `repl_writes`'s), nor liveness of the failover.

use std::collections::BTreeMap;

use super::Finding;
use crate::history::History;

pub fn leaders(h: &History) -> Vec<Finding> {
    let mut found = Vec::new();
    let mut votes: BTreeMap<(&str, u64), &str> = BTreeMap::new();
    for (voter, epoch, candidate) in &h.sentinel.votes {
        match votes.get(&(voter.as_str(), *epoch)) {
            Some(first) if first != candidate => found.push(Finding {
                checker: "sentinel_leader".into(),
                message: format!("{voter} voted twice in epoch {epoch}: for {first}, then for {candidate}"),
                ops: vec![],
            }),
            Some(_) => {}
            None => {
                votes.insert((voter, *epoch), candidate);
            }
        }
    }
    let mut leaders: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
    for (leader, epoch) in &h.sentinel.elected {
        let l = leaders.entry(*epoch).or_default();
        if !l.contains(&leader.as_str()) {
            l.push(leader);
        }
    }
    for (epoch, l) in leaders {
        if l.len() > 1 {
            found.push(Finding {
                checker: "sentinel_leader".into(),
                message: format!("epoch {epoch} has {} leaders: {}", l.len(), l.join(", ")),
                ops: vec![],
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(votes: &[(&str, u64, &str)], elected: &[(&str, u64)]) -> History {
        let mut h = History::new(3);
        h.sentinel.votes = votes.iter().map(|(a, e, b)| (a.to_string(), *e, b.to_string())).collect();
        h.sentinel.elected = elected.iter().map(|(a, e)| (a.to_string(), *e)).collect();
        h
    }

    #[test]
    fn one_vote_and_one_leader_per_epoch_pass() {
        let h = history(&[("s0", 1, "s0"), ("s1", 1, "s0"), ("s1", 1, "s0"), ("s1", 2, "s1")], &[("s0", 1), ("s1", 2)]);
        assert!(leaders(&h).is_empty());
    }

    #[test]
    fn a_second_vote_or_leader_in_an_epoch_is_found() {
        let h = history(&[("s2", 3, "s0"), ("s2", 3, "s1")], &[("s0", 3), ("s1", 3)]);
        let f = leaders(&h);
        assert_eq!(f.len(), 2, "{f:?}");
        assert!(f[0].message.contains("s2 voted twice in epoch 3"));
        assert!(f[1].message.contains("epoch 3 has 2 leaders: s0, s1"));
    }
}

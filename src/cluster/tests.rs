//! The cluster state machine on an in-memory bus: nodes meet, agree on the slot map, detect a
//! dead master and fail it over, and take a returning master back as a replica. No sockets,
//! no server: links are paired by the harness, time advances 100 ms a step.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::env::SeededRng;

struct Net {
    nodes: Vec<Cluster>,
    up: Vec<bool>,
    rng: SeededRng,
    /// (node, link) -> (peer node, peer link).
    pairs: BTreeMap<(usize, LinkId), (usize, LinkId)>,
    now_ms: u64,
}

const TIMEOUT_MS: u64 = 2000;

fn ip(i: usize) -> String {
    format!("10.0.0.{}", i + 1)
}

impl Net {
    fn new(n: usize) -> Net {
        let mut rng = SeededRng::from_seed(42);
        let now_ms = 1_700_000_000_000;
        let nodes = (0..n)
            .map(|i| {
                let mut c = Cluster::new(&mut rng, now_ms);
                c.conf.node_timeout_ms = TIMEOUT_MS;
                c.facts.port = 6379;
                c.facts.cport = 16379 + i as u16;
                let me = c.me_mut();
                me.port = 6379;
                me.cport = 16379 + i as u16;
                c
            })
            .collect();
        Net { nodes, up: vec![true; n], rng, pairs: BTreeMap::new(), now_ms }
    }

    fn by_cport(&self, cport: u16) -> usize {
        (cport - 16379) as usize
    }

    fn step(&mut self) {
        self.now_ms += 100;
        let now = self.now_ms;
        for i in 0..self.nodes.len() {
            if self.up[i] {
                self.nodes[i].cron(now, &mut self.rng);
                self.nodes[i].before_sleep(now, &mut self.rng);
                self.apply_effects(i);
            }
        }
        self.deliver();
    }

    fn apply_effects(&mut self, i: usize) {
        for e in std::mem::take(&mut self.nodes[i].effects) {
            match e {
                Effect::ReplicaOf { .. } => self.nodes[i].facts.has_master = true,
                Effect::BecomeMaster => self.nodes[i].facts.has_master = false,
                _ => {}
            }
        }
    }

    /// Moves every queued action until the bus is quiet (bounded: gossip always ends).
    fn deliver(&mut self) {
        let now = self.now_ms;
        for _ in 0..50 {
            let mut any = false;
            for i in 0..self.nodes.len() {
                let out = std::mem::take(&mut self.nodes[i].out);
                if !self.up[i] {
                    continue;
                }
                for a in out {
                    any = true;
                    match a {
                        BusAction::Connect { link, cport, .. } => {
                            let j = self.by_cport(cport);
                            if !self.up[j] {
                                self.nodes[i].link_closed(link);
                                continue;
                            }
                            let peer = self.nodes[j].link_accepted(&ip(i), &ip(j), now);
                            self.pairs.insert((i, link), (j, peer));
                            self.pairs.insert((j, peer), (i, link));
                            self.nodes[i].link_connected(link, now, &mut self.rng);
                        }
                        BusAction::Send { link, bytes } => {
                            let Some(&(j, peer)) = self.pairs.get(&(i, link)) else { continue };
                            if self.up[j] && !self.nodes[j].on_packet(peer, &bytes, now, &mut self.rng) {
                                self.close(j, peer);
                            }
                            self.nodes[j].before_sleep(now, &mut self.rng);
                            self.apply_effects(j);
                        }
                        BusAction::Close { link } => self.close(i, link),
                    }
                }
            }
            if !any {
                return;
            }
        }
    }

    fn close(&mut self, i: usize, link: LinkId) {
        if let Some((j, peer)) = self.pairs.remove(&(i, link)) {
            self.pairs.remove(&(j, peer));
            self.nodes[j].link_closed(peer);
            self.nodes[i].link_closed(link);
        }
    }

    /// The node dies: its links break at the peers.
    fn kill(&mut self, i: usize) {
        self.up[i] = false;
        let links: Vec<(usize, LinkId)> = self.pairs.keys().filter(|(n, _)| *n == i).copied().collect();
        for (n, l) in links {
            self.close(n, l);
        }
    }

    fn run_ms(&mut self, ms: u64) {
        for _ in 0..ms / 100 {
            self.step();
        }
    }

    fn name(&self, i: usize) -> String {
        self.nodes[i].myself.clone()
    }

    /// Three masters with a third of the slots each, epochs 1..=3, met through node 0; then
    /// node 3 + i replicates master i.
    fn form(masters: usize, replicas: bool) -> Net {
        let total = if replicas { masters * 2 } else { masters };
        let mut net = Net::new(total);
        let per = CLUSTER_SLOTS / masters;
        for m in 0..masters {
            let me = net.name(m);
            let end = if m + 1 == masters { CLUSTER_SLOTS } else { (m + 1) * per };
            for s in m * per..end {
                net.nodes[m].add_slot(&me, s as u16);
            }
            net.nodes[m].me_mut().config_epoch = m as u64 + 1;
            net.nodes[m].current_epoch = m as u64 + 1;
        }
        let now = net.now_ms;
        for j in 1..total {
            let cport = net.nodes[j].facts.cport;
            let mut rng = SeededRng::from_seed(j as u64);
            net.nodes[0].start_handshake(&mut rng, &ip(j), 6379, cport, now);
        }
        net.run_ms(5000);
        if replicas {
            for r in masters..total {
                let master = net.name(r - masters);
                net.nodes[r].set_master(&master);
            }
            net.run_ms(3000);
        }
        net
    }

    fn owner_view(&self, i: usize, slot: u16) -> Option<String> {
        self.nodes[i].slots[slot as usize].clone()
    }
}

#[test]
fn three_masters_meet_and_agree_on_the_slot_map() {
    let net = Net::form(3, false);
    for i in 0..3 {
        let c = &net.nodes[i];
        assert_eq!(c.nodes.len(), 3, "node {i} knows {:?}", c.nodes.keys());
        assert!(c.nodes.values().all(|n| !n.in_handshake() && !n.has(flag::PFAIL | flag::FAIL)));
        assert_eq!(c.state, State::Ok, "node {i}");
        assert_eq!(c.size, 3);
        for slot in [0u16, 5461, 16383] {
            assert_eq!(net.owner_view(i, slot), net.owner_view(0, slot));
        }
        assert_eq!(c.me().ip, ip(i), "a node learns its address from the MEET it receives");
    }
    assert_eq!(net.owner_view(1, 16383), Some(net.name(2)));
}

#[test]
fn a_dead_master_is_failed_over_to_its_replica_and_rejoins_as_a_replica() {
    let mut net = Net::form(3, true);
    for i in 0..6 {
        assert_eq!(net.nodes[i].nodes.len(), 6, "node {i}");
        assert_eq!(net.nodes[i].state, State::Ok, "node {i}");
    }
    assert!(net.nodes[3].me().is_replica());
    let (old, heir) = (net.name(0), net.name(3));
    net.kill(0);
    net.run_ms(TIMEOUT_MS * 4);
    for i in 1..6 {
        let c = &net.nodes[i];
        assert!(c.nodes[&old].failed(), "node {i} sees the old master FAIL");
        assert_eq!(net.owner_view(i, 0), Some(heir.clone()), "node {i}'s owner of slot 0");
        assert_eq!(c.state, State::Ok, "node {i}");
    }
    let epoch = net.nodes[3].me().config_epoch;
    assert!(epoch > 3, "the promotion took a new epoch ({epoch})");
    // One vote per master per epoch, and a majority of masters voted.
    let mut votes: BTreeSet<(usize, u64)> = BTreeSet::new();
    let mut voters = 0;
    for i in 1..6 {
        for (e, _) in net.nodes[i].take_journal().0 {
            assert!(votes.insert((i, e)), "node {i} voted twice in epoch {e}");
            if e == epoch {
                voters += 1;
            }
        }
    }
    assert!(voters >= 2, "{voters} votes for the winning epoch");
    net.up[0] = true;
    net.run_ms(TIMEOUT_MS * 4);
    let c = &net.nodes[0];
    assert!(c.me().is_replica(), "the returning master became a replica");
    assert_eq!(c.me().slaveof.as_deref(), Some(heir.as_str()));
    assert_eq!(net.owner_view(0, 0), Some(heir.clone()));
    for i in 1..6 {
        assert!(!net.nodes[i].nodes[&old].failed(), "node {i} cleared FAIL of the returned replica");
    }
}

#[test]
fn a_master_votes_once_per_epoch() {
    let mut net = Net::form(3, true);
    net.kill(0);
    net.run_ms(TIMEOUT_MS * 4);
    let c = &mut net.nodes[1];
    let cur = c.current_epoch;
    assert_eq!(c.last_vote_epoch, cur, "master 1 voted in the election");
    // A second replica asking in the same epoch is refused.
    let replica = net.name(4);
    let mut req = net.nodes[4].build_header();
    req.current_epoch = cur;
    let c = &mut net.nodes[1];
    c.nodes.get_mut(&replica).expect("known").flags |= flag::SLAVE;
    let before = c.out.len();
    c.send_failover_auth_if_needed(&replica, &req, net.now_ms + 60_000);
    assert_eq!(c.out.len(), before, "no second ACK in epoch {cur}");
}

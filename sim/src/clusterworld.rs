//! The cluster side of the world: an operator that creates a Redis Cluster out of the nodes as
//! `redis-cli --cluster create` does (slots split in order, one config epoch per master, MEET,
//! REPLICATE), moves slots during the run as `redis-cli --cluster reshard` does, finishes any
//! move a fault interrupted once the network is healed, and probes every node's view after the
//! settle phase. The nodes journal their own slots, votes and promotions (`cluster-journal`
//! log lines, simulator build only), which become the history's ownership timeline.
//!
//! Harness code, outside the env door: it drives madsim directly.

#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redsim::env::{Rng, SeededRng};
use redsim::protocol::frame::Frame;

use crate::history::{ClusterProbe, History, Ownership, Reshard};
use crate::replworld::{info_field, text, Admin};
use crate::scenario::ClusterOpts;
use crate::trace::Trace;
use crate::workload::LOG_KEY;

/// How long the creation may take before the run goes on without a healthy cluster.
const CREATE_WAIT: Duration = Duration::from_secs(30);
/// How long one slot move keeps retrying a step before it leaves the slot open.
const MOVE_WAIT: Duration = Duration::from_secs(10);
/// While creating, how often the operator meets again nodes that still miss others.
const REMEET_EVERY: Duration = Duration::from_secs(2);
/// After the settle phase, how long the probe waits for the nodes to agree.
const CONVERGE_WAIT: Duration = Duration::from_secs(30);
/// Keys MIGRATE moves per call (redis-cli's default pipeline is 10).
const MIGRATE_BATCH: usize = 10;
/// The longest the operator waits between moving a slot's keys and handing the slot over.
const MAX_OPERATOR_PAUSE_MS: u64 = 500;

/// The operator of a cluster world.
#[derive(Clone)]
pub struct ClusterAdmin {
    pub admin: Admin,
    pub opts: ClusterOpts,
    /// Set once every node reported cluster_state:ok; the clients wait for it.
    pub ready: Arc<AtomicBool>,
    /// Moves that did not finish, finished after the heal: (slot, from, to).
    pub open: Arc<std::sync::Mutex<Vec<(u16, u32, u32)>>>,
    /// The operator does one move at a time, in the order the nemesis asked for them, with
    /// the RNG of its choices; the fix after the heal queues behind them.
    pub queue: Arc<tokio::sync::Mutex<SeededRng>>,
}

fn args(words: &[&str]) -> Vec<Vec<u8>> {
    words.iter().map(|w| w.as_bytes().to_vec()).collect()
}

/// One CLUSTER NODES line, as far as the operator and the checkers need it.
#[derive(Clone, Debug)]
pub struct NodeLine {
    pub id: String,
    pub addr: String,
    pub flags: Vec<String>,
    pub master: Option<String>,
    pub slots: Vec<(u16, u16)>,
}

/// `a-b` or `a` (CLUSTER NODES, the journal) as a slot range.
fn slot_range(s: &str) -> Option<(u16, u16)> {
    match s.split_once('-') {
        Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
        None => s.parse().ok().map(|x| (x, x)),
    }
}

pub fn parse_nodes(text: &str) -> Vec<NodeLine> {
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        if f.len() < 8 {
            continue;
        }
        let slots = f[8..].iter().filter(|s| !s.starts_with('[')).filter_map(|s| slot_range(s)).collect();
        out.push(NodeLine {
            id: f[0].to_string(),
            addr: f[1].split('@').next().unwrap_or("").to_string(),
            flags: f[2].split(',').map(str::to_string).collect(),
            master: (f[3] != "-").then(|| f[3].to_string()),
            slots,
        });
    }
    out
}

impl ClusterAdmin {
    pub fn new(admin: Admin, opts: ClusterOpts, seed: u64) -> Self {
        ClusterAdmin {
            admin,
            opts,
            ready: Arc::new(AtomicBool::new(false)),
            open: Arc::new(std::sync::Mutex::new(Vec::new())),
            queue: Arc::new(tokio::sync::Mutex::new(reshard_rng(seed))),
        }
    }

    fn nodes(&self) -> u32 {
        self.opts.nodes()
    }

    async fn cmd(&self, node: u32, words: &[&str]) -> Result<String, String> {
        self.admin.command(node, &args(words)).await.map(|f| text(&f))
    }

    fn event(&self, msg: &str) {
        self.admin.rec.event(&format!("admin: {msg}"));
    }

    fn ids(&self) -> Vec<String> {
        self.admin.rec.history.lock().unwrap_or_else(|e| e.into_inner()).cluster.ids.clone()
    }

    fn node_of_id(&self, id: &str) -> Option<u32> {
        self.ids().iter().position(|i| i == id).map(|n| n as u32)
    }

    /// Retries `words` on `node` every 100 ms until it succeeds or `wait` passed.
    async fn cmd_retry(&self, node: u32, words: &[&str], wait: Duration) -> Result<String, String> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match self.cmd(node, words).await {
                Ok(r) => return Ok(r),
                Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Polls until `done` holds for every node's reply to `words`, or `wait` passed.
    async fn wait_all(&self, words: &[&str], wait: Duration, done: impl Fn(u32, &str) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let mut all = true;
            for n in 0..self.nodes() {
                let ok = self.cmd(n, words).await.is_ok_and(|r| done(n, &r));
                all &= ok;
            }
            if all {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Creates the cluster, as `redis-cli --cluster create --cluster-replicas R` does.
    pub async fn create(&self) {
        // The operator's first job: no move starts before the cluster exists.
        let _turn = self.queue.lock().await;
        let n = self.nodes();
        let mut ids = Vec::new();
        for node in 0..n {
            match self.cmd_retry(node, &["CLUSTER", "MYID"], CREATE_WAIT).await {
                Ok(id) => ids.push(id),
                Err(e) => {
                    self.event(&format!("cluster create: n{node} does not answer: {e}"));
                    return;
                }
            }
        }
        self.admin.rec.history.lock().unwrap_or_else(|e| e.into_inner()).cluster.ids = ids.clone();
        for m in 0..self.opts.masters {
            let (lo, hi) = self.opts.initial_slots(m);
            let epoch = (m + 1).to_string();
            for words in [
                vec!["CLUSTER", "ADDSLOTSRANGE", &lo.to_string(), &hi.to_string()],
                vec!["CLUSTER", "SET-CONFIG-EPOCH", &epoch],
            ] {
                if let Err(e) = self.cmd_retry(m, &words, CREATE_WAIT).await {
                    self.event(&format!("cluster create: n{m} {}: {e}", words[1]));
                }
            }
        }
        let first = self.admin.addrs[0];
        for node in 1..n {
            let (ip, port) = (first.ip().to_string(), first.port().to_string());
            if let Err(e) = self.cmd_retry(node, &["CLUSTER", "MEET", &ip, &port], CREATE_WAIT).await {
                self.event(&format!("cluster create: n{node} MEET: {e}"));
            }
        }
        // A MEET lost to a partition is not retried by the nodes (the handshake times out and
        // is forgotten): like redis-cli while it waits for the join, the operator has a node
        // meet again each peer it does not know yet. (A MEET of a known peer would only add a
        // handshake entry, dropped once the peer answers: those are not counted.)
        let missing = |node: u32, r: &str| -> Vec<u32> {
            let lines = parse_nodes(r);
            (0..n)
                .filter(|&j| j != node)
                .filter(|&j| {
                    !lines
                        .iter()
                        .any(|l| l.id == ids[j as usize] && !l.flags.iter().any(|f| f == "handshake" || f == "noaddr"))
                })
                .collect()
        };
        let deadline = tokio::time::Instant::now() + CREATE_WAIT;
        loop {
            let mut lonely = Vec::new();
            for node in 0..n {
                match self.cmd(node, &["CLUSTER", "NODES"]).await {
                    Ok(r) => lonely.extend(missing(node, &r).into_iter().map(|j| (node, j))),
                    Err(_) => lonely.push((node, if node == 0 { 1 } else { 0 })),
                }
            }
            if lonely.is_empty() {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                self.event("cluster create: the nodes did not all meet in time");
                break;
            }
            tokio::time::sleep(REMEET_EVERY).await;
            for (node, peer) in lonely {
                let addr = self.admin.addrs[peer as usize];
                let (ip, port) = (addr.ip().to_string(), addr.port().to_string());
                let _ = self.cmd(node, &["CLUSTER", "MEET", &ip, &port]).await;
            }
        }
        for node in self.opts.masters..n {
            let master = self.opts.initial_master_of(node).expect("a replica");
            let id = ids[master as usize].clone();
            if let Err(e) = self.cmd_retry(node, &["CLUSTER", "REPLICATE", &id], CREATE_WAIT).await {
                self.event(&format!("cluster create: n{node} REPLICATE n{master}: {e}"));
            }
        }
        let replicas = n - self.opts.masters;
        let ok = |_: u32, r: &str| info_field(r, "cluster_state") == Some("ok");
        let healthy = self.wait_all(&["CLUSTER", "INFO"], CREATE_WAIT, ok).await
            && self
                .wait_all(&["CLUSTER", "NODES"], CREATE_WAIT, |_, r| {
                    parse_nodes(r).iter().filter(|l| l.flags.iter().any(|f| f == "slave")).count() == replicas as usize
                })
                .await;
        let now = self.admin.rec.now_us();
        self.admin.rec.history.lock().unwrap_or_else(|e| e.into_inner()).cluster.ready_us = now;
        self.event(&format!("cluster created ({})", if healthy { "state ok everywhere" } else { "NOT healthy" }));
        self.ready.store(true, Ordering::SeqCst);
    }

    /// Who owns `slot` in a CLUSTER NODES reply (None: nobody, or a node the operator does not
    /// know).
    fn owner_in(&self, reply: &str, slot: u16) -> Option<u32> {
        parse_nodes(reply)
            .into_iter()
            .find(|l| l.slots.iter().any(|&(a, b)| a <= slot && slot <= b))
            .and_then(|l| self.node_of_id(&l.id))
    }

    /// `slot`'s owner as the first node that answers sees it; None if no node answers.
    async fn owner(&self, slot: u16) -> Option<Option<u32>> {
        for node in 0..self.nodes() {
            if let Ok(r) = self.cmd(node, &["CLUSTER", "NODES"]).await {
                return Some(self.owner_in(&r, slot));
            }
        }
        None
    }

    /// The masters as the operator's view has them (nodes owning slots or flagged master).
    async fn masters(&self) -> Vec<u32> {
        for node in 0..self.nodes() {
            let Ok(r) = self.cmd(node, &["CLUSTER", "NODES"]).await else { continue };
            return parse_nodes(&r)
                .iter()
                .filter(|l| l.flags.iter().any(|f| f == "master") && !l.flags.iter().any(|f| f == "fail"))
                .filter_map(|l| self.node_of_id(&l.id))
                .collect();
        }
        Vec::new()
    }

    /// A reshard fault: moves the slot of one of the workload's keys (drawn from `rng`) from
    /// its master to another master.
    pub async fn reshard(&self, keys: u32) {
        let mut rng = self.queue.lock().await;
        let rng = &mut *rng;
        let start_us = self.admin.rec.now_us();
        let key = match rng.below(3) {
            0 => format!("r{}", rng.below(u64::from(keys))),
            1 => format!("c{}", rng.below(u64::from(keys))),
            _ => LOG_KEY.to_string(),
        };
        let slot = redsim::cluster::key_hash_slot(key.as_bytes());
        let (Some(owner), masters) = (self.owner(slot).await, self.masters().await) else {
            self.event("reshard: no node answers CLUSTER NODES; skipped");
            return;
        };
        let Some(from) = owner else {
            self.event(&format!("reshard: slot {slot} ({key}) has no owner; skipped"));
            return;
        };
        let others: Vec<u32> = masters.into_iter().filter(|&m| m != from).collect();
        if others.is_empty() {
            self.event("reshard: no other master; skipped");
            return;
        }
        let to = others[rng.below(others.len() as u64) as usize];
        // The operator dawdles between moving the keys and closing the slot, as a tool does
        // between its round trips: clients asking the source meanwhile are sent on with ASK.
        let pause_ms = rng.below(MAX_OPERATOR_PAUSE_MS + 1);
        self.event(&format!("reshard: moving slot {slot} ({key}) from n{from} to n{to} (pause {pause_ms} ms)"));
        let (moved, outcome) = self.move_slot(slot, from, to, true, pause_ms).await;
        if outcome != "done" {
            self.open.lock().unwrap_or_else(|e| e.into_inner()).push((slot, from, to));
        }
        self.event(&format!("reshard: slot {slot} n{from} -> n{to}: {outcome} ({moved} keys moved)"));
        let r = Reshard { start_us, end_us: self.admin.rec.now_us(), slot, from, to, keys_moved: moved, outcome };
        self.admin.rec.history.lock().unwrap_or_else(|e| e.into_inner()).cluster.reshards.push(r);
    }

    /// redis-cli's `clusterManagerMoveSlot`: IMPORTING on the target, MIGRATING on the source,
    /// MIGRATE of the keys in batches, then SETSLOT NODE on the target, the source and every
    /// other master. `open` is false when finishing a move that already opened the slot.
    async fn move_slot(&self, slot: u16, from: u32, to: u32, open: bool, pause_ms: u64) -> (u64, String) {
        let ids = self.ids();
        let (sl, from_id, to_id) = (slot.to_string(), ids[from as usize].clone(), ids[to as usize].clone());
        if open {
            if let Err(e) = self.cmd(to, &["CLUSTER", "SETSLOT", &sl, "IMPORTING", &from_id]).await {
                return (0, format!("IMPORTING on n{to}: {e}"));
            }
            if let Err(e) = self.cmd(from, &["CLUSTER", "SETSLOT", &sl, "MIGRATING", &to_id]).await {
                let _ = self.cmd(to, &["CLUSTER", "SETSLOT", &sl, "STABLE"]).await;
                return (0, format!("MIGRATING on n{from}: {e} (IMPORTING undone)"));
            }
        }
        let mut moved = 0;
        loop {
            let batch = MIGRATE_BATCH.to_string();
            let keys = match self.admin.command(from, &args(&["CLUSTER", "GETKEYSINSLOT", &sl, &batch])).await {
                Ok(Frame::Array(items)) => items.iter().map(text).collect::<Vec<String>>(),
                Ok(other) => return (moved, format!("GETKEYSINSLOT on n{from}: {other:?}")),
                Err(e) => return (moved, format!("GETKEYSINSLOT on n{from}: {e}")),
            };
            if keys.is_empty() {
                break;
            }
            if let Err(e) = self.migrate(from, to, &keys).await {
                return (moved, format!("MIGRATE on n{from}: {e}"));
            }
            moved += keys.len() as u64;
        }
        tokio::time::sleep(Duration::from_millis(pause_ms)).await;
        if let Err(e) = self.cmd_retry(to, &["CLUSTER", "SETSLOT", &sl, "NODE", &to_id], MOVE_WAIT).await {
            return (moved, format!("SETSLOT NODE on n{to}: {e}"));
        }
        if let Err(e) = self.cmd_retry(from, &["CLUSTER", "SETSLOT", &sl, "NODE", &to_id], MOVE_WAIT).await {
            return (moved, format!("SETSLOT NODE on n{from}: {e}"));
        }
        for m in self.masters().await {
            if m != from && m != to {
                // As redis-cli: the others learn it from the bus anyway; errors are ignored.
                let _ = self.cmd(m, &["CLUSTER", "SETSLOT", &sl, "NODE", &to_id]).await;
            }
        }
        (moved, "done".into())
    }

    /// MIGRATE of `keys` from `from` to `to`, retried while the nodes cannot be reached. A
    /// MIGRATE whose reply was lost may have restored the keys on the target all the same (in
    /// Redis as here): the retry then finds them there (BUSYKEY) and goes on with REPLACE, as
    /// `redis-cli --cluster-replace` does. The source's copy is the live one: it served the
    /// keys all along.
    async fn migrate(&self, from: u32, to: u32, keys: &[String]) -> Result<String, String> {
        let target = self.admin.addrs[to as usize];
        let (ip, port) = (target.ip().to_string(), target.port().to_string());
        let deadline = tokio::time::Instant::now() + MOVE_WAIT;
        let mut replace = false;
        loop {
            let mut words = vec!["MIGRATE", &ip, &port, "", "0", "5000"];
            if replace {
                words.push("REPLACE");
            }
            words.push("KEYS");
            words.extend(keys.iter().map(String::as_str));
            match self.cmd(from, &words).await {
                Ok(r) => return Ok(r),
                Err(e) if e.contains("BUSYKEY") && !replace => {
                    self.event(&format!(
                        "reshard: n{to} has keys of the batch already (an earlier MIGRATE's reply was lost): REPLACE"
                    ));
                    replace = true;
                }
                Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// After the heal: finishes every move a fault interrupted (`redis-cli --cluster fix`).
    pub async fn fix_open_slots(&self) {
        let _turn = self.queue.lock().await;
        let open = std::mem::take(&mut *self.open.lock().unwrap_or_else(|e| e.into_inner()));
        for (slot, from, to) in open {
            // A failover may have handed the source's slots to its replica meanwhile: the keys
            // are wherever the slot's owner is now, as every node agrees once the heal has
            // spread (redis-cli's fix also starts from the current owner).
            let owner = self.agreed_owner(slot).await;
            let (moved, outcome) = match owner {
                Some(o) if o == to => {
                    for m in self.masters().await {
                        let _ = self
                            .cmd(m, &["CLUSTER", "SETSLOT", &slot.to_string(), "NODE", &self.ids()[to as usize]])
                            .await;
                    }
                    (0, "done (the target owns it: closed)".to_string())
                }
                Some(o) => self.move_slot(slot, o, to, true, 0).await,
                None => (0, "no agreed owner".to_string()),
            };
            let via = owner.filter(|&o| o != from).map(|o| format!(" (now from n{o})")).unwrap_or_default();
            self.event(&format!("fix: slot {slot} n{from} -> n{to}{via}: {outcome} ({moved} keys moved)"));
        }
    }

    /// The slot's owner once every node answers with the same one (None if that never happened
    /// within the convergence wait).
    async fn agreed_owner(&self, slot: u16) -> Option<u32> {
        let deadline = tokio::time::Instant::now() + CONVERGE_WAIT;
        loop {
            let mut seen = BTreeSet::new();
            for node in 0..self.nodes() {
                let owner = match self.cmd(node, &["CLUSTER", "NODES"]).await {
                    Ok(r) => self.owner_in(&r, slot),
                    Err(_) => None,
                };
                seen.insert(owner);
            }
            if seen.len() == 1 {
                if let Some(Some(o)) = seen.into_iter().next() {
                    return Some(o);
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn probe(&self, node: u32) -> ClusterProbe {
        let mut p = ClusterProbe { node, ..ClusterProbe::default() };
        let fail = |p: &mut ClusterProbe, what: &str, e: String| {
            if p.error.is_none() {
                p.error = Some(format!("{what}: {e}"));
            }
        };
        match self.cmd(node, &["CLUSTER", "INFO"]).await {
            Ok(info) => p.state = info_field(&info, "cluster_state").unwrap_or_default().to_string(),
            Err(e) => fail(&mut p, "CLUSTER INFO", e),
        }
        match self.cmd(node, &["CLUSTER", "NODES"]).await {
            Ok(r) => {
                for l in parse_nodes(&r) {
                    if l.flags.iter().any(|f| f == "myself") {
                        p.id = l.id.clone();
                        p.master = l.master.clone();
                    }
                    p.slots.extend(l.slots.iter().map(|&(a, b)| (a, b, l.id.clone())));
                }
                p.slots.sort();
            }
            Err(e) => fail(&mut p, "CLUSTER NODES", e),
        }
        match self.admin.command(node, &args(&["KEYS", "*"])).await {
            Ok(Frame::Array(items)) => {
                p.keys = items.iter().map(text).collect();
                p.keys.sort();
            }
            Ok(other) => fail(&mut p, "KEYS", format!("{other:?}")),
            Err(e) => fail(&mut p, "KEYS", e),
        }
        match self.cmd(node, &["DEBUG", "DIGEST"]).await {
            Ok(d) => p.digest = d,
            Err(e) => fail(&mut p, "DEBUG DIGEST", e),
        }
        p
    }

    /// After the settle phase: waits (up to `CONVERGE_WAIT`) until every node answers, says
    /// ok, agrees on the slot map, and every replica has its master's digest.
    pub async fn probe_all(&self) -> Vec<ClusterProbe> {
        let deadline = tokio::time::Instant::now() + CONVERGE_WAIT;
        loop {
            let mut probes = Vec::new();
            for n in 0..self.nodes() {
                probes.push(self.probe(n).await);
            }
            let agreed = converged(&probes);
            if agreed || tokio::time::Instant::now() >= deadline {
                self.event(&format!("cluster probe ({})", if agreed { "converged" } else { "not converged" }));
                return probes;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// Whether the probes show a settled cluster (what `cluster_convergence` then checks in detail).
pub fn converged(probes: &[ClusterProbe]) -> bool {
    let Some(first) = probes.first() else { return true };
    probes.iter().all(|p| {
        let digest_ok = match &p.master {
            Some(m) => probes.iter().find(|q| &q.id == m).is_some_and(|q| q.digest == p.digest),
            None => true,
        };
        p.error.is_none() && p.state == "ok" && p.slots == first.slots && digest_ok
    })
}

/// Reads the nodes' `cluster-journal` log lines out of the trace into the history. A line is
/// `[   s.micros] n<k> log: cluster-journal <id> owns [<ranges>] importing [<slots>]`, or
/// `... vote <epoch> <candidate>`, or `... promoted <epoch>`.
pub fn take_journal(trace: &Trace, h: &mut History) {
    trace.for_each_line(|line| {
        let Some((at_us, node, text)) = crate::trace::node_log(line) else { return };
        let Some(entry) = text.strip_prefix("cluster-journal ") else { return };
        let words: Vec<&str> = entry.split(' ').collect();
        match words.get(1..) {
            Some(["owns", owned, "importing", importing]) => {
                let list = |s: &str| -> Vec<String> {
                    s.trim_matches(|c| c == '[' || c == ']')
                        .split(',')
                        .filter(|x| !x.is_empty())
                        .map(String::from)
                        .collect()
                };
                let owned = list(owned).iter().filter_map(|r| slot_range(r)).collect();
                let importing = list(importing).iter().filter_map(|s| s.parse().ok()).collect();
                h.cluster.owns.push(Ownership { at_us, node, owned, importing });
            }
            Some(["vote", epoch, candidate]) => {
                if let Ok(e) = epoch.parse() {
                    h.cluster.votes.push((at_us, node, e, candidate.to_string()));
                }
            }
            Some(["promoted", epoch]) => {
                if let Ok(e) = epoch.parse() {
                    h.cluster.promotions.push((at_us, node, e));
                }
            }
            _ => {}
        }
    });
}

/// A fresh RNG for the operator's reshard choices.
fn reshard_rng(seed: u64) -> SeededRng {
    SeededRng::from_seed(Rng::next_u64(&mut crate::faults::rng_for(seed, "reshard")))
}

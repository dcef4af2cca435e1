//! Linearizability of register keys, one key of one node at a time (P-compositionality: a
//! history is linearizable iff each key's sub-history is), by the Wing–Gong search with
//! Lowe's memoization of (linearized set, state), as Porcupine does it.
//!
//! The model is one register per (node, key) holding nothing or a value with an optional TTL:
//! - SET writes a value no other operation writes, so a GET names the write it saw;
//! - a kill empties the register (no persistence yet), as a synthetic operation at the kill;
//! - an operation with an unknown outcome may take effect anywhere from sending to the node's
//!   next kill, or never (it is placed last, where it changes nothing that was checked);
//! - expiry is judged by the node's own wall clock ([`ClockTimeline`]), which faults move:
//!   a value written with TTL `ttl` at node time `w` must not be returned once the node's
//!   clock read more than `w + ttl` at the GET (Redis: expired iff `now > when`), and a GET
//!   may find the key gone once the node's clock went past `w + ttl` at any moment between the
//!   write and the GET (the active expire cycle may have deleted it then, even if the clock
//!   later stepped back). A GET that finds an expiring key gone deletes it (Redis's lazy
//!   expiry on a master). Both judgments use bounds over the operations' whole windows and
//!   [`CLOCK_SLACK_US`], so a correct server never fails them: the check is sound, and loses
//!   only the precision that unknown linearization points cost. It does not flag a key that
//!   expired too early when the windows allow the late reading of the clock.

use std::collections::{BTreeMap, HashSet};

use super::clock::{ClockTimeline, CLOCK_SLACK_US};
use super::Finding;
use crate::history::{Call, History, Op, Outcome, Value};

/// Search steps per key before the check gives up on it as inconclusive (never a failure).
pub const DEFAULT_STEP_BUDGET: u64 = 2_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Set {
        val: u32,
        ttl_us: Option<i64>,
    },
    Get(Option<u32>),
    /// DEL's reply: whether it deleted something; `None` when unknown.
    Del(Option<bool>),
    Reset,
}

#[derive(Clone, Copy, Debug)]
struct ROp {
    start: u64,
    end: u64,
    kind: Kind,
    /// Index in `History::ops`; `None` for a kill.
    origin: Option<usize>,
}

/// The register: the value and the index (in the key's op list) of the SET that wrote it.
type State = Option<(u32, u32)>;

struct Model<'a> {
    ops: &'a [ROp],
    clock: &'a ClockTimeline,
}

impl Model<'_> {
    fn ttl_of(&self, set: u32) -> Option<i64> {
        match self.ops[set as usize].kind {
            Kind::Set { ttl_us, .. } => ttl_us,
            _ => None,
        }
    }

    /// Could the value written by `set` have expired, by the node's clock, before `op` ended?
    fn may_have_expired(&self, set: u32, op: &ROp) -> bool {
        let Some(ttl) = self.ttl_of(set) else {
            return false;
        };
        let s = &self.ops[set as usize];
        let (write_lo, _) = self.clock.range(s.start, s.end.min(op.end).max(s.start));
        let (_, later_hi) = self.clock.range(s.start, op.end.max(s.start));
        later_hi - write_lo >= ttl - CLOCK_SLACK_US
    }

    /// Had the value written by `set` certainly expired, by the node's clock, whenever `op`
    /// ran?
    fn must_have_expired(&self, set: u32, op: &ROp) -> bool {
        let Some(ttl) = self.ttl_of(set) else {
            return false;
        };
        let s = &self.ops[set as usize];
        let (_, write_hi) = self.clock.range(s.start, s.end.min(op.end).max(s.start));
        let (read_lo, _) = self.clock.range(op.start, op.end);
        read_lo - write_hi > ttl + CLOCK_SLACK_US
    }

    fn step(&self, state: State, i: usize) -> Option<State> {
        let op = &self.ops[i];
        match op.kind {
            Kind::Set { val, .. } => Some(Some((val, i as u32))),
            Kind::Reset | Kind::Del(None) => Some(None),
            Kind::Get(None) | Kind::Del(Some(false)) => match state {
                None => Some(None),
                Some((_, set)) if self.may_have_expired(set, op) => Some(None),
                Some(_) => None,
            },
            Kind::Get(Some(x)) => match state {
                Some((v, set)) if v == x && !self.must_have_expired(set, op) => Some(state),
                _ => None,
            },
            Kind::Del(Some(true)) => match state {
                Some((_, set)) if !self.must_have_expired(set, op) => Some(None),
                _ => None,
            },
        }
    }
}

/// The Wing–Gong search's outcome for one key.
#[derive(Debug, PartialEq, Eq)]
enum Search {
    Linearizable,
    /// Stuck: no order explains the op at this index (the furthest the search got).
    Violation {
        blocker: usize,
        depth: usize,
    },
    OutOfBudget,
}

const HEAD: usize = 0;

struct Events {
    /// Per event: (op, is_call, matching event).
    ev: Vec<(usize, bool, usize)>,
    prev: Vec<usize>,
    next: Vec<usize>,
}

impl Events {
    /// A doubly linked list of calls and returns in time order behind a head sentinel;
    /// `usize::MAX` ends it. Calls sort before returns at equal times, so touching windows count
    /// as concurrent (more orders allowed: never a false alarm).
    fn new(ops: &[ROp]) -> Events {
        let mut order: Vec<(u64, bool, usize)> = Vec::with_capacity(ops.len() * 2);
        for (i, op) in ops.iter().enumerate() {
            order.push((op.start, false, i));
            order.push((op.end, true, i));
        }
        order.sort();
        let n = order.len();
        let mut ev = vec![(0, false, 0); n + 1];
        let mut call_at = vec![0; ops.len()];
        for (pos, &(_, is_return, op)) in order.iter().enumerate() {
            ev[pos + 1] = (op, !is_return, 0);
            if is_return {
                ev[call_at[op]].2 = pos + 1;
                ev[pos + 1].2 = call_at[op];
            } else {
                call_at[op] = pos + 1;
            }
        }
        let prev = (0..=n).map(|i| i.wrapping_sub(1)).collect();
        let next = (0..=n).map(|i| if i == n { usize::MAX } else { i + 1 }).collect();
        Events { ev, prev, next }
    }

    fn unlink(&mut self, e: usize) {
        let (p, n) = (self.prev[e], self.next[e]);
        self.next[p] = n;
        if n != usize::MAX {
            self.prev[n] = p;
        }
    }

    fn relink(&mut self, e: usize) {
        let (p, n) = (self.prev[e], self.next[e]);
        self.next[p] = e;
        if n != usize::MAX {
            self.prev[n] = e;
        }
    }

    /// Takes a call and its return out of the list (the op is linearized).
    fn lift(&mut self, call: usize) {
        self.unlink(call);
        self.unlink(self.ev[call].2);
    }

    fn unlift(&mut self, call: usize) {
        self.relink(self.ev[call].2);
        self.relink(call);
    }
}

fn search(model: &Model<'_>, budget: u64) -> Search {
    let n = model.ops.len();
    let mut events = Events::new(model.ops);
    let mut linearized = vec![0u64; n.div_ceil(64)];
    let mut cache: HashSet<(Vec<u64>, State)> = HashSet::new();
    let mut stack: Vec<(usize, State)> = Vec::new();
    let mut state: State = None;
    let mut steps = 0u64;
    let (mut best_depth, mut blocker) = (0usize, 0usize);
    let mut e = events.next[HEAD];
    while events.next[HEAD] != usize::MAX {
        steps += 1;
        if steps > budget {
            return Search::OutOfBudget;
        }
        let (op, is_call, _) = events.ev[e];
        if is_call {
            if let Some(next_state) = model.step(state, op) {
                linearized[op / 64] |= 1 << (op % 64);
                if cache.insert((linearized.clone(), next_state)) {
                    stack.push((e, state));
                    state = next_state;
                    events.lift(e);
                    e = events.next[HEAD];
                    continue;
                }
                linearized[op / 64] &= !(1 << (op % 64));
            }
            e = events.next[e];
        } else {
            if stack.len() >= best_depth {
                best_depth = stack.len();
                blocker = op;
            }
            let Some((call, prev_state)) = stack.pop() else {
                return Search::Violation { blocker, depth: best_depth };
            };
            let op = events.ev[call].0;
            state = prev_state;
            linearized[op / 64] &= !(1 << (op % 64));
            events.unlift(call);
            e = events.next[call];
        }
    }
    Search::Linearizable
}

/// Checks every register key of every node; findings name the key and the stuck operation.
pub fn check(history: &History, budget: u64) -> (Vec<Finding>, RegisterStats) {
    let mut by_key: BTreeMap<(u32, &str), Vec<&Op>> = BTreeMap::new();
    for op in &history.ops {
        if !op.kind.is_register() {
            continue;
        }
        if let Some(key) = op.call.key() {
            by_key.entry((op.node, key)).or_default().push(op);
        }
    }
    let mut findings = Vec::new();
    let mut stats = RegisterStats::default();
    for ((node, key), ops) in by_key {
        let clock = ClockTimeline::new(&history.clocks[node as usize]);
        let rops = match key_ops(history, node, &ops) {
            Ok(r) => r,
            Err(f) => {
                findings.push(f);
                continue;
            }
        };
        stats.keys += 1;
        stats.ops += rops.len();
        let model = Model { ops: &rops, clock: &clock };
        match search(&model, budget) {
            Search::Linearizable => {}
            Search::OutOfBudget => stats.inconclusive_keys.push(format!("node {node} key {key}")),
            Search::Violation { blocker, depth } => {
                let what = match rops[blocker].origin {
                    Some(i) => describe(&history.ops[i]),
                    None => format!("the kill at {}", fmt_us(rops[blocker].start)),
                };
                findings.push(Finding {
                    checker: "register".into(),
                    message: format!(
                        "node {node} key {key}: not linearizable ({} ops; the search linearized at most {depth} and found no place for {what})",
                        rops.len()
                    ),
                    ops: rops[blocker].origin.into_iter().collect(),
                });
            }
        }
    }
    (findings, stats)
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RegisterStats {
    pub keys: usize,
    pub ops: usize,
    pub inconclusive_keys: Vec<String>,
}

/// The key's operations as the model sees them, plus one reset per kill of the node.
fn key_ops(history: &History, node: u32, ops: &[&Op]) -> Result<Vec<ROp>, Finding> {
    let mut values: BTreeMap<&str, u32> = BTreeMap::new();
    for op in ops {
        if let Call::Set { value, .. } = &op.call {
            let next = values.len() as u32;
            values.entry(value).or_insert(next);
        }
    }
    let mut read: HashSet<u32> = HashSet::new();
    let mut deleted_something = false;
    for op in ops {
        match (op.call.clone(), op.value()) {
            (Call::Get { .. }, Some(Value::Str(s))) => match values.get(s.as_str()) {
                Some(&v) => {
                    read.insert(v);
                }
                None => {
                    return Err(Finding {
                        checker: "register".into(),
                        message: format!("node {node}: {} returned a value no SET wrote", describe(op)),
                        ops: vec![op.id],
                    })
                }
            },
            (Call::Del { .. }, Some(Value::Int(1))) => deleted_something = true,
            _ => {}
        }
    }
    let mut rops = Vec::with_capacity(ops.len());
    for op in ops {
        let Some((start, end)) = history.effect_window(op) else {
            continue;
        };
        let kind = match (&op.call, &op.outcome) {
            (Call::Set { value, ttl_ms, .. }, outcome) => {
                let val = values[value.as_str()];
                // An unknown plain SET nobody read can only hide other values; leaving it out
                // is exact unless a DEL needed something to delete, and keeps the search small.
                if matches!(outcome, Outcome::Unknown(_))
                    && ttl_ms.is_none()
                    && !read.contains(&val)
                    && !deleted_something
                {
                    continue;
                }
                Kind::Set { val, ttl_us: ttl_ms.map(|ms| ms as i64 * 1000) }
            }
            (Call::Get { .. }, Outcome::Ok(Value::Nil)) => Kind::Get(None),
            (Call::Get { .. }, Outcome::Ok(Value::Str(s))) => Kind::Get(Some(values[s.as_str()])),
            (Call::Get { .. }, _) => continue,
            (Call::Del { .. }, Outcome::Ok(Value::Int(n))) => Kind::Del(Some(*n > 0)),
            (Call::Del { .. }, _) => Kind::Del(None),
            _ => continue,
        };
        rops.push(ROp { start, end, kind, origin: Some(op.id) });
    }
    for &k in &history.kills_us[node as usize] {
        rops.push(ROp { start: k, end: k, kind: Kind::Reset, origin: None });
    }
    Ok(rops)
}

pub fn fmt_us(us: u64) -> String {
    format!("{}.{:06}s", us / 1_000_000, us % 1_000_000)
}

/// One line naming an operation for a finding.
pub fn describe(op: &Op) -> String {
    let sent = op.sent_us.map(fmt_us).unwrap_or_else(|| "-".into());
    let outcome = match &op.outcome {
        crate::history::Outcome::Ok(Value::Ids(ids)) => format!("Ok({} ids)", ids.len()),
        o => format!("{o:?}"),
    };
    format!(
        "op #{} (client {}, {:?} → {outcome}, invoked {}, sent {}, completed {})",
        op.id,
        op.client,
        op.call,
        fmt_us(op.invoke_us),
        sent,
        fmt_us(op.complete_us)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::ClockChange;
    use crate::scenario::OpKind;

    struct H {
        h: History,
    }

    impl H {
        fn new() -> Self {
            let mut h = History::new(1);
            h.end_us = 1_000_000_000;
            H { h }
        }
        fn op(&mut self, call: Call, t: (u64, u64), outcome: Outcome) -> &mut Self {
            let kind = match &call {
                Call::Get { .. } => OpKind::Get,
                Call::Set { .. } => OpKind::SetPx,
                Call::Del { .. } => OpKind::Del,
                _ => unreachable!(),
            };
            let id = self.h.ops.len();
            self.h.ops.push(Op {
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
            self
        }
        fn set(&mut self, v: &str, t: (u64, u64)) -> &mut Self {
            self.set_ttl(v, None, t, Outcome::Ok(Value::Ok))
        }
        fn set_ttl(&mut self, v: &str, ttl_ms: Option<u64>, t: (u64, u64), o: Outcome) -> &mut Self {
            let call = Call::Set { key: "r0".into(), value: v.into(), ttl_ms };
            self.op(call, t, o)
        }
        fn get(&mut self, v: Option<&str>, t: (u64, u64)) -> &mut Self {
            let value = v.map_or(Value::Nil, |s| Value::Str(s.into()));
            self.op(Call::Get { key: "r0".into() }, t, Outcome::Ok(value))
        }
        fn verdict(&self) -> Vec<Finding> {
            check(&self.h, DEFAULT_STEP_BUDGET).0
        }
    }

    #[test]
    fn sequential_reads_of_the_last_write_pass() {
        let mut h = H::new();
        h.get(None, (0, 1)).set("a", (2, 3)).get(Some("a"), (4, 5)).set("b", (6, 7)).get(Some("b"), (8, 9));
        assert!(h.verdict().is_empty());
    }

    #[test]
    fn stale_read_after_a_completed_write_fails() {
        let mut h = H::new();
        h.set("a", (0, 1)).set("b", (2, 3)).get(Some("a"), (4, 5));
        let f = h.verdict();
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].message.contains("not linearizable"));
    }

    #[test]
    fn concurrent_write_may_be_seen_either_way() {
        let mut h = H::new();
        h.set("a", (0, 1)).set("b", (2, 10)).get(Some("a"), (3, 4)).get(Some("b"), (5, 6));
        assert!(h.verdict().is_empty());
        let mut h = H::new();
        h.set("a", (0, 1)).set("b", (2, 10)).get(Some("b"), (3, 4)).get(Some("a"), (5, 6));
        assert_eq!(h.verdict().len(), 1, "b was seen, a cannot come back");
    }

    #[test]
    fn unknown_write_may_land_late_or_never() {
        let mut h = H::new();
        let unknown = Outcome::Unknown("timeout".into());
        h.set("a", (0, 1)).set_ttl("b", None, (2, 3), unknown).get(Some("a"), (4, 5)).get(Some("b"), (50, 51));
        assert!(h.verdict().is_empty());
    }

    #[test]
    fn kill_empties_the_register_and_stops_unknown_writes() {
        let mut h = H::new();
        h.set("a", (0, 1));
        h.h.kills_us[0].push(10);
        h.get(None, (20, 21));
        assert!(h.verdict().is_empty());
        let mut h = H::new();
        h.set("a", (0, 1));
        h.h.kills_us[0].push(10);
        h.get(Some("a"), (20, 21));
        assert_eq!(h.verdict().len(), 1, "a restarted node without persistence is empty");
        let mut h = H::new();
        h.set_ttl("a", None, (0, 1), Outcome::Unknown("eof".into()));
        h.h.kills_us[0].push(10);
        h.get(Some("a"), (20, 21));
        assert_eq!(h.verdict().len(), 1, "an unknown write before a kill cannot land after it");
    }

    #[test]
    fn value_never_written_fails() {
        let mut h = H::new();
        h.get(Some("zz"), (0, 1));
        h.set("a", (2, 3));
        assert!(h.verdict()[0].message.contains("no SET wrote"));
    }

    #[test]
    fn expired_value_must_not_be_read_but_may_vanish() {
        let ms = 1_000;
        let mut h = H::new();
        h.set_ttl("a", Some(100), (0, ms), Outcome::Ok(Value::Ok))
            .get(Some("a"), (50 * ms, 51 * ms))
            .get(None, (150 * ms, 151 * ms));
        assert!(h.verdict().is_empty());
        let mut h = H::new();
        h.set_ttl("a", Some(100), (0, ms), Outcome::Ok(Value::Ok)).get(Some("a"), (200 * ms, 201 * ms));
        assert_eq!(h.verdict().len(), 1, "read 200 ms after a 100 ms TTL");
        let mut h = H::new();
        h.set_ttl("a", Some(100), (0, ms), Outcome::Ok(Value::Ok)).get(None, (50 * ms, 51 * ms));
        assert_eq!(h.verdict().len(), 1, "gone after 50 ms of a 100 ms TTL");
    }

    #[test]
    fn clock_faults_move_expiry() {
        let ms = 1_000;
        // The node's clock jumps 10 s ahead: the key may vanish at once.
        let mut h = H::new();
        h.set_ttl("a", Some(1_000), (0, ms), Outcome::Ok(Value::Ok)).get(None, (50 * ms, 51 * ms));
        h.h.clocks[0].push(ClockChange { at_us: 10 * ms, error_us: 10_000 * ms as i64, drift_ppm: 0 });
        assert!(h.verdict().is_empty());
        // The clock stepped back 10 s: a value past its TTL in true time is still live.
        let mut h = H::new();
        h.set_ttl("a", Some(1_000), (0, ms), Outcome::Ok(Value::Ok)).get(Some("a"), (5_000 * ms, 5_001 * ms));
        h.h.clocks[0].push(ClockChange { at_us: 10 * ms, error_us: -10_000 * ms as i64, drift_ppm: 0 });
        assert!(h.verdict().is_empty());
        // A forward excursion that came back may still have let the expire cycle delete it.
        let mut h = H::new();
        h.set_ttl("a", Some(1_000), (0, ms), Outcome::Ok(Value::Ok)).get(None, (500 * ms, 501 * ms));
        h.h.clocks[0].push(ClockChange { at_us: 10 * ms, error_us: 60_000 * ms as i64, drift_ppm: 0 });
        h.h.clocks[0].push(ClockChange { at_us: 20 * ms, error_us: 0, drift_ppm: 0 });
        assert!(h.verdict().is_empty());
    }
}

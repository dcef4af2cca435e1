//! Workload clients: each draws operations from the scenario's mix, sends them as RESP over the
//! simulated network, and records what it saw. One operation at a time per client, as a
//! Jepsen process: after an unknown outcome the connection is dropped and a new one opened, so
//! a late reply can never be taken for the next operation's.
//!
//! Clients belong to the world, not to node code: they use madsim's time directly.

#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use redsim::env::real::TokioClock;
use redsim::env::{Clock, Net, Rng, SeededRng};
use redsim::protocol::frame::Frame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::env::{SimConn, SimNet};
use crate::history::{Call, History, Op, Outcome, Value};
use crate::scenario::{OpKind, Service, WaitOpts};
use crate::trace::Trace;

/// A reply larger than this is a protocol bug, not a workload.
const MAX_REPLY_BYTES: usize = 64 << 20;

/// Append ids are `client * this + seq`; no client appends this many times in one run.
const APPEND_IDS_PER_CLIENT: u64 = 1_000_000;

/// What one client does, fixed before the run.
#[derive(Clone, Debug)]
pub struct ClientPlan {
    pub client: u32,
    pub node: u32,
    pub addr: SocketAddr,
    /// (kind, cumulative weight) for drawing operations.
    pub mix: Vec<(OpKind, u64)>,
    pub keys: u32,
    /// Cumulative key weights (`workload.distribution`); None: every key alike.
    pub key_weights: Option<Arc<Vec<u64>>>,
    pub think_ms: [u64; 2],
    pub ttl_ms: [u64; 2],
    pub op_timeout_ms: u64,
    /// Simulated µs since the world started at which the client stops invoking.
    pub stop_us: u64,
    /// Who serves the log operations: the toy log (APPEND/READ) or redsim (RPUSH/LRANGE).
    pub service: Service,
    /// Replication worlds: the node currently master, which the client follows (it reconnects
    /// when it changes); `node` and `addr` are then only the start.
    pub follow: Option<(Arc<AtomicU32>, Vec<SocketAddr>)>,
    /// Replication worlds: `WAIT replicas timeout_ms` after each acknowledged write.
    pub wait: Option<WaitOpts>,
    /// Cluster worlds: the client routes each key to its slot's master.
    pub cluster: Option<ClusterRoute>,
}

/// How a cluster client finds nodes: every node's address (node `n` at `addrs[n]`), the
/// operator's "cluster created" flag it waits for, and how often it misroutes on purpose.
#[derive(Clone, Debug)]
pub struct ClusterRoute {
    pub addrs: Vec<SocketAddr>,
    pub ready: Arc<std::sync::atomic::AtomicBool>,
    pub misroute_pct: u32,
}

/// Redirections one operation may follow before it gives up (redis-cli follows 16, Jedis 5).
const MAX_REDIRECTS: usize = 5;

/// A cluster client's state, as a smart client keeps it: the slot map it learned (CLUSTER
/// SLOTS, then every MOVED) and one connection per node.
struct ClusterClient {
    client: u32,
    route: ClusterRoute,
    /// Slot → node number; None: unknown, ask any node.
    slots: Vec<Option<u32>>,
    /// Refresh the map (CLUSTER SLOTS from a random node) before the next operation: set at
    /// start and after a connection error or CLUSTERDOWN, as clients do.
    stale: bool,
    sessions: BTreeMap<u32, Session>,
    net: SimNet,
    op_timeout: Duration,
}

/// What a cluster error reply asks the client to do.
enum Redirect {
    Moved(u16, u32),
    Ask(u32),
    TryAgain,
}

fn node_of_addr(addrs: &[SocketAddr], text: &str) -> Option<u32> {
    let addr: SocketAddr = text.parse().ok()?;
    addrs.iter().position(|a| *a == addr).map(|n| n as u32)
}

fn redirect_of(addrs: &[SocketAddr], e: &str) -> Option<Redirect> {
    let mut words = e.split(' ');
    match words.next()? {
        "MOVED" => {
            let slot = words.next()?.parse().ok()?;
            Some(Redirect::Moved(slot, node_of_addr(addrs, words.next()?)?))
        }
        "ASK" => {
            let _slot = words.next()?;
            Some(Redirect::Ask(node_of_addr(addrs, words.next()?)?))
        }
        "TRYAGAIN" => Some(Redirect::TryAgain),
        _ => None,
    }
}

impl ClusterClient {
    fn session(&mut self, node: u32) -> &mut Session {
        let (net, addr, op_timeout) = (self.net.clone(), self.route.addrs[node as usize], self.op_timeout);
        self.sessions.entry(node).or_insert_with(|| Session { net, addr, conn: None, buf: BytesMut::new(), op_timeout })
    }

    /// CLUSTER SLOTS from a random node into the map; the map stays as it was if that fails.
    async fn refresh(&mut self, rec: &Recorder, rng: &mut SeededRng) {
        let node = rng.below(self.route.addrs.len() as u64) as u32;
        let args = [b"CLUSTER".to_vec(), b"SLOTS".to_vec()];
        let session = self.session(node);
        let reply = session.request(&args).await;
        let Ok(Frame::Array(ranges)) = reply else { return };
        let mut slots = vec![None; redsim::cluster::CLUSTER_SLOTS];
        for r in &ranges {
            let Frame::Array(items) = r else { continue };
            let num = |i: usize| match items.get(i) {
                Some(Frame::Integer(n)) => Some(*n),
                _ => None,
            };
            let (Some(lo), Some(hi)) = (num(0), num(1)) else { continue };
            let Some(Frame::Array(master)) = items.get(2) else { continue };
            let ip = match master.first() {
                Some(Frame::Bulk(b)) => String::from_utf8_lossy(b).into_owned(),
                _ => continue,
            };
            let port = match master.get(1) {
                Some(Frame::Integer(p)) => *p,
                _ => continue,
            };
            let Some(n) = node_of_addr(&self.route.addrs, &format!("{ip}:{port}")) else { continue };
            for s in lo.max(0)..=hi.min(16383) {
                slots[s as usize] = Some(n);
            }
        }
        self.slots = slots;
        self.stale = false;
        rec.event(&format!("c{} slot map refreshed from n{node}", self.client));
    }

    /// One operation, following MOVED and ASK: the exchange that ended it, the node that
    /// gave the answer, and whether it was asked with ASKING.
    async fn exchange(
        &mut self,
        rec: &Recorder,
        rng: &mut SeededRng,
        key: &[u8],
        args: &[Vec<u8>],
    ) -> (Exchange, u32, bool) {
        if self.stale {
            self.refresh(rec, rng).await;
        }
        let slot = redsim::cluster::key_hash_slot(key);
        let n = self.route.addrs.len() as u64;
        let mut node = match self.slots[slot as usize] {
            Some(owner) if rng.below(100) >= u64::from(self.route.misroute_pct) => owner,
            _ => rng.below(n) as u32,
        };
        let mut asking = false;
        let mut redirects = 0;
        // A connection to a node that was killed (or cut off) since it was last used is found
        // dead only when written to: nothing left, so the client reconnects and sends again,
        // once, as cluster clients do.
        let mut reconnected = false;
        let dead_on_write = |o: &Outcome| matches!(o, Outcome::Fail(e) if e == RESET_BEFORE_SENDING);
        loop {
            let session = self.session(node);
            if asking {
                let ask = session.exchange(rec, &[b"ASKING".to_vec()]).await;
                if dead_on_write(&ask.outcome) && !reconnected {
                    reconnected = true;
                    continue;
                }
                if !matches!(ask.outcome, Outcome::Ok(_)) {
                    // Nothing of the operation itself was sent.
                    self.stale = true;
                    let outcome = Outcome::Fail(format!("ASKING: {}", outcome_text(&ask.outcome)));
                    return (Exchange { sent_us: None, outcome }, node, true);
                }
            }
            let ex = self.session(node).exchange(rec, args).await;
            if dead_on_write(&ex.outcome) && !reconnected {
                reconnected = true;
                continue;
            }
            let redirect = match &ex.outcome {
                Outcome::Fail(e) => redirect_of(&self.route.addrs, e),
                _ => None,
            };
            match &ex.outcome {
                Outcome::Fail(e) if e.starts_with("CLUSTERDOWN") || e.starts_with("connect") => self.stale = true,
                Outcome::Fail(e) if e.starts_with("connection reset") => self.stale = true,
                Outcome::Unknown(_) => self.stale = true,
                _ => {}
            }
            let Some(r) = redirect.filter(|_| redirects < MAX_REDIRECTS) else { return (ex, node, asking) };
            redirects += 1;
            match r {
                Redirect::Moved(s, to) => {
                    self.slots[s as usize] = Some(to);
                    node = to;
                    asking = false;
                }
                Redirect::Ask(to) => {
                    node = to;
                    asking = true;
                }
                Redirect::TryAgain => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
}

/// A request of which nothing could be written: it certainly had no effect.
const RESET_BEFORE_SENDING: &str = "connection reset before sending";

/// The list redsim's log operations push to and read.
pub const LOG_KEY: &str = "aoflog";

/// The world's shared record: history plus trace, stamped by the world's clock.
#[derive(Clone)]
pub struct Recorder {
    pub history: Arc<Mutex<History>>,
    pub trace: Trace,
    /// True simulated time since the world started; node clocks are skewed copies of it.
    pub clock: TokioClock,
}

impl Recorder {
    pub fn now_us(&self) -> u64 {
        self.clock.now_us()
    }

    pub fn event(&self, msg: &str) {
        self.trace.event(self.now_us(), msg);
    }

    fn record(&self, mut op: Op) -> usize {
        let mut h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        op.id = h.ops.len();
        let id = op.id;
        let sent = op.sent_us.map(|s| s.to_string()).unwrap_or_else(|| "-".into());
        self.trace.event(
            op.complete_us,
            &format!(
                "c{} #{} {} → {} (n{}, invoked {}, sent {sent})",
                op.client,
                op.id,
                call_text(&op.call),
                outcome_text(&op.outcome),
                op.node,
                op.invoke_us
            ),
        );
        h.ops.push(op);
        id
    }
}

pub fn call_text(c: &Call) -> String {
    match c {
        Call::Get { key } | Call::GetCounter { key } => format!("GET {key}"),
        Call::Set { key, value, ttl_ms: None } => format!("SET {key} {value}"),
        Call::Set { key, value, ttl_ms: Some(t) } => format!("SET {key} {value} PX {t}"),
        Call::Del { key } => format!("DEL {key}"),
        Call::Incr { key } => format!("INCR {key}"),
        Call::Append { id } => format!("APPEND {id}"),
        Call::Read => "READ".into(),
        Call::Expire { key, ttl_ms } => format!("PEXPIRE {key} {ttl_ms}"),
        Call::Persist { key } => format!("PERSIST {key}"),
    }
}

pub fn outcome_text(o: &Outcome) -> String {
    match o {
        Outcome::Ok(Value::Nil) => "nil".into(),
        Outcome::Ok(Value::Ok) => "OK".into(),
        Outcome::Ok(Value::Int(n)) => n.to_string(),
        Outcome::Ok(Value::Str(s)) => format!("{s:?}"),
        Outcome::Ok(Value::Ids(ids)) => format!("{} ids", ids.len()),
        Outcome::Fail(e) => format!("fail: {e}"),
        Outcome::Unknown(e) => format!("unknown: {e}"),
    }
}

/// One client's connection and the bytes read but not yet parsed.
struct Session {
    net: SimNet,
    addr: SocketAddr,
    conn: Option<SimConn>,
    buf: BytesMut,
    op_timeout: Duration,
}

/// What became of one request on the wire.
struct Exchange {
    sent_us: Option<u64>,
    outcome: Outcome,
}

impl Session {
    fn drop_conn(&mut self) {
        self.conn = None;
        self.buf.clear();
    }

    async fn exchange(&mut self, rec: &Recorder, args: &[Vec<u8>]) -> Exchange {
        let deadline = tokio::time::Instant::now() + self.op_timeout;
        if self.conn.is_none() {
            match self.net.connect(self.addr).await {
                Ok(c) => self.conn = Some(c),
                Err(e) => return Exchange { sent_us: None, outcome: Outcome::Fail(format!("connect: {e}")) },
            }
        }
        let mut req = Vec::new();
        Frame::Array(args.iter().map(|a| Frame::Bulk(a.clone().into())).collect()).encode(&mut req);
        let conn = self.conn.as_mut().expect("connected above");
        // Written piece by piece: if the first piece cannot leave, nothing was sent and the
        // operation certainly failed; once one left, the outcome is unknown.
        let mut off = 0;
        while off < req.len() {
            match conn.write(&req[off..]).await {
                Ok(0) | Err(_) if off == 0 => {
                    self.drop_conn();
                    return Exchange { sent_us: None, outcome: Outcome::Fail(RESET_BEFORE_SENDING.into()) };
                }
                Ok(0) | Err(_) => {
                    self.drop_conn();
                    return Exchange {
                        sent_us: Some(rec.now_us()),
                        outcome: Outcome::Unknown("connection reset while sending".into()),
                    };
                }
                Ok(n) => off += n,
            }
        }
        let _ = conn.flush().await;
        let sent_us = Some(rec.now_us());
        let outcome = match self.read_reply(deadline).await {
            Ok(Frame::Error(e)) => Outcome::Fail(e),
            Ok(f) => match to_value(&f) {
                Some(v) => Outcome::Ok(v),
                None => Outcome::Fail(format!("unexpected reply {f:?}")),
            },
            Err(why) => {
                self.drop_conn();
                Outcome::Unknown(why)
            }
        };
        Exchange { sent_us, outcome }
    }

    /// A request whose reply is only read, not recorded (the cluster map): any error is `Err`.
    async fn request(&mut self, args: &[Vec<u8>]) -> Result<Frame, String> {
        let deadline = tokio::time::Instant::now() + self.op_timeout;
        if self.conn.is_none() {
            self.conn = Some(self.net.connect(self.addr).await.map_err(|e| e.to_string())?);
        }
        let mut req = Vec::new();
        Frame::Array(args.iter().map(|a| Frame::Bulk(a.clone().into())).collect()).encode(&mut req);
        let conn = self.conn.as_mut().expect("connected above");
        if conn.write_all(&req).await.is_err() {
            self.drop_conn();
            return Err("connection reset".into());
        }
        let _ = conn.flush().await;
        match self.read_reply(deadline).await {
            Ok(Frame::Error(e)) => Err(e),
            Ok(f) => Ok(f),
            Err(e) => {
                self.drop_conn();
                Err(e)
            }
        }
    }

    async fn read_reply(&mut self, deadline: tokio::time::Instant) -> Result<Frame, String> {
        let conn = self.conn.as_mut().expect("connected");
        loop {
            match Frame::parse(&self.buf) {
                Ok(Some((f, used))) => {
                    let _ = self.buf.split_to(used);
                    return Ok(f);
                }
                Ok(None) => {}
                Err(e) => return Err(format!("protocol error: {}", e.0)),
            }
            if self.buf.len() > MAX_REPLY_BYTES {
                return Err("reply too large".into());
            }
            self.buf.reserve(4096);
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, conn.read_buf(&mut self.buf)).await {
                Err(_) => return Err("timeout".into()),
                Ok(Ok(0)) => return Err("connection closed".into()),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(format!("read: {e}")),
            }
        }
    }
}

fn to_value(f: &Frame) -> Option<Value> {
    Some(match f {
        Frame::Null => Value::Nil,
        Frame::Simple(s) if s == "OK" => Value::Ok,
        Frame::Integer(n) => Value::Int(*n),
        Frame::Bulk(b) => Value::Str(String::from_utf8_lossy(b).into_owned()),
        Frame::Array(items) => Value::Ids(
            items
                .iter()
                .map(|i| match i {
                    Frame::Integer(n) => u64::try_from(*n).ok(),
                    Frame::Bulk(b) => std::str::from_utf8(b).ok()?.parse().ok(),
                    _ => None,
                })
                .collect::<Option<Vec<u64>>>()?,
        ),
        _ => return None,
    })
}

fn draw_kind(plan: &ClientPlan, rng: &mut SeededRng) -> OpKind {
    let total = plan.mix.last().map_or(0, |m| m.1);
    let x = rng.below(total);
    plan.mix.iter().find(|m| x < m.1).map_or(plan.mix[0].0, |m| m.0)
}

/// A key number in `0..keys`: uniform, or by the cumulative `weights`.
fn draw_key(keys: u32, weights: Option<&Vec<u64>>, rng: &mut SeededRng) -> u64 {
    match weights {
        None => rng.below(u64::from(keys)),
        Some(cdf) => {
            let x = rng.below(cdf.last().copied().unwrap_or(1));
            cdf.partition_point(|&c| c <= x) as u64
        }
    }
}

fn draw_call(plan: &ClientPlan, kind: OpKind, seq: u64, rng: &mut SeededRng) -> (Call, Vec<Vec<u8>>) {
    let key_no = draw_key(plan.keys, plan.key_weights.as_deref(), rng);
    let reg = format!("r{key_no}");
    let ctr = format!("c{key_no}");
    let value = format!("c{}-{seq}", plan.client);
    let ttl_ms = plan.ttl_ms[0] + rng.below(plan.ttl_ms[1] - plan.ttl_ms[0] + 1);
    let b = |s: &str| s.as_bytes().to_vec();
    match kind {
        OpKind::Get => (Call::Get { key: reg.clone() }, vec![b("GET"), b(&reg)]),
        OpKind::Set => {
            (Call::Set { key: reg.clone(), value: value.clone(), ttl_ms: None }, vec![b("SET"), b(&reg), b(&value)])
        }
        OpKind::SetPx => (
            Call::Set { key: reg.clone(), value: value.clone(), ttl_ms: Some(ttl_ms) },
            vec![b("SET"), b(&reg), b(&value), b("PX"), b(&ttl_ms.to_string())],
        ),
        OpKind::SetEx => {
            let secs = ttl_ms.div_ceil(1000).max(1);
            (
                Call::Set { key: reg.clone(), value: value.clone(), ttl_ms: Some(secs * 1000) },
                vec![b("SET"), b(&reg), b(&value), b("EX"), b(&secs.to_string())],
            )
        }
        OpKind::Del => (Call::Del { key: reg.clone() }, vec![b("DEL"), b(&reg)]),
        OpKind::Incr => (Call::Incr { key: ctr.clone() }, vec![b("INCR"), b(&ctr)]),
        OpKind::GetCounter => (Call::GetCounter { key: ctr.clone() }, vec![b("GET"), b(&ctr)]),
        OpKind::Append => {
            // Readable in traces: client 2's 17th append is 2000017.
            let id = u64::from(plan.client) * APPEND_IDS_PER_CLIENT + seq;
            let args = match plan.service {
                Service::Toylog => vec![b("APPEND"), b(&id.to_string())],
                Service::Redsim => vec![b("RPUSH"), b(LOG_KEY), b(&id.to_string())],
            };
            (Call::Append { id }, args)
        }
        OpKind::ExpireCounter => {
            (Call::Expire { key: ctr.clone(), ttl_ms }, vec![b("PEXPIRE"), b(&ctr), b(&ttl_ms.to_string())])
        }
        OpKind::PersistCounter => (Call::Persist { key: ctr.clone() }, vec![b("PERSIST"), b(&ctr)]),
        OpKind::Read => {
            let args = match plan.service {
                Service::Toylog => vec![b("READ")],
                Service::Redsim => vec![b("LRANGE"), b(LOG_KEY), b("0"), b("-1")],
            };
            (Call::Read, args)
        }
    }
}

/// Runs one client until `plan.stop_us`.
pub async fn run_client(plan: ClientPlan, net: SimNet, mut rng: SeededRng, rec: Recorder) {
    let mut session = Session {
        net,
        addr: plan.addr,
        conn: None,
        buf: BytesMut::new(),
        op_timeout: Duration::from_millis(plan.op_timeout_ms),
    };
    let mut seq = 0u64;
    let mut node = plan.node;
    let mut cluster = plan.cluster.clone().map(|route| ClusterClient {
        client: plan.client,
        slots: vec![None; redsim::cluster::CLUSTER_SLOTS],
        stale: true,
        sessions: BTreeMap::new(),
        net: session.net.clone(),
        op_timeout: session.op_timeout,
        route,
    });
    if let Some(ready) = cluster.as_ref().map(|c| c.route.ready.clone()) {
        // The operator creates the cluster first.
        while !ready.load(Ordering::SeqCst) && rec.now_us() < plan.stop_us {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    loop {
        let think = plan.think_ms[0] + rng.below(plan.think_ms[1] - plan.think_ms[0] + 1);
        tokio::time::sleep(Duration::from_millis(think)).await;
        if rec.now_us() >= plan.stop_us {
            return;
        }
        seq += 1;
        let kind = draw_kind(&plan, &mut rng);
        let (call, args) = draw_call(&plan, kind, seq, &mut rng);
        if let Some((master, addrs)) = &plan.follow {
            let now = master.load(Ordering::SeqCst);
            if now != node {
                node = now;
                session.drop_conn();
                session.addr = addrs[node as usize];
            }
        }
        let is_write = !matches!(kind, OpKind::Get | OpKind::GetCounter | OpKind::Read);
        let invoke_us = rec.now_us();
        let mut asked = false;
        let ex = match &mut cluster {
            Some(c) => {
                let key = call.key().unwrap_or(LOG_KEY).as_bytes().to_vec();
                let (ex, served_by, asking) = c.exchange(&rec, &mut rng, &key, &args).await;
                node = served_by;
                asked = asking;
                ex
            }
            None => session.exchange(&rec, &args).await,
        };
        let acked = is_write && matches!(ex.outcome, Outcome::Ok(_));
        let id = rec.record(Op {
            id: 0,
            client: plan.client,
            node,
            kind,
            call,
            invoke_us,
            sent_us: ex.sent_us,
            complete_us: rec.now_us(),
            outcome: ex.outcome,
        });
        if asked {
            rec.history.lock().unwrap_or_else(|e| e.into_inner()).cluster.asked.push(id);
        }
        if let (Some(w), true) = (plan.wait, acked) {
            let args = [b"WAIT".to_vec(), w.replicas.to_string().into_bytes(), w.timeout_ms.to_string().into_bytes()];
            // The WAIT may outlast the op timeout by its own timeout.
            session.op_timeout += Duration::from_millis(w.timeout_ms);
            let ex = session.exchange(&rec, &args).await;
            session.op_timeout -= Duration::from_millis(w.timeout_ms);
            if let Outcome::Ok(Value::Int(n)) = ex.outcome {
                rec.history.lock().unwrap_or_else(|e| e.into_inner()).repl.waits.push((id, n));
                rec.event(&format!("c{} WAIT after #{id} → {n}", plan.client));
            }
        }
    }
}

#[cfg(test)]
mod key_tests {
    use super::*;
    use crate::scenario::KeyDistribution;

    #[test]
    fn zipf_keys_are_drawn_by_weight_and_uniform_ones_alike() {
        let keys = 8;
        let count = |weights: Option<&Vec<u64>>| {
            let mut rng = SeededRng::from_seed(7);
            let mut n = [0u32; 8];
            for _ in 0..40_000 {
                n[draw_key(keys, weights, &mut rng) as usize] += 1;
            }
            n
        };
        let zipf = KeyDistribution::Zipf(1.0).cumulative(keys).unwrap();
        let n = count(Some(&zipf));
        // Weights 1, 1/2, ..., 1/8 (sum 2.718): key 0 about 37% of draws, key 7 about 4.6%.
        assert!((14_000..15_500).contains(&n[0]), "{n:?}");
        assert!((1_600..2_100).contains(&n[7]), "{n:?}");
        assert!(n.windows(2).all(|w| w[0] > w[1]), "{n:?}");
        let u = count(None);
        assert!(u.iter().all(|&c| (4_600..5_400).contains(&c)), "{u:?}");
        assert_eq!(KeyDistribution::Uniform.cumulative(keys), None);
    }
}

//! The replication side of the world: an operator ("admin", Sentinel's role) that sets up who
//! follows whom, runs failovers and promotions, re-attaches restarted nodes, and probes every
//! node's replication state once the settle phase is over. The admin machine is never
//! partitioned: it stands for the operator, not for a node.
//!
//! Harness code, outside the env door: it drives madsim directly.

#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use madsim::runtime::Handle;
use redsim::env::Net;
use redsim::protocol::frame::Frame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::env::SimNet;
use crate::history::NodeProbe;
use crate::workload::{Recorder, LOG_KEY};

/// How long one admin command may take.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(2);
/// A graceful failover gives the new master this long to catch up before it gives up.
const FAILOVER_CATCHUP: Duration = Duration::from_secs(5);
/// After the settle phase, how long the probe waits for the nodes to agree.
const CONVERGE_WAIT: Duration = Duration::from_secs(20);

/// Who follows whom, shared by the nemesis, the admin tasks and the clients.
#[derive(Clone)]
pub struct ReplTopology {
    /// The node clients write to.
    pub master: Arc<AtomicU32>,
    /// Per node, the node it should replicate (None: the master).
    pub upstream: Arc<Mutex<Vec<Option<u32>>>>,
}

impl ReplTopology {
    /// Node 0 is the master; the others replicate node 0, or node i − 1 in a chain.
    pub fn new(nodes: u32, chain: bool) -> Self {
        let upstream = (0..nodes).map(|n| (n > 0).then(|| if chain { n - 1 } else { 0 })).collect();
        ReplTopology { master: Arc::new(AtomicU32::new(0)), upstream: Arc::new(Mutex::new(upstream)) }
    }

    pub fn upstream_of(&self, n: u32) -> Option<u32> {
        self.upstream.lock().unwrap_or_else(|e| e.into_inner())[n as usize]
    }

    pub fn set_master(&self, m: u32) {
        self.master.store(m, Ordering::SeqCst);
        let mut up = self.upstream.lock().unwrap_or_else(|e| e.into_inner());
        for (n, u) in up.iter_mut().enumerate() {
            *u = (n as u32 != m).then_some(m);
        }
    }
}

/// The operator's connection to the nodes.
#[derive(Clone)]
pub struct Admin {
    pub net: SimNet,
    pub addrs: Vec<SocketAddr>,
    pub topo: ReplTopology,
    pub rec: Recorder,
}

fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

/// A reply as text: the string of a simple, error or bulk reply, the number of an integer.
pub fn text(f: &Frame) -> String {
    match f {
        Frame::Simple(s) | Frame::Error(s) => s.clone(),
        Frame::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
        Frame::Integer(n) => n.to_string(),
        other => format!("{other:?}"),
    }
}

/// A field of an INFO reply.
pub fn info_field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines().find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':'))).map(str::trim)
}

impl Admin {
    /// One command on a fresh connection; an error reply is an `Err`.
    pub async fn command(&self, node: u32, args: &[Vec<u8>]) -> Result<Frame, String> {
        self.command_at(self.addrs[node as usize], args).await
    }

    /// One command to any address (a sentinel) on a fresh connection.
    pub async fn command_at(&self, addr: SocketAddr, args: &[Vec<u8>]) -> Result<Frame, String> {
        match tokio::time::timeout(ADMIN_TIMEOUT, self.exchange(addr, args)).await {
            Ok(r) => r,
            Err(_) => Err("timeout".into()),
        }
    }

    async fn exchange(&self, addr: SocketAddr, args: &[Vec<u8>]) -> Result<Frame, String> {
        let mut conn = self.net.connect(addr).await.map_err(|e| e.to_string())?;
        let mut req = Vec::new();
        Frame::Array(args.iter().map(|a| Frame::Bulk(a.clone().into())).collect()).encode(&mut req);
        conn.write_all(&req).await.map_err(|e| e.to_string())?;
        conn.flush().await.map_err(|e| e.to_string())?;
        let mut buf = BytesMut::new();
        loop {
            match Frame::parse(&buf) {
                Ok(Some((Frame::Error(e), _))) => return Err(e),
                Ok(Some((f, _))) => return Ok(f),
                Ok(None) => {}
                Err(e) => return Err(format!("protocol error: {}", e.0)),
            }
            buf.reserve(4096);
            match conn.read_buf(&mut buf).await {
                Ok(0) => return Err("connection closed".into()),
                Ok(_) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    async fn cmd_text(&self, node: u32, args: &[&str]) -> Result<String, String> {
        let args: Vec<Vec<u8>> = args.iter().map(|a| b(a)).collect();
        self.command(node, &args).await.map(|f| text(&f))
    }

    fn replicaof_args(&self, upstream: Option<u32>) -> Vec<String> {
        match upstream {
            Some(u) => {
                let a = self.addrs[u as usize];
                vec!["REPLICAOF".into(), a.ip().to_string(), a.port().to_string()]
            }
            None => vec!["REPLICAOF".into(), "NO".into(), "ONE".into()],
        }
    }

    /// Tells `node` whom to follow, as the topology says now.
    pub async fn attach(&self, node: u32) -> Result<String, String> {
        let args = self.replicaof_args(self.topo.upstream_of(node));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.cmd_text(node, &refs).await
    }

    /// A restarted node comes back with its startup config; the operator re-attaches it to the
    /// current topology (retrying while it starts).
    pub async fn reattach(&self, node: u32) {
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            match self.attach(node).await {
                Ok(r) => {
                    self.rec.event(&format!("admin: n{node} re-attached: {r}"));
                    return;
                }
                Err(e) => self.rec.event(&format!("admin: re-attach n{node}: {e}")),
            }
        }
    }

    async fn offset(&self, node: u32) -> Result<u64, String> {
        let info = self.cmd_text(node, &["INFO", "replication"]).await?;
        info_field(&info, "master_repl_offset").and_then(|v| v.parse().ok()).ok_or_else(|| "no offset".into())
    }

    /// Promotes `target`: gracefully (writes paused on the old master until `target` caught
    /// up) or forced. Returns whether the promotion took place.
    pub async fn promote(&self, target: u32, graceful: bool) -> bool {
        let old = self.topo.master.load(Ordering::SeqCst);
        if old == target {
            self.rec.event(&format!("admin: n{target} is already the master"));
            return false;
        }
        if graceful {
            let pause = (FAILOVER_CATCHUP.as_millis() + 1000).to_string();
            if let Err(e) = self.cmd_text(old, &["CLIENT", "PAUSE", &pause, "WRITE"]).await {
                self.rec.event(&format!("admin: failover to n{target}: cannot pause n{old}: {e}"));
                return false;
            }
            let deadline = tokio::time::Instant::now() + FAILOVER_CATCHUP;
            let caught_up = loop {
                match (self.offset(old).await, self.offset(target).await) {
                    (Ok(a), Ok(b)) if a == b => break true,
                    _ if tokio::time::Instant::now() >= deadline => break false,
                    _ => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            };
            if !caught_up {
                let _ = self.cmd_text(old, &["CLIENT", "UNPAUSE"]).await;
                self.rec.event(&format!("admin: failover to n{target}: it did not catch up; aborted"));
                return false;
            }
        }
        if let Err(e) = self.cmd_text(target, &["REPLICAOF", "NO", "ONE"]).await {
            self.rec.event(&format!("admin: promote n{target}: {e}"));
            if graceful {
                let _ = self.cmd_text(old, &["CLIENT", "UNPAUSE"]).await;
            }
            return false;
        }
        self.topo.set_master(target);
        self.rec.event(&format!("admin: n{target} promoted ({})", if graceful { "failover" } else { "forced" }));
        self.follow(target, None).await;
        if graceful {
            let _ = self.cmd_text(old, &["CLIENT", "UNPAUSE"]).await;
        }
        true
    }

    /// The FAILOVER command on the current master: `FAILOVER TO <target> TIMEOUT` and then
    /// wait for its end (`master_failover_state:no-failover`); the handover happened when
    /// the target is a master then. The nodes that followed the old master are then told to
    /// follow the target (the old master already does). Returns whether it took place.
    pub async fn failover_command(&self, target: u32) -> bool {
        let old = self.topo.master.load(Ordering::SeqCst);
        if old == target {
            self.rec.event(&format!("admin: n{target} is already the master"));
            return false;
        }
        let a = self.addrs[target as usize];
        let (ip, port, timeout) = (a.ip().to_string(), a.port().to_string(), FAILOVER_CATCHUP.as_millis().to_string());
        match self.cmd_text(old, &["FAILOVER", "TO", &ip, &port, "TIMEOUT", &timeout]).await {
            Ok(_) => self.rec.event(&format!("admin: FAILOVER TO n{target} sent to n{old}")),
            Err(e) => {
                self.rec.event(&format!("admin: FAILOVER TO n{target} on n{old}: {e}"));
                return false;
            }
        }
        let deadline = tokio::time::Instant::now() + FAILOVER_CATCHUP + Duration::from_secs(3);
        loop {
            let state = self.cmd_text(old, &["INFO", "replication"]).await;
            if let Ok(info) = &state {
                if info_field(info, "master_failover_state") == Some("no-failover") {
                    break;
                }
            }
            if tokio::time::Instant::now() >= deadline {
                self.rec.event(&format!("admin: FAILOVER TO n{target}: still not over on n{old}; aborting"));
                let _ = self.cmd_text(old, &["FAILOVER", "ABORT"]).await;
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let role = self.cmd_text(target, &["INFO", "replication"]).await.ok();
        if role.as_deref().and_then(|i| info_field(i, "role")) != Some("master") {
            self.rec.event(&format!("admin: FAILOVER TO n{target}: aborted by n{old}"));
            return false;
        }
        self.topo.set_master(target);
        self.rec.event(&format!("admin: n{target} promoted (FAILOVER command)"));
        self.follow(target, Some(old)).await;
        true
    }

    /// Tells every node but the new master `target` (and `skip`, which follows it already)
    /// to follow it.
    async fn follow(&self, target: u32, skip: Option<u32>) {
        for n in 0..self.addrs.len() as u32 {
            if n != target && Some(n) != skip {
                match self.attach(n).await {
                    Ok(r) => self.rec.event(&format!("admin: n{n} follows n{target}: {r}")),
                    // A node down now is re-attached when it restarts.
                    Err(e) => self.rec.event(&format!("admin: n{n} follows n{target}: {e}")),
                }
            }
        }
    }

    async fn probe(&self, node: u32) -> NodeProbe {
        let mut p = NodeProbe { node, ..NodeProbe::default() };
        let info = match self.cmd_text(node, &["INFO", "everything"]).await {
            Ok(i) => i,
            Err(e) => {
                p.error = Some(format!("INFO: {e}"));
                return p;
            }
        };
        let num = |name: &str| info_field(&info, name).and_then(|v| v.parse().ok()).unwrap_or(0);
        p.role = info_field(&info, "role").unwrap_or_default().to_string();
        p.master_repl_offset = num("master_repl_offset");
        p.sync_full = num("sync_full");
        p.sync_partial_ok = num("sync_partial_ok");
        p.sync_partial_err = num("sync_partial_err");
        match self.cmd_text(node, &["DEBUG", "DIGEST"]).await {
            Ok(d) => p.digest = d,
            Err(e) => p.error = Some(format!("DEBUG DIGEST: {e}")),
        }
        match self.command(node, &[b("LRANGE"), b(LOG_KEY), b("0"), b("-1")]).await {
            Ok(Frame::Array(items)) => {
                p.log = items.iter().filter_map(|i| text(i).parse().ok()).collect();
            }
            Ok(other) => p.error = Some(format!("LRANGE: {other:?}")),
            Err(e) => p.error = Some(format!("LRANGE: {e}")),
        }
        p
    }

    /// After the settle phase: waits (up to `CONVERGE_WAIT`) until every node answers with the
    /// master's offset and digest, then returns every node's probe.
    pub async fn probe_all(&self) -> Vec<NodeProbe> {
        let deadline = tokio::time::Instant::now() + CONVERGE_WAIT;
        loop {
            let mut probes = Vec::new();
            for n in 0..self.addrs.len() as u32 {
                probes.push(self.probe(n).await);
            }
            let master = self.topo.master.load(Ordering::SeqCst) as usize;
            let m = &probes[master];
            let agreed = probes
                .iter()
                .all(|p| p.error.is_none() && p.digest == m.digest && p.master_repl_offset == m.master_repl_offset);
            if agreed || tokio::time::Instant::now() >= deadline {
                self.rec.event(&format!("admin: probe ({})", if agreed { "converged" } else { "not converged" }));
                return probes;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// Runs `fut` on the admin machine and waits for it.
pub async fn on_admin<T: Send + 'static>(
    handle: &Handle,
    admin_node: madsim::task::NodeId,
    fut: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    handle.get_node(admin_node).expect("the admin machine exists").spawn(fut).await.expect("admin task finished")
}

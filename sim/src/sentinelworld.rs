//! The sentinel side of the world: a group of redsim sentinels, each its own machine (so
//! partitions cut them off like any node), watching the replication topology's master as
//! `mymaster` and failing it over. The operator no longer promotes anyone: it only watches the
//! sentinels, as a Sentinel-aware client does, and points the workload at the master of the
//! newest configuration (the highest config epoch any sentinel reports).
//!
//! Harness code, outside the env door: it drives madsim directly.

#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::time::Duration;

use madsim::runtime::Handle;
use madsim::task::NodeId;
use redsim::env::real::TokioClock;
use redsim::env::sim_disk::SimDisk;
use redsim::env::skew::SkewedClock;
use redsim::protocol::frame::Frame;
use redsim::sentinel::driver::{self, SentinelOpts};

use crate::env::{NetConfig, SimEnv, SimEnvParts};
use crate::faults::rng_for;
use crate::history::{History, Promotion};
use crate::replworld::Admin;
use crate::scenario::SentinelGroup;
use crate::toylog::Bug;
use crate::world::{node_ip, SERVER_PORT};

pub const SENTINEL_PORT: u16 = 26379;
const CONFIG_NAME: &str = "sentinel.conf";
/// How often the operator asks the sentinels where the master is.
const OBSERVE_EVERY: Duration = Duration::from_millis(250);

pub fn sentinel_ip(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 3, i as u8 + 1))
}

/// Sentinel `i`'s ID, fixed so that the journal names it `s<i>`.
pub fn myid(i: u32) -> String {
    format!("{:039}{i}", 0)
}

fn name_of(id: &str) -> String {
    match (0..10).find(|&i| myid(i) == id) {
        Some(i) => format!("s{i}"),
        None => id.to_string(),
    }
}

/// The config file each sentinel starts from (it rewrites it with its state).
pub fn config_text(g: &SentinelGroup, i: u32) -> String {
    format!(
        "port {SENTINEL_PORT}\nbind {}\nsentinel myid {}\nsentinel monitor mymaster {} {SERVER_PORT} {}\n\
         sentinel down-after-milliseconds mymaster {}\nsentinel failover-timeout mymaster {}\n\
         sentinel parallel-syncs mymaster {}\n",
        sentinel_ip(i),
        myid(i),
        node_ip(0),
        g.quorum,
        g.down_after_ms,
        g.failover_timeout_ms,
        g.parallel_syncs
    )
}

/// Starts sentinel `i` on its own machine. A restart reads back the config it rewrote.
#[allow(clippy::too_many_arguments)]
pub fn start_sentinel(
    handle: &Handle,
    g: &SentinelGroup,
    seed: u64,
    i: u32,
    net: NetConfig,
    trace: crate::trace::Trace,
    world_clock: &TokioClock,
    bug: Option<Bug>,
) -> (NodeId, SimDisk) {
    let clock = SkewedClock::new(world_clock.clone());
    let disk = SimDisk::new(redsim::env::Rng::next_u64(&mut rng_for(seed, &format!("disk/s{i}"))));
    let kept = disk.clone();
    let world_clock = world_clock.clone();
    let initial = config_text(g, i);
    let incarnation = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let id = handle
        .create_node()
        .name(format!("s{i}"))
        .ip(sentinel_ip(i))
        .init(move || {
            let inc = incarnation.fetch_add(1, Ordering::Relaxed);
            let env = SimEnv::new(SimEnvParts {
                clock: clock.clone(),
                disk: disk.clone(),
                net,
                run_seed: seed,
                name: format!("s{i}"),
                incarnation: inc,
                pid: 2000 + i * 100 + inc as u32,
                trace: trace.clone(),
                world_clock: world_clock.clone(),
            });
            let initial = initial.clone();
            async move {
                env.trace().event(env.world_us(), &format!("s{i} start (incarnation {inc})"));
                let text = match driver::read_config(&env, CONFIG_NAME).await {
                    Ok(t) if !t.is_empty() => t,
                    _ => initial,
                };
                let opts = SentinelOpts {
                    executable: "redsim-sim".into(),
                    config_name: CONFIG_NAME.into(),
                    config_path: CONFIG_NAME.into(),
                    bug: bug.and_then(Bug::sentinel),
                };
                let result = driver::run(env.clone(), &text, opts).await;
                env.trace().event(env.world_us(), &format!("s{i} exit: {result:?}"));
            }
        })
        .build()
        .id();
    (id, kept)
}

/// `SENTINEL MASTER mymaster` as (config epoch, ip, port).
fn master_view(f: &Frame) -> Option<(u64, String, u16)> {
    let pairs: Vec<(String, String)> = match f {
        Frame::Array(items) => items
            .chunks(2)
            .filter_map(|kv| {
                let k = kv.first()?.as_bytes()?;
                let v = kv.get(1)?.as_bytes()?;
                Some((String::from_utf8_lossy(k).into_owned(), String::from_utf8_lossy(v).into_owned()))
            })
            .collect(),
        _ => return None,
    };
    let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    Some((get("config-epoch")?.parse().ok()?, get("ip")?, get("port")?.parse().ok()?))
}

/// The operator's watch, until `stop_us`: follows the newest configuration the sentinels report.
pub async fn observe(admin: Admin, sentinels: u32, nodes: u32, stop_us: u64) {
    let args: Vec<Vec<u8>> = ["SENTINEL", "MASTER", "mymaster"].iter().map(|a| a.as_bytes().to_vec()).collect();
    let mut epoch = 0;
    while admin.rec.now_us() < stop_us {
        tokio::time::sleep(OBSERVE_EVERY).await;
        let mut best: Option<(u64, String, u16)> = None;
        for i in 0..sentinels {
            let addr = SocketAddr::new(sentinel_ip(i), SENTINEL_PORT);
            if let Some(v) = admin.command_at(addr, &args).await.ok().as_ref().and_then(master_view) {
                if best.as_ref().is_none_or(|b| v.0 > b.0) {
                    best = Some(v);
                }
            }
        }
        let Some((e, ip, port)) = best else { continue };
        let Some(node) = (0..nodes).find(|&n| node_ip(n).to_string() == ip && port == SERVER_PORT) else { continue };
        if node != admin.topo.master.load(Ordering::SeqCst) && e > epoch {
            epoch = e;
            let now = admin.rec.now_us();
            admin.topo.set_master(node);
            admin.rec.event(&format!("admin: the sentinels moved the master to n{node} (config epoch {e})"));
            let p = Promotion { start_us: now, end_us: now, node, forced: false };
            admin.rec.history.lock().unwrap_or_else(|e| e.into_inner()).repl.promotions.push(p);
        }
    }
}

/// Moves what the sentinels journaled on this thread into the history; the times of the
/// elections come from the trace (a sentinel logs `+elected-leader` where it journals one).
pub fn take_journal(trace: &crate::trace::Trace, h: &mut History) {
    let mut won_at: BTreeMap<u32, std::collections::VecDeque<u64>> = BTreeMap::new();
    trace.for_each_line(|line| {
        if let Some((us, s, text)) = crate::trace::machine_log(line, "s") {
            if text.contains("# +elected-leader ") {
                won_at.entry(s).or_default().push_back(us);
            }
        }
    });
    for (id, entry) in redsim::sentinel::take_journal() {
        let who = name_of(&id);
        match entry {
            redsim::sentinel::Journal::Vote { epoch, candidate } => {
                h.sentinel.votes.push((who, epoch, name_of(&candidate)))
            }
            redsim::sentinel::Journal::Elected { epoch } => {
                let n = who.strip_prefix('s').and_then(|n| n.parse::<u32>().ok());
                if let Some((n, us)) = n.and_then(|n| Some((n, won_at.get_mut(&n)?.pop_front()?))) {
                    h.sentinel.elected_us.push((us, n, epoch));
                }
                h.sentinel.elected.push((who, epoch))
            }
            redsim::sentinel::Journal::Promoting { epoch, replica } => {
                h.sentinel.promoting.push((who, epoch, replica.to_string()))
            }
        }
    }
}

/// Clears the journal of an earlier run on this thread.
pub fn reset_journal() {
    let _ = redsim::sentinel::take_journal();
}

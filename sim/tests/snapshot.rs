//! BGSAVE in the simulator: the forked child is `MemChild`, whose bytes reach the parent over
//! simulated time, so a save is seen in progress, completes, survives a restart, and a node
//! killed mid-way leaves the previous dump.rdb whole.

#![cfg(madsim)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use madsim::runtime::Handle;
use redsim::env::real::TokioClock;
use redsim::env::sim_disk::SimDisk;
use redsim::env::skew::SkewedClock;
use redsim::server::driver::{self, RunOpts};
use redsim::server::Config;
use redsim_sim::env::{NetConfig, SimEnv, SimEnvParts};
use redsim_sim::trace::Trace;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const NODE_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const CLIENT_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 1, 1));
const KEYS: usize = 50_000;

/// One request, one reply read up to its first line (enough for the replies used here), or
/// the whole bulk for INFO.
async fn call(conn: &mut TcpStream, args: &[&str]) -> String {
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    conn.write_all(req.as_bytes()).await.unwrap();
    conn.flush().await.unwrap();
    let mut buf = Vec::new();
    loop {
        let mut chunk = [0u8; 65536];
        let n = conn.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some(rest) = text.strip_prefix('$') {
            let (len, body) = rest.split_once("\r\n").unwrap_or(("", ""));
            if len.parse::<usize>().is_ok_and(|l| body.len() >= l + 2) {
                return body.to_string();
            }
        } else if text.ends_with("\r\n") {
            return text.trim_end().to_string();
        }
    }
}

async fn connect() -> TcpStream {
    for _ in 0..100 {
        if let Ok(c) = TcpStream::connect(SocketAddr::new(NODE_IP, 6379)).await {
            return c;
        }
        madsim::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the node never accepted a connection");
}

fn start_node(handle: &Handle, disk: &SimDisk, trace: &Trace) -> madsim::task::NodeId {
    let incarnation = Arc::new(AtomicU64::new(0));
    let world_clock = TokioClock::new();
    let clock = SkewedClock::new(world_clock.clone());
    let (disk, trace) = (disk.clone(), trace.clone());
    handle
        .create_node()
        .name("n0")
        .ip(NODE_IP)
        .init(move || {
            let inc = incarnation.fetch_add(1, Ordering::Relaxed);
            let env = SimEnv::new(SimEnvParts {
                clock: clock.clone(),
                disk: disk.clone(),
                net: NetConfig { connect_timeout_ms: 500, split_write_probability: 0.0 },
                run_seed: 1,
                name: "n0".into(),
                incarnation: inc,
                pid: 1000 + inc as u32,
                trace: trace.clone(),
                world_clock: world_clock.clone(),
            });
            async move {
                let mut config = Config::default();
                for (k, v) in [("bind", "10.0.0.1"), ("port", "6379"), ("protected-mode", "no"), ("save", "")] {
                    config.set_startup(k, v).unwrap();
                }
                let _ = driver::run(env, config, RunOpts::default()).await;
            }
        })
        .build()
        .id()
}

fn info_field(info: &str, field: &str) -> String {
    info.lines().find_map(|l| l.strip_prefix(&format!("{field}:"))).unwrap_or_default().trim().to_string()
}

#[test]
fn bgsave_runs_over_simulated_time_and_a_kill_mid_way_keeps_the_old_dump() {
    let trace = Trace::new();
    let disk = SimDisk::new(7);
    let rt = madsim::runtime::Runtime::with_seed_and_config(7, madsim::Config::default());
    let (d, t) = (disk.clone(), trace.clone());
    rt.block_on(async move {
        let handle = Handle::current();
        let node = start_node(&handle, &d, &t);
        let client = handle.create_node().name("c0").ip(CLIENT_IP).build();
        let d2 = d.clone();
        client
            .spawn(async move {
                let handle = Handle::current();
                let mut c = connect().await;
                assert_eq!(call(&mut c, &["SET", "old", "1"]).await, "+OK");
                assert_eq!(call(&mut c, &["SAVE"]).await, "+OK");
                let old = d2.durable_contents("dump.rdb").expect("SAVE made dump.rdb durable");
                for start in (0..KEYS).step_by(1000) {
                    let mut args = vec!["MSET".to_string()];
                    for i in start..start + 1000 {
                        args.push(format!("key:{i}"));
                        args.push(format!("value-{i:012}"));
                    }
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    assert_eq!(call(&mut c, &args).await, "+OK");
                }

                // A save that completes: seen in progress first, then done, then loaded.
                assert_eq!(call(&mut c, &["BGSAVE"]).await, "+Background saving started");
                let info = call(&mut c, &["INFO", "persistence"]).await;
                assert_eq!(info_field(&info, "rdb_bgsave_in_progress"), "1", "{info}");
                assert_eq!(call(&mut c, &["SET", "during", "x"]).await, "+OK", "writes go on meanwhile");
                loop {
                    madsim::time::sleep(Duration::from_millis(5)).await;
                    let info = call(&mut c, &["INFO", "persistence"]).await;
                    if info_field(&info, "rdb_bgsave_in_progress") == "0" {
                        assert_eq!(info_field(&info, "rdb_last_bgsave_status"), "ok");
                        break;
                    }
                }
                let new = d2.durable_contents("dump.rdb").unwrap();
                assert!(new.len() > old.len() * 100, "the new dump holds the keys");

                // A save killed mid-way: the node dies, the previous dump stays whole.
                assert_eq!(call(&mut c, &["SET", "later", "y"]).await, "+OK");
                assert_eq!(call(&mut c, &["BGSAVE"]).await, "+Background saving started");
                madsim::time::sleep(Duration::from_millis(3)).await;
                handle.kill(node);
                d2.power_fail(redsim::env::sim_disk::PowerLoss::AnySector { torn_garbage: true });
                assert_eq!(d2.durable_contents("dump.rdb"), Some(new), "the old dump survives the kill");
                handle.restart(node);
                let mut c = connect().await;
                assert_eq!(call(&mut c, &["DBSIZE"]).await, format!(":{}", KEYS + 1));
                assert_eq!(call(&mut c, &["EXISTS", "later"]).await, ":0", "written after the last complete save");
            })
            .await
            .unwrap();
    });
    let lines = trace.lines().join("\n");
    assert!(lines.contains("Background saving terminated with success"), "{lines}");
    assert!(lines.contains("Done loading RDB, keys loaded: 50001"), "{lines}");
}

//! The append-only file against real Redis 7.0.15: an AOF directory written by one server is
//! loaded by the other with the same data; kill -9 under `always` keeps every acknowledged
//! write; a truncated tail is trimmed; corruption in the middle refuses the start; `redsim
//! check-aof` reports and fixes like `redis-check-aof`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{temp_dir, Flavor, Server};
use crate::tools::cli;

const AOF_ON: &[&str] = &["--appendonly", "yes", "--aof-use-rdb-preamble", "no", "--appendfsync", "always"];

const INCR: &str = "appendonlydir/appendonly.aof.1.incr.aof";

/// A fresh directory, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new() -> Dir {
        Dir(temp_dir(Flavor::Redsim))
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Writes of every type, in two dbs, with an expiry and a rewrite in the middle.
fn write_dataset(port: u16, rewrite: bool) {
    let run = |args: &[&str]| {
        let out = cli(port, args);
        assert!(!out.starts_with("ERR") && !out.contains("MISCONF"), "{args:?}: {out}");
    };
    run(&["set", "s", "hello"]);
    run(&["set", "ttl", "v", "ex", "1000"]);
    run(&["incrby", "n", "41"]);
    run(&["rpush", "l", "a", "b", "c"]);
    run(&["hset", "h", "f1", "v1", "f2", "v2"]);
    run(&["sadd", "set", "x", "y", "1"]);
    run(&["zadd", "z", "1.5", "m1", "-2", "m2"]);
    if rewrite {
        run(&["bgrewriteaof"]);
        std::thread::sleep(Duration::from_millis(500));
    }
    run(&["incr", "n"]);
    run(&["lpush", "l", "z"]);
    run(&["-n", "3", "set", "in3", "three"]);
    run(&["del", "s"]);
}

/// What a server holds of `write_dataset`, comparable across servers.
fn dataset(port: u16) -> String {
    let mut out = String::new();
    for args in [
        &["get", "s"][..],
        &["get", "ttl"],
        &["get", "n"],
        &["lrange", "l", "0", "-1"],
        &["hgetall", "h"],
        &["zrange", "z", "0", "-1", "withscores"],
        &["-n", "3", "get", "in3"],
        &["dbsize"],
    ] {
        out.push_str(&cli(port, args));
    }
    let mut members: Vec<String> = cli(port, &["smembers", "set"]).lines().map(String::from).collect();
    members.sort();
    out.push_str(&members.join(","));
    let ttl: i64 = cli(port, &["ttl", "ttl"]).trim().parse().unwrap();
    assert!((990..=1000).contains(&ttl), "ttl {ttl}");
    out
}

/// `writer` writes the dataset (with a rewrite) and is killed; `reader` loads its AOF dir.
fn exchange(writer: Flavor, reader: Flavor) {
    let dir = Dir::new();
    let mut w = Server::start_in(writer, &dir.0, AOF_ON);
    write_dataset(w.port, true);
    let expected = dataset(w.port);
    assert!(cli(w.port, &["info", "persistence"]).contains("aof_rewrites:1"));
    w.kill9();
    let r = Server::start_in(reader, &dir.0, AOF_ON);
    assert_eq!(dataset(r.port), expected, "{} log:\n{}", reader.name(), r.log());
}

#[test]
fn redsim_aof_dir_loads_in_real_redis_with_the_same_data() {
    exchange(Flavor::Redsim, Flavor::Redis);
}

#[test]
fn real_redis_aof_dir_loads_in_redsim_with_the_same_data() {
    exchange(Flavor::Redis, Flavor::Redsim);
}

#[test]
fn kill9_under_always_keeps_every_acknowledged_write() {
    let dir = Dir::new();
    let mut redsim = Server::start_in(Flavor::Redsim, &dir.0, AOF_ON);
    let port = redsim.port.to_string();
    // redis-cli -r sends 300 INCRs, one after the other's reply.
    let out = Command::new("redis-cli").args(["-p", &port, "-r", "300", "incr", "c"]).output().unwrap();
    let acked = String::from_utf8_lossy(&out.stdout).lines().count();
    assert_eq!(acked, 300);
    redsim.kill9();
    let again = Server::start_in(Flavor::Redsim, &dir.0, AOF_ON);
    assert_eq!(cli(again.port, &["get", "c"]).trim(), "300");
}

/// Starts redsim on a dir that holds an AOF, writes a key, and stops it.
fn aof_with_one_key(dir: &Path) {
    let mut s = Server::start_in(Flavor::Redsim, dir, AOF_ON);
    cli(s.port, &["set", "k", "v"]);
    cli(s.port, &["set", "k2", "v2"]);
    s.kill9();
}

#[test]
fn truncated_tail_is_trimmed_with_a_warning_and_the_rest_loads() {
    let dir = Dir::new();
    aof_with_one_key(&dir.0);
    let incr = dir.0.join(INCR);
    let good_len = fs::metadata(&incr).unwrap().len();
    let mut bytes = fs::read(&incr).unwrap();
    bytes.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$5\r\nhal");
    fs::write(&incr, &bytes).unwrap();
    let s = Server::start_in(Flavor::Redsim, &dir.0, AOF_ON);
    assert_eq!(cli(s.port, &["get", "k2"]).trim(), "v2");
    assert_eq!(cli(s.port, &["exists", "x"]).trim(), "0");
    let log = s.log();
    assert!(log.contains("!!! Warning: short read while loading the AOF file appendonly.aof.1.incr.aof!!!"), "{log}");
    assert!(log.contains("AOF loaded anyway because aof-load-truncated is enabled"), "{log}");
    assert_eq!(fs::metadata(&incr).unwrap().len(), good_len);
}

#[test]
fn corruption_in_the_middle_refuses_to_start_naming_file_and_offset() {
    let dir = Dir::new();
    aof_with_one_key(&dir.0);
    let incr = dir.0.join(INCR);
    let bytes = fs::read(&incr).unwrap();
    // The SELECT is 23 bytes; the first SET starts after it.
    let mut bad = bytes[..23].to_vec();
    bad.extend_from_slice(b"garbage\r\n");
    bad.extend_from_slice(&bytes[23..]);
    fs::write(&incr, &bad).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_redsim"))
        .args(["server", "--port", "0", "--bind", "127.0.0.1", "--dir"])
        .arg(&dir.0)
        .args(AOF_ON)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(
        log.contains("Bad file format reading the append only file appendonly.aof.1.incr.aof at offset 23"),
        "{log}"
    );
}

fn check(tool: &str, args: &[&str], stdin: &str) -> (String, bool) {
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    let out = child.wait_with_output().unwrap();
    (String::from_utf8_lossy(&out.stdout).into_owned(), out.status.success())
}

/// redis-check-aof's lines, without the one that pinpoints the failing read (redsim's
/// parser reports where the valid part ends, not which read failed).
fn essential(report: &str) -> Vec<String> {
    report.lines().filter(|l| !l.starts_with("0x")).map(String::from).collect()
}

#[test]
fn check_aof_reports_and_fixes_a_truncated_file_like_redis_check_aof() {
    let dir = Dir::new();
    aof_with_one_key(&dir.0);
    let incr = dir.0.join(INCR);
    let mut bytes = fs::read(&incr).unwrap();
    bytes.extend_from_slice(b"*2\r\n$3\r\nDEL\r\n$1");
    let mut reports = Vec::new();
    for (tool, sub) in [("redis-check-aof", None), (env!("CARGO_BIN_EXE_redsim"), Some("check-aof"))] {
        fs::write(&incr, &bytes).unwrap();
        let manifest = dir.0.join("appendonlydir/appendonly.aof.manifest");
        let manifest = manifest.to_str().unwrap();
        let with = |extra: &[&str]| -> Vec<String> {
            sub.into_iter().chain(extra.iter().copied()).map(String::from).collect()
        };
        let args = with(&[manifest]);
        let (report, ok) = check(tool, &args.iter().map(String::as_str).collect::<Vec<_>>(), "");
        assert!(!ok);
        let args = with(&["--fix", manifest]);
        let (fixed, ok) = check(tool, &args.iter().map(String::as_str).collect::<Vec<_>>(), "y\n");
        assert!(ok, "{tool}: {fixed}");
        reports.push((essential(&report), essential(&fixed)));
    }
    assert_eq!(reports[1], reports[0], "redsim check-aof vs redis-check-aof");
    assert_eq!(fs::metadata(&incr).unwrap().len() as usize, bytes.len() - 15);
}

#[test]
fn config_set_appendonly_yes_writes_a_base_of_the_dataset_and_logs_later_writes() {
    let dir = Dir::new();
    let mut s = Server::start_in(Flavor::Redsim, &dir.0, &["--aof-use-rdb-preamble", "no", "--appendfsync", "always"]);
    cli(s.port, &["set", "before", "1"]);
    assert_eq!(cli(s.port, &["config", "set", "appendonly", "yes"]).trim(), "OK");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    // On, and its first rewrite (the base of the dataset) done.
    let ready = |info: String| info.contains("aof_enabled:1") && info.contains("aof_rewrite_in_progress:0");
    while !ready(cli(s.port, &["info", "persistence"])) {
        assert!(std::time::Instant::now() < deadline, "the AOF never turned on");
        std::thread::sleep(Duration::from_millis(50));
    }
    cli(s.port, &["set", "after", "2"]);
    s.kill9();
    let again = Server::start_in(Flavor::Redis, &dir.0, AOF_ON);
    assert_eq!(cli(again.port, &["mget", "before", "after"]), "1\n2\n");
}

/// BGREWRITEAOF runs in a forked child while writes go on: none is lost or applied twice
/// (writes before the fork are in the new base, writes after it in the new incr file), the
/// manifest ends with one base and one incr, and a kill -9 right after keeps every
/// acknowledged INCR, with and without the RDB preamble.
#[test]
fn bgrewriteaof_under_concurrent_writes_loses_and_repeats_nothing() {
    for preamble in ["yes", "no"] {
        let dir = Dir::new();
        let args = ["--appendonly", "yes", "--aof-use-rdb-preamble", preamble, "--appendfsync", "everysec"];
        let mut redsim = Server::start_in(Flavor::Redsim, &dir.0, &args);
        let port = redsim.port.to_string();
        // Enough data that the child takes a moment; then every INCR is fsynced before its reply.
        let fill: String = (0..20_000).map(|i| format!("SET key:{i} value-{i}\n")).collect();
        crate::tools::cli_stdin(redsim.port, &fill);
        assert_eq!(cli(redsim.port, &["config", "set", "appendfsync", "always"]).trim(), "OK");
        let writer = {
            let port = port.clone();
            std::thread::spawn(move || {
                let out = Command::new("redis-cli").args(["-p", &port, "-r", "500", "incr", "c"]).output().unwrap();
                String::from_utf8_lossy(&out.stdout).lines().count()
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(cli(redsim.port, &["bgrewriteaof"]).trim(), "Background append only file rewriting started");
        let acked = writer.join().unwrap();
        assert_eq!(acked, 500);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let info = cli(redsim.port, &["info", "persistence"]);
            if info.contains("aof_rewrites:1") && info.contains("aof_rewrite_in_progress:0") {
                assert!(info.contains("aof_last_bgrewrite_status:ok"), "{info}");
                break;
            }
            assert!(std::time::Instant::now() < deadline, "rewrite not done: {info}");
            std::thread::sleep(Duration::from_millis(20));
        }
        let manifest = fs::read_to_string(dir.0.join("appendonlydir/appendonly.aof.manifest")).unwrap();
        let kinds: Vec<&str> = manifest.lines().filter_map(|l| l.split_whitespace().last()).collect();
        assert_eq!(kinds, ["b", "i"], "{manifest}");
        redsim.kill9();
        let again = Server::start_in(Flavor::Redsim, &dir.0, &args);
        assert_eq!(cli(again.port, &["get", "c"]).trim(), "500", "preamble {preamble}");
        assert_eq!(cli(again.port, &["get", "key:19999"]).trim(), "value-19999");
        assert_eq!(cli(again.port, &["dbsize"]).trim(), "20001");
    }
}

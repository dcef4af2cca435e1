//! RDB snapshots end to end: SAVE/BGSAVE survive a crash and restart, BGSAVE does not block
//! writers, a failed BGSAVE turns writes into MISCONF until a save succeeds (same replies as
//! Redis), save points start a BGSAVE by themselves, and a corrupt dump.rdb stops the start.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::diff::encode_command;
use crate::resp::{Conn, Reply};
use crate::support::{Flavor, Server};
use crate::tools::cli;

const BGSAVE_WAIT: Duration = Duration::from_secs(60);

fn info_field(port: u16, field: &str) -> String {
    let info = cli(port, &["info", "persistence"]);
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("no {field} in INFO persistence:\n{info}"))
}

/// Waits until no background save runs; its final status (`ok` / `err`).
fn wait_bgsave_done(port: u16) -> String {
    let deadline = Instant::now() + BGSAVE_WAIT;
    while info_field(port, "rdb_bgsave_in_progress") != "0" {
        assert!(Instant::now() < deadline, "BGSAVE still running after {BGSAVE_WAIT:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    info_field(port, "rdb_last_bgsave_status")
}

fn call(conn: &mut Conn, args: &[&[u8]]) -> Reply {
    conn.send(&encode_command(&args.iter().map(|a| a.to_vec()).collect::<Vec<_>>()));
    conn.read_reply()
}

/// `n` keys `key:<i>` with 16-byte values, in MSET batches of 1000.
fn fill(port: u16, n: usize) {
    let mut conn = Conn::connect(port).expect("connect");
    for start in (0..n).step_by(1000) {
        let pairs: Vec<(String, String)> =
            (start..(start + 1000).min(n)).map(|i| (format!("key:{i}"), format!("value-{i:010}"))).collect();
        let mut args: Vec<&[u8]> = vec![b"MSET"];
        for (k, v) in &pairs {
            args.push(k.as_bytes());
            args.push(v.as_bytes());
        }
        assert_eq!(call(&mut conn, &args), Reply::Frame(b"+OK\r\n".to_vec()));
    }
}

fn digest(port: u16) -> String {
    cli(port, &["debug", "digest"]).trim().to_string()
}

#[test]
fn save_and_bgsave_survive_a_crash_and_restart() {
    let mut server = Server::start_with(Flavor::Redsim, &["--enable-debug-command", "local"]);
    let port = server.port;
    fill(port, 1000);
    cli(port, &["set", "ttl", "v", "ex", "1000"]);
    assert_eq!(cli(port, &["save"]).trim(), "OK");
    assert!(server.dir().join("dump.rdb").is_file());
    assert_eq!(info_field(port, "rdb_changes_since_last_save"), "0");
    let saved = digest(port);
    server.restart();
    assert_eq!(digest(port), saved, "SAVE then kill -9: the restart loads the same dataset");
    assert_eq!(info_field(port, "rdb_last_load_keys_loaded"), "1001");
    assert!(server.log().contains("Done loading RDB, keys loaded: 1001, keys expired: 0."));

    cli(port, &["set", "after", "save"]);
    cli(port, &["del", "key:7"]);
    assert_eq!(cli(port, &["bgsave"]).trim(), "Background saving started");
    assert_eq!(wait_bgsave_done(port), "ok");
    assert_eq!(info_field(port, "rdb_changes_since_last_save"), "0");
    assert!(cli(port, &["info", "stats"]).contains("total_forks:1\r\n"), "one fork counted");
    let lastsave: u64 = cli(port, &["lastsave"]).trim().parse().unwrap();
    assert!(lastsave > 1_600_000_000, "LASTSAVE {lastsave}");
    let saved = digest(port);
    server.restart();
    assert_eq!(digest(port), saved, "BGSAVE then kill -9: the restart loads the same dataset");
    assert_eq!(cli(port, &["get", "after"]).trim(), "save");
    let log = server.log();
    assert!(log.contains("Background saving started by pid"), "{log}");
    assert!(log.contains("Background saving terminated with success"), "{log}");

    assert_eq!(cli(port, &["debug", "reload"]).trim(), "OK");
    assert_eq!(digest(port), saved, "DEBUG RELOAD keeps the dataset");
}

#[test]
fn bgsave_of_200k_keys_does_not_block_writers() {
    let server = Server::start(Flavor::Redsim);
    let port = server.port;
    fill(port, 200_000);
    let mut writer = Conn::connect(port).unwrap();
    let mut admin = Conn::connect(port).unwrap();
    assert_eq!(call(&mut admin, &[b"BGSAVE"]), Reply::Frame(b"+Background saving started\r\n".to_vec()));
    let started = Instant::now();
    let (mut writes, mut max_latency) = (0u64, Duration::ZERO);
    loop {
        let t = Instant::now();
        let key = format!("during:{writes}");
        assert_eq!(call(&mut writer, &[b"SET", key.as_bytes(), b"x"]), Reply::Frame(b"+OK\r\n".to_vec()));
        max_latency = max_latency.max(t.elapsed());
        writes += 1;
        if writes % 16 == 0 && info_field(port, "rdb_bgsave_in_progress") == "0" {
            break;
        }
        assert!(started.elapsed() < BGSAVE_WAIT, "BGSAVE still running");
    }
    let took = started.elapsed();
    println!(
        "snapshot: BGSAVE of 200000 keys took {:.0} ms; {writes} SETs meanwhile, longest {:.2} ms",
        took.as_secs_f64() * 1000.0,
        max_latency.as_secs_f64() * 1000.0
    );
    assert_eq!(info_field(port, "rdb_last_bgsave_status"), "ok");
    assert!(writes >= 16, "writers kept going during the BGSAVE");
    assert!(max_latency < Duration::from_millis(500), "a write waited {max_latency:?} during BGSAVE");
}

/// The same story against Redis and redsim: the replies must agree.
#[test]
fn failed_bgsave_refuses_writes_with_misconf_until_a_save_succeeds() {
    for flavor in [Flavor::Redis, Flavor::Redsim] {
        let server = Server::start_with(flavor, &["--save", "3600 1"]);
        let port = server.port;
        let name = flavor.name();
        cli(port, &["set", "k", "v"]);
        // The rename over dump.rdb fails while a directory has its name.
        let blocker = server.dir().join("dump.rdb");
        std::fs::create_dir(&blocker).unwrap();
        assert_eq!(cli(port, &["bgsave"]).trim(), "Background saving started", "{name}");
        assert_eq!(wait_bgsave_done(port), "err", "{name}");
        let set = cli(port, &["set", "k", "w"]);
        assert!(set.starts_with("MISCONF Redis is configured to save RDB snapshots"), "{name}: {set}");
        assert!(cli(port, &["ping"]).starts_with("MISCONF"), "{name}: PING is refused too");
        assert_eq!(cli(port, &["get", "k"]).trim(), "v", "{name}: reads still work");
        assert_eq!(cli(port, &["save"]).trim(), "ERR", "{name}: SAVE fails the same way");
        std::fs::remove_dir(&blocker).unwrap();
        assert_eq!(cli(port, &["bgsave"]).trim(), "Background saving started", "{name}");
        assert_eq!(wait_bgsave_done(port), "ok", "{name}");
        assert_eq!(cli(port, &["set", "k", "w"]).trim(), "OK", "{name}: writes are back");
        assert_eq!(info_field(port, "rdb_saves"), "3", "{name}: saves started, failed ones included");
        let leftovers: Vec<_> = std::fs::read_dir(server.dir())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("temp-"))
            .collect();
        assert!(leftovers.is_empty(), "{name}: temp files left: {leftovers:?}");
    }
}

#[test]
fn save_points_start_a_bgsave_by_themselves() {
    for flavor in [Flavor::Redis, Flavor::Redsim] {
        let server = Server::start_with(flavor, &["--save", "1 3"]);
        let port = server.port;
        for i in 0..3 {
            cli(port, &["set", &format!("k{i}"), "v"]);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while info_field(port, "rdb_changes_since_last_save") != "0" {
            assert!(Instant::now() < deadline, "{}: no automatic save", flavor.name());
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(wait_bgsave_done(port), "ok");
        assert!(server.dir().join("dump.rdb").is_file());
        assert!(server.log().contains("3 changes in 1 seconds. Saving..."), "{}", server.log());
    }
}

#[test]
fn a_corrupt_dump_stops_the_server_from_starting() {
    let dir = std::env::temp_dir().join(format!("redsim-it-corrupt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("dump.rdb"), b"this is not an rdb file").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_redsim"))
        .args(["server", "--port", "0", "--bind", "127.0.0.1", "--save", ""])
        .arg("--dir")
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("redsim started over a corrupt dump.rdb");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!status.success(), "exit status {status}: {text}");
    assert!(text.contains("Fatal error loading the DB (dump.rdb)") && text.contains("at offset"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn shutdown_saves_when_save_points_are_set_and_refuses_to_exit_if_it_cannot() {
    for flavor in [Flavor::Redis, Flavor::Redsim] {
        let name = flavor.name();
        let mut server = Server::start_with(flavor, &["--save", "3600 1"]);
        let port = server.port;
        cli(port, &["set", "k", "v"]);
        let blocker = server.dir().join("dump.rdb");
        std::fs::create_dir(&blocker).unwrap();
        let refused = cli(port, &["shutdown"]);
        assert_eq!(refused.trim(), "ERR Errors trying to SHUTDOWN. Check logs.", "{name}");
        assert_eq!(cli(port, &["get", "k"]).trim(), "v", "{name}: still serving");
        std::fs::remove_dir(&blocker).unwrap();
        cli(port, &["shutdown"]);
        assert!(server.wait_exit(Duration::from_secs(10)).is_some_and(|s| s.success()), "{name} exits");
        assert!(server.log().contains("Saving the final RDB snapshot before exiting."), "{name}");
        server.restart();
        assert_eq!(cli(port, &["get", "k"]).trim(), "v", "{name}: the final save is loaded");
        cli(port, &["set", "k", "w"]);
        cli(port, &["shutdown", "nosave"]);
        assert!(server.wait_exit(Duration::from_secs(10)).is_some(), "{name} exits");
        server.restart();
        assert_eq!(cli(port, &["get", "k"]).trim(), "v", "{name}: SHUTDOWN NOSAVE saved nothing");
    }
}

#[test]
fn flushall_with_save_points_saves_the_empty_dataset_at_once() {
    for flavor in [Flavor::Redis, Flavor::Redsim] {
        let name = flavor.name();
        let mut server = Server::start_with(flavor, &["--save", "3600 1"]);
        let port = server.port;
        cli(port, &["set", "k", "v"]);
        assert_eq!(cli(port, &["save"]).trim(), "OK");
        assert_eq!(cli(port, &["flushall"]).trim(), "OK");
        assert_eq!(info_field(port, "rdb_changes_since_last_save"), "0", "{name}");
        assert_eq!(info_field(port, "rdb_saves"), "1", "{name}: only SAVE and BGSAVE count");
        server.restart();
        assert_eq!(cli(port, &["dbsize"]).trim(), "0", "{name}: the flushed key stays gone after a crash");
    }
}

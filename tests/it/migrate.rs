//! MIGRATE between real Redis 7.0.15 and redsim, in all four directions. Each scenario runs
//! once per (source, target) pair and its transcript (every reply, byte for byte, and what the
//! target holds afterwards) must be the same for all pairs: redis → redis is the reference.

use std::io::Read;
use std::net::TcpListener;
use std::thread;
use std::time::{Duration, Instant};

use crate::diff::encode_command;
use crate::resp::{escape, Conn, Reply};
use crate::support::{Flavor, Server};

const FLAVORS: [Flavor; 2] = [Flavor::Redis, Flavor::Redsim];
/// A TTL far longer than any test, in ms.
const LONG_TTL_MS: u64 = 100_000;
/// How long the cron of either server may take to close an idle cached socket: Redis's
/// MIGRATE_SOCKET_CACHE_TTL (10 s) plus a cron period plus slack.
const SOCKET_CACHE_CLOSE_WAIT: Duration = Duration::from_secs(13);

fn call(conn: &mut Conn, args: &[&str]) -> Vec<u8> {
    let args: Vec<Vec<u8>> = args.iter().map(|a| a.as_bytes().to_vec()).collect();
    conn.send(&encode_command(&args));
    match conn.read_reply() {
        Reply::Frame(f) => f,
        other => panic!("{:?}: {}", args.iter().map(|a| escape(a)).collect::<Vec<_>>(), other.describe()),
    }
}

fn connect(s: &Server) -> Conn {
    Conn::connect(s.port).unwrap_or_else(|e| panic!("{} on {}: {e}", s.flavor.name(), s.port))
}

/// A transcript line: the command (MIGRATE's target port left out, as it differs between
/// runs) and the reply, readable in a failure message.
fn step(log: &mut Vec<String>, conn: &mut Conn, args: &[&str]) {
    let reply = call(conn, args);
    let mut shown: Vec<&str> = args.to_vec();
    if shown[0] == "MIGRATE" {
        shown[2] = "<port>";
    }
    log.push(format!("{} -> {}", shown.join(" "), escape(&reply)));
}

fn info_field(conn: &mut Conn, section: &str, name: &str) -> String {
    let info = String::from_utf8_lossy(&call(conn, &["INFO", section])).into_owned();
    let prefix = format!("{name}:");
    info.lines().find_map(|l| l.strip_prefix(&prefix)).unwrap_or("").to_string()
}

/// The same transcript from every pair; the first (redis → redis) is the reference.
fn assert_all_equal(runs: &[((Flavor, Flavor), Vec<String>)]) {
    let ((rs, rt), reference) = &runs[0];
    for ((s, t), got) in &runs[1..] {
        for (i, (want, line)) in reference.iter().zip(got).enumerate() {
            assert_eq!(line, want, "step {i}: {}→{} differs from {}→{}", s.name(), t.name(), rs.name(), rt.name());
        }
        assert_eq!(got.len(), reference.len(), "{}→{}: transcript length", s.name(), t.name());
    }
}

fn pairs() -> Vec<(Flavor, Flavor)> {
    FLAVORS.iter().flat_map(|&s| FLAVORS.iter().map(move |&t| (s, t))).collect()
}

fn load_types(src: &mut Conn) {
    let ttl = LONG_TTL_MS.to_string();
    call(src, &["SET", "str", "hello"]);
    call(src, &["PEXPIRE", "str", &ttl]);
    call(src, &["RPUSH", "list", "a", "b", "c", "1", "2"]);
    call(src, &["HSET", "hash", "f1", "v1", "f2", "2"]);
    call(src, &["PEXPIRE", "hash", &ttl]);
    call(src, &["SADD", "set", "x", "y", "z", "w"]);
    call(src, &["SADD", "intset", "1", "2", "3"]);
    call(src, &["ZADD", "zset", "1.5", "a", "2", "b", "-3", "c"]);
    call(src, &["PEXPIRE", "zset", &ttl]);
    let big: String = "v".repeat(100_000);
    call(src, &["SET", "big", &big]);
}

/// What a key holds, read the same way on both servers; the TTL as "none" or "set".
fn read_key(conn: &mut Conn, key: &str) -> String {
    let kind = call(conn, &["TYPE", key]);
    let value = match &kind[..] {
        b"+string\r\n" => call(conn, &["GET", key]),
        b"+list\r\n" => call(conn, &["LRANGE", key, "0", "-1"]),
        b"+hash\r\n" => call(conn, &["HGETALL", key]),
        b"+set\r\n" => call(conn, &["SORT", key, "ALPHA"]),
        b"+zset\r\n" => call(conn, &["ZRANGE", key, "0", "-1", "WITHSCORES"]),
        _ => Vec::new(),
    };
    let pttl = String::from_utf8_lossy(&call(conn, &["PTTL", key])).trim().to_string();
    let ttl = match pttl.trim_start_matches(':').parse::<i64>() {
        Ok(-1) => "none".to_string(),
        Ok(ms) if ms > 0 && ms as u64 <= LONG_TTL_MS => "set".to_string(),
        _ => pttl,
    };
    let value = escape(&value);
    let value = if value.len() > 200 { format!("{}… ({} bytes)", &value[..40], value.len()) } else { value };
    format!("{key}: {} {value} ttl={ttl}", escape(&kind))
}

#[test]
fn migrate_moves_every_type_with_its_ttl_in_all_four_directions() {
    let mut runs = Vec::new();
    for (sf, tf) in pairs() {
        let (source, target) = (Server::start(sf), Server::start(tf));
        let (mut src, mut dst) = (connect(&source), connect(&target));
        load_types(&mut src);
        let port = target.port.to_string();
        let m = |rest: &[&str]| {
            let mut argv = vec!["MIGRATE", "127.0.0.1", port.as_str()];
            argv.extend_from_slice(rest);
            argv.iter().map(|s| s.to_string()).collect::<Vec<_>>()
        };
        let mut log = Vec::new();
        let mut run = |log: &mut Vec<String>, rest: &[&str]| {
            let argv = m(rest);
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            step(log, &mut src, &argv);
        };
        run(&mut log, &["str", "0", "5000"]);
        run(&mut log, &["", "3", "5000", "KEYS", "list", "hash", "nokey", "zset"]);
        run(&mut log, &["set", "0", "5000", "COPY"]);
        run(&mut log, &["intset", "0", "0", "COPY", "REPLACE"]);
        run(&mut log, &["big", "5", "5000"]);
        run(&mut log, &["nokey", "0", "5000"]);
        run(&mut log, &["", "0", "5000", "KEYS", "nokey", "other"]);
        // The key is there on the target now: without REPLACE the target refuses it.
        run(&mut log, &["set", "0", "5000"]);
        run(&mut log, &["set", "0", "5000", "REPLACE"]);
        // A db the target does not have: the SELECT fails.
        run(&mut log, &["intset", "99", "5000"]);
        run(&mut log, &["", "0", "5000", "KEYS", "intset", "intset"]);
        for db in ["0", "3", "5"] {
            call(&mut src, &["SELECT", db]);
            call(&mut dst, &["SELECT", db]);
            step(&mut log, &mut src, &["DBSIZE"]);
            step(&mut log, &mut dst, &["DBSIZE"]);
            for key in ["str", "list", "hash", "set", "intset", "zset", "big"] {
                log.push(format!("source db{db} {}", read_key(&mut src, key)));
                log.push(format!("target db{db} {}", read_key(&mut dst, key)));
            }
        }
        call(&mut src, &["SELECT", "0"]);
        log.push(format!("source cached sockets {}", info_field(&mut src, "stats", "migrate_cached_sockets")));
        log.push(format!("source keyspace hits {}", info_field(&mut src, "stats", "keyspace_hits")));
        runs.push(((sf, tf), log));
    }
    assert_all_equal(&runs);
}

#[test]
fn migrate_authenticates_with_auth_and_auth2_as_redis() {
    let mut runs = Vec::new();
    for (sf, tf) in pairs() {
        let source = Server::start(sf);
        let target = Server::start_with(tf, &["--requirepass", "secret"]);
        let mut src = connect(&source);
        let port = target.port.to_string();
        let mut log = Vec::new();
        for k in ["a", "b", "c", "d"] {
            call(&mut src, &["SET", k, k]);
        }
        let base = ["MIGRATE", "127.0.0.1", port.as_str()];
        let with = |rest: &[&'static str]| [&base[..], rest].concat();
        step(&mut log, &mut src, &with(&["a", "0", "5000"]));
        step(&mut log, &mut src, &with(&["a", "0", "5000", "AUTH", "wrong"]));
        step(&mut log, &mut src, &with(&["a", "0", "5000", "AUTH2", "default", "wrong"]));
        step(&mut log, &mut src, &with(&["a", "0", "5000", "AUTH", "secret"]));
        step(&mut log, &mut src, &with(&["b", "2", "5000", "AUTH2", "default", "secret"]));
        step(&mut log, &mut src, &with(&["", "2", "5000", "AUTH", "secret", "KEYS", "c", "d"]));
        step(&mut log, &mut src, &["EXISTS", "a", "b", "c", "d"]);
        let mut dst = connect(&target);
        call(&mut dst, &["AUTH", "secret"]);
        step(&mut log, &mut dst, &["EXISTS", "a"]);
        call(&mut dst, &["SELECT", "2"]);
        step(&mut log, &mut dst, &["EXISTS", "b", "c", "d"]);
        log.push(format!("errorstats {}", String::from_utf8_lossy(&call(&mut src, &["INFO", "errorstats"]))));
        runs.push(((sf, tf), log));
    }
    assert_all_equal(&runs);
}

/// A loopback port nobody listens on: bound by the OS, then released.
fn dead_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A target that accepts and then, per connection, stays silent or hangs up at once.
/// Returns its port; the thread lives as long as the test process.
fn fake_target(hang_up: bool) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    thread::spawn(move || {
        let mut held = Vec::new();
        for conn in l.incoming().flatten() {
            if hang_up {
                let mut conn = conn;
                let mut buf = [0u8; 1024];
                let _ = conn.set_read_timeout(Some(Duration::from_millis(50)));
                let _ = conn.read(&mut buf);
                drop(conn);
            } else {
                held.push(conn);
            }
        }
    });
    port
}

#[test]
fn migrate_reports_io_errors_with_redis_texts() {
    let dead = dead_port().to_string();
    let silent = fake_target(false).to_string();
    let hangs_up = fake_target(true).to_string();
    let mut runs = Vec::new();
    for sf in FLAVORS {
        let source = Server::start(sf);
        let mut src = connect(&source);
        call(&mut src, &["SET", "k", "v"]);
        let mut log = Vec::new();
        step(&mut log, &mut src, &["MIGRATE", "127.0.0.1", &dead, "k", "0", "200"]);
        step(&mut log, &mut src, &["MIGRATE", "127.0.0.1", "notaport", "k", "0", "200"]);
        step(&mut log, &mut src, &["MIGRATE", "nosuch.invalid", "1", "k", "0", "200"]);
        step(&mut log, &mut src, &["MIGRATE", "127.0.0.1", &silent, "k", "0", "200"]);
        step(&mut log, &mut src, &["MIGRATE", "127.0.0.1", &hangs_up, "k", "0", "200"]);
        step(&mut log, &mut src, &["EXISTS", "k"]);
        log.push(format!("errorstats {}", String::from_utf8_lossy(&call(&mut src, &["INFO", "errorstats"]))));
        log.push(format!("cached sockets {}", info_field(&mut src, "stats", "migrate_cached_sockets")));
        runs.push(((sf, sf), log));
    }
    assert_all_equal(&runs);
}

#[test]
fn migrate_blocks_every_other_client_until_it_times_out() {
    const TIMEOUT_MS: u64 = 600;
    let silent = fake_target(false).to_string();
    for sf in FLAVORS {
        let source = Server::start(sf);
        let (mut a, mut b) = (connect(&source), connect(&source));
        call(&mut a, &["SET", "k", "v"]);
        let argv: Vec<Vec<u8>> = ["MIGRATE", "127.0.0.1", &silent, "k", "0", &TIMEOUT_MS.to_string()]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
        let started = Instant::now();
        a.send(&encode_command(&argv));
        thread::sleep(Duration::from_millis(100));
        assert_eq!(call(&mut b, &["PING"]), b"+PONG\r\n");
        let ping_done = started.elapsed();
        assert!(
            ping_done >= Duration::from_millis(TIMEOUT_MS - 50),
            "{}: PING answered after {ping_done:?}, while MIGRATE still waited",
            sf.name()
        );
        assert_eq!(
            a.read_reply(),
            Reply::Frame(b"-IOERR error or timeout reading to target instance\r\n".to_vec()),
            "{}",
            sf.name()
        );
    }
}

#[test]
fn migrate_caches_the_target_connection_and_closes_it_after_ten_idle_seconds() {
    let mut servers = Vec::new();
    for (sf, tf) in [(Flavor::Redis, Flavor::Redsim), (Flavor::Redsim, Flavor::Redis)] {
        let (source, target) = (Server::start(sf), Server::start(tf));
        let mut src = connect(&source);
        let mut dst = connect(&target);
        let port = target.port.to_string();
        call(&mut src, &["MSET", "a", "1", "b", "2"]);
        assert_eq!(call(&mut src, &["MIGRATE", "127.0.0.1", &port, "a", "4", "1000"]), b"+OK\r\n");
        // The second one reuses the connection, already on db 4: one connection on the target.
        assert_eq!(call(&mut src, &["MIGRATE", "127.0.0.1", &port, "b", "4", "1000"]), b"+OK\r\n");
        assert_eq!(info_field(&mut src, "stats", "migrate_cached_sockets"), "1", "{}", sf.name());
        assert_eq!(info_field(&mut dst, "clients", "connected_clients"), "2", "{}→{}", sf.name(), tf.name());
        servers.push((source, target, src, dst));
    }
    thread::sleep(SOCKET_CACHE_CLOSE_WAIT);
    for (source, target, src, dst) in &mut servers {
        assert_eq!(info_field(src, "stats", "migrate_cached_sockets"), "0", "{}", source.flavor.name());
        assert_eq!(info_field(dst, "clients", "connected_clients"), "1", "{}", target.flavor.name());
        call(dst, &["SELECT", "4"]);
        assert_eq!(call(dst, &["DBSIZE"]), b":2\r\n");
    }
}

#[test]
fn migrate_reaches_a_replica_of_the_source_as_del() {
    for sf in FLAVORS {
        let (source, target) = (Server::start(sf), Server::start(Flavor::Redis));
        let port = source.port.to_string();
        let replica = Server::start_with(Flavor::Redis, &["--replicaof", "127.0.0.1", &port]);
        let (mut src, mut rep) = (connect(&source), connect(&replica));
        call(&mut src, &["MSET", "a", "1", "b", "2", "c", "3"]);
        wait_for(sf, "the replica to sync", || {
            info_field(&mut rep, "replication", "master_link_status") == "up"
                && call(&mut rep, &["EXISTS", "a", "b", "c"]) == b":3\r\n"
        });
        let tport = target.port.to_string();
        let moved = call(&mut src, &["MIGRATE", "127.0.0.1", &tport, "", "0", "1000", "KEYS", "a", "b"]);
        assert_eq!(moved, b"+OK\r\n");
        let copied = call(&mut src, &["MIGRATE", "127.0.0.1", &tport, "c", "1", "1000", "COPY"]);
        assert_eq!(copied, b"+OK\r\n");
        wait_for(sf, "the replica to see the moved keys go", || {
            call(&mut rep, &["EXISTS", "a", "b", "c"]) == b":1\r\n"
        });
        assert_eq!(call(&mut rep, &["GET", "c"]), b"$1\r\n3\r\n");
    }
}

fn wait_for(sf: Flavor, what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(Instant::now() < deadline, "{} source: timed out waiting for {what}", sf.name());
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn requests_pipelined_behind_migrate_run_after_it_in_order() {
    let mut runs = Vec::new();
    for (sf, tf) in pairs() {
        let (source, target) = (Server::start(sf), Server::start(tf));
        let mut src = connect(&source);
        call(&mut src, &["SET", "k", "v"]);
        let port = target.port.to_string();
        let mut batch = Vec::new();
        for argv in [vec!["MIGRATE", "127.0.0.1", &port, "k", "0", "1000"], vec!["EXISTS", "k"], vec!["PING"]] {
            batch.extend(encode_command(&argv.iter().map(|a| a.as_bytes().to_vec()).collect::<Vec<_>>()));
        }
        src.send(&batch);
        let replies: Vec<String> = (0..3).map(|_| src.read_reply().describe()).collect();
        runs.push(((sf, tf), replies));
    }
    assert_all_equal(&runs);
}

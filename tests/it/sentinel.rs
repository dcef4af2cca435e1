//! Sentinel against real Redis 7.0.15: redsim sentinels fail a real master over to one of its
//! replicas and turn the old master into a replica when it returns; a group of two real
//! `redis-sentinel`s and one redsim sentinel discover each other and agree on a failover (the
//! hello and is-master-down-by-addr wire protocols interoperate), whichever side is elected;
//! and the replies of the client-facing commands match `redis-sentinel`'s byte for byte. Two
//! tests hold redsim to timings a real sentinel keeps (no SDOWN at start, none on a killed link).
//!
//! Every wait polls against a deadline; a timeout prints what each sentinel last said and the
//! tail of its log.

use std::collections::{BTreeMap, BTreeSet};
use std::thread;
use std::time::{Duration, Instant};

use crate::diff::{encode_command, split_args};
use crate::resp::{split_aggregate, Conn, Reply};
use crate::support::{Flavor, Sentinel, Server};
use crate::tools::cli_stdin;

const MASTER_NAME: &str = "mymaster";
const QUORUM: u32 = 2;
const DOWN_AFTER_MS: u64 = 1000;
const FAILOVER_TIMEOUT_MS: u64 = 6000;
const REPLICAS: usize = 2;
const KEYS: usize = 100;
/// Replicas are listed at the first INFO, sentinels after a hello or two (every 2 s).
const DISCOVERY_WAIT: Duration = Duration::from_secs(15);
/// SDOWN after 1 s, ODOWN, election and promotion take a few seconds; a split vote costs a
/// second try 2 × failover-timeout after the first.
const FAILOVER_WAIT: Duration = Duration::from_secs(25);
const RECONF_WAIT: Duration = Duration::from_secs(10);
/// A returning old master is converted after it has reported the master role for
/// 4 × the publish period, seen through INFO every 10 s.
const CONVERT_WAIT: Duration = Duration::from_secs(20);
const POLL_INTERVAL: Duration = Duration::from_millis(100);
const LOG_TAIL_LINES: usize = 40;

/// A reply, decoded just enough to read fields (RESP3 maps come flat, as RESP2 arrays).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Value {
    Text(String),
    Int(i64),
    Nil,
    Error(String),
    List(Vec<Value>),
}

impl Value {
    fn text(&self) -> Option<&str> {
        match self {
            Value::Text(t) => Some(t),
            _ => None,
        }
    }

    fn list(&self) -> &[Value] {
        match self {
            Value::List(items) => items,
            _ => &[],
        }
    }

    /// `[k1, v1, k2, v2, ...]` as a map; integers shown as text.
    fn fields(&self) -> BTreeMap<String, String> {
        let shown = |v: &Value| match v {
            Value::Text(t) => t.clone(),
            Value::Int(n) => n.to_string(),
            other => format!("{other:?}"),
        };
        self.list().chunks(2).filter(|p| p.len() == 2).map(|p| (shown(&p[0]), shown(&p[1]))).collect()
    }
}

fn decode(frame: &[u8]) -> Value {
    if let Some((_, items)) = split_aggregate(frame) {
        return Value::List(items.iter().map(|f| decode(f)).collect());
    }
    let line_end = frame.windows(2).position(|w| w == b"\r\n").unwrap_or(frame.len());
    let head = String::from_utf8_lossy(&frame[1.min(frame.len())..line_end]).into_owned();
    match frame.first() {
        Some(b'+') => Value::Text(head),
        Some(b'-') => Value::Error(head),
        Some(b':') => Value::Int(head.parse().unwrap_or(i64::MIN)),
        Some(b'$' | b'=') if !head.starts_with('-') && frame.len() >= line_end + 4 => {
            let body = &frame[line_end + 2..frame.len() - 2];
            let body = if frame[0] == b'=' { body.get(4..).unwrap_or_default() } else { body };
            Value::Text(String::from_utf8_lossy(body).into_owned())
        }
        _ => Value::Nil,
    }
}

/// One command on a fresh connection; a refused connection or a lost reply is an `Error`.
fn query(port: u16, args: &[&str]) -> Value {
    let Ok(mut conn) = Conn::connect(port) else { return Value::Error("<connection refused>".into()) };
    let args: Vec<Vec<u8>> = args.iter().map(|a| a.as_bytes().to_vec()).collect();
    conn.send(&encode_command(&args));
    match conn.read_reply() {
        Reply::Frame(frame) => decode(&frame),
        other => Value::Error(other.describe()),
    }
}

fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool, why: impl Fn() -> String) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out after {} ms waiting for {what}\n{}", timeout.as_millis(), why());
        thread::sleep(POLL_INTERVAL);
    }
}

fn statements(master_port: u16) -> String {
    statements_with(master_port, QUORUM, DOWN_AFTER_MS)
}

fn statements_with(master_port: u16, quorum: u32, down_after_ms: u64) -> String {
    format!(
        "sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} {quorum}\n\
         sentinel down-after-milliseconds {MASTER_NAME} {down_after_ms}\n\
         sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}\n"
    )
}

fn sentinel_master(port: u16) -> BTreeMap<String, String> {
    query(port, &["SENTINEL", "MASTER", MASTER_NAME]).fields()
}

/// The master's port as the sentinel reports it (`SENTINEL GET-MASTER-ADDR-BY-NAME`).
fn master_port_seen_by(port: u16) -> Option<u16> {
    let reply = query(port, &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME]);
    match reply.list() {
        [Value::Text(ip), Value::Text(p)] if ip == "127.0.0.1" => p.parse().ok(),
        _ => None,
    }
}

fn info_field(port: u16, section: &str, name: &str) -> Option<String> {
    let info = query(port, &["INFO", section]);
    let text = info.text()?;
    text.lines().find_map(|l| l.strip_prefix(&format!("{name}:"))).map(|v| v.trim().to_string())
}

/// `ROLE`'s first element, and for a replica the master's port it points to.
fn role(port: u16) -> (String, Option<u16>) {
    let reply = query(port, &["ROLE"]);
    let items = reply.list();
    let name = items.first().and_then(Value::text).unwrap_or("?").to_string();
    let master_port = match items.get(2) {
        Some(Value::Int(p)) => u16::try_from(*p).ok(),
        _ => None,
    };
    (name, master_port)
}

fn log_tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}

/// A real Redis master with two real replicas, and sentinels of the given flavors watching it.
struct Group {
    master: Server,
    replicas: Vec<Server>,
    sentinels: Vec<Sentinel>,
}

impl Group {
    fn start(sentinel_flavors: &[Flavor]) -> Group {
        let with_defaults: Vec<(Flavor, u32, u64)> =
            sentinel_flavors.iter().map(|&f| (f, QUORUM, DOWN_AFTER_MS)).collect();
        Group::start_with(&with_defaults)
    }

    /// Sentinels of the given flavors, each with its own quorum and down-after-milliseconds.
    fn start_with(sentinels: &[(Flavor, u32, u64)]) -> Group {
        let master = Server::start(Flavor::Redis);
        let master_port = master.port.to_string();
        let replicas: Vec<Server> = (0..REPLICAS)
            .map(|_| Server::start_with(Flavor::Redis, &["--replicaof", "127.0.0.1", &master_port]))
            .collect();
        let sentinels = sentinels
            .iter()
            .map(|&(flavor, quorum, down_after_ms)| {
                Sentinel::start(flavor, &statements_with(master.port, quorum, down_after_ms))
            })
            .collect();
        Group { master, replicas, sentinels }
    }

    fn replica_ports(&self) -> Vec<u16> {
        self.replicas.iter().map(|r| r.port).collect()
    }

    /// What each sentinel says about the master, and the tail of its log.
    fn state(&self) -> String {
        let mut out = String::new();
        for s in &self.sentinels {
            out.push_str(&format!(
                "--- {} sentinel on {}: master addr {:?}, SENTINEL MASTER {:?}\n{}\n",
                s.flavor.name(),
                s.port,
                master_port_seen_by(s.port),
                sentinel_master(s.port),
                log_tail(&s.log())
            ));
        }
        out
    }

    /// Every sentinel knows both replicas and every other sentinel, by its run ID.
    fn wait_discovered(&self) {
        let ids: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| query(s.port, &["SENTINEL", "MYID"]).text().unwrap_or_default().to_string())
            .collect();
        for id in &ids {
            assert_eq!(id.len(), 40, "SENTINEL MYID gave {id:?}");
        }
        let others = self.sentinels.len() - 1;
        let discovered = || {
            self.sentinels.iter().zip(&ids).all(|(s, id)| {
                let m = sentinel_master(s.port);
                let peers: BTreeSet<String> = query(s.port, &["SENTINEL", "SENTINELS", MASTER_NAME])
                    .list()
                    .iter()
                    .filter_map(|e| e.fields().get("runid").cloned())
                    .collect();
                let expected: BTreeSet<String> = ids.iter().filter(|o| *o != id).cloned().collect();
                m.get("num-slaves").map(String::as_str) == Some(&REPLICAS.to_string())
                    && m.get("num-other-sentinels").map(String::as_str) == Some(&others.to_string())
                    && peers == expected
            })
        };
        wait_until("every sentinel to know 2 replicas and the other sentinels", DISCOVERY_WAIT, discovered, || {
            format!("sentinel ids {ids:?}\n{}", self.state())
        });
    }

    /// Writes keys on the master and waits until both replicas acknowledged them.
    fn write_keys(&self) {
        let script: String = (0..KEYS).map(|i| format!("SET key:{i} value-{i}\n")).collect();
        let out = cli_stdin(self.master.port, &script);
        assert_eq!(out.lines().filter(|l| *l == "OK").count(), KEYS, "SETs on the master: {out}");
        let acked = query(self.master.port, &["WAIT", &REPLICAS.to_string(), "5000"]);
        assert_eq!(acked, Value::Int(REPLICAS as i64), "WAIT on the master");
    }

    /// Waits until every sentinel names the same replica as the master; its port.
    fn wait_failover(&self, old_master: u16) -> u16 {
        let replicas = self.replica_ports();
        let mut agreed = None;
        wait_until(
            "every sentinel to report the same promoted replica",
            FAILOVER_WAIT,
            || {
                let seen: BTreeSet<Option<u16>> = self.sentinels.iter().map(|s| master_port_seen_by(s.port)).collect();
                agreed = match seen.into_iter().collect::<Vec<_>>()[..] {
                    [Some(p)] if p != old_master => Some(p),
                    _ => None,
                };
                agreed.is_some()
            },
            || format!("old master {old_master}, replicas {replicas:?}\n{}", self.state()),
        );
        let new_master = agreed.expect("waited for");
        assert!(replicas.contains(&new_master), "the new master {new_master} is none of the replicas {replicas:?}");
        new_master
    }

    /// The promoted replica is a master with the keys; the other replica replicates it.
    fn check_promoted(&self, new_master: u16) {
        assert_eq!(role(new_master).0, "master", "ROLE of the promoted replica {new_master}");
        let keys: Vec<String> = (0..KEYS).map(|i| format!("key:{i}")).collect();
        let mut mget = vec!["MGET"];
        mget.extend(keys.iter().map(String::as_str));
        let values = query(new_master, &mget);
        let expected: Vec<Value> = (0..KEYS).map(|i| Value::Text(format!("value-{i}"))).collect();
        assert_eq!(values.list(), &expected[..], "the keys on the promoted replica");
        for other in self.replica_ports().into_iter().filter(|p| *p != new_master) {
            let follows = || {
                info_field(other, "replication", "master_port") == Some(new_master.to_string())
                    && info_field(other, "replication", "master_link_status").as_deref() == Some("up")
            };
            wait_until(&format!("replica {other} to replicate {new_master}"), RECONF_WAIT, follows, || {
                format!("INFO replication of {other}: {:?}\n{}", query(other, &["INFO", "replication"]), self.state())
            });
            let dbsize = || query(other, &["DBSIZE"]) == Value::Int(KEYS as i64);
            wait_until(&format!("replica {other} to hold the keys"), RECONF_WAIT, dbsize, String::new);
        }
    }

    /// Every sentinel's rewritten config file monitors the new master, so a restart keeps it.
    fn check_configs_name(&self, new_master: u16) {
        let line = format!("sentinel monitor {MASTER_NAME} 127.0.0.1 {new_master} ");
        for s in &self.sentinels {
            let stored = || s.config().lines().any(|l| l.starts_with(&line));
            wait_until(&format!("{} sentinel's config to hold '{line}'", s.flavor.name()), RECONF_WAIT, stored, || {
                s.config()
            });
        }
    }

    fn leaders(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .filter(|s| s.log().contains("+elected-leader"))
            .map(|s| format!("{} sentinel on {}", s.flavor.name(), s.port))
            .collect()
    }
}

#[test]
fn redsim_sentinels_fail_a_redis_master_over() {
    let started = Instant::now();
    let mut group = Group::start(&[Flavor::Redsim; 3]);
    group.wait_discovered();
    group.write_keys();
    let old_master = group.master.port;
    group.master.kill9();
    let killed = Instant::now();
    let new_master = group.wait_failover(old_master);
    eprintln!(
        "sentinel (redsim group): failover to {new_master} {:?} after the kill; leader {:?}",
        killed.elapsed(),
        group.leaders()
    );
    group.check_promoted(new_master);
    group.check_configs_name(new_master);

    group.master.restart();
    let restarted = Instant::now();
    let converted = || {
        role(old_master) == ("slave".to_string(), Some(new_master))
            && group
                .sentinels
                .iter()
                .any(|s| s.log().contains(&format!("+convert-to-slave slave 127.0.0.1:{old_master}")))
    };
    wait_until(
        &format!("the old master {old_master} to be converted to a replica of {new_master}"),
        CONVERT_WAIT,
        converted,
        || format!("ROLE of the old master: {:?}\n{}", query(old_master, &["ROLE"]), group.state()),
    );
    eprintln!(
        "sentinel: old master converted {:?} after its restart; test took {:?}",
        restarted.elapsed(),
        started.elapsed()
    );
}

#[test]
fn a_mixed_group_of_redis_and_redsim_sentinels_agrees() {
    let started = Instant::now();
    let mut group = Group::start(&[Flavor::Redis, Flavor::Redis, Flavor::Redsim]);
    group.wait_discovered();
    group.write_keys();
    let old_master = group.master.port;
    group.master.kill9();
    let killed = Instant::now();
    let new_master = group.wait_failover(old_master);
    eprintln!(
        "sentinel (mixed group): failover to {new_master} {:?} after the kill; leader {:?}",
        killed.elapsed(),
        group.leaders()
    );
    group.check_promoted(new_master);
    group.check_configs_name(new_master);
    let epochs: BTreeSet<String> = group
        .sentinels
        .iter()
        .map(|s| sentinel_master(s.port).get("config-epoch").cloned().unwrap_or_default())
        .collect();
    assert_eq!(epochs.len(), 1, "the sentinels' config epochs differ: {epochs:?}\n{}", group.state());
    eprintln!("sentinel: mixed group took {:?}", started.elapsed());
}

/// The other direction of the election: the redsim sentinel alone sees the master down soon
/// (quorum 1, down-after 1 s; the real ones wait 5 s), so it is the only candidate, asks the
/// real sentinels for their votes with SENTINEL IS-MASTER-DOWN-BY-ADDR and its run ID, and
/// must be elected by them and lead the failover. Its quorum and down-after are set once the
/// group is up (see `a_sentinel_sees_a_healthy_master_up_from_its_start` for why).
#[test]
fn redis_sentinels_elect_a_redsim_sentinel_that_fails_the_master_over() {
    let started = Instant::now();
    let real_down_after_ms = 5 * DOWN_AFTER_MS;
    let mut group = Group::start_with(&[
        (Flavor::Redis, QUORUM, real_down_after_ms),
        (Flavor::Redis, QUORUM, real_down_after_ms),
        (Flavor::Redsim, QUORUM, real_down_after_ms),
    ]);
    group.wait_discovered();
    let redsim = &group.sentinels[2];
    let set = ["SENTINEL", "SET", MASTER_NAME, "quorum", "1", "down-after-milliseconds", &DOWN_AFTER_MS.to_string()];
    assert_eq!(query(redsim.port, &set), Value::Text("OK".into()));
    group.write_keys();
    let redsim_id = query(redsim.port, &["SENTINEL", "MYID"]).text().unwrap_or_default().to_string();
    let old_master = group.master.port;
    group.master.kill9();
    let killed = Instant::now();
    let new_master = group.wait_failover(old_master);
    let elapsed = killed.elapsed();
    assert!(
        elapsed < Duration::from_millis(real_down_after_ms),
        "the failover took {elapsed:?}: the real sentinels saw the master down first\n{}",
        group.state()
    );
    assert_eq!(group.leaders(), [format!("redsim sentinel on {}", redsim.port)], "{}", group.state());
    for real in &group.sentinels[..2] {
        let vote = format!("+vote-for-leader {redsim_id} ");
        assert!(real.log().contains(&vote), "redis sentinel on {} did not vote for redsim:\n{}", real.port, real.log());
    }
    eprintln!("sentinel (redsim elected): failover to {new_master} {elapsed:?} after the kill");
    group.check_promoted(new_master);
    group.check_configs_name(new_master);
    eprintln!("sentinel: redsim elected by redis sentinels, test took {:?}", started.elapsed());
}

/// A sentinel started next to a healthy master and its replicas sees them within a moment
/// and never marks the master down. Real redis-sentinel does (the check runs against it
/// first, so the test itself is fair). redsim once waited a second before its first connect
/// and marked the master +sdown meanwhile.
#[test]
fn a_sentinel_sees_a_healthy_master_up_from_its_start() {
    const FIRST_INFO_WAIT: Duration = Duration::from_millis(500);
    const WATCH: Duration = Duration::from_millis(2500);
    for flavor in [Flavor::Redis, Flavor::Redsim] {
        let master = Server::start(Flavor::Redis);
        let master_port = master.port.to_string();
        let _replica = Server::start_with(Flavor::Redis, &["--replicaof", "127.0.0.1", &master_port]);
        wait_until(
            "the replica's link",
            RECONF_WAIT,
            || info_field(master.port, "replication", "connected_slaves").as_deref() == Some("1"),
            String::new,
        );
        let sentinel = Sentinel::start(flavor, &statements_with(master.port, 1, DOWN_AFTER_MS));
        let started = Instant::now();
        let knows_replica = || sentinel_master(sentinel.port).get("num-slaves").map(String::as_str) == Some("1");
        wait_until(
            &format!("{} sentinel's first INFO of the master", flavor.name()),
            FIRST_INFO_WAIT,
            knows_replica,
            || sentinel.log(),
        );
        thread::sleep(WATCH.saturating_sub(started.elapsed()));
        let log = sentinel.log();
        assert!(!log.contains("+sdown master"), "{} sentinel saw a healthy master down:\n{log}", flavor.name());
        assert!(
            !log.contains("+try-failover"),
            "{} sentinel tried a failover of a healthy master:\n{log}",
            flavor.name()
        );
    }
}

/// A healthy master whose connection from the sentinel is killed (CLIENT KILL TYPE normal,
/// as every failover's SLAVEOF transaction does to each instance it reconfigures) is not
/// marked down: the link is simply reopened. The kill is timed for when the last PONG is about
/// down-after-milliseconds old, where redsim counts the gap since it as down time.
#[test]
fn a_sentinel_does_not_mark_a_master_down_when_its_link_is_killed() {
    const ATTEMPTS: usize = 5;
    const SETTLE: Duration = Duration::from_millis(1500);
    for flavor in [Flavor::Redis, Flavor::Redsim] {
        let master = Server::start(Flavor::Redis);
        let sentinel = Sentinel::start(flavor, &statements(master.port));
        let linked = || sentinel_master(sentinel.port).get("role-reported").map(String::as_str) == Some("master");
        wait_until("the sentinel's first INFO", DISCOVERY_WAIT, linked, || sentinel.log());
        thread::sleep(SETTLE);
        let before_kills = sentinel.log().len();
        for _ in 0..ATTEMPTS {
            let old_pong = || {
                let age = sentinel_master(sentinel.port).get("last-ok-ping-reply").and_then(|v| v.parse::<u64>().ok());
                age.is_some_and(|ms| ms >= DOWN_AFTER_MS)
            };
            wait_until("a PONG about down-after old", DISCOVERY_WAIT, old_pong, String::new);
            assert!(matches!(query(master.port, &["CLIENT", "KILL", "TYPE", "normal"]), Value::Int(_)));
            thread::sleep(SETTLE);
        }
        let log = sentinel.log();
        let after_kills = &log[before_kills..];
        assert!(!after_kills.contains("+sdown master"), "{} sentinel saw a healthy master down:\n{log}", flavor.name());
    }
}

/// How one step's replies are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Compare {
    Exact,
    /// HELLO: the client id differs between servers.
    HelloId,
    /// ROLE with several masters: their order is the sentinel's dict order.
    SortedNames,
    /// Only the types and the aggregates' lengths, at every depth (values are timings, ids).
    Shape,
}

const STEPS: &[(Compare, &str)] = &[
    (Compare::Exact, "PING"),
    (Compare::Exact, "PING msg"),
    (Compare::Exact, "PING a b"),
    (Compare::Exact, "SENTINEL"),
    (Compare::Exact, "SENTINEL foo"),
    (Compare::Exact, "SENTINEL masters x"),
    (Compare::Exact, "SENTINEL master"),
    (Compare::Exact, "SENTINEL myid x"),
    (Compare::Exact, "SENTINEL get-master-addr-by-name a b"),
    (Compare::Exact, "SENTINEL reset"),
    (Compare::Exact, "SENTINEL ckquorum"),
    (Compare::Exact, "SENTINEL flushconfig x"),
    (Compare::Exact, "SENTINEL info-cache"),
    (Compare::Exact, "SENTINEL MASTER nosuch"),
    (Compare::Exact, "SENTINEL REPLICAS nosuch"),
    (Compare::Exact, "SENTINEL SLAVES nosuch"),
    (Compare::Exact, "SENTINEL SENTINELS nosuch"),
    (Compare::Exact, "SENTINEL GET-MASTER-ADDR-BY-NAME nosuch"),
    (Compare::Exact, "SENTINEL GET-MASTER-ADDR-BY-NAME mymaster"),
    (Compare::Exact, "SENTINEL SET nosuch quorum 2"),
    (Compare::Exact, "SENTINEL SET mymaster foo 1"),
    (Compare::Exact, "SENTINEL SET mymaster quorum"),
    (Compare::Exact, "SENTINEL SET mymaster quorum 0"),
    (Compare::Exact, "SENTINEL SET mymaster quorum -1"),
    (Compare::Exact, "SENTINEL SET mymaster quorum x"),
    (Compare::Exact, "SENTINEL SET mymaster quorum 2.5"),
    (Compare::Exact, "SENTINEL SET mymaster quorum 99999999999999999999"),
    (Compare::Exact, "SENTINEL SET mymaster down-after-milliseconds x"),
    (Compare::Exact, "SENTINEL SET mymaster down-after-milliseconds 0"),
    (Compare::Exact, "SENTINEL SET mymaster failover-timeout 0"),
    (Compare::Exact, "SENTINEL SET mymaster parallel-syncs 0"),
    (Compare::Exact, "SENTINEL SET mymaster quorum 2 parallel-syncs"),
    (Compare::Exact, "SENTINEL SET mymaster quorum 2 foo 3"),
    (Compare::Exact, "SENTINEL SET mymaster quorum x parallel-syncs"),
    (Compare::Exact, "SENTINEL SET mymaster notification-script /x"),
    (Compare::Exact, "SENTINEL SET mymaster client-reconfig-script /x foo"),
    (Compare::Exact, "SENTINEL SET mymaster quorum 2"),
    (Compare::Exact, "SENTINEL SET mymaster down-after-milliseconds 1000 failover-timeout 6000"),
    (Compare::Exact, "SENTINEL MONITOR mymaster 127.0.0.1 1 2"),
    (Compare::Exact, "SENTINEL MONITOR mymaster 127.0.0.1 99999 2"),
    (Compare::Exact, "SENTINEL MONITOR other 127.0.0.1 1 0"),
    (Compare::Exact, "SENTINEL MONITOR other 127.0.0.1 1 -3"),
    (Compare::Exact, "SENTINEL MONITOR other 127.0.0.1 x 2"),
    (Compare::Exact, "SENTINEL MONITOR other 127.0.0.1 x 0"),
    (Compare::Exact, "SENTINEL MONITOR other 127.0.0.1 1 x"),
    (Compare::Exact, "SENTINEL MONITOR other 127.0.0.1 x y"),
    (Compare::Exact, "SENTINEL MONITOR other 127.0.0.1 -1 2"),
    (Compare::Exact, "SENTINEL MONITOR other 127.0.0.1 65536 2"),
    (Compare::Exact, "SENTINEL MONITOR other nohost 1 2"),
    (Compare::Exact, "SENTINEL MONITOR other localhost 1 2"),
    (Compare::Exact, "SENTINEL MONITOR other 1.2.3.4.5 1 2"),
    (Compare::Exact, "SENTINEL REMOVE nosuch"),
    (Compare::Exact, "SENTINEL MONITOR zero 127.0.0.1 0 2"),
    (Compare::Exact, "SENTINEL MONITOR zero 127.0.0.1 1 2"),
    (Compare::Exact, "SENTINEL REMOVE zero"),
    (Compare::Shape, "SENTINEL MASTER mymaster"),
    (Compare::Shape, "SENTINEL MASTERS"),
    (Compare::Shape, "SENTINEL REPLICAS mymaster"),
    (Compare::Shape, "SENTINEL SLAVES mymaster"),
    (Compare::Shape, "SENTINEL SENTINELS mymaster"),
    (Compare::Shape, "SENTINEL INFO-CACHE mymaster"),
    (Compare::Shape, "SENTINEL MYID"),
    (Compare::Shape, "CLIENT ID"),
    (Compare::Shape, "CLIENT INFO"),
    (Compare::Exact, "INFO sentinel"),
    (Compare::Exact, "SENTINEL CKQUORUM mymaster"),
    (Compare::Exact, "SENTINEL RESET nomatch*"),
    (Compare::Exact, "SENTINEL FAILOVER nosuch"),
    (Compare::Exact, "SENTINEL CKQUORUM nosuch"),
    // A master nobody answers for: no hellos, so one usable sentinel, and no replica.
    (Compare::Exact, "SENTINEL MONITOR ghost 127.0.0.1 1 2"),
    (Compare::Exact, "SENTINEL CKQUORUM ghost"),
    (Compare::Exact, "SENTINEL FAILOVER ghost"),
    (Compare::SortedNames, "ROLE"),
    (Compare::Exact, "SENTINEL REMOVE ghost"),
    (Compare::Exact, "SENTINEL REMOVE ghost"),
    (Compare::Exact, "ROLE"),
    (Compare::Exact, "SENTINEL IS-MASTER-DOWN-BY-ADDR 127.0.0.1 {master} 0 *"),
    (Compare::Exact, "SENTINEL IS-MASTER-DOWN-BY-ADDR 127.0.0.1 1 0 *"),
    (Compare::Exact, "SENTINEL IS-MASTER-DOWN-BY-ADDR 127.0.0.1 x 0 *"),
    (Compare::Exact, "SENTINEL IS-MASTER-DOWN-BY-ADDR 127.0.0.1 {master} x *"),
    (Compare::Exact, "SENTINEL IS-MASTER-DOWN-BY-ADDR 127.0.0.1 {master}"),
    (Compare::Exact, "SENTINEL HELP"),
    (Compare::Exact, "SENTINEL CONFIG GET *"),
    (Compare::Exact, "SENTINEL CONFIG GET announce*"),
    (Compare::Exact, "SENTINEL CONFIG GET nosuch"),
    (Compare::Exact, "SENTINEL CONFIG GET"),
    (Compare::Exact, "SENTINEL CONFIG GET a b"),
    (Compare::Exact, "SENTINEL CONFIG SET foo bar"),
    (Compare::Exact, "SENTINEL CONFIG SET announce-port x"),
    (Compare::Exact, "SENTINEL CONFIG SET announce-ip"),
    (Compare::Exact, "SENTINEL CONFIG foo"),
    (Compare::Exact, "SENTINEL SIMULATE-FAILURE HELP"),
    (Compare::Exact, "SENTINEL SIMULATE-FAILURE foo"),
    (Compare::Exact, "SENTINEL SIMULATE-FAILURE crash-after-election foo"),
    (Compare::Exact, "SENTINEL DEBUG"),
    (Compare::Exact, "SENTINEL DEBUG x"),
    (Compare::Exact, "SENTINEL INFO-CACHE nosuch"),
    (Compare::Exact, "SENTINEL PENDING-SCRIPTS"),
    (Compare::Exact, "PUBLISH foo bar"),
    (Compare::Exact, "PUBLISH __sentinel__:hello garbage"),
    (Compare::Exact, "GET x"),
    (Compare::Exact, "GET"),
    (Compare::Exact, "RESET"),
    (Compare::Exact, "QUIT"),
    (Compare::Exact, "INFO nosuch"),
    (Compare::Exact, "AUTH x"),
    (Compare::Exact, "AUTH a b"),
    (Compare::Exact, "AUTH a b c"),
    (Compare::Exact, "AUTH default x"),
    (Compare::Exact, "CLIENT"),
    (Compare::Exact, "CLIENT foo"),
    (Compare::Exact, "CLIENT GETNAME"),
    (Compare::Exact, "CLIENT SETNAME foo"),
    (Compare::Exact, "CLIENT GETNAME"),
    (Compare::Exact, "CLIENT SETNAME \"a b\""),
    (Compare::Exact, "CLIENT SETNAME"),
    (Compare::Exact, "CLIENT GETNAME x"),
    (Compare::Exact, "CLIENT ID x"),
    (Compare::Exact, "CLIENT SETNAME \"\""),
    (Compare::Exact, "CLIENT GETNAME"),
    (Compare::Exact, "HELLO 4"),
    (Compare::Exact, "HELLO x"),
    (Compare::Exact, "HELLO 3 foo"),
    (Compare::Exact, "HELLO 2 setname"),
    (Compare::Exact, "HELLO 3 auth default"),
    (Compare::Exact, "HELLO 3 auth a b"),
    (Compare::Exact, "HELLO 3 setname \"a b\""),
    (Compare::Exact, "SUBSCRIBE a b"),
    (Compare::Exact, "PING"),
    (Compare::Exact, "PING x"),
    (Compare::Exact, "SENTINEL MYID"),
    (Compare::Exact, "ROLE"),
    (Compare::Exact, "GET x"),
    (Compare::Exact, "SUBSCRIBE"),
    (Compare::Exact, "PSUBSCRIBE"),
    (Compare::Exact, "UNSUBSCRIBE a"),
    (Compare::Exact, "PSUBSCRIBE p*"),
    (Compare::Exact, "PUNSUBSCRIBE"),
    (Compare::Exact, "UNSUBSCRIBE"),
    (Compare::Exact, "UNSUBSCRIBE"),
    (Compare::Exact, "PUNSUBSCRIBE"),
    (Compare::HelloId, "HELLO 3 setname foo setname bar"),
    (Compare::Exact, "CLIENT GETNAME"),
    (Compare::Exact, "PING"),
    (Compare::Exact, "SENTINEL MASTER nosuch"),
    (Compare::Exact, "SENTINEL GET-MASTER-ADDR-BY-NAME nosuch"),
    (Compare::Exact, "SENTINEL GET-MASTER-ADDR-BY-NAME mymaster"),
    (Compare::Exact, "SENTINEL CONFIG GET *"),
    (Compare::Exact, "SENTINEL DEBUG"),
    (Compare::Exact, "SENTINEL IS-MASTER-DOWN-BY-ADDR 127.0.0.1 {master} 0 *"),
    (Compare::Exact, "SENTINEL SIMULATE-FAILURE HELP"),
    (Compare::Exact, "SENTINEL INFO-CACHE nosuch"),
    (Compare::Exact, "INFO nosuch"),
    (Compare::Shape, "SENTINEL MASTER mymaster"),
    (Compare::Shape, "SENTINEL MASTERS"),
    (Compare::Shape, "SENTINEL REPLICAS mymaster"),
    (Compare::Shape, "SENTINEL SLAVES mymaster"),
    (Compare::Shape, "SENTINEL SENTINELS mymaster"),
    (Compare::Shape, "SENTINEL INFO-CACHE mymaster"),
    (Compare::Shape, "SENTINEL MYID"),
    (Compare::Shape, "CLIENT ID"),
    (Compare::Shape, "CLIENT INFO"),
    (Compare::Exact, "INFO sentinel"),
    (Compare::Exact, "SENTINEL CKQUORUM mymaster"),
    (Compare::Exact, "SUBSCRIBE a"),
    (Compare::Exact, "PING"),
    (Compare::Exact, "PING x"),
    (Compare::Exact, "SENTINEL GET-MASTER-ADDR-BY-NAME mymaster"),
    (Compare::Exact, "UNSUBSCRIBE"),
    (Compare::Exact, "UNSUBSCRIBE"),
    (Compare::Exact, "HELLO 2 auth default x setname"),
    (Compare::HelloId, "HELLO 2 auth default x"),
    (Compare::Exact, "CLIENT GETNAME"),
];

/// How many replies a step reads: one per channel for the pub/sub commands. An UNSUBSCRIBE
/// without channels answers once per subscription, so the steps send it with at most one.
fn reply_count(args: &[Vec<u8>]) -> usize {
    let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
    match name.as_str() {
        "subscribe" | "psubscribe" | "unsubscribe" | "punsubscribe" => (args.len() - 1).max(1),
        _ => 1,
    }
}

/// The reply with HELLO's client id blanked.
fn without_hello_id(frame: &[u8]) -> Vec<u8> {
    const ID_KEY: &[u8] = b"$2\r\nid\r\n:";
    let Some(at) = frame.windows(ID_KEY.len()).position(|w| w == ID_KEY) else { return frame.to_vec() };
    let start = at + ID_KEY.len();
    let end = start + frame[start..].iter().position(|&b| b == b'\r').unwrap_or(0);
    [&frame[..start], b"<id>", &frame[end..]].concat()
}

/// The frame's aggregate headers and scalar type bytes, one per line.
fn skeleton(frame: &[u8]) -> Vec<u8> {
    match split_aggregate(frame) {
        Some((_, items)) => {
            let header_end = frame.windows(2).position(|w| w == b"\r\n").unwrap_or(frame.len());
            let mut out = frame[..header_end].to_vec();
            out.extend_from_slice(b"\r\n");
            items.iter().for_each(|i| out.extend_from_slice(&skeleton(i)));
            out
        }
        None => [&frame[..1.min(frame.len())], b"\r\n"].concat(),
    }
}

/// `ROLE`'s reply with the master names sorted.
fn with_sorted_names(frame: &[u8]) -> Vec<u8> {
    let Some((_, parts)) = split_aggregate(frame) else { return frame.to_vec() };
    let Some((kind, mut names)) = parts.get(1).and_then(|p| split_aggregate(p)) else { return frame.to_vec() };
    names.sort();
    let mut out = format!("*{}\r\n", parts.len()).into_bytes();
    out.extend_from_slice(parts[0]);
    out.extend_from_slice(format!("{}{}\r\n", kind as char, names.len()).as_bytes());
    names.iter().for_each(|n| out.extend_from_slice(n));
    parts[2..].iter().for_each(|p| out.extend_from_slice(p));
    out
}

fn canonical(reply: &Reply, how: Compare) -> Reply {
    match (reply, how) {
        (Reply::Frame(f), Compare::HelloId) => Reply::Frame(without_hello_id(f)),
        (Reply::Frame(f), Compare::SortedNames) => Reply::Frame(with_sorted_names(f)),
        (Reply::Frame(f), Compare::Shape) => Reply::Frame(skeleton(f)),
        _ => reply.clone(),
    }
}

fn key_set(map: &BTreeMap<String, String>) -> BTreeSet<String> {
    map.keys().cloned().collect()
}

/// The keys of `INFO sentinel`'s lines, with `masterN` kept as it is.
fn info_sentinel_keys(port: u16) -> BTreeSet<String> {
    let info = query(port, &["INFO", "sentinel"]);
    info.text()
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split(':').next().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn sentinel_replies_match_redis_sentinel() {
    let started = Instant::now();
    let master = Server::start(Flavor::Redis);
    let master_port = master.port.to_string();
    let _replica = Server::start_with(Flavor::Redis, &["--replicaof", "127.0.0.1", &master_port]);
    let conf = statements(master.port);
    let real = Sentinel::start(Flavor::Redis, &conf);
    let sim = Sentinel::start(Flavor::Redsim, &conf);
    let ports = [real.port, sim.port];
    let discovered = || {
        ports.iter().all(|&p| {
            let m = sentinel_master(p);
            m.get("num-slaves").map(String::as_str) == Some("1")
                && m.get("num-other-sentinels").map(String::as_str) == Some("1")
                && m.get("flags").map(String::as_str) == Some("master")
        })
    };
    wait_until("both sentinels to know the replica and each other", DISCOVERY_WAIT, discovered, || {
        format!("redis: {:?}\nredsim: {:?}\n{}", sentinel_master(real.port), sentinel_master(sim.port), sim.log())
    });

    let mut conns = ports.map(|p| Conn::connect(p).expect("connect to a sentinel"));
    let mut mismatches = Vec::new();
    for &(how, line) in STEPS {
        let line = line.replace("{master}", &master_port);
        let args = split_args(&line).expect("a well-formed step");
        let request = encode_command(&args);
        let replies = conns.each_mut().map(|c| {
            c.send(&request);
            let replies: Vec<Reply> = (0..reply_count(&args)).map(|_| canonical(&c.read_reply(), how)).collect();
            replies
        });
        if replies[0] != replies[1] {
            let shown = replies.each_ref().map(|r| r.iter().map(Reply::describe).collect::<Vec<_>>().join(" "));
            mismatches.push(format!("{line}\n  redis:  {}\n  redsim: {}", shown[0], shown[1]));
        }
        if conns.iter().any(Conn::is_closed) {
            conns = ports.map(|p| Conn::connect(p).expect("reconnect to a sentinel"));
        }
    }

    let entry_keys = |port: u16, sub: &str| -> BTreeSet<String> {
        query(port, &["SENTINEL", sub, MASTER_NAME]).list().first().map(|e| key_set(&e.fields())).unwrap_or_default()
    };
    let shapes: [(&str, [BTreeSet<String>; 2]); 4] = [
        ("SENTINEL MASTER fields", ports.map(|p| key_set(&sentinel_master(p)))),
        ("SENTINEL REPLICAS entry fields", ports.map(|p| entry_keys(p, "REPLICAS"))),
        ("SENTINEL SENTINELS entry fields", ports.map(|p| entry_keys(p, "SENTINELS"))),
        ("INFO sentinel keys", ports.map(info_sentinel_keys)),
    ];
    for (what, [reference, candidate]) in &shapes {
        assert!(!reference.is_empty(), "{what}: redis-sentinel gave none");
        if reference != candidate {
            mismatches.push(format!(
                "{what}\n  only in redis:  {:?}\n  only in redsim: {:?}",
                reference.difference(candidate).collect::<Vec<_>>(),
                candidate.difference(reference).collect::<Vec<_>>()
            ));
        }
    }
    eprintln!(
        "sentinel: {} replies and {} field sets compared, {} mismatches, in {:?}",
        STEPS.len(),
        shapes.len(),
        mismatches.len(),
        started.elapsed()
    );
    assert!(mismatches.is_empty(), "{} mismatches:\n{}", mismatches.len(), mismatches.join("\n"));
}

//! Blocking list and sorted-set pops need several connections at once, which the case files cannot say:
//! each scenario here is a script of steps over numbered connections, run against real
//! redis and redsim, and the transcripts of replies must be identical. Timeouts are
//! 100-500 ms; sleeps give a blocked command time to reach the server before the push.
//! `pubsub.rs` runs its scenarios on the same machinery (`Step`, `same_on_both`).

use std::thread;
use std::time::Duration;

use crate::resp::{escape, Conn, Reply};
use crate::support::{Flavor, Server};

/// Time for a sent command to reach the server and block there.
pub const SETTLE_MS: u64 = 60;

#[derive(Clone, Copy)]
pub enum Step {
    /// Send a command and read its reply.
    Cmd(usize, &'static str),
    /// Send a command and read its reply, leaving it out of the transcript (HELLO: ids differ).
    Quiet(usize, &'static str),
    /// Send a command without reading (it blocks).
    Send(usize, &'static str),
    /// Read one reply.
    Read(usize),
    Sleep(u64),
    /// Close a connection (a client that hangs up while blocked).
    Close(usize),
    /// `CLIENT ID` on a connection, remembered for `$ID` in later commands.
    RememberId(usize),
    /// A command's calls and failed_calls in INFO commandstats (usec differ).
    CmdStats(usize, &'static str),
    /// These `name=value` fields of each client in CLIENT LIST, clients sorted.
    ClientFields(usize, &'static [&'static str]),
    /// The INFO lines of a section that start with one of these prefixes.
    InfoFields(usize, &'static str, &'static [&'static str]),
}

use Step::*;

/// The `blocked_clients:` and `clients_in_timeout_table:` lines of INFO clients.
pub fn blocked_clients(c: usize) -> Step {
    InfoFields(c, "clients", &["blocked_clients:", "clients_in_timeout_table:"])
}

/// Each client's `flags=` and `cmd=` in CLIENT LIST (ids, addresses and ages differ).
pub fn client_flags(c: usize) -> Step {
    ClientFields(c, &["flags", "cmd"])
}

fn encode(cmd: &str, id: Option<i64>) -> Vec<u8> {
    let parts: Vec<String> =
        cmd.split_whitespace().map(|p| if p == "$ID" { id.unwrap_or(-1).to_string() } else { p.to_string() }).collect();
    let mut out = format!("*{}\r\n", parts.len()).into_bytes();
    for p in parts {
        out.extend_from_slice(format!("${}\r\n{p}\r\n", p.len()).as_bytes());
    }
    out
}

fn frame_text(r: &Reply) -> String {
    r.describe()
}

/// Runs `steps` against `flavor`, returning one line per reply.
fn transcript(flavor: Flavor, steps: &[Step]) -> Vec<String> {
    let server = Server::start(flavor);
    let mut conns: Vec<Option<Conn>> = (0..4).map(|_| Conn::connect(server.port).ok()).collect();
    let mut id = None;
    let mut out = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let line = match *step {
            Cmd(c, cmd) => {
                let conn = conns[c].as_mut().expect("open");
                conn.send(&encode(cmd, id));
                format!("{c} {cmd} -> {}", frame_text(&conn.read_reply()))
            }
            Quiet(c, cmd) => {
                let conn = conns[c].as_mut().expect("open");
                conn.send(&encode(cmd, id));
                conn.read_reply();
                continue;
            }
            Send(c, cmd) => {
                conns[c].as_mut().expect("open").send(&encode(cmd, id));
                continue;
            }
            Read(c) => format!("{c} read -> {}", frame_text(&conns[c].as_mut().expect("open").read_reply())),
            Sleep(ms) => {
                thread::sleep(Duration::from_millis(ms));
                continue;
            }
            Close(c) => {
                conns[c] = None;
                continue;
            }
            RememberId(c) => {
                let conn = conns[c].as_mut().expect("open");
                conn.send(&encode("CLIENT ID", None));
                if let Reply::Frame(f) = conn.read_reply() {
                    id = std::str::from_utf8(&f[1..f.len() - 2]).ok().and_then(|s| s.parse().ok());
                }
                continue;
            }
            ClientFields(c, names) => {
                let reply = text_reply(conns[c].as_mut().expect("open"), "CLIENT LIST");
                let mut clients: Vec<String> = reply
                    .lines()
                    .filter(|l| l.contains("flags="))
                    .map(|l| {
                        let keep = |f: &&str| names.iter().any(|n| f.split('=').next() == Some(*n));
                        l.split(' ').filter(keep).collect::<Vec<_>>().join(" ")
                    })
                    .collect();
                clients.sort();
                format!("{c} {}", clients.join(" | "))
            }
            InfoFields(c, section, prefixes) => {
                let reply = text_reply(conns[c].as_mut().expect("open"), &format!("INFO {section}"));
                let kept: Vec<&str> = reply.lines().filter(|l| prefixes.iter().any(|p| l.starts_with(p))).collect();
                format!("{c} {}", kept.join(" "))
            }
            CmdStats(c, name) => {
                let conn = conns[c].as_mut().expect("open");
                conn.send(&encode("INFO commandstats", None));
                let reply = match conn.read_reply() {
                    Reply::Frame(f) => String::from_utf8_lossy(&f).into_owned(),
                    other => other.describe(),
                };
                let prefix = format!("cmdstat_{name}:");
                let line = reply.lines().find(|l| l.starts_with(&prefix)).unwrap_or("none");
                let kept: Vec<&str> =
                    line.split([':', ',']).filter(|f| f.starts_with("calls=") || f.contains("_calls=")).collect();
                format!("{c} {name} {}", kept.join(","))
            }
        };
        out.push(format!("step {i}: {line}"));
    }
    out
}

/// Sends `cmd` and returns its reply as text (a bulk's payload, or the reply described).
fn text_reply(conn: &mut Conn, cmd: &str) -> String {
    conn.send(&encode(cmd, None));
    match conn.read_reply() {
        Reply::Frame(f) => String::from_utf8_lossy(&f).into_owned(),
        other => other.describe(),
    }
}

/// Runs `steps` on real redis and on redsim; the transcripts must be identical.
pub fn same_on_both(name: &str, steps: &[Step]) {
    let redis = transcript(Flavor::Redis, steps);
    let redsim = transcript(Flavor::Redsim, steps);
    if redis != redsim {
        let mut report = format!("blocking scenario '{name}' differs:\n");
        for (a, b) in redis.iter().zip(&redsim) {
            let mark = if a == b { " " } else { "!" };
            report.push_str(&format!("{mark} redis : {a}\n{mark} redsim: {b}\n"));
        }
        panic!("{report}");
    }
    assert!(redis.iter().all(|l| !l.contains(&escape(b"<no reply"))), "{name}: a step timed out: {redis:#?}");
}

#[test]
fn blpop_is_served_by_a_push_from_another_client() {
    same_on_both(
        "served",
        &[
            Send(0, "BLPOP k 0"),
            Sleep(SETTLE_MS),
            blocked_clients(1),
            Cmd(1, "RPUSH k a b"),
            Read(0),
            Cmd(1, "LRANGE k 0 -1"),
            blocked_clients(1),
            Send(0, "BRPOP k 5"),
            Sleep(SETTLE_MS),
            blocked_clients(1),
            Cmd(1, "LPUSH k x y"),
            Read(0),
            Cmd(1, "LRANGE k 0 -1"),
        ],
    );
}

#[test]
fn waiters_are_served_in_the_order_they_blocked() {
    same_on_both(
        "fifo",
        &[
            Send(0, "BLPOP k 0"),
            Sleep(SETTLE_MS),
            Send(1, "BRPOP other k 0"),
            Sleep(SETTLE_MS),
            Send(2, "BLPOP k 0"),
            Sleep(SETTLE_MS),
            Cmd(3, "RPUSH k 1 2"),
            Read(0),
            Read(1),
            Cmd(3, "RPUSH other o"),
            Cmd(3, "RPUSH k 3"),
            Read(2),
            Cmd(3, "LRANGE other 0 -1"),
            Cmd(3, "EXISTS k"),
        ],
    );
}

#[test]
fn timeouts_reply_with_a_null_array_in_resp2_and_resp3() {
    same_on_both(
        "timeout",
        &[
            Cmd(0, "BLPOP k 0.2"),
            Cmd(0, "BRPOPLPUSH k d 0.1"),
            Cmd(0, "BLMOVE k d LEFT RIGHT 0.1"),
            Cmd(0, "BLMPOP 0.1 2 k k2 LEFT COUNT 3"),
            Quiet(1, "HELLO 3"),
            Cmd(1, "BRPOP k 0.1"),
            Cmd(1, "BLMOVE k d LEFT RIGHT 0.1"),
            Cmd(1, "BLMPOP 0.1 1 k RIGHT"),
            blocked_clients(2),
        ],
    );
}

#[test]
fn moves_and_blmpop_are_served_with_their_own_reply_shapes() {
    same_on_both(
        "moves",
        &[
            Send(0, "BRPOPLPUSH src dst 0"),
            Sleep(SETTLE_MS),
            Send(1, "BLPOP dst 0"),
            Sleep(SETTLE_MS),
            Cmd(2, "RPUSH src a b"),
            Read(0),
            Read(1),
            Cmd(2, "LRANGE src 0 -1"),
            Cmd(2, "EXISTS dst"),
            Send(0, "BLMPOP 0 2 m1 m2 RIGHT COUNT 2"),
            Sleep(SETTLE_MS),
            Cmd(2, "RPUSH m2 1 2 3"),
            Read(0),
            Cmd(2, "LRANGE m2 0 -1"),
            Send(0, "BLMOVE s2 d2 RIGHT LEFT 0"),
            Sleep(SETTLE_MS),
            Cmd(2, "RPUSH tmp v"),
            Cmd(2, "LMOVE tmp s2 LEFT LEFT"),
            Read(0),
            Cmd(2, "LRANGE d2 0 -1"),
            Quiet(2, "HELLO 3"),
            Quiet(1, "HELLO 3"),
            Send(1, "BLMPOP 0 1 m3 LEFT"),
            Sleep(SETTLE_MS),
            Cmd(2, "RPUSH m3 x"),
            Read(1),
        ],
    );
}

#[test]
fn blmove_to_a_key_of_another_type_gets_wrongtype_when_served() {
    same_on_both(
        "blmove wrongtype",
        &[
            Send(0, "BLMOVE src dst LEFT LEFT 0"),
            Sleep(SETTLE_MS),
            Cmd(1, "SET dst str"),
            Cmd(1, "RPUSH src v"),
            Read(0),
            Cmd(1, "LRANGE src 0 -1"),
            Send(0, "BLPOP k 0"),
            Sleep(SETTLE_MS),
            Cmd(1, "SET k str"),
            Cmd(1, "DEL k"),
            Cmd(1, "RPUSH k v"),
            Read(0),
        ],
    );
}

#[test]
fn client_unblock_answers_as_timeout_or_error() {
    same_on_both(
        "client unblock",
        &[
            RememberId(0),
            Cmd(1, "CLIENT UNBLOCK $ID"),
            Send(0, "BLPOP k 0"),
            Sleep(SETTLE_MS),
            Cmd(1, "CLIENT UNBLOCK $ID"),
            Read(0),
            Send(0, "BLMOVE k d LEFT LEFT 0"),
            Sleep(SETTLE_MS),
            Cmd(1, "CLIENT UNBLOCK $ID TIMEOUT"),
            Read(0),
            Send(0, "BRPOP k 0"),
            Sleep(SETTLE_MS),
            Cmd(1, "CLIENT UNBLOCK $ID ERROR"),
            Read(0),
            Cmd(1, "CLIENT UNBLOCK $ID ERROR"),
            blocked_clients(1),
            CmdStats(1, "blpop"),
            CmdStats(1, "brpop"),
            CmdStats(1, "blmove"),
            Send(0, "BLMOVE s d LEFT LEFT 0"),
            Sleep(SETTLE_MS),
            Cmd(1, "SET d str"),
            Cmd(1, "RPUSH s v"),
            Read(0),
            CmdStats(1, "blmove"),
        ],
    );
}

#[test]
fn pipelined_requests_wait_behind_a_blocked_one() {
    same_on_both(
        "pipelined",
        &[
            Send(0, "BLPOP k 0"),
            Send(0, "PING"),
            Send(0, "LLEN k"),
            Sleep(SETTLE_MS),
            Cmd(1, "RPUSH k a b"),
            Read(0),
            Read(0),
            Read(0),
        ],
    );
}

#[test]
fn a_client_that_hangs_up_while_blocked_stops_waiting() {
    same_on_both(
        "hang up",
        &[
            Send(0, "BLPOP k 0"),
            Sleep(SETTLE_MS),
            Close(0),
            Sleep(SETTLE_MS),
            blocked_clients(1),
            Cmd(1, "RPUSH k v"),
            Cmd(1, "LRANGE k 0 -1"),
        ],
    );
}

#[test]
fn keys_made_by_rename_copy_move_and_swapdb_wake_waiters() {
    same_on_both(
        "wholesale keys",
        &[
            Send(0, "BLPOP dst 0"),
            Sleep(SETTLE_MS),
            Cmd(1, "RPUSH src a"),
            Cmd(1, "RENAME src dst"),
            Read(0),
            Send(0, "BRPOP c2 0"),
            Sleep(SETTLE_MS),
            Cmd(1, "RPUSH c1 x y"),
            Cmd(1, "COPY c1 c2"),
            Read(0),
            Cmd(1, "LRANGE c2 0 -1"),
            Send(0, "BLPOP mv 0"),
            Sleep(SETTLE_MS),
            Cmd(1, "SELECT 1"),
            Cmd(1, "RPUSH mv m"),
            Cmd(1, "MOVE mv 0"),
            Read(0),
            Send(0, "BLPOP sw 0"),
            Sleep(SETTLE_MS),
            Cmd(1, "RPUSH sw s1 s2"),
            Cmd(1, "SWAPDB 0 1"),
            Read(0),
            Cmd(1, "SELECT 0"),
            Cmd(1, "LRANGE sw 0 -1"),
            Send(0, "BLPOP ex 0"),
            Sleep(SETTLE_MS),
            Cmd(1, "SET ex v"),
            Cmd(1, "DEL ex"),
            Cmd(1, "LPUSH ex e"),
            Read(0),
        ],
    );
}

#[test]
fn a_killed_blocked_client_stops_waiting() {
    same_on_both(
        "kill",
        &[
            RememberId(0),
            Send(0, "BLPOP k 0"),
            Sleep(SETTLE_MS),
            client_flags(1),
            Cmd(1, "CLIENT KILL ID $ID"),
            Sleep(SETTLE_MS),
            blocked_clients(1),
            Cmd(1, "RPUSH k v"),
            Cmd(1, "LLEN k"),
        ],
    );
}

#[test]
fn client_reply_off_silences_the_late_reply_of_a_blocked_command() {
    same_on_both(
        "reply off",
        &[
            Send(0, "CLIENT REPLY OFF"),
            Send(0, "BLPOP k 0.05"),
            Sleep(SETTLE_MS * 2),
            Send(0, "BLPOP k 0"),
            Sleep(SETTLE_MS),
            Cmd(1, "RPUSH k a b"),
            Send(0, "CLIENT REPLY ON"),
            Read(0),
            Cmd(0, "LRANGE k 0 -1"),
        ],
    );
}

#[test]
fn bzpopmin_and_bzpopmax_are_served_by_zadd_from_another_client() {
    same_on_both(
        "zset served",
        &[
            Send(0, "BZPOPMIN z 0"),
            Sleep(SETTLE_MS),
            blocked_clients(1),
            Cmd(1, "ZADD z 2 b 1 a 3 c"),
            Read(0),
            Cmd(1, "ZRANGE z 0 -1 WITHSCORES"),
            Send(0, "BZPOPMAX z2 5"),
            Sleep(SETTLE_MS),
            Cmd(1, "ZINCRBY z2 2.5 m"),
            Read(0),
            Cmd(1, "EXISTS z2"),
            Send(0, "BZPOPMIN u 0"),
            Sleep(SETTLE_MS),
            Cmd(1, "ZUNIONSTORE u 2 z nokey"),
            Read(0),
            Cmd(1, "ZRANGE u 0 -1"),
            blocked_clients(1),
        ],
    );
}

#[test]
fn zset_waiters_are_served_in_the_order_they_blocked() {
    same_on_both(
        "zset fifo",
        &[
            Send(0, "BZPOPMIN z 0"),
            Sleep(SETTLE_MS),
            Send(1, "BZPOPMAX other z 0"),
            Sleep(SETTLE_MS),
            Send(2, "BZMPOP 0 1 z MIN COUNT 5"),
            Sleep(SETTLE_MS),
            Cmd(3, "ZADD z 1 a 2 b 3 c 4 d"),
            Read(0),
            Read(1),
            Read(2),
            Cmd(3, "EXISTS z"),
            Send(0, "BZPOPMIN z 0"),
            Sleep(SETTLE_MS),
            Send(1, "BLPOP z 0"),
            Sleep(SETTLE_MS),
            Cmd(3, "RPUSH z l"),
            Read(1),
            Cmd(3, "ZADD z 7 x"),
            Read(0),
        ],
    );
}

#[test]
fn bzmpop_is_served_with_count_in_resp2_and_resp3() {
    same_on_both(
        "bzmpop",
        &[
            Send(0, "BZMPOP 0 2 m1 m2 MAX COUNT 2"),
            Sleep(SETTLE_MS),
            Cmd(2, "ZADD m2 1 a 2 b 3 c"),
            Read(0),
            Cmd(2, "ZRANGE m2 0 -1 WITHSCORES"),
            Quiet(1, "HELLO 3"),
            Send(1, "BZMPOP 0 1 m3 MIN"),
            Sleep(SETTLE_MS),
            Cmd(2, "ZADD m3 1.5 x 2 y"),
            Read(1),
            Send(1, "BZPOPMAX m4 0"),
            Sleep(SETTLE_MS),
            Cmd(2, "ZADD m4 -inf x"),
            Read(1),
            Send(1, "BZMPOP 0 1 m5 MIN COUNT 10"),
            Sleep(SETTLE_MS),
            Cmd(2, "ZADD m5 1 a 2 b"),
            Read(1),
        ],
    );
}

#[test]
fn zset_timeouts_reply_with_a_null_array_in_resp2_and_resp3() {
    same_on_both(
        "zset timeout",
        &[
            Cmd(0, "BZPOPMIN k 0.1"),
            Cmd(0, "BZPOPMAX k k2 0.1"),
            Cmd(0, "BZMPOP 0.1 2 k k2 MIN COUNT 3"),
            Quiet(1, "HELLO 3"),
            Cmd(1, "BZPOPMIN k 0.1"),
            Cmd(1, "BZMPOP 0.1 1 k MAX"),
            blocked_clients(2),
        ],
    );
}

#[test]
fn zsets_made_by_stores_rename_copy_move_and_swapdb_wake_waiters() {
    same_on_both(
        "zset wholesale keys",
        &[
            Send(0, "BZPOPMIN dst 0"),
            Sleep(SETTLE_MS),
            Cmd(1, "ZADD src 1 a"),
            Cmd(1, "RENAME src dst"),
            Read(0),
            Send(0, "BZPOPMAX c2 0"),
            Sleep(SETTLE_MS),
            Cmd(1, "ZADD c1 1 x 2 y"),
            Cmd(1, "COPY c1 c2"),
            Read(0),
            Cmd(1, "ZRANGE c2 0 -1"),
            Send(0, "BZMPOP 0 1 mv MIN"),
            Sleep(SETTLE_MS),
            Cmd(1, "SELECT 1"),
            Cmd(1, "ZADD mv 1 m"),
            Cmd(1, "MOVE mv 0"),
            Read(0),
            Cmd(1, "SELECT 0"),
            Send(0, "BZPOPMIN ex 0"),
            Sleep(SETTLE_MS),
            Cmd(1, "SET ex v"),
            Cmd(1, "DEL ex"),
            Cmd(1, "ZADD ex 5 e"),
            Read(0),
            Send(0, "BZPOPMAX rs 0"),
            Sleep(SETTLE_MS),
            Cmd(1, "ZADD src2 1 a 2 b 3 c"),
            Cmd(1, "ZRANGESTORE rs src2 0 1"),
            Read(0),
            Send(0, "BZMPOP 0 2 is ds MIN COUNT 3"),
            Sleep(SETTLE_MS),
            Cmd(1, "ZINTERSTORE is 2 src2 none"),
            Cmd(1, "ZDIFFSTORE ds 1 src2"),
            Read(0),
            Send(0, "BZPOPMIN sw 0"),
            Sleep(SETTLE_MS),
            Cmd(1, "SELECT 1"),
            Cmd(1, "ZADD sw 9 s"),
            Cmd(1, "SWAPDB 0 1"),
            Read(0),
            blocked_clients(1),
        ],
    );
}

#[test]
fn blocked_zset_pops_show_in_client_list_stats_and_client_unblock() {
    same_on_both(
        "zset unblock",
        &[
            RememberId(0),
            Send(0, "BZPOPMIN k 0"),
            Sleep(SETTLE_MS),
            client_flags(1),
            Cmd(1, "CLIENT UNBLOCK $ID"),
            Read(0),
            Send(0, "BZMPOP 0 1 k MAX"),
            Sleep(SETTLE_MS),
            Cmd(1, "CLIENT UNBLOCK $ID ERROR"),
            Read(0),
            Send(0, "BZPOPMAX k 0"),
            Sleep(SETTLE_MS),
            Cmd(1, "ZADD k 1 a"),
            Read(0),
            CmdStats(1, "bzpopmin"),
            CmdStats(1, "bzpopmax"),
            CmdStats(1, "bzmpop"),
            CmdStats(1, "zadd"),
            blocked_clients(1),
        ],
    );
}

#[test]
fn sort_store_serves_a_waiter_on_its_destination() {
    same_on_both(
        "sortstore",
        &[
            Cmd(1, "RPUSH src 3 1 2"),
            Send(0, "BLPOP dst 0"),
            Sleep(SETTLE_MS),
            Cmd(1, "SORT src STORE dst"),
            Read(0),
            Cmd(1, "LRANGE dst 0 -1"),
            blocked_clients(1),
        ],
    );
}

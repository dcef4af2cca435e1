//! Randomized differential testing: a seeded generator of mixed commands over a small key
//! space, sent to a real redis-server and to redsim in pipelined batches; every reply must be
//! byte-identical, except that the elements of replies whose order Redis leaves unspecified
//! (members of a hashtable-encoded set) are compared as sorted lists. Commands whose replies
//! depend on timing (TTL, TIME...) or randomness are left out; expiries use fixed absolute
//! times far in the future.
//!
//! On a mismatch the test prints the seed, the position, and the commands so far, which replay
//! the failure exactly: `REDSIM_RANDOM_SEED=<seed> cargo test --test it random`.

use crate::diff::encode_command;
use crate::resp::{escape, split_aggregate, Conn, Reply};
use crate::support::{Flavor, Gen, Server};

const KEYS: &[&str] = &["k0", "k1", "k2", "k3", "k4", "n0", "n1", "n2", "f0", "{x}"];
const SET_KEYS: &[&str] = &["s0", "s1", "s2", "k0"];
const HASH_KEYS: &[&str] = &["h0", "h1", "h2", "k1"];
const MEMBERS: &[&str] = &["1", "2", "3", "10", "-5", "100000", "a", "b", "c", "x y", "1.5", "007"];
const FIELDS: &[&str] = &["f", "g", "h", "1", "long-field-name", "", "x"];
const LIST_KEYS: &[&str] = &["l0", "l1", "l2", "h0"];
const ZSET_KEYS: &[&str] = &["z0", "z1", "z2", "s0", "k2"];
const SCORES: &[&str] =
    &["0", "1", "-1", "0.1", "0.2", "2.5", "1e3", "-inf", "+inf", "(1", "nan", "100000000000000000"];
const VALUES: &[&str] =
    &["", "a", "hello", "0", "1", "-7", "42", "9999", "10000", "3.5", "1e3", "x y", "9223372036854775807"];
/// Far enough ahead that no run reaches it, fixed so both servers see the same time.
const FAR_FUTURE_SECS: u64 = 4_102_444_800;
const BATCH: usize = 100;

fn word(g: &mut Gen) -> String {
    match g.below(4) {
        0 => g.pick(VALUES).to_string(),
        1 => (g.below(2000) as i64 - 1000).to_string(),
        2 => "v".repeat(g.below(60) as usize),
        _ => format!("w{}", g.below(50)),
    }
}

/// How a reply is compared.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Order {
    Exact,
    /// The top-level elements may come in any order (SMEMBERS of a hashtable set...).
    Unordered,
    /// An integer in seconds that may differ by one: EXPIRETIME after a relative EXPIRE, which
    /// each server computed from its own clock a moment apart (a second boundary may fall
    /// between them).
    Clock,
}

/// One random command: the string/keyspace families or, a third of the time, sets and hashes.
fn command(g: &mut Gen) -> (Vec<String>, Order) {
    match g.below(5) {
        0 => set_command(g),
        1 => (zset_command(g), Order::Exact),
        4 => (list_command(g), Order::Exact),
        2 if g.below(2) == 0 => (hash_command(g), Order::Exact),
        _ => {
            let cmd = string_command(g);
            let order = if cmd[0] == "EXPIRETIME" { Order::Clock } else { Order::Exact };
            (cmd, order)
        }
    }
}

fn set_command(g: &mut Gen) -> (Vec<String>, Order) {
    let (key, key2) = (g.pick(SET_KEYS).to_string(), g.pick(SET_KEYS).to_string());
    let (a, b) = (g.pick(MEMBERS).to_string(), g.pick(MEMBERS).to_string());
    let s = |parts: &[&str]| parts.iter().map(|p| p.to_string()).collect::<Vec<_>>();
    match g.below(14) {
        0..=2 => (s(&["SADD", &key, &a, &b]), Order::Exact),
        3 => (s(&["SREM", &key, &a, &b]), Order::Exact),
        4 => (s(&["SCARD", &key]), Order::Exact),
        5 => (s(&["SISMEMBER", &key, &a]), Order::Exact),
        6 => (s(&["SMISMEMBER", &key, &a, &b]), Order::Exact),
        7 => (s(&["SMEMBERS", &key]), Order::Unordered),
        8 => (s(&["SINTER", &key, &key2]), Order::Unordered),
        9 => (s(&["SUNION", &key, &key2]), Order::Unordered),
        10 => (s(&["SDIFF", &key, &key2]), Order::Unordered),
        11 => (s(&["SMOVE", &key, &key2, &a]), Order::Exact),
        12 => (s(&["SINTERCARD", "2", &key, &key2]), Order::Exact),
        _ => (s(&[*g.pick(&["SUNIONSTORE", "SINTERSTORE", "SDIFFSTORE"]), &key, &key2, "s0"]), Order::Exact),
    }
}

/// List commands (non-blocking), indexes around both ends.
fn list_command(g: &mut Gen) -> Vec<String> {
    let (key, key2) = (g.pick(LIST_KEYS).to_string(), g.pick(LIST_KEYS).to_string());
    let (m, m2) = (g.pick(MEMBERS).to_string(), g.pick(MEMBERS).to_string());
    let (i, j) = ((g.below(12) as i64 - 6).to_string(), (g.below(12) as i64 - 6).to_string());
    let s = |parts: &[&str]| parts.iter().map(|p| p.to_string()).collect::<Vec<_>>();
    match g.below(16) {
        0..=2 => s(&[*g.pick(&["LPUSH", "RPUSH"]), &key, &m, &m2]),
        3 => s(&[*g.pick(&["LPUSHX", "RPUSHX"]), &key, &m]),
        4 => s(&[*g.pick(&["LPOP", "RPOP"]), &key]),
        5 => s(&[*g.pick(&["LPOP", "RPOP"]), &key, &g.below(4).to_string()]),
        6 => s(&["LRANGE", &key, &i, &j]),
        7 => s(&["LINDEX", &key, &i]),
        8 => s(&["LSET", &key, &i, &m]),
        9 => s(&["LINSERT", &key, *g.pick(&["BEFORE", "AFTER"]), &m, &m2]),
        10 => s(&["LREM", &key, &i, &m]),
        11 => s(&["LTRIM", &key, &i, &j]),
        12 => s(&["LPOS", &key, &m, "RANK", *g.pick(&["1", "-1", "2"]), "COUNT", &g.below(3).to_string()]),
        13 => s(&["LMOVE", &key, &key2, *g.pick(&["LEFT", "RIGHT"]), *g.pick(&["LEFT", "RIGHT"])]),
        14 => s(&["LMPOP", "2", &key, &key2, *g.pick(&["LEFT", "RIGHT"]), "COUNT", "2"]),
        _ => s(&["LLEN", &key]),
    }
}

/// Sorted-set commands: every reply's order is defined by (score, member).
fn zset_command(g: &mut Gen) -> Vec<String> {
    let (key, key2) = (g.pick(ZSET_KEYS).to_string(), g.pick(ZSET_KEYS).to_string());
    let (m, m2) = (g.pick(MEMBERS).to_string(), g.pick(MEMBERS).to_string());
    let (sc, sc2) = (g.pick(SCORES).to_string(), g.pick(SCORES).to_string());
    let (i, j) = ((g.below(8) as i64 - 3).to_string(), (g.below(8) as i64 - 3).to_string());
    let s = |parts: &[&str]| parts.iter().map(|p| p.to_string()).collect::<Vec<_>>();
    match g.below(16) {
        0..=2 => s(&["ZADD", &key, &sc, &m, &sc2, &m2]),
        3 => s(&["ZADD", &key, *g.pick(&["NX", "XX", "GT", "LT", "CH"]), &sc, &m]),
        4 => s(&["ZINCRBY", &key, &sc, &m]),
        5 => s(&["ZREM", &key, &m, &m2]),
        6 => s(&["ZRANGE", &key, &i, &j, "WITHSCORES"]),
        7 => s(&["ZRANGE", &key, &sc, &sc2, "BYSCORE", "LIMIT", "0", "3"]),
        8 => s(&["ZRANGEBYLEX", &key, *g.pick(&["-", "[a", "(b", "[1"]), *g.pick(&["+", "[c", "(x"])]),
        9 => s(&["ZRANK", &key, &m]),
        10 => s(&["ZSCORE", &key, &m]),
        11 => s(&["ZCOUNT", &key, &sc, &sc2]),
        12 => s(&[*g.pick(&["ZPOPMIN", "ZPOPMAX"]), &key, &g.below(3).to_string()]),
        13 => s(&[*g.pick(&["ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"]), "z2", "2", &key, &key2]),
        14 => s(&["ZREMRANGEBYRANK", &key, &i, &j]),
        _ => s(&["ZCARD", &key]),
    }
}

/// Hash commands; values stay short so hashes stay listpack-encoded and their order is Redis's.
fn hash_command(g: &mut Gen) -> Vec<String> {
    let key = g.pick(HASH_KEYS).to_string();
    let (f, f2) = (g.pick(FIELDS).to_string(), g.pick(FIELDS).to_string());
    let v = word(g);
    let s = |parts: &[&str]| parts.iter().map(|p| p.to_string()).collect::<Vec<_>>();
    match g.below(12) {
        0..=2 => s(&["HSET", &key, &f, &v, &f2, &word(g)]),
        3 => s(&["HGET", &key, &f]),
        4 => s(&["HMGET", &key, &f, &f2]),
        5 => s(&["HDEL", &key, &f]),
        6 => s(&["HLEN", &key]),
        7 => s(&["HINCRBY", &key, &f, &(g.below(100) as i64 - 50).to_string()]),
        8 => s(&["HINCRBYFLOAT", &key, &f, *g.pick(&["0.25", "-3", "1e2", "x"])]),
        9 => s(&["HGETALL", &key]),
        10 => s(&["HSETNX", &key, &f, &v]),
        _ => s(&[*g.pick(&["HKEYS", "HVALS", "HSTRLEN"]), &key]),
    }
}

/// One random command in the string and keyspace families.
fn string_command(g: &mut Gen) -> Vec<String> {
    let key = g.pick(KEYS).to_string();
    let key2 = g.pick(KEYS).to_string();
    let v = word(g);
    let n = (g.below(40) as i64 - 20).to_string();
    let s = |parts: &[&str]| parts.iter().map(|p| p.to_string()).collect::<Vec<_>>();
    match g.below(34) {
        0 => s(&["SET", &key, &v]),
        1 => {
            let opt = *g.pick(&["NX", "XX", "GET", "KEEPTTL"]);
            s(&["SET", &key, &v, opt])
        }
        2 => s(&["SET", &key, &v, "EXAT", &(FAR_FUTURE_SECS + g.below(100)).to_string()]),
        3 | 4 => s(&["GET", &key]),
        5 => s(&["APPEND", &key, &v]),
        6 => s(&["INCR", &key]),
        7 => s(&["INCRBY", &key, &n]),
        8 => s(&["DECRBY", &key, &n]),
        9 => s(&["INCRBYFLOAT", &key, *g.pick(&["0.5", "-1.25", "3", "1e2", "abc"])]),
        10 => s(&["STRLEN", &key]),
        11 => s(&["GETRANGE", &key, &n, &(g.below(20) as i64 - 5).to_string()]),
        12 => s(&["SETRANGE", &key, &g.below(30).to_string(), &v]),
        13 => s(&["DEL", &key, &key2]),
        14 => s(&["EXISTS", &key, &key2, &key]),
        15 => s(&["EXPIREAT", &key, &(FAR_FUTURE_SECS + g.below(100)).to_string()]),
        16 => s(&["EXPIRETIME", &key]),
        17 => s(&["PERSIST", &key]),
        18 => s(&["MSET", &key, &v, &key2, &word(g)]),
        19 => s(&["MGET", &key, &key2, "missing"]),
        20 => s(&["GETSET", &key, &v]),
        21 => s(&["GETDEL", &key]),
        22 => s(&["RENAME", &key, &key2]),
        23 => s(&["RENAMENX", &key, &key2]),
        24 => s(&["TYPE", &key]),
        25 => s(&["OBJECT", "ENCODING", &key]),
        26 => s(&["SETNX", &key, &v]),
        27 => s(&["MSETNX", &key, &v, &key2, &v]),
        28 => s(&["LCS", &key, &key2]),
        29 => s(&["COPY", &key, &key2, *g.pick(&["REPLACE", "DB"]), "0"]),
        30 => s(&["DBSIZE"]),
        31 => s(&["GETEX", &key, *g.pick(&["PERSIST", "EXAT"]), &(FAR_FUTURE_SECS + 5).to_string()]),
        32 => s(&["EXPIRE", &key, &(1_000_000 + g.below(10)).to_string(), *g.pick(&["NX", "XX", "GT", "LT"])]),
        _ => s(&["DECR", &key]),
    }
}

fn run_seed(seed: u64, commands: usize, redis: &Server, redsim: &Server) -> Result<(), String> {
    let mut g = Gen(seed);
    let mut a = Conn::connect(redis.port).map_err(|e| e.to_string())?;
    let mut b = Conn::connect(redsim.port).map_err(|e| e.to_string())?;
    for conn in [&mut a, &mut b] {
        conn.send(&encode_command(&[b"FLUSHALL".to_vec()]));
        conn.read_reply();
    }
    let mut log: Vec<String> = Vec::new();
    while log.len() < commands {
        let batch: Vec<(Vec<String>, Order)> = (0..BATCH).map(|_| command(&mut g)).collect();
        let mut wire = Vec::new();
        for (c, _) in &batch {
            wire.extend(encode_command(&c.iter().map(|p| p.as_bytes().to_vec()).collect::<Vec<_>>()));
        }
        a.send(&wire);
        b.send(&wire);
        for (c, order) in batch {
            let (ra, rb) = (a.read_reply(), b.read_reply());
            log.push(c.join(" "));
            if !same(&ra, &rb, order) || matches!(ra, Reply::Closed | Reply::Timeout) {
                let tail: Vec<&String> = log.iter().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect();
                return Err(format!(
                    "seed {seed}, command #{}: {}\n  redis:  {}\n  redsim: {}\n  last commands:\n    {}",
                    log.len(),
                    log.last().unwrap(),
                    ra.describe(),
                    rb.describe(),
                    tail.iter().map(|s| escape(s.as_bytes())).collect::<Vec<_>>().join("\n    ")
                ));
            }
        }
    }
    Ok(())
}

fn same(a: &Reply, b: &Reply, order: Order) -> bool {
    match (a, b, order) {
        (Reply::Frame(x), Reply::Frame(y), Order::Unordered) => match (split_aggregate(x), split_aggregate(y)) {
            (Some((kx, mut ex)), Some((ky, mut ey))) => {
                ex.sort();
                ey.sort();
                kx == ky && ex == ey
            }
            _ => x == y,
        },
        (Reply::Frame(x), Reply::Frame(y), Order::Clock) => match (int_reply(x), int_reply(y)) {
            (Some(p), Some(q)) => p.abs_diff(q) <= 1,
            _ => x == y,
        },
        _ => a == b,
    }
}

fn int_reply(frame: &[u8]) -> Option<i64> {
    std::str::from_utf8(frame.strip_prefix(b":")?.strip_suffix(b"\r\n")?).ok()?.parse().ok()
}

#[test]
fn random_commands_match_redis() {
    let redis = Server::start(Flavor::Redis);
    let redsim = Server::start(Flavor::Redsim);
    let seeds: Vec<u64> = match std::env::var("REDSIM_RANDOM_SEED") {
        Ok(s) => vec![s.parse().expect("REDSIM_RANDOM_SEED is a number")],
        Err(_) => (1..=10).collect(),
    };
    let per_seed = 2_000;
    for &seed in &seeds {
        if let Err(e) = run_seed(seed, per_seed, &redis, &redsim) {
            panic!("random differential mismatch\n{e}");
        }
    }
    eprintln!("random diff: {} commands compared over {} seeds, 0 mismatches", per_seed * seeds.len(), seeds.len());
}

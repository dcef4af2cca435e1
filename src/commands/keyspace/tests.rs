//! Keyspace commands run through the whole command path on a server with a fixed clock, so
//! replies, TTLs, propagation and `dirty` can all be checked.

use bytes::Bytes;

use super::object::key_usage;
use super::parse_scan_cursor;
use crate::env::SeededRng;
use crate::server::{Config, Now, Server, SysInfo};

const START_UNIX_MS: u64 = 1_700_000_000_000;

/// Memory figures are fixed: nothing here depends on the real allocator.
struct FixedSys;

impl SysInfo for FixedSys {
    fn used_memory(&self) -> u64 {
        1 << 20
    }
    fn rss_bytes(&self) -> u64 {
        2 << 20
    }
    fn allocator_stats(&self) -> Option<(u64, u64, u64)> {
        None
    }
    fn cpu_usage(&self) -> (f64, f64) {
        (0.0, 0.0)
    }
    fn process_id(&self) -> u32 {
        1
    }
    fn mono_us(&self) -> u64 {
        0
    }
}

struct World {
    srv: Server,
    client: u64,
}

impl World {
    fn new() -> World {
        let now = Now { unix_ms: START_UNIX_MS, unix_us: START_UNIX_MS * 1000, mono_ms: 1 };
        let mut srv = Server::new(Config::default(), SeededRng::from_seed(7), Box::new(FixedSys), now);
        srv.propagate_enabled = true;
        let client = srv.add_client("127.0.0.1:40000".into(), "127.0.0.1:6379".into());
        World { srv, client }
    }

    /// Runs one command (arguments split on spaces) and returns its reply as text.
    fn run(&mut self, line: &str) -> String {
        let argv = line.split(' ').map(|s| Bytes::copy_from_slice(s.as_bytes())).collect();
        self.srv.process(self.client, argv);
        let out = &mut self.srv.clients.get_mut(&self.client).expect("client").out.buf;
        String::from_utf8_lossy(&std::mem::take(out)).into_owned()
    }

    fn advance_ms(&mut self, ms: u64) {
        let mut now = self.srv.now;
        now.unix_ms += ms;
        now.unix_us += ms * 1000;
        now.mono_ms += ms;
        self.srv.set_now(now);
    }

    fn ttl_ms(&self, db: usize, key: &str) -> Option<u64> {
        self.srv.dbs[db].expire_of(key.as_bytes()).map(|when| when - self.srv.now.unix_ms)
    }

    /// The commands propagated since the last call, as text.
    fn propagated(&mut self) -> Vec<String> {
        let cmds = std::mem::take(&mut self.srv.propagated);
        cmds.iter()
            .map(|p| {
                let words: Vec<String> = p.argv.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect();
                format!("{}: {}", p.db, words.join(" "))
            })
            .collect()
    }

    /// Every key a full SCAN with these options returns, running `between` after each call.
    fn scan_all(&mut self, opts: &str, mut between: impl FnMut(&mut World, usize)) -> Vec<String> {
        let mut seen = Vec::new();
        let mut cursor = "0".to_string();
        for step in 0.. {
            let reply = self.run(&format!("SCAN {cursor} {opts}"));
            let lines: Vec<&str> = reply.split("\r\n").collect();
            cursor = lines[2].to_string();
            seen.extend(lines.iter().skip(5).step_by(2).filter(|l| !l.is_empty()).map(|l| l.to_string()));
            if cursor == "0" {
                break;
            }
            between(self, step);
        }
        seen
    }
}

#[test]
fn rename_moves_the_ttl_and_replaces_the_target_with_its_ttl() {
    let mut w = World::new();
    w.run("SET t v PX 100000");
    w.run("SET other x PX 5000");
    assert_eq!(w.run("RENAME t other"), "+OK\r\n");
    assert_eq!(w.ttl_ms(0, "other"), Some(100_000));
    assert_eq!(w.ttl_ms(0, "t"), None);
    assert_eq!(w.run("EXISTS t"), ":0\r\n");
    w.run("SET plain y");
    assert_eq!(w.run("RENAME plain other"), "+OK\r\n");
    assert_eq!(w.ttl_ms(0, "other"), None, "the target's TTL goes with the target");
    assert_eq!(w.run("GET other"), "$1\r\ny\r\n");
}

#[test]
fn rename_to_itself_needs_a_live_key_and_changes_nothing() {
    let mut w = World::new();
    w.run("SET k v PX 100");
    w.propagated();
    assert_eq!(w.run("RENAME k k"), "+OK\r\n");
    assert_eq!(w.run("RENAMENX k k"), ":0\r\n");
    assert_eq!(w.ttl_ms(0, "k"), Some(100));
    assert!(w.propagated().is_empty(), "nothing changed, nothing propagates");
    w.advance_ms(101);
    assert_eq!(w.run("RENAME k k"), "-ERR no such key\r\n");
    assert_eq!(w.propagated(), ["0: DEL k"]);
}

#[test]
fn renamenx_refuses_a_taken_name_and_keeps_both_ttls() {
    let mut w = World::new();
    w.run("SET a 1 PX 1000");
    w.run("SET b 2 PX 2000");
    assert_eq!(w.run("RENAMENX a b"), ":0\r\n");
    assert_eq!((w.ttl_ms(0, "a"), w.ttl_ms(0, "b")), (Some(1000), Some(2000)));
    assert_eq!(w.run("RENAMENX a c"), ":1\r\n");
    assert_eq!(w.ttl_ms(0, "c"), Some(1000));
}

#[test]
fn copy_keeps_the_ttl_and_makes_a_fresh_unshared_object() {
    let mut w = World::new();
    w.run("SET n 5 PX 3000");
    assert!(w.srv.dbs[0].get(b"n").expect("n").shared);
    assert_eq!(w.run("COPY n m DB 1"), ":1\r\n");
    assert_eq!(w.ttl_ms(1, "m"), Some(3000));
    assert_eq!(w.ttl_ms(0, "n"), Some(3000), "the source keeps its TTL");
    let copy = w.srv.dbs[1].get(b"m").expect("m");
    assert!(!copy.shared);
    assert_eq!(copy.val.encoding(), "int");
    assert_eq!(w.run("COPY n m DB 1"), ":0\r\n");
}

#[test]
fn copy_replace_drops_the_targets_ttl_when_the_source_has_none() {
    let mut w = World::new();
    w.run("SET src v");
    w.run("SET dst old PX 5000");
    assert_eq!(w.run("COPY src dst REPLACE"), ":1\r\n");
    assert_eq!(w.ttl_ms(0, "dst"), None);
    assert_eq!(w.run("GET dst"), "$1\r\nv\r\n");
}

#[test]
fn copy_over_an_expired_target_does_not_need_replace() {
    let mut w = World::new();
    w.run("SET src v");
    w.run("SET dst old PX 10");
    w.advance_ms(11);
    w.propagated();
    assert_eq!(w.run("COPY src dst"), ":1\r\n");
    assert_eq!(w.propagated(), ["0: DEL dst", "0: COPY src dst"]);
}

#[test]
fn move_carries_the_ttl_and_refuses_a_taken_name() {
    let mut w = World::new();
    w.run("SET k v PX 7000");
    assert_eq!(w.run("MOVE k 3"), ":1\r\n");
    assert_eq!(w.ttl_ms(3, "k"), Some(7000));
    assert!(!w.srv.dbs[0].contains(b"k"));
    w.run("SET k again");
    assert_eq!(w.run("MOVE k 3"), ":0\r\n");
    assert_eq!(w.run("MOVE k 0"), "-ERR source and destination objects are the same\r\n");
    assert_eq!(
        w.run("MOVE k 99999999999"),
        "-ERR value is out of range, value must between -2147483648 and 2147483647\r\n"
    );
}

#[test]
fn swapdb_swaps_keys_and_ttls() {
    let mut w = World::new();
    w.run("SET k v PX 4000");
    w.propagated();
    assert_eq!(w.run("SWAPDB 0 2"), "+OK\r\n");
    assert_eq!(w.ttl_ms(2, "k"), Some(4000));
    assert_eq!(w.srv.dbs[2].id, 2, "each db keeps its id");
    assert_eq!(w.run("DBSIZE"), ":0\r\n");
    assert_eq!(w.run("SWAPDB 1 1"), "+OK\r\n");
    assert_eq!(w.propagated(), ["0: SWAPDB 0 2", "0: SWAPDB 1 1"]);
}

#[test]
fn scan_with_a_type_filter_returns_every_key_across_growth_and_shrink() {
    let mut w = World::new();
    for i in 0..200 {
        w.run(&format!("SET key:{i} v"));
    }
    let seen = w.scan_all("COUNT 7 TYPE string", |w, step| {
        if step == 3 {
            for i in 0..2000 {
                w.run(&format!("SET extra:{i} v"));
            }
        }
        if step == 40 {
            for i in 0..2000 {
                w.run(&format!("DEL extra:{i}"));
            }
        }
    });
    for i in 0..200 {
        assert!(seen.contains(&format!("key:{i}")), "key:{i} missed");
    }
    assert!(w.srv.dbs[0].dict.buckets() < 1024, "the table shrank back during the scan");
    assert!(w.scan_all("COUNT 7 TYPE list", |_, _| {}).is_empty());
}

#[test]
fn scan_deletes_expired_keys_and_type_none_returns_them_as_redis_does() {
    let mut w = World::new();
    w.run("SET live v");
    w.run("SET gone v PX 5");
    w.run("SET gone2 v PX 5");
    w.advance_ms(6);
    assert_eq!(w.scan_all("COUNT 100", |_, _| {}), ["live"]);
    assert_eq!(w.run("DBSIZE"), ":1\r\n");
    w.run("SET gone v PX 5");
    w.advance_ms(6);
    assert_eq!(w.scan_all("COUNT 100 TYPE none", |_, _| {}), ["gone"]);
    assert_eq!(w.run("DBSIZE"), ":1\r\n");
}

#[test]
fn scan_cursor_is_parsed_as_strtoul() {
    assert_eq!(parse_scan_cursor(b""), Some(0));
    assert_eq!(parse_scan_cursor(b"+7"), Some(7));
    assert_eq!(parse_scan_cursor(b"-1"), Some(u64::MAX));
    assert_eq!(parse_scan_cursor(b"18446744073709551615"), Some(u64::MAX));
    assert_eq!(parse_scan_cursor(b"18446744073709551616"), None);
    assert_eq!(parse_scan_cursor(b"3\0junk"), Some(3));
    for bad in [&b" 1"[..], b"1 ", b"-", b"+", b"0x1", b"1.5", b"abc"] {
        assert_eq!(parse_scan_cursor(bad), None, "{:?}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn keys_skips_expired_keys_without_deleting_them() {
    let mut w = World::new();
    w.run("SET a v");
    w.run("SET b v PX 5");
    w.advance_ms(6);
    assert_eq!(w.run("KEYS *"), "*1\r\n$1\r\na\r\n");
    assert_eq!(w.run("DBSIZE"), ":2\r\n");
}

#[test]
fn randomkey_deletes_the_expired_keys_it_picks() {
    let mut w = World::new();
    for i in 0..5 {
        w.run(&format!("SET k{i} v PX 5"));
    }
    w.advance_ms(6);
    w.propagated();
    assert_eq!(w.run("RANDOMKEY"), "$-1\r\n");
    assert_eq!(w.run("DBSIZE"), ":0\r\n");
    assert_eq!(w.propagated().len(), 5, "one DEL per expired key");
}

#[test]
fn writes_propagate_as_sent_only_when_they_changed_something() {
    let mut w = World::new();
    w.run("SET a 1");
    w.propagated();
    let dirty = w.srv.dirty;
    w.run("DEL missing");
    w.run("UNLINK missing");
    w.run("RENAMENX a a");
    w.run("MOVE missing 1");
    w.run("COPY missing x");
    assert!(w.propagated().is_empty());
    assert_eq!(w.srv.dirty, dirty);
    w.run("UNLINK a missing");
    w.run("FLUSHDB");
    w.run("FLUSHALL ASYNC");
    assert_eq!(w.propagated(), ["0: UNLINK a missing", "0: FLUSHDB", "0: FLUSHALL ASYNC"]);
    assert_eq!(w.srv.dirty, dirty + 2, "UNLINK one key, FLUSHDB of nothing, FLUSHALL's own one");
}

#[test]
fn memory_usage_counts_key_value_and_ttl_bookkeeping() {
    let mut w = World::new();
    w.run("SET int 12345");
    // 30 bytes: embstr, but past the 22 bytes that live inline in the object.
    w.run(&format!("SET emb {}", "e".repeat(30)));
    w.run(&format!("SET raw {}", "r".repeat(100)));
    let usage = |w: &mut World, k: &str| -> u64 {
        w.run(&format!("MEMORY USAGE {k}")).trim_start_matches(':').trim_end().parse().expect("integer reply")
    };
    let (int, emb, raw) = (usage(&mut w, "int"), usage(&mut w, "emb"), usage(&mut w, "raw"));
    assert!(int < emb && emb < raw, "{int} {emb} {raw}");
    assert!(raw >= 100 + 3);
    let obj = w.srv.dbs[0].get(b"raw").expect("raw").clone();
    assert_eq!(raw, key_usage(b"raw", &obj, false));
    assert!(key_usage(b"raw", &obj, true) > raw);
    assert_eq!(w.run("MEMORY USAGE missing"), "$-1\r\n");
    assert_eq!(w.run("MEMORY USAGE int SAMPLES -1"), "-ERR syntax error\r\n");
    assert_eq!(w.run("MEMORY USAGE int SAMPLES 0"), format!(":{int}\r\n"));
}

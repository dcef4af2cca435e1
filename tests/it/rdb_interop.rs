//! RDB and DUMP interoperability with real Redis 7.0.15, in both directions:
//! - a dump.rdb SAVEd by redis-server (every type and encoding, small and large, expiries,
//!   several dbs) loads through `rdb::load` into values equal to what redis replies;
//! - `rdb::save` of those values writes a file that redis-server loads into the same dataset
//!   (DEBUG DIGEST equal, same encodings);
//! - DUMP payloads move between redis and redsim servers through RESTORE, and redsim's DUMP
//!   is byte-identical to redis's wherever the encoding fixes the order (all but hashtables).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use redsim::engine::db::Db;
use redsim::engine::object::Value;
use redsim::persistence::rdb::{self, LoadOptions, RdbAux, SaveOptions};
use redsim::protocol::reply::format_double;

use crate::diff::encode_command;
use crate::resp::{escape, split_aggregate, Conn, Reply};
use crate::support::{Flavor, Gen, Server};

/// Databases the dataset spreads over.
const DATASET_DBS: [usize; 3] = [0, 1, 5];
/// An expiry far in the future (2100-01-01), absolute ms.
const FAR_EXPIRE_MS: u64 = 4_102_444_800_000;

fn call(conn: &mut Conn, args: &[&[u8]]) -> Vec<u8> {
    let args: Vec<Vec<u8>> = args.iter().map(|a| a.to_vec()).collect();
    conn.send(&encode_command(&args));
    match conn.read_reply() {
        Reply::Frame(f) => f,
        other => panic!("{:?}: {}", args.iter().map(|a| escape(a)).collect::<Vec<_>>(), other.describe()),
    }
}

fn call_ok(conn: &mut Conn, args: &[&[u8]]) -> Vec<u8> {
    let f = call(conn, args);
    assert!(f.first() != Some(&b'-'), "{:?}: {}", args.iter().map(|a| escape(a)).collect::<Vec<_>>(), escape(&f));
    f
}

/// A bulk string reply's payload (None for a null).
fn bulk(frame: &[u8]) -> Option<Vec<u8>> {
    if frame.starts_with(b"$-1") {
        return None;
    }
    assert_eq!(frame[0], b'$', "not a bulk: {}", escape(frame));
    let nl = frame.iter().position(|&b| b == b'\n').expect("header");
    Some(frame[nl + 1..frame.len() - 2].to_vec())
}

fn bulks(frame: &[u8]) -> Vec<Vec<u8>> {
    let (_, items) = split_aggregate(frame).unwrap_or_else(|| panic!("not an array: {}", escape(frame)));
    items.into_iter().map(|i| bulk(i).expect("no nulls")).collect()
}

fn int(frame: &[u8]) -> i64 {
    assert_eq!(frame[0], b':', "not an integer: {}", escape(frame));
    std::str::from_utf8(&frame[1..frame.len() - 2]).unwrap().parse().unwrap()
}

fn words(n: usize, g: &mut Gen, prefix: &str) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| match g.below(4) {
            0 => (g.next() as i64 / (1 << g.below(60))).to_string().into_bytes(),
            1 => format!("{prefix}-{i}-{}", "z".repeat(g.below(90) as usize)).into_bytes(),
            2 => (0..g.below(30)).map(|_| g.below(256) as u8).collect(),
            _ => format!("{prefix}{i}").into_bytes(),
        })
        .collect()
}

/// Commands that build every type and encoding, small and large, with expiries, in `db`.
fn dataset(db: usize) -> Vec<Vec<Vec<u8>>> {
    let mut g = Gen(0xdb0 + db as u64);
    let mut cmds: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut c = |parts: Vec<Vec<u8>>| cmds.push(parts);
    let b = |s: &str| s.as_bytes().to_vec();
    c(vec![b("SELECT"), b(&db.to_string())]);
    c(vec![b("SET"), b("int8"), b("-7")]);
    c(vec![b("SET"), b("int32"), b("1234567")]);
    c(vec![b("SET"), b("int64"), b("-98765432101234")]);
    c(vec![b("SET"), b("embstr"), b("hello world")]);
    c(vec![b("SET"), b("raw"), vec![b'r'; 100]]);
    c(vec![b("SET"), b("compressible"), b(&"abcabcabd".repeat(40))]);
    c(vec![b("SET"), b("binary"), (0..300).map(|_| g.below(256) as u8).collect()]);
    c(vec![b("SET"), b("empty"), vec![]]);
    c(vec![b("SET"), b("ttl"), b("v"), b("PXAT"), b(&FAR_EXPIRE_MS.to_string())]);
    let mut list = vec![b("RPUSH"), b("list-small")];
    list.extend(words(6, &mut g, "l"));
    c(list);
    let mut list = vec![b("RPUSH"), b("list-multinode")];
    list.extend(words(3000, &mut g, "node"));
    c(list);
    c(vec![b("RPUSH"), b("list-bigvals"), vec![b'x'; 5000], vec![b'y'; 20000], b("1")]);
    c(vec![b("SADD"), b("set-intset"), b("1"), b("-100"), b("70000"), b("5000000000")]);
    let mut set = vec![b("SADD"), b("set-bigint")];
    set.extend((0..700).map(|i| (i * 7 - 300).to_string().into_bytes()));
    c(set);
    let mut set = vec![b("SADD"), b("set-ht")];
    set.extend(words(50, &mut g, "s"));
    c(set);
    c(vec![b("HSET"), b("hash-lp"), b("f"), b("v"), b("n"), b("-12"), b("big"), b("123456789012")]);
    let mut hash = vec![b("HSET"), b("hash-ht")];
    for w in words(300, &mut g, "h") {
        hash.push(w.clone());
        hash.push(w);
    }
    c(hash);
    c(vec![b("HSET"), b("hash-longval"), b("f"), vec![b'v'; 100]]);
    c(vec![b("ZADD"), b("zset-lp"), b("1"), b("a"), b("2.5"), b("b"), b("-inf"), b("c"), b("1e100"), b("d")]);
    let mut z = vec![b("ZADD"), b("zset-sl")];
    for (i, w) in words(400, &mut g, "z").into_iter().enumerate() {
        z.push(format!("{}", (i as f64) * 0.37 - 50.0).into_bytes());
        z.push(w);
    }
    c(z);
    c(vec![b("ZADD"), b("zset-longmember"), b("3"), vec![b'm'; 80]]);
    c(vec![b("PEXPIREAT"), b("list-small"), b(&(FAR_EXPIRE_MS + 1).to_string())]);
    c(vec![b("PEXPIREAT"), b("hash-ht"), b(&(FAR_EXPIRE_MS + 2).to_string())]);
    cmds
}

fn populate(conn: &mut Conn) {
    for db in DATASET_DBS {
        for cmd in dataset(db) {
            let args: Vec<&[u8]> = cmd.iter().map(|a| a.as_slice()).collect();
            call_ok(conn, &args);
        }
    }
    call_ok(conn, &[b"SELECT", b"0"]);
}

/// A value in a comparable form: lists in order, sets and hashes sorted, zsets with scores
/// as Redis prints them.
fn canonical(v: &Value) -> (&'static str, Vec<Vec<u8>>) {
    match v {
        Value::Str(s) => ("string", vec![s.bytes().into_owned()]),
        Value::List(l) => ("list", l.iter().map(|e| e.to_vec()).collect()),
        Value::Set(s) => {
            let mut m: Vec<Vec<u8>> = s.iter().map(|m| m.bytes().into_owned()).collect();
            m.sort();
            ("set", m)
        }
        Value::Hash(h) => {
            let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
            pairs.sort();
            ("hash", pairs.into_iter().flat_map(|(f, v)| [f, v]).collect())
        }
        Value::Zset(z) => ("zset", z.all().into_iter().flat_map(|(m, s)| [m, format_double(s).into_bytes()]).collect()),
    }
}

/// The same form read from a server with commands.
fn canonical_from_server(conn: &mut Conn, key: &[u8]) -> (&'static str, Vec<Vec<u8>>) {
    let ty = call(conn, &[b"TYPE", key]);
    match &ty[..] {
        b"+string\r\n" => ("string", vec![bulk(&call(conn, &[b"GET", key])).unwrap()]),
        b"+list\r\n" => ("list", bulks(&call(conn, &[b"LRANGE", key, b"0", b"-1"]))),
        b"+set\r\n" => {
            let mut m = bulks(&call(conn, &[b"SMEMBERS", key]));
            m.sort();
            ("set", m)
        }
        b"+hash\r\n" => {
            let flat = bulks(&call(conn, &[b"HGETALL", key]));
            let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = flat.chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect();
            pairs.sort();
            ("hash", pairs.into_iter().flat_map(|(f, v)| [f, v]).collect())
        }
        b"+zset\r\n" => ("zset", bulks(&call(conn, &[b"ZRANGE", key, b"0", b"-1", b"WITHSCORES"]))),
        other => panic!("unexpected TYPE {}", escape(other)),
    }
}

fn keys_of(conn: &mut Conn, db: usize) -> Vec<Vec<u8>> {
    call_ok(conn, &[b"SELECT", db.to_string().as_bytes()]);
    let mut keys = bulks(&call(conn, &[b"KEYS", b"*"]));
    keys.sort();
    keys
}

fn encoding(conn: &mut Conn, key: &[u8]) -> Vec<u8> {
    bulk(&call(conn, &[b"OBJECT", b"ENCODING", key])).unwrap()
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("redsim-rdb-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn start_redis_with_file(dir: &Path, file: &str) -> Server {
    let dir = dir.to_str().unwrap();
    Server::start_with(Flavor::Redis, &["--dir", dir, "--dbfilename", file, "--enable-debug-command", "yes"])
}

fn new_dbs() -> Vec<Db> {
    (0..16).map(|i| Db::new(i, 42)).collect()
}

/// The dataset SAVEd by real Redis: the file's bytes.
fn redis_saved_file(dir: &Path) -> Vec<u8> {
    let redis = start_redis_with_file(dir, "from-redis.rdb");
    let mut conn = Conn::connect(redis.port).unwrap();
    populate(&mut conn);
    call_ok(&mut conn, &[b"SAVE"]);
    std::fs::read(dir.join("from-redis.rdb")).unwrap()
}

#[test]
fn redis_rdb_loads_into_equal_values_and_redsim_rdb_loads_into_redis() {
    let dir = scratch_dir("files");
    let file = redis_saved_file(&dir);
    let mut dbs = new_dbs();
    let loaded = rdb::load(&file, &mut dbs, &LoadOptions::default()).expect("redis's file loads");
    assert_eq!(loaded.len, file.len());
    assert_eq!(loaded.rdb_version, 10);
    assert_eq!(loaded.checksum, rdb::Checksum::Ok);
    assert_eq!(loaded.aux.redis_ver, "7.0.15");

    // Our file, from the loaded values, loaded by a real redis-server.
    let mut ours = Vec::new();
    let aux = RdbAux { ctime: loaded.aux.ctime, used_mem: 1 << 20, ..RdbAux::default() };
    rdb::save(&mut ours, &dbs, &aux, &SaveOptions::default()).unwrap();
    std::fs::write(dir.join("from-redsim.rdb"), &ours).unwrap();
    let check = std::process::Command::new("redis-check-rdb").arg(dir.join("from-redsim.rdb")).output().unwrap();
    assert!(check.status.success(), "redis-check-rdb:\n{}", String::from_utf8_lossy(&check.stdout));

    let original = start_redis_with_file(&dir, "from-redis.rdb");
    let reloaded = start_redis_with_file(&dir, "from-redsim.rdb");
    let (mut a, mut b) = (Conn::connect(original.port).unwrap(), Conn::connect(reloaded.port).unwrap());
    assert_eq!(call(&mut a, &[b"DEBUG", b"DIGEST"]), call(&mut b, &[b"DEBUG", b"DIGEST"]), "dataset digests differ");
    let mut compared = 0;
    for db in DATASET_DBS {
        let keys = keys_of(&mut a, db);
        assert_eq!(keys, keys_of(&mut b, db), "db {db} keys");
        assert_eq!(keys.len() as u64, dbs[db].len() as u64, "db {db} key count");
        for key in &keys {
            let name = String::from_utf8_lossy(key).into_owned();
            let ours = dbs[db].get(key).unwrap_or_else(|| panic!("db {db}: {name} not loaded"));
            assert_eq!(canonical(&ours.val), canonical_from_server(&mut a, key), "db {db}: {name}");
            let enc = encoding(&mut a, key);
            assert_eq!(ours.val.encoding().as_bytes(), &enc[..], "db {db}: {name} encoding");
            assert_eq!(encoding(&mut b, key), enc, "db {db}: {name} encoding after our save");
            let when = int(&call(&mut a, &[b"PEXPIRETIME", key]));
            assert_eq!(dbs[db].expire_of(key).map_or(-1, |w| w as i64), when, "db {db}: {name} expiry");
            compared += 1;
        }
    }
    assert!(compared >= 60, "compared only {compared} keys");
    drop((original, reloaded));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn dump_payloads_cross_between_redis_and_redsim() {
    let redis = Server::start(Flavor::Redis);
    let redsim = Server::start(Flavor::Redsim);
    let (mut r, mut s) = (Conn::connect(redis.port).unwrap(), Conn::connect(redsim.port).unwrap());
    populate(&mut r);
    populate(&mut s);
    let mut identical = BTreeMap::new();
    for db in DATASET_DBS {
        let keys = keys_of(&mut r, db);
        assert_eq!(keys, keys_of(&mut s, db), "db {db} keys");
        for key in &keys {
            let name = String::from_utf8_lossy(key).into_owned();
            let from_redis = bulk(&call(&mut r, &[b"DUMP", key])).unwrap();
            let from_redsim = bulk(&call(&mut s, &[b"DUMP", key])).unwrap();
            let enc = encoding(&mut r, key);
            assert_eq!(encoding(&mut s, key), enc, "db {db}: {name} encoding");
            if enc != b"hashtable" {
                assert!(from_redis == from_redsim, "db {db}: {name} ({}) DUMP differs", String::from_utf8_lossy(&enc));
                *identical.entry(String::from_utf8_lossy(&enc).into_owned()).or_insert(0) += 1;
            }
            let copy = [key.as_slice(), b":copy"].concat();
            call_ok(&mut s, &[b"RESTORE", &copy, b"0", &from_redis]);
            call_ok(&mut r, &[b"RESTORE", &copy, b"0", &from_redsim]);
            let want = canonical_from_server(&mut r, key);
            assert_eq!(canonical_from_server(&mut s, &copy), want, "db {db}: {name} restored in redsim");
            assert_eq!(canonical_from_server(&mut r, &copy), want, "db {db}: {name} restored in redis");
            assert_eq!(encoding(&mut s, &copy), enc, "db {db}: {name} encoding restored in redsim");
        }
    }
    for enc in ["int", "embstr", "raw", "quicklist", "intset", "listpack", "skiplist"] {
        assert!(identical.get(enc).copied().unwrap_or(0) > 0, "no byte-identical {enc} DUMP: {identical:?}");
    }
}

#[test]
fn redsim_check_rdb_reports_a_redis_file_and_its_corruption() {
    let dir = scratch_dir("check");
    let file = redis_saved_file(&dir);
    let run = |path: &Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_redsim")).arg("check-rdb").arg(path).output().unwrap()
    };
    let out = run(&dir.join("from-redis.rdb"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    // Every offset-stamped line of redis-check-rdb's report (aux fields, db switches, the
    // checksum and the verdict) appears in ours, and so do its key counts.
    let theirs = std::process::Command::new("redis-check-rdb").arg(dir.join("from-redis.rdb")).output().unwrap();
    let theirs = String::from_utf8_lossy(&theirs.stdout);
    let wanted: Vec<&str> = theirs
        .lines()
        .filter(|l| (l.starts_with("[offset") && !l.contains("Checking RDB file")) || l.starts_with("[info]"))
        .collect();
    assert!(wanted.len() >= 10, "{theirs}");
    for line in wanted {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in:\n{text}");
    }
    assert!(text.contains(&format!("[offset {}] \\o/ RDB looks OK! \\o/", file.len())), "{text}");
    let mut bad = file.clone();
    bad.truncate(file.len() / 2);
    std::fs::write(dir.join("bad.rdb"), &bad).unwrap();
    let out = run(&dir.join("bad.rdb"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("--- RDB ERROR DETECTED ---"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

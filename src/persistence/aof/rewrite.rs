//! The base file of a rewrite: the whole dataset, either as an RDB preamble
//! (`aof-use-rdb-preamble yes`) or as commands (Redis's `rewriteAppendOnlyFileRio`). Only the
//! bytes come from here; who produces them (in-process now, a forked child later) and how they
//! reach the disk is the driver's business.

use crate::engine::db::Db;
use crate::engine::object::Value;
use crate::persistence::rdb;
use crate::protocol::reply::format_double;

use super::encode_parts;

/// Redis batches collection elements this many per command (`AOF_REWRITE_ITEMS_PER_CMD`).
pub const AOF_REWRITE_ITEMS_PER_CMD: usize = 64;

/// A rewritten base: its bytes and whether they are an RDB preamble.
pub struct Base {
    pub bytes: Vec<u8>,
    pub rdb_preamble: bool,
    /// Why an asked-for preamble was not written, for the log.
    pub fallback: Option<String>,
}

/// The dataset at `now_ms` as a base file. Keys already logically expired are left out.
pub fn rewrite_base(dbs: &[Db], now_ms: u64, rdb_preamble: bool) -> Base {
    let mut fallback = None;
    if rdb_preamble {
        let aux = rdb::RdbAux {
            redis_ver: "7.0.15".into(),
            redis_bits: 64,
            ctime: (now_ms / 1000) as i64,
            used_mem: 0,
            repl_stream_db: None,
            repl_id: None,
            repl_offset: None,
            aof_base: true,
            other: Vec::new(),
        };
        let mut bytes = Vec::new();
        match rdb::save(&mut bytes, dbs, &aux, &rdb::SaveOptions::default()) {
            Ok(()) => return Base { bytes, rdb_preamble: true, fallback: None },
            Err(e) => fallback = Some(e.to_string()),
        }
    }
    Base { bytes: commands_base(dbs, now_ms), rdb_preamble: false, fallback }
}

/// The dataset as commands: per non-empty db a SELECT, then per key the commands that build it
/// and a PEXPIREAT for its expiry.
pub fn commands_base(dbs: &[Db], now_ms: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for db in dbs {
        if db.is_empty() {
            continue;
        }
        let id = itoa::Buffer::new().format(db.id).as_bytes().to_vec();
        encode_parts(&mut out, [&b"SELECT"[..], &id].into_iter());
        // Keys sorted: the same dataset always rewrites to the same bytes.
        let mut keys: Vec<&[u8]> = db.dict.iter().map(|(k, _)| k).collect();
        keys.sort_unstable();
        for key in keys {
            let expire = db.expire_of(key);
            if expire.is_some_and(|when| when < now_ms) {
                continue;
            }
            let obj = db.get(key).expect("key listed by the dict");
            rewrite_value(&mut out, key, &obj.val);
            if let Some(when) = expire {
                let when = itoa::Buffer::new().format(when).as_bytes().to_vec();
                encode_parts(&mut out, [&b"PEXPIREAT"[..], key, &when].into_iter());
            }
        }
    }
    out
}

fn rewrite_value(out: &mut Vec<u8>, key: &[u8], val: &Value) {
    match val {
        Value::Str(s) => encode_parts(out, [&b"SET"[..], key, &s.bytes()].into_iter()),
        Value::List(l) => {
            let items: Vec<Vec<u8>> = l.iter().map(<[u8]>::to_vec).collect();
            batched(out, b"RPUSH", key, &items, 1);
        }
        Value::Set(s) => {
            let items: Vec<Vec<u8>> = s.iter().map(|m| m.bytes().into_owned()).collect();
            batched(out, b"SADD", key, &items, 1);
        }
        Value::Zset(z) => {
            let items: Vec<Vec<u8>> =
                z.range(0, z.len()).into_iter().flat_map(|(m, score)| [format_double(score).into_bytes(), m]).collect();
            batched(out, b"ZADD", key, &items, 2);
        }
        Value::Hash(h) => {
            let items: Vec<Vec<u8>> = h.iter().flat_map(|(f, v)| [f.to_vec(), v.to_vec()]).collect();
            batched(out, b"HMSET", key, &items, 2);
        }
    }
}

/// `cmd key a b c …` with at most `AOF_REWRITE_ITEMS_PER_CMD` elements of `width` items each.
fn batched(out: &mut Vec<u8>, cmd: &[u8], key: &[u8], items: &[Vec<u8>], width: usize) {
    for chunk in items.chunks(AOF_REWRITE_ITEMS_PER_CMD * width) {
        let argv: Vec<&[u8]> = [cmd, key].into_iter().chain(chunk.iter().map(Vec::as_slice)).collect();
        encode_parts(out, argv.into_iter());
    }
}

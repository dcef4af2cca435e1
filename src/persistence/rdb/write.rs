//! The writer: Redis 7.0's `rdbSaveRio` / `rdbSaveObject` byte for byte, from engine values.

use std::io::Write;

use super::blob::{intset_build, listpack_build};
use super::{opcode, KeyMeta, RdbAux, RdbType, SaveOptions, CRC64, RDB_VERSION};
use crate::engine::db::Db;
use crate::engine::hash::Hash;
use crate::engine::object::{RObj, Value};
use crate::engine::set::Set;
use crate::engine::zset::Zset;
use crate::protocol::parser::parse_ll;
use crate::server::evict::{estimate_idle_ms, lfu_decr_and_return};

/// Strings up to this long are never worth compressing (Redis: "under 20 bytes it's unable
/// to compress even aaaaaaaaaaaaaaaaaa").
const LZF_MIN_LEN: usize = 20; // bytes
/// Quicklist node container tag for a listpack node (Redis's `QUICKLIST_NODE_CONTAINER_PACKED`).
const QUICKLIST_NODE_CONTAINER_PACKED: u64 = 2;
/// Special string encodings after a `11` length prefix (Redis's `RDB_ENC_*`).
pub(super) const RDB_ENC_INT8: u8 = 0;
pub(super) const RDB_ENC_INT16: u8 = 1;
pub(super) const RDB_ENC_INT32: u8 = 2;
pub(super) const RDB_ENC_LZF: u8 = 3;
/// Bytes buffered before they go to the writer.
const FLUSH_AT: usize = 64 * 1024; // bytes

/// Redis's `rdbSaveLen`: 6-bit, 14-bit, 32-bit or 64-bit big-endian lengths.
pub(super) fn put_len(out: &mut Vec<u8>, n: u64) {
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.extend_from_slice(&[0x40 | (n >> 8) as u8, n as u8]);
    } else if n <= u64::from(u32::MAX) {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// Redis's `rdbEncodeInteger`: 8, 16 or 32-bit, else not encodable.
fn put_int_encoded(out: &mut Vec<u8>, v: i64) -> bool {
    if let Ok(v) = i8::try_from(v) {
        out.extend_from_slice(&[0xC0 | RDB_ENC_INT8, v as u8]);
    } else if let Ok(v) = i16::try_from(v) {
        out.push(0xC0 | RDB_ENC_INT16);
        out.extend_from_slice(&v.to_le_bytes());
    } else if let Ok(v) = i32::try_from(v) {
        out.push(0xC0 | RDB_ENC_INT32);
        out.extend_from_slice(&v.to_le_bytes());
    } else {
        return false;
    }
    true
}

/// Redis's `rdbSaveLzfStringObject` rule: compressed into at most `len - 4` bytes, or not
/// at all.
pub(super) fn lzf_compress(s: &[u8]) -> Option<Vec<u8>> {
    if s.len() <= 4 {
        return None;
    }
    super::lzf::compress(s, s.len() - 4)
}

/// Redis's `rdbSaveRawString`: a short decimal integer as an int encoding, else LZF when
/// enabled and it pays, else length + bytes.
pub(super) fn put_string(out: &mut Vec<u8>, s: &[u8], compress: bool) {
    if s.len() <= 11 {
        if let Some(v) = parse_ll(s) {
            if put_int_encoded(out, v) {
                return;
            }
        }
    }
    if compress && s.len() > LZF_MIN_LEN {
        if let Some(c) = lzf_compress(s) {
            out.push(0xC0 | RDB_ENC_LZF);
            put_len(out, c.len() as u64);
            put_len(out, s.len() as u64);
            out.extend_from_slice(&c);
            return;
        }
    }
    put_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// Redis's `d2string` as `zzlInsertAt` stores a score in a listpack.
fn score_text(score: f64) -> String {
    crate::protocol::reply::format_double(score)
}

fn rdb_type(v: &Value) -> RdbType {
    match v {
        Value::Str(_) => RdbType::String,
        Value::List(_) => RdbType::ListQuicklist2,
        Value::Set(Set::Intset(_)) => RdbType::SetIntset,
        Value::Set(Set::Hashtable(_)) => RdbType::Set,
        Value::Hash(h) if matches!(**h, Hash::Listpack(_)) => RdbType::HashListpack,
        Value::Hash(_) => RdbType::Hash,
        Value::Zset(z) if matches!(**z, Zset::Listpack(_)) => RdbType::ZsetListpack,
        Value::Zset(_) => RdbType::Zset2,
    }
}

/// Redis's `rdbSaveObjectType` + `rdbSaveObject`: a DUMP payload's body.
pub(super) fn object_type_and_value(out: &mut Vec<u8>, v: &Value, compress: bool) {
    out.push(rdb_type(v) as u8);
    put_value(out, v, compress);
}

/// Redis's `rdbSaveObject`.
fn put_value(out: &mut Vec<u8>, v: &Value, compress: bool) {
    match v {
        Value::Str(s) => put_string(out, &s.bytes(), compress),
        Value::List(l) => {
            put_len(out, l.nodes().count() as u64);
            for node in l.nodes() {
                put_len(out, QUICKLIST_NODE_CONTAINER_PACKED);
                put_string(out, &listpack_build(node.iter()), compress);
            }
        }
        Value::Set(Set::Intset(is)) => {
            put_string(out, &intset_build(&is.iter().collect::<Vec<_>>(), is.width()), compress)
        }
        Value::Set(set) => {
            put_len(out, set.len() as u64);
            for m in set.iter() {
                put_string(out, &m.bytes(), compress);
            }
        }
        Value::Hash(h) => match &**h {
            Hash::Listpack(_) => {
                let blob = listpack_build(h.iter().flat_map(|(f, v)| [f, v]));
                put_string(out, &blob, compress);
            }
            Hash::Table(_) => {
                put_len(out, h.len() as u64);
                for (f, v) in h.iter() {
                    put_string(out, f, compress);
                    put_string(out, v, compress);
                }
            }
        },
        Value::Zset(z) => match &**z {
            Zset::Listpack(_) => {
                let pairs: Vec<(Vec<u8>, String)> = z.all().into_iter().map(|(m, s)| (m, score_text(s))).collect();
                let blob = listpack_build(pairs.iter().flat_map(|(m, s)| [m.as_slice(), s.as_bytes()]));
                put_string(out, &blob, compress);
            }
            Zset::Skiplist(_) => {
                // Greatest first, so loading inserts each at the head of the skiplist.
                put_len(out, z.len() as u64);
                for (m, s) in z.all().into_iter().rev() {
                    put_string(out, &m, compress);
                    out.extend_from_slice(&s.to_le_bytes());
                }
            }
        },
    }
}

/// Redis's `rdbSaveAuxField*`: both sides as raw strings (so numbers are int-encoded).
fn put_aux(out: &mut Vec<u8>, key: &[u8], val: &[u8], compress: bool) {
    out.push(opcode::AUX);
    put_string(out, key, compress);
    put_string(out, val, compress);
}

fn put_aux_fields(out: &mut Vec<u8>, aux: &RdbAux, compress: bool) {
    let int = |n: i64| n.to_string();
    put_aux(out, b"redis-ver", aux.redis_ver.as_bytes(), compress);
    put_aux(out, b"redis-bits", int(aux.redis_bits).as_bytes(), compress);
    put_aux(out, b"ctime", int(aux.ctime).as_bytes(), compress);
    put_aux(out, b"used-mem", int(aux.used_mem).as_bytes(), compress);
    if let Some(db) = aux.repl_stream_db {
        put_aux(out, b"repl-stream-db", int(db).as_bytes(), compress);
    }
    if let Some(id) = &aux.repl_id {
        put_aux(out, b"repl-id", id.as_bytes(), compress);
    }
    if let Some(off) = aux.repl_offset {
        put_aux(out, b"repl-offset", int(off).as_bytes(), compress);
    }
    put_aux(out, b"aof-base", int(i64::from(aux.aof_base)).as_bytes(), compress);
}

/// Redis's `rdbSaveKeyValuePair`: expiry, LRU/LFU metadata, type, key, value.
fn put_key_value(out: &mut Vec<u8>, key: &[u8], obj: &RObj, expire_ms: Option<u64>, opts: &SaveOptions) {
    if let Some(when) = expire_ms {
        out.push(opcode::EXPIRETIME_MS);
        out.extend_from_slice(&when.to_le_bytes());
    }
    match opts.key_meta {
        KeyMeta::None => {}
        KeyMeta::Idle { lru_clock } => {
            out.push(opcode::IDLE);
            put_len(out, estimate_idle_ms(obj.lru, lru_clock) / 1000);
        }
        KeyMeta::Freq { now_ms, lfu_decay_time } => {
            out.extend_from_slice(&[opcode::FREQ, lfu_decr_and_return(obj.lru, now_ms, lfu_decay_time)]);
        }
    }
    out.push(rdb_type(&obj.val) as u8);
    put_string(out, key, opts.compression);
    put_value(out, &obj.val, opts.compression);
}

/// A writer that keeps the running CRC64 of what passed through it.
struct CrcWriter<'w, W: Write> {
    inner: &'w mut W,
    digest: crc::Digest<'static, u64, crc::Table<16>>,
}

impl<W: Write> CrcWriter<'_, W> {
    fn put(&mut self, buf: &mut Vec<u8>) -> std::io::Result<()> {
        self.digest.update(buf);
        self.inner.write_all(buf)?;
        buf.clear();
        Ok(())
    }
}

pub(super) fn save<W: Write>(out: &mut W, dbs: &[Db], aux: &RdbAux, opts: &SaveOptions) -> std::io::Result<()> {
    let mut w = CrcWriter { inner: out, digest: CRC64.digest() };
    let mut buf = format!("REDIS{RDB_VERSION:04}").into_bytes();
    put_aux_fields(&mut buf, aux, opts.compression);
    for db in dbs.iter().filter(|db| !db.is_empty()) {
        buf.push(opcode::SELECTDB);
        put_len(&mut buf, db.id as u64);
        buf.push(opcode::RESIZEDB);
        put_len(&mut buf, db.dict.len() as u64);
        put_len(&mut buf, db.expires.len() as u64);
        for (key, obj) in db.dict.iter() {
            put_key_value(&mut buf, key, obj, db.expire_of(key), opts);
            if buf.len() >= FLUSH_AT {
                w.put(&mut buf)?;
            }
        }
    }
    buf.push(opcode::EOF);
    w.put(&mut buf)?;
    let crc = if opts.checksum { w.digest.finalize() } else { 0 };
    w.inner.write_all(&crc.to_le_bytes())
}

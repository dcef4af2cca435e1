//! The loader: Redis 7.0's `rdbLoadRio` / `rdbLoadObject`, for every RDB version from 1 on.
//!
//! Every length in the input is checked against what is left of it before anything is
//! allocated for it (a collection's element needs at least one byte, so a count above the
//! remaining bytes is corrupt), and every failure is an `RdbError` at the offset where the bad
//! field starts: corrupt or hostile files never panic the server or make it allocate much.

use std::borrow::Cow;
use std::collections::BTreeSet;

use super::blob::{intset_parse, listpack_parse, ziplist_parse, zipmap_parse, Ele};
use super::write::{RDB_ENC_INT16, RDB_ENC_INT32, RDB_ENC_INT8, RDB_ENC_LZF};
use super::{opcode, Checksum, LoadOptions, Loaded, RdbAux, RdbError, RdbType, CRC64};
use crate::engine::db::Db;
use crate::engine::hash::{Hash, HashLimits};
use crate::engine::list::List;
use crate::engine::listpack::Listpack;
use crate::engine::object::{RObj, Str, Value};
use crate::engine::set::Set;
use crate::engine::zset::{key_cmp, Limits, Zset};
use crate::server::evict::{lfu_time_minutes, LRU_CLOCK_MAX};

/// LZF output is at most this many times its input (a 3-byte back reference copies 264).
const LZF_MAX_RATIO: usize = 90;
/// Quicklist node containers (Redis's `QUICKLIST_NODE_CONTAINER_*`).
const CONTAINER_PLAIN: u64 = 1;
const CONTAINER_PACKED: u64 = 2;

/// A length field: a number, or the tag of a special string encoding.
enum Len {
    Num(u64),
    Enc(u8),
}

pub(super) struct Reader<'a> {
    b: &'a [u8],
    pub(super) pos: usize,
}

type R<T> = Result<T, RdbError>;

impl<'a> Reader<'a> {
    pub(super) fn new(b: &'a [u8]) -> Self {
        Reader { b, pos: 0 }
    }

    pub(super) fn error_at(&self, at: usize, msg: impl Into<String>) -> RdbError {
        RdbError { offset: at as u64, msg: msg.into() }
    }

    fn remaining(&self) -> usize {
        self.b.len() - self.pos
    }

    fn take(&mut self, n: usize) -> R<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.error_at(self.b.len(), "Unexpected EOF reading RDB file"));
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> R<u8> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> R<[u8; N]> {
        Ok(self.take(N)?.try_into().expect("N bytes"))
    }

    /// Redis's `rdbLoadLenByRef`.
    fn len_or_enc(&mut self) -> R<Len> {
        let first = self.u8()?;
        Ok(match first >> 6 {
            0 => Len::Num(u64::from(first & 0x3F)),
            1 => Len::Num((u64::from(first & 0x3F) << 8) | u64::from(self.u8()?)),
            2 => match first {
                0x80 => Len::Num(u64::from(u32::from_be_bytes(self.array()?))),
                0x81 => Len::Num(u64::from_be_bytes(self.array()?)),
                _ => {
                    return Err(self.error_at(self.pos - 1, format!("Unknown length encoding {first} in rdbLoadLen()")))
                }
            },
            _ => Len::Enc(first & 0x3F),
        })
    }

    fn len(&mut self) -> R<u64> {
        let at = self.pos;
        match self.len_or_enc()? {
            Len::Num(n) => Ok(n),
            Len::Enc(_) => Err(self.error_at(at, "Encoded length where a plain length was expected")),
        }
    }

    /// A count of things that each take at least `min_bytes` bytes: more than the input can
    /// hold is corruption, caught before anything is sized from it.
    fn count(&mut self, min_bytes: usize) -> R<usize> {
        let at = self.pos;
        let n = self.len()?;
        match usize::try_from(n) {
            Ok(n) if n.saturating_mul(min_bytes) <= self.remaining() => Ok(n),
            _ => Err(self.error_at(at, format!("Length {n} is larger than the remaining input"))),
        }
    }

    /// Redis's `rdbGenericLoadStringObject`: plain, int-encoded or LZF.
    fn string(&mut self) -> R<Cow<'a, [u8]>> {
        let at = self.pos;
        match self.len_or_enc()? {
            Len::Num(n) => {
                let n = usize::try_from(n).map_err(|_| self.error_at(at, "String length out of range"))?;
                Ok(Cow::Borrowed(self.take(n)?))
            }
            Len::Enc(RDB_ENC_INT8) => Ok(int_text(i64::from(self.u8()? as i8))),
            Len::Enc(RDB_ENC_INT16) => Ok(int_text(i64::from(i16::from_le_bytes(self.array()?)))),
            Len::Enc(RDB_ENC_INT32) => Ok(int_text(i64::from(i32::from_le_bytes(self.array()?)))),
            Len::Enc(RDB_ENC_LZF) => {
                let clen = self.count(1)?;
                let ulen_at = self.pos;
                let ulen = self.len()?;
                let data_at = self.pos;
                let data = self.take(clen)?;
                let ulen = usize::try_from(ulen)
                    .ok()
                    .filter(|&u| u <= clen.saturating_mul(LZF_MAX_RATIO))
                    .ok_or_else(|| self.error_at(ulen_at, "LZF length larger than its data can expand to"))?;
                if ulen == 0 {
                    return Err(self.error_at(ulen_at, "LZF string of length 0"));
                }
                match lzf::decompress(data, ulen) {
                    Ok(v) if v.len() == ulen => Ok(Cow::Owned(v)),
                    _ => Err(self.error_at(data_at, "Invalid LZF compressed string")),
                }
            }
            Len::Enc(e) => Err(self.error_at(at, format!("Unknown RDB string encoding type {e}"))),
        }
    }

    /// A blob string (ziplist, listpack, intset...) and the offset it starts at.
    fn blob(&mut self) -> R<(usize, Cow<'a, [u8]>)> {
        let at = self.pos;
        Ok((at, self.string()?))
    }

    /// Redis's `rdbLoadDoubleValue`: the text form of old ZSETs.
    fn string_double(&mut self) -> R<f64> {
        let at = self.pos;
        match self.u8()? {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            n => {
                let text = self.take(usize::from(n))?;
                std::str::from_utf8(text)
                    .ok()
                    .and_then(|t| t.trim().parse::<f64>().ok())
                    .ok_or_else(|| self.error_at(at, "Invalid double value"))
            }
        }
    }
}

fn int_text(v: i64) -> Cow<'static, [u8]> {
    Cow::Owned(itoa::Buffer::new().format(v).as_bytes().to_vec())
}

/// Why a value could not become a key.
enum ValueError {
    Corrupt(RdbError),
    /// An empty collection: Redis skips the key (`RDB_LOAD_ERR_EMPTY_KEY`).
    Empty,
}

impl From<RdbError> for ValueError {
    fn from(e: RdbError) -> Self {
        ValueError::Corrupt(e)
    }
}

/// Builds engine values from their on-disk forms under the load's limits.
struct ValueLoader<'o> {
    opts: &'o LoadOptions,
    seed: u64,
}

impl ValueLoader<'_> {
    /// A fresh seed per hashtable dict (splitmix64 over the load's seed).
    fn next_seed(&mut self) -> u64 {
        self.seed = self.seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn hash_limits(&mut self) -> HashLimits {
        let l = &self.opts.limits;
        HashLimits {
            max_entries: l.hash_max_listpack_entries,
            max_value: l.hash_max_listpack_value,
            seed: self.next_seed(),
        }
    }

    fn zset_limits(&self) -> Limits {
        Limits {
            max_entries: self.opts.limits.zset_max_listpack_entries,
            max_value: self.opts.limits.zset_max_listpack_value,
        }
    }

    fn new_list(&self) -> List {
        List::new(self.opts.limits.list_max_listpack_size)
    }

    /// Redis's `rdbLoadObject` for one value of type `ty`.
    fn value(&mut self, r: &mut Reader, ty_at: usize, ty: u8) -> Result<Value, ValueError> {
        let Some(t) = RdbType::from_u8(ty) else {
            return Err(r.error_at(ty_at, format!("Unknown RDB encoding type {ty}")).into());
        };
        let at = r.pos;
        let corrupt = |msg: &str| ValueError::Corrupt(RdbError { offset: at as u64, msg: msg.into() });
        let blob_err = |at: usize, msg: String| ValueError::Corrupt(RdbError { offset: at as u64, msg });
        let v = match t {
            RdbType::String => Value::Str(Str::from_bytes(&r.string()?)),
            RdbType::List => {
                let n = r.count(1)?;
                let mut l = self.new_list();
                for _ in 0..n {
                    l.push_back(&r.string()?);
                }
                Value::List(Box::new(l))
            }
            RdbType::ListZiplist => {
                let (bat, b) = r.blob()?;
                let mut l = self.new_list();
                for e in ziplist_parse(&b).map_err(|m| blob_err(bat, m))? {
                    l.push_back(&e.to_vec());
                }
                Value::List(Box::new(l))
            }
            RdbType::ListQuicklist | RdbType::ListQuicklist2 => {
                let nodes = r.count(2)?;
                let mut l = self.new_list();
                for _ in 0..nodes {
                    let container = if t == RdbType::ListQuicklist2 {
                        let cat = r.pos;
                        match r.len()? {
                            c @ (CONTAINER_PLAIN | CONTAINER_PACKED) => c,
                            c => return Err(blob_err(cat, format!("Quicklist integrity check failed: container {c}"))),
                        }
                    } else {
                        CONTAINER_PACKED
                    };
                    let (bat, b) = r.blob()?;
                    let mut lp = Listpack::new();
                    if container == CONTAINER_PLAIN {
                        lp.push_back(&b);
                    } else {
                        let entries = if t == RdbType::ListQuicklist2 { listpack_parse(&b) } else { ziplist_parse(&b) };
                        for e in
                            entries.map_err(|m| blob_err(bat, format!("Quicklist node integrity check failed: {m}")))?
                        {
                            lp.push_back(&e.to_vec());
                        }
                    }
                    l.append_node(lp);
                }
                Value::List(Box::new(l))
            }
            RdbType::Set => {
                let n = r.count(1)?;
                let max = self.opts.limits.set_max_intset_entries.min(1 << 30);
                // Too many members for an intset: a hashtable from the start.
                let max = if n as u64 > max { 0 } else { max };
                let seed = self.next_seed();
                let mut s = Set::new_intset();
                for _ in 0..n {
                    let mat = r.pos;
                    if !s.add(&r.string()?, max, seed) {
                        return Err(blob_err(mat, "Duplicate set members detected".into()));
                    }
                }
                Value::Set(s)
            }
            RdbType::SetIntset => {
                let (bat, b) = r.blob()?;
                let members =
                    intset_parse(&b).map_err(|m| blob_err(bat, format!("Intset integrity check failed: {m}")))?;
                let max = self.opts.limits.set_max_intset_entries.min(1 << 30);
                let max = if members.len() as u64 > max { 0 } else { max };
                let seed = self.next_seed();
                let mut s = Set::new_intset();
                for m in members {
                    s.add_member(crate::engine::set::Member::Int(m), max, seed);
                }
                Value::Set(s)
            }
            RdbType::Hash => {
                let n = r.count(2)?;
                let lim = self.hash_limits();
                let mut h = Hash::default();
                if n > lim.max_entries {
                    h.convert(lim.seed);
                }
                for _ in 0..n {
                    let fat = r.pos;
                    let f = r.string()?;
                    let v = r.string()?;
                    if !h.set(&f, &v, lim) {
                        return Err(blob_err(fat, "Duplicate hash fields detected".into()));
                    }
                }
                Value::Hash(Box::new(h))
            }
            RdbType::HashZipmap | RdbType::HashZiplist | RdbType::HashListpack => {
                let (bat, b) = r.blob()?;
                let pairs: Vec<(Vec<u8>, Vec<u8>)> = match t {
                    RdbType::HashZipmap => zipmap_parse(&b)
                        .map_err(|m| blob_err(bat, format!("Zipmap integrity check failed: {m}")))?
                        .into_iter()
                        .map(|(f, v)| (f.to_vec(), v.to_vec()))
                        .collect(),
                    _ => {
                        let parse = if t == RdbType::HashZiplist { ziplist_parse } else { listpack_parse };
                        let entries =
                            parse(&b).map_err(|m| blob_err(bat, format!("Hash integrity check failed: {m}")))?;
                        if entries.len() % 2 != 0 {
                            return Err(blob_err(bat, "Hash listpack with an odd number of entries".into()));
                        }
                        entries.chunks_exact(2).map(|p| (p[0].to_vec(), p[1].to_vec())).collect()
                    }
                };
                let lim = self.hash_limits();
                let mut seen = BTreeSet::new();
                let mut lp = Listpack::new();
                let mut longest = 0;
                for (f, v) in &pairs {
                    if !seen.insert(f.as_slice()) {
                        return Err(blob_err(bat, "Hash with dup elements".into()));
                    }
                    longest = longest.max(f.len()).max(v.len());
                    lp.push_back(f);
                    lp.push_back(v);
                }
                let mut h = Hash::Listpack(lp);
                if pairs.len() > lim.max_entries || longest > lim.max_value {
                    h.convert(lim.seed);
                }
                Value::Hash(Box::new(h))
            }
            RdbType::Zset | RdbType::Zset2 => {
                let n = r.count(2)?;
                let mut entries = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    let member = r.string()?.into_owned();
                    let sat = r.pos;
                    let score = if t == RdbType::Zset2 { f64::from_le_bytes(r.array()?) } else { r.string_double()? };
                    if score.is_nan() {
                        return Err(blob_err(sat, "Zset with NAN score detected".into()));
                    }
                    entries.push((member, score));
                }
                Value::Zset(Box::new(self.zset(entries).map_err(|m| blob_err(at, m))?))
            }
            RdbType::ZsetZiplist | RdbType::ZsetListpack => {
                let (bat, b) = r.blob()?;
                let parse = if t == RdbType::ZsetZiplist { ziplist_parse } else { listpack_parse };
                let elems = parse(&b).map_err(|m| blob_err(bat, format!("Zset integrity check failed: {m}")))?;
                if elems.len() % 2 != 0 {
                    return Err(blob_err(bat, "Zset listpack with an odd number of entries".into()));
                }
                let mut entries = Vec::with_capacity(elems.len() / 2);
                for p in elems.chunks_exact(2) {
                    let score = match &p[1] {
                        Ele::Int(v) => *v as f64,
                        Ele::Str(s) => crate::util::parse_f64(s)
                            .ok_or_else(|| blob_err(bat, "Zset listpack with an invalid score".into()))?,
                    };
                    entries.push((p[0].to_vec(), score));
                }
                Value::Zset(Box::new(self.zset(entries).map_err(|m| blob_err(bat, m))?))
            }
            RdbType::Module | RdbType::Module2 => {
                return Err(corrupt("Module values are not supported (no modules are loaded)"));
            }
            RdbType::StreamListpacks | RdbType::StreamListpacks2 => {
                return Err(corrupt("Stream values are not supported"));
            }
        };
        let empty = match &v {
            Value::Str(_) => false,
            Value::List(l) => l.is_empty(),
            Value::Set(s) => s.is_empty(),
            Value::Hash(h) => h.is_empty(),
            Value::Zset(z) => z.is_empty(),
        };
        if empty {
            return Err(ValueError::Empty);
        }
        Ok(v)
    }

    /// A sorted set from (member, score) pairs in any order, encoded as Redis encodes one
    /// after loading (listpack when it fits the limits).
    fn zset(&mut self, mut entries: Vec<(Vec<u8>, f64)>) -> Result<Zset, String> {
        entries.sort_by(|a, b| key_cmp(a.1, &a.0, b.1, &b.0));
        let mut seen = BTreeSet::new();
        if !entries.iter().all(|(m, _)| seen.insert(m.as_slice())) {
            return Err("Duplicate zset fields detected".into());
        }
        Ok(Zset::from_sorted(&entries, self.zset_limits(), self.next_seed()))
    }
}

/// The LRU/LFU field of a loaded or restored object given its `IDLE`/`FREQ` (Redis's
/// `objectSetLRUOrLFU`): under LFU a frequency sets the counter (minutes now), otherwise an
/// idle time sets the access time back on the 24-bit LRU clock (wrapping as Redis does);
/// without the one the policy reads, `default`.
pub fn object_lru(lfu: bool, now_ms: u64, idle_secs: Option<u64>, freq: Option<u8>, default: u32) -> u32 {
    match (lfu, freq, idle_secs) {
        (true, Some(f), _) => (lfu_time_minutes(now_ms) << 8) | u32::from(f),
        (false, _, Some(idle)) => {
            let clock = i64::from(((now_ms / 1000) & u64::from(LRU_CLOCK_MAX)) as u32);
            let abs = clock - i64::try_from(idle).unwrap_or(i64::MAX).min(i64::from(LRU_CLOCK_MAX) + 1);
            if abs < 0 {
                ((clock + i64::from(LRU_CLOCK_MAX / 2)) % i64::from(LRU_CLOCK_MAX)) as u32
            } else {
                abs as u32
            }
        }
        _ => default,
    }
}

fn parse_int_aux(v: &[u8]) -> Option<i64> {
    std::str::from_utf8(v).ok()?.parse().ok()
}

fn record_aux(aux: &mut RdbAux, key: &[u8], val: &[u8]) {
    let text = || String::from_utf8_lossy(val).into_owned();
    match (key, parse_int_aux(val)) {
        (b"redis-ver", _) => aux.redis_ver = text(),
        (b"redis-bits", Some(n)) => aux.redis_bits = n,
        (b"ctime", Some(n)) => aux.ctime = n,
        (b"used-mem", Some(n)) => aux.used_mem = n,
        (b"repl-stream-db", Some(n)) => aux.repl_stream_db = Some(n),
        (b"repl-id", _) => aux.repl_id = Some(text()),
        (b"repl-offset", Some(n)) => aux.repl_offset = Some(n),
        (b"aof-base" | b"aof-preamble", Some(n)) => aux.aof_base = n != 0,
        _ => aux.other.push((key.to_vec(), val.to_vec())),
    }
}

/// The header: `REDIS` and a four-digit version 1..=10.
fn read_header(r: &mut Reader) -> R<u32> {
    let magic = r.take(9).map_err(|_| r.error_at(0, "Wrong signature trying to load DB from file"))?;
    if &magic[..5] != b"REDIS" {
        return Err(r.error_at(0, "Wrong signature trying to load DB from file"));
    }
    let ver = std::str::from_utf8(&magic[5..]).ok().and_then(|v| v.parse::<u32>().ok()).unwrap_or(0);
    if !(1..=u32::from(super::RDB_VERSION)).contains(&ver) || !magic[5..].iter().all(u8::is_ascii_digit) {
        return Err(r.error_at(5, format!("Can't handle RDB format version {}", String::from_utf8_lossy(&magic[5..]))));
    }
    Ok(ver)
}

/// `rdb::load`, telling `trace` (offset after the item, text) each aux field and db switch as
/// redis-check-rdb reports them.
pub(super) fn load(
    bytes: &[u8],
    dbs: &mut [Db],
    opts: &LoadOptions,
    trace: &mut dyn FnMut(usize, String),
) -> R<Loaded> {
    let mut r = Reader::new(bytes);
    let version = read_header(&mut r)?;
    let mut loader = ValueLoader { opts, seed: opts.seed };
    let mut loaded = Loaded {
        aux: RdbAux { redis_ver: String::new(), redis_bits: 0, ..RdbAux::default() },
        keys_loaded: 0,
        keys_expired: 0,
        len: 0,
        rdb_version: version,
        checksum: Checksum::Absent,
        db_keys: Vec::new(),
        empty_keys_skipped: 0,
    };
    let mut db_idx = 0usize;
    let (mut expire_ms, mut idle, mut freq): (Option<u64>, Option<u64>, Option<u8>) = (None, None, None);
    loop {
        let op_at = r.pos;
        let op = r.u8()?;
        match op {
            opcode::EXPIRETIME => expire_ms = Some(u64::from(u32::from_le_bytes(r.array()?)) * 1000),
            opcode::EXPIRETIME_MS => expire_ms = Some(i64::from_le_bytes(r.array()?).max(0) as u64),
            opcode::FREQ => freq = Some(r.u8()?),
            opcode::IDLE => idle = Some(r.len()?),
            opcode::EOF => break,
            opcode::SELECTDB => {
                let id = r.len()?;
                db_idx = usize::try_from(id).ok().filter(|&i| i < dbs.len()).ok_or_else(|| {
                    r.error_at(
                        op_at,
                        format!(
                            "FATAL: Data file was created with a Redis server configured to handle more than {} databases. Exiting",
                            dbs.len()
                        ),
                    )
                })?;
                trace(r.pos, format!("Selecting DB ID {id}"));
            }
            opcode::RESIZEDB => {
                // Redis's `dictExpand` on both dicts, so loading never rehashes; capped by what
                // the rest of the file can hold (a key takes at least 3 bytes) against hostile
                // sizes.
                let most = r.remaining() / 3;
                let keys = usize::try_from(r.len()?).unwrap_or(usize::MAX).min(most);
                let expires = usize::try_from(r.len()?).unwrap_or(usize::MAX).min(keys);
                if keys > 0 {
                    dbs[db_idx].dict.reserve(keys);
                }
                if expires > 0 {
                    dbs[db_idx].expires.reserve(expires);
                }
            }
            opcode::AUX => {
                let key = r.string()?;
                let val = r.string()?;
                record_aux(&mut loaded.aux, &key, &val);
                trace(
                    r.pos,
                    format!("AUX FIELD {} = '{}'", String::from_utf8_lossy(&key), String::from_utf8_lossy(&val)),
                );
            }
            opcode::MODULE_AUX => return Err(r.error_at(op_at, "Module auxiliary data is not supported")),
            opcode::FUNCTION | opcode::FUNCTION2 => {
                return Err(r.error_at(op_at, "Functions in RDB files are not supported"));
            }
            ty => {
                let key_at = r.pos;
                let key = r.string()?;
                let value = loader.value(&mut r, op_at, ty);
                let (when, idle_s, freq_v) = (expire_ms.take(), idle.take(), freq.take());
                let val = match value {
                    Ok(v) => v,
                    Err(ValueError::Empty) => {
                        loaded.empty_keys_skipped += 1;
                        continue;
                    }
                    Err(ValueError::Corrupt(e)) => return Err(e),
                };
                if opts.skip_expired && when.is_some_and(|w| w < opts.now_ms) {
                    loaded.keys_expired += 1;
                    continue;
                }
                let db = &mut dbs[db_idx];
                if opts.allow_dup {
                    db.delete(&key);
                }
                let lru = object_lru(opts.lfu, opts.now_ms, idle_s, freq_v, opts.lru_clock);
                let obj = match val {
                    // Already `tryObjectEncoding`'s form (Str::from_bytes); only sharing is left.
                    Value::Str(Str::Int(n)) => RObj::from_int(n, lru, opts.share_ints),
                    v => RObj::new(v, lru),
                };
                if !db.try_add(&key, obj) {
                    return Err(r.error_at(
                        key_at,
                        format!("RDB has duplicated key '{}' in DB {}", String::from_utf8_lossy(&key), db.id),
                    ));
                }
                if let Some(w) = when {
                    db.set_expire(&key, w);
                }
                loaded.keys_loaded += 1;
                match loaded.db_keys.iter_mut().find(|(id, _, _)| *id == db.id) {
                    Some(e) => {
                        e.1 += 1;
                        e.2 += u64::from(when.is_some());
                    }
                    None => loaded.db_keys.push((db.id, 1, u64::from(when.is_some()))),
                }
            }
        }
    }
    if version >= 5 {
        let crc_at = r.pos;
        let stored = u64::from_le_bytes(r.array()?);
        loaded.checksum = if stored == 0 {
            Checksum::Disabled
        } else if !opts.verify_checksum {
            Checksum::NotVerified
        } else {
            let want = CRC64.checksum(&bytes[..crc_at]);
            if want != stored {
                return Err(r.error_at(crc_at, format!("Wrong RDB checksum expected: ({stored:x}) got: ({want:x})")));
            }
            Checksum::Ok
        };
    }
    loaded.len = r.pos;
    Ok(loaded)
}

/// A DUMP payload's body (type byte + value, footer already checked and cut off). Bytes
/// after the value are ignored, as Redis's RESTORE ignores them.
pub(super) fn restore_value(body: &[u8], opts: &LoadOptions) -> R<Value> {
    let mut r = Reader::new(body);
    let ty = r.u8()?;
    let mut loader = ValueLoader { opts, seed: opts.seed };
    let v = match loader.value(&mut r, 0, ty) {
        Ok(v) => v,
        Err(ValueError::Empty) => return Err(r.error_at(1, "Empty keys are not allowed")),
        Err(ValueError::Corrupt(e)) => return Err(e),
    };
    Ok(v)
}

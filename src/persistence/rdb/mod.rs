//! PLACEHOLDER for the RDB format (the "rdb" branch replaces this folder): the agreed API over a
//! private, strings-only format, enough for the snapshot code and its tests.
//!
//! Layout: `RSPH`, the aux fields as (len, bytes) pairs, then per key `0x01 db key value
//! expire_ms(i64, -1 = none)`, `0xFF`, then an 8-byte sum of all previous bytes.

use std::io::{self, Write};

use crate::engine::db::Db;
use crate::engine::object::{RObj, Value};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RdbAux {
    pub redis_ver: String,
    pub redis_bits: i64,
    pub ctime: i64,
    pub used_mem: i64,
    pub repl_stream_db: Option<i64>,
    pub repl_id: Option<String>,
    pub repl_offset: Option<i64>,
    pub aof_base: bool,
    pub other: Vec<(Vec<u8>, Vec<u8>)>,
}

#[derive(Debug, Clone, Copy)]
pub struct SaveOptions {
    pub compression: bool,
    pub checksum: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    pub now_ms: u64,
    pub skip_expired: bool,
    pub lru_clock: u32,
    pub verify_checksum: bool,
}

#[derive(Debug, Clone)]
pub struct Loaded {
    pub aux: RdbAux,
    pub keys_loaded: u64,
    pub keys_expired: u64,
    pub len: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdbError {
    pub offset: u64,
    pub msg: String,
}

impl std::fmt::Display for RdbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (at offset {})", self.msg, self.offset)
    }
}

const MAGIC: &[u8] = b"RSPH";

struct Summing<'a, W: Write> {
    out: &'a mut W,
    sum: u64,
}

impl<W: Write> Summing<'_, W> {
    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.sum = b.iter().fold(self.sum, |s, &x| s.wrapping_mul(31).wrapping_add(u64::from(x)));
        self.out.write_all(b)
    }
    fn blob(&mut self, b: &[u8]) -> io::Result<()> {
        self.put(&(b.len() as u32).to_le_bytes())?;
        self.put(b)
    }
}

pub fn save<W: Write>(out: &mut W, dbs: &[Db], aux: &RdbAux, _opts: &SaveOptions) -> io::Result<()> {
    let mut w = Summing { out, sum: 0 };
    w.put(MAGIC)?;
    w.blob(aux.redis_ver.as_bytes())?;
    w.put(&aux.ctime.to_le_bytes())?;
    for db in dbs {
        for (key, obj) in db.dict.iter() {
            let Value::Str(s) = &obj.val else {
                return Err(io::Error::other("placeholder rdb saves strings only"));
            };
            w.put(&[1])?;
            w.put(&(db.id as u32).to_le_bytes())?;
            w.blob(key)?;
            w.blob(&s.bytes())?;
            let exp = db.expire_of(key).map_or(-1, |t| t as i64);
            w.put(&exp.to_le_bytes())?;
        }
    }
    w.put(&[0xFF])?;
    let sum = w.sum;
    w.out.write_all(&sum.to_le_bytes())
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
    sum: u64,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], RdbError> {
        if self.b.len() - self.pos < n {
            return Err(RdbError { offset: self.pos as u64, msg: "Unexpected EOF reading RDB file".into() });
        }
        let s = &self.b[self.pos..self.pos + n];
        self.sum = s.iter().fold(self.sum, |a, &x| a.wrapping_mul(31).wrapping_add(u64::from(x)));
        self.pos += n;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, RdbError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn i64(&mut self) -> Result<i64, RdbError> {
        Ok(i64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    fn blob(&mut self) -> Result<Vec<u8>, RdbError> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }
}

pub fn load(bytes: &[u8], dbs: &mut [Db], opts: &LoadOptions) -> Result<Loaded, RdbError> {
    let mut r = Reader { b: bytes, pos: 0, sum: 0 };
    if r.take(4)? != MAGIC {
        return Err(RdbError { offset: 0, msg: "Wrong signature trying to load DB from file".into() });
    }
    let redis_ver = String::from_utf8_lossy(&r.blob()?).into_owned();
    let ctime = r.i64()?;
    let mut loaded = Loaded {
        aux: RdbAux { redis_ver, ctime, redis_bits: 64, ..RdbAux::default() },
        keys_loaded: 0,
        keys_expired: 0,
        len: 0,
    };
    loop {
        let at = r.pos as u64;
        match r.take(1)?[0] {
            0xFF => break,
            1 => {}
            t => return Err(RdbError { offset: at, msg: format!("Unknown RDB type {t}") }),
        }
        let db = r.u32()? as usize;
        let key = r.blob()?;
        let val = r.blob()?;
        let exp = r.i64()?;
        let Some(db) = dbs.get_mut(db) else {
            return Err(RdbError { offset: at, msg: "DB index out of range".into() });
        };
        if exp >= 0 && opts.skip_expired && (exp as u64) < opts.now_ms {
            loaded.keys_expired += 1;
            continue;
        }
        db.set(&key, RObj::string(&val, opts.lru_clock, false), false);
        if exp >= 0 {
            db.set_expire(&key, exp as u64);
        }
        loaded.keys_loaded += 1;
    }
    let expect = r.sum;
    let got = u64::from_le_bytes(r.take(8)?.try_into().expect("8 bytes"));
    if opts.verify_checksum && got != expect {
        return Err(RdbError { offset: r.pos as u64, msg: "Wrong RDB checksum".into() });
    }
    loaded.len = r.pos;
    Ok(loaded)
}

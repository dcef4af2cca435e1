//! The RDB file format, version 10, as Redis 7.0 writes it and as Redis 7.0 loads it (every
//! version from 1 on, with the older ziplist/zipmap encodings converted on the way in).
//!
//! A file is `REDIS0010`, aux fields, then per non-empty db `SELECTDB id`, `RESIZEDB size
//! expires`, and per key an optional `EXPIRETIME_MS`, optional `IDLE`/`FREQ`, a type byte, the
//! key and the value; then `EOF` and the CRC64 of everything before it (8 zero bytes when
//! checksums are off). DUMP payloads are one value in the same encoding plus a version and a
//! CRC64 footer.
//!
//! On-disk type tags (`RdbType`) are kept apart from the engine's in-memory encodings: the
//! loader converts to what the engine would hold under the configured `*-max-listpack-*`
//! limits, and the writer produces Redis's exact bytes (listpacks, intsets, LZF) from the
//! engine's own layouts. Nothing here does I/O: `save` writes to any `io::Write`, `load`
//! reads a byte slice, so the same code serves SAVE, BGSAVE, the AOF preamble, full syncs,
//! DUMP/RESTORE and `redsim check-rdb`.

mod blob;
pub mod check;
mod lzf;
mod read;
mod write;

pub use read::object_lru;

use crate::engine::db::Db;
use crate::engine::object::{RObj, Value};
use crate::server::config::Hot;
use crate::server::Server;

/// The format version this writer produces (Redis 7.0's `RDB_VERSION`).
pub const RDB_VERSION: u16 = 10;

/// The CRC64 engine: slice-by-16 tables (16 KiB), as Redis's `crcspeed` uses slice-by-8; a
/// byte-at-a-time table made the checksum the largest single cost of SAVE and of loading.
pub(crate) type Crc64 = crc::Crc<u64, crc::Table<16>>;

/// CRC-64/Jones as Redis uses it (reflected, init 0), for files and DUMP payloads.
pub(crate) static CRC64: Crc64 = Crc64::new(&crc::CRC_64_REDIS);

/// Value type tags on disk (Redis's `RDB_TYPE_*`). Module and stream tags are listed so the
/// loader can name them when it refuses them.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RdbType {
    String = 0,
    List = 1,
    Set = 2,
    Zset = 3,
    Hash = 4,
    Zset2 = 5,
    Module = 6,
    Module2 = 7,
    HashZipmap = 9,
    ListZiplist = 10,
    SetIntset = 11,
    ZsetZiplist = 12,
    HashZiplist = 13,
    ListQuicklist = 14,
    StreamListpacks = 15,
    HashListpack = 16,
    ZsetListpack = 17,
    ListQuicklist2 = 18,
    StreamListpacks2 = 19,
}

impl RdbType {
    fn from_u8(b: u8) -> Option<RdbType> {
        use RdbType::*;
        Some(match b {
            0 => String,
            1 => List,
            2 => Set,
            3 => Zset,
            4 => Hash,
            5 => Zset2,
            6 => Module,
            7 => Module2,
            9 => HashZipmap,
            10 => ListZiplist,
            11 => SetIntset,
            12 => ZsetZiplist,
            13 => HashZiplist,
            14 => ListQuicklist,
            15 => StreamListpacks,
            16 => HashListpack,
            17 => ZsetListpack,
            18 => ListQuicklist2,
            19 => StreamListpacks2,
            _ => return None,
        })
    }
}

/// Opcodes that share the type byte's position (Redis's `RDB_OPCODE_*`).
mod opcode {
    pub const FUNCTION2: u8 = 245;
    pub const FUNCTION: u8 = 246;
    pub const MODULE_AUX: u8 = 247;
    pub const IDLE: u8 = 248;
    pub const FREQ: u8 = 249;
    pub const AUX: u8 = 250;
    pub const RESIZEDB: u8 = 251;
    pub const EXPIRETIME_MS: u8 = 252;
    pub const EXPIRETIME: u8 = 253;
    pub const SELECTDB: u8 = 254;
    pub const EOF: u8 = 255;
}

/// The aux fields of a file: what Redis 7.0 writes, in its order, and on load any others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdbAux {
    pub redis_ver: String,
    pub redis_bits: i64,
    pub ctime: i64,
    pub used_mem: i64,
    pub repl_stream_db: Option<i64>,
    pub repl_id: Option<String>,
    pub repl_offset: Option<i64>,
    pub aof_base: bool,
    /// Any other aux pairs read from a file, in file order (e.g. `lua` scripts of old files).
    pub other: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Default for RdbAux {
    fn default() -> Self {
        RdbAux {
            redis_ver: "7.0.15".into(),
            redis_bits: 64,
            ctime: 0,
            used_mem: 0,
            repl_stream_db: None,
            repl_id: None,
            repl_offset: None,
            aof_base: false,
            other: Vec::new(),
        }
    }
}

impl RdbAux {
    /// The fields a SAVE writes now: this server's clock and memory, no replication info
    /// (add `repl_*` for a full sync, `aof_base` for an AOF preamble).
    pub fn for_server(srv: &Server) -> RdbAux {
        RdbAux {
            ctime: (srv.now.unix_ms / 1000) as i64,
            used_mem: i64::try_from(srv.sys.used_memory()).unwrap_or(i64::MAX),
            ..RdbAux::default()
        }
    }
}

/// What Redis 7.0 adds before each key under an LRU or LFU `maxmemory-policy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum KeyMeta {
    /// Neither LRU nor LFU: nothing.
    #[default]
    None,
    /// An LRU policy: `IDLE` with the object's idle seconds at LRU clock `lru_clock`.
    Idle { lru_clock: u32 },
    /// An LFU policy: `FREQ` with the object's decayed counter at `now_ms`.
    Freq { now_ms: u64, lfu_decay_time: u64 },
}

impl KeyMeta {
    /// What the server's `maxmemory-policy` asks for now (Redis's `savelru`/`savelfu`).
    pub fn for_server(srv: &Server) -> KeyMeta {
        let hot = &srv.config.hot;
        if hot.maxmemory_policy.is_lfu() {
            KeyMeta::Freq { now_ms: srv.now.unix_ms, lfu_decay_time: hot.lfu_decay_time }
        } else if hot.maxmemory_policy.is_lru() {
            KeyMeta::Idle { lru_clock: srv.lru_clock() }
        } else {
            KeyMeta::None
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaveOptions {
    /// `rdbcompression`: LZF for strings (and packed blobs) longer than 20 bytes that shrink.
    pub compression: bool,
    /// `rdbchecksum`: the CRC64 trailer, else 8 zero bytes.
    pub checksum: bool,
    pub key_meta: KeyMeta,
}

impl Default for SaveOptions {
    fn default() -> Self {
        SaveOptions { compression: true, checksum: true, key_meta: KeyMeta::None }
    }
}

impl SaveOptions {
    /// `rdbcompression`, `rdbchecksum` and the policy's key metadata from the server's config.
    pub fn for_server(srv: &Server) -> SaveOptions {
        SaveOptions {
            compression: srv.config.get("rdbcompression") != Some("no"),
            checksum: srv.config.get("rdbchecksum") != Some("no"),
            key_meta: KeyMeta::for_server(srv),
        }
    }
}

/// The `*-max-listpack-*` / `set-max-intset-entries` / `list-max-listpack-size` limits that
/// decide a loaded value's encoding, as Redis applies its config while loading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodingLimits {
    pub hash_max_listpack_entries: usize,
    pub hash_max_listpack_value: usize,
    pub zset_max_listpack_entries: usize,
    pub zset_max_listpack_value: usize,
    pub set_max_intset_entries: u64,
    pub list_max_listpack_size: i32,
}

impl Default for EncodingLimits {
    /// Redis 7.0's defaults.
    fn default() -> Self {
        EncodingLimits {
            hash_max_listpack_entries: 128,
            hash_max_listpack_value: 64,
            zset_max_listpack_entries: 128,
            zset_max_listpack_value: 64,
            set_max_intset_entries: 512,
            list_max_listpack_size: -2,
        }
    }
}

impl EncodingLimits {
    pub fn from_config(hot: &Hot) -> EncodingLimits {
        let size = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        EncodingLimits {
            hash_max_listpack_entries: size(hot.hash_max_listpack_entries),
            hash_max_listpack_value: size(hot.hash_max_listpack_value),
            zset_max_listpack_entries: size(hot.zset_max_listpack_entries),
            zset_max_listpack_value: size(hot.zset_max_listpack_value),
            set_max_intset_entries: hot.set_max_intset_entries,
            list_max_listpack_size: hot.list_max_listpack_size.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadOptions {
    /// Wall clock, Unix ms: what "already expired" is measured against.
    pub now_ms: u64,
    /// True on a master loading a snapshot: keys already expired are skipped (and counted in
    /// `keys_expired`). Redis keeps them when loading an AOF's RDB preamble or on a replica.
    pub skip_expired: bool,
    /// The LRU/LFU field a loaded object gets (the server's `new_obj_lru()`).
    pub lru_clock: u32,
    pub verify_checksum: bool,
    pub limits: EncodingLimits,
    /// An LFU policy: `FREQ` opcodes set the counter and `IDLE` ones are ignored (else the
    /// other way round), as Redis's `objectSetLRUOrLFU`.
    pub lfu: bool,
    /// Integers 0..9999 become shared objects (no LRU/LFU eviction policy under maxmemory).
    pub share_ints: bool,
    /// Seeds the dicts of hashtable-encoded values.
    pub seed: u64,
    /// A key already in the db is replaced by the file's (Redis's `RDBFLAGS_ALLOW_DUP`, used
    /// by DEBUG RELOAD MERGE); otherwise a duplicate is an error.
    pub allow_dup: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            now_ms: 0,
            skip_expired: false,
            lru_clock: 0,
            verify_checksum: true,
            limits: EncodingLimits::default(),
            lfu: false,
            share_ints: true,
            seed: 0,
            allow_dup: false,
        }
    }
}

impl LoadOptions {
    /// Everything from the server: its clock, role, policy, limits and `rdbchecksum`; `seed`
    /// should come from the server's rng.
    pub fn for_server(srv: &Server, seed: u64) -> LoadOptions {
        LoadOptions {
            now_ms: srv.now.unix_ms,
            skip_expired: srv.is_master(),
            lru_clock: srv.new_obj_lru(),
            verify_checksum: srv.config.get("rdbchecksum") != Some("no"),
            limits: EncodingLimits::from_config(&srv.config.hot),
            lfu: srv.config.hot.maxmemory_policy.is_lfu(),
            share_ints: crate::server::evict::can_share_integers(srv),
            seed,
            allow_dup: false,
        }
    }
}

/// What the trailer said about the file's integrity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    /// The CRC64 matched.
    Ok,
    /// Written with `rdbchecksum no` (8 zero bytes): nothing to check.
    Disabled,
    /// Present but `verify_checksum` was off.
    NotVerified,
    /// Versions before 5 have no trailer.
    Absent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub aux: RdbAux,
    pub keys_loaded: u64,
    pub keys_expired: u64,
    /// Bytes consumed including the CRC, so an AOF with RDB preamble can continue after it.
    pub len: usize,
    pub rdb_version: u32,
    pub checksum: Checksum,
    /// (db id, keys loaded into it, of which with an expiry), for dbs that got keys.
    pub db_keys: Vec<(usize, u64, u64)>,
    /// Empty collections in the file, skipped as Redis does.
    pub empty_keys_skipped: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdbError {
    /// Byte offset in the input where the problem was found.
    pub offset: u64,
    pub msg: String,
}

impl std::fmt::Display for RdbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (at offset {})", self.msg, self.offset)
    }
}

impl std::error::Error for RdbError {}

/// Writes a whole RDB v10 file (magic .. EOF + CRC64 or 8 zero bytes) as Redis 7.0 does.
pub fn save<W: std::io::Write>(out: &mut W, dbs: &[Db], aux: &RdbAux, opts: &SaveOptions) -> std::io::Result<()> {
    write::save(out, dbs, aux, opts)
}

/// Loads into `dbs` (the caller empties them first; a `SELECTDB` beyond them is an error).
/// Accepts RDB v1..v10 including old encodings.
pub fn load(bytes: &[u8], dbs: &mut [Db], opts: &LoadOptions) -> Result<Loaded, RdbError> {
    read::load(bytes, dbs, opts, &mut |_, _| {})
}

/// DUMP's payload: object type + encoded value + 2-byte RDB version (10) + CRC64, as Redis
/// 7.0 with `rdbcompression yes`.
pub fn dump_payload(obj: &RObj) -> Vec<u8> {
    dump_payload_with(obj, true)
}

/// DUMP's payload under a given `rdbcompression`.
pub fn dump_payload_with(obj: &RObj, compression: bool) -> Vec<u8> {
    let mut out = Vec::new();
    write::object_type_and_value(&mut out, &obj.val, compression);
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = CRC64.checksum(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// RESTORE's check + decode ("ERR DUMP payload version or checksum are wrong" is the
/// caller's text for a bad footer, "ERR Bad data format" for a bad body: see
/// `RestoreError`). Values get Redis's default encoding limits; `lru_clock` is unused (the
/// caller sets the object's LRU field) and kept for the API's shape.
pub fn restore_payload(payload: &[u8], lru_clock: u32) -> Result<Value, RdbError> {
    let opts = LoadOptions { lru_clock, ..LoadOptions::default() };
    restore_payload_with(payload, &opts).map_err(|e| e.into_error())
}

/// Why a RESTORE payload was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreError {
    /// Too short, a newer RDB version, or a CRC mismatch.
    Footer(RdbError),
    /// The footer is fine but the value does not decode.
    Body(RdbError),
}

impl RestoreError {
    pub fn into_error(self) -> RdbError {
        match self {
            RestoreError::Footer(e) | RestoreError::Body(e) => e,
        }
    }
}

/// RESTORE's check + decode under the server's encoding limits and dict seed.
pub fn restore_payload_with(payload: &[u8], opts: &LoadOptions) -> Result<Value, RestoreError> {
    verify_dump_footer(payload, opts.verify_checksum).map_err(RestoreError::Footer)?;
    read::restore_value(&payload[..payload.len() - 10], opts).map_err(RestoreError::Body)
}

/// Redis's `verifyDumpPayload`: at least the 10-byte footer, a version not newer than ours,
/// and (unless skipped) a matching CRC64.
fn verify_dump_footer(payload: &[u8], verify_checksum: bool) -> Result<(), RdbError> {
    let fail = |offset: usize, msg: &str| Err(RdbError { offset: offset as u64, msg: msg.into() });
    if payload.len() < 10 {
        return fail(0, "DUMP payload shorter than its footer");
    }
    let footer = payload.len() - 10;
    let ver = u16::from_le_bytes([payload[footer], payload[footer + 1]]);
    if ver > RDB_VERSION {
        return fail(footer, &format!("DUMP payload of RDB version {ver}, newer than {RDB_VERSION}"));
    }
    if verify_checksum {
        let want = CRC64.checksum(&payload[..payload.len() - 8]);
        let got = u64::from_le_bytes(payload[footer + 2..].try_into().expect("8 bytes"));
        if want != got {
            return fail(footer + 2, "DUMP payload checksum mismatch");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;

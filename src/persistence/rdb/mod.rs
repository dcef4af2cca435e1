//! PLACEHOLDER for the RDB format (replaced by the rdb branch). It carries only the API the AOF
//! needs so that the AOF code compiles; saving and loading report `Unsupported`, and callers
//! fall back to what they can do without an RDB preamble.

use crate::engine::db::Db;

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

pub struct SaveOptions {
    pub compression: bool,
    pub checksum: bool,
}

/// Placeholder: always `Unsupported`.
pub fn save<W: std::io::Write>(_out: &mut W, _dbs: &[Db], _aux: &RdbAux, _opts: &SaveOptions) -> std::io::Result<()> {
    Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "RDB format not available in this build"))
}

pub struct LoadOptions {
    pub now_ms: u64,
    pub skip_expired: bool,
    pub lru_clock: u32,
    pub verify_checksum: bool,
}

pub struct Loaded {
    pub aux: RdbAux,
    pub keys_loaded: u64,
    pub keys_expired: u64,
    pub len: usize,
}

pub struct RdbError {
    pub offset: u64,
    pub msg: String,
}

/// Placeholder: always an error at offset 0.
pub fn load(_bytes: &[u8], _dbs: &mut [Db], _opts: &LoadOptions) -> Result<Loaded, RdbError> {
    Err(RdbError { offset: 0, msg: "RDB format not available in this build".into() })
}

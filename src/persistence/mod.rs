//! Persistence: the RDB format (`rdb`: files, DUMP/RESTORE payloads, the AOF's preamble),
//! snapshots to disk (`snapshot`: SAVE, BGSAVE, loading at startup), the append-only file
//! (`aof`) and dataset digests (`digest`: DEBUG DIGEST). Everything here works on bytes;
//! files go through `env`.

pub mod aof;
pub mod digest;
pub mod rdb;
pub mod snapshot;

//! Persistence: the RDB snapshot format (and, beside it, what builds on it: SAVE/BGSAVE,
//! the AOF's RDB preamble, DUMP/RESTORE payloads). Everything here works on bytes; reading
//! and writing files goes through `env`.

pub mod rdb;

//! Persistence: the RDB format (`rdb`), snapshots to disk (`snapshot`), dataset digests
//! (`digest`).

pub mod digest;
pub mod rdb;
pub mod snapshot;

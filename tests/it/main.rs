//! All integration tests, in one binary: one link, and tests that share its helpers.
//!
//! - `aof`: AOF directories exchanged with real Redis, crash recovery, check-aof.
//! - `blocking`: blocking pops over several connections, redis vs redsim transcripts.
//! - `diff`: case files under `tests/cases/`, replayed against real redis and redsim,
//!   reply bytes compared (see the format at the top of `diff.rs`).
//! - `memory`: maxmemory and the eviction policies.
//! - `migrate`: MIGRATE in all four directions between redis and redsim, transcripts compared.
//! - `rdb_interop`: RDB files and DUMP payloads exchanged with real Redis, both ways.
//! - `pubsub`: pub/sub, keyspace events and WATCH over several connections, redis vs redsim.
//! - `random_diff`: seeded random command streams, replies compared with real Redis.
//! - `resp`: the RESP2/RESP3 reply reader those comparisons rest on.
//! - `robustness`: junk input never takes the server down.
//! - `server_cli`: redis.conf, directives, log format, SHUTDOWN.
//! - `sentinel`: redsim sentinels fail a real Redis master over, a mixed group with real
//!   `redis-sentinel`s agrees, and SENTINEL replies match `redis-sentinel`'s bytes.
//! - `snapshot`: SAVE/BGSAVE, restart loads, MISCONF after a failed BGSAVE, save points.
//! - `support`: server processes on free loopback ports.
//! - `tools`: redis-cli --pipe and redis-benchmark against redsim.

// Tests drive real processes and sockets: the env-layer door does not apply here.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod aof;
mod blocking;
mod config_rewrite;
mod diff;
mod memory;
mod migrate;
mod pubsub;
mod random_diff;
mod rdb_interop;
mod replication;
mod resp;
mod robustness;
mod sentinel;
mod server_cli;
mod snapshot;
mod support;
mod tools;

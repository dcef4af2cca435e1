//! redsim: a Redis 7.0-compatible server written on a deterministic environment layer.
//!
//! The request path: [`protocol`] (RESP frames) → [`commands`] (the command table) →
//! [`engine`] (keyspace, types, expiry, memory), driven by [`server`] over an [`env::Env`].

pub mod cluster;
pub mod commands;
pub mod engine;
pub mod env;
pub mod persistence;
pub mod protocol;
pub mod replication;
pub mod sentinel;
pub mod server;
pub mod util;

#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: env::alloc::Counting<tikv_jemallocator::Jemalloc> = env::alloc::Counting(tikv_jemallocator::Jemalloc);

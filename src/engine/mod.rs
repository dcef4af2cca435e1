//! The keyspace and its values: dicts, objects and encodings, databases, expiry and memory.
//! Nothing here does I/O or reads a clock: time arrives as an argument.

pub mod db;
pub mod dict;
pub mod expire;
pub mod hash;
pub mod ldouble;
pub mod list;
pub mod listpack;
pub mod object;
pub mod sds;
pub mod set;
pub mod slot_to_keys;
pub mod zset;

pub mod aof;
pub mod rdb;

//! All integration tests, in one binary: one link, and tests that share its helpers.
//!
//! - `diff`: case files under `tests/cases/`, replayed against real redis and redsim,
//!   reply bytes compared (see the format at the top of `diff.rs`).
//! - `resp`: the RESP2/RESP3 reply reader those comparisons rest on.
//! - `support`: server processes on free loopback ports.

mod diff;
mod resp;
mod support;

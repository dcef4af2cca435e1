//! A server for unit tests of commands: no driver, no sockets, a clock that moves only when
//! a test moves it, so replies and propagated times are exact.
//!
//! ```ignore
//! let mut srv = testing::server();
//! assert_eq!(testing::run(&mut srv, &["SET", "k", "v"]), b"+OK\r\n");
//! ```

use bytes::Bytes;

use crate::env::SeededRng;
use crate::server::{Config, Now, Server, SysInfo};

/// The fixed wall clock of `server()`: 2023-11-14T22:13:20Z, in Unix ms.
pub const NOW_UNIX_MS: u64 = 1_700_000_000_000;
const SEED: u64 = 0x5eed;
const CLIENT_ADDR: &str = "127.0.0.1:50000";
const SERVER_ADDR: &str = "127.0.0.1:6379";

/// Fault model: none. Every fact is a constant, and time inside a turn stands still, so
/// command durations are 0 µs.
struct FakeSys;

impl SysInfo for FakeSys {
    fn used_memory(&self) -> u64 {
        1024 * 1024
    }
    fn rss_bytes(&self) -> u64 {
        2 * 1024 * 1024
    }
    fn allocator_stats(&self) -> Option<(u64, u64, u64)> {
        None
    }
    fn cpu_usage(&self) -> (f64, f64) {
        (0.0, 0.0)
    }
    fn process_id(&self) -> u32 {
        4242
    }
    fn mono_us(&self) -> u64 {
        0
    }
}

/// A server with default config, one client (id 1), the clock at `NOW_UNIX_MS`.
pub fn server() -> Server {
    let now = Now { unix_ms: NOW_UNIX_MS, unix_us: NOW_UNIX_MS * 1000, mono_ms: 0 };
    let mut srv = Server::new(Config::default(), SeededRng::from_seed(SEED), Box::new(FakeSys), now);
    srv.add_client(CLIENT_ADDR.into(), SERVER_ADDR.into());
    srv
}

/// Moves the wall clock forward by `ms` (lazy expiry sees it; no cron runs).
pub fn advance(srv: &mut Server, ms: u64) {
    let mut now = srv.now;
    now.unix_ms += ms;
    now.unix_us += ms * 1000;
    now.mono_ms += ms;
    srv.set_now(now);
}

/// Runs one command for the first client and returns its reply bytes.
pub fn run(srv: &mut Server, argv: &[&str]) -> Vec<u8> {
    let id = *srv.clients.keys().next().expect("server() adds a client");
    let argv = argv.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
    srv.process(id, argv);
    let client = srv.clients.get_mut(&id).expect("process keeps the client");
    std::mem::take(&mut client.out.buf)
}

/// What the commands run so far propagated, each as its words, and forgets them.
/// Requires `srv.propagate_enabled = true` before the commands ran.
pub fn take_propagated(srv: &mut Server) -> Vec<Vec<String>> {
    std::mem::take(&mut srv.propagated)
        .into_iter()
        .map(|p| p.argv.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect())
        .collect()
}

/// A test server whose writes are propagated (as to an AOF or a replica), for checking the
/// rewritten argv.
pub fn propagating() -> Server {
    let mut srv = server();
    srv.propagate_enabled = true;
    srv
}

/// Owned words, to compare with `take_propagated`'s output.
pub fn words(w: &[&str]) -> Vec<String> {
    w.iter().map(|s| s.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_returns_reply_bytes_of_one_command() {
        let mut srv = server();
        assert_eq!(run(&mut srv, &["SET", "k", "v"]), b"+OK\r\n");
        assert_eq!(run(&mut srv, &["GET", "k"]), b"$1\r\nv\r\n");
    }

    #[test]
    fn advance_moves_the_clock_lazy_expiry_reads() {
        let mut srv = server();
        run(&mut srv, &["SET", "k", "v", "PX", "100"]);
        advance(&mut srv, 101);
        assert_eq!(run(&mut srv, &["GET", "k"]), b"$-1\r\n");
    }
}

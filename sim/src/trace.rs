//! The run's trace: one line per event, stamped with simulated time, hashed as it grows.
//!
//! Two runs of the same scenario and seed must produce the same trace byte for byte; the FNV-1a
//! hash at the end is how a replay, a test or a reader checks that without diffing.

use std::sync::{Arc, Mutex, MutexGuard};

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64, continued from `hash` over `bytes`.
pub fn fnv1a64(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// Lines past this are hashed but not kept, so a runaway run cannot eat the machine's memory.
const MAX_KEPT_LINES: usize = 2_000_000;

#[derive(Debug)]
struct Inner {
    lines: Vec<String>,
    dropped_lines: u64,
    hash: u64,
}

/// Shared by every task of the world; clones append to the same trace.
#[derive(Clone, Debug)]
pub struct Trace {
    inner: Arc<Mutex<Inner>>,
}

impl Default for Trace {
    fn default() -> Self {
        Self::new()
    }
}

impl Trace {
    pub fn new() -> Self {
        Trace { inner: Arc::new(Mutex::new(Inner { lines: Vec::new(), dropped_lines: 0, hash: FNV_OFFSET_BASIS })) }
    }

    /// Appends `msg` stamped with `now_us` (simulated µs since the world started).
    pub fn event(&self, now_us: u64, msg: &str) {
        self.push(format!("[{:>5}.{:06}] {msg}", now_us / 1_000_000, now_us % 1_000_000));
    }

    /// Appends a line as is (the run's header, before simulated time starts).
    pub fn push(&self, line: String) {
        let mut t = self.lock();
        t.hash = fnv1a64(t.hash, line.as_bytes());
        t.hash = fnv1a64(t.hash, b"\n");
        if t.lines.len() < MAX_KEPT_LINES {
            t.lines.push(line);
        } else {
            t.dropped_lines += 1;
        }
    }

    /// FNV-1a 64 of every line so far, each followed by `\n`.
    pub fn hash(&self) -> u64 {
        self.lock().hash
    }

    pub fn lines(&self) -> Vec<String> {
        self.lock().lines.clone()
    }

    /// Calls `f` with every kept line, in order, without copying them.
    pub fn for_each_line(&self, mut f: impl FnMut(&str)) {
        self.lock().lines.iter().for_each(|l| f(l));
    }

    pub fn len(&self) -> usize {
        let t = self.lock();
        t.lines.len() + t.dropped_lines as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The trace hash as the CLI prints it and reports store it.
pub fn hash_hex(hash: u64) -> String {
    format!("{hash:016x}")
}

/// A node's log line as [`SimEnv`](crate::env::SimEnv) traced it (`[   4.101003] n2 log: <text>`):
/// (simulated µs, node, text); None for any other line.
pub fn node_log(line: &str) -> Option<(u64, u32, &str)> {
    machine_log(line, "n")
}

/// As `node_log`, for the machines named `<prefix><N>` (`s` for sentinels).
pub fn machine_log<'a>(line: &'a str, prefix: &str) -> Option<(u64, u32, &'a str)> {
    let (stamp, rest) = line.strip_prefix('[')?.split_once(&format!("] {prefix}"))?;
    let (node, text) = rest.split_once(" log: ")?;
    let (secs, micros) = stamp.trim().split_once('.')?;
    Some((secs.parse::<u64>().ok()? * 1_000_000 + micros.parse::<u64>().ok()?, node.parse().ok()?, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_reference_vectors() {
        assert_eq!(fnv1a64(FNV_OFFSET_BASIS, b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(FNV_OFFSET_BASIS, b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(FNV_OFFSET_BASIS, b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn trace_hash_covers_every_line_and_its_order() {
        let (a, b) = (Trace::new(), Trace::new());
        a.event(1, "x");
        a.event(2, "y");
        b.event(2, "y");
        b.event(1, "x");
        assert_ne!(a.hash(), b.hash());
        assert_eq!(a.lines()[0], "[    0.000001] x");
    }

    #[test]
    fn node_log_reads_back_what_a_node_logged() {
        let t = Trace::new();
        t.event(4_101_003, "n12 log: MASTER <-> REPLICA sync: Finished with success");
        t.event(7, "nemesis: n1 restarted");
        let lines = t.lines();
        assert_eq!(node_log(&lines[0]), Some((4_101_003, 12, "MASTER <-> REPLICA sync: Finished with success")));
        assert_eq!(node_log(&lines[1]), None);
    }
}

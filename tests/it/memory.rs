//! maxmemory: every policy keeps used memory near the limit by evicting the right kind of
//! key, and noeviction refuses writes with Redis's OOM error.

use crate::support::{Flavor, Server};
use crate::tools::cli;

fn info_field(port: u16, section: &str, field: &str) -> u64 {
    let info = cli(port, &["info", section]);
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in INFO {section}:\n{info}"))
}

/// Fills the server with `n` keys of 100 bytes in pipelined batches; every other key has a TTL.
fn fill(port: u16, n: usize, prefix: &str) {
    let value = "x".repeat(100);
    let mut script = String::new();
    for i in 0..n {
        if i % 2 == 0 {
            script.push_str(&format!("SET {prefix}:{i} {value} EX 10000\n"));
        } else {
            script.push_str(&format!("SET {prefix}:{i} {value}\n"));
        }
    }
    crate::tools::cli_stdin(port, &script);
}

#[test]
fn every_eviction_policy_keeps_memory_under_the_limit() {
    for policy in [
        "allkeys-lru",
        "allkeys-lfu",
        "allkeys-random",
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
    ] {
        let server = Server::start_with(Flavor::Redsim, &["--maxmemory-policy", policy]);
        let base = info_field(server.port, "memory", "used_memory");
        // Room for the 20,000 keys without a TTL (about 4.5 MB), not for all 40,000: volatile
        // policies can always make room by evicting keys with a TTL.
        let limit = base + 6 * 1024 * 1024;
        cli(server.port, &["config", "set", "maxmemory", &limit.to_string()]);
        fill(server.port, 40_000, "k");
        let evicted = info_field(server.port, "stats", "evicted_keys");
        let used = info_field(server.port, "memory", "used_memory");
        assert!(evicted > 0, "{policy}: nothing evicted");
        assert!(used <= limit + 256 * 1024, "{policy}: used {used} over limit {limit}");
        if policy.starts_with("volatile") {
            // Only keys with a TTL (the even ones) may be evicted.
            for i in (1..40_000).step_by(2 * 997) {
                assert_eq!(
                    cli(server.port, &["exists", &format!("k:{i}")]).trim(),
                    "1",
                    "{policy} evicted k:{i}, which has no TTL"
                );
            }
        }
    }
}

#[test]
fn noeviction_refuses_writes_with_oom() {
    let server = Server::start_with(Flavor::Redsim, &["--maxmemory-policy", "noeviction"]);
    let base = info_field(server.port, "memory", "used_memory");
    cli(server.port, &["config", "set", "maxmemory", &(base + 1024 * 1024).to_string()]);
    let value = "x".repeat(100);
    let script: String = (0..20_000).map(|i| format!("SET k:{i} {value}\n")).collect();
    let replies = crate::tools::cli_stdin(server.port, &script);
    let oom = replies.lines().filter(|l| *l == "OOM command not allowed when used memory > 'maxmemory'.").count();
    let keys: usize = cli(server.port, &["dbsize"]).trim().parse().unwrap();
    assert!(oom > 0 && keys < 20_000, "{oom} OOM replies, {keys} keys");
    assert_eq!(oom + keys, 20_000, "every SET either stored a key or got OOM");
    // Far over the limit now: any write is refused, reads and deletes still work.
    cli(server.port, &["config", "set", "maxmemory", "1"]);
    assert_eq!(
        cli(server.port, &["set", "one-more", "v"]).trim(),
        "OOM command not allowed when used memory > 'maxmemory'."
    );
    assert_eq!(cli(server.port, &["exists", "k:1"]).trim(), "1");
    assert_eq!(cli(server.port, &["del", "k:1"]).trim(), "1");
}

#[test]
fn allkeys_lru_keeps_the_keys_in_use() {
    let server =
        Server::start_with(Flavor::Redsim, &["--maxmemory-policy", "allkeys-lru", "--maxmemory-samples", "10"]);
    fill(server.port, 20_000, "old");
    let used = info_field(server.port, "memory", "used_memory");
    cli(server.port, &["config", "set", "maxmemory", &(used + 256 * 1024).to_string()]);
    // LRU resolution is one second: let the old keys age, then use a tenth of them again.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let mut touch = String::new();
    for i in 0..2_000 {
        touch.push_str(&format!("GET old:{i}\n"));
    }
    crate::tools::cli_stdin(server.port, &touch);
    fill(server.port, 10_000, "new");
    assert!(info_field(server.port, "stats", "evicted_keys") > 2_000);
    let hot_left =
        (0..2_000).step_by(20).filter(|i| cli(server.port, &["exists", &format!("old:{i}")]).trim() == "1").count();
    assert!(hot_left >= 95, "only {hot_left} of 100 sampled recently used keys survived eviction");
}

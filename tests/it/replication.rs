//! Replication against the real redis-server 7.0.15, both ways: a Redis replica syncs from a
//! redsim master (full, then partial after its link is killed) and a redsim replica syncs from
//! a Redis master; after a mixed write load (expiring keys, MULTI/EXEC, several dbs) both sides
//! have the same DEBUG DIGEST.

use std::time::{Duration, Instant};

use crate::support::{Flavor, Server};
use crate::tools::{cli, cli_stdin};

const SYNC_WAIT: Duration = Duration::from_secs(30);

fn field(port: u16, section: &str, name: &str) -> String {
    let info = cli(port, &["info", section]);
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("no {name} in INFO {section}:\n{info}"))
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + SYNC_WAIT;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn link_up(replica: u16) -> bool {
    field(replica, "replication", "master_link_status") == "up"
}

/// The master's stream is applied: both offsets agree and the digests are equal. Both are read
/// again until they agree (the master's active expiry may delete a key between two reads, and
/// its DEL reaches the replica a moment later); a timeout shows the last digests.
fn wait_converged(master: u16, replica: u16) {
    let mut last = (String::new(), String::new());
    let deadline = Instant::now() + SYNC_WAIT;
    loop {
        let same_offset = link_up(replica)
            && field(master, "replication", "master_repl_offset")
                == field(replica, "replication", "master_repl_offset");
        if same_offset {
            last = (cli(master, &["debug", "digest"]), cli(replica, &["debug", "digest"]));
            if last.0 == last.1 {
                return;
            }
        }
        assert!(Instant::now() < deadline, "not converged: offsets equal {same_offset}, digests {last:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A dataset with every type, expiring keys and a second db, written through redis-cli.
fn load_dataset(port: u16, tag: &str) {
    let mut script = String::new();
    for i in 0..300 {
        script.push_str(&format!("SET {tag}:s:{i} value-{i}\n"));
    }
    script.push_str(&format!("RPUSH {tag}:list a b c d\nHSET {tag}:hash f1 1 f2 2\nSADD {tag}:set 1 2 3\n"));
    script.push_str(&format!("ZADD {tag}:zset 1 a 2 b 3 c\nSET {tag}:ttl x EX 1000\nSET {tag}:short y PX 150\n"));
    script.push_str(&format!("SELECT 2\nINCRBY {tag}:counter 41\nINCR {tag}:counter\nSELECT 0\n"));
    script.push_str(&format!("MULTI\nSET {tag}:tx 1\nINCR {tag}:tx\nLPUSH {tag}:list z\nEXEC\n"));
    script.push_str(&format!("EXPIRE {tag}:s:1 1000\nDEL {tag}:s:2\nSETRANGE {tag}:s:3 2 XX\n"));
    cli_stdin(port, &script);
}

#[test]
fn a_redis_replica_syncs_from_a_redsim_master_fully_then_partially() {
    let master = Server::start_with(Flavor::Redsim, &["--enable-debug-command", "yes", "--save", ""]);
    load_dataset(master.port, "before");
    let port = master.port.to_string();
    let replica = Server::start_with(
        Flavor::Redis,
        &["--enable-debug-command", "yes", "--save", "", "--replicaof", "127.0.0.1", &port],
    );
    wait_until("the first sync", || link_up(replica.port));
    load_dataset(master.port, "after");
    // The short-lived keys expire on the master, which sends DELs.
    std::thread::sleep(Duration::from_millis(300));
    wait_converged(master.port, replica.port);
    assert_eq!(cli(master.port, &["wait", "1", "5000"]).trim(), "1");
    assert_eq!(field(master.port, "stats", "sync_full"), "1");

    // Kill the link: the replica reconnects and continues from the backlog.
    cli(master.port, &["client", "kill", "type", "replica"]);
    load_dataset(master.port, "during");
    wait_until("the partial resync", || field(master.port, "stats", "sync_partial_ok") == "1");
    load_dataset(master.port, "later");
    wait_converged(master.port, replica.port);
    assert_eq!(field(master.port, "stats", "sync_full"), "1", "no second full sync");
    assert!(replica.log().contains("Successful partial resynchronization with master."), "{}", replica.log());
    let role = cli(master.port, &["role"]);
    assert!(role.starts_with("master\n"), "{role}");
}

/// `repl-diskless-sync no`: the full sync goes through a BGSAVE to the RDB file, which two
/// real Redis replicas load; the stream written during and after the sync follows.
#[test]
fn redis_replicas_sync_from_a_redsim_master_through_the_rdb_file() {
    let master = Server::start_with(
        Flavor::Redsim,
        &["--enable-debug-command", "yes", "--save", "", "--repl-diskless-sync", "no"],
    );
    load_dataset(master.port, "before");
    let port = master.port.to_string();
    let args = ["--enable-debug-command", "yes", "--save", "", "--replicaof", "127.0.0.1", &port];
    let first = Server::start_with(Flavor::Redis, &args);
    let second = Server::start_with(Flavor::Redis, &args);
    load_dataset(master.port, "during");
    wait_until("both syncs", || link_up(first.port) && link_up(second.port));
    load_dataset(master.port, "after");
    std::thread::sleep(Duration::from_millis(300));
    wait_converged(master.port, first.port);
    wait_converged(master.port, second.port);
    assert_eq!(field(master.port, "stats", "sync_full"), "2");
    let log = master.log();
    assert!(log.contains("Starting BGSAVE for SYNC with target: disk"), "{log}");
    assert!(!log.contains("target: replicas sockets"), "{log}");
}

#[test]
fn a_redsim_replica_syncs_from_a_redis_master_and_refuses_writes() {
    let master = Server::start_with(Flavor::Redis, &["--enable-debug-command", "yes", "--save", ""]);
    load_dataset(master.port, "before");
    let port = master.port.to_string();
    let replica = Server::start_with(
        Flavor::Redsim,
        &["--enable-debug-command", "yes", "--save", "", "--replicaof", "127.0.0.1", &port],
    );
    wait_until("the first sync", || link_up(replica.port));
    load_dataset(master.port, "after");
    std::thread::sleep(Duration::from_millis(300));
    wait_converged(master.port, replica.port);
    assert_eq!(cli(master.port, &["wait", "1", "5000"]).trim(), "1", "the redsim replica acknowledges");
    assert_eq!(cli(replica.port, &["set", "k", "v"]).trim(), "READONLY You can't write against a read only replica.");
    let role = cli(replica.port, &["role"]);
    assert!(role.starts_with(&format!("slave\n127.0.0.1\n{port}\nconnected\n")), "{role}");

    // The master kills the link; the redsim replica continues with PSYNC.
    cli(master.port, &["client", "kill", "type", "replica"]);
    load_dataset(master.port, "during");
    wait_until("the partial resync", || field(master.port, "stats", "sync_partial_ok") == "1");
    wait_converged(master.port, replica.port);

    // Promotion: the replica keeps its data and takes writes under a new replication ID.
    assert_eq!(cli(replica.port, &["replicaof", "no", "one"]).trim(), "OK");
    assert_eq!(cli(replica.port, &["set", "k", "v"]).trim(), "OK");
    assert_eq!(field(replica.port, "replication", "role"), "master");
    assert_ne!(field(replica.port, "replication", "master_replid2"), "0000000000000000000000000000000000000000");
}

/// Chained replication: a redsim replica of a redsim replica gets the master's stream byte for
/// byte (it is proxied, not re-encoded), so all three digests agree.
#[test]
fn a_chain_of_redsim_replicas_converges() {
    let replica_of = |port: u16| {
        let port = port.to_string();
        Server::start_with(
            Flavor::Redsim,
            &["--enable-debug-command", "yes", "--save", "", "--replicaof", "127.0.0.1", &port],
        )
    };
    let master = Server::start_with(Flavor::Redsim, &["--enable-debug-command", "yes", "--save", ""]);
    load_dataset(master.port, "a");
    let middle = replica_of(master.port);
    wait_until("the middle replica", || link_up(middle.port));
    let leaf = replica_of(middle.port);
    wait_until("the leaf replica", || link_up(leaf.port));
    load_dataset(master.port, "b");
    wait_converged(master.port, middle.port);
    wait_converged(master.port, leaf.port);
    // Killing the middle's link to the master: both continue partially.
    cli(master.port, &["client", "kill", "type", "replica"]);
    load_dataset(master.port, "c");
    wait_until("the middle's partial resync", || field(master.port, "stats", "sync_partial_ok") == "1");
    wait_converged(master.port, leaf.port);
    assert_eq!(field(middle.port, "stats", "sync_full"), "1", "the leaf synced fully once, then streamed");
}

/// PSYNC2 with real Redis: after a redsim replica is promoted, a real Redis replica of the old
/// master moves to it and continues partially through the promoted node's replid2.
#[test]
fn a_redis_replica_continues_partially_with_a_promoted_redsim_replica() {
    let master = Server::start_with(Flavor::Redis, &["--enable-debug-command", "yes", "--save", ""]);
    let mport = master.port.to_string();
    let promoted = Server::start_with(
        Flavor::Redsim,
        &["--enable-debug-command", "yes", "--save", "", "--replicaof", "127.0.0.1", &mport],
    );
    let other = Server::start_with(
        Flavor::Redis,
        &["--enable-debug-command", "yes", "--save", "", "--replicaof", "127.0.0.1", &mport],
    );
    load_dataset(master.port, "x");
    wait_converged(master.port, promoted.port);
    wait_converged(master.port, other.port);
    assert_eq!(cli(promoted.port, &["replicaof", "no", "one"]).trim(), "OK");
    let pport = promoted.port.to_string();
    assert_eq!(cli(other.port, &["replicaof", "127.0.0.1", &pport]).trim(), "OK");
    wait_until("the other replica to follow the promoted one", || link_up(other.port));
    load_dataset(promoted.port, "y");
    wait_converged(promoted.port, other.port);
    assert_eq!(field(promoted.port, "stats", "sync_partial_ok"), "1", "{}", promoted.log());
    assert_eq!(field(promoted.port, "stats", "sync_full"), "0", "{}", promoted.log());
}

/// A replica killed and restarted resumes from the replid/offset stored in the RDB it received
/// (kept on disk, as `repl-diskless-load disabled` does): a partial resync, not a full one.
#[test]
fn a_restarted_redsim_replica_resumes_partially_from_its_stored_offset() {
    let master = Server::start_with(Flavor::Redis, &["--enable-debug-command", "yes", "--save", ""]);
    load_dataset(master.port, "x");
    let mport = master.port.to_string();
    let mut replica = Server::start_with(
        Flavor::Redsim,
        &["--enable-debug-command", "yes", "--save", "", "--replicaof", "127.0.0.1", &mport],
    );
    wait_converged(master.port, replica.port);
    assert!(replica.dir().join("dump.rdb").exists(), "the master's RDB is kept as dump.rdb");
    load_dataset(master.port, "y");
    wait_converged(master.port, replica.port);
    replica.restart();
    load_dataset(master.port, "z");
    wait_until("the restarted replica's partial resync", || field(master.port, "stats", "sync_partial_ok") == "1");
    wait_converged(master.port, replica.port);
    assert_eq!(field(master.port, "stats", "sync_full"), "1", "{}", replica.log());
}

fn role(port: u16) -> String {
    field(port, "replication", "role")
}

fn failover_state(port: u16) -> String {
    field(port, "replication", "master_failover_state")
}

/// FAILOVER on a redsim master with a real Redis replica and a redsim one: the master waits
/// for the Redis replica to catch up, follows it and asks it with `PSYNC ... FAILOVER` to
/// take over; Redis accepts, the old master continues partially, and the other replica
/// follows through it (chained). Writes on the new master reach both.
#[test]
fn failover_hands_a_redsim_master_over_to_a_redis_replica() {
    let master = Server::start_with(Flavor::Redsim, &["--enable-debug-command", "yes", "--save", ""]);
    let mport = master.port.to_string();
    let target = Server::start_with(
        Flavor::Redis,
        &["--enable-debug-command", "yes", "--save", "", "--replicaof", "127.0.0.1", &mport],
    );
    let other = Server::start_with(
        Flavor::Redsim,
        &["--enable-debug-command", "yes", "--save", "", "--replicaof", "127.0.0.1", &mport],
    );
    load_dataset(master.port, "x");
    wait_converged(master.port, target.port);
    wait_converged(master.port, other.port);
    let tport = target.port.to_string();
    assert_eq!(cli(master.port, &["failover", "to", "127.0.0.1", &tport, "timeout", "10000"]).trim(), "OK");
    wait_until("the handover", || role(target.port) == "master" && failover_state(master.port) == "no-failover");
    assert_eq!(role(master.port), "slave", "{}", master.log());
    assert_eq!(field(master.port, "replication", "master_port"), tport);
    assert!(master.log().contains("is synced, failing over."), "{}", master.log());
    assert!(cli(master.port, &["set", "k", "v"]).contains("READONLY"));
    load_dataset(target.port, "y");
    wait_converged(target.port, master.port);
    wait_converged(target.port, other.port);
    assert_eq!(field(target.port, "stats", "sync_partial_ok"), "1", "{}", target.log());
    assert_eq!(field(target.port, "stats", "sync_full"), "0", "{}", target.log());
    assert_eq!(field(master.port, "stats", "sync_full"), "2", "the replicas' first syncs only");
}

/// FAILOVER on a real Redis master hands over to a redsim replica: redsim takes the
/// `PSYNC replid offset FAILOVER` (same replid as the master's), becomes a master and lets
/// the old master continue partially.
#[test]
fn failover_hands_a_redis_master_over_to_a_redsim_replica() {
    let master = Server::start_with(Flavor::Redis, &["--enable-debug-command", "yes", "--save", ""]);
    let mport = master.port.to_string();
    let target = Server::start_with(
        Flavor::Redsim,
        &["--enable-debug-command", "yes", "--save", "", "--replicaof", "127.0.0.1", &mport],
    );
    load_dataset(master.port, "x");
    wait_converged(master.port, target.port);
    assert_eq!(cli(master.port, &["failover"]).trim(), "OK");
    wait_until("the handover", || role(target.port) == "master" && failover_state(master.port) == "no-failover");
    assert_eq!(role(master.port), "slave");
    assert!(target.log().contains("MASTER MODE enabled (failover request from"), "{}", target.log());
    load_dataset(target.port, "y");
    wait_converged(target.port, master.port);
    assert_eq!(field(target.port, "stats", "sync_partial_ok"), "1", "{}", target.log());
    assert_eq!(field(target.port, "stats", "sync_full"), "0", "{}", target.log());
}

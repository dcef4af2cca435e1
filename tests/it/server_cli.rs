//! `redsim server` behaves like `redis-server` on the command line: a redis.conf file, then
//! `--directive value` overrides, Redis's log format, and SHUTDOWN ending the process.

use std::time::Duration;

use crate::support::{Flavor, Server};
use crate::tools::cli;

#[test]
fn conf_file_and_directives_configure_the_server() {
    let conf = std::env::temp_dir().join(format!("redsim-it-{}.conf", std::process::id()));
    std::fs::write(
        &conf,
        "# a redis.conf\nmaxmemory 1mb\nmaxmemory-policy allkeys-lru\nhz 20\nrequirepass \"s3cret pass\"\n",
    )
    .unwrap();
    // The file comes first; later --directives override it, as with redis-server.
    let server = Server::start_with(Flavor::Redsim, &[conf.to_str().unwrap(), "--hz", "15"]);
    let get = |name: &str| cli(server.port, &["-a", "s3cret pass", "--no-auth-warning", "config", "get", name]);
    assert_eq!(get("maxmemory"), "maxmemory\n1048576\n");
    assert_eq!(get("maxmemory-policy"), "maxmemory-policy\nallkeys-lru\n");
    assert_eq!(get("hz"), "hz\n15\n");
    assert_eq!(cli(server.port, &["get", "x"]).trim(), "NOAUTH Authentication required.");
    drop(server);
    let _ = std::fs::remove_file(&conf);
}

#[test]
fn log_has_redis_format_and_shutdown_exits() {
    let mut server = Server::start(Flavor::Redsim);
    // The port accepts connections as soon as it is bound, a moment before the line is logged.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let log = loop {
        let log = server.log();
        if log.contains("Ready to accept connections") || std::time::Instant::now() > deadline {
            break log;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let ready = log.lines().find(|l| l.ends_with("* Ready to accept connections")).expect("ready line");
    // "<pid>:M 25 Nov 2026 00:11:29.478 * Ready to accept connections"
    let (pid, rest) = ready.split_once(':').unwrap();
    assert!(pid.parse::<u32>().is_ok(), "pid in {ready}");
    assert!(rest.starts_with("M "), "role in {ready}");
    assert_eq!(rest.split(' ').nth(4).map(|t| t.len()), Some(12), "hh:mm:ss.mmm in {ready}");
    cli(server.port, &["shutdown", "nosave"]);
    let status = server.wait_exit(Duration::from_secs(10)).expect("process exits after SHUTDOWN");
    assert!(status.success(), "exit status {status}");
}

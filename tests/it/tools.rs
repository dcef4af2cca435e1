//! Redis's own tools work against redsim unchanged: `redis-cli --pipe` mass insertion and
//! `redis-benchmark` for the string tests.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::{Flavor, Server};

#[test]
fn redis_cli_pipe_loads_without_errors() {
    let server = Server::start(Flavor::Redsim);
    let mut input = Vec::new();
    for i in 0..10_000 {
        let key = format!("key:{i:08}");
        write!(input, "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n$5\r\nvalue\r\n", key.len()).unwrap();
    }
    let mut child = Command::new("redis-cli")
        .args(["-p", &server.port.to_string(), "--pipe"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("redis-cli");
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("errors: 0, replies: 10000"), "redis-cli --pipe said: {text}");
    let dbsize = Command::new("redis-cli").args(["-p", &server.port.to_string(), "dbsize"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&dbsize.stdout).trim(), "10000");
}

#[test]
fn redis_benchmark_string_tests_run_without_errors() {
    let server = Server::start(Flavor::Redsim);
    let out = Command::new("redis-benchmark")
        .args([
            "-p",
            &server.port.to_string(),
            "-t",
            "ping,set,get,incr,mset",
            "-n",
            "2000",
            "-c",
            "10",
            "-r",
            "1000",
            "--csv",
        ])
        .output()
        .expect("redis-benchmark");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "redis-benchmark failed: {text} {}", String::from_utf8_lossy(&out.stderr));
    for test in ["PING_INLINE", "PING_MBULK", "SET", "GET", "INCR", "MSET"] {
        assert!(text.lines().any(|l| l.starts_with(&format!("\"{test}"))), "no result for {test} in:\n{text}");
    }
    assert!(!text.contains("ERR"), "errors in benchmark output:\n{text}");
}

/// `redis-cli -p port args...`, its stdout.
pub fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli").arg("-p").arg(port.to_string()).args(args).output().expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Feeds commands (one per line) to `redis-cli -p port`, waiting for all replies.
pub fn cli_stdin(port: u16, script: &str) -> String {
    let mut child = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("redis-cli");
    let mut stdin = child.stdin.take().unwrap();
    let script = script.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(script.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

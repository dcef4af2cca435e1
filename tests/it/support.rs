//! Server processes for the integration tests: a real `redis-server` and redsim, each on
//! its own loopback port and in its own temporary directory, stopped by PID on drop; and
//! sentinels (`redis-sentinel` or `redsim sentinel`) the same way.
//!
//! Several engineers run tests on one machine at once, so ports come from a band chosen by
//! this process's id, each port is checked free by binding it first, and a server that
//! still loses the race ("Address already in use") is started again on the next port.

use std::fs::{self, File};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const REDIS_SERVER_BIN: &str = "/usr/bin/redis-server";
const REDIS_SENTINEL_BIN: &str = "/usr/bin/redis-sentinel";
const SENTINEL_CONF_NAME: &str = "sentinel.conf";
/// Below Linux's ephemeral range (32768..), so client sockets never take our ports.
const PORT_BAND_FIRST: u32 = 10_000;
const PORT_BAND_LEN: u32 = 100; // ports per test process
const PORT_BAND_COUNT: u32 = 220; // bands between 10000 and 32000
const START_ATTEMPTS_MAX: u32 = 20;
const READY_TIMEOUT: Duration = Duration::from_secs(10);
const READY_POLL_INTERVAL: Duration = Duration::from_millis(10);

static NEXT_PORT_INDEX: AtomicU32 = AtomicU32::new(0);
static NEXT_DIR_INDEX: AtomicU32 = AtomicU32::new(0);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    Redis,
    Redsim,
}

impl Flavor {
    pub fn name(self) -> &'static str {
        match self {
            Flavor::Redis => "redis",
            Flavor::Redsim => "redsim",
        }
    }

    /// The command line; `extra` may start with a config file path (no leading `--`), which
    /// goes first, as redis-server wants it.
    fn command(self, port: u16, dir: &std::path::Path, extra: &[String]) -> Command {
        let mut cmd = match self {
            Flavor::Redis => Command::new(REDIS_SERVER_BIN),
            Flavor::Redsim => {
                let mut cmd = Command::new(env!("CARGO_BIN_EXE_redsim"));
                cmd.arg("server");
                cmd
            }
        };
        let (conf, extra) = match extra.first() {
            Some(f) if !f.starts_with("--") => (Some(f), &extra[1..]),
            _ => (None, extra),
        };
        cmd.args(conf);
        cmd.arg("--port").arg(port.to_string());
        cmd.args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
        if self == Flavor::Redis {
            cmd.args(["--daemonize", "no"]);
        }
        cmd.arg("--dir").arg(dir);
        cmd.args(extra);
        cmd
    }
}

/// A running server; dropping it kills the process and removes its directory.
pub struct Server {
    pub flavor: Flavor,
    pub port: u16,
    child: Child,
    dir: PathBuf,
    extra: Vec<String>,
    /// The directory was made for this server and goes with it.
    own_dir: bool,
}

enum StartError {
    PortTaken,
}

impl Server {
    pub fn start(flavor: Flavor) -> Server {
        Server::start_with(flavor, &[])
    }

    /// Starts with extra command-line directives after the defaults (`--maxmemory 2mb`...).
    pub fn start_with(flavor: Flavor, extra: &[&str]) -> Server {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        for _ in 0..START_ATTEMPTS_MAX {
            let port = free_port();
            match Server::start_on(flavor, port, &extra) {
                Ok(server) => return server,
                Err(StartError::PortTaken) => continue,
            }
        }
        panic!("{}: no free port after {START_ATTEMPTS_MAX} attempts", flavor.name());
    }

    /// Starts in `dir` (kept on drop): for tests of files that outlive a server (AOF, RDB).
    pub fn start_in(flavor: Flavor, dir: &std::path::Path, extra: &[&str]) -> Server {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        for _ in 0..START_ATTEMPTS_MAX {
            match Server::start_on_dir(flavor, free_port(), &extra, dir.to_path_buf(), false) {
                Ok(server) => return server,
                Err(StartError::PortTaken) => continue,
            }
        }
        panic!("{}: no free port after {START_ATTEMPTS_MAX} attempts", flavor.name());
    }

    /// kill -9: no shutdown code runs.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn start_on(flavor: Flavor, port: u16, extra: &[String]) -> Result<Server, StartError> {
        Server::start_on_dir(flavor, port, extra, temp_dir(flavor), true)
    }

    fn start_on_dir(
        flavor: Flavor,
        port: u16,
        extra: &[String],
        dir: PathBuf,
        own_dir: bool,
    ) -> Result<Server, StartError> {
        let log = File::create(dir.join("server.log")).expect("create server log");
        let child = flavor
            .command(port, &dir, extra)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{}: spawn failed: {e}", flavor.name()));
        let mut server = Server { flavor, port, child, dir, extra: extra.to_vec(), own_dir };
        server.wait_ready()?;
        Ok(server)
    }

    fn wait_ready(&mut self) -> Result<(), StartError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = self.log();
                if log.contains("Address already in use") {
                    return Err(StartError::PortTaken);
                }
                panic!(
                    "{} exited ({status}) before accepting connections; command: {}; its output:\n{log}",
                    self.flavor.name(),
                    self.command_line()
                );
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                panic!(
                    "{} did not accept connections within {} s; command: {}; its output:\n{}",
                    self.flavor.name(),
                    READY_TIMEOUT.as_secs(),
                    self.command_line(),
                    self.log()
                );
            }
            thread::sleep(READY_POLL_INTERVAL);
        }
    }

    fn command_line(&self) -> String {
        let cmd = self.flavor.command(self.port, &self.dir, &self.extra);
        let mut line = cmd.get_program().to_string_lossy().into_owned();
        for arg in cmd.get_args() {
            match arg.to_string_lossy() {
                a if a.is_empty() => line.push_str(" \"\""),
                a => {
                    line.push(' ');
                    line.push_str(&a);
                }
            }
        }
        line
    }

    /// Waits for the process to exit by itself (after SHUTDOWN); its exit status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            thread::sleep(READY_POLL_INTERVAL);
        }
        None
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// The server's working directory (`dir`), where it keeps dump.rdb.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Kills the process (SIGKILL, no final save) and starts it again on the same port, in
    /// the same directory, with the same arguments: a crash and a restart.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let log = File::options().append(true).open(self.dir.join("server.log")).expect("open server log");
        self.child = self
            .flavor
            .command(self.port, &self.dir, &self.extra)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{}: spawn failed: {e}", self.flavor.name()));
        if self.wait_ready().is_err() {
            panic!("{}: port {} was taken while restarting", self.flavor.name(), self.port);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if self.own_dir {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// A running sentinel, real `redis-sentinel` or `redsim sentinel`, with its config file in its
/// own temporary directory; dropping it kills the process and removes the directory.
pub struct Sentinel {
    pub flavor: Flavor,
    pub port: u16,
    child: Child,
    dir: PathBuf,
}

impl Sentinel {
    /// Starts on a free port, bound to 127.0.0.1; `statements` are the config file's
    /// `sentinel ...` lines (the port, bind and dir lines come first).
    pub fn start(flavor: Flavor, statements: &str) -> Sentinel {
        for _ in 0..START_ATTEMPTS_MAX {
            let port = free_port();
            let dir = temp_dir(flavor);
            let conf = dir.join(SENTINEL_CONF_NAME);
            let text = format!("port {port}\nbind 127.0.0.1\ndir {}\n{statements}\n", dir.display());
            fs::write(&conf, text).expect("write sentinel.conf");
            let log = File::create(dir.join("sentinel.log")).expect("create sentinel log");
            let mut cmd = match flavor {
                Flavor::Redis => Command::new(REDIS_SENTINEL_BIN),
                Flavor::Redsim => {
                    let mut cmd = Command::new(env!("CARGO_BIN_EXE_redsim"));
                    cmd.arg("sentinel");
                    cmd
                }
            };
            let child = cmd
                .arg(&conf)
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("clone log handle"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("{} sentinel: spawn failed: {e}", flavor.name()));
            let mut sentinel = Sentinel { flavor, port, child, dir };
            match sentinel.wait_ready() {
                Ok(()) => return sentinel,
                Err(StartError::PortTaken) => continue,
            }
        }
        panic!("{} sentinel: no free port after {START_ATTEMPTS_MAX} attempts", flavor.name());
    }

    fn wait_ready(&mut self) -> Result<(), StartError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = self.log();
                if log.contains("Address already in use") {
                    return Err(StartError::PortTaken);
                }
                panic!(
                    "{} sentinel exited ({status}) before accepting connections; its output:\n{log}",
                    self.flavor.name()
                );
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            assert!(
                Instant::now() < deadline,
                "{} sentinel did not accept connections within {} s; its output:\n{}",
                self.flavor.name(),
                READY_TIMEOUT.as_secs(),
                self.log()
            );
            thread::sleep(READY_POLL_INTERVAL);
        }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("sentinel.log")).unwrap_or_default()
    }

    /// The config file as the sentinel last rewrote it.
    pub fn config(&self) -> String {
        fs::read_to_string(self.dir.join(SENTINEL_CONF_NAME)).unwrap_or_default()
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    let band = std::process::id() % PORT_BAND_COUNT;
    for _ in 0..PORT_BAND_LEN {
        let index = NEXT_PORT_INDEX.fetch_add(1, Ordering::Relaxed) % PORT_BAND_LEN;
        let port = PORT_BAND_FIRST + band * PORT_BAND_LEN + index;
        let port = u16::try_from(port).expect("port band stays below 65536");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("every port of band {band} is taken");
}

pub fn temp_dir(flavor: Flavor) -> PathBuf {
    let index = NEXT_DIR_INDEX.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("redsim-it-{}-{}-{index}", std::process::id(), flavor.name()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create server dir");
    dir
}

/// SplitMix64: a tiny seeded generator for test inputs, so every failure names a replayable
/// seed.
pub struct Gen(pub u64);

impl Gen {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

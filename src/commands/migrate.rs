//! MIGRATE (Redis 7.0's `cluster.c` `migrateCommand`), the sans-IO half. Redis's MIGRATE is
//! synchronous: the whole server waits while it talks to the target. Here the handler checks
//! the arguments, serializes the keys as DUMP payloads and leaves a [`MigrateJob`] on the
//! server; the driver holds every other client back, does the exchange over the env's `Net`
//! (`server::migrate_io`), and hands what it read to [`MigrateJob::judge`], which decides as
//! Redis does: retry once, or reply; [`Server::finish_migrate`] then deletes the keys the
//! target acknowledged and propagates them as one DEL.

use bytes::{Bytes, BytesMut};

use super::{eq_ic, int_arg, CmdError, CmdResult, Ctx, Handler};
use crate::env::rt::{IpAddr, SocketAddr};
use crate::persistence::rdb;
use crate::server::Server;

pub static COMMANDS: &[(&str, Handler)] = &[("migrate", migrate)];

/// Redis's `MIGRATE_SOCKET_CACHE_ITEMS`: cached target connections at most.
pub const MIGRATE_SOCKET_CACHE_ITEMS: usize = 64;
/// Redis's `MIGRATE_SOCKET_CACHE_TTL`: cron closes a cached connection idle longer than this.
pub const MIGRATE_SOCKET_CACHE_TTL_SECS: u64 = 10;
/// Redis writes the request in pieces of this many bytes, each with the whole timeout.
pub const MIGRATE_WRITE_CHUNK_LEN: usize = 64 * 1024;
/// Redis reads each reply line into a 1024-byte buffer: a longer line is cut after this
/// many bytes, and its rest reads as the next line.
pub const MIGRATE_REPLY_LINE_MAX: usize = 1023;
/// A timeout argument of 0 or less means this, in ms.
const MIGRATE_DEFAULT_TIMEOUT_MS: u64 = 1000;

/// Redis's `migrateGetKeys` (MIGRATE's KEYS spec is incomplete): argument 3, or with the
/// KEYS option (found after skipping AUTH's and AUTH2's arguments) every argument after it,
/// and none when KEYS comes with a key name.
pub fn get_keys(argv: &[Bytes]) -> Vec<(usize, u64)> {
    use super::meta::key_flag;
    let flags = key_flag::RW | key_flag::ACCESS | key_flag::DELETE;
    let (mut first, mut num) = (3, 1);
    let mut i = 6;
    while i < argv.len() {
        if eq_ic(&argv[i], "keys") {
            if !argv[3].is_empty() {
                return Vec::new();
            }
            first = i + 1;
            num = argv.len() - first;
            break;
        }
        if eq_ic(&argv[i], "auth") {
            i += 1;
        } else if eq_ic(&argv[i], "auth2") {
            i += 2;
        }
        i += 1;
    }
    (first..first + num).filter(|&p| p < argv.len()).map(|p| (p, flags)).collect()
}

const KEYS_NEEDS_EMPTY_KEY: &str = "When using MIGRATE KEYS option, the key argument must be set to the empty string";
const IOERR_CONNECTING: &str = "IOERR error or timeout connecting to the client";
const IOERR_WRITING: &str = "IOERR error or timeout writing to target instance";
const IOERR_READING: &str = "IOERR error or timeout reading to target instance";
const TARGET_ERROR_PREFIX: &[u8] = b"ERR Target instance replied with error: ";

/// MIGRATE's options, parsed in Redis's order (options first, then timeout, then db).
#[derive(Debug, Clone, PartialEq, Eq)]
struct MigrateArgs {
    copy: bool,
    replace: bool,
    username: Option<Bytes>,
    password: Option<Bytes>,
    /// Index of the first key in argv and how many: argv[3] alone, or everything after KEYS.
    first_key: usize,
    num_keys: usize,
    timeout_ms: u64,
    dest_db: i64,
}

fn parse_args(a: &[Bytes]) -> Result<MigrateArgs, CmdError> {
    let mut m = MigrateArgs {
        copy: false,
        replace: false,
        username: None,
        password: None,
        first_key: 3,
        num_keys: 1,
        timeout_ms: 0,
        dest_db: 0,
    };
    let mut j = 6;
    while j < a.len() {
        let moreargs = a.len() - 1 - j;
        if eq_ic(&a[j], "copy") {
            m.copy = true;
        } else if eq_ic(&a[j], "replace") {
            m.replace = true;
        } else if eq_ic(&a[j], "auth") {
            if moreargs < 1 {
                return Err(CmdError::Syntax);
            }
            j += 1;
            m.password = Some(a[j].clone());
        } else if eq_ic(&a[j], "auth2") {
            if moreargs < 2 {
                return Err(CmdError::Syntax);
            }
            m.username = Some(a[j + 1].clone());
            m.password = Some(a[j + 2].clone());
            j += 2;
        } else if eq_ic(&a[j], "keys") {
            if !a[3].is_empty() {
                return Err(CmdError::err(KEYS_NEEDS_EMPTY_KEY));
            }
            m.first_key = j + 1;
            m.num_keys = a.len() - j - 1;
            break;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    // Redis reads both as a C `long`.
    let timeout = int_arg(&a[5])?;
    m.dest_db = int_arg(&a[4])?;
    m.timeout_ms = if timeout <= 0 { MIGRATE_DEFAULT_TIMEOUT_MS } else { timeout.unsigned_abs() };
    Ok(m)
}

/// MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE] [AUTH password]
/// [AUTH2 username password] [KEYS key ...]. Missing keys are skipped (+NOKEY when none is
/// left); each key goes with its remaining TTL, as read now.
fn migrate(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let args = parse_args(a)?;
    if ctx.client.multi.is_some() {
        // Inside EXEC the exchange cannot happen before the next queued command runs.
        return Err(CmdError::err("MIGRATE inside MULTI/EXEC is not supported by redsim"));
    }
    let compression = ctx.srv.config.get("rdbcompression") != Some("no");
    let mut keys = Vec::new();
    let mut payloads = Vec::new();
    for key in &a[args.first_key..args.first_key + args.num_keys] {
        if let Some(o) = ctx.lookup_read(key) {
            payloads.push(rdb::dump_payload_with(o, compression));
            keys.push(key.clone());
        }
    }
    if keys.is_empty() {
        ctx.out().simple("NOKEY");
        return Ok(());
    }
    let db = ctx.db_index();
    let now_ms = ctx.now_ms();
    // A key found alive has a TTL of at least 1 ms (Redis: `if (ttl < 1) ttl = 1`).
    let ttls_ms = keys
        .iter()
        .map(|k| ctx.srv.dbs[db].expire_of(k).map_or(0, |when| (when.saturating_sub(now_ms) as i64).max(1)))
        .collect();
    let cluster = ctx.srv.config.get("cluster-enabled") == Some("yes");
    ctx.srv.migrate_job = Some(MigrateJob {
        client: ctx.client.id,
        db,
        host: a[1].clone(),
        port: a[2].clone(),
        timeout_ms: args.timeout_ms,
        dest_db: args.dest_db,
        copy: args.copy,
        replace: args.replace,
        username: args.username,
        password: args.password,
        restore: if cluster { "RESTORE-ASKING" } else { "RESTORE" },
        keys,
        ttls_ms,
        payloads,
    });
    Ok(())
}

/// A MIGRATE waiting for the driver's exchange with the target.
#[derive(Debug, Clone)]
pub struct MigrateJob {
    /// Who gets the reply.
    pub client: u64,
    /// The source db the keys live in.
    pub db: usize,
    pub host: Bytes,
    pub port: Bytes,
    /// Each connect, 64 KB write and byte read gets this long.
    pub timeout_ms: u64,
    pub dest_db: i64,
    pub copy: bool,
    pub replace: bool,
    pub username: Option<Bytes>,
    pub password: Option<Bytes>,
    /// RESTORE, or RESTORE-ASKING in cluster mode.
    pub restore: &'static str,
    /// The keys found, with their TTLs (0: none) and DUMP payloads, in argument order.
    pub keys: Vec<Bytes>,
    pub ttls_ms: Vec<i64>,
    pub payloads: Vec<Vec<u8>>,
}

/// How an exchange with the target stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoFailure {
    /// The host did not resolve, or connecting timed out: Redis replies at once, without a
    /// retry. (A refused connection is not noticed until the write fails: Redis 7.0's
    /// blocking connect only waits for the socket to become writable.)
    Connect,
    Write {
        timed_out: bool,
    },
    /// An error, a timeout, the peer closing, or an empty line (Redis's `syncReadLine` <= 0).
    Read {
        timed_out: bool,
    },
}

/// One try at the exchange, as the driver saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// A SELECT was sent: the connection's db was not `dest_db`.
    pub select: bool,
    /// The reply lines read (without CR LF), in order; fewer than expected on a failure.
    pub lines: Vec<Vec<u8>>,
    pub failure: Option<IoFailure>,
}

/// What to do with the cached connection after an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketFate {
    /// Keep it, now selected on this db (-1: unknown, SELECT next time).
    Keep {
        last_dbid: i64,
    },
    Close,
}

/// The end of a MIGRATE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Indexes (into `keys`) of the keys the target acknowledged.
    pub acked: Vec<usize>,
    /// Ok: +OK; Err: the error reply's text (code first).
    pub reply: Result<(), Vec<u8>>,
    pub socket: SocketFate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Close the connection and try once more on a new one.
    Retry,
    Done(Outcome),
}

impl MigrateJob {
    /// The cache's key for the target: the arguments as given (Redis's `host:port` name).
    pub fn cache_name(&self) -> Vec<u8> {
        let mut name = self.host.to_vec();
        name.push(b':');
        name.extend_from_slice(&self.port);
        name
    }

    /// Where to connect: an IP literal or `localhost`, and the port as C's `atoi` reads it,
    /// cut to 16 bits as the resolver does (`notaport` is port 0, which refuses). None when
    /// the host does not resolve (the env has no name resolution beyond `localhost`).
    pub fn target(&self) -> Option<SocketAddr> {
        let host = std::str::from_utf8(&self.host).ok()?;
        let ip: IpAddr = match host {
            "localhost" => IpAddr::from([127, 0, 0, 1]),
            h => h.parse().ok()?,
        };
        Some(SocketAddr::new(ip, atoi(&self.port) as u16))
    }

    /// The pipelined request: AUTH when a password was given, SELECT when `select`, then one
    /// RESTORE per key (with REPLACE when asked).
    pub fn request(&self, select: bool) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(password) = &self.password {
            let mut argv: Vec<&[u8]> = vec![b"AUTH"];
            argv.extend(self.username.as_deref());
            argv.push(password);
            encode(&mut out, &argv);
        }
        if select {
            encode(&mut out, &[b"SELECT", self.dest_db.to_string().as_bytes()]);
        }
        for ((key, ttl), payload) in self.keys.iter().zip(&self.ttls_ms).zip(&self.payloads) {
            let ttl = ttl.to_string();
            let mut argv: Vec<&[u8]> = vec![self.restore.as_bytes(), key, ttl.as_bytes(), payload];
            if self.replace {
                argv.push(b"REPLACE");
            }
            encode(&mut out, &argv);
        }
        out
    }

    /// How many reply lines the request of `request(select)` brings back.
    pub fn replies_expected(&self, select: bool) -> usize {
        usize::from(self.password.is_some()) + usize::from(select) + self.keys.len()
    }

    /// Redis's reading of the replies and its `socket_err` path: the first error from the
    /// target becomes the reply (an AUTH or SELECT error fails every key); a key whose
    /// RESTORE succeeded is acknowledged even when a later one failed. An I/O failure before
    /// the first RESTORE reply is retried once on a new connection, unless it was a timeout.
    pub fn judge(&self, attempt: &Attempt, may_retry: bool) -> Step {
        let io_error = |text: &str| Outcome { acked: Vec::new(), reply: Err(text.into()), socket: SocketFate::Close };
        let retryable = |timed_out: bool| may_retry && !timed_out;
        let lines = &attempt.lines;
        let before = usize::from(self.password.is_some()) + usize::from(attempt.select);
        match attempt.failure {
            Some(IoFailure::Connect) => return Step::Done(io_error(IOERR_CONNECTING)),
            Some(IoFailure::Write { timed_out }) if retryable(timed_out) => return Step::Retry,
            Some(IoFailure::Write { .. }) => return Step::Done(io_error(IOERR_WRITING)),
            Some(IoFailure::Read { timed_out }) if lines.len() < before => {
                return if retryable(timed_out) { Step::Retry } else { Step::Done(io_error(IOERR_READING)) };
            }
            _ => {}
        }
        debug_assert!(attempt.failure.is_some() || lines.len() == self.replies_expected(attempt.select));
        let failed = |line: &[u8]| line.first() == Some(&b'-');
        let preamble_error = lines[..before].iter().find(|l| failed(l));
        let mut target_error = None;
        let mut acked = Vec::new();
        for (j, line) in lines[before..].iter().enumerate() {
            match preamble_error.or(failed(line).then_some(line)) {
                Some(err) => {
                    target_error.get_or_insert_with(|| target_error_text(err));
                }
                None => acked.push(j),
            }
        }
        let restores_read = lines.len() - before;
        match (attempt.failure, target_error) {
            (Some(IoFailure::Read { timed_out }), None) if restores_read == 0 && retryable(timed_out) => Step::Retry,
            (Some(_), None) => Step::Done(Outcome { acked, ..io_error(IOERR_READING) }),
            (Some(_), Some(err)) => Step::Done(Outcome { acked, reply: Err(err), socket: SocketFate::Close }),
            (None, None) => {
                Step::Done(Outcome { acked, reply: Ok(()), socket: SocketFate::Keep { last_dbid: self.dest_db } })
            }
            (None, Some(err)) => {
                Step::Done(Outcome { acked, reply: Err(err), socket: SocketFate::Keep { last_dbid: -1 } })
            }
        }
    }
}

/// `Target instance replied with error: <line after its '-'>`, as `addReplyErrorFormat`
/// writes it: the C string stops at a NUL, and CR/LF become spaces.
fn target_error_text(line: &[u8]) -> Vec<u8> {
    let rest = &line[1..];
    let rest = &rest[..rest.iter().position(|&b| b == 0).unwrap_or(rest.len())];
    let mut text = TARGET_ERROR_PREFIX.to_vec();
    text.extend(rest.iter().map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }));
    text
}

/// The next reply line in `buf`, as Redis's `syncReadLine` reads it into a 1024-byte buffer:
/// up to LF (a CR before it dropped) or `MIGRATE_REPLY_LINE_MAX` bytes. None: read more.
/// Err: an empty line, which Redis takes as a failed read.
pub fn take_line(buf: &mut BytesMut) -> Option<Result<Vec<u8>, IoFailure>> {
    let window = &buf[..buf.len().min(MIGRATE_REPLY_LINE_MAX)];
    let line = match window.iter().position(|&b| b == b'\n') {
        Some(nl) => {
            let line = buf.split_to(nl + 1);
            line[..nl].to_vec()
        }
        None if buf.len() >= MIGRATE_REPLY_LINE_MAX => buf.split_to(MIGRATE_REPLY_LINE_MAX).to_vec(),
        None => return None,
    };
    if line.is_empty() {
        return Some(Err(IoFailure::Read { timed_out: false }));
    }
    let len = line.len() - usize::from(line.ends_with(b"\r"));
    Some(Ok(line[..len].to_vec()))
}

/// C's `atoi`: leading blanks, a sign, digits; anything else ends the number.
fn atoi(b: &[u8]) -> i64 {
    let b = &b[b.iter().take_while(|c| c.is_ascii_whitespace()).count()..];
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    let n = digits
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .fold(0i64, |n, &c| n.saturating_mul(10).saturating_add(i64::from(c - b'0')));
    if neg {
        -n
    } else {
        n
    }
}

fn encode(out: &mut Vec<u8>, argv: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", argv.len()).as_bytes());
    for a in argv {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

impl Server {
    /// The second half of MIGRATE, once the driver's exchange is over: the acknowledged keys
    /// are deleted (unless COPY) and reach the AOF and replicas as one `DEL k1 k2 ...`, as
    /// Redis rewrites the command; then the reply.
    pub fn finish_migrate(&mut self, job: MigrateJob, outcome: Outcome) {
        let mut client = self.clients.remove(&job.client);
        if !job.copy && !outcome.acked.is_empty() {
            let db = job.db;
            let mut del = vec![Bytes::from_static(b"DEL")];
            for &i in &outcome.acked {
                let key = &job.keys[i];
                self.dbs[db].delete(key);
                self.touch_watched_key(db, key);
                self.notify_keyspace_event(
                    client.as_deref_mut(),
                    crate::server::notify::class::GENERIC,
                    "del",
                    key,
                    db,
                );
                self.dirty += 1;
                del.push(key.clone());
            }
            self.propagate(db, del);
            self.feed_propagated();
            if let Some(c) = client.as_deref_mut() {
                c.woff = self.repl.state.master_repl_offset;
            }
        }
        if let Some(mut c) = client {
            match &outcome.reply {
                Ok(()) => c.out.ok(),
                Err(text) => {
                    let text = String::from_utf8_lossy(text);
                    self.count_error(&text);
                    c.out.error(&text);
                    if let Some(cmd) = self.table.lookup(b"migrate") {
                        self.cmd_stats[cmd.index].failed_calls += 1;
                    }
                }
            }
            self.clients.insert(job.client, c);
        }
        self.flush_get_ack();
    }
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};

    use super::*;
    use crate::commands::testing::{self, propagating, run, take_propagated, words};

    fn job_of(srv: &mut Server, argv: &[&str]) -> (Vec<u8>, Option<MigrateJob>) {
        let reply = run(srv, argv);
        (reply, srv.migrate_job.take())
    }

    fn err(text: &str) -> Vec<u8> {
        format!("-{text}\r\n").into_bytes()
    }

    #[test]
    fn argument_errors_are_redis_texts_in_redis_order() {
        let mut srv = testing::server();
        run(&mut srv, &["SET", "k", "v"]);
        let m = |srv: &mut Server, rest: &[&str]| {
            let mut argv = vec!["MIGRATE", "127.0.0.1", "1"];
            argv.extend_from_slice(rest);
            job_of(srv, &argv).0
        };
        assert_eq!(m(&mut srv, &["k", "0"]), err("ERR wrong number of arguments for 'migrate' command"));
        assert_eq!(m(&mut srv, &["k", "0", "10", "bogus"]), err("ERR syntax error"));
        assert_eq!(m(&mut srv, &["k", "0", "10", "AUTH"]), err("ERR syntax error"));
        assert_eq!(m(&mut srv, &["k", "0", "10", "AUTH2", "u"]), err("ERR syntax error"));
        assert_eq!(m(&mut srv, &["k", "0", "10", "KEYS", "k"]), err(&format!("ERR {KEYS_NEEDS_EMPTY_KEY}")));
        // Options are checked before the numbers, the timeout before the db.
        assert_eq!(m(&mut srv, &["k", "x", "y", "bogus"]), err("ERR syntax error"));
        assert_eq!(m(&mut srv, &["k", "x", "y"]), err("ERR value is not an integer or out of range"));
        assert_eq!(m(&mut srv, &["k", "x", "10"]), err("ERR value is not an integer or out of range"));
        // Missing keys are checked after the arguments, and need no connection.
        assert_eq!(m(&mut srv, &["nokey", "0", "10"]), b"+NOKEY\r\n");
        assert_eq!(m(&mut srv, &["", "0", "10", "KEYS", "a", "b"]), b"+NOKEY\r\n");
        // KEYS takes the rest, options included.
        assert_eq!(m(&mut srv, &["", "0", "10", "KEYS", "copy", "replace"]), b"+NOKEY\r\n");
        assert!(srv.migrate_job.is_none());
    }

    #[test]
    fn options_parse_like_redis() {
        let a: Vec<Bytes> = ["MIGRATE", "h", "1", "", "3", "-5", "AUTH", "p1", "AUTH2", "u", "p2", "COPY", "KEYS", "a"]
            .iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect();
        let m = parse_args(&a).expect("valid");
        assert_eq!((m.copy, m.replace, m.timeout_ms, m.dest_db), (true, false, 1000, 3));
        assert_eq!((m.username.as_deref(), m.password.as_deref()), (Some(&b"u"[..]), Some(&b"p2"[..])));
        assert_eq!((m.first_key, m.num_keys), (13, 1));
        // A later AUTH replaces the password and keeps AUTH2's user, as Redis's variables do.
        let a: Vec<Bytes> = ["MIGRATE", "h", "1", "k", "0", "7", "AUTH2", "u", "p2", "auth", "p3", "replace"]
            .iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect();
        let m = parse_args(&a).expect("valid");
        assert_eq!((m.username.as_deref(), m.password.as_deref()), (Some(&b"u"[..]), Some(&b"p3"[..])));
        assert_eq!((m.replace, m.timeout_ms, m.first_key, m.num_keys), (true, 7, 3, 1));
    }

    #[test]
    fn request_is_auth_select_then_restores_with_ttl_and_payload() {
        let mut srv = testing::server();
        run(&mut srv, &["SET", "a", "1"]);
        run(&mut srv, &["SET", "b", "2", "PX", "5000"]);
        let (reply, job) = job_of(
            &mut srv,
            &["MIGRATE", "127.0.0.1", "6380", "", "2", "0", "AUTH2", "u", "pw", "REPLACE", "KEYS", "a", "x", "b"],
        );
        assert_eq!(reply, b"", "the reply waits for the exchange");
        let job = job.expect("a job");
        assert_eq!(job.timeout_ms, 1000);
        assert_eq!(job.keys, vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")]);
        assert_eq!(job.ttls_ms, vec![0, 5000]);
        let (pa, pb) =
            (rdb::dump_payload(srv.dbs[0].get(b"a").unwrap()), rdb::dump_payload(srv.dbs[0].get(b"b").unwrap()));
        let mut want = Vec::new();
        encode(&mut want, &[b"AUTH", b"u", b"pw"]);
        encode(&mut want, &[b"SELECT", b"2"]);
        encode(&mut want, &[b"RESTORE", b"a", b"0", &pa, b"REPLACE"]);
        encode(&mut want, &[b"RESTORE", b"b", b"5000", &pb, b"REPLACE"]);
        assert_eq!(job.request(true), want);
        assert_eq!(job.replies_expected(true), 4);
        assert_eq!(job.replies_expected(false), 3);
        let mut no_select = Vec::new();
        encode(&mut no_select, &[b"AUTH", b"u", b"pw"]);
        assert!(job.request(false).starts_with(&no_select));
        assert!(!job.request(false).windows(6).any(|w| w == b"SELECT"));
        assert_eq!(job.cache_name(), b"127.0.0.1:6380");
        assert_eq!(job.target(), Some("127.0.0.1:6380".parse().unwrap()));
        // The keys stay until the target acknowledged them.
        assert_eq!(run(&mut srv, &["EXISTS", "a", "b"]), b":2\r\n");
    }

    #[test]
    fn target_reads_the_port_as_atoi_and_the_host_as_an_address() {
        let mut job = sample_job();
        for (host, port, want) in [
            ("localhost", "6379", Some("127.0.0.1:6379")),
            ("::1", "12x", Some("[::1]:12")),
            ("127.0.0.1", " +7", Some("127.0.0.1:7")),
            ("127.0.0.1", "abc", Some("127.0.0.1:0")),
            ("127.0.0.1", "70000", Some("127.0.0.1:4464")),
            ("example.invalid", "6379", None),
        ] {
            job.host = Bytes::copy_from_slice(host.as_bytes());
            job.port = Bytes::copy_from_slice(port.as_bytes());
            assert_eq!(job.target(), want.map(|w| w.parse().unwrap()), "{host} {port}");
        }
    }

    fn sample_job() -> MigrateJob {
        MigrateJob {
            client: 1,
            db: 0,
            host: Bytes::from_static(b"127.0.0.1"),
            port: Bytes::from_static(b"6380"),
            timeout_ms: 1000,
            dest_db: 0,
            copy: false,
            replace: false,
            username: None,
            password: None,
            restore: "RESTORE",
            keys: vec![Bytes::from_static(b"a"), Bytes::from_static(b"b"), Bytes::from_static(b"c")],
            ttls_ms: vec![0, 0, 0],
            payloads: vec![vec![], vec![], vec![]],
        }
    }

    fn attempt(select: bool, lines: &[&str], failure: Option<IoFailure>) -> Attempt {
        Attempt { select, lines: lines.iter().map(|l| l.as_bytes().to_vec()).collect(), failure }
    }

    fn done(acked: &[usize], reply: Result<(), &str>, socket: SocketFate) -> Step {
        Step::Done(Outcome { acked: acked.to_vec(), reply: reply.map_err(|e| e.as_bytes().to_vec()), socket })
    }

    #[test]
    fn judge_acks_successes_and_replies_the_first_target_error() {
        let job = sample_job();
        let keep = SocketFate::Keep { last_dbid: 0 };
        assert_eq!(
            job.judge(&attempt(true, &["+OK", "+OK", "+OK", "+OK"], None), true),
            done(&[0, 1, 2], Ok(()), keep)
        );
        let busy = "-BUSYKEY Target key name already exists.";
        assert_eq!(
            job.judge(&attempt(false, &["+OK", busy, "-ERR other"], None), true),
            done(
                &[0],
                Err("ERR Target instance replied with error: BUSYKEY Target key name already exists."),
                SocketFate::Keep { last_dbid: -1 }
            )
        );
        // A failed SELECT fails every key.
        let bad_db = "-ERR DB index is out of range";
        assert_eq!(
            job.judge(&attempt(true, &[bad_db, "+OK", "+OK", "+OK"], None), true),
            done(
                &[],
                Err("ERR Target instance replied with error: ERR DB index is out of range"),
                SocketFate::Keep { last_dbid: -1 }
            )
        );
        let mut auth = sample_job();
        auth.password = Some(Bytes::from_static(b"x"));
        let wrongpass = "-WRONGPASS invalid username-password pair or user is disabled.";
        assert_eq!(
            auth.judge(&attempt(false, &[wrongpass, "-NOAUTH Authentication required.", "+OK", "+OK"], None), false),
            done(
                &[],
                Err("ERR Target instance replied with error: WRONGPASS invalid username-password pair or user is disabled."),
                SocketFate::Keep { last_dbid: -1 }
            )
        );
    }

    #[test]
    fn judge_retries_once_before_the_first_restore_reply_but_not_a_timeout() {
        let job = sample_job();
        let read = |timed_out| Some(IoFailure::Read { timed_out });
        let write = |timed_out| Some(IoFailure::Write { timed_out });
        assert_eq!(job.judge(&attempt(true, &[], write(false)), true), Step::Retry);
        assert_eq!(job.judge(&attempt(true, &["+OK"], read(false)), true), Step::Retry);
        assert_eq!(job.judge(&attempt(true, &[], read(false)), true), Step::Retry);
        let reading = Err(IOERR_READING);
        assert_eq!(job.judge(&attempt(true, &[], read(false)), false), done(&[], reading, SocketFate::Close));
        assert_eq!(job.judge(&attempt(true, &["+OK"], read(true)), true), done(&[], reading, SocketFate::Close));
        assert_eq!(job.judge(&attempt(true, &[], write(true)), true), done(&[], Err(IOERR_WRITING), SocketFate::Close));
        assert_eq!(
            job.judge(&attempt(true, &[], write(false)), false),
            done(&[], Err(IOERR_WRITING), SocketFate::Close)
        );
        // After one RESTORE reply there is no retry: the keys acknowledged so far are moved.
        assert_eq!(
            job.judge(&attempt(true, &["+OK", "+OK"], read(false)), true),
            done(&[0], reading, SocketFate::Close)
        );
        let busy = "-BUSYKEY Target key name already exists.";
        assert_eq!(
            job.judge(&attempt(false, &["+OK", busy], read(false)), true),
            done(
                &[0],
                Err("ERR Target instance replied with error: BUSYKEY Target key name already exists."),
                SocketFate::Close
            )
        );
        let connecting = done(&[], Err(IOERR_CONNECTING), SocketFate::Close);
        assert_eq!(job.judge(&attempt(false, &[], Some(IoFailure::Connect)), true), connecting);
    }

    #[test]
    fn take_line_reads_as_sync_read_line() {
        let mut buf = BytesMut::from(&b"+OK\r\n-ERR x\n\r\n\npartial"[..]);
        assert_eq!(take_line(&mut buf), Some(Ok(b"+OK".to_vec())));
        assert_eq!(take_line(&mut buf), Some(Ok(b"-ERR x".to_vec())));
        assert_eq!(take_line(&mut buf), Some(Ok(Vec::new())), "a lone CR is one byte read");
        assert_eq!(take_line(&mut buf), Some(Err(IoFailure::Read { timed_out: false })));
        assert_eq!(take_line(&mut buf), None);
        let mut long = BytesMut::from(&[b'-'; 1500][..]);
        long.extend_from_slice(b"\r\n");
        assert_eq!(take_line(&mut long).map(|l| l.map(|l| l.len())), Some(Ok(MIGRATE_REPLY_LINE_MAX)));
        assert_eq!(take_line(&mut long).map(|l| l.map(|l| l.len())), Some(Ok(1500 - MIGRATE_REPLY_LINE_MAX)));
        assert!(long.is_empty());
        assert_eq!(target_error_text(b"-A\rB\0C"), b"ERR Target instance replied with error: A B".to_vec());
    }

    #[test]
    fn finish_deletes_acked_keys_and_propagates_one_del() {
        let mut srv = propagating();
        for k in ["a", "b", "c"] {
            run(&mut srv, &["SET", k, "v"]);
        }
        take_propagated(&mut srv);
        let (_, job) = job_of(&mut srv, &["MIGRATE", "127.0.0.1", "1", "", "0", "10", "KEYS", "a", "b", "c"]);
        let job = job.expect("a job");
        let outcome = match job.judge(&attempt(true, &["+OK", "+OK", "-BUSYKEY x", "+OK"], None), true) {
            Step::Done(o) => o,
            Step::Retry => panic!("no retry"),
        };
        srv.finish_migrate(job, outcome);
        assert_eq!(run(&mut srv, &["PING"]), b"-ERR Target instance replied with error: BUSYKEY x\r\n+PONG\r\n");
        assert_eq!(run(&mut srv, &["EXISTS", "a", "b", "c"]), b":1\r\n");
        assert_eq!(take_propagated(&mut srv), vec![words(&["DEL", "a", "c"])]);
        assert_eq!(srv.stats.errors.get("ERR"), Some(&1));
    }

    #[test]
    fn finish_with_copy_keeps_the_keys_and_propagates_nothing() {
        let mut srv = propagating();
        run(&mut srv, &["SET", "a", "v"]);
        take_propagated(&mut srv);
        let (_, job) = job_of(&mut srv, &["MIGRATE", "127.0.0.1", "1", "a", "0", "10", "COPY"]);
        let job = job.expect("a job");
        srv.finish_migrate(job, Outcome { acked: vec![0], reply: Ok(()), socket: SocketFate::Keep { last_dbid: 0 } });
        assert_eq!(run(&mut srv, &["GET", "a"]), b"+OK\r\n$1\r\nv\r\n");
        assert!(take_propagated(&mut srv).is_empty());
    }

    #[test]
    fn inside_exec_migrate_is_refused() {
        let mut srv = testing::server();
        run(&mut srv, &["SET", "a", "v"]);
        run(&mut srv, &["MULTI"]);
        run(&mut srv, &["MIGRATE", "127.0.0.1", "1", "a", "0", "10"]);
        let reply = run(&mut srv, &["EXEC"]);
        assert_eq!(reply, b"*1\r\n-ERR MIGRATE inside MULTI/EXEC is not supported by redsim\r\n");
        assert!(srv.migrate_job.is_none());
    }
}

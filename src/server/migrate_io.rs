//! MIGRATE's I/O side (Redis's `migrateGetSocket` and the sync reads and writes of
//! `migrateCommand`): the cache of connections to targets, and one exchange per MIGRATE, run
//! by the driver while every other client waits. What the replies mean is decided in
//! `commands::migrate`, which never sees a socket.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::ErrorKind;
use std::sync::Mutex;

use bytes::BytesMut;

use crate::commands::migrate::{
    take_line, Attempt, IoFailure, MigrateJob, Outcome, SocketFate, Step, MIGRATE_SOCKET_CACHE_ITEMS,
    MIGRATE_SOCKET_CACHE_TTL_SECS, MIGRATE_WRITE_CHUNK_LEN,
};
use crate::env::rt::{AsyncReadExt, AsyncWriteExt};
use crate::env::{Clock, Conn, Env, Net};

/// Bytes asked of the socket per read of replies.
const REPLY_READ_LEN: usize = 4 * 1024;

/// A connection to a target, kept between MIGRATEs (Redis's `migrateCachedSocket`).
struct CachedSocket {
    conn: Box<dyn Conn>,
    /// Bytes read past the last reply line.
    buf: BytesMut,
    /// The db the connection has selected; -1: unknown.
    last_dbid: i64,
    last_use_unix_secs: u64,
}

/// Connections by `host:port` as given to MIGRATE (Redis's `server.migrate_cached_sockets`).
/// A MIGRATE takes its connection out and puts it back when it keeps it, so the lock is never
/// held across I/O.
#[derive(Default)]
pub struct MigrateSockets {
    by_name: BTreeMap<Vec<u8>, CachedSocket>,
}

impl MigrateSockets {
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// Redis's `migrateCloseTimedoutSockets` (serverCron, once a second).
    pub fn close_idle(&mut self, now_unix_secs: u64) {
        self.by_name.retain(|_, s| now_unix_secs.saturating_sub(s.last_use_unix_secs) <= MIGRATE_SOCKET_CACHE_TTL_SECS);
    }

    /// Keeps `sock` under `name`. When the cache is full one entry goes: Redis drops a random
    /// one; this drops the one idle longest, so that no randomness is needed.
    fn put(&mut self, name: Vec<u8>, sock: CachedSocket) {
        if self.by_name.len() >= MIGRATE_SOCKET_CACHE_ITEMS {
            let oldest = self.by_name.iter().min_by_key(|(_, s)| s.last_use_unix_secs).map(|(n, _)| n.clone());
            if let Some(n) = oldest {
                self.by_name.remove(&n);
            }
        }
        self.by_name.insert(name, sock);
        debug_assert!(self.by_name.len() <= MIGRATE_SOCKET_CACHE_ITEMS);
    }
}

/// Runs `job`'s exchange: on the cached connection or a new one, retried once on a new
/// connection when `MigrateJob::judge` says so. The connection is kept or closed as judged.
pub async fn exchange<E: Env>(env: &E, sockets: &Mutex<MigrateSockets>, job: &MigrateJob) -> Outcome {
    let name = job.cache_name();
    let mut may_retry = true;
    loop {
        let cached = sockets.lock().unwrap_or_else(|e| e.into_inner()).by_name.remove(&name);
        let (attempt, sock) = attempt_once(env, job, cached).await;
        match job.judge(&attempt, may_retry) {
            Step::Retry => may_retry = false,
            Step::Done(outcome) => {
                if let (SocketFate::Keep { last_dbid }, Some(mut sock)) = (outcome.socket, sock) {
                    sock.last_dbid = last_dbid;
                    sockets.lock().unwrap_or_else(|e| e.into_inner()).put(name, sock);
                }
                return outcome;
            }
        }
    }
}

/// One try: connect unless cached, write the request, read the replies it brings back.
async fn attempt_once<E: Env>(
    env: &E,
    job: &MigrateJob,
    cached: Option<CachedSocket>,
) -> (Attempt, Option<CachedSocket>) {
    let clock = env.clock();
    let now_unix_secs = clock.unix_ms() / 1000;
    let mut sock = match cached {
        Some(s) => s,
        None => match connect(env, job).await {
            Ok(conn) => CachedSocket { conn, buf: BytesMut::new(), last_dbid: -1, last_use_unix_secs: 0 },
            Err(failure) => {
                // The request would have been built for a new connection: with a SELECT.
                return (Attempt { select: true, lines: Vec::new(), failure: Some(failure) }, None);
            }
        },
    };
    sock.last_use_unix_secs = now_unix_secs;
    let select = sock.last_dbid != job.dest_db;
    let mut attempt = Attempt { select, lines: Vec::new(), failure: None };
    let request = job.request(select);
    for chunk in request.chunks(MIGRATE_WRITE_CHUNK_LEN) {
        let written = within(clock, job.timeout_ms, async {
            sock.conn.write_all(chunk).await?;
            sock.conn.flush().await
        })
        .await;
        match written {
            Some(Ok(())) => {}
            failed => {
                attempt.failure = Some(IoFailure::Write { timed_out: failed.is_none() });
                return (attempt, None);
            }
        }
    }
    let expected = job.replies_expected(select);
    while attempt.lines.len() < expected {
        match take_line(&mut sock.buf) {
            Some(Ok(line)) => attempt.lines.push(line),
            Some(Err(failure)) => {
                attempt.failure = Some(failure);
                return (attempt, None);
            }
            None => {
                sock.buf.reserve(REPLY_READ_LEN);
                match within(clock, job.timeout_ms, sock.conn.read_buf(&mut sock.buf)).await {
                    Some(Ok(n)) if n > 0 => {}
                    failed => {
                        attempt.failure = Some(IoFailure::Read { timed_out: failed.is_none() });
                        return (attempt, None);
                    }
                }
            }
        }
    }
    (attempt, Some(sock))
}

/// A new connection to the target. Redis 7.0's blocking connect only waits for the socket to
/// become writable, so a refused connection shows up as the write failing (and is retried);
/// only a name that does not resolve or a connect that times out is a connect error.
async fn connect<E: Env>(env: &E, job: &MigrateJob) -> Result<Box<dyn Conn>, IoFailure> {
    let addr = job.target().ok_or(IoFailure::Connect)?;
    match within(env.clock(), job.timeout_ms, env.net().connect(addr)).await {
        Some(Ok(conn)) => Ok(Box::new(conn)),
        // These come back from connect() itself, which Redis reports as a connect error.
        Some(Err(e)) if matches!(e.kind(), ErrorKind::NetworkUnreachable | ErrorKind::HostUnreachable) => {
            Err(IoFailure::Connect)
        }
        Some(Err(_)) => Err(IoFailure::Write { timed_out: false }),
        None => Err(IoFailure::Connect),
    }
}

/// `fut`'s output, or None when `timeout_ms` passed first.
async fn within<C: Clock, T>(clock: &C, timeout_ms: u64, fut: impl Future<Output = T>) -> Option<T> {
    crate::env::rt::select! {
        v = fut => Some(v),
        _ = clock.sleep_ms(timeout_ms) => None,
    }
}

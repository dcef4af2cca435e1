//! A toy append-only log server, small enough to be obviously right, to prove that the
//! simulator, its power failures and the durability checker catch a durability bug: the planted
//! `skip-fsync` bug acknowledges some appends before they are synced.
//!
//! Protocol (RESP): `APPEND <id>` → `+OK` once the record is durable; `READ` → the ids in log
//! order. File `log` holds records `[len u32 = 8][fnv32 of payload][id u64]`, little endian.
//! Recovery keeps the longest valid prefix (a torn or garbage tail fails its checksum) and cuts
//! the file there, so later appends follow valid data.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use redsim::env::{write_all_at, Disk, DiskFile, Env, Listener, Net, Rng, SeededRng};
use redsim::protocol::frame::Frame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::env::{SimEnv, SlowFile};
use crate::trace::fnv1a64;

const LOG_FILE: &str = "log";
const RECORD_BYTES: usize = 16;
const PAYLOAD_BYTES: u32 = 8;

/// Bugs the simulator can plant; never compiled into the real server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bug {
    /// Acknowledge one append in four without fsyncing it.
    SkipFsync,
    /// redsim's AOF acknowledges without fsyncing (`always`) or never fsyncs (`everysec`).
    AofSkipFsync,
    /// redsim's AOF takes a failed fsync for a successful one.
    AofIgnoreFsyncError,
    /// redsim's backlog serves a partial resync from one byte too far.
    ReplBacklogOffByOne,
    /// redsim's PSYNC continues any replication ID.
    PsyncStaleReplid,
    /// redsim's replicas expire keys by their own clock.
    ReplicaExpiresKeys,
    /// redsim's sentinels vote for a second candidate in an epoch they already voted in.
    SentinelVotesTwice,
    /// redsim's sentinels promote the replica with the lowest replication offset.
    FailoverPicksLowestOffset,
    /// redsim's cluster nodes go on serving a slot they owned once, after it moved away.
    ClusterServesLostSlot,
    /// redsim's masters never refuse a write for lack of good replicas (min-replicas-to-write).
    MinReplicasIgnored,
}

impl Bug {
    pub fn parse(s: &str) -> Option<Bug> {
        match s {
            "skip-fsync" => Some(Bug::SkipFsync),
            "aof-skip-fsync" => Some(Bug::AofSkipFsync),
            "aof-ignore-fsync-error" => Some(Bug::AofIgnoreFsyncError),
            "repl-backlog-off-by-one" => Some(Bug::ReplBacklogOffByOne),
            "psync-stale-replid" => Some(Bug::PsyncStaleReplid),
            "replica-expires-keys" => Some(Bug::ReplicaExpiresKeys),
            "sentinel-votes-twice" => Some(Bug::SentinelVotesTwice),
            "failover-picks-lowest-offset" => Some(Bug::FailoverPicksLowestOffset),
            "cluster-serves-lost-slot" => Some(Bug::ClusterServesLostSlot),
            "min-replicas-ignored" => Some(Bug::MinReplicasIgnored),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Bug::SkipFsync => "skip-fsync",
            Bug::AofSkipFsync => "aof-skip-fsync",
            Bug::AofIgnoreFsyncError => "aof-ignore-fsync-error",
            Bug::ReplBacklogOffByOne => "repl-backlog-off-by-one",
            Bug::PsyncStaleReplid => "psync-stale-replid",
            Bug::ReplicaExpiresKeys => "replica-expires-keys",
            Bug::SentinelVotesTwice => "sentinel-votes-twice",
            Bug::FailoverPicksLowestOffset => "failover-picks-lowest-offset",
            Bug::ClusterServesLostSlot => "cluster-serves-lost-slot",
            Bug::MinReplicasIgnored => "min-replicas-ignored",
        }
    }

    /// The catalogue: every planted bug with the scenarios (files under `scenarios/`, without
    /// `.toml`) written to catch it. `redsim-sim bugs` runs it and prints the seeds needed.
    pub const CATALOGUE: [(Bug, &'static str); 14] = [
        (Bug::SkipFsync, "toylog_power"),
        (Bug::AofSkipFsync, "aof_always"),
        (Bug::AofSkipFsync, "aof_everysec"),
        (Bug::AofIgnoreFsyncError, "aof_fsync_eio_always"),
        (Bug::ReplBacklogOffByOne, "repl_partition_short"),
        (Bug::ReplBacklogOffByOne, "repl_replica_restart"),
        (Bug::PsyncStaleReplid, "repl_demote_divergent"),
        (Bug::ReplicaExpiresKeys, "repl_partition_short"),
        (Bug::SentinelVotesTwice, "sentinel_failover"),
        (Bug::SentinelVotesTwice, "sentinel_chaos"),
        (Bug::FailoverPicksLowestOffset, "sentinel_failover"),
        (Bug::ClusterServesLostSlot, "cluster_reshard"),
        (Bug::ClusterServesLostSlot, "cluster_failover"),
        (Bug::MinReplicasIgnored, "repl_min_replicas"),
    ];

    /// The names `--bug` accepts.
    pub const NAMES: &'static str = "skip-fsync, aof-skip-fsync, aof-ignore-fsync-error, repl-backlog-off-by-one, \
                                     psync-stale-replid, replica-expires-keys, sentinel-votes-twice, \
                                     failover-picks-lowest-offset, cluster-serves-lost-slot, min-replicas-ignored";

    /// The service the bug is planted in.
    pub fn service(self) -> crate::scenario::Service {
        match self {
            Bug::SkipFsync => crate::scenario::Service::Toylog,
            Bug::AofSkipFsync
            | Bug::AofIgnoreFsyncError
            | Bug::ReplBacklogOffByOne
            | Bug::PsyncStaleReplid
            | Bug::ReplicaExpiresKeys
            | Bug::SentinelVotesTwice
            | Bug::FailoverPicksLowestOffset
            | Bug::ClusterServesLostSlot
            | Bug::MinReplicasIgnored => crate::scenario::Service::Redsim,
        }
    }

    /// The AOF bug for redsim nodes.
    pub fn aof(self) -> Option<redsim::persistence::aof::PlantedBug> {
        use redsim::persistence::aof::PlantedBug;
        match self {
            Bug::SkipFsync
            | Bug::ReplBacklogOffByOne
            | Bug::PsyncStaleReplid
            | Bug::ReplicaExpiresKeys
            | Bug::SentinelVotesTwice
            | Bug::FailoverPicksLowestOffset
            | Bug::ClusterServesLostSlot
            | Bug::MinReplicasIgnored => None,
            Bug::AofSkipFsync => Some(PlantedBug::SkipFsync),
            Bug::AofIgnoreFsyncError => Some(PlantedBug::IgnoreFsyncError),
        }
    }
}

impl Bug {
    /// The sentinel bug for redsim sentinels.
    pub fn sentinel(self) -> Option<redsim::sentinel::PlantedBug> {
        use redsim::sentinel::PlantedBug;
        match self {
            Bug::SentinelVotesTwice => Some(PlantedBug::VotesTwice),
            Bug::FailoverPicksLowestOffset => Some(PlantedBug::PicksLowestOffset),
            _ => None,
        }
    }

    /// The replication bug for redsim nodes.
    pub fn repl(self) -> Option<redsim::replication::PlantedBug> {
        use redsim::replication::PlantedBug;
        match self {
            Bug::ReplBacklogOffByOne => Some(PlantedBug::BacklogOffByOne),
            Bug::PsyncStaleReplid => Some(PlantedBug::PsyncStaleReplid),
            Bug::ReplicaExpiresKeys => Some(PlantedBug::ReplicaExpiresKeys),
            Bug::MinReplicasIgnored => Some(PlantedBug::MinReplicasIgnored),
            _ => None,
        }
    }

    /// The cluster bug for redsim nodes.
    pub fn cluster(self) -> Option<redsim::cluster::PlantedBug> {
        match self {
            Bug::ClusterServesLostSlot => Some(redsim::cluster::PlantedBug::ServesLostSlot),
            _ => None,
        }
    }
}

fn checksum(payload: &[u8]) -> u32 {
    let h = fnv1a64(0xcbf2_9ce4_8422_2325, payload);
    (h ^ (h >> 32)) as u32
}

fn record(id: u64) -> [u8; RECORD_BYTES] {
    let payload = id.to_le_bytes();
    let mut r = [0u8; RECORD_BYTES];
    r[..4].copy_from_slice(&PAYLOAD_BYTES.to_le_bytes());
    r[4..8].copy_from_slice(&checksum(&payload).to_le_bytes());
    r[8..].copy_from_slice(&payload);
    r
}

/// The ids of the longest valid prefix of `bytes`, and its length.
pub fn parse_log(bytes: &[u8]) -> (Vec<u64>, usize) {
    let mut ids = Vec::new();
    let mut off = 0;
    while let Some(r) = bytes.get(off..off + RECORD_BYTES) {
        let len = u32::from_le_bytes(r[..4].try_into().expect("4 bytes"));
        let sum = u32::from_le_bytes(r[4..8].try_into().expect("4 bytes"));
        if len != PAYLOAD_BYTES || sum != checksum(&r[8..]) {
            break;
        }
        ids.push(u64::from_le_bytes(r[8..].try_into().expect("8 bytes")));
        off += RECORD_BYTES;
    }
    (ids, off)
}

struct Log {
    file: SlowFile,
    len: u64,
    ids: Vec<u64>,
    /// After a failed write or fsync nothing more is acknowledged: what was written before the
    /// error may never reach the disk (fsyncgate).
    broken: bool,
    rng: SeededRng,
    bug: Option<Bug>,
}

impl Log {
    async fn append(&mut self, id: u64) -> Result<(), String> {
        if self.broken {
            return Err("ERR log is broken after an I/O error".into());
        }
        let rec = record(id);
        if let Err(e) = write_all_at(&self.file, &rec, self.len).await {
            self.broken = true;
            return Err(format!("ERR write: {e}"));
        }
        let skip = self.bug == Some(Bug::SkipFsync) && self.rng.below(4) == 0;
        if !skip {
            if let Err(e) = self.file.sync_data().await {
                self.broken = true;
                return Err(format!("ERR fsync: {e}"));
            }
        }
        self.len += RECORD_BYTES as u64;
        self.ids.push(id);
        Ok(())
    }
}

async fn recover(env: &SimEnv) -> io::Result<Log> {
    let disk = env.disk();
    let file = disk.open(LOG_FILE, true).await?;
    // A new file's directory entry is durable only after sync_dir: without it a power loss
    // takes the whole log, fsynced records included.
    disk.sync_dir().await?;
    let len = file.len().await?;
    let mut bytes = vec![0u8; len as usize];
    let mut off = 0;
    while off < bytes.len() {
        let n = file.read_at(&mut bytes[off..], off as u64).await?;
        if n == 0 {
            break;
        }
        off += n;
    }
    let (ids, valid) = parse_log(&bytes[..off]);
    if (valid as u64) < len {
        file.set_len(valid as u64).await?;
        file.sync_data().await?;
    }
    env.trace().event(
        env.world_us(),
        &format!("{} toylog: recovered {} records, cut {} bytes of tail", env.name(), ids.len(), len - valid as u64),
    );
    Ok(Log { file, len: valid as u64, ids, broken: false, rng: env.rng(), bug: None })
}

/// Runs the toy log server on `addr` until the node dies.
pub async fn serve(env: SimEnv, addr: SocketAddr, bug: Option<Bug>) -> io::Result<()> {
    let mut log = recover(&env).await?;
    log.bug = bug;
    let log = Arc::new(tokio::sync::Mutex::new(log));
    let listener = env.net().bind(addr).await?;
    loop {
        let (conn, _) = listener.accept().await?;
        env.spawn(serve_conn(conn, log.clone()));
    }
}

async fn serve_conn(mut conn: crate::env::SimConn, log: Arc<tokio::sync::Mutex<Log>>) {
    let mut buf = BytesMut::new();
    loop {
        let frame = loop {
            match Frame::parse(&buf) {
                Ok(Some((f, used))) => {
                    let _ = buf.split_to(used);
                    break f;
                }
                Ok(None) => {}
                Err(_) => return,
            }
            buf.reserve(1024);
            match conn.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        };
        let reply = handle(frame, &log).await;
        let mut out = Vec::new();
        reply.encode(&mut out);
        if conn.write_all(&out).await.is_err() || conn.flush().await.is_err() {
            return;
        }
    }
}

async fn handle(frame: Frame, log: &tokio::sync::Mutex<Log>) -> Frame {
    let Frame::Array(args) = frame else {
        return Frame::Error("ERR expected an array".into());
    };
    let args: Vec<&[u8]> = args.iter().filter_map(|a| a.as_bytes()).collect();
    match args.as_slice() {
        [cmd, id] if cmd.eq_ignore_ascii_case(b"APPEND") => {
            let Some(id) = std::str::from_utf8(id).ok().and_then(|s| s.parse().ok()) else {
                return Frame::Error("ERR id is not an integer".into());
            };
            match log.lock().await.append(id).await {
                Ok(()) => Frame::Simple("OK".into()),
                Err(e) => Frame::Error(e),
            }
        }
        [cmd] if cmd.eq_ignore_ascii_case(b"READ") => {
            let log = log.lock().await;
            Frame::Array(log.ids.iter().map(|&id| Frame::Integer(id as i64)).collect())
        }
        _ => Frame::Error("ERR unknown command".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_parse_stops_at_a_torn_record() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&record(1));
        bytes.extend_from_slice(&record(2));
        let mut torn = record(3);
        torn[12] ^= 0xff;
        bytes.extend_from_slice(&torn);
        bytes.extend_from_slice(&record(4));
        assert_eq!(parse_log(&bytes), (vec![1, 2], 32));
        assert_eq!(parse_log(&[0u8; 40]), (vec![], 0));
    }
}

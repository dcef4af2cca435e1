//! Replication state shared by both roles: the replication IDs, the stream offset, the backlog
//! and the encoding of the stream (Redis's `replicationFeedSlaves`). Sans-IO: the driver moves
//! the bytes; this module decides what they are and whether a PSYNC can continue.

pub mod backlog;
pub mod handshake;
pub mod info;
pub mod link;
pub mod master;
pub mod sync;

use bytes::Bytes;

use crate::env::Rng;
pub use backlog::Backlog;
pub use info::{LinkState, MasterLink};
pub use master::{ReplicaInfo, Replicas, SyncState};

/// Replication bugs the simulator can plant to prove its checkers catch them. Only the
/// simulator build (`--cfg madsim`) can turn one on; in the real build `planted` is always false.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlantedBug {
    /// The backlog serves a partial resync from one byte past the offset the replica asked for.
    BacklogOffByOne,
    /// PSYNC continues whatever replication ID the replica names.
    PsyncStaleReplid,
    /// A replica deletes keys whose TTL passed by its own clock instead of waiting for DELs.
    ReplicaExpiresKeys,
    /// A master never refuses a write for lack of good replicas (min-replicas-to-write).
    MinReplicasIgnored,
}

#[cfg(madsim)]
thread_local! {
    static PLANTED: std::cell::Cell<Option<PlantedBug>> = const { std::cell::Cell::new(None) };
}

/// Plants `bug` for every node run on this thread (a madsim runtime runs on one thread).
#[cfg(madsim)]
pub fn plant(bug: Option<PlantedBug>) {
    PLANTED.with(|p| p.set(bug));
}

/// Whether `bug` is planted on this thread; always false outside the simulator.
pub fn planted(bug: PlantedBug) -> bool {
    #[cfg(madsim)]
    {
        PLANTED.with(|p| p.get() == Some(bug))
    }
    #[cfg(not(madsim))]
    {
        let _ = bug;
        false
    }
}

/// INFO stats' replication counters.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReplStats {
    pub sync_full: u64,
    pub sync_partial_ok: u64,
    pub sync_partial_err: u64,
}

/// Everything replication keeps in the server: this node's stream, its replicas, and its
/// master link when it is a replica.
#[derive(Debug)]
pub struct Replication {
    pub state: ReplState,
    pub replicas: Replicas,
    /// Some when this node is a replica (REPLICAOF host port).
    pub master: Option<MasterLink>,
    /// Bumped by every REPLICAOF: a link task whose generation is older stops.
    pub link_generation: u64,
    /// A link task must be started for the current generation (the driver does it).
    pub link_start_requested: bool,
    /// The client the master's stream is applied through, while the link is up.
    pub master_client: Option<u64>,
    /// Stream bytes a replica in full sync must get once its RDB is through, by client id.
    pub pending: std::collections::BTreeMap<u64, Vec<u8>>,
    pub stats: ReplStats,
    /// Monotonic ms of the last PING the master fed to its replicas.
    pub last_ping_ms: u64,
    /// WAIT asked the replicas for an ACK; sent once per turn (Redis's `get_ack_from_slaves`).
    pub get_ack_requested: bool,
    /// What this node's next PSYNC offers (Redis's cached master): the history it holds and
    /// its offset. None: `PSYNC ? -1`.
    pub cached: Option<(String, u64)>,
    /// The dataset follows a replication history (synced from a master, or its own as a
    /// master), so a PSYNC may continue it.
    pub has_history: bool,
    /// Monotonic ms since when a master with a backlog has no replica (repl-backlog-ttl).
    pub no_replicas_since_ms: Option<u64>,
    /// The BGSAVE to disk that replicas in `wait_bgsave` wait for (`repl-diskless-sync no`).
    pub disk_sync: Option<DiskSync>,
    /// Where each turn's writes are encoded for the stream; kept to reuse its allocation.
    pub scratch: Vec<u8>,
    /// A coordinated failover this master runs (the FAILOVER command).
    pub failover: Option<Failover>,
}

impl Replication {
    pub fn new(rng: &mut impl Rng) -> Self {
        Replication {
            state: ReplState::new(rng),
            replicas: Replicas::default(),
            master: None,
            link_generation: 0,
            link_start_requested: false,
            master_client: None,
            pending: Default::default(),
            stats: ReplStats::default(),
            last_ping_ms: 0,
            get_ack_requested: false,
            cached: None,
            has_history: false,
            no_replicas_since_ms: None,
            disk_sync: None,
            scratch: Vec::new(),
            failover: None,
        }
    }
}

/// Where a coordinated failover is (Redis's `failover_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailoverState {
    /// Writes are paused; waiting for the target (or any replica) to acknowledge our offset.
    WaitForSync,
    /// This node follows the target and asks it, with `PSYNC replid offset FAILOVER`, to take over.
    InProgress,
}

impl FailoverState {
    /// The value of INFO's `master_failover_state`.
    pub fn name(self) -> &'static str {
        match self {
            FailoverState::WaitForSync => "waiting-for-sync",
            FailoverState::InProgress => "failover-in-progress",
        }
    }
}

/// A FAILOVER [TO host port [FORCE]] [TIMEOUT ms] under way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failover {
    pub state: FailoverState,
    /// The replica to hand over to: given with TO, else the first one found in sync.
    pub target: Option<(String, u16)>,
    /// Monotonic ms when waiting for the sync ends (TIMEOUT).
    pub end_mono_ms: Option<u64>,
    /// FORCE: at the timeout, hand over even to a replica that has not caught up.
    pub force: bool,
}

/// A BGSAVE to disk made for replicas: the history and offset its snapshot was taken at, so
/// that a replica arriving while it runs can share it (with a copy of another waiting
/// replica's buffered stream).
#[derive(Debug, Clone)]
pub struct DiskSync {
    pub pid: u32,
    pub replid: String,
    pub offset: u64,
}

/// A replication ID: 40 random hex characters (`CONFIG_RUN_ID_SIZE`).
pub fn random_replid(rng: &mut impl Rng) -> String {
    let mut id = [0u8; 20];
    rng.fill(&mut id);
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// The all-zero ID Redis shows for "no second ID".
pub const NO_REPLID: &str = "0000000000000000000000000000000000000000";

/// Commands travel in the stream in the AOF's form (a RESP multibulk).
pub use crate::persistence::aof::encode_command;

/// What a master answers to `PSYNC replid offset` (Redis's `masterTryPartialResynchronization`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PsyncAnswer {
    /// `+CONTINUE`: send the backlog from `from` (the replica's offset), then the live stream.
    Continue { from: u64 },
    /// `+FULLRESYNC replid offset` and an RDB. `why` is the log line (None for `PSYNC ? -1`,
    /// which is not counted as a failed partial attempt).
    Full { why: Option<String> },
}

/// The replication IDs and offset of this node, and its backlog.
#[derive(Debug, Clone)]
pub struct ReplState {
    pub replid: String,
    /// The ID of the master this node followed before a promotion, valid up to
    /// `second_replid_offset` (PSYNC2).
    pub replid2: String,
    pub second_replid_offset: i64,
    /// Offset of the last byte of the stream this node produced or applied.
    pub master_repl_offset: u64,
    pub backlog: Option<Backlog>,
    /// The db the stream's last SELECT chose (None: the next command selects).
    pub stream_db: Option<usize>,
}

impl ReplState {
    pub fn new(rng: &mut impl Rng) -> Self {
        ReplState {
            replid: random_replid(rng),
            replid2: NO_REPLID.to_string(),
            second_replid_offset: -1,
            master_repl_offset: 0,
            backlog: None,
            stream_db: None,
        }
    }

    /// A new history (Redis's `changeReplicationId`): nobody can continue the old one.
    pub fn change_replid(&mut self, rng: &mut impl Rng) {
        self.replid = random_replid(rng);
    }

    pub fn clear_replid2(&mut self) {
        self.replid2 = NO_REPLID.to_string();
        self.second_replid_offset = -1;
    }

    /// On promotion (Redis's `shiftReplicationId`): the old ID stays valid up to the current
    /// offset, so replicas of the same old master can continue with us.
    pub fn shift_replid(&mut self, rng: &mut impl Rng) {
        self.replid2 = std::mem::replace(&mut self.replid, random_replid(rng));
        // Replicas ask for the offset of their next byte, hence the +1.
        self.second_replid_offset = self.master_repl_offset as i64 + 1;
    }

    /// Creates the backlog if there is none (the first replica attached).
    pub fn ensure_backlog(&mut self, size: usize) {
        if self.backlog.is_none() {
            self.backlog = Some(Backlog::new(size, self.master_repl_offset));
        }
    }

    /// Appends stream bytes: to the backlog when there is one, and to the offset.
    pub fn feed_bytes(&mut self, bytes: &[u8]) {
        if let Some(b) = &mut self.backlog {
            b.feed(bytes);
        }
        self.master_repl_offset += bytes.len() as u64;
    }

    /// Encodes a write command of db `db` for the stream (with a SELECT first when the db
    /// changes), feeds it, and returns the bytes to send to the attached replicas.
    pub fn feed_command(&mut self, db: usize, argv: &[Bytes], out: &mut Vec<u8>) {
        let start = out.len();
        if self.stream_db != Some(db) {
            let mut n = itoa::Buffer::new();
            let dbs = Bytes::copy_from_slice(n.format(db).as_bytes());
            encode_command(out, &[Bytes::from_static(b"SELECT"), dbs]);
            self.stream_db = Some(db);
        }
        encode_command(out, argv);
        if let Some(b) = &mut self.backlog {
            b.feed(&out[start..]);
        }
        self.master_repl_offset += (out.len() - start) as u64;
    }

    /// Decides a replica's `PSYNC replid offset`; `name` is how the log names the replica.
    pub fn try_partial(&self, replid: &str, offset: i64, name: &str) -> PsyncAnswer {
        if replid == "?" {
            return PsyncAnswer::Full { why: None };
        }
        let any_id = planted(PlantedBug::PsyncStaleReplid);
        if !any_id && replid != self.replid && (replid != self.replid2 || offset > self.second_replid_offset) {
            let why = if replid != self.replid && replid != self.replid2 {
                format!(
                    "Partial resynchronization not accepted: Replication ID mismatch (Replica asked for '{replid}', my \
                     replication IDs are '{}' and '{}')",
                    self.replid, self.replid2
                )
            } else {
                format!(
                    "Partial resynchronization not accepted: Requested offset for second ID was {offset}, but I can \
                     reply up to {}",
                    self.second_replid_offset
                )
            };
            return PsyncAnswer::Full { why: Some(why) };
        }
        let held = self.backlog.as_ref().and_then(|b| u64::try_from(offset).ok().and_then(|o| b.since(o).map(|_| o)));
        match held {
            Some(from) => PsyncAnswer::Continue { from },
            None => PsyncAnswer::Full {
                why: Some(format!(
                    "Unable to partial resync with replica {name} for lack of backlog (Replica request was: {offset})."
                )),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::SeededRng;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn the_stream_selects_the_db_once_and_counts_every_byte() {
        let mut rng = SeededRng::from_seed(1);
        let mut r = ReplState::new(&mut rng);
        r.ensure_backlog(1024);
        let mut out = Vec::new();
        r.feed_command(0, &[b("SET"), b("k"), b("v")], &mut out);
        r.feed_command(0, &[b("DEL"), b("k")], &mut out);
        r.feed_command(3, &[b("INCR"), b("n")], &mut out);
        let want =
            "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nDEL\r\n$1\r\nk\r\n\
                    *2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n";
        assert_eq!(String::from_utf8_lossy(&out), want);
        assert_eq!(r.master_repl_offset, want.len() as u64);
        let (x, y) = r.backlog.as_ref().unwrap().since(1).unwrap();
        assert_eq!([x, y].concat(), want.as_bytes());
    }

    #[test]
    fn psync_continues_inside_the_backlog_and_falls_back_to_full_outside_it() {
        let mut rng = SeededRng::from_seed(2);
        let mut r = ReplState::new(&mut rng);
        r.ensure_backlog(16);
        r.feed_bytes(&[b'x'; 40]);
        let id = r.replid.clone();
        assert_eq!(r.try_partial(&id, 41, "a:1"), PsyncAnswer::Continue { from: 41 });
        assert_eq!(r.try_partial(&id, 25, "a:1"), PsyncAnswer::Continue { from: 25 });
        assert!(
            matches!(r.try_partial(&id, 24, "a:1"), PsyncAnswer::Full { why: Some(w) } if w.contains("lack of backlog (Replica request was: 24)"))
        );
        assert!(matches!(r.try_partial(&id, 42, "a:1"), PsyncAnswer::Full { why: Some(_) }));
        assert_eq!(r.try_partial("?", -1, "a:1"), PsyncAnswer::Full { why: None });
        assert!(
            matches!(r.try_partial("0123456789012345678901234567890123456789", 30, "a:1"), PsyncAnswer::Full { why: Some(w) } if w.contains("Replication ID mismatch"))
        );
    }

    /// PSYNC2: after a promotion, replicas of the old master continue with the old ID up to
    /// the offset of the switch, not beyond it.
    #[test]
    fn a_promoted_replica_accepts_its_old_masters_id_up_to_the_switch() {
        let mut rng = SeededRng::from_seed(3);
        let mut r = ReplState::new(&mut rng);
        r.ensure_backlog(1024);
        r.feed_bytes(&[b'x'; 100]);
        let old = r.replid.clone();
        r.shift_replid(&mut rng);
        assert_ne!(r.replid, old);
        assert_eq!((r.replid2.as_str(), r.second_replid_offset), (old.as_str(), 101));
        r.feed_bytes(&[b'y'; 10]);
        assert_eq!(r.try_partial(&old, 101, "b:2"), PsyncAnswer::Continue { from: 101 });
        assert!(
            matches!(r.try_partial(&old, 102, "b:2"), PsyncAnswer::Full { why: Some(w) } if w.contains("Requested offset for second ID was 102, but I can reply up to 101"))
        );
    }
}

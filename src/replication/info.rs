//! The node's replication role and INFO replication / ROLE, field by field as Redis 7.0.

use super::master::Replicas;
use super::ReplState;

/// The replica side's link to its master, as ROLE names its states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Must connect (after REPLICAOF, or after the link dropped).
    Connect,
    Connecting,
    Handshake,
    /// Receiving the RDB.
    Sync,
    Connected,
}

impl LinkState {
    pub fn role_name(self) -> &'static str {
        match self {
            LinkState::Connect => "connect",
            LinkState::Connecting => "connecting",
            LinkState::Handshake => "handshake",
            LinkState::Sync => "sync",
            LinkState::Connected => "connected",
        }
    }
}

/// A transfer in progress (INFO's master_sync_* fields). `total` is None for a diskless
/// transfer, whose size is unknown until its end (Redis shows -1).
#[derive(Debug, Clone, Copy, Default)]
pub struct SyncProgress {
    pub total: Option<u64>,
    pub read: u64,
    pub last_io_ms: u64,
}

/// This node is a replica of `host:port`.
#[derive(Debug, Clone)]
pub struct MasterLink {
    pub host: String,
    pub port: u16,
    pub state: LinkState,
    /// Monotonic ms of the last byte from the master (None: no link yet).
    pub last_io_ms: Option<u64>,
    /// Wall-clock seconds since when the link is down (None: it never was up).
    pub down_since_unix_secs: Option<u64>,
    pub sync: Option<SyncProgress>,
    /// Stream bytes read (slave_read_repl_offset) and applied (slave_repl_offset).
    pub read_reploff: u64,
    pub reploff: u64,
}

impl MasterLink {
    pub fn new(host: String, port: u16) -> Self {
        MasterLink {
            host,
            port,
            state: LinkState::Connect,
            last_io_ms: None,
            down_since_unix_secs: None,
            sync: None,
            read_reploff: 1,
            reploff: 1,
        }
    }
}

/// What the `# Replication` section shows besides the master link and the replicas.
pub struct InfoView<'a> {
    pub state: &'a ReplState,
    pub replicas: &'a Replicas,
    pub master: Option<&'a MasterLink>,
    pub backlog_size: u64,
    pub replica_priority: i64,
    pub replica_read_only: bool,
    pub replica_announced: bool,
    /// Some(good replicas) when min-replicas-to-write and min-replicas-max-lag are both set.
    pub min_replicas_good: Option<usize>,
    pub now_mono_ms: u64,
    pub now_unix_secs: u64,
    /// `master_failover_state`: no-failover, waiting-for-sync or failover-in-progress.
    pub failover_state: &'a str,
}

/// The body of INFO replication.
pub fn info_replication(v: &InfoView) -> String {
    let mut o = String::new();
    match v.master {
        None => o.push_str("role:master\n"),
        Some(m) => {
            o.push_str(&format!(
                "role:slave\nmaster_host:{}\nmaster_port:{}\nmaster_link_status:{}\nmaster_last_io_seconds_ago:{}\n\
                 master_sync_in_progress:{}\nslave_read_repl_offset:{}\nslave_repl_offset:{}\n",
                m.host,
                m.port,
                if m.state == LinkState::Connected { "up" } else { "down" },
                m.last_io_ms.map(|t| (v.now_mono_ms.saturating_sub(t) / 1000) as i64).unwrap_or(-1),
                u8::from(m.state == LinkState::Sync),
                m.read_reploff,
                m.reploff,
            ));
            if let (LinkState::Sync, Some(s)) = (m.state, m.sync) {
                let total = s.total.map(|t| t as i64).unwrap_or(-1);
                let left = s.total.map(|t| t as i64 - s.read as i64).unwrap_or(-1);
                let perc = match s.total {
                    Some(t) if t > 0 => s.read as f64 * 100.0 / t as f64,
                    _ => 0.0,
                };
                o.push_str(&format!(
                    "master_sync_total_bytes:{total}\nmaster_sync_read_bytes:{}\nmaster_sync_left_bytes:{left}\n\
                     master_sync_perc:{perc:.2}\nmaster_sync_last_io_seconds_ago:{}\n",
                    s.read,
                    v.now_mono_ms.saturating_sub(s.last_io_ms) / 1000
                ));
            }
            if m.state != LinkState::Connected {
                let since = m.down_since_unix_secs.map(|t| v.now_unix_secs.saturating_sub(t) as i64).unwrap_or(-1);
                o.push_str(&format!("master_link_down_since_seconds:{since}\n"));
            }
            o.push_str(&format!(
                "slave_priority:{}\nslave_read_only:{}\nreplica_announced:{}\n",
                v.replica_priority,
                u8::from(v.replica_read_only),
                u8::from(v.replica_announced)
            ));
        }
    }
    o.push_str(&format!("connected_slaves:{}\n", v.replicas.len()));
    if let Some(good) = v.min_replicas_good {
        o.push_str(&format!("min_slaves_good_slaves:{good}\n"));
    }
    o.push_str(&v.replicas.info_lines(v.now_mono_ms));
    let s = v.state;
    let (active, first, histlen) = match &s.backlog {
        Some(b) => (1, b.first_byte_offset(), b.histlen()),
        None => (0, 0, 0),
    };
    o.push_str(&format!(
        "master_failover_state:{}\nmaster_replid:{}\nmaster_replid2:{}\nmaster_repl_offset:{}\n\
         second_repl_offset:{}\nrepl_backlog_active:{active}\nrepl_backlog_size:{}\n\
         repl_backlog_first_byte_offset:{first}\nrepl_backlog_histlen:{histlen}\n",
        v.failover_state, s.replid, s.replid2, s.master_repl_offset, s.second_replid_offset, v.backlog_size,
    ));
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::SeededRng;
    use crate::replication::master::ReplicaInfo;

    fn view<'a>(state: &'a ReplState, replicas: &'a Replicas, master: Option<&'a MasterLink>) -> InfoView<'a> {
        InfoView {
            state,
            replicas,
            master,
            backlog_size: 1048576,
            replica_priority: 100,
            replica_read_only: true,
            replica_announced: true,
            min_replicas_good: None,
            now_mono_ms: 10_000,
            now_unix_secs: 1_000,
            failover_state: "no-failover",
        }
    }

    /// The field list of a real redis-server 7.0.15 master with one replica.
    #[test]
    fn a_master_with_a_replica_shows_redis_fields_in_order() {
        let mut state = ReplState::new(&mut SeededRng::from_seed(1));
        state.replid = "c359183f53d12541db6a456eff993111cb7604ab".into();
        state.ensure_backlog(1048576);
        state.feed_bytes(&[0; 50]);
        let mut replicas = Replicas::default();
        let mut r = ReplicaInfo::new(5, "127.0.0.1".into(), 10_000);
        r.listening_port = 27002;
        replicas.attach(r);
        assert_eq!(
            info_replication(&view(&state, &replicas, None)),
            "role:master\nconnected_slaves:1\nslave0:ip=127.0.0.1,port=27002,state=wait_bgsave,offset=0,lag=0\n\
             master_failover_state:no-failover\nmaster_replid:c359183f53d12541db6a456eff993111cb7604ab\n\
             master_replid2:0000000000000000000000000000000000000000\nmaster_repl_offset:50\nsecond_repl_offset:-1\n\
             repl_backlog_active:1\nrepl_backlog_size:1048576\nrepl_backlog_first_byte_offset:1\nrepl_backlog_histlen:50\n"
        );
    }

    /// A replica whose master is not reachable yet, as redis-server 7.0.15 shows it.
    #[test]
    fn a_replica_before_its_first_sync_shows_redis_fields_in_order() {
        let mut state = ReplState::new(&mut SeededRng::from_seed(1));
        state.replid = "6a02f139c94e626d6a3c8b2015e2013ea9b990d6".into();
        let link = MasterLink::new("127.0.0.1".into(), 27001);
        assert_eq!(
            info_replication(&view(&state, &Replicas::default(), Some(&link))),
            "role:slave\nmaster_host:127.0.0.1\nmaster_port:27001\nmaster_link_status:down\n\
             master_last_io_seconds_ago:-1\nmaster_sync_in_progress:0\nslave_read_repl_offset:1\nslave_repl_offset:1\n\
             master_link_down_since_seconds:-1\nslave_priority:100\nslave_read_only:1\nreplica_announced:1\n\
             connected_slaves:0\nmaster_failover_state:no-failover\nmaster_replid:6a02f139c94e626d6a3c8b2015e2013ea9b990d6\n\
             master_replid2:0000000000000000000000000000000000000000\nmaster_repl_offset:0\nsecond_repl_offset:-1\n\
             repl_backlog_active:0\nrepl_backlog_size:1048576\nrepl_backlog_first_byte_offset:0\nrepl_backlog_histlen:0\n"
        );
    }
}

//! A master's view of its replicas (Redis's `server.slaves` and the per-replica fields of
//! `client`): what each announced with REPLCONF, where its sync stands, what it acknowledged.
//! Sans-IO: INFO's `slaveN:` lines, WAIT's count and min-replicas' count come from here.

use std::collections::BTreeMap;

/// Where a replica's synchronisation stands (Redis's `SLAVE_STATE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncState {
    /// Waiting for a snapshot to start (or for the one in progress to end).
    WaitBgsave,
    /// Receiving the RDB.
    SendBulk,
    /// Receiving the command stream.
    Online,
}

impl SyncState {
    /// The `state=` word of INFO replication.
    pub fn info_name(self) -> &'static str {
        match self {
            SyncState::WaitBgsave => "wait_bgsave",
            SyncState::SendBulk => "send_bulk",
            SyncState::Online => "online",
        }
    }
}

/// One attached replica.
#[derive(Debug, Clone)]
pub struct ReplicaInfo {
    pub client_id: u64,
    /// The peer's address as the master sees it, unless REPLCONF ip-address replaced it.
    pub ip: String,
    pub listening_port: u16,
    pub capa_eof: bool,
    pub capa_psync2: bool,
    pub state: SyncState,
    /// The offset the replica acknowledged last (REPLCONF ACK).
    pub ack_offset: u64,
    /// Monotonic ms of the last ACK (for `lag=` and min-replicas-max-lag).
    pub ack_ms: u64,
    /// After a diskless transfer the stream waits for the replica's first ACK: bytes sent
    /// right behind the EOF mark would hide it from the replica, which looks for the mark at
    /// the end of what it read (Redis's `repl_start_cmd_stream_on_ack`).
    pub stream_on_ack: bool,
    /// Full sync to disk (`repl-diskless-sync no`) while a child it cannot share was
    /// running: the replica waits for the next BGSAVE, with nothing buffered yet.
    pub waiting_next_bgsave: bool,
    /// It asked with PSYNC, so its full sync begins with `+FULLRESYNC` (SYNC gets none).
    pub psync: bool,
}

impl ReplicaInfo {
    pub fn new(client_id: u64, ip: String, now_ms: u64) -> Self {
        ReplicaInfo {
            client_id,
            ip,
            listening_port: 0,
            capa_eof: false,
            capa_psync2: false,
            state: SyncState::WaitBgsave,
            ack_offset: 0,
            ack_ms: now_ms,
            stream_on_ack: false,
            waiting_next_bgsave: false,
            psync: true,
        }
    }

    /// `ip:port`, as the log names a replica (Redis's `replicationGetSlaveName`).
    pub fn name(&self) -> String {
        format!("{}:{}", self.ip, self.listening_port)
    }

    /// Seconds since the last ACK.
    pub fn lag_secs(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.ack_ms) / 1000
    }
}

/// The replicas of this node, by client id (ordered: INFO lists them in attach order).
#[derive(Debug, Clone, Default)]
pub struct Replicas {
    by_client: BTreeMap<u64, ReplicaInfo>,
    /// Attach order (INFO's slave0, slave1...).
    order: Vec<u64>,
}

impl Replicas {
    pub fn attach(&mut self, r: ReplicaInfo) {
        let id = r.client_id;
        if self.by_client.insert(id, r).is_none() {
            self.order.push(id);
        }
    }

    pub fn detach(&mut self, client_id: u64) -> Option<ReplicaInfo> {
        self.order.retain(|&c| c != client_id);
        self.by_client.remove(&client_id)
    }

    pub fn get_mut(&mut self, client_id: u64) -> Option<&mut ReplicaInfo> {
        self.by_client.get_mut(&client_id)
    }

    pub fn get(&self, client_id: u64) -> Option<&ReplicaInfo> {
        self.by_client.get(&client_id)
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// In attach order.
    pub fn iter(&self) -> impl Iterator<Item = &ReplicaInfo> {
        self.order.iter().filter_map(|id| self.by_client.get(id))
    }

    /// The replica at `host:port` as it announced itself (Redis's `findReplica`).
    pub fn by_addr(&self, host: &str, port: i64) -> Option<&ReplicaInfo> {
        self.iter().find(|r| r.ip.eq_ignore_ascii_case(host) && i64::from(r.listening_port) == port)
    }

    /// Records a REPLCONF ACK (offsets only move forward, as Redis).
    pub fn ack(&mut self, client_id: u64, offset: u64, now_ms: u64) {
        if let Some(r) = self.by_client.get_mut(&client_id) {
            r.ack_offset = r.ack_offset.max(offset);
            r.ack_ms = now_ms;
        }
    }

    /// How many online replicas acknowledged at least `offset` (WAIT).
    pub fn acked_at_least(&self, offset: u64) -> usize {
        self.iter().filter(|r| r.state == SyncState::Online && r.ack_offset >= offset).count()
    }

    /// Online replicas whose last ACK is at most `max_lag_secs` old (min-replicas-to-write's
    /// `repl_good_slaves_count`).
    pub fn good_count(&self, now_ms: u64, max_lag_secs: u64) -> usize {
        self.iter().filter(|r| r.state == SyncState::Online && r.lag_secs(now_ms) <= max_lag_secs).count()
    }

    /// INFO replication's `slaveN:` lines.
    pub fn info_lines(&self, now_ms: u64) -> String {
        let mut s = String::new();
        for (i, r) in self.iter().enumerate() {
            s.push_str(&format!(
                "slave{i}:ip={},port={},state={},offset={},lag={}\n",
                r.ip,
                r.listening_port,
                r.state.info_name(),
                r.ack_offset,
                r.lag_secs(now_ms)
            ));
        }
        s
    }
}

/// A parsed `REPLCONF` request (the options a replica sends, and the ACK/GETACK of the link).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replconf {
    /// Options: `listening-port`, `ip-address`, `capa`... (each applied in order).
    Options(Vec<ReplconfOption>),
    Ack {
        offset: u64,
    },
    GetAck,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplconfOption {
    ListeningPort(u16),
    IpAddress(String),
    Capa(String),
    /// Options Redis accepts and this node has no use for (rdb-only, rdb-filter-only...).
    Ignored,
}

/// Parses REPLCONF's arguments (after the command name) with Redis's error texts.
pub fn parse_replconf(args: &[&[u8]]) -> Result<Replconf, String> {
    if args.len() % 2 == 1 {
        return Err("ERR syntax error".into());
    }
    if let Some(first) = args.first() {
        if first.eq_ignore_ascii_case(b"ack") {
            let offset = std::str::from_utf8(args[1]).ok().and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
            return Ok(Replconf::Ack { offset: offset.max(0) as u64 });
        }
        if first.eq_ignore_ascii_case(b"getack") {
            return Ok(Replconf::GetAck);
        }
    }
    let mut opts = Vec::new();
    for pair in args.chunks(2) {
        let (name, value) = (pair[0], pair[1]);
        let value_text = String::from_utf8_lossy(value).into_owned();
        let opt = if name.eq_ignore_ascii_case(b"listening-port") {
            let port =
                value_text.parse::<i64>().map_err(|_| "ERR value is not an integer or out of range".to_string())?;
            ReplconfOption::ListeningPort(port.clamp(0, 65535) as u16)
        } else if name.eq_ignore_ascii_case(b"ip-address") {
            if value.len() > 46 {
                return Err(
                    "ERR REPLCONF ip-address provided by replica instance is too long: 46 bytes maximum.".into()
                );
            }
            ReplconfOption::IpAddress(value_text)
        } else if name.eq_ignore_ascii_case(b"capa") {
            ReplconfOption::Capa(value_text.to_ascii_lowercase())
        } else if name.eq_ignore_ascii_case(b"rdb-only") || name.eq_ignore_ascii_case(b"rdb-filter-only") {
            ReplconfOption::Ignored
        } else {
            return Err(format!("ERR Unrecognized REPLCONF option: {}", String::from_utf8_lossy(name)));
        };
        opts.push(opt);
    }
    Ok(Replconf::Options(opts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_lists_replicas_in_attach_order_with_state_offset_and_lag() {
        let mut rs = Replicas::default();
        for (id, port) in [(7, 6381), (3, 6382)] {
            let mut r = ReplicaInfo::new(id, "127.0.0.1".into(), 1000);
            r.listening_port = port;
            rs.attach(r);
        }
        rs.get_mut(7).unwrap().state = SyncState::Online;
        rs.ack(7, 120, 3500);
        assert_eq!(
            rs.info_lines(4000),
            "slave0:ip=127.0.0.1,port=6381,state=online,offset=120,lag=0\n\
             slave1:ip=127.0.0.1,port=6382,state=wait_bgsave,offset=0,lag=3\n"
        );
        assert_eq!(rs.acked_at_least(100), 1);
        assert_eq!(rs.acked_at_least(121), 0);
        rs.ack(7, 50, 3600);
        assert_eq!(rs.get(7).unwrap().ack_offset, 120, "ACK offsets never go back");
        assert_eq!(rs.good_count(14_000, 10), 1);
        assert_eq!(rs.good_count(15_000, 10), 0);
        rs.detach(7);
        assert_eq!(rs.len(), 1);
        assert!(rs.info_lines(4000).starts_with("slave0:ip=127.0.0.1,port=6382"));
    }

    #[test]
    fn replconf_parses_options_ack_and_getack_with_redis_errors() {
        let p = |a: &[&str]| parse_replconf(&a.iter().map(|s| s.as_bytes()).collect::<Vec<_>>());
        assert_eq!(
            p(&["listening-port", "6380", "capa", "EOF", "capa", "psync2"]).unwrap(),
            Replconf::Options(vec![
                ReplconfOption::ListeningPort(6380),
                ReplconfOption::Capa("eof".into()),
                ReplconfOption::Capa("psync2".into())
            ])
        );
        assert_eq!(p(&["ack", "99"]).unwrap(), Replconf::Ack { offset: 99 });
        assert_eq!(p(&["GETACK", "*"]).unwrap(), Replconf::GetAck);
        assert_eq!(p(&["listening-port"]).unwrap_err(), "ERR syntax error");
        assert_eq!(p(&["foo", "bar"]).unwrap_err(), "ERR Unrecognized REPLCONF option: foo");
        assert_eq!(p(&["listening-port", "x"]).unwrap_err(), "ERR value is not an integer or out of range");
    }
}

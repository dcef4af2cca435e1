//! A connected client's state as the server sees it: selected db, protocol, name, auth, the
//! reply buffer and reply mode, and what CLIENT LIST reports. The driver owns the socket;
//! this owns the rest. Also CLIENT PAUSE: which commands wait, and until when.

use std::collections::BTreeSet;

use bytes::Bytes;

use super::Server;
use crate::commands::meta::flag;
use crate::protocol::ReplyBuf;

#[derive(Debug)]
pub struct Client {
    pub id: u64,
    pub addr: String,
    pub laddr: String,
    pub name: Option<Bytes>,
    pub db: usize,
    pub authenticated: bool,
    pub out: ReplyBuf,
    pub created_ms: u64,
    pub last_interaction_ms: u64,
    /// Full name of the last command run ("client|list").
    pub last_cmd: &'static str,
    pub close_after_reply: bool,
    pub close_asap: bool,
    /// CLIENT NO-EVICT on.
    pub no_evict: bool,
    /// CLIENT REPLY OFF: no replies until CLIENT REPLY ON.
    pub reply_off: bool,
    /// CLIENT REPLY SKIP: the next command's reply is dropped.
    pub reply_skip_next: bool,
    /// ASKING: the next command may touch a slot this node is importing.
    pub cluster_asking: bool,
    /// READONLY: reads of the master's slots are served by this replica.
    pub cluster_readonly: bool,
    /// Waiting for a CLIENT PAUSE to end (CLIENT LIST flag `b`).
    pub postponed: bool,
    /// Blocked on keys (BLPOP...): no reply yet, later requests wait.
    pub blocked: bool,
    /// Bytes waiting in the query buffer (set by the driver; CLIENT LIST `qbuf`).
    pub qbuf: usize,
    pub tot_net_in: u64,
    pub tot_net_out: u64,
    pub tot_cmds: u64,
    /// Whether this connection is a replica's link or this replica's master link.
    pub repl_role: ReplRole,
    /// What a replica announced with REPLCONF before its PSYNC.
    pub repl_announce: ReplAnnounce,
    /// The stream offset right after this client's last write (WAIT waits for it).
    pub woff: u64,
    /// Inside MULTI (CLIENT_MULTI): the queued commands; EXEC runs them.
    pub multi: Option<crate::commands::multi::MultiState>,
    /// Keys this client WATCHes, as (db, key); the server's registry holds the watchers.
    pub watched: Vec<(usize, Bytes)>,
    /// Subscribed channels, patterns (in subscription order) and shard channels.
    pub pubsub: crate::commands::pubsub::Subscriptions,
    /// Since when (mono ms) the output buffer has been over the soft limit of its class.
    pub obuf_soft_limit_since_ms: Option<u64>,
}

/// A connection's part in replication (Redis's CLIENT_SLAVE / CLIENT_MASTER flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplRole {
    None,
    /// A replica of this node, attached by SYNC/PSYNC.
    Replica,
    /// This replica's link to its master: its commands are the master's stream.
    Master,
}

/// REPLCONF options a replica sent before PSYNC.
#[derive(Debug, Clone, Default)]
pub struct ReplAnnounce {
    pub listening_port: u16,
    pub ip: Option<String>,
    pub capa_eof: bool,
    pub capa_psync2: bool,
}

/// Redis's client types (CLIENT LIST TYPE, CLIENT KILL TYPE, output buffer classes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientType {
    Normal,
    Replica,
    Pubsub,
    Master,
}

impl ClientType {
    /// `getClientTypeByName`.
    pub fn by_name(name: &[u8]) -> Option<Self> {
        match name.to_ascii_lowercase().as_slice() {
            b"normal" => Some(Self::Normal),
            b"slave" | b"replica" => Some(Self::Replica),
            b"pubsub" => Some(Self::Pubsub),
            b"master" => Some(Self::Master),
            _ => None,
        }
    }
}

impl Client {
    pub fn new(id: u64, addr: String, laddr: String, now_ms: u64, authenticated: bool) -> Self {
        Client {
            id,
            addr,
            laddr,
            name: None,
            db: 0,
            authenticated,
            out: ReplyBuf::new(2),
            created_ms: now_ms,
            last_interaction_ms: now_ms,
            last_cmd: "NULL",
            close_after_reply: false,
            close_asap: false,
            no_evict: false,
            reply_off: false,
            reply_skip_next: false,
            cluster_asking: false,
            cluster_readonly: false,
            postponed: false,
            blocked: false,
            qbuf: 0,
            tot_net_in: 0,
            tot_net_out: 0,
            tot_cmds: 0,
            repl_role: ReplRole::None,
            repl_announce: ReplAnnounce::default(),
            woff: 0,
            multi: None,
            watched: Vec::new(),
            pubsub: Default::default(),
            obuf_soft_limit_since_ms: None,
        }
    }

    /// Whether a blocking command must answer at once instead of blocking (Redis's
    /// CLIENT_DENY_BLOCKING: inside MULTI, scripts, replicas' links).
    pub fn deny_blocking(&self) -> bool {
        self.multi.is_some()
    }

    pub fn resp(&self) -> u8 {
        self.out.resp
    }

    /// `getClientType`. Replication will give its clients their own types.
    pub fn client_type(&self) -> ClientType {
        if self.repl_role == ReplRole::Replica {
            ClientType::Replica
        } else if self.repl_role == ReplRole::Master {
            ClientType::Master
        } else if self.pubsub.active {
            ClientType::Pubsub
        } else {
            ClientType::Normal
        }
    }

    /// Redis's `islocalClient`: connected from the loopback address.
    pub fn is_local(&self) -> bool {
        let ip = self.addr.rsplit_once(':').map_or(self.addr.as_str(), |(ip, _)| ip);
        ip == "127.0.0.1" || ip == "[::1]"
    }

    /// RESET's `clearClientConnectionState`: db 0, RESP2, the default user's authentication
    /// (`nopass`: it has no password), no name, replies on.
    pub fn reset_connection_state(&mut self, nopass: bool) {
        self.db = 0;
        self.out.resp = 2;
        self.authenticated = nopass;
        self.name = None;
        self.reply_off = false;
        self.reply_skip_next = false;
    }

    /// CLIENT LIST's flags, in Redis's order (`catClientInfoString`); `dirty_cas`: a
    /// watched key changed (the server's watch registry knows).
    fn flags(&self, dirty_cas: bool) -> String {
        let f: String = [
            (self.repl_role == ReplRole::Replica, 'S'),
            (self.repl_role == ReplRole::Master, 'M'),
            (self.pubsub.active, 'P'),
            (self.multi.is_some(), 'x'),
            (self.postponed || self.blocked, 'b'),
            (dirty_cas, 'd'),
            (self.close_after_reply, 'c'),
            (self.close_asap, 'A'),
            (self.no_evict, 'e'),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, c)| *c)
        .collect();
        if f.is_empty() {
            "N".into()
        } else {
            f
        }
    }

    /// One line of CLIENT LIST / CLIENT INFO, fields as Redis 7.0 prints them.
    pub fn info_line(&self, now_ms: u64, dirty_cas: bool) -> String {
        let name = self.name.as_ref().map(|n| String::from_utf8_lossy(n).into_owned()).unwrap_or_default();
        let age = now_ms.saturating_sub(self.created_ms) / 1000;
        let idle = now_ms.saturating_sub(self.last_interaction_ms) / 1000;
        let obl = self.out.len();
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} \
             qbuf={} qbuf-free={} argv-mem=0 multi-mem={} rbs=16384 rbp=16384 obl={} oll=0 omem=0 tot-mem={} \
             events=r cmd={} user=default redir=-1 resp={}",
            self.id,
            self.addr,
            self.laddr,
            self.id + 7,
            name,
            age,
            idle,
            self.flags(dirty_cas),
            self.db,
            self.pubsub.channels.len(),
            self.pubsub.patterns.len(),
            self.pubsub.shard_channels.len(),
            self.multi.as_ref().map_or(-1, |m| m.cmds.len() as i64),
            self.qbuf,
            16384usize.saturating_sub(self.qbuf),
            self.multi.as_ref().map_or(0, |m| m.mem_bytes()),
            obl,
            16384 + 16384 + obl + self.qbuf,
            self.last_cmd,
            self.resp()
        )
    }
}

/// What a CLIENT PAUSE holds back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PauseKind {
    /// Commands that may change the dataset or propagate (CMD_WRITE, CMD_MAY_REPLICATE).
    Write,
    All,
}

/// The pause in effect, if any, and the clients whose next command waits for its end.
#[derive(Debug, Default)]
pub struct ClientPause {
    pub kind: Option<PauseKind>,
    pub end_mono_ms: u64,
    pub postponed: BTreeSet<u64>,
    /// A coordinated failover holds writes back until it ends, whatever CLIENT PAUSE and
    /// CLIENT UNPAUSE do (Redis's `PAUSE_DURING_FAILOVER` purpose).
    pub failover: bool,
}

impl Server {
    /// CLIENT PAUSE: a stricter pause replaces the current one; an equal one can only
    /// extend it; a looser one changes nothing.
    pub fn pause_clients(&mut self, kind: PauseKind, end_mono_ms: u64) {
        let p = &mut self.client_pause;
        match p.kind {
            Some(k) if k > kind => {}
            Some(k) if k == kind => p.end_mono_ms = p.end_mono_ms.max(end_mono_ms),
            _ => {
                p.kind = Some(kind);
                p.end_mono_ms = end_mono_ms;
            }
        }
    }

    /// CLIENT UNPAUSE: the waiting clients run their commands now.
    pub fn unpause_clients(&mut self) {
        self.client_pause.kind = None;
        self.wakeups.extend(self.client_pause.postponed.iter().copied());
    }

    /// The failover's write pause starts (`on`) or ends; at its end the waiting clients run
    /// unless a CLIENT PAUSE still holds them.
    pub fn pause_for_failover(&mut self, on: bool) {
        self.client_pause.failover = on;
        if !on {
            self.wakeups.extend(self.client_pause.postponed.iter().copied());
        }
    }

    /// The pause in effect now; an expired CLIENT PAUSE ends here. The failover's pause
    /// holds writes at least.
    fn pause_now(&mut self) -> Option<PauseKind> {
        if self.client_pause.kind.is_some() && self.now.mono_ms >= self.client_pause.end_mono_ms {
            self.unpause_clients();
        }
        match self.client_pause.kind {
            None if self.client_pause.failover => Some(PauseKind::Write),
            k => k,
        }
    }

    /// Any pause holds writes back; expiry and eviction then delete nothing, so that a
    /// paused master's dataset stays as its replicas last saw it.
    pub fn writes_paused(&mut self) -> bool {
        self.pause_now().is_some()
    }

    /// The end of the pause `argv` must wait for, if it must (Redis checks after lookup and
    /// arity, so unknown commands and arity errors still get their error at once). The
    /// driver then calls `postpone`, waits for a wakeup or that time, and asks again.
    pub fn must_postpone(&mut self, argv: &[Bytes]) -> Option<u64> {
        let kind = self.pause_now()?;
        let top = self.table.lookup(&argv[0])?;
        let cmd = match argv.get(1) {
            Some(sub) if !top.subcommands.is_empty() => self.table.sub(top, sub)?,
            _ => top,
        };
        let arity = cmd.meta.arity;
        let argc = argv.len() as i32;
        if (arity > 0 && arity != argc) || argc < -arity {
            return None;
        }
        let writes = cmd.has(flag::WRITE | flag::MAY_REPLICATE);
        let end = match self.client_pause.kind {
            // The failover's pause has no end of its own: a wakeup ends the wait.
            _ if self.client_pause.failover && writes => u64::MAX,
            Some(_) => self.client_pause.end_mono_ms,
            None => u64::MAX,
        };
        (kind == PauseKind::All || writes).then_some(end)
    }

    pub fn postpone(&mut self, id: u64) {
        self.client_pause.postponed.insert(id);
        if let Some(c) = self.clients.get_mut(&id) {
            c.postponed = true;
        }
    }

    pub fn resume(&mut self, id: u64) {
        self.client_pause.postponed.remove(&id);
        if let Some(c) = self.clients.get_mut(&id) {
            c.postponed = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Client {
        Client::new(5, "127.0.0.1:41028".into(), "127.0.0.1:6379".into(), 1_000, true)
    }

    #[test]
    fn client_list_line_has_redis_fields_in_order() {
        let mut c = client();
        c.name = Some(Bytes::from_static(b"worker"));
        c.db = 3;
        c.last_cmd = "client|list";
        let line = c.info_line(4_500, false);
        let keys: Vec<&str> = line.split(' ').map(|kv| kv.split('=').next().unwrap()).collect();
        assert_eq!(
            keys,
            [
                "id",
                "addr",
                "laddr",
                "fd",
                "name",
                "age",
                "idle",
                "flags",
                "db",
                "sub",
                "psub",
                "ssub",
                "multi",
                "qbuf",
                "qbuf-free",
                "argv-mem",
                "multi-mem",
                "rbs",
                "rbp",
                "obl",
                "oll",
                "omem",
                "tot-mem",
                "events",
                "cmd",
                "user",
                "redir",
                "resp"
            ]
        );
        assert!(line.starts_with(
            "id=5 addr=127.0.0.1:41028 laddr=127.0.0.1:6379 fd=12 name=worker age=3 idle=3 flags=N db=3 "
        ));
        assert!(line.ends_with(" cmd=client|list user=default redir=-1 resp=2"));
    }

    #[test]
    fn client_list_flags_follow_redis_order() {
        let mut c = client();
        c.no_evict = true;
        c.close_asap = true;
        c.close_after_reply = true;
        c.postponed = true;
        assert!(c.info_line(1_000, false).contains(" flags=bcAe "));
    }

    #[test]
    fn reset_restores_a_fresh_connection() {
        let mut c = client();
        c.db = 2;
        c.out.resp = 3;
        c.name = Some(Bytes::from_static(b"x"));
        c.reply_off = true;
        c.reset_connection_state(false);
        assert_eq!((c.db, c.resp(), c.authenticated, c.name.is_none(), c.reply_off), (0, 2, false, true, false));
        assert!(c.is_local());
        assert!(ClientType::by_name(b"REPLICA") == Some(ClientType::Replica));
        assert!(ClientType::by_name(b"nope").is_none());
    }
}

//! Redis Sentinel (Redis 7.0's `sentinel.c`), sans-IO: monitoring (PING, INFO, hello messages
//! through `__sentinel__:hello`, SDOWN/ODOWN, TILT), leader election by epochs, and failover
//! (select the best replica, `REPLICAOF NO ONE`, reconfigure the others, switch the master's
//! address). The state machine takes the time and the replies of the instances it talks to and
//! returns [`Action`]s (connect, send commands, close) that [`driver`] performs over an `Env`.
//!
//! Timing follows Redis's constants; time is the node's monotonic clock, and a jump of the wall
//! clock (or a stall of the process) puts the sentinel in TILT mode as Redis's does.

pub mod commands;
pub mod config;
pub mod driver;
mod failover;
mod instance;

use std::collections::BTreeMap;
use std::fmt;

use crate::env::{Rng, SeededRng};
use crate::protocol::frame::Frame;
use crate::server::log::Level;
pub use instance::{Instance, Link};

pub const INFO_PERIOD: u64 = 10_000;
pub const PING_PERIOD: u64 = 1000;
pub const ASK_PERIOD: u64 = 1000;
pub const PUBLISH_PERIOD: u64 = 2000;
pub const DEFAULT_DOWN_AFTER: u64 = 30_000;
pub const TILT_TRIGGER: u64 = 2000;
pub const TILT_PERIOD: u64 = PING_PERIOD * 30;
pub const DEFAULT_FAILOVER_TIMEOUT: u64 = 180_000;
pub const ELECTION_TIMEOUT: u64 = 10_000;
pub const MAX_PENDING_COMMANDS: u32 = 100;
pub const MIN_LINK_RECONNECT_PERIOD: u64 = 15_000;
pub const SLAVE_RECONF_TIMEOUT: u64 = 10_000;
pub const MAX_DESYNC: u64 = 1000;
pub const DEFAULT_PARALLEL_SYNCS: u32 = 1;
pub const HELLO_CHANNEL: &str = "__sentinel__:hello";
pub const DEFAULT_PORT: u16 = 26379;

/// A host and port as Sentinel keeps them (an IP, or a hostname with `resolve-hostnames`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Addr {
    pub ip: String,
    pub port: u16,
}

impl Addr {
    pub fn new(ip: &str, port: u16) -> Self {
        Addr { ip: ip.to_string(), port }
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.ip, self.port)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Master,
    Replica,
    Sentinel,
}

/// One connection the sentinel keeps: the command link or the pub/sub link of an instance.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkKey {
    pub master: String,
    pub kind: Kind,
    pub addr: Addr,
    pub pubsub: bool,
}

/// What a reply answers, so that it goes to the right handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    Ping,
    Info,
    Publish,
    IsMasterDown,
    /// One of the commands of a `sentinelSendSlaveOf` transaction (replies are not checked).
    ReplicaOf,
    Ignore,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Open `key`'s connection; authenticate with `auth` (user, password) and name it.
    Connect {
        key: LinkKey,
        auth: Option<(Option<String>, String)>,
        client_name: String,
    },
    /// Send commands on an open link; each reply comes back with its tag.
    Send {
        key: LinkKey,
        cmds: Vec<(Vec<Vec<u8>>, Tag)>,
    },
    Close(LinkKey),
}

/// The failover's steps (Redis's `SENTINEL_FAILOVER_STATE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FailoverState {
    None,
    WaitStart,
    SelectSlave,
    SendSlaveofNoone,
    WaitPromotion,
    ReconfSlaves,
    UpdateConfig,
}

impl FailoverState {
    pub fn name(self) -> &'static str {
        match self {
            FailoverState::None => "none",
            FailoverState::WaitStart => "wait_start",
            FailoverState::SelectSlave => "select_slave",
            FailoverState::SendSlaveofNoone => "send_slaveof_noone",
            FailoverState::WaitPromotion => "wait_promotion",
            FailoverState::ReconfSlaves => "reconf_slaves",
            FailoverState::UpdateConfig => "update_config",
        }
    }
}

/// Mutations the simulator plants to prove its checkers catch them; never set in the real build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlantedBug {
    /// The vote ignores the epoch it already voted in: a second candidate of the same epoch wins
    /// this sentinel's vote too.
    VotesTwice,
    /// Replica selection prefers the lowest replication offset.
    PicksLowestOffset,
}

/// What the simulator's checkers see of every sentinel in a run: the votes it gave and the
/// elections it won, as `(sentinel id, entry)`. Recorded on the simulator's thread only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Journal {
    Vote {
        epoch: u64,
        candidate: String,
    },
    Elected {
        epoch: u64,
    },
    /// The leader sent SLAVEOF NO ONE to this replica.
    Promoting {
        epoch: u64,
        replica: Addr,
    },
}

#[cfg(madsim)]
thread_local! {
    static JOURNAL: std::cell::RefCell<Vec<(String, Journal)>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn journal(me: &str, entry: Journal) {
    #[cfg(madsim)]
    JOURNAL.with(|j| j.borrow_mut().push((me.to_string(), entry)));
    #[cfg(not(madsim))]
    let _ = (me, entry);
}

/// Takes what the sentinels run on this thread journaled (the simulator, after a run).
#[cfg(madsim)]
pub fn take_journal() -> Vec<(String, Journal)> {
    JOURNAL.with(|j| std::mem::take(&mut *j.borrow_mut()))
}

/// A monitored master with its replicas and the other sentinels watching it.
#[derive(Debug, Clone)]
pub struct Master {
    pub name: String,
    pub inst: Instance,
    pub quorum: u32,
    pub down_after: u64,
    pub failover_timeout: u64,
    pub parallel_syncs: u32,
    pub auth_user: Option<String>,
    pub auth_pass: Option<String>,
    pub config_epoch: u64,
    pub leader: Option<String>,
    pub leader_epoch: u64,
    pub failover_epoch: u64,
    pub failover_state: FailoverState,
    pub failover_state_change_time: u64,
    pub failover_start_time: u64,
    pub failover_delay_logged: u64,
    pub in_failover: bool,
    pub force_failover: bool,
    pub o_down: bool,
    pub o_down_since: u64,
    pub promoted: Option<Addr>,
    pub replicas: BTreeMap<Addr, Instance>,
    pub sentinels: BTreeMap<Addr, Instance>,
}

impl Master {
    pub fn new(name: &str, addr: Addr, quorum: u32, now: u64) -> Self {
        Master {
            name: name.to_string(),
            inst: Instance::new(Kind::Master, addr, now),
            quorum,
            down_after: DEFAULT_DOWN_AFTER,
            failover_timeout: DEFAULT_FAILOVER_TIMEOUT,
            parallel_syncs: DEFAULT_PARALLEL_SYNCS,
            auth_user: None,
            auth_pass: None,
            config_epoch: 0,
            leader: None,
            leader_epoch: 0,
            failover_epoch: 0,
            failover_state: FailoverState::None,
            failover_state_change_time: 0,
            failover_start_time: 0,
            failover_delay_logged: 0,
            in_failover: false,
            force_failover: false,
            o_down: false,
            o_down_since: 0,
            promoted: None,
            replicas: BTreeMap::new(),
            sentinels: BTreeMap::new(),
        }
    }

    pub fn addr(&self) -> &Addr {
        &self.inst.addr
    }

    /// Redis's `sentinelGetCurrentMasterAddress`: once the promoted replica is master (the
    /// failover reconfigures the others), the promoted replica's address.
    pub fn current_addr(&self) -> &Addr {
        match &self.promoted {
            Some(p) if self.in_failover && self.failover_state >= FailoverState::ReconfSlaves => p,
            _ => self.addr(),
        }
    }

    /// Redis's flags string for the master (`SENTINEL MASTERS`).
    pub fn flags(&self) -> String {
        let mut f = vec!["master"];
        if self.inst.s_down {
            f.push("s_down");
        }
        if self.o_down {
            f.push("o_down");
        }
        if self.inst.link.cmd_disconnected() {
            f.push("disconnected");
        }
        if self.in_failover {
            f.push("failover_in_progress");
        }
        f.join(",")
    }

    /// Redis's `sentinelMasterLooksSane`.
    fn looks_sane(&self, now: u64) -> bool {
        self.inst.role_reported == Kind::Master
            && !self.inst.s_down
            && !self.o_down
            && now.saturating_sub(self.inst.info_refresh) < INFO_PERIOD * 2
    }
}

/// An event: logged, and published to the sentinel's clients on the channel named by its type.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub level: Level,
    pub kind: String,
    pub msg: String,
}

/// The whole sentinel.
#[derive(Debug)]
pub struct Sentinel {
    pub myid: String,
    pub current_epoch: u64,
    pub masters: BTreeMap<String, Master>,
    pub announce_ip: String,
    pub announce_port: u16,
    /// This sentinel's own address as it announces it when `announce_ip` is empty.
    pub my_ip: String,
    pub my_port: u16,
    pub tilt: bool,
    pub tilt_start: u64,
    previous_mono: u64,
    previous_unix: u64,
    pub resolve_hostnames: bool,
    pub announce_hostnames: bool,
    pub deny_scripts_reconfig: bool,
    pub bug: Option<PlantedBug>,
    /// The config changed: the driver writes the config file before anything else goes out.
    pub config_dirty: bool,
    pub rng: SeededRng,
    out: Vec<Action>,
    pub events: Vec<Event>,
    /// The votes this sentinel gave, `(master, epoch, candidate)`, for the simulator's checker.
    pub votes: Vec<(String, u64, String)>,
}

fn args(parts: &[&str]) -> Vec<Vec<u8>> {
    parts.iter().map(|p| p.as_bytes().to_vec()).collect()
}

/// 40 lowercase hex characters from the rng (a run ID).
pub fn random_id(rng: &mut SeededRng) -> String {
    let mut bytes = [0u8; 20];
    rng.fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Sentinel {
    pub fn new(mut rng: SeededRng, now_mono: u64, now_unix: u64) -> Self {
        let myid = random_id(&mut rng);
        Sentinel {
            myid,
            current_epoch: 0,
            masters: BTreeMap::new(),
            announce_ip: String::new(),
            announce_port: 0,
            my_ip: "127.0.0.1".into(),
            my_port: DEFAULT_PORT,
            tilt: false,
            tilt_start: 0,
            previous_mono: now_mono,
            previous_unix: now_unix,
            resolve_hostnames: false,
            announce_hostnames: false,
            deny_scripts_reconfig: true,
            bug: None,
            config_dirty: false,
            rng,
            out: Vec::new(),
            events: Vec::new(),
            votes: Vec::new(),
        }
    }

    pub fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.out)
    }

    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// Redis's `sentinelEvent`: `"<kind> <instance> <extra>"`, where the instance is
    /// `master <name> <ip> <port>` or `<type> <name> <ip> <port> @ <master> <ip> <port>`.
    fn event(&mut self, level: Level, kind: &str, master: &str, who: Option<(Kind, &Addr, Option<&str>)>, extra: &str) {
        let Some(m) = self.masters.get(master) else { return };
        let mut msg = match who {
            None => format!("master {} {} {}", m.name, m.addr().ip, m.addr().port),
            Some((k, addr, runid)) => {
                let (t, name) = match k {
                    Kind::Master => ("master", m.name.clone()),
                    Kind::Replica => ("slave", addr.to_string()),
                    Kind::Sentinel => ("sentinel", runid.unwrap_or("").to_string()),
                };
                if k == Kind::Master {
                    format!("master {} {} {}", m.name, addr.ip, addr.port)
                } else {
                    format!("{t} {name} {} {} @ {} {} {}", addr.ip, addr.port, m.name, m.addr().ip, m.addr().port)
                }
            }
        };
        if !extra.is_empty() {
            msg.push(' ');
            msg.push_str(extra);
        }
        self.events.push(Event { level, kind: kind.to_string(), msg });
    }

    fn master_event(&mut self, level: Level, kind: &str, master: &str, extra: &str) {
        self.event(level, kind, master, None, extra);
    }

    fn global_event(&mut self, level: Level, kind: &str, msg: &str) {
        self.events.push(Event { level, kind: kind.to_string(), msg: msg.to_string() });
    }

    pub fn announced_addr(&self) -> (String, u16) {
        let ip = if self.announce_ip.is_empty() { self.my_ip.clone() } else { self.announce_ip.clone() };
        let port = if self.announce_port == 0 { self.my_port } else { self.announce_port };
        (ip, port)
    }

    /// `SENTINEL MONITOR` / `sentinel monitor` in the config.
    pub fn monitor(&mut self, name: &str, addr: Addr, quorum: u32, now: u64) -> Result<(), String> {
        if self.masters.contains_key(name) {
            return Err("Duplicate master name.".into());
        }
        if quorum == 0 {
            return Err("Quorum must be 1 or greater.".into());
        }
        self.masters.insert(name.to_string(), Master::new(name, addr, quorum, now));
        Ok(())
    }

    /// Redis's `sentinelTimer`: one pass over every master, its replicas and its sentinels.
    pub fn tick(&mut self, now: u64, unix: u64) {
        self.check_tilt(now, unix);
        let names: Vec<String> = self.masters.keys().cloned().collect();
        for name in &names {
            self.handle_instance(name, Kind::Master, None, now);
            let replicas: Vec<Addr> = self.masters[name].replicas.keys().cloned().collect();
            for r in &replicas {
                self.handle_instance(name, Kind::Replica, Some(r), now);
            }
            let sentinels: Vec<Addr> = self.masters[name].sentinels.keys().cloned().collect();
            for s in &sentinels {
                self.handle_instance(name, Kind::Sentinel, Some(s), now);
            }
        }
        for name in &names {
            if self.masters.get(name).is_some_and(|m| m.failover_state == FailoverState::UpdateConfig) {
                self.switch_to_promoted(name, now);
            }
        }
    }

    fn check_tilt(&mut self, now: u64, unix: u64) {
        let mono_delta = now.saturating_sub(self.previous_mono);
        let wall_delta = unix as i64 - self.previous_unix as i64;
        if wall_delta < 0 || wall_delta as u64 > TILT_TRIGGER || mono_delta > TILT_TRIGGER {
            if !self.tilt {
                self.global_event(Level::Warning, "+tilt", "#tilt mode entered");
            }
            self.tilt = true;
            self.tilt_start = now;
        }
        self.previous_mono = now;
        self.previous_unix = unix;
    }

    /// Mutable access to an instance of `master`.
    pub fn instance_mut(&mut self, master: &str, kind: Kind, addr: Option<&Addr>) -> Option<&mut Instance> {
        let m = self.masters.get_mut(master)?;
        match (kind, addr) {
            (Kind::Master, _) => Some(&mut m.inst),
            (Kind::Replica, Some(a)) => m.replicas.get_mut(a),
            (Kind::Sentinel, Some(a)) => m.sentinels.get_mut(a),
            _ => None,
        }
    }

    pub fn instance(&self, master: &str, kind: Kind, addr: Option<&Addr>) -> Option<&Instance> {
        let m = self.masters.get(master)?;
        match (kind, addr) {
            (Kind::Master, _) => Some(&m.inst),
            (Kind::Replica, Some(a)) => m.replicas.get(a),
            (Kind::Sentinel, Some(a)) => m.sentinels.get(a),
            _ => None,
        }
    }

    fn key(master: &str, inst: &Instance, pubsub: bool) -> LinkKey {
        LinkKey { master: master.to_string(), kind: inst.kind, addr: inst.addr.clone(), pubsub }
    }

    /// Redis's `sentinelHandleRedisInstance`.
    fn handle_instance(&mut self, master: &str, kind: Kind, addr: Option<&Addr>, now: u64) {
        self.reconnect(master, kind, addr, now);
        self.send_periodic(master, kind, addr, now);
        if self.tilt {
            if now.saturating_sub(self.tilt_start) < TILT_PERIOD {
                return;
            }
            self.tilt = false;
            self.global_event(Level::Warning, "-tilt", "#tilt mode exited");
        }
        self.check_subjectively_down(master, kind, addr, now);
        if kind == Kind::Master {
            self.check_objectively_down(master, now);
            if self.start_failover_if_needed(master, now) {
                self.ask_master_state(master, true, now);
            }
            self.failover_state_machine(master, now);
            self.ask_master_state(master, false, now);
        }
    }

    /// Redis's `sentinelReconnectInstance`: at most one attempt per PING period per link.
    fn reconnect(&mut self, master: &str, kind: Kind, addr: Option<&Addr>, now: u64) {
        let Some(m) = self.masters.get(master) else { return };
        let auth = m.auth_pass.clone().map(|p| (m.auth_user.clone(), p));
        let id8 = self.myid[..8].to_string();
        let Some(inst) = self.instance_mut(master, kind, addr) else { return };
        if inst.addr.port == 0 {
            return;
        }
        let l = &mut inst.link;
        let needs_cmd = !l.cmd_connected && !l.cmd_connecting;
        let needs_pc = kind != Kind::Sentinel && !l.pc_connected && !l.pc_connecting;
        let recent = l.last_reconn_time.is_some_and(|t| now.saturating_sub(t) < PING_PERIOD);
        if !(needs_cmd || needs_pc) || recent {
            return;
        }
        l.last_reconn_time = Some(now);
        if needs_cmd {
            // Redis queues a PING with the connect (sentinelReconnectInstance): the wait for
            // its reply, not the time since the last PONG, is what counts towards SDOWN.
            l.last_ping_time = now;
            if l.act_ping_time == 0 {
                l.act_ping_time = now;
            }
        }
        let auth = if kind == Kind::Sentinel { None } else { auth };
        let mut acts = Vec::new();
        if needs_cmd {
            l.cmd_connecting = true;
            acts.push(Action::Connect {
                key: Self::key(master, inst, false),
                auth: auth.clone(),
                client_name: format!("sentinel-{id8}-cmd"),
            });
        }
        let inst = self.instance_mut(master, kind, addr).expect("present");
        if needs_pc {
            inst.link.pc_connecting = true;
            acts.push(Action::Connect {
                key: Self::key(master, inst, true),
                auth,
                client_name: format!("sentinel-{id8}-pubsub"),
            });
        }
        self.out.extend(acts);
    }

    /// The driver connected `key` (after AUTH and CLIENT SETNAME went out).
    pub fn link_up(&mut self, key: &LinkKey, now: u64) {
        let Some(inst) = self.instance_mut(&key.master, key.kind, Some(&key.addr)) else {
            self.out.push(Action::Close(key.clone()));
            return;
        };
        if key.pubsub {
            inst.link.pc_connecting = false;
            inst.link.pc_connected = true;
            inst.link.pc_conn_time = now;
            inst.link.pc_last_activity = now;
            self.out.push(Action::Send {
                key: key.clone(),
                cmds: vec![(args(&["SUBSCRIBE", HELLO_CHANNEL]), Tag::Ignore)],
            });
        } else {
            inst.link.cmd_connecting = false;
            inst.link.cmd_connected = true;
            inst.link.pending = 0;
            inst.link.cc_conn_time = now;
            self.send_ping(&key.master, key.kind, Some(&key.addr.clone()), now);
        }
    }

    /// `key`'s connection failed or closed.
    pub fn link_down(&mut self, key: &LinkKey) {
        let Some(inst) = self.instance_mut(&key.master, key.kind, Some(&key.addr)) else { return };
        if key.pubsub {
            inst.link.pc_connected = false;
            inst.link.pc_connecting = false;
        } else {
            inst.link.cmd_connected = false;
            inst.link.cmd_connecting = false;
            inst.link.pending = 0;
        }
    }

    fn send(&mut self, master: &str, kind: Kind, addr: Option<&Addr>, cmds: Vec<(Vec<Vec<u8>>, Tag)>) -> bool {
        let Some(inst) = self.instance_mut(master, kind, addr) else { return false };
        if !inst.link.cmd_connected {
            return false;
        }
        inst.link.pending += cmds.len() as u32;
        let key = Self::key(master, inst, false);
        self.out.push(Action::Send { key, cmds });
        true
    }

    fn send_ping(&mut self, master: &str, kind: Kind, addr: Option<&Addr>, now: u64) -> bool {
        if !self.send(master, kind, addr, vec![(args(&["PING"]), Tag::Ping)]) {
            return false;
        }
        let inst = self.instance_mut(master, kind, addr).expect("sent");
        inst.link.last_ping_time = now;
        if inst.link.act_ping_time == 0 {
            inst.link.act_ping_time = now;
        }
        true
    }

    /// Redis's `sentinelSendPeriodicCommands`.
    fn send_periodic(&mut self, master: &str, kind: Kind, addr: Option<&Addr>, now: u64) {
        let Some(m) = self.masters.get(master) else { return };
        let down_after = m.down_after;
        let master_busy = m.o_down || m.in_failover;
        let Some(inst) = self.instance(master, kind, addr) else { return };
        if !inst.link.cmd_connected || inst.link.pending >= MAX_PENDING_COMMANDS {
            return;
        }
        let info_period =
            if kind == Kind::Replica && (master_busy || inst.master_link_down_time != 0) { 1000 } else { INFO_PERIOD };
        let ping_period = down_after.min(PING_PERIOD);
        let want_info =
            kind != Kind::Sentinel && (inst.info_refresh == 0 || now.saturating_sub(inst.info_refresh) > info_period);
        let want_ping = now.saturating_sub(inst.link.last_pong_time) > ping_period
            && now.saturating_sub(inst.link.last_ping_time) > ping_period / 2;
        let want_hello = now.saturating_sub(inst.link.last_pub_time) > PUBLISH_PERIOD;
        if want_info {
            self.send(master, kind, addr, vec![(args(&["INFO"]), Tag::Info)]);
        }
        if want_ping {
            self.send_ping(master, kind, addr, now);
        } else if want_hello {
            self.send_hello(master, kind, addr, now);
        }
    }

    /// Redis's `sentinelSendHello`: `PUBLISH __sentinel__:hello ip,port,runid,epoch,master...`.
    fn send_hello(&mut self, master: &str, kind: Kind, addr: Option<&Addr>, now: u64) {
        let Some(m) = self.masters.get(master) else { return };
        let (ip, port) = self.announced_addr();
        let at = m.current_addr();
        let payload = format!(
            "{ip},{port},{},{},{},{},{},{}",
            self.myid, self.current_epoch, m.name, at.ip, at.port, m.config_epoch
        );
        let cmd = vec![b"PUBLISH".to_vec(), HELLO_CHANNEL.as_bytes().to_vec(), payload.into_bytes()];
        if self.send(master, kind, addr, vec![(cmd, Tag::Publish)]) {
            self.instance_mut(master, kind, addr).expect("sent").link.last_pub_time = now;
        }
    }

    /// Redis's `sentinelForceHelloUpdateForMaster`.
    fn force_hello_update(&mut self, master: &str, now: u64) {
        let Some(m) = self.masters.get_mut(master) else { return };
        let t = now.saturating_sub(PUBLISH_PERIOD + 1);
        m.inst.link.last_pub_time = t;
        m.replicas.values_mut().for_each(|r| r.link.last_pub_time = t);
        m.sentinels.values_mut().for_each(|s| s.link.last_pub_time = t);
    }

    /// A reply to a command the sentinel sent on `key`.
    pub fn on_reply(&mut self, key: &LinkKey, tag: Tag, reply: &Frame, now: u64) {
        let addr = key.addr.clone();
        let Some(inst) = self.instance_mut(&key.master, key.kind, Some(&addr)) else { return };
        inst.link.pending = inst.link.pending.saturating_sub(1);
        match tag {
            Tag::Ping => {
                let valid = match reply {
                    Frame::Simple(s) => s == "PONG",
                    Frame::Error(e) => e.starts_with("LOADING") || e.starts_with("MASTERDOWN"),
                    _ => false,
                };
                if valid {
                    inst.link.last_avail_time = now;
                    inst.link.act_ping_time = 0;
                }
                inst.link.last_pong_time = now;
            }
            Tag::Publish => {
                if !reply.is_error() {
                    inst.link.last_pong_time = now;
                }
            }
            Tag::Info => {
                if let Some(text) = reply.as_bytes() {
                    let text = String::from_utf8_lossy(text).into_owned();
                    self.refresh_info(&key.master, key.kind, &addr, &text, now);
                }
            }
            Tag::IsMasterDown => self.on_master_down_reply(&key.master, &addr, reply, now),
            Tag::ReplicaOf | Tag::Ignore => {}
        }
    }

    /// A message on a pub/sub link: hellos from the other sentinels.
    pub fn on_pubsub(&mut self, key: &LinkKey, msg: &Frame, now: u64) {
        if let Some(inst) = self.instance_mut(&key.master, key.kind, Some(&key.addr)) {
            inst.link.pc_last_activity = now;
        }
        let (Frame::Array(parts) | Frame::Push(parts)) = msg else { return };
        if parts.len() != 3 || parts[0].as_bytes() != Some(b"message") {
            return;
        }
        if let Some(payload) = parts[2].as_bytes() {
            let hello = String::from_utf8_lossy(payload).into_owned();
            self.process_hello(&hello, now);
        }
    }

    /// Redis's `sentinelProcessHelloMessage`: learn sentinels, epochs and new master addresses.
    pub fn process_hello(&mut self, hello: &str, now: u64) {
        let t: Vec<&str> = hello.split(',').collect();
        if t.len() != 8 {
            return;
        }
        let (Ok(port), Ok(epoch), Ok(mport), Ok(mepoch)) =
            (t[1].parse::<u16>(), t[3].parse::<u64>(), t[6].parse::<u16>(), t[7].parse::<u64>())
        else {
            return;
        };
        let (ip, runid, mname, mip) = (t[0], t[2], t[4], t[5]);
        if runid == self.myid {
            return;
        }
        let Some(m) = self.masters.get_mut(mname) else { return };
        let addr = Addr::new(ip, port);
        let known = m.sentinels.get(&addr).is_some_and(|s| s.runid.as_deref() == Some(runid));
        if !known {
            let same_id: Vec<Addr> =
                m.sentinels.iter().filter(|(_, s)| s.runid.as_deref() == Some(runid)).map(|(a, _)| a.clone()).collect();
            let removed = !same_id.is_empty();
            for a in &same_id {
                m.sentinels.remove(a);
                self.out.push(Action::Close(LinkKey {
                    master: mname.to_string(),
                    kind: Kind::Sentinel,
                    addr: a.clone(),
                    pubsub: false,
                }));
            }
            let m = self.masters.get_mut(mname).expect("present");
            if let Some(other) = m.sentinels.remove(&addr) {
                // Another sentinel claimed this address: Redis marks the old one's port invalid.
                self.out.push(Action::Close(LinkKey {
                    master: mname.to_string(),
                    kind: Kind::Sentinel,
                    addr: addr.clone(),
                    pubsub: false,
                }));
                let mut other = other;
                let old_runid = other.runid.clone();
                other.addr.port = 0;
                let m = self.masters.get_mut(mname).expect("present");
                m.sentinels.insert(Addr::new(ip, 0), other);
                self.event(
                    Level::Notice,
                    "+sentinel-invalid-addr",
                    mname,
                    Some((Kind::Sentinel, &addr, old_runid.as_deref())),
                    "",
                );
            }
            let m = self.masters.get_mut(mname).expect("present");
            let mut si = Instance::new(Kind::Sentinel, addr.clone(), now);
            si.runid = Some(runid.to_string());
            m.sentinels.insert(addr.clone(), si);
            if removed {
                self.master_event(
                    Level::Notice,
                    "+sentinel-address-switch",
                    mname,
                    &format!("ip {ip} port {port} for {runid}"),
                );
            } else {
                self.event(Level::Notice, "+sentinel", mname, Some((Kind::Sentinel, &addr, Some(runid))), "");
            }
            self.config_dirty = true;
        }
        if epoch > self.current_epoch {
            self.current_epoch = epoch;
            self.config_dirty = true;
            let e = self.current_epoch.to_string();
            self.global_event(Level::Warning, "+new-epoch", &e);
        }
        let m = self.masters.get_mut(mname).expect("present");
        if m.config_epoch < mepoch {
            m.config_epoch = mepoch;
            if mport != m.addr().port || mip != m.addr().ip {
                let old = m.addr().clone();
                self.event(
                    Level::Warning,
                    "+config-update-from",
                    mname,
                    Some((Kind::Sentinel, &addr, Some(runid))),
                    "",
                );
                let msg = format!("{mname} {} {} {mip} {mport}", old.ip, old.port);
                self.global_event(Level::Warning, "+switch-master", &msg);
                self.reset_and_change_address(mname, Addr::new(mip, mport), now);
            }
        }
        if let Some(s) = self.masters.get_mut(mname).and_then(|m| m.sentinels.get_mut(&addr)) {
            s.last_hello_time = now;
        }
    }

    /// Redis's `sentinelCheckSubjectivelyDown`.
    fn check_subjectively_down(&mut self, master: &str, kind: Kind, addr: Option<&Addr>, now: u64) {
        let Some(down_after) = self.masters.get(master).map(|m| m.down_after) else { return };
        let Some(inst) = self.instance_mut(master, kind, addr) else { return };
        let l = &inst.link;
        let elapsed = if l.act_ping_time != 0 {
            now.saturating_sub(l.act_ping_time)
        } else if !l.cmd_connected {
            now.saturating_sub(l.last_avail_time)
        } else {
            0
        };
        let mut close = Vec::new();
        // A link that is up but does not answer: reconnect it (the instance may be busy).
        if l.cmd_connected
            && now.saturating_sub(l.cc_conn_time) >= MIN_LINK_RECONNECT_PERIOD
            && l.act_ping_time != 0
            && now.saturating_sub(l.act_ping_time) > down_after / 2
            && now.saturating_sub(l.last_pong_time) > down_after / 2
        {
            close.push(false);
            inst.link.cmd_connected = false;
            inst.link.pending = 0;
        }
        let l = &inst.link;
        if l.pc_connected
            && now.saturating_sub(l.pc_conn_time) >= MIN_LINK_RECONNECT_PERIOD
            && now.saturating_sub(l.pc_last_activity) > PUBLISH_PERIOD * 3
        {
            close.push(true);
            inst.link.pc_connected = false;
        }
        let keys: Vec<LinkKey> = close.into_iter().map(|pubsub| Self::key(master, inst, pubsub)).collect();
        self.out.extend(keys.into_iter().map(Action::Close));
        let inst = self.instance_mut(master, kind, addr).expect("present");
        let wrong_role = kind == Kind::Master
            && inst.role_reported == Kind::Replica
            && now.saturating_sub(inst.role_reported_time) > down_after + INFO_PERIOD * 2;
        let runid = inst.runid.clone();
        let a = inst.addr.clone();
        if elapsed > down_after || wrong_role {
            if !inst.s_down {
                inst.s_down = true;
                inst.s_down_since = now;
                self.event(Level::Warning, "+sdown", master, Some((kind, &a, runid.as_deref())), "");
            }
        } else if inst.s_down {
            inst.s_down = false;
            self.event(Level::Warning, "-sdown", master, Some((kind, &a, runid.as_deref())), "");
        }
    }

    /// Redis's `sentinelCheckObjectivelyDown`.
    fn check_objectively_down(&mut self, master: &str, now: u64) {
        let Some(m) = self.masters.get_mut(master) else { return };
        let mut quorum = 0;
        let mut odown = false;
        if m.inst.s_down {
            quorum = 1 + m.sentinels.values().filter(|s| s.master_down).count() as u32;
            odown = quorum >= m.quorum;
        }
        if odown {
            if !m.o_down {
                m.o_down = true;
                m.o_down_since = now;
                let q = m.quorum;
                self.master_event(Level::Warning, "+odown", master, &format!("#quorum {quorum}/{q}"));
            }
        } else if m.o_down {
            m.o_down = false;
            self.master_event(Level::Warning, "-odown", master, "");
        }
    }

    /// Redis's `sentinelAskMasterStateToOtherSentinels`.
    fn ask_master_state(&mut self, master: &str, force: bool, now: u64) {
        let Some(m) = self.masters.get_mut(master) else { return };
        let (mip, mport) = (m.addr().ip.clone(), m.addr().port);
        let s_down = m.inst.s_down;
        let runid = if m.failover_state != FailoverState::None { self.myid.clone() } else { "*".to_string() };
        let mut asks = Vec::new();
        for (a, s) in m.sentinels.iter_mut() {
            let elapsed = now.saturating_sub(s.last_master_down_reply_time);
            if elapsed > ASK_PERIOD * 5 {
                s.master_down = false;
                s.leader = None;
            }
            if !s_down || !s.link.cmd_connected {
                continue;
            }
            if !force && elapsed < ASK_PERIOD {
                continue;
            }
            asks.push(a.clone());
        }
        let epoch = self.current_epoch.to_string();
        let port = mport.to_string();
        for a in asks {
            let cmd = args(&["SENTINEL", "is-master-down-by-addr", &mip, &port, &epoch, &runid]);
            self.send(master, Kind::Sentinel, Some(&a), vec![(cmd, Tag::IsMasterDown)]);
        }
    }

    fn on_master_down_reply(&mut self, master: &str, addr: &Addr, reply: &Frame, now: u64) {
        let Frame::Array(r) = reply else { return };
        let [Frame::Integer(down), leader, Frame::Integer(leader_epoch)] = r.as_slice() else { return };
        let Some(leader) = leader.as_bytes().map(|b| String::from_utf8_lossy(b).into_owned()) else { return };
        let Some(s) = self.masters.get_mut(master).and_then(|m| m.sentinels.get_mut(addr)) else { return };
        s.last_master_down_reply_time = now;
        s.master_down = *down == 1;
        if leader != "*" {
            s.leader = Some(leader);
            s.leader_epoch = *leader_epoch as u64;
        }
    }

    /// Redis's `sentinelRefreshInstanceInfo`: what INFO says, then what to do about it.
    fn refresh_info(&mut self, master: &str, kind: Kind, addr: &Addr, info: &str, now: u64) {
        let mut new_replicas = Vec::new();
        let mut reboot = false;
        let mut role = None;
        {
            let Some(inst) = self.instance_mut(master, kind, Some(addr)) else { return };
            inst.master_link_down_time = 0;
            for line in info.lines() {
                let line = line.trim_end_matches('\r');
                let Some((k, v)) = line.split_once(':') else { continue };
                match k {
                    "run_id" if v.len() == 40 && inst.runid.as_deref() != Some(v) => {
                        reboot = inst.runid.is_some();
                        inst.runid = Some(v.to_string());
                    }
                    "role" => {
                        role = match v {
                            "master" => Some(Kind::Master),
                            "slave" => Some(Kind::Replica),
                            _ => None,
                        }
                    }
                    "master_link_down_since_seconds" => {
                        inst.master_link_down_time = v.parse::<u64>().unwrap_or(0) * 1000;
                    }
                    "master_host" if inst.master_host.as_deref() != Some(v) => {
                        inst.master_host = Some(v.to_string());
                        inst.slave_conf_change_time = now;
                    }
                    "master_port" => {
                        let p = v.parse().unwrap_or(0);
                        if inst.master_port != p {
                            inst.master_port = p;
                            inst.slave_conf_change_time = now;
                        }
                    }
                    "master_link_status" => inst.master_link_up = v == "up",
                    "slave_priority" | "replica_priority" => inst.priority = v.parse().unwrap_or(100),
                    "slave_repl_offset" => inst.repl_offset = v.parse().unwrap_or(0),
                    "replica_announced" => inst.replica_announced = v != "0",
                    _ if kind == Kind::Master && k.starts_with("slave") && k[5..].parse::<u32>().is_ok() => {
                        if let Some(a) = parse_slave_line(v) {
                            new_replicas.push(a);
                        }
                    }
                    _ => {}
                }
            }
            inst.info_refresh = now;
            inst.info_text = Some(info.to_string());
        }
        if reboot {
            let runid = self.instance(master, kind, Some(addr)).and_then(|i| i.runid.clone());
            self.event(Level::Notice, "+reboot", master, Some((kind, addr, runid.as_deref())), "");
        }
        for a in new_replicas {
            let m = self.masters.get_mut(master).expect("present");
            if !m.replicas.contains_key(&a) && a != *m.addr() {
                m.replicas.insert(a.clone(), Instance::new(Kind::Replica, a.clone(), now));
                self.event(Level::Notice, "+slave", master, Some((Kind::Replica, &a, None)), "");
                self.config_dirty = true;
            }
        }
        let Some(role) = role else { return };
        let inst = self.instance_mut(master, kind, Some(addr)).expect("present");
        if role != inst.role_reported {
            inst.role_reported_time = now;
            inst.role_reported = role;
            if role == Kind::Replica {
                inst.slave_conf_change_time = now;
            }
            let coherent = role == kind;
            let runid = inst.runid.clone();
            let what = if role == Kind::Master { "master" } else { "slave" };
            self.event(
                Level::Verbose,
                if coherent { "+role-change" } else { "-role-change" },
                master,
                Some((kind, addr, runid.as_deref())),
                &format!("new reported role is {what}"),
            );
        }
        if self.tilt || kind != Kind::Replica {
            return;
        }
        self.replica_acting_half(master, addr, role, now);
    }
}

/// `ip=..,port=..,state=..` (or the old `ip,port,state`) of a master's `slaveN` line.
fn parse_slave_line(v: &str) -> Option<Addr> {
    if v.contains('=') {
        let mut ip = None;
        let mut port = None;
        for part in v.split(',') {
            match part.split_once('=') {
                Some(("ip", x)) => ip = Some(x),
                Some(("port", x)) => port = x.parse().ok(),
                _ => {}
            }
        }
        Some(Addr::new(ip?, port?))
    } else {
        let mut it = v.split(',');
        let ip = it.next()?;
        let port = it.next()?.parse().ok()?;
        Some(Addr::new(ip, port))
    }
}

/// Sentinel's random failover desync, `rand() % SENTINEL_MAX_DESYNC`.
fn desync(rng: &mut SeededRng) -> u64 {
    rng.below(MAX_DESYNC)
}

#[cfg(test)]
mod tests;

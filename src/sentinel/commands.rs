//! The commands a sentinel serves to its clients (Redis's sentinel command table): PING,
//! SENTINEL and its subcommands, INFO, ROLE, PUBLISH (hellos only), the pub/sub commands for
//! its events, CLIENT, HELLO, AUTH, SHUTDOWN. Replies and errors are Redis 7.0.15's.

use std::collections::BTreeSet;

use bytes::Bytes;

use super::{Addr, Instance, Kind, Master, Sentinel};
use crate::protocol::reply::ReplyBuf;
use crate::util::glob_match;

/// A client of the sentinel.
#[derive(Debug, Default)]
pub struct SClient {
    pub id: u64,
    pub name: String,
    pub addr: String,
    pub laddr: String,
    pub out: ReplyBuf,
    pub channels: BTreeSet<Vec<u8>>,
    pub patterns: BTreeSet<Vec<u8>>,
    pub close_after_reply: bool,
    pub shutdown: bool,
    pub created_ms: u64,
}

impl SClient {
    pub fn new(id: u64, addr: String, laddr: String, now: u64) -> Self {
        SClient { id, addr, laddr, out: ReplyBuf::new(2), created_ms: now, ..Default::default() }
    }

    pub fn subscriptions(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }
}

/// What the server around the sentinel knows (for INFO and CLIENT).
#[derive(Debug, Clone, Default)]
pub struct ServerFacts {
    pub run_id: String,
    pub process_id: u32,
    pub tcp_port: u16,
    pub uptime_ms: u64,
    pub unix_us: u64,
    pub executable: String,
    pub config_file: String,
    pub connected_clients: usize,
    pub total_connections: u64,
    pub total_commands: u64,
    pub hz: u32,
}

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn eq(a: &[u8], b: &str) -> bool {
    a.eq_ignore_ascii_case(b.as_bytes())
}

fn arity_error(out: &mut ReplyBuf, name: &str) {
    out.error(&format!("ERR wrong number of arguments for '{name}' command"));
}

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// A sentinel has only the `default` user, with `nopass`: any password is right for it.
fn authenticates(user: &[u8]) -> bool {
    user == b"default"
}

/// Redis's `string2ll` (through `getLongLongFromObject`): an optional `-`, digits, no leading
/// zeros, no `+` or spaces, within i64.
fn parse_ll(arg: &[u8]) -> Option<i64> {
    let digits = arg.strip_prefix(b"-").unwrap_or(arg);
    let canonical = match digits {
        [b'0'] => arg.len() == 1,
        [b'1'..=b'9', rest @ ..] => rest.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    if !canonical {
        return None;
    }
    std::str::from_utf8(arg).ok()?.parse().ok()
}

/// Redis's `clientSetNameOrReply`: printable ASCII without spaces, or empty to clear it.
fn set_client_name(c: &mut SClient, name: &[u8]) -> bool {
    if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
        c.out.error("ERR Client names cannot contain spaces, newlines or special characters.");
        return false;
    }
    c.name = s(name);
    true
}

fn unknown_set_option(option: &[u8]) -> String {
    format!("ERR Unknown option or number of arguments for SENTINEL SET '{}'", s(option))
}

/// Looks `argv[1]` up among `table`'s subcommands and checks its arity; the lowercased
/// name, or None after replying with the error.
fn subcommand(out: &mut ReplyBuf, argv: &[Bytes], command: &str, table: &[(&str, i32)], help: &str) -> Option<String> {
    let sub = s(&argv[1]).to_ascii_lowercase();
    let Some(&(_, arity)) = table.iter().find(|(n, _)| *n == sub) else {
        let shown = s(&argv[1][..argv[1].len().min(128)]);
        out.error(&format!("ERR unknown subcommand '{shown}'. Try {help}."));
        return None;
    };
    let n = argv.len() as i32;
    if (arity > 0 && n != arity) || (arity < 0 && n < -arity) {
        arity_error(out, &format!("{command}|{sub}"));
        return None;
    }
    Some(sub)
}

/// Arity of each SENTINEL subcommand (from Redis's command JSON: negative means "at least").
const SUBCOMMANDS: &[(&str, i32)] = &[
    ("ckquorum", 3),
    ("config", -3),
    ("debug", -2),
    ("failover", 3),
    ("flushconfig", 2),
    ("get-master-addr-by-name", 3),
    ("help", 2),
    ("info-cache", -3),
    ("is-master-down-by-addr", 6),
    ("master", 3),
    ("masters", 2),
    ("monitor", 6),
    ("myid", 2),
    ("pending-scripts", 2),
    ("remove", 3),
    ("replicas", 3),
    ("reset", 3),
    ("sentinels", 3),
    ("set", -5),
    ("simulate-failure", -3),
    ("slaves", 3),
];

/// Redis's `SENTINEL_SCRIPT_MAX_RUNTIME` and `SENTINEL_SCRIPT_RETRY_DELAY`, for SENTINEL DEBUG.
const SCRIPT_MAX_RUNTIME_MS: u64 = 60_000;
const SCRIPT_RETRY_DELAY_MS: u64 = 30_000;

const HELP: &[&str] = &[
    "SENTINEL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CKQUORUM <master-name>",
    "    Check if the current Sentinel configuration is able to reach the quorum",
    "    needed to failover a master and the majority needed to authorize the",
    "    failover.",
    "CONFIG SET <param> <value>",
    "    Set a global Sentinel configuration parameter.",
    "CONFIG GET <param>",
    "    Get global Sentinel configuration parameter.",
    "DEBUG [<param> <value> ...]",
    "    Show a list of configurable time parameters and their values (milliseconds).",
    "    Or update current configurable parameters values (one or more).",
    "GET-MASTER-ADDR-BY-NAME <master-name>",
    "    Return the ip and port number of the master with that name.",
    "FAILOVER <master-name>",
    "    Manually failover a master node without asking for agreement from other",
    "    Sentinels",
    "FLUSHCONFIG",
    "    Force Sentinel to rewrite its configuration on disk, including the current",
    "    Sentinel state.",
    "INFO-CACHE <master-name>",
    "    Return last cached INFO output from masters and all its replicas.",
    "IS-MASTER-DOWN-BY-ADDR <ip> <port> <current-epoch> <runid>",
    "    Check if the master specified by ip:port is down from current Sentinel's",
    "    point of view.",
    "MASTER <master-name>",
    "    Show the state and info of the specified master.",
    "MASTERS",
    "    Show a list of monitored masters and their state.",
    "MONITOR <name> <ip> <port> <quorum>",
    "    Start monitoring a new master with the specified name, ip, port and quorum.",
    "MYID",
    "    Return the ID of the Sentinel instance.",
    "PENDING-SCRIPTS",
    "    Get pending scripts information.",
    "REMOVE <master-name>",
    "    Remove master from Sentinel's monitor list.",
    "REPLICAS <master-name>",
    "    Show a list of replicas for this master and their state.",
    "RESET <pattern>",
    "    Reset masters for specific master name matching this pattern.",
    "SENTINELS <master-name>",
    "    Show a list of Sentinel instances for this master and their state.",
    "SET <master-name> <option> <value> [<option> <value> ...]",
    "    Set configuration parameters for certain masters.",
    "SIMULATE-FAILURE [CRASH-AFTER-ELECTION] [CRASH-AFTER-PROMOTION] [HELP]",
    "    Simulate a Sentinel crash.",
    "HELP",
    "    Prints this help.",
];

/// Top-level commands and their arity. QUIT and RESET are not among them: Redis 7.0's
/// sentinel table lacks both, so they get the unknown-command error (and QUIT keeps the
/// connection open).
const COMMANDS: &[(&str, i32)] = &[
    ("ping", -1),
    ("sentinel", -2),
    ("info", -1),
    ("role", 1),
    ("publish", 3),
    ("subscribe", -2),
    ("unsubscribe", -1),
    ("psubscribe", -2),
    ("punsubscribe", -1),
    ("client", -2),
    ("hello", -1),
    ("auth", -2),
    ("command", -1),
    ("shutdown", -1),
];

/// The CLIENT subcommands served, and their arity.
const CLIENT_SUBCOMMANDS: &[(&str, i32)] = &[("getname", 2), ("id", 2), ("info", 2), ("setname", 3)];

/// What a client may run while subscribed in RESP2 (Redis's list, as its error names it).
const SUBSCRIBED_CONTEXT_COMMANDS: &[&str] = &["ping", "subscribe", "unsubscribe", "psubscribe", "punsubscribe"];

impl Sentinel {
    /// Runs one client command; the reply goes to `c.out`.
    pub fn command(&mut self, c: &mut SClient, argv: &[Bytes], facts: &ServerFacts, now: u64) {
        let name = s(&argv[0]).to_ascii_lowercase();
        let Some(&(_, arity)) = COMMANDS.iter().find(|(n, _)| *n == name) else {
            let shown = s(&argv[0][..argv[0].len().min(128)]);
            let preview = crate::commands::args_preview(&argv[1..]);
            c.out.error(&format!("ERR unknown command '{shown}', with args beginning with: {preview}"));
            return;
        };
        let n = argv.len() as i32;
        if (arity > 0 && n != arity) || (arity < 0 && n < -arity) {
            arity_error(&mut c.out, &name);
            return;
        }
        // Subcommands are looked up, and their arity checked, before the subscribed context
        // is: Redis resolves `sentinel|myid` first and names it in that error.
        let full_name = match name.as_str() {
            "sentinel" => match subcommand(&mut c.out, argv, "sentinel", SUBCOMMANDS, "SENTINEL HELP") {
                Some(sub) => format!("sentinel|{sub}"),
                None => return,
            },
            "client" => match subcommand(&mut c.out, argv, "client", CLIENT_SUBCOMMANDS, "CLIENT HELP") {
                Some(sub) => format!("client|{sub}"),
                None => return,
            },
            _ => name.clone(),
        };
        if c.subscriptions() > 0 && c.out.resp == 2 && !SUBSCRIBED_CONTEXT_COMMANDS.contains(&name.as_str()) {
            c.out.error(&format!(
                "ERR Can't execute '{full_name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
            ));
            return;
        }
        match name.as_str() {
            "ping" => {
                if n > 2 {
                    arity_error(&mut c.out, "ping");
                } else if c.subscriptions() > 0 && c.out.resp == 2 {
                    c.out.array(2);
                    c.out.bulk(b"pong");
                    c.out.bulk(argv.get(1).map(|b| &b[..]).unwrap_or(b""));
                } else if let Some(m) = argv.get(1) {
                    c.out.bulk(m);
                } else {
                    c.out.simple("PONG");
                }
            }
            "sentinel" => self.sentinel_command(c, argv, now),
            "info" => self.info(c, argv, facts, now),
            "role" => {
                c.out.array(2);
                c.out.bulk(b"sentinel");
                c.out.array(self.masters.len());
                for m in self.masters.keys() {
                    c.out.bulk(m.as_bytes());
                }
            }
            "publish" => {
                if &argv[1][..] != super::HELLO_CHANNEL.as_bytes() {
                    c.out.error("ERR Only HELLO messages are accepted by Sentinel instances.");
                } else {
                    self.process_hello(&s(&argv[2]), now);
                    c.out.int(1);
                }
            }
            "subscribe" | "psubscribe" => {
                let pattern = name == "psubscribe";
                for ch in &argv[1..] {
                    let set = if pattern { &mut c.patterns } else { &mut c.channels };
                    set.insert(ch.to_vec());
                    let count = c.subscriptions();
                    c.out.push(3);
                    c.out.bulk(name.as_bytes());
                    c.out.bulk(ch);
                    c.out.int(count as i64);
                }
            }
            "unsubscribe" | "punsubscribe" => {
                let pattern = name == "punsubscribe";
                let targets: Vec<Vec<u8>> = if argv.len() > 1 {
                    argv[1..].iter().map(|b| b.to_vec()).collect()
                } else if pattern {
                    c.patterns.iter().cloned().collect()
                } else {
                    c.channels.iter().cloned().collect()
                };
                if targets.is_empty() {
                    c.out.push(3);
                    c.out.bulk(name.as_bytes());
                    c.out.null();
                    c.out.int(c.subscriptions() as i64);
                }
                for ch in targets {
                    let set = if pattern { &mut c.patterns } else { &mut c.channels };
                    set.remove(&ch);
                    let count = c.subscriptions();
                    c.out.push(3);
                    c.out.bulk(name.as_bytes());
                    c.out.bulk(&ch);
                    c.out.int(count as i64);
                }
            }
            "client" => self.client_command(c, argv, now),
            "hello" => self.hello(c, argv, facts),
            "auth" => {
                if n > 3 {
                    c.out.error("ERR syntax error");
                } else if n == 2 {
                    c.out.error(
                        "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
                    );
                } else if authenticates(&argv[1]) {
                    c.out.ok();
                } else {
                    c.out.error(WRONGPASS);
                }
            }
            "command" => c.out.array(0),
            "shutdown" => {
                c.shutdown = true;
                c.out.ok();
            }
            _ => unreachable!("listed in COMMANDS"),
        }
    }

    /// Redis's `helloCommand`: every option is checked before AUTH runs, the name is set after
    /// it, and the protocol switches last. A sentinel's map has no `role`.
    fn hello(&mut self, c: &mut SClient, argv: &[Bytes], facts: &ServerFacts) {
        let mut version = None;
        if let Some(v) = argv.get(1) {
            match parse_ll(v) {
                Some(v @ 2..=3) => version = Some(v as u8),
                Some(_) => return c.out.error("NOPROTO unsupported protocol version"),
                None => return c.out.error("ERR Protocol version is not an integer or out of range"),
            }
        }
        let mut user = None;
        let mut name = None;
        let mut i = 2;
        while i < argv.len() {
            let more = argv.len() - 1 - i;
            if eq(&argv[i], "auth") && more >= 2 {
                user = Some(&argv[i + 1]);
                i += 3;
            } else if eq(&argv[i], "setname") && more >= 1 {
                name = Some(&argv[i + 1]);
                i += 2;
            } else {
                return c.out.error(&format!("ERR Syntax error in HELLO option '{}'", s(&argv[i])));
            }
        }
        if user.is_some_and(|u| !authenticates(u)) {
            return c.out.error(WRONGPASS);
        }
        if let Some(n) = name {
            if !set_client_name(c, n) {
                return;
            }
        }
        if let Some(v) = version {
            c.out.resp = v;
        }
        c.out.map(6);
        c.out.bulk(b"server");
        c.out.bulk(b"redis");
        c.out.bulk(b"version");
        c.out.bulk(b"7.0.15");
        c.out.bulk(b"proto");
        c.out.int(c.out.resp as i64);
        c.out.bulk(b"id");
        c.out.int(c.id as i64);
        c.out.bulk(b"mode");
        c.out.bulk(b"sentinel");
        c.out.bulk(b"modules");
        c.out.array(0);
        let _ = facts;
    }

    fn client_command(&mut self, c: &mut SClient, argv: &[Bytes], now: u64) {
        // `command` checked the subcommand and its arity.
        let sub = s(&argv[1]).to_ascii_lowercase();
        match sub.as_str() {
            "setname" => {
                if set_client_name(c, &argv[2]) {
                    c.out.ok();
                }
            }
            "getname" => {
                if c.name.is_empty() {
                    c.out.null();
                } else {
                    c.out.bulk(c.name.as_bytes());
                }
            }
            "id" => c.out.int(c.id as i64),
            "info" => {
                let line = format!(
                    "id={} addr={} laddr={} name={} age={} sub={} psub={} resp={}\n",
                    c.id,
                    c.addr,
                    c.laddr,
                    c.name,
                    now.saturating_sub(c.created_ms) / 1000,
                    c.channels.len(),
                    c.patterns.len(),
                    c.out.resp
                );
                c.out.verbatim(line.as_bytes());
            }
            _ => unreachable!("listed in CLIENT_SUBCOMMANDS"),
        }
    }

    fn sentinel_command(&mut self, c: &mut SClient, argv: &[Bytes], now: u64) {
        // `command` checked the subcommand and its arity.
        let sub = s(&argv[1]).to_ascii_lowercase();
        let out = &mut c.out;
        let master_named = |me: &Self, out: &mut ReplyBuf| -> Option<String> {
            let name = s(&argv[2]);
            if me.masters.contains_key(&name) {
                Some(name)
            } else {
                out.error("ERR No such master with that name");
                None
            }
        };
        match sub.as_str() {
            "help" => {
                out.array(HELP.len());
                HELP.iter().for_each(|l| out.simple(l));
            }
            "myid" => out.bulk(self.myid.as_bytes()),
            "masters" => {
                out.array(self.masters.len());
                for m in self.masters.values() {
                    master_fields(out, m, now);
                }
            }
            "master" => {
                if let Some(name) = master_named(self, out) {
                    master_fields(out, &self.masters[&name], now);
                }
            }
            "replicas" | "slaves" => {
                if let Some(name) = master_named(self, out) {
                    let m = &self.masters[&name];
                    out.array(m.replicas.len());
                    for r in m.replicas.values() {
                        replica_fields(out, m, r, now);
                    }
                }
            }
            "sentinels" => {
                if let Some(name) = master_named(self, out) {
                    let m = &self.masters[&name];
                    out.array(m.sentinels.len());
                    for si in m.sentinels.values() {
                        sentinel_fields(out, m, si, now);
                    }
                }
            }
            "get-master-addr-by-name" => match self.masters.get(&s(&argv[2])) {
                None => out.null_array(),
                Some(m) => {
                    let a = m.current_addr().clone();
                    out.array(2);
                    out.bulk(a.ip.as_bytes());
                    out.bulk(a.port.to_string().as_bytes());
                }
            },
            "is-master-down-by-addr" => {
                let (Ok(port), Ok(epoch)) = (s(&argv[3]).parse::<u16>(), s(&argv[4]).parse::<u64>()) else {
                    out.error("ERR value is not an integer or out of range");
                    return;
                };
                let addr = Addr::new(&s(&argv[2]), port);
                let runid = s(&argv[5]);
                let name = self.masters.values().find(|m| *m.addr() == addr).map(|m| m.name.clone());
                let mut down = false;
                let mut leader = None;
                let mut leader_epoch = 0;
                if let Some(name) = name {
                    down = !self.tilt && self.masters[&name].inst.s_down;
                    if runid != "*" {
                        (leader, leader_epoch) = self.vote_leader(&name, epoch, &runid, now);
                    }
                }
                out.array(3);
                out.int(i64::from(down));
                out.bulk(leader.as_deref().unwrap_or("*").as_bytes());
                out.int(leader_epoch as i64);
            }
            "reset" => {
                let pattern = argv[2].to_vec();
                let names: Vec<String> =
                    self.masters.keys().filter(|n| glob_match(&pattern, n.as_bytes(), false)).cloned().collect();
                for n in &names {
                    self.reset_master(n, now);
                }
                c.out.int(names.len() as i64);
            }
            "failover" => {
                let Some(name) = master_named(self, out) else { return };
                if self.masters[&name].in_failover {
                    out.error("INPROG Failover already in progress");
                } else if self.select_replica(&name, now).is_none() {
                    out.error("NOGOODSLAVE No suitable replica to promote");
                } else {
                    self.global_event(
                        crate::server::log::Level::Warning,
                        "",
                        &format!("Executing user requested FAILOVER of '{name}'"),
                    );
                    self.start_failover(&name, now);
                    self.masters.get_mut(&name).expect("present").force_failover = true;
                    c.out.ok();
                }
            }
            "ckquorum" => {
                let Some(name) = master_named(self, out) else { return };
                let m = &self.masters[&name];
                let voters = m.sentinels.len() + 1;
                // Redis's sentinelIsQuorumReachable: every known sentinel not down counts,
                // connected or not (one just learnt from a hello has no link yet).
                let usable = 1 + m.sentinels.values().filter(|si| !si.s_down).count();
                let mut problems = String::new();
                if usable < m.quorum as usize {
                    problems.push_str(" Not enough available Sentinels to reach the specified quorum for this master");
                }
                if usable < voters / 2 + 1 {
                    problems.push_str(" Not enough available Sentinels to reach the majority and authorize a failover");
                }
                if problems.is_empty() {
                    out.simple(&format!(
                        "OK {usable} usable Sentinels. Quorum and failover authorization can be reached"
                    ));
                } else {
                    out.error(&format!("NOQUORUM {usable} usable Sentinels.{problems}"));
                }
            }
            "monitor" => {
                // Redis's order: quorum and port parse, quorum range, address, then
                // createSentinelRedisInstance (port range, then a duplicate name).
                let name = s(&argv[2]);
                let ip = s(&argv[3]);
                let Some(quorum) = parse_ll(&argv[5]) else { return out.error("ERR Invalid quorum") };
                let Some(port) = parse_ll(&argv[4]) else { return out.error("ERR Invalid port") };
                if quorum <= 0 {
                    return out.error("ERR Quorum must be 1 or greater.");
                }
                // Without resolve-hostnames only an IP address will do (ANET_IP_ONLY).
                if ip.parse::<std::net::IpAddr>().is_err() && !self.resolve_hostnames {
                    return out.error("ERR Invalid IP address or hostname specified");
                }
                let Ok(port) = u16::try_from(port) else { return out.error("ERR Invalid port number.") };
                let quorum = u32::try_from(quorum).unwrap_or(u32::MAX);
                match self.monitor(&name, Addr::new(&ip, port), quorum, now) {
                    Ok(()) => {
                        self.config_dirty = true;
                        self.master_event(
                            crate::server::log::Level::Warning,
                            "+monitor",
                            &name,
                            &format!("quorum {quorum}"),
                        );
                        c.out.ok();
                    }
                    Err(e) => c.out.error(&format!("ERR {e}")),
                }
            }
            "remove" => {
                let Some(name) = master_named(self, out) else { return };
                self.master_event(crate::server::log::Level::Warning, "-monitor", &name, "");
                let m = self.masters.remove(&name).expect("present");
                for i in std::iter::once(&m.inst).chain(m.replicas.values()).chain(m.sentinels.values()) {
                    self.out.push(super::Action::Close(Self::key(&name, i, false)));
                    self.out.push(super::Action::Close(Self::key(&name, i, true)));
                }
                self.config_dirty = true;
                c.out.ok();
            }
            "set" => self.sentinel_set(c, argv),
            "flushconfig" => {
                self.config_dirty = true;
                c.out.ok();
            }
            "pending-scripts" => out.array(0),
            "info-cache" => {
                let names: Vec<String> = if argv.len() > 2 {
                    argv[2..].iter().map(|a| s(a)).filter(|n| self.masters.contains_key(n)).collect()
                } else {
                    self.masters.keys().cloned().collect()
                };
                out.array(names.len() * 2);
                for n in &names {
                    let m = &self.masters[n];
                    out.bulk(n.as_bytes());
                    out.array(1 + m.replicas.len());
                    for i in std::iter::once(&m.inst).chain(m.replicas.values()) {
                        out.array(2);
                        out.int(now.saturating_sub(i.info_refresh) as i64);
                        match &i.info_text {
                            Some(t) => out.bulk(t.as_bytes()),
                            None => out.null(),
                        }
                    }
                }
            }
            "config" => self.sentinel_config(c, argv),
            "debug" => {
                if argv.len() == 2 {
                    let params = self.debug_params();
                    out.map(params.len());
                    for (k, v) in params {
                        out.bulk(k.to_ascii_uppercase().as_bytes());
                        out.bulk(v.to_string().as_bytes());
                    }
                } else {
                    out.error(&format!(
                        "ERR Unknown option or number of arguments for SENTINEL DEBUG '{}'",
                        s(&argv[2])
                    ));
                }
            }
            "simulate-failure" => {
                let a = s(&argv[2]).to_ascii_lowercase();
                if a == "help" {
                    out.array(2);
                    out.bulk(b"crash-after-election");
                    out.bulk(b"crash-after-promotion");
                } else {
                    out.error("ERR Unknown failure simulation specified");
                }
            }
            _ => unreachable!("listed in SUBCOMMANDS"),
        }
    }

    /// The timing parameters SENTINEL DEBUG shows, in Redis's order (fixed at Redis's
    /// defaults here; redsim runs no scripts, but shows their limits as Redis does).
    fn debug_params(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("info-period", super::INFO_PERIOD),
            ("ping-period", super::PING_PERIOD),
            ("ask-period", super::ASK_PERIOD),
            ("publish-period", super::PUBLISH_PERIOD),
            ("default-down-after", super::DEFAULT_DOWN_AFTER),
            ("default-failover-timeout", super::DEFAULT_FAILOVER_TIMEOUT),
            ("tilt-trigger", super::TILT_TRIGGER),
            ("tilt-period", super::TILT_PERIOD),
            ("slave-reconf-timeout", super::SLAVE_RECONF_TIMEOUT),
            ("min-link-reconnect-period", super::MIN_LINK_RECONNECT_PERIOD),
            ("election-timeout", super::ELECTION_TIMEOUT),
            ("script-max-runtime", SCRIPT_MAX_RUNTIME_MS),
            ("script-retry-delay", SCRIPT_RETRY_DELAY_MS),
        ]
    }

    /// Redis's `sentinelSetCommand`: option/value pairs applied in order; the first bad one
    /// ends the command with its error, the ones before it stay applied.
    fn sentinel_set(&mut self, c: &mut SClient, argv: &[Bytes]) {
        let name = s(&argv[2]);
        if !self.masters.contains_key(&name) {
            return c.out.error("ERR No such master with that name");
        }
        let deny_scripts = self.deny_scripts_reconfig;
        let mut changed = false;
        let mut j = 3;
        let error = loop {
            let Some(option) = argv.get(j) else { break None };
            let opt = s(option).to_ascii_lowercase();
            let Some(value) = argv.get(j + 1) else { break Some(unknown_set_option(option)) };
            j += 2;
            let m = self.masters.get_mut(&name).expect("checked");
            let positive = parse_ll(value).filter(|v| *v > 0);
            let invalid = || format!("ERR Invalid argument '{}' for SENTINEL SET '{}'", s(value), s(option));
            match opt.as_str() {
                "down-after-milliseconds" | "failover-timeout" | "parallel-syncs" | "quorum" => {
                    let Some(v) = positive else { break Some(invalid()) };
                    match opt.as_str() {
                        "down-after-milliseconds" => m.down_after = v as u64,
                        "failover-timeout" => m.failover_timeout = v as u64,
                        "parallel-syncs" => m.parallel_syncs = u32::try_from(v).unwrap_or(u32::MAX),
                        _ => m.quorum = u32::try_from(v).unwrap_or(u32::MAX),
                    }
                }
                "notification-script" | "client-reconfig-script" if deny_scripts => {
                    break Some(
                        "ERR Reconfiguration of scripts path is denied for security reasons. Check the \
                         deny-scripts-reconfig configuration directive in your Sentinel configuration"
                            .to_string(),
                    );
                }
                "auth-pass" => m.auth_pass = (!value.is_empty()).then(|| s(value)),
                "auth-user" => m.auth_user = (!value.is_empty()).then(|| s(value)),
                _ => break Some(unknown_set_option(option)),
            }
            changed = true;
        };
        if changed {
            self.config_dirty = true;
        }
        match error {
            Some(e) => c.out.error(&e),
            None => c.out.ok(),
        }
    }

    fn sentinel_config(&mut self, c: &mut SClient, argv: &[Bytes]) {
        let op = s(&argv[2]).to_ascii_lowercase();
        let params = [
            "resolve-hostnames",
            "announce-hostnames",
            "announce-ip",
            "announce-port",
            "sentinel-user",
            "sentinel-pass",
        ];
        match op.as_str() {
            "get" if argv.len() == 4 => {
                let pattern = argv[3].to_vec();
                let vals: Vec<(&str, String)> = params
                    .iter()
                    .filter(|p| glob_match(&pattern, p.as_bytes(), true))
                    .map(|p| (*p, self.config_value(p)))
                    .collect();
                c.out.map(vals.len());
                for (k, v) in vals {
                    c.out.bulk(k.as_bytes());
                    c.out.bulk(v.as_bytes());
                }
            }
            "set" if argv.len() == 5 => {
                let p = s(&argv[3]).to_ascii_lowercase();
                let v = s(&argv[4]);
                let yesno = |v: &str| match v.to_ascii_lowercase().as_str() {
                    "yes" => Some(true),
                    "no" => Some(false),
                    _ => None,
                };
                let ok = match p.as_str() {
                    "resolve-hostnames" => yesno(&v).map(|b| self.resolve_hostnames = b).is_some(),
                    "announce-hostnames" => yesno(&v).map(|b| self.announce_hostnames = b).is_some(),
                    "announce-ip" => {
                        self.announce_ip = v.clone();
                        true
                    }
                    "announce-port" => match v.parse::<u16>() {
                        Ok(port) => {
                            self.announce_port = port;
                            true
                        }
                        Err(_) => false,
                    },
                    "sentinel-user" | "sentinel-pass" => true,
                    _ => {
                        c.out.error(&format!("ERR Invalid argument '{}' to SENTINEL CONFIG SET", s(&argv[3])));
                        return;
                    }
                };
                if ok {
                    self.config_dirty = true;
                    c.out.ok();
                } else {
                    c.out.error(&format!("ERR Invalid value '{v}' to SENTINEL CONFIG SET '{p}'"));
                }
            }
            _ => c.out.error("ERR Only SENTINEL CONFIG GET <option> / SET <option> <value> are supported."),
        }
    }

    fn config_value(&self, p: &str) -> String {
        let yn = |b: bool| if b { "yes" } else { "no" }.to_string();
        match p {
            "resolve-hostnames" => yn(self.resolve_hostnames),
            "announce-hostnames" => yn(self.announce_hostnames),
            "announce-ip" => self.announce_ip.clone(),
            "announce-port" => self.announce_port.to_string(),
            _ => String::new(),
        }
    }

    fn info(&self, c: &mut SClient, argv: &[Bytes], facts: &ServerFacts, now: u64) {
        let want: Vec<String> = argv[1..].iter().map(|a| s(a).to_ascii_lowercase()).collect();
        let all = want.is_empty() || want.iter().any(|w| w == "all" || w == "everything" || w == "default");
        let on = |sec: &str| all || want.iter().any(|w| w == sec);
        let mut text = String::new();
        let mut section = |title: &str, body: String| {
            if !text.is_empty() {
                text.push_str("\r\n");
            }
            text.push_str(&format!("# {title}\r\n{body}"));
        };
        if on("server") {
            section(
                "Server",
                format!(
                    "redis_version:7.0.15\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:0\r\n\
                     redis_mode:sentinel\r\nos:Linux\r\narch_bits:64\r\nmonotonic_clock:POSIX clock_gettime\r\n\
                     multiplexing_api:epoll\r\natomicvar_api:c11-builtin\r\ngcc_version:0.0.0\r\nprocess_id:{}\r\n\
                     process_supervised:no\r\nrun_id:{}\r\ntcp_port:{}\r\nserver_time_usec:{}\r\n\
                     uptime_in_seconds:{}\r\nuptime_in_days:{}\r\nhz:{}\r\nconfigured_hz:10\r\nlru_clock:0\r\n\
                     executable:{}\r\nconfig_file:{}\r\nio_threads_active:0\r\n",
                    facts.process_id,
                    facts.run_id,
                    facts.tcp_port,
                    facts.unix_us,
                    facts.uptime_ms / 1000,
                    facts.uptime_ms / 86_400_000,
                    facts.hz,
                    facts.executable,
                    facts.config_file
                ),
            );
        }
        if on("clients") {
            section(
                "Clients",
                format!(
                    "connected_clients:{}\r\ncluster_connections:0\r\nmaxclients:10000\r\n\
                     client_recent_max_input_buffer:0\r\nclient_recent_max_output_buffer:0\r\nblocked_clients:0\r\n\
                     tracking_clients:0\r\nclients_in_timeout_table:0\r\n",
                    facts.connected_clients
                ),
            );
        }
        if on("stats") {
            section(
                "Stats",
                format!(
                    "total_connections_received:{}\r\ntotal_commands_processed:{}\r\n",
                    facts.total_connections, facts.total_commands
                ),
            );
        }
        if on("sentinel") {
            let mut body = format!(
                "sentinel_masters:{}\r\nsentinel_tilt:{}\r\nsentinel_tilt_since_seconds:{}\r\n\
                 sentinel_running_scripts:0\r\nsentinel_scripts_queue_length:0\r\nsentinel_simulate_failure_flags:0\r\n",
                self.masters.len(),
                u8::from(self.tilt),
                if self.tilt { (now.saturating_sub(self.tilt_start) / 1000) as i64 } else { -1 }
            );
            for (i, m) in self.masters.values().enumerate() {
                let status = if m.o_down {
                    "odown"
                } else if m.inst.s_down {
                    "sdown"
                } else {
                    "ok"
                };
                body.push_str(&format!(
                    "master{i}:name={},status={status},address={},slaves={},sentinels={}\r\n",
                    m.name,
                    m.addr(),
                    m.replicas.len(),
                    m.sentinels.len() + 1
                ));
            }
            section("Sentinel", body);
        }
        // A bulk string in RESP3 too: Redis's sentinelInfoCommand uses addReplyBulkSds.
        c.out.bulk(text.as_bytes());
    }
}

fn kv(out: &mut ReplyBuf, k: &str, v: &str) {
    out.bulk(k.as_bytes());
    out.bulk(v.as_bytes());
}

/// The fields every instance shows first (Redis's `addReplySentinelRedisInstance`).
fn common_fields(out: &mut ReplyBuf, name: &str, i: &Instance, flags: &str, down_after: u64, now: u64) -> usize {
    kv(out, "name", name);
    kv(out, "ip", &i.addr.ip);
    kv(out, "port", &i.addr.port.to_string());
    kv(out, "runid", i.runid.as_deref().unwrap_or(""));
    kv(out, "flags", flags);
    kv(out, "link-pending-commands", &i.link.pending.to_string());
    kv(out, "link-refcount", "1");
    let since = |t: u64| if t == 0 { 0 } else { now.saturating_sub(t) };
    kv(out, "last-ping-sent", &since(i.link.act_ping_time).to_string());
    kv(out, "last-ok-ping-reply", &since(i.link.last_avail_time).to_string());
    kv(out, "last-ping-reply", &since(i.link.last_pong_time).to_string());
    let mut n = 10;
    if i.s_down {
        kv(out, "s-down-time", &now.saturating_sub(i.s_down_since).to_string());
        n += 1;
    }
    kv(out, "down-after-milliseconds", &down_after.to_string());
    n + 1
}

fn role_name(k: Kind) -> &'static str {
    if k == Kind::Master {
        "master"
    } else {
        "slave"
    }
}

fn master_fields(out: &mut ReplyBuf, m: &Master, now: u64) {
    let mut body = ReplyBuf::new(out.resp);
    let mut n = common_fields(&mut body, &m.name, &m.inst, &m.flags(), m.down_after, now);
    if m.o_down {
        kv(&mut body, "o-down-time", &now.saturating_sub(m.o_down_since).to_string());
        n += 1;
    }
    kv(&mut body, "info-refresh", &now.saturating_sub(m.inst.info_refresh).to_string());
    kv(&mut body, "role-reported", role_name(m.inst.role_reported));
    kv(&mut body, "role-reported-time", &now.saturating_sub(m.inst.role_reported_time).to_string());
    kv(&mut body, "config-epoch", &m.config_epoch.to_string());
    kv(&mut body, "num-slaves", &m.replicas.len().to_string());
    kv(&mut body, "num-other-sentinels", &m.sentinels.len().to_string());
    kv(&mut body, "quorum", &m.quorum.to_string());
    kv(&mut body, "failover-timeout", &m.failover_timeout.to_string());
    kv(&mut body, "parallel-syncs", &m.parallel_syncs.to_string());
    n += 9;
    if m.in_failover {
        kv(&mut body, "failover-state", m.failover_state.name());
        n += 1;
    }
    out.map(n);
    out.raw(&body.buf);
}

fn replica_fields(out: &mut ReplyBuf, m: &Master, r: &Instance, now: u64) {
    let mut body = ReplyBuf::new(out.resp);
    let n = common_fields(&mut body, &r.addr.to_string(), r, &r.flags(), m.down_after, now);
    kv(&mut body, "info-refresh", &now.saturating_sub(r.info_refresh).to_string());
    kv(&mut body, "role-reported", role_name(r.role_reported));
    kv(&mut body, "role-reported-time", &now.saturating_sub(r.role_reported_time).to_string());
    kv(&mut body, "master-link-down-time", &r.master_link_down_time.to_string());
    kv(&mut body, "master-link-status", if r.master_link_up { "ok" } else { "err" });
    kv(&mut body, "master-host", r.master_host.as_deref().unwrap_or("?"));
    kv(&mut body, "master-port", &r.master_port.to_string());
    kv(&mut body, "slave-priority", &r.priority.to_string());
    kv(&mut body, "slave-repl-offset", &r.repl_offset.to_string());
    kv(&mut body, "replica-announced", if r.replica_announced { "1" } else { "0" });
    out.map(n + 10);
    out.raw(&body.buf);
}

fn sentinel_fields(out: &mut ReplyBuf, _m: &Master, si: &Instance, now: u64) {
    let mut body = ReplyBuf::new(out.resp);
    let n = common_fields(&mut body, si.runid.as_deref().unwrap_or(""), si, &si.flags(), _m.down_after, now);
    kv(&mut body, "last-hello-message", &now.saturating_sub(si.last_hello_time).to_string());
    kv(&mut body, "voted-leader", si.leader.as_deref().unwrap_or("?"));
    kv(&mut body, "voted-leader-epoch", &si.leader_epoch.to_string());
    out.map(n + 3);
    out.raw(&body.buf);
}

//! The command table and the path of a request through it (Redis's `processCommand` and
//! `call`): lookup, arity, auth, memory, then the handler. Arity, flags and key positions come
//! from Redis's own metadata (`meta`, generated); this module only binds names to handlers.

pub mod bitops;
pub mod docs;
pub mod dump;
pub mod expire;
pub mod hash;
pub mod hyperloglog;
pub mod keyspace;
pub mod latency;
pub mod list;
pub mod meta;
pub mod migrate;
pub mod multi;
pub mod persistence;
pub mod pubsub;
pub mod replication;
pub mod server_cmds;
pub mod set;
pub mod sort;
pub mod string;
#[cfg(test)]
pub mod testing;
pub mod zset;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::Bytes;

use crate::engine::object::{RObj, Str, Value};
use crate::protocol::ReplyBuf;
use crate::server::{Client, Server};
use meta::{flag, CommandMeta};

/// A command handler: reads `args` (argv, name included), writes its reply to the client's
/// buffer, or returns an error whose text becomes the reply.
pub type Handler = fn(&mut Ctx, &[Bytes]) -> CmdResult;
pub type CmdResult = Result<(), CmdError>;

/// Errors a command replies with. Redis's text for each lives here and nowhere else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CmdError {
    Syntax,
    NotInteger,
    NotFloat,
    WrongType,
    NoSuchKey,
    OutOfRange,
    Overflow,
    DbIndex,
    InvalidExpire(&'static str),
    /// Any other error; the text includes its code (`ERR ...`).
    Other(String),
}

impl CmdError {
    pub fn text(&self) -> Cow<'static, str> {
        match self {
            CmdError::Syntax => "ERR syntax error".into(),
            CmdError::NotInteger => "ERR value is not an integer or out of range".into(),
            CmdError::NotFloat => "ERR value is not a valid float".into(),
            CmdError::WrongType => "WRONGTYPE Operation against a key holding the wrong kind of value".into(),
            CmdError::NoSuchKey => "ERR no such key".into(),
            CmdError::OutOfRange => "ERR index out of range".into(),
            CmdError::Overflow => "ERR increment or decrement would overflow".into(),
            CmdError::DbIndex => "ERR DB index is out of range".into(),
            CmdError::InvalidExpire(cmd) => format!("ERR invalid expire time in '{cmd}' command").into(),
            CmdError::Other(s) => s.clone().into(),
        }
    }

    pub fn err(text: impl Into<String>) -> Self {
        CmdError::Other(format!("ERR {}", text.into()))
    }
}

/// One bound command: the metadata plus the handler (none for a container like CONFIG).
/// Name lookups hash with foldhash: SipHash showed in profiles, and these maps are never
/// iterated into a reply.
type NameMap = HashMap<Box<[u8]>, usize, foldhash::fast::FixedState>;

pub struct Command {
    pub meta: &'static CommandMeta,
    pub handler: Option<Handler>,
    /// Subcommands by lowercase name → index in the table.
    pub subcommands: NameMap,
    pub index: usize,
}

impl Command {
    pub fn name(&self) -> &'static str {
        self.meta.name
    }
    pub fn has(&self, f: u64) -> bool {
        self.meta.flags & f != 0
    }
}

pub struct CommandTable {
    pub cmds: Vec<Command>,
    top: NameMap,
}

impl CommandTable {
    pub fn len(&self) -> usize {
        self.cmds.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cmds.is_empty()
    }

    /// A top-level command by name, case-insensitively.
    pub fn lookup(&self, name: &[u8]) -> Option<&Command> {
        if name.len() > 32 {
            return None;
        }
        let mut lower = [0u8; 32];
        let lower = &mut lower[..name.len()];
        lower.copy_from_slice(name);
        lower.make_ascii_lowercase();
        self.top.get(&*lower).map(|&i| &self.cmds[i])
    }

    pub fn sub(&self, cmd: &Command, name: &[u8]) -> Option<&Command> {
        cmd.subcommands.get(&*name.to_ascii_lowercase()).map(|&i| &self.cmds[i])
    }

    /// Top-level commands in name order (COMMAND, COMMAND LIST).
    pub fn top_level(&self) -> impl Iterator<Item = &Command> {
        let mut v: Vec<&Command> = self.cmds.iter().filter(|c| c.meta.container.is_none()).collect();
        v.sort_by_key(|c| c.meta.name);
        v.into_iter()
    }

    /// A command by full name ("get", "config|get").
    pub fn by_fullname(&self, fullname: &[u8]) -> Option<&Command> {
        let lower = fullname.to_ascii_lowercase();
        let mut parts = lower.splitn(2, |&b| b == b'|');
        let top = self.lookup(parts.next()?)?;
        match parts.next() {
            None => Some(top),
            Some(sub) => self.sub(top, sub),
        }
    }
}

fn handlers() -> impl Iterator<Item = &'static (&'static str, Handler)> {
    [
        string::COMMANDS,
        expire::COMMANDS,
        keyspace::COMMANDS,
        server_cmds::COMMANDS,
        set::COMMANDS,
        hash::COMMANDS,
        zset::COMMANDS,
        bitops::COMMANDS,
        hyperloglog::COMMANDS,
        list::COMMANDS,
        sort::COMMANDS,
        dump::COMMANDS,
        migrate::COMMANDS,
        persistence::COMMANDS,
        multi::COMMANDS,
        pubsub::COMMANDS,
        replication::COMMANDS,
        latency::COMMANDS,
        crate::persistence::aof::cmd::COMMANDS,
        crate::cluster::commands::COMMANDS,
    ]
    .into_iter()
    .flatten()
}

/// The process-wide table, built once from the metadata and the handler lists.
pub fn table() -> &'static CommandTable {
    static TABLE: OnceLock<CommandTable> = OnceLock::new();
    TABLE.get_or_init(build_table)
}

fn build_table() -> CommandTable {
    let mut t = CommandTable { cmds: Vec::new(), top: NameMap::default() };
    let bound: HashMap<&str, Handler> = handlers().map(|(n, h)| (*n, *h)).collect();
    for m in meta::COMMANDS.iter().filter(|m| m.in_server()) {
        let subs: Vec<&'static CommandMeta> = m.subcommands.iter().filter(|s| bound.contains_key(s.name)).collect();
        let handler = bound.get(m.name).copied();
        if handler.is_none() && subs.is_empty() {
            continue;
        }
        let idx = t.cmds.len();
        t.cmds.push(Command { meta: m, handler, subcommands: NameMap::default(), index: idx });
        t.top.insert(m.name.as_bytes().into(), idx);
        for s in subs {
            let sidx = t.cmds.len();
            t.cmds.push(Command {
                meta: s,
                handler: bound.get(s.name).copied(),
                subcommands: NameMap::default(),
                index: sidx,
            });
            t.cmds[idx].subcommands.insert(s.sub_name().as_bytes().into(), sidx);
        }
    }
    for (name, _) in handlers() {
        debug_assert!(t.by_fullname(name.as_bytes()).is_some(), "handler for unknown command {name}");
    }
    t
}

/// Everything a handler may touch while it runs: the server and the calling client.
pub struct Ctx<'a> {
    pub srv: &'a mut Server,
    pub client: &'a mut Client,
}

impl<'a> Ctx<'a> {
    /// The calling client's reply buffer. The `new` events of keys the command added so far
    /// go first: Redis publishes them inside `dbAdd`, before the command replies.
    pub fn out(&mut self) -> &mut ReplyBuf {
        if self.srv.config.hot.notify_keyspace_events & crate::server::notify::class::NEW != 0 {
            self.srv.notify_new_keys(Some(self.client));
        }
        &mut self.client.out
    }

    pub fn now_ms(&self) -> u64 {
        self.srv.now.unix_ms
    }

    pub fn db_index(&self) -> usize {
        self.client.db
    }

    /// Replies with an error and counts it (INFO errorstats).
    pub fn error(&mut self, text: &str) {
        self.srv.count_error(text);
        self.client.out.error(text);
    }

    /// Deletes `key` if it is logically expired (on a master), propagating the DEL. Returns
    /// true when the key is (logically) gone.
    pub fn expire_if_needed(&mut self, key: &[u8]) -> bool {
        // A replica applies its master's stream on the master's terms: a key the master has
        // not deleted yet is still there, whatever this node's clock says (Redis's
        // `expireIfNeeded`: `server.current_client == server.master`).
        if self.srv.is_master_client(self.client.id) {
            return false;
        }
        let db = self.client.db;
        // While writes are paused a key may be logically expired but is not deleted.
        let master = self.srv.is_master() && !self.srv.writes_paused();
        match self.srv.dbs[db].expire_if_needed(key, self.srv.now.unix_ms, master) {
            crate::engine::db::ExpireState::Live => false,
            crate::engine::db::ExpireState::Expired { deleted } => {
                if deleted {
                    self.srv.stats.expiredkeys += 1;
                    self.srv.propagate_del(db, key);
                    self.srv.deleted_by_server(Some(self.client), db, key, crate::server::notify::Removal::Expired);
                }
                true
            }
        }
    }

    /// Redis's `lookupKeyRead`: expires, counts hits/misses, touches LRU/LFU.
    pub fn lookup_read(&mut self, key: &[u8]) -> Option<&RObj> {
        self.lookup_read_out(key).0
    }

    /// `lookup_read` plus the reply buffer, for handlers that reply from the object.
    pub fn lookup_read_out(&mut self, key: &[u8]) -> (Option<&RObj>, &mut ReplyBuf) {
        let expired = self.expire_if_needed(key);
        let keymiss = crate::server::notify::class::KEY_MISS;
        // Checked first: the extra lookup is paid only when someone listens for misses.
        if self.srv.config.hot.notify_keyspace_events & keymiss != 0
            && (expired || !self.srv.dbs[self.client.db].contains(key))
        {
            self.notify(keymiss, "keymiss", key);
        }
        if expired {
            self.srv.stats.keyspace_misses += 1;
            return (None, &mut self.client.out);
        }
        let obj = self.srv.lookup_touch(self.client.db, key, true);
        (obj.map(|o| &*o), &mut self.client.out)
    }

    /// Redis's `lookupKeyWrite`: expires and touches, no hit/miss stats.
    pub fn lookup_write(&mut self, key: &[u8]) -> Option<&mut RObj> {
        if self.expire_if_needed(key) {
            return None;
        }
        self.srv.lookup_touch(self.client.db, key, false)
    }

    /// Existence without touching LRU or stats (Redis's LOOKUP_NOTOUCH lookups).
    pub fn exists(&mut self, key: &[u8]) -> bool {
        !self.expire_if_needed(key) && self.srv.dbs[self.client.db].contains(key)
    }

    /// A new object's LRU/LFU field.
    pub fn new_lru(&self) -> u32 {
        self.srv.new_obj_lru()
    }

    /// A string object as SET stores it.
    pub fn new_string(&self, v: &[u8]) -> RObj {
        RObj::string(v, self.new_lru(), crate::server::evict::can_share_integers(self.srv))
    }

    pub fn new_int(&self, n: i64) -> RObj {
        RObj::from_int(n, self.new_lru(), crate::server::evict::can_share_integers(self.srv))
    }

    /// Counts `n` changes (Redis's `server.dirty`); a command that changed something is
    /// propagated.
    pub fn dirty(&mut self, n: u64) {
        self.srv.dirty += n;
    }

    /// `key` of the client's db changed by `event` (Redis's `signalModifiedKey` plus
    /// `notifyKeyspaceEvent`): WATCHers of the key see the change, and the event is published
    /// if its `class` (a `server::notify::class` bit) is enabled. A `keymiss` changes nothing.
    pub fn notify(&mut self, class: u32, event: &str, key: &[u8]) {
        let db = self.client.db;
        if class != crate::server::notify::class::KEY_MISS {
            self.srv.touch_watched_key(db, key);
        }
        let flags = self.srv.config.hot.notify_keyspace_events;
        if flags & (class | crate::server::notify::class::NEW) != 0 {
            self.srv.notify_keyspace_event(Some(self.client), class, event, key, db);
        }
    }

    pub fn propagate(&mut self, argv: Vec<Bytes>) {
        self.srv.propagate(self.client.db, argv);
    }

    /// Propagates this command in a rewritten form (e.g. SET EX as SET PXAT) instead of
    /// as it was sent.
    pub fn propagate_as(&mut self, argv: Vec<Bytes>) {
        self.srv.cmd_rewritten = true;
        self.propagate(argv);
    }
}

/// The string inside an object, or WRONGTYPE.
pub fn as_str(o: &RObj) -> Result<&Str, CmdError> {
    match &o.val {
        Value::Str(s) => Ok(s),
        #[allow(unreachable_patterns)]
        _ => Err(CmdError::WrongType),
    }
}

pub fn as_str_mut(o: &mut RObj) -> Result<&mut Str, CmdError> {
    match &mut o.val {
        Value::Str(s) => Ok(s),
        #[allow(unreachable_patterns)]
        _ => Err(CmdError::WrongType),
    }
}

/// Parses an integer argument, or "value is not an integer or out of range".
pub fn int_arg(b: &[u8]) -> Result<i64, CmdError> {
    crate::util::arg_i64(b).ok_or(CmdError::NotInteger)
}

pub(crate) fn eq_ic(a: &[u8], b: &str) -> bool {
    a.eq_ignore_ascii_case(b.as_bytes())
}

/// `'%.128s'` of each argument after the first, until 128 bytes (Redis's unknown command text).
pub(crate) fn args_preview(args: &[Bytes]) -> String {
    let mut s = String::new();
    for a in args {
        if s.len() >= 128 {
            break;
        }
        let room = 128 - s.len();
        let a = &a[..a.len().min(room)];
        s.push('\'');
        s.push_str(&String::from_utf8_lossy(a));
        s.push_str("' ");
    }
    s
}

/// Redis's `processCommand`, then `call`.
pub fn process_command(ctx: &mut Ctx, argv: Vec<Bytes>) {
    ctx.client.last_interaction_ms = ctx.srv.now.mono_ms;
    if eq_ic(&argv[0], "quit") {
        ctx.client.out.ok();
        ctx.client.close_after_reply = true;
        return;
    }
    let table = ctx.srv.table;
    let Some(top) = table.lookup(&argv[0]) else {
        let name = String::from_utf8_lossy(&argv[0][..argv[0].len().min(128)]).into_owned();
        let text = format!("ERR unknown command '{name}', with args beginning with: {}", args_preview(&argv[1..]));
        multi::flag_transaction(ctx.client);
        ctx.error(&text);
        return;
    };
    let cmd = if !top.subcommands.is_empty() && argv.len() >= 2 {
        match table.sub(top, &argv[1]) {
            Some(sub) => sub,
            None => {
                let sub = String::from_utf8_lossy(&argv[1][..argv[1].len().min(128)]).into_owned();
                let up = String::from_utf8_lossy(&argv[0]).to_uppercase();
                multi::flag_transaction(ctx.client);
                ctx.error(&format!("ERR unknown subcommand '{sub}'. Try {up} HELP."));
                return;
            }
        }
    } else {
        top
    };
    ctx.client.last_cmd = cmd.meta.name;
    let arity = cmd.meta.arity;
    let argc = argv.len() as i32;
    if (arity > 0 && arity != argc) || argc < -arity || cmd.handler.is_none() {
        reject(ctx, cmd, &format!("ERR wrong number of arguments for '{}' command", cmd.name()));
        return;
    }
    if let Some(err) = check_access(ctx, cmd) {
        reject(ctx, cmd, &err);
        return;
    }
    if cluster_redirects(ctx, cmd, &argv) {
        return;
    }
    if let Some(err) = check_gates(ctx, cmd) {
        reject(ctx, cmd, &err);
        return;
    }
    if ctx.client.multi.is_some() && !multi::runs_inside_multi(cmd) {
        multi::queue(ctx, cmd, argv);
        return;
    }
    call(ctx, cmd, &argv);
}

/// The first checks after lookup: debug protection, authentication, commands refused in MULTI.
fn check_access(ctx: &mut Ctx, cmd: &Command) -> Option<String> {
    // The master's stream is obeyed as it comes (Redis's `mustObeyClient`).
    if ctx.srv.is_master_client(ctx.client.id) {
        return None;
    }
    if cmd.has(flag::PROTECTED) {
        let setting = ctx.srv.config.get("enable-debug-command").unwrap_or("no");
        let local = ctx.client.addr.starts_with("127.") || ctx.client.addr.starts_with("[::1]");
        if setting == "no" || (setting == "local" && !local) {
            let name = cmd.meta.name.to_uppercase();
            return Some(format!(
                "ERR {name} command not allowed. If the enable-debug-command option is set to \"local\", you can run it \
                 from a local connection, otherwise you need to set this option in the configuration file, and then \
                 restart the server."
            ));
        }
    }
    if !ctx.client.authenticated && !cmd.has(flag::NO_AUTH) {
        return Some("NOAUTH Authentication required.".into());
    }
    if ctx.client.multi.is_some() && cmd.has(flag::NO_MULTI) {
        return Some("ERR Command not allowed inside a transaction".into());
    }
    None
}

/// processCommand's cluster redirection: a command whose keys this node does not serve gets
/// MOVED, ASK, TRYAGAIN, CROSSSLOT or CLUSTERDOWN instead (true: refused).
fn cluster_redirects(ctx: &mut Ctx, cmd: &Command, argv: &[Bytes]) -> bool {
    let Some(c) = ctx.srv.cluster.as_deref() else { return false };
    let is_exec = cmd.meta.name == "exec";
    if ctx.srv.is_master_client(ctx.client.id)
        || !(cmd.has(flag::MOVABLE_KEYS) || !cmd.meta.key_specs.is_empty() || is_exec)
    {
        return false;
    }
    let flags = cmd.meta.flags | if is_exec { multi::exec_flags(ctx.client) } else { 0 };
    let queries = crate::cluster::redirect::queries_of(ctx.srv.table, cmd, argv, ctx.client.multi.as_ref());
    let client = crate::cluster::redirect::ClientFlags {
        asking: ctx.client.cluster_asking,
        readonly: ctx.client.cluster_readonly,
    };
    let routed = crate::cluster::redirect::route(
        c,
        &ctx.srv.dbs[0],
        ctx.srv.now.unix_ms,
        &queries,
        client,
        flags & flag::WRITE != 0,
    );
    let redirect = match routed {
        Ok(_) => return false,
        // Planted bug (simulator): a moved-away slot this node once owned is still served.
        Err(crate::cluster::redirect::Redirect::Moved { slot, .. })
            if c.planted_serve_lost_slots && c.once_owned.get(slot) =>
        {
            return false;
        }
        Err(r) => r,
    };
    let preferred = crate::cluster::redirect::preferred_endpoint(&ctx.srv.config);
    let text = crate::cluster::redirect::error_text(c, &redirect, preferred);
    if is_exec {
        ctx.srv.discard_transaction(ctx.client);
    } else {
        multi::flag_transaction(ctx.client);
    }
    ctx.srv.cmd_stats[cmd.index].rejected_calls += 1;
    ctx.error(&text);
    true
}

/// The checks between the cluster's redirection and the call that can refuse a command.
fn check_gates(ctx: &mut Ctx, cmd: &Command) -> Option<String> {
    if ctx.srv.is_master_client(ctx.client.id) {
        return None;
    }
    // EXEC is checked as if it were the commands it will run.
    let flags = cmd.meta.flags | if cmd.meta.name == "exec" { multi::exec_flags(ctx.client) } else { 0 };
    // Queueing inside MULTI takes memory too: out of memory, only EXEC (unless what it runs is
    // refused), DISCARD, QUIT and RESET go through.
    let queues = ctx.client.multi.is_some() && !matches!(cmd.meta.name, "exec" | "discard" | "quit" | "reset");
    if ctx.srv.config.hot.maxmemory > 0 {
        let ok = ctx.srv.perform_evictions();
        if !ok && (flags & flag::DENYOOM != 0 || queues) {
            return Some("OOM command not allowed when used memory > 'maxmemory'.".into());
        }
    }
    // Redis refuses PING too, so that a monitor notices the failing disk
    // (`writeCommandsDeniedByDiskError`: the RDB's error first, then the AOF's).
    if cmd.has(flag::WRITE) || cmd.meta.name == "ping" {
        if let Some(text) = ctx.srv.rdb_denies_writes() {
            return Some(text.into());
        }
        if let Some(err) = ctx.srv.aof.deny_write_error() {
            return Some(err);
        }
    }
    if let Some(text) = replication_gate(ctx, flags) {
        return Some(text);
    }
    if ctx.client.pubsub.active && ctx.client.resp() == 2 && !pubsub::allowed_in_resp2_subscribed_mode(cmd.meta.name) {
        return Some(format!(
            "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this \
             context",
            cmd.meta.name
        ));
    }
    None
}

/// processCommand's replication checks, in Redis's order: min-replicas-to-write on a master,
/// a read-only replica, a replica whose link is down with replica-serve-stale-data no.
fn replication_gate(ctx: &Ctx, flags: u64) -> Option<String> {
    let srv = &*ctx.srv;
    let write = flags & flag::WRITE != 0;
    if srv.is_master() && write {
        let (min, lag) = (srv.config.hot.min_replicas_to_write, srv.config.hot.min_replicas_max_lag);
        if min > 0
            && lag > 0
            && (srv.repl.replicas.good_count(srv.now.mono_ms, lag) as u64) < min
            && !crate::replication::planted(crate::replication::PlantedBug::MinReplicasIgnored)
        {
            return Some("NOREPLICAS Not enough good replicas to write.".into());
        }
    }
    if srv.is_replica() && write && srv.config.get("replica-read-only") != Some("no") {
        return Some("READONLY You can't write against a read only replica.".into());
    }
    let link_down = srv.repl.master.as_ref().is_some_and(|m| m.state != crate::replication::LinkState::Connected);
    if link_down && srv.config.get("replica-serve-stale-data") == Some("no") && flags & flag::STALE == 0 {
        return Some("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.".into());
    }
    None
}

/// Redis's `rejectCommand`: counts the refusal and dooms a transaction being queued.
fn reject(ctx: &mut Ctx, cmd: &Command, text: &str) {
    multi::flag_transaction(ctx.client);
    ctx.srv.cmd_stats[cmd.index].rejected_calls += 1;
    if cmd.meta.name == "exec" {
        // Redis's `execCommandAbort`: the reason loses its ERR code.
        ctx.srv.discard_transaction(ctx.client);
        let reason = text.strip_prefix("ERR ").unwrap_or(text);
        ctx.error(&format!("EXECABORT Transaction discarded because of: {reason}"));
        return;
    }
    ctx.error(text);
}

/// Redis's `call`: runs the handler, counts stats, propagates; EXEC calls it per queued command.
pub(crate) fn call(ctx: &mut Ctx, cmd: &Command, argv: &[Bytes]) {
    let handler = cmd.handler.expect("checked by process_command");
    let dirty_before = ctx.srv.dirty;
    let signals_before = multi::signals(ctx.srv);
    ctx.srv.cmd_rewritten = false;
    let start_us = ctx.srv.sys.mono_us();
    ctx.client.tot_cmds += 1;
    ctx.srv.track_new_keys();
    let result = handler(ctx, argv);
    ctx.srv.notify_new_keys(Some(ctx.client));
    if let Err(e) = result {
        ctx.srv.cmd_stats[cmd.index].failed_calls += 1;
        ctx.error(&e.text());
    }
    let dur = ctx.srv.sys.mono_us().saturating_sub(start_us);
    let st = &mut ctx.srv.cmd_stats[cmd.index];
    st.calls += 1;
    st.usec += dur;
    ctx.srv.record_latency(cmd.index, dur);
    ctx.srv.latency_sample(if cmd.has(flag::FAST) { "fast-command" } else { "command" }, dur / 1000);
    ctx.srv.stats.numcommands += 1;
    // A command that changed the dataset reaches the AOF and replicas as it was sent, unless
    // the handler already propagated a rewritten form (e.g. SET EX as SET PXAT).
    if ctx.srv.dirty > dirty_before && !ctx.srv.cmd_rewritten && ctx.srv.propagate_enabled {
        ctx.propagate(argv.to_vec());
    }
    if ctx.srv.dirty > dirty_before && multi::signals(ctx.srv) == signals_before {
        multi::touch_written_keys(ctx, cmd, argv);
    }
}

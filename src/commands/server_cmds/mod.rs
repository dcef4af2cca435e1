//! Connection and server commands: PING, ECHO, HELLO, AUTH, RESET, INFO, DEBUG, SHUTDOWN,
//! TIME, LASTSAVE here; CLIENT, COMMAND and CONFIG in their own files.

mod client;
pub(crate) mod command;
mod config;

use bytes::Bytes;

use super::{CmdError, CmdResult, Ctx, Handler};
use crate::server::info::select_sections;
use crate::server::Shutdown;
use crate::util::glob_match;

pub static COMMANDS: &[(&str, Handler)] = &[
    ("ping", ping),
    ("echo", echo),
    ("hello", hello),
    ("auth", auth),
    ("reset", reset),
    ("info", info),
    ("debug", debug),
    ("shutdown", shutdown),
    ("time", time),
    ("lastsave", lastsave),
    ("client|id", client::id),
    ("client|setname", client::setname),
    ("client|getname", client::getname),
    ("client|list", client::list),
    ("client|info", client::info),
    ("client|kill", client::kill),
    ("client|unblock", client::unblock),
    ("client|no-evict", client::no_evict),
    ("client|reply", client::reply),
    ("client|pause", client::pause),
    ("client|unpause", client::unpause),
    ("client|help", client::help),
    ("command", command::all),
    ("command|count", command::count),
    ("command|info", command::info),
    ("command|docs", command::docs),
    ("command|list", command::list),
    ("command|getkeys", command::getkeys),
    ("command|getkeysandflags", command::getkeys_and_flags),
    ("command|help", command::help),
    ("config|get", config::get),
    ("config|set", config::set),
    ("config|resetstat", config::resetstat),
    ("config|rewrite", config::rewrite),
    ("config|help", config::help),
];

/// Redis's `addReplyHelp`: a title naming the command as typed, the lines, then HELP's own.
pub(crate) fn reply_help(ctx: &mut Ctx, cmd: &[u8], lines: &[&str]) {
    let name = String::from_utf8_lossy(cmd).to_uppercase();
    let out = ctx.out();
    out.array(lines.len() + 3);
    out.simple(&format!("{name} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"));
    for line in lines {
        out.simple(line);
    }
    out.simple("HELP");
    out.simple("    Prints this help.");
}

/// Redis's `addReplySubcommandSyntaxError`.
pub(crate) fn subcommand_syntax_error(a: &[Bytes]) -> CmdError {
    let sub = String::from_utf8_lossy(&a[1][..a[1].len().min(128)]).into_owned();
    let cmd = String::from_utf8_lossy(&a[0]).to_uppercase();
    CmdError::err(format!("unknown subcommand or wrong number of arguments for '{sub}'. Try {cmd} HELP."))
}

fn ping(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    // A RESP2 subscriber gets a message-shaped reply, so it can tell it from the messages.
    if ctx.client.pubsub.active && ctx.client.resp() == 2 && a.len() <= 2 {
        let out = ctx.out();
        out.array(2);
        out.bulk_str("pong");
        out.bulk(a.get(1).map_or(&b""[..], |b| &b[..]));
        return Ok(());
    }
    match a.len() {
        1 => ctx.out().simple("PONG"),
        2 => ctx.out().bulk(&a[1]),
        _ => return Err(CmdError::Other("ERR wrong number of arguments for 'ping' command".into())),
    }
    Ok(())
}

fn echo(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    ctx.out().bulk(&a[1]);
    Ok(())
}

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// Checks a password against `requirepass`, the default user's only password; a user without
/// one ("nopass") accepts any.
fn check_password(ctx: &mut Ctx, user: &[u8], pass: &[u8]) -> Result<(), CmdError> {
    let ok = match &ctx.srv.config.hot.requirepass {
        Some(p) => user == b"default" && p.as_slice() == pass,
        None => user == b"default",
    };
    if !ok {
        return Err(CmdError::Other(WRONGPASS.into()));
    }
    ctx.client.authenticated = true;
    Ok(())
}

fn auth(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    if a.len() > 3 {
        return Err(CmdError::Syntax);
    }
    if a.len() == 2 && ctx.srv.config.hot.requirepass.is_none() {
        return Err(CmdError::err(
            "AUTH <password> called without any password configured for the default user. Are you sure your \
             configuration is correct?",
        ));
    }
    let (user, pass): (&[u8], &[u8]) = if a.len() == 3 { (&a[1], &a[2]) } else { (b"default", &a[1]) };
    check_password(ctx, user, pass)?;
    ctx.out().ok();
    Ok(())
}

/// What HELLO asked for, once its arguments have all parsed.
struct HelloArgs<'a> {
    version: Option<u8>,
    auth: Option<(&'a [u8], &'a [u8])>,
    name: Option<&'a Bytes>,
}

/// HELLO's arguments in Redis's order: the version, then options left to right; SETNAME's
/// name is validated where it stands, before later options are looked at.
fn parse_hello(a: &[Bytes]) -> Result<HelloArgs<'_>, CmdError> {
    let mut args = HelloArgs { version: None, auth: None, name: None };
    if a.len() >= 2 {
        let v = crate::util::arg_i64(&a[1])
            .ok_or_else(|| CmdError::err("Protocol version is not an integer or out of range"))?;
        if !(2..=3).contains(&v) {
            return Err(CmdError::Other("NOPROTO unsupported protocol version".into()));
        }
        args.version = Some(v as u8);
    }
    let mut j = 2;
    while j < a.len() {
        let more = a.len() - j - 1;
        if a[j].eq_ignore_ascii_case(b"auth") && more >= 2 {
            args.auth = Some((&a[j + 1], &a[j + 2]));
            j += 3;
        } else if a[j].eq_ignore_ascii_case(b"setname") && more >= 1 {
            validate_client_name(&a[j + 1])?;
            args.name = Some(&a[j + 1]);
            j += 2;
        } else {
            let opt = String::from_utf8_lossy(&a[j]).into_owned();
            return Err(CmdError::err(format!("Syntax error in HELLO option '{opt}'")));
        }
    }
    Ok(args)
}

fn hello(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let args = parse_hello(a)?;
    if let Some((user, pass)) = args.auth {
        check_password(ctx, user, pass)?;
    }
    if !ctx.client.authenticated {
        return Err(CmdError::Other(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH \
             <user> <pass> option can be used to authenticate the client and select the RESP protocol version at \
             the same time"
                .into(),
        ));
    }
    if let Some(n) = args.name {
        ctx.client.name = if n.is_empty() { None } else { Some(n.clone()) };
    }
    if let Some(v) = args.version {
        ctx.client.out.resp = v;
    }
    let id = ctx.client.id as i64;
    let proto = i64::from(ctx.client.resp());
    let out = ctx.out();
    out.map(7);
    for (k, v) in [("server", "redis"), ("version", "7.0.15")] {
        out.bulk_str(k);
        out.bulk_str(v);
    }
    out.bulk_str("proto");
    out.int(proto);
    out.bulk_str("id");
    out.int(id);
    for (k, v) in [("mode", "standalone"), ("role", "master")] {
        out.bulk_str(k);
        out.bulk_str(v);
    }
    out.bulk_str("modules");
    out.array(0);
    Ok(())
}

/// CLIENT SETNAME's rule: no spaces, newlines or other special characters.
pub fn validate_client_name(name: &[u8]) -> Result<(), CmdError> {
    if name.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(CmdError::err("Client names cannot contain spaces, newlines or special characters."));
    }
    Ok(())
}

/// RESET (Redis 7.0): back to a fresh connection's state: db 0, RESP2, no name, the
/// default user's authentication, replies on.
fn reset(ctx: &mut Ctx, _a: &[Bytes]) -> CmdResult {
    let nopass = ctx.srv.config.hot.requirepass.is_none();
    ctx.srv.discard_transaction(ctx.client);
    ctx.srv.pubsub_unsubscribe_all(ctx.client);
    ctx.client.reset_connection_state(nopass);
    ctx.out().simple("RESET");
    Ok(())
}

fn info(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let args: Vec<String> = a[1..].iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect();
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let sections = select_sections(&refs);
    let text = ctx.srv.info(&sections);
    ctx.out().verbatim(text.as_bytes());
    Ok(())
}

/// The DEBUG subcommands redsim has, in Redis's words.
const DEBUG_HELP: &[&str] = &[
    "LOG <message>",
    "    Write <message> to the server log.",
    "SET-ACTIVE-EXPIRE <0|1>",
    "    Setting it to 0 disables expiring keys in background when they are not",
    "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
    "    default.",
    "DIGEST",
    "    Output a hex signature representing the current DB content.",
    "DIGEST-VALUE <key> [<key> ...]",
    "    Output a hex signature of the values of all the specified keys.",
    "RELOAD [option ...]",
    "    Save the RDB on disk and reload it back to memory. Available <option> values:",
    "    * MERGE: conflicting keys will be loaded from RDB.",
    "    * NOFLUSH: the existing database will not be removed before load, but",
    "      conflicting keys will generate an exception and kill the server.",
    "    * NOSAVE: the database will be loaded from an existing RDB file.",
    "    Examples:",
    "    * DEBUG RELOAD: verify that the server is able to persist, flush and reload",
    "      the database.",
    "    * DEBUG RELOAD NOSAVE: replace the current database with the contents of an",
    "      existing RDB file.",
    "    * DEBUG RELOAD NOSAVE NOFLUSH MERGE: add the contents of an existing RDB",
    "      file to the database.",
    "SLEEP <seconds>",
    "    Stop the server for <seconds>. Decimals allowed.",
];

fn debug(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let sub = a[1].to_ascii_lowercase();
    match (sub.as_slice(), a.len()) {
        (b"help", 2) => reply_help(ctx, &a[0], DEBUG_HELP),
        (b"sleep", 3) => {
            let secs = atof(&a[2]);
            let ms = (secs * 1000.0).max(0.0) as u64;
            // Redis blocks the whole server; every client waits until the pause ends.
            ctx.srv.paused_until_mono_ms = ctx.srv.now.mono_ms.saturating_add(ms);
            // The driver does the sleeping; for the latency monitor the command took that long.
            ctx.srv.latency_sample("command", ms);
            ctx.out().ok();
        }
        (b"set-active-expire", 3) => {
            ctx.srv.active_expire_enabled = atoi(&a[2]) != 0;
            ctx.out().ok();
        }
        (b"populate", 3..=5) => debug_populate(ctx, a)?,
        (b"reload", _) => super::persistence::debug_reload(ctx, a)?,
        (b"digest", 2) => super::persistence::debug_digest(ctx),
        (b"digest-value", _) => super::persistence::debug_digest_value(ctx, a),
        (b"log", 3) => {
            let msg = format!("DEBUG LOG: {}", String::from_utf8_lossy(&a[2]));
            ctx.srv.log(crate::server::log::Level::Warning, &msg);
            ctx.out().ok();
        }
        _ => return Err(subcommand_syntax_error(a)),
    }
    Ok(())
}

/// DEBUG POPULATE count [prefix] [size]: `count` string keys `<prefix>:<n>` (prefix `key`)
/// holding `value:<n>`, cut or zero-padded to `size` bytes when given; keys that exist are
/// left alone. Like Redis, nothing is propagated and the dirty counter does not move.
fn debug_populate(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    // Redis's getPositiveLongFromObjectOrReply: one text for "not a number" and "negative".
    let positive = |b: &Bytes| -> Result<u64, CmdError> {
        match crate::util::arg_i64(b) {
            Some(n) if n >= 0 => Ok(n as u64),
            _ => Err(CmdError::Other("ERR value is out of range, must be positive".into())),
        }
    };
    let count = positive(&a[2])?;
    let size = if a.len() == 5 { Some(positive(&a[4])? as usize) } else { None };
    let prefix: &[u8] = if a.len() >= 4 { &a[3] } else { b"key" };
    let lru = ctx.srv.new_obj_lru();
    let db = ctx.client.db;
    for j in 0..count {
        let mut key = prefix.to_vec();
        key.push(b':');
        key.extend_from_slice(itoa::Buffer::new().format(j).as_bytes());
        if ctx.lookup_write(&key).is_some() {
            continue;
        }
        let mut val = format!("value:{j}").into_bytes();
        if let Some(n) = size {
            val.resize(n, 0);
        }
        ctx.srv.dbs[db].add(
            &key,
            crate::engine::object::RObj::new(
                crate::engine::object::Value::Str(crate::engine::object::Str::from_bytes_no_int(&val)),
                lru,
            ),
        );
    }
    ctx.out().ok();
    Ok(())
}

/// C's `atof`: the longest prefix that reads as a number, else 0.
fn atof(b: &[u8]) -> f64 {
    let s = String::from_utf8_lossy(b);
    let t = s.trim_start();
    (1..=t.len()).rev().filter(|&n| t.is_char_boundary(n)).find_map(|n| t[..n].parse().ok()).unwrap_or(0.0)
}

/// C's `atoi`.
fn atoi(b: &[u8]) -> i64 {
    crate::server::config::strtoll(&String::from_utf8_lossy(b), 10).0
}

fn shutdown(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let mut save = None;
    for arg in &a[1..] {
        match arg.to_ascii_lowercase().as_slice() {
            b"nosave" => save = Some(false),
            b"save" => save = Some(true),
            b"now" | b"force" | b"abort" => {}
            _ => return Err(CmdError::Syntax),
        }
    }
    ctx.srv.log(crate::server::log::Level::Warning, "User requested shutdown...");
    if super::persistence::shutdown_save(ctx, save)? {
        return Ok(());
    }
    ctx.srv.shutdown = Some(Shutdown::Requested { save });
    ctx.client.close_after_reply = true;
    Ok(())
}

fn time(ctx: &mut Ctx, _a: &[Bytes]) -> CmdResult {
    let us = ctx.srv.now.unix_us;
    let out = ctx.out();
    out.array(2);
    out.bulk(itoa::Buffer::new().format(us / 1_000_000).as_bytes());
    out.bulk(itoa::Buffer::new().format(us % 1_000_000).as_bytes());
    Ok(())
}

fn lastsave(ctx: &mut Ctx, _a: &[Bytes]) -> CmdResult {
    let t = ctx.srv.lastsave_unix_secs as i64;
    ctx.out().int(t);
    Ok(())
}

/// Redis's `stringmatchlen(pattern, name, nocase=1)` for names.
fn matches_nocase(pattern: &[u8], name: &str) -> bool {
    glob_match(pattern, name.as_bytes(), true)
}

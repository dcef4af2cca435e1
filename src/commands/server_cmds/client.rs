//! CLIENT: the connection's own state (ID, names, reply mode, eviction), the list of
//! connections (LIST, INFO, KILL) and pausing them (PAUSE, UNPAUSE).

use bytes::Bytes;

use super::{reply_help, subcommand_syntax_error, validate_client_name, CmdError, CmdResult, Ctx};
use crate::server::client::{ClientType, PauseKind};
use crate::server::Client;

const CLIENT_HELP: &[&str] = &[
    "CACHING (YES|NO)",
    "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
    "GETREDIR",
    "    Return the client ID we are redirecting to when tracking is enabled.",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "PAUSE <timeout> [WRITE|ALL]",
    "    Suspend all, or just write, clients for <timeout> milliseconds.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
    "    Unblock the specified blocked client.",
    "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
    "         [OPTIN] [OPTOUT] [NOLOOP]",
    "    Control server assisted client side caching.",
    "TRACKINGINFO",
    "    Report tracking status for the current connection.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
];

pub fn help(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    reply_help(ctx, &a[0], CLIENT_HELP);
    Ok(())
}

pub fn id(ctx: &mut Ctx, _a: &[Bytes]) -> CmdResult {
    let id = ctx.client.id as i64;
    ctx.out().int(id);
    Ok(())
}

pub fn setname(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    validate_client_name(&a[2])?;
    ctx.client.name = if a[2].is_empty() { None } else { Some(a[2].clone()) };
    ctx.out().ok();
    Ok(())
}

pub fn getname(ctx: &mut Ctx, _a: &[Bytes]) -> CmdResult {
    match ctx.client.name.clone() {
        Some(n) => ctx.out().bulk(&n),
        None => ctx.out().null(),
    }
    Ok(())
}

pub fn info(ctx: &mut Ctx, _a: &[Bytes]) -> CmdResult {
    let mut line = ctx.client.info_line(ctx.srv.now.mono_ms, ctx.srv.watches.is_dirty(ctx.client.id));
    line.push('\n');
    ctx.out().verbatim(line.as_bytes());
    Ok(())
}

/// Every client in id order, the caller included (it is out of the server's map while its
/// command runs).
fn all_clients<'a>(ctx: &'a Ctx) -> Vec<&'a Client> {
    let mut all: Vec<&Client> = ctx.srv.clients.values().map(|c| &**c).collect();
    let at = all.partition_point(|c| c.id < ctx.client.id);
    all.insert(at, &*ctx.client);
    all
}

fn client_by_id<'a>(ctx: &'a Ctx, id: u64) -> Option<&'a Client> {
    if id == ctx.client.id {
        Some(&*ctx.client)
    } else {
        ctx.srv.clients.get(&id).map(|c| &**c)
    }
}

fn unknown_type(name: &[u8]) -> CmdError {
    CmdError::err(format!("Unknown client type '{}'", String::from_utf8_lossy(name)))
}

/// CLIENT LIST [TYPE type | ID id ...].
pub fn list(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let now = ctx.srv.now.mono_ms;
    let mut text = String::new();
    if a.len() == 4 && a[2].eq_ignore_ascii_case(b"type") {
        let t = ClientType::by_name(&a[3]).ok_or_else(|| unknown_type(&a[3]))?;
        for c in all_clients(ctx).into_iter().filter(|c| c.client_type() == t) {
            text.push_str(&c.info_line(now, ctx.srv.watches.is_dirty(c.id)));
            text.push('\n');
        }
    } else if a.len() > 3 && a[2].eq_ignore_ascii_case(b"id") {
        for arg in &a[3..] {
            let id = crate::util::arg_i64(arg).ok_or_else(|| CmdError::err("Invalid client ID"))?;
            if let Some(c) = client_by_id(ctx, id as u64) {
                text.push_str(&c.info_line(now, ctx.srv.watches.is_dirty(c.id)));
                text.push('\n');
            }
        }
    } else if a.len() == 2 {
        for c in all_clients(ctx) {
            text.push_str(&c.info_line(now, ctx.srv.watches.is_dirty(c.id)));
            text.push('\n');
        }
    } else {
        return Err(CmdError::Syntax);
    }
    ctx.out().verbatim(text.as_bytes());
    Ok(())
}

/// Which clients CLIENT KILL closes.
#[derive(Default)]
struct KillFilter<'a> {
    addr: Option<&'a [u8]>,
    laddr: Option<&'a [u8]>,
    kind: Option<ClientType>,
    id: Option<u64>,
    skipme: bool,
}

impl KillFilter<'_> {
    fn matches(&self, c: &Client, me: u64) -> bool {
        self.addr.is_none_or(|a| a == c.addr.as_bytes())
            && self.laddr.is_none_or(|a| a == c.laddr.as_bytes())
            && self.kind.is_none_or(|t| t == c.client_type())
            && self.id.is_none_or(|id| id == c.id)
            && !(self.skipme && c.id == me)
    }
}

/// The new form's `<option> <value>` pairs.
fn parse_kill_filter(a: &[Bytes]) -> Result<KillFilter<'_>, CmdError> {
    let mut f = KillFilter { skipme: true, ..Default::default() };
    for pair in a[2..].chunks(2) {
        let [opt, val] = pair else {
            return Err(CmdError::Syntax);
        };
        match opt.to_ascii_lowercase().as_slice() {
            b"id" => {
                let id = crate::util::arg_i64(val).filter(|&n| n >= 1);
                f.id = Some(id.ok_or_else(|| CmdError::err("client-id should be greater than 0"))? as u64);
            }
            b"type" => f.kind = Some(ClientType::by_name(val).ok_or_else(|| unknown_type(val))?),
            b"addr" => f.addr = Some(val),
            b"laddr" => f.laddr = Some(val),
            // The default user is the only user.
            b"user" if val.as_ref() == b"default" => {}
            b"user" => return Err(CmdError::err(format!("No such user '{}'", String::from_utf8_lossy(val)))),
            b"skipme" if val.eq_ignore_ascii_case(b"yes") => f.skipme = true,
            b"skipme" if val.eq_ignore_ascii_case(b"no") => f.skipme = false,
            _ => return Err(CmdError::Syntax),
        }
    }
    Ok(f)
}

/// CLIENT KILL addr (old form: may kill the caller, replies OK or an error) or CLIENT KILL
/// <option> <value> ... (new form: skips the caller unless SKIPME no, replies a count). The
/// caller, when killed, gets its reply first.
/// CLIENT UNBLOCK id [TIMEOUT|ERROR]: 1 if the client was blocked on keys and is now
/// answered as if timed out (or with an error), else 0.
pub fn unblock(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    if a.len() > 4 {
        return Err(subcommand_syntax_error(a));
    }
    let error = match a.get(3) {
        None => false,
        Some(r) if r.eq_ignore_ascii_case(b"timeout") => false,
        Some(r) if r.eq_ignore_ascii_case(b"error") => true,
        Some(_) => return Err(CmdError::err("CLIENT UNBLOCK reason should be TIMEOUT or ERROR")),
    };
    let id = crate::commands::int_arg(&a[2])?;
    let done = match u64::try_from(id) {
        Ok(id) => ctx.srv.client_unblock(id, error),
        Err(_) => false,
    };
    ctx.out().int(done as i64);
    Ok(())
}

pub fn kill(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let old_form = a.len() == 3;
    let filter = if old_form { KillFilter { addr: Some(&a[2]), ..Default::default() } } else { parse_kill_filter(a)? };
    let me = ctx.client.id;
    let victims: Vec<u64> = all_clients(ctx).into_iter().filter(|c| filter.matches(c, me)).map(|c| c.id).collect();
    for &id in &victims {
        if id == me {
            ctx.client.close_after_reply = true;
        } else {
            ctx.srv.kill_client(id);
        }
    }
    match (old_form, victims.len()) {
        (true, 0) => return Err(CmdError::err("No such client")),
        (true, _) => ctx.out().ok(),
        (false, n) => ctx.out().int(n as i64),
    }
    Ok(())
}

pub fn no_evict(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    ctx.client.no_evict = on_off(&a[2]).ok_or(CmdError::Syntax)?;
    ctx.out().ok();
    Ok(())
}

fn on_off(b: &[u8]) -> Option<bool> {
    if b.eq_ignore_ascii_case(b"on") {
        Some(true)
    } else if b.eq_ignore_ascii_case(b"off") {
        Some(false)
    } else {
        None
    }
}

/// CLIENT REPLY ON|OFF|SKIP. OFF and SKIP have no reply of their own; `Server::process`
/// drops the replies they silence.
pub fn reply(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let mode = a[2].to_ascii_lowercase();
    match mode.as_slice() {
        b"on" => {
            ctx.client.reply_off = false;
            ctx.client.reply_skip_next = false;
            ctx.out().ok();
        }
        b"off" => ctx.client.reply_off = true,
        b"skip" => ctx.client.reply_skip_next = !ctx.client.reply_off,
        _ => return Err(CmdError::Syntax),
    }
    Ok(())
}

/// CLIENT PAUSE timeout-ms [WRITE|ALL]: the mode is checked before the timeout, as in Redis.
pub fn pause(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    if a.len() > 4 {
        return Err(subcommand_syntax_error(a));
    }
    let kind = match a.get(3) {
        None => PauseKind::All,
        Some(m) if m.eq_ignore_ascii_case(b"all") => PauseKind::All,
        Some(m) if m.eq_ignore_ascii_case(b"write") => PauseKind::Write,
        Some(_) => return Err(CmdError::err("CLIENT PAUSE mode must be WRITE or ALL")),
    };
    let ms = crate::util::arg_i64(&a[2]).ok_or_else(|| CmdError::err("timeout is not an integer or out of range"))?;
    if ms < 0 {
        return Err(CmdError::err("timeout is negative"));
    }
    let end = ctx.srv.now.mono_ms.saturating_add(ms as u64);
    ctx.srv.pause_clients(kind, end);
    ctx.out().ok();
    Ok(())
}

pub fn unpause(ctx: &mut Ctx, _a: &[Bytes]) -> CmdResult {
    ctx.srv.unpause_clients();
    ctx.out().ok();
    Ok(())
}

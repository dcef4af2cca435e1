//! Connection and server commands: PING, ECHO, HELLO, AUTH, INFO, CONFIG, DEBUG, SHUTDOWN,
//! TIME, LASTSAVE.

use bytes::Bytes;

use super::{CmdError, CmdResult, Ctx, Handler};
use crate::server::config::SetError;
use crate::server::info::select_sections;
use crate::server::Shutdown;

pub static COMMANDS: &[(&str, Handler)] = &[
    ("ping", ping),
    ("echo", echo),
    ("hello", hello),
    ("auth", auth),
    ("info", info),
    ("config|get", config_get),
    ("config|set", config_set),
    ("config|resetstat", config_resetstat),
    ("debug", debug),
    ("shutdown", shutdown),
    ("time", time),
    ("lastsave", lastsave),
];

fn ping(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
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

/// Checks a password against `requirepass` (the default user's only password).
fn check_password(ctx: &mut Ctx, user: &[u8], pass: &[u8]) -> Result<(), CmdError> {
    let ok = match &ctx.srv.config.hot.requirepass {
        Some(p) => user == b"default" && p.as_slice() == pass,
        None => user == b"default",
    };
    if ok {
        ctx.client.authenticated = true;
        Ok(())
    } else {
        Err(CmdError::Other("WRONGPASS invalid username-password pair or user is disabled.".into()))
    }
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

fn hello(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let mut ver = None;
    let mut j = 1;
    if a.len() >= 2 {
        let v = crate::util::arg_i64(&a[1])
            .ok_or_else(|| CmdError::err("Protocol version is not an integer or out of range"))?;
        if !(2..=3).contains(&v) {
            return Err(CmdError::Other("NOPROTO unsupported protocol version".into()));
        }
        ver = Some(v as u8);
        j = 2;
    }
    let mut name = None;
    while j < a.len() {
        let more = a.len() - j - 1;
        if a[j].eq_ignore_ascii_case(b"auth") && more >= 2 {
            check_password(ctx, &a[j + 1], &a[j + 2])?;
            j += 3;
        } else if a[j].eq_ignore_ascii_case(b"setname") && more >= 1 {
            name = Some(a[j + 1].clone());
            j += 2;
        } else {
            let opt = String::from_utf8_lossy(&a[j]).into_owned();
            return Err(CmdError::err(format!("Syntax error in HELLO option '{opt}'")));
        }
    }
    if !ctx.client.authenticated {
        return Err(CmdError::Other(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH \
             <user> <pass> option can be used to authenticate the client and select the RESP protocol version at \
             the same time"
                .into(),
        ));
    }
    if let Some(n) = name {
        super::server_cmds::validate_client_name(&n)?;
        ctx.client.name = if n.is_empty() { None } else { Some(n) };
    }
    if let Some(v) = ver {
        ctx.client.out.resp = v;
    }
    let id = ctx.client.id as i64;
    let proto = ctx.client.resp() as i64;
    let out = ctx.out();
    out.map(7);
    out.bulk_str("server");
    out.bulk_str("redis");
    out.bulk_str("version");
    out.bulk_str("7.0.15");
    out.bulk_str("proto");
    out.int(proto);
    out.bulk_str("id");
    out.int(id);
    out.bulk_str("mode");
    out.bulk_str("standalone");
    out.bulk_str("role");
    out.bulk_str("master");
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

fn info(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let args: Vec<String> = a[1..].iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect();
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let sections = select_sections(&refs);
    let text = ctx.srv.info(&sections);
    ctx.out().verbatim(text.as_bytes());
    Ok(())
}

fn config_get(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let patterns: Vec<&[u8]> = a[2..].iter().map(|b| &b[..]).collect();
    let pairs = ctx.srv.config.matching(&patterns);
    let out = &mut ctx.client.out;
    out.map(pairs.len());
    for (name, value) in pairs {
        out.bulk_str(name);
        out.bulk_str(&value);
    }
    Ok(())
}

fn config_set(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    if a.len() % 2 == 1 {
        return Err(CmdError::Other("ERR wrong number of arguments for 'config|set' command".into()));
    }
    // All or nothing: apply to a copy, keep it only if every pair is accepted.
    let mut next = ctx.srv.config.clone();
    let mut seen = Vec::new();
    for pair in a[2..].chunks(2) {
        let name = String::from_utf8_lossy(&pair[0]).into_owned();
        let value = String::from_utf8_lossy(&pair[1]).into_owned();
        let canonical = crate::server::config::find_def(&name).map(|d| d.name);
        if let Some(c) = canonical {
            if seen.contains(&c) {
                return Err(CmdError::err(format!("CONFIG SET failed (possibly related to argument '{name}') - duplicate parameter")));
            }
            seen.push(c);
        }
        match next.set(&name, &value) {
            Ok(()) => {}
            Err(SetError::UnknownOption) => {
                return Err(CmdError::err(format!("Unknown option or number of arguments for CONFIG SET - '{name}'")));
            }
            Err(SetError::Immutable) => {
                return Err(CmdError::err(format!(
                    "CONFIG SET failed (possibly related to argument '{name}') - can't set immutable config"
                )));
            }
            Err(SetError::Invalid(why)) => {
                return Err(CmdError::err(format!("CONFIG SET failed (possibly related to argument '{name}') - {why}")));
            }
        }
    }
    ctx.srv.config = next;
    if ctx.srv.config.hot.maxmemory > 0 {
        ctx.srv.perform_evictions();
    }
    ctx.out().ok();
    Ok(())
}

fn config_resetstat(ctx: &mut Ctx, _a: &[Bytes]) -> CmdResult {
    let peak = ctx.srv.sys.used_memory();
    ctx.srv.stats = crate::server::Stats { peak_memory: peak, ..Default::default() };
    for s in ctx.srv.cmd_stats.iter_mut() {
        *s = Default::default();
    }
    ctx.out().ok();
    Ok(())
}

fn debug(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let sub = a[1].to_ascii_lowercase();
    match sub.as_slice() {
        b"sleep" if a.len() == 3 => {
            let secs = crate::util::parse_f64(&a[2]).ok_or(CmdError::NotFloat)?;
            let ms = (secs * 1000.0).max(0.0) as u64;
            // Redis blocks the whole server; every client waits until the pause ends.
            ctx.srv.paused_until_mono_ms = ctx.srv.now.mono_ms + ms;
            ctx.out().ok();
        }
        _ => {
            let s = String::from_utf8_lossy(&a[1]).into_owned();
            return Err(CmdError::err(format!("unknown subcommand or wrong number of arguments for '{s}'. Try DEBUG HELP.")));
        }
    }
    Ok(())
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

//! Key expiry commands (Redis's `expire.c`): EXPIRE and its variants, TTL and its variants,
//! PERSIST. Whatever unit or base a command takes, replicas and the AOF get an absolute
//! `PEXPIREAT`, so that replaying it later cannot move the deadline; a deadline already in
//! the past deletes the key and reaches them as `DEL`.

use bytes::Bytes;

use super::{int_arg, CmdError, CmdResult, Ctx, Handler};
use crate::server::notify::class;

pub static COMMANDS: &[(&str, Handler)] = &[
    ("expire", expire),
    ("pexpire", pexpire),
    ("expireat", expireat),
    ("pexpireat", pexpireat),
    ("ttl", ttl),
    ("pttl", pttl),
    ("expiretime", expiretime),
    ("pexpiretime", pexpiretime),
    ("persist", persist),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Seconds,
    Millis,
}

/// EXPIRE's NX / XX / GT / LT conditions.
#[derive(Debug, Default, Clone, Copy)]
struct Cond {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

/// Redis's `parseExtendedExpireArgumentsOrReply`: unknown options first, then conflicts.
fn parse_cond(a: &[Bytes]) -> Result<Cond, CmdError> {
    let mut c = Cond::default();
    for arg in &a[3..] {
        // Redis compares and prints the option as a C string: it ends at a NUL.
        let opt = arg.split(|&b| b == 0).next().unwrap_or(arg);
        match opt.to_ascii_lowercase().as_slice() {
            b"nx" => c.nx = true,
            b"xx" => c.xx = true,
            b"gt" => c.gt = true,
            b"lt" => c.lt = true,
            _ => {
                let opt = String::from_utf8_lossy(opt);
                return Err(CmdError::err(format!("Unsupported option {opt}")));
            }
        }
    }
    if c.nx && (c.xx || c.gt || c.lt) {
        return Err(CmdError::err("NX and XX, GT or LT options at the same time are not compatible"));
    }
    if c.gt && c.lt {
        return Err(CmdError::err("GT and LT options at the same time are not compatible"));
    }
    Ok(c)
}

impl Cond {
    /// Whether the new deadline `when_ms` may replace `current_ms` (none: no TTL, which GT
    /// and LT treat as an infinite TTL).
    fn allows(self, when_ms: i64, current_ms: Option<i64>) -> bool {
        match current_ms {
            None => !(self.xx || self.gt),
            Some(cur) => !(self.nx || (self.gt && when_ms <= cur) || (self.lt && when_ms >= cur)),
        }
    }
}

/// How an EXPIRE-family command reads its time argument.
#[derive(Debug, Clone, Copy)]
struct ExpireCmd {
    name: &'static str,
    unit: Unit,
    /// Relative to now (EXPIRE, PEXPIRE) or a Unix time (EXPIREAT, PEXPIREAT).
    relative: bool,
}

impl ExpireCmd {
    /// The absolute deadline in Unix ms that `arg` means, or the overflow error.
    fn deadline_ms(self, arg: &[u8], now_ms: u64) -> Result<i64, CmdError> {
        let bad = CmdError::InvalidExpire(self.name);
        let mut when = int_arg(arg)?;
        if self.unit == Unit::Seconds {
            when = when.checked_mul(1000).ok_or(bad.clone())?;
        }
        let base = if self.relative { now_ms as i64 } else { 0 };
        when.checked_add(base).ok_or(bad)
    }
}

/// Redis's `expireGenericCommand`.
fn expire_generic(ctx: &mut Ctx, a: &[Bytes], cmd: ExpireCmd) -> CmdResult {
    let key = &a[1];
    let cond = parse_cond(a)?;
    let when_ms = cmd.deadline_ms(&a[2], ctx.now_ms())?;
    if ctx.lookup_write(key).is_none() {
        ctx.out().int(0);
        return Ok(());
    }
    let db = ctx.db_index();
    let current_ms = ctx.srv.dbs[db].expire_of(key).map(|w| w as i64);
    if !cond.allows(when_ms, current_ms) {
        ctx.out().int(0);
        return Ok(());
    }
    ctx.dirty(1);
    // Redis's `checkAlreadyExpired`: a replica keeps the key and waits for the master's DEL.
    if when_ms <= ctx.now_ms() as i64 && ctx.srv.is_master() {
        ctx.srv.dbs[db].delete(key);
        ctx.notify(class::GENERIC, "del", key);
        ctx.out().int(1);
        let del = super::string::del_cmd(ctx, "lazyfree-lazy-expire");
        ctx.propagate_as(vec![del, key.clone()]);
        return Ok(());
    }
    // Only a replica can get here with a negative time; 0 is just as past.
    ctx.srv.dbs[db].set_expire(key, when_ms.max(0) as u64);
    ctx.out().int(1);
    ctx.notify(class::GENERIC, "expire", key);
    if cmd.name != "pexpireat" {
        let when = Bytes::from(when_ms.to_string());
        let head = [Bytes::from_static(b"PEXPIREAT"), key.clone(), when];
        ctx.propagate_as(head.into_iter().chain(a[3..].iter().cloned()).collect());
    }
    Ok(())
}

fn expire(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let cmd = ExpireCmd { name: "expire", unit: Unit::Seconds, relative: true };
    expire_generic(ctx, a, cmd)
}

fn pexpire(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let cmd = ExpireCmd { name: "pexpire", unit: Unit::Millis, relative: true };
    expire_generic(ctx, a, cmd)
}

fn expireat(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let cmd = ExpireCmd { name: "expireat", unit: Unit::Seconds, relative: false };
    expire_generic(ctx, a, cmd)
}

fn pexpireat(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let cmd = ExpireCmd { name: "pexpireat", unit: Unit::Millis, relative: false };
    expire_generic(ctx, a, cmd)
}

/// Redis's `lookupKeyReadWithFlags(LOOKUP_NOTOUCH)`: expires and counts hits and misses,
/// but leaves the LRU/LFU field alone, so asking for a TTL does not make a key recent.
fn exists_counted(ctx: &mut Ctx, key: &[u8]) -> bool {
    let found = ctx.exists(key);
    if found {
        ctx.srv.stats.keyspace_hits += 1;
    } else {
        ctx.srv.stats.keyspace_misses += 1;
        ctx.notify(class::KEY_MISS, "keymiss", key);
    }
    found
}

/// Redis's `ttlGenericCommand`: -2 for no key, -1 for no TTL; seconds are rounded.
fn ttl_generic(ctx: &mut Ctx, key: &[u8], millis: bool, absolute: bool) -> CmdResult {
    if !exists_counted(ctx, key) {
        ctx.out().int(-2);
        return Ok(());
    }
    let db = ctx.db_index();
    let Some(when_ms) = ctx.srv.dbs[db].expire_of(key) else {
        ctx.out().int(-1);
        return Ok(());
    };
    let ms = if absolute { when_ms } else { when_ms.saturating_sub(ctx.now_ms()) };
    let reply = if millis { ms } else { (ms + 500) / 1000 };
    ctx.out().int(reply as i64);
    Ok(())
}

fn ttl(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, &a[1], false, false)
}

fn pttl(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, &a[1], true, false)
}

fn expiretime(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, &a[1], false, true)
}

fn pexpiretime(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, &a[1], true, true)
}

fn persist(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let db = ctx.db_index();
    let removed = ctx.lookup_write(&a[1]).is_some() && ctx.srv.dbs[db].remove_expire(&a[1]);
    if removed {
        ctx.dirty(1);
        ctx.notify(class::GENERIC, "persist", &a[1]);
    }
    ctx.out().int(removed as i64);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, server, take_propagated, NOW_UNIX_MS};
    use crate::server::Server;

    fn propagating_with_key() -> Server {
        let mut srv = server();
        srv.propagate_enabled = true;
        run(&mut srv, &["SET", "k", "v"]);
        take_propagated(&mut srv);
        srv
    }

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn relative_expire_propagates_as_pexpireat_keeping_its_condition() {
        let mut srv = propagating_with_key();
        assert_eq!(run(&mut srv, &["EXPIRE", "k", "100", "NX"]), b":1\r\n");
        assert_eq!(run(&mut srv, &["PEXPIRE", "k", "500000", "gt"]), b":1\r\n");
        assert_eq!(run(&mut srv, &["EXPIREAT", "k", "4102444800"]), b":1\r\n");
        let in_100s = (NOW_UNIX_MS + 100_000).to_string();
        let in_500s = (NOW_UNIX_MS + 500_000).to_string();
        assert_eq!(
            take_propagated(&mut srv),
            [
                words(&["PEXPIREAT", "k", &in_100s, "NX"]),
                words(&["PEXPIREAT", "k", &in_500s, "gt"]),
                words(&["PEXPIREAT", "k", "4102444800000"]),
            ]
        );
    }

    #[test]
    fn pexpireat_and_persist_propagate_as_sent() {
        let mut srv = propagating_with_key();
        run(&mut srv, &["PEXPIREAT", "k", "4102444800123"]);
        run(&mut srv, &["PERSIST", "k"]);
        run(&mut srv, &["PERSIST", "k"]);
        assert_eq!(take_propagated(&mut srv), [words(&["PEXPIREAT", "k", "4102444800123"]), words(&["PERSIST", "k"])]);
    }

    #[test]
    fn expire_in_the_past_deletes_and_propagates_del() {
        let mut srv = propagating_with_key();
        assert_eq!(run(&mut srv, &["EXPIRE", "k", "-1"]), b":1\r\n");
        assert_eq!(run(&mut srv, &["EXISTS", "k"]), b":0\r\n");
        assert_eq!(take_propagated(&mut srv), [words(&["DEL", "k"])]);
    }

    #[test]
    fn expire_refused_by_its_condition_changes_and_propagates_nothing() {
        let mut srv = propagating_with_key();
        assert_eq!(run(&mut srv, &["EXPIRE", "k", "100", "XX"]), b":0\r\n");
        assert_eq!(run(&mut srv, &["EXPIRE", "k", "100", "GT"]), b":0\r\n");
        assert_eq!(run(&mut srv, &["EXPIRE", "missing", "100"]), b":0\r\n");
        assert_eq!(run(&mut srv, &["TTL", "k"]), b":-1\r\n");
        assert!(take_propagated(&mut srv).is_empty());
    }

    #[test]
    fn lt_on_a_key_without_ttl_sets_one() {
        let mut srv = propagating_with_key();
        assert_eq!(run(&mut srv, &["EXPIRE", "k", "100", "LT"]), b":1\r\n");
        assert_eq!(run(&mut srv, &["EXPIRE", "k", "200", "LT"]), b":0\r\n");
        assert_eq!(run(&mut srv, &["TTL", "k"]), b":100\r\n");
    }

    #[test]
    fn expire_overflow_names_the_command() {
        let mut srv = propagating_with_key();
        assert_eq!(
            run(&mut srv, &["EXPIRE", "k", "9223372036854775807"]),
            b"-ERR invalid expire time in 'expire' command\r\n"
        );
        assert_eq!(
            run(&mut srv, &["PEXPIRE", "k", "9223372036854775807"]),
            b"-ERR invalid expire time in 'pexpire' command\r\n"
        );
    }

    #[test]
    fn ttl_rounds_seconds_and_expiretime_is_absolute() {
        let mut srv = propagating_with_key();
        run(&mut srv, &["PEXPIRE", "k", "1499"]);
        assert_eq!(run(&mut srv, &["TTL", "k"]), b":1\r\n");
        assert_eq!(run(&mut srv, &["PTTL", "k"]), b":1499\r\n");
        let at_ms = NOW_UNIX_MS + 1499;
        let pexpiretime = format!(":{at_ms}\r\n");
        assert_eq!(run(&mut srv, &["PEXPIRETIME", "k"]), pexpiretime.as_bytes());
        let expiretime = format!(":{}\r\n", (at_ms + 500) / 1000);
        assert_eq!(run(&mut srv, &["EXPIRETIME", "k"]), expiretime.as_bytes());
        assert_eq!(run(&mut srv, &["TTL", "missing"]), b":-2\r\n");
    }
}

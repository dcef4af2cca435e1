//! String commands (Redis's `t_string.c`). Values are int/embstr/raw encoded as Redis does;
//! relative expiries are propagated as absolute `PXAT` so replicas and the AOF agree.

use bytes::Bytes;

use super::{as_str, int_arg, CmdError, CmdResult, Ctx, Handler};
use crate::engine::object::{RObj, Str, Value};

pub static COMMANDS: &[(&str, Handler)] = &[
    ("get", get),
    ("set", set),
    ("setnx", setnx),
    ("setex", setex),
    ("psetex", psetex),
    ("mget", mget),
    ("mset", mset),
    ("incr", incr),
    ("decr", decr),
    ("incrby", incrby),
    ("decrby", decrby),
    ("incrbyfloat", incrbyfloat),
];

/// Replies with the string at `key`, null when missing; WRONGTYPE for other types.
/// Returns whether the key existed (Redis's `getGenericCommand`).
pub fn reply_get(ctx: &mut Ctx, key: &[u8]) -> Result<bool, CmdError> {
    let (obj, out) = ctx.lookup_read_out(key);
    match obj {
        None => {
            out.null();
            Ok(false)
        }
        Some(o) => {
            match as_str(o)? {
                Str::Int(n) => out.bulk(itoa::Buffer::new().format(*n).as_bytes()),
                Str::Emb(b) => out.bulk(b),
                Str::Raw(v) => out.bulk(v),
            }
            Ok(true)
        }
    }
}

fn get(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    reply_get(ctx, &a[1]).map(|_| ())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Seconds,
    Millis,
}

/// The SET family's options (Redis's `parseExtendedStringArgumentsOrReply` for SET).
#[derive(Debug, Default)]
struct SetOpts<'a> {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    /// (value, unit, absolute)
    expire: Option<(&'a [u8], Unit, bool)>,
}

fn parse_set_opts(a: &[Bytes]) -> Result<SetOpts<'_>, CmdError> {
    let mut o = SetOpts::default();
    let mut j = 3;
    while j < a.len() {
        let opt = a[j].to_ascii_lowercase();
        let next = a.get(j + 1);
        let has_expire = o.expire.is_some();
        match opt.as_slice() {
            b"nx" if !o.xx => o.nx = true,
            b"xx" if !o.nx => o.xx = true,
            b"get" => o.get = true,
            b"keepttl" if !has_expire => o.keepttl = true,
            b"ex" | b"px" | b"exat" | b"pxat" if !o.keepttl && !has_expire && next.is_some() => {
                let unit = if opt[0] == b'e' { Unit::Seconds } else { Unit::Millis };
                o.expire = Some((next.expect("checked"), unit, opt.len() == 4));
                j += 1;
            }
            _ => return Err(CmdError::Syntax),
        }
        j += 1;
    }
    Ok(o)
}

/// Redis's `getExpireMillisecondsOrReply`: the absolute expiry in Unix ms.
fn expire_at_ms(ctx: &Ctx, v: &[u8], unit: Unit, absolute: bool, cmd: &'static str) -> Result<u64, CmdError> {
    let n = int_arg(v)?;
    if n <= 0 || (unit == Unit::Seconds && n > i64::MAX / 1000) {
        return Err(CmdError::InvalidExpire(cmd));
    }
    let mut ms = if unit == Unit::Seconds { n * 1000 } else { n };
    if !absolute {
        ms = ms.checked_add(ctx.now_ms() as i64).ok_or(CmdError::InvalidExpire(cmd))?;
    }
    if ms <= 0 {
        return Err(CmdError::InvalidExpire(cmd));
    }
    Ok(ms as u64)
}

/// Stores `val` at `key` with SET's semantics and propagation.
fn set_generic(ctx: &mut Ctx, key: &Bytes, val: &Bytes, o: &SetOpts, cmd: &'static str) -> CmdResult {
    let expire_ms = match o.expire {
        Some((v, unit, abs)) => Some(expire_at_ms(ctx, v, unit, abs, cmd)?),
        None => None,
    };
    if o.get {
        // Checks the type (WRONGTYPE before anything changes) and replies with the old value.
        let len_before = ctx.client.out.len();
        if let Err(e) = reply_get(ctx, key) {
            ctx.client.out.buf.truncate(len_before);
            return Err(e);
        }
    }
    let found = ctx.exists(key);
    if (o.nx && found) || (o.xx && !found) {
        if !o.get {
            ctx.out().null();
        }
        return Ok(());
    }
    let obj = ctx.new_string(val);
    let db = ctx.db_index();
    ctx.srv.dbs[db].set(key, obj, o.keepttl);
    ctx.dirty(1);
    if let Some(when) = expire_ms {
        ctx.srv.dbs[db].set_expire(key, when);
        let pxat = Bytes::from(when.to_string());
        ctx.propagate_as(vec![Bytes::from_static(b"SET"), key.clone(), val.clone(), Bytes::from_static(b"PXAT"), pxat]);
    } else if o.get {
        let argv: Vec<Bytes> = std::iter::once(Bytes::from_static(b"SET"))
            .chain([key.clone(), val.clone()])
            .chain(o.keepttl.then(|| Bytes::from_static(b"KEEPTTL")))
            .chain(o.nx.then(|| Bytes::from_static(b"NX")))
            .chain(o.xx.then(|| Bytes::from_static(b"XX")))
            .collect();
        ctx.propagate_as(argv);
    }
    if !o.get {
        ctx.out().ok();
    }
    Ok(())
}

fn set(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let o = parse_set_opts(a)?;
    set_generic(ctx, &a[1], &a[2], &o, "set")
}

fn setnx(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    if ctx.exists(&a[1]) {
        ctx.out().int(0);
        return Ok(());
    }
    let obj = ctx.new_string(&a[2]);
    let db = ctx.db_index();
    ctx.srv.dbs[db].add(&a[1], obj);
    ctx.dirty(1);
    ctx.out().int(1);
    Ok(())
}

fn setex_generic(ctx: &mut Ctx, a: &[Bytes], unit: Unit, cmd: &'static str) -> CmdResult {
    let o = SetOpts { expire: Some((&a[2], unit, false)), ..SetOpts::default() };
    set_generic(ctx, &a[1], &a[3], &o, cmd)
}

fn setex(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    setex_generic(ctx, a, Unit::Seconds, "setex")
}

fn psetex(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    setex_generic(ctx, a, Unit::Millis, "psetex")
}

fn mget(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    ctx.out().array(a.len() - 1);
    for key in &a[1..] {
        let (obj, out) = ctx.lookup_read_out(key);
        match obj.map(|o| &o.val) {
            Some(Value::Str(s)) => match s {
                Str::Int(n) => out.bulk(itoa::Buffer::new().format(*n).as_bytes()),
                Str::Emb(b) => out.bulk(b),
                Str::Raw(v) => out.bulk(v),
            },
            #[allow(unreachable_patterns)]
            _ => out.null(),
        }
    }
    Ok(())
}

fn mset(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    if a.len() % 2 == 0 {
        return Err(CmdError::Other("ERR wrong number of arguments for 'mset' command".into()));
    }
    let db = ctx.db_index();
    for kv in a[1..].chunks(2) {
        let obj = ctx.new_string(&kv[1]);
        ctx.srv.dbs[db].set(&kv[0], obj, false);
    }
    ctx.dirty(((a.len() - 1) / 2) as u64);
    ctx.out().ok();
    Ok(())
}

/// Redis's `incrDecrCommand`: keeps the TTL, reuses the object when it is a private int.
fn incr_decr(ctx: &mut Ctx, key: &[u8], by: i64) -> CmdResult {
    let share = crate::server::evict::can_share_integers(ctx.srv);
    let lru = ctx.new_lru();
    let db = ctx.db_index();
    let cur = match ctx.lookup_write(key) {
        None => None,
        Some(o) => Some(as_str(o)?.as_int().ok_or(CmdError::NotInteger)?),
    };
    let old = cur.unwrap_or(0);
    let value = old.checked_add(by).ok_or(CmdError::Overflow)?;
    let obj = RObj::from_int(value, lru, share);
    match cur {
        Some(_) => {
            let slot = ctx.srv.dbs[db].get_mut(key).expect("looked up");
            slot.val = obj.val;
            slot.shared = obj.shared;
        }
        None => ctx.srv.dbs[db].add(key, obj),
    }
    ctx.dirty(1);
    ctx.out().int(value);
    Ok(())
}

fn incr(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    incr_decr(ctx, &a[1], 1)
}

fn decr(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    incr_decr(ctx, &a[1], -1)
}

fn incrby(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let by = int_arg(&a[2])?;
    incr_decr(ctx, &a[1], by)
}

fn decrby(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let by = int_arg(&a[2])?;
    if by == i64::MIN {
        return Err(CmdError::err("decrement would overflow"));
    }
    incr_decr(ctx, &a[1], -by)
}

fn incrbyfloat(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    use crate::engine::ldouble::{incr_by_float, LdError};
    let db = ctx.db_index();
    let cur = match ctx.lookup_write(&a[1]) {
        None => None,
        Some(o) => Some(as_str(o)?.bytes().into_owned()),
    };
    let sum = incr_by_float(cur.as_deref().unwrap_or(b"0"), &a[2]).map_err(|e| match e {
        LdError::NotFloat => CmdError::NotFloat,
        LdError::NanOrInfinity => CmdError::err("increment would produce NaN or Infinity"),
    })?;
    let obj = RObj::new(Value::Str(Str::from_bytes_no_int(&sum)), ctx.new_lru());
    match cur {
        Some(_) => ctx.srv.dbs[db].get_mut(&a[1]).expect("looked up").val = obj.val,
        None => ctx.srv.dbs[db].add(&a[1], obj),
    }
    ctx.dirty(1);
    ctx.out().bulk(&sum);
    // Replicas and the AOF get the result, so float formatting can never make them diverge.
    ctx.propagate_as(vec![Bytes::from_static(b"SET"), a[1].clone(), Bytes::from(sum), Bytes::from_static(b"KEEPTTL")]);
    Ok(())
}

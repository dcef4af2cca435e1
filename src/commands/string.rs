//! String commands (Redis's `t_string.c`). Values are int/embstr/raw encoded as Redis does;
//! relative expiries are propagated as absolute `PXAT`/`PEXPIREAT` so replicas and the AOF
//! agree whenever they replay them.

use bytes::Bytes;

use super::{as_str, as_str_mut, int_arg, CmdError, CmdResult, Ctx, Handler};
use crate::engine::object::{RObj, Str, Value};
use crate::protocol::ReplyBuf;
use crate::server::notify::class;

pub static COMMANDS: &[(&str, Handler)] = &[
    ("get", get),
    ("set", set),
    ("setnx", setnx),
    ("setex", setex),
    ("psetex", psetex),
    ("getset", getset),
    ("getdel", getdel),
    ("getex", getex),
    ("mget", mget),
    ("mset", mset),
    ("msetnx", msetnx),
    ("append", append),
    ("strlen", strlen),
    ("getrange", getrange),
    ("substr", getrange),
    ("setrange", setrange),
    ("lcs", lcs),
    ("incr", incr),
    ("decr", decr),
    ("incrby", incrby),
    ("decrby", decrby),
    ("incrbyfloat", incrbyfloat),
];

const STRING_TOO_LONG: &str = "string exceeds maximum allowed size (proto-max-bulk-len)";

fn reply_str(out: &mut ReplyBuf, s: &Str) {
    match s {
        Str::Int(n) => out.bulk(itoa::Buffer::new().format(*n).as_bytes()),
        Str::Emb(b) => out.bulk(b),
        Str::Raw(v) => out.bulk(v),
    }
}

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
            reply_str(out, as_str(o)?);
            Ok(true)
        }
    }
}

fn get(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    reply_get(ctx, &a[1]).map(|_| ())
}

/// An argument as C sees it: Redis compares options with `strcasecmp`, which stops at NUL.
fn c_str(b: &[u8]) -> &[u8] {
    b.split(|&c| c == 0).next().unwrap_or(b)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Seconds,
    Millis,
}

/// EX, PX, EXAT or PXAT with its (unparsed) argument.
#[derive(Debug, Clone, Copy)]
struct ExpireArg<'a> {
    value: &'a [u8],
    unit: Unit,
    absolute: bool,
}

/// Options of SET and GETEX (Redis's `parseExtendedStringArgumentsOrReply`).
#[derive(Debug, Default)]
struct ExtOpts<'a> {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    expire: Option<ExpireArg<'a>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExtCmd {
    Set,
    Getex,
}

/// Parses from argv[3] (SET) or argv[2] (GETEX). As in Redis, an expiry option may repeat
/// itself (`EX 10 EX 20`, the last wins) but never meet another expiry kind.
fn parse_ext_opts(a: &[Bytes], cmd: ExtCmd) -> Result<ExtOpts<'_>, CmdError> {
    let set = cmd == ExtCmd::Set;
    let mut o = ExtOpts::default();
    let mut j = if set { 3 } else { 2 };
    while j < a.len() {
        let opt = c_str(&a[j]).to_ascii_lowercase();
        let next = a.get(j + 1);
        let no_ttl_opt = !o.keepttl && !o.persist;
        match opt.as_slice() {
            b"nx" if set && !o.xx => o.nx = true,
            b"xx" if set && !o.nx => o.xx = true,
            b"get" if set => o.get = true,
            b"keepttl" if set && !o.persist && o.expire.is_none() => o.keepttl = true,
            b"persist" if !set && !o.keepttl && o.expire.is_none() => o.persist = true,
            b"ex" | b"px" | b"exat" | b"pxat" if no_ttl_opt && next.is_some() => {
                let arg = ExpireArg {
                    value: next.expect("checked"),
                    unit: if opt[0] == b'e' { Unit::Seconds } else { Unit::Millis },
                    absolute: opt.len() == 4,
                };
                if o.expire.is_some_and(|e| (e.unit, e.absolute) != (arg.unit, arg.absolute)) {
                    return Err(CmdError::Syntax);
                }
                o.expire = Some(arg);
                j += 1;
            }
            _ => return Err(CmdError::Syntax),
        }
        j += 1;
    }
    Ok(o)
}

/// Redis's `getExpireMillisecondsOrReply`: the absolute expiry in Unix ms.
fn expire_at_ms(ctx: &Ctx, e: ExpireArg, cmd: &'static str) -> Result<u64, CmdError> {
    let n = int_arg(e.value)?;
    if n <= 0 || (e.unit == Unit::Seconds && n > i64::MAX / 1000) {
        return Err(CmdError::InvalidExpire(cmd));
    }
    let mut ms = if e.unit == Unit::Seconds { n * 1000 } else { n };
    if !e.absolute {
        ms = ms.checked_add(ctx.now_ms() as i64).ok_or(CmdError::InvalidExpire(cmd))?;
    }
    Ok(ms as u64)
}

/// What a SET-family command replies when it sets the key or does not (with GET, the old
/// value is the reply instead).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetReply {
    /// SET, SETEX, PSETEX: OK, or null when NX/XX stopped it.
    OkOrNull,
    /// SETNX: 1 or 0.
    OneOrZero,
}

impl SetReply {
    fn send(self, out: &mut ReplyBuf, did_set: bool) {
        match (self, did_set) {
            (SetReply::OkOrNull, true) => out.ok(),
            (SetReply::OkOrNull, false) => out.null(),
            (SetReply::OneOrZero, set) => out.int(set as i64),
        }
    }
}

/// Stores `val` at `key` with SET's semantics and propagation (Redis's `setGenericCommand`).
fn set_generic(
    ctx: &mut Ctx,
    a: &[Bytes],
    (key, val): (&Bytes, &Bytes),
    o: &ExtOpts,
    cmd: &'static str,
    reply: SetReply,
) -> CmdResult {
    let expire_ms = match o.expire {
        Some(e) => Some(expire_at_ms(ctx, e, cmd)?),
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
    let found = ctx.lookup_write(key).is_some();
    let did_set = !((o.nx && found) || (o.xx && !found));
    if did_set {
        let obj = ctx.new_string(val);
        let db = ctx.db_index();
        ctx.srv.dbs[db].set(key, obj, o.keepttl);
        if let Some(when) = expire_ms {
            ctx.srv.dbs[db].set_expire(key, when);
        }
        ctx.dirty(1);
        ctx.notify(class::STRING, "set", key);
        if expire_ms.is_some() {
            ctx.notify(class::GENERIC, "expire", key);
        }
        propagate_set(ctx, a, (key, val), o, expire_ms);
    }
    if !o.get {
        reply.send(ctx.out(), did_set);
    }
    Ok(())
}

/// A relative expiry reaches replicas as `SET k v PXAT <abs>`; GET is dropped because
/// replicas send no replies. Anything else goes as sent.
fn propagate_set(ctx: &mut Ctx, a: &[Bytes], (key, val): (&Bytes, &Bytes), o: &ExtOpts, expire_ms: Option<u64>) {
    if let Some(when) = expire_ms {
        ctx.propagate_as(vec![
            Bytes::from_static(b"SET"),
            key.clone(),
            val.clone(),
            Bytes::from_static(b"PXAT"),
            Bytes::from(when.to_string()),
        ]);
    } else if o.get {
        let argv = a
            .iter()
            .enumerate()
            .filter(|(j, arg)| *j < 3 || !c_str(arg).eq_ignore_ascii_case(b"get"))
            .map(|(_, arg)| arg.clone())
            .collect();
        ctx.propagate_as(argv);
    }
}

fn set(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let o = parse_ext_opts(a, ExtCmd::Set)?;
    set_generic(ctx, a, (&a[1], &a[2]), &o, "set", SetReply::OkOrNull)
}

fn setnx(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let o = ExtOpts { nx: true, ..ExtOpts::default() };
    set_generic(ctx, a, (&a[1], &a[2]), &o, "setnx", SetReply::OneOrZero)
}

fn setex_generic(ctx: &mut Ctx, a: &[Bytes], unit: Unit, cmd: &'static str) -> CmdResult {
    let expire = ExpireArg { value: &a[2], unit, absolute: false };
    let o = ExtOpts { expire: Some(expire), ..ExtOpts::default() };
    set_generic(ctx, a, (&a[1], &a[3]), &o, cmd, SetReply::OkOrNull)
}

fn setex(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    setex_generic(ctx, a, Unit::Seconds, "setex")
}

fn psetex(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    setex_generic(ctx, a, Unit::Millis, "psetex")
}

/// GETSET's reply is for its caller only: replicas get the write as a plain SET.
fn getset(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    reply_get(ctx, &a[1])?;
    let obj = ctx.new_string(&a[2]);
    let db = ctx.db_index();
    ctx.srv.dbs[db].set(&a[1], obj, false);
    ctx.dirty(1);
    ctx.notify(class::STRING, "set", &a[1]);
    ctx.propagate_as(vec![Bytes::from_static(b"SET"), a[1].clone(), a[2].clone()]);
    Ok(())
}

/// How replicas see a deletion: UNLINK when the `lazyfree-lazy-*` switch for this kind of
/// deletion is on (Redis frees the value in the background then), DEL otherwise.
pub(super) fn del_cmd(ctx: &Ctx, lazyfree_config: &str) -> Bytes {
    match ctx.srv.config.get(lazyfree_config) {
        Some("yes") => Bytes::from_static(b"UNLINK"),
        _ => Bytes::from_static(b"DEL"),
    }
}

fn getdel(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    if !reply_get(ctx, &a[1])? {
        return Ok(());
    }
    let db = ctx.db_index();
    ctx.srv.dbs[db].delete(&a[1]);
    ctx.dirty(1);
    ctx.notify(class::GENERIC, "del", &a[1]);
    let del = del_cmd(ctx, "lazyfree-lazy-user-del");
    ctx.propagate_as(vec![del, a[1].clone()]);
    Ok(())
}

/// GETEX never propagates as itself: as PEXPIREAT (absolute), DEL when the new time has
/// already passed, or PERSIST.
fn getex(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let o = parse_ext_opts(a, ExtCmd::Getex)?;
    let key = &a[1];
    let len_before = ctx.client.out.len();
    if !reply_get(ctx, key)? {
        return Ok(());
    }
    let expire_ms = match o.expire {
        Some(e) => match expire_at_ms(ctx, e, "getex") {
            Ok(ms) => Some((ms, e.absolute)),
            Err(err) => {
                // Redis validates the time after the type and before replying the value.
                ctx.client.out.buf.truncate(len_before);
                return Err(err);
            }
        },
        None => None,
    };
    getex_apply(ctx, key, expire_ms, o.persist);
    Ok(())
}

/// GETEX's write, once the value is replied: `expire_ms` is (deadline, given as absolute).
fn getex_apply(ctx: &mut Ctx, key: &Bytes, expire_ms: Option<(u64, bool)>, persist: bool) {
    let db = ctx.db_index();
    let now_ms = ctx.now_ms();
    match expire_ms {
        // Only EXAT/PXAT can be in the past; a replica keeps the key for the master's DEL.
        Some((ms, true)) if ms <= now_ms && ctx.srv.is_master() => {
            ctx.srv.dbs[db].delete(key);
            ctx.dirty(1);
            ctx.notify(class::GENERIC, "del", key);
            let del = del_cmd(ctx, "lazyfree-lazy-expire");
            ctx.propagate_as(vec![del, key.clone()]);
        }
        Some((ms, _)) => {
            ctx.srv.dbs[db].set_expire(key, ms);
            ctx.dirty(1);
            ctx.notify(class::GENERIC, "expire", key);
            let when = Bytes::from(ms.to_string());
            ctx.propagate_as(vec![Bytes::from_static(b"PEXPIREAT"), key.clone(), when]);
        }
        None if persist && ctx.srv.dbs[db].remove_expire(key) => {
            ctx.dirty(1);
            ctx.notify(class::GENERIC, "persist", key);
            ctx.propagate_as(vec![Bytes::from_static(b"PERSIST"), key.clone()]);
        }
        None => {}
    }
}

fn mget(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    ctx.out().array(a.len() - 1);
    for key in &a[1..] {
        let (obj, out) = ctx.lookup_read_out(key);
        match obj.map(|o| &o.val) {
            Some(Value::Str(s)) => reply_str(out, s),
            #[allow(unreachable_patterns)]
            _ => out.null(),
        }
    }
    Ok(())
}

/// Redis's `msetGenericCommand`: MSETNX sets nothing when any key exists.
fn mset_generic(ctx: &mut Ctx, a: &[Bytes], nx: bool) -> CmdResult {
    let pairs = &a[1..];
    if pairs.len() % 2 == 1 {
        let name = if nx { "msetnx" } else { "mset" };
        return Err(CmdError::err(format!("wrong number of arguments for '{name}' command")));
    }
    if nx && a[1..].iter().step_by(2).any(|k| ctx.lookup_write(k).is_some()) {
        ctx.out().int(0);
        return Ok(());
    }
    let db = ctx.db_index();
    for kv in a[1..].chunks(2) {
        let obj = ctx.new_string(&kv[1]);
        ctx.srv.dbs[db].set(&kv[0], obj, false);
        ctx.notify(class::STRING, "set", &kv[0]);
    }
    ctx.dirty(((a.len() - 1) / 2) as u64);
    if nx {
        ctx.out().int(1);
    } else {
        ctx.out().ok();
    }
    Ok(())
}

fn mset(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    mset_generic(ctx, a, false)
}

fn msetnx(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    mset_generic(ctx, a, true)
}

/// Redis's `checkStringLength`: a string may not grow past proto-max-bulk-len.
fn check_string_length(ctx: &Ctx, size: u64, append: u64) -> CmdResult {
    let max = ctx.srv.config.hot.proto_max_bulk_len;
    match size.checked_add(append) {
        Some(total) if total <= max => Ok(()),
        _ => Err(CmdError::err(STRING_TOO_LONG)),
    }
}

/// The stored string made growable in place (Redis's `dbUnshareStringValue`).
fn unshare(o: &mut RObj) -> Result<&mut Vec<u8>, CmdError> {
    o.shared = false;
    Ok(as_str_mut(o)?.make_raw())
}

fn append(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let (key, tail) = (&a[1], &a[2]);
    let db = ctx.db_index();
    let cur_len = match ctx.lookup_write(key) {
        None => None,
        Some(o) => Some(as_str(o)?.len()),
    };
    let total = match cur_len {
        None => {
            let obj = ctx.new_string(tail);
            ctx.srv.dbs[db].add(key, obj);
            tail.len()
        }
        Some(len) => {
            check_string_length(ctx, len as u64, tail.len() as u64)?;
            let obj = ctx.srv.dbs[db].get_mut(key).expect("looked up");
            let v = unshare(obj)?;
            v.extend_from_slice(tail);
            v.len()
        }
    };
    ctx.dirty(1);
    ctx.notify(class::STRING, "append", key);
    ctx.out().int(total as i64);
    Ok(())
}

fn strlen(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let (obj, out) = ctx.lookup_read_out(&a[1]);
    let len = match obj {
        None => 0,
        Some(o) => as_str(o)?.len(),
    };
    out.int(len as i64);
    Ok(())
}

/// The byte range GETRANGE returns for a string of `len` bytes, with Redis's clamping
/// (`start > end` after clamping, or an empty string, is empty).
fn clamp_range(mut start: i64, mut end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    if (start < 0 && end < 0 && start > end) || len == 0 {
        return None;
    }
    if start < 0 {
        start = start.wrapping_add(len).max(0);
    }
    if end < 0 {
        end = end.wrapping_add(len).max(0);
    }
    end = end.min(len - 1);
    (start <= end).then_some((start as usize, end as usize))
}

/// GETRANGE and its old name SUBSTR.
fn getrange(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let start = int_arg(&a[2])?;
    let end = int_arg(&a[3])?;
    let (obj, out) = ctx.lookup_read_out(&a[1]);
    let Some(o) = obj else {
        out.bulk(b"");
        return Ok(());
    };
    let s = as_str(o)?.bytes();
    match clamp_range(start, end, s.len()) {
        Some((from, to)) => out.bulk(&s[from..=to]),
        None => out.bulk(b""),
    }
    Ok(())
}

fn setrange(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let (key, value) = (&a[1], &a[3]);
    let offset = int_arg(&a[2])?;
    if offset < 0 {
        return Err(CmdError::err("offset is out of range"));
    }
    let offset = offset as u64;
    let db = ctx.db_index();
    let cur_len = match ctx.lookup_write(key) {
        None => None,
        Some(o) => Some(as_str(o)?.len()),
    };
    if value.is_empty() {
        // Setting nothing creates nothing and changes nothing.
        ctx.out().int(cur_len.unwrap_or(0) as i64);
        return Ok(());
    }
    check_string_length(ctx, offset, value.len() as u64)?;
    if cur_len.is_none() {
        let raw = Str::Raw(Box::default());
        let obj = RObj::new(Value::Str(raw), ctx.new_lru());
        ctx.srv.dbs[db].add(key, obj);
    }
    let obj = ctx.srv.dbs[db].get_mut(key).expect("present");
    let v = unshare(obj)?;
    let (from, to) = (offset as usize, offset as usize + value.len());
    if v.len() < to {
        v.resize(to, 0);
    }
    v[from..to].copy_from_slice(value);
    let total = v.len();
    ctx.dirty(1);
    ctx.notify(class::STRING, "setrange", &a[1]);
    ctx.out().int(total as i64);
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
    ctx.notify(class::STRING, "incrby", key);
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
    ctx.notify(class::STRING, "incrbyfloat", &a[1]);
    ctx.out().bulk(&sum);
    // Replicas and the AOF get the result, so float formatting can never make them diverge.
    ctx.propagate_as(vec![Bytes::from_static(b"SET"), a[1].clone(), Bytes::from(sum), Bytes::from_static(b"KEEPTTL")]);
    Ok(())
}

/// LCS's options.
#[derive(Debug, Default)]
struct LcsOpts {
    len: bool,
    idx: bool,
    withmatchlen: bool,
    minmatchlen: u64,
}

fn parse_lcs_opts(a: &[Bytes]) -> Result<LcsOpts, CmdError> {
    let mut o = LcsOpts::default();
    let mut j = 3;
    while j < a.len() {
        let opt = c_str(&a[j]).to_ascii_lowercase();
        match opt.as_slice() {
            b"idx" => o.idx = true,
            b"len" => o.len = true,
            b"withmatchlen" => o.withmatchlen = true,
            b"minmatchlen" if j + 1 < a.len() => {
                o.minmatchlen = int_arg(&a[j + 1])?.max(0) as u64;
                j += 1;
            }
            _ => return Err(CmdError::Syntax),
        }
        j += 1;
    }
    if o.idx && o.len {
        return Err(CmdError::err("If you want both the length and indexes, please just use IDX."));
    }
    Ok(o)
}

/// The string at `key` for LCS: missing keys are empty strings, other types refused.
fn lcs_operand(ctx: &mut Ctx, key: &[u8]) -> Result<Vec<u8>, ()> {
    match ctx.lookup_read(key) {
        None => Ok(Vec::new()),
        Some(o) => as_str(o).map(|s| s.bytes().into_owned()).map_err(|_| ()),
    }
}

/// The dynamic-programming table of LCS lengths: `t[i * (b.len() + 1) + j]` is the LCS length
/// of `a[..i]` and `b[..j]`.
struct LcsTable {
    t: Vec<u32>,
    cols: usize,
}

impl LcsTable {
    fn build(a: &[u8], b: &[u8]) -> Self {
        let cols = b.len() + 1;
        let mut t = vec![0u32; (a.len() + 1) * cols];
        for i in 1..=a.len() {
            for j in 1..=b.len() {
                t[i * cols + j] = if a[i - 1] == b[j - 1] {
                    t[(i - 1) * cols + j - 1] + 1
                } else {
                    t[(i - 1) * cols + j].max(t[i * cols + j - 1])
                };
            }
        }
        LcsTable { t, cols }
    }

    fn at(&self, i: usize, j: usize) -> u32 {
        self.t[i * self.cols + j]
    }
}

/// A matching range: (start, end) in each string, inclusive.
type LcsMatch = ((usize, usize), (usize, usize));

/// Walks the table back from the end (as Redis does, so matches come last-first), returning
/// the common subsequence and the contiguous ranges it is made of.
fn lcs_walk(a: &[u8], b: &[u8], t: &LcsTable) -> (Vec<u8>, Vec<LcsMatch>) {
    let mut idx = t.at(a.len(), b.len()) as usize;
    let mut result = vec![0u8; idx];
    let mut ranges = Vec::new();
    let mut cur: Option<LcsMatch> = None;
    let (mut i, mut j) = (a.len(), b.len());
    while i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            result[idx - 1] = a[i - 1];
            match &mut cur {
                None => cur = Some(((i - 1, i - 1), (j - 1, j - 1))),
                Some(((a0, _), (b0, _))) if *a0 == i && *b0 == j => {
                    *a0 -= 1;
                    *b0 -= 1;
                }
                Some(_) => emit = true,
            }
            let ((a0, _), (b0, _)) = cur.expect("set above");
            emit |= a0 == 0 || b0 == 0;
            idx -= 1;
            i -= 1;
            j -= 1;
        } else {
            if t.at(i - 1, j) > t.at(i, j - 1) {
                i -= 1;
            } else {
                j -= 1;
            }
            emit = cur.is_some();
        }
        if emit {
            ranges.extend(cur.take());
        }
    }
    (result, ranges)
}

fn reply_lcs_idx(out: &mut ReplyBuf, o: &LcsOpts, ranges: &[LcsMatch], len: u32) {
    let shown: Vec<&LcsMatch> = ranges.iter().filter(|((a0, a1), _)| (a1 - a0 + 1) as u64 >= o.minmatchlen).collect();
    out.map(2);
    out.bulk(b"matches");
    out.array(shown.len());
    for &&((a0, a1), (b0, b1)) in &shown {
        out.array(2 + o.withmatchlen as usize);
        for (from, to) in [(a0, a1), (b0, b1)] {
            out.array(2);
            out.int(from as i64);
            out.int(to as i64);
        }
        if o.withmatchlen {
            out.int((a1 - a0 + 1) as i64);
        }
    }
    out.bulk(b"len");
    out.int(len as i64);
}

/// Redis's `lcsCommand`. The table is transient memory of (|a|+1)(|b|+1) u32s, refused above
/// proto-max-bulk-len as Redis does.
fn lcs(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let (x, y) = match (lcs_operand(ctx, &a[1]), lcs_operand(ctx, &a[2])) {
        (Ok(x), Ok(y)) => (x, y),
        _ => return Err(CmdError::err("The specified keys must contain string values")),
    };
    let o = parse_lcs_opts(a)?;
    if x.len() >= u32::MAX as usize - 1 || y.len() >= u32::MAX as usize - 1 {
        return Err(CmdError::err("String too long for LCS"));
    }
    let cells = (x.len() as u64 + 1) * (y.len() as u64 + 1);
    if cells * 4 > ctx.srv.config.hot.proto_max_bulk_len {
        return Err(CmdError::err("Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len"));
    }
    let t = LcsTable::build(&x, &y);
    let len = t.at(x.len(), y.len());
    if o.len && !o.idx {
        ctx.out().int(len as i64);
        return Ok(());
    }
    let (result, ranges) = lcs_walk(&x, &y, &t);
    if o.idx {
        reply_lcs_idx(ctx.out(), &o, &ranges, len);
    } else {
        ctx.out().bulk(&result);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{advance, propagating, run, server, take_propagated, words, NOW_UNIX_MS};

    #[test]
    fn set_ex_propagates_as_set_pxat_absolute() {
        let mut srv = propagating();
        run(&mut srv, &["SET", "k", "v", "EX", "10"]);
        run(&mut srv, &["PSETEX", "p", "250", "v"]);
        let in_10s = (NOW_UNIX_MS + 10_000).to_string();
        let in_250ms = (NOW_UNIX_MS + 250).to_string();
        assert_eq!(
            take_propagated(&mut srv),
            [words(&["SET", "k", "v", "PXAT", &in_10s]), words(&["SET", "p", "v", "PXAT", &in_250ms]),]
        );
    }

    #[test]
    fn set_get_propagates_without_its_get_options() {
        let mut srv = propagating();
        run(&mut srv, &["SET", "k", "v", "GET", "KEEPTTL", "get"]);
        assert_eq!(take_propagated(&mut srv), [words(&["SET", "k", "v", "KEEPTTL"])]);
    }

    #[test]
    fn set_nx_that_sets_nothing_propagates_nothing() {
        let mut srv = propagating();
        run(&mut srv, &["SET", "k", "v"]);
        take_propagated(&mut srv);
        assert_eq!(run(&mut srv, &["SET", "k", "w", "NX", "EX", "10"]), b"$-1\r\n");
        assert_eq!(run(&mut srv, &["MSETNX", "k", "1", "j", "2"]), b":0\r\n");
        assert!(take_propagated(&mut srv).is_empty());
    }

    #[test]
    fn getex_relative_expiry_propagates_as_pexpireat() {
        let mut srv = propagating();
        run(&mut srv, &["SET", "k", "v"]);
        take_propagated(&mut srv);
        assert_eq!(run(&mut srv, &["GETEX", "k", "EX", "100"]), b"$1\r\nv\r\n");
        run(&mut srv, &["GETEX", "k", "PXAT", "4102444800123"]);
        let in_100s = (NOW_UNIX_MS + 100_000).to_string();
        assert_eq!(
            take_propagated(&mut srv),
            [words(&["PEXPIREAT", "k", &in_100s]), words(&["PEXPIREAT", "k", "4102444800123"]),]
        );
    }

    #[test]
    fn getex_persist_propagates_only_when_a_ttl_goes() {
        let mut srv = propagating();
        run(&mut srv, &["SET", "k", "v", "EX", "100"]);
        take_propagated(&mut srv);
        run(&mut srv, &["GETEX", "k", "PERSIST"]);
        run(&mut srv, &["GETEX", "k", "PERSIST"]);
        run(&mut srv, &["GETEX", "k"]);
        assert_eq!(take_propagated(&mut srv), [words(&["PERSIST", "k"])]);
    }

    #[test]
    fn getex_time_in_the_past_deletes_and_propagates_del() {
        let mut srv = propagating();
        run(&mut srv, &["SET", "k", "v"]);
        take_propagated(&mut srv);
        assert_eq!(run(&mut srv, &["GETEX", "k", "EXAT", "1"]), b"$1\r\nv\r\n");
        assert_eq!(run(&mut srv, &["EXISTS", "k"]), b":0\r\n");
        assert_eq!(take_propagated(&mut srv), [words(&["DEL", "k"])]);
    }

    #[test]
    fn getset_and_getdel_propagate_as_set_and_del() {
        let mut srv = propagating();
        run(&mut srv, &["GETSET", "k", "v"]);
        run(&mut srv, &["GETDEL", "k"]);
        run(&mut srv, &["GETDEL", "k"]);
        assert_eq!(take_propagated(&mut srv), [words(&["SET", "k", "v"]), words(&["DEL", "k"])]);
    }

    #[test]
    fn incrbyfloat_propagates_its_result_keeping_the_ttl() {
        let mut srv = propagating();
        run(&mut srv, &["INCRBYFLOAT", "f", "10.5"]);
        run(&mut srv, &["INCRBYFLOAT", "f", "0.1"]);
        assert_eq!(
            take_propagated(&mut srv),
            [words(&["SET", "f", "10.5", "KEEPTTL"]), words(&["SET", "f", "10.6", "KEEPTTL"]),]
        );
    }

    #[test]
    fn lazy_expiry_on_read_propagates_del_first() {
        let mut srv = propagating();
        run(&mut srv, &["SET", "k", "v", "PX", "100"]);
        take_propagated(&mut srv);
        advance(&mut srv, 101);
        assert_eq!(run(&mut srv, &["APPEND", "k", "w"]), b":1\r\n");
        assert_eq!(take_propagated(&mut srv), [words(&["DEL", "k"]), words(&["APPEND", "k", "w"])]);
    }

    #[test]
    fn append_and_setrange_leave_a_raw_string() {
        let mut srv = server();
        run(&mut srv, &["SET", "n", "12"]);
        assert_eq!(run(&mut srv, &["APPEND", "n", "3"]), b":3\r\n");
        assert_eq!(run(&mut srv, &["SETRANGE", "s", "2", "ab"]), b":4\r\n");
        for key in ["n", "s"] {
            let obj = srv.dbs[0].get(key.as_bytes()).expect("stored");
            assert_eq!(obj.val.encoding(), "raw");
        }
        assert_eq!(run(&mut srv, &["GET", "s"]), b"$4\r\n\x00\x00ab\r\n");
    }

    #[test]
    fn getrange_clamps_as_redis() {
        use super::clamp_range;
        assert_eq!(clamp_range(0, -1, 11), Some((0, 10)));
        assert_eq!(clamp_range(-5, -1, 11), Some((6, 10)));
        assert_eq!(clamp_range(-1, -5, 11), None);
        assert_eq!(clamp_range(5, 2, 11), None);
        assert_eq!(clamp_range(i64::MIN, 2, 11), Some((0, 2)));
        assert_eq!(clamp_range(0, i64::MAX, 11), Some((0, 10)));
        assert_eq!(clamp_range(0, -1, 0), None);
    }

    #[test]
    fn lcs_ranges_come_last_first_as_redis() {
        use super::{lcs_walk, LcsTable};
        let (a, b) = (b"ohmytext".as_slice(), b"mynewtext".as_slice());
        let (result, ranges) = lcs_walk(a, b, &LcsTable::build(a, b));
        assert_eq!(result, b"mytext");
        assert_eq!(ranges, [((4, 7), (5, 8)), ((2, 3), (0, 1))]);
    }
}

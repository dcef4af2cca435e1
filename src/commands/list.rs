//! List commands (Redis's `t_list.c`). Lists are quicklists (`engine::list`); an emptied
//! list is deleted at once. Blocking pops park the client in `server::blocking` and are
//! served there, in the order clients blocked, after the command that filled the key.

use bytes::Bytes;

use super::{int_arg, CmdError, CmdResult, Ctx, Handler};
use crate::engine::list::List;
use crate::engine::object::{RObj, Value};
use crate::protocol::ReplyBuf;
use crate::server::blocking::{BlockedOp, Side};
use crate::server::notify::class;

pub static COMMANDS: &[(&str, Handler)] = &[
    ("lpush", lpush),
    ("rpush", rpush),
    ("lpushx", lpushx),
    ("rpushx", rpushx),
    ("linsert", linsert),
    ("llen", llen),
    ("lindex", lindex),
    ("lset", lset),
    ("lpop", lpop),
    ("rpop", rpop),
    ("lrange", lrange),
    ("ltrim", ltrim),
    ("lpos", lpos),
    ("lrem", lrem),
    ("rpoplpush", rpoplpush),
    ("lmove", lmove),
    ("lmpop", lmpop),
    ("blpop", blpop),
    ("brpop", brpop),
    ("brpoplpush", brpoplpush),
    ("blmove", blmove),
    ("blmpop", blmpop),
];

pub fn as_list(o: &RObj) -> Result<&List, CmdError> {
    match &o.val {
        Value::List(l) => Ok(l),
        _ => Err(CmdError::WrongType),
    }
}

pub fn as_list_mut(o: &mut RObj) -> Result<&mut List, CmdError> {
    match &mut o.val {
        Value::List(l) => Ok(l),
        _ => Err(CmdError::WrongType),
    }
}

/// Errors with WRONGTYPE when `key` holds something other than a list.
fn check_list_or_missing(ctx: &mut Ctx, key: &[u8]) -> CmdResult {
    match ctx.lookup_write(key) {
        Some(o) => as_list(o).map(|_| ()),
        None => Ok(()),
    }
}

/// The list at `key` for writing, created (and its waiters signalled) when missing.
fn list_for_push<'a>(ctx: &'a mut Ctx, key: &[u8]) -> &'a mut List {
    if ctx.lookup_write(key).is_none() {
        let fill = ctx.srv.config.hot.list_max_listpack_size.clamp(i32::MIN as i64, i32::MAX as i64) as i32;
        let obj = RObj::new(Value::List(Box::new(List::new(fill))), ctx.new_lru());
        let db = ctx.client.db;
        ctx.srv.dbs[db].add(key, obj);
        ctx.srv.signal_key_as_ready(db, key);
    }
    let db = ctx.client.db;
    let obj = ctx.srv.dbs[db].get_mut(key).expect("just ensured");
    as_list_mut(obj).expect("checked by the caller")
}

fn push(list: &mut List, side: Side, v: &[u8]) {
    match side {
        Side::Left => list.push_front(v),
        Side::Right => list.push_back(v),
    }
}

fn pop(list: &mut List, side: Side) -> Option<Vec<u8>> {
    match side {
        Side::Left => list.pop_front(),
        Side::Right => list.pop_back(),
    }
}

/// Deletes `key` when its list became empty (a key never holds an empty list).
fn delete_if_empty(ctx: &mut Ctx, key: &[u8]) {
    let db = ctx.client.db;
    if ctx.srv.dbs[db].get(key).is_some_and(|o| matches!(&o.val, Value::List(l) if l.is_empty())) {
        ctx.srv.dbs[db].delete(key);
        ctx.notify(class::GENERIC, "del", key);
    }
}

/// The keyspace event of a push to `side`.
fn push_event(side: Side) -> &'static str {
    match side {
        Side::Left => "lpush",
        Side::Right => "rpush",
    }
}

/// LPUSH/RPUSH/LPUSHX/RPUSHX (Redis's `pushGenericCommand`).
fn push_generic(ctx: &mut Ctx, a: &[Bytes], side: Side, xx: bool) -> CmdResult {
    let key = &a[1];
    let exists = match ctx.lookup_write(key) {
        Some(o) => {
            as_list(o)?;
            true
        }
        None => false,
    };
    if xx && !exists {
        ctx.out().int(0);
        return Ok(());
    }
    let list = list_for_push(ctx, key);
    for v in &a[2..] {
        push(list, side, v);
    }
    let len = list.len();
    ctx.dirty((a.len() - 2) as u64);
    ctx.out().int(len as i64);
    ctx.notify(class::LIST, push_event(side), key);
    Ok(())
}

fn lpush(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    push_generic(ctx, a, Side::Left, false)
}

fn rpush(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    push_generic(ctx, a, Side::Right, false)
}

fn lpushx(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    push_generic(ctx, a, Side::Left, true)
}

fn rpushx(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    push_generic(ctx, a, Side::Right, true)
}

fn linsert(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let after = if a[2].eq_ignore_ascii_case(b"after") {
        true
    } else if a[2].eq_ignore_ascii_case(b"before") {
        false
    } else {
        return Err(CmdError::Syntax);
    };
    let Some(obj) = ctx.lookup_write(&a[1]) else {
        ctx.out().int(0);
        return Ok(());
    };
    let list = as_list_mut(obj)?;
    let Some(pos) = list.iter().position(|e| e == &a[3][..]) else {
        ctx.out().int(-1);
        return Ok(());
    };
    list.insert(pos + after as usize, &a[4]);
    let len = list.len();
    ctx.dirty(1);
    ctx.notify(class::LIST, "linsert", &a[1]);
    ctx.out().int(len as i64);
    Ok(())
}

fn llen(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let (obj, out) = ctx.lookup_read_out(&a[1]);
    let n = match obj {
        Some(o) => as_list(o)?.len(),
        None => 0,
    };
    out.int(n as i64);
    Ok(())
}

/// A Redis index (negative counts from the tail) as a position, if it is inside `len`.
fn resolve_index(index: i64, len: usize) -> Option<usize> {
    let i = if index < 0 { len as i64 + index } else { index };
    (0..len as i64).contains(&i).then_some(i as usize)
}

fn lindex(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let (obj, out) = ctx.lookup_read_out(&a[1]);
    let Some(o) = obj else {
        out.null();
        return Ok(());
    };
    let list = as_list(o)?;
    let index = int_arg(&a[2])?;
    match resolve_index(index, list.len()).and_then(|i| list.get(i)) {
        Some(v) => out.bulk(v),
        None => out.null(),
    }
    Ok(())
}

fn lset(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let obj = ctx.lookup_write(&a[1]).ok_or(CmdError::NoSuchKey)?;
    let list = as_list_mut(obj)?;
    let index = int_arg(&a[2])?;
    let i = resolve_index(index, list.len()).ok_or(CmdError::OutOfRange)?;
    list.set(i, &a[3]);
    ctx.dirty(1);
    ctx.out().ok();
    ctx.notify(class::LIST, "lset", &a[1]);
    Ok(())
}

/// A count that must be ≥ 0, with the error text the command gives for anything else.
fn positive_arg(b: &[u8], msg: &str) -> Result<i64, CmdError> {
    match int_arg(b) {
        Ok(n) if n >= 0 => Ok(n),
        _ => Err(CmdError::err(msg)),
    }
}

/// Replies with entries `start..=end` (Redis's `addListRangeReply`), reversed for pops
/// from the tail.
fn reply_range(out: &mut ReplyBuf, list: &List, start: i64, end: i64, reverse: bool) {
    let len = list.len() as i64;
    let start = if start < 0 { (len + start).max(0) } else { start };
    let end = if end < 0 { len + end } else { end };
    if start > end || start >= len {
        out.array(0);
        return;
    }
    let end = end.min(len - 1);
    let n = (end - start + 1) as usize;
    out.array(n);
    if reverse {
        let items: Vec<&[u8]> = list.range(start as usize, n).collect();
        for v in items.into_iter().rev() {
            out.bulk(v);
        }
    } else {
        for v in list.range(start as usize, n) {
            out.bulk(v);
        }
    }
}

fn pop_generic(ctx: &mut Ctx, a: &[Bytes], side: Side) -> CmdResult {
    if a.len() > 3 {
        return Err(CmdError::err(format!("wrong number of arguments for '{}' command", side.pop_name())));
    }
    let count = match a.get(2) {
        Some(c) => Some(positive_arg(c, "value is out of range, must be positive")?),
        None => None,
    };
    let key = &a[1];
    match ctx.lookup_write(key) {
        Some(o) => as_list(o)?,
        None => {
            if count.is_some() {
                ctx.out().null_array();
            } else {
                ctx.out().null();
            }
            return Ok(());
        }
    };
    let db = ctx.client.db;
    let list = as_list_mut(ctx.srv.dbs[db].get_mut(key).expect("looked up"))?;
    let out = &mut ctx.client.out;
    let n = match count {
        Some(0) => {
            out.array(0);
            return Ok(());
        }
        None => {
            out.bulk(&pop(list, side).expect("lists are never empty"));
            1
        }
        Some(c) => pop_range_reply(out, list, side, c),
    };
    ctx.notify(class::LIST, side.pop_name(), key);
    delete_if_empty(ctx, key);
    ctx.dirty(n);
    Ok(())
}

/// Pops up to `count` entries from `side` and replies with them in pop order.
fn pop_range_reply(out: &mut ReplyBuf, list: &mut List, side: Side, count: i64) -> u64 {
    let len = list.len() as i64;
    let n = count.min(len);
    match side {
        Side::Left => {
            reply_range(out, list, 0, n - 1, false);
            list.remove_range(0, n as usize);
        }
        Side::Right => {
            reply_range(out, list, -n, -1, true);
            list.remove_range((len - n) as usize, n as usize);
        }
    }
    n as u64
}

fn lpop(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    pop_generic(ctx, a, Side::Left)
}

fn rpop(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    pop_generic(ctx, a, Side::Right)
}

fn lrange(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let start = int_arg(&a[2])?;
    let end = int_arg(&a[3])?;
    let (obj, out) = ctx.lookup_read_out(&a[1]);
    match obj {
        Some(o) => reply_range(out, as_list(o)?, start, end, false),
        None => out.array(0),
    }
    Ok(())
}

fn ltrim(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let start = int_arg(&a[2])?;
    let end = int_arg(&a[3])?;
    let key = &a[1];
    let Some(obj) = ctx.lookup_write(key) else {
        ctx.out().ok();
        return Ok(());
    };
    let list = as_list_mut(obj)?;
    let len = list.len() as i64;
    let start = if start < 0 { (len + start).max(0) } else { start };
    let end = if end < 0 { len + end } else { end };
    let (ltrim, rtrim) = if start > end || start >= len { (len, 0) } else { (start, len - end.min(len - 1) - 1) };
    list.remove_range(0, ltrim as usize);
    list.remove_range(list.len() - rtrim as usize, rtrim as usize);
    ctx.notify(class::LIST, "ltrim", key);
    delete_if_empty(ctx, key);
    ctx.dirty((ltrim + rtrim) as u64);
    ctx.out().ok();
    Ok(())
}

fn lpos(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let (mut rank, mut count, mut maxlen) = (1i64, None, 0i64);
    let mut j = 3;
    while j < a.len() {
        let more = j + 1 < a.len();
        let opt = &a[j];
        if opt.eq_ignore_ascii_case(b"rank") && more {
            j += 1;
            rank = int_arg(&a[j])?;
            if rank == 0 {
                return Err(CmdError::err(
                    "RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative \
                     to start from the end of the list",
                ));
            }
        } else if opt.eq_ignore_ascii_case(b"count") && more {
            j += 1;
            count = Some(positive_arg(&a[j], "COUNT can't be negative")?);
        } else if opt.eq_ignore_ascii_case(b"maxlen") && more {
            j += 1;
            maxlen = positive_arg(&a[j], "MAXLEN can't be negative")?;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let (obj, out) = ctx.lookup_read_out(&a[1]);
    let Some(o) = obj else {
        if count.is_some() {
            out.array(0);
        } else {
            out.null();
        }
        return Ok(());
    };
    let list = as_list(o)?;
    let matches = lpos_matches(list, &a[2], rank, count.unwrap_or(1), maxlen);
    match count {
        Some(_) => {
            out.array(matches.len());
            for m in matches {
                out.int(m as i64);
            }
        }
        None => match matches.first() {
            Some(&m) => out.int(m as i64),
            None => out.null(),
        },
    }
    Ok(())
}

/// Positions of matches of `ele`, skipping the first `|rank| - 1`, scanning from the tail
/// when `rank` is negative, at most `count` (0: all), within the first `maxlen` (0: all)
/// entries scanned.
fn lpos_matches(list: &List, ele: &[u8], rank: i64, count: i64, maxlen: i64) -> Vec<usize> {
    let len = list.len();
    // Redis negates the rank in a C long: LONG_MIN stays negative, so every match counts
    // as past the rank and its COUNT test (`matches - rank + 1 >= count`) never holds.
    let (skip, count) = if rank == i64::MIN { (0, 0) } else { (rank.unsigned_abs() - 1, count) };
    let limit = if maxlen == 0 { len } else { (maxlen as usize).min(len) };
    let scanned: Box<dyn Iterator<Item = (usize, &[u8])>> = if rank < 0 {
        Box::new(list.iter().rev().enumerate().map(|(i, e)| (len - 1 - i, e)))
    } else {
        Box::new(list.iter().enumerate())
    };
    let hits = scanned.take(limit).filter(|(_, e)| *e == ele).map(|(i, _)| i).skip(skip as usize);
    if count == 0 {
        hits.collect()
    } else {
        hits.take(count as usize).collect()
    }
}

fn lrem(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let count = int_arg(&a[2])?;
    let key = &a[1];
    let Some(obj) = ctx.lookup_write(key) else {
        ctx.out().int(0);
        return Ok(());
    };
    let list = as_list_mut(obj)?;
    let limit = if count == 0 { usize::MAX } else { count.unsigned_abs() as usize };
    let removed = list.remove_matching(&a[3], limit, count < 0);
    if removed > 0 {
        ctx.notify(class::LIST, "lrem", key);
    }
    delete_if_empty(ctx, key);
    ctx.dirty(removed as u64);
    ctx.out().int(removed as i64);
    Ok(())
}

fn side_arg(b: &[u8]) -> Result<Side, CmdError> {
    if b.eq_ignore_ascii_case(b"left") {
        Ok(Side::Left)
    } else if b.eq_ignore_ascii_case(b"right") {
        Ok(Side::Right)
    } else {
        Err(CmdError::Syntax)
    }
}

/// Moves one entry from `src` to `dst` when `src` has one (Redis's `lmoveGenericCommand`).
/// Returns whether it replied; false means `src` is missing (the caller replies or blocks).
fn lmove_generic(ctx: &mut Ctx, src: &[u8], dst: &[u8], from: Side, to: Side) -> Result<bool, CmdError> {
    match ctx.lookup_write(src) {
        None => return Ok(false),
        Some(o) => as_list(o)?,
    };
    check_list_or_missing(ctx, dst)?;
    let db = ctx.client.db;
    let value = {
        let obj = ctx.srv.dbs[db].get_mut(src).expect("looked up");
        pop(as_list_mut(obj)?, from).expect("lists are never empty")
    };
    move_push(ctx, dst, &value, to);
    ctx.out().bulk(&value);
    ctx.notify(class::LIST, from.pop_name(), src);
    delete_if_empty(ctx, src);
    ctx.dirty(1);
    Ok(true)
}

/// The push half of a move (Redis's `lmoveHandlePush`); `dst` is a list or missing.
pub fn move_push(ctx: &mut Ctx, dst: &[u8], value: &[u8], to: Side) {
    let list = list_for_push(ctx, dst);
    push(list, to, value);
    ctx.notify(class::LIST, push_event(to), dst);
}

fn lmove(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let from = side_arg(&a[3])?;
    let to = side_arg(&a[4])?;
    if !lmove_generic(ctx, &a[1], &a[2], from, to)? {
        ctx.out().null();
    }
    Ok(())
}

fn rpoplpush(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    if !lmove_generic(ctx, &a[1], &a[2], Side::Right, Side::Left)? {
        ctx.out().null();
    }
    Ok(())
}

/// LMPOP/BLMPOP arguments from `numkeys` on: keys, side, count (Redis's `lmpopGenericCommand`).
fn parse_mpop(a: &[Bytes], numkeys_idx: usize) -> Result<(&[Bytes], Side, i64), CmdError> {
    let numkeys = match int_arg(&a[numkeys_idx]) {
        Ok(n) if n >= 1 => n as u64,
        _ => return Err(CmdError::err("numkeys should be greater than 0")),
    };
    let where_idx = numkeys_idx as u64 + numkeys + 1;
    if where_idx >= a.len() as u64 {
        return Err(CmdError::Syntax);
    }
    let where_idx = where_idx as usize;
    let side = side_arg(&a[where_idx])?;
    let mut count = None;
    let mut j = where_idx + 1;
    while j < a.len() {
        if count.is_none() && a[j].eq_ignore_ascii_case(b"count") && j + 1 < a.len() {
            j += 1;
            count = match int_arg(&a[j]) {
                Ok(n) if n >= 1 => Some(n),
                _ => return Err(CmdError::err("count should be greater than 0")),
            };
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    Ok((&a[numkeys_idx + 1..where_idx], side, count.unwrap_or(1)))
}

/// Pops from the first non-empty list among `keys`, replying `[key, [elements]]`
/// and propagating as `[LR]POP key n`. Returns false when every key is missing.
fn mpop_first(ctx: &mut Ctx, keys: &[Bytes], side: Side, count: i64) -> Result<bool, CmdError> {
    for key in keys {
        let Some(obj) = ctx.lookup_write(key) else { continue };
        as_list(obj)?;
        mpop_key(ctx, key, side, count);
        return Ok(true);
    }
    Ok(false)
}

/// Pops up to `count` from the list at `key` (which exists) with the `[key, [elements]]`
/// reply, propagated as `[LR]POP key n` (Redis's `listPopRangeAndReplyWithKey`).
pub fn mpop_key(ctx: &mut Ctx, key: &Bytes, side: Side, count: i64) {
    let db = ctx.client.db;
    let obj = ctx.srv.dbs[db].get_mut(key).expect("caller checked");
    let list = as_list_mut(obj).expect("caller checked");
    let out = &mut ctx.client.out;
    out.array(2);
    out.bulk(key);
    let n = pop_range_reply(out, list, side, count);
    ctx.notify(class::LIST, side.pop_name(), key);
    delete_if_empty(ctx, key);
    ctx.dirty(n);
    ctx.propagate_as(vec![side.pop_cmd(), key.clone(), Bytes::from(n.to_string())]);
}

fn lmpop(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let (keys, side, count) = parse_mpop(a, 1)?;
    if !mpop_first(ctx, keys, side, count)? {
        ctx.out().null_array();
    }
    Ok(())
}

/// Pops one entry for BLPOP/BRPOP from the first non-empty key, replying `[key, value]`
/// and propagating as `[LR]POP key`. Returns false when every key is missing.
fn bpop_first(ctx: &mut Ctx, keys: &[Bytes], side: Side) -> Result<bool, CmdError> {
    for key in keys {
        let Some(obj) = ctx.lookup_write(key) else { continue };
        as_list(obj)?;
        bpop_key(ctx, key, side);
        return Ok(true);
    }
    Ok(false)
}

/// One BLPOP/BRPOP pop from the list at `key` (which exists).
pub fn bpop_key(ctx: &mut Ctx, key: &Bytes, side: Side) {
    let db = ctx.client.db;
    let obj = ctx.srv.dbs[db].get_mut(key).expect("caller checked");
    let v = pop(as_list_mut(obj).expect("caller checked"), side).expect("lists are never empty");
    let out = &mut ctx.client.out;
    out.array(2);
    out.bulk(key);
    out.bulk(&v);
    ctx.notify(class::LIST, side.pop_name(), key);
    delete_if_empty(ctx, key);
    ctx.dirty(1);
    ctx.propagate_as(vec![side.pop_cmd(), key.clone()]);
}

/// Redis's `getTimeoutFromObjectOrReply` in seconds: the deadline in Unix ms, 0 = forever.
pub(crate) fn timeout_arg(ctx: &Ctx, b: &[u8]) -> Result<u64, CmdError> {
    let secs = parse_timeout(b).ok_or_else(|| CmdError::err("timeout is not a float or out of range"))?;
    // C's (long long) cast of a value out of range gives LLONG_MIN on x86.
    let ms = secs * 1000.0;
    let ms = if (i64::MIN as f64..i64::MAX as f64).contains(&ms) { ms as i64 } else { i64::MIN };
    // Redis 7.0.15 rounds a positive timeout below 1 ms up, so it still times out.
    let ms = if ms == 0 && secs > 0.0 { 1 } else { ms };
    if ms < 0 {
        return Err(CmdError::err("timeout is negative"));
    }
    if ms == 0 {
        return Ok(0);
    }
    // Redis 7.0 adds without an overflow check; a wrapped deadline sorts after every real
    // one in its timeout table, so such a client waits forever: so does one past u64 here.
    Ok(ctx.now_ms().saturating_add(ms as u64))
}

/// A long double as `strtold` reads it: "inf" and hex floats are accepted, a finite
/// overflow is not.
fn parse_timeout(b: &[u8]) -> Option<f64> {
    if let Some(v) = parse_hex_float(b) {
        return Some(v);
    }
    let v = crate::util::parse_f64(b)?;
    let explicit_inf = b.iter().any(|c| c.eq_ignore_ascii_case(&b'i'));
    if v.is_infinite() && !explicit_inf {
        // strtold's range is wider than f64's: up to ~1e4932 is a (huge) finite number.
        let exp = std::str::from_utf8(b).ok()?.to_ascii_lowercase();
        let big = exp.split('e').nth(1).and_then(|e| e.parse::<i64>().ok()).is_some_and(|e| e > 4932);
        return if big { None } else { Some(if b.starts_with(b"-") { -1e300 } else { 1e300 }) };
    }
    Some(v)
}

/// C's hexadecimal floating constant (`0x1.8p3`), as `strtold` takes it; None when `b` is
/// not one.
fn parse_hex_float(b: &[u8]) -> Option<f64> {
    let (neg, rest) = match b.first()? {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    let rest = rest.strip_prefix(b"0x").or_else(|| rest.strip_prefix(b"0X"))?;
    let (mant, exp) = match rest.iter().position(|&c| c == b'p' || c == b'P') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let (int, frac) = match mant.iter().position(|&c| c == b'.') {
        Some(i) => (&mant[..i], &mant[i + 1..]),
        None => (mant, &mant[..0]),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for &c in int.iter().chain(frac) {
        v = v * 16.0 + (c as char).to_digit(16)? as f64;
    }
    let mut e: i64 = -4 * frac.len() as i64;
    if let Some(x) = exp {
        e += std::str::from_utf8(x).ok()?.parse::<i64>().ok()?.clamp(-100_000, 100_000);
    }
    let v = v * 2f64.powi(e.clamp(-2000, 2000) as i32);
    Some(if neg { -v } else { v })
}

fn blpop(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    bpop_generic(ctx, a, Side::Left)
}

fn brpop(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    bpop_generic(ctx, a, Side::Right)
}

fn bpop_generic(ctx: &mut Ctx, a: &[Bytes], side: Side) -> CmdResult {
    let deadline = timeout_arg(ctx, &a[a.len() - 1])?;
    let keys = &a[1..a.len() - 1];
    if bpop_first(ctx, keys, side)? {
        return Ok(());
    }
    block(ctx, keys, deadline, BlockedOp::Pop { side, count: None });
    Ok(())
}

fn blmpop(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    // Redis checks numkeys, the side and COUNT before the timeout.
    let (keys, side, count) = parse_mpop(a, 2)?;
    let deadline = timeout_arg(ctx, &a[1])?;
    if mpop_first(ctx, keys, side, count)? {
        return Ok(());
    }
    block(ctx, keys, deadline, BlockedOp::Pop { side, count: Some(count) });
    Ok(())
}

fn blmove(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let from = side_arg(&a[3])?;
    let to = side_arg(&a[4])?;
    blmove_generic(ctx, a, &a[5], from, to, false)
}

fn brpoplpush(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    blmove_generic(ctx, a, &a[3], Side::Right, Side::Left, true)
}

fn blmove_generic(ctx: &mut Ctx, a: &[Bytes], timeout: &[u8], from: Side, to: Side, rpoplpush: bool) -> CmdResult {
    let deadline = timeout_arg(ctx, timeout)?;
    if lmove_generic(ctx, &a[1], &a[2], from, to)? {
        let argv = if rpoplpush {
            vec![Bytes::from_static(b"RPOPLPUSH"), a[1].clone(), a[2].clone()]
        } else {
            vec![Bytes::from_static(b"LMOVE"), a[1].clone(), a[2].clone(), a[3].clone(), a[4].clone()]
        };
        ctx.propagate_as(argv);
        return Ok(());
    }
    let op = BlockedOp::Move { dst: a[2].clone(), from, to, rpoplpush };
    block(ctx, &a[1..2], deadline, op);
    Ok(())
}

/// Parks the client on `keys`, or replies as if timed out when it may not block (inside
/// MULTI or a script).
pub(crate) fn block(ctx: &mut Ctx, keys: &[Bytes], deadline_ms: u64, op: BlockedOp) {
    if ctx.client.deny_blocking() {
        // BLMOVE/BRPOPLPUSH answer a null bulk here, though a timeout is a null array.
        match op {
            BlockedOp::Move { .. } => ctx.out().null(),
            _ => ctx.out().null_array(),
        }
        return;
    }
    ctx.srv.block_client(ctx.client, keys, deadline_ms, op);
}

/// Serves one client blocked on `key`, which holds a list (Redis's
/// `serveClientBlockedOnList`). Returns whether it was served (false: a BLMOVE whose
/// destination is not a list, which got WRONGTYPE instead).
pub fn serve_blocked(ctx: &mut Ctx, key: &Bytes, op: &BlockedOp) -> bool {
    match op {
        BlockedOp::Pop { side, count: None } => bpop_key(ctx, key, *side),
        BlockedOp::Pop { side, count: Some(n) } => mpop_key(ctx, key, *side, *n),
        BlockedOp::Move { dst, from, to, rpoplpush } => {
            if check_list_or_missing(ctx, dst).is_err() {
                ctx.error(&CmdError::WrongType.text());
                return false;
            }
            let db = ctx.client.db;
            let obj = ctx.srv.dbs[db].get_mut(key).expect("ready key holds a list");
            let v = pop(as_list_mut(obj).expect("ready key holds a list"), *from).expect("never empty");
            move_push(ctx, dst, &v, *to);
            let argv = if *rpoplpush {
                vec![Bytes::from_static(b"RPOPLPUSH"), key.clone(), dst.clone()]
            } else {
                vec![Bytes::from_static(b"LMOVE"), key.clone(), dst.clone(), from.name(), to.name()]
            };
            ctx.propagate_as(argv);
            ctx.notify(class::LIST, from.pop_name(), key);
            delete_if_empty(ctx, key);
            ctx.dirty(1);
            ctx.out().bulk(&v);
        }
        BlockedOp::ZPop { .. } | BlockedOp::Wait { .. } => return false,
    }
    true
}

#[cfg(test)]
mod tests {
    use crate::commands::testing::{advance, run, server, take_propagated};
    use crate::server::Server;
    use bytes::Bytes;

    fn run_as(srv: &mut Server, id: u64, argv: &[&str]) -> Vec<u8> {
        srv.process(id, argv.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect());
        std::mem::take(&mut srv.clients.get_mut(&id).expect("client").out.buf)
    }

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn served_blpop_is_propagated_as_lpop_after_the_push() {
        let mut srv = server();
        srv.propagate_enabled = true;
        let waiter = srv.add_client("127.0.0.1:2".into(), "127.0.0.1:6379".into());
        assert_eq!(run_as(&mut srv, waiter, &["BLPOP", "k", "0"]), b"");
        assert!(srv.is_blocked(waiter));
        assert_eq!(run(&mut srv, &["RPUSH", "k", "a", "b"]), b":2\r\n");
        assert!(!srv.is_blocked(waiter));
        assert_eq!(std::mem::take(&mut srv.clients.get_mut(&waiter).unwrap().out.buf), b"*2\r\n$1\r\nk\r\n$1\r\na\r\n");
        assert_eq!(take_propagated(&mut srv), vec![words(&["RPUSH", "k", "a", "b"]), words(&["LPOP", "k"])]);
    }

    #[test]
    fn served_blmove_is_propagated_as_lmove_and_wakes_the_next_key() {
        let mut srv = server();
        srv.propagate_enabled = true;
        let mover = srv.add_client("127.0.0.1:2".into(), "127.0.0.1:6379".into());
        let popper = srv.add_client("127.0.0.1:3".into(), "127.0.0.1:6379".into());
        run_as(&mut srv, mover, &["BLMOVE", "s", "d", "RIGHT", "LEFT", "0"]);
        run_as(&mut srv, popper, &["BLMPOP", "0", "1", "d", "LEFT", "COUNT", "5"]);
        run(&mut srv, &["RPUSH", "s", "v"]);
        assert_eq!(std::mem::take(&mut srv.clients.get_mut(&mover).unwrap().out.buf), b"$1\r\nv\r\n");
        assert_eq!(
            std::mem::take(&mut srv.clients.get_mut(&popper).unwrap().out.buf),
            b"*2\r\n$1\r\nd\r\n*1\r\n$1\r\nv\r\n"
        );
        assert_eq!(
            take_propagated(&mut srv),
            vec![words(&["RPUSH", "s", "v"]), words(&["LMOVE", "s", "d", "right", "left"]), words(&["LPOP", "d", "1"])]
        );
    }

    #[test]
    fn immediate_blocking_forms_propagate_as_their_plain_commands() {
        let mut srv = server();
        srv.propagate_enabled = true;
        run(&mut srv, &["RPUSH", "k", "a", "b", "c"]);
        run(&mut srv, &["BRPOP", "k", "0"]);
        run(&mut srv, &["LMPOP", "1", "k", "LEFT", "COUNT", "10"]);
        run(&mut srv, &["RPUSH", "k", "x"]);
        run(&mut srv, &["BRPOPLPUSH", "k", "k2", "0"]);
        run(&mut srv, &["BLMOVE", "k2", "k", "LEFT", "right", "0"]);
        run(&mut srv, &["LTRIM", "k", "0", "-1"]);
        let p = take_propagated(&mut srv);
        assert_eq!(p[1], words(&["RPOP", "k"]));
        assert_eq!(p[2], words(&["LPOP", "k", "2"]));
        assert_eq!(p[4], words(&["RPOPLPUSH", "k", "k2"]));
        assert_eq!(p[5], words(&["LMOVE", "k2", "k", "LEFT", "right"]));
        assert_eq!(p.len(), 6, "an LTRIM that removes nothing is not propagated");
    }

    #[test]
    fn a_blocked_client_times_out_with_a_null_array_on_the_server_clock() {
        let mut srv = server();
        let waiter = srv.add_client("127.0.0.1:2".into(), "127.0.0.1:6379".into());
        run_as(&mut srv, waiter, &["BLPOP", "k", "0.5"]);
        advance(&mut srv, 499);
        srv.unblock_timed_out_clients();
        assert!(srv.is_blocked(waiter));
        advance(&mut srv, 1);
        srv.cron();
        assert!(!srv.is_blocked(waiter));
        assert_eq!(std::mem::take(&mut srv.clients.get_mut(&waiter).unwrap().out.buf), b"*-1\r\n");
        assert_eq!(run(&mut srv, &["RPUSH", "k", "a"]), b":1\r\n");
        assert_eq!(run(&mut srv, &["LLEN", "k"]), b":1\r\n");
    }

    #[test]
    fn a_departed_client_leaves_no_waiter_behind() {
        let mut srv = server();
        let waiter = srv.add_client("127.0.0.1:2".into(), "127.0.0.1:6379".into());
        run_as(&mut srv, waiter, &["BLPOP", "k", "0"]);
        srv.remove_client(waiter);
        assert!(srv.blocking.by_key.is_empty());
        run(&mut srv, &["RPUSH", "k", "a"]);
        assert_eq!(run(&mut srv, &["LLEN", "k"]), b":1\r\n");
    }
}

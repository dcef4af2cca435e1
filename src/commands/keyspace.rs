//! Keyspace commands (Redis's `db.c`): existence, deletion, renaming, iteration and the
//! numbered databases. OBJECT and MEMORY, which look inside one key, are in `object`.
//!
//! Lookups follow Redis's flags exactly, because they decide INFO's keyspace hits/misses and
//! the LRU clock of keys: read lookups count and touch, `LOOKUP_NOTOUCH` reads (EXISTS, TYPE,
//! OBJECT, SCAN's TYPE filter) count but do not touch, write lookups touch but do not count.

mod object;
#[cfg(test)]
mod tests;

use bytes::Bytes;

use super::{int_arg, CmdError, CmdResult, Ctx, Handler};
use crate::engine::db::ExpireState;
use crate::engine::object::{RObj, Str, Value};
use crate::server::notify::class;
use crate::util::glob_match;

pub static COMMANDS: &[(&str, Handler)] = &[
    ("del", del),
    ("unlink", del),
    ("exists", exists),
    ("type", type_cmd),
    ("dbsize", dbsize),
    ("flushdb", flushdb),
    ("flushall", flushall),
    ("select", select),
    ("swapdb", swapdb),
    ("move", move_cmd),
    ("copy", copy),
    ("rename", rename),
    ("renamenx", renamenx),
    ("keys", keys),
    ("scan", scan),
    ("randomkey", randomkey),
    ("touch", touch),
    ("object|encoding", object::encoding),
    ("object|refcount", object::refcount),
    ("object|idletime", object::idletime),
    ("object|freq", object::freq),
    ("object|help", object::help),
    ("memory|usage", object::memory_usage),
    ("memory|stats", object::memory_stats),
    ("memory|doctor", object::memory_doctor),
    ("memory|malloc-stats", object::memory_malloc_stats),
    ("memory|purge", object::memory_purge),
    ("memory|help", object::memory_help),
];

/// SCAN's default COUNT.
const SCAN_COUNT_DEFAULT: usize = 10;
/// SCAN visits at most COUNT times this many buckets, so a sparse table cannot stall it.
const SCAN_BUCKETS_PER_COUNT: usize = 10;
/// RANDOMKEY on a replica whose keys all have a TTL gives up looking for a live key after
/// this many tries: replicas never delete expired keys, so it could loop forever.
const RANDOMKEY_TRIES_MAX: u32 = 100;

const SAME_OBJECT: &str = "ERR source and destination objects are the same";

/// Redis's `expireIfNeeded` in any db (MOVE and COPY look into their target db).
fn expire_in(ctx: &mut Ctx, db: usize, key: &[u8]) -> bool {
    let master = ctx.srv.is_master();
    match ctx.srv.dbs[db].expire_if_needed(key, ctx.srv.now.unix_ms, master) {
        ExpireState::Live => false,
        ExpireState::Expired { deleted } => {
            if deleted {
                ctx.srv.stats.expiredkeys += 1;
                ctx.srv.propagate_del(db, key);
                ctx.srv.deleted_by_server(Some(ctx.client), db, key, crate::server::notify::Removal::Expired);
            }
            true
        }
    }
}

/// `lookupKeyWrite` in any db: whether the key is live; touches it when it is.
fn live_for_write(ctx: &mut Ctx, db: usize, key: &[u8]) -> bool {
    if expire_in(ctx, db, key) || !ctx.srv.dbs[db].contains(key) {
        return false;
    }
    ctx.srv.touch_obj(db, key);
    true
}

/// `lookupKeyReadWithFlags(LOOKUP_NOTOUCH)`: expires and counts hits/misses, LRU untouched.
fn lookup_notouch<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Option<&'c RObj> {
    lookup_notouch_notify(ctx, key, true)
}

/// `lookup_notouch`; without `notify_miss` (LOOKUP_NONOTIFY, as OBJECT) a miss is no event.
fn lookup_notouch_notify<'c>(ctx: &'c mut Ctx, key: &[u8], notify_miss: bool) -> Option<&'c RObj> {
    let found = ctx.exists(key);
    if found {
        ctx.srv.stats.keyspace_hits += 1;
    } else {
        ctx.srv.stats.keyspace_misses += 1;
        if notify_miss {
            ctx.notify(class::KEY_MISS, "keymiss", key);
        }
    }
    let db = ctx.db_index();
    if found {
        ctx.srv.dbs[db].get(key)
    } else {
        None
    }
}

/// Redis's `getIntFromObjectOrReply` without a custom message: a 32-bit C `int`.
fn c_int_arg(b: &[u8]) -> Result<i32, CmdError> {
    let n = int_arg(b)?;
    i32::try_from(n).map_err(|_| CmdError::err("value is out of range, value must between -2147483648 and 2147483647"))
}

/// A db index argument as SELECT, MOVE and COPY take it.
fn db_arg(ctx: &Ctx, b: &[u8]) -> Result<usize, CmdError> {
    let id = c_int_arg(b)?;
    usize::try_from(id).ok().filter(|&i| i < ctx.srv.dbs.len()).ok_or(CmdError::DbIndex)
}

fn del(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let db = ctx.db_index();
    let mut n = 0;
    for key in &a[1..] {
        ctx.expire_if_needed(key);
        if ctx.srv.dbs[db].delete(key).is_some() {
            ctx.notify(class::GENERIC, "del", key);
            n += 1;
        }
    }
    ctx.dirty(n);
    ctx.out().int(n as i64);
    Ok(())
}

fn exists(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let n = a[1..].iter().filter(|key| lookup_notouch(ctx, key).is_some()).count();
    ctx.out().int(n as i64);
    Ok(())
}

fn type_cmd(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let name = lookup_notouch(ctx, &a[1]).map_or("none", |o| o.val.type_name());
    ctx.out().simple(name);
    Ok(())
}

fn dbsize(ctx: &mut Ctx, _a: &[Bytes]) -> CmdResult {
    let n = ctx.srv.dbs[ctx.db_index()].len();
    ctx.out().int(n as i64);
    Ok(())
}

/// FLUSHDB/FLUSHALL's optional ASYNC|SYNC. Both free synchronously: the reply is the same
/// and nothing else can observe the difference.
fn parse_flush_flags(a: &[Bytes]) -> Result<(), CmdError> {
    match a.len() {
        1 => Ok(()),
        2 if a[1].eq_ignore_ascii_case(b"async") || a[1].eq_ignore_ascii_case(b"sync") => Ok(()),
        _ => Err(CmdError::Syntax),
    }
}

fn flushdb(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    parse_flush_flags(a)?;
    let db = ctx.db_index();
    ctx.srv.touch_all_watched_keys_in_db(db, None);
    let n = ctx.srv.dbs[db].clear();
    ctx.dirty(n as u64);
    // Redis forces propagation: a replica must flush too even when this db looked empty.
    ctx.propagate_as(a.to_vec());
    ctx.out().ok();
    Ok(())
}

fn flushall(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    parse_flush_flags(a)?;
    for db in 0..ctx.srv.dbs.len() {
        ctx.srv.touch_all_watched_keys_in_db(db, None);
    }
    let n: usize = ctx.srv.dbs.iter_mut().map(|db| db.clear()).sum();
    // The +1 is Redis's own (`flushAllDataAndResetRDB`): FLUSHALL always dirties.
    ctx.dirty(n as u64 + 1);
    ctx.srv.flushall_reset_rdb(ctx.client.id);
    ctx.out().ok();
    Ok(())
}

fn select(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    // Cluster mode has db 0 only; the number is parsed first, as selectCommand does.
    if ctx.srv.cluster.is_some() && c_int_arg(&a[1])? != 0 {
        return Err(CmdError::err("SELECT is not allowed in cluster mode"));
    }
    ctx.client.db = db_arg(ctx, &a[1])?;
    ctx.out().ok();
    Ok(())
}

fn swapdb(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    if ctx.srv.cluster.is_some() {
        return Err(CmdError::err("SWAPDB is not allowed in cluster mode"));
    }
    let parse = |b: &[u8], which: &str| c_int_arg(b).map_err(|_| CmdError::err(format!("invalid {which} DB index")));
    let (id1, id2) = (parse(&a[1], "first")?, parse(&a[2], "second")?);
    let n = ctx.srv.dbs.len();
    let in_range = |id: i32| usize::try_from(id).ok().filter(|&i| i < n);
    let (Some(x), Some(y)) = (in_range(id1), in_range(id2)) else {
        return Err(CmdError::DbIndex);
    };
    if x != y {
        ctx.srv.touch_all_watched_keys_in_db(x, Some(y));
        ctx.srv.touch_all_watched_keys_in_db(y, Some(x));
        let (lo, hi) = (x.min(y), x.max(y));
        let (left, right) = ctx.srv.dbs.split_at_mut(hi);
        left[lo].swap_contents(&mut right[0]);
    }
    ctx.dirty(1);
    ctx.out().ok();
    Ok(())
}

/// Moves `key` from db `src` to `dst` with its TTL; the caller checked `dst` is free.
fn transfer(ctx: &mut Ctx, src: usize, key: &[u8], dst: usize, dst_key: &[u8]) {
    let expire = ctx.srv.dbs[src].expire_of(key);
    let obj = ctx.srv.dbs[src].delete(key).expect("caller looked the key up");
    ctx.srv.dbs[dst].add(dst_key, obj);
    if let Some(when_ms) = expire {
        ctx.srv.dbs[dst].set_expire(dst_key, when_ms);
    }
    ctx.srv.touch_watched_key(dst, dst_key);
}

fn move_cmd(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    if ctx.srv.cluster.is_some() {
        return Err(CmdError::err("MOVE is not allowed in cluster mode"));
    }
    let key = &a[1];
    let dst = db_arg(ctx, &a[2])?;
    let src = ctx.db_index();
    if src == dst {
        return Err(CmdError::Other(SAME_OBJECT.into()));
    }
    if ctx.lookup_write(key).is_none() || live_for_write(ctx, dst, key) {
        ctx.out().int(0);
        return Ok(());
    }
    transfer(ctx, src, key, dst, key);
    ctx.dirty(1);
    ctx.notify(class::GENERIC, "move_from", key);
    ctx.srv.notify_keyspace_event(Some(ctx.client), class::GENERIC, "move_to", key, dst);
    ctx.out().int(1);
    Ok(())
}

/// COPY's options: the target db and REPLACE.
fn parse_copy_options(ctx: &Ctx, a: &[Bytes]) -> Result<(usize, bool), CmdError> {
    let mut dst = ctx.db_index();
    let mut replace = false;
    let mut i = 3;
    while i < a.len() {
        if a[i].eq_ignore_ascii_case(b"replace") {
            replace = true;
        } else if a[i].eq_ignore_ascii_case(b"db") && i + 1 < a.len() {
            dst = db_arg(ctx, &a[i + 1])?;
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    Ok((dst, replace))
}

/// A fresh object with the same value (Redis's `dupStringObject`): never shared, new LRU,
/// no spare capacity.
fn dup_object(o: &RObj, lru: u32) -> RObj {
    let val = match &o.val {
        Value::Str(Str::Raw(v)) => Value::Str(Str::Raw(Box::new(v.as_slice().to_vec()))),
        v => v.clone(),
    };
    RObj::new(val, lru)
}

fn copy(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let (key, new_key) = (&a[1], &a[2]);
    let (dst, replace) = parse_copy_options(ctx, a)?;
    let src = ctx.db_index();
    if ctx.srv.cluster.is_some() && (src != 0 || dst != 0) {
        return Err(CmdError::err("Copying to another database is not allowed in cluster mode"));
    }
    if src == dst && key == new_key {
        return Err(CmdError::Other(SAME_OBJECT.into()));
    }
    let lru = ctx.new_lru();
    let Some(copy) = ctx.lookup_read(key).map(|o| dup_object(o, lru)) else {
        ctx.out().int(0);
        return Ok(());
    };
    let expire = ctx.srv.dbs[src].expire_of(key);
    if live_for_write(ctx, dst, new_key) {
        if !replace {
            ctx.out().int(0);
            return Ok(());
        }
        ctx.srv.dbs[dst].delete(new_key);
    }
    ctx.srv.dbs[dst].add(new_key, copy);
    if let Some(when_ms) = expire {
        ctx.srv.dbs[dst].set_expire(new_key, when_ms);
    }
    ctx.srv.touch_watched_key(dst, new_key);
    ctx.dirty(1);
    ctx.srv.notify_keyspace_event(Some(ctx.client), class::GENERIC, "copy_to", new_key, dst);
    ctx.out().int(1);
    Ok(())
}

/// RENAME and RENAMENX (Redis's `renameGenericCommand`). The TTL moves with the key; the
/// target's own TTL goes with the target. Renaming a key to itself changes nothing but
/// still requires the key to exist.
fn rename_generic(ctx: &mut Ctx, a: &[Bytes], nx: bool) -> CmdResult {
    let (key, new_key) = (&a[1], &a[2]);
    if ctx.lookup_write(key).is_none() {
        return Err(CmdError::NoSuchKey);
    }
    let db = ctx.db_index();
    let taken = key != new_key && ctx.lookup_write(new_key).is_some();
    if key == new_key || (taken && nx) {
        match nx {
            true => ctx.out().int(0),
            false => ctx.out().ok(),
        }
        return Ok(());
    }
    if taken {
        ctx.srv.dbs[db].delete(new_key);
    }
    transfer(ctx, db, key, db, new_key);
    ctx.dirty(1);
    ctx.notify(class::GENERIC, "rename_from", key);
    ctx.notify(class::GENERIC, "rename_to", new_key);
    match nx {
        true => ctx.out().int(1),
        false => ctx.out().ok(),
    }
    Ok(())
}

fn rename(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    rename_generic(ctx, a, false)
}

fn renamenx(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    rename_generic(ctx, a, true)
}

/// KEYS skips logically expired keys without deleting them (Redis's `keyIsExpired`).
fn keys(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let pattern = &a[1];
    let all = pattern.as_ref() == b"*";
    let now_ms = ctx.now_ms();
    let db = &ctx.srv.dbs[ctx.client.db];
    let live = |k: &[u8]| db.expire_of(k).is_none_or(|when_ms| now_ms <= when_ms);
    let found: Vec<&[u8]> =
        db.dict.iter().map(|(k, _)| k).filter(|k| (all || glob_match(pattern, k, false)) && live(k)).collect();
    let out = &mut ctx.client.out;
    out.array(found.len());
    for k in found {
        out.bulk(k);
    }
    Ok(())
}

/// HSCAN/SSCAN/ZSCAN options (Redis's `scanGenericCommand` for a key): COUNT ≥ 1 and MATCH
/// ("*" skips the matcher, as Redis does); TYPE is SCAN's only.
pub(crate) fn parse_key_scan_options(a: &[Bytes]) -> Result<(usize, Option<&[u8]>), CmdError> {
    let (mut count, mut pattern) = (SCAN_COUNT_DEFAULT, None);
    let mut i = 3;
    while i < a.len() {
        let has_value = i + 1 < a.len();
        if a[i].eq_ignore_ascii_case(b"count") && has_value {
            let n = int_arg(&a[i + 1])?;
            count = usize::try_from(n).ok().filter(|&n| n >= 1).ok_or(CmdError::Syntax)?;
        } else if a[i].eq_ignore_ascii_case(b"match") && has_value {
            pattern = Some(&a[i + 1][..]).filter(|p| *p != b"*");
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    Ok((count, pattern))
}

/// Redis's `parseScanCursorOrReply`, which uses `strtoul`: an optional sign, decimal digits,
/// nothing after them (C stops at a NUL). A negative number wraps, the empty string is 0.
pub(crate) fn parse_scan_cursor(b: &[u8]) -> Option<u64> {
    let b = &b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())];
    if b.is_empty() {
        return Some(0);
    }
    let (neg, digits) = match b[0] {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

struct ScanOptions<'a> {
    count: usize,
    pattern: Option<&'a [u8]>,
    type_name: Option<&'a [u8]>,
}

fn parse_scan_options(a: &[Bytes]) -> Result<ScanOptions<'_>, CmdError> {
    let mut o = ScanOptions { count: SCAN_COUNT_DEFAULT, pattern: None, type_name: None };
    let mut i = 2;
    while i < a.len() {
        let has_value = i + 1 < a.len();
        let opt = &a[i];
        if opt.eq_ignore_ascii_case(b"count") && has_value {
            let n = int_arg(&a[i + 1])?;
            o.count = usize::try_from(n).ok().filter(|&n| n >= 1).ok_or(CmdError::Syntax)?;
        } else if opt.eq_ignore_ascii_case(b"match") && has_value {
            // "*" matches everything: skip the matcher, as Redis does.
            o.pattern = Some(&a[i + 1][..]).filter(|p| *p != b"*");
        } else if opt.eq_ignore_ascii_case(b"type") && has_value {
            o.type_name = Some(&a[i + 1][..]);
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    Ok(o)
}

/// SCAN (Redis's `scanGenericCommand` on the keyspace): collects whole buckets until COUNT
/// keys or the bucket budget, then filters by pattern, type and expiry. Filtering after
/// collecting is why a reply may hold fewer than COUNT keys, or none, with a nonzero cursor.
fn scan(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let mut cursor = parse_scan_cursor(&a[1]).ok_or_else(|| CmdError::err("invalid cursor"))?;
    let opts = parse_scan_options(a)?;
    let dict = &ctx.srv.dbs[ctx.client.db].dict;
    let mut found: Vec<Box<[u8]>> = Vec::new();
    let mut buckets_left = opts.count.saturating_mul(SCAN_BUCKETS_PER_COUNT);
    loop {
        cursor = dict.scan(cursor, |k, _| found.push(k.into()));
        if cursor == 0 || buckets_left == 0 || found.len() >= opts.count {
            break;
        }
        buckets_left -= 1;
    }
    found.retain(|k| scan_keeps(ctx, &opts, k));
    let out = ctx.out();
    out.array(2);
    out.bulk(itoa::Buffer::new().format(cursor).as_bytes());
    out.array(found.len());
    for k in &found {
        out.bulk(k);
    }
    Ok(())
}

/// SCAN's filters, in Redis's order. The TYPE check is a lookup that deletes an expired key,
/// so `TYPE none` then matches it and the expiry check that follows no longer sees it:
/// Redis 7.0 returns such a key, and so does this.
fn scan_keeps(ctx: &mut Ctx, opts: &ScanOptions, key: &[u8]) -> bool {
    if opts.pattern.is_some_and(|p| !glob_match(p, key, false)) {
        return false;
    }
    if let Some(want) = opts.type_name {
        let name = lookup_notouch(ctx, key).map_or("none", |o| o.val.type_name());
        if !want.eq_ignore_ascii_case(name.as_bytes()) {
            return false;
        }
    }
    !ctx.expire_if_needed(key)
}

/// RANDOMKEY deletes the expired keys it happens to pick (on a master) and tries again.
fn randomkey(ctx: &mut Ctx, _a: &[Bytes]) -> CmdResult {
    let db = ctx.db_index();
    let all_volatile = ctx.srv.dbs[db].len() == ctx.srv.dbs[db].expires.len();
    let mut tries_left = RANDOMKEY_TRIES_MAX;
    loop {
        let srv = &mut *ctx.srv;
        let Some(key) = srv.dbs[db].dict.random(&mut srv.rng).map(|(k, _)| Bytes::copy_from_slice(k)) else {
            ctx.out().null();
            return Ok(());
        };
        if srv.dbs[db].expire_of(&key).is_some() {
            if all_volatile && !srv.is_master() {
                tries_left -= 1;
                if tries_left == 0 {
                    ctx.out().bulk(&key);
                    return Ok(());
                }
            }
            if ctx.expire_if_needed(&key) {
                continue;
            }
        }
        ctx.out().bulk(&key);
        return Ok(());
    }
}

fn touch(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let n = a[1..].iter().filter(|key| ctx.lookup_read(key).is_some()).count();
    ctx.out().int(n as i64);
    Ok(())
}

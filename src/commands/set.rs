//! Set commands (Redis 7.0's `t_set.c`). Encodings and conversions live in `engine::set`;
//! this module follows Redis's command code closely, because its choices are visible: which
//! set an intersection iterates (the smallest) decides the reply order, which SDIFF algorithm
//! runs decides the result's encoding, and SPOP reaches replicas as SREMs (or a DEL when it
//! takes the whole set), never as SPOP, whose random choice a replica could not repeat.

use bytes::Bytes;

use super::{int_arg, CmdError, CmdResult, Ctx, Handler};
use crate::engine::object::{RObj, Value};
use crate::engine::set::{Member, Set};
use crate::env::Rng;
use crate::protocol::ReplyBuf;
use crate::server::notify::class;
use crate::util::glob_match;

pub static COMMANDS: &[(&str, Handler)] = &[
    ("sadd", sadd),
    ("srem", srem),
    ("scard", scard),
    ("sismember", sismember),
    ("smismember", smismember),
    ("smembers", smembers),
    ("srandmember", srandmember),
    ("spop", spop),
    ("smove", smove),
    ("sinter", sinter),
    ("sintercard", sintercard),
    ("sinterstore", sinterstore),
    ("sunion", sunion),
    ("sunionstore", sunionstore),
    ("sdiff", sdiff),
    ("sdiffstore", sdiffstore),
    ("sscan", sscan),
];

/// SRANDMEMBER copies the set and removes random members when it wants more than
/// 1/SRANDMEMBER_SUB_STRATEGY_MUL of it; otherwise it picks random members.
const SRANDMEMBER_SUB_STRATEGY_MUL: u64 = 3;
/// SPOP with a count keeps the popped part by picking the survivors instead when fewer than
/// count/SPOP_MOVE_STRATEGY_MUL members remain.
const SPOP_MOVE_STRATEGY_MUL: u64 = 5;
/// SSCAN visits at most COUNT times this many buckets per call.
const SCAN_BUCKETS_PER_COUNT: u64 = 10;

fn as_set(o: &RObj) -> Result<&Set, CmdError> {
    match &o.val {
        Value::Set(s) => Ok(s),
        _ => Err(CmdError::WrongType),
    }
}

fn as_set_mut(o: &mut RObj) -> Result<&mut Set, CmdError> {
    match &mut o.val {
        Value::Set(s) => Ok(s),
        _ => Err(CmdError::WrongType),
    }
}

fn reply_member(out: &mut ReplyBuf, m: Member) {
    match m {
        Member::Int(n) => out.bulk_int(n),
        Member::Bytes(b) => out.bulk(b),
    }
}

fn member_arg(m: Member) -> Bytes {
    Bytes::copy_from_slice(&m.bytes())
}

fn max_intset(ctx: &Ctx) -> u64 {
    ctx.srv.config.hot.set_max_intset_entries
}

/// A seed for a hashtable a command may create (a new set or an intset's conversion).
fn dict_seed(ctx: &mut Ctx) -> u64 {
    ctx.srv.rng.next_u64()
}

fn new_set_obj(ctx: &Ctx, set: Set) -> RObj {
    RObj::new(Value::Set(set), ctx.new_lru())
}

/// The set at `key` in the client's db, for changing it after a write lookup.
fn db_set_mut<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Option<&'c mut Set> {
    let db = ctx.client.db;
    ctx.srv.dbs[db].get_mut(key).and_then(|o| as_set_mut(o).ok())
}

fn sadd(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let key = &a[1];
    let (max, seed) = (max_intset(ctx), dict_seed(ctx));
    let added = match ctx.lookup_write(key) {
        Some(o) => {
            let set = as_set_mut(o)?;
            a[2..].iter().filter(|m| set.add(m, max, seed)).count()
        }
        None => {
            let mut set = Set::create(&a[2], seed);
            let n = a[2..].iter().filter(|m| set.add(m, max, seed)).count();
            let obj = new_set_obj(ctx, set);
            ctx.srv.dbs[ctx.client.db].add(key, obj);
            n
        }
    };
    ctx.dirty(added as u64);
    if added > 0 {
        ctx.notify(class::SET, "sadd", key);
    }
    ctx.out().int(added as i64);
    Ok(())
}

fn srem(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let key = &a[1];
    let Some(o) = ctx.lookup_write(key) else {
        ctx.out().int(0);
        return Ok(());
    };
    let set = as_set_mut(o)?;
    let mut deleted = 0;
    for m in &a[2..] {
        if set.remove(m) {
            deleted += 1;
            if set.is_empty() {
                break;
            }
        }
    }
    let emptied = set.is_empty();
    if deleted > 0 {
        ctx.notify(class::SET, "srem", key);
    }
    if emptied {
        ctx.srv.dbs[ctx.client.db].delete(key);
        ctx.notify(class::GENERIC, "del", key);
    }
    ctx.dirty(deleted);
    ctx.out().int(deleted as i64);
    Ok(())
}

fn scard(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let (o, out) = ctx.lookup_read_out(&a[1]);
    let n = match o {
        None => 0,
        Some(o) => as_set(o)?.len(),
    };
    out.int(n as i64);
    Ok(())
}

fn sismember(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let (o, out) = ctx.lookup_read_out(&a[1]);
    let found = match o {
        None => false,
        Some(o) => as_set(o)?.contains(&a[2]),
    };
    out.int(found as i64);
    Ok(())
}

fn smismember(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let (o, out) = ctx.lookup_read_out(&a[1]);
    let set = o.map(as_set).transpose()?;
    out.array(a.len() - 2);
    for m in &a[2..] {
        out.int(set.is_some_and(|s| s.contains(m)) as i64);
    }
    Ok(())
}

/// SMEMBERS is SINTER of one key in Redis 7.0.
fn smembers(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    sinter_generic(ctx, &a[1..], None)
}

fn srandmember(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    match a.len() {
        2 => {}
        3 => return srandmember_with_count(ctx, a),
        _ => return Err(CmdError::Syntax),
    }
    let db = ctx.client.db;
    if ctx.lookup_read(&a[1]).is_none() {
        ctx.out().null();
        return Ok(());
    }
    let srv = &mut *ctx.srv;
    let set = as_set(srv.dbs[db].get(&a[1]).expect("looked up"))?;
    let m = set.random(&mut srv.rng).expect("sets are never empty");
    reply_member(&mut ctx.client.out, m);
    Ok(())
}

/// Redis's `srandmemberWithCountCommand` and its four cases: a negative count may repeat
/// members, a count covering the set returns it all (in iteration order), a large count
/// copies the set and removes random members, a small one collects random members.
fn srandmember_with_count(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let l = int_arg(&a[2])?;
    if l == i64::MIN {
        return Err(CmdError::err(format!("value is out of range, value must between {} and {}", -i64::MAX, i64::MAX)));
    }
    let (count, uniq) = (l.unsigned_abs(), l >= 0);
    let db = ctx.client.db;
    if ctx.lookup_read(&a[1]).is_none() {
        ctx.out().array(0);
        return Ok(());
    }
    let srv = &mut *ctx.srv;
    let set = as_set(srv.dbs[db].get(&a[1]).expect("looked up"))?;
    let out = &mut ctx.client.out;
    let rng = &mut srv.rng;
    let size = set.len() as u64;
    if count == 0 {
        out.array(0);
    } else if !uniq || count == 1 {
        out.array(count as usize);
        for _ in 0..count {
            reply_member(out, set.random(rng).expect("sets are never empty"));
        }
    } else if count >= size {
        out.array(size as usize);
        set.iter().for_each(|m| reply_member(out, m));
    } else if count * SRANDMEMBER_SUB_STRATEGY_MUL > size {
        let mut pick: Vec<Member> = set.iter().collect();
        while pick.len() as u64 > count {
            pick.swap_remove(rng.below(pick.len() as u64) as usize);
        }
        out.array(pick.len());
        pick.into_iter().for_each(|m| reply_member(out, m));
    } else {
        let mut pick: Vec<Member> = Vec::with_capacity(count as usize);
        let mut seen = std::collections::BTreeSet::new();
        while (pick.len() as u64) < count {
            let m = set.random(rng).expect("sets are never empty");
            if seen.insert(m.bytes().into_owned()) {
                pick.push(m);
            }
        }
        out.array(pick.len());
        pick.into_iter().for_each(|m| reply_member(out, m));
    }
    Ok(())
}

fn srem_argv(key: &[u8], m: Bytes) -> Vec<Bytes> {
    vec![Bytes::from_static(b"SREM"), Bytes::copy_from_slice(key), m]
}

fn spop(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    match a.len() {
        2 => {}
        3 => return spop_with_count(ctx, a),
        _ => return Err(CmdError::Syntax),
    }
    let key = &a[1];
    let db = ctx.client.db;
    let Some(o) = ctx.lookup_write(key) else {
        ctx.out().null();
        return Ok(());
    };
    as_set(o)?;
    let srv = &mut *ctx.srv;
    let set = as_set_mut(srv.dbs[db].get_mut(key).expect("looked up"))?;
    let m = member_arg(set.random(&mut srv.rng).expect("sets are never empty"));
    set.remove(&m);
    let emptied = set.is_empty();
    ctx.notify(class::SET, "spop", key);
    ctx.out().bulk(&m);
    if emptied {
        ctx.srv.dbs[db].delete(key);
        ctx.notify(class::GENERIC, "del", key);
    }
    ctx.propagate_as(srem_argv(key, m));
    ctx.dirty(1);
    Ok(())
}

/// Redis's `spopWithCountCommand`: each popped member reaches replicas as its own SREM
/// (Redis wraps them in MULTI/EXEC), or the whole set as one DEL.
fn spop_with_count(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let key = &a[1];
    let count = match int_arg(&a[2]) {
        Ok(n) if n >= 0 => n as u64,
        _ => return Err(CmdError::err("value is out of range, must be positive")),
    };
    let db = ctx.client.db;
    let Some(o) = ctx.lookup_write(key) else {
        ctx.out().set(0);
        return Ok(());
    };
    let size = as_set(o)?.len() as u64;
    if count == 0 {
        ctx.out().set(0);
        return Ok(());
    }
    ctx.dirty(count);
    if count >= size {
        let Some(Value::Set(set)) = ctx.srv.dbs[db].delete(key).map(|o| o.val) else { unreachable!("checked a set") };
        ctx.notify(class::SET, "spop", key);
        let out = ctx.out();
        out.set(set.len());
        set.iter().for_each(|m| reply_member(out, m));
        ctx.notify(class::GENERIC, "del", key);
        ctx.propagate_as(vec![Bytes::from_static(b"DEL"), key.clone()]);
        return Ok(());
    }
    let remaining = size - count;
    let popped = if remaining * SPOP_MOVE_STRATEGY_MUL > count {
        spop_pick_popped(ctx, key, count)
    } else {
        spop_pick_remaining(ctx, key, remaining)
    };
    ctx.notify(class::SET, "spop", key);
    let out = ctx.out();
    out.set(popped.len());
    popped.iter().for_each(|m| out.bulk(m));
    for m in popped {
        ctx.propagate_as(srem_argv(key, m));
    }
    Ok(())
}

/// SPOP's case 2: few to pop, so pop random members one by one.
fn spop_pick_popped(ctx: &mut Ctx, key: &[u8], count: u64) -> Vec<Bytes> {
    let db = ctx.client.db;
    let srv = &mut *ctx.srv;
    let set = srv.dbs[db].get_mut(key).and_then(|o| as_set_mut(o).ok()).expect("looked up");
    (0..count)
        .map(|_| {
            let m = member_arg(set.random(&mut srv.rng).expect("more members than count"));
            set.remove(&m);
            m
        })
        .collect()
}

/// SPOP's case 3: most of the set goes, so move the few survivors to a new set (created as
/// `setTypeCreate` would, so a hashtable of integers may become an intset) and pop the rest.
fn spop_pick_remaining(ctx: &mut Ctx, key: &[u8], remaining: u64) -> Vec<Bytes> {
    let (max, seed) = (max_intset(ctx), dict_seed(ctx));
    let db = ctx.client.db;
    let srv = &mut *ctx.srv;
    let set = srv.dbs[db].get_mut(key).and_then(|o| as_set_mut(o).ok()).expect("looked up");
    let mut survivors: Option<Set> = None;
    for _ in 0..remaining {
        let m = member_arg(set.random(&mut srv.rng).expect("more members than remaining"));
        survivors.get_or_insert_with(|| Set::create(&m, seed)).add(&m, max, seed);
        set.remove(&m);
    }
    let popped = set.iter().map(member_arg).collect();
    *set = survivors.expect("remaining > 0");
    popped
}

fn smove(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let (src, dst, m) = (&a[1], &a[2], &a[3]);
    let (max, seed) = (max_intset(ctx), dict_seed(ctx));
    let db = ctx.client.db;
    let src_exists = ctx.lookup_write(src).is_some();
    let dst_exists = ctx.lookup_write(dst).is_some();
    if !src_exists {
        ctx.out().int(0);
        return Ok(());
    }
    as_set(ctx.srv.dbs[db].get(src).expect("looked up"))?;
    if dst_exists {
        as_set(ctx.srv.dbs[db].get(dst).expect("looked up"))?;
    }
    if src == dst {
        let found = as_set(ctx.srv.dbs[db].get(src).expect("looked up"))?.contains(m);
        ctx.out().int(found as i64);
        return Ok(());
    }
    let set = db_set_mut(ctx, src).expect("checked a set");
    if !set.remove(m) {
        ctx.out().int(0);
        return Ok(());
    }
    let emptied = set.is_empty();
    ctx.notify(class::SET, "srem", src);
    if emptied {
        ctx.srv.dbs[db].delete(src);
        ctx.notify(class::GENERIC, "del", src);
    }
    if !dst_exists {
        let obj = new_set_obj(ctx, Set::create(m, seed));
        ctx.srv.dbs[db].add(dst, obj);
    }
    ctx.dirty(1);
    if db_set_mut(ctx, dst).expect("checked a set").add(m, max, seed) {
        ctx.dirty(1);
        ctx.notify(class::SET, "sadd", dst);
    }
    ctx.out().int(1);
    Ok(())
}

/// Looks up each key as Redis's set operations do: a missing key is an empty set, and the
/// first key of another type stops the command with WRONGTYPE. Returns which keys exist.
fn lookup_sets(ctx: &mut Ctx, keys: &[Bytes], write: bool) -> Result<Vec<bool>, CmdError> {
    let mut exists = Vec::with_capacity(keys.len());
    for k in keys {
        let o = if write { ctx.lookup_write(k).map(|o| &*o) } else { ctx.lookup_read(k) };
        match o {
            None => exists.push(false),
            Some(o) => {
                as_set(o)?;
                exists.push(true);
            }
        }
    }
    Ok(exists)
}

fn sets_of<'d>(db: &'d crate::engine::db::Db, keys: &[Bytes], exists: &[bool]) -> Vec<Option<&'d Set>> {
    keys.iter().zip(exists).map(|(k, &e)| if e { db.get(k).and_then(|o| as_set(o).ok()) } else { None }).collect()
}

/// Stores a *STORE result: an empty one deletes the destination instead.
fn store_result(ctx: &mut Ctx, dst: &[u8], set: Set, event: &str) {
    let db = ctx.client.db;
    let n = set.len();
    if n > 0 {
        // The key is set before the reply (a `new` event comes first, as in Redis).
        let obj = new_set_obj(ctx, set);
        ctx.srv.dbs[db].set(dst, obj, false);
        ctx.out().int(n as i64);
        ctx.dirty(1);
        ctx.notify(class::SET, event, dst);
    } else {
        ctx.out().int(0);
        if ctx.srv.dbs[db].delete(dst).is_some() {
            ctx.dirty(1);
            ctx.notify(class::GENERIC, "del", dst);
        }
    }
}

/// What an intersection produces: a reply, a count (SINTERCARD, with its LIMIT) or a set.
enum InterOut<'a> {
    Store(&'a [u8]),
    Card(u64),
}

fn sinter(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    sinter_generic(ctx, &a[1..], None)
}

fn sinterstore(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    sinter_generic(ctx, &a[2..], Some(InterOut::Store(&a[1])))
}

fn sintercard(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    const NUMKEYS: &str = "numkeys should be greater than 0";
    let numkeys = int_arg(&a[1]).ok().filter(|&n| n >= 1).ok_or_else(|| CmdError::err(NUMKEYS))? as u64;
    if numkeys > (a.len() - 2) as u64 {
        return Err(CmdError::err("Number of keys can't be greater than number of args"));
    }
    let keys_end = 2 + numkeys as usize;
    let mut limit = 0;
    let mut j = keys_end;
    while j < a.len() {
        if a[j].eq_ignore_ascii_case(b"limit") && j + 1 < a.len() {
            limit =
                int_arg(&a[j + 1]).ok().filter(|&n| n >= 0).ok_or_else(|| CmdError::err("LIMIT can't be negative"))?
                    as u64;
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    sinter_generic(ctx, &a[2..keys_end], Some(InterOut::Card(limit)))
}

/// Redis's `sinterGenericCommand`: iterate the smallest set, keep what every other set has.
fn sinter_generic(ctx: &mut Ctx, keys: &[Bytes], mode: Option<InterOut>) -> CmdResult {
    let store = matches!(mode, Some(InterOut::Store(_)));
    let exists = lookup_sets(ctx, keys, store)?;
    if exists.contains(&false) {
        match mode {
            Some(InterOut::Store(dst)) => store_result(ctx, dst, Set::new_intset(), "sinterstore"),
            Some(InterOut::Card(_)) => ctx.out().int(0),
            None => ctx.out().set(0),
        }
        return Ok(());
    }
    let (max, seed) = (max_intset(ctx), if store { dict_seed(ctx) } else { 0 });
    let db = &ctx.srv.dbs[ctx.client.db];
    let mut sets: Vec<&Set> = sets_of(db, keys, &exists).into_iter().flatten().collect();
    // A stable sort, as glibc's qsort (a merge sort) is: ties keep the key order.
    sets.sort_by_key(|s| s.len());
    let first = sets[0];
    let in_all = |m: Member| sets[1..].iter().all(|s| std::ptr::eq(*s, first) || s.contains_member(m));
    match mode {
        None => {
            let found: Vec<Member> = first.iter().filter(|&m| in_all(m)).collect();
            let out = &mut ctx.client.out;
            out.set(found.len());
            found.into_iter().for_each(|m| reply_member(out, m));
        }
        Some(InterOut::Card(limit)) => {
            let mut n = 0u64;
            for m in first.iter() {
                if in_all(m) {
                    n += 1;
                    if limit > 0 && n >= limit {
                        break;
                    }
                }
            }
            ctx.client.out.int(n as i64);
        }
        Some(InterOut::Store(dst)) => {
            let mut result = Set::new_intset();
            for m in first.iter().filter(|&m| in_all(m)) {
                result.add_member(m, max, seed);
            }
            store_result(ctx, dst, result, "sinterstore");
        }
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Union,
    Diff,
}

fn sunion(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    sunion_diff_generic(ctx, &a[1..], None, SetOp::Union)
}

fn sunionstore(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    sunion_diff_generic(ctx, &a[2..], Some(&a[1]), SetOp::Union)
}

fn sdiff(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    sunion_diff_generic(ctx, &a[1..], None, SetOp::Diff)
}

fn sdiffstore(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    sunion_diff_generic(ctx, &a[2..], Some(&a[1]), SetOp::Diff)
}

/// Redis's `sunionDiffGenericCommand`. The result is built in a fresh intset by adding
/// members in iteration order, so its encoding (and so the reply order) follows Redis's
/// choices, including which of the two DIFF algorithms runs.
fn sunion_diff_generic(ctx: &mut Ctx, keys: &[Bytes], dst: Option<&[u8]>, op: SetOp) -> CmdResult {
    let exists = lookup_sets(ctx, keys, dst.is_some())?;
    let (max, seed) = (max_intset(ctx), dict_seed(ctx));
    let db = &ctx.srv.dbs[ctx.client.db];
    let sets = sets_of(db, keys, &exists);
    let result = match op {
        SetOp::Union => union_of(&sets, max, seed),
        SetOp::Diff => diff_of(sets, max, seed),
    };
    match dst {
        Some(dst) => {
            let event = if op == SetOp::Union { "sunionstore" } else { "sdiffstore" };
            store_result(ctx, dst, result, event)
        }
        None => {
            let out = &mut ctx.client.out;
            out.set(result.len());
            result.iter().for_each(|m| reply_member(out, m));
        }
    }
    Ok(())
}

fn union_of(sets: &[Option<&Set>], max: u64, seed: u64) -> Set {
    let mut result = Set::new_intset();
    for s in sets.iter().flatten() {
        s.iter().for_each(|m| {
            result.add_member(m, max, seed);
        });
    }
    result
}

fn diff_of(mut sets: Vec<Option<&Set>>, max: u64, seed: u64) -> Set {
    let mut result = Set::new_intset();
    let Some(first) = sets[0] else { return result };
    let same_set = sets[1..].iter().flatten().any(|s| std::ptr::eq(*s, first));
    if same_set {
        return result;
    }
    // Algorithm 1 costs |first| per set, algorithm 2 the size of every set; 1 gets a 2x
    // bonus for its better constants.
    let present = sets.iter().flatten();
    let (one, two) = present.fold((0u64, 0u64), |(o, t), s| (o + first.len() as u64, t + s.len() as u64));
    if one / 2 <= two {
        // Largest first: a member found early stops the search sooner.
        sets[1..].sort_by_key(|s| std::cmp::Reverse(s.map_or(0, |s| s.len())));
        for m in first.iter() {
            if sets[1..].iter().flatten().all(|s| !s.contains_member(m)) {
                result.add_member(m, max, seed);
            }
        }
    } else {
        let mut card = 0usize;
        for (j, s) in sets.iter().enumerate() {
            let Some(s) = s else { continue };
            for m in s.iter() {
                if j == 0 {
                    card += result.add_member(m, max, seed) as usize;
                } else {
                    card -= result.remove_member(m) as usize;
                }
            }
            if card == 0 {
                break;
            }
        }
    }
    result
}

fn sscan(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let mut cursor = super::keyspace::parse_scan_cursor(&a[2]).ok_or_else(|| CmdError::err("invalid cursor"))?;
    let (o, out) = ctx.lookup_read_out(&a[1]);
    let Some(o) = o else {
        out.array(2);
        out.bulk(b"0");
        out.array(0);
        return Ok(());
    };
    let set = as_set(o)?;
    let (count, pattern) = super::keyspace::parse_key_scan_options(a)?;
    let count = count as u64;
    let mut found: Vec<Vec<u8>> = Vec::new();
    let mut buckets_left = count.saturating_mul(SCAN_BUCKETS_PER_COUNT);
    loop {
        cursor = set.scan(cursor, |m| found.push(m.bytes().into_owned()));
        if cursor == 0 || buckets_left == 0 || found.len() as u64 >= count {
            break;
        }
        buckets_left -= 1;
    }
    if let Some(p) = pattern {
        found.retain(|m| glob_match(p, m, false));
    }
    out.array(2);
    out.bulk(itoa::Buffer::new().format(cursor).as_bytes());
    out.array(found.len());
    found.iter().for_each(|m| out.bulk(m));
    Ok(())
}

#[cfg(test)]
mod tests;

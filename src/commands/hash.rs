//! Hash commands (Redis's `t_hash.c`). Writes check `hash-max-listpack-*` as Redis does, so a
//! hash changes encoding on the same command; HINCRBYFLOAT reaches replicas and the AOF as an
//! HSET of its result, so float formatting can never make them diverge.

use bytes::Bytes;

use super::keyspace::parse_scan_cursor;
use super::{int_arg, CmdError, CmdResult, Ctx, Handler};
use crate::engine::hash::{Hash, HashLimits};
use crate::engine::object::{RObj, Value};
use crate::env::{Rng, SeededRng};
use crate::protocol::parser::parse_ll;
use crate::protocol::ReplyBuf;
use crate::server::notify::class;
use crate::server::Server;
use crate::util::glob_match;

pub static COMMANDS: &[(&str, Handler)] = &[
    ("hset", hset),
    ("hmset", hmset),
    ("hsetnx", hsetnx),
    ("hget", hget),
    ("hmget", hmget),
    ("hdel", hdel),
    ("hlen", hlen),
    ("hstrlen", hstrlen),
    ("hexists", hexists),
    ("hkeys", hkeys),
    ("hvals", hvals),
    ("hgetall", hgetall),
    ("hincrby", hincrby),
    ("hincrbyfloat", hincrbyfloat),
    ("hrandfield", hrandfield),
    ("hscan", hscan),
];

/// HRANDFIELD with a count below size/3 picks elements; above, it drops them from a copy
/// (Redis's `HRANDFIELD_SUB_STRATEGY_MUL`).
const HRANDFIELD_SUB_STRATEGY_MUL: u64 = 3;
/// HSCAN visits at most COUNT times this many buckets, so a sparse table cannot stall it.
const SCAN_BUCKETS_PER_COUNT: usize = 10;

fn as_hash(o: &RObj) -> Result<&Hash, CmdError> {
    match &o.val {
        Value::Hash(h) => Ok(h),
        _ => Err(CmdError::WrongType),
    }
}

fn as_hash_mut(o: &mut RObj) -> Result<&mut Hash, CmdError> {
    match &mut o.val {
        Value::Hash(h) => Ok(h),
        _ => Err(CmdError::WrongType),
    }
}

fn limits(ctx: &mut Ctx) -> HashLimits {
    let hot = &ctx.srv.config.hot;
    let (max_entries, max_value) = (hot.hash_max_listpack_entries, hot.hash_max_listpack_value);
    HashLimits {
        max_entries: usize::try_from(max_entries).unwrap_or(usize::MAX),
        max_value: usize::try_from(max_value).unwrap_or(usize::MAX),
        seed: ctx.srv.rng.next_u64(),
    }
}

/// Redis's `hashTypeLookupWriteOrCreate`: the hash at `key`, created empty (listpack) when
/// missing; WRONGTYPE for other types. Callers leave it non-empty.
fn lookup_write_or_create<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<&'c mut Hash, CmdError> {
    let db = ctx.db_index();
    match ctx.lookup_write(key) {
        Some(o) => as_hash_mut(o).map(|_| ())?,
        None => {
            let obj = RObj::new(Value::Hash(Box::default()), ctx.new_lru());
            ctx.srv.dbs[db].add(key, obj);
        }
    }
    as_hash_mut(ctx.srv.dbs[db].get_mut(key).expect("looked up or added"))
}

/// HSET's arity: pairs after the key (Redis's `addReplyErrorArity`).
fn check_pairs(a: &[Bytes], name: &str) -> CmdResult {
    if a.len() % 2 == 1 {
        return Err(CmdError::err(format!("wrong number of arguments for '{name}' command")));
    }
    Ok(())
}

/// HSET and HMSET: sets every pair; returns how many fields were new.
fn hset_generic(ctx: &mut Ctx, a: &[Bytes]) -> Result<i64, CmdError> {
    let limits = limits(ctx);
    let h = lookup_write_or_create(ctx, &a[1])?;
    h.try_conversion(a[2..].iter().map(|b| &b[..]), limits);
    let created = a[2..].chunks(2).filter(|p| h.set(&p[0], &p[1], limits)).count();
    h.shrink_to_fit();
    ctx.dirty(((a.len() - 2) / 2) as u64);
    Ok(created as i64)
}

fn hset(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    check_pairs(a, "hset")?;
    let created = hset_generic(ctx, a)?;
    ctx.out().int(created);
    ctx.notify(class::HASH, "hset", &a[1]);
    Ok(())
}

fn hmset(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    check_pairs(a, "hmset")?;
    hset_generic(ctx, a)?;
    ctx.out().ok();
    ctx.notify(class::HASH, "hset", &a[1]);
    Ok(())
}

fn hsetnx(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let limits = limits(ctx);
    let h = lookup_write_or_create(ctx, &a[1])?;
    if h.contains(&a[2]) {
        ctx.out().int(0);
        return Ok(());
    }
    h.try_conversion([&a[2][..], &a[3][..]], limits);
    h.set(&a[2], &a[3], limits);
    h.shrink_to_fit();
    ctx.dirty(1);
    ctx.out().int(1);
    ctx.notify(class::HASH, "hset", &a[1]);
    Ok(())
}

fn hget(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let (obj, out) = ctx.lookup_read_out(&a[1]);
    match obj.map(as_hash).transpose()?.and_then(|h| h.get(&a[2])) {
        Some(v) => out.bulk(v),
        None => out.null(),
    }
    Ok(())
}

fn hmget(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let (obj, out) = ctx.lookup_read_out(&a[1]);
    let h = obj.map(as_hash).transpose()?;
    out.array(a.len() - 2);
    for field in &a[2..] {
        match h.and_then(|h| h.get(field)) {
            Some(v) => out.bulk(v),
            None => out.null(),
        }
    }
    Ok(())
}

fn hdel(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let db = ctx.db_index();
    let Some(o) = ctx.lookup_write(&a[1]) else {
        ctx.out().int(0);
        return Ok(());
    };
    let h = as_hash_mut(o)?;
    let mut deleted = 0;
    for field in &a[2..] {
        if h.remove(field) {
            deleted += 1;
            if h.is_empty() {
                break;
            }
        }
    }
    h.shrink_to_fit();
    let emptied = h.is_empty();
    if deleted > 0 {
        ctx.notify(class::HASH, "hdel", &a[1]);
    }
    if emptied {
        ctx.srv.dbs[db].delete(&a[1]);
        ctx.notify(class::GENERIC, "del", &a[1]);
    }
    ctx.dirty(deleted);
    ctx.out().int(deleted as i64);
    Ok(())
}

/// Replies with an integer computed from the hash at `key`, 0 when missing.
fn reply_int_of(ctx: &mut Ctx, key: &[u8], f: impl FnOnce(&Hash) -> usize) -> CmdResult {
    let (obj, out) = ctx.lookup_read_out(key);
    let n = obj.map(as_hash).transpose()?.map_or(0, f);
    out.int(n as i64);
    Ok(())
}

fn hlen(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    reply_int_of(ctx, &a[1], Hash::len)
}

fn hstrlen(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    reply_int_of(ctx, &a[1], |h| h.get(&a[2]).map_or(0, <[u8]>::len))
}

fn hexists(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    reply_int_of(ctx, &a[1], |h| usize::from(h.contains(&a[2])))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Keys,
    Values,
    Both,
}

/// HKEYS, HVALS, HGETALL (Redis's `genericHgetallCommand`): pairs are a map, the rest arrays.
fn hgetall_generic(ctx: &mut Ctx, key: &[u8], part: Part) -> CmdResult {
    let (obj, out) = ctx.lookup_read_out(key);
    let h = obj.map(as_hash).transpose()?;
    let len = h.map_or(0, Hash::len);
    if part == Part::Both {
        out.map(len);
    } else {
        out.array(len);
    }
    for (k, v) in h.into_iter().flat_map(Hash::iter) {
        if part != Part::Values {
            out.bulk(k);
        }
        if part != Part::Keys {
            out.bulk(v);
        }
    }
    Ok(())
}

fn hkeys(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    hgetall_generic(ctx, &a[1], Part::Keys)
}

fn hvals(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    hgetall_generic(ctx, &a[1], Part::Values)
}

fn hgetall(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    hgetall_generic(ctx, &a[1], Part::Both)
}

fn hincrby(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let incr = int_arg(&a[3])?;
    let limits = limits(ctx);
    let h = lookup_write_or_create(ctx, &a[1])?;
    let cur = match h.get(&a[2]) {
        Some(v) => parse_ll(v).ok_or_else(|| CmdError::err("hash value is not an integer"))?,
        None => 0,
    };
    let new = cur.checked_add(incr).ok_or(CmdError::Overflow)?;
    h.set(&a[2], itoa::Buffer::new().format(new).as_bytes(), limits);
    h.shrink_to_fit();
    ctx.dirty(1);
    ctx.out().int(new);
    ctx.notify(class::HASH, "hincrby", &a[1]);
    Ok(())
}

fn hincrbyfloat(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    use crate::engine::ldouble::{incr_by_float, LdError};
    // The increment alone: 0 + incr fails only when incr is no float, or NaN or infinite.
    match incr_by_float(b"0", &a[3]) {
        Err(LdError::NotFloat) => return Err(CmdError::NotFloat),
        Err(LdError::NanOrInfinity) => return Err(CmdError::err("value is NaN or Infinity")),
        Ok(_) => {}
    }
    let limits = limits(ctx);
    let h = lookup_write_or_create(ctx, &a[1])?;
    let cur = h.get(&a[2]).map(<[u8]>::to_vec);
    let sum = incr_by_float(cur.as_deref().unwrap_or(b"0"), &a[3]).map_err(|e| match e {
        LdError::NotFloat => CmdError::err("hash value is not a float"),
        LdError::NanOrInfinity => CmdError::err("increment would produce NaN or Infinity"),
    })?;
    h.set(&a[2], &sum, limits);
    h.shrink_to_fit();
    ctx.dirty(1);
    ctx.out().bulk(&sum);
    ctx.notify(class::HASH, "hincrbyfloat", &a[1]);
    ctx.propagate_as(vec![Bytes::from_static(b"HSET"), a[1].clone(), a[2].clone(), Bytes::from(sum)]);
    Ok(())
}

/// HRANDFIELD's count argument and WITHVALUES, checked in Redis's order.
fn parse_hrandfield_count(a: &[Bytes]) -> Result<(i64, bool), CmdError> {
    let l = int_arg(&a[2])?;
    if l == i64::MIN {
        return Err(CmdError::err(
            "value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        ));
    }
    let withvalues = a.len() == 4;
    if a.len() > 4 || (withvalues && !a[3].eq_ignore_ascii_case(b"withvalues")) {
        return Err(CmdError::Syntax);
    }
    // The reply holds two bulks per field: the count must not overflow when doubled.
    if withvalues && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&l) {
        return Err(CmdError::err("value is out of range"));
    }
    Ok((l, withvalues))
}

fn hrandfield(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let count = if a.len() >= 3 { Some(parse_hrandfield_count(a)?) } else { None };
    if ctx.lookup_read(&a[1]).is_none() {
        match count {
            None => ctx.out().null(),
            Some(_) => ctx.out().array(0),
        }
        return Ok(());
    }
    let db = ctx.db_index();
    let Server { dbs, rng, .. } = &mut *ctx.srv;
    let h = as_hash(dbs[db].get(&a[1]).expect("looked up"))?;
    let out = &mut ctx.client.out;
    match count {
        None => {
            let (k, _) = h.random(rng).expect("hashes are never empty");
            out.bulk(k);
        }
        Some((l, withvalues)) => hrandfield_with_count(h, rng, out, l, withvalues),
    }
    Ok(())
}

/// Redis's `hrandfieldWithCountCommand`: a negative count may repeat fields (case 1); a
/// positive one returns distinct fields: all of them (case 2), all but random ones dropped
/// (case 3), or random picks until enough distinct ones (case 4).
fn hrandfield_with_count(h: &Hash, rng: &mut SeededRng, out: &mut ReplyBuf, l: i64, withvalues: bool) {
    let size = h.len() as u64;
    let (count, uniq) = (l.unsigned_abs(), l >= 0);
    if count == 0 {
        out.array(0);
        return;
    }
    let header = |out: &mut ReplyBuf, n: u64| {
        let n = n as usize;
        out.array(if withvalues && out.resp < 3 { n * 2 } else { n });
    };
    if !uniq || count == 1 {
        header(out, count);
        for _ in 0..count {
            let (k, v) = h.random(rng).expect("hashes are never empty");
            reply_pair(out, k, v, withvalues);
        }
        return;
    }
    header(out, count.min(size));
    hrandfield_distinct(h, rng, out, count, withvalues);
}

/// Cases 2 to 4 of HRANDFIELD: `count` distinct fields, or all when there are no more.
fn hrandfield_distinct(h: &Hash, rng: &mut SeededRng, out: &mut ReplyBuf, count: u64, withvalues: bool) {
    let size = h.len() as u64;
    if count >= size {
        h.iter().for_each(|(k, v)| reply_pair(out, k, v, withvalues));
    } else if count * HRANDFIELD_SUB_STRATEGY_MUL > size {
        let mut pairs: Vec<(&[u8], &[u8])> = h.iter().collect();
        while pairs.len() as u64 > count {
            pairs.swap_remove(rng.below(pairs.len() as u64) as usize);
        }
        pairs.into_iter().for_each(|(k, v)| reply_pair(out, k, v, withvalues));
    } else if let Hash::Listpack(_) = h {
        // Selection sampling (Redis's `lpRandomPairsUnique`): one pass, in listpack order.
        let mut need = count;
        for (seen, (k, v)) in h.iter().enumerate() {
            if rng.below(size - seen as u64) < need {
                reply_pair(out, k, v, withvalues);
                need -= 1;
            }
        }
    } else {
        // Membership only: the reply follows the order of the picks, never the set's.
        let mut picked = std::collections::HashSet::new();
        while (picked.len() as u64) < count {
            let (k, v) = h.random(rng).expect("hashes are never empty");
            if picked.insert(k) {
                reply_pair(out, k, v, withvalues);
            }
        }
    }
}

/// One HRANDFIELD element: the field, its value with WITHVALUES (a pair array in RESP3).
fn reply_pair(out: &mut ReplyBuf, k: &[u8], v: &[u8], withvalues: bool) {
    if withvalues && out.resp >= 3 {
        out.array(2);
    }
    out.bulk(k);
    if withvalues {
        out.bulk(v);
    }
}

/// HSCAN: a listpack answers whole with cursor 0; a hashtable walks buckets until COUNT
/// elements (fields and values both count, as Redis counts its reply list) or the budget.
fn hscan(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let mut cursor = parse_scan_cursor(&a[2]).ok_or_else(|| CmdError::err("invalid cursor"))?;
    let (obj, out) = ctx.lookup_read_out(&a[1]);
    let Some(h) = obj.map(as_hash).transpose()? else {
        out.array(2);
        out.bulk(b"0");
        out.array(0);
        return Ok(());
    };
    let (count, pattern) = super::keyspace::parse_key_scan_options(a)?;
    let mut found: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut buckets_left = count.saturating_mul(SCAN_BUCKETS_PER_COUNT);
    loop {
        cursor = h.scan(cursor, |k, v| found.push((k.to_vec(), v.to_vec())));
        if cursor == 0 || buckets_left == 0 || found.len() * 2 >= count {
            break;
        }
        buckets_left -= 1;
    }
    found.retain(|(k, _)| pattern.is_none_or(|p| glob_match(p, k, false)));
    out.array(2);
    out.bulk(itoa::Buffer::new().format(cursor).as_bytes());
    out.array(found.len() * 2);
    for (k, v) in &found {
        out.bulk(k);
        out.bulk(v);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::commands::testing::{propagating, run, server, take_propagated, words};
    use crate::server::Server;

    fn encoding(srv: &Server, key: &str) -> &'static str {
        srv.dbs[0].get(key.as_bytes()).expect("stored").val.encoding()
    }

    #[test]
    fn hincrbyfloat_propagates_as_hset_of_its_result() {
        let mut srv = propagating();
        run(&mut srv, &["HINCRBYFLOAT", "h", "f", "10.5"]);
        assert_eq!(run(&mut srv, &["HINCRBYFLOAT", "h", "f", "0.1"]), b"$4\r\n10.6\r\n");
        assert_eq!(take_propagated(&mut srv), [words(&["HSET", "h", "f", "10.5"]), words(&["HSET", "h", "f", "10.6"])]);
    }

    #[test]
    fn writes_propagate_as_sent_and_failures_or_no_ops_not_at_all() {
        let mut srv = propagating();
        run(&mut srv, &["HSET", "h", "a", "1"]);
        run(&mut srv, &["HSETNX", "h", "a", "2"]);
        run(&mut srv, &["HINCRBY", "h", "a", "5"]);
        run(&mut srv, &["HDEL", "h", "zz"]);
        run(&mut srv, &["HDEL", "h", "a"]);
        run(&mut srv, &["HINCRBY", "h", "a", "x"]);
        assert_eq!(
            take_propagated(&mut srv),
            [words(&["HSET", "h", "a", "1"]), words(&["HINCRBY", "h", "a", "5"]), words(&["HDEL", "h", "a"])]
        );
        assert!(srv.dbs[0].get(b"h").is_none(), "HDEL of the last field deletes the key");
    }

    #[test]
    fn listpack_converts_past_the_configured_limits_and_never_back() {
        let mut srv = server();
        run(&mut srv, &["CONFIG", "SET", "hash-max-listpack-entries", "2"]);
        run(&mut srv, &["HSET", "h", "a", "1", "b", "2"]);
        assert_eq!(encoding(&srv, "h"), "listpack");
        run(&mut srv, &["HSET", "h", "c", "3"]);
        assert_eq!(encoding(&srv, "h"), "hashtable");
        run(&mut srv, &["HDEL", "h", "a", "b"]);
        assert_eq!(encoding(&srv, "h"), "hashtable");
        run(&mut srv, &["HSET", "v", "f", &"x".repeat(64)]);
        assert_eq!(encoding(&srv, "v"), "listpack");
        run(&mut srv, &["HINCRBYFLOAT", "v", "g", "1e70"]);
        assert_eq!(encoding(&srv, "v"), "hashtable");
    }

    #[test]
    fn hscan_of_a_hashtable_returns_every_field_across_calls() {
        let mut srv = server();
        run(&mut srv, &["CONFIG", "SET", "hash-max-listpack-entries", "0"]);
        for i in 0..300 {
            run(&mut srv, &["HSET", "h", &format!("f{i}"), "v"]);
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut cursor = "0".to_string();
        loop {
            let reply = String::from_utf8(run(&mut srv, &["HSCAN", "h", &cursor, "COUNT", "7"])).expect("utf8");
            let lines: Vec<&str> = reply.split("\r\n").collect();
            cursor = lines[2].to_string();
            seen.extend(lines.iter().filter(|l| l.starts_with('f')).map(|l| l.to_string()));
            if cursor == "0" {
                break;
            }
        }
        assert_eq!(seen.len(), 300);
    }

    #[test]
    fn hrandfield_distinct_counts_return_distinct_fields() {
        let mut srv = server();
        for enc_limit in ["512", "0"] {
            run(&mut srv, &["CONFIG", "SET", "hash-max-listpack-entries", enc_limit]);
            run(&mut srv, &["DEL", "h"]);
            for i in 0..40 {
                run(&mut srv, &["HSET", "h", &format!("f{i}"), "v"]);
            }
            for count in [2, 5, 20, 39] {
                let reply = String::from_utf8(run(&mut srv, &["HRANDFIELD", "h", &count.to_string()])).expect("utf8");
                let fields: std::collections::BTreeSet<&str> =
                    reply.split("\r\n").filter(|l| l.starts_with('f')).collect();
                assert_eq!(fields.len(), count, "{enc_limit} {count}");
            }
        }
    }
}

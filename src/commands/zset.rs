//! Sorted set commands (Redis's `t_zset.c`). Values live in `engine::zset`; this module parses
//! arguments in Redis's order (so the first error Redis reports is the one we report), picks
//! ranges by rank, score or lex, and replies in RESP2 or RESP3 shapes. The blocking forms
//! (BZPOPMIN, BZPOPMAX, BZMPOP) park on `server::blocking` and are served by `serve_blocked`.

use std::collections::HashMap;

use bytes::Bytes;

use super::list::{block, timeout_arg};
use super::{int_arg, CmdError, CmdResult, Ctx, Handler};
use crate::engine::object::{RObj, Value};
use crate::engine::zset::{key_cmp, Limits, Zset};
use crate::protocol::ReplyBuf;
use crate::server::blocking::BlockedOp;
use crate::server::notify::class;
use crate::util::glob_match;

pub static COMMANDS: &[(&str, Handler)] = &[
    ("zadd", zadd),
    ("zincrby", zincrby),
    ("zrem", zrem),
    ("zcard", zcard),
    ("zcount", zcount),
    ("zlexcount", zlexcount),
    ("zscore", zscore),
    ("zmscore", zmscore),
    ("zrank", zrank),
    ("zrevrank", zrevrank),
    ("zrange", zrange),
    ("zrangestore", zrangestore),
    ("zrevrange", zrevrange),
    ("zrangebyscore", zrangebyscore),
    ("zrevrangebyscore", zrevrangebyscore),
    ("zrangebylex", zrangebylex),
    ("zrevrangebylex", zrevrangebylex),
    ("zremrangebyrank", zremrangebyrank),
    ("zremrangebyscore", zremrangebyscore),
    ("zremrangebylex", zremrangebylex),
    ("zpopmin", zpopmin),
    ("zpopmax", zpopmax),
    ("zmpop", zmpop),
    ("bzpopmin", bzpopmin),
    ("bzpopmax", bzpopmax),
    ("bzmpop", bzmpop),
    ("zrandmember", zrandmember),
    ("zunion", zunion),
    ("zinter", zinter),
    ("zdiff", zdiff),
    ("zunionstore", zunionstore),
    ("zinterstore", zinterstore),
    ("zdiffstore", zdiffstore),
    ("zintercard", zintercard),
    ("zscan", zscan),
];

const NAN_SCORE: &str = "ERR resulting score is not a number (NaN)";
const NOT_FLOAT_RANGE: &str = "ERR min or max is not a float";
const NOT_LEX_RANGE: &str = "ERR min or max not valid string range item";
/// ZSCAN on a listpack replies with everything at once, as Redis does for small encodings;
/// on the dict it visits at most this many empty buckets per COUNT.
const SCAN_BUCKETS_PER_COUNT: usize = 10;

type Members = Vec<(Vec<u8>, f64)>;

fn limits(ctx: &Ctx) -> Limits {
    let hot = &ctx.srv.config.hot;
    Limits {
        max_entries: usize::try_from(hot.zset_max_listpack_entries).unwrap_or(usize::MAX),
        max_value: usize::try_from(hot.zset_max_listpack_value).unwrap_or(usize::MAX),
    }
}

/// A seed for a new dict (skiplist encoding), from the server's seeded rng.
fn dict_seed(ctx: &mut Ctx) -> u64 {
    crate::env::Rng::next_u64(&mut ctx.srv.rng)
}

fn as_zset(o: &RObj) -> Result<&Zset, CmdError> {
    match &o.val {
        Value::Zset(z) => Ok(z),
        _ => Err(CmdError::WrongType),
    }
}

fn as_zset_mut(o: &mut RObj) -> Result<&mut Zset, CmdError> {
    match &mut o.val {
        Value::Zset(z) => Ok(z),
        _ => Err(CmdError::WrongType),
    }
}

/// The zset at `key` for reading (None when missing), or WRONGTYPE.
fn read_zset<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<(Option<&'c Zset>, &'c mut ReplyBuf), CmdError> {
    let (o, out) = ctx.lookup_read_out(key);
    Ok((o.map(as_zset).transpose()?, out))
}

/// Stores `z` at `key` as a new value, or deletes `key` when `z` is empty (never an empty
/// zset in the keyspace). Returns whether anything changed.
fn store(ctx: &mut Ctx, key: &[u8], z: Zset) -> bool {
    let db = ctx.client.db;
    if z.is_empty() {
        return ctx.srv.dbs[db].delete(key).is_some();
    }
    let obj = RObj::new(Value::Zset(Box::new(z)), ctx.new_lru());
    ctx.srv.dbs[db].set(key, obj, false);
    // Signalled here, not only by the server's after-command scan, so that waiters see
    // keys in the order they were written.
    ctx.srv.signal_key_as_ready(db, key);
    true
}

/// Deletes `key` if its zset became empty.
fn delete_if_empty(ctx: &mut Ctx, key: &[u8]) {
    let db = ctx.client.db;
    let empty = ctx.srv.dbs[db].get(key).is_some_and(|o| matches!(&o.val, Value::Zset(z) if z.is_empty()));
    if empty {
        ctx.srv.dbs[db].delete(key);
        ctx.notify(class::GENERIC, "del", key);
    }
}

/// A score or weight argument (Redis's `getDoubleFromObject`): strtod over every byte, no
/// leading space, no overflow or underflow to zero, not NaN.
fn parse_score(b: &[u8]) -> Result<f64, CmdError> {
    if b.first().is_none_or(|c| c.is_ascii_whitespace() || *c == 0x0b || *c == 0x0c) {
        return Err(CmdError::NotFloat);
    }
    match c_strtod(b) {
        Some((v, false)) if !v.is_nan() => Ok(v),
        _ => Err(CmdError::NotFloat),
    }
}

/// C's `strtod` over the whole C string, as Redis's range parsers use it: leading spaces
/// allowed, nothing may follow, the empty string is 0, overflow is infinity; NaN is refused.
fn strtod_whole(b: &[u8]) -> Option<f64> {
    let b = &b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())];
    if b.is_empty() {
        return Some(0.0);
    }
    let start = b.iter().position(|c| !c.is_ascii_whitespace() && *c != 0x0b && *c != 0x0c)?;
    c_strtod(&b[start..]).map(|(v, _)| v).filter(|v| !v.is_nan())
}

/// C's `strtod` when it consumes all of `b`: the value and whether it set ERANGE (overflow,
/// or a nonzero number that underflowed to zero). Decimal, hex (`0x1.8p3`), inf, nan.
pub(crate) fn c_strtod(b: &[u8]) -> Option<(f64, bool)> {
    let (neg, body) = match b.first()? {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    let lower = body.to_ascii_lowercase();
    let v = if lower == b"inf" || lower == b"infinity" {
        return Some((if neg { f64::NEG_INFINITY } else { f64::INFINITY }, false));
    } else if lower.starts_with(b"nan") {
        return Some((f64::NAN, false));
    } else if lower.starts_with(b"0x") {
        parse_hex_float(&lower[2..])?
    } else {
        if !lower.iter().all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'+' | b'-')) {
            return None;
        }
        std::str::from_utf8(body).ok()?.parse::<f64>().ok()?
    };
    let mantissa_nonzero = lower
        .iter()
        .take_while(|c| !matches!(c, b'e' | b'p'))
        .any(|c| (b'1'..=b'9').contains(c) || (b'a'..=b'f').contains(c) && lower.starts_with(b"0x"));
    let erange = v.is_infinite() || (v == 0.0 && mantissa_nonzero);
    Some((if neg { -v } else { v }, erange))
}

/// The digits after `0x`: hex mantissa with an optional fraction and binary exponent.
fn parse_hex_float(b: &[u8]) -> Option<f64> {
    let (mant, exp) = match b.iter().position(|&c| c == b'p') {
        Some(i) => (&b[..i], Some(&b[i + 1..])),
        None => (b, None),
    };
    let (int, frac) = match mant.iter().position(|&c| c == b'.') {
        Some(i) => (&mant[..i], &mant[i + 1..]),
        None => (mant, &b""[..]),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0.0f64;
    for &c in int.iter().chain(frac) {
        v = v * 16.0 + f64::from((c as char).to_digit(16)?);
    }
    let mut e = -4 * frac.len() as i32;
    if let Some(x) = exp {
        let x = std::str::from_utf8(x).ok()?;
        if x.is_empty() || x == "+" || x == "-" {
            return None;
        }
        e = e.saturating_add(x.parse::<i32>().ok()?);
    }
    Some(v * 2f64.powi(e))
}

fn reply_members(out: &mut ReplyBuf, items: &[(Vec<u8>, f64)], withscores: bool) {
    if withscores && out.resp == 2 {
        out.array(items.len() * 2);
    } else {
        out.array(items.len());
    }
    for item in items {
        reply_member(out, item, withscores);
    }
}

// ---------------------------------------------------------------------------------------
// Ranges

#[derive(Debug, Clone, Copy)]
struct ScoreRange {
    min: f64,
    max: f64,
    minex: bool,
    maxex: bool,
}

impl ScoreRange {
    fn parse(min: &[u8], max: &[u8]) -> Result<ScoreRange, CmdError> {
        let item = |b: &[u8]| -> Option<(f64, bool)> {
            match b.first() {
                Some(b'(') => strtod_whole(&b[1..]).map(|v| (v, true)),
                _ => strtod_whole(b).map(|v| (v, false)),
            }
        };
        let err = || CmdError::Other(NOT_FLOAT_RANGE.into());
        let (min, minex) = item(min).ok_or_else(err)?;
        let (max, maxex) = item(max).ok_or_else(err)?;
        Ok(ScoreRange { min, max, minex, maxex })
    }

    fn below_min(&self, s: f64) -> bool {
        if self.minex {
            s <= self.min
        } else {
            s < self.min
        }
    }

    fn within_max(&self, s: f64) -> bool {
        if self.maxex {
            s < self.max
        } else {
            s <= self.max
        }
    }
}

#[derive(Debug, Clone)]
enum LexBound {
    NegInf,
    PosInf,
    Incl(Vec<u8>),
    Excl(Vec<u8>),
}

#[derive(Debug, Clone)]
struct LexRange {
    min: LexBound,
    max: LexBound,
}

impl LexRange {
    fn parse(min: &[u8], max: &[u8]) -> Result<LexRange, CmdError> {
        let item = |b: &[u8]| -> Option<LexBound> {
            match b.first()? {
                b'+' if b.len() == 1 => Some(LexBound::PosInf),
                b'-' if b.len() == 1 => Some(LexBound::NegInf),
                b'(' => Some(LexBound::Excl(b[1..].to_vec())),
                b'[' => Some(LexBound::Incl(b[1..].to_vec())),
                _ => None,
            }
        };
        let err = || CmdError::Other(NOT_LEX_RANGE.into());
        Ok(LexRange { min: item(min).ok_or_else(err)?, max: item(max).ok_or_else(err)? })
    }

    /// Redis's `zslIsInLexRange` emptiness test: min above max, or equal with an exclusive end.
    fn is_empty(&self) -> bool {
        fn key(b: &LexBound) -> (u8, &[u8]) {
            match b {
                LexBound::NegInf => (0, b""),
                LexBound::Incl(v) | LexBound::Excl(v) => (1, v),
                LexBound::PosInf => (2, b""),
            }
        }
        let excl = matches!(self.min, LexBound::Excl(_)) || matches!(self.max, LexBound::Excl(_));
        match key(&self.min).cmp(&key(&self.max)) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Equal => excl,
            std::cmp::Ordering::Less => false,
        }
    }

    fn below_min(&self, m: &[u8]) -> bool {
        match &self.min {
            LexBound::NegInf => false,
            LexBound::PosInf => true,
            LexBound::Incl(b) => m < &b[..],
            LexBound::Excl(b) => m <= &b[..],
        }
    }

    fn within_max(&self, m: &[u8]) -> bool {
        match &self.max {
            LexBound::NegInf => false,
            LexBound::PosInf => true,
            LexBound::Incl(b) => m <= &b[..],
            LexBound::Excl(b) => m < &b[..],
        }
    }
}

enum Range {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange),
}

/// Forward ranks `[lo, hi)` of the members a score or lex range selects; `rev` walks as
/// Redis's reverse range does (which differs only for lex ranges over mixed scores).
fn bounds(z: &Zset, r: &Range, rev: bool) -> (usize, usize) {
    match r {
        Range::Score(s) => {
            let lo = z.partition_point(|v, _| s.below_min(v));
            (lo, z.partition_point(|v, _| s.within_max(v)).max(lo))
        }
        Range::Lex(l) => lex_bounds(z, l, rev),
        Range::Rank(..) => unreachable!("rank ranges have no bounds"),
    }
}

/// Lex ranges assume equal scores; over mixed scores Redis's answer is whatever its walk
/// finds, so a listpack is walked exactly as `zzlFirstInLexRange`/`zzlLastInLexRange` do:
/// both ends checked first, then a scan from the head (or tail) and a run while in range.
fn lex_bounds(z: &Zset, l: &LexRange, rev: bool) -> (usize, usize) {
    let n = z.len();
    if n == 0 || l.is_empty() {
        return (0, 0);
    }
    let (first, last) = (z.range(0, 1), z.range(n - 1, n));
    if l.below_min(&last[0].0) || !l.within_max(&first[0].0) {
        return (0, 0);
    }
    if !matches!(z, Zset::Listpack(_)) {
        let lo = z.partition_point(|_, m| l.below_min(m));
        return (lo, z.partition_point(|_, m| l.within_max(m)).max(lo));
    }
    let all = z.all();
    if rev {
        let Some(end) = all.iter().rposition(|(m, _)| l.within_max(m)) else { return (0, 0) };
        let run = all[..=end].iter().rev().take_while(|(m, _)| !l.below_min(m)).count();
        (end + 1 - run, end + 1)
    } else {
        let lo = all.iter().position(|(m, _)| !l.below_min(m)).unwrap_or(n);
        (lo, lo + all[lo..].iter().take_while(|(m, _)| l.within_max(m)).count())
    }
}

/// Redis's rank-range sanitizing: forward ranks `[lo, hi)`, or None when empty.
fn rank_window(len: usize, start: i64, end: i64) -> Option<(usize, usize)> {
    let llen = len as i64;
    let start = if start < 0 { (llen + start).max(0) } else { start };
    let end = if end < 0 { llen + end } else { end };
    if start > end || start >= llen {
        return None;
    }
    let end = end.min(llen - 1);
    Some((start as usize, end as usize + 1))
}

/// The members a range selects, in reply order.
fn select(z: &Zset, r: &Range, rev: bool, offset: i64, limit: i64) -> Members {
    if let Range::Rank(start, end) = *r {
        let Some((s, e)) = rank_window(z.len(), start, end) else { return Vec::new() };
        if !rev {
            return z.range(s, e);
        }
        let mut v = z.range(z.len() - e, z.len() - s);
        v.reverse();
        return v;
    }
    let (lo, hi) = bounds(z, r, rev);
    if offset < 0 || (offset as u64) >= (hi - lo) as u64 {
        return Vec::new();
    }
    let avail = hi - lo - offset as usize;
    let n = if limit < 0 { avail } else { avail.min(limit as usize) };
    if rev {
        let end = hi - offset as usize;
        let mut v = z.range(end - n, end);
        v.reverse();
        v
    } else {
        let start = lo + offset as usize;
        z.range(start, start + n)
    }
}

// ---------------------------------------------------------------------------------------
// ZADD, ZINCRBY, ZREM

#[derive(Default, Clone, Copy)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

/// What `zset_add` did with one element (Redis's `ZADD_OUT_*`).
enum AddOut {
    Added(f64),
    Updated(f64),
    /// Processed, score already equal.
    Unchanged(f64),
    Nop,
}

/// Redis's `zsetAdd`.
fn zset_add(z: &mut Zset, member: &[u8], score: f64, f: AddFlags, lim: Limits, seed: u64) -> Result<AddOut, CmdError> {
    match z.score(member) {
        Some(cur) => {
            if f.nx {
                return Ok(AddOut::Nop);
            }
            let score = if f.incr { score + cur } else { score };
            if score.is_nan() {
                return Err(CmdError::Other(NAN_SCORE.into()));
            }
            if (f.lt && score >= cur) || (f.gt && score <= cur) {
                return Ok(AddOut::Nop);
            }
            if score != cur {
                z.update(member, cur, score, lim, seed);
                return Ok(AddOut::Updated(score));
            }
            Ok(AddOut::Unchanged(score))
        }
        None if !f.xx => {
            z.insert(member, score, lim, seed);
            Ok(AddOut::Added(score))
        }
        None => Ok(AddOut::Nop),
    }
}

fn parse_add_flags(a: &[Bytes]) -> (AddFlags, usize) {
    let mut f = AddFlags::default();
    let mut i = 2;
    while i < a.len() {
        let o = &a[i];
        let flag = match o.to_ascii_lowercase().as_slice() {
            b"nx" => &mut f.nx,
            b"xx" => &mut f.xx,
            b"ch" => &mut f.ch,
            b"incr" => &mut f.incr,
            b"gt" => &mut f.gt,
            b"lt" => &mut f.lt,
            _ => break,
        };
        *flag = true;
        i += 1;
    }
    (f, i)
}

/// Redis's `zaddGenericCommand` (ZINCRBY is ZADD INCR with one pair).
fn zadd_generic(ctx: &mut Ctx, a: &[Bytes], f: AddFlags, scoreidx: usize) -> CmdResult {
    let pairs = &a[scoreidx..];
    if pairs.is_empty() || !pairs.len().is_multiple_of(2) {
        return Err(CmdError::Syntax);
    }
    if f.nx && f.xx {
        return Err(CmdError::err("XX and NX options at the same time are not compatible"));
    }
    if (f.nx && (f.gt || f.lt)) || (f.gt && f.lt) {
        return Err(CmdError::err("GT, LT, and/or NX options at the same time are not compatible"));
    }
    if f.incr && pairs.len() > 2 {
        return Err(CmdError::err("INCR option supports a single increment-element pair"));
    }
    let scores = pairs.chunks(2).map(|p| parse_score(&p[0])).collect::<Result<Vec<f64>, _>>()?;
    let (lim, seed) = (limits(ctx), dict_seed(ctx));
    let key = &a[1];
    let (mut added, mut updated, mut processed, mut last) = (0u64, 0u64, 0u64, 0.0);
    let exists = match ctx.lookup_write(key) {
        Some(o) => {
            as_zset(o)?;
            true
        }
        None => false,
    };
    if !exists && !f.xx {
        let obj = RObj::new(Value::Zset(Box::new(Zset::new_listpack())), ctx.new_lru());
        ctx.srv.dbs[ctx.client.db].add(key, obj);
        ctx.srv.signal_key_as_ready(ctx.client.db, key);
    }
    if exists || !f.xx {
        let o = ctx.srv.dbs[ctx.client.db].get_mut(key).expect("just looked up");
        let z = as_zset_mut(o)?;
        let mut result = Ok(());
        for (p, &score) in pairs.chunks(2).zip(&scores) {
            match zset_add(z, &p[1], score, f, lim, seed) {
                Ok(AddOut::Added(s)) => (added, processed, last) = (added + 1, processed + 1, s),
                Ok(AddOut::Updated(s)) => (updated, processed, last) = (updated + 1, processed + 1, s),
                Ok(AddOut::Unchanged(s)) => (processed, last) = (processed + 1, s),
                Ok(AddOut::Nop) => {}
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        ctx.dirty(added + updated);
        if result.is_err() && added + updated > 0 {
            ctx.notify(class::ZSET, if f.incr { "zincr" } else { "zadd" }, key);
        }
        result?;
    }
    let out = ctx.out();
    if f.incr {
        if processed > 0 {
            out.double(last);
        } else {
            out.null();
        }
    } else {
        out.int((if f.ch { added + updated } else { added }) as i64);
    }
    if added + updated > 0 {
        ctx.notify(class::ZSET, if f.incr { "zincr" } else { "zadd" }, key);
    }
    Ok(())
}

fn zadd(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let (f, idx) = parse_add_flags(a);
    zadd_generic(ctx, a, f, idx)
}

fn zincrby(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    zadd_generic(ctx, a, AddFlags { incr: true, ..AddFlags::default() }, 2)
}

fn zrem(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let key = &a[1];
    let Some(o) = ctx.lookup_write(key) else {
        ctx.out().int(0);
        return Ok(());
    };
    let z = as_zset_mut(o)?;
    let mut deleted = 0;
    for m in &a[2..] {
        if z.remove(m) {
            deleted += 1;
            if z.is_empty() {
                break;
            }
        }
    }
    if deleted > 0 {
        ctx.notify(class::ZSET, "zrem", key);
    }
    delete_if_empty(ctx, key);
    ctx.dirty(deleted);
    ctx.out().int(deleted as i64);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Reads of one zset

fn zcard(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let (z, out) = read_zset(ctx, &a[1])?;
    out.int(z.map_or(0, Zset::len) as i64);
    Ok(())
}

fn count_range(ctx: &mut Ctx, key: &[u8], r: Range) -> CmdResult {
    let (z, out) = read_zset(ctx, key)?;
    let n = z.map_or(0, |z| {
        let (lo, hi) = bounds(z, &r, false);
        hi - lo
    });
    out.int(n as i64);
    Ok(())
}

fn zcount(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let r = ScoreRange::parse(&a[2], &a[3])?;
    count_range(ctx, &a[1], Range::Score(r))
}

fn zlexcount(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let r = LexRange::parse(&a[2], &a[3])?;
    count_range(ctx, &a[1], Range::Lex(r))
}

fn zscore(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let (z, out) = read_zset(ctx, &a[1])?;
    match z.and_then(|z| z.score(&a[2])) {
        Some(s) => out.double(s),
        None => out.null(),
    }
    Ok(())
}

fn zmscore(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let (z, out) = read_zset(ctx, &a[1])?;
    out.array(a.len() - 2);
    for m in &a[2..] {
        match z.and_then(|z| z.score(m)) {
            Some(s) => out.double(s),
            None => out.null(),
        }
    }
    Ok(())
}

fn rank_generic(ctx: &mut Ctx, a: &[Bytes], rev: bool) -> CmdResult {
    let (z, out) = read_zset(ctx, &a[1])?;
    match z.and_then(|z| z.rank(&a[2]).map(|r| if rev { z.len() - 1 - r } else { r })) {
        Some(r) => out.int(r as i64),
        None => out.null(),
    }
    Ok(())
}

fn zrank(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    rank_generic(ctx, a, false)
}

fn zrevrank(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    rank_generic(ctx, a, true)
}

// ---------------------------------------------------------------------------------------
// ZRANGE and its family

#[derive(Clone, Copy, PartialEq, Eq)]
enum RangeType {
    Auto,
    Rank,
    Score,
    Lex,
}

/// Redis's `zrangeGenericCommand`: `argc_start` indexes the source key; `store` names the
/// destination (ZRANGESTORE). `rev`/`kind` are fixed by the legacy commands, Auto otherwise.
fn zrange_generic(
    ctx: &mut Ctx,
    a: &[Bytes],
    argc_start: usize,
    store: Option<&[u8]>,
    mut kind: RangeType,
    rev: Option<bool>,
) -> CmdResult {
    let (mut withscores, mut offset, mut limit, mut dir) = (false, 0i64, -1i64, rev);
    let mut j = argc_start + 3;
    while j < a.len() {
        let left = a.len() - j - 1;
        let o = &a[j];
        if store.is_none() && o.eq_ignore_ascii_case(b"withscores") {
            withscores = true;
        } else if o.eq_ignore_ascii_case(b"limit") && left >= 2 {
            offset = int_arg(&a[j + 1])?;
            limit = int_arg(&a[j + 2])?;
            j += 2;
        } else if dir.is_none() && o.eq_ignore_ascii_case(b"rev") {
            dir = Some(true);
        } else if kind == RangeType::Auto && o.eq_ignore_ascii_case(b"bylex") {
            kind = RangeType::Lex;
        } else if kind == RangeType::Auto && o.eq_ignore_ascii_case(b"byscore") {
            kind = RangeType::Score;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let rev = dir.unwrap_or(false);
    if kind == RangeType::Auto {
        kind = RangeType::Rank;
    }
    if limit != -1 && kind == RangeType::Rank {
        return Err(CmdError::err("syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"));
    }
    if withscores && kind == RangeType::Lex {
        return Err(CmdError::err("syntax error, WITHSCORES not supported in combination with BYLEX"));
    }
    let (mut min, mut max) = (&a[argc_start + 1], &a[argc_start + 2]);
    if rev && kind != RangeType::Rank {
        std::mem::swap(&mut min, &mut max);
    }
    let range = match kind {
        RangeType::Score => Range::Score(ScoreRange::parse(min, max)?),
        RangeType::Lex => Range::Lex(LexRange::parse(min, max)?),
        _ => Range::Rank(int_arg(min)?, int_arg(max)?),
    };
    let (z, out) = read_zset(ctx, &a[argc_start])?;
    let items = z.map(|z| select(z, &range, rev, offset, limit)).unwrap_or_default();
    match store {
        None => reply_members(out, &items, withscores),
        Some(dst) => store_sorted(ctx, dst, items, "zrangestore"),
    }
    Ok(())
}

/// Stores members (in any order) at `dst` as a STORE command does, replying with the count.
fn store_sorted(ctx: &mut Ctx, dst: &[u8], mut items: Members, event: &str) {
    items.sort_by(|x, y| key_cmp(x.1, &x.0, y.1, &y.0));
    let n = items.len();
    let (lim, seed) = (limits(ctx), dict_seed(ctx));
    let changed = store(ctx, dst, Zset::from_sorted(&items, lim, seed));
    ctx.out().int(n as i64);
    if changed {
        ctx.dirty(1);
        ctx.notify(if n > 0 { class::ZSET } else { class::GENERIC }, if n > 0 { event } else { "del" }, dst);
    }
}

fn zrange(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    zrange_generic(ctx, a, 1, None, RangeType::Auto, None)
}

fn zrangestore(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    zrange_generic(ctx, a, 2, Some(&a[1]), RangeType::Auto, None)
}

fn zrevrange(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    zrange_generic(ctx, a, 1, None, RangeType::Rank, Some(true))
}

fn zrangebyscore(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    zrange_generic(ctx, a, 1, None, RangeType::Score, Some(false))
}

fn zrevrangebyscore(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    zrange_generic(ctx, a, 1, None, RangeType::Score, Some(true))
}

fn zrangebylex(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    zrange_generic(ctx, a, 1, None, RangeType::Lex, Some(false))
}

fn zrevrangebylex(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    zrange_generic(ctx, a, 1, None, RangeType::Lex, Some(true))
}

/// Redis's `zremrangeGenericCommand`: the range is parsed before the key is looked up.
fn zremrange_generic(ctx: &mut Ctx, a: &[Bytes], range: Range) -> CmdResult {
    let key = &a[1];
    let Some(o) = ctx.lookup_write(key) else {
        ctx.out().int(0);
        return Ok(());
    };
    let z = as_zset_mut(o)?;
    let window = match range {
        Range::Rank(s, e) => rank_window(z.len(), s, e),
        _ => Some(bounds(z, &range, false)),
    };
    let (lo, hi) = window.unwrap_or((0, 0));
    z.remove_range(lo, hi);
    let n = (hi - lo) as u64;
    if n > 0 {
        let event = match range {
            Range::Rank(..) => "zremrangebyrank",
            Range::Score(_) => "zremrangebyscore",
            Range::Lex(_) => "zremrangebylex",
        };
        ctx.notify(class::ZSET, event, key);
    }
    delete_if_empty(ctx, key);
    ctx.dirty(n);
    ctx.out().int(n as i64);
    Ok(())
}

fn zremrangebyrank(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let r = Range::Rank(int_arg(&a[2])?, int_arg(&a[3])?);
    zremrange_generic(ctx, a, r)
}

fn zremrangebyscore(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let r = Range::Score(ScoreRange::parse(&a[2], &a[3])?);
    zremrange_generic(ctx, a, r)
}

fn zremrangebylex(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let r = Range::Lex(LexRange::parse(&a[2], &a[3])?);
    zremrange_generic(ctx, a, r)
}

// ---------------------------------------------------------------------------------------
// ZPOPMIN, ZPOPMAX, ZMPOP

/// Redis's `genericZpopCommand` (non-blocking): pops up to `count` from the first non-empty
/// key. `emit_key` prefixes the key: flat `[key, m, s, ...]` for BZPOPMIN/BZPOPMAX, or with
/// `nested` ZMPOP's `[key, [[m, s]...]]`; null when nothing. Without `emit_key`, `nested`
/// pairs each member with its score in an array.
fn zpop_generic(
    ctx: &mut Ctx,
    keys: &[Bytes],
    max: bool,
    count: i64,
    emit_key: bool,
    nested: bool,
) -> Result<Option<(Bytes, usize)>, CmdError> {
    // The type is checked before the count, as Redis does: `ZPOPMIN set 0` is WRONGTYPE.
    let mut found = None;
    for key in keys {
        if let Some(o) = ctx.lookup_write(key) {
            as_zset(o)?;
            found = Some(key);
            break;
        }
    }
    let Some(key) = found else {
        if emit_key {
            ctx.out().null_array();
        } else {
            ctx.out().array(0);
        }
        return Ok(None);
    };
    if count == 0 {
        ctx.out().array(0);
        return Ok(None);
    }
    let db = ctx.client.db;
    let z = as_zset_mut(ctx.srv.dbs[db].get_mut(key).expect("found above"))?;
    let n = (count.max(1) as u64).min(z.len() as u64) as usize;
    let items = if max {
        let mut v = z.range(z.len() - n, z.len());
        z.remove_range(z.len() - n, z.len());
        v.reverse();
        v
    } else {
        let v = z.range(0, n);
        z.remove_range(0, n);
        v
    };
    ctx.dirty(n as u64);
    let out = ctx.out();
    match (emit_key, nested) {
        (true, true) => {
            out.array(2);
            out.bulk(key);
            out.array(n);
        }
        (true, false) => {
            out.array(2 * n + 1);
            out.bulk(key);
        }
        (false, true) => out.array(n),
        (false, false) => out.array(2 * n),
    }
    // Redis 7.0 emits the event between the reply's headers and its elements.
    ctx.notify(class::ZSET, if max { "zpopmax" } else { "zpopmin" }, key);
    let out = ctx.out();
    for (m, s) in &items {
        if nested {
            out.array(2);
        }
        out.bulk(m);
        out.double(*s);
    }
    delete_if_empty(ctx, key);
    Ok(Some((key.clone(), n)))
}

fn zpop_min_max(ctx: &mut Ctx, a: &[Bytes], max: bool) -> CmdResult {
    if a.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let mut count = -1;
    if a.len() == 3 {
        count = positive_arg(&a[2], 0, "value is out of range, must be positive")?;
    }
    let nested = ctx.client.out.resp > 2 && count != -1;
    zpop_generic(ctx, &a[1..2], max, count, false, nested).map(|_| ())
}

fn zpopmin(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    zpop_min_max(ctx, a, false)
}

fn zpopmax(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    zpop_min_max(ctx, a, true)
}

/// A long in `[min, LONG_MAX]`, else `msg` (Redis's `getRangeLongFromObjectOrReply`).
fn positive_arg(b: &[u8], min: i64, msg: &str) -> Result<i64, CmdError> {
    crate::util::arg_i64(b).filter(|&n| n >= min).ok_or_else(|| CmdError::err(msg))
}

/// ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]; replicated as ZPOPMIN/ZPOPMAX key count.
fn zmpop(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let (keys, max, count) = parse_mpop(a, 1)?;
    if let Some((popped, n)) = zpop_generic(ctx, keys, max, count, true, true)? {
        ctx.propagate_as(zpop_argv(max, popped, Some(n)));
    }
    Ok(())
}

/// `numkeys key [key ...] MIN|MAX [COUNT count]` from `numkeys_idx` on (Redis's
/// `zmpopGenericCommand`): the keys, whether MAX, and the count (1 by default).
fn parse_mpop(a: &[Bytes], numkeys_idx: usize) -> Result<(&[Bytes], bool, i64), CmdError> {
    let numkeys = positive_arg(&a[numkeys_idx], 1, "numkeys should be greater than 0")? as u64;
    let where_idx = (numkeys_idx as u64 + 1).saturating_add(numkeys);
    if where_idx >= a.len() as u64 {
        return Err(CmdError::Syntax);
    }
    let where_idx = where_idx as usize;
    let max = match a[where_idx].to_ascii_lowercase().as_slice() {
        b"min" => false,
        b"max" => true,
        _ => return Err(CmdError::Syntax),
    };
    let mut count = -1;
    let mut j = where_idx + 1;
    while j < a.len() {
        if count == -1 && a[j].eq_ignore_ascii_case(b"count") && j + 1 < a.len() {
            count = positive_arg(&a[j + 1], 1, "count should be greater than 0")?;
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok((&a[numkeys_idx + 1..where_idx], max, count.max(1)))
}

/// How a pop is replicated: `ZPOPMIN|ZPOPMAX key [n]`, where Redis 7.0.15 gives the M forms
/// the number actually popped, not the COUNT asked for.
fn zpop_argv(max: bool, key: Bytes, count: Option<usize>) -> Vec<Bytes> {
    let name: &'static [u8] = if max { b"ZPOPMAX" } else { b"ZPOPMIN" };
    let mut argv = vec![Bytes::from_static(name), key];
    argv.extend(count.map(|n| Bytes::from(n.to_string())));
    argv
}

// ---------------------------------------------------------------------------------------
// BZPOPMIN, BZPOPMAX, BZMPOP

fn bzpopmin(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let deadline = timeout_arg(ctx, &a[a.len() - 1])?;
    blocking_zpop(ctx, &a[1..a.len() - 1], deadline, false, None)
}

fn bzpopmax(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let deadline = timeout_arg(ctx, &a[a.len() - 1])?;
    blocking_zpop(ctx, &a[1..a.len() - 1], deadline, true, None)
}

/// BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]: Redis parses the rest before
/// the timeout, so a syntax error wins over a bad timeout.
fn bzmpop(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let (keys, max, count) = parse_mpop(a, 2)?;
    let deadline = timeout_arg(ctx, &a[1])?;
    blocking_zpop(ctx, keys, deadline, max, Some(count))
}

/// Redis's `blockingGenericZpopCommand`: pops from the first zset among `keys` (propagated
/// as the plain pop), else parks the client.
fn blocking_zpop(ctx: &mut Ctx, keys: &[Bytes], deadline: u64, max: bool, count: Option<i64>) -> CmdResult {
    for key in keys {
        let Some(o) = ctx.lookup_write(key) else { continue };
        as_zset(o)?;
        serve_key(ctx, key, max, count);
        return Ok(());
    }
    block(ctx, keys, deadline, BlockedOp::ZPop { max, count });
    Ok(())
}

/// One blocking pop from the zset at `key` (which exists): BZPOPMIN's flat reply or BZMPOP's
/// nested one, propagated as ZPOPMIN/ZPOPMAX.
fn serve_key(ctx: &mut Ctx, key: &Bytes, max: bool, count: Option<i64>) {
    let keys = std::slice::from_ref(key);
    if let Ok(Some((popped, n))) = zpop_generic(ctx, keys, max, count.unwrap_or(1), true, count.is_some()) {
        ctx.propagate_as(zpop_argv(max, popped, count.map(|_| n)));
    }
}

/// Serves one client blocked on `key`, which holds a zset (Redis's
/// `serveClientsBlockedOnSortedSetKey`). Returns whether it was served.
pub fn serve_blocked(ctx: &mut Ctx, key: &Bytes, op: &BlockedOp) -> bool {
    match *op {
        BlockedOp::ZPop { max, count } => {
            serve_key(ctx, key, max, count);
            true
        }
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------
// ZRANDMEMBER

fn zrandmember(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    if a.len() >= 3 {
        let count = int_arg(&a[2])?;
        if count == i64::MIN {
            return Err(CmdError::err(
                "value is out of range, value must between -9223372036854775807 and 9223372036854775807",
            ));
        }
        if a.len() > 4 || (a.len() == 4 && !a[3].eq_ignore_ascii_case(b"withscores")) {
            return Err(CmdError::Syntax);
        }
        let withscores = a.len() == 4;
        if withscores && !(-i64::MAX / 2..=i64::MAX / 2).contains(&count) {
            return Err(CmdError::err("value is out of range"));
        }
        return zrandmember_count(ctx, &a[1], count, withscores);
    }
    let (z, out) = read_zset(ctx, &a[1])?;
    let Some(len) = z.map(Zset::len) else {
        out.null();
        return Ok(());
    };
    let (z, rng, out) = random_parts(ctx, &a[1]);
    let i = crate::env::Rng::below(rng, len as u64) as usize;
    out.bulk(&z.range(i, i + 1)[0].0);
    Ok(())
}

/// The zset at `key` (already looked up), the rng and the reply buffer, borrowed together.
fn random_parts<'c>(ctx: &'c mut Ctx, key: &[u8]) -> (&'c Zset, &'c mut crate::env::SeededRng, &'c mut ReplyBuf) {
    let srv = &mut *ctx.srv;
    let obj = srv.dbs[ctx.client.db].get(key).expect("looked up by the caller");
    let z = as_zset(obj).expect("type checked by the caller");
    (z, &mut srv.rng, &mut ctx.client.out)
}

fn reply_member(out: &mut ReplyBuf, (m, s): &(Vec<u8>, f64), withscores: bool) {
    if withscores && out.resp > 2 {
        out.array(2);
    }
    out.bulk(m);
    if withscores {
        out.double(*s);
    }
}

/// Redis's `zrandmemberWithCountCommand`: negative counts repeat (streamed: the count may
/// be huge), a count covering the set returns all of it, otherwise distinct random members.
fn zrandmember_count(ctx: &mut Ctx, key: &[u8], count: i64, withscores: bool) -> CmdResult {
    let (z, out) = read_zset(ctx, key)?;
    let Some(len) = z.map(Zset::len) else {
        out.array(0);
        return Ok(());
    };
    if count == 0 {
        out.array(0);
        return Ok(());
    }
    let (z, rng, out) = random_parts(ctx, key);
    if count < 0 || count == 1 {
        let n = count.unsigned_abs();
        if withscores && out.resp == 2 {
            out.array(n as usize * 2);
        } else {
            out.array(n as usize);
        }
        for _ in 0..n {
            let i = crate::env::Rng::below(rng, len as u64) as usize;
            reply_member(out, &z.range(i, i + 1)[0], withscores);
        }
        return Ok(());
    }
    let picked: Members = if count as u64 >= len as u64 {
        // Redis walks the whole set from its tail here (`zuiInitIterator`).
        z.all().into_iter().rev().collect()
    } else {
        let mut idx: Vec<usize> = (0..len).collect();
        for i in 0..count as usize {
            let j = i + crate::env::Rng::below(rng, (len - i) as u64) as usize;
            idx.swap(i, j);
        }
        idx[..count as usize].iter().map(|&i| z.range(i, i + 1).swap_remove(0)).collect()
    };
    reply_members(out, &picked, withscores);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// ZUNION, ZINTER, ZDIFF (+STORE), ZINTERCARD

#[derive(Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

impl Aggregate {
    /// Redis's `zunionInterAggregate`: inf + -inf sums to 0, not NaN.
    fn apply(self, target: &mut f64, val: f64) {
        match self {
            Aggregate::Sum => {
                *target += val;
                if target.is_nan() {
                    *target = 0.0;
                }
            }
            Aggregate::Min => *target = if val < *target { val } else { *target },
            Aggregate::Max => *target = if val > *target { val } else { *target },
        }
    }
}

/// A set-operation input's members: a sorted set's with their scores, or a plain set's with
/// score 1, as Redis's ZUNION/ZINTER/ZDIFF accept both.
fn setop_members(o: &RObj) -> Result<Members, CmdError> {
    match &o.val {
        Value::Set(set) => Ok(set.iter().map(|m| (m.bytes().into_owned(), 1.0)).collect()),
        _ => as_zset(o).map(Zset::all),
    }
}

/// One input of a set operation: its members in order, a lookup table, and its weight.
struct Source {
    items: Members,
    index: HashMap<Vec<u8>, f64>,
    weight: f64,
}

impl Source {
    fn new(items: Members) -> Self {
        let index = items.iter().cloned().collect();
        Source { items, index, weight: 1.0 }
    }
}

struct SetOpArgs {
    op: SetOp,
    aggregate: Aggregate,
    withscores: bool,
    limit: i64,
}

/// Redis's `zunionInterDiffGenericCommand`: keys are looked up before the options parse.
fn setop_generic(
    ctx: &mut Ctx,
    a: &[Bytes],
    dst: Option<&[u8]>,
    numkeys_idx: usize,
    op: SetOp,
    card: bool,
) -> CmdResult {
    let setnum = int_arg(&a[numkeys_idx])?;
    if setnum < 1 {
        let name = ctx.client.last_cmd;
        return Err(CmdError::err(format!("at least 1 input key is needed for '{name}' command")));
    }
    if setnum as u64 > (a.len() - numkeys_idx - 1) as u64 {
        return Err(CmdError::Syntax);
    }
    let setnum = setnum as usize;
    let mut srcs = Vec::with_capacity(setnum);
    for key in &a[numkeys_idx + 1..numkeys_idx + 1 + setnum] {
        let obj = if dst.is_some() { ctx.lookup_write(key).map(|o| &*o) } else { ctx.lookup_read(key) };
        let items = obj.map(setop_members).transpose()?.unwrap_or_default();
        srcs.push(Source::new(items));
    }
    let mut args = SetOpArgs { op, aggregate: Aggregate::Sum, withscores: false, limit: 0 };
    parse_setop_options(&a[numkeys_idx + 1 + setnum..], &mut srcs, &mut args, dst.is_some(), card)?;
    if op != SetOp::Diff {
        srcs.sort_by_key(|s| s.items.len());
    }
    if card {
        let n = inter_card(&srcs, args.limit);
        ctx.out().int(n as i64);
        return Ok(());
    }
    let mut result = match op {
        SetOp::Union => union(&srcs, args.aggregate),
        SetOp::Inter => inter(&srcs, args.aggregate),
        SetOp::Diff => diff(&srcs),
    };
    match dst {
        Some(dst) => {
            let event = match op {
                SetOp::Union => "zunionstore",
                SetOp::Inter => "zinterstore",
                SetOp::Diff => "zdiffstore",
            };
            store_sorted(ctx, dst, result, event)
        }
        None => {
            result.sort_by(|x, y| key_cmp(x.1, &x.0, y.1, &y.0));
            reply_members(ctx.out(), &result, args.withscores);
        }
    }
    Ok(())
}

fn parse_setop_options(
    opts: &[Bytes],
    srcs: &mut [Source],
    args: &mut SetOpArgs,
    store: bool,
    card: bool,
) -> CmdResult {
    let mut j = 0;
    while j < opts.len() {
        let left = opts.len() - j;
        let o = &opts[j];
        let set_op = args.op != SetOp::Diff && !card;
        if set_op && left > srcs.len() && o.eq_ignore_ascii_case(b"weights") {
            for (s, w) in srcs.iter_mut().zip(&opts[j + 1..]) {
                s.weight = parse_score(w).map_err(|_| CmdError::err("weight value is not a float"))?;
            }
            j += 1 + srcs.len();
        } else if set_op && left >= 2 && o.eq_ignore_ascii_case(b"aggregate") {
            args.aggregate = match opts[j + 1].to_ascii_lowercase().as_slice() {
                b"sum" => Aggregate::Sum,
                b"min" => Aggregate::Min,
                b"max" => Aggregate::Max,
                _ => return Err(CmdError::Syntax),
            };
            j += 2;
        } else if !store && !card && o.eq_ignore_ascii_case(b"withscores") {
            args.withscores = true;
            j += 1;
        } else if card && left >= 2 && o.eq_ignore_ascii_case(b"limit") {
            args.limit = positive_arg(&opts[j + 1], 0, "LIMIT can't be negative")?;
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok(())
}

fn weighted(score: f64, weight: f64) -> f64 {
    let s = weight * score;
    if s.is_nan() {
        0.0
    } else {
        s
    }
}

fn union(srcs: &[Source], agg: Aggregate) -> Members {
    let mut acc: HashMap<&[u8], usize> = HashMap::new();
    let mut out: Members = Vec::new();
    for s in srcs {
        for (m, sc) in &s.items {
            let v = weighted(*sc, s.weight);
            match acc.get(&m[..]) {
                Some(&i) => agg.apply(&mut out[i].1, v),
                None => {
                    acc.insert(m, out.len());
                    out.push((m.clone(), v));
                }
            }
        }
    }
    out
}

fn inter(srcs: &[Source], agg: Aggregate) -> Members {
    let (first, rest) = srcs.split_first().expect("at least one source");
    let mut out = Vec::new();
    'members: for (m, sc) in &first.items {
        let mut score = weighted(*sc, first.weight);
        for s in rest {
            match s.index.get(m) {
                Some(v) => agg.apply(&mut score, v * s.weight),
                None => continue 'members,
            }
        }
        out.push((m.clone(), score));
    }
    out
}

fn diff(srcs: &[Source]) -> Members {
    let (first, rest) = srcs.split_first().expect("at least one source");
    first.items.iter().filter(|(m, _)| !rest.iter().any(|s| s.index.contains_key(m))).cloned().collect()
}

fn inter_card(srcs: &[Source], limit: i64) -> usize {
    let (first, rest) = srcs.split_first().expect("at least one source");
    let mut n = 0;
    for (m, _) in &first.items {
        if rest.iter().all(|s| s.index.contains_key(m)) {
            n += 1;
            if limit > 0 && n as i64 >= limit {
                break;
            }
        }
    }
    n
}

fn zunion(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    setop_generic(ctx, a, None, 1, SetOp::Union, false)
}

fn zinter(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    setop_generic(ctx, a, None, 1, SetOp::Inter, false)
}

fn zdiff(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    setop_generic(ctx, a, None, 1, SetOp::Diff, false)
}

fn zunionstore(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    setop_generic(ctx, a, Some(&a[1]), 2, SetOp::Union, false)
}

fn zinterstore(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    setop_generic(ctx, a, Some(&a[1]), 2, SetOp::Inter, false)
}

fn zdiffstore(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    setop_generic(ctx, a, Some(&a[1]), 2, SetOp::Diff, false)
}

fn zintercard(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    setop_generic(ctx, a, None, 1, SetOp::Inter, true)
}

// ---------------------------------------------------------------------------------------
// ZSCAN

fn zscan(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let mut cursor = super::keyspace::parse_scan_cursor(&a[2]).ok_or_else(|| CmdError::err("invalid cursor"))?;
    let (z, out) = read_zset(ctx, &a[1])?;
    let Some(z) = z else {
        out.raw(b"*2\r\n$1\r\n0\r\n*0\r\n");
        return Ok(());
    };
    let (count, pattern) = super::keyspace::parse_key_scan_options(a)?;
    let mut found: Members = Vec::new();
    match z {
        Zset::Listpack(_) => {
            found = z.all();
            cursor = 0;
        }
        Zset::Skiplist(s) => {
            let mut buckets_left = count.saturating_mul(SCAN_BUCKETS_PER_COUNT);
            loop {
                cursor = s.dict.scan(cursor, |m, &sc| found.push((m.to_vec(), sc)));
                // Redis counts member and score as two items against COUNT.
                if cursor == 0 || buckets_left == 0 || 2 * found.len() >= count {
                    break;
                }
                buckets_left -= 1;
            }
        }
    }
    found.retain(|(m, _)| pattern.is_none_or(|p| glob_match(p, m, false)));
    out.array(2);
    out.bulk(itoa::Buffer::new().format(cursor).as_bytes());
    out.array(found.len() * 2);
    for (m, s) in &found {
        out.bulk(m);
        out.bulk(crate::protocol::reply::format_double(*s).as_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{propagating, run, server, take_propagated, words};
    use crate::server::Server;

    #[test]
    fn zmpop_propagates_as_zpopmin_or_zpopmax_with_the_popped_count() {
        let mut srv = propagating();
        run(&mut srv, &["ZADD", "z", "1", "a", "2", "b"]);
        take_propagated(&mut srv);
        run(&mut srv, &["ZMPOP", "2", "none", "z", "MAX", "COUNT", "5"]);
        run(&mut srv, &["ZMPOP", "1", "none", "MIN"]);
        assert_eq!(take_propagated(&mut srv), [words(&["ZPOPMAX", "z", "2"])]);
        assert_eq!(run(&mut srv, &["EXISTS", "z"]), b":0\r\n");
    }

    fn run_as(srv: &mut Server, id: u64, argv: &[&str]) -> Vec<u8> {
        srv.process(id, argv.iter().map(|a| bytes::Bytes::copy_from_slice(a.as_bytes())).collect());
        std::mem::take(&mut srv.clients.get_mut(&id).expect("client").out.buf)
    }

    #[test]
    fn immediate_blocking_pops_propagate_as_plain_pops_with_the_popped_count() {
        let mut srv = propagating();
        run(&mut srv, &["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d"]);
        take_propagated(&mut srv);
        assert_eq!(run(&mut srv, &["BZPOPMIN", "none", "z", "0"]), b"*3\r\n$1\r\nz\r\n$1\r\na\r\n$1\r\n1\r\n");
        run(&mut srv, &["BZPOPMAX", "z", "0"]);
        run(&mut srv, &["BZMPOP", "0", "1", "z", "MIN", "COUNT", "9"]);
        assert_eq!(
            take_propagated(&mut srv),
            [words(&["ZPOPMIN", "z"]), words(&["ZPOPMAX", "z"]), words(&["ZPOPMIN", "z", "2"])]
        );
        assert_eq!(run(&mut srv, &["EXISTS", "z"]), b":0\r\n");
    }

    #[test]
    fn waiters_on_a_zset_are_served_fifo_after_the_write_and_propagated_after_it() {
        let mut srv = propagating();
        let first = srv.add_client("127.0.0.1:2".into(), "127.0.0.1:6379".into());
        let second = srv.add_client("127.0.0.1:3".into(), "127.0.0.1:6379".into());
        let lister = srv.add_client("127.0.0.1:4".into(), "127.0.0.1:6379".into());
        assert_eq!(run_as(&mut srv, first, &["BZPOPMAX", "z", "0"]), b"");
        assert_eq!(run_as(&mut srv, lister, &["BLPOP", "z", "0"]), b"");
        assert_eq!(run_as(&mut srv, second, &["BZMPOP", "0", "1", "z", "MIN", "COUNT", "5"]), b"");
        run(&mut srv, &["ZADD", "z", "1", "a", "2", "b", "3", "c"]);
        assert!(!srv.is_blocked(first) && !srv.is_blocked(second) && srv.is_blocked(lister));
        let out = |srv: &mut Server, id| std::mem::take(&mut srv.clients.get_mut(&id).unwrap().out.buf);
        assert_eq!(out(&mut srv, first), b"*3\r\n$1\r\nz\r\n$1\r\nc\r\n$1\r\n3\r\n");
        assert_eq!(
            out(&mut srv, second),
            b"*2\r\n$1\r\nz\r\n*2\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n"
        );
        assert_eq!(
            take_propagated(&mut srv),
            [
                words(&["ZADD", "z", "1", "a", "2", "b", "3", "c"]),
                words(&["ZPOPMAX", "z"]),
                words(&["ZPOPMIN", "z", "2"])
            ]
        );
    }

    #[test]
    fn writes_that_change_nothing_are_not_propagated() {
        let mut srv = propagating();
        run(&mut srv, &["ZADD", "z", "1", "a"]);
        take_propagated(&mut srv);
        assert_eq!(run(&mut srv, &["ZADD", "z", "NX", "5", "a"]), b":0\r\n");
        assert_eq!(run(&mut srv, &["ZADD", "z", "1", "a"]), b":0\r\n");
        assert_eq!(run(&mut srv, &["ZREM", "z", "x"]), b":0\r\n");
        assert_eq!(run(&mut srv, &["ZRANGESTORE", "d", "z", "5", "9"]), b":0\r\n");
        assert_eq!(run(&mut srv, &["ZREMRANGEBYSCORE", "z", "5", "9"]), b":0\r\n");
        assert!(take_propagated(&mut srv).is_empty());
        run(&mut srv, &["ZINCRBY", "z", "1", "a"]);
        assert_eq!(take_propagated(&mut srv), [words(&["ZINCRBY", "z", "1", "a"])]);
    }

    #[test]
    fn a_store_with_an_empty_result_deletes_the_destination() {
        let mut srv = propagating();
        run(&mut srv, &["ZADD", "z", "1", "a"]);
        run(&mut srv, &["SET", "d", "v"]);
        take_propagated(&mut srv);
        assert_eq!(run(&mut srv, &["ZINTERSTORE", "d", "2", "z", "none"]), b":0\r\n");
        assert_eq!(run(&mut srv, &["EXISTS", "d"]), b":0\r\n");
        assert_eq!(take_propagated(&mut srv), [words(&["ZINTERSTORE", "d", "2", "z", "none"])]);
    }

    #[test]
    fn skiplist_sets_answer_rank_and_ranges_like_listpacks() {
        let mut srv = server();
        let mut argv = vec!["ZADD".to_string(), "z".to_string()];
        for i in 0..500 {
            argv.push((i % 50).to_string());
            argv.push(format!("m{i:03}"));
        }
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        run(&mut srv, &argv);
        assert_eq!(run(&mut srv, &["OBJECT", "ENCODING", "z"]), b"$8\r\nskiplist\r\n");
        // Score 0 holds m000, m050, ..., m450: m050 is second.
        assert_eq!(run(&mut srv, &["ZRANK", "z", "m050"]), b":1\r\n");
        assert_eq!(run(&mut srv, &["ZREVRANK", "z", "m000"]), b":499\r\n");
        assert_eq!(run(&mut srv, &["ZCOUNT", "z", "(0", "1"]), b":10\r\n");
        assert_eq!(run(&mut srv, &["ZRANGE", "z", "10", "11"]), b"*2\r\n$4\r\nm001\r\n$4\r\nm051\r\n");
        assert_eq!(run(&mut srv, &["ZREMRANGEBYRANK", "z", "0", "249"]), b":250\r\n");
        assert_eq!(run(&mut srv, &["ZRANK", "z", "m025"]), b":0\r\n");
        assert_eq!(run(&mut srv, &["ZSCORE", "z", "m000"]), b"$-1\r\n");
    }

    #[test]
    fn zscan_of_a_skiplist_visits_every_member_exactly_once_over_its_cursor() {
        let mut srv = server();
        let mut argv = vec!["ZADD".to_string(), "z".to_string()];
        for i in 0..300 {
            argv.push(i.to_string());
            argv.push(format!("m{i}"));
        }
        run(&mut srv, &argv.iter().map(String::as_str).collect::<Vec<_>>());
        let (mut cursor, mut seen) = ("0".to_string(), Vec::new());
        loop {
            let reply = String::from_utf8(run(&mut srv, &["ZSCAN", "z", &cursor, "COUNT", "20"])).expect("utf8");
            let lines: Vec<&str> = reply.split("\r\n").collect();
            cursor = lines[2].to_string();
            let items: Vec<&str> = lines[4..].iter().skip(1).step_by(2).copied().collect();
            seen.extend(items.chunks(2).filter(|p| p.len() == 2).map(|p| (p[0].to_string(), p[1].to_string())));
            if cursor == "0" {
                break;
            }
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 300);
        assert!(seen.iter().all(|(m, s)| m[1..] == *s));
    }
}

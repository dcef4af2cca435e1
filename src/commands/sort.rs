//! SORT and SORT_RO (Redis's `sort.c`, `sortCommandGeneric`): lists, sets and sorted sets,
//! numeric or ALPHA, BY and GET patterns with `*` and `->field`, LIMIT, STORE into a list.

use std::cmp::Ordering;

use bytes::Bytes;

use super::{int_arg, CmdError, CmdResult, Ctx, Handler};
use crate::engine::list::List;
use crate::engine::object::{RObj, Value};
use crate::engine::zset::Zset;
use crate::server::notify::class;

pub static COMMANDS: &[(&str, Handler)] = &[("sort", sort), ("sort_ro", sort_ro)];

const SCORES_ERR: &str = "ERR One or more scores can't be converted into double";

fn sort(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    sort_generic(ctx, a, false)
}

fn sort_ro(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    sort_generic(ctx, a, true)
}

/// The native key extractors used where key specs fall short: `sortGetKeys`, `sortROGetKeys`
/// and `migrateGetKeys`.
pub fn native_get_keys(name: &str, argv: &[Bytes]) -> Option<Vec<(usize, u64)>> {
    use super::meta::key_flag;
    match name {
        "sortGetKeys" => Some(sort_get_keys(argv)),
        "migrateGetKeys" => Some(super::migrate::get_keys(argv)),
        "sortROGetKeys" => Some(vec![(1, key_flag::RO | key_flag::ACCESS)]),
        _ => None,
    }
}

/// Redis's `sortGetKeys` (the STORE spec is incomplete): the sorted key, and the last
/// STORE target, skipping the arguments of LIMIT, GET and BY as Redis does.
fn sort_get_keys(argv: &[Bytes]) -> Vec<(usize, u64)> {
    use super::meta::key_flag;
    let mut keys = vec![(1, key_flag::RO | key_flag::ACCESS)];
    let mut store = None;
    let mut i = 2;
    while i < argv.len() {
        let opt = argv[i].to_ascii_lowercase();
        match opt.as_slice() {
            b"limit" => i += 2,
            b"get" | b"by" => i += 1,
            b"store" if i + 1 < argv.len() => store = Some(i + 1),
            _ => {}
        }
        i += 1;
    }
    keys.extend(store.map(|pos| (pos, key_flag::OW | key_flag::UPDATE)));
    keys
}

#[derive(Default)]
struct Opts {
    desc: bool,
    alpha: bool,
    limit_start: i64,
    limit_count: i64,
    store: Option<Bytes>,
    by: Option<Bytes>,
    /// BY a pattern without `*`: keep the native order.
    dontsort: bool,
    gets: Vec<Bytes>,
}

fn parse_opts(a: &[Bytes], readonly: bool) -> Result<Opts, CmdError> {
    let mut o = Opts { limit_count: -1, ..Opts::default() };
    let mut j = 2;
    while j < a.len() {
        let left = a.len() - j - 1;
        let opt = a[j].to_ascii_lowercase();
        match opt.as_slice() {
            b"asc" => o.desc = false,
            b"desc" => o.desc = true,
            b"alpha" => o.alpha = true,
            b"limit" if left >= 2 => {
                o.limit_start = int_arg(&a[j + 1])?;
                o.limit_count = int_arg(&a[j + 2])?;
                j += 2;
            }
            b"store" if left >= 1 && !readonly => {
                o.store = Some(a[j + 1].clone());
                j += 1;
            }
            b"by" if left >= 1 => {
                o.by = Some(a[j + 1].clone());
                // strchr: a '*' after a NUL byte does not count.
                o.dontsort = !cstr(&a[j + 1]).contains(&b'*');
                j += 1;
            }
            b"get" if left >= 1 => {
                o.gets.push(a[j + 1].clone());
                j += 1;
            }
            _ => return Err(CmdError::Syntax),
        }
        j += 1;
    }
    Ok(o)
}

/// The bytes a C string function sees: up to the first NUL.
fn cstr(b: &[u8]) -> &[u8] {
    &b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())]
}

/// One element to sort with what it sorts by (Redis's `redisSortObject`).
struct Item {
    obj: Vec<u8>,
    score: f64,
    cmpobj: Option<Vec<u8>>,
}

impl Item {
    fn new(obj: Vec<u8>) -> Self {
        Item { obj, score: 0.0, cmpobj: None }
    }
}

/// How `sortCompare` orders two items.
#[derive(Clone, Copy)]
struct Rules {
    desc: bool,
    alpha: bool,
    by_pattern: bool,
    /// With STORE, ALPHA compares binary-safely instead of with strcoll.
    store: bool,
}

/// strcoll under the C/C.UTF-8 collation: byte order of the C strings.
fn collate(a: &[u8], b: &[u8]) -> Ordering {
    cstr(a).cmp(cstr(b))
}

fn sort_compare(r: Rules, a: &Item, b: &Item) -> Ordering {
    let cmp = if !r.alpha {
        // Equal scores fall back to the elements so the result is deterministic.
        a.score.partial_cmp(&b.score).unwrap_or(Ordering::Equal).then_with(|| a.obj.cmp(&b.obj))
    } else if r.by_pattern {
        match (&a.cmpobj, &b.cmpobj) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) if r.store => x.cmp(y),
            (Some(x), Some(y)) => collate(x, y),
        }
    } else if r.store {
        a.obj.cmp(&b.obj)
    } else {
        collate(&a.obj, &b.obj)
    };
    if r.desc {
        cmp.reverse()
    } else {
        cmp
    }
}

/// Redis's `lookupKeyByPattern`: `#` is the element itself; otherwise the first `*` is
/// replaced by it and the key read as a string, or with `->field` as a hash field.
fn lookup_by_pattern(ctx: &mut Ctx, pattern: &[u8], subst: &[u8]) -> Option<Vec<u8>> {
    let spat = cstr(pattern);
    if spat == b"#" {
        return Some(subst.to_vec());
    }
    let p = spat.iter().position(|&c| c == b'*')?;
    let field = spat[p + 1..]
        .windows(2)
        .position(|w| w == b"->")
        .map(|i| p + 1 + i)
        .filter(|&f| f + 2 < spat.len())
        .map(|f| &pattern[f + 2..]);
    let postfix_end = pattern.len() - field.map_or(0, |f| f.len() + 2);
    let mut key = Vec::with_capacity(pattern.len() + subst.len());
    key.extend_from_slice(&pattern[..p]);
    key.extend_from_slice(subst);
    key.extend_from_slice(&pattern[p + 1..postfix_end]);
    let o = ctx.lookup_read(&key)?;
    match (&o.val, field) {
        (Value::Str(s), None) => Some(s.bytes().into_owned()),
        (Value::Hash(h), Some(f)) => h.get(f).map(<[u8]>::to_vec),
        _ => None,
    }
}

/// `strtod` as SORT uses it: the whole C string must convert, without ERANGE or NaN.
fn sort_score(b: &[u8]) -> Option<f64> {
    let b = cstr(b);
    if b.is_empty() {
        return Some(0.0);
    }
    let start = b.iter().position(|c| !c.is_ascii_whitespace() && *c != 0x0b)?;
    match super::zset::c_strtod(&b[start..]) {
        Some((v, false)) if !v.is_nan() => Some(v),
        _ => None,
    }
}

/// LIMIT turned into an inclusive window `start..=end` over `len` elements.
fn limit_window(o: &Opts, len: i64) -> (i64, i64) {
    let mut start = o.limit_start.max(0);
    let mut end = if o.limit_count < 0 { len - 1 } else { start.saturating_add(o.limit_count) - 1 };
    if start >= len {
        start = len - 1;
        end = len - 2;
    }
    if end >= len {
        end = len - 1;
    }
    (start, end)
}

fn sort_generic(ctx: &mut Ctx, a: &[Bytes], readonly: bool) -> CmdResult {
    let mut o = parse_opts(a, readonly)?;
    let db = ctx.client.db;
    let kind = match ctx.lookup_read(&a[1]).map(|obj| &obj.val) {
        None => None,
        Some(Value::List(_)) => Some(Kind::List),
        Some(Value::Set(_)) => Some(Kind::Set),
        Some(Value::Zset(_)) => Some(Kind::Zset),
        Some(_) => return Err(CmdError::WrongType),
    };
    // A set has no order of its own: a stored result is sorted so replicas agree.
    if o.dontsort && kind == Some(Kind::Set) && o.store.is_some() {
        o.dontsort = false;
        o.alpha = true;
        o.by = None;
    }
    // Redis converts a listpack zset for good, even when the sort then fails.
    let listpack_zset = |o: &RObj| matches!(&o.val, Value::Zset(z) if matches!(**z, Zset::Listpack(_)));
    if kind == Some(Kind::Zset) && ctx.srv.dbs[db].get(&a[1]).is_some_and(listpack_zset) {
        let seed = crate::env::Rng::next_u64(&mut ctx.srv.rng);
        if let Some(RObj { val: Value::Zset(z), .. }) = ctx.srv.dbs[db].get_mut(&a[1]) {
            z.convert_to_skiplist(seed);
        }
    }
    let obj = kind.and_then(|_| ctx.srv.dbs[db].get(&a[1]));
    let len = obj.map_or(0, |obj| value_len(&obj.val)) as i64;
    let (mut start, mut end) = limit_window(&o, len);
    let mut items = match obj.map(|obj| &obj.val) {
        Some(Value::List(l)) if o.dontsort => {
            let v = list_window(l, start, end, o.desc);
            (start, end) = (0, end - start);
            v
        }
        Some(Value::Zset(z)) if o.dontsort => {
            let v = zset_window(z, start, end, o.desc);
            (start, end) = (0, end - start);
            v
        }
        Some(Value::List(l)) => l.iter().map(|e| Item::new(e.to_vec())).collect(),
        Some(Value::Set(s)) => s.iter().map(|m| Item::new(m.bytes().into_owned())).collect(),
        Some(Value::Zset(z)) => z.all().into_iter().map(|(m, _)| Item::new(m)).collect(),
        _ => Vec::new(),
    };
    if !o.dontsort {
        if !load_scores(ctx, &o, &mut items) {
            return Err(CmdError::Other(SCORES_ERR.into()));
        }
        let rules = Rules { desc: o.desc, alpha: o.alpha, by_pattern: o.by.is_some(), store: o.store.is_some() };
        let cmp = |x: &Item, y: &Item| sort_compare(rules, x, y);
        // glibc's qsort is a stable merge sort; BY with a LIMIT uses Redis's pqsort, whose
        // order of ties differs.
        if o.by.is_some() && (start != 0 || end != items.len() as i64 - 1) && end >= start {
            pqsort(&mut items, &cmp, start as usize, end as usize);
        } else {
            items.sort_by(cmp);
        }
    }
    let window = if end >= start { &items[start as usize..=end as usize] } else { &[][..] };
    match o.store.take() {
        None => reply_items(ctx, &o, window),
        Some(dst) => store_items(ctx, &o, window, &dst),
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    List,
    Set,
    Zset,
}

fn value_len(v: &Value) -> usize {
    match v {
        Value::List(l) => l.len(),
        Value::Set(s) => s.len(),
        Value::Zset(z) => z.len(),
        _ => 0,
    }
}

/// The LIMIT window of a list in its own order (reversed by DESC).
fn list_window(l: &List, start: i64, end: i64, desc: bool) -> Vec<Item> {
    if end < start {
        return Vec::new();
    }
    let (start, n) = (start as usize, (end - start + 1) as usize);
    let take = |e: &[u8]| Item::new(e.to_vec());
    if desc {
        l.iter().rev().skip(start).take(n).map(take).collect()
    } else {
        l.range(start, n).map(take).collect()
    }
}

/// The LIMIT window of a sorted set in score order (reversed by DESC).
fn zset_window(z: &Zset, start: i64, end: i64, desc: bool) -> Vec<Item> {
    if end < start {
        return Vec::new();
    }
    let (n, len) = ((end - start + 1) as usize, z.len());
    let first = if desc { len - start as usize - n } else { start as usize };
    let mut v: Vec<Item> = z.range(first, first + n).into_iter().map(|(m, _)| Item::new(m)).collect();
    if desc {
        v.reverse();
    }
    v
}

/// Fills in what each item sorts by; false when a numeric sort meets a non-number.
fn load_scores(ctx: &mut Ctx, o: &Opts, items: &mut [Item]) -> bool {
    let mut ok = true;
    for it in items.iter_mut() {
        let byval = match &o.by {
            Some(p) => match lookup_by_pattern(ctx, p, &it.obj) {
                Some(v) => v,
                None => continue,
            },
            None => it.obj.clone(),
        };
        if o.alpha {
            if o.by.is_some() {
                it.cmpobj = Some(byval);
            }
        } else {
            match sort_score(&byval) {
                Some(s) => it.score = s,
                None => ok = false,
            }
        }
    }
    ok
}

fn reply_items(ctx: &mut Ctx, o: &Opts, window: &[Item]) {
    let per = o.gets.len().max(1);
    ctx.out().array(window.len() * per);
    for it in window {
        if o.gets.is_empty() {
            ctx.out().bulk(&it.obj);
        }
        for g in &o.gets {
            match lookup_by_pattern(ctx, g, &it.obj) {
                Some(v) => ctx.out().bulk(&v),
                None => ctx.out().null(),
            }
        }
    }
}

/// STORE: the result becomes a list; an empty one deletes the destination.
fn store_items(ctx: &mut Ctx, o: &Opts, window: &[Item], dst: &[u8]) {
    let fill = ctx.srv.config.hot.list_max_listpack_size.clamp(i32::MIN as i64, i32::MAX as i64) as i32;
    let mut list = List::new(fill);
    for it in window {
        if o.gets.is_empty() {
            list.push_back(&it.obj);
        }
        for g in &o.gets {
            list.push_back(&lookup_by_pattern(ctx, g, &it.obj).unwrap_or_default());
        }
    }
    let db = ctx.client.db;
    let n = list.len();
    if n > 0 {
        let obj = RObj::new(Value::List(Box::new(list)), ctx.new_lru());
        ctx.srv.dbs[db].set(dst, obj, false);
        ctx.srv.signal_key_as_ready(db, dst);
        ctx.dirty(n as u64);
        ctx.notify(class::LIST, "sortstore", dst);
    } else if ctx.srv.dbs[db].delete(dst).is_some() {
        ctx.dirty(1);
        ctx.notify(class::GENERIC, "del", dst);
    }
    ctx.out().int(n as i64);
}

/// Redis's `pqsort` (NetBSD's qsort that only recurses into parts overlapping
/// `lrange..=rrange`), ported step for step so ties come out in the same order.
fn pqsort<T>(v: &mut [T], cmp: &impl Fn(&T, &T) -> Ordering, lrange: usize, rrange: usize) {
    pqsort_part(v, cmp, 0, v.len(), (lrange, rrange));
}

/// `_pqsort` on the `n` elements from `a`.
fn pqsort_part<T>(v: &mut [T], cmp: &impl Fn(&T, &T) -> Ordering, mut a: usize, mut n: usize, range: (usize, usize)) {
    let (lrange, rrange) = range;
    loop {
        if n < 7 {
            for pm in a + 1..a + n {
                let mut pl = pm;
                while pl > a && cmp(&v[pl - 1], &v[pl]) == Ordering::Greater {
                    v.swap(pl, pl - 1);
                    pl -= 1;
                }
            }
            return;
        }
        let mut pm = a + n / 2;
        if n > 7 {
            let (mut pl, mut pn) = (a, a + n - 1);
            if n > 40 {
                let d = n / 8;
                pl = med3(v, cmp, pl, pl + d, pl + 2 * d);
                pm = med3(v, cmp, pm - d, pm, pm + d);
                pn = med3(v, cmp, pn - 2 * d, pn - d, pn);
            }
            pm = med3(v, cmp, pl, pm, pn);
        }
        v.swap(a, pm);
        let (mut pa, mut pb) = (a + 1, a + 1);
        let (mut pc, mut pd) = (a + n - 1, a + n - 1);
        loop {
            while pb <= pc {
                let c = cmp(&v[pb], &v[a]);
                if c == Ordering::Greater {
                    break;
                }
                if c == Ordering::Equal {
                    v.swap(pa, pb);
                    pa += 1;
                }
                pb += 1;
            }
            while pb <= pc {
                let c = cmp(&v[pc], &v[a]);
                if c == Ordering::Less {
                    break;
                }
                if c == Ordering::Equal {
                    v.swap(pc, pd);
                    pd -= 1;
                }
                pc -= 1;
            }
            if pb > pc {
                break;
            }
            v.swap(pb, pc);
            pb += 1;
            pc -= 1;
        }
        let pn = a + n;
        let r = (pa - a).min(pb - pa);
        vecswap(v, a, pb - r, r);
        let r = (pd - pc).min(pn - pd - 1);
        vecswap(v, pb, pn - r, r);
        let overlaps = |first: usize, count: usize| {
            let last = first + count - 1;
            !((lrange < first && rrange < first) || (lrange > last && rrange > last))
        };
        let r = pb - pa;
        if r > 1 && overlaps(a, r) {
            pqsort_part(v, cmp, a, r, range);
        }
        let r = pd - pc;
        if r > 1 && overlaps(pn - r, r) {
            (a, n) = (pn - r, r);
            continue;
        }
        return;
    }
}

fn med3<T>(v: &[T], cmp: &impl Fn(&T, &T) -> Ordering, a: usize, b: usize, c: usize) -> usize {
    use Ordering::{Greater, Less};
    if cmp(&v[a], &v[b]) == Less {
        if cmp(&v[b], &v[c]) == Less {
            b
        } else if cmp(&v[a], &v[c]) == Less {
            c
        } else {
            a
        }
    } else if cmp(&v[b], &v[c]) == Greater {
        b
    } else if cmp(&v[a], &v[c]) == Less {
        a
    } else {
        c
    }
}

/// Swaps the `n` elements from `a` pairwise with the `n` from `b`, in order.
fn vecswap<T>(v: &mut [T], a: usize, b: usize, n: usize) {
    for i in 0..n {
        v.swap(a + i, b + i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::testing::{run, server, take_propagated};

    fn item(obj: &str, score: f64, cmp: Option<&str>) -> Item {
        Item { obj: obj.into(), score, cmpobj: cmp.map(Into::into) }
    }

    const NUMERIC: Rules = Rules { desc: false, alpha: false, by_pattern: false, store: false };

    #[test]
    fn numeric_ties_fall_back_to_element_bytes() {
        let (a, b) = (item("01", 1.0, None), item("1", 1.0, None));
        assert_eq!(sort_compare(NUMERIC, &a, &b), Ordering::Less);
        assert_eq!(sort_compare(Rules { desc: true, ..NUMERIC }, &a, &b), Ordering::Greater);
        assert_eq!(sort_compare(NUMERIC, &item("z", -1.0, None), &a), Ordering::Less);
    }

    #[test]
    fn alpha_collates_c_strings_unless_storing() {
        let alpha = Rules { alpha: true, ..NUMERIC };
        let (a, b) = (item("a\0c", 0.0, None), item("a\0b", 0.0, None));
        assert_eq!(sort_compare(alpha, &a, &b), Ordering::Equal);
        assert_eq!(sort_compare(Rules { store: true, ..alpha }, &a, &b), Ordering::Greater);
        assert_eq!(sort_compare(alpha, &item("B", 0.0, None), &item("a", 0.0, None)), Ordering::Less);
    }

    #[test]
    fn alpha_by_pattern_puts_missing_values_first() {
        let by = Rules { alpha: true, by_pattern: true, ..NUMERIC };
        let (none, some) = (item("z", 0.0, None), item("a", 0.0, Some("x")));
        assert_eq!(sort_compare(by, &none, &some), Ordering::Less);
        assert_eq!(sort_compare(by, &none, &item("b", 0.0, None)), Ordering::Equal);
        assert_eq!(sort_compare(Rules { desc: true, ..by }, &none, &some), Ordering::Greater);
    }

    #[test]
    fn scores_follow_strtod_over_the_c_string() {
        assert_eq!(sort_score(b""), Some(0.0));
        assert_eq!(sort_score(b" 3"), Some(3.0));
        assert_eq!(sort_score(b"5\0abc"), Some(5.0));
        assert_eq!(sort_score(b"0x10"), Some(16.0));
        assert_eq!(sort_score(b"-inf"), Some(f64::NEG_INFINITY));
        for bad in [&b"3 "[..], b" ", b"nan", b"1e400", b"abc"] {
            assert_eq!(sort_score(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn limit_window_clamps_like_redis() {
        let o = |start, count| Opts { limit_start: start, limit_count: count, ..Opts::default() };
        assert_eq!(limit_window(&o(0, -1), 5), (0, 4));
        assert_eq!(limit_window(&o(-3, 2), 5), (0, 1));
        assert_eq!(limit_window(&o(3, 100), 5), (3, 4));
        assert_eq!(limit_window(&o(5, 1), 5), (4, 3));
        assert_eq!(limit_window(&o(1, i64::MAX), 5), (1, 4));
        assert_eq!(limit_window(&o(0, -1), 0), (-1, -2));
    }

    #[test]
    fn patterns_substitute_the_first_star_and_read_hash_fields() {
        let mut srv = server();
        run(&mut srv, &["MSET", "w_a", "1", "w_a*x", "2"]);
        run(&mut srv, &["HSET", "h_a", "f", "v", "f->g", "w"]);
        run(&mut srv, &["RPUSH", "l", "a"]);
        assert_eq!(
            run(&mut srv, &["SORT", "l", "ALPHA", "GET", "#", "GET", "w_*", "GET", "w_**x"]),
            b"*3\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\n2\r\n"
        );
        assert_eq!(
            run(&mut srv, &["SORT", "l", "ALPHA", "GET", "h_*->f", "GET", "h_*->f->g", "GET", "h_*->"]),
            b"*3\r\n$1\r\nv\r\n$1\r\nw\r\n$-1\r\n"
        );
        assert_eq!(
            run(&mut srv, &["SORT", "l", "ALPHA", "GET", "w_*->f", "GET", "h_*", "GET", "w_a"]),
            b"*3\r\n$-1\r\n$-1\r\n$-1\r\n"
        );
    }

    #[test]
    fn store_propagates_as_sent_and_an_empty_result_deletes() {
        let mut srv = server();
        srv.propagate_enabled = true;
        run(&mut srv, &["RPUSH", "l", "2", "1"]);
        run(&mut srv, &["SET", "dst", "x"]);
        take_propagated(&mut srv);
        assert_eq!(run(&mut srv, &["SORT", "l", "STORE", "dst"]), b":2\r\n");
        assert_eq!(run(&mut srv, &["LRANGE", "dst", "0", "-1"]), b"*2\r\n$1\r\n1\r\n$1\r\n2\r\n");
        assert_eq!(run(&mut srv, &["SORT", "nokey", "STORE", "dst"]), b":0\r\n");
        assert_eq!(run(&mut srv, &["SORT", "nokey", "STORE", "dst"]), b":0\r\n");
        assert_eq!(run(&mut srv, &["EXISTS", "dst"]), b":0\r\n");
        assert_eq!(run(&mut srv, &["SORT", "l"]), b"*2\r\n$1\r\n1\r\n$1\r\n2\r\n");
        assert_eq!(
            take_propagated(&mut srv),
            vec![vec!["SORT", "l", "STORE", "dst"], vec!["SORT", "nokey", "STORE", "dst"]]
        );
    }

    #[test]
    fn pqsort_orders_the_requested_window() {
        let mut seed = 7u64;
        for len in [0usize, 1, 6, 7, 8, 40, 41, 100, 300] {
            let v: Vec<u64> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    (seed >> 33) % 50
                })
                .collect();
            let mut sorted = v.clone();
            sorted.sort();
            for (l, r) in
                [(0, len.saturating_sub(1)), (len / 3, len / 2), (len.saturating_sub(1), len.saturating_sub(1))]
            {
                let mut got = v.clone();
                pqsort(&mut got, &|a: &u64, b: &u64| a.cmp(b), l, r);
                if len > 0 {
                    assert_eq!(got[l..=r], sorted[l..=r], "len {len} window {l}..={r}");
                }
            }
        }
    }

    #[test]
    fn pattern_lookups_count_keyspace_hits_and_misses_like_redis() {
        let mut srv = server();
        run(&mut srv, &["RPUSH", "l", "1", "2"]);
        run(&mut srv, &["SET", "w_1", "1"]);
        let (hits, misses) = (srv.stats.keyspace_hits, srv.stats.keyspace_misses);
        run(&mut srv, &["SORT", "l", "BY", "w_*", "GET", "h_*->f", "GET", "#"]);
        assert_eq!((srv.stats.keyspace_hits - hits, srv.stats.keyspace_misses - misses), (2, 3));
    }

    #[test]
    fn sort_ro_refuses_store() {
        let mut srv = server();
        assert_eq!(run(&mut srv, &["SORT_RO", "l", "STORE", "d"]), b"-ERR syntax error\r\n");
    }
}

//! Sorted set values (Redis's `t_zset.c` data side), in Redis's two encodings:
//! - `listpack`: member/score pairs in one `Listpack`, sorted by (score, member), while the set
//!   has at most `zset-max-listpack-entries` members of at most `zset-max-listpack-value` bytes.
//!   Scores are binary: integral scores that fit take 1, 2 or 4 bytes (as Redis's listpack
//!   integer encodings make small integer scores cheap), others the 8 bytes of the f64; the
//!   entry length says which, and no float parsing sits on the read path.
//! - `skiplist`: a `Dict` member → score for O(1) ZSCORE, plus an ordered index by
//!   (score, member).
//!
//! The ordered index is a chunked sorted vector (`Ordered`), not a pointer skiplist: entries sit
//! in sorted chunks of at most `CHUNK_MAX`, so an element costs its 32-byte entry and no
//! per-node links or levels (a Redis skiplist node averages ~1.33 levels of 16 bytes plus a
//! backward pointer and span). A Fenwick tree over the chunk lengths gives rank ↔ position in
//! O(log n): lookup and insert are a binary search over chunk tails then within a chunk
//! (O(log n + CHUNK_MAX) moves of contiguous memory), rank and "entry at rank" are a Fenwick
//! prefix sum and descent. Splitting a chunk or dropping an empty one rebuilds the Fenwick
//! tree, O(n / CHUNK_MAX), once per ~CHUNK_MAX/2 inserts.

use std::cmp::Ordering;

use super::dict::Dict;
use super::listpack::Listpack;
use super::sds::SmallBytes;

/// Largest chunk before it splits in two.
const CHUNK_MAX: usize = 256;

/// Compares two (score, member) keys as Redis's skiplist does: by score, then by bytes.
pub fn key_cmp(a_score: f64, a_member: &[u8], b_score: f64, b_member: &[u8]) -> Ordering {
    match a_score.partial_cmp(&b_score) {
        Some(Ordering::Equal) | None => a_member.cmp(b_member),
        Some(o) => o,
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub score: f64,
    pub member: SmallBytes,
}

impl Entry {
    fn cmp_key(&self, score: f64, member: &[u8]) -> Ordering {
        key_cmp(self.score, &self.member, score, member)
    }
}

/// Entries ordered by (score, member), with rank access (see the module comment for why).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ordered {
    chunks: Vec<Vec<Entry>>,
    /// Fenwick tree of `chunks[i].len()` (1-based internally: `fenwick[i]` covers
    /// `chunks[i + 1 - lowbit(i + 1)..=i]`).
    fenwick: Vec<usize>,
    len: usize,
}

impl Ordered {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of leading entries for which `pred` holds; `pred` must hold for a prefix.
    pub fn partition_point(&self, pred: impl Fn(&Entry) -> bool) -> usize {
        let ci = self.chunks.partition_point(|c| pred(c.last().expect("chunks are never empty")));
        self.prefix(ci) + self.chunks.get(ci).map_or(0, |c| c.partition_point(&pred))
    }

    /// Entries in `chunks[..ci]`.
    fn prefix(&self, ci: usize) -> usize {
        let (mut i, mut sum) = (ci, 0);
        while i > 0 {
            sum += self.fenwick[i - 1];
            i &= i - 1;
        }
        sum
    }

    fn fenwick_add(&mut self, ci: usize, delta: isize) {
        let mut i = ci + 1;
        while i <= self.fenwick.len() {
            self.fenwick[i - 1] = self.fenwick[i - 1].wrapping_add_signed(delta);
            i += i & i.wrapping_neg();
        }
    }

    /// Rebuilds the Fenwick tree after chunks were added or removed.
    fn fenwick_rebuild(&mut self) {
        let n = self.chunks.len();
        self.fenwick.clear();
        self.fenwick.extend(self.chunks.iter().map(Vec::len));
        for i in 1..=n {
            let parent = i + (i & i.wrapping_neg());
            if parent <= n {
                self.fenwick[parent - 1] += self.fenwick[i - 1];
            }
        }
        debug_assert_eq!(self.prefix(n), self.len);
    }

    /// (chunk, offset) of the first entry not less than the key.
    fn seek(&self, score: f64, member: &[u8]) -> (usize, usize) {
        let lt = |e: &Entry| e.cmp_key(score, member) == Ordering::Less;
        let ci = self.chunks.partition_point(|c| lt(c.last().expect("chunks are never empty")));
        let off = self.chunks.get(ci).map_or(0, |c| c.partition_point(lt));
        (ci, off)
    }

    /// Inserts a key known to be absent.
    pub fn insert(&mut self, score: f64, member: &[u8]) {
        let (mut ci, mut off) = self.seek(score, member);
        if self.chunks.is_empty() {
            self.chunks.push(Vec::new());
        } else if ci == self.chunks.len() {
            ci -= 1;
            off = self.chunks[ci].len();
        }
        let last = ci + 1 == self.chunks.len();
        let chunk = &mut self.chunks[ci];
        debug_assert!(chunk.get(off).is_none_or(|e| e.cmp_key(score, member) != Ordering::Equal));
        if chunk.len() == chunk.capacity() {
            // Grow by doubling but never past a full chunk: a chunk holds at most
            // CHUNK_MAX + 1 entries before it splits, and slack beyond that would stay forever.
            chunk.reserve_exact(chunk.len().max(4).min(CHUNK_MAX + 1 - chunk.len()));
        }
        chunk.insert(off, Entry { score, member: SmallBytes::new(member) });
        self.len += 1;
        if chunk.len() > CHUNK_MAX {
            // Appending (ascending scores) or prepending leaves the full chunk full and starts
            // a new one, so sequential loads pack chunks densely; elsewhere split in halves.
            if ci == 0 && off == 0 {
                let head = vec![chunk.remove(0)];
                self.chunks.insert(0, head);
            } else {
                let at = if last && off + 1 == chunk.len() { CHUNK_MAX } else { CHUNK_MAX / 2 };
                let tail = chunk.split_off(at);
                self.chunks.insert(ci + 1, tail);
            }
            self.fenwick_rebuild();
        } else if self.fenwick.len() < self.chunks.len() {
            self.fenwick_rebuild();
        } else {
            self.fenwick_add(ci, 1);
        }
    }

    pub fn remove(&mut self, score: f64, member: &[u8]) -> bool {
        let (ci, off) = self.seek(score, member);
        let found = self.chunks.get(ci).and_then(|c| c.get(off)).is_some_and(|e| e.cmp_key(score, member).is_eq());
        if found {
            self.chunks[ci].remove(off);
            self.len -= 1;
            if self.chunks[ci].is_empty() {
                self.chunks.remove(ci);
                self.fenwick_rebuild();
            } else {
                self.fenwick_add(ci, -1);
            }
        }
        found
    }

    /// 0-based rank of a present key.
    pub fn rank(&self, score: f64, member: &[u8]) -> Option<usize> {
        let (ci, off) = self.seek(score, member);
        let e = self.chunks.get(ci)?.get(off)?;
        e.cmp_key(score, member).is_eq().then(|| self.prefix(ci) + off)
    }

    /// (chunk, offset) of the entry at `rank`; (chunks, 0) past the end. A Fenwick descent.
    fn locate(&self, rank: usize) -> (usize, usize) {
        if rank >= self.len {
            return (self.chunks.len(), 0);
        }
        let n = self.fenwick.len();
        let (mut pos, mut rem) = (0, rank);
        let mut step = n.checked_next_power_of_two().map_or(0, |p| if p > n { p / 2 } else { p });
        while step > 0 {
            if pos + step <= n && self.fenwick[pos + step - 1] <= rem {
                pos += step;
                rem -= self.fenwick[pos - 1];
            }
            step /= 2;
        }
        debug_assert!(rem < self.chunks[pos].len());
        (pos, rem)
    }

    pub fn get(&self, rank: usize) -> Option<&Entry> {
        let (ci, off) = self.locate(rank);
        self.chunks.get(ci)?.get(off)
    }

    /// Entries from `rank` on, in order.
    pub fn iter_from(&self, rank: usize) -> impl Iterator<Item = &Entry> {
        let (ci, off) = self.locate(rank);
        self.chunks
            .get(ci)
            .into_iter()
            .flat_map(move |c| c[off..].iter())
            .chain(self.chunks.iter().skip(ci + 1).flatten())
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Entry> {
        self.chunks.iter().flatten()
    }

    /// Removes ranks `start..start + count`.
    pub fn remove_range(&mut self, start: usize, count: usize) {
        let mut left = count;
        let (mut ci, off) = self.locate(start);
        let mut off = off;
        while left > 0 && ci < self.chunks.len() {
            let c = &mut self.chunks[ci];
            let n = left.min(c.len() - off);
            c.drain(off..off + n);
            left -= n;
            self.len -= n;
            if c.is_empty() {
                self.chunks.remove(ci);
            } else {
                ci += 1;
            }
            off = 0;
        }
        self.fenwick_rebuild();
    }

    pub fn heap_bytes(&self) -> usize {
        use super::object::alloc_bytes;
        let entries: usize = self
            .chunks
            .iter()
            .map(|c| {
                alloc_bytes(c.capacity() * std::mem::size_of::<Entry>())
                    + c.iter().map(|e| e.member.heap_bytes()).sum::<usize>()
            })
            .sum();
        entries
            + alloc_bytes(self.chunks.capacity() * std::mem::size_of::<Vec<Entry>>())
            + alloc_bytes(self.fenwick.capacity() * std::mem::size_of::<usize>())
    }
}

/// The `skiplist` encoding: a dict for member lookups plus the ordered index.
pub struct SkipZset {
    pub dict: Dict<f64>,
    pub ordered: Ordered,
    /// The dict's seed, kept so a copy (COPY) hashes alike.
    seed: u64,
}

impl SkipZset {
    pub fn new(seed: u64) -> Self {
        SkipZset { dict: Dict::new(seed), ordered: Ordered::default(), seed }
    }
}

impl Clone for SkipZset {
    fn clone(&self) -> Self {
        let mut z = SkipZset::new(self.seed);
        for e in self.ordered.iter() {
            z.dict.insert_new(&*e.member, e.score);
            z.ordered.insert(e.score, &e.member);
        }
        z
    }
}

impl std::fmt::Debug for SkipZset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.ordered.iter()).finish()
    }
}

/// Size limits of the listpack encoding (from the config).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_entries: usize,
    pub max_value: usize,
}

impl Limits {
    /// Whether a set of `len` members, the longest `max_len` bytes, stays a listpack.
    pub fn fits(&self, len: usize, max_len: usize) -> bool {
        len <= self.max_entries && max_len <= self.max_value
    }
}

#[derive(Debug, Clone)]
pub enum Zset {
    Listpack(Listpack),
    Skiplist(Box<SkipZset>),
}

impl PartialEq for Zset {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.range(0, self.len()) == other.range(0, other.len())
    }
}

impl Eq for Zset {}

fn lp_score(b: &[u8]) -> f64 {
    match *b {
        [a] => f64::from(a as i8),
        [a, b] => f64::from(i16::from_le_bytes([a, b])),
        [a, b, c, d] => f64::from(i32::from_le_bytes([a, b, c, d])),
        _ => f64::from_le_bytes(b.try_into().expect("listpack scores are 1, 2, 4 or 8 bytes")),
    }
}

/// A score's listpack bytes: the narrowest exact form. Redis keeps listpack scores as text,
/// where -0 reads back as 0; so does this.
fn lp_encode_score(score: f64) -> LpScore {
    let s = score + 0.0;
    let mut buf = [0u8; 8];
    let len = if s.fract() == 0.0 && (f64::from(i32::MIN)..=f64::from(i32::MAX)).contains(&s) {
        let i = s as i32;
        if let Ok(v) = i8::try_from(i) {
            buf[0] = v as u8;
            1
        } else if let Ok(v) = i16::try_from(i) {
            buf[..2].copy_from_slice(&v.to_le_bytes());
            2
        } else {
            buf[..4].copy_from_slice(&i.to_le_bytes());
            4
        }
    } else {
        buf = s.to_le_bytes();
        8
    };
    LpScore { buf, len }
}

struct LpScore {
    buf: [u8; 8],
    len: usize,
}

impl std::ops::Deref for LpScore {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Zset {
    pub fn new_listpack() -> Self {
        Zset::Listpack(Listpack::new())
    }

    pub fn new_skiplist(seed: u64) -> Self {
        Zset::Skiplist(Box::new(SkipZset::new(seed)))
    }

    /// A set holding `entries` (sorted, distinct), encoded as a STORE creates it: listpack
    /// when it fits the limits.
    pub fn from_sorted(entries: &[(Vec<u8>, f64)], limits: Limits, seed: u64) -> Self {
        let max_len = entries.iter().map(|(m, _)| m.len()).max().unwrap_or(0);
        let mut z = if limits.fits(entries.len(), max_len) { Zset::new_listpack() } else { Zset::new_skiplist(seed) };
        for (m, s) in entries {
            z.insert_sorted_tail(m, *s);
        }
        z
    }

    fn insert_sorted_tail(&mut self, member: &[u8], score: f64) {
        match self {
            Zset::Listpack(lp) => {
                lp.push_back(member);
                lp.push_back(&lp_encode_score(score));
            }
            Zset::Skiplist(s) => {
                s.dict.insert_new(member, score);
                s.ordered.insert(score, member);
            }
        }
    }

    pub fn encoding(&self) -> &'static str {
        match self {
            Zset::Listpack(_) => "listpack",
            Zset::Skiplist(_) => "skiplist",
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Zset::Listpack(lp) => lp.len() / 2,
            Zset::Skiplist(s) => s.dict.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn heap_bytes(&self) -> usize {
        match self {
            Zset::Listpack(lp) => lp.heap_bytes(),
            Zset::Skiplist(s) => {
                let dict = s.dict.len() * super::object::alloc_bytes(Dict::<f64>::entry_bytes())
                    + super::object::alloc_bytes(s.dict.buckets() * std::mem::size_of::<usize>());
                super::object::alloc_bytes(std::mem::size_of::<SkipZset>()) + dict + s.ordered.heap_bytes()
            }
        }
    }

    /// Listpack index (of the member entry) of `member`.
    fn lp_find(lp: &Listpack, member: &[u8]) -> Option<(usize, f64)> {
        let mut it = lp.iter();
        let mut i = 0;
        while let (Some(m), Some(s)) = (it.next(), it.next()) {
            if m == member {
                return Some((i, lp_score(s)));
            }
            i += 2;
        }
        None
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match self {
            Zset::Listpack(lp) => Self::lp_find(lp, member).map(|(_, s)| s),
            Zset::Skiplist(s) => s.dict.get(member).copied(),
        }
    }

    /// Converts a listpack to a skiplist (Redis's `zsetConvert`).
    pub fn convert_to_skiplist(&mut self, seed: u64) {
        if let Zset::Listpack(lp) = self {
            let mut s = SkipZset::new(seed);
            let mut it = lp.iter();
            while let (Some(m), Some(sc)) = (it.next(), it.next()) {
                s.dict.insert_new(m, lp_score(sc));
                s.ordered.insert(lp_score(sc), m);
            }
            *self = Zset::Skiplist(Box::new(s));
        }
    }

    /// Inserts an absent member, converting first when the listpack would outgrow the limits
    /// (Redis's `zsetAdd` new-element path).
    pub fn insert(&mut self, member: &[u8], score: f64, limits: Limits, seed: u64) {
        if let Zset::Listpack(lp) = self {
            if lp.len() / 2 + 1 > limits.max_entries || member.len() > limits.max_value {
                self.convert_to_skiplist(seed);
            }
        }
        match self {
            Zset::Listpack(lp) => {
                let pos = Self::lp_partition(lp, |s, m| key_cmp(s, m, score, member) == Ordering::Less);
                lp.insert(2 * pos, member);
                lp.insert(2 * pos + 1, &lp_encode_score(score));
            }
            Zset::Skiplist(s) => {
                s.dict.insert_new(member, score);
                s.ordered.insert(score, member);
            }
        }
    }

    /// Removes a member; returns whether it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match self {
            Zset::Listpack(lp) => match Self::lp_find(lp, member) {
                Some((i, _)) => {
                    lp.remove_range(i, 2);
                    true
                }
                None => false,
            },
            Zset::Skiplist(s) => match s.dict.remove(member) {
                Some((_, score)) => {
                    let removed = s.ordered.remove(score, member);
                    debug_assert!(removed, "dict and index agree");
                    true
                }
                None => false,
            },
        }
    }

    /// Changes a present member's score.
    pub fn update(&mut self, member: &[u8], old: f64, new: f64, limits: Limits, seed: u64) {
        if old.to_bits() == new.to_bits() {
            return;
        }
        self.remove(member);
        self.insert(member, new, limits, seed);
    }

    fn lp_partition(lp: &Listpack, pred: impl Fn(f64, &[u8]) -> bool) -> usize {
        let mut it = lp.iter();
        let mut n = 0;
        while let (Some(m), Some(s)) = (it.next(), it.next()) {
            if !pred(lp_score(s), m) {
                break;
            }
            n += 1;
        }
        n
    }

    /// Number of leading members (in order) for which `pred(score, member)` holds.
    pub fn partition_point(&self, pred: impl Fn(f64, &[u8]) -> bool) -> usize {
        match self {
            Zset::Listpack(lp) => Self::lp_partition(lp, pred),
            Zset::Skiplist(s) => s.ordered.partition_point(|e| pred(e.score, &e.member)),
        }
    }

    /// 0-based rank of `member` in ascending order.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        match self {
            Zset::Listpack(lp) => Self::lp_find(lp, member).map(|(i, _)| i / 2),
            Zset::Skiplist(s) => {
                let score = *s.dict.get(member)?;
                s.ordered.rank(score, member)
            }
        }
    }

    /// Members with ranks `start..end` in ascending order.
    pub fn range(&self, start: usize, end: usize) -> Vec<(Vec<u8>, f64)> {
        let n = end.saturating_sub(start);
        match self {
            Zset::Listpack(lp) => {
                let mut out = Vec::with_capacity(n);
                let mut it = lp.iter().skip(2 * start);
                while out.len() < n {
                    let (Some(m), Some(s)) = (it.next(), it.next()) else { break };
                    out.push((m.to_vec(), lp_score(s)));
                }
                out
            }
            Zset::Skiplist(s) => s.ordered.iter_from(start).take(n).map(|e| (e.member.to_vec(), e.score)).collect(),
        }
    }

    /// Every member in ascending order.
    pub fn all(&self) -> Vec<(Vec<u8>, f64)> {
        self.range(0, self.len())
    }

    /// Removes ranks `start..end`.
    pub fn remove_range(&mut self, start: usize, end: usize) {
        if end <= start {
            return;
        }
        match self {
            Zset::Listpack(lp) => lp.remove_range(2 * start, 2 * (end - start)),
            Zset::Skiplist(s) => {
                for e in s.ordered.iter_from(start).take(end - start) {
                    s.dict.remove(&e.member);
                }
                s.ordered.remove_range(start, end - start);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::env::{Rng, SeededRng};

    /// (score bits made order-preserving, member): a BTreeSet ordered as the zset is.
    fn model_key(score: f64, member: &[u8]) -> (i64, Vec<u8>) {
        let b = score.to_bits() as i64;
        (if b < 0 { b ^ i64::MAX } else { b }, member.to_vec())
    }

    fn check_against_model(rng: &mut SeededRng, z: &mut Zset, limits: Limits, ops: usize, members: u64) {
        let mut model: BTreeSet<(i64, Vec<u8>)> = BTreeSet::new();
        let mut scores = std::collections::BTreeMap::new();
        for _ in 0..ops {
            let member = format!("m{}", rng.below(members)).into_bytes();
            let score = rng.below(50) as f64 - 25.0;
            match rng.below(4) {
                0 | 1 => match z.score(&member) {
                    Some(old) => {
                        z.update(&member, old, score, limits, 7);
                        model.remove(&model_key(old, &member));
                        model.insert(model_key(score, &member));
                        scores.insert(member, score);
                    }
                    None => {
                        z.insert(&member, score, limits, 7);
                        model.insert(model_key(score, &member));
                        scores.insert(member, score);
                    }
                },
                2 => {
                    let was = scores.remove(&member);
                    assert_eq!(z.remove(&member), was.is_some());
                    if let Some(old) = was {
                        model.remove(&model_key(old, &member));
                    }
                }
                _ => {
                    let rank = scores.get(&member).map(|&s| model.range(..model_key(s, &member)).count());
                    assert_eq!(z.rank(&member), rank);
                    if !model.is_empty() {
                        let r = rng.below(model.len() as u64) as usize;
                        let at = z.range(r, r + 1);
                        assert_eq!(at[0].0, model.iter().nth(r).expect("r < len").1);
                    }
                    if !model.is_empty() && rng.below(10) == 0 {
                        let start = rng.below(model.len() as u64) as usize;
                        let end = (start + rng.below(40) as usize).min(model.len());
                        z.remove_range(start, end);
                        let doomed: Vec<_> = model.iter().skip(start).take(end - start).cloned().collect();
                        for k in doomed {
                            model.remove(&k);
                            scores.remove(&k.1);
                        }
                    }
                }
            }
            assert_eq!(z.len(), model.len());
        }
        let got: Vec<Vec<u8>> = z.all().into_iter().map(|(m, _)| m).collect();
        let want: Vec<Vec<u8>> = model.iter().map(|(_, m)| m.clone()).collect();
        assert_eq!(got, want);
        let below_zero = z.partition_point(|s, _| s < 0.0);
        assert_eq!(below_zero, scores.values().filter(|&&s| s < 0.0).count());
    }

    #[test]
    fn skiplist_matches_a_btree_model_under_random_ops() {
        let mut rng = SeededRng::from_seed(42);
        let limits = Limits { max_entries: 0, max_value: 64 };
        let mut z = Zset::new_skiplist(1);
        check_against_model(&mut rng, &mut z, limits, 20_000, 600);
        let mut big = Zset::new_skiplist(2);
        check_against_model(&mut rng, &mut big, limits, 30_000, 20_000);
        assert!(big.len() > 2 * CHUNK_MAX, "{}", big.len());
        assert_eq!(z.encoding(), "skiplist");
    }

    #[test]
    fn listpack_matches_a_btree_model_under_random_ops() {
        let mut rng = SeededRng::from_seed(43);
        let limits = Limits { max_entries: 128, max_value: 64 };
        let mut z = Zset::new_listpack();
        check_against_model(&mut rng, &mut z, limits, 3_000, 600);
    }

    #[test]
    fn listpack_converts_at_the_exact_thresholds() {
        let limits = Limits { max_entries: 3, max_value: 4 };
        let mut z = Zset::new_listpack();
        for (i, m) in [b"a", b"b", b"c"].iter().enumerate() {
            z.insert(*m, i as f64, limits, 1);
        }
        assert_eq!(z.encoding(), "listpack");
        z.insert(b"d", 9.0, limits, 1);
        assert_eq!(z.encoding(), "skiplist");
        let mut z = Zset::new_listpack();
        z.insert(b"abcd", 1.0, limits, 1);
        assert_eq!(z.encoding(), "listpack");
        z.insert(b"abcde", 1.0, limits, 1);
        assert_eq!(z.encoding(), "skiplist");
        assert_eq!(z.rank(b"abcde"), Some(1));
    }

    #[test]
    fn sequential_loads_pack_chunks_and_keep_ranks() {
        let mut up = Ordered::default();
        let mut down = Ordered::default();
        for i in 0..2000 {
            up.insert(f64::from(i), format!("m{i}").as_bytes());
            down.insert(f64::from(-i), format!("m{i}").as_bytes());
        }
        assert!(up.chunks.len() <= 2000 / CHUNK_MAX + 1, "{}", up.chunks.len());
        assert!(down.chunks.len() <= 2000 / CHUNK_MAX + 1, "{}", down.chunks.len());
        for i in (0..2000).step_by(97) {
            assert_eq!(up.rank(f64::from(i), format!("m{i}").as_bytes()), Some(i as usize));
            assert_eq!(down.rank(f64::from(-i), format!("m{i}").as_bytes()), Some(1999 - i as usize));
            assert_eq!(up.get(i as usize).map(|e| e.score), Some(f64::from(i)));
        }
        let ups: Vec<f64> = up.iter().map(|e| e.score).collect();
        assert!(ups.windows(2).all(|w| w[0] < w[1]));
        let downs: Vec<f64> = down.iter().map(|e| e.score).collect();
        assert!(downs.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn listpack_scores_round_trip_in_their_narrowest_form() {
        for s in [0.0, -0.0, 1.0, -128.0, 127.0, 128.0, -32769.0, 2147483647.0, -2147483648.0, 2147483648.0, 0.5, 1e300]
        {
            let enc = lp_encode_score(s);
            assert_eq!(lp_score(&enc).to_bits(), (s + 0.0).to_bits(), "{s}");
        }
        assert_eq!(lp_encode_score(5.0).len(), 1);
        assert_eq!(lp_encode_score(300.0).len(), 2);
        assert_eq!(lp_encode_score(70000.0).len(), 4);
        assert_eq!(lp_encode_score(f64::INFINITY).len(), 8);
    }
}

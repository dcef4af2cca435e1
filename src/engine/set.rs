//! Set values (the data side of Redis's `t_set.c`), in Redis 7.0's two encodings:
//! - `intset`: while every member is an integer (`string2ll`-strict) and there are at most
//!   `set-max-intset-entries` of them, a sorted array of integers, each as wide as the widest
//!   member needs (2, 4 or 8 bytes), as Redis's `intset.c`. Replies from it are in integer
//!   order, which clients can see, so the order is part of the contract.
//! - `hashtable`: a `Dict` with no values.
//!
//! An intset becomes a hashtable when a non-integer arrives or it outgrows the limit, never
//! the other way round (7.0 has no listpack sets; those came in 7.2).

use std::borrow::Cow;

use super::dict::Dict;
use super::object::alloc_bytes;
use super::sds::heap_bytes_for;
use crate::env::Rng;
use crate::protocol::parser::parse_ll;

/// Redis caps intsets at 2^30 entries whatever the config says (`setTypeAdd`).
const INTSET_ENTRIES_MAX: u64 = 1 << 30;

/// Sorted integers packed little-endian at one width (Redis's `intset`), in one exact-size
/// allocation: byte 0 is the width, the entries follow.
#[derive(Clone, PartialEq, Eq)]
pub struct Intset {
    bytes: Box<[u8]>,
}

/// Bytes before the first entry: the width.
const INTSET_HEADER_LEN: usize = 1;

fn width_for(v: i64) -> u8 {
    if i16::try_from(v).is_ok() {
        2
    } else if i32::try_from(v).is_ok() {
        4
    } else {
        8
    }
}

impl Default for Intset {
    fn default() -> Self {
        Intset::new()
    }
}

impl Intset {
    pub fn new() -> Self {
        Intset { bytes: Box::new([2]) }
    }

    /// Bytes per entry: 2, 4 or 8 (Redis's `INTSET_ENC_INT16/32/64`).
    pub fn width(&self) -> u8 {
        self.bytes[0]
    }

    fn entries(&self) -> &[u8] {
        &self.bytes[INTSET_HEADER_LEN..]
    }

    pub fn len(&self) -> usize {
        self.entries().len() / self.width() as usize
    }

    pub fn is_empty(&self) -> bool {
        self.entries().is_empty()
    }

    pub fn get(&self, i: usize) -> i64 {
        let w = self.width() as usize;
        let b = &self.entries()[i * w..(i + 1) * w];
        match w {
            2 => i16::from_le_bytes([b[0], b[1]]) as i64,
            4 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64,
            _ => i64::from_le_bytes(b.try_into().expect("8-byte entry")),
        }
    }

    /// Binary search: `Ok(position)` when present, else where it would go.
    pub fn search(&self, v: i64) -> Result<usize, usize> {
        if width_for(v) > self.width() {
            // Wider than every member: it would go at one end.
            return Err(if v < 0 { 0 } else { self.len() });
        }
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.get(mid).cmp(&v) {
                std::cmp::Ordering::Equal => return Ok(mid),
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        Err(lo)
    }

    pub fn contains(&self, v: i64) -> bool {
        self.search(v).is_ok()
    }

    /// Adds `v`; false if present. Every change reallocates to the exact size, as Redis's
    /// `intsetResize` does: an intset is small and memory is what this encoding is for.
    pub fn insert(&mut self, v: i64) -> bool {
        if width_for(v) > self.width() {
            self.upgrade(width_for(v));
        }
        let Err(pos) = self.search(v) else { return false };
        let w = self.width() as usize;
        let at = INTSET_HEADER_LEN + pos * w;
        let mut bytes = std::mem::take(&mut self.bytes).into_vec();
        bytes.reserve_exact(w);
        bytes.splice(at..at, v.to_le_bytes()[..w].iter().copied());
        self.bytes = bytes.into_boxed_slice();
        true
    }

    pub fn remove(&mut self, v: i64) -> bool {
        let Ok(pos) = self.search(v) else { return false };
        let w = self.width() as usize;
        let at = INTSET_HEADER_LEN + pos * w;
        let mut bytes = std::mem::take(&mut self.bytes).into_vec();
        bytes.drain(at..at + w);
        self.bytes = bytes.into_boxed_slice();
        true
    }

    fn upgrade(&mut self, width: u8) {
        debug_assert!(width > self.width());
        let mut bytes = Vec::with_capacity(INTSET_HEADER_LEN + self.len() * width as usize);
        bytes.push(width);
        for v in self.iter() {
            bytes.extend_from_slice(&v.to_le_bytes()[..width as usize]);
        }
        self.bytes = bytes.into_boxed_slice();
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = i64> + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }

    pub fn heap_bytes(&self) -> usize {
        alloc_bytes(self.bytes.len())
    }
}

impl std::fmt::Debug for Intset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// A hashtable-encoded set. It keeps its dict's seed so that a copy (COPY) can be built.
pub struct HtSet {
    dict: Dict<()>,
    seed: u64,
}

impl HtSet {
    fn new(seed: u64) -> Self {
        HtSet { dict: Dict::new(seed), seed }
    }
}

/// One member as an encoding yields it: intsets hold integers, hashtables bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member<'a> {
    Int(i64),
    Bytes(&'a [u8]),
}

impl Member<'_> {
    pub fn bytes(&self) -> Cow<'_, [u8]> {
        match self {
            Member::Int(n) => Cow::Owned(itoa::Buffer::new().format(*n).as_bytes().to_vec()),
            Member::Bytes(b) => Cow::Borrowed(b),
        }
    }
}

pub enum Set {
    Intset(Intset),
    /// Boxed so that the common small set stays two words.
    Hashtable(Box<HtSet>),
}

impl Set {
    /// An empty intset (Redis's `createIntsetObject`): what the *STORE commands fill.
    pub fn new_intset() -> Self {
        Set::Intset(Intset::new())
    }

    /// The encoding a set starting with `first` gets (Redis's `setTypeCreate`).
    pub fn create(first: &[u8], seed: u64) -> Self {
        if parse_ll(first).is_some() {
            Set::new_intset()
        } else {
            Set::Hashtable(Box::new(HtSet::new(seed)))
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Set::Intset(is) => is.len(),
            Set::Hashtable(ht) => ht.dict.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn encoding(&self) -> &'static str {
        match self {
            Set::Intset(_) => "intset",
            Set::Hashtable(_) => "hashtable",
        }
    }

    /// Redis's `setTypeAdd`: converts to a hashtable (with `seed`) when `v` is not an integer
    /// or the intset would hold more than `max_intset` entries.
    pub fn add(&mut self, v: &[u8], max_intset: u64, seed: u64) -> bool {
        match self {
            Set::Hashtable(ht) => ht.dict.insert(v, ()).is_none(),
            Set::Intset(is) => match parse_ll(v) {
                Some(n) => {
                    if !is.insert(n) {
                        return false;
                    }
                    if is.len() as u64 > max_intset.min(INTSET_ENTRIES_MAX) {
                        self.convert_to_hashtable(seed);
                    }
                    true
                }
                None => {
                    self.convert_to_hashtable(seed);
                    let Set::Hashtable(ht) = self else { unreachable!("just converted") };
                    ht.dict.insert_new(v, ());
                    true
                }
            },
        }
    }

    /// Adds a member as an iteration yielded it (saves formatting integers for intsets).
    pub fn add_member(&mut self, m: Member, max_intset: u64, seed: u64) -> bool {
        match (m, &mut *self) {
            (Member::Int(n), Set::Intset(is)) => {
                if !is.insert(n) {
                    return false;
                }
                if is.len() as u64 > max_intset.min(INTSET_ENTRIES_MAX) {
                    self.convert_to_hashtable(seed);
                }
                true
            }
            _ => self.add(&m.bytes(), max_intset, seed),
        }
    }

    pub fn remove(&mut self, v: &[u8]) -> bool {
        match self {
            Set::Intset(is) => parse_ll(v).is_some_and(|n| is.remove(n)),
            Set::Hashtable(ht) => ht.dict.remove(v).is_some(),
        }
    }

    pub fn remove_member(&mut self, m: Member) -> bool {
        match (m, &mut *self) {
            (Member::Int(n), Set::Intset(is)) => is.remove(n),
            _ => self.remove(&m.bytes()),
        }
    }

    pub fn contains(&self, v: &[u8]) -> bool {
        match self {
            Set::Intset(is) => parse_ll(v).is_some_and(|n| is.contains(n)),
            Set::Hashtable(ht) => ht.dict.contains_key(v),
        }
    }

    pub fn contains_member(&self, m: Member) -> bool {
        match (m, self) {
            (Member::Int(n), Set::Intset(is)) => is.contains(n),
            (Member::Int(n), Set::Hashtable(ht)) => ht.dict.contains_key(itoa::Buffer::new().format(n).as_bytes()),
            (Member::Bytes(b), _) => self.contains(b),
        }
    }

    /// Redis's `setTypeConvert(.., OBJ_ENCODING_HT)`.
    fn convert_to_hashtable(&mut self, seed: u64) {
        let Set::Intset(is) = self else { return };
        let mut ht = HtSet::new(seed);
        ht.dict.reserve(is.len());
        for n in is.iter() {
            ht.dict.insert_new(itoa::Buffer::new().format(n).as_bytes(), ());
        }
        *self = Set::Hashtable(Box::new(ht));
    }

    pub fn iter(&self) -> SetIter<'_> {
        match self {
            Set::Intset(is) => SetIter::Intset(is, 0),
            Set::Hashtable(ht) => SetIter::Hashtable(ht.dict.iter()),
        }
    }

    /// A uniformly chosen member (Redis's `setTypeRandomElement`); None when empty.
    pub fn random(&self, rng: &mut impl Rng) -> Option<Member<'_>> {
        match self {
            Set::Intset(is) if is.is_empty() => None,
            Set::Intset(is) => Some(Member::Int(is.get(rng.below(is.len() as u64) as usize))),
            Set::Hashtable(ht) => ht.dict.random(rng).map(|(k, _)| Member::Bytes(k)),
        }
    }

    /// One SSCAN step over a hashtable (see `Dict::scan`); intsets are scanned whole.
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(Member)) -> u64 {
        match self {
            Set::Intset(is) => {
                is.iter().for_each(|n| f(Member::Int(n)));
                0
            }
            Set::Hashtable(ht) => ht.dict.scan(cursor, |k, _| f(Member::Bytes(k))),
        }
    }

    /// Heap bytes behind the set (MEMORY USAGE), at the allocator's size classes. The set
    /// itself lives inside its object.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Set::Intset(is) => is.heap_bytes(),
            Set::Hashtable(ht) => {
                let own = alloc_bytes(std::mem::size_of::<HtSet>());
                let buckets = alloc_bytes(ht.dict.buckets() * std::mem::size_of::<usize>());
                let node = alloc_bytes(Dict::<()>::entry_bytes());
                let members: usize = ht.dict.iter().map(|(k, _)| node + heap_bytes_for(k.len())).sum();
                own + buckets + members
            }
        }
    }
}

pub enum SetIter<'a> {
    Intset(&'a Intset, usize),
    Hashtable(super::dict::Iter<'a, ()>),
}

impl<'a> Iterator for SetIter<'a> {
    type Item = Member<'a>;
    fn next(&mut self) -> Option<Member<'a>> {
        match self {
            SetIter::Intset(is, i) => {
                if *i >= is.len() {
                    return None;
                }
                *i += 1;
                Some(Member::Int(is.get(*i - 1)))
            }
            SetIter::Hashtable(it) => it.next().map(|(k, _)| Member::Bytes(k)),
        }
    }
}

impl Clone for Set {
    fn clone(&self) -> Self {
        match self {
            Set::Intset(is) => Set::Intset(is.clone()),
            Set::Hashtable(ht) => {
                let mut copy = HtSet::new(ht.seed);
                copy.dict.reserve(ht.dict.len());
                for (k, _) in ht.dict.iter() {
                    copy.dict.insert_new(k, ());
                }
                Set::Hashtable(Box::new(copy))
            }
        }
    }
}

/// Equal members, whatever the encodings.
impl PartialEq for Set {
    fn eq(&self, other: &Set) -> bool {
        self.len() == other.len() && self.iter().all(|m| other.contains_member(m))
    }
}

impl Eq for Set {}

impl std::fmt::Debug for Set {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Set::{}", self.encoding())?;
        f.debug_list().entries(self.iter().map(|m| String::from_utf8_lossy(&m.bytes()).into_owned())).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::SeededRng;
    use std::collections::BTreeSet;

    fn check_against(is: &Intset, model: &BTreeSet<i64>) {
        assert_eq!(is.len(), model.len());
        assert!(is.iter().eq(model.iter().copied()));
        let widest = model.iter().map(|&v| width_for(v)).max().unwrap_or(2);
        assert!(is.width() >= widest);
    }

    #[test]
    fn intset_matches_btreeset_model_through_upgrades() {
        let mut rng = SeededRng::from_seed(11);
        let mut is = Intset::new();
        let mut model = BTreeSet::new();
        let ranges = [100u64, 40_000, 5_000_000_000, u64::MAX];
        for step in 0..4000 {
            let span = ranges[step / 1000];
            let v = if span == u64::MAX { rng.next_u64() as i64 } else { rng.below(span) as i64 - (span / 2) as i64 };
            if rng.below(3) == 0 {
                assert_eq!(is.remove(v), model.remove(&v), "remove {v}");
            } else {
                assert_eq!(is.insert(v), model.insert(v), "insert {v}");
            }
            assert_eq!(is.contains(v), model.contains(&v));
            if step % 97 == 0 {
                check_against(&is, &model);
            }
        }
        check_against(&is, &model);
    }

    #[test]
    fn intset_upgrades_to_the_widest_member_and_keeps_it() {
        let mut is = Intset::new();
        is.insert(1);
        assert_eq!(is.width(), 2);
        is.insert(-40_000);
        assert_eq!(is.width(), 4);
        is.insert(i64::MAX);
        assert_eq!(is.width(), 8);
        assert!(is.iter().eq([-40_000, 1, i64::MAX]));
        is.remove(i64::MAX);
        assert_eq!(is.width(), 8, "Redis never downgrades");
        assert!(is.contains(-40_000) && !is.contains(40_000) && !is.contains(i64::MIN));
        is.insert(i64::MIN);
        assert!(is.iter().eq([i64::MIN, -40_000, 1]));
        assert_eq!(is.heap_bytes(), alloc_bytes(1 + 24));
    }

    #[test]
    fn set_converts_as_set_type_add_does() {
        let mut s = Set::create(b"1", 1);
        assert_eq!(s.encoding(), "intset");
        for i in 0..3 {
            assert!(s.add(i.to_string().as_bytes(), 3, 1));
        }
        assert_eq!(s.encoding(), "intset");
        assert!(!s.add(b"2", 3, 1));
        assert!(s.add(b"3", 3, 1));
        assert_eq!(s.encoding(), "hashtable");
        let mut t = Set::create(b"7", 1);
        t.add(b"7", 512, 1);
        assert!(t.add(b"07", 512, 1), "not string2ll-strict: a string member");
        assert_eq!(t.encoding(), "hashtable");
        assert!(t.contains(b"7") && t.contains(b"07") && !t.contains(b"x"));
        assert_eq!(Set::create(b"a", 1).encoding(), "hashtable");
        assert_eq!(t.clone(), t);
    }

    #[test]
    fn small_set_stays_two_words() {
        // It lives inline in `Value`, which must stay 24 bytes.
        assert_eq!(std::mem::size_of::<Set>(), 16);
        let mut s = Set::create(b"1", 1);
        for m in [b"1", b"2", b"3"] {
            s.add(m, 512, 1);
        }
        // The intset's width byte and three 2-byte entries, in one 8-byte size class.
        assert_eq!(s.heap_bytes(), 8);
    }
}

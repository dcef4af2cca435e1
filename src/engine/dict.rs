//! Redis's `dict`: a chained hash table over a power-of-two bucket array, keyed by bytes.
//!
//! Why not `HashMap`: SCAN needs Redis's reverse-binary cursor over buckets (every element
//! present for a whole scan is returned at least once, even across resizes), eviction and
//! RANDOMKEY need to sample random buckets, and iteration order must come from the seeded hash
//! alone, never from a per-process `RandomState`. The table rehashes in one step when it
//! grows or shrinks (Redis rehashes incrementally; the cursor algorithm is the same).

use std::hash::{BuildHasher, Hasher};

use super::sds::SmallBytes;
use crate::env::Rng;

/// Smallest bucket array (Redis's `DICT_HT_INITIAL_SIZE`).
const DICT_HT_INITIAL_SIZE: usize = 4;
/// Shrink when fewer than this percentage of buckets are used (Redis's `HASHTABLE_MIN_FILL`).
const HASHTABLE_MIN_FILL_PERCENT: usize = 10;

struct Node<V> {
    key: SmallBytes,
    val: V,
    next: Option<Box<Node<V>>>,
}

pub struct Dict<V> {
    table: Vec<Option<Box<Node<V>>>>,
    used: usize,
    hasher: foldhash::fast::FixedState,
}

impl<V> Dict<V> {
    /// A dict whose bucket order derives from `seed` (the env's rng), so runs are repeatable.
    pub fn new(seed: u64) -> Self {
        Dict { table: Vec::new(), used: 0, hasher: foldhash::fast::FixedState::with_seed(seed) }
    }

    pub fn len(&self) -> usize {
        self.used
    }

    pub fn is_empty(&self) -> bool {
        self.used == 0
    }

    /// Bytes of one entry's node: key pointer, value and chain link (MEMORY USAGE/STATS).
    pub fn entry_bytes() -> usize {
        std::mem::size_of::<Node<V>>()
    }

    /// The seeded hash function, for a structure beside the dict that hashes the same keys.
    pub fn hasher(&self) -> foldhash::fast::FixedState {
        self.hasher
    }

    /// Number of buckets (Redis's `dictSlots`).
    pub fn buckets(&self) -> usize {
        self.table.len()
    }

    fn hash(&self, key: &[u8]) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write(key);
        h.finish()
    }

    fn index(&self, key: &[u8]) -> usize {
        (self.hash(key) as usize) & (self.table.len() - 1)
    }

    pub fn get(&self, key: &[u8]) -> Option<&V> {
        if self.used == 0 {
            return None;
        }
        let mut cur = self.table[self.index(key)].as_deref();
        while let Some(n) = cur {
            if &*n.key == key {
                return Some(&n.val);
            }
            cur = n.next.as_deref();
        }
        None
    }

    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        if self.used == 0 {
            return None;
        }
        let idx = self.index(key);
        let mut cur = self.table[idx].as_deref_mut();
        while let Some(n) = cur {
            if &*n.key == key {
                return Some(&mut n.val);
            }
            cur = n.next.as_deref_mut();
        }
        None
    }

    /// The stored key equal to `key` and its value.
    pub fn get_key_value(&self, key: &[u8]) -> Option<(&[u8], &V)> {
        if self.used == 0 {
            return None;
        }
        let mut cur = self.table[self.index(key)].as_deref();
        while let Some(n) = cur {
            if &*n.key == key {
                return Some((&n.key, &n.val));
            }
            cur = n.next.as_deref();
        }
        None
    }

    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Inserts or replaces; returns the old value. One hash, one walk of the chain.
    pub fn insert(&mut self, key: impl Into<SmallBytes> + AsRef<[u8]>, val: V) -> Option<V> {
        self.expand_if_needed();
        let idx = self.index(key.as_ref());
        let mut cur = self.table[idx].as_deref_mut();
        while let Some(n) = cur {
            if &*n.key == key.as_ref() {
                return Some(std::mem::replace(&mut n.val, val));
            }
            cur = n.next.as_deref_mut();
        }
        let next = self.table[idx].take();
        self.table[idx] = Some(Box::new(Node { key: key.into(), val, next }));
        self.used += 1;
        None
    }

    /// Inserts a key known to be absent (saves the lookup). Debug builds check.
    pub fn insert_new(&mut self, key: impl Into<SmallBytes>, val: V) {
        let key: SmallBytes = key.into();
        debug_assert!(!self.contains_key(&key));
        self.expand_if_needed();
        let idx = self.index(&key);
        let next = self.table[idx].take();
        self.table[idx] = Some(Box::new(Node { key, val, next }));
        self.used += 1;
    }

    /// Inserts `key` unless it is present (then `val` is handed back and nothing changes):
    /// one hash, one walk of the chain, as the RDB loader needs for every key.
    pub fn try_insert_new(&mut self, key: &[u8], val: V) -> Result<(), V> {
        let h = self.hash(key) as usize;
        if self.used > 0 {
            let mut cur = self.table[h & (self.table.len() - 1)].as_deref();
            while let Some(n) = cur {
                if &*n.key == key {
                    return Err(val);
                }
                cur = n.next.as_deref();
            }
        }
        self.expand_if_needed();
        let idx = h & (self.table.len() - 1);
        let next = self.table[idx].take();
        self.table[idx] = Some(Box::new(Node { key: key.into(), val, next }));
        self.used += 1;
        Ok(())
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<(Box<[u8]>, V)> {
        if self.used == 0 {
            return None;
        }
        let idx = self.index(key);
        let mut link = &mut self.table[idx];
        loop {
            match link {
                None => return None,
                Some(n) if &*n.key == key => {
                    let mut node = link.take().expect("matched node");
                    *link = node.next.take();
                    self.used -= 1;
                    let Node { key, val, .. } = *node;
                    self.shrink_if_needed();
                    return Some((key.as_bytes().into(), val));
                }
                Some(n) => link = &mut n.next,
            }
        }
    }

    pub fn clear(&mut self) {
        // Unlink chains iteratively: dropping a long chain recursively could overflow the stack.
        for slot in self.table.iter_mut() {
            let mut cur = slot.take();
            while let Some(mut n) = cur {
                cur = n.next.take();
            }
        }
        self.table = Vec::new();
        self.used = 0;
    }

    fn expand_if_needed(&mut self) {
        if self.table.is_empty() {
            self.resize(DICT_HT_INITIAL_SIZE);
        } else if self.used >= self.table.len() {
            self.resize((self.used + 1).next_power_of_two());
        }
    }

    fn shrink_if_needed(&mut self) {
        let size = self.table.len();
        if size > DICT_HT_INITIAL_SIZE && self.used * 100 / size < HASHTABLE_MIN_FILL_PERCENT {
            self.resize(self.used.max(DICT_HT_INITIAL_SIZE).next_power_of_two());
        }
    }

    /// Grows the table to hold `n` elements without a resize (Redis's `dictExpand`).
    pub fn reserve(&mut self, n: usize) {
        let want = n.max(DICT_HT_INITIAL_SIZE).next_power_of_two();
        if want > self.table.len() {
            self.resize(want);
        }
    }

    fn resize(&mut self, size: usize) {
        debug_assert!(size.is_power_of_two());
        let old = std::mem::take(&mut self.table);
        self.table.resize_with(size, || None);
        let mask = size - 1;
        for mut slot in old {
            while let Some(mut n) = slot {
                slot = n.next.take();
                let idx = (self.hash(&n.key) as usize) & mask;
                n.next = self.table[idx].take();
                self.table[idx] = Some(n);
            }
        }
    }

    /// One SCAN step (Redis's `dictScan`): calls `f` for every element of the bucket(s) the
    /// cursor names and returns the next cursor; 0 when the scan is complete.
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&[u8], &V)) -> u64 {
        if self.used == 0 {
            return 0;
        }
        let mask = (self.table.len() - 1) as u64;
        let mut cur = self.table[(cursor & mask) as usize].as_deref();
        while let Some(n) = cur {
            f(&n.key, &n.val);
            cur = n.next.as_deref();
        }
        // Increment the reversed cursor: the high bits of the mask walk first, so buckets
        // that split or merge on resize are visited in an order that skips none.
        let mut v = cursor | !mask;
        v = v.reverse_bits();
        v = v.wrapping_add(1);
        v.reverse_bits()
    }

    /// A random element, chosen as Redis's `dictGetFairRandomKey` approximately does: a random
    /// non-empty bucket, then a random element of its chain.
    pub fn random(&self, rng: &mut impl Rng) -> Option<(&[u8], &V)> {
        if self.used == 0 {
            return None;
        }
        let size = self.table.len() as u64;
        loop {
            if let Some(head) = self.table[rng.below(size) as usize].as_deref() {
                let mut len = 0;
                let mut cur = Some(head);
                while let Some(n) = cur {
                    len += 1;
                    cur = n.next.as_deref();
                }
                let mut n = head;
                for _ in 0..rng.below(len) {
                    n = n.next.as_deref().expect("chain length");
                }
                return Some((&n.key, &n.val));
            }
        }
    }

    /// Up to `count` elements from consecutive buckets starting at a random one (Redis's
    /// `dictGetSomeKeys`), for eviction and active-expire sampling. May repeat nothing; may
    /// return fewer than asked.
    pub fn sample(&self, rng: &mut impl Rng, count: usize, mut f: impl FnMut(&[u8], &V)) {
        if self.used == 0 || count == 0 {
            return;
        }
        let count = count.min(self.used);
        let size = self.table.len();
        let mut i = rng.below(size as u64) as usize;
        let mut got = 0;
        let mut empty_run = 0;
        let max_steps = count * 10;
        for _ in 0..max_steps {
            match self.table[i].as_deref() {
                None => {
                    empty_run += 1;
                    // Many empty buckets in a row: jump elsewhere, as Redis does.
                    if empty_run >= 5 && empty_run > count {
                        i = rng.below(size as u64) as usize;
                        empty_run = 0;
                        continue;
                    }
                }
                Some(head) => {
                    empty_run = 0;
                    let mut cur = Some(head);
                    while let Some(n) = cur {
                        f(&n.key, &n.val);
                        got += 1;
                        if got == count {
                            return;
                        }
                        cur = n.next.as_deref();
                    }
                }
            }
            i = (i + 1) & (size - 1);
        }
    }

    pub fn iter(&self) -> Iter<'_, V> {
        Iter { table: &self.table, bucket: 0, node: None }
    }
}

impl<V> Drop for Dict<V> {
    fn drop(&mut self) {
        self.clear();
    }
}

pub struct Iter<'a, V> {
    table: &'a [Option<Box<Node<V>>>],
    bucket: usize,
    node: Option<&'a Node<V>>,
}

impl<'a, V> Iterator for Iter<'a, V> {
    type Item = (&'a [u8], &'a V);
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(n) = self.node {
                self.node = n.next.as_deref();
                return Some((&n.key, &n.val));
            }
            if self.bucket >= self.table.len() {
                return None;
            }
            self.node = self.table[self.bucket].as_deref();
            self.bucket += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::SeededRng;
    use std::collections::BTreeSet;

    fn k(i: u32) -> Box<[u8]> {
        format!("key:{i}").into_bytes().into_boxed_slice()
    }

    #[test]
    fn insert_get_remove_and_resize() {
        let mut d = Dict::new(1);
        for i in 0..1000 {
            assert!(d.insert(k(i), i).is_none());
        }
        assert_eq!(d.len(), 1000);
        assert_eq!(d.buckets(), 1024);
        assert_eq!(d.insert(k(5), 55), Some(5));
        for i in 0..990 {
            assert_eq!(d.remove(&k(i)).map(|(_, v)| v), Some(if i == 5 { 55 } else { i }));
        }
        assert_eq!(d.len(), 10);
        assert!(d.buckets() <= 64, "shrunk to {}", d.buckets());
        assert_eq!(d.get(&k(995)), Some(&995));
        assert_eq!(d.get(&k(3)), None);
    }

    #[test]
    fn try_insert_new_refuses_present_keys() {
        let mut d = Dict::new(2);
        for i in 0..100 {
            assert!(d.try_insert_new(&k(i), i).is_ok());
        }
        assert_eq!(d.try_insert_new(&k(7), 700), Err(700));
        assert_eq!(d.len(), 100);
        assert_eq!(d.get(&k(7)), Some(&7));
        assert_eq!(d.buckets(), 128);
        for i in 0..100 {
            assert_eq!(d.get(&k(i)), Some(&i));
        }
    }

    #[test]
    fn scan_returns_every_element_across_growth_and_shrink() {
        let mut d = Dict::new(7);
        for i in 0..500 {
            d.insert(k(i), i);
        }
        let mut seen = BTreeSet::new();
        let mut cursor = 0;
        let mut steps = 0;
        loop {
            cursor = d.scan(cursor, |_, v| {
                seen.insert(*v);
            });
            steps += 1;
            // Resize mid-scan in both directions: the cursor must still cover everything.
            if steps == 50 {
                for i in 500..3000 {
                    d.insert(k(i), i);
                }
            }
            if steps == 400 {
                for i in 1000..3000 {
                    d.remove(&k(i));
                }
            }
            if cursor == 0 {
                break;
            }
        }
        for i in 0..500 {
            assert!(seen.contains(&i), "element {i} missed");
        }
    }

    #[test]
    fn same_seed_same_order() {
        let build = |seed| {
            let mut d = Dict::new(seed);
            for i in 0..100 {
                d.insert(k(i), i);
            }
            d.iter().map(|(_, v)| *v).collect::<Vec<_>>()
        };
        assert_eq!(build(3), build(3));
        assert_ne!(build(3), build(4));
    }

    #[test]
    fn random_and_sample_find_elements() {
        let mut d = Dict::new(9);
        let mut rng = SeededRng::from_seed(1);
        assert!(d.random(&mut rng).is_none());
        for i in 0..50 {
            d.insert(k(i), i);
        }
        let mut hits = BTreeSet::new();
        for _ in 0..2000 {
            hits.insert(*d.random(&mut rng).unwrap().1);
        }
        assert_eq!(hits.len(), 50);
        let mut n = 0;
        d.sample(&mut rng, 5, |_, _| n += 1);
        assert_eq!(n, 5);
    }
}

//! Lists as Redis 7.0 keeps them: a quicklist, i.e. a deque of listpack nodes. Redis 7.0
//! always reports the `quicklist` encoding for lists (the single-listpack encoding arrived in
//! 7.2), so the node limit (`list-max-listpack-size`) shapes memory only, never replies.

use std::collections::VecDeque;

use super::listpack::Listpack;

/// Node sizes for negative `list-max-listpack-size` values -1..-5 (Redis's
/// `optimization_level`), in bytes.
const OPTIMIZATION_LEVEL: [usize; 5] = [4096, 8192, 16384, 32768, 65536];
/// A node with a positive (count) fill still stops growing here (Redis's `SIZE_SAFETY_LIMIT`).
const SIZE_SAFETY_LIMIT: usize = 8192; // bytes
/// What Redis adds to an element's length to estimate its listpack entry (encoding and
/// back-length), deciding whether a node takes it.
const SIZE_ESTIMATE_OVERHEAD: usize = 8; // bytes
/// A listpack's header and end byte.
const LP_HDR_SIZE: usize = 7; // bytes

/// Bytes Redis's listpack spends on one entry: integers get compact encodings, strings a
/// 1, 2 or 5 byte length header; then the back-length.
fn lp_entry_size(data: &[u8]) -> usize {
    let enc = match crate::protocol::parser::parse_ll(data).filter(|_| data.len() <= 20) {
        Some(v) if (0..=127).contains(&v) => 1,
        Some(v) if (-4096..4096).contains(&v) => 2,
        Some(v) if (-32768..32768).contains(&v) => 3,
        Some(v) if (-8_388_608..8_388_608).contains(&v) => 4,
        Some(v) if (i32::MIN as i64..=i32::MAX as i64).contains(&v) => 5,
        Some(_) => 9,
        None if data.len() < 64 => 1 + data.len(),
        None if data.len() < 4096 => 2 + data.len(),
        None => 5 + data.len(),
    };
    let backlen = match enc {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    };
    enc + backlen
}

#[derive(Clone, Default, PartialEq, Eq)]
struct Node {
    lp: Listpack,
    /// Redis's `lpBytes` of this node, for the fill limit.
    sz: usize,
}

impl Node {
    fn new() -> Self {
        Node { lp: Listpack::new(), sz: LP_HDR_SIZE }
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct List {
    nodes: VecDeque<Node>,
    len: usize,
    /// `list-max-listpack-size` when the list was created, as Redis's `quicklist.fill`.
    fill: i32,
}

impl std::fmt::Debug for List {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter().map(String::from_utf8_lossy)).finish()
    }
}

impl List {
    pub fn new(fill: i32) -> Self {
        List { nodes: VecDeque::new(), len: 0, fill }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn encoding(&self) -> &'static str {
        "quicklist"
    }

    /// Whether `node` may take one more entry of `data` (Redis's `_quicklistNodeAllowInsert`).
    /// Redis estimates the new size as the raw length plus `SIZE_ESTIMATE_OVERHEAD`, not the
    /// listpack entry's real size; the estimate decides where nodes split, which DUMP and RDB
    /// files show, so it is kept.
    fn allows_insert(&self, node: &Node, data: &[u8]) -> bool {
        let new_sz = node.sz + data.len() + SIZE_ESTIMATE_OVERHEAD;
        if self.fill >= 0 {
            new_sz <= SIZE_SAFETY_LIMIT && node.lp.len() < self.fill.max(1) as usize
        } else {
            let level = ((-self.fill - 1) as usize).min(OPTIMIZATION_LEVEL.len() - 1);
            new_sz <= OPTIMIZATION_LEVEL[level]
        }
    }

    pub fn push_back(&mut self, data: &[u8]) {
        if !self.nodes.back().is_some_and(|n| self.allows_insert(n, data)) {
            // A full node stops growing: give back the doubling slack (up to 2x) it holds.
            if let Some(full) = self.nodes.back_mut() {
                full.lp.shrink_to_fit();
            }
            self.nodes.push_back(Node::new());
        }
        let node = self.nodes.back_mut().expect("just ensured");
        node.lp.push_back(data);
        node.sz += lp_entry_size(data);
        self.len += 1;
    }

    pub fn push_front(&mut self, data: &[u8]) {
        if !self.nodes.front().is_some_and(|n| self.allows_insert(n, data)) {
            if let Some(full) = self.nodes.front_mut() {
                full.lp.shrink_to_fit();
            }
            self.nodes.push_front(Node::new());
        }
        let node = self.nodes.front_mut().expect("just ensured");
        node.lp.push_front(data);
        node.sz += lp_entry_size(data);
        self.len += 1;
    }

    pub fn pop_front(&mut self) -> Option<Vec<u8>> {
        (self.len > 0).then(|| self.take(0))
    }

    pub fn pop_back(&mut self) -> Option<Vec<u8>> {
        (self.len > 0).then(|| self.take(self.len - 1))
    }

    /// Removes entry `idx` and returns it.
    fn take(&mut self, idx: usize) -> Vec<u8> {
        let (ni, off) = self.locate(idx);
        let v = self.nodes[ni].lp.get(off).expect("located").to_vec();
        self.remove_at(ni, off);
        v
    }

    /// Node index and offset in it of entry `idx` (< len).
    fn locate(&self, idx: usize) -> (usize, usize) {
        debug_assert!(idx < self.len);
        if idx * 2 <= self.len {
            let mut left = idx;
            for (i, n) in self.nodes.iter().enumerate() {
                if left < n.lp.len() {
                    return (i, left);
                }
                left -= n.lp.len();
            }
        } else {
            let mut right = self.len - 1 - idx;
            for (i, n) in self.nodes.iter().enumerate().rev() {
                if right < n.lp.len() {
                    return (i, n.lp.len() - 1 - right);
                }
                right -= n.lp.len();
            }
        }
        unreachable!("index {idx} within len {}", self.len)
    }

    fn remove_at(&mut self, ni: usize, off: usize) {
        let node = &mut self.nodes[ni];
        node.sz -= lp_entry_size(node.lp.get(off).expect("located"));
        node.lp.remove(off);
        self.len -= 1;
        if node.lp.is_empty() {
            self.nodes.remove(ni);
        }
    }

    pub fn get(&self, idx: usize) -> Option<&[u8]> {
        if idx >= self.len {
            return None;
        }
        let (ni, off) = self.locate(idx);
        self.nodes[ni].lp.get(off)
    }

    /// Replaces entry `idx` (< len).
    pub fn set(&mut self, idx: usize, data: &[u8]) {
        let (ni, off) = self.locate(idx);
        let node = &mut self.nodes[ni];
        node.sz = node.sz - lp_entry_size(node.lp.get(off).expect("located")) + lp_entry_size(data);
        node.lp.replace(off, data);
        self.split_if_over(ni);
    }

    /// Inserts before entry `idx`; `idx == len` appends.
    pub fn insert(&mut self, idx: usize, data: &[u8]) {
        if idx == self.len {
            return self.push_back(data);
        }
        if idx == 0 {
            return self.push_front(data);
        }
        let (ni, off) = self.locate(idx);
        let node = &mut self.nodes[ni];
        node.lp.insert(off, data);
        node.sz += lp_entry_size(data);
        self.len += 1;
        self.split_if_over(ni);
    }

    /// Splits an overfull node in two halves, as Redis splits a full node on insert.
    fn split_if_over(&mut self, ni: usize) {
        let node = &self.nodes[ni];
        let over = if self.fill >= 0 {
            node.sz > SIZE_SAFETY_LIMIT || node.lp.len() > self.fill.max(1) as usize
        } else {
            let level = ((-self.fill - 1) as usize).min(OPTIMIZATION_LEVEL.len() - 1);
            node.sz > OPTIMIZATION_LEVEL[level]
        };
        if !over || node.lp.len() < 2 {
            return;
        }
        let half = node.lp.len() / 2;
        let mut tail = Node::new();
        for e in node.lp.iter().skip(half) {
            tail.lp.push_back(e);
            tail.sz += lp_entry_size(e);
        }
        let node = &mut self.nodes[ni];
        node.lp.remove_range(half, node.lp.len() - half);
        node.sz -= tail.sz - LP_HDR_SIZE;
        node.lp.shrink_to_fit();
        self.nodes.insert(ni + 1, tail);
    }

    /// Removes entry `idx` (< len).
    pub fn remove(&mut self, idx: usize) {
        let (ni, off) = self.locate(idx);
        self.remove_at(ni, off);
    }

    /// Removes `count` entries from `start` (Redis's `quicklistDelRange`).
    pub fn remove_range(&mut self, start: usize, count: usize) {
        let mut count = count.min(self.len.saturating_sub(start));
        while count > 0 {
            let (ni, off) = self.locate(start);
            let node = &mut self.nodes[ni];
            let n = count.min(node.lp.len() - off);
            if n == node.lp.len() {
                self.nodes.remove(ni);
            } else {
                let removed: usize = node.lp.iter().skip(off).take(n).map(lp_entry_size).sum();
                node.lp.remove_range(off, n);
                node.sz -= removed;
            }
            self.len -= n;
            count -= n;
        }
    }

    /// Removes up to `limit` entries equal to `ele`, the first ones or (`from_tail`) the last
    /// ones, in one pass over the list (Redis's LREM). Returns how many went.
    pub fn remove_matching(&mut self, ele: &[u8], limit: usize, from_tail: bool) -> usize {
        let hits: Vec<usize> = if from_tail {
            let len = self.len;
            let mut v: Vec<usize> = self
                .iter()
                .rev()
                .enumerate()
                .filter(|(_, e)| *e == ele)
                .map(|(i, _)| len - 1 - i)
                .take(limit)
                .collect();
            v.reverse();
            v
        } else {
            self.iter().enumerate().filter(|(_, e)| *e == ele).map(|(i, _)| i).take(limit).collect()
        };
        if hits.is_empty() {
            return 0;
        }
        let mut kept = List::new(self.fill);
        let mut next_hit = hits.iter().peekable();
        for (i, e) in self.iter().enumerate() {
            if next_hit.peek() == Some(&&i) {
                next_hit.next();
            } else {
                kept.push_back(e);
            }
        }
        if let Some(last) = kept.nodes.back_mut() {
            last.lp.shrink_to_fit();
        }
        *self = kept;
        hits.len()
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &[u8]> + '_ {
        self.nodes.iter().flat_map(|n| n.lp.iter())
    }

    /// The nodes' listpacks, head to tail: RDB writes one blob per node (QUICKLIST_2).
    pub fn nodes(&self) -> impl Iterator<Item = &Listpack> + '_ {
        self.nodes.iter().map(|n| &n.lp)
    }

    /// Appends a whole node, as loading a QUICKLIST_2 keeps the file's node boundaries
    /// (Redis's `quicklistAppendListpack`). An empty listpack adds nothing.
    pub fn append_node(&mut self, lp: Listpack) {
        if lp.is_empty() {
            return;
        }
        let sz = LP_HDR_SIZE + lp.iter().map(lp_entry_size).sum::<usize>();
        self.len += lp.len();
        self.nodes.push_back(Node { lp, sz });
    }

    /// Entries `start..start + count` (clamped), front to back, without walking the prefix
    /// entry by entry.
    pub fn range(&self, start: usize, count: usize) -> impl Iterator<Item = &[u8]> + '_ {
        let (first, skip) = if start < self.len { self.locate(start) } else { (self.nodes.len(), 0) };
        let count = count.min(self.len.saturating_sub(start));
        self.nodes.iter().skip(first).flat_map(|n| n.lp.iter()).skip(skip).take(count)
    }

    /// Heap bytes held (MEMORY USAGE): the node table and each node's listpack.
    pub fn heap_bytes(&self) -> usize {
        // Redis's quicklist struct plus one 32-byte quicklistNode per node.
        let table = super::object::alloc_bytes(self.nodes.capacity() * std::mem::size_of::<Node>());
        table + 48 + self.nodes.iter().map(|n| n.lp.heap_bytes()).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::{Rng, SeededRng};

    fn check(l: &List, model: &VecDeque<Vec<u8>>) {
        assert_eq!(l.len(), model.len());
        let got: Vec<&[u8]> = l.iter().collect();
        let want: Vec<&[u8]> = model.iter().map(|v| v.as_slice()).collect();
        assert_eq!(got, want);
        let back: Vec<&[u8]> = l.iter().rev().collect();
        assert_eq!(back, want.iter().rev().copied().collect::<Vec<_>>());
        assert!(l.nodes.iter().all(|n| !n.lp.is_empty()), "no empty nodes");
        for n in &l.nodes {
            assert_eq!(n.sz, LP_HDR_SIZE + n.lp.iter().map(lp_entry_size).sum::<usize>());
        }
    }

    fn random_value(rng: &mut SeededRng) -> Vec<u8> {
        match rng.below(4) {
            0 => rng.below(100_000).to_string().into_bytes(),
            1 => vec![b'x'; rng.below(300) as usize],
            _ => format!("v{}", rng.below(1000)).into_bytes(),
        }
    }

    #[test]
    fn quicklist_matches_a_deque_under_random_edits() {
        for (seed, fill) in [(1u64, -2), (2, 4), (3, 1), (4, -1), (5, 128)] {
            let mut rng = SeededRng::from_seed(seed);
            let mut l = List::new(fill);
            let mut model: VecDeque<Vec<u8>> = VecDeque::new();
            for _ in 0..3000 {
                let v = random_value(&mut rng);
                let len = model.len() as u64;
                match rng.below(10) {
                    0 => {
                        l.push_front(&v);
                        model.push_front(v);
                    }
                    1 | 2 => {
                        l.push_back(&v);
                        model.push_back(v);
                    }
                    3 => assert_eq!(l.pop_front(), model.pop_front()),
                    4 => assert_eq!(l.pop_back(), model.pop_back()),
                    5 => {
                        let i = rng.below(len + 1) as usize;
                        l.insert(i, &v);
                        model.insert(i, v);
                    }
                    6 if len > 0 => {
                        let i = rng.below(len) as usize;
                        assert_eq!(l.get(i), Some(model[i].as_slice()));
                        l.set(i, &v);
                        model[i] = v;
                    }
                    7 if len > 0 => {
                        let i = rng.below(len) as usize;
                        l.remove(i);
                        model.remove(i);
                    }
                    9 if len > 0 => {
                        let target = model[rng.below(len) as usize].clone();
                        let limit = rng.below(4) as usize;
                        let limit = if limit == 0 { usize::MAX } else { limit };
                        let from_tail = rng.below(2) == 0;
                        let mut idx: Vec<usize> =
                            model.iter().enumerate().filter(|(_, e)| **e == target).map(|(i, _)| i).collect();
                        if from_tail {
                            idx.reverse();
                        }
                        idx.truncate(limit);
                        idx.sort_unstable();
                        for &i in idx.iter().rev() {
                            model.remove(i);
                        }
                        assert_eq!(l.remove_matching(&target, limit, from_tail), idx.len());
                    }
                    8 if len > 0 => {
                        let s = rng.below(len) as usize;
                        let c = rng.below(8) as usize;
                        let want: Vec<&[u8]> = model.iter().skip(s).take(c).map(|v| v.as_slice()).collect();
                        assert_eq!(l.range(s, c).collect::<Vec<_>>(), want);
                        l.remove_range(s, c);
                        let c = c.min(model.len() - s);
                        model.drain(s..s + c);
                    }
                    _ => {}
                }
                check(&l, &model);
            }
        }
    }

    #[test]
    fn nodes_respect_the_fill_limit() {
        let mut l = List::new(3);
        for i in 0..10 {
            l.push_back(i.to_string().as_bytes());
        }
        assert_eq!(l.nodes.len(), 4);
        let mut l = List::new(-2);
        for _ in 0..100 {
            l.push_back(&[b'a'; 100]);
        }
        assert!(l.nodes.iter().all(|n| n.sz <= 8192));
        assert!(l.nodes.len() >= 2);
    }
}

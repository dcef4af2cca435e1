//! A listpack: a sequence of byte strings packed into one allocation, as Redis keeps small
//! hashes, sorted sets and list nodes. Each entry is `[len varint][bytes][back-len]`, where
//! the trailing back-length (the varint's and the bytes' size, as one reversed varint) lets
//! iteration run from either end without an index. Operations are O(bytes); callers keep
//! listpacks small (Redis's `*-max-listpack-*` limits), which is what makes that fast.

/// Bytes a varint needs for `n`.
fn varint_len(mut n: usize) -> usize {
    let mut l = 1;
    while n >= 0x80 {
        n >>= 7;
        l += 1;
    }
    l
}

fn put_varint(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn get_varint(b: &[u8]) -> (usize, usize) {
    let (mut n, mut shift, mut i) = (0usize, 0, 0);
    loop {
        let byte = b[i];
        n |= ((byte & 0x7f) as usize) << shift;
        i += 1;
        if byte & 0x80 == 0 {
            return (n, i);
        }
        shift += 7;
    }
}

/// The back-length is written with its continuation bits so it can be read backwards.
fn put_backlen(out: &mut Vec<u8>, n: usize) {
    let mut tmp = Vec::with_capacity(4);
    put_varint(&mut tmp, n);
    tmp.reverse();
    out.extend_from_slice(&tmp);
}

/// Reads a back-length ending at `end` (exclusive); returns (value, its size).
fn get_backlen(b: &[u8], end: usize) -> (usize, usize) {
    let (mut n, mut i) = (0usize, 0);
    loop {
        let byte = b[end - 1 - i];
        n |= ((byte & 0x7f) as usize) << (7 * i);
        i += 1;
        if byte & 0x80 == 0 {
            return (n, i);
        }
    }
}

fn encoded_len(data: &[u8]) -> usize {
    let head = varint_len(data.len()) + data.len();
    head + varint_len(head)
}

fn encode(out: &mut Vec<u8>, data: &[u8]) {
    put_varint(out, data.len());
    out.extend_from_slice(data);
    put_backlen(out, varint_len(data.len()) + data.len());
}

#[derive(Clone, Default, PartialEq, Eq)]
pub struct Listpack {
    buf: Vec<u8>,
    len: usize,
}

impl Listpack {
    pub fn new() -> Self {
        Listpack::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Encoded size in bytes (Redis's `lpBytes`, for the `*-max-listpack-size` limits).
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// Heap bytes held, at the allocator's size class.
    pub fn heap_bytes(&self) -> usize {
        if self.buf.capacity() == 0 {
            0
        } else {
            crate::env::alloc::size_class(self.buf.capacity())
        }
    }

    /// Offset of entry `idx` (0-based); `idx == len` gives the end.
    fn offset(&self, idx: usize) -> usize {
        debug_assert!(idx <= self.len);
        if idx * 2 <= self.len {
            let mut off = 0;
            for _ in 0..idx {
                off = self.next_offset(off);
            }
            off
        } else {
            let mut off = self.buf.len();
            for _ in idx..self.len {
                off = self.prev_offset(off);
            }
            off
        }
    }

    fn next_offset(&self, off: usize) -> usize {
        let (n, vl) = get_varint(&self.buf[off..]);
        let head = vl + n;
        off + head + varint_len(head)
    }

    fn prev_offset(&self, end: usize) -> usize {
        let (head, bl) = get_backlen(&self.buf, end);
        end - bl - head
    }

    fn entry_at(&self, off: usize) -> &[u8] {
        let (n, vl) = get_varint(&self.buf[off..]);
        &self.buf[off + vl..off + vl + n]
    }

    pub fn get(&self, idx: usize) -> Option<&[u8]> {
        (idx < self.len).then(|| self.entry_at(self.offset(idx)))
    }

    pub fn first(&self) -> Option<&[u8]> {
        self.get(0)
    }

    pub fn last(&self) -> Option<&[u8]> {
        (self.len > 0).then(|| self.entry_at(self.prev_offset(self.buf.len())))
    }

    pub fn push_back(&mut self, data: &[u8]) {
        self.buf.reserve(encoded_len(data));
        encode(&mut self.buf, data);
        self.len += 1;
    }

    pub fn push_front(&mut self, data: &[u8]) {
        self.insert(0, data);
    }

    /// Inserts before entry `idx` (`idx == len` appends).
    pub fn insert(&mut self, idx: usize, data: &[u8]) {
        assert!(idx <= self.len, "listpack insert at {idx} of {}", self.len);
        let off = self.offset(idx);
        let mut enc = Vec::with_capacity(encoded_len(data));
        encode(&mut enc, data);
        self.buf.splice(off..off, enc);
        self.len += 1;
    }

    pub fn remove(&mut self, idx: usize) {
        assert!(idx < self.len, "listpack remove at {idx} of {}", self.len);
        let off = self.offset(idx);
        let end = self.next_offset(off);
        self.buf.drain(off..end);
        self.len -= 1;
    }

    /// Removes `count` entries starting at `idx`.
    pub fn remove_range(&mut self, idx: usize, count: usize) {
        let count = count.min(self.len.saturating_sub(idx));
        if count == 0 {
            return;
        }
        let start = self.offset(idx);
        let mut end = start;
        for _ in 0..count {
            end = self.next_offset(end);
        }
        self.buf.drain(start..end);
        self.len -= count;
    }

    pub fn replace(&mut self, idx: usize, data: &[u8]) {
        assert!(idx < self.len, "listpack replace at {idx} of {}", self.len);
        let off = self.offset(idx);
        let end = self.next_offset(off);
        let mut enc = Vec::with_capacity(encoded_len(data));
        encode(&mut enc, data);
        self.buf.splice(off..end, enc);
    }

    /// Index of the first entry equal to `data`.
    pub fn find(&self, data: &[u8]) -> Option<usize> {
        self.iter().position(|e| e == data)
    }

    pub fn iter(&self) -> Iter<'_> {
        Iter { lp: self, front: 0, back: self.buf.len(), left: self.len }
    }

    /// Gives back spare capacity (after deletions), as Redis shrinks listpacks.
    pub fn shrink_to_fit(&mut self) {
        self.buf.shrink_to_fit();
    }
}

impl std::fmt::Debug for Listpack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter().map(String::from_utf8_lossy)).finish()
    }
}

pub struct Iter<'a> {
    lp: &'a Listpack,
    front: usize,
    back: usize,
    left: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        let e = self.lp.entry_at(self.front);
        self.front = self.lp.next_offset(self.front);
        self.left -= 1;
        Some(e)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<'a> DoubleEndedIterator for Iter<'a> {
    fn next_back(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        self.back = self.lp.prev_offset(self.back);
        self.left -= 1;
        Some(self.lp.entry_at(self.back))
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::{Rng, SeededRng};

    #[test]
    fn matches_a_vec_under_random_edits() {
        for seed in 0..60 {
            let mut rng = SeededRng::from_seed(seed);
            let (mut lp, mut model): (Listpack, Vec<Vec<u8>>) = (Listpack::new(), Vec::new());
            for _ in 0..200 {
                let len = [0, 1, 5, 127, 128, 300, 17000][rng.below(7) as usize];
                let data: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
                match rng.below(6) {
                    0 => {
                        lp.push_back(&data);
                        model.push(data);
                    }
                    1 => {
                        lp.push_front(&data);
                        model.insert(0, data);
                    }
                    2 => {
                        let i = rng.below(model.len() as u64 + 1) as usize;
                        lp.insert(i, &data);
                        model.insert(i, data);
                    }
                    3 if !model.is_empty() => {
                        let i = rng.below(model.len() as u64) as usize;
                        lp.remove(i);
                        model.remove(i);
                    }
                    4 if !model.is_empty() => {
                        let i = rng.below(model.len() as u64) as usize;
                        lp.replace(i, &data);
                        model[i] = data;
                    }
                    _ if !model.is_empty() => {
                        let i = rng.below(model.len() as u64) as usize;
                        let n = rng.below(4) as usize;
                        lp.remove_range(i, n);
                        model.drain(i..(i + n).min(model.len()));
                    }
                    _ => {}
                }
                assert_eq!(lp.len(), model.len());
            }
            let fwd: Vec<&[u8]> = lp.iter().collect();
            let want: Vec<&[u8]> = model.iter().map(|v| v.as_slice()).collect();
            assert_eq!(fwd, want, "seed {seed}");
            let back: Vec<&[u8]> = lp.iter().rev().collect();
            assert_eq!(back, want.iter().rev().copied().collect::<Vec<_>>(), "seed {seed}");
            for (i, v) in model.iter().enumerate() {
                assert_eq!(lp.get(i), Some(v.as_slice()));
            }
            assert_eq!(lp.last(), model.last().map(|v| v.as_slice()));
        }
    }

    #[test]
    fn small_entries_cost_two_bytes_of_overhead() {
        let mut lp = Listpack::new();
        lp.push_back(b"field");
        assert_eq!(lp.bytes(), 1 + 5 + 1);
    }
}

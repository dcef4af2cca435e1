//! The replication backlog: the last `repl-backlog-size` bytes of the replication stream, so
//! that a replica that lost its link can continue from its offset (PSYNC) instead of loading a
//! whole new RDB. Offsets are Redis's: the stream's first byte has offset 1, and
//! `master_repl_offset` is the offset of the last byte fed.

/// A ring of the most recent stream bytes, with the offset of the oldest one kept.
#[derive(Debug, Clone)]
pub struct Backlog {
    buf: Vec<u8>,
    /// Where the next byte goes.
    idx: usize,
    /// How many bytes of `buf` hold stream data (≤ its length).
    histlen: usize,
    /// Stream offset of the oldest byte kept (`repl_backlog_first_byte_offset`).
    first_offset: u64,
}

impl Backlog {
    /// An empty backlog of `size` bytes whose next byte has offset `master_repl_offset + 1`
    /// (Redis's `createReplicationBacklog`).
    pub fn new(size: usize, master_repl_offset: u64) -> Self {
        Backlog { buf: vec![0; size.max(1)], idx: 0, histlen: 0, first_offset: master_repl_offset + 1 }
    }

    pub fn size(&self) -> usize {
        self.buf.len()
    }

    pub fn histlen(&self) -> usize {
        self.histlen
    }

    pub fn first_byte_offset(&self) -> u64 {
        self.first_offset
    }

    /// Appends stream bytes, dropping the oldest ones beyond the size.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        let size = self.buf.len();
        if bytes.len() >= size {
            // Only the last `size` bytes can stay.
            let skip = bytes.len() - size;
            self.first_offset += (self.histlen + skip) as u64;
            bytes = &bytes[skip..];
            self.buf.copy_from_slice(bytes);
            self.idx = 0;
            self.histlen = size;
            return;
        }
        let total = bytes.len();
        while !bytes.is_empty() {
            let n = (size - self.idx).min(bytes.len());
            self.buf[self.idx..self.idx + n].copy_from_slice(&bytes[..n]);
            self.idx = (self.idx + n) % size;
            bytes = &bytes[n..];
        }
        let new_len = self.histlen + total;
        if new_len > size {
            self.first_offset += (new_len - size) as u64;
            self.histlen = size;
        } else {
            self.histlen = new_len;
        }
    }

    /// The bytes from stream offset `from` to the end, as two slices (the ring may wrap), when
    /// the backlog still holds `from`; `from` one past the end gives empty slices.
    pub fn since(&self, from: u64) -> Option<(&[u8], &[u8])> {
        let end = self.first_offset + self.histlen as u64;
        if from < self.first_offset || from > end {
            return None;
        }
        let mut skip = (from - self.first_offset) as usize;
        if from < end && super::planted(super::PlantedBug::BacklogOffByOne) {
            skip += 1;
        }
        let want = self.histlen - skip;
        let size = self.buf.len();
        // The oldest byte sits `histlen` bytes behind the write index.
        let start = (self.idx + size - self.histlen + skip) % size;
        if start + want <= size {
            Some((&self.buf[start..start + want], &[]))
        } else {
            Some((&self.buf[start..], &self.buf[..want - (size - start)]))
        }
    }

    /// Changes the size, keeping the newest bytes that fit (CONFIG SET repl-backlog-size).
    pub fn resize(&mut self, size: usize) {
        let size = size.max(1);
        if size == self.buf.len() {
            return;
        }
        let (a, b) = self.since(self.first_offset).expect("the first offset is held");
        let mut data = Vec::with_capacity(self.histlen);
        data.extend_from_slice(a);
        data.extend_from_slice(b);
        let first = self.first_offset;
        *self = Backlog { buf: vec![0; size], idx: 0, histlen: 0, first_offset: first };
        self.feed(&data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::{Rng, SeededRng};

    fn joined(b: &Backlog, from: u64) -> Option<Vec<u8>> {
        b.since(from).map(|(x, y)| [x, y].concat())
    }

    #[test]
    fn offsets_start_after_the_master_offset_and_advance_with_the_bytes() {
        let mut b = Backlog::new(10, 100);
        assert_eq!(b.first_byte_offset(), 101);
        b.feed(b"abcd");
        assert_eq!(b.histlen(), 4);
        assert_eq!(joined(&b, 101).unwrap(), b"abcd");
        assert_eq!(joined(&b, 103).unwrap(), b"cd");
        assert_eq!(joined(&b, 105).unwrap(), b"");
        assert_eq!(b.since(106), None);
        assert_eq!(b.since(100), None);
    }

    #[test]
    fn old_bytes_fall_off_the_ring() {
        let mut b = Backlog::new(8, 0);
        b.feed(b"0123456789");
        assert_eq!((b.first_byte_offset(), b.histlen()), (3, 8));
        assert_eq!(joined(&b, 3).unwrap(), b"23456789");
        b.feed(b"ab");
        assert_eq!(b.first_byte_offset(), 5);
        assert_eq!(joined(&b, 5).unwrap(), b"456789ab");
        assert_eq!(b.since(4), None);
    }

    /// A model check: the ring always holds exactly the last `size` bytes of the stream.
    #[test]
    fn the_ring_equals_the_tail_of_the_stream_for_random_feeds_and_resizes() {
        let mut rng = SeededRng::from_seed(7);
        for _ in 0..200 {
            let mut size = 1 + rng.below(40) as usize;
            let start = rng.below(1000);
            let mut b = Backlog::new(size, start);
            let mut stream: Vec<u8> = Vec::new();
            // How much of the stream the ring must hold: shrinking loses bytes for good.
            let mut kept = 0;
            for step in 0..30 {
                if step % 7 == 6 {
                    size = 1 + rng.below(40) as usize;
                    b.resize(size);
                    kept = kept.min(size);
                } else {
                    let n = rng.below(30) as usize;
                    let chunk: Vec<u8> = (0..n).map(|_| rng.below(256) as u8).collect();
                    b.feed(&chunk);
                    stream.extend_from_slice(&chunk);
                    kept = (kept + n).min(size);
                }
                assert_eq!(b.histlen(), kept);
                let tail = &stream[stream.len() - kept..];
                let first = start + 1 + (stream.len() - kept) as u64;
                assert_eq!(b.first_byte_offset(), first);
                assert_eq!(joined(&b, first).unwrap(), tail);
                for k in 0..=kept {
                    assert_eq!(joined(&b, first + k as u64).unwrap(), &tail[k..]);
                }
            }
        }
    }
}

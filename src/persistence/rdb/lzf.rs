//! LZF compression exactly as Redis's vendored liblzf 3.6 (`lzf_c.c` with Redis's `lzfP.h`:
//! HLOG 16, VERY_FAST, a zeroed hash table). DUMP payloads and RDB files must be
//! byte-identical to Redis's, and the `lzf` crate's compressor differs near the end of the
//! input (it never starts a back reference within 4 bytes of the end, liblzf does), so the
//! compressor lives here; decompression, where any valid encoder's output must be accepted,
//! uses the crate.

const HLOG: u32 = 16;
const HSIZE: usize = 1 << HLOG;
const MAX_LIT: usize = 1 << 5;
const MAX_OFF: usize = 1 << 13;
const MAX_REF: usize = (1 << 8) + (1 << 3);
/// Match lengths compared before the bounded loop (liblzf's unrolled prefix).
const UNROLLED_MATCH: usize = 16;

fn first(p: &[u8], i: usize) -> u32 {
    (u32::from(p[i]) << 8) | u32::from(p[i + 1])
}

fn next(v: u32, p: &[u8], i: usize) -> u32 {
    (v << 8) | u32::from(p[i + 2])
}

fn idx(h: u32) -> usize {
    ((h >> (3 * 8 - HLOG)).wrapping_sub(h.wrapping_mul(5)) & (HSIZE as u32 - 1)) as usize
}

/// Length of the match at `ip` against `r`, as liblzf counts it (including its unrolled
/// first 16 steps, which may run past `maxlen` by design).
fn match_len(input: &[u8], r: usize, ip: usize, maxlen: usize) -> usize {
    let mut len = 2;
    if maxlen > UNROLLED_MATCH {
        for _ in 0..UNROLLED_MATCH {
            len += 1;
            if input[r + len] != input[ip + len] {
                return len;
            }
        }
    }
    loop {
        len += 1;
        if !(len < maxlen && input[r + len] == input[ip + len]) {
            return len;
        }
    }
}

/// Copies one literal byte into the open run, closing the run (its length byte) at
/// `MAX_LIT` and opening the next.
fn literal(out: &mut [u8], op: &mut usize, lit: &mut usize, byte: u8) {
    *lit += 1;
    out[*op] = byte;
    *op += 1;
    if *lit == MAX_LIT {
        out[*op - *lit - 1] = (*lit - 1) as u8;
        *lit = 0;
        *op += 1;
    }
}

/// `lzf_compress(input, in_len, out, out_len)`: `None` when the output would not fit in
/// `out_len` bytes (liblzf returns 0).
pub fn compress(input: &[u8], out_len: usize) -> Option<Vec<u8>> {
    if input.len() < 3 || out_len == 0 {
        return None;
    }
    HTAB.with(|t| {
        let mut t = t.borrow_mut();
        let out = compress_with(&mut t, input, out_len);
        t.clear();
        out
    })
}

/// liblzf's hash table, zeroed before each use, as Redis's is. A fresh 512 KB table per
/// call cost a page fault per page touched (most of a BGSAVE of small strings went there),
/// so each thread keeps one and zeroes only the slots the last call set.
struct HashTable {
    slots: Vec<usize>,
    touched: Vec<usize>,
}

impl HashTable {
    fn get(&self, slot: usize) -> usize {
        self.slots[slot]
    }
    fn set(&mut self, slot: usize, ip: usize) {
        if self.slots[slot] == 0 {
            self.touched.push(slot);
        }
        self.slots[slot] = ip;
    }
    fn clear(&mut self) {
        for &s in &self.touched {
            self.slots[s] = 0;
        }
        self.touched.clear();
    }
}

thread_local! {
    static HTAB: std::cell::RefCell<HashTable> =
        std::cell::RefCell::new(HashTable { slots: vec![0; HSIZE], touched: Vec::new() });
}

fn compress_with(htab: &mut HashTable, input: &[u8], out_len: usize) -> Option<Vec<u8>> {
    let in_end = input.len();
    let mut out = vec![0u8; out_len + 1];
    let (mut ip, mut op, mut lit) = (0usize, 1usize, 0usize);
    let mut hval = first(input, ip);
    while ip < in_end - 2 {
        hval = next(hval, input, ip);
        let slot = idx(hval);
        let r = htab.get(slot);
        htab.set(slot, ip);
        if r > 0
            && r < ip
            && ip - r - 1 < MAX_OFF
            && input[r + 2] == input[ip + 2]
            && input[r..r + 2] == input[ip..ip + 2]
        {
            let off = ip - r - 1;
            let maxlen = (in_end - ip - 2).min(MAX_REF);
            if op + 3 + 1 >= out_len && op - usize::from(lit == 0) + 3 + 1 >= out_len {
                return None;
            }
            out[op - lit - 1] = (lit as u8).wrapping_sub(1);
            op -= usize::from(lit == 0);
            let len = match_len(input, r, ip, maxlen) - 2;
            ip += 1;
            if len < 7 {
                out[op] = (off >> 8) as u8 + ((len as u8) << 5);
                op += 1;
            } else {
                out[op] = (off >> 8) as u8 + (7 << 5);
                out[op + 1] = (len - 7) as u8;
                op += 2;
            }
            out[op] = off as u8;
            op += 2;
            lit = 0;
            ip += len + 1;
            if ip >= in_end - 2 {
                break;
            }
            ip -= 2;
            hval = first(input, ip);
            hval = next(hval, input, ip);
            htab.set(idx(hval), ip);
            ip += 1;
            hval = next(hval, input, ip);
            htab.set(idx(hval), ip);
            ip += 1;
        } else {
            if op >= out_len {
                return None;
            }
            literal(&mut out, &mut op, &mut lit, input[ip]);
            ip += 1;
        }
    }
    if op + 3 > out_len {
        return None;
    }
    while ip < in_end {
        literal(&mut out, &mut op, &mut lit, input[ip]);
        ip += 1;
    }
    out[op - lit - 1] = (lit as u8).wrapping_sub(1);
    op -= usize::from(lit == 0);
    out.truncate(op);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reused_table_leaves_no_trace_of_earlier_inputs() {
        let a: Vec<u8> = b"abcabcabcabd-xyzxyzxyz-abcabcabcabd".repeat(40);
        let b: Vec<u8> = b"xyzxyzabcabd".repeat(300);
        let first = compress(&a, a.len()).expect("compressible");
        let _ = compress(&b, b.len());
        // An early None (no room) clears the table too.
        assert_eq!(compress(&b, 8), None);
        assert_eq!(compress(&a, a.len()), Some(first));
    }

    #[test]
    fn output_decompresses_to_the_input() {
        let mut seed = 7u64;
        for len in [3usize, 21, 50, 100, 1000, 9000, 70000] {
            for alphabet in [2u64, 4, 26, 256] {
                let data: Vec<u8> = (0..len)
                    .map(|_| {
                        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                        (b'a' as u64 + (seed >> 33) % alphabet) as u8
                    })
                    .collect();
                if let Some(c) = compress(&data, len - 1) {
                    assert!(c.len() < len);
                    assert_eq!(lzf::decompress(&c, len).unwrap(), data, "len {len} alphabet {alphabet}");
                }
            }
        }
    }

    #[test]
    fn matches_redis_on_a_run_of_one_byte() {
        // Redis's DUMP of SET k <50 x 'a'>: c3 09 32 | 01 61 61 e0 25 00 01 61 61.
        assert_eq!(compress(&[b'a'; 50], 46).unwrap(), [0x01, 0x61, 0x61, 0xe0, 0x25, 0x00, 0x01, 0x61, 0x61]);
    }
}

//! Redis's packed encodings as they appear inside RDB strings: listpack (written and read),
//! intset (written and read), and the older ziplist and zipmap (read only: Redis 7.0 still
//! loads them and converts). The engine keeps its own in-memory layouts (engine/listpack.rs,
//! engine/set.rs), so these byte formats live here, beside the file format that carries them.
//!
//! Readers never trust a length field: every size is checked against the blob before use, and
//! a failure is a message the caller turns into an `RdbError` at the blob's offset.

use crate::protocol::parser::parse_ll;

/// Listpack header: total bytes (u32) + element count (u16).
const LP_HDR_SIZE: usize = 6;
const LP_EOF: u8 = 0xFF;
/// An element count of this value means "count by walking" (Redis's `LP_HDR_NUMELE_UNKNOWN`).
const LP_NUMELE_UNKNOWN: u16 = u16::MAX;

/// An integer as the listpack encodes strings that look like one (Redis's `lpStringToInt64`,
/// which is `string2ll`'s strict rule: no sign on zero, no leading zeros, no spaces).
fn as_int(ele: &[u8]) -> Option<i64> {
    if ele.len() > 20 {
        return None;
    }
    parse_ll(ele)
}

/// Appends one listpack entry (encoding, data, back-length) for `ele`.
fn lp_encode_entry(out: &mut Vec<u8>, ele: &[u8]) {
    let start = out.len();
    match as_int(ele) {
        Some(v) if (0..=127).contains(&v) => out.push(v as u8),
        Some(v) if (-4096..=4095).contains(&v) => {
            let u = (v as u64) & 0x1fff;
            out.extend_from_slice(&[0xC0 | (u >> 8) as u8, u as u8]);
        }
        Some(v) if (-32768..=32767).contains(&v) => {
            out.push(0xF1);
            out.extend_from_slice(&(v as i16).to_le_bytes());
        }
        Some(v) if (-8_388_608..=8_388_607).contains(&v) => {
            out.push(0xF2);
            out.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
        }
        Some(v) if (i64::from(i32::MIN)..=i64::from(i32::MAX)).contains(&v) => {
            out.push(0xF3);
            out.extend_from_slice(&(v as i32).to_le_bytes());
        }
        Some(v) => {
            out.push(0xF4);
            out.extend_from_slice(&v.to_le_bytes());
        }
        None => {
            let n = ele.len();
            if n < 64 {
                out.push(0x80 | n as u8);
            } else if n < 4096 {
                out.extend_from_slice(&[0xE0 | (n >> 8) as u8, n as u8]);
            } else {
                out.push(0xF0);
                out.extend_from_slice(&(n as u32).to_le_bytes());
            }
            out.extend_from_slice(ele);
        }
    }
    lp_encode_backlen(out, out.len() - start);
}

/// Redis's `lpEncodeBacklen`: big-endian 7-bit groups, every byte but the first flagged, so
/// that reading right to left stops at the unflagged one.
fn lp_encode_backlen(out: &mut Vec<u8>, l: usize) {
    let mut groups = vec![(l & 127) as u8];
    let mut rest = l >> 7;
    while rest > 0 {
        groups.push((rest & 127) as u8);
        rest >>= 7;
    }
    for (i, g) in groups.iter().rev().enumerate() {
        out.push(if i == 0 { *g } else { g | 128 });
    }
}

/// A Redis listpack holding `elements` in order, byte-identical to what Redis builds by
/// appending them one by one.
pub fn listpack_build<'a>(elements: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = vec![0u8; LP_HDR_SIZE];
    let mut count = 0usize;
    for e in elements {
        lp_encode_entry(&mut out, e);
        count += 1;
    }
    out.push(LP_EOF);
    let total = out.len() as u32;
    out[..4].copy_from_slice(&total.to_le_bytes());
    let numele = if count < LP_NUMELE_UNKNOWN as usize { count as u16 } else { LP_NUMELE_UNKNOWN };
    out[4..6].copy_from_slice(&numele.to_le_bytes());
    out
}

/// One decoded entry: integers come back as Redis prints them.
#[derive(Debug)]
pub enum Ele<'a> {
    Int(i64),
    Str(&'a [u8]),
}

impl Ele<'_> {
    pub fn to_vec(&self) -> Vec<u8> {
        match self {
            Ele::Int(v) => itoa::Buffer::new().format(*v).as_bytes().to_vec(),
            Ele::Str(s) => s.to_vec(),
        }
    }
}

fn take<'a>(b: &'a [u8], pos: usize, n: usize, what: &str) -> Result<&'a [u8], String> {
    pos.checked_add(n).and_then(|end| b.get(pos..end)).ok_or_else(|| format!("{what} runs past the end"))
}

fn sign_extend(v: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((v << shift) as i64) >> shift
}

/// Every entry of a Redis listpack, validated as Redis's `lpValidateIntegrity(deep)`: the
/// header's size matches the blob, each entry and its back-length are consistent, the count
/// matches and the terminator is where it should be.
pub fn listpack_parse(b: &[u8]) -> Result<Vec<Ele<'_>>, String> {
    if b.len() < LP_HDR_SIZE + 1 {
        return Err("listpack too short".into());
    }
    let total = u32::from_le_bytes(b[..4].try_into().expect("4 bytes")) as usize;
    if total != b.len() {
        return Err(format!("listpack header says {total} bytes, blob has {}", b.len()));
    }
    let numele = u16::from_le_bytes([b[4], b[5]]);
    if b[b.len() - 1] != LP_EOF {
        return Err("listpack does not end with its terminator".into());
    }
    let end = b.len() - 1;
    let mut pos = LP_HDR_SIZE;
    let mut out = Vec::with_capacity(usize::from(numele).min(end - pos));
    while pos < end {
        let start = pos;
        let enc = b[pos];
        let ele = match enc {
            0x00..=0x7F => {
                pos += 1;
                Ele::Int(i64::from(enc))
            }
            0x80..=0xBF => {
                let n = usize::from(enc & 0x3F);
                let s = take(b, pos + 1, n, "listpack string")?;
                pos += 1 + n;
                Ele::Str(s)
            }
            0xC0..=0xDF => {
                let d = take(b, pos, 2, "listpack integer")?;
                pos += 2;
                Ele::Int(sign_extend((u64::from(d[0] & 0x1F) << 8) | u64::from(d[1]), 13))
            }
            0xE0..=0xEF => {
                let d = take(b, pos, 2, "listpack string length")?;
                let n = (usize::from(d[0] & 0x0F) << 8) | usize::from(d[1]);
                let s = take(b, pos + 2, n, "listpack string")?;
                pos += 2 + n;
                Ele::Str(s)
            }
            0xF0 => {
                let d = take(b, pos + 1, 4, "listpack string length")?;
                let n = u32::from_le_bytes(d.try_into().expect("4 bytes")) as usize;
                let s = take(b, pos + 5, n, "listpack string")?;
                pos += 5 + n;
                Ele::Str(s)
            }
            0xF1..=0xF4 => {
                let width = [2usize, 3, 4, 8][usize::from(enc - 0xF1)];
                let d = take(b, pos + 1, width, "listpack integer")?;
                let mut le = [0u8; 8];
                le[..width].copy_from_slice(d);
                pos += 1 + width;
                Ele::Int(sign_extend(u64::from_le_bytes(le), 8 * width as u32))
            }
            _ => return Err(format!("invalid listpack encoding byte 0x{enc:02x}")),
        };
        let entry_len = pos - start;
        let mut backlen = Vec::new();
        lp_encode_backlen(&mut backlen, entry_len);
        if take(b, pos, backlen.len(), "listpack back-length")? != backlen.as_slice() {
            return Err("listpack back-length does not match its entry".into());
        }
        pos += backlen.len();
        if pos > end {
            return Err("listpack entry runs into the terminator".into());
        }
        out.push(ele);
    }
    if numele != LP_NUMELE_UNKNOWN && usize::from(numele) != out.len() {
        return Err(format!("listpack header says {numele} entries, found {}", out.len()));
    }
    Ok(out)
}

/// A Redis intset of sorted distinct `values` at the width Redis would use (the widest the
/// values need, or `min_width` when the set was once wider: intsets never narrow).
pub fn intset_build(values: &[i64], min_width: u8) -> Vec<u8> {
    let need = values
        .iter()
        .map(|&v| {
            if i16::try_from(v).is_ok() {
                2
            } else if i32::try_from(v).is_ok() {
                4
            } else {
                8
            }
        })
        .max()
        .unwrap_or(2);
    let width = need.max(min_width);
    let mut out = Vec::with_capacity(8 + values.len() * usize::from(width));
    out.extend_from_slice(&u32::from(width).to_le_bytes());
    out.extend_from_slice(&(values.len() as u32).to_le_bytes());
    for v in values {
        out.extend_from_slice(&v.to_le_bytes()[..usize::from(width)]);
    }
    out
}

/// The members of an intset blob, checked as Redis's `intsetValidateIntegrity(deep)`: known
/// width, exact size, strictly ascending.
pub fn intset_parse(b: &[u8]) -> Result<Vec<i64>, String> {
    if b.len() < 8 {
        return Err("intset too short".into());
    }
    let width = u32::from_le_bytes(b[..4].try_into().expect("4 bytes")) as usize;
    if !matches!(width, 2 | 4 | 8) {
        return Err(format!("intset has invalid encoding {width}"));
    }
    let count = u32::from_le_bytes(b[4..8].try_into().expect("4 bytes")) as usize;
    if count.checked_mul(width) != Some(b.len() - 8) {
        return Err(format!("intset of {count} entries of {width} bytes does not fill {} bytes", b.len()));
    }
    let mut out: Vec<i64> = Vec::with_capacity(count);
    for chunk in b[8..].chunks_exact(width) {
        let mut le = [0u8; 8];
        le[..width].copy_from_slice(chunk);
        let v = sign_extend(u64::from_le_bytes(le), 8 * width as u32);
        if out.last().is_some_and(|&last| last >= v) {
            return Err("intset is not sorted or has duplicates".into());
        }
        out.push(v);
    }
    Ok(out)
}

/// Every entry of a ziplist (Redis before 7.0 packed small lists, hashes and zsets in it):
/// `zlbytes zltail zllen entries... 0xFF`, each entry `prevlen encoding data`.
pub fn ziplist_parse(b: &[u8]) -> Result<Vec<Ele<'_>>, String> {
    const ZL_HDR: usize = 10;
    if b.len() < ZL_HDR + 1 {
        return Err("ziplist too short".into());
    }
    let total = u32::from_le_bytes(b[..4].try_into().expect("4 bytes")) as usize;
    if total != b.len() {
        return Err(format!("ziplist header says {total} bytes, blob has {}", b.len()));
    }
    let tail = u32::from_le_bytes(b[4..8].try_into().expect("4 bytes")) as usize;
    let count = u16::from_le_bytes([b[8], b[9]]);
    let end = b.len() - 1;
    if b[end] != 0xFF {
        return Err("ziplist does not end with its terminator".into());
    }
    let mut pos = ZL_HDR;
    let mut prev_len = 0usize;
    let mut last_start = ZL_HDR;
    let mut out = Vec::new();
    while pos < end {
        let start = pos;
        let (prevlen, plen_size) = if b[pos] < 254 {
            (usize::from(b[pos]), 1)
        } else if b[pos] == 254 {
            let d = take(b, pos + 1, 4, "ziplist prevlen")?;
            (u32::from_le_bytes(d.try_into().expect("4 bytes")) as usize, 5)
        } else {
            return Err("ziplist entry with an invalid prevlen".into());
        };
        if prevlen != prev_len {
            return Err("ziplist prevlen does not match the previous entry".into());
        }
        pos += plen_size;
        let enc = *b.get(pos).ok_or("ziplist entry runs past the end")?;
        let ele = match enc >> 6 {
            0 => {
                let n = usize::from(enc & 0x3F);
                let s = take(b, pos + 1, n, "ziplist string")?;
                pos += 1 + n;
                Ele::Str(s)
            }
            1 => {
                let d = take(b, pos, 2, "ziplist string length")?;
                let n = (usize::from(d[0] & 0x3F) << 8) | usize::from(d[1]);
                let s = take(b, pos + 2, n, "ziplist string")?;
                pos += 2 + n;
                Ele::Str(s)
            }
            2 => {
                if enc != 0x80 {
                    return Err(format!("invalid ziplist encoding byte 0x{enc:02x}"));
                }
                let d = take(b, pos + 1, 4, "ziplist string length")?;
                let n = u32::from_be_bytes(d.try_into().expect("4 bytes")) as usize;
                let s = take(b, pos + 5, n, "ziplist string")?;
                pos += 5 + n;
                Ele::Str(s)
            }
            _ => {
                let width = match enc {
                    0xC0 => 2,
                    0xD0 => 4,
                    0xE0 => 8,
                    0xF0 => 3,
                    0xFE => 1,
                    0xF1..=0xFD => 0,
                    _ => return Err(format!("invalid ziplist encoding byte 0x{enc:02x}")),
                };
                if width == 0 {
                    pos += 1;
                    Ele::Int(i64::from((enc & 0x0F) - 1))
                } else {
                    let d = take(b, pos + 1, width, "ziplist integer")?;
                    let mut le = [0u8; 8];
                    le[..width].copy_from_slice(d);
                    pos += 1 + width;
                    Ele::Int(sign_extend(u64::from_le_bytes(le), 8 * width as u32))
                }
            }
        };
        if pos > end {
            return Err("ziplist entry runs into the terminator".into());
        }
        prev_len = pos - start;
        last_start = start;
        out.push(ele);
    }
    if tail != last_start {
        return Err("ziplist tail offset does not point at the last entry".into());
    }
    if count != u16::MAX && usize::from(count) != out.len() {
        return Err(format!("ziplist header says {count} entries, found {}", out.len()));
    }
    Ok(out)
}

/// A field and its value inside a blob.
pub type Pair<'a> = (&'a [u8], &'a [u8]);

/// The field, value pairs of a zipmap (Redis before 2.6 packed small hashes in it):
/// `zmlen (len key len free value free-bytes)... 0xFF`.
pub fn zipmap_parse(b: &[u8]) -> Result<Vec<Pair<'_>>, String> {
    fn zm_len(b: &[u8], pos: &mut usize) -> Result<usize, String> {
        let first = *b.get(*pos).ok_or("zipmap runs past the end")?;
        match first {
            0..=253 => {
                *pos += 1;
                Ok(usize::from(first))
            }
            254 => {
                let d = take(b, *pos + 1, 4, "zipmap length")?;
                *pos += 5;
                Ok(u32::from_le_bytes(d.try_into().expect("4 bytes")) as usize)
            }
            _ => Err("zipmap length where its end was".into()),
        }
    }
    if b.len() < 2 {
        return Err("zipmap too short".into());
    }
    let mut pos = 1;
    let mut out = Vec::new();
    loop {
        match b.get(pos) {
            None => return Err("zipmap has no terminator".into()),
            Some(0xFF) => break,
            Some(_) => {}
        }
        let klen = zm_len(b, &mut pos)?;
        let key = take(b, pos, klen, "zipmap key")?;
        pos += klen;
        let vlen = zm_len(b, &mut pos)?;
        let free = usize::from(*b.get(pos).ok_or("zipmap runs past the end")?);
        pos += 1;
        let val = take(b, pos, vlen, "zipmap value")?;
        pos += vlen;
        take(b, pos, free, "zipmap free space")?;
        pos += free;
        out.push((key, val));
    }
    if pos + 1 != b.len() {
        return Err("zipmap has bytes after its terminator".into());
    }
    if b[0] < 254 && usize::from(b[0]) != out.len() {
        return Err(format!("zipmap header says {} entries, found {}", b[0], out.len()));
    }
    Ok(out)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    fn parsed(b: &[u8]) -> Vec<Vec<u8>> {
        listpack_parse(b).unwrap().iter().map(Ele::to_vec).collect()
    }

    #[test]
    fn listpack_encodes_integers_and_strings_as_redis() {
        // Bytes of Redis 7.0's listpack for RPUSH l 1 -1 300 hello.
        let lp = listpack_build([&b"1"[..], b"-1", b"300", b"hello"]);
        assert_eq!(lp, b"\x16\x00\x00\x00\x04\x00\x01\x01\xdf\xff\x02\xc1\x2c\x02\x85hello\x06\xff");
        assert_eq!(parsed(&lp), vec![b"1".to_vec(), b"-1".to_vec(), b"300".to_vec(), b"hello".to_vec()]);
    }

    #[test]
    fn listpack_round_trips_every_width() {
        let long = vec![b'x'; 5000];
        let mid = vec![b'y'; 200];
        let items: Vec<&[u8]> = vec![
            b"0",
            b"127",
            b"128",
            b"-4096",
            b"4095",
            b"-32768",
            b"32767",
            b"8388607",
            b"-8388608",
            b"2147483647",
            b"-2147483648",
            b"9223372036854775807",
            b"-9223372036854775808",
            b"-0",
            b"007",
            b"",
            &mid,
            &long,
        ];
        let lp = listpack_build(items.iter().copied());
        assert_eq!(parsed(&lp), items.iter().map(|i| i.to_vec()).collect::<Vec<_>>());
    }

    #[test]
    fn listpack_backlen_uses_two_bytes_past_127() {
        let mut out = Vec::new();
        lp_encode_backlen(&mut out, 202);
        assert_eq!(out, [1, 74 | 128]);
    }

    #[test]
    fn listpack_corruption_is_an_error() {
        let lp = listpack_build([&b"hello"[..], b"world"]);
        for cut in 0..lp.len() {
            assert!(listpack_parse(&lp[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = lp.clone();
        bad[4] = 3;
        assert!(listpack_parse(&bad).unwrap_err().contains("entries"));
        let mut bad = lp.clone();
        bad[12] ^= 1; // back-length of the first entry
        assert!(listpack_parse(&bad).is_err());
    }

    #[test]
    fn intset_round_trip_and_checks() {
        let b = intset_build(&[1, 2, 70000], 2);
        assert_eq!(&b[..8], &[4, 0, 0, 0, 3, 0, 0, 0]);
        assert_eq!(intset_parse(&b).unwrap(), vec![1, 2, 70000]);
        assert!(intset_parse(&intset_build(&[5, 5], 2)).is_err());
        assert!(intset_parse(&b[..b.len() - 1]).is_err());
    }

    /// A ziplist built by hand as Redis 6 wrote one for RPUSH l a 12 300 (prevlen, enc, data).
    pub fn sample_ziplist() -> Vec<u8> {
        let entries: [&[u8]; 3] = [&[0x00, 0x01, b'a'], &[0x03, 0xFE, 12], &[0x03, 0xC0, 0x2C, 0x01]];
        let mut body = Vec::new();
        let mut tail = 10;
        for e in entries {
            tail = 10 + body.len();
            body.extend_from_slice(e);
        }
        let total = 10 + body.len() + 1;
        let mut zl = Vec::new();
        zl.extend_from_slice(&(total as u32).to_le_bytes());
        zl.extend_from_slice(&(tail as u32).to_le_bytes());
        zl.extend_from_slice(&3u16.to_le_bytes());
        zl.extend_from_slice(&body);
        zl.push(0xFF);
        zl
    }

    #[test]
    fn ziplist_entries_decode() {
        let zl = sample_ziplist();
        let got: Vec<Vec<u8>> = ziplist_parse(&zl).unwrap().iter().map(Ele::to_vec).collect();
        assert_eq!(got, vec![b"a".to_vec(), b"12".to_vec(), b"300".to_vec()]);
        for cut in 0..zl.len() {
            assert!(ziplist_parse(&zl[..cut]).is_err());
        }
    }

    #[test]
    fn zipmap_pairs_decode() {
        let zm = b"\x02\x03foo\x03\x01bar!\x01k\x01\x00v\xff";
        assert_eq!(zipmap_parse(zm).unwrap(), vec![(&b"foo"[..], &b"bar"[..]), (&b"k"[..], &b"v"[..])]);
        assert!(zipmap_parse(&zm[..zm.len() - 1]).is_err());
    }
}

//! Bitmap commands on strings (Redis's `bitops.c`). Bits are numbered from the most
//! significant bit of the first byte; a missing key reads as an endless run of zero bits.
//! Writes turn the string raw (Redis's `dbUnshareStringValue`) and grow it with zeros.

use bytes::Bytes;

use super::{as_str, as_str_mut, int_arg, CmdError, CmdResult, Ctx, Handler};
use crate::engine::object::{RObj, Str, Value};
use crate::server::notify::class;

pub static COMMANDS: &[(&str, Handler)] = &[
    ("setbit", setbit),
    ("getbit", getbit),
    ("bitcount", bitcount),
    ("bitpos", bitpos),
    ("bitop", bitop),
    ("bitfield", bitfield),
    ("bitfield_ro", bitfield_ro),
];

const BIT_OFFSET_ERR: &str = "bit offset is not an integer or out of range";
const BITFIELD_TYPE_ERR: &str =
    "Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";

/// Redis's `getBitOffsetFromArgument`: a bit offset, or with `#N` (BITFIELD) N times the
/// field width. Offsets whose byte would pass proto-max-bulk-len are refused.
fn bit_offset_arg(ctx: &Ctx, arg: &[u8], hash_bits: Option<u32>) -> Result<u64, CmdError> {
    let err = || CmdError::err(BIT_OFFSET_ERR);
    let (digits, mul) = match (arg.first(), hash_bits) {
        (Some(b'#'), Some(bits)) => (&arg[1..], bits as i64),
        _ => (arg, 1),
    };
    let n = int_arg(digits).map_err(|_| err())?.wrapping_mul(mul);
    if n < 0 || (n as u64 >> 3) >= ctx.srv.config.hot.proto_max_bulk_len {
        return Err(err());
    }
    Ok(n as u64)
}

/// Redis's `getBitfieldTypeFromArgument`: `i1`..`i64` or `u1`..`u63`.
fn bitfield_type_arg(arg: &[u8]) -> Result<(bool, u32), CmdError> {
    let err = || CmdError::err(BITFIELD_TYPE_ERR);
    let signed = match arg.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return Err(err()),
    };
    // C reads the width with strlen: it stops at a NUL.
    let digits = arg[1..].split(|&c| c == 0).next().unwrap_or(&[]);
    let bits = crate::util::arg_i64(digits).ok_or_else(err)?;
    if bits < 1 || (signed && bits > 64) || (!signed && bits > 63) {
        return Err(err());
    }
    Ok((signed, bits as u32))
}

/// Strings past this grow by this much instead of doubling (Redis's `SDS_MAX_PREALLOC`).
const SDS_MAX_PREALLOC: usize = 1024 * 1024; // bytes

/// Redis's greedy `sdsMakeRoomFor`: room for `addlen` more bytes, doubling the needed
/// length below 1MB, with the capacity the allocator's size class really gives (as
/// `s_malloc_usable`), so held memory matches Redis's.
pub(super) fn sds_make_room(v: &mut Vec<u8>, addlen: usize) {
    if v.capacity() - v.len() >= addlen {
        return;
    }
    let need = v.len() + addlen;
    let newlen = if need < SDS_MAX_PREALLOC { need * 2 } else { need + SDS_MAX_PREALLOC };
    let hdr = match newlen {
        0..=0xff => 3,
        0x100..=0xffff => 5,
        _ => 9,
    };
    let usable = crate::engine::object::alloc_bytes(hdr + newlen + 1) - hdr - 1;
    v.reserve_exact(usable - v.len());
}

/// The string at `key` made raw and at least `maxbit / 8 + 1` bytes long, created when
/// missing (Redis's `lookupStringForBitCommand`). Returns whether it was created or grown.
fn lookup_string_for_bit<'c>(ctx: &'c mut Ctx, key: &[u8], maxbit: u64) -> Result<(&'c mut Vec<u8>, bool), CmdError> {
    let len = (maxbit >> 3) as usize + 1;
    let db = ctx.db_index();
    let exists = match ctx.lookup_write(key) {
        None => false,
        Some(o) => as_str(o).map(|_| true)?,
    };
    if !exists {
        // A new string is allocated at its exact size (Redis's sdsnewlen).
        let obj = RObj::new(Value::Str(Str::Raw(Box::new(vec![0; len]))), ctx.new_lru());
        ctx.srv.dbs[db].add(key, obj);
    }
    let obj = ctx.srv.dbs[db].get_mut(key).expect("present");
    obj.shared = false;
    let v = as_str_mut(obj)?.make_raw();
    let grown = v.len() < len;
    if grown {
        sds_make_room(v, len - v.len());
        v.resize(len, 0);
    }
    Ok((v, grown || !exists))
}

fn setbit(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let offset = bit_offset_arg(ctx, &a[2], None)?;
    let on = match crate::util::arg_i64(&a[3]) {
        Some(b @ (0 | 1)) => b as u8,
        _ => return Err(CmdError::err("bit is not an integer or out of range")),
    };
    let (v, dirty) = lookup_string_for_bit(ctx, &a[1], offset)?;
    let byte = &mut v[(offset >> 3) as usize];
    let shift = 7 - (offset & 7) as u8;
    let old = (*byte >> shift) & 1;
    // Redis 7.0 counts (and so propagates) SETBIT only when it created, grew or flipped.
    if dirty || old != on {
        *byte = (*byte & !(1 << shift)) | (on << shift);
        ctx.dirty(1);
        ctx.notify(class::STRING, "setbit", &a[1]);
    }
    ctx.out().int(old as i64);
    Ok(())
}

fn getbit(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let offset = bit_offset_arg(ctx, &a[2], None)?;
    let (obj, out) = ctx.lookup_read_out(&a[1]);
    let bit = match obj {
        None => 0,
        Some(o) => {
            let s = as_str(o)?.bytes();
            s.get((offset >> 3) as usize).map_or(0, |b| (b >> (7 - (offset & 7))) & 1)
        }
    };
    out.int(bit as i64);
    Ok(())
}

/// Whether a range argument counts bytes or bits.
fn range_unit_is_bit(arg: &[u8]) -> Result<bool, CmdError> {
    if arg.eq_ignore_ascii_case(b"bit") {
        Ok(true)
    } else if arg.eq_ignore_ascii_case(b"byte") {
        Ok(false)
    } else {
        Err(CmdError::Syntax)
    }
}

/// A range clamped as BITCOUNT and BITPOS clamp it, in bits, inclusive. None when empty.
fn clamp_bit_range(start: i64, end: i64, strlen: usize, is_bit: bool) -> Option<(u64, u64)> {
    let totlen = if is_bit { strlen as i64 * 8 } else { strlen as i64 };
    let fix = |i: i64| if i < 0 { (totlen + i).max(0) } else { i };
    let (start, end) = (fix(start), fix(end).min(totlen - 1));
    if start > end {
        return None;
    }
    let (start, end) = (start as u64, end as u64);
    Some(if is_bit { (start, end) } else { (start * 8, end * 8 + 7) })
}

fn bit_at(s: &[u8], i: u64) -> u8 {
    (s[(i >> 3) as usize] >> (7 - (i & 7))) & 1
}

/// Set bits in the inclusive bit range: whole bytes by popcount, the edges bit by bit.
fn popcount_bits(s: &[u8], start: u64, end: u64) -> u64 {
    let (first_full, last_full) = (start.div_ceil(8), (end + 1) / 8);
    if first_full >= last_full {
        return (start..=end).map(|i| bit_at(s, i) as u64).sum();
    }
    let head: u64 = (start..first_full * 8).map(|i| bit_at(s, i) as u64).sum();
    let tail: u64 = (last_full * 8..=end).map(|i| bit_at(s, i) as u64).sum();
    let mid: u64 = s[first_full as usize..last_full as usize].iter().map(|b| b.count_ones() as u64).sum();
    head + mid + tail
}

fn bitcount(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    // Redis 7.0 looks the key up before it parses the range.
    let (obj, out) = ctx.lookup_read_out(&a[1]);
    let Some(obj) = obj else {
        out.int(0);
        return Ok(());
    };
    let s = as_str(obj)?.bytes();
    let range = match a.len() {
        2 => clamp_bit_range(0, -1, s.len(), false),
        4 | 5 => {
            let (start, end) = (int_arg(&a[2])?, int_arg(&a[3])?);
            if start < 0 && end < 0 && start > end {
                out.int(0);
                return Ok(());
            }
            let is_bit = a.len() == 5 && range_unit_is_bit(&a[4])?;
            clamp_bit_range(start, end, s.len(), is_bit)
        }
        _ => return Err(CmdError::Syntax),
    };
    out.int(range.map_or(0, |(st, en)| popcount_bits(&s, st, en)) as i64);
    Ok(())
}

/// The first bit equal to `bit` in the inclusive range, scanning whole bytes where it can.
fn find_bit(s: &[u8], start: u64, end: u64, bit: u8) -> Option<u64> {
    let skip = if bit == 1 { 0x00 } else { 0xff };
    let mut i = start;
    while i <= end {
        if i & 7 == 0 && i + 7 <= end && s[(i >> 3) as usize] == skip {
            i += 8;
            continue;
        }
        if bit_at(s, i) == bit {
            return Some(i);
        }
        i += 1;
    }
    None
}

fn bitpos(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let bit = int_arg(&a[2])?;
    if bit != 0 && bit != 1 {
        return Err(CmdError::err("The bit argument must be 1 or 0."));
    }
    let (obj, out) = ctx.lookup_read_out(&a[1]);
    let Some(obj) = obj else {
        out.int(if bit == 1 { -1 } else { 0 });
        return Ok(());
    };
    let s = as_str(obj)?.bytes();
    let end_given = a.len() >= 5;
    let range = match a.len() {
        3 => clamp_bit_range(0, -1, s.len(), false),
        4..=6 => {
            let start = int_arg(&a[3])?;
            let is_bit = a.len() == 6 && range_unit_is_bit(&a[5])?;
            let end = if end_given { int_arg(&a[4])? } else { -1 };
            clamp_bit_range(start, end, s.len(), is_bit)
        }
        _ => return Err(CmdError::Syntax),
    };
    let pos = match range {
        None => -1,
        Some((start, end)) => match find_bit(&s, start, end, bit as u8) {
            Some(p) => p as i64,
            // Without an explicit end the string is padded with zeros on the right.
            None if bit == 0 && !end_given => end as i64 + 1,
            None => -1,
        },
    };
    out.int(pos);
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

fn bitop(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let op = match a[1].to_ascii_lowercase().as_slice() {
        b"and" => BitOp::And,
        b"or" => BitOp::Or,
        b"xor" => BitOp::Xor,
        b"not" => BitOp::Not,
        _ => return Err(CmdError::Syntax),
    };
    if op == BitOp::Not && a.len() != 4 {
        return Err(CmdError::err("BITOP NOT must be called with a single source key."));
    }
    let mut srcs: Vec<Vec<u8>> = Vec::with_capacity(a.len() - 3);
    for key in &a[3..] {
        srcs.push(match ctx.lookup_read(key) {
            None => Vec::new(),
            Some(o) => as_str(o)?.bytes().into_owned(),
        });
    }
    let res = bitop_apply(op, &srcs);
    let (db, dest) = (ctx.db_index(), &a[2]);
    if res.is_empty() {
        if ctx.srv.dbs[db].delete(dest).is_some() {
            ctx.dirty(1);
            ctx.notify(class::GENERIC, "del", dest);
        }
    } else {
        let obj = RObj::new(Value::Str(Str::Raw(Box::new(res.clone()))), ctx.new_lru());
        ctx.srv.dbs[db].set(dest, obj, false);
        ctx.dirty(1);
        ctx.notify(class::STRING, "set", dest);
    }
    ctx.out().int(res.len() as i64);
    Ok(())
}

/// Missing bytes of shorter sources count as zeros.
fn bitop_apply(op: BitOp, srcs: &[Vec<u8>]) -> Vec<u8> {
    let maxlen = srcs.iter().map(Vec::len).max().unwrap_or(0);
    (0..maxlen)
        .map(|i| {
            let mut it = srcs.iter().map(|s| s.get(i).copied().unwrap_or(0));
            let first = it.next().unwrap_or(0);
            match op {
                BitOp::Not => !first,
                BitOp::And => it.fold(first, |acc, b| acc & b),
                BitOp::Or => it.fold(first, |acc, b| acc | b),
                BitOp::Xor => it.fold(first, |acc, b| acc ^ b),
            }
        })
        .collect()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum FieldOpKind {
    Get,
    Set,
    Incrby,
}

#[derive(Clone, Copy)]
struct FieldOp {
    kind: FieldOpKind,
    offset: u64,
    arg: i64,
    signed: bool,
    bits: u32,
    overflow: Overflow,
}

fn get_unsigned_field(p: &[u8], offset: u64, bits: u32) -> u64 {
    (0..bits as u64).fold(0u64, |v, i| (v << 1) | bit_at(p, offset + i) as u64)
}

fn get_signed_field(p: &[u8], offset: u64, bits: u32) -> i64 {
    let v = get_unsigned_field(p, offset, bits);
    if bits < 64 && v & (1 << (bits - 1)) != 0 {
        (v | (u64::MAX << bits)) as i64
    } else {
        v as i64
    }
}

fn set_field(p: &mut [u8], offset: u64, bits: u32, value: u64) {
    for j in 0..bits as u64 {
        let bitval = ((value >> (bits as u64 - 1 - j)) & 1) as u8;
        let pos = offset + j;
        let shift = 7 - (pos & 7) as u8;
        let byte = &mut p[(pos >> 3) as usize];
        *byte = (*byte & !(1 << shift)) | (bitval << shift);
    }
}

/// Redis's `checkUnsignedBitfieldOverflow`: whether `value + incr` leaves the field, and
/// the value WRAP or SAT stores instead. The casts mirror C's to keep its edge cases.
fn unsigned_overflow(value: u64, incr: i64, bits: u32, ow: Overflow) -> Option<u64> {
    let max = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
    let maxincr = max.wrapping_sub(value) as i64;
    let minincr = (value as i64).wrapping_neg();
    let wrapped = || value.wrapping_add(incr as u64) & !(u64::MAX.checked_shl(bits).unwrap_or(0));
    if value > max || (incr > 0 && incr > maxincr) {
        Some(if ow == Overflow::Sat { max } else { wrapped() })
    } else if incr < 0 && incr < minincr {
        Some(if ow == Overflow::Sat { 0 } else { wrapped() })
    } else {
        None
    }
}

/// Redis's `checkSignedBitfieldOverflow`, same contract as `unsigned_overflow`.
fn signed_overflow(value: i64, incr: i64, bits: u32, ow: Overflow) -> Option<i64> {
    let max = if bits == 64 { i64::MAX } else { (1i64 << (bits - 1)) - 1 };
    let min = -max - 1;
    let maxincr = (max as u64).wrapping_sub(value as u64) as i64;
    let minincr = min.wrapping_sub(value);
    let wrapped = || {
        let mut c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let mask = u64::MAX << bits;
            c = if c & (1 << (bits - 1)) != 0 { c | mask } else { c & !mask };
        }
        c as i64
    };
    if value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr) {
        Some(if ow == Overflow::Sat { max } else { wrapped() })
    } else if value < min || (bits != 64 && incr < minincr) || (value < 0 && incr < 0 && incr < minincr) {
        Some(if ow == Overflow::Sat { min } else { wrapped() })
    } else {
        None
    }
}

/// Parses BITFIELD's operations (Redis's `bitfieldGeneric`, first loop).
fn parse_bitfield_ops(ctx: &Ctx, a: &[Bytes]) -> Result<Vec<FieldOp>, CmdError> {
    let mut ops = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut j = 2;
    while j < a.len() {
        let remargs = a.len() - j - 1;
        let sub = a[j].to_ascii_lowercase();
        let kind = match sub.as_slice() {
            b"get" if remargs >= 2 => FieldOpKind::Get,
            b"set" if remargs >= 3 => FieldOpKind::Set,
            b"incrby" if remargs >= 3 => FieldOpKind::Incrby,
            b"overflow" if remargs >= 1 => {
                overflow = match a[j + 1].to_ascii_lowercase().as_slice() {
                    b"wrap" => Overflow::Wrap,
                    b"sat" => Overflow::Sat,
                    b"fail" => Overflow::Fail,
                    _ => return Err(CmdError::err("Invalid OVERFLOW type specified")),
                };
                j += 2;
                continue;
            }
            _ => return Err(CmdError::Syntax),
        };
        let (signed, bits) = bitfield_type_arg(&a[j + 1])?;
        let offset = bit_offset_arg(ctx, &a[j + 2], Some(bits))?;
        let arg = if kind == FieldOpKind::Get { 0 } else { int_arg(&a[j + 3])? };
        ops.push(FieldOp { kind, offset, arg, signed, bits, overflow });
        j += if kind == FieldOpKind::Get { 3 } else { 4 };
    }
    Ok(ops)
}

/// Runs one SET or INCRBY on the string: its reply (None when OVERFLOW FAIL refused it)
/// and whether the field changed.
fn bitfield_write(v: &mut [u8], op: &FieldOp) -> (Option<i64>, bool) {
    let incr = op.kind == FieldOpKind::Incrby;
    if op.signed {
        let old = get_signed_field(v, op.offset, op.bits);
        let (value, add) = if incr { (old, op.arg) } else { (op.arg, 0) };
        let over = signed_overflow(value, add, op.bits, op.overflow);
        if over.is_some() && op.overflow == Overflow::Fail {
            return (None, false);
        }
        let new = over.unwrap_or_else(|| value.wrapping_add(add));
        set_field(v, op.offset, op.bits, new as u64);
        (Some(if incr { new } else { old }), new != old)
    } else {
        let old = get_unsigned_field(v, op.offset, op.bits);
        let (value, add) = if incr { (old, op.arg) } else { (op.arg as u64, 0) };
        let over = unsigned_overflow(value, add, op.bits, op.overflow);
        if over.is_some() && op.overflow == Overflow::Fail {
            return (None, false);
        }
        let new = over.unwrap_or_else(|| value.wrapping_add(add as u64));
        set_field(v, op.offset, op.bits, new);
        (Some(if incr { new as i64 } else { old as i64 }), new != old)
    }
}

/// A GET reads past the end of the string as zeros.
fn bitfield_read(s: &[u8], op: &FieldOp) -> i64 {
    let byte = (op.offset >> 3) as usize;
    let mut buf = [0u8; 9];
    for (i, b) in buf.iter_mut().enumerate() {
        match s.get(byte + i) {
            Some(&x) => *b = x,
            None => break,
        }
    }
    let off = op.offset & 7;
    if op.signed {
        get_signed_field(&buf, off, op.bits)
    } else {
        get_unsigned_field(&buf, off, op.bits) as i64
    }
}

fn bitfield_generic(ctx: &mut Ctx, a: &[Bytes], readonly_cmd: bool) -> CmdResult {
    let ops = parse_bitfield_ops(ctx, a)?;
    let key = &a[1];
    let highest = ops.iter().filter(|o| o.kind != FieldOpKind::Get).map(|o| o.offset + o.bits as u64 - 1).max();
    let Some(highest) = highest else {
        let s = match ctx.lookup_read(key) {
            None => Vec::new(),
            Some(o) => as_str(o)?.bytes().into_owned(),
        };
        let out = ctx.out();
        out.array(ops.len());
        for op in &ops {
            out.int(bitfield_read(&s, op));
        }
        return Ok(());
    };
    if readonly_cmd {
        return Err(CmdError::err("BITFIELD_RO only supports the GET subcommand"));
    }
    let (v, grown) = lookup_string_for_bit(ctx, key, highest)?;
    let mut replies = Vec::with_capacity(ops.len());
    let mut changes = 0;
    for op in &ops {
        replies.push(match op.kind {
            FieldOpKind::Get => Some(bitfield_read(v, op)),
            _ => {
                let (reply, changed) = bitfield_write(v, op);
                // As SETBIT: a write that changes nothing is not propagated.
                if reply.is_some() && (grown || changed) {
                    changes += 1;
                }
                reply
            }
        });
    }
    ctx.dirty(changes);
    let out = ctx.out();
    out.array(replies.len());
    for r in replies {
        match r {
            Some(n) => out.int(n),
            None => out.null(),
        }
    }
    if changes > 0 {
        ctx.notify(class::STRING, "setbit", &a[1]);
    }
    Ok(())
}

fn bitfield(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    bitfield_generic(ctx, a, false)
}

fn bitfield_ro(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    bitfield_generic(ctx, a, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sds_make_room_doubles_to_the_allocator_class_as_redis() {
        let mut v = vec![0u8; 13];
        sds_make_room(&mut v, 113);
        // 2 * 126 = 252 bytes + 3 header + 1 NUL fill jemalloc's 256 class exactly.
        assert_eq!(v.capacity(), 252);
        let cap = v.capacity();
        sds_make_room(&mut v, 200);
        assert_eq!(v.capacity(), cap, "room already there");
    }

    #[test]
    fn popcount_bits_counts_partial_edges() {
        let s = [0xffu8, 0x0f, 0xf0];
        assert_eq!(popcount_bits(&s, 0, 23), 16);
        assert_eq!(popcount_bits(&s, 4, 11), 4);
        assert_eq!(popcount_bits(&s, 12, 19), 8);
        assert_eq!(popcount_bits(&s, 3, 3), 1);
    }

    #[test]
    fn find_bit_skips_whole_bytes() {
        let s = [0x00u8, 0x00, 0x01];
        assert_eq!(find_bit(&s, 0, 23, 1), Some(23));
        assert_eq!(find_bit(&[0xffu8, 0xfe], 0, 15, 0), Some(15));
        assert_eq!(find_bit(&[0xffu8], 0, 7, 0), None);
    }

    #[test]
    fn fields_round_trip_signed_and_unsigned() {
        let mut v = vec![0u8; 10];
        set_field(&mut v, 3, 64, (-5i64) as u64);
        assert_eq!(get_signed_field(&v, 3, 64), -5);
        set_field(&mut v, 5, 4, 0b1010);
        assert_eq!(get_unsigned_field(&v, 5, 4), 10);
        assert_eq!(get_signed_field(&v, 5, 4), -6);
    }

    #[test]
    fn overflow_wraps_and_saturates_as_redis() {
        assert_eq!(unsigned_overflow(250, 10, 8, Overflow::Wrap), Some(4));
        assert_eq!(unsigned_overflow(250, 10, 8, Overflow::Sat), Some(255));
        assert_eq!(unsigned_overflow(5, -10, 8, Overflow::Sat), Some(0));
        assert_eq!(unsigned_overflow(5, 10, 8, Overflow::Sat), None);
        assert_eq!(signed_overflow(120, 10, 8, Overflow::Wrap), Some(-126));
        assert_eq!(signed_overflow(-120, -10, 8, Overflow::Sat), Some(-128));
        assert_eq!(signed_overflow(i64::MAX, 1, 64, Overflow::Wrap), Some(i64::MIN));
    }

    #[test]
    fn bitop_pads_shorter_sources_with_zeros() {
        let srcs = vec![vec![0xff, 0x0f], vec![0xf0]];
        assert_eq!(bitop_apply(BitOp::And, &srcs), vec![0xf0, 0x00]);
        assert_eq!(bitop_apply(BitOp::Or, &srcs), vec![0xff, 0x0f]);
        assert_eq!(bitop_apply(BitOp::Not, &srcs[1..]), vec![0x0f]);
    }

    fn propagated_after(cmds: &[&[&str]]) -> Vec<Vec<String>> {
        let mut srv = crate::commands::testing::server();
        srv.propagate_enabled = true;
        for c in cmds {
            crate::commands::testing::run(&mut srv, c);
        }
        crate::commands::testing::take_propagated(&mut srv).into_iter().filter(|c| c[0] != "SELECT").collect()
    }

    #[test]
    fn writes_that_change_nothing_are_not_propagated() {
        let p = propagated_after(&[
            &["SETBIT", "x", "3", "1"],
            &["SETBIT", "x", "3", "1"],
            &["BITFIELD", "x", "SET", "u4", "0", "1"],
            &["BITFIELD", "x", "OVERFLOW", "FAIL", "INCRBY", "u2", "0", "100"],
            &["BITFIELD", "x", "GET", "u8", "0"],
            &["BITOP", "OR", "y", "nokey"],
        ]);
        let names: Vec<&str> = p.iter().map(|c| c[0].as_str()).collect();
        assert_eq!(names, ["SETBIT"]);
    }

    #[test]
    fn bitop_deleting_its_destination_is_propagated() {
        let p = propagated_after(&[&["SET", "y", "v"], &["BITOP", "OR", "y", "nokey"]]);
        assert_eq!(p.len(), 2);
        assert_eq!(p[1], ["BITOP", "OR", "y", "nokey"]);
    }
}

//! HyperLogLog commands (Redis's `hyperloglog.c`). An HLL is a plain string holding Redis's
//! exact byte layout, so GET, DUMP and replication see the same bytes as Redis: a 16-byte
//! header ("HYLL", encoding, 3 unused bytes, the cached cardinality little-endian with its
//! top bit meaning "stale"), then 16384 registers either sparse (ZERO/XZERO/VAL run-length
//! opcodes) or dense (6 bits each). Sparse turns dense once a register exceeds what a VAL
//! opcode holds or the string would pass hll-sparse-max-bytes.

use bytes::Bytes;

use super::{as_str, as_str_mut, CmdError, CmdResult, Ctx, Handler};
use crate::engine::object::{RObj, Str, Value};
use crate::server::notify::class;

pub static COMMANDS: &[(&str, Handler)] =
    &[("pfadd", pfadd), ("pfcount", pfcount), ("pfmerge", pfmerge), ("pfdebug", pfdebug), ("pfselftest", pfselftest)];

const HLL_P: u32 = 14;
const HLL_Q: u32 = 64 - HLL_P;
const HLL_REGISTERS: usize = 1 << HLL_P;
const HLL_P_MASK: u64 = HLL_REGISTERS as u64 - 1;
const HLL_BITS: usize = 6;
const HLL_REGISTER_MAX: u8 = (1 << HLL_BITS) - 1;
const HLL_HDR_SIZE: usize = 16;
const HLL_DENSE_SIZE: usize = HLL_HDR_SIZE + (HLL_REGISTERS * HLL_BITS).div_ceil(8);
const HLL_DENSE: u8 = 0;
const HLL_SPARSE: u8 = 1;
const HLL_ENCODING_OFFSET: usize = 4;
const HLL_CARD_OFFSET: usize = 8;
const HLL_ALPHA_INF: f64 = 0.721_347_520_444_481_7;
const HLL_HASH_SEED: u64 = 0xadc8_3b19;

const HLL_SPARSE_VAL_MAX_VALUE: u8 = 32;
const HLL_SPARSE_VAL_MAX_LEN: usize = 4;
const HLL_SPARSE_ZERO_MAX_LEN: usize = 64;
const HLL_SPARSE_XZERO_MAX_LEN: usize = 16384;

const INVALID_HLL_ERR: &str = "INVALIDOBJ Corrupted HLL object detected";
const NOT_HLL_ERR: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";

/// A sparse or dense register array that does not cover exactly 16384 registers.
#[derive(Debug, PartialEq, Eq)]
struct Corrupted;

/// One sparse opcode, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SparseOp {
    Zero(usize),
    XZero(usize),
    Val(u8, usize),
}

impl SparseOp {
    fn decode(p: &[u8], i: usize) -> SparseOp {
        let b = p[i];
        match b & 0xc0 {
            0x00 => SparseOp::Zero((b & 0x3f) as usize + 1),
            // A truncated XZERO reads the terminator C would read: a zero.
            0x40 => SparseOp::XZero(((((b & 0x3f) as usize) << 8) | *p.get(i + 1).unwrap_or(&0) as usize) + 1),
            _ => SparseOp::Val(((b >> 2) & 0x1f) + 1, (b & 3) as usize + 1),
        }
    }

    fn oplen(self) -> usize {
        if matches!(self, SparseOp::XZero(_)) {
            2
        } else {
            1
        }
    }

    fn span(self) -> usize {
        match self {
            SparseOp::Zero(n) | SparseOp::XZero(n) | SparseOp::Val(_, n) => n,
        }
    }
}

fn val_op(value: u8, len: usize) -> u8 {
    (((value - 1) << 2) | (len as u8 - 1)) | 0x80
}

/// A run of zero registers as ZERO or XZERO (Redis's HLL_SPARSE_(X)ZERO_SET).
fn push_zero_run(seq: &mut Vec<u8>, len: usize) {
    if len > HLL_SPARSE_ZERO_MAX_LEN {
        let l = len - 1;
        seq.push((l >> 8) as u8 | 0x40);
        seq.push((l & 0xff) as u8);
    } else {
        seq.push(len as u8 - 1);
    }
}

/// Redis's `createHLLObject`: a sparse HLL whose registers are all XZERO runs.
fn hll_create() -> Vec<u8> {
    let mut v = Vec::with_capacity(HLL_HDR_SIZE + 2);
    v.extend_from_slice(b"HYLL");
    v.push(HLL_SPARSE);
    v.extend_from_slice(&[0; 11]);
    let mut left = HLL_REGISTERS;
    while left > 0 {
        let run = left.min(HLL_SPARSE_XZERO_MAX_LEN);
        push_zero_run(&mut v, run);
        left -= run;
    }
    v
}

/// An empty dense HLL (PFSELFTEST's reference).
fn hll_create_dense() -> Vec<u8> {
    let mut v = vec![0u8; HLL_DENSE_SIZE];
    v[..4].copy_from_slice(b"HYLL");
    v
}

fn invalidate_cache(v: &mut [u8]) {
    v[HLL_CARD_OFFSET + 7] |= 1 << 7;
}

fn cache_is_valid(v: &[u8]) -> bool {
    v[HLL_CARD_OFFSET + 7] & (1 << 7) == 0
}

/// Redis's `isHLLObjectOrReply` test on the string's bytes.
fn is_hll(s: &Str) -> bool {
    let b = match s {
        Str::Int(_) => return false,
        Str::Emb(b) => &b[..],
        Str::Raw(v) => &v[..],
    };
    b.len() >= HLL_HDR_SIZE
        && &b[..4] == b"HYLL"
        && b[HLL_ENCODING_OFFSET] <= HLL_SPARSE
        && (b[HLL_ENCODING_OFFSET] != HLL_DENSE || b.len() == HLL_DENSE_SIZE)
}

/// MurmurHash2, 64-bit version, as Redis uses it (little-endian reads).
fn murmurhash64a(key: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (key.len() as u64).wrapping_mul(M);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let mut k = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= (b as u64) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// Redis's `hllPatLen`: the register an element maps to and the length of its run of
/// zeros plus one (at most Q + 1).
fn hll_pat_len(ele: &[u8]) -> (usize, u8) {
    let hash = murmurhash64a(ele, HLL_HASH_SEED);
    let index = (hash & HLL_P_MASK) as usize;
    let rest = (hash >> HLL_P) | (1u64 << HLL_Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

fn dense_get(regs: &[u8], i: usize) -> u8 {
    let (byte, fb) = (i * HLL_BITS / 8, (i * HLL_BITS) & 7);
    let b0 = regs[byte] as u16;
    let b1 = *regs.get(byte + 1).unwrap_or(&0) as u16;
    (((b0 >> fb) | (b1 << (8 - fb))) & HLL_REGISTER_MAX as u16) as u8
}

fn dense_set(regs: &mut [u8], i: usize, val: u8) {
    let (byte, fb) = (i * HLL_BITS / 8, (i * HLL_BITS) & 7);
    let v = val as u16;
    regs[byte] &= !((HLL_REGISTER_MAX as u16) << fb) as u8;
    regs[byte] |= (v << fb) as u8;
    if let Some(b) = regs.get_mut(byte + 1) {
        *b &= !((HLL_REGISTER_MAX as u16) >> (8 - fb)) as u8;
        *b |= (v >> (8 - fb)) as u8;
    }
}

/// Redis's `hllDenseSet`: raises the register; true when it changed.
fn dense_raise(regs: &mut [u8], i: usize, count: u8) -> bool {
    if count > dense_get(regs, i) {
        dense_set(regs, i, count);
        true
    } else {
        false
    }
}

/// Calls `f(first_register, run_len, value)` for every sparse run; errs unless the runs
/// cover exactly all registers. A VAL run past the end stops the walk (Redis's overflow
/// check).
fn sparse_walk(sparse: &[u8], mut f: impl FnMut(usize, usize, u8)) -> Result<(), Corrupted> {
    let (mut i, mut idx) = (0, 0);
    while i < sparse.len() {
        let op = SparseOp::decode(sparse, i);
        let (run, val) = match op {
            SparseOp::Zero(n) | SparseOp::XZero(n) => (n, 0),
            SparseOp::Val(v, n) => (n, v),
        };
        if val != 0 {
            if idx + run > HLL_REGISTERS {
                break;
            }
            f(idx, run, val);
        }
        idx += run;
        i += op.oplen();
    }
    if idx == HLL_REGISTERS {
        Ok(())
    } else {
        Err(Corrupted)
    }
}

/// Redis's `hllSparseToDense`: keeps the header (magic and cached cardinality).
fn sparse_to_dense(v: &mut Vec<u8>) -> Result<(), Corrupted> {
    if v[HLL_ENCODING_OFFSET] == HLL_DENSE {
        return Ok(());
    }
    let mut dense = vec![0u8; HLL_DENSE_SIZE];
    dense[..HLL_HDR_SIZE].copy_from_slice(&v[..HLL_HDR_SIZE]);
    dense[HLL_ENCODING_OFFSET] = HLL_DENSE;
    let regs = &mut dense[HLL_HDR_SIZE..];
    sparse_walk(&v[HLL_HDR_SIZE..], |first, run, val| {
        for r in first..first + run {
            dense_set(regs, r, val);
        }
    })?;
    *v = dense;
    Ok(())
}

/// Where `index` lies in the sparse opcodes: (offset of the previous opcode, offset of the
/// covering opcode, first register it covers).
fn sparse_locate(sparse: &[u8], index: usize) -> Result<(Option<usize>, usize, usize), Corrupted> {
    let (mut p, mut first, mut prev) = (0, 0, None);
    while p < sparse.len() {
        let op = SparseOp::decode(sparse, p);
        if index < first + op.span() {
            return Ok((prev, p, first));
        }
        prev = Some(p);
        p += op.oplen();
        first += op.span();
    }
    Err(Corrupted)
}

/// The opcodes that replace the one covering `index` once that register holds `count`.
fn sparse_split(op: SparseOp, first: usize, index: usize, count: u8) -> Vec<u8> {
    let last = first + op.span() - 1;
    let mut seq = Vec::with_capacity(5);
    match op {
        SparseOp::Zero(_) | SparseOp::XZero(_) => {
            if index != first {
                push_zero_run(&mut seq, index - first);
            }
            seq.push(val_op(count, 1));
            if index != last {
                push_zero_run(&mut seq, last - index);
            }
        }
        SparseOp::Val(cur, _) => {
            if index != first {
                seq.push(val_op(cur, index - first));
            }
            seq.push(val_op(count, 1));
            if index != last {
                seq.push(val_op(cur, last - index));
            }
        }
    }
    seq
}

/// Redis's `hllSparseSet`: raises register `index` to `count`, in place when it can,
/// promoting to dense when the sparse form cannot hold it. Ok(true) when it changed.
fn sparse_set(v: &mut Vec<u8>, index: usize, count: u8, max_bytes: u64) -> Result<bool, Corrupted> {
    if count > HLL_SPARSE_VAL_MAX_VALUE {
        return promote(v, index, count);
    }
    // Redis makes room for the worst split (XZERO into XZERO-VAL-XZERO) before looking.
    super::bitops::sds_make_room(v, 3);
    let (prev, p, first) = sparse_locate(&v[HLL_HDR_SIZE..], index)?;
    let at = HLL_HDR_SIZE + p;
    let op = SparseOp::decode(v, at);
    match op {
        SparseOp::Val(old, _) if old >= count => return Ok(false),
        SparseOp::Val(_, 1) | SparseOp::Zero(1) => v[at] = val_op(count, 1),
        _ => {
            let seq = sparse_split(op, first, index, count);
            let delta = seq.len() as i64 - op.oplen() as i64;
            if delta > 0 && v.len() as u64 + delta as u64 > max_bytes {
                return promote(v, index, count);
            }
            // A corrupted HLL may end in half an XZERO: Redis reads its terminator as the
            // second byte and then keeps the string one byte short of the new opcodes.
            let truncated = at + op.oplen() > v.len();
            if truncated {
                v.push(0);
            }
            v.splice(at..at + op.oplen(), seq);
            if truncated {
                v.pop();
            }
        }
    }
    sparse_merge_vals(v, HLL_HDR_SIZE + prev.unwrap_or(0));
    invalidate_cache(v);
    Ok(true)
}

fn promote(v: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, Corrupted> {
    sparse_to_dense(v)?;
    let changed = dense_raise(&mut v[HLL_HDR_SIZE..], index, count);
    debug_assert!(changed, "a promotion always raises the register");
    Ok(changed)
}

/// Step 4 of `hllSparseSet`: merges adjacent VAL opcodes of equal value, looking at no
/// more than 5 opcodes from `p` as Redis does (so the bytes stay Redis's).
fn sparse_merge_vals(v: &mut Vec<u8>, mut p: usize) {
    let mut scanlen = 5;
    while p < v.len() && scanlen > 0 {
        scanlen -= 1;
        match SparseOp::decode(v, p) {
            SparseOp::XZero(_) => p += 2,
            SparseOp::Zero(_) => p += 1,
            SparseOp::Val(v1, l1) => {
                if p + 1 < v.len() {
                    if let SparseOp::Val(v2, l2) = SparseOp::decode(v, p + 1) {
                        if v1 == v2 && l1 + l2 <= HLL_SPARSE_VAL_MAX_LEN {
                            v[p + 1] = val_op(v1, l1 + l2);
                            v.remove(p);
                            continue;
                        }
                    }
                }
                p += 1;
            }
        }
    }
}

/// Redis's `hllAdd`: Ok(true) when a register changed.
fn hll_add(v: &mut Vec<u8>, ele: &[u8], max_bytes: u64) -> Result<bool, Corrupted> {
    let (index, count) = hll_pat_len(ele);
    match v[HLL_ENCODING_OFFSET] {
        HLL_DENSE => Ok(dense_raise(&mut v[HLL_HDR_SIZE..], index, count)),
        HLL_SPARSE => sparse_set(v, index, count, max_bytes),
        _ => Err(Corrupted),
    }
}

/// Redis's `hllMerge`: max[i] = max(max[i], register i).
fn hll_merge(max: &mut [u8], v: &[u8]) -> Result<(), Corrupted> {
    let regs = &v[HLL_HDR_SIZE..];
    if v[HLL_ENCODING_OFFSET] == HLL_DENSE {
        for (i, m) in max.iter_mut().enumerate() {
            *m = (*m).max(dense_get(regs, i));
        }
        return Ok(());
    }
    sparse_walk(regs, |first, run, val| {
        for m in &mut max[first..first + run] {
            *m = (*m).max(val);
        }
    })
}

fn hll_sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let (mut y, mut z) = (1.0, x);
    loop {
        x *= x;
        let z_prime = z;
        z += x * y;
        y += y;
        if z_prime == z {
            return z;
        }
    }
}

fn hll_tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let (mut y, mut z) = (1.0, 1.0 - x);
    loop {
        x = x.sqrt();
        let z_prime = z;
        y *= 0.5;
        z -= (1.0 - x).powi(2) * y;
        if z_prime == z {
            return z / 3.0;
        }
    }
}

/// Ertl's improved estimator from the register histogram (Redis's `hllCount`).
fn hll_estimate(reghisto: &[u32; 64]) -> u64 {
    let m = HLL_REGISTERS as f64;
    let mut z = m * hll_tau((m - reghisto[HLL_Q as usize + 1] as f64) / m);
    for j in (1..=HLL_Q as usize).rev() {
        z += reghisto[j] as f64;
        z *= 0.5;
    }
    z += m * hll_sigma(reghisto[0] as f64 / m);
    (HLL_ALPHA_INF * m * m / z).round() as u64
}

/// The register histogram of a stored HLL; errs when a sparse one is corrupted.
fn hll_histogram(v: &[u8]) -> Result<[u32; 64], Corrupted> {
    let mut h = [0u32; 64];
    let regs = &v[HLL_HDR_SIZE..];
    if v[HLL_ENCODING_OFFSET] == HLL_DENSE {
        for i in 0..HLL_REGISTERS {
            h[dense_get(regs, i) as usize] += 1;
        }
        return Ok(h);
    }
    let mut nonzero = 0;
    sparse_walk(regs, |_, run, val| {
        h[val as usize] += run as u32;
        nonzero += run;
    })?;
    h[0] += (HLL_REGISTERS - nonzero) as u32;
    Ok(h)
}

fn raw_histogram(max: &[u8]) -> [u32; 64] {
    let mut h = [0u32; 64];
    for &r in max {
        h[r as usize] += 1;
    }
    h
}

/// The HLL at `key` for writing, checked (Redis's `isHLLObjectOrReply` + unshare).
fn hll_for_write<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<&'c mut Vec<u8>, CmdError> {
    let db = ctx.db_index();
    let obj = ctx.srv.dbs[db].get_mut(key).expect("caller looked the key up");
    if !is_hll(as_str(obj)?) {
        return Err(CmdError::Other(NOT_HLL_ERR.into()));
    }
    obj.shared = false;
    Ok(as_str_mut(obj)?.make_raw())
}

fn pfadd(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let key = &a[1];
    let db = ctx.db_index();
    let mut updated = 0;
    if ctx.lookup_write(key).is_none() {
        let obj = RObj::new(Value::Str(Str::Raw(Box::new(hll_create()))), ctx.new_lru());
        ctx.srv.dbs[db].add(key, obj);
        updated += 1;
    }
    let max_bytes = ctx.srv.config.hot.hll_sparse_max_bytes;
    let v = hll_for_write(ctx, key)?;
    for ele in &a[2..] {
        match hll_add(v, ele, max_bytes) {
            Ok(changed) => updated += changed as u64,
            Err(Corrupted) => return Err(CmdError::Other(INVALID_HLL_ERR.into())),
        }
    }
    if updated > 0 {
        invalidate_cache(v);
        ctx.dirty(updated);
        ctx.notify(class::STRING, "pfadd", &a[1]);
    }
    ctx.out().int((updated > 0) as i64);
    Ok(())
}

fn pfcount(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    if a.len() > 2 {
        let mut max = vec![0u8; HLL_REGISTERS];
        merge_sources(ctx, &a[1..], &mut max)?;
        ctx.out().int(hll_estimate(&raw_histogram(&max)) as i64);
        return Ok(());
    }
    if ctx.lookup_read(&a[1]).is_none() {
        ctx.out().int(0);
        return Ok(());
    }
    let v = hll_for_write(ctx, &a[1])?;
    let card = if cache_is_valid(v) {
        u64::from_le_bytes(v[HLL_CARD_OFFSET..HLL_CARD_OFFSET + 8].try_into().expect("8 bytes"))
    } else {
        let h = hll_histogram(v).map_err(|_| CmdError::Other(INVALID_HLL_ERR.into()))?;
        let card = hll_estimate(&h);
        v[HLL_CARD_OFFSET..HLL_CARD_OFFSET + 8].copy_from_slice(&card.to_le_bytes());
        // Refreshing the cache changes the value: Redis counts it as a write.
        ctx.dirty(1);
        card
    };
    ctx.out().int(card as i64);
    Ok(())
}

/// Merges the HLLs at `keys` into `max` (missing keys are empty); returns whether any
/// was dense.
fn merge_sources(ctx: &mut Ctx, keys: &[Bytes], max: &mut [u8]) -> Result<bool, CmdError> {
    let mut any_dense = false;
    for key in keys {
        let Some(obj) = ctx.lookup_read(key) else { continue };
        let s = as_str(obj)?;
        if !is_hll(s) {
            return Err(CmdError::Other(NOT_HLL_ERR.into()));
        }
        let b = s.bytes();
        any_dense |= b[HLL_ENCODING_OFFSET] == HLL_DENSE;
        hll_merge(max, &b).map_err(|_| CmdError::Other(INVALID_HLL_ERR.into()))?;
    }
    Ok(any_dense)
}

fn pfmerge(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let mut max = vec![0u8; HLL_REGISTERS];
    let use_dense = merge_sources(ctx, &a[1..], &mut max)?;
    let key = &a[1];
    let db = ctx.db_index();
    if ctx.lookup_write(key).is_none() {
        let obj = RObj::new(Value::Str(Str::Raw(Box::new(hll_create()))), ctx.new_lru());
        ctx.srv.dbs[db].add(key, obj);
    }
    let max_bytes = ctx.srv.config.hot.hll_sparse_max_bytes;
    let v = hll_for_write(ctx, key)?;
    if use_dense {
        sparse_to_dense(v).map_err(|_| CmdError::Other(INVALID_HLL_ERR.into()))?;
    }
    for (j, &m) in max.iter().enumerate().filter(|(_, &m)| m != 0) {
        if v[HLL_ENCODING_OFFSET] == HLL_DENSE {
            dense_raise(&mut v[HLL_HDR_SIZE..], j, m);
        } else {
            // Redis ignores a corrupted destination here: its registers were merged already.
            let _ = sparse_set(v, j, m, max_bytes);
        }
    }
    invalidate_cache(v);
    ctx.dirty(1);
    ctx.notify(class::STRING, "pfadd", &a[1]);
    ctx.out().ok();
    Ok(())
}

/// The sparse opcodes as text, "z:len Z:len v:value,len" (PFDEBUG DECODE).
fn sparse_decode_text(sparse: &[u8]) -> String {
    let mut out = Vec::new();
    let mut i = 0;
    while i < sparse.len() {
        let op = SparseOp::decode(sparse, i);
        out.push(match op {
            SparseOp::Zero(n) => format!("z:{n}"),
            SparseOp::XZero(n) => format!("Z:{n}"),
            SparseOp::Val(v, n) => format!("v:{v},{n}"),
        });
        i += op.oplen();
    }
    out.join(" ")
}

/// PFDEBUG GETREG|DECODE|ENCODING|TODENSE key. GETREG and TODENSE make a sparse HLL dense,
/// which counts as a write so replicas convert too.
fn pfdebug(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let key = &a[2];
    if ctx.lookup_write(key).is_none() {
        return Err(CmdError::err("The specified key does not exist"));
    }
    let v = hll_for_write(ctx, key)?;
    let sparse = v[HLL_ENCODING_OFFSET] == HLL_SPARSE;
    let sub = a[1].to_ascii_lowercase();
    match sub.as_slice() {
        b"getreg" | b"todense" => {
            if sparse {
                sparse_to_dense(v).map_err(|_| CmdError::Other(INVALID_HLL_ERR.into()))?;
            }
            let regs: Vec<u8> = match sub.as_slice() {
                b"getreg" => (0..HLL_REGISTERS).map(|i| dense_get(&v[HLL_HDR_SIZE..], i)).collect(),
                _ => Vec::new(),
            };
            if sparse {
                ctx.dirty(1);
            }
            let out = ctx.out();
            if sub == b"todense" {
                out.int(sparse as i64);
            } else {
                out.array(HLL_REGISTERS);
                for r in regs {
                    out.int(r as i64);
                }
            }
        }
        b"decode" => {
            if !sparse {
                return Err(CmdError::err("HLL encoding is not sparse"));
            }
            let text = sparse_decode_text(&v[HLL_HDR_SIZE..]);
            ctx.out().bulk(text.as_bytes());
        }
        b"encoding" => ctx.out().simple(if sparse { "sparse" } else { "dense" }),
        _ => {
            let name = String::from_utf8_lossy(&a[1]).into_owned();
            return Err(CmdError::err(format!("Unknown PFDEBUG subcommand '{name}'")));
        }
    }
    Ok(())
}

const HLL_TEST_CYCLES: usize = 1000;
const HLL_TEST_ELEMENTS: u64 = 10_000_000;

/// Redis's `pfselftestCommand`: register access, then dense and sparse HLLs fed the same
/// 10M elements must agree and stay within 6 standard errors. Random values come from the
/// server's seeded rng instead of rand().
fn pfselftest(ctx: &mut Ctx, _a: &[Bytes]) -> CmdResult {
    use crate::env::Rng;
    let failed = |text: String| Err(CmdError::Other(format!("TESTFAILED {text}")));
    let mut dense = vec![0u8; HLL_DENSE_SIZE - HLL_HDR_SIZE];
    let mut bytecounters = vec![0u8; HLL_REGISTERS];
    for _ in 0..HLL_TEST_CYCLES {
        for (i, b) in bytecounters.iter_mut().enumerate() {
            *b = (ctx.srv.rng.next_u64() & HLL_REGISTER_MAX as u64) as u8;
            dense_set(&mut dense, i, *b);
        }
        for (i, &b) in bytecounters.iter().enumerate() {
            let val = dense_get(&dense, i);
            if val != b {
                return failed(format!("Register {i} should be {b} but is {val}"));
            }
        }
    }
    let mut dense_hll = hll_create_dense();
    let mut hll = hll_create();
    let max_bytes = ctx.srv.config.hot.hll_sparse_max_bytes;
    let relerr = 1.04 / (HLL_REGISTERS as f64).sqrt();
    let seed = ctx.srv.rng.next_u64();
    let mut checkpoint = 1u64;
    for j in 1..=HLL_TEST_ELEMENTS {
        let ele = (j ^ seed).to_le_bytes();
        hll_add(&mut dense_hll, &ele, max_bytes).map_err(|_| CmdError::Other(INVALID_HLL_ERR.into()))?;
        hll_add(&mut hll, &ele, max_bytes).map_err(|_| CmdError::Other(INVALID_HLL_ERR.into()))?;
        if j != checkpoint {
            continue;
        }
        if j < max_bytes / 2 && hll[HLL_ENCODING_OFFSET] != HLL_SPARSE {
            return failed("sparse encoding not used".into());
        }
        let card = hll_estimate(&hll_histogram(&dense_hll).map_err(|_| CmdError::Other(INVALID_HLL_ERR.into()))?);
        let card2 = hll_estimate(&hll_histogram(&hll).map_err(|_| CmdError::Other(INVALID_HLL_ERR.into()))?);
        if card != card2 {
            return failed("dense/sparse disagree".into());
        }
        let abserr = checkpoint.abs_diff(card);
        // Cardinality 10 is allowed one collision, as in Redis.
        let maxerr = if j == 10 { 1 } else { (relerr * 6.0 * checkpoint as f64).ceil() as u64 };
        if abserr > maxerr {
            return failed(format!("Too big error. card:{checkpoint} abserr:{abserr}"));
        }
        checkpoint *= 10;
    }
    ctx.out().ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(v: &[u8]) -> u64 {
        hll_estimate(&hll_histogram(v).expect("valid"))
    }

    #[test]
    fn new_hll_is_sparse_xzero_runs() {
        let v = hll_create();
        assert_eq!(&v[..5], b"HYLL\x01");
        assert_eq!(&v[HLL_HDR_SIZE..], &[0x7f, 0xff]);
        assert_eq!(count(&v), 0);
    }

    #[test]
    fn pat_len_stays_in_range() {
        let (idx, cnt) = hll_pat_len(b"a");
        assert!(idx < HLL_REGISTERS && (1..=HLL_Q as u8 + 1).contains(&cnt));
    }

    #[test]
    fn sparse_promotes_to_dense_past_max_bytes_and_keeps_registers() {
        let mut v = hll_create();
        let mut max = vec![0u8; HLL_REGISTERS];
        for i in 0..2000u32 {
            let ele = i.to_string();
            hll_add(&mut v, ele.as_bytes(), 3000).expect("valid");
            let (idx, c) = hll_pat_len(ele.as_bytes());
            max[idx] = max[idx].max(c);
        }
        assert_eq!(v[HLL_ENCODING_OFFSET], HLL_DENSE);
        assert_eq!(v.len(), HLL_DENSE_SIZE);
        let regs = &v[HLL_HDR_SIZE..];
        assert!((0..HLL_REGISTERS).all(|i| dense_get(regs, i) == max[i]));
        let est = count(&v);
        assert!((1900..2100).contains(&est), "estimate {est}");
    }

    #[test]
    fn sparse_to_dense_preserves_every_register() {
        let mut v = hll_create();
        for i in 0..100u32 {
            hll_add(&mut v, format!("e{i}").as_bytes(), 3000).expect("valid");
        }
        assert_eq!(v[HLL_ENCODING_OFFSET], HLL_SPARSE);
        let mut sparse_max = vec![0u8; HLL_REGISTERS];
        hll_merge(&mut sparse_max, &v).expect("valid");
        let before = count(&v);
        sparse_to_dense(&mut v).expect("valid");
        let mut dense_max = vec![0u8; HLL_REGISTERS];
        hll_merge(&mut dense_max, &v).expect("valid");
        assert_eq!(sparse_max, dense_max);
        assert_eq!(count(&v), before);
    }

    #[test]
    fn register_over_32_forces_dense() {
        let mut v = hll_create();
        assert_eq!(sparse_set(&mut v, 5, 33, 3000), Ok(true));
        assert_eq!(v[HLL_ENCODING_OFFSET], HLL_DENSE);
        assert_eq!(dense_get(&v[HLL_HDR_SIZE..], 5), 33);
    }

    #[test]
    fn corrupted_sparse_is_detected() {
        let mut v = hll_create();
        v.truncate(HLL_HDR_SIZE + 1);
        assert_eq!(hll_histogram(&v), Err(Corrupted));
    }

    #[test]
    fn random_sparse_bytes_never_panic() {
        let mut seed = 0x5eed_u64;
        let mut next = move || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as u8
        };
        for round in 0..300 {
            let mut v = hll_create();
            v.truncate(HLL_HDR_SIZE);
            for _ in 0..(round % 40) {
                v.push(next());
            }
            let _ = hll_histogram(&v);
            let mut max = vec![0u8; HLL_REGISTERS];
            let _ = hll_merge(&mut max, &v);
            for e in 0..20u8 {
                if hll_add(&mut v, &[e, round as u8], 3000).is_err() {
                    break;
                }
            }
        }
    }

    #[test]
    fn pfcount_propagates_only_when_it_refreshes_the_cache() {
        let mut srv = crate::commands::testing::server();
        srv.propagate_enabled = true;
        for c in [&["PFADD", "p", "a", "b"][..], &["PFCOUNT", "p"], &["PFCOUNT", "p"], &["PFADD", "p", "a"]] {
            crate::commands::testing::run(&mut srv, c);
        }
        let p = crate::commands::testing::take_propagated(&mut srv);
        let names: Vec<&str> = p.iter().map(|c| c[0].as_str()).filter(|n| *n != "SELECT").collect();
        assert_eq!(names, ["PFADD", "PFCOUNT"]);
    }

    #[test]
    fn sparse_and_dense_agree_register_by_register() {
        let mut dense = hll_create_dense();
        let mut sparse = hll_create();
        let seed = 0x1234_5678_9abc_def0_u64;
        for j in 1..=4_000u64 {
            let ele = (j ^ seed).to_le_bytes();
            hll_add(&mut dense, &ele, 3000).expect("valid");
            hll_add(&mut sparse, &ele, 3000).expect("valid");
            if j % 16 != 0 {
                continue;
            }
            let (mut a, mut b) = (vec![0u8; HLL_REGISTERS], vec![0u8; HLL_REGISTERS]);
            hll_merge(&mut a, &dense).expect("valid");
            hll_merge(&mut b, &sparse).expect("valid");
            if a != b {
                let i = (0..HLL_REGISTERS).find(|&i| a[i] != b[i]).unwrap();
                panic!("j {j} reg {i} dense {} sparse {} enc {}", a[i], b[i], sparse[4]);
            }
        }
    }
}

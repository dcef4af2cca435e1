//! DEBUG DIGEST and DEBUG DIGEST-VALUE: Redis's dataset fingerprint (debug.c), so that two
//! servers (redsim and Redis, a master and its replica, before and after a reload) can be
//! compared by one reply. Unordered collections are combined with xor so their iteration
//! order does not matter; ordered ones (lists, the key/value pair) are mixed in sequence.

use crate::engine::db::Db;
use crate::engine::object::{RObj, Value};
use crate::protocol::reply::format_double;

/// A 20-byte SHA-1 digest.
pub type Digest = [u8; 20];

/// SHA-1 of `data` (FIPS 180-1); here only for the digest, never for security.
pub fn sha1(data: &[u8]) -> Digest {
    let mut h: [u32; 5] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0];
    let bit_len = (data.len() as u64).wrapping_mul(8);
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes(word.try_into().expect("4 bytes"));
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, &wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a.rotate_left(5).wrapping_add(f).wrapping_add(e).wrapping_add(k).wrapping_add(wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (chunk, x) in out.chunks_exact_mut(4).zip(h) {
        chunk.copy_from_slice(&x.to_be_bytes());
    }
    out
}

/// Redis's `xorDigest`: digest ^= SHA1(data). Order-independent.
pub fn xor_digest(digest: &mut Digest, data: &[u8]) {
    for (d, h) in digest.iter_mut().zip(sha1(data)) {
        *d ^= h;
    }
}

/// Redis's `mixDigest`: digest = SHA1(digest ^ SHA1(data)). Order-dependent.
pub fn mix_digest(digest: &mut Digest, data: &[u8]) {
    xor_digest(digest, data);
    *digest = sha1(digest);
}

/// Redis's on-disk/in-memory type number (`OBJ_STRING`...), mixed in first.
fn type_code(v: &Value) -> u32 {
    match v {
        Value::Str(_) => 0,
        Value::List(_) => 1,
        Value::Set(_) => 2,
        Value::Zset(_) => 3,
        Value::Hash(_) => 4,
    }
}

/// Redis's `xorObjectDigest`: the value (and whether it expires) into `digest`.
pub fn object_digest(digest: &mut Digest, obj: &RObj, has_expire: bool) {
    mix_digest(digest, &type_code(&obj.val).to_be_bytes());
    match &obj.val {
        Value::Str(s) => mix_digest(digest, &s.bytes()),
        Value::List(l) => {
            for e in l.iter() {
                mix_digest(digest, e);
            }
        }
        Value::Set(s) => {
            for m in s.iter() {
                xor_digest(digest, &m.bytes());
            }
        }
        Value::Zset(z) => {
            for (member, score) in z.range(0, z.len()) {
                let mut ele = [0u8; 20];
                mix_digest(&mut ele, &member);
                mix_digest(&mut ele, format_double(score).as_bytes());
                xor_digest(digest, &ele);
            }
        }
        Value::Hash(h) => {
            for (field, value) in h.iter() {
                let mut ele = [0u8; 20];
                mix_digest(&mut ele, field);
                mix_digest(&mut ele, value);
                xor_digest(digest, &ele);
            }
        }
    }
    if has_expire {
        xor_digest(digest, b"!!expire!!");
    }
}

/// Redis's `computeDatasetDigest`: every non-empty db's id, then each key/value pair's own
/// digest xored in. All zeros for an empty dataset.
pub fn dataset_digest(dbs: &[Db]) -> Digest {
    let mut fin = [0u8; 20];
    for (j, db) in dbs.iter().enumerate() {
        if db.is_empty() {
            continue;
        }
        mix_digest(&mut fin, &(j as u32).to_be_bytes());
        for (key, obj) in db.dict.iter() {
            let mut d = [0u8; 20];
            mix_digest(&mut d, key);
            object_digest(&mut d, obj, db.expire_of(key).is_some());
            xor_digest(&mut fin, &d);
        }
    }
    fin
}

/// DEBUG DIGEST-VALUE for one key: zeros when absent; logically expired keys still count.
pub fn value_digest(db: &Db, key: &[u8]) -> Digest {
    let mut d = [0u8; 20];
    if let Some(obj) = db.get(key) {
        object_digest(&mut d, obj, db.expire_of(key).is_some());
    }
    d
}

pub fn hex(d: &Digest) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_matches_the_fips_vectors() {
        assert_eq!(hex(&sha1(b"abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(hex(&sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        let long = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        assert_eq!(hex(&sha1(long)), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    }

    #[test]
    fn xor_is_order_free_and_mix_is_not() {
        let (mut a, mut b) = ([0u8; 20], [0u8; 20]);
        xor_digest(&mut a, b"x");
        xor_digest(&mut a, b"y");
        xor_digest(&mut b, b"y");
        xor_digest(&mut b, b"x");
        assert_eq!(a, b);
        let (mut a, mut b) = ([0u8; 20], [0u8; 20]);
        mix_digest(&mut a, b"x");
        mix_digest(&mut a, b"y");
        mix_digest(&mut b, b"y");
        mix_digest(&mut b, b"x");
        assert_ne!(a, b);
    }
}

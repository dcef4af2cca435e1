//! The hash value (Redis's `t_hash.c` object side). Small hashes are one listpack of
//! alternating field, value entries, in insertion order; a hash that gets too many fields or
//! one too long a field or value becomes a hashtable and never goes back, exactly when Redis
//! converts (`hashTypeTryConversion`, `hashTypeSet`), so OBJECT ENCODING agrees.

use super::dict::Dict;
use super::listpack::Listpack;
use super::object::alloc_bytes;
use super::sds::SmallBytes;
use crate::env::Rng;

/// The `hash-max-listpack-*` thresholds in force when a write runs, plus the seed a new
/// hashtable's order derives from.
#[derive(Debug, Clone, Copy)]
pub struct HashLimits {
    pub max_entries: usize,
    pub max_value: usize,
    pub seed: u64,
}

pub enum Hash {
    Listpack(Listpack),
    Table(Box<Dict<SmallBytes>>),
}

impl Default for Hash {
    fn default() -> Self {
        Hash::Listpack(Listpack::new())
    }
}

impl std::fmt::Debug for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(k, v)| (String::from_utf8_lossy(k), String::from_utf8_lossy(v))))
            .finish()
    }
}

impl Clone for Hash {
    fn clone(&self) -> Self {
        match self {
            Hash::Listpack(lp) => Hash::Listpack(lp.clone()),
            Hash::Table(d) => Hash::Table(Box::new(clone_dict(d))),
        }
    }
}

/// A copy with the same contents (COPY). The copy's bucket order derives from its size, so it
/// is as repeatable as the original's.
fn clone_dict(d: &Dict<SmallBytes>) -> Dict<SmallBytes> {
    let mut out = Dict::new(CLONE_SEED ^ d.len() as u64);
    out.reserve(d.len());
    for (k, v) in d.iter() {
        out.insert_new(k, v.clone());
    }
    out
}

const CLONE_SEED: u64 = 0x6861_7368_636c_6f6e;

impl PartialEq for Hash {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl Eq for Hash {}

impl Hash {
    pub fn len(&self) -> usize {
        match self {
            Hash::Listpack(lp) => lp.len() / 2,
            Hash::Table(d) => d.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn encoding(&self) -> &'static str {
        match self {
            Hash::Listpack(_) => "listpack",
            Hash::Table(_) => "hashtable",
        }
    }

    /// Entry index of `field` in a listpack (fields sit at even indexes).
    fn lp_field_index(lp: &Listpack, field: &[u8]) -> Option<usize> {
        lp.iter().step_by(2).position(|f| f == field).map(|i| i * 2)
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match self {
            Hash::Listpack(lp) => {
                let mut it = lp.iter();
                while let Some(f) = it.next() {
                    let v = it.next().expect("listpack hash holds pairs");
                    if f == field {
                        return Some(v);
                    }
                }
                None
            }
            Hash::Table(d) => d.get(field).map(|v| v.as_bytes()),
        }
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// Redis's `hashTypeTryConversion`: a listpack becomes a hashtable before a write whose
    /// fields or values include one longer than `hash-max-listpack-value`.
    pub fn try_conversion<'a>(&mut self, args: impl IntoIterator<Item = &'a [u8]>, limits: HashLimits) {
        if matches!(self, Hash::Listpack(_)) && args.into_iter().any(|a| a.len() > limits.max_value) {
            self.convert(limits.seed);
        }
    }

    /// Listpack to hashtable (Redis's `hashTypeConvertListpack`).
    pub fn convert(&mut self, seed: u64) {
        let Hash::Listpack(lp) = self else { return };
        let mut d = Dict::new(seed);
        d.reserve(lp.len() / 2);
        let mut it = lp.iter();
        while let (Some(f), Some(v)) = (it.next(), it.next()) {
            d.insert_new(f, SmallBytes::new(v));
        }
        *self = Hash::Table(Box::new(d));
    }

    /// Redis's `hashTypeSet`: sets `field`, converting when the pair is too long for a
    /// listpack (HINCRBY* reach here without `try_conversion`) or the listpack grows past
    /// `hash-max-listpack-entries`. Returns true when the field is new.
    pub fn set(&mut self, field: &[u8], value: &[u8], limits: HashLimits) -> bool {
        if field.len() > limits.max_value || value.len() > limits.max_value {
            self.convert(limits.seed);
        }
        match self {
            Hash::Listpack(lp) => {
                let inserted = match Self::lp_field_index(lp, field) {
                    Some(i) => {
                        lp.replace(i + 1, value);
                        false
                    }
                    None => {
                        lp.push_back(field);
                        lp.push_back(value);
                        true
                    }
                };
                if lp.len() / 2 > limits.max_entries {
                    self.convert(limits.seed);
                }
                inserted
            }
            Hash::Table(d) => d.insert(field, SmallBytes::new(value)).is_none(),
        }
    }

    /// Removes `field`; true when it was there.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self {
            Hash::Listpack(lp) => match Self::lp_field_index(lp, field) {
                Some(i) => {
                    lp.remove_range(i, 2);
                    true
                }
                None => false,
            },
            Hash::Table(d) => d.remove(field).is_some(),
        }
    }

    /// Gives a listpack's spare capacity back after a write: Redis reallocates listpacks to
    /// their exact size, and small hashes are where memory per key is decided.
    pub fn shrink_to_fit(&mut self) {
        if let Hash::Listpack(lp) = self {
            lp.shrink_to_fit();
        }
    }

    /// Field, value pairs: insertion order for a listpack, bucket order for a hashtable.
    pub fn iter(&self) -> HashIter<'_> {
        match self {
            Hash::Listpack(lp) => HashIter::Listpack(lp.iter()),
            Hash::Table(d) => HashIter::Table(d.iter()),
        }
    }

    /// One random pair (Redis's `hashTypeRandomElement`).
    pub fn random(&self, rng: &mut impl Rng) -> Option<(&[u8], &[u8])> {
        match self {
            Hash::Listpack(lp) => {
                if lp.is_empty() {
                    return None;
                }
                let i = rng.below((lp.len() / 2) as u64) as usize * 2;
                Some((lp.get(i)?, lp.get(i + 1)?))
            }
            Hash::Table(d) => d.random(rng).map(|(k, v)| (k, v.as_bytes())),
        }
    }

    /// HSCAN over a hashtable: one step from `cursor` (Redis's `dictScan`).
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&[u8], &[u8])) -> u64 {
        match self {
            Hash::Listpack(_) => {
                self.iter().for_each(|(k, v)| f(k, v));
                0
            }
            Hash::Table(d) => d.scan(cursor, |k, v| f(k, v)),
        }
    }

    /// Heap bytes outside the object (MEMORY USAGE), at the allocator's size classes.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Hash::Listpack(lp) => lp.heap_bytes(),
            Hash::Table(d) => {
                let nodes = d.len() * alloc_bytes(Dict::<SmallBytes>::entry_bytes());
                let strings: usize = d.iter().map(|(k, v)| super::sds::heap_bytes_for(k.len()) + v.heap_bytes()).sum();
                alloc_bytes(std::mem::size_of::<Dict<SmallBytes>>())
                    + alloc_bytes(d.buckets() * std::mem::size_of::<usize>())
                    + nodes
                    + strings
            }
        }
    }
}

pub enum HashIter<'a> {
    Listpack(super::listpack::Iter<'a>),
    Table(super::dict::Iter<'a, SmallBytes>),
}

impl<'a> Iterator for HashIter<'a> {
    type Item = (&'a [u8], &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            HashIter::Listpack(it) => Some((it.next()?, it.next()?)),
            HashIter::Table(it) => it.next().map(|(k, v)| (k, v.as_bytes())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: HashLimits = HashLimits { max_entries: 4, max_value: 8, seed: 1 };

    fn filled(n: usize) -> Hash {
        let mut h = Hash::default();
        for i in 0..n {
            h.set(format!("f{i}").as_bytes(), b"v", LIMITS);
        }
        h
    }

    #[test]
    fn listpack_keeps_insertion_order_and_replaces_in_place() {
        let mut h = filled(3);
        assert!(!h.set(b"f0", b"new", LIMITS));
        let pairs: Vec<_> = h.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
        assert_eq!(pairs[0], (b"f0".to_vec(), b"new".to_vec()));
        assert_eq!(pairs[2].0, b"f2");
        assert_eq!(h.encoding(), "listpack");
    }

    #[test]
    fn converts_past_max_entries_not_at_it() {
        let mut h = filled(4);
        assert_eq!(h.encoding(), "listpack");
        h.set(b"f4", b"v", LIMITS);
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.len(), 5);
        assert_eq!(h.get(b"f3"), Some(&b"v"[..]));
        h.remove(b"f4");
        h.remove(b"f3");
        assert_eq!(h.encoding(), "hashtable", "never converts back");
    }

    #[test]
    fn converts_on_a_long_field_or_value() {
        let mut h = filled(1);
        h.try_conversion([&b"12345678"[..]], LIMITS);
        assert_eq!(h.encoding(), "listpack");
        h.try_conversion([&b"123456789"[..]], LIMITS);
        assert_eq!(h.encoding(), "hashtable");
        let mut h = filled(1);
        h.set(b"f", b"123456789", LIMITS);
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.get(b"f"), Some(&b"123456789"[..]));
    }

    #[test]
    fn small_hashes_stay_small() {
        // 100k small hashes cost one of these each, beside the listpack: keep it at 32 bytes
        // (Redis pays a 16-byte robj), and a hashtable node in the 64-byte class.
        assert!(std::mem::size_of::<Hash>() <= 32, "{}", std::mem::size_of::<Hash>());
        assert!(Dict::<SmallBytes>::entry_bytes() <= 64, "{}", Dict::<SmallBytes>::entry_bytes());
    }

    #[test]
    fn remove_from_listpack_keeps_pairs_aligned() {
        let mut h = Hash::default();
        h.set(b"a", b"b", LIMITS);
        h.set(b"b", b"a", LIMITS);
        assert!(h.remove(b"b"));
        assert!(!h.remove(b"zz"));
        assert_eq!(h.get(b"a"), Some(&b"b"[..]));
        assert_eq!(h.get(b"b"), None);
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn matches_an_ordered_model_under_random_writes() {
        use crate::env::SeededRng;
        for seed in 0..40 {
            let mut rng = SeededRng::from_seed(seed);
            let (mut h, mut model) = (Hash::default(), Vec::<(Vec<u8>, Vec<u8>)>::new());
            let mut converted = false;
            for _ in 0..300 {
                let field = format!("f{}", rng.below(12)).into_bytes();
                let value = vec![b'v'; rng.below(10) as usize];
                if rng.below(3) == 0 {
                    assert_eq!(h.remove(&field), model.iter().any(|(f, _)| *f == field));
                    model.retain(|(f, _)| *f != field);
                } else {
                    let was_there = model.iter().any(|(f, _)| *f == field);
                    assert_eq!(h.set(&field, &value, LIMITS), !was_there);
                    match model.iter_mut().find(|(f, _)| *f == field) {
                        Some(pair) => pair.1 = value.clone(),
                        None => model.push((field, value.clone())),
                    }
                    converted |= model.len() > LIMITS.max_entries || value.len() > LIMITS.max_value;
                }
                assert_eq!(h.encoding() == "hashtable", converted, "seed {seed}");
                assert_eq!(h.len(), model.len());
                if !converted {
                    let pairs: Vec<_> = h.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
                    assert_eq!(pairs, model, "listpack keeps insertion order, seed {seed}");
                }
                for (f, v) in &model {
                    assert_eq!(h.get(f), Some(&v[..]));
                }
            }
        }
    }
}

//! Redis objects: a value with its type and encoding, plus the LRU/LFU field that eviction
//! reads. Strings follow `tryObjectEncoding`: integers that fit in a long are `int`-encoded
//! (0..9999 shared when eviction does not need per-object LRU), short strings are `embstr`,
//! the rest `raw`. In-memory encodings are kept apart from RDB type tags (persistence/).

use std::borrow::Cow;

use super::hash::Hash;
use super::sds::SmallBytes;
use super::zset::Zset;
use crate::protocol::parser::parse_ll;

/// Integers below this are shared objects (Redis's `OBJ_SHARED_INTEGERS`).
pub const OBJ_SHARED_INTEGERS: i64 = 10000;
/// Strings up to this length are created `embstr` (Redis's `OBJ_ENCODING_EMBSTR_SIZE_LIMIT`).
pub const OBJ_ENCODING_EMBSTR_SIZE_LIMIT: usize = 44;
/// OBJECT REFCOUNT of a shared object (Redis's `OBJ_SHARED_REFCOUNT`, INT_MAX).
pub const OBJ_SHARED_REFCOUNT: i64 = i32::MAX as i64;

/// A string value in one of Redis's three string encodings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Str {
    Int(i64),
    /// Up to 44 bytes; up to 22 of them live inline in the object itself.
    Emb(SmallBytes),
    /// Raw strings may grow in place (APPEND, SETRANGE), so they keep spare capacity.
    Raw(Box<Vec<u8>>),
}

impl Str {
    /// `createStringObject` + `tryObjectEncoding`.
    pub fn from_bytes(b: &[u8]) -> Str {
        if b.len() <= 20 {
            if let Some(n) = parse_ll(b) {
                return Str::Int(n);
            }
        }
        Self::from_bytes_no_int(b)
    }

    /// A string that keeps its bytes (Redis's `createStringObject` without the int attempt).
    pub fn from_bytes_no_int(b: &[u8]) -> Str {
        if b.len() <= OBJ_ENCODING_EMBSTR_SIZE_LIMIT {
            Str::Emb(b.into())
        } else {
            Str::Raw(Box::new(b.to_vec()))
        }
    }

    pub fn bytes(&self) -> Cow<'_, [u8]> {
        match self {
            Str::Int(n) => Cow::Owned(itoa::Buffer::new().format(*n).as_bytes().to_vec()),
            Str::Emb(b) => Cow::Borrowed(b),
            Str::Raw(v) => Cow::Borrowed(v),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Str::Int(n) => itoa::Buffer::new().format(*n).len(),
            Str::Emb(b) => b.len(),
            Str::Raw(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes as a growable raw string (Redis's `dbUnshareStringValue`).
    pub fn make_raw(&mut self) -> &mut Vec<u8> {
        if !matches!(self, Str::Raw(_)) {
            *self = Str::Raw(Box::new(self.bytes().into_owned()));
        }
        match self {
            Str::Raw(v) => v,
            _ => unreachable!("just made raw"),
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Str::Int(n) => Some(*n),
            Str::Emb(b) => parse_ll(b),
            Str::Raw(v) => parse_ll(v),
        }
    }

    /// Heap bytes behind the string at the allocator's size classes (MEMORY USAGE). Raw
    /// strings count their spare capacity: it is held memory.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Str::Int(_) => 0,
            Str::Emb(b) => b.heap_bytes(),
            Str::Raw(v) => alloc_bytes(std::mem::size_of::<Vec<u8>>()) + alloc_bytes(v.capacity()),
        }
    }

    pub fn encoding(&self) -> &'static str {
        match self {
            Str::Int(_) => "int",
            Str::Emb(_) => "embstr",
            Str::Raw(_) => "raw",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Str(Str),
    /// Two words inline: a small set costs one allocation beside its object, as in Redis.
    Set(super::set::Set),
    Hash(Box<Hash>),
    Zset(Box<Zset>),
    List(Box<super::list::List>),
}

impl Value {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Set(_) => "set",
            Value::Hash(_) => "hash",
            Value::Zset(_) => "zset",
            Value::List(_) => "list",
        }
    }

    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(s) => s.encoding(),
            Value::Set(s) => s.encoding(),
            Value::Hash(h) => h.encoding(),
            Value::Zset(z) => z.encoding(),
            Value::List(l) => l.encoding(),
        }
    }

    /// Heap bytes the value owns outside its object (MEMORY USAGE).
    pub fn heap_bytes(&self) -> usize {
        match self {
            Value::Str(s) => s.heap_bytes(),
            Value::Set(s) => s.heap_bytes(),
            Value::Hash(h) => alloc_bytes(std::mem::size_of::<Hash>()) + h.heap_bytes(),
            Value::Zset(z) => alloc_bytes(std::mem::size_of::<Zset>()) + z.heap_bytes(),
            Value::List(l) => alloc_bytes(std::mem::size_of::<super::list::List>()) + l.heap_bytes(),
        }
    }
}

/// What an allocation of `n` bytes costs: nothing for an empty one (Rust does not allocate),
/// else jemalloc's size class.
pub fn alloc_bytes(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        crate::env::alloc::size_class(n)
    }
}

/// An object in the keyspace. `lru` holds the LRU clock (seconds, 24 bits) or, under an LFU
/// policy, the LFU field (16 bits of minutes + 8 bits of log counter), as Redis's `robj.lru`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RObj {
    pub val: Value,
    pub lru: u32,
    /// A shared integer (OBJECT REFCOUNT answers INT_MAX); only `int`-encoded 0..9999.
    pub shared: bool,
}

impl RObj {
    pub fn new(val: Value, lru: u32) -> Self {
        RObj { val, lru, shared: false }
    }

    /// A string object as `SET` stores it: int-encoded (and shared when allowed) if it can be.
    pub fn string(b: &[u8], lru: u32, share_ints: bool) -> Self {
        let s = Str::from_bytes(b);
        let shared = share_ints && matches!(s, Str::Int(n) if (0..OBJ_SHARED_INTEGERS).contains(&n));
        RObj { val: Value::Str(s), lru, shared }
    }

    pub fn from_int(n: i64, lru: u32, share_ints: bool) -> Self {
        RObj { val: Value::Str(Str::Int(n)), lru, shared: share_ints && (0..OBJ_SHARED_INTEGERS).contains(&n) }
    }

    pub fn refcount(&self) -> i64 {
        if self.shared {
            OBJ_SHARED_REFCOUNT
        } else {
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_encodings_follow_try_object_encoding() {
        assert_eq!(Str::from_bytes(b"12345").encoding(), "int");
        assert_eq!(Str::from_bytes(b"-9223372036854775808").encoding(), "int");
        assert_eq!(Str::from_bytes(b"9223372036854775808").encoding(), "embstr");
        assert_eq!(Str::from_bytes(b"012").encoding(), "embstr");
        assert_eq!(Str::from_bytes(&[b'a'; 44]).encoding(), "embstr");
        assert_eq!(Str::from_bytes(&[b'a'; 45]).encoding(), "raw");
        assert!(RObj::string(b"9999", 0, true).shared);
        assert!(!RObj::string(b"10000", 0, true).shared);
        assert!(!RObj::string(b"5", 0, false).shared);
    }

    #[test]
    fn value_stays_small() {
        // The keyspace holds one per key: keep it at 32 bytes.
        assert!(std::mem::size_of::<RObj>() <= 32, "{}", std::mem::size_of::<RObj>());
    }
}

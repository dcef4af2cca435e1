//! One of the numbered databases: the main dict and the expires dict, as Redis's `redisDb`.
//! Expiry times are absolute Unix milliseconds from the env's wall clock; a key is logically
//! gone once `now_ms > when` even before anything deletes it.

use super::dict::Dict;
use super::object::RObj;
use crate::env::Rng;

pub struct Db {
    pub id: usize,
    pub dict: Dict<RObj>,
    pub expires: Dict<u64>,
    /// Where the active expire cycle's scan of `expires` continues.
    pub expires_cursor: u64,
    /// Average TTL of keys sampled by the expire cycle (INFO keyspace `avg_ttl`), ms.
    pub avg_ttl_ms: u64,
    /// Keys added since the server last published their `new` keyspace event (Redis fires
    /// it in `dbAdd`); None while that event is off, so adding a key costs nothing more.
    pub added: Option<Vec<Vec<u8>>>,
}

/// What a lookup found about expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpireState {
    Live,
    /// Logically expired; deleted when `delete` was allowed (masters), kept otherwise.
    Expired {
        deleted: bool,
    },
}

impl Db {
    pub fn new(id: usize, seed: u64) -> Self {
        Db {
            id,
            dict: Dict::new(seed ^ (id as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            expires: Dict::new(seed.rotate_left(17) ^ id as u64),
            expires_cursor: 0,
            avg_ttl_ms: 0,
            added: None,
        }
    }

    pub fn len(&self) -> usize {
        self.dict.len()
    }

    pub fn is_empty(&self) -> bool {
        self.dict.is_empty()
    }

    pub fn expire_of(&self, key: &[u8]) -> Option<u64> {
        self.expires.get(key).copied()
    }

    /// Redis's `expireIfNeeded`: deletes a logically expired key when `delete` (a master),
    /// and reports what it saw. Replicas pass `delete = false`: they wait for the master's DEL.
    pub fn expire_if_needed(&mut self, key: &[u8], now_ms: u64, delete: bool) -> ExpireState {
        match self.expires.get(key) {
            Some(&when) if now_ms > when => {
                if delete {
                    self.delete(key);
                }
                ExpireState::Expired { deleted: delete }
            }
            _ => ExpireState::Live,
        }
    }

    pub fn get(&self, key: &[u8]) -> Option<&RObj> {
        self.dict.get(key)
    }

    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut RObj> {
        self.dict.get_mut(key)
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        self.dict.contains_key(key)
    }

    /// Adds or overwrites `key` (Redis's `setKey` without the signal); `keep_ttl` keeps an
    /// existing expiry, otherwise it is removed.
    pub fn set(&mut self, key: &[u8], obj: RObj, keep_ttl: bool) {
        if self.dict.insert(key, obj).is_some() {
            if !keep_ttl {
                self.expires.remove(key);
            }
        } else {
            self.note_added(key);
        }
    }

    /// Adds a key that is known to be absent.
    pub fn add(&mut self, key: &[u8], obj: RObj) {
        self.dict.insert_new(key, obj);
        self.note_added(key);
    }

    /// Adds `key` unless it exists; `false` (and `obj` dropped) when it does.
    pub fn try_add(&mut self, key: &[u8], obj: RObj) -> bool {
        let added = self.dict.try_insert_new(key, obj).is_ok();
        if added {
            self.note_added(key);
        }
        added
    }

    fn note_added(&mut self, key: &[u8]) {
        if let Some(a) = &mut self.added {
            a.push(key.to_vec());
        }
    }

    pub fn delete(&mut self, key: &[u8]) -> Option<RObj> {
        let (_, obj) = self.dict.remove(key)?;
        self.expires.remove(key);
        Some(obj)
    }

    pub fn set_expire(&mut self, key: &[u8], when_ms: u64) {
        debug_assert!(self.dict.contains_key(key), "expire set on a missing key");
        match self.expires.get_mut(key) {
            Some(w) => *w = when_ms,
            None => self.expires.insert_new(key, when_ms),
        }
    }

    pub fn remove_expire(&mut self, key: &[u8]) -> bool {
        self.expires.remove(key).is_some()
    }

    pub fn clear(&mut self) -> usize {
        let n = self.dict.len();
        self.dict.clear();
        self.expires.clear();
        self.expires_cursor = 0;
        self.avg_ttl_ms = 0;
        n
    }

    /// SWAPDB: the data and its expiry bookkeeping trade places; each db keeps its id.
    pub fn swap_contents(&mut self, other: &mut Db) {
        std::mem::swap(&mut self.dict, &mut other.dict);
        std::mem::swap(&mut self.expires, &mut other.expires);
        std::mem::swap(&mut self.expires_cursor, &mut other.expires_cursor);
        std::mem::swap(&mut self.avg_ttl_ms, &mut other.avg_ttl_ms);
    }

    pub fn random_key(&self, rng: &mut impl Rng) -> Option<&[u8]> {
        self.dict.random(rng).map(|(k, _)| k)
    }
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Db({}, keys={}, expires={})", self.id, self.dict.len(), self.expires.len())
    }
}

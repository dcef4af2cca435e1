//! One of the numbered databases: the main dict and the expires dict, as Redis's `redisDb`.
//! Expiry times are absolute Unix milliseconds from the env's wall clock; a key is logically
//! gone once `now_ms > when` even before anything deletes it.

use super::dict::Dict;
use super::object::RObj;
use super::slot_to_keys::{SlotKeys, SlotToKeys};
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
    /// Cluster mode's per-slot key lists; None in standalone mode, which pays nothing more.
    pub slot_to_keys: Option<Box<SlotToKeys>>,
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
            slot_to_keys: None,
        }
    }

    /// Keeps per-slot key lists from now on (`cluster-enabled yes`). Keys already present join
    /// in the dict's order.
    pub fn enable_slot_to_keys(&mut self) {
        let mut s = SlotToKeys::new(self.dict.hasher());
        for (k, _) in self.dict.iter() {
            s.insert(k);
        }
        self.slot_to_keys = Some(Box::new(s));
    }

    /// The keys of `slot`, the most recently added first (none without the index).
    pub fn keys_in_slot(&self, slot: u16) -> SlotKeys<'_> {
        self.slot_to_keys.as_deref().map_or(SlotKeys::NONE, |s| s.keys(slot))
    }

    pub fn count_keys_in_slot(&self, slot: u16) -> usize {
        self.slot_to_keys.as_ref().map_or(0, |s| s.count(slot))
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
        self.debug_assert_indexed();
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

    /// Redis's `dbAdd` side effects: the `new` event's queue, and the head of the slot's list
    /// (an overwrite is not an add: the key keeps its place there).
    fn note_added(&mut self, key: &[u8]) {
        if let Some(a) = &mut self.added {
            a.push(key.to_vec());
        }
        if let Some(s) = &mut self.slot_to_keys {
            s.insert(key);
        }
        self.debug_assert_indexed();
    }

    pub fn delete(&mut self, key: &[u8]) -> Option<RObj> {
        let (_, obj) = self.dict.remove(key)?;
        self.expires.remove(key);
        if let Some(s) = &mut self.slot_to_keys {
            let indexed = s.remove(key);
            debug_assert!(indexed, "a deleted key was not in its slot's list");
        }
        self.debug_assert_indexed();
        Some(obj)
    }

    fn debug_assert_indexed(&self) {
        debug_assert!(self.slot_to_keys.as_ref().is_none_or(|s| s.len() == self.dict.len()));
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
        if let Some(s) = &mut self.slot_to_keys {
            s.clear();
        }
        self.expires_cursor = 0;
        self.avg_ttl_ms = 0;
        n
    }

    /// SWAPDB: the data and its expiry and slot bookkeeping trade places; each db keeps its id.
    pub fn swap_contents(&mut self, other: &mut Db) {
        std::mem::swap(&mut self.dict, &mut other.dict);
        std::mem::swap(&mut self.expires, &mut other.expires);
        std::mem::swap(&mut self.slot_to_keys, &mut other.slot_to_keys);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::key_hash_slot;

    fn cluster_db() -> Db {
        let mut db = Db::new(0, 1);
        db.enable_slot_to_keys();
        db
    }

    fn val() -> RObj {
        RObj::from_int(1, 0, false)
    }

    fn slot_keys(db: &Db) -> Vec<String> {
        db.keys_in_slot(key_hash_slot(b"t")).map(|k| String::from_utf8_lossy(k).into_owned()).collect()
    }

    #[test]
    fn slot_lists_put_added_keys_first_and_leave_overwritten_ones_in_place() {
        let mut db = cluster_db();
        db.set(b"{t}a", val(), false);
        db.add(b"{t}b", val());
        assert!(db.try_add(b"{t}c", val()));
        assert!(!db.try_add(b"{t}a", val()), "exists");
        db.set(b"{t}d", val(), false);
        db.set(b"{t}b", val(), false);
        assert_eq!(slot_keys(&db), ["{t}d", "{t}c", "{t}b", "{t}a"]);
        db.delete(b"{t}c");
        assert!(db.delete(b"{t}c").is_none());
        assert_eq!(slot_keys(&db), ["{t}d", "{t}b", "{t}a"]);
        // RENAME's shape: the target is deleted, then added, so it moves to the head.
        db.delete(b"{t}a");
        db.add(b"{t}a", val());
        assert_eq!(slot_keys(&db), ["{t}a", "{t}d", "{t}b"]);
        assert_eq!(db.count_keys_in_slot(key_hash_slot(b"t")), 3);
        assert_eq!(db.count_keys_in_slot(key_hash_slot(b"u")), 0);
    }

    #[test]
    fn clear_empties_the_slot_lists_and_keeps_indexing() {
        let mut db = cluster_db();
        db.add(b"{t}a", val());
        db.add(b"{t}b", val());
        assert_eq!(db.clear(), 2);
        assert_eq!((slot_keys(&db).len(), db.count_keys_in_slot(key_hash_slot(b"t"))), (0, 0));
        db.add(b"{t}c", val());
        assert_eq!(slot_keys(&db), ["{t}c"]);
    }

    #[test]
    fn swapped_contents_take_their_slot_lists_along() {
        let mut a = cluster_db();
        let mut b = Db::new(1, 1);
        b.enable_slot_to_keys();
        a.add(b"{t}a", val());
        b.add(b"{t}b1", val());
        b.add(b"{t}b2", val());
        a.swap_contents(&mut b);
        assert_eq!(slot_keys(&a), ["{t}b2", "{t}b1"]);
        assert_eq!(slot_keys(&b), ["{t}a"]);
        a.delete(b"{t}b2");
        assert_eq!(slot_keys(&a), ["{t}b1"]);
    }

    #[test]
    fn enabling_the_slot_index_takes_keys_already_there_and_standalone_has_none() {
        let mut db = Db::new(0, 1);
        db.add(b"{t}a", val());
        assert!(db.slot_to_keys.is_none());
        assert_eq!(db.count_keys_in_slot(key_hash_slot(b"t")), 0);
        assert_eq!(db.keys_in_slot(key_hash_slot(b"t")).count(), 0);
        db.enable_slot_to_keys();
        assert_eq!(slot_keys(&db), ["{t}a"]);
    }
}

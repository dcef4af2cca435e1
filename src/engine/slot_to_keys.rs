//! Cluster mode's per-slot key lists (Redis 7.0's `slots_to_keys`), so that COUNTKEYSINSLOT,
//! GETKEYSINSLOT, the "slot still holds keys" checks and the deletion of a lost slot's keys
//! cost what the slot holds, not a scan of the whole keyspace (`redis-cli --cluster reshard`
//! asks GETKEYSINSLOT once per batch of every slot it moves).
//!
//! The order is Redis's: a key joins the head of its slot's list when it is added (`dbAdd`: a
//! new key, RENAME's and RESTORE's target, a key loaded from an RDB), keeps its place when it is
//! overwritten (`dbOverwrite`), and leaves in O(1) without moving the others. Redis threads the
//! lists through its dict entries; here they live beside the dict: a slab of nodes linked by
//! `u32` indices with a free list, and an open-addressing table from a key to its node, so a
//! delete finds the node without a walk. The table holds only indices (the key's bytes are in
//! the node) and its order never reaches a reply.

use std::hash::{BuildHasher, Hasher};

use super::sds::{heap_bytes_for, SmallBytes};
use crate::cluster::{key_hash_slot, CLUSTER_SLOTS};

/// No node: the end of a list, an empty table cell, an empty free list.
const NIL: u32 = u32::MAX;
/// Smallest table; it never shrinks below this.
const TABLE_LEN_MIN: usize = 16;
/// The table grows past this load (linear probing stays short below it).
const TABLE_LOAD_MAX_PERCENT: usize = 75;
/// The table shrinks, and the slab is compacted, when this few of its cells or nodes are used.
const SHRINK_BELOW_PERCENT: usize = 12;
/// A slab this small is never compacted: its free list is cheap.
const COMPACT_NODES_MIN: usize = 1024;

struct Node {
    key: SmallBytes,
    /// Toward the head (newer keys) of the slot's list; on the free list, unused.
    prev: u32,
    /// Toward the tail (older keys); on the free list, the next free node.
    next: u32,
}

pub struct SlotToKeys {
    nodes: Vec<Node>,
    free_head: u32,
    len: usize,
    /// What the nodes' keys allocate beyond the nodes (keys too long to be inline).
    key_heap_bytes: usize,
    /// Per slot, the newest key's node and the number of keys. Empty until a first key
    /// arrives, so an index on a db that never holds keys costs no 128 KiB.
    heads: Box<[u32]>,
    counts: Box<[u32]>,
    /// Key → node, linear probing over a power-of-two number of cells.
    table: Vec<u32>,
    hasher: foldhash::fast::FixedState,
}

impl SlotToKeys {
    /// An empty index hashing keys with `hasher` (the db's seeded one: no per-process state).
    pub fn new(hasher: foldhash::fast::FixedState) -> Self {
        SlotToKeys {
            nodes: Vec::new(),
            free_head: NIL,
            len: 0,
            key_heap_bytes: 0,
            heads: Box::default(),
            counts: Box::default(),
            table: Vec::new(),
            hasher,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Redis's `countKeysInSlot`.
    pub fn count(&self, slot: u16) -> usize {
        self.counts.get(slot as usize).map_or(0, |&n| n as usize)
    }

    /// The keys of `slot`, the most recently added first.
    pub fn keys(&self, slot: u16) -> SlotKeys<'_> {
        let head = self.heads.get(slot as usize).copied().unwrap_or(NIL);
        SlotKeys { nodes: &self.nodes, next: head, left: self.count(slot) }
    }

    /// Links a key that is not in the index at the head of its slot's list.
    pub fn insert(&mut self, key: &[u8]) {
        debug_assert!(self.find(key).is_none(), "key already indexed");
        if self.heads.is_empty() {
            self.heads = vec![NIL; CLUSTER_SLOTS].into_boxed_slice();
            self.counts = vec![0; CLUSTER_SLOTS].into_boxed_slice();
        }
        if (self.len + 1) * 100 > self.table.len() * TABLE_LOAD_MAX_PERCENT {
            self.rebuild_table(table_len_for(self.len + 1));
        }
        let slot = key_hash_slot(key) as usize;
        let head = self.heads[slot];
        let idx = self.alloc(Node { key: SmallBytes::new(key), prev: NIL, next: head });
        if head != NIL {
            debug_assert_eq!(self.nodes[head as usize].prev, NIL);
            self.nodes[head as usize].prev = idx;
        }
        self.heads[slot] = idx;
        self.counts[slot] += 1;
        self.len += 1;
        self.key_heap_bytes += heap_bytes_for(key.len());
        let cell = self.free_cell(key);
        self.table[cell] = idx;
    }

    /// Unlinks `key`; false when it was not indexed.
    pub fn remove(&mut self, key: &[u8]) -> bool {
        let Some(cell) = self.find(key) else { return false };
        let idx = self.table[cell];
        self.remove_cell(cell);
        let Node { prev, next, .. } = self.nodes[idx as usize];
        let slot = key_hash_slot(key) as usize;
        match prev {
            NIL => {
                debug_assert_eq!(self.heads[slot], idx);
                self.heads[slot] = next;
            }
            p => self.nodes[p as usize].next = next,
        }
        if next != NIL {
            self.nodes[next as usize].prev = prev;
        }
        self.counts[slot] -= 1;
        self.len -= 1;
        self.key_heap_bytes -= heap_bytes_for(key.len());
        self.release(idx);
        if self.len == 0 {
            self.clear();
        } else if self.len * 100 < self.nodes.len() * SHRINK_BELOW_PERCENT && self.nodes.len() >= COMPACT_NODES_MIN {
            self.compact();
        } else if self.len * 100 < self.table.len() * SHRINK_BELOW_PERCENT && self.table.len() > TABLE_LEN_MIN {
            self.rebuild_table(table_len_for(self.len));
        }
        true
    }

    /// Forgets every key and gives back the memory.
    pub fn clear(&mut self) {
        *self = SlotToKeys::new(self.hasher);
    }

    /// Memory the index holds (MEMORY STATS' `overhead.hashtable.slot-to-keys`).
    pub fn bytes(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Node>()
            + self.key_heap_bytes
            + (self.heads.len() + self.counts.len() + self.table.capacity()) * std::mem::size_of::<u32>()
    }

    /// What one key of `key_len` bytes adds (MEMORY USAGE): its node and its copy of the key.
    pub fn entry_bytes(key_len: usize) -> usize {
        std::mem::size_of::<Node>() + heap_bytes_for(key_len)
    }

    fn alloc(&mut self, node: Node) -> u32 {
        match self.free_head {
            NIL => {
                assert!(self.nodes.len() < NIL as usize, "slot index full");
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
            idx => {
                self.free_head = self.nodes[idx as usize].next;
                self.nodes[idx as usize] = node;
                idx
            }
        }
    }

    fn release(&mut self, idx: u32) {
        let free_head = self.free_head;
        self.nodes[idx as usize] = Node { key: SmallBytes::new(b""), prev: NIL, next: free_head };
        self.free_head = idx;
    }

    fn home(&self, key: &[u8]) -> usize {
        let mut h = self.hasher.build_hasher();
        h.write(key);
        (h.finish() as usize) & (self.table.len() - 1)
    }

    /// The table cell holding `key`'s node.
    fn find(&self, key: &[u8]) -> Option<usize> {
        if self.table.is_empty() {
            return None;
        }
        let mask = self.table.len() - 1;
        let mut cell = self.home(key);
        loop {
            match self.table[cell] {
                NIL => return None,
                idx if &*self.nodes[idx as usize].key == key => return Some(cell),
                _ => cell = (cell + 1) & mask,
            }
        }
    }

    /// The first empty cell on `key`'s probe path (the caller keeps the load below 100%).
    fn free_cell(&self, key: &[u8]) -> usize {
        let mask = self.table.len() - 1;
        let mut cell = self.home(key);
        while self.table[cell] != NIL {
            cell = (cell + 1) & mask;
        }
        cell
    }

    /// Empties `cell` and shifts later entries of its run back, so that no probe path has a
    /// hole before its key (no tombstones).
    fn remove_cell(&mut self, cell: usize) {
        let mask = self.table.len() - 1;
        let mut hole = cell;
        let mut cur = cell;
        loop {
            cur = (cur + 1) & mask;
            let idx = self.table[cur];
            if idx == NIL {
                break;
            }
            let home = self.home(&self.nodes[idx as usize].key);
            // The entry may fill the hole if the hole lies on its path, from home to cur.
            if cur.wrapping_sub(home) & mask >= cur.wrapping_sub(hole) & mask {
                self.table[hole] = idx;
                hole = cur;
            }
        }
        self.table[hole] = NIL;
    }

    fn rebuild_table(&mut self, len: usize) {
        debug_assert!(len.is_power_of_two() && self.len * 100 <= len * TABLE_LOAD_MAX_PERCENT);
        self.table = vec![NIL; len];
        for slot in 0..self.heads.len() {
            let mut idx = self.heads[slot];
            while idx != NIL {
                let cell = self.free_cell(&self.nodes[idx as usize].key);
                self.table[cell] = idx;
                idx = self.nodes[idx as usize].next;
            }
        }
    }

    /// Renumbers the live nodes densely, slot by slot in list order, dropping the free list.
    fn compact(&mut self) {
        let mut old = std::mem::take(&mut self.nodes);
        self.nodes.reserve_exact(self.len);
        self.free_head = NIL;
        for slot in 0..self.heads.len() {
            let mut idx = self.heads[slot];
            let mut prev = NIL;
            while idx != NIL {
                let node = &mut old[idx as usize];
                let new = self.nodes.len() as u32;
                match prev {
                    NIL => self.heads[slot] = new,
                    p => self.nodes[p as usize].next = new,
                }
                self.nodes.push(Node { key: std::mem::replace(&mut node.key, SmallBytes::new(b"")), prev, next: NIL });
                prev = new;
                idx = node.next;
            }
        }
        debug_assert_eq!(self.nodes.len(), self.len);
        self.rebuild_table(table_len_for(self.len));
    }
}

/// Cells for `n` keys below the maximum load.
fn table_len_for(n: usize) -> usize {
    (n * 100 / TABLE_LOAD_MAX_PERCENT + 1).next_power_of_two().max(TABLE_LEN_MIN)
}

/// One slot's keys, newest first.
pub struct SlotKeys<'a> {
    nodes: &'a [Node],
    next: u32,
    left: usize,
}

impl SlotKeys<'_> {
    /// No keys (a db without the index).
    pub const NONE: SlotKeys<'static> = SlotKeys { nodes: &[], next: NIL, left: 0 };
}

impl<'a> Iterator for SlotKeys<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.next == NIL {
            debug_assert_eq!(self.left, 0, "a slot's list is shorter than its count");
            return None;
        }
        let node = &self.nodes[self.next as usize];
        self.next = node.next;
        self.left -= 1;
        Some(&node.key)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for SlotKeys<'_> {}

impl std::fmt::Debug for SlotToKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SlotToKeys(keys={}, nodes={}, cells={})", self.len, self.nodes.len(), self.table.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> SlotToKeys {
        SlotToKeys::new(foldhash::fast::FixedState::with_seed(7))
    }

    fn keys_of(s: &SlotToKeys, slot: u16) -> Vec<String> {
        s.keys(slot).map(|k| String::from_utf8_lossy(k).into_owned()).collect()
    }

    fn slot_t() -> u16 {
        key_hash_slot(b"{t}")
    }

    /// Every indexed key is found through the table, and each slot's list matches its count.
    fn check(s: &SlotToKeys) {
        let mut total = 0;
        for slot in 0..CLUSTER_SLOTS as u16 {
            let keys: Vec<&[u8]> = s.keys(slot).collect();
            assert_eq!(keys.len(), s.count(slot), "slot {slot}");
            for k in keys {
                assert_eq!(key_hash_slot(k), slot);
                assert!(s.find(k).is_some(), "{k:?} not in the table");
            }
            total += s.count(slot);
        }
        assert_eq!(total, s.len());
    }

    #[test]
    fn newest_key_first_and_deletion_keeps_the_others_order() {
        let mut s = index();
        for k in ["{t}a", "{t}b", "{t}c", "{t}d"] {
            s.insert(k.as_bytes());
        }
        s.insert(b"other");
        assert_eq!(keys_of(&s, slot_t()), ["{t}d", "{t}c", "{t}b", "{t}a"]);
        assert_eq!(s.count(slot_t()), 4);
        assert!(s.remove(b"{t}c"));
        assert!(!s.remove(b"{t}c"), "already gone");
        assert_eq!(keys_of(&s, slot_t()), ["{t}d", "{t}b", "{t}a"]);
        assert!(s.remove(b"{t}d"));
        assert!(s.remove(b"{t}a"));
        assert_eq!(keys_of(&s, slot_t()), ["{t}b"]);
        assert_eq!((s.count(slot_t()), s.len()), (1, 2));
        assert_eq!(keys_of(&s, key_hash_slot(b"other")), ["other"]);
        check(&s);
    }

    #[test]
    fn freed_nodes_are_reused_before_the_slab_grows() {
        let mut s = index();
        for i in 0..10 {
            s.insert(format!("k{i}").as_bytes());
        }
        let slab = s.nodes.len();
        for i in 0..5 {
            assert!(s.remove(format!("k{i}").as_bytes()));
        }
        for i in 10..15 {
            s.insert(format!("k{i}").as_bytes());
        }
        assert_eq!(s.nodes.len(), slab, "new keys took the freed nodes");
        assert_eq!(s.free_head, NIL);
        check(&s);
    }

    #[test]
    fn removing_the_last_key_gives_the_memory_back() {
        let mut s = index();
        let empty = s.bytes();
        s.insert(b"{t}a");
        assert!(s.bytes() > empty + 2 * CLUSTER_SLOTS * 4);
        s.remove(b"{t}a");
        assert_eq!((s.bytes(), s.len(), s.count(slot_t())), (empty, 0, 0));
        s.insert(b"{t}b");
        assert_eq!(keys_of(&s, slot_t()), ["{t}b"]);
    }

    #[test]
    fn compaction_after_mass_deletion_keeps_every_slot_order() {
        let mut s = index();
        let n = 20_000;
        for i in 0..n {
            s.insert(format!("{{s{}}}k{i}", i % 7).as_bytes());
        }
        let cells = s.table.len();
        for i in (0..n).filter(|i| i % 10 != 3) {
            assert!(s.remove(format!("{{s{}}}k{i}", i % 7).as_bytes()));
        }
        assert!(s.nodes.len() < n / 4 && s.table.len() < cells / 4, "{s:?}");
        for tag in 0..7 {
            let slot = key_hash_slot(format!("s{tag}").as_bytes());
            let want: Vec<String> =
                (0..n).rev().filter(|i| i % 10 == 3 && i % 7 == tag).map(|i| format!("{{s{tag}}}k{i}")).collect();
            assert_eq!(keys_of(&s, slot), want);
        }
        check(&s);
    }

    #[test]
    fn table_stays_consistent_under_churn() {
        let mut s = index();
        let mut live = std::collections::BTreeSet::new();
        let mut x: u64 = 1;
        for _ in 0..50_000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let key = format!("key:{}", (x >> 33) % 3000).into_bytes();
            if live.remove(&key) {
                assert!(s.remove(&key));
            } else {
                s.insert(&key);
                live.insert(key);
            }
        }
        assert_eq!(s.len(), live.len());
        for k in &live {
            assert!(s.find(k).is_some());
        }
        check(&s);
    }
}

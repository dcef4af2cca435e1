//! Keys map to 16384 hash slots by CRC16 (XMODEM) of the key, or of its hash tag: the part
//! between the first `{` and the next `}` when that part is not empty, so that related keys
//! (`{user1}.name`, `{user1}.mail`) land in one slot and can be used in one command.

/// Number of hash slots (Redis's `CLUSTER_SLOTS`).
pub const CLUSTER_SLOTS: usize = 16384;
/// Bytes of a slot bitmap as it travels in the bus header (`myslots`).
pub const SLOT_BITMAP_LEN: usize = CLUSTER_SLOTS / 8;

/// Redis's `keyHashSlot`.
pub fn key_hash_slot(key: &[u8]) -> u16 {
    let hashed = hash_tag(key).unwrap_or(key);
    crc16::State::<crc16::XMODEM>::calculate(hashed) & (CLUSTER_SLOTS as u16 - 1)
}

/// The key's hash tag, when it has a non-empty one.
fn hash_tag(key: &[u8]) -> Option<&[u8]> {
    let open = key.iter().position(|&b| b == b'{')?;
    let len = key[open + 1..].iter().position(|&b| b == b'}')?;
    (len > 0).then(|| &key[open + 1..open + 1 + len])
}

/// A set of slots with the bus's bit order (bit `slot & 7` of byte `slot / 8`).
#[derive(Clone, PartialEq, Eq)]
pub struct SlotBitmap(pub Box<[u8; SLOT_BITMAP_LEN]>);

impl Default for SlotBitmap {
    fn default() -> Self {
        SlotBitmap(Box::new([0; SLOT_BITMAP_LEN]))
    }
}

impl std::fmt::Debug for SlotBitmap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SlotBitmap({})", format_ranges(&self.ranges(), " "))
    }
}

impl SlotBitmap {
    pub fn get(&self, slot: u16) -> bool {
        self.0[slot as usize / 8] & (1 << (slot & 7)) != 0
    }

    pub fn set(&mut self, slot: u16) {
        self.0[slot as usize / 8] |= 1 << (slot & 7);
    }

    pub fn clear(&mut self, slot: u16) {
        self.0[slot as usize / 8] &= !(1 << (slot & 7));
    }

    pub fn count(&self) -> usize {
        self.0.iter().map(|b| b.count_ones() as usize).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&b| b == 0)
    }

    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        (0..CLUSTER_SLOTS as u16).filter(|&s| self.get(s))
    }

    /// The set as inclusive ranges, in slot order.
    pub fn ranges(&self) -> Vec<(u16, u16)> {
        let mut out: Vec<(u16, u16)> = Vec::new();
        for s in self.iter() {
            match out.last_mut() {
                Some((_, end)) if *end + 1 == s => *end = s,
                _ => out.push((s, s)),
            }
        }
        out
    }
}

/// `0-5460 5461 5462-10922`: how CLUSTER NODES and nodes.conf write slot ranges.
pub fn format_ranges(ranges: &[(u16, u16)], sep: &str) -> String {
    let parts: Vec<String> =
        ranges.iter().map(|&(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") }).collect();
    parts.join(sep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis_cluster_keyslot() {
        // Values from redis-server 7.0.15's CLUSTER KEYSLOT.
        assert_eq!(key_hash_slot(b"foo"), 12182);
        assert_eq!(key_hash_slot(b"bar"), 5061);
        assert_eq!(key_hash_slot(b""), 0);
        assert_eq!(key_hash_slot(b"{user1000}.following"), key_hash_slot(b"user1000"));
        assert_eq!(key_hash_slot(b"foo{}{bar}"), key_hash_slot(b"foo{}{bar}"));
        assert_eq!(key_hash_slot(b"foo{{bar}}zap"), key_hash_slot(b"{bar"));
        assert_eq!(key_hash_slot(b"foo{bar}{zap}"), key_hash_slot(b"bar"));
    }

    #[test]
    fn an_empty_tag_hashes_the_whole_key() {
        assert_eq!(hash_tag(b"foo{}{bar}"), None);
        assert_eq!(hash_tag(b"{}"), None);
        assert_eq!(hash_tag(b"a{b"), None);
        assert_eq!(hash_tag(b"a{b}c"), Some(&b"b"[..]));
    }

    #[test]
    fn bitmap_ranges_round_trip() {
        let mut b = SlotBitmap::default();
        for s in (0..=5460).chain([7000, 16383]) {
            b.set(s);
        }
        assert_eq!(b.count(), 5463);
        assert_eq!(format_ranges(&b.ranges(), " "), "0-5460 7000 16383");
        b.clear(7000);
        assert!(!b.get(7000));
        assert_eq!(b.0[0], 0xff);
    }
}

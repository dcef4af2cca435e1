//! maxmemory: approximate LRU/LFU/TTL eviction as Redis's `evict.c` does it. Keys are sampled
//! (`maxmemory-samples` per db per round) into a pool of the 16 best candidates kept sorted by
//! "idle" score, and the best is evicted until used memory is under the limit. LFU keeps a
//! logarithmic 8-bit counter that decays by one per `lfu-decay-time` minutes.

use super::config::MaxmemoryPolicy;
use super::Server;
use crate::engine::object::RObj;
use crate::env::Rng;

pub const LRU_CLOCK_MAX: u32 = (1 << 24) - 1;
/// LRU clock resolution, ms.
const LRU_CLOCK_RESOLUTION_MS: u64 = 1000;
/// A new object's LFU counter, so that fresh keys aren't evicted before they can be used.
pub const LFU_INIT_VAL: u8 = 5;
/// Candidates kept between rounds (Redis's `EVPOOL_SIZE`).
const EVPOOL_SIZE: usize = 16;

/// Minutes, 16 bits: the LFU field's decay clock.
pub fn lfu_time_minutes(unix_ms: u64) -> u32 {
    ((unix_ms / 1000 / 60) & 65535) as u32
}

fn lfu_time_elapsed(ldt: u32, now_min: u32) -> u32 {
    if now_min >= ldt {
        now_min - ldt
    } else {
        65535 - ldt + now_min
    }
}

/// The counter after decay (Redis's `LFUDecrAndReturn`); what OBJECT FREQ answers.
pub fn lfu_decr_and_return(lru: u32, unix_ms: u64, decay_time: u64) -> u8 {
    let ldt = lru >> 8;
    let counter = (lru & 255) as u64;
    let periods = u64::from(lfu_time_elapsed(ldt, lfu_time_minutes(unix_ms))).checked_div(decay_time).unwrap_or(0);
    counter.saturating_sub(periods) as u8
}

/// Logarithmic increment: the higher the counter, the less likely it grows.
pub fn lfu_log_incr(counter: u8, log_factor: u64, rng: &mut impl Rng) -> u8 {
    if counter == 255 {
        return 255;
    }
    let r = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    let baseval = f64::from(counter.saturating_sub(LFU_INIT_VAL));
    let p = 1.0 / (baseval * log_factor as f64 + 1.0);
    if r < p {
        counter + 1
    } else {
        counter
    }
}

/// Idle time in ms from an LRU field (Redis's `estimateObjectIdleTime`).
pub fn estimate_idle_ms(lru: u32, lru_clock: u32) -> u64 {
    if lru_clock >= lru {
        u64::from(lru_clock - lru) * LRU_CLOCK_RESOLUTION_MS
    } else {
        u64::from(lru_clock + (LRU_CLOCK_MAX - lru)) * LRU_CLOCK_RESOLUTION_MS
    }
}

/// Whether commands may share integer objects: not when each object needs its own LRU/LFU.
pub fn can_share_integers(srv: &Server) -> bool {
    let p = srv.config.hot.maxmemory_policy;
    srv.config.hot.maxmemory == 0 || !(p.is_lru() || p.is_lfu())
}

impl Server {
    /// The LRU/LFU field for a new object.
    pub fn new_obj_lru(&self) -> u32 {
        if self.config.hot.maxmemory_policy.is_lfu() {
            (lfu_time_minutes(self.now.unix_ms) << 8) | u32::from(LFU_INIT_VAL)
        } else {
            self.lru_clock()
        }
    }

    /// Updates an accessed object's LRU/LFU field (Redis's lookupKey touch).
    pub fn touch_obj(&mut self, db: usize, key: &[u8]) {
        self.lookup_touch(db, key, false);
    }

    /// Finds `key` and touches its LRU/LFU field, with one probe of the dict; counts a
    /// keyspace hit or miss when `count` (read lookups).
    pub fn lookup_touch(&mut self, db: usize, key: &[u8], count: bool) -> Option<&mut RObj> {
        let policy = self.config.hot.maxmemory_policy;
        let (now, decay, factor) = (self.now.unix_ms, self.config.hot.lfu_decay_time, self.config.hot.lfu_log_factor);
        let clock = self.lru_clock();
        let Server { dbs, stats, rng, .. } = self;
        let found = dbs[db].get_mut(key);
        if count {
            match found {
                Some(_) => stats.keyspace_hits += 1,
                None => stats.keyspace_misses += 1,
            }
        }
        let o = found?;
        if !o.shared {
            if policy.is_lfu() {
                let c = lfu_decr_and_return(o.lru, now, decay);
                let c = lfu_log_incr(c, factor, rng);
                o.lru = (lfu_time_minutes(now) << 8) | u32::from(c);
            } else {
                o.lru = clock;
            }
        }
        Some(o)
    }

    /// Memory counted against maxmemory (Redis subtracts replication/AOF buffers; none yet).
    fn memory_for_evict(&self) -> u64 {
        self.sys.used_memory()
    }

    /// Redis's `performEvictions`: frees keys until under maxmemory. False when it could not
    /// (policy noeviction, or nothing left to evict): DENYOOM commands then get OOM.
    pub fn perform_evictions(&mut self) -> bool {
        let maxmemory = self.config.hot.maxmemory;
        if maxmemory == 0 {
            return true;
        }
        let used = self.memory_for_evict();
        if used <= maxmemory {
            return true;
        }
        let policy = self.config.hot.maxmemory_policy;
        if policy == MaxmemoryPolicy::NoEviction {
            return false;
        }
        let mut pool: Vec<(u64, usize, Box<[u8]>)> = Vec::with_capacity(EVPOOL_SIZE + 1);
        while self.memory_for_evict() > maxmemory {
            let Some((db, key)) = self.pick_victim(policy, &mut pool) else { return false };
            self.dbs[db].delete(&key);
            self.stats.evictedkeys += 1;
            self.propagate_del(db, &key);
            self.deleted_by_server(None, db, &key, super::notify::Removal::Evicted);
        }
        true
    }

    fn pick_victim(
        &mut self,
        policy: MaxmemoryPolicy,
        pool: &mut Vec<(u64, usize, Box<[u8]>)>,
    ) -> Option<(usize, Box<[u8]>)> {
        let allkeys = policy.is_allkeys();
        if matches!(policy, MaxmemoryPolicy::AllkeysRandom | MaxmemoryPolicy::VolatileRandom) {
            let n = self.dbs.len();
            let start = self.rng.below(n as u64) as usize;
            for i in 0..n {
                let db = &self.dbs[(start + i) % n];
                let key = if allkeys {
                    db.dict.random(&mut self.rng).map(|(k, _)| k)
                } else {
                    db.expires.random(&mut self.rng).map(|(k, _)| k)
                };
                if let Some(k) = key {
                    return Some((db.id, k.into()));
                }
            }
            return None;
        }
        loop {
            let mut total = 0;
            for dbi in 0..self.dbs.len() {
                total += self.populate_pool(dbi, policy, pool);
            }
            if total == 0 {
                return None;
            }
            // Best candidates are at the end; skip ghosts deleted since they were sampled.
            while let Some((_, db, key)) = pool.pop() {
                let present =
                    if allkeys { self.dbs[db].contains(&key) } else { self.dbs[db].expire_of(&key).is_some() };
                if present {
                    return Some((db, key));
                }
            }
        }
    }

    /// Samples one db into the pool; returns the size of the dict it sampled.
    fn populate_pool(&mut self, dbi: usize, policy: MaxmemoryPolicy, pool: &mut Vec<(u64, usize, Box<[u8]>)>) -> usize {
        let samples = self.config.hot.maxmemory_samples;
        let clock = self.lru_clock();
        let (now, decay) = (self.now.unix_ms, self.config.hot.lfu_decay_time);
        let db = &self.dbs[dbi];
        let mut sampled: Vec<(Box<[u8]>, u64)> = Vec::with_capacity(samples);
        let score = |o: &RObj, expire: Option<u64>| -> u64 {
            match policy {
                MaxmemoryPolicy::VolatileTtl => u64::MAX - expire.unwrap_or(u64::MAX),
                p if p.is_lfu() => 255 - u64::from(lfu_decr_and_return(o.lru, now, decay)),
                _ => estimate_idle_ms(o.lru, clock),
            }
        };
        let size = if policy.is_allkeys() {
            db.dict.sample(&mut self.rng, samples, |k, o| sampled.push((k.into(), score(o, None))));
            db.dict.len()
        } else {
            db.expires.sample(&mut self.rng, samples, |k, &when| {
                if let Some(o) = db.dict.get(k) {
                    sampled.push((k.into(), score(o, Some(when))));
                }
            });
            db.expires.len()
        };
        for (key, idle) in sampled {
            if pool.iter().any(|(_, d, k)| *d == dbi && *k == key) {
                continue;
            }
            let pos = pool.partition_point(|(s, _, _)| *s < idle);
            if pool.len() >= EVPOOL_SIZE {
                if pos == 0 {
                    continue;
                }
                pool.remove(0);
                pool.insert(pos - 1, (idle, dbi, key));
            } else {
                pool.insert(pos, (idle, dbi, key));
            }
        }
        size
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::SeededRng;

    #[test]
    fn lfu_counter_grows_logarithmically_and_decays() {
        let mut rng = SeededRng::from_seed(3);
        let mut c = LFU_INIT_VAL;
        for _ in 0..1000 {
            c = lfu_log_incr(c, 10, &mut rng);
        }
        assert!((10..40).contains(&c), "counter after 1000 hits: {c}");
        let lru = (lfu_time_minutes(0) << 8) | u32::from(c);
        assert_eq!(lfu_decr_and_return(lru, 0, 1), c);
        assert_eq!(lfu_decr_and_return(lru, 5 * 60_000, 1), c - 5);
    }

    #[test]
    fn idle_time_wraps_with_the_clock() {
        assert_eq!(estimate_idle_ms(10, 15), 5000);
        assert_eq!(estimate_idle_ms(LRU_CLOCK_MAX - 1, 1), 2000);
    }
}

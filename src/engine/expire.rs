//! Redis's active expire cycle (`activeExpireCycle`, slow mode): each cron tick walks the
//! expires dict of each db from a saved cursor, deletes what is logically expired, and keeps
//! going while more than `acceptable_stale`% of the sampled keys were expired, within a CPU
//! time budget. Lazy expiry on access (`Db::expire_if_needed`) catches the rest.

use super::db::Db;

const ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP: u64 = 20;
const ACTIVE_EXPIRE_CYCLE_SLOW_TIME_PERC: u64 = 25;
const ACTIVE_EXPIRE_CYCLE_ACCEPTABLE_STALE: u64 = 10;
/// How many databases one cycle visits (Redis's `CRON_DBS_PER_CALL`).
const CRON_DBS_PER_CALL: usize = 16;

/// Tunables derived from `active-expire-effort` (1..10), as Redis derives them.
#[derive(Debug, Clone, Copy)]
pub struct ExpireEffort {
    keys_per_loop: u64,
    slow_time_perc: u64,
    acceptable_stale: u64,
}

impl ExpireEffort {
    pub fn new(active_expire_effort: u64) -> Self {
        let effort = active_expire_effort.clamp(1, 10) - 1;
        ExpireEffort {
            keys_per_loop: ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP + ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP / 4 * effort,
            slow_time_perc: ACTIVE_EXPIRE_CYCLE_SLOW_TIME_PERC + 2 * effort,
            acceptable_stale: ACTIVE_EXPIRE_CYCLE_ACCEPTABLE_STALE - effort,
        }
    }
}

/// State kept between cycles.
#[derive(Debug, Default)]
pub struct ActiveExpire {
    current_db: usize,
    /// Set when the last cycle stopped on its time limit (INFO `expired_time_cap_reached_count`).
    pub timelimit_exit: bool,
    pub time_cap_reached_count: u64,
    /// Percentage of stale keys seen by recent cycles (INFO `expired_stale_perc`), smoothed.
    pub stale_perc: f64,
}

impl ActiveExpire {
    /// Runs one slow cycle. `now_ms` is the wall clock that decides expiry; `mono_us` reads
    /// the monotonic clock for the time budget; `on_expired(db, key)` is called for each key
    /// deleted (the caller counts, propagates DEL and notifies).
    pub fn cycle(
        &mut self,
        dbs: &mut [Db],
        effort: ExpireEffort,
        hz: u64,
        now_ms: u64,
        mono_us: &dyn Fn() -> u64,
        on_expired: &mut dyn FnMut(usize, &[u8]),
    ) {
        let start_us = mono_us();
        let timelimit_us = (effort.slow_time_perc * 1_000_000 / hz.max(1) / 100).max(1);
        self.timelimit_exit = false;
        let (mut total_sampled, mut total_expired) = (0u64, 0u64);
        let n = dbs.len().min(CRON_DBS_PER_CALL);
        let mut iteration = 0u64;
        'dbs: for _ in 0..n {
            let idx = self.current_db % dbs.len();
            self.current_db = self.current_db.wrapping_add(1);
            let db = &mut dbs[idx];
            loop {
                let (sampled, expired) = sample_bucket_run(db, effort, now_ms, on_expired);
                total_sampled += sampled;
                total_expired += expired;
                iteration += 1;
                if iteration.is_multiple_of(16) && mono_us().saturating_sub(start_us) > timelimit_us {
                    self.timelimit_exit = true;
                    self.time_cap_reached_count += 1;
                    break 'dbs;
                }
                if sampled == 0 || expired * 100 / sampled <= effort.acceptable_stale {
                    break;
                }
            }
        }
        let current = if total_sampled > 0 { total_expired as f64 / total_sampled as f64 } else { 0.0 };
        self.stale_perc = current * 0.05 + self.stale_perc * 0.95;
    }
}

/// Visits up to `keys_per_loop` keys of the expires dict from the db's cursor. Returns
/// (sampled, expired).
fn sample_bucket_run(
    db: &mut Db,
    effort: ExpireEffort,
    now_ms: u64,
    on_expired: &mut dyn FnMut(usize, &[u8]),
) -> (u64, u64) {
    let size = db.expires.len() as u64;
    if size == 0 {
        db.avg_ttl_ms = 0;
        return (0, 0);
    }
    let num = size.min(effort.keys_per_loop);
    let max_buckets = num * 20;
    let (mut sampled, mut checked_buckets) = (0u64, 0u64);
    let mut victims: Vec<Box<[u8]>> = Vec::new();
    let (mut ttl_sum, mut ttl_samples) = (0u64, 0u64);
    while sampled < num && checked_buckets < max_buckets {
        let cursor = db.expires_cursor;
        db.expires_cursor = db.expires.scan(cursor, |k, &when| {
            sampled += 1;
            if now_ms > when {
                victims.push(k.into());
            } else {
                ttl_sum += when - now_ms;
                ttl_samples += 1;
            }
        });
        checked_buckets += 1;
        if db.expires_cursor == 0 {
            break;
        }
    }
    for k in &victims {
        db.delete(k);
        on_expired(db.id, k);
    }
    if let Some(avg) = ttl_sum.checked_div(ttl_samples) {
        db.avg_ttl_ms = if db.avg_ttl_ms == 0 { avg } else { (db.avg_ttl_ms / 50) * 49 + avg / 50 };
    }
    (sampled, victims.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::object::RObj;

    #[test]
    fn cycle_removes_expired_keys_and_keeps_live_ones() {
        let mut dbs = vec![Db::new(0, 1), Db::new(1, 1)];
        for i in 0..1000u64 {
            let key = format!("k{i}");
            dbs[0].add(key.as_bytes(), RObj::from_int(1, 0, false));
            dbs[0].set_expire(key.as_bytes(), if i % 2 == 0 { 100 } else { 10_000 });
        }
        let mut ae = ActiveExpire::default();
        let mut gone = 0;
        for _ in 0..200 {
            ae.cycle(&mut dbs, ExpireEffort::new(1), 10, 500, &|| 0, &mut |_, _| gone += 1);
        }
        assert_eq!(gone, 500);
        assert_eq!(dbs[0].len(), 500);
        assert_eq!(dbs[0].expires.len(), 500);
        assert!(dbs[0].avg_ttl_ms > 9000 && dbs[0].avg_ttl_ms <= 9500, "{}", dbs[0].avg_ttl_ms);
    }
}

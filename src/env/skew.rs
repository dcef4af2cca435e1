//! Clock faults per node, because madsim gives every node the same true time and real machines
//! disagree: expiry (`unix_ms`, absolute `PXAT` deadlines) and failover timeouts (`now_ms`) must
//! hold up when a clock is set wrong, runs fast or slow, or is stepped.
//!
//! [`SkewedClock`] wraps any [`Clock`]. Clones share the faults, so the simulator's nemesis keeps
//! a clone of each node's clock and changes its faults while the node runs.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::Clock;

const PPM: i128 = 1_000_000;

/// Beyond ±1e6 ppm a clock would stop or run backwards; real crystals err by about ±100 ppm,
/// but tests may exaggerate to reach the bug sooner.
const MAX_DRIFT_PPM: i64 = 999_999;

#[derive(Debug, Default)]
struct Skew {
    /// Error of the wall clock when the current drift rate began: the fixed offset, every
    /// jump, and the drift accumulated under earlier rates.
    unix_offset_us: i128,
    unix_drift_ppm: i64,
    unix_drift_since_us: u64,
    mono_drift_ppm: i64,
    /// Inner and skewed monotonic time when the current monotonic rate began.
    mono_anchor_inner_us: u64,
    mono_anchor_us: u64,
}

impl Skew {
    fn unix_error_us(&self, inner_us: u64) -> i128 {
        let elapsed_us = inner_us.saturating_sub(self.unix_drift_since_us) as i128;
        self.unix_offset_us + elapsed_us * self.unix_drift_ppm as i128 / PPM
    }

    fn mono_us(&self, inner_us: u64) -> u64 {
        let elapsed_us = inner_us.saturating_sub(self.mono_anchor_inner_us) as i128;
        let scaled_us = elapsed_us * (PPM + self.mono_drift_ppm as i128) / PPM;
        self.mono_anchor_us + scaled_us as u64
    }
}

/// A node's clock with its own faults on top of the true (inner) clock.
#[derive(Clone, Debug)]
pub struct SkewedClock<C: Clock> {
    inner: C,
    skew: Arc<Mutex<Skew>>,
    /// The highest `now_us` handed out: integer rounding across rate changes must never show
    /// as the monotonic clock stepping back.
    mono_high_us: Arc<AtomicU64>,
}

impl<C: Clock> SkewedClock<C> {
    /// A clock that agrees with `inner` until a fault is set.
    pub fn new(inner: C) -> Self {
        SkewedClock { inner, skew: Arc::default(), mono_high_us: Arc::default() }
    }

    pub fn inner(&self) -> &C {
        &self.inner
    }

    /// A wall clock set wrong (a bad RTC at boot, a wrong time zone applied to UTC, no NTP):
    /// from now on `unix_ms` is `offset_ms` off true time, plus any drift from here on. Expiry
    /// on this node fires early or late; replicas must still follow the master's `PXAT`/DEL.
    pub fn set_offset_ms(&self, offset_ms: i64) {
        let now_us = self.inner.now_us();
        let mut skew = self.lock();
        skew.unix_offset_us = offset_ms as i128 * 1000;
        skew.unix_drift_since_us = now_us;
    }

    /// The wall clock is stepped by `delta_ms` at once: NTP correcting a drifted clock, a VM
    /// resumed after a pause, an operator's `date -s`. Backwards steps make keys come back to
    /// life on a master that checks expiry lazily; the monotonic clock is untouched, so
    /// timeouts must not notice.
    pub fn jump_ms(&self, delta_ms: i64) {
        self.lock().unix_offset_us += delta_ms as i128 * 1000;
    }

    /// The wall clock gains `ppm` µs per second of true time (negative: loses), as a crystal
    /// off its rating does with no NTP to slew it. The error reached so far is kept.
    pub fn set_drift_ppm(&self, ppm: i64) {
        assert!(ppm.abs() <= MAX_DRIFT_PPM, "drift {ppm} ppm would stop the clock");
        let now_us = self.inner.now_us();
        let mut skew = self.lock();
        skew.unix_offset_us = skew.unix_error_us(now_us);
        skew.unix_drift_since_us = now_us;
        skew.unix_drift_ppm = ppm;
    }

    /// The node's timers run `ppm` fast (negative: slow) against its peers', as on a throttled
    /// or overcommitted VM: its `down-after-milliseconds`, `cluster-node-timeout` and
    /// `repl-timeout` fire early or late. The monotonic clock stays continuous and never goes
    /// back; `sleep_ms` lasts the same amount of this node's time.
    pub fn set_monotonic_drift_ppm(&self, ppm: i64) {
        assert!(ppm.abs() <= MAX_DRIFT_PPM, "drift {ppm} ppm would stop the clock");
        let now_us = self.inner.now_us();
        let mut skew = self.lock();
        skew.mono_anchor_us = skew.mono_us(now_us);
        skew.mono_anchor_inner_us = now_us;
        skew.mono_drift_ppm = ppm;
    }

    /// NTP catches up: one step back to true wall time and no more drift on either clock. The
    /// monotonic clock keeps its lead or lag, because it can't step.
    pub fn heal(&self) {
        self.set_offset_ms(0);
        self.set_drift_ppm(0);
        self.set_monotonic_drift_ppm(0);
    }

    /// How far `unix_ms` is from true wall time now, for the trace.
    pub fn unix_offset_ms(&self) -> i64 {
        (self.lock().unix_error_us(self.inner.now_us()) / 1000) as i64
    }

    fn lock(&self) -> MutexGuard<'_, Skew> {
        self.skew.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<C: Clock> Clock for SkewedClock<C> {
    /// Derived from `now_us`, so both agree under drift.
    fn now_ms(&self) -> u64 {
        self.now_us() / 1000
    }

    fn now_us(&self) -> u64 {
        let us = self.lock().mono_us(self.inner.now_us());
        self.mono_high_us.fetch_max(us, Ordering::Relaxed).max(us)
    }

    /// Clamped at the epoch: a backwards jump past 1970 reads as 0, not as a wrapped u64.
    fn unix_ms(&self) -> u64 {
        let error_us = self.lock().unix_error_us(self.inner.now_us());
        let unix_us = self.inner.unix_ms() as i128 * 1000 + error_us;
        (unix_us.max(0) / 1000) as u64
    }

    fn sleep_ms(&self, ms: u64) -> impl Future<Output = ()> + Send {
        // A fast clock reaches `ms` of its own time in less true time; round up so a timer
        // never fires before its deadline on this node's clock.
        let rate = PPM + self.lock().mono_drift_ppm as i128;
        let inner_ms = (ms as i128 * PPM + rate - 1) / rate;
        self.inner.sleep_ms(inner_ms as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::{Rng, SeededRng};

    const UNIX_START_MS: u64 = 1_700_000_000_000;

    /// True time, advanced by hand; records what callers slept.
    #[derive(Clone, Debug, Default)]
    struct ManualClock {
        us: Arc<AtomicU64>,
        slept_ms: Arc<Mutex<Vec<u64>>>,
    }

    impl ManualClock {
        fn advance_ms(&self, ms: u64) {
            self.us.fetch_add(ms * 1000, Ordering::Relaxed);
        }
    }

    impl Clock for ManualClock {
        fn now_ms(&self) -> u64 {
            self.now_us() / 1000
        }
        fn now_us(&self) -> u64 {
            self.us.load(Ordering::Relaxed)
        }
        fn unix_ms(&self) -> u64 {
            UNIX_START_MS + self.now_ms()
        }
        fn sleep_ms(&self, ms: u64) -> impl Future<Output = ()> + Send {
            self.slept_ms.lock().unwrap().push(ms);
            std::future::ready(())
        }
    }

    fn skewed() -> (ManualClock, SkewedClock<ManualClock>) {
        let truth = ManualClock::default();
        (truth.clone(), SkewedClock::new(truth))
    }

    #[test]
    fn without_faults_time_passes_through() {
        let (truth, clock) = skewed();
        truth.advance_ms(1234);
        assert_eq!((clock.now_ms(), clock.now_us()), (1234, 1_234_000));
        assert_eq!(clock.unix_ms(), UNIX_START_MS + 1234);
    }

    #[test]
    fn fixed_offset_moves_the_wall_clock_only() {
        let (truth, clock) = skewed();
        clock.set_offset_ms(-5_000);
        truth.advance_ms(100);
        assert_eq!(clock.unix_ms(), UNIX_START_MS + 100 - 5_000);
        assert_eq!(clock.now_ms(), 100);
        assert_eq!(clock.unix_offset_ms(), -5_000);
    }

    #[test]
    fn backward_jump_moves_the_wall_clock_back_but_not_the_monotonic_one() {
        let (truth, clock) = skewed();
        truth.advance_ms(10_000);
        let before = (clock.now_ms(), clock.unix_ms());
        clock.jump_ms(-60_000);
        assert_eq!(clock.unix_ms(), before.1 - 60_000);
        assert_eq!(clock.now_ms(), before.0);
        clock.jump_ms(90_000);
        assert_eq!(clock.unix_offset_ms(), 30_000);
    }

    #[test]
    fn drift_gains_ppm_of_elapsed_true_time() {
        let (truth, clock) = skewed();
        clock.set_drift_ppm(1_000);
        truth.advance_ms(100_000);
        assert_eq!(clock.unix_ms(), UNIX_START_MS + 100_000 + 100);
        assert_eq!(clock.now_ms(), 100_000);
    }

    #[test]
    fn changing_drift_keeps_the_error_reached_so_far() {
        let (truth, clock) = skewed();
        clock.set_drift_ppm(1_000);
        truth.advance_ms(10_000);
        clock.set_drift_ppm(-1_000);
        assert_eq!(clock.unix_offset_ms(), 10);
        truth.advance_ms(10_000);
        assert_eq!(clock.unix_offset_ms(), 0);
    }

    #[test]
    fn monotonic_drift_scales_elapsed_time_and_sleeps() {
        let (truth, clock) = skewed();
        truth.advance_ms(1_000);
        clock.set_monotonic_drift_ppm(500_000);
        truth.advance_ms(10_000);
        assert_eq!(clock.now_ms(), 1_000 + 15_000);
        assert_eq!(clock.unix_ms(), UNIX_START_MS + 11_000, "the wall clock has its own drift");
        drop(clock.sleep_ms(1_500));
        assert_eq!(*truth.slept_ms.lock().unwrap(), vec![1_000]);
    }

    #[test]
    fn monotonic_clock_never_goes_back_across_drift_changes() {
        let (truth, clock) = skewed();
        let mut rng = SeededRng::from_seed(42);
        let mut last_us = 0;
        for _ in 0..1_000 {
            if rng.below(4) == 0 {
                clock.set_monotonic_drift_ppm(rng.below(1_999_999) as i64 - MAX_DRIFT_PPM);
            }
            truth.us.fetch_add(rng.below(5_000), Ordering::Relaxed);
            let now_us = clock.now_us();
            assert!(now_us >= last_us, "{now_us} < {last_us}");
            last_us = now_us;
        }
    }

    #[test]
    fn clones_share_faults() {
        let (_truth, clock) = skewed();
        let nemesis = clock.clone();
        nemesis.jump_ms(7_000);
        assert_eq!(clock.unix_ms(), UNIX_START_MS + 7_000);
    }

    #[test]
    fn heal_steps_back_to_true_time_and_stops_drift() {
        let (truth, clock) = skewed();
        clock.set_drift_ppm(5_000);
        clock.jump_ms(3_000);
        truth.advance_ms(10_000);
        clock.heal();
        truth.advance_ms(10_000);
        assert_eq!(clock.unix_ms(), truth.unix_ms());
    }

    #[test]
    fn wall_clock_clamps_at_the_epoch() {
        let (_truth, clock) = skewed();
        clock.jump_ms(-(UNIX_START_MS as i64) - 1_000);
        assert_eq!(clock.unix_ms(), 0);
    }
}

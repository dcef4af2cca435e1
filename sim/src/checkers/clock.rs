//! A node's wall clock as a function of true time, rebuilt from the clock changes the nemesis
//! applied, so that expiry can be judged by the clock the node actually read.
//!
//! Between changes the error grows linearly (drift), and a change may step it (jump, offset):
//! node time `clk(t) = t + err(t)` is increasing inside each segment (drift > −1e6 ppm) and may
//! step down at a change. Its extremes over an interval are therefore at segment ends.

use crate::history::ClockChange;

/// Rounding in `SkewedClock` (µs → ms) and in this model: judgments allow this much slack.
pub const CLOCK_SLACK_US: i64 = 2_000;

#[derive(Clone, Debug, Default)]
pub struct ClockTimeline {
    changes: Vec<ClockChange>,
}

impl ClockTimeline {
    /// `changes` in time order; before the first one the clock is exact.
    pub fn new(changes: &[ClockChange]) -> Self {
        debug_assert!(changes.windows(2).all(|w| w[0].at_us <= w[1].at_us));
        ClockTimeline { changes: changes.to_vec() }
    }

    fn err_in_segment(seg: Option<&ClockChange>, t_us: u64) -> i64 {
        match seg {
            None => 0,
            Some(c) => {
                let elapsed = t_us.saturating_sub(c.at_us) as i128;
                (c.error_us as i128 + elapsed * c.drift_ppm as i128 / 1_000_000) as i64
            }
        }
    }

    /// Node time at true time `t_us` (µs since the world started, plus the node's error).
    pub fn clk(&self, t_us: u64) -> i64 {
        let seg = self.changes.iter().rev().find(|c| c.at_us <= t_us);
        t_us as i64 + Self::err_in_segment(seg, t_us)
    }

    /// (min, max) of node time over true times `a_us..=b_us`.
    pub fn range(&self, a_us: u64, b_us: u64) -> (i64, i64) {
        debug_assert!(a_us <= b_us);
        let mut lo = self.clk(a_us);
        let mut hi = self.clk(b_us);
        let (mut lo_seen, mut hi_seen) = (lo, hi);
        // Each change inside the interval ends one segment (its left limit is a candidate
        // maximum) and starts another (its value is a candidate minimum).
        let mut prev: Option<&ClockChange> = self.changes.iter().rev().find(|c| c.at_us <= a_us);
        for c in self.changes.iter().filter(|c| c.at_us > a_us && c.at_us <= b_us) {
            let left_limit = c.at_us as i64 + Self::err_in_segment(prev, c.at_us);
            let start = c.at_us as i64 + c.error_us;
            hi_seen = hi_seen.max(left_limit);
            lo_seen = lo_seen.min(start);
            prev = Some(c);
        }
        lo = lo.min(lo_seen);
        hi = hi.max(hi_seen);
        (lo, hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(at_us: u64, error_us: i64, drift_ppm: i64) -> ClockChange {
        ClockChange { at_us, error_us, drift_ppm }
    }

    #[test]
    fn exact_clock_is_true_time() {
        let c = ClockTimeline::new(&[]);
        assert_eq!(c.clk(5), 5);
        assert_eq!(c.range(5, 10), (5, 10));
    }

    #[test]
    fn backward_jump_makes_the_maximum_lie_before_it() {
        let c = ClockTimeline::new(&[change(1_000, -500, 0)]);
        assert_eq!(c.clk(999), 999);
        assert_eq!(c.clk(1_000), 500);
        assert_eq!(c.range(0, 1_200), (0, 1_000), "the left limit at the jump");
    }

    #[test]
    fn drift_grows_the_error() {
        let c = ClockTimeline::new(&[change(0, 0, 100_000)]);
        assert_eq!(c.clk(1_000_000), 1_100_000);
        let c = ClockTimeline::new(&[change(0, 0, 100_000), change(1_000_000, 0, 0)]);
        assert_eq!(c.range(0, 2_000_000), (0, 2_000_000));
        assert_eq!(c.range(500_000, 1_000_001), (550_000, 1_100_000));
    }
}

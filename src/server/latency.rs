//! The latency monitor (Redis's `latency.c`): events slower than `latency-monitor-threshold`
//! ms are kept per event name as a ring of 160 one-per-second samples (the worst of a second
//! wins), with the all-time maximum; LATENCY LATEST / HISTORY / RESET / DOCTOR read them.
//! Events: `command`, `fast-command`, `fork`, `expire-cycle`, and the AOF's `aof-write`,
//! `aof-write-pending-fsync`, `aof-write-active-child`, `aof-write-alone`, `aof-fsync-always`.

use std::collections::BTreeMap;

use super::Server;

/// Samples kept per event (`LATENCY_TS_LEN`).
pub const LATENCY_TS_LEN: usize = 160;

/// One event's samples: (unix seconds, ms), oldest first.
#[derive(Debug, Clone, Default)]
pub struct Series {
    pub samples: std::collections::VecDeque<(u64, u64)>,
    pub max: u64,
}

/// Every event's series, by name.
#[derive(Debug, Clone, Default)]
pub struct LatencyMonitor {
    pub events: BTreeMap<String, Series>,
}

impl LatencyMonitor {
    /// Redis's `latencyAddSample`.
    pub fn add(&mut self, event: &str, ms: u64, now_secs: u64) {
        let s = self.events.entry(event.to_string()).or_default();
        s.max = s.max.max(ms);
        if let Some(last) = s.samples.back_mut() {
            if last.0 == now_secs {
                last.1 = last.1.max(ms);
                return;
            }
        }
        if s.samples.len() == LATENCY_TS_LEN {
            s.samples.pop_front();
        }
        s.samples.push_back((now_secs, ms));
    }

    /// LATENCY RESET: all events, or the named ones; how many were reset.
    pub fn reset(&mut self, events: &[&str]) -> usize {
        if events.is_empty() {
            let n = self.events.len();
            self.events.clear();
            return n;
        }
        events.iter().filter(|e| self.events.remove(**e).is_some()).count()
    }
}

impl Server {
    /// Redis's `latencyAddSampleIfNeeded`: records `event` when monitoring is on and `ms`
    /// reaches the threshold.
    pub fn latency_sample(&mut self, event: &str, ms: u64) {
        // Read from the config's parsed values: this runs after every command.
        let threshold = self.config.hot.latency_monitor_threshold;
        if threshold > 0 && ms >= threshold {
            let now = self.now.unix_ms / 1000;
            self.latency.add(event, ms, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sample_per_second_the_worst_wins_and_the_ring_keeps_160() {
        let mut m = LatencyMonitor::default();
        m.add("command", 5, 100);
        m.add("command", 9, 100);
        m.add("command", 3, 100);
        m.add("command", 4, 101);
        let s = &m.events["command"];
        assert_eq!(s.samples.iter().copied().collect::<Vec<_>>(), [(100, 9), (101, 4)]);
        assert_eq!(s.max, 9);
        for t in 0..200 {
            m.add("fork", t, 1000 + t);
        }
        assert_eq!(m.events["fork"].samples.len(), LATENCY_TS_LEN);
        assert_eq!(m.events["fork"].samples.front(), Some(&(1040, 40)));
        assert_eq!(m.reset(&["fork", "nope"]), 1);
        assert_eq!(m.reset(&[]), 1);
    }
}

//! Log lines in Redis's format (`pid:role dd Mon yyyy hh:mm:ss.mmm <level> message`), so tools
//! that watch a Redis log work unchanged. The date comes from the env's wall clock.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug = 0,
    Verbose = 1,
    Notice = 2,
    Warning = 3,
}

impl Level {
    fn mark(self) -> char {
        match self {
            Level::Debug => '.',
            Level::Verbose => '-',
            Level::Notice => '*',
            Level::Warning => '#',
        }
    }
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// (year, month 1..12, day) from days since 1970-01-01 (Howard Hinnant's civil_from_days).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

pub fn format_line(pid: u32, role: char, unix_ms: u64, level: Level, msg: &str) -> String {
    let secs = (unix_ms / 1000) as i64;
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!(
        "{pid}:{role} {d:02} {} {y} {:02}:{:02}:{:02}.{:03} {} {msg}",
        MONTHS[(m - 1) as usize],
        sod / 3600,
        sod % 3600 / 60,
        sod % 60,
        unix_ms % 1000,
        level.mark()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_log_format() {
        // 2026-11-25 00:11:29.478 UTC
        let ms = 1_795_565_489_478;
        assert_eq!(
            format_line(23217, 'M', ms, Level::Notice, "Ready to accept connections"),
            "23217:M 25 Nov 2026 00:11:29.478 * Ready to accept connections"
        );
    }
}

//! Parsing one directive's value into the form CONFIG GET prints, with Redis's error text
//! for each type. Every parser here mirrors a C function whose quirks reach users: `memtoull`
//! saturates on overflow, `strtoll` skips leading blanks, save takes "+5", a multi-word value
//! splits at each single space. Matching them keeps CONFIG SET's answers equal to Redis's.

use super::table::{Def, Kind, Num, Special, Unit, MULTI_ARG};
use crate::util::arg_i64 as string2ll;

/// Redis's CONFIG_BINDADDR_MAX.
const BINDADDR_MAX: usize = 16;
/// Redis's LOADBUF_SIZE: the enum error is cut to fit it.
const LOADBUF_SIZE: usize = 256;
/// Client classes of client-output-buffer-limit, in Redis's order.
const OBUF_CLASSES: [&str; 3] = ["normal", "slave", "pubsub"];

/// `memtoull`: digits then an optional unit; no sign, no blanks. Digits that overflow
/// saturate, as strtoull does.
pub fn memtoull(s: &str) -> Option<u64> {
    let digits_end = s.bytes().position(|b| !b.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(digits_end);
    let mul: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    if digits.len() >= 128 {
        return None;
    }
    let val = digits.bytes().fold(0u64, |acc, d| acc.saturating_mul(10).saturating_add(u64::from(d - b'0')));
    if val > u64::MAX / mul {
        return None;
    }
    Some(val * mul)
}

/// C's `strtoll(s, &end, base)`: leading blanks, a sign, digits (saturating). Returns the
/// value, the unparsed rest, and whether it overflowed (errno ERANGE).
pub fn strtoll(s: &str, base: u32) -> (i64, &str, bool) {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let n = body.bytes().take_while(|b| (*b as char).is_digit(base)).count();
    if n == 0 {
        return (0, s, false);
    }
    let mut mag: i128 = 0;
    for b in body[..n].bytes() {
        mag = (mag * i128::from(base) + i128::from((b as char).to_digit(base).unwrap_or(0))).min(1 << 64);
    }
    let v = if neg { -mag } else { mag };
    let clamped = v.clamp(i128::from(i64::MIN), i128::from(i64::MAX));
    (clamped as i64, &body[n..], clamped != v)
}

/// How CONFIG SET turns one value into arguments: a multi-word directive splits at each
/// single space (sdssplitlen), so doubled spaces give empty words, and "" gives none.
pub fn split_value(d: &Def, value: &str) -> Vec<String> {
    if d.has(MULTI_ARG) {
        if value.is_empty() {
            return Vec::new();
        }
        value.split(' ').map(String::from).collect()
    } else {
        vec![value.to_string()]
    }
}

/// Validates `args` for `d` and returns the new value as CONFIG GET prints it. `current`
/// matters for directives that change only part of their value.
pub fn parse(d: &Def, args: &[String], current: &str) -> Result<String, String> {
    let one = || args.first().map(String::as_str).unwrap_or("");
    match d.kind {
        Kind::Bool { check } => {
            let on = match one().to_ascii_lowercase().as_str() {
                "yes" => true,
                "no" => false,
                _ => return Err("argument must be 'yes' or 'no'".into()),
            };
            check.map_or(Ok(()), |c| c(u32::from(on)))?;
            Ok(if on { "yes" } else { "no" }.into())
        }
        Kind::Num(n) => parse_num(d, &n, one()).map(|v| format_num(&n, v)),
        Kind::Enum { names, check } => parse_enum(names, args, d.has(MULTI_ARG), check),
        Kind::Str { check } => {
            check.map_or(Ok(()), |c| c(one()))?;
            Ok(one().to_string())
        }
        Kind::Special(s) => parse_special(s, args, current),
    }
}

/// `numericParseString` then `numericBoundaryCheck`.
fn parse_num(d: &Def, n: &Num, s: &str) -> Result<i64, String> {
    let v = read_num(n.unit, s).ok_or_else(|| {
        match n.unit {
            Unit::MemoryOrPercent => "argument must be a memory or percent value",
            Unit::Memory => "argument must be a memory value",
            Unit::Octal => "argument couldn't be parsed as an octal number",
            Unit::Count => "argument couldn't be parsed into an integer",
        }
        .to_string()
    })?;
    check_bounds(n, v)?;
    Ok(if d.name == "hz" { v.clamp(1, 500) } else { v })
}

fn read_num(unit: Unit, s: &str) -> Option<i64> {
    match unit {
        Unit::Count => string2ll(s.as_bytes()),
        // The bits of an unsigned long long, as Redis keeps them in a long long.
        Unit::Memory => memtoull(s).map(|v| v as i64),
        Unit::MemoryOrPercent => memtoull(s).map(|v| v as i64).or_else(|| {
            let pct = s.strip_suffix('%').filter(|p| !p.is_empty())?;
            string2ll(pct.as_bytes()).filter(|&p| p >= 0).map(|p| -p)
        }),
        Unit::Octal => match strtoll(s, 8) {
            (v, "", false) => Some(v),
            _ => None,
        },
    }
}

fn check_bounds(n: &Num, v: i64) -> Result<(), String> {
    if n.unsigned {
        let (u, lo, hi) = (v as u64, n.min as u64, n.max as u64);
        if u < lo || u > hi {
            return Err(if n.unit == Unit::Octal {
                format!("argument must be between {lo:o} and {hi:o} inclusive")
            } else {
                format!("argument must be between {lo} and {hi} inclusive")
            });
        }
    } else if n.unit == Unit::MemoryOrPercent && v < 0 {
        if v < n.min {
            return Err(format!("percentage argument must be less or equal to {}", -n.min));
        }
    } else if v < n.min || v > n.max {
        return Err(format!("argument must be between {} and {} inclusive", n.min, n.max));
    }
    Ok(())
}

/// `numericConfigGet`.
pub fn format_num(n: &Num, v: i64) -> String {
    match n.unit {
        Unit::MemoryOrPercent if v < 0 => format!("{}%", -v),
        Unit::Memory | Unit::MemoryOrPercent => (v as u64).to_string(),
        Unit::Octal => format!("{:o}", v as u64),
        Unit::Count => v.to_string(),
    }
}

/// `enumConfigSet` (several words OR their bits for a MULTI_ARG enum) then `enumConfigGet`.
fn parse_enum(
    names: &[(&str, u32)],
    args: &[String],
    bitflags: bool,
    check: Option<super::table::FlagCheck>,
) -> Result<String, String> {
    let value = enum_value(names, args, bitflags).ok_or_else(|| {
        let list: Vec<&str> = names.iter().map(|(n, _)| *n).collect();
        let mut text = format!("argument(s) must be one of the following: {}", list.join(", "));
        text.truncate(LOADBUF_SIZE - 1);
        text
    })?;
    check.map_or(Ok(()), |c| c(value))?;
    Ok(enum_name(names, value, bitflags))
}

fn enum_value(names: &[(&str, u32)], args: &[String], bitflags: bool) -> Option<u32> {
    if args.is_empty() || (!bitflags && args.len() != 1) {
        return None;
    }
    args.iter().try_fold(0, |acc, a| {
        let bits = names.iter().filter(|(n, _)| n.eq_ignore_ascii_case(a)).map(|(_, v)| *v);
        bits.reduce(|x, y| x | y).map(|b| acc | b)
    })
}

/// `configEnumGetName`: the first exact name, or for bit flags the names of the set bits in
/// table order; "unknown" when bits remain unnamed.
pub fn enum_name(names: &[(&str, u32)], value: u32, bitflags: bool) -> String {
    if let Some((n, _)) = names.iter().find(|(_, v)| *v == value) {
        return n.to_string();
    }
    let mut unmatched = value;
    let mut out: Vec<&str> = Vec::new();
    for &(n, v) in names {
        if bitflags && v != 0 && v == unmatched & v {
            out.push(n);
            unmatched &= !v;
        }
    }
    if out.is_empty() || unmatched != 0 {
        return "unknown".into();
    }
    out.join(" ")
}

fn parse_special(s: Special, args: &[String], current: &str) -> Result<String, String> {
    let single = || match args {
        [one] => Ok(one.clone()),
        _ => Err("wrong number of arguments".to_string()),
    };
    match s {
        Special::Dir => single(),
        Special::Save => parse_save(args),
        Special::ClientOutputBufferLimit => parse_obuf_limits(args, current),
        Special::OomScoreAdjValues => parse_oom_values(args),
        Special::NotifyKeyspaceEvents => {
            let flags = keyspace_events_from_str(&single()?)
                .ok_or_else(|| "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".to_string())?;
            Ok(keyspace_events_stored(flags))
        }
        Special::Bind => parse_bind(args),
        Special::ReplicaOf => parse_replicaof(args),
        Special::LatencyTrackingInfoPercentiles => parse_percentiles(args),
    }
}

/// `setConfigSaveOption`: pairs of seconds (>= 1) and changes (>= 0).
fn parse_save(args: &[String]) -> Result<String, String> {
    const BAD: &str = "Invalid save parameters";
    let args = if args.len() == 1 && args[0].is_empty() { &[][..] } else { args };
    if args.len() % 2 == 1 {
        return Err(BAD.into());
    }
    let mut out = Vec::with_capacity(args.len());
    for (j, a) in args.iter().enumerate() {
        let (v, rest, _) = strtoll(a, 10);
        if !rest.is_empty() || (j % 2 == 0 && v < 1) || (j % 2 == 1 && v < 0) {
            return Err(BAD.into());
        }
        // Changes are a C int.
        out.push(if j % 2 == 0 { v.to_string() } else { (v as i32).to_string() });
    }
    Ok(out.join(" "))
}

/// Appends a save line from a config file to the pairs read so far.
pub fn append_save(current: &str, more: &str) -> String {
    match (current.is_empty(), more.is_empty()) {
        (_, true) => current.to_string(),
        (true, false) => more.to_string(),
        (false, false) => format!("{current} {more}"),
    }
}

fn obuf_class(name: &str) -> Option<usize> {
    match name.to_ascii_lowercase().as_str() {
        "normal" => Some(0),
        "slave" | "replica" => Some(1),
        "pubsub" => Some(2),
        _ => None,
    }
}

/// `updateClientOutputBufferLimit`: groups of class, hard, soft, soft seconds; the classes
/// named change, the others keep their limits.
fn parse_obuf_limits(args: &[String], current: &str) -> Result<String, String> {
    if !args.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    let mut limits = obuf_limits(current);
    for g in args.chunks(4) {
        let class = obuf_class(&g[0]).ok_or("Invalid client class specified in buffer limit configuration.")?;
        let (secs, rest, _) = strtoll(&g[3], 10);
        let secs = secs as i32;
        match (memtoull(&g[1]), memtoull(&g[2])) {
            (Some(hard), Some(soft)) if secs >= 0 && rest.is_empty() => limits[class] = (hard, soft, secs as u64),
            _ => return Err("Error in hard, soft or soft_seconds setting in buffer limit configuration.".into()),
        }
    }
    Ok(OBUF_CLASSES.iter().zip(limits).map(|(c, (h, s, t))| format!("{c} {h} {s} {t}")).collect::<Vec<_>>().join(" "))
}

/// (hard bytes, soft bytes, soft seconds) per class, from CONFIG GET's form.
pub fn obuf_limits(value: &str) -> [(u64, u64, u64); 3] {
    let mut out = [(0, 0, 0); 3];
    let words: Vec<&str> = value.split(' ').collect();
    for g in words.chunks(4) {
        if let (Some(class), [_, h, s, t]) = (obuf_class(g[0]), g) {
            out[class] = (h.parse().unwrap_or(0), s.parse().unwrap_or(0), t.parse().unwrap_or(0));
        }
    }
    out
}

fn parse_oom_values(args: &[String]) -> Result<String, String> {
    if args.len() != 3 {
        return Err("wrong number of arguments".into());
    }
    let mut out = Vec::with_capacity(3);
    for a in args {
        match strtoll(a, 10) {
            (v, "", _) if (-2000..=2000).contains(&v) => out.push(v.to_string()),
            _ => return Err("Invalid oom-score-adj-values, elements must be between -2000 and 2000.".into()),
        }
    }
    Ok(out.join(" "))
}

fn parse_bind(args: &[String]) -> Result<String, String> {
    if args.len() > BINDADDR_MAX {
        return Err("Too many bind addresses specified.".into());
    }
    Ok(args.join(" "))
}

fn parse_replicaof(args: &[String]) -> Result<String, String> {
    let [host, port] = args else {
        return Err("wrong number of arguments".into());
    };
    if host.eq_ignore_ascii_case("no") && port.eq_ignore_ascii_case("one") {
        return Ok(String::new());
    }
    match strtoll(port, 10) {
        (p, "", _) if (0..=65535).contains(&p) => Ok(format!("{host} {p}")),
        _ => Err("Invalid master port".into()),
    }
}

fn parse_percentiles(args: &[String]) -> Result<String, String> {
    let args = if args.len() == 1 && args[0].is_empty() { &[][..] } else { args };
    let mut out = Vec::with_capacity(args.len());
    for a in args {
        let p = crate::util::parse_f64(a.as_bytes()).ok_or("Invalid latency-tracking-info-percentiles parameters")?;
        if !(0.0..=100.0).contains(&p) {
            return Err("latency-tracking-info-percentiles parameters should sit between [0.0,100.0]".into());
        }
        out.push(trim_double(&format!("{p:.6}")));
    }
    Ok(out.join(" "))
}

/// `trimDoubleString`: "99.900000" → "99.9", "50.000000" → "50".
fn trim_double(s: &str) -> String {
    if !s.contains('.') {
        return s.to_string();
    }
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Keyspace notification classes (`NOTIFY_*` in server.h).
pub mod notify {
    pub const KEYSPACE: u32 = 1 << 0;
    pub const KEYEVENT: u32 = 1 << 1;
    pub const GENERIC: u32 = 1 << 2;
    pub const STRING: u32 = 1 << 3;
    pub const LIST: u32 = 1 << 4;
    pub const SET: u32 = 1 << 5;
    pub const HASH: u32 = 1 << 6;
    pub const ZSET: u32 = 1 << 7;
    pub const EXPIRED: u32 = 1 << 8;
    pub const EVICTED: u32 = 1 << 9;
    pub const STREAM: u32 = 1 << 10;
    pub const KEY_MISS: u32 = 1 << 11;
    pub const MODULE: u32 = 1 << 12;
    pub const NEW: u32 = 1 << 13;
    /// 'A': every class but key-miss and new.
    pub const ALL: u32 = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;
}

const NOTIFY_CLASS_CHARS: &[(u8, u32)] = &[
    (b'g', notify::GENERIC),
    (b'$', notify::STRING),
    (b'l', notify::LIST),
    (b's', notify::SET),
    (b'h', notify::HASH),
    (b'z', notify::ZSET),
    (b'x', notify::EXPIRED),
    (b'e', notify::EVICTED),
    (b't', notify::STREAM),
    (b'd', notify::MODULE),
    (b'n', notify::NEW),
];

/// `keyspaceEventsStringToFlags`.
pub fn keyspace_events_from_str(s: &str) -> Option<u32> {
    s.bytes().try_fold(0, |flags, c| {
        let bit = match c {
            b'A' => notify::ALL,
            b'K' => notify::KEYSPACE,
            b'E' => notify::KEYEVENT,
            b'm' => notify::KEY_MISS,
            _ => NOTIFY_CLASS_CHARS.iter().find(|(ch, _)| *ch == c)?.1,
        };
        Some(flags | bit)
    })
}

/// What is stored for `notify-keyspace-events`: the flags as CONFIG GET shows them, plus an
/// `n` that Redis's string leaves out under `A` (it keeps the flags as an int: `KEAn` shows
/// as `AKE` and still fires `new`). [`shown`] gives the string CONFIG GET prints.
pub fn keyspace_events_stored(flags: u32) -> String {
    let s = keyspace_events_to_str(flags);
    if flags & notify::ALL == notify::ALL && flags & notify::NEW != 0 {
        s.replacen('A', "An", 1)
    } else {
        s
    }
}

/// A stored value as CONFIG GET prints it.
pub fn shown(d: &Def, stored: &str) -> String {
    match d.kind {
        Kind::Special(Special::NotifyKeyspaceEvents) => {
            keyspace_events_from_str(stored).map_or_else(|| stored.to_string(), keyspace_events_to_str)
        }
        _ => stored.to_string(),
    }
}

/// `keyspaceEventsFlagsToString`.
pub fn keyspace_events_to_str(flags: u32) -> String {
    let mut s = String::new();
    if flags & notify::ALL == notify::ALL {
        s.push('A');
    } else {
        s.extend(NOTIFY_CLASS_CHARS.iter().filter(|(_, bit)| flags & bit != 0).map(|(c, _)| *c as char));
    }
    for (bit, c) in [(notify::KEYSPACE, 'K'), (notify::KEYEVENT, 'E'), (notify::KEY_MISS, 'm')] {
        if flags & bit != 0 {
            s.push(c);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memtoull_follows_redis() {
        assert_eq!(memtoull("1gb"), Some(1 << 30));
        assert_eq!(memtoull("1G"), Some(1_000_000_000));
        assert_eq!(memtoull("100"), Some(100));
        assert_eq!(memtoull(""), Some(0));
        assert_eq!(memtoull("kb"), Some(0));
        assert_eq!(memtoull("-1"), None);
        assert_eq!(memtoull("1 kb"), None);
        assert_eq!(memtoull("18446744073709551616"), Some(u64::MAX));
        assert_eq!(memtoull("18446744073709551616kb"), None);
    }

    #[test]
    fn strtoll_skips_blanks_and_takes_a_sign() {
        assert_eq!(strtoll("+5", 10), (5, "", false));
        assert_eq!(strtoll("  -7x", 10), (-7, "x", false));
        assert_eq!(strtoll("", 10), (0, "", false));
        assert_eq!(strtoll("777", 8), (511, "", false));
        assert_eq!(strtoll("99999999999999999999", 10), (i64::MAX, "", true));
    }

    #[test]
    fn keyspace_events_round_trip_as_redis_prints_them() {
        let f = keyspace_events_from_str("KEA").unwrap();
        assert_eq!(keyspace_events_to_str(f), "AKE");
        let f = keyspace_events_from_str("$lshzxetdgKm").unwrap();
        assert_eq!(keyspace_events_to_str(f), "AKm");
        assert_eq!(keyspace_events_to_str(keyspace_events_from_str("Egx").unwrap()), "gxE");
        assert!(keyspace_events_from_str("Q").is_none());
    }

    #[test]
    fn enum_names_for_bit_flags_follow_table_order() {
        let names = &[("default", 0), ("save", 1), ("nosave", 2), ("now", 4), ("force", 8)];
        assert_eq!(enum_name(names, 12, true), "now force");
        assert_eq!(enum_name(names, 0, true), "default");
        assert_eq!(enum_name(names, 16, true), "unknown");
    }

    #[test]
    fn save_and_percentiles_print_like_redis() {
        let words = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        assert_eq!(parse_save(&words("+5 1")).unwrap(), "5 1");
        assert_eq!(parse_save(&words("3600 ")).unwrap(), "3600 0");
        assert!(parse_save(&words("0 1")).is_err());
        assert_eq!(parse_percentiles(&words("50 99.90 100")).unwrap(), "50 99.9 100");
        assert!(parse_percentiles(&words("101")).is_err());
    }
}

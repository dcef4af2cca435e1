//! The configuration: Redis's directives as a table (name, alias, kind, default, whether
//! CONFIG SET may change it), values kept as CONFIG GET spells them, plus typed copies of the
//! ones the hot path reads. redis.conf files, command-line directives and CONFIG SET all go
//! through `set`, so a value is validated the same way wherever it comes from.

use std::collections::BTreeMap;

use crate::protocol::parser::split_args;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Int { min: i64, max: i64 },
    /// A byte count: accepts 1k, 1kb, 1m, 1mb, 1g, 1gb (case-insensitive); prints as bytes.
    Memory { max: i64 },
    Enum(&'static [&'static str]),
    Str,
    /// Space-separated list (`bind`, `save`): stored as given, normalized by spaces.
    List,
}

/// Can't be changed with CONFIG SET (Redis's IMMUTABLE_CONFIG).
const IMMUTABLE: u8 = 1;
/// Doesn't appear in CONFIG GET replies for secrets-sensitive tooling (SENSITIVE_CONFIG).
const SENSITIVE: u8 = 2;

#[derive(Debug)]
pub struct Def {
    pub name: &'static str,
    pub alias: Option<&'static str>,
    pub kind: Kind,
    pub default: &'static str,
    flags: u8,
}

const fn def(name: &'static str, kind: Kind, default: &'static str) -> Def {
    Def { name, alias: None, kind, default, flags: 0 }
}

const fn immutable(name: &'static str, kind: Kind, default: &'static str) -> Def {
    Def { name, alias: None, kind, default, flags: IMMUTABLE }
}

const fn aliased(name: &'static str, alias: &'static str, kind: Kind, default: &'static str) -> Def {
    Def { name, alias: Some(alias), kind, default, flags: 0 }
}

const INT_MAX: i64 = i32::MAX as i64;
const LONG_MAX: i64 = i64::MAX;

pub const MAXMEMORY_POLICIES: &[&str] = &[
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "noeviction",
];
const LOGLEVELS: &[&str] = &["debug", "verbose", "notice", "warning"];
const APPENDFSYNC: &[&str] = &["always", "everysec", "no"];
const YES_NO_LOCAL: &[&str] = &["no", "yes", "local"];

/// Redis 7.0's directives that redsim knows. Defaults are Redis's.
pub static DEFS: &[Def] = &[
    def("port", Kind::Int { min: 0, max: 65535 }, "6379"),
    immutable("bind", Kind::List, "* -::*"),
    def("protected-mode", Kind::Bool, "yes"),
    immutable("databases", Kind::Int { min: 1, max: INT_MAX }, "16"),
    def("dir", Kind::Str, ""),
    def("dbfilename", Kind::Str, "dump.rdb"),
    Def { name: "requirepass", alias: None, kind: Kind::Str, default: "", flags: SENSITIVE },
    Def { name: "masterauth", alias: None, kind: Kind::Str, default: "", flags: SENSITIVE },
    def("masteruser", Kind::Str, ""),
    def("maxmemory", Kind::Memory { max: LONG_MAX }, "0"),
    def("maxmemory-policy", Kind::Enum(MAXMEMORY_POLICIES), "noeviction"),
    def("maxmemory-samples", Kind::Int { min: 1, max: 64 }, "5"),
    def("maxmemory-eviction-tenacity", Kind::Int { min: 0, max: 100 }, "10"),
    def("maxmemory-clients", Kind::Memory { max: LONG_MAX }, "0"),
    def("lfu-log-factor", Kind::Int { min: 0, max: INT_MAX }, "10"),
    def("lfu-decay-time", Kind::Int { min: 0, max: INT_MAX }, "1"),
    def("hz", Kind::Int { min: 0, max: INT_MAX }, "10"),
    def("dynamic-hz", Kind::Bool, "yes"),
    def("active-expire-effort", Kind::Int { min: 1, max: 10 }, "1"),
    def("loglevel", Kind::Enum(LOGLEVELS), "notice"),
    immutable("logfile", Kind::Str, ""),
    immutable("daemonize", Kind::Bool, "no"),
    immutable("pidfile", Kind::Str, ""),
    def("timeout", Kind::Int { min: 0, max: INT_MAX }, "0"),
    def("tcp-keepalive", Kind::Int { min: 0, max: INT_MAX }, "300"),
    immutable("tcp-backlog", Kind::Int { min: 0, max: INT_MAX }, "511"),
    def("maxclients", Kind::Int { min: 1, max: INT_MAX }, "10000"),
    def("proto-max-bulk-len", Kind::Memory { max: LONG_MAX }, "536870912"),
    def("client-query-buffer-limit", Kind::Memory { max: LONG_MAX }, "1073741824"),
    def("save", Kind::List, "3600 1 300 100 60 10000"),
    def("stop-writes-on-bgsave-error", Kind::Bool, "yes"),
    def("rdbcompression", Kind::Bool, "yes"),
    def("rdbchecksum", Kind::Bool, "yes"),
    def("appendonly", Kind::Bool, "no"),
    def("appendfilename", Kind::Str, "appendonly.aof"),
    immutable("appenddirname", Kind::Str, "appendonlydir"),
    def("appendfsync", Kind::Enum(APPENDFSYNC), "everysec"),
    def("no-appendfsync-on-rewrite", Kind::Bool, "no"),
    def("auto-aof-rewrite-percentage", Kind::Int { min: 0, max: INT_MAX }, "100"),
    def("auto-aof-rewrite-min-size", Kind::Memory { max: LONG_MAX }, "67108864"),
    def("aof-load-truncated", Kind::Bool, "yes"),
    def("aof-use-rdb-preamble", Kind::Bool, "yes"),
    def("aof-timestamp-enabled", Kind::Bool, "no"),
    aliased("replica-read-only", "slave-read-only", Kind::Bool, "yes"),
    aliased("replica-serve-stale-data", "slave-serve-stale-data", Kind::Bool, "yes"),
    aliased("replica-priority", "slave-priority", Kind::Int { min: 0, max: INT_MAX }, "100"),
    aliased("repl-ping-replica-period", "repl-ping-slave-period", Kind::Int { min: 1, max: INT_MAX }, "10"),
    def("repl-timeout", Kind::Int { min: 1, max: INT_MAX }, "60"),
    def("repl-backlog-size", Kind::Memory { max: LONG_MAX }, "1048576"),
    def("repl-backlog-ttl", Kind::Int { min: 0, max: INT_MAX }, "3600"),
    def("repl-diskless-sync", Kind::Bool, "yes"),
    def("repl-diskless-sync-delay", Kind::Int { min: 0, max: INT_MAX }, "5"),
    def("repl-diskless-load", Kind::Enum(&["disabled", "on-empty-db", "swapdb"]), "disabled"),
    aliased("min-replicas-to-write", "min-slaves-to-write", Kind::Int { min: 0, max: INT_MAX }, "0"),
    aliased("min-replicas-max-lag", "min-slaves-max-lag", Kind::Int { min: 0, max: INT_MAX }, "10"),
    aliased("replica-announce-ip", "slave-announce-ip", Kind::Str, ""),
    aliased("replica-announce-port", "slave-announce-port", Kind::Int { min: 0, max: 65535 }, "0"),
    def("lazyfree-lazy-eviction", Kind::Bool, "no"),
    def("lazyfree-lazy-expire", Kind::Bool, "no"),
    def("lazyfree-lazy-server-del", Kind::Bool, "no"),
    def("lazyfree-lazy-user-del", Kind::Bool, "no"),
    def("lazyfree-lazy-user-flush", Kind::Bool, "no"),
    def("hash-max-listpack-entries", Kind::Int { min: 0, max: LONG_MAX }, "128"),
    def("hash-max-listpack-value", Kind::Int { min: 0, max: LONG_MAX }, "64"),
    def("list-max-listpack-size", Kind::Int { min: i32::MIN as i64, max: INT_MAX }, "-2"),
    def("list-compress-depth", Kind::Int { min: 0, max: INT_MAX }, "0"),
    def("set-max-intset-entries", Kind::Int { min: 0, max: LONG_MAX }, "512"),
    def("zset-max-listpack-entries", Kind::Int { min: 0, max: LONG_MAX }, "128"),
    def("zset-max-listpack-value", Kind::Int { min: 0, max: LONG_MAX }, "64"),
    def("slowlog-log-slower-than", Kind::Int { min: -1, max: LONG_MAX }, "10000"),
    def("slowlog-max-len", Kind::Int { min: 0, max: LONG_MAX }, "128"),
    def("latency-monitor-threshold", Kind::Int { min: 0, max: LONG_MAX }, "0"),
    def("notify-keyspace-events", Kind::Str, ""),
    def("cluster-enabled", Kind::Bool, "no"),
    def("appendfsync-always-exit-on-error", Kind::Bool, "yes"),
    def("enable-debug-command", Kind::Enum(YES_NO_LOCAL), "no"),
    def("io-threads", Kind::Int { min: 1, max: 128 }, "1"),
    def("supervised", Kind::Enum(&["upstart", "systemd", "auto", "no"]), "no"),
    def("always-show-logo", Kind::Bool, "no"),
    def("set-proc-title", Kind::Bool, "yes"),
    def("lua-time-limit", Kind::Int { min: 0, max: LONG_MAX }, "5000"),
    def("activerehashing", Kind::Bool, "yes"),
    def("activedefrag", Kind::Bool, "no"),
    def("jemalloc-bg-thread", Kind::Bool, "yes"),
    def("crash-log-enabled", Kind::Bool, "yes"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxmemoryPolicy {
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
    AllkeysLru,
    AllkeysLfu,
    AllkeysRandom,
    NoEviction,
}

impl MaxmemoryPolicy {
    fn parse(s: &str) -> Self {
        match s {
            "volatile-lru" => Self::VolatileLru,
            "volatile-lfu" => Self::VolatileLfu,
            "volatile-random" => Self::VolatileRandom,
            "volatile-ttl" => Self::VolatileTtl,
            "allkeys-lru" => Self::AllkeysLru,
            "allkeys-lfu" => Self::AllkeysLfu,
            "allkeys-random" => Self::AllkeysRandom,
            _ => Self::NoEviction,
        }
    }
    pub fn is_lfu(self) -> bool {
        matches!(self, Self::VolatileLfu | Self::AllkeysLfu)
    }
    pub fn is_lru(self) -> bool {
        matches!(self, Self::VolatileLru | Self::AllkeysLru)
    }
    pub fn is_allkeys(self) -> bool {
        matches!(self, Self::AllkeysLru | Self::AllkeysLfu | Self::AllkeysRandom)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendFsync {
    Always,
    EverySec,
    No,
}

/// Typed copies of values the hot path reads, refreshed on every change.
#[derive(Debug, Clone)]
pub struct Hot {
    pub port: u16,
    pub databases: usize,
    pub maxmemory: u64,
    pub maxmemory_policy: MaxmemoryPolicy,
    pub maxmemory_samples: usize,
    pub maxmemory_eviction_tenacity: u64,
    pub lfu_log_factor: u64,
    pub lfu_decay_time: u64,
    pub hz: u64,
    pub active_expire_effort: u64,
    pub requirepass: Option<Vec<u8>>,
    pub proto_max_bulk_len: u64,
    pub client_query_buffer_limit: usize,
    pub timeout_secs: u64,
    pub maxclients: usize,
    pub protected_mode: bool,
    pub appendonly: bool,
    pub appendfsync: AppendFsync,
    pub lazyfree_lazy_user_flush: bool,
    pub loglevel: u8,
}

#[derive(Debug, Clone)]
pub struct Config {
    values: BTreeMap<&'static str, String>,
    pub hot: Hot,
}

/// A refused value, with the text Redis puts after "argument(s) ...".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetError {
    UnknownOption,
    Immutable,
    Invalid(String),
}

impl Default for Config {
    fn default() -> Self {
        let values = DEFS.iter().map(|d| (d.name, d.default.to_string())).collect();
        let mut c = Config { values, hot: placeholder_hot() };
        c.refresh();
        c
    }
}

fn placeholder_hot() -> Hot {
    Hot {
        port: 6379,
        databases: 16,
        maxmemory: 0,
        maxmemory_policy: MaxmemoryPolicy::NoEviction,
        maxmemory_samples: 5,
        maxmemory_eviction_tenacity: 10,
        lfu_log_factor: 10,
        lfu_decay_time: 1,
        hz: 10,
        active_expire_effort: 1,
        requirepass: None,
        proto_max_bulk_len: crate::protocol::parser::PROTO_MAX_BULK_LEN,
        client_query_buffer_limit: crate::protocol::parser::CLIENT_QUERY_BUFFER_LIMIT,
        timeout_secs: 0,
        maxclients: 10000,
        protected_mode: true,
        appendonly: false,
        appendfsync: AppendFsync::EverySec,
        lazyfree_lazy_user_flush: false,
        loglevel: 2,
    }
}

pub fn find_def(name: &str) -> Option<&'static Def> {
    let lower = name.to_ascii_lowercase();
    DEFS.iter().find(|d| d.name == lower || d.alias == Some(lower.as_str()))
}

/// Redis's `memtoull`: a number with an optional unit b, k, kb, m, mb, g, gb.
pub fn parse_memory(s: &str) -> Option<i64> {
    let lower = s.to_ascii_lowercase();
    let digits_end = lower.find(|c: char| !(c.is_ascii_digit() || c == '-')).unwrap_or(lower.len());
    let (num, unit) = lower.split_at(digits_end);
    let mul: i64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    let n: i64 = num.parse().ok()?;
    n.checked_mul(mul)
}

fn normalize(d: &Def, value: &str) -> Result<String, SetError> {
    match d.kind {
        Kind::Bool => match value.to_ascii_lowercase().as_str() {
            "yes" => Ok("yes".into()),
            "no" => Ok("no".into()),
            _ => Err(SetError::Invalid("argument must be 'yes' or 'no'".into())),
        },
        Kind::Int { min, max } => {
            let n: i64 = value
                .parse()
                .map_err(|_| SetError::Invalid("argument couldn't be parsed into an integer".into()))?;
            if n < min || n > max {
                return Err(SetError::Invalid(format!("argument must be between {min} and {max} inclusive")));
            }
            Ok(n.to_string())
        }
        Kind::Memory { max } => {
            let n = parse_memory(value).ok_or_else(|| SetError::Invalid("argument must be a memory value".into()))?;
            if n < 0 || n > max {
                return Err(SetError::Invalid(format!("argument must be between 0 and {max} inclusive")));
            }
            Ok(n.to_string())
        }
        Kind::Enum(options) => {
            let lower = value.to_ascii_lowercase();
            if options.contains(&lower.as_str()) {
                Ok(lower)
            } else {
                Err(SetError::Invalid(format!(
                    "argument(s) must be one of the following: {}",
                    options.join(", ")
                )))
            }
        }
        Kind::Str => Ok(value.to_string()),
        Kind::List => Ok(value.split_whitespace().collect::<Vec<_>>().join(" ")),
    }
}

impl Config {
    pub fn get(&self, name: &str) -> Option<&str> {
        let d = find_def(name)?;
        self.values.get(d.name).map(String::as_str)
    }

    fn int(&self, name: &str) -> i64 {
        self.get(name).and_then(|v| v.parse().ok()).unwrap_or(0)
    }

    fn flag(&self, name: &str) -> bool {
        self.get(name) == Some("yes")
    }

    /// Sets a value from redis.conf or the command line (immutable ones allowed).
    pub fn set_startup(&mut self, name: &str, value: &str) -> Result<(), SetError> {
        self.set_inner(name, value, true)
    }

    /// CONFIG SET semantics: immutable directives are refused.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), SetError> {
        self.set_inner(name, value, false)
    }

    fn set_inner(&mut self, name: &str, value: &str, startup: bool) -> Result<(), SetError> {
        let d = find_def(name).ok_or(SetError::UnknownOption)?;
        if !startup && d.flags & IMMUTABLE != 0 {
            return Err(SetError::Immutable);
        }
        let v = normalize(d, value)?;
        self.values.insert(d.name, v);
        self.refresh();
        Ok(())
    }

    /// Name/value pairs whose name (or alias) matches any glob pattern, in table order, each
    /// once (CONFIG GET).
    pub fn matching(&self, patterns: &[&[u8]]) -> Vec<(&'static str, String)> {
        let mut out: Vec<(&'static str, String)> = Vec::new();
        for d in DEFS {
            for name in std::iter::once(d.name).chain(d.alias) {
                if patterns.iter().any(|p| crate::util::glob_match(p, name.as_bytes(), true))
                    && !out.iter().any(|(n, _)| *n == name)
                {
                    out.push((name, self.values[d.name].clone()));
                }
            }
        }
        out
    }

    /// Loads redis.conf text: one directive per line, `#` comments, quoted arguments.
    pub fn load_text(&mut self, text: &str) -> Result<(), String> {
        for (i, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let Some(args) = split_args(trimmed.as_bytes()) else {
                return Err(format!("line {}: unbalanced quotes in configuration line", i + 1));
            };
            let args: Vec<String> = args.into_iter().map(|a| String::from_utf8_lossy(&a).into_owned()).collect();
            let (name, vals) = args.split_first().expect("non-empty line");
            self.apply_directive(name, vals).map_err(|e| format!("line {}: {e}\n>>> '{}'", i + 1, trimmed))?;
        }
        Ok(())
    }

    /// Applies one directive with its arguments, as from redis.conf.
    pub fn apply_directive(&mut self, name: &str, vals: &[String]) -> Result<(), String> {
        let d = find_def(name).ok_or_else(|| "Bad directive or wrong number of arguments".to_string())?;
        let joined = match d.kind {
            Kind::List => vals.join(" "),
            _ if vals.len() == 1 => vals[0].clone(),
            _ => return Err("wrong number of arguments".into()),
        };
        self.set_startup(name, &joined).map_err(|e| match e {
            SetError::Invalid(s) => s,
            _ => "Bad directive or wrong number of arguments".into(),
        })
    }

    fn refresh(&mut self) {
        let h = Hot {
            port: self.int("port") as u16,
            databases: self.int("databases") as usize,
            maxmemory: self.int("maxmemory") as u64,
            maxmemory_policy: MaxmemoryPolicy::parse(self.get("maxmemory-policy").unwrap_or("")),
            maxmemory_samples: self.int("maxmemory-samples") as usize,
            maxmemory_eviction_tenacity: self.int("maxmemory-eviction-tenacity") as u64,
            lfu_log_factor: self.int("lfu-log-factor") as u64,
            lfu_decay_time: self.int("lfu-decay-time") as u64,
            hz: self.int("hz").clamp(1, 500) as u64,
            active_expire_effort: self.int("active-expire-effort") as u64,
            requirepass: self.get("requirepass").filter(|p| !p.is_empty()).map(|p| p.as_bytes().to_vec()),
            proto_max_bulk_len: self.int("proto-max-bulk-len") as u64,
            client_query_buffer_limit: self.int("client-query-buffer-limit") as usize,
            timeout_secs: self.int("timeout") as u64,
            maxclients: self.int("maxclients") as usize,
            protected_mode: self.flag("protected-mode"),
            appendonly: self.flag("appendonly"),
            appendfsync: match self.get("appendfsync") {
                Some("always") => AppendFsync::Always,
                Some("no") => AppendFsync::No,
                _ => AppendFsync::EverySec,
            },
            lazyfree_lazy_user_flush: self.flag("lazyfree-lazy-user-flush"),
            loglevel: LOGLEVELS.iter().position(|l| Some(*l) == self.get("loglevel")).unwrap_or(2) as u8,
        };
        self.hot = h;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_validated_and_normalized() {
        let mut c = Config::default();
        c.set("maxmemory", "1gb").unwrap();
        assert_eq!(c.get("maxmemory"), Some("1073741824"));
        assert_eq!(c.hot.maxmemory, 1 << 30);
        assert!(matches!(c.set("maxmemory-policy", "foo"), Err(SetError::Invalid(_))));
        c.set("MAXMEMORY-POLICY", "AllKeys-LRU").unwrap();
        assert_eq!(c.hot.maxmemory_policy, MaxmemoryPolicy::AllkeysLru);
        assert_eq!(c.set("databases", "1"), Err(SetError::Immutable));
        assert_eq!(c.set("nope", "1"), Err(SetError::UnknownOption));
        c.set("slave-read-only", "no").unwrap();
        assert_eq!(c.get("replica-read-only"), Some("no"));
    }

    #[test]
    fn conf_text_loads() {
        let mut c = Config::default();
        c.load_text("# comment\nport 7000\nsave \"\"\nrequirepass \"a b\"\nbind 127.0.0.1 ::1\n").unwrap();
        assert_eq!(c.hot.port, 7000);
        assert_eq!(c.get("save"), Some(""));
        assert_eq!(c.hot.requirepass.as_deref(), Some(&b"a b"[..]));
        assert_eq!(c.get("bind"), Some("127.0.0.1 ::1"));
        assert!(c.load_text("nosuch 1\n").is_err());
    }
}

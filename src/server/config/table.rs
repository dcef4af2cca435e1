//! Redis 7.0.15's `static_configs[]` (config.c) as data: every directive CONFIG GET lists,
//! with its alias, type, bounds, default and mutability. A directive's default is written as
//! CONFIG GET prints it. The C integer type matters for the error text, because Redis checks
//! unsigned types (`unsigned int`, `size_t`, `unsigned long long`) as unsigned, so we keep
//! that bit per numeric directive.

/// CONFIG SET refuses it: "can't set immutable config".
pub const IMMUTABLE: u8 = 1 << 0;
/// Redacted from SLOWLOG/MONITOR when set (Redis's SENSITIVE_CONFIG).
pub const SENSITIVE: u8 = 1 << 1;
/// CONFIG SET only when `enable-protected-configs` allows it: "can't set protected config".
pub const PROTECTED: u8 = 1 << 2;
/// Only an exact CONFIG GET name finds it; patterns skip it.
pub const HIDDEN: u8 = 1 << 3;
/// The value is several words: CONFIG SET splits it at each single space.
pub const MULTI_ARG: u8 = 1 << 4;

const INT_MIN: i64 = i32::MIN as i64;
const INT_MAX: i64 = i32::MAX as i64;
const UINT_MAX: i64 = u32::MAX as i64;
const LONG_MAX: i64 = i64::MAX;
/// `ULLONG_MAX` as the bits of a long long, which is how Redis passes it around.
const ULLONG_MAX: i64 = -1;
const MB: i64 = 1024 * 1024;

/// How a numeric directive reads and prints (Redis's numeric config flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    /// `memtoull`: 1k, 1kb, 1m, 1mb, 1g, 1gb.
    Memory,
    /// A memory value, or `N%` stored as `-N` (maxmemory-clients).
    MemoryOrPercent,
    /// Read and printed in base 8 (unixsocketperm).
    Octal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Num {
    pub min: i64,
    pub max: i64,
    /// Redis compares `(unsigned long long)` values for unsigned C types.
    pub unsigned: bool,
    pub unit: Unit,
}

/// The directives with their own parser and printer (`createSpecialConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    Dir,
    Save,
    ClientOutputBufferLimit,
    OomScoreAdjValues,
    NotifyKeyspaceEvents,
    Bind,
    ReplicaOf,
    LatencyTrackingInfoPercentiles,
}

/// A value check beyond the type's own (Redis's `is_valid_fn`).
pub type StrCheck = fn(&str) -> Result<(), &'static str>;
pub type FlagCheck = fn(u32) -> Result<(), &'static str>;

#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Bool {
        check: Option<FlagCheck>,
    },
    Num(Num),
    /// Names and values; several names may share a value (the first one prints). A
    /// MULTI_ARG enum is a set of bit flags.
    Enum {
        names: &'static [(&'static str, u32)],
        check: Option<FlagCheck>,
    },
    Str {
        check: Option<StrCheck>,
    },
    Special(Special),
}

#[derive(Debug, Clone, Copy)]
pub struct Def {
    pub name: &'static str,
    pub alias: Option<&'static str>,
    pub kind: Kind,
    /// As CONFIG GET prints it.
    pub default: &'static str,
    pub flags: u8,
}

impl Def {
    const fn alias(self, alias: &'static str) -> Def {
        Def { alias: Some(alias), ..self }
    }
    const fn with(self, flags: u8) -> Def {
        Def { flags: self.flags | flags, ..self }
    }
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

const fn def(name: &'static str, kind: Kind, default: &'static str) -> Def {
    Def { name, alias: None, kind, default, flags: 0 }
}

const fn boolean(name: &'static str, default: &'static str) -> Def {
    def(name, Kind::Bool { check: None }, default)
}

const fn string(name: &'static str, default: &'static str) -> Def {
    def(name, Kind::Str { check: None }, default)
}

const fn checked_string(name: &'static str, default: &'static str, check: StrCheck) -> Def {
    def(name, Kind::Str { check: Some(check) }, default)
}

const fn num(name: &'static str, min: i64, max: i64, unsigned: bool, unit: Unit, default: &'static str) -> Def {
    def(name, Kind::Num(Num { min, max, unsigned, unit }), default)
}

/// A signed C integer (int, long, long long, ssize_t, time_t, off_t; also unsigned long,
/// which Redis's boundary check treats as signed).
const fn int(name: &'static str, min: i64, max: i64, default: &'static str) -> Def {
    num(name, min, max, false, Unit::Count, default)
}

/// unsigned int, size_t, unsigned long long.
const fn uint(name: &'static str, min: i64, max: i64, default: &'static str) -> Def {
    num(name, min, max, true, Unit::Count, default)
}

const fn memory(name: &'static str, min: i64, max: i64, default: &'static str) -> Def {
    num(name, min, max, false, Unit::Memory, default)
}

const fn umemory(name: &'static str, min: i64, max: i64, default: &'static str) -> Def {
    num(name, min, max, true, Unit::Memory, default)
}

const fn enumeration(name: &'static str, names: &'static [(&'static str, u32)], default: &'static str) -> Def {
    def(name, Kind::Enum { names, check: None }, default)
}

const fn special(name: &'static str, which: Special, default: &'static str) -> Def {
    def(name, Kind::Special(which), default)
}

const MAXMEMORY_POLICY_NAMES: &[(&str, u32)] = &[
    ("volatile-lru", 0),
    ("volatile-lfu", 1),
    ("volatile-random", 2),
    ("volatile-ttl", 3),
    ("allkeys-lru", 4),
    ("allkeys-lfu", 5),
    ("allkeys-random", 6),
    ("noeviction", 7),
];
pub const LOGLEVEL_NAMES: &[(&str, u32)] = &[("debug", 0), ("verbose", 1), ("notice", 2), ("warning", 3)];
pub const APPENDFSYNC_NAMES: &[(&str, u32)] = &[("everysec", 0), ("always", 1), ("no", 2)];
const SYSLOG_FACILITY_NAMES: &[(&str, u32)] = &[
    ("user", 0),
    ("local0", 1),
    ("local1", 2),
    ("local2", 3),
    ("local3", 4),
    ("local4", 5),
    ("local5", 6),
    ("local6", 7),
    ("local7", 8),
];
const SUPERVISED_NAMES: &[(&str, u32)] = &[("upstart", 0), ("systemd", 1), ("auto", 2), ("no", 3)];
const REPL_DISKLESS_LOAD_NAMES: &[(&str, u32)] = &[("disabled", 0), ("on-empty-db", 1), ("swapdb", 2)];
const TLS_AUTH_CLIENTS_NAMES: &[(&str, u32)] = &[("no", 0), ("yes", 1), ("optional", 2)];
const OOM_SCORE_ADJ_NAMES: &[(&str, u32)] = &[("no", 0), ("yes", 1), ("relative", 1), ("absolute", 2)];
const ACL_PUBSUB_DEFAULT_NAMES: &[(&str, u32)] = &[("allchannels", 1), ("resetchannels", 0)];
const SANITIZE_DUMP_PAYLOAD_NAMES: &[(&str, u32)] = &[("no", 0), ("yes", 1), ("clients", 2)];
const PROTECTED_ACTION_NAMES: &[(&str, u32)] = &[("no", 0), ("yes", 1), ("local", 2)];
const CLUSTER_ENDPOINT_TYPE_NAMES: &[(&str, u32)] = &[("ip", 0), ("hostname", 1), ("unknown-endpoint", 2)];
const PROPAGATION_ERROR_BEHAVIOR_NAMES: &[(&str, u32)] = &[("ignore", 0), ("panic", 1), ("panic-on-replicas", 2)];
pub const SHUTDOWN_SAVE: u32 = 1;
pub const SHUTDOWN_NOSAVE: u32 = 2;
const SHUTDOWN_ON_SIG_NAMES: &[(&str, u32)] =
    &[("default", 0), ("save", SHUTDOWN_SAVE), ("nosave", SHUTDOWN_NOSAVE), ("now", 4), ("force", 8)];

fn valid_shutdown_flags(flags: u32) -> Result<(), &'static str> {
    if flags & SHUTDOWN_SAVE != 0 && flags & SHUTDOWN_NOSAVE != 0 {
        return Err("shutdown options SAVE and NOSAVE can't be used simultaneously");
    }
    Ok(())
}

/// redsim, like a Redis built without Redis's patched jemalloc, cannot defragment.
fn valid_activedefrag(on: u32) -> Result<(), &'static str> {
    if on != 0 {
        return Err("Active defragmentation cannot be enabled: it requires a Redis server compiled with a modified \
                    Jemalloc like the one shipped by default with the Redis source distribution");
    }
    Ok(())
}

fn is_base_name(s: &str) -> bool {
    !s.contains('/')
}

fn valid_dbfilename(s: &str) -> Result<(), &'static str> {
    if !is_base_name(s) {
        return Err("dbfilename can't be a path, just a filename");
    }
    Ok(())
}

fn valid_appendfilename(s: &str) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("appendfilename can't be empty");
    }
    if !is_base_name(s) {
        return Err("appendfilename can't be a path, just a filename");
    }
    Ok(())
}

fn valid_appenddirname(s: &str) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("appenddirname can't be empty");
    }
    if !is_base_name(s) {
        return Err("appenddirname can't be a path, just a dirname");
    }
    Ok(())
}

/// Redis's NET_HOST_STR_LEN.
const NET_HOST_STR_LEN: usize = 256;

fn valid_announced_hostname(s: &str) -> Result<(), &'static str> {
    if s.len() >= NET_HOST_STR_LEN {
        return Err("Hostnames must be less than 256 characters");
    }
    if !s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.') {
        return Err("Hostnames may only contain alphanumeric characters, hyphens or dots");
    }
    Ok(())
}

/// `validateProcTitleTemplate`: `{var}` names must be known, braces balanced (`{{` is a
/// literal brace), and the expansion must not be blank. Variables that expand to nothing
/// without a title or a mode (`title`, `server-mode`, `unixsocket`, `config-file`) count as
/// empty, as they do at CONFIG SET time on a standalone server without a unix socket.
fn valid_proc_title_template(s: &str) -> Result<(), &'static str> {
    const BAD: &str = "template format is invalid or contains unknown variables";
    let mut expanded = String::new();
    let mut rest = s;
    while let Some(open) = rest.find('{') {
        expanded.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        if after.is_empty() {
            return Err(BAD);
        }
        if let Some(quoted) = after.strip_prefix('{') {
            expanded.push('{');
            rest = quoted;
            continue;
        }
        let close = after.find('}').ok_or(BAD)?;
        match &after[..close] {
            "title" | "server-mode" | "unixsocket" | "config-file" => {}
            "listen-addr" | "port" | "tls-port" => expanded.push('0'),
            _ => return Err(BAD),
        }
        rest = &after[close + 1..];
    }
    expanded.push_str(rest);
    if expanded.trim_matches(' ').is_empty() {
        return Err(BAD);
    }
    Ok(())
}

/// Every directive, in `static_configs[]` order.
pub static DEFS: &[Def] = &[
    // bool
    boolean("rdbchecksum", "yes").with(IMMUTABLE),
    boolean("daemonize", "no").with(IMMUTABLE),
    boolean("io-threads-do-reads", "no").with(IMMUTABLE),
    boolean("always-show-logo", "no").with(IMMUTABLE),
    boolean("protected-mode", "yes"),
    boolean("rdbcompression", "yes"),
    boolean("rdb-del-sync-files", "no"),
    boolean("activerehashing", "yes"),
    boolean("stop-writes-on-bgsave-error", "yes"),
    boolean("set-proc-title", "yes").with(IMMUTABLE),
    boolean("dynamic-hz", "yes"),
    boolean("lazyfree-lazy-eviction", "no"),
    boolean("lazyfree-lazy-expire", "no"),
    boolean("lazyfree-lazy-server-del", "no"),
    boolean("lazyfree-lazy-user-del", "no"),
    boolean("lazyfree-lazy-user-flush", "no"),
    boolean("repl-disable-tcp-nodelay", "no"),
    boolean("repl-diskless-sync", "yes"),
    boolean("aof-rewrite-incremental-fsync", "yes"),
    boolean("no-appendfsync-on-rewrite", "no"),
    boolean("cluster-require-full-coverage", "yes"),
    boolean("rdb-save-incremental-fsync", "yes"),
    boolean("aof-load-truncated", "yes"),
    boolean("aof-use-rdb-preamble", "yes"),
    boolean("aof-timestamp-enabled", "no"),
    boolean("cluster-replica-no-failover", "no").alias("cluster-slave-no-failover"),
    boolean("replica-lazy-flush", "no").alias("slave-lazy-flush"),
    boolean("replica-serve-stale-data", "yes").alias("slave-serve-stale-data"),
    boolean("replica-read-only", "yes").alias("slave-read-only"),
    boolean("replica-ignore-maxmemory", "yes").alias("slave-ignore-maxmemory"),
    boolean("jemalloc-bg-thread", "yes"),
    def("activedefrag", Kind::Bool { check: Some(valid_activedefrag) }, "no"),
    boolean("syslog-enabled", "no").with(IMMUTABLE),
    boolean("cluster-enabled", "no").with(IMMUTABLE),
    boolean("appendonly", "no"),
    boolean("cluster-allow-reads-when-down", "no"),
    boolean("cluster-allow-pubsubshard-when-down", "yes"),
    boolean("crash-log-enabled", "yes"),
    boolean("crash-memcheck-enabled", "yes"),
    boolean("use-exit-on-panic", "no").with(HIDDEN),
    boolean("disable-thp", "yes").with(IMMUTABLE),
    boolean("cluster-allow-replica-migration", "yes"),
    boolean("replica-announced", "yes"),
    boolean("latency-tracking", "yes"),
    boolean("aof-disable-auto-gc", "no"),
    boolean("replica-ignore-disk-write-errors", "no"),
    // string
    string("aclfile", "").with(IMMUTABLE),
    string("unixsocket", "").with(IMMUTABLE),
    string("pidfile", "").with(IMMUTABLE),
    string("replica-announce-ip", "").alias("slave-announce-ip"),
    string("masteruser", "").with(SENSITIVE),
    string("cluster-announce-ip", ""),
    string("cluster-config-file", "nodes.conf").with(IMMUTABLE),
    checked_string("cluster-announce-hostname", "", valid_announced_hostname),
    string("syslog-ident", "redis").with(IMMUTABLE),
    checked_string("dbfilename", "dump.rdb", valid_dbfilename).with(PROTECTED),
    checked_string("appendfilename", "appendonly.aof", valid_appendfilename).with(IMMUTABLE),
    checked_string("appenddirname", "appendonlydir", valid_appenddirname).with(IMMUTABLE),
    string("server_cpulist", "").with(IMMUTABLE),
    string("bio_cpulist", "").with(IMMUTABLE),
    string("aof_rewrite_cpulist", "").with(IMMUTABLE),
    string("bgsave_cpulist", "").with(IMMUTABLE),
    string("ignore-warnings", ""),
    checked_string("proc-title-template", "{title} {listen-addr} {server-mode}", valid_proc_title_template),
    string("bind-source-addr", ""),
    string("logfile", "").with(IMMUTABLE),
    string("masterauth", "").with(SENSITIVE),
    string("requirepass", "").with(SENSITIVE),
    // enum
    enumeration("supervised", SUPERVISED_NAMES, "no").with(IMMUTABLE),
    enumeration("syslog-facility", SYSLOG_FACILITY_NAMES, "local0").with(IMMUTABLE),
    enumeration("repl-diskless-load", REPL_DISKLESS_LOAD_NAMES, "disabled"),
    enumeration("loglevel", LOGLEVEL_NAMES, "notice"),
    enumeration("maxmemory-policy", MAXMEMORY_POLICY_NAMES, "noeviction"),
    enumeration("appendfsync", APPENDFSYNC_NAMES, "everysec"),
    enumeration("oom-score-adj", OOM_SCORE_ADJ_NAMES, "no"),
    enumeration("acl-pubsub-default", ACL_PUBSUB_DEFAULT_NAMES, "resetchannels"),
    enumeration("sanitize-dump-payload", SANITIZE_DUMP_PAYLOAD_NAMES, "no"),
    enumeration("enable-protected-configs", PROTECTED_ACTION_NAMES, "no").with(IMMUTABLE),
    enumeration("enable-debug-command", PROTECTED_ACTION_NAMES, "no").with(IMMUTABLE),
    enumeration("enable-module-command", PROTECTED_ACTION_NAMES, "no").with(IMMUTABLE),
    enumeration("cluster-preferred-endpoint-type", CLUSTER_ENDPOINT_TYPE_NAMES, "ip"),
    enumeration("propagation-error-behavior", PROPAGATION_ERROR_BEHAVIOR_NAMES, "ignore"),
    def(
        "shutdown-on-sigint",
        Kind::Enum { names: SHUTDOWN_ON_SIG_NAMES, check: Some(valid_shutdown_flags) },
        "default",
    )
    .with(MULTI_ARG),
    def(
        "shutdown-on-sigterm",
        Kind::Enum { names: SHUTDOWN_ON_SIG_NAMES, check: Some(valid_shutdown_flags) },
        "default",
    )
    .with(MULTI_ARG),
    // int
    int("databases", 1, INT_MAX, "16").with(IMMUTABLE),
    int("port", 0, 65535, "6379"),
    int("io-threads", 1, 128, "1").with(IMMUTABLE),
    int("auto-aof-rewrite-percentage", 0, INT_MAX, "100"),
    int("cluster-replica-validity-factor", 0, INT_MAX, "10").alias("cluster-slave-validity-factor"),
    int("list-max-listpack-size", INT_MIN, INT_MAX, "-2").alias("list-max-ziplist-size"),
    int("tcp-keepalive", 0, INT_MAX, "300"),
    int("cluster-migration-barrier", 0, INT_MAX, "1"),
    int("active-defrag-cycle-min", 1, 99, "1"),
    int("active-defrag-cycle-max", 1, 99, "25"),
    int("active-defrag-threshold-lower", 0, 1000, "10"),
    int("active-defrag-threshold-upper", 0, 1000, "100"),
    int("lfu-log-factor", 0, INT_MAX, "10"),
    int("lfu-decay-time", 0, INT_MAX, "1"),
    int("replica-priority", 0, INT_MAX, "100").alias("slave-priority"),
    int("repl-diskless-sync-delay", 0, INT_MAX, "5"),
    int("maxmemory-samples", 1, INT_MAX, "5"),
    int("maxmemory-eviction-tenacity", 0, 100, "10"),
    int("timeout", 0, INT_MAX, "0"),
    int("replica-announce-port", 0, 65535, "0").alias("slave-announce-port"),
    int("tcp-backlog", 0, INT_MAX, "511").with(IMMUTABLE),
    int("cluster-port", 0, 65535, "0").with(IMMUTABLE),
    int("cluster-announce-bus-port", 0, 65535, "0"),
    int("cluster-announce-port", 0, 65535, "0"),
    int("cluster-announce-tls-port", 0, 65535, "0"),
    int("repl-timeout", 1, INT_MAX, "60"),
    int("repl-ping-replica-period", 1, INT_MAX, "10").alias("repl-ping-slave-period"),
    int("list-compress-depth", 0, INT_MAX, "0"),
    int("rdb-key-save-delay", INT_MIN, INT_MAX, "0").with(HIDDEN),
    int("key-load-delay", INT_MIN, INT_MAX, "0").with(HIDDEN),
    int("active-expire-effort", 1, 10, "1"),
    int("hz", 0, INT_MAX, "10"),
    int("min-replicas-to-write", 0, INT_MAX, "0").alias("min-slaves-to-write"),
    int("min-replicas-max-lag", 0, INT_MAX, "10").alias("min-slaves-max-lag"),
    int("watchdog-period", 0, INT_MAX, "0").with(HIDDEN),
    int("shutdown-timeout", 0, INT_MAX, "10"),
    int("repl-diskless-sync-max-replicas", 0, INT_MAX, "0"),
    // unsigned int
    uint("maxclients", 1, UINT_MAX, "10000"),
    num("unixsocketperm", 0, 0o777, true, Unit::Octal, "0").with(IMMUTABLE),
    uint("socket-mark-id", 0, UINT_MAX, "0").with(IMMUTABLE),
    // unsigned long (bounds checked as signed)
    int("active-defrag-max-scan-fields", 1, LONG_MAX, "1000"),
    int("slowlog-max-len", 0, LONG_MAX, "128"),
    int("acllog-max-len", 0, LONG_MAX, "128"),
    // long long
    int("busy-reply-threshold", 0, LONG_MAX, "5000").alias("lua-time-limit"),
    int("cluster-node-timeout", 0, LONG_MAX, "15000"),
    int("slowlog-log-slower-than", -1, LONG_MAX, "10000"),
    int("latency-monitor-threshold", 0, LONG_MAX, "0"),
    memory("proto-max-bulk-len", MB, LONG_MAX, "536870912"),
    int("stream-node-max-entries", 0, LONG_MAX, "100"),
    memory("repl-backlog-size", 1, LONG_MAX, "1048576"),
    // unsigned long long
    umemory("maxmemory", 0, ULLONG_MAX, "0"),
    umemory("cluster-link-sendbuf-limit", 0, ULLONG_MAX, "0"),
    // size_t
    uint("hash-max-listpack-entries", 0, LONG_MAX, "512").alias("hash-max-ziplist-entries"),
    uint("set-max-intset-entries", 0, LONG_MAX, "512"),
    uint("zset-max-listpack-entries", 0, LONG_MAX, "128").alias("zset-max-ziplist-entries"),
    umemory("active-defrag-ignore-bytes", 1, LONG_MAX, "104857600"),
    umemory("hash-max-listpack-value", 0, LONG_MAX, "64").alias("hash-max-ziplist-value"),
    umemory("stream-node-max-bytes", 0, LONG_MAX, "4096"),
    umemory("zset-max-listpack-value", 0, LONG_MAX, "64").alias("zset-max-ziplist-value"),
    umemory("hll-sparse-max-bytes", 0, LONG_MAX, "3000"),
    uint("tracking-table-max-keys", 0, LONG_MAX, "1000000"),
    umemory("client-query-buffer-limit", MB, LONG_MAX, "1073741824"),
    // ssize_t
    num("maxmemory-clients", -100, LONG_MAX, false, Unit::MemoryOrPercent, "0"),
    // time_t, off_t
    int("repl-backlog-ttl", 0, LONG_MAX, "3600"),
    memory("auto-aof-rewrite-min-size", 0, LONG_MAX, "67108864"),
    int("loading-process-events-interval-bytes", 1024, INT_MAX, "2097152").with(HIDDEN),
    // TLS (redis-server is built with it; redsim has no TLS listener)
    int("tls-port", 0, 65535, "0"),
    int("tls-session-cache-size", 0, INT_MAX, "20480"),
    int("tls-session-cache-timeout", 0, INT_MAX, "300"),
    boolean("tls-cluster", "no"),
    boolean("tls-replication", "no"),
    enumeration("tls-auth-clients", TLS_AUTH_CLIENTS_NAMES, "yes"),
    boolean("tls-prefer-server-ciphers", "no"),
    boolean("tls-session-caching", "yes"),
    string("tls-cert-file", ""),
    string("tls-key-file", ""),
    string("tls-key-file-pass", ""),
    string("tls-client-cert-file", ""),
    string("tls-client-key-file", ""),
    string("tls-client-key-file-pass", ""),
    string("tls-dh-params-file", ""),
    string("tls-ca-cert-file", ""),
    string("tls-ca-cert-dir", ""),
    string("tls-protocols", ""),
    string("tls-ciphers", ""),
    string("tls-ciphersuites", ""),
    // special
    special("dir", Special::Dir, "").with(PROTECTED),
    special("save", Special::Save, "3600 1 300 100 60 10000").with(MULTI_ARG),
    special(
        "client-output-buffer-limit",
        Special::ClientOutputBufferLimit,
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
    )
    .with(MULTI_ARG),
    special("oom-score-adj-values", Special::OomScoreAdjValues, "0 200 800").with(MULTI_ARG),
    special("notify-keyspace-events", Special::NotifyKeyspaceEvents, ""),
    special("bind", Special::Bind, "* -::*").with(MULTI_ARG),
    special("replicaof", Special::ReplicaOf, "").alias("slaveof").with(IMMUTABLE | MULTI_ARG),
    special("latency-tracking-info-percentiles", Special::LatencyTrackingInfoPercentiles, "50 99 99.9").with(MULTI_ARG),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_title_templates() {
        assert!(valid_proc_title_template("{title} {listen-addr} {server-mode}").is_ok());
        assert!(valid_proc_title_template("x {{literal").is_ok());
        assert!(valid_proc_title_template("{title}").is_err());
        assert!(valid_proc_title_template("{bogus}").is_err());
        assert!(valid_proc_title_template("{port").is_err());
        assert!(valid_proc_title_template("a {").is_err());
    }

    #[test]
    fn names_are_unique_and_lowercase() {
        let mut names: Vec<&str> = DEFS.iter().flat_map(|d| std::iter::once(d.name).chain(d.alias)).collect();
        assert!(names.iter().all(|n| n.bytes().all(|b| !b.is_ascii_uppercase())));
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n);
    }
}

//! The configuration: Redis 7.0's directives (`table`), each value kept as CONFIG GET prints
//! it, plus typed copies (`Hot`) of the ones the hot path reads. redis.conf, command-line
//! directives and CONFIG SET share one parser per type (`values`), so a value is validated
//! the same way wherever it comes from; only what each may change differs (CONFIG SET can't
//! touch immutable or protected directives) and how `save` lines add up in a file.

pub mod rewrite;
mod table;
mod values;

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::protocol::parser::split_args;
pub use table::{Def, Kind, Num, Special, Unit, DEFS, HIDDEN, IMMUTABLE, PROTECTED, SENSITIVE};
use table::{APPENDFSYNC_NAMES, LOGLEVEL_NAMES, MULTI_ARG};
pub use values::{memtoull, notify, obuf_limits, strtoll};

/// Directives Redis still accepts in a config file and ignores.
const DEPRECATED_DIRECTIVES: &[&str] =
    &["list-max-ziplist-entries", "list-max-ziplist-value", "lua-replicate-commands"];

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AppendFsync {
    Always,
    #[default]
    EverySec,
    No,
}

/// `enable-debug-command`, `enable-protected-configs`: who may use the guarded thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtectedAction {
    No,
    Yes,
    Local,
}

impl ProtectedAction {
    fn parse(s: &str) -> Self {
        match s {
            "yes" => Self::Yes,
            "local" => Self::Local,
            _ => Self::No,
        }
    }

    /// Redis's `allowProtectedAction`.
    pub fn allows(self, local_client: bool) -> bool {
        self == Self::Yes || (self == Self::Local && local_client)
    }
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
    /// Already clamped to 1..=500, as Redis's `updateHZ` does.
    pub hz: u64,
    pub active_expire_effort: u64,
    pub requirepass: Option<Vec<u8>>,
    pub proto_max_bulk_len: u64,
    pub hll_sparse_max_bytes: u64,
    pub client_query_buffer_limit: usize,
    pub timeout_secs: u64,
    pub maxclients: usize,
    pub protected_mode: bool,
    pub appendonly: bool,
    pub appendfsync: AppendFsync,
    pub lazyfree_lazy_eviction: bool,
    pub lazyfree_lazy_expire: bool,
    pub lazyfree_lazy_server_del: bool,
    pub lazyfree_lazy_user_del: bool,
    pub lazyfree_lazy_user_flush: bool,
    pub loglevel: u8,
    /// `notify::*` bits.
    pub notify_keyspace_events: u32,
    pub enable_debug_command: ProtectedAction,
    pub enable_protected_configs: ProtectedAction,
    pub hash_max_listpack_entries: u64,
    pub hash_max_listpack_value: u64,
    pub set_max_intset_entries: u64,
    pub zset_max_listpack_entries: u64,
    pub zset_max_listpack_value: u64,
    pub list_max_listpack_size: i64,
    pub list_compress_depth: u64,
    /// (hard bytes, soft bytes, soft seconds) for normal, replica and pubsub clients.
    pub client_output_buffer_limit: [(u64, u64, u64); 3],
    pub latency_tracking: bool,
    /// `latency-monitor-threshold` in ms; 0 turns the latency monitor off.
    pub latency_monitor_threshold: u64,
    /// min-replicas-to-write and min-replicas-max-lag (seconds): checked on every write.
    pub min_replicas_to_write: u64,
    pub min_replicas_max_lag: u64,
    pub repl_backlog_size: u64,
    /// `repl-timeout` in seconds: read by the replica's link on every turn.
    pub repl_timeout: u64,
}

/// One name CONFIG knows: a directive or its alias (Redis keeps an alias as its own entry,
/// so CONFIG GET lists both and CONFIG SET names whichever was used).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    def: usize,
    alias: bool,
}

impl Entry {
    fn def(self) -> &'static Def {
        &DEFS[self.def]
    }
    fn name(self) -> &'static str {
        let d = self.def();
        match (self.alias, d.alias) {
            (true, Some(a)) => a,
            _ => d.name,
        }
    }
}

/// Names and aliases, lowercase, to their entries; and all entries in table order.
fn entries() -> &'static (HashMap<&'static str, Entry>, Vec<Entry>) {
    static ENTRIES: OnceLock<(HashMap<&'static str, Entry>, Vec<Entry>)> = OnceLock::new();
    ENTRIES.get_or_init(|| {
        let mut ordered = Vec::new();
        for (def, d) in DEFS.iter().enumerate() {
            ordered.push(Entry { def, alias: false });
            if d.alias.is_some() {
                ordered.push(Entry { def, alias: true });
            }
        }
        let by_name = ordered.iter().map(|e| (e.name(), *e)).collect();
        (by_name, ordered)
    })
}

fn lookup(name: &str) -> Option<Entry> {
    entries().0.get(name.to_ascii_lowercase().as_str()).copied()
}

/// The directive a name or alias refers to, case-insensitively.
pub fn find_def(name: &str) -> Option<&'static Def> {
    lookup(name).map(Entry::def)
}

/// Why CONFIG SET refused, as Redis words it (the text after "ERR ").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSetError {
    Unknown(String),
    /// The argument named, and why (immutable, protected, duplicate, or a bad value).
    Failed {
        arg: String,
        why: String,
    },
}

impl ConfigSetError {
    pub fn text(&self) -> String {
        match self {
            Self::Unknown(name) => {
                format!("ERR Unknown option or number of arguments for CONFIG SET - '{name}'")
            }
            Self::Failed { arg, why } => {
                format!("ERR CONFIG SET failed (possibly related to argument '{arg}') - {why}")
            }
        }
    }

    fn failed(arg: &str, why: impl Into<String>) -> Self {
        Self::Failed { arg: arg.to_string(), why: why.into() }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// CONFIG GET's text of each directive, by index in `DEFS`.
    values: Vec<String>,
    /// A config file's first `save` line replaces the default; later ones add to it.
    save_from_file: bool,
    pub hot: Hot,
}

impl Default for Config {
    fn default() -> Self {
        let values: Vec<String> = DEFS.iter().map(|d| d.default.to_string()).collect();
        let hot = Values(&values).hot();
        Config { values, save_from_file: false, hot }
    }
}

/// Read access to the values by name, for building `Hot`.
struct Values<'a>(&'a [String]);

impl Values<'_> {
    fn get(&self, name: &str) -> &str {
        lookup(name).map_or("", |e| self.0[e.def].as_str())
    }

    fn int(&self, name: &str) -> i64 {
        self.get(name).parse().unwrap_or(0)
    }

    fn uint(&self, name: &str) -> u64 {
        self.get(name).parse().unwrap_or(0)
    }

    fn flag(&self, name: &str) -> bool {
        self.get(name) == "yes"
    }

    fn enum_value(&self, name: &str, names: &[(&str, u32)]) -> u32 {
        let v = self.get(name);
        names.iter().find(|(n, _)| *n == v).map_or(0, |(_, x)| *x)
    }

    fn hot(&self) -> Hot {
        Hot {
            port: self.int("port") as u16,
            databases: self.int("databases") as usize,
            maxmemory: self.uint("maxmemory"),
            maxmemory_policy: MaxmemoryPolicy::parse(self.get("maxmemory-policy")),
            maxmemory_samples: self.int("maxmemory-samples") as usize,
            maxmemory_eviction_tenacity: self.uint("maxmemory-eviction-tenacity"),
            lfu_log_factor: self.uint("lfu-log-factor"),
            lfu_decay_time: self.uint("lfu-decay-time"),
            hz: self.uint("hz").clamp(1, 500),
            active_expire_effort: self.uint("active-expire-effort"),
            requirepass: Some(self.get("requirepass")).filter(|p| !p.is_empty()).map(|p| p.as_bytes().to_vec()),
            proto_max_bulk_len: self.uint("proto-max-bulk-len"),
            hll_sparse_max_bytes: self.uint("hll-sparse-max-bytes"),
            client_query_buffer_limit: self.uint("client-query-buffer-limit") as usize,
            timeout_secs: self.uint("timeout"),
            maxclients: self.uint("maxclients") as usize,
            protected_mode: self.flag("protected-mode"),
            appendonly: self.flag("appendonly"),
            appendfsync: match self.enum_value("appendfsync", APPENDFSYNC_NAMES) {
                1 => AppendFsync::Always,
                2 => AppendFsync::No,
                _ => AppendFsync::EverySec,
            },
            lazyfree_lazy_eviction: self.flag("lazyfree-lazy-eviction"),
            lazyfree_lazy_expire: self.flag("lazyfree-lazy-expire"),
            lazyfree_lazy_server_del: self.flag("lazyfree-lazy-server-del"),
            lazyfree_lazy_user_del: self.flag("lazyfree-lazy-user-del"),
            lazyfree_lazy_user_flush: self.flag("lazyfree-lazy-user-flush"),
            loglevel: self.enum_value("loglevel", LOGLEVEL_NAMES) as u8,
            notify_keyspace_events: values::keyspace_events_from_str(self.get("notify-keyspace-events")).unwrap_or(0),
            enable_debug_command: ProtectedAction::parse(self.get("enable-debug-command")),
            enable_protected_configs: ProtectedAction::parse(self.get("enable-protected-configs")),
            hash_max_listpack_entries: self.uint("hash-max-listpack-entries"),
            hash_max_listpack_value: self.uint("hash-max-listpack-value"),
            set_max_intset_entries: self.uint("set-max-intset-entries"),
            zset_max_listpack_entries: self.uint("zset-max-listpack-entries"),
            zset_max_listpack_value: self.uint("zset-max-listpack-value"),
            list_max_listpack_size: self.int("list-max-listpack-size"),
            list_compress_depth: self.uint("list-compress-depth"),
            client_output_buffer_limit: obuf_limits(self.get("client-output-buffer-limit")),
            latency_tracking: self.flag("latency-tracking"),
            latency_monitor_threshold: self.uint("latency-monitor-threshold"),
            min_replicas_to_write: self.uint("min-replicas-to-write"),
            min_replicas_max_lag: self.uint("min-replicas-max-lag"),
            repl_backlog_size: self.uint("repl-backlog-size"),
            repl_timeout: self.uint("repl-timeout"),
        }
    }
}

impl Config {
    /// A directive's value as CONFIG GET prints it, by name or alias.
    pub fn get(&self, name: &str) -> Option<&str> {
        lookup(name).map(|e| self.values[e.def].as_str())
    }

    /// CONFIG GET: name/value pairs for each argument. A name without glob characters is
    /// looked up as given (hidden directives too) and answered under the spelling asked; a
    /// pattern lists matching directives and aliases. Each name once, case-insensitively.
    pub fn get_matching(&self, patterns: &[&[u8]]) -> Vec<(Vec<u8>, String)> {
        let mut out: Vec<(Vec<u8>, String)> = Vec::new();
        let seen = |out: &[(Vec<u8>, String)], name: &[u8]| out.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
        for &p in patterns {
            if !p.iter().any(|c| matches!(c, b'[' | b'*' | b'?')) {
                let found = std::str::from_utf8(p).ok().and_then(lookup);
                if let (Some(e), false) = (found, seen(&out, p)) {
                    out.push((p.to_vec(), values::shown(e.def(), &self.values[e.def])));
                }
                continue;
            }
            for e in &entries().1 {
                let name = e.name().as_bytes();
                if e.def().has(HIDDEN) || seen(&out, name) || !crate::util::glob_match(p, name, true) {
                    continue;
                }
                out.push((name.to_vec(), values::shown(e.def(), &self.values[e.def])));
            }
        }
        out
    }

    /// CONFIG SET of name/value pairs, all or nothing, with Redis's checks in its order:
    /// every name must exist and be settable by this client and appear once (first failure
    /// wins), then each value must parse, then each change must take effect. `local_client`
    /// is for `enable-protected-configs local`. Returns the directives that changed.
    pub fn set_pairs(
        &mut self,
        pairs: &[(&[u8], &[u8])],
        local_client: bool,
    ) -> Result<Vec<&'static str>, ConfigSetError> {
        let found = self.settable_entries(pairs, local_client)?;
        let mut next = self.clone();
        let mut changed = Vec::new();
        for (e, (_, value)) in found.iter().zip(pairs) {
            let d = e.def();
            let args = values::split_value(d, &String::from_utf8_lossy(value));
            let v =
                values::parse(d, &args, &next.values[e.def]).map_err(|why| ConfigSetError::failed(e.name(), why))?;
            if v != next.values[e.def] {
                next.values[e.def] = v;
                changed.push(*e);
            }
        }
        for e in &changed {
            apply_check(e.def().name).map_err(|why| ConfigSetError::failed(e.name(), why))?;
        }
        next.refresh();
        *self = next;
        Ok(changed.iter().map(|e| e.def().name).collect())
    }

    fn settable_entries(&self, pairs: &[(&[u8], &[u8])], local_client: bool) -> Result<Vec<Entry>, ConfigSetError> {
        let mut found: Vec<Entry> = Vec::with_capacity(pairs.len());
        for (name, _) in pairs {
            let typed = String::from_utf8_lossy(name);
            let e = lookup(&typed).ok_or_else(|| ConfigSetError::Unknown(typed.to_string()))?;
            let d = e.def();
            if d.has(IMMUTABLE) {
                return Err(ConfigSetError::failed(&typed, "can't set immutable config"));
            }
            if d.has(PROTECTED) && !self.hot.enable_protected_configs.allows(local_client) {
                return Err(ConfigSetError::failed(&typed, "can't set protected config"));
            }
            if found.contains(&e) {
                return Err(ConfigSetError::failed(&typed, "duplicate parameter"));
            }
            found.push(e);
        }
        Ok(found)
    }

    /// Sets a directive as a config file or the command line does: immutable ones too, and
    /// `save` lines add up.
    pub fn apply_directive(&mut self, name: &str, vals: &[String]) -> Result<(), String> {
        let Some(e) = lookup(name) else {
            if DEPRECATED_DIRECTIVES.contains(&name.to_ascii_lowercase().as_str()) && vals.len() == 1 {
                return Ok(());
            }
            return Err("Bad directive or wrong number of arguments".into());
        };
        let d = e.def();
        if !d.has(MULTI_ARG) && vals.len() != 1 {
            return Err("wrong number of arguments".into());
        }
        // Redis splits the one value of a multi-argument directive at spaces (`--save "60 1"`).
        let split: Vec<String>;
        let vals = if d.has(MULTI_ARG) && vals.len() == 1 && !vals[0].is_empty() {
            split = vals[0].split(' ').map(String::from).collect();
            &split[..]
        } else {
            vals
        };
        let mut v = values::parse(d, vals, &self.values[e.def])?;
        if matches!(d.kind, Kind::Special(Special::Save)) {
            // `save ""` clears the points set so far, as setConfigSaveOption does.
            if self.save_from_file && !v.is_empty() {
                v = values::append_save(&self.values[e.def], &v);
            }
            self.save_from_file = true;
        }
        self.values[e.def] = v;
        self.refresh();
        Ok(())
    }

    /// One directive from a single string, as a redis.conf line would give it (multi-word
    /// values split at spaces).
    pub fn set_startup(&mut self, name: &str, value: &str) -> Result<(), String> {
        let vals = match find_def(name) {
            Some(d) if d.has(MULTI_ARG) => value.split_whitespace().map(String::from).collect(),
            _ => vec![value.to_string()],
        };
        self.apply_directive(name, &vals)
    }

    /// Loads redis.conf text: one directive per line, `#` comments, quoted arguments.
    pub fn load_text(&mut self, text: &str) -> Result<(), String> {
        // The default user's password hash from a `user` line, checked once requirepass is known.
        let mut user_hash: Option<(usize, String)> = None;
        for (i, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let Some(args) = split_args(trimmed.as_bytes()) else {
                return Err(format!("line {}\n>>> '{trimmed}'\nUnbalanced quotes in configuration line", i + 1));
            };
            let args: Vec<String> = args.into_iter().map(|a| String::from_utf8_lossy(&a).into_owned()).collect();
            let Some((name, vals)) = args.split_first() else {
                continue;
            };
            let at = |e: String| format!("line {}\n>>> '{}'\n{e}", i + 1, trimmed);
            if name.eq_ignore_ascii_case("user") {
                if let Some(hash) = self.apply_user_line(vals).map_err(at)? {
                    user_hash = Some((i, hash));
                }
                continue;
            }
            self.apply_directive(name, vals).map_err(at)?;
        }
        if let Some((i, hash)) = user_hash {
            if rewrite::password_hash(self.get("requirepass").unwrap_or("")) != hash {
                return Err(format!(
                    "line {}\nthe default user's password hash is not requirepass's (redsim keeps the default \
                     user's password in requirepass)",
                    i + 1
                ));
            }
        }
        Ok(())
    }

    /// A `user` line as CONFIG REWRITE writes it. redsim has no ACL beyond the default user
    /// with every permission and requirepass as its password, so only such a line is taken:
    /// `>pw` and `nopass` set requirepass, `#hash` must be requirepass's hash (returned for
    /// the caller to check once the whole file is read).
    fn apply_user_line(&mut self, vals: &[String]) -> Result<Option<String>, String> {
        let Some((user, rules)) = vals.split_first() else {
            return Err("wrong number of arguments".into());
        };
        if user != "default" {
            return Err(format!("redsim has no ACL users but 'default', not '{user}'"));
        }
        let mut hash = None;
        for r in rules {
            match r.as_str() {
                "on"
                | "~*"
                | "&*"
                | "+@all"
                | "allkeys"
                | "allchannels"
                | "allcommands"
                | "sanitize-payload"
                | "skip-sanitize-payload" => {}
                "nopass" => self.apply_directive("requirepass", &[String::new()])?,
                _ if r.starts_with('>') => self.apply_directive("requirepass", &[r[1..].to_string()])?,
                _ if r.starts_with('#') && r.len() == 65 => hash = Some(r[1..].to_ascii_lowercase()),
                _ => {
                    return Err(format!("redsim's default user has every permission: ACL rule '{r}' is not supported"))
                }
            }
        }
        Ok(hash)
    }

    fn refresh(&mut self) {
        self.hot = Values(&self.values).hot();
    }
}

/// Changes Redis applies to the running process, which redsim cannot make (yet): refusing
/// them is honest, accepting them would leave CONFIG GET and the process disagreeing. The
/// texts are Redis's for a failed apply.
fn apply_check(name: &str) -> Result<(), &'static str> {
    match name {
        "port" => Err("Unable to listen on this port. Check server logs."),
        "bind" => Err("Failed to bind to specified addresses."),
        "tls-port" => Err("Unable to update TLS configuration. Check server logs."),
        // Redis's chdir error is strerror(errno); the env layer has no chdir.
        "dir" => Err("Operation not supported"),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;

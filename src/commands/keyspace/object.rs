//! OBJECT and MEMORY (Redis's `object.c`): what one key's value looks like inside, and what
//! the keyspace costs in memory.
//!
//! MEMORY USAGE answers for redsim's own layout, not Redis's: exact equality with Redis is
//! not a goal, an honest figure is. For a key it adds, at jemalloc's size classes:
//! - the main dict's entry node (key pointer, the object with its LRU field, chain link);
//! - the key's bytes;
//! - the bytes the value owns on the heap (`Value::heap_bytes`; an int-encoded string none);
//! - with a TTL, the expires dict's node and its own copy of the key;
//! - in cluster mode, the slot index's node and its copy of the key (Redis adds its dict
//!   entries' slot links, `dictMetadataSize`).
//!
//! Bucket arrays are shared by all keys: MEMORY STATS reports them as overhead, as Redis does.

use bytes::Bytes;

use super::super::{int_arg, CmdError, CmdResult, Ctx};
use super::lookup_notouch_notify;
use crate::engine::dict::Dict;
use crate::engine::object::{alloc_bytes, RObj};
use crate::engine::sds::heap_bytes_for;
use crate::engine::slot_to_keys::SlotToKeys;
use crate::server::evict::{estimate_idle_ms, lfu_decr_and_return};

/// MEMORY DOCTOR does not judge an instance smaller than this (Redis's threshold).
const DOCTOR_MIN_BYTES: u64 = 5 * 1024 * 1024;
/// Fragmentation and RSS overheads matter only beyond this many bytes.
const DOCTOR_WASTE_MIN_BYTES: i64 = 10 << 20;
/// Average client buffers above this are reported.
const DOCTOR_CLIENT_BUF_MAX_BYTES: u64 = 200 * 1024;
/// The allocator MEMORY DOCTOR names in its report.
const ZMALLOC_LIB: &str = "jemalloc-5.3.0";
/// One bucket of a dict's table: a pointer.
const BUCKET_BYTES: u64 = std::mem::size_of::<usize>() as u64;

const OBJECT_HELP: &[&str] = &[
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
];

const MEMORY_HELP: &[&str] = &[
    "DOCTOR",
    "    Return memory problems reports.",
    "MALLOC-STATS",
    "    Return internal statistics report from the memory allocator.",
    "PURGE",
    "    Attempt to purge dirty pages for reclamation by the allocator.",
    "STATS",
    "    Return information about the memory usage of the server.",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value. Nested values are",
    "    sampled up to <count> times (default: 5, 0 means sample all).",
];

/// Redis's `addReplyHelp`: a header naming the command, the lines, then HELP itself.
fn reply_help(ctx: &mut Ctx, a: &[Bytes], lines: &[&str]) {
    let name = String::from_utf8_lossy(&a[0]).to_uppercase();
    let out = ctx.out();
    out.array(lines.len() + 3);
    out.simple(&format!("{name} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"));
    for line in lines {
        out.simple(line);
    }
    out.simple("HELP");
    out.simple("    Prints this help.");
}

/// OBJECT's lookup: the object's LRU/LFU field and refcount; None after replying null.
fn object_meta(ctx: &mut Ctx, key: &[u8]) -> Option<(u32, i64)> {
    let meta = lookup_notouch_notify(ctx, key, false).map(|o| (o.lru, o.refcount()));
    if meta.is_none() {
        ctx.out().null();
    }
    meta
}

pub fn encoding(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let enc = lookup_notouch_notify(ctx, &a[2], false).map(|o| o.val.encoding());
    match enc {
        Some(e) => ctx.out().bulk_str(e),
        None => ctx.out().null(),
    }
    Ok(())
}

pub fn refcount(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    if let Some((_, refcount)) = object_meta(ctx, &a[2]) {
        ctx.out().int(refcount);
    }
    Ok(())
}

pub fn idletime(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let Some((lru, _)) = object_meta(ctx, &a[2]) else {
        return Ok(());
    };
    if ctx.srv.config.hot.maxmemory_policy.is_lfu() {
        return Err(CmdError::err(
            "An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching \
             between policies at runtime LRU and LFU data will take some time to adjust.",
        ));
    }
    let idle_secs = estimate_idle_ms(lru, ctx.srv.lru_clock()) / 1000;
    ctx.out().int(idle_secs as i64);
    Ok(())
}

pub fn freq(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let Some((lfu, _)) = object_meta(ctx, &a[2]) else {
        return Ok(());
    };
    if !ctx.srv.config.hot.maxmemory_policy.is_lfu() {
        return Err(CmdError::err(
            "An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when \
             switching between policies at runtime LRU and LFU data will take some time to adjust.",
        ));
    }
    // Decay first: the stored counter is only brought up to date when the key is used.
    let counter = lfu_decr_and_return(lfu, ctx.now_ms(), ctx.srv.config.hot.lfu_decay_time);
    ctx.out().int(i64::from(counter));
    Ok(())
}

pub fn help(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    reply_help(ctx, a, OBJECT_HELP);
    Ok(())
}

pub fn memory_help(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    reply_help(ctx, a, MEMORY_HELP);
    Ok(())
}

/// Bytes one key costs (see the module comment).
pub fn key_usage(key: &[u8], obj: &RObj, has_ttl: bool) -> u64 {
    let mut n = alloc_bytes(Dict::<RObj>::entry_bytes()) + heap_bytes_for(key.len()) + obj.val.heap_bytes();
    if has_ttl {
        n += alloc_bytes(Dict::<u64>::entry_bytes()) + heap_bytes_for(key.len());
    }
    n as u64
}

/// MEMORY USAGE's SAMPLES, validated as Redis does. Only aggregates sample their elements;
/// strings are measured exactly, so the value is not needed yet.
fn check_usage_options(a: &[Bytes]) -> CmdResult {
    let mut i = 3;
    while i < a.len() {
        if !(a[i].eq_ignore_ascii_case(b"samples") && i + 1 < a.len()) {
            return Err(CmdError::Syntax);
        }
        if int_arg(&a[i + 1])? < 0 {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    Ok(())
}

/// MEMORY USAGE: like Redis, it does not expire the key (an expired key still has a size).
pub fn memory_usage(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    check_usage_options(a)?;
    let db = &ctx.srv.dbs[ctx.client.db];
    let key = &a[2];
    let slot_entry = if db.slot_to_keys.is_some() { SlotToKeys::entry_bytes(key.len()) as u64 } else { 0 };
    let usage = db.get(key).map(|o| key_usage(key, o, db.expire_of(key).is_some()) + slot_entry);
    match usage {
        Some(n) => ctx.out().int(n as i64),
        None => ctx.out().null(),
    }
    Ok(())
}

/// One db's bookkeeping beyond the keys and values themselves.
struct DbOverhead {
    id: usize,
    main: u64,
    expires: u64,
    slot_to_keys: u64,
}

/// Redis's `redisMemOverhead`, from what redsim can see.
struct MemOverhead {
    used: u64,
    peak: u64,
    /// Not tracked yet: redsim does not record its memory at startup.
    startup: u64,
    clients_normal: u64,
    clients: u64,
    dbs: Vec<DbOverhead>,
    keys: u64,
    rss: u64,
    allocated: u64,
    active: u64,
    resident: u64,
}

impl MemOverhead {
    fn collect(ctx: &Ctx) -> MemOverhead {
        let srv = &*ctx.srv;
        let used = srv.sys.used_memory();
        let rss = srv.sys.rss_bytes();
        let (allocated, active, resident) = srv.sys.allocator_stats().unwrap_or((used, used, rss));
        // The running client is out of the map while its command runs.
        let others = srv.clients.values().map(|c| c.out.buf.capacity() + c.qbuf);
        let clients_normal = others.sum::<usize>() + ctx.client.out.buf.capacity() + ctx.client.qbuf;
        let dbs: Vec<DbOverhead> = srv.dbs.iter().filter(|db| !db.is_empty()).map(db_overhead).collect();
        MemOverhead {
            used,
            peak: srv.stats.peak_memory.max(used),
            startup: 0,
            clients_normal: clients_normal as u64,
            clients: srv.clients.len() as u64 + 1,
            keys: srv.dbs.iter().map(|db| db.len() as u64).sum(),
            dbs,
            rss,
            allocated,
            active,
            resident,
        }
    }

    fn total(&self) -> u64 {
        self.startup + self.clients_normal + self.dbs.iter().map(|d| d.main + d.expires + d.slot_to_keys).sum::<u64>()
    }

    fn net_usage(&self) -> u64 {
        if self.used > self.startup {
            self.used - self.startup
        } else {
            1
        }
    }

    fn dataset(&self) -> u64 {
        self.used.saturating_sub(self.total())
    }
}

fn db_overhead(db: &crate::engine::db::Db) -> DbOverhead {
    let main_entry = alloc_bytes(Dict::<RObj>::entry_bytes()) as u64;
    let expires_entry = alloc_bytes(Dict::<u64>::entry_bytes()) as u64;
    DbOverhead {
        id: db.id,
        main: db.len() as u64 * main_entry + db.dict.buckets() as u64 * BUCKET_BYTES,
        expires: db.expires.len() as u64 * expires_entry + db.expires.buckets() as u64 * BUCKET_BYTES,
        slot_to_keys: db.slot_to_keys.as_ref().map_or(0, |s| s.bytes() as u64),
    }
}

/// Redis keeps these ratios as C floats; replying with the float's value gives the same digits.
fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        f64::from(a as f32 / b as f32)
    }
}

fn diff(a: u64, b: u64) -> i64 {
    a as i64 - b as i64
}

pub fn memory_stats(ctx: &mut Ctx, _a: &[Bytes]) -> CmdResult {
    let m = MemOverhead::collect(ctx);
    let out = ctx.out();
    out.map(27 + m.dbs.len());
    let ints: [(&str, u64); 10] = [
        ("peak.allocated", m.peak),
        ("total.allocated", m.used),
        ("startup.allocated", m.startup),
        ("replication.backlog", 0),
        ("clients.slaves", 0),
        ("clients.normal", m.clients_normal),
        ("cluster.links", 0),
        ("aof.buffer", 0),
        ("lua.caches", 0),
        ("functions.caches", 0),
    ];
    for (name, n) in ints {
        out.bulk_str(name);
        out.int(n as i64);
    }
    for d in &m.dbs {
        out.bulk_str(&format!("db.{}", d.id));
        out.map(3);
        out.bulk_str("overhead.hashtable.main");
        out.int(d.main as i64);
        out.bulk_str("overhead.hashtable.expires");
        out.int(d.expires as i64);
        out.bulk_str("overhead.hashtable.slot-to-keys");
        out.int(d.slot_to_keys as i64);
    }
    write_stats_tail(out, &m);
    Ok(())
}

fn write_stats_tail(out: &mut crate::protocol::ReplyBuf, m: &MemOverhead) {
    enum V {
        I(i64),
        D(f64),
    }
    let net = m.net_usage();
    let fields = [
        ("overhead.total", V::I(m.total() as i64)),
        ("keys.count", V::I(m.keys as i64)),
        ("keys.bytes-per-key", V::I(net.checked_div(m.keys).unwrap_or(0) as i64)),
        ("dataset.bytes", V::I(m.dataset() as i64)),
        ("dataset.percentage", V::D(ratio(m.dataset() * 100, net))),
        ("peak.percentage", V::D(ratio(m.used * 100, m.peak))),
        ("allocator.allocated", V::I(m.allocated as i64)),
        ("allocator.active", V::I(m.active as i64)),
        ("allocator.resident", V::I(m.resident as i64)),
        ("allocator-fragmentation.ratio", V::D(ratio(m.active, m.allocated))),
        ("allocator-fragmentation.bytes", V::I(diff(m.active, m.allocated))),
        ("allocator-rss.ratio", V::D(ratio(m.resident, m.active))),
        ("allocator-rss.bytes", V::I(diff(m.resident, m.active))),
        ("rss-overhead.ratio", V::D(ratio(m.rss, m.resident))),
        ("rss-overhead.bytes", V::I(diff(m.rss, m.resident))),
        ("fragmentation", V::D(ratio(m.rss, m.used))),
        ("fragmentation.bytes", V::I(diff(m.rss, m.used))),
    ];
    for (name, v) in fields {
        out.bulk_str(name);
        match v {
            V::I(n) => out.int(n),
            V::D(d) => out.double(d),
        }
    }
}

/// The issues MEMORY DOCTOR looks for, in its report's order, with Redis's texts.
fn doctor_issues(m: &MemOverhead) -> Vec<String> {
    let waste = |r: f64, bytes: i64, limit: f64| r > limit && bytes > DOCTOR_WASTE_MIN_BYTES;
    let mut v = Vec::new();
    if m.used > 0 && (m.peak as f32 / m.used as f32) > 1.5 {
        v.push(DOCTOR_PEAK.to_string());
    }
    if waste(ratio(m.rss, m.used), diff(m.rss, m.used), 1.4) {
        v.push(DOCTOR_FRAG.replace("%s", ZMALLOC_LIB));
    }
    if waste(ratio(m.active, m.allocated), diff(m.active, m.allocated), 1.1) {
        v.push(DOCTOR_ALLOC_FRAG.to_string());
    }
    if waste(ratio(m.resident, m.active), diff(m.resident, m.active), 1.1) {
        v.push(DOCTOR_ALLOC_RSS.to_string());
    }
    if waste(ratio(m.rss, m.resident), diff(m.rss, m.resident), 1.1) {
        v.push(DOCTOR_PROC_RSS.to_string());
    }
    if m.clients_normal / m.clients.max(1) > DOCTOR_CLIENT_BUF_MAX_BYTES {
        v.push(DOCTOR_CLIENT_BUF.to_string());
    }
    v
}

fn doctor_report(m: &MemOverhead) -> String {
    if m.used < DOCTOR_MIN_BYTES {
        return DOCTOR_EMPTY.to_string();
    }
    let issues = doctor_issues(m);
    if issues.is_empty() {
        return DOCTOR_FINE.to_string();
    }
    let mut s = String::from("Sam, I detected a few issues in this Redis instance memory implants:\n\n");
    for issue in issues {
        s.push_str(&issue);
        s.push_str("\n\n");
    }
    s.push_str("I'm here to keep you safe, Sam. I want to help you.\n");
    s
}

pub fn memory_doctor(ctx: &mut Ctx, _a: &[Bytes]) -> CmdResult {
    let report = doctor_report(&MemOverhead::collect(ctx));
    ctx.out().verbatim(report.as_bytes());
    Ok(())
}

/// The allocator's own report is not reachable from node code; Redis answers this way when
/// built without jemalloc.
pub fn memory_malloc_stats(ctx: &mut Ctx, _a: &[Bytes]) -> CmdResult {
    ctx.out().verbatim(b"Stats not supported for the current allocator");
    Ok(())
}

/// Nothing to purge that the allocator would not return by itself; Redis replies OK too
/// when purging is not possible.
pub fn memory_purge(ctx: &mut Ctx, _a: &[Bytes]) -> CmdResult {
    ctx.out().ok();
    Ok(())
}

const DOCTOR_EMPTY: &str = "Hi Sam, this instance is empty or is using very little memory, my issues detector \
can't be used in these conditions. Please, leave for your mission on Earth and fill it with some data. The new \
Sam and I will be back to our programming as soon as I finished rebooting.\n";
const DOCTOR_FINE: &str =
    "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.\n";
const DOCTOR_PEAK: &str = " * Peak memory: In the past this instance used more than 150% the memory that is \
currently using. The allocator is normally not able to release memory after a peak, so you can expect to see a \
big fragmentation ratio, however this is actually harmless and is only due to the memory peak, and if the Redis \
instance Resident Set Size (RSS) is currently bigger than expected, the memory will be used as soon as you fill \
the Redis instance with more data. If the memory peak was only occasional and you want to try to reclaim memory, \
please try the MEMORY PURGE command, otherwise the only other option is to shutdown and restart the instance.";
const DOCTOR_FRAG: &str = " * High total RSS: This instance has a memory fragmentation and RSS overhead greater \
than 1.4 (this means that the Resident Set Size of the Redis process is much larger than the sum of the logical \
allocations Redis performed). This problem is usually due either to a large peak memory (check if there is a peak \
memory entry above in the report) or may result from a workload that causes the allocator to fragment memory a \
lot. If the problem is a large peak memory, then there is no issue. Otherwise, make sure you are using the \
Jemalloc allocator and not the default libc malloc. Note: The currently used allocator is \"%s\".";
const DOCTOR_ALLOC_FRAG: &str = " * High allocator fragmentation: This instance has an allocator external \
fragmentation greater than 1.1. This problem is usually due either to a large peak memory (check if there is a \
peak memory entry above in the report) or may result from a workload that causes the allocator to fragment memory \
a lot. You can try enabling 'activedefrag' config option.";
const DOCTOR_ALLOC_RSS: &str = " * High allocator RSS overhead: This instance has an RSS memory overhead is \
greater than 1.1 (this means that the Resident Set Size of the allocator is much larger than the sum what the \
allocator actually holds). This problem is usually due to a large peak memory (check if there is a peak memory \
entry above in the report), you can try the MEMORY PURGE command to reclaim it.";
const DOCTOR_PROC_RSS: &str = " * High process RSS overhead: This instance has non-allocator RSS memory overhead \
is greater than 1.1 (this means that the Resident Set Size of the Redis process is much larger than the RSS the \
allocator holds). This problem may be due to Lua scripts or Modules.";
const DOCTOR_CLIENT_BUF: &str = " * Big client buffers: The clients output buffers in this instance are greater \
than 200K per client (on average). This may result from different causes, like Pub/Sub clients subscribed to \
channels bot not receiving data fast enough, so that data piles on the Redis instance output buffer, or clients \
sending commands with large replies or very large sequences of commands in the same pipeline. Please use the \
CLIENT LIST command in order to investigate the issue if it causes problems in your instance, or to understand \
better why certain clients are using a big amount of memory.";

//! INFO: the sections and field names of Redis 7.0, filled from the node's state. Fields that
//! describe features redsim does not have yet report what an idle Redis reports for them.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::Server;
use crate::engine::db::Db;

/// What an idle Redis reports for Lua and functions, which redsim does not have.
const IDLE_SCRIPTING_MEMORY: &str = "used_memory_lua:32768\nused_memory_vm_eval:32768\nused_memory_lua_human:32.00K\n\
     used_memory_scripts_eval:0\nnumber_of_cached_scripts:0\nnumber_of_functions:0\nnumber_of_libraries:0\n\
     used_memory_vm_functions:33792\nused_memory_vm_total:66560\nused_memory_vm_total_human:65.00K\n\
     used_memory_functions:200\nused_memory_scripts:200\nused_memory_scripts_human:200B\n";

/// A Redis dict's own memory for `n` entries: the entries and a power-of-two bucket array.
fn dict_overhead(n: u64) -> u64 {
    const ENTRY_BYTES: u64 = 24;
    const BUCKET_BYTES: u64 = 8;
    if n == 0 {
        return 0;
    }
    n * ENTRY_BYTES + n.next_power_of_two() * BUCKET_BYTES
}

/// Redis's LATENCY_HISTOGRAM_{MIN,MAX}_VALUE, in ns.
const LATENCY_MIN_NS: u64 = 1;
const LATENCY_MAX_NS: u64 = 1_000_000_000;

/// A command's latency histogram as Redis keeps it (hdr_histogram, two significant digits,
/// in ns). INFO's percentiles are bucket bounds, so counting per bucket is enough.
#[derive(Debug, Default, Clone)]
pub struct LatencyHistogram {
    /// Lowest value of a bucket → count.
    buckets: BTreeMap<u64, u64>,
    total: u64,
}

/// hdr's bucket width at `v`: values below 256 are exact, then each power of two is split
/// into 128 equal steps.
fn bucket_width(v: u64) -> u64 {
    1 << (64 - v.leading_zeros()).saturating_sub(8)
}

impl LatencyHistogram {
    pub fn record(&mut self, usec: u64) {
        let ns = usec.saturating_mul(1000).clamp(LATENCY_MIN_NS, LATENCY_MAX_NS);
        *self.buckets.entry(ns - ns % bucket_width(ns)).or_default() += 1;
        self.total += 1;
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// LATENCY HISTOGRAM's buckets (hdr's log iterator from 1024 ns, doubling): (upper bound
    /// in µs, values at or below it), for the bounds where the cumulative count grew.
    pub fn cumulative_log2_us(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let (mut upper_ns, mut seen, mut prev) = (1024u64, 0u64, 0u64);
        let mut it = self.buckets.iter().peekable();
        while seen < self.total {
            while let Some((&low, &n)) = it.peek() {
                if low >= upper_ns {
                    break;
                }
                seen += n;
                let _ = (low, it.next());
            }
            if seen > prev {
                out.push(((upper_ns - 1) / 1000, seen));
                prev = seen;
            }
            upper_ns = upper_ns.saturating_mul(2);
        }
        out
    }

    /// `hdr_value_at_percentile`: the highest value of the bucket where the percentile falls.
    pub fn value_at_percentile(&self, percentile: f64) -> u64 {
        let p = percentile.min(100.0);
        let target = (((p / 100.0) * self.total as f64 + 0.5) as u64).max(1);
        let mut seen = 0;
        for (&low, &n) in &self.buckets {
            seen += n;
            if seen >= target {
                return if percentile == 0.0 { low } else { low + bucket_width(low) - 1 };
            }
        }
        0
    }
}

/// Redis's `bytesToHuman`.
pub fn bytes_to_human(n: u64) -> String {
    let d = n as f64;
    const K: f64 = 1024.0;
    if n < 1024 {
        format!("{n}B")
    } else if d < K * K {
        format!("{:.2}K", d / K)
    } else if d < K * K * K {
        format!("{:.2}M", d / (K * K))
    } else if d < K * K * K * K {
        format!("{:.2}G", d / (K * K * K))
    } else if d < K * K * K * K * K {
        format!("{:.2}T", d / (K * K * K * K))
    } else {
        format!("{:.2}P", d / (K * K * K * K * K))
    }
}

const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "errorstats",
    "cluster",
    "keyspace",
];
const ALL_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "commandstats",
    "errorstats",
    "latencystats",
    "cluster",
    "keyspace",
];

/// The sections INFO's arguments select, in Redis's order.
pub fn select_sections(args: &[&str]) -> Vec<&'static str> {
    let lower: Vec<String> = args.iter().map(|a| a.to_ascii_lowercase()).collect();
    if lower.is_empty() || lower.iter().any(|a| a == "default") && lower.len() == 1 {
        return DEFAULT_SECTIONS.to_vec();
    }
    let all = lower.iter().any(|a| a == "all" || a == "everything");
    ALL_SECTIONS
        .iter()
        .copied()
        .filter(|s| {
            all || lower.iter().any(|a| a == s)
                || (lower.iter().any(|a| a == "default") && DEFAULT_SECTIONS.contains(s))
        })
        .collect()
}

impl Server {
    pub fn info(&self, sections: &[&str]) -> String {
        let mut out = String::new();
        for (i, s) in sections.iter().enumerate() {
            if i > 0 {
                out.push_str("\r\n");
            }
            let title = match *s {
                "cpu" => "CPU".to_string(),
                other => {
                    let mut t = other.to_string();
                    t[..1].make_ascii_uppercase();
                    t
                }
            };
            let _ = write!(out, "# {title}\r\n");
            let mut body = String::new();
            match *s {
                "server" => self.info_server(&mut body),
                "clients" => self.info_clients(&mut body),
                "memory" => self.info_memory(&mut body),
                "persistence" => self.info_persistence(&mut body),
                "stats" => self.info_stats(&mut body),
                "replication" => self.info_replication(&mut body),
                "cpu" => self.info_cpu(&mut body),
                "commandstats" => self.info_commandstats(&mut body),
                "errorstats" => self.info_errorstats(&mut body),
                "latencystats" => self.info_latencystats(&mut body),
                "cluster" => {
                    body.push_str(if self.cluster.is_some() { "cluster_enabled:1\n" } else { "cluster_enabled:0\n" })
                }
                "keyspace" => self.info_keyspace(&mut body),
                _ => {}
            }
            for line in body.lines() {
                out.push_str(line);
                out.push_str("\r\n");
            }
        }
        out
    }

    fn info_server(&self, o: &mut String) {
        let uptime = self.now.mono_ms.saturating_sub(self.start.mono_ms) / 1000;
        let _ = write!(
            o,
            "redis_version:7.0.15\nredis_git_sha1:00000000\nredis_git_dirty:0\nredis_build_id:0\n\
             redis_mode:standalone\nos:{} {}\narch_bits:64\nmonotonic_clock:POSIX clock_gettime\n\
             multiplexing_api:epoll\natomicvar_api:c11-builtin\ngcc_version:0.0.0\nprocess_id:{}\n\
             process_supervised:no\nrun_id:{}\ntcp_port:{}\nserver_time_usec:{}\nuptime_in_seconds:{}\n\
             uptime_in_days:{}\nhz:{}\nconfigured_hz:{}\nlru_clock:{}\nexecutable:{}\nconfig_file:{}\n\
             io_threads_active:0\n",
            std::env::consts::OS,
            std::env::consts::ARCH,
            self.sys.process_id(),
            self.run_id,
            self.listening_port,
            self.now.unix_us,
            uptime,
            uptime / 86400,
            self.config.hot.hz,
            self.config.hot.hz,
            self.lru_clock(),
            self.executable,
            self.config_file,
        );
    }

    fn info_clients(&self, o: &mut String) {
        let _ = write!(
            o,
            "connected_clients:{}\ncluster_connections:0\nmaxclients:{}\nclient_recent_max_input_buffer:0\n\
             client_recent_max_output_buffer:0\nblocked_clients:{}\ntracking_clients:0\nclients_in_timeout_table:{}\n",
            self.clients.len() + 1,
            self.config.hot.maxclients,
            self.client_pause.postponed.len() + self.blocking.clients.len(),
            self.blocking.clients.values().filter(|s| s.deadline_ms != 0).count(),
        );
    }

    /// Redis's `getMemoryOverheadData`, estimated: what the server itself holds (startup
    /// allocations, client buffers, the databases' hash tables) apart from the data.
    fn memory_overhead(&self) -> u64 {
        let clients: u64 = self.clients.values().map(|c| (c.out.len() + c.qbuf) as u64).sum();
        let slot_to_keys = |db: &Db| db.slot_to_keys.as_ref().map_or(0, |s| s.bytes() as u64);
        let tables: u64 = self
            .dbs
            .iter()
            .map(|db| dict_overhead(db.len() as u64) + dict_overhead(db.expires.len() as u64) + slot_to_keys(db))
            .sum();
        self.used_memory_startup + clients + tables
    }

    fn info_memory(&self, o: &mut String) {
        let used = self.sys.used_memory();
        let rss = self.sys.rss_bytes();
        let peak = self.stats.peak_memory.max(used);
        let (alloc, active, resident) = self.sys.allocator_stats().unwrap_or((used, used, rss));
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let overhead = self.memory_overhead().min(used);
        let dataset = used - overhead;
        let net_usage = used.saturating_sub(self.used_memory_startup).max(1);
        let maxmemory = self.config.hot.maxmemory;
        let _ = write!(
            o,
            "used_memory:{used}\nused_memory_human:{}\nused_memory_rss:{rss}\nused_memory_rss_human:{}\n\
             used_memory_peak:{peak}\nused_memory_peak_human:{}\nused_memory_peak_perc:{:.2}%\n\
             used_memory_overhead:{overhead}\nused_memory_startup:{}\nused_memory_dataset:{dataset}\n\
             used_memory_dataset_perc:{:.2}%\nallocator_allocated:{alloc}\nallocator_active:{active}\n\
             allocator_resident:{resident}\ntotal_system_memory:0\ntotal_system_memory_human:0B\n{IDLE_SCRIPTING_MEMORY}\
             maxmemory:{maxmemory}\nmaxmemory_human:{}\nmaxmemory_policy:{}\n\
             allocator_frag_ratio:{:.2}\nallocator_frag_bytes:{}\nallocator_rss_ratio:{:.2}\nallocator_rss_bytes:{}\n\
             rss_overhead_ratio:{:.2}\nrss_overhead_bytes:{}\n\
             mem_fragmentation_ratio:{:.2}\nmem_fragmentation_bytes:{}\nmem_not_counted_for_evict:0\n\
             mem_replication_backlog:0\nmem_total_replication_buffers:0\nmem_clients_slaves:0\nmem_clients_normal:0\n\
             mem_cluster_links:0\nmem_aof_buffer:0\nmem_allocator:jemalloc-5.3.0\nactive_defrag_running:0\n\
             lazyfree_pending_objects:0\nlazyfreed_objects:0\n",
            bytes_to_human(used),
            bytes_to_human(rss),
            bytes_to_human(peak),
            ratio(used, peak) * 100.0,
            self.used_memory_startup,
            dataset as f64 * 100.0 / net_usage as f64,
            bytes_to_human(maxmemory),
            self.config.get("maxmemory-policy").unwrap_or("noeviction"),
            ratio(active, alloc),
            active as i64 - alloc as i64,
            ratio(resident, active),
            resident as i64 - active as i64,
            ratio(rss, resident),
            rss as i64 - resident as i64,
            ratio(rss, used),
            rss as i64 - used as i64,
        );
    }

    fn info_persistence(&self, o: &mut String) {
        let a = &self.aof;
        let _ = write!(
            o,
            "loading:0\nasync_loading:0\ncurrent_cow_peak:0\ncurrent_cow_size:0\ncurrent_cow_size_age:0\n\
             current_fork_perc:0.00\ncurrent_save_keys_processed:0\ncurrent_save_keys_total:0\n\
             rdb_changes_since_last_save:{}\nrdb_bgsave_in_progress:{}\nrdb_last_save_time:{}\n\
             rdb_last_bgsave_status:{}\nrdb_last_bgsave_time_sec:{}\nrdb_current_bgsave_time_sec:{}\nrdb_saves:{}\n\
             rdb_last_cow_size:0\nrdb_last_load_keys_expired:{}\nrdb_last_load_keys_loaded:{}\naof_enabled:{}\n\
             aof_rewrite_in_progress:{}\naof_rewrite_scheduled:{}\naof_last_rewrite_time_sec:{}\n\
             aof_current_rewrite_time_sec:-1\naof_last_bgrewrite_status:{}\naof_rewrites:{}\n\
             aof_rewrites_consecutive_failures:0\naof_last_write_status:{}\naof_last_cow_size:0\n\
             module_fork_in_progress:0\nmodule_fork_last_cow_size:0\n",
            self.dirty,
            u8::from(self.rdb.child_pid.is_some()),
            self.lastsave_unix_secs,
            if self.rdb.last_bgsave_ok { "ok" } else { "err" },
            self.rdb.last_bgsave_time_secs,
            match self.rdb.child_pid {
                Some(_) => (self.now.mono_ms.saturating_sub(self.rdb.save_start_mono_ms) / 1000) as i64,
                None => -1,
            },
            self.rdb.saves,
            self.rdb.last_load_keys_expired,
            self.rdb.last_load_keys_loaded,
            u8::from(a.on),
            u8::from(a.rewrite_in_progress),
            u8::from(a.rewrite_scheduled),
            a.last_rewrite_time_secs,
            if a.last_rewrite_ok { "ok" } else { "err" },
            a.rewrites,
            if a.last_write_ok && a.bio_fsync_ok { "ok" } else { "err" },
        );
        if a.on {
            let _ = write!(
                o,
                "aof_current_size:{}\naof_base_size:{}\naof_pending_rewrite:0\naof_buffer_length:{}\n\
                 aof_pending_bio_fsync:{}\naof_delayed_fsync:{}\n",
                a.current_size(),
                a.base_size,
                a.buf.len(),
                u8::from(a.fsync_in_progress),
                a.delayed_fsync,
            );
        }
    }

    fn info_stats(&self, o: &mut String) {
        let s = &self.stats;
        let _ = write!(
            o,
            "total_connections_received:{}\ntotal_commands_processed:{}\ninstantaneous_ops_per_sec:{}\n\
             total_net_input_bytes:{}\ntotal_net_output_bytes:{}\ntotal_net_repl_input_bytes:0\n\
             total_net_repl_output_bytes:0\ninstantaneous_input_kbps:{:.2}\ninstantaneous_output_kbps:{:.2}\n\
             instantaneous_input_repl_kbps:0.00\ninstantaneous_output_repl_kbps:0.00\nrejected_connections:{}\n\
             sync_full:{}\nsync_partial_ok:{}\nsync_partial_err:{}\nexpired_keys:{}\nexpired_stale_perc:{:.2}\n\
             expired_time_cap_reached_count:{}\nexpire_cycle_cpu_milliseconds:0\nevicted_keys:{}\n\
             evicted_clients:{}\ntotal_eviction_exceeded_time:0\ncurrent_eviction_exceeded_time:0\n\
             keyspace_hits:{}\nkeyspace_misses:{}\npubsub_channels:{}\npubsub_patterns:{}\npubsubshard_channels:{}\n\
             latest_fork_usec:{}\ntotal_forks:{}\nmigrate_cached_sockets:{}\nslave_expires_tracked_keys:0\n\
             active_defrag_hits:0\nactive_defrag_misses:0\nactive_defrag_key_hits:0\nactive_defrag_key_misses:0\n\
             total_active_defrag_time:0\ncurrent_active_defrag_time:0\ntracking_total_keys:0\n\
             tracking_total_items:0\ntracking_total_prefixes:0\nunexpected_error_replies:{}\n\
             total_error_replies:{}\ndump_payload_sanitizations:0\ntotal_reads_processed:{}\n\
             total_writes_processed:{}\nio_threaded_reads_processed:0\nio_threaded_writes_processed:0\n\
             reply_buffer_shrinks:0\nreply_buffer_expands:0\n",
            s.numconnections,
            s.numcommands,
            s.instantaneous.0 as u64,
            s.net_input_bytes,
            s.net_output_bytes,
            s.instantaneous.1,
            s.instantaneous.2,
            s.rejected_conn,
            self.repl.stats.sync_full,
            self.repl.stats.sync_partial_ok,
            self.repl.stats.sync_partial_err,
            s.expiredkeys,
            self.active_expire.stale_perc * 100.0,
            self.active_expire.time_cap_reached_count,
            s.evictedkeys,
            s.evicted_clients,
            s.keyspace_hits,
            s.keyspace_misses,
            self.pubsub.channels.len(),
            self.pubsub.patterns.len(),
            self.pubsub.shard_channels.len(),
            s.latest_fork_usec,
            s.total_forks,
            self.migrate_cached_sockets,
            s.unexpected_error_replies,
            s.total_error_replies,
            s.numcommands,
            s.numcommands,
        );
    }

    fn info_replication(&self, o: &mut String) {
        let (min_to_write, max_lag) = (self.config.hot.min_replicas_to_write, self.config.hot.min_replicas_max_lag);
        let view = crate::replication::info::InfoView {
            state: &self.repl.state,
            replicas: &self.repl.replicas,
            master: self.repl.master.as_ref(),
            backlog_size: self.config.hot.repl_backlog_size,
            replica_priority: self.config.get("replica-priority").and_then(|v| v.parse().ok()).unwrap_or(100),
            replica_read_only: self.config.get("replica-read-only") != Some("no"),
            replica_announced: self.config.get("replica-announced") != Some("no"),
            min_replicas_good: (min_to_write > 0 && max_lag > 0)
                .then(|| self.repl.replicas.good_count(self.now.mono_ms, max_lag)),
            now_mono_ms: self.now.mono_ms,
            now_unix_secs: self.now.unix_ms / 1000,
            failover_state: self.repl.failover.as_ref().map_or("no-failover", |f| f.state.name()),
        };
        o.push_str(&crate::replication::info::info_replication(&view));
    }

    fn info_cpu(&self, o: &mut String) {
        let (user, sys) = self.sys.cpu_usage();
        let _ = write!(
            o,
            "used_cpu_sys:{sys:.6}\nused_cpu_user:{user:.6}\nused_cpu_sys_children:0.000000\n\
             used_cpu_user_children:0.000000\nused_cpu_sys_main_thread:{sys:.6}\nused_cpu_user_main_thread:{user:.6}\n"
        );
    }

    fn info_commandstats(&self, o: &mut String) {
        for cmd in &self.table.cmds {
            let st = &self.cmd_stats[cmd.index];
            if st.calls == 0 && st.rejected_calls == 0 && st.failed_calls == 0 {
                continue;
            }
            let per = if st.calls > 0 { st.usec as f64 / st.calls as f64 } else { 0.0 };
            let _ = writeln!(
                o,
                "cmdstat_{}:calls={},usec={},usec_per_call={per:.2},rejected_calls={},failed_calls={}",
                cmd.meta.name, st.calls, st.usec, st.rejected_calls, st.failed_calls
            );
        }
    }

    /// Records a call's duration for INFO latencystats, when `latency-tracking` is on.
    pub fn record_latency(&mut self, cmd_index: usize, usec: u64) {
        if self.config.hot.latency_tracking {
            self.cmd_latency[cmd_index].record(usec);
        }
    }

    fn info_latencystats(&self, o: &mut String) {
        let words = self.config.get("latency-tracking-info-percentiles").unwrap_or("");
        let percentiles: Vec<(&str, f64)> = words.split(' ').filter_map(|w| w.parse().ok().map(|p| (w, p))).collect();
        for cmd in &self.table.cmds {
            let h = &self.cmd_latency[cmd.index];
            if h.is_empty() {
                continue;
            }
            let values: Vec<String> = percentiles
                .iter()
                .map(|(w, p)| format!("p{w}={:.3}", h.value_at_percentile(*p) as f64 / 1000.0))
                .collect();
            let _ = writeln!(o, "latency_percentiles_usec_{}:{}", cmd.meta.name, values.join(","));
        }
    }

    fn info_errorstats(&self, o: &mut String) {
        for (code, n) in &self.stats.errors {
            let _ = writeln!(o, "errorstat_{code}:count={n}");
        }
    }

    fn info_keyspace(&self, o: &mut String) {
        for db in &self.dbs {
            if !db.is_empty() {
                let _ =
                    writeln!(o, "db{}:keys={},expires={},avg_ttl={}", db.id, db.len(), db.expires.len(), db.avg_ttl_ms);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes() {
        assert_eq!(bytes_to_human(1000), "1000B");
        assert_eq!(bytes_to_human(1013416), "989.66K");
        assert_eq!(bytes_to_human(6893568), "6.57M");
    }

    #[test]
    fn latency_percentiles_are_hdr_bucket_bounds() {
        let mut h = LatencyHistogram::default();
        for us in [8, 8, 31] {
            h.record(us);
        }
        // Redis answers p50=8.031,p99=31.103 for such calls.
        assert_eq!(h.value_at_percentile(50.0), 8031);
        assert_eq!(h.value_at_percentile(99.0), 31103);
        assert_eq!(h.value_at_percentile(0.0), 8000);
        h.record(0);
        assert_eq!(h.value_at_percentile(0.0), 1);
    }

    #[test]
    fn section_selection() {
        assert_eq!(select_sections(&[]), DEFAULT_SECTIONS);
        assert_eq!(select_sections(&["memory", "SERVER"]), vec!["server", "memory"]);
        assert!(select_sections(&["all"]).contains(&"commandstats"));
    }
}

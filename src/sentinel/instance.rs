//! One instance a sentinel watches (Redis's `sentinelRedisInstance`): a master, a replica or
//! another sentinel, with its links' timing and what its last INFO said.

use super::{Addr, Kind};

/// The connections to an instance and their timing (Redis's `instanceLink`).
#[derive(Debug, Clone, Default)]
pub struct Link {
    pub cmd_connected: bool,
    pub cmd_connecting: bool,
    pub pc_connected: bool,
    pub pc_connecting: bool,
    /// Commands sent and not answered yet.
    pub pending: u32,
    pub cc_conn_time: u64,
    pub pc_conn_time: u64,
    pub pc_last_activity: u64,
    /// When the oldest unanswered PING went out (0: none outstanding).
    pub act_ping_time: u64,
    pub last_ping_time: u64,
    pub last_pong_time: u64,
    /// Last valid PING reply (PONG, LOADING or MASTERDOWN).
    pub last_avail_time: u64,
    /// When the last reconnect went out (None: never, so the first one is not rate-limited).
    pub last_reconn_time: Option<u64>,
    pub last_pub_time: u64,
}

impl Link {
    pub fn cmd_disconnected(&self) -> bool {
        !self.cmd_connected
    }
}

#[derive(Debug, Clone)]
pub struct Instance {
    pub kind: Kind,
    pub addr: Addr,
    pub runid: Option<String>,
    pub link: Link,
    pub s_down: bool,
    pub s_down_since: u64,
    pub info_refresh: u64,
    /// The last INFO reply (`SENTINEL INFO-CACHE`).
    pub info_text: Option<String>,
    pub role_reported: Kind,
    pub role_reported_time: u64,
    // Replicas: from their INFO, and their part in a failover.
    pub master_link_down_time: u64,
    pub master_host: Option<String>,
    pub master_port: u16,
    pub master_link_up: bool,
    pub slave_conf_change_time: u64,
    pub priority: u64,
    pub repl_offset: u64,
    pub replica_announced: bool,
    pub promoted: bool,
    pub reconf_sent: bool,
    pub reconf_inprog: bool,
    pub reconf_done: bool,
    pub slave_reconf_sent_time: u64,
    // Sentinels: their hellos, their opinion of the master and their vote.
    pub last_hello_time: u64,
    pub master_down: bool,
    pub last_master_down_reply_time: u64,
    pub leader: Option<String>,
    pub leader_epoch: u64,
}

impl Instance {
    /// A new instance, as Redis's `createSentinelRedisInstance`: counted as pinged and available
    /// now, so one that never answers is down after `down-after-milliseconds`.
    pub fn new(kind: Kind, addr: Addr, now: u64) -> Self {
        Instance {
            kind,
            addr,
            runid: None,
            link: Link { act_ping_time: now, last_avail_time: now, last_pong_time: now, ..Link::default() },
            s_down: false,
            s_down_since: 0,
            info_refresh: 0,
            info_text: None,
            role_reported: if kind == Kind::Replica { Kind::Replica } else { Kind::Master },
            role_reported_time: now,
            master_link_down_time: 0,
            master_host: None,
            master_port: 0,
            master_link_up: false,
            slave_conf_change_time: now,
            priority: 100,
            repl_offset: 0,
            replica_announced: true,
            promoted: false,
            reconf_sent: false,
            reconf_inprog: false,
            reconf_done: false,
            slave_reconf_sent_time: 0,
            last_hello_time: now,
            master_down: false,
            last_master_down_reply_time: now,
            leader: None,
            leader_epoch: 0,
        }
    }

    /// Redis's flags string for `SENTINEL REPLICAS` / `SENTINELS`.
    pub fn flags(&self) -> String {
        let mut f = vec![match self.kind {
            Kind::Master => "master",
            Kind::Replica => "slave",
            Kind::Sentinel => "sentinel",
        }];
        if self.s_down {
            f.push("s_down");
        }
        if self.link.cmd_disconnected() {
            f.push("disconnected");
        }
        if self.kind == Kind::Sentinel && self.master_down {
            f.push("master_down");
        }
        if self.promoted {
            f.push("promoted");
        }
        if self.reconf_sent {
            f.push("reconf_sent");
        }
        if self.reconf_inprog {
            f.push("reconf_inprog");
        }
        if self.reconf_done {
            f.push("reconf_done");
        }
        f.join(",")
    }

    /// Redis's `sentinelRedisInstanceNoDownFor`: not marked down in the last `ms`.
    pub fn no_down_for(&self, ms: u64, now: u64) -> bool {
        self.s_down_since == 0 || now.saturating_sub(self.s_down_since) > ms
    }
}

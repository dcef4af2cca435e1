//! Election and failover (Redis's `sentinelVoteLeader`, `sentinelGetLeader`,
//! `sentinelSelectSlave` and `sentinelFailoverStateMachine`).

use std::collections::BTreeMap;

use super::{
    args, desync, Addr, FailoverState, Instance, Kind, PlantedBug, Sentinel, Tag, ELECTION_TIMEOUT, INFO_PERIOD,
    PING_PERIOD, PUBLISH_PERIOD, SLAVE_RECONF_TIMEOUT,
};
use crate::server::log::Level;

impl Sentinel {
    /// Redis's `sentinelVoteLeader`: vote for `candidate` in `epoch` unless this sentinel already
    /// voted in that epoch (or a later one). Returns the leader voted for and its epoch.
    pub fn vote_leader(&mut self, master: &str, req_epoch: u64, candidate: &str, now: u64) -> (Option<String>, u64) {
        if req_epoch > self.current_epoch {
            self.current_epoch = req_epoch;
            self.config_dirty = true;
            let e = self.current_epoch.to_string();
            self.global_event(Level::Warning, "+new-epoch", &e);
        }
        let votes_twice = self.bug == Some(PlantedBug::VotesTwice);
        let Some(m) = self.masters.get_mut(master) else { return (None, 0) };
        if (m.leader_epoch < req_epoch || (votes_twice && m.leader_epoch == req_epoch))
            && self.current_epoch <= req_epoch
        {
            m.leader = Some(candidate.to_string());
            m.leader_epoch = self.current_epoch;
            self.config_dirty = true;
            let (leader, epoch) = (candidate.to_string(), self.current_epoch);
            self.votes.push((master.to_string(), epoch, leader.clone()));
            super::journal(&self.myid, super::Journal::Vote { epoch, candidate: leader.clone() });
            self.global_event(Level::Warning, "+vote-for-leader", &format!("{leader} {epoch}"));
            if !leader.eq_ignore_ascii_case(&self.myid) {
                let d = desync(&mut self.rng);
                if let Some(m) = self.masters.get_mut(master) {
                    m.failover_start_time = now + d;
                }
            }
        }
        let m = &self.masters[master];
        (m.leader.clone(), m.leader_epoch)
    }

    /// Redis's `sentinelGetLeader`: the candidate with a majority of the votes (and at least the
    /// quorum) for `epoch`, counting this sentinel's own vote.
    fn get_leader(&mut self, master: &str, epoch: u64, now: u64) -> Option<String> {
        let m = &self.masters[master];
        let voters = m.sentinels.len() as u64 + 1;
        let mut counters: BTreeMap<String, u64> = BTreeMap::new();
        for s in m.sentinels.values() {
            if let Some(l) = &s.leader {
                if s.leader_epoch == self.current_epoch {
                    *counters.entry(l.clone()).or_default() += 1;
                }
            }
        }
        let mut winner: Option<String> = None;
        let mut max_votes = 0;
        for (id, &v) in &counters {
            if v > max_votes {
                max_votes = v;
                winner = Some(id.clone());
            }
        }
        let candidate = winner.clone().unwrap_or_else(|| self.myid.clone());
        let (myvote, leader_epoch) = self.vote_leader(master, epoch, &candidate, now);
        if let Some(v) = myvote {
            if leader_epoch == epoch {
                let n = counters.entry(v.clone()).or_default();
                *n += 1;
                if *n > max_votes {
                    max_votes = *n;
                    winner = Some(v);
                }
            }
        }
        let quorum = self.masters[master].quorum as u64;
        if max_votes < voters / 2 + 1 || max_votes < quorum {
            return None;
        }
        winner
    }

    /// Redis's `sentinelStartFailoverIfNeeded`.
    pub(super) fn start_failover_if_needed(&mut self, master: &str, now: u64) -> bool {
        let Some(m) = self.masters.get_mut(master) else { return false };
        if !m.o_down || m.in_failover {
            return false;
        }
        if m.failover_start_time != 0 && now < m.failover_start_time + m.failover_timeout * 2 {
            if m.failover_delay_logged != m.failover_start_time {
                m.failover_delay_logged = m.failover_start_time;
                let at = m.failover_start_time + m.failover_timeout * 2;
                let msg = format!("Next failover delay: I will not start a failover before {at} (monotonic ms)");
                self.global_event(Level::Warning, "", &msg);
            }
            return false;
        }
        self.start_failover(master, now);
        true
    }

    /// Redis's `sentinelStartFailover`: a new epoch, and a request for votes.
    pub fn start_failover(&mut self, master: &str, now: u64) {
        self.current_epoch += 1;
        self.config_dirty = true;
        let epoch = self.current_epoch;
        let d = desync(&mut self.rng);
        let m = self.masters.get_mut(master).expect("present");
        m.failover_state = FailoverState::WaitStart;
        m.in_failover = true;
        m.failover_epoch = epoch;
        m.failover_start_time = now + d;
        m.failover_state_change_time = now;
        self.global_event(Level::Warning, "+new-epoch", &epoch.to_string());
        self.master_event(Level::Warning, "+try-failover", master, "");
    }

    pub(super) fn abort_failover(&mut self, master: &str, now: u64) {
        let Some(m) = self.masters.get_mut(master) else { return };
        m.in_failover = false;
        m.force_failover = false;
        m.failover_state = FailoverState::None;
        m.failover_state_change_time = now;
        if let Some(p) = m.promoted.take() {
            if let Some(r) = m.replicas.get_mut(&p) {
                r.promoted = false;
            }
        }
    }

    /// Redis's `sentinelSelectSlave`: the best replica to promote, or None.
    pub fn select_replica(&self, master: &str, now: u64) -> Option<Addr> {
        let m = self.masters.get(master)?;
        let mut max_master_down = 0;
        if m.inst.s_down {
            max_master_down += now.saturating_sub(m.inst.s_down_since);
        }
        max_master_down += m.down_after * 10;
        let info_validity = if m.inst.s_down { PING_PERIOD * 5 } else { INFO_PERIOD * 3 };
        let mut good: Vec<&Instance> = m
            .replicas
            .values()
            .filter(|r| {
                !r.s_down
                    && r.link.cmd_connected
                    && now.saturating_sub(r.link.last_avail_time) <= PING_PERIOD * 5
                    && r.priority != 0
                    && now.saturating_sub(r.info_refresh) <= info_validity
                    && r.master_link_down_time <= max_master_down
            })
            .collect();
        let lowest = self.bug == Some(PlantedBug::PicksLowestOffset);
        good.sort_by(|a, b| {
            a.priority
                .cmp(&b.priority)
                .then_with(
                    || if lowest { a.repl_offset.cmp(&b.repl_offset) } else { b.repl_offset.cmp(&a.repl_offset) },
                )
                .then_with(|| match (&a.runid, &b.runid) {
                    (Some(x), Some(y)) => x.to_ascii_lowercase().cmp(&y.to_ascii_lowercase()),
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (None, None) => std::cmp::Ordering::Equal,
                })
        });
        good.first().map(|r| r.addr.clone())
    }

    /// Redis's `sentinelSendSlaveOf`: a transaction that repoints the instance, rewrites its
    /// config and kills its normal and pub/sub clients so they reconnect to the right master.
    fn send_replicaof(&mut self, master: &str, replica: &Addr, to: Option<&Addr>) -> bool {
        let (host, port) = match to {
            Some(a) => (a.ip.clone(), a.port.to_string()),
            None => ("NO".to_string(), "ONE".to_string()),
        };
        let cmds = vec![
            (args(&["MULTI"]), Tag::ReplicaOf),
            (args(&["SLAVEOF", &host, &port]), Tag::ReplicaOf),
            (args(&["CONFIG", "REWRITE"]), Tag::ReplicaOf),
            (args(&["CLIENT", "KILL", "TYPE", "normal"]), Tag::ReplicaOf),
            (args(&["CLIENT", "KILL", "TYPE", "pubsub"]), Tag::ReplicaOf),
            (args(&["EXEC"]), Tag::ReplicaOf),
        ];
        let kind =
            if self.masters.get(master).is_some_and(|m| m.addr() == replica) { Kind::Master } else { Kind::Replica };
        self.send(master, kind, Some(replica), cmds)
    }

    /// Redis's `sentinelFailoverStateMachine`.
    pub(super) fn failover_state_machine(&mut self, master: &str, now: u64) {
        let Some(m) = self.masters.get(master) else { return };
        if !m.in_failover {
            return;
        }
        match m.failover_state {
            FailoverState::WaitStart => self.failover_wait_start(master, now),
            FailoverState::SelectSlave => self.failover_select_slave(master, now),
            FailoverState::SendSlaveofNoone => self.failover_send_slaveof_noone(master, now),
            FailoverState::WaitPromotion => {
                if now.saturating_sub(m.failover_state_change_time) > m.failover_timeout {
                    self.promoted_event(master, "-failover-abort-slave-timeout");
                    self.abort_failover(master, now);
                }
            }
            FailoverState::ReconfSlaves => self.reconf_next_slave(master, now),
            FailoverState::None | FailoverState::UpdateConfig => {}
        }
    }

    fn promoted_event(&mut self, master: &str, kind: &str) {
        let p = self.masters[master].promoted.clone();
        match p {
            Some(a) => {
                let runid = self.masters[master].replicas.get(&a).and_then(|r| r.runid.clone());
                self.event(Level::Warning, kind, master, Some((Kind::Replica, &a, runid.as_deref())), "");
            }
            None => self.master_event(Level::Warning, kind, master, ""),
        }
    }

    fn failover_wait_start(&mut self, master: &str, now: u64) {
        let epoch = self.masters[master].failover_epoch;
        let leader = self.get_leader(master, epoch, now);
        let is_leader = leader.as_deref().is_some_and(|l| l.eq_ignore_ascii_case(&self.myid));
        let m = &self.masters[master];
        if !is_leader && !m.force_failover {
            let election_timeout = ELECTION_TIMEOUT.min(m.failover_timeout);
            if now.saturating_sub(m.failover_start_time) > election_timeout {
                self.master_event(Level::Warning, "-failover-abort-not-elected", master, "");
                self.abort_failover(master, now);
            }
            return;
        }
        super::journal(&self.myid, super::Journal::Elected { epoch });
        self.master_event(Level::Warning, "+elected-leader", master, "");
        self.set_failover_state(master, FailoverState::SelectSlave, now);
        self.master_event(Level::Warning, "+failover-state-select-slave", master, "");
    }

    fn set_failover_state(&mut self, master: &str, state: FailoverState, now: u64) {
        let m = self.masters.get_mut(master).expect("present");
        m.failover_state = state;
        m.failover_state_change_time = now;
    }

    fn failover_select_slave(&mut self, master: &str, now: u64) {
        match self.select_replica(master, now) {
            None => {
                self.master_event(Level::Warning, "-failover-abort-no-good-slave", master, "");
                self.abort_failover(master, now);
            }
            Some(a) => {
                let m = self.masters.get_mut(master).expect("present");
                let r = m.replicas.get_mut(&a).expect("selected from the replicas");
                r.promoted = true;
                let runid = r.runid.clone();
                m.promoted = Some(a.clone());
                self.event(Level::Warning, "+selected-slave", master, Some((Kind::Replica, &a, runid.as_deref())), "");
                self.set_failover_state(master, FailoverState::SendSlaveofNoone, now);
                self.event(
                    Level::Notice,
                    "+failover-state-send-slaveof-noone",
                    master,
                    Some((Kind::Replica, &a, runid.as_deref())),
                    "",
                );
            }
        }
    }

    fn failover_send_slaveof_noone(&mut self, master: &str, now: u64) {
        let m = &self.masters[master];
        let Some(p) = m.promoted.clone() else { return };
        let connected = m.replicas.get(&p).is_some_and(|r| r.link.cmd_connected);
        if !connected {
            if now.saturating_sub(m.failover_state_change_time) > m.failover_timeout {
                self.promoted_event(master, "-failover-abort-slave-timeout");
                self.abort_failover(master, now);
            }
            return;
        }
        if !self.send_replicaof(master, &p, None) {
            return;
        }
        let epoch = self.masters[master].failover_epoch;
        super::journal(&self.myid, super::Journal::Promoting { epoch, replica: p.clone() });
        self.promoted_event(master, "+failover-state-wait-promotion");
        self.set_failover_state(master, FailoverState::WaitPromotion, now);
    }

    /// What a replica's INFO role means for the failover and the config (the acting half of
    /// Redis's `sentinelRefreshInstanceInfo`).
    pub(super) fn replica_acting_half(&mut self, master: &str, addr: &Addr, role: Kind, now: u64) {
        let m = &self.masters[master];
        let r = &m.replicas[addr];
        let runid = r.runid.clone();
        if role == Kind::Master {
            if r.promoted && m.in_failover && m.failover_state == FailoverState::WaitPromotion {
                let m = self.masters.get_mut(master).expect("present");
                m.config_epoch = m.failover_epoch;
                m.failover_state = FailoverState::ReconfSlaves;
                m.failover_state_change_time = now;
                self.config_dirty = true;
                self.event(
                    Level::Warning,
                    "+promoted-slave",
                    master,
                    Some((Kind::Replica, addr, runid.as_deref())),
                    "",
                );
                self.master_event(Level::Warning, "+failover-state-reconf-slaves", master, "");
                self.force_hello_update(master, now);
            } else {
                let wait = PUBLISH_PERIOD * 4;
                if !r.promoted
                    && m.looks_sane(now)
                    && r.no_down_for(wait, now)
                    && now.saturating_sub(r.role_reported_time) > wait
                {
                    let to = m.addr().clone();
                    if self.send_replicaof(master, addr, Some(&to)) {
                        self.event(
                            Level::Notice,
                            "+convert-to-slave",
                            master,
                            Some((Kind::Replica, addr, runid.as_deref())),
                            "",
                        );
                    }
                }
            }
            return;
        }
        let m = &self.masters[master];
        let r = &m.replicas[addr];
        if r.master_port != m.addr().port || r.master_host.as_deref() != Some(m.addr().ip.as_str()) {
            let wait = m.failover_timeout;
            if m.looks_sane(now) && r.no_down_for(wait, now) && now.saturating_sub(r.slave_conf_change_time) > wait {
                let to = m.addr().clone();
                if self.send_replicaof(master, addr, Some(&to)) {
                    self.event(
                        Level::Notice,
                        "+fix-slave-config",
                        master,
                        Some((Kind::Replica, addr, runid.as_deref())),
                        "",
                    );
                }
            }
        }
        let m = &self.masters[master];
        let promoted = m.promoted.clone();
        let r = &m.replicas[addr];
        if !(r.reconf_sent || r.reconf_inprog) {
            return;
        }
        let points_at_promoted = promoted
            .as_ref()
            .is_some_and(|p| r.master_host.as_deref() == Some(p.ip.as_str()) && r.master_port == p.port);
        let link_up = r.master_link_up;
        let m = self.masters.get_mut(master).expect("present");
        let r = m.replicas.get_mut(addr).expect("present");
        if r.reconf_sent && points_at_promoted {
            r.reconf_sent = false;
            r.reconf_inprog = true;
            self.event(
                Level::Notice,
                "+slave-reconf-inprog",
                master,
                Some((Kind::Replica, addr, runid.as_deref())),
                "",
            );
        }
        let m = self.masters.get_mut(master).expect("present");
        let r = m.replicas.get_mut(addr).expect("present");
        if r.reconf_inprog && link_up {
            r.reconf_inprog = false;
            r.reconf_done = true;
            self.event(Level::Notice, "+slave-reconf-done", master, Some((Kind::Replica, addr, runid.as_deref())), "");
        }
    }

    /// Redis's `sentinelFailoverReconfNextSlave`: repoint up to `parallel-syncs` replicas at a
    /// time at the promoted one, then see whether the failover is over.
    fn reconf_next_slave(&mut self, master: &str, now: u64) {
        let m = &self.masters[master];
        let mut in_progress = m.replicas.values().filter(|r| r.reconf_sent || r.reconf_inprog).count() as u32;
        let parallel = m.parallel_syncs;
        let Some(promoted) = m.promoted.clone() else { return };
        let addrs: Vec<Addr> = m.replicas.keys().cloned().collect();
        for a in addrs {
            if in_progress >= parallel {
                break;
            }
            let m = self.masters.get_mut(master).expect("present");
            let r = m.replicas.get_mut(&a).expect("listed");
            if r.promoted || r.reconf_done {
                continue;
            }
            let runid = r.runid.clone();
            if r.reconf_sent && now.saturating_sub(r.slave_reconf_sent_time) > SLAVE_RECONF_TIMEOUT {
                r.reconf_sent = false;
                r.reconf_done = true;
                self.event(
                    Level::Notice,
                    "-slave-reconf-sent-timeout",
                    master,
                    Some((Kind::Replica, &a, runid.as_deref())),
                    "",
                );
            }
            let r = &self.masters[master].replicas[&a];
            if r.reconf_sent || r.reconf_inprog || r.reconf_done || !r.link.cmd_connected {
                continue;
            }
            if self.send_replicaof(master, &a, Some(&promoted)) {
                let r = self.masters.get_mut(master).expect("present").replicas.get_mut(&a).expect("listed");
                r.reconf_sent = true;
                r.slave_reconf_sent_time = now;
                self.event(
                    Level::Notice,
                    "+slave-reconf-sent",
                    master,
                    Some((Kind::Replica, &a, runid.as_deref())),
                    "",
                );
                in_progress += 1;
            }
        }
        self.detect_failover_end(master, now);
    }

    /// Redis's `sentinelFailoverDetectEnd`.
    fn detect_failover_end(&mut self, master: &str, now: u64) {
        let m = &self.masters[master];
        let Some(promoted) = m.promoted.clone() else { return };
        if m.replicas.get(&promoted).is_none_or(|p| p.s_down) {
            return;
        }
        let mut not_reconfigured = m.replicas.values().filter(|r| !(r.promoted || r.reconf_done || r.s_down)).count();
        let mut timeout = false;
        if now.saturating_sub(m.failover_state_change_time) > m.failover_timeout {
            not_reconfigured = 0;
            timeout = true;
            self.master_event(Level::Warning, "-failover-end-for-timeout", master, "");
        }
        if not_reconfigured != 0 {
            return;
        }
        self.master_event(Level::Warning, "+failover-end", master, "");
        self.set_failover_state(master, FailoverState::UpdateConfig, now);
        if timeout {
            let pending: Vec<Addr> = self.masters[master]
                .replicas
                .values()
                .filter(|r| !(r.promoted || r.reconf_done || r.reconf_sent) && r.link.cmd_connected)
                .map(|r| r.addr.clone())
                .collect();
            for a in pending {
                if self.send_replicaof(master, &a, Some(&promoted)) {
                    let runid = self.masters[master].replicas[&a].runid.clone();
                    self.event(
                        Level::Notice,
                        "+slave-reconf-sent-be",
                        master,
                        Some((Kind::Replica, &a, runid.as_deref())),
                        "",
                    );
                    let r = self.masters.get_mut(master).expect("present").replicas.get_mut(&a).expect("listed");
                    r.reconf_sent = true;
                }
            }
        }
    }

    /// Redis's `sentinelFailoverSwitchToPromotedSlave`.
    pub(super) fn switch_to_promoted(&mut self, master: &str, now: u64) {
        let m = &self.masters[master];
        let to = m.promoted.clone().unwrap_or_else(|| m.addr().clone());
        let old = m.addr().clone();
        let msg = format!("{master} {} {} {} {}", old.ip, old.port, to.ip, to.port);
        self.global_event(Level::Warning, "+switch-master", &msg);
        self.reset_and_change_address(master, to, now);
    }

    /// Redis's `sentinelResetMasterAndChangeAddress`: the master moves to `to`; the old
    /// replicas (but `to`) and the old master become its replicas; the sentinels stay.
    pub fn reset_and_change_address(&mut self, master: &str, to: Addr, now: u64) {
        let m = self.masters.get_mut(master).expect("present");
        let mut replicas: Vec<Addr> = m.replicas.keys().filter(|a| **a != to).cloned().collect();
        if *m.addr() != to {
            replicas.push(m.addr().clone());
        }
        let mut closes = vec![Self::key(master, &m.inst, false), Self::key(master, &m.inst, true)];
        for r in m.replicas.values() {
            closes.push(Self::key(master, r, false));
            closes.push(Self::key(master, r, true));
        }
        m.replicas.clear();
        m.inst = Instance::new(Kind::Master, to, now);
        m.leader = None;
        m.in_failover = false;
        m.force_failover = false;
        m.o_down = false;
        m.o_down_since = 0;
        m.failover_state = FailoverState::None;
        m.failover_state_change_time = 0;
        m.failover_start_time = 0;
        m.promoted = None;
        for a in &replicas {
            m.replicas.insert(a.clone(), Instance::new(Kind::Replica, a.clone(), now));
        }
        self.out.extend(closes.into_iter().map(super::Action::Close));
        for a in &replicas {
            self.event(Level::Notice, "+slave", master, Some((Kind::Replica, a, None)), "");
        }
        self.config_dirty = true;
    }

    /// `SENTINEL RESET`'s work on one master (Redis's `sentinelResetMaster` with the event).
    pub fn reset_master(&mut self, master: &str, now: u64) {
        let m = self.masters.get_mut(master).expect("present");
        let mut closes = vec![Self::key(master, &m.inst, false), Self::key(master, &m.inst, true)];
        for i in m.replicas.values().chain(m.sentinels.values()) {
            closes.push(Self::key(master, i, false));
            closes.push(Self::key(master, i, true));
        }
        let addr = m.addr().clone();
        m.replicas.clear();
        m.sentinels.clear();
        m.inst = Instance::new(Kind::Master, addr, now);
        m.leader = None;
        m.in_failover = false;
        m.force_failover = false;
        m.o_down = false;
        m.failover_state = FailoverState::None;
        m.failover_state_change_time = 0;
        m.failover_start_time = 0;
        m.promoted = None;
        self.out.extend(closes.into_iter().map(super::Action::Close));
        self.master_event(Level::Warning, "+reset-master", master, "");
        self.config_dirty = true;
    }
}

//! Replica failover (Redis's `clusterHandleSlaveFailover` and `clusterSendFailoverAuthIfNeeded`):
//! when its master is FAIL, a replica waits 500–1000 ms plus a second per replica with a
//! better offset, then asks every master for a vote in a new epoch. A master votes once per
//! epoch (the vote is on disk before the ACK leaves) and not twice for one master within two
//! node timeouts; with a majority of the masters' votes the replica takes its master's slots
//! under the election's epoch, which wins over the old claim everywhere. A manual failover
//! (CLUSTER FAILOVER) first has the master pause writes until the replica has caught up.

use super::bus::{self, Body, Header};
use super::gossip::{NOTICE, WARNING};
use super::{flag, CantFailover, Cluster, Effect, State, CLUSTER_SLOTS};
use crate::env::Rng;

/// (epoch, node name) entries: the votes granted, or the promotions made.
pub type Journal = Vec<(u64, String)>;

/// How often "can't failover" reasons are logged again (Redis's CLUSTER_CANT_FAILOVER_RELOG_PERIOD).
const CANT_FAILOVER_RELOG_PERIOD_MS: u64 = 10_000;

impl Cluster {
    /// Redis's `clusterGetSlaveRank`: replicas of our master with a better offset.
    fn replica_rank(&self) -> usize {
        let me = self.me();
        let Some(master) = me.slaveof.as_deref().and_then(|m| self.nodes.get(m)) else { return 0 };
        let mine = self.facts.repl_offset;
        master
            .replicas
            .iter()
            .filter_map(|r| self.nodes.get(r))
            .filter(|r| r.name != self.myself && !r.has(flag::NOFAILOVER) && r.repl_offset > mine)
            .count()
    }

    fn log_cant_failover(&mut self, reason: CantFailover, now_ms: u64) {
        let nolog_fail_time = self.conf.node_timeout_ms + 5000;
        if reason == self.cant_failover_reason
            && now_ms.saturating_sub(self.last_cant_failover_log_ms) < CANT_FAILOVER_RELOG_PERIOD_MS
        {
            return;
        }
        self.cant_failover_reason = reason;
        let failed_recently = self
            .me()
            .slaveof
            .as_deref()
            .and_then(|m| self.nodes.get(m))
            .is_some_and(|m| m.failed() && now_ms.saturating_sub(m.fail_time_ms) < nolog_fail_time);
        if failed_recently {
            return;
        }
        let text = match reason {
            CantFailover::DataAge => "Disconnected from master for longer than allowed. Please check the 'cluster-replica-validity-factor' configuration option.",
            CantFailover::WaitingDelay => "Waiting the delay before I can start a new failover.",
            CantFailover::Expired => "Failover attempt expired.",
            CantFailover::WaitingVotes => "Waiting for votes, but majority still not reached.",
            CantFailover::None => return,
        };
        self.last_cant_failover_log_ms = now_ms;
        self.logln(NOTICE, format!("Currently unable to failover: {text}"));
    }

    /// Redis's `clusterHandleSlaveFailover`.
    pub fn handle_replica_failover(&mut self, now_ms: u64, rng: &mut impl Rng) {
        let auth_age = now_ms.saturating_sub(self.failover_auth_time_ms);
        let needed = self.size / 2 + 1;
        let manual = self.mf_end_ms != 0 && self.mf_can_start;
        self.todo_handle_failover = false;
        let auth_timeout = (self.conf.node_timeout_ms * 2).max(2000);
        let auth_retry = auth_timeout * 2;
        let me = self.me();
        let master = me.slaveof.as_deref().and_then(|m| self.nodes.get(m));
        let no_reason = match master {
            None => true,
            Some(m) => {
                me.is_master()
                    || (!m.failed() && !manual)
                    || (self.conf.replica_no_failover && !manual)
                    || m.numslots == 0
            }
        };
        if no_reason {
            self.cant_failover_reason = CantFailover::None;
            return;
        }
        let mut data_age = self.facts.master_data_age_ms;
        if data_age > self.conf.node_timeout_ms {
            data_age -= self.conf.node_timeout_ms;
        }
        let max_age = self.conf.repl_ping_replica_period_secs * 1000
            + self.conf.node_timeout_ms * self.conf.replica_validity_factor;
        if self.conf.replica_validity_factor != 0 && data_age > max_age && !manual {
            self.log_cant_failover(CantFailover::DataAge, now_ms);
            return;
        }
        if self.failover_auth_time_ms == 0 || auth_age > auth_retry {
            self.failover_auth_time_ms = now_ms + 500 + rng.below(500);
            self.failover_auth_count = 0;
            self.failover_auth_sent = false;
            self.failover_auth_rank = self.replica_rank();
            self.failover_auth_time_ms += self.failover_auth_rank as u64 * 1000;
            if self.mf_end_ms != 0 {
                self.failover_auth_time_ms = now_ms;
                self.failover_auth_rank = 0;
                self.todo_handle_failover = true;
            }
            let delay = self.failover_auth_time_ms.saturating_sub(now_ms);
            let (rank, offset) = (self.failover_auth_rank, self.facts.repl_offset);
            self.logln(
                NOTICE,
                format!("Start of election delayed for {delay} milliseconds (rank #{rank}, offset {offset})."),
            );
            self.broadcast_pong(true, now_ms, rng);
            return;
        }
        if !self.failover_auth_sent && self.mf_end_ms == 0 {
            let rank = self.replica_rank();
            if rank > self.failover_auth_rank {
                let added = (rank - self.failover_auth_rank) as u64 * 1000;
                self.failover_auth_time_ms += added;
                self.failover_auth_rank = rank;
                self.logln(NOTICE, format!("Replica rank updated to #{rank}, added {added} milliseconds of delay."));
            }
        }
        if now_ms < self.failover_auth_time_ms {
            self.log_cant_failover(CantFailover::WaitingDelay, now_ms);
            return;
        }
        if auth_age > auth_timeout {
            self.log_cant_failover(CantFailover::Expired, now_ms);
            return;
        }
        if !self.failover_auth_sent {
            self.current_epoch += 1;
            self.failover_auth_epoch = self.current_epoch;
            self.logln(NOTICE, format!("Starting a failover election for epoch {}.", self.current_epoch));
            self.request_failover_auth();
            self.failover_auth_sent = true;
            self.save_config_soon(true);
            self.todo_update_state = true;
            return;
        }
        if self.failover_auth_count >= needed {
            self.logln(NOTICE, "Failover election won: I'm the new master.");
            if self.me().config_epoch < self.failover_auth_epoch {
                let e = self.failover_auth_epoch;
                self.me_mut().config_epoch = e;
                self.logln(NOTICE, format!("configEpoch set to {e} after successful failover"));
            }
            self.failover_replace_master(now_ms, rng);
        } else {
            self.log_cant_failover(CantFailover::WaitingVotes, now_ms);
        }
    }

    /// Redis's `clusterRequestFailoverAuth`: a manual failover asks masters to vote even
    /// though ours is up.
    fn request_failover_auth(&mut self) {
        let force = self.mf_end_ms != 0;
        let links: Vec<u64> =
            self.nodes.values().filter(|n| !n.has(flag::MYSELF | flag::HANDSHAKE)).filter_map(|n| n.link).collect();
        for link in links {
            let mut header = self.build_header();
            if force {
                header.mflags[0] |= bus::mflags0::FORCEACK;
            }
            self.stats_sent[bus::MsgType::FailoverAuthRequest as usize] += 1;
            let bytes = bus::encode(&bus::Message { header, body: Body::FailoverAuthRequest });
            self.out.push(super::BusAction::Send { link, bytes });
        }
    }

    /// Redis's `clusterSendFailoverAuthIfNeeded`: a master's vote.
    pub fn send_failover_auth_if_needed(&mut self, node: &str, request: &Header, now_ms: u64) {
        let me = self.me();
        if me.is_replica() || me.numslots == 0 {
            return;
        }
        let req_epoch = request.current_epoch;
        if req_epoch < self.current_epoch {
            let cur = self.current_epoch;
            self.logln(WARNING, format!("Failover auth denied to {node}: reqEpoch ({req_epoch}) < curEpoch({cur})"));
            return;
        }
        if self.last_vote_epoch == self.current_epoch {
            let cur = self.current_epoch;
            self.logln(WARNING, format!("Failover auth denied to {node}: already voted for epoch {cur}"));
            return;
        }
        let n = &self.nodes[node];
        let force_ack = request.mflags[0] & bus::mflags0::FORCEACK != 0;
        let master = n.slaveof.as_deref().and_then(|m| self.nodes.get(m));
        if n.is_master() || master.is_none() || (!master.is_some_and(|m| m.failed()) && !force_ack) {
            let why = if n.is_master() {
                "it is a master node"
            } else if master.is_none() {
                "I don't know its master"
            } else {
                "its master is up"
            };
            self.logln(WARNING, format!("Failover auth denied to {node}: {why}"));
            return;
        }
        let master = master.expect("checked").name.clone();
        let since_vote = now_ms.saturating_sub(self.nodes[&master].voted_time_ms);
        let wait = self.conf.node_timeout_ms * 2;
        if self.nodes[&master].voted_time_ms != 0 && since_vote < wait {
            self.logln(
                WARNING,
                format!(
                    "Failover auth denied to {node}: can't vote about this master before {} milliseconds",
                    wait - since_vote
                ),
            );
            return;
        }
        let claimed = super::SlotBitmap(request.myslots.0.clone());
        for slot in 0..CLUSTER_SLOTS as u16 {
            if !claimed.get(slot) || self.slot_unclaimed(slot) {
                continue;
            }
            let owner_epoch = self.slot_owner(slot).map(|o| o.config_epoch).unwrap_or(0);
            if owner_epoch <= request.config_epoch {
                continue;
            }
            self.logln(
                WARNING,
                format!(
                    "Failover auth denied to {node}: slot {slot} epoch ({owner_epoch}) > reqEpoch ({})",
                    request.config_epoch
                ),
            );
            return;
        }
        self.last_vote_epoch = self.current_epoch;
        self.nodes.get_mut(&master).expect("known").voted_time_ms = now_ms;
        self.save_config_soon(true);
        if let Some(link) = self.nodes[node].link {
            self.send(link, Body::FailoverAuthAck);
        }
        let cur = self.current_epoch;
        self.logln(WARNING, format!("Failover auth granted to {node} for epoch {cur}"));
        self.votes.push((cur, node.to_string()));
    }

    /// Redis's `clusterFailoverReplaceYourMaster`: take the old master's slots and tell
    /// everyone at once.
    pub fn failover_replace_master(&mut self, now_ms: u64, rng: &mut impl Rng) {
        let me = self.myself.clone();
        let Some(old) = self.me().slaveof.clone().filter(|_| self.me().is_replica()) else { return };
        self.set_node_as_master(&me);
        self.effects.push(Effect::BecomeMaster);
        self.facts.has_master = false;
        let slots: Vec<u16> = self.nodes.get(&old).map(|n| n.slots.iter().collect()).unwrap_or_default();
        for s in slots {
            self.del_slot(s);
            self.add_slot(&me, s);
        }
        self.update_state(now_ms);
        self.save_config_soon(true);
        self.broadcast_pong(false, now_ms, rng);
        self.reset_manual_failover();
        self.promotions.push((self.me().config_epoch, me));
    }

    /// Redis's `resetManualFailover`.
    pub fn reset_manual_failover(&mut self) {
        if self.mf_replica.is_some() {
            self.effects.push(Effect::Unpause);
        }
        self.mf_end_ms = 0;
        self.mf_can_start = false;
        self.mf_replica = None;
        self.mf_master_offset = None;
    }

    pub fn manual_failover_check_timeout(&mut self, now_ms: u64) {
        if self.mf_end_ms != 0 && self.mf_end_ms < now_ms {
            self.logln(WARNING, "Manual failover timed out.");
            self.reset_manual_failover();
        }
    }

    /// Redis's `clusterHandleManualFailover`: start once the paused master's offset is reached.
    pub fn handle_manual_failover(&mut self) {
        if self.mf_end_ms == 0 || self.mf_can_start {
            return;
        }
        if self.mf_master_offset == Some(self.facts.repl_offset) {
            self.mf_can_start = true;
            self.logln(WARNING, "All master replication stream processed, manual failover can start.");
            self.todo_handle_failover = true;
        }
    }

    /// Asks our master to pause for a manual failover (Redis's `clusterSendMFStart`).
    pub fn send_mfstart(&mut self, master: &str, _now_ms: u64) {
        if let Some(link) = self.nodes.get(master).and_then(|m| m.link) {
            self.send(link, Body::MfStart);
        }
    }

    /// Redis's `clusterHandleSlaveMigration`: the replica with the smallest name among those of
    /// the best-served master moves to a master left without working replicas.
    pub fn handle_replica_migration(&mut self, max_replicas: usize, now_ms: u64) {
        if self.state != State::Ok {
            return;
        }
        let me = self.me();
        let Some(my_master) = me.slaveof.as_deref().and_then(|m| self.nodes.get(m)) else { return };
        let ok_replicas = self.non_failing_replicas(my_master);
        if ok_replicas <= self.conf.migration_barrier as usize {
            return;
        }
        let mut candidate = self.myself.clone();
        let mut target: Option<String> = None;
        for n in self.nodes.values() {
            let ok = if n.is_replica() || n.failed() { 0 } else { self.non_failing_replicas(n) };
            if n.is_master() && ok == 0 && n.numslots > 0 && n.has(flag::MIGRATE_TO) {
                if n.orphaned_time_ms == 0 {
                    // Marked below, outside the borrow.
                } else if target.is_none() && n.numslots > 0 {
                    target = Some(n.name.clone());
                }
            }
            if ok == max_replicas {
                for r in &n.replicas {
                    if *r < candidate {
                        candidate = r.clone();
                    }
                }
            }
        }
        let orphans: Vec<String> = self
            .nodes
            .values()
            .filter(|n| n.is_master() && n.numslots > 0 && !n.failed() && self.non_failing_replicas(n) == 0)
            .map(|n| n.name.clone())
            .collect();
        for name in self.nodes.keys().cloned().collect::<Vec<_>>() {
            let n = self.nodes.get_mut(&name).expect("known");
            if orphans.contains(&name) {
                if n.orphaned_time_ms == 0 {
                    n.orphaned_time_ms = now_ms;
                }
            } else {
                n.orphaned_time_ms = 0;
            }
        }
        let Some(target) = target else { return };
        let waited = now_ms.saturating_sub(self.nodes[&target].orphaned_time_ms) > super::SLAVE_MIGRATION_DELAY_MS;
        if candidate == self.myself && waited {
            self.logln(NOTICE, format!("Migrating to orphaned master {target}"));
            self.set_master(&target);
        }
    }

    /// The election journal (votes granted, promotions) for the simulator's checker.
    pub fn take_journal(&mut self) -> (Journal, Journal) {
        (std::mem::take(&mut self.votes), std::mem::take(&mut self.promotions))
    }
}

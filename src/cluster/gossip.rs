//! The bus's heartbeat (Redis's `clusterCron`, `clusterSendPing`, `clusterProcessPacket`,
//! `clusterProcessGossipSection`, `clusterUpdateSlotsConfigWith`). Every PING and PONG carries
//! the sender's view of itself (role, slots, epochs, offset) and a few random other nodes:
//! that is how nodes meet each other, learn the slot map, and gather the failure reports that
//! turn a PFAIL into a FAIL. Times are wall-clock ms, as in Redis (gossip carries seconds).

use super::bus::{self, Body, Gossip, Header, Message, PingKind};
use super::{flag, BusAction, Cluster, ClusterNode, Effect, LinkId, NodeName, SlotBitmap, State, CLUSTER_SLOTS};
use crate::env::Rng;

/// Redis log levels as the cluster reports them.
pub const DEBUG: u8 = 0;
pub const VERBOSE: u8 = 1;
pub const NOTICE: u8 = 2;
pub const WARNING: u8 = 3;

pub fn wire_name(s: &str) -> bus::NodeName {
    bus::NodeName::new(s).unwrap_or(bus::NodeName::NULL)
}

pub fn text_name(n: &bus::NodeName) -> NodeName {
    n.as_str().unwrap_or("").to_string()
}

fn wire_slots(s: &SlotBitmap) -> bus::SlotBitmap {
    bus::SlotBitmap(s.0.clone())
}

fn our_slots(s: &bus::SlotBitmap) -> SlotBitmap {
    SlotBitmap(s.0.clone())
}

impl Cluster {
    /// Redis's `clusterBuildMessageHdr`: a replica speaks for its master's slots and epoch.
    pub fn build_header(&self) -> Header {
        let me = self.me();
        let master = match me.slaveof.as_deref().and_then(|m| self.nodes.get(m)) {
            Some(m) if me.is_replica() => m,
            _ => me,
        };
        let mut h = Header::new(wire_name(&self.myself));
        h.port = self.facts.port;
        h.cport = self.facts.cport;
        h.myslots = wire_slots(&master.slots);
        h.slaveof = me.slaveof.as_deref().map(wire_name);
        h.myip = self.conf.announce_ip.clone();
        h.flags = me.flags;
        h.state = if self.state == State::Ok { bus::cluster_state::OK } else { bus::cluster_state::FAIL };
        h.current_epoch = self.current_epoch;
        h.config_epoch = master.config_epoch;
        h.offset = self.facts.repl_offset;
        if me.is_master() && self.mf_end_ms != 0 {
            h.mflags[0] |= bus::mflags0::PAUSED;
        }
        h
    }

    /// Encodes and queues a message on a link, counting it by type.
    pub fn send(&mut self, link: LinkId, body: Body) {
        if !self.links.contains_key(&link) {
            return;
        }
        let t = body.msg_type() as usize;
        self.stats_sent[t] += 1;
        let bytes = bus::encode(&Message { header: self.build_header(), body });
        self.out.push(BusAction::Send { link, bytes });
    }

    /// Sends `body` to every node we have a link to (Redis's `clusterBroadcastMessage`).
    pub fn broadcast(&mut self, body: Body) {
        let links: Vec<LinkId> =
            self.nodes.values().filter(|n| !n.has(flag::MYSELF | flag::HANDSHAKE)).filter_map(|n| n.link).collect();
        for l in links {
            self.send(l, body.clone());
        }
    }

    fn gossip_entry(n: &ClusterNode) -> Gossip {
        Gossip {
            nodename: wire_name(&n.name),
            ping_sent_secs: (n.ping_sent_ms / 1000) as u32,
            pong_received_secs: (n.pong_received_ms / 1000) as u32,
            ip: n.ip.clone(),
            port: n.port,
            cport: n.cport,
            flags: n.flags,
            pport: n.pport,
        }
    }

    /// Redis's `clusterSendPing`: about a tenth of the nodes (at least 3) picked at random,
    /// plus every node in PFAIL so that failure reports travel fast.
    pub fn send_ping(&mut self, link: LinkId, kind: PingKind, now_ms: u64, rng: &mut impl Rng) {
        let Some(target) = self.links.get(&link).map(|l| l.node.clone()) else { return };
        let total = self.nodes.len();
        let mut freshnodes = total.saturating_sub(2);
        let wanted = (total / 10).max(3).min(freshnodes);
        if kind == PingKind::Ping {
            if let Some(n) = target.as_deref().and_then(|t| self.nodes.get_mut(t)) {
                n.ping_sent_ms = now_ms;
            }
        }
        self.pings_sent += 1;
        let round = self.pings_sent;
        let names: Vec<NodeName> = self.nodes.keys().cloned().collect();
        let mut gossip = Vec::new();
        let mut iterations = wanted * 3;
        while freshnodes > 0 && gossip.len() < wanted && iterations > 0 {
            iterations -= 1;
            let pick = &names[rng.below(names.len() as u64) as usize];
            let n = &self.nodes[pick];
            if n.name == self.myself || n.has(flag::PFAIL) {
                continue;
            }
            if n.has(flag::HANDSHAKE | flag::NOADDR) || (n.link.is_none() && n.numslots == 0) {
                freshnodes -= 1;
                continue;
            }
            if n.last_in_ping_gossip == round {
                continue;
            }
            gossip.push(Self::gossip_entry(n));
            self.nodes.get_mut(pick).expect("picked").last_in_ping_gossip = round;
            freshnodes -= 1;
        }
        let mut pfail_wanted = self.stats_pfail_nodes;
        for n in self.nodes.values() {
            if pfail_wanted == 0 {
                break;
            }
            if n.has(flag::PFAIL) && !n.has(flag::HANDSHAKE | flag::NOADDR) {
                gossip.push(Self::gossip_entry(n));
                pfail_wanted -= 1;
            }
        }
        let hostname = (!self.conf.announce_hostname.is_empty()).then(|| self.conf.announce_hostname.clone());
        self.send(link, Body::Ping { kind, gossip, hostname });
    }

    /// Redis's `clusterBroadcastPong`: to everyone, or only to the replicas of our master.
    pub fn broadcast_pong(&mut self, local_replicas_only: bool, now_ms: u64, rng: &mut impl Rng) {
        let my_master = self.master_of(self.me()).map(|m| m.name.clone());
        let links: Vec<LinkId> = self
            .nodes
            .values()
            .filter(|n| !n.has(flag::MYSELF | flag::HANDSHAKE))
            .filter(|n| !local_replicas_only || (n.is_replica() && n.slaveof == my_master))
            .filter_map(|n| n.link)
            .collect();
        for l in links {
            self.send_ping(l, PingKind::Pong, now_ms, rng);
        }
    }

    /// A PUBLISH reaches every node's subscribers over the bus (Redis's
    /// `clusterPropagatePublish`); an SPUBLISH only the nodes of this node's shard.
    pub fn propagate_publish(&mut self, shard: bool, channel: &[u8], message: &[u8]) {
        let body = Body::Publish { shard, channel: channel.to_vec(), message: message.to_vec() };
        if !shard {
            self.broadcast(body);
            return;
        }
        let Some(master) = self.master_of(self.me()).map(|m| m.name.clone()) else { return };
        let links: Vec<LinkId> = self
            .nodes
            .values()
            .filter(|n| !n.has(flag::MYSELF | flag::HANDSHAKE))
            .filter(|n| n.name == master || n.slaveof.as_deref() == Some(master.as_str()))
            .filter_map(|n| n.link)
            .collect();
        for l in links {
            self.send(l, body.clone());
        }
    }

    pub fn send_fail(&mut self, name: &str) {
        self.broadcast(Body::Fail { nodename: wire_name(name) });
    }

    /// Tells `to` the newer configuration of `about` (Redis's `clusterSendUpdate`).
    pub fn send_update(&mut self, to: Option<LinkId>, about: &str) {
        let (Some(link), Some(n)) = (to, self.nodes.get(about)) else { return };
        let body =
            Body::Update { config_epoch: n.config_epoch, nodename: wire_name(about), slots: wire_slots(&n.slots) };
        self.send(link, body);
    }

    /// The driver connected an outbound link (Redis's `clusterLinkConnectHandler`).
    pub fn link_connected(&mut self, link: LinkId, now_ms: u64, rng: &mut impl Rng) {
        let Some(l) = self.links.get_mut(&link) else { return };
        l.connected = true;
        let Some(name) = l.node.clone() else { return };
        let Some(n) = self.nodes.get(&name) else { return };
        let old_ping_sent = n.ping_sent_ms;
        let kind = if n.has(flag::MEET) { PingKind::Meet } else { PingKind::Ping };
        self.send_ping(link, kind, now_ms, rng);
        if let Some(n) = self.nodes.get_mut(&name) {
            if old_ping_sent != 0 {
                n.ping_sent_ms = old_ping_sent;
            }
            n.flags &= !flag::MEET;
        }
    }

    /// A connection failed or closed (Redis's `freeClusterLink` from the handlers).
    pub fn link_closed(&mut self, link: LinkId) {
        if let Some(l) = self.links.remove(&link) {
            self.link_addrs.remove(&link);
            if let Some(n) = l.node.and_then(|n| self.nodes.get_mut(&n)) {
                if n.link == Some(link) {
                    n.link = None;
                }
                if n.inbound_link == Some(link) {
                    n.inbound_link = None;
                }
            }
        }
    }

    /// A connection the driver accepted on the bus port, from `peer_ip`, on our `local_ip`.
    pub fn link_accepted(&mut self, peer_ip: &str, local_ip: &str, now_ms: u64) -> LinkId {
        let id = self.new_link(None, true, now_ms);
        self.link_addrs.insert(id, (peer_ip.to_string(), local_ip.to_string()));
        id
    }

    /// Redis's `clusterCron`, every 100 ms.
    pub fn cron(&mut self, now_ms: u64, rng: &mut impl Rng) {
        self.cron_iteration += 1;
        let handshake_timeout = self.conf.node_timeout_ms.max(1000);
        self.stats_pfail_nodes = 0;
        let names: Vec<NodeName> = self.nodes.keys().cloned().collect();
        for name in &names {
            let Some(n) = self.nodes.get(name) else { continue };
            if n.has(flag::MYSELF | flag::NOADDR) {
                continue;
            }
            if n.has(flag::PFAIL) {
                self.stats_pfail_nodes += 1;
            }
            if n.in_handshake() && now_ms.saturating_sub(n.ctime_ms) > handshake_timeout {
                self.del_node(name);
                continue;
            }
            if n.link.is_none() {
                let (ip, cport) = (n.ip.clone(), n.cport);
                let link = self.new_link(Some(name.clone()), false, now_ms);
                self.nodes.get_mut(name).expect("present").link = Some(link);
                self.out.push(BusAction::Connect { link, ip, cport });
            }
        }
        if self.cron_iteration.is_multiple_of(10) {
            self.ping_oldest_of_five(&names, rng, now_ms);
        }
        let mut update_state = false;
        let (mut orphaned, mut max_replicas, mut my_master_replicas) = (0, 0, 0);
        for name in &names {
            let Some(n) = self.nodes.get(name) else { continue };
            if n.has(flag::MYSELF | flag::NOADDR | flag::HANDSHAKE) {
                continue;
            }
            if self.me().is_replica() && n.is_master() && !n.failed() {
                let ok = self.non_failing_replicas(n);
                if ok == 0 && n.numslots > 0 && n.has(flag::MIGRATE_TO) {
                    orphaned += 1;
                }
                max_replicas = max_replicas.max(ok);
                if self.me().slaveof.as_deref() == Some(name.as_str()) {
                    my_master_replicas = ok;
                }
            }
            let timeout = self.conf.node_timeout_ms;
            let ping_delay = now_ms.saturating_sub(n.ping_sent_ms);
            let data_delay = now_ms.saturating_sub(n.data_received_ms);
            let link_age = n.link.and_then(|l| self.links.get(&l)).map(|l| now_ms.saturating_sub(l.ctime_ms));
            if link_age.is_some_and(|age| age > timeout)
                && n.ping_sent_ms != 0
                && ping_delay > timeout / 2
                && data_delay > timeout / 2
            {
                // No traffic at all for a while: the connection itself may be the problem.
                let l = n.link.expect("has a link");
                self.free_link(l);
                continue;
            }
            if let Some(l) = n.link {
                if n.ping_sent_ms == 0 && now_ms.saturating_sub(n.pong_received_ms) > timeout / 2 {
                    self.send_ping(l, PingKind::Ping, now_ms, rng);
                    continue;
                }
                if self.mf_end_ms != 0 && self.me().is_master() && self.mf_replica.as_deref() == Some(name.as_str()) {
                    self.send_ping(l, PingKind::Ping, now_ms, rng);
                    continue;
                }
            }
            let n = &self.nodes[name];
            if n.ping_sent_ms == 0 {
                continue;
            }
            if ping_delay.min(data_delay) > timeout && !n.has(flag::PFAIL | flag::FAIL) {
                self.logln(DEBUG, format!("*** NODE {name} possibly failing"));
                self.nodes.get_mut(name).expect("present").flags |= flag::PFAIL;
                update_state = true;
            }
        }
        let me = self.me();
        if me.is_replica() && !self.facts.has_master {
            if let Some(m) = me.slaveof.as_deref().and_then(|m| self.nodes.get(m)).filter(|m| m.has_addr()) {
                let (ip, port) = (m.ip.clone(), m.port);
                self.effects.push(Effect::ReplicaOf { ip, port });
                self.facts.has_master = true;
            }
        }
        self.manual_failover_check_timeout(now_ms);
        if self.me().is_replica() {
            self.handle_manual_failover();
            self.handle_replica_failover(now_ms, rng);
            if orphaned > 0
                && max_replicas >= 2
                && my_master_replicas == max_replicas
                && self.conf.allow_replica_migration
            {
                self.handle_replica_migration(max_replicas, now_ms);
            }
        }
        if update_state || self.state == State::Fail {
            self.update_state(now_ms);
        }
    }

    fn ping_oldest_of_five(&mut self, names: &[NodeName], rng: &mut impl Rng, now_ms: u64) {
        let mut best: Option<(u64, LinkId)> = None;
        for _ in 0..5 {
            let n = &self.nodes[&names[rng.below(names.len() as u64) as usize]];
            let Some(link) = n.link else { continue };
            if n.ping_sent_ms != 0 || n.has(flag::MYSELF | flag::HANDSHAKE) {
                continue;
            }
            if best.is_none_or(|(pong, _)| pong > n.pong_received_ms) {
                best = Some((n.pong_received_ms, link));
            }
        }
        if let Some((_, link)) = best {
            self.send_ping(link, PingKind::Ping, now_ms, rng);
        }
    }

    pub fn non_failing_replicas(&self, master: &ClusterNode) -> usize {
        master.replicas.iter().filter(|r| self.nodes.get(*r).is_some_and(|r| !r.failed())).count()
    }

    /// Redis's `clusterSetNodeAsMaster`.
    pub fn set_node_as_master(&mut self, name: &str) {
        let Some(n) = self.nodes.get(name) else { return };
        if n.is_master() {
            return;
        }
        if let Some(m) = n.slaveof.clone() {
            self.remove_replica(&m, name);
            if name != self.myself {
                self.nodes.get_mut(name).expect("present").flags |= flag::MIGRATE_TO;
            }
        }
        let n = self.nodes.get_mut(name).expect("present");
        n.flags &= !flag::SLAVE;
        n.flags |= flag::MASTER;
        n.slaveof = None;
        self.save_config_soon(false);
        self.todo_update_state = true;
    }

    /// Redis's `nodeUpdateAddressIfNeeded`: a node that talks to us from a new address.
    fn update_address_if_needed(&mut self, name: &str, link: LinkId, h: &Header) -> bool {
        let Some(n) = self.nodes.get(name) else { return false };
        if n.link == Some(link) {
            return false;
        }
        let ip = self.announced_or_peer_ip(link, &h.myip);
        if n.port == h.port && n.cport == h.cport && n.pport == h.pport && n.ip == ip {
            return false;
        }
        let old = n.link;
        let n = self.nodes.get_mut(name).expect("present");
        n.ip = ip;
        n.port = h.port;
        n.pport = h.pport;
        n.cport = h.cport;
        n.flags &= !flag::NOADDR;
        let (ip, port) = (n.ip.clone(), n.port);
        if let Some(l) = old {
            self.free_link(l);
        }
        self.logln(WARNING, format!("Address updated for node {name}, now {ip}:{port}"));
        if self.me().is_replica() && self.me().slaveof.as_deref() == Some(name) {
            self.effects.push(Effect::ReplicaOf { ip, port });
        }
        true
    }

    /// Redis's `nodeIp2String`: the announced IP, else the address the packet came from.
    fn announced_or_peer_ip(&self, link: LinkId, announced: &str) -> String {
        if !announced.is_empty() {
            return announced.to_string();
        }
        if let Some((peer, _)) = self.link_addrs.get(&link) {
            return peer.clone();
        }
        self.links
            .get(&link)
            .and_then(|l| l.node.as_deref())
            .and_then(|n| self.nodes.get(n))
            .map(|n| n.ip.clone())
            .unwrap_or_default()
    }

    /// Redis's `clusterProcessPacket` for one packet from `link`. Returns false when the link
    /// must be closed.
    pub fn on_packet(&mut self, link: LinkId, packet: &[u8], now_ms: u64, rng: &mut impl Rng) -> bool {
        let msg = match bus::decode(packet) {
            Ok(m) => m,
            Err(bus::BusError::UnknownType { msg_type, .. }) => {
                self.logln(WARNING, format!("Received unknown packet type: {msg_type}"));
                return true;
            }
            Err(e) => {
                self.logln(WARNING, format!("Bad cluster bus packet: {e}"));
                return true;
            }
        };
        let Some(l) = self.links.get(&link).cloned() else { return false };
        let t = msg.body.msg_type();
        self.stats_received[t as usize] += 1;
        let h = &msg.header;
        let hdr_sender = text_name(&h.sender);
        let sender: Option<NodeName> = match l.node.as_deref().and_then(|n| self.nodes.get(n)) {
            Some(n) if !l.inbound && !n.in_handshake() => Some(n.name.clone()),
            _ => self.nodes.get(&hdr_sender).filter(|n| !n.in_handshake()).map(|n| n.name.clone()),
        };
        if let Some(s) = &sender {
            if l.inbound {
                self.bind_inbound(s, link);
            }
            let n = self.nodes.get_mut(s).expect("known");
            n.data_received_ms = now_ms;
            if h.current_epoch > self.current_epoch {
                self.current_epoch = h.current_epoch;
            }
            let n = self.nodes.get_mut(s).expect("known");
            if h.config_epoch > n.config_epoch {
                n.config_epoch = h.config_epoch;
                self.save_config_soon(true);
            }
            let n = self.nodes.get_mut(s).expect("known");
            n.repl_offset = h.offset;
            n.repl_offset_time_ms = now_ms;
            let my_master = self.me().slaveof.as_deref() == Some(s.as_str());
            if self.mf_end_ms != 0
                && self.me().is_replica()
                && my_master
                && h.mflags[0] & bus::mflags0::PAUSED != 0
                && self.mf_master_offset.is_none()
            {
                self.mf_master_offset = Some(h.offset);
                self.logln(
                    WARNING,
                    format!("Received replication offset for paused master manual failover: {}", h.offset),
                );
            }
        }
        match &msg.body {
            Body::Ping { kind, gossip, hostname } => {
                self.on_ping(link, &l, *kind, &msg.header, gossip, hostname.as_deref(), sender, now_ms, rng)
            }
            Body::Fail { nodename } => {
                let failing = text_name(nodename);
                if sender.is_none() {
                    self.logln(NOTICE, format!("Ignoring FAIL message from unknown node {hdr_sender} about {failing}"));
                    return true;
                }
                if let Some(f) = self.nodes.get_mut(&failing).filter(|f| !f.has(flag::FAIL | flag::MYSELF)) {
                    f.flags |= flag::FAIL;
                    f.flags &= !flag::PFAIL;
                    f.fail_time_ms = now_ms;
                    self.logln(NOTICE, format!("FAIL message received from {hdr_sender} about {failing}"));
                    self.save_config_soon(false);
                    self.todo_update_state = true;
                }
                true
            }
            Body::Publish { shard, channel, message } => {
                if sender.is_some() {
                    self.effects.push(Effect::Publish {
                        shard: *shard,
                        channel: channel.clone(),
                        message: message.clone(),
                    });
                }
                true
            }
            Body::FailoverAuthRequest => {
                if let Some(s) = sender {
                    self.send_failover_auth_if_needed(&s, &msg.header, now_ms);
                }
                true
            }
            Body::FailoverAuthAck => {
                let Some(s) = sender else { return true };
                let n = &self.nodes[&s];
                if n.is_master() && n.numslots > 0 && h.current_epoch >= self.failover_auth_epoch {
                    self.failover_auth_count += 1;
                    self.todo_handle_failover = true;
                }
                true
            }
            Body::MfStart => {
                let Some(s) = sender else { return true };
                if self.nodes[&s].slaveof.as_deref() != Some(self.myself.as_str()) {
                    return true;
                }
                self.reset_manual_failover();
                self.mf_end_ms = now_ms + super::MF_TIMEOUT_MS;
                self.mf_replica = Some(s.clone());
                self.effects
                    .push(Effect::PauseWrites { until_ms: now_ms + super::MF_TIMEOUT_MS * super::MF_PAUSE_MULT });
                self.logln(WARNING, format!("Manual failover requested by replica {s}."));
                self.send_ping(link, PingKind::Ping, now_ms, rng);
                true
            }
            Body::Update { config_epoch, nodename, slots } => {
                if sender.is_none() {
                    return true;
                }
                let about = text_name(nodename);
                let Some(n) = self.nodes.get(&about) else { return true };
                if n.config_epoch >= *config_epoch {
                    return true;
                }
                if n.is_replica() {
                    self.set_node_as_master(&about);
                }
                self.nodes.get_mut(&about).expect("known").config_epoch = *config_epoch;
                self.save_config_soon(true);
                self.update_slots_config_with(&about, *config_epoch, &our_slots(slots));
                true
            }
            Body::Module { .. } => true,
        }
    }

    /// Redis 7.0 remembers which inbound link a node talks to us on.
    fn bind_inbound(&mut self, name: &str, link: LinkId) {
        let Some(n) = self.nodes.get_mut(name) else { return };
        if n.inbound_link == Some(link) {
            return;
        }
        let old = n.inbound_link.replace(link);
        if let Some(l) = self.links.get_mut(&link) {
            l.node = Some(name.to_string());
        }
        if let Some(old) = old {
            self.free_link(old);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_ping(
        &mut self,
        link: LinkId,
        l: &super::Link,
        kind: PingKind,
        h: &Header,
        gossip: &[Gossip],
        hostname: Option<&str>,
        sender: Option<NodeName>,
        now_ms: u64,
        rng: &mut impl Rng,
    ) -> bool {
        if kind != PingKind::Pong {
            let me = self.me();
            if (kind == PingKind::Meet || me.ip.is_empty()) && self.conf.announce_ip.is_empty() {
                if let Some((_, local)) = self.link_addrs.get(&link).cloned() {
                    if !local.is_empty() && local != self.me().ip {
                        self.me_mut().ip = local.clone();
                        self.myip = local.clone();
                        self.logln(WARNING, format!("IP address for this node updated to {local}"));
                        self.save_config_soon(false);
                    }
                }
            }
            if sender.is_none() && kind == PingKind::Meet {
                let name = super::random_name(rng);
                let mut n = ClusterNode::new(name.clone(), flag::HANDSHAKE, now_ms);
                n.ip = self.announced_or_peer_ip(link, &h.myip);
                n.port = h.port;
                n.pport = h.pport;
                n.cport = h.cport;
                self.nodes.insert(name, n);
                self.save_config_soon(false);
                self.process_gossip(None, gossip, now_ms);
            }
            self.send_ping(link, PingKind::Pong, now_ms, rng);
        }
        if !l.inbound {
            let Some(node) = l.node.clone() else { return true };
            let Some(n) = self.nodes.get(&node) else { return true };
            if n.in_handshake() {
                if let Some(s) = &sender {
                    self.logln(
                        VERBOSE,
                        format!("Handshake: we already know node {s}, updating the address if needed."),
                    );
                    if self.update_address_if_needed(s, link, h) {
                        self.save_config_soon(false);
                        self.todo_update_state = true;
                    }
                    self.del_node(&node);
                    return false;
                }
                let real = text_name(&h.sender);
                if !super::valid_name(real.as_bytes()) {
                    return true;
                }
                self.rename_node(&node, &real);
                self.logln(DEBUG, format!("Handshake with node {real} completed."));
                let n = self.nodes.get_mut(&real).expect("renamed");
                n.flags &= !flag::HANDSHAKE;
                n.flags |= h.flags & (flag::MASTER | flag::SLAVE);
                self.save_config_soon(false);
                return self.on_ping_config(link, l, kind, h, gossip, hostname, Some(real), now_ms, rng);
            } else if node != text_name(&h.sender) {
                self.logln(DEBUG, format!("PONG contains mismatching sender ID. About node {node}"));
                let n = self.nodes.get_mut(&node).expect("known");
                n.flags |= flag::NOADDR;
                n.ip.clear();
                n.port = 0;
                n.pport = 0;
                n.cport = 0;
                self.free_link(link);
                self.save_config_soon(false);
                return false;
            }
        }
        self.on_ping_config(link, l, kind, h, gossip, hostname, sender, now_ms, rng)
    }

    /// PING, PONG and MEET from a known sender: its role, slots, epochs, and its gossip.
    #[allow(clippy::too_many_arguments)]
    fn on_ping_config(
        &mut self,
        link: LinkId,
        l: &super::Link,
        kind: PingKind,
        h: &Header,
        gossip: &[Gossip],
        hostname: Option<&str>,
        sender: Option<NodeName>,
        now_ms: u64,
        _rng: &mut impl Rng,
    ) -> bool {
        let sender = sender.filter(|s| self.nodes.get(s).is_some_and(|n| !n.in_handshake()));
        if let Some(s) = &sender {
            let n = self.nodes.get_mut(s).expect("known");
            n.flags = (n.flags & !flag::NOFAILOVER) | (h.flags & flag::NOFAILOVER);
            if kind == PingKind::Ping && self.update_address_if_needed(s, link, h) {
                self.save_config_soon(false);
                self.todo_update_state = true;
            }
        }
        if !l.inbound && kind == PingKind::Pong {
            if let Some(node) = self.links.get(&link).and_then(|l| l.node.clone()) {
                if let Some(n) = self.nodes.get_mut(&node) {
                    n.pong_received_ms = now_ms;
                    n.ping_sent_ms = 0;
                    if n.timed_out() {
                        n.flags &= !flag::PFAIL;
                        self.todo_update_state = true;
                    } else if n.failed() {
                        self.clear_node_failure_if_needed(&node, now_ms);
                    }
                }
            }
        }
        let Some(s) = sender else { return true };
        self.update_role(&s, h);
        let sender_master = {
            let n = &self.nodes[&s];
            if n.is_master() {
                Some(s.clone())
            } else {
                n.slaveof.clone()
            }
        };
        let claimed = our_slots(&h.myslots);
        let dirty = sender_master.as_deref().and_then(|m| self.nodes.get(m)).is_some_and(|m| m.slots != claimed);
        if self.nodes[&s].is_master() && dirty {
            self.update_slots_config_with(&s, h.config_epoch, &claimed);
        }
        if dirty {
            for slot in claimed.iter() {
                let owner = self.slots[slot as usize].clone();
                if owner.as_deref() == Some(s.as_str()) || self.slot_unclaimed(slot) {
                    continue;
                }
                let owner = owner.expect("claimed");
                if self.nodes[&owner].config_epoch > h.config_epoch {
                    self.logln(
                        VERBOSE,
                        format!("Node {s} has old slots configuration, sending an UPDATE message about {owner}"),
                    );
                    let to = self.nodes[&s].link;
                    self.send_update(to, &owner);
                    break;
                }
            }
        }
        if self.me().is_master() && self.nodes[&s].is_master() && h.config_epoch == self.me().config_epoch {
            self.handle_config_epoch_collision(&s);
        }
        self.process_gossip(Some(&s), gossip, now_ms);
        if let Some(name) = hostname {
            let n = self.nodes.get_mut(&s).expect("known");
            if n.hostname != name {
                n.hostname = name.to_string();
                self.save_config_soon(false);
            }
        } else if !self.nodes[&s].hostname.is_empty() {
            self.nodes.get_mut(&s).expect("known").hostname.clear();
            self.save_config_soon(false);
        }
        true
    }

    /// Master turned replica, replica changed master, replica promoted: as the header says.
    fn update_role(&mut self, s: &str, h: &Header) {
        match h.slaveof {
            None => self.set_node_as_master(s),
            Some(m) => {
                let master = text_name(&m);
                if self.nodes[s].is_master() {
                    self.del_node_slots(s);
                    let n = self.nodes.get_mut(s).expect("known");
                    n.flags &= !(flag::MASTER | flag::MIGRATE_TO);
                    n.flags |= flag::SLAVE;
                    self.save_config_soon(false);
                    self.todo_update_state = true;
                }
                if self.nodes.contains_key(&master) && self.nodes[s].slaveof.as_deref() != Some(master.as_str()) {
                    if let Some(old) = self.nodes[s].slaveof.clone() {
                        self.remove_replica(&old, s);
                    }
                    self.add_replica(&master, s);
                    self.nodes.get_mut(s).expect("known").slaveof = Some(master);
                    self.save_config_soon(false);
                }
            }
        }
    }

    pub fn slot_unclaimed(&self, slot: u16) -> bool {
        self.slots[slot as usize].is_none() || self.owner_not_claiming.get(slot)
    }

    /// Redis's `clusterProcessGossipSection`.
    fn process_gossip(&mut self, sender: Option<&str>, gossip: &[Gossip], now_ms: u64) {
        let sender_is_master = sender.and_then(|s| self.nodes.get(s)).is_some_and(|n| n.is_master());
        for g in gossip {
            let name = text_name(&g.nodename);
            if self.nodes.contains_key(&name) {
                if let Some(s) = sender.filter(|_| sender_is_master && name != self.myself) {
                    if g.flags & (flag::FAIL | flag::PFAIL) != 0 {
                        if self.add_failure_report(&name, s, now_ms) {
                            self.logln(VERBOSE, format!("Node {s} reported node {name} as not reachable."));
                        }
                        self.mark_node_as_failing_if_needed(&name, now_ms);
                    } else if self.del_failure_report(&name, s) {
                        self.logln(VERBOSE, format!("Node {s} reported node {name} is back online."));
                    }
                }
                let reports = self.failure_reports_count(&name, now_ms);
                let n = self.nodes.get_mut(&name).expect("known");
                if g.flags & (flag::FAIL | flag::PFAIL) == 0 && n.ping_sent_ms == 0 && reports == 0 {
                    let pong = g.pong_received_secs as u64 * 1000;
                    if pong <= now_ms + 500 && pong > n.pong_received_ms {
                        n.pong_received_ms = pong;
                    }
                }
                let moved = n.ip != g.ip || n.port != g.port || n.cport != g.cport;
                if n.has(flag::FAIL | flag::PFAIL) && g.flags & (flag::NOADDR | flag::FAIL | flag::PFAIL) == 0 && moved
                {
                    let old = n.link.take();
                    n.ip = g.ip.clone();
                    n.port = g.port;
                    n.pport = g.pport;
                    n.cport = g.cport;
                    n.flags &= !flag::NOADDR;
                    if let Some(l) = old {
                        self.nodes.get_mut(&name).expect("known").link = Some(l);
                        self.free_link(l);
                    }
                }
            } else if sender.is_some()
                && g.flags & flag::NOADDR == 0
                && super::valid_name(name.as_bytes())
                && !self.blacklisted(&name, now_ms / 1000)
            {
                let mut n = ClusterNode::new(name.clone(), g.flags, now_ms);
                n.ip = g.ip.clone();
                n.port = g.port;
                n.pport = g.pport;
                n.cport = g.cport;
                // What gossip says about its role is confirmed by the node's own PONG.
                n.flags &= !(flag::MYSELF | flag::PFAIL | flag::FAIL);
                self.nodes.insert(name, n);
            }
        }
    }

    /// Redis's `markNodeAsFailingIfNeeded`: PFAIL becomes FAIL once a majority of masters
    /// (this one included, if a master) report it.
    fn mark_node_as_failing_if_needed(&mut self, name: &str, now_ms: u64) {
        let needed = self.size / 2 + 1;
        let Some(n) = self.nodes.get(name) else { return };
        if !n.timed_out() || n.failed() {
            return;
        }
        let mut failures = self.failure_reports_count(name, now_ms);
        if self.me().is_master() {
            failures += 1;
        }
        if failures < needed {
            return;
        }
        self.logln(NOTICE, format!("Marking node {name} as failing (quorum reached)."));
        let n = self.nodes.get_mut(name).expect("known");
        n.flags &= !flag::PFAIL;
        n.flags |= flag::FAIL;
        n.fail_time_ms = now_ms;
        self.send_fail(name);
        self.todo_update_state = true;
        self.save_config_soon(false);
    }

    /// Redis's `clearNodeFailureIfNeeded`.
    fn clear_node_failure_if_needed(&mut self, name: &str, now_ms: u64) {
        let timeout = self.conf.node_timeout_ms;
        let Some(n) = self.nodes.get_mut(name) else { return };
        if n.is_replica() || n.numslots == 0 {
            let what = if n.is_replica() { "replica" } else { "master without slots" };
            n.flags &= !flag::FAIL;
            self.logln(NOTICE, format!("Clear FAIL state for node {name}: {what} is reachable again."));
            self.todo_update_state = true;
            self.save_config_soon(false);
            return;
        }
        if n.is_master()
            && n.numslots > 0
            && now_ms.saturating_sub(n.fail_time_ms) > timeout * super::FAIL_UNDO_TIME_MULT
        {
            n.flags &= !flag::FAIL;
            self.logln(
                NOTICE,
                format!("Clear FAIL state for node {name}: is reachable again and nobody is serving its slots after some time."),
            );
            self.todo_update_state = true;
            self.save_config_soon(false);
        }
    }

    /// Redis's `clusterUpdateSlotsConfigWith`: slots claimed with a greater config epoch
    /// change hands; a master left without slots becomes a replica of who took them.
    pub fn update_slots_config_with(&mut self, sender: &str, sender_epoch: u64, claimed: &SlotBitmap) {
        if sender == self.myself {
            self.logln(WARNING, "Discarding UPDATE message about myself.");
            return;
        }
        let curmaster = {
            let me = self.me();
            if me.is_master() {
                Some(self.myself.clone())
            } else {
                me.slaveof.clone()
            }
        };
        let mut dirty_slots = Vec::new();
        let (mut sender_slots, mut migrated_ours) = (0, 0);
        let mut new_master = false;
        for slot in 0..CLUSTER_SLOTS as u16 {
            let owner = self.slots[slot as usize].clone();
            if claimed.get(slot) {
                sender_slots += 1;
                if owner.as_deref() == Some(sender) {
                    self.owner_not_claiming.clear(slot);
                    continue;
                }
                if self.importing_from.contains_key(&slot) {
                    continue;
                }
                let older =
                    owner.as_deref().and_then(|o| self.nodes.get(o)).is_some_and(|o| o.config_epoch < sender_epoch);
                if self.slot_unclaimed(slot) || older {
                    if owner.as_deref() == Some(self.myself.as_str()) {
                        dirty_slots.push(slot);
                    }
                    if owner.is_some() && owner == curmaster {
                        new_master = true;
                        migrated_ours += 1;
                    }
                    self.del_slot(slot);
                    self.add_slot(sender, slot);
                    self.owner_not_claiming.clear(slot);
                    self.save_config_soon(true);
                    self.todo_update_state = true;
                }
            } else if owner.as_deref() == Some(sender) {
                self.owner_not_claiming.set(slot);
            }
        }
        let cur_empty = curmaster.as_deref().and_then(|m| self.nodes.get(m)).is_some_and(|m| m.numslots == 0);
        if new_master && cur_empty && (self.conf.allow_replica_migration || sender_slots == migrated_ours) {
            self.logln(
                WARNING,
                format!("Configuration change detected. Reconfiguring myself as a replica of {sender}"),
            );
            self.set_master(sender);
            self.save_config_soon(true);
            self.todo_update_state = true;
        } else if let Some(grand) =
            self.me().slaveof.as_deref().and_then(|m| self.nodes.get(m)).and_then(|m| m.slaveof.clone())
        {
            if grand != self.myself {
                self.logln(
                    WARNING,
                    format!("I'm a sub-replica! Reconfiguring myself as a replica of grandmaster {grand}"),
                );
                self.set_master(&grand);
                self.save_config_soon(true);
                self.todo_update_state = true;
            }
        } else {
            for slot in dirty_slots {
                self.effects.push(Effect::DeleteKeysInSlot(slot));
            }
        }
    }

    /// Redis's `clusterSetMaster`: this node becomes a replica of `master`.
    pub fn set_master(&mut self, master: &str) {
        if master == self.myself || !self.nodes.contains_key(master) {
            return;
        }
        let me = self.myself.clone();
        if self.me().is_master() {
            let n = self.me_mut();
            n.flags &= !(flag::MASTER | flag::MIGRATE_TO);
            n.flags |= flag::SLAVE;
            self.migrating_to.clear();
            self.importing_from.clear();
        } else if let Some(old) = self.me().slaveof.clone() {
            self.remove_replica(&old, &me);
        }
        self.me_mut().slaveof = Some(master.to_string());
        self.add_replica(master, &me);
        let m = &self.nodes[master];
        let (ip, port) = (m.ip.clone(), m.port);
        self.effects.push(Effect::ReplicaOf { ip, port });
        self.facts.has_master = true;
        self.reset_manual_failover();
    }

    /// Redis's `clusterBeforeSleep`: what a packet or a command asked to do soon.
    pub fn before_sleep(&mut self, now_ms: u64, rng: &mut impl Rng) {
        if self.todo_handle_failover && self.me().is_replica() {
            self.todo_handle_failover = false;
            self.handle_manual_failover();
            self.handle_replica_failover(now_ms, rng);
        }
        if self.todo_update_state {
            self.update_state(now_ms);
        }
    }

    /// Redis's `clusterReset`: forget every other node and every slot; a hard reset also
    /// takes a new name and zero epochs.
    pub fn reset(&mut self, hard: bool, rng: &mut impl Rng, now_ms: u64) {
        if self.me().is_replica() {
            let me = self.myself.clone();
            self.set_node_as_master(&me);
            self.effects.push(Effect::BecomeMaster);
            self.effects.push(Effect::FlushAll);
            self.facts.has_master = false;
        }
        self.migrating_to.clear();
        self.importing_from.clear();
        self.flush_slots();
        let others: Vec<NodeName> = self.nodes.keys().filter(|n| **n != self.myself).cloned().collect();
        for n in others {
            self.del_node(&n);
        }
        if hard {
            self.current_epoch = 0;
            self.last_vote_epoch = 0;
            self.me_mut().config_epoch = 0;
            let old = self.myself.clone();
            let new = super::random_name(rng);
            self.rename_node(&old, &new);
            self.myself = new.clone();
            self.logln(NOTICE, format!("Node hard reset, now I'm {new}"));
        }
        let _ = now_ms;
        self.save_config_soon(true);
        self.todo_update_state = true;
    }
}

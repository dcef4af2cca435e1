//! CLUSTER and its friends ASKING, READONLY, READWRITE, with Redis 7.0.15's replies and
//! errors (`clusterCommand`). Every one of them refuses on a node without cluster-enabled.

use bytes::Bytes;

use super::config::{node_line, nodes_description};
use super::redirect::endpoint;
use super::{flag, key_hash_slot, Cluster, ClusterNode, State, CLUSTER_SLOTS, MSG_TYPE_NAMES};
use crate::commands::server_cmds::reply_help;
use crate::commands::{eq_ic, int_arg, CmdError, CmdResult, Ctx, Handler};
use crate::server::log::Level;

pub static COMMANDS: &[(&str, Handler)] = &[
    ("asking", asking),
    ("readonly", readonly),
    ("readwrite", readwrite),
    ("cluster|addslots", addslots),
    ("cluster|addslotsrange", addslotsrange),
    ("cluster|bumpepoch", bumpepoch),
    ("cluster|count-failure-reports", count_failure_reports),
    ("cluster|countkeysinslot", countkeysinslot),
    ("cluster|delslots", addslots),
    ("cluster|delslotsrange", addslotsrange),
    ("cluster|failover", failover),
    ("cluster|flushslots", flushslots),
    ("cluster|forget", forget),
    ("cluster|getkeysinslot", getkeysinslot),
    ("cluster|help", help),
    ("cluster|info", info),
    ("cluster|keyslot", keyslot),
    ("cluster|links", links),
    ("cluster|meet", meet),
    ("cluster|myid", myid),
    ("cluster|nodes", nodes),
    ("cluster|replicas", replicas),
    ("cluster|replicate", replicate),
    ("cluster|reset", reset),
    ("cluster|saveconfig", saveconfig),
    ("cluster|set-config-epoch", set_config_epoch),
    ("cluster|setslot", setslot),
    ("cluster|shards", shards),
    ("cluster|slaves", replicas),
    ("cluster|slots", slots),
];

const HELP: &[&str] = &[
    "ADDSLOTS <slot> [<slot> ...]",
    "    Assign slots to current node.",
    "ADDSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
    "    Assign slots which are between <start-slot> and <end-slot> to current node.",
    "BUMPEPOCH",
    "    Advance the cluster config epoch.",
    "COUNT-FAILURE-REPORTS <node-id>",
    "    Return number of failure reports for <node-id>.",
    "COUNTKEYSINSLOT <slot>",
    "    Return the number of keys in <slot>.",
    "DELSLOTS <slot> [<slot> ...]",
    "    Delete slots information from current node.",
    "DELSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
    "    Delete slots information which are between <start-slot> and <end-slot> from current node.",
    "FAILOVER [FORCE|TAKEOVER]",
    "    Promote current replica node to being a master.",
    "FORGET <node-id>",
    "    Remove a node from the cluster.",
    "GETKEYSINSLOT <slot> <count>",
    "    Return key names stored by current node in a slot.",
    "FLUSHSLOTS",
    "    Delete current node own slots information.",
    "INFO",
    "    Return information about the cluster.",
    "KEYSLOT <key>",
    "    Return the hash slot for <key>.",
    "MEET <ip> <port> [<bus-port>]",
    "    Connect nodes into a working cluster.",
    "MYID",
    "    Return the node id.",
    "NODES",
    "    Return cluster configuration seen by node. Output format:",
    "    <id> <ip:port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
    "REPLICATE <node-id>",
    "    Configure current node as replica to <node-id>.",
    "RESET [HARD|SOFT]",
    "    Reset current node (default: soft).",
    "SET-CONFIG-EPOCH <epoch>",
    "    Set config epoch of current node.",
    "SETSLOT <slot> (IMPORTING <node-id>|MIGRATING <node-id>|STABLE|NODE <node-id>)",
    "    Set slot state.",
    "REPLICAS <node-id>",
    "    Return <node-id> replicas.",
    "SAVECONFIG",
    "    Force saving cluster configuration on disk.",
    "SLOTS",
    "    Return information about slots range mappings. Each range is made of:",
    "    start, end, master and replicas IP addresses, ports and ids",
    "SHARDS",
    "    Return information about slot range mappings and the nodes associated with them.",
    "LINKS",
    "    Return information about all network links between this node and its peers.",
    "    Output format is an array where each array element is a map containing attributes of a link",
];

fn disabled() -> CmdError {
    CmdError::err("This instance has cluster support disabled")
}

fn cluster<'a>(ctx: &'a mut Ctx) -> Result<&'a mut Cluster, CmdError> {
    ctx.srv.cluster.as_deref_mut().ok_or_else(disabled)
}

fn asking(ctx: &mut Ctx, _a: &[Bytes]) -> CmdResult {
    cluster(ctx)?;
    ctx.client.cluster_asking = true;
    ctx.out().ok();
    Ok(())
}

fn readonly(ctx: &mut Ctx, _a: &[Bytes]) -> CmdResult {
    cluster(ctx)?;
    ctx.client.cluster_readonly = true;
    ctx.out().ok();
    Ok(())
}

fn readwrite(ctx: &mut Ctx, _a: &[Bytes]) -> CmdResult {
    cluster(ctx)?;
    ctx.client.cluster_readonly = false;
    ctx.out().ok();
    Ok(())
}

fn help(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    cluster(ctx)?;
    reply_help(ctx, &a[0], HELP);
    Ok(())
}

/// Redis's `getSlotOrReply`.
fn slot_arg(b: &[u8]) -> Result<u16, CmdError> {
    match int_arg(b) {
        Ok(s) if (0..CLUSTER_SLOTS as i64).contains(&s) => Ok(s as u16),
        _ => Err(CmdError::err("Invalid or out of range slot")),
    }
}

/// ADDSLOTS and DELSLOTS.
fn addslots(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let del = eq_ic(&a[1], "delslots");
    cluster(ctx)?;
    let slots = a[2..].iter().map(|s| slot_arg(s)).collect::<Result<Vec<u16>, _>>()?;
    let ranges: Vec<(u16, u16)> = slots.iter().map(|&s| (s, s)).collect();
    assign(ctx, &ranges, del)
}

/// ADDSLOTSRANGE and DELSLOTSRANGE.
fn addslotsrange(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let del = eq_ic(&a[1], "delslotsrange");
    cluster(ctx)?;
    if a.len() % 2 == 1 {
        let name = if del { "cluster|delslotsrange" } else { "cluster|addslotsrange" };
        return Err(CmdError::err(format!("wrong number of arguments for '{name}' command")));
    }
    let mut ranges = Vec::new();
    for pair in a[2..].chunks(2) {
        let (start, end) = (slot_arg(&pair[0])?, slot_arg(&pair[1])?);
        if start > end {
            return Err(CmdError::err(format!("start slot number {start} is greater than end slot number {end}")));
        }
        ranges.push((start, end));
    }
    assign(ctx, &ranges, del)
}

/// Redis's `checkSlotAssignmentsOrReply` over every range, then `clusterUpdateSlots`.
fn assign(ctx: &mut Ctx, ranges: &[(u16, u16)], del: bool) -> CmdResult {
    let c = cluster(ctx)?;
    let mut seen = vec![false; CLUSTER_SLOTS];
    for &(start, end) in ranges {
        for s in start..=end {
            let owned = c.slots[s as usize].is_some();
            if del && !owned {
                return Err(CmdError::err(format!("Slot {s} is already unassigned")));
            }
            if !del && owned {
                return Err(CmdError::err(format!("Slot {s} is already busy")));
            }
            if std::mem::replace(&mut seen[s as usize], true) {
                return Err(CmdError::err(format!("Slot {s} specified multiple times")));
            }
        }
    }
    let me = c.myself.clone();
    for (s, _) in seen.iter().enumerate().filter(|(_, &v)| v) {
        let s = s as u16;
        c.importing_from.remove(&s);
        if del {
            c.del_slot(s);
        } else {
            c.add_slot(&me, s);
        }
    }
    c.todo_update_state = true;
    c.save_config_soon(false);
    ctx.out().ok();
    Ok(())
}

fn bumpepoch(ctx: &mut Ctx, _a: &[Bytes]) -> CmdResult {
    let c = cluster(ctx)?;
    let bumped = c.bump_epoch_without_consensus();
    let epoch = c.me().config_epoch;
    ctx.out().simple(&format!("{} {epoch}", if bumped { "BUMPED" } else { "STILL" }));
    Ok(())
}

fn lookup<'a>(c: &'a Cluster, name: &[u8]) -> Result<&'a ClusterNode, CmdError> {
    c.nodes
        .get(std::str::from_utf8(name).unwrap_or(""))
        .ok_or_else(|| CmdError::err(format!("Unknown node {}", String::from_utf8_lossy(name))))
}

fn count_failure_reports(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let now = ctx.srv.now.unix_ms;
    let c = cluster(ctx)?;
    let name = lookup(c, &a[2])?.name.clone();
    let n = c.failure_reports_count(&name, now);
    ctx.out().int(n as i64);
    Ok(())
}

fn countkeysinslot(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    cluster(ctx)?;
    let slot = int_arg(&a[2])?;
    if !(0..CLUSTER_SLOTS as i64).contains(&slot) {
        return Err(CmdError::err("Invalid slot"));
    }
    let n = ctx.srv.dbs[0].count_keys_in_slot(slot as u16);
    ctx.out().int(n as i64);
    Ok(())
}

fn getkeysinslot(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    cluster(ctx)?;
    let slot = int_arg(&a[2])?;
    let max = int_arg(&a[3])?;
    if !(0..CLUSTER_SLOTS as i64).contains(&slot) || max < 0 {
        return Err(CmdError::err("Invalid slot or number of keys"));
    }
    // Redis's order: the slot's list from its head, the most recently added keys first. The
    // keys stay borrowed from the db while the reply is written (no key was added: no `new`
    // events to go first).
    let keys = ctx.srv.dbs[0].keys_in_slot(slot as u16);
    let n = keys.len().min(usize::try_from(max).unwrap_or(usize::MAX));
    let out = &mut ctx.client.out;
    out.array(n);
    for k in keys.take(n) {
        out.bulk(k);
    }
    Ok(())
}

fn failover(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    cluster(ctx)?;
    let (force, takeover) = match a.get(2) {
        None => (false, false),
        Some(o) if eq_ic(o, "force") => (true, false),
        Some(o) if eq_ic(o, "takeover") => (true, true),
        Some(_) => return Err(CmdError::Syntax),
    };
    if a.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let now = ctx.srv.now.unix_ms;
    let c = cluster(ctx)?;
    let me = c.me();
    if me.is_master() {
        return Err(CmdError::err("You should send CLUSTER FAILOVER to a replica"));
    }
    let Some(master) = me.slaveof.as_deref().and_then(|m| c.nodes.get(m)) else {
        return Err(CmdError::err("I'm a replica but my master is unknown to me"));
    };
    if !force && (master.failed() || master.link.is_none()) {
        return Err(CmdError::err("Master is down or failed, please use CLUSTER FAILOVER FORCE"));
    }
    let master = master.name.clone();
    c.reset_manual_failover();
    c.mf_end_ms = now + super::MF_TIMEOUT_MS;
    if takeover {
        ctx.srv.log(Level::Warning, "Taking over the master (user request).");
        let c = cluster(ctx)?;
        c.bump_epoch_without_consensus();
        ctx.srv.cluster_failover_replace_master();
    } else if force {
        ctx.srv.log(Level::Warning, "Forced failover user request accepted.");
        cluster(ctx)?.mf_can_start = true;
    } else {
        ctx.srv.log(Level::Warning, "Manual failover user request accepted.");
        let c = cluster(ctx)?;
        c.send_mfstart(&master, now);
    }
    ctx.out().ok();
    Ok(())
}

fn flushslots(ctx: &mut Ctx, _a: &[Bytes]) -> CmdResult {
    cluster(ctx)?;
    if !ctx.srv.dbs[0].is_empty() {
        return Err(CmdError::err("DB must be empty to perform CLUSTER FLUSHSLOTS."));
    }
    let c = cluster(ctx)?;
    let me = c.myself.clone();
    c.del_node_slots(&me);
    c.todo_update_state = true;
    c.save_config_soon(false);
    ctx.out().ok();
    Ok(())
}

fn forget(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let now_secs = ctx.srv.now.unix_ms / 1000;
    let c = cluster(ctx)?;
    let name = lookup(c, &a[2])?.name.clone();
    if name == c.myself {
        return Err(CmdError::err("I tried hard but I can't forget myself..."));
    }
    if c.me().is_replica() && c.me().slaveof.as_deref() == Some(name.as_str()) {
        return Err(CmdError::err("Can't forget my master!"));
    }
    c.blacklist_add(&name, now_secs);
    c.del_node(&name);
    c.todo_update_state = true;
    c.save_config_soon(false);
    ctx.out().ok();
    Ok(())
}

fn info(ctx: &mut Ctx, _a: &[Bytes]) -> CmdResult {
    let c = cluster(ctx)?;
    let text = info_text(c);
    ctx.out().verbatim(text.as_bytes());
    Ok(())
}

/// Redis's `clusterGenClusterInfoString`.
pub fn info_text(c: &Cluster) -> String {
    let (mut assigned, mut ok, mut pfail, mut fail) = (0, 0, 0, 0);
    for owner in c.slots.iter().flatten() {
        assigned += 1;
        match c.nodes.get(owner) {
            Some(n) if n.failed() => fail += 1,
            Some(n) if n.timed_out() => pfail += 1,
            _ => ok += 1,
        }
    }
    let me = c.me();
    let my_epoch = match me.slaveof.as_deref().and_then(|m| c.nodes.get(m)) {
        Some(m) if me.is_replica() => m.config_epoch,
        _ => me.config_epoch,
    };
    let mut s = format!(
        "cluster_state:{}\r\ncluster_slots_assigned:{assigned}\r\ncluster_slots_ok:{ok}\r\n\
         cluster_slots_pfail:{pfail}\r\ncluster_slots_fail:{fail}\r\ncluster_known_nodes:{}\r\n\
         cluster_size:{}\r\ncluster_current_epoch:{}\r\ncluster_my_epoch:{my_epoch}\r\n",
        if c.state == State::Ok { "ok" } else { "fail" },
        c.nodes.len(),
        c.size,
        c.current_epoch,
    );
    for (dir, counts) in [("sent", &c.stats_sent), ("received", &c.stats_received)] {
        for (name, n) in MSG_TYPE_NAMES.iter().zip(counts.iter()) {
            if *n != 0 {
                s.push_str(&format!("cluster_stats_messages_{name}_{dir}:{n}\r\n"));
            }
        }
        s.push_str(&format!("cluster_stats_messages_{dir}:{}\r\n", counts.iter().sum::<u64>()));
    }
    s.push_str(&format!("total_cluster_links_buffer_limit_exceeded:{}\r\n", c.links_buffer_limit_exceeded));
    s
}

fn keyslot(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    cluster(ctx)?;
    ctx.out().int(key_hash_slot(&a[2]) as i64);
    Ok(())
}

fn links(ctx: &mut Ctx, _a: &[Bytes]) -> CmdResult {
    let c = cluster(ctx)?;
    let rows: Vec<(bool, String, u64)> =
        c.links.values().filter_map(|l| l.node.clone().map(|n| (l.inbound, n, l.ctime_ms))).collect();
    let out = ctx.out();
    out.array(rows.len());
    for (inbound, node, ctime) in rows {
        out.map(6);
        out.bulk_str("direction");
        out.bulk_str(if inbound { "from" } else { "to" });
        out.bulk_str("node");
        out.bulk_str(&node);
        out.bulk_str("create-time");
        out.int(ctime as i64);
        out.bulk_str("events");
        out.bulk_str(if inbound { "r" } else { "rw" });
        out.bulk_str("send-buffer-allocated");
        out.int(0);
        out.bulk_str("send-buffer-used");
        out.int(0);
    }
    Ok(())
}

fn meet(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    cluster(ctx)?;
    if a.len() != 4 && a.len() != 5 {
        return Err(CmdError::err("wrong number of arguments for 'cluster|meet' command"));
    }
    let text = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
    let port =
        int_arg(&a[3]).map_err(|_| CmdError::err(format!("Invalid TCP base port specified: {}", text(&a[3]))))?;
    let cport = match a.get(4) {
        Some(b) => int_arg(b).map_err(|_| CmdError::err(format!("Invalid TCP bus port specified: {}", text(b))))?,
        None => port + 10000,
    };
    let invalid = || CmdError::err(format!("Invalid node address specified: {}:{}", text(&a[2]), text(&a[3])));
    let ip = normalize_ip(&text(&a[2])).ok_or_else(invalid)?;
    if !(1..=65535).contains(&port) || !(1..=65535).contains(&cport) {
        return Err(invalid());
    }
    let now = ctx.srv.now.unix_ms;
    let srv = &mut *ctx.srv;
    let c = srv.cluster.as_deref_mut().ok_or_else(disabled)?;
    c.start_handshake(&mut srv.rng, &ip, port as u16, cport as u16, now);
    ctx.out().ok();
    Ok(())
}

/// An IPv4 or IPv6 address in its canonical form (Redis's inet_pton + inet_ntop); names are
/// refused.
pub fn normalize_ip(s: &str) -> Option<String> {
    s.parse::<crate::env::rt::IpAddr>().ok().map(|ip| ip.to_string())
}

fn myid(ctx: &mut Ctx, _a: &[Bytes]) -> CmdResult {
    let name = cluster(ctx)?.myself.clone();
    ctx.out().bulk_str(&name);
    Ok(())
}

fn nodes(ctx: &mut Ctx, _a: &[Bytes]) -> CmdResult {
    let c = cluster(ctx)?;
    let text = nodes_description(c, false);
    ctx.out().verbatim(text.as_bytes());
    Ok(())
}

fn replicas(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let c = cluster(ctx)?;
    let n = lookup(c, &a[2])?;
    if !n.is_master() {
        return Err(CmdError::err("The specified node is not a master"));
    }
    let lines: Vec<String> = n.replicas.iter().filter_map(|r| c.nodes.get(r)).map(|r| node_line(c, r)).collect();
    let out = ctx.out();
    out.array(lines.len());
    for l in lines {
        out.bulk_str(&l);
    }
    Ok(())
}

fn replicate(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let keys = ctx.srv.dbs[0].len();
    let c = cluster(ctx)?;
    let n = lookup(c, &a[2])?;
    if n.name == c.myself {
        return Err(CmdError::err("Can't replicate myself"));
    }
    if n.is_replica() {
        return Err(CmdError::err("I can only replicate a master, not a replica."));
    }
    if c.me().is_master() && (c.me().numslots != 0 || keys != 0) {
        return Err(CmdError::err("To set a master the node must be empty and without assigned slots."));
    }
    let name = n.name.clone();
    ctx.srv.cluster_set_master(&name);
    let c = cluster(ctx)?;
    c.todo_update_state = true;
    c.save_config_soon(false);
    ctx.out().ok();
    Ok(())
}

fn reset(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    cluster(ctx)?;
    let hard = match a.get(2) {
        None => false,
        Some(o) if eq_ic(o, "hard") => true,
        Some(o) if eq_ic(o, "soft") => false,
        Some(_) => return Err(CmdError::Syntax),
    };
    let master = cluster(ctx)?.me().is_master();
    if master && !ctx.srv.dbs[ctx.client.db].is_empty() {
        return Err(CmdError::err("CLUSTER RESET can't be called with master nodes containing keys"));
    }
    ctx.srv.cluster_reset(hard);
    ctx.out().ok();
    Ok(())
}

fn saveconfig(ctx: &mut Ctx, _a: &[Bytes]) -> CmdResult {
    cluster(ctx)?.save_config_soon(true);
    ctx.out().ok();
    Ok(())
}

fn set_config_epoch(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    cluster(ctx)?;
    let epoch = int_arg(&a[2])?;
    if epoch < 0 {
        return Err(CmdError::err(format!("Invalid config epoch specified: {epoch}")));
    }
    let c = cluster(ctx)?;
    if c.nodes.len() > 1 {
        return Err(CmdError::err(
            "The user can assign a config epoch only when the node does not know any other node.",
        ));
    }
    if c.me().config_epoch != 0 {
        return Err(CmdError::err("Node config epoch is already non-zero"));
    }
    c.me_mut().config_epoch = epoch as u64;
    c.current_epoch = c.current_epoch.max(epoch as u64);
    c.todo_update_state = true;
    c.save_config_soon(false);
    ctx.srv.log(Level::Warning, &format!("configEpoch set to {epoch} via CLUSTER SET-CONFIG-EPOCH"));
    ctx.out().ok();
    Ok(())
}

fn setslot(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let c = cluster(ctx)?;
    if c.me().is_replica() {
        return Err(CmdError::err("Please use SETSLOT only with masters."));
    }
    let slot = slot_arg(&a[2])?;
    let action = a[3].to_ascii_lowercase();
    let node_arg = |c: &Cluster, unknown: &str| -> Result<String, CmdError> {
        let name = String::from_utf8_lossy(&a[4]).into_owned();
        match c.nodes.get(&name) {
            None => Err(CmdError::err(format!("{unknown} {name}"))),
            Some(n) if n.is_replica() => Err(CmdError::err("Target node is not a master")),
            Some(n) => Ok(n.name.clone()),
        }
    };
    match (&action[..], a.len()) {
        (b"migrating", 5) => {
            if !c.i_own(slot) {
                return Err(CmdError::err(format!("I'm not the owner of hash slot {slot}")));
            }
            let n = node_arg(c, "I don't know about node")?;
            c.migrating_to.insert(slot, n);
        }
        (b"importing", 5) => {
            if c.i_own(slot) {
                return Err(CmdError::err(format!("I'm already the owner of hash slot {slot}")));
            }
            let n = node_arg(c, "I don't know about node")?;
            c.importing_from.insert(slot, n);
        }
        (b"stable", 4) => {
            c.importing_from.remove(&slot);
            c.migrating_to.remove(&slot);
        }
        (b"node", 5) => {
            let n = node_arg(c, "Unknown node")?;
            setslot_node(ctx, slot, &n)?;
        }
        _ => return Err(CmdError::err("Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP")),
    }
    let c = cluster(ctx)?;
    c.todo_update_state = true;
    c.save_config_soon(false);
    ctx.out().ok();
    Ok(())
}

/// SETSLOT <slot> NODE <node>: the end of a slot's move.
fn setslot_node(ctx: &mut Ctx, slot: u16, n: &str) -> CmdResult {
    let keys = ctx.srv.dbs[0].count_keys_in_slot(slot);
    let allow_migration = ctx.srv.config.get("cluster-allow-replica-migration") != Some("no");
    let c = cluster(ctx)?;
    let mine = c.i_own(slot);
    if mine && n != c.myself && keys != 0 {
        return Err(CmdError::err(format!(
            "Can't assign hashslot {slot} to a different node while I still hold keys for this hash slot."
        )));
    }
    if keys == 0 {
        c.migrating_to.remove(&slot);
    }
    c.del_slot(slot);
    c.add_slot(n, slot);
    if mine && n != c.myself && c.me().numslots == 0 && allow_migration {
        ctx.srv
            .log(Level::Warning, &format!("Configuration change detected. Reconfiguring myself as a replica of {n}"));
        ctx.srv.cluster_set_master(n);
        cluster(ctx)?.save_config_soon(true);
    }
    let c = cluster(ctx)?;
    if n == c.myself && c.importing_from.contains_key(&slot) {
        // A slot moved by hand: a new epoch lets the cluster learn the new owner.
        if c.bump_epoch_without_consensus() {
            ctx.srv.log(Level::Warning, &format!("configEpoch updated after importing slot {slot}"));
        }
        let c = cluster(ctx)?;
        c.importing_from.remove(&slot);
        let now = ctx.srv.now.unix_ms;
        ctx.srv.cluster_broadcast_pong(now);
    }
    Ok(())
}

/// One node as CLUSTER SLOTS lists it (Redis's `addNodeToNodeReply`).
fn slots_node(out: &mut crate::protocol::reply::ReplyBuf, n: &ClusterNode, preferred: u32) {
    out.array(4);
    match preferred {
        2 => out.null(),
        _ => out.bulk_str(&endpoint(n, preferred)),
    }
    out.int(n.port as i64);
    out.bulk_str(&n.name);
    let mut extra: Vec<(&str, &str)> = Vec::new();
    if preferred != 0 {
        extra.push(("ip", &n.ip));
    }
    if preferred != 1 && !n.hostname.is_empty() {
        extra.push(("hostname", &n.hostname));
    }
    out.map(extra.len());
    for (k, v) in extra {
        out.bulk_str(k);
        out.bulk_str(v);
    }
}

fn slots(ctx: &mut Ctx, _a: &[Bytes]) -> CmdResult {
    let preferred = crate::cluster::redirect::preferred_endpoint(&ctx.srv.config);
    let c = cluster(ctx)?;
    let mut rows: Vec<(u16, u16, Vec<ClusterNode>)> = Vec::new();
    for n in c.nodes.values().filter(|n| n.is_master() && n.numslots > 0) {
        let mut serving = vec![n.clone()];
        serving.extend(n.replicas.iter().filter_map(|r| c.nodes.get(r)).filter(|r| !r.failed()).cloned());
        for (start, end) in n.slots.ranges() {
            rows.push((start, end, serving.clone()));
        }
    }
    let out = ctx.out();
    out.array(rows.len());
    for (start, end, serving) in rows {
        out.array(2 + serving.len());
        out.int(start as i64);
        out.int(end as i64);
        for n in &serving {
            slots_node(out, n, preferred);
        }
    }
    Ok(())
}

fn shards(ctx: &mut Ctx, _a: &[Bytes]) -> CmdResult {
    let preferred = crate::cluster::redirect::preferred_endpoint(&ctx.srv.config);
    let my_offset = ctx.srv.cluster_repl_offset();
    let c = cluster(ctx)?;
    let masters: Vec<&ClusterNode> = c.nodes.values().filter(|n| n.is_master()).collect();
    // Per master: its slot ranges, then the master and its replicas.
    type Shard = (Vec<(u16, u16)>, Vec<ClusterNode>);
    let mut shards: Vec<Shard> = Vec::new();
    for m in masters {
        let mut members = vec![m.clone()];
        members.extend(m.replicas.iter().filter_map(|r| c.nodes.get(r)).cloned());
        shards.push((m.slots.ranges(), members));
    }
    let myself = c.myself.clone();
    let out = ctx.out();
    out.array(shards.len());
    for (ranges, members) in shards {
        out.map(2);
        out.bulk_str("slots");
        out.array(ranges.len() * 2);
        for (a, b) in ranges {
            out.int(a as i64);
            out.int(b as i64);
        }
        out.bulk_str("nodes");
        out.array(members.len());
        for n in &members {
            let offset = if n.name == myself { my_offset } else { n.repl_offset };
            let health = if n.failed() {
                "fail"
            } else if n.is_replica() && offset == 0 {
                "loading"
            } else {
                "online"
            };
            out.map(if n.hostname.is_empty() { 7 } else { 8 });
            out.bulk_str("id");
            out.bulk_str(&n.name);
            out.bulk_str("port");
            out.int(n.port as i64);
            out.bulk_str("ip");
            out.bulk_str(&n.ip);
            out.bulk_str("endpoint");
            out.bulk_str(&endpoint(n, preferred));
            if !n.hostname.is_empty() {
                out.bulk_str("hostname");
                out.bulk_str(&n.hostname);
            }
            out.bulk_str("role");
            out.bulk_str(if n.is_master() { "master" } else { "replica" });
            out.bulk_str("replication-offset");
            out.int(offset as i64);
            out.bulk_str("health");
            out.bulk_str(health);
        }
    }
    Ok(())
}

/// Whether a node's flags say it can take part in a vote (a master serving slots).
pub fn is_voting_master(n: &ClusterNode) -> bool {
    n.is_master() && n.numslots > 0 && !n.has(flag::HANDSHAKE)
}

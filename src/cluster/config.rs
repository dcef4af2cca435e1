//! nodes.conf and CLUSTER NODES share one line format per node (Redis's
//! `clusterGenNodeDescription`): name, `ip:port@cport[,hostname]`, flags, master, ping sent,
//! pong received, config epoch, link state, slots (and, for myself, the slots being migrated).
//! The file adds a `vars` line with the epochs, which must survive a restart: a node that
//! forgot its last vote could vote twice in one epoch.

use super::slots::format_ranges;
use super::{flag, Cluster, ClusterNode, State, CLUSTER_SLOTS};

const FLAG_NAMES: [(u16, &str); 8] = [
    (flag::MYSELF, "myself"),
    (flag::MASTER, "master"),
    (flag::SLAVE, "slave"),
    (flag::PFAIL, "fail?"),
    (flag::FAIL, "fail"),
    (flag::HANDSHAKE, "handshake"),
    (flag::NOADDR, "noaddr"),
    (flag::NOFAILOVER, "nofailover"),
];

/// Redis's `representClusterNodeFlags`.
pub fn flags_text(flags: u16) -> String {
    let names: Vec<&str> = FLAG_NAMES.iter().filter(|(f, _)| flags & f != 0).map(|(_, n)| *n).collect();
    if names.is_empty() {
        "noflags".into()
    } else {
        names.join(",")
    }
}

/// One node's line, without the newline.
pub fn node_line(c: &Cluster, n: &ClusterNode) -> String {
    let mut line = format!("{} {}:{}@{}", n.name, n.ip, n.port, n.cport);
    if !n.hostname.is_empty() {
        line.push(',');
        line.push_str(&n.hostname);
    }
    let master = n.slaveof.as_deref().unwrap_or("-");
    let epoch = match n.slaveof.as_deref().and_then(|m| c.nodes.get(m)) {
        Some(m) if n.is_replica() => m.config_epoch,
        _ => n.config_epoch,
    };
    let link = if n.link.is_some() || n.has(flag::MYSELF) { "connected" } else { "disconnected" };
    line.push_str(&format!(
        " {} {master} {} {} {epoch} {link}",
        flags_text(n.flags),
        n.ping_sent_ms,
        n.pong_received_ms
    ));
    if n.numslots > 0 {
        line.push(' ');
        line.push_str(&format_ranges(&n.slots.ranges(), " "));
    }
    if n.has(flag::MYSELF) {
        for s in 0..CLUSTER_SLOTS as u16 {
            if let Some(to) = c.migrating_to.get(&s) {
                line.push_str(&format!(" [{s}->-{to}]"));
            } else if let Some(from) = c.importing_from.get(&s) {
                line.push_str(&format!(" [{s}-<-{from}]"));
            }
        }
    }
    line
}

/// CLUSTER NODES: every node we know, handshakes included unless `skip_handshake`.
pub fn nodes_description(c: &Cluster, skip_handshake: bool) -> String {
    let mut out = String::new();
    for n in c.nodes.values() {
        if skip_handshake && n.in_handshake() {
            continue;
        }
        out.push_str(&node_line(c, n));
        out.push('\n');
    }
    out
}

/// The whole nodes.conf (Redis's `clusterSaveConfig` content).
pub fn render(c: &Cluster) -> String {
    let mut out = nodes_description(c, true);
    out.push_str(&format!("vars currentEpoch {} lastVoteEpoch {}\n", c.current_epoch, c.last_vote_epoch));
    out
}

/// A nodes.conf that cannot be used; Redis refuses to start on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub line: usize,
    pub reason: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// Redis's `clusterLoadConfig` over the file's text, into a fresh cluster: Ok(false) when the
/// file is empty (a new node), Ok(true) when it held a configuration.
pub fn load(c: &mut Cluster, text: &str, now_ms: u64) -> Result<bool, ConfigError> {
    if text.trim().is_empty() {
        return Ok(false);
    }
    let mut myself: Option<String> = None;
    c.nodes.clear();
    for (i, raw) in text.lines().enumerate() {
        let bad = |reason: &str| ConfigError { line: i + 1, reason: reason.to_string() };
        let argv: Vec<&str> = raw.split_whitespace().collect();
        if argv.is_empty() {
            continue;
        }
        if argv[0] == "vars" {
            if argv.len().is_multiple_of(2) {
                return Err(bad("odd vars line"));
            }
            for kv in argv[1..].chunks(2) {
                let v: u64 = kv[1].parse().map_err(|_| bad("bad vars value"))?;
                match kv[0] {
                    "currentEpoch" => c.current_epoch = v,
                    "lastVoteEpoch" => c.last_vote_epoch = v,
                    other => c.logln(2, format!("Skipping unknown cluster config variable '{other}'")),
                }
            }
            continue;
        }
        if argv.len() < 8 {
            return Err(bad("a node line needs 8 fields"));
        }
        let name = argv[0];
        if !super::valid_name(name.as_bytes()) {
            return Err(bad("bad node name"));
        }
        load_node(c, &argv, now_ms).map_err(|r| bad(&r))?;
        if c.nodes[name].has(flag::MYSELF) {
            if myself.is_some() {
                return Err(bad("two nodes flagged myself"));
            }
            myself = Some(name.to_string());
        }
    }
    let Some(me) = myself else {
        return Err(ConfigError { line: 0, reason: "no node flagged myself".into() });
    };
    c.myself = me;
    c.current_epoch = c.current_epoch.max(c.max_epoch());
    c.state = State::Fail;
    Ok(true)
}

fn load_node(c: &mut Cluster, argv: &[&str], now_ms: u64) -> Result<(), String> {
    let name = argv[0].to_string();
    c.nodes.entry(name.clone()).or_insert_with(|| ClusterNode::new(name.clone(), 0, now_ms));
    let (addr, hostname) = match argv[1].split_once(',') {
        Some((a, h)) => (a, h.to_string()),
        None => (argv[1], String::new()),
    };
    let (ipport, cport) = addr.split_once('@').ok_or("address without @cport")?;
    let (ip, port) = ipport.rsplit_once(':').ok_or("address without :port")?;
    let port: u16 = port.parse().map_err(|_| "bad port")?;
    let cport: u16 = cport.parse().map_err(|_| "bad bus port")?;
    let mut flags = 0;
    for f in argv[2].split(',') {
        flags |= match f {
            "noflags" => 0,
            "nofailover" => flag::NOFAILOVER,
            _ => FLAG_NAMES.iter().find(|(_, n)| *n == f).map(|(b, _)| *b).ok_or("unknown flag")?,
        };
    }
    let master = argv[3];
    if master != "-" {
        if !super::valid_name(master.as_bytes()) {
            return Err("bad master name".into());
        }
        c.nodes.entry(master.to_string()).or_insert_with(|| ClusterNode::new(master.to_string(), 0, now_ms));
    }
    let config_epoch: u64 = argv[6].parse().map_err(|_| "bad config epoch")?;
    let n = c.nodes.get_mut(&name).expect("inserted");
    n.ip = ip.to_string();
    n.port = port;
    n.cport = cport;
    n.hostname = hostname;
    n.flags = flags;
    n.config_epoch = config_epoch;
    // Timestamps restart from now: the old ones belong to another process's clock.
    if argv[4].parse::<u64>().unwrap_or(0) != 0 {
        n.ping_sent_ms = now_ms;
    }
    if argv[5].parse::<u64>().unwrap_or(0) != 0 {
        n.pong_received_ms = now_ms;
    }
    if master != "-" {
        n.slaveof = Some(master.to_string());
        c.add_replica(master, &name);
    }
    for spec in &argv[8..] {
        load_slot_spec(c, &name, spec)?;
    }
    Ok(())
}

fn load_slot_spec(c: &mut Cluster, name: &str, spec: &str) -> Result<(), String> {
    let slot = |s: &str| -> Result<u16, String> {
        s.parse::<u16>().ok().filter(|&v| (v as usize) < CLUSTER_SLOTS).ok_or_else(|| format!("bad slot '{s}'"))
    };
    if let Some(inner) = spec.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        if let Some((s, other)) = inner.split_once("->-") {
            c.migrating_to.insert(slot(s)?, other.to_string());
        } else if let Some((s, other)) = inner.split_once("-<-") {
            c.importing_from.insert(slot(s)?, other.to_string());
        } else {
            return Err(format!("bad migration spec '{spec}'"));
        }
        return Ok(());
    }
    let (a, b) = match spec.split_once('-') {
        Some((a, b)) => (slot(a)?, slot(b)?),
        None => (slot(spec)?, slot(spec)?),
    };
    for s in a..=b {
        c.add_slot(name, s);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::SeededRng;

    #[test]
    fn nodes_conf_round_trips() {
        let mut rng = SeededRng::from_seed(7);
        let mut c = Cluster::new(&mut rng, 1000);
        let me = c.myself.clone();
        c.me_mut().ip = "127.0.0.1".into();
        c.me_mut().port = 7000;
        c.me_mut().cport = 17000;
        c.me_mut().config_epoch = 3;
        for s in (0..=5460).chain([9000]) {
            c.add_slot(&me, s);
        }
        let other = super::super::random_name(&mut rng);
        let mut n = ClusterNode::new(other.clone(), flag::SLAVE, 1000);
        n.ip = "127.0.0.1".into();
        n.port = 7001;
        n.cport = 17001;
        n.hostname = "host-b".into();
        n.slaveof = Some(me.clone());
        c.nodes.insert(other.clone(), n);
        c.add_replica(&me, &other);
        c.migrating_to.insert(17, other.clone());
        c.current_epoch = 5;
        c.last_vote_epoch = 4;
        let text = render(&c);
        assert!(text.contains(&format!(
            "{me} 127.0.0.1:7000@17000 myself,master - 0 0 3 connected 0-5460 9000 [17->-{other}]"
        )));
        assert!(text.contains(&format!("{other} 127.0.0.1:7001@17001,host-b slave {me} 0 0 3 disconnected")));
        assert!(text.ends_with("vars currentEpoch 5 lastVoteEpoch 4\n"));
        let mut back = Cluster::new(&mut SeededRng::from_seed(1), 2000);
        assert_eq!(load(&mut back, &text, 2000), Ok(true));
        assert_eq!(back.myself, me);
        assert_eq!(render(&back), text);
        assert_eq!(back.me().numslots, 5462);
        assert_eq!(back.nodes[&me].replicas, vec![other]);
    }

    #[test]
    fn corrupt_configs_name_the_line() {
        let mut c = Cluster::new(&mut SeededRng::from_seed(1), 0);
        let err = load(&mut c, "vars currentEpoch 1 lastVoteEpoch 0\nabc 1 2\n", 0).unwrap_err();
        assert_eq!(err.line, 2);
        let name = "a".repeat(40);
        let err = load(&mut c, &format!("{name} 127.0.0.1:1@2 master - 0 0 0 connected\n"), 0).unwrap_err();
        assert_eq!(err.reason, "no node flagged myself");
        let err = load(&mut c, &format!("{name} 127.0.0.1:1@2 myself,master - 0 0 0 connected 99999\n"), 0);
        assert_eq!(err.unwrap_err().reason, "bad slot '99999'");
        assert_eq!(load(&mut c, "\n", 0), Ok(false));
    }
}

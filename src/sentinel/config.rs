//! The sentinel's config file: the server directives it uses (port, bind, dir, logfile,
//! pidfile), the `sentinel ...` statements (Redis's `sentinelHandleConfiguration`), and the
//! rewrite that stores the sentinel's state (myid, epochs, known replicas and sentinels) so a
//! restarted sentinel neither forgets its vote nor the topology (Redis's `rewriteConfigSentinelOption`).

use super::{Addr, Instance, Kind, Sentinel, DEFAULT_FAILOVER_TIMEOUT, DEFAULT_PARALLEL_SYNCS, DEFAULT_PORT};

/// The non-sentinel part of the config.
#[derive(Debug, Clone)]
pub struct ServerConf {
    pub port: u16,
    pub bind: Vec<String>,
    pub dir: String,
    pub logfile: String,
    pub pidfile: String,
    /// Lines kept as they were, written back first by the rewrite.
    pub other_lines: Vec<String>,
}

impl Default for ServerConf {
    fn default() -> Self {
        ServerConf {
            port: DEFAULT_PORT,
            bind: Vec::new(),
            dir: String::new(),
            logfile: String::new(),
            pidfile: String::new(),
            other_lines: Vec::new(),
        }
    }
}

/// A config error as Redis reports it: the line number, the line, and the reason.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfError {
    pub line: usize,
    pub text: String,
    pub reason: String,
}

impl std::fmt::Display for ConfError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Reading the configuration file, at line {}\n>>> '{}'\n{}", self.line, self.text, self.reason)
    }
}

fn unquote(tok: &str) -> String {
    let t = tok.trim();
    if t.len() >= 2 && ((t.starts_with('"') && t.ends_with('"')) || (t.starts_with('\'') && t.ends_with('\''))) {
        t[1..t.len() - 1].to_string()
    } else {
        t.to_string()
    }
}

fn quote(s: &str) -> String {
    if s.is_empty() || s.contains([' ', '"', '\'']) {
        format!("\"{}\"", s.replace('"', "\\\""))
    } else {
        s.to_string()
    }
}

/// Reads `text` into `conf` and `sentinel`. `now` stamps the instances it creates.
pub fn load(text: &str, conf: &mut ServerConf, sentinel: &mut Sentinel, now: u64) -> Result<(), ConfError> {
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let args = crate::protocol::parser::split_args(line.as_bytes())
            .map(|v| v.into_iter().map(|a| String::from_utf8_lossy(&a).into_owned()).collect::<Vec<_>>())
            .ok_or_else(|| ConfError {
                line: i + 1,
                text: raw.to_string(),
                reason: "Unbalanced quotes in configuration line".into(),
            })?;
        let err = |reason: &str| ConfError { line: i + 1, text: raw.to_string(), reason: reason.to_string() };
        let name = args[0].to_ascii_lowercase();
        match name.as_str() {
            "sentinel" => statement(&args[1..], sentinel, now).map_err(|r| err(&r))?,
            "port" => conf.port = args.get(1).and_then(|p| p.parse().ok()).ok_or_else(|| err("Invalid port"))?,
            "bind" => conf.bind = args[1..].to_vec(),
            "dir" => conf.dir = args.get(1).cloned().unwrap_or_default(),
            "logfile" => conf.logfile = args.get(1).map(|s| unquote(s)).unwrap_or_default(),
            "pidfile" => conf.pidfile = args.get(1).cloned().unwrap_or_default(),
            _ => conf.other_lines.push(line.to_string()),
        }
    }
    Ok(())
}

/// One `sentinel <option> ...` statement.
pub fn statement(a: &[String], s: &mut Sentinel, now: u64) -> Result<(), String> {
    let unrecognized = || "Unrecognized sentinel configuration statement.".to_string();
    let Some(opt) = a.first().map(|o| o.to_ascii_lowercase()) else { return Err(unrecognized()) };
    let num = |v: &String| v.parse::<u64>().map_err(|_| unrecognized());
    let master = |s: &mut Sentinel, name: &str| -> Result<(), String> {
        if s.masters.contains_key(name) {
            Ok(())
        } else {
            Err("No such master with specified name.".into())
        }
    };
    match (opt.as_str(), a.len()) {
        ("monitor", 5) => {
            let quorum: u32 = a[4].parse().map_err(|_| unrecognized())?;
            let port: u16 = a[3].parse().map_err(|_| "Invalid port number".to_string())?;
            s.monitor(&a[1], Addr::new(&a[2], port), quorum, now)?;
        }
        ("down-after-milliseconds", 3) => {
            master(s, &a[1])?;
            let v = num(&a[2])?;
            s.masters.get_mut(&a[1]).expect("checked").down_after = v.max(1);
        }
        ("failover-timeout", 3) => {
            master(s, &a[1])?;
            s.masters.get_mut(&a[1]).expect("checked").failover_timeout = num(&a[2])?.max(1);
        }
        ("parallel-syncs", 3) => {
            master(s, &a[1])?;
            s.masters.get_mut(&a[1]).expect("checked").parallel_syncs = num(&a[2])? as u32;
        }
        ("auth-pass", 3) => {
            master(s, &a[1])?;
            s.masters.get_mut(&a[1]).expect("checked").auth_pass = Some(a[2].clone());
        }
        ("auth-user", 3) => {
            master(s, &a[1])?;
            s.masters.get_mut(&a[1]).expect("checked").auth_user = Some(a[2].clone());
        }
        ("current-epoch", 2) => {
            let e = num(&a[1])?;
            s.current_epoch = s.current_epoch.max(e);
        }
        ("myid", 2) => {
            if a[1].len() != 40 {
                return Err("Malformed Sentinel id in myid option.".into());
            }
            s.myid = a[1].clone();
        }
        ("config-epoch", 3) => {
            master(s, &a[1])?;
            let e = num(&a[2])?;
            s.masters.get_mut(&a[1]).expect("checked").config_epoch = e;
            s.current_epoch = s.current_epoch.max(e);
        }
        ("leader-epoch", 3) => {
            master(s, &a[1])?;
            let e = num(&a[2])?;
            s.masters.get_mut(&a[1]).expect("checked").leader_epoch = e;
        }
        ("known-slave" | "known-replica", 4) => {
            master(s, &a[1])?;
            let port: u16 = a[3].parse().map_err(|_| "Invalid port number".to_string())?;
            let addr = Addr::new(&a[2], port);
            s.masters
                .get_mut(&a[1])
                .expect("checked")
                .replicas
                .insert(addr.clone(), Instance::new(Kind::Replica, addr, now));
        }
        ("known-sentinel", 4 | 5) => {
            master(s, &a[1])?;
            let port: u16 = a[3].parse().map_err(|_| "Invalid port number".to_string())?;
            let addr = Addr::new(&a[2], port);
            let mut si = Instance::new(Kind::Sentinel, addr.clone(), now);
            si.runid = a.get(4).cloned();
            s.masters.get_mut(&a[1]).expect("checked").sentinels.insert(addr, si);
        }
        ("announce-ip", 2) => s.announce_ip = a[1].clone(),
        ("announce-port", 2) => s.announce_port = a[1].parse().map_err(|_| unrecognized())?,
        ("resolve-hostnames", 2) => s.resolve_hostnames = yes(&a[1])?,
        ("announce-hostnames", 2) => s.announce_hostnames = yes(&a[1])?,
        ("deny-scripts-reconfig", 2) => s.deny_scripts_reconfig = yes(&a[1])?,
        ("notification-script" | "client-reconfig-script", 3) => {
            return Err("Sentinel scripts are not supported by redsim.".into());
        }
        ("rename-command", 4) | ("master-reboot-down-after-period", 3) | ("sentinel-user" | "sentinel-pass", 2) => {
            if a.len() == 3 || a.len() == 4 {
                master(s, &a[1])?;
            }
        }
        _ => return Err(unrecognized()),
    }
    Ok(())
}

fn yes(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err("Please specify yes or no".into()),
    }
}

/// The whole file as the sentinel rewrites it: the lines it keeps, then its state.
pub fn rewrite(conf: &ServerConf, s: &Sentinel) -> String {
    let mut out = String::new();
    out.push_str(&format!("port {}\n", conf.port));
    if !conf.bind.is_empty() {
        out.push_str(&format!("bind {}\n", conf.bind.join(" ")));
    }
    if !conf.dir.is_empty() {
        out.push_str(&format!("dir {}\n", quote(&conf.dir)));
    }
    if !conf.logfile.is_empty() {
        out.push_str(&format!("logfile {}\n", quote(&conf.logfile)));
    }
    if !conf.pidfile.is_empty() {
        out.push_str(&format!("pidfile {}\n", quote(&conf.pidfile)));
    }
    for l in &conf.other_lines {
        out.push_str(l);
        out.push('\n');
    }
    out.push_str("\n# Generated by CONFIG REWRITE\n");
    out.push_str(&format!("sentinel myid {}\n", s.myid));
    if !s.announce_ip.is_empty() {
        out.push_str(&format!("sentinel announce-ip {}\n", quote(&s.announce_ip)));
    }
    if s.announce_port != 0 {
        out.push_str(&format!("sentinel announce-port {}\n", s.announce_port));
    }
    if s.resolve_hostnames {
        out.push_str("sentinel resolve-hostnames yes\n");
    }
    if s.announce_hostnames {
        out.push_str("sentinel announce-hostnames yes\n");
    }
    for m in s.masters.values() {
        let n = &m.name;
        out.push_str(&format!("sentinel monitor {n} {} {} {}\n", m.addr().ip, m.addr().port, m.quorum));
        if m.down_after != super::DEFAULT_DOWN_AFTER {
            out.push_str(&format!("sentinel down-after-milliseconds {n} {}\n", m.down_after));
        }
        if m.failover_timeout != DEFAULT_FAILOVER_TIMEOUT {
            out.push_str(&format!("sentinel failover-timeout {n} {}\n", m.failover_timeout));
        }
        if m.parallel_syncs != DEFAULT_PARALLEL_SYNCS {
            out.push_str(&format!("sentinel parallel-syncs {n} {}\n", m.parallel_syncs));
        }
        if let Some(u) = &m.auth_user {
            out.push_str(&format!("sentinel auth-user {n} {}\n", quote(u)));
        }
        if let Some(p) = &m.auth_pass {
            out.push_str(&format!("sentinel auth-pass {n} {}\n", quote(p)));
        }
        out.push_str(&format!("sentinel config-epoch {n} {}\n", m.config_epoch));
        out.push_str(&format!("sentinel leader-epoch {n} {}\n", m.leader_epoch));
        for r in m.replicas.keys() {
            out.push_str(&format!("sentinel known-replica {n} {} {}\n", r.ip, r.port));
        }
        for (a, si) in &m.sentinels {
            if a.port == 0 {
                continue;
            }
            match &si.runid {
                Some(id) => out.push_str(&format!("sentinel known-sentinel {n} {} {} {id}\n", a.ip, a.port)),
                None => out.push_str(&format!("sentinel known-sentinel {n} {} {}\n", a.ip, a.port)),
            }
        }
    }
    out.push_str(&format!("sentinel current-epoch {}\n", s.current_epoch));
    out
}

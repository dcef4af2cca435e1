//! REPLICAOF/SLAVEOF, REPLCONF, PSYNC/SYNC, ROLE and WAIT (Redis's `replication.c`
//! commands). The master's side of a full sync forks a snapshot through the server's forker;
//! its driver sends the RDB, then the stream buffered meanwhile.

use bytes::Bytes;

use super::{eq_ic, int_arg, CmdError, CmdResult, Ctx, Handler};
use crate::replication::master::{parse_replconf, Replconf, ReplconfOption};
use crate::replication::{PsyncAnswer, ReplicaInfo, SyncState};
use crate::server::blocking::BlockedOp;
use crate::server::client::ReplRole;
use crate::server::log::Level;

pub static COMMANDS: &[(&str, Handler)] = &[
    ("replicaof", replicaof),
    ("slaveof", replicaof),
    ("replconf", replconf),
    ("psync", psync),
    ("sync", psync),
    ("role", role),
    ("wait", wait),
    ("failover", failover),
];

/// How the log names a client (`catClientInfoString`'s short form Redis uses in these lines).
fn client_desc(ctx: &Ctx) -> String {
    format!(
        "id={} addr={} laddr={} fd=0 name={}",
        ctx.client.id,
        ctx.client.addr,
        ctx.client.laddr,
        ctx.client.name.as_ref().map(|n| String::from_utf8_lossy(n).into_owned()).unwrap_or_default()
    )
}

fn replicaof(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    if eq_ic(&a[1], "no") && eq_ic(&a[2], "one") {
        if ctx.srv.is_replica() {
            ctx.srv.become_master();
            let who = client_desc(ctx);
            ctx.srv.log(Level::Notice, &format!("MASTER MODE enabled (user request from '{who}')"));
        }
        ctx.out().ok();
        return Ok(());
    }
    if ctx.client.repl_role == ReplRole::Replica {
        return Err(CmdError::Other("ERR Command is not valid when client is a replica.".into()));
    }
    let port = match int_arg(&a[2]) {
        Ok(p) if (0..=65535).contains(&p) => p as u16,
        _ => return Err(CmdError::Other("ERR Invalid master port".into())),
    };
    let host = String::from_utf8_lossy(&a[1]).into_owned();
    if let Some(m) = &ctx.srv.repl.master {
        if m.host.eq_ignore_ascii_case(&host) && m.port == port {
            ctx.srv.log(
                Level::Notice,
                "REPLICAOF would result into synchronization with the master we are already connected with. No \
                 operation performed.",
            );
            ctx.out().simple("OK Already connected to specified master");
            return Ok(());
        }
    }
    ctx.srv.become_replica(host.clone(), port);
    let who = client_desc(ctx);
    ctx.srv.log(Level::Notice, &format!("REPLICAOF {host}:{port} enabled (user request from '{who}')"));
    ctx.out().ok();
    Ok(())
}

fn replconf(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let args: Vec<&[u8]> = a[1..].iter().map(|b| &b[..]).collect();
    match parse_replconf(&args).map_err(CmdError::Other)? {
        Replconf::Ack { offset } => {
            // No reply: the master is not supposed to answer its replicas' ACKs.
            if ctx.client.repl_role == ReplRole::Replica {
                let now = ctx.srv.now.mono_ms;
                if ctx.srv.repl.replicas.get(ctx.client.id).is_some_and(|r| r.stream_on_ack) {
                    let pending = ctx.srv.start_streaming(ctx.client.id);
                    ctx.client.out.buf.extend_from_slice(&pending);
                }
                ctx.srv.repl.replicas.ack(ctx.client.id, offset, now);
                ctx.srv.serve_wait_clients();
                ctx.srv.update_failover_status();
            }
        }
        Replconf::GetAck => {
            // Only a master asks; the replica's link answers it (see replication::link).
        }
        Replconf::Options(opts) => {
            for o in opts {
                match o {
                    ReplconfOption::ListeningPort(p) => ctx.client.repl_announce.listening_port = p,
                    ReplconfOption::IpAddress(ip) => ctx.client.repl_announce.ip = Some(ip),
                    ReplconfOption::Capa(c) if c == "eof" => ctx.client.repl_announce.capa_eof = true,
                    ReplconfOption::Capa(c) if c == "psync2" => ctx.client.repl_announce.capa_psync2 = true,
                    ReplconfOption::Capa(_) | ReplconfOption::Ignored => {}
                }
            }
            ctx.out().ok();
        }
    }
    Ok(())
}

/// SYNC and PSYNC (Redis's `syncCommand`).
fn psync(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    if ctx.client.repl_role == ReplRole::Replica {
        return Ok(());
    }
    // `PSYNC replid offset FAILOVER`: our master hands over to us (its FAILOVER command),
    // provided we follow its history; then the PSYNC goes on as from any replica.
    if a.len() > 3 && eq_ic(&a[0], "psync") && eq_ic(&a[3], "failover") {
        if !ctx.srv.is_replica() {
            return Err(CmdError::Other("ERR PSYNC FAILOVER can't be sent to a master.".into()));
        }
        if a[1] != ctx.srv.repl.state.replid.as_bytes() {
            return Err(CmdError::Other("ERR PSYNC FAILOVER replid must match my replid.".into()));
        }
        ctx.srv.become_master();
        let who = client_desc(ctx);
        ctx.srv.log(Level::Notice, &format!("MASTER MODE enabled (failover request from '{who}')"));
    }
    if let Some(m) = &ctx.srv.repl.master {
        if m.state != crate::replication::LinkState::Connected {
            return Err(CmdError::Other("NOMASTERLINK Can't SYNC while not connected with my master".into()));
        }
    }
    let ip =
        ctx.client.repl_announce.ip.clone().unwrap_or_else(|| {
            ctx.client.addr.rsplit_once(':').map_or(ctx.client.addr.clone(), |(ip, _)| ip.to_string())
        });
    let mut info = ReplicaInfo::new(ctx.client.id, ip, ctx.srv.now.mono_ms);
    info.listening_port = ctx.client.repl_announce.listening_port;
    info.capa_eof = ctx.client.repl_announce.capa_eof;
    info.capa_psync2 = ctx.client.repl_announce.capa_psync2;
    let name = info.name();
    ctx.srv.log(Level::Notice, &format!("Replica {name} asks for synchronization"));
    let is_psync = eq_ic(&a[0], "psync");
    if is_psync {
        let replid = String::from_utf8_lossy(&a[1]).into_owned();
        let offset = crate::util::arg_i64(&a[2]).unwrap_or(-1);
        match ctx.srv.repl.state.try_partial(&replid, offset, &name) {
            PsyncAnswer::Continue { from } => {
                continue_partial(ctx, info, from);
                return Ok(());
            }
            PsyncAnswer::Full { why: Some(why) } => {
                ctx.srv.repl.stats.sync_partial_err += 1;
                ctx.srv.log(Level::Notice, &why);
            }
            PsyncAnswer::Full { why: None } => {
                ctx.srv.log(Level::Notice, &format!("Full resync requested by replica {name}"));
            }
        }
    }
    ctx.srv.repl.stats.sync_full += 1;
    ctx.srv.ensure_backlog();
    // The stream after the snapshot starts with a SELECT.
    ctx.srv.repl.state.stream_db = None;
    let eof = info.capa_eof;
    info.psync = is_psync;
    ctx.client.repl_role = ReplRole::Replica;
    ctx.srv.attach_replica(info);
    if ctx.srv.config.get("repl-diskless-sync") == Some("no") {
        full_sync_to_disk(ctx);
        return Ok(());
    }
    if is_psync {
        let line = format!("+FULLRESYNC {} {}\r\n", ctx.srv.repl.state.replid, ctx.srv.repl.state.master_repl_offset);
        ctx.client.out.buf.extend_from_slice(line.as_bytes());
    }
    let mark = eof.then(|| {
        let mut m = [0u8; 40];
        let mut raw = [0u8; 20];
        crate::env::Rng::fill(&mut ctx.srv.rng, &mut raw);
        for (i, b) in raw.iter().enumerate() {
            m[2 * i..2 * i + 2].copy_from_slice(format!("{b:02x}").as_bytes());
        }
        m
    });
    match ctx.srv.start_replica_sync(ctx.client.id, mark) {
        Ok(pid) => {
            ctx.srv.log(Level::Notice, &format!("Starting BGSAVE for SYNC with target: replicas sockets (pid {pid})"));
            if let Some(r) = ctx.srv.repl.replicas.get_mut(ctx.client.id) {
                r.state = SyncState::SendBulk;
            }
        }
        Err(e) => {
            ctx.srv.log(Level::Warning, &format!("Can't start BGSAVE for SYNC: {e}"));
            ctx.client.close_asap = true;
        }
    }
    Ok(())
}

/// A full sync through the RDB file (Redis's `startBgsaveForReplication` with target disk):
/// share a BGSAVE made for other replicas that is still running, else wait for the next one
/// when another child runs, else start one now.
fn full_sync_to_disk(ctx: &mut Ctx) {
    let id = ctx.client.id;
    let srv = &mut *ctx.srv;
    if let Some(d) = srv.repl.disk_sync.clone() {
        let donor = srv
            .repl
            .replicas
            .iter()
            .find(|r| r.client_id != id && r.state == SyncState::WaitBgsave && !r.waiting_next_bgsave)
            .map(|r| r.client_id);
        if let Some(donor) = donor {
            let buffered = srv.repl.pending.get(&donor).cloned().unwrap_or_default();
            srv.repl.pending.insert(id, buffered);
            let line = srv.fullresync_line(id, &d.replid, d.offset);
            ctx.client.out.buf.extend_from_slice(&line);
            srv.log(Level::Notice, "Waiting for end of BGSAVE for SYNC");
            return;
        }
    }
    if let Some(r) = srv.repl.replicas.get_mut(id) {
        r.waiting_next_bgsave = true;
    }
    srv.repl.pending.remove(&id);
    if srv.rdb_child_running() {
        srv.log(Level::Notice, "Can't attach the replica to the current BGSAVE. Waiting for next BGSAVE for SYNC");
        return;
    }
    srv.start_disk_sync(Some((id, &mut ctx.client.out.buf)));
    if srv.repl.disk_sync.is_none() {
        ctx.client.close_asap = true;
    }
}

/// `+CONTINUE`: the replica gets the backlog from its offset and is online at once.
fn continue_partial(ctx: &mut Ctx, mut info: ReplicaInfo, from: u64) {
    let name = info.name();
    let psync2 = info.capa_psync2;
    info.state = SyncState::Online;
    ctx.client.repl_role = ReplRole::Replica;
    let line = if psync2 { format!("+CONTINUE {}\r\n", ctx.srv.repl.state.replid) } else { "+CONTINUE\r\n".into() };
    ctx.client.out.buf.extend_from_slice(line.as_bytes());
    let backlog = ctx.srv.repl.state.backlog.as_ref().expect("a partial resync needs the backlog");
    let (x, y) = backlog.since(from).expect("checked by try_partial");
    let sent = x.len() + y.len();
    ctx.client.out.buf.extend_from_slice(x);
    ctx.client.out.buf.extend_from_slice(y);
    ctx.srv.attach_replica(info);
    ctx.srv.repl.pending.remove(&ctx.client.id);
    ctx.srv.repl.stats.sync_partial_ok += 1;
    ctx.srv.log(
        Level::Notice,
        &format!(
            "Partial resynchronization request from {name} accepted. Sending {sent} bytes of backlog starting from \
             offset {from}."
        ),
    );
}

fn role(ctx: &mut Ctx, _a: &[Bytes]) -> CmdResult {
    let srv = &*ctx.srv;
    match &srv.repl.master {
        None => {
            let online: Vec<(String, u16, u64)> = srv
                .repl
                .replicas
                .iter()
                .filter(|r| r.state == SyncState::Online)
                .map(|r| (r.ip.clone(), r.listening_port, r.ack_offset))
                .collect();
            let offset = srv.repl.state.master_repl_offset;
            let out = &mut ctx.client.out;
            out.array(3);
            out.bulk(b"master");
            out.int(offset as i64);
            out.array(online.len());
            for (ip, port, off) in online {
                out.array(3);
                out.bulk(ip.as_bytes());
                out.bulk(port.to_string().as_bytes());
                out.bulk(off.to_string().as_bytes());
            }
        }
        Some(m) => {
            let (host, port, state) = (m.host.clone(), m.port, m.state);
            let offset = if srv.repl.master_client.is_some() { srv.repl.state.master_repl_offset as i64 } else { -1 };
            let out = &mut ctx.client.out;
            out.array(5);
            out.bulk(b"slave");
            out.bulk(host.as_bytes());
            out.int(i64::from(port));
            out.bulk(state.role_name().as_bytes());
            out.int(offset);
        }
    }
    Ok(())
}

/// WAIT numreplicas timeout: blocks until that many replicas acknowledged this client's
/// last write, or the timeout; replies with how many did.
fn wait(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    if ctx.srv.is_replica() {
        return Err(CmdError::Other(
            "ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is \
             configured to be writable (which is not the default) writes to replicas are just local and are not \
             propagated."
                .into(),
        ));
    }
    let numreplicas = int_arg(&a[1])?;
    let timeout = match crate::util::arg_i64(&a[2]) {
        None => return Err(CmdError::Other("ERR timeout is not an integer or out of range".into())),
        Some(t) if t < 0 => return Err(CmdError::Other("ERR timeout is negative".into())),
        Some(t) => t as u64,
    };
    let offset = ctx.client.woff;
    let acked = ctx.srv.repl.replicas.acked_at_least(offset);
    if acked as i64 >= numreplicas || ctx.client.deny_blocking() {
        ctx.out().int(acked as i64);
        return Ok(());
    }
    let deadline = if timeout == 0 { 0 } else { ctx.srv.now.unix_ms + timeout };
    let srv = &mut *ctx.srv;
    srv.block_client(ctx.client, &[], deadline, BlockedOp::Wait { offset, numreplicas });
    srv.repl.get_ack_requested = true;
    Ok(())
}

/// FAILOVER [TO host port [FORCE]] [ABORT] [TIMEOUT ms] (Redis's `failoverCommand`): checks
/// and starts a coordinated failover; the rest happens as replicas acknowledge (see
/// `server::failover`).
fn failover(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    if a.len() == 2 && eq_ic(&a[1], "abort") {
        if ctx.srv.repl.failover.is_none() {
            return Err(CmdError::Other("ERR No failover in progress.".into()));
        }
        ctx.srv.abort_failover("Failover manually aborted");
        ctx.out().ok();
        return Ok(());
    }
    let (mut timeout_ms, mut force, mut target) = (0i64, false, None::<(String, i64)>);
    let mut j = 1;
    while j < a.len() {
        if eq_ic(&a[j], "timeout") && j + 1 < a.len() && timeout_ms == 0 {
            timeout_ms = int_arg(&a[j + 1])?;
            if timeout_ms <= 0 {
                return Err(CmdError::Other("ERR FAILOVER timeout must be greater than 0".into()));
            }
            j += 2;
        } else if eq_ic(&a[j], "to") && j + 2 < a.len() && target.is_none() {
            let port = int_arg(&a[j + 2])?;
            target = Some((String::from_utf8_lossy(&a[j + 1]).into_owned(), port));
            j += 3;
        } else if eq_ic(&a[j], "force") && !force {
            force = true;
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let srv = &mut *ctx.srv;
    if srv.repl.failover.is_some() {
        return Err(CmdError::Other("ERR FAILOVER already in progress.".into()));
    }
    if srv.is_replica() {
        return Err(CmdError::Other("ERR FAILOVER is not valid when server is a replica.".into()));
    }
    if srv.repl.replicas.is_empty() {
        return Err(CmdError::Other("ERR FAILOVER requires connected replicas.".into()));
    }
    if force && (timeout_ms == 0 || target.is_none()) {
        return Err(CmdError::Other(
            "ERR FAILOVER with force option requires both a timeout and target HOST and IP.".into(),
        ));
    }
    let target = match target {
        Some((host, port)) => match srv.repl.replicas.by_addr(&host, port) {
            None => return Err(CmdError::Other("ERR FAILOVER target HOST and PORT is not a replica.".into())),
            Some(r) if r.state != SyncState::Online => {
                return Err(CmdError::Other("ERR FAILOVER target replica is not online.".into()))
            }
            Some(r) => Some((host, r.listening_port)),
        },
        None => None,
    };
    srv.start_failover(target, (timeout_ms > 0).then_some(timeout_ms as u64), force);
    ctx.out().ok();
    ctx.srv.update_failover_status();
    Ok(())
}

//! CONFIG GET, SET, RESETSTAT, REWRITE, HELP. The directives and their rules live in
//! `server::config`; this is the command surface and the effects of a change on the server.

use bytes::Bytes;

use super::{reply_help, CmdError, CmdResult, Ctx};
use crate::persistence::snapshot::{DiskJob, DiskJobKind};

const CONFIG_HELP: &[&str] = &[
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>",
    "    Set the configuration <directive> to <value>.",
    "RESETSTAT",
    "    Reset statistics reported by the INFO command.",
    "REWRITE",
    "    Rewrite the configuration file.",
];

pub fn help(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    reply_help(ctx, &a[0], CONFIG_HELP);
    Ok(())
}

pub fn get(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let patterns: Vec<&[u8]> = a[2..].iter().map(|b| &b[..]).collect();
    let pairs = ctx.srv.config.get_matching(&patterns);
    let out = &mut ctx.client.out;
    out.map(pairs.len());
    for (name, value) in pairs {
        out.bulk(&name);
        out.bulk_str(&value);
    }
    Ok(())
}

pub fn set(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    if a.len() % 2 == 1 {
        return Err(CmdError::Syntax);
    }
    let pairs: Vec<(&[u8], &[u8])> = a[2..].chunks(2).map(|p| (&p[0][..], &p[1][..])).collect();
    let local = ctx.client.is_local();
    let changed = ctx.srv.config.set_pairs(&pairs, local).map_err(|e| CmdError::Other(e.text()))?;
    if changed.contains(&"maxmemory") && ctx.srv.config.hot.maxmemory > 0 {
        ctx.srv.perform_evictions();
    }
    if changed.contains(&"repl-backlog-size") {
        // Redis's `resizeReplicationBacklog`: the newest bytes that fit stay.
        let size = ctx.srv.config.hot.repl_backlog_size as usize;
        if let Some(b) = ctx.srv.repl.state.backlog.as_mut() {
            b.resize(size);
        }
    }
    ctx.out().ok();
    Ok(())
}

pub fn resetstat(ctx: &mut Ctx, _a: &[Bytes]) -> CmdResult {
    let peak = ctx.srv.sys.used_memory();
    ctx.srv.stats = crate::server::Stats { peak_memory: peak, ..Default::default() };
    for s in ctx.srv.cmd_stats.iter_mut() {
        *s = Default::default();
    }
    for h in ctx.srv.cmd_latency.iter_mut() {
        *h = Default::default();
    }
    ctx.out().ok();
    Ok(())
}

/// CONFIG REWRITE: the plan is made here from the running values; the driver reads the old
/// file, applies it and writes the new one before the reply (see `config::rewrite`).
pub fn rewrite(ctx: &mut Ctx, _a: &[Bytes]) -> CmdResult {
    if ctx.srv.config_file.is_empty() {
        return Err(CmdError::err("The server is running without a config file"));
    }
    let facts = crate::server::config::rewrite::Facts {
        dir: ctx.srv.config.get("dir").unwrap_or("").to_string(),
        master: ctx.srv.repl.master.as_ref().map(|m| (m.host.clone(), m.port)),
    };
    let plan = crate::server::config::rewrite::plan(&ctx.srv.config, &facts);
    let path = ctx.srv.config_file.clone();
    ctx.srv.rdb.job = Some(DiskJob::for_client(ctx.client, DiskJobKind::ConfigRewrite { path, plan }));
    Ok(())
}

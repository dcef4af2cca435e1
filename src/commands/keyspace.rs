//! Keyspace commands (Redis's `db.c`): existence, deletion, databases.

use bytes::Bytes;

use super::{int_arg, CmdError, CmdResult, Ctx, Handler};

pub static COMMANDS: &[(&str, Handler)] = &[
    ("del", del),
    ("unlink", del),
    ("exists", exists),
    ("type", type_cmd),
    ("dbsize", dbsize),
    ("flushdb", flushdb),
    ("flushall", flushall),
    ("select", select),
];

fn del(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let db = ctx.db_index();
    let mut n = 0;
    for key in &a[1..] {
        ctx.expire_if_needed(key);
        if ctx.srv.dbs[db].delete(key).is_some() {
            n += 1;
        }
    }
    ctx.dirty(n);
    ctx.out().int(n as i64);
    Ok(())
}

fn exists(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let mut n = 0;
    for key in &a[1..] {
        if ctx.exists(key) {
            n += 1;
        }
    }
    ctx.out().int(n);
    Ok(())
}

fn type_cmd(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let name = match ctx.exists(&a[1]) {
        true => ctx.srv.dbs[ctx.db_index()].get(&a[1]).map(|o| o.val.type_name()).unwrap_or("none"),
        false => "none",
    };
    ctx.out().simple(name);
    Ok(())
}

fn dbsize(ctx: &mut Ctx, _a: &[Bytes]) -> CmdResult {
    let n = ctx.srv.dbs[ctx.db_index()].len();
    ctx.out().int(n as i64);
    Ok(())
}

/// FLUSHDB/FLUSHALL's optional ASYNC|SYNC.
fn parse_flush_flags(a: &[Bytes]) -> Result<(), CmdError> {
    match a.len() {
        1 => Ok(()),
        2 if a[1].eq_ignore_ascii_case(b"async") || a[1].eq_ignore_ascii_case(b"sync") => Ok(()),
        _ => Err(CmdError::Syntax),
    }
}

fn flushdb(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    parse_flush_flags(a)?;
    let db = ctx.db_index();
    let n = ctx.srv.dbs[db].clear();
    ctx.dirty(n as u64 + 1);
    ctx.out().ok();
    Ok(())
}

fn flushall(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    parse_flush_flags(a)?;
    let mut n = 0;
    for db in ctx.srv.dbs.iter_mut() {
        n += db.clear();
    }
    ctx.dirty(n as u64 + 1);
    ctx.out().ok();
    Ok(())
}

fn select(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let id = int_arg(&a[1]).map_err(|_| CmdError::err("value is not an integer or out of range"))?;
    if id < 0 || id as usize >= ctx.srv.dbs.len() {
        return Err(CmdError::DbIndex);
    }
    ctx.client.db = id as usize;
    ctx.out().ok();
    Ok(())
}

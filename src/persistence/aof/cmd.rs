//! BGREWRITEAOF: schedules a rewrite that the AOF cron performs (the reply does not wait).

use bytes::Bytes;

use crate::commands::{CmdError, CmdResult, Ctx, Handler};

pub static COMMANDS: &[(&str, Handler)] = &[("bgrewriteaof", bgrewriteaof)];

fn bgrewriteaof(ctx: &mut Ctx, _a: &[Bytes]) -> CmdResult {
    let rdb_child = ctx.srv.rdb.child_pid.is_some();
    let aof = &mut ctx.srv.aof;
    if aof.rewrite_in_progress {
        return Err(CmdError::Other("ERR Background append only file rewriting already in progress".into()));
    }
    if !aof.on {
        // redsim rewrites only an open AOF (Redis would also write one with appendonly no).
        return Err(CmdError::Other("ERR Background AOF rewrite needs appendonly yes in redsim".into()));
    }
    aof.rewrite_scheduled = true;
    // One child at a time: behind a running BGSAVE the rewrite waits its turn, as in Redis.
    ctx.out().simple(if rdb_child {
        "Background append only file rewriting scheduled"
    } else {
        "Background append only file rewriting started"
    });
    Ok(())
}

//! SAVE, BGSAVE and the snapshot-related DEBUG subcommands (RELOAD, DIGEST, DIGEST-VALUE).
//! The handlers only decide and serialize; the file I/O of a blocking save runs in the driver
//! (see `persistence::snapshot::DiskJob`), the background one in the forked child's parent side.

use bytes::Bytes;

use super::{CmdError, CmdResult, Ctx, Handler};
use crate::persistence::digest;
use crate::persistence::snapshot::{DiskJob, DiskJobKind};

pub static COMMANDS: &[(&str, Handler)] = &[("save", save), ("bgsave", bgsave)];

const BGSAVE_IN_PROGRESS: &str = "ERR Background save already in progress";
const OTHER_CHILD_ACTIVE: &str = "ERR Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE \
SCHEDULE in order to schedule a BGSAVE whenever possible.";

/// Serializes the dataset now; an error is Redis's bare `-ERR` of a failed save.
fn snapshot_bytes(ctx: &mut Ctx) -> Result<Vec<u8>, CmdError> {
    ctx.srv.rdb_bytes().map_err(|e| {
        ctx.srv.log(crate::server::log::Level::Warning, &format!("Failed saving the DB: {e}"));
        CmdError::Other("ERR".into())
    })
}

fn save(ctx: &mut Ctx, _a: &[Bytes]) -> CmdResult {
    if ctx.srv.child_kind == crate::persistence::snapshot::ChildKind::Rdb {
        return Err(CmdError::Other(BGSAVE_IN_PROGRESS.into()));
    }
    // rdb_saves counts SAVE and BGSAVE attempts, not other saves (FLUSHALL, DEBUG RELOAD).
    ctx.srv.rdb.saves += 1;
    let bytes = snapshot_bytes(ctx)?;
    ctx.srv.rdb.job = Some(DiskJob::for_client(ctx.client, DiskJobKind::Save { bytes }));
    Ok(())
}

fn bgsave(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let schedule = match a.len() {
        1 => false,
        2 if a[1].eq_ignore_ascii_case(b"schedule") => true,
        _ => return Err(CmdError::Syntax),
    };
    use crate::persistence::snapshot::ChildKind;
    match ctx.srv.child_kind {
        ChildKind::Rdb => return Err(CmdError::Other(BGSAVE_IN_PROGRESS.into())),
        ChildKind::Aof if schedule => {
            ctx.srv.rdb.bgsave_scheduled = true;
            ctx.out().simple("Background saving scheduled");
        }
        ChildKind::Aof => return Err(CmdError::Other(OTHER_CHILD_ACTIVE.into())),
        ChildKind::None => {
            ctx.srv.bgsave_start().map_err(|_| CmdError::Other("ERR".into()))?;
            ctx.out().simple("Background saving started");
        }
    }
    Ok(())
}

/// DEBUG RELOAD [MERGE] [NOFLUSH] [NOSAVE]: save, flush, load the file back.
pub fn debug_reload(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let (mut noflush, mut nosave) = (false, false);
    for opt in &a[2..] {
        match opt.to_ascii_lowercase().as_slice() {
            // Loading overwrites keys already present, which is what MERGE allows; without it
            // Redis aborts on a duplicate key, which redsim does not copy.
            b"merge" => {}
            b"noflush" => noflush = true,
            b"nosave" => nosave = true,
            _ => {
                return Err(CmdError::Other(
                    "ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.".into(),
                ))
            }
        }
    }
    let save = if nosave { None } else { Some(snapshot_bytes(ctx)?) };
    ctx.srv.rdb.job = Some(DiskJob::for_client(ctx.client, DiskJobKind::Reload { save, noflush }));
    Ok(())
}

pub fn debug_digest(ctx: &mut Ctx) {
    let d = digest::dataset_digest(&ctx.srv.dbs);
    ctx.out().simple(&digest::hex(&d));
}

pub fn debug_digest_value(ctx: &mut Ctx, a: &[Bytes]) {
    let db = ctx.client.db;
    let digests: Vec<String> = a[2..].iter().map(|k| digest::hex(&digest::value_digest(&ctx.srv.dbs[db], k))).collect();
    let out = ctx.out();
    out.array(digests.len());
    for d in digests {
        out.simple(&d);
    }
}

/// SHUTDOWN's final save: true when the caller must not reply (a disk job will).
pub fn shutdown_save(ctx: &mut Ctx, save: Option<bool>) -> Result<bool, CmdError> {
    if ctx.srv.child_kind == crate::persistence::snapshot::ChildKind::Rdb {
        ctx.srv.log(crate::server::log::Level::Warning, "There is a child saving an .rdb. Killing it!");
        ctx.srv.kill_rdb_child();
    }
    let points = !crate::persistence::snapshot::save_points(ctx.srv.config.get("save").unwrap_or("")).is_empty();
    if save == Some(false) || (save.is_none() && !points) {
        return Ok(false);
    }
    ctx.srv.log(crate::server::log::Level::Notice, "Saving the final RDB snapshot before exiting.");
    let bytes =
        snapshot_bytes(ctx).map_err(|_| CmdError::Other("ERR Errors trying to SHUTDOWN. Check logs.".into()))?;
    ctx.srv.rdb.job = Some(DiskJob::for_client(ctx.client, DiskJobKind::Shutdown { bytes }));
    Ok(true)
}

//! Transactions (Redis's `multi.c`): MULTI queues commands, EXEC runs them back to back with
//! nothing in between, WATCH makes EXEC fail when a watched key changed since. A write by
//! anyone (the transaction's own client included) to a watched key marks its watchers dirty;
//! so do FLUSHDB/FLUSHALL/SWAPDB, expiry and eviction.
//!
//! The watch registry lives on the server, not on the clients, because the client running a
//! command is out of the client map while it runs, and a touch must reach it too.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::meta::key_flag;
use super::{CmdError, CmdResult, Command, Ctx, Handler};
use crate::engine::db::Db;
use crate::server::{Client, Propagated, Server};

pub const COMMANDS: &[(&str, Handler)] =
    &[("multi", multi), ("exec", exec), ("discard", discard), ("watch", watch), ("unwatch", unwatch)];

/// What Redis charges per queued command besides its arguments (`multiCmd` + argv array),
/// for CLIENT LIST `multi-mem`.
const QUEUED_CMD_OVERHEAD_BYTES: usize = 24;

/// A command queued inside MULTI.
#[derive(Debug, Clone)]
pub struct Queued {
    /// Index in the command table.
    pub cmd: usize,
    pub argv: Vec<Bytes>,
}

/// A client's transaction (Redis's `multiState` plus CLIENT_DIRTY_EXEC).
#[derive(Debug, Clone, Default)]
pub struct MultiState {
    pub cmds: Vec<Queued>,
    /// The union of the queued commands' flags (EXEC is checked as if it had them).
    pub cmd_flags: u64,
    /// A command was refused while queueing: EXEC answers EXECABORT.
    pub aborted: bool,
}

impl MultiState {
    /// Approximate memory of the queued commands (CLIENT LIST `multi-mem`).
    pub fn mem_bytes(&self) -> usize {
        self.cmds.iter().map(|q| QUEUED_CMD_OVERHEAD_BYTES + q.argv.iter().map(|a| a.len() + 16).sum::<usize>()).sum()
    }
}

/// One client watching one key (Redis's `watchedKey`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Watcher {
    client: u64,
    /// The key was logically expired when WATCH ran: its deletion by expiry is no change.
    expired: bool,
}

/// Who watches which key, and which clients' transactions must fail (CLIENT_DIRTY_CAS).
#[derive(Debug, Default)]
pub struct Watches {
    by_key: BTreeMap<(usize, Bytes), Vec<Watcher>>,
    dirty: BTreeSet<u64>,
    /// Keys signalled modified so far (Redis's `signalModifiedKey` calls), watched or not.
    signals: u64,
}

impl Watches {
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Whether client `id`'s next EXEC must fail.
    pub fn is_dirty(&self, id: u64) -> bool {
        self.dirty.contains(&id)
    }

    /// Redis's `touchWatchedKey`: `key` in `db` was modified; `exists` says whether it is
    /// there now.
    pub fn touch(&mut self, db: usize, key: &[u8], exists: bool) {
        let Some(watchers) = self.by_key.get_mut(&(db, Bytes::copy_from_slice(key))) else { return };
        for w in watchers.iter_mut() {
            if w.expired && !exists {
                w.expired = false;
                continue;
            }
            self.dirty.insert(w.client);
        }
    }

    /// Redis's `touchAllWatchedKeysInDb`, called before `emptied` is flushed or swapped with
    /// `replaced_with`: every watched key that exists in either changes.
    pub fn touch_all_in_db(&mut self, emptied: &Db, replaced_with: Option<&Db>, now_ms: u64) {
        let expired_in = |db: &Db, key: &[u8]| db.expire_of(key).is_some_and(|t| now_ms > t);
        for ((db, key), watchers) in self.by_key.range_mut((emptied.id, Bytes::new())..) {
            if *db != emptied.id {
                break;
            }
            let in_emptied = emptied.contains(key);
            let in_replacement = replaced_with.is_some_and(|r| r.contains(key));
            if !in_emptied && !in_replacement {
                continue;
            }
            for w in watchers.iter_mut() {
                if w.expired {
                    if !in_replacement {
                        w.expired = false;
                        continue;
                    } else if replaced_with.is_some_and(|r| expired_in(r, key)) {
                        continue;
                    }
                } else if !in_emptied && replaced_with.is_some_and(|r| expired_in(r, key)) {
                    w.expired = true;
                    continue;
                }
                self.dirty.insert(w.client);
            }
        }
    }

    fn watch(&mut self, client: &mut Client, key: &Bytes, expired: bool) {
        let entry = (client.db, key.clone());
        if client.watched.contains(&entry) {
            return;
        }
        self.by_key.entry(entry.clone()).or_default().push(Watcher { client: client.id, expired });
        client.watched.push(entry);
    }

    /// Redis's `unwatchAllKeys` plus clearing CLIENT_DIRTY_CAS.
    pub fn unwatch_all(&mut self, client: &mut Client) {
        for entry in client.watched.drain(..) {
            if let Some(ws) = self.by_key.get_mut(&entry) {
                ws.retain(|w| w.client != client.id);
                if ws.is_empty() {
                    self.by_key.remove(&entry);
                }
            }
        }
        self.dirty.remove(&client.id);
    }

    /// Redis's `isWatchedKeyExpired`: a key live at WATCH time is logically expired now.
    fn any_expired_since_watch(&self, client: &Client, dbs: &[Db], now_ms: u64) -> bool {
        client.watched.iter().any(|entry| {
            let was_expired = self
                .by_key
                .get(entry)
                .and_then(|ws| ws.iter().find(|w| w.client == client.id))
                .is_some_and(|w| w.expired);
            !was_expired && dbs[entry.0].expire_of(&entry.1).is_some_and(|t| now_ms > t)
        })
    }
}

impl Server {
    /// A key was written or deleted in `db`: its watchers' transactions fail.
    pub fn touch_watched_key(&mut self, db: usize, key: &[u8]) {
        self.watches.signals += 1;
        if self.watches.is_empty() {
            return;
        }
        let exists = self.dbs[db].contains(key);
        self.watches.touch(db, key, exists);
    }

    /// Before FLUSHDB/FLUSHALL empties `db` (`other` is None) or SWAPDB swaps it with `other`.
    pub fn touch_all_watched_keys_in_db(&mut self, db: usize, other: Option<usize>) {
        self.watches.signals += 1;
        if self.watches.is_empty() {
            return;
        }
        let now_ms = self.now.unix_ms;
        self.watches.touch_all_in_db(&self.dbs[db], other.map(|o| &self.dbs[o]), now_ms);
    }

    /// Forgets client `id`'s transaction state (it disconnected or RESET).
    pub fn discard_transaction(&mut self, client: &mut Client) {
        client.multi = None;
        self.watches.unwatch_all(client);
    }
}

/// Commands that run at once inside MULTI instead of being queued.
pub fn runs_inside_multi(cmd: &Command) -> bool {
    matches!(cmd.meta.name, "exec" | "discard" | "multi" | "watch" | "quit" | "reset")
}

/// Redis's `flagTransaction`: a command refused while queueing makes EXEC fail.
pub fn flag_transaction(client: &mut Client) {
    if let Some(m) = &mut client.multi {
        m.aborted = true;
    }
}

/// Redis's `queueMultiCommand`: an aborted transaction keeps nothing, but still says QUEUED.
pub fn queue(ctx: &mut Ctx, cmd: &Command, argv: Vec<Bytes>) {
    let m = ctx.client.multi.as_mut().expect("queue only inside MULTI");
    if !m.aborted && !ctx.srv.watches.is_dirty(ctx.client.id) {
        m.cmd_flags |= cmd.meta.flags;
        m.cmds.push(Queued { cmd: cmd.index, argv });
    }
    ctx.out().simple("QUEUED");
}

/// The flags EXEC is checked with: its own and those of what it will run.
pub fn exec_flags(client: &Client) -> u64 {
    client.multi.as_ref().map_or(0, |m| m.cmd_flags)
}

fn multi(ctx: &mut Ctx, _a: &[Bytes]) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(CmdError::err("MULTI calls can not be nested"));
    }
    ctx.client.multi = Some(MultiState::default());
    ctx.out().ok();
    Ok(())
}

fn discard(ctx: &mut Ctx, _a: &[Bytes]) -> CmdResult {
    if ctx.client.multi.is_none() {
        return Err(CmdError::err("DISCARD without MULTI"));
    }
    ctx.srv.discard_transaction(ctx.client);
    ctx.out().ok();
    Ok(())
}

fn watch(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(CmdError::err("WATCH inside MULTI is not allowed"));
    }
    // No point in watching once the transaction is bound to fail.
    if !ctx.srv.watches.is_dirty(ctx.client.id) {
        let now_ms = ctx.now_ms();
        for key in &a[1..] {
            let db = &ctx.srv.dbs[ctx.client.db];
            let expired = db.expire_of(key).is_some_and(|t| now_ms > t);
            ctx.srv.watches.watch(ctx.client, key, expired);
        }
    }
    ctx.out().ok();
    Ok(())
}

fn unwatch(ctx: &mut Ctx, _a: &[Bytes]) -> CmdResult {
    ctx.srv.watches.unwatch_all(ctx.client);
    ctx.out().ok();
    Ok(())
}

/// EXEC: nil when a watched key changed, EXECABORT when queueing refused a command,
/// otherwise every queued command's reply in one array. The writes reach the AOF and
/// replicas wrapped in MULTI/EXEC when there is more than one (Redis 7.0's
/// `propagatePendingCommands`), so they are applied atomically there too.
fn exec(ctx: &mut Ctx, _a: &[Bytes]) -> CmdResult {
    let Some(state) = &ctx.client.multi else {
        return Err(CmdError::err("EXEC without MULTI"));
    };
    let aborted = state.aborted;
    let now_ms = ctx.now_ms();
    let cas_failed = ctx.srv.watches.is_dirty(ctx.client.id)
        || ctx.srv.watches.any_expired_since_watch(ctx.client, &ctx.srv.dbs, now_ms);
    if aborted || cas_failed {
        ctx.srv.discard_transaction(ctx.client);
        if aborted {
            return Err(CmdError::Other("EXECABORT Transaction discarded because of previous errors.".into()));
        }
        ctx.out().null_array();
        return Ok(());
    }
    // A copy (argv are shared bytes): CLIENT LIST inside EXEC still shows `multi=<count>`.
    let queued = ctx.client.multi.as_ref().expect("checked above").cmds.clone();
    ctx.srv.watches.unwatch_all(ctx.client);
    let first_propagated = ctx.srv.propagated.len();
    ctx.out().array(queued.len());
    let table = ctx.srv.table;
    for q in queued {
        super::call(ctx, &table.cmds[q.cmd], &q.argv);
        debug_assert!(!ctx.srv.blocking.is_blocked(ctx.client.id), "EXEC denies blocking");
    }
    ctx.client.multi = None;
    wrap_in_multi_exec(&mut ctx.srv.propagated, first_propagated);
    // EXEC itself is never propagated: its commands were.
    ctx.srv.cmd_rewritten = true;
    Ok(())
}

/// Wraps what was propagated since `first` in MULTI ... EXEC when it is more than one
/// command. MULTI carries the first command's db, EXEC the last's, so no SELECT separates
/// EXEC from the command before it.
/// Already wrapped (EXEC wraps its own) is left alone.
pub(crate) fn wrap_in_multi_exec(propagated: &mut Vec<Propagated>, first: usize) {
    if propagated.len() <= first + 1 || propagated[first].argv[0].eq_ignore_ascii_case(b"multi") {
        return;
    }
    let (first_db, last_db) = (propagated[first].db, propagated[propagated.len() - 1].db);
    propagated.insert(first, Propagated { db: first_db, argv: vec![Bytes::from_static(b"MULTI")], expiry: false });
    propagated.push(Propagated { db: last_db, argv: vec![Bytes::from_static(b"EXEC")], expiry: false });
}

/// Keys a write command may have modified, for WATCH: the keys of its key specs that are
/// not read-only.
pub fn written_keys(cmd: &Command, argv: &[Bytes]) -> Vec<Bytes> {
    super::server_cmds::command::keys_of(cmd.meta, argv)
        .into_iter()
        .filter(|&(_, f)| f & key_flag::RO == 0)
        .map(|(i, _)| argv[i].clone())
        .collect()
}

/// How many keys were signalled modified so far; `call` compares it around a command.
pub fn signals(srv: &Server) -> u64 {
    srv.watches.signals
}

/// Called by `call` after a command that changed the dataset without signalling any key
/// itself (every write site signals through `Ctx::notify`; this is the safety net): its
/// write keys, by its key specs, are touched. It may touch more than changed, never less.
pub fn touch_written_keys(ctx: &mut Ctx, cmd: &Command, argv: &[Bytes]) {
    if ctx.srv.watches.is_empty() {
        return;
    }
    let db = ctx.client.db;
    for key in written_keys(cmd, argv) {
        ctx.srv.touch_watched_key(db, &key);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{propagating, run, server, take_propagated, words};
    use super::*;

    #[test]
    fn queued_commands_run_at_exec_with_their_replies_in_one_array() {
        let mut srv = server();
        assert_eq!(run(&mut srv, &["MULTI"]), b"+OK\r\n");
        assert_eq!(run(&mut srv, &["SET", "k", "1"]), b"+QUEUED\r\n");
        assert_eq!(run(&mut srv, &["INCR", "k"]), b"+QUEUED\r\n");
        assert_eq!(run(&mut srv, &["GET", "k"]), b"+QUEUED\r\n");
        assert_eq!(run(&mut srv, &["EXEC"]), b"*3\r\n+OK\r\n:2\r\n$1\r\n2\r\n");
        assert_eq!(run(&mut srv, &["EXEC"]), b"-ERR EXEC without MULTI\r\n");
    }

    #[test]
    fn a_refused_command_aborts_the_transaction() {
        let mut srv = server();
        run(&mut srv, &["MULTI"]);
        run(&mut srv, &["SET", "k"]);
        assert_eq!(run(&mut srv, &["SET", "k", "v"]), b"+QUEUED\r\n");
        assert_eq!(run(&mut srv, &["EXEC"]), b"-EXECABORT Transaction discarded because of previous errors.\r\n");
        assert_eq!(run(&mut srv, &["EXISTS", "k"]), b":0\r\n");
    }

    #[test]
    fn a_touched_watched_key_makes_exec_return_nil() {
        let mut srv = server();
        let other = srv.add_client("127.0.0.1:50001".into(), "127.0.0.1:6379".into());
        run(&mut srv, &["WATCH", "k"]);
        srv.process(other, vec![Bytes::from_static(b"SET"), Bytes::from_static(b"k"), Bytes::from_static(b"v")]);
        run(&mut srv, &["MULTI"]);
        run(&mut srv, &["SET", "k", "mine"]);
        assert_eq!(run(&mut srv, &["EXEC"]), b"*-1\r\n");
        assert_eq!(run(&mut srv, &["GET", "k"]), b"$1\r\nv\r\n");
        // The failed EXEC unwatched: the next transaction runs.
        run(&mut srv, &["MULTI"]);
        run(&mut srv, &["SET", "k", "mine"]);
        assert_eq!(run(&mut srv, &["EXEC"]), b"*1\r\n+OK\r\n");
    }

    #[test]
    fn reading_or_writing_other_keys_leaves_watches_alone() {
        let mut srv = server();
        run(&mut srv, &["SET", "src", "1"]);
        run(&mut srv, &["WATCH", "src"]);
        run(&mut srv, &["SET", "other", "1"]);
        run(&mut srv, &["GET", "src"]);
        run(&mut srv, &["MULTI"]);
        run(&mut srv, &["PING"]);
        assert_eq!(run(&mut srv, &["EXEC"]), b"*1\r\n+PONG\r\n");
    }

    #[test]
    fn only_keys_a_command_changed_are_touched() {
        let mut srv = server();
        run(&mut srv, &["SET", "exists", "1"]);
        run(&mut srv, &["WATCH", "missing"]);
        run(&mut srv, &["DEL", "missing", "exists"]);
        run(&mut srv, &["MULTI"]);
        assert_eq!(run(&mut srv, &["EXEC"]), b"*0\r\n");
        // PFCOUNT refreshes a cache without an event: the key-spec safety net touches it.
        run(&mut srv, &["PFADD", "h", "a"]);
        run(&mut srv, &["WATCH", "h"]);
        run(&mut srv, &["PFCOUNT", "h"]);
        run(&mut srv, &["MULTI"]);
        assert_eq!(run(&mut srv, &["EXEC"]), b"*-1\r\n");
    }

    #[test]
    fn flushall_touches_only_watched_keys_that_exist() {
        let mut srv = server();
        run(&mut srv, &["WATCH", "missing"]);
        run(&mut srv, &["FLUSHALL"]);
        run(&mut srv, &["MULTI"]);
        assert_eq!(run(&mut srv, &["EXEC"]), b"*0\r\n");
        run(&mut srv, &["SET", "k", "v"]);
        run(&mut srv, &["WATCH", "k"]);
        run(&mut srv, &["FLUSHDB"]);
        run(&mut srv, &["MULTI"]);
        assert_eq!(run(&mut srv, &["EXEC"]), b"*-1\r\n");
    }

    #[test]
    fn a_watched_key_that_expires_before_exec_fails_it() {
        let mut srv = server();
        run(&mut srv, &["SET", "k", "v", "PX", "10"]);
        run(&mut srv, &["WATCH", "k"]);
        super::super::testing::advance(&mut srv, 20);
        run(&mut srv, &["MULTI"]);
        assert_eq!(run(&mut srv, &["EXEC"]), b"*-1\r\n");
    }

    #[test]
    fn transactions_propagate_wrapped_only_when_they_write_more_than_once() {
        let mut srv = propagating();
        for cmds in [&[&["SET", "a", "1"][..], &["GET", "a"]][..], &[&["SET", "b", "1"], &["SET", "c", "2"]]] {
            run(&mut srv, &["MULTI"]);
            for c in cmds {
                run(&mut srv, c);
            }
            run(&mut srv, &["EXEC"]);
        }
        run(&mut srv, &["MULTI"]);
        run(&mut srv, &["GET", "a"]);
        run(&mut srv, &["EXEC"]);
        assert_eq!(
            take_propagated(&mut srv),
            [
                words(&["SET", "a", "1"]),
                words(&["MULTI"]),
                words(&["SET", "b", "1"]),
                words(&["SET", "c", "2"]),
                words(&["EXEC"])
            ]
        );
    }

    #[test]
    fn a_lazy_expiry_inside_exec_is_part_of_the_wrapped_transaction() {
        let mut srv = propagating();
        run(&mut srv, &["SET", "gone", "v", "PX", "1"]);
        super::super::testing::advance(&mut srv, 5);
        take_propagated(&mut srv);
        run(&mut srv, &["MULTI"]);
        run(&mut srv, &["GET", "gone"]);
        run(&mut srv, &["SET", "w", "1"]);
        run(&mut srv, &["EXEC"]);
        assert_eq!(
            take_propagated(&mut srv),
            [words(&["MULTI"]), words(&["DEL", "gone"]), words(&["SET", "w", "1"]), words(&["EXEC"])]
        );
    }

    #[test]
    fn blocking_pops_inside_exec_answer_at_once() {
        let mut srv = server();
        run(&mut srv, &["MULTI"]);
        run(&mut srv, &["BLPOP", "l", "0"]);
        assert_eq!(run(&mut srv, &["EXEC"]), b"*1\r\n*-1\r\n");
    }

    #[test]
    fn nesting_and_misplaced_commands_are_errors() {
        let mut srv = server();
        assert_eq!(run(&mut srv, &["DISCARD"]), b"-ERR DISCARD without MULTI\r\n");
        run(&mut srv, &["MULTI"]);
        assert_eq!(run(&mut srv, &["MULTI"]), b"-ERR MULTI calls can not be nested\r\n");
        assert_eq!(run(&mut srv, &["WATCH", "k"]), b"-ERR WATCH inside MULTI is not allowed\r\n");
        assert_eq!(run(&mut srv, &["SHUTDOWN"]), b"-ERR Command not allowed inside a transaction\r\n");
        assert_eq!(run(&mut srv, &["DISCARD"]), b"+OK\r\n");
    }
}

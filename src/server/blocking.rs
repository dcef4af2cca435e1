//! Clients blocked on keys (Redis's `blocked.c`): BLPOP and friends park a client here with
//! no reply; a write that may fill a key signals it ready, and after that command the server
//! serves the waiters of each ready key in the order they blocked, before anything else runs
//! (Redis's `handleClientsBlockedOnKeys`). Readiness and the FIFO are generic; serving is per
//! type (`BlockedOp::value_type` names the type a waiter needs, its module does the pop).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;

use super::{Client, Server};
use crate::commands::Ctx;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Left,
    Right,
}

impl Side {
    pub fn pop_name(self) -> &'static str {
        match self {
            Side::Left => "lpop",
            Side::Right => "rpop",
        }
    }

    /// How a pop from this side is propagated (Redis's shared `LPOP`/`RPOP` objects).
    pub fn pop_cmd(self) -> Bytes {
        Bytes::from_static(match self {
            Side::Left => b"LPOP",
            Side::Right => b"RPOP",
        })
    }

    /// The side as LMOVE propagates it (Redis's shared `left`/`right` objects).
    pub fn name(self) -> Bytes {
        Bytes::from_static(match self {
            Side::Left => b"left",
            Side::Right => b"right",
        })
    }
}

/// What a blocked client does once one of its keys is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockedOp {
    /// BLPOP/BRPOP (`count: None`) or BLMPOP.
    Pop { side: Side, count: Option<i64> },
    /// BLMOVE/BRPOPLPUSH.
    Move { dst: Bytes, from: Side, to: Side, rpoplpush: bool },
    /// BZPOPMIN/BZPOPMAX (`count: None`) or BZMPOP.
    ZPop { max: bool, count: Option<i64> },
    /// WAIT: no keys; served when `numreplicas` replicas acknowledged `offset`.
    Wait { offset: u64, numreplicas: i64 },
}

impl BlockedOp {
    /// The type a ready key must hold to serve this waiter.
    pub fn value_type(&self) -> &'static str {
        match self {
            BlockedOp::ZPop { .. } => "zset",
            BlockedOp::Wait { .. } => "none",
            _ => "list",
        }
    }
}

/// A client's blocked state (Redis's `c->bpop`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockState {
    pub db: usize,
    pub keys: Vec<Bytes>,
    /// Unix ms; 0 waits forever.
    pub deadline_ms: u64,
    pub op: BlockedOp,
}

/// The registry: who waits on which key, and which keys became ready during a command.
#[derive(Debug, Default)]
pub struct Blocking {
    /// Waiting client ids per (db, key), first blocked first.
    pub by_key: BTreeMap<(usize, Bytes), VecDeque<u64>>,
    /// Blocked clients (INFO blocked_clients) and their state.
    pub clients: BTreeMap<u64, BlockState>,
    ready: Vec<(usize, Bytes)>,
    ready_set: BTreeSet<(usize, Bytes)>,
}

impl Blocking {
    pub fn block(&mut self, id: u64, state: BlockState) {
        for key in &state.keys {
            let q = self.by_key.entry((state.db, key.clone())).or_default();
            if !q.contains(&id) {
                q.push_back(id);
            }
        }
        self.clients.insert(id, state);
    }

    /// Forgets client `id` everywhere; returns its state if it was blocked.
    pub fn unblock(&mut self, id: u64) -> Option<BlockState> {
        let state = self.clients.remove(&id)?;
        for key in &state.keys {
            let k = (state.db, key.clone());
            if let Some(q) = self.by_key.get_mut(&k) {
                q.retain(|&c| c != id);
                if q.is_empty() {
                    self.by_key.remove(&k);
                }
            }
        }
        Some(state)
    }

    /// Redis's `signalKeyAsReady`: only keys someone waits on, each once per round.
    pub fn signal(&mut self, db: usize, key: &[u8]) {
        let k = (db, Bytes::copy_from_slice(key));
        if self.by_key.contains_key(&k) && self.ready_set.insert(k.clone()) {
            self.ready.push(k);
        }
    }

    fn take_ready(&mut self) -> Vec<(usize, Bytes)> {
        self.ready_set.clear();
        std::mem::take(&mut self.ready)
    }

    pub fn is_blocked(&self, id: u64) -> bool {
        self.clients.contains_key(&id)
    }

    /// The first client waiting on `key` whose op fits `value_type`, if any.
    fn first_waiter(&self, db: usize, key: &Bytes, value_type: &str) -> Option<u64> {
        let q = self.by_key.get(&(db, key.clone()))?;
        q.iter().copied().find(|id| self.clients.get(id).is_some_and(|s| s.op.value_type() == value_type))
    }

    /// Clients whose deadline has passed at `now_ms`.
    pub fn timed_out(&self, now_ms: u64) -> Vec<u64> {
        self.clients.iter().filter(|(_, s)| s.deadline_ms != 0 && s.deadline_ms <= now_ms).map(|(&id, _)| id).collect()
    }

    /// The earliest deadline of any blocked client (for a driver's timer).
    pub fn deadline_of(&self, id: u64) -> Option<u64> {
        self.clients.get(&id).map(|s| s.deadline_ms)
    }
}

impl Server {
    /// Parks `client` (out of the map while its command runs) on `keys` of its db.
    pub fn block_client(&mut self, client: &mut Client, keys: &[Bytes], deadline_ms: u64, op: BlockedOp) {
        let state = BlockState { db: client.db, keys: keys.to_vec(), deadline_ms, op };
        self.blocking.block(client.id, state);
        client.blocked = true;
    }

    pub fn signal_key_as_ready(&mut self, db: usize, key: &[u8]) {
        self.blocking.signal(db, key);
    }

    pub fn is_blocked(&self, id: u64) -> bool {
        self.blocking.is_blocked(id)
    }

    /// Signals every awaited key that holds a live value. Commands that create keys
    /// wholesale (RENAME, COPY, MOVE, SWAPDB) reach waiters this way without each knowing
    /// about blocking, as Redis's `dbAdd` and `scanDatabaseForReadyKeys` do.
    pub fn signal_awaited_keys_present(&mut self) {
        let now_ms = self.now.unix_ms;
        let present: Vec<(usize, Bytes)> = self
            .blocking
            .by_key
            .keys()
            .filter(|(db, key)| {
                let db = &self.dbs[*db];
                db.contains(key) && db.expire_of(key).is_none_or(|t| t > now_ms)
            })
            .cloned()
            .collect();
        for (db, key) in present {
            self.blocking.signal(db, &key);
        }
    }

    /// Redis's `handleClientsBlockedOnKeys`: serves waiters of every ready key, FIFO, until
    /// no key is ready (serving a BLMOVE may make its destination ready in turn).
    pub fn handle_clients_blocked_on_keys(&mut self) {
        loop {
            let ready = self.blocking.take_ready();
            if ready.is_empty() {
                return;
            }
            for (db, key) in ready {
                self.serve_key(db, &key);
            }
        }
    }

    fn serve_key(&mut self, db: usize, key: &Bytes) {
        loop {
            let Some(value_type) = self.dbs[db].get(key).map(|o| o.val.type_name()) else { return };
            let Some(id) = self.blocking.first_waiter(db, key, value_type) else { return };
            let state = self.blocking.unblock(id).expect("a waiter is blocked");
            let Some(mut client) = self.clients.remove(&id) else { continue };
            client.blocked = false;
            let reply_start = client.out.len();
            {
                let mut ctx = Ctx { srv: self, client: &mut client };
                let served = match value_type {
                    "list" => crate::commands::list::serve_blocked(&mut ctx, key, &state.op),
                    "zset" => crate::commands::zset::serve_blocked(&mut ctx, key, &state.op),
                    _ => false,
                };
                if !served {
                    ctx.srv.count_failed_call(ctx.client.last_cmd);
                }
            }
            // The pop wrote `key` (and a move its destination): watchers see a change.
            self.touch_watched_key(db, key);
            if let BlockedOp::Move { dst, .. } = &state.op {
                self.touch_watched_key(db, dst);
            }
            if client.reply_off {
                client.out.buf.truncate(reply_start);
            }
            self.clients.insert(id, client);
            self.wakeups.push(id);
        }
    }

    /// A blocked command that ended in an error counts as failed (Redis's
    /// `updateStatsOnUnblock`); its call was counted when it blocked.
    fn count_failed_call(&mut self, name: &str) {
        if let Some(cmd) = self.table.by_fullname(name.as_bytes()) {
            self.cmd_stats[cmd.index].failed_calls += 1;
        }
    }

    /// Replies to clients whose timeout passed as Redis does (a null array) and unblocks them.
    pub fn unblock_timed_out_clients(&mut self) {
        for id in self.blocking.timed_out(self.now.unix_ms) {
            self.unblock_with_timeout(id);
        }
    }

    /// A deadline reached: the timeout reply, not a failed call.
    fn unblock_with_timeout(&mut self, id: u64) {
        let Some(state) = self.blocking.unblock(id) else { return };
        let acked = match state.op {
            BlockedOp::Wait { offset, .. } => Some(self.repl.replicas.acked_at_least(offset) as i64),
            _ => None,
        };
        if let Some(c) = self.clients.get_mut(&id) {
            c.blocked = false;
            if !c.reply_off {
                match acked {
                    // WAIT's timeout reply is the count reached so far.
                    Some(n) => c.out.int(n),
                    None => c.out.null_array(),
                }
            }
        }
        self.wakeups.push(id);
    }

    /// Serves WAIT clients whose offset enough replicas acknowledged (Redis's
    /// `processClientsWaitingReplicas`).
    pub fn serve_wait_clients(&mut self) {
        let ready: Vec<(u64, i64)> = self
            .blocking
            .clients
            .iter()
            .filter_map(|(&id, s)| match s.op {
                BlockedOp::Wait { offset, numreplicas } => {
                    let acked = self.repl.replicas.acked_at_least(offset) as i64;
                    (acked >= numreplicas).then_some((id, acked))
                }
                _ => None,
            })
            .collect();
        for (id, acked) in ready {
            self.blocking.unblock(id);
            if let Some(c) = self.clients.get_mut(&id) {
                c.blocked = false;
                if !c.reply_off {
                    c.out.int(acked);
                }
            }
            self.wakeups.push(id);
        }
    }

    /// CLIENT UNBLOCK: the timeout reply or an UNBLOCKED error; either way Redis counts
    /// the blocked command as failed. Returns whether `id` was blocked.
    pub fn client_unblock(&mut self, id: u64, error: bool) -> bool {
        let Some(state) = self.blocking.unblock(id) else { return false };
        let acked = match state.op {
            BlockedOp::Wait { offset, .. } => Some(self.repl.replicas.acked_at_least(offset) as i64),
            _ => None,
        };
        let text = "UNBLOCKED client unblocked via CLIENT UNBLOCK";
        if error {
            self.count_error(text);
        }
        if let Some(c) = self.clients.get_mut(&id) {
            c.blocked = false;
            match (c.reply_off, error) {
                (true, _) => {}
                (false, true) => c.out.error(text),
                (false, false) => match acked {
                    Some(n) => c.out.int(n),
                    None => c.out.null_array(),
                },
            }
            let cmd = c.last_cmd;
            self.count_failed_call(cmd);
        }
        self.wakeups.push(id);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(keys: &[&str]) -> BlockState {
        BlockState {
            db: 0,
            keys: keys.iter().map(|k| Bytes::copy_from_slice(k.as_bytes())).collect(),
            deadline_ms: 0,
            op: BlockedOp::Pop { side: Side::Left, count: None },
        }
    }

    #[test]
    fn waiters_are_served_first_blocked_first() {
        let mut b = Blocking::default();
        b.block(7, state(&["a", "b"]));
        b.block(3, state(&["b"]));
        b.block(5, state(&["a"]));
        let a = Bytes::from_static(b"a");
        let bk = Bytes::from_static(b"b");
        assert_eq!(b.first_waiter(0, &a, "list"), Some(7));
        assert_eq!(b.first_waiter(0, &bk, "list"), Some(7));
        b.unblock(7);
        assert_eq!(b.first_waiter(0, &a, "list"), Some(5));
        assert_eq!(b.first_waiter(0, &bk, "list"), Some(3));
        assert_eq!(b.first_waiter(0, &a, "zset"), None);
        b.unblock(5);
        b.unblock(3);
        assert!(b.by_key.is_empty() && b.clients.is_empty());
    }

    #[test]
    fn only_awaited_keys_become_ready_once_per_round() {
        let mut b = Blocking::default();
        b.signal(0, b"x");
        assert!(b.take_ready().is_empty());
        b.block(1, state(&["x"]));
        b.signal(0, b"x");
        b.signal(0, b"x");
        b.signal(1, b"x");
        assert_eq!(b.take_ready(), vec![(0, Bytes::from_static(b"x"))]);
        b.signal(0, b"x");
        assert_eq!(b.take_ready().len(), 1);
    }
}

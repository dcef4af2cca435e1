//! Coordinated failover (the FAILOVER command; Redis's `failoverCommand`,
//! `updateFailoverStatus` and `abortFailover`): the master pauses writes, waits until a
//! replica acknowledged its whole stream, follows that replica and asks it with
//! `PSYNC replid offset FAILOVER` to take over. The old master keeps its data and its other
//! replicas, so a rejected request rolls back to where it started.

use super::log::Level;
use super::Server;
use crate::replication::{Failover, FailoverState, SyncState};

impl Server {
    /// Starts a failover (the command checked its arguments and the replicas): writes pause
    /// until it ends.
    pub fn start_failover(&mut self, target: Option<(String, u16)>, timeout_ms: Option<u64>, force: bool) {
        match &target {
            Some((host, port)) => self.log(Level::Notice, &format!("FAILOVER requested to {host}:{port}.")),
            None => self.log(Level::Notice, "FAILOVER requested to any replica."),
        }
        let end_mono_ms = timeout_ms.map(|t| self.now.mono_ms + t);
        self.repl.failover = Some(Failover { state: FailoverState::WaitForSync, target, end_mono_ms, force });
        self.pause_for_failover(true);
    }

    /// Moves a waiting failover on (Redis calls it before every sleep; here after each ACK
    /// and from the cron): at the timeout it hands over (FORCE) or gives up; once the target,
    /// or with no TO the first replica, acknowledged our whole stream, this node follows it.
    pub fn update_failover_status(&mut self) {
        let Some(f) = &self.repl.failover else { return };
        if f.state != FailoverState::WaitForSync {
            return;
        }
        if f.end_mono_ms.is_some_and(|end| end <= self.now.mono_ms) {
            if f.force {
                if let Some((host, port)) = f.target.clone() {
                    self.log(Level::Notice, &format!("FAILOVER to {host}:{port} time out exceeded, failing over."));
                    self.hand_over(host, port);
                    return;
                }
            }
            self.abort_failover("Replica never caught up before timeout");
            return;
        }
        let offset = self.repl.state.master_repl_offset;
        let synced = |r: &crate::replication::ReplicaInfo| r.state == SyncState::Online && r.ack_offset == offset;
        let found = match &f.target {
            Some((host, port)) => {
                self.repl.replicas.by_addr(host, i64::from(*port)).filter(|r| synced(r)).map(|_| (host.clone(), *port))
            }
            None => self.repl.replicas.iter().find(|r| synced(r)).map(|r| (r.ip.clone(), r.listening_port)),
        };
        if let Some((host, port)) = found {
            self.log(Level::Notice, &format!("Failover target {host}:{port} is synced, failing over."));
            self.hand_over(host, port);
        }
    }

    /// Becomes a replica of the target, keeping the data and the other replicas; the link's
    /// PSYNC then carries FAILOVER.
    fn hand_over(&mut self, host: String, port: u16) {
        if let Some(f) = self.repl.failover.as_mut() {
            f.state = FailoverState::InProgress;
            f.target = Some((host.clone(), port));
        }
        self.follow_master(host, port);
    }

    /// Whether this node's PSYNC must ask its master to take over.
    pub fn failover_in_progress(&self) -> bool {
        self.repl.failover.as_ref().is_some_and(|f| f.state == FailoverState::InProgress)
    }

    /// The target answered the PSYNC FAILOVER with +CONTINUE or +FULLRESYNC: done, writes
    /// resume (and get -READONLY here now).
    pub fn failover_done(&mut self) {
        if self.repl.failover.take().is_some() {
            self.pause_for_failover(false);
        }
    }

    /// Gives the failover up (Redis's `abortFailover`): a node already following its target
    /// becomes a master again; writes resume.
    pub fn abort_failover(&mut self, why: &str) {
        let Some(f) = self.repl.failover.clone() else { return };
        match &f.target {
            Some((host, port)) => self.log(Level::Notice, &format!("FAILOVER to {host}:{port} aborted: {why}")),
            None => self.log(Level::Notice, &format!("FAILOVER to any replica aborted: {why}")),
        }
        if f.state == FailoverState::InProgress {
            self.become_master();
        }
        self.failover_done();
    }
}

#[cfg(test)]
mod tests {
    use crate::commands::testing::{run, server};
    use crate::replication::{FailoverState, ReplicaInfo, SyncState};
    use bytes::Bytes;

    fn r(srv: &mut crate::server::Server, argv: &[&str]) -> String {
        String::from_utf8(run(srv, argv)).unwrap()
    }

    fn argv(a: &[&str]) -> Vec<Bytes> {
        a.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect()
    }

    fn online_replica(srv: &mut crate::server::Server, id: u64, port: u16) {
        let mut r = ReplicaInfo::new(id, "10.0.0.7".into(), srv.now.mono_ms);
        r.listening_port = port;
        r.state = SyncState::Online;
        srv.attach_replica(r);
    }

    /// The command's checks, in Redis's order and with its texts.
    #[test]
    fn failover_checks_its_arguments_and_the_replicas_with_redis_errors() {
        let mut srv = server();
        assert_eq!(r(&mut srv, &["FAILOVER", "ABORT"]), "-ERR No failover in progress.\r\n");
        assert_eq!(r(&mut srv, &["FAILOVER"]), "-ERR FAILOVER requires connected replicas.\r\n");
        assert_eq!(r(&mut srv, &["FAILOVER", "TIMEOUT", "0"]), "-ERR FAILOVER timeout must be greater than 0\r\n");
        assert_eq!(r(&mut srv, &["FAILOVER", "TIMEOUT", "x"]), "-ERR value is not an integer or out of range\r\n");
        assert_eq!(r(&mut srv, &["FAILOVER", "FORCE", "FORCE"]), "-ERR syntax error\r\n");
        assert_eq!(r(&mut srv, &["FAILOVER", "TO", "h"]), "-ERR syntax error\r\n");
        assert_eq!(r(&mut srv, &["FAILOVER", "ABORT", "TIMEOUT", "5"]), "-ERR syntax error\r\n");
        online_replica(&mut srv, 900, 6380);
        assert_eq!(
            r(&mut srv, &["FAILOVER", "TO", "10.0.0.7", "6380", "FORCE"]),
            "-ERR FAILOVER with force option requires both a timeout and target HOST and IP.\r\n"
        );
        assert_eq!(
            r(&mut srv, &["FAILOVER", "TO", "10.0.0.7", "6399"]),
            "-ERR FAILOVER target HOST and PORT is not a replica.\r\n"
        );
        srv.repl.replicas.get_mut(900).unwrap().state = SyncState::SendBulk;
        assert_eq!(
            r(&mut srv, &["FAILOVER", "TO", "10.0.0.7", "6380"]),
            "-ERR FAILOVER target replica is not online.\r\n"
        );
        r(&mut srv, &["REPLICAOF", "10.0.0.9", "6379"]);
        assert_eq!(r(&mut srv, &["FAILOVER"]), "-ERR FAILOVER is not valid when server is a replica.\r\n");
    }

    /// Writes wait while the replica catches up; at its ACK of our offset this node follows
    /// it, keeping the replica; ABORT then makes it a master again and writes run.
    #[test]
    fn failover_pauses_writes_until_the_replica_acked_then_follows_it_and_abort_rolls_back() {
        let mut srv = server();
        srv.ensure_backlog();
        online_replica(&mut srv, 900, 6380);
        r(&mut srv, &["SET", "k", "v"]);
        assert_eq!(r(&mut srv, &["FAILOVER", "TIMEOUT", "5000"]), "+OK\r\n");
        assert_eq!(r(&mut srv, &["FAILOVER"]), "-ERR FAILOVER already in progress.\r\n");
        assert!(srv.must_postpone(&argv(&["SET", "k", "w"])).is_some());
        assert!(srv.must_postpone(&argv(&["GET", "k"])).is_none());
        assert!(r(&mut srv, &["INFO", "replication"]).contains("master_failover_state:waiting-for-sync"));
        // CLIENT UNPAUSE does not end the failover's pause.
        r(&mut srv, &["CLIENT", "UNPAUSE"]);
        assert!(srv.must_postpone(&argv(&["SET", "k", "w"])).is_some());
        srv.update_failover_status();
        assert_eq!(srv.repl.failover.as_ref().unwrap().state, FailoverState::WaitForSync);
        let offset = srv.repl.state.master_repl_offset;
        srv.repl.replicas.ack(900, offset, srv.now.mono_ms);
        srv.update_failover_status();
        let f = srv.repl.failover.clone().unwrap();
        assert_eq!((f.state, f.target), (FailoverState::InProgress, Some(("10.0.0.7".to_string(), 6380))));
        assert!(srv.is_replica());
        assert!(srv.failover_in_progress());
        assert!(srv.repl.replicas.get(900).is_some(), "the other replicas stay");
        assert!(r(&mut srv, &["INFO", "replication"]).contains("master_failover_state:failover-in-progress"));
        assert_eq!(r(&mut srv, &["FAILOVER", "ABORT"]), "+OK\r\n");
        assert!(!srv.is_replica());
        assert!(srv.repl.failover.is_none());
        assert!(srv.must_postpone(&argv(&["SET", "k", "w"])).is_none());
        assert!(r(&mut srv, &["INFO", "replication"]).contains("master_failover_state:no-failover"));
    }

    /// Without FORCE a replica that never catches up ends the failover at the timeout; with
    /// FORCE and a target the master hands over anyway.
    #[test]
    fn failover_timeout_aborts_without_force_and_hands_over_with_it() {
        let mut srv = server();
        srv.ensure_backlog();
        online_replica(&mut srv, 900, 6380);
        r(&mut srv, &["SET", "k", "v"]);
        assert_eq!(r(&mut srv, &["FAILOVER", "TIMEOUT", "100"]), "+OK\r\n");
        srv.now.mono_ms += 100;
        srv.update_failover_status();
        assert!(srv.repl.failover.is_none());
        assert!(!srv.is_replica());
        assert_eq!(r(&mut srv, &["FAILOVER", "TO", "10.0.0.7", "6380", "TIMEOUT", "100", "FORCE"]), "+OK\r\n");
        srv.now.mono_ms += 100;
        srv.update_failover_status();
        assert!(srv.failover_in_progress());
        let m = srv.repl.master.as_ref().unwrap();
        assert_eq!((m.host.as_str(), m.port), ("10.0.0.7", 6380));
    }
}

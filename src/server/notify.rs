//! Keyspace notifications (Redis's `notify.c`): when `notify-keyspace-events` enables an
//! event's class, a change to a key is published as `__keyspace@<db>__:<key>` → event name
//! and `__keyevent@<db>__:<event>` → key name, through ordinary pub/sub. Commands report
//! their events with `Ctx::notify`; the server reports keys it deletes itself (expiry,
//! eviction) with `deleted_by_server`, which also counts as a change for WATCH.

use super::{Client, Server};
pub use crate::server::config::notify as class;

/// Why the server deleted a key on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    Expired,
    Evicted,
}

impl Server {
    /// Redis's `notifyKeyspaceEvent`: publishes `event` on `key` of `db` if its class is
    /// enabled. `current` is the client running the command (out of the client map), if any.
    pub fn notify_keyspace_event(
        &mut self,
        mut current: Option<&mut Client>,
        class: u32,
        event: &str,
        key: &[u8],
        db: usize,
    ) {
        self.notify_new_keys(current.as_deref_mut());
        self.publish_keyspace_event(current, class, event, key, db);
    }

    /// The `new` events of keys added since the last call, in the order they were added
    /// (before the event of the command that added them, as Redis's `dbAdd` fires it first).
    pub fn notify_new_keys(&mut self, mut current: Option<&mut Client>) {
        if self.config.hot.notify_keyspace_events & class::NEW == 0 {
            return;
        }
        for db in 0..self.dbs.len() {
            let keys = match &mut self.dbs[db].added {
                Some(a) if !a.is_empty() => std::mem::take(a),
                _ => continue,
            };
            for key in &keys {
                self.publish_keyspace_event(current.as_deref_mut(), class::NEW, "new", key, db);
            }
        }
    }

    /// Keeps the dbs' lists of added keys while the `new` event is enabled, and none while
    /// it is not (checked before each command: CONFIG SET or a replaced dataset change it).
    pub fn track_new_keys(&mut self) {
        let on = self.config.hot.notify_keyspace_events & class::NEW != 0;
        if on == self.dbs.first().is_some_and(|db| db.added.is_some()) {
            return;
        }
        for db in &mut self.dbs {
            db.added = on.then(Vec::new);
        }
    }

    /// Keys that came from loading a file or a master's RDB are not new (Redis loads them
    /// with `dbAddRDBLoad`, which notifies nothing).
    pub fn forget_added_keys(&mut self) {
        for db in &mut self.dbs {
            if let Some(a) = &mut db.added {
                a.clear();
            }
        }
    }

    fn publish_keyspace_event(
        &mut self,
        mut current: Option<&mut Client>,
        class: u32,
        event: &str,
        key: &[u8],
        db: usize,
    ) {
        let flags = self.config.hot.notify_keyspace_events;
        if flags & class == 0 {
            return;
        }
        if flags & class::KEYSPACE != 0 {
            let mut channel = format!("__keyspace@{db}__:").into_bytes();
            channel.extend_from_slice(key);
            self.publish_message(current.as_deref_mut(), &channel, event.as_bytes(), false);
        }
        if flags & class::KEYEVENT != 0 {
            let channel = format!("__keyevent@{db}__:{event}");
            self.publish_message(current, channel.as_bytes(), key, false);
        }
    }

    /// A key the server deleted by itself: its watchers' transactions fail, and the event
    /// (`expired` or `evicted`) is notified.
    pub fn deleted_by_server(&mut self, current: Option<&mut Client>, db: usize, key: &[u8], why: Removal) {
        let (class, event) = match why {
            Removal::Expired => (class::EXPIRED, "expired"),
            Removal::Evicted => (class::EVICTED, "evicted"),
        };
        self.notify_keyspace_event(current, class, event, key, db);
        self.touch_watched_key(db, key);
    }
}

#[cfg(test)]
mod tests {
    use crate::commands::testing::{advance, run, server};
    use bytes::Bytes;

    fn subscriber(srv: &mut crate::server::Server, channels: &[&str]) -> u64 {
        let id = srv.add_client("127.0.0.1:1".into(), "127.0.0.1:6379".into());
        let mut argv = vec![Bytes::from_static(b"PSUBSCRIBE")];
        argv.extend(channels.iter().map(|c| Bytes::copy_from_slice(c.as_bytes())));
        srv.process(id, argv);
        srv.clients.get_mut(&id).unwrap().out.buf.clear();
        id
    }

    fn received(srv: &mut crate::server::Server, id: u64) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut srv.clients.get_mut(&id).unwrap().out.buf)).replace("\r\n", " ")
    }

    #[test]
    fn keyspace_then_keyevent_messages_when_both_are_enabled() {
        let mut srv = server();
        run(&mut srv, &["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
        let sub = subscriber(&mut srv, &["__key*"]);
        run(&mut srv, &["SET", "k", "v"]);
        assert_eq!(
            received(&mut srv, sub),
            "*4 $8 pmessage $6 __key* $16 __keyspace@0__:k $3 set \
             *4 $8 pmessage $6 __key* $18 __keyevent@0__:set $1 k "
        );
    }

    #[test]
    fn disabled_classes_publish_nothing() {
        let mut srv = server();
        run(&mut srv, &["CONFIG", "SET", "notify-keyspace-events", "Kl"]);
        let sub = subscriber(&mut srv, &["*"]);
        run(&mut srv, &["SET", "k", "v"]);
        assert_eq!(received(&mut srv, sub), "");
        run(&mut srv, &["RPUSH", "l", "a"]);
        assert_eq!(received(&mut srv, sub), "*4 $8 pmessage $1 * $16 __keyspace@0__:l $5 rpush ");
    }

    #[test]
    fn lazy_expiry_notifies_expired() {
        let mut srv = server();
        run(&mut srv, &["CONFIG", "SET", "notify-keyspace-events", "Ex"]);
        run(&mut srv, &["SET", "k", "v", "PX", "5"]);
        let sub = subscriber(&mut srv, &["*"]);
        advance(&mut srv, 10);
        run(&mut srv, &["GET", "k"]);
        assert_eq!(received(&mut srv, sub), "*4 $8 pmessage $1 * $22 __keyevent@0__:expired $1 k ");
    }
}

#[cfg(test)]
mod new_event_tests {
    use crate::commands::testing::{run, server};
    use bytes::Bytes;

    #[test]
    fn new_fires_before_the_commands_event_for_added_keys_only() {
        let mut srv = server();
        run(&mut srv, &["CONFIG", "SET", "notify-keyspace-events", "En"]);
        let id = srv.add_client("127.0.0.1:1".into(), "127.0.0.1:6379".into());
        srv.process(id, vec![Bytes::from_static(b"PSUBSCRIBE"), Bytes::from_static(b"*")]);
        srv.clients.get_mut(&id).unwrap().out.buf.clear();
        run(&mut srv, &["SET", "k", "v"]);
        run(&mut srv, &["SET", "k", "w"]);
        let got = String::from_utf8_lossy(&std::mem::take(&mut srv.clients.get_mut(&id).unwrap().out.buf))
            .replace("\r\n", " ");
        assert_eq!(got, "*4 $8 pmessage $1 * $18 __keyevent@0__:new $1 k ");
    }
}

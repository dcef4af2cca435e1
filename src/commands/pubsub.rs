//! Publish/subscribe (Redis's `pubsub.c`): clients subscribe to channels, glob patterns and
//! shard channels; PUBLISH writes a message into every subscriber's output buffer and wakes
//! its driver task, which may be idle in a read. Delivery order is deterministic: channel
//! subscribers in the order they subscribed, then patterns in byte order (Redis walks a hash
//! table there), each pattern's subscribers in subscription order.
//!
//! A RESP2 client with subscriptions may only (un)subscribe, PING, QUIT and RESET
//! (`commands::process_command` enforces it); RESP3 clients get messages as push frames and
//! may run anything.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::{CmdError, CmdResult, Ctx, Handler};
use crate::protocol::ReplyBuf;
use crate::server::client::ClientType;
use crate::server::log::Level;
use crate::server::{Client, Server};

pub const COMMANDS: &[(&str, Handler)] = &[
    ("subscribe", subscribe),
    ("unsubscribe", unsubscribe),
    ("psubscribe", psubscribe),
    ("punsubscribe", punsubscribe),
    ("ssubscribe", ssubscribe),
    ("sunsubscribe", sunsubscribe),
    ("publish", publish_cmd),
    ("spublish", spublish_cmd),
    ("pubsub|channels", pubsub_channels),
    ("pubsub|shardchannels", pubsub_shardchannels),
    ("pubsub|numsub", pubsub_numsub),
    ("pubsub|shardnumsub", pubsub_shardnumsub),
    ("pubsub|numpat", pubsub_numpat),
    ("pubsub|help", pubsub_help),
];

/// Index of the pubsub class in `client-output-buffer-limit` (normal, replica, pubsub).
const OBUF_CLASS_PUBSUB: usize = 2;
/// Redis's static reply buffer (`PROTO_REPLY_CHUNK_BYTES`), which its limits do not count.
const PROTO_REPLY_CHUNK_BYTES: u64 = 16 * 1024;

/// A client's subscriptions. `active` is Redis's CLIENT_PUBSUB: set by any subscribe,
/// cleared when the last subscription goes.
#[derive(Debug, Clone, Default)]
pub struct Subscriptions {
    pub active: bool,
    pub channels: BTreeSet<Bytes>,
    /// In subscription order, as Redis's list.
    pub patterns: Vec<Bytes>,
    pub shard_channels: BTreeSet<Bytes>,
}

impl Subscriptions {
    /// `clientSubscriptionsCount`: what (P)SUBSCRIBE replies count.
    pub fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    fn total(&self) -> usize {
        self.count() + self.shard_channels.len()
    }
}

/// The server's side: subscribers of each channel, pattern and shard channel, in the order
/// they subscribed.
#[derive(Debug, Default)]
pub struct PubSub {
    pub channels: BTreeMap<Bytes, Vec<u64>>,
    pub patterns: BTreeMap<Bytes, Vec<u64>>,
    pub shard_channels: BTreeMap<Bytes, Vec<u64>>,
}

impl PubSub {
    fn map_mut(&mut self, kind: Kind) -> &mut BTreeMap<Bytes, Vec<u64>> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard_channels,
        }
    }
}

fn add_subscriber(map: &mut BTreeMap<Bytes, Vec<u64>>, name: &Bytes, id: u64) {
    map.entry(name.clone()).or_default().push(id);
}

fn remove_subscriber(map: &mut BTreeMap<Bytes, Vec<u64>>, name: &[u8], id: u64) {
    if let Some(ids) = map.get_mut(name) {
        ids.retain(|&c| c != id);
        if ids.is_empty() {
            map.remove(name);
        }
    }
}

/// Which kind of subscription a command deals with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Channel,
    Pattern,
    Shard,
}

impl Kind {
    fn sub_name(self) -> &'static str {
        match self {
            Kind::Channel => "subscribe",
            Kind::Pattern => "psubscribe",
            Kind::Shard => "ssubscribe",
        }
    }

    fn unsub_name(self) -> &'static str {
        match self {
            Kind::Channel => "unsubscribe",
            Kind::Pattern => "punsubscribe",
            Kind::Shard => "sunsubscribe",
        }
    }

    /// The count a (un)subscribe reply carries.
    fn count(self, s: &Subscriptions) -> usize {
        match self {
            Kind::Shard => s.shard_channels.len(),
            _ => s.count(),
        }
    }
}

/// Writes `[kind, name or nil, count]` as a push frame (an array in RESP2).
fn reply_subscription(out: &mut ReplyBuf, kind: &str, name: Option<&[u8]>, count: usize) {
    out.push(3);
    out.bulk_str(kind);
    match name {
        Some(n) => out.bulk(n),
        None => out.null(),
    }
    out.int(count as i64);
}

/// Adds one subscription; false when the client already had it.
fn subscribe_one(srv: &mut Server, c: &mut Client, kind: Kind, name: &Bytes) -> bool {
    let s = &mut c.pubsub;
    let added = match kind {
        Kind::Channel => s.channels.insert(name.clone()),
        Kind::Shard => s.shard_channels.insert(name.clone()),
        Kind::Pattern if s.patterns.contains(name) => false,
        Kind::Pattern => {
            s.patterns.push(name.clone());
            true
        }
    };
    if added {
        add_subscriber(srv.pubsub.map_mut(kind), name, c.id);
    }
    added
}

/// Removes one subscription; false when the client did not have it.
fn unsubscribe_one(srv: &mut Server, c: &mut Client, kind: Kind, name: &[u8]) -> bool {
    let s = &mut c.pubsub;
    let removed = match kind {
        Kind::Channel => s.channels.remove(name),
        Kind::Shard => s.shard_channels.remove(name),
        Kind::Pattern => {
            let before = s.patterns.len();
            s.patterns.retain(|p| p != name);
            s.patterns.len() != before
        }
    };
    if removed {
        remove_subscriber(srv.pubsub.map_mut(kind), name, c.id);
    }
    removed
}

fn names_of(s: &Subscriptions, kind: Kind) -> Vec<Bytes> {
    match kind {
        Kind::Channel => s.channels.iter().cloned().collect(),
        Kind::Pattern => s.patterns.clone(),
        Kind::Shard => s.shard_channels.iter().cloned().collect(),
    }
}

impl Server {
    /// Drops every subscription of a client that disconnects or RESETs, without replies.
    pub fn pubsub_unsubscribe_all(&mut self, c: &mut Client) {
        for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
            for name in names_of(&c.pubsub, kind) {
                unsubscribe_one(self, c, kind, &name);
            }
        }
        c.pubsub.active = false;
    }

    /// Redis's `pubsubPublishMessage`: delivers `msg` to the subscribers of `channel` (and,
    /// unless `shard`, of the patterns matching it). `current` is the client running the
    /// command, which is out of the client map meanwhile. Returns the number of receivers.
    pub fn publish_message(
        &mut self,
        mut current: Option<&mut Client>,
        channel: &[u8],
        msg: &[u8],
        shard: bool,
    ) -> usize {
        let mut receivers = 0;
        let map = if shard { &self.pubsub.shard_channels } else { &self.pubsub.channels };
        let direct: Vec<u64> = map.get(channel).cloned().unwrap_or_default();
        let kind = if shard { "smessage" } else { "message" };
        for id in direct {
            receivers += 1;
            self.deliver(&mut current, id, |out| {
                out.push(3);
                out.bulk_str(kind);
                out.bulk(channel);
                out.bulk(msg);
            });
        }
        if shard {
            return receivers;
        }
        let matching: Vec<(Bytes, Vec<u64>)> = self
            .pubsub
            .patterns
            .iter()
            .filter(|(p, _)| crate::util::glob_match(p, channel, false))
            .map(|(p, ids)| (p.clone(), ids.clone()))
            .collect();
        for (pattern, ids) in matching {
            for id in ids {
                receivers += 1;
                self.deliver(&mut current, id, |out| {
                    out.push(4);
                    out.bulk_str("pmessage");
                    out.bulk(&pattern);
                    out.bulk(channel);
                    out.bulk(msg);
                });
            }
        }
        receivers
    }

    /// Writes a message into client `id`'s buffer; wakes its driver, or closes it when the
    /// buffer went over the pubsub class's limits.
    fn deliver(&mut self, current: &mut Option<&mut Client>, id: u64, write: impl FnOnce(&mut ReplyBuf)) {
        let limits = self.config.hot.client_output_buffer_limit[OBUF_CLASS_PUBSUB];
        let now_ms = self.now.mono_ms;
        let over = match current {
            Some(c) if c.id == id => {
                write(&mut c.out);
                obuf_limit_reached(c, limits, now_ms)
            }
            _ => match self.clients.get_mut(&id) {
                // CLIENT REPLY OFF silences messages too; they still count as received.
                Some(c) if c.reply_off || c.close_asap => false,
                Some(c) => {
                    write(&mut c.out);
                    self.wakeups.push(id);
                    obuf_limit_reached(c, limits, now_ms)
                }
                None => false,
            },
        };
        if over {
            self.log(
                Level::Warning,
                &format!("Client id={id} scheduled to be closed ASAP for overcoming of output buffer limits."),
            );
            match current {
                Some(c) if c.id == id => c.close_asap = true,
                _ => self.kill_client(id),
            }
        }
    }
}

/// Redis's `checkClientOutputBufferLimits` for a pubsub client: over the hard limit, or over
/// the soft limit for longer than its seconds. `limits` is (hard, soft, soft seconds).
fn obuf_limit_reached(c: &mut Client, (hard, soft, soft_secs): (u64, u64, u64), now_ms: u64) -> bool {
    if c.client_type() != ClientType::Pubsub || c.close_asap {
        return false;
    }
    let used = (c.out.len() as u64).saturating_sub(PROTO_REPLY_CHUNK_BYTES);
    if hard > 0 && used >= hard {
        return true;
    }
    if soft > 0 && used >= soft {
        let since = *c.obuf_soft_limit_since_ms.get_or_insert(now_ms);
        return now_ms.saturating_sub(since) > soft_secs * 1000;
    }
    c.obuf_soft_limit_since_ms = None;
    false
}

fn subscribe_generic(ctx: &mut Ctx, a: &[Bytes], kind: Kind) -> CmdResult {
    for name in &a[1..] {
        subscribe_one(ctx.srv, ctx.client, kind, name);
        let count = kind.count(&ctx.client.pubsub);
        reply_subscription(&mut ctx.client.out, kind.sub_name(), Some(name), count);
    }
    ctx.client.pubsub.active = true;
    Ok(())
}

fn unsubscribe_generic(ctx: &mut Ctx, a: &[Bytes], kind: Kind) -> CmdResult {
    let names = if a.len() > 1 { a[1..].to_vec() } else { names_of(&ctx.client.pubsub, kind) };
    if names.is_empty() {
        let count = kind.count(&ctx.client.pubsub);
        reply_subscription(&mut ctx.client.out, kind.unsub_name(), None, count);
    }
    for name in &names {
        unsubscribe_one(ctx.srv, ctx.client, kind, name);
        let count = kind.count(&ctx.client.pubsub);
        reply_subscription(&mut ctx.client.out, kind.unsub_name(), Some(name), count);
    }
    if ctx.client.pubsub.total() == 0 {
        ctx.client.pubsub.active = false;
    }
    Ok(())
}

fn subscribe(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    subscribe_generic(ctx, a, Kind::Channel)
}

fn psubscribe(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    subscribe_generic(ctx, a, Kind::Pattern)
}

fn ssubscribe(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    if ctx.client.deny_blocking() {
        return Err(CmdError::err("SSUBSCRIBE isn't allowed for a DENY BLOCKING client"));
    }
    subscribe_generic(ctx, a, Kind::Shard)
}

fn unsubscribe(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    unsubscribe_generic(ctx, a, Kind::Channel)
}

fn punsubscribe(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    unsubscribe_generic(ctx, a, Kind::Pattern)
}

fn sunsubscribe(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    unsubscribe_generic(ctx, a, Kind::Shard)
}

fn publish_cmd(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let n = ctx.srv.publish_message(Some(ctx.client), &a[1], &a[2], false);
    if let Some(c) = ctx.srv.cluster.as_deref_mut() {
        c.propagate_publish(false, &a[1], &a[2]);
    }
    ctx.out().int(n as i64);
    Ok(())
}

fn spublish_cmd(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let n = ctx.srv.publish_message(Some(ctx.client), &a[1], &a[2], true);
    if let Some(c) = ctx.srv.cluster.as_deref_mut() {
        c.propagate_publish(true, &a[1], &a[2]);
    }
    ctx.out().int(n as i64);
    Ok(())
}

fn reply_matching_names(ctx: &mut Ctx, a: &[Bytes], shard: bool) -> CmdResult {
    if a.len() > 3 {
        return Err(super::server_cmds::subcommand_syntax_error(a));
    }
    let pattern = a.get(2).map(|p| &p[..]);
    let map = if shard { &ctx.srv.pubsub.shard_channels } else { &ctx.srv.pubsub.channels };
    let names: Vec<Bytes> =
        map.keys().filter(|c| pattern.is_none_or(|p| crate::util::glob_match(p, c, false))).cloned().collect();
    let out = &mut ctx.client.out;
    out.array(names.len());
    for n in names {
        out.bulk(&n);
    }
    Ok(())
}

fn reply_numsub(ctx: &mut Ctx, a: &[Bytes], shard: bool) -> CmdResult {
    let map = if shard { &ctx.srv.pubsub.shard_channels } else { &ctx.srv.pubsub.channels };
    let out = &mut ctx.client.out;
    // A flat array even in RESP3, as Redis 7.0 replies.
    out.array(2 * (a.len() - 2));
    for ch in &a[2..] {
        out.bulk(ch);
        out.int(map.get(ch).map_or(0, Vec::len) as i64);
    }
    Ok(())
}

fn pubsub_channels(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    reply_matching_names(ctx, a, false)
}

fn pubsub_shardchannels(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    reply_matching_names(ctx, a, true)
}

fn pubsub_numsub(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    reply_numsub(ctx, a, false)
}

fn pubsub_shardnumsub(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    reply_numsub(ctx, a, true)
}

fn pubsub_numpat(ctx: &mut Ctx, _a: &[Bytes]) -> CmdResult {
    let n = ctx.srv.pubsub.patterns.len() as i64;
    ctx.out().int(n);
    Ok(())
}

const PUBSUB_HELP: &[&str] = &[
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
];

fn pubsub_help(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    super::server_cmds::reply_help(ctx, &a[0], PUBSUB_HELP);
    Ok(())
}

/// RESP2 subscribed mode (Redis's check in `processCommand`): the commands still allowed.
pub fn allowed_in_resp2_subscribed_mode(name: &str) -> bool {
    matches!(
        name,
        "ping"
            | "subscribe"
            | "ssubscribe"
            | "unsubscribe"
            | "sunsubscribe"
            | "psubscribe"
            | "punsubscribe"
            | "quit"
            | "reset"
    )
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, server};
    use super::*;

    fn cmd(srv: &mut Server, id: u64, argv: &[&str]) -> Vec<u8> {
        srv.process(id, argv.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect());
        std::mem::take(&mut srv.clients.get_mut(&id).unwrap().out.buf)
    }

    #[test]
    fn publish_reaches_channel_then_pattern_subscribers_and_wakes_them() {
        let mut srv = server();
        let a = srv.add_client("127.0.0.1:1".into(), "127.0.0.1:6379".into());
        let b = srv.add_client("127.0.0.1:2".into(), "127.0.0.1:6379".into());
        cmd(&mut srv, a, &["SUBSCRIBE", "news"]);
        cmd(&mut srv, b, &["PSUBSCRIBE", "n*", "x*"]);
        srv.wakeups.clear();
        assert_eq!(run(&mut srv, &["PUBLISH", "news", "hi"]), b":2\r\n");
        assert_eq!(srv.wakeups, [a, b]);
        let got_a = std::mem::take(&mut srv.clients.get_mut(&a).unwrap().out.buf);
        assert_eq!(got_a, b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n");
        let got_b = std::mem::take(&mut srv.clients.get_mut(&b).unwrap().out.buf);
        assert_eq!(got_b, b"*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$2\r\nhi\r\n");
        assert_eq!(run(&mut srv, &["PUBSUB", "NUMPAT"]), b":2\r\n");
        srv.remove_client(b);
        assert_eq!(run(&mut srv, &["PUBSUB", "NUMPAT"]), b":0\r\n");
    }

    #[test]
    fn resp2_subscribed_mode_refuses_other_commands_until_the_last_unsubscribe() {
        let mut srv = server();
        assert_eq!(run(&mut srv, &["SUBSCRIBE", "c"]), b"*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n");
        assert_eq!(
            run(&mut srv, &["GET", "k"]),
            b"-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed \
              in this context\r\n"
        );
        assert_eq!(run(&mut srv, &["PING"]), b"*2\r\n$4\r\npong\r\n$0\r\n\r\n");
        assert_eq!(run(&mut srv, &["UNSUBSCRIBE"]), b"*3\r\n$11\r\nunsubscribe\r\n$1\r\nc\r\n:0\r\n");
        assert_eq!(run(&mut srv, &["GET", "k"]), b"$-1\r\n");
    }

    #[test]
    fn a_slow_subscriber_over_the_hard_limit_is_closed() {
        let mut srv = server();
        srv.config.hot.client_output_buffer_limit[OBUF_CLASS_PUBSUB] = (100, 0, 0);
        let sub = srv.add_client("127.0.0.1:1".into(), "127.0.0.1:6379".into());
        cmd(&mut srv, sub, &["SUBSCRIBE", "c"]);
        run(&mut srv, &["PUBLISH", "c", &"x".repeat(16 * 1024)]);
        assert!(!srv.clients[&sub].close_asap);
        run(&mut srv, &["PUBLISH", "c", &"x".repeat(100)]);
        assert!(srv.clients[&sub].close_asap);
    }

    #[test]
    fn a_subscriber_over_the_soft_limit_for_longer_than_its_seconds_is_closed() {
        let mut srv = server();
        srv.config.hot.client_output_buffer_limit[OBUF_CLASS_PUBSUB] = (0, 100, 1);
        let sub = srv.add_client("127.0.0.1:1".into(), "127.0.0.1:6379".into());
        cmd(&mut srv, sub, &["SUBSCRIBE", "c"]);
        let big = "x".repeat(16 * 1024 + 100);
        run(&mut srv, &["PUBLISH", "c", &big]);
        super::super::testing::advance(&mut srv, 1000);
        run(&mut srv, &["PUBLISH", "c", "a"]);
        assert!(!srv.clients[&sub].close_asap, "over the soft limit for only 1 s");
        super::super::testing::advance(&mut srv, 1);
        run(&mut srv, &["PUBLISH", "c", "b"]);
        assert!(srv.clients[&sub].close_asap);
    }
}

//! Which node serves a request (Redis's `getNodeByQuery` and `clusterRedirectClient`): all
//! keys of a command (of every queued command, for EXEC) must hash to one slot; the slot's
//! owner serves it, others answer MOVED. While a slot moves, its old owner serves the keys it
//! still has and sends the rest on with ASK; the new owner serves them only to a client that
//! said ASKING. A multi-key request that straddles the move gets TRYAGAIN.

use bytes::Bytes;

use super::{Cluster, ClusterNode, NodeName, State};
use crate::commands::meta::flag;
use crate::commands::{Command, CommandTable};
use crate::engine::db::Db;

/// Why a request is not served here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redirect {
    CrossSlot,
    /// Keys of a moving slot are split between the two nodes.
    TryAgain,
    Down,
    DownReadOnly,
    Unbound,
    Moved {
        slot: u16,
        node: NodeName,
    },
    Ask {
        slot: u16,
        node: NodeName,
    },
}

/// What a client may bypass.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientFlags {
    pub asking: bool,
    pub readonly: bool,
}

/// One command of the request: its table entry and arguments.
pub struct Query<'a> {
    pub cmd: &'a Command,
    pub argv: &'a [Bytes],
}

/// Redis's `getNodeByQuery`: Ok(Some(slot)) when this node serves the request and it has keys,
/// Ok(None) for a keyless one.
pub fn route(
    c: &Cluster,
    db0: &Db,
    now_ms: u64,
    queries: &[Query],
    client: ClientFlags,
    is_write: bool,
) -> Result<Option<u16>, Redirect> {
    let mut slot: Option<u16> = None;
    let mut first_key: Option<&[u8]> = None;
    let mut multiple_keys = false;
    let mut missing_keys = 0;
    let mut migrating = false;
    let mut importing = false;
    let mut is_migrate = false;
    for q in queries {
        let keys = crate::commands::server_cmds::command::keys_of(q.cmd.meta, q.argv);
        if keys.is_empty() {
            continue;
        }
        is_migrate |= q.cmd.meta.name == "migrate";
        for (pos, _) in keys {
            let key: &[u8] = &q.argv[pos];
            let this_slot = super::key_hash_slot(key);
            match slot {
                None => {
                    slot = Some(this_slot);
                    first_key = Some(key);
                    let Some(owner) = c.slots[this_slot as usize].as_deref() else {
                        return Err(Redirect::Unbound);
                    };
                    if owner == c.myself && c.migrating_to.contains_key(&this_slot) {
                        migrating = true;
                    } else if c.importing_from.contains_key(&this_slot) {
                        importing = true;
                    }
                }
                Some(s) if s != this_slot => return Err(Redirect::CrossSlot),
                Some(_) => {
                    if first_key != Some(key) {
                        multiple_keys = true;
                    }
                }
            }
            if (migrating || importing) && !present(db0, key, now_ms) {
                missing_keys += 1;
            }
        }
    }
    let Some(slot) = slot else { return Ok(None) };
    if c.state != State::Ok {
        if !c.conf.allow_reads_when_down {
            return Err(Redirect::Down);
        }
        if is_write {
            return Err(Redirect::DownReadOnly);
        }
    }
    let owner = c.slots[slot as usize].clone().expect("checked above");
    // MIGRATE moves whatever keys of an open slot this node has.
    if (migrating || importing) && is_migrate {
        return Ok(Some(slot));
    }
    if migrating && missing_keys > 0 {
        if multiple_keys {
            return Err(Redirect::TryAgain);
        }
        return Err(Redirect::Ask { slot, node: c.migrating_to[&slot].clone() });
    }
    let asking = client.asking || queries.iter().any(|q| q.cmd.has(flag::ASKING));
    if importing && asking {
        if multiple_keys && missing_keys > 0 {
            return Err(Redirect::TryAgain);
        }
        return Ok(Some(slot));
    }
    let me = c.me();
    if client.readonly && !is_write && me.is_replica() && me.slaveof.as_deref() == Some(owner.as_str()) {
        return Ok(Some(slot));
    }
    if owner != c.myself {
        return Err(Redirect::Moved { slot, node: owner });
    }
    Ok(Some(slot))
}

fn present(db: &Db, key: &[u8], now_ms: u64) -> bool {
    db.contains(key) && db.expire_of(key).is_none_or(|when| now_ms <= when)
}

/// cluster-preferred-endpoint-type as a number: 0 ip, 1 hostname, 2 unknown-endpoint.
pub fn preferred_endpoint(config: &crate::server::Config) -> u32 {
    match config.get("cluster-preferred-endpoint-type") {
        Some("hostname") => 1,
        Some("unknown-endpoint") => 2,
        _ => 0,
    }
}

/// The address clients are sent to (Redis's `getPreferredEndpoint` with the default `ip`).
pub fn endpoint(n: &ClusterNode, preferred: u32) -> String {
    match preferred {
        1 if !n.hostname.is_empty() => n.hostname.clone(),
        1 => "?".into(),
        2 => "?".into(),
        _ => n.ip.clone(),
    }
}

/// The error reply for a redirect (Redis's `clusterRedirectClient`).
pub fn error_text(c: &Cluster, r: &Redirect, preferred_endpoint: u32) -> String {
    match r {
        Redirect::CrossSlot => "CROSSSLOT Keys in request don't hash to the same slot".into(),
        Redirect::TryAgain => "TRYAGAIN Multiple keys request during rehashing of slot".into(),
        Redirect::Down => "CLUSTERDOWN The cluster is down".into(),
        Redirect::DownReadOnly => "CLUSTERDOWN The cluster is down and only accepts read commands".into(),
        Redirect::Unbound => "CLUSTERDOWN Hash slot not served".into(),
        Redirect::Moved { slot, node } | Redirect::Ask { slot, node } => {
            let kind = if matches!(r, Redirect::Moved { .. }) { "MOVED" } else { "ASK" };
            match c.nodes.get(node) {
                Some(n) => format!("{kind} {slot} {}:{}", endpoint(n, preferred_endpoint), n.port),
                None => format!("{kind} {slot} ?:0"),
            }
        }
    }
}

/// The commands a request runs: EXEC stands for its queued commands.
pub fn queries_of<'a>(
    table: &'a CommandTable,
    cmd: &'a Command,
    argv: &'a [Bytes],
    queued: Option<&'a crate::commands::multi::MultiState>,
) -> Vec<Query<'a>> {
    if cmd.meta.name == "exec" {
        return queued
            .map(|m| m.cmds.iter().map(|q| Query { cmd: &table.cmds[q.cmd], argv: &q.argv }).collect())
            .unwrap_or_default();
    }
    vec![Query { cmd, argv }]
}

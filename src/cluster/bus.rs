//! The Redis Cluster bus wire format (`clusterMsg` of Redis 7.0), sans IO: [`encode`] and
//! [`decode`] turn one packet into a [`Message`] and back, byte for byte as redis-server 7.0.15
//! writes it, and [`Framer`] cuts a byte stream into packets as `clusterReadHandler` does.
//!
//! Every packet is a fixed 2256-byte header followed by a body whose shape depends on the type.
//! Multi-byte integers are big-endian, except a MODULE message's `module_id`, which Redis copies
//! in host order (little-endian on the machines it runs on). A packet that Redis would drop as
//! malformed (`clusterProcessPacket`'s length checks) is a [`BusError`] here, with the offset and
//! field at fault; a few packets Redis would read past the end of are errors too (see
//! [`BusError::BadExtension`]).

use std::fmt;

/// Hash slots in a cluster (`CLUSTER_SLOTS`).
pub const SLOTS: usize = 16384;
/// Bytes of a slot bitmap: one bit per slot.
pub const SLOT_BITMAP_LEN: usize = SLOTS / 8;
/// Bytes of a node name: 40 hex characters, not NUL-terminated (`CLUSTER_NAMELEN`).
pub const NAMELEN: usize = 40;
/// Bytes of an IP address field, NUL-padded (`NET_IP_STR_LEN`).
pub const NET_IP_STR_LEN: usize = 46;
/// The first four bytes of every packet ("Redis Cluster message bus").
pub const SIGNATURE: [u8; 4] = *b"RCmb";
/// The only protocol version Redis 7.0 speaks; it ignores packets of any other.
pub const PROTO_VER: u16 = 1;
/// Bytes of the header, which is also the shortest packet (`CLUSTERMSG_MIN_LEN`).
pub const HEADER_LEN: usize = 2256;
/// Bytes of one gossip entry (`clusterMsgDataGossip`).
pub const GOSSIP_LEN: usize = 104;
/// Bytes of a ping extension's own header (length u32, type u16, unused u16).
pub const PING_EXT_HEADER_LEN: usize = 8;
/// Ping extension type of the announced hostname, the only one Redis 7.0 sends.
pub const PING_EXT_TYPE_HOSTNAME: u16 = 0;
/// Bytes the framer needs to learn a packet's length: signature and `totlen`.
pub const PREFIX_LEN: usize = 8;
/// Largest packet the [`Framer`] accepts by default (bytes). Redis itself has no limit below
/// 4 GiB; the biggest packet a client can cause is a PUBLISH, and a client's whole command is
/// held to `client-query-buffer-limit` (1 GiB), so nothing honest is bigger than this.
pub const DEFAULT_MAX_PACKET_LEN: usize = 1024 * 1024 * 1024 + HEADER_LEN + 8;

const FAIL_BODY_LEN: usize = NAMELEN;
const PUBLISH_FIXED_LEN: usize = 8; // channel_len u32, message_len u32
const UPDATE_BODY_LEN: usize = 8 + NAMELEN + SLOT_BITMAP_LEN;
const MODULE_FIXED_LEN: usize = 8 + 4 + 1; // module_id u64, len u32, type u8

/// Header field offsets, from the `static_assert`s beside `clusterMsg` in cluster.h.
mod off {
    pub const TOTLEN: usize = 4;
    pub const VER: usize = 8;
    pub const PORT: usize = 10;
    pub const TYPE: usize = 12;
    pub const COUNT: usize = 14;
    pub const CURRENT_EPOCH: usize = 16;
    pub const CONFIG_EPOCH: usize = 24;
    pub const OFFSET: usize = 32;
    pub const SENDER: usize = 40;
    pub const MYSLOTS: usize = 80;
    pub const SLAVEOF: usize = 2128;
    pub const MYIP: usize = 2168;
    pub const EXTENSIONS: usize = 2214;
    pub const NOTUSED1: usize = 2216;
    pub const PPORT: usize = 2246;
    pub const CPORT: usize = 2248;
    pub const FLAGS: usize = 2250;
    pub const STATE: usize = 2252;
    pub const MFLAGS: usize = 2253;
    pub const DATA: usize = 2256;

    /// (offset, name) of each header field, in order, for naming where a packet was cut.
    pub const FIELDS: [(usize, &str); 21] = [
        (0, "sig"),
        (TOTLEN, "totlen"),
        (VER, "ver"),
        (PORT, "port"),
        (TYPE, "type"),
        (COUNT, "count"),
        (CURRENT_EPOCH, "currentEpoch"),
        (CONFIG_EPOCH, "configEpoch"),
        (OFFSET, "offset"),
        (SENDER, "sender"),
        (MYSLOTS, "myslots"),
        (SLAVEOF, "slaveof"),
        (MYIP, "myip"),
        (EXTENSIONS, "extensions"),
        (NOTUSED1, "notused1"),
        (PPORT, "pport"),
        (CPORT, "cport"),
        (FLAGS, "flags"),
        (STATE, "state"),
        (MFLAGS, "mflags"),
        (DATA, "data"),
    ];
}

/// Message types (`CLUSTERMSG_TYPE_*`), the header's `type` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u16)]
pub enum MsgType {
    Ping = 0,
    Pong = 1,
    /// A PING that makes the receiver add the sender to its node table.
    Meet = 2,
    Fail = 3,
    Publish = 4,
    FailoverAuthRequest = 5,
    FailoverAuthAck = 6,
    Update = 7,
    MfStart = 8,
    Module = 9,
    PublishShard = 10,
}

impl MsgType {
    /// The type with this wire number, if Redis 7.0 knows it.
    pub fn from_u16(n: u16) -> Option<MsgType> {
        use MsgType::*;
        Some(match n {
            0 => Ping,
            1 => Pong,
            2 => Meet,
            3 => Fail,
            4 => Publish,
            5 => FailoverAuthRequest,
            6 => FailoverAuthAck,
            7 => Update,
            8 => MfStart,
            9 => Module,
            10 => PublishShard,
            _ => return None,
        })
    }

    /// Redis's name for the type, as in its log lines and `CLUSTER INFO` (`cluster_stats_messages_<name>_sent`).
    pub fn name(self) -> &'static str {
        use MsgType::*;
        match self {
            Ping => "ping",
            Pong => "pong",
            Meet => "meet",
            Fail => "fail",
            Publish => "publish",
            FailoverAuthRequest => "auth-req",
            FailoverAuthAck => "auth-ack",
            Update => "update",
            MfStart => "mfstart",
            Module => "module",
            PublishShard => "publishshard",
        }
    }
}

/// Node flag bits (`CLUSTER_NODE_*`), in the header's and each gossip entry's `flags`.
pub mod node_flags {
    pub const MASTER: u16 = 1;
    pub const SLAVE: u16 = 2;
    /// Not answering: a failure this node suspects and has not confirmed.
    pub const PFAIL: u16 = 4;
    pub const FAIL: u16 = 8;
    pub const MYSELF: u16 = 16;
    /// Met but not yet answered: the node still has a random name.
    pub const HANDSHAKE: u16 = 32;
    pub const NOADDR: u16 = 64;
    pub const MEET: u16 = 128;
    pub const MIGRATE_TO: u16 = 256;
    pub const NOFAILOVER: u16 = 512;
}

/// Bits of the header's `mflags[0]` (`CLUSTERMSG_FLAG0_*`).
pub mod mflags0 {
    /// The sending master has paused its clients for a manual failover.
    pub const PAUSED: u8 = 1;
    /// On a FAILOVER_AUTH_REQUEST: vote even though the master is up (manual failover).
    pub const FORCEACK: u8 = 2;
    /// PING/PONG/MEET: ping extensions follow the gossip entries.
    pub const EXT_DATA: u8 = 4;
}

/// Values of the header's `state` byte: the cluster state as the sender sees it.
pub mod cluster_state {
    pub const OK: u8 = 0;
    pub const FAIL: u8 = 1;
}

/// A node name: 40 bytes on the wire, in practice 40 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeName(pub [u8; NAMELEN]);

impl NodeName {
    /// 40 zero bytes: `CLUSTER_NODE_NULL_NAME`, what a master sends as its `slaveof`.
    pub const NULL: NodeName = NodeName([0; NAMELEN]);

    /// The name spelled by `s`, which must be exactly 40 bytes.
    pub fn new(s: &str) -> Option<NodeName> {
        let bytes: [u8; NAMELEN] = s.as_bytes().try_into().ok()?;
        Some(NodeName(bytes))
    }

    /// True for [`NodeName::NULL`].
    pub fn is_null(&self) -> bool {
        self.0 == [0; NAMELEN]
    }

    /// The name as text, if it is text (a name from Redis always is).
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_str() {
            Some(s) => f.write_str(s),
            None => write!(f, "{}", self.0.escape_ascii()),
        }
    }
}

impl fmt::Debug for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeName(\"{}\")", self.0.escape_ascii())
    }
}

/// A bitmap of hash slots, bit `slot & 7` of byte `slot / 8` (Redis's `bitmapTestBit`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SlotBitmap(pub Box<[u8; SLOT_BITMAP_LEN]>);

impl SlotBitmap {
    /// No slots.
    pub fn new() -> SlotBitmap {
        SlotBitmap(Box::new([0; SLOT_BITMAP_LEN]))
    }

    /// Whether `slot` is in the set. Panics if `slot >= SLOTS`.
    pub fn get(&self, slot: usize) -> bool {
        assert!(slot < SLOTS, "slot {slot} out of range");
        self.0[slot / 8] & (1 << (slot & 7)) != 0
    }

    /// Adds `slot`. Panics if `slot >= SLOTS`.
    pub fn set(&mut self, slot: usize) {
        assert!(slot < SLOTS, "slot {slot} out of range");
        self.0[slot / 8] |= 1 << (slot & 7);
    }

    /// Removes `slot`. Panics if `slot >= SLOTS`.
    pub fn clear(&mut self, slot: usize) {
        assert!(slot < SLOTS, "slot {slot} out of range");
        self.0[slot / 8] &= !(1 << (slot & 7));
    }

    /// How many slots are in the set.
    pub fn count(&self) -> usize {
        self.0.iter().map(|b| b.count_ones() as usize).sum()
    }

    /// The slots in the set as inclusive `(start, end)` ranges, ascending.
    pub fn ranges(&self) -> Vec<(usize, usize)> {
        let mut out: Vec<(usize, usize)> = Vec::new();
        for slot in (0..SLOTS).filter(|&s| self.get(s)) {
            match out.last_mut() {
                Some((_, end)) if *end + 1 == slot => *end = slot,
                _ => out.push((slot, slot)),
            }
        }
        out
    }
}

impl Default for SlotBitmap {
    fn default() -> Self {
        SlotBitmap::new()
    }
}

impl fmt::Debug for SlotBitmap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SlotBitmap[")?;
        for (i, (start, end)) in self.ranges().into_iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            if start == end {
                write!(f, "{sep}{start}")?;
            } else {
                write!(f, "{sep}{start}-{end}")?;
            }
        }
        f.write_str("]")
    }
}

/// The header every packet starts with, less what [`encode`] derives: the signature, `totlen`,
/// `ver`, `type` (from the [`Body`]), `count` and `extensions` (from a PING's body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The sender's client port (TLS port when TLS is on).
    pub port: u16,
    pub current_epoch: u64,
    /// The sender's config epoch, or its master's if it is a replica.
    pub config_epoch: u64,
    /// Replication offset: the master's, or what the replica has processed.
    pub offset: u64,
    pub sender: NodeName,
    /// Slots the sender serves, or its master serves if it is a replica.
    pub myslots: SlotBitmap,
    /// The sender's master; `None` is the all-zero name a master sends.
    pub slaveof: Option<NodeName>,
    /// `cluster-announce-ip`; empty (all zero on the wire) means "use the address you see".
    pub myip: String,
    /// Plaintext client port when `port` is the TLS one, else 0.
    pub pport: u16,
    /// The sender's cluster bus port.
    pub cport: u16,
    /// The sender's [`node_flags`], `MYSELF` included.
    pub flags: u16,
    /// [`cluster_state`] as the sender sees it.
    pub state: u8,
    /// Message flags; `mflags[0]` holds the [`mflags0`] bits, as on the wire. [`encode`] sets
    /// `EXT_DATA` when a PING carries extensions, and otherwise writes these as given.
    pub mflags: [u8; 3],
}

impl Header {
    /// A header from `sender` with every other field zero or empty.
    pub fn new(sender: NodeName) -> Header {
        Header {
            port: 0,
            current_epoch: 0,
            config_epoch: 0,
            offset: 0,
            sender,
            myslots: SlotBitmap::new(),
            slaveof: None,
            myip: String::new(),
            pport: 0,
            cport: 0,
            flags: 0,
            state: cluster_state::OK,
            mflags: [0; 3],
        }
    }
}

/// One gossip entry of a PING/PONG/MEET: what the sender knows of another node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gossip {
    pub nodename: NodeName,
    /// When the sender last pinged the node without an answer yet, Unix seconds (0: none pending).
    pub ping_sent_secs: u32,
    /// When the sender last got a PONG from the node, Unix seconds.
    pub pong_received_secs: u32,
    /// Up to 46 bytes on the wire.
    pub ip: String,
    pub port: u16,
    pub cport: u16,
    /// The node's [`node_flags`] as the sender knows them.
    pub flags: u16,
    pub pport: u16,
}

/// The part of a packet after the header; its variant decides the header's `type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// PING, PONG and MEET, which share one layout.
    Ping {
        kind: PingKind,
        gossip: Vec<Gossip>,
        /// The hostname extension (`cluster-announce-hostname`). Decoding skips extension types
        /// Redis 7.0 does not know (7.2 added some) and keeps the last hostname if there are several.
        hostname: Option<String>,
    },
    /// The sender marked `nodename` as failed.
    Fail {
        nodename: NodeName,
    },
    /// PUBLISH (`shard: false`) or SPUBLISH (`shard: true`) propagated across the bus.
    Publish {
        shard: bool,
        channel: Vec<u8>,
        message: Vec<u8>,
    },
    FailoverAuthRequest,
    FailoverAuthAck,
    /// Newer slot configuration of `nodename`, sent to a node that advertised an old one.
    Update {
        config_epoch: u64,
        nodename: NodeName,
        slots: SlotBitmap,
    },
    /// A replica asks its master to pause clients for a manual failover.
    MfStart,
    /// A module's message (`RM_SendClusterMessage`).
    Module {
        module_id: u64,
        module_type: u8,
        payload: Vec<u8>,
    },
}

/// Which of the three ping-shaped messages a [`Body::Ping`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PingKind {
    Ping,
    Pong,
    Meet,
}

impl Body {
    /// The header `type` this body is sent with.
    pub fn msg_type(&self) -> MsgType {
        match self {
            Body::Ping { kind: PingKind::Ping, .. } => MsgType::Ping,
            Body::Ping { kind: PingKind::Pong, .. } => MsgType::Pong,
            Body::Ping { kind: PingKind::Meet, .. } => MsgType::Meet,
            Body::Fail { .. } => MsgType::Fail,
            Body::Publish { shard: false, .. } => MsgType::Publish,
            Body::Publish { shard: true, .. } => MsgType::PublishShard,
            Body::FailoverAuthRequest => MsgType::FailoverAuthRequest,
            Body::FailoverAuthAck => MsgType::FailoverAuthAck,
            Body::Update { .. } => MsgType::Update,
            Body::MfStart => MsgType::MfStart,
            Body::Module { .. } => MsgType::Module,
        }
    }
}

/// One cluster bus packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub header: Header,
    pub body: Body,
}

/// Why bytes are not a packet Redis 7.0 would act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusError {
    /// The packet (of `len` bytes) ends before the end of `field`, which starts at `offset`.
    Truncated { field: &'static str, offset: usize, len: usize },
    /// The first four bytes are not "RCmb". Redis closes the link.
    BadSignature { found: [u8; 4] },
    /// `totlen` says one length and the buffer given to [`decode`] has another.
    TotlenMismatch { totlen: u32, len: usize },
    /// The framer saw a `totlen` below the header length. Redis closes the link.
    TotlenTooSmall { totlen: u32 },
    /// The framer saw a `totlen` above its limit.
    TotlenTooLarge { totlen: u32, max: usize },
    /// A protocol version other than 1. Redis ignores the packet.
    BadVersion { ver: u16 },
    /// A type Redis 7.0 does not know. Redis still takes the epochs and offset from the header of
    /// a known sender, then ignores the packet: hence the header.
    UnknownType { msg_type: u16, header: Box<Header> },
    /// `totlen` is not the length the type and its length fields add up to
    /// (`clusterProcessPacket`'s "expected length"). Redis ignores the packet.
    LengthMismatch { msg_type: MsgType, totlen: u32, expected: u64 },
    /// A ping extension at `offset` is malformed: its length is not a multiple of 8 or runs past
    /// the packet (Redis ignores the packet), is shorter than its own header, or a hostname has
    /// no NUL (Redis would read past the extension), or `extensions` is non-zero without
    /// `EXT_DATA` (Redis would read past the packet).
    BadExtension { offset: usize, reason: &'static str },
    /// A text field (IP, hostname) at `offset` is not UTF-8. Redis would take the bytes; no
    /// Redis ever sends them.
    BadText { field: &'static str, offset: usize },
}

impl fmt::Display for BusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BusError::Truncated { field, offset, len } => {
                write!(f, "packet of {len} bytes does not hold field {field} (at offset {offset})")
            }
            BusError::BadSignature { found } => {
                write!(f, "bad signature \"{}\" (at offset 0)", found.escape_ascii())
            }
            BusError::TotlenMismatch { totlen, len } => {
                write!(f, "totlen {totlen} but the packet is {len} bytes (at offset {})", off::TOTLEN)
            }
            BusError::TotlenTooSmall { totlen } => {
                write!(f, "totlen {totlen} is below the header length {HEADER_LEN} (at offset {})", off::TOTLEN)
            }
            BusError::TotlenTooLarge { totlen, max } => {
                write!(f, "totlen {totlen} is above the limit {max} (at offset {})", off::TOTLEN)
            }
            BusError::BadVersion { ver } => {
                write!(f, "protocol version {ver}, not {PROTO_VER} (at offset {})", off::VER)
            }
            BusError::UnknownType { msg_type, .. } => {
                write!(f, "unknown message type {msg_type} (at offset {})", off::TYPE)
            }
            BusError::LengthMismatch { msg_type, totlen, expected } => write!(
                f,
                "{} packet of length {totlen} but expected length {expected} (at offset {})",
                msg_type.name(),
                off::TOTLEN
            ),
            BusError::BadExtension { offset, reason } => {
                write!(f, "bad ping extension: {reason} (at offset {offset})")
            }
            BusError::BadText { field, offset } => write!(f, "field {field} is not UTF-8 (at offset {offset})"),
        }
    }
}

impl std::error::Error for BusError {}

// ---------------------------------------------------------------------------------------------
// Encoding

/// The packet for `msg`, as Redis 7.0.15 writes it: reserved bytes and padding zero, `count` the
/// number of gossip entries, a hostname extension padded to 8 bytes (`getHostnamePingExtSize`).
///
/// Text longer than its field is cut to fit (`myip` and gossip `ip` to 46 bytes); text is
/// expected not to contain NUL, which would end it early on the receiving side. Panics if the
/// packet would be longer than `u32::MAX` bytes or have more than 65535 gossip entries.
pub fn encode(msg: &Message) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_len(&msg.body));
    let (count, extensions, ext_flag) = match &msg.body {
        Body::Ping { gossip, hostname, .. } => {
            let count = u16::try_from(gossip.len()).expect("more than 65535 gossip entries");
            let n = u16::from(hostname.is_some());
            (count, n, if n > 0 { mflags0::EXT_DATA } else { 0 })
        }
        _ => (0, 0, 0),
    };
    write_header(&mut out, &msg.header, msg.body.msg_type(), count, extensions, ext_flag);
    write_body(&mut out, &msg.body);
    let totlen = u32::try_from(out.len()).expect("packet longer than u32::MAX bytes");
    out[off::TOTLEN..off::TOTLEN + 4].copy_from_slice(&totlen.to_be_bytes());
    debug_assert_eq!(out.len(), encoded_len(&msg.body));
    out
}

fn encoded_len(body: &Body) -> usize {
    HEADER_LEN
        + match body {
            Body::Ping { gossip, hostname, .. } => {
                gossip.len() * GOSSIP_LEN + hostname.as_ref().map_or(0, |h| hostname_ext_len(h.len()))
            }
            Body::Fail { .. } => FAIL_BODY_LEN,
            Body::Publish { channel, message, .. } => PUBLISH_FIXED_LEN + channel.len() + message.len(),
            Body::FailoverAuthRequest | Body::FailoverAuthAck | Body::MfStart => 0,
            Body::Update { .. } => UPDATE_BODY_LEN,
            Body::Module { payload, .. } => MODULE_FIXED_LEN + payload.len(),
        }
}

/// The extension header plus the hostname and its NUL, rounded up to 8 bytes.
fn hostname_ext_len(hostname_len: usize) -> usize {
    PING_EXT_HEADER_LEN + (hostname_len + 1).div_ceil(8) * 8
}

fn write_header(out: &mut Vec<u8>, h: &Header, msg_type: MsgType, count: u16, extensions: u16, ext_flag: u8) {
    out.extend_from_slice(&SIGNATURE);
    out.extend_from_slice(&[0; 4]); // totlen, patched by encode
    out.extend_from_slice(&PROTO_VER.to_be_bytes());
    out.extend_from_slice(&h.port.to_be_bytes());
    out.extend_from_slice(&(msg_type as u16).to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(&h.current_epoch.to_be_bytes());
    out.extend_from_slice(&h.config_epoch.to_be_bytes());
    out.extend_from_slice(&h.offset.to_be_bytes());
    out.extend_from_slice(&h.sender.0);
    out.extend_from_slice(&h.myslots.0[..]);
    out.extend_from_slice(&h.slaveof.unwrap_or(NodeName::NULL).0);
    put_padded(out, &h.myip, NET_IP_STR_LEN);
    out.extend_from_slice(&extensions.to_be_bytes());
    out.extend_from_slice(&[0; 30]); // notused1
    out.extend_from_slice(&h.pport.to_be_bytes());
    out.extend_from_slice(&h.cport.to_be_bytes());
    out.extend_from_slice(&h.flags.to_be_bytes());
    out.push(h.state);
    out.extend_from_slice(&[h.mflags[0] | ext_flag, h.mflags[1], h.mflags[2]]);
    debug_assert_eq!(out.len(), HEADER_LEN);
}

fn write_body(out: &mut Vec<u8>, body: &Body) {
    match body {
        Body::Ping { gossip, hostname, .. } => {
            gossip.iter().for_each(|g| write_gossip(out, g));
            if let Some(hostname) = hostname {
                let len = hostname_ext_len(hostname.len());
                out.extend_from_slice(&(len as u32).to_be_bytes());
                out.extend_from_slice(&PING_EXT_TYPE_HOSTNAME.to_be_bytes());
                out.extend_from_slice(&[0; 2]);
                put_padded(out, hostname, len - PING_EXT_HEADER_LEN);
            }
        }
        Body::Fail { nodename } => out.extend_from_slice(&nodename.0),
        Body::Publish { channel, message, .. } => {
            let channel_len = u32::try_from(channel.len()).expect("channel longer than u32::MAX");
            let message_len = u32::try_from(message.len()).expect("message longer than u32::MAX");
            out.extend_from_slice(&channel_len.to_be_bytes());
            out.extend_from_slice(&message_len.to_be_bytes());
            out.extend_from_slice(channel);
            out.extend_from_slice(message);
        }
        Body::FailoverAuthRequest | Body::FailoverAuthAck | Body::MfStart => {}
        Body::Update { config_epoch, nodename, slots } => {
            out.extend_from_slice(&config_epoch.to_be_bytes());
            out.extend_from_slice(&nodename.0);
            out.extend_from_slice(&slots.0[..]);
        }
        Body::Module { module_id, module_type, payload } => {
            let len = u32::try_from(payload.len()).expect("module payload longer than u32::MAX");
            // Redis copies the id unconverted ("already endian adjusted"): host order.
            out.extend_from_slice(&module_id.to_le_bytes());
            out.extend_from_slice(&len.to_be_bytes());
            out.push(*module_type);
            out.extend_from_slice(payload);
        }
    }
}

fn write_gossip(out: &mut Vec<u8>, g: &Gossip) {
    out.extend_from_slice(&g.nodename.0);
    out.extend_from_slice(&g.ping_sent_secs.to_be_bytes());
    out.extend_from_slice(&g.pong_received_secs.to_be_bytes());
    put_padded(out, &g.ip, NET_IP_STR_LEN);
    out.extend_from_slice(&g.port.to_be_bytes());
    out.extend_from_slice(&g.cport.to_be_bytes());
    out.extend_from_slice(&g.flags.to_be_bytes());
    out.extend_from_slice(&g.pport.to_be_bytes());
    out.extend_from_slice(&[0; 2]); // notused1
}

/// `s` cut to at most `width` bytes (at a character boundary), then NUL-padded to `width`.
fn put_padded(out: &mut Vec<u8>, s: &str, width: usize) {
    debug_assert!(!s.as_bytes().contains(&0), "NUL inside {s:?} would end it early");
    let cut = (0..=s.len().min(width)).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
    let bytes = &s.as_bytes()[..cut];
    out.extend_from_slice(bytes);
    out.resize(out.len() + width - bytes.len(), 0);
}

// ---------------------------------------------------------------------------------------------
// Decoding

/// Decodes one whole packet (`totlen` must be the length of `buf`), checking what
/// `clusterProcessPacket` checks before it acts on a packet: version, then the length the type
/// and its length fields imply against `totlen`.
pub fn decode(buf: &[u8]) -> Result<Message, BusError> {
    let totlen = check_prefix(buf)?;
    if buf.len() < off::COUNT + 2 {
        return Err(truncated_header(buf.len()));
    }
    let ver = be16(buf, off::VER);
    if ver != PROTO_VER {
        return Err(BusError::BadVersion { ver });
    }
    if buf.len() < HEADER_LEN {
        return Err(truncated_header(buf.len()));
    }
    let raw_type = be16(buf, off::TYPE);
    let Some(msg_type) = MsgType::from_u16(raw_type) else {
        return Err(BusError::UnknownType { msg_type: raw_type, header: Box::new(decode_header(buf)?) });
    };
    let expected = expected_len(buf, msg_type)?;
    if u64::from(totlen) != expected {
        return Err(BusError::LengthMismatch { msg_type, totlen, expected });
    }
    let header = decode_header(buf)?;
    let body = decode_body(buf, msg_type)?;
    Ok(Message { header, body })
}

/// Signature and `totlen`, which must match the buffer.
fn check_prefix(buf: &[u8]) -> Result<u32, BusError> {
    if buf.len() < PREFIX_LEN {
        return Err(truncated_header(buf.len()));
    }
    let found: [u8; 4] = [buf[0], buf[1], buf[2], buf[3]];
    if found != SIGNATURE {
        return Err(BusError::BadSignature { found });
    }
    let totlen = be32(buf, off::TOTLEN);
    if totlen as usize != buf.len() {
        return Err(BusError::TotlenMismatch { totlen, len: buf.len() });
    }
    Ok(totlen)
}

/// The packet is `len` bytes, short of the header: name the first field it does not hold whole.
fn truncated_header(len: usize) -> BusError {
    let (offset, field) = off::FIELDS.iter().rev().find(|(o, _)| *o <= len).copied().unwrap_or((0, "sig"));
    BusError::Truncated { field, offset, len }
}

/// `buf` holds at least `HEADER_LEN` bytes.
fn decode_header(buf: &[u8]) -> Result<Header, BusError> {
    let slaveof = name(buf, off::SLAVEOF);
    Ok(Header {
        port: be16(buf, off::PORT),
        current_epoch: be64(buf, off::CURRENT_EPOCH),
        config_epoch: be64(buf, off::CONFIG_EPOCH),
        offset: be64(buf, off::OFFSET),
        sender: name(buf, off::SENDER),
        myslots: bitmap(buf, off::MYSLOTS),
        slaveof: (!slaveof.is_null()).then_some(slaveof),
        myip: c_string(&buf[off::MYIP..off::MYIP + NET_IP_STR_LEN], "myip", off::MYIP)?,
        pport: be16(buf, off::PPORT),
        cport: be16(buf, off::CPORT),
        flags: be16(buf, off::FLAGS),
        state: buf[off::STATE],
        mflags: [buf[off::MFLAGS], buf[off::MFLAGS + 1], buf[off::MFLAGS + 2]],
    })
}

/// The length Redis expects a packet of this type to have, from the header and its length
/// fields; extensions are walked (and their framing checked) as `clusterProcessPacket` does.
fn expected_len(buf: &[u8], msg_type: MsgType) -> Result<u64, BusError> {
    let base = HEADER_LEN as u64;
    let need = |field: &'static str, offset: usize, n: usize| {
        if buf.len() < offset + n {
            Err(BusError::Truncated { field, offset, len: buf.len() })
        } else {
            Ok(())
        }
    };
    Ok(match msg_type {
        MsgType::Ping | MsgType::Pong | MsgType::Meet => {
            let count = be16(buf, off::COUNT) as usize;
            let gossip_end = HEADER_LEN + count * GOSSIP_LEN;
            if buf.len() < gossip_end {
                return Ok(gossip_end as u64);
            }
            let extensions = be16(buf, off::EXTENSIONS);
            if buf[off::MFLAGS] & mflags0::EXT_DATA == 0 {
                if extensions != 0 {
                    return Err(BusError::BadExtension {
                        offset: off::EXTENSIONS,
                        reason: "extensions without the EXT_DATA flag",
                    });
                }
                gossip_end as u64
            } else {
                let mut pos = gossip_end;
                for _ in 0..extensions {
                    pos += ext_len(buf, pos)?;
                }
                pos as u64
            }
        }
        MsgType::Fail => base + FAIL_BODY_LEN as u64,
        MsgType::Publish | MsgType::PublishShard => {
            need("channel_len", off::DATA, 4)?;
            need("message_len", off::DATA + 4, 4)?;
            let channel_len = u64::from(be32(buf, off::DATA));
            let message_len = u64::from(be32(buf, off::DATA + 4));
            base + PUBLISH_FIXED_LEN as u64 + channel_len + message_len
        }
        MsgType::FailoverAuthRequest | MsgType::FailoverAuthAck | MsgType::MfStart => base,
        MsgType::Update => base + UPDATE_BODY_LEN as u64,
        MsgType::Module => {
            need("module_id", off::DATA, 8)?;
            need("len", off::DATA + 8, 4)?;
            base + MODULE_FIXED_LEN as u64 + u64::from(be32(buf, off::DATA + 8))
        }
    })
}

/// The length of the extension at `pos`, checked to fit the packet and keep 8-byte alignment.
fn ext_len(buf: &[u8], pos: usize) -> Result<usize, BusError> {
    let bad = |reason| BusError::BadExtension { offset: pos, reason };
    if buf.len() - pos < PING_EXT_HEADER_LEN {
        return Err(bad("extension header runs past the packet"));
    }
    let len = be32(buf, pos) as usize;
    if !len.is_multiple_of(8) {
        return Err(bad("length is not a multiple of 8"));
    }
    if len < PING_EXT_HEADER_LEN {
        return Err(bad("length is shorter than the extension header"));
    }
    if len > buf.len() - pos {
        return Err(bad("extension runs past the packet"));
    }
    Ok(len)
}

/// The body of a packet whose length [`expected_len`] has approved.
fn decode_body(buf: &[u8], msg_type: MsgType) -> Result<Body, BusError> {
    let d = off::DATA;
    Ok(match msg_type {
        MsgType::Ping | MsgType::Pong | MsgType::Meet => {
            let kind = match msg_type {
                MsgType::Ping => PingKind::Ping,
                MsgType::Pong => PingKind::Pong,
                _ => PingKind::Meet,
            };
            let count = be16(buf, off::COUNT) as usize;
            let gossip = (0..count).map(|i| decode_gossip(buf, d + i * GOSSIP_LEN)).collect::<Result<_, _>>()?;
            let mut hostname = None;
            let mut pos = d + count * GOSSIP_LEN;
            while pos < buf.len() {
                let len = be32(buf, pos) as usize;
                if be16(buf, pos + 4) == PING_EXT_TYPE_HOSTNAME {
                    hostname = Some(hostname_ext(&buf[pos..pos + len], pos)?);
                }
                pos += len;
            }
            Body::Ping { kind, gossip, hostname }
        }
        MsgType::Fail => Body::Fail { nodename: name(buf, d) },
        MsgType::Publish | MsgType::PublishShard => {
            let channel_len = be32(buf, d) as usize;
            let bulk = &buf[d + PUBLISH_FIXED_LEN..];
            Body::Publish {
                shard: msg_type == MsgType::PublishShard,
                channel: bulk[..channel_len].to_vec(),
                message: bulk[channel_len..].to_vec(),
            }
        }
        MsgType::FailoverAuthRequest => Body::FailoverAuthRequest,
        MsgType::FailoverAuthAck => Body::FailoverAuthAck,
        MsgType::MfStart => Body::MfStart,
        MsgType::Update => {
            Body::Update { config_epoch: be64(buf, d), nodename: name(buf, d + 8), slots: bitmap(buf, d + 8 + NAMELEN) }
        }
        MsgType::Module => {
            Body::Module {
                module_id: be64(buf, d).swap_bytes(), // host order, see write_body
                module_type: buf[d + 12],
                payload: buf[d + MODULE_FIXED_LEN..].to_vec(),
            }
        }
    })
}

fn decode_gossip(buf: &[u8], at: usize) -> Result<Gossip, BusError> {
    Ok(Gossip {
        nodename: name(buf, at),
        ping_sent_secs: be32(buf, at + 40),
        pong_received_secs: be32(buf, at + 44),
        ip: c_string(&buf[at + 48..at + 48 + NET_IP_STR_LEN], "gossip ip", at + 48)?,
        port: be16(buf, at + 94),
        cport: be16(buf, at + 96),
        flags: be16(buf, at + 98),
        pport: be16(buf, at + 100),
    })
}

/// The hostname in a hostname extension `ext` (header included) found at `pos`.
fn hostname_ext(ext: &[u8], pos: usize) -> Result<String, BusError> {
    let data = &ext[PING_EXT_HEADER_LEN..];
    if !data.contains(&0) {
        return Err(BusError::BadExtension { offset: pos, reason: "hostname is not NUL-terminated" });
    }
    c_string(data, "hostname", pos + PING_EXT_HEADER_LEN)
}

/// The text before the first NUL of a fixed-width field (all of it if there is none).
fn c_string(field_bytes: &[u8], field: &'static str, offset: usize) -> Result<String, BusError> {
    let end = field_bytes.iter().position(|&b| b == 0).unwrap_or(field_bytes.len());
    String::from_utf8(field_bytes[..end].to_vec()).map_err(|_| BusError::BadText { field, offset })
}

// The readers below are only called where the length checks above have made room.

fn be16(buf: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([buf[at], buf[at + 1]])
}

fn be32(buf: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

fn be64(buf: &[u8], at: usize) -> u64 {
    let mut b = [0; 8];
    b.copy_from_slice(&buf[at..at + 8]);
    u64::from_be_bytes(b)
}

fn name(buf: &[u8], at: usize) -> NodeName {
    let mut n = [0; NAMELEN];
    n.copy_from_slice(&buf[at..at + NAMELEN]);
    NodeName(n)
}

fn bitmap(buf: &[u8], at: usize) -> SlotBitmap {
    let mut b = SlotBitmap::new();
    b.0.copy_from_slice(&buf[at..at + SLOT_BITMAP_LEN]);
    b
}

// ---------------------------------------------------------------------------------------------
// Framing

/// Cuts a cluster bus byte stream into packets, as `clusterReadHandler` does: the first 8 bytes
/// give the signature and `totlen`, checked before the rest is awaited, so a bad stream fails
/// after 8 bytes rather than after `totlen`. An error is final: the link must be closed, and
/// the framer repeats the error from then on.
#[derive(Debug)]
pub struct Framer {
    buf: Vec<u8>,
    /// Where the next packet starts in `buf`; bytes before it are consumed.
    start: usize,
    max_packet_len: usize,
    failed: Option<BusError>,
}

impl Framer {
    /// A framer that accepts packets up to [`DEFAULT_MAX_PACKET_LEN`] bytes.
    pub fn new() -> Framer {
        Framer::with_max_packet_len(DEFAULT_MAX_PACKET_LEN)
    }

    /// A framer that rejects a `totlen` above `max_packet_len` bytes.
    pub fn with_max_packet_len(max_packet_len: usize) -> Framer {
        Framer { buf: Vec::new(), start: 0, max_packet_len, failed: None }
    }

    /// Appends bytes read from the link.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes fed and not yet returned as a packet.
    pub fn buffered_len(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next whole packet, `Ok(None)` if more bytes are needed. Not an `Iterator`: "none
    /// yet" is not the end of the stream, and a bad prefix is an error.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Vec<u8>>, BusError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let pending = &self.buf[self.start..];
        if pending.len() < PREFIX_LEN {
            return Ok(None);
        }
        let totlen = be32(pending, off::TOTLEN);
        let error = if pending[..4] != SIGNATURE {
            Some(BusError::BadSignature { found: [pending[0], pending[1], pending[2], pending[3]] })
        } else if (totlen as usize) < HEADER_LEN {
            Some(BusError::TotlenTooSmall { totlen })
        } else if totlen as usize > self.max_packet_len {
            Some(BusError::TotlenTooLarge { totlen, max: self.max_packet_len })
        } else {
            None
        };
        if let Some(e) = error {
            self.failed = Some(e.clone());
            return Err(e);
        }
        let totlen = totlen as usize;
        if pending.len() < totlen {
            return Ok(None);
        }
        let packet = pending[..totlen].to_vec();
        self.start += totlen;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        Ok(Some(packet))
    }
}

impl Default for Framer {
    fn default() -> Self {
        Framer::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha8Rng;
    use rand_core::{RngCore, SeedableRng};

    /// The fake node of `scripts/capture-cluster-bus`: the name, ports and hostname it announces.
    const FAKE_NAME: &str = "fa4e000000000000000000000000000000000001";
    const FAKE_PORT: u16 = 17007;

    /// The PONG the capture script's fake node answers every MEET and PING with
    /// (`testdata/fake_node_pong.bin`); redis-server 7.0.15 completed its handshake on it.
    fn fake_node_pong() -> Message {
        let mut header = Header::new(NodeName::new(FAKE_NAME).expect("40 bytes"));
        header.port = FAKE_PORT;
        header.cport = FAKE_PORT + 10000;
        header.flags = node_flags::MASTER | node_flags::MYSELF;
        header.mflags[0] = mflags0::EXT_DATA; // encode would set it anyway; decode reports it
        Message {
            header,
            body: Body::Ping { kind: PingKind::Pong, gossip: vec![], hostname: Some("fake-node".into()) },
        }
    }

    const REDIS_A: &str = "6afb73058be5ca024fb72b03b021ffc3555be433";
    const REDIS_B: &str = "54049f79492af737192a2639cc3e31fb6f6b3243";
    const MEET_FROM_A: &[u8] = include_bytes!("testdata/meet_from_redis_a.bin");
    const PING_FROM_B: &[u8] = include_bytes!("testdata/ping_from_redis_b.bin");
    const PUBLISH_FROM_A: &[u8] = include_bytes!("testdata/publish_from_redis_a.bin");
    const FAKE_NODE_PONG: &[u8] = include_bytes!("testdata/fake_node_pong.bin");
    const FIXTURES: [&[u8]; 4] = [MEET_FROM_A, PING_FROM_B, PUBLISH_FROM_A, FAKE_NODE_PONG];

    fn nn(s: &str) -> NodeName {
        NodeName::new(s).expect("40 bytes")
    }

    fn slots(range: std::ops::RangeInclusive<usize>) -> SlotBitmap {
        let mut b = SlotBitmap::new();
        range.for_each(|s| b.set(s));
        b
    }

    // --- packets captured from redis-server 7.0.15 by scripts/capture-cluster-bus ---

    #[test]
    fn meet_from_redis_decodes_with_its_hostname_extension() {
        let m = decode(MEET_FROM_A).expect("real MEET decodes");
        let mut header = Header::new(nn(REDIS_A));
        header.port = 46943;
        header.cport = 56943;
        header.myslots = slots(0..=5460);
        header.flags = node_flags::MASTER | node_flags::MYSELF;
        header.state = cluster_state::FAIL;
        header.mflags = [mflags0::EXT_DATA, 0, 0];
        let body = Body::Ping { kind: PingKind::Meet, gossip: vec![], hostname: Some("redis-a".into()) };
        assert_eq!(m, Message { header, body });
        assert_eq!(encode(&m), MEET_FROM_A);
    }

    #[test]
    fn ping_from_redis_decodes_with_its_gossip_entry() {
        let m = decode(PING_FROM_B).expect("real PING decodes");
        let mut header = Header::new(nn(REDIS_B));
        header.port = 53725;
        header.cport = 63725;
        header.current_epoch = 1;
        header.config_epoch = 1;
        header.myslots = slots(5461..=16383);
        header.flags = node_flags::MASTER | node_flags::MYSELF;
        header.state = cluster_state::FAIL;
        let gossip = vec![Gossip {
            nodename: nn(REDIS_A),
            ping_sent_secs: 0,
            pong_received_secs: 1796660339,
            ip: "127.0.0.1".into(),
            port: 46943,
            cport: 56943,
            flags: node_flags::MASTER,
            pport: 0,
        }];
        assert_eq!(m, Message { header, body: Body::Ping { kind: PingKind::Ping, gossip, hostname: None } });
        assert_eq!(encode(&m), PING_FROM_B);
    }

    #[test]
    fn publish_from_redis_decodes_to_channel_and_message() {
        let m = decode(PUBLISH_FROM_A).expect("real PUBLISH decodes");
        assert_eq!(m.header.sender, nn(REDIS_A));
        assert_eq!(m.header.mflags, [0; 3], "no EXT_DATA outside ping-shaped messages");
        assert_eq!(
            m.body,
            Body::Publish { shard: false, channel: b"news".to_vec(), message: b"hello from redis-a".to_vec() }
        );
        assert_eq!(encode(&m), PUBLISH_FROM_A);
    }

    /// The capture script sends this file; Redis listed the fake node as `master`, out of
    /// handshake, with hostname `fake-node`.
    #[test]
    fn fake_node_pong_fixture_is_what_the_codec_encodes() {
        assert_eq!(encode(&fake_node_pong()), FAKE_NODE_PONG);
        assert_eq!(decode(FAKE_NODE_PONG), Ok(fake_node_pong()));
    }

    // --- layout ---

    #[test]
    fn slot_bitmap_uses_redis_bit_order() {
        let mut b = SlotBitmap::new();
        for slot in [0, 7, 8, 16383] {
            b.set(slot);
        }
        assert_eq!((b.0[0], b.0[1], b.0[2047]), (0x81, 0x01, 0x80));
        assert!(b.get(7) && !b.get(6));
        b.clear(7);
        assert_eq!((b.0[0], b.count()), (0x01, 3));
        assert_eq!(b.ranges(), vec![(0, 0), (8, 8), (16383, 16383)]);
        assert_eq!(slots(10..=20).ranges(), vec![(10, 20)]);
    }

    #[test]
    fn each_type_has_the_length_redis_expects() {
        let h = Header::new(nn(FAKE_NAME));
        let len = |body: Body| encode(&Message { header: h.clone(), body }).len();
        let name = nn(REDIS_A);
        assert_eq!(len(Body::Fail { nodename: name }), 2296);
        assert_eq!(len(Body::Update { config_epoch: 1, nodename: name, slots: SlotBitmap::new() }), 4352);
        assert_eq!(len(Body::FailoverAuthRequest), HEADER_LEN);
        assert_eq!(len(Body::MfStart), HEADER_LEN);
        assert_eq!(len(Body::Publish { shard: true, channel: b"ab".to_vec(), message: b"c".to_vec() }), 2267);
        assert_eq!(len(Body::Module { module_id: 1, module_type: 2, payload: b"xyz".to_vec() }), 2272);
        // hostname + NUL rounded up to 8: 7+1 → 8, 8+1 → 16.
        let ping =
            |hostname: &str| Body::Ping { kind: PingKind::Ping, gossip: vec![], hostname: Some(hostname.into()) };
        assert_eq!(len(ping("1234567")), HEADER_LEN + 16);
        assert_eq!(len(ping("12345678")), HEADER_LEN + 24);
    }

    #[test]
    fn module_id_is_in_host_order_and_the_rest_big_endian() {
        let body = Body::Module { module_id: 0x0102030405060708, module_type: 9, payload: vec![] };
        let bytes = encode(&Message { header: Header::new(nn(FAKE_NAME)), body });
        assert_eq!(&bytes[HEADER_LEN..], &[8, 7, 6, 5, 4, 3, 2, 1, 0, 0, 0, 0, 9]);
    }

    // --- round trips ---

    fn text(rng: &mut ChaCha8Rng, max_len: usize) -> String {
        const CHARS: [&str; 8] = ["a", "Z", "0", ".", ":", "-", "é", "✓"];
        let mut s = String::new();
        for _ in 0..rng.next_u32() as usize % (max_len + 1) {
            let c = CHARS[rng.next_u32() as usize % CHARS.len()];
            if s.len() + c.len() <= max_len {
                s.push_str(c);
            }
        }
        s
    }

    fn bytes(rng: &mut ChaCha8Rng, max_len: usize) -> Vec<u8> {
        let mut v = vec![0; rng.next_u32() as usize % (max_len + 1)];
        rng.fill_bytes(&mut v);
        v
    }

    fn name_from(rng: &mut ChaCha8Rng) -> NodeName {
        let mut n = [0; NAMELEN];
        rng.fill_bytes(&mut n);
        NodeName(n)
    }

    fn bitmap_from(rng: &mut ChaCha8Rng) -> SlotBitmap {
        let mut b = SlotBitmap::new();
        match rng.next_u32() % 3 {
            0 => {}
            1 => rng.fill_bytes(&mut b.0[..]),
            _ => (0..SLOTS / 3).for_each(|s| b.set(s)),
        }
        b
    }

    fn u16_from(rng: &mut ChaCha8Rng) -> u16 {
        rng.next_u32() as u16
    }

    fn random_message(rng: &mut ChaCha8Rng) -> Message {
        let header = Header {
            port: u16_from(rng),
            current_epoch: rng.next_u64(),
            config_epoch: rng.next_u64(),
            offset: rng.next_u64(),
            sender: name_from(rng),
            myslots: bitmap_from(rng),
            slaveof: rng.next_u32().is_multiple_of(2).then(|| name_from(rng)),
            myip: text(rng, NET_IP_STR_LEN),
            pport: u16_from(rng),
            cport: u16_from(rng),
            flags: u16_from(rng),
            state: rng.next_u32() as u8,
            // EXT_DATA is what encode says it is for a ping with a hostname, and free otherwise.
            mflags: [rng.next_u32() as u8 | mflags0::EXT_DATA, rng.next_u32() as u8, rng.next_u32() as u8],
        };
        let body = match rng.next_u32() % 11 {
            k @ 0..=2 => Body::Ping {
                kind: [PingKind::Ping, PingKind::Pong, PingKind::Meet][k as usize],
                gossip: (0..rng.next_u32() % 5)
                    .map(|_| Gossip {
                        nodename: name_from(rng),
                        ping_sent_secs: rng.next_u32(),
                        pong_received_secs: rng.next_u32(),
                        ip: text(rng, NET_IP_STR_LEN),
                        port: u16_from(rng),
                        cport: u16_from(rng),
                        flags: u16_from(rng),
                        pport: u16_from(rng),
                    })
                    .collect(),
                hostname: rng.next_u32().is_multiple_of(2).then(|| text(rng, 40)),
            },
            3 => Body::Fail { nodename: name_from(rng) },
            k @ 4..=5 => Body::Publish { shard: k == 5, channel: bytes(rng, 20), message: bytes(rng, 300) },
            6 => Body::FailoverAuthRequest,
            7 => Body::FailoverAuthAck,
            8 => Body::Update { config_epoch: rng.next_u64(), nodename: name_from(rng), slots: bitmap_from(rng) },
            9 => Body::MfStart,
            _ => {
                Body::Module { module_id: rng.next_u64(), module_type: rng.next_u32() as u8, payload: bytes(rng, 100) }
            }
        };
        Message { header, body }
    }

    /// Many seeds of random messages; a failure prints its seed.
    fn for_random_messages(seeds: u64, mut check: impl FnMut(u64, &Message, &[u8])) {
        for seed in 0..seeds {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let m = random_message(&mut rng);
            let bytes = encode(&m);
            check(seed, &m, &bytes);
        }
    }

    #[test]
    fn every_type_round_trips_over_random_messages() {
        let mut seen = std::collections::BTreeSet::new();
        for_random_messages(2000, |seed, m, bytes| {
            seen.insert(m.body.msg_type());
            assert_eq!(be32(bytes, off::TOTLEN) as usize, bytes.len(), "seed {seed}");
            assert_eq!(decode(bytes).as_ref(), Ok(m), "seed {seed}");
        });
        assert_eq!(seen.len(), 11, "every message type generated");
    }

    #[test]
    fn text_too_long_for_its_field_is_cut_at_a_character_boundary() {
        let mut h = Header::new(nn(FAKE_NAME));
        h.myip = "✓".repeat(16); // 48 bytes: 15 characters fit
        let m = decode(&encode(&Message { header: h, body: Body::MfStart })).expect("decodes");
        assert_eq!(m.header.myip, "✓".repeat(15));
    }

    // --- malformed input ---

    fn set_totlen(bytes: &mut [u8]) {
        let len = bytes.len() as u32;
        bytes[off::TOTLEN..off::TOTLEN + 4].copy_from_slice(&len.to_be_bytes());
    }

    /// Every cut of a valid packet is an error, whether `totlen` still says the full length or
    /// was rewritten to the cut length; and a framer fed the cut yields nothing.
    fn assert_every_truncation_fails(packet: &[u8], what: &str) {
        for cut in 0..packet.len() {
            let mut short = packet[..cut].to_vec();
            assert!(decode(&short).is_err(), "{what}: cut at {cut} decoded");
            if cut >= PREFIX_LEN {
                set_totlen(&mut short);
                assert!(decode(&short).is_err(), "{what}: cut at {cut} with totlen {cut} decoded");
            }
            let mut framer = Framer::new();
            framer.feed(&packet[..cut]);
            assert_eq!(framer.next(), Ok(None), "{what}: framer gave a packet from {cut} bytes");
        }
    }

    #[test]
    fn truncations_of_real_packets_are_errors() {
        for (i, packet) in FIXTURES.iter().enumerate() {
            assert_every_truncation_fails(packet, &format!("fixture {i}"));
        }
    }

    #[test]
    fn truncations_of_random_packets_are_errors() {
        for_random_messages(40, |seed, _, bytes| assert_every_truncation_fails(bytes, &format!("seed {seed}")));
    }

    #[test]
    fn truncation_names_the_field_and_offset() {
        let mut cut = MEET_FROM_A[..100].to_vec();
        set_totlen(&mut cut);
        assert_eq!(decode(&cut), Err(BusError::Truncated { field: "myslots", offset: 80, len: 100 }));
        assert_eq!(
            decode(&cut).map_err(|e| e.to_string()),
            Err("packet of 100 bytes does not hold field myslots (at offset 80)".into())
        );
    }

    fn patched(packet: &[u8], at: usize, with: &[u8]) -> Vec<u8> {
        let mut p = packet.to_vec();
        p[at..at + with.len()].copy_from_slice(with);
        p
    }

    #[test]
    fn bad_signature_version_and_totlen_are_errors() {
        assert_eq!(decode(&patched(MEET_FROM_A, 0, b"RCmB")), Err(BusError::BadSignature { found: *b"RCmB" }));
        assert_eq!(decode(&patched(MEET_FROM_A, off::VER, &[0, 2])), Err(BusError::BadVersion { ver: 2 }));
        let mut long = MEET_FROM_A.to_vec();
        long.push(0);
        assert_eq!(decode(&long), Err(BusError::TotlenMismatch { totlen: 2272, len: 2273 }));
        set_totlen(&mut long);
        assert_eq!(
            decode(&long),
            Err(BusError::LengthMismatch { msg_type: MsgType::Meet, totlen: 2273, expected: 2272 })
        );
    }

    #[test]
    fn unknown_type_is_an_error_carrying_the_header() {
        let p = patched(PING_FROM_B, off::TYPE, &[0, 11]);
        match decode(&p) {
            Err(BusError::UnknownType { msg_type: 11, header }) => assert_eq!(header.current_epoch, 1),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn gossip_count_beyond_the_packet_is_a_length_mismatch() {
        let p = patched(PING_FROM_B, off::COUNT, &[0, 2]);
        assert_eq!(decode(&p), Err(BusError::LengthMismatch { msg_type: MsgType::Ping, totlen: 2360, expected: 2464 }));
    }

    #[test]
    fn publish_lengths_that_overflow_u32_are_a_length_mismatch() {
        // channel_len + message_len wraps to the real total in 32 bits; in 64 it does not.
        let p = patched(PUBLISH_FROM_A, off::DATA, &[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0x17]);
        assert!(matches!(decode(&p), Err(BusError::LengthMismatch { .. })), "{:?}", decode(&p));
    }

    /// A MEET whose hostname extension (at 2256, 16 bytes) is patched.
    fn meet_ext(len: u32, ext_type: u16, payload: &[u8; 8]) -> Vec<u8> {
        let mut p = patched(MEET_FROM_A, HEADER_LEN, &len.to_be_bytes());
        p[HEADER_LEN + 4..HEADER_LEN + 6].copy_from_slice(&ext_type.to_be_bytes());
        p[HEADER_LEN + 8..].copy_from_slice(payload);
        p
    }

    #[test]
    fn malformed_extensions_are_errors() {
        let bad = |p: Vec<u8>| match decode(&p) {
            Err(BusError::BadExtension { offset, reason }) => (offset, reason),
            other => panic!("{other:?}"),
        };
        assert_eq!(bad(meet_ext(12, 0, b"redis-a\0")), (2256, "length is not a multiple of 8"));
        assert_eq!(bad(meet_ext(24, 0, b"redis-a\0")), (2256, "extension runs past the packet"));
        assert_eq!(bad(meet_ext(0, 0, b"redis-a\0")), (2256, "length is shorter than the extension header"));
        assert_eq!(bad(meet_ext(16, 0, b"redis-ab")), (2256, "hostname is not NUL-terminated"));
        let two = patched(MEET_FROM_A, off::EXTENSIONS, &[0, 2]);
        assert_eq!(bad(two), (2272, "extension header runs past the packet"));
        let unflagged = patched(MEET_FROM_A, off::MFLAGS, &[0]);
        assert_eq!(bad(unflagged), (off::EXTENSIONS, "extensions without the EXT_DATA flag"));
    }

    #[test]
    fn unknown_extension_types_are_skipped_by_length() {
        let m = decode(&meet_ext(16, 1, b"shard-id")).expect("a 7.2 extension type is skipped");
        assert!(matches!(m.body, Body::Ping { hostname: None, .. }));
        // EXT_DATA with zero extensions is valid (Redis loops zero times).
        let m = decode(&patched(PING_FROM_B, off::MFLAGS, &[mflags0::EXT_DATA])).expect("decodes");
        assert_eq!(encode(&m), patched(PING_FROM_B, off::MFLAGS, &[mflags0::EXT_DATA]));
    }

    #[test]
    fn non_utf8_text_is_an_error() {
        let p = patched(PING_FROM_B, off::MYIP, &[0xff]);
        assert_eq!(decode(&p), Err(BusError::BadText { field: "myip", offset: off::MYIP }));
        let gossip_ip = off::DATA + 48;
        let p = patched(PING_FROM_B, gossip_ip, &[0xc3]);
        assert_eq!(decode(&p), Err(BusError::BadText { field: "gossip ip", offset: gossip_ip }));
    }

    #[test]
    fn random_corruption_never_panics_and_what_decodes_round_trips() {
        let mut rng = ChaCha8Rng::seed_from_u64(0xb05);
        let mut decoded = 0;
        for round in 0..3000 {
            let mut p = match round % 3 {
                0 => FIXTURES[rng.next_u32() as usize % FIXTURES.len()].to_vec(),
                _ => encode(&random_message(&mut rng)),
            };
            for _ in 0..1 + rng.next_u32() % 4 {
                let at = rng.next_u32() as usize % p.len();
                p[at] = rng.next_u32() as u8;
            }
            if rng.next_u32() % 2 == 0 {
                set_totlen(&mut p);
            }
            if let Ok(m) = decode(&p) {
                decoded += 1;
                assert_eq!(decode(&encode(&m)), Ok(m), "round {round}");
            }
        }
        assert!(decoded > 100, "only {decoded} corrupted packets decoded: the test checks little");
    }

    // --- framing ---

    #[test]
    fn framer_yields_packets_however_the_bytes_arrive() {
        let stream: Vec<u8> = FIXTURES.concat();
        for chunk in [1, 7, 8, 9, 1000, stream.len()] {
            let mut framer = Framer::new();
            let mut got = Vec::new();
            for piece in stream.chunks(chunk) {
                framer.feed(piece);
                while let Some(p) = framer.next().expect("valid stream") {
                    got.push(p);
                }
            }
            assert_eq!(got, FIXTURES.map(<[u8]>::to_vec), "chunks of {chunk}");
            assert_eq!(framer.buffered_len(), 0);
        }
    }

    #[test]
    fn framer_rejects_a_bad_prefix_after_eight_bytes_for_good() {
        let mut framer = Framer::new();
        framer.feed(b"RCmc\0\0\x08");
        assert_eq!(framer.next(), Ok(None));
        framer.feed(b"\xe0");
        assert_eq!(framer.next(), Err(BusError::BadSignature { found: *b"RCmc" }));
        framer.feed(MEET_FROM_A);
        assert_eq!(framer.next(), Err(BusError::BadSignature { found: *b"RCmc" }), "errors are final");

        let mut framer = Framer::new();
        framer.feed(b"RCmb\0\0\x08\xcf"); // 2255
        assert_eq!(framer.next(), Err(BusError::TotlenTooSmall { totlen: 2255 }));

        let mut framer = Framer::with_max_packet_len(4096);
        framer.feed(b"RCmb\0\0\x10\x01");
        assert_eq!(framer.next(), Err(BusError::TotlenTooLarge { totlen: 4097, max: 4096 }));
    }

    /// Prints the fake node's PONG as hex, to regenerate its fixture:
    /// `cargo test --lib cluster::bus::tests::print_fake_node_pong -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn print_fake_node_pong() {
        let hex: String = encode(&fake_node_pong()).iter().map(|b| format!("{b:02x}")).collect();
        println!("FAKE_NODE_PONG {hex}");
    }
}

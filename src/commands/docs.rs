//! COMMAND, COMMAND INFO, COMMAND DOCS and COMMAND LIST entries, spelled byte for byte as
//! Redis 7.0.15 spells them (`addReplyCommandInfo`, `addReplyCommandDocs` in server.c), because
//! clients such as redis-py and the cluster-aware ones parse these replies to route commands.
//!
//! One difference cannot be avoided: Redis lists subcommands in the order of a dict whose hash
//! seed is random per process, so no fixed order matches it; redsim lists them by name.

use super::meta::{self, ArgType, BeginSearch, CommandMeta, FindKeys, KeySpec};
use crate::protocol::ReplyBuf;

/// COMMAND INFO's flag names in Redis's order (`addReplyFlagsForCommand`). Redis hides
/// may_replicate, sentinel, only_sentinel, protected and touches_arbitrary_keys on purpose.
const COMMAND_FLAG_NAMES: &[(u64, &str)] = &[
    (meta::flag::WRITE, "write"),
    (meta::flag::READONLY, "readonly"),
    (meta::flag::DENYOOM, "denyoom"),
    (meta::flag::MODULE, "module"),
    (meta::flag::ADMIN, "admin"),
    (meta::flag::PUBSUB, "pubsub"),
    (meta::flag::NOSCRIPT, "noscript"),
    (meta::flag::BLOCKING, "blocking"),
    (meta::flag::LOADING, "loading"),
    (meta::flag::STALE, "stale"),
    (meta::flag::SKIP_MONITOR, "skip_monitor"),
    (meta::flag::SKIP_SLOWLOG, "skip_slowlog"),
    (meta::flag::ASKING, "asking"),
    (meta::flag::FAST, "fast"),
    (meta::flag::NO_AUTH, "no_auth"),
    (meta::flag::NO_MANDATORY_KEYS, "no_mandatory_keys"),
    (meta::flag::NO_ASYNC_LOADING, "no_async_loading"),
    (meta::flag::NO_MULTI, "no_multi"),
    (meta::flag::MOVABLE_KEYS, "movablekeys"),
    (meta::flag::ALLOW_BUSY, "allow_busy"),
];

/// Key spec flag names (`addReplyFlagsForKeyArgs`).
const KEY_FLAG_NAMES: &[(u64, &str)] = &[
    (meta::key_flag::RO, "RO"),
    (meta::key_flag::RW, "RW"),
    (meta::key_flag::OW, "OW"),
    (meta::key_flag::RM, "RM"),
    (meta::key_flag::ACCESS, "access"),
    (meta::key_flag::UPDATE, "update"),
    (meta::key_flag::INSERT, "insert"),
    (meta::key_flag::DELETE, "delete"),
    (meta::key_flag::NOT_KEY, "not_key"),
    (meta::key_flag::INCOMPLETE, "incomplete"),
    (meta::key_flag::VARIABLE_FLAGS, "variable_flags"),
];

const ARG_FLAG_NAMES: &[(u64, &str)] = &[
    (meta::arg_flag::OPTIONAL as u64, "optional"),
    (meta::arg_flag::MULTIPLE as u64, "multiple"),
    (meta::arg_flag::MULTIPLE_TOKEN as u64, "multiple_token"),
];

const DOC_FLAG_NAMES: &[(u64, &str)] =
    &[(meta::doc_flag::DEPRECATED, "deprecated"), (meta::doc_flag::SYSCMD, "syscmd")];

/// Redis writes every flag array as a set of status replies (`addReplyCommandFlags`).
fn write_flags(out: &mut ReplyBuf, flags: u64, names: &[(u64, &str)]) {
    let shown = || names.iter().filter(|(bit, _)| flags & bit != 0);
    out.set(shown().count());
    for (_, name) in shown() {
        out.simple(name);
    }
}

/// A key's flags as COMMAND GETKEYSANDFLAGS lists them (`addReplyFlagsForKeyArgs`).
pub fn write_key_flags(out: &mut ReplyBuf, flags: u64) {
    write_flags(out, flags, KEY_FLAG_NAMES);
}

/// One entry of COMMAND / COMMAND INFO: the 10-element array. The caller writes the outer
/// array and, for names it does not know, `out.null()` (Redis's `addReplyNull`).
pub fn write_command_info(out: &mut ReplyBuf, m: &CommandMeta) {
    out.array(10);
    out.bulk_str(m.name);
    out.int(i64::from(m.arity));
    write_flags(out, m.flags, COMMAND_FLAG_NAMES);
    out.int(i64::from(m.first_key));
    out.int(i64::from(m.last_key));
    out.int(i64::from(m.key_step));
    write_categories(out, m.acl_categories);
    out.set(m.tips.len());
    for tip in m.tips {
        out.bulk_str(tip);
    }
    out.set(m.key_specs.len());
    for spec in m.key_specs {
        write_key_spec(out, spec);
    }
    if m.subcommands.is_empty() {
        out.set(0);
    } else {
        out.array(m.subcommands.len());
        for sub in m.subcommands {
            write_command_info(out, sub);
        }
    }
}

fn write_categories(out: &mut ReplyBuf, cats: u64) {
    let shown = || meta::ACL_CATEGORIES.iter().filter(|(bit, _)| cats & bit != 0);
    out.set(shown().count());
    for (_, name) in shown() {
        out.simple(&format!("@{name}"));
    }
}

fn write_key_spec(out: &mut ReplyBuf, spec: &KeySpec) {
    out.map(3 + usize::from(spec.notes.is_some()));
    if let Some(notes) = spec.notes {
        out.bulk_str("notes");
        out.bulk_str(notes);
    }
    out.bulk_str("flags");
    write_flags(out, spec.flags, KEY_FLAG_NAMES);

    out.bulk_str("begin_search");
    out.map(2);
    out.bulk_str("type");
    match spec.begin_search {
        BeginSearch::Unknown => {
            out.bulk_str("unknown");
            out.bulk_str("spec");
            out.map(0);
        }
        BeginSearch::Index { pos } => {
            out.bulk_str("index");
            out.bulk_str("spec");
            out.map(1);
            int_field(out, "index", pos);
        }
        BeginSearch::Keyword { keyword, startfrom } => {
            out.bulk_str("keyword");
            out.bulk_str("spec");
            out.map(2);
            out.bulk_str("keyword");
            out.bulk_str(keyword);
            int_field(out, "startfrom", startfrom);
        }
    }

    out.bulk_str("find_keys");
    out.map(2);
    out.bulk_str("type");
    match spec.find_keys {
        FindKeys::Unknown => {
            out.bulk_str("unknown");
            out.bulk_str("spec");
            out.map(0);
        }
        FindKeys::Range { lastkey, keystep, limit } => {
            out.bulk_str("range");
            out.bulk_str("spec");
            out.map(3);
            int_field(out, "lastkey", lastkey);
            int_field(out, "keystep", keystep);
            int_field(out, "limit", limit);
        }
        FindKeys::Keynum { keynumidx, firstkey, keystep } => {
            out.bulk_str("keynum");
            out.bulk_str("spec");
            out.map(3);
            int_field(out, "keynumidx", keynumidx);
            int_field(out, "firstkey", firstkey);
            int_field(out, "keystep", keystep);
        }
    }
}

fn int_field(out: &mut ReplyBuf, name: &str, n: i32) {
    out.bulk_str(name);
    out.int(i64::from(n));
}

fn str_field(out: &mut ReplyBuf, name: &str, value: &str) {
    out.bulk_str(name);
    out.bulk_str(value);
}

/// One entry of COMMAND DOCS: the command's name, then its doc map. COMMAND DOCS replies with
/// a map of such entries; the caller writes the map header and skips the names it does not
/// know, as Redis does.
pub fn write_command_docs(out: &mut ReplyBuf, m: &CommandMeta) {
    out.bulk_str(m.name);
    write_doc_map(out, m);
}

fn write_doc_map(out: &mut ReplyBuf, m: &CommandMeta) {
    let present = [
        m.summary.is_some(),
        m.since.is_some(),
        true, // group
        m.complexity.is_some(),
        m.doc_flags != 0,
        m.deprecated_since.is_some(),
        m.replaced_by.is_some(),
        !m.history.is_empty(),
        !m.arguments.is_empty(),
        !m.subcommands.is_empty(),
    ];
    out.map(present.iter().filter(|&&p| p).count());
    if let Some(s) = m.summary {
        str_field(out, "summary", s);
    }
    if let Some(s) = m.since {
        str_field(out, "since", s);
    }
    str_field(out, "group", m.group.as_str());
    if let Some(s) = m.complexity {
        str_field(out, "complexity", s);
    }
    if m.doc_flags != 0 {
        out.bulk_str("doc_flags");
        write_flags(out, m.doc_flags, DOC_FLAG_NAMES);
    }
    if let Some(s) = m.deprecated_since {
        str_field(out, "deprecated_since", s);
    }
    if let Some(s) = m.replaced_by {
        str_field(out, "replaced_by", s);
    }
    if !m.history.is_empty() {
        out.bulk_str("history");
        out.set(m.history.len());
        for (version, change) in m.history {
            out.array(2);
            out.bulk_str(version);
            out.bulk_str(change);
        }
    }
    if !m.arguments.is_empty() {
        out.bulk_str("arguments");
        write_args(out, m.arguments);
    }
    if !m.subcommands.is_empty() {
        out.bulk_str("subcommands");
        out.map(m.subcommands.len());
        for sub in m.subcommands {
            write_command_docs(out, sub);
        }
    }
}

fn write_args(out: &mut ReplyBuf, args: &[meta::Arg]) {
    out.array(args.len());
    for a in args {
        let nests = matches!(a.kind, ArgType::Oneof | ArgType::Block);
        let present = [
            a.key_spec_index.is_some(),
            a.token.is_some(),
            a.summary.is_some(),
            a.since.is_some(),
            a.deprecated_since.is_some(),
            a.flags != 0,
            nests,
        ];
        out.map(2 + present.iter().filter(|&&p| p).count());
        str_field(out, "name", a.name);
        str_field(out, "type", a.kind.as_str());
        if let Some(i) = a.key_spec_index {
            out.bulk_str("key_spec_index");
            out.int(i64::from(i));
        }
        if let Some(s) = a.token {
            str_field(out, "token", s);
        }
        if let Some(s) = a.summary {
            str_field(out, "summary", s);
        }
        if let Some(s) = a.since {
            str_field(out, "since", s);
        }
        if let Some(s) = a.deprecated_since {
            str_field(out, "deprecated_since", s);
        }
        if a.flags != 0 {
            out.bulk_str("flags");
            write_flags(out, u64::from(a.flags), ARG_FLAG_NAMES);
        }
        if nests {
            out.bulk_str("arguments");
            write_args(out, a.arguments);
        }
    }
}

/// COMMAND LIST FILTERBY's filters.
pub enum ListFilter<'a> {
    /// Commands of the named module: redsim has no modules, so none.
    Module(&'a [u8]),
    /// Commands in the named ACL category (case-insensitive, no `@`); none for an unknown one.
    AclCat(&'a [u8]),
    /// Commands whose full name matches: the caller passes its glob matcher
    /// (`stringmatchlen(pattern, name, nocase=1)` in Redis), which lives with KEYS and SCAN.
    Pattern(&'a dyn Fn(&str) -> bool),
}

/// The redis-server commands and subcommands that COMMAND LIST FILTERBY lists, containers
/// before their subcommands (Redis's order is its dict's, so clients cannot rely on any).
pub fn filter_by<'a>(filter: &'a ListFilter<'a>) -> impl Iterator<Item = &'static CommandMeta> + 'a {
    let cat = match filter {
        ListFilter::AclCat(name) => meta::acl_category_by_name(name),
        _ => None,
    };
    meta::all().filter(|m| m.in_server()).filter(move |m| match filter {
        ListFilter::Module(_) => false,
        ListFilter::AclCat(_) => cat.is_some_and(|c| m.acl_categories & c != 0),
        ListFilter::Pattern(matches) => matches(m.name),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Frame;

    /// Replies captured from redis-server 7.0.15 by scripts/capture_command_replies.py, with
    /// subcommands sorted by name: (name, COMMAND INFO, COMMAND DOCS) per protocol.
    macro_rules! fixtures {
        ($($name:literal => $stem:literal),* $(,)?) => {
            &[$((
                $name,
                [
                    include_bytes!(concat!("testdata/info_", $stem, ".resp2")).as_slice(),
                    include_bytes!(concat!("testdata/info_", $stem, ".resp3")).as_slice(),
                ],
                [
                    include_bytes!(concat!("testdata/docs_", $stem, ".resp2")).as_slice(),
                    include_bytes!(concat!("testdata/docs_", $stem, ".resp3")).as_slice(),
                ],
            )),*]
        };
    }

    type Fixture = (&'static str, [&'static [u8]; 2], [&'static [u8]; 2]);

    const FIXTURES: &[Fixture] = fixtures![
        "get" => "get",
        "set" => "set",
        "config" => "config",
        "config|get" => "config-get",
        "client" => "client",
        "client|kill" => "client-kill",
        "client|tracking" => "client-tracking",
        "zadd" => "zadd",
        "zunionstore" => "zunionstore",
        "xadd" => "xadd",
        "xread" => "xread",
        "georadius" => "georadius",
        "geodist" => "geodist",
        "command|docs" => "command-docs",
        "migrate" => "migrate",
        "sort" => "sort",
        "eval" => "eval",
        "bitfield_ro" => "bitfield_ro",
        "flushall" => "flushall",
        "subscribe" => "subscribe",
        "blpop" => "blpop",
        "lmpop" => "lmpop",
        "mset" => "mset",
        "sunsubscribe" => "sunsubscribe",
        "hello" => "hello",
        "latency|histogram" => "latency-histogram",
        "lcs" => "lcs",
        "exists" => "exists",
    ];

    fn info_reply(resp: u8, cmds: &[&CommandMeta]) -> Vec<u8> {
        let mut out = ReplyBuf::new(resp);
        out.array(cmds.len());
        for m in cmds {
            write_command_info(&mut out, m);
        }
        out.buf
    }

    fn docs_reply(resp: u8, cmds: &[&CommandMeta]) -> Vec<u8> {
        let mut out = ReplyBuf::new(resp);
        out.map(cmds.len());
        for m in cmds {
            write_command_docs(&mut out, m);
        }
        out.buf
    }

    /// Fails with where the bytes part, so a mismatch reads without a hex dump.
    fn assert_same_bytes(what: &str, got: &[u8], want: &[u8]) {
        if got == want {
            return;
        }
        let at = got.iter().zip(want).take_while(|(a, b)| a == b).count();
        let around = |b: &[u8]| {
            let from = at.saturating_sub(80);
            String::from_utf8_lossy(&b[from..(at + 80).min(b.len())]).escape_debug().to_string()
        };
        panic!(
            "{what}: differs from redis-server at byte {at} (lengths {} vs {})\n  got:  {}\n  want: {}",
            got.len(),
            want.len(),
            around(got),
            around(want)
        );
    }

    #[test]
    fn info_and_docs_match_redis_byte_for_byte() {
        for (name, info, docs) in FIXTURES {
            let m = meta::lookup_fullname(name.as_bytes()).expect(name);
            for (i, resp) in [2u8, 3].into_iter().enumerate() {
                assert_same_bytes(&format!("COMMAND INFO {name} (RESP{resp})"), &info_reply(resp, &[m]), info[i]);
                assert_same_bytes(&format!("COMMAND DOCS {name} (RESP{resp})"), &docs_reply(resp, &[m]), docs[i]);
            }
        }
    }

    /// Each entry must be one well-formed frame, whatever the protocol.
    #[test]
    fn every_command_renders_as_one_frame() {
        for m in meta::all() {
            for resp in [2, 3] {
                for (what, bytes) in [("info", info_reply(resp, &[m])), ("docs", docs_reply(resp, &[m]))] {
                    let parsed = Frame::parse(&bytes).expect(m.name);
                    let (_, used) = parsed.unwrap_or_else(|| panic!("{what} {}: incomplete", m.name));
                    assert_eq!(used, bytes.len(), "{what} {} (RESP{resp})", m.name);
                }
            }
        }
    }

    /// redis-server 7.0.15 answers COMMAND COUNT with 240; sentinel-only commands are not in
    /// a server's table.
    #[test]
    fn server_table_has_redis_command_count() {
        let top_level = meta::COMMANDS.iter().filter(|m| m.in_server()).count();
        assert_eq!(top_level, 240);
        assert!(meta::COMMANDS.windows(2).all(|w| w[0].name < w[1].name));
        for m in meta::COMMANDS {
            assert!(m.subcommands.windows(2).all(|w| w[0].name < w[1].name));
            assert!(m.subcommands.iter().all(|s| s.container == Some(m.name)));
        }
    }

    #[test]
    fn lookup_is_case_insensitive_and_strict_about_subcommands() {
        assert_eq!(meta::lookup(b"GeT").map(|m| m.name), Some("get"));
        assert_eq!(meta::lookup_sub("config", b"GET").map(|m| m.name), Some("config|get"));
        assert_eq!(meta::lookup_fullname(b"CONFIG|Get").map(|m| m.name), Some("config|get"));
        assert!(meta::lookup_fullname(b"get|x").is_none());
        assert!(meta::lookup_fullname(b"config|get|x").is_none());
        assert!(meta::lookup(b"nosuch").is_none());
        assert!(meta::lookup(b"sentinel").is_none());
        assert!(meta::lookup_sentinel(b"sentinel").is_some());
        assert!(meta::lookup_sentinel(b"set").is_none());
        assert_eq!(meta::lookup_sub("config", b"get").unwrap().sub_name(), "get");
    }

    #[test]
    fn computed_facts_match_redis() {
        let m = |n: &str| meta::lookup_fullname(n.as_bytes()).unwrap();
        assert_eq!((m("mset").first_key, m("mset").last_key, m("mset").key_step), (1, -1, 2));
        assert!(m("sort").has_flag(meta::flag::MOVABLE_KEYS));
        assert!(!m("set").has_flag(meta::flag::MOVABLE_KEYS));
        assert_ne!(m("get").acl_categories & meta::acl_cat::FAST, 0);
        assert_ne!(m("config|set").acl_categories & meta::acl_cat::DANGEROUS, 0);
        // Scripts may write, so read-only script commands are not @read.
        assert_eq!(m("eval_ro").acl_categories & meta::acl_cat::READ, 0);
    }

    #[test]
    fn filter_by_acl_category_and_pattern() {
        let write = ListFilter::AclCat(b"WRITE");
        assert_eq!(filter_by(&write).count(), 108); // COMMAND LIST FILTERBY ACLCAT WRITE
        assert_eq!(filter_by(&ListFilter::AclCat(b"nosuch")).count(), 0);
        assert_eq!(filter_by(&ListFilter::Module(b"x")).count(), 0);
        let starts_config_g = |name: &str| name.starts_with("config|g");
        let names: Vec<_> = filter_by(&ListFilter::Pattern(&starts_config_g)).map(|m| m.name).collect();
        assert_eq!(names, ["config|get"]);
    }

    /// The whole table against a full capture, which is too big to keep in the repository:
    /// `scripts/capture_command_replies.py --port P full DIR`, then
    /// `REDSIM_COMMAND_ORACLE_DIR=DIR cargo test commands::docs -- --ignored`.
    #[test]
    #[ignore = "needs REDSIM_COMMAND_ORACLE_DIR from scripts/capture_command_replies.py"]
    #[allow(clippy::disallowed_methods)] // test code reading a capture, not node code
    fn whole_table_matches_a_full_capture() {
        let dir =
            std::env::var("REDSIM_COMMAND_ORACLE_DIR").expect("set REDSIM_COMMAND_ORACLE_DIR to a `full` capture");
        let cmds: Vec<&CommandMeta> = meta::COMMANDS.iter().filter(|m| m.in_server()).collect();
        for resp in [2u8, 3] {
            let read = |kind: &str| {
                let path = format!("{dir}/{kind}.resp{resp}");
                std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
            };
            assert_same_bytes(&format!("COMMAND (RESP{resp})"), &info_reply(resp, &cmds), &read("info"));
            assert_same_bytes(&format!("COMMAND DOCS (RESP{resp})"), &docs_reply(resp, &cmds), &read("docs"));
        }
    }
}

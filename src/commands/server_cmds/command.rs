//! COMMAND: what this server implements, described as Redis 7.0.15 describes it. The
//! entries come from Redis's metadata (`docs`), but the list is redsim's bound table, so a
//! client that routes or plans by COMMAND never sends a command redsim would refuse. One
//! exception: a container's entry (CLIENT, CONFIG) nests all of Redis's subcommands, as the
//! metadata renders it. (Redis lists commands in its dict's order; redsim lists them by name.)

use bytes::Bytes;

use super::{matches_nocase, reply_help, CmdError, CmdResult, Ctx};
use crate::commands::docs::{write_command_docs, write_command_info, write_key_flags};
use crate::commands::meta::{self, flag, key_flag, BeginSearch, CommandMeta, FindKeys, KeySpec};
use crate::commands::{Command, CommandTable};

const COMMAND_HELP: &[&str] = &[
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "LIST",
    "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "GETKEYS <full-command>",
    "    Return the keys from a full Redis command.",
    "GETKEYSANDFLAGS <full-command>",
    "    Return the keys and the access flags from a full Redis command.",
];

pub fn help(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    reply_help(ctx, &a[0], COMMAND_HELP);
    Ok(())
}

/// COMMAND and COMMAND INFO without names: every top-level command.
pub fn all(ctx: &mut Ctx, _a: &[Bytes]) -> CmdResult {
    let table = ctx.srv.table;
    let out = ctx.out();
    out.array(table.top_level().count());
    for c in table.top_level() {
        write_command_info(out, c.meta);
    }
    Ok(())
}

pub fn count(ctx: &mut Ctx, _a: &[Bytes]) -> CmdResult {
    let n = ctx.srv.table.top_level().count() as i64;
    ctx.out().int(n);
    Ok(())
}

/// COMMAND INFO name...: an entry per name, null for a name redsim does not have.
pub fn info(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    if a.len() == 2 {
        return all(ctx, a);
    }
    let table = ctx.srv.table;
    let out = ctx.out();
    out.array(a.len() - 2);
    for name in &a[2..] {
        match table.by_fullname(name) {
            Some(c) => write_command_info(out, c.meta),
            None => out.null(),
        }
    }
    Ok(())
}

/// COMMAND DOCS [name...]: a map from name to docs; unknown names are left out.
pub fn docs(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let table = ctx.srv.table;
    let found: Vec<&Command> = if a.len() == 2 {
        table.top_level().collect()
    } else {
        a[2..].iter().filter_map(|n| table.by_fullname(n)).collect()
    };
    let out = ctx.out();
    out.map(found.len());
    for c in found {
        write_command_docs(out, c.meta);
    }
    Ok(())
}

/// COMMAND LIST's FILTERBY.
enum Filter<'a> {
    All,
    Module,
    AclCat(Option<u64>),
    Pattern(&'a [u8]),
}

impl Filter<'_> {
    fn keeps(&self, m: &CommandMeta) -> bool {
        match self {
            Filter::All => true,
            Filter::Module => false,
            Filter::AclCat(cat) => cat.is_some_and(|c| m.acl_categories & c != 0),
            Filter::Pattern(p) => matches_nocase(p, m.name),
        }
    }
}

fn parse_list_filter(a: &[Bytes]) -> Result<Filter<'_>, CmdError> {
    match &a[2..] {
        [] => Ok(Filter::All),
        [by, kind, arg] if by.eq_ignore_ascii_case(b"filterby") => match kind.to_ascii_lowercase().as_slice() {
            b"module" => Ok(Filter::Module),
            b"aclcat" => Ok(Filter::AclCat(meta::acl_category_by_name(arg))),
            b"pattern" => Ok(Filter::Pattern(arg)),
            _ => Err(CmdError::Syntax),
        },
        _ => Err(CmdError::Syntax),
    }
}

/// Commands then their subcommands, by name.
fn every_command(table: &CommandTable) -> Vec<&Command> {
    let mut out = Vec::new();
    for top in table.top_level() {
        out.push(top);
        let mut subs: Vec<&Command> = top.subcommands.values().map(|&i| &table.cmds[i]).collect();
        subs.sort_by_key(|c| c.meta.name);
        out.extend(subs);
    }
    out
}

/// COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN pattern].
pub fn list(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let filter = parse_list_filter(a)?;
    let names: Vec<&str> =
        every_command(ctx.srv.table).into_iter().map(|c| c.meta).filter(|m| filter.keeps(m)).map(|m| m.name).collect();
    let out = ctx.out();
    out.array(names.len());
    for n in names {
        out.bulk_str(n);
    }
    Ok(())
}

pub fn getkeys(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    reply_keys(ctx, a, false)
}

pub fn getkeys_and_flags(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    reply_keys(ctx, a, true)
}

/// Redis's `getKeysSubcommandImpl`: the keys of the command in `a[2..]`, from its key specs.
fn reply_keys(ctx: &mut Ctx, a: &[Bytes], with_flags: bool) -> CmdResult {
    let argv = &a[2..];
    let m = lookup_command(ctx.srv.table, argv).ok_or_else(|| CmdError::err("Invalid command specified"))?;
    let has_keyspec = m.key_specs.iter().any(|s| s.flags & key_flag::NOT_KEY == 0);
    if !has_keyspec && m.get_keys_function.is_none() {
        return Err(CmdError::err("The command has no key arguments"));
    }
    let argc = argv.len() as i32;
    if (m.arity > 0 && m.arity != argc) || argc < -m.arity {
        return Err(CmdError::err("Invalid number of arguments specified for command"));
    }
    // Redis falls back to a per-command key finder when the specs cannot answer; redsim has
    // the ones whose keys' flags depend on the arguments, and otherwise no keys.
    let keys = keys_of(m, argv);
    if keys.is_empty() && !m.has_flag(flag::NO_MANDATORY_KEYS) {
        return Err(CmdError::err("Invalid arguments specified for command"));
    }
    let out = ctx.out();
    out.array(keys.len());
    for (pos, flags) in keys {
        if with_flags {
            out.array(2);
            out.bulk(&argv[pos]);
            write_key_flags(out, flags);
        } else {
            out.bulk(&argv[pos]);
        }
    }
    Ok(())
}

/// (argument index, key flags) of each key of the command `argv` (name first).
pub fn keys_of(m: &CommandMeta, argv: &[Bytes]) -> Vec<(usize, u64)> {
    variable_flags_keys(m, argv)
        .or_else(|| keys_from_specs(m, argv))
        .or_else(|| crate::commands::sort::native_get_keys(m.get_keys_function?, argv))
        .unwrap_or_default()
}

/// `setGetKeys`, `bitfieldGetKeys`: the key is argument 1, its flags depend on the options.
fn variable_flags_keys(m: &CommandMeta, argv: &[Bytes]) -> Option<Vec<(usize, u64)>> {
    let overwrite = key_flag::OW | key_flag::UPDATE;
    let read_write = key_flag::RW | key_flag::ACCESS | key_flag::UPDATE;
    let flags = match m.get_keys_function? {
        "setGetKeys" => {
            let get = argv.iter().skip(3).any(|a| a.eq_ignore_ascii_case(b"get"));
            if get {
                read_write
            } else {
                overwrite
            }
        }
        "bitfieldGetKeys" if bitfield_is_read_only(argv) => key_flag::RO | key_flag::ACCESS,
        "bitfieldGetKeys" => read_write,
        _ => return None,
    };
    Some(vec![(1, flags)])
}

/// Whether BITFIELD's operations only read (GET and OVERFLOW, each with its arguments).
fn bitfield_is_read_only(argv: &[Bytes]) -> bool {
    let mut i = 2;
    while i < argv.len() {
        let remaining = argv.len() - i - 1;
        let op = argv[i].to_ascii_lowercase();
        match op.as_slice() {
            b"get" if remaining >= 2 => i += 3,
            b"overflow" if remaining >= 1 => i += 2,
            _ => return false,
        }
    }
    true
}

/// `lookupCommand`: a container's subcommand when one is named.
fn lookup_command(table: &CommandTable, argv: &[Bytes]) -> Option<&'static CommandMeta> {
    let top = table.lookup(argv.first()?)?;
    match argv.get(1) {
        Some(sub) if !top.subcommands.is_empty() => table.sub(top, sub).map(|c| c.meta),
        _ => Some(top.meta),
    }
}

/// Redis's `getKeysUsingKeySpecs`: (argument index, key flags) of every key, or None when a
/// spec does not fit the arguments.
fn keys_from_specs(m: &CommandMeta, argv: &[Bytes]) -> Option<Vec<(usize, u64)>> {
    let argc = argv.len() as i32;
    let mut keys = Vec::new();
    for spec in m.key_specs.iter().filter(|s| s.flags & key_flag::NOT_KEY == 0) {
        // An incomplete spec may miss keys: Redis falls back to the command's own extractor.
        if spec.flags & key_flag::INCOMPLETE != 0 {
            return None;
        }
        let Some(first) = begin_search(spec, argv)? else {
            continue;
        };
        let (first, last, step) = find_keys(spec, argv, first)?;
        if last >= argc || last < first || first >= argc {
            return None;
        }
        let mut i = first;
        while i <= last {
            keys.push((i as usize, spec.flags));
            i += step.max(1);
        }
    }
    Some(keys)
}

/// Where a spec's keys start: Some(None) when its keyword is absent (the spec has no keys).
fn begin_search(spec: &KeySpec, argv: &[Bytes]) -> Option<Option<i32>> {
    let argc = argv.len() as i32;
    match spec.begin_search {
        BeginSearch::Index { pos } => Some(Some(pos)),
        BeginSearch::Keyword { keyword, startfrom } => {
            let start = if startfrom > 0 { startfrom } else { argc + startfrom };
            let end = if startfrom > 0 { argc - 1 } else { 1 };
            let mut i = start;
            while i != end && (1..argc).contains(&i) {
                if argv[i as usize].eq_ignore_ascii_case(keyword.as_bytes()) {
                    return Some(Some(i + 1));
                }
                i += if start <= end { 1 } else { -1 };
            }
            Some(None)
        }
        BeginSearch::Unknown => None,
    }
}

/// (first, last, step) of a spec's keys.
fn find_keys(spec: &KeySpec, argv: &[Bytes], first: i32) -> Option<(i32, i32, i32)> {
    let argc = argv.len() as i32;
    match spec.find_keys {
        FindKeys::Range { lastkey, keystep, limit } => {
            let last = if lastkey >= 0 {
                first + lastkey
            } else if limit == 0 {
                argc + lastkey
            } else {
                first + ((argc - first) / limit + lastkey)
            };
            Some((first, last, keystep))
        }
        FindKeys::Keynum { keynumidx, firstkey, keystep } => {
            let at = usize::try_from(first + keynumidx).ok().filter(|&i| i < argv.len())?;
            let numkeys = crate::util::arg_i64(&argv[at]).filter(|&n| n >= 0)?;
            let first = first + firstkey;
            Some((first, first.saturating_add(i32::try_from(numkeys).ok()?) - 1, keystep))
        }
        FindKeys::Unknown => None,
    }
}

//! The differential test: every case file under `tests/cases/` is sent, line by line, to a
//! real `redis-server` and to redsim, and the reply bytes must be identical.
//!
//! # Case file format
//!
//! One step per line; blank lines and lines starting with `#` are ignored. Each file runs
//! against its own freshly started pair of servers, after a `FLUSHALL` sent on a setup
//! connection, on a fresh connection.
//!
//! ```text
//! SET k "a b\x00\n" 'it\'s'  a command, split as redis-cli splits it: double quotes take
//!                             \xHH \n \r \t \b \a \\ \" escapes, single quotes take \'
//! @sleep 120                  sleep 120 ms before the next step (for expiry)
//! @raw PING\r\n               send these bytes as they are (escapes as in double quotes,
//!                             spaces kept), then read one reply
//! @send *2\r\n$3\r\nGET\r\n   send bytes without reading a reply (partial or reply-less input)
//! @read                       read one more reply (after pipelined input)
//! @newconn                    close both connections and open new ones
//! @unordered SCAN 0           compare every aggregate, at every depth, as a sorted multiset
//! @unordered-pairs CONFIG GET maxmemory*
//!                             compare the top-level array as an unordered set of
//!                             adjacent (key, value) pairs (RESP2 maps)
//! @ignore-value CLIENT ID     compare only the reply's type byte (nondeterministic values)
//! @server-args --enable-debug-command local
//!                             (anywhere, once per file) both servers start with these
//!                             extra arguments
//! ```
//!
//! A modifier (`@unordered`, `@unordered-pairs`, `@ignore-value`) either prefixes the step
//! on its own line or stands alone on the line before it. `HELLO 3` and the like are plain
//! commands.
//!
//! Every reply read is one compared case. After a reply that may end the connection (an
//! error to raw input, any "Protocol error", `QUIT`) the harness also checks whether each
//! server closed the connection, and that must agree too. Whenever a connection is closed,
//! times out or goes out of step, both connections are replaced before the next step, so
//! one failure does not hide the rest: every mismatch is reported with file:line, the
//! command and both replies, and the test fails at the end with the count.
//!
//! Run: `cargo test --test it -- --nocapture` prints, per file and in total,
//! "diff: N commands compared, M mismatches".
//!
//! Environment:
//! - `REDSIM_DIFF_ONLY_REDIS=1`: compare redis with a second redis instead of redsim. This
//!   validates case files before redsim exists: any nondeterminism shows up as a mismatch.
//! - `REDSIM_DIFF_FILTER=<substring>`: only case files whose name contains it.
//! - `REDSIM_DIFF_SHOW=1`: print every step with the reference reply (for writing cases).

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use crate::resp::{escape, split_aggregate, Conn, Reply};
use crate::support::{Flavor, Server};

const FILE_WORKERS: usize = 6;
/// Long enough for a server to close after its reply on a loaded machine; paid only by
/// steps that might close and did not.
const CLOSE_PROBE_WAIT: Duration = Duration::from_millis(150);
/// A server that stops answering would otherwise cost a full timeout per remaining step.
const TIMEOUTS_MAX_PER_FILE: usize = 3;
const SLEEP_MAX_MS: u64 = 5_000;
const REPORT_FULL_MAX_LEN: usize = 800; // escaped characters
const REPORT_CONTEXT_LEN: usize = 160; // bytes either side of the first difference

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compare {
    Exact,
    Unordered,
    UnorderedPairs,
    TypeOnly,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Command(Vec<Vec<u8>>),
    Raw(Vec<u8>),
    Send(Vec<u8>),
    Read,
    Sleep(u64),
    NewConn,
}

#[derive(Clone, Debug)]
pub struct Step {
    pub line_no: usize,
    pub text: String,
    pub action: Action,
    pub compare: Compare,
}

pub fn parse_case_file(source: &str) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    let mut pending: Option<Compare> = None;
    for (index, raw_line) in source.lines().enumerate() {
        let line_no = index + 1;
        let line = raw_line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(SERVER_ARGS) {
            continue;
        }
        let fail = |why: String| format!("line {line_no}: {why}: {line}");
        let (modifier, rest) = split_modifier(line);
        if let Some(compare) = modifier {
            if pending.is_some() {
                return Err(fail("two modifiers for one step".into()));
            }
            pending = Some(compare);
            if rest.is_empty() {
                continue;
            }
        }
        let action = parse_action(rest).map_err(fail)?;
        let compare = pending.take().unwrap_or(Compare::Exact);
        if compare != Compare::Exact && !reads_reply(&action) {
            return Err(fail("a modifier must precede a step that reads a reply".into()));
        }
        steps.push(Step { line_no, text: rest.to_string(), action, compare });
    }
    if pending.is_some() {
        return Err("a modifier at the end of the file has no step".into());
    }
    Ok(steps)
}

/// The file-level directive naming extra server arguments.
const SERVER_ARGS: &str = "@server-args ";

/// The extra arguments the case file asks both servers to start with.
pub fn server_args(source: &str) -> Vec<&str> {
    source.lines().filter_map(|l| l.trim().strip_prefix(SERVER_ARGS)).flat_map(str::split_whitespace).collect()
}

fn split_modifier(line: &str) -> (Option<Compare>, &str) {
    for (word, compare) in [
        ("@unordered-pairs", Compare::UnorderedPairs),
        ("@unordered", Compare::Unordered),
        ("@ignore-value", Compare::TypeOnly),
    ] {
        if let Some(rest) = line.strip_prefix(word) {
            if rest.is_empty() || rest.starts_with(char::is_whitespace) {
                return (Some(compare), rest.trim_start());
            }
        }
    }
    (None, line)
}

fn parse_action(line: &str) -> Result<Action, String> {
    let (word, rest) = match line.split_once(' ') {
        Some((word, rest)) => (word, rest),
        None => (line, ""),
    };
    let action = match word {
        "@raw" => Action::Raw(unescape(rest)?),
        "@send" => Action::Send(unescape(rest)?),
        "@read" if rest.is_empty() => Action::Read,
        "@newconn" if rest.is_empty() => Action::NewConn,
        "@sleep" => {
            let ms: u64 = rest.trim().parse().map_err(|_| "@sleep takes milliseconds".to_string())?;
            if ms > SLEEP_MAX_MS {
                return Err(format!("@sleep longer than {SLEEP_MAX_MS} ms"));
            }
            Action::Sleep(ms)
        }
        _ if word.starts_with('@') => return Err(format!("unknown directive {word}")),
        _ => {
            let args = split_args(line)?;
            if args.is_empty() {
                return Err("empty command".into());
            }
            Action::Command(args)
        }
    };
    if matches!(&action, Action::Raw(b) | Action::Send(b) if b.is_empty()) {
        return Err("no bytes to send".into());
    }
    Ok(action)
}

fn reads_reply(action: &Action) -> bool {
    matches!(action, Action::Command(_) | Action::Raw(_) | Action::Read)
}

/// Splits a line as redis-cli does (`sdssplitargs`): quotes may start mid-word, and a
/// closing quote must be followed by a space or the end of the line.
pub fn split_args(line: &str) -> Result<Vec<Vec<u8>>, String> {
    let bytes = line.as_bytes();
    let mut args = Vec::new();
    let mut pos = 0;
    loop {
        while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        if pos == bytes.len() {
            return Ok(args);
        }
        let mut arg = Vec::new();
        let mut quote: Option<u8> = None;
        loop {
            let Some(&c) = bytes.get(pos) else {
                if quote.is_some() {
                    return Err("unbalanced quotes".into());
                }
                break;
            };
            match quote {
                Some(b'"') if c == b'\\' && pos + 1 < bytes.len() => {
                    pos += escape_at(bytes, pos, &mut arg);
                    continue;
                }
                Some(b'\'') if c == b'\\' && bytes.get(pos + 1) == Some(&b'\'') => {
                    arg.push(b'\'');
                    pos += 2;
                    continue;
                }
                Some(q) if c == q => {
                    if bytes.get(pos + 1).is_some_and(|n| !n.is_ascii_whitespace()) {
                        return Err("closing quote must be followed by a space".into());
                    }
                    pos += 1;
                    break;
                }
                Some(_) => arg.push(c),
                None if c.is_ascii_whitespace() => break,
                None if c == b'"' || c == b'\'' => quote = Some(c),
                None => arg.push(c),
            }
            pos += 1;
        }
        args.push(arg);
    }
}

/// Decodes the escape starting at `bytes[pos] == b'\\'`; returns how many bytes it took.
fn escape_at(bytes: &[u8], pos: usize, out: &mut Vec<u8>) -> usize {
    let hex = |i: usize| bytes.get(i).and_then(|&b| (b as char).to_digit(16));
    if bytes.get(pos + 1) == Some(&b'x') {
        if let (Some(hi), Some(lo)) = (hex(pos + 2), hex(pos + 3)) {
            out.push((hi * 16 + lo) as u8);
            return 4;
        }
    }
    out.push(match bytes[pos + 1] {
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'b' => 0x08,
        b'a' => 0x07,
        other => other,
    });
    2
}

/// The payload of `@raw`/`@send`: the rest of the line, byte for byte, with escapes decoded.
fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut pos = 0;
    while pos < bytes.len() {
        if bytes[pos] == b'\\' {
            if pos + 1 == bytes.len() {
                return Err("trailing backslash".into());
            }
            pos += escape_at(bytes, pos, &mut out);
        } else {
            out.push(bytes[pos]);
            pos += 1;
        }
    }
    Ok(out)
}

pub fn encode_command(args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// One side's answer to a step: the reply, and whether the server then closed the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    pub reply: Reply,
    pub closed_after: bool,
}

impl Observation {
    fn describe(&self) -> String {
        let closed = if self.closed_after && self.reply != Reply::Closed { " <then closed>" } else { "" };
        format!("{}{closed}", self.reply.describe())
    }
}

pub fn observations_match(reference: &Observation, candidate: &Observation, how: Compare) -> bool {
    if reference.closed_after != candidate.closed_after {
        return false;
    }
    match (&reference.reply, &candidate.reply) {
        (Reply::Frame(a), Reply::Frame(b)) => canonical(a, how) == canonical(b, how),
        (a, b) => a == b,
    }
}

fn canonical(frame: &[u8], how: Compare) -> Vec<u8> {
    match how {
        Compare::Exact => frame.to_vec(),
        Compare::TypeOnly => frame[..1].to_vec(),
        Compare::Unordered => sorted_deep(frame),
        Compare::UnorderedPairs => sorted_top_pairs(frame),
    }
}

fn sorted_deep(frame: &[u8]) -> Vec<u8> {
    let Some((kind, elements)) = split_aggregate(frame) else {
        return frame.to_vec();
    };
    let chunk = if kind == b'%' { 2 } else { 1 };
    let entries = elements.chunks(chunk).map(|entry| entry.iter().flat_map(|e| sorted_deep(e)).collect()).collect();
    with_sorted_entries(frame, entries)
}

fn sorted_top_pairs(frame: &[u8]) -> Vec<u8> {
    let Some((_, elements)) = split_aggregate(frame) else {
        return frame.to_vec();
    };
    if elements.len() % 2 != 0 {
        return frame.to_vec();
    }
    let entries = elements.chunks(2).map(|pair| pair.concat()).collect();
    with_sorted_entries(frame, entries)
}

fn with_sorted_entries(frame: &[u8], mut entries: Vec<Vec<u8>>) -> Vec<u8> {
    entries.sort();
    let header_len = frame.windows(2).position(|w| w == b"\r\n").expect("an aggregate has a header line") + 2;
    let mut out = frame[..header_len].to_vec();
    for entry in entries {
        out.extend_from_slice(&entry);
    }
    out
}

/// Both servers of one case file and a connection to each; index 0 is the reference.
struct Pair {
    servers: [Server; 2],
    conns: [Conn; 2],
}

impl Pair {
    fn start(candidate: Flavor, args: &[&str]) -> Pair {
        let servers = [Server::start_with(Flavor::Redis, args), Server::start_with(candidate, args)];
        let conns = [connect(&servers[0]), connect(&servers[1])];
        Pair { servers, conns }
    }

    fn reconnect(&mut self) {
        self.conns = [connect(&self.servers[0]), connect(&self.servers[1])];
    }

    fn send(&mut self, bytes: &[u8]) {
        for conn in &mut self.conns {
            conn.send(bytes);
        }
    }

    fn read(&mut self) -> [Observation; 2] {
        let observe = |conn: &mut Conn| {
            let reply = conn.read_reply();
            Observation { reply, closed_after: conn.is_closed() }
        };
        let [a, b] = &mut self.conns;
        [observe(a), observe(b)]
    }

    /// Whether each server closed the connection after the replies just read.
    fn probe_closed(&mut self, observed: &mut [Observation; 2]) {
        for (conn, observation) in self.conns.iter_mut().zip(observed) {
            observation.closed_after = conn.closes_within(CLOSE_PROBE_WAIT);
        }
    }

    /// After a closed connection, or a mismatch with unread bytes on one side only (an
    /// extra reply), later replies would be paired with the wrong commands. Unread bytes
    /// alone prove nothing: pipelined replies may arrive in one segment or several.
    fn out_of_step(&self, mismatched: bool) -> bool {
        let [a, b] = &self.conns;
        a.is_closed() || b.is_closed() || mismatched && a.has_buffered() != b.has_buffered()
    }
}

fn connect(server: &Server) -> Conn {
    Conn::connect(server.port).unwrap_or_else(|e| {
        panic!("{} on port {}: connect failed: {e}; its output:\n{}", server.flavor.name(), server.port, server.log())
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[derive(Default)]
pub struct FileOutcome {
    pub name: String,
    pub compared: usize,
    pub mismatches: Vec<String>,
}

pub fn run_case_file(path: &Path, candidate: Flavor, show: bool) -> FileOutcome {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let source = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: read failed: {e}", path.display()));
    let steps = parse_case_file(&source).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut outcome = FileOutcome { name: name.clone(), ..FileOutcome::default() };
    let names = [Flavor::Redis.name(), candidate_label(candidate)];
    let mut pair = Pair::start(candidate, &server_args(&source));

    pair.send(&encode_command(&[b"FLUSHALL".to_vec()]));
    let flushed = pair.read();
    if flushed.iter().any(|o| o.reply != Reply::Frame(b"+OK\r\n".to_vec())) {
        outcome.mismatches.push(format!(
            "{name}: setup FLUSHALL\n    {}: {}\n    {}: {}",
            names[0],
            flushed[0].describe(),
            names[1],
            flushed[1].describe()
        ));
        return outcome;
    }
    pair.reconnect();

    let mut timeouts = 0;
    for step in &steps {
        let Some(raw_input) = send_step(&mut pair, &step.action) else {
            continue;
        };
        let mut observed = pair.read();
        if may_close(&step.action, raw_input, &observed) {
            pair.probe_closed(&mut observed);
        }
        outcome.compared += 1;
        if show {
            let reply = observed[0].describe();
            println!("{name}:{} {} -> {reply}", step.line_no, step.text);
        }
        let mismatched = !observations_match(&observed[0], &observed[1], step.compare);
        if mismatched {
            let mismatch = report(&name, step, names, &observed);
            outcome.mismatches.push(mismatch);
        }
        timeouts += observed.iter().filter(|o| o.reply == Reply::Timeout).count();
        if timeouts >= TIMEOUTS_MAX_PER_FILE {
            outcome
                .mismatches
                .push(format!("{name}:{}: gave up on the file after {timeouts} replies timed out", step.line_no));
            break;
        }
        if pair.out_of_step(mismatched) {
            pair.reconnect();
        }
    }
    outcome
}

/// Performs a step's input; `Some(raw_input)` when a reply is to be read for it.
fn send_step(pair: &mut Pair, action: &Action) -> Option<bool> {
    match action {
        Action::Sleep(ms) => thread::sleep(Duration::from_millis(*ms)),
        Action::NewConn => pair.reconnect(),
        Action::Send(bytes) => pair.send(bytes),
        Action::Command(args) => {
            pair.send(&encode_command(args));
            return Some(false);
        }
        Action::Raw(bytes) => {
            pair.send(bytes);
            return Some(true);
        }
        Action::Read => return Some(true),
    }
    None
}

/// Redis closes a connection after a protocol error (which raw input provokes) and QUIT.
fn may_close(action: &Action, raw_input: bool, observed: &[Observation; 2]) -> bool {
    let quit = matches!(action, Action::Command(args) if args[0].eq_ignore_ascii_case(b"quit"));
    let protocol_error = observed.iter().any(|o| matches!(&o.reply, Reply::Frame(b) if contains(b, b"Protocol error")));
    quit || protocol_error || raw_input && observed.iter().any(|o| o.reply.is_error())
}

fn report(name: &str, step: &Step, names: [&str; 2], observed: &[Observation; 2]) -> String {
    let mut text = format!("{name}:{}: {}", step.line_no, step.text);
    if step.compare != Compare::Exact {
        let _ = write!(text, "    (compared {:?})", step.compare);
    }
    let (a, b) = (observed[0].describe(), observed[1].describe());
    if a.len() <= REPORT_FULL_MAX_LEN && b.len() <= REPORT_FULL_MAX_LEN {
        let _ = write!(text, "\n    {:<6}: {a}\n    {:<6}: {b}", names[0], names[1]);
        return text;
    }
    if let (Reply::Frame(x), Reply::Frame(y)) = (&observed[0].reply, &observed[1].reply) {
        let at = x.iter().zip(y).take_while(|(p, q)| p == q).count();
        let from = at.saturating_sub(REPORT_CONTEXT_LEN);
        let window = |f: &[u8]| escape(&f[from.min(f.len())..(at + REPORT_CONTEXT_LEN).min(f.len())]);
        let _ = write!(
            text,
            "\n    first difference at byte {at} ({} vs {} bytes); from byte {from}:\n    {:<6}: ...{}\n    {:<6}: ...{}",
            x.len(),
            y.len(),
            names[0],
            window(x),
            names[1],
            window(y)
        );
        return text;
    }
    let cut = |s: &str| s.chars().take(REPORT_FULL_MAX_LEN).collect::<String>();
    let _ = write!(text, "\n    {:<6}: {}...\n    {:<6}: {}...", names[0], cut(&a), names[1], cut(&b));
    text
}

/// In REDSIM_DIFF_ONLY_REDIS mode both sides are redis; reports still say which is which.
fn candidate_label(candidate: Flavor) -> &'static str {
    match candidate {
        Flavor::Redis => "redis2",
        Flavor::Redsim => "redsim",
    }
}

fn case_files(filter: Option<&str>) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("read tests/cases entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .filter(|p| filter.is_none_or(|f| p.file_name().is_some_and(|n| n.to_string_lossy().contains(f))))
        .collect();
    files.sort();
    files
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == "1")
}

#[test]
fn case_files_get_the_same_reply_bytes_from_redis_and_redsim() {
    let only_redis = env_flag("REDSIM_DIFF_ONLY_REDIS");
    let show = env_flag("REDSIM_DIFF_SHOW");
    let filter = std::env::var("REDSIM_DIFF_FILTER").ok();
    let candidate = if only_redis { Flavor::Redis } else { Flavor::Redsim };
    let files = case_files(filter.as_deref());
    assert!(!files.is_empty(), "no case file in tests/cases matches REDSIM_DIFF_FILTER={filter:?}");

    let queue = Mutex::new(files.clone());
    let outcomes = Mutex::new(Vec::new());
    thread::scope(|scope| {
        for _ in 0..FILE_WORKERS.min(files.len()) {
            scope.spawn(|| loop {
                let next = queue.lock().unwrap().pop();
                let Some(path) = next else { break };
                let outcome = run_case_file(&path, candidate, show);
                outcomes.lock().unwrap().push(outcome);
            });
        }
    });
    let mut outcomes = outcomes.into_inner().unwrap();
    outcomes.sort_by(|a, b| a.name.cmp(&b.name));

    let mut compared = 0;
    let mut mismatches = 0;
    for outcome in &outcomes {
        println!(
            "diff: {:<20} {:>4} commands compared, {} mismatches",
            outcome.name,
            outcome.compared,
            outcome.mismatches.len()
        );
        for mismatch in &outcome.mismatches {
            println!("MISMATCH {mismatch}");
        }
        compared += outcome.compared;
        mismatches += outcome.mismatches.len();
    }
    println!("diff: redis vs {}: {compared} commands compared, {mismatches} mismatches", candidate_label(candidate));
    assert_eq!(mismatches, 0, "{mismatches} replies differ; see MISMATCH lines above");
    assert!(compared > 0, "no command was compared");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(bytes: &[u8]) -> Observation {
        Observation { reply: Reply::Frame(bytes.to_vec()), closed_after: false }
    }

    #[test]
    fn split_args_follows_redis_cli_quoting() {
        let args = split_args(r#"SET "a b\x41\n\"" 'it\'s' x"y z" """#).unwrap();
        let expected: Vec<&[u8]> = vec![b"SET", b"a bA\n\"", b"it's", b"xy z", b""];
        assert_eq!(args, expected);
        assert!(split_args(r#"SET "open"#).is_err());
        assert!(split_args(r#"SET "a"b"#).is_err());
    }

    #[test]
    fn parse_case_file_applies_modifiers_to_the_next_step_only() {
        let steps =
            parse_case_file("# c\n\n@unordered KEYS *\n@ignore-value\nTIME\nGET k\n@raw PING\\r\\n\n@sleep 5\n")
                .unwrap();
        let shape: Vec<(usize, Compare)> = steps.iter().map(|s| (s.line_no, s.compare)).collect();
        assert_eq!(
            shape,
            vec![
                (3, Compare::Unordered),
                (5, Compare::TypeOnly),
                (6, Compare::Exact),
                (7, Compare::Exact),
                (8, Compare::Exact),
            ]
        );
        assert_eq!(steps[3].action, Action::Raw(b"PING\r\n".to_vec()));
        assert!(parse_case_file("@unordered\n@sleep 5\n").is_err());
        assert!(parse_case_file("@bogus x\n").is_err());
    }

    #[test]
    fn server_args_are_read_from_the_file_and_are_no_step() {
        let source = "# x\n@server-args --enable-debug-command local\nPING\n";
        assert_eq!(server_args(source), vec!["--enable-debug-command", "local"]);
        assert_eq!(parse_case_file(source).unwrap().len(), 1);
    }

    #[test]
    fn different_bytes_are_a_mismatch() {
        let ok = frame(b"+OK\r\n");
        assert!(observations_match(&ok, &ok, Compare::Exact));
        assert!(!observations_match(&ok, &frame(b"+Ok\r\n"), Compare::Exact));
        assert!(!observations_match(&ok, &frame(b"$2\r\nOK\r\n"), Compare::TypeOnly));
        let closed = Observation { reply: Reply::Closed, closed_after: true };
        assert!(!observations_match(&ok, &closed, Compare::Exact));
        let ok_then_closed = Observation { closed_after: true, ..ok.clone() };
        assert!(!observations_match(&ok, &ok_then_closed, Compare::Exact));
    }

    #[test]
    fn unordered_compares_multisets_at_every_depth() {
        let a = frame(b"*2\r\n$1\r\n0\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n");
        let b = frame(b"*2\r\n$1\r\n0\r\n*2\r\n$1\r\nb\r\n$1\r\na\r\n");
        let c = frame(b"*2\r\n$1\r\n0\r\n*2\r\n$1\r\nb\r\n$1\r\nb\r\n");
        assert!(observations_match(&a, &b, Compare::Unordered));
        assert!(!observations_match(&a, &b, Compare::Exact));
        assert!(!observations_match(&a, &c, Compare::Unordered));
    }

    #[test]
    fn unordered_pairs_keep_keys_with_their_values() {
        let a = frame(b"*4\r\n$1\r\nk\r\n$1\r\n1\r\n$1\r\nj\r\n$1\r\n2\r\n");
        let b = frame(b"*4\r\n$1\r\nj\r\n$1\r\n2\r\n$1\r\nk\r\n$1\r\n1\r\n");
        let swapped = frame(b"*4\r\n$1\r\nj\r\n$1\r\n1\r\n$1\r\nk\r\n$1\r\n2\r\n");
        assert!(observations_match(&a, &b, Compare::UnorderedPairs));
        assert!(!observations_match(&a, &swapped, Compare::UnorderedPairs));
    }

    #[test]
    fn encode_command_writes_a_multibulk() {
        assert_eq!(encode_command(&[b"GET".to_vec(), b"".to_vec()]), b"*2\r\n$3\r\nGET\r\n$0\r\n\r\n");
    }
}

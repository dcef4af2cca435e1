//! The request parser, incremental like Redis's `processMultibulkBuffer`/`processInlineBuffer`:
//! bytes are consumed from the query buffer as soon as an argument is complete, so a 500 MB
//! bulk is copied once and a slow client never makes us rescan what we already parsed.

use bytes::{Buf, Bytes, BytesMut};

/// Initial size of a query buffer, and how much room a read gets (Redis's `PROTO_IOBUF_LEN`).
pub const PROTO_IOBUF_LEN: usize = 16 * 1024;
/// Longest inline request, and longest `*<n>` / `$<n>` header line (bytes).
pub const PROTO_INLINE_MAX_SIZE: usize = 64 * 1024;
/// Default `proto-max-bulk-len` (bytes).
pub const PROTO_MAX_BULK_LEN: u64 = 512 * 1024 * 1024;
/// Default `client-query-buffer-limit` (bytes).
pub const CLIENT_QUERY_BUFFER_LIMIT: usize = 1024 * 1024 * 1024;
/// Largest multibulk count Redis accepts (`INT_MAX`).
const PROTO_MAX_MULTIBULK_LEN: i64 = i32::MAX as i64;
/// Before authentication, Redis refuses larger headers (protects against unauthenticated DoS).
const UNAUTH_MAX_MULTIBULK_LEN: i64 = 10;
const UNAUTH_MAX_BULK_LEN: i64 = 16384;

/// A request the client can't be allowed to continue after. Redis replies with the text (for
/// `Protocol`) and closes the connection once the reply is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Reply `-ERR <text>` then close.
    Protocol(String),
    /// The query buffer passed `client-query-buffer-limit`: close without a reply.
    QueryBufferLimit,
}

impl ParseError {
    fn protocol(text: &str) -> Self {
        ParseError::Protocol(format!("Protocol error: {text}"))
    }
}

#[derive(Debug, Default)]
enum State {
    #[default]
    Start,
    /// Inside `*<n>`: `remaining` arguments still to read.
    Multibulk { remaining: usize, args: Vec<Bytes>, bulk_len: Option<usize> },
}

/// Parser limits, from the config.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bulk_len: u64,
    pub query_buffer_limit: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_bulk_len: PROTO_MAX_BULK_LEN, query_buffer_limit: CLIENT_QUERY_BUFFER_LIMIT }
    }
}

#[derive(Debug, Default)]
pub struct RequestParser {
    state: State,
    pub limits: Limits,
}

type Parsed = Result<Option<Vec<Bytes>>, ParseError>;

impl RequestParser {
    pub fn new(limits: Limits) -> Self {
        RequestParser { state: State::Start, limits }
    }

    /// Bytes the parser holds for the current, incomplete request (for CLIENT LIST `qbuf`).
    pub fn pending_args(&self) -> usize {
        match &self.state {
            State::Start => 0,
            State::Multibulk { args, .. } => args.len(),
        }
    }

    /// Takes the next complete request off `buf`. `Ok(None)`: need more bytes. Empty requests
    /// (blank inline lines, `*0`) are skipped, as Redis does.
    pub fn next_request(&mut self, buf: &mut BytesMut, authenticated: bool) -> Parsed {
        loop {
            if buf.len() > self.limits.query_buffer_limit {
                return Err(ParseError::QueryBufferLimit);
            }
            let parsed = match self.state {
                State::Start => match buf.first() {
                    None => return Ok(None),
                    Some(b'*') => self.start_multibulk(buf, authenticated)?,
                    Some(_) => parse_inline(buf)?,
                },
                State::Multibulk { .. } => self.continue_multibulk(buf, authenticated)?,
            };
            match parsed {
                Step::Need => return Ok(None),
                Step::Empty => continue,
                Step::Done(args) => return Ok(Some(args)),
                Step::Progress => continue,
            }
        }
    }

    fn start_multibulk(&mut self, buf: &mut BytesMut, authenticated: bool) -> Result<Step, ParseError> {
        let Some(nl) = find_crlf(buf) else {
            if buf.len() > PROTO_INLINE_MAX_SIZE {
                return Err(ParseError::protocol("too big mbulk count string"));
            }
            return Ok(Step::Need);
        };
        let count = parse_ll(&buf[1..nl]);
        let count = match count {
            Some(n) if n <= PROTO_MAX_MULTIBULK_LEN => n,
            _ => return Err(ParseError::protocol("invalid multibulk length")),
        };
        if count > UNAUTH_MAX_MULTIBULK_LEN && !authenticated {
            return Err(ParseError::protocol("unauthenticated multibulk length"));
        }
        buf.advance(nl + 2);
        if count <= 0 {
            return Ok(Step::Empty);
        }
        let count = count as usize;
        // Cap the preallocation: the count is the client's word, not yet backed by bytes.
        let args = Vec::with_capacity(count.min(1024));
        self.state = State::Multibulk { remaining: count, args, bulk_len: None };
        Ok(Step::Progress)
    }

    fn continue_multibulk(&mut self, buf: &mut BytesMut, authenticated: bool) -> Result<Step, ParseError> {
        let max_bulk_len = self.limits.max_bulk_len;
        let State::Multibulk { remaining, args, bulk_len } = &mut self.state else {
            unreachable!("continue_multibulk outside a multibulk");
        };
        while *remaining > 0 {
            let len = match *bulk_len {
                Some(len) => len,
                None => {
                    let Some(nl) = find_crlf(buf) else {
                        if buf.len() > PROTO_INLINE_MAX_SIZE {
                            return Err(ParseError::protocol("too big bulk count string"));
                        }
                        return Ok(Step::Need);
                    };
                    if buf[0] != b'$' {
                        let got = buf[0] as char;
                        return Err(ParseError::Protocol(format!("Protocol error: expected '$', got '{got}'")));
                    }
                    let len = match parse_ll(&buf[1..nl]) {
                        Some(n) if n >= 0 && (n as u64) <= max_bulk_len => n,
                        _ => return Err(ParseError::protocol("invalid bulk length")),
                    };
                    if len > UNAUTH_MAX_BULK_LEN && !authenticated {
                        return Err(ParseError::protocol("unauthenticated bulk length"));
                    }
                    buf.advance(nl + 2);
                    let len = len as usize;
                    if len >= 32 * 1024 {
                        // A big argument: make room once, as Redis does, instead of regrowing.
                        buf.reserve(len + 2);
                    }
                    *bulk_len = Some(len);
                    len
                }
            };
            // Redis skips the two bytes after the payload without checking them.
            if buf.len() < len + 2 {
                return Ok(Step::Need);
            }
            let arg = buf.split_to(len).freeze();
            buf.advance(2);
            args.push(arg);
            *bulk_len = None;
            *remaining -= 1;
        }
        let State::Multibulk { args, .. } = std::mem::take(&mut self.state) else { unreachable!() };
        Ok(Step::Done(args))
    }
}

enum Step {
    Need,
    Empty,
    Progress,
    Done(Vec<Bytes>),
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    // Redis looks for '\r' and then requires the '\n' to be there (else: need more).
    let limit = buf.len().min(PROTO_INLINE_MAX_SIZE + 2);
    let pos = memchr(b'\r', &buf[..limit])?;
    if pos + 1 < buf.len() {
        Some(pos)
    } else {
        None
    }
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

fn parse_inline(buf: &mut BytesMut) -> Result<Step, ParseError> {
    let Some(nl) = memchr(b'\n', buf) else {
        if buf.len() > PROTO_INLINE_MAX_SIZE {
            return Err(ParseError::protocol("too big inline request"));
        }
        return Ok(Step::Need);
    };
    let line_end = if nl > 0 && buf[nl - 1] == b'\r' { nl - 1 } else { nl };
    let args = split_args(&buf[..line_end]);
    buf.advance(nl + 1);
    match args {
        None => Err(ParseError::protocol("unbalanced quotes in request")),
        Some(a) if a.is_empty() => Ok(Step::Empty),
        Some(a) => Ok(Step::Done(a.into_iter().map(Bytes::from).collect())),
    }
}

/// Redis's `string2ll`: optional '-', no '+', no leading zeros, no spaces, fits i64.
pub fn parse_ll(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = if s[0] == b'-' { (true, &s[1..]) } else { (false, s) };
    if digits.is_empty() || !(b'1'..=b'9').contains(&digits[0]) {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    if neg {
        if v > i64::MAX as u64 + 1 {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else if v > i64::MAX as u64 {
        None
    } else {
        Some(v as i64)
    }
}

fn is_hex(c: u8) -> bool {
    c.is_ascii_hexdigit()
}

fn hex_val(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c - b'A' + 10,
    }
}

/// Redis's `sdssplitargs`: whitespace-separated words, "double quotes" with C escapes and
/// \xHH, 'single quotes' with only \'. A closing quote must be followed by a space or the
/// end. `None` for unbalanced quotes.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && is_space(line[i]) {
            i += 1;
        }
        if i >= n {
            return Some(out);
        }
        let mut cur = Vec::new();
        let mut inq = false;
        let mut insq = false;
        loop {
            if inq {
                if i >= n {
                    return None;
                }
                if line[i] == b'\\' && i + 3 < n && line[i + 1] == b'x' && is_hex(line[i + 2]) && is_hex(line[i + 3]) {
                    cur.push(hex_val(line[i + 2]) * 16 + hex_val(line[i + 3]));
                    i += 3;
                } else if line[i] == b'\\' && i + 1 < n {
                    i += 1;
                    cur.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        c => c,
                    });
                } else if line[i] == b'"' {
                    if i + 1 < n && !is_space(line[i + 1]) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(line[i]);
                }
            } else if insq {
                if i >= n {
                    return None;
                }
                if line[i] == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    i += 1;
                    cur.push(b'\'');
                } else if line[i] == b'\'' {
                    if i + 1 < n && !is_space(line[i + 1]) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(line[i]);
                }
            } else {
                if i >= n {
                    break;
                }
                match line[i] {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => {
                        i += 1;
                        break;
                    }
                    b'"' => inq = true,
                    b'\'' => insq = true,
                    c => cur.push(c),
                }
            }
            i += 1;
        }
        out.push(cur);
    }
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> (Vec<Vec<Bytes>>, Option<ParseError>) {
        let mut p = RequestParser::default();
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        loop {
            match p.next_request(&mut buf, true) {
                Ok(Some(a)) => out.push(a),
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e)),
            }
        }
    }

    #[test]
    fn multibulk_and_inline_pipeline() {
        let (reqs, err) = parse_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n\r\n*0\r\nECHO \"a b\"\n");
        assert_eq!(err, None);
        assert_eq!(reqs.len(), 3);
        assert_eq!(reqs[0], vec![Bytes::from("GET"), Bytes::from("k")]);
        assert_eq!(reqs[1], vec![Bytes::from("PING")]);
        assert_eq!(reqs[2], vec![Bytes::from("ECHO"), Bytes::from("a b")]);
    }

    #[test]
    fn byte_at_a_time_gives_the_same_requests() {
        let input = b"*3\r\n$3\r\nSET\r\n$5\r\nhello\r\n$10\r\n0123456789\r\nINLINE 'x y' z\r\n";
        let mut p = RequestParser::default();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for &b in input.iter() {
            buf.extend_from_slice(&[b]);
            while let Some(a) = p.next_request(&mut buf, true).unwrap() {
                got.push(a);
            }
        }
        assert_eq!(got.len(), 2);
        assert_eq!(got[0][2], Bytes::from("0123456789"));
        assert_eq!(got[1], vec![Bytes::from("INLINE"), Bytes::from("x y"), Bytes::from("z")]);
    }

    #[test]
    fn protocol_errors_have_redis_texts() {
        let cases: &[(&[u8], &str)] = &[
            (b"*1\r\n$abc\r\n", "Protocol error: invalid bulk length"),
            (b"*1\r\n$-1\r\n", "Protocol error: invalid bulk length"),
            (b"*1\r\n$600000000\r\n", "Protocol error: invalid bulk length"),
            (b"*abc\r\n", "Protocol error: invalid multibulk length"),
            (b"*3000000000\r\n", "Protocol error: invalid multibulk length"),
            (b"*1\r\nfoo\r\n", "Protocol error: expected '$', got 'f'"),
            (b"SET \"a b\r\n", "Protocol error: unbalanced quotes in request"),
            (b"SET \"a\"b\r\n", "Protocol error: unbalanced quotes in request"),
        ];
        for (input, text) in cases {
            let (_, err) = parse_all(input);
            assert_eq!(err, Some(ParseError::Protocol(text.to_string())), "input {input:?}");
        }
    }

    #[test]
    fn negative_multibulk_is_an_empty_request() {
        let (reqs, err) = parse_all(b"*-1\r\nPING\r\n");
        assert_eq!(err, None);
        assert_eq!(reqs, vec![vec![Bytes::from("PING")]]);
    }

    #[test]
    fn oversized_inline_is_refused() {
        let big = vec![b'a'; PROTO_INLINE_MAX_SIZE + 10];
        let (_, err) = parse_all(&big);
        assert_eq!(err, Some(ParseError::Protocol("Protocol error: too big inline request".into())));
    }

    #[test]
    fn unauthenticated_limits() {
        let mut p = RequestParser::default();
        let mut buf = BytesMut::from(&b"*11\r\n"[..]);
        let e = p.next_request(&mut buf, false).unwrap_err();
        assert_eq!(e, ParseError::Protocol("Protocol error: unauthenticated multibulk length".into()));
    }

    #[test]
    fn string2ll_is_strict() {
        assert_eq!(parse_ll(b"0"), Some(0));
        assert_eq!(parse_ll(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_ll(b"9223372036854775807"), Some(i64::MAX));
        for bad in [&b"9223372036854775808"[..], b"01", b"+1", b" 1", b"1 ", b"-", b"", b"-0", b"1a"] {
            assert_eq!(parse_ll(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn split_args_escapes() {
        assert_eq!(
            split_args(b"a \"\\x41\\n\" 'it\\'s'").unwrap(),
            vec![b"a".to_vec(), b"A\n".to_vec(), b"it's".to_vec()]
        );
        assert_eq!(split_args(b"   ").unwrap(), Vec::<Vec<u8>>::new());
        assert!(split_args(b"'abc").is_none());
    }

    /// The fuzz target's property without cargo-fuzz: seeded junk, fed whole or in random
    /// chunks, never panics and gives the same requests and the same error either way.
    #[test]
    fn random_input_chunked_or_whole_parses_the_same() {
        use crate::env::{Rng, SeededRng};
        const PIECES: &[&[u8]] = &[b"*", b"$", b"\r\n", b"2", b"-1", b"3", b"abc", b"\"", b"'", b" ", b"\n", b"PING"];
        for seed in 0..500 {
            let mut rng = SeededRng::from_seed(seed);
            let mut input = Vec::new();
            for _ in 0..rng.below(60) {
                if rng.below(4) == 0 {
                    input.push(rng.next_u64() as u8);
                } else {
                    input.extend_from_slice(PIECES[rng.below(PIECES.len() as u64) as usize]);
                }
            }
            let whole = parse_all(&input);
            let mut p = RequestParser::default();
            let mut buf = BytesMut::new();
            let (mut reqs, mut err) = (Vec::new(), None);
            let mut rest = &input[..];
            'feed: while !rest.is_empty() {
                let n = 1 + rng.below(rest.len() as u64) as usize;
                buf.extend_from_slice(&rest[..n]);
                rest = &rest[n..];
                loop {
                    match p.next_request(&mut buf, true) {
                        Ok(Some(a)) => reqs.push(a),
                        Ok(None) => break,
                        Err(e) => {
                            err = Some(e);
                            break 'feed;
                        }
                    }
                }
            }
            assert_eq!((reqs, err), whole, "seed {seed}");
        }
    }
}

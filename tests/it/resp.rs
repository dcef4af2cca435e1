//! Reads one RESP2/RESP3 reply at a time and hands back its raw bytes.
//!
//! The differential test compares bytes, so this reader only has to know where a reply
//! ends, never what it means. `frame_len` is sans-IO (a complete frame, "read more", or
//! malformed); `Conn` feeds it from a socket. A reply that never finishes is bounded by
//! the read timeout, and one that never ends its line by `LINE_MAX_LEN`.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

/// Larger than any reply line a test provokes; a missing CRLF past this is malformed.
const LINE_MAX_LEN: usize = 64 * 1024; // bytes
/// Redis's proto-max-bulk-len default; a reply never carries a longer string.
const BULK_MAX_LEN: i64 = 512 * 1024 * 1024; // bytes
const AGGREGATE_MAX_LEN: i64 = 1 << 24; // elements
const NESTING_MAX_DEPTH: usize = 64;

pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
const READ_CHUNK_LEN: usize = 16 * 1024; // bytes

/// Where the first complete frame of `buf` ends: `Ok(None)` means read more.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, String> {
    frame_end(buf, 0, 0)
}

fn frame_end(buf: &[u8], start: usize, depth: usize) -> Result<Option<usize>, String> {
    if depth > NESTING_MAX_DEPTH {
        return Err(format!("nesting deeper than {NESTING_MAX_DEPTH}"));
    }
    let Some(line_end) = find_crlf(buf, start)? else {
        return Ok(None);
    };
    let kind = buf[start];
    let line = &buf[start + 1..line_end];
    let after_line = line_end + 2;
    match kind {
        b'+' | b'-' | b',' | b'(' => Ok(Some(after_line)),
        b':' => parse_int(line).map(|_| Some(after_line)),
        b'_' if line.is_empty() => Ok(Some(after_line)),
        b'#' if line == b"t" || line == b"f" => Ok(Some(after_line)),
        b'$' | b'!' | b'=' => {
            let len = parse_int(line)?;
            if len == -1 && kind == b'$' {
                return Ok(Some(after_line));
            }
            if !(0..=BULK_MAX_LEN).contains(&len) {
                return Err(format!("bad blob length {len}"));
            }
            let end = after_line + len as usize + 2;
            if buf.len() < end {
                return Ok(None);
            }
            if &buf[end - 2..end] != b"\r\n" {
                return Err("blob not followed by CRLF".into());
            }
            Ok(Some(end))
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let count = parse_int(line)?;
            if count == -1 && kind == b'*' {
                return Ok(Some(after_line));
            }
            if !(0..=AGGREGATE_MAX_LEN).contains(&count) {
                return Err(format!("bad aggregate length {count}"));
            }
            let per_entry = if kind == b'%' || kind == b'|' { 2 } else { 1 };
            let Some(mut pos) = frames_end(buf, after_line, count as usize * per_entry, depth)? else {
                return Ok(None);
            };
            if kind == b'|' {
                // An attribute annotates the reply that follows it: together they are one reply.
                let Some(end) = frame_end(buf, pos, depth + 1)? else {
                    return Ok(None);
                };
                pos = end;
            }
            Ok(Some(pos))
        }
        other => Err(format!("unknown type byte {:?}", escape(&[other]))),
    }
}

fn frames_end(buf: &[u8], mut pos: usize, count: usize, depth: usize) -> Result<Option<usize>, String> {
    for _ in 0..count {
        match frame_end(buf, pos, depth + 1)? {
            Some(end) => pos = end,
            None => return Ok(None),
        }
    }
    Ok(Some(pos))
}

fn find_crlf(buf: &[u8], start: usize) -> Result<Option<usize>, String> {
    let window = &buf[start.min(buf.len())..];
    match window.windows(2).position(|w| w == b"\r\n") {
        Some(0) => Err("empty line where a type byte was expected".into()),
        Some(offset) => Ok(Some(start + offset)),
        None if window.len() > LINE_MAX_LEN => Err("line without CRLF".into()),
        None => Ok(None),
    }
}

fn parse_int(line: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(line).ok().and_then(|s| s.parse().ok()).ok_or_else(|| format!("bad integer {:?}", escape(line)))
}

/// The elements of an aggregate frame (`*`, `~`, `>`, `%`), as whole frames; `None` for
/// anything else, including nulls and attributes.
pub fn split_aggregate(frame: &[u8]) -> Option<(u8, Vec<&[u8]>)> {
    let kind = *frame.first()?;
    if !matches!(kind, b'*' | b'~' | b'>' | b'%') {
        return None;
    }
    let line_end = find_crlf(frame, 0).ok()??;
    let count = parse_int(&frame[1..line_end]).ok()?;
    let per_entry = if kind == b'%' { 2 } else { 1 };
    let total = usize::try_from(count).ok()? * per_entry;
    let mut pos = line_end + 2;
    let mut elements = Vec::with_capacity(total);
    for _ in 0..total {
        let end = frame_end(frame, pos, 1).ok()??;
        elements.push(&frame[pos..end]);
        pos = end;
    }
    Some((kind, elements))
}

/// Bytes as a one-line, readable string: CR and LF as `\r` `\n`, other non-printables as `\xHH`.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

/// What one read produced; all variants take part in the comparison.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Frame(Vec<u8>),
    /// The server closed the connection (EOF or reset) before a whole reply arrived.
    Closed,
    Timeout,
    Malformed(String),
}

impl Reply {
    pub fn describe(&self) -> String {
        match self {
            Reply::Frame(bytes) => escape(bytes),
            Reply::Closed => "<connection closed>".into(),
            Reply::Timeout => format!("<no reply within {} ms>", REPLY_TIMEOUT.as_millis()),
            Reply::Malformed(why) => format!("<malformed reply: {why}>"),
        }
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Frame(bytes) if bytes.first() == Some(&b'-'))
    }
}

/// A client connection that reads whole replies; bytes past one reply stay buffered for the next.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    closed: bool,
}

impl Conn {
    pub fn connect(port: u16) -> io::Result<Conn> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(REPLY_TIMEOUT))?;
        Ok(Conn { stream, buf: Vec::new(), closed: false })
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Bytes already received beyond the replies read so far.
    pub fn has_buffered(&self) -> bool {
        !self.buf.is_empty()
    }

    /// A failed write means the peer is gone; the next read reports `Closed`.
    pub fn send(&mut self, bytes: &[u8]) {
        if self.closed {
            return;
        }
        if self.stream.write_all(bytes).is_err() {
            self.closed = true;
        }
    }

    pub fn read_reply(&mut self) -> Reply {
        loop {
            match frame_len(&self.buf) {
                Ok(Some(len)) => return Reply::Frame(self.buf.drain(..len).collect()),
                Ok(None) => {}
                Err(why) => {
                    self.abandon();
                    return Reply::Malformed(format!("{why} in {}", escape(&self.buf)));
                }
            }
            if self.closed {
                return Reply::Closed;
            }
            match self.fill() {
                Ok(0) => self.closed = true,
                Ok(_) => {}
                Err(e) if is_timeout(&e) => {
                    self.abandon();
                    return Reply::Timeout;
                }
                Err(_) => self.closed = true,
            }
        }
    }

    /// Whether the server closes the connection within `wait`, without consuming any reply.
    pub fn closes_within(&mut self, wait: Duration) -> bool {
        if self.closed {
            return true;
        }
        if !self.buf.is_empty() {
            return false;
        }
        if self.stream.set_read_timeout(Some(wait)).is_err() {
            return true;
        }
        match self.fill() {
            Ok(0) => self.closed = true,
            Ok(_) => {}
            Err(e) if is_timeout(&e) => {}
            Err(_) => self.closed = true,
        }
        if self.stream.set_read_timeout(Some(REPLY_TIMEOUT)).is_err() {
            self.closed = true;
        }
        self.closed
    }

    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; READ_CHUNK_LEN];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// The stream is out of step with the replies; nothing more can be read from it.
    fn abandon(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
        self.closed = true;
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(frame: &[u8]) {
        assert_eq!(frame_len(frame), Ok(Some(frame.len())), "{}", escape(frame));
        for cut in 0..frame.len() {
            assert_eq!(frame_len(&frame[..cut]), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn frame_len_finds_the_end_of_every_resp3_type() {
        for frame in [
            &b"+OK\r\n"[..],
            b"-ERR no\r\n",
            b":-12\r\n",
            b"$5\r\nhel\r\n\r\n",
            b"$-1\r\n",
            b"$0\r\n\r\n",
            b"*-1\r\n",
            b"*0\r\n",
            b"*2\r\n$1\r\na\r\n*1\r\n:1\r\n",
            b"_\r\n",
            b",1.5\r\n",
            b",inf\r\n",
            b"#t\r\n",
            b"!3\r\nerr\r\n",
            b"=7\r\ntxt:abc\r\n",
            b"(123456789012345678901234567890\r\n",
            b"%2\r\n+a\r\n:1\r\n+b\r\n%1\r\n+c\r\n_\r\n",
            b"~2\r\n+a\r\n+b\r\n",
            b">2\r\n+message\r\n+x\r\n",
            b"|1\r\n+ttl\r\n:3\r\n$1\r\nv\r\n",
        ] {
            whole(frame);
        }
    }

    #[test]
    fn frame_len_stops_after_the_first_pipelined_reply() {
        assert_eq!(frame_len(b"+PONG\r\n+PONG\r\n"), Ok(Some(7)));
    }

    #[test]
    fn frame_len_rejects_what_no_server_sends() {
        assert!(frame_len(b"?x\r\n").is_err());
        assert!(frame_len(b"$3\r\nabcd\r\n").is_err());
        assert!(frame_len(b"*x\r\n").is_err());
        assert!(frame_len(b"#x\r\n").is_err());
        assert!(frame_len(b"$-2\r\n").is_err());
    }

    #[test]
    fn split_aggregate_keeps_map_entries_as_frames() {
        let (kind, parts) = split_aggregate(b"%1\r\n+a\r\n*1\r\n:1\r\n").unwrap();
        assert_eq!(kind, b'%');
        assert_eq!(parts, vec![&b"+a\r\n"[..], b"*1\r\n:1\r\n"]);
        assert!(split_aggregate(b"*-1\r\n").is_none());
    }

    #[test]
    fn escape_shows_control_bytes() {
        assert_eq!(escape(b"a\r\n\x00\\"), "a\\r\\n\\x00\\\\");
    }
}

//! The replica's side of the handshake with its master (Redis's `syncWithMaster`), sans-IO:
//! it says which bytes to send and judges each reply line, and [`PayloadReader`] takes the
//! RDB that a full resync transfers, in either framing (`$<len>` or diskless `$EOF:<mark>`).

use bytes::Bytes;

use super::encode_command;

/// What the replica announces and asks for.
#[derive(Debug, Clone, Default)]
pub struct HandshakeConfig {
    pub listening_port: u16,
    pub announce_ip: Option<String>,
    pub masteruser: Option<String>,
    pub masterauth: Option<String>,
    /// The replid and offset of the history this node holds (a cached master or an RDB's aux
    /// fields); None asks for a full resync (`PSYNC ? -1`).
    pub psync: Option<(String, u64)>,
    /// A coordinated failover hands over to this master: the PSYNC says `FAILOVER`.
    pub failover: bool,
}

/// The next thing to do after a reply line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Wait for the next reply line.
    Wait,
    /// Send these bytes (PSYNC, once the pipelined replies are in), then wait.
    Send(Vec<u8>),
    /// `+FULLRESYNC replid offset`: an RDB follows.
    FullResync { replid: String, offset: u64 },
    /// `+CONTINUE [replid]`: the stream continues from the replica's offset; a new ID means the
    /// master was promoted meanwhile.
    Continue { new_replid: Option<String> },
    /// The master cannot serve now (-LOADING, -NOMASTERLINK...): retry later. The text is logged.
    Retry(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Pong,
    Auth,
    Port,
    Ip,
    Capa,
    Psync,
    Done,
}

/// The handshake's state.
#[derive(Debug, Clone)]
pub struct Handshake {
    cfg: HandshakeConfig,
    state: State,
}

fn cmd(args: &[&[u8]]) -> Vec<u8> {
    let argv: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a)).collect();
    let mut out = Vec::new();
    encode_command(&mut out, &argv);
    out
}

impl Handshake {
    /// Starts the handshake: the bytes to send first (PING).
    pub fn start(cfg: HandshakeConfig) -> (Handshake, Vec<u8>) {
        (Handshake { cfg, state: State::Pong }, cmd(&[b"PING"]))
    }

    /// The pipelined AUTH / REPLCONF burst Redis 7.0 sends after the PONG.
    fn burst(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(pass) = &self.cfg.masterauth {
            match &self.cfg.masteruser {
                Some(user) => out.extend(cmd(&[b"AUTH", user.as_bytes(), pass.as_bytes()])),
                None => out.extend(cmd(&[b"AUTH", pass.as_bytes()])),
            }
        }
        let port = self.cfg.listening_port.to_string();
        out.extend(cmd(&[b"REPLCONF", b"listening-port", port.as_bytes()]));
        if let Some(ip) = &self.cfg.announce_ip {
            out.extend(cmd(&[b"REPLCONF", b"ip-address", ip.as_bytes()]));
        }
        out.extend(cmd(&[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"]));
        self.state = if self.cfg.masterauth.is_some() { State::Auth } else { State::Port };
        out
    }

    fn psync(&mut self) -> Vec<u8> {
        self.state = State::Psync;
        let (id, offset) = match &self.cfg.psync {
            Some((id, offset)) => (id.clone(), (offset + 1).to_string()),
            None => ("?".to_string(), "-1".to_string()),
        };
        if self.cfg.failover {
            cmd(&[b"PSYNC", id.as_bytes(), offset.as_bytes(), b"FAILOVER"])
        } else {
            cmd(&[b"PSYNC", id.as_bytes(), offset.as_bytes()])
        }
    }

    /// The next line is the master's answer to PSYNC.
    pub fn awaits_psync_reply(&self) -> bool {
        self.state == State::Psync
    }

    /// Judges one reply line (without CRLF). Err: the handshake failed (the text is logged
    /// and the replica reconnects later).
    pub fn on_line(&mut self, line: &[u8]) -> Result<Progress, String> {
        let text = String::from_utf8_lossy(line).into_owned();
        match self.state {
            State::Pong => {
                // -NOAUTH and -NOPERM mean the link works; AUTH comes next anyway.
                if text.starts_with('-')
                    && !text.starts_with("-NOAUTH")
                    && !text.starts_with("-NOPERM")
                    && !text.starts_with("-ERR operation not permitted")
                {
                    return Err(format!("Error reply to PING from master: '{text}'"));
                }
                Ok(Progress::Send(self.burst()))
            }
            State::Auth => {
                if text.starts_with('-') {
                    return Err(format!("Unable to AUTH to MASTER: {text}"));
                }
                self.state = State::Port;
                Ok(Progress::Wait)
            }
            State::Port => {
                // Non critical: an old master may not know it.
                self.state = if self.cfg.announce_ip.is_some() { State::Ip } else { State::Capa };
                Ok(Progress::Wait)
            }
            State::Ip => {
                if text.starts_with('-') {
                    return Err(format!("Master does not understand REPLCONF ip-address: {text}"));
                }
                self.state = State::Capa;
                Ok(Progress::Wait)
            }
            State::Capa => Ok(Progress::Send(self.psync())),
            State::Psync => self.on_psync_reply(&text),
            State::Done => Err(format!("unexpected reply after the handshake: {text}")),
        }
    }

    fn on_psync_reply(&mut self, text: &str) -> Result<Progress, String> {
        if let Some(rest) = text.strip_prefix("+FULLRESYNC") {
            let mut parts = rest.split_whitespace();
            let (Some(id), Some(off)) = (parts.next(), parts.next()) else {
                return Err(format!("Master replied with wrong +FULLRESYNC syntax: {text}"));
            };
            let offset =
                off.parse::<u64>().map_err(|_| format!("Master replied with wrong +FULLRESYNC syntax: {text}"))?;
            if id.len() != 40 {
                return Err(format!("Master replied with wrong +FULLRESYNC syntax: {text}"));
            }
            self.state = State::Done;
            return Ok(Progress::FullResync { replid: id.to_string(), offset });
        }
        if let Some(rest) = text.strip_prefix("+CONTINUE") {
            self.state = State::Done;
            let id = rest.trim();
            let new_replid = (id.len() == 40).then(|| id.to_string());
            return Ok(Progress::Continue { new_replid });
        }
        if text.starts_with("-NOMASTERLINK") || text.starts_with("-LOADING") {
            return Ok(Progress::Retry(format!(
                "Master is currently unable to PSYNC but should be in the future: {text}"
            )));
        }
        Err(format!("Unexpected reply to PSYNC from master: {text}"))
    }
}

/// Reads the RDB of a full resync from the stream: first any newlines the master sends to
/// keep the link alive while it prepares, then `$<len>\r\n` and `len` bytes, or
/// `$EOF:<40 byte mark>\r\n` and bytes up to the mark (diskless sync).
#[derive(Debug, Default)]
pub struct PayloadReader {
    line: Vec<u8>,
    framing: Option<Framing>,
    /// The RDB received so far (all of it once `feed` said Done).
    pub payload: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Framing {
    Len(usize),
    Eof([u8; 40]),
}

const EOF_MARK_SIZE: usize = 40;

impl PayloadReader {
    /// Takes the next chunk read from the master. Ok(Some(n)): the RDB is complete in
    /// `payload`, and `chunk[n..]` is the start of the command stream. Err: a malformed header
    /// or an error from the master.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Option<usize>, String> {
        let mut pos = 0;
        while self.framing.is_none() {
            let Some(&b) = chunk.get(pos) else { return Ok(None) };
            pos += 1;
            if b != b'\n' {
                self.line.push(b);
                continue;
            }
            if self.line.is_empty() {
                continue; // a keepalive newline
            }
            let line = std::mem::take(&mut self.line);
            self.framing = Some(parse_header(line.strip_suffix(b"\r").unwrap_or(&line))?);
        }
        let rest = &chunk[pos..];
        match self.framing.as_ref().expect("parsed above") {
            Framing::Len(len) => {
                let n = (len - self.payload.len()).min(rest.len());
                self.payload.extend_from_slice(&rest[..n]);
                Ok((self.payload.len() == *len).then_some(pos + n))
            }
            Framing::Eof(mark) => {
                // The mark may straddle chunks: search from 39 bytes before the new data.
                let from = self.payload.len().saturating_sub(EOF_MARK_SIZE - 1);
                let old_len = self.payload.len();
                self.payload.extend_from_slice(rest);
                let found = self.payload[from..].windows(EOF_MARK_SIZE).position(|w| w == mark);
                Ok(found.map(|i| {
                    let end = from + i;
                    let used_of_rest = end + EOF_MARK_SIZE - old_len;
                    self.payload.truncate(end);
                    pos + used_of_rest
                }))
            }
        }
    }
}

fn parse_header(line: &[u8]) -> Result<Framing, String> {
    if line.first() == Some(&b'-') {
        return Err(format!("MASTER aborted replication with an error: {}", String::from_utf8_lossy(&line[1..])));
    }
    if line.first() != Some(&b'$') {
        return Err(format!(
            "Bad protocol from MASTER, the first byte is not '$' (we received '{}'), are you sure the host and port are \
             right?",
            String::from_utf8_lossy(line)
        ));
    }
    if let Some(mark) = line.strip_prefix(b"$EOF:") {
        return match <[u8; EOF_MARK_SIZE]>::try_from(mark) {
            Ok(m) => Ok(Framing::Eof(m)),
            Err(_) => Err(format!("Bad EOF mark from MASTER: {}", String::from_utf8_lossy(line))),
        };
    }
    std::str::from_utf8(&line[1..])
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .map(Framing::Len)
        .ok_or_else(|| format!("Bad bulk length from MASTER: {}", String::from_utf8_lossy(line)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).replace("\r\n", " ")
    }

    #[test]
    fn the_handshake_pings_then_pipelines_auth_and_replconf_then_psyncs() {
        let cfg = HandshakeConfig {
            listening_port: 6380,
            masterauth: Some("pw".into()),
            psync: Some(("a".repeat(40), 99)),
            ..Default::default()
        };
        let (mut h, first) = Handshake::start(cfg);
        assert_eq!(lines(&first), "*1 $4 PING ");
        let Progress::Send(burst) = h.on_line(b"-NOAUTH Authentication required.").unwrap() else { panic!() };
        assert_eq!(
            lines(&burst),
            "*2 $4 AUTH $2 pw *3 $8 REPLCONF $14 listening-port $4 6380 *5 $8 REPLCONF $4 capa $3 eof $4 capa $6 psync2 "
        );
        assert_eq!(h.on_line(b"+OK").unwrap(), Progress::Wait);
        assert_eq!(h.on_line(b"+OK").unwrap(), Progress::Wait);
        let Progress::Send(psync) = h.on_line(b"+OK").unwrap() else { panic!() };
        assert_eq!(lines(&psync), format!("*3 $5 PSYNC $40 {} $3 100 ", "a".repeat(40)));
        let id = "b".repeat(40);
        assert_eq!(
            h.on_line(format!("+FULLRESYNC {id} 1234").as_bytes()).unwrap(),
            Progress::FullResync { replid: id, offset: 1234 }
        );
    }

    #[test]
    fn handshake_failures_are_reported_with_redis_texts() {
        let (mut h, _) = Handshake::start(HandshakeConfig::default());
        assert_eq!(h.on_line(b"-ERR unknown").unwrap_err(), "Error reply to PING from master: '-ERR unknown'");
        let (mut h, _) = Handshake::start(HandshakeConfig { masterauth: Some("x".into()), ..Default::default() });
        h.on_line(b"+PONG").unwrap();
        assert_eq!(h.on_line(b"-WRONGPASS invalid").unwrap_err(), "Unable to AUTH to MASTER: -WRONGPASS invalid");
        let (mut h, _) = Handshake::start(HandshakeConfig::default());
        h.on_line(b"+PONG").unwrap();
        h.on_line(b"-ERR old master").unwrap(); // listening-port: not critical
        let Progress::Send(psync) = h.on_line(b"+OK").unwrap() else { panic!() };
        assert_eq!(lines(&psync), "*3 $5 PSYNC $1 ? $2 -1 ");
        assert!(matches!(h.on_line(b"-LOADING Redis is loading").unwrap(), Progress::Retry(_)));
        assert_eq!(h.on_line(b"+CONTINUE").unwrap(), Progress::Continue { new_replid: None });
    }

    #[test]
    fn a_continue_with_a_new_id_says_so() {
        let (mut h, _) = Handshake::start(HandshakeConfig { psync: Some(("c".repeat(40), 5)), ..Default::default() });
        for l in [&b"+PONG"[..], b"+OK"] {
            h.on_line(l).unwrap();
        }
        let Progress::Send(_) = h.on_line(b"+OK").unwrap() else { panic!() };
        let id = "d".repeat(40);
        assert_eq!(
            h.on_line(format!("+CONTINUE {id}").as_bytes()).unwrap(),
            Progress::Continue { new_replid: Some(id) }
        );
    }

    /// Every way of cutting the stream into chunks gives the same payload and the same start
    /// of the command stream, in both framings.
    #[test]
    fn the_payload_reader_handles_any_chunking_in_both_framings() {
        let rdb: Vec<u8> = (0..200u32).map(|i| (i * 7 % 251) as u8).collect();
        let mark = [b'm'; 40];
        let mut with_len = b"\n\n".to_vec();
        with_len.extend_from_slice(format!("${}\r\n", rdb.len()).as_bytes());
        with_len.extend_from_slice(&rdb);
        with_len.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
        let mut with_eof = b"\n".to_vec();
        with_eof.extend_from_slice(b"$EOF:");
        with_eof.extend_from_slice(&mark);
        with_eof.extend_from_slice(b"\r\n");
        with_eof.extend_from_slice(&rdb);
        with_eof.extend_from_slice(&mark);
        with_eof.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
        for stream in [&with_len, &with_eof] {
            for chunk in [1, 2, 3, 7, 39, 40, 41, 64, 1000] {
                let mut r = PayloadReader::default();
                let mut rest = None;
                for (i, c) in stream.chunks(chunk).enumerate() {
                    if let Some(n) = r.feed(c).unwrap() {
                        let mut tail = c[n..].to_vec();
                        for later in stream.chunks(chunk).skip(i + 1) {
                            tail.extend_from_slice(later);
                        }
                        rest = Some(tail);
                        break;
                    }
                }
                assert_eq!(r.payload, rdb, "chunk {chunk}");
                assert_eq!(rest.as_deref(), Some(&b"*1\r\n$4\r\nPING\r\n"[..]), "chunk {chunk}");
            }
        }
    }

    #[test]
    fn bad_payload_headers_are_errors() {
        assert!(PayloadReader::default().feed(b"+OK\r\n").unwrap_err().contains("the first byte is not '$'"));
        assert!(PayloadReader::default().feed(b"-ERR nope\r\n").unwrap_err().contains("aborted replication"));
        assert!(PayloadReader::default().feed(b"$EOF:short\r\n").unwrap_err().contains("Bad EOF mark"));
        assert!(PayloadReader::default().feed(b"$x\r\n").unwrap_err().contains("Bad bulk length"));
    }
}

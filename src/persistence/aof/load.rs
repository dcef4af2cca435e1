//! Reading AOF files: the command form (RESP arrays of bulk strings, `#` annotation lines) and
//! the RDB preamble of a base file. Pure functions over bytes, so that `check-aof`, the loader
//! and the fuzz target share one parser. The rules are `loadSingleAppendOnlyFile`'s: a file that
//! ends inside a command is *truncated* (loadable with `aof-load-truncated yes`, cut back to the
//! last complete command, or to before an unfinished MULTI); anything else that is not a command
//! is a *format error* at an offset, and the server refuses to start.

use bytes::Bytes;

/// How a file's command stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseEnd {
    Complete,
    /// The bytes end inside a command; `valid_up_to` is where the complete ones end.
    Truncated {
        valid_up_to: u64,
    },
    /// Not AOF: what starts at `offset` is not a command.
    Bad {
        offset: u64,
    },
}

/// The RDB magic a base file with a preamble starts with.
pub const RDB_MAGIC: &[u8] = b"REDIS";

/// Whether a base file starts with an RDB preamble.
pub fn has_rdb_preamble(bytes: &[u8]) -> bool {
    bytes.starts_with(RDB_MAGIC)
}

/// Parses the commands of `bytes[start..]`, handing each complete one (outside MULTI, or a whole
/// MULTI…EXEC block's inner commands when its EXEC is read) to `exec`. Offsets are of `bytes`.
pub fn parse_commands(bytes: &[u8], start: usize, exec: &mut dyn FnMut(Vec<Bytes>)) -> ParseEnd {
    let mut pos = start;
    let mut valid_up_to = start;
    let mut in_multi: Option<(usize, Vec<Vec<Bytes>>)> = None;
    while pos < bytes.len() {
        let cmd_start = pos;
        if bytes[pos] == b'#' {
            // An annotation (aof-timestamp-enabled): one whole line.
            match find_crlf(bytes, pos) {
                Some(end) => {
                    pos = end + 2;
                    if in_multi.is_none() {
                        valid_up_to = pos;
                    }
                    continue;
                }
                None => return truncated(valid_up_to, &in_multi),
            }
        }
        let argv = match parse_one(bytes, &mut pos) {
            Step::Cmd(argv) => argv,
            Step::Eof => return truncated(valid_up_to, &in_multi),
            Step::Bad => return ParseEnd::Bad { offset: cmd_start as u64 },
        };
        let name = &argv[0];
        if name.eq_ignore_ascii_case(b"multi") {
            if in_multi.is_some() {
                return ParseEnd::Bad { offset: cmd_start as u64 };
            }
            in_multi = Some((cmd_start, Vec::new()));
        } else if name.eq_ignore_ascii_case(b"exec") {
            let Some((_, queued)) = in_multi.take() else {
                return ParseEnd::Bad { offset: cmd_start as u64 };
            };
            queued.into_iter().for_each(&mut *exec);
            valid_up_to = pos;
        } else if let Some((_, queued)) = &mut in_multi {
            queued.push(argv);
        } else {
            exec(argv);
            valid_up_to = pos;
        }
    }
    if in_multi.is_some() {
        return truncated(valid_up_to, &in_multi);
    }
    ParseEnd::Complete
}

fn truncated(valid_up_to: usize, in_multi: &Option<(usize, Vec<Vec<Bytes>>)>) -> ParseEnd {
    let valid = in_multi.as_ref().map_or(valid_up_to, |(start, _)| (*start).min(valid_up_to));
    ParseEnd::Truncated { valid_up_to: valid as u64 }
}

enum Step {
    Cmd(Vec<Bytes>),
    Eof,
    Bad,
}

fn find_crlf(bytes: &[u8], from: usize) -> Option<usize> {
    bytes[from..].windows(2).position(|w| w == b"\r\n").map(|i| from + i)
}

/// Reads `<prefix><decimal>\r\n` at `pos`.
fn read_len(bytes: &[u8], pos: &mut usize, prefix: u8) -> Result<u64, Step> {
    if *pos >= bytes.len() {
        return Err(Step::Eof);
    }
    if bytes[*pos] != prefix {
        return Err(Step::Bad);
    }
    let Some(end) = find_crlf(bytes, *pos + 1) else {
        // Redis reads a line with fgets; a line that cannot end is a short read unless it
        // already holds something that is not a number.
        let rest = &bytes[*pos + 1..];
        let digits = rest.strip_suffix(b"\r").unwrap_or(rest);
        return Err(if digits.iter().all(u8::is_ascii_digit) { Step::Eof } else { Step::Bad });
    };
    let text = &bytes[*pos + 1..end];
    let n = std::str::from_utf8(text).ok().and_then(|t| t.parse::<u64>().ok()).ok_or(Step::Bad)?;
    *pos = end + 2;
    Ok(n)
}

fn parse_one(bytes: &[u8], pos: &mut usize) -> Step {
    let argc = match read_len(bytes, pos, b'*') {
        Ok(n) if n >= 1 => n,
        Ok(_) => return Step::Bad,
        Err(s) => return s,
    };
    let mut argv = Vec::with_capacity(argc.min(1024) as usize);
    for _ in 0..argc {
        let len = match read_len(bytes, pos, b'$') {
            Ok(n) => n,
            Err(s) => return s,
        };
        let Some(end) = (*pos as u64).checked_add(len).and_then(|e| e.checked_add(2)) else { return Step::Bad };
        if end > bytes.len() as u64 {
            return Step::Eof;
        }
        let end = end as usize;
        if &bytes[end - 2..end] != b"\r\n" {
            return Step::Bad;
        }
        argv.push(Bytes::copy_from_slice(&bytes[*pos..end - 2]));
        *pos = end;
    }
    Step::Cmd(argv)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmds(bytes: &[u8]) -> (Vec<Vec<Bytes>>, ParseEnd) {
        let mut out = Vec::new();
        let end = parse_commands(bytes, 0, &mut |a| out.push(a));
        (out, end)
    }

    #[test]
    fn complete_file_yields_every_command() {
        let (c, end) = cmds(b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n#TS:1\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n");
        assert_eq!(end, ParseEnd::Complete);
        assert_eq!(c.len(), 2);
        assert_eq!(c[1][2], Bytes::from_static(b"v"));
    }

    #[test]
    fn tail_cut_anywhere_is_truncated_at_the_last_complete_command() {
        let full = b"*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n";
        for cut in 15..full.len() {
            let (c, end) = cmds(&full[..cut]);
            assert_eq!(end, ParseEnd::Truncated { valid_up_to: 14 }, "cut at {cut}");
            assert_eq!(c.len(), 1);
        }
    }

    #[test]
    fn unfinished_multi_is_truncated_before_multi_and_not_run() {
        let (c, end) = cmds(b"*1\r\n$4\r\nPING\r\n*1\r\n$5\r\nMULTI\r\n*1\r\n$4\r\nPING\r\n");
        assert_eq!(end, ParseEnd::Truncated { valid_up_to: 14 });
        assert_eq!(c.len(), 1);
        let (c, end) = cmds(b"*1\r\n$5\r\nMULTI\r\n*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nEXEC\r\n");
        assert_eq!(end, ParseEnd::Complete);
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn garbage_in_the_middle_is_a_format_error_at_its_offset() {
        let (_, end) = cmds(b"*1\r\n$4\r\nPING\r\nxyz\r\n*1\r\n$4\r\nPING\r\n");
        assert_eq!(end, ParseEnd::Bad { offset: 14 });
        let (_, end) = cmds(b"*1\r\n$4\r\nPINGxx*1\r\n");
        assert_eq!(end, ParseEnd::Bad { offset: 0 });
    }
}

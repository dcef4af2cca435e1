//! A decoded reply, for the clients that redsim itself runs: the simulator's workload
//! clients, a replica reading its master, tests. The server never builds these on its hot path.

use bytes::Bytes;

#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Bytes),
    /// `$-1`, `*-1` or RESP3 `_`.
    Null,
    Array(Vec<Frame>),
    Map(Vec<(Frame, Frame)>),
    Set(Vec<Frame>),
    Push(Vec<Frame>),
    Double(f64),
    Boolean(bool),
    BigNumber(String),
    Verbatim(String, Bytes),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError(pub String);

impl Frame {
    /// Parses one frame from the start of `buf`: `Ok(None)` when incomplete, otherwise the frame
    /// and the number of bytes it took.
    pub fn parse(buf: &[u8]) -> Result<Option<(Frame, usize)>, FrameError> {
        let mut pos = 0;
        match parse_at(buf, &mut pos, 0)? {
            Some(f) => Ok(Some((f, pos))),
            None => Ok(None),
        }
    }

    /// Encodes the frame as RESP (RESP3 types where the frame has them).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Frame::Simple(s) => line(out, b'+', s.as_bytes()),
            Frame::Error(s) => line(out, b'-', s.as_bytes()),
            Frame::Integer(n) => line(out, b':', n.to_string().as_bytes()),
            Frame::Bulk(b) => {
                line(out, b'$', b.len().to_string().as_bytes());
                out.extend_from_slice(b);
                out.extend_from_slice(b"\r\n");
            }
            Frame::Null => out.extend_from_slice(b"_\r\n"),
            Frame::Array(v) | Frame::Set(v) | Frame::Push(v) => {
                let p = match self {
                    Frame::Array(_) => b'*',
                    Frame::Set(_) => b'~',
                    _ => b'>',
                };
                line(out, p, v.len().to_string().as_bytes());
                v.iter().for_each(|f| f.encode(out));
            }
            Frame::Map(kv) => {
                line(out, b'%', kv.len().to_string().as_bytes());
                for (k, v) in kv {
                    k.encode(out);
                    v.encode(out);
                }
            }
            Frame::Double(d) => line(out, b',', super::reply::format_double(*d).as_bytes()),
            Frame::Boolean(b) => line(out, b'#', if *b { b"t" } else { b"f" }),
            Frame::BigNumber(s) => line(out, b'(', s.as_bytes()),
            Frame::Verbatim(fmt, b) => {
                line(out, b'=', (b.len() + 4).to_string().as_bytes());
                out.extend_from_slice(fmt.as_bytes());
                out.push(b':');
                out.extend_from_slice(b);
                out.extend_from_slice(b"\r\n");
            }
        }
    }

    /// The bytes of a bulk or simple string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Frame::Bulk(b) => Some(b),
            Frame::Simple(s) => Some(s.as_bytes()),
            Frame::Verbatim(_, b) => Some(b),
            _ => None,
        }
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Frame::Error(_))
    }
}

fn line(out: &mut Vec<u8>, prefix: u8, body: &[u8]) {
    out.push(prefix);
    out.extend_from_slice(body);
    out.extend_from_slice(b"\r\n");
}

fn read_line<'a>(buf: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let start = *pos;
    let rel = buf[start..].windows(2).position(|w| w == b"\r\n")?;
    *pos = start + rel + 2;
    Some(&buf[start..start + rel])
}

fn num(s: &[u8]) -> Result<i64, FrameError> {
    std::str::from_utf8(s)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| FrameError(format!("bad number {:?}", String::from_utf8_lossy(s))))
}

fn text(s: &[u8]) -> String {
    String::from_utf8_lossy(s).into_owned()
}

/// Deepest nesting accepted; deeper input is an error, not a stack overflow (found by the
/// `frame_parse` fuzz target).
const MAX_DEPTH: usize = 512;

fn parse_at(buf: &[u8], pos: &mut usize, depth: usize) -> Result<Option<Frame>, FrameError> {
    if depth > MAX_DEPTH {
        return Err(FrameError(format!("reply nested deeper than {MAX_DEPTH} levels")));
    }
    if *pos >= buf.len() {
        return Ok(None);
    }
    let kind = buf[*pos];
    *pos += 1;
    let Some(body) = read_line(buf, pos) else {
        return Ok(None);
    };
    let frame = match kind {
        b'+' => Frame::Simple(text(body)),
        b'-' => Frame::Error(text(body)),
        b':' => Frame::Integer(num(body)?),
        b'_' => Frame::Null,
        b'#' => Frame::Boolean(body == b"t"),
        b'(' => Frame::BigNumber(text(body)),
        b',' => Frame::Double(match body {
            b"inf" => f64::INFINITY,
            b"-inf" => f64::NEG_INFINITY,
            _ => text(body).parse().map_err(|_| FrameError("bad double".into()))?,
        }),
        b'$' | b'=' | b'!' => {
            let n = num(body)?;
            if n < 0 {
                return Ok(Some(Frame::Null));
            }
            let n = n as usize;
            if buf.len() < *pos + n + 2 {
                return Ok(None);
            }
            let data = Bytes::copy_from_slice(&buf[*pos..*pos + n]);
            *pos += n + 2;
            match kind {
                b'$' => Frame::Bulk(data),
                b'!' => Frame::Error(text(&data)),
                _ if data.len() >= 4 => Frame::Verbatim(text(&data[..3]), data.slice(4..)),
                _ => return Err(FrameError("short verbatim string".into())),
            }
        }
        b'*' | b'~' | b'>' | b'%' => {
            let n = num(body)?;
            if n < 0 {
                return Ok(Some(Frame::Null));
            }
            let count = if kind == b'%' { 2 * n as usize } else { n as usize };
            let mut items = Vec::with_capacity(count.min(4096));
            for _ in 0..count {
                match parse_at(buf, pos, depth + 1)? {
                    Some(f) => items.push(f),
                    None => return Ok(None),
                }
            }
            match kind {
                b'*' => Frame::Array(items),
                b'~' => Frame::Set(items),
                b'>' => Frame::Push(items),
                _ => {
                    let mut kv = Vec::with_capacity(items.len() / 2);
                    let mut it = items.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        kv.push((k, v));
                    }
                    Frame::Map(kv)
                }
            }
        }
        other => return Err(FrameError(format!("unknown reply type byte {:?}", other as char))),
    };
    Ok(Some(frame))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_resp3() {
        let f = Frame::Array(vec![
            Frame::Bulk(Bytes::from("a")),
            Frame::Map(vec![(Frame::Simple("k".into()), Frame::Double(1.5))]),
            Frame::Null,
            Frame::Boolean(true),
            Frame::Integer(-3),
        ]);
        let mut out = Vec::new();
        f.encode(&mut out);
        let (g, n) = Frame::parse(&out).unwrap().unwrap();
        assert_eq!(n, out.len());
        assert_eq!(f, g);
        assert_eq!(Frame::parse(&out[..out.len() - 1]).unwrap(), None);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let mut input = b"*1\r\n".repeat(10_000);
        input.extend_from_slice(b":1\r\n");
        assert!(Frame::parse(&input).is_err());
    }
}

//! Feeds arbitrary bytes to `RequestParser` the way a socket delivers them: in chunks cut at
//! arbitrary points. A client controls every byte of its query buffer, so the parser must never
//! panic, and what it parses must not depend on how the reads happened to be split.
//!
//! Input layout: one flags byte, then `splits` chunk-length bytes, then the stream.
//!   bit 0: the client is authenticated (else Redis's pre-AUTH header limits apply)
//!   bit 1: feed the stream one byte at a time (the slowest possible client)
//!   bit 2: `proto-max-bulk-len` of `SMALL_MAX_BULK_LEN` instead of the default
//!   bits 3-7: `splits`, the number of chunk-length bytes
//!
//! Checked after every call and every request:
//! - the parser only ever takes bytes off the buffer (consumed ≤ fed);
//! - the bytes consumed up to a request frame exactly that request, re-framed independently
//!   here: a multibulk yields exactly as many arguments as its `*<n>` declared, each exactly
//!   its `$<len>`, within the configured and pre-AUTH limits;
//! - chunked and one-shot feeding give the same requests, the same error, and (without an
//!   error) the same leftover state.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use redsim::protocol::parser::{
    parse_ll, split_args, Limits, ParseError, RequestParser, PROTO_INLINE_MAX_SIZE,
};

/// `proto-max-bulk-len` for inputs with flag bit 2 (bytes): small enough for fuzz inputs to
/// cross it.
const SMALL_MAX_BULK_LEN: u64 = 64;
/// Redis's pre-AUTH limits, restated here so the check does not trust the parser's constants.
const UNAUTH_MAX_MULTIBULK_LEN: usize = 10;
const UNAUTH_MAX_BULK_LEN: usize = 16384; // bytes

struct Setup<'a> {
    authenticated: bool,
    byte_at_a_time: bool,
    limits: Limits,
    chunk_lens: &'a [u8],
    stream: &'a [u8],
}

fn setup(raw: &[u8]) -> Option<Setup<'_>> {
    let (&flags, rest) = raw.split_first()?;
    let splits = usize::from(flags >> 3).min(rest.len());
    let (chunk_lens, stream) = rest.split_at(splits);
    let mut limits = Limits::default();
    if flags & 0b100 != 0 {
        limits.max_bulk_len = SMALL_MAX_BULK_LEN;
    }
    Some(Setup {
        authenticated: flags & 0b1 != 0,
        byte_at_a_time: flags & 0b10 != 0,
        limits,
        chunk_lens,
        stream,
    })
}

/// The stream cut at the given lengths; the last chunk takes what is left.
fn chunks<'a>(setup: &Setup<'a>) -> Vec<&'a [u8]> {
    if setup.byte_at_a_time {
        return setup.stream.chunks(1).collect();
    }
    let mut out = Vec::with_capacity(setup.chunk_lens.len() + 1);
    let mut rest = setup.stream;
    for &len in setup.chunk_lens {
        let (head, tail) = rest.split_at(usize::from(len).min(rest.len()));
        out.push(head);
        rest = tail;
    }
    out.push(rest);
    out
}

#[derive(Debug, PartialEq)]
struct Outcome {
    requests: Vec<Vec<Bytes>>,
    error: Option<ParseError>,
    leftover_bytes: usize,
    pending_args: usize,
}

fn run(setup: &Setup<'_>, chunks: &[&[u8]]) -> Outcome {
    let mut parser = RequestParser::new(setup.limits);
    let mut buf = BytesMut::new();
    let mut outcome = Outcome {
        requests: Vec::new(),
        error: None,
        leftover_bytes: 0,
        pending_args: 0,
    };
    let mut fed = 0;
    let mut request_start = 0;
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        fed += chunk.len();
        loop {
            let len_before = buf.len();
            let result = parser.next_request(&mut buf, setup.authenticated);
            assert!(
                buf.len() <= len_before,
                "the parser added bytes to the buffer"
            );
            let consumed = fed - buf.len();
            assert!(consumed <= fed);
            match result {
                Ok(None) => break,
                Ok(Some(args)) => {
                    check_framing(setup, &setup.stream[request_start..consumed], &args);
                    request_start = consumed;
                    outcome.requests.push(args);
                }
                Err(e) => {
                    // The server replies and closes: nothing after an error is parsed, and
                    // what is left unparsed depends on how much had arrived.
                    outcome.error = Some(e);
                    return outcome;
                }
            }
        }
    }
    outcome.leftover_bytes = buf.len();
    outcome.pending_args = parser.pending_args();
    outcome
}

enum Framed<'a> {
    /// `*0`, `*-1`, or an inline line of only spaces: skipped without a reply.
    Empty,
    Multibulk {
        declared: usize,
        args: Vec<&'a [u8]>,
    },
    Inline(Vec<Vec<u8>>),
}

/// Frames one request of `s` from `pos`. Only called on bytes the parser already accepted, so
/// malformed framing here is itself a finding.
fn next_framed<'a>(s: &'a [u8], pos: &mut usize) -> Framed<'a> {
    if s[*pos] == b'*' {
        let (declared, after) = header(s, *pos + 1);
        *pos = after;
        if declared <= 0 {
            return Framed::Empty;
        }
        let declared = usize::try_from(declared).expect("positive count");
        let mut args = Vec::new();
        for _ in 0..declared {
            assert_eq!(s[*pos], b'$', "accepted a bulk without '$'");
            let (len, after) = header(s, *pos + 1);
            let len = usize::try_from(len).expect("accepted a negative bulk length");
            args.push(&s[after..after + len]);
            *pos = after + len + 2;
        }
        return Framed::Multibulk { declared, args };
    }
    let nl = *pos
        + s[*pos..]
            .iter()
            .position(|&c| c == b'\n')
            .expect("accepted an inline request without '\\n'");
    let line = &s[*pos..nl];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    *pos = nl + 1;
    let args = split_args(line).expect("accepted an inline request with unbalanced quotes");
    if args.is_empty() {
        Framed::Empty
    } else {
        Framed::Inline(args)
    }
}

/// The number after a `*` or `$`, and where the line after it starts.
fn header(s: &[u8], from: usize) -> (i64, usize) {
    let cr = from
        + s[from..]
            .iter()
            .position(|&c| c == b'\r')
            .expect("accepted a header without '\\r'");
    let n = parse_ll(&s[from..cr]).expect("accepted a header that is not a number");
    (n, cr + 2)
}

/// `consumed` is everything the parser took since the previous request: zero or more empty
/// requests, then exactly the request it returned.
fn check_framing(setup: &Setup<'_>, consumed: &[u8], args: &[Bytes]) {
    assert!(!args.is_empty(), "returned an empty request");
    let mut pos = 0;
    let last = loop {
        assert!(
            pos < consumed.len(),
            "returned a request it did not consume"
        );
        let framed = next_framed(consumed, &mut pos);
        if !matches!(framed, Framed::Empty) {
            break framed;
        }
    };
    assert_eq!(pos, consumed.len(), "consumed bytes past the request");
    match last {
        Framed::Empty => unreachable!(),
        Framed::Multibulk {
            declared,
            args: framed,
        } => {
            assert_eq!(args.len(), declared, "args differ from the declared count");
            for (arg, raw) in args.iter().zip(&framed) {
                assert_eq!(&arg[..], *raw);
                assert!(arg.len() as u64 <= setup.limits.max_bulk_len);
            }
            if !setup.authenticated {
                assert!(declared <= UNAUTH_MAX_MULTIBULK_LEN);
                assert!(args.iter().all(|a| a.len() <= UNAUTH_MAX_BULK_LEN));
            }
        }
        Framed::Inline(framed) => {
            assert_eq!(args.len(), framed.len());
            assert!(args.iter().zip(&framed).all(|(a, f)| a[..] == f[..]));
        }
    }
}

fuzz_target!(|raw: &[u8]| {
    let Some(setup) = setup(raw) else { return };
    let one_shot = run(&setup, &[setup.stream]);
    let chunked = run(&setup, &chunks(&setup));
    // Past PROTO_INLINE_MAX_SIZE the "too big" errors depend on how much had arrived when no
    // newline was found yet, in Redis too; below it the split must not matter.
    if setup.stream.len() < PROTO_INLINE_MAX_SIZE {
        assert_eq!(one_shot, chunked, "the chunk split changed the outcome");
    }
});

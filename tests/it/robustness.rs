//! Bad input never takes the server down: seeded streams of junk bytes (random bytes, broken
//! RESP headers, huge lengths, unbalanced quotes) are thrown at redsim over many connections,
//! and afterwards the same server still answers PING.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::support::{Flavor, Gen, Server};

const PIECES: &[&[u8]] = &[
    b"*",
    b"$",
    b"\r\n",
    b"\n",
    b"-1",
    b"0",
    b"3",
    b"99999999999999999999",
    b"2147483648",
    b"\"",
    b"'",
    b"\\x4",
    b"SET",
    b"GET",
    b"PING",
    b" ",
    b"\x00",
    b"*1\r\n$4\r\nPING\r\n",
    b"*2\r\n$3\r\nGET\r\n",
    b"$600000000\r\n",
    b"*-5\r\n",
    b"MSET a",
    b"HELLO 3",
    b"CONFIG SET maxmemory",
    b"DEBUG",
    b"\xff\xfe",
    b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n",
];

fn junk(g: &mut Gen) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..1 + g.below(40) {
        if g.below(3) == 0 {
            for _ in 0..g.below(64) {
                out.push(g.next() as u8);
            }
        } else {
            out.extend_from_slice(PIECES[g.below(PIECES.len() as u64) as usize]);
        }
    }
    out
}

fn ping(port: u16) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect after junk");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"PING\r\n").unwrap();
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).expect("PING reply");
    buf[..n].to_vec()
}

#[test]
fn junk_input_never_kills_the_server() {
    let server = Server::start(Flavor::Redsim);
    for seed in 0..300u64 {
        let mut g = Gen(seed);
        let mut s = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let bytes = junk(&mut g);
        let _ = s.write_all(&bytes);
        let mut sink = [0u8; 4096];
        let _ = s.read(&mut sink);
        assert_eq!(ping(server.port), b"+PONG\r\n", "server stopped answering after seed {seed}: {bytes:?}");
    }
}

#[test]
fn oversized_bulk_length_gets_redis_error_and_close() {
    let server = Server::start(Flavor::Redsim);
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"*1\r\n$600000000\r\n").unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert_eq!(buf, b"-ERR Protocol error: invalid bulk length\r\n");
}

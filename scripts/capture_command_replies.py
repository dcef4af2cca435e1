#!/usr/bin/env python3
"""Captures a real redis-server's COMMAND INFO / COMMAND DOCS replies as raw RESP bytes.

The bytes become the fixtures that src/commands/docs.rs compares its renderer against, so
that the test needs no running server. Redis keeps subcommands in a dict whose hash seed is
random per process, so their order changes from run to run; this script re-encodes each
reply with subcommands sorted by name (the order redsim renders), and keeps every other byte
as the server sent it.

    redis-server --port 17815 --save '' &
    scripts/capture_command_replies.py --port 17815 fixtures   # src/commands/testdata/
    scripts/capture_command_replies.py --port 17815 full DIR    # every command, for
        REDSIM_COMMAND_ORACLE_DIR=DIR cargo test -p redsim commands::docs -- --ignored

stdlib only.
"""

import argparse
import os
import socket
import sys

# Chosen to cover each rendering path: key spec kinds (index/keyword/unknown begin_search,
# range/keynum/unknown find_keys), notes, incomplete specs, movablekeys, tips, doc flags,
# history, containers, lowercase JSON tokens, deprecated arguments, multiple_token.
FIXTURE_COMMANDS = [
    "get", "set", "config", "config|get", "client", "client|kill", "client|tracking",
    "zadd", "zunionstore", "xadd", "xread", "georadius", "geodist", "command|docs",
    "migrate", "sort", "eval", "bitfield_ro", "flushall", "subscribe", "blpop", "lmpop",
    "mset", "sunsubscribe", "hello", "latency|histogram", "lcs", "exists",
]


class Conn:
    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port))
        self.buf = b""

    def send(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a.encode() if isinstance(a, str) else a
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.sock.sendall(out)
        return self.read()

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise EOFError("server closed the connection")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def read(self):
        """A node is (prefix, payload): payload is the line for scalars, bytes for bulk
        strings, a list of nodes for aggregates (maps hold 2n nodes), None for RESP2 nulls."""
        line = self._line()
        p, rest = line[:1], line[1:]
        if p in b"$*" and rest == b"-1":
            return (p, None)
        if p in b"$=!":
            return (p, self._exact(int(rest)))
        if p in b"*~>":
            return (p, [self.read() for _ in range(int(rest))])
        if p in b"%|":
            return (p, [self.read() for _ in range(2 * int(rest))])
        return (p, rest)


def encode(node):
    p, v = node
    if v is None:
        return p + b"-1\r\n"
    if isinstance(v, list):
        n = len(v) // 2 if p in b"%|" else len(v)
        return p + b"%d\r\n" % n + b"".join(encode(c) for c in v)
    if p in b"$=!":
        return p + b"%d\r\n" % len(v) + v + b"\r\n"
    return p + v + b"\r\n"


def pairs(items):
    return [items[i:i + 2] for i in range(0, len(items), 2)]


def canon_info(entry):
    """A COMMAND INFO entry: its 10th element lists the subcommands' entries."""
    p, v = entry
    if not isinstance(v, list):
        return entry
    p9, subs = v[9]
    subs = sorted((canon_info(s) for s in subs), key=lambda s: s[1][0][1])
    return (p, v[:9] + [(p9, subs)])


def canon_docs(doc):
    """A COMMAND DOCS doc map: the value under "subcommands" maps names to doc maps."""
    p, v = doc
    out = []
    for k, val in pairs(v):
        if k[1] == b"subcommands" and val[0] in b"*%":
            kv = sorted(([n, canon_docs(d)] for n, d in pairs(val[1])), key=lambda e: e[0][1])
            val = (val[0], [x for e in kv for x in e])
        out += [k, val]
    return (p, out)


def canon_docs_reply(reply):
    p, v = reply
    kv = sorted(([n, canon_docs(d)] for n, d in pairs(v)), key=lambda e: e[0][1])
    return (p, [x for e in kv for x in e])


def capture(conn, proto, args, kind, sort_top):
    reply = conn.send(*args)
    if kind == "info":
        entries = [canon_info(e) for e in reply[1]]
        if sort_top:
            entries.sort(key=lambda e: e[1][0][1])
        reply = (reply[0], entries)
    else:
        reply = canon_docs_reply(reply)
    return encode(reply)


def connect(host, port, proto):
    c = Conn(host, port)
    if proto == 3:
        c.send("HELLO", "3")
    return c


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=6379)
    ap.add_argument("mode", choices=["fixtures", "full"])
    ap.add_argument("outdir", nargs="?")
    a = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    outdir = a.outdir or os.path.join(root, "src", "commands", "testdata")
    os.makedirs(outdir, exist_ok=True)
    for proto in (2, 3):
        c = connect(a.host, a.port, proto)
        if a.mode == "fixtures":
            for name in FIXTURE_COMMANDS:
                stem = name.replace("|", "-")
                for kind in ("info", "docs"):
                    data = capture(c, proto, ["COMMAND", kind.upper(), name], kind, False)
                    write(os.path.join(outdir, "%s_%s.resp%d" % (kind, stem, proto)), data)
        else:
            write(os.path.join(outdir, "info.resp%d" % proto),
                  capture(c, proto, ["COMMAND"], "info", True))
            write(os.path.join(outdir, "docs.resp%d" % proto),
                  capture(c, proto, ["COMMAND", "DOCS"], "docs", True))
            count = c.send("COMMAND", "COUNT")
            write(os.path.join(outdir, "count.txt"), count[1] + b"\n")
    print("wrote", outdir, file=sys.stderr)


if __name__ == "__main__":
    main()

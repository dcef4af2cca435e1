"""Shared by bench-vs-redis and mem-vs-redis: runs a real redis-server and redsim side by side.

Both servers are our children, on free 127.0.0.1 ports, without persistence, each in its own
directory under one temp dir; `Servers` stops them by PID however the script ends (normal exit,
exception, Ctrl-C, SIGTERM), so a failed run never leaves a server holding a port or memory.
"""

import atexit
import math
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

START_TIMEOUT_S = 20
STOP_TIMEOUT_S = 10
LOG_TAIL_LINES = 20


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class HarnessError(Exception):
    pass


# --- binaries ----------------------------------------------------------------------------------

def tool(env_name, default):
    """A Redis tool: $env_name if set, else `default` from PATH."""
    path = os.environ.get(env_name) or shutil.which(default)
    if not path:
        raise HarnessError(f"{default} not found (set {env_name})")
    return os.path.abspath(path)


def redsim_bin(build):
    """$REDSIM_BIN if set; else target/release/redsim, built first unless `build` is False."""
    if os.environ.get("REDSIM_BIN"):
        path = os.path.abspath(os.environ["REDSIM_BIN"])
        if not os.access(path, os.X_OK):
            raise HarnessError(f"REDSIM_BIN={path} is not executable")
        return path
    target_dir = os.environ.get("CARGO_TARGET_DIR") or os.path.join(REPO_ROOT, "target")
    path = os.path.join(target_dir, "release", "redsim")
    if build:
        log("building redsim: cargo build --release")
        rc = subprocess.call(["cargo", "build", "--release", "--bin", "redsim"], cwd=REPO_ROOT,
                             stdout=sys.stderr)
        if rc != 0:
            raise HarnessError(f"cargo build --release failed (exit {rc})")
    if not os.access(path, os.X_OK):
        raise HarnessError(f"{path} missing: build it, or set REDSIM_BIN")
    return path


def first_line(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        text = (out.stdout or out.stderr).strip()
        return text.splitlines()[0] if text else f"(no output, exit {out.returncode})"
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"(unknown: {e})"


def redsim_version(path):
    """`redsim --version` if it answers; else the git commit the binary most likely came from."""
    version = first_line([path, "--version"])
    if version.startswith("(") and os.path.commonpath([REPO_ROOT, os.path.abspath(path)]) == REPO_ROOT:
        commit = first_line(["git", "-C", REPO_ROOT, "describe", "--always", "--dirty"])
        version = f"{version}; tree at {commit}"
    return version


def machine_info():
    cpu_model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model,
        "kernel": platform.release(),
        "loadavg_1m": os.getloadavg()[0],
    }


# --- a minimal RESP2 client -------------------------------------------------------------------

class ReplyError(Exception):
    pass


def encode_command(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Client:
    def __init__(self, port, timeout_s=30):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
        self.rfile = self.sock.makefile("rb")

    def close(self):
        self.rfile.close()
        self.sock.close()

    def call(self, *args):
        self.sock.sendall(encode_command(args))
        return self._read()

    def _read(self):
        line = self.rfile.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError("connection closed mid-reply")
        kind, body = line[:1], line[1:-2]
        if kind == b"+":
            return body.decode(errors="replace")
        if kind == b"-":
            raise ReplyError(body.decode(errors="replace"))
        if kind == b":":
            return int(body)
        if kind == b"$":
            n = int(body)
            if n < 0:
                return None
            data = self.rfile.read(n + 2)
            return data[:-2]
        if kind == b"*":
            n = int(body)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise ConnectionError(f"unexpected reply {line[:40]!r}")


def call(port, *args):
    c = Client(port)
    try:
        return c.call(*args)
    finally:
        c.close()


def info_fields(port, section):
    text = call(port, "INFO", section)
    text = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    fields = {}
    for line in text.splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            fields[k] = v.strip()
    return fields


def fill_keys(cli, port, n):
    """n SETs key:<i> -> a 16-byte value, through `redis-cli --pipe`."""
    out = bytearray()
    for i in range(n):
        k, v = f"key:{i}".encode(), f"{i:016d}".encode()
        out += b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(v), v)
    r = subprocess.run([cli, "-p", str(port), "--pipe"], input=bytes(out), capture_output=True)
    if r.returncode != 0 or b"errors: 0" not in r.stdout:
        raise HarnessError(f"filling port {port} failed: {r.stdout[-300:]!r} {r.stderr[-300:]!r}")


def benchmark_ops(tool, port, test, requests, pipeline, clients=50, keyspace=100000):
    """One redis-benchmark test's ops/s."""
    r = subprocess.run([tool, "-p", str(port), "-t", test, "-n", str(requests), "-P", str(pipeline),
                        "-c", str(clients), "-r", str(keyspace), "--csv", "-q"], capture_output=True, text=True)
    for line in r.stdout.splitlines():
        cells = [c.strip('"') for c in line.split(",")]
        if cells and cells[0] == test.upper():
            return float(cells[1])
    raise HarnessError(f"redis-benchmark -t {test}: {r.stdout} {r.stderr}")


# --- servers -----------------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One server process. `argv_prefix` is everything before the redis.conf-style directives."""

    def __init__(self, name, argv_prefix, workdir, cpus=None):
        self.name = name
        self.argv_prefix = argv_prefix
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.log_path = os.path.join(self.dir, "server.log")
        self.cpus = cpus
        self.port = None
        self.proc = None
        # Directives after the defaults (e.g. --replicaof host port).
        self.extra = []

    def argv(self):
        return self.argv_prefix + [
            "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", self.dir,
        ] + self.extra

    def start(self):
        self.port = free_port()
        logf = open(self.log_path, "ab")
        cpus = self.cpus
        try:
            self.proc = subprocess.Popen(
                self.argv(), stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                cwd=self.dir, preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
            )
        except OSError as e:
            raise HarnessError(f"{self.name}: cannot run {self.argv()[0]}: {e}") from e
        finally:
            logf.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                raise HarnessError(f"{self.name} exited with code {self.proc.returncode} "
                                   f"while starting\n{self.log_tail()}")
            try:
                if call(self.port, "PING") == "PONG":
                    return
            except (OSError, ConnectionError, ReplyError):
                pass
            if time.monotonic() > deadline:
                raise HarnessError(f"{self.name} did not answer PING on port {self.port} "
                                   f"within {START_TIMEOUT_S}s\n{self.log_tail()}")
            time.sleep(0.05)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if not self.alive():
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log(f"{self.name} (pid {self.proc.pid}) ignored SIGTERM: killing it")
            self.proc.kill()
            self.proc.wait()

    def log_tail(self):
        try:
            with open(self.log_path, errors="replace") as f:
                lines = f.readlines()[-LOG_TAIL_LINES:]
        except OSError:
            return f"  (no log at {self.log_path})"
        return "".join(f"  {self.name}| {line}" for line in lines)


class Servers:
    """A temp dir and the servers in it, cleaned up when the script exits for any reason."""

    def __init__(self, prefix, keep_tmp):
        self.workdir = tempfile.mkdtemp(prefix=prefix)
        self.keep_tmp = keep_tmp
        self.servers = []
        atexit.register(self.cleanup)
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, _frame):
        # SystemExit unwinds through `finally` blocks, then atexit runs cleanup().
        raise SystemExit(128 + signum)

    def add(self, name, argv_prefix, cpus=None):
        server = Server(name, argv_prefix, self.workdir, cpus)
        self.servers.append(server)
        return server

    def cleanup(self):
        for server in self.servers:
            try:
                server.stop()
            except Exception as e:  # keep stopping the others
                log(f"stopping {server.name}: {e}")
        self.servers = []
        if self.workdir and os.path.isdir(self.workdir):
            if self.keep_tmp:
                log(f"kept {self.workdir}")
            else:
                shutil.rmtree(self.workdir, ignore_errors=True)
        self.workdir = None


def geomean(values):
    values = [v for v in values if v and v > 0]
    if not values:
        return None
    return math.exp(sum(math.log(v) for v in values) / len(values))

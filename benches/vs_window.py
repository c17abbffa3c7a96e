#!/usr/bin/env python3
"""Run one load generator and measure it over a window that leaves out its
start (connection ramp, warm-up) and its end, the same way for any
generator: the generator's CPU time from /proc/PID/task/*/schedstat (ns,
all its threads) and the requests the *server* counted in that window
(redis INFO total_commands_processed, or nginx stub_status `requests`).

  vs_window.py --server redis:PORT|nginx:PORT/status [--server-pid PID]
               [--conns N] --skip S --window W [--out FILE] -- CMD...

The window starts SKIP seconds after CMD starts, or later: not before the
server has seen all N connections (nginx accepts one connection per turn
of its loop, so 1,000 connections established by the kernel take it a
while to take in; a request on one not yet taken in waits). The server is
asked over one connection opened before CMD starts and kept open, so the
asking is never held in the accept queue.

Prints one line: "<req/s> <cpu_us_per_req> <cpu_s_per_s>" for the window
(with --server-pid, then the server's "<cpu_us_per_req> <cpu_s_per_s>");
then how many seconds from the start the window began. The generator is
stopped by SIGINT once the window ends (give it a duration longer than
SKIP + WINDOW + its ramp); its stdout is saved to --out FILE if given.
"""
import argparse, glob, re, signal, socket, subprocess, sys, time


def recv(s):
    """More bytes from the server, or an error: a closed connection or a
    silent server must end the bench, never hang it."""
    b = s.recv(65536)
    if not b:
        raise ConnectionError("the server closed the connection we ask it over")
    return b


def connect(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(10)
    return s


class Redis:
    def __init__(self, port):
        self.s = connect(port)

    def info(self):
        self.s.sendall(b"INFO\r\n")
        data = b""
        while True:
            data += recv(self.s)
            if b"\r\n" in data:
                head = data.index(b"\r\n")
                n = int(data[1:head])
                if len(data) >= head + 2 + n + 2:
                    break
        return dict(l.split(b":", 1) for l in data.split(b"\r\n") if b":" in l and not l.startswith(b"#"))

    def counts(self):
        """(requests so far, connections open): this INFO is a command too,
        and its own connection is one of the clients."""
        i = self.info()
        return int(i[b"total_commands_processed"]), int(i[b"connected_clients"]) - 1


class Nginx:
    def __init__(self, where):
        port, _, path = where.partition("/")
        self.port = int(port)
        self.s = connect(self.port)
        self.req = b"GET /" + path.encode() + b" HTTP/1.1\r\nHost: localhost\r\n\r\n"

    def counts(self):
        try:
            return self.ask()
        except ConnectionError:
            # nginx may close an idle keep-alive connection (its
            # keepalive_timeout): ask again over a new one.
            self.s.close()
            self.s = connect(self.port)
            return self.ask()

    def ask(self):
        self.s.sendall(self.req)
        data = b""
        while b"\r\n\r\n" not in data:
            data += recv(self.s)
        head, _, body = data.partition(b"\r\n\r\n")
        n = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
        while len(body) < n:
            body += recv(self.s)
        active = int(re.search(rb"Active connections:\s*(\d+)", body).group(1))
        reqs = int(body.split(b"\n")[2].split()[2])
        # Our own connection is active; our requests are counted.
        return reqs, active - 1


def cpu_ns(pid):
    t = 0
    for f in glob.glob("/proc/%d/task/*/schedstat" % pid):
        try:
            t += int(open(f).read().split()[0])
        except (OSError, ValueError):
            pass
    return t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--server-pid", type=int, help="also report the server's CPU per request")
    ap.add_argument("--conns", type=int, default=0, help="start the window once the server holds this many")
    ap.add_argument("--skip", type=float, default=1.0)
    ap.add_argument("--window", type=float, default=3.0)
    ap.add_argument("--out")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    kind, _, where = a.server.partition(":")
    srv = Redis(int(where)) if kind == "redis" else Nginx(where)
    out = open(a.out, "wb") if a.out else subprocess.DEVNULL
    start = time.monotonic()
    p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL)
    time.sleep(a.skip)
    while srv.counts()[1] < a.conns and p.poll() is None:
        time.sleep(0.05)
    waited = time.monotonic() - start
    s0 = cpu_ns(a.server_pid) if a.server_pid else 0
    c0, (r0, _), t0 = cpu_ns(p.pid), srv.counts(), time.monotonic()
    time.sleep(a.window)
    c1, (r1, _), t1 = cpu_ns(p.pid), srv.counts(), time.monotonic()
    s1 = cpu_ns(a.server_pid) if a.server_pid else 0
    alive = p.poll() is None
    # The window is what is measured: stop the generator now (SIGINT: each
    # of them prints its summary and exits on it).
    if alive:
        p.send_signal(signal.SIGINT)
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    if not alive:
        sys.exit("vs_window: the generator ended inside the window (exit %s, window from %.1f s): %s"
                 % (p.returncode, waited, " ".join(cmd)))
    # One of the requests counted is our own second ask.
    reqs = max(r1 - r0 - 1, 1)
    dt = t1 - t0
    line = "%d %.2f %.2f" % (reqs / dt, (c1 - c0) / 1e3 / reqs, (c1 - c0) / 1e9 / dt)
    if a.server_pid:
        line += " %.2f %.2f" % ((s1 - s0) / 1e3 / reqs, (s1 - s0) / 1e9 / dt)
    print(line + " %.1f" % waited)


main()

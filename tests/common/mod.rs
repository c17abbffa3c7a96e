//! Helpers for the integration tests: a server on 127.0.0.1, port 0, in
//! this process or as the built binary; clients with read timeouts, so a
//! test that goes wrong fails instead of hanging.
#![allow(dead_code)]

pub mod servers;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use sockloop::{Counters, ListenSpec, Options, Server};

/// How long any single wait in a test may take before it fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// A server running its own loop on a thread of this process.
pub struct InProcess {
    pub addrs: Vec<SocketAddr>,
    pub counters: Counters,
}

/// Start `sockloop serve` in this process with these `--listen` specs.
pub fn serve(specs: &[&str], opts: Options) -> InProcess {
    let specs: Vec<ListenSpec> = specs.iter().map(|s| s.parse().expect("spec")).collect();
    let (tx, rx) = mpsc::channel();
    // A Server is not Send (its chat frames are Rc-shared): build it on the
    // thread that runs it.
    thread::spawn(move || {
        let server = Server::bind(&specs, opts).expect("bind");
        let addrs = server.listeners().map(|(_, e)| e.addr).collect();
        tx.send((addrs, server.counters())).expect("send addrs");
        server.run().expect("run");
    });
    let (addrs, counters) = rx.recv_timeout(WAIT).expect("server started");
    InProcess { addrs, counters }
}

/// A TCP client with read and write timeouts.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.set_write_timeout(Some(WAIT)).unwrap();
    s
}

/// Read exactly `n` bytes (or fail after WAIT).
pub fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    s.read_exact(&mut buf).expect("read_exact");
    buf
}

/// Read until EOF.
pub fn read_to_eof(s: &mut TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).expect("read_to_end");
    buf
}

/// Read one `\n`-terminated line (without the `\n`).
pub fn read_line(s: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match s.read(&mut b).expect("read_line") {
            0 => panic!(
                "EOF before a full line; got {:?}",
                String::from_utf8_lossy(&line)
            ),
            _ if b[0] == b'\n' => return String::from_utf8(line).expect("utf8 line"),
            _ => line.push(b[0]),
        }
    }
}

/// Whether the server closed the connection (EOF or reset) within WAIT.
pub fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false, // timed out: still open
        }
    }
}

/// A UDP client bound to 127.0.0.1:0 with a read timeout.
pub fn udp_client() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s
}

/// Poll `cond` until it holds or WAIT passes. For state the test cannot
/// read through a socket (the server's own counters).
pub fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + WAIT;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        thread::sleep(Duration::from_millis(10));
    }
    cond()
}

/// The built binary.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sockloop"))
}

/// `sockloop serve` as a child process, its listening addresses read from
/// its startup lines.
pub struct Child_ {
    pub child: Child,
    pub addrs: Vec<SocketAddr>,
    pub stdout: BufReader<ChildStdout>,
}

/// Start the binary with `args` after `serve` and wait for its ready line.
pub fn spawn_serve(args: &[&str]) -> Child_ {
    spawn_serve_with(bin(), args)
}

pub fn spawn_serve_with(mut cmd: Command, args: &[&str]) -> Child_ {
    let mut child = cmd
        .arg("serve")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sockloop");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut addrs = Vec::new();
    loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("server exited before ready: {err}");
        }
        let line = line.trim_end();
        if line == "The server is ready to receive" {
            break;
        }
        let addr = line.rsplit(' ').next().unwrap();
        addrs.push(addr.parse().expect("listening address"));
    }
    Child_ {
        child,
        addrs,
        stdout,
    }
}

impl Child_ {
    /// Send a signal to the server.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig}");
    }

    /// Wait for exit (at most WAIT); the exit code.
    pub fn wait(&mut self) -> i32 {
        let end = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < end, "server did not exit");
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything the server wrote on stderr so far (after it exited).
    pub fn stderr(&mut self) -> String {
        let mut s = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            e.read_to_string(&mut s).unwrap();
        }
        s
    }
}

impl Drop for Child_ {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Write all of `data` on a second thread while the caller reads.
pub fn write_in_background(mut s: TcpStream, data: Vec<u8>) -> thread::JoinHandle<TcpStream> {
    thread::spawn(move || {
        s.write_all(&data).expect("background write");
        s
    })
}

/// The value of `key=` in a `--stats` line.
pub fn stat(line: &str, key: &str) -> u64 {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {line}"))
}

/// The last `--stats` line of what is left on a server's stderr (read to
/// its end: call after the server exited).
pub fn last_stats_line(err: &mut impl BufRead) -> String {
    let (mut last, mut line) = (String::new(), String::new());
    while err.read_line(&mut line).unwrap_or(0) > 0 {
        if line.starts_with("stats:") {
            last = line.clone();
        }
        line.clear();
    }
    last
}

/// How late a timeout may fire, as docs/protocol.md ("Timers") states it:
/// 10 ms, plus the loop turn in progress — allowed 40 ms here (a turn of
/// these tests' traffic is far shorter; the rest is a loaded 2-core
/// machine waking the loop).
pub const LATE: Duration = Duration::from_millis(50);

/// How early a timeout may fire: it is kept in whole milliseconds from the
/// turn that saw its event, so it may fire up to 1 ms before its time.
pub const EARLY: Duration = Duration::from_millis(1);

/// When something the test can only poll (a server counter) happened,
/// bracketed from outside: polls `happened` every millisecond until it
/// holds (failing after WAIT) and returns `(before, after)`, the start of
/// the last poll that saw it not yet, and the end of the first that saw
/// it. The event lies between them however late this thread was woken,
/// so a bound checked with them cannot fail for the test's own slowness.
pub fn bracket(mut happened: impl FnMut() -> bool) -> (Instant, Instant) {
    let end = Instant::now() + WAIT;
    let mut before = Instant::now();
    assert!(!happened(), "it had already happened when the test looked");
    loop {
        let start = Instant::now();
        if happened() {
            return (before, Instant::now());
        }
        before = start;
        assert!(start < end, "it did not happen within {WAIT:?}");
        thread::sleep(Duration::from_millis(1));
    }
}

/// The kernel's queues of the IPv4 TCP socket from `local` to `remote`
/// (/proc/net/tcp, this network namespace): bytes sent but not yet
/// acknowledged (`tx`), and bytes received but not yet read by the
/// application (`rx`). For what a test cannot see through its own socket:
/// how much of what it sent another process has really read.
pub fn tcp_queues(local: SocketAddr, remote: SocketAddr) -> (u64, u64) {
    let hex = |a: SocketAddr| match a {
        SocketAddr::V4(v4) => format!(
            "{:08X}:{:04X}",
            u32::from_le_bytes(v4.ip().octets()),
            v4.port()
        ),
        SocketAddr::V6(_) => panic!("tcp_queues: IPv4 only"),
    };
    let (l, r) = (hex(local), hex(remote));
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    for row in table.lines().skip(1) {
        let f: Vec<&str> = row.split_whitespace().collect();
        if f.len() > 4 && f[1] == l && f[2] == r {
            let (tx, rx) = f[4].split_once(':').expect("tx:rx");
            let n = |s: &str| u64::from_str_radix(s, 16).expect("hex queue");
            return (n(tx), n(rx));
        }
    }
    panic!("no TCP socket {local} -> {remote} in /proc/net/tcp");
}

/// `sockloop load ARGS`, run to its end with no stdin.
pub fn load(args: &[&str]) -> std::process::Output {
    bin()
        .arg("load")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `sockloop load ARGS` started with no stdin, returned once its first
/// progress line shows the run is under way. Keep the stderr reader
/// until the child is done: closing it would fail load's next progress
/// line.
pub fn load_under_way(
    args: &[&str],
) -> (std::process::Child, BufReader<std::process::ChildStderr>) {
    let mut child = bin()
        .arg("load")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.starts_with("load:"), "{line}");
    (child, err)
}

/// The JSON object a `--json` run printed on stdout.
pub fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&out.stdout)))
}

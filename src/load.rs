//! `sockloop load`: a load generator for echo-like services, on a mio loop
//! of its own, as lean per message as the server it drives.
//!
//! Each connection sends messages of `size` bytes and expects the same
//! bytes back. A message's content is a function of its offset in the
//! connection's byte stream ([`pattern`]), so neither side of the check
//! needs a buffer: bytes to send are generated into the one scratch buffer,
//! and each reply byte is compared with what that offset must hold. A reply
//! may arrive in any number of reads; a short read is normal.
//!
//! ```text
//!  ramp: connect at --connect-rate, from 127.0.0.{1,2,…} once one source
//!        address would use more than half its ephemeral ports
//!  run:  keep --pipeline messages in flight per connection; with --rate,
//!        message j of a connection is *due* at a fixed time, and its
//!        latency counts from then, even if it could only be sent later
//!        (no coordinated omission)
//!  idle: just hold the connections and count who is still there
//! ```
//!
//! Latencies go into an HDR histogram (nanoseconds, 3 significant digits).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::fmt::Write as _;
use std::io::{self, IsTerminal, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::addr::{Endpoint, Proto};

/// What `sockloop load` is asked to do.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// The echo-like service to drive.
    pub endpoint: Endpoint,
    /// Connections to open.
    pub conns: usize,
    /// Bytes per message.
    pub size: usize,
    /// How long to measure, after every connection is open.
    pub duration: Duration,
    /// Messages in flight per connection.
    pub pipeline: usize,
    /// Messages per second over all connections; `None`: as fast as
    /// replies allow.
    pub rate: Option<f64>,
    /// New connections per second while ramping up.
    pub connect_rate: f64,
    /// Hold the connections without traffic.
    pub idle: bool,
}

/// A connection attempt still unanswered after this long has failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Ports of one source address kept free for everything else.
const PORT_MARGIN: usize = 1000;

/// File descriptors `load` needs besides its connections.
const FD_MARGIN: usize = 32;

/// Why a connection whose replies differ from what it sent is dropped.
const WRONG_BYTES: &str = "wrong reply bytes: the target does not look like an echo-like service (echo, or upper with these ASCII messages)";

/// Why a run in which nothing came back failed.
const NO_REPLY: &str = "no reply came back in the whole run: the target does not look like an echo-like service (echo, or upper)";

const ALPHABET: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// The byte at offset `off` of connection `conn`'s stream, for messages of
/// `size` bytes: each message is digits and capital letters ending in
/// `\n`, so `echo` and `upper` (and their `line` framings) return it as is.
pub fn pattern(conn: usize, size: usize, off: u64) -> u8 {
    let i = (off % size as u64) as usize;
    if i == size - 1 {
        b'\n'
    } else {
        let msg = (off / size as u64) as usize;
        ALPHABET[(conn + msg.wrapping_mul(7) + i) % ALPHABET.len()]
    }
}

/// [`pattern`] a slice at a time: the bytes of a connection's stream come
/// from one precomputed run of the alphabet, so sending copies slices and
/// checking compares them (`memcpy` and `memcmp`, not a computation per
/// byte).
struct Pattern {
    size: usize,
    /// The alphabet repeated, long enough for any message to be a slice of
    /// it from any rotation.
    cycle: Vec<u8>,
}

impl Pattern {
    fn new(size: usize) -> Self {
        let cycle = ALPHABET
            .iter()
            .copied()
            .cycle()
            .take(size + ALPHABET.len())
            .collect();
        Pattern { size, cycle }
    }

    /// The stream of connection `conn` from offset `off` for `n` bytes, as
    /// slices in order; each with whether it ends a message.
    fn segments(&self, conn: usize, off: u64, n: usize, mut f: impl FnMut(&[u8], bool) -> bool) {
        let size = self.size as u64;
        let (mut off, end) = (off, off + n as u64);
        while off < end {
            let msg = (off / size) as usize;
            let i = (off % size) as usize;
            let left = (end - off) as usize;
            let piece = if i == self.size - 1 {
                &b"\n"[..]
            } else {
                let r = (conn + msg.wrapping_mul(7)) % ALPHABET.len();
                let len = (self.size - 1 - i).min(left);
                &self.cycle[r + i..r + i + len]
            };
            let ends = i + piece.len() == self.size;
            if !f(piece, ends) {
                return;
            }
            off += piece.len() as u64;
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Connecting,
    Open,
    Closed,
}

struct LConn {
    stream: TcpStream,
    phase: Phase,
    /// Stream offsets: bytes written, bytes received (and checked).
    sent: u64,
    received: u64,
    /// Messages started (whole or partly written).
    started: u64,
    /// With --rate: messages that have come due.
    due: u64,
    /// When each message in flight started counting (ns since the run's
    /// epoch): when sent, or with --rate when due.
    in_flight: VecDeque<u64>,
    opened_at: Instant,
}

/// Why connections failed, counted.
type Failures = BTreeMap<String, u64>;

/// The outcome of a run.
#[derive(Debug)]
pub struct Report {
    /// It was an `--idle` run.
    pub idle: bool,
    /// Connections asked for.
    pub wanted: usize,
    /// Connections established.
    pub connections: usize,
    /// Still open at the end (what `--idle` reports as held).
    pub held: usize,
    /// Attempts that failed, and why.
    pub failed: usize,
    /// Connections established and then lost (closed or reset by the
    /// server, or dropped for wrong reply bytes).
    pub lost: usize,
    /// Why connections failed or were lost, with counts.
    pub failures: Failures,
    /// Replies completed and checked in the measured window.
    pub messages: u64,
    /// The measured window.
    pub elapsed: Duration,
    /// Bytes per message.
    pub size: usize,
    /// Wrong reply bytes, and connections lost mid-run.
    pub errors: u64,
    /// Round-trip latency, ns (with `--rate`, from when each was due).
    pub latency_ns: Histogram<u64>,
}

fn reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::ConnectionReset => "connection reset".into(),
        io::ErrorKind::TimedOut => "timed out".into(),
        io::ErrorKind::AddrNotAvailable => "no local address/port available".into(),
        _ if e.raw_os_error() == Some(libc::EMFILE) => "out of file descriptors (EMFILE)".into(),
        _ => e.to_string(),
    }
}

/// How many connections one source address is given: half its ephemeral
/// port range. The kernel finds a free port for each connect by probing
/// the range; past about half full the probing dominates the ramp (seen
/// here: 19,000 connections from one address ramped at 2,800/s instead of
/// 5,000/s), so more addresses are used before then.
fn ports_per_source() -> usize {
    ephemeral_ports() / 2
}

/// The ephemeral port range's size, less a margin.
fn ephemeral_ports() -> usize {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|p| p.parse::<usize>().ok());
            Some(it.next()??..=it.next()??)
        })
        .map_or(28_000, |r| r.count())
        .saturating_sub(PORT_MARGIN)
        .max(1)
}

/// The source addresses `n` connections to `target` need: none (let the
/// kernel choose) if one address has ports enough, else 127.0.0.1, .2, …
fn source_addrs(target: SocketAddr, n: usize) -> Result<Vec<IpAddr>, String> {
    let per = ports_per_source();
    if n <= per {
        return Ok(Vec::new());
    }
    let needed = n.div_ceil(per);
    match target.ip() {
        IpAddr::V4(ip) if ip.is_loopback() && needed < 250 => {
            Ok((1..=needed as u8).map(|k| IpAddr::V4(Ipv4Addr::new(127, 0, 0, k))).collect())
        }
        _ => Err(format!(
            "{n} connections need {needed} source addresses ({per} ports each); only a 127.x.x.x target can spread over 127.0.0.1, .2, …"
        )),
    }
}

fn connect_from(src: Option<IpAddr>, target: SocketAddr) -> io::Result<TcpStream> {
    let Some(src) = src else {
        return TcpStream::connect(target);
    };
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::for_address(target), Type::STREAM, None)?;
    s.set_nonblocking(true)?;
    crate::sys::set_bind_address_no_port(&s)?;
    s.bind(&SocketAddr::new(src, 0).into())?;
    match s.connect(&target.into()) {
        Ok(()) => {}
        // A nonblocking connect answers "in progress"; writability (or an
        // error) tells the outcome later.
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(s.into()))
}

/// Run the load; progress on stderr. Errors only for setup problems; a
/// failed connection is counted, not fatal.
pub fn run(cfg: &LoadConfig) -> Result<Report, String> {
    run_with_progress(cfg, true)
}

/// [`run`], with progress lines on stderr or not.
pub fn run_with_progress(cfg: &LoadConfig, progress: bool) -> Result<Report, String> {
    if cfg.endpoint.proto != Proto::Tcp {
        return Err(format!("{}: load drives TCP services only", cfg.endpoint));
    }
    if cfg.conns == 0 {
        return Err("--conns must be at least 1".into());
    }
    if cfg.connect_rate.is_nan()
        || cfg.connect_rate <= 0.0
        || cfg.rate.is_some_and(|r| r.is_nan() || r <= 0.0)
    {
        return Err("--rate and --connect-rate must be above 0".into());
    }
    // Say at once if the connections cannot all be had, rather than fail
    // part-way through the ramp.
    let limit = crate::sys::raise_fd_limit().map_err(|e| format!("open-file limit: {e}"))? as usize;
    if cfg.conns + FD_MARGIN > limit {
        return Err(format!(
            "--conns {} needs about {} file descriptors, but this process may open only {limit} (RLIMIT_NOFILE); lower --conns or run several load processes",
            cfg.conns,
            cfg.conns + FD_MARGIN
        ));
    }
    let sources = source_addrs(cfg.endpoint.addr, cfg.conns)?;
    Driver::new(cfg, sources, progress)
        .map_err(|e| format!("poll: {e}"))?
        .run()
        .map_err(|e| format!("poll: {e}"))
}

/// With --rate, connection `i`'s message `j` is due this long (ns) after
/// the run's epoch: the total rate is spread evenly over --conns
/// connections, their due times interleaved, from `base`.
fn due_ns(base: u64, cfg: &LoadConfig, i: usize, j: u64) -> u64 {
    let rate = cfg.rate.unwrap_or(1.0);
    let slot = j as f64 * cfg.conns as f64 + i as f64;
    base + (slot / rate * 1e9) as u64
}

struct Driver<'a> {
    cfg: &'a LoadConfig,
    sources: Vec<IpAddr>,
    poll: Poll,
    /// Sockets created; the token is the index.
    conns: Vec<LConn>,
    /// Connection attempts made (a socket that could not even be created
    /// counts as an attempt, and a failure).
    attempted: usize,
    /// Indices still connecting, oldest first (for the connect timeout).
    connecting: VecDeque<usize>,
    established: usize,
    failures: Failures,
    failed: usize,
    /// Established, then lost (closed or reset by the server, wrong bytes).
    lost: usize,
    open: usize,
    errors: u64,
    messages: u64,
    hist: Histogram<u64>,
    scratch: Vec<u8>,
    pattern: Pattern,
    epoch: Instant,
    /// With --rate: when the schedule started (ns since epoch), and each
    /// connection's next due time.
    schedule_base: u64,
    schedule: BinaryHeap<Reverse<(u64, usize)>>,
    progress: bool,
    tty: bool,
}

impl<'a> Driver<'a> {
    fn new(cfg: &'a LoadConfig, sources: Vec<IpAddr>, progress: bool) -> io::Result<Self> {
        Ok(Driver {
            cfg,
            sources,
            poll: Poll::new()?,
            conns: Vec::with_capacity(cfg.conns),
            attempted: 0,
            connecting: VecDeque::new(),
            established: 0,
            failures: Failures::new(),
            failed: 0,
            lost: 0,
            open: 0,
            errors: 0,
            messages: 0,
            hist: Histogram::new_with_bounds(1, 60_000_000_000, 3).map_err(io::Error::other)?,
            scratch: vec![0; 64 * 1024],
            pattern: Pattern::new(cfg.size),
            epoch: Instant::now(),
            schedule_base: 0,
            schedule: BinaryHeap::new(),
            progress,
            tty: io::stderr().is_terminal(),
        })
    }

    fn ns(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.epoch).as_nanos() as u64
    }

    /// With --rate, when connection `i`'s message `j` is due.
    fn due_ns(&self, i: usize, j: u64) -> u64 {
        due_ns(self.schedule_base, self.cfg, i, j)
    }

    fn fail(&mut self, why: String) {
        self.failed += 1;
        self.count_reason(why);
    }

    /// Count a reason, naming the target: every failure a user sees says
    /// what went wrong and where.
    fn count_reason(&mut self, why: String) {
        let why = format!("{why} ({})", self.cfg.endpoint);
        *self.failures.entry(why).or_default() += 1;
    }

    fn run(mut self) -> io::Result<Report> {
        let cfg = self.cfg;
        let mut events = Events::with_capacity(4096);
        let start = Instant::now();
        let mut measure_from: Option<Instant> = None;
        let mut next_progress = start + Duration::from_secs(1);
        // SIGINT/SIGTERM end the run early with the summary of what was
        // measured (a signal also interrupts the poll below at once).
        let stop = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(sig, Arc::clone(&stop))?;
        }
        loop {
            let now = Instant::now();
            let ramp_done = self.attempted == cfg.conns && self.connecting.is_empty();
            // Every connection gone (refused, lost): nothing more can be
            // measured, so say so now rather than wait out --duration.
            let all_gone = ramp_done && self.open == 0;
            if stop.load(Ordering::Relaxed) || all_gone {
                if self.progress && self.tty {
                    eprintln!();
                }
                return Ok(self.report(now - measure_from.unwrap_or(start)));
            }
            // Ramp: open as many as the connect rate allows by now.
            let allowed = ((now - start).as_secs_f64() * cfg.connect_rate).ceil() as usize;
            while self.attempted < cfg.conns.min(allowed.max(1)) {
                self.open_one(now)?;
            }
            self.expire_connects(now);
            if measure_from.is_none() && self.attempted == cfg.conns && self.connecting.is_empty() {
                // Everything is connected (or has failed): the measured
                // window starts now; what came before was warm-up.
                measure_from = Some(now);
                self.messages = 0;
                self.hist.reset();
                if cfg.rate.is_some() && !cfg.idle {
                    self.start_schedule(now);
                }
            }
            if let Some(from) = measure_from {
                if now >= from + cfg.duration {
                    if self.progress && self.tty {
                        eprintln!();
                    }
                    return Ok(self.report(now - from));
                }
            }
            self.release_due(now);
            if self.progress && now >= next_progress {
                self.print_progress(now - start);
                next_progress += Duration::from_secs(1);
            }
            let timeout = self.next_wake(now, start, measure_from, next_progress);
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for ev in events.iter() {
                let i = ev.token().0;
                if self.conns[i].phase == Phase::Connecting && (ev.is_writable() || ev.is_error()) {
                    self.finish_connect(i);
                }
                if self.conns[i].phase != Phase::Open {
                    continue;
                }
                if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                    self.read_replies(i, ev.is_read_closed());
                }
                if ev.is_writable() && self.conns[i].phase == Phase::Open && !cfg.idle {
                    self.send_more(i);
                }
            }
        }
    }

    /// The next moment something is due: a connection to open, a connect
    /// to time out, a message to send, the end, a progress line.
    fn next_wake(
        &self,
        now: Instant,
        start: Instant,
        from: Option<Instant>,
        progress: Instant,
    ) -> Duration {
        let mut wake = progress;
        if self.attempted < self.cfg.conns {
            let next_n = self.attempted as f64 + 1.0;
            wake = wake.min(start + Duration::from_secs_f64(next_n / self.cfg.connect_rate));
        }
        if let Some(&i) = self.connecting.front() {
            wake = wake.min(self.conns[i].opened_at + CONNECT_TIMEOUT);
        }
        if let Some(from) = from {
            wake = wake.min(from + self.cfg.duration);
        }
        if let Some(Reverse((due, _))) = self.schedule.peek() {
            wake = wake.min(self.epoch + Duration::from_nanos(*due));
        }
        wake.saturating_duration_since(now)
    }

    fn open_one(&mut self, now: Instant) -> io::Result<()> {
        let n = self.attempted;
        self.attempted += 1;
        let src = (!self.sources.is_empty()).then(|| self.sources[n % self.sources.len()]);
        let mut stream = match connect_from(src, self.cfg.endpoint.addr) {
            Ok(s) => s,
            Err(e) => {
                self.fail(reason(&e));
                return Ok(());
            }
        };
        let i = self.conns.len();
        // Both interests once, for good: edge-triggered, so WRITABLE only
        // fires when a full send buffer frees up — no re-registering per
        // message.
        self.poll.registry().register(
            &mut stream,
            Token(i),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let in_flight = if self.cfg.idle { 0 } else { self.cfg.pipeline };
        self.conns.push(LConn {
            stream,
            phase: Phase::Connecting,
            sent: 0,
            received: 0,
            started: 0,
            due: 0,
            in_flight: VecDeque::with_capacity(in_flight),
            opened_at: now,
        });
        self.connecting.push_back(i);
        Ok(())
    }

    fn finish_connect(&mut self, i: usize) {
        let c = &mut self.conns[i];
        // Writable after a nonblocking connect: connected, or failed. The
        // socket error says which; peer_addr confirms.
        let err = match c.stream.take_error() {
            Ok(Some(e)) | Err(e) => Some(e),
            Ok(None) => c.stream.peer_addr().err(),
        };
        match err {
            Some(e) if e.kind() == io::ErrorKind::NotConnected => {} // not yet: wait
            Some(e) => {
                c.phase = Phase::Closed;
                let _ = self.poll.registry().deregister(&mut c.stream);
                self.fail(reason(&e));
            }
            None => {
                c.phase = Phase::Open;
                let _ = c.stream.set_nodelay(true);
                self.open += 1;
                self.established += 1;
                if !self.cfg.idle && self.cfg.rate.is_none() {
                    self.send_more(i);
                }
            }
        }
    }

    fn expire_connects(&mut self, now: Instant) {
        while let Some(&i) = self.connecting.front() {
            let c = &mut self.conns[i];
            if c.phase == Phase::Connecting {
                if now < c.opened_at + CONNECT_TIMEOUT {
                    break;
                }
                c.phase = Phase::Closed;
                let _ = self.poll.registry().deregister(&mut c.stream);
                self.fail("connect timed out".into());
            }
            self.connecting.pop_front();
        }
    }

    fn lose(&mut self, i: usize, why: String) {
        let c = &mut self.conns[i];
        if c.phase == Phase::Open {
            self.open -= 1;
        }
        c.phase = Phase::Closed;
        let _ = self.poll.registry().deregister(&mut c.stream);
        log::debug!("load: connection {i} lost: {why}");
        if self.cfg.idle {
            self.failed += 1;
        } else {
            self.errors += 1;
        }
        self.lost += 1;
        self.count_reason(why);
    }

    /// Start every message that may start now (`pipeline` in flight;
    /// with --rate, only those already due), then write all that is
    /// started and unsent in one `write` — one syscall per connection per
    /// turn, not per message — until done or WouldBlock.
    fn send_more(&mut self, i: usize) {
        let size = self.cfg.size as u64;
        let now_ns = self.ns(Instant::now());
        let c = &mut self.conns[i];
        while c.in_flight.len() < self.cfg.pipeline
            && (self.cfg.rate.is_none() || c.started < c.due)
        {
            let t0 = match self.cfg.rate {
                Some(_) => due_ns(self.schedule_base, self.cfg, i, c.started),
                None => now_ns,
            };
            c.in_flight.push_back(t0);
            c.started += 1;
        }
        loop {
            let c = &mut self.conns[i];
            // Bytes of the messages started and not yet written (possibly
            // the rest of one a partial write cut).
            let n = ((c.started * size - c.sent) as usize).min(self.scratch.len());
            if n == 0 {
                return;
            }
            let mut filled = 0;
            let scratch = &mut self.scratch;
            self.pattern.segments(i, c.sent, n, |piece, _| {
                scratch[filled..filled + piece.len()].copy_from_slice(piece);
                filled += piece.len();
                true
            });
            match c.stream.write(&self.scratch[..n]) {
                // A partial write is fine: `sent` says where to go on.
                Ok(w) => c.sent += w as u64,
                // Send buffer full: the WRITABLE edge brings us back.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.lose(i, reason(&e)),
            }
        }
    }

    fn read_replies(&mut self, i: usize, peer_fin: bool) {
        let now_ns = self.ns(Instant::now());
        let mut completed_any = false;
        loop {
            let c = &mut self.conns[i];
            match c.stream.read(&mut self.scratch) {
                Ok(0) => return self.lose(i, "closed by the server".into()),
                Ok(n) => {
                    if !self.cfg.idle {
                        if c.received + n as u64 > c.sent {
                            return self.lose(i, "more reply bytes than were sent".into());
                        }
                        // Compare the reply with what was sent, a slice
                        // at a time; each message it completes is timed.
                        let got = &self.scratch[..n];
                        let (mut pos, mut wrong, mut done) = (0, None, 0);
                        self.pattern.segments(i, c.received, n, |want, ends| {
                            if got[pos..pos + want.len()] != *want {
                                let k = got[pos..]
                                    .iter()
                                    .zip(want)
                                    .take_while(|(a, b)| a == b)
                                    .count();
                                wrong = Some(pos + k);
                                return false;
                            }
                            pos += want.len();
                            done += usize::from(ends);
                            true
                        });
                        if let Some(k) = wrong {
                            let off = c.received + k as u64;
                            log::debug!("load: connection {i}: wrong reply byte at offset {off}");
                            return self.lose(i, WRONG_BYTES.into());
                        }
                        for _ in 0..done {
                            let t0 = c.in_flight.pop_front().unwrap_or(now_ns);
                            self.messages += 1;
                            let _ = self.hist.record(now_ns.saturating_sub(t0).max(1));
                            completed_any = true;
                        }
                        c.received += n as u64;
                    }
                    // A short read: drained (see server/drive.rs, read_once).
                    if n < self.scratch.len() && !peer_fin {
                        break;
                    }
                }
                // Drained: the next READABLE edge brings more.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.lose(i, reason(&e)),
            }
        }
        if completed_any {
            self.send_more(i);
        }
    }

    fn start_schedule(&mut self, now: Instant) {
        self.schedule_base = self.ns(now);
        for i in 0..self.conns.len() {
            if self.conns[i].phase == Phase::Open {
                let due = self.due_ns(i, 0);
                self.schedule.push(Reverse((due, i)));
            }
        }
    }

    /// With --rate: count messages that came due, and send what may go.
    fn release_due(&mut self, now: Instant) {
        let now_ns = self.ns(now);
        while let Some(&Reverse((due, i))) = self.schedule.peek() {
            if due > now_ns {
                break;
            }
            self.schedule.pop();
            if self.conns[i].phase != Phase::Open {
                continue;
            }
            self.conns[i].due += 1;
            let next = self.due_ns(i, self.conns[i].due);
            self.schedule.push(Reverse((next, i)));
            self.send_more(i);
        }
    }

    fn print_progress(&self, t: Duration) {
        let line = format!(
            "load: {:>5.1}s  connections {} open, {} failed of {}  messages {}  errors {}",
            t.as_secs_f64(),
            self.open,
            self.failed,
            self.cfg.conns,
            self.messages,
            self.errors
        );
        if self.tty {
            eprint!("\r{line}\x1b[K");
        } else {
            eprintln!("{line}");
        }
    }

    fn report(mut self, elapsed: Duration) -> Report {
        if !self.cfg.idle && self.messages == 0 && self.errors == 0 && self.failed == 0 {
            self.count_reason(NO_REPLY.into());
        }
        Report {
            idle: self.cfg.idle,
            wanted: self.cfg.conns,
            connections: self.established,
            held: self.open,
            lost: self.lost,
            failed: self.failed,
            failures: self.failures,
            messages: self.messages,
            elapsed,
            size: self.cfg.size,
            errors: self.errors,
            latency_ns: self.hist,
        }
    }
}

impl Report {
    /// Whether the run met its goal: every connection held (`--idle`), or
    /// no error and no failed connection.
    pub fn ok(&self) -> bool {
        if self.idle {
            self.held == self.wanted
        } else {
            self.errors == 0 && self.failed == 0 && self.lost == 0 && self.messages > 0
        }
    }

    /// Replies per second in the measured window.
    pub fn messages_per_sec(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Reply bytes per second, in MB (10^6 bytes).
    pub fn mb_per_sec(&self) -> f64 {
        self.messages_per_sec() * self.size as f64 / 1e6
    }

    /// The latency at quantile `q`, in µs.
    pub fn latency_us(&self, q: f64) -> f64 {
        if self.latency_ns.is_empty() {
            return 0.0;
        }
        self.latency_ns.value_at_quantile(q) as f64 / 1000.0
    }

    fn failures_json(&self) -> String {
        let mut s = String::from("{");
        for (i, (why, n)) in self.failures.iter().enumerate() {
            let sep = if i > 0 { "," } else { "" };
            let _ = write!(s, "{sep}\"{}\":{n}", json_escape(why));
        }
        s.push('}');
        s
    }

    /// The summary as one JSON object (docs/protocol.md, "Command line" `load --json`).
    pub fn to_json(&self) -> String {
        if self.idle {
            return format!(
                "{{\"connections\":{},\"held\":{},\"failed\":{},\"failures\":{}}}",
                self.wanted,
                self.held,
                self.failed,
                self.failures_json()
            );
        }
        format!(
            "{{\"connections\":{},\"messages\":{},\"duration_sec\":{:.3},\"messages_per_sec\":{:.1},\"mb_per_sec\":{:.3},\"latency_us\":{{\"p50\":{:.1},\"p90\":{:.1},\"p99\":{:.1},\"p99_9\":{:.1},\"max\":{:.1}}},\"errors\":{},\"failed\":{},\"lost\":{},\"failures\":{}}}",
            self.connections,
            self.messages,
            self.elapsed.as_secs_f64(),
            self.messages_per_sec(),
            self.mb_per_sec(),
            self.latency_us(0.5),
            self.latency_us(0.9),
            self.latency_us(0.99),
            self.latency_us(0.999),
            self.latency_ns.max() as f64 / 1000.0,
            self.errors,
            self.failed,
            self.lost,
            self.failures_json()
        )
    }

    /// The summary as a small table.
    pub fn to_table(&self) -> String {
        let mut s = String::new();
        let failures = self
            .failures
            .iter()
            .map(|(why, n)| format!("{n} {why}"))
            .collect::<Vec<_>>()
            .join(", ");
        if self.idle {
            let _ = writeln!(
                s,
                "connections  {} wanted, {} held, {} failed",
                self.wanted, self.held, self.failed
            );
        } else {
            let _ = writeln!(
                s,
                "connections  {} of {} opened ({} failed to connect), {} lost, {} open at the end",
                self.connections, self.wanted, self.failed, self.lost, self.held
            );
            let _ = writeln!(
                s,
                "messages     {} in {:.2} s = {:.0} msg/s, {:.2} MB/s",
                self.messages,
                self.elapsed.as_secs_f64(),
                self.messages_per_sec(),
                self.mb_per_sec()
            );
            let _ = writeln!(
                s,
                "latency µs   p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}",
                self.latency_us(0.5),
                self.latency_us(0.9),
                self.latency_us(0.99),
                self.latency_us(0.999),
                self.latency_ns.max() as f64 / 1000.0
            );
            let _ = writeln!(s, "errors       {}", self.errors);
        }
        if !failures.is_empty() {
            let _ = writeln!(s, "why          {failures}");
        }
        s
    }
}

fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_segments_are_the_pattern() {
        for size in [1, 2, 7, 36, 37, 100] {
            let p = Pattern::new(size);
            for conn in [0, 5, 35] {
                for (off, n) in [(0, 300), (3, 1), (size as u64 - 1, 2), (97, 250)] {
                    let mut got = Vec::new();
                    p.segments(conn, off, n, |piece, _| {
                        got.extend_from_slice(piece);
                        true
                    });
                    let want: Vec<u8> = (off..off + n as u64)
                        .map(|o| pattern(conn, size, o))
                        .collect();
                    assert_eq!(got, want, "size {size} conn {conn} off {off}");
                }
            }
        }
    }

    #[test]
    fn messages_are_uppercase_safe_lines() {
        for size in [1, 2, 64] {
            let msg: Vec<u8> = (0..size as u64).map(|o| pattern(3, size, o)).collect();
            assert_eq!(msg.last(), Some(&b'\n'));
            assert!(msg[..size - 1]
                .iter()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()));
            assert_eq!(msg.to_ascii_uppercase(), msg);
        }
        // Consecutive messages differ, so a stale or repeated reply is caught.
        let a: Vec<u8> = (0..8).map(|o| pattern(0, 8, o)).collect();
        let b: Vec<u8> = (8..16).map(|o| pattern(0, 8, o)).collect();
        assert_ne!(a, b);
    }

    #[test]
    fn sources_spread_only_when_needed() {
        let target: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert!(source_addrs(target, 100).unwrap().is_empty());
        let per = ports_per_source();
        let spread = source_addrs(target, per * 3 + 1).unwrap();
        assert_eq!(spread.len(), 4);
        assert_eq!(spread[3], IpAddr::V4(Ipv4Addr::new(127, 0, 0, 4)));
        assert!(source_addrs("[::1]:9".parse().unwrap(), per * 2).is_err());
    }

    #[test]
    fn json_escapes_reasons() {
        assert_eq!(json_escape("a\"b\\c\n"), "a\\\"b\\\\c\\u000a");
    }
}

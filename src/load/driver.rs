//! The poll loop that opens, drives and checks the connections.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::{self, IsTerminal, Read, Write};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Poll};

use super::pattern::Pattern;
use super::progress::Progress;
use super::report::{latency_histogram, Failures, Report, Second};
use super::{no_reply, reason, LoadConfig, CONNECT_TIMEOUT, WRONG_BYTES};
use crate::addr::Endpoint;

mod connect;

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

impl LConn {
    /// A connection just started connecting, with room for `in_flight`
    /// messages.
    fn new(stream: TcpStream, in_flight: usize, now: Instant) -> Self {
        LConn {
            stream,
            phase: Phase::Connecting,
            sent: 0,
            received: 0,
            started: 0,
            due: 0,
            in_flight: VecDeque::with_capacity(in_flight),
            opened_at: now,
        }
    }
}

/// With --rate, connection `i`'s message `j` is due this long (ns) after
/// the run's epoch: the total rate is spread evenly over --conns
/// connections, their due times interleaved, from `base`.
fn due_ns(base: u64, cfg: &LoadConfig, i: usize, j: u64) -> u64 {
    let rate = cfg.rate.unwrap_or(1.0);
    let slot = j as f64 * cfg.conns as f64 + i as f64;
    base + (slot / rate * 1e9) as u64
}

pub(crate) struct Driver<'a> {
    cfg: &'a LoadConfig,
    /// The run-wide index of this driver's first connection.
    first: usize,
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
    /// `write` calls that sent something, in the measured window.
    writes: u64,
    /// --churn: connections that did their round trips and were replaced
    /// (whole run), connects completed and their latency (measured window).
    churned: u64,
    connects: u64,
    connect_hist: Histogram<u64>,
    /// The second under way, and the seconds before it (`--timeline`).
    second: Second,
    timeline: Vec<Second>,
    errors_before: u64,
    open: usize,
    errors: u64,
    messages: u64,
    hist: Histogram<u64>,
    /// The warm-up's share of the second under way when measuring began.
    warm_up: Option<Histogram<u64>>,
    scratch: Vec<u8>,
    pattern: Pattern,
    epoch: Instant,
    /// With --rate: when the schedule started (ns since epoch), and each
    /// connection's next due time.
    schedule_base: u64,
    schedule: BinaryHeap<Reverse<(u64, usize)>>,
    progress: Progress,
    tty: bool,
}

impl<'a> Driver<'a> {
    /// A driver for `cfg.conns` connections, the first of which is
    /// connection `first` of the whole run.
    pub(crate) fn new(
        cfg: &'a LoadConfig,
        first: usize,
        sources: Vec<IpAddr>,
        progress: Progress,
    ) -> io::Result<Self> {
        Ok(Driver {
            cfg,
            first,
            sources,
            poll: Poll::new()?,
            conns: Vec::with_capacity(cfg.conns),
            attempted: 0,
            connecting: VecDeque::new(),
            established: 0,
            failures: Failures::new(),
            failed: 0,
            lost: 0,
            writes: 0,
            churned: 0,
            connects: 0,
            connect_hist: latency_histogram()?,
            second: Second::new(latency_histogram()?),
            timeline: Vec::new(),
            errors_before: 0,
            open: 0,
            errors: 0,
            messages: 0,
            hist: latency_histogram()?,
            warm_up: None,
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

    fn fail(&mut self, i: usize, why: String) {
        self.failed += 1;
        let target = self.target(i);
        self.count_reason(why, target);
    }

    /// Count a reason, naming the target: every failure a user sees says
    /// what went wrong and where.
    fn count_reason(&mut self, why: String, target: &dyn std::fmt::Display) {
        let why = format!("{why} ({target})");
        *self.failures.entry(why).or_default() += 1;
    }

    /// Connection `i`'s target: round-robin over the targets by its index
    /// in the whole run.
    fn target(&self, i: usize) -> &'a Endpoint {
        let t = &self.cfg.endpoints;
        &t[(self.first + i) % t.len()]
    }

    pub(crate) fn run(mut self) -> io::Result<Report> {
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
                if self.prints() && self.tty {
                    eprintln!();
                }
                return Ok(self.report(now - measure_from.unwrap_or(start)));
            }
            // Ramp: open as many as the connect rate allows by now.
            let allowed = ((now - start).as_secs_f64() * cfg.connect_rate).ceil() as usize;
            while self.attempted < cfg.conns.min(allowed.max(1)) {
                self.open_one(now);
            }
            self.expire_connects(now);
            if measure_from.is_none() && self.attempted == cfg.conns && self.connecting.is_empty() {
                // Everything is connected (or has failed): the measured
                // window starts now; what came before was warm-up.
                measure_from = Some(now);
                self.messages = 0;
                self.writes = 0;
                self.connects = 0;
                self.hist.reset();
                // What this second recorded so far was warm-up: the whole
                // run's histogram leaves it out when the second is added.
                self.warm_up = Some(self.second.hist.clone());
                self.connect_hist.reset();
                if cfg.rate.is_some() && !cfg.idle {
                    self.start_schedule(now);
                }
            }
            if let Some(from) = measure_from {
                if now >= from + cfg.duration {
                    if self.prints() && self.tty {
                        eprintln!();
                    }
                    return Ok(self.report(now - from));
                }
            }
            self.release_due(now);
            if now >= next_progress {
                self.close_second();
                self.publish();
                if self.prints() {
                    self.print_progress(now - start);
                }
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

    /// Start every message that may start now (`pipeline` in flight;
    /// with --rate, only those already due), then write all that is
    /// started and unsent in one `write` — one syscall per connection per
    /// turn, not per message — until done or WouldBlock.
    fn send_more(&mut self, i: usize) {
        let now_ns = self.ns(Instant::now());
        self.send_more_at(i, now_ns);
    }

    /// [`send_more`](Self::send_more) with the clock already read (a reply
    /// just came: one clock read serves both).
    fn send_more_at(&mut self, i: usize, now_ns: u64) {
        let size = self.cfg.size as u64;
        let c = &mut self.conns[i];
        while c.in_flight.len() < self.cfg.pipeline
            && (self.cfg.rate.is_none() || c.started < c.due)
            && self.cfg.churn.map_or(true, |m| c.started < m)
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
                Ok(w) => {
                    c.sent += w as u64;
                    self.writes += 1;
                }
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
                        // Messages started together (one turn's pipeline)
                        // share a start time: one histogram entry per run.
                        let mut k = 0;
                        while k < done {
                            let t0 = c.in_flight.pop_front().unwrap_or(now_ns);
                            let mut same = 1;
                            while k + same < done && c.in_flight.front() == Some(&t0) {
                                c.in_flight.pop_front();
                                same += 1;
                            }
                            let lat = now_ns.saturating_sub(t0).max(1);
                            let _ = self.second.hist.record_n(lat, same as u64);
                            k += same;
                        }
                        self.messages += done as u64;
                        self.second.messages += done as u64;
                        completed_any |= done > 0;
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
        let c = &self.conns[i];
        if self
            .cfg
            .churn
            .is_some_and(|m| c.received == m * self.cfg.size as u64)
        {
            return self.replace(i);
        }
        if completed_any {
            self.send_more_at(i, now_ns);
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

    /// The second since the start is over: keep its row for `--timeline`.
    fn close_second(&mut self) {
        let fresh = Second::new(Histogram::new_from(&self.second.hist));
        let mut done = std::mem::replace(&mut self.second, fresh);
        // Each latency is recorded once, in its second; the run's histogram
        // is their sum (less the warm-up).
        let _ = self.hist.add(&done.hist);
        if let Some(w) = self.warm_up.take() {
            let _ = self.hist.subtract(&w);
        }
        done.errors = self.errors - self.errors_before;
        self.errors_before = self.errors;
        done.open = self.open as u64;
        self.timeline.push(done);
    }

    /// Whether this driver prints its own progress line.
    fn prints(&self) -> bool {
        matches!(self.progress, Progress::Print(true))
    }

    /// Put this thread's numbers in its slot (several threads).
    fn publish(&self) {
        if let Progress::Shared(slots, t) = &self.progress {
            slots[*t].set(self.open, self.failed, self.messages, self.errors);
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
            *self.failures.entry(no_reply(self.cfg)).or_default() += 1;
        }
        // The last second, partial, is a row too.
        self.close_second();
        self.publish();
        Report {
            idle: self.cfg.idle,
            wanted: self.cfg.conns,
            // With --churn, every replacement is established too; the
            // figure that means something is how many were open at once.
            connections: if self.cfg.churn.is_some() {
                self.established.min(self.cfg.conns)
            } else {
                self.established
            },
            held: self.open,
            lost: self.lost,
            failed: self.failed,
            failures: self.failures,
            messages: self.messages,
            elapsed,
            size: self.cfg.size,
            errors: self.errors,
            latency_ns: self.hist,
            per_thread_messages: vec![self.messages],
            writes: self.writes,
            churn: self.cfg.churn,
            datagrams_lost: None,
            churned: self.churned,
            connects: self.connects,
            connect_latency_ns: self.connect_hist,
            timeline: self.timeline,
        }
    }
}

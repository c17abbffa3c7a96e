//! The TCP driver: one poll loop that opens the connections, drives their
//! traffic and measures it. A connection's life (connect, time out, lose,
//! replace) is in `driver/connect.rs`; its traffic (sending on schedule,
//! reading and judging replies) in `driver/traffic.rs`; what is said is
//! the [`Protocol`]'s, what is counted the [`Measure`]'s.

use std::collections::VecDeque;
use std::io::{self, IsTerminal};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Poll, Token};

use super::measure::{Conns, Measure};
use super::pace::Pacer;
use super::progress::Progress;
use super::protocol::Protocol;
use super::report::Report;
use super::shard::Schedule;
use super::{LoadConfig, Stop};
use crate::addr::Endpoint;

mod connect;
mod due;
mod look;
mod traffic;

use due::Due;
use look::{Look, SPIN};

/// The tokens of the stop waker and the pacing timer (connections use
/// their index).
const WAKE: Token = Token(usize::MAX);
const PACE: Token = Token(usize::MAX - 1);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Connecting,
    Open,
    Closed,
}

struct LConn {
    stream: TcpStream,
    phase: Phase,
    /// Requests started (written, or queued behind a partial write), and
    /// replies completed.
    started: u64,
    replied: u64,
    /// Reply bytes judged (the offset in the reply stream).
    received: u64,
    /// With --rate: messages that have come due.
    due: u64,
    /// Per message in flight: when it was due and when it was sent (ns
    /// since the epoch; without --rate the same).
    in_flight: VecDeque<(u64, u64)>,
    /// Request bytes a partial write left over; reply bytes a framed
    /// protocol has not yet judged. Both stay empty (unallocated) for echo
    /// unless the kernel's send buffer cuts a write.
    unsent: Vec<u8>,
    unjudged: Vec<u8>,
    /// When bytes of the reply under way last came, if some did.
    part_way_at: Option<u64>,
    opened_at: Instant,
}

impl LConn {
    /// A connection just started connecting, with room for `in_flight`
    /// messages.
    fn new(stream: TcpStream, in_flight: usize, now: Instant) -> Self {
        LConn {
            stream,
            phase: Phase::Connecting,
            started: 0,
            replied: 0,
            received: 0,
            due: 0,
            in_flight: VecDeque::with_capacity(in_flight),
            unsent: Vec::new(),
            unjudged: Vec::new(),
            part_way_at: None,
            opened_at: now,
        }
    }
}

pub(crate) struct Driver<'a, P> {
    cfg: &'a LoadConfig,
    proto: P,
    /// The run-wide index of this driver's first connection.
    first: usize,
    sources: Vec<IpAddr>,
    poll: Poll,
    stop: Stop,
    pacer: Pacer,
    /// Sockets created; the token is the index.
    conns: Vec<LConn>,
    /// Connection attempts made (a socket that could not even be created
    /// counts as an attempt, and a failure).
    attempted: usize,
    /// Indices still connecting, oldest first (for the connect timeout).
    connecting: VecDeque<usize>,
    established: usize,
    open: usize,
    /// --churn: connections that did their round trips and were replaced.
    churned: u64,
    measure: Measure,
    /// Where reads land (64 KiB), and where a turn's requests are built.
    scratch: Vec<u8>,
    outbuf: Vec<u8>,
    /// With --rate: when each connection's messages are due (this
    /// driver's slice of the whole test's schedule), and the connections
    /// a wake released with how many messages each.
    due: Due,
    ready: Vec<(usize, u64)>,
    progress: Progress,
    tty: bool,
    /// Closed loop with --request: whether to look for events without
    /// sleeping for a while before sleeping ([`Driver::wait`], look.rs);
    /// whether the last poll brought traffic; replies so far (all
    /// connections), for the look's cost per reply.
    look: Option<Look>,
    flowing: bool,
    replied: u64,
}

impl<'a, P: Protocol> Driver<'a, P> {
    /// A driver for `cfg.conns` connections, the first of which is
    /// connection `first` of the whole run.
    pub(crate) fn new(
        cfg: &'a LoadConfig,
        proto: P,
        first: usize,
        sources: Vec<IpAddr>,
        progress: Progress,
        stop: &Stop,
    ) -> io::Result<Self> {
        let poll = Poll::new()?;
        stop.watch(poll.registry(), WAKE)?;
        let paced = cfg.rate.is_some() && !cfg.idle;
        let pacer = Pacer::new(poll.registry(), PACE, cfg.rate.filter(|_| paced))?;
        Ok(Driver {
            cfg,
            proto,
            first,
            sources,
            poll,
            stop: stop.clone(),
            pacer,
            conns: Vec::with_capacity(cfg.conns),
            attempted: 0,
            connecting: VecDeque::new(),
            established: 0,
            open: 0,
            churned: 0,
            measure: Measure::new(Instant::now(), paced),
            scratch: vec![0; 64 * 1024],
            outbuf: Vec::with_capacity(64 * 1024),
            due: Due::new(Schedule {
                conns: cfg.conns,
                rate: cfg.rate.unwrap_or(1.0),
            }),
            ready: Vec::new(),
            progress,
            tty: io::stderr().is_terminal(),
            look: None,
            flowing: false,
            replied: 0,
        })
    }

    /// Pace by `whole`, the whole test's schedule, when this driver runs
    /// part of it (a shard, a thread); by default its own `cfg` is the whole.
    pub(crate) fn on_schedule(mut self, whole: Schedule) -> Self {
        self.due = Due::new(whole);
        self
    }

    /// Connection `i`'s target: round-robin over the targets by its index
    /// in the whole run.
    fn target(&self, i: usize) -> &'a Endpoint {
        let t = &self.cfg.endpoints;
        &t[self.cfg.global_conn(self.first + i) % t.len()]
    }

    pub(crate) fn run(mut self) -> io::Result<Report> {
        let cfg = self.cfg;
        let mut events = Events::with_capacity(4096);
        let start = Instant::now();
        // Closed loop with --request (issue 19's protocols); echo is left
        // as it was measured against loadgen, and --rate has its own
        // wake-ups (pace.rs). Begun here: the CPU time is this thread's.
        if cfg.rate.is_none() && !cfg.idle && !cfg.request.is_empty() {
            self.look = Some(Look::new(self.measure.ns(start), cpu_ns(), 0));
        }
        let mut next_progress = start + Duration::from_secs(1);
        loop {
            let now = Instant::now();
            if self.stop.is_stopped() {
                return Ok(self.report(now));
            }
            // Ramp: open as many as the connect rate allows by now.
            let allowed = ((now - start).as_secs_f64() * cfg.connect_rate).ceil() as usize;
            while self.attempted < cfg.conns.min(allowed.max(1)) {
                self.open_one(now);
            }
            // Before judging the ramp: connects that failed or timed out
            // leave `connecting` here.
            self.expire_connects(now);
            // Replacements (--churn, HTTP `Connection: close`) keep some
            // connection connecting nearly always: once as many have been
            // established as asked for, the ramp is over.
            let ramp_done = self.attempted == cfg.conns
                && (self.connecting.is_empty() || self.established >= cfg.conns);
            // Every connection gone (refused, lost): nothing more can be
            // measured, so say so now rather than wait out --duration.
            let all_gone = ramp_done && self.open == 0 && self.connecting.is_empty();
            let over = self
                .measure
                .since()
                .is_some_and(|from| now >= from + cfg.duration);
            if all_gone || over {
                return Ok(self.report(now));
            }
            if self.measure.since().is_none() && ramp_done {
                // Everything is connected (or has failed): the measured
                // window starts now; what came before was warm-up.
                self.measure.start(now);
                if cfg.rate.is_some() && !cfg.idle {
                    self.start_schedule(now);
                }
            }
            self.release_due();
            self.measure.tick(now, self.open);
            let now_ns = self.measure.ns(now);
            if let Some(look) = self.look.as_mut().filter(|l| now_ns >= l.next_check()) {
                look.check(now_ns, cpu_ns(), self.replied);
            }
            if now >= next_progress {
                self.publish();
                if self.prints() {
                    self.print_progress(now - start);
                }
                next_progress += Duration::from_secs(1);
            }
            let wake = self.next_wake(start, next_progress);
            let timeout = self.pacer.timeout(Instant::now(), wake)?;
            if let Err(e) = self.wait(&mut events, timeout, wake) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            for ev in events.iter() {
                let i = ev.token().0;
                if ev.token() == PACE {
                    self.pacer.fired();
                }
                if ev.token() == WAKE || ev.token() == PACE {
                    continue;
                }
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

    /// Wait for events, at most `timeout`. Closed loop with `--request`
    /// (no --rate), while replies flow and the look pays (look.rs), it
    /// first looks without sleeping for up to [`SPIN`]: a poll that sleeps
    /// costs a wake-up on both sides — the server's write pays for waking
    /// us (an IPI, dear in a VM) and we pay the context switch. Once a
    /// poll that slept brings nothing (the traffic has stopped), the next
    /// one sleeps at once.
    fn wait(&mut self, events: &mut Events, timeout: Duration, wake: Instant) -> io::Result<()> {
        let looking = self.look.as_ref().is_some_and(Look::looking);
        if looking && self.flowing && !timeout.is_zero() {
            let until = Instant::now() + SPIN;
            loop {
                self.poll.poll(events, Some(Duration::ZERO))?;
                if !events.is_empty() {
                    return Ok(());
                }
                let now = Instant::now();
                if now >= until || now >= wake {
                    break;
                }
                std::hint::spin_loop();
            }
        }
        self.poll.poll(events, Some(timeout))?;
        self.flowing = events
            .iter()
            .any(|e| e.token() != WAKE && e.token() != PACE);
        Ok(())
    }

    /// The next moment something is due: a connection to open, a connect
    /// to time out, a message to send, a second to close, the end, a
    /// progress line.
    fn next_wake(&self, start: Instant, progress: Instant) -> Instant {
        let mut wake = progress;
        if self.attempted < self.cfg.conns {
            let next_n = self.attempted as f64 + 1.0;
            wake = wake.min(start + Duration::from_secs_f64(next_n / self.cfg.connect_rate));
        }
        if let Some(&i) = self.connecting.front() {
            wake = wake.min(self.conns[i].opened_at + self.cfg.connect_wait());
        }
        if let Some(from) = self.measure.since() {
            wake = wake.min(from + self.cfg.duration);
        }
        if let Some(t) = self.measure.next_tick() {
            wake = wake.min(t);
        }
        if let Some(due) = self.due.next() {
            wake = wake.min(self.measure.at(due));
        }
        wake
    }

    /// Replies that came part-way and then stopped: each is an error
    /// (not "no reply"), found at the end. A reply counts as stopped when
    /// nothing more of it came for a second, or for half the measured
    /// window if that is shorter (one still arriving when the run ends
    /// is not).
    fn count_short_replies(&mut self, now: Instant) {
        let Some(from) = self.measure.since() else {
            return;
        };
        let wait = Duration::from_secs(1).min(now.saturating_duration_since(from) / 2);
        let cutoff = self.measure.ns(now).saturating_sub(wait.as_nanos() as u64);
        for i in 0..self.conns.len() {
            let c = &self.conns[i];
            if c.phase == Phase::Open && c.part_way_at.is_some_and(|t| t <= cutoff) {
                let why = format!(
                    "short reply: part of a reply came, then nothing more of it for {:.2} s",
                    wait.as_secs_f64()
                );
                let target = self.target(i);
                self.measure.error(&why, target);
            }
        }
    }

    /// Whether this driver prints its own progress line.
    fn prints(&self) -> bool {
        matches!(self.progress, Progress::Print(true))
    }

    /// Put this thread's numbers in its slot (several threads).
    fn publish(&self) {
        if let Progress::Shared(slots, t) = &self.progress {
            let m = &self.measure;
            slots[*t].set(self.open, m.failed, m.messages, m.errors);
        }
    }

    fn print_progress(&self, t: Duration) {
        let m = &self.measure;
        let line = format!(
            "load: {:>5.1}s  connections {} open, {} failed of {}  messages {}  errors {}",
            t.as_secs_f64(),
            self.open,
            m.failed,
            self.cfg.conns,
            m.messages,
            m.errors
        );
        if self.tty {
            eprint!("\r{line}\x1b[K");
        } else {
            eprintln!("{line}");
        }
    }

    fn report(mut self, now: Instant) -> Report {
        if self.prints() && self.tty {
            eprintln!();
        }
        self.count_short_replies(now);
        self.publish();
        let conns = Conns {
            wanted: self.cfg.conns,
            // With --churn (or HTTP `Connection: close`), every
            // replacement is established too; the
            // figure that means something is how many were open at once.
            established: if self.cfg.churn.is_some() || !self.cfg.request.is_empty() {
                self.established.min(self.cfg.conns)
            } else {
                self.established
            },
            open: self.open,
            churned: self.churned,
        };
        let silence = self.proto.silence();
        let mut r = self
            .measure
            .into_report(self.cfg, now, conns, silence, None);
        r.replies = self.proto.tally();
        r
    }
}

#[cfg(test)]
mod tests;

/// The calling thread's CPU time so far, in ns.
fn cpu_ns() -> u64 {
    crate::sys::thread_cpu().as_nanos() as u64
}

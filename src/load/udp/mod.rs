//! The UDP driver (`load udp://`): N sockets, each keeping K datagrams in
//! flight, shaped like the TCP [`Driver`](super::driver::Driver) — one
//! poll loop, a [`Protocol`] for the bytes, a [`Measure`] for the counts.
//!
//! UDP may lose a datagram, so loss is measured, not an error: a request
//! not answered within a second is counted lost and replaced; a reply that
//! comes later is ignored. Each reply is one datagram; the protocol says
//! which request it answers (`reply_tag`) and whether it is right. A
//! reply that answers a request but is wrong is an error, and that request
//! is answered (not also lost).
//!
//! `datagram.rs` holds the echo protocol over UDP (sequence-numbered
//! datagrams).

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};

use super::measure::{Conns, Measure};
use super::progress::Progress;
use super::protocol::{Protocol, Tag, Verdict};
use super::report::Report;
use super::{LoadConfig, Stop};
use crate::addr::Endpoint;
use crate::sys::mmsg::{self, RecvBatch, SendBatch};
use crate::sys::stamp;

mod datagram;

pub(crate) use datagram::EchoDatagram;

/// A datagram not answered within this long is lost.
const LOSS_TIMEOUT: Duration = Duration::from_secs(1);

/// The token of the stop waker (sockets use their index).
const WAKE: Token = Token(usize::MAX);

struct Sock {
    socket: UdpSocket,
    target: SocketAddr,
    next_seq: u64,
    /// (sequence, due, sent) of each request in flight, oldest first (ns
    /// since the epoch; due = sent, as there is no --rate over UDP).
    in_flight: VecDeque<(u64, u64, u64)>,
    /// The latest requests no longer in flight, with whether each was
    /// answered (else lost): a second reply to an answered one is a
    /// duplicate (an error), a reply to a lost one is late (ignored).
    retired: VecDeque<(u64, bool)>,
    /// How many `retired` keeps.
    memory: usize,
}

impl Sock {
    /// Request `seq` is no longer in flight: answered, or lost.
    fn retire(&mut self, seq: u64, answered: bool) {
        if self.retired.len() == self.memory {
            self.retired.pop_front();
        }
        self.retired.push_back((seq, answered));
    }
}

pub(crate) struct UdpDriver<'a, P> {
    cfg: &'a LoadConfig,
    proto: P,
    /// The run-wide index of this driver's first socket.
    first: usize,
    poll: Poll,
    stop: Stop,
    socks: Vec<Sock>,
    measure: Measure,
    /// Requests not answered within LOSS_TIMEOUT (measured window).
    lost: u64,
    inb: RecvBatch,
    batch: SendBatch,
    out: Vec<u8>,
    progress: Progress,
}

impl<'a, P: Protocol> UdpDriver<'a, P> {
    /// A driver for `cfg.conns` sockets, the first of which is socket
    /// `first` of the whole run (for round-robin over the targets).
    pub(crate) fn new(
        cfg: &'a LoadConfig,
        proto: P,
        first: usize,
        progress: Progress,
        stop: &Stop,
    ) -> io::Result<Self> {
        let poll = Poll::new()?;
        stop.watch(poll.registry(), WAKE)?;
        let mut socks = Vec::with_capacity(cfg.conns);
        for i in 0..cfg.conns {
            let target = cfg.endpoints[cfg.global_conn(first + i) % cfg.endpoints.len()].addr;
            let local: SocketAddr = if target.is_ipv4() {
                ([0, 0, 0, 0], 0).into()
            } else {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            };
            let mut socket = UdpSocket::bind(local)?;
            // Connected: only the target's datagrams come back, and an ICMP
            // "port unreachable" shows up as an error instead of silence.
            socket.connect(target)?;
            // Replies in runs may then come as one buffer (GRO), cut back
            // into datagrams by RecvBatch.
            mmsg::enable_gro(&socket);
            // Replies are timed by when they arrived (sys/stamp.rs);
            // without the kernel's stamp, by when they were read.
            let _ = stamp::enable(&socket);
            poll.registry().register(
                &mut socket,
                Token(i),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            socks.push(Sock {
                socket,
                target,
                next_seq: 0,
                in_flight: VecDeque::with_capacity(cfg.pipeline),
                retired: VecDeque::new(),
                memory: 4 * cfg.pipeline + 2 * mmsg::BATCH,
            });
        }
        Ok(UdpDriver {
            cfg,
            proto,
            first,
            poll,
            stop: stop.clone(),
            socks,
            measure: Measure::new(Instant::now(), false),
            lost: 0,
            inb: RecvBatch::default(),
            batch: SendBatch::default(),
            out: Vec::with_capacity(cfg.size),
            progress,
        })
    }

    /// Socket `i`'s target, as the user wrote it.
    fn target(&self, i: usize) -> &'a Endpoint {
        let t = &self.cfg.endpoints;
        &t[self.cfg.global_conn(self.first + i) % t.len()]
    }

    pub(crate) fn run(mut self) -> io::Result<Report> {
        let mut events = Events::with_capacity(1024);
        // Every socket is open once bound: no ramp, measuring starts now.
        let start = Instant::now();
        self.measure.start(start);
        let end = start + self.cfg.duration;
        let mut next_progress = start + Duration::from_secs(1);
        loop {
            let now = Instant::now();
            if now >= end || self.stop.is_stopped() {
                break;
            }
            // Declare lost what has waited a second, and send what may go.
            for i in 0..self.socks.len() {
                self.expire(i, now);
                self.send(i);
            }
            self.measure.tick(now, self.cfg.conns);
            if now >= next_progress {
                self.progress_line(now - start);
                next_progress += Duration::from_secs(1);
            }
            // Wake for the next loss check, second or end at the latest.
            let oldest = self
                .socks
                .iter()
                .filter_map(|s| s.in_flight.front())
                .map(|&(_, _, sent)| self.measure.at(sent) + LOSS_TIMEOUT)
                .min()
                .unwrap_or(end);
            let mut wake = oldest.min(end).min(next_progress);
            if let Some(t) = self.measure.next_tick() {
                wake = wake.min(t);
            }
            match self
                .poll
                .poll(&mut events, Some(wake.saturating_duration_since(now)))
            {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for ev in events.iter() {
                if ev.token() != WAKE {
                    self.receive(ev.token().0);
                }
            }
        }
        self.publish();
        let conns = Conns {
            wanted: self.cfg.conns,
            established: self.cfg.conns,
            open: self.cfg.conns,
            churned: 0,
        };
        let silence = self.proto.silence();
        let end = Instant::now().min(end);
        let mut r = self
            .measure
            .into_report(self.cfg, end, conns, silence, Some(self.lost));
        r.replies = self.proto.tally();
        Ok(r)
    }

    /// Socket `i`'s requests that waited LOSS_TIMEOUT are lost.
    fn expire(&mut self, i: usize, now: Instant) {
        let now_ns = self.measure.ns(now);
        let s = &mut self.socks[i];
        while let Some(&(_, _, sent)) = s.in_flight.front() {
            if now_ns.saturating_sub(sent) < LOSS_TIMEOUT.as_nanos() as u64 {
                break;
            }
            if let Some((seq, _, _)) = s.in_flight.pop_front() {
                s.retire(seq, false);
            }
            self.lost += 1;
        }
    }

    /// Everything socket `i` may start goes out in one sendmmsg.
    fn send(&mut self, i: usize) {
        let conn = self.cfg.global_conn(self.first + i);
        let s = &mut self.socks[i];
        let room = self.cfg.pipeline.saturating_sub(s.in_flight.len());
        for k in 0..room.min(mmsg::BATCH) as u64 {
            self.out.clear();
            self.proto.request(conn, s.next_seq + k, &mut self.out);
            self.batch.push(s.target, &self.out, false);
        }
        let mut from = 0;
        while from < self.batch.len() {
            // Read before the call: a reply may arrive (and be stamped)
            // before a send of many datagrams returns.
            let t = self.measure.ns(Instant::now());
            match self.batch.send(&s.socket, from) {
                Ok(n) => {
                    self.measure.write();
                    // n messages; a GSO run is one message of several
                    // datagrams.
                    for k in from..from + n {
                        for _ in 0..self.batch.count(k) {
                            s.in_flight.push_back((s.next_seq, t, t));
                            s.next_seq += 1;
                        }
                    }
                    from += n;
                }
                // Send buffer full: WRITABLE brings us back.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // ECONNREFUSED (nothing listening) and the like: that
                // datagram is gone; the loss count will say so.
                Err(e) => {
                    log::debug!("load udp: send: {e}");
                    break;
                }
            }
        }
        self.batch.clear();
    }

    /// Receive on socket `i` until drained (edge-triggered), up to a batch
    /// a call, judging each datagram as one reply.
    fn receive(&mut self, i: usize) {
        loop {
            let k = match self.inb.recv(&self.socks[i].socket) {
                Ok(k) => k,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A late ICMP error for one datagram: the socket is fine.
                Err(e) => {
                    log::debug!("load udp: recv: {e}");
                    break;
                }
            };
            // Both clocks at once: each datagram's stamp is placed on ours
            // by its distance from this moment.
            let now = self.measure.ns(Instant::now());
            let real = stamp::real_now();
            let (conn, target) = (self.cfg.global_conn(self.first + i), self.target(i));
            for (at, d) in self.inb.stamped() {
                let s = &mut self.socks[i];
                self.measure.read(d.len());
                judge(
                    &mut self.proto,
                    &mut self.measure,
                    s,
                    (conn, target),
                    d,
                    stamp::place(at, now, real),
                );
            }
            if k < mmsg::BATCH {
                // Fewer than asked for: drained when the kernel looked; a
                // later datagram raises a new edge.
                break;
            }
        }
    }

    /// The progress line: printed, or published for the main thread.
    fn progress_line(&self, t: Duration) {
        self.publish();
        if matches!(self.progress, Progress::Print(true)) {
            let m = &self.measure;
            eprintln!(
                "load: {:>5.1}s  sockets {}  datagrams answered {}  lost {}  errors {}",
                t.as_secs_f64(),
                self.cfg.conns,
                m.messages,
                self.lost,
                m.errors
            );
        }
    }

    fn publish(&self) {
        if let Progress::Shared(slots, t) = &self.progress {
            let m = &self.measure;
            slots[*t].set(self.cfg.conns, 0, m.messages, m.errors);
        }
    }
}

/// One reply datagram `d` on socket `s` (connection `conn` of the run, to
/// `target`), received at `now` (ns).
fn judge<P: Protocol>(
    proto: &mut P,
    measure: &mut Measure,
    s: &mut Sock,
    (conn, target): (usize, &Endpoint),
    d: &[u8],
    now: u64,
) {
    let tag = proto.reply_tag(d);
    // A reply that cannot say which request it answers answers the
    // oldest: it is that request's (wrong) answer, not a loss too.
    let pos = match tag {
        Tag::Unreadable => (!s.in_flight.is_empty()).then_some(0),
        tag => s.in_flight.iter().position(|&(q, _, _)| tag.names(q)),
    };
    let Some(pos) = pos else {
        // Not in flight: a second answer to an answered request is an
        // error; an answer to one already counted lost is late (ignored),
        // as is one too old to remember.
        let last = s.retired.iter().rev().find(|&&(q, _)| tag.names(q));
        if last.is_some_and(|&(_, answered)| answered) {
            measure.error("duplicate reply: a request was answered twice", target);
        }
        return;
    };
    let (seq, due, sent) = s.in_flight.remove(pos).unwrap_or_default();
    s.retire(seq, true);
    let why = match proto.reply(conn, seq, 0, d) {
        Verdict::Ok(n) if n == d.len() => None,
        Verdict::Ok(_) => Some("reply datagram longer than the reply".to_string()),
        Verdict::Partial(_) => Some("short reply datagram".to_string()),
        Verdict::Error { why, .. } | Verdict::Broken(why) => Some(why),
    };
    match why {
        // No reply comes before its request left (a real-time clock
        // stepped back would say so).
        None => measure.replies(due, sent.min(now), now, 1),
        Some(why) => measure.error(&why, target),
    }
}

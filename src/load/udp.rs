//! `load udp://`: N sockets, each keeping K datagrams in flight against an
//! echo-like UDP service. UDP may lose a datagram, so loss is measured,
//! not an error: a datagram not answered within a second is counted lost
//! and replaced; one answered late is ignored. A reply whose bytes differ
//! from what was sent is an error.
//!
//! Each datagram carries its sequence number in its first bytes, as
//! uppercase hex (so `upper` returns it unchanged), then the pattern's
//! letters: a reply says which datagram it answers.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};

use super::progress::Progress;
use super::report::{latency_histogram, Failures, Report, Second};
use super::{no_reply, LoadConfig, WRONG_BYTES};
use crate::sys::mmsg::{self, RecvBatch, SendBatch};

/// A datagram not answered within this long is lost.
const LOSS_TIMEOUT: Duration = Duration::from_secs(1);

struct Sock {
    socket: UdpSocket,
    target: SocketAddr,
    next_seq: u64,
    /// (sequence, ns since the run's epoch when sent), oldest first.
    in_flight: VecDeque<(u64, u64)>,
}

/// How many hex digits of the sequence a datagram of `size` bytes carries.
fn width(size: usize) -> usize {
    size.min(16)
}

/// The part of a sequence number a datagram of `size` bytes can carry.
fn carried(seq: u64, size: usize) -> u64 {
    match width(size) {
        16 => seq,
        w => seq & ((1u64 << (4 * w)) - 1),
    }
}

/// The alphabet repeated, long enough that the letters of a datagram of
/// `size` bytes are one slice of it from any starting letter.
fn letters(size: usize) -> Vec<u8> {
    (b'A'..=b'Z').cycle().take(size + 26).collect()
}

/// Datagram `seq` of `size` bytes: the sequence's low hex digits (as many
/// as fit, up to 16), then letters (byte `i` is letter `(seq + i) % 26`),
/// copied from `letters` in one piece.
fn datagram(seq: u64, size: usize, letters: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let w = width(size);
    out.clear();
    out.extend((0..w).map(|i| HEX[((seq >> (4 * (w - 1 - i))) & 0xF) as usize]));
    let first = ((seq % 26) as usize + w) % 26;
    out.extend_from_slice(&letters[first..first + size - w]);
}

/// The (carried part of the) sequence number a datagram says.
fn seq_of(d: &[u8]) -> Option<u64> {
    let digits = &d[..width(d.len())];
    let s = std::str::from_utf8(digits).ok()?;
    u64::from_str_radix(s, 16).ok()
}

/// Run the UDP load described by `cfg` (one thread).
/// Run the UDP load for `cfg.conns` sockets, the first of which is socket
/// `first` of the whole run (for round-robin over the targets).
pub(crate) fn run(cfg: &LoadConfig, first: usize, progress: Progress) -> io::Result<Report> {
    let mut poll = Poll::new()?;
    let mut socks = Vec::with_capacity(cfg.conns);
    let mut failures = Failures::new();
    for i in 0..cfg.conns {
        let target = cfg.endpoints[(first + i) % cfg.endpoints.len()].addr;
        let local: SocketAddr = if target.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let mut socket = UdpSocket::bind(local)?;
        // Connected: only the target's datagrams come back, and an ICMP
        // "port unreachable" shows up as an error instead of silence.
        socket.connect(target)?;
        // Replies in runs may then come as one buffer (GRO), cut back into
        // datagrams by RecvBatch.
        mmsg::enable_gro(&socket);
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
        });
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    let mut hist = latency_histogram()?;
    let mut second = Second::new(latency_histogram()?);
    let mut timeline = Vec::new();
    let (mut messages, mut lost, mut errors, mut writes) = (0u64, 0u64, 0u64, 0u64);
    let mut inb = RecvBatch::default();
    let mut batch = SendBatch::default();
    let mut out = Vec::with_capacity(cfg.size);
    let letters = letters(cfg.size);
    let mut events = Events::with_capacity(1024);
    let epoch = Instant::now();
    let end = epoch + cfg.duration;
    let mut next_second = epoch + Duration::from_secs(1);
    let ns = |t: Instant| t.saturating_duration_since(epoch).as_nanos() as u64;
    loop {
        let now = Instant::now();
        if now >= end || stop.load(Ordering::Relaxed) {
            break;
        }
        // Declare lost what has waited a second, and send what may be sent.
        for s in &mut socks {
            while let Some(&(_, t0)) = s.in_flight.front() {
                if ns(now).saturating_sub(t0) < LOSS_TIMEOUT.as_nanos() as u64 {
                    break;
                }
                s.in_flight.pop_front();
                lost += 1;
            }
            // Everything this socket may start goes out in one sendmmsg.
            let room = cfg.pipeline.saturating_sub(s.in_flight.len());
            for k in 0..room.min(mmsg::BATCH) as u64 {
                datagram(s.next_seq + k, cfg.size, &letters, &mut out);
                batch.push(s.target, &out, false);
            }
            let mut from = 0;
            while from < batch.len() {
                writes += 1;
                match batch.send(&s.socket, from) {
                    Ok(n) => {
                        // n messages; a GSO run is one message of several
                        // datagrams.
                        let t = ns(Instant::now());
                        for k in from..from + n {
                            for _ in 0..batch.count(k) {
                                s.in_flight.push_back((s.next_seq, t));
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
            batch.clear();
        }
        if now >= next_second {
            let done = std::mem::replace(&mut second, Second::new(Histogram::new_from(&hist)));
            // Each latency is recorded once, in its second; the run's
            // histogram is their sum.
            let _ = hist.add(&done.hist);
            timeline.push(done);
            if let Progress::Shared(slots, t) = &progress {
                slots[*t].set(cfg.conns, 0, messages, errors);
            }
            if matches!(progress, Progress::Print(true)) {
                eprintln!(
                    "load: {:>5.1}s  sockets {}  datagrams answered {messages}  lost {lost}  errors {errors}",
                    (now - epoch).as_secs_f64(),
                    cfg.conns
                );
            }
            next_second += Duration::from_secs(1);
        }
        // Wake for the next loss check, second or end at the latest.
        let oldest = socks
            .iter()
            .filter_map(|s| {
                s.in_flight
                    .front()
                    .map(|&(_, t0)| epoch + Duration::from_nanos(t0) + LOSS_TIMEOUT)
            })
            .min()
            .unwrap_or(end);
        let wake = oldest.min(end).min(next_second);
        match poll.poll(&mut events, Some(wake.saturating_duration_since(now))) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for ev in events.iter() {
            let s = &mut socks[ev.token().0];
            // Receive until drained (edge-triggered): up to a batch a call.
            loop {
                let k = match inb.recv(&s.socket) {
                    Ok(k) => k,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    // A late ICMP error for one datagram: the socket is fine.
                    Err(e) => {
                        log::debug!("load udp: recv: {e}");
                        break;
                    }
                };
                let t = ns(Instant::now());
                // Datagrams sent together (one sendmmsg) share a start
                // time: one histogram entry per run of equal latencies.
                let mut run = (0u64, 0u64);
                for (_, got) in inb.datagrams() {
                    let Some(seq) = seq_of(got) else {
                        errors += 1;
                        *failures.entry(WRONG_BYTES.into()).or_default() += 1;
                        continue;
                    };
                    let Some(pos) = s
                        .in_flight
                        .iter()
                        .position(|&(q, _)| carried(q, cfg.size) == seq)
                    else {
                        continue; // late (already counted lost) or duplicated
                    };
                    let (full, _) = s.in_flight[pos];
                    datagram(full, cfg.size, &letters, &mut out);
                    if got != &out[..] {
                        errors += 1;
                        *failures.entry(WRONG_BYTES.into()).or_default() += 1;
                        continue;
                    }
                    let (_, t0) = s.in_flight.remove(pos).unwrap_or((full, 0));
                    let lat = t.saturating_sub(t0).max(1);
                    if lat != run.0 && run.1 > 0 {
                        let _ = second.hist.record_n(run.0, run.1);
                        run.1 = 0;
                    }
                    run = (lat, run.1 + 1);
                    second.messages += 1;
                    messages += 1;
                }
                if run.1 > 0 {
                    let _ = second.hist.record_n(run.0, run.1);
                }
                if k < mmsg::BATCH {
                    // Fewer than asked for: drained when the kernel looked;
                    // a later datagram raises a new edge.
                    break;
                }
            }
        }
    }
    if let Progress::Shared(slots, t) = &progress {
        slots[*t].set(cfg.conns, 0, messages, errors);
    }
    let elapsed = epoch
        .elapsed()
        .min(cfg.duration.max(Duration::from_millis(1)));
    let _ = hist.add(&second.hist);
    timeline.push(second);
    if messages == 0 && errors == 0 {
        *failures.entry(no_reply(cfg)).or_default() += 1;
    }
    Ok(Report {
        idle: false,
        wanted: cfg.conns,
        connections: cfg.conns,
        held: cfg.conns,
        failed: 0,
        lost: 0,
        failures,
        messages,
        elapsed,
        size: cfg.size,
        errors,
        latency_ns: hist,
        per_thread_messages: vec![messages],
        writes,
        timeline,
        churn: None,
        datagrams_lost: Some(lost),
        churned: 0,
        connects: 0,
        connect_latency_ns: latency_histogram()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datagram_says_its_sequence_and_is_upper_safe() {
        let mut d = Vec::new();
        for (seq, size) in [(0, 64), (0xABCDEF, 20), (7, 5), (u64::MAX, 16), (25, 100)] {
            datagram(seq, size, &letters(size), &mut d);
            // Byte i past the digits is letter (seq + i) % 26.
            for (i, &b) in d.iter().enumerate().skip(width(size)) {
                assert_eq!(
                    b,
                    b'A' + ((seq % 26 + i as u64) % 26) as u8,
                    "seq {seq} size {size} byte {i}"
                );
            }
            assert_eq!(d.len(), size);
            assert_eq!(d, d.to_ascii_uppercase(), "upper returns it unchanged");
            assert_eq!(seq_of(&d), Some(carried(seq, size)));
        }
    }
}

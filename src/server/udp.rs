//! The UDP half of the loop: one socket per UDP listener, and the datagrams
//! it could not send yet.
//!
//! UDP has no connections, so there is no per-peer state here: each
//! datagram is handed to the service whole, and its replies are sent at
//! once with `send_to`. That can fail with `WouldBlock` too — the socket's
//! send buffer is full — and a datagram refused that way is queued, not
//! lost, with WRITABLE interest until the queue drains. While the queue
//! holds more than `--write-buffer` bytes the loop stops receiving on that
//! socket (backpressure: the kernel drops what then arrives, as UDP may).
//!
//! Relays to other members of a UDP chat room are different: UDP has no
//! flow control to pace a room by, so a relay the socket cannot take now
//! is dropped for that member and counted (`udp_relays_dropped`), never
//! queued without bound.
//!
//! Every send passes the reflection guard ([`blocked_peer`]) first, so no
//! one can point sockloop at an echo or chargen service, or at a subnet.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;

use log::{debug, trace, warn};
use mio::net::UdpSocket;
use mio::{Interest, Token};

use super::{Server, Socket};
use crate::service::To;
use crate::stats::Counters;

/// At most this many datagrams per UDP socket per loop turn, so a flood on
/// one socket cannot starve the rest of the loop.
const UDP_BATCH: usize = 256;

/// The ports of the classic small services that answer anything sent to
/// them: echo (7), discard (9), daytime (13), chargen (19), time (37).
const SMALL_SERVICE_PORTS: [u16; 5] = [7, 9, 13, 19, 37];

/// Why sockloop will not send to `addr`, if it will not (docs/protocol.md, "Services", the UDP
/// reflection guard): port 0, a classic small service's port, or a
/// broadcast, multicast or unspecified address. A datagram *from* such an
/// address is dropped unanswered.
pub fn blocked_peer(addr: SocketAddr) -> Option<&'static str> {
    if addr.port() == 0 {
        return Some("port 0");
    }
    if SMALL_SERVICE_PORTS.contains(&addr.port()) {
        return Some("a classic small service's port");
    }
    let ip = match addr.ip() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) if v4.is_broadcast() => Some("a broadcast address"),
        ip if ip.is_multicast() => Some("a multicast address"),
        ip if ip.is_unspecified() => Some("the unspecified address"),
        _ => None,
    }
}

/// A UDP listener's socket and its unsent datagrams.
#[derive(Debug)]
pub(crate) struct UdpSide {
    socket: UdpSocket,
    queue: VecDeque<(SocketAddr, Rc<[u8]>)>,
    queued_bytes: usize,
    /// Readiness was reported and `WouldBlock` not yet seen since.
    may_read: bool,
    interest: Interest,
}

impl UdpSide {
    /// A socket registered for READABLE.
    pub fn new(socket: UdpSocket) -> Self {
        UdpSide {
            socket,
            queue: VecDeque::new(),
            queued_bytes: 0,
            may_read: false,
            interest: Interest::READABLE,
        }
    }

    /// The socket, to register it.
    pub fn socket_mut(&mut self) -> &mut UdpSocket {
        &mut self.socket
    }

    /// Send one datagram. If the kernel will not take it now, a reply is
    /// queued (`queue_if_full`) and a relay dropped and counted.
    fn send(&mut self, to: SocketAddr, payload: &[u8], counters: &Counters, queue_if_full: bool) {
        if let Some(why) = blocked_peer(to) {
            log::debug!("udp {}: not sending to {to}: {why}", self.local());
            return;
        }
        if !self.queue.is_empty() {
            // Datagrams already wait: keep the order, or drop a relay.
            if queue_if_full {
                self.enqueue(to, Rc::from(payload));
            } else {
                counters.udp_relays_dropped.add(1);
            }
            return;
        }
        match self.socket.send_to(payload, to) {
            Ok(n) => {
                log::trace!("udp {}: sent {n} bytes to {to}", self.local());
                counters.bytes_out.add(n as u64);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && queue_if_full => {
                log::trace!("udp {}: send_to {to}: WouldBlock (send buffer full; queued, call again when WRITABLE)", self.local());
                self.enqueue(to, Rc::from(payload));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                log::trace!(
                    "udp {}: relay to {to}: WouldBlock (send buffer full; dropped for that member)",
                    self.local()
                );
                counters.udp_relays_dropped.add(1);
            }
            // EMSGSIZE, EHOSTUNREACH, …: that datagram cannot go; the rest can.
            Err(e) => log::debug!("udp {}: send_to {to} failed: {e}; dropped", self.local()),
        }
    }

    fn enqueue(&mut self, to: SocketAddr, payload: Rc<[u8]>) {
        self.queued_bytes += payload.len();
        self.queue.push_back((to, payload));
    }

    /// Send queued datagrams until the queue is empty or the kernel says
    /// `WouldBlock` again.
    fn flush(&mut self, counters: &Counters) {
        while let Some((to, payload)) = self.queue.front() {
            match self.socket.send_to(payload, *to) {
                Ok(n) => counters.bytes_out.add(n as u64),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    log::trace!(
                        "udp {}: flush: WouldBlock, {} datagrams wait",
                        self.local(),
                        self.queue.len()
                    );
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => log::debug!("udp {}: send_to {to} failed: {e}; dropped", self.local()),
            }
            if let Some((_, p)) = self.queue.pop_front() {
                self.queued_bytes -= p.len();
            }
        }
    }

    /// Whether datagrams wait to be sent.
    pub fn has_queued(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Whether the send queue is over the high-water mark (stop receiving).
    fn paused(&self, write_buffer: usize) -> bool {
        self.queued_bytes > write_buffer
    }

    /// READABLE unless paused, WRITABLE while datagrams wait.
    fn wanted_interest(&self, write_buffer: usize) -> Interest {
        match (self.paused(write_buffer), self.has_queued()) {
            (false, false) => Interest::READABLE,
            (false, true) => Interest::READABLE | Interest::WRITABLE,
            (true, _) => Interest::WRITABLE,
        }
    }

    fn local(&self) -> String {
        self.socket
            .local_addr()
            .map_or_else(|_| "?".into(), |a| a.to_string())
    }
}

impl Server {
    /// A UDP socket's readiness.
    pub(super) fn udp_ready(&mut self, li: usize, readable: bool, writable: bool) {
        let Socket::Udp(u) = &mut self.listeners[li].socket else {
            return;
        };
        if writable {
            u.flush(&self.counters);
        }
        if readable {
            u.may_read = true;
        }
        self.recv_some(li);
    }

    /// Receive and answer datagrams until `WouldBlock`, the batch limit, or
    /// too many unsent replies.
    pub(super) fn recv_some(&mut self, li: usize) {
        let hw = self.opts.write_buffer;
        let now = self.now;
        let stopping = self.stopping.is_some();
        let listener = &mut self.listeners[li];
        let Socket::Udp(u) = &mut listener.socket else {
            return;
        };
        let scratch = &mut self.scratch;
        let mut budget = UDP_BATCH;
        listener.backlog = false;
        while u.may_read && !u.paused(hw) && !stopping {
            if budget == 0 {
                trace!(
                    "udp {}: batch of {UDP_BATCH} done, more may wait (continued next turn)",
                    listener.endpoint
                );
                listener.backlog = true; // edge-triggered: come back on our own
                break;
            }
            budget -= 1;
            // The read buffer holds 64 KiB: any UDP datagram (at most 65,507
            // bytes over IPv4) arrives whole.
            match u.socket.recv_from(scratch) {
                Ok((n, peer)) => {
                    trace!("udp {}: received {n} bytes from {peer}", listener.endpoint);
                    self.counters.bytes_in.add(n as u64);
                    if let Some(why) = blocked_peer(peer) {
                        debug!(
                            "udp {}: dropped datagram from {peer}: {why}",
                            listener.endpoint
                        );
                        continue;
                    }
                    self.counters.frames_in.add(1);
                    listener
                        .service
                        .on_datagram(peer, &scratch[..n], now, &mut self.outbox);
                    for (to, payload) in self.outbox.messages() {
                        self.counters.frames_out.add(1);
                        match to {
                            To::Sender => u.send(peer, payload, &self.counters, true),
                            To::Addr(a) => u.send(a, payload, &self.counters, false),
                            To::Others => debug!("udp service addressed its TCP room: ignored"),
                        }
                    }
                    self.outbox.clear();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    trace!(
                        "udp {}: recv_from: WouldBlock (drained; call again on the next READABLE)",
                        listener.endpoint
                    );
                    u.may_read = false;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // An ICMP error reported late, say: that one datagram's
                // business. The socket itself is fine.
                Err(e) => debug!("udp {}: recv_from: {e}", listener.endpoint),
            }
        }
        let want = u.wanted_interest(hw);
        if want != u.interest {
            trace!(
                "udp {}: interest {:?} -> {want:?} ({})",
                listener.endpoint,
                u.interest,
                match (want.is_readable(), want.is_writable()) {
                    (true, true) => "datagrams wait to be sent: wake when the send buffer has room",
                    (false, _) =>
                        "unsent replies above --write-buffer: stop receiving until they drain",
                    _ => "nothing queued: wake only for input",
                }
            );
            if let Some(r) = &self.registry {
                let token = Token(self.token_base + li);
                match r.reregister(&mut u.socket, token, want) {
                    Ok(()) => u.interest = want,
                    Err(e) => warn!("udp {}: reregister: {e}", listener.endpoint),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocked(s: &str) -> bool {
        blocked_peer(s.parse().unwrap()).is_some()
    }

    #[test]
    fn reflection_guard() {
        for bad in [
            "127.0.0.1:0",
            "127.0.0.1:7",
            "127.0.0.1:9",
            "127.0.0.1:13",
            "127.0.0.1:19",
            "127.0.0.1:37",
            "255.255.255.255:5000",
            "224.0.0.1:5000",
            "0.0.0.0:5000",
            "[ff02::1]:5000",
            "[::]:5000",
            "[::ffff:255.255.255.255]:5000",
            "[::1]:19",
        ] {
            assert!(blocked(bad), "{bad} should be blocked");
        }
        for ok in [
            "127.0.0.1:5000",
            "[::1]:5000",
            "10.0.0.1:8",
            "127.0.0.1:12000",
        ] {
            assert!(!blocked(ok), "{ok} should be allowed");
        }
    }
}

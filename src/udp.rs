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
//! Every send passes the reflection guard ([`blocked_peer`]) first, so no
//! one can point sockloop at an echo or chargen service, or at a subnet.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;

use mio::net::UdpSocket;
use mio::Interest;

use crate::stats::Counters;

/// The ports of the classic small services that answer anything sent to
/// them: echo (7), discard (9), daytime (13), chargen (19), time (37).
const SMALL_SERVICE_PORTS: [u16; 5] = [7, 9, 13, 19, 37];

/// Why sockloop will not send to `addr`, if it will not (SPEC §1, the UDP
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
pub struct UdpSide {
    pub socket: UdpSocket,
    queue: VecDeque<(SocketAddr, Rc<[u8]>)>,
    queued_bytes: usize,
    /// Readiness was reported and `WouldBlock` not yet seen since.
    pub may_read: bool,
    pub interest: Interest,
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

    /// Send one datagram, or queue it if the kernel will not take it now.
    pub fn send(&mut self, to: SocketAddr, payload: &[u8], counters: &Counters) {
        if let Some(why) = blocked_peer(to) {
            log::debug!("udp {}: not sending to {to}: {why}", self.local());
            return;
        }
        if !self.queue.is_empty() {
            // Datagrams already wait: keep the order.
            self.enqueue(to, Rc::from(payload));
            return;
        }
        match self.socket.send_to(payload, to) {
            Ok(n) => {
                log::trace!("udp {}: sent {n} bytes to {to}", self.local());
                counters.bytes_out.add(n as u64);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                log::trace!("udp {}: send_to {to}: WouldBlock (send buffer full; queued, call again when WRITABLE)", self.local());
                self.enqueue(to, Rc::from(payload));
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
    pub fn flush(&mut self, counters: &Counters) {
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
    pub fn paused(&self, write_buffer: usize) -> bool {
        self.queued_bytes > write_buffer
    }

    /// READABLE unless paused, WRITABLE while datagrams wait.
    pub fn wanted_interest(&self, write_buffer: usize) -> Interest {
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

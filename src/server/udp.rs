//! The UDP half of the loop: one socket per UDP listener, and the datagrams
//! it could not send yet.
//!
//! UDP has no connections, so there is no per-peer state here: each
//! datagram is handed to the service whole. Datagrams come in and go out
//! in batches (`sys/mmsg.rs`): one `recvmmsg` takes up to 32 that wait,
//! their replies are collected and one `sendmmsg` sends up to 32, so a
//! busy socket costs a syscall per batch, not two per datagram. Where the
//! kernel has UDP GRO and GSO, a run of datagrams from one peer arrives as
//! one buffer (cut back into datagrams before the service sees them), and
//! a run of equal-sized replies to one peer leaves as one message: the
//! kernel's per-datagram work, not only the syscalls, is shared. A send can
//! fail with `WouldBlock` too — the socket's send buffer is full — and a
//! reply refused that way is queued, not lost, with WRITABLE interest until
//! the queue drains. While the queue holds more than `--write-buffer` bytes
//! the loop stops receiving on that socket (backpressure: the kernel drops
//! what then arrives, as UDP may).
//!
//! Relays to other members of a UDP chat room are different: UDP has no
//! flow control to pace a room by, so a relay the socket cannot take now
//! is dropped for that member and counted (`udp_relays_dropped`), never
//! queued without bound.
//!
//! Every send passes the reflection guard ([`blocked_peer`], `udp/guard.rs`) first, so no
//! one can point sockloop at an echo or chargen service, or at a subnet.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

use log::{debug, trace, warn};
use mio::{Interest, Token};

use super::world::{self, Sock, World};
use super::{Server, Socket};
use crate::service::To;
use crate::stats::ListenerCounters;
use crate::sys::mmsg::{self, RecvBatch, SendBatch};

mod guard;
pub(crate) use guard::blocked_peer;
use guard::max_payload;

/// At most this many datagrams per UDP socket per loop turn, so a flood on
/// one socket cannot starve the rest of the loop. (Checked before each
/// receive call, and one call brings at most 32 buffers of at most 64
/// datagrams each, so a turn may run over by one call's worth.)
const UDP_BATCH: usize = 256;

/// What a UDP client is sent instead of a reply too long for one datagram
/// (an `upper` reply can be three times its request: `ΐ` → `Ϊ́`). No
/// service's reply can be mistaken for it: `upper` leaves no lowercase
/// ASCII, `count` sends digits, `echo` sends back what fitted.
pub(crate) const REPLY_TOO_LONG: &[u8] = b"ERR reply too long";

/// A UDP listener's socket and its unsent datagrams.
#[derive(Debug)]
pub(crate) struct UdpSide<U> {
    socket: U,
    unsent: Unsent,
    /// Readiness was reported and `WouldBlock` not yet seen since.
    may_read: bool,
    interest: Interest,
}

/// Replies the kernel refused (`WouldBlock`: the send buffer was full),
/// in order, with WRITABLE interest until they are gone.
#[derive(Debug, Default)]
pub(crate) struct Unsent {
    queue: VecDeque<(SocketAddr, Rc<[u8]>)>,
    bytes: usize,
}

impl Unsent {
    fn push(&mut self, to: SocketAddr, payload: &[u8]) {
        self.bytes += payload.len();
        self.queue.push_back((to, Rc::from(payload)));
    }

    fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

impl<U> UdpSide<U> {
    /// A socket registered for READABLE.
    pub(crate) fn new(socket: U) -> Self {
        UdpSide {
            socket,
            unsent: Unsent::default(),
            may_read: false,
            interest: Interest::READABLE,
        }
    }

    /// The socket, to register it.
    pub(crate) fn socket_mut(&mut self) -> &mut U {
        &mut self.socket
    }

    /// Put a datagram in this turn's batch, or — if datagrams already wait
    /// in the queue — behind them (a reply) or nowhere (a relay, counted):
    /// replies keep their order.
    #[allow(clippy::too_many_arguments)] // the world, then what and where
    fn push<W: World<Udp = U>>(
        &mut self,
        world: &mut W,
        batch: &mut SendBatch,
        to: SocketAddr,
        payload: &[u8],
        relay: bool,
        counters: &ListenerCounters,
    ) {
        if let Some(why) = blocked_peer(to) {
            debug!("udp {}: not sending to {to}: {why}", self.local(world));
            return;
        }
        let mut payload = payload;
        if payload.len() > max_payload(to) {
            // The kernel would refuse it (EMSGSIZE): a reply becomes a short
            // error datagram, so the client learns why instead of waiting
            // out its timeout (no amplification: it is shorter than any
            // request that could cause it); a relay is dropped. Counted.
            counters.udp_too_long.add(1);
            debug!(
                "udp {}: {} of {} bytes to {to} is over the UDP limit ({}); {}",
                self.local(world),
                if relay { "relay" } else { "reply" },
                payload.len(),
                max_payload(to),
                if relay {
                    "dropped"
                } else {
                    "sent ERR reply too long instead"
                }
            );
            if relay {
                return;
            }
            payload = REPLY_TOO_LONG;
        }
        if !self.unsent.is_empty() {
            if relay {
                counters.udp_relays_dropped.add(1);
            } else {
                self.unsent.push(to, payload);
            }
            return;
        }
        batch.push(to, payload, relay);
        if batch.is_full() {
            self.send_batch(world, batch, counters);
        }
    }

    /// Send the batch, one `sendmmsg` per [`mmsg::BATCH`] messages (a GSO
    /// run of datagrams to one peer is one message).
    fn send_batch<W: World<Udp = U>>(
        &mut self,
        world: &mut W,
        batch: &mut SendBatch,
        counters: &ListenerCounters,
    ) {
        let socket = &self.socket;
        deliver(
            batch,
            &mut self.unsent,
            counters,
            |b: &mut SendBatch, from| {
                counters.udp_send_calls.add(1);
                world.send_batch(socket, b, from)
            },
        );
    }

    /// Send queued datagrams until the queue is empty or the kernel says
    /// `WouldBlock` again. One `send_to` each: this is the slow path, taken
    /// only after the send buffer was full.
    fn flush<W: World<Udp = U>>(&mut self, world: &mut W, counters: &ListenerCounters) {
        while let Some((to, payload)) = self.unsent.queue.front() {
            counters.udp_send_calls.add(1);
            match world.send_to(&self.socket, payload, *to) {
                Ok(n) => {
                    counters.bytes_out.add(n as u64);
                    counters.udp_datagrams_out.add(1);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    trace!(
                        "udp {}: flush: WouldBlock, {} datagrams wait",
                        self.local(world),
                        self.unsent.queue.len()
                    );
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => debug!(
                    "udp {}: send_to {to} failed: {e}; dropped",
                    self.local(world)
                ),
            }
            if let Some((_, p)) = self.unsent.queue.pop_front() {
                self.unsent.bytes -= p.len();
            }
        }
    }

    /// Whether datagrams wait to be sent.
    pub(crate) fn has_queued(&self) -> bool {
        !self.unsent.is_empty()
    }

    /// Whether the send queue is over `--write-buffer` (stop receiving).
    fn paused(&self, write_buffer: usize) -> bool {
        self.unsent.bytes > write_buffer
    }

    /// READABLE unless paused, WRITABLE while datagrams wait.
    fn wanted_interest(&self, write_buffer: usize) -> Interest {
        match (self.paused(write_buffer), self.has_queued()) {
            (false, false) => Interest::READABLE,
            (false, true) => Interest::READABLE | Interest::WRITABLE,
            (true, _) => Interest::WRITABLE,
        }
    }

    fn local<W: World<Udp = U>>(&self, world: &W) -> String {
        world
            .udp_local(&self.socket)
            .map_or_else(|_| "?".into(), |a| a.to_string())
    }
}

/// Send every datagram in `batch` through `send` (a `sendmmsg`: given the
/// batch and the first index to send, it returns how many went, at least
/// one, or the first one's error), then empty the batch. A message the
/// kernel refuses with `WouldBlock` — and every one after it — is queued
/// datagram by datagram if it holds replies, and dropped and counted if it
/// holds relays: the loop never waits for the send buffer (WRITABLE brings
/// it back to the queue). Any other error (`EMSGSIZE`, `EHOSTUNREACH` …) is
/// that one message's: it is dropped, the rest go.
fn deliver(
    batch: &mut SendBatch,
    unsent: &mut Unsent,
    counters: &ListenerCounters,
    mut send: impl FnMut(&mut SendBatch, usize) -> io::Result<usize>,
) {
    let mut i = 0;
    while i < batch.len() {
        match send(batch, i) {
            Ok(n) => {
                trace!("udp: sendmmsg: {n} of {} messages sent", batch.len() - i);
                for k in i..i + n {
                    counters.bytes_out.add(batch.get(k).1.len() as u64);
                    counters
                        .udp_datagrams_out
                        .add(batch.datagrams_of(k).count() as u64);
                }
                i += n;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                trace!(
                    "udp: sendmmsg: WouldBlock (send buffer full): {} replies queued until WRITABLE, relays dropped",
                    batch.len() - i
                );
                for k in i..batch.len() {
                    let (it, _) = batch.get(k);
                    for d in batch.datagrams_of(k) {
                        if it.relay {
                            counters.udp_relays_dropped.add(1);
                        } else {
                            unsent.push(it.to, d);
                        }
                    }
                }
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                debug!("udp: send to {} failed: {e}; dropped", batch.get(i).0.to);
                i += 1;
            }
        }
    }
    batch.clear();
}

impl<W: World> Server<W> {
    /// A UDP socket's readiness.
    pub(super) fn udp_ready(&mut self, li: usize, readable: bool, writable: bool) {
        let Socket::Udp(u) = &mut self.listeners[li].socket else {
            return;
        };
        if writable {
            u.flush(&mut self.world, &self.counters[li]);
        }
        if readable {
            u.may_read = true;
        }
        self.recv_some(li);
    }

    /// Receive and answer datagrams until the socket is drained, the batch
    /// limit, or too many unsent replies: up to [`mmsg::BATCH`] datagrams
    /// per `recvmmsg`, their replies sent [`mmsg::BATCH`] per `sendmmsg`.
    pub(super) fn recv_some(&mut self, li: usize) {
        self.recv_some_with(li, |world, batch, socket| world.recv_batch(socket, batch));
    }

    /// [`recv_some`](Self::recv_some) with its receive call given: the
    /// socket's, or a fake's in the tests.
    fn recv_some_with(
        &mut self,
        li: usize,
        mut recv: impl FnMut(&mut W, &mut RecvBatch, &W::Udp) -> io::Result<usize>,
    ) {
        let write_buffer = self.opts.write_buffer;
        let now = self.now;
        let stopping = self.stopping.is_some();
        let listener = &mut self.listeners[li];
        let Socket::Udp(u) = &mut listener.socket else {
            return;
        };
        let (inb, out) = self.udp_batches.get_or_insert_with(Default::default);
        let counters = &self.counters[li];
        let mut budget = UDP_BATCH;
        let mut failed = false;
        listener.backlog = false;
        while u.may_read && !u.paused(write_buffer) && !stopping {
            if budget == 0 {
                trace!(
                    "udp {}: {UDP_BATCH} datagrams this turn, more may wait (continued next turn)",
                    listener.endpoint
                );
                listener.backlog = true; // edge-triggered: come back on our own
                break;
            }
            counters.udp_recv_calls.add(1);
            let n = match recv(&mut self.world, inb, &u.socket) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    trace!(
                        "udp {}: recvmmsg: WouldBlock (drained; call again on the next READABLE)",
                        listener.endpoint
                    );
                    u.may_read = false;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // An ICMP error reported late, say: that one datagram's
                // business, and datagrams may wait behind it, so receive on.
                // But an error that persists must not spin inside the turn:
                // each spends a call's worth of the budget, so a few end the
                // turn and the socket is tried again on the next one.
                Err(e) => {
                    if !failed {
                        debug!("udp {}: recvmmsg: {e}", listener.endpoint);
                        failed = true;
                    }
                    budget = budget.saturating_sub(mmsg::BATCH);
                    continue;
                }
            };
            if n < mmsg::BATCH {
                // Fewer than asked for: the queue was empty when the kernel
                // looked, so the socket is drained. As with a short TCP read,
                // any datagram arriving after that raises a new edge, so
                // skipping the extra call that would only say WouldBlock
                // loses nothing and saves a syscall per turn.
                trace!(
                    "udp {}: recvmmsg: {n} datagrams, fewer than {} (drained; wait for the next READABLE)",
                    listener.endpoint,
                    mmsg::BATCH
                );
                u.may_read = false;
            } else {
                trace!("udp {}: recvmmsg: {n} datagrams", listener.endpoint);
            }
            for (from, bytes) in inb.datagrams() {
                // The budget counts datagrams, however many one GRO buffer
                // carried.
                budget = budget.saturating_sub(1);
                counters.udp_datagrams_in.add(1);
                counters.bytes_in.add(bytes.len() as u64);
                let Some(peer) = from else {
                    continue;
                };
                if let Some(why) = blocked_peer(peer) {
                    debug!(
                        "udp {}: dropped datagram from {peer}: {why}",
                        listener.endpoint
                    );
                    continue;
                }
                counters.frames_in.add(1);
                listener
                    .service
                    .on_datagram(peer, bytes, now, &mut self.outbox);
                for (to, payload) in self.outbox.messages() {
                    counters.frames_out.add(1);
                    match to {
                        To::Sender => u.push(&mut self.world, out, peer, payload, false, counters),
                        To::Addr(a) => u.push(&mut self.world, out, a, payload, true, counters),
                        To::Others => debug!("udp service addressed its TCP room: ignored"),
                    }
                }
                self.outbox.clear();
            }
            // This batch's replies go out before the next batch comes in, so
            // the socket's send queue, not ours, absorbs them.
            u.send_batch(&mut self.world, out, counters);
        }
        let want = u.wanted_interest(write_buffer);
        let token = Token(self.token_base + li);
        let who = format_args!("udp {}", listener.endpoint);
        match world::update_interest(
            &mut self.world,
            Sock::Udp(&mut u.socket),
            token,
            u.interest,
            want,
            who,
        ) {
            Ok(now) => u.interest = now,
            Err(e) => warn!("udp {}: reregister: {e}", listener.endpoint),
        }
    }
}

#[cfg(test)]
mod tests;

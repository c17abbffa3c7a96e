//! The server's counters, readable live from any thread.
//!
//! The loop is the only writer, so a counter is bumped with a relaxed load
//! and store (no locked read-modify-write on the hot path); readers on
//! other threads see a recent value, which is all a statistic needs.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// One counter, written by the loop's thread only.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Add `n` (single writer: see the module docs).
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }
    /// Subtract `n`.
    pub fn sub(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_sub(n), Relaxed);
    }
    /// Raise to `n` if it is higher (a high-water mark).
    pub fn max(&self, n: u64) {
        if n > self.0.load(Relaxed) {
            self.0.store(n, Relaxed);
        }
    }
    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// The live counters of a server. Get them with
/// [`Server::counters`](crate::Server::counters).
#[derive(Debug, Default)]
pub struct Counters {
    /// TCP connections open now.
    pub open: Counter,
    /// TCP connections accepted and kept.
    pub accepted: Counter,
    /// TCP connections closed (by either side or a limit).
    pub closed: Counter,
    /// TCP connections closed at once for `--max-conns`.
    pub refused: Counter,
    /// Bytes read from TCP connections and UDP sockets.
    pub bytes_in: Counter,
    /// Bytes written to TCP connections and UDP sockets.
    pub bytes_out: Counter,
    /// Frames (and datagrams) handed to services.
    pub frames_in: Counter,
    /// Messages the services produced (replies and relays).
    pub frames_out: Counter,
    /// Reply bytes held in user space for all connections, now.
    pub pending_out: Counter,
    /// The most reply bytes ever held for one connection at once: with
    /// backpressure this stays under `--write-buffer` plus the replies to
    /// one read (or, in a chat room, one turn's fan-out).
    pub peak_conn_pending: Counter,
    /// The most memory (bytes of capacity) ever held for one connection's
    /// unused input: at most `--max-frame` plus a small constant for an
    /// incomplete frame.
    pub peak_held_input: Counter,
    /// The most work one connection did in one loop turn (replies plus
    /// room deliveries): at most the per-turn budget plus one frame's.
    pub peak_turn_work: Counter,
    /// Chat members disconnected for staying above `--write-buffer` for
    /// `--slow-timeout`.
    pub slow_cut: Counter,
    /// Times a chat room paused its senders for a member above the mark.
    pub room_pauses: Counter,
    /// Milliseconds chat rooms spent paused for a member above the mark.
    pub room_paused_ms: Counter,
    /// Connections closed by `--frame-timeout`.
    pub frame_timeouts: Counter,
    /// UDP chat relays dropped because the socket could not take them.
    pub udp_relays_dropped: Counter,
    /// UDP replies and relays over the largest datagram (65,507 bytes over
    /// IPv4): a reply is replaced by `ERR reply too long`, a relay dropped.
    pub udp_too_long: Counter,
    /// Receive syscalls on UDP sockets (`recvmmsg`: up to 32 datagrams each).
    pub udp_recv_calls: Counter,
    /// Send syscalls on UDP sockets (`sendmmsg`: up to 32 datagrams each).
    pub udp_send_calls: Counter,
}

impl Counters {
    /// A copy of every counter, now.
    pub fn snapshot(&self) -> Stats {
        Stats {
            open: self.open.get(),
            accepted: self.accepted.get(),
            closed: self.closed.get(),
            refused: self.refused.get(),
            bytes_in: self.bytes_in.get(),
            bytes_out: self.bytes_out.get(),
            frames_in: self.frames_in.get(),
            frames_out: self.frames_out.get(),
            pending_out: self.pending_out.get(),
            peak_conn_pending: self.peak_conn_pending.get(),
            peak_held_input: self.peak_held_input.get(),
            peak_turn_work: self.peak_turn_work.get(),
            slow_cut: self.slow_cut.get(),
            room_pauses: self.room_pauses.get(),
            room_paused_ms: self.room_paused_ms.get(),
            frame_timeouts: self.frame_timeouts.get(),
            udp_relays_dropped: self.udp_relays_dropped.get(),
            udp_too_long: self.udp_too_long.get(),
            udp_recv_calls: self.udp_recv_calls.get(),
            udp_send_calls: self.udp_send_calls.get(),
        }
    }
}

/// A snapshot of [`Counters`]: each field as documented there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)] // the same names as Counters' fields, documented there
pub struct Stats {
    pub open: u64,
    pub accepted: u64,
    pub closed: u64,
    pub refused: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub frames_in: u64,
    pub frames_out: u64,
    pub pending_out: u64,
    pub peak_conn_pending: u64,
    pub peak_held_input: u64,
    pub peak_turn_work: u64,
    pub slow_cut: u64,
    pub room_pauses: u64,
    pub room_paused_ms: u64,
    pub frame_timeouts: u64,
    pub udp_relays_dropped: u64,
    pub udp_too_long: u64,
    pub udp_recv_calls: u64,
    pub udp_send_calls: u64,
}

impl Stats {
    /// Several servers' counters as one (`--workers`): counts and bytes
    /// summed, high-water marks (`peak_*`) the highest.
    pub fn sum(all: impl IntoIterator<Item = Stats>) -> Stats {
        all.into_iter().fold(Stats::default(), |a, b| Stats {
            open: a.open + b.open,
            accepted: a.accepted + b.accepted,
            closed: a.closed + b.closed,
            refused: a.refused + b.refused,
            bytes_in: a.bytes_in + b.bytes_in,
            bytes_out: a.bytes_out + b.bytes_out,
            frames_in: a.frames_in + b.frames_in,
            frames_out: a.frames_out + b.frames_out,
            pending_out: a.pending_out + b.pending_out,
            peak_conn_pending: a.peak_conn_pending.max(b.peak_conn_pending),
            peak_held_input: a.peak_held_input.max(b.peak_held_input),
            peak_turn_work: a.peak_turn_work.max(b.peak_turn_work),
            slow_cut: a.slow_cut + b.slow_cut,
            room_pauses: a.room_pauses + b.room_pauses,
            room_paused_ms: a.room_paused_ms + b.room_paused_ms,
            frame_timeouts: a.frame_timeouts + b.frame_timeouts,
            udp_relays_dropped: a.udp_relays_dropped + b.udp_relays_dropped,
            udp_too_long: a.udp_too_long + b.udp_too_long,
            udp_recv_calls: a.udp_recv_calls + b.udp_recv_calls,
            udp_send_calls: a.udp_send_calls + b.udp_send_calls,
        })
    }
}

impl fmt::Display for Stats {
    /// The `--stats` line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stats: open={} accepted={} closed={} refused={} bytes_in={} bytes_out={} frames_in={} frames_out={} pending_out={} slow_cut={} room_pauses={} room_paused_ms={} frame_timeouts={} peak_held_input={} udp_relays_dropped={} udp_too_long={} udp_recv_calls={} udp_send_calls={}",
            self.open, self.accepted, self.closed, self.refused, self.bytes_in, self.bytes_out,
            self.frames_in, self.frames_out, self.pending_out, self.slow_cut, self.room_pauses, self.room_paused_ms,
            self.frame_timeouts, self.peak_held_input, self.udp_relays_dropped, self.udp_too_long,
            self.udp_recv_calls, self.udp_send_calls
        )
    }
}

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
    /// backpressure this stays under `--write-buffer` plus one read.
    pub peak_conn_pending: Counter,
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
        }
    }
}

/// A snapshot of [`Counters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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
}

impl fmt::Display for Stats {
    /// The `--stats` line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stats: open={} accepted={} closed={} refused={} bytes_in={} bytes_out={} frames_in={} frames_out={} pending_out={}",
            self.open, self.accepted, self.closed, self.refused, self.bytes_in, self.bytes_out,
            self.frames_in, self.frames_out, self.pending_out
        )
    }
}

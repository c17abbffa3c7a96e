//! One TCP connection's state, as the slab holds it.
//!
//! A connection is a small struct: the socket, who the peer is, where it is
//! in its life ([`State`]), and what interest it is registered with. Its
//! buffers — bytes of a frame not yet complete, replies the kernel has not
//! taken — live in a [`ConnBufs`] box that exists only while there is
//! something in it: an idle connection owns no buffer at all. Emptied boxes
//! go back to a [`BufPool`] so the next busy connection reuses them.
//!
//! ```text
//!          peer sends FIN           replies delivered
//!  Open ───────────────────▶ PeerClosed ──────────────▶ (closed)
//!    │
//!    │ we decide to close (frame too long, shutdown)
//!    ▼      replies delivered,        peer's FIN, or
//!  Closing ──────────────────▶ Lingering ───────────▶ (closed)
//!            shutdown(Write)           linger deadline
//! ```

use std::net::SocketAddr;

use mio::net::TcpStream;
use mio::Interest;

use crate::outq::OutQueue;

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Reading requests, writing replies.
    Open,
    /// The peer half-closed (we read EOF). Every reply owed is still
    /// delivered (SPEC §1); then we close. Nothing more will be read.
    PeerClosed,
    /// We are closing (a limit, an error line, shutdown): no more input is
    /// processed; what is already queued is delivered first.
    Closing,
    /// Our FIN is sent (`shutdown(Write)`). We read and discard until the
    /// peer's FIN so that closing does not send an RST that could destroy
    /// replies the peer has not read yet; a deadline bounds the wait.
    Lingering,
}

/// A connection's buffers, boxed so an idle connection pays one pointer.
#[derive(Debug, Default)]
pub struct ConnBufs {
    /// Bytes read but not yet used: an incomplete frame (or an incomplete
    /// UTF-8 character for `upper`), waiting for the next read.
    pub input: Vec<u8>,
    /// Replies not yet taken by the kernel.
    pub out: OutQueue,
}

impl ConnBufs {
    fn is_empty(&self) -> bool {
        self.input.is_empty() && self.out.is_empty()
    }
}

/// A TCP connection in the slab.
#[derive(Debug)]
pub struct Conn {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    /// Only while something is buffered.
    pub bufs: Option<Box<ConnBufs>>,
    /// When the idle (or linger) deadline falls, in ms since the server's
    /// epoch; 0 means none.
    pub deadline: u64,
    /// The `at` of this connection's live entry in the deadline heap; 0
    /// means it has none.
    pub timer_at: u64,
    /// Tells this connection from a later one in the same slab slot.
    pub serial: u32,
    /// Its place in its listener's member list (for chat fan-out).
    pub member_idx: u32,
    /// Which listener accepted it.
    pub listener: u16,
    pub state: State,
    /// What it is registered for now (to skip `epoll_ctl` when unchanged).
    pub interest: Interest,
    /// The socket may hold unread bytes: readiness was reported and we have
    /// not yet seen `WouldBlock` (or a short read) since. Edge-triggered
    /// readiness is reported once, so forgetting this would strand bytes.
    pub may_read: bool,
    /// The event said the peer's write side is closed (EPOLLRDHUP): read on
    /// to EOF even after a short read.
    pub peer_fin: bool,
    /// Queued for a flush at the end of this event (chat recipients).
    pub dirty: bool,
    /// Queued to be driven again on the next turn (its read budget used).
    pub deferred: bool,
    /// Went over `--write-buffer` as a chat recipient: disconnected at the
    /// end of this event unless writing brings it back under.
    pub doomed: bool,
}

impl Conn {
    /// Reply bytes waiting for the kernel.
    pub fn pending_out(&self) -> usize {
        self.bufs.as_ref().map_or(0, |b| b.out.len())
    }

    /// The interest this connection needs in its state: READABLE while it
    /// may read (not paused by backpressure), WRITABLE only while bytes are
    /// pending — registering WRITABLE with nothing to write would only wake
    /// the loop for nothing. `None` when it needs neither (it is done).
    pub fn wanted_interest(&self, write_buffer: usize) -> Option<Interest> {
        let pending = self.pending_out() > 0;
        let read = match self.state {
            // Above the high-water mark we stop reading: the peer's bytes
            // wait in the kernel, and TCP flow control slows the peer down.
            State::Open => self.pending_out() <= write_buffer,
            State::Lingering => true,
            State::PeerClosed | State::Closing => false,
        };
        match (read, pending) {
            (true, true) => Some(Interest::READABLE | Interest::WRITABLE),
            (true, false) => Some(Interest::READABLE),
            (false, true) => Some(Interest::WRITABLE),
            (false, false) => None,
        }
    }

    /// The buffers, taken from `pool` if the connection has none.
    pub fn bufs_mut(&mut self, pool: &mut BufPool) -> &mut ConnBufs {
        self.bufs.get_or_insert_with(|| pool.take())
    }

    /// Give the buffers back to `pool` if nothing is left in them.
    pub fn release_bufs_if_empty(&mut self, pool: &mut BufPool) {
        if self.bufs.as_ref().is_some_and(|b| b.is_empty()) {
            if let Some(b) = self.bufs.take() {
                pool.put(b);
            }
        }
    }
}

/// Emptied buffer boxes, kept for reuse so that a connection that becomes
/// busy, drains and becomes busy again does not go to the allocator.
#[derive(Debug, Default)]
pub struct BufPool {
    // The boxes themselves are what is pooled: handing one out must not
    // allocate, and a connection holds exactly this box.
    #[allow(clippy::vec_box)]
    free: Vec<Box<ConnBufs>>,
}

/// How many boxes the pool keeps; beyond that they are freed.
const POOL_MAX: usize = 256;

/// A held-input buffer larger than this is freed rather than pooled.
const INPUT_KEEP: usize = 128 * 1024;

impl BufPool {
    /// An empty box, reused if one is free.
    pub fn take(&mut self) -> Box<ConnBufs> {
        self.free.pop().unwrap_or_default()
    }

    /// Return a box (its contents are dropped).
    pub fn put(&mut self, mut b: Box<ConnBufs>) {
        b.out.clear();
        b.input.clear();
        if self.free.len() < POOL_MAX && b.out.reusable() && b.input.capacity() <= INPUT_KEEP {
            self.free.push(b);
        }
    }
}

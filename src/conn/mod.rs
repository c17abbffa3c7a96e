//! One TCP connection's state, as the slab holds it: where it is in its
//! life, what it holds, and what it is waiting for. The loop asks, the
//! connection answers: every state change is one arm of
//! [`Conn::on`], and every question the loop asks ("may I read?", "what
//! interest?") is a small named predicate here.
//!
//! ```text
//!            PeerFin                       AllDelivered
//!   Open ─────────────────▶ PeerClosed ───────────────────▶ (closed)
//!     │                        ▲
//!     │ WeClose                │ PeerFin
//!     ▼         AllDelivered   │                 PeerFin, or the
//!   Closing ──────────────────────▶ Lingering ─────────────────▶ (closed)
//!            shutdown(Write)                      linger deadline
//! ```
//!
//! Its buffers — held input ([`InBuf`]) and unsent replies ([`OutQueue`])
//! — live in a [`ConnBufs`] box that exists only while something is in
//! it: an idle connection owns no buffer at all. Emptied boxes go back to
//! a [`BufPool`] so the next busy connection reuses them (`bufs.rs`).
//! Its boolean facts are bits in one byte (`flags.rs`); its deadlines, and
//! when it is next due, are in `due.rs`.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};

use mio::Interest;

mod bufs;
mod due;
mod flags;

pub(crate) use bufs::{BufPool, ConnBufs};
use due::At;
use flags::*;

/// A byte stream the loop can drive: a socket, or a fake one in tests.
pub(crate) trait Stream: Read + Write {
    /// Send our FIN (`shutdown(SHUT_WR)`): no more bytes from us.
    fn shutdown_write(&self) -> io::Result<()>;
}

impl Stream for mio::net::TcpStream {
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// Reading requests, writing replies.
    Open,
    /// The peer half-closed (we read EOF). Every reply owed is still
    /// delivered (docs/protocol.md, "Connections"); then we close. Nothing
    /// more will be read.
    PeerClosed,
    /// We are closing (a limit, an error line, shutdown): new input is read
    /// and thrown away (so that closing sends no RST), what is already
    /// owed is delivered first.
    Closing,
    /// Our FIN is sent. We read and discard until the peer's FIN so that
    /// closing does not send an RST that could destroy replies the peer
    /// has not read yet; a deadline bounds the wait.
    Lingering,
}

/// What happened to a connection, for [`Conn::on`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    /// A read returned 0: the peer sent FIN.
    PeerFin,
    /// We decided to close (frame too long, frame timeout, shutdown).
    WeClose,
    /// Nothing is owed any more: every reply is with the kernel.
    AllDelivered,
}

/// What the loop must do after a transition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Nothing: carry on in the (possibly new) state.
    Stay,
    /// Send our FIN now (`shutdown(Write)`) and start lingering.
    SendFin,
    /// Its life is over: close the socket.
    Close(&'static str),
}

/// A TCP connection in the slab. `S` is the stream: a socket in the
/// server, a scripted fake in the loop's simulation tests.
#[derive(Debug)]
pub(crate) struct Conn<S> {
    stream: S,
    peer: SocketAddr,
    bufs: Option<Box<ConnBufs>>,
    /// The idle deadline (or, lingering, the linger deadline), on the
    /// server's clock.
    deadline: Option<At>,
    /// The `at` of this connection's live entry in the deadline heap.
    timer_at: Option<At>,
    /// Which connection this is, never reused while the server runs (a
    /// slab slot is): tells a stale deadline entry from a live one.
    id: u64,
    /// Its place in its listener's member list (for chat fan-out).
    member_idx: u32,
    /// Which listener accepted it.
    listener: u16,
    state: State,
    /// What it is registered for now (to skip `epoll_ctl` when unchanged).
    interest: Interest,
    flags: Flags,
}

impl<S> Conn<S> {
    /// A connection just accepted, registered for READABLE.
    pub(crate) fn new(
        stream: S,
        peer: SocketAddr,
        id: u64,
        listener: u16,
        member_idx: u32,
    ) -> Self {
        Conn {
            stream,
            peer,
            bufs: None,
            deadline: None,
            timer_at: None,
            id,
            member_idx,
            listener,
            state: State::Open,
            interest: Interest::READABLE,
            // Registering a socket that already has bytes reports them as
            // an event; nothing to read until then.
            flags: Flags::default(),
        }
    }

    // ---- the state machine ---------------------------------------------

    /// Apply `event`; say what the loop must do.
    pub(crate) fn on(&mut self, event: Event) -> Next {
        use Event::*;
        use State::*;
        match (self.state, event) {
            // EOF: the peer will send nothing more, but still reads. What
            // it is owed is delivered before we close (half-close).
            (Open | Closing, PeerFin) => {
                self.state = PeerClosed;
                Next::Stay
            }
            // Our decision: what is owed still goes out first. A frame
            // still incomplete never will be, so it is dropped now.
            (Open, WeClose) => {
                self.state = Closing;
                if let Some(b) = self.bufs.as_mut() {
                    if !b.input.has_ready_frames() {
                        b.input.clear();
                        b.frame_since = None;
                    }
                }
                Next::Stay
            }
            // Already on its way out; the reason to close changes nothing.
            (PeerClosed | Closing | Lingering, WeClose) => Next::Stay,
            // Both sides are done: a plain close (our receive side is empty,
            // we read to EOF, so close() sends FIN, not RST).
            (PeerClosed, AllDelivered) => Next::Close("peer closed; every reply delivered"),
            // Everything owed is with the kernel: our FIN goes after it.
            (Closing, AllDelivered) => {
                self.state = Lingering;
                self.set(MAY_READ, true);
                Next::SendFin
            }
            (Lingering, PeerFin) => Next::Close("closed by us; the peer's FIN arrived"),
            // Nothing to do: still open, or already waiting for the FIN.
            (Open | Lingering, AllDelivered) | (PeerClosed, PeerFin) => Next::Stay,
        }
    }

    /// Where it is in its life.
    pub(crate) fn state(&self) -> State {
        self.state
    }

    // ---- questions the loop asks ---------------------------------------

    /// Reply bytes waiting for the kernel.
    pub(crate) fn pending_out(&self) -> usize {
        self.bufs.as_ref().map_or(0, |b| b.out.len())
    }

    /// Whether its replies are over `--write-buffer` (backpressure).
    pub(crate) fn over(&self, write_buffer: usize) -> bool {
        self.pending_out() > write_buffer
    }

    /// Whether held input may contain whole frames a budget left for later.
    pub(crate) fn has_ready_input(&self) -> bool {
        self.bufs
            .as_ref()
            .is_some_and(|b| b.input.has_ready_frames())
    }

    /// Whether input it already holds may be handed to the service now:
    /// not once we close for a limit, and not above `--write-buffer` (the
    /// replies would only grow).
    pub(crate) fn may_take_input(&self, write_buffer: usize) -> bool {
        matches!(self.state, State::Open | State::PeerClosed | State::Closing)
            && !self.over(write_buffer)
    }

    /// Whether to read a request from the socket now.
    pub(crate) fn wants_read(&self, write_buffer: usize) -> bool {
        self.state == State::Open && self.flag_may_read() && !self.over(write_buffer)
    }

    /// Whether unread input is to be read and thrown away (closing, so
    /// that close() sends no RST).
    pub(crate) fn wants_discard(&self) -> bool {
        matches!(self.state, State::Closing | State::Lingering) && self.flag_may_read()
    }

    /// The interest this connection needs: READABLE while it reads (not
    /// paused by its own backpressure) or discards, WRITABLE only while
    /// bytes are pending — registering WRITABLE with nothing to write would
    /// only wake the loop for nothing. `None` when it needs neither.
    pub(crate) fn wanted_interest(&self, write_buffer: usize) -> Option<Interest> {
        let pending = self.pending_out() > 0;
        let read = match self.state {
            // Above --write-buffer we stop reading: the peer's bytes
            // wait in the kernel, and TCP flow control slows the peer down.
            State::Open => !self.over(write_buffer),
            State::Closing | State::Lingering => true,
            State::PeerClosed => false,
        };
        match (read, pending) {
            (true, true) => Some(Interest::READABLE | Interest::WRITABLE),
            (true, false) => Some(Interest::READABLE),
            (false, true) => Some(Interest::WRITABLE),
            (false, false) => None,
        }
    }

    // ---- plain accessors -----------------------------------------------

    pub(crate) fn stream(&self) -> &S {
        &self.stream
    }
    pub(crate) fn stream_mut(&mut self) -> &mut S {
        &mut self.stream
    }
    pub(crate) fn peer(&self) -> SocketAddr {
        self.peer
    }
    pub(crate) fn id(&self) -> u64 {
        self.id
    }
    pub(crate) fn listener(&self) -> usize {
        self.listener as usize
    }
    pub(crate) fn member_idx(&self) -> usize {
        self.member_idx as usize
    }
    pub(crate) fn set_member_idx(&mut self, i: usize) {
        self.member_idx = i as u32;
    }
    pub(crate) fn interest(&self) -> Interest {
        self.interest
    }
    pub(crate) fn set_interest(&mut self, i: Interest) {
        self.interest = i;
    }
    /// The buffers, taken from `pool` if the connection has none.
    pub(crate) fn bufs_mut(&mut self, pool: &mut BufPool) -> &mut ConnBufs {
        self.bufs.get_or_insert_with(|| pool.take())
    }

    /// Give the buffers back to `pool` if nothing is left in them.
    pub(crate) fn release_bufs_if_empty(&mut self, pool: &mut BufPool) {
        if self.bufs.as_ref().is_some_and(|b| b.is_empty()) {
            if let Some(b) = self.bufs.take() {
                pool.put(b);
            }
        }
    }

    /// The stream and the buffers at once (writing from one to the other).
    pub(crate) fn stream_and_bufs(&mut self) -> (&mut S, &mut ConnBufs) {
        let bufs = self.bufs.get_or_insert_with(Box::default);
        (&mut self.stream, bufs)
    }

    /// Take the buffers away (closing).
    pub(crate) fn take_bufs(&mut self) -> Option<Box<ConnBufs>> {
        self.bufs.take()
    }

    // ---- flags -----------------------------------------------------------

    fn set(&mut self, f: u8, on: bool) {
        self.flags.set(f, on);
    }
    pub(crate) fn flag_may_read(&self) -> bool {
        self.flags.get(MAY_READ)
    }
    pub(crate) fn set_may_read(&mut self, on: bool) {
        self.set(MAY_READ, on);
    }
    pub(crate) fn peer_fin_seen(&self) -> bool {
        self.flags.get(PEER_FIN_SEEN)
    }
    pub(crate) fn set_peer_fin_seen(&mut self) {
        self.set(PEER_FIN_SEEN, true);
    }
    /// Set the DIRTY flag; `true` if it was not set (queue it once).
    pub(crate) fn mark_dirty(&mut self) -> bool {
        self.flags.mark(DIRTY)
    }
    /// Clear the DIRTY flag; `true` if it was set.
    pub(crate) fn take_dirty(&mut self) -> bool {
        self.flags.take(DIRTY)
    }
    /// Set the DEFERRED flag; `true` if it was not set.
    pub(crate) fn mark_deferred(&mut self) -> bool {
        self.flags.mark(DEFERRED)
    }
    /// Clear the DEFERRED flag; `true` if it was set.
    pub(crate) fn take_deferred(&mut self) -> bool {
        self.flags.take(DEFERRED)
    }
    /// Whether it is counted as over `--write-buffer` in its room.
    pub(crate) fn is_over_write_buffer(&self) -> bool {
        self.flags.get(OVER_WRITE_BUFFER)
    }
    /// Count it over (or no longer over) `--write-buffer`; records since
    /// when.
    pub(crate) fn set_over_write_buffer(&mut self, on: bool, now: u64) {
        self.set(OVER_WRITE_BUFFER, on);
        if let Some(b) = self.bufs.as_mut() {
            b.over_since = on.then_some(now);
        }
    }
    /// Whether it is counted as draining in its room.
    pub(crate) fn is_draining(&self) -> bool {
        self.flags.get(DRAINING)
    }
    pub(crate) fn set_draining(&mut self, on: bool) {
        self.set(DRAINING, on);
    }
    /// Whether it received the room's latest messages.
    pub(crate) fn got_latest(&self) -> bool {
        self.flags.get(GOT_LATEST)
    }
    pub(crate) fn set_got_latest(&mut self, on: bool) {
        self.set(GOT_LATEST, on);
    }
    /// Set the PAUSED flag; `true` if it was not set (list it once).
    pub(crate) fn mark_paused(&mut self) -> bool {
        self.flags.mark(PAUSED)
    }
    /// Clear the PAUSED flag; `true` if it was set.
    pub(crate) fn take_paused(&mut self) -> bool {
        self.flags.take(PAUSED)
    }
}

/// Why a connection was closed, for the log.
#[derive(Debug)]
pub(crate) enum Why {
    /// A reason in words.
    Said(&'static str),
    /// A syscall failed.
    Io(&'static str, io::Error),
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::Said(s) => f.write_str(s),
            Why::Io(what, e) => write!(f, "{what}: {e}"),
        }
    }
}

#[cfg(test)]
mod tests;

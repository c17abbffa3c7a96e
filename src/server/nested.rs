//! Nesting the server in an event loop that is not mio: tokio, GLib,
//! libuv, a C `epoll` loop. The way loops nest (libuv's `uv_backend_fd` +
//! `uv_backend_timeout` + `uv_run(UV_RUN_NOWAIT)`, GLib's
//! prepare/check/dispatch): the inner loop shows the outer one
//!
//! - **one file descriptor** ([`Nested::as_fd`], or `as_raw_fd`) that is readable when
//!   the server has work — it is the server's own epoll instance, which
//!   is readable whenever any socket registered in it has an event ready;
//! - **a deadline** ([`Nested::next_timeout`]) for its timers;
//! - **a call that does what is ready without blocking**
//!   ([`Nested::turn`] with a zero timeout).
//!
//! ```text
//!   outer loop: wait for (fd readable | next_timeout | its own things)
//!     fd readable or timeout ──▶ while nested.turn(ZERO)? {}   ← drain!
//! ```
//!
//! The caveat (the one every nested epoll hits): the server's sockets are
//! edge-triggered, and so is an outer loop like tokio's `AsyncFd`, which
//! reports the fd readable once per edge. One `turn` handles at most one
//! batch of events and leaves work for the next turn (budgets, large
//! rooms), so the outer loop must call `turn(ZERO)` until it returns
//! `false` before it waits on the fd again — otherwise events already
//! reported would sit unhandled until some new edge came.
//!
//! `Nested` is [`AsFd`]: the fd is its own, open exactly as long as it is,
//! and never replaced. So an outer loop can own the `Nested` itself, or
//! watch a duplicate of its fd (tokio: `examples/in_tokio.rs`, no `unsafe`)
//! — no newtype around a raw fd, no drop order to get right.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

use mio::{Events, Poll};

use super::Server;
use crate::stats::Counters;

/// A [`Server`] with a `Poll` of its own, to be driven by another loop.
pub struct Nested {
    server: Server,
    poll: Poll,
    events: Events,
}

impl Nested {
    /// Take `server` and register it in a `Poll` of its own.
    pub fn new(mut server: Server) -> io::Result<Nested> {
        let poll = Poll::new()?;
        // mio keeps usize::MAX for itself on some platforms.
        server.register(poll.registry(), 0..usize::MAX - 1)?;
        Ok(Nested {
            server,
            poll,
            events: Events::with_capacity(1024),
        })
    }

    /// How long the outer loop may wait, if its fd stays quiet, before
    /// calling [`turn`](Self::turn) for the timers. Zero: work is waiting
    /// now. `None`: only the fd matters.
    pub fn next_timeout(&self) -> Option<Duration> {
        self.server.next_timeout()
    }

    /// One turn: wait at most `timeout` for events (zero: do not wait),
    /// handle them, run the timers. Returns whether there may be more to do
    /// at once: call again with a zero timeout until it says `false`.
    pub fn turn(&mut self, timeout: Duration) -> io::Result<bool> {
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(true),
            Err(e) => return Err(e),
        }
        let had_events = !self.events.is_empty();
        for event in self.events.iter() {
            self.server.handle_event(event);
        }
        self.server.on_timer();
        Ok(had_events || self.server.next_timeout() == Some(Duration::ZERO))
    }

    /// Stop gracefully: no new connections, owed replies delivered for up
    /// to `grace`. Keep turning until [`is_finished`](Self::is_finished).
    pub fn shutdown(&mut self, grace: Duration) {
        self.server.shutdown(grace);
    }

    /// After [`shutdown`](Self::shutdown): every connection is closed.
    pub fn is_finished(&self) -> bool {
        self.server.is_finished()
    }

    /// The server, for its listeners and counters.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// The live counters.
    pub fn counters(&self) -> Counters {
        self.server.counters()
    }
}

impl AsRawFd for Nested {
    /// The fd to wait on: readable when the server has events to handle.
    fn as_raw_fd(&self) -> RawFd {
        self.poll.as_raw_fd()
    }
}

impl AsFd for Nested {
    /// The fd to wait on, borrowed from the `Nested` that owns it.
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the fd is `self.poll`'s epoll instance, which `self`
        // owns and closes only when dropped; the borrow cannot outlive
        // `&self`. (mio's `Poll` is `AsRawFd` only.)
        unsafe { BorrowedFd::borrow_raw(self.poll.as_raw_fd()) }
    }
}

//! Graceful shutdown (SIGINT/SIGTERM, or a host program's call): stop
//! accepting, deliver every reply already owed for up to `--grace`, then
//! close.
//!
//! What is guaranteed (README, "Stopping"): until `--grace` ends, no
//! connection is reset. Each connection goes Open → Closing: requests it
//! already sent and the server already read are answered; input that
//! arrives after is read and thrown away (so the receive queue is empty
//! when the socket closes, and close() sends FIN, not an RST that would
//! destroy replies still in flight); once everything owed is written the
//! server sends its FIN and lingers until the peer's FIN. Only when
//! `--grace` ends is whatever is left closed regardless.

use std::time::Duration;

use log::info;

use super::world::Sock;
use super::{Server, Socket, World};

impl<W: World> Server<W> {
    /// Stop gracefully: close the welcoming sockets, stop taking requests,
    /// deliver every reply already owed for up to `grace`, then close.
    /// [`is_finished`](Self::is_finished) says when all is done.
    pub fn shutdown(&mut self, grace: Duration) {
        self.tick();
        if self.stopping.is_some() {
            return;
        }
        self.stopping = Some(self.now_ms + crate::options::millis(grace));
        info!("shutting down: no new connections; delivering owed replies for up to {grace:?}");
        for l in &mut self.listeners {
            if let Socket::Tcp(t) = &mut l.socket {
                let _ = self.world.deregister(Sock::Listener(t));
                // Closing the welcoming socket refuses new connections at
                // once instead of leaving them in the backlog.
                l.socket = Socket::Closed;
            }
        }
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.begin_closing(key);
        }
        self.settle();
    }

    /// Whether the server is shutting down.
    pub fn is_stopping(&self) -> bool {
        self.stopping.is_some()
    }

    /// After [`shutdown`](Self::shutdown): every connection is closed and
    /// every queued datagram sent (or the grace period is over).
    pub fn is_finished(&self) -> bool {
        self.stopping.is_some()
            && self.conns.is_empty()
            && !self
                .listeners
                .iter()
                .any(|l| matches!(&l.socket, Socket::Udp(u) if u.has_queued()))
    }

    /// End the grace period now: close everything, owed or not.
    pub fn stop_now(&mut self) {
        if self.stopping.is_none() {
            self.shutdown(Duration::ZERO);
        }
        self.abort_all();
    }

    pub(super) fn abort_all(&mut self) {
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.close(key, &"shutdown grace period over");
        }
        for l in &mut self.listeners {
            l.socket = Socket::Closed;
        }
    }
}

//! Accepting TCP connections: the welcoming socket's READABLE, in batches,
//! with the connection cap and the out-of-descriptors pause.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use log::{debug, info, trace, warn};
use mio::net::TcpStream;
use mio::Interest;

use super::{builder, Server, Socket, MAX_CONNS_LINE};
use crate::conn::Conn;
use crate::framing::Framing;
use crate::service::ConnId;
use crate::sys;

/// At most this many accepts per listener per loop turn, so a connect flood
/// cannot starve the clients already connected (Redis's
/// max-new-connections-per-cycle).
const ACCEPT_BATCH: usize = 256;

/// After `EMFILE` on accept, wait this long before trying again (unless a
/// connection closes first and frees a descriptor).
const ACCEPT_PAUSE_MS: u64 = 100;

impl Server {
    /// Accept until `WouldBlock` or the batch is used up.
    pub(super) fn accept_some(&mut self, li: usize) {
        if self.stopping.is_some() {
            return;
        }
        if self.accept_paused_until.is_some() {
            // Out of descriptors: on_timer() comes back to this listener.
            self.listeners[li].backlog = true;
            return;
        }
        for _ in 0..ACCEPT_BATCH {
            let Socket::Tcp(listener) = &self.listeners[li].socket else {
                return;
            };
            match listener.accept() {
                Ok((stream, peer)) => self.admit(li, stream, peer),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    trace!(
                        "accept on {}: WouldBlock (no more waiting; call again on the next READABLE)",
                        self.listeners[li].endpoint
                    );
                    self.listeners[li].backlog = false;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if sys::is_out_of_fds(&e) => {
                    self.pause_accepting(&e);
                    self.listeners[li].backlog = true;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {
                    debug!(
                        "accept on {}: {e} (that connection is gone; next)",
                        self.listeners[li].endpoint
                    );
                }
                Err(e) => {
                    // Unexpected: wait for the next readiness rather than spin.
                    warn!("accept on {}: {e}", self.listeners[li].endpoint);
                    self.listeners[li].backlog = false;
                    return;
                }
            }
        }
        // The batch is used up and more may wait. Edge-triggered readiness
        // will not be reported again for them, so remember to come back:
        // next_timeout() is zero while a backlog is pending.
        trace!(
            "accept on {}: batch of {ACCEPT_BATCH} done, more may wait (continued next turn)",
            self.listeners[li].endpoint
        );
        self.listeners[li].backlog = true;
    }

    /// With `--workers`, take one of the `--max-conns` places all workers
    /// share; `false` if none is left. (Alone, the slab's length is the
    /// count.) A place is given back in [`close`](Server::close).
    fn reserve_total(&self) -> bool {
        let Some(total) = &self.open_total else {
            return true;
        };
        if total.fetch_add(1, Ordering::Relaxed) < self.opts.max_conns {
            return true;
        }
        total.fetch_sub(1, Ordering::Relaxed);
        false
    }

    fn pause_accepting(&mut self, e: &io::Error) {
        if !self.fd_episode {
            warn!("accept: {e}: out of file descriptors; pausing accepts until connections close");
            self.fd_episode = true;
        }
        self.accept_paused_until = Some(self.now_ms + ACCEPT_PAUSE_MS);
    }

    /// A descriptor was freed: if accepting paused for want of one, try
    /// again on the next on_timer().
    pub(super) fn fd_freed(&mut self) {
        if self.accept_paused_until.is_some() {
            self.accept_paused_until = Some(self.now_ms);
        }
    }

    /// Take in one accepted connection, or refuse it at the cap.
    fn admit(&mut self, li: usize, mut stream: TcpStream, peer: SocketAddr) {
        if self.fd_episode {
            info!("accept: file descriptors available again");
            self.fd_episode = false;
        }
        let capacity = self.token_end - self.token_base - self.listeners.len();
        let limit = self.opts.max_conns.min(capacity);
        if self.conns.len() >= limit || !self.reserve_total() {
            self.counters[li].refused.add(1);
            debug!("refused {peer}: {limit} connections open (--max-conns)");
            if self.listeners[li].framing == Framing::Line {
                // Best effort, like Redis at maxclients: a new socket's send
                // buffer is empty, so this short write normally goes through.
                let _ = stream.write(MAX_CONNS_LINE);
            }
            return; // dropping the stream closes it
        }
        builder::configure_accepted(&stream);
        let key = self.conns.vacant_entry().key();
        let token = self.conn_token(key);
        let Some(registry) = &self.registry else {
            return;
        };
        if let Err(e) = registry.register(&mut stream, token, Interest::READABLE) {
            warn!("register {peer}: {e}; closed");
            return;
        }
        let member_idx = self.listeners[li].room.join(key);
        let id = self.next_id;
        self.next_id += 1;
        self.conns
            .insert(Conn::new(stream, peer, id, li as u16, member_idx as u32));
        self.counters[li].accepted.add(1);
        self.counters[li].open.add(1);
        debug!(
            "accepted {peer} on {} as conn {key} (token {}, id {id}), registered READABLE",
            self.listeners[li].endpoint, token.0
        );
        self.touch(key);
        let l = &mut self.listeners[li];
        l.service.on_connect(ConnId(id), peer, &mut self.outbox);
        self.route_outbox(li, Some(key));
        // A greeting is written before this event's handling returns.
        if self.conns.get(key).is_some_and(|c| c.pending_out() > 0) {
            self.mark_dirty(key);
        }
    }
}

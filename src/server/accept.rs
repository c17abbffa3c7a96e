//! Accepting TCP connections: the welcoming socket's READABLE, in batches,
//! with the connection cap and the out-of-descriptors pause.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use log::{debug, info, trace, warn};
use mio::Interest;

use super::world::Sock;
use super::{Server, Socket, World, MAX_CONNS_LINE};
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

impl<W: World> Server<W> {
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
            match self.world.accept(listener) {
                Ok((stream, peer)) => self.admit(li, stream, peer),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    trace!(
                        "accept on {}: WouldBlock (no more waiting; call again on the next READABLE)",
                        self.listeners[li].endpoint
                    );
                    self.fds_available();
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
        self.fds_available();
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

    /// An accept found a descriptor to spare (it said `WouldBlock`, or a
    /// batch went through without running out): an out-of-descriptors
    /// episode is over. Not at the first accept that succeeds: Linux
    /// allocates the descriptor before it looks at the queue, so when the
    /// last free one has just gone to a waiting connection, the next
    /// `accept` says `EMFILE` even with nobody waiting — the same episode,
    /// not a new one.
    fn fds_available(&mut self) {
        if self.fd_episode {
            info!("accept: file descriptors available again");
            self.fd_episode = false;
        }
    }

    /// Give back a `--max-conns` place [`reserve_total`](Self::reserve_total)
    /// took for a connection that was not kept after all.
    fn release_total(&self) {
        if let Some(total) = &self.open_total {
            total.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// A descriptor was freed: if accepting paused for want of one, try
    /// again on the next on_timer().
    pub(super) fn fd_freed(&mut self) {
        if self.accept_paused_until.is_some() {
            self.accept_paused_until = Some(self.now_ms);
        }
    }

    /// Take in one accepted connection, or refuse it at the cap.
    fn admit(&mut self, li: usize, mut stream: W::Stream, peer: SocketAddr) {
        let capacity = (self.token_end - self.token_base).saturating_sub(self.listeners.len());
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
        self.world.configure(&stream);
        let key = self.conns.vacant_entry().key();
        let token = self.conn_token(key);
        let registered = self
            .world
            .register(Sock::Stream(&mut stream), token, Interest::READABLE);
        if let Err(e) = registered {
            warn!("register {peer}: {e}; closed");
            // Its place was taken above: give it back, or every failed
            // registration would shrink --max-conns for good.
            self.release_total();
            return;
        }
        let member_idx = self.listeners[li].delivery.join(key);
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

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use mio::Poll;

    use super::*;
    use crate::options::Options;

    /// A worker whose registration of a new connection fails gives its
    /// `--max-conns` place back: with one place, a failed registration
    /// would otherwise refuse everyone after it.
    #[test]
    fn a_connection_that_cannot_be_registered_gives_its_place_back() {
        let total = Arc::new(AtomicUsize::new(0));
        let opts = Options {
            max_conns: 1,
            ..Options::default()
        };
        let spec = "echo=tcp://127.0.0.1:0".parse().unwrap();
        let mut server = Server::builder(opts)
            .worker(true, Arc::clone(&total), &crate::stats::Counters::default())
            .listen(&spec)
            .build()
            .unwrap();
        let addr = server.listeners().next().unwrap().1.addr;
        let poll = Poll::new().unwrap();
        server.register(poll.registry(), 0..16).unwrap();
        // The server's registry handle now names /dev/null, not an epoll
        // instance: every epoll_ctl on it fails (EINVAL), the way a real
        // registration can fail (ENOMEM, ENOSPC at max_user_watches).
        let fd = server.world.registry.as_ref().unwrap().as_raw_fd();
        let null = std::fs::File::open("/dev/null").unwrap();
        // SAFETY: dup2 onto a descriptor this server owns and will close
        // itself; it stays open (now naming /dev/null) for as long.
        assert!(unsafe { libc::dup2(null.as_raw_fd(), fd) } >= 0);
        for _ in 0..3 {
            let _client = std::net::TcpStream::connect(addr).unwrap();
            // connect() returned: the handshake is done and the connection
            // waits in the listener's queue.
            server.accept_some(0);
            assert_eq!(server.conns.len(), 0, "not kept");
            assert_eq!(total.load(Ordering::Relaxed), 0, "its place given back");
        }
        assert_eq!(
            server.counters().snapshot().refused,
            0,
            "never refused for the cap"
        );
    }
}

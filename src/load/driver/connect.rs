//! A connection's life in the driver: connect (the ramp), connected or
//! failed, timed out, lost, and — with `--churn` — closed and replaced in
//! the same slot. The traffic on an open connection is `driver.rs`'s.

use std::io;
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Interest, Token};

use super::{Driver, LConn, Phase};
use crate::load::protocol::Protocol;
use crate::load::reason;
use crate::load::source::connect_from;

impl<P: Protocol> Driver<'_, P> {
    /// Open the next connection of the ramp in a new slot.
    pub(super) fn open_one(&mut self, now: Instant) {
        self.attempted += 1;
        let i = self.conns.len();
        match self.connect_slot(i) {
            Ok(stream) => {
                let in_flight = if self.cfg.idle { 0 } else { self.cfg.pipeline };
                self.conns.push(LConn::new(stream, in_flight, now));
                self.connecting.push_back(i);
            }
            Err(e) => {
                let target = self.target(i);
                self.measure.failed(&reason(&e), target);
            }
        }
    }

    /// A nonblocking connect for slot `i` — from its source address, to its
    /// target — registered under token `i`.
    fn connect_slot(&mut self, i: usize) -> io::Result<TcpStream> {
        let src =
            (!self.sources.is_empty()).then(|| self.sources[(self.first + i) % self.sources.len()]);
        let mut stream = connect_from(src, self.target(i).addr)?;
        if !self.cfg.idle {
            // Replies are timed by when they arrived (sys/stamp.rs); without
            // the kernel's stamp, by when they were read.
            let _ = crate::sys::stamp::enable(&stream);
        }
        // Both interests once, for good: edge-triggered, so WRITABLE only
        // fires when a full send buffer frees up — no re-registering per
        // message.
        self.poll.registry().register(
            &mut stream,
            Token(i),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        Ok(stream)
    }

    /// Slot `i` reported WRITABLE while connecting: connected, or failed.
    pub(super) fn finish_connect(&mut self, i: usize) {
        let c = &mut self.conns[i];
        // Writable after a nonblocking connect: connected, or failed. The
        // socket error says which; peer_addr confirms.
        let err = match c.stream.take_error() {
            Ok(Some(e)) | Err(e) => Some(e),
            Ok(None) => c.stream.peer_addr().err(),
        };
        match err {
            Some(e) if e.kind() == io::ErrorKind::NotConnected => {} // not yet: wait
            Some(e) => {
                c.phase = Phase::Closed;
                let _ = self.poll.registry().deregister(&mut c.stream);
                let target = self.target(i);
                self.measure.failed(&reason(&e), target);
            }
            None => {
                c.phase = Phase::Open;
                // SYN to established, as the client sees it.
                self.measure.connected(c.opened_at.elapsed());
                let _ = c.stream.set_nodelay(true);
                self.open += 1;
                self.established += 1;
                if !self.cfg.idle && self.cfg.rate.is_none() {
                    self.send_more(i);
                }
            }
        }
    }

    /// Connects still pending after --connect-timeout fail, oldest first.
    pub(super) fn expire_connects(&mut self, now: Instant) {
        while let Some(&i) = self.connecting.front() {
            let c = &mut self.conns[i];
            if c.phase == Phase::Connecting {
                if now < c.opened_at + self.cfg.connect_wait() {
                    break;
                }
                c.phase = Phase::Closed;
                let _ = self.poll.registry().deregister(&mut c.stream);
                let target = self.target(i);
                self.measure.failed("connect timed out", target);
            }
            self.connecting.pop_front();
        }
    }

    /// An open connection is gone (error, reset, wrong bytes): count why.
    pub(super) fn lose(&mut self, i: usize, why: &str) {
        let c = &mut self.conns[i];
        if c.phase == Phase::Open {
            self.open -= 1;
        }
        c.phase = Phase::Closed;
        let _ = self.poll.registry().deregister(&mut c.stream);
        log::debug!("load: connection {i} lost: {why}");
        let target = self.target(i);
        self.measure.lost(why, target, !self.cfg.idle);
        if self.cfg.idle {
            // Holding connections is the point of --idle: one lost is one
            // not held, a failure.
            self.measure.failed += 1;
        }
    }

    /// --churn: connection `i` did its round trips (every reply is in, so
    /// closing sends a plain FIN): close it and connect its replacement in
    /// the same slot, at once.
    pub(super) fn replace(&mut self, i: usize) {
        let c = &mut self.conns[i];
        let _ = self.poll.registry().deregister(&mut c.stream);
        c.phase = Phase::Closed;
        self.open -= 1;
        self.churned += 1;
        // The same token: events still queued for the old socket find the
        // new one connecting, which ignores all but WRITABLE, and a
        // WRITABLE before the connect completes only says "not yet".
        match self.connect_slot(i) {
            Ok(stream) => {
                // Dropping the old connection closes its socket.
                self.conns[i] = LConn::new(stream, self.cfg.pipeline, Instant::now());
                self.connecting.push_back(i);
            }
            Err(e) => {
                let target = self.target(i);
                self.measure.failed(&reason(&e), target);
            }
        }
    }
}

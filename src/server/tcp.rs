//! The server's side of a TCP connection: turn a readiness event into a
//! [`drive`](super::drive::drive), act on what the turn reports (room
//! messages, deadlines, interest, close), and close connections.

use std::fmt;

use log::{debug, trace};

use super::drive::{self, Cx, Driven};
use super::world::{self, Ready, Sock};
use super::{Server, World, READS_PER_TURN, WORK_PER_TURN};
use crate::conn::Event as ConnEvent;
use crate::inbuf::{Budget, Serving};
use crate::service::ConnId;

impl<W: World> Server<W> {
    /// A readiness event for connection `key`.
    pub(super) fn conn_ready(&mut self, key: usize, event: &Ready) {
        let Some(conn) = self.conns.get_mut(key) else {
            // A connection closed earlier in this same batch of events: its
            // event is stale. (If its slot was reused, the new connection
            // gets a spurious event instead, which the read answers with
            // WouldBlock: mio allows for both.)
            trace!("event for closed connection {key}: ignored");
            return;
        };
        // An error or hang-up is reported to the read: the next read
        // returns the error or EOF, and the connection closes there.
        if event.readable || event.read_closed || event.error {
            conn.set_may_read(true);
        }
        if event.read_closed {
            conn.set_peer_fin_seen();
        }
        self.drive_key(key);
    }

    /// Give connection `key` its turn, then do what the turn asks for.
    pub(super) fn drive_key(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let li = conn.listener();
        let listener = &mut self.listeners[li];
        let fanout_cost = listener.delivery.len().saturating_sub(1).max(1);
        let mut cx = Cx {
            key,
            serving: Serving {
                framing: listener.framing,
                max_frame: self.opts.max_frame,
                service: &mut *listener.service,
                conn: ConnId(conn.id()),
                peer: conn.peer(),
                outbox: &mut self.outbox,
                budget: Budget {
                    left: WORK_PER_TURN,
                    fanout_cost,
                },
            },
            write_buffer: self.opts.write_buffer,
            pool: &mut self.pool,
            counters: &self.counters[li],
            now_ms: self.now_ms,
            reads_left: READS_PER_TURN,
            input_paused: listener.delivery.is_paused(),
            traffic: false,
        };
        let driven = drive::drive(conn, &mut cx, &mut self.scratch);
        let (traffic, work) = (cx.traffic, WORK_PER_TURN - cx.serving.budget.left);
        self.counters[li].peak_turn_work.max(work as u64);
        if traffic {
            self.touch(key);
        }
        match driven {
            Driven::Blocked => {}
            Driven::Yielded => self.defer(key),
            Driven::Paused => {
                trace!("conn {key}: its room is paused (a member is above --write-buffer); input waits");
                self.pause_sender(li, key);
            }
            Driven::ToRoom => {
                self.fan_out(li, key);
                // That turn went out to other connections. They write, and
                // the room is judged full or not, before this one reads
                // again: a recipient then holds at most one turn's
                // fan-out beyond --write-buffer.
                self.defer(key);
            }
            Driven::SentFin => {
                // A closing connection waits for the peer's FIN so close()
                // sends no RST; in shutdown for as long as --grace allows.
                let at = self
                    .stopping
                    .unwrap_or(self.now_ms + super::deadlines::LINGER_MS);
                self.set_deadline(key, at);
            }
            Driven::Done(why) => {
                self.close(key, &why);
                return;
            }
        }
        self.schedule(key);
        self.update_level(key);
        self.update_interest(key);
    }

    /// Re-register if the interest the connection needs changed.
    fn update_interest(&mut self, key: usize) {
        let write_buffer = self.opts.write_buffer;
        let token = self.conn_token(key);
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let Some(want) = conn.wanted_interest(write_buffer) else {
            return;
        };
        let have = conn.interest();
        let sock = Sock::Stream(conn.stream_mut());
        let who = format_args!("conn {key}");
        match world::update_interest(&mut self.world, sock, token, have, want, who) {
            Ok(now) => conn.set_interest(now),
            Err(e) => self.close(key, &format_args!("reregister: {e}")),
        }
    }

    /// Deliver what is queued, then close (see the connection states).
    pub(super) fn begin_closing(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            conn.on(ConnEvent::WeClose);
            self.mark_dirty(key);
        }
    }

    /// Close now; what was not written is dropped. `why` is for the log.
    pub(super) fn close(&mut self, key: usize, why: &dyn fmt::Display) {
        let Some(mut conn) = self.conns.try_remove(key) else {
            return;
        };
        let _ = self.world.deregister(Sock::Stream(conn.stream_mut()));
        let li = conn.listener();
        self.leave_room(li, &conn);
        self.counters[li].pending_out.sub(conn.pending_out() as u64);
        if let Some(b) = conn.take_bufs() {
            self.pool.put(b);
        }
        self.counters[li].closed.add(1);
        self.counters[li].open.sub(1);
        if let Some(total) = &self.open_total {
            total.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
        debug!(
            "closed {} (conn {key}, id {}): {why}",
            conn.peer(),
            conn.id()
        );
        let (peer, id) = (conn.peer(), ConnId(conn.id()));
        drop(conn); // closes the socket
        self.listeners[li]
            .service
            .on_disconnect(id, peer, &mut self.outbox);
        self.route_outbox(li, None);
        self.fd_freed();
    }
}

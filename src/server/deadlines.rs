//! A connection's deadlines, kept on the heap in `timer.rs`:
//!
//! | deadline | starts | ends in |
//! |---|---|---|
//! | idle (`--idle-timeout`) | at every byte either way | close |
//! | frame (`--frame-timeout`) | at the first byte of a frame still incomplete | `ERR frame timeout` (line), then close |
//! | slow member (`--slow-timeout`) | when a chat member goes above `--write-buffer` | close, announced as left |
//! | room's blame (`--slow-timeout` in 10 s) | when the room waits on it alone (room.rs, blame.rs) | close, announced as left |
//! | linger | when we sent our FIN | close |
//!
//! A connection has at most one live heap entry, at the earliest of its
//! deadlines ([`Conn::due_at`](crate::conn::Conn::due_at)). Traffic only
//! moves the idle deadline in the connection itself; when the entry comes
//! due the connection is looked at again, and either closed or given one
//! entry at its new earliest deadline. So the heap is touched once per
//! timeout period per busy connection, never per message.

use log::debug;

use super::drive::queue_reply;
use super::timer::Entry;
use super::{Server, World, FRAME_TIMEOUT_LINE};
use crate::conn::{Event, State};
use crate::framing::Framing;
use crate::options::millis;

/// How long a connection we close waits for the peer's FIN, outside
/// shutdown (in shutdown: until `--grace` ends).
pub(super) const LINGER_MS: u64 = 2_000;

impl<W: World> Server<W> {
    fn frame_timeout_ms(&self) -> Option<u64> {
        self.opts.frame_timeout.map(millis)
    }

    fn slow_timeout_ms(&self) -> u64 {
        millis(self.opts.slow_timeout)
    }

    /// Traffic: push the idle deadline forward (O(1): the heap is only
    /// touched if the connection has no entry in it).
    pub(super) fn touch(&mut self, key: usize) {
        let Some(idle) = self.opts.idle_timeout else {
            return;
        };
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.state() == State::Lingering {
            return; // a lingering connection's deadline does not move
        }
        conn.set_deadline(self.now_ms + millis(idle));
        self.schedule(key);
    }

    /// Set the idle-or-linger deadline, which may be earlier than before.
    pub(super) fn set_deadline(&mut self, key: usize, at: u64) {
        if let Some(conn) = self.conns.get_mut(key) {
            conn.set_deadline(at);
            self.schedule(key);
        }
    }

    /// Make sure the heap has an entry no later than the connection's
    /// earliest deadline (a frame or slow deadline may come before the
    /// idle one already scheduled).
    pub(super) fn schedule(&mut self, key: usize) {
        let (ft, st) = (self.frame_timeout_ms(), self.slow_timeout_ms());
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        // The frame clock matters only while the connection reads (what
        // expire_deadlines judges): a frame held behind whole ones when we
        // began closing will never be completed, and counting its clock
        // would schedule an entry already due, again and again, forever
        // (the simulation found that loop).
        let ft = ft.filter(|_| conn.state() == State::Open);
        let Some(due) = conn.due_at(ft, st) else {
            return;
        };
        if conn.timer_at().map_or(true, |t| due < t) {
            conn.set_timer_at(Some(due));
            self.timers.push(Entry {
                at: due,
                key: key as u32,
                id: conn.id() as u32,
            });
        }
    }

    /// Act on every entry that has come due.
    pub(super) fn expire_deadlines(&mut self) {
        let (ft, st) = (self.frame_timeout_ms(), self.slow_timeout_ms());
        let now = self.now_ms;
        while let Some(e) = self.timers.pop_due(now) {
            let key = e.key as usize;
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            if conn.id() as u32 != e.id || conn.timer_at() != Some(e.at) {
                continue; // stale: closed since, or superseded
            }
            conn.set_timer_at(None);
            self.counters.health.timers_fired.add(1);
            let li = conn.listener();
            let idle_or_linger = conn.deadline().is_some_and(|d| d <= now);
            if conn.state() == State::Lingering && idle_or_linger {
                self.close(key, &"closed by us; the peer did not close in time");
                continue;
            }
            let cut = conn.slow_expired(st, now)
                || conn.blame_expired(now)
                || (conn.state() == State::Open && conn.frame_expired(ft, now))
                || idle_or_linger;
            if cut && !self.catch_up(key) {
                continue; // closed by its own I/O (EOF, an error)
            }
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            let idle_or_linger = conn.deadline().is_some_and(|d| d <= now);
            if conn.slow_expired(st, now) {
                self.counters[li].slow_cut.add(1);
                let write_buffer = self.opts.write_buffer;
                self.close(
                    key,
                    &format_args!(
                        "chat member above --write-buffer ({write_buffer} bytes) for --slow-timeout"
                    ),
                );
            } else if conn.blame_expired(now) {
                if self.blame_exceeded(key) {
                    self.counters[li].slow_cut.add(1);
                    self.close(
                        key,
                        &"chat member that held its room of faster readers for over --slow-timeout in 10 s",
                    );
                } else {
                    self.schedule(key);
                }
            } else if conn.state() == State::Open && conn.frame_expired(ft, now) {
                self.frame_timed_out(key);
            } else if idle_or_linger {
                self.close(key, &"idle timeout");
            } else {
                // Traffic since, or another deadline: check again then.
                self.schedule(key);
            }
        }
        let conns = &self.conns;
        self.timers.compact_if_stale(conns.len(), |e| {
            conns
                .get(e.key as usize)
                .is_some_and(|c| c.id() as u32 == e.id && c.timer_at() == Some(e.at))
        });
    }

    /// Before a deadline cuts connection `key`: do the I/O its events would
    /// have asked for, had the loop fetched them — read what waits, write
    /// what the peer made room for — so the cut is judged on the socket's
    /// state now, not on the last event the loop happened to see. After a
    /// stall (SIGSTOP, a VM pause, starvation) many sockets are ready at
    /// once and one `epoll_wait` returns at most a batch of them; without
    /// this, a connection whose bytes arrived in time but whose event was
    /// not yet fetched would be cut as idle, or told `ERR frame timeout`.
    ///
    /// Why this and not "expire nothing until a poll returns fewer events
    /// than its capacity": that needs the poll's count, which a host loop
    /// (embedding, `Nested`) does not give us, and it is still wrong for a
    /// connection deferred by its budget. This costs one `read` (and a
    /// `write` if replies wait) per connection that comes due, and only
    /// then — never per event, never per message.
    ///
    /// Returns whether the connection is still open.
    fn catch_up(&mut self, key: usize) -> bool {
        let Some(conn) = self.conns.get_mut(key) else {
            return false;
        };
        // Readiness is a hint either way (mio allows spurious events): a
        // read that finds nothing costs one WouldBlock.
        conn.set_may_read(true);
        self.drive_key(key);
        self.conns.contains(key)
    }

    /// A frame took longer than `--frame-timeout` to arrive (slowloris):
    /// a `line` client is told, then the connection closes as for any
    /// limit, delivering what it is owed.
    fn frame_timed_out(&mut self, key: usize) {
        let li = match self.conns.get(key) {
            Some(c) => c.listener(),
            None => return,
        };
        self.counters[li].frame_timeouts.add(1);
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        debug!(
            "{}: frame incomplete after --frame-timeout; closing",
            conn.peer()
        );
        if self.listeners[li].framing == Framing::Line {
            queue_reply(conn, &mut self.pool, &self.counters[li], |v| {
                v.extend_from_slice(FRAME_TIMEOUT_LINE)
            });
        }
        conn.on(Event::WeClose);
        self.mark_dirty(key);
    }
}

//! Which connection runs next: the loop's fairness, in one place.
//!
//! A connection is driven when its socket reports readiness (tcp.rs). Past
//! that, three lists decide who runs and when, each listing a connection
//! at most once (a flag on the connection says it is listed):
//!
//! ```text
//!   dirty     drive before this event's handling returns (settle):
//!             room recipients with new bytes, a greeting, a close of ours
//!   deferred  drive on the next turn (drain_deferred, from on_timer),
//!             after the poll has had its say: a budget ran out, a read
//!             went to the room, or a pass was full
//!   paused    (one list per room) senders whose input waits while a member
//!             of their room is above --write-buffer; all of them move to
//!             `deferred` when the room resumes (resume_senders)
//! ```
//!
//! Each pass over `dirty` or `deferred` drives at most [`DRIVES_PER_PASS`]
//! connections; the rest wait one turn. So one event never holds the loop
//! for a whole room's writes, a ready connection waits at most a few
//! passes, and a budget-limited connection goes behind everyone already
//! waiting (first in, first out), never ahead of them.
//!
//! room.rs decides *when* a room pauses and resumes (pacing); tcp.rs turns
//! a connection's turn into one of these calls; this file is the only one
//! that touches the lists.

use std::collections::VecDeque;

use super::{Server, World};
use crate::conn::Conn;

/// At most this many connections are driven in one pass over the dirty
/// (recipients with new bytes) or deferred queues; the rest wait one turn,
/// so even a room of thousands does not hold the loop for all its writes
/// at once.
pub(super) const DRIVES_PER_PASS: usize = 32;

/// The dirty and deferred queues (see the module docs).
#[derive(Debug, Default)]
pub(super) struct Queues {
    /// Connections to drive before this event's handling returns, first in
    /// first out: chat recipients with new bytes, new connections greeted.
    dirty: VecDeque<usize>,
    /// Connections that still have work but used up their turn (a budget,
    /// or a read that went to the room, or the pass's DRIVES_PER_PASS):
    /// driven again on the next on_timer(), after the poll has had its say.
    deferred: VecDeque<usize>,
}

impl Queues {
    /// List connection `key` (that is `c`) as dirty, once. For callers that
    /// already hold the connection (a fan-out walking its room).
    pub(super) fn mark_dirty<S>(&mut self, key: usize, c: &mut Conn<S>) {
        if c.mark_dirty() {
            self.dirty.push_back(key);
        }
    }

    /// Whether the next turn has connections to drive (so the loop must
    /// not sleep).
    pub(super) fn has_deferred(&self) -> bool {
        !self.deferred.is_empty()
    }
}

impl<W: World> Server<W> {
    /// Drive `key` again on the next turn.
    pub(super) fn defer(&mut self, key: usize) {
        if self.conns.get_mut(key).is_some_and(|c| c.mark_deferred()) {
            self.queues.deferred.push_back(key);
        }
    }

    /// Drive `key` before this event's handling returns.
    pub(super) fn mark_dirty(&mut self, key: usize) {
        if let Some(c) = self.conns.get_mut(key) {
            self.queues.mark_dirty(key, c);
        }
    }

    /// Finish what this event started for other connections: drive the
    /// connections marked dirty, in order (each writes what it was sent,
    /// and its level is judged after it could write) — one pass's worth;
    /// the rest are driven on the next turn, so that a large room's writes
    /// are spread over turns and a client of another listener waits for
    /// one pass at most, not for the whole room.
    pub(super) fn settle(&mut self) {
        let mut driven = 0;
        while let Some(k) = self.queues.dirty.pop_front() {
            if !self.conns.get_mut(k).is_some_and(|c| c.take_dirty()) {
                continue;
            }
            if driven == DRIVES_PER_PASS {
                self.defer(k);
                continue;
            }
            driven += 1;
            self.drive_key(k);
        }
    }

    /// What the last turn left over, oldest first, one pass's worth: what
    /// is deferred while this runs (a connection yielding again) waits for
    /// the next turn, behind the others.
    pub(super) fn drain_deferred(&mut self) {
        for _ in 0..DRIVES_PER_PASS.min(self.queues.deferred.len()) {
            let Some(key) = self.queues.deferred.pop_front() else {
                break;
            };
            if self.conns.get_mut(key).is_some_and(|c| c.take_deferred()) {
                self.drive_key(key);
            }
        }
    }

    /// List `key` to be driven again when its room resumes.
    pub(super) fn pause_sender(&mut self, li: usize, key: usize) {
        if self.conns.get_mut(key).is_some_and(|c| c.mark_paused()) {
            self.listeners[li].delivery.paused.push(key as u32);
        }
    }

    /// Listener `li`'s room resumed: every sender that waited is driven on
    /// the next turn. None is forgotten, although edge-triggered readiness
    /// will not report its bytes again. Returns how many there were.
    pub(super) fn resume_senders(&mut self, li: usize) -> usize {
        let mut paused = std::mem::take(&mut self.listeners[li].delivery.paused);
        let n = paused.len();
        for &k in &paused {
            let k = k as usize;
            if self.conns.get_mut(k).is_some_and(|c| c.take_paused()) {
                self.defer(k);
            }
        }
        // Keep the list's memory for the next pause.
        paused.clear();
        self.listeners[li].delivery.paused = paused;
        n
    }
}

//! Delivery: a service's messages to their connections, and the chat room
//! that a listener's connections form.
//!
//! The messages one turn sends to the room are framed once, into one batch
//! (they all go to the same members). A small batch is copied into each
//! recipient's queue, where it joins the bytes already waiting (copying 19
//! bytes is cheaper than giving the kernel one more iovec for them); a
//! large one is shared, every queue holding a reference to the same bytes.
//!
//! Pacing (docs/protocol.md, "Chat rooms and slow readers"): while any
//! member is above `--write-buffer`, the room takes no input from its
//! senders — it moves at the pace of its slowest reader, as TCP would. A
//! sender that has input while the room is paused is listed, and every
//! listed sender is driven again as soon as no member is above the mark:
//! none is forgotten, although edge-triggered readiness will not report
//! its bytes again. A member that stays above the mark for
//! `--slow-timeout` is disconnected (deadlines.rs), and the room goes on.

use std::rc::Rc;

use log::{debug, trace};

use super::drive::queue_reply;
use super::{Server, DRIVES_PER_PASS};
use crate::conn::{Conn, State};
use crate::service::To;

/// A batch of room messages larger than this is shared between the
/// recipients' queues rather than copied into each.
const SHARE_ABOVE: usize = 512;

/// A listener's connections, as a room.
#[derive(Debug, Default)]
pub(super) struct Room {
    /// Keys of the listener's connections. A connection knows its place
    /// here (`member_idx`) so leaving is O(1).
    members: Vec<u32>,
    /// Whether a message was ever sent to the room (the service is a room:
    /// only then does one member's backlog pace the others).
    is_room: bool,
    /// Members above `--write-buffer` now.
    over: usize,
    /// Senders whose input waits for the room to drain.
    paused: Vec<u32>,
    /// When the room paused (ms; 0: it is not paused).
    paused_since: u64,
}

impl Room {
    /// Add connection `key`; its place in the member list.
    pub fn join(&mut self, key: usize) -> usize {
        self.members.push(key as u32);
        self.members.len() - 1
    }

    /// How many connections the listener has.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether senders must wait: a member is above the mark.
    pub fn is_paused(&self) -> bool {
        self.over > 0
    }
}

impl Server {
    /// Route what a service call (connect, disconnect) produced: replies to
    /// the sender, messages to the room.
    pub(super) fn route_outbox(&mut self, li: usize, sender: Option<usize>) {
        let framing = self.listeners[li].framing;
        if let Some(c) = sender.and_then(|k| self.conns.get_mut(k)) {
            for (to, payload) in self.outbox.messages() {
                if to == To::Sender {
                    queue_reply(c, &mut self.pool, &self.counters[li], |v| {
                        framing.encode(payload, v)
                    });
                }
            }
        }
        self.fan_out_from(li, sender);
    }

    /// Deliver the outbox's messages to the room from `sender`.
    pub(super) fn fan_out(&mut self, li: usize, sender: usize) {
        self.fan_out_from(li, Some(sender));
    }

    fn fan_out_from(&mut self, li: usize, sender: Option<usize>) {
        if self.outbox.to_room_count() == 0 {
            self.outbox.clear();
            return;
        }
        let hw = self.opts.write_buffer;
        let listener = &mut self.listeners[li];
        listener.room.is_room = true;
        // Every message to the room from one turn goes to the same members
        // (all but the sender): frame them all, once, into one batch, and
        // give each member the batch in one piece.
        let framing = listener.framing;
        self.encode_buf.clear();
        let mut messages = 0;
        for (to, payload) in self.outbox.messages() {
            if to == To::Others {
                framing.encode(payload, &mut self.encode_buf);
                messages += 1;
            }
        }
        self.outbox.clear();
        self.counters[li].frames_out.add(messages);
        let bytes = &self.encode_buf[..];
        let shared: Option<Rc<[u8]>> = (bytes.len() > SHARE_ABOVE).then(|| Rc::from(bytes));
        for &m in &listener.room.members {
            let m = m as usize;
            if Some(m) == sender {
                continue;
            }
            let Some(conn) = self.conns.get_mut(m) else {
                continue;
            };
            // Closing or half-closed members are on their way out: they
            // get what they are owed, not new conversation.
            if conn.state() != State::Open {
                continue;
            }
            let out = &mut conn.bufs_mut(&mut self.pool).out;
            match &shared {
                Some(batch) => out.push_shared(Rc::clone(batch)),
                None => out.append_with(|v| v.extend_from_slice(bytes)),
            }
            self.counters[li].pending_out.add(bytes.len() as u64);
            self.counters[li].peak_conn_pending.max(out.len() as u64);
            if out.len() > hw && !conn.is_over_mark() {
                self.went_over.push(m);
            }
            if conn.mark_dirty() {
                self.dirty.push_back(m);
            }
        }
        // Above the mark pauses the room now, before those members had a
        // chance to write (they may wait a pass: see settle()), so no
        // sender adds to them meanwhile. Being above the mark for a moment
        // costs nothing else: only --slow-timeout above it cuts a member.
        let mut went_over = std::mem::take(&mut self.went_over);
        for &m in &went_over {
            self.update_level(m);
        }
        went_over.clear();
        self.went_over = went_over;
    }

    /// Finish what this event started for other connections: drive the
    /// connections marked dirty, in order (each writes what it was sent,
    /// and its level is judged after it could write) — one pass's worth;
    /// the rest are driven on the next turn, so that a large room's writes
    /// are spread over turns and a client of another listener waits for
    /// one pass at most, not for the whole room.
    pub(super) fn settle(&mut self) {
        let mut driven = 0;
        while let Some(k) = self.dirty.pop_front() {
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

    /// Count connection `key` in or out of its room's members above the
    /// mark, after its turn. Only rooms are paced: an echo connection's
    /// backlog is its own business (its own reads pause, nothing else).
    pub(super) fn update_level(&mut self, key: usize) {
        let hw = self.opts.write_buffer;
        let now = self.now_ms;
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        let li = c.listener();
        let room = &mut self.listeners[li].room;
        if !room.is_room {
            return;
        }
        let over = c.state() == State::Open && c.over(hw);
        if over == c.is_over_mark() {
            return;
        }
        c.set_over_mark(over, now);
        if over {
            room.over += 1;
            if room.over == 1 {
                room.paused_since = now;
                self.counters[li].room_pauses.add(1);
                trace!(
                    "room {}: conn {key} above --write-buffer; room paused",
                    self.listeners[li].endpoint
                );
            }
            // Its slow-member deadline.
            self.schedule(key);
        } else {
            room.over -= 1;
            if room.over == 0 {
                self.resume_room(li);
            }
        }
    }

    /// List `key` to be driven again when its room resumes.
    pub(super) fn pause_sender(&mut self, li: usize, key: usize) {
        if self.conns.get_mut(key).is_some_and(|c| c.mark_paused()) {
            self.listeners[li].room.paused.push(key as u32);
        }
    }

    /// No member is above the mark: every sender that waited goes on.
    fn resume_room(&mut self, li: usize) {
        let room = &mut self.listeners[li].room;
        let waited = self.now_ms.saturating_sub(room.paused_since);
        room.paused_since = 0;
        self.counters[li].room_paused_ms.add(waited);
        let paused = std::mem::take(&mut room.paused);
        trace!(
            "room {}: no member above --write-buffer; resuming {} senders after {waited} ms",
            self.listeners[li].endpoint,
            paused.len()
        );
        for k in &paused {
            let k = *k as usize;
            if self.conns.get_mut(k).is_some_and(|c| c.take_paused()) {
                self.defer(k);
            }
        }
        // Keep the list's memory for the next pause.
        let mut paused = paused;
        paused.clear();
        self.listeners[li].room.paused = paused;
    }

    /// Take a closed connection out of its room.
    pub(super) fn leave_room<S>(&mut self, li: usize, conn: &Conn<S>) {
        let room = &mut self.listeners[li].room;
        let idx = conn.member_idx();
        room.members.swap_remove(idx);
        if let Some(&moved) = room.members.get(idx) {
            if let Some(c) = self.conns.get_mut(moved as usize) {
                c.set_member_idx(idx);
            }
        }
        if conn.is_over_mark() {
            room.over -= 1;
            if room.over == 0 {
                debug!(
                    "room {}: the member above the mark left",
                    self.listeners[li].endpoint
                );
                self.resume_room(li);
            }
        }
    }
}

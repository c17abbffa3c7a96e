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
//! listed sender is driven again as soon as no member is above `--write-buffer`:
//! none is forgotten, although edge-triggered readiness will not report
//! its bytes again. A member that stays above `--write-buffer` for
//! `--slow-timeout` is disconnected (deadlines.rs), and the room goes on.
//!
//! One member must not hold a room of faster readers hostage, though, by
//! dipping below `--write-buffer` just often enough: the room keeps an account of
//! the time it waits on members above `--write-buffer` *while every other member
//! that got the same messages has written them all* (blame.rs), and a
//! member blamed for more than `--slow-timeout` within 10 s is cut. The
//! counts this needs are kept as members change class (above `--write-buffer`,
//! draining, done), so a turn pays O(1); the room's members are scanned
//! only when blame may start — once a pause at most.

use std::collections::HashMap;
use std::rc::Rc;

use log::{debug, trace};

use super::blame::{running, Window};
use super::drive::queue_reply;
use super::{Server, World};
use crate::conn::{Conn, State};
use crate::service::To;

/// A batch of room messages larger than this is shared between the
/// recipients' queues rather than copied into each.
const SHARE_ABOVE: usize = 512;

/// A listener's connections and how messages reach them: every listener
/// has one; it paces only once the service made it a chat room.
#[derive(Debug, Default)]
pub(super) struct Delivery {
    /// Keys of the listener's connections. A connection knows its place
    /// here (`member_idx`) so leaving is O(1).
    members: Vec<u32>,
    /// Whether a message was ever sent to the room (the service is a chat
    /// room: only then does one member's backlog pace the others).
    chat: bool,
    /// Members above `--write-buffer` now.
    over: usize,
    /// Senders whose input waits for the room to drain (schedule.rs
    /// lists and resumes them).
    pub(super) paused: Vec<u32>,
    /// When the room paused (ms; `None`: it is not paused).
    paused_since: Option<u64>,
    /// Members at or below `--write-buffer` with room bytes still to write.
    draining: usize,
    /// Members blamed now (above `--write-buffer` while the others are
    /// done), and since when (ms; `None`: nobody is).
    blamed: Vec<u32>,
    blame_since: Option<u64>,
    /// Each member's blame over the last 10 s (members ever blamed only).
    accounts: HashMap<u32, Window>,
}

impl Delivery {
    /// Add connection `key`; its place in the member list.
    pub(super) fn join(&mut self, key: usize) -> usize {
        self.members.push(key as u32);
        self.members.len() - 1
    }

    /// How many connections the listener has.
    pub(super) fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether senders must wait: a member is above `--write-buffer`.
    pub(super) fn is_paused(&self) -> bool {
        self.over > 0
    }
}

impl<W: World> Server<W> {
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
        let write_buffer = self.opts.write_buffer;
        let listener = &mut self.listeners[li];
        listener.delivery.chat = true;
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
        let mut newly_draining = 0;
        for &m in &listener.delivery.members {
            let m = m as usize;
            let Some(conn) = self.conns.get_mut(m) else {
                continue;
            };
            if Some(m) == sender {
                conn.set_got_latest(false);
                continue;
            }
            // Closing or half-closed members are on their way out: they
            // get what they are owed, not new conversation.
            if conn.state() != State::Open {
                continue;
            }
            conn.set_got_latest(true);
            if !conn.is_over_write_buffer() && !conn.is_draining() {
                conn.set_draining(true);
                newly_draining += 1;
            }
            let out = &mut conn.bufs_mut(&mut self.pool).out;
            match &shared {
                Some(batch) => out.push_shared(Rc::clone(batch)),
                None => out.append_with(|v| v.extend_from_slice(bytes)),
            }
            self.counters[li].pending_out.add(bytes.len() as u64);
            self.counters[li].peak_conn_pending.max(out.len() as u64);
            if out.len() > write_buffer && !conn.is_over_write_buffer() {
                self.went_over.push(m);
            }
            self.queues.mark_dirty(m, conn);
        }
        // Above --write-buffer pauses the room now, before those members
        // had a chance to write (they may wait a pass: see settle()), so no
        // sender adds to them meanwhile. Being above it for a moment costs
        // nothing else: only --slow-timeout above it cuts a member.
        listener.delivery.draining += newly_draining;
        let mut went_over = std::mem::take(&mut self.went_over);
        for &m in &went_over {
            self.update_level(m);
        }
        went_over.clear();
        self.went_over = went_over;
        if newly_draining > 0 {
            // New messages for the others: nobody is to blame while they
            // write them.
            self.reblame(li);
        }
    }

    /// Count connection `key` in or out of its room's members above
    /// `--write-buffer`, after its turn. Only rooms are paced: an echo connection's
    /// backlog is its own business (its own reads pause, nothing else).
    pub(super) fn update_level(&mut self, key: usize) {
        let write_buffer = self.opts.write_buffer;
        let now = self.now_ms;
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        let li = c.listener();
        let room = &mut self.listeners[li].delivery;
        if !room.chat {
            return;
        }
        let open = c.state() == State::Open;
        let over = open && c.over(write_buffer);
        let draining = open && !over && c.pending_out() > 0;
        let drained = c.is_draining() && !draining;
        if draining != c.is_draining() {
            c.set_draining(draining);
            if draining {
                room.draining += 1;
            } else {
                room.draining = room.draining.saturating_sub(1);
            }
        }
        if over == c.is_over_write_buffer() {
            if drained && room.over > 0 && room.draining == 0 {
                // The last of the others is done: blame may start.
                self.reblame(li);
            }
            return;
        }
        c.set_over_write_buffer(over, now);
        if over {
            room.over += 1;
            if room.over == 1 {
                room.paused_since = Some(now);
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
        self.reblame(li);
    }

    /// The room's blame after a change of who is above `--write-buffer` or
    /// still writing: end the running interval (charging each member blamed
    /// in it), then start one if the room now waits on its members above
    /// `--write-buffer` alone — no other member is still writing, and at least one
    /// that got the same messages is done with them (so the only reader
    /// of a flood, whose sender received nothing, is never blamed).
    pub(super) fn reblame(&mut self, li: usize) {
        let now = self.now_ms;
        let slow = crate::options::millis(self.opts.slow_timeout);
        let room = &mut self.listeners[li].delivery;
        if let Some(since) = room.blame_since.take() {
            for k in room.blamed.drain(..) {
                room.accounts.entry(k).or_default().add(since, now);
                if let Some(c) = self.conns.get_mut(k as usize) {
                    c.set_blame_due(None);
                }
            }
        }
        if room.over == 0 || room.draining > 0 {
            return;
        }
        let mut done = false;
        for &m in &room.members {
            let Some(c) = self.conns.get(m as usize) else {
                continue;
            };
            if c.state() != State::Open {
                continue;
            }
            if c.is_over_write_buffer() {
                room.blamed.push(m);
            } else if c.got_latest() && c.pending_out() == 0 {
                done = true;
            }
        }
        if !done || room.blamed.is_empty() {
            room.blamed.clear();
            return;
        }
        room.blame_since = Some(now);
        let blamed = std::mem::take(&mut room.blamed);
        for &k in &blamed {
            let total = room.accounts.get(&k).map_or(0, |w| w.total(now));
            if let Some(c) = self.conns.get_mut(k as usize) {
                // Cut once the account is *over* --slow-timeout (already
                // over: due now, not a millisecond later each time).
                c.set_blame_due(Some(due_at(now, slow, total)));
            }
        }
        for &k in &blamed {
            self.schedule(k as usize);
        }
        self.listeners[li].delivery.blamed = blamed;
    }

    /// A member's blame came due: whether its account (the running interval
    /// included) is over `--slow-timeout` within the window. If not — the
    /// window moved on, old blame fell out of it — its next due time is
    /// set (the caller schedules it).
    pub(super) fn blame_exceeded(&mut self, key: usize) -> bool {
        let now = self.now_ms;
        let slow = crate::options::millis(self.opts.slow_timeout);
        let Some(c) = self.conns.get_mut(key) else {
            return false;
        };
        let room = &self.listeners[c.listener()].delivery;
        let mut total = room.accounts.get(&(key as u32)).map_or(0, |w| w.total(now));
        if let Some(since) = room
            .blame_since
            .filter(|_| room.blamed.contains(&(key as u32)))
        {
            total += running(since, now);
        } else {
            c.set_blame_due(None);
            return false;
        }
        if total > slow {
            return true;
        }
        c.set_blame_due(Some(due_at(now, slow, total)));
        false
    }

    /// No member is above `--write-buffer`: every sender that waited goes on.
    fn resume_room(&mut self, li: usize) {
        let room = &mut self.listeners[li].delivery;
        let now = self.now_ms;
        let waited = room
            .paused_since
            .take()
            .map_or(0, |t| now.saturating_sub(t));
        self.counters[li].room_paused_ms.add(waited);
        let resumed = self.resume_senders(li);
        trace!(
            "room {}: no member above --write-buffer; resumed {resumed} senders after {waited} ms",
            self.listeners[li].endpoint
        );
    }

    /// Take a closed connection out of its room.
    pub(super) fn leave_room<S>(&mut self, li: usize, conn: &Conn<S>) {
        let room = &mut self.listeners[li].delivery;
        let idx = conn.member_idx();
        let key = room.members.swap_remove(idx);
        if conn.is_draining() {
            room.draining = room.draining.saturating_sub(1);
        }
        if let Some(&moved) = room.members.get(idx) {
            if let Some(c) = self.conns.get_mut(moved as usize) {
                c.set_member_idx(idx);
            }
        }
        if conn.is_over_write_buffer() {
            room.over -= 1;
            if room.over == 0 {
                debug!(
                    "room {}: the member above --write-buffer left",
                    self.listeners[li].endpoint
                );
                self.resume_room(li);
            }
        }
        if self.listeners[li].delivery.chat {
            self.reblame(li);
            let room = &mut self.listeners[li].delivery;
            room.accounts.remove(&key);
            let now = self.now_ms;
            // Accounts of members long forgiven go too.
            if room.accounts.len() > room.members.len() {
                room.accounts.retain(|_, w| !w.is_spent(now));
            }
        }
    }
}

/// When a member blamed from `now` on, with `total` ms of blame in its
/// account already, passes `slow` ms.
fn due_at(now: u64, slow: u64, total: u64) -> u64 {
    if total > slow {
        now
    } else {
        now + (slow - total) + 1
    }
}

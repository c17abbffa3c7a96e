//! The boolean facts about a connection, packed in one byte: whether it may
//! read, which queue lists it (the scheduling flags DIRTY, DEFERRED, PAUSED),
//! where it stands against `--write-buffer` in its room.

/// Boolean facts about a connection, packed in one byte (an idle
/// connection's size is a measured figure: see BENCHMARKS.md).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Flags(u8);

impl Flags {
    pub(super) fn get(self, f: u8) -> bool {
        self.0 & f != 0
    }
    pub(super) fn set(&mut self, f: u8, on: bool) {
        if on {
            self.0 |= f;
        } else {
            self.0 &= !f;
        }
    }
    /// Set `f`; `true` if it was clear (so a queue lists a connection once).
    pub(super) fn mark(&mut self, f: u8) -> bool {
        let was = self.get(f);
        self.set(f, true);
        !was
    }
    /// Clear `f`; `true` if it was set.
    pub(super) fn take(&mut self, f: u8) -> bool {
        let was = self.get(f);
        self.set(f, false);
        was
    }
}

/// The socket may hold unread bytes: readiness was reported and we have
/// not yet seen `WouldBlock` (or a short read) since. Edge-triggered
/// readiness is reported once, so forgetting this would strand bytes.
pub(super) const MAY_READ: u8 = 1;
/// The event said the peer's write side is closed (EPOLLRDHUP): read on to
/// EOF even after a short read.
pub(super) const PEER_FIN_SEEN: u8 = 2;
/// Queued to be driven before this event's handling returns.
pub(super) const DIRTY: u8 = 4;
/// Queued to be driven again on the next turn.
pub(super) const DEFERRED: u8 = 8;
/// Above `--write-buffer` as a chat member (counted in its room).
pub(super) const OVER_WRITE_BUFFER: u8 = 16;
/// Waiting in its room's list of senders to resume.
pub(super) const PAUSED: u8 = 32;
/// A chat member at or below `--write-buffer` with room bytes still to write
/// (counted in its room: the room's blame waits until none is left).
pub(super) const DRAINING: u8 = 64;
/// It received the room's latest messages (its sender did not).
pub(super) const GOT_LATEST: u8 = 128;

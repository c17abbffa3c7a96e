//! The bytes a connection has read but not yet used, and the loop that
//! turns them into service calls. No I/O: the server reads from the socket
//! and hands the bytes here; this module does the rest.
//!
//! ```text
//!   bytes just read ─┐
//!   held from before ┴▶ framing.decode ─▶ service.on_frame / on_bytes ─▶ Outbox
//!                          │
//!                          └▶ what is left (a frame not yet complete, or
//!                             whole frames the turn's budget did not reach)
//!                             is held for next time
//! ```
//!
//! Three rules live here, for every framing (`raw` too):
//! - **Whole frames first.** Every whole frame already buffered is handed on
//!   before more is read (mini-redis's order), so a partial read is the
//!   normal case, not an error.
//! - **A budget per turn.** One 64 KiB read of two-byte lines is 32,768
//!   frames; in a chat room each goes to every member. Decoding stops when
//!   the turn's [`Budget`] of work (replies, plus room deliveries) is spent,
//!   and the rest waits here for the connection's next turn, so no client
//!   can hold the loop for longer than one budget.
//! - **Bounded memory.** Held bytes grow only to what the frame needs and
//!   never past `--max-frame` plus a small constant (no `Vec` doubling to
//!   twice the limit), and go back to the allocator once the frame is done.

use std::net::SocketAddr;

use crate::framing::{Decoded, Framing};
use crate::service::{ConnId, Outbox, Service};

mod grow;
#[cfg(test)]
mod tests;

use grow::{capacity_for, head_of, rest_of_frame};

/// Held bytes beyond a frame's payload: a `len32` header, or a line's
/// `\r\n`.
pub(crate) const FRAME_SLACK: usize = 4;

/// What a `raw` service may hold back whatever `--max-frame` says: the
/// first three bytes of a UTF-8 character cut by a read (`upper` holds
/// them until the character is whole, even at `--max-frame 1`).
pub(crate) const RAW_HOLD: usize = 3;

/// A held buffer with more capacity than this is freed once it empties,
/// rather than kept for the next partial frame.
pub(crate) const KEEP_CAPACITY: usize = 4096;

/// How much work one turn of one connection may do: every reply costs one,
/// every message to the room costs one per recipient.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Budget {
    /// Work units left this turn.
    pub left: usize,
    /// What one message to the room costs: its number of recipients.
    pub fanout_cost: usize,
}

impl Budget {
    /// Charge the work one service call put in `out` (from `before`, the
    /// outbox's message counts before the call).
    fn charge(&mut self, out: &Outbox, before: (usize, usize)) {
        let messages = out.len() - before.0;
        let to_room = out.to_room_count() - before.1;
        let cost = messages - to_room + to_room * self.fanout_cost;
        // Even a call that produced nothing (a frame the service ignores)
        // costs one: decoding it was work too.
        self.left = self.left.saturating_sub(cost.max(1));
    }
}

/// A connection's input being served this turn: how its bytes are cut
/// into frames, the service that answers them and who for, where the
/// answers go, and how much work the turn may still do. [`InBuf::feed`]
/// takes it; the server's turn (`server/drive.rs`) holds it.
pub(crate) struct Serving<'a> {
    /// How the byte stream is cut.
    pub framing: Framing,
    /// `--max-frame`.
    pub max_frame: usize,
    /// What answers the frames.
    pub service: &'a mut dyn Service,
    /// The connection, for the service.
    pub conn: ConnId,
    /// Its peer, for the service.
    pub peer: SocketAddr,
    /// Where the service's answers go.
    pub outbox: &'a mut Outbox,
    /// Work this turn may still do.
    pub budget: Budget,
}

/// Why [`InBuf::feed`] stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Every whole frame was handed on; what is held (if anything) is the
    /// start of a frame: read more.
    NeedMore,
    /// The budget ran out with bytes left that may hold whole frames: call
    /// [`InBuf::feed`] again, with no new bytes, on the next turn.
    Budget,
    /// The frame at the front is over `--max-frame`: the stream cannot be
    /// resynchronised, so the connection must close. Nothing is held.
    TooLong,
}

/// What one [`InBuf::feed`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fed {
    /// Frames (or `raw` chunks) handed to the service.
    pub frames: u64,
    /// Why it stopped.
    pub stop: Stop,
    /// At EOF: bytes of an incomplete frame thrown away (they can never
    /// complete).
    pub discarded: usize,
}

/// One connection's held input.
#[derive(Debug, Default)]
pub(crate) struct InBuf {
    held: Vec<u8>,
    /// The budget stopped decoding: `held` may start with whole frames.
    ready: bool,
}

impl InBuf {
    #[cfg(test)] // only the tests ask
    /// Bytes held.
    pub(crate) fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether nothing is held.
    pub(crate) fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Memory held (capacity), for the counters.
    pub(crate) fn capacity(&self) -> usize {
        self.held.capacity()
    }

    /// Whether held bytes may hold whole frames (the budget stopped the
    /// last [`feed`](Self::feed)): they come before any new read.
    pub(crate) fn has_ready_frames(&self) -> bool {
        self.ready
    }

    /// Forget everything held and free the memory.
    pub(crate) fn clear(&mut self) {
        self.held = Vec::new();
        self.ready = false;
    }

    /// Hand `data` (after any held bytes) to `s`'s service frame by frame,
    /// within its budget, and hold what is left. `at_eof`: the peer sent
    /// FIN, so no more bytes will come (a last line without `\n` is a frame).
    pub(crate) fn feed(&mut self, data: &[u8], at_eof: bool, s: &mut Serving) -> Fed {
        let framing = s.framing;
        let limit = s.max_frame + FRAME_SLACK;
        let mut frames = 0;
        let mut held = std::mem::take(&mut self.held);
        let mut data = data;
        let mut discarded = 0;
        let stop = loop {
            if held.is_empty() {
                // Nothing held — the common case: decode straight from the
                // caller's read buffer, without a copy, and keep only the
                // tail the next read must complete.
                let (used, stop) = s.decode(data, at_eof, &mut frames);
                let tail = &data[used..];
                match stop {
                    Stop::TooLong => {}
                    Stop::NeedMore if at_eof => discarded = tail.len(),
                    Stop::Budget => held.extend_from_slice(tail),
                    Stop::NeedMore => {
                        held.reserve_exact(capacity_for(framing, tail, tail.len(), limit));
                        held.extend_from_slice(tail);
                    }
                }
                break stop;
            }
            // Bytes are held: move in only as many as the held frame can
            // still need (any valid frame fits in `limit`), so the buffer
            // never grows past the limit for a frame that is incomplete.
            let take = if held.len() > limit {
                data.len() // whole frames a budget left: no partial to bound
            } else {
                rest_of_frame(framing, &held, data).min(limit + 1 - held.len())
            };
            let (head, n) = head_of(&held, &data[..take]);
            let target = capacity_for(framing, &head[..n], held.len() + take, limit);
            if target > held.capacity() {
                held.reserve_exact(target - held.len());
            }
            held.extend_from_slice(&data[..take]);
            data = &data[take..];
            let (used, stop) = s.decode(&held, at_eof && data.is_empty(), &mut frames);
            held.drain(..used);
            match stop {
                // The held frame is done and more bytes came: go on with them.
                Stop::NeedMore if !data.is_empty() => continue,
                Stop::NeedMore if at_eof => {
                    discarded = held.len();
                    held.clear();
                }
                Stop::Budget => {
                    // The rest waits for the next turn, whole.
                    held.extend_from_slice(data);
                }
                Stop::TooLong => held.clear(),
                Stop::NeedMore => {}
            }
            break stop;
        };
        if held.is_empty() && held.capacity() > KEEP_CAPACITY {
            // The frame is done: give a large buffer back, so a connection
            // that once held a big frame does not keep paying for it.
            held = Vec::new();
        }
        self.ready = stop == Stop::Budget && !held.is_empty();
        self.held = held;
        Fed {
            frames,
            stop,
            discarded,
        }
    }
}

impl Serving<'_> {
    /// Hand every whole frame at the front of `buf` to the service, within
    /// the budget, counting them in `frames`. Returns the bytes used and
    /// why it stopped.
    fn decode(&mut self, buf: &[u8], at_eof: bool, frames: &mut u64) -> (usize, Stop) {
        let mut used = 0;
        let stop = loop {
            if used == buf.len() {
                break Stop::NeedMore;
            }
            if self.budget.left == 0 {
                break Stop::Budget;
            }
            let before = (self.outbox.len(), self.outbox.to_room_count());
            let rest = &buf[used..];
            let (payload, consumed) = match self.framing.decode(rest, self.max_frame, at_eof) {
                Decoded::Frame { payload, consumed } => (payload, consumed),
                Decoded::NeedMore => break Stop::NeedMore,
                Decoded::TooLong => break Stop::TooLong,
            };
            let frame = &rest[payload];
            if self.framing != Framing::Raw {
                self.service
                    .on_frame(self.conn, self.peer, frame, self.outbox);
                used += consumed;
                *frames += 1;
                self.budget.charge(self.outbox, before);
                continue;
            }
            // `raw` has no boundaries: its frame is everything held, and the
            // service takes what it can (upper may hold back a character
            // cut in two) in one call.
            let took = self
                .service
                .on_bytes(self.conn, self.peer, frame, at_eof, self.outbox)
                .min(frame.len());
            used += took;
            *frames += 1;
            self.budget.charge(self.outbox, before);
            // A service may hold back a little (a cut character), never
            // more than a frame's worth.
            if frame.len() - took > self.max_frame.max(RAW_HOLD) {
                break Stop::TooLong;
            }
            break Stop::NeedMore;
        };
        (used, stop)
    }
}
